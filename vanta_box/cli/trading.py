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
@at_option
@click.pass_context
def cycle_run(ctx: click.Context, vault_id: str | None, stage_only: bool, at: str | None) -> None:
    """Run one cycle per vault at --at (marks, NAV guard, allocation, orders, fills).

    Running the same cycle again resumes it if it was interrupted, and refuses (exit 1) if
    it already finished.

    \b
    Example:
        vanta cycle run --vault V_CORE --at 2026-11-03T00:00:00Z
        vanta cycle run --stage-only --at 2026-11-04T00:00:00Z && vanta queue show
    """
    from vanta_box.core.money import fmt
    from vanta_box.service.cycle import cycle_command

    ts = parse_at(at)
    with engine(ctx) as (eng, home):
        reports = eng.run(cycle_command(eng, vault_id, ts, stage_only))
        write_state(eng, home, ts)
    for r in reports:
        nav = f" nav {fmt(r.nav)}" if r.nav is not None else ""
        resumed = " (resumed)" if r.resumed else ""
        click.echo(f"{r.cycle_id}: {r.status}{resumed}, vault {r.vault_status}{nav}; "
                   f"{r.orders} orders, {r.child_orders} child orders, {r.fills} fills, "
                   f"{r.rejects} rejects, {r.skips} skips")
        for note in r.notes:
            warning = note.startswith("warning:")
            click.echo(note if warning else f"note: {note}", err=warning)


@click.group()
def queue() -> None:
    """Staged orders not yet executed (autotrade_queue.json)."""


@queue.command("show")
@click.option("--vault", "vault_id", default=None, help="Only this vault's orders.")
@click.pass_context
def queue_show(ctx: click.Context, vault_id: str | None) -> None:
    """List staged orders.

    \b
    Example:
        vanta queue show --vault V_CORE
    """
    from vanta_box.core.money import fmt
    from vanta_box.service import pending

    with engine(ctx, lock=False) as (eng, _home):
        orders = pending.pending(eng.conn, vault_id=vault_id)
    if not orders:
        click.echo("queue is empty")
    for o in orders:
        click.echo(f"{o.order_id}\t{o.side}\t{fmt(o.qty)}\t{o.client_order_id}\t{o.status}")
    if orders:
        click.echo(f"{len(orders)} staged order(s)")


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


COMMANDS = [cycle, queue, paper]
