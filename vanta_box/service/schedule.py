"""Run what the scheduler says is due, at the scheduled logical times."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from vanta_box import scheduler
from vanta_box.core.errors import VantaError
from vanta_box.core.money import ZERO, D, fmt
from vanta_box.core.timeutil import parse_duration
from vanta_box.inputs.vaults import vault_from_dict

# alerts: its commands (alert.ack, alert.notified) register here for replay, which loads
# this module's handlers
from vanta_box.service import alerts as _alerts  # noqa: F401
from vanta_box.service import cycle, fees, setup
from vanta_box.service.engine import Command, Engine, handles
from vanta_box.store import repo


@dataclass
class Outcome:
    job: scheduler.Job
    ok: bool
    message: str


def clocks(eng: Engine) -> list[scheduler.VaultClock]:
    out = []
    for row in repo.vault_rows(eng.conn):
        vault = vault_from_dict(row.config)
        every, offset = vault.schedule
        out.append(scheduler.VaultClock(
            row.vault_id, scheduler.Schedule(parse_duration(every),
                                             0 if offset == "0s" else parse_duration(offset)),
            row.last_cycle_at, row.imported_at))
    return out


def due_now(eng: Engine, now: int) -> list[scheduler.Job]:
    last_ended, _end = scheduler.previous_month(now)
    expiries = [o.expires_at for o in repo.overlays(eng.conn)]
    return scheduler.due(now, clocks(eng), expiries,
                         fees.unbilled_periods(eng.conn, last_ended), interrupted(eng, now))


def interrupted(eng: Engine, now: int) -> list[tuple[str, int]]:
    """Cycles a crash left unfinished (staged, not --stage-only), up to ``now``."""
    out = []
    for cid in repo.staged_cycles(eng.conn):
        c = repo.cycle(eng.conn, cid)
        if c is not None and not c.stage_only and c.at <= now:
            out.append((c.vault_id, c.at))
    return out


def expire_command(at: int) -> Command:
    return Command.make("overlays.expire", at, {})


@handles("overlays.expire")
def _overlays_expire(eng: Engine, cmd: Command) -> int:
    if not any(o.expires_at <= cmd.ts for o in repo.overlays(eng.conn)):
        return 0
    with eng.tx():
        return len(setup.expire_overlays(eng, cmd.ts))


def run_due(eng: Engine, now: int, say: Callable[[str], None],
            money: Callable[[Decimal], str] = fmt) -> list[Outcome]:
    """Run every due job at its time; ``say`` gets one line per job, its amounts written
    by ``money`` (exact by default; the console rounds them to the cent)."""
    outcomes = []
    for job in due_now(eng, now):
        try:
            if job.kind == "expire":
                n = eng.run(expire_command(job.at))
                message = f"{n} overlay(s) expired"
            elif job.kind in ("cycle", "resume"):
                assert job.vault_id is not None
                (report,) = eng.run(cycle.cycle_command(eng, job.vault_id, job.at, False))
                message = "; ".join([cycle_summary(report, money), *report.notes])
            else:
                assert job.period is not None
                lines = eng.run(fees.fees_run_command(eng, job.period, job.at))
                due = sum((D(line["fee_due"]) for line in lines), ZERO)
                message = f"{len(lines)} fee entries for {job.period}, due {money(due)}"
            outcomes.append(Outcome(job, True, message))
        except VantaError as exc:
            outcomes.append(Outcome(job, False, str(exc)))
        say(f"{job.describe()}: {outcomes[-1].message}")
    return outcomes


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def cycle_summary(r: cycle.CycleReport, money: Callable[[Decimal], str] = fmt) -> str:
    """A cycle in one line: how it ended, the vault's state and NAV, what it traded."""
    nav = f", nav {money(r.nav)}" if r.nav is not None else ""
    resumed = " (resumed)" if r.resumed else ""
    return (f"{r.cycle_id}: {r.status}{resumed}, vault {r.vault_status}{nav}; "
            f"{_n(r.orders, 'order')}, {_n(r.child_orders, 'child order')}, "
            f"{_n(r.fills, 'fill')}, {_n(r.rejects, 'reject')}, {_n(r.skips, 'skip')}")
