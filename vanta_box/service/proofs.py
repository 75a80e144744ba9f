"""Signed tree heads, inclusion and consistency proofs (SPEC §10).

A *head* says "the journal had ``tree_size`` rows and this root", signed with the home's
Ed25519 key over RFC 6962's TreeHeadSignature structure (version 0, signature type 1,
timestamp in ms, tree size, root hash: 1+1+8+8+32 bytes), so a checker written from the RFC
can verify it. The key is created with the home (``signing.key``, mode 0600, outside
``vanta.db``); its public half is in ``audit_keys``.

Proofs are checked with no database (``check_head``, ``check_row``): a follower holding a
statement verifies it alone.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import Any

from vanta_box.core.errors import InputError, Refused
from vanta_box.core.timeutil import fmt_ts, parse_ts
from vanta_box.domain import merkle
from vanta_box.service.engine import Command, Engine, handles
from vanta_box.store import merkle as stored
from vanta_box.store.journal import chain

KEY_FILE = "signing.key"
SCHEME = "ed25519 over the RFC 6962 TreeHeadSignature (v1, tree_hash, ms, size, root)"
_HEX_KEY = re.compile(r"^[0-9a-f]{64}$")


# ---------------------------------------------------------------- the signing key
#
# The key file is made by `vanta init` (or by the first command that signs, in a home made
# before this existed). Its public half enters the journal (an ``audit.key`` command, and
# so ``audit_keys``) when the home first publishes a head (`vanta audit head`), not at
# init: the key is random, and two homes fed the same inputs must keep byte-identical
# journals (SPEC §7). Replay re-records it from the journal's payload like any input.


def ensure_key(home_root: Path) -> str:
    """The home's signing key, made once (mode 0600, hex of the raw 32 bytes); returns its
    public key (hex). Idempotent, and safe against a second process making it at once."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = home_root / KEY_FILE
    if not path.exists():
        raw = Ed25519PrivateKey.generate().private_bytes_raw()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made meanwhile by another process: use that one
            pass
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(raw.hex().encode() + b"\n")
    public: str = _private(home_root).public_key().public_bytes_raw().hex()
    return public


def recorded_keys(conn: Any) -> list[str]:
    """The public keys this journal records (``audit.key`` commands), oldest first."""
    return [str(k) for (k,) in conn.execute(
        "SELECT public_key FROM audit_keys ORDER BY created_at, public_key")]


def key_command(public: str, at: int) -> Command:
    return Command.make("audit.key", at, {"public_key": public})


@handles("audit.key")
def _audit_key(eng: Engine, cmd: Command) -> bool:
    public = cmd.payload.get("public_key")
    if not isinstance(public, str) or not _HEX_KEY.match(public):
        raise InputError("audit.key: public_key is not 64 lower-case hex digits")
    with eng.tx():
        eng.conn.execute("INSERT INTO audit_keys (public_key, created_at) VALUES (?, ?)"
                         " ON CONFLICT (public_key) DO NOTHING", (public, cmd.ts))
    return True


def record_key(eng: Engine, public: str, at: int) -> bool:
    """Journal the public key (once): True if it was recorded now."""
    if public in recorded_keys(eng.conn):
        return False
    eng.run(key_command(public, at))
    return True


class _NoVenues:
    def instant_for(self, account: Any, vault: Any, book: Any, marks: Any,
                    instruments: Any) -> Any:
        raise Refused("no venue is reachable here")


def create_key(home_root: Path, conn: Any, at: int) -> str:
    """The key made if missing and its public half journaled (scripts and tests; the CLI
    does the same through its engine)."""
    public = ensure_key(home_root)
    record_key(Engine(conn, _NoVenues()), public, at)
    return public


def _private(home_root: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = home_root / KEY_FILE
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise Refused(f"no signing key in {home_root} (run `vanta init`)") from None
    try:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text))
    except ValueError:
        raise Refused(f"{path.name} in {home_root} is not an Ed25519 key (64 hex digits)"
                      ) from None


