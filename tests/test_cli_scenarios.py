"""Black-box scenarios: drive only the `vanta` command line, check the JSON in <home>/memory/.

Every expected number below is computed by hand from SPEC §4 and written out as a literal
decimal string; the arithmetic is in the comments next to it. Comparisons are made with
`decimal.Decimal` (so "10020.00" == "10020"), never with floats.

Scope: the vault's own master account (role "manager", broker kind "paper").

Conventions used by every scenario unless a test says otherwise:
- vault "V", personas alpha/beta, max_drawdown 0.5, max_single_pos_pct 1, cash_buffer 0,
  drift_band 0, min_order_notional 1, no `paper` section (slippage 0, commission 0);
- master account "M" with starting_cash 100000, onboarded at T0;
- instruments (imported once into a base home that every test copies):
  AAA..EEE equities with lot_step 1 and min_notional 1, BIG an equity with min_notional 600,
  BTC/USD crypto with lot_step 0.0001 and min_notional 10.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import inspect
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

D = Decimal

T0 = "2026-01-01T00:00:00Z"  # setup time: vault, instruments, prices, signals, onboarding
T1 = "2026-01-02T00:00:00Z"
T2 = "2026-01-03T00:00:00Z"
T3 = "2026-01-04T00:00:00Z"
T4 = "2026-01-05T00:00:00Z"

INSTRUMENTS = [
    {"symbol": "AAA", "asset_class": "equity", "lot_step": "1", "min_notional": "1"},
    {"symbol": "BBB", "asset_class": "equity", "lot_step": "1", "min_notional": "1"},
    {"symbol": "CCC", "asset_class": "equity", "lot_step": "1", "min_notional": "1"},
    {"symbol": "DDD", "asset_class": "equity", "lot_step": "1", "min_notional": "1"},
    {"symbol": "EEE", "asset_class": "equity", "lot_step": "1", "min_notional": "1"},
    {"symbol": "BIG", "asset_class": "equity", "lot_step": "1", "min_notional": "600"},
    {"symbol": "BTC/USD", "asset_class": "crypto", "lot_step": "0.0001", "min_notional": "10"},
]

BASE_VAULT = {
    "vault_id": "V",
    "label": "Scenario vault",
    "base_currency": "USD",
    "crypto_enabled": True,
    "fiat_enabled": True,
    "personas": ["alpha", "beta"],
    "risk": {"max_drawdown": "0.5", "max_single_pos_pct": "1", "cash_buffer": "0"},
    "rebalance": {"drift_band": "0", "min_order_notional": "1"},
    "mirroring": {
        "mode": "proportional",
        "min_account_equity": "0",
        "fee": {"type": "performance_or_flat", "flat_usd": "2000", "perf_share": "0.20"},
    },
}

MASTER_PACKET = {
    "packet_version": 1,
    "account_id": "M",
    "role": "manager",
    "vault_id": "V",
    "broker": {"kind": "paper", "starting_cash": "100000"},
    "accepted_at": T0,
}


# --------------------------------------------------------------------------- harness

def _vanta_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("vanta")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "vanta_box"]


VANTA = _vanta_cmd()


# Start-up dominates the cost of a call; let the child processes cache their bytecode in a
# directory of our own (never in the source tree) even when PYTHONDONTWRITEBYTECODE is set.
_ENV = {k: v for k, v in os.environ.items() if k not in ("VANTA_HOME", "PYTHONDONTWRITEBYTECODE")}
_ENV["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "vanta-cli-tests-pycache")


def run_vanta(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VANTA, "--home", str(home), *args], check=False,
                          capture_output=True, text=True, env=_ENV, timeout=60)


def merged(base: dict, override: dict) -> dict:
    """Deep merge `override` into a copy of `base`; a value of None deletes the key."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class Home:
    def __init__(self, root: Path, inputs: Path):
        self.root = root
        self.inputs = inputs
        self.inputs.mkdir(parents=True, exist_ok=True)
        self._n = 0

    # -- running commands
    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_vanta(self.root, *args)

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        res = self.run(*args)
        assert res.returncode == 0, (args, res.returncode, res.stdout, res.stderr)
        return res

    def cycle(self, at: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.ok("cycle", "run", "--at", at, *extra)

    # -- input files
    def write(self, name: str, payload) -> Path:
        path = self.inputs / name
        if isinstance(payload, str):
            path.write_text(payload)
        else:
            path.write_text(json.dumps(payload, indent=1))
        return path

    def write_prices(self, rows, name: str | None = None) -> Path:
        self._n += 1
        path = self.inputs / (name or f"prices{self._n}.csv")
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["symbol", "ts", "price"])
            for row in rows:
                w.writerow(row)
        return path

    def setup(self, *, vault: dict | None = None, prices, signals, packet: dict | None = None,
              onboard: bool = True) -> None:
        """Import the vault, ingest prices and signal sets, onboard the master, all at T0."""
        self.ok("vault", "import", str(self.write("vault.json", {"vaults": [
            merged(BASE_VAULT, vault or {})]})), "--at", T0)
        self.ok("prices", "ingest", str(self.write_prices(prices)), "--at", T0)
        self.ok("signals", "ingest", str(self.write("signals.json", signals)), "--at", T0)
        if onboard:
            self.ok("onboard", str(self.write("master.json", merged(MASTER_PACKET, packet or {}))),
                    "--at", T0)

    # -- reading memory/
    def memory(self, name: str):
        return json.loads((self.root / "memory" / name).read_text())

    def memory_bytes(self, name: str) -> bytes:
        return (self.root / "memory" / name).read_bytes()

    def master(self) -> dict:
        accounts = [a for a in self.memory("portfolio.json")["accounts"] if a["account_id"] == "M"]
        assert len(accounts) == 1, accounts
        return accounts[0]

    def positions(self) -> dict[str, dict]:
        """Open positions of the master (qty != 0), by symbol."""
        return {p["symbol"]: p for p in self.master()["positions"] if D(p["qty"]) != 0}

    def qtys(self) -> dict[str, Decimal]:
        return {s: D(p["qty"]) for s, p in self.positions().items()}

    def cash(self) -> Decimal:
        return D(self.master()["cash"])

    def vault_alloc(self) -> dict:
        vaults = [v for v in self.memory("vault_allocation.json")["vaults"] if v["vault_id"] == "V"]
        assert len(vaults) == 1, vaults
        return vaults[0]

    def weights(self) -> dict[str, Decimal]:
        return {s: D(w) for s, w in self.vault_alloc()["weights"].items() if D(w) != 0}

    def pnl_account(self) -> dict:
        rows = [a for a in self.memory("pnl_summary.json")["accounts"] if a["account_id"] == "M"]
        assert len(rows) == 1, rows
        return rows[0]

    def pnl_vault(self) -> dict:
        rows = [v for v in self.memory("pnl_summary.json")["vaults"] if v["vault_id"] == "V"]
        assert len(rows) == 1, rows
        return rows[0]

    def trade_log(self) -> list[dict]:
        path = self.root / "memory" / "trade_log.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def log(self, kind: str, ts: str | None = None) -> list[dict]:
        return [e for e in self.trade_log() if e["kind"] == kind and e.get("account_id") == "M"
                and (ts is None or e["ts"] == ts)]

    def journal_sha(self) -> str:
        con = sqlite3.connect(f"file:{self.root / 'vanta.db'}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT * FROM journal ORDER BY seq").fetchall()
        finally:
            con.close()
        return hashlib.sha256(repr(rows).encode()).hexdigest()

    def journal_kinds(self) -> list[str]:
        con = sqlite3.connect(f"file:{self.root / 'vanta.db'}?mode=ro", uri=True)
        try:
            return [r[0] for r in con.execute("SELECT kind FROM journal ORDER BY seq")]
        finally:
            con.close()

    def status_journal_line(self) -> str:
        out = self.ok("status").stdout
        lines = [ln for ln in out.splitlines() if ln.startswith("journal")]
        assert len(lines) == 1, out
        return lines[0]


@pytest.fixture(scope="session")
def base_home(tmp_path_factory) -> Path:
    """A home with `init` and the instruments imported; tests copy it (saves two calls each)."""
    root = tmp_path_factory.mktemp("base") / "home"
    inst = root.parent / "instruments.json"
    inst.write_text(json.dumps(INSTRUMENTS))
    res = run_vanta(root, "init")
    assert res.returncode == 0, res.stderr
    res = run_vanta(root, "instruments", "import", str(inst), "--at", T0)
    assert res.returncode == 0, res.stderr
    return root


