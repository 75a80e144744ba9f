"""Execution of staged orders on each account's venue, in batches.

Order: the manager's account first, then followers by id; in each account sells before
buys. The instant venues (paper, shadow: ``execution.paper``) speak the live venues'
protocol and answer at once: each batch of accounts is one transaction, the venue's answer
is journaled (``fill`` or ``reject``, no ``submitted`` before it), and books, orders and
fills change together.
If anything raises inside a batch, the batch rolls back and the command stops: running the
cycle again resubmits the same client_order_ids, which a venue refuses to trade twice.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from vanta_box.core import ids
from vanta_box.core.canonical import Template
from vanta_box.core.models import Execution, Instrument
from vanta_box.core.money import ZERO, fmt
from vanta_box.domain.orders import WORKING, Status
from vanta_box.execution.venue import LiveOrder, LiveVenue, OrderReport, VenueError
from vanta_box.inputs.vaults import vault_from_dict
from vanta_box.service import live
from vanta_box.service.books import BATCH_ACCOUNTS, Book, load_books
from vanta_box.service.engine import Engine
from vanta_box.service.live import Settle
from vanta_box.service.venues import is_live
from vanta_box.store import repo

BATCH_ORDERS = 20000
REJECTED = Status.REJECTED
FILL_EVENT = Template("fill_id", "order_id", "client_order_id", "account_id", "symbol", "side",
                      "qty", "price", "commission", "requested_qty", "realized_pnl", "venue",
                      "mark").expect_keys(
    "account_id", "client_order_id", "commission", "fill_id", "mark", "order_id", "price",
    "qty", "realized_pnl", "requested_qty", "side", "symbol", "venue")


@dataclass
class ExecutionReport:
    fills: int = 0
    rejects: int = 0
    working: int = 0  # live orders still working at their venue when the cycle ended


def fill_payload(order_id: str, coid: str, account_id: str, symbol: str, side: str,
                 ex: Execution, realized: Decimal, *, requested: str | None = None,
                 venue: str | None = None, mark: str | None = None,
                 shadow: bool = False) -> dict[str, Any]:
    """The ``fill`` event. ``venue`` is set when the fill is a venue's answer (an input to
    replay; the shadow venue's too, ``shadow`` marking it); a fill booked by vanta itself (a
    manual trade) has none. ``requested`` is the requested quantity's text, when known."""
    requested = requested if requested is not None else fmt(ex.requested_qty)
    payload: dict[str, Any] = {
        "fill_id": order_id, "order_id": order_id, "client_order_id": coid,
        "account_id": account_id, "symbol": symbol, "side": side,
        "qty": requested if ex.qty == ex.requested_qty else fmt(ex.qty),
        "price": fmt(ex.price), "commission": fmt(ex.commission),
        "requested_qty": requested, "realized_pnl": fmt(realized) if realized else "0",
    }
    if ex.note:
        payload["note"] = ex.note
    if venue is not None:
        payload["venue"] = venue
        payload["mark"] = mark
    if shadow:
        payload["shadow"] = True
    return payload


def settled(o: repo.OrderRow, qty: str, status: str, filled: str,
            reason: str | None) -> repo.SettledOrder:
    return (o.order_id, o.client_order_id, o.cycle_id, o.account_id, o.parent_id, o.kind,
            o.symbol, o.side, qty, status, filled, reason)


def execution_from_payload(kind: str, payload: dict[str, Any]) -> Execution:
    """Rebuild a venue's answer from its journal event (replay)."""
    if kind == "reject":
        return Execution(ZERO, ZERO, ZERO, Decimal(payload["requested_qty"]),
                         reject_reason=payload["reason"], note=payload.get("note"))
    return Execution(Decimal(payload["qty"]), Decimal(payload["price"]),
                     Decimal(payload["commission"]), Decimal(payload["requested_qty"]),
                     note=payload.get("note"))


@dataclass
class Context:
    """What staging already loaded, handed to execution in the same process."""

    marks: dict[str, Decimal]
    instruments: dict[str, Instrument]


