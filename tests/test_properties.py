"""Properties of the maths (hypothesis): caps, lot steps, cash, FIFO conservation."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from vanta_box.core.models import Instrument, PaperTerms, Risk, Score, Vault
from vanta_box.domain.allocation import allocate
from vanta_box.domain.pnl import Position, apply_fill
from vanta_box.domain.rebalance import Sizing, diff
from vanta_box.execution.paper import OrderRequest, paper_execute

SYMBOLS = [f"S{i}" for i in range(8)]
STEPS = [D("1"), D("0.0001"), D("0.01"), D("5")]

scores_st = st.lists(
    st.tuples(st.sampled_from(SYMBOLS), st.integers(-100, 100), st.sampled_from(["a", "b", None])),
    min_size=0, max_size=16, unique_by=lambda t: (t[0], t[2]))
fraction_st = st.integers(0, 100).map(lambda n: D(n) / 100)
money_st = st.integers(1, 10**9).map(lambda n: D(n) / 100)
qty_st = st.integers(1, 10**6)


def _instruments(step_index: int) -> dict[str, Instrument]:
    return {s: Instrument(s, "equity", STEPS[(i + step_index) % len(STEPS)], D("1"))
            for i, s in enumerate(SYMBOLS)}


@given(scores_st, fraction_st, st.integers(1, 100).map(lambda n: D(n) / 100))
def test_weights_are_non_negative_capped_and_leave_the_cash_buffer(
        raw: list[tuple[str, int, str | None]], buffer: D, cap: D) -> None:
    vault = Vault("V", "V", personas=("a", "b"),
                  risk=Risk(max_single_pos_pct=cap, cash_buffer=buffer))
    scores = [Score(s, D(n) / 100, p) for s, n, p in raw]
    alloc = allocate(vault, scores, ("a", "b"), [], _instruments(0), 0)
    weights = list(alloc.weights.values())
    assert all(w.num >= 0 for w in weights)
    assert all(w.num <= cap * w.den for w in weights)
    # all weights share one denominator (the sum of kept scores): compare exactly
    assert len({w.den for w in weights}) <= 1
    if weights:
        assert sum((w.num for w in weights), D(0)) <= (1 - buffer) * weights[0].den
    assert alloc.cash_weight() >= buffer


@given(st.dictionaries(st.sampled_from(SYMBOLS), st.integers(1, 1000), max_size=8),
       st.dictionaries(st.sampled_from(SYMBOLS), st.integers(0, 10**5), max_size=8),
       st.dictionaries(st.sampled_from(SYMBOLS), money_st, min_size=8, max_size=8),
       money_st, st.integers(0, 3))
def test_order_quantities_are_exact_multiples_of_the_lot_step(
        weights_raw: dict[str, int], held_raw: dict[str, int], marks: dict[str, D],
        equity: D, step_index: int) -> None:
    instruments = _instruments(step_index)
    total = sum(weights_raw.values()) or 1
    from vanta_box.core.models import Weight
    weights = {s: Weight(D(n), D(total)) for s, n in weights_raw.items()}
    held = {s: D(n) * instruments[s].lot_step for s, n in held_raw.items()}
    plans, _ = diff(held, weights, marks, instruments, Sizing(equity, D("1")))
    for p in plans:
        assert p.qty > 0 and p.qty % instruments[p.symbol].lot_step == 0
        assert p.target % instruments[p.symbol].lot_step == 0
        # a target never needs more than the weight's share of the sizing equity
        weight = weights.get(p.symbol)
        share = (weight.num * equity / weight.den) if weight else D(0)
        assert p.target * p.mark <= share


@given(st.lists(st.tuples(qty_st, money_st), min_size=1, max_size=12),
       money_st, st.integers(0, 200), st.integers(0, 100), st.sampled_from(STEPS))
def test_paper_cash_never_goes_negative(orders: list[tuple[int, D]], cash: D, slip: int,
                                        comm: int, step: D) -> None:
    terms = PaperTerms(D(slip), D(comm))
    for qty, mark in orders:
        request = OrderRequest("c", "A", "X", "buy", D(qty) * step, mark, step)
        ex = paper_execute(request, cash, D(0), terms, False)
        if not ex.rejected:
            assert ex.qty % step == 0 and ex.qty <= request.qty
            cash -= ex.qty * ex.price + ex.commission
        assert cash >= 0


@settings(max_examples=200)
@given(st.lists(st.tuples(qty_st, money_st, st.integers(0, 50)), min_size=1, max_size=10),
       st.lists(st.tuples(money_st, st.integers(0, 50)), min_size=1, max_size=10), st.data())
def test_fifo_round_trip_realizes_proceeds_minus_costs(
        buys: list[tuple[int, D, int]], sells: list[tuple[D, int]], data: st.DataObject) -> None:
    position = Position.empty()
    cost = D(0)
    for qty, price, bps in buys:
        commission = D(qty) * price * bps / 10000
        position, realized = apply_fill(position, "buy", D(qty), price, commission)
        assert realized == 0
        cost += D(qty) * price + commission
    remaining = position.qty
    proceeds, realized_total = D(0), D(0)
    for i, (price, bps) in enumerate(sells):
        if remaining == 0:
            break
        last = i == len(sells) - 1
        qty = remaining if last else D(data.draw(st.integers(1, int(remaining))))
        commission = qty * price * bps / 10000
        position, realized = apply_fill(position, "sell", qty, price, commission)
        realized_total += realized
        proceeds += qty * price - commission
        remaining -= qty
        # realized so far = proceeds - the cost of the lots consumed (what is still open
        # carries exactly the cost not yet matched)
        assert realized_total == proceeds - (cost - position.cost_basis)
    assert position.qty == 0 and position.lots == ()
    assert realized_total == proceeds - cost