def key_secret(home_root: Path) -> str | None:
    """The private key's text, for secret scans (``audit export``)."""
    path = home_root / KEY_FILE
    return path.read_text().strip() if path.exists() else None


# ---------------------------------------------------------------- heads


def signed_data(size: int, root: bytes, timestamp_ms: int) -> bytes:
    """RFC 6962 §3.5 TreeHeadSignature: version v1 (0), signature_type tree_hash (1),
    uint64 timestamp, uint64 tree_size, the 32-byte root."""
    return struct.pack(">BBQQ", 0, 1, timestamp_ms, size) + root


def tree(conn: Any) -> stored.JournalTree:
    """The journal's tree, extended to its last full block first (a short write, skipped
    on a file this connection cannot write)."""
    t = stored.JournalTree(conn)
    t.extend_if_writable()
    return t


def head(home_root: Path, conn: Any, t: stored.JournalTree | None = None,
         at: int | None = None) -> dict[str, Any]:
    """The signed head of the journal as it is. Its time is ``at`` (µs), else the last
    row's: the same journal gives the same head (Ed25519 signatures are deterministic)."""
    t = t or tree(conn)
    if t.size == 0:
        raise Refused("the journal is empty: nothing to sign")
    if at is None:
        row = conn.execute("SELECT ts FROM journal WHERE seq = ?", (t.size,)).fetchone()
        at = parse_ts(str(row[0]))
    ms = at // 1000
    root = t.root()
    key = _private(home_root)
    return {"tree_size": t.size, "root_hash": root.hex(), "timestamp": fmt_ts(ms * 1000),
            "timestamp_ms": ms, "public_key": key.public_key().public_bytes_raw().hex(),
            "signature": key.sign(signed_data(t.size, root, ms)).hex(), "scheme": SCHEME}


def unsigned_head(conn: Any) -> dict[str, Any]:
    """{size, root} of the journal's tree: what state files carry (they are rewritten
    after every command, so they hold no signature and no time: same journal, same
    bytes). `vanta audit head` signs it."""
    t = tree(conn)
    return {"size": t.size, "root": t.root().hex()}


def check_head(h: Any, pubkey: str | None = None) -> str | None:
    """None if the head is well formed and signed by ``pubkey`` (or its own key), else what
    is wrong."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        size, root = _int(h["tree_size"]), bytes.fromhex(h["root_hash"])
        ms, signature = _int(h["timestamp_ms"]), bytes.fromhex(h["signature"])
        key = bytes.fromhex(pubkey or h["public_key"])
        data = signed_data(size, root, ms)
    except (KeyError, TypeError, ValueError, struct.error):
        return "the head is not a vanta tree head (tree_size, root_hash, timestamp_ms, " \
               "public_key, signature)"
    if size < 1 or len(root) != 32:
        return "the head is not a vanta tree head (a size of 1 or more, a 32-byte root)"
    if pubkey is not None and h.get("public_key") not in (None, pubkey):
        return (f"the head is signed by key {str(h.get('public_key'))[:16]}…, not by the "
                f"key given ({pubkey[:16]}…)")
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return "the head's signature does not verify"
    if "timestamp" in h and h["timestamp"] != fmt_ts(ms * 1000):
        return "the head's timestamp is not the time it signs (timestamp_ms)"
    return None


def _int(value: Any) -> int:
    """An integer field of a head or a proof: a JSON integer, nothing else (``37.5`` or
    ``"37"`` is not a tree size)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not an integer")
    return value


def read_head(doc: Any) -> dict[str, Any] | None:
    """The head of a document: a head itself (`vanta audit head --json`), or a statement
    carrying one."""
    if isinstance(doc, dict) and "tree_size" in doc:
        return doc
    if isinstance(doc, dict) and isinstance(doc.get("head"), dict):
        head_doc: dict[str, Any] = doc["head"]
        return head_doc
    return None


# ---------------------------------------------------------------- rows and proofs


