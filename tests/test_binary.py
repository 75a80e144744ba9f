"""The one-file binary: build it with build/build.sh, run its demo, compare with the source.

Slow (a full PyInstaller build); skipped only when PyInstaller is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = ROOT / "build" / "build.sh"
BINARY = ROOT / "build" / "dist" / "vanta"


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VANTA_HOME", "VANTA_DEBUG")}
    # Build with the interpreter running the tests (the one we checked has PyInstaller).
    env["PYTHON"] = sys.executable
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("PyInstaller", reason="PyInstaller not installed (dev extra)")
    build = _run(["bash", str(BUILD_SCRIPT)], cwd=tmp_path_factory.mktemp("build"),
                 timeout=15 * 60)
    assert build.returncode == 0, f"build failed:\n{build.stdout}\n{build.stderr}"
    assert build.stdout.strip().splitlines()[-1] == str(BINARY)
    assert BINARY.is_file() and os.access(BINARY, os.X_OK)
    return BINARY


@pytest.mark.slow
def test_binary_demo_matches_source(binary: Path, tmp_path: Path) -> None:
    helped = _run([str(BINARY), "--help"], cwd=tmp_path, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert "demo" in helped.stdout

    home = tmp_path / "home"
    demo = _run([str(BINARY), "demo", "--home", str(home)], cwd=tmp_path, timeout=600)
    assert demo.returncode == 0, f"binary demo failed:\n{demo.stdout}\n{demo.stderr}"
    portfolio = home / "memory" / "portfolio.json"
    assert portfolio.is_file()
    assert (home / "memory" / "trade_log.jsonl").is_file()

    status = _run([str(BINARY), "--home", str(home), "status"], cwd=tmp_path, timeout=120)
    assert status.returncode == 0, f"binary status failed:\n{status.stdout}\n{status.stderr}"

    from vanta_box import home as home_module
    from vanta_box.service import demo as demo_service

    source_home = tmp_path / "source-home"
    demo_service.run(home_module.resolve(source_home), lambda _line: None)
    expected = (source_home / "memory" / "portfolio.json").read_bytes()
    assert portfolio.read_bytes() == expected
    # templates are bundled (the demo writes the HTML reports) and the auditor's check
    # runs from the binary alone, offline, on the lone file
    assert (home / "reports" / "index.html").read_bytes() == (
        source_home / "reports" / "index.html").read_bytes()
    verify = _run([str(BINARY), "audit", "verify", "--db", str(home / "vanta.db")],
                  cwd=tmp_path, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "verdict: OK" in verify.stdout


@pytest.mark.slow
def test_binary_trades_ccxt_and_alpaca_accounts(binary: Path, tmp_path: Path) -> None:
    """The bundled alpaca-py and ccxt (one exchange module, found by name) trade through the
    binary alone, against the loopback servers of the tests."""
    import json

    from tests.alpaca_sim import AlpacaSim
    from tests.ccxt_sim import CoinbaseSim
    from tests.conftest import prices_csv, signals, vault_def

    home = tmp_path / "home"
    env = {**os.environ, "VANTA_PASSPHRASE": "the binary's live test passphrase"}
    env.pop("VANTA_HOME", None)

    def vanta(*args: str) -> str:
        done = subprocess.run([str(binary), "--home", str(home), *args], env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def write(name: str, content: object) -> str:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return str(path)

    t0, t1 = "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"
    with CoinbaseSim(products=("BTC-USD",)) as cb, AlpacaSim() as al:
        cb.add_account("cb-key", CoinbaseSim.new_secret("bin"), passphrase="pp", cash="10000")
        cb.set_price("BTC/USD", "20000")
        al.add_account("PKBINARY0001", "binary-alpaca-secret-0123456789", cash="10000")
        al.set_price("BTC/USD", "20000")
        al.fill_on_submit = True
        vanta("init")
        vanta("vault", "import", write("v.json", {"vaults": [vault_def(
            risk={"max_single_pos_pct": "1", "cash_buffer": "0.2"})]}), "--at", t0)
        vanta("instruments", "import", write("i.json", [
            {"symbol": "BTC/USD", "asset_class": "crypto", "lot_step": "0.0001",
             "min_notional": "10"}]), "--at", t0)
        vanta("prices", "ingest", write("p.csv", prices_csv([("BTC/USD", t0, "20000")])),
              "--at", t0)
        vanta("signals", "ingest", write("s.json", signals("V", t0, [("BTC/USD", "1", None)])),
              "--at", t0)
        manager = {"packet_version": 1, "account_id": "M", "role": "manager", "vault_id": "V",
                   "broker": {"kind": "paper", "starting_cash": "100000"}}
        coinbase = {"packet_version": 1, "account_id": "C", "role": "follower", "vault_id": "V",
                    "broker": {"kind": "ccxt", "exchange": "coinbaseexchange",
                               "api_key": "cb-key", "secret": CoinbaseSim.new_secret("bin"),
                               "password": "pp", "base_url": cb.base_url},
                    "fee_agreement": {"type": "flat", "flat_usd": "10"}}
        alpaca = {"packet_version": 1, "account_id": "A", "role": "follower", "vault_id": "V",
                  "broker": {"kind": "alpaca", "key_id": "PKBINARY0001",
                             "secret_key": "binary-alpaca-secret-0123456789",
                             "base_url": al.base_url},
                  "fee_agreement": {"type": "flat", "flat_usd": "10"}}
        vanta("onboard", write("m.json", manager), write("c.json", coinbase),
              write("a.json", alpaca), "--at", t0)
        vanta("cycle", "run", "--at", t1)
        # 10000 x 0.8 at 20000 = 0.4 BTC each, one order each
        assert cb.balance("cb-key", "BTC") == al.position_qty("PKBINARY0001", "BTC/USD") == (
            __import__("decimal").Decimal("0.4"))
        assert len(cb.order_posts(key="cb-key")) == len(al.order_posts()) == 1


@pytest.mark.slow
def test_binary_sends_notifications(binary: Path, tmp_path: Path) -> None:
    """apprise finds its plugins inside the bundle: a json:// URL reaches a loopback hook."""
    from tests.test_notify import Hook

    home = tmp_path / "home"
    env = {**os.environ, "VANTA_PASSPHRASE": "the binary's notify test passphrase"}
    env.pop("VANTA_HOME", None)
    hook = Hook()
    try:
        for args in (["init"], ["notify", "add", hook.url("bin/tok-binary")],
                     ["notify", "test"]):
            done = subprocess.run([str(binary), "--home", str(home), *args], env=env,
                                  capture_output=True, text=True, timeout=300, check=False)
            assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    finally:
        hook.close()
    assert [path for path, _body in hook.posts] == ["/bin/tok-binary"]


