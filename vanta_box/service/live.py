"""Live accounts (SPEC §8): reconcile with the venue, then trade in small write-ahead steps.

Every answer of a venue is an input: it is journaled as a ``venue.answer`` event by the
transaction that follows the call (``Engine.answers``), before anything derived from it,
and replay reads it back from the journal instead of asking (``Tape``). No write
transaction is ever open across a network call:

    commit ``submitted`` -> ask the venue -> commit its answer and what follows from it

An order whose outcome is unknown (a timeout, a 5xx after sending, a crash between the two
commits) is looked up by its client order id before anything is sent again; a duplicate id
means the venue has the order: it is adopted.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from vanta_box.core import faults
from vanta_box.core.money import ZERO, fmt
from vanta_box.core.timeutil import parse_ts
from vanta_box.domain.orders import WORKING, Fill, InvalidTransition, OrderState, Status, move
from vanta_box.domain.orders import apply_fill as apply_execution
from vanta_box.execution import venue as wire
from vanta_box.execution.venue import (
    ClientOrderId,
    LiveOrder,
    LiveVenue,
    OrderReport,
    Trade,
    VenueError,
    VenueOrderId,
)
from vanta_box.service.books import Book
from vanta_box.service.engine import Engine, ReplayInterrupted
from vanta_box.store import repo

US = 1_000_000


# ---------------------------------------------------------------- answers, journaled


class Tape:
    """Replay: the ``venue.answer`` events of the command being replayed, in order."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self._answers = answers
        self._next = 0

    def peek(self) -> dict[str, Any] | None:
        return self._answers[self._next] if self._next < len(self._answers) else None

    def take(self, account_id: str, call: str, key: str | None) -> dict[str, Any]:
        answer = self.peek()
        if answer is None:  # the original command stopped before this answer (a crash)
            raise ReplayInterrupted(f"no venue answer for {call} {key} of {account_id}")
        if (answer.get("account_id"), answer.get("call"), answer.get("key")) != (
                account_id, call, key):
            # not the question the original asked here: the journal comparison names it
            raise ReplayInterrupted(f"the journal answers {answer.get('call')} "
                                    f"{answer.get('key')}, not {call} {key}")
        self._next += 1
        return answer


class Waiter(Protocol):
    def precise(self) -> int: ...

    def sleep(self, seconds: float) -> None: ...  # seconds, not money


@dataclass
class Asked:
    """One account's live venue: each answer (or error) is kept for the next transaction
    to journal; in replay (``tape``) it is read back instead."""

    eng: Engine
    account_id: str
    venue: LiveVenue | None
    tape: Tape | None
    clock: Waiter | None
    pause: float = 0.05  # seconds before the next poll, doubling up to the interval; not money

    def _ask(self, call: str, key: str | None, ask: Callable[[], Any],
             encode: Callable[[Any], Any], decode: Callable[[Any], Any]) -> Any:
        if self.tape is not None:
            answer = self.tape.take(self.account_id, call, key)
            self.eng.answers.append(answer)
            if answer.get("error"):
                raise wire.error_from(answer["error"])
            return decode(answer["answer"])
        base = {"account_id": self.account_id, "call": call, "key": key}
        try:
            result = ask()
        except VenueError as exc:
            self.eng.answers.append({**base, "answer": None, "error": wire.error_payload(exc)})
            raise
        self.eng.answers.append({**base, "answer": encode(result), "error": None})
        return result

    def _venue(self) -> LiveVenue:
        assert self.venue is not None
        return self.venue

    def submit(self, order: LiveOrder) -> OrderReport:
        report: OrderReport = self._ask("submit", order.client_order_id,
                                        lambda: self._venue().submit(order),
                                        wire.report_payload, wire.report_from)
        return report

    def order(self, client_order_id: str) -> OrderReport | None:
        report: OrderReport | None = self._ask(
            "order", client_order_id, lambda: self._venue().order(client_order_id),
            _optional(wire.report_payload), _optional(wire.report_from))
        return report

    def cancel(self, report: OrderReport) -> OrderReport | None:
        answer: OrderReport | None = self._ask(
            "cancel", report.client_order_id, lambda: self._venue().cancel(report),
            _optional(wire.report_payload), _optional(wire.report_from))
        return answer

    def trades(self, cursor: str | None) -> tuple[list[Trade], str | None]:
        found: tuple[list[Trade], str | None] = self._ask(
            "trades", cursor, lambda: self._venue().trades(cursor),
            lambda r: {"trades": [wire.trade_payload(t) for t in r[0]], "cursor": r[1]},
            lambda p: ([wire.trade_from(t) for t in p["trades"]], p["cursor"]))
        return found

    def snapshot(self) -> wire.Snapshot:
        snap: wire.Snapshot = self._ask("snapshot", None, lambda: self._venue().snapshot(),
                                        wire.snapshot_payload, wire.snapshot_from)
        return snap

    def rules(self, symbol: str) -> wire.Rules:
        rules: wire.Rules = self._ask("rules", symbol, lambda: self._venue().rules(symbol),
                                      wire.rules_payload, wire.rules_from)
        return rules

    def wait(self, deadline: int, interval: float) -> bool:  # seconds, not money
        """Live: sleep a poll interval, then True while the deadline is ahead. Replay: True
        when the original asked again at this point (its next answer is this account's)."""
        if self.tape is not None:
            nxt = self.tape.peek()
            return (nxt is not None and nxt.get("account_id") == self.account_id
                    and nxt.get("call") in ("order", "trades"))
        assert self.clock is not None
        if self.clock.precise() >= deadline:
            return False
        self.clock.sleep(min(self.pause, interval))
        self.pause = min(self.pause * 2, interval)
        return True


