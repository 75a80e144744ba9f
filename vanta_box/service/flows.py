"""Capital flows (SPEC §9): `vanta flow record`, and an account's history valued at any
moment (net contributions, profit, time-weighted returns).

A paper (or shadow) book's deposits and withdrawals are recorded by hand; a live account's
come from reconciliation (service.live journals the cash it cannot explain as a ``flow``,
its first funding included: a live account starts with no cash of ours). Both land in the
``flows`` projection. A flow changes cash and net contributions, never realized PnL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from vanta_box.core.errors import InputError, Refused
from vanta_box.core.money import ZERO, D, fmt
from vanta_box.core.timeutil import day_of, day_start, fmt_ts
from vanta_box.domain import flows as dflows
from vanta_box.domain.flows import Key, State, Timeline, chain, fill_move, flow_move
from vanta_box.service import timerules
from vanta_box.service.books import Book, load_books
from vanta_box.service.engine import Command, Engine, handles
from vanta_box.store import repo
from vanta_box.store.db import Connection

MAX_REF = 200


def is_live(acct: repo.AccountRow) -> bool:
    """A live account's cash is the venue's: its flows come from reconciliation."""
    return acct.broker_kind != "paper" and acct.mode != "shadow"


def flow_record_command(eng: Engine, account_id: str, deposit: Decimal | None,
                        withdrawal: Decimal | None, ref: str | None, at: int) -> Command:
    if (deposit is None) == (withdrawal is None):
        raise InputError("give exactly one of --deposit X or --withdrawal X",
                         field="--deposit/--withdrawal")
    amount = deposit if deposit is not None else withdrawal
    option = "--deposit" if deposit is not None else "--withdrawal"
    assert amount is not None
    if amount <= 0:
        raise InputError(f"amount must be greater than 0, got {fmt(amount)}", field=option)
    acct = repo.account(eng.conn, account_id)
    if acct is None:
        raise InputError(f"unknown account {account_id!r}", field="ACCOUNT")
    if is_live(acct):
        raise InputError(f"{account_id} is a live account at {acct.broker_kind}: its flows "
                         "come from reconciliation with the venue (vanta reconcile), not "
                         "from flow record", field="ACCOUNT")
    text = (ref or "").strip()
    if len(text) > MAX_REF:
        raise InputError(f"a reference has at most {MAX_REF} characters", field="--ref")
    if at < acct.onboarded_at:
        raise Refused(f"{account_id} was onboarded at {fmt_ts(acct.onboarded_at)}: no flow "
                      f"before that ({fmt_ts(at)})")
    timerules.account_change(eng.conn, acct, at, f"a capital flow of {account_id}")
    signed = amount if deposit is not None else -amount
    _check_cash(load_books(eng.conn, [acct])[account_id], signed)
    return Command.make("flow.record", at, {
        "account_id": account_id, "amount": fmt(signed),
        "kind": "deposit" if signed > 0 else "withdrawal", "ref": text or None})


def _check_cash(book: Book, signed: Decimal) -> None:
    if book.cash + signed < 0:
        raise Refused(f"{book.account_id} has {fmt(book.cash)} cash: a withdrawal of "
                      f"{fmt(-signed)} would make it negative")


@handles("flow.record")
def _flow_record(eng: Engine, cmd: Command) -> dict[str, Any]:
    p = cmd.payload
    acct = repo.account(eng.conn, p["account_id"])
    if acct is None:
        raise InputError(f"unknown account {p['account_id']!r}")
    book = load_books(eng.conn, [acct])[acct.account_id]
    amount = D(p["amount"])
    _check_cash(book, amount)
    with eng.tx():
        book.cash += amount
        repo.insert_flow(eng.conn, acct.account_id, eng.journal.seq, cmd.ts, amount,
                         "manual", p.get("ref"))
        repo.save_account_money(eng.conn, [(fmt(book.cash), fmt(book.realized),
                                            fmt(book.commissions), acct.account_id)])
    return {"account_id": acct.account_id, "amount": amount, "cash": book.cash}


# ---------------------------------------------------------------- valued history


class MarkCache:
    """``repo.marks_at`` remembered per (moment, symbol): one fee run values many accounts
    at the same midnights."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._seen: dict[tuple[int, str], Decimal | None] = {}

    def __call__(self, at: int, symbols: Sequence[str]) -> Mapping[str, Decimal]:
        missing = [s for s in symbols if (at, s) not in self._seen]
        if missing:
            found = repo.marks_at(self.conn, at, missing)
            for s in missing:
                self._seen[(at, s)] = found.get(s)
        out: dict[str, Decimal] = {}
        for s in symbols:
            mark = self._seen[(at, s)]
            if mark is not None:
                out[s] = mark
        return out


