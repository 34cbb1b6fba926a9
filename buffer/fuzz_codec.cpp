// libFuzzer target for the stored-event decoder: corrupt `body` bytes and
// corrupt rows of buffer.db must be refused (skipped, counted, reported),
// never trusted, never crash. Built with -DSLUICE_FUZZ=ON and clang
// (buffer/CMakeLists.txt).
//
// Input: byte 0 picks the mode.
//   even: the rest is one stored body. VerifyEncodedEvent decides; a body it
//         accepts is read field by field as every reader does (unaligned,
//         as SQLite hands it out), decoded as an alert, and re-encoded: the
//         re-encoding verifies and decodes to the same fields.
//   odd:  the rest is rows (FuzzedDataProvider: seq, ts, kind, sensor, body,
//         each of any SQLite type) put into the events table of a real
//         buffer.db in a temp dir; then the ring's reader, the history reader,
//         `buffer stats` and `buffer check` read it. Every event they return
//         verifies; corrupt rows are counted, never returned.
#include <fuzzer/FuzzedDataProvider.h>
#include <flatbuffers/flatbuffers.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <sanitizer/common_interface_defs.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "buffer/codec.h"
#include "buffer/history.h"
#include "buffer/inspect.h"
#include "buffer/ring.h"
#include "common/clock.h"
#include "common/event.h"
#include "common/log.h"
#include "schemas/sluice_generated.h"

using namespace sluice;

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  // Through the sanitizer's report stream: it stays open under
  // -close_fd_mask=2 (which silences the product's logs).
  __sanitizer_report_error_summary((std::string("fuzz_codec: check failed: ") + what).c_str());
  __builtin_trap();
}

std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

// Reads every field of a verified Event, as readers, the payload encoders
// and `buffer check` do.
size_t Touch(const fb::Event* e) {
  size_t n = e->seq() + static_cast<size_t>(e->ts_us()) + static_cast<size_t>(e->kind()) +
             static_cast<size_t>(e->quality());
  n += std::isnan(e->value()) ? 1 : 0;
  for (const flatbuffers::String* s :
       {e->sensor(), e->unit(), e->rule(), e->state(), e->severity(), e->message()}) {
    if (s) n += std::strlen(s->c_str()) + s->size();
  }
  if (const auto* labels = e->labels()) {
    for (const fb::Label* l : *labels) {
      if (l == nullptr) continue;
      n += Str(l->key()).size() + Str(l->value()).size();
    }
  }
  return n;
}

void FuzzBody(const uint8_t* data, size_t size) {
  // Aligned, as readers hold bodies (StoredEvent::body). Unaligned bodies
  // straight from SQLite are the rows mode's business.
  std::string body(reinterpret_cast<const char*>(data), size);
  const char* p = body.data();
  if (!VerifyEncodedEvent(p, size)) return;
  const fb::Event* e = flatbuffers::GetRoot<fb::Event>(p);
  volatile size_t sink = Touch(e);
  (void)sink;
  StoredEvent row;
  row.seq = e->seq();
  row.kind = static_cast<int>(e->kind());
  row.sensor = "row";
  row.body.assign(p, size);
  Alert a;
  if (DecodeStoredAlert(row, &a)) {
    std::string again = EncodeAlert(a);
    Check(VerifyEncodedEvent(again.data(), again.size()), "re-encoded alert verifies");
    StoredEvent row2 = row;
    row2.body = again;
    Alert b;
    Check(DecodeStoredAlert(row2, &b), "re-encoded alert decodes");
    Check(b.rule == a.rule && b.state == a.state && b.message == a.message &&
              b.labels == a.labels,
          "alert round trip");
  }
  Reading r;
  r.sensor = Str(e->sensor());
  r.unit = Str(e->unit());
  r.ts_us = e->ts_us();
  r.value = e->value();
  std::string again = EncodeReading(r);
  SetEncodedSeq(&again, e->seq());
  Check(VerifyEncodedEvent(again.data(), again.size()), "re-encoded reading verifies");
  Check(flatbuffers::GetRoot<fb::Event>(again.data())->seq() == e->seq(), "seq set in place");
}

// A temp data_dir with a buffer.db made by a real Ring (current schema), and
// a write connection the fuzzer fills rows with. Removed at exit.
struct Db {
  std::string dir;
  sqlite3* db = nullptr;
  sqlite3_stmt* insert = nullptr;

