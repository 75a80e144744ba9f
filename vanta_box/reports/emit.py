"""Write the state files of SPEC §3 into memory/: atomically, keys sorted, decimals as
strings, so the same state always gives the same bytes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from vanta_box.core.canonical import dumps, pretty
from vanta_box.core.timeutil import fmt_ts
from vanta_box.reports import state
from vanta_box.reports.files import append_atomic, last_line, replacing, write_atomic
from vanta_box.store import journal
from vanta_box.store.db import Connection

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
    from vanta_box.service import alerts  # memory/alerts.jsonl: what needs the manager

    written.append(alerts.write_file(conn, memory, as_of))
    # portfolio.json and pnl_summary.json value the books once, a batch at a time: the
    # portfolio is written as its accounts come, the pnl rows (one line each) are kept.
    accounts, marks, books = state.each_book(conn, as_of)
    billed = state.fees_billed(conn)
    returns = state.returns_of(conn, as_of)
    managers = state.masters(accounts)
    pnl_rows: list[dict[str, Any]] = []
    navs: dict[str, Decimal] = {}

    def portfolio_accounts() -> Iterator[dict[str, Any]]:
        for a, book in books:
            pnl_rows.append(state.pnl_account(a, book, marks, billed, returns(a, book)))
            if managers.get(a.vault_id) == a.account_id:
                navs[a.vault_id] = book.equity(marks)
            yield state.portfolio_account(a, book, marks)

    for name in sorted(DOCUMENTS, key=lambda n: n == LAST):
        path = memory / name
        if name == "portfolio.json":
            write_pretty_streamed(path, {"as_of": fmt_ts(as_of)}, "accounts",
                                  portfolio_accounts())
        elif name == LAST:
            assert len(pnl_rows) == len(accounts)  # the portfolio, written before it
            write_atomic(path, pretty(state.pnl_summary(conn, as_of, pnl_rows, navs)))
        else:
            write_atomic(path, pretty(DOCUMENTS[name](conn, as_of)))
        written.append(path)
    return sorted(written, key=lambda p: list(DOCUMENTS).index(p.name)
                  if p.name in DOCUMENTS else len(DOCUMENTS))


LAST = "pnl_summary.json"


def write_pretty_streamed(path: Path, doc: dict[str, Any], key: str,
                          items: Iterable[dict[str, Any]]) -> None:
    """Atomically write ``pretty(doc)`` with ``doc[key]`` the list of ``items``, each
    written as it comes: the same bytes without the whole document in memory. (With
    indent 2 an item sits at depth 2: its own text, each line indented 4 more; no JSON
    string holds a raw newline.)"""
    marker = "\n  " + dumps(key) + ": []"
    head, tail = pretty({**doc, key: []}).split(marker)
    with replacing(path) as handle:
        handle.write((head + marker[:-1]).encode())
        separator = "\n    "
        for item in items:
            handle.write((separator + pretty(item)[:-1].replace("\n", "\n    ")).encode())
            separator = ",\n    "
        handle.write(("]" if separator == "\n    " else "\n  ]").encode() + tail.encode())


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