class AccountOrders(Protocol):
    """One account's orders: a list of rows, or a cycle's ``Staged`` orders."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[repo.OrderRow]: ...


class Staged:
    """One account's orders staged by a cycle, in journal order, as (symbol, side, qty,
    client_order_id): made into rows only when the account's batch executes, a cycle of
    half a million orders holds them in a third of the memory of their rows."""

    __slots__ = ("account_id", "cycle_id", "kind", "orders")

    def __init__(self, cycle_id: str, account_id: str, kind: str) -> None:
        self.cycle_id, self.account_id, self.kind = cycle_id, account_id, kind
        self.orders: list[tuple[str, str, Decimal, str]] = []

    def __len__(self) -> int:
        return len(self.orders)

    def __iter__(self) -> Iterator[repo.OrderRow]:
        cid, account_id, kind = self.cycle_id, self.account_id, self.kind
        for symbol, side, qty, coid in self.orders:
            yield repo.OrderRow(ids.order_id(cid, account_id, symbol), coid, cid, account_id,
                                ids.intent_id(cid, symbol), kind, symbol, side, qty, "staged",
                                ZERO, None)


# Orders to execute: a list of rows, or each account's orders by account id.
Orders = Sequence[repo.OrderRow] | Mapping[str, AccountOrders]


def execute_orders(eng: Engine, orders: Orders, at: int, context: Context | None = None,
                   settle: Settle | None = None) -> ExecutionReport:
    """Execute staged orders at the marks of ``at``: the instant venues' in batches (one
    transaction each), each live account's in write-ahead steps (``service.live``)."""
    report = ExecutionReport()
    if not orders:
        return report
    conn = eng.conn
    by_account: dict[str, list[repo.OrderRow]] = {}
    if isinstance(orders, Mapping):
        groups = orders
    else:
        for o in orders:
            by_account.setdefault(o.account_id, []).append(o)
        groups = by_account
    accounts = {a.account_id: a for a in repo.accounts(conn) if a.account_id in groups}
    if context is None:
        instruments = repo.instruments(conn)
        marks = repo.marks_at(conn, at, {o.symbol for group in groups.values() for o in group})
    else:
        instruments, marks = context.instruments, context.marks
    # The live accounts' books; an instant venue's are read with its batch (_run_batch).
    books = load_books(conn, [a for a in accounts.values() if is_live(a)])
    vaults = {}
    for acct in accounts.values():
        if acct.vault_id not in vaults:
            row = repo.vault_row(conn, acct.vault_id)
            assert row is not None
            vaults[acct.vault_id] = vault_from_dict(row.config)
    for account_id, acct in accounts.items():
        if is_live(acct) and account_id not in by_account:  # a live account's, as rows
            by_account[account_id] = list(groups[account_id])
    sequence = sorted(groups, key=lambda a: (accounts[a].vault_id,
                                             accounts[a].role != "manager", a))
    batch: list[str] = []
    size = 0

    def run_batch(full: bool = False) -> None:
        nonlocal batch, size
        if batch:
            _run_batch(eng, batch, groups, accounts, vaults, instruments, marks, at, report)
            if full:  # progress on long work: a full batch, more to come
                eng.progress(f"executed orders of {len(batch)} accounts")
        batch, size = [], 0

    live_ids = []
    for account_id in sequence:
        if is_live(accounts[account_id]):
            live_ids.append(account_id)  # worked together, after the instant venues
            continue
        batch.append(account_id)
        size += len(groups[account_id])
        if size >= BATCH_ORDERS or len(batch) >= BATCH_ACCOUNTS:
            run_batch(full=True)
    run_batch()
    if live_ids:
        _run_live(eng, [accounts[i] for i in live_ids], books, by_account, marks, at,
                  settle or Settle(), report)
    return report


def _run_live(eng: Engine, accts: list[repo.AccountRow], books: dict[str, Book],
              by_account: dict[str, list[repo.OrderRow]], marks: dict[str, Decimal], at: int,
              settle: Settle, report: ExecutionReport) -> None:
    opened = live.open_accounts(eng, accts, at, books)
    live.execute_accounts(eng, [(a, by_account[a.account_id]) for a in opened], marks, settle)
    for a in opened:
        for w in a.orders.values():
            if w.state.status == Status.REJECTED:
                report.rejects += 1
            elif w.state.filled_qty:
                report.fills += 1
            if w.state.status in WORKING:
                report.working += 1


def _rejected(o: repo.OrderRow, reason: str, note: str) -> OrderReport:
    return OrderReport(o.client_order_id, None, REJECTED,  # type: ignore[arg-type]
                       "rejected", ZERO, None, None, reason, note)


def _ask(venue: LiveVenue, o: repo.OrderRow) -> OrderReport:
    """An instant venue's final answer to the order. A client order id the venue already
    has is looked up (its answer adopted); without one, the order is rejected here."""
    try:
        order = LiveOrder(o.client_order_id, o.symbol, o.side, o.qty)  # type: ignore[arg-type]
        return venue.submit(order)
    except VenueError as error:
        if error.kind != "duplicate_id":
            raise
        found = venue.order(o.client_order_id, o.symbol)
        if found is not None:
            return found
        return _rejected(o, "duplicate_client_order_id",
                         "the venue already has this client_order_id and no fill for it")
    except decimal.InvalidOperation:  # the paper venue's sums past 60 digits
        return _rejected(o, "arithmetic_limit", "a quantity needs more than 60 digits")


