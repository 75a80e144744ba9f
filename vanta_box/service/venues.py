"""Which venue trades an account: the embedded paper and shadow venues (instant: their
books are ours, so an order and its fill are one transaction) or a live venue (answers
over the network: write-ahead steps, ``service.live``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from vanta_box.core.clock import Clock, SystemClock
from vanta_box.core.errors import Refused
from vanta_box.core.models import Instrument, PaperTerms, Vault
from vanta_box.core.money import D
from vanta_box.execution.paper import AccountBook, PaperVenue, ShadowVenue
from vanta_box.execution.venue import LiveVenue
from vanta_box.store.repo import AccountRow

LIVE_KINDS = frozenset({"alpaca", "ccxt"})
WORKERS = 64  # threads asking live venues at once (VANTA_VENUE_WORKERS): a venue that
# hangs holds one until its timeout, so there are enough for many such venues at once


def paper_terms(account: AccountRow, vault: Vault) -> PaperTerms:
    """The account's own slippage/commission, else the vault's (both default 0)."""
    cfg = account.broker_config
    slippage = cfg.get("slippage_bps")
    commission = cfg.get("commission_bps")
    return PaperTerms(
        D(slippage) if slippage is not None else vault.paper.slippage_bps,
        D(commission) if commission is not None else vault.paper.commission_bps,
    )


def is_live(account: AccountRow) -> bool:
    """Traded at a venue over the network (a shadow follower never is)."""
    return account.mode != "shadow" and account.broker_kind in LIVE_KINDS


def unavailable(account: AccountRow) -> str | None:
    """Why an account cannot be traded by this build, or None. A function of the account
    alone, so live runs and replays decide alike."""
    if account.mode == "shadow" or account.broker_kind == "paper" or is_live(account):
        return None
    return f"venue_unavailable:{account.broker_kind}"


def instant_kind(account: AccountRow) -> str:
    """The kind of an account's instant venue (``shadow`` or ``paper``); refused for any
    other (a function of the account alone, so live runs and replays decide alike)."""
    if account.mode == "shadow":
        return "shadow"
    if account.broker_kind == "paper":
        return "paper"
    raise Refused(f"account {account.account_id}: trading on {account.broker_kind} is not "
                  "available in this build (use a paper or shadow account)")


class LiveVenues:
    """The venues of a live run: secrets from the keystore, waits on the system clock."""

    tape = None  # replay reads answers from the journal instead (service.replay)

    def __init__(self, keystore: Any = None, clock: Clock | None = None,
                 workers: int | None = None) -> None:
        self.keystore = keystore
        self.clock = clock or SystemClock()
        self.workers = workers or int(os.environ.get("VANTA_VENUE_WORKERS") or WORKERS)
        self._live: dict[str, LiveVenue] = {}
        self._pool: ThreadPoolExecutor | None = None

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The threads that ask live venues: at most ``workers`` requests in flight."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="venue")
        return self._pool

    def instant_for(self, account: AccountRow, vault: Vault, book: AccountBook,
                    marks: Mapping[str, Decimal],
                    instruments: Mapping[str, Instrument]) -> LiveVenue:
        """The account's instant venue over its book (paper or shadow)."""
        minimum = vault.rebalance.min_order_notional
        if instant_kind(account) == "shadow":
            return ShadowVenue(book, marks, instruments, minimum, vault.risk.allow_short)
        return PaperVenue(book, marks, instruments, minimum, paper_terms(account, vault),
                          vault.risk.allow_short)

    def live_for(self, account: AccountRow, symbols: frozenset[str]) -> LiveVenue:
        if account.account_id not in self._live:
            self._live[account.account_id] = open_venue(
                account.broker_kind, account.broker_config, self._secrets(account), symbols,
                self.clock)
        return self._live[account.account_id]

    def _secrets(self, account: AccountRow) -> dict[str, str]:
        if self.keystore is None:
            raise Refused(f"account {account.account_id}: no keystore to read its keys from")
        secrets: dict[str, str] = self.keystore.get(account.account_id)
        return secrets


def open_venue(kind: str, cfg: dict[str, Any], secrets: dict[str, str],
               symbols: frozenset[str], clock: Clock, **limits: Any) -> LiveVenue:
    """The adapter of an account's venue (alpaca-py, or ccxt's exchange module)."""
    sleep = getattr(clock, "sleep", None)
    if sleep is None:
        raise Refused("a live venue needs a clock that can wait")
    precise = getattr(clock, "precise", clock.now)
    if kind == "ccxt":
        from vanta_box.execution.exchange import ExchangeVenue

        return ExchangeVenue(str(cfg["exchange"]), secrets["api_key"], secrets["secret"],
                             secrets.get("password"), sandbox=bool(cfg.get("sandbox", True)),
                             base_url=cfg.get("base_url"), symbols=symbols, sleep=sleep,
                             now=clock.now, precise=precise, markets=cfg.get("markets"),
                             **limits)
    from vanta_box.execution.alpaca import AlpacaVenue

    return AlpacaVenue(secrets["key_id"], secrets["secret_key"],
                       paper=bool(cfg.get("paper", True)), base_url=cfg.get("base_url"),
                       symbols=symbols, sleep=sleep, now=clock.now, precise=precise, **limits)


def check_keys(path: str, packet: Any) -> None:
    """Onboarding reads a live account once: keys the venue refuses are bad input."""
    if packet.kind not in LIVE_KINDS:
        return
    from vanta_box.core.errors import InputError
    from vanta_box.execution.venue import VenueError

    clock = SystemClock()
    broker = packet.public_broker()
    try:
        venue: Any = open_venue(packet.kind, broker, packet.secrets(), frozenset(), clock,
                                max_tries=2, max_wait=5.0)
    except ValueError as exc:  # an exchange id ccxt does not have
        raise InputError(str(exc), source=path, field="broker.exchange") from None
    try:
        status = venue.account_status()
    except VenueError as exc:
        if exc.kind == "auth":
            raise InputError(f"the venue refused these keys ({exc.message})", source=path,
                             field="broker") from None
        raise Refused(f"{path}: could not read the account at its venue ({exc.message}); "
                      "check broker.base_url, or onboard with --offline") from None
    if status and status.upper() != "ACTIVE":
        raise Refused(f"{path}: the venue says the account is {status}, not ACTIVE")

