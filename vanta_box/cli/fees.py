"""fees, statement."""

from __future__ import annotations

import click

from vanta_box.cli.common import at_option, engine, parse_at, parse_decimal, write_state


@click.group()
def fees() -> None:
    """Capital-aligned fees: run a period, reverse an entry, record a payment."""


@fees.command("run")
@click.option("--period", required=True, metavar="YYYY-MM", help="The calendar month (UTC).")
@at_option
@click.pass_context
def fees_run(ctx: click.Context, period: str, at: str | None) -> None:
    """Bill every non-shadow follower active in a period that has ended.

    A billed period is billed once: running it again changes nothing (exit 1).

    \b
    Example:
        vanta fees run --period 2026-11 --at 2026-12-01T00:00:00Z
    """
    from vanta_box.service.fees import fees_run_command

    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        lines = eng.run(fees_run_command(eng, period, ts))
        write_state(eng, home, ts)
    for line in lines:
        click.echo(f"{line['entry_id']}\t{line['fee_type']}\tfee due {line['fee_due']}\t"
                   f"(perf {line['perf_fee']}, flat {line['flat_fee']}, carry out "
                   f"{line['carry_out']})")
    click.echo(f"{len(lines)} fee entr{'y' if len(lines) == 1 else 'ies'} for {period}")


@fees.command("reverse")
@click.argument("entry_id")
@click.option("--reason", required=True, help="Why (kept in the ledger).")
@at_option
@click.pass_context
def fees_reverse(ctx: click.Context, entry_id: str, reason: str, at: str | None) -> None:
    """Append an entry reversing a fee entry (nothing is ever edited).

    The follower-period can then be billed again with `vanta fees run`.

    \b
    Example:
        vanta fees reverse F1042/2026-11/1 --reason "fill corrected" --at 2026-12-03T00:00:00Z
    """
    from vanta_box.service.fees import fees_reverse_command

    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        line = eng.run(fees_reverse_command(eng, entry_id, reason, ts))
        write_state(eng, home, ts)
    click.echo(f"{line['entry_id']}: {line['fee_due']} (reverses {entry_id})")


@fees.command("paid")
@click.argument("entry_id")
@click.option("--ref", required=True, help="Payment reference (invoice, transfer id).")
@click.option("--amount", default=None, help="Amount paid (default: all that is outstanding).")
@at_option
@click.pass_context
def fees_paid(ctx: click.Context, entry_id: str, ref: str, amount: str | None,
              at: str | None) -> None:
    """Record a payment against a fee entry.

    \b
    Example:
        vanta fees paid F1042/2026-11/1 --ref "wire 7731" --at 2026-12-05T00:00:00Z
    """
    from vanta_box.core.money import fmt_cents
    from vanta_box.service.fees import fees_paid_command

    value = parse_decimal(amount, "--amount") if amount is not None else None
    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        result = eng.run(fees_paid_command(eng, entry_id, ref, value, ts))
        write_state(eng, home, ts)
    click.echo(f"{entry_id}: paid {fmt_cents(result['amount'])}, outstanding "
               f"{fmt_cents(result['outstanding'])}")


@fees.command("list")
@click.option("--period", default=None, metavar="YYYY-MM")
@click.option("--account", "account_id", default=None)
@click.pass_context
def fees_list(ctx: click.Context, period: str | None, account_id: str | None) -> None:
    """List fee entries with what is paid and outstanding.

    \b
    Example:
        vanta fees list --period 2026-11
    """
    from vanta_box.core.money import fmt_cents
    from vanta_box.service.fees import paid_total, period_bounds
    from vanta_box.store import repo

    if period is not None:
        period_bounds(period)  # a malformed period is an error, not an empty list
    with engine(ctx, lock=False) as (eng, _home):
        entries = repo.fee_entries(eng.conn, account_id, period)
        for e in entries:
            paid = paid_total(eng.conn, e.entry_id)
            click.echo(f"{e.entry_id}\t{e.kind}\t{e.period}\tdue {fmt_cents(e.fee_due)}\t"
                       f"paid {fmt_cents(paid)}")
    if not entries:
        click.echo("no fee entries")


@click.command()
@click.argument("account_id")
@click.option("--period", required=True, metavar="YYYY-MM")
@click.option("--json", "as_json", is_flag=True, help="Print the statement as JSON.")
@click.pass_context
def statement(ctx: click.Context, account_id: str, period: str, as_json: bool) -> None:
    """A follower's statement: opening and closing equity, realized and unrealized PnL,
    commissions, the fee with its derivation, payments, and every fill of the period.

    \b
    Example:
        vanta statement F1042 --period 2026-11
        vanta statement F1042 --period 2026-11 --json > F1042-2026-11.json
    """
    from vanta_box.core.canonical import pretty
    from vanta_box.service.statement import build, render_text

    with engine(ctx, lock=False) as (eng, _home):
        doc = build(eng.conn, account_id, period)
    click.echo(pretty(doc).rstrip() if as_json else render_text(doc))


COMMANDS = [fees, statement]
