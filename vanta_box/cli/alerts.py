"""alerts, notify: what needs the manager, and how it reaches them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from vanta_box.cli.common import at_option, engine, home_of, parse_at, write_state

if TYPE_CHECKING:
    from vanta_box.home import Home
    from vanta_box.service.alerts import Alert


def alert_lines(a: Alert, indent: str = "") -> list[str]:
    """An alert for people: severity, id and what happened; then kind, subject, count,
    first and last time, state; then the hint."""
    from vanta_box.cli.console import alert_style
    from vanta_box.core.timeutil import fmt_ts
    from vanta_box.service import alerts

    pad = indent + " " * 10
    span = fmt_ts(a.first_at) if a.first_at == a.last_at else (
        f"{fmt_ts(a.first_at)} .. {fmt_ts(a.last_at)}")
    state = a.state + (f" {fmt_ts(a.acked_at)}" if a.acked_at is not None else "")
    return [f"{indent}{a.severity.upper():<9} {a.alert_id}  "
            f"{alerts.describe(a, alert_style())}",
            f"{pad}{a.kind} · {a.subject} · count {a.count:,} · {span} · {state}",
            f"{pad}hint: {alerts.hint(a)}"]


def _last_event(conn: Any) -> int | None:
    from vanta_box.core.timeutil import parse_ts
    from vanta_box.reports.html import last_event_time

    last = last_event_time(conn)
    return parse_ts(last) if last is not None else None


def as_of(conn: Any, at: str | None) -> int:
    """When alerts are judged: --at, else the journal's last event (deterministic, like
    `vanta status`), else now."""
    if at is not None:
        return parse_at(at)
    last = _last_event(conn)
    return last if last is not None else parse_at(None)


@click.group(invoke_without_command=True)
@click.option("--since", metavar="TS", default=None,
              help="Every alert (resolved ones too) seen or resolved at or after TS.")
@click.option("--all", "show_all", is_flag=True, help="Resolved alerts too.")
@click.option("--json", "as_json", is_flag=True, help="Print the alerts as JSON (exact values).")
@click.option("--at", "at", metavar="TS", default=None,
              help="Judge conditions that come with time (a fee unpaid too long) at TS "
                   "(default: the journal's last event).")
@click.option("--home", "home_override", metavar="DIR", default=None,
              help="Home directory (same as the global --home).")
@click.pass_context
def alerts(ctx: click.Context, since: str | None, show_all: bool, as_json: bool,
           at: str | None, home_override: str | None) -> None:
    """What needs the manager: vault halts, rejects, discrepancies and capital flows found
    by reconciliation, orders still working, venue errors, stale marks, expired overlays,
    fees unpaid for 30 days, accounts skipped cycle after cycle, failed notifications.

    Alerts are read from the journal. Open and acknowledged ones are listed (the most
    severe first); --since TS lists every alert seen since TS, resolved ones too.
    `vanta alerts ack ID` acknowledges one; `vanta run --once` exits 4 when it raised a new
    one of severity warning or above.

    \b
    Example:
        vanta alerts
        vanta alerts --since 2026-11-01T00:00:00Z --json
    """
    if home_override is not None:
        from vanta_box.cli.common import State

        state = ctx.find_object(State)
        if state is not None:
            state.home_option = home_override
    if ctx.invoked_subcommand is not None:
        return
    from vanta_box.core.canonical import pretty
    from vanta_box.core.errors import InputError
    from vanta_box.core.timeutil import TimeError, fmt_ts, parse_input_ts
    from vanta_box.service import alerts as service
    from vanta_box.store import journal

    since_ts = None
    if since is not None:
        try:
            since_ts = parse_input_ts(since)
        except TimeError as exc:
            raise InputError(str(exc), field="--since") from None
    with engine(ctx, lock=False) as (eng, _home):
        ts = as_of(eng.conn, at)
        found = service.compute(eng.conn, ts)
        digest = journal.head(eng.conn)
    if since_ts is not None:
        found = [a for a in found if max(a.last_at, a.resolved_at or 0) >= since_ts]
    elif not show_all:
        found = service.unresolved(found)
    found = service.listing_order(found)
    if as_json:
        click.echo(pretty({"as_of": fmt_ts(ts), "digest": str(digest),
                           "alerts": [a.line() for a in found]}).rstrip())
        return
    if not found:
        click.echo(f"no alerts as of {fmt_ts(ts)}: nothing needs you")
        return
    states = [a.state for a in found]
    counts = ", ".join(f"{states.count(s)} {s}" for s in ("open", "acknowledged", "resolved")
                       if s in states)
    click.echo(f"{len(found)} alert(s) as of {fmt_ts(ts)} ({counts}):")
    for a in found:
        for line in alert_lines(a):
            click.echo(line)


@alerts.command("ack")
@click.argument("alert_id", metavar="ID")
@at_option
@click.pass_context
def alerts_ack(ctx: click.Context, alert_id: str, at: str | None) -> None:
    """Acknowledge an alert (journaled): it is not sent or counted as new again. It stays
    listed, acknowledged, while its condition lasts; a condition that comes back after it
    was resolved is a new alert. ID is the alert's id, or a unique start of it.

    \b
    Example:
        vanta alerts ack 3f2a9c1b7d4e --at 2026-11-21T09:00:00Z
    """
    from vanta_box.cli.console import alert_style
    from vanta_box.service import alerts as service

    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        acked = eng.run(service.ack_command(eng, alert_id, ts))
        write_state(eng, home, ts)
    click.echo(f"{acked.alert_id} acknowledged: {service.describe(acked, alert_style())}")


# ---------------------------------------------------------------- sending them


def message_for(a: Alert) -> Any:
    from vanta_box.cli.console import alert_style
    from vanta_box.core.timeutil import fmt_ts
    from vanta_box.service import alerts as service
    from vanta_box.service.notify import Message

    since = (fmt_ts(a.first_at) if a.first_at == a.last_at
             else f"{fmt_ts(a.first_at)} .. {fmt_ts(a.last_at)}")
    body = "\n".join([
        service.describe(a, alert_style()), "",
        f"What to do: {service.hint(a)}", "",
        f"alert {a.alert_id} ({a.kind}, {a.severity}), count {a.count:,}, {since}",
        f"Acknowledge it with: vanta alerts ack {a.alert_id}"])
    return Message(a.alert_id, a.severity,
                   f"vanta-box {a.severity.upper()}: {a.kind} {a.subject}", body)


def notify_pending(ctx: click.Context, home: Home, current: list[Alert], now: int) -> None:
    """Send each open alert (warning or above) to every notification URL that has not had
    it, outside the lock and any transaction; then journal what was sent (and what could
    not be: itself an alert, and exit 3)."""
    from vanta_box.cli.common import OUTPUT_FAILURES
    from vanta_box.core.errors import KeystoreError
    from vanta_box.keystore import Keystore
    from vanta_box.service import alerts as service
    from vanta_box.service import notify

    keystore = Keystore(home.keystore_path)
    wanted = [a for a in current if a.state == "open" and a.at_least("warning")]
    if not wanted or not keystore.has_notify_urls():
        return
    deliveries: list[dict[str, Any]] = []
    try:
        urls = keystore.notify_urls()
    except KeystoreError as exc:
        unsent = [a.alert_id for a in wanted if not a.notified and not (
            a.kind == "notify.failed" and a.key == notify.KEYSTORE_ID)]
        if unsent:
            deliveries.append({"url_id": notify.KEYSTORE_ID, "alert_ids": unsent, "ok": False,
                               "tries": 0, "error": f"the notification URLs cannot be read "
                                                    f"({exc})"})
    else:
        for url in urls:
            uid = notify.url_id(url)
            # a URL is not told it failed; nor anyone that the URLs could not be read,
            # now that they are
            todo = [a for a in wanted if uid not in a.notified
                    and not (a.kind == "notify.failed" and a.key in (uid, notify.KEYSTORE_ID))]
            if not todo:
                continue
            outcome = notify.send(url, [message_for(a) for a in todo])
            deliveries += outcome.deliveries()
            if outcome.sent:
                click.echo(f"  notified {notify.shown(url)}: {len(outcome.sent)} alert(s)")
    if not deliveries:
        return
    with engine(ctx) as (eng, target):
        eng.run(service.notified_command(now, deliveries))
        write_state(eng, target, now)
    for d in deliveries:
        if not d["ok"]:
            OUTPUT_FAILURES.append(
                f"{len(d['alert_ids'])} alert(s) could not be sent to notification URL "
                f"{d['url_id']}: {d['error']} (alert notify.failed; the next `vanta run` "
                "tries again)")


# ---------------------------------------------------------------- notify


@click.group()
def notify() -> None:
    """Notification URLs (apprise: mailto://, tgram://, slack://, ntfy://, json://, ...),
    kept encrypted in the keystore (they hold tokens), never in vanta.db or any output."""


def _home(ctx: click.Context) -> Home:
    from vanta_box import home as homes

    return homes.require(home_of(ctx))


@notify.command("add")
@click.argument("url", metavar="URL")
@click.pass_context
def notify_add(ctx: click.Context, url: str) -> None:
    """Add a notification URL (needs VANTA_PASSPHRASE, for the keystore). Every new alert
    of severity warning or above is sent to it once, by `vanta run`.

    \b
    Example:
        VANTA_PASSPHRASE=... vanta notify add 'tgram://BOT_TOKEN/CHAT_ID'
        vanta notify add 'json://127.0.0.1:8080/hooks/vanta'
    """
    from vanta_box import home as homes
    from vanta_box.core.errors import Refused
    from vanta_box.keystore import Keystore
    from vanta_box.service import notify as service

    target = _home(ctx)
    clean = service.check(url)
    with homes.locked(target):
        keystore = Keystore(target.keystore_path)
        keystore.require_passphrase()
        urls = keystore.notify_urls()
        if clean in urls:
            raise Refused(f"{service.shown(clean)} is already there")
        keystore.set_notify_urls([*urls, clean])
    click.echo(f"added {service.shown(clean)}: `vanta run` sends it every new alert of "
               "severity warning or above, once")


@notify.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
@click.pass_context
def notify_list(ctx: click.Context, as_json: bool) -> None:
    """List the notification URLs, redacted (scheme and host, never a token), with their
    ids (needs VANTA_PASSPHRASE).

    \b
    Example:
        vanta notify list
    """
    from vanta_box.core.canonical import pretty
    from vanta_box.keystore import Keystore
    from vanta_box.service import notify as service

    urls = Keystore(_home(ctx).keystore_path).notify_urls()
    if as_json:
        click.echo(pretty([{"url_id": service.url_id(u), "url": service.redact(u)}
                           for u in urls]).rstrip())
        return
    if not urls:
        click.echo("no notification URLs: `vanta notify add URL`")
    for u in urls:
        click.echo(f"{service.url_id(u)}  {service.redact(u)}")


@notify.command("remove")
@click.argument("url", metavar="URL|ID")
@click.pass_context
def notify_remove(ctx: click.Context, url: str) -> None:
    """Remove a notification URL, given as the URL or as its id from `vanta notify list`.

    \b
    Example:
        vanta notify remove 5d41402abc4b
    """
    from vanta_box import home as homes
    from vanta_box.core.errors import InputError
    from vanta_box.keystore import Keystore
    from vanta_box.service import notify as service

    target = _home(ctx)
    wanted = url.strip()
    with homes.locked(target):
        keystore = Keystore(target.keystore_path)
        urls = keystore.notify_urls()
        keep = [u for u in urls if u != wanted and service.url_id(u) != wanted]
        if len(keep) == len(urls):
            raise InputError("no such notification URL (see `vanta notify list` for the ids)",
                             field="URL|ID")
        gone = [u for u in urls if u not in keep]
        keystore.set_notify_urls(keep)
    for u in gone:
        click.echo(f"removed {service.shown(u)}")


@notify.command("test")
@click.pass_context
def notify_test(ctx: click.Context) -> None:
    """Send a test notification to every URL; exit 3 if one cannot be delivered.

    \b
    Example:
        vanta notify test
    """
    from vanta_box.cli.common import OUTPUT_FAILURES
    from vanta_box.keystore import Keystore
    from vanta_box.service import notify as service

    urls = Keystore(_home(ctx).keystore_path).notify_urls()
    if not urls:
        from vanta_box.core.errors import Refused

        raise Refused("no notification URLs to test: `vanta notify add URL` first")
    for u in urls:
        outcome = service.send(u, [service.test_message()])
        if outcome.sent:
            click.echo(f"sent to {service.shown(u)}")
        else:
            click.echo(f"FAILED {service.shown(u)}: {outcome.error}")
            OUTPUT_FAILURES.append(f"the test notification to {service.shown(u)} could not "
                                   f"be delivered ({outcome.error})")


COMMANDS = [alerts, notify]
