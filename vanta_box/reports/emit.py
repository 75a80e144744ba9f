"""Write the state files of SPEC §3 into memory/: atomically, keys sorted, decimals as
strings, so the same state always gives the same bytes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vanta_box.core.canonical import dumps, pretty
from vanta_box.reports import state
from vanta_box.reports.files import append_atomic, last_line, write_atomic
from vanta_box.store import journal
from vanta_box.store.db import Connection

VALUED = {"portfolio.json", "pnl_summary.json"}
DOCUMENTS: dict[str, Callable[..., dict[str, Any]]] = {
    "vault.json": state.vault_doc,
    "vault_overlay.json": state.overlay_doc,
    "vault_allocation.json": state.allocation_doc,
    "portfolio.json": state.portfolio_doc,
    "pnl_summary.json": state.pnl_doc,
    "autotrade_queue.json": state.queue_doc,
}

JOURNAL_FILES: dict[str, tuple[tuple[str, ...], Callable[[journal.Event], dict[str, Any]]]] = {
    "trade_log.jsonl": (state.TRADE_KINDS, state.trade_line),
    "fee_ledger.jsonl": (state.FEE_KINDS, state.fee_line),
}


def register_jsonl(name: str, kinds: tuple[str, ...],
                   line: Callable[[journal.Event], dict[str, Any]]) -> None:
    JOURNAL_FILES[name] = (kinds, line)


def emit(conn: Connection, memory: Path, as_of: int) -> list[Path]:
    """Every state file. ``pnl_summary.json`` (which carries the journal digest) is written
    last: when its digest is the journal's head, every file was written for that head."""
    written = []
    for name, (kinds, line) in JOURNAL_FILES.items():
        path = memory / name
        sync_jsonl(conn, path, kinds, line)
        written.append(path)
    loaded = state.holdings(conn, as_of)  # valued once for portfolio and pnl
    for name in sorted(DOCUMENTS, key=lambda n: n == LAST):
        path = memory / name
        build = DOCUMENTS[name]
        doc = build(conn, as_of, loaded) if name in VALUED else build(conn, as_of)
        write_atomic(path, pretty(doc))
        written.append(path)
    return sorted(written, key=lambda p: list(DOCUMENTS).index(p.name)
                  if p.name in DOCUMENTS else len(DOCUMENTS))


LAST = "pnl_summary.json"


def written_for(memory: Path) -> str | None:
    """The journal digest the state files were last completely written for, if known."""
    try:
        doc = json.loads((memory / LAST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    digest = doc.get("digest") if isinstance(doc, dict) else None
    return digest if isinstance(digest, str) else None


def sync_jsonl(conn: Connection, path: Path, kinds: tuple[str, ...],
               line: Callable[[journal.Event], dict[str, Any]]) -> int:
    """Bring a journal-derived .jsonl file up to the journal's head.

    The file is append-only like the journal: when its last line is the journal event it
    claims to be, only newer events are added; otherwise it is rewritten from scratch. Each
    update is atomic (a new file renamed over the old one).
    """
    keep, after = 0, 0
    tail = last_line(path)
    if tail is not None:
        try:
            seq = int(json.loads(tail[0])["seq"])
            row = conn.execute("SELECT kind FROM journal WHERE seq = ?", (seq,)).fetchone()
            if row and row[0] in kinds:
                keep, after = tail[1], seq
        except (ValueError, KeyError, TypeError):
            pass
    count = 0

    def lines() -> Iterator[str]:
        nonlocal count
        for event in journal.events(conn, after, kinds):
            count += 1
            yield dumps(line(event)) + "\n"

    if keep and path.exists() and path.stat().st_size == keep:
        new = list(lines())
        if not new:
            return 0
        append_atomic(path, keep, new)
    else:
        append_atomic(path, keep, lines())
    return count
