"""A cycle interrupted mid-execution and run again trades each (account, symbol) once."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import INSTRUMENTS, T0, manager_packet, prices_csv, signals, vault_def
from vanta_box.core.models import PaperTerms, Vault
from vanta_box.core.timeutil import parse_ts
from vanta_box.domain.orders import Status
from vanta_box.execution.paper import AccountBook, PaperVenue
from vanta_box.execution.venue import LiveOrder, OrderReport, Trade, VenueError
from vanta_box.service import accounts, cycle, execute, setup
from vanta_box.service.engine import Engine
from vanta_box.service.replay import replay
from vanta_box.store import db, repo
from vanta_box.store.journal import events as journal_events
from vanta_box.store.repo import AccountRow


class Crash(Exception):
    pass


class ExternalVenue:
    """A venue with its own memory, like a real broker: an order it has seen is never
    traded again (client_order_id), and it survives our process crashing."""

    kind = "external"

    def __init__(self) -> None:
        self.orders: dict[str, tuple[OrderReport, Trade | None]] = {}
        self.trades = 0
        self.crash_after: int | None = None


class ExternalSession(PaperVenue):
    """One account's orders at the external venue: an order it already has is adopted
    (``order``), its execution reported again (``trades``)."""

    kind = "external"

    def __init__(self, venue: ExternalVenue, book: AccountBook, marks: Any,
                 instruments: Any) -> None:
        super().__init__(book, marks, instruments, D(0), PaperTerms())
        self.venue = venue

    def submit(self, order: LiveOrder) -> OrderReport:
        venue = self.venue
        if order.client_order_id in venue.orders:
            raise VenueError("duplicate_id", order.client_order_id)
        report = super().submit(order)
        venue.orders[order.client_order_id] = (report, self._trades[-1] if report.filled_qty
                                               else None)
        venue.trades += 1
        if venue.crash_after is not None and venue.trades > venue.crash_after:
            raise Crash("the process dies after the venue filled the order")
        return report

    def order(self, client_order_id: str, symbol: str) -> OrderReport | None:
        known = self.venue.orders.get(client_order_id)
        return None if known is None else self.answered(known)


class PaperThatCrashes:
    """The embedded paper venue, raising after N fills (its book is ours: rolled back)."""

    def __init__(self, crash_after: int | None) -> None:
        self.fills = 0
        self.crash_after = crash_after


class CrashingPaper(PaperVenue):
    def __init__(self, counter: PaperThatCrashes, *args: Any) -> None:
        super().__init__(*args, D(0), PaperTerms())
        self.counter = counter

    def submit(self, order: LiveOrder) -> OrderReport:
        counter = self.counter
        counter.fills += 1
        if counter.crash_after is not None and counter.fills > counter.crash_after:
            raise Crash("crash inside the paper broker")
        return super().submit(order)


class Venues:
    def __init__(self, broker: Any) -> None:
        self.broker = broker

    def instant_for(self, account: AccountRow, vault: Vault, book: AccountBook, marks: Any,
                    instruments: Any) -> Any:
        broker = self.broker
        if isinstance(broker, ExternalVenue):
            return ExternalSession(broker, book, marks, instruments)
        if isinstance(broker, PaperThatCrashes):
            return CrashingPaper(broker, book, marks, instruments)
        return broker(book, marks, instruments)


def _home(tmp_path: Path) -> Path:
    inputs = tmp_path / "in"
    inputs.mkdir()
    path = tmp_path / "vanta.db"
    conn = db.connect(path)
    db.migrate(conn)
    eng = Engine(conn, Venues(None))
    t0 = parse_ts(T0)
    files = {
        "vault.json": {"vaults": [vault_def()]},
        "instruments.json": INSTRUMENTS,
        "signals.json": signals("V", T0, [("AAA", "0.4", None), ("BBB", "0.3", None),
                                          ("BTC", "0.3", None)]),
    }
    for name, content in files.items():
        (inputs / name).write_text(json.dumps(content))
    (inputs / "prices.csv").write_text(prices_csv([("AAA", T0, "100"), ("BBB", T0, "50"),
                                                   ("BTC", T0, "20000")]))
    eng.run(setup.vault_import_command(str(inputs / "vault.json"), t0))
    eng.run(setup.instruments_import_command(str(inputs / "instruments.json"), t0))
    eng.run(setup.prices_ingest_command(eng, str(inputs / "prices.csv"), t0))
    eng.run(setup.signals_ingest_command(eng, str(inputs / "signals.json"), t0))
    packets = [manager_packet(cash="100000")]
    for n in range(4):
        packets.append({"packet_version": 1, "account_id": f"F{n}", "role": "follower",
                        "vault_id": "V", "broker": {"kind": "paper", "starting_cash": "10000"},
                        "fee_agreement": {"type": "flat", "flat_usd": "100"}})
    paths = []
    for p in packets:
        file = inputs / f"{p['account_id']}.json"
        file.write_text(json.dumps(p))
        paths.append(str(file))
    accounts.onboard_many(eng, paths, t0, t0, None)
    conn.close()
    return path


def _fills(conn: db.Connection) -> list[tuple[str, str]]:
    return [(a, s) for a, s in conn.execute("SELECT account_id, symbol FROM fills")]


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # several execution transactions even in a small test: batches close at >= 4 orders
    monkeypatch.setattr(execute, "BATCH_ORDERS", 4)


def test_crash_at_a_real_venue_then_resume_trades_each_order_once(tmp_path: Path) -> None:
    path = _home(tmp_path)
    venue = ExternalVenue()
    venue.crash_after = 6
    conn = db.connect(path)
    with pytest.raises(Crash):
        Engine(conn, Venues(venue)).run(cycle.cycle_command(Engine(conn, Venues(venue)), "V",
                                                            parse_ts(T0), False))
    conn.close()
    # batch 1 (the manager's 3 orders and F0's 3: >= 4 orders) committed; the crash hit
    # the 7th order at the venue, which was filled there but not recorded here
    conn = db.connect(path)
    recorded = _fills(conn)
    assert len(recorded) == 6 and venue.trades == 7
    assert repo.cycle(conn, f"V@{T0}").status == "staged"  # type: ignore[union-attr]

    venue.crash_after = None
    eng = Engine(conn, Venues(venue))
    (report,) = eng.run(cycle.cycle_command(eng, "V", parse_ts(T0), False))
    assert report.resumed and report.status == "done"
    fills = _fills(conn)
    # 5 accounts x 3 symbols, each traded exactly once at the venue and recorded once
    assert len(fills) == len(set(fills)) == 15
    assert venue.trades == 15 == len(venue.orders)
    # the order the venue filled before the crash was recovered, not traded again
    assert len(list(journal_events(conn, 0, ("fill",)))) == 15
    again = eng.conn.execute("SELECT count(*) FROM orders WHERE status = 'filled'").fetchone()
    assert again == (15,)
    conn.close()


def test_crash_inside_the_paper_broker_rolls_back_and_resumes(tmp_path: Path) -> None:
    path = _home(tmp_path)
    conn = db.connect(path)
    eng = Engine(conn, Venues(PaperThatCrashes(crash_after=8)))
    with pytest.raises(Crash):
        eng.run(cycle.cycle_command(eng, "V", parse_ts(T0), False))
    assert len(_fills(conn)) == 6  # the batch in flight rolled back with the paper book
    eng = Engine(conn, Venues(PaperThatCrashes(crash_after=None)))
    eng.run(cycle.cycle_command(eng, "V", parse_ts(T0), False))
    fills = _fills(conn)
    assert len(fills) == len(set(fills)) == 15
    f0 = {s: D(q) for s, q in conn.execute(
        "SELECT symbol, qty FROM positions WHERE account_id = 'F0'")}
    # 10000: AAA 4000/100 = 40, BBB 3000/50 = 60, BTC 3000/20000 = 0.15
    assert f0 == {"AAA": D("40"), "BBB": D("60"), "BTC": D("0.15")}
    # a finished cycle is not run a third time
    with pytest.raises(Exception, match="already ran"):
        eng.run(cycle.cycle_command(eng, "V", parse_ts(T0), False))

    # the journal, crash included, replays to the same bytes
    report = replay(conn, tmp_path / "replayed.db")
    assert report.interrupted == 1
    assert report.identical, (report.journal_divergence, report.tables)
    conn.close()


class RejectsOnce:
    """A paper venue that misses one fill (rejects the first order for a symbol)."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.missed = False

    def __call__(self, book: AccountBook, marks: Any, instruments: Any) -> PaperVenue:
        return RejectingPaper(self, book, marks, instruments, D(0), PaperTerms())


