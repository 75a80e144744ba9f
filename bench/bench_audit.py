#!/usr/bin/env python3
"""Benchmark of `vanta audit verify` and `vanta replay` on a journal of 1,000,000+ rows.

Run:  .venv/bin/python bench/bench_audit.py [--followers 2000] [--cycles 6] [--keep DIR]
      .venv/bin/python bench/bench_audit.py --quick      # 100 followers x 3 cycles

The journal is built with the follower fan-out (not timed): one vault, 50 instruments, a
manager and N proportional followers on paper brokers, and daily cycles whose prices move
by up to +-5 % and whose signals change every day, so that most positions trade in every
cycle. Then, in the same run:
  * floor: a plain SELECT of every journal row plus SHA-256 over the very bytes the chain
    hashes (prev_hash || canonical row), prepared in advance;
  * verify: schema check + the whole hash chain + one digest (`verify(..., replay=False)`),
    reported as rows/s beside the floor;
  * replay: every command re-run into a fresh file, journals and projections compared,
    reported as events/s;
  * the full `audit verify` (all of the above) once.
Nothing here is a test; tests never time anything (tests/test_bench_smoke.py runs --quick).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import itertools
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from vanta_box.core.timeutil import DAY_US, fmt_ts, parse_ts
from vanta_box.service import accounts as accounts_service
from vanta_box.service import cycle as cycle_service
from vanta_box.service import replay as replay_module
from vanta_box.service import setup
from vanta_box.service.audit import verify
from vanta_box.service.engine import Engine
from vanta_box.service.replay import ReplayReport, replay
from vanta_box.service.venues import LiveVenues
from vanta_box.store import db, journal
from vanta_box.store.journal import GENESIS, row_bytes

SEED = 5150
T0 = "2027-02-01T00:00:00Z"


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def build(work: Path, followers: int, cycles: int, instruments: int = 50) -> Path:
    rng = random.Random(SEED)
    symbols = [f"S{i:03d}" for i in range(instruments)]
    (work / "vault.json").write_text(json.dumps({"vaults": [{
        "vault_id": "V", "label": "audit bench", "personas": ["a", "b"],
        "risk": {"max_single_pos_pct": "0.2"},
        "rebalance": {"min_order_notional": "5"},
        "mirroring": {"fee": {"type": "performance", "perf_share": "0.2"}}}]}))
    (work / "instruments.json").write_text(json.dumps([
        {"symbol": s, "asset_class": "equity", "lot_step": "1"} for s in symbols]))
    t0 = parse_ts(T0)
    lines = ["symbol,ts,price"]
    for s in symbols:
        cents = rng.randint(2_000, 20_000)
        for day in range(cycles):
            lines.append(f"{s},{fmt_ts(t0 + day * DAY_US)},{money(cents)}")
            cents = max(100, cents + cents * rng.randint(-500, 500) // 10_000)
    (work / "prices.csv").write_text("\n".join(lines) + "\n")
    packets = work / "packets"
    packets.mkdir()
    paths = [packets / "M.json"]
    paths[0].write_text(json.dumps({"packet_version": 1, "account_id": "M", "role": "manager",
                                    "vault_id": "V", "broker": {"kind": "paper",
                                                                "starting_cash": "5000000"}}))
    for n in range(followers):
        path = packets / f"F{n:05d}.json"
        path.write_text(json.dumps({
            "packet_version": 1, "account_id": f"F{n:05d}", "role": "follower",
            "vault_id": "V", "broker": {"kind": "paper",
                                        "starting_cash": str(rng.randint(50_000, 400_000))}}))
        paths.append(path)
    conn = db.connect(work / "vanta.db")
    db.migrate(conn)
    eng = Engine(conn, LiveVenues())
    eng.run(setup.vault_import_command(str(work / "vault.json"), t0))
    eng.run(setup.instruments_import_command(str(work / "instruments.json"), t0))
    eng.run(setup.prices_ingest_command(eng, str(work / "prices.csv"), t0))
    accounts_service.onboard_many(eng, [str(p) for p in paths], t0, t0, None)
    for day in range(cycles):
        at = t0 + day * DAY_US
        scores = [{"symbol": s, "score": f"0.{rng.randint(10, 99)}"}
                  for s in symbols if rng.random() < 0.7]
        (work / "signals.json").write_text(json.dumps(
            {"vault_id": "V", "as_of": fmt_ts(at), "scores": scores}))
        eng.run(setup.signals_ingest_command(eng, str(work / "signals.json"), at))
        eng.run(cycle_service.cycle_command(eng, "V", at, False))
        print(f"  cycle {day + 1}/{cycles}: journal {journal.head(conn).seq:,} rows",
              flush=True)
    conn.close()
    return work / "vanta.db"


FLOOR_SQL = "SELECT seq, ts, kind, payload, prev_hash, hash FROM journal ORDER BY seq"
FLOOR_CHUNK = 50_000  # rows whose bytes are prepared at a time (memory, not time)


def floor(path: Path) -> tuple[float, float, int]:
    """(select seconds, sha256 seconds, rows): the raw cost of reading and hashing. The
    bytes are prepared FLOOR_CHUNK rows at a time; only the hashing of them is timed."""
    conn = db.connect(path)
    try:
        select_s = float("inf")
        for _attempt in range(2):  # the first read warms the page cache, as verify's does
            start = time.perf_counter()
            collections.deque(conn.execute(FLOOR_SQL), maxlen=0)  # every row, none kept
            select_s = min(select_s, time.perf_counter() - start)
        sha = hashlib.sha256
        sha_s, rows = 0.0, 0
        prev = bytes.fromhex(GENESIS)
        cursor = conn.execute(FLOOR_SQL)
        while chunk := list(itertools.islice(cursor, FLOOR_CHUNK)):
            data = []
            for seq, ts, kind, payload, _prev_hash, stored in chunk:
                data.append(prev + row_bytes(seq, ts, kind, payload))
                prev = bytes.fromhex(stored)
            start = time.perf_counter()
            for item in data:
                sha(item).digest()
            sha_s += time.perf_counter() - start
            rows += len(chunk)
        return select_s, sha_s, rows
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="100 followers x 3 cycles")
    parser.add_argument("--keep", type=Path, default=None,
                        help="build (or reuse) the database in this directory and keep it")
    args = parser.parse_args(argv)
    if args.quick:
        args.followers, args.cycles = 100, 3
    work = args.keep or Path(tempfile.mkdtemp(prefix="vanta-bench-audit-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        path = work / "vanta.db"
        built = not path.exists()
        if built:
            print(f"building the journal: {args.followers:,} followers x {args.cycles} "
                  "cycles ...", flush=True)
            build(work, args.followers, args.cycles)
        with db.open_readonly(path) as conn:
            head = journal.head(conn)
        select_s, sha_s, rows = floor(path)
        start = time.perf_counter()
        report = verify(path, [head], with_replay=False)
        verify_s = time.perf_counter() - start
        assert report.ok, report
        # replay side by side: in one process, then with the forked helpers (write-behind
        # writer and source job) where they are used (a second core), each measured twice,
        # alternated, the better of each kept
        times: dict[bool, float] = {}
        for helpers in (False, True, False, True) if replay_module.helpers_pay() else (False,):
            replayed, seconds = timed_replay(path, work / "replayed.db", helpers)
            times[helpers] = min(seconds, times.get(helpers, seconds))
        replay_s = times[False]
        start = time.perf_counter()
        full = verify(path, [head])
        full_s = time.perf_counter() - start
        assert full.ok
        floor_s = select_s + sha_s
        print()
        print(f"audit benchmark: journal of {rows:,} rows ({args.followers:,} followers, "
              f"{args.cycles} cycles, 50 instruments), {db.file_size(path) / 1_048_576:,.0f} "
              "MiB")
        print(f"floor:  SELECT {select_s:,.2f} s + SHA-256 of the same bytes {sha_s:,.2f} s = "
              f"{floor_s:,.2f} s -> {rows / floor_s:,.0f} rows/s")
        print(f"verify (schema + chain + digest): {verify_s:,.2f} s -> "
              f"{rows / verify_s:,.0f} rows/s, {verify_s / floor_s:,.2f}x the floor")
        print(f"replay, one process: {replayed.commands:,} commands, {replayed.events:,} "
              f"events in {replay_s:,.2f} s -> {replayed.events / replay_s:,.0f} events/s")
        if True in times:
            gain = replay_s / times[True] - 1
            print(f"replay with forked helpers: {times[True]:,.2f} s -> "
                  f"{replayed.events / times[True]:,.0f} events/s ({gain:+.0%} against one "
                  "process)")
        print(f"full audit verify (incl. replay): {full_s:,.2f} s")
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        helpers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS {own:,.0f} MiB (this process{', build included' if built else ''}),"
              f" {helpers:,.0f} MiB (its largest forked helper)")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def timed_replay(path: Path, out: Path, helpers: bool) -> tuple[ReplayReport, float]:
    """One replay of ``path`` into a fresh ``out``; (its report, seconds)."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(out) + suffix).unlink(missing_ok=True)
    pay = replay_module.helpers_pay
    replay_module.helpers_pay = lambda: helpers and pay()  # type: ignore[assignment]
    try:
        start = time.perf_counter()
        with db.open_readonly(path) as conn:
            replayed = replay(conn, out)
        seconds = time.perf_counter() - start
    finally:
        replay_module.helpers_pay = pay  # type: ignore[assignment]
    assert replayed.identical, replayed
    return replayed, seconds


if __name__ == "__main__":
    sys.exit(main())
