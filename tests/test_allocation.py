"""SPEC §4 Overlays and Allocation, worked by hand."""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction as F

from vanta_box.core.models import Instrument, Overlay, Risk, Score, Vault
from vanta_box.core.timeutil import parse_ts
from vanta_box.domain.allocation import adjusted_scores, allocate

INSTR = {
    "X": Instrument("X", "equity"), "Y": Instrument("Y", "equity"),
    "Z": Instrument("Z", "equity"), "W": Instrument("W", "equity"),
    "BTC": Instrument("BTC", "crypto", D("0.0001"), D("10")),
}
SCORES = [
    Score("X", D("0.8"), "a"), Score("Y", D("0.4"), "b"), Score("Z", D("-0.3"), "a"),
    Score("W", D("0.2"), None), Score("BTC", D("0.6"), "b"),
]
T = parse_ts("2026-11-01T00:00:00Z")


def vault(**risk: object) -> Vault:
    return Vault("V", "V", personas=("a", "b"), risk=Risk(**risk))  # type: ignore[arg-type]


def exact(alloc: object) -> dict[str, F]:
    return {s: F(w.num) / F(w.den) for s, w in alloc.weights.items()}  # type: ignore[attr-defined]


def test_all_personas_long_only_cash_buffer_and_cap_without_redistribution() -> None:
    # a: X 0.8, Z -0.3 (dropped: long-only); b: Y 0.4, BTC 0.6; none: W 0.2.
    # sum = 0.8 + 0.4 + 0.2 + 0.6 = 2.0; investable = 1 - 0.1 = 0.9
    # X = 0.8/2*0.9 = 0.36 -> cap 0.3; Y = 0.4/2*0.9 = 0.18; W = 0.09; BTC = 0.27
    # the 0.06 cut from X stays in cash: cash = 1 - (0.3+0.18+0.09+0.27) = 0.16
    alloc = allocate(vault(cash_buffer=D("0.1"), max_single_pos_pct=D("0.3")), SCORES,
                     ("a", "b"), [], INSTR, T)
    assert exact(alloc) == {"X": F("0.3"), "Y": F("0.18"), "W": F("0.09"), "BTC": F("0.27")}
    assert alloc.cash_weight() == D("0.16")


def test_persona_subset_keeps_unlabelled_signals() -> None:
    # persona b only: Y 0.4, BTC 0.6, W 0.2 (no persona: belongs to everyone); sum 1.2
    # Y = 1/3, BTC = 1/2, W = 1/6 (exact, not rounded)
    alloc = allocate(vault(), SCORES, ("b",), [], INSTR, T)
    assert exact(alloc) == {"Y": F(1, 3), "BTC": F(1, 2), "W": F(1, 6)}


def test_disabled_asset_class_is_dropped_before_normalising() -> None:
    v = Vault("V", "V", crypto_enabled=False, personas=("a", "b"))
    # BTC dropped: X 0.8 + Y 0.4 + W 0.2 = 1.4
    alloc = allocate(v, SCORES, ("a", "b"), [], INSTR, T)
    assert exact(alloc) == {"X": F(8, 14), "Y": F(4, 14), "W": F(2, 14)}
    v2 = Vault("V", "V", fiat_enabled=False, personas=("a", "b"))
    assert exact(allocate(v2, SCORES, ("a", "b"), [], INSTR, T)) == {"BTC": F(1)}


def test_flip_overlay_negates_then_long_only() -> None:
    flip = Overlay("V", "flip", T, T + 3600 * 10**6)
    # flipped: X -0.8, Y -0.4, Z 0.3, W -0.2, BTC -0.6 -> only Z stays
    alloc = allocate(vault(), SCORES, ("a", "b"), [flip], INSTR, T)
    assert exact(alloc) == {"Z": F(1)}
    # in force iff set_at <= t < expires_at
    after = allocate(vault(), SCORES, ("a", "b"), [flip], INSTR, T + 3600 * 10**6)
    assert "Z" not in exact(after)


def test_boost_multiplies_only_that_persona() -> None:
    boost = Overlay("V", "boost", T, T + 1, persona="b", factor=D("2"))
    scores = adjusted_scores(SCORES, ("a", "b"), [boost], T)
    assert scores == {"X": D("0.8"), "Y": D("0.8"), "Z": D("-0.3"), "W": D("0.2"),
                      "BTC": D("1.2")}


def test_allow_short_keeps_sign_and_uses_absolute_values() -> None:
    # |a|: 0.8 + 0.4 + 0.3 + 0.2 + 0.6 = 2.3; Z = -0.3/2.3
    alloc = allocate(vault(allow_short=True), SCORES, ("a", "b"), [], INSTR, T)
    assert exact(alloc)["Z"] == F(-3, 23)
    assert sum(abs(w) for w in exact(alloc).values()) == 1


def test_several_personas_on_one_symbol_add_up() -> None:
    scores = [Score("X", D("0.5"), "a"), Score("X", D("-0.2"), "b"), Score("Y", D("0.3"), "b")]
    # X = 0.5 - 0.2 = 0.3; Y = 0.3 -> halves
    assert exact(allocate(vault(), scores, ("a", "b"), [], INSTR, T)) == {"X": F(1, 2),
                                                                         "Y": F(1, 2)}


def test_no_positive_score_means_all_cash() -> None:
    alloc = allocate(vault(), [Score("X", D("-0.5"), None)], ("a",), [], INSTR, T)
    assert alloc.weights == {}
    assert alloc.cash_weight() == 1
