// `sluice buffer stats` (CONTRACT.md "sluice (CLI)"): what buffer.db holds
// (buffer/inspect.h), as text or JSON.
#include <algorithm>
#include <cstdio>
#include <string>

#include "agent/cli/cli_commands.h"
#include "agent/cli/cli_format.h"
#include "buffer/inspect.h"
#include "common/json.h"
#include "common/units.h"

namespace sluice {
namespace cli {
namespace {

std::string TimeOrDash(int64_t ts_us) {
  return ts_us == 0 ? "-" : FormatUtc(ts_us, false);
}

void PrintStats(const BufferStats& s, bool json) {
  const int64_t last_committed = s.last_committed_seq;
  auto backlog = [&](const UpstreamCursorStats& c) {
    return std::max<int64_t>(0, last_committed - static_cast<int64_t>(c.acked_seq));
  };
  if (json) {
    std::printf("{\"path\":%s,\"schema_version\":%lld,\"file_bytes\":%lld,\"wal_bytes\":%lld,"
                "\"events\":%lld,\"bytes\":%lld,\"first_seq\":%lld,\"last_seq\":%lld,"
                "\"last_committed_seq\":%lld,\"first_ts_us\":%lld,\"last_ts_us\":%lld,"
                "\"evicted_total\":%lld,\"evicted_full\":%lld,\"full_events\":%lld,"
                "\"corrupt_recoveries\":%lld,\"upstreams\":[",
                JsonString(s.path).c_str(), (long long)s.schema_version, (long long)s.file_bytes,
                (long long)s.wal_bytes, (long long)s.events, (long long)s.bytes,
                (long long)s.first_seq, (long long)s.last_seq, (long long)last_committed,
                (long long)s.first_ts_us, (long long)s.last_ts_us, (long long)s.evicted_total,
                (long long)s.evicted_full, (long long)s.full_events,
                (long long)s.corrupt_recoveries);
    for (size_t i = 0; i < s.upstreams.size(); ++i) {
      const UpstreamCursorStats& c = s.upstreams[i];
      std::printf("%s{\"name\":%s,\"acked_seq\":%lld,\"backlog\":%lld,\"evicted_unsent\":%lld}",
                  i ? "," : "", JsonString(c.name).c_str(), (long long)c.acked_seq,
                  (long long)backlog(c), (long long)c.evicted_unsent);
    }
    std::printf("]}\n");
    return;
  }
  std::printf("buffer      %s (schema v%lld)\n", s.path.c_str(), (long long)s.schema_version);
  std::printf("file        %.1f MiB (+ %.1f MiB WAL)\n", s.file_bytes / 1048576.0,
              s.wal_bytes / 1048576.0);
  std::printf("events      %lld (%.1f MiB accounted)\n", (long long)s.events, s.bytes / 1048576.0);
  std::printf("seq         %lld .. %lld (last committed %lld)\n", (long long)s.first_seq,
              (long long)s.last_seq, (long long)last_committed);
  std::printf("time        %s .. %s\n", TimeOrDash(s.first_ts_us).c_str(),
              TimeOrDash(s.last_ts_us).c_str());
  std::printf("evicted     %lld (%lld for a full disk)\n", (long long)s.evicted_total,
              (long long)s.evicted_full);
  std::printf("full disk   %lld times\n", (long long)s.full_events);
  std::printf("corrupt     %lld databases quarantined\n", (long long)s.corrupt_recoveries);
  for (const UpstreamCursorStats& c : s.upstreams) {
    std::printf("upstream    %-16s acked %lld, backlog %lld, evicted before sending %lld\n",
                c.name.c_str(), (long long)c.acked_seq, (long long)backlog(c),
                (long long)c.evicted_unsent);
  }
}

}  // namespace

int RunBufferStats(const CommandSpec&, Globals& globals, const Parsed&) {
  std::string data_dir;
  if (int rc = DataDirOrExit(globals, &data_dir); rc >= 0) return rc;
  BufferStats s;
  if (Status st = ReadBufferStats(data_dir, &s); !st.ok()) {
    std::fprintf(stderr, "sluice: %s\n", st.message().c_str());
    return kExitFailure;
  }
  IgnoreSigpipe();
  PrintStats(s, globals.json);
  return FinishStdout();
}

}  // namespace cli
}  // namespace sluice
