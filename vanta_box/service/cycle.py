"""One cycle of one vault (SPEC §2, §4): marks, NAV and the drawdown guard, allocation per
persona set, the rebalance diff of the master and every follower, staged orders; then
execution (``service.execute``) unless ``--stage-only``.

Steps and their transactions:
  1. staging: command event, overlay expiry, superseded orders cancelled, NAV, allocations,
     intents, orders and child orders (a shadow follower's are booked by the shadow venue
     at execution, like the others: nothing is ever sent);
  2. execution in batches (each its own transaction; a crash loses at most the batch in
     flight, and client_order_ids make the retry safe);
  3. the ``cycle.done`` event.
A cycle run again at the same time resumes an interrupted cycle and refuses a finished one.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from vanta_box.core import ids
from vanta_box.core.canonical import Template
from vanta_box.core.errors import InputError, Refused
from vanta_box.core.models import Instrument, OrderPlan, Skip, Vault, Weight
from vanta_box.core.money import ONE, ZERO, fmt
from vanta_box.core.timeutil import fmt_ts, parse_duration
from vanta_box.domain.allocation import Allocation, allocate
from vanta_box.domain.rebalance import Sizing, diff
from vanta_box.service import live, pending
from vanta_box.service import marks as mark_health
from vanta_box.service.books import BATCH_ACCOUNTS, Book, load_books
from vanta_box.service.engine import Command, Engine, handles
from vanta_box.service.execute import (
    Context,
    Orders,
    Staged,
    execute_orders,
    settled,
)
from vanta_box.service.live import Settle
from vanta_box.service.setup import expire_overlays, load_vault
from vanta_box.service.venues import LIVE_KINDS, is_live, unavailable
from vanta_box.store import repo


@dataclass
class CycleReport:
    cycle_id: str
    vault_id: str
    status: str = "done"
    vault_status: str = "active"
    nav: Decimal | None = None
    orders: int = 0
    child_orders: int = 0
    skips: int = 0
    fills: int = 0
    rejects: int = 0
    resumed: bool = False
    notes: list[str] = field(default_factory=list)


def cycle_command(eng: Engine, vault_id: str | None, at: int, stage_only: bool,
                  settle_timeout: int | None = None) -> Command:
    """``settle_timeout``: seconds a cycle waits for its live orders (default 60)."""
    if vault_id is not None:
        load_vault(eng, vault_id)
    elif not repo.vault_rows(eng.conn):
        raise InputError("no vaults yet: import one with `vanta vault import FILE`")
    payload: dict[str, Any] = {"vault_id": vault_id, "stage_only": stage_only}
    if settle_timeout is not None:
        payload["settle_timeout"] = settle_timeout
    return Command.make("cycle.run", at, payload)


def _settle(cmd: Command) -> Settle:
    seconds = cmd.payload.get("settle_timeout")
    return Settle() if seconds is None else Settle(timeout=int(seconds) * 1_000_000)


@handles("cycle.run")
def _cycle_run(eng: Engine, cmd: Command) -> list[CycleReport]:
    vault_id = cmd.payload["vault_id"]
    vault_ids = [vault_id] if vault_id else [v.vault_id for v in repo.vault_rows(eng.conn)]
    reports: list[CycleReport] = []
    refusals: list[str] = []
    for vid in vault_ids:
        try:
            reports.append(run_cycle(eng, vid, cmd.ts, bool(cmd.payload["stage_only"]),
                                     _settle(cmd)))
        except Refused as exc:
            refusals.append(str(exc))
    if not reports:
        raise Refused("; ".join(refusals))
    for note in refusals:
        reports[0].notes.append(note)
    return reports


def run_cycle(eng: Engine, vault_id: str, at: int, stage_only: bool,
              settle: Settle | None = None) -> CycleReport:
    row, vault = load_vault(eng, vault_id)
    cid = ids.cycle_id(vault_id, at)
    existing = repo.cycle(eng.conn, cid)
    if existing is not None:
        if existing.status == "done":
            raise Refused(f"cycle {cid} already ran: nothing to do")
        if stage_only:
            raise Refused(f"cycle {cid} is already staged: execute it with `vanta queue execute`")
        report = CycleReport(cid, vault_id, vault_status=existing.vault_status, resumed=True)
        _execute_and_finish(eng, vault, cid, at, report, settle=settle)
        return report
    if row.last_cycle_at is not None and at <= row.last_cycle_at:
        raise Refused(f"cycle time {fmt_ts(at)} is not after {vault_id}'s last cycle "
                      f"({fmt_ts(row.last_cycle_at)}): cycles move forward in time")
    report = CycleReport(cid, vault_id)
    live_accounts = _live_accounts(eng, vault_id)
    # SPEC §8 step 1, before anything is decided: what the live venues hold (own steps)
    blocked = live.reconcile_accounts(eng, live_accounts, at, cid) if live_accounts else {}
    with eng.tx():
        waiting, context = stage(eng, row, vault, cid, at, stage_only, report, blocked)
        if not waiting:
            _finish(eng, cid, at, report)
    if waiting and not stage_only:
        _execute_and_finish(eng, vault, cid, at, report, waiting, context, settle)
    elif waiting:
        report.status = "staged"
    return report


def _live_accounts(eng: Engine, vault_id: str) -> list[repo.AccountRow]:
    return repo.accounts_at(eng.conn, vault_id, sorted(LIVE_KINDS))


def _execute_and_finish(eng: Engine, vault: Vault, cid: str, at: int, report: CycleReport,
                        orders: Orders | None = None,
                        context: Context | None = None, settle: Settle | None = None
                        ) -> None:
    if orders is None:  # a resumption: what the venues did meanwhile comes first
        live_accounts = _live_accounts(eng, vault.vault_id)
        if live_accounts:
            live.sync_accounts(eng, live_accounts, at, settle or Settle())
        orders = pending.pending(eng.conn, cycle_id=cid)
    result = execute_orders(eng, orders, at, context, settle)
    report.fills += result.fills
    report.rejects += result.rejects
    with eng.tx():
        _finish(eng, cid, at, report)


def _finish(eng: Engine, cid: str, at: int, report: CycleReport) -> None:
    eng.record(at, "cycle.done", {"cycle_id": cid, "vault_id": report.vault_id,
                                   "vault_status": report.vault_status})
    repo.set_cycle_status(eng.conn, cid, "done")
    report.status = "done"


def supersede_staged(eng: Engine, vault_id: str, at: int, by: str) -> int:
    """Cancel what earlier unfinished cycles (stage-only, or interrupted and never resumed)
    left to execute: a new cycle re-plans from the holdings."""
    stale_cycles = repo.staged_cycles(eng.conn, vault_id)
    stale = pending.pending(eng.conn, vault_id=vault_id)
    done: list[repo.SettledOrder] = []
    for o in stale:
        eng.record(at, "cancel", {"order_id": o.order_id, "client_order_id": o.client_order_id,
                                  "account_id": o.account_id, "symbol": o.symbol,
                                  "reason": "superseded", "by": by})
        done.append(settled(o, fmt(o.qty), "canceled", "0", f"superseded by {by}"))
    repo.settle_orders(eng.conn, done)
    for cycle_id in stale_cycles:
        eng.record(at, "cycle.done", {"cycle_id": cycle_id, "vault_id": vault_id,
                                      "superseded_by": by})
        repo.set_cycle_status(eng.conn, cycle_id, "done")
    return len(stale)


# Staging hands the journal its rows (in the same transaction) whenever this many are
# buffered: what a cycle holds grows with its orders, not with its journal rows.
JOURNAL_CHUNK = 10_000
TOLERANCE_SKIPS = frozenset({"below_min_notional", "within_drift_band"})
ORDER_EVENT = Template("order_id", "client_order_id", "cycle_id", "parent_id", "vault_id",
                       "account_id", "symbol", "side", "qty", "mark", "held", "target",
                       "status").expect_keys(
    "account_id", "client_order_id", "cycle_id", "held", "mark", "order_id", "parent_id",
    "qty", "side", "status", "symbol", "target", "vault_id")


@dataclass
class _Planned:
    """An account's decisions, held from its planning until they are journaled (after the
    intents, which need every account's plans): its book is not kept."""

    account: repo.AccountRow
    plans: list[OrderPlan]
    skips: list[Skip]  # journaled one by one
    tolerated: dict[str, str]  # a follower's tolerance skips (symbol -> reason): one event
    skipped: int  # every skip, tolerated or not


