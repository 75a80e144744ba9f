"""Payment processors for fee invoices (SPEC §9 Collection): Stripe through the official
`stripe` library, BTCPay Server through its Greenfield API (`requests`).

The border: each processor's answer becomes a typed ``Invoiced`` (amounts as exact
Decimals in the vault's currency, times in µs), its errors a ``ProcessorError`` of one of
three kinds (``auth``, ``unreachable``, ``reject``). A retry never makes a second invoice:
before creating one, the processor is asked for the invoice of this fee entry (Stripe: the
customer's invoices by ``metadata.entry_id``; BTCPay: ``orderId``), and Stripe's requests
carry an idempotency key derived from the entry id as well.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol

from vanta_box.core.money import fmt

TIMEOUT = 20.0  # seconds per request, not money
MISSING_ROUTE = (404, 405)  # a server without that route (a fake that speaks a subset)
CENT = Decimal("0.01")
STATES = ("open", "paid", "partial", "overpaid", "void")


class ProcessorError(Exception):
    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind  # auth | unreachable | reject
        self.message = message
        self.status = status  # the HTTP status, when there was an answer


@dataclass(frozen=True, slots=True)
class Invoiced:
    """An invoice as the processor says it is."""

    ref: str
    url: str | None
    amount: Decimal  # invoiced, in the currency
    currency: str  # upper case (USD)
    state: str  # open | paid | partial | overpaid | void
    paid: Decimal  # paid so far, in the currency
    paid_at: int | None  # µs since the epoch, when the processor says


class Processor(Protocol):
    kind: str

    def find(self, entry_id: str, payer: str) -> Invoiced | None: ...

    def create(self, entry_id: str, payer: str, amount: Decimal, currency: str,
               description: str) -> Invoiced: ...

    def get(self, ref: str, payer: str) -> Invoiced: ...

    def void(self, ref: str, payer: str) -> Invoiced: ...


def idempotency_key(entry_id: str, step: str) -> str:
    digest = hashlib.sha256(f"{step}\0{entry_id}".encode()).hexdigest()[:32]
    return f"vanta-{step}-{digest}"


def open_processor(kind: str, settings: dict[str, str]) -> Processor:
    if kind == "stripe":
        return StripeProcessor(settings["api_key"], settings.get("base_url"))
    if kind == "btcpay":
        return BTCPayProcessor(settings["url"], settings["api_key"], settings["store_id"])
    raise ProcessorError("reject", f"unknown processor {kind!r}")


# ---------------------------------------------------------------- Stripe


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def _from_cents(cents: Any) -> Decimal:
    return (Decimal(int(cents or 0)) / 100).quantize(CENT)


class StripeProcessor:
    """One invoice per entry: an invoice item (amount in cents, the entry id in metadata),
    then the customer's invoice of it, finalized so that it has a hosted page."""

    kind = "stripe"

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        import stripe

        self._stripe = stripe
        http = stripe.RequestsClient(timeout=TIMEOUT)
        client = stripe.StripeClient(api_key, base_addresses={"api": base_url} if base_url
                                     else None, max_network_retries=2, http_client=http)
        self._v1 = client.v1

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        s = self._stripe
        try:
            return fn(*args, **kwargs)
        except s.AuthenticationError as exc:
            raise ProcessorError("auth", f"stripe: {exc.user_message or exc}") from None
        except s.PermissionError as exc:
            raise ProcessorError("auth", f"stripe: {exc.user_message or exc}") from None
        except (s.APIConnectionError, s.RateLimitError) as exc:
            raise ProcessorError("unreachable", f"stripe: {exc.user_message or exc}") from None
        except s.StripeError as exc:
            status = exc.http_status
            kind = "unreachable" if status is None or status >= 500 else "reject"
            raise ProcessorError(kind, f"stripe {status}: {exc.user_message or exc}",
                                 status) from None

    def _invoiced(self, inv: Any) -> Invoiced:
        d = inv.to_dict() if hasattr(inv, "to_dict") else dict(inv)
        amount = _from_cents(d.get("amount_due") or d.get("total"))
        paid = _from_cents(d.get("amount_paid"))
        status = d.get("status")
        if status in ("void", "uncollectible"):
            state = "void"
        elif status == "paid":
            state = "paid" if paid == amount else "overpaid" if paid > amount else "partial"
        else:
            state = "partial" if paid > 0 else "open"
        paid_at = (d.get("status_transitions") or {}).get("paid_at")
        return Invoiced(str(d["id"]), d.get("hosted_invoice_url"), amount,
                        str(d.get("currency") or "").upper(), state, paid,
                        None if paid_at is None else int(paid_at) * 1_000_000)

    def find(self, entry_id: str, payer: str) -> Invoiced | None:
        try:
            found = self._call(self._v1.invoices.list,
                               params={"customer": payer, "limit": 100})
        except ProcessorError as exc:
            if exc.status not in MISSING_ROUTE:
                raise
            return None  # a server that cannot list invoices: nothing to find
        for inv in self._call(lambda: list(found.auto_paging_iter())):
            if (inv.to_dict().get("metadata") or {}).get("entry_id") == entry_id:
                return self._finalized(inv)
        return None

    def _finalized(self, inv: Any) -> Invoiced:
        if inv.to_dict().get("status") == "draft":
            try:
                inv = self._call(self._v1.invoices.finalize_invoice, inv.id)
            except ProcessorError as exc:
                if exc.status != 404:
                    raise
                # a Stripe-like server without /finalize (localstripe): the draft is the
                # invoice (no hosted page yet); recorded, not made again
        return self._invoiced(inv)

    def create(self, entry_id: str, payer: str, amount: Decimal, currency: str,
               description: str) -> Invoiced:
        existing = self.find(entry_id, payer)
        if existing is not None:
            return existing
        try:
            pending = self._call(self._v1.invoice_items.list,
                                 params={"customer": payer, "limit": 100})
            items = self._call(lambda: list(pending.auto_paging_iter()))
        except ProcessorError as exc:
            if exc.status not in MISSING_ROUTE:
                raise
            items = []
        mine = False
        for item in items:
            d = item.to_dict()
            if d.get("invoice"):
                continue
            if (d.get("metadata") or {}).get("entry_id") != entry_id:
                raise ProcessorError(
                    "reject", f"stripe: customer {payer} has a pending invoice item that is "
                    f"not this fee's ({d.get('id')}): an invoice would bill it too; invoice "
                    "or delete it at Stripe first")
            mine = True  # made by an earlier attempt that stopped before its invoice
        metadata = {"entry_id": entry_id}
        if not mine:
            self._call(self._v1.invoice_items.create, params={
                "customer": payer, "amount": _cents(amount), "currency": currency.lower(),
                "description": description, "metadata": metadata},
                options={"idempotency_key": idempotency_key(entry_id, "item")})
        inv = self._call(self._v1.invoices.create, params={
            "customer": payer, "description": description, "metadata": metadata,
            "pending_invoice_items_behavior": "include"},
            options={"idempotency_key": idempotency_key(entry_id, "invoice")})
        made = self._finalized(inv)
        if made.amount != amount:
            raise ProcessorError("reject", f"stripe: invoice {made.ref} came out at "
                                 f"{fmt(made.amount)}, not {fmt(amount)}: check it at Stripe")
        return made

    def get(self, ref: str, payer: str) -> Invoiced:
        return self._invoiced(self._call(self._v1.invoices.retrieve, ref))

    def void(self, ref: str, payer: str) -> Invoiced:
        current = self.get(ref, payer)
        if current.state != "open":
            return current
        return self._invoiced(self._call(self._v1.invoices.void_invoice, ref))


