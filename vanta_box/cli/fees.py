"""fees, statement."""

from __future__ import annotations

from typing import Any

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


@click.group()
def fees() -> None:
    """Capital-aligned fees: run a period, reverse an entry, record a payment."""


@fees.command("run")
@click.option("--period", required=True, metavar="YYYY-MM|YYYY-Qn",
              help="The calendar month, or quarter (UTC).")
@at_option
@click.pass_context
def fees_run(ctx: click.Context, period: str, at: str | None) -> None:
    """Bill every non-shadow follower active in a period that has ended.

    A month bills the followers billed monthly, a quarter (2027-Q1) those whose agreement
    says "period": "quarter". A billed period is billed once: running it again changes
    nothing (exit 1). A removed follower was billed at its removal (early exit).

    \b
    Example:
        vanta fees run --period 2026-11 --at 2026-12-01T00:00:00Z
        vanta fees run --period 2027-Q1 --at 2027-04-01T00:00:00Z
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
                   f"carry out {money(line['carry_out'])}{_legs(line)})")
    click.echo(f"{len(lines)} fee entr{'y' if len(lines) == 1 else 'ies'} for {period}")


def _legs(line: dict[str, str]) -> str:
    from vanta_box.cli.console import money

    out = ""
    if line.get("mgmt_fee") not in (None, "0.00"):
        out += f", management {money(line['mgmt_fee'])}"
    if line.get("basis") == "equity_hwm":
        out += f", profit {money(line['profit_end'])}, hwm {money(line['hwm_out'])}"
    return out


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


@fees.command("collect")
@click.option("--period", default=None, metavar="YYYY-MM", help="Only this period's entries.")
@click.option("--dry-run", is_flag=True, help="Say what would be invoiced; change nothing.")
@click.option("--sync", "do_sync", is_flag=True,
              help="Record the payments the processors received (no new invoices).")
@at_option
@click.pass_context
def fees_collect(ctx: click.Context, period: str | None, dry_run: bool, do_sync: bool,
                 at: str | None) -> None:
    """Invoice outstanding fees at the followers' processors, or record their payments.

    For each outstanding entry of a follower whose fee_agreement has `collect` (Stripe
    customer or BTCPay store), one invoice at the processor (never a second one: a retry
    finds it by the entry id); the invoices of entries reversed since are voided. With
    --sync, each processor is asked for the invoices not yet paid, and each payment is
    recorded once (`fees.paid`, the processor's reference); partial and over-payments are
    flagged as alerts. Processor keys come from the keystore (`vanta processor set`).
    Exit 3 when some processor call failed (the rest is committed; run it again).

    \b
    Example:
        vanta fees collect --period 2026-11 --dry-run
        vanta fees collect --period 2026-11
        vanta fees collect --sync
    """
    from vanta_box.cli.common import OUTPUT_FAILURES, progress
    from vanta_box.keystore import Keystore
    from vanta_box.service import collect as service

    if do_sync and (dry_run or period is not None):
        raise click.UsageError("--sync records payments of every open invoice: it takes "
                               "neither --period nor --dry-run")
    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        settings = {} if dry_run else Keystore(home.keystore_path).processors()
        if do_sync:
            outcome = service.sync(eng, settings, ts, progress)
        else:
            outcome = service.collect(eng, settings, ts, period, dry_run, progress)
        if not dry_run:
            write_state(eng, home, ts)
    for line in outcome.lines:
        click.echo(line)
    for failure in outcome.failures:
        OUTPUT_FAILURES.append(f"processor: {failure}")


def sync_payments(ctx: click.Context, home: Any, now: int) -> None:
    """`vanta run`: the payments of open invoices, after the jobs (never before them: a
    processor that does not answer delays no cycle)."""
    from vanta_box.cli.common import OUTPUT_FAILURES
    from vanta_box.core.errors import KeystoreError
    from vanta_box.keystore import Keystore
    from vanta_box.service import collect as service
    from vanta_box.store import repo

    keystore = Keystore(home.keystore_path)
    if not keystore.has_processors():
        return
    with engine(ctx) as (eng, target):
        if not any(i.state in service.OPEN for i in repo.fee_invoices(eng.conn)):
            return
        try:
            settings = keystore.processors()
        except KeystoreError as exc:
            OUTPUT_FAILURES.append(f"fee payments not synced: {exc}")
            return
        outcome = service.sync(eng, settings, now)
        write_state(eng, target, now)
    for line in outcome.lines:
        click.echo(f"  {line}")
    for failure in outcome.failures:
        OUTPUT_FAILURES.append(f"processor: {failure}")


@fees.command("whatif")
@click.argument("account_id", metavar="FOLLOWER")
@click.option("--from", "start", default=None, metavar="PERIOD",
              help="First month or quarter shown (default: the onboarding).")
@click.option("--to", "end", default=None, metavar="PERIOD",
              help="Last month or quarter shown (default: up to the journal's last event).")
@click.option("--perf-share", default=None, help="Performance share (default: the agreement's).")
@click.option("--flat-usd", default=None,
              help="Flat fee per month (default: the agreement's, a quarter's / 3).")
@click.option("--management", default=None,
              help="Annual management fee of the variants with one (default: the "
                   "agreement's, else 0.02).")
@click.option("--json", "as_json", is_flag=True, help="Print every variant as JSON.")
@click.pass_context
def fees_whatif(ctx: click.Context, account_id: str, start: str | None, end: str | None,
                perf_share: str | None, flat_usd: str | None, management: str | None,
                as_json: bool) -> None:
    """The follower's actual history billed under every agreement, side by side:
    realized vs equity high-water mark, performance-only, flat-only, hybrid, by month or
    by quarter, with and without a management fee. Read-only: nothing is billed.

    \b
    Example:
        vanta fees whatif F1042
        vanta fees whatif F1042 --from 2027-01 --to 2027-06 --management 0.02 --json
    """
    from vanta_box.cli.console import money
    from vanta_box.core.canonical import pretty
    from vanta_box.service.whatif import whatif

    share = parse_decimal(perf_share, "--perf-share") if perf_share is not None else None
    flat = parse_decimal(flat_usd, "--flat-usd") if flat_usd is not None else None
    mgmt = parse_decimal(management, "--management") if management is not None else None
    with engine(ctx, lock=False) as (eng, _home):
        doc = whatif(eng.conn, account_id, start, end, share, flat, mgmt)
    if as_json:
        click.echo(pretty(doc).rstrip())
        return
    click.echo(f"{doc['account_id']}: fees from {doc['from']} to {doc['to']} "
               f"({doc['note']})")
    width = max(len(v["name"]) for v in doc["variants"])
    for v in doc["variants"]:
        mark = "*" if v["actual"] else " "
        periods = " ".join(f"{p['period']}:{money(p['fee_due'])}" for p in v["periods"])
        click.echo(f"{mark} {v['name']:<{width}}  total {money(v['total']):>12}  "
                   f"perf {money(v['perf_total']):>10}  flat {money(v['flat_total']):>10}  "
                   f"mgmt {money(v['mgmt_total']):>9}  periods {periods or '-'}")
    click.echo("* the follower's own agreement")


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


@click.group()
def processor() -> None:
    """Payment processors that invoice fees (Stripe, BTCPay): keys kept encrypted in the
    keystore (needs VANTA_PASSPHRASE), never in vanta.db, logs or reports."""


@processor.command("set")
@click.argument("kind", type=click.Choice(["stripe", "btcpay"]))
@click.option("--api-key", required=True, envvar="VANTA_PROCESSOR_API_KEY",
              help="The processor's secret key (or VANTA_PROCESSOR_API_KEY, which keeps it "
                   "out of the shell's history).")
@click.option("--base-url", default=None, metavar="URL",
              help="stripe: another API address (a local test server).")
@click.option("--url", default=None, metavar="URL", help="btcpay: the server's address.")
@click.option("--store-id", default=None, help="btcpay: the store that invoices.")
@click.pass_context
def processor_set(ctx: click.Context, kind: str, api_key: str, base_url: str | None,
                  url: str | None, store_id: str | None) -> None:
    """Set (or replace) a payment processor.

    \b
    Example:
        VANTA_PROCESSOR_API_KEY=sk_live_... vanta processor set stripe
        vanta processor set btcpay --url https://pay.example.com --api-key KEY --store-id S
    """
    from vanta_box import home as homes
    from vanta_box.keystore import Keystore, fingerprint
    from vanta_box.service.collect import processor_settings

    settings = processor_settings(kind, api_key, base_url, url, store_id)
    target = homes.require(home_of(ctx))
    with homes.locked(target):
        keystore = Keystore(target.keystore_path)
        keystore.require_passphrase()
        keystore.set_processor(kind, settings)
    click.echo(f"{kind} set (key {fingerprint({'api_key': settings['api_key']})}, kept in "
               "the keystore)")


@processor.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
@click.pass_context
def processor_list(ctx: click.Context, as_json: bool) -> None:
    """The processors set, with their addresses and key fingerprints (never a key).

    \b
    Example:
        vanta processor list
    """
    from vanta_box import home as homes
    from vanta_box.core.canonical import pretty
    from vanta_box.keystore import Keystore
    from vanta_box.service.collect import summary

    target = homes.require(home_of(ctx))
    rows = summary(Keystore(target.keystore_path).processors())
    if as_json:
        click.echo(pretty(rows).rstrip())
        return
    if not rows:
        click.echo("no processor set: `vanta processor set stripe|btcpay ...`")
    for r in rows:
        click.echo(f"{r['processor']}\t{r['address']}"
                   + (f"\tstore {r['store_id']}" if r["store_id"] else "")
                   + f"\tkey {r['key']}")


@processor.command("remove")
@click.argument("kind", type=click.Choice(["stripe", "btcpay"]))
@click.pass_context
def processor_remove(ctx: click.Context, kind: str) -> None:
    """Forget a processor's key.

    \b
    Example:
        vanta processor remove btcpay
    """
    from vanta_box import home as homes
    from vanta_box.core.errors import Refused
    from vanta_box.keystore import Keystore

    target = homes.require(home_of(ctx))
    with homes.locked(target):
        keystore = Keystore(target.keystore_path)
        if kind not in keystore.processors():
            raise Refused(f"no {kind} processor is set")
        keystore.set_processor(kind, None)
    click.echo(f"{kind} removed")


COMMANDS = [fees, statement, processor]
