"""Properties of the mirroring maths (hypothesis): caps hold, sizing scales."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from vanta_box.core.models import Instrument, Risk, Score, Vault
from vanta_box.domain.allocation import allocate
from vanta_box.domain.rebalance import Sizing, diff, target_qty
from vanta_box.service.cycle import sizing_equity

SYMBOLS = ["EQ1", "EQ2", "EQ3", "CR1", "CR2"]
INSTRUMENTS = {s: Instrument(s, "crypto" if s.startswith("CR") else "equity",
                             D("0.0001") if s.startswith("CR") else D("1"), D("1"))
               for s in SYMBOLS}
VAULT = Vault("V", "V", personas=("a", "b"), risk=Risk(max_single_pos_pct=D("0.6")))

prices = st.integers(100, 10_000_000).map(lambda c: D(c) / 100)
marks_st = st.fixed_dictionaries({s: prices for s in SYMBOLS})
scores_st = st.lists(st.tuples(st.sampled_from(SYMBOLS), st.integers(1, 100),
                               st.sampled_from(["a", "b", None])),
                     min_size=1, max_size=10, unique_by=lambda t: (t[0], t[2]))
equity_st = st.integers(1_000_00, 5_000_000_00).map(lambda c: D(c) / 100)
pct_st = st.integers(1, 100).map(lambda n: D(n) / 100)


def alloc(raw: list[tuple[str, int, str | None]], personas: tuple[str, ...] = ("a", "b")):  # type: ignore[no-untyped-def]
    scores = [Score(s, D(n) / 100, p) for s, n, p in raw]
    return allocate(VAULT, scores, personas, [], INSTRUMENTS, 0)


@settings(max_examples=150)
@given(scores_st, marks_st, equity_st, st.integers(50, 50_000).map(D), pct_st,
       st.dictionaries(st.sampled_from(SYMBOLS), st.integers(0, 500)))
def test_child_orders_respect_max_order_notional_and_positions_max_position_pct(
        raw, marks, equity, max_order, pct, held_raw) -> None:  # type: ignore[no-untyped-def]
    mirroring = {"mode": "capped", "multiplier": "1", "cap_usd": None}
    size = sizing_equity(equity, mirroring)
    weights = alloc(raw).capped(pct).weights
    held = {s: D(n) * INSTRUMENTS[s].lot_step for s, n in held_raw.items()}
    plans, skips = diff(held, weights, marks, INSTRUMENTS,
                        Sizing(size, D("1"), max_order_notional=max_order))
    for p in plans:
        assert p.qty * p.mark <= max_order
        assert p.qty % INSTRUMENTS[p.symbol].lot_step == 0
    # first cycle (nothing held): every resulting position is within pct of S
    plans, _ = diff({}, weights, marks, INSTRUMENTS,
                    Sizing(size, D("1"), max_order_notional=max_order))
    for p in plans:
        assert p.side == "buy" and p.qty * marks[p.symbol] <= pct * size
    # without an order cap, any holding ends within pct of S (a sell too small to be worth
    # an order is the only excess, and it is below the minimum notional)
    plans, skips = diff(held, weights, marks, INSTRUMENTS, Sizing(size, D("1")))
    after = dict(held)
    for p in plans:
        after[p.symbol] = after.get(p.symbol, D(0)) + (p.qty if p.side == "buy" else -p.qty)
    skipped = {s.symbol for s in skips}
    for symbol, qty in after.items():
        excess = qty * marks[symbol] - pct * size
        assert excess <= 0 or (symbol in skipped and excess < 1)  # min notional is 1


@settings(max_examples=150)
@given(scores_st, marks_st, equity_st, st.integers(2, 40).map(lambda n: D(n) / 4))
def test_scaling_equity_by_k_scales_targets_by_k_within_a_lot_step(
        raw, marks, equity, k) -> None:  # type: ignore[no-untyped-def]
    weights = alloc(raw).weights
    for symbol, w in weights.items():
        step = INSTRUMENTS[symbol].lot_step
        base = target_qty(w, equity, marks[symbol], step)
        scaled = target_qty(w, equity * k, marks[symbol], step)
        exact = w.num * equity * k / (w.den * marks[symbol])
        assert 0 <= exact - scaled < step  # floored to the step, toward zero
        assert abs(scaled - k * base) <= (k + 1) * step
    proportional = sizing_equity(equity, {"mode": "proportional", "multiplier": str(k)})
    assert proportional == equity * k
    capped = sizing_equity(equity, {"mode": "capped", "multiplier": str(k), "cap_usd": "1000"})
    assert capped == min(equity * k, D(1000))


@given(scores_st)
def test_persona_subsets_only_use_their_signals(raw) -> None:  # type: ignore[no-untyped-def]
    only_a = alloc(raw, ("a",)).weights
    allowed = {s for s, _n, p in raw if p in ("a", None)}
    assert set(only_a) <= allowed
