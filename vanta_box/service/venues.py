"""Live venues: which broker trades an account."""

from __future__ import annotations

from vanta_box.core.errors import Refused
from vanta_box.core.models import PaperTerms, Vault
from vanta_box.core.money import D
from vanta_box.execution.broker import Broker
from vanta_box.execution.paper import PaperBroker, ShadowVenue
from vanta_box.store.repo import AccountRow


def paper_terms(account: AccountRow, vault: Vault) -> PaperTerms:
    """The account's own slippage/commission, else the vault's (both default 0)."""
    cfg = account.broker_config
    slippage = cfg.get("slippage_bps")
    commission = cfg.get("commission_bps")
    return PaperTerms(
        D(slippage) if slippage is not None else vault.paper.slippage_bps,
        D(commission) if commission is not None else vault.paper.commission_bps,
    )


def unavailable(account: AccountRow) -> str | None:
    """Why an account cannot be traded by this build, or None. A function of the account
    alone, so live runs and replays decide alike."""
    if account.mode == "shadow" or account.broker_kind == "paper":
        return None
    return f"venue_unavailable:{account.broker_kind}"


class LiveVenues:
    def broker_for(self, account: AccountRow, vault: Vault) -> Broker:
        if account.mode == "shadow":
            return ShadowVenue(vault.risk.allow_short)
        if account.broker_kind == "paper":
            return PaperBroker(paper_terms(account, vault), vault.risk.allow_short)
        raise Refused(f"account {account.account_id}: trading on {account.broker_kind} is not "
                      "available in this build (use a paper or shadow account)")