class RejectingPaper(PaperVenue):
    def __init__(self, once: RejectsOnce, *args: Any) -> None:
        super().__init__(*args)
        self.once = once

    def submit(self, order: LiveOrder) -> OrderReport:
        once = self.once
        if order.symbol == once.symbol and not once.missed:
            once.missed = True
            return OrderReport(order.client_order_id, None, Status.REJECTED, "rejected",
                               D(0), None, None, "venue_busy")
        return super().submit(order)


def test_missed_fill_is_brought_back_at_the_next_cycle(tmp_path: Path) -> None:
    path = _home(tmp_path)
    conn = db.connect(path)
    eng = Engine(conn, Venues(RejectsOnce("BBB")))
    eng.run(cycle.cycle_command(eng, "V", parse_ts(T0), False))
    held = dict(conn.execute("SELECT symbol, qty FROM positions WHERE account_id = 'M'"))
    assert "BBB" not in held  # the manager's BBB order was rejected by the venue
    t1 = parse_ts(T0) + 86_400_000_000
    eng.run(cycle.cycle_command(eng, "V", t1, False))
    held = dict(conn.execute("SELECT symbol, qty FROM positions WHERE account_id = 'M'"))
    # 100000 * 0.3 / 50 = 600 (marks unchanged at T1: the newest price is T0's)
    assert held["BBB"] == "600"
    conn.close()
