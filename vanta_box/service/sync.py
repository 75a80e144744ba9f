"""`vanta orders sync` and `vanta reconcile`: the live venues asked outside a cycle."""

from __future__ import annotations

from typing import Any

from vanta_box.core.errors import InputError, Refused
from vanta_box.service import live
from vanta_box.service.engine import Command, Engine, handles
from vanta_box.service.venues import is_live
from vanta_box.store import repo


def _live(eng: Engine, account_id: str | None) -> list[repo.AccountRow]:
    if account_id is not None:
        acct = repo.account(eng.conn, account_id)
        if acct is None:
            raise InputError(f"unknown account {account_id!r}", field="--account")
        if not is_live(acct):
            raise InputError(f"{account_id} trades at {acct.broker_kind}"
                             f"{' (shadow)' if acct.mode == 'shadow' else ''}: only live "
                             "venues are reconciled", field="--account")
        return [acct]
    return [a for a in repo.accounts(eng.conn) if is_live(a) and a.status != "removed"]


def sync_command(eng: Engine, at: int) -> Command:
    if not any(repo.working_orders(eng.conn, a.account_id) for a in _live(eng, None)):
        raise Refused("no order is working at a live venue: nothing to sync")
    return Command.make("orders.sync", at, {})


@handles("orders.sync")
def _orders_sync(eng: Engine, cmd: Command) -> dict[str, Any]:
    accounts = _live(eng, None)
    left = live.sync_accounts(eng, accounts, cmd.ts, None)
    return {"accounts": len(accounts), "working": left}


def reconcile_command(eng: Engine, account_id: str | None, at: int) -> Command:
    if not _live(eng, account_id):
        raise Refused("no account trades at a live venue: nothing to reconcile")
    return Command.make("reconcile", at, {"account_id": account_id})


@handles("reconcile")
def _reconcile(eng: Engine, cmd: Command) -> dict[str, Any]:
    accounts = _live(eng, cmd.payload["account_id"])
    blocked = live.reconcile_accounts(eng, accounts, cmd.ts, None)
    return {"accounts": len(accounts), "blocked": blocked}
