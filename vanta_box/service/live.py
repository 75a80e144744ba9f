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
from concurrent.futures import Executor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NoReturn, Protocol

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
    """One account's live venue. Each answer (or error) is kept in ``pending`` until the
    account's next record step journals it; in replay (``tape``) it is read back instead.
    Asked from one thread at a time (the account's), so nothing here is shared."""

    account_id: str
    venue: LiveVenue | None
    tape: Tape | None
    pending: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False  # the venue gave no answer: not asked again in this command

    def _ask(self, call: str, key: str | None, ask: Callable[[], Any],
             encode: Callable[[Any], Any], decode: Callable[[Any], Any]) -> Any:
        if self.down:  # decided by a journaled answer, so replay decides alike
            raise VenueError("transient", "the venue did not answer earlier in this command")
        if self.tape is not None:
            answer = self.tape.take(self.account_id, call, key)
            self.pending.append(answer)
            if answer.get("error"):
                self._note(wire.error_from(answer["error"]))
            return decode(answer["answer"])
        base = {"account_id": self.account_id, "call": call, "key": key}
        try:
            result = ask()
        except VenueError as exc:
            self.pending.append({**base, "answer": None, "error": wire.error_payload(exc)})
            self._note(exc)
        self.pending.append({**base, "answer": encode(result), "error": None})
        return result

    def _note(self, exc: VenueError) -> NoReturn:
        if exc.kind in ("transient", "unknown") and exc.status is None:
            self.down = True
        raise exc

    def flush(self, eng: Engine) -> None:
        """Hand the answers to the next transaction, which journals them first."""
        eng.answers.extend(self.pending)
        self.pending.clear()

    def _venue(self) -> LiveVenue:
        assert self.venue is not None
        return self.venue

    def submit(self, order: LiveOrder) -> OrderReport:
        report: OrderReport = self._ask("submit", order.client_order_id,
                                        lambda: self._venue().submit(order),
                                        wire.report_payload, wire.report_from)
        return report

    def order(self, client_order_id: str, symbol: str) -> OrderReport | None:
        report: OrderReport | None = self._ask(
            "order", client_order_id, lambda: self._venue().order(client_order_id, symbol),
            _optional(wire.report_payload), _optional(wire.report_from))
        return report

    def cancel(self, report: OrderReport, symbol: str) -> OrderReport | None:
        answer: OrderReport | None = self._ask(
            "cancel", report.client_order_id, lambda: self._venue().cancel(report, symbol),
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
    heard: Status | None = None  # the venue's last status for it, in this command
    fresh: bool = False  # written ahead in this command, not sent yet

    @property
    def settled(self) -> bool:
        """Ended at the venue, and every execution the venue reported is booked."""
        return (self.state.status not in WORKING
                and self.venue_filled <= self.state.filled_qty)

    @property
    def asking(self) -> bool:
        """Still to be asked about: working, as far as the venue has said."""
        return (self.heard or self.state.status) in WORKING

    def heard_of(self, report: OrderReport) -> None:
        self.venue_order_id = report.venue_order_id or self.venue_order_id
        self.venue_filled = max(self.venue_filled, report.filled_qty)
        self.heard = report.status


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
    """What a command knows of one live account while it works on it.

    Its work alternates between two kinds of step: *asking* the venue (in a worker thread,
    no database: each answer queued in ``seen`` as what to record) and *recording* (on the
    command's thread, in account order: the answers journaled, then applied, in one
    transaction). So the journal's order depends on the answers only, not on which
    account's venue answered first."""

    eng: Engine
    acct: repo.AccountRow
    book: Book
    venue: Asked
    at: int
    orders: dict[str, Working] = field(default_factory=dict)  # by client order id
    blocked: str | None = None  # why the account is skipped this cycle (venue_error:auth)
    cursor: str | None = None  # the venue's executions cursor
    rules: dict[str, wire.Rules | VenueError] = field(default_factory=dict)
    seen: list[Callable[[], None]] = field(default_factory=list)  # to record, in order

    @property
    def account_id(self) -> str:
        return self.acct.account_id

    @property
    def venue_kind(self) -> str:
        return self.acct.broker_kind

    def later(self, fn: Callable[..., None], *args: Any) -> None:
        self.seen.append(functools.partial(fn, *args))

    def record(self) -> None:
        """Journal what the venue answered since the last record, then apply it."""
        self.venue.flush(self.eng)
        steps, self.seen = self.seen, []
        with self.eng.tx():
            for step in steps:
                step()
            self.save_book()

    def by_venue_id(self, venue_order_id: str | None) -> Working | None:
        """Our order the venue calls ``venue_order_id`` (loaded if it ended earlier: its
        executions may arrive after its status)."""
        if venue_order_id is None:
            return None
        for w in self.orders.values():
            if w.venue_order_id == venue_order_id:
                return w
        found = repo.order_by_venue_id(self.eng.conn, self.account_id, venue_order_id)
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
                                                 fmt(self.book.commissions), self.account_id)])

    def apply_report(self, w: Working, report: OrderReport, call: str) -> None:
        """A venue's answer about an order."""
        try:
            w.state = move(w.state, report.status)
        except InvalidTransition:
            return  # an answer older than what we know (e.g. accepted after filled)
        self.eng.record(self.at, "order.status", {
            "order_id": w.row.order_id, "client_order_id": w.row.client_order_id,
            "account_id": self.account_id, "venue_order_id": w.venue_order_id,
            "status": str(w.state.status), "raw_status": report.raw_status,
            "venue_filled_qty": fmt(report.filled_qty), "filled_qty": fmt(w.state.filled_qty),
            "venue_ts": report.venue_ts, "call": call})
        self.save_order(w)

    def apply_trades(self, trades: list[Trade], cursor: str | None) -> None:
        for trade in trades:
            if trade.venue_order_id is None and not trade.qty:
                self.apply_fee(trade)
            else:
                self.apply_trade(trade)
        repo.set_venue_cursor(self.eng.conn, self.account_id, cursor)

    def apply_fee(self, fee: Trade) -> None:
        """A venue's fee reported apart from any execution (Alpaca's CFEE), once: the
        cursor after it commits with it. A fee in the base asset is that much of the coin
        gone (realized at no proceeds); one in the quote currency is a commission."""
        if fee.fee <= 0:
            return
        base = fee.symbol.split("/")[0] if "/" in fee.symbol else None
        realized = ZERO
        if fee.fee_currency == base:
            if self.book.held(fee.symbol) < fee.fee:
                return  # more than is held: the reconciliation's discrepancy tells
            realized = self.book.apply(fee.symbol, "sell", fee.fee, ZERO, ZERO)
        else:
            self.book.cash -= fee.fee
            self.book.commissions += fee.fee
            self.book.touched = True
        self.eng.record(self.at, "venue.fee", {
            "account_id": self.account_id, "fee_id": fee.trade_id, "symbol": fee.symbol,
            "fee": fmt(fee.fee), "fee_currency": fee.fee_currency, "price": fmt(fee.price),
            "realized_pnl": fmt(realized) if realized else "0", "venue_ts": fee.venue_ts,
            "venue": self.venue_kind})

    def apply_trade(self, trade: Trade) -> bool:
        """Book one execution, once per venue trade id. False: not one of our orders."""
        w = self.by_venue_id(trade.venue_order_id)
        venue_at = venue_time(trade.venue_ts, self.at)
        if w is None or repo.has_fill(self.eng.conn, self.account_id, venue_at,
                                      trade.trade_id):
            return False
        try:
            w.state, applied = apply_execution(w.state, Fill(trade.trade_id, trade.qty,
                                                             trade.price))
        except InvalidTransition:
            return False
        if not applied:
            return False
        qty, commission = received(trade)
        realized = self.book.apply(trade.symbol, trade.side, qty, trade.price, commission)
        payload = {
            "fill_id": trade.trade_id, "order_id": w.row.order_id,
            "client_order_id": w.row.client_order_id, "account_id": self.account_id,
            "symbol": trade.symbol, "side": trade.side, "qty": fmt(qty),
            "price": fmt(trade.price), "commission": fmt(commission),
            "fee": fmt(trade.fee), "fee_currency": trade.fee_currency,
            "requested_qty": fmt(w.row.qty), "realized_pnl": fmt(realized) if realized else "0",
            "venue": self.venue_kind, "venue_ts": trade.venue_ts}
        seq = self.eng.record(self.at, "fill", payload)
        repo.insert_live_fill(self.eng.conn, (
            trade.trade_id, w.row.order_id, self.account_id, trade.symbol, trade.side,
            fmt(qty), fmt(trade.price), fmt(commission), payload["realized_pnl"], venue_at,
            seq, 0, self.at, trade.fee_currency))
        self.save_order(w)
        return True