def sizing_equity(equity: Decimal, mirroring: dict[str, Any]) -> Decimal:
    """S_f: proportional and shadow E*multiplier; capped min(E*multiplier, cap_usd)."""
    sized = equity * Decimal(mirroring.get("multiplier") or "1")
    cap = mirroring.get("cap_usd")
    if mirroring.get("mode") == "capped" and cap is not None:
        sized = min(sized, Decimal(cap))
    return sized


def stage(eng: Engine, row: repo.VaultRow, vault: Vault, cid: str, at: int, stage_only: bool,
          report: CycleReport, blocked: dict[str, str] | None = None
          ) -> tuple[dict[str, Staged], Context]:
    """Record the cycle's decisions; returns the orders that wait for execution."""
    conn = eng.conn
    expire_overlays(eng, at, vault.vault_id)
    supersede_staged(eng, vault.vault_id, at, cid)
    first_seq = eng.journal.seq + 1
    accounts = [a for a in repo.accounts(conn, vault.vault_id) if a.status != "removed"]
    instruments = repo.instruments(conn)
    overlays = repo.overlays(conn, vault.vault_id)
    signals = repo.latest_signals(conn, vault.vault_id, at)
    wanted = {s.symbol for s in signals[1]} if signals else set()
    wanted.update(repo.held_symbols(conn, [a.account_id for a in accounts]))
    times: dict[str, int] = {}
    marks = repo.marks_at(conn, at, wanted, times)
    _check_marks(eng, vault, cid, at, wanted, times, report)

    # NAV and the drawdown guard, at the start of the cycle, at this cycle's marks.
    status, nav, peak = row.status, None, row.peak_nav
    master = next((a for a in accounts if a.role == "manager"), None)
    if master is not None:
        nav = load_books(conn, [master])[master.account_id].equity(marks)
        peak = nav if peak is None or nav > peak else peak
        drawdown = (peak - nav) / peak if peak > 0 else ZERO
        eng.record(at, "nav", {"cycle_id": cid, "vault_id": vault.vault_id,
                               "account_id": master.account_id, "nav": fmt(nav),
                               "peak_nav": fmt(peak), "drawdown": fmt(drawdown)})
        limit = vault.risk.max_drawdown
        if status == "active" and limit is not None and nav < (ONE - limit) * peak:
            status = "halted"
            eng.record(at, "vault.halted", {
                "cycle_id": cid, "vault_id": vault.vault_id, "nav": fmt(nav),
                "peak_nav": fmt(peak), "threshold": fmt((ONE - limit) * peak),
                "max_drawdown": fmt(limit), "on_drawdown": vault.risk.on_drawdown})
    halted = status == "halted"
    liquidate = halted and vault.risk.on_drawdown == "liquidate"
    maintenance = any(o.kind == "maintenance" and o.in_force(at) for o in overlays)
    report.nav = nav
    report.vault_status = ("maintenance" if maintenance else
                           "no_signals" if signals is None and not liquidate else status)
    repo.insert_cycle(conn, repo.CycleRow(
        cid, vault.vault_id, at, "staged", stage_only, report.vault_status, nav, peak,
        signals[0] if signals else None, first_seq))

    allocations: dict[tuple[str, ...], Allocation] = {}

    def allocation_for(personas: tuple[str, ...]) -> Allocation:
        key = tuple(sorted(personas))
        if key not in allocations:
            alloc = (allocate(vault, signals[1], key, overlays, instruments, at) if signals
                     else Allocation(key, {}))
            allocations[key] = alloc
            weights = {s: fmt(w.value()) for s, w in alloc.weights.items()}
            cash = fmt(alloc.cash_weight())
            eng.record(at, "allocation", {
                "cycle_id": cid, "vault_id": vault.vault_id, "personas": list(key),
                "weights": weights, "cash_weight": cash,
                "signal_as_of": fmt_ts(signals[0]) if signals else None})
            repo.put_allocation(conn, cid, key, weights, cash)
        return allocations[key]

    master_alloc = allocation_for(vault.personas)
    planned: list[_Planned] = []
    if maintenance:
        eng.record(at, "skip", {"cycle_id": cid, "vault_id": vault.vault_id,
                                "account_id": None, "reason": "maintenance"})
        report.skips += 1
    elif signals is None and not liquidate:
        eng.record(at, "skip", {"cycle_id": cid, "vault_id": vault.vault_id,
                                "account_id": None, "reason": "no_signals"})
        report.skips += 1
    else:
        # The books of a batch of accounts at a time: only their plans outlive the batch.
        for start in range(0, len(accounts), BATCH_ACCOUNTS):
            batch = accounts[start:start + BATCH_ACCOUNTS]
            books = load_books(conn, batch)
            for acct in batch:
                if blocked and acct.account_id in blocked:  # journaled by the reconciliation
                    report.skips += 1
                    continue
                result = _plan_account(eng, vault, acct, books[acct.account_id], marks,
                                       instruments, at, cid, halted, liquidate, master_alloc,
                                       allocation_for)
                if result is None:
                    report.skips += 1
                else:
                    report.skips += result.skipped
                    planned.append(result)
            _save_books(eng, books)

    waiting = _record_orders(eng, vault, cid, at, planned, master_alloc, master, marks,
                             report, stage_only)
    repo.set_vault_state(conn, vault.vault_id, status=status, peak_nav=peak, last_nav=nav,
                         last_cycle_at=at)
    return waiting, Context(marks, instruments)


