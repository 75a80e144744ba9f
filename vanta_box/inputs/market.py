"""instruments.json, price files (CSV or JSON) and conviction signal files."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictStr, ValidationError

from vanta_box.core.errors import InputError
from vanta_box.core.models import Instrument, Score
from vanta_box.core.money import ONE, ZERO
from vanta_box.inputs.common import (
    ID_PATTERN,
    SYMBOL_PATTERN,
    Dec,
    LotStep,
    NonNeg,
    Pos,
    Strict,
    Timestamp,
    describe,
    load_json,
    validate,
)


class InstrumentIn(Strict):
    symbol: StrictStr = Field(pattern=SYMBOL_PATTERN)
    asset_class: Literal["equity", "crypto"]
    lot_step: LotStep = ONE
    min_notional: NonNeg = ZERO


def parse_instruments(data: Any, source: str) -> list[Instrument]:
    prefix: tuple[int | str, ...] = ()
    if isinstance(data, dict) and "instruments" in data:
        data, prefix = data["instruments"], ("instruments",)
    if not isinstance(data, list) or not data:
        raise InputError("expected a non-empty list of instruments", source=source)
    out: list[Instrument] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        parsed = validate(InstrumentIn, item, source, (*prefix, i))
        if parsed.symbol in seen:
            raise InputError(f"symbol {parsed.symbol!r} appears twice", source=source,
                             field=f"[{i}].symbol")
        seen.add(parsed.symbol)
        out.append(Instrument(parsed.symbol, parsed.asset_class, parsed.lot_step,
                              parsed.min_notional))
    return out


def load_instruments(path: str) -> list[Instrument]:
    return parse_instruments(load_json(path), path)


@dataclass(frozen=True, slots=True)
class PricePoint:
    symbol: str
    ts: int
    price: Decimal


class PriceIn(Strict):
    symbol: StrictStr = Field(pattern=SYMBOL_PATTERN)
    ts: Timestamp
    price: Pos


def _check_prices(
    rows: Iterable[tuple[str, Any]], source: str, known: Mapping[str, Instrument]
) -> list[PricePoint]:
    out: list[PricePoint] = []
    seen: set[tuple[str, int]] = set()
    for where, raw in rows:
        try:
            parsed = PriceIn.model_validate(raw)
        except ValidationError as exc:
            loc, message = describe(exc)
            field = f"{where}.{loc}" if loc else where
            raise InputError(message, source=source, field=field) from None
        if parsed.symbol not in known:
            raise InputError(
                f"unknown symbol {parsed.symbol!r} (import it with `vanta instruments import`)",
                source=source, field=f"{where}.symbol",
            )
        key = (parsed.symbol, parsed.ts)
        if key in seen:
            raise InputError(f"{parsed.symbol} has two prices for the same ts", source=source,
                             field=where)
        seen.add(key)
        out.append(PricePoint(parsed.symbol, parsed.ts, parsed.price))
    if not out:
        raise InputError("no prices in the file", source=source)
    return out


def parse_prices(
    path: str, text: str, known: Mapping[str, Instrument]
) -> list[PricePoint]:
    """CSV ``symbol,ts,price`` (header optional) or a JSON list of such objects."""
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        data = load_json(path)
        if isinstance(data, dict) and "prices" in data:
            data = data["prices"]
        if not isinstance(data, list):
            raise InputError("expected a JSON list of {symbol, ts, price}", source=path)
        return _check_prices(((f"[{i}]", item) for i, item in enumerate(data)), path, known)
    return _check_prices(_csv_rows(path, text), path, known)


def _csv_rows(path: str, text: str) -> list[tuple[str, Any]]:
    reader = csv.reader(io.StringIO(text))
    try:
        records = list(reader)
    except csv.Error as exc:  # e.g. a field longer than the csv module's limit
        raise InputError(f"not CSV: {exc}", source=path,
                         field=f"line {reader.line_num}") from None
    rows: list[tuple[str, Any]] = []
    columns = ["symbol", "ts", "price"]
    for line_no, record in enumerate(records, start=1):
        if not record or all(not cell.strip() for cell in record):
            continue
        cells = [cell.strip() for cell in record]
        if line_no == 1 and {c.lower() for c in cells} >= {"symbol", "ts", "price"}:
            columns = [c.lower() for c in cells]
            continue
        if len(cells) != len(columns):
            raise InputError(
                f"expected {len(columns)} columns ({','.join(columns)}), found {len(cells)}",
                source=path, field=f"line {line_no}",
            )
        row = dict(zip(columns, cells, strict=True))
        rows.append((f"line {line_no}", {k: row[k] for k in ("symbol", "ts", "price")}))
    return rows


def load_prices(path: str, known: Mapping[str, Instrument]) -> list[PricePoint]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a BOM, as spreadsheets write
    except FileNotFoundError:
        raise InputError("no such file", source=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", source=path) from None
    return parse_prices(path, text, known)


class ScoreIn(Strict):
    symbol: StrictStr = Field(pattern=SYMBOL_PATTERN)
    score: Dec
    persona: StrictStr | None = None


class SignalFileIn(Strict):
    vault_id: StrictStr = Field(pattern=ID_PATTERN)
    as_of: Timestamp
    scores: list[ScoreIn]


@dataclass(frozen=True, slots=True)
class SignalSet:
    vault_id: str
    as_of: int
    scores: tuple[Score, ...]


def parse_signals(
    data: Any,
    source: str,
    personas_of: Mapping[str, tuple[str, ...]],
    known: Mapping[str, Instrument],
) -> list[SignalSet]:
    """One signal file object, or a list of them. Scores in [-1, 1], known symbols and
    personas of the vault, one score per (symbol, persona)."""
    items = data if isinstance(data, list) else [data]
    out: list[SignalSet] = []
    for n, item in enumerate(items):
        prefix: tuple[int | str, ...] = (n,) if isinstance(data, list) else ()
        parsed = validate(SignalFileIn, item, source, prefix)
        where = "".join(f"[{p}]" for p in prefix)
        if parsed.vault_id not in personas_of:
            raise InputError(f"unknown vault {parsed.vault_id!r} (import it first)",
                             source=source, field=f"{where}vault_id".lstrip("."))
        personas = personas_of[parsed.vault_id]
        seen: set[tuple[str, str | None]] = set()
        scores: list[Score] = []
        for i, s in enumerate(parsed.scores):
            field = f"{where}scores[{i}]"
            if not Decimal(-1) <= s.score <= Decimal(1):
                raise InputError("score must be between -1 and 1", source=source,
                                 field=f"{field}.score")
            if s.symbol not in known:
                raise InputError(
                    f"unknown symbol {s.symbol!r} (import it with `vanta instruments import`)",
                    source=source, field=f"{field}.symbol",
                )
            if s.persona is not None and s.persona not in personas:
                raise InputError(
                    f"persona {s.persona!r} is not one of the vault's personas "
                    f"{list(personas)}", source=source, field=f"{field}.persona",
                )
            key = (s.symbol, s.persona)
            if key in seen:
                raise InputError(f"{s.symbol} is scored twice for the same persona",
                                 source=source, field=field)
            seen.add(key)
            scores.append(Score(s.symbol, s.score, s.persona))
        scores.sort(key=lambda sc: (sc.symbol, sc.persona or ""))
        out.append(SignalSet(parsed.vault_id, parsed.as_of, tuple(scores)))
    return out


def load_signals(
    path: str, personas_of: Mapping[str, tuple[str, ...]], known: Mapping[str, Instrument]
) -> list[SignalSet]:
    return parse_signals(load_json(path), path, personas_of, known)
