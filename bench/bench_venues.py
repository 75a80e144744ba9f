#!/usr/bin/env python3
"""Benchmark of the fan-out to many live accounts (issue 11).

Run:  .venv/bin/python bench/bench_venues.py [--accounts 1000] [--orders 10] [--down 0.1]
      .venv/bin/python bench/bench_venues.py --quick     # 20 accounts x 3 orders

Scenario: one vault, a paper manager and N followers on Alpaca (the real alpaca-py client,
pointed with `base_url` at tests/alpaca_sim.py on 127.0.0.1) with 20 ms added to every
answer and the venue's 200 requests/minute per account; each order is accepted, then
filled on the next poll. Cycle 1 (timed) reconciles every account, writes ahead and sends
its orders, and polls until all are filled.

Floor, in the same run: the very HTTP exchanges the cycle made (read back from the
server's log), sent to a fresh server by a bare `requests.Session` per thread, at the same
concurrency (VANTA_VENUE_WORKERS threads, one account's requests in order), with no vanta
work at all. Then cycle 2 with a share of the accounts' venue down (requests that hang past
the client's timeout): the others must finish as if it were up.

Nothing here is a test; tests never time anything.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.alpaca_sim import AlpacaSim, SimRequest  # noqa: E402
from vanta_box.core.timeutil import parse_ts  # noqa: E402
from vanta_box.keystore import Keystore  # noqa: E402
from vanta_box.service import accounts as accounts_service  # noqa: E402
from vanta_box.service import cycle as cycle_service  # noqa: E402
from vanta_box.service import setup  # noqa: E402
from vanta_box.service.engine import Engine  # noqa: E402
from vanta_box.service.venues import LiveVenues  # noqa: E402
from vanta_box.store import db, journal  # noqa: E402

T0 = "2026-11-02T00:00:00Z"
T1 = "2026-11-03T00:00:00Z"
T2 = "2026-11-04T00:00:00Z"
T3 = "2026-11-05T00:00:00Z"
LATENCY = 0.02  # seconds per answer, not money


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def keys(n: int) -> tuple[str, str]:
    return f"PKBENCH{n:05d}", f"bench-secret-{n:05d}-0123456789abcdef"


def prepare(sim: AlpacaSim, accounts: int, symbols: list[str]) -> None:
    for i, s in enumerate(symbols):
        sim.set_price(s, str(10 + i))
    for n in range(accounts):
        sim.add_account(*keys(n), cash="50000")


def generate(directory: Path, base_url: str, accounts: int, symbols: list[str]) -> list[str]:
    (directory / "vault.json").write_text(json.dumps({"vaults": [{
        "vault_id": "V", "label": "bench", "personas": ["a"],
        "rebalance": {"min_order_notional": "10"}}]}))
    (directory / "instruments.json").write_text(json.dumps([
        {"symbol": s, "asset_class": "equity", "lot_step": "1", "min_notional": "1"}
        for s in symbols]))
    (directory / "prices.csv").write_text("symbol,ts,price\n" + "".join(
        f"{s},{T0},{10 + i}\n{s},{T1},{11 + i}\n{s},{T2},{10 + i}\n{s},{T3},{11 + i}\n"
        for i, s in enumerate(symbols)))
    (directory / "signals.json").write_text(json.dumps({"vault_id": "V", "as_of": T0,
        "scores": [{"symbol": s, "score": "0.5"} for s in symbols]}))
    packets = [{"packet_version": 1, "account_id": "M", "role": "manager", "vault_id": "V",
                "broker": {"kind": "paper", "starting_cash": "1000000"}}]
    for n in range(accounts):
        key, secret = keys(n)
        packets.append({"packet_version": 1, "account_id": f"F{n:05d}", "role": "follower",
                        "vault_id": "V", "broker": {"kind": "alpaca", "key_id": key,
                                                    "secret_key": secret, "paper": True,
                                                    "base_url": base_url},
                        "fee_agreement": {"type": "flat", "flat_usd": "10"}})
    paths = []
    for p in packets:
        path = directory / f"{p['account_id']}.json"
        path.write_text(json.dumps(p))
        paths.append(str(path))
    return paths


def floor(requests_seen: list[SimRequest], accounts: int, symbols: list[str],
          workers: int) -> float:
    """The same exchanges, by a bare client at the same concurrency, to a fresh server."""
    import requests

    by_key: dict[str, list[SimRequest]] = defaultdict(list)
    for r in requests_seen:
        by_key[r.key or ""].append(r)
    secrets = dict(keys(n) for n in range(accounts))
    with AlpacaSim() as sim:
        sim.latency = LATENCY
        prepare(sim, accounts, symbols)
        local = __import__("threading").local()

        def work(key: str) -> None:
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
            headers = {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secrets.get(key, "")}
            for r in by_key[key]:
                session.request(r.method, f"{sim.base_url}{r.path}", params=r.query or None,
                                data=r.raw_body or None, headers=headers, timeout=10)

        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, sorted(by_key)))
        return time.perf_counter() - start


def timed(eng: Engine, sim: AlpacaSim, at: str) -> tuple[float, int, int]:
    """(wall seconds, child orders, HTTP requests) of one cycle."""
    sim.requests.clear()
    start = time.perf_counter()
    (report,) = eng.run(cycle_service.cycle_command(eng, "V", parse_ts(at), False))
    return time.perf_counter() - start, report.child_orders, len(sim.requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--orders", type=int, default=10, help="orders per account")
    parser.add_argument("--down", type=float, default=0.1, help="share of venues down in "
                        "cycle 2")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    accounts, orders = (20, 3) if args.quick else (args.accounts, args.orders)
    symbols = [f"S{i:02d}" for i in range(orders)]
    workers = LiveVenues().workers
    with tempfile.TemporaryDirectory() as tmp, AlpacaSim() as sim:
        sim.latency = LATENCY
        prepare(sim, accounts, symbols)
        home = Path(tmp)
        paths = generate(home, sim.base_url, accounts, symbols)
        conn = db.connect(home / "vanta.db")
        db.migrate(conn)
        keystore = Keystore(home / "keystore", passphrase="bench passphrase")
        eng = Engine(conn, LiveVenues(keystore))
        t0 = parse_ts(T0)
        eng.run(setup.vault_import_command(str(home / "vault.json"), t0))
        eng.run(setup.instruments_import_command(str(home / "instruments.json"), t0))
        eng.run(setup.prices_ingest_command(eng, str(home / "prices.csv"), t0))
        eng.run(setup.signals_ingest_command(eng, str(home / "signals.json"), t0))
        accounts_service.onboard_many(eng, paths, t0, t0, keystore)
        before = journal.head(conn).seq
        start = time.perf_counter()
        (report,) = eng.run(cycle_service.cycle_command(eng, "V", parse_ts(T1), False))
        wall = time.perf_counter() - start
        exchanges = list(sim.requests)
        sent = len(sim.order_posts())
        rows = journal.head(conn).seq - before
        rss_cycle = peak_mib()

        up = timed(eng, sim, T2)
        down = int(accounts * args.down)
        sim.down_keys = {keys(n)[0] for n in range(0, accounts, max(1, accounts // max(1, down)))
                         } if down else set()
        cut = timed(eng, sim, T3)
        conn.close()
    floor_s = floor(exchanges, accounts, symbols, workers)
    http = len(exchanges)
    print(f"venues benchmark: paper manager + {accounts} Alpaca followers x {orders} orders "
          f"(loopback server, {LATENCY * 1000:.0f} ms a request, 200/min per account, "
          f"{workers} workers)")
    print(f"cycle 1: {report.child_orders} child orders, {report.fills} filled, {sent} orders "
          f"sent, {http} HTTP requests, {rows:,} journal rows")
    print(f"  wall {wall:.2f} s; {sent / wall:.1f} orders/s; {http / wall:.1f} requests/s")
    print(f"  floor (the same {http} exchanges, bare requests.Session, {workers} threads): "
          f"{floor_s:.2f} s ({http / floor_s:.1f} requests/s) -> ratio {wall / floor_s:.2f}x")
    print(f"  peak RSS {rss_cycle:.0f} MiB")
    print(f"cycle 2, every venue up: wall {up[0]:.2f} s, {up[1]} orders, {up[2]} requests")
    print(f"cycle 3, {len(sim.down_keys)} of {accounts} venues down (requests hang "
          f"{sim.hang:.0f} s, past the client's timeout): wall {cut[0]:.2f} s, {cut[1]} "
          f"orders, {cut[2]} requests -> {cut[0] - up[0]:+.2f} s against cycle 2")
    print(f"peak RSS {peak_mib():.0f} MiB")


if __name__ == "__main__":
    main()
