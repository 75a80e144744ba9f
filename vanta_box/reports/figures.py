"""What the vault and follower pages show beyond tables of rows: charts, positions,
returns, drawdown, fee totals and the tracking ledger. Computed here, formatted by the
templates; every figure comes from the database alone.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from markupsafe import Markup

from vanta_box.core.money import ZERO, D, fmt, round_cents
from vanta_box.core.timeutil import fmt_ts
from vanta_box.domain import returns
from vanta_box.reports import charts
from vanta_box.reports.charts import Chart, Marker, Series
from vanta_box.service import performance as perf
from vanta_box.service.books import Book
from vanta_box.store import repo
from vanta_box.store.db import Connection

# The vault page shows this many cycles in full (newest first), the older ones by month.
CYCLES_IN_FULL = 10
# The follower page's tracking ledger shows this many cycles symbol by symbol.
TRACKING_IN_FULL = 10

NAVY, GREY, RED, BLUE, GREEN, AMBER = ("#14213d", "#98a2b3", "#b42318", "#1570ef",
                                       "#067647", "#dc6803")


def money_label(value: Decimal) -> str:
    return f"{round_cents(value):,.2f}"


def money_axis(value: Decimal) -> str:
    return f"{value:,.0f}" if value == value.to_integral_value() else money_label(value)


def pct_label(value: Decimal) -> str:
    return f"{round_cents(value * 100):,.2f} %"


def pct_or_none(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)


def _day(at: str) -> str:
    return at[:10]


def positions(book: Book, marks: dict[str, Decimal], targets: dict[str, Decimal],
              own: dict[str, Decimal] | None = None) -> dict[str, Any]:
    """The open positions of ``book`` at ``marks``: qty, average cost, mark, value,
    unrealized, weight of equity, and the target weight(s) beside it (symbols targeted and
    not held appear with a zero quantity)."""
    equity = book.equity(marks)
    lines = []
    symbols = sorted({s for s in book.symbols() if book.position(s).qty} | set(targets)
                     | set(own or {}))
    total_unrealized = ZERO
    for symbol in symbols:
        p = book.position(symbol)
        mark = book.mark_of(symbol, marks) if (p.qty or symbol in marks) else None
        value = p.qty * mark if mark is not None else ZERO
        unrealized = p.unrealized(mark) if mark is not None and p.qty else ZERO
        total_unrealized += unrealized
        weight = value / equity if equity > 0 else ZERO
        lines.append({"symbol": symbol, "qty": fmt(p.qty),
                      "avg_cost": fmt(p.avg_cost()) if p.qty else None,
                      "mark": None if mark is None else fmt(mark), "value": fmt(value),
                      "unrealized": fmt(unrealized), "weight": fmt(weight),
                      "target": fmt(targets.get(symbol, ZERO)),
                      "own_target": None if own is None else fmt(own.get(symbol, ZERO))})
    invested = sum((D(line["value"]) for line in lines), ZERO)
    return {"lines": lines, "equity": fmt(equity), "cash": fmt(book.cash),
            "cash_weight": fmt(book.cash / equity) if equity > 0 else "0",
            "cash_target": fmt(1 - sum(targets.values(), ZERO)),
            "own_cash_target": None if own is None else fmt(1 - sum(own.values(), ZERO)),
            "invested": fmt(invested), "realized": fmt(book.realized),
            "unrealized": fmt(total_unrealized), "commissions": fmt(book.commissions)}


def nav_charts(vault_id: str, key: str, points: Sequence[perf.CyclePoint], halted: dict[str, Any],
               now: Decimal | None, as_of: int) -> dict[str, Any]:
    """The vault's NAV with its peak and the drawdown shaded, halts marked; its drawdown;
    and the figures read off them (max drawdown over the cycle-start NAVs and the NAV at
    the report's moment)."""
    shown = [p for p in points if p.nav is not None]
    labels = [_day(fmt_ts(p.at)) for p in shown]
    navs = [p.nav for p in shown if p.nav is not None]
    peaks = [p.peak_nav if p.peak_nav is not None else p.nav for p in shown]
    if now is not None and (not shown or as_of > shown[-1].at):
        labels.append(f"{_day(fmt_ts(as_of))} (now)")
        navs.append(now)
        peaks.append(max([now, *[q for q in peaks if q is not None]]))
    if not navs:
        why = "no cycle has valued the vault yet"
        return {"nav": charts.empty(f"nav-{key}", "NAV", why),
                "drawdown": charts.empty(f"dd-{key}", "Drawdown", why),
                "max_drawdown": None, "current_drawdown": None}
    _running, dds = returns.drawdowns(navs)
    markers = [Marker(i, "halt") for i, p in enumerate(shown) if p.cycle_id in halted]
    worst = max(dds)
    worst_at = labels[dds.index(worst)]
    nav = charts.line_chart(
        Chart(f"nav-{key}", f"NAV of {vault_id}",
              f"The vault's NAV (its master account's equity) at the start of each of "
              f"{len(shown)} cycles, from {money_label(navs[0])} to {money_label(navs[-1])}; "
              f"the dashed line is the peak NAV, the shaded area the drawdown below it"
              + (f"; {len(markers)} halt(s) marked" if markers else "") + ".",
              labels, money_axis, extra_columns={
                  "drawdown": [pct_label(d) for d in dds],
                  "halt": ["halted" if m else "" for m in
                           [p.cycle_id in halted for p in shown] + [False] * (
                               len(labels) - len(shown))]}),
        [Series("peak NAV", peaks, GREY, dashed=True), Series("NAV", navs, NAVY)],
        band=(0, 1), markers=markers)
    drawdown = charts.line_chart(
        Chart(f"dd-{key}", f"Drawdown of {vault_id}",
              f"How far the NAV is below its peak at each point; the largest is "
              f"{pct_label(worst)} ({worst_at}), now {pct_label(dds[-1])}.", labels,
              pct_label),
        [Series("drawdown (negative: below the peak)", [-d for d in dds], RED)], area=True)
    return {"nav": nav, "drawdown": drawdown, "max_drawdown": fmt(worst),
            "current_drawdown": fmt(dds[-1])}


def allocation_chart(key: str, targets: dict[str, Decimal], held: dict[str, Any]
                     ) -> Markup:
    symbols = sorted(set(targets) | {line["symbol"] for line in held["lines"]
                                     if D(line["qty"])})
    if not symbols:
        return charts.empty(f"alloc-{key}", "Target allocation against holdings",
                            "no target and no holding yet")
    weights = {line["symbol"]: D(line["weight"]) for line in held["lines"]}
    target = [targets.get(s, ZERO) for s in symbols]
    actual = [weights.get(s, ZERO) for s in symbols]
    gaps = [abs(t - a) for t, a in zip(target, actual, strict=True)]
    widest = max(gaps)
    return charts.bar_chart(
        Chart(f"alloc-{key}", "Target allocation against the master's holdings",
              f"Target weight and held weight of equity for {len(symbols)} symbols; the "
              f"widest difference is {pct_label(widest)} "
              f"({symbols[gaps.index(widest)]}).", symbols, pct_label),
        [Series("target weight", target, NAVY), Series("held weight", actual, AMBER)])


def pnl_fee_chart(chart_id: str, title: str, periods: Sequence[dict[str, Any]]) -> Markup:
    """PnL and fees per period as bars, the cumulative PnL net of fees as a line."""
    if not periods:
        return charts.empty(chart_id, title, "no period yet")
    labels = [p["period"] for p in periods]
    pnl = [D(p["pnl"]) for p in periods]
    fee = [D(p["fees"]) for p in periods]
    net, total = [], ZERO
    for a, b in zip(pnl, fee, strict=True):
        total += a - b
        net.append(total)
    return charts.bar_chart(
        Chart(chart_id, title,
              f"PnL (change of equity: realized plus unrealized) and fees due in each of "
              f"{len(periods)} periods; the line is the cumulative PnL net of fees, "
              f"{money_label(net[-1])} at the end.", labels, money_axis),
        [Series("PnL", pnl, BLUE), Series("fees", fee, RED)],
        Series("cumulative PnL − fees", net, GREEN))


def follower_equity_chart(account_id: str, labels: Sequence[str], equity: Sequence[Decimal],
                          navs: Sequence[Decimal]) -> dict[str, Any]:
    """The follower's equity against the vault's NAV scaled to the follower's equity at
    the first cycle it is in, and the follower's drawdown."""
    if not equity:
        why = "no cycle of the vault since the follower was onboarded"
        return {"equity": charts.empty(f"eq-{account_id}", "Equity", why),
                "drawdown": charts.empty(f"fdd-{account_id}", "Drawdown", why),
                "max_drawdown": None}
    scale = equity[0] / navs[0] if navs and navs[0] > 0 else None
    scaled = [n * scale for n in navs] if scale is not None else [None] * len(labels)
    _peaks, dds = returns.drawdowns(equity)
    worst = max(dds)
    chart = charts.line_chart(
        Chart(f"eq-{account_id}", "Equity against the vault",
              f"This account's equity at each of {len(equity)} cycles, from "
              f"{money_label(equity[0])} to {money_label(equity[-1])}, and the vault's NAV "
              f"scaled to the same start (dashed): where the lines part, the account did "
              f"not follow the vault exactly.", labels, money_axis),
        [Series("vault NAV, scaled", scaled, GREY, dashed=True),
         Series("this account", equity, BLUE)])
    drawdown = charts.line_chart(
        Chart(f"fdd-{account_id}", "Drawdown",
              f"How far the equity is below its peak at each cycle; the largest is "
              f"{pct_label(worst)}, now {pct_label(dds[-1])}.", labels, pct_label),
        [Series("drawdown (negative: below the peak)", [-d for d in dds], RED)], area=True)
    return {"equity": chart, "drawdown": drawdown, "max_drawdown": fmt(worst)}


def time_left(expires_at: int, as_of: int) -> str:
    """'2 d 3 h 5 min' until ``expires_at``."""
    seconds = max(0, (expires_at - as_of) // 1_000_000)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days} d"] if days else []
    if hours or days:
        parts.append(f"{hours} h")
    parts.append(f"{minutes} min")
    return " ".join(parts)


def cycle_counts(conn: Connection, point: perf.CyclePoint, next_seq: int | None
                 ) -> dict[str, int]:
    """Orders, child orders, fills, skips and rejects journaled for one cycle."""
    sql = ("SELECT kind, count(*) FROM journal WHERE seq >= ?"
           + (" AND seq < ?" if next_seq is not None else "")
           + " AND kind IN ('order', 'child_order', 'fill', 'skip', 'reject')"
           " AND (instr(payload, ?) > 0 OR instr(payload, ?) > 0) GROUP BY kind")
    args: list[Any] = [point.first_seq, *([next_seq] if next_seq is not None else [])]
    cid = json.dumps(point.cycle_id)
    args += [f'"cycle_id":{cid}', f'"order_id":{cid[:-1]}/']
    counts = dict.fromkeys(("order", "child_order", "fill", "skip", "reject"), 0)
    for kind, n in conn.execute(sql, tuple(args)):
        counts[str(kind)] = int(n)
    return counts


def cycles_table(conn: Connection, points: Sequence[perf.CyclePoint],
                 halted: dict[str, Any]) -> dict[str, Any]:
    """The newest ``CYCLES_IN_FULL`` cycles in full, the others a line per month."""
    full, older = [], []
    newest_first = list(reversed(points))
    by_seq = sorted(points, key=lambda p: p.first_seq)
    nexts = {p.cycle_id: (by_seq[i + 1].first_seq if i + 1 < len(by_seq) else None)
             for i, p in enumerate(by_seq)}
    for p in newest_first[:CYCLES_IN_FULL]:
        dd = ((p.peak_nav - p.nav) / p.peak_nav if p.nav is not None and p.peak_nav
              else None)
        full.append({"cycle_id": p.cycle_id, "at": fmt_ts(p.at), "vault_status": p.vault_status,
                     "nav": None if p.nav is None else fmt(p.nav),
                     "peak_nav": None if p.peak_nav is None else fmt(p.peak_nav),
                     "drawdown": pct_or_none(dd), "halt": p.cycle_id in halted,
                     **cycle_counts(conn, p, nexts[p.cycle_id])})
    months: dict[str, list[perf.CyclePoint]] = {}
    for p in reversed(newest_first[CYCLES_IN_FULL:]):
        months.setdefault(fmt_ts(p.at)[:7], []).append(p)
    for month, items in sorted(months.items(), reverse=True):
        navs = [p.nav for p in items if p.nav is not None]
        statuses: dict[str, int] = {}
        for p in items:
            statuses[p.vault_status] = statuses.get(p.vault_status, 0) + 1
        older.append({"month": month, "cycles": len(items), "first": items[0].cycle_id,
                      "last": items[-1].cycle_id,
                      "nav_first": fmt(navs[0]) if navs else None,
                      "nav_last": fmt(navs[-1]) if navs else None,
                      "statuses": ", ".join(f"{k} × {v}" for k, v in sorted(statuses.items())),
                      "halts": sum(1 for p in items if p.cycle_id in halted)})
    return {"full": full, "older": older, "in_full": CYCLES_IN_FULL}


def halt_banner(conn: Connection, row: repo.VaultRow, halted: dict[str, Any]
                ) -> dict[str, Any] | None:
    if row.status != "halted":
        return None
    event = list(halted.values())[-1] if halted else {}
    return {"cycle_id": event.get("cycle_id"), "nav": event.get("nav"),
            "peak_nav": event.get("peak_nav"), "threshold": event.get("threshold"),
            "max_drawdown": event.get("max_drawdown"),
            "on_drawdown": event.get("on_drawdown", "halt"),
            "command": f"vanta vault resume {shlex.quote(row.vault_id)}",
            "reset": f"vanta vault resume {shlex.quote(row.vault_id)} --reset-peak"}


def tracking_rows(cycle: dict[str, Any]) -> dict[str, Any]:
    """A cycle of the tracking ledger with its weights as percentages (a page shows ten
    cycles of every symbol: formatted here once, not by a template macro per cell)."""
    return {**cycle, "gap_pct": pct_label(D(cycle["gap"])), "symbols": [
        {**x, "cells": [(pct_label(D(x[k])), x[k].startswith("-"))
                        for k in ("vault_weight", "target_weight", "weight", "gap")]}
        for x in cycle["symbols"]]}


def tracking_chart(key: str, ledger: Sequence[dict[str, Any]]) -> Markup:
    """The tracking gap of each cycle (how far the account is from the vault's weights)."""
    if not ledger:
        return charts.empty(f"te-{key}", "Distance from the vault",
                            "no cycle of the vault since the follower was onboarded")
    gaps = [D(c["gap"]) for c in ledger]
    overall = returns.tracking_error(gaps) or ZERO
    widest = max(gaps)
    return charts.line_chart(
        Chart(f"te-{key}", "Distance from the vault",
              f"The gap at each of {len(gaps)} cycles: sqrt of the sum over symbols of "
              f"(vault target weight - this account's weight)^2; the widest is "
              f"{pct_label(widest)} ({ledger[gaps.index(widest)]['at'][:10]}), the tracking "
              f"error over all of them {pct_label(overall)}.",
              [c["at"][:10] for c in ledger], pct_label,
              extra_columns={"note": [c["skipped"] or "" for c in ledger]}),
        [Series("tracking gap", gaps, AMBER)], area=True, band_color="#fef0c7")
