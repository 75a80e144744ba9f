"""Black-box harness: the vanta CLI in subprocesses, against tests/blackbox_alpaca.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from tests.blackbox_alpaca import AlpacaBlackbox, Asset

D = Decimal
ROOT = Path(__file__).resolve().parents[1]
VANTA = str(Path(sys.executable).parent / "vanta")  # the venv running the tests
PASS = "bb-passphrase-Zq81"

# base time: two days ago, whole hour (so every --at is in the past)
BASE = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)


def at(hours: float) -> str:
    return (BASE + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def at_dt(hours: float) -> datetime:
    return BASE + timedelta(hours=hours)


@dataclass
class R:
    code: int
    out: str
    err: str
    cmd: list[str]

    def __str__(self) -> str:
        return f"$ {' '.join(self.cmd)}\n-> exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}"  # noqa: E501


INSTRUMENTS = [
    {"symbol": "AAPL", "asset_class": "equity", "lot_step": "0.01", "min_notional": "1"},
    {"symbol": "MSFT", "asset_class": "equity", "lot_step": "1", "min_notional": "1"},
    {"symbol": "BTC/USD", "asset_class": "crypto", "lot_step": "0.0001", "min_notional": "10"},
]
LOT = {i["symbol"]: D(i["lot_step"]) for i in INSTRUMENTS}
MINN = {i["symbol"]: D(i["min_notional"]) for i in INSTRUMENTS}
WEIGHTS = {"AAPL": D("0.5"), "MSFT": D("0.3"), "BTC/USD": D("0.2")}
# secrets distinctive enough to scan for
SECRETS = {
    "F1": ("PKBBF1KEYID00000AAAA", "bbsecretF1-9f8e7d6c5b4a3928171605fedcba98765432"),
    "F2": ("PKBBF2KEYID00000BBBB", "bbsecretF2-1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b"),
    "F3": ("PKBBF3KEYID00000CCCC", "bbsecretF3-77aa88bb99cc00dd11ee22ff33004455aa66"),
}
CASH = {"F1": "98765.43", "F2": "51234.57", "F3": "25555.55"}


class Env:
    def __init__(self, tmp: Path, seed: int = 7) -> None:
        self.tmp = tmp
        self.home = tmp / "home"
        self.inp = tmp / "in"
        self.inp.mkdir(parents=True, exist_ok=True)
        self.sim = AlpacaBlackbox(seed=seed)
        self.sim.add_asset(Asset("AAPL", "us_equity", D("199.95")))
        self.sim.add_asset(Asset("MSFT", "us_equity", D("399.90")))
        self.sim.add_asset(Asset("BTC/USD", "crypto", D("49990"), min_order_size="0.000025",
                                 min_trade_increment="0.000000001", price_increment="1"))
        for acc, (k, sec) in SECRETS.items():
            self.sim.add_account(k, sec, CASH[acc])
        self.url = self.sim.start()
        self.marks: dict[str, dict[str, Decimal]] = {}  # --at -> symbol -> mark
        self.n = 0
        self.history: list[R] = []
        self.env = dict(os.environ, VANTA_PASSPHRASE=PASS)
        self.env.pop("VANTA_HOME", None)

    def key(self, acc: str) -> str:
        return SECRETS[acc][0]

    # ---- running ----------------------------------------------------------------------
    def argv(self, *args: str) -> list[str]:
        return [VANTA, "--home", str(self.home), *args]

    def run(self, *args: str, timeout: float = 300) -> R:
        cmd = self.argv(*args)
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.env,
                           timeout=timeout, check=False)
        r = R(p.returncode, p.stdout, p.stderr, cmd)
        self.history.append(r)
        return r

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env)

    def ok(self, *args: str, codes: tuple[int, ...] = (0,)) -> R:
        r = self.run(*args)
        assert r.code in codes, str(r)
        return r

    def write(self, name: str, obj: Any) -> str:
        self.n += 1
        p = self.inp / f"{self.n:03d}_{name}"
        p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
        return str(p)

    # ---- set-up -----------------------------------------------------------------------
    def setup(self, followers: tuple[str, ...] = ("F1", "F2", "F3"), t0: float = 0) -> None:
        self.ok("init")
        vault = {"vaults": [{
            "vault_id": "V_BB", "label": "Black box", "base_currency": "USD",
            "crypto_enabled": True, "fiat_enabled": True, "personas": ["core"],
            "risk": {"max_single_pos_pct": "1", "cash_buffer": "0"},
            "rebalance": {"drift_band": "0", "min_order_notional": "1"},
            "mirroring": {"mode": "proportional", "min_account_equity": "0",
                          "fee": {"type": "performance", "perf_share": "0.2"}},
            "schedule": {"every": "1d", "offset": "0s"},
        }]}
        self.ok("vault", "import", self.write("vault.json", vault), "--at", at(t0))
        self.ok("instruments", "import", self.write("instruments.json", INSTRUMENTS),
                "--at", at(t0))
        self.prices(t0, {"AAPL": "200", "MSFT": "400", "BTC/USD": "50000"})
        packets = [self.write("mgr.json", {
            "packet_version": 1, "account_id": "M0", "role": "manager", "vault_id": "V_BB",
            "broker": {"kind": "paper", "starting_cash": "1000000"},
            "accepted_at": at(t0)})]
        for acc in followers:
            k, sec = SECRETS[acc]
            packets.append(self.write(f"{acc}.json", {
                "packet_version": 1, "account_id": acc, "role": "follower",
                "vault_id": "V_BB",
                "broker": {"kind": "alpaca", "key_id": k, "secret_key": sec, "paper": True,
                           "base_url": self.url},
                "mirroring": {"mode": "proportional", "multiplier": "1"},
                "fee_agreement": {"type": "performance", "perf_share": "0.2"},
                "accepted_at": at(t0)}))
        self.ok("onboard", *packets, "--at", at(t0))
        self.ok("signals", "ingest", self.write("sig.json", {
            "vault_id": "V_BB", "as_of": at(t0),
            "scores": [{"symbol": s, "score": str(w)} for s, w in WEIGHTS.items()]}),
            "--at", at(t0))

    def prices(self, t: float, marks: dict[str, str]) -> None:
        rows = "symbol,ts,price\n" + "".join(f"{s},{at(t)},{p}\n" for s, p in marks.items())
        self.ok("prices", "ingest", self.write("prices.csv", rows), "--at", at(t))
        self.marks[at(t)] = {s: D(p) for s, p in marks.items()}

    def mark_at(self, t: float) -> dict[str, Decimal]:
        ts = at(t)
        best: dict[str, Decimal] = {}
        for k in sorted(self.marks):
            if k <= ts:
                best.update(self.marks[k])
        return best

    # ---- reading the home -------------------------------------------------------------
    def memory(self, name: str) -> Any:
        return json.loads((self.home / "memory" / name).read_text())

    def trade_log(self) -> list[dict[str, Any]]:
        p = self.home / "memory" / "trade_log.jsonl"
        return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]

    def portfolio(self, acc: str) -> dict[str, Any]:
        for a in self.memory("portfolio.json")["accounts"]:
            if a["account_id"] == acc:
                return a  # type: ignore[no-any-return]
        raise KeyError(acc)

    # ---- the venue's truth ------------------------------------------------------------
    def venue_positions(self, acc: str) -> dict[str, Decimal]:
        a = self.sim.accounts[self.key(acc)]
        out = {}
        for ps, q in a.positions.items():
            asset = self.sim.find_asset(ps)
            assert asset is not None
            out[asset.symbol] = q
        return out

    def venue_cash(self, acc: str) -> Decimal:
        return self.sim.accounts[self.key(acc)].cash

    def expected_orders(self, acc: str, t: float, held: dict[str, Decimal] | None = None,
                        cash: Decimal | None = None, whole: tuple[str, ...] = ()
                        ) -> dict[str, tuple[str, Decimal]]:
        """SPEC §4/§8: targets from E = venue cash + Σ venue qty × vanta mark."""
        marks = self.mark_at(t)
        held = self.venue_positions(acc) if held is None else held
        cash = self.venue_cash(acc) if cash is None else cash
        e = cash + sum((q * marks[s] for s, q in held.items()), D(0))
        out = {}
        for sym in sorted(set(WEIGHTS) | set(held)):
            w = WEIGHTS.get(sym, D(0))
            tgt = floor_step(w * e / marks[sym], LOT[sym])
            delta = tgt - held.get(sym, D(0))
            if delta == 0 or abs(delta) * marks[sym] < max(D(1), MINN[sym]):
                continue
            qty = abs(delta).quantize(D("0.000000001"), ROUND_DOWN)  # venue precision
            if sym in whole:  # non-fractionable at the venue
                qty = qty.to_integral_value(rounding=ROUND_DOWN)
                if qty == 0:
                    continue
            venue_min = D(10) if sym == "BTC/USD" else (D(1) if qty % 1 else D(0))
            if qty * marks[sym] < venue_min:
                continue
            out[sym] = ("buy" if delta > 0 else "sell", qty)
        return out

    def posts_between(self, i0: int, i1: int | None = None) -> list[dict[str, Any]]:
        return [r for r in self.sim.log[i0:i1]
                if r["method"] == "POST" and r["path"] == "/v2/orders"]

    def scan_secrets(self, extra_text: str = "") -> list[str]:
        found = []
        needles = [x for pair in SECRETS.values() for x in pair] + [PASS]
        for p in self.home.rglob("*"):
            if not p.is_file() or p.name == "keystore":
                continue
            data = p.read_bytes()
            for n in needles:
                if n.encode() in data:
                    found.append(f"{p.relative_to(self.home)}: {n[:12]}...")
        for r in self.history:
            for n in needles:
                if n in r.out or n in r.err:
                    found.append(f"output of {' '.join(r.cmd[3:])}: {n[:12]}...")
        for n in needles:
            if n in extra_text:
                found.append(f"extra: {n[:12]}")
        return found

    def close(self) -> None:
        self.sim.stop()


def floor_step(x: Decimal, step: Decimal) -> Decimal:
    n = (x / step).to_integral_value(rounding=ROUND_DOWN)
    return (n * step).normalize() if n else D(0)


def py() -> str:
    return sys.executable
