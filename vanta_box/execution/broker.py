"""The broker protocol every venue adapter implements."""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple, Protocol

from vanta_box.core.models import Execution, Side
from vanta_box.core.money import ZERO


class OrderRequest(NamedTuple):
    client_order_id: str
    account_id: str
    symbol: str
    side: Side
    qty: Decimal
    mark: Decimal  # the mark at execution time; the paper venue fills from it
    lot_step: Decimal
    # max(vault min_order_notional, instrument min_notional): a buy reduced to fit cash
    # below it is rejected, never filled as dust (SPEC §4 Paper broker)
    min_notional: Decimal = ZERO


class AccountBook(Protocol):
    """What a venue simulator may read of the account it trades (the paper venue's truth)."""

    account_id: str
    cash: Decimal
    executed_ids: set[str]

    def held(self, symbol: str) -> Decimal: ...


class DuplicateOrder(Exception):
    """The venue already has an order with this client_order_id: it was not traded again."""

    def __init__(self, client_order_id: str) -> None:
        super().__init__(f"duplicate client_order_id {client_order_id}")
        self.client_order_id = client_order_id


class BrokerUnavailable(Exception):
    """The venue could not be reached; nothing is known to have happened."""


class Broker(Protocol):
    kind: str

    def submit(self, request: OrderRequest, book: AccountBook) -> Execution:
        """Execute a market order. Raises DuplicateOrder for a client_order_id it knows."""
        ...

    def lookup(self, client_order_id: str, book: AccountBook) -> Execution | None:
        """The execution of an order the venue already has, or None."""
        ...
