"""`vanta fees whatif`: a follower's actual history billed under every agreement (read-only).

Each variant re-runs the SPEC §4/§9 fee maths (``fees.assess``) over the follower's own
fills, flows, marks, pauses and removal, from its onboarding (the carry and the high-water
mark start at 0 there), and shows the periods that end inside the range asked for (a
removed follower's last period ends at its removal). Variants: basis (realized,
equity_hwm) x type (performance, flat, performance_or_flat) x period (month, quarter) x
management fee (none, or the agreement's / the one asked for). The flat fee keeps its
yearly amount: a quarter's flat_usd is three months' (and a month's a third of a
quarter's). Nothing is written.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from vanta_box.core.errors import InputError
from vanta_box.core.money import ZERO, fmt, fmt_cents
from vanta_box.core.timeutil import fmt_ts, parse_period, period_label
from vanta_box.service import fees
from vanta_box.service.flows import MarkCache
from vanta_box.store import repo
from vanta_box.store.db import Connection

TYPES = ("performance", "flat", "performance_or_flat")
DEFAULT_MANAGEMENT = Decimal("0.02")


def _last_event(conn: Connection) -> int | None:
    from vanta_box.core.timeutil import parse_ts

    row = conn.execute("SELECT ts FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    return parse_ts(row[0]) if row else None


def whatif(conn: Connection, account_id: str, start: str | None, end: str | None,
           perf_share: Decimal | None = None, flat_usd: Decimal | None = None,
           management_pct: Decimal | None = None) -> dict[str, Any]:
    acct = repo.account(conn, account_id)
    if acct is None:
        raise InputError(f"unknown account {account_id!r}", field="FOLLOWER")
    if acct.role != "follower":
        raise InputError(f"{account_id} is the manager account of {acct.vault_id}: fees are "
                         "for followers", field="FOLLOWER")
    actual = fees.terms(acct)
    known = _last_event(conn) or acct.onboarded_at
    range_start = (fees.period_bounds(start)[0] if start is not None else acct.onboarded_at)
    range_end = fees.period_bounds(end)[1] if end is not None else known
    if range_end <= range_start:
        raise InputError("--to must end after --from starts", field="--to")
    share = perf_share if perf_share is not None else actual.perf_share
    monthly_flat = flat_usd if flat_usd is not None else (
        actual.flat_usd / 3 if actual.quarterly else actual.flat_usd)
    mgmt = management_pct if management_pct is not None else (
        actual.management_pct or DEFAULT_MANAGEMENT)
    marks = MarkCache(conn)
    variants = []
    for basis in ("realized", "equity_hwm"):
        for fee_type in TYPES:
            if fee_type == "flat" and basis == "equity_hwm":
                continue  # the basis only changes the performance leg
            for period in ("month", "quarter"):
                for pct in (ZERO, mgmt):
                    flat = monthly_flat * 3 if period == "quarter" else monthly_flat
                    agreement = {"type": fee_type, "perf_share": fmt(share),
                                 "flat_usd": fmt(flat), "basis": basis,
                                 "management_pct": fmt(pct), "period": period}
                    variants.append(_variant(conn, acct, agreement, range_start, range_end,
                                             known, marks, actual))
    variants.sort(key=lambda v: (not v["actual"], v["name"]))
    return {"account_id": acct.account_id, "vault_id": acct.vault_id,
            "from": fmt_ts(range_start), "to": fmt_ts(range_end), "as_of": fmt_ts(known),
            "agreement": acct.fee_agreement, "variants": variants,
            "note": "perf_share and flat_usd are the agreement's (flat kept per year across "
                    "months and quarters); management "
                    f"{fmt(mgmt * 100)}% a year where it applies"}


def _variant(conn: Connection, acct: repo.AccountRow, agreement: dict[str, str],
             range_start: int, range_end: int, known: int, marks: MarkCache,
             actual: fees.Terms) -> dict[str, Any]:
    who = replace(acct, fee_agreement=agreement)
    quarterly = agreement["period"] == "quarter"
    carry = hwm = ZERO
    rows: list[dict[str, str]] = []
    label = period_label(acct.onboarded_at, quarterly)
    while True:
        p_start, p_end = parse_period(label)
        removed_here = acct.removed_at is not None and p_start <= acct.removed_at < p_end
        closes = acct.removed_at if removed_here else p_end
        assert closes is not None
        if p_start >= range_end or (acct.removed_at is not None and p_start > acct.removed_at):
            break
        if closes > known:
            break  # not over yet
        if fees.account_active_days(conn, who, label) > 0:
            a = fees.assess(conn, who, label, carry, hwm, marks)
            carry, hwm = a.result.carry_out, a.result.hwm_out
            if closes > range_start and closes <= range_end:
                r = a.result
                rows.append({"period": label, "fee_due": fmt_cents(r.fee_due),
                             "perf_fee": fmt_cents(r.perf_fee),
                             "flat_fee": fmt_cents(r.flat_fee),
                             "mgmt_fee": fmt_cents(r.mgmt_fee),
                             "profit_end": fmt(a.inputs.profit_end),
                             "hwm_out": fmt(r.hwm_out), "carry_out": fmt(r.carry_out)})
        label = period_label(p_end, quarterly)
    total = sum((Decimal(r["fee_due"]) for r in rows), ZERO)
    name = (f"{agreement['basis']}/{agreement['type']}/{agreement['period']}"
            f"{'/mgmt' if Decimal(agreement['management_pct']) else ''}")
    is_actual = (agreement["basis"] == actual.basis and agreement["type"] == actual.fee_type
                 and quarterly == actual.quarterly
                 and Decimal(agreement["management_pct"]) == actual.management_pct
                 and Decimal(agreement["perf_share"]) == actual.perf_share
                 and Decimal(agreement["flat_usd"]) == actual.flat_usd)
    return {"name": name, **agreement, "actual": is_actual, "periods": rows,
            "total": fmt_cents(total),
            "perf_total": fmt_cents(sum((Decimal(r["perf_fee"]) for r in rows), ZERO)),
            "flat_total": fmt_cents(sum((Decimal(r["flat_fee"]) for r in rows), ZERO)),
            "mgmt_total": fmt_cents(sum((Decimal(r["mgmt_fee"]) for r in rows), ZERO))}
