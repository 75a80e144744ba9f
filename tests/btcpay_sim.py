"""A loopback server speaking BTCPay Server's Greenfield invoice routes (docs.btcpayserver.org
/API/Greenfield/v1, "Invoices"), for the collection tests:

    POST /api/v1/stores/{storeId}/invoices                      create (amount, currency,
                                                                metadata.orderId)
    GET  /api/v1/stores/{storeId}/invoices[?orderId=X&orderId=Y] list
    GET  /api/v1/stores/{storeId}/invoices/{invoiceId}           one invoice
    GET  /api/v1/stores/{storeId}/invoices/{invoiceId}/payment-methods
    POST /api/v1/stores/{storeId}/invoices/{invoiceId}/status    {"status": "Invalid"|"Settled"}

`Authorization: token KEY` (401 otherwise, 403 for another store). Invoices go New ->
Settled when paid in full (or PaidOver), stay New/Expired with additionalStatus
PaidPartial when paid in part; a payment is one BTC-CHAIN payment at `rate`.
Set-up by the test: `pay(invoice_id, fiat)`, `fail_after_create` (the next N creates answer
500 after the invoice was made: a client that retries without looking would make two).
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

RATE = Decimal("50000")  # USD per BTC


class BTCPaySim:
    def __init__(self, api_key: str, store_id: str) -> None:
        self.api_key, self.store_id = api_key, store_id
        self.invoices: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, list[dict[str, Any]]] = {}
        self.creates: list[dict[str, Any]] = []  # every POST body that made an invoice
        self.fail_after_create = 0
        self.missing: set[str] = set()  # routes this server lacks: "list", "payment-methods"
        self.now = 1_800_000_000  # unix seconds
        self._lock = threading.Lock()
        sim = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                sim._serve(self, "GET")

            def do_POST(self) -> None:
                sim._serve(self, "POST")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> BTCPaySim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ the test's hand

    def pay(self, invoice_id: str, fiat: str) -> None:
        """A payment of ``fiat`` (in the invoice's currency) in BTC at RATE."""
        with self._lock:
            inv = self.invoices[invoice_id]
            coins = (Decimal(fiat) / RATE).quantize(Decimal("0.00000001"))
            self.now += 60
            self.payments[invoice_id].append({
                "id": f"tx{len(self.payments[invoice_id])}-{invoice_id}",
                "receivedDate": self.now, "value": str(coins), "fee": "0.0",
                "status": "Settled", "destination": "bcrt1qexample"})
            paid = sum(Decimal(p["value"]) for p in self.payments[invoice_id]) * RATE
            amount = Decimal(inv["amount"])
            if paid >= amount:
                inv["status"] = "Settled"
                inv["additionalStatus"] = "PaidOver" if paid > amount else "None"
            else:
                inv["additionalStatus"] = "PaidPartial"

    def by_order(self, order_id: str) -> list[dict[str, Any]]:
        return [i for i in self.invoices.values() if i["metadata"].get("orderId") == order_id]

    # ------------------------------------------------------------ the routes

    def _serve(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        parts = url.path.strip("/").split("/")
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length)) if length else None
        if h.headers.get("Authorization") != f"token {self.api_key}":
            return self._answer(h, 401, {"code": "unauthenticated",
                                         "message": "Authentication is required"})
        if parts[:3] != ["api", "v1", "stores"] or len(parts) < 5 or parts[4] != "invoices":
            return self._answer(h, 404, {"code": "not-found", "message": "no such route"})
        if parts[3] != self.store_id:
            return self._answer(h, 403, {"code": "unauthorized",
                                         "message": "not allowed on this store"})
        with self._lock:
            status, answer = self._route(method, parts[5:], parse_qs(url.query), body)
        self._answer(h, status, answer)

    def _route(self, method: str, rest: list[str], query: dict[str, list[str]],
               body: Any) -> tuple[int, Any]:
        if not rest:
            if method == "POST":
                return self._create(body)
            if "list" in self.missing:
                return 405, {"code": "method-not-allowed", "message": "not here"}
            wanted = set(query.get("orderId", []))
            return 200, [i for i in self.invoices.values()
                         if not wanted or i["metadata"].get("orderId") in wanted]
        inv = self.invoices.get(rest[0])
        if inv is None:
            return 404, {"code": "invoice-not-found", "message": "The invoice was not found"}
        if len(rest) == 1 and method == "GET":
            return 200, inv
        if rest[1:] == ["payment-methods"] and method == "GET" and (
                "payment-methods" not in self.missing):
            return 200, [self._method(inv)]
        if rest[1:] == ["status"] and method == "POST":
            wanted = (body or {}).get("status")
            if wanted not in ("Invalid", "Settled"):
                return 422, [{"path": "status", "message": "Invalid or Settled"}]
            if inv["status"] not in ("New", "Expired"):
                return 400, {"code": "invoice-not-markable",
                             "message": "Cannot mark this invoice"}
            inv["status"] = wanted
            inv["additionalStatus"] = "Marked"
            return 200, inv
        return 404, {"code": "not-found", "message": "no such route"}

    def _create(self, body: Any) -> tuple[int, Any]:
        try:
            amount = Decimal(str(body["amount"]))
            currency = str(body.get("currency") or "USD")
        except (KeyError, TypeError, ArithmeticError):
            return 422, [{"path": "amount", "message": "amount is required"}]
        if amount <= 0:
            return 422, [{"path": "amount", "message": "amount must be positive"}]
        n = len(self.invoices) + 1
        invoice_id = f"BTCPAYINV{n:04d}"
        self.now += 1
        inv = {"id": invoice_id, "storeId": self.store_id, "amount": str(amount),
               "currency": currency, "type": "Standard",
               "checkoutLink": f"{self.url}/i/{invoice_id}", "createdTime": self.now,
               "expirationTime": self.now + 900, "monitoringExpiration": self.now + 87300,
               "status": "New", "additionalStatus": "None", "archived": False,
               "metadata": dict(body.get("metadata") or {}),
               "checkout": {"speedPolicy": "MediumSpeed", "expirationMinutes": 15}}
        self.invoices[invoice_id] = inv
        self.payments[invoice_id] = []
        self.creates.append(body)
        if self.fail_after_create:
            self.fail_after_create -= 1
            return 500, {"code": "server-error", "message": "An internal error occurred"}
        return 200, inv

    def _method(self, inv: dict[str, Any]) -> dict[str, Any]:
        payments = self.payments[inv["id"]]
        paid = sum((Decimal(p["value"]) for p in payments), Decimal(0))
        due_btc = (Decimal(inv["amount"]) / RATE).quantize(Decimal("0.00000001"))
        return {"paymentMethod": "BTC-CHAIN", "cryptoCode": "BTC",
                "destination": "bcrt1qexample", "paymentLink": "bitcoin:bcrt1qexample",
                "rate": str(RATE), "paymentMethodPaid": str(paid), "totalPaid": str(paid),
                "due": str(due_btc - paid), "amount": str(due_btc), "networkFee": "0.0",
                "payments": payments, "activated": True}

    @staticmethod
    def _answer(h: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
