"""Trades made at a paper venue outside vanta-box (what a follower does by hand).

`vanta paper trade` books such a trade on a paper (or shadow) account, so that the drift it
causes can be seen and corrected by the next cycle, as a real venue's would after
reconciliation. It is an input event; its fill is marked ``external``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from vanta_box.core.errors import InputError, Refused
from vanta_box.core.models import Execution
from vanta_box.core.money import ZERO, D, fmt
from vanta_box.core.timeutil import fmt_ts
from vanta_box.service import timerules
from vanta_box.service.books import load_books
from vanta_box.service.engine import Command, Engine, handles
from vanta_box.service.execute import fill_payload
from vanta_box.service.setup import load_vault
from vanta_box.store import repo


def paper_trade_command(eng: Engine, account_id: str, symbol: str, side: str, qty: Decimal,
                        price: Decimal | None, at: int) -> Command:
    acct = repo.account(eng.conn, account_id)
    if acct is None:
        raise InputError(f"unknown account {account_id!r}")
    if acct.broker_kind != "paper" and acct.mode != "shadow":
        raise InputError(f"{account_id} trades at {acct.broker_kind}: only paper and shadow "
                         "books take manual trades here")
    if at < acct.onboarded_at:
        raise Refused(f"{account_id} was onboarded at {fmt_ts(acct.onboarded_at)}: no trade "
                      f"before that ({fmt_ts(at)})")
    timerules.account_change(eng.conn, acct, at, f"a manual trade on {account_id}")
    instrument = repo.instruments(eng.conn).get(symbol)
    if instrument is None:
        raise InputError(f"unknown symbol {symbol!r}", field="SYMBOL")
    if qty <= 0 or qty % instrument.lot_step:
        raise InputError(f"quantity must be a positive multiple of {fmt(instrument.lot_step)}",
                         field="QTY")
    if price is None:
        mark = repo.marks_at(eng.conn, at, [symbol]).get(symbol)
        if mark is None:
            raise InputError(f"no price of {symbol} at {fmt_ts(at)}: give --price",
                             field="--price")
        price = mark
    elif price <= 0:
        raise InputError("price must be greater than 0", field="--price")
    return Command.make("paper.trade", at, {"account_id": account_id, "symbol": symbol,
                                            "side": side, "qty": fmt(qty),
                                            "price": fmt(price)})


@handles("paper.trade")
def _paper_trade(eng: Engine, cmd: Command) -> dict[str, Any]:
    p = cmd.payload
    acct = repo.account(eng.conn, p["account_id"])
    assert acct is not None
    _row, vault = load_vault(eng, acct.vault_id)
    book = load_books(eng.conn, [acct])[acct.account_id]
    qty, price = D(p["qty"]), D(p["price"])
    if p["side"] == "buy" and qty * price > book.cash:
        raise Refused(f"{acct.account_id} has {fmt(book.cash)} cash: the buy costs "
                      f"{fmt(qty * price)}")
    if p["side"] == "sell" and qty > book.held(p["symbol"]) and not vault.risk.allow_short:
        raise Refused(f"{acct.account_id} holds {fmt(book.held(p['symbol']))} "
                      f"{p['symbol']}: cannot sell {p['qty']}")
    with eng.tx():
        # the command's own journal row makes the id unique (two trades may share a time)
        fill_id = f"external/{acct.account_id}/{eng.journal.seq}/{p['symbol']}"
        realized = book.apply(p["symbol"], p["side"], qty, price, ZERO)
        payload = fill_payload(fill_id, fill_id, acct.account_id, p["symbol"], p["side"],
                               Execution(qty, price, ZERO, qty), realized)
        payload["external"] = True
        seq = eng.record(cmd.ts, "fill", payload)
        repo.insert_fills(eng.conn, [(fill_id, fill_id, acct.account_id, p["symbol"], p["side"],
                                      p["qty"], p["price"], "0", fmt(realized), cmd.ts, seq,
                                      int(acct.mode == "shadow"))])
        upserts, deletes = book.changes()
        repo.save_positions(eng.conn, upserts, deletes)
        repo.save_account_money(eng.conn, [(fmt(book.cash), fmt(book.realized),
                                            fmt(book.commissions), acct.account_id)])
    return {"account_id": acct.account_id, "realized_pnl": realized}
