"""init, vault, instruments, prices, signals, overlay."""

from __future__ import annotations

import click

from vanta_box.cli.common import (
    at_option,
    echo_warnings,
    engine,
    home_of,
    parse_at,
    parse_decimal,
    write_state,
)


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create a home: vanta.db, memory/, reports/, and signing.key (mode 0600, outside
    vanta.db: it signs the journal's tree heads; `vanta audit head` publishes its public
    key).

    Running it again on an existing home only applies pending migrations (and makes the
    signing key of a home made before it existed).

    \b
    Example:
        vanta --home ./my-fund init
    """
    from vanta_box import home as homes
    from vanta_box.service import proofs
    from vanta_box.store import db

    target = home_of(ctx)
    existed = target.exists()
    target.root.mkdir(parents=True, exist_ok=True)
    with homes.locked(target):
        for sub in (target.memory, target.reports):
            sub.mkdir(exist_ok=True)
        conn = db.connect(target.db_path)
        try:
            applied = db.migrate(conn)
        finally:
            conn.close()
        proofs.ensure_key(target.root)
    verb = "exists" if existed else "created"
    click.echo(f"home {verb}: {target.root} ({applied} migration(s) applied)")


@click.group()
def vault() -> None:
    """Vault definitions: import, list, resume after a drawdown halt."""


@vault.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@at_option
@click.pass_context
def vault_import(ctx: click.Context, file: str, at: str | None) -> None:
    """Import (or update) vaults from a vault.json registry.

    \b
    Example:
        vanta vault import vault.json --at 2026-11-01T00:00:00Z
    """
    from vanta_box.service.setup import vault_import_command

    ts = parse_at(at)
    command = vault_import_command(file, ts)
    with engine(ctx) as (eng, home):
        result = eng.run(command)
        write_state(eng, home, ts)
    for key in ("created", "updated", "unchanged"):
        if result[key]:
            click.echo(f"{key}: {', '.join(result[key])}")
    echo_warnings(result["warnings"])


@vault.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the vaults as JSON (exact values).")
@click.pass_context
def vault_list(ctx: click.Context, as_json: bool) -> None:
    """List vaults with their status, NAV and peak.

    \b
    Example:
        vanta vault list
    """
    from vanta_box.cli.console import money
    from vanta_box.core.canonical import pretty
    from vanta_box.core.money import fmt
    from vanta_box.store import repo

    with engine(ctx, lock=False) as (eng, _home):
        rows = repo.vault_rows(eng.conn)
    if as_json:
        click.echo(pretty({"vaults": [
            {"vault_id": v.vault_id, "status": v.status, "label": v.config.get("label"),
             "nav": None if v.last_nav is None else fmt(v.last_nav),
             "peak_nav": None if v.peak_nav is None else fmt(v.peak_nav)}
            for v in rows]}).rstrip())
        return
    for v in rows:
        nav = (f"\tnav {money(v.last_nav)}, peak {money(v.peak_nav)}"
               if v.last_nav is not None else "")
        click.echo(f"{v.vault_id}\t{v.status}\t{v.config.get('label')}{nav}")


@vault.command("resume")
@click.argument("vault_id")
@click.option("--reset-peak", is_flag=True,
              help="Restart the drawdown guard's peak NAV at the last cycle's NAV.")
@at_option
@click.pass_context
def vault_resume(ctx: click.Context, vault_id: str, reset_peak: bool, at: str | None) -> None:
    """Resume a vault halted by its drawdown guard.

    Without --reset-peak the guard keeps its peak: if NAV is still below the limit at the
    next cycle, the vault halts again.

    \b
    Example:
        vanta vault resume V_CORE --reset-peak --at 2026-11-20T00:00:00Z
    """
    from vanta_box.service.setup import vault_resume_command

    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        eng.run(vault_resume_command(eng, vault_id, ts, reset_peak))
        write_state(eng, home, ts)
    click.echo(f"{vault_id} resumed")


@click.group()
def instruments() -> None:
    """Tradable instruments (asset class, lot step, minimum notional)."""


@instruments.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@at_option
@click.pass_context
def instruments_import(ctx: click.Context, file: str, at: str | None) -> None:
    """Import instruments from instruments.json.

    \b
    Example:
        vanta instruments import instruments.json
    """
    from vanta_box.service.setup import instruments_import_command

    ts = parse_at(at)
    command = instruments_import_command(file, ts)
    with engine(ctx) as (eng, _home):
        result = eng.run(command)
    click.echo(f"instruments: {result['imported']} imported, {result['unchanged']} unchanged")


@click.group()
def prices() -> None:
    """Price history (the marks)."""


@prices.command("ingest")
@click.argument("file", type=click.Path(dir_okay=False))
@at_option
@click.pass_context
def prices_ingest(ctx: click.Context, file: str, at: str | None) -> None:
    """Ingest prices: CSV `symbol,ts,price` or a JSON list of {symbol, ts, price}.

    \b
    Example:
        vanta prices ingest prices.csv --at 2026-11-03T00:00:00Z
    """
    from vanta_box.service.setup import prices_ingest_command

    ts = parse_at(at)
    with engine(ctx) as (eng, _home):
        result = eng.run(prices_ingest_command(eng, file, ts))
    click.echo(f"prices: {result['ingested']} ingested, {result['unchanged']} unchanged")


@click.group()
def signals() -> None:
    """Conviction signals (conviction_score.json)."""


@signals.command("ingest")
@click.argument("file", type=click.Path(dir_okay=False))
@at_option
@click.pass_context
def signals_ingest(ctx: click.Context, file: str, at: str | None) -> None:
    """Ingest a conviction signal file (or a JSON list of them).

    \b
    Example:
        vanta signals ingest conviction_score.json --at 2026-11-03T00:00:00Z
    """
    from vanta_box.service.setup import signals_ingest_command

    ts = parse_at(at)
    with engine(ctx) as (eng, _home):
        result = eng.run(signals_ingest_command(eng, file, ts))
    click.echo(f"signal sets: {result['ingested']} ingested, {result['unchanged']} unchanged")


@click.group()
def overlay() -> None:
    """Runtime overlays with a time to live: flip, persona boost, maintenance."""


@overlay.command("set")
@click.argument("vault_id")
@click.option("--flip", is_flag=True, help="Negate every score.")
@click.option("--boost", metavar="PERSONA=K", help="Multiply that persona's scores by K.")
@click.option("--maintenance", is_flag=True, help="Stage and execute no orders.")
@click.option("--ttl", required=True, metavar="DURATION",
              help="How long it stays in force: 90s, 30m, 6h, 2d, 1w, 1h30m.")
@at_option
@click.pass_context
def overlay_set(ctx: click.Context, vault_id: str, flip: bool, boost: str | None,
                maintenance: bool, ttl: str, at: str | None) -> None:
    """Set an overlay on a vault; it reverts by itself when its TTL ends.

    \b
    Example:
        vanta overlay set V_CORE --flip --ttl 6h --at 2026-11-03T00:00:00Z
        vanta overlay set V_CORE --boost aggressive=1.5 --ttl 2d
    """
    from vanta_box.core.errors import InputError
    from vanta_box.core.timeutil import TimeError, check_ts, parse_duration
    from vanta_box.service.setup import overlay_set_command

    chosen = [name for name, on in (("flip", flip), ("boost", boost is not None),
                                    ("maintenance", maintenance)) if on]
    if len(chosen) != 1:
        raise click.UsageError("choose exactly one of --flip, --boost PERSONA=K, --maintenance")
    try:
        ttl_us = parse_duration(ttl)
    except TimeError as exc:
        raise InputError(str(exc), field="--ttl") from None
    persona, factor = "", None
    if boost is not None:
        persona, sep, k = boost.partition("=")
        if not sep or not persona:
            raise InputError(f"expected PERSONA=K with a number K, got {boost[:40]!r}",
                             field="--boost")
        factor = parse_decimal(k, "--boost")
    ts = parse_at(at)
    try:
        check_ts(ts + ttl_us, "the overlay's expiry (--at + --ttl)")
    except TimeError as exc:
        raise InputError(str(exc), field="--ttl") from None
    with engine(ctx) as (eng, home):
        eng.run(overlay_set_command(eng, vault_id, chosen[0], ttl_us, ts, persona, factor))
        write_state(eng, home, ts)
    click.echo(f"overlay {chosen[0]}{' ' + persona if persona else ''} set on {vault_id} "
               f"for {ttl}")


@overlay.command("clear")
@click.argument("vault_id")
@click.argument("kind", required=False, type=click.Choice(["flip", "boost", "maintenance"]))
@at_option
@click.pass_context
def overlay_clear(ctx: click.Context, vault_id: str, kind: str | None, at: str | None) -> None:
    """Clear a vault's overlays (all, or one kind) before they expire.

    \b
    Example:
        vanta overlay clear V_CORE flip
    """
    from vanta_box.service.setup import overlay_clear_command

    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        result = eng.run(overlay_clear_command(eng, vault_id, kind, ts))
        write_state(eng, home, ts)
    click.echo(f"cleared {len(result['cleared'])} overlay(s) on {vault_id}")


COMMANDS = [init, vault, instruments, prices, signals, overlay]
