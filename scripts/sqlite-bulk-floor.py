#!/usr/bin/env python3
"""What SQLite itself takes to store a bulk import, without the service.

Usage: scripts/sqlite-bulk-floor.py [BINARY]   (default: target/release/touchpoint-tracker)

Migrates a fresh SQLite file with the service's binary (so the schema, its
indexes and foreign keys are the service's own), then writes what a batch
import of 5,000 survey answers writes, 20 times, one transaction each, with
the writer's settings (WAL, synchronous = NORMAL, foreign keys, 64 MiB
cache): 500 new candidates, 5,000 encounters, and their audit events (one
for the run of candidates, one for the run of encounters, as the service
writes them). It prints the rate of each piece alone and of all together, from
Python's sqlite3, whose per-row overhead is counted in: a floor the
service's bulk import cannot beat while it writes these rows.
"""

import os
import sqlite3
import subprocess
import sys
import tempfile
import time

BATCHES = 20
BATCH = 5000
NOW = "2026-11-27T10:00:00.123456+00:00"


def fresh_database(binary, directory):
    path = os.path.join(directory, "floor.db")
    env = dict(os.environ, DATABASE_URL=f"sqlite://{path}", RUST_LOG="warn")
    for args in (["migrate"], ["org", "create", "acme", "Acme"]):
        subprocess.run([binary, *args], env=env, check=True, capture_output=True)
    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON", "cache_size = -65536"):
        connection.execute(f"PRAGMA {pragma}")
    connection.executemany(
        "INSERT INTO touchpoints (organization_id, name, kind, channel, stage, created_at, updated_at) "
        "VALUES (1, ?, 'true', 'review_site', 'awareness', ?, ?)",
        [(f"tp{i}", NOW, NOW) for i in range(60)],
    )
    return connection


def write(connection, pieces):
    touchpoints = [row[0] for row in connection.execute("SELECT id FROM touchpoints")]
    started = time.perf_counter()
    for batch in range(BATCHES):
        connection.execute("BEGIN IMMEDIATE")
        first = batch * BATCH
        candidates = []
        if "candidates" in pieces:
            connection.executemany(
                "INSERT INTO candidates (organization_id, external_ref, stage, created_at, updated_at) "
                "VALUES (1, ?, 'awareness', ?, ?) ON CONFLICT DO NOTHING",
                [(f"R{batch}-{k}", NOW, NOW) for k in range(BATCH // 10)],
            )
            candidates = [row[0] for row in connection.execute(
                "SELECT id FROM candidates WHERE organization_id = 1 AND external_ref LIKE ?", (f"R{batch}-%",))]
        if "encounters" in pieces:
            connection.executemany(
                "INSERT INTO encounters (organization_id, candidate_id, touchpoint_id, occurred_at, source, "
                "score, note, recorded_by_key_id, change_seq, created_at, updated_at) "
                "VALUES (1, ?, ?, ?, 'candidate_survey', ?, NULL, 1, ?, ?, ?)",
                [(candidates[k // 10], touchpoints[(first + k) % 60],
                  f"2026-{1 + (first + k) % 10:02d}-{1 + (first + k) % 28:02d}T10:00:00+00:00",
                  (first + k) % 11, batch + 1, NOW, NOW) for k in range(BATCH)],
            )
        if "audit runs" in pieces:
            connection.executemany(
                "INSERT INTO audit_events (organization_id, occurred_at, actor_key_id, actor_name, resource_type, "
                "resource_id, last_resource_id, action, changed_fields, subject_candidate_id) "
                "VALUES (1, ?, 1, 'bench', ?, ?, ?, 'create', ?, NULL)",
                [(NOW, "candidate", first // 10 + 1, first // 10 + BATCH // 10, '["external_ref","stage"]'),
                 (NOW, "encounter", first + 1, first + BATCH,
                  '["candidate_id","touchpoint_id","occurred_at","source","score"]')],
            )
        connection.execute("COMMIT")
    return (time.perf_counter() - started) / BATCHES


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/touchpoint-tracker"
    print(f"| SQLite alone, {BATCHES} batches of {BATCH:,} | ms a batch | encounters/s |")
    print("|---|---|---|")
    for pieces in (("candidates", "encounters"), ("candidates", "encounters", "audit runs")):
        with tempfile.TemporaryDirectory() as directory:
            seconds = write(fresh_database(binary, directory), pieces)
        print(f"| {' + '.join(pieces)} | {seconds * 1000:.1f} | {BATCH / seconds:,.0f} |")


if __name__ == "__main__":
    main()