def _optional(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else fn(value)


# ---------------------------------------------------------------- orders at the venue


@dataclass
class Working:
    """An order of ours at a live venue, as far as we know."""

    row: repo.OrderRow
    state: OrderState
    venue_order_id: VenueOrderId | None = None
    venue_filled: Decimal = ZERO  # what the venue last said was filled

    @property
    def settled(self) -> bool:
        """Ended at the venue, and every execution the venue reported is booked."""
        return (self.state.status not in WORKING
                and self.venue_filled <= self.state.filled_qty)


_NANOS = re.compile(r"(\.\d{6})\d+")


def venue_time(text: str | None, fallback: int) -> int:
    """A venue's timestamp (Alpaca sends nanoseconds) as vanta's µs, or ``fallback``."""
    if not text:
        return fallback
    try:
        return parse_ts(_NANOS.sub(r"\1", text))
    except ValueError:
        return fallback


@dataclass
class Account:
    """What a command knows of one live account while it works on it."""

    eng: Engine
    acct: repo.AccountRow
    book: Book
    venue: Asked
    at: int
    orders: dict[str, Working] = field(default_factory=dict)  # by client order id
    blocked: str | None = None  # why the account is skipped this cycle (venue_error:auth)

    def by_venue_id(self, venue_order_id: str | None) -> Working | None:
        """Our order the venue calls ``venue_order_id`` (loaded if it ended earlier: its
        executions may arrive after its status)."""
        if venue_order_id is None:
            return None
        for w in self.orders.values():
            if w.venue_order_id == venue_order_id:
                return w
        found = repo.order_by_venue_id(self.eng.conn, self.acct.account_id, venue_order_id)
        if found is None:
            return None
        w = _working(*found)
        self.orders[w.row.client_order_id] = w
        return w

    # -- recording (each call below runs inside a transaction) -------------------------

    def save_order(self, w: Working, reason: str | None = None) -> None:
        o, s = w.row, w.state
        avg = s.avg_price
        repo.upsert_live_order(self.eng.conn, o, str(s.status), fmt(s.filled_qty), reason,
                               w.venue_order_id, None if avg is None else fmt(avg), self.at)

    def save_book(self) -> None:
        if self.book.touched:
            upserts, deletes = self.book.changes()
            repo.save_positions(self.eng.conn, upserts, deletes)
        repo.save_account_money(self.eng.conn, [(fmt(self.book.cash), fmt(self.book.realized),
                                                 fmt(self.book.commissions),
                                                 self.acct.account_id)])

    def apply_report(self, w: Working, report: OrderReport | None, call: str) -> None:
        """A venue's answer about an order (None: the venue does not know it)."""
        if report is None:
            return
        w.venue_order_id = report.venue_order_id or w.venue_order_id
        w.venue_filled = max(w.venue_filled, report.filled_qty)
        try:
            w.state = move(w.state, report.status)
        except InvalidTransition:
            return  # an answer older than what we know (e.g. accepted after filled)
        self.eng.record(self.at, "order.status", {
            "order_id": w.row.order_id, "client_order_id": w.row.client_order_id,
            "account_id": self.acct.account_id, "venue_order_id": w.venue_order_id,
            "status": str(w.state.status), "raw_status": report.raw_status,
            "venue_filled_qty": fmt(report.filled_qty), "filled_qty": fmt(w.state.filled_qty),
            "venue_ts": report.venue_ts, "call": call})
        self.save_order(w)

    def apply_trade(self, trade: Trade) -> bool:
        """Book one execution, once per venue trade id. False: not one of our orders."""
        w = self.by_venue_id(trade.venue_order_id)
        venue_at = venue_time(trade.venue_ts, self.at)
        if w is None or repo.has_fill(self.eng.conn, self.acct.account_id, venue_at,
                                      trade.trade_id):
            return False
        try:
            w.state, applied = apply_execution(w.state, Fill(trade.trade_id, trade.qty,
                                                             trade.price))
        except InvalidTransition:
            return False
        if not applied:
            return False
        qty, commission = trade.qty, trade.fee
        base = trade.symbol.split("/")[0]
        if trade.fee_currency is not None and trade.fee_currency == base and "/" in trade.symbol:
            qty, commission = (qty - trade.fee, ZERO) if trade.side == "buy" else (
                qty, trade.fee * trade.price)  # a base-asset fee: less received on a buy
        realized = self.book.apply(trade.symbol, trade.side, qty, trade.price, commission)
        payload = {
            "fill_id": trade.trade_id, "order_id": w.row.order_id,
            "client_order_id": w.row.client_order_id, "account_id": self.acct.account_id,
            "symbol": trade.symbol, "side": trade.side, "qty": fmt(qty),
            "price": fmt(trade.price), "commission": fmt(commission),
            "fee": fmt(trade.fee), "fee_currency": trade.fee_currency,
            "requested_qty": fmt(w.row.qty), "realized_pnl": fmt(realized) if realized else "0",
            "venue": self.venue_kind, "venue_ts": trade.venue_ts}
        seq = self.eng.record(self.at, "fill", payload)
        repo.insert_live_fill(self.eng.conn, (
            trade.trade_id, w.row.order_id, self.acct.account_id, trade.symbol, trade.side,
            fmt(qty), fmt(trade.price), fmt(commission), payload["realized_pnl"], venue_at,
            seq, 0, self.at, trade.fee_currency))
        self.save_order(w)
        return True

    @property
    def venue_kind(self) -> str:
        return self.acct.broker_kind


def _working(row: repo.OrderRow, venue_order_id: str | None, avg: str | None) -> Working:
    notional = ZERO if avg is None else Decimal(avg) * row.filled_qty
    return Working(row, OrderState(row.qty, Status(row.status), row.filled_qty, notional),
                   None if venue_order_id is None else VenueOrderId(venue_order_id))


def load_working(a: Account) -> None:
    """The account's orders still working at the venue (of any cycle)."""
    for found in repo.working_orders(a.eng.conn, a.acct.account_id):
        w = _working(*found)
        a.orders[w.row.client_order_id] = w


def working(a: Account) -> Iterator[Working]:
    return (w for w in a.orders.values() if w.state.status in WORKING)


def unsettled(a: Account) -> bool:
    return any(not w.settled for w in a.orders.values())


# ---------------------------------------------------------------- asking, then recording


def _safely(a: Account, ask: Callable[[], Any]) -> tuple[Any, VenueError | None]:
    """Ask the venue; a failure is an answer too (journaled by the next transaction). An
    authentication failure blocks the account for the rest of the command."""
    try:
        return ask(), None
    except VenueError as exc:
        if exc.kind == "auth":
            a.blocked = "venue_error:auth"
        return None, exc


def _venue_error(a: Account, exc: VenueError, call: str) -> None:
    a.eng.record(a.at, "venue.error", {"account_id": a.acct.account_id, "call": call,
                                       "kind": exc.kind, "message": exc.message})


def poll(a: Account, cursor_holder: list[str | None], *, all_trades: bool = False) -> None:
    """One look at the venue: each working order's status, then executions since the
    account's cursor (each answer journaled, then applied, in one transaction): while an
    order awaits executions, or always (``all_trades``: a reconciliation)."""
    for w in sorted(working(a), key=lambda w: w.row.order_id):
        report, error = _safely(a, functools.partial(a.venue.order, w.row.client_order_id))
        with a.eng.tx():
            if error is not None:
                _venue_error(a, error, "order")
            elif report is not None:
                a.apply_report(w, report, "order")
        if a.blocked:
            return
        if report is None and error is None and w.state.status in (Status.SUBMITTED,
                                                                    Status.UNKNOWN):
            send(a, w)  # the venue never got it (a crash before sending): send it now
    if not (all_trades or unsettled(a)):
        return
    result, error = _safely(a, lambda: a.venue.trades(cursor_holder[0]))
    with a.eng.tx():
        if error is not None:
            _venue_error(a, error, "trades")
            return
        trades, cursor = result
        for trade in trades:
            a.apply_trade(trade)
        cursor_holder[0] = cursor
        repo.set_venue_cursor(a.eng.conn, a.acct.account_id, cursor)
        a.save_book()


def submit(a: Account, w: Working, mark: Decimal) -> None:
    """Write-ahead: commit ``submitted``, ask the venue, commit its answer."""
    o = w.row
    with a.eng.tx():
        a.eng.record(a.at, "submitted", {
            "order_id": o.order_id, "client_order_id": o.client_order_id,
            "account_id": a.acct.account_id, "symbol": o.symbol, "side": o.side,
            "qty": fmt(w.state.qty), "mark": fmt(mark), "venue": a.venue_kind})
        w.state = move(w.state, Status.SUBMITTED)
        a.save_order(w)
    send(a, w)


def send(a: Account, w: Working) -> None:
    """Send an order (again: the same client order id, so the venue refuses a second
    one); an unknown outcome or a duplicate id is looked up and adopted."""
    o = w.row
    order = LiveOrder(o.client_order_id, o.symbol, o.side, w.state.qty)  # type: ignore[arg-type]
    report, error = _safely(a, lambda: a.venue.submit(order))
    faults.sent()
    if error is not None and error.kind in ("unknown", "duplicate_id", "transient"):
        with a.eng.tx():  # the error, journaled; the outcome is looked up now
            _venue_error(a, error, "submit")
            w.state = move(w.state, Status.UNKNOWN)
            a.save_order(w)
        report, error = _safely(a, lambda: a.venue.order(o.client_order_id))
    with a.eng.tx():
        if error is not None:
            _venue_error(a, error, "submit")
            if error.kind == "reject":
                _rejected(a, w, "venue_reject", error.message)
        elif report is not None:
            a.apply_report(w, report, "submit")


def _rejected(a: Account, w: Working, reason: str, note: str) -> None:
    o = w.row
    w.state = move(w.state, Status.REJECTED)
    a.eng.record(a.at, "reject", {
        "order_id": o.order_id, "client_order_id": o.client_order_id,
        "account_id": a.acct.account_id, "symbol": o.symbol, "reason": reason,
        "note": note, "requested_qty": fmt(w.state.qty), "venue": a.venue_kind})
    a.save_order(w, reason)


# ---------------------------------------------------------------- a cycle's steps


@dataclass(frozen=True, slots=True)
class Settle:
    timeout: int = 60 * US  # µs: how long a cycle waits for its orders (--settle-timeout)
    interval: float = 1.0  # seconds between polls, not money


def reconcile(a: Account, mark_of: Callable[[str], Decimal | None],
              superseded_by: str | None) -> None:
    """SPEC §8 step 1: the open orders' statuses and executions, then cash and positions.
    A position that differs after every known execution is a ``discrepancy``: the venue's
    quantity is adopted at the mark; cash that differs then is a capital ``flow``."""
    load_working(a)
    cursor = [repo.venue_cursor(a.eng.conn, a.acct.account_id)]
    if superseded_by is not None:
        cancel_superseded(a, superseded_by)
    poll(a, cursor, all_trades=True)
    if a.blocked:
        _blocked(a)
        return
    snap, error = _safely(a, a.venue.snapshot)
    with a.eng.tx():
        if error is not None:  # without the venue's truth the account is not sized
            _venue_error(a, error, "snapshot")
            a.blocked = a.blocked or f"venue_error:{error.kind}"
            a.eng.record(a.at, "skip", {"account_id": a.acct.account_id,
                                        "vault_id": a.acct.vault_id, "reason": a.blocked})
            return
        _adopt(a, snap, mark_of)
        a.save_book()


def _blocked(a: Account) -> None:
    with a.eng.tx():
        a.eng.record(a.at, "skip", {"account_id": a.acct.account_id,
                                    "vault_id": a.acct.vault_id, "reason": a.blocked})


def _adopt(a: Account, snap: wire.Snapshot, mark_of: Callable[[str], Decimal | None]
           ) -> None:
    busy = {w.row.symbol for w in working(a)}  # executions may still be on their way
    book = a.book
    for symbol in sorted(set(book.symbols()) | set(snap.positions)):
        ours, theirs = book.held(symbol), snap.positions.get(symbol, ZERO)
        if ours == theirs or symbol in busy:
            continue
        mark = mark_of(symbol) or book.mark_of(symbol, {})
        diff = theirs - ours
        realized = book.apply(symbol, "buy" if diff > 0 else "sell", abs(diff), mark, ZERO)
        a.eng.record(a.at, "discrepancy", {
            "account_id": a.acct.account_id, "symbol": symbol, "ours": fmt(ours),
            "venue": fmt(theirs), "cause": "external", "mark": fmt(mark),
            "realized_pnl": fmt(realized) if realized else "0"})
    flow = snap.cash - book.cash
    if flow:
        book.cash = snap.cash
        book.touched = True
        a.eng.record(a.at, "flow", {
            "account_id": a.acct.account_id, "amount": fmt(flow),
            "kind": "deposit" if flow > 0 else "withdrawal", "source": "reconcile"})
    if snap.equity is not None:
        a.eng.record(a.at, "venue.equity", {"account_id": a.acct.account_id,
                                            "equity": fmt(snap.equity), "cash": fmt(snap.cash)})


def cancel_superseded(a: Account, by: str) -> None:
    """A new cycle first cancels what earlier cycles left working at the venue."""
    for w in sorted(working(a), key=lambda w: w.row.order_id):
        if w.row.cycle_id == by:
            continue
        report = OrderReport(ClientOrderId(w.row.client_order_id), w.venue_order_id,
                             w.state.status, "", w.state.filled_qty, w.state.avg_price, None)
        answer, error = _safely(a, functools.partial(a.venue.cancel, report))
        with a.eng.tx():
            a.eng.record(a.at, "cancel", {
                "order_id": w.row.order_id, "client_order_id": w.row.client_order_id,
                "account_id": a.acct.account_id, "symbol": w.row.symbol,
                "reason": "superseded", "by": by})
            if error is not None:
                _venue_error(a, error, "cancel")
            else:
                a.apply_report(w, answer, "cancel")


def execute(a: Account, orders: list[repo.OrderRow], marks: dict[str, Decimal],
            settle: Settle, now: Callable[[], int]) -> None:
    """SPEC §8 steps 3-4: sells, settled; then buys sized to the cash after the sells."""
    cursor = [repo.venue_cursor(a.eng.conn, a.acct.account_id)]
    for side in ("sell", "buy"):
        batch = sorted((o for o in orders if o.side == side), key=lambda o: o.symbol)
        cash = a.book.cash
        for o in batch:
            if a.blocked:
                break
            mark = marks.get(o.symbol)
            w = Working(o, OrderState(o.qty))
            a.orders[o.client_order_id] = w
            qty, why = _venue_qty(a, o, mark, cash if side == "buy" else None)
            if why is not None or mark is None:
                with a.eng.tx():
                    _rejected(a, w, why or "no_mark", f"{fmt(o.qty)} requested")
                continue
            w.state = OrderState(qty)
            if side == "buy":
                cash -= qty * mark
            submit(a, w, mark)
        deadline = now() + settle.timeout
        while unsettled(a) and not a.blocked and a.venue.wait(deadline, settle.interval):
            poll(a, cursor)


def _venue_qty(a: Account, o: repo.OrderRow, mark: Decimal | None,
               cash: Decimal | None) -> tuple[Decimal, str | None]:
    """The quantity the venue takes: its precision (toward zero), a buy within the cash,
    at least the venue's minimums (else ``below_venue_minimum``)."""
    if mark is None:
        return ZERO, "no_mark"
    rules, error = _safely(a, lambda: a.venue.rules(o.symbol))
    if error is not None:
        return ZERO, f"venue_error:{error.kind}"
    qty = (o.qty // rules.qty_step) * rules.qty_step
    if cash is not None and qty * mark > cash:
        qty = ((max(cash, ZERO) / mark) // rules.qty_step) * rules.qty_step
        if qty * mark < rules.min_notional or qty <= 0:
            return ZERO, "insufficient_cash"
    if qty <= 0 or qty < rules.min_qty or qty * mark < rules.min_notional:
        return ZERO, "below_venue_minimum"
    return qty, None


# ---------------------------------------------------------------- what commands call


def open_account(eng: Engine, acct: repo.AccountRow, book: Book, at: int) -> Account:
    tape: Tape | None = getattr(eng.venues, "tape", None)
    venue = clock = None
    if tape is None:
        symbols = frozenset(repo.instruments(eng.conn))
        venue = eng.venues.live_for(acct, symbols)  # type: ignore[attr-defined]
        clock = eng.venues.clock  # type: ignore[attr-defined]
    return Account(eng, acct, book, Asked(eng, acct.account_id, venue, tape, clock), at)


def deadline_clock(eng: Engine) -> Callable[[], int]:
    clock = getattr(eng.venues, "clock", None)
    precise = getattr(clock, "precise", None) or getattr(clock, "now", None)
    return precise if precise is not None else (lambda: 0)


def reconcile_accounts(eng: Engine, accounts: list[repo.AccountRow], at: int,
                       superseded_by: str | None) -> dict[str, str]:
    """Reconcile each live account (in account order); returns the blocked ones."""
    from vanta_box.service.books import load_books

    books = load_books(eng.conn, accounts)
    blocked = {}
    for acct in sorted(accounts, key=lambda a: a.account_id):
        a = open_account(eng, acct, books[acct.account_id], at)
        reconcile(a, lambda s: repo.marks_at(eng.conn, at, [s]).get(s), superseded_by)
        if a.blocked:
            blocked[acct.account_id] = a.blocked
    return blocked


def sync_accounts(eng: Engine, accounts: list[repo.AccountRow], at: int,
                  settle: Settle | None) -> int:
    """Ask the venues about every working order (and wait up to ``settle`` for them to
    end); returns how many are still working."""
    from vanta_box.service.books import load_books

    books = load_books(eng.conn, accounts)
    left = 0
    now = deadline_clock(eng)
    for acct in sorted(accounts, key=lambda a: a.account_id):
        a = open_account(eng, acct, books[acct.account_id], at)
        load_working(a)
        if not any(working(a)) and settle is None:
            continue
        cursor = [repo.venue_cursor(eng.conn, acct.account_id)]
        poll(a, cursor, all_trades=settle is not None)  # a resumption: every execution
        if settle is not None:
            deadline = now() + settle.timeout
            while unsettled(a) and not a.blocked and a.venue.wait(deadline, settle.interval):
                poll(a, cursor)
        left += sum(1 for _ in working(a))
    return left
