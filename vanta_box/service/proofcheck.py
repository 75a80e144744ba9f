"""A statement checked alone (SPEC §10): what `vanta proof verify` runs, with no database.

A follower holds ``statement.json`` (`vanta statement F --period P --json`) and, ideally,
the manager's public key obtained some other way. In this order, the first thing that
fails is named:

 1. the head: Ed25519 over RFC 6962's TreeHeadSignature, by the key given (or, trust on
    first use, the key the statement names);
 2. every proof: the row's content makes its hash (``hash = SHA-256(prev_hash ‖ row
    bytes)``), and its audit path leads from its leaf to the head's root;
 3. the digest the statement prints is the head's last row, proved like the others;
 4. every fill, fee entry and payment the statement shows cites a proved row of the
    right kind, of this follower (and period), whose payload holds the same numbers;
 5. the billed fee matches its entry, and the statement's own sums hold: realized PnL and
    commissions are the sums of the fills, closing − opening = realized + Δunrealized
    (+ flows when the statement has them), the ledger's due, paid and outstanding.

What a statement cannot prove alone: that it shows *every* fill (a row left out proves
nothing); publishing heads and checking consistency between them (`vanta audit
consistency`) is what keeps the manager from rewriting the journal behind them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from vanta_box.core.timeutil import TimeError, parse_ts
from vanta_box.service import proofs


class _Failed(Exception):
    pass


@dataclass
class Verdict:
    failure: str | None = None
    held: list[str] = field(default_factory=list)  # what was checked and held, in order
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None


def readable(doc: Any) -> str | None:
    """None if ``doc`` has the shape of a statement with proofs, else what is missing (bad
    input, exit 2, rather than a failed check)."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    missing = [k for k in ("head", "proofs", "fills", "ledger", "account_id") if k not in doc]
    if missing:
        return (f"not a statement with proofs (no {', '.join(missing)}): make it with "
                "`vanta statement ACCOUNT --period P --json`")
    return None


