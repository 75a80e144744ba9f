"""What people read on the console: money to the cent with thousands separators, weights
and rates as percentages, quantities to their lot step, and progress on a terminal only.

Only the console is rounded: the state files and every ``--json`` output keep the exact
values (``core.money.fmt``). Amounts are rounded half-up, as fees are (SPEC §4), so a fee
reads the same here as in the ledger.
"""

from __future__ import annotations

import sys
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

import click

from vanta_box.core.money import CENT, ZERO, D, fmt

HUNDRED = Decimal(100)
_PCT_PLACES = Decimal("0.01")
_SMALL_PRICE_PLACES = Decimal("0.000001")


def _decimal(value: Decimal | str | int) -> Decimal:
    return value if isinstance(value, Decimal) else D(value)


def money(value: Decimal | str | int | None) -> str:
    """``395462.688504550672`` -> ``395,462.69``; ``-0.004`` -> ``0.00``; None -> ``-``."""
    if value is None:
        return "-"
    cents = _decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    if cents == 0:
        cents = abs(cents)  # no "-0.00"
    return f"{cents:,.2f}"


def price(value: Decimal | str | int | None) -> str:
    """A price: to the cent from 1 up; below 1 (a small coin) up to six decimals, so that
    it does not read as 0.00."""
    if value is None:
        return "-"
    d = _decimal(value)
    if abs(d) >= 1 or d == 0:
        return money(d)
    small = d.quantize(_SMALL_PRICE_PLACES, rounding=ROUND_HALF_UP).normalize()
    text = format(small, "f")
    return text if len(text.split(".")[-1]) >= 2 else format(d.quantize(CENT), "f")


def pct(value: Decimal | str | int | None) -> str:
    """A weight or rate as a percentage, at most two decimals: ``0.2`` -> ``20%``,
    ``0.083333…`` -> ``8.33%``, ``0.125`` -> ``12.5%``."""
    if value is None:
        return "-"
    scaled = (_decimal(value) * HUNDRED).quantize(_PCT_PLACES, rounding=ROUND_HALF_UP)
    text = fmt(scaled) if scaled != 0 else "0"
    return f"{text}%"


def qty(value: Decimal | str | int, lot_step: Decimal | str | None = None) -> str:
    """A quantity to its lot step's decimals (``0.1`` of a 0.0001 step -> ``0.1000``),
    with thousands separators. A quantity finer than its step (a venue's partial fill) is
    shown exactly rather than rounded away."""
    d = _decimal(value)
    if lot_step is None:
        text = fmt(d)
        whole, _, frac = text.partition(".")
        sign = "-" if whole.startswith("-") else ""
        body = f"{int(whole.lstrip('-') or '0'):,}"
        return f"{sign}{body}.{frac}" if frac else f"{sign}{body}"
    step = _decimal(lot_step)
    places = max(0, -int(step.normalize().as_tuple().exponent))
    quantum = Decimal(1).scaleb(-places)
    shown = d.quantize(quantum, rounding=ROUND_DOWN)
    if shown != d:
        return qty(d)
    return f"{shown:,.{places}f}"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 order``, ``2 orders``, ``1,109 rejects``."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def signed(value: Decimal | str | int) -> str:
    """Money with its sign always shown (a change: ``+1,250.00``, ``-30.10``)."""
    d = _decimal(value)
    text = money(d)
    return text if text.startswith("-") or d.quantize(CENT) == ZERO else f"+{text}"


# ---------------------------------------------------------------- progress


