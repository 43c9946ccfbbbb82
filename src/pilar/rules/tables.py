"""Decision tables: cell conditions, overlap detection for ``unique``, and row matching.

A cell is one of: any (``"-"`` or absent), an interval over numbers or dates (``"(a, b]"``,
``"[a, )"``, ``">= a"``, a plain value meaning ``[a, a]``), a set of texts (a value or a list),
or a bool. With the ``unique`` hit policy two rows whose cells intersect in every input could
both match some case, which is refused at load naming both rows' lines; ``first`` takes the
first matching row in order.

Overlap detection is exact (the bounds are constants); matching a number at run time uses the
language's comparison tolerance, under which ``x <= b`` and ``x > b`` remain complements, so
adjacent intervals such as ``(0, 1]`` and ``(1, 2]`` still partition the line.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pilar.rules.errors import SchemeFileError, TableOverlapError
from pilar.rules.explanation import Label, TypeName, Value
from pilar.rules.expressions import TOLERANCE
from pilar.rules.loader import (
    TYPES,
    YamlMap,
    check_keys,
    expect_choice,
    expect_description,
    expect_label,
    expect_list,
    expect_map,
    expect_name,
    expect_reference,
    expect_text,
    typed_value,
)

HIT_POLICIES = ("unique", "first")

Bound = Decimal | datetime.date


@dataclass(frozen=True)
class AnyCell:
    """Matches every value (``"-"`` or an input left out of the row)."""

    def intersects(self, other: Cell) -> bool:
        return True


@dataclass(frozen=True)
class Interval:
    """Numbers or dates between ``low`` and ``high``; None is an open end."""

    low: Bound | None
    low_closed: bool
    high: Bound | None
    high_closed: bool

    def contains(self, value: Bound) -> bool:
        tolerance: Any = TOLERANCE if isinstance(value, Decimal) else None
        if self.low is not None:
            if tolerance is None:
                if value < self.low or (value == self.low and not self.low_closed):  # type: ignore[operator]
                    return False
            else:
                difference = value - self.low  # type: ignore[operator]
                if (difference < -tolerance) if self.low_closed else (difference <= tolerance):
                    return False
        if self.high is not None:
            if tolerance is None:
                if value > self.high or (value == self.high and not self.high_closed):  # type: ignore[operator]
                    return False
            else:
                difference = value - self.high  # type: ignore[operator]
                if (difference > tolerance) if self.high_closed else (difference >= -tolerance):
                    return False
        return True

    def intersects(self, other: Cell) -> bool:
        if not isinstance(other, Interval):
            return True
        low, low_closed = _max_low(self, other)
        high, high_closed = _min_high(self, other)
        if low is None or high is None:
            return True
        if low < high:  # type: ignore[operator]
            return True
        return low == high and low_closed and high_closed

    def is_empty(self) -> bool:
        if self.low is None or self.high is None:
            return False
        if self.low > self.high:  # type: ignore[operator]
            return True
        return self.low == self.high and not (self.low_closed and self.high_closed)


def _max_low(a: Interval, b: Interval) -> tuple[Bound | None, bool]:
    if a.low is None:
        return b.low, b.low_closed
    if b.low is None:
        return a.low, a.low_closed
    if a.low > b.low:  # type: ignore[operator]
        return a.low, a.low_closed
    if b.low > a.low:  # type: ignore[operator]
        return b.low, b.low_closed
    return a.low, a.low_closed and b.low_closed


def _min_high(a: Interval, b: Interval) -> tuple[Bound | None, bool]:
    if a.high is None:
        return b.high, b.high_closed
    if b.high is None:
        return a.high, a.high_closed
    if a.high < b.high:  # type: ignore[operator]
        return a.high, a.high_closed
    if b.high < a.high:  # type: ignore[operator]
        return b.high, b.high_closed
    return a.high, a.high_closed and b.high_closed


@dataclass(frozen=True)
class TextSet:
    values: frozenset[str]

    def contains(self, value: str) -> bool:
        return value in self.values

    def intersects(self, other: Cell) -> bool:
        return not isinstance(other, TextSet) or bool(self.values & other.values)


@dataclass(frozen=True)
class BoolCell:
    value: bool

    def contains(self, value: bool) -> bool:
        return value is self.value

    def intersects(self, other: Cell) -> bool:
        return not isinstance(other, BoolCell) or other.value is self.value


Cell = AnyCell | Interval | TextSet | BoolCell

_INTERVAL = re.compile(r"^\s*([\[(])\s*([^,]*?)\s*,\s*([^,]*?)\s*([\])])\s*$")
_COMPARISON = re.compile(r"^\s*(>=|<=|>|<|==|=)\s*(.+?)\s*$")


def parse_cell(raw: Any, type_name: TypeName, where: str, what: str) -> Cell:
    """The condition a table cell states for an input of ``type_name``."""
    if raw is None or (isinstance(raw, str) and raw.strip() == "-"):
        return AnyCell()
    if type_name == "bool":
        if not isinstance(raw, bool):
            raise _cell_error(what, raw, "true, false or '-'", where)
        return BoolCell(raw)
    if type_name == "text":
        items = list(raw) if isinstance(raw, list) else [raw]
        if not items or not all(isinstance(item, str) for item in items):
            raise _cell_error(what, raw, "a text or a list of texts", where)
        return TextSet(frozenset(items))
    # number or date
    if isinstance(raw, str):
        interval = _INTERVAL.match(raw)
        if interval:
            opening, low_text, high_text, closing = interval.groups()
            low = _bound(low_text, type_name, what, where) if low_text else None
            high = _bound(high_text, type_name, what, where) if high_text else None
            if (low is None and opening == "[") or (high is None and closing == "]"):
                raise _cell_error(what, raw, "an open end written with '(' or ')'", where)
            cell = Interval(low, opening == "[", high, closing == "]")
            if cell.is_empty():
                raise _cell_error(what, raw, "a non-empty interval", where)
            return cell
        comparison = _COMPARISON.match(raw)
        if comparison:
            operator, bound_text = comparison.groups()
            bound = _bound(bound_text, type_name, what, where)
            if operator in ("=", "=="):
                return Interval(bound, True, bound, True)
            if operator.startswith(">"):
                return Interval(bound, operator == ">=", None, False)
            return Interval(None, False, bound, operator == "<=")
        value = _bound(raw, type_name, what, where)
        return Interval(value, True, value, True)
    typed = typed_value(raw, type_name, what, where)
    assert isinstance(typed, Decimal | datetime.date)
    return Interval(typed, True, typed, True)


def _bound(text: str, type_name: TypeName, what: str, where: str) -> Bound:
    try:
        if type_name == "number":
            number = Decimal(text.replace("_", ""))
            if number.is_finite():
                return number
        else:
            return datetime.date.fromisoformat(text)
    except (InvalidOperation, ValueError):
        pass
    raise _cell_error(what, text, f"a {type_name}", where)


def _cell_error(what: str, raw: Any, expected: str, where: str) -> SchemeFileError:
    return SchemeFileError(
        {"problem": f"{what}: {raw!r} is not a valid condition; expected {expected}"},
        location=where,
    )


@dataclass(frozen=True)
class TableOutput:
    name: str
    type: TypeName
    unit: str | None
    label: Label | None


@dataclass(frozen=True)
class Row:
    number: int  # 1-based, as people count rows
    line: int
    location: str
    when: Mapping[str, Any]  # the cells as written, for the explanation
    then: Mapping[str, Value]
    cells: Mapping[str, Cell] = field(default_factory=dict)


@dataclass(eq=False)
class Table:
    name: str
    reference: str
    label: Label
    hit_policy: str
    inputs: tuple[str, ...]
    outputs: dict[str, TableOutput]
    rows: tuple[Row, ...]
    location: str
    description: str | Label | None = None
    input_types: dict[str, TypeName] = field(default_factory=dict)
    # Where the rows were published, and whether they still need checking against it: a
    # table of the law is as much a published value as a parameter is.
    source: str | None = None
    needs_verification: bool = False

    def compile(self, input_types: Mapping[str, TypeName]) -> None:
        """Parse every cell against its input's type and refuse overlaps under ``unique``."""
        self.input_types = dict(input_types)
        compiled = []
        for row in self.rows:
            cells = {
                name: parse_cell(
                    row.when.get(name),
                    self.input_types[name],
                    row.location,
                    f"table {self.name}, row {row.number}, {name}",
                )
                for name in self.inputs
            }
            compiled.append(Row(row.number, row.line, row.location, row.when, row.then, cells))
        self.rows = tuple(compiled)
        if self.hit_policy == "unique":
            self._refuse_overlaps()

    def _refuse_overlaps(self) -> None:
        # Pairwise: tables in law have tens of rows, so n² checks at load cost nothing.
        for index, first in enumerate(self.rows):
            for second in self.rows[index + 1 :]:
                if all(first.cells[name].intersects(second.cells[name]) for name in self.inputs):
                    raise TableOverlapError(
                        {
                            "table": self.name,
                            "first_row": first.number,
                            "first_line": first.line,
                            "second_row": second.number,
                            "second_line": second.line,
                        },
                        location=second.location,
                        reference=self.reference,
                    )

    def match(self, values: Mapping[str, Value]) -> Row | None:
        """The row that applies to ``values`` (the first, under either policy), or None."""
        for row in self.rows:
            if all(_cell_contains(row.cells[name], values[name]) for name in self.inputs):
                return row
        return None


