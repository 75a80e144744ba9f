"""Canonical JSON: templates render exactly what the generic encoder does."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from vanta_box.core.canonical import Template, dumps, plain
from vanta_box.core.money import fmt
from vanta_box.service.cycle import ORDER_EVENT
from vanta_box.service.execute import FILL_EVENT

safe_text = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,30}", fullmatch=True)
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=8,
                       min_value=D("-1e12"), max_value=D("1e12")).map(fmt)


@given(st.data())
def test_templates_equal_the_generic_encoder(data: st.DataObject) -> None:
    for template in (ORDER_EVENT, FILL_EVENT, Template("b", "a", "c")):
        values = {k: data.draw(st.one_of(safe_text, decimals)) for k in template.keys}
        assert template.render(values) == dumps(values)
        # the hot path: the values alone, in the template's key order
        assert template.render_values(tuple(values[k] for k in template.keys)) == dumps(values)


def test_a_template_refuses_keys_in_another_order() -> None:
    import pytest

    with pytest.raises(AssertionError):
        Template("b", "a").expect_keys("b", "a")
    assert Template("b", "a").expect_keys("a", "b").keys == ("a", "b")


def test_canonical_decimal_text() -> None:
    assert [fmt(D(x)) for x in ("1.50", "-0", "1E+3", "0.0000005", "-2.000")] == [
        "1.5", "0", "1000", "0.0000005", "-2"]
    assert dumps(plain({"b": D("2.50"), "a": [D("1E+1")]})) == '{"a":["10"],"b":"2.5"}'
