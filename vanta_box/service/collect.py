"""Fees collect themselves (SPEC §9 Collection): one invoice per outstanding fee entry at
the follower's processor (Stripe, BTCPay), and the processors' payments recorded once.

What the processors answered is journaled as input (``fees.invoiced``, ``fees.voided``,
``fees.paid`` with the processor's reference, ``fees.overpaid``), so replay never calls a
processor. Each answer is committed on its own, right after the call: nothing holds the
database across the network, and a command killed between a processor's answer and its
record finds that invoice again by the entry id (never a second one).

A payment is the difference between what the processor says was paid through an invoice
and what vanta has recorded through it, so syncing twice records nothing twice. More than
is owed is recorded up to what is owed and flagged (``fee.payment`` alert); so is less.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from vanta_box.core.errors import InputError, Refused
from vanta_box.core.money import ZERO, D, fmt, fmt_cents
from vanta_box.core.timeutil import fmt_ts
from vanta_box.execution.processors import Invoiced, Processor, ProcessorError, open_processor
from vanta_box.service import fees
from vanta_box.service.engine import Command, Engine, handles
from vanta_box.store import repo
from vanta_box.store.db import Connection

OPEN = ("open", "partial")  # invoices whose payments may still come


@dataclass
class Outcome:
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Due:
    account: repo.AccountRow
    entry: repo.FeeEntryRow
    amount: Decimal
    via: str
    payer: str
    currency: str


def _collect_terms(acct: repo.AccountRow) -> dict[str, str] | None:
    terms = (acct.fee_agreement or {}).get("collect")
    return terms if isinstance(terms, dict) else None


def due(conn: Connection, period: str | None = None) -> Iterator[Due]:
    """Outstanding live entries of followers whose agreement says `collect`, without an
    invoice yet, in account and entry order."""
    currencies = {v.vault_id: str(v.config.get("base_currency") or "USD")
                  for v in repo.vault_rows(conn)}
    for acct in repo.accounts(conn):
        terms = _collect_terms(acct)
        if acct.role != "follower" or terms is None:
            continue
        for e in fees.live_entries(conn, acct.account_id):
            if period is not None and e.period != period:
                continue
            if repo.fee_invoice(conn, e.entry_id) is not None:
                continue
            owed = min(e.fee_due, fees.outstanding(conn, acct.account_id, e.period))
            if owed > 0:
                yield Due(acct, e, owed, terms["via"],
                          terms.get("customer") or terms.get("store_id") or "",
                          currencies.get(acct.vault_id, "USD"))


def _processor(settings: dict[str, dict[str, str]], via: str,
               opened: dict[str, Processor]) -> Processor:
    if via not in opened:
        if via not in settings:
            raise ProcessorError("reject", f"no {via} processor is set: `vanta processor set "
                                 f"{via} ...`")
        opened[via] = open_processor(via, settings[via])
    return opened[via]


def collect(eng: Engine, settings: dict[str, dict[str, str]], at: int, period: str | None,
            dry_run: bool, say: Callable[[str], None] = lambda _m: None) -> Outcome:
    """Invoice every outstanding entry (one invoice each); void the open invoices of
    entries reversed since."""
    if period is not None:
        fees.period_bounds(period)  # a bad period is bad input
    out = Outcome()
    opened: dict[str, Processor] = {}
    todo = list(due(eng.conn, period))
    for n, d in enumerate(todo, 1):
        what = f"{d.entry.entry_id}: {fmt_cents(d.amount)} {d.currency} via {d.via}"
        if dry_run:
            out.lines.append(f"would invoice {what}")
            continue
        try:
            made = _processor(settings, d.via, opened).create(
                d.entry.entry_id, d.payer, d.amount, d.currency,
                f"vanta-box fee {d.entry.period}, {d.account.account_id} in vault "
                f"{d.account.vault_id} ({d.entry.entry_id})")
        except ProcessorError as exc:
            out.failures.append(f"{d.entry.entry_id}: {exc.message} ({exc.kind})")
            continue
        eng.run(invoiced_command(d, made, at))
        out.lines.append(f"invoiced {what}: {made.ref} {made.url or ''}".rstrip())
        if n % 100 == 0:
            say(f"invoiced {n} of {len(todo)} entries")
    for inv in _reversed_open(eng.conn):
        if dry_run:
            out.lines.append(f"would void {inv.processor} invoice {inv.ref} ({inv.entry_id} "
                             "was reversed)")
            continue
        try:
            acct = _account_of(eng.conn, inv.entry_id)
            answer = _processor(settings, inv.processor, opened).void(inv.ref, _payer(acct))
        except ProcessorError as exc:
            out.failures.append(f"void {inv.ref} ({inv.entry_id}): {exc.message} ({exc.kind})")
            continue
        if answer.state == "void":
            eng.run(Command.make("fees.voided", at, {
                "entry_id": inv.entry_id, "processor": inv.processor, "ref": inv.ref,
                "reason": "entry reversed"}))
            out.lines.append(f"voided {inv.processor} invoice {inv.ref} ({inv.entry_id} was "
                             "reversed)")
        else:
            out.failures.append(f"{inv.ref} ({inv.entry_id}) is {answer.state} at "
                                f"{inv.processor}: not voided (sync records its payment)")
    if not todo and not out.lines and not out.failures:
        out.lines.append("nothing to invoice" + (f" for {period}" if period else ""))
    return out


def _reversed_open(conn: Connection) -> list[repo.InvoiceRow]:
    live: set[str] = set()
    for acct in repo.accounts(conn):
        live.update(e.entry_id for e in fees.live_entries(conn, acct.account_id))
    return [i for i in repo.fee_invoices(conn) if i.state == "open" and i.entry_id not in live]


def _entry(conn: Connection, entry_id: str) -> repo.FeeEntryRow:
    entry = repo.fee_entry(conn, entry_id)
    assert entry is not None  # an invoice's entry (a foreign key)
    return entry


def _account_of(conn: Connection, entry_id: str) -> repo.AccountRow:
    acct = repo.account(conn, _entry(conn, entry_id).account_id)
    assert acct is not None
    return acct


def _payer(acct: repo.AccountRow) -> str:
    terms = _collect_terms(acct) or {}
    return terms.get("customer") or terms.get("store_id") or ""


def invoiced_command(d: Due, made: Invoiced, at: int) -> Command:
    return Command.make("fees.invoiced", at, {
        "entry_id": d.entry.entry_id, "processor": d.via, "ref": made.ref, "url": made.url,
        "amount": fmt_cents(made.amount), "currency": made.currency or d.currency,
        "state": made.state})


@handles("fees.invoiced")
def _fees_invoiced(eng: Engine, cmd: Command) -> dict[str, Any]:
    p = cmd.payload
    entry = fees._entry_for_change(eng.conn, p["entry_id"])
    if repo.fee_invoice(eng.conn, entry.entry_id) is not None:
        raise Refused(f"{entry.entry_id} is already invoiced")
    with eng.tx():
        repo.insert_fee_invoice(eng.conn, repo.InvoiceRow(
            entry.entry_id, p["processor"], p["ref"], p.get("url"), D(p["amount"]),
            p["currency"], p["state"] if p["state"] in ("open", "void") else "open", ZERO,
            cmd.ts, eng.journal.seq))
    return p


@handles("fees.voided")
def _fees_voided(eng: Engine, cmd: Command) -> dict[str, Any]:
    p = cmd.payload
    inv = repo.fee_invoice(eng.conn, p["entry_id"])
    if inv is None or inv.ref != p["ref"]:
        raise Refused(f"{p['entry_id']} has no invoice {p['ref']}")
    with eng.tx():
        repo.set_fee_invoice(eng.conn, inv.entry_id, "void", inv.paid)
    return p


@handles("fees.overpaid")
def _fees_overpaid(eng: Engine, cmd: Command) -> dict[str, Any]:
    """A processor took money for an entry that owes nothing (already paid otherwise):
    nothing is applied; the invoice keeps what it received, and the alert says so."""
    p = cmd.payload
    inv = repo.fee_invoice(eng.conn, p["entry_id"])
    if inv is None or inv.ref != p["ref"]:
        raise Refused(f"{p['entry_id']} has no invoice {p['ref']}")
    with eng.tx():
        repo.set_fee_invoice(eng.conn, inv.entry_id, p["state"], D(p["received"]))
    return p


def record_invoice_payment(eng: Engine, p: dict[str, Any]) -> None:
    """Called by the fees.paid handler: the invoice the payment came through."""
    inv = repo.fee_invoice(eng.conn, p.get("through_entry") or p["entry_id"])
    if inv is not None and inv.ref == p["invoice"]:
        repo.set_fee_invoice(eng.conn, inv.entry_id, p["state"], D(p["received"]))


# ---------------------------------------------------------------- sync


def sync(eng: Engine, settings: dict[str, dict[str, str]], at: int,
         say: Callable[[str], None] = lambda _m: None) -> Outcome:
    """Ask the processors for every invoice that may still be paid; record what is new."""
    out = Outcome()
    opened: dict[str, Processor] = {}
    todo = [i for i in repo.fee_invoices(eng.conn) if i.state in OPEN]
    for n, inv in enumerate(todo, 1):
        acct = _account_of(eng.conn, inv.entry_id)
        try:
            answer = _processor(settings, inv.processor, opened).get(inv.ref, _payer(acct))
        except ProcessorError as exc:
            out.failures.append(f"{inv.ref} ({inv.entry_id}): {exc.message} ({exc.kind})")
            continue
        line = _record(eng, inv, acct, answer, at)
        if line:
            out.lines.append(line)
        if n % 100 == 0:
            say(f"synced {n} of {len(todo)} invoices")
    out.lines.append(f"{len(todo)} open invoice(s) asked" if todo else "no open invoices")
    return out


def _record(eng: Engine, inv: repo.InvoiceRow, acct: repo.AccountRow, answer: Invoiced,
            at: int) -> str | None:
    new = answer.paid - inv.paid
    if new <= 0:
        if answer.state == "void":
            eng.run(Command.make("fees.voided", at, {
                "entry_id": inv.entry_id, "processor": inv.processor, "ref": inv.ref,
                "reason": f"void at {inv.processor}"}))
            return f"{inv.ref} ({inv.entry_id}) was voided at {inv.processor}"
        return None
    entry = _entry(eng.conn, inv.entry_id)
    owed = fees.outstanding(eng.conn, acct.account_id, entry.period)
    # paid through the invoice of an entry reversed since: toward the period's live entry
    target = next((e.entry_id for e in reversed(fees.live_entries(eng.conn, acct.account_id))
                   if e.period == entry.period), None)
    if target is None:
        owed = ZERO
    flag = {"partial": "partial", "overpaid": "overpaid"}.get(answer.state)
    extra = {"invoice": inv.ref, "via": inv.processor, "received": fmt_cents(answer.paid),
             "state": answer.state}
    if answer.paid_at is not None:
        extra["paid_at"] = fmt_ts(answer.paid_at)
    if owed <= 0:
        eng.run(Command.make("fees.overpaid", at, {
            "entry_id": inv.entry_id, "processor": inv.processor, "ref": inv.ref,
            "received": fmt_cents(answer.paid), "state": "overpaid", "owed": "0.00"}))
        return (f"{inv.ref} ({inv.entry_id}): {fmt_cents(new)} received but nothing is owed "
                "(flagged)")
    applied = min(new, owed)
    if applied < new:
        flag = "overpaid"
    if flag:
        extra["flag"] = flag
    assert target is not None
    if target != inv.entry_id:
        extra["through_entry"] = inv.entry_id
    eng.run(fees.fees_paid_command(eng, target, f"{inv.processor}:{inv.ref}", applied, at,
                                   extra))
    return (f"{target}: paid {fmt_cents(applied)} through {inv.processor} {inv.ref}"
            + (f" ({flag})" if flag else ""))


def processor_settings(kind: str, api_key: str, base_url: str | None, url: str | None,
                       store_id: str | None) -> dict[str, str]:
    """Validated settings for `vanta processor set` (bad input: exit 2, nothing stored)."""
    if not api_key.strip():
        raise InputError("an API key is needed", field="--api-key")
    if kind == "stripe":
        if url is not None or store_id is not None:
            raise InputError("--url and --store-id are for btcpay", field="--url")
        out = {"api_key": api_key.strip()}
        if base_url:
            out["base_url"] = _http(base_url, "--base-url")
        return out
    if base_url is not None:
        raise InputError("--base-url is for stripe (btcpay takes --url)", field="--base-url")
    if not url or not store_id:
        raise InputError("btcpay needs --url and --store-id", field="--url" if not url
                         else "--store-id")
    return {"api_key": api_key.strip(), "url": _http(url, "--url"), "store_id": store_id}


def _http(url: str, option: str) -> str:
    if not url.startswith(("http://", "https://")) or " " in url:
        raise InputError(f"{url!r} is not an http(s) URL", field=option)
    return url.rstrip("/")


def summary(settings: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """What `vanta processor list` shows: never a key, only its fingerprint."""
    from vanta_box.keystore import fingerprint

    return [{"processor": kind, "address": s.get("base_url") or s.get("url") or
             "(the processor's own)", "store_id": s.get("store_id"),
             "key": fingerprint({"api_key": s["api_key"]})} for kind, s in sorted(settings.items())]


def amounts(conn: Connection, entry_id: str) -> dict[str, Any] | None:
    """The invoice of an entry as statements and pages show it."""
    inv = repo.fee_invoice(conn, entry_id)
    if inv is None:
        return None
    return {"processor": inv.processor, "ref": inv.ref, "url": inv.url,
            "amount": fmt_cents(inv.amount), "currency": inv.currency, "state": inv.state,
            "paid": fmt(inv.paid)}
