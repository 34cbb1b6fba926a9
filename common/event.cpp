#include "common/event.h"

namespace sluice {

const char* QualityName(Quality q) {
  switch (q) {
    case Quality::kGood: return "good";
    case Quality::kUncertain: return "uncertain";
    case Quality::kBad: return "bad";
  }
  return "bad";
}

}  // namespace sluice