def received(trade: Trade) -> tuple[Decimal, Decimal]:
    """(quantity booked, commission in the quote currency) of an execution: a fee in the
    quote currency is a commission; a fee in the base asset reduces the quantity received
    on a buy, and on a sell is that much base asset sold for nothing (its value at the
    trade's price is the commission)."""
    base = trade.symbol.split("/")[0] if "/" in trade.symbol else None
    if trade.fee_currency is None or trade.fee_currency != base:
        return trade.qty, trade.fee
    if trade.side == "buy":
        return trade.qty - trade.fee, ZERO
    return trade.qty, trade.fee * trade.price


def _working(row: repo.OrderRow, venue_order_id: str | None, avg: str | None) -> Working:
    notional = ZERO if avg is None else Decimal(avg) * row.filled_qty
    return Working(row, OrderState(row.qty, Status(row.status), row.filled_qty, notional),
                   None if venue_order_id is None else VenueOrderId(venue_order_id))


def load_working(a: Account) -> None:
    """The account's orders still working at the venue (of any cycle)."""
    for found in repo.working_orders(a.eng.conn, a.account_id):
        w = _working(*found)
        a.orders[w.row.client_order_id] = w


def working(a: Account) -> Iterator[Working]:
    return (w for w in a.orders.values() if w.state.status in WORKING)


