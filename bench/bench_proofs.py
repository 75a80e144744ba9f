#!/usr/bin/env python3
"""Benchmark of the proofs of SPEC §10: a signed head and 1,000 inclusion proofs (one
statement's fills) on a journal of 1,000,000 rows, and what the Merkle tree costs per
appended row.

Run:  .venv/bin/python bench/bench_proofs.py [--rows 1000000] [--fills 1000] [--keep DIR]
      .venv/bin/python bench/bench_proofs.py --quick      # 20,000 rows, 50 fills

The journal is synthetic: building a million rows through the engine's commands (cycles
of thousands of followers) takes many minutes and proves nothing more here, so rows are
appended with vanta's own ``Journal`` (canonical payloads, the real hash chain, the
append-only triggers), shaped like fills of 500 accounts. Not timed. Then, in the same
run:
  * extend: the stored tree built over the whole journal from nothing (what the first
    head of an old home pays once), then extended after 10,000 more rows, per row, beside
    appending those rows (the floor: the journal's own cost per row);
  * head + proofs: ``proofs.attach`` of a statement citing N fills of one account spread
    over the journal (tree extended, head signed, every audit path read), beside a floor:
    the N rows read by seq plus the SHA-256 a checker spends on their paths;
  * the follower's side: ``proof verify``'s checks of the head and every proof;
  * verify's recomputation of every stored node (``mismatches``) over the journal.
Nothing here is a test; tests never time anything (tests/test_bench_smoke.py runs --quick).
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vanta_box.service import proofs
from vanta_box.store import db
from vanta_box.store import merkle as stored
from vanta_box.store.journal import Journal

ACCOUNTS = 500
TS = "2027-02-01T00:00:00Z"


def append(conn: Any, journal: Journal, rows: int, start: int = 0) -> None:
    """``rows`` fill-shaped rows, committed 50,000 at a time."""
    done = 0
    while done < rows:
        n = min(50_000, rows - done)
        with conn:
            for i in range(start + done, start + done + n):
                journal.append(TS, "fill", {
                    "account_id": f"F{i % ACCOUNTS:04d}", "fill_id": f"bench/{i}",
                    "order_id": f"bench/{i}", "symbol": f"S{i % 50:03d}", "side": "buy",
                    "qty": str(1 + i % 97), "price": f"{100 + i % 13}.25",
                    "commission": "0.01", "realized_pnl": "0", "venue": "paper"})
            journal.flush()
        done += n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--fills", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="20,000 rows, 50 fills")
    parser.add_argument("--keep", type=Path, default=None,
                        help="Build (or reuse) the journal in this directory.")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.fills = 20_000, 50
    work = args.keep or Path(tempfile.mkdtemp(prefix="vanta-bench-proofs-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "vanta.db"
    try:
        fresh = not path.exists()
        conn = db.connect(path)
        db.migrate(conn)
        journal = Journal(conn)
        if fresh:
            print(f"building a journal of {args.rows:,} rows (not timed)", flush=True)
            append(conn, journal, args.rows)
        with conn:
            conn.execute("DELETE FROM merkle_nodes")
        rows = journal.seq
        proofs.ensure_key(work)

        # extend: the whole tree from nothing, then 10,000 more rows
        start = time.perf_counter()
        with conn:
            stored.JournalTree(conn).extend()
        build_s = time.perf_counter() - start
        more = 10_000
        start = time.perf_counter()
        append(conn, journal, more, start=rows)
        append_s = time.perf_counter() - start
        start = time.perf_counter()
        with conn:
            stored.JournalTree(conn).extend()
        extend_s = time.perf_counter() - start
        total = journal.seq

        # a statement citing N fills of one account, spread over the journal
        account = 7
        step = max(ACCOUNTS, total // args.fills // ACCOUNTS * ACCOUNTS)
        seqs = [account + 1 + k * step for k in range(args.fills) if account + 1 + k * step
                <= total]
        last = conn.execute("SELECT hash FROM journal WHERE seq = ?", (total,)).fetchone()[0]
        doc = {"fills": [{"seq": s} for s in seqs], "ledger": {"entries": []},
               "digest": f"{total}:{last}"}
        start = time.perf_counter()
        attached = proofs.attach(work, conn, doc)
        attach_s = time.perf_counter() - start
        path_hashes = sum(len(p["audit_path"]) for p in attached["proofs"])

        # floor: the cited rows read by seq, and the hashes a checker does on their paths
        start = time.perf_counter()
        for s in seqs:
            conn.execute("SELECT seq, ts, kind, payload, prev_hash, hash FROM journal"
                         " WHERE seq = ?", (s,)).fetchone()
        node = hashlib.sha256(b"x").digest()
        for _ in range(path_hashes):
            node = hashlib.sha256(b"\x01" + node + node).digest()
        floor_s = time.perf_counter() - start

        # the follower's side: the head and every proof checked, with no database
        start = time.perf_counter()
        assert proofs.check_head(attached["head"]) is None
        for p in attached["proofs"]:
            assert proofs.check_row(p, attached["head"]) is None
        check_s = time.perf_counter() - start

        start = time.perf_counter()
        assert stored.mismatches(conn) == []
        mismatch_s = time.perf_counter() - start
        size = db.file_size(path) / 1_048_576
        conn.close()

        print()
        print(f"proofs benchmark: journal of {total:,} rows (synthetic fills of "
              f"{ACCOUNTS:,} accounts), {size:,.0f} MiB")
        print(f"tree from nothing: {build_s:,.2f} s for {total - more:,} rows -> "
              f"{build_s / (total - more) * 1e6:,.2f} µs a row (once, for an old home)")
        print(f"append {more:,} rows (the floor): {append_s * 1e6 / more:,.2f} µs a row; "
              f"extend after them: {extend_s * 1e6 / more:,.2f} µs a row, ratio "
              f"{extend_s / append_s:,.3f} of appending")
        print(f"head + {len(seqs):,} proofs (one statement): {attach_s * 1e3:,.1f} ms "
              f"({path_hashes:,} path hashes); floor (rows read by seq + their path hashes) "
              f"{floor_s * 1e3:,.1f} ms, ratio {attach_s / floor_s:,.1f}x")
        print(f"proof verify's checks (head + {len(seqs):,} proofs, no database): "
              f"{check_s * 1e3:,.1f} ms")
        print(f"verify's recomputation of every stored node: {mismatch_s:,.2f} s -> "
              f"{total / mismatch_s:,.0f} rows/s")
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {own:,.0f} MiB (this process{', build included' if fresh else ''})")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