def interactive() -> bool:
    """Progress is for a person at a terminal: silent in pipes, files and CI."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress(message: str) -> None:
    """One line of progress on long work (verify, replay, execution batches), on stderr,
    only on a terminal."""
    if interactive():
        click.echo(f"  … {message}", err=True)


def alert_style() -> Any:
    """How alert descriptions read on the console (service.alerts.describe)."""
    from vanta_box.service.alerts import Style

    return Style(money=money, pct=pct, number=lambda n: f"{n:,}")


# ---------------------------------------------------------------- pages


def statement_text(doc: dict[str, Any], steps: dict[str, Decimal] | None = None) -> str:
    """A follower's statement (``service.statement.build``) as a terminal page."""
    steps = steps or {}
    fee, ledger = doc["fee"], doc["ledger"]
    head = "SHADOW statement (nothing was traded or billed)" if doc["shadow"] else "Statement"
    lines = [
        f"{head}: {doc['account_id']} ({doc['mode']}) in vault {doc['vault_id']}, "
        f"period {doc['period']}",
        f"  {doc['period_start']} .. {doc['period_end']} (exclusive)",
        "",
        "PnL                                   Fees",
        f"  opening equity  {money(doc['opening_equity']):>20}    fee type     "
        f"{fee['fee_type']}",
        f"  closing equity  {money(doc['closing_equity']):>20}    realized     "
        f"{money(fee['realized_pnl'])}",
        f"  realized PnL    {money(doc['realized_pnl']):>20}    carry in     "
        f"{money(fee['carry_in'])}",
        f"  unrealized chg  {money(doc['unrealized_pnl_change']):>20}    performance  "
        f"{money(fee['perf_fee'])} ({pct(fee['perf_share'])})",
        f"  commissions     {money(doc['commissions']):>20}    flat         "
        f"{money(fee['flat_fee'])} ({fee['active_days']}/{fee['days_in_period']} days)",
        f"  {'':34}    fee due      {money(fee['fee_due'])}",
        f"  {'':34}    carry out    {money(fee['carry_out'])}",
        "",
        f"fee: {fee['status']}",
        f"  {derivation(fee)}",
        f"ledger: due {money(ledger['due'])}, paid {money(ledger['paid'])}, "
        f"outstanding {money(ledger['outstanding'])}",
    ]
    for e in ledger["entries"]:
        lines.append(f"  {e['ts']} {e['kind']:<9} {e['entry_id']}  {money(e['fee_due'])}"
                     + (f"  ({e['reason']})" if e["reason"] else ""))
        inv = e.get("invoice")
        if inv:
            lines.append(f"      invoice {inv['processor']} {inv['ref']} ({inv['state']})"
                         + (f" {inv['url']}" if inv["url"] else ""))
        for p in e["payments"]:
            lines.append(f"      paid {money(p['amount'])} on {p['ts']} ref {p['ref']}")
    lines += ["", f"fills ({len(doc['fills']):,}):"]
    for f in doc["fills"]:
        lines.append(f"  {f['ts']} {f['side']:<4} {qty(f['qty'], steps.get(f['symbol'])):>12} "
                     f"{f['symbol']:<10} @ {price(f['price']):<14} commission "
                     f"{money(f['commission']):<12} realized {money(f['realized_pnl'])}"
                     + ("  (by hand)" if f["external"] else ""))
    lines.append(f"\ndigest {doc['digest']}")
    return "\n".join(lines)


def derivation(fee: dict[str, Any]) -> str:
    """The fee in words (``service.fees.derivation``), its amounts to the cent with
    thousands separators."""
    net = _decimal(fee["net"])
    text = [f"realized {money(fee['realized_pnl'])} - carried loss {money(fee['carry_in'])} "
            f"= net {money(net)}"]
    if net > 0:
        text.append(f"performance {pct(fee['perf_share'])} x {money(net)} = "
                    f"{money(fee['perf_fee'])}; nothing carried forward")
    else:
        text.append(f"no performance fee; loss carried forward {money(fee['carry_out'])}")
    text.append(f"flat {money(fee['flat_usd'])} x {fee['active_days']}/"
                f"{fee['days_in_period']} days = {money(fee['flat_fee'])}")
    if fee["fee_type"] == "performance_or_flat":
        text.append(f"performance_or_flat: max({money(fee['perf_fee'])}, "
                    f"{money(fee['flat_fee'])}) = {money(fee['fee_due'])} ({fee['leg']} leg)")
    else:
        text.append(f"{fee['fee_type']}: fee {money(fee['fee_due'])}")
    return "; ".join(text)