def _run_batch(eng: Engine, batch: list[str], groups: Mapping[str, AccountOrders],
               accounts: dict[str, repo.AccountRow], vaults: dict[str, Any],
               instruments: dict[str, Instrument], marks: dict[str, Decimal], at: int,
               report: ExecutionReport) -> None:
    done: list[repo.SettledOrder] = []
    fills: list[tuple[Any, ...]] = []
    mark_texts: dict[str, str] = {}
    with eng.tx():
        books = load_books(eng.conn, [accounts[a] for a in batch])  # the batch's alone
        for account_id in batch:
            acct = accounts[account_id]
            book = books[account_id]
            venue = eng.venues.instant_for(acct, vaults[acct.vault_id], book, marks,
                                           instruments)
            kind = venue.kind
            ordered = sorted(groups[account_id], key=lambda o: (o.side != "sell", o.symbol))
            shadow = acct.mode == "shadow"
            cursor: str | None = None
            for o in ordered:
                mark = marks.get(o.symbol)
                qty_text = fmt(o.qty)
                if mark is None:
                    eng.record(at, "reject", {"order_id": o.order_id,
                                              "client_order_id": o.client_order_id,
                                              "account_id": account_id, "symbol": o.symbol,
                                              "reason": "no_mark", "requested_qty": qty_text})
                    done.append(settled(o, qty_text, "rejected", "0", "no_mark"))
                    report.rejects += 1
                    continue
                mark_text = mark_texts.get(o.symbol) or mark_texts.setdefault(o.symbol,
                                                                              fmt(mark))
                answer = _ask(venue, o)
                book.executed_ids.add(o.client_order_id)
                if answer.status is REJECTED:
                    reason = answer.reason or answer.raw_status
                    rejection = {"order_id": o.order_id, "client_order_id": o.client_order_id,
                                 "account_id": account_id, "symbol": o.symbol,
                                 "reason": reason, "requested_qty": qty_text,
                                 "venue": kind, "mark": mark_text}
                    if answer.note:
                        rejection["note"] = answer.note
                    eng.record(at, "reject", rejection)
                    done.append(settled(o, qty_text, "rejected", "0", reason))
                    report.rejects += 1
                    continue
                trades, cursor = venue.trades(cursor)
                (trade,) = trades  # an instant venue's order: one execution, at once
                realized = book.apply(o.symbol, o.side, trade.qty, trade.price, trade.fee)
                if answer.note or shadow:  # keys beyond the template's
                    ex = Execution(trade.qty, trade.price, trade.fee, o.qty, note=answer.note)
                    payload = fill_payload(o.order_id, o.client_order_id, account_id,
                                           o.symbol, o.side, ex, realized, requested=qty_text,
                                           venue=kind, mark=mark_text, shadow=shadow)
                    filled, price, commission, realized_text = (
                        payload["qty"], payload["price"], payload["commission"],
                        payload["realized_pnl"])
                    seq = eng.record(at, "fill", payload)
                else:  # the same payload as fill_payload's, rendered without a dict
                    filled = qty_text if trade.qty == o.qty else fmt(trade.qty)
                    price, commission = fmt(trade.price), fmt(trade.fee)
                    realized_text = fmt(realized) if realized else "0"
                    seq = eng.record_rendered(at, "fill", FILL_EVENT.render_values((
                        account_id, o.client_order_id, commission, o.order_id, mark_text,
                        o.order_id, price, filled, realized_text, qty_text, o.side, o.symbol,
                        kind)))
                fills.append((o.order_id, o.order_id, account_id, o.symbol, o.side,
                              filled, price, commission, realized_text, at, seq, int(shadow)))
                done.append(settled(o, qty_text, "shadow" if shadow else "filled",
                                    filled, answer.note))
                report.fills += 1
        repo.settle_orders(eng.conn, done)
        repo.insert_fills(eng.conn, fills)
        upserts, deletes, money = [], [], []
        for account_id in batch:
            book = books[account_id]
            if book.touched:
                u, d = book.changes()
                upserts += u
                deletes += d
                money.append((fmt(book.cash), fmt(book.realized), fmt(book.commissions),
                              account_id))
        repo.save_positions(eng.conn, upserts, deletes)
        repo.save_account_money(eng.conn, money)
