"""fees, statement."""

from __future__ import annotations

import click

from vanta_box.cli.common import (
    at_option,
    echo_warnings,
    engine,
    parse_at,
    parse_decimal,
    write_state,
)


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
    from vanta_box.cli.console import money
    from vanta_box.service.fees import fees_run_command

    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        lines = eng.run(fees_run_command(eng, period, ts))
        write_state(eng, home, ts)
    for line in lines:
        click.echo(f"{line['entry_id']}\t{line['fee_type']}\tfee due {money(line['fee_due'])}"
                   f"\t(perf {money(line['perf_fee'])}, flat {money(line['flat_fee'])}, "
                   f"carry out {money(line['carry_out'])})")
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
    from vanta_box.cli.console import money
    from vanta_box.service.fees import fees_reverse_command

    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        line = eng.run(fees_reverse_command(eng, entry_id, reason, ts))
        write_state(eng, home, ts)
    click.echo(f"{line['entry_id']}: {money(line['fee_due'])} (reverses {entry_id})")


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
    from vanta_box.cli.console import money
    from vanta_box.service.fees import fees_paid_command

    value = parse_decimal(amount, "--amount") if amount is not None else None
    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        result = eng.run(fees_paid_command(eng, entry_id, ref, value, ts))
        write_state(eng, home, ts)
    click.echo(f"{entry_id}: paid {money(result['amount'])}, outstanding "
               f"{money(result['outstanding'])}")


@fees.command("list")
@click.option("--period", default=None, metavar="YYYY-MM")
@click.option("--account", "account_id", default=None)
@click.option("--outstanding", "only_outstanding", is_flag=True,
              help="Only the follower-periods with something still to pay.")
@click.option("--json", "as_json", is_flag=True, help="Print the ledger as JSON (exact values).")
@click.pass_context
def fees_list(ctx: click.Context, period: str | None, account_id: str | None,
              only_outstanding: bool, as_json: bool) -> None:
    """List fee entries with what is paid and what is outstanding.

    What is outstanding is counted per follower and period, across reversals and rebills
    (a fee paid before a correction is not owed again): it is shown on the period's last
    entry, and totalled at the end.

    \b
    Example:
        vanta fees list --period 2026-11
        vanta fees list --outstanding --json
    """
    from vanta_box.cli.console import money
    from vanta_box.core.canonical import pretty
    from vanta_box.core.money import ZERO, fmt_cents
    from vanta_box.core.timeutil import fmt_ts
    from vanta_box.service.fees import outstanding, paid_total, period_bounds
    from vanta_box.store import repo

    if period is not None:
        period_bounds(period)  # a malformed period is an error, not an empty list
    with engine(ctx, lock=False) as (eng, _home):
        entries = repo.fee_entries(eng.conn, account_id, period)
        paid = {e.entry_id: paid_total(eng.conn, e.entry_id) for e in entries}
        owed = {(e.account_id, e.period): outstanding(eng.conn, e.account_id, e.period)
                for e in entries}
    if only_outstanding:
        entries = [e for e in entries if owed[(e.account_id, e.period)] > 0]
    last_of = {(e.account_id, e.period): e.entry_id for e in entries}
    due_total = sum((e.fee_due for e in entries), ZERO)
    paid_sum = sum((paid[e.entry_id] for e in entries), ZERO)
    owed_sum = sum((owed[k] for k in last_of), ZERO)
    if as_json:
        click.echo(pretty({
            "entries": [{"entry_id": e.entry_id, "kind": e.kind, "account_id": e.account_id,
                         "vault_id": e.vault_id, "period": e.period,
                         "fee_due": fmt_cents(e.fee_due), "paid": fmt_cents(paid[e.entry_id]),
                         "reverses": e.reverses, "reason": e.reason, "at": fmt_ts(e.at)}
                        for e in entries],
            "outstanding": [{"account_id": a, "period": p, "outstanding": fmt_cents(owed[(a, p)])}
                            for a, p in last_of],
            "total": {"due": fmt_cents(due_total), "paid": fmt_cents(paid_sum),
                      "outstanding": fmt_cents(owed_sum)}}).rstrip())
        return
    if not entries:
        click.echo("nothing outstanding" if only_outstanding else "no fee entries")
        return
    for e in entries:
        key = (e.account_id, e.period)
        left = f"\toutstanding {money(owed[key])}" if last_of[key] == e.entry_id else ""
        click.echo(f"{e.entry_id}\t{e.kind}\t{e.period}\tdue {money(e.fee_due)}\t"
                   f"paid {money(paid[e.entry_id])}{left}")
    click.echo(f"{len(entries):,} entr{'y' if len(entries) == 1 else 'ies'}: due "
               f"{money(due_total)}, paid {money(paid_sum)}, outstanding {money(owed_sum)}")


@click.command()
@click.argument("account_id")
@click.option("--period", required=True, metavar="YYYY-MM")
@click.option("--json", "as_json", is_flag=True,
              help="Print the statement as JSON, with the journal's signed tree head and an "
                   "inclusion proof of every row it cites (`vanta proof verify` checks it).")
@click.pass_context
def statement(ctx: click.Context, account_id: str, period: str, as_json: bool) -> None:
    """A follower's statement: opening and closing equity, realized and unrealized PnL,
    commissions, the fee with its derivation, payments, and every fill of the period.

    With --json it also carries `head` (the journal's tree head, signed with the home's
    key) and `proofs`: each cited journal row (fills, fee entries, payments, the digest's
    row) with its RFC 6962 audit path, so the follower can check it with no database.

    \b
    Example:
        vanta statement F1042 --period 2026-11
        vanta statement F1042 --period 2026-11 --json > F1042-2026-11.json
    """
    from vanta_box.cli.console import statement_text
    from vanta_box.core.canonical import pretty
    from vanta_box.service import proofs
    from vanta_box.service.statement import build
    from vanta_box.store import repo

    with engine(ctx, lock=False) as (eng, home):
        if as_json:
            proofs.ensure_key(home.root)
            proofs.tree(eng.conn)  # extended first: the read below then writes nothing
        eng.conn.execute("BEGIN")  # one snapshot: the rows proved are the rows shown
        try:
            doc = build(eng.conn, account_id, period)
            if as_json:
                doc = proofs.attach(home.root, eng.conn, doc)
            steps = {s: i.lot_step for s, i in repo.instruments(eng.conn).items()}
        finally:
            eng.conn.execute("COMMIT")
    echo_warnings(doc["warnings"])
    click.echo(pretty(doc).rstrip() if as_json else statement_text(doc, steps))


COMMANDS = [fees, statement]