def verify(doc: dict[str, Any], pubkey: str | None = None) -> Verdict:
    verdict = Verdict()
    try:
        _verify(doc, pubkey, verdict)
    except _Failed as exc:
        verdict.failure = str(exc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a field edited away
        verdict.failure = f"the statement is malformed ({type(exc).__name__}: {exc})"
    return verdict


def _verify(doc: dict[str, Any], pubkey: str | None, verdict: Verdict) -> None:
    head = doc["head"]
    problem = proofs.check_head(head, pubkey)
    if problem:
        raise _Failed(f"head: {problem}")
    key = str(pubkey or head["public_key"])
    size = int(head["tree_size"])
    if pubkey is None:
        verdict.notes.append(
            f"the head is checked with the key the statement itself names ({key[:16]}…): "
            "trust on first use; pass --pubkey with the manager's published key to pin it")
    verdict.held.append(f"head: {size:,} journal rows, root {head['root_hash'][:16]}…, "
                        f"signed {head.get('timestamp', head['timestamp_ms'])} by "
                        f"{key[:16]}…")
    rows = _proved(doc["proofs"], head)
    verdict.held.append(f"proofs: {len(rows)} journal row(s), each in the head's tree")
    _digest(doc, rows, size)
    account = str(doc["account_id"])
    _fills(doc, rows, account)
    _ledger(doc, rows, account)
    verdict.held.append(f"cited rows: {len(doc['fills'])} fill(s), "
                        f"{len(doc['ledger']['entries'])} fee entr"
                        f"{'y' if len(doc['ledger']['entries']) == 1 else 'ies'} and their "
                        "payments match the journal rows they cite")
    _fee(doc, rows)
    verdict.held.append(_sums(doc))


def _proved(items: Any, head: dict[str, Any]) -> dict[int, dict[str, Any]]:
    if not isinstance(items, list):
        raise _Failed("proofs: not a list")
    rows: dict[int, dict[str, Any]] = {}
    for i, r in enumerate(items):
        problem = proofs.check_row(r, head)
        if problem:
            where = f"proofs[{i}]" if not isinstance(r, dict) else \
                f"proof of journal row {r.get('seq')}"
            raise _Failed(f"{where}: {problem}")
        try:
            payload = json.loads(r["payload"], parse_float=Decimal)
        except ValueError:
            raise _Failed(f"journal row {r['seq']}: its payload is not JSON") from None
        rows[int(r["seq"])] = {"kind": r["kind"], "ts": r["ts"], "hash": r["hash"],
                               "payload": payload if isinstance(payload, dict) else {}}
    return rows


def _digest(doc: dict[str, Any], rows: dict[int, dict[str, Any]], size: int) -> None:
    seq_text, _, digest_hash = str(doc.get("digest", "")).partition(":")
    if not seq_text.isdigit() or int(seq_text) != size:
        raise _Failed(f"digest {doc.get('digest')}: not the head's last row ({size})")
    row = rows.get(size)
    if row is None or row["hash"] != digest_hash:
        raise _Failed(f"digest {doc['digest']}: not the hash of the head's row {size}")


def _num(value: Any, where: str) -> Decimal:
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise InvalidOperation
        number = Decimal(value)
        if not number.is_finite():
            raise InvalidOperation
        return number
    except InvalidOperation:
        raise _Failed(f"{where}: {value!r} is not a number") from None


def _row(rows: dict[int, dict[str, Any]], item: dict[str, Any], where: str,
         kinds: tuple[str, ...]) -> dict[str, Any]:
    seq = item.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise _Failed(f"{where}: cites no journal row (no seq)")
    row = rows.get(seq)
    if row is None:
        raise _Failed(f"{where}: cites journal row {seq}, which the statement does not prove")
    if row["kind"] not in kinds:
        raise _Failed(f"{where}: journal row {seq} is a {row['kind']!r} event, not "
                      f"{' or '.join(repr(k) for k in kinds)}")
    payload: dict[str, Any] = row["payload"]
    return payload


def _same(where: str, seq: int, name: str, shown: Any, recorded: Any,
          number: bool = True) -> None:
    if number:
        same = _num(shown, f"{where}: {name}") == _num(recorded, f"journal row {seq}: {name}")
    else:
        same = shown == recorded
    if not same:
        raise _Failed(f"{where}: {name} is {shown} in the statement, {recorded} in journal "
                      f"row {seq}")


def _fills(doc: dict[str, Any], rows: dict[int, dict[str, Any]], account: str) -> None:
    start, end = parse_ts(doc["period_start"]), parse_ts(doc["period_end"])
    for i, f in enumerate(doc["fills"]):
        where = f"fills[{i}] ({f.get('side')} {f.get('qty')} {f.get('symbol')} at {f.get('ts')})"
        p = _row(rows, f, where, ("fill",))
        seq = f["seq"]
        if p.get("account_id") != account:
            raise _Failed(f"{where}: journal row {seq} is a fill of {p.get('account_id')}, "
                          f"not of {account}")
        for name in ("symbol", "side", "order_id"):
            _same(where, seq, name, f.get(name), p.get(name), number=False)
        for name in ("qty", "price", "commission", "realized_pnl"):
            _same(where, seq, name, f.get(name), p.get(name))
        try:
            at = parse_ts(f["ts"])
        except TimeError:
            raise _Failed(f"{where}: ts is not a time") from None
        if not start <= at < end:
            raise _Failed(f"{where}: not in the period {doc.get('period')}")


def _ledger(doc: dict[str, Any], rows: dict[int, dict[str, Any]], account: str) -> None:
    for e in doc["ledger"]["entries"]:
        where = f"ledger entry {e.get('entry_id')}"
        p = _row(rows, e, where, ("fee", "fee_reversal"))
        seq = e["seq"]
        if p.get("user_id") != account:
            raise _Failed(f"{where}: journal row {seq} is an entry of {p.get('user_id')}, "
                          f"not of {account}")
        _same(where, seq, "entry_id", e.get("entry_id"), p.get("entry_id"), number=False)
        _same(where, seq, "kind", e.get("kind"), p.get("kind"), number=False)
        _same(where, seq, "period", doc.get("period"), p.get("period"), number=False)
        _same(where, seq, "fee_due", e.get("fee_due"), p.get("fee_due"))
        for j, pay in enumerate(e.get("payments", [])):
            pwhere = f"payment {pay.get('payment_id', j)} of {e.get('entry_id')}"
            q = _row(rows, pay, pwhere, ("fees.paid",))
            _same(pwhere, pay["seq"], "entry_id", e.get("entry_id"), q.get("entry_id"),
                  number=False)
            _same(pwhere, pay["seq"], "amount", pay.get("amount"), q.get("amount"))


FEE_FIELDS = ("fee_due", "perf_fee", "flat_fee", "net", "realized_pnl", "carry_in",
              "carry_out", "perf_share", "flat_usd", "active_days", "days_in_period")


def _fee(doc: dict[str, Any], rows: dict[int, dict[str, Any]]) -> None:
    """A billed fee's numbers are its entry's (a preview cites no row)."""
    fee = doc.get("fee") or {}
    entry_id = fee.get("entry_id")
    if not entry_id:
        return
    entry = next((e for e in doc["ledger"]["entries"] if e.get("entry_id") == entry_id), None)
    if entry is None:
        raise _Failed(f"fee: billed as {entry_id}, which the ledger does not show")
    p = rows[entry["seq"]]["payload"]
    for name in FEE_FIELDS:
        if name in fee and name in p:
            _same(f"fee ({entry_id})", entry["seq"], name, fee[name], p[name])
    _same(f"fee ({entry_id})", entry["seq"], "fee_type", fee.get("fee_type"),
          p.get("fee_type"), number=False)


def _sums(doc: dict[str, Any]) -> str:
    def n(name: str, value: Any = None) -> Decimal:
        return _num(doc[name] if value is None else value, name)

    fills = doc["fills"]
    realized = sum((_num(f["realized_pnl"], "fills: realized_pnl") for f in fills), Decimal(0))
    if n("realized_pnl") != realized:
        raise _Failed(f"realized_pnl is {doc['realized_pnl']}, but its fills sum to {realized}")
    commissions = sum((_num(f["commission"], "fills: commission") for f in fills), Decimal(0))
    if n("commissions") != commissions:
        raise _Failed(f"commissions is {doc['commissions']}, but its fills sum to "
                      f"{commissions}")
    change = n("unrealized_pnl_close") - n("unrealized_pnl_open")
    if n("unrealized_pnl_change") != change:
        raise _Failed(f"unrealized_pnl_change is {doc['unrealized_pnl_change']}, but close − "
                      f"open is {change}")
    flows = Decimal(0)
    if "net_flows" in doc:  # the period's deposits and withdrawals (SPEC §9)
        flows = n("net_flows")
        listed = sum((_num(f["amount"], "flows: amount") for f in doc.get("flows", [])),
                     Decimal(0))
        if flows != listed:
            raise _Failed(f"net_flows is {doc['net_flows']}, but its flows sum to {listed}")
    moved = n("closing_equity") - n("opening_equity")
    explained = n("realized_pnl") + n("unrealized_pnl_change") + flows
    if moved != explained:
        also = " + net_flows" if "net_flows" in doc else ""
        raise _Failed(f"closing_equity − opening_equity is {moved}, but realized_pnl + "
                      f"unrealized_pnl_change{also} is {explained}")
    ledger = doc["ledger"]
    due = sum((_num(e["fee_due"], "ledger: fee_due") for e in ledger["entries"]), Decimal(0))
    paid = sum((_num(p["amount"], "ledger: payment amount") for e in ledger["entries"]
                for p in e.get("payments", [])), Decimal(0))
    for name, value in (("due", due), ("paid", paid)):
        if _num(ledger[name], f"ledger.{name}") != value:
            raise _Failed(f"ledger.{name} is {ledger[name]}, but its entries sum to {value}")
    if _num(ledger["outstanding"], "ledger.outstanding") != due - paid:
        raise _Failed(f"ledger.outstanding is {ledger['outstanding']}, but due − paid is "
                      f"{due - paid}")
    return (f"sums: closing − opening = realized + Δunrealized{' + flows' if flows else ''}"
            f" ({moved}); realized and commissions are the fills'; the ledger adds up")
