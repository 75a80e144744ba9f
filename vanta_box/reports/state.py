"""The state documents of SPEC §3, built from the projections at a moment ``as_of``.

Pure reads: the same database and the same ``as_of`` give the same documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from vanta_box.core.money import ZERO, fmt
from vanta_box.core.timeutil import fmt_ts
from vanta_box.inputs.vaults import vault_from_dict, vault_to_dict
from vanta_box.service import pending
from vanta_box.service.books import BATCH_ACCOUNTS, Book, load_books
from vanta_box.store import journal, repo
from vanta_box.store.db import Connection

TRADE_KINDS = ("intent", "order", "child_order", "submitted", "fill", "reject", "cancel", "skip")
FEE_KINDS = ("fee", "fee_reversal")


def vault_doc(conn: Connection, as_of: int) -> dict[str, Any]:
    return {"as_of": fmt_ts(as_of), "vaults": [
        vault_to_dict(vault_from_dict(v.config)) for v in repo.vault_rows(conn)]}


def overlay_doc(conn: Connection, as_of: int) -> dict[str, Any]:
    items = []
    for o in repo.overlays(conn):
        if not o.in_force(as_of):
            continue
        item: dict[str, Any] = {"vault_id": o.vault_id, "kind": o.kind,
                                "set_at": fmt_ts(o.set_at), "expires_at": fmt_ts(o.expires_at)}
        if o.kind == "boost":
            item["persona"] = o.persona
            item["factor"] = fmt(o.factor)
        items.append(item)
    return {"as_of": fmt_ts(as_of), "overlays": items}


def allocation_doc(conn: Connection, as_of: int) -> dict[str, Any]:
    vaults = []
    for v in repo.vault_rows(conn):
        row = conn.execute(
            "SELECT cycle_id FROM cycles WHERE vault_id = ? AND at <= ? ORDER BY at DESC LIMIT 1",
            (v.vault_id, as_of)).fetchone()
        personas = sorted(v.config.get("personas", []))
        entry: dict[str, Any] = {"vault_id": v.vault_id, "cycle_id": None, "status": v.status,
                                 "weights": {}, "cash_weight": "1", "personas": personas,
                                 "persona_allocations": []}
        if row:
            cycle = repo.cycle(conn, row[0])
            assert cycle is not None
            entry["cycle_id"] = cycle.cycle_id
            entry["status"] = cycle.vault_status
            entry["signal_as_of"] = (fmt_ts(cycle.signal_as_of)
                                     if cycle.signal_as_of is not None else None)
            for p, weights, cash in repo.allocations(conn, cycle.cycle_id):
                if sorted(p) == personas:
                    entry["weights"], entry["cash_weight"] = weights, cash
                else:
                    entry["persona_allocations"].append(
                        {"personas": p, "weights": weights, "cash_weight": cash})
        vaults.append(entry)
    return {"as_of": fmt_ts(as_of), "vaults": vaults}


@dataclass(frozen=True)
class Holdings:
    """Every account's books and the marks at one moment: loaded once, shared by the
    documents that value them (portfolio.json, pnl_summary.json, the HTML overview)."""

    as_of: int
    accounts: list[repo.AccountRow]
    books: dict[str, Book]
    marks: dict[str, Decimal]


def holdings(conn: Connection, as_of: int) -> Holdings:
    accounts = repo.accounts(conn)
    return Holdings(as_of, accounts, load_books(conn, accounts), _marks(conn, accounts, as_of))


def _marks(conn: Connection, accounts: list[repo.AccountRow], as_of: int) -> dict[str, Decimal]:
    held = repo.held_symbols(conn, [a.account_id for a in accounts])
    return repo.marks_at(conn, as_of, held)


def each_book(conn: Connection, as_of: int
              ) -> tuple[list[repo.AccountRow], dict[str, Decimal],
                         Iterator[tuple[repo.AccountRow, Book]]]:
    """Every account, the marks at ``as_of``, and every account's book in account order,
    read ``BATCH_ACCOUNTS`` accounts at a time (``emit``: the books of 10,000 followers are
    never all in memory)."""
    accounts = repo.accounts(conn)

    def books() -> Iterator[tuple[repo.AccountRow, Book]]:
        for start in range(0, len(accounts), BATCH_ACCOUNTS):
            batch = accounts[start:start + BATCH_ACCOUNTS]
            loaded = load_books(conn, batch)
            for a in batch:
                yield a, loaded[a.account_id]

    return accounts, _marks(conn, accounts, as_of), books()


def _holdings(conn: Connection, as_of: int, given: Holdings | None) -> Holdings:
    return given if given is not None and given.as_of == as_of else holdings(conn, as_of)


def position_lines(book: Book, marks: dict[str, Decimal]) -> list[dict[str, str]]:
    lines = []
    for symbol in book.symbols():
        p = book.position(symbol)
        if p.qty == 0:
            continue
        mark = book.mark_of(symbol, marks)
        lines.append({"symbol": symbol, "qty": fmt(p.qty), "avg_cost": fmt(p.avg_cost()),
                      "mark": fmt(mark), "market_value": fmt(p.qty * mark),
                      "unrealized_pnl": fmt(p.unrealized(mark)), "cost_basis": fmt(p.cost_basis)})
    return lines


def portfolio_account(a: repo.AccountRow, book: Book, marks: dict[str, Decimal]
                      ) -> dict[str, Any]:
    """One account of portfolio.json."""
    return {"account_id": a.account_id, "vault_id": a.vault_id, "role": a.role,
            "mode": a.mode, "status": a.status, "broker": a.broker_kind,
            "cash": fmt(book.cash), "equity": fmt(book.equity(marks)),
            "positions": position_lines(book, marks)}


def portfolio_doc(conn: Connection, as_of: int, loaded: Holdings | None = None
                  ) -> dict[str, Any]:
    h = _holdings(conn, as_of, loaded)
    return {"as_of": fmt_ts(as_of), "accounts": [
        portfolio_account(a, h.books[a.account_id], h.marks) for a in h.accounts]}


def fees_billed(conn: Connection) -> dict[str, Decimal]:
    """Net fees billed per account (entries minus reversals); empty before issue 4 tables."""
    totals: dict[str, Decimal] = {}
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'fee_entries'").fetchone()
    if not exists:
        return totals
    for account_id, fee_due in conn.execute("SELECT account_id, fee_due FROM fee_entries"):
        totals[account_id] = totals.get(account_id, ZERO) + Decimal(fee_due)
    return totals


def pnl_account(a: repo.AccountRow, book: Book, marks: dict[str, Decimal],
                billed: dict[str, Decimal], returns: dict[str, str] | None = None
                ) -> dict[str, Any]:
    """One account of pnl_summary.json (``billed``: ``fees_billed``; ``returns``: the
    account's ``returns_of`` (contributions, profit, time-weighted returns))."""
    unrealized = sum((book.position(s).unrealized(book.mark_of(s, marks))
                      for s in book.symbols()), ZERO)
    return {"account_id": a.account_id, "vault_id": a.vault_id, "mode": a.mode,
            "realized_pnl": fmt(book.realized), "unrealized_pnl": fmt(unrealized),
            "commissions": fmt(book.commissions),
            "fees_billed": fmt(billed.get(a.account_id, ZERO)),
            "equity": fmt(book.equity(marks)), **(returns or {})}


def returns_of(conn: Connection, as_of: int
               ) -> Callable[[repo.AccountRow, Book], dict[str, str]]:
    """Each account's net contributions, profit and time-weighted returns at ``as_of``
    (SPEC §9; service.flows.returns)."""
    from vanta_box.service import flows

    by_account = flows.flows_by_account(conn)
    marks = flows.MarkCache(conn)
    return lambda a, book: flows.returns(conn, a, book, as_of,
                                         by_account.get(a.account_id, []), marks)


def masters(accounts: list[repo.AccountRow]) -> dict[str, str]:
    """Each vault's manager account: the first in account order."""
    found: dict[str, str] = {}
    for a in accounts:
        if a.role == "manager":
            found.setdefault(a.vault_id, a.account_id)
    return found


def pnl_doc(conn: Connection, as_of: int, loaded: Holdings | None = None) -> dict[str, Any]:
    h = _holdings(conn, as_of, loaded)
    billed = fees_billed(conn)
    returns = returns_of(conn, as_of)
    rows = [pnl_account(a, h.books[a.account_id], h.marks, billed,
                        returns(a, h.books[a.account_id])) for a in h.accounts]
    navs = {vault_id: h.books[account_id].equity(h.marks)
            for vault_id, account_id in masters(h.accounts).items()}
    return pnl_summary(conn, as_of, rows, navs)


def pnl_summary(conn: Connection, as_of: int, rows: list[dict[str, Any]],
                navs: dict[str, Decimal]) -> dict[str, Any]:
    """pnl_summary.json from its account rows and each vault's NAV (its manager's
    equity)."""
    vaults = []
    for v in repo.vault_rows(conn):
        nav = navs.get(v.vault_id)
        peak = v.peak_nav
        drawdown = None
        if nav is not None and peak is not None and peak > 0:
            drawdown = max(ZERO, (peak - nav) / peak)
        vaults.append({"vault_id": v.vault_id, "status": v.status,
                       "nav": None if nav is None else fmt(nav),
                       "peak_nav": None if peak is None else fmt(peak),
                       "drawdown": None if drawdown is None else fmt(drawdown),
                       "last_cycle_nav": None if v.last_nav is None else fmt(v.last_nav)})
    from vanta_box.service.proofs import unsigned_head

    # ``head``: the journal's Merkle tree (size, root), unsigned: this file is rewritten
    # after every command and must stay the same bytes for the same journal; `vanta audit
    # head` signs it.
    return {"as_of": fmt_ts(as_of), "digest": str(journal.head(conn)), "accounts": rows,
            "vaults": vaults, "head": unsigned_head(conn)}


def queue_doc(conn: Connection, as_of: int) -> dict[str, Any]:
    """Orders staged and not executed yet, then orders still working at a live venue
    (with their status, filled quantity and the venue's order id)."""
    orders = [_queue_line(o) for o in pending.pending(conn)]
    for row, venue_order_id, avg_price in repo.working_orders(conn):
        orders.append({**_queue_line(row), "filled_qty": fmt(row.filled_qty),
                       "venue_order_id": venue_order_id, "avg_price": avg_price})
    return {"as_of": fmt_ts(as_of), "orders": orders}


def _queue_line(o: repo.OrderRow) -> dict[str, Any]:
    return {"order_id": o.order_id, "client_order_id": o.client_order_id,
            "account_id": o.account_id, "parent_id": o.parent_id, "cycle_id": o.cycle_id,
            "kind": o.kind, "symbol": o.symbol, "side": o.side, "qty": fmt(o.qty),
            "status": o.status}


def trade_line(event: journal.Event) -> dict[str, Any]:
    payload = json.loads(event.payload_json)
    line = {**payload, "seq": event.seq, "ts": event.ts, "kind": event.kind}
    line.setdefault("account_id", None)
    line.setdefault("order_id", payload.get("intent_id"))
    return line


def fee_line(event: journal.Event) -> dict[str, Any]:
    return {**json.loads(event.payload_json), "seq": event.seq, "ts": event.ts}