def now_state(acct: repo.AccountRow, book: Book, flows: Sequence[repo.FlowRow]) -> State:
    qty, last = {}, {}
    for symbol in book.symbols():
        held = book.held(symbol)
        if held:
            qty[symbol] = held
            last[symbol] = book.position(symbol).last_price
    return State(book.cash, acct.starting_cash + sum((f.amount for f in flows), ZERO), qty,
                 last)


def timeline(conn: Connection, acct: repo.AccountRow, book: Book | None = None,
             since: int | None = None, flows: Sequence[repo.FlowRow] | None = None
             ) -> Timeline:
    """The account's moves at or after ``since`` (None: all), over its books now."""
    if book is None:
        book = load_books(conn, [acct])[acct.account_id]
    if flows is None:
        flows = repo.flows(conn, acct.account_id)
    moves = [fill_move(at, seq, side, D(q), D(p), D(c), symbol)
             for _fid, _oid, symbol, side, q, p, c, _r, at, seq, _sh
             in repo.fills(conn, acct.account_id, since)]
    moves += [flow_move(f.at, f.seq, f.amount) for f in flows
              if since is None or f.at >= since]
    return Timeline(now_state(acct, book, flows), moves)


def month_start(at: int) -> int:
    d = day_of(at)
    return day_start(date(d.year, d.month, 1))


def returns(conn: Connection, acct: repo.AccountRow, book: Book, as_of: int,
            flows: Sequence[repo.FlowRow], marks: MarkCache) -> dict[str, str]:
    """pnl_summary.json's ``contributions``, ``profit`` (P = E - C), ``twr_period`` (the
    month of ``as_of`` so far) and ``twr_inception`` (since onboarding), as of the books now
    valued at the marks of ``as_of``."""
    start = max(month_start(as_of), acct.onboarded_at)
    since = min([start, *(f.at for f in flows)])
    t = timeline(conn, acct, book, since, flows)
    end_value = t.now.equity(marks(as_of, t.now.held()))
    contributions = t.now.contributions
    if as_of < acct.onboarded_at:
        period = inception = ZERO
    else:
        cuts = [(dflows.equity_at(t, (m.at, m.seq), marks), m.flow) for m in t.moves if m.flow]
        inception = chain(acct.starting_cash, cuts, end_value)
        period = dflows.twr(t, (start, 0), None, marks, as_of)
    return {"contributions": fmt(contributions), "profit": fmt(end_value - contributions),
            "twr_period": fmt(dflows.quantize_return(period)),
            "twr_inception": fmt(dflows.quantize_return(inception))}


def flows_by_account(conn: Connection) -> dict[str, list[repo.FlowRow]]:
    out: dict[str, list[repo.FlowRow]] = {}
    for f in repo.flows(conn):
        out.setdefault(f.account_id, []).append(f)
    return out


def value_at(t: Timeline, key: Key, marks: MarkCache, mark_time: int | None = None
             ) -> tuple[Decimal, Decimal]:
    """(equity, net contributions) of the state at ``key``."""
    s = t.state(key)
    equity = s.equity(marks(key[0] if mark_time is None else mark_time, s.held()))
    return equity, s.contributions
