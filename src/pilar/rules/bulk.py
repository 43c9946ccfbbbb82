"""Bulk evaluation: the same formulas compiled to Polars column expressions.

The plan is compiled once per call: every variable and table the outputs need becomes a column
expression, grouped by dependency level, so a chunk of rows is evaluated with one
``with_columns`` per level. Python loops run over variables, table rows and parameter entries,
never over data rows.

Errors follow the single-case semantics row by row. Next to each value column that can fail
there is an error column (null, or ``"<code>:<name>"``), combined exactly as the interpreter
would meet the failure: left operand before right, only the branch an ``if`` takes, only the
operands ``and``/``or`` would evaluate, every condition, every case's ``when`` before the chosen
value. A row whose outputs meet an error has null outputs and the first error in ``_error``.

Numbers are float64. Comparisons, ``floor``, ``ceil`` and ``round`` snap to the language's
tolerance (``expressions.TOLERANCE``), so the result agrees with the ``Decimal`` mode to the
centavo for amounts with at most six decimals (``tests/test_differential.py``).
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

from pilar.rules.errors import InputTypeError, MissingInputError, UnknownNameError
from pilar.rules.evaluation import check_date
from pilar.rules.explanation import TypeName, Value
from pilar.rules.expressions import (
    TOLERANCE_FLOAT,
    Binary,
    Call,
    Compare,
    Expr,
    If,
    Literal,
    Logical,
    Name,
    Not,
    Unary,
)
from pilar.rules.loader import Variable
from pilar.rules.parameters import ParameterValue, prepare_overrides
from pilar.rules.tables import AnyCell, BoolCell, Cell, Interval, Table, TextSet

if TYPE_CHECKING:
    from pilar.rules.package import Package

DTYPES: dict[str, pl.DataType] = {
    "number": pl.Float64(),
    "bool": pl.Boolean(),
    "date": pl.Date(),
    "text": pl.String(),
}
RELATIVE_SNAP = 1e-12
ERROR_COLUMN = "_error"
_ON = "__on"
_KNOWN = "__known"

Compiled = tuple[pl.Expr, pl.Expr | None]
"""A value expression and its error expression (None: this expression cannot fail)."""


def _value_column(name: str) -> str:
    return f"__v_{name}"


def _error_column(name: str) -> str:
    return f"__e_{name}"


def _literal(value: Value | None, type_name: TypeName) -> pl.Expr:
    if isinstance(value, Decimal):
        return pl.lit(float(value), dtype=pl.Float64)
    return pl.lit(value, dtype=DTYPES[type_name])


def _first_error(*errors: pl.Expr | None) -> pl.Expr | None:
    present = [error for error in errors if error is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return pl.coalesce(present)


def _only_when(condition: pl.Expr, error: pl.Expr | None) -> pl.Expr | None:
    """``error`` where ``condition`` holds (the interpreter reaches it only then), else null."""
    if error is None:
        return None
    return pl.when(condition).then(error).otherwise(pl.lit(None, dtype=pl.String))


def _error_literal(code: str, name: str) -> pl.Expr:
    return pl.lit(f"{code}:{name}", dtype=pl.String)


def _snap(value: pl.Expr) -> pl.Expr:
    # The same rule as evaluation.snap: 1e-9 plus 1e-12 of the value.
    return TOLERANCE_FLOAT + value.abs() * RELATIVE_SNAP


def compare(operator: str, left: pl.Expr, right: pl.Expr, type_name: TypeName | None) -> pl.Expr:
    if type_name == "number":
        difference = left - right
        if operator == "<":
            return difference < -TOLERANCE_FLOAT
        if operator == "<=":
            return difference <= TOLERANCE_FLOAT
        if operator == ">":
            return difference > TOLERANCE_FLOAT
        if operator == ">=":
            return difference >= -TOLERANCE_FLOAT
        if operator == "==":
            return difference.abs() <= TOLERANCE_FLOAT
        return difference.abs() > TOLERANCE_FLOAT
    if operator == "==":
        return left == right
    if operator == "!=":
        return left != right
    if operator == "<":
        return left < right
    if operator == "<=":
        return left <= right
    if operator == ">":
        return left > right
    return left >= right


def round_half_up(value: pl.Expr, places: int) -> pl.Expr:
    scale = 10.0**places
    scaled = value.abs() * scale
    whole = (scaled + 0.5 + _snap(scaled)).floor()
    return pl.when(value < 0).then(-whole).otherwise(whole) / scale


def years_between(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    before_birthday = (end.dt.month().cast(pl.Int32) * 100 + end.dt.day().cast(pl.Int32)) < (
        start.dt.month().cast(pl.Int32) * 100 + start.dt.day().cast(pl.Int32)
    )
    years = (
        end.dt.year().cast(pl.Int32)
        - start.dt.year().cast(pl.Int32)
        - before_birthday.cast(pl.Int32)
    )
    return years.cast(pl.Float64)


def _cell_condition(cell: Cell, column: pl.Expr, type_name: TypeName) -> pl.Expr | None:
    """The condition a table cell puts on its input column (None: any value)."""
    if isinstance(cell, AnyCell):
        return None
    if isinstance(cell, BoolCell):
        return column if cell.value else ~column
    if isinstance(cell, TextSet):
        values = sorted(cell.values)
        return column == values[0] if len(values) == 1 else column.is_in(values)
    assert isinstance(cell, Interval)
    parts = []
    if cell.low is not None:
        low = _literal(cell.low, type_name)
        parts.append(compare(">=" if cell.low_closed else ">", column, low, type_name))
    if cell.high is not None:
        high = _literal(cell.high, type_name)
        parts.append(compare("<=" if cell.high_closed else "<", column, high, type_name))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else parts[0] & parts[1]


@dataclass(frozen=True)
class _Scope:
    variable: Variable
    date: pl.Expr  # the parameter lookup date of the variable's period


class _Compiler:
    """Compiles the variables and tables the outputs need into column expressions."""

    def __init__(
        self,
        package: Package,
        *,
        on: datetime.date | None,
        known_at: datetime.date | None,
        per_row: bool,
        overrides: Mapping[str, Sequence[ParameterValue]],
    ) -> None:
        self.package = package
        self.on = on
        self.known_at = known_at
        self.per_row = per_row
        self.overrides = overrides
        self.can_fail: dict[str, bool] = {}
        # Per-row parameter lookups, computed before any variable: (name, period) → columns.
        self.parameter_columns: dict[tuple[str, str], tuple[str, pl.Expr]] = {}

    # ---- names

    def read(self, name: str) -> Compiled:
        """The value and error columns of a computed variable or table input."""
        error = pl.col(_error_column(name)) if self.can_fail.get(name) else None
        return pl.col(_value_column(name)), error

    def period_date(self, period: str) -> pl.Expr:
        on = pl.col(_ON)
        if period == "month":
            return on.dt.month_start()
        if period == "year":
            return pl.date(on.dt.year(), 1, 1)
        return on

    def parameter(self, name: str, period: str) -> Compiled:
        parameter = self.package.parameters[name]
        extra = self.overrides.get(name, ())
        error = _error_literal("no_value", name)
        if not self.per_row:
            assert self.on is not None
            assert self.known_at is not None
            lookup_date = {
                "day": self.on,
                "month": self.on.replace(day=1),
                "year": self.on.replace(month=1, day=1),
            }[period]
            found = parameter.lookup(lookup_date, self.known_at, extra)
            if found is None:
                return _literal(None, parameter.type), error
            return _literal(found.entry.value, parameter.type), None  # type: ignore[arg-type]
        key = (name, period)
        if key not in self.parameter_columns:
            column = f"__p_{name}_{period}"
            date = self.period_date(period)
            known = pl.col(_KNOWN)
            # The greatest (from, recorded, position) entry with from <= D and recorded <= K:
            # test entries from the greatest down, so the first that applies wins.
            chain: Any = None
            for entry in reversed(parameter.ordered_entries(extra)):
                applies = (date >= pl.lit(entry.valid_from)) & (known >= pl.lit(entry.known_from))
                value = _literal(entry.value, parameter.type)  # type: ignore[arg-type]
                chain = (
                    pl.when(applies).then(value)
                    if chain is None
                    else chain.when(applies).then(value)
                )
            expression = chain.otherwise(_literal(None, parameter.type))
            self.parameter_columns[key] = (column, expression.alias(column))
        column = self.parameter_columns[key][0]
        return pl.col(column), _only_when(pl.col(column).is_null(), error)

    # ---- expressions

    def expression(self, node: Expr, scope: _Scope) -> Compiled:
        if isinstance(node, Literal):
            assert node.type is not None
            return _literal(node.value, node.type), None
        if isinstance(node, Name):
            return self.name(node, scope)
        if isinstance(node, Binary):
            left, left_error = self.expression(node.left, scope)
            right, right_error = self.expression(node.right, scope)
            if node.operator == "+":
                return left + right, _first_error(left_error, right_error)
            if node.operator == "-":
                return left - right, _first_error(left_error, right_error)
            if node.operator == "*":
                return left * right, _first_error(left_error, right_error)
            by_zero = _only_when(
                right.abs() <= TOLERANCE_FLOAT,
                _error_literal("division_by_zero", scope.variable.name),
            )
            return left / right, _first_error(left_error, right_error, by_zero)
        if isinstance(node, Compare):
            left, left_error = self.expression(node.left, scope)
            right, right_error = self.expression(node.right, scope)
            return (
                compare(node.operator, left, right, node.left.type),
                _first_error(left_error, right_error),
            )
        if isinstance(node, Logical):
            return self.logical(node, scope)
        if isinstance(node, Not):
            operand, error = self.expression(node.operand, scope)
            return ~operand, error
        if isinstance(node, Unary):
            operand, error = self.expression(node.operand, scope)
            return -operand, error
        if isinstance(node, If):
            condition, condition_error = self.expression(node.condition, scope)
            then, then_error = self.expression(node.then, scope)
            otherwise, otherwise_error = self.expression(node.otherwise, scope)
            branch_error = None
            if then_error is not None or otherwise_error is not None:
                none = pl.lit(None, dtype=pl.String)
                branch_error = (
                    pl.when(condition)
                    .then(then_error if then_error is not None else none)
                    .otherwise(otherwise_error if otherwise_error is not None else none)
                )
            return (
                pl.when(condition).then(then).otherwise(otherwise),
                _first_error(condition_error, branch_error),
            )
        if isinstance(node, Call):
            return self.call(node, scope)
        raise AssertionError(f"unknown node {node!r}")

    def name(self, node: Name, scope: _Scope) -> Compiled:
        if node.kind == "variable":
            return self.read(node.name)
        if node.kind == "parameter":
            return self.parameter(node.name, scope.variable.period)
        if node.kind == "table":
            assert node.table is not None
            assert node.output is not None
            table = self.package.tables[node.table]
            output = table.outputs[node.output]
            row, error = self.read(table.name)
            value = row.replace_strict(
                [row_.number for row_ in table.rows],
                [_python(row_.then[node.output]) for row_ in table.rows],
                default=None,
                return_dtype=DTYPES[output.type],
            )
            return value, error
        return pl.col(_ON), None

    def logical(self, node: Logical, scope: _Scope) -> Compiled:
        compiled = [self.expression(operand, scope) for operand in node.operands]
        value = compiled[0][0]
        error = compiled[0][1]
        reached = value
        for operand, operand_error in compiled[1:]:
            # The interpreter evaluates the next operand only while the result is undecided.
            gate = reached if node.operator == "and" else ~reached
            error = _first_error(error, _only_when(gate, operand_error))
            value = value & operand if node.operator == "and" else value | operand
            reached = value
        return value, error

    def call(self, node: Call, scope: _Scope) -> Compiled:
        function = node.function
        if function == "round":
            places = node.arguments[1]
            assert isinstance(places, Literal)
            assert isinstance(places.value, Decimal)
            value, error = self.expression(node.arguments[0], scope)
            return round_half_up(value, int(places.value)), error
        compiled = [self.expression(argument, scope) for argument in node.arguments]
        values = [value for value, _ in compiled]
        error = _first_error(*(error for _, error in compiled))
        if function == "min":
            return (pl.min_horizontal(values) if len(values) > 1 else values[0]), error
        if function == "max":
            return (pl.max_horizontal(values) if len(values) > 1 else values[0]), error
        if function == "floor":
            return (values[0] + _snap(values[0])).floor(), error
        if function == "ceil":
            return (values[0] - _snap(values[0])).ceil(), error
        if function == "abs":
            return values[0].abs(), error
        if function == "year":
            return values[0].dt.year().cast(pl.Float64), error
        if function == "years_between":
            return years_between(values[0], values[1]), error
        raise AssertionError(f"unknown function {function}")

    # ---- variables and tables

    def variable(self, variable: Variable) -> Compiled:
        scope = _Scope(variable, self.period_date(variable.period))
        if variable.kind == "formula":
            assert variable.formula is not None
            return self.expression(variable.formula.root, scope)
        if variable.kind == "conditions":
            value: pl.Expr | None = None
            errors = []
            for condition in variable.conditions:
                holds, error = self.expression(condition.test.root, scope)
                value = holds if value is None else value & holds
                errors.append(error)
            assert value is not None
            return value, _first_error(*errors)
        return self.cases(variable, scope)

    def cases(self, variable: Variable, scope: _Scope) -> Compiled:
        when_errors: list[pl.Expr | None] = []
        by_priority: dict[int, list[tuple[pl.Expr, pl.Expr, pl.Expr | None]]] = {}
        for case in variable.cases:
            if case.when is None:
                applies = pl.lit(True)
            else:
                applies, when_error = self.expression(case.when.root, scope)
                applies = applies.fill_null(False)
                when_errors.append(when_error)
            value, value_error = self.expression(case.value.root, scope)
            by_priority.setdefault(case.priority, []).append((applies, value, value_error))
        none_text = pl.lit(None, dtype=pl.String)
        chosen: Any = None
        chosen_error: Any = None
        selection: Any = None
        for priority in sorted(by_priority, reverse=True):
            cases = by_priority[priority]
            count = pl.sum_horizontal([applies.cast(pl.Int32) for applies, _, _ in cases])
            pick: Any = None
            pick_error: Any = None
            for applies, value, value_error in cases:
                pick = (
                    pl.when(applies).then(value) if pick is None else pick.when(applies).then(value)
                )
                error = value_error if value_error is not None else none_text
                pick_error = (
                    pl.when(applies).then(error)
                    if pick_error is None
                    else pick_error.when(applies).then(error)
                )
            pick = pick.otherwise(_literal(None, variable.type))
            pick_error = pick_error.otherwise(none_text)
            found = count >= 1
            chosen = pl.when(found).then(pick) if chosen is None else chosen.when(found).then(pick)
            chosen_error = (
                pl.when(found).then(pick_error)
                if chosen_error is None
                else chosen_error.when(found).then(pick_error)
            )
            conflict = (
                pl.when(count >= 2)
                .then(_error_literal("conflict", variable.name))
                .otherwise(none_text)
            )
            selection = (
                pl.when(found).then(conflict)
                if selection is None
                else selection.when(found).then(conflict)
            )
        value = chosen.otherwise(_literal(None, variable.type))
        selection_error = selection.otherwise(_error_literal("no_value", variable.name))
        return value, _first_error(*when_errors, selection_error, chosen_error.otherwise(none_text))

    def table(self, table: Table) -> Compiled:
        errors = [self.read(input_name)[1] for input_name in table.inputs]
        row_number = _interval_lookup(table)
        if row_number is None:
            row_number = self._row_chain(table)
        no_row = _only_when(row_number.is_null(), _error_literal("no_value", table.name))
        return row_number, _first_error(*errors, no_row)

    def _row_chain(self, table: Table) -> pl.Expr:
        """The general lookup: one condition per row, the first row that holds."""
        chain: Any = None
        for row in table.rows:
            conditions = []
            for input_name in table.inputs:
                condition = _cell_condition(
                    row.cells[input_name],
                    pl.col(_value_column(input_name)),
                    table.input_types[input_name],
                )
                if condition is not None:
                    conditions.append(condition)
            matches = pl.all_horizontal(conditions) if conditions else pl.lit(True)
            number = pl.lit(row.number, dtype=pl.Int32)
            chain = (
                pl.when(matches).then(number) if chain is None else chain.when(matches).then(number)
            )
        return chain.otherwise(pl.lit(None, dtype=pl.Int32))


def _interval_lookup(table: Table) -> pl.Expr | None:
    """A binary search for the common shape of a legal table: one number input, rows that are
    adjacent intervals all closed on the same side (the art. 167 salary groups, age bands).

    A chain of one condition per row costs two comparisons per row and value; the search costs
    one pass. The comparisons keep the engine's tolerance: a value within it of a bound falls on
    the closed side, as ``compare`` decides. None when the table has another shape (the general
    chain then applies)."""
    if table.hit_policy != "unique" or len(table.inputs) != 1:
        return None
    (name,) = table.inputs
    if table.input_types[name] != "number":
        return None
    cells = [row.cells[name] for row in table.rows]
    if not all(isinstance(cell, Interval) for cell in cells):
        return None
    intervals = [cell for cell in cells if isinstance(cell, Interval)]
    order = sorted(
        range(len(intervals)),
        key=lambda index: (intervals[index].low is not None, intervals[index].low or 0),
    )
    ordered = [intervals[index] for index in order]
    right_closed = (
        not ordered[0].low_closed if ordered[0].low is not None else ordered[0].high_closed
    )
    for previous, following in itertools.pairwise(ordered):
        if previous.high is None or following.low is None or previous.high != following.low:
            return None
        if previous.high_closed != right_closed or following.low_closed == right_closed:
            return None
    if ordered[-1].high is not None and ordered[-1].high_closed != right_closed:
        return None
    column = pl.col(_value_column(name))
    breaks = pl.lit(pl.Series([float(cell.high) for cell in ordered[:-1]], dtype=pl.Float64))  # type: ignore[arg-type]
    if right_closed:
        # (a, b]: the rows whose upper bound lies below the value, less the tolerance.
        bucket = breaks.search_sorted(column - TOLERANCE_FLOAT, side="left")
    else:
        # [a, b): the rows whose upper bound is at or below the value, plus the tolerance.
        bucket = breaks.search_sorted(column + TOLERANCE_FLOAT, side="right")
    numbers = [table.rows[index].number for index in order]
    row_number = bucket.replace_strict(
        list(range(len(numbers))), numbers, default=None, return_dtype=pl.Int32
    )
    inside = column.is_not_null()
    first, last = ordered[0], ordered[-1]
    if first.low is not None:
        low = _literal(first.low, "number")
        inside = inside & compare(">=" if first.low_closed else ">", column, low, "number")
    if last.high is not None:
        high = _literal(last.high, "number")
        inside = inside & compare("<=" if last.high_closed else "<", column, high, "number")
    return pl.when(inside).then(row_number).otherwise(pl.lit(None, dtype=pl.Int32))


def _python(value: Value) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _levels(package: Package, needed: Iterable[str]) -> list[list[str]]:
    """The variables and tables to compute, grouped so each depends only on earlier groups."""
    level: dict[str, int] = {}

    def depth(name: str) -> int:
        if name in level:
            return level[name]
        variable = package.variables.get(name)
        if variable is not None and variable.input:
            level[name] = 0
            return 0
        found = 1 + max(
            (depth(dependency) for dependency in package.graph_dependencies(name)), default=0
        )
        level[name] = found
        return found

    for name in needed:
        depth(name)
    groups: dict[int, list[str]] = {}
    for name, number in level.items():
        groups.setdefault(number, []).append(name)
    return [groups[number] for number in sorted(groups)]


def _closure(package: Package, outputs: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    pending = list(outputs)
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen[current] = None
        pending.extend(package.graph_dependencies(current))
    return list(seen)


def _prepare_input(variable: Variable, frame: pl.DataFrame) -> tuple[pl.Expr, pl.Expr | None]:
    """An input column cast to the engine's type, defaulted if optional, else checked."""
    name = variable.name
    dtype = frame.schema[name]
    column = pl.col(name)
    if variable.type == "number":
        if not (dtype.is_numeric() or dtype == pl.Null):
            raise InputTypeError(
                {"name": name, "label": variable.label, "expected": "number", "got": str(dtype)}
            )
        column = column.cast(pl.Float64)
    elif variable.type == "date":
        if dtype == pl.String:
            column = column.str.to_date("%Y-%m-%d", strict=True)
        elif isinstance(dtype, pl.Datetime) or dtype in (pl.Date, pl.Null):
            column = column.cast(pl.Date)
        else:
            raise InputTypeError(
                {"name": name, "label": variable.label, "expected": "date", "got": str(dtype)}
            )
    elif variable.type == "text":
        if not (dtype in (pl.String, pl.Categorical, pl.Null) or isinstance(dtype, pl.Enum)):
            raise InputTypeError(
                {"name": name, "label": variable.label, "expected": "text", "got": str(dtype)}
            )
        column = column.cast(pl.String)
    elif dtype not in (pl.Boolean, pl.Null):
        raise InputTypeError(
            {"name": name, "label": variable.label, "expected": "bool", "got": str(dtype)}
        )
    if variable.optional:
        return column.fill_null(_literal(variable.default, variable.type)), None
    if frame.get_column(name).null_count() == 0:
        return column, None
    return column, _only_when(pl.col(name).is_null(), _error_literal("missing_input", name))


