"""vault.json: the source's vault registry format plus the optional keys of SPEC §3."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictBool, StrictStr, field_validator, model_validator

from vanta_box.core.canonical import plain
from vanta_box.core.errors import InputError
from vanta_box.core.models import (
    FeeTerms,
    PaperTerms,
    Rebalance,
    Risk,
    Vault,
    VaultMirroring,
)
from vanta_box.core.money import ONE, ZERO
from vanta_box.inputs.common import (
    ID_PATTERN,
    Fraction,
    NonNeg,
    Strict,
    load_json,
    validate,
)


class CollectIn(Strict):
    """Where a follower's fees are invoiced (SPEC §9 Collection)."""

    via: Literal["stripe", "btcpay"]
    customer: StrictStr | None = Field(default=None, pattern=r"^cus_[A-Za-z0-9]{1,250}$")
    store_id: StrictStr | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,200}$")

    @model_validator(mode="after")
    def _payer(self) -> CollectIn:
        if self.via == "stripe" and self.customer is None:
            raise ValueError("collect via stripe needs customer (the Stripe customer id)")
        if self.via == "stripe" and self.store_id is not None:
            raise ValueError("store_id is for btcpay, not stripe")
        if self.via == "btcpay" and self.customer is not None:
            raise ValueError("customer is for stripe, not btcpay")
        return self

    def payer(self) -> str:
        """The Stripe customer, or the BTCPay store ('' for the processor's own)."""
        return self.customer or self.store_id or ""


class FeeIn(Strict):
    type: Literal["performance", "flat", "performance_or_flat"]
    perf_share: Fraction | None = None
    flat_usd: NonNeg | None = None
    collect: CollectIn | None = None
    # SPEC §9 (absent: the defaults, realized / 0 / month)
    basis: Literal["realized", "equity_hwm"] | None = None
    management_pct: Fraction | None = None  # annual
    period: Literal["month", "quarter"] | None = None

    @model_validator(mode="after")
    def _fields_of_the_type(self) -> FeeIn:
        # A fee type without its amount would bill zero silently: say so instead.
        if self.type in ("performance", "performance_or_flat") and self.perf_share is None:
            raise ValueError(f"fee type {self.type} needs perf_share")
        if self.type in ("flat", "performance_or_flat") and self.flat_usd is None:
            raise ValueError(f"fee type {self.type} needs flat_usd")
        return self

    def to_model(self) -> FeeTerms:
        return FeeTerms(self.type, self.perf_share or ZERO, self.flat_usd or ZERO,
                        self.basis, self.management_pct, self.period)

    def options(self) -> dict[str, Any]:
        """The SPEC §9 options given (only those: an agreement without them reads as
        before)."""
        return {k: v for k, v in (("basis", self.basis),
                                  ("management_pct", self.management_pct),
                                  ("period", self.period)) if v is not None}


class RiskIn(Strict):
    max_drawdown: Fraction | None = None
    max_single_pos_pct: Fraction = ONE
    cash_buffer: Fraction = ZERO
    allow_short: StrictBool = False
    on_drawdown: Literal["halt", "liquidate"] = "halt"


class RebalanceIn(Strict):
    drift_band: NonNeg = ZERO
    min_order_notional: NonNeg = ONE


class VaultMirroringIn(Strict):
    mode: Literal["proportional", "capped", "shadow"] = "proportional"
    min_account_equity: NonNeg = ZERO
    fee: FeeIn | None = None

    @field_validator("fee")
    @classmethod
    def _no_collect(cls, value: FeeIn | None) -> FeeIn | None:
        if value is not None and value.collect is not None:
            raise ValueError("collect names one follower's customer: it belongs in a "
                             "packet's fee_agreement, not in the vault's default fee")
        return value


class PaperIn(Strict):
    slippage_bps: NonNeg = ZERO
    commission_bps: NonNeg = ZERO

    @field_validator("slippage_bps", "commission_bps")
    @classmethod
    def _below_100_percent(cls, value: Any) -> Any:
        if value >= 10000:
            raise ValueError("must be below 10000 basis points")
        return value


class ScheduleIn(Strict):
    every: StrictStr = "1d"
    offset: StrictStr = "0s"

    @field_validator("every", "offset")
    @classmethod
    def _duration(cls, value: str, info: Any) -> str:
        from vanta_box.core.timeutil import TimeError, parse_duration

        if info.field_name == "offset" and value.strip() in ("0", "0s"):
            return "0s"
        try:
            parse_duration(value)
        except TimeError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()


