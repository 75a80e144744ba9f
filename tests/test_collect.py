"""Fees collect themselves (SPEC §9 Collection): invoices at Stripe (localstripe, started on
loopback: tests/localstripe_server.py says what it lacks) and at BTCPay (tests/btcpay_sim.py,
Greenfield's invoice routes), payments recorded once, keys only in the keystore."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.btcpay_sim import BTCPaySim
from tests.conftest import T0, Home
from tests.localstripe_server import LocalStripe

PASS = {"VANTA_PASSPHRASE": "a passphrase for the collection tests"}
BILLED = "2026-12-01T00:00:00Z"
LATER = "2026-12-02T00:00:00Z"
BTCPAY_KEY = "btcpay-KEY-7f3a9c2e-collect-SECRET"
STORE = "StoreVanta01"


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[LocalStripe]:
    with LocalStripe() as ls:
        yield ls


@pytest.fixture
def btcpay() -> Iterator[BTCPaySim]:
    with BTCPaySim(BTCPAY_KEY, STORE) as sim:
        yield sim


def follower(account_id: str, collect: dict[str, str] | None) -> dict[str, Any]:
    fee: dict[str, Any] = {"type": "flat", "flat_usd": "100"}
    if collect:
        fee["collect"] = collect
    return {"packet_version": 1, "account_id": account_id, "role": "follower",
            "vault_id": "V", "broker": {"kind": "paper", "starting_cash": "10000"},
            "fee_agreement": fee}


def billed(setup_vault: Any, stripe_server: LocalStripe, btcpay: BTCPaySim,
           customer: str) -> Home:
    """F1 collects through Stripe, F2 through BTCPay, F3 pays by hand: November billed
    (a flat 100 for 30 of 30 days each), both processors set."""
    home: Home = setup_vault()
    home.ok("onboard", *(home.write(f"{a}.json", follower(a, c)) for a, c in (
        ("F1", {"via": "stripe", "customer": customer}),
        ("F2", {"via": "btcpay", "store_id": STORE}), ("F3", None))), "--at", T0)
    home.ok("fees", "run", "--period", "2026-11", "--at", BILLED)
    home.ok("processor", "set", "stripe", "--api-key", stripe_server.api_key, "--base-url",
            stripe_server.base_url, env=PASS)
    home.ok("processor", "set", "btcpay", "--url", btcpay.url, "--api-key", BTCPAY_KEY,
            "--store-id", STORE, env=PASS)
    return home


def journal_kinds(home: Home) -> list[str]:
    with sqlite3.connect(home.root / "vanta.db") as conn:
        return [k for (k,) in conn.execute("SELECT kind FROM journal ORDER BY seq")]


def ledger(home: Home) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(home.ok("fees", "list", "--json").out)
    return doc


def owed(home: Home) -> dict[str, str]:
    return {o["account_id"]: o["outstanding"] for o in ledger(home)["outstanding"]}


def test_one_invoice_per_entry_and_each_payment_recorded_once(
        setup_vault: Any, stripe_server: LocalStripe, btcpay: BTCPaySim) -> None:
    customer = stripe_server.customer("f1@example.com")
    home = billed(setup_vault, stripe_server, btcpay, customer)
    before = journal_kinds(home)
    dry = home.ok("fees", "collect", "--period", "2026-11", "--dry-run")
    assert "would invoice F1/2026-11/1: 100.00 USD via stripe" in dry.out
    assert "would invoice F2/2026-11/1: 100.00 USD via btcpay" in dry.out
    assert "F3" not in dry.out and journal_kinds(home) == before  # changes nothing
    assert not stripe_server.invoices(customer) and not btcpay.invoices

    made = home.ok("fees", "collect", "--period", "2026-11", "--at", BILLED, env=PASS)
    assert made.out.count("invoiced ") == 2
    (inv,) = stripe_server.invoices(customer)
    assert (inv["amount_due"], inv["currency"], inv["metadata"]["entry_id"], inv["status"]) == (
        10000, "usd", "F1/2026-11/1", "open")
    (bt,) = btcpay.by_order("F2/2026-11/1")
    assert (bt["amount"], bt["currency"]) == ("100", "USD")
    again = home.ok("fees", "collect", "--period", "2026-11", "--at", BILLED, env=PASS)
    assert "nothing to invoice" in again.out
    assert len(stripe_server.invoices(customer)) == len(btcpay.invoices) == 1

    stripe_server.pay(inv["id"])
    btcpay.pay(bt["id"], "60")  # a partial payment
    synced = home.ok("fees", "collect", "--sync", "--at", LATER, env=PASS)
    assert "F1/2026-11/1: paid 100.00 through stripe" in synced.out
    assert "F2/2026-11/1: paid 60.00 through btcpay" in synced.out and "(partial)" in synced.out
    assert owed(home) == {"F1": "0.00", "F2": "40.00", "F3": "100.00"}
    kinds = journal_kinds(home)
    home.ok("fees", "collect", "--sync", "--at", LATER, env=PASS)  # twice: nothing new
    assert journal_kinds(home) == kinds and owed(home)["F2"] == "40.00"

    btcpay.pay(bt["id"], "50")  # 110 in all: 10 more than was owed
    over = home.ok("fees", "collect", "--sync", "--at", LATER, env=PASS)
    assert "F2/2026-11/1: paid 40.00 through btcpay" in over.out and "(overpaid)" in over.out
    assert owed(home) == {"F1": "0.00", "F2": "0.00", "F3": "100.00"}
    payments = ledger(home)["entries"]
    assert {e["entry_id"]: e["paid"] for e in payments} == {
        "F1/2026-11/1": "100.00", "F2/2026-11/1": "100.00", "F3/2026-11/1": "0.00"}

    alerts = json.loads(home.ok("alerts", "--json", "--at", LATER).out)["alerts"]
    flagged = sorted((a["account_id"], a["key"]) for a in alerts if a["kind"] == "fee.payment")
    assert flagged == [("F2", "overpaid"), ("F2", "partial")]
    doc = json.loads(home.ok("statement", "F1", "--period", "2026-11", "--json").out)
    (entry,) = doc["ledger"]["entries"]
    assert entry["invoice"]["state"] == "paid" and entry["invoice"]["ref"] == inv["id"]
    assert entry["invoice"]["url"].endswith(inv["id"])
    verdict = home.ok("audit", "verify")  # offline: replay never calls a processor
    assert "replay: identical" in verdict.out
    _keys_only_in_keystore(home, [stripe_server.api_key, BTCPAY_KEY])


def test_a_lost_answer_or_a_crash_never_makes_a_second_invoice(
        setup_vault: Any, stripe_server: LocalStripe, btcpay: BTCPaySim) -> None:
    customer = stripe_server.customer("f1-retry@example.com")
    home = billed(setup_vault, stripe_server, btcpay, customer)
    btcpay.fail_after_create = 1  # the invoice is made, the answer is a 500
    # a process that made F1's Stripe invoice and died before recording it
    c = stripe_server.client().v1
    c.invoice_items.create(params={"customer": customer, "amount": 10000, "currency": "usd",
                                   "metadata": {"entry_id": "F1/2026-11/1"}})
    c.invoices.create(params={"customer": customer, "metadata": {"entry_id": "F1/2026-11/1"},
                              "pending_invoice_items_behavior": "include"})
    first = home.vanta("fees", "collect", "--at", BILLED, env=PASS)
    assert first.code == 3, first.out + first.err
    assert "F2/2026-11/1" in first.err and "500" in first.err
    assert "invoiced F1/2026-11/1" in first.out  # adopted, not made again
    second = home.ok("fees", "collect", "--at", BILLED, env=PASS)
    assert "invoiced F2/2026-11/1" in second.out
    assert len(stripe_server.invoices(customer)) == 1
    assert len(btcpay.invoices) == 1 and len(btcpay.creates) == 1
    assert stripe_server.invoices(customer)[0]["status"] == "open"  # finalized on adoption


def test_a_reversed_entry_voids_its_open_invoice(
        setup_vault: Any, stripe_server: LocalStripe, btcpay: BTCPaySim) -> None:
    customer = stripe_server.customer("f1-void@example.com")
    home = billed(setup_vault, stripe_server, btcpay, customer)
    home.ok("fees", "collect", "--at", BILLED, env=PASS)
    for account in ("F1", "F2"):
        home.ok("fees", "reverse", f"{account}/2026-11/1", "--reason", "billed in error",
                "--at", LATER)
    voided = home.ok("fees", "collect", "--at", LATER, env=PASS)
    assert voided.out.count("voided ") == 2
    (inv,) = stripe_server.invoices(customer)
    assert inv["status"] == "void"
    (bt,) = btcpay.invoices.values()
    assert bt["status"] == "Invalid"
    home.ok("fees", "run", "--period", "2026-11", "--at", LATER)  # the rebill: new entries
    rebilled = home.ok("fees", "collect", "--at", LATER, env=PASS)
    assert "invoiced F1/2026-11/2" in rebilled.out and "invoiced F2/2026-11/2" in rebilled.out
    assert len(stripe_server.invoices(customer)) == 2 and len(btcpay.invoices) == 2


def test_processor_settings_are_checked_and_kept_in_the_keystore(
        setup_vault: Any, stripe_server: LocalStripe, btcpay: BTCPaySim) -> None:
    home: Home = setup_vault()
    for args in (["stripe", "--api-key", " "],
                 ["stripe", "--api-key", "sk_x", "--base-url", "ftp://x"],
                 ["btcpay", "--api-key", BTCPAY_KEY, "--url", btcpay.url],
                 ["stripe", "--api-key", "sk_x", "--store-id", STORE]):
        bad = home.vanta("processor", "set", *args, env=PASS)
        assert bad.code == 2, (args, bad.out, bad.err)
    assert home.vanta("processor", "set", "stripe", "--api-key", "sk_x",
                      env={"VANTA_PASSPHRASE": ""}).code == 2
    assert "no processor set" in home.ok("processor", "list", env=PASS).out
    home.ok("processor", "set", "btcpay", "--url", btcpay.url, "--store-id", STORE,
            env={**PASS, "VANTA_PROCESSOR_API_KEY": BTCPAY_KEY})
    listed = json.loads(home.ok("processor", "list", "--json", env=PASS).out)
    assert [(r["processor"], r["address"], r["store_id"]) for r in listed] == [
        ("btcpay", btcpay.url, STORE)]
    assert BTCPAY_KEY not in json.dumps(listed)
    refused = home.vanta("onboard", home.write("bad.json", follower(
        "F9", {"via": "stripe", "store_id": STORE})), "--at", T0)
    assert refused.code == 2 and "fee_agreement.collect" in refused.err
    home.ok("processor", "remove", "btcpay", env=PASS)
    assert home.vanta("processor", "remove", "btcpay", env=PASS).code == 1
    _keys_only_in_keystore(home, [BTCPAY_KEY])


def test_collect_without_its_processor_says_so_and_exits_3(
        setup_vault: Any, stripe_server: LocalStripe, btcpay: BTCPaySim) -> None:
    home: Home = setup_vault()
    home.ok("onboard", home.write("F2.json", follower("F2", {"via": "btcpay"})), "--at", T0)
    home.ok("fees", "run", "--period", "2026-11", "--at", BILLED)
    missing = home.vanta("fees", "collect", "--at", BILLED, env=PASS)
    assert missing.code == 3 and "no btcpay processor is set" in missing.err
    assert "fees.invoiced" not in journal_kinds(home)
    assert home.vanta("fees", "collect", "--sync", "--dry-run").code == 2
    assert home.vanta("fees", "collect", "--period", "2026-13", "--dry-run").code == 2
    home.ok("processor", "set", "btcpay", "--url", btcpay.url, "--api-key", "wrong-key",
            "--store-id", STORE, env=PASS)
    refused = home.vanta("fees", "collect", "--at", BILLED, env=PASS)
    assert refused.code == 3 and "(auth)" in refused.err and "wrong-key" not in refused.err
    home.ok("processor", "set", "btcpay", "--url", btcpay.url, "--api-key", BTCPAY_KEY,
            "--store-id", STORE, env=PASS)
    home.ok("fees", "collect", "--at", BILLED, env=PASS)  # no store_id: the processor's
    (bt,) = btcpay.invoices.values()
    assert bt["metadata"]["orderId"] == "F2/2026-11/1" and Decimal(bt["amount"]) == 100


def _keys_only_in_keystore(home: Home, keys: list[str]) -> None:
    for path in home.root.rglob("*"):
        if path.is_file() and path.name != "keystore":
            data = path.read_bytes()
            for key in keys:
                assert key.encode() not in data, f"{key} found in {path}"


def test_vanta_run_syncs_the_payments_of_open_invoices(
        setup_vault: Any, stripe_server: LocalStripe, btcpay: BTCPaySim) -> None:
    customer = stripe_server.customer("f1-run@example.com")
    home = billed(setup_vault, stripe_server, btcpay, customer)
    home.ok("fees", "collect", "--at", BILLED, env=PASS)
    (inv,) = stripe_server.invoices(customer)
    stripe_server.pay(inv["id"])
    run = home.vanta("run", "--once", "--at", LATER, env=PASS)
    assert run.code == 0, run.out + run.err
    assert "F1/2026-11/1: paid 100.00 through stripe" in run.out
    assert owed(home)["F1"] == "0.00" and owed(home)["F2"] == "100.00"
    without = home.vanta("run", "--once", "--at", "2026-12-03T00:00:00Z")  # no passphrase
    assert without.code == 3 and "VANTA_PASSPHRASE" in without.err


def test_the_follower_page_shows_its_invoice_and_the_other_agreements(
        setup_vault: Any, stripe_server: LocalStripe, btcpay: BTCPaySim) -> None:
    customer = stripe_server.customer("f1-page@example.com")
    home = billed(setup_vault, stripe_server, btcpay, customer)
    home.ok("fees", "collect", "--at", BILLED, env=PASS)
    (inv,) = stripe_server.invoices(customer)
    home.ok("report", "--at", BILLED)
    page = (home.root / "reports" / "followers" / "F1.html").read_text()
    assert f'<a href="{inv["hosted_invoice_url"]}">{inv["id"]}</a> — open' in page
    assert "The fees under other agreements" in page and "✱" in page
    other = (home.root / "reports" / "followers" / "F2.html").read_text()
    assert inv["id"] not in other


def test_a_stripe_without_finalize_still_gets_one_recorded_invoice(
        setup_vault: Any, btcpay: BTCPaySim) -> None:
    """A Stripe-like server without `/finalize` (localstripe as shipped): the draft is the
    invoice, recorded once (no hosted page), and a payment of it is still synced."""
    with LocalStripe(finalize=False) as bare:
        customer = bare.customer("f1-bare@example.com")
        home = billed(setup_vault, bare, btcpay, customer)
        home.ok("fees", "collect", "--at", BILLED, env=PASS)
        home.ok("fees", "collect", "--at", BILLED, env=PASS)
        (inv,) = bare.invoices(customer)
        assert inv["status"] == "draft"
        bare.pay(inv["id"])
        home.ok("fees", "collect", "--sync", "--at", LATER, env=PASS)
        assert owed(home)["F1"] == "0.00"
        doc = json.loads(home.ok("statement", "F1", "--period", "2026-11", "--json").out)
        assert doc["ledger"]["entries"][0]["invoice"]["url"] is None


def test_a_btcpay_server_speaking_fewer_routes_still_invoices_and_syncs(
        setup_vault: Any, stripe_server: LocalStripe, btcpay: BTCPaySim) -> None:
    """Without the invoice listing and the payment methods routes: one invoice per entry
    (recorded, so never made again by vanta), a settled invoice paid in full."""
    customer = stripe_server.customer("f1-fewer@example.com")
    home = billed(setup_vault, stripe_server, btcpay, customer)
    btcpay.missing = {"list", "payment-methods"}
    home.ok("fees", "collect", "--at", BILLED, env=PASS)
    home.ok("fees", "collect", "--at", BILLED, env=PASS)
    (bt,) = btcpay.invoices.values()
    btcpay.pay(bt["id"], "100")
    home.ok("fees", "collect", "--sync", "--at", LATER, env=PASS)
    home.ok("fees", "collect", "--sync", "--at", LATER, env=PASS)
    assert owed(home)["F2"] == "0.00" and len(btcpay.invoices) == 1
    paid = [e for e in ledger(home)["entries"] if e["entry_id"] == "F2/2026-11/1"]
    assert paid[0]["paid"] == "100.00"