def row_proof(conn: Any, t: stored.JournalTree, seq: int,
              subtree: merkle.Subtree | None = None) -> dict[str, Any]:
    """A journal row with what proves it: its content, its hash and its audit path."""
    found = conn.execute("SELECT seq, ts, kind, payload, prev_hash, hash FROM journal"
                         " WHERE seq = ?", (seq,)).fetchone()
    if found is None:
        raise InputError(f"journal row {seq} does not exist")
    return {"seq": int(found[0]), "ts": found[1], "kind": found[2], "payload": found[3],
            "prev_hash": found[4], "hash": found[5], "leaf_index": seq - 1,
            "leaf_hash": stored.leaf_of(found[5]).hex(), "tree_size": t.size,
            "audit_path": [p.hex() for p in merkle.inclusion_path(subtree or t.subtree,
                                                                   seq - 1, t.size)]}


def cited(doc: dict[str, Any]) -> list[int]:
    """The journal rows a statement cites: its fills, fee entries and payments, and the
    row of its digest (so the digest is proved in the head too)."""
    seqs = {int(f["seq"]) for f in doc["fills"]}
    for e in doc["ledger"]["entries"]:
        seqs.add(int(e["seq"]))
        seqs.update(int(p["seq"]) for p in e["payments"])
    seqs.add(int(str(doc["digest"]).partition(":")[0]))
    return sorted(s for s in seqs if s > 0)


def attach(home_root: Path, conn: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """The statement with its head (signed now, as of the journal it was built from) and
    an inclusion proof of every row it cites (``cited``), in seq order."""
    t = tree(conn)
    signed = head(home_root, conn, t)
    subtree = t.cached()  # proofs share most of their nodes: each is read once
    return {**doc, "head": signed,
            "proofs": [row_proof(conn, t, seq, subtree) for seq in cited(doc)]}


def check_row(r: Any, h: Any) -> str | None:
    """None if the row's content makes its hash and its audit path leads to the head's
    root, else what is wrong."""
    try:
        seq, index = _int(r["seq"]), _int(r["leaf_index"])
        computed = chain(r["prev_hash"], seq, r["ts"], r["kind"], r["payload"])
        path = [bytes.fromhex(p) for p in r["audit_path"]]
        root, size = bytes.fromhex(h["root_hash"]), _int(h["tree_size"])
    except (KeyError, TypeError, ValueError):
        return "a cited row is not a journal row with a proof"
    if computed != r["hash"]:
        return f"journal row {seq}: its content does not make its hash"
    if index != seq - 1:
        return f"journal row {seq}: leaf index {index} is not its place"
    leaf = merkle.leaf_hash(bytes.fromhex(computed))
    if r.get("leaf_hash", leaf.hex()) != leaf.hex():
        return f"journal row {seq}: its leaf_hash is not SHA-256(0x00 ‖ its hash)"
    if r.get("tree_size", size) != size:
        return f"journal row {seq}: proved in a tree of {r['tree_size']} rows, not the head's"
    if not merkle.verify_inclusion(leaf, index, size, path, root):
        return f"journal row {seq}: its proof does not lead to the head's root"
    return None


def consistency(conn: Any, old: Any, new: Any) -> dict[str, Any]:
    """The RFC 6962 consistency proof from head ``old`` to head ``new``, checked against
    this database's journal."""
    t = tree(conn)
    o, n = int(old["tree_size"]), int(new["tree_size"])
    if o > n:
        raise Refused(f"the old head has more rows ({o}) than the new one ({n}): a journal "
                      "only grows (the two swapped?)")
    if n > t.size:
        raise Refused(f"the new head has {n} rows, this journal only {t.size}: it was "
                      "truncated since, or is not the journal of these heads")
    for name, h in (("old", old), ("new", new)):
        if t.root(int(h["tree_size"])).hex() != h["root_hash"]:
            raise Refused(f"the {name} head is not this journal's: its root at "
                          f"{h['tree_size']} rows differs")
    proof = merkle.consistency_proof(t.subtree, o, n)
    return {"old_size": o, "new_size": n, "proof": [p.hex() for p in proof],
            "consistent": merkle.verify_consistency(o, n, bytes.fromhex(old["root_hash"]),
                                                    bytes.fromhex(new["root_hash"]), proof)}
