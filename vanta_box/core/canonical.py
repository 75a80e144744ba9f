"""Canonical JSON: the byte form hashed into the journal and written to memory/.

Sorted keys, no insignificant whitespace, UTF-8 (non-ASCII kept as is), and no floats: every
decimal is already a string (``vanta_box.core.money.fmt``). The same value always gives the
same bytes, which is what makes the journal hash and the state files deterministic.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from vanta_box.core.money import fmt

_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_pretty = json.JSONEncoder(sort_keys=True, indent=2, ensure_ascii=False)


def dumps(value: Any) -> str:
    return _encoder.encode(value)


def pretty(value: Any) -> str:
    return _pretty.encode(value) + "\n"


def loads(text: str | bytes) -> Any:
    """Parse JSON keeping every number exact (Decimal for fractions, int for integers)."""
    return json.loads(text, parse_float=Decimal)


def plain(value: Any) -> Any:
    """Turn Decimals (anywhere inside) into canonical strings, ready for ``dumps``."""
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class Template:
    """Canonical JSON of a flat object with a fixed set of keys whose values are strings
    that need no JSON escaping (ids, symbols and decimals, all validated at the border).

    ``render(d)`` equals ``dumps(d)`` for such objects, at a fraction of the cost: the hot
    events of a cycle (orders and fills, hundreds of thousands per cycle) use it.
    """

    __slots__ = ("_format", "_get", "keys")

    def __init__(self, *keys: str) -> None:
        import operator

        self.keys = tuple(sorted(keys))
        self._format = "{" + ",".join(f'"{k}":"%s"' for k in self.keys) + "}"
        self._get = operator.itemgetter(*self.keys)

    def render(self, values: dict[str, str]) -> str:
        text: str = self._format % self._get(values)
        return text

    def render_values(self, values: tuple[str, ...]) -> str:
        """The same text from the values alone, in ``keys`` order (the hottest events: no
        dict is built; callers pin the order with ``expect_keys``)."""
        text: str = self._format % values
        return text

    def expect_keys(self, *keys: str) -> Template:
        """Fail at import if the sorted keys are not ``keys`` (guards ``render_values``)."""
        if self.keys != keys:
            raise AssertionError(f"template keys {self.keys} are not {keys}")
        return self

