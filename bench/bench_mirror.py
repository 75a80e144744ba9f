#!/usr/bin/env python3
"""Benchmark of the mirroring fan-out: one vault, many proportional followers.

Run:  .venv/bin/python bench/bench_mirror.py [--followers 10000] [--instruments 50]
      .venv/bin/python bench/bench_mirror.py --quick     # 200 followers x 10 instruments

Scenario (seeded, integer arithmetic only):
  * one vault, 50 instruments (every fifth crypto with lot step 0.0001, the rest equities
    with lot step 1), every instrument with a positive score in one signal file, so each
    account holds every instrument; rebalance drift band 0.25 % and minimum order 10 USD;
  * one manager (paper, 10,000,000 cash) and N proportional followers on paper brokers
    (starting cash 20,000 .. 500,000), onboarded together (not timed);
  * cycle 1 (timed): every account buys its 50 targets, so N x 50 child orders and fills;
  * raw floor (measured right after cycle 1, same run): a plain apsw executemany, in one
    transaction with the pragmas of vanta_box.store.db.connect(), of the rows cycle 1 wrote:
    its journal rows (read back, into a journal table without triggers) and the projection
    rows (orders, fills, positions, allocations, cycles and the accounts rows, read back,
    into copies of those tables with the same keys and indexes);
  * cycle 2 (timed): every price moves by up to +-1 %, signals unchanged.

Nothing here is a test; tests never time anything (tests/test_bench_smoke.py runs --quick).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from vanta_box.core.timeutil import DAY_US, fmt_ts, parse_ts
from vanta_box.service import accounts as accounts_service
from vanta_box.service import cycle as cycle_service
from vanta_box.service import setup
from vanta_box.service.engine import Engine
from vanta_box.service.venues import LiveVenues
from vanta_box.store import db, journal

SEED = 20261124
T0 = "2027-01-04T00:00:00Z"
PROJECTIONS = ("orders", "fills", "positions", "allocations", "cycles", "accounts")
FLOOR_CHUNK = 50_000  # rows read at a time for the floor (memory, not time)


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def generate(directory: Path, followers: int, instruments: int) -> list[str]:
    rng = random.Random(SEED)
    symbols = [f"S{i:03d}" for i in range(instruments)]
    crypto = {s for i, s in enumerate(symbols) if i % 5 == 4}
    (directory / "vault.json").write_text(json.dumps({"vaults": [{
        "vault_id": "V", "label": "bench", "personas": ["a", "b"],
        "risk": {"max_single_pos_pct": "0.1"},
        "rebalance": {"drift_band": "0.0025", "min_order_notional": "10"},
        "mirroring": {"mode": "proportional", "min_account_equity": "1000",
                      "fee": {"type": "performance", "perf_share": "0.2"}}}]}))
    (directory / "instruments.json").write_text(json.dumps([
        {"symbol": s, "asset_class": "crypto" if s in crypto else "equity",
         "lot_step": "0.0001" if s in crypto else "1", "min_notional": "1"} for s in symbols]))
    t0, t1 = parse_ts(T0), parse_ts(T0) + DAY_US
    lines = ["symbol,ts,price"]
    for s in symbols:
        cents = rng.randint(2_000, 50_000) * (100 if s in crypto else 1)
        moved = cents + cents * rng.randint(-100, 100) // 10_000  # up to +-1 %
        lines += [f"{s},{fmt_ts(t0)},{money(cents)}", f"{s},{fmt_ts(t1)},{money(moved)}"]
    (directory / "prices.csv").write_text("\n".join(lines) + "\n")
    (directory / "signals.json").write_text(json.dumps({
        "vault_id": "V", "as_of": T0, "scores": [
            {"symbol": s, "score": f"0.{rng.randint(10, 99)}"} for s in symbols]}))
    packets = directory / "packets"
    packets.mkdir()
    paths = []
    manager = {"packet_version": 1, "account_id": "M", "role": "manager", "vault_id": "V",
               "broker": {"kind": "paper", "starting_cash": "10000000"}}
    (packets / "M.json").write_text(json.dumps(manager))
    paths.append(str(packets / "M.json"))
    for n in range(followers):
        packet = {"packet_version": 1, "account_id": f"F{n:05d}", "role": "follower",
                  "vault_id": "V", "broker": {"kind": "paper",
                                              "starting_cash": str(rng.randint(20_000, 500_000))},
                  "mirroring": {"mode": "proportional", "multiplier": "1"}}
        path = packets / f"F{n:05d}.json"
        path.write_text(json.dumps(packet))
        paths.append(str(path))
    return paths


def floor(conn: db.Connection, first_seq: int, last_seq: int, directory: Path
          ) -> tuple[float, int]:
    """Raw apsw insert of the same journal and projection rows; returns (seconds, rows).
    The rows are read FLOOR_CHUNK at a time between the executemany calls of the one
    transaction (not timed: only BEGIN, the inserts and COMMIT are)."""
    sources = [("INSERT INTO journal VALUES (?, ?, ?, ?, ?, ?)", conn.execute(
        "SELECT seq, ts, kind, payload, prev_hash, hash FROM journal WHERE seq BETWEEN ? AND ?"
        " ORDER BY seq", (first_seq, last_seq)))]
    schema = []
    for table in PROJECTIONS:
        for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE tbl_name = ? AND"
                                   " sql IS NOT NULL ORDER BY type = 'index', name", (table,)):
            schema.append(re.sub(r"\s+REFERENCES\s+\w+\s*\([^)]*\)", "", str(sql)))
        width = len(conn.execute(f"PRAGMA table_info({table})").fetchall())
        sources.append((f"INSERT INTO {table} VALUES ({','.join('?' * width)})",
                        conn.execute(f"SELECT * FROM {table}")))
    path = directory / "floor.db"
    fconn = db.connect(path)
    rows = 0
    try:
        fconn.execute("CREATE TABLE journal (seq INTEGER PRIMARY KEY, ts TEXT NOT NULL,"
                      " kind TEXT NOT NULL, payload TEXT NOT NULL, prev_hash TEXT NOT NULL,"
                      " hash TEXT NOT NULL) STRICT")
        for sql in schema:
            fconn.execute(sql)
        start = time.perf_counter()
        fconn.execute("BEGIN IMMEDIATE")
        seconds = time.perf_counter() - start
        for sql, cursor in sources:
            while chunk := list(itertools.islice(cursor, FLOOR_CHUNK)):
                start = time.perf_counter()
                fconn.executemany(sql, chunk)
                seconds += time.perf_counter() - start
                rows += len(chunk)
        start = time.perf_counter()
        fconn.execute("COMMIT")
        seconds += time.perf_counter() - start
    finally:
        fconn.close()
    return seconds, rows


def timed_cycle(eng: Engine, at: int) -> tuple[float, float, cycle_service.CycleReport, int, int]:
    first = journal.head(eng.conn).seq + 1
    wall, cpu = time.perf_counter(), time.process_time()
    (report,) = eng.run(cycle_service.cycle_command(eng, "V", at, False))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, report, first, journal.head(eng.conn).seq


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--instruments", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="200 followers x 10 instruments")
    args = parser.parse_args(argv)
    if args.quick:
        args.followers, args.instruments = 200, 10
    work = Path(tempfile.mkdtemp(prefix="vanta-bench-mirror-"))
    try:
        print(f"generating {args.followers:,} follower packets ...", flush=True)
        paths = generate(work, args.followers, args.instruments)
        conn = db.connect(work / "vanta.db")
        db.migrate(conn)
        eng = Engine(conn, LiveVenues())
        t0 = parse_ts(T0)
        start = time.perf_counter()
        eng.run(setup.vault_import_command(str(work / "vault.json"), t0))
        eng.run(setup.instruments_import_command(str(work / "instruments.json"), t0))
        eng.run(setup.prices_ingest_command(eng, str(work / "prices.csv"), t0))
        eng.run(setup.signals_ingest_command(eng, str(work / "signals.json"), t0))
        accounts_service.onboard_many(eng, paths, t0, t0, None)
        print(f"setup (not timed): {time.perf_counter() - start:,.1f} s", flush=True)
        print("cycle 1 (timed) ...", flush=True)
        wall1, cpu1, r1, first, last = timed_cycle(eng, t0)
        print("raw floor ...", flush=True)
        floor_s, floor_rows = floor(conn, first, last, work)
        print("cycle 2 (timed) ...", flush=True)
        wall2, cpu2, r2, first2, last2 = timed_cycle(eng, t0 + DAY_US)
        conn.close()
        size = db.file_size(work / "vanta.db")
        journal_rows = last - first + 1
        print()
        print(f"mirroring benchmark: 1 vault, {args.instruments} instruments, 1 manager + "
              f"{args.followers:,} proportional followers (paper), seed {SEED}")
        print(f"cycle 1: {r1.child_orders:,} child orders + {r1.orders} orders, "
              f"{r1.fills:,} fills, {r1.skips:,} skips")
        print(f"  wall {wall1:,.2f} s (cpu {cpu1:,.2f} s); "
              f"{r1.child_orders / wall1:,.0f} child orders/s")
        print(f"  rows written: {journal_rows:,} journal + {floor_rows - journal_rows:,} "
              f"projection = {floor_rows:,}")
        print(f"  raw floor (same rows, plain apsw executemany, one transaction): "
              f"{floor_s:,.2f} s -> ratio {wall1 / floor_s:,.2f}x")
        print(f"cycle 2 (prices +-1 %, same signals): {r2.child_orders:,} child orders, "
              f"{r2.fills:,} fills, {r2.skips:,} skips, {last2 - first2 + 1:,} journal rows")
        print(f"  wall {wall2:,.2f} s (cpu {cpu2:,.2f} s)")
        print(f"database: {size / 1_048_576:,.0f} MiB")
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB"
              " (this process: setup, both cycles and the floor)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