def _held(eng: Engine, acct: repo.AccountRow, book: Book) -> dict[str, Decimal]:
    """What the diff starts from: holdings, plus at a live venue what its working orders
    will still buy or sell (SPEC §8 step 2)."""
    held = book.holdings()
    if is_live(acct):
        for row, _venue_id, _avg in repo.working_orders(eng.conn, acct.account_id):
            left = row.qty - row.filled_qty
            held[row.symbol] = held.get(row.symbol, ZERO) + (left if row.side == "buy"
                                                             else -left)
    return held


def _check_marks(eng: Engine, vault: Vault, cid: str, at: int, symbols: set[str],
                 times: dict[str, int], report: CycleReport) -> None:
    """Journal (and say) that the cycle trades on marks older than the vault's schedule
    interval, or with none."""
    max_age = parse_duration(vault.schedule[0])
    found = mark_health.problems(times, at, symbols, max_age)
    if not found:
        return
    eng.record(at, "marks.stale", {
        "cycle_id": cid, "vault_id": vault.vault_id, "max_age": vault.schedule[0],
        "symbols": {p.symbol: fmt_ts(p.newest) if p.newest is not None else None
                    for p in found}})
    report.notes.append(f"warning: {vault.vault_id} trades on "
                        f"{mark_health.summary(found, max_age)}")


