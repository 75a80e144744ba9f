"""audit head | consistency, proof verify: signed tree heads and the proofs a follower
checks alone (SPEC §10)."""

from __future__ import annotations

from typing import Any

import click

from vanta_box.cli.audit import _database, _own_wal, _wal_said, audit, db_option, wal_option
from vanta_box.cli.common import at_option, engine, parse_at, write_state


@audit.command("head")
@click.option("--json", "as_json", is_flag=True, help="Print the head as JSON (publish it).")
@at_option
@click.pass_context
def audit_head(ctx: click.Context, as_json: bool, at: str | None) -> None:
    """Sign and print the journal's tree head: size, root, time, Ed25519 signature and
    public key (RFC 6962's TreeHeadSignature, so any RFC 6962 checker verifies it).

    The head's time is --at, else the journal's last event (the same journal gives the
    same head). The first head a key signs records its public key in the journal (an
    `audit.key` event). Publish the JSON; later, `vanta audit consistency OLD NEW` proves
    the journal only grew, and `vanta audit verify --head OLD.json` that it still extends
    it.

    \b
    Example:
        vanta audit head --json > head-2026-11.json
        vanta audit head --at 2026-11-30T00:00:00Z
    """
    from vanta_box.core.canonical import pretty
    from vanta_box.core.timeutil import parse_ts
    from vanta_box.reports.html import last_event_time
    from vanta_box.service import proofs

    when = parse_at(at) if at is not None else None
    with engine(ctx) as (eng, home):
        public = proofs.ensure_key(home.root)
        last = last_event_time(eng.conn)
        recorded_at = when if when is not None else (
            parse_ts(last) if last is not None else parse_at(None))
        recorded = proofs.record_key(eng, public, recorded_at)
        if recorded:
            write_state(eng, home, recorded_at)
        head = proofs.head(home.root, eng.conn, at=when)
    if recorded:
        click.echo(f"recorded the public key {public[:16]}… in the journal (audit.key, row "
                   f"{head['tree_size']})", err=True)
    if as_json:
        click.echo(pretty(head).rstrip())
        return
    click.echo(f"tree head of {head['tree_size']:,} journal rows")
    for label, key in (("size", "tree_size"), ("root", "root_hash"), ("timestamp", "timestamp"),
                       ("public key", "public_key"), ("signature", "signature")):
        click.echo(f"  {label:<11}{head[key]}")


def head_file(path: str, field: str) -> dict[str, Any]:
    """A head from a file: `vanta audit head --json`'s output, or a statement carrying one
    (bad input, exit 2, when it is neither)."""
    from vanta_box.core.errors import InputError
    from vanta_box.inputs.common import load_json
    from vanta_box.service import proofs

    head = proofs.read_head(load_json(path))
    if head is None:
        raise InputError("not a tree head (`vanta audit head --json`) nor a statement "
                         "carrying one", source=path, field=field)
    return head


