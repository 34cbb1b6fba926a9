#!/usr/bin/env python3
"""Generates the golden corrupt buffer.db files in this directory.

Run from anywhere: python3 make_golden.py. Deterministic; the outputs are
committed, so tests never depend on this script or on Python.

  garbage_header.db      valid database whose first 100 bytes are garbage
  short_garbage.db       300 bytes that are not a database at all
  truncated.db           valid 100+ page database cut off mid-page
  corrupt_events_page.db valid database with one events b-tree leaf page
                         overwritten with garbage
"""
import os
import sqlite3

HERE = os.path.dirname(os.path.abspath(__file__))

SCHEMA = """
CREATE TABLE events(seq INTEGER PRIMARY KEY, ts_us INTEGER NOT NULL,
  sensor TEXT NOT NULL, kind INTEGER NOT NULL, priority INTEGER NOT NULL,
  body BLOB NOT NULL);
CREATE INDEX events_evict ON events(priority, seq);
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE cursors(upstream TEXT PRIMARY KEY, acked_seq INTEGER NOT NULL,
  evicted_unsent INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL)
  WITHOUT ROWID;
PRAGMA user_version = 2;
"""


def make_valid(path, rows=1000):
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.executemany(
        "INSERT INTO events VALUES(?, ?, ?, 0, 0, ?)",
        [(i, 1764075600000000 + i, "boiler.temp", bytes([i % 251]) * 100)
         for i in range(1, rows + 1)])
    db.execute("INSERT INTO meta VALUES('next_seq', ?)", (rows + 1,))
    db.execute("INSERT INTO meta VALUES('row_count', ?)", (rows,))
    db.execute("INSERT INTO meta VALUES('row_bytes', ?)", (rows * 151,))
    db.commit()
    leaves = [r[0] for r in db.execute(
        "SELECT pageno FROM dbstat WHERE name='events' AND pagetype='leaf' "
        "ORDER BY pageno")]
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    return leaves, page_size


def patch(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def garbage(n):
    return bytes((i * 37 + 11) % 256 for i in range(n))


def main():
    p = os.path.join(HERE, "garbage_header.db")
    make_valid(p, rows=50)
    patch(p, 0, garbage(100))

    with open(os.path.join(HERE, "short_garbage.db"), "wb") as f:
        f.write(garbage(300))

    p = os.path.join(HERE, "truncated.db")
    make_valid(p)
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.truncate(size // 3 + 1000)

    p = os.path.join(HERE, "corrupt_events_page.db")
    leaves, page_size = make_valid(p)
    victim = leaves[len(leaves) // 2]
    patch(p, (victim - 1) * page_size, garbage(page_size))


if __name__ == "__main__":
    main()