def _home_factory(base: Path, workdir: Path):
    counter = iter(range(100))

    def factory() -> Home:
        n = next(counter)
        root = workdir / f"home{n}"
        shutil.copytree(base, root)
        return Home(root, workdir / f"in{n}")

    return factory


# Every CLI call costs ~0.2 s of interpreter start-up and imports, and a scenario needs 5-10
# of them. To keep the file fast, scenario tests are written as plain bodies (commands and
# assertions interleaved, run top to bottom) and decorated with @scenario: when the first
# of them runs, the bodies of ALL selected scenario tests are started in a thread pool, each
# on its own copy of the base home; each test then waits for its own body and re-raises
# whatever it raised, so pass/fail and tracebacks stay per test. The pool starts with the
# session (autouse), so the plain tests of the bad-input section run meanwhile.

_HOME_ARGS = ("home", "make_home")


def scenario(body):
    sig_ = inspect.signature(body)
    params = [p for p in sig_.parameters.values() if p.name not in _HOME_ARGS]

    def test(scenario_runs, request, **kwargs):
        scenario_runs[request.node.nodeid].result()

    test.__signature__ = inspect.Signature([
        inspect.Parameter("scenario_runs", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *params])
    test.__name__ = body.__name__
    test.__qualname__ = body.__qualname__
    test.__doc__ = body.__doc__
    test.__module__ = body.__module__
    test._scenario_body = body
    return test


def _run_scenario(body, params: dict, base: Path, workdir: Path) -> None:
    factory = _home_factory(base, workdir)
    wanted = inspect.signature(body).parameters
    kwargs = dict(params)
    if "home" in wanted:
        kwargs["home"] = factory()
    if "make_home" in wanted:
        kwargs["make_home"] = factory
    body(**kwargs)


@pytest.fixture(scope="session", autouse=True)
def scenario_runs(request, base_home, tmp_path_factory):
    pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2) + 1)
    runs = {}
    for n, item in enumerate(request.session.items):
        body = getattr(getattr(item, "obj", None), "_scenario_body", None)
        if body is None:
            continue
        callspec = getattr(item, "callspec", None)
        params = {k: v for k, v in (callspec.params.items() if callspec else ())}
        workdir = tmp_path_factory.mktemp(f"scenario{n:03d}")
        runs[item.nodeid] = pool.submit(_run_scenario, body, params, base_home, workdir)
    yield runs
    pool.shutdown(wait=True, cancel_futures=True)


def sig(as_of: str, *scores) -> dict:
    """A signal set of vault V; each score is (symbol, score) or (symbol, score, persona)."""
    out = []
    for s in scores:
        entry = {"symbol": s[0], "score": s[1]}
        if len(s) > 2:
            entry["persona"] = s[2]
        out.append(entry)
    return {"vault_id": "V", "as_of": as_of, "scores": out}


def assert_decimals(actual: dict, expected: dict[str, str]) -> None:
    assert {k: D(v) for k, v in actual.items()} == {k: D(v) for k, v in expected.items()}


# --------------------------------------------------------------------------- bad input

@pytest.fixture(scope="module")
def bad_input_base(base_home, tmp_path_factory) -> Path:
    """A home with the vault, prices and one signal set; the master is NOT onboarded."""
    root = tmp_path_factory.mktemp("badbase") / "home"
    shutil.copytree(base_home, root)
    h = Home(root, root.parent / "in")
    h.setup(prices=[("AAA", T0, "100")], signals=[sig(T0, ("AAA", "1", "alpha"))],
            onboard=False)
    return root


GOOD_SIGNAL = sig(T1, ("AAA", "1", "alpha"))


def _case_signal_unknown_symbol(h: Home):
    f = h.write("sig_unknown.json", sig(T1, ("AAA", "0.5", "alpha"), ("ZZZ", "0.5", "beta")))
    return ["signals", "ingest", str(f), "--at", T1], f.name, ["symbol", "ZZZ"]


def _case_price_zero(h: Home):
    f = h.write("prices_zero.csv", "symbol,ts,price\nAAA,2026-01-02T00:00:00Z,0\n")
    return ["prices", "ingest", str(f), "--at", T1], f.name, ["price"]


def _case_price_negative(h: Home):
    f = h.write("prices_negative.csv",
                "symbol,ts,price\nAAA,2026-01-02T00:00:00Z,101\nAAA,2026-01-03T00:00:00Z,-5\n")
    return ["prices", "ingest", str(f), "--at", T1], f.name, ["price"]


def _case_price_json_negative(h: Home):
    f = h.write("prices_negative.json", [{"symbol": "AAA", "ts": T1, "price": "-0.01"}])
    return ["prices", "ingest", str(f), "--at", T1], f.name, ["price"]


def _case_signal_unknown_vault(h: Home):
    f = h.write("sig_vault.json", dict(GOOD_SIGNAL, vault_id="NOPE"))
    return ["signals", "ingest", str(f), "--at", T1], f.name, ["vault_id", "NOPE"]


def _case_signal_score_out_of_range(h: Home):
    # SPEC §3: score in [-1, 1]
    f = h.write("sig_range.json", sig(T1, ("AAA", "1.5", "alpha")))
    return ["signals", "ingest", str(f), "--at", T1], f.name, ["score"]


def _case_instrument_zero_lot_step(h: Home):
    f = h.write("instruments_bad.json", [{"symbol": "FFF", "asset_class": "equity",
                                          "lot_step": "0", "min_notional": "1"}])
    return ["instruments", "import", str(f), "--at", T1], f.name, ["lot_step"]


def _case_price_bad_ts(h: Home):
    f = h.write("prices_badts.csv", "symbol,ts,price\nAAA,2026-13-45T00:00:00Z,101\n")
    return ["prices", "ingest", str(f), "--at", T1], f.name, ["ts"]


def _case_signal_bad_as_of(h: Home):
    bad = dict(GOOD_SIGNAL, as_of="2026-01-02 noon")
    f = h.write("sig_badts.json", bad)
    return ["signals", "ingest", str(f), "--at", T1], f.name, ["as_of"]


def _case_at_malformed(h: Home):
    f = h.write("sig_good.json", GOOD_SIGNAL)
    return ["signals", "ingest", str(f), "--at", "2026-02-30T00:00:00Z"], None, ["--at"]


def _case_cycle_at_malformed(h: Home):
    return ["cycle", "run", "--at", "yesterday"], None, ["--at"]


def _case_vault_missing_id(h: Home):
    vault = merged(BASE_VAULT, {"vault_id": None})
    f = h.write("vault_noid.json", {"vaults": [vault]})
    return ["vault", "import", str(f), "--at", T1], f.name, ["vault_id"]


def _case_manager_negative_cash(h: Home):
    f = h.write("master_negative.json",
                merged(MASTER_PACKET, {"broker": {"starting_cash": "-1000"}}))
    return ["onboard", str(f), "--at", T1], f.name, ["starting_cash"]


@pytest.mark.parametrize("case", [
    _case_signal_unknown_symbol, _case_price_zero, _case_price_negative,
    _case_price_json_negative, _case_price_bad_ts, _case_signal_unknown_vault,
    _case_signal_score_out_of_range, _case_instrument_zero_lot_step,
    _case_signal_bad_as_of, _case_at_malformed, _case_cycle_at_malformed,
    _case_vault_missing_id, _case_manager_negative_cash,
], ids=lambda c: c.__name__.removeprefix("_case_"))
def test_bad_input_exit_2_one_message_nothing_changed(bad_input_base, tmp_path, case):
    root = tmp_path / "home"
    shutil.copytree(bad_input_base, root)
    h = Home(root, tmp_path / "in")
    before_sha = h.journal_sha()
    args, filename, words = case(h)
    res = h.run(*args)
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    err = res.stderr.strip()
    assert err, res.stdout
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err  # one clear message
    if filename:
        assert filename in err, err
    for word in words:
        assert word in err, err
    assert h.journal_sha() == before_sha


@pytest.mark.parametrize("args", [["status"], ["cycle", "run", "--at", T1]],
                         ids=["status", "cycle-run"])
def test_missing_home_exit_2_suggests_init(tmp_path, args):
    root = tmp_path / "nowhere"
    res = run_vanta(root, *args)
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "vanta init" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (root / "vanta.db").exists()


