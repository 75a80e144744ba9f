"""Static HTML reports: an overview, a page per vault, a statement page per follower (that
follower's data only), the fee ledger. Templates only format; everything they show is
computed here. Autoescape is on, so a label or a reason can never inject markup.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from vanta_box import __version__
from vanta_box.core.money import fmt_cents, round_cents
from vanta_box.core.timeutil import day_of, fmt_ts
from vanta_box.reports import state
from vanta_box.reports.files import write_atomic
from vanta_box.resources import templates_dir
from vanta_box.service import fees, statement
from vanta_box.store import journal, repo
from vanta_box.store.db import Connection


def cents(value: str | None) -> str:
    """Display form of an amount: cents, half-up, thousands separated. Pages are for
    reading; the exact values are in memory/*.json and the statement's --json."""
    if value is None:
        return "—"
    return f"{round_cents(Decimal(value)):,.2f}"


def percent(value: str | None) -> str:
    if value is None:
        return "—"
    return f"{round_cents(Decimal(value) * 100):,.2f} %"


def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(str(templates_dir())),
                      autoescape=select_autoescape(["html"], default=True),
                      undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["cents"] = cents
    env.filters["percent"] = percent
    return env


def months(first: date, last: date) -> list[str]:
    out, month = [], first.replace(day=1)
    while month <= last:
        out.append(f"{month.year:04d}-{month.month:02d}")
        month = (month + timedelta(days=32)).replace(day=1)
    return out


def last_event_time(conn: Connection) -> str | None:
    row = conn.execute("SELECT ts FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    return str(row[0]) if row else None


def render(conn: Connection, out: Path, as_of: int) -> list[Path]:
    env = _environment()
    digest = str(journal.head(conn))
    common = {"as_of": fmt_ts(as_of), "digest": digest, "version": __version__}
    written: list[Path] = []

    def page(name: str, template: str, root: str = "", **context: Any) -> None:
        html = env.get_template(template).render(**common, root=root, **context)
        path = out / name
        write_atomic(path, html)
        written.append(path)

    loaded = state.holdings(conn, as_of)
    pnl = state.pnl_doc(conn, as_of, loaded)
    portfolio = {a["account_id"]: a for a in state.portfolio_doc(conn, as_of, loaded)["accounts"]}
    rows = {v.vault_id: v for v in repo.vault_rows(conn)}
    vaults = []
    for v in pnl["vaults"]:
        last = repo.last_cycle(conn, v["vault_id"])
        vaults.append({**v, "label": rows[v["vault_id"]].config.get("label"),
                       "last_cycle": last.cycle_id if last else None})
    accounts = [{**a, **{k: portfolio[a["account_id"]][k] for k in ("role", "status", "cash")}}
                for a in pnl["accounts"]]
    page("index.html", "index.html", vaults=vaults, accounts=accounts)

    allocations = {a["vault_id"]: a for a in state.allocation_doc(conn, as_of)["vaults"]}
    overlays = state.overlay_doc(conn, as_of)["overlays"]
    for vault_id, row in rows.items():
        alloc = allocations[vault_id]
        cycles = [c for c in conn.execute(
            "SELECT cycle_id, status, vault_status, nav, peak_nav FROM cycles"
            " WHERE vault_id = ? AND at <= ? ORDER BY at DESC", (vault_id, as_of))]
        page(f"vault_{vault_id}.html", "vault.html",
             vault={"vault_id": vault_id, "label": row.config.get("label"),
                    "status": row.status, "personas": row.config.get("personas", [])},
             allocation={"cycle_id": alloc["cycle_id"],
                         "weights": sorted(alloc["weights"].items()),
                         "cash_weight": alloc["cash_weight"]},
             overlays=[{"persona": None, "factor": None, **o} for o in overlays
                       if o["vault_id"] == vault_id],
             cycles=[{"cycle_id": c[0], "status": c[1], "vault_status": c[2], "nav": c[3],
                      "peak_nav": c[4]} for c in cycles])

    end = day_of(as_of)
    for acct in repo.accounts(conn):
        if acct.role != "follower":
            continue
        statements = [statement.build(conn, acct.account_id, period)
                      for period in months(day_of(acct.onboarded_at), end)]
        page(f"followers/{acct.account_id}.html", "follower.html", root="../",
             account={"account_id": acct.account_id, "vault_id": acct.vault_id,
                      "mode": acct.mode, "status": acct.status,
                      "onboarded_at": fmt_ts(acct.onboarded_at),
                      "shadow": acct.mode == "shadow"},
             statements=list(reversed(statements)))

    entries = [{"entry_id": e.entry_id, "kind": e.kind, "account_id": e.account_id,
                "period": e.period, "fee_type": e.fee_type,
                "realized_pnl": fmt_cents(e.realized_pnl), "carry_in": fmt_cents(e.carry_in),
                "perf_fee": fmt_cents(e.perf_fee), "flat_fee": fmt_cents(e.flat_fee),
                "fee_due": fmt_cents(e.fee_due),
                "paid": fmt_cents(fees.paid_total(conn, e.entry_id)), "reason": e.reason}
               for e in repo.fee_entries(conn)]
    page("fees.html", "fees.html", entries=entries)
    return written