def unsettled(a: Account) -> bool:
    return any(not w.settled for w in a.orders.values())


# ---------------------------------------------------------------- asking (no database)


def _safely(a: Account, ask: Callable[[], Any]) -> tuple[Any, VenueError | None]:
    """Ask the venue; a failure is an answer too (journaled by the next record). An
    authentication failure, or a venue that does not answer, blocks the account for the
    rest of the command."""
    try:
        return ask(), None
    except VenueError as exc:
        if exc.kind == "auth":
            a.blocked = "venue_error:auth"
        elif a.venue.down:
            a.blocked = a.blocked or "venue_error:unreachable"
        return None, exc


def ask_poll(a: Account, *, all_trades: bool = False) -> None:
    """Each working order's status; then the executions since the cursor while an order
    awaits some, or always (``all_trades``: a reconciliation)."""
    for w in sorted((w for w in working(a) if w.asking), key=lambda w: w.row.order_id):
        report, error = _safely(a, functools.partial(a.venue.order, w.row.client_order_id,
                                                     w.row.symbol))
        if error is not None:
            a.later(_venue_error, a, error, "order")
        elif report is not None:
            w.heard_of(report)
            a.later(a.apply_report, w, report, "order")
        if a.blocked:
            return
        if report is None and error is None and w.state.status in (Status.SUBMITTED,
                                                                    Status.UNKNOWN):
            ask_send(a, w)  # the venue never got it (a crash before sending): send it now
    if not (all_trades or any(w.venue_filled > w.state.filled_qty
                              for w in a.orders.values())):
        return
    result, error = _safely(a, functools.partial(a.venue.trades, a.cursor))
    if error is not None:
        a.later(_venue_error, a, error, "trades")
        return
    trades, a.cursor = result
    a.later(a.apply_trades, trades, a.cursor)


def ask_send(a: Account, w: Working) -> None:
    """Send an order (again: the same client order id, so the venue refuses a second
    one); an unknown outcome or a duplicate id is looked up and adopted."""
    o = w.row
    w.fresh = False
    order = LiveOrder(o.client_order_id, o.symbol, o.side, w.state.qty)  # type: ignore[arg-type]
    report, error = _safely(a, lambda: a.venue.submit(order))
    faults.sent()
    if error is not None and error.kind in ("unknown", "duplicate_id", "transient"):
        a.later(_venue_error, a, error, "submit")
        a.later(_unknown, a, w)  # the outcome is looked up now
        report, error = _safely(a, functools.partial(a.venue.order, o.client_order_id,
                                                     o.symbol))
    if error is not None:
        a.later(_venue_error, a, error, "submit")
        if error.kind == "reject":
            a.later(_rejected, a, w, "venue_reject", error.message)
    elif report is not None:
        w.heard_of(report)
        a.later(a.apply_report, w, report, "submit")


