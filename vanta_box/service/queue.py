"""The queue of staged orders: show it, execute it."""

from __future__ import annotations

from typing import Any

from vanta_box.core.errors import Refused
from vanta_box.service import pending
from vanta_box.service.cycle import CycleReport, _finish
from vanta_box.service.engine import Command, Engine, handles
from vanta_box.service.execute import execute_orders
from vanta_box.service.setup import load_vault
from vanta_box.store import repo


def queue_execute_command(eng: Engine, vault_id: str | None, at: int) -> Command:
    if vault_id is not None:
        load_vault(eng, vault_id)
    if not pending.pending(eng.conn, vault_id=vault_id):
        raise Refused("the queue is empty: nothing to execute")
    return Command.make("queue.execute", at, {"vault_id": vault_id})


@handles("queue.execute")
def _queue_execute(eng: Engine, cmd: Command) -> dict[str, Any]:
    vault_id = cmd.payload["vault_id"]
    orders = pending.pending(eng.conn, vault_id=vault_id)
    if not orders:
        raise Refused("the queue is empty: nothing to execute")
    cycles = sorted({o.cycle_id for o in orders})
    for cid in cycles:
        c = repo.cycle(eng.conn, cid)
        if c is not None and c.at > cmd.ts:
            raise Refused(f"cycle {cid} is later than the execution time")
    result = execute_orders(eng, orders, cmd.ts)
    with eng.tx():
        for cid in cycles:
            c = repo.cycle(eng.conn, cid)
            assert c is not None
            _finish(eng, cid, cmd.ts, CycleReport(cid, c.vault_id, vault_status=c.vault_status))
    return {"orders": len(orders), "fills": result.fills, "rejects": result.rejects,
            "cycles": cycles}
