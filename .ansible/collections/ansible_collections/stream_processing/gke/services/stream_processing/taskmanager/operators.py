"""Stateless record operators: filter on a field and map/project fields."""

from __future__ import annotations

import operator
from typing import Callable

_COMPARISONS: dict[str, Callable] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
FILTER_OPERATORS = (*_COMPARISONS, "exists", "in")

Record = dict


class FieldFilter:
    """Keeps records whose field compares true with the value; a missing field or incomparable type drops it."""

    def __init__(self, field: str, op: str, value=None):
        if op not in FILTER_OPERATORS:
            raise ValueError(f"unknown filter operator {op!r}; use one of {', '.join(FILTER_OPERATORS)}")
        self.field = field
        self.op = op
        self.value = value

    def __call__(self, record: Record) -> Record | None:
        if self.field not in record:
            return None
        if self.op == "exists":
            return record
        actual = record[self.field]
        if self.op == "in":
            return record if actual in self.value else None
        try:
            return record if _COMPARISONS[self.op](actual, self.value) else None
        except TypeError:
            return None


class FieldMapper:
    """Projects and renames: the output has exactly the mapped fields, {output_name: input_field}."""

    def __init__(self, fields: dict[str, str]):
        self.fields = dict(fields)

    def __call__(self, record: Record) -> Record | None:
        return {output: record.get(source) for output, source in self.fields.items()}


def build_operator(spec: dict) -> Callable[[Record], Record | None]:
    if spec["type"] == "filter":
        return FieldFilter(spec["field"], spec.get("op", "eq"), spec.get("value"))
    if spec["type"] == "map":
        return FieldMapper(spec["fields"])
    raise ValueError(f"{spec['type']!r} is not a stateless operator")


class OperatorChain:
    """Applies stateless operators in order; None means the record was dropped."""

    def __init__(self, specs: list[dict]):
        self.operators = [build_operator(spec) for spec in specs]

    def __call__(self, record: Record) -> Record | None:
        for apply in self.operators:
            record = apply(record)
            if record is None:
                return None
        return record
