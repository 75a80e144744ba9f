"""flow."""

from __future__ import annotations

import click

from vanta_box.cli.common import at_option, engine, parse_at, parse_decimal, write_state


@click.group()
def flow() -> None:
    """Capital flows: deposits and withdrawals (never PnL)."""


@flow.command("record")
@click.argument("account_id", metavar="ACCOUNT")
@click.option("--deposit", default=None, metavar="X", help="Cash paid in.")
@click.option("--withdrawal", default=None, metavar="X", help="Cash paid out.")
@click.option("--ref", default=None, help="A reference kept with the flow (transfer id).")
@at_option
@click.pass_context
def flow_record(ctx: click.Context, account_id: str, deposit: str | None,
                withdrawal: str | None, ref: str | None, at: str | None) -> None:
    """Record a deposit or a withdrawal of a paper (or shadow) account: its cash changes,
    its net contributions too, its PnL does not.

    A live account's flows come from reconciliation with its venue (exit 2 here). A
    withdrawal that would make cash negative is refused (exit 1), as is a flow dated before
    the last cycle of the account's vault or inside a period already billed to it.

    \b
    Example:
        vanta flow record F1042 --deposit 25000 --ref "wire 88" --at 2026-11-15T12:00:00Z
        vanta flow record F1042 --withdrawal 5000 --at 2026-11-20T12:00:00Z
    """
    from vanta_box.cli.console import money
    from vanta_box.service.flows import flow_record_command

    dep = parse_decimal(deposit, "--deposit") if deposit is not None else None
    wd = parse_decimal(withdrawal, "--withdrawal") if withdrawal is not None else None
    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        result = eng.run(flow_record_command(eng, account_id, dep, wd, ref, ts))
        write_state(eng, home, ts)
    kind = "deposit" if result["amount"] > 0 else "withdrawal"
    click.echo(f"{account_id}: {kind} {money(abs(result['amount']))}, cash now "
               f"{money(result['cash'])}")


COMMANDS = [flow]
