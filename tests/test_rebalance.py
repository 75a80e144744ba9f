"""SPEC §4 Rebalance diff, worked by hand."""

from __future__ import annotations

from decimal import Decimal as D

from vanta_box.core.models import Instrument, Weight
from vanta_box.domain.rebalance import Sizing, diff, target_qty

INSTR = {
    "AAA": Instrument("AAA", "equity", D("1"), D("1")),
    "BBB": Instrument("BBB", "equity", D("1"), D("1")),
    "BTC": Instrument("BTC", "crypto", D("0.0001"), D("10")),
}


def w(value: str) -> Weight:
    return Weight(D(value), D(1))


def test_target_quantity_is_floored_to_the_lot_step() -> None:
    # 0.5 * 100000 / 123.45 = 405.022... -> 405 shares
    assert target_qty(w("0.5"), D("100000"), D("123.45"), D("1")) == D("405")
    # 0.3 * 100000 / 43210.5 = 0.694275... -> 0.6942
    assert target_qty(w("0.3"), D("100000"), D("43210.5"), D("0.0001")) == D("0.6942")
    # exact thirds stay exact: (1/3) * 3000 / 100 = 10 exactly, not 9.999...
    assert target_qty(Weight(D(1), D(3)), D("3000"), D("100"), D("1")) == D("10")
    # toward zero for shorts: -0.5 * 1000 / 300 = -1.67 -> -1
    assert target_qty(w("-0.5"), D("1000"), D("300"), D("1")) == D("-1")


def test_diff_sells_before_buys_and_sells_unallocated_holdings() -> None:
    held = {"AAA": D("10"), "BBB": D("50")}
    marks = {"AAA": D("100"), "BBB": D("20"), "BTC": D("40000")}
    # S = 10000: AAA 0.6 -> 60 (buy 50); BBB not allocated -> 0 (sell 50);
    # BTC 0.2 -> 2000/40000 = 0.05 (buy 0.05)
    plans, skips = diff(held, {"AAA": w("0.6"), "BTC": w("0.2")}, marks, INSTR,
                        Sizing(D("10000"), D("1")))
    assert [(p.symbol, p.side, p.qty) for p in plans] == [
        ("BBB", "sell", D("50")), ("AAA", "buy", D("50")), ("BTC", "buy", D("0.05"))]
    assert skips == []


def test_min_notional_skips_small_orders() -> None:
    marks = {"AAA": D("100"), "BTC": D("40000")}
    # AAA target 10000*0.101/100 = 10.1 -> 10, held 10: no order at all
    # BTC target 10000*0.001/40000 = 0.00025 -> 0.0002; notional 0.0002*40000 = 8 < 10
    plans, skips = diff({"AAA": D("10")}, {"AAA": w("0.101"), "BTC": w("0.001")}, marks,
                        INSTR, Sizing(D("10000"), D("1")))
    assert plans == []
    assert [(s.symbol, s.reason) for s in skips] == [("BTC", "below_min_notional")]
    # the vault's min_order_notional counts too: max(50, 1) > 1 * 40 = 40
    plans, skips = diff({}, {"BBB": w("0.004")}, {"BBB": D("40")}, INSTR,
                        Sizing(D("10000"), D("50")))
    assert plans == [] and skips[0].reason == "below_min_notional"


def test_drift_band() -> None:
    marks = {"AAA": D("100")}
    # held 48 -> current weight 4800/10000 = 0.48; target 0.5; |0.02| < 0.03 -> skip
    plans, skips = diff({"AAA": D("48")}, {"AAA": w("0.5")}, marks, INSTR,
                        Sizing(D("10000"), D("1"), drift_band=D("0.03")))
    assert plans == [] and skips[0].reason == "within_drift_band"
    # band 0.02 is not strictly greater than the gap 0.02 -> trade 2
    plans, _ = diff({"AAA": D("48")}, {"AAA": w("0.5")}, marks, INSTR,
                    Sizing(D("10000"), D("1"), drift_band=D("0.02")))
    assert [(p.side, p.qty) for p in plans] == [("buy", D("2"))]


def test_max_order_notional_reduces_then_floors() -> None:
    # target 0.5*10000/30 = 166.67 -> 166; capped at 1000/30 = 33.3 -> 33
    plans, _ = diff({}, {"AAA": w("0.5")}, {"AAA": D("30")}, INSTR,
                    Sizing(D("10000"), D("1"), max_order_notional=D("1000")))
    assert [(p.qty, p.capped_from) for p in plans] == [(D("33"), D("166"))]


def test_halted_vault_keeps_sells_and_drops_buys() -> None:
    plans, skips = diff({"BBB": D("10")}, {"AAA": w("0.5")}, {"AAA": D("10"), "BBB": D("10")},
                        INSTR, Sizing(D("1000"), D("1"), allow_buys=False))
    assert [(p.symbol, p.side) for p in plans] == [("BBB", "sell")]
    assert [(s.symbol, s.reason) for s in skips] == [("AAA", "halted_no_buys")]


def test_symbol_without_mark_is_skipped() -> None:
    plans, skips = diff({}, {"AAA": w("0.5")}, {}, INSTR, Sizing(D("1000"), D("1")))
    assert plans == [] and skips[0].reason == "no_mark"
