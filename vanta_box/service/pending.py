"""Orders waiting for execution.

A ``--stage-only`` cycle writes its orders to the ``orders`` table as ``staged`` (that is
the queue). A cycle that executes at once writes each order only when it is settled
(filled, rejected): if it is interrupted in between, its remaining orders are recovered
from the journal (the ``order`` / ``child_order`` events of the cycle that have no settled
row yet). Either way, this module answers "what is still to execute".
"""

from __future__ import annotations

import json

from vanta_box.core.money import ZERO, D
from vanta_box.store import repo
from vanta_box.store.db import Connection
from vanta_box.store.journal import events


def of_cycle(conn: Connection, cycle: repo.CycleRow) -> list[repo.OrderRow]:
    if cycle.status != "staged":
        return []
    if cycle.stage_only:
        return repo.staged_orders(conn, cycle_id=cycle.cycle_id)
    settled = repo.settled_order_ids(conn, cycle.cycle_id)
    out = []
    for event in events(conn, cycle.first_seq - 1, ("order", "child_order")):
        p = json.loads(event.payload_json)
        if p["cycle_id"] != cycle.cycle_id:
            break  # a cycle's decisions are contiguous in the journal
        if p["status"] not in ("staged", "shadow") or p["order_id"] in settled:
            continue
        out.append(repo.OrderRow(p["order_id"], p["client_order_id"], p["cycle_id"],
                                 p["account_id"], p["parent_id"], event.kind, p["symbol"],
                                 p["side"], D(p["qty"]), "staged", ZERO, None))
    return out


def pending(conn: Connection, vault_id: str | None = None,
            cycle_id: str | None = None) -> list[repo.OrderRow]:
    out = []
    for cid in repo.staged_cycles(conn, vault_id):
        if cycle_id is not None and cid != cycle_id:
            continue
        cycle = repo.cycle(conn, cid)
        assert cycle is not None
        out += of_cycle(conn, cycle)
    return out