def _plan_account(
    eng: Engine, vault: Vault, acct: repo.AccountRow, book: Book, marks: dict[str, Decimal],
    instruments: dict[str, Instrument], at: int, cid: str, halted: bool, liquidate: bool,
    master_alloc: Allocation, allocation_for: Any,
) -> _Planned | None:
    blocked = unavailable(acct)
    if blocked is not None:
        eng.record(at, "skip", {"cycle_id": cid, "vault_id": vault.vault_id,
                                "account_id": acct.account_id, "reason": blocked})
        return None
    equity = book.equity(marks)
    rb = vault.rebalance
    if acct.role == "manager":
        weights: dict[str, Weight] = {} if liquidate else master_alloc.weights
        sizing = Sizing(equity, rb.min_order_notional, rb.drift_band, None, not halted)
    else:
        reason = ("paused" if acct.status == "paused" else
                  "not_onboarded" if acct.onboarded_at > at else
                  "below_min_equity" if equity < vault.mirroring.min_account_equity else None)
        if reason is not None:
            eng.record(at, "skip", {
                "cycle_id": cid, "vault_id": vault.vault_id, "account_id": acct.account_id,
                "reason": reason, "equity": fmt(equity),
                "min_account_equity": fmt(vault.mirroring.min_account_equity)})
            return None
        m = acct.mirroring
        personas = vault.personas if acct.persona_prefs is None else tuple(
            p for p in acct.persona_prefs if p in vault.personas)
        if not personas and vault.personas:
            eng.record(at, "skip", {
                "cycle_id": cid, "vault_id": vault.vault_id, "account_id": acct.account_id,
                "reason": "no_personas", "persona_prefs": list(acct.persona_prefs or ()),
                "vault_personas": list(vault.personas)})
            return None
        alloc = allocation_for(personas)
        capped = m.get("mode") == "capped"
        if liquidate:
            alloc = Allocation(alloc.personas, {})
        elif capped and m.get("max_position_pct") is not None:
            alloc = alloc.capped(Decimal(m["max_position_pct"]))
        weights = alloc.weights
        max_order = m.get("max_order_notional") if capped else None
        sizing = Sizing(sizing_equity(equity, m), rb.min_order_notional, rb.drift_band,
                        None if max_order is None else Decimal(max_order), not halted)
    try:
        plans, skips = diff(_held(eng, acct, book), weights, marks, instruments, sizing)
    except decimal.InvalidOperation:  # a quantity past 60 digits: extreme but valid inputs
        eng.record(at, "skip", {"cycle_id": cid, "vault_id": vault.vault_id,
                                "account_id": acct.account_id, "reason": "arithmetic_limit",
                                "note": "a target quantity needs more than 60 digits"})
        return None
    tolerated: dict[str, str] = {}
    kept = skips
    if acct.role == "follower":
        kept = []
        for skip in skips:
            if skip.reason in TOLERANCE_SKIPS and skip.symbol is not None:
                tolerated[skip.symbol] = skip.reason
            else:
                kept.append(skip)
    return _Planned(acct, plans, kept, tolerated, len(skips))


