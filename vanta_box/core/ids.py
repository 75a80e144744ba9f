"""Identifiers derived from content, never random: a retry computes the same ids."""

from __future__ import annotations

import hashlib

from vanta_box.core.timeutil import fmt_ts


def cycle_id(vault_id: str, at: int) -> str:
    return f"{vault_id}@{fmt_ts(at)}"


def intent_id(cycle: str, symbol: str) -> str:
    """The vault-level intent for one symbol in one cycle: the parent of its orders."""
    return f"{cycle}/{symbol}"


def order_id(cycle: str, account_id: str, symbol: str) -> str:
    return f"{cycle}/{account_id}/{symbol}"


def client_order_id(cycle: str, account_id: str, symbol: str) -> str:
    """32 characters of [a-z0-9-]: within every venue's limit (Binance allows 36)."""
    digest = hashlib.sha256(f"{cycle}\x1f{account_id}\x1f{symbol}".encode()).hexdigest()
    return "vb-" + digest[:29]


def fee_entry_id(account_id: str, period: str, n: int = 0) -> str:
    return f"fee/{account_id}/{period}" + (f"/r{n}" if n else "")
