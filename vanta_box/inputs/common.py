"""Shared validation pieces: exact decimal fields, JSON loading, one-line errors."""

from __future__ import annotations

import json
import re
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

from vanta_box.core.errors import InputError
from vanta_box.core.money import MIN_LOT_STEP, MoneyError, parse_bounded
from vanta_box.core.timeutil import TimeError, parse_input_ts

MAX_DEPTH = 64  # SPEC §6: JSON nesting at most 64 deep


def _to_decimal(value: Any) -> Decimal:
    try:
        return parse_bounded(value)
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


def _lot_step(value: Decimal) -> Decimal:
    if value < MIN_LOT_STEP:
        raise ValueError("must be at least 1e-12")
    return value


def _to_ts(value: Any) -> int:
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        raise ValueError("must be a UTC ISO-8601 string, e.g. 2026-11-01T00:00:00Z")
    try:
        return parse_input_ts(value)
    except TimeError as exc:
        raise ValueError(str(exc)) from None


Dec = Annotated[Decimal, BeforeValidator(_to_decimal)]
NonNeg = Annotated[Decimal, BeforeValidator(_to_decimal), AfterValidator(_non_negative)]
Pos = Annotated[Decimal, BeforeValidator(_to_decimal), AfterValidator(_positive)]
Fraction = Annotated[Decimal, BeforeValidator(_to_decimal), AfterValidator(_fraction)]
LotStep = Annotated[Decimal, BeforeValidator(_to_decimal), AfterValidator(_positive),
                    AfterValidator(_lot_step)]
Timestamp = Annotated[int, BeforeValidator(_to_ts)]

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,39}$"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class Strict(BaseModel):
    """Unknown keys are errors: a misspelt risk limit must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_ESCAPE = re.compile(r"\\.", re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# every ASCII character but the quote and the brackets goes: C-speed, no match objects
_SHAPE = str.maketrans("", "", "".join(chr(c) for c in range(128) if chr(c) not in '"[]{}'))
_ONE_KIND = str.maketrans("[]{}", "()()")


def _shape(text: str) -> str:
    """The brackets of JSON text that are not inside strings, each as ``(`` or ``)``."""
    if "\\" in text:
        text = _ESCAPE.sub("", text)  # an escaped quote is no quote
    # Dropping ASCII leaves each string as its quotes, its brackets and its non-ASCII
    # characters. Adjacent quotes either close an emptied string or join two strings into
    # one; either way what remains inside strings stays inside, and few strings are left.
    text = text.translate(_SHAPE).replace('""', "")
    return _NOT_BRACKET.sub("", _STRING.sub("", text)).translate(_ONE_KIND)


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """How deep arrays and objects nest in JSON text (brackets inside strings do not
    count), counted up to ``limit + 1``. Each pass removes the innermost pairs: C-speed,
    no recursion, at most ``limit + 1`` passes however deep the text goes."""
    shape = _shape(text)
    depth = 0
    while shape and depth <= limit:
        inner = shape.replace("()", "")
        if inner == shape:  # unbalanced: json reports where; count the openers left
            return depth + shape.count("(")
        shape, depth = inner, depth + 1
    return depth


def _int(text: str) -> int | Decimal:
    # Python refuses to build ints of more than 4300 digits; a long integer goes on as a
    # Decimal so that the field's own check names it (too many digits).
    return int(text) if len(text) <= 40 else Decimal(text)


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode(json.detect_encoding(raw))
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source=source) from None


def load_json(path: Path | str) -> Any:
    """Read a JSON input file: numbers exact (Decimal), nesting at most 64 deep."""
    source = Path(path)
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=str(path)) from None
    text = _decode(raw, str(path))
    if nesting_depth(text) > MAX_DEPTH:
        raise InputError(f"JSON nested deeper than {MAX_DEPTH} levels", source=str(path))
    try:
        return json.loads(text, parse_float=Decimal, parse_int=_int, parse_constant=Decimal)
    except RecursionError:  # unbalanced text the count above could not size
        raise InputError(f"JSON nested deeper than {MAX_DEPTH} levels",
                         source=str(path)) from None
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