def test_second_manager_for_a_vault_is_refused(bad_input_base, tmp_path):
    # SPEC §3: role "manager" is "the vault's own master account, one per vault".
    root = tmp_path / "home"
    shutil.copytree(bad_input_base, root)
    h = Home(root, tmp_path / "in")
    h.ok("onboard", str(h.write("m1.json", MASTER_PACKET)), "--at", T0)
    before = h.journal_sha()
    res = h.run("onboard", str(h.write("m2.json", merged(MASTER_PACKET, {"account_id": "M2"}))),
                "--at", T1)
    assert res.returncode in (1, 2), (res.returncode, res.stdout, res.stderr)
    assert res.stderr.strip() and "Traceback" not in res.stderr
    assert h.journal_sha() == before


# --------------------------------------------------------------------------- allocation

@scenario
def test_allocation_all_personas_long_only_cash_buffer(home):
    # Master uses all personas of the vault: alpha, beta, and signals without a persona.
    # Scores per symbol are summed over the personas (my reading of "adjusted scores a_i"):
    #   AAA 0.5 (alpha)            -> 0.5
    #   BBB 0.3 (alpha) - 0.1 (beta) -> 0.2
    #   CCC 0.1 (no persona)       -> 0.1
    #   DDD -0.4 (alpha)           -> dropped (long-only keeps a_i > 0)
    #   EEE 0 (beta)               -> dropped (0 is not > 0)
    # sum = 0.8, cash_buffer = 0.1:
    #   w_AAA = 0.5/0.8 * 0.9 = 0.625 * 0.9 = 0.5625
    #   w_BBB = 0.2/0.8 * 0.9 = 0.25 * 0.9  = 0.225
    #   w_CCC = 0.1/0.8 * 0.9 = 0.125 * 0.9 = 0.1125
    #   cash_weight = 1 - 0.9 = 0.1
    home.setup(
        vault={"risk": {"cash_buffer": "0.1"}},
        prices=[("AAA", T0, "50"), ("BBB", T0, "40"), ("CCC", T0, "30"), ("DDD", T0, "20"),
                ("EEE", T0, "10")],
        signals=[sig(T0, ("AAA", "0.5", "alpha"), ("BBB", "0.3", "alpha"),
                     ("BBB", "-0.1", "beta"), ("CCC", "0.1"), ("DDD", "-0.4", "alpha"),
                     ("EEE", "0", "beta"))],
    )
    home.cycle(T1)
    alloc = home.vault_alloc()
    assert alloc["status"] == "active"
    assert alloc["cycle_id"]
    assert_decimals(home.weights(), {"AAA": "0.5625", "BBB": "0.225", "CCC": "0.1125"})
    assert D(alloc["cash_weight"]) == D("0.1")
    # E = 100000 (all cash):
    #   AAA: 0.5625*100000/50 = 56250/50 = 1125
    #   BBB: 0.225*100000/40  = 22500/40 = 562.5 -> 562
    #   CCC: 0.1125*100000/30 = 11250/30 = 375
    # cash = 100000 - 1125*50 - 562*40 - 375*30 = 100000 - 56250 - 22480 - 11250 = 10020
    assert_decimals(home.qtys(), {"AAA": "1125", "BBB": "562", "CCC": "375"})
    assert home.cash() == D("10020")
    assert D(home.master()["equity"]) == D("100000")
    # SPEC §3 minimum shapes; money and quantities are JSON strings
    acct = home.master()
    assert {"account_id", "vault_id", "role", "mode", "cash", "equity", "positions"} <= set(acct)
    assert acct["vault_id"] == "V" and acct["role"] == "manager"
    assert isinstance(acct["cash"], str) and isinstance(acct["equity"], str)
    for pos in acct["positions"]:
        assert {"symbol", "qty", "avg_cost", "mark", "market_value", "unrealized_pnl"} <= set(pos)
        assert all(isinstance(pos[k], str) for k in ("qty", "avg_cost", "mark", "market_value",
                                                      "unrealized_pnl"))
    assert all(isinstance(w, str) for w in alloc["weights"].values())
    assert home.memory("vault_allocation.json")["as_of"] == T1
    pnl = home.memory("pnl_summary.json")
    assert {"account_id", "vault_id", "realized_pnl", "unrealized_pnl", "commissions",
            "fees_billed"} <= set(home.pnl_account())
    assert {"vault_id", "nav", "peak_nav", "drawdown"} <= set(home.pnl_vault())
    assert pnl["as_of"] == T1
    lines = home.trade_log()
    assert lines and all({"seq", "ts", "kind", "account_id", "order_id"} <= set(e) for e in lines)
    assert {e["kind"] for e in lines} <= {"intent", "order", "child_order", "submitted", "fill",
                                          "reject", "cancel", "skip"}
    seqs = [e["seq"] for e in lines]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


@pytest.mark.parametrize("cash_buffer, weights, cash_weight, qtys, cash", [
    # a = 0.6, 0.3, 0.1, sum 1, no buffer: w = 0.6, 0.3, 0.1; cap 0.4 -> AAA 0.4, the cut
    # 0.2 stays in cash (BBB, CCC NOT scaled up): cash_weight = 1 - 0.8 = 0.2.
    # qty: AAA 0.4*100000/100 = 400; BBB 0.3*100000/50 = 600; CCC 0.1*100000/25 = 400
    # cash = 100000 - 40000 - 30000 - 10000 = 20000
    ("0", {"AAA": "0.4", "BBB": "0.3", "CCC": "0.1"}, "0.2",
     {"AAA": "400", "BBB": "600", "CCC": "400"}, "20000"),
    # buffer 0.2: w = 0.6*0.8 = 0.48, 0.3*0.8 = 0.24, 0.1*0.8 = 0.08; cap -> AAA 0.4
    # cash_weight = 1 - (0.4 + 0.24 + 0.08) = 0.28
    # qty: AAA 400; BBB 24000/50 = 480; CCC 8000/25 = 320; cash = 100000-40000-24000-8000
    ("0.2", {"AAA": "0.4", "BBB": "0.24", "CCC": "0.08"}, "0.28",
     {"AAA": "400", "BBB": "480", "CCC": "320"}, "28000"),
], ids=["no-buffer", "buffer-0.2"])
@scenario
def test_max_single_pos_pct_cut_stays_in_cash(home, cash_buffer, weights, cash_weight, qtys,
                                               cash):
    home.setup(
        vault={"risk": {"cash_buffer": cash_buffer, "max_single_pos_pct": "0.4"}},
        prices=[("AAA", T0, "100"), ("BBB", T0, "50"), ("CCC", T0, "25")],
        signals=[sig(T0, ("AAA", "0.6", "alpha"), ("BBB", "0.3", "beta"), ("CCC", "0.1"))],
    )
    home.cycle(T1)
    assert_decimals(home.weights(), weights)
    assert D(home.vault_alloc()["cash_weight"]) == D(cash_weight)
    assert_decimals(home.qtys(), qtys)
    assert home.cash() == D(cash)


@pytest.mark.parametrize("crypto, fiat, weights, qtys, cash", [
    # a: AAA 0.6 (equity), BTC/USD 0.4 (crypto); cash_buffer 0.5; AAA @100, BTC @30000.
    # both on: w AAA 0.6/1*0.5 = 0.3, BTC 0.4/1*0.5 = 0.2
    #   AAA 30000/100 = 300; BTC 20000/30000 = 0.66666.. -> 0.6666 (step 0.0001)
    #   cash = 100000 - 30000 - 0.6666*30000 (=19998) = 50002
    (True, True, {"AAA": "0.3", "BTC/USD": "0.2"}, {"AAA": "300", "BTC/USD": "0.6666"},
     "50002"),
    # crypto off: BTC dropped before normalising: w AAA = 0.6/0.6*0.5 = 0.5 -> 500 shares
    (False, True, {"AAA": "0.5"}, {"AAA": "500"}, "50000"),
    # fiat off: AAA dropped: w BTC = 0.4/0.4*0.5 = 0.5 -> 50000/30000 = 1.6666..->1.6666
    #   cash = 100000 - 1.6666*30000 (=49998) = 50002
    (True, False, {"BTC/USD": "0.5"}, {"BTC/USD": "1.6666"}, "50002"),
    # both off: nothing to hold
    (False, False, {}, {}, "100000"),
], ids=["both-on", "crypto-off", "fiat-off", "both-off"])
@scenario
def test_asset_class_switches(home, crypto, fiat, weights, qtys, cash):
    home.setup(
        vault={"crypto_enabled": crypto, "fiat_enabled": fiat, "risk": {"cash_buffer": "0.5"}},
        prices=[("AAA", T0, "100"), ("BTC/USD", T0, "30000")],
        signals=[sig(T0, ("AAA", "0.6", "alpha"), ("BTC/USD", "0.4", "beta"))],
    )
    home.cycle(T1)
    assert_decimals(home.weights(), weights)
    assert_decimals(home.qtys(), qtys)
    assert home.cash() == D(cash)