class VaultIn(Strict):
    vault_id: StrictStr = Field(pattern=ID_PATTERN)
    label: StrictStr | None = None
    base_currency: StrictStr = Field(default="USD", pattern=r"^[A-Z]{3,5}$")
    crypto_enabled: StrictBool = True
    fiat_enabled: StrictBool = True
    personas: list[StrictStr] = Field(default_factory=list)
    risk: RiskIn = RiskIn()
    rebalance: RebalanceIn = RebalanceIn()
    mirroring: VaultMirroringIn = VaultMirroringIn()
    paper: PaperIn = PaperIn()
    schedule: ScheduleIn = ScheduleIn()

    @field_validator("personas")
    @classmethod
    def _personas(cls, value: list[str]) -> list[str]:
        import re

        for persona in value:
            if not re.fullmatch(ID_PATTERN, persona):
                raise ValueError(f"invalid persona name {persona!r}")
        if len(set(value)) != len(value):
            raise ValueError("personas must not repeat")
        return value

    def to_model(self) -> Vault:
        r = self.risk
        return Vault(
            vault_id=self.vault_id,
            label=self.label or self.vault_id,
            base_currency=self.base_currency,
            crypto_enabled=self.crypto_enabled,
            fiat_enabled=self.fiat_enabled,
            personas=tuple(self.personas),
            risk=Risk(r.max_drawdown, r.max_single_pos_pct, r.cash_buffer, r.allow_short,
                      r.on_drawdown),
            rebalance=Rebalance(self.rebalance.drift_band, self.rebalance.min_order_notional),
            mirroring=VaultMirroring(
                self.mirroring.mode,
                self.mirroring.min_account_equity,
                self.mirroring.fee.to_model() if self.mirroring.fee else None,
            ),
            paper=PaperTerms(self.paper.slippage_bps, self.paper.commission_bps),
            schedule=(self.schedule.every, self.schedule.offset),
        )


class VaultFileIn(Strict):
    vaults: list[VaultIn] = Field(min_length=1)
    as_of: Any = None  # present in the file `vanta emit` writes; ignored on import

    @model_validator(mode="after")
    def _unique(self) -> VaultFileIn:
        seen: set[str] = set()
        for vault in self.vaults:
            if vault.vault_id in seen:
                raise ValueError(f"vault_id {vault.vault_id!r} appears twice")
            seen.add(vault.vault_id)
        return self


def _merge(defaults: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for key, item in value.items():
        if isinstance(item, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], item)
        else:
            out[key] = item
    return out


def parse_vault_file(data: Any, source: str) -> list[Vault]:
    """Validate a vault registry. A top-level ``defaults`` object is merged under each
    vault (the vault's own keys win)."""
    if not isinstance(data, dict):
        raise InputError('expected an object {"vaults": [...]}', source=source)
    data = dict(data)
    defaults = data.pop("defaults", None)
    if defaults is not None:
        if not isinstance(defaults, dict):
            raise InputError("must be an object", source=source, field="defaults")
        raw = data.get("vaults")
        if isinstance(raw, list):
            data["vaults"] = [_merge(defaults, v) if isinstance(v, dict) else v for v in raw]
    parsed = validate(VaultFileIn, data, source)
    return [v.to_model() for v in parsed.vaults]


def load_vault_file(path: str) -> list[Vault]:
    return parse_vault_file(load_json(path), path)


def vault_to_dict(vault: Vault) -> dict[str, Any]:
    """The import format with every default written out (re-importable as is)."""
    fee = vault.mirroring.fee
    out: dict[str, Any] = plain({
        "vault_id": vault.vault_id,
        "label": vault.label,
        "base_currency": vault.base_currency,
        "crypto_enabled": vault.crypto_enabled,
        "fiat_enabled": vault.fiat_enabled,
        "personas": list(vault.personas),
        "risk": {
            "max_drawdown": vault.risk.max_drawdown,
            "max_single_pos_pct": vault.risk.max_single_pos_pct,
            "cash_buffer": vault.risk.cash_buffer,
            "allow_short": vault.risk.allow_short,
            "on_drawdown": vault.risk.on_drawdown,
        },
        "rebalance": {
            "drift_band": vault.rebalance.drift_band,
            "min_order_notional": vault.rebalance.min_order_notional,
        },
        "mirroring": {
            "mode": vault.mirroring.mode,
            "min_account_equity": vault.mirroring.min_account_equity,
            "fee": None if fee is None else {
                "type": fee.type, "perf_share": fee.perf_share, "flat_usd": fee.flat_usd,
                **fee_options(fee),
            },
        },
        "paper": {
            "slippage_bps": vault.paper.slippage_bps,
            "commission_bps": vault.paper.commission_bps,
        },
        "schedule": {"every": vault.schedule[0], "offset": vault.schedule[1]},
    })
    return out


def vault_from_dict(data: dict[str, Any]) -> Vault:
    return validate(VaultIn, data, "vault registry").to_model()


def fee_options(fee: FeeTerms) -> dict[str, Any]:
    return {k: v for k, v in (("basis", fee.basis), ("management_pct", fee.management_pct),
                              ("period", fee.period)) if v is not None}
