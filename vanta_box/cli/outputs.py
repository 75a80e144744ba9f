"""emit, status, demo."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vanta_box.cli.common import (
    at_option,
    engine,
    home_of,
    output_failed,
    parse_at,
    write_state,
)

if TYPE_CHECKING:
    from vanta_box.home import Home
    from vanta_box.service.engine import Engine


def write_reports(eng: Engine, home: Home, as_of: int) -> None:
    """The HTML reports after a committed command; failing to write them is exit 3."""
    from vanta_box.reports.html import render

    try:
        render(eng.conn, home.reports, as_of)
    except OSError as exc:
        output_failed(eng, f"the reports in {home.reports}", exc)


@click.command()
@click.option("--out", "out", metavar="DIR", default=None,
              help="Write the files here instead of the home's memory/.")
@at_option
@click.pass_context
def emit(ctx: click.Context, out: str | None, at: str | None) -> None:
    """Write the JSON state files (vault.json, portfolio.json, ...) as of --at.

    \b
    Example:
        vanta emit --at 2026-11-20T00:00:00Z
        vanta emit --out ./snapshot
    """
    from vanta_box.reports.emit import emit as emit_files

    ts = parse_at(at)
    from vanta_box.core.errors import InputError

    if out and Path(out).exists() and not Path(out).is_dir():
        raise InputError(f"{out} is a file: --out takes a directory", field="--out")
    with engine(ctx, lock=False) as (eng, home):
        target = Path(out) if out else home.memory
        try:
            written = emit_files(eng.conn, target, ts)
        except OSError as exc:
            from vanta_box.core.errors import Refused

            raise Refused(f"could not write the state files in {target}: "
                          f"{exc.strerror or exc}") from None
    for path in written:
        click.echo(str(path))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON (exact values).")
@at_option
@click.pass_context
def status(ctx: click.Context, as_json: bool, at: str | None) -> None:
    """At a glance: open alerts first, then vaults, accounts and equity, last cycle, queue
    depth, journal size.

    Equity is valued at the marks of --at (default: the journal's last event, the moment
    the NAV of the last cycle and the state files were made at); marks missing or older
    than a vault's schedule interval are named. --json gives the exact values.

    \b
    Example:
        vanta status
        vanta status --json
    """
    from vanta_box.cli.alerts import alert_lines
    from vanta_box.cli.console import money, pct
    from vanta_box.core.canonical import pretty
    from vanta_box.core.money import ZERO, fmt
    from vanta_box.core.timeutil import fmt_ts, parse_ts
    from vanta_box.reports.html import last_event_time
    from vanta_box.reports.state import portfolio_doc
    from vanta_box.service import alerts, marks, pending
    from vanta_box.store import journal, repo

    with engine(ctx, lock=False) as (eng, home):
        conn = eng.conn
        last_event = last_event_time(conn)
        ts = parse_at(at) if at is not None or last_event is None else parse_ts(last_event)
        head = journal.head(conn)
        open_alerts = alerts.listing_order(
            a for a in alerts.compute(conn, ts) if a.state == "open")
        vaults = repo.vault_rows(conn)
        cycles = {v.vault_id: repo.last_cycle(conn, v.vault_id) for v in vaults}
        doc = portfolio_doc(conn, ts)
        staged = pending.pending(conn)
        mark_problems: dict[str, str] = {}
        for v in vaults:
            held = {p["symbol"] for a in doc["accounts"] if a["vault_id"] == v.vault_id
                    for p in a["positions"]}
            max_age = marks.interval(v.config)
            found = marks.problems(marks.price_times(conn, ts, held), ts, held, max_age)
            if found:
                mark_problems[v.vault_id] = marks.summary(found, max_age)

    def drawdown(v: repo.VaultRow) -> Decimal | None:
        if v.last_nav is None or v.peak_nav is None or v.peak_nav <= 0:
            return None
        return max(ZERO, (v.peak_nav - v.last_nav) / v.peak_nav)

    if as_json:
        click.echo(pretty({
            "home": str(home.root), "as_of": fmt_ts(ts),
            "journal": {"events": head.seq, "digest": str(head)},
            "alerts": [a.line() for a in open_alerts],
            "vaults": [{"vault_id": v.vault_id, "status": v.status,
                        "nav": None if v.last_nav is None else fmt(v.last_nav),
                        "peak_nav": None if v.peak_nav is None else fmt(v.peak_nav),
                        "drawdown": None if (dd := drawdown(v)) is None else fmt(dd),
                        "last_cycle": None if (c := cycles[v.vault_id]) is None else
                        {"cycle_id": c.cycle_id, "status": c.status}}
                       for v in vaults],
            "accounts": doc["accounts"], "queue": len(staged),
            "marks": mark_problems}).rstrip())
        return
    serious = [a for a in open_alerts if a.at_least("warning")]
    notes = len(open_alerts) - len(serious)
    also = f" and {notes} for information" if notes else ""
    if serious:
        click.echo(f"alerts   {len(serious)} open{also} (`vanta alerts` for what to do):")
        for a in serious:
            click.echo(alert_lines(a, indent="  ")[0])
    else:
        click.echo(f"alerts   none open{also}" + (" (`vanta alerts`)" if notes else ""))
    click.echo(f"home     {home.root}")
    click.echo(f"journal  {head.seq} events, digest {head}")
    if not vaults:
        click.echo("vaults   none yet: `vanta vault import FILE`")
    for v in vaults:
        last = cycles[v.vault_id]
        cycle = f"last cycle {last.cycle_id} ({last.status})" if last else "no cycle yet"
        dd = drawdown(v)
        nav = (f", nav {money(v.last_nav)}, peak {money(v.peak_nav)}"
               + (f", drawdown {pct(dd)}" if dd is not None else "")
               if v.last_nav is not None else "")
        click.echo(f"vault    {v.vault_id}: {v.status}{nav}; {cycle}")
    for a in doc["accounts"]:
        click.echo(f"account  {a['account_id']:<10} {a['role']:<8} {a['mode']:<12} "
                   f"{a['status']:<7} equity {money(a['equity']):>18} cash "
                   f"{money(a['cash']):>18} {len(a['positions'])} positions")
    click.echo(f"queue    {len(staged):,} staged order(s)")
    source = "" if at is not None else " (the journal's last event)"
    click.echo(f"marks    as of {fmt_ts(ts)}{source}")
    for vault_id, summary in mark_problems.items():
        click.echo(f"warning: {vault_id}: {summary}", err=True)


@click.command()
@click.option("--home", "home_override", metavar="DIR", default=None,
              help="Where to build the sample home (default: the global home).")
@click.pass_context
def demo(ctx: click.Context, home_override: str | None) -> None:
    """Build a sample home from built-in data and run it end to end, day by day.

    A vault with three personas, 12 instruments (equity and crypto), seven weeks of prices
    and weekly signals, a manager and followers of every mirroring mode; overlays and a
    paused follower along the way. Only a home made by a previous demo is ever replaced.

    \b
    Example:
        vanta demo --home ./vanta-demo
    """
    from vanta_box.service import demo as demo_service

    target = home_of(ctx, home_override)
    click.echo(f"building the demo home in {target.root}")
    result = demo_service.run(target, lambda line: click.echo(f"  {line}"))
    click.echo(f"ran {result.cycles} cycles; journal {result.events} events, "
               f"digest {result.digest}")
    click.echo(f"state files: {target.memory}")
    for path in sorted(target.memory.iterdir()):
        click.echo(f"  {path.name}")
    click.echo(f"reports:     {target.reports / 'index.html'}")
    click.echo(f"database:    {target.db_path}")
    click.echo(f"next: vanta --home {target.root} status")
    click.echo(f"      vanta --home {target.root} statement F1001 --period 2026-10")


@click.command()
@click.option("--db", "db_file", metavar="FILE", default=None,
              help="Report on this database file alone (an auditor's copy).")
@click.option("--out", "out", metavar="DIR", default=None,
              help="Where to write the pages (default: the home's reports/, or ./reports "
                   "with --db).")
@click.option("--at", "at", metavar="TS", default=None,
              help="Value positions at this time (default: the journal's last event).")
@click.option("--with-wal", "with_wal", is_flag=True,
              help="Also read the FILE-wal beside the database (default: the main file "
                   "alone; a WAL beside it is named).")
@click.pass_context
def report(ctx: click.Context, db_file: str | None, out: str | None, at: str | None,
           with_wal: bool) -> None:
    """Write the static HTML reports: overview, one page per vault, one statement page per
    follower (that follower's data only), the fee ledger. Works offline on a lone file,
    read-only: the main file alone unless --with-wal. Every page is computed before the
    first is written; page names are made from the ids safely, inside --out.

    \b
    Example:
        vanta report --db vanta.db --out ./reports
    """
    from vanta_box import home as homes
    from vanta_box.core.errors import InputError
    from vanta_box.reports.html import report_file
    from vanta_box.store import db

    if out and Path(out).exists() and not Path(out).is_dir():
        raise InputError(f"{out} is a file: --out takes a directory", field="--out")
    if db_file:
        source = Path(db_file)
        if not source.is_file():
            raise InputError(f"{db_file}: no such database file", field="--db")
        target = Path(out) if out else Path("reports")
    else:
        home = homes.require(home_of(ctx))
        source = home.db_path
        target = Path(out) if out else home.reports
    with_wal = with_wal or not db_file  # the home's own database: with its WAL
    note = db.wal_note(source, with_wal)
    if note:
        click.echo(f"note: {source}: {note}", err=True)
    from vanta_box.cli.common import progress

    progress(f"computing the pages of {source.name}")
    try:
        written = report_file(source, target, parse_at(at) if at else None, with_wal=with_wal)
    except OSError as exc:
        from vanta_box.core.errors import Refused

        raise Refused(f"could not write the reports in {target}: {exc.strerror or exc}"
                      ) from None
    click.echo(f"{len(written)} page(s) in {target}: open {target / 'index.html'}")


@click.command()
@click.option("--once", is_flag=True, help="Run what is due at --at (or now) and exit.")
@at_option
@click.pass_context
def run(ctx: click.Context, once: bool, at: str | None) -> None:
    """The internal scheduler: cycles (per each vault's schedule, default daily at 00:00
    UTC), overlay expiry, the monthly fee run, state files; then the alerts it raised,
    logged and sent once to each notification URL (`vanta notify`); then, when payment
    processors are set, the payments of open fee invoices (`vanta fees collect --sync`).

    Each job runs at its scheduled logical time, under the home's lock (other commands
    can run between jobs); notifications are sent after, outside the lock. Without --once
    it loops until interrupted. With --once the exit status is 4 when the run raised a new
    alert of severity warning or above (a halt, rejects, a venue error ...: see `vanta
    alerts`), 3 when a notification (or a state file) could not be written, else 0.

    \b
    Example:
        vanta run --once --at 2026-11-03T00:00:00Z
        vanta run
    """
    import time

    from vanta_box import scheduler
    from vanta_box.cli.alerts import alert_lines, notify_pending
    from vanta_box.cli.common import OUTPUT_FAILURES
    from vanta_box.cli.console import money
    from vanta_box.core.clock import SystemClock
    from vanta_box.core.timeutil import fmt_ts
    from vanta_box.service import alerts
    from vanta_box.service import schedule as schedule_service
    from vanta_box.store import repo

    def tick(now: int) -> tuple[int, list[alerts.Alert]]:
        with engine(ctx) as (eng, home):
            before_at = _previous_moment(eng, now)
            before = ({a.alert_id for a in alerts.compute(eng.conn, before_at)}
                      if before_at is not None else set())
            outcomes = schedule_service.run_due(eng, now, lambda m: click.echo(f"  {m}"),
                                                money)
            write_state(eng, home, now)
            if outcomes:
                write_reports(eng, home, now)
            current = alerts.compute(eng.conn, now)
            wake = scheduler.next_wake(now, schedule_service.clocks(eng),
                                       [o.expires_at for o in repo.overlays(eng.conn)])
        new = alerts.raised(before, current)
        if not outcomes:
            click.echo(f"{fmt_ts(now)}: nothing due")
        for a in new:
            lines = alert_lines(a, indent="  ")
            click.echo(f"  new alert: {lines[0].strip()}")
            for line in lines[1:]:
                click.echo(line)
        notify_pending(ctx, home, current, now)
        sync_payments(ctx, home, now)
        return wake, new

    from vanta_box.cli.fees import sync_payments

    if once:
        _wake, new = tick(parse_at(at))
        if new and not OUTPUT_FAILURES:
            click.echo(f"exit 4: {len(new)} new alert(s) need you: `vanta alerts`", err=True)
            ctx.exit(4)
        return
    if at is not None:
        raise click.UsageError("--at only makes sense with --once")
    clock = SystemClock()
    click.echo("vanta run: scheduler started (Ctrl-C to stop)")
    try:
        while True:
            wake, _new = tick(clock.now())
            for message in OUTPUT_FAILURES:  # said by their tick, not at the end
                click.echo(f"error: {message}", err=True)
            OUTPUT_FAILURES.clear()
            click.echo(f"next check at {fmt_ts(wake)}")
            while clock.now() < wake:
                time.sleep(min(60.0, max(1.0, (wake - clock.now()) / 1_000_000)))
    except KeyboardInterrupt:
        click.echo("scheduler stopped")


def _previous_moment(eng: Engine, now: int) -> int | None:
    """When the home was last looked at: its journal's last event (not after ``now``)."""
    from vanta_box.core.timeutil import parse_ts
    from vanta_box.reports.html import last_event_time

    last = last_event_time(eng.conn)
    return None if last is None else min(parse_ts(last), now)


COMMANDS = [emit, status, demo, run, report]