@scenario
def test_defaults_when_optional_keys_are_absent(home):
    # No rebalance section, no cash_buffer, no paper section -> drift_band 0,
    # min_order_notional 1, cash_buffer 0, slippage 0, commission 0.
    # a AAA 0.999992, CCC 0.000008 (sum 1):
    #   AAA target 0.999992*100000/100 = 999.992 -> 999 -> 99900
    #   CCC target 0.000008*100000/0.5 = 1.6 -> 1 share -> notional 0.5 < max(1, 1) -> skip
    #   cash = 100000 - 99900 = 100
    home.setup(vault={"rebalance": None, "risk": {"cash_buffer": None}},
               prices=[("AAA", T0, "100"), ("CCC", T0, "0.5")],
               signals=[sig(T0, ("AAA", "0.999992", "alpha"), ("CCC", "0.000008", "beta"))])
    home.cycle(T1)
    assert_decimals(home.weights(), {"AAA": "0.999992", "CCC": "0.000008"})
    assert_decimals(home.qtys(), {"AAA": "999"})
    assert home.cash() == D("100")
    assert D(home.pnl_account()["commissions"]) == D("0")


@scenario
def test_json_numbers_are_read_exactly(home):
    # SPEC §3: "readers accept numbers too". The same scenario as
    # test_allocation_all_personas_long_only_cash_buffer, with every decimal given as a JSON
    # number (and prices as a JSON list). 0.1 must be read as 0.1, not as the binary float
    # 0.1000000000000000055511151231257827...:
    #   w_AAA = 0.5/0.8*0.9 = 0.5625, w_BBB = 0.2/0.8*0.9 = 0.225, w_CCC = 0.1/0.8*0.9 = 0.1125
    #   qty AAA 1125, BBB 562, CCC 375; cash 100000 - 56250 - 22480 - 11250 = 10020
    vault = merged(BASE_VAULT, {"risk": {"cash_buffer": 0.1, "max_single_pos_pct": 1,
                                         "max_drawdown": 0.5},
                                "rebalance": {"drift_band": 0, "min_order_notional": 1}})
    home.ok("vault", "import", str(home.write("vault.json", {"vaults": [vault]})), "--at", T0)
    prices = [{"symbol": "AAA", "ts": T0, "price": 50.0}, {"symbol": "BBB", "ts": T0, "price": 40},
              {"symbol": "CCC", "ts": T0, "price": 30.00}]
    home.ok("prices", "ingest", str(home.write("prices.json", prices)), "--at", T0)
    signal = {"vault_id": "V", "as_of": T0, "scores": [
        {"symbol": "AAA", "score": 0.5, "persona": "alpha"},
        {"symbol": "BBB", "score": 0.3, "persona": "alpha"},
        {"symbol": "BBB", "score": -0.1, "persona": "beta"},
        {"symbol": "CCC", "score": 0.1}]}
    home.ok("signals", "ingest", str(home.write("signals.json", signal)), "--at", T0)
    packet = merged(MASTER_PACKET, {"broker": {"starting_cash": 100000}})
    home.ok("onboard", str(home.write("master.json", packet)), "--at", T0)
    home.cycle(T1)
    assert_decimals(home.weights(), {"AAA": "0.5625", "BBB": "0.225", "CCC": "0.1125"})
    assert D(home.vault_alloc()["cash_weight"]) == D("0.1")
    assert_decimals(home.qtys(), {"AAA": "1125", "BBB": "562", "CCC": "375"})
    assert home.cash() == D("10020")


# --------------------------------------------------------------------------- overlays

OV_SET = "2026-01-02T00:00:00Z"      # set_at
OV_LAST = "2026-01-02T23:59:59Z"     # still < expires_at
OV_EXPIRES = "2026-01-03T00:00:00Z"  # set_at + 1d = expires_at: no longer in force


@pytest.mark.parametrize("flags, signals, in_force, after", [
    # flip: a = AAA 0.5, BBB -0.3, CCC -0.2. Without flip only AAA > 0: w AAA = 0.5/0.5 = 1.
    # Flipped: AAA -0.5 (dropped), BBB 0.3, CCC 0.2, sum 0.5: BBB 0.6, CCC 0.4.
    ([["--flip"]],
     [("AAA", "0.5", "alpha"), ("BBB", "-0.3", "alpha"), ("CCC", "-0.2", "beta")],
     {"BBB": "0.6", "CCC": "0.4"}, {"AAA": "1"}),
    # boost alpha=2: a = AAA 0.3 (alpha), BBB 0.2 (beta). Without: 0.3/0.5 = 0.6, 0.2/0.5 = 0.4.
    # Boosted: AAA 0.6, BBB 0.2, sum 0.8: AAA 0.6/0.8 = 0.75, BBB 0.2/0.8 = 0.25.
    ([["--boost", "alpha=2"]],
     [("AAA", "0.3", "alpha"), ("BBB", "0.2", "beta")],
     {"AAA": "0.75", "BBB": "0.25"}, {"AAA": "0.6", "BBB": "0.4"}),
    # flip and boost alpha=3 together: AAA 0.3 alpha, BBB -0.2 beta, CCC -0.1 alpha
    #   in force: AAA -0.9 (dropped), BBB 0.2, CCC 0.3, sum 0.5: BBB 0.4, CCC 0.6
    #   after: only AAA > 0: AAA 1
    ([["--flip"], ["--boost", "alpha=3"]],
     [("AAA", "0.3", "alpha"), ("BBB", "-0.2", "beta"), ("CCC", "-0.1", "alpha")],
     {"BBB": "0.4", "CCC": "0.6"}, {"AAA": "1"}),
], ids=["flip", "boost", "flip+boost"])
@scenario
def test_overlay_in_force_from_set_at_until_expiry(home, flags, signals, in_force, after):
    home.setup(prices=[("AAA", T0, "100"), ("BBB", T0, "100"), ("CCC", T0, "100")],
               signals=[sig(T0, *signals)])
    for flag in flags:
        home.ok("overlay", "set", "V", *flag, "--ttl", "1d", "--at", OV_SET)
    # set_at <= t: in force at t = set_at
    home.cycle(OV_SET)
    assert_decimals(home.weights(), in_force)
    assert len(home.memory("vault_overlay.json")["overlays"]) == len(flags)
    # still in force one second before expires_at
    home.cycle(OV_LAST)
    assert_decimals(home.weights(), in_force)
    # t = expires_at = set_at + 1d: reverted
    home.cycle(OV_EXPIRES)
    assert_decimals(home.weights(), after)
    assert home.memory("vault_overlay.json")["overlays"] == []
    # "Expiry reverts it automatically and is journaled."
    assert any("expir" in kind for kind in home.journal_kinds())


@scenario
def test_maintenance_overlay_stages_nothing_but_marks_until_expiry(home):
    # T1: AAA 1 -> w 1 -> 100000/100 = 1000 AAA, cash 0.
    # Maintenance set at T2 for 1d; a new signal at T2 wants BBB only.
    # Cycle at T2 (in force): no order, no fill; AAA marked at 110 -> equity 110000.
    # Cycle at T3 = T2 + 1d (expired): E = 110000; AAA target 0 -> sell 1000 @110 = 110000;
    #   BBB target 110000/50 = 2200 -> buy 2200 @50 = 110000; cash 0.
    home.setup(prices=[("AAA", T0, "100"), ("BBB", T0, "50"), ("AAA", T2, "110")],
               signals=[sig(T0, ("AAA", "1", "alpha")),
                        sig(T2, ("AAA", "-1", "alpha"), ("BBB", "1", "beta"))])
    home.cycle(T1)
    assert_decimals(home.qtys(), {"AAA": "1000"})
    home.ok("overlay", "set", "V", "--maintenance", "--ttl", "1d", "--at", T2)
    home.cycle(T2)
    assert home.log("order", T2) == [] and home.log("fill", T2) == []
    assert home.memory("autotrade_queue.json")["orders"] == []
    assert home.memory("portfolio.json")["as_of"] == T2
    assert_decimals(home.qtys(), {"AAA": "1000"})
    assert D(home.positions()["AAA"]["mark"]) == D("110")
    assert D(home.master()["equity"]) == D("110000")
    assert home.cash() == D("0")
    home.cycle(T3)
    assert_decimals(home.qtys(), {"BBB": "2200"})
    assert home.cash() == D("0")