@audit.command("consistency")
@click.argument("old_file", metavar="OLD.json")
@click.argument("new_file", metavar="NEW.json")
@click.option("--json", "as_json", is_flag=True, help="Print the proof as JSON.")
@db_option
@wal_option
@click.pass_context
def audit_consistency(ctx: click.Context, old_file: str, new_file: str, as_json: bool,
                      db_file: str | None, with_wal: bool) -> None:
    """Prove that the journal only grew between two published heads: both signatures,
    both roots against this database's journal, and the RFC 6962 consistency proof from
    the old tree to the new one, verified. Exit 0 when proven; exit 1 naming what fails (a
    forged head, a journal rewritten or truncated since).

    \b
    Example:
        vanta audit consistency head-2026-10.json head-2026-11.json
        vanta audit consistency old.json new.json --db vanta.db --json
    """
    from vanta_box.core.canonical import pretty
    from vanta_box.core.errors import CheckFailed
    from vanta_box.service import proofs
    from vanta_box.store import db

    heads = {"old": head_file(old_file, "OLD"), "new": head_file(new_file, "NEW")}
    for name, path in (("old", old_file), ("new", new_file)):
        problem = proofs.check_head(heads[name])
        if problem:
            raise CheckFailed(f"{path} (the {name} head): {problem}")
    source = _database(ctx, db_file)
    with_wal = _own_wal(db_file, with_wal)
    with db.open_readonly(source, with_wal=with_wal) as conn:
        db.require_journal(conn, source)
        _wal_said(source, with_wal)
        known = proofs.recorded_keys(conn)
        result = proofs.consistency(conn, heads["old"], heads["new"])
    if as_json:
        click.echo(pretty(result).rstrip())
    for name in ("old", "new"):
        h = heads[name]
        said = "recorded in this journal" if h["public_key"] in known else \
            "NOT recorded in this journal (`vanta audit head` records it)"
        click.echo(f"{name} head: {h['tree_size']:,} rows, root {h['root_hash'][:16]}…, "
                   f"signed by {h['public_key'][:16]}… ({said})", err=as_json)
    if not result["consistent"]:
        raise CheckFailed(f"NOT consistent: the proof from {result['old_size']} to "
                          f"{result['new_size']} rows does not verify (stored tree nodes "
                          "damaged? `vanta audit verify` names them)")
    click.echo(f"consistent: the journal of {result['new_size']:,} rows extends the one of "
               f"{result['old_size']:,} (RFC 6962 proof of {len(result['proof'])} hashes, "
               "verified)", err=as_json)


@click.group()
def proof() -> None:
    """Check what a follower holds, with no database."""


def _pubkey(value: str | None) -> str | None:
    """--pubkey: 64 hex digits, or a file holding them (or a head naming them)."""
    import json
    import re
    from pathlib import Path

    from vanta_box.core.errors import InputError

    if value is None:
        return None
    text = value.strip()
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text) and Path(value).is_file():
        try:
            text = Path(value).read_text().strip()
        except (OSError, UnicodeDecodeError):
            raise InputError("cannot read the key file", source=value, field="--pubkey"
                             ) from None
        if text.startswith("{"):
            try:
                text = str(json.loads(text).get("public_key", ""))
            except (ValueError, AttributeError):
                text = ""
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise InputError("not an Ed25519 public key: 64 hex digits (as `vanta audit head` "
                         "prints it), or a file holding them", field="--pubkey")
    return text.lower()


@proof.command("verify")
@click.argument("statement_file", metavar="STATEMENT.json")
@click.option("--pubkey", "pubkey", metavar="KEY", default=None,
              help="The manager's public key (hex, or a file holding it, e.g. a head they "
                   "published); default: the key the statement names (trust on first use).")
def proof_verify(statement_file: str, pubkey: str | None) -> None:
    """Check a statement alone, with no database: the head's signature, every inclusion
    proof, that each cited journal row (fills, fee entries, payments) holds the numbers the
    statement shows, and the statement's own sums (closing − opening = realized +
    Δunrealized; the ledger's due, paid, outstanding).

    Exit 0 when all holds; exit 1 naming the first thing that fails; exit 2 when the file
    is not a statement with proofs.

    \b
    Example:
        vanta proof verify F1042-2026-11.json --pubkey 3b6a27bc...
    """
    from vanta_box.core.errors import CheckFailed, InputError
    from vanta_box.inputs.common import load_json
    from vanta_box.service import proofcheck

    key = _pubkey(pubkey)
    doc = load_json(statement_file)
    problem = proofcheck.readable(doc)
    if problem:
        raise InputError(problem, source=statement_file)
    verdict = proofcheck.verify(doc, key)
    for line in verdict.held:
        click.echo(line)
    for note in verdict.notes:
        click.echo(f"note: {note}", err=True)
    if not verdict.ok:
        click.echo(f"FAILED: {verdict.failure}")
        raise CheckFailed(f"{statement_file}: {verdict.failure}")
    click.echo(f"verdict: OK ({doc['account_id']}, {doc.get('period')}: every cited row is "
               "in the signed journal and the numbers hold)")


COMMANDS = [proof]
