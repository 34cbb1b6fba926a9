// `sluice buffer check`: a read-only integrity check of buffer.db
// (buffer/inspect.h) that never quarantines, repairs or rewrites anything;
// the daemon does that at start. Prints what was checked, notes and
// problems; exit status 1 on a problem.
#include <cstdio>
#include <string>
#include <vector>

#include "agent/cli/cli_commands.h"
#include "agent/cli/cli_format.h"
#include "buffer/inspect.h"
#include "common/json.h"

namespace sluice {
namespace cli {
namespace {

void Print(const BufferCheck& r, bool json) {
  const bool ok = r.ok();
  if (json) {
    auto list = [](const std::vector<std::string>& v) {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + JsonString(v[i]);
      return out + "]";
    };
    std::printf(
        "{\"path\":%s,\"ok\":%s,\"schema_version\":%lld,\"events\":%lld,"
        "\"first_seq\":%lld,\"last_seq\":%lld,\"next_seq\":%lld,\"checks\":%s,"
        "\"problems\":%s,\"notes\":%s}\n",
        JsonString(r.path).c_str(), ok ? "true" : "false", (long long)r.schema_version,
        (long long)r.events, (long long)r.first_seq, (long long)r.last_seq, (long long)r.next_seq,
        list(r.checks).c_str(), list(r.problems).c_str(), list(r.notes).c_str());
    return;
  }
  for (const std::string& c : r.checks) std::printf("ok    %s\n", c.c_str());
  for (const std::string& n : r.notes) std::printf("note  %s\n", n.c_str());
  for (const std::string& p : r.problems) std::printf("FAIL  %s\n", p.c_str());
  if (ok) {
    std::printf("%s: ok\n", r.path.c_str());
  } else {
    std::printf(
        "%s: %zu problem%s (nothing was changed; sluiced sets a corrupt file aside "
        "at its next start)\n",
        r.path.c_str(), r.problems.size(), r.problems.size() == 1 ? "" : "s");
  }
}

}  // namespace

int RunBufferCheck(const CommandSpec&, Globals& globals, const Parsed& args) {
  std::string data_dir;
  if (int rc = DataDirOrExit(globals, &data_dir); rc >= 0) return rc;
  BufferCheck r;
  if (Status s = CheckBuffer(data_dir, args.Has("--quick"), &r); !s.ok()) {
    std::fprintf(stderr, "sluice: %s\n", s.message().c_str());
    return kExitFailure;
  }
  IgnoreSigpipe();
  Print(r, globals.json);
  int rc = FinishStdout();
  return r.ok() ? rc : kExitFailure;
}

}  // namespace cli
}  // namespace sluice
