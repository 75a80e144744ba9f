"""Capital flows, contributions and time-weighted returns (SPEC §9). Pure.

An account's history is a list of *moves* ordered by (time, journal row): a fill changes
cash and one position, a flow (deposit > 0, withdrawal < 0) changes cash and the net
contributions ``C`` (starting cash + deposits - withdrawals), never PnL. The state at a
moment is rebuilt *backwards* from the books now (undoing the moves at or after it), so
only the moves since the earliest moment asked for are read.

Time-weighted return over a window: the window is cut at every flow; each sub-period's
return is ``V_end / V_begin - 1`` with ``V_end`` the equity just before the flow (at the
marks of the flow's time) and ``V_begin`` the equity just after the previous flow (or at
the window's start); the returns are chained, ``TWR = prod(1 + r_i) - 1``. A sub-period
that begins with no equity (a live account before its first funding) has no return and is
left out (factor 1). Divisions keep the 60-digit context; ``quantize_return`` rounds the
result for the files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from vanta_box.core.money import ONE, ZERO

# An (at, seq) key: the state "at key" holds every move whose (at, seq) is below it.
Key = tuple[int, int]
LAST_SEQ = 1 << 62  # (t, LAST_SEQ): every move at or before t

RETURN_PLACES = Decimal("1e-12")


@dataclass(frozen=True, slots=True)
class Move:
    at: int
    seq: int
    cash: Decimal                 # change of cash
    symbol: str | None = None     # a fill's symbol
    qty: Decimal = ZERO           # change of that position (buy +, sell -)
    flow: Decimal = ZERO          # a capital flow (its cash is the same amount)
    price: Decimal | None = None  # a fill's price (the mark when no price is known)


@dataclass(slots=True)
class State:
    cash: Decimal
    contributions: Decimal
    qty: dict[str, Decimal] = field(default_factory=dict)
    last_price: dict[str, Decimal] = field(default_factory=dict)

    def equity(self, marks: Mapping[str, Decimal]) -> Decimal:
        total = self.cash
        for symbol, q in sorted(self.qty.items()):
            if q:
                mark = marks.get(symbol, self.last_price.get(symbol))
                total += q * (mark if mark is not None else ZERO)
        return total

    def held(self) -> list[str]:
        return sorted(s for s, q in self.qty.items() if q)


def fill_move(at: int, seq: int, side: str, qty: Decimal, price: Decimal,
              commission: Decimal, symbol: str) -> Move:
    notional = qty * price
    if side == "buy":
        return Move(at, seq, -notional - commission, symbol, qty, ZERO, price)
    return Move(at, seq, notional - commission, symbol, -qty, ZERO, price)


def flow_move(at: int, seq: int, amount: Decimal) -> Move:
    return Move(at, seq, amount, None, ZERO, amount)


class Timeline:
    """An account's states at moments since the earliest of its ``moves``, rebuilt from
    the state ``now`` (after every move)."""

    def __init__(self, now: State, moves: Iterable[Move]) -> None:
        self.now = now
        self.moves = sorted(moves, key=lambda m: (m.at, m.seq))

    def state(self, key: Key) -> State:
        s = State(self.now.cash, self.now.contributions, dict(self.now.qty),
                  dict(self.now.last_price))
        for m in reversed(self.moves):
            if (m.at, m.seq) < key:
                break
            s.cash -= m.cash
            s.contributions -= m.flow
            if m.symbol is not None:
                s.qty[m.symbol] = s.qty.get(m.symbol, ZERO) - m.qty
        # the last fill price known at that moment (the mark when no price is known)
        for m in self.moves:
            if (m.at, m.seq) >= key:
                break
            if m.symbol is not None and m.price is not None:
                s.last_price[m.symbol] = m.price
        return s

    def flows(self, start: Key, end: Key | None = None) -> list[Move]:
        return [m for m in self.moves if m.flow and (m.at, m.seq) >= start
                and (end is None or (m.at, m.seq) < end)]


Marks = Callable[[int, Sequence[str]], Mapping[str, Decimal]]


def equity_at(t: Timeline, key: Key, marks: Marks, mark_time: int | None = None) -> Decimal:
    """Equity of the state at ``key`` at the marks of ``mark_time`` (default: key's time)."""
    s = t.state(key)
    return s.equity(marks(key[0] if mark_time is None else mark_time, s.held()))


def chain(start_value: Decimal, cuts: Sequence[tuple[Decimal, Decimal]],
          end_value: Decimal) -> Decimal:
    """The chained return: ``cuts`` are (equity just before a flow, the flow)."""
    factor, begin = ONE, start_value
    for before, amount in cuts:
        if begin > 0:
            factor *= before / begin
        begin = before + amount
    if begin > 0:
        factor *= end_value / begin
    return factor - ONE


def twr(t: Timeline, start: Key, end: Key | None, marks: Marks, end_time: int) -> Decimal:
    """Time-weighted return from the state at ``start`` to the state at ``end`` (None:
    now), valued at the marks of ``end_time`` at the end."""
    cuts = [(equity_at(t, (m.at, m.seq), marks), m.flow) for m in t.flows(start, end)]
    end_state = t.now if end is None else t.state(end)
    end_value = end_state.equity(marks(end_time, end_state.held()))
    # flows at one moment are cut one after the other (a factor of 1 between them)
    return chain(equity_at(t, start, marks), cuts, end_value)


def quantize_return(value: Decimal) -> Decimal:
    """A return as written to the files: 12 decimal places, half-up."""
    return value.quantize(RETURN_PLACES, rounding=ROUND_HALF_UP)