def _cell_contains(cell: Cell, value: Value) -> bool:
    if isinstance(cell, AnyCell):
        return True
    return cell.contains(value)  # type: ignore[arg-type]


def read_tables(document: YamlMap) -> list[Table]:
    check_keys(document, "tables.yaml", required=("tables",))
    section = expect_map(document["tables"], "tables", document.where("tables"))
    tables = []
    for name, raw in section.items():
        where = section.where(name)
        expect_name(name, "table", where)
        what = f"table {name}"
        spec = expect_map(raw, what, where)
        check_keys(
            spec,
            what,
            required=("label", "inputs", "outputs", "rows"),
            optional=("reference", "hit_policy", "description", "source", "needs_verification"),
        )
        reference = expect_reference(spec, what)
        source = spec.get("source")
        if source is not None and (not isinstance(source, str) or not source.strip()):
            raise SchemeFileError(
                {"problem": f"{what}: source must be text"}, location=spec.where("source")
            )
        needs_verification = spec.get("needs_verification", False)
        if not isinstance(needs_verification, bool):
            raise SchemeFileError(
                {"problem": f"{what}: needs_verification must be true or false"},
                location=spec.where("needs_verification"),
            )
        hit_policy = expect_choice(
            spec.get("hit_policy", "unique"),
            HIT_POLICIES,
            f"{what}: hit_policy",
            spec.where("hit_policy"),
        )
        raw_inputs = expect_list(spec["inputs"], f"{what}: inputs", spec.where("inputs"))
        if not raw_inputs:
            raise SchemeFileError(
                {"problem": f"{what} has no inputs"}, location=spec.where("inputs")
            )
        inputs = tuple(
            expect_name(item, f"{what}: input", raw_inputs.where(index))
            for index, item in enumerate(raw_inputs)
        )
        if len(set(inputs)) != len(inputs):
            raise SchemeFileError(
                {"problem": f"{what} lists an input twice"}, location=spec.where("inputs")
            )
        outputs = _read_outputs(what, spec)
        rows_list = expect_list(spec["rows"], f"{what}: rows", spec.where("rows"))
        if not rows_list:
            raise SchemeFileError({"problem": f"{what} has no rows"}, location=spec.where("rows"))
        rows = []
        for index, raw_row in enumerate(rows_list):
            row_what = f"{what}, row {index + 1}"
            row = expect_map(raw_row, row_what, rows_list.where(index))
            check_keys(row, row_what, required=("when", "then"))
            when = expect_map(row["when"], f"{row_what}: when", row.where("when"))
            for key in when:
                if key not in inputs:
                    raise SchemeFileError(
                        {"problem": f"{row_what}: {key!r} is not an input of the table"},
                        location=when.where(key),
                    )
            then_map = expect_map(row["then"], f"{row_what}: then", row.where("then"))
            check_keys(then_map, f"{row_what}: then", required=tuple(outputs))
            then = {
                output: typed_value(
                    then_map[output],
                    outputs[output].type,
                    f"{row_what}: {output}",
                    then_map.where(output),
                )
                for output in outputs
            }
            rows.append(
                Row(
                    number=index + 1,
                    line=row.line,
                    location=row.where(),
                    when={key: _cell_text(value) for key, value in when.items()},
                    then=then,
                )
            )
        tables.append(
            Table(
                name=name,
                reference=reference,
                label=expect_label(spec["label"], f"{what}: label", spec.where("label")),
                hit_policy=hit_policy,
                inputs=inputs,
                outputs=outputs,
                rows=tuple(rows),
                location=spec.where(),
                source=source,
                needs_verification=needs_verification,
                description=(
                    expect_description(
                        spec["description"], f"{what}: description", spec.where("description")
                    )
                    if "description" in spec
                    else None
                ),
            )
        )
    return tables


