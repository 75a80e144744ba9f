"""Shared validation pieces: exact decimal fields, JSON loading, one-line errors."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
)

from vanta_box.core.canonical import loads
from vanta_box.core.errors import InputError
from vanta_box.core.money import D, MoneyError
from vanta_box.core.timeutil import TimeError, parse_ts


def _to_decimal(value: Any) -> Decimal:
    try:
        return D(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _fraction(value: Decimal) -> Decimal:
    if not 0 <= value <= 1:
        raise ValueError("must be between 0 and 1")
    return value


def _to_ts(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("must be a UTC ISO-8601 string, e.g. 2026-11-01T00:00:00Z")
    try:
        return parse_ts(value)
    except TimeError as exc:
        raise ValueError(str(exc)) from None


Dec = Annotated[Decimal, BeforeValidator(_to_decimal)]
NonNeg = Annotated[Decimal, BeforeValidator(_to_decimal), AfterValidator(_non_negative)]
Pos = Annotated[Decimal, BeforeValidator(_to_decimal), AfterValidator(_positive)]
Fraction = Annotated[Decimal, BeforeValidator(_to_decimal), AfterValidator(_fraction)]
Timestamp = Annotated[int, BeforeValidator(_to_ts)]

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,39}$"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class Strict(BaseModel):
    """Unknown keys are errors: a misspelt risk limit must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def load_json(path: Path | str) -> Any:
    source = Path(path)
    try:
        text = source.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=str(path)) from None
    try:
        return loads(text)
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source=str(path)) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", source=str(path)
        ) from None


def location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def describe(exc: ValidationError) -> tuple[str, str]:
    """(field path, problem) of the first validation error, in words a user can act on."""
    err = exc.errors(include_url=False)[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if err["type"] == "missing":
        message = "required field is missing"
    elif err["type"] == "extra_forbidden":
        message = "unknown field (check the spelling)"
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return location(loc), message


def first_error(
    exc: ValidationError, source: str, prefix: tuple[int | str, ...] = ()
) -> InputError:
    """The first validation problem as one line: file, field, problem."""
    loc, message = describe(exc)
    field = location(prefix)
    if loc:
        field = f"{field}.{loc}" if field and not loc.startswith("[") else field + loc
    return InputError(message, source=source, field=field or None)


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any, source: str, prefix: tuple[int | str, ...] = ()) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise first_error(exc, source, prefix) from None
