"""An account's books in memory during a command: cash, positions and FIFO lots.

For the paper venue these books are the venue's truth; for a real venue they are ours,
reconciled against the venue. Positions are parsed lazily (lots only when a fill needs
them) and written back only when they changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal

from vanta_box.core.money import ZERO, fmt
from vanta_box.domain.pnl import Position, apply_fill
from vanta_box.store import repo
from vanta_box.store.db import Connection


def parse_lots(text: str) -> tuple[tuple[Decimal, Decimal], ...]:
    """Read the canonical ``[["qty","cost"],...]`` this module writes (split, not a JSON
    parse: it is on the hot path; anything else falls back to JSON)."""
    if text == "[]":
        return ()
    if text.startswith('[["') and text.endswith('"]]') and "\\" not in text:
        pairs = [pair.split('","') for pair in text[3:-3].split('"],["')]
        if all(len(p) == 2 for p in pairs):
            return tuple((Decimal(q), Decimal(c)) for q, c in pairs)
    return tuple((Decimal(q), Decimal(c)) for q, c in json.loads(text))


class Book:
    __slots__ = (
        "_dirty",
        "_parsed",
        "_raw",
        "account_id",
        "cash",
        "commissions",
        "executed_ids",
        "realized",
        "touched",
    )

    def __init__(self, account: repo.AccountRow) -> None:
        self.account_id = account.account_id
        self.cash = account.cash
        self.realized = account.realized_pnl
        self.commissions = account.commissions
        self.executed_ids: set[str] = set()
        self._raw: dict[str, repo.PositionRecord] = {}
        self._parsed: dict[str, Position] = {}
        self._dirty: set[str] = set()
        self.touched = False

    def load(self, record: repo.PositionRecord) -> None:
        self._raw[record[1]] = record

    def symbols(self) -> list[str]:
        return sorted(set(self._raw) | {s for s, p in self._parsed.items() if p.qty != 0})

    def held(self, symbol: str) -> Decimal:
        parsed = self._parsed.get(symbol)
        if parsed is not None:
            return parsed.qty
        raw = self._raw.get(symbol)
        return Decimal(raw[2]) if raw else ZERO

    def holdings(self) -> dict[str, Decimal]:
        return {s: self.held(s) for s in self.symbols() if self.held(s) != 0}

    def position(self, symbol: str) -> Position:
        parsed = self._parsed.get(symbol)
        if parsed is not None:
            return parsed
        raw = self._raw.get(symbol)
        if raw is None:
            return Position.empty()
        lots = parse_lots(raw[4])
        parsed = Position(Decimal(raw[2]), Decimal(raw[3]), lots, Decimal(raw[5]))
        self._parsed[symbol] = parsed
        return parsed

    def mark_of(self, symbol: str, marks: Mapping[str, Decimal]) -> Decimal:
        """The mark, or the last fill price when no price is known at that time."""
        mark = marks.get(symbol)
        if mark is not None:
            return mark
        return self.position(symbol).last_price

    def equity(self, marks: Mapping[str, Decimal]) -> Decimal:
        total = self.cash
        for symbol in self.symbols():
            qty = self.held(symbol)
            if qty:
                total += qty * self.mark_of(symbol, marks)
        return total

    def apply(self, symbol: str, side: str, qty: Decimal, price: Decimal,
              commission: Decimal) -> Decimal:
        """Book a fill: FIFO lots, cash, realized PnL and commissions. Returns realized."""
        position, realized = apply_fill(self.position(symbol), side, qty, price, commission)
        self._parsed[symbol] = position
        self._dirty.add(symbol)
        notional = qty * price
        self.cash += -notional - commission if side == "buy" else notional - commission
        self.realized += realized
        self.commissions += commission
        self.touched = True
        return realized

    def changes(self) -> tuple[list[repo.PositionRecord], list[tuple[str, str]]]:
        upserts: list[repo.PositionRecord] = []
        deletes: list[tuple[str, str]] = []
        for symbol in sorted(self._dirty):
            p = self._parsed[symbol]
            if p.qty == 0 and not p.lots:
                deletes.append((self.account_id, symbol))
                continue
            # canonical JSON of [[qty, cost], ...]: decimal strings need no escaping
            lots = "[" + ",".join(f'["{fmt(q)}","{fmt(c)}"]' for q, c in p.lots) + "]"
            upserts.append((self.account_id, symbol, fmt(p.qty), fmt(p.cost_basis), lots,
                            fmt(p.last_price)))
        self._dirty.clear()
        self.touched = False
        return upserts, deletes


# Commands over many accounts (a cycle's staging and execution) hold the books of at most
# this many accounts at a time: a small VPS (1-2 GB) runs a cycle of 10,000 followers.
BATCH_ACCOUNTS = 500


def load_books(conn: Connection, accounts: list[repo.AccountRow]) -> dict[str, Book]:
    books = {a.account_id: Book(a) for a in accounts}
    for record in repo.positions(conn, list(books)):
        books[record[0]].load(record)
    return books
