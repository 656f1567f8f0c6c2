from __future__ import annotations

import pytest

from stream_processing.taskmanager.operators import FieldFilter, FieldMapper, OperatorChain


@pytest.mark.parametrize(
    ("op", "value", "field_value", "kept"),
    [
        ("eq", "click", "click", True),
        ("eq", "click", "view", False),
        ("ne", "click", "view", True),
        ("gt", 5, 6, True),
        ("gt", 5, 5, False),
        ("ge", 5, 5, True),
        ("lt", 5, 4, True),
        ("le", 5, 6, False),
        ("in", ["a", "b"], "b", True),
        ("in", ["a", "b"], "c", False),
        ("exists", None, 0, True),
    ],
)
def test_filter_compares_the_field(op, value, field_value, kept):
    record = {"field": field_value}
    assert (FieldFilter("field", op, value)(record) is record) is kept


def test_filter_drops_records_without_the_field_or_with_incomparable_types():
    assert FieldFilter("amount", "gt", 1)({"other": 1}) is None
    assert FieldFilter("amount", "gt", 1)({"amount": "text"}) is None


def test_filter_rejects_unknown_operators():
    with pytest.raises(ValueError, match="unknown filter operator"):
        FieldFilter("field", "like", "x")


def test_map_projects_and_renames():
    mapper = FieldMapper({"user": "user_id", "ts": "ts", "missing": "absent"})
    assert mapper({"user_id": "u1", "ts": 5, "secret": "x"}) == {"user": "u1", "ts": 5, "missing": None}


def test_chain_applies_operators_in_order_and_stops_at_a_drop():
    chain = OperatorChain([
        {"type": "filter", "field": "kind", "op": "eq", "value": "click"},
        {"type": "map", "fields": {"user": "user_id"}},
        {"type": "filter", "field": "user", "op": "ne", "value": "bot"},
    ])
    assert chain({"kind": "click", "user_id": "u1"}) == {"user": "u1"}
    assert chain({"kind": "view", "user_id": "u1"}) is None
    assert chain({"kind": "click", "user_id": "bot"}) is None
    assert OperatorChain([])({"a": 1}) == {"a": 1}