def _record_orders(
    eng: Engine, vault: Vault, cid: str, at: int, planned: list[_Planned],
    master_alloc: Allocation, master: repo.AccountRow | None, marks: dict[str, Decimal],
    report: CycleReport, stage_only: bool,
) -> dict[str, Staged]:
    """Journal intents, orders, child orders and skips. Returns the orders left staged for
    execution, by account (written to the orders table now only when they
    wait in the queue: otherwise once settled, see service.pending)."""
    symbols = sorted({p.symbol for item in planned for p in item.plans})
    parents = {symbol: ids.intent_id(cid, symbol) for symbol in symbols}
    for symbol in symbols:
        weight = master_alloc.weights.get(symbol)
        eng.record(at, "intent", {
            "intent_id": parents[symbol], "cycle_id": cid,
            "vault_id": vault.vault_id, "symbol": symbol,
            "account_id": master.account_id if master else None,
            "weight": fmt(weight.value()) if weight else "0", "mark": fmt(marks[symbol])})
    waiting: dict[str, Staged] = {}
    mark_texts = {symbol: fmt(mark) for symbol, mark in marks.items()}
    journal = eng.journal
    for item in planned:
        acct = item.account
        for skip in item.skips:
            eng.record(at, "skip", {"cycle_id": cid, "vault_id": vault.vault_id,
                                    "account_id": acct.account_id, "symbol": skip.symbol,
                                    "reason": skip.reason,
                                    **{k: fmt(v) for k, v in skip.detail.items()}})
        if item.tolerated:
            # A follower's steady-state non-trades (tiny or within-band differences) are one
            # event per account, not one per symbol: with thousands of followers they would
            # outnumber the orders, and replay re-derives them anyway.
            eng.record(at, "skip", {"cycle_id": cid, "vault_id": vault.vault_id,
                                    "account_id": acct.account_id, "symbol": None,
                                    "reason": "within_tolerance",
                                    "symbols": item.tolerated})
        kind = "order" if acct.role == "manager" else "child_order"
        # A shadow child order waits like any other and is booked by the shadow venue at
        # execution (or cancelled with the others): nothing is ever sent anywhere.
        status = "shadow" if acct.mode == "shadow" else "staged"
        account_id = acct.account_id
        staged = Staged(cid, account_id, kind)
        for plan in item.plans:
            symbol = plan.symbol
            oid = ids.order_id(cid, account_id, symbol)
            coid = ids.client_order_id(cid, account_id, symbol)
            parent = parents[symbol]
            if plan.capped_from is None:
                eng.record_rendered(at, kind, ORDER_EVENT.render_values((
                    account_id, coid, cid, fmt(plan.held), mark_texts[symbol], oid, parent,
                    fmt(plan.qty), plan.side, status, symbol, fmt(plan.target),
                    vault.vault_id)))
            else:
                eng.record(at, kind, {
                    "order_id": oid, "client_order_id": coid, "cycle_id": cid,
                    "parent_id": parent, "vault_id": vault.vault_id, "account_id": account_id,
                    "symbol": symbol, "side": plan.side, "qty": fmt(plan.qty),
                    "mark": mark_texts[symbol], "held": fmt(plan.held),
                    "target": fmt(plan.target), "status": status,
                    "capped_from": fmt(plan.capped_from)})
            if kind == "order":
                report.orders += 1
            else:
                report.child_orders += 1
            staged.orders.append((symbol, plan.side, plan.qty, coid))
        if staged.orders:
            waiting[account_id] = staged
        item.plans = []  # journaled: only the orders that wait are kept
        if journal.pending >= JOURNAL_CHUNK:
            journal.flush()  # into the same transaction: only the buffer is bounded
    if stage_only:
        repo.insert_orders(eng.conn, (o for staged in waiting.values() for o in staged))
    return waiting


def _save_books(eng: Engine, books: dict[str, Book]) -> None:
    upserts, deletes, money = [], [], []
    for book in books.values():
        if not book.touched:
            continue
        u, d = book.changes()
        upserts += u
        deletes += d
        money.append((fmt(book.cash), fmt(book.realized), fmt(book.commissions),
                      book.account_id))
    repo.save_positions(eng.conn, upserts, deletes)
    repo.save_account_money(eng.conn, money)
