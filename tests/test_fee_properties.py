"""Properties of the fee maths (hypothesis) and of statements."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from vanta_box.domain.fees import FeeInputs, compute_fee

TYPES = ["performance", "flat", "performance_or_flat"]
realized_st = st.integers(-10**9, 10**9).map(lambda c: D(c) / 100)
share_st = st.integers(0, 100).map(lambda n: D(n) / 100)
flat_st = st.integers(0, 10**7).map(lambda c: D(c) / 100)


@given(st.sampled_from(TYPES), share_st, flat_st, realized_st,
       st.integers(0, 10**9).map(lambda c: D(c) / 100), st.integers(0, 31), st.integers(28, 31))
def test_fee_due_is_never_negative(kind, share, flat, realized, carry, days, month) -> None:  # type: ignore[no-untyped-def]
    r = compute_fee(FeeInputs(kind, share, flat, realized, carry, min(days, month), month))
    assert r.fee_due >= 0 and r.perf_fee >= 0 and r.flat_fee >= 0 and r.carry_out >= 0
    assert r.fee_due == r.fee_due.quantize(D("0.01"))


@given(share_st, st.lists(realized_st, min_size=1, max_size=12))
def test_carry_forward_is_a_high_water_mark(share, months) -> None:  # type: ignore[no-untyped-def]
    carry, total, cumulative, peak = D(0), D(0), D(0), D(0)
    for realized in months:
        r = compute_fee(FeeInputs("performance", share, D(0), realized, carry, 30, 30))
        carry = r.carry_out
        total += r.perf_fee
        cumulative += realized
        peak = max(peak, cumulative)
    assert abs(total - share * peak) <= D("0.005") * len(months)


@given(flat_st, st.integers(28, 31))
def test_a_full_month_of_flat_fee_is_exactly_flat_usd(flat, days) -> None:  # type: ignore[no-untyped-def]
    r = compute_fee(FeeInputs("flat", D(0), flat, D(0), D(0), days, days))
    assert r.flat_fee == flat and r.fee_due == flat


def test_statements_reconcile_equity_with_pnl(tmp_path: Path) -> None:
    """closing - opening = realized + change of unrealized, for every follower-month."""
    from vanta_box import home as homes
    from vanta_box.service import demo
    from vanta_box.service.statement import build
    from vanta_box.store import db, repo

    target = homes.resolve(tmp_path / "demo")
    demo.run(target, lambda _line: None)
    conn = db.connect(target.db_path)
    try:
        followers = [a.account_id for a in repo.accounts(conn) if a.role == "follower"]
        for account in followers:
            previous_close = None
            for period in ("2026-10", "2026-11"):
                doc = build(conn, account, period)
                change = D(doc["closing_equity"]) - D(doc["opening_equity"])
                assert change == D(doc["realized_pnl"]) + D(doc["unrealized_pnl_change"])
                if previous_close is not None:
                    assert doc["opening_equity"] == previous_close
                previous_close = doc["closing_equity"]
    finally:
        conn.close()