# ---------------------------------------------------------------- BTCPay (Greenfield)


def _dec(value: Any, what: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ProcessorError("reject", f"btcpay: {what} {value!r} is not a number") from None


class BTCPayProcessor:
    """`POST /api/v1/stores/{storeId}/invoices` with `metadata.orderId` = the entry id."""

    kind = "btcpay"

    def __init__(self, url: str, api_key: str, store_id: str) -> None:
        import requests

        self._requests = requests
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"token {api_key}"
        self._base = url.rstrip("/")
        self.store_id = store_id

    def _url(self, store: str, tail: str = "") -> str:
        return f"{self._base}/api/v1/stores/{store}/invoices{tail}"

    def _ask(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            answer = self._session.request(method, url, timeout=TIMEOUT, **kwargs)
        except self._requests.RequestException as exc:
            raise ProcessorError("unreachable", f"btcpay: {type(exc).__name__}") from None
        status = answer.status_code
        if status in (401, 403):
            raise ProcessorError("auth", f"btcpay {status}: {_said(answer)}", status)
        if status == 429 or status >= 500:
            raise ProcessorError("unreachable", f"btcpay {status}: {_said(answer)}", status)
        if status >= 400:
            raise ProcessorError("reject", f"btcpay {status}: {_said(answer)}", status)
        try:
            return answer.json()
        except ValueError:
            raise ProcessorError("unreachable", "btcpay: an answer that is not JSON") from None

    def _invoiced(self, store: str, d: dict[str, Any]) -> Invoiced:
        amount = _dec(d.get("amount"), "amount").quantize(CENT)
        status, extra = d.get("status"), d.get("additionalStatus") or "None"
        paid, paid_at = Decimal(0), None
        if status == "Invalid":
            state = "void"
        elif extra in ("PaidPartial", "PaidOver"):
            paid, paid_at = self._paid(store, str(d["id"]))
            state = "partial" if extra == "PaidPartial" else "overpaid"
        elif status == "Settled":
            state, paid = "paid", amount
            try:
                _sum, paid_at = self._paid(store, str(d["id"]))
            except ProcessorError as exc:
                if exc.status not in MISSING_ROUTE:
                    raise
                paid_at = None  # a server without the payment methods: paid in full
        else:
            state = "open"
        return Invoiced(str(d["id"]), d.get("checkoutLink"), amount,
                        str(d.get("currency") or "").upper(), state, paid, paid_at)

    def _paid(self, store: str, ref: str) -> tuple[Decimal, int | None]:
        """What was paid, in the invoice's currency (each method's coins at its rate),
        and when the last payment was received."""
        methods = self._ask("GET", self._url(store, f"/{ref}/payment-methods"))
        total, last = Decimal(0), None
        for m in methods if isinstance(methods, list) else []:
            paid = _dec(m.get("paymentMethodPaid") or "0", "paymentMethodPaid")
            total += paid * _dec(m.get("rate") or "0", "rate")
            for p in m.get("payments") or []:
                received = p.get("receivedDate")
                if isinstance(received, int) and (last is None or received > last):
                    last = received
        return (total.quantize(CENT, rounding=ROUND_HALF_UP),
                None if last is None else last * 1_000_000)

    def find(self, entry_id: str, payer: str) -> Invoiced | None:
        store = payer or self.store_id
        try:
            found = self._ask("GET", self._url(store), params={"orderId": entry_id})
        except ProcessorError as exc:
            if exc.status not in MISSING_ROUTE:
                raise
            return None  # a server that cannot list invoices: nothing to find
        for d in found if isinstance(found, list) else []:
            if (d.get("metadata") or {}).get("orderId") == entry_id:
                return self._invoiced(store, d)
        return None

    def create(self, entry_id: str, payer: str, amount: Decimal, currency: str,
               description: str) -> Invoiced:
        existing = self.find(entry_id, payer)
        if existing is not None:
            return existing
        store = payer or self.store_id
        body = {"amount": fmt(amount), "currency": currency.upper(),
                "metadata": {"orderId": entry_id, "itemDesc": description}}
        return self._invoiced(store, self._ask("POST", self._url(store), json=body))

    def get(self, ref: str, payer: str) -> Invoiced:
        store = payer or self.store_id
        return self._invoiced(store, self._ask("GET", self._url(store, f"/{ref}")))

    def void(self, ref: str, payer: str) -> Invoiced:
        current = self.get(ref, payer)
        if current.state != "open":
            return current
        store = payer or self.store_id
        return self._invoiced(store, self._ask("POST", self._url(store, f"/{ref}/status"),
                                               json={"status": "Invalid"}))


def _said(answer: Any) -> str:
    try:
        body = answer.json()
    except ValueError:
        return str(answer.reason)
    if isinstance(body, dict):
        return str(body.get("message") or body.get("code") or answer.reason)
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("message") or answer.reason)
    return str(answer.reason)
