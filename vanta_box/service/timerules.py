"""SPEC §6 time rules: a change is dated after what it would change.

A change to what a past cycle saw (an onboarding, a pause, resume or removal, an overlay, a
manual trade) is refused when dated before the vault's last cycle; a change to an account
is also refused when dated inside a period already billed to it (the bill and its
statement would no longer agree). Checked when a command is built, before anything is
written, so a refusal leaves no trace.
"""

from __future__ import annotations

from vanta_box.core.errors import Refused
from vanta_box.core.timeutil import fmt_ts, parse_period
from vanta_box.store import repo
from vanta_box.store.db import Connection


def after_last_cycle(conn: Connection, vault_id: str, at: int, what: str) -> None:
    row = repo.vault_row(conn, vault_id)
    last = row.last_cycle_at if row is not None else None
    if last is not None and at < last:
        raise Refused(f"{what} at {fmt_ts(at)} is dated before {vault_id}'s last cycle "
                      f"({fmt_ts(last)}): it would change what that cycle saw; date it at "
                      "or after the last cycle")


def after_billed(conn: Connection, account_id: str, at: int, what: str) -> None:
    entries = repo.fee_entries(conn, account_id)
    reversed_ids = {e.reverses for e in entries if e.kind == "reversal"}
    billed = [e.period for e in entries if e.kind == "fee" and e.entry_id not in reversed_ids]
    if not billed:
        return
    period = max(billed)
    _start, end = parse_period(period)
    if at < end:
        raise Refused(f"{what} at {fmt_ts(at)} falls in {period}, already billed to "
                      f"{account_id}: it would change that bill (reverse the entry first, "
                      "or date the change after the period)")


def account_change(conn: Connection, acct: repo.AccountRow, at: int, what: str) -> None:
    after_last_cycle(conn, acct.vault_id, at, what)
    after_billed(conn, acct.account_id, at, what)
