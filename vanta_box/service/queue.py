"""The queue of staged orders: show it, execute it."""

from __future__ import annotations

from typing import Any

from vanta_box.core.errors import Refused
from vanta_box.core.timeutil import fmt_ts
from vanta_box.service import pending
from vanta_box.service.cycle import CycleReport, _finish
from vanta_box.service.engine import Command, Engine, handles
from vanta_box.service.execute import execute_orders
from vanta_box.service.setup import load_vault
from vanta_box.store import repo


def queue_execute_command(eng: Engine, vault_id: str | None, at: int) -> Command:
    if vault_id is not None:
        load_vault(eng, vault_id)
    if not repo.staged_cycles(eng.conn, vault_id):
        raise Refused("the queue is empty: nothing to execute")
    return Command.make("queue.execute", at, {"vault_id": vault_id})


def _maintenance(eng: Engine, vault_ids: set[str], at: int) -> dict[str, int]:
    """Vaults under a maintenance overlay at ``at``, with the overlay's expiry."""
    out = {}
    for vault_id in sorted(vault_ids):
        for o in repo.overlays(eng.conn, vault_id):
            if o.kind == "maintenance" and o.in_force(at):
                out[vault_id] = o.expires_at
    return out


@handles("queue.execute")
def _queue_execute(eng: Engine, cmd: Command) -> dict[str, Any]:
    vault_id = cmd.payload["vault_id"]
    staged = repo.staged_cycles(eng.conn, vault_id)
    if not staged:
        raise Refused("the queue is empty: nothing to execute")
    orders = pending.pending(eng.conn, vault_id=vault_id)
    # A staged cycle with nothing left to execute was interrupted after its last order
    # settled (before its `cycle.done`): executing the queue finishes it.
    cycles = {}
    for cid in staged:
        c = repo.cycle(eng.conn, cid)
        assert c is not None
        cycles[cid] = c
    # A vault in maintenance executes nothing (SPEC §4): its orders stay in the queue.
    frozen = _maintenance(eng, {c.vault_id for c in cycles.values()}, cmd.ts)
    held = [o for o in orders if cycles[o.cycle_id].vault_id in frozen]
    orders = [o for o in orders if cycles[o.cycle_id].vault_id not in frozen]
    run = sorted(cid for cid, c in cycles.items() if c.vault_id not in frozen)
    if not run:
        until = ", ".join(f"{v} until {fmt_ts(t)}" for v, t in frozen.items())
        raise Refused(f"maintenance in force ({until}): nothing executed, "
                      f"{len(held)} order(s) stay queued")
    for cid in run:
        if cycles[cid].at > cmd.ts:
            raise Refused(f"cycle {cid} is later than the execution time")
    result = execute_orders(eng, orders, cmd.ts)
    with eng.tx():
        for cid in run:
            c = cycles[cid]
            _finish(eng, cid, cmd.ts, CycleReport(cid, c.vault_id, vault_status=c.vault_status))
    return {"orders": len(orders), "fills": result.fills, "rejects": result.rejects,
            "cycles": run, "held": len(held), "maintenance": sorted(frozen)}
