#!/usr/bin/env python3
"""Benchmark of live execution against the loopback Alpaca server of the tests.

Run:  .venv/bin/python bench/bench_live.py [--followers 40] [--instruments 5]
      .venv/bin/python bench/bench_live.py --quick     # 5 followers x 3 instruments

Scenario: one vault, a paper manager and N followers on Alpaca (the real alpaca-py client,
pointed with `base_url` at tests/alpaca_sim.py on 127.0.0.1, orders filled at once), each
holding every instrument after cycle 1 (timed: reconcile, then write-ahead orders, one
request and two commits each).

Floor, in the same run: the same number of POST /v2/orders sent with a plain
`requests.Session` to the same server (no journal, no commit): what the HTTP round trips
alone cost. The ratio shows what the write-ahead commits and the reconciliation add.

Nothing here is a test; tests never time anything.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.alpaca_sim import AlpacaSim  # noqa: E402
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


def generate(directory: Path, sim: AlpacaSim, followers: int, instruments: int) -> list[str]:
    symbols = [f"S{i:02d}" for i in range(instruments)]
    (directory / "vault.json").write_text(json.dumps({"vaults": [{
        "vault_id": "V", "label": "bench", "personas": ["a"],
        "rebalance": {"min_order_notional": "10"}}]}))
    (directory / "instruments.json").write_text(json.dumps([
        {"symbol": s, "asset_class": "equity", "lot_step": "1", "min_notional": "1"}
        for s in symbols]))
    (directory / "prices.csv").write_text("symbol,ts,price\n" + "".join(
        f"{s},{T0},{10 + i}\n" for i, s in enumerate(symbols)))
    (directory / "signals.json").write_text(json.dumps({"vault_id": "V", "as_of": T0,
        "scores": [{"symbol": s, "score": "0.5"} for s in symbols]}))
    for i, s in enumerate(symbols):
        sim.set_price(s, str(10 + i))
    packets = [{"packet_version": 1, "account_id": "M", "role": "manager", "vault_id": "V",
                "broker": {"kind": "paper", "starting_cash": "1000000"}}]
    for n in range(followers):
        key, secret = f"PKBENCH{n:05d}", f"bench-secret-{n:05d}-0123456789abcdef"
        sim.add_account(key, secret, cash="50000")
        packets.append({"packet_version": 1, "account_id": f"F{n:05d}", "role": "follower",
                        "vault_id": "V", "broker": {"kind": "alpaca", "key_id": key,
                                                    "secret_key": secret, "paper": True,
                                                    "base_url": sim.base_url},
                        "fee_agreement": {"type": "flat", "flat_usd": "10"}})
    paths = []
    for p in packets:
        path = directory / f"{p['account_id']}.json"
        path.write_text(json.dumps(p))
        paths.append(str(path))
    return paths


def floor(sim: AlpacaSim, orders: int) -> float:
    import requests

    key, secret = "PKFLOOR", "floor-secret"
    sim.add_account(key, secret, cash="1000000000")
    session = requests.Session()
    headers = {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret}
    start = time.perf_counter()
    for n in range(orders):
        session.post(f"{sim.base_url}/v2/orders", headers=headers, timeout=10, json={
            "symbol": "S00", "qty": "1", "side": "buy", "type": "market",
            "time_in_force": "day", "client_order_id": f"floor-{n}"}).raise_for_status()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=40)
    parser.add_argument("--instruments", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    followers, instruments = (5, 3) if args.quick else (args.followers, args.instruments)
    with tempfile.TemporaryDirectory() as tmp, AlpacaSim() as sim:
        sim.fill_on_submit = True
        home = Path(tmp)
        paths = generate(home, sim, followers, instruments)
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
        requests_before = len(sim.requests)
        start = time.perf_counter()
        (report,) = eng.run(cycle_service.cycle_command(eng, "V", parse_ts(T1), False))
        wall = time.perf_counter() - start
        sent = len(sim.order_posts()) - 0
        rows = journal.head(conn).seq - before
        http = len(sim.requests) - requests_before
        conn.close()
        floor_s = floor(sim, sent)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"live benchmark: 1 vault, {instruments} instruments, paper manager + {followers} "
          f"Alpaca followers (loopback server, fills at once)")
    print(f"cycle 1: {report.child_orders} child orders, {report.fills} filled, {sent} orders "
          f"sent, {http} HTTP requests, {rows:,} journal rows")
    print(f"  wall {wall:.2f} s; {sent / wall:.1f} orders/s; {http / wall:.1f} requests/s")
    print(f"  floor (the same {sent} POST /v2/orders, plain requests.Session): {floor_s:.2f} s "
          f"({sent / floor_s:.1f} orders/s) -> ratio {wall / floor_s:.2f}x")
    print(f"  peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
