"""onboard, follower."""

from __future__ import annotations

import click

from vanta_box.cli.common import at_option, echo_warnings, engine, parse_at, write_state


@click.command()
@click.argument("packets", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--offline", is_flag=True,
              help="Do not read live accounts at their venue to check the keys.")
@at_option
@click.pass_context
def onboard(ctx: click.Context, packets: tuple[str, ...], offline: bool,
            at: str | None) -> None:
    """Onboard accounts from their API packets (manager or follower).

    Several packets are onboarded together: if any is invalid, none is. Broker secrets go
    to the encrypted keystore (needs VANTA_PASSPHRASE); the database keeps only a key
    reference and a fingerprint. The onboarding time is --at, else the packet's
    accepted_at, else now. A live account (Alpaca) is read once at its venue to check its
    keys, unless --offline.

    \b
    Example:
        VANTA_PASSPHRASE=... vanta onboard packet_F1042.json --at 2026-11-01T00:00:00Z
        vanta onboard packets/*.json --at 2026-11-01T00:00:00Z
    """
    from vanta_box.core.clock import SystemClock
    from vanta_box.keystore import Keystore
    from vanta_box.service.accounts import onboard_many

    ts = parse_at(at) if at is not None else None
    with engine(ctx) as (eng, home):
        keystore = Keystore(home.keystore_path)
        from vanta_box.service.venues import check_keys

        commands = onboard_many(eng, list(packets), ts, SystemClock().now(), keystore,
                                warn=lambda message: echo_warnings([message]),
                                check=None if offline else check_keys)
        write_state(eng, home, max(c.ts for c in commands))
    for command in commands:
        p = command.payload
        click.echo(f"onboarded {p['account_id']} ({p['role']}, {p['mode']}) on "
                   f"{p['vault_id']}, broker {p['broker']['kind']}")


@click.group()
def follower() -> None:
    """Followers: list, pause, resume, remove."""


@follower.command("list")
@click.option("--vault", "vault_id", default=None, help="Only this vault's followers.")
@click.pass_context
def follower_list(ctx: click.Context, vault_id: str | None) -> None:
    """List followers with mode, status and broker (never a secret).

    \b
    Example:
        vanta follower list --vault V_CORE
    """
    from vanta_box.core.timeutil import fmt_ts
    from vanta_box.store import repo

    with engine(ctx, lock=False) as (eng, _home):
        rows = [a for a in repo.accounts(eng.conn, vault_id) if a.role == "follower"]
    if not rows:
        click.echo("no followers")
    for a in rows:
        key = f" key {a.key_fingerprint}" if a.key_fingerprint else ""
        click.echo(f"{a.account_id}\t{a.vault_id}\t{a.mode}\t{a.status}\t{a.broker_kind}{key}"
                   f"\tonboarded {fmt_ts(a.onboarded_at)}")


def _transition(action: str) -> click.Command:
    @click.command(action)
    @click.argument("account_id")
    @at_option
    @click.pass_context
    def run(ctx: click.Context, account_id: str, at: str | None) -> None:
        from vanta_box.service.accounts import follower_command

        ts = parse_at(at)
        with engine(ctx) as (eng, home):
            eng.run(follower_command(eng, action, account_id, ts))
            write_state(eng, home, ts)
        click.echo(f"{account_id}: {action}d" if action.endswith("e") else
                   f"{account_id}: {action}ed")

    helps = {
        "pause": "Pause a follower: cycles skip it (journaled) until it is resumed.",
        "resume": "Resume a paused follower.",
        "remove": "Remove a follower: history is kept, mirroring stops for good.",
    }
    run.help = f"{helps[action]}\n\n\b\nExample:\n    vanta follower {action} F1042"
    return run


for _action in ("pause", "resume", "remove"):
    follower.add_command(_transition(_action))

COMMANDS = [onboard, follower]
