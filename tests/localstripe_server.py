"""localstripe (a stateful fake Stripe server from PyPI), started on loopback for the tests.

What localstripe 1.15.10 does not cover, and what this file adds before its routes are
built (nothing else of it is changed):
  * one-off invoices: its `POST /v1/invoices` needs a subscription ("No upcoming invoices
    for customer") and drops `metadata`; real Stripe makes an invoice of the customer's
    pending invoice items (`pending_invoice_items_behavior=include`) with its metadata;
  * `POST /v1/invoices/{id}/finalize` (draft -> open) and the `hosted_invoice_url` a
    finalized invoice carries;
  * `POST /v1/invoices/{id}/void` of an open invoice not yet attempted (no payment
    intent) answers 400 (it cancels a payment intent that is not there); Stripe voids it;
  * it ignores `Idempotency-Key` (vanta finds its own invoice by metadata before creating
    one, so a retry makes no second invoice either way: tested).
Payments are made as Stripe's own API makes them: `POST /v1/invoices/{id}/pay` with the
customer's card (`tok_visa`-like token created through `/v1/tokens`).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any

_PATCH = r'''
import sys
import localstripe.resources as r

_create = r.Invoice._api_create.__func__

def _api_create(cls, customer=None, subscription=None, metadata=None, description=None,
                pending_invoice_items_behavior=None, **data):
    if subscription is None:
        # Stripe: an invoice of the customer's pending invoice items, with its metadata
        return cls(customer=customer, metadata=metadata, description=description)
    return _create(cls, customer=customer, subscription=subscription, metadata=metadata,
                   description=description, **data)

def _finalize(id, **data):
    obj = r.Invoice._api_retrieve(id)
    if obj.status != 'draft':
        raise r.UserError(400, 'This invoice is already finalized')
    obj._draft = False
    obj.hosted_invoice_url = PUBLIC + '/i/' + id
    return obj

_void = r.Invoice._api_void_invoice.__func__

def _api_void_invoice(cls, id, **data):
    obj = cls._api_retrieve(id)
    if obj.payment_intent is None and obj.status == 'open':  # nothing to cancel
        obj._voided = True
        obj.status_transitions['voided_at'] = int(r.time.time())
        return obj
    return _void(cls, id, **data)

r.Invoice._api_create = classmethod(_api_create)
r.Invoice._api_void_invoice = classmethod(_api_void_invoice)
r.extra_apis[:] = [(m, u, r.Invoice._api_void_invoice if u.endswith('/void') else f)
                   for m, u, f in r.extra_apis]
if '--no-finalize' not in sys.argv:
    r.extra_apis.append(('POST', '/v1/invoices/{id}/finalize', _finalize))
else:
    sys.argv.remove('--no-finalize')
PUBLIC = 'http://127.0.0.1:' + sys.argv[2]
from localstripe.server import start
start()
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalStripe:
    """`with LocalStripe() as ls: ls.base_url` — one localstripe process per use."""

    def __init__(self, finalize: bool = True) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api_key = "sk_test_vanta_localstripe_4242"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _PATCH, "--port", str(self.port), "--from-scratch",
             *([] if finalize else ["--no-finalize"])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"localstripe exited: {self.proc.stderr.read()!r}"
                                   if self.proc.stderr else "localstripe exited")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("localstripe did not start")

    def client(self) -> Any:
        import stripe

        return stripe.StripeClient(self.api_key, base_addresses={"api": self.base_url})

    def customer(self, email: str) -> str:
        """A customer with a card, in USD (localstripe's customers default to EUR)."""
        c = self.client().v1
        token = c.tokens.create(params={"card": {"number": "4242424242424242",
                                                  "exp_month": 12, "exp_year": 2030,
                                                  "cvc": "123"}})
        return str(c.customers.create(params={"email": email, "source": token.id}).id)

    def pay(self, invoice_id: str) -> None:
        self.client().v1.invoices.pay(invoice_id)

    def invoices(self, customer: str) -> list[dict[str, Any]]:
        found = self.client().v1.invoices.list(params={"customer": customer, "limit": 100})
        return [i.to_dict() for i in found.data]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if self.proc.stderr:
            self.proc.stderr.close()

    def __enter__(self) -> LocalStripe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
