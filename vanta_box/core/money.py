"""Exact decimal arithmetic for money and quantities.

Never use floating point in an accounting system: every amount and quantity is a
``decimal.Decimal`` from the file we read to the file we write. The module-wide context is
wide (60 significant digits) so that nothing rounds except where SPEC §4 says (fees to
cents). Divisions that cannot be exact (a weight of 1/3) keep 60 digits; every place where
the spec floors or compares (lot steps, notional limits, cash fit) uses exact integer
division (``//``) or cross-multiplication instead of a rounded quotient.
"""

from __future__ import annotations

import decimal
from decimal import ROUND_HALF_UP, Decimal

PRECISION = 60

CONTEXT = decimal.Context(
    prec=PRECISION,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=-999999,
    Emax=999999,
    traps=[
        decimal.InvalidOperation,
        decimal.DivisionByZero,
        decimal.Overflow,
        decimal.FloatOperation,
    ],
)
# Installed for this thread and as the template of new threads' contexts.
decimal.setcontext(CONTEXT)
decimal.DefaultContext.prec = PRECISION
decimal.DefaultContext.traps[decimal.FloatOperation] = True

ZERO = Decimal(0)
ONE = Decimal(1)
CENT = Decimal("0.01")
BPS = Decimal(10000)


class MoneyError(ValueError):
    """A value that is not an exact finite decimal."""


def _brief(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 42 else text[:40] + "…"


def D(value: object) -> Decimal:
    """Convert a string, int or Decimal to Decimal. Floats and bools are refused."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise MoneyError(f"not a finite number: {value}")
        return value
    if isinstance(value, (bool, float)):
        raise MoneyError(f"refusing a binary float or bool as money: {_brief(value)}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            result = Decimal(text)
        except decimal.InvalidOperation:
            raise MoneyError(f"not a decimal number: {_brief(value)}") from None
        if not result.is_finite():
            raise MoneyError(f"not a finite number: {_brief(value)}")
        return result
    raise MoneyError(f"not a decimal number: {_brief(value)}")


# SPEC §6 input bounds: what the border accepts (files, options). Inside, computed values
# (60-digit weights) go through ``D`` alone.
MAX_DIGITS = 38
MAX_MAGNITUDE = Decimal("1e15")
MIN_MAGNITUDE = Decimal("1e-18")
MIN_LOT_STEP = Decimal("1e-12")
BOUNDS = "must be 0 or between 1e-18 and 1e15 in absolute value"


def bounded(value: Decimal) -> Decimal:
    """``value`` if it is within the input bounds, else MoneyError. No arithmetic is done
    (a value like 1e9999999 would overflow the context): only its digits and exponent are
    looked at, so the check is cheap and exact."""
    if value.is_zero():
        # 0e-9999999 is 0; keep the exponent only when it is an ordinary one ("0.00")
        return value if -MAX_DIGITS <= value.adjusted() <= MAX_DIGITS else ZERO
    digits = len(value.as_tuple().digits)
    if digits > MAX_DIGITS:
        raise MoneyError(f"has {digits} significant digits (at most {MAX_DIGITS})")
    if not MIN_MAGNITUDE <= value.copy_abs() <= MAX_MAGNITUDE:
        raise MoneyError(BOUNDS)
    return value


def parse_bounded(value: object) -> Decimal:
    """``D`` plus the input bounds: the one conversion of a decimal read at the border."""
    return bounded(D(value))


def fmt(value: Decimal) -> str:
    """The one canonical text form: no exponent, no trailing zeros, no negative zero."""
    text = str(value)
    # Fast path (most values): plain notation that is already minimal.
    if "E" not in text and ("." not in text or text[-1] != "0") and text not in ("0", "-0"):
        return text
    if value == 0:
        return "0"
    return format(value.normalize(CONTEXT), "f")


def fmt_cents(value: Decimal) -> str:
    """Canonical text of an amount already rounded to cents (fees): always two decimals."""
    return format(value.quantize(CENT, rounding=ROUND_HALF_UP), "f").replace("-0.00", "0.00")


def round_cents(value: Decimal) -> Decimal:
    """Round to cents, half-up (SPEC §4 Fees)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` not further from zero than ``value`` (exact)."""
    if step <= 0:
        raise MoneyError(f"lot step must be positive, got {fmt(step)}")
    return (value // step) * step
