"""SPEC §4 Realized PnL (FIFO) and the paper broker, worked by hand."""

from __future__ import annotations

from decimal import Decimal as D

from vanta_box.core.models import PaperTerms
from vanta_box.domain.pnl import Position, apply_fill
from vanta_box.execution.paper import OrderRequest, paper_execute


def test_fifo_partial_sell_across_two_lots_with_commissions() -> None:
    p = Position.empty()
    # buy 10 @ 100, commission 1 -> lot cost 100 + 1/10 = 100.1
    p, r1 = apply_fill(p, "buy", D("10"), D("100"), D("1"))
    # buy 5 @ 110, commission 0.55 -> lot cost 110.11
    p, r2 = apply_fill(p, "buy", D("5"), D("110"), D("0.55"))
    assert (r1, r2) == (0, 0)
    assert p.lots == ((D("10"), D("100.1")), (D("5"), D("110.11")))
    # sell 12 @ 120, commission 1.44: (120-100.1)*10 + (120-110.11)*2 - 1.44
    #                                = 199 + 19.78 - 1.44 = 217.34
    p, realized = apply_fill(p, "sell", D("12"), D("120"), D("1.44"))
    assert realized == D("217.34")
    assert p.qty == D("3") and p.lots == ((D("3"), D("110.11")),)
    # unrealized at 115: (115 - 110.11) * 3 = 14.67
    assert p.unrealized(D("115")) == D("14.67")
    assert p.cost_basis == D("330.33")


def test_short_lots_when_allowed() -> None:
    p, r = apply_fill(Position.empty(), "sell", D("4"), D("50"), D("0.2"))
    # short lot at proceeds per unit 50 - 0.05 = 49.95
    assert r == 0 and p.lots == ((D("-4"), D("49.95")),)
    # cover 4 @ 45, commission 0.18: (49.95 - 45) * 4 - 0.18 = 19.62
    p, r = apply_fill(p, "buy", D("4"), D("45"), D("0.18"))
    assert r == D("19.62") and p.qty == 0 and p.lots == ()


def req(side: str, qty: str, mark: str, step: str = "1") -> OrderRequest:
    return OrderRequest("c", "A", "X", side, D(qty), D(mark), D(step))  # type: ignore[arg-type]


def test_paper_fill_prices_slippage_and_commission() -> None:
    terms = PaperTerms(slippage_bps=D("10"), commission_bps=D("5"))
    # buy 10 at mark 100: price 100 * 1.001 = 100.1; commission 10*100.1*0.0005 = 0.5005
    ex = paper_execute(req("buy", "10", "100"), D("5000"), D("0"), terms, False)
    assert (ex.qty, ex.price, ex.commission) == (D("10"), D("100.1"), D("0.5005"))
    # sell 10 at mark 100: price 99.9; commission 0.4995
    ex = paper_execute(req("sell", "10", "100"), D("0"), D("10"), terms, False)
    assert (ex.qty, ex.price, ex.commission) == (D("10"), D("99.9"), D("0.4995"))


def test_paper_buy_reduced_to_fit_cash() -> None:
    terms = PaperTerms(slippage_bps=D("10"), commission_bps=D("5"))
    # cost per unit 100.1 * 1.0005 = 100.15005; 1000 / 100.15005 = 9.98 -> 9
    ex = paper_execute(req("buy", "10", "100"), D("1000"), D("0"), terms, False)
    assert ex.qty == D("9") and ex.requested_qty == D("10") and ex.note
    assert ex.qty * ex.price + ex.commission <= D("1000")
    # crypto step: 1000 / 100.15005 = 9.98502... -> 9.985
    ex = paper_execute(req("buy", "10", "100", "0.001"), D("1000"), D("0"), terms, False)
    assert ex.qty == D("9.985")
    # nothing fits -> reject
    ex = paper_execute(req("buy", "1", "100"), D("50"), D("0"), terms, False)
    assert ex.rejected and ex.reject_reason == "insufficient_cash"
