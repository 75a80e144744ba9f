#!/usr/bin/env python3
"""Benchmark of the daily cycle, driven in-process like `vanta demo` does.

Run:  .venv/bin/python bench/bench_cycle.py [--instruments 500] [--days 250] [--home DIR]
      .venv/bin/python bench/bench_cycle.py --quick          # 50 instruments x 20 days

What happens:
  1. Synthetic inputs are generated into a temporary directory with a fixed RNG seed and
     integer arithmetic only (no floats ever reach a decimal string): one vault, N
     instruments (4 in 5 equities with lot_step 1, 1 in 5 crypto with lot_step 0.0001),
     one daily price per instrument and day (random walk), a signal file every 5 days with
     scores in [-1, 1] over most of the symbols, and one manager API packet (paper broker).
  2. They are ingested through the same command builders the CLI and `vanta demo` use
     (vault import, instruments import, prices ingest, signals ingest, onboarding), run by
     ``Engine.run``. This setup is NOT timed (its duration is printed for information).
  3. ONLY the loop of daily cycles is timed: one ``cycle run`` per day at that day's time.
  4. A raw floor is measured in the same run: a plain apsw insert, with the pragmas of
     ``vanta_box.store.db.connect()``, into a fresh file next to vanta.db, of the same rows
     in the same shapes, with one executemany per table in ONE transaction:
       * the journal rows the cycles wrote (read back: same seq, ts, kind, payload,
         prev_hash, hash) into an identical ``journal`` table without its triggers;
       * the projection rows the cycles left (rows of cycles, allocations, orders, fills
         and positions, read back) into copies of those tables (same columns, primary
         keys and indexes; foreign-key clauses removed).

Definitions printed:
  * journal rows        = journal head seq after the loop - before the loop.
  * projection rows     = rows added by the loop to cycles + allocations + orders + fills +
                          positions (count after - count before). This is what the floor
                          inserts.
  * projection writes   = SQLite total_changes() during the loop minus the journal rows:
                          every row inserted, updated or deleted in any projection table
                          (includes order status updates, position upserts/deletes,
                          account cash and vault state updates). Informational.

This file is a script, not a test: pytest never collects it (tests/ is the only test path,
and the name does not match test_*.py). tests/test_bench_smoke.py runs it with --quick.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from vanta_box.core.timeutil import DAY_US, fmt_ts, parse_ts
from vanta_box.home import Home
from vanta_box.keystore import Keystore
from vanta_box.service import accounts as accounts_service
from vanta_box.service import cycle as cycle_service
from vanta_box.service import setup
from vanta_box.service.engine import Engine
from vanta_box.service.venues import LiveVenues
from vanta_box.store import db, journal

SEED = 20260101
VAULT_ID = "V_BENCH"
MANAGER_ID = "M_BENCH"
STARTING_CASH = "10000000"
PERSONAS = ("risk_averse", "contrarian", "aggressive")
SIGNAL_EVERY_DAYS = 5
START_DAY = "2027-01-04T00:00:00Z"  # setup happens at this moment; day 0 is the day after
PROJECTION_TABLES = ("cycles", "allocations", "orders", "fills", "positions")
FLOOR_REPEATS = 3


# ---------------------------------------------------------------- input generation


def _dec(units: int, places: int) -> str:
    """An integer count of 10^-places units as a decimal string, without floats."""
    sign = "-" if units < 0 else ""
    units = abs(units)
    if places == 0:
        return f"{sign}{units}"
    whole, frac = divmod(units, 10**places)
    return f"{sign}{whole}.{frac:0{places}d}"


@dataclass
class Inputs:
    directory: Path
    vault: Path
    instruments: Path
    prices: Path
    packet: Path
    signals: list[Path] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    price_rows: int = 0
    score_rows: int = 0


def generate_inputs(directory: Path, n_instruments: int, n_days: int, t0: int) -> Inputs:
    rng = random.Random(SEED)
    directory.mkdir(parents=True, exist_ok=True)
    inputs = Inputs(directory, directory / "vault.json", directory / "instruments.json",
                    directory / "prices.csv", directory / "M_BENCH.json")

    vault = {"vaults": [{
        "vault_id": VAULT_ID, "label": "Benchmark vault", "base_currency": "USD",
        "crypto_enabled": True, "fiat_enabled": True, "personas": list(PERSONAS),
        "risk": {"max_drawdown": "0.5", "max_single_pos_pct": "0.05", "cash_buffer": "0.02"},
        "rebalance": {"drift_band": "0.0005", "min_order_notional": "25"},
        "mirroring": {"mode": "proportional", "min_account_equity": "5000",
                      "fee": {"type": "performance_or_flat", "flat_usd": "2000",
                              "perf_share": "0.20"}},
        "paper": {"slippage_bps": "5", "commission_bps": "1"},
    }]}
    inputs.vault.write_text(json.dumps(vault, indent=2), encoding="utf-8")

    # Instruments: every 5th one is crypto. Prices are integers in units of 10^-places.
    instruments = []
    walk: list[tuple[str, int, int]] = []  # (symbol, units, places)
    for i in range(n_instruments):
        if i % 5 == 4:
            symbol = f"C{i:04d}/USD"
            instruments.append({"symbol": symbol, "asset_class": "crypto",
                                "lot_step": "0.0001", "min_notional": "10"})
            walk.append((symbol, rng.randint(5, 60_000) * 10_000, 4))  # 5 .. 60000 USD
        else:
            symbol = f"EQ{i:04d}"
            instruments.append({"symbol": symbol, "asset_class": "equity",
                                "lot_step": "1", "min_notional": "1"})
            walk.append((symbol, rng.randint(5, 900) * 100, 2))  # 5 .. 900 USD
    inputs.symbols = [s for s, _u, _p in walk]
    inputs.instruments.write_text(json.dumps(instruments, indent=2), encoding="utf-8")

    # Daily prices, one per instrument and day, at the day's 00:00Z (the cycle's time).
    lines = ["symbol,ts,price"]
    units = [u for _s, u, _p in walk]
    for day in range(n_days):
        stamp = fmt_ts(t0 + (day + 1) * DAY_US)
        for k, (symbol, _u0, places) in enumerate(walk):
            # A step of -3% .. +3.1% in basis points, integer arithmetic only.
            units[k] = max(1, units[k] * (10_000 + rng.randint(-300, 310)) // 10_000)
            lines.append(f"{symbol},{stamp},{_dec(units[k], places)}")
            inputs.price_rows += 1
    inputs.prices.write_text("\n".join(lines) + "\n", encoding="utf-8")

    # A new signal file every 5 days over 60-90 % of the symbols; some scores tagged with
    # a persona, most not (a score without persona belongs to every persona).
    sig_dir = directory / "signals"
    sig_dir.mkdir(exist_ok=True)
    for day in range(0, n_days, SIGNAL_EVERY_DAYS):
        as_of = fmt_ts(t0 + (day + 1) * DAY_US)
        share = rng.randint(60, 90)
        scores = []
        for symbol in inputs.symbols:
            if rng.randint(1, 100) > share:
                continue
            entry = {"symbol": symbol, "score": _dec(rng.randint(-100, 100), 2)}
            pick = rng.randint(0, 5)
            if pick < len(PERSONAS):
                entry["persona"] = PERSONAS[pick]
            scores.append(entry)
        path = sig_dir / f"{as_of[:10]}.json"
        path.write_text(json.dumps({"vault_id": VAULT_ID, "as_of": as_of, "scores": scores},
                                   indent=1), encoding="utf-8")
        inputs.signals.append(path)
        inputs.score_rows += len(scores)

    packet = {"packet_version": 1, "account_id": MANAGER_ID, "role": "manager",
              "vault_id": VAULT_ID, "broker": {"kind": "paper", "starting_cash": STARTING_CASH},
              "accepted_at": fmt_ts(t0)}
    inputs.packet.write_text(json.dumps(packet, indent=2), encoding="utf-8")
    return inputs


# ---------------------------------------------------------------- setup and timed loop


def ingest(eng: Engine, home: Home, inputs: Inputs, t0: int) -> None:
    eng.run(setup.vault_import_command(str(inputs.vault), t0))
    eng.run(setup.instruments_import_command(str(inputs.instruments), t0))
    eng.run(setup.prices_ingest_command(eng, str(inputs.prices), t0))
    # Signal files carry their own as_of; a cycle uses the newest one not after its time,
    # so ingesting them all up front keeps the timed loop made of cycles only.
    for path in inputs.signals:
        eng.run(setup.signals_ingest_command(eng, str(path), t0))
    keystore = Keystore(home.keystore_path, passphrase="")
    command, _packet = accounts_service.onboard_command(eng, str(inputs.packet), t0, t0,
                                                        keystore)
    eng.run(command)


def _count(conn: db.Connection, table: str) -> int:
    ((count,),) = conn.execute(f"SELECT count(*) FROM {table}").fetchall()
    return int(str(count))


@dataclass
class LoopResult:
    cycles: int
    seconds: float
    per_cycle: list[float]
    journal_rows: int
    first_seq: int
    last_seq: int
    projection_rows: dict[str, int]
    projection_writes: int
    orders: int
    fills: int
    skips: int


def run_cycles(eng: Engine, t0: int, n_days: int) -> LoopResult:
    conn = eng.conn
    seq_before = journal.head(conn).seq
    counts_before = {t: _count(conn, t) for t in PROJECTION_TABLES}
    changes_before = conn.total_changes()
    per_cycle: list[float] = []
    cycles = orders = fills = skips = 0
    clock = time.perf_counter
    start = clock()
    for day in range(n_days):
        at = t0 + (day + 1) * DAY_US
        c0 = clock()
        reports = eng.run(cycle_service.cycle_command(eng, None, at, False))
        per_cycle.append(clock() - c0)
        cycles += len(reports)
        for r in reports:
            orders += r.orders + r.child_orders
            fills += r.fills
            skips += r.skips
    seconds = clock() - start
    seq_after = journal.head(conn).seq
    writes = conn.total_changes() - changes_before - (seq_after - seq_before)
    counts = {t: _count(conn, t) - counts_before[t] for t in PROJECTION_TABLES}
    return LoopResult(cycles, seconds, per_cycle, seq_after - seq_before, seq_before + 1,
                      seq_after, counts, writes, orders, fills, skips)


# ---------------------------------------------------------------- raw floor


_JOURNAL_TABLE = (
    "CREATE TABLE journal (seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, kind TEXT NOT NULL,"
    " payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL) STRICT"
)


def _floor_schema(conn: db.Connection) -> list[str]:
    """CREATE statements of the projection tables and their indexes, without FK clauses."""
    marks = ",".join("?" * len(PROJECTION_TABLES))
    rows = conn.execute(
        f"SELECT type, sql FROM sqlite_master WHERE tbl_name IN ({marks}) AND sql IS NOT NULL"
        " ORDER BY type = 'index', name", PROJECTION_TABLES).fetchall()
    out = []
    for _type, sql in rows:
        out.append(re.sub(r"\s+REFERENCES\s+\w+\s*\([^)]*\)", "", str(sql)))
    return out


@dataclass
class FloorResult:
    seconds: float
    journal_seconds: float
    rows: int
    size: int


def measure_floor(conn: db.Connection, loop: LoopResult, directory: Path) -> FloorResult:
    journal_rows = conn.execute(
        "SELECT seq, ts, kind, payload, prev_hash, hash FROM journal"
        " WHERE seq BETWEEN ? AND ? ORDER BY seq", (loop.first_seq, loop.last_seq)).fetchall()
    schema = _floor_schema(conn)
    tables = []
    for table in PROJECTION_TABLES:
        rows = conn.execute(f"SELECT * FROM {table}").fetchall()
        if rows:
            marks = ",".join("?" * len(rows[0]))
            tables.append((f"INSERT INTO {table} VALUES ({marks})", rows))
    total_rows = len(journal_rows) + sum(len(r) for _sql, r in tables)

    best: FloorResult | None = None
    for attempt in range(FLOOR_REPEATS):
        path = directory / f".bench-floor-{attempt}.db"
        _remove_db(path)
        fconn = db.connect(path)  # the very same pragmas as the product's connections
        try:
            fconn.execute(_JOURNAL_TABLE)
            for sql in schema:
                fconn.execute(sql)
            t0 = time.perf_counter()
            fconn.execute("BEGIN IMMEDIATE")
            fconn.executemany("INSERT INTO journal (seq, ts, kind, payload, prev_hash, hash)"
                              " VALUES (?, ?, ?, ?, ?, ?)", journal_rows)
            t1 = time.perf_counter()
            for sql, rows in tables:
                fconn.executemany(sql, rows)
            fconn.execute("COMMIT")
            t2 = time.perf_counter()
        finally:
            fconn.close()
        result = FloorResult(t2 - t0, t1 - t0, total_rows, db.file_size(path))
        _remove_db(path)
        if best is None or result.seconds < best.seconds:
            best = result
    assert best is not None
    return best


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


# ---------------------------------------------------------------- output


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _s(value: float) -> str:
    return f"{value:,.3f}"


def _mb(size: int) -> str:
    return f"{size / 1_048_576:,.1f} MiB"


def _ratio(ours: float, floor: float) -> str:
    if not ours or not floor:
        return "-"
    return f"{ours / floor:.4f} (1/{floor / ours:,.0f})"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                          strict=True)]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report(args: argparse.Namespace, inputs: Inputs, setup_s: float, loop: LoopResult,
           floor: FloorResult, db_size: int, kinds: list[tuple[str, int]]) -> str:
    jr, pr = loop.journal_rows, sum(loop.projection_rows.values())
    ours_rows = jr + pr
    ours_jps = jr / loop.seconds if loop.seconds else 0.0
    floor_rps = floor.rows / floor.seconds if floor.seconds else 0.0
    floor_jps = jr / floor.journal_seconds if floor.journal_seconds else 0.0
    ours_rps = ours_rows / loop.seconds if loop.seconds else 0.0
    cps = loop.cycles / loop.seconds if loop.seconds else 0.0
    tenth = max(1, len(loop.per_cycle) // 10)
    first = sum(loop.per_cycle[:tenth]) / tenth
    last = sum(loop.per_cycle[-tenth:]) / tenth

    out = [
        f"vanta-box cycle benchmark: {args.instruments} instruments x {args.days} days, "
        f"1 vault, 1 manager (paper, {STARTING_CASH} cash), seed {SEED}",
        f"inputs: {inputs.price_rows:,} prices, {len(inputs.signals)} signal files "
        f"({inputs.score_rows:,} scores); setup (not timed) {setup_s:,.1f} s",
        f"cycle loop: {loop.orders:,} orders, {loop.fills:,} fills, {loop.skips:,} skips",
        "",
        _table([
            ("measure", "vanta-box cycles", f"raw floor (best of {FLOOR_REPEATS})",
             "ratio"),
            ("cycles", _n(loop.cycles), "-", ""),
            ("wall time, s", _s(loop.seconds), _s(floor.seconds),
             f"{loop.seconds / floor.seconds:,.1f}x slower" if floor.seconds else "-"),
            ("cycles/s", f"{cps:,.2f}", "-", ""),
            ("journal rows", _n(jr), _n(jr), ""),
            ("projection rows", _n(pr), _n(pr), ""),
            ("journal rows/s", _n(ours_jps), _n(floor_jps),
             _ratio(ours_jps, floor_jps)),
            ("all rows/s", _n(ours_rps), _n(floor_rps),
             _ratio(ours_rps, floor_rps)),
            ("database size", _mb(db_size), _mb(floor.size), ""),
        ]),
        "",
        "raw floor = plain apsw executemany of the same rows in one transaction (WAL, "
        "db.connect() pragmas),",
        "            journal table without triggers; 'journal rows/s' of the floor counts "
        "its journal inserts only.",
        "projection rows = rows added by the loop to "
        + " + ".join(f"{t} {_n(c)}" for t, c in loop.projection_rows.items()),
        f"projection writes (total_changes - journal rows, incl. updates/deletes): "
        f"{_n(loop.projection_writes)}",
        f"database size = vanta.db after close (whole run, incl. {inputs.price_rows:,} prices "
        "and setup events); floor = its file after commit + close.",
        f"per cycle: first {tenth} avg {first * 1000:,.1f} ms, last {tenth} avg "
        f"{last * 1000:,.1f} ms (x{(last / first) if first else 0:.2f}); "
        f"slowest {max(loop.per_cycle) * 1000:,.1f} ms",
        "journal rows by kind: " + ", ".join(f"{k} {_n(c)}" for k, c in kinds),
    ]
    return "\n".join(out)


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instruments", type=int, default=500)
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 50 instruments x 20 days")
    parser.add_argument("--home", type=Path, default=None,
                        help="home directory for vanta.db (must not hold one yet); kept "
                             "after the run. Default: a temporary directory, removed.")
    args = parser.parse_args(argv)
    if args.quick:
        args.instruments, args.days = 50, 20
    if args.instruments < 1 or args.days < 1:
        parser.error("--instruments and --days must be positive")

    keep_home = args.home is not None
    root = args.home if keep_home else Path(tempfile.mkdtemp(prefix="vanta-bench-"))
    home = Home(root)
    if home.db_path.exists():
        parser.error(f"{home.db_path} already exists: choose an empty --home")
    root.mkdir(parents=True, exist_ok=True)
    input_dir = Path(tempfile.mkdtemp(prefix="vanta-bench-inputs-"))
    t0 = parse_ts(START_DAY)
    try:
        print(f"generating inputs in {input_dir} ...", flush=True)
        inputs = generate_inputs(input_dir, args.instruments, args.days, t0)
        conn = db.connect(home.db_path)
        try:
            db.migrate(conn)
            eng = Engine(conn, LiveVenues())
            print("ingesting (vault, instruments, prices, signals, manager packet) ...",
                  flush=True)
            s0 = time.perf_counter()
            ingest(eng, home, inputs, t0)
            setup_s = time.perf_counter() - s0
            print(f"running {args.days} daily cycles (timed) ...", flush=True)
            loop = run_cycles(eng, t0, args.days)
            kinds = [(str(k), int(c)) for k, c in conn.execute(
                "SELECT kind, count(*) FROM journal WHERE seq BETWEEN ? AND ?"
                " GROUP BY kind ORDER BY count(*) DESC, kind", (loop.first_seq, loop.last_seq))]
            print("measuring the raw floor ...", flush=True)
            floor = measure_floor(conn, loop, root)
        finally:
            conn.close()
        db_size = db.file_size(home.db_path) + db.file_size(Path(str(home.db_path) + "-wal"))
        print()
        print(report(args, inputs, setup_s, loop, floor, db_size, kinds))
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB"
              " (this process: setup, cycles and the floor)")
        if keep_home:
            print(f"\nhome kept: {root}")
    finally:
        shutil.rmtree(input_dir, ignore_errors=True)
        if not keep_home:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
