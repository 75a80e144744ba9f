"""Alerts: a projection of the journal that reaches the manager (`vanta alerts`, status,
memory/alerts.jsonl, exit 4 from `vanta run --once`), acknowledged by a journaled command,
and the same in a replay."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import T0, T1, T2, T3, Home, run_vanta, signals, vault_def
from vanta_box.core.timeutil import parse_ts

T4 = "2026-11-05T00:00:00Z"
T5 = "2026-11-06T00:00:00Z"


def follower(account: str, cash: str, multiplier: str, vault: str = "V") -> dict[str, Any]:
    return {"packet_version": 1, "account_id": account, "role": "follower", "vault_id": vault,
            "broker": {"kind": "paper", "starting_cash": cash},
            "mirroring": {"mode": "proportional", "multiplier": multiplier}}


def scenario(setup_vault: Any, drop: bool = True) -> Home:
    """A vault with a 5 % drawdown guard over AAA and BBB (half each), a manager with
    100,000 and a follower F with 10,000 at multiplier 2: F's AAA takes all its cash, so
    its BBB buy is rejected (insufficient_cash) every cycle. AAA falls 20 % at T2: the
    master's NAV falls 10 %, and the vault halts."""
    prices = [(s, t, "100") for s in ("AAA", "BBB") for t in (T0, T1)]
    prices += [("AAA", t, "80" if drop else "100") for t in (T2, T3, T4, T5)]
    prices += [("BBB", t, "100") for t in (T2, T3, T4, T5)]
    home: Home = setup_vault(vault_def(risk={"max_drawdown": "0.05"}), prices=prices)
    home.ok("onboard", home.write("f.json", follower("F", "10000", "2")), "--at", T0)
    home.ok("signals", "ingest", home.write("s.json", signals(
        "V", T0, [("AAA", "1", None), ("BBB", "1", None)])), "--at", T0)
    return home


def alerts_json(home: Home, *args: str) -> list[dict[str, Any]]:
    doc = json.loads(home.ok("alerts", "--json", *args).out)
    alerts: list[dict[str, Any]] = doc["alerts"]
    return alerts


