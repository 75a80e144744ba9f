"""Reference-data commands: vaults, instruments, prices, signals, overlays.

Each ``*_command`` function reads and validates its input (nothing is written) and returns
the Command; the handler below it applies the command's payload. Handlers never read files.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from vanta_box.core.canonical import dumps
from vanta_box.core.errors import InputError, Refused
from vanta_box.core.models import Overlay
from vanta_box.core.money import D, fmt
from vanta_box.core.timeutil import fmt_ts, parse_ts
from vanta_box.inputs.market import load_instruments, load_prices, load_signals
from vanta_box.inputs.vaults import load_vault_file, vault_from_dict, vault_to_dict
from vanta_box.service import timerules
from vanta_box.service.engine import Command, Engine, handles
from vanta_box.store import repo

# ---------------------------------------------------------------- vaults


def vault_import_command(path: str, at: int) -> Command:
    vaults = load_vault_file(path)
    return Command.make("vault.import", at, {"vaults": [vault_to_dict(v) for v in vaults]})


def _same_but_case(eng: Engine, vault_ids: list[str]) -> None:
    known = {v.vault_id.casefold(): v.vault_id for v in repo.vault_rows(eng.conn)}
    for vault_id in vault_ids:
        other = known.setdefault(vault_id.casefold(), vault_id)
        if other != vault_id:
            raise InputError(f"vault {vault_id!r} differs from {other!r} only in case: ids "
                             "must differ in more than case (pages are named by them)",
                             field="vault_id")


@handles("vault.import")
def _vault_import(eng: Engine, cmd: Command) -> dict[str, Any]:
    _same_but_case(eng, [data["vault_id"] for data in cmd.payload["vaults"]])
    created, updated, unchanged = [], [], []
    for data in cmd.payload["vaults"]:
        current = repo.vault_row(eng.conn, data["vault_id"])
        if current is not None and current.config == data:
            unchanged.append(data["vault_id"])
        elif current is None:
            created.append(data["vault_id"])
        else:
            updated.append(data["vault_id"])
    if created or updated:
        with eng.tx():
            for data in cmd.payload["vaults"]:
                if data["vault_id"] in created or data["vault_id"] in updated:
                    repo.upsert_vault(eng.conn, data["vault_id"], data, cmd.ts)
    warnings = []
    for data in cmd.payload["vaults"]:
        for acct in repo.accounts(eng.conn, data["vault_id"]):
            gone = sorted(set(acct.persona_prefs or ()) - set(data.get("personas", [])))
            if gone and acct.status != "removed":
                warnings.append(f"follower {acct.account_id} prefers {', '.join(gone)}, no "
                                f"longer a persona of {data['vault_id']}: those signals no "
                                "longer reach it")
    return {"created": created, "updated": updated, "unchanged": unchanged,
            "warnings": warnings}


def load_vault(eng: Engine, vault_id: str) -> tuple[repo.VaultRow, Any]:
    row = repo.vault_row(eng.conn, vault_id)
    if row is None:
        known = [v.vault_id for v in repo.vault_rows(eng.conn)]
        raise InputError(f"unknown vault {vault_id!r} (known: {', '.join(known) or 'none'})")
    return row, vault_from_dict(row.config)


# ---------------------------------------------------------------- instruments and prices


def instruments_import_command(path: str, at: int) -> Command:
    items = load_instruments(path)
    return Command.make("instruments.import", at, {"instruments": [
        {"symbol": i.symbol, "asset_class": i.asset_class, "lot_step": fmt(i.lot_step),
         "min_notional": fmt(i.min_notional)} for i in sorted(items, key=lambda i: i.symbol)]})


@handles("instruments.import")
def _instruments_import(eng: Engine, cmd: Command) -> dict[str, Any]:
    from vanta_box.core.models import Instrument

    current = repo.instruments(eng.conn)
    items = [Instrument(d["symbol"], d["asset_class"], D(d["lot_step"]), D(d["min_notional"]))
             for d in cmd.payload["instruments"]]
    changed = [i for i in items if current.get(i.symbol) != i]
    if changed:
        with eng.tx():
            repo.upsert_instruments(eng.conn, changed)
    return {"imported": len(changed), "unchanged": len(items) - len(changed)}


def prices_ingest_command(eng: Engine, path: str, at: int) -> Command:
    points = load_prices(path, repo.instruments(eng.conn))
    rows = sorted((p.symbol, p.ts, fmt(p.price)) for p in points)
    listed = [[s, fmt_ts(ts), price] for s, ts, price in rows]
    digest = hashlib.sha256(dumps(listed).encode()).hexdigest()
    return Command.make("prices.ingest", at, {"count": len(listed), "sha256": digest,
                                               "prices": listed})


@handles("prices.ingest")
def _prices_ingest(eng: Engine, cmd: Command) -> dict[str, Any]:
    rows = [(s, parse_ts(ts), price) for s, ts, price in cmd.payload["prices"]]
    existing = 0
    query = "SELECT price FROM prices WHERE symbol = ? AND ts = ?"
    for symbol, ts, price in rows:
        found = eng.conn.execute(query, (symbol, ts)).fetchone()
        if found and found[0] == price:
            existing += 1
    if existing < len(rows):
        with eng.tx():
            repo.upsert_prices(eng.conn, rows)
    return {"ingested": len(rows) - existing, "unchanged": existing}


# ---------------------------------------------------------------- signals


def signals_ingest_command(eng: Engine, path: str, at: int) -> Command:
    personas = {}
    for row in repo.vault_rows(eng.conn):
        personas[row.vault_id] = tuple(row.config.get("personas", []))
    sets = load_signals(path, personas, repo.instruments(eng.conn))
    return Command.make("signals.ingest", at, {"sets": [
        {"vault_id": s.vault_id, "as_of": fmt_ts(s.as_of), "scores": [
            {"symbol": sc.symbol, "score": fmt(sc.score),
             **({"persona": sc.persona} if sc.persona else {})} for sc in s.scores]}
        for s in sets]})


@handles("signals.ingest")
def _signals_ingest(eng: Engine, cmd: Command) -> dict[str, Any]:
    pending = []
    for s in cmd.payload["sets"]:
        scores_json = dumps(s["scores"])
        digest = hashlib.sha256(scores_json.encode()).hexdigest()
        as_of = parse_ts(s["as_of"])
        if repo.vault_row(eng.conn, s["vault_id"]) is None:
            raise InputError(f"unknown vault {s['vault_id']!r}")
        if repo.signal_digest(eng.conn, s["vault_id"], as_of) != digest:
            pending.append((s["vault_id"], as_of, scores_json, digest))
    if pending:
        with eng.tx():
            for vault_id, as_of, scores_json, digest in pending:
                repo.put_signal_set(eng.conn, vault_id, as_of, scores_json, digest)
    return {"ingested": len(pending), "unchanged": len(cmd.payload["sets"]) - len(pending)}


# ---------------------------------------------------------------- overlays


def overlay_set_command(eng: Engine, vault_id: str, kind: str, ttl_us: int, at: int,
                        persona: str = "", factor: Decimal | None = None) -> Command:
    _row, vault = load_vault(eng, vault_id)
    timerules.after_last_cycle(eng.conn, vault_id, at, f"an overlay on {vault_id}")
    if kind == "boost" and persona not in vault.personas:
        raise InputError(f"persona {persona!r} is not one of {vault_id}'s personas "
                         f"{list(vault.personas)}", field="--boost")
    return Command.make("overlay.set", at, {
        "vault_id": vault_id, "kind": kind, "persona": persona,
        "factor": fmt(factor) if factor is not None else "1",
        "set_at": fmt_ts(at), "expires_at": fmt_ts(at + ttl_us)})


def expire_overlays(eng: Engine, at: int, vault_id: str | None = None) -> list[Overlay]:
    """Journal and remove every overlay whose expiry is at or before ``at`` (inside a tx)."""
    gone = [o for o in repo.overlays(eng.conn, vault_id) if o.expires_at <= at]
    for o in gone:
        eng.record(at, "overlay.expired", {
            "vault_id": o.vault_id, "kind": o.kind, "persona": o.persona,
            "set_at": fmt_ts(o.set_at), "expires_at": fmt_ts(o.expires_at)})
        repo.delete_overlay(eng.conn, o.vault_id, o.kind, o.persona)
    return gone


@handles("overlay.set")
def _overlay_set(eng: Engine, cmd: Command) -> dict[str, Any]:
    p = cmd.payload
    overlay = Overlay(p["vault_id"], p["kind"], parse_ts(p["set_at"]), parse_ts(p["expires_at"]),
                      p["persona"], D(p["factor"]))
    with eng.tx():
        expire_overlays(eng, cmd.ts, p["vault_id"])
        repo.put_overlay(eng.conn, overlay)
    return {"overlay": overlay}


def overlay_clear_command(eng: Engine, vault_id: str, kind: str | None, at: int) -> Command:
    load_vault(eng, vault_id)
    timerules.after_last_cycle(eng.conn, vault_id, at, f"clearing an overlay on {vault_id}")
    return Command.make("overlay.clear", at, {"vault_id": vault_id, "kind": kind})


@handles("overlay.clear")
def _overlay_clear(eng: Engine, cmd: Command) -> dict[str, Any]:
    p = cmd.payload
    present = [o for o in repo.overlays(eng.conn, p["vault_id"])
               if (p["kind"] is None or o.kind == p["kind"]) and o.expires_at > cmd.ts]
    if not present:
        raise Refused(f"no overlay{' of kind ' + p['kind'] if p['kind'] else ''} in force on "
                      f"{p['vault_id']}: nothing to clear")
    with eng.tx():
        expire_overlays(eng, cmd.ts, p["vault_id"])
        for o in present:
            repo.delete_overlay(eng.conn, o.vault_id, o.kind, o.persona)
    return {"cleared": present}


# ---------------------------------------------------------------- drawdown halt


def vault_resume_command(eng: Engine, vault_id: str, at: int, reset_peak: bool) -> Command:
    row, _vault = load_vault(eng, vault_id)
    if row.status != "halted":
        raise Refused(f"vault {vault_id} is {row.status}, not halted: nothing to resume")
    return Command.make("vault.resume", at, {"vault_id": vault_id, "reset_peak": reset_peak})


@handles("vault.resume")
def _vault_resume(eng: Engine, cmd: Command) -> dict[str, Any]:
    p = cmd.payload
    row = repo.vault_row(eng.conn, p["vault_id"])
    if row is None or row.status != "halted":
        raise Refused(f"vault {p['vault_id']} is not halted")
    with eng.tx():
        peak = row.last_nav if p["reset_peak"] else row.peak_nav
        repo.set_vault_state(eng.conn, row.vault_id, status="active", peak_nav=peak,
                             last_nav=row.last_nav, last_cycle_at=row.last_cycle_at)
    return {"vault_id": row.vault_id, "peak_nav": peak}
