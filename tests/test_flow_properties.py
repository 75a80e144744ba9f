"""Properties of SPEC §9 (hypothesis): the high-water mark, flows, periods, returns."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from vanta_box.core.timeutil import DAY_US
from vanta_box.domain.fees import FeeInputs, compute_fee
from vanta_box.domain.flows import State, Timeline, chain, fill_move, flow_move, twr

cents = st.integers(-10**8, 10**8).map(lambda c: D(c) / 100)
share_st = st.integers(0, 100).map(lambda n: D(n) / 100)


def hwm_fee(share: D, profit: D, hwm: D, flat: D = D(0), days: int = 30, of: int = 30,
            kind: str = "performance", mgmt_pct: D = D(0), base: D = D(0)):  # type: ignore[no-untyped-def]
    return compute_fee(FeeInputs(kind, share, flat, D(0), D(0), days, of, "equity_hwm",
                                 profit, hwm, mgmt_pct, base))


@given(share_st, st.lists(cents, min_size=1, max_size=12))
def test_the_high_water_mark_never_decreases(share, profits) -> None:  # type: ignore[no-untyped-def]
    hwm = D(0)
    for p in profits:
        r = hwm_fee(share, p, hwm)
        assert r.hwm_out >= hwm and r.hwm_out == max(hwm, p)
        assert r.perf_fee >= 0 and r.carry_out == 0
        hwm = r.hwm_out
    assert hwm == max([D(0), *profits])


# A small market: one symbol, prices at whole hours, fills and flows at whole minutes.
HOUR = 3600 * 10**6
MINUTE = 60 * 10**6
prices_st = st.lists(st.integers(50, 150), min_size=1, max_size=8)
fills_st = st.lists(st.tuples(st.integers(0, 48 * 60 - 1), st.sampled_from(["buy", "sell"]),
                              st.integers(1, 5)), max_size=8)


def marks_of(prices: list[int]):  # type: ignore[no-untyped-def]
    """A price every 6 hours from 0."""
    def marks(at: int, symbols):  # type: ignore[no-untyped-def]
        i = min(at // (6 * HOUR), len(prices) - 1)
        return {s: D(prices[i]) for s in symbols}
    return marks


def history(prices: list[int], trades, extra=()):  # type: ignore[no-untyped-def]
    """Start with 10000 cash at 0; trades at the mark (no commission); ``extra`` moves."""
    marks = marks_of(prices)
    moves, cash, qty, seq = [], D(10000), D(0), 0
    for minute, side, q in sorted(trades):
        at = minute * MINUTE
        price = marks(at, ["AAA"])["AAA"]
        if side == "sell" and q > qty:
            continue
        seq += 1
        moves.append(fill_move(at, seq, side, D(q), price, D(0), "AAA"))
        cash += moves[-1].cash
        qty += moves[-1].qty
    for m in extra:
        moves.append(m)
        cash += m.cash
    contributions = D(10000) + sum((m.flow for m in extra), D(0))
    return Timeline(State(cash, contributions, {"AAA": qty}, {"AAA": D(prices[0])}), moves), marks


def profit_and_base(t: Timeline, marks, end: int):  # type: ignore[no-untyped-def]
    s = t.state((end, 0))
    profit = s.equity(marks(end, s.held())) - s.contributions
    base = D(0)
    for day in range(1, end // DAY_US + 1):
        d = t.state((day * DAY_US, 0))
        base += d.equity(marks(day * DAY_US, d.held()))
    return profit, base


@given(prices_st, fills_st, st.integers(1, 10**6), st.integers(0, 2 * 24 * 60 - 1),
       st.integers(0, 23 * 60), share_st)
def test_a_deposit_then_the_same_withdrawal_changes_no_fee(prices, trades, amount, start,
                                                           gap, share) -> None:  # type: ignore[no-untyped-def]
    """Deposit X and withdraw X later the same day: P and every day's close are the same,
    so the equity-HWM performance fee and the management fee are too."""
    end = 2 * DAY_US
    t0, m0 = history(prices, trades)
    day_end = (start * MINUTE // DAY_US + 1) * DAY_US
    dep = start * MINUTE
    wd = min(dep + gap * MINUTE, day_end - MINUTE)
    pair = [flow_move(dep, 10**6, D(amount)), flow_move(max(wd, dep), 10**6 + 1, -D(amount))]
    t1, m1 = history(prices, trades, pair)
    p0, b0 = profit_and_base(t0, m0, end)
    p1, b1 = profit_and_base(t1, m1, end)
    assert (p0, b0) == (p1, b1)
    for hwm in (D(0), D(500)):
        assert hwm_fee(share, p0, hwm, mgmt_pct=D("0.02"), base=b0) == \
            hwm_fee(share, p1, hwm, mgmt_pct=D("0.02"), base=b1)


@given(share_st, st.lists(st.integers(0, 10**7), min_size=3, max_size=3),
       st.integers(0, 10**5), st.integers(0, 10**6))
def test_monthly_and_quarterly_billing_agree_when_profit_only_rises(share, steps, flat,
                                                                     hwm) -> None:  # type: ignore[no-untyped-def]
    """P rising month by month: the monthly equity-HWM fees sum to the quarter's, and the
    flat fee of three full months is the quarter's (three months' flat_usd)."""
    h = D(hwm)
    profits = [h + sum(D(s) for s in steps[:i + 1]) for i in range(3)]
    monthly, hwm_m = D(0), h
    for p, days in zip(profits, (31, 28, 31), strict=True):
        r = hwm_fee(share, p, hwm_m, D(flat), days, days, "flat")
        assert r.flat_fee == D(flat)
        monthly += hwm_fee(share, p, hwm_m).perf_fee
        hwm_m = r.hwm_out
    quarter = hwm_fee(share, profits[-1], h)
    assert quarter.perf_fee == monthly and quarter.hwm_out == hwm_m
    assert hwm_fee(share, profits[-1], h, 3 * D(flat), 90, 90, "flat").flat_fee == 3 * D(flat)


@given(prices_st, fills_st, st.integers(0, 47), st.integers(1, 48))
def test_the_twr_of_a_period_without_flows_is_the_plain_return(prices, trades, a, b) -> None:  # type: ignore[no-untyped-def]
    start, end = min(a, b - 1) * HOUR, b * HOUR
    t, marks = history(prices, trades)
    # forward, independently of the backward rebuild: cash and qty before each moment
    def forward(moment: int) -> D:
        cash, qty = D(10000), D(0)
        for m in t.moves:
            if m.at < moment:
                cash, qty = cash + m.cash, qty + m.qty
        return cash + qty * marks(moment, ["AAA"])["AAA"]
    plain = forward(end) / forward(start) - 1
    assert twr(t, (start, 0), (end, 0), marks, end) == plain
    assert chain(forward(start), [], forward(end)) == plain