def by_kind(alerts: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [a for a in alerts if a["kind"] == kind]
    return found


def test_a_halt_and_repeated_rejects_raise_alerts_once_and_exit_4(setup_vault: Any) -> None:
    home = scenario(setup_vault)
    first = home.vanta("run", "--once", "--at", T0)
    assert first.code == 4, first.out + first.err
    assert "new alert" in first.out and "insufficient_cash" in first.out
    assert "exit 4" in first.err
    reject = by_kind(alerts_json(home), "reject")
    assert (reject["account_id"], reject["vault_id"], reject["key"], reject["count"],
            reject["severity"], reject["state"]) == ("F", "V", "insufficient_cash", 1,
                                                       "warning", "open")
    assert reject["detail"]["symbols"] == ["BBB"] and reject["hint"]

    # the same rejects again: the same alert counts them, and nothing is new
    second = home.vanta("run", "--once", "--at", T1)
    assert second.code == 0, second.out + second.err
    assert "new alert" not in second.out
    again = by_kind(alerts_json(home), "reject")
    assert (again["alert_id"], again["count"], again["detail"]["cycles"]) == (
        reject["alert_id"], 2, 2)

    # AAA falls 20 %: the master's NAV is 90,000 < 95 % of 100,000: the vault halts
    third = home.vanta("run", "--once", "--at", T2)
    assert third.code == 4, third.out + third.err
    assert "halted by its drawdown guard" in third.out
    listed = alerts_json(home)
    halt = by_kind(listed, "vault.halted")
    assert (halt["vault_id"], halt["severity"], halt["count"], halt["first_at"]) == (
        "V", "critical", 1, T2)
    assert (halt["detail"]["nav"], halt["detail"]["peak_nav"], halt["detail"]["threshold"]) \
        == ("90000", "100000", "95000")
    assert "vanta vault resume V" in halt["hint"]
    # a halted vault buys nothing: no reject can show, so the rejects are not "resolved"
    assert by_kind(listed, "reject")["state"] == "open"

    fourth = home.vanta("run", "--once", "--at", T3)
    assert fourth.code == 0, fourth.out + fourth.err
    listed = alerts_json(home)
    assert by_kind(listed, "vault.halted")["count"] == 2  # cycles halted
    assert by_kind(listed, "reject")["count"] == 2

    # memory/alerts.jsonl carries the same alerts, one line each, exact values
    lines = [json.loads(line) for line in
             (home.root / "memory" / "alerts.jsonl").read_text().splitlines()]
    assert [a["first_seq"] for a in lines] == sorted(a["first_seq"] for a in lines)
    assert sorted(lines, key=lambda a: a["alert_id"]) == sorted(
        alerts_json(home, "--all"), key=lambda a: a["alert_id"])
    assert {a["kind"] for a in lines} >= {"vault.halted", "reject"}
    # status shows the open ones first
    status = home.ok("status").out.splitlines()
    assert status[0].startswith("alerts   2 open")
    assert "CRITICAL" in status[1] and halt["alert_id"] in status[1]
    # the journal verifies and replays identically with the alerts in it
    assert home.ok("audit", "verify").code == 0


def test_acknowledged_alerts_are_journaled_and_not_new_again(setup_vault: Any) -> None:
    home = scenario(setup_vault)
    for at in (T0, T1, T2):
        home.vanta("run", "--once", "--at", at)
    halt = by_kind(alerts_json(home), "vault.halted")
    assert home.vanta("alerts", "ack", halt["alert_id"], "--at", T1).code == 1  # before it
    done = home.ok("alerts", "ack", halt["alert_id"][:6], "--at", T2)
    assert halt["alert_id"] in done.out and "acknowledged" in done.out
    again = home.vanta("alerts", "ack", halt["alert_id"], "--at", T2)
    assert again.code == 1 and "acknowledged" in again.err
    assert home.vanta("alerts", "ack", "0123456789ab", "--at", T2).code == 2
    assert home.vanta("alerts", "ack", "not-an-id", "--at", T2).code == 2
    acked = by_kind(alerts_json(home), "vault.halted")
    assert (acked["state"], acked["acked_at"]) == ("acknowledged", T2)
    # still halted at the next run: the same alert, acknowledged: nothing new, exit 0
    assert home.vanta("run", "--once", "--at", T3).code == 0
    assert by_kind(alerts_json(home), "vault.halted")["count"] == 2
    # status lists open alerts only; --all lists every alert
    assert halt["alert_id"] not in home.ok("status").out
    # resumed (the peak restarted), the halt is resolved; the next halt is a new alert
    home.ok("vault", "resume", "V", "--reset-peak", "--at", T3)
    resolved = [a for a in alerts_json(home, "--all") if a["kind"] == "vault.halted"]
    assert [(a["state"], a["resolved_at"]) for a in resolved] == [("resolved", T3)]
    assert not [a for a in alerts_json(home) if a["kind"] == "vault.halted"]
    kinds = [line["kind"] for line in journal(home)]
    assert kinds.count("alert.ack") == 1
    assert home.ok("audit", "verify").code == 0


def journal(home: Home) -> list[dict[str, Any]]:
    import apsw

    conn = apsw.Connection(f"file:{home.root / 'vanta.db'}?mode=ro",
                           flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    try:
        return [{"seq": s, "ts": t, "kind": k, "payload": json.loads(p)}
                for s, t, k, p in conn.execute("SELECT seq, ts, kind, payload FROM journal")]
    finally:
        conn.close()


def test_since_lists_resolved_alerts_too_and_ids_come_from_content(setup_vault: Any,
                                                                   tmp_path: Any) -> None:
    home = scenario(setup_vault)
    for at in (T0, T1, T2):
        home.vanta("run", "--once", "--at", at)
    home.ok("vault", "resume", "V", "--reset-peak", "--at", T2)
    # open first, then resolved: the rejects (last seen at T1), the halt (resolved at T2)
    assert [(a["kind"], a["state"]) for a in alerts_json(home, "--since", T1)] == [
        ("reject", "open"), ("vault.halted", "resolved")]
    assert [a["kind"] for a in alerts_json(home, "--since", T2)] == ["vault.halted"]
    assert [a["kind"] for a in alerts_json(home)] == ["reject"]  # unresolved ones
    assert alerts_json(home, "--since", T3) == []
    assert home.vanta("alerts", "--since", "yesterday").code == 2
    # the same journal gives the same alerts: the ids are derived from its rows
    from vanta_box.service import alerts
    from vanta_box.store import db

    conn = db.connect(home.root / "vanta.db")
    try:
        computed = [a.line() for a in alerts.compute(conn, parse_ts(T2))]
    finally:
        conn.close()
    assert [a["alert_id"] for a in computed] == [a["alert_id"] for a in
                                                 alerts_json(home, "--all", "--at", T2)]
    replayed = tmp_path / "replayed.db"
    assert run_vanta("replay", "--db", str(home.root / "vanta.db"), "--out",
                     str(replayed)).code == 0
    conn = db.connect(replayed)
    try:
        assert [a.line() for a in alerts.compute(conn, parse_ts(T2))] == computed
    finally:
        conn.close()


def test_rejects_that_come_and_go_stay_one_alert(setup_vault: Any) -> None:
    """Resolved only after three cycles in a row without them."""
    from vanta_box.service.alerts import QUIET

    assert QUIET["reject"] == 3
    home = scenario(setup_vault, drop=False)
    assert home.vanta("run", "--once", "--at", T0).code == 4
    (first,) = [a for a in alerts_json(home) if a["kind"] == "reject"]
    # paused for two cycles (skipped: no rejects), then resumed: the rejects come back
    home.ok("follower", "pause", "F", "--at", T0)
    for at in (T1, T2):
        assert home.vanta("run", "--once", "--at", at).code == 0
    home.ok("follower", "resume", "F", "--at", T2)
    assert home.vanta("run", "--once", "--at", T3).code == 0  # nothing new
    (still,) = [a for a in alerts_json(home) if a["kind"] == "reject"]
    assert (still["alert_id"], still["state"], still["count"]) == (first["alert_id"], "open", 2)
    # three cycles in a row without them: resolved (F cannot buy: paused again)
    home.ok("follower", "pause", "F", "--at", T3)
    for at in (T4, T5, "2026-11-07T00:00:00Z"):
        home.vanta("run", "--once", "--at", at)
    assert [a["state"] for a in alerts_json(home, "--all") if a["kind"] == "reject"] == [
        "resolved"]


@pytest.mark.parametrize("reason", ["below_min_equity"])
def test_an_account_skipped_cycle_after_cycle_is_an_alert(setup_vault: Any,
                                                          reason: str) -> None:
    from vanta_box.service.alerts import SKIP_STREAK

    prices = [("AAA", t, "100") for t in (T0, T1, T2, T3)]
    home: Home = setup_vault(vault_def(mirroring={"min_account_equity": "5000"}),
                             prices=prices)
    home.ok("onboard", home.write("s.json", follower("SMALL", "1000", "1")), "--at", T0)
    home.ok("signals", "ingest", home.write("g.json", signals("V", T0, [("AAA", "1", None)])),
            "--at", T0)
    codes = [home.vanta("run", "--once", "--at", at).code for at in (T0, T1, T2, T3)]
    assert codes == [0, 0, 4, 0]  # the third cycle in a row makes it an alert
    skipped = by_kind(alerts_json(home), "account.skipped")
    assert (skipped["account_id"], skipped["key"], skipped["count"]) == (
        "SMALL", reason, SKIP_STREAK + 1)
    assert skipped["first_at"] == T0
    assert "1,000.00" in home.ok("alerts").out  # the console rounds to the cent
    assert skipped["detail"] == {"equity": "1000", "min_account_equity": "5000"}


def test_stale_marks_expired_overlays_and_overdue_fees(setup_vault: Any) -> None:
    home: Home = setup_vault(prices=[("AAA", T0, "100")])
    home.ok("onboard", home.write("f.json", {**follower("F", "10000", "1"), "fee_agreement": {
        "type": "flat", "flat_usd": "300"}}), "--at", T0)
    home.ok("signals", "ingest", home.write("g.json", signals("V", T0, [("AAA", "1", None)])),
            "--at", T0)
    home.ok("cycle", "run", "--at", T0)
    home.ok("overlay", "set", "V", "--flip", "--ttl", "6h", "--at", T0)
    stale = home.vanta("cycle", "run", "--at", T2)  # marks two days old, overlay expired
    assert stale.code == 0
    listed = alerts_json(home)
    assert by_kind(listed, "marks.stale")["detail"]["symbols"] == {"AAA": T0}
    expired = by_kind(listed, "overlay.expired")
    assert (expired["severity"], expired["key"]) == ("info", "flip")
    # acknowledging a one-off alert ends it
    home.ok("alerts", "ack", expired["alert_id"], "--at", T2)
    assert not [a for a in alerts_json(home) if a["kind"] == "overlay.expired"]
    # November billed on Dec 1; unpaid 30 days later it is an alert
    home.ok("fees", "run", "--period", "2026-11", "--at", "2026-12-01T00:00:00Z")
    assert not [a for a in alerts_json(home, "--at", "2026-12-30T00:00:00Z")
                if a["kind"] == "fee.overdue"]
    (fee,) = [a for a in alerts_json(home, "--at", "2026-12-31T00:00:00Z",
                                     ) if a["kind"] == "fee.overdue"]
    assert (fee["account_id"], fee["key"], fee["detail"]["outstanding"]) == (
        "F", "2026-11", "300")
    assert fee["first_at"] == "2026-12-31T00:00:00Z"


def test_alerts_of_an_empty_home(home: Home) -> None:
    assert "nothing needs you" in home.ok("alerts").out
    assert alerts_json(home) == []
    assert home.ok("status").out.startswith("alerts   none open")