def ask_sends(a: Account) -> None:
    """Send the orders written ahead (sells before buys, by symbol)."""
    for w in sorted((w for w in a.orders.values() if w.fresh),
                    key=lambda w: (w.row.side != "sell", w.row.symbol)):
        if a.blocked:
            return
        ask_send(a, w)


def ask_rules(a: Account, symbols: list[str]) -> None:
    for symbol in sorted(set(symbols)):
        rules, error = _safely(a, functools.partial(a.venue.rules, symbol))
        a.rules[symbol] = rules if error is None else error


def ask_reconcile(a: Account, mark_of: Callable[[str], Decimal | None],
                  superseded_by: str | None) -> None:
    """SPEC §8 step 1: what earlier cycles left working is canceled (a new cycle), the
    open orders' statuses and executions are asked, then cash and positions."""
    if superseded_by is not None:
        ask_cancels(a, superseded_by)
    ask_poll(a, all_trades=True)
    if a.blocked:
        a.later(_skip, a)
        return
    snap, error = _safely(a, a.venue.snapshot)
    if error is not None:  # without the venue's truth the account is not sized
        a.later(_venue_error, a, error, "snapshot")
        a.blocked = a.blocked or f"venue_error:{error.kind}"
        a.later(_skip, a)
        return
    a.later(_adopt, a, snap, mark_of)


def ask_cancels(a: Account, by: str) -> None:
    """A new cycle first cancels what earlier cycles left working at the venue."""
    for w in sorted(working(a), key=lambda w: w.row.order_id):
        if w.row.cycle_id == by:
            continue
        report = OrderReport(ClientOrderId(w.row.client_order_id), w.venue_order_id,
                             w.state.status, "", w.state.filled_qty, w.state.avg_price, None)
        answer, error = _safely(a, functools.partial(a.venue.cancel, report, w.row.symbol))
        if answer is not None:
            w.heard_of(answer)
        a.later(_canceled, a, w, by, answer, error)
        if a.blocked:
            return


# ---------------------------------------------------------------- recording


def _venue_error(a: Account, exc: VenueError, call: str) -> None:
    a.eng.record(a.at, "venue.error", {"account_id": a.account_id, "call": call,
                                       "kind": exc.kind, "message": exc.message})


def _skip(a: Account) -> None:
    a.eng.record(a.at, "skip", {"account_id": a.account_id, "vault_id": a.acct.vault_id,
                                "reason": a.blocked})


def _unknown(a: Account, w: Working) -> None:
    w.state = move(w.state, Status.UNKNOWN)
    a.save_order(w)


def _rejected(a: Account, w: Working, reason: str, note: str) -> None:
    o = w.row
    w.state = move(w.state, Status.REJECTED)
    a.eng.record(a.at, "reject", {
        "order_id": o.order_id, "client_order_id": o.client_order_id,
        "account_id": a.account_id, "symbol": o.symbol, "reason": reason,
        "note": note, "requested_qty": fmt(w.state.qty), "venue": a.venue_kind})
    a.save_order(w, reason)


def _canceled(a: Account, w: Working, by: str, answer: OrderReport | None,
              error: VenueError | None) -> None:
    a.eng.record(a.at, "cancel", {
        "order_id": w.row.order_id, "client_order_id": w.row.client_order_id,
        "account_id": a.account_id, "symbol": w.row.symbol, "reason": "superseded",
        "by": by})
    if error is not None:
        _venue_error(a, error, "cancel")
    elif answer is not None:
        a.apply_report(w, answer, "cancel")


