"""Regenerate the demo's sample data in vanta_box/sample/ (deterministic; integers only).

    python build/make_sample.py

Prices are a seeded random walk in basis points; signals are weekly per persona.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "vanta_box" / "sample"
START = date(2026, 10, 1)
DAYS = 51  # 2026-10-01 .. 2026-11-20

EQUITIES = {"AAPL": 23150, "MSFT": 41820, "NVDA": 13240, "AMZN": 18975, "GOOGL": 16530,
            "META": 56210, "JPM": 20480, "XOM": 11865}
CRYPTO = {"BTC/USD": 6712500, "ETH/USD": 263040, "SOL/USD": 15890, "LINK/USD": 1342}
PERSONAS = ["risk_averse", "contrarian", "aggressive"]


def walk(rng: random.Random, start_cents: int, vol_bps: int, drift_bps: int) -> list[int]:
    prices, p = [], start_cents
    for _ in range(DAYS):
        prices.append(p)
        move = rng.randint(-vol_bps, vol_bps) + drift_bps
        p = max(1, p + p * move // 10000)
    return prices


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def main() -> None:
    rng = random.Random(20261101)
    OUT.mkdir(parents=True, exist_ok=True)
    vault = {"vaults": [{
        "vault_id": "V_CORE", "label": "Core Discretionary", "base_currency": "USD",
        "crypto_enabled": True, "fiat_enabled": True, "personas": PERSONAS,
        "risk": {"max_drawdown": "0.12", "max_single_pos_pct": "0.15", "cash_buffer": "0.05"},
        "rebalance": {"drift_band": "0.005", "min_order_notional": "25"},
        "mirroring": {"mode": "proportional", "min_account_equity": "5000",
                      "fee": {"type": "performance_or_flat", "flat_usd": "2000",
                              "perf_share": "0.20"}},
        "paper": {"slippage_bps": "5", "commission_bps": "1"},
    }]}
    (OUT / "vault.json").write_text(json.dumps(vault, indent=2) + "\n")
    instruments = [{"symbol": s, "asset_class": "equity", "lot_step": "1", "min_notional": "1"}
                   for s in EQUITIES]
    instruments += [{"symbol": s, "asset_class": "crypto", "lot_step": "0.0001",
                     "min_notional": "10"} for s in CRYPTO]
    (OUT / "instruments.json").write_text(json.dumps(instruments, indent=2) + "\n")
    lines = ["symbol,ts,price"]
    for symbol, start in {**EQUITIES, **CRYPTO}.items():
        vol = 320 if symbol in CRYPTO else 180
        drift = rng.randint(-25, 40)
        for day, cents in enumerate(walk(rng, start, vol, drift)):
            ts = (START + timedelta(days=day)).isoformat() + "T00:00:00Z"
            lines.append(f"{symbol},{ts},{money(cents)}")
    (OUT / "prices.csv").write_text("\n".join(lines) + "\n")
    symbols = list(EQUITIES) + list(CRYPTO)
    for week in range(7):
        as_of = START + timedelta(days=4 + 7 * week)
        scores = []
        for symbol in symbols:
            for persona in PERSONAS:
                if rng.random() < 0.55:
                    score = rng.randint(-60, 95)
                    scores.append({"symbol": symbol, "score": ("-" if score < 0 else "")
                                   + money(abs(score)),
                                   "persona": persona})
        doc = {"vault_id": "V_CORE", "as_of": as_of.isoformat() + "T00:00:00Z",
               "scores": scores}
        (OUT / "signals" / f"{as_of.isoformat()}.json").write_text(json.dumps(doc, indent=2) + "\n")
    packets = [
        ("M_CORE", "manager", {"kind": "paper", "starting_cash": "1000000"}, None, None),
        ("F1001", "follower", {"kind": "paper", "starting_cash": "250000"},
         {"mode": "proportional", "multiplier": "1"}, None),
        ("F1002", "follower", {"kind": "paper", "starting_cash": "120000"},
         {"mode": "capped", "multiplier": "1", "cap_usd": "50000", "max_position_pct": "0.10",
          "max_order_notional": "4000"}, None),
        ("F1003", "follower", {"kind": "paper", "starting_cash": "80000"},
         {"mode": "shadow", "multiplier": "1"}, None),
        ("F1004", "follower", {"kind": "paper", "starting_cash": "3000"},
         {"mode": "proportional", "multiplier": "1"}, None),
        ("F1005", "follower", {"kind": "paper", "starting_cash": "60000"},
         {"mode": "proportional", "multiplier": "0.5"}, None),
        ("F1006", "follower", {"kind": "paper", "starting_cash": "150000",
                               "commission_bps": "2"},
         {"mode": "proportional", "multiplier": "1"}, ["risk_averse"]),
    ]
    for account_id, role, broker, mirroring, prefs in packets:
        packet = {"packet_version": 1, "account_id": account_id, "role": role,
                  "vault_id": "V_CORE", "broker": broker,
                  "accepted_at": "2026-10-01T00:00:00Z"}
        if role == "follower":
            packet["mirroring"] = mirroring
            packet["fee_agreement"] = {"type": "performance_or_flat", "perf_share": "0.20",
                                       "flat_usd": "2000"}
            if prefs:
                packet["persona_prefs"] = prefs
        (OUT / "packets" / f"{account_id}.json").write_text(json.dumps(packet, indent=2) + "\n")


if __name__ == "__main__":
    main()