@scenario
def test_maintenance_overlay_blocks_execution_of_staged_orders(home):
    # T1 --stage-only: AAA w 1 @100 -> buy 1000 staged.
    # Maintenance set at T1+30m for 1d; `queue execute` at T1+1h: "the vault stages and
    # executes no orders" -> nothing filled, cash stays 100000.
    home.setup(prices=[("AAA", T0, "100")], signals=[sig(T0, ("AAA", "1", "alpha"))])
    home.cycle(T1, "--stage-only")
    assert len(home.memory("autotrade_queue.json")["orders"]) == 1
    home.ok("overlay", "set", "V", "--maintenance", "--ttl", "1d", "--at",
            "2026-01-02T00:30:00Z")
    home.run("queue", "execute", "--at", "2026-01-02T01:00:00Z")
    assert home.log("fill") == []
    assert home.qtys() == {}
    assert home.cash() == D("100000")


# --------------------------------------------------------------------------- rebalance diff

@pytest.mark.parametrize("symbol, price, qty1, cash1, qty2, cash2", [
    # w = 1: 100000/33 = 3030.30.. -> 3030; cash = 100000 - 3030*33 (=99990) = 10
    # T2: w symbol 0.25, CCC 0.75, E = 10 + 99990 = 100000:
    #   AAA target 25000/33 = 757.57.. -> 757 (toward zero): sell 3030-757 = 2273 @33 = 75009
    #   CCC target 75000/25 = 3000: buy 3000 @25 = 75000; cash = 10 + 75009 - 75000 = 19
    ("AAA", "33", "3030", "10", "757", "19"),
    # w = 1: 100000/37000 = 2.7027027.. -> 2.7027; cash = 100000 - 2.7027*37000 (=99999.9) = 0.1
    # T2: E = 0.1 + 99999.9 = 100000; BTC target 25000/37000 = 0.675675.. -> 0.6756:
    #   sell 2.7027 - 0.6756 = 2.0271 @37000 = 75002.7; CCC buy 3000 @25 = 75000
    #   cash = 0.1 + 75002.7 - 75000 = 2.8
    ("BTC/USD", "37000", "2.7027", "0.1", "0.6756", "2.8"),
], ids=["whole-shares", "crypto-0.0001"])
@scenario
def test_lot_step_flooring_toward_zero(home, symbol, price, qty1, cash1, qty2, cash2):
    home.setup(prices=[(symbol, T0, price), ("CCC", T0, "25")],
               signals=[sig(T0, (symbol, "1", "alpha")),
                        sig(T2, (symbol, "0.25", "alpha"), ("CCC", "0.75", "beta"))])
    home.cycle(T1)
    assert_decimals(home.qtys(), {symbol: qty1})
    assert home.cash() == D(cash1)
    home.cycle(T2)
    assert_decimals(home.qtys(), {symbol: qty2, "CCC": "3000"})
    assert home.cash() == D(cash2)


@pytest.mark.parametrize("min_order_notional, bbb_traded", [
    ("500", True),      # 500 < 500 is false -> traded (boundary)
    ("500.01", False),  # 500 < 500.01 -> skipped
])
@scenario
def test_min_order_notional_and_instrument_min_notional_skip(home, min_order_notional,
                                                             bbb_traded):
    # starting_cash 10000; a: AAA 0.9, BBB 0.05, BIG 0.05 (sum 1); every price 100.
    #   AAA target 0.9*10000/100 = 90 -> notional 9000, always traded
    #   BBB target 0.05*10000/100 = 5 -> |delta|*mark = 500 vs max(min_order_notional, 1)
    #   BIG target 5 -> 500 vs max(min_order_notional, 600) >= 600 -> always skipped
    # cash = 10000 - 9000 - (500 if BBB traded) = 500 or 1000
    home.setup(vault={"rebalance": {"min_order_notional": min_order_notional}},
               packet={"broker": {"starting_cash": "10000"}},
               prices=[("AAA", T0, "100"), ("BBB", T0, "100"), ("BIG", T0, "100")],
               signals=[sig(T0, ("AAA", "0.9", "alpha"), ("BBB", "0.05", "beta"),
                            ("BIG", "0.05", "beta"))])
    home.cycle(T1)
    expected = {"AAA": "90"}
    if bbb_traded:
        expected["BBB"] = "5"
    assert_decimals(home.qtys(), expected)
    assert home.cash() == D("500" if bbb_traded else "1000")
    filled = {f["symbol"] for f in home.log("fill", T1)}
    assert filled == set(expected)
    # a skip line names its symbol, either as "symbol" or (one line per account and cycle)
    # as the keys of "symbols"
    skipped = set()
    for line in home.log("skip", T1):
        skipped.update(k for k in [line.get("symbol"), *(line.get("symbols") or {})] if k)
    assert "BIG" in skipped
    assert ("BBB" in skipped) is (not bbb_traded)


@pytest.mark.parametrize("drift_band, aaa, bbb, qtys, cash, fills", [
    # After T1: 500 AAA + 500 BBB @100, cash 0, targets 0.5/0.5.
    # AAA 101, BBB 99: E = 50500 + 49500 = 100000; weights 0.505/0.495: |diff| 0.005 < 0.02
    #   -> both skipped, nothing changes.
    ("0.02", "101", "99", {"AAA": "500", "BBB": "500"}, "0", []),
    # AAA 102, BBB 98, band 0.01: weights 0.51/0.49, |diff| 0.01 is not < 0.01 -> trade:
    #   AAA target 50000/102 = 490.19 -> 490: sell 10 @102 = 1020
    #   BBB target 50000/98 = 510.20 -> 510: buy 10 @98 = 980; cash = 0 + 1020 - 980 = 40
    ("0.01", "102", "98", {"AAA": "490", "BBB": "510"}, "40",
     [("AAA", "sell", "10"), ("BBB", "buy", "10")]),
    # AAA 90, BBB 110, band 0.02: weights 0.45/0.55, |diff| 0.05 -> trade:
    #   BBB target 50000/110 = 454.54 -> 454: sell 46 @110 = 5060 (first: sells before buys)
    #   AAA target 50000/90 = 555.55 -> 555: buy 55 @90 = 4950; cash = 0 + 5060 - 4950 = 110
    #   (had the buy run first, it would not fit in cash 0)
    ("0.02", "90", "110", {"AAA": "555", "BBB": "454"}, "110",
     [("BBB", "sell", "46"), ("AAA", "buy", "55")]),
], ids=["inside-band", "on-band-edge", "outside-band"])
@scenario
def test_drift_band(home, drift_band, aaa, bbb, qtys, cash, fills):
    home.setup(vault={"rebalance": {"drift_band": drift_band}},
               prices=[("AAA", T0, "100"), ("BBB", T0, "100"), ("AAA", T2, aaa),
                       ("BBB", T2, bbb)],
               signals=[sig(T0, ("AAA", "0.5", "alpha"), ("BBB", "0.5", "beta"))])
    home.cycle(T1)
    assert_decimals(home.qtys(), {"AAA": "500", "BBB": "500"})
    assert home.cash() == D("0")
    home.cycle(T2)
    assert_decimals(home.qtys(), qtys)
    assert home.cash() == D(cash)
    got = [(f["symbol"], f["side"], D(f["qty"])) for f in home.log("fill", T2)]
    assert got == [(s, side, D(q)) for s, side, q in fills]


@pytest.mark.parametrize("bbb_in_new_signal", [
    [("BBB", "-0.5", "beta")],  # still signalled, but negative -> not allocated
    [],                          # not in the new signal file at all
], ids=["negative-score", "absent"])
@scenario
def test_sells_before_buys_and_unallocated_symbol_sold_to_zero(home, bbb_in_new_signal):
    # T1: AAA 0.5, BBB 0.5 @100 -> 500 + 500, cash 0.
    # T2 (new signal set): only AAA allocated, w 1; E = 100000.
    #   BBB held but not allocated: target 0 -> sell 500 @100 = 50000
    #   AAA target 100000/100 = 1000 -> buy 500 @100 = 50000; cash 0.
    # Fill order of account M at T2: the BBB sell before the AAA buy (not alphabetical).
    home.setup(prices=[("AAA", T0, "100"), ("BBB", T0, "100")],
               signals=[sig(T0, ("AAA", "0.5", "alpha"), ("BBB", "0.5", "beta")),
                        sig(T2, ("AAA", "1", "alpha"), *bbb_in_new_signal)])
    home.cycle(T1)
    home.cycle(T2)
    assert_decimals(home.weights(), {"AAA": "1"})
    assert_decimals(home.qtys(), {"AAA": "1000"})
    assert home.cash() == D("0")
    got = [(f["symbol"], f["side"], D(f["qty"])) for f in home.log("fill", T2)]
    assert got == [("BBB", "sell", D("500")), ("AAA", "buy", D("500"))]


