#!/bin/sh
# check_structure_planted: scripts/check-structure passes on a copy of some
# real sources, then fails (exit 1) on the same copy with violations
# planted, naming each one as FILE:LINE: RULE, all of them in one run; what a
# rule allows (SQLite in bench/) stays unreported.
#   sh tests/structure/check_structure_test.sh SOURCE_DIR
set -eu
SRC=${1:?usage: check_structure_test.sh SOURCE_DIR}
CHECK="$SRC/scripts/check-structure"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
OUT="$T/out.txt"

fail() {
  echo "FAIL: $*"
  echo "--- check-structure said:"
  cat "$OUT"
  exit 1
}
copy() {
  for f; do
    mkdir -p "$T/$(dirname "$f")"
    cp "$SRC/$f" "$T/$f"
  done
}
# Appends an include to FILE; prints the line it lands on.
plant() {
  printf '%s\n' "$2" >> "$T/$1"
  wc -l < "$T/$1" | tr -d ' '
}
expect() {
  grep -q "^$1" "$OUT" || fail "not reported: $1"
}

copy agent/control/control_client.cpp agent/control/control_client.h \
  agent/cli/cli_live.cpp agent/uplink/uplink.h buffer/ring.h drivers/driver.h \
  common/status.h rules/engine.h

"$CHECK" "$T" > "$OUT" 2>&1 || fail "the clean copy was rejected"

l1=$(plant agent/control/control_client.cpp '#include "agent/daemon/daemon.h"')
l2=$(plant agent/cli/cli_live.cpp '#include "agent/uplink/uplink.h"')
l3=$(plant drivers/driver.h '#include <sqlite3.h>')
l4=$(plant buffer/ring.h '#include <mosquitto.h>')
l5=$(plant rules/engine.h '#include "buffer/store.h"')
mkdir -p "$T/bench"
printf '#include <sqlite3.h>\n' > "$T/bench/baseline.cpp"  # allowed
seq 600 | sed 's|^|// |' > "$T/common/big.cpp"

set +e
"$CHECK" "$T" > "$OUT" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "exit status $rc, expected 1"
expect "agent/control/control_client.cpp:$l1: control-common-only: includes agent/daemon/daemon.h"
expect "agent/cli/cli_live.cpp:$l2: cli-no-daemon: includes agent/uplink/uplink.h"
expect "drivers/driver.h:$l3: drivers-no-db: includes <sqlite3.h>"
expect "drivers/driver.h:$l3: ring-sealed: includes <sqlite3.h>"
expect "buffer/ring.h:$l4: ring-alone: includes <mosquitto.h>"
expect "rules/engine.h:$l5: rules-alone: includes buffer/store.h"
expect "rules/engine.h:$l5: ring-sealed: includes buffer/store.h"
expect "common/big.cpp:551: file-size: 600 lines"
! grep -q '^bench/' "$OUT" || fail "bench/ may include <sqlite3.h>"
n=$(grep -c '^[a-z].*:[0-9]*: ' "$OUT")
[ "$n" = 8 ] || fail "$n violations reported, expected 8"
echo "ok: 8 planted violations reported, exit status 1"
