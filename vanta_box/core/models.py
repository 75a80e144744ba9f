"""Immutable records shared by the stages. Validation happens before these are built
(``vanta_box.inputs``); a record that exists is a valid one."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, NamedTuple

from vanta_box.core.money import ONE, ZERO

AssetClass = Literal["equity", "crypto"]
Side = Literal["buy", "sell"]
MirrorMode = Literal["proportional", "capped", "shadow"]
AccountMode = Literal["master", "proportional", "capped", "shadow"]
FeeType = Literal["performance", "flat", "performance_or_flat"]


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    asset_class: AssetClass
    lot_step: Decimal = ONE
    min_notional: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class FeeTerms:
    type: FeeType
    perf_share: Decimal = ZERO
    flat_usd: Decimal = ZERO
    basis: str | None = None             # SPEC §9; None: "realized"
    management_pct: Decimal | None = None  # None: 0
    period: str | None = None            # None: "month"


@dataclass(frozen=True, slots=True)
class Risk:
    max_drawdown: Decimal | None = None
    max_single_pos_pct: Decimal = ONE
    cash_buffer: Decimal = ZERO
    allow_short: bool = False
    on_drawdown: Literal["halt", "liquidate"] = "halt"


@dataclass(frozen=True, slots=True)
class Rebalance:
    drift_band: Decimal = ZERO
    min_order_notional: Decimal = ONE


@dataclass(frozen=True, slots=True)
class VaultMirroring:
    mode: MirrorMode = "proportional"
    min_account_equity: Decimal = ZERO
    fee: FeeTerms | None = None


@dataclass(frozen=True, slots=True)
class PaperTerms:
    slippage_bps: Decimal = ZERO
    commission_bps: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Vault:
    vault_id: str
    label: str
    base_currency: str = "USD"
    crypto_enabled: bool = True
    fiat_enabled: bool = True
    personas: tuple[str, ...] = ()
    risk: Risk = field(default_factory=Risk)
    rebalance: Rebalance = field(default_factory=Rebalance)
    mirroring: VaultMirroring = field(default_factory=VaultMirroring)
    paper: PaperTerms = field(default_factory=PaperTerms)
    schedule: tuple[str, str] = ("1d", "0s")  # `vanta run`: cycle every, offset from 00:00


@dataclass(frozen=True, slots=True)
class Score:
    symbol: str
    score: Decimal
    persona: str | None = None


@dataclass(frozen=True, slots=True)
class Overlay:
    vault_id: str
    kind: Literal["flip", "boost", "maintenance"]
    set_at: int
    expires_at: int
    persona: str = ""
    factor: Decimal = ONE

    def in_force(self, at: int) -> bool:
        return self.set_at <= at < self.expires_at


@dataclass(frozen=True, slots=True)
class Mirroring:
    mode: MirrorMode = "proportional"
    multiplier: Decimal = ONE
    cap_usd: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position_pct: Decimal | None = None


class Weight(NamedTuple):
    """An exact target weight num/den (den > 0). Kept as a pair so that sizing, capping and
    flooring never work on a rounded quotient such as 1/3."""

    num: Decimal
    den: Decimal

    def value(self) -> Decimal:
        return self.num / self.den

    def capped(self, cap: Decimal) -> Weight:
        limit = cap * self.den
        if abs(self.num) <= limit:
            return self
        return Weight(limit if self.num > 0 else -limit, self.den)


class OrderPlan(NamedTuple):
    """One order the rebalance wants: sells before buys, quantities on the lot step."""

    symbol: str
    side: Side
    qty: Decimal
    mark: Decimal
    held: Decimal
    target: Decimal
    capped_from: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Skip:
    """An order the rebalance decided not to place; ``detail`` holds the numbers behind
    the decision (formatted only if the skip is journaled on its own)."""

    symbol: str | None
    reason: str
    detail: dict[str, Decimal] = field(default_factory=dict)


class Execution(NamedTuple):
    """What a venue did with one order: filled ``qty`` at ``price`` (or rejected)."""

    qty: Decimal
    price: Decimal
    commission: Decimal
    requested_qty: Decimal
    reject_reason: str | None = None
    note: str | None = None

    @property
    def rejected(self) -> bool:
        return self.reject_reason is not None