def _adopt(a: Account, snap: wire.Snapshot, mark_of: Callable[[str], Decimal | None]
           ) -> None:
    """A position that differs after every known execution is a ``discrepancy``: the
    venue's quantity is adopted at the mark; cash that differs then is a capital ``flow``."""
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
            "account_id": a.account_id, "symbol": symbol, "ours": fmt(ours),
            "venue": fmt(theirs), "cause": "external", "mark": fmt(mark),
            "realized_pnl": fmt(realized) if realized else "0"})
    flow = snap.cash - book.cash
    if flow:
        # the first cash seen at the venue is the account's funding, not news
        opening = not repo.flows(a.eng.conn, a.account_id)
        book.cash = snap.cash
        book.touched = True
        payload: dict[str, Any] = {"account_id": a.account_id, "amount": fmt(flow),
                   "kind": "deposit" if flow > 0 else "withdrawal", "source": "reconcile"}
        if opening:
            payload["opening"] = True
        seq = a.eng.record(a.at, "flow", payload)
        repo.insert_flow(a.eng.conn, a.account_id, seq, a.at, flow, "reconcile", None)
    if snap.equity is not None:
        a.eng.record(a.at, "venue.equity", {"account_id": a.account_id,
                                            "equity": fmt(snap.equity), "cash": fmt(snap.cash)})


def _write_ahead(a: Account, orders: list[repo.OrderRow], marks: dict[str, Decimal]
                 ) -> None:
    """Size one side's orders to the venue's rules (buys to the cash after the sells) and
    commit ``submitted`` for each before anything is sent (or reject it here)."""
    cash = a.book.cash
    for o in sorted(orders, key=lambda o: o.symbol):
        if a.blocked:
            return
        mark = marks.get(o.symbol)
        w = Working(o, OrderState(o.qty))
        a.orders[o.client_order_id] = w
        qty, why = _venue_qty(a, o, mark, cash if o.side == "buy" else None)
        if why is not None or mark is None:
            _rejected(a, w, why or "no_mark", f"{fmt(o.qty)} requested")
            continue
        if o.side == "buy":
            cash -= qty * mark
        w.state, w.fresh = move(OrderState(qty), Status.SUBMITTED), True
        a.eng.record(a.at, "submitted", {
            "order_id": o.order_id, "client_order_id": o.client_order_id,
            "account_id": a.account_id, "symbol": o.symbol, "side": o.side,
            "qty": fmt(qty), "mark": fmt(mark), "venue": a.venue_kind})
        a.save_order(w)