# --------------------------------------------------------------------------- paper broker

@pytest.mark.parametrize("vault_paper, packet_broker, buy, sell", [
    # vault paper 10 bps slippage, 5 bps commission; T1 buy AAA w 0.5 (a 1, buffer 0.5) @100:
    #   qty 50000/100 = 500; price 100*(1+10/10^4) = 100.1; notional 500*100.1 = 50050
    #   commission 50050*5/10^4 = 25.025; cash 100000-50050-25.025 = 49924.975
    #   lot cost (50050+25.025)/500 = 100.15005; unrealized (100-100.15005)*500 = -75.025
    #   equity 49924.975 + 500*100 = 99924.975
    # T2 sell all @ mark 120: price 120*(1-0.001) = 119.88; notional 59940; comm 29.97
    #   realized (119.88-100.15005)*500 - 29.97 = 9864.975 - 29.97 = 9835.005
    #   cash 49924.975 + 59940 - 29.97 = 109835.005; commissions 25.025 + 29.97 = 54.995
    ({"slippage_bps": "10", "commission_bps": "5"}, {},
     {"cash": "49924.975", "avg_cost": "100.15005", "unrealized": "-75.025",
      "equity": "99924.975", "commissions": "25.025"},
     {"cash": "109835.005", "realized": "9835.005", "commissions": "54.995"}),
    # the packet's broker overrides the vault: slippage 20, commission 0
    #   buy 100*1.002 = 100.2 -> 50100; cash 49900; lot 100.2; unrealized -0.2*500 = -100
    #   sell 120*0.998 = 119.76 -> 59880; realized (119.76-100.2)*500 = 9780; cash 109780
    ({"slippage_bps": "10", "commission_bps": "5"},
     {"slippage_bps": "20", "commission_bps": "0"},
     {"cash": "49900", "avg_cost": "100.2", "unrealized": "-100", "equity": "99900",
      "commissions": "0"},
     {"cash": "109780", "realized": "9780", "commissions": "0"}),
    # no vault paper section, packet commission 10 bps, no slippage:
    #   buy 500 @100 = 50000, comm 50; cash 49950; lot 100.1; unrealized -50; equity 99950
    #   sell 500 @120 = 60000, comm 60; realized (120-100.1)*500 - 60 = 9950 - 60 = 9890
    #   cash 49950 + 60000 - 60 = 109890; commissions 110
    (None, {"commission_bps": "10"},
     {"cash": "49950", "avg_cost": "100.1", "unrealized": "-50", "equity": "99950",
      "commissions": "50"},
     {"cash": "109890", "realized": "9890", "commissions": "110"}),
], ids=["vault-paper", "packet-overrides-vault", "packet-only"])
@scenario
def test_paper_slippage_and_commission(home, vault_paper, packet_broker, buy, sell):
    vault = {"risk": {"cash_buffer": "0.5"}}
    if vault_paper is not None:
        vault["paper"] = vault_paper
    home.setup(vault=vault, packet={"broker": packet_broker},
               prices=[("AAA", T0, "100"), ("AAA", T2, "120")],
               signals=[sig(T0, ("AAA", "1", "alpha")), sig(T2, ("AAA", "-1", "alpha"))])
    home.cycle(T1)
    pos = home.positions()["AAA"]
    assert D(pos["qty"]) == D("500")
    assert home.cash() == D(buy["cash"])
    assert D(pos["avg_cost"]) == D(buy["avg_cost"])
    assert D(pos["unrealized_pnl"]) == D(buy["unrealized"])
    assert D(home.master()["equity"]) == D(buy["equity"])
    acct = home.pnl_account()
    assert D(acct["commissions"]) == D(buy["commissions"])
    assert D(acct["realized_pnl"]) == D("0")
    assert D(acct["unrealized_pnl"]) == D(buy["unrealized"])
    home.cycle(T2)
    assert home.qtys() == {}
    assert home.cash() == D(sell["cash"])
    assert D(home.master()["equity"]) == D(sell["cash"])
    acct = home.pnl_account()
    assert D(acct["realized_pnl"]) == D(sell["realized"])
    assert D(acct["unrealized_pnl"]) == D("0")
    assert D(acct["commissions"]) == D(sell["commissions"])


@pytest.mark.parametrize("symbol, price, target, qty, cash, avg_cost", [
    # w 1, vault paper slippage 10 bps, commission 5 bps, cash 100000.
    # AAA @100: target 100000/100 = 1000; all-in unit cost 100.1*1.0005 = 100.15005;
    #   1000 units need 100150.05 > 100000 -> reduce: 100000/100.15005 = 998.50.. -> 998
    #   notional 998*100.1 = 99899.8; commission 99899.8*0.0005 = 49.9499
    #   cash 100000 - 99899.8 - 49.9499 = 50.2501
    ("AAA", "100", "1000", "998", "50.2501", "100.15005"),
    # BTC @30000: target 100000/30000 = 3.3333; unit 30030*1.0005 = 30045.015;
    #   3.3333 units need 100149.0..> 100000 -> 100000/30045.015 = 3.328339.. -> 3.3283
    #   notional 3.3283*30030 = 99948.849; commission 49.9744245
    #   cash 100000 - 99948.849 - 49.9744245 = 1.1765755
    ("BTC/USD", "30000", "3.3333", "3.3283", "1.1765755", "30045.015"),
], ids=["whole-shares", "crypto"])
@scenario
def test_paper_buy_that_does_not_fit_is_reduced(home, symbol, price, target, qty, cash,
                                                avg_cost):
    home.setup(vault={"paper": {"slippage_bps": "10", "commission_bps": "5"}},
               prices=[(symbol, T0, price)], signals=[sig(T0, (symbol, "1", "alpha"))])
    home.cycle(T1)
    assert_decimals(home.qtys(), {symbol: qty})
    assert home.cash() == D(cash)
    assert home.cash() >= 0
    assert D(home.positions()[symbol]["avg_cost"]) == D(avg_cost)
    orders = home.log("order", T1)
    assert [(o["symbol"], D(o["qty"])) for o in orders] == [(symbol, D(target))]
    fills = home.log("fill", T1)
    assert [(f["symbol"], D(f["qty"])) for f in fills] == [(symbol, D(qty))]


@scenario
def test_paper_second_buy_is_reduced_to_the_cash_left(home):
    # a AAA 0.5, BBB 0.5 (w 0.5 each), both @100, slippage 10 bps, commission 5 bps.
    # Each target 50000/100 = 500; all-in unit cost 100.1*1.0005 = 100.15005.
    # Whichever buy runs first fits: 500*100.1 = 50050 + 25.025 -> cash 49924.975.
    # The second needs 50075.025 > 49924.975 -> 49924.975/100.15005 = 498.50.. -> 498:
    #   498*100.1 = 49849.8, commission 24.9249 -> cash 49924.975 - 49874.7249 = 50.2501
    # (the SPEC does not order buys among themselves, so only the multiset of qtys is fixed)
    home.setup(vault={"paper": {"slippage_bps": "10", "commission_bps": "5"}},
               prices=[("AAA", T0, "100"), ("BBB", T0, "100")],
               signals=[sig(T0, ("AAA", "0.5", "alpha"), ("BBB", "0.5", "beta"))])
    home.cycle(T1)
    assert sorted(home.qtys().values()) == [D("498"), D("500")]
    assert home.cash() == D("50.2501")
    assert D(home.pnl_account()["commissions"]) == D("49.9499")  # 25.025 + 24.9249


# --------------------------------------------------------------------------- FIFO PnL

def fifo_setup(home: Home) -> None:
    home.setup(
        vault={"risk": {"cash_buffer": "0.1"}, "paper": {"commission_bps": "10"}},
        prices=[("AAA", T0, "100"), ("BBB", T0, "100"), ("AAA", T2, "120"), ("AAA", T3, "130")],
        signals=[sig(T0, ("AAA", "0.5", "alpha"), ("BBB", "0.5", "beta")),
                 sig(T2, ("AAA", "0.8", "alpha"), ("BBB", "0.2", "beta")),
                 sig(T3, ("AAA", "0.1", "alpha"), ("BBB", "0.9", "beta"))])


