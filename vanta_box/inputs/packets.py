"""The API packet (SPEC §3): broker keys + persona preferences + fee agreement.

Secrets are pydantic ``SecretStr`` from the moment they are parsed: they never appear in a
repr, a log line or an error message, and ``Packet.secrets()`` is the only way out (to the
keystore).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

from vanta_box.core.errors import InputError
from vanta_box.core.money import ONE, fmt
from vanta_box.inputs.common import (
    ID_PATTERN,
    Fraction,
    NonNeg,
    Pos,
    Strict,
    Timestamp,
    load_json,
    validate,
)
from vanta_box.inputs.vaults import FeeIn


def _filled(value: SecretStr | None) -> SecretStr | None:
    if value is not None and not value.get_secret_value().strip():
        raise ValueError("must not be empty")
    return value


Secret = Annotated[SecretStr, AfterValidator(_filled)]


class PaperBrokerIn(Strict):
    kind: Literal["paper"]
    starting_cash: NonNeg
    slippage_bps: NonNeg | None = None
    commission_bps: NonNeg | None = None

    @field_validator("slippage_bps", "commission_bps")
    @classmethod
    def _below_100_percent(cls, value: Any) -> Any:
        if value is not None and value >= 10000:
            raise ValueError("must be below 10000 basis points")
        return value


class AlpacaBrokerIn(Strict):
    kind: Literal["alpaca"]
    key_id: Secret
    secret_key: Secret
    paper: StrictBool = True
    base_url: StrictStr | None = None  # for a local test server; the SDK's default otherwise
    starting_cash: NonNeg | None = None  # shadow book only


class CcxtBrokerIn(Strict):
    kind: Literal["ccxt"]
    exchange: StrictStr = Field(pattern=r"^[a-z0-9_]{2,40}$")
    api_key: Secret
    secret: Secret
    password: Secret | None = None
    sandbox: StrictBool = True
    base_url: StrictStr | None = None
    starting_cash: NonNeg | None = None  # shadow book only
    # A snapshot of ccxt's markets (unified symbol -> market, as `exchange.load_markets()`
    # returns them): given, the venue's markets are never fetched (`load_markets` offline).
    markets: dict[StrictStr, dict[str, Any]] | None = None

    @field_validator("markets")
    @classmethod
    def _markets_shape(cls, value: Any) -> Any:
        if value is None:
            return None
        if not value:
            raise ValueError("must hold at least one market")
        for symbol, market in value.items():
            missing = [k for k in ("symbol", "base", "quote", "precision", "limits")
                       if k not in market]
            if missing:
                raise ValueError(f"market {symbol!r} lacks {', '.join(missing)}")
            if market["symbol"] != symbol:
                raise ValueError(f"market {symbol!r} says symbol {market['symbol']!r}")
        return _texts(value)

    @field_validator("exchange")
    @classmethod
    def _known_to_ccxt(cls, value: str) -> str:
        from vanta_box.execution.exchange import known_exchange

        if not known_exchange(value):
            raise ValueError(f"{value!r} is not an exchange id of the installed ccxt")
        return value


def _texts(value: Any) -> Any:
    """Numbers as their text, all the way down (what ccxt reads with ``number = str``)."""
    if isinstance(value, dict):
        return {k: _texts(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_texts(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return fmt(value) if isinstance(value, Decimal) else str(value)


_BROKERS: dict[str, type[Strict]] = {
    "paper": PaperBrokerIn, "alpaca": AlpacaBrokerIn, "ccxt": CcxtBrokerIn,
}
_SECRET_FIELDS = ("key_id", "secret_key", "api_key", "secret", "password")


class MirroringIn(Strict):
    mode: Literal["proportional", "capped", "shadow"] | None = None
    multiplier: Pos = ONE
    cap_usd: NonNeg | None = None
    max_order_notional: Pos | None = None
    max_position_pct: Fraction | None = None


class PacketIn(Strict):
    packet_version: StrictInt
    account_id: StrictStr = Field(pattern=ID_PATTERN)
    role: Literal["manager", "follower"]
    vault_id: StrictStr = Field(pattern=ID_PATTERN)
    broker: dict[str, Any]
    persona_prefs: list[StrictStr] | None = None
    mirroring: MirroringIn | None = None
    fee_agreement: FeeIn | None = None
    accepted_at: Timestamp | None = None


class Packet:
    """A validated packet. ``broker`` is the typed broker section (secrets inside)."""

    def __init__(self, raw: PacketIn, broker: Strict, warnings: list[str]) -> None:
        self.raw = raw
        self.broker = broker
        self.warnings = warnings

    @property
    def account_id(self) -> str:
        return self.raw.account_id

    @property
    def kind(self) -> str:
        return str(self.broker.model_dump()["kind"])

    def secrets(self) -> dict[str, str]:
        out = {}
        for name in _SECRET_FIELDS:
            value = getattr(self.broker, name, None)
            if value is not None:
                out[name] = value.get_secret_value()
        return out

    def public_broker(self) -> dict[str, Any]:
        """The broker section without any secret (what the database may keep)."""
        data = self.broker.model_dump(exclude=set(_SECRET_FIELDS), exclude_none=True)
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in data.items()}


def parse_packet(data: Any, source: str) -> Packet:
    if not isinstance(data, dict):
        raise InputError("expected a JSON object (the API packet)", source=source)
    raw = validate(PacketIn, data, source)
    if raw.packet_version != 1:
        raise InputError(f"unsupported packet_version {raw.packet_version} (this build reads 1)",
                         source=source, field="packet_version")
    kind = raw.broker.get("kind")
    model = _BROKERS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InputError(f"unknown broker kind {kind!r} (expected one of "
                         f"{', '.join(_BROKERS)})", source=source, field="broker.kind")
    broker = validate(model, raw.broker, source, ("broker",))
    warnings: list[str] = []
    if raw.role == "manager":
        if raw.fee_agreement is not None:
            raise InputError("a manager account carries no fee agreement", source=source,
                             field="fee_agreement")
        if raw.mirroring is not None:
            warnings.append(f"{source}: mirroring is ignored for a manager account "
                            "(it trades the vault's allocation itself)")
        if raw.persona_prefs is not None:
            warnings.append(f"{source}: persona_prefs is ignored for a manager account "
                            "(the master uses every persona)")
    elif raw.mirroring is not None and raw.mirroring.mode not in (None, "capped"):
        for name in ("cap_usd", "max_order_notional", "max_position_pct"):
            if getattr(raw.mirroring, name) is not None:
                warnings.append(f"{source}: mirroring.{name} only applies in mode capped; "
                                f"it is ignored in mode {raw.mirroring.mode}")
    return Packet(raw, broker, warnings)


def load_packet(path: str) -> Packet:
    return parse_packet(load_json(path), path)