def _venue_qty(a: Account, o: repo.OrderRow, mark: Decimal | None,
               cash: Decimal | None) -> tuple[Decimal, str | None]:
    """The quantity the venue takes: its precision (toward zero), a buy within the cash,
    at least the venue's minimums (else ``below_venue_minimum``)."""
    if mark is None:
        return ZERO, "no_mark"
    rules = a.rules.get(o.symbol)
    if rules is None:
        return ZERO, "venue_error:rules"
    if isinstance(rules, VenueError):
        return ZERO, f"venue_error:{rules.kind}"
    qty = (o.qty // rules.qty_step) * rules.qty_step
    if cash is not None and qty * mark > cash:
        qty = ((max(cash, ZERO) / mark) // rules.qty_step) * rules.qty_step
        if qty * mark < rules.min_notional or qty <= 0:
            return ZERO, "insufficient_cash"
    if qty <= 0 or qty < rules.min_qty or qty * mark < rules.min_notional:
        return ZERO, "below_venue_minimum"
    return qty, None


# ---------------------------------------------------------------- fan-out over accounts


@dataclass(frozen=True, slots=True)
class Settle:
    timeout: int = 60 * US  # µs: how long a cycle waits for its orders (--settle-timeout)
    interval: float = 1.0  # seconds between polls, not money


def fan_out(eng: Engine, accounts: list[Account], ask: Callable[[Account], None]) -> None:
    """Ask every account's venue at once (a bounded pool of threads: the global cap on
    requests in flight), then record each account's answers in account order. Replay
    asks the tape, one account after the other, in the same order."""
    pool: Executor | None = getattr(eng.venues, "pool", None)
    if pool is None or len(accounts) < 2:
        for a in accounts:
            ask(a)
            a.record()
        return
    futures = [pool.submit(ask, a) for a in accounts]
    try:
        for a, future in zip(accounts, futures, strict=True):
            future.result()
            a.record()
    except BaseException:
        for future in futures:
            future.cancel()
        raise


def settle_rounds(eng: Engine, accounts: list[Account], settle: Settle) -> None:
    """Poll the accounts with unsettled orders, round after round, until they settle or
    ``settle.timeout`` passes (replay: as many rounds as the original asked)."""
    clock: Waiter | None = getattr(eng.venues, "clock", None)
    tape: Tape | None = getattr(eng.venues, "tape", None)
    deadline = clock.precise() + settle.timeout if clock is not None else 0
    pause = 0.05  # seconds, doubling up to the interval; not money
    while True:
        left = [a for a in accounts if unsettled(a) and not a.blocked]
        if not left:
            return
        if tape is not None:
            nxt = tape.peek()
            if nxt is None or nxt.get("account_id") != left[0].account_id or nxt.get(
                    "call") not in ("order", "trades"):
                return
        else:
            assert clock is not None
            if clock.precise() >= deadline:
                return
            clock.sleep(min(pause, settle.interval))
            pause = min(pause * 2, settle.interval)
        fan_out(eng, left, ask_poll)


# ---------------------------------------------------------------- what commands call


def open_accounts(eng: Engine, accounts: list[repo.AccountRow], at: int,
                  books: dict[str, Book] | None = None) -> list[Account]:
    """The live accounts of a command, in account order."""
    from vanta_box.service.books import load_books

    books = books if books is not None else load_books(eng.conn, accounts)
    tape: Tape | None = getattr(eng.venues, "tape", None)
    symbols = frozenset(repo.instruments(eng.conn)) if tape is None else frozenset()
    out = []
    for acct in sorted(accounts, key=lambda a: a.account_id):
        venue = None if tape is not None else eng.venues.live_for(  # type: ignore[attr-defined]
            acct, symbols)
        a = Account(eng, acct, books[acct.account_id], Asked(acct.account_id, venue, tape),
                    at)
        a.cursor = repo.venue_cursor(eng.conn, acct.account_id)
        out.append(a)
    return out


def reconcile_accounts(eng: Engine, accounts: list[repo.AccountRow], at: int,
                       superseded_by: str | None) -> dict[str, str]:
    """Reconcile each live account (SPEC §8 step 1); returns the blocked ones."""
    opened = open_accounts(eng, accounts, at)
    for a in opened:
        load_working(a)

    def mark_of(symbol: str) -> Decimal | None:
        return repo.marks_at(eng.conn, at, [symbol]).get(symbol)

    fan_out(eng, opened, lambda a: ask_reconcile(a, mark_of, superseded_by))
    return {a.account_id: a.blocked for a in opened if a.blocked}


def execute_accounts(eng: Engine, work: list[tuple[Account, list[repo.OrderRow]]],
                     marks: dict[str, Decimal], settle: Settle) -> None:
    """SPEC §8 steps 3-4 for every live account at once: sells written ahead, sent and
    settled; then buys sized to the cash after the sells, sent and settled."""
    accounts = [a for a, _ in work]
    orders = {a.account_id: o for a, o in work}
    fan_out(eng, accounts, lambda a: ask_rules(a, [o.symbol for o in orders[a.account_id]]))
    for side in ("sell", "buy"):
        for a in accounts:
            with eng.tx():
                _write_ahead(a, [o for o in orders[a.account_id] if o.side == side], marks)
        sending = [a for a in accounts if any(w.fresh for w in a.orders.values())]
        fan_out(eng, sending, ask_sends)
        settle_rounds(eng, accounts, settle)


def sync_accounts(eng: Engine, accounts: list[repo.AccountRow], at: int,
                  settle: Settle | None) -> int:
    """Ask the venues about every working order (and wait up to ``settle`` for them to
    end); returns how many are still working."""
    opened = open_accounts(eng, accounts, at)
    for a in opened:
        load_working(a)
    asked = [a for a in opened if any(working(a)) or settle is not None]
    # a resumption (settle given) asks every execution since the cursor
    fan_out(eng, asked, lambda a: ask_poll(a, all_trades=settle is not None))
    if settle is not None:
        settle_rounds(eng, asked, settle)
    return sum(1 for a in asked for _ in working(a))
