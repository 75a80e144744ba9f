"""Signals + overlays -> target weights (SPEC §4 Overlays, Allocation). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from vanta_box.core.models import Instrument, Overlay, Score, Vault, Weight
from vanta_box.core.money import ONE, ZERO


@dataclass(frozen=True, slots=True)
class Allocation:
    personas: tuple[str, ...]
    weights: dict[str, Weight]  # symbol -> exact weight, sorted by symbol

    def cash_weight(self) -> Decimal:
        """1 - sum |w_i|, with one division: all weights of an allocation share the
        denominator sum |a_j|, so the cash weight is exact wherever the weights are."""
        if not self.weights:
            return ONE
        dens = {w.den for w in self.weights.values()}
        if len(dens) == 1:
            den = dens.pop()
            return (den - sum((abs(w.num) for w in self.weights.values()), ZERO)) / den
        return ONE - sum((abs(w.num) / w.den for w in self.weights.values()), ZERO)

    def capped(self, cap: Decimal | None) -> Allocation:
        if cap is None:
            return self
        return Allocation(self.personas, {s: w.capped(cap) for s, w in self.weights.items()})


def adjusted_scores(
    scores: Iterable[Score], personas: Iterable[str], overlays: Iterable[Overlay], at: int
) -> dict[str, Decimal]:
    """Adjusted score a_i per symbol for a persona set.

    A signal belongs to the set when it has no persona or its persona is in the set.
    Overlays in force at ``at`` apply: flip negates, boost multiplies that persona's
    scores. Several signals of one symbol (different personas) add up.
    """
    wanted = set(personas)
    in_force = [o for o in overlays if o.in_force(at)]
    flip = any(o.kind == "flip" for o in in_force)
    boosts = {o.persona: o.factor for o in in_force if o.kind == "boost"}
    totals: dict[str, Decimal] = {}
    for s in scores:
        if s.persona is not None and s.persona not in wanted:
            continue
        value = s.score
        if s.persona is not None and s.persona in boosts:
            value *= boosts[s.persona]
        if flip:
            value = -value
        totals[s.symbol] = totals.get(s.symbol, ZERO) + value
    return totals


def allocate(
    vault: Vault,
    scores: Iterable[Score],
    personas: Iterable[str],
    overlays: Iterable[Overlay],
    instruments: Mapping[str, Instrument],
    at: int,
) -> Allocation:
    """w_i = a_i / sum(a_j) * (1 - cash_buffer), then min(w_i, max_single_pos_pct).

    What a cap cuts stays in cash (it is not redistributed). Long-only keeps a_i > 0; with
    allow_short the same is done on |a_i| with the sign kept.
    """
    persona_set = tuple(sorted(set(personas)))
    adjusted = adjusted_scores(scores, persona_set, overlays, at)
    kept: dict[str, Decimal] = {}
    for symbol in sorted(adjusted):
        a = adjusted[symbol]
        instrument = instruments.get(symbol)
        if instrument is None:
            continue
        if instrument.asset_class == "crypto" and not vault.crypto_enabled:
            continue
        if instrument.asset_class == "equity" and not vault.fiat_enabled:
            continue
        if a > 0 or (vault.risk.allow_short and a < 0):
            kept[symbol] = a
    den = sum((abs(a) for a in kept.values()), ZERO)
    if den == 0:
        return Allocation(persona_set, {})
    investable = ONE - vault.risk.cash_buffer
    weights = {
        symbol: Weight(a * investable, den).capped(vault.risk.max_single_pos_pct)
        for symbol, a in kept.items()
    }
    return Allocation(persona_set, weights)
