"""`vanta demo`: a sample home built from the data shipped in the package, run day by day.

Every step goes through the same command builders and handlers as the CLI, with explicit
``--at`` times, so two demo runs give byte-identical state files and the same digest.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vanta_box.core.errors import Refused
from vanta_box.core.timeutil import DAY_US, fmt_ts, parse_ts
from vanta_box.home import Home, locked
from vanta_box.keystore import Keystore
from vanta_box.reports.emit import emit
from vanta_box.reports.html import render
from vanta_box.resources import sample_dir
from vanta_box.service import accounts as accounts_service
from vanta_box.service import cycle as cycle_service
from vanta_box.service import fees as fees_service
from vanta_box.service import paper as paper_service
from vanta_box.service import setup
from vanta_box.service.engine import Engine
from vanta_box.service.venues import LiveVenues
from vanta_box.store import db, journal

MARKER = ".vanta-demo"
START = "2026-10-01T00:00:00Z"
FIRST_CYCLE = "2026-10-05T00:00:00Z"
LAST_CYCLE = "2026-11-20T00:00:00Z"


@dataclass
class DemoResult:
    home: Home
    cycles: int
    events: int
    digest: str


def prepare(home: Home) -> None:
    """Start from an empty home; only a previous demo's home is ever wiped."""
    if home.root.exists() and any(home.root.iterdir()):
        if not (home.root / MARKER).exists():
            raise Refused(f"{home.root} is not empty and was not made by `vanta demo`: "
                          "choose another --home")
        for child in home.root.iterdir():
            if child.name in (MARKER, ".lock"):
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    home.root.mkdir(parents=True, exist_ok=True)
    (home.root / MARKER).write_text("made by `vanta demo`; safe to delete\n")
    home.memory.mkdir(exist_ok=True)
    home.reports.mkdir(exist_ok=True)


def events_by_day() -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Scripted manager actions, keyed by the cycle day they happen before."""
    return {
        "2026-10-14": [("overlay", ("flip", "1d"))],
        "2026-10-20": [("overlay", ("boost", "aggressive=1.5", "3d"))],
        "2026-10-23": [("paper", ("F1001", "XOM", "40", "buy"))],
        "2026-10-28": [("follower", ("pause", "F1005"))],
        "2026-11-01": [("fees", ("2026-10",)), ("paid", ("F1001/2026-10/1", "demo wire 1"))],
        "2026-11-05": [("overlay", ("maintenance", "1d"))],
    }


def run(home: Home, echo: Callable[[str], None]) -> DemoResult:
    prepare(home)
    sample = sample_dir()
    with locked(home):
        conn = db.connect(home.db_path)
        try:
            db.migrate(conn)
            eng = Engine(conn, LiveVenues())
            cycles = _script(eng, home, sample, echo)
            emit(conn, home.memory, parse_ts(LAST_CYCLE))
            render(conn, home.reports, parse_ts(LAST_CYCLE))
            digest = journal.head(conn)
        finally:
            conn.close()
    return DemoResult(home, cycles, digest.seq, str(digest))


def _script(eng: Engine, home: Home, sample: Path, echo: Callable[[str], None]) -> int:
    t0 = parse_ts(START)
    eng.run(setup.vault_import_command(str(sample / "vault.json"), t0))
    eng.run(setup.instruments_import_command(str(sample / "instruments.json"), t0))
    eng.run(setup.prices_ingest_command(eng, str(sample / "prices.csv"), t0))
    keystore = Keystore(home.keystore_path, passphrase="")
    for packet in sorted((sample / "packets").glob("*.json"),
                         key=lambda p: (not p.name.startswith("M"), p.name)):
        command, _parsed = accounts_service.onboard_command(eng, str(packet), t0, t0, keystore)
        eng.run(command)
    echo(f"imported the sample vault, {len(list((sample / 'packets').glob('*.json')))} "
         "accounts, instruments and prices")
    signal_files = {p.stem: p for p in (sample / "signals").glob("*.json")}
    scripted = events_by_day()
    day, last, count = parse_ts(FIRST_CYCLE), parse_ts(LAST_CYCLE), 0
    while day <= last:
        stamp = fmt_ts(day)[:10]
        if stamp in signal_files:
            eng.run(setup.signals_ingest_command(eng, str(signal_files[stamp]), day))
        for action, args in scripted.get(stamp, []):
            _scripted(eng, day, action, args, echo)
        reports = eng.run(cycle_service.cycle_command(eng, None, day, False))
        for r in reports:
            echo(f"{r.cycle_id}: vault {r.vault_status}, {r.orders} orders, "
                 f"{r.child_orders} child orders, {r.fills} fills, {r.skips} skips")
        count += len(reports)
        day += DAY_US
    return count


def _scripted(eng: Engine, at: int, action: str, args: tuple[str, ...],
              echo: Callable[[str], None]) -> None:
    from vanta_box.core.money import D
    from vanta_box.core.timeutil import parse_duration

    if action == "overlay":
        kind = args[0]
        persona, factor = "", None
        if kind == "boost":
            persona, _, k = args[1].partition("=")
            factor = D(k)
        eng.run(setup.overlay_set_command(eng, "V_CORE", kind, parse_duration(args[-1]), at,
                                          persona, factor))
        echo(f"overlay {' '.join(args[:-1])} set for {args[-1]}")
    elif action == "follower":
        eng.run(accounts_service.follower_command(eng, args[0], args[1], at))
        echo(f"follower {args[1]}: {args[0]}")
    elif action == "fees":
        lines = eng.run(fees_service.fees_run_command(eng, args[0], at))
        echo(f"fees for {args[0]}: {len(lines)} entries, "
             + ", ".join(f"{line['user_id']} {line['fee_due']}" for line in lines))
    elif action == "paid":
        eng.run(fees_service.fees_paid_command(eng, args[0], args[1], None, at))
        echo(f"payment recorded for {args[0]}")
    elif action == "paper":
        account, symbol, qty, side = args
        eng.run(paper_service.paper_trade_command(eng, account, symbol, side, D(qty), None,
                                                  at - 3600 * 10**6))
        echo(f"{account} {side}s {qty} {symbol} by hand (the cycle corrects the drift)")