@scenario
def test_fifo_realized_pnl_partial_sells_across_two_lots(home):
    # commission 10 bps, no slippage, cash_buffer 0.1 (w = 0.9 * a / sum a).
    fifo_setup(home)
    # T1: w AAA 0.45, BBB 0.45; AAA, BBB @100; E 100000
    #   AAA 45000/100 = 450: notional 45000, comm 45 -> lot A1 450 @ (45045/450) 100.1
    #   BBB 450 likewise -> lot B1 450 @100.1; cash = 100000 - 2*45045 = 9910
    home.cycle(T1)
    assert home.cash() == D("9910")
    assert_decimals(home.qtys(), {"AAA": "450", "BBB": "450"})
    assert D(home.pnl_account()["realized_pnl"]) == D("0")
    # T2: AAA 120, BBB 100: E = 9910 + 450*120 + 450*100 = 9910 + 54000 + 45000 = 108910
    #   w AAA 0.72, BBB 0.18
    #   BBB target 0.18*108910/100 = 196.038 -> 196: sell 254 @100 = 25400, comm 25.4
    #     realized = (100 - 100.1)*254 - 25.4 = -25.4 - 25.4 = -50.8; cash 9910+25400-25.4
    #     = 35284.6
    #   AAA target 0.72*108910/120 = 653.46 -> 653: buy 203 @120 = 24360, comm 24.36
    #     lot A2 203 @ (24360+24.36)/203 = 120.12; cash 35284.6 - 24384.36 = 10900.24
    home.cycle(T2)
    assert_decimals(home.qtys(), {"AAA": "653", "BBB": "196"})
    assert home.cash() == D("10900.24")
    assert D(home.pnl_account()["realized_pnl"]) == D("-50.8")
    # unrealized at T2: AAA (120-100.1)*450 + (120-120.12)*203 = 8955 - 24.36 = 8930.64
    #                   BBB (100-100.1)*196 = -19.6; total 8911.04
    assert D(home.positions()["AAA"]["unrealized_pnl"]) == D("8930.64")
    assert D(home.positions()["BBB"]["unrealized_pnl"]) == D("-19.6")
    assert D(home.pnl_account()["unrealized_pnl"]) == D("8911.04")
    # equity 10900.24 + 653*120 + 196*100 = 10900.24 + 78360 + 19600 = 108860.24
    assert D(home.master()["equity"]) == D("108860.24")
    # T3: AAA 130, BBB 100: E = 10900.24 + 653*130 + 196*100 = 10900.24+84890+19600
    #   = 115390.24; w AAA 0.09, BBB 0.81
    #   AAA target 0.09*115390.24/130 = 79.88 -> 79: sell 574 @130 = 74620, comm 74.62
    #     FIFO: 450 from A1 and 124 from A2:
    #     realized = (130-100.1)*450 + (130-120.12)*124 - 74.62
    #              = 13455 + 1225.12 - 74.62 = 14605.5
    #     cash 10900.24 + 74620 - 74.62 = 85445.62
    #   BBB target 0.81*115390.24/100 = 934.66 -> 934: buy 738 @100 = 73800, comm 73.8
    #     lot B2 738 @100.1; cash 85445.62 - 73873.8 = 11571.82
    home.cycle(T3)
    assert_decimals(home.qtys(), {"AAA": "79", "BBB": "934"})
    assert home.cash() == D("11571.82")
    pos = home.positions()
    # open lots: AAA 79 @120.12 (rest of A2); BBB 196 @100.1 (B1) + 738 @100.1 (B2)
    assert D(pos["AAA"]["avg_cost"]) == D("120.12")
    assert D(pos["BBB"]["avg_cost"]) == D("100.1")
    # unrealized AAA (130-120.12)*79 = 780.52; BBB (100-100.1)*934 = -93.4; total 687.12
    assert D(pos["AAA"]["unrealized_pnl"]) == D("780.52")
    assert D(pos["BBB"]["unrealized_pnl"]) == D("-93.4")
    assert D(pos["AAA"]["market_value"]) == D("10270")
    # equity 11571.82 + 79*130 + 934*100 = 11571.82 + 10270 + 93400 = 115241.82
    assert D(home.master()["equity"]) == D("115241.82")
    acct = home.pnl_account()
    # realized -50.8 + 14605.5 = 14554.7
    assert D(acct["realized_pnl"]) == D("14554.7")
    assert D(acct["unrealized_pnl"]) == D("687.12")
    # commissions 45 + 45 + 25.4 + 24.36 + 74.62 + 73.8 = 288.18
    assert D(acct["commissions"]) == D("288.18")


# --------------------------------------------------------------------------- drawdown guard

def drawdown_setup(home: Home, aaa_t2: str, on_drawdown: str = "halt",
                   extra_prices=()) -> None:
    # max_drawdown 0.2; T1: AAA w 1 @100 -> 1000 AAA, cash 0 (NAV 100000 = peak).
    # T2 signal: AAA 0.5, BBB 0.5; BBB @50.
    home.setup(vault={"risk": {"max_drawdown": "0.2", "on_drawdown": on_drawdown}},
               prices=[("AAA", T0, "100"), ("BBB", T0, "50"), ("AAA", T2, aaa_t2),
                       *extra_prices],
               signals=[sig(T0, ("AAA", "1", "alpha")),
                        sig(T2, ("AAA", "0.5", "alpha"), ("BBB", "0.5", "beta"))])
    home.cycle(T1)
    assert_decimals(home.qtys(), {"AAA": "1000"})


@scenario
def test_drawdown_exactly_at_limit_is_not_halted(home):
    # T2: AAA 80 -> NAV 80000 = (1-0.2)*100000, not below -> active.
    #   AAA target 0.5*80000/80 = 500: sell 500 @80 = 40000
    #   BBB target 0.5*80000/50 = 800: buy 800 @50 = 40000; cash 0
    drawdown_setup(home, "80")
    home.cycle(T2)
    assert home.vault_alloc()["status"] == "active"
    assert_decimals(home.qtys(), {"AAA": "500", "BBB": "800"})
    assert home.cash() == D("0")


@pytest.mark.parametrize("reset_peak", [False, True], ids=["resume", "resume-reset-peak"])
@scenario
def test_drawdown_halt_blocks_buys_until_resumed(home, reset_peak):
    drawdown_setup(home, "79")
    # T2: NAV at T2 marks = 1000*79 = 79000 < 0.8*100000 = 80000 -> halted.
    #   AAA target 0.5*79000/79 = 500: the sell of 500 @79 = 39500 still runs
    #   BBB target 0.5*79000/50 = 790: buy blocked. cash 39500.
    home.cycle(T2)
    assert home.vault_alloc()["status"] == "halted"
    vault = home.pnl_vault()
    assert D(vault["peak_nav"]) == D("100000")
    assert D(vault["nav"]) == D("79000")
    # drawdown = 1 - 79000/100000 = 0.21
    assert D(vault["drawdown"]) == D("0.21")
    assert_decimals(home.qtys(), {"AAA": "500"})
    assert home.cash() == D("39500")
    assert [f["side"] for f in home.log("fill", T2)] == ["sell"]
    # T3 without resume: still halted, NAV 39500 + 500*79 = 79000; nothing to buy or sell.
    home.cycle(T3)
    assert home.vault_alloc()["status"] == "halted"
    assert home.log("fill", T3) == []
    assert_decimals(home.qtys(), {"AAA": "500"})
    args = ["vault", "resume", "V", "--at", "2026-01-04T12:00:00Z"]
    if reset_peak:
        args.insert(3, "--reset-peak")
    home.ok(*args)
    home.cycle(T4)
    if reset_peak:
        # peak restarted at the last cycle's NAV 79000; T4 NAV 79000 >= 0.8*79000 -> active
        #   BBB buy 790 @50 = 39500; cash 0
        assert home.vault_alloc()["status"] == "active"
        assert_decimals(home.qtys(), {"AAA": "500", "BBB": "790"})
        assert home.cash() == D("0")
    else:
        # peak kept at 100000; T4 NAV 79000 < 80000 -> halted again, still no buy
        assert home.vault_alloc()["status"] == "halted"
        assert_decimals(home.qtys(), {"AAA": "500"})
        assert home.cash() == D("39500")


