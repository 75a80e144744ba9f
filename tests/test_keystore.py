"""The keystore: secrets encrypted at rest, bound to their account, never anywhere else."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.conftest import T0, T1, Home, signals
from vanta_box.core.errors import KeystoreError
from vanta_box.keystore import Keystore

SECRETS = {
    "F_ALP": {"key_id": "PKSECRETKEYIDZZ9", "secret_key": "alpaca-secret-Q7x2-very-private"},
    "F_CCX": {"api_key": "ccxt-apikey-77fa3-private", "secret": "ccxt-secret-9b1c-private",
              "password": "ccxt-passphrase-41d"},
}


def test_roundtrip_wrong_passphrase_and_swapped_records(tmp_path: Path) -> None:
    path = tmp_path / "keystore"
    store = Keystore(path, passphrase="correct horse")
    # Long, distinctive secrets: two-character ones ("s1") turn up by chance in base64.
    first = {"api_key": "key-of-A1-never-in-clear", "secret": "secret-of-A1-stays-hidden"}
    second = {"api_key": "key-of-A2-never-in-clear", "secret": "secret-of-A2-stays-hidden"}
    ref = store.put("A1", first)
    store.put("A2", second)
    assert ref == "keystore:A1"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    raw = path.read_text()
    for value in (*first.values(), *second.values()):
        assert value not in raw
    assert Keystore(path, passphrase="correct horse").get("A1") == first
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        Keystore(path, passphrase="wrong").get("A1")
    with pytest.raises(KeystoreError, match="passphrase"):
        Keystore(path, passphrase="").get("A1")
    # a record moved to another account does not decrypt (the account id is bound in)
    data = json.loads(raw)
    data["records"]["A1"], data["records"]["A2"] = data["records"]["A2"], data["records"]["A1"]
    path.write_text(json.dumps(data))
    with pytest.raises(KeystoreError, match="does not decrypt"):
        Keystore(path, passphrase="correct horse").get("A1")


def _packets(home: Home) -> list[str]:
    # a venue that refuses connections (nothing listens on port 9): the keys are never
    # checked (onboarded --offline) and the cycles skip the account
    alpaca = {"packet_version": 1, "account_id": "F_ALP", "role": "follower", "vault_id": "V",
              "broker": {"kind": "alpaca", "paper": True, "base_url": "http://127.0.0.1:9",
                         **SECRETS["F_ALP"]},
              "mirroring": {"mode": "proportional"}}
    ccxt = {"packet_version": 1, "account_id": "F_CCX", "role": "follower", "vault_id": "V",
            "broker": {"kind": "ccxt", "exchange": "binance", "sandbox": True,
                       **SECRETS["F_CCX"]}, "mirroring": {"mode": "proportional"}}
    paper = {"packet_version": 1, "account_id": "F_PAP", "role": "follower", "vault_id": "V",
             "broker": {"kind": "paper", "starting_cash": "10000"}}
    return [home.write(f"{p['account_id']}.json", p) for p in (alpaca, ccxt, paper)]


def test_secrets_never_leave_the_keystore(setup_vault) -> None:  # type: ignore[no-untyped-def]
    home: Home = setup_vault(prices=[("AAA", T0, "10"), ("AAA", T1, "11")])
    env = {"VANTA_PASSPHRASE": "a passphrase for the test"}
    home.ok("onboard", *_packets(home), "--offline", "--at", T0, env=env)
    home.ok("signals", "ingest", home.write("s.json", signals("V", T0, [("AAA", "1", None)])))
    home.ok("cycle", "run", "--at", T0, env=env)
    home.ok("cycle", "run", "--at", T1, env=env)
    home.ok("emit", "--at", T1)
    listed = home.ok("follower", "list").out
    assert "F_ALP" in listed and "key " in listed
    needles = [v.encode() for account in SECRETS.values() for v in account.values()]
    scanned = 0
    for path in home.root.rglob("*"):
        if path.is_file() and path.name != "keystore":
            data = path.read_bytes()
            scanned += 1
            for needle in needles:
                assert needle not in data, f"{needle!r} found in {path}"
    assert scanned >= 8  # vanta.db (+ -wal), memory/*.json, trade_log.jsonl ...
    keystore = Keystore(home.root / "keystore", passphrase=env["VANTA_PASSPHRASE"])
    assert keystore.get("F_CCX") == SECRETS["F_CCX"]
    skipped = [line for line in home.trade_log() if line["kind"] == "skip"
               and line["account_id"] in ("F_ALP", "F_CCX")]
    # both venues' hosts are unreachable here (no network): each account is skipped
    assert {s["reason"] for s in skipped} == {"venue_error:unreachable"}


def test_onboarding_a_broker_with_secrets_needs_the_passphrase(setup_vault) -> None:  # type: ignore[no-untyped-def]
    home: Home = setup_vault()
    before = home.db_bytes()
    result = home.vanta("onboard", _packets(home)[0], "--at", T0, env={"VANTA_PASSPHRASE": ""})
    assert result.code == 2 and "VANTA_PASSPHRASE" in result.err
    assert SECRETS["F_ALP"]["secret_key"] not in result.err + result.out
    assert home.db_bytes() == before
    assert not (home.root / "keystore").exists()
