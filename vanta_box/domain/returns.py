"""Returns, drawdown and tracking error (SPEC §9's time-weighted return). Pure, exact.

Time-weighted return over a period: the period is cut at every capital flow; each
sub-period's return is the value just before the next flow (at the marks of that moment)
over the value just after the previous one, and the period's return chains them:

    TWR = Π (V_before(flow_i) / V_after(flow_{i-1})) × (V_end / V_after(last flow)) − 1

with V_after(flow) = V_before(flow) + amount (a deposit positive, a withdrawal negative)
and V_after(flow_0) = V_start. So a deposit is never counted as a gain. Until capital flows
exist (SPEC §9's flows issue), an account's only contribution is its starting cash and the
formula reduces to V_end / V_start − 1; ``flows`` is where that issue passes them.

Tracking error of a follower over a period (README, "Reports"): at each cycle, the gap of
each symbol is the vault's target weight minus the follower's weight after the cycle's
execution; the cycle's gap is the Euclidean norm of those gaps, sqrt(Σ_symbols gap²), and
the period's tracking error is the root-mean-square of its cycles' gaps:

    TE = sqrt( (1/N) × Σ_cycles Σ_symbols (w_vault − w_follower)² )

so a follower holding exactly the vault's weights has 0, and one holding nothing when the
vault is fully invested has about the vault's invested weight. Symbols neither side holds
add nothing, so the figure does not depend on how many instruments exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from vanta_box.core.money import ONE, ZERO


@dataclass(frozen=True)
class Flow:
    """A capital flow: the account's value just before it (at the marks of its moment)
    and its amount (deposit > 0, withdrawal < 0)."""

    value_before: Decimal
    amount: Decimal


def time_weighted_return(start: Decimal, end: Decimal,
                         flows: Sequence[Flow] = ()) -> Decimal | None:
    """The period's TWR (as a fraction: 0.05 is 5 %), or None when no sub-period has a
    positive starting value (nothing was invested: a return is undefined)."""
    growth, measured = ONE, False
    base = start
    for flow in flows:
        if base > 0:
            growth *= flow.value_before / base
            measured = True
        base = flow.value_before + flow.amount
    if base > 0:
        growth *= end / base
        measured = True
    return growth - ONE if measured else None


def chain(returns: Sequence[Decimal | None]) -> Decimal | None:
    """Period returns chained into one: Π(1 + r) − 1 (periods without a return skipped)."""
    growth, measured = ONE, False
    for r in returns:
        if r is not None:
            growth *= ONE + r
            measured = True
    return growth - ONE if measured else None


def drawdowns(values: Sequence[Decimal]) -> tuple[list[Decimal], list[Decimal]]:
    """(running peak, drawdown) at each point: drawdown = (peak − value) / peak, 0 while the
    peak is not positive."""
    peaks, out = [], []
    peak: Decimal | None = None
    for v in values:
        peak = v if peak is None or v > peak else peak
        peaks.append(peak)
        out.append((peak - v) / peak if peak > 0 else ZERO)
    return peaks, out


def max_drawdown(values: Sequence[Decimal]) -> Decimal:
    """The largest drawdown of the series (a fraction), 0 for an empty one."""
    return max(drawdowns(values)[1], default=ZERO)


def cycle_gap(gaps: Sequence[Decimal]) -> Decimal:
    """A cycle's tracking gap: sqrt(Σ gap²) over its symbols."""
    return sum((g * g for g in gaps), ZERO).sqrt()


def tracking_error(cycle_gaps: Sequence[Decimal]) -> Decimal | None:
    """RMS of the cycles' gaps (``cycle_gap``), None for a period without a cycle."""
    if not cycle_gaps:
        return None
    return (sum((g * g for g in cycle_gaps), ZERO) / len(cycle_gaps)).sqrt()