@pytest.mark.slow
def test_binary_invoices_through_stripe_and_btcpay(binary: Path, tmp_path: Path) -> None:
    """The bundled stripe library (and its CA file) and requests invoice from the binary."""
    import json

    from tests.btcpay_sim import BTCPaySim
    from tests.conftest import manager_packet, vault_def
    from tests.localstripe_server import LocalStripe
    from tests.test_collect import follower

    home = tmp_path / "home"
    env = {**os.environ, "VANTA_PASSPHRASE": "the binary's collection test passphrase"}
    env.pop("VANTA_HOME", None)

    def vanta(*args: str) -> str:
        done = subprocess.run([str(binary), "--home", str(home), *args], env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def write(name: str, content: object) -> str:
        path = tmp_path / name
        path.write_text(json.dumps(content))
        return str(path)

    t0 = "2026-11-01T00:00:00Z"
    with LocalStripe() as ls, BTCPaySim("bin-btcpay-key", "S1") as bt:
        customer = ls.customer("bin@example.com")
        vanta("init")
        vanta("vault", "import", write("v.json", {"vaults": [vault_def()]}), "--at", t0)
        vanta("onboard", write("m.json", manager_packet()),
              write("f1.json", follower("F1", {"via": "stripe", "customer": customer})),
              write("f2.json", follower("F2", {"via": "btcpay", "store_id": "S1"})),
              "--at", t0)
        vanta("fees", "run", "--period", "2026-11", "--at", "2026-12-01T00:00:00Z")
        vanta("processor", "set", "stripe", "--api-key", ls.api_key, "--base-url", ls.base_url)
        vanta("processor", "set", "btcpay", "--url", bt.url, "--api-key", "bin-btcpay-key",
              "--store-id", "S1")
        out = vanta("fees", "collect", "--at", "2026-12-01T00:00:00Z")
        assert out.count("invoiced ") == 2, out
        assert len(ls.invoices(customer)) == len(bt.invoices) == 1