@scenario
def test_drawdown_peak_is_the_highest_cycle_start_nav(home):
    # max_drawdown 0.2; AAA w 1 all along.
    # T1 @100: NAV 100000 (peak 100000); buy 1000.
    # T2 @120: NAV 120000 -> peak 120000; target 120000/120 = 1000: nothing to do.
    # T3 @90: NAV 90000 < 0.8*120000 = 96000 -> halted (although above the first NAV);
    #   drawdown = 1 - 90000/120000 = 0.25. Target 90000/90 = 1000: nothing to sell.
    home.setup(vault={"risk": {"max_drawdown": "0.2"}},
               prices=[("AAA", T0, "100"), ("AAA", T2, "120"), ("AAA", T3, "90")],
               signals=[sig(T0, ("AAA", "1", "alpha"))])
    home.cycle(T1)
    home.cycle(T2)
    assert home.vault_alloc()["status"] == "active"
    assert D(home.pnl_vault()["peak_nav"]) == D("120000")
    home.cycle(T3)
    assert home.vault_alloc()["status"] == "halted"
    vault = home.pnl_vault()
    assert D(vault["peak_nav"]) == D("120000")
    assert D(vault["nav"]) == D("90000")
    assert D(vault["drawdown"]) == D("0.25")
    assert_decimals(home.qtys(), {"AAA": "1000"})


@scenario
def test_drawdown_halt_persists_after_recovery_until_resume(home):
    # "the vault enters halted until the manager resumes it"
    drawdown_setup(home, "79", extra_prices=[("AAA", T3, "100")])
    # T2: NAV 79000 < 80000 -> halted; sell 500 AAA @79 -> cash 39500, AAA 500.
    home.cycle(T2)
    assert home.vault_alloc()["status"] == "halted"
    # T3: AAA back at 100: NAV 39500 + 500*100 = 89500 >= 80000, but no resume yet:
    #   still halted. AAA target 0.5*89500/100 = 447.5 -> 447: the sell of 53 @100 = 5300
    #   runs (cash 44800); BBB target 0.5*89500/50 = 895: no buy.
    home.cycle(T3)
    assert home.vault_alloc()["status"] == "halted"
    assert_decimals(home.qtys(), {"AAA": "447"})
    assert home.cash() == D("44800")
    home.ok("vault", "resume", "V", "--at", "2026-01-04T12:00:00Z")
    # T4 (AAA 100): NAV 44800 + 447*100 = 89500 >= 0.8*100000 -> active.
    #   AAA target 447: unchanged. BBB 895 @50 = 44750 -> cash 44800 - 44750 = 50
    home.cycle(T4)
    assert home.vault_alloc()["status"] == "active"
    assert_decimals(home.qtys(), {"AAA": "447", "BBB": "895"})
    assert home.cash() == D("50")


@scenario
def test_drawdown_liquidate_sells_everything(home):
    # on_drawdown liquidate: T2 NAV 79000 < 80000 -> all targets 0: sell 1000 @79 = 79000
    drawdown_setup(home, "79", on_drawdown="liquidate")
    home.cycle(T2)
    assert home.vault_alloc()["status"] == "halted"
    assert home.qtys() == {}
    assert home.cash() == D("79000")
    assert [(f["symbol"], f["side"], D(f["qty"])) for f in home.log("fill", T2)] == [
        ("AAA", "sell", D("1000"))]


# --------------------------------------------------------------------------- queue, reruns

@scenario
def test_stage_only_then_queue_execute(home):
    # a AAA 0.5, BBB 0.5, buffer 0.2 -> w 0.4 each; T1 marks AAA 100, BBB 50:
    #   AAA 40000/100 = 400, BBB 40000/50 = 800 -> staged, not executed.
    # Executed at T1+1h at that time's marks (AAA 110, BBB 50):
    #   cash 100000 - 400*110 - 800*50 = 100000 - 44000 - 40000 = 16000
    t_exec = "2026-01-02T01:00:00Z"
    home.setup(vault={"risk": {"cash_buffer": "0.2"}},
               prices=[("AAA", T0, "100"), ("BBB", T0, "50"), ("AAA", t_exec, "110")],
               signals=[sig(T0, ("AAA", "0.5", "alpha"), ("BBB", "0.5", "beta"))])
    home.cycle(T1, "--stage-only")
    queue = home.memory("autotrade_queue.json")["orders"]
    got = sorted((o["account_id"], o["symbol"], o["side"], D(o["qty"]), o["status"])
                 for o in queue)
    assert got == [("M", "AAA", "buy", D("400"), "staged"), ("M", "BBB", "buy", D("800"),
                                                             "staged")]
    assert all(o["client_order_id"] and o["order_id"] for o in queue)
    assert all({"order_id", "client_order_id", "account_id", "parent_id", "symbol", "side", "qty",
                "status"} <= set(o) for o in queue)
    assert home.qtys() == {} and home.cash() == D("100000")
    assert home.log("fill") == []
    shown = home.ok("queue", "show").stdout
    assert "AAA" in shown and "BBB" in shown
    home.ok("queue", "execute", "--at", t_exec)
    assert home.memory("autotrade_queue.json")["orders"] == []
    assert_decimals(home.qtys(), {"AAA": "400", "BBB": "800"})
    assert home.cash() == D("16000")
    fills = home.log("fill")
    assert {f["client_order_id"] for f in fills} == {o["client_order_id"] for o in queue}
    # the cycle is finished: running it again is refused
    assert home.run("cycle", "run", "--at", T1).returncode == 1


@scenario
def test_queue_execute_sells_first_and_reduces_a_buy_to_the_cash(home):
    # T1: AAA 0.5, BBB 0.5 @100 -> 500 + 500, cash 0.
    # T2 --stage-only with a new signal (AAA only, w 1), marks 100/100, E = 100000:
    #   staged: AAA buy 1000-500 = 500, BBB sell 500 (target 0).
    # Executed at T2+1h, AAA now 110, BBB 100:
    #   sell first: BBB 500 @100 -> cash 50000
    #   AAA buy 500 @110 = 55000 does not fit: 50000/110 = 454.54 -> 454 -> 49940; cash 60
    t_exec = "2026-01-03T01:00:00Z"
    home.setup(prices=[("AAA", T0, "100"), ("BBB", T0, "100"), ("AAA", t_exec, "110")],
               signals=[sig(T0, ("AAA", "0.5", "alpha"), ("BBB", "0.5", "beta")),
                        sig(T2, ("AAA", "1", "alpha"))])
    home.cycle(T1)
    home.cycle(T2, "--stage-only")
    queue = home.memory("autotrade_queue.json")["orders"]
    assert sorted((o["symbol"], o["side"], D(o["qty"])) for o in queue) == [
        ("AAA", "buy", D("500")), ("BBB", "sell", D("500"))]
    home.ok("queue", "execute", "--at", t_exec)
    got = [(f["symbol"], f["side"], D(f["qty"])) for f in home.log("fill", t_exec)]
    assert got == [("BBB", "sell", D("500")), ("AAA", "buy", D("454"))]
    assert_decimals(home.qtys(), {"AAA": "954"})
    assert home.cash() == D("60")


@scenario
def test_same_cycle_twice_refused_and_changes_nothing(home):
    home.setup(prices=[("AAA", T0, "100")], signals=[sig(T0, ("AAA", "1", "alpha"))])
    home.cycle(T1)
    before = (home.journal_sha(), home.status_journal_line(),
              home.memory_bytes("portfolio.json"), home.memory_bytes("trade_log.jsonl"))
    res = home.run("cycle", "run", "--at", T1)
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert res.stderr.strip()
    after = (home.journal_sha(), home.status_journal_line(),
             home.memory_bytes("portfolio.json"), home.memory_bytes("trade_log.jsonl"))
    assert after == before
    assert_decimals(home.qtys(), {"AAA": "1000"})


@scenario
def test_same_inputs_in_two_homes_give_identical_bytes(make_home):
    homes = [make_home(), make_home()]
    for h in homes:
        fifo_setup(h)
        h.cycle(T1)
        h.cycle(T2)
    a, b = homes
    for name in ("portfolio.json", "trade_log.jsonl", "vault_allocation.json",
                 "pnl_summary.json"):
        assert a.memory_bytes(name) == b.memory_bytes(name), name
    ids_a = [e["client_order_id"] for e in a.trade_log() if e["kind"] == "order"]
    assert ids_a and len(set(ids_a)) == len(ids_a)
    assert ids_a == [e["client_order_id"] for e in b.trade_log() if e["kind"] == "order"]
    assert a.journal_sha() == b.journal_sha()