def _cell_text(raw: Any) -> Any:
    """A cell as JSON-able data for the explanation: numbers and dates as text."""
    if isinstance(raw, list):
        return [_cell_text(item) for item in raw]
    if isinstance(raw, bool) or raw is None:
        return raw
    if isinstance(raw, datetime.date):
        return raw.isoformat()
    return str(raw)


def _read_outputs(what: str, spec: YamlMap) -> dict[str, TableOutput]:
    section = expect_map(spec["outputs"], f"{what}: outputs", spec.where("outputs"))
    if not section:
        raise SchemeFileError({"problem": f"{what} has no outputs"}, location=spec.where("outputs"))
    outputs = {}
    for name, raw in section.items():
        where = section.where(name)
        expect_name(name, f"{what}: output", where)
        output = expect_map(raw, f"{what}: output {name}", where)
        check_keys(output, f"{what}: output {name}", required=("type",), optional=("unit", "label"))
        outputs[name] = TableOutput(
            name=name,
            type=expect_choice(
                output["type"], TYPES, f"{what}: output {name}: type", output.where("type")
            ),  # type: ignore[arg-type]
            unit=(
                expect_text(output["unit"], f"{what}: output {name}: unit", output.where("unit"))
                if "unit" in output
                else None
            ),
            label=(
                expect_label(
                    output["label"], f"{what}: output {name}: label", output.where("label")
                )
                if "label" in output
                else None
            ),
        )
    return outputs
