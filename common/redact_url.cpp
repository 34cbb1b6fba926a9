#include "common/redact_url.h"

namespace sluice {
namespace {

// Where the authority starts: after "SCHEME://", or at 0 without a scheme
// ("user:pw@host:1883" is redacted too).
size_t AuthorityStart(const std::string& url) {
  const size_t sep = url.find("://");
  return sep == std::string::npos ? 0 : sep + 3;
}

// Position of the '@' ending the userinfo, or npos.
size_t UserinfoEnd(const std::string& url) {
  const size_t start = AuthorityStart(url);
  const size_t path = url.find('/', start);
  const size_t at = url.rfind('@', path == std::string::npos ? std::string::npos : path);
  if (at == std::string::npos || at < start) return std::string::npos;
  return at;
}

}  // namespace

std::string RedactUrl(const std::string& url) {
  const size_t at = UserinfoEnd(url);
  if (at == std::string::npos) return url;
  return url.substr(0, AuthorityStart(url)) + "***@" + url.substr(at + 1);
}

bool UrlHasUserinfo(const std::string& url) { return UserinfoEnd(url) != std::string::npos; }

}  // namespace sluice
