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
import struct
from pathlib import Path
from typing import Any

from vanta_box.core.errors import InputError, Refused
from vanta_box.core.timeutil import fmt_ts, parse_ts
from vanta_box.domain import merkle
from vanta_box.store import merkle as stored
from vanta_box.store.journal import chain

KEY_FILE = "signing.key"
SCHEME = "ed25519 over the RFC 6962 TreeHeadSignature (v1, tree_hash, ms, size, root)"


# ---------------------------------------------------------------- the signing key


def create_key(home_root: Path, conn: Any, at: int) -> str:
    """The home's signing key (made once, mode 0600); returns its public key (hex)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = home_root / KEY_FILE
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes_raw()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(raw.hex().encode() + b"\n")
    public: str = _private(home_root).public_key().public_bytes_raw().hex()
    with conn:
        conn.execute("INSERT INTO audit_keys (public_key, created_at) VALUES (?, ?)"
                     " ON CONFLICT (public_key) DO NOTHING", (public, at))
    return public


def _private(home_root: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = home_root / KEY_FILE
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise Refused(f"no signing key in {home_root} (run `vanta init`)") from None
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text))


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
    """The journal's tree, extended to its last full block first (a short write)."""
    t = stored.JournalTree(conn)
    if t.size // stored.BLOCK * stored.BLOCK > t.covered():
        with conn:
            t.extend()
    return t


def head(home_root: Path, conn: Any, t: stored.JournalTree | None = None) -> dict[str, Any]:
    """The signed head of the journal as it is: its time is the last row's (so the same
    journal gives the same head)."""
    t = t or tree(conn)
    if t.size == 0:
        raise Refused("the journal is empty: nothing to sign")
    row = conn.execute("SELECT ts FROM journal WHERE seq = ?", (t.size,)).fetchone()
    ms = parse_ts(str(row[0])) // 1000
    root = t.root()
    key = _private(home_root)
    return {"tree_size": t.size, "root_hash": root.hex(), "timestamp": fmt_ts(ms * 1000),
            "timestamp_ms": ms, "public_key": key.public_key().public_bytes_raw().hex(),
            "signature": key.sign(signed_data(t.size, root, ms)).hex(), "scheme": SCHEME}


def check_head(h: Any, pubkey: str | None = None) -> str | None:
    """None if the head is well formed and signed by ``pubkey`` (or its own key), else what
    is wrong."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        size, root = int(h["tree_size"]), bytes.fromhex(h["root_hash"])
        ms, signature = int(h["timestamp_ms"]), bytes.fromhex(h["signature"])
        key = bytes.fromhex(pubkey or h["public_key"])
    except (KeyError, TypeError, ValueError):
        return "the head is not a vanta tree head (tree_size, root_hash, timestamp_ms, " \
               "public_key, signature)"
    if pubkey is not None and h.get("public_key") not in (None, pubkey):
        return "the head names another public key than the one given"
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, signed_data(size, root, ms))
    except (InvalidSignature, ValueError):
        return "the head's signature does not verify"
    return None


# ---------------------------------------------------------------- rows and proofs


def row_proof(conn: Any, t: stored.JournalTree, seq: int) -> dict[str, Any]:
    """A journal row with what proves it: its content, its hash and its audit path."""
    found = conn.execute("SELECT seq, ts, kind, payload, prev_hash, hash FROM journal"
                         " WHERE seq = ?", (seq,)).fetchone()
    if found is None:
        raise InputError(f"journal row {seq} does not exist")
    return {"seq": int(found[0]), "ts": found[1], "kind": found[2], "payload": found[3],
            "prev_hash": found[4], "hash": found[5], "leaf_index": seq - 1,
            "audit_path": [p.hex() for p in merkle.inclusion_path(t.subtree, seq - 1,
                                                                   t.size)]}


def check_row(r: Any, h: Any) -> str | None:
    """None if the row's content makes its hash and its audit path leads to the head's
    root, else what is wrong."""
    try:
        seq, index = int(r["seq"]), int(r["leaf_index"])
        computed = chain(r["prev_hash"], seq, r["ts"], r["kind"], r["payload"])
        path = [bytes.fromhex(p) for p in r["audit_path"]]
        root, size = bytes.fromhex(h["root_hash"]), int(h["tree_size"])
    except (KeyError, TypeError, ValueError):
        return "a cited row is not a journal row with a proof"
    if computed != r["hash"]:
        return f"journal row {seq}: its content does not make its hash"
    if index != seq - 1:
        return f"journal row {seq}: leaf index {index} is not its place"
    if not merkle.verify_inclusion(merkle.leaf_hash(bytes.fromhex(computed)), index, size,
                                   path, root):
        return f"journal row {seq}: its proof does not lead to the head's root"
    return None


def consistency(conn: Any, old: Any, new: Any) -> dict[str, Any]:
    """The RFC 6962 consistency proof from head ``old`` to head ``new``, checked against
    this database's journal."""
    t = tree(conn)
    o, n = int(old["tree_size"]), int(new["tree_size"])
    if not 0 < o <= n <= t.size:
        raise Refused(f"no proof from {o} to {n} rows: this journal has {t.size}")
    for name, h in (("old", old), ("new", new)):
        if t.root(int(h["tree_size"])).hex() != h["root_hash"]:
            raise Refused(f"the {name} head is not this journal's: its root at "
                          f"{h['tree_size']} rows differs")
    proof = merkle.consistency_proof(t.subtree, o, n)
    return {"old_size": o, "new_size": n, "proof": [p.hex() for p in proof],
            "consistent": merkle.verify_consistency(o, n, bytes.fromhex(old["root_hash"]),
                                                    bytes.fromhex(new["root_hash"]), proof)}
