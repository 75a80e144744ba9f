"""cycle, queue."""

from __future__ import annotations

import click

from vanta_box.cli.common import at_option, engine, parse_at, parse_decimal, write_state


@click.group()
def cycle() -> None:
    """Run allocation -> rebalance -> orders -> mirroring -> execution."""


@cycle.command("run")
@click.option("--vault", "vault_id", default=None, help="Only this vault (default: every vault).")
@click.option("--stage-only", is_flag=True,
              help="Stage the orders in the queue without executing them.")
@click.option("--settle-timeout", "settle_timeout", type=click.IntRange(0, 3600),
              default=None, metavar="SECONDS",
              help="How long to wait for live venues' orders to end (default 60); orders "
                   "still working stay open for `vanta orders sync` and the next cycle.")
@at_option
@click.pass_context
def cycle_run(ctx: click.Context, vault_id: str | None, stage_only: bool,
              settle_timeout: int | None, at: str | None) -> None:
    """Run one cycle per vault at --at (marks, NAV guard, allocation, orders, fills).

    Live accounts (Alpaca) are reconciled with their venue first (orders, executions, cash,
    positions); their orders are sent one by one, each committed before it is sent.
    Running the same cycle again resumes it if it was interrupted, and refuses (exit 1) if
    it already finished.

    \b
    Example:
        vanta cycle run --vault V_CORE --at 2026-11-03T00:00:00Z
        vanta cycle run --stage-only --at 2026-11-04T00:00:00Z && vanta queue show
    """
    from vanta_box.cli.console import money
    from vanta_box.service.cycle import cycle_command
    from vanta_box.service.schedule import cycle_summary

    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        reports = eng.run(cycle_command(eng, vault_id, ts, stage_only, settle_timeout))
        write_state(eng, home, ts)
    for r in reports:
        click.echo(cycle_summary(r, money))
        for note in r.notes:
            warning = note.startswith("warning:")
            click.echo(note if warning else f"note: {note}", err=warning)


@click.group()
def queue() -> None:
    """Staged orders not yet executed (autotrade_queue.json)."""


@queue.command("show")
@click.option("--vault", "vault_id", default=None, help="Only this vault's orders.")
@click.option("--json", "as_json", is_flag=True, help="Print the orders as JSON (exact values).")
@click.pass_context
def queue_show(ctx: click.Context, vault_id: str | None, as_json: bool) -> None:
    """List staged orders.

    \b
    Example:
        vanta queue show --vault V_CORE
    """
    from vanta_box.cli.console import qty
    from vanta_box.core.canonical import pretty
    from vanta_box.core.money import fmt
    from vanta_box.service import pending
    from vanta_box.store import repo

    with engine(ctx, lock=False) as (eng, _home):
        orders = pending.pending(eng.conn, vault_id=vault_id)
        steps = {s: i.lot_step for s, i in repo.instruments(eng.conn).items()}
    if as_json:
        click.echo(pretty({"orders": [
            {"order_id": o.order_id, "client_order_id": o.client_order_id,
             "account_id": o.account_id, "parent_id": o.parent_id, "symbol": o.symbol,
             "side": o.side, "qty": fmt(o.qty), "status": o.status} for o in orders]}).rstrip())
        return
    if not orders:
        click.echo("queue is empty")
    for o in orders:
        click.echo(f"{o.order_id}\t{o.side}\t{qty(o.qty, steps.get(o.symbol))}\t"
                   f"{o.client_order_id}\t{o.status}")
    if orders:
        click.echo(f"{len(orders):,} staged order(s)")


@queue.command("execute")
@click.option("--vault", "vault_id", default=None, help="Only this vault's orders.")
@at_option
@click.pass_context
def queue_execute(ctx: click.Context, vault_id: str | None, at: str | None) -> None:
    """Execute every staged order at the marks of --at.

    \b
    Example:
        vanta queue execute --at 2026-11-04T00:05:00Z
    """
    from vanta_box.service.queue import queue_execute_command

    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        result = eng.run(queue_execute_command(eng, vault_id, ts))
        write_state(eng, home, ts)
    click.echo(f"executed {result['orders']} order(s): {result['fills']} fills, "
               f"{result['rejects']} rejects")
    if result["held"]:
        click.echo(f"{result['held']} order(s) of {', '.join(result['maintenance'])} stay "
                   "queued: maintenance in force")


@click.group()
def paper() -> None:
    """The embedded paper venue."""


@paper.command("trade")
@click.argument("account_id")
@click.argument("symbol")
@click.argument("qty")
@click.option("--side", type=click.Choice(["buy", "sell"]), required=True)
@click.option("--price", default=None, help="Fill price (default: the mark at --at).")
@at_option
@click.pass_context
def paper_trade(ctx: click.Context, account_id: str, symbol: str, qty: str, side: str,
                price: str | None, at: str | None) -> None:
    """Book a trade made by hand at a paper account (outside vanta-box).

    The next cycle sees the drift and trades the account back to its targets.

    \b
    Example:
        vanta paper trade F1042 AAPL 10 --side sell --at 2026-11-03T15:00:00Z
    """
    from vanta_box.service.paper import paper_trade_command

    amount = parse_decimal(qty, "QTY")
    limit = parse_decimal(price, "--price") if price is not None else None
    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        eng.run(paper_trade_command(eng, account_id, symbol, side, amount, limit, ts))
        write_state(eng, home, ts)
    click.echo(f"{account_id}: {side} {qty} {symbol} booked")


@click.group()
def orders() -> None:
    """Orders at live venues."""


@orders.command("sync")
@at_option
@click.pass_context
def orders_sync(ctx: click.Context, at: str | None) -> None:
    """Ask the live venues about every order still working there (status, executions) and
    record their answers.

    \b
    Example:
        vanta orders sync
    """
    from vanta_box.service.sync import sync_command

    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        result = eng.run(sync_command(eng, ts))
        write_state(eng, home, ts)
    click.echo(f"orders sync: {result['accounts']} live account(s), {result['working']} "
               "order(s) still working")


@click.command()
@click.option("--account", "account_id", default=None, help="Only this account.")
@at_option
@click.pass_context
def reconcile(ctx: click.Context, account_id: str | None, at: str | None) -> None:
    """Compare every live account with its venue: open orders and executions, then cash
    and positions. A position that differs is a discrepancy (the venue's quantity is
    adopted at the mark); cash that differs then is a capital flow (never PnL).

    \b
    Example:
        vanta reconcile --account F1042
    """
    from vanta_box.service.sync import reconcile_command

    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        result = eng.run(reconcile_command(eng, account_id, ts))
        write_state(eng, home, ts)
    blocked = result["blocked"]
    click.echo(f"reconciled {result['accounts']} live account(s)"
               + (f"; skipped {', '.join(f'{a} ({why})' for a, why in blocked.items())}"
                  if blocked else ""))


COMMANDS = [cycle, queue, paper, orders, reconcile]
