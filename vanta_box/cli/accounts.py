"""onboard, follower."""

from __future__ import annotations

from typing import Any

import click

from vanta_box.cli.common import (
    at_option,
    echo_warnings,
    engine,
    parse_at,
    progress,
    write_state,
)


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

        if len(packets) >= 20:
            progress(f"onboarding {len(packets):,} packets")
        commands = onboard_many(eng, list(packets), ts, SystemClock().now(), keystore,
                                warn=lambda message: echo_warnings([message]),
                                check=None if offline else check_keys)
        write_state(eng, home, max(c.ts for c in commands))
    for command in commands:
        p = command.payload
        click.echo(f"onboarded {p['account_id']} ({p['role']}, {p['mode']}) on "
                   f"{p['vault_id']}, broker {p['broker']['kind']}")
        echo_warnings(predictable(p))


def predictable(p: dict[str, Any]) -> list[str]:
    """Outcomes an onboarding makes certain, said before the first cycle shows them."""
    from vanta_box.cli.console import pct
    from vanta_box.core.money import D, fmt

    out = []
    m = p.get("mirroring") or {}
    who = p["account_id"]
    multiplier = D(str(m.get("multiplier") or "1"))
    if p["role"] == "follower" and p["mode"] != "shadow" and multiplier > 1:
        out.append(f"{who}: multiplier {fmt(multiplier)} on a cash account: its targets need "
                   f"{pct(multiplier)} of its equity, so its buys will be cut to its cash or "
                   "rejected (insufficient_cash) every cycle")
    caps = ("cap_usd", "max_order_notional", "max_position_pct")
    if p["mode"] == "capped" and all(m.get(k) is None for k in caps):
        out.append(f"{who}: mode capped with no cap at all (none of {', '.join(caps)}): it "
                   "is mirrored like proportional")
    return out


@click.group()
def follower() -> None:
    """Followers: list, pause, resume, remove."""


@follower.command("list")
@click.option("--vault", "vault_id", default=None, help="Only this vault's followers.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the followers as JSON (exact values, never a secret).")
@click.pass_context
def follower_list(ctx: click.Context, vault_id: str | None, as_json: bool) -> None:
    """List followers with mode, multiplier and caps, status, broker (never a secret) and
    fee agreement.

    \b
    Example:
        vanta follower list --vault V_CORE
    """
    from vanta_box.cli.console import money, pct
    from vanta_box.core.canonical import pretty
    from vanta_box.core.money import D, fmt
    from vanta_box.core.timeutil import fmt_ts
    from vanta_box.store import repo

    with engine(ctx, lock=False) as (eng, _home):
        rows = [a for a in repo.accounts(eng.conn, vault_id) if a.role == "follower"]
    if as_json:
        click.echo(pretty({"followers": [
            {"account_id": a.account_id, "vault_id": a.vault_id, "mode": a.mode,
             "status": a.status, "broker": a.broker_kind, "key_fingerprint": a.key_fingerprint,
             "mirroring": a.mirroring, "fee_agreement": a.fee_agreement,
             "persona_prefs": None if a.persona_prefs is None else list(a.persona_prefs),
             "onboarded_at": fmt_ts(a.onboarded_at),
             "removed_at": None if a.removed_at is None else fmt_ts(a.removed_at)}
            for a in rows]}).rstrip())
        return
    if not rows:
        click.echo("no followers")
    for a in rows:
        key = f" key {a.key_fingerprint}" if a.key_fingerprint else ""
        m = a.mirroring
        sizing = f"multiplier {fmt(D(m.get('multiplier') or '1'))}"
        for name, label, shown in (("cap_usd", "cap", money), ("max_order_notional",
                                                               "max order", money),
                                   ("max_position_pct", "max position", pct)):
            if m.get(name) is not None:
                sizing += f", {label} {shown(m[name])}"
        fee = a.fee_agreement or {}
        terms = fee.get("type", "-")
        if fee.get("perf_share") not in (None, "0"):
            terms += f" {pct(fee['perf_share'])}"
        if fee.get("flat_usd") not in (None, "0"):
            terms += f" flat {money(fee['flat_usd'])}"
        click.echo(f"{a.account_id}\t{a.vault_id}\t{a.mode}\t{a.status}\t{a.broker_kind}{key}"
                   f"\tonboarded {fmt_ts(a.onboarded_at)}\t{sizing}\tfee {terms}")


def _transition(action: str) -> click.Command:
    @click.command(action)
    @click.argument("account_id")
    @at_option
    @click.pass_context
    def run(ctx: click.Context, account_id: str, at: str | None) -> None:
        from vanta_box.cli.console import money
        from vanta_box.service.accounts import follower_command

        ts = parse_at(at)
        with engine(ctx) as (eng, home):
            result = eng.run(follower_command(eng, action, account_id, ts))
            write_state(eng, home, ts)
        click.echo(f"{account_id}: {action}d" if action.endswith("e") else
                   f"{account_id}: {action}ed")
        for line in result.get("billed") or []:  # SPEC §9 early exit
            click.echo(f"billed at its removal: {line['entry_id']}\tfee due "
                       f"{money(line['fee_due'])}")

    helps = {
        "pause": "Pause a follower: cycles skip it (journaled) until it is resumed.",
        "resume": "Resume a paused follower.",
        "remove": "Remove a follower: history is kept, mirroring stops for good. It is billed "
                  "at once for its last, partial fee period (early exit, SPEC §9).",
    }
    run.help = f"{helps[action]}\n\n\b\nExample:\n    vanta follower {action} F1042"
    return run


for _action in ("pause", "resume", "remove"):
    follower.add_command(_transition(_action))

COMMANDS = [onboard, follower]
