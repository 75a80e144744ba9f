"""The order state machine (domain/orders.py): a hypothesis state machine throws venue
answers in any order at an order and checks the lifecycle's invariants."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from vanta_box.domain.orders import (
    NO_EXECUTIONS,
    TERMINAL,
    Fill,
    InvalidTransition,
    OrderState,
    Status,
    apply_fill,
    move,
)


def test_the_happy_path_and_its_average_price() -> None:
    s = move(OrderState(D(10)), Status.SUBMITTED)
    s = move(s, Status.ACCEPTED)
    s, applied = apply_fill(s, Fill("t1", D(4), D("100")))
    assert applied and s.status == Status.PARTIALLY_FILLED and s.remaining == D(6)
    s, applied = apply_fill(s, Fill("t1", D(4), D("100")))  # the same execution again
    assert not applied and s.filled_qty == D(4)
    s, _ = apply_fill(s, Fill("t2", D(6), D("101")))
    assert s.status == Status.FILLED and s.avg_price == D("100.6") and s.remaining == 0


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_nothing_leaves_a_terminal_state(terminal: Status) -> None:
    state = OrderState(D(1), status=terminal)
    for other in Status:
        if other != terminal:
            with pytest.raises(InvalidTransition):
                move(state, other)


def test_an_overfill_is_refused() -> None:
    s = move(OrderState(D(1)), Status.SUBMITTED)
    with pytest.raises(InvalidTransition):
        apply_fill(s, Fill("t", D(2), D(1)))


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = move(OrderState(D(10)), Status.SUBMITTED)
        self.seen: dict[str, D] = {}
        self.left_terminal = False

    @rule(status=st.sampled_from(list(Status)))
    def venue_says(self, status: Status) -> None:
        before = self.state
        try:
            self.state = move(before, status)
        except InvalidTransition:
            assert self.state is before
            return
        if before.terminal:
            assert self.state.status == before.status  # only "the same again" is allowed

    @precondition(lambda self: self.state.status not in NO_EXECUTIONS)
    @rule(trade=st.sampled_from(["a", "b", "c", "d", "e"]),
          qty=st.decimals(min_value=D("0.5"), max_value=D(6), places=1),
          price=st.decimals(min_value=D(1), max_value=D(200), places=2))
    def execution(self, trade: str, qty: D, price: D) -> None:
        before = self.state
        try:
            self.state, applied = apply_fill(before, Fill(trade, qty, price))
        except InvalidTransition:
            assert self.state is before
            assert before.filled_qty + qty > before.qty
            return
        if trade in self.seen:
            assert not applied and self.state is before
        else:
            assert applied
            self.seen[trade] = qty

    @invariant()
    def cumulative_quantity_is_the_sum_of_distinct_executions(self) -> None:
        assert self.state.filled_qty == sum(self.seen.values(), D(0))
        assert D(0) <= self.state.filled_qty <= self.state.qty
        assert self.state.trade_ids == frozenset(self.seen)

    @invariant()
    def a_full_fill_is_filled(self) -> None:
        if self.state.filled_qty == self.state.qty and not self.ended_otherwise:
            assert self.state.status == Status.FILLED

    @property
    def ended_otherwise(self) -> bool:  # the venue ended it before the last execution came
        return self.state.status in (Status.CANCELED, Status.EXPIRED, Status.REJECTED)


TestLifecycle = Lifecycle.TestCase