  Db() {
    char tmpl[] = "/tmp/sluice-fuzz-codec-XXXXXX";
    Check(mkdtemp(tmpl) != nullptr, "mkdtemp");
    dir = tmpl;
    RingOptions o;
    o.data_dir = dir;
    o.upstreams = {"a"};
    auto ring = Ring::Open(o, SystemClock::Get());
    Check(ring.ok(), "Ring::Open");
    Check((*ring)->Append(Record{0, 0, 1, "s", EncodeReading(Reading{"s", 1, 2, "", {}})}, 0)
              .ok(),
          "Append");
    Check((*ring)->Stop().ok(), "Ring::Stop");
    ring->reset();
    Check(sqlite3_open((dir + "/buffer.db").c_str(), &db) == SQLITE_OK, "sqlite3_open");
    Check(sqlite3_prepare_v2(db,
                             "INSERT OR REPLACE INTO events(seq, ts_us, sensor, kind, priority, "
                             "body) VALUES(?, ?, ?, ?, 0, ?)",
                             -1, &insert, nullptr) == SQLITE_OK,
          "prepare");
  }
  ~Db() {
    sqlite3_finalize(insert);
    sqlite3_close(db);
    for (const char* f : {"/buffer.db", "/buffer.db-wal", "/buffer.db-shm", "/buffer.seq",
                          "/buffer.floor", "/buffer.reserve"}) {
      ::unlink((dir + f).c_str());
    }
    ::rmdir(dir.c_str());
  }
};

// Binds column `i` as a fuzzer-chosen SQLite type: a corrupt or foreign
// file may hold any type in any column.
void BindAny(FuzzedDataProvider& in, sqlite3_stmt* st, int i) {
  switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0: sqlite3_bind_int64(st, i, in.ConsumeIntegral<int64_t>()); break;
    case 1: sqlite3_bind_double(st, i, in.ConsumeFloatingPoint<double>()); break;
    case 2: {
      std::string t = in.ConsumeRandomLengthString(64);
      sqlite3_bind_text(st, i, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
      break;
    }
    case 3: {
      std::string b = in.ConsumeRandomLengthString(512);
      sqlite3_bind_blob(st, i, b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT);
      break;
    }
    default: sqlite3_bind_null(st, i); break;
  }
}

void CheckEvents(const std::vector<StoredEvent>& events) {
  for (const StoredEvent& e : events) {
    Check(VerifyEncodedEvent(e.body.data(), e.body.size()), "returned event verifies");
  }
}

void FuzzRows(const uint8_t* data, size_t size) {
  static Db* db = [] {
    SetLogLevel(LogLevel::kError);
    static Db d;
    return &d;
  }();
  FuzzedDataProvider in(data, size);
  Check(sqlite3_exec(db->db, "BEGIN; DELETE FROM events;", nullptr, nullptr, nullptr) ==
            SQLITE_OK,
        "delete");
  for (int rows = 0; rows < 16 && in.remaining_bytes() > 0; ++rows) {
    sqlite3_reset(db->insert);
    sqlite3_clear_bindings(db->insert);
    if (in.ConsumeBool()) {
      sqlite3_bind_int64(db->insert, 1, in.ConsumeIntegral<int64_t>());
    } else {
      sqlite3_bind_int64(db->insert, 1, rows + 1);
    }
    for (int col = 2; col <= 5; ++col) BindAny(in, db->insert, col);
    (void)sqlite3_step(db->insert);  // NOT NULL and type errors are fine
  }
  sqlite3_reset(db->insert);
  Check(sqlite3_exec(db->db, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK, "commit");

  if (auto reader = RingReader::Open(db->dir); reader.ok()) {
    std::vector<StoredEvent> out;
    (void)(*reader)->ReadAfter(0, 64, &out);
    CheckEvents(out);
    for (const StoredEvent& e : out) {
      Alert a;
      (void)DecodeStoredAlert(e, &a);
    }
  }
  HistoryFilter filter;
  if (auto h = HistoryReader::Open(db->dir, filter); h.ok()) {
    HistoryRange range;
    (void)(*h)->Range(&range);
    uint64_t after = 0;
    bool done = false;
    std::vector<StoredEvent> out;
    (void)(*h)->Forward(&after, UINT64_MAX, 64, &out, &done);
    CheckEvents(out);
    uint64_t seq = 0;
    bool all = false;
    (void)(*h)->NthFromEnd(3, &seq, &all);
  }
  BufferStats stats;
  (void)ReadBufferStats(db->dir, &stats);
  BufferCheck check;
  (void)CheckBuffer(db->dir, true, &check);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if (data[0] % 2 == 0) {
    FuzzBody(data + 1, size - 1);
  } else {
    FuzzRows(data + 1, size - 1);
  }
  return 0;
}