def _date_column(frame: pl.DataFrame, name: str, what: str) -> pl.Expr:
    if name not in frame.columns:
        raise UnknownNameError({"name": name, "context": f" ({what} column)"})
    dtype = frame.schema[name]
    if dtype == pl.Date:
        return pl.col(name)
    if isinstance(dtype, pl.Datetime):
        return pl.col(name).cast(pl.Date)
    if dtype == pl.String:
        return pl.col(name).str.to_date("%Y-%m-%d", strict=True)
    raise InputTypeError({"name": name, "label": None, "expected": "date", "got": str(dtype)})


def evaluate_bulk(
    package: Package,
    inputs: pl.DataFrame,
    *,
    on: datetime.date | str,
    known_at: datetime.date | str | None = None,
    outputs: Sequence[str] | None = None,
    overrides: Mapping[str, Iterable[ParameterValue]] | None = None,
    chunk_size: int = 1_000_000,
) -> pl.DataFrame:
    """Evaluate every row of ``inputs``; return the output columns plus ``_error``.

    ``on`` (and ``known_at``) is a date for every row or the name of a date column. Numbers
    come back as float64, bools, dates and texts as such. A row whose outputs meet an error
    (``no_value``, ``conflict``, ``division_by_zero``, or ``missing_input`` for a null in a
    required input column) has null outputs and ``"<code>:<name>"`` in ``_error``. A required
    input column that is absent altogether raises ``MissingInputError`` before any work.
    Rows are processed ``chunk_size`` at a time to bound memory.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    chosen = package.check_outputs(outputs)
    prepared_overrides = prepare_overrides(overrides, package.parameters)
    missing = [
        {"name": name, "label": dict(package.variables[name].label)}
        for name in package.required_inputs(chosen)
        if name not in inputs.columns and not package.variables[name].optional
    ]
    if missing:
        raise MissingInputError({"inputs": missing})

    per_row = isinstance(on, str) or isinstance(known_at, str)
    if isinstance(on, str):
        on_column = _date_column(inputs, on, "on")
    else:
        on_column = pl.lit(check_date(on, "on"), dtype=pl.Date)
    if isinstance(known_at, str):
        known_column = _date_column(inputs, known_at, "known_at")
    elif known_at is not None:
        known_column = pl.lit(check_date(known_at, "known_at"), dtype=pl.Date)
    else:
        # The law as known on each row's own evaluation date.
        known_column = on_column
    setup = [on_column.alias(_ON), known_column.alias(_KNOWN)]
    # A row without its own date cannot be evaluated: say so, rather than let every parameter
    # lookup report a missing value.
    date_errors = [
        _only_when(pl.col(column).is_null(), _error_literal("missing_input", column))
        for column in (on, known_at)
        if isinstance(column, str) and inputs.get_column(column).null_count() > 0
    ]

    # With one date for every row (and one knowledge date), parameters are looked up once
    # here and enter the plan as literals.
    fixed_on = on if isinstance(on, datetime.date) else None
    fixed_known = known_at if isinstance(known_at, datetime.date) else fixed_on
    compiler = _Compiler(
        package,
        on=fixed_on,
        known_at=None if per_row else fixed_known,
        per_row=per_row,
        overrides=prepared_overrides,
    )
    levels = _levels(package, _closure(package, chosen))
    stages: list[list[pl.Expr]] = []
    for group in levels:
        stage: list[pl.Expr] = []
        for name in group:
            variable = package.variables.get(name)
            if variable is not None and variable.input:
                if name in inputs.columns:
                    value, error = _prepare_input(variable, inputs)
                else:
                    value, error = _literal(variable.default, variable.type), None
            elif variable is not None:
                value, error = compiler.variable(variable)
            else:
                value, error = compiler.table(package.tables[name])
            stage.append(value.alias(_value_column(name)))
            if error is not None:
                compiler.can_fail[name] = True
                stage.append(error.alias(_error_column(name)))
        stages.append(stage)
    # Per-row parameter lookups were collected while compiling; they are computed right after
    # the dates, before the first level that reads them.
    parameter_stage = [expression for _, expression in compiler.parameter_columns.values()]

    gates = package.amount_gates(chosen)
    final_errors = []
    for name in package.evaluation_order(chosen):
        error = compiler.read(name)[1]
        gate = gates.get(name)
        if gate is not None:
            error = _only_when(pl.col(_value_column(gate)).fill_null(False), error)
        final_errors.append(error)
    error_expression = _first_error(*date_errors, *final_errors)
    if error_expression is None:
        error_expression = pl.lit(None, dtype=pl.String)
    ok = pl.col(ERROR_COLUMN).is_null()
    selection = []
    for name in chosen:
        value = pl.col(_value_column(name))
        gate = gates.get(name)
        if gate is not None:
            value = pl.when(pl.col(_value_column(gate))).then(value)
        selection.append(pl.when(ok).then(value).alias(name))

    results = []
    for offset in range(0, max(inputs.height, 1), chunk_size):
        chunk = inputs.slice(offset, chunk_size).lazy().with_columns(setup)
        if parameter_stage:
            chunk = chunk.with_columns(parameter_stage)
        for stage in stages:
            chunk = chunk.with_columns(stage)
        chunk = chunk.with_columns(error_expression.alias(ERROR_COLUMN))
        results.append(chunk.select([*selection, pl.col(ERROR_COLUMN)]).collect())
    result = pl.concat(results) if len(results) > 1 else results[0]
    return result
