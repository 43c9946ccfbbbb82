"""Single-case evaluation: ``Decimal`` arithmetic and a full explanation tree.

The interpreter walks the AST the loader built and type-checked. Each variable is computed at
most once per case (memoised with its explanation node); ``if``, ``and`` and ``or`` evaluate
only the branch they need, so a value that does not exist in a branch not taken (a parameter not
yet in force, a table without a row for this case) is not an error. Conditions of a
``conditions`` variable are all evaluated, so a denial lists every unmet one. The bulk compiler
(``bulk``) mirrors these rules column-wise, which the differential test checks.

Numbers follow the language's semantics (``expressions.TOLERANCE``): comparisons, ``floor``,
``ceil`` and ``round`` snap values within 1e-9, the same as bulk's float64, so both modes agree.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

from pilar.rules.errors import (
    ConflictError,
    DivisionByZeroError,
    MissingInputError,
    NoValueError,
)
from pilar.rules.explanation import Node, Result, Value
from pilar.rules.expressions import (
    TOLERANCE,
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
    walk,
)
from pilar.rules.loader import Variable
from pilar.rules.parameters import ParameterValue, coerce_value, prepare_overrides

if TYPE_CHECKING:
    from pilar.rules.package import Package
    from pilar.rules.tables import Row

# 28 significant digits, as the spec says; an invalid operation or an overflow is a bug to
# surface, and division by zero is caught before it reaches the context.
CONTEXT = decimal.Context(
    prec=28,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
HALF = Decimal("0.5")
RELATIVE_SNAP = Decimal("1e-12")
EVALUATION_DATE_LABEL = {"es": "Fecha de evaluación", "en": "Evaluation date"}


def snap(value: Decimal) -> Decimal:
    """How far ``floor``, ``ceil`` and ``round`` look past a value: 1e-9 plus 1e-12 of it.

    float64 carries about 16 significant digits, so an amount in the millions computed in bulk
    can be off by more than 1e-9 absolute; the relative part covers that, and both modes use
    the same rule so that they round the same way.
    """
    return TOLERANCE + abs(value) * RELATIVE_SNAP


def round_half_up(value: Decimal, places: int) -> Decimal:
    scaled = abs(value).scaleb(places)
    whole = (scaled + HALF + snap(scaled)).to_integral_value(rounding=ROUND_FLOOR)
    result = whole.scaleb(-places)
    return -result if value < 0 and whole != 0 else result


def floor(value: Decimal) -> Decimal:
    return (value + snap(value)).to_integral_value(rounding=ROUND_FLOOR)


def ceil(value: Decimal) -> Decimal:
    return (value - snap(value)).to_integral_value(rounding=ROUND_CEILING)


def years_between(start: datetime.date, end: datetime.date) -> Decimal:
    """Whole years from ``start`` to ``end``, as an age is counted (a birthday on 29 February
    is reached on 1 March in a common year)."""
    years = end.year - start.year
    if (end.month, end.day) < (start.month, start.day):
        years -= 1
    return Decimal(years)


def compare(operator: str, left: Any, right: Any, type_name: str | None) -> bool:
    if type_name == "number":
        difference = left - right
        if operator == "<":
            return bool(difference < -TOLERANCE)
        if operator == "<=":
            return bool(difference <= TOLERANCE)
        if operator == ">":
            return bool(difference > TOLERANCE)
        if operator == ">=":
            return bool(difference >= -TOLERANCE)
        if operator == "==":
            return bool(abs(difference) <= TOLERANCE)
        return bool(abs(difference) > TOLERANCE)
    if operator == "==":
        return bool(left == right)
    if operator == "!=":
        return bool(left != right)
    if operator == "<":
        return bool(left < right)
    if operator == "<=":
        return bool(left <= right)
    if operator == ">":
        return bool(left > right)
    return bool(left >= right)


class _Scope:
    """What one variable's expressions are evaluated in: its parameter date, the names used."""

    __slots__ = ("date", "used", "variable")

    def __init__(self, variable: Variable, date: datetime.date) -> None:
        self.variable = variable
        self.date = date
        self.used: dict[str, Node] = {}


class _Run:
    """One evaluation of one case: memoised values and nodes."""

    def __init__(
        self,
        package: Package,
        inputs: Mapping[str, Value],
        on: datetime.date,
        known_at: datetime.date,
        overrides: Mapping[str, Sequence[ParameterValue]],
    ) -> None:
        self.package = package
        self.inputs = inputs
        self.on = on
        self.known_at = known_at
        self.overrides = overrides
        self.results: dict[str, tuple[Value, Node]] = {}
        self.parameter_nodes: dict[tuple[str, datetime.date], Node] = {}
        self.table_rows: dict[str, tuple[Row, tuple[Node, ...]]] = {}
        self.table_nodes: dict[str, Node] = {}
        self.period_dates = {
            "day": on,
            "month": on.replace(day=1),
            "year": on.replace(month=1, day=1),
        }
        self.evaluation_date = Node(
            "evaluation_date", "builtin", "date", on, label=EVALUATION_DATE_LABEL
        )

    # ---- variables

    def variable(self, name: str) -> tuple[Value, Node]:
        found = self.results.get(name)
        if found is not None:
            return found
        variable = self.package.variables[name]
        kind = variable.kind
        if kind == "input":
            value = self.inputs[name]
            node = Node(
                name,
                "input",
                variable.type,
                value,
                unit=variable.unit,
                label=variable.label,
                reference=variable.reference,
            )
        else:
            scope = _Scope(variable, self.period_dates[variable.period])
            if kind == "formula":
                assert variable.formula is not None
                value = self.eval(variable.formula.root, scope)
                node = Node(
                    name,
                    "formula",
                    variable.type,
                    value,
                    unit=variable.unit,
                    label=variable.label,
                    reference=variable.reference,
                    formula=variable.formula.text,
                    children=tuple(scope.used.values()),
                )
            elif kind == "conditions":
                value, node = self.conditions(variable, scope)
            else:
                value, node = self.cases(variable, scope)
        self.results[name] = (value, node)
        return value, node

    def conditions(self, variable: Variable, scope: _Scope) -> tuple[bool, Node]:
        records = []
        holds_all = True
        for condition in variable.conditions:
            root = condition.test.root
            record: dict[str, Any] = {
                "test": condition.test.text,
                "reference": condition.reference,
                "label": condition.label,
                "left": None,
                "operator": None,
                "right": None,
                "type": None,
                "left_name": None,
                "right_name": None,
            }
            if type(root) is Compare:
                left = self.eval(root.left, scope)
                right = self.eval(root.right, scope)
                holds = compare(root.operator, left, right, root.left.type)
                record.update(
                    left=left,
                    operator=root.operator,
                    right=right,
                    type=root.left.type,
                    left_name=root.left.name if type(root.left) is Name else None,
                    right_name=root.right.name if type(root.right) is Name else None,
                )
            else:
                holds = bool(self.eval(root, scope))
            record["holds"] = holds
            holds_all = holds_all and holds
            records.append(record)
        node = Node(
            variable.name,
            "conditions",
            "bool",
            holds_all,
            unit=variable.unit,
            label=variable.label,
            reference=variable.reference,
            conditions=tuple(records),
            children=tuple(scope.used.values()),
        )
        return holds_all, node

    def cases(self, variable: Variable, scope: _Scope) -> tuple[Value, Node]:
        # Every `when` is evaluated, in order, before any value: which cases apply is decided
        # first (a conflict must be seen), and the bulk mode computes them all the same way.
        applying = [
            case for case in variable.cases if case.when is None or self.eval(case.when.root, scope)
        ]
        if not applying:
            raise NoValueError(
                {"name": variable.name, "date": self.on.isoformat()},
                reference=variable.reference,
            )
        top = max(case.priority for case in applying)
        winners = [case for case in applying if case.priority == top]
        if len(winners) > 1:
            references = ", ".join(case.reference for case in winners)
            raise ConflictError(
                {"name": variable.name, "variable": variable.name, "references": references},
                reference=references,
            )
        case = winners[0]
        value = self.eval(case.value.root, scope)
        node = Node(
            variable.name,
            "cases",
            variable.type,
            value,
            unit=variable.unit,
            label=variable.label,
            reference=variable.reference,
            formula=case.value.text,
            case={
                "priority": case.priority,
                "when": case.when.text if case.when is not None else None,
                "reference": case.reference,
            },
            children=tuple(scope.used.values()),
        )
        return value, node

    # ---- names

    def name(self, node: Name, scope: _Scope) -> Value:
        kind = node.kind
        if kind == "variable":
            value, explanation = self.variable(node.name)
            scope.used.setdefault(node.name, explanation)
            return value
        if kind == "parameter":
            explanation = self.parameter(node.name, scope.date)
            scope.used.setdefault(node.name, explanation)
            assert explanation.value is not None
            return explanation.value
        if kind == "table":
            explanation = self.table_output(node)
            scope.used.setdefault(node.name, explanation)
            assert explanation.value is not None
            return explanation.value
        scope.used.setdefault(node.name, self.evaluation_date)
        return self.on

    def parameter(self, name: str, date: datetime.date) -> Node:
        key = (name, date)
        found = self.parameter_nodes.get(key)
        if found is not None:
            return found
        parameter = self.package.parameters[name]
        lookup = parameter.lookup(date, self.known_at, self.overrides.get(name, ()))
        if lookup is None:
            raise NoValueError(
                {
                    "name": name,
                    "date": date.isoformat(),
                    "known_at": self.known_at.isoformat(),
                },
                location=parameter.location,
                reference=parameter.reference,
            )
        entry = lookup.entry
        node = Node(
            name,
            "parameter",
            parameter.type,
            entry.value,  # type: ignore[arg-type]
            unit=parameter.unit,
            label=parameter.label,
            reference=parameter.reference,
            parameter={
                "valid_from": entry.valid_from,
                "valid_until": lookup.valid_until,
                "recorded": entry.known_from,
                "source": entry.source,
                "needs_verification": entry.needs_verification,
            },
        )
        self.parameter_nodes[key] = node
        return node

    def table_output(self, node: Name) -> Node:
        found = self.table_nodes.get(node.name)
        if found is not None:
            return found
        assert node.table is not None
        assert node.output is not None
        table = self.package.tables[node.table]
        matched = self.table_rows.get(table.name)
        if matched is None:
            values: dict[str, Value] = {}
            input_nodes = []
            for input_name in table.inputs:
                value, input_node = self.variable(input_name)
                values[input_name] = value
                input_nodes.append(input_node)
            row = table.match(values)
            if row is None:
                raise NoValueError(
                    {"name": table.name, "date": self.on.isoformat()},
                    location=table.location,
                    reference=table.reference,
                )
            matched = (row, tuple(input_nodes))
            self.table_rows[table.name] = matched
        row, children = matched
        output = table.outputs[node.output]
        explanation = Node(
            node.name,
            "table",
            output.type,
            row.then[node.output],
            unit=output.unit,
            label=output.label or table.label,
            reference=table.reference,
            table={
                "name": table.name,
                "row": row.number,
                "line": row.line,
                "when": row.when,
                "source": table.source,
                "needs_verification": table.needs_verification,
            },
            children=children,
        )
        self.table_nodes[node.name] = explanation
        return explanation

    # ---- expressions

    def eval(self, node: Expr, scope: _Scope) -> Any:
        return _DISPATCH[type(node)](self, node, scope)

    def literal(self, node: Literal, scope: _Scope) -> Any:
        return node.value

    def binary(self, node: Binary, scope: _Scope) -> Decimal:
        left = self.eval(node.left, scope)
        right = self.eval(node.right, scope)
        operator = node.operator
        if operator == "+":
            return left + right
        if operator == "-":
            return left - right
        if operator == "*":
            return left * right
        if abs(right) <= TOLERANCE:
            variable = scope.variable
            raise DivisionByZeroError(
                {"name": variable.name, "expression": _expression_text(variable, node)},
                location=variable.location,
                reference=variable.reference,
            )
        return left / right

    def compare(self, node: Compare, scope: _Scope) -> bool:
        left = self.eval(node.left, scope)
        right = self.eval(node.right, scope)
        return compare(node.operator, left, right, node.left.type)

    def logical(self, node: Logical, scope: _Scope) -> bool:
        if node.operator == "and":
            return all(self.eval(operand, scope) for operand in node.operands)
        return any(self.eval(operand, scope) for operand in node.operands)

    def negation(self, node: Not, scope: _Scope) -> bool:
        return not self.eval(node.operand, scope)

    def minus(self, node: Unary, scope: _Scope) -> Decimal:
        return -self.eval(node.operand, scope)

    def conditional(self, node: If, scope: _Scope) -> Any:
        if self.eval(node.condition, scope):
            return self.eval(node.then, scope)
        return self.eval(node.otherwise, scope)

    def call(self, node: Call, scope: _Scope) -> Any:
        function = node.function
        if function == "round":
            places = node.arguments[1]
            assert isinstance(places, Literal)
            return round_half_up(self.eval(node.arguments[0], scope), int(places.value))  # type: ignore[arg-type]
        values = [self.eval(argument, scope) for argument in node.arguments]
        if function == "min":
            return min(values)
        if function == "max":
            return max(values)
        if function == "floor":
            return floor(values[0])
        if function == "ceil":
            return ceil(values[0])
        if function == "abs":
            return abs(values[0])
        if function == "year":
            return Decimal(values[0].year)
        if function == "years_between":
            return years_between(values[0], values[1])
        raise AssertionError(f"unknown function {function}")


def _expression_text(variable: Variable, node: Expr) -> str:
    """The source text of the variable's expression containing ``node`` (for error messages)."""
    for expression in variable.expressions():
        if any(candidate is node for candidate in walk(expression.root)):
            return expression.text
    return ""


_DISPATCH: dict[type, Callable[[_Run, Any, _Scope], Any]] = {
    Literal: _Run.literal,
    Name: _Run.name,
    Binary: _Run.binary,
    Compare: _Run.compare,
    Logical: _Run.logical,
    Not: _Run.negation,
    Unary: _Run.minus,
    If: _Run.conditional,
    Call: _Run.call,
}


def prepare_inputs(
    package: Package, inputs: Mapping[str, object], outputs: Sequence[str]
) -> dict[str, Value]:
    """The inputs ``outputs`` need, converted to the engine's types.

    Raises ``MissingInputError`` listing every missing required input (with its label) before
    anything is evaluated: a claim is never decided on incomplete inputs. Inputs the outputs do
    not need are ignored, so a caller may pass a person's whole record.
    """
    prepared: dict[str, Value] = {}
    missing = []
    for name in package.required_inputs(outputs):
        variable = package.variables[name]
        raw = inputs.get(name)
        if raw is None:
            if variable.optional:
                assert variable.default is not None
                prepared[name] = variable.default
            else:
                missing.append({"name": name, "label": dict(variable.label)})
            continue
        prepared[name] = coerce_value(raw, variable.type, name, variable.label)
    if missing:
        raise MissingInputError({"inputs": missing})
    return prepared


def check_date(value: object, what: str) -> datetime.date:
    if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
        raise TypeError(f"{what} must be a datetime.date, not {value!r}")
    return value


def evaluate(
    package: Package,
    inputs: Mapping[str, object],
    *,
    on: datetime.date,
    known_at: datetime.date | None = None,
    outputs: Sequence[str] | None = None,
    overrides: Mapping[str, Iterable[ParameterValue]] | None = None,
) -> Result:
    """Evaluate one case on date ``on`` with the law as known on ``known_at`` (default ``on``).

    ``outputs`` defaults to every benefit's eligibility and amount. When a benefit's
    eligibility and amount are both requested, the amount is evaluated only if the eligibility
    holds (``Package.amount_gates``); otherwise it is absent from ``values`` and ``explanation``.
    Raises ``MissingInputError``, ``InputTypeError``, ``UnknownNameError`` (an unknown output or
    override) before evaluating, and ``NoValueError``, ``ConflictError``,
    ``DivisionByZeroError`` while evaluating.
    """
    on = check_date(on, "on")
    known_at = check_date(known_at, "known_at") if known_at is not None else on
    chosen = package.check_outputs(outputs)
    prepared_overrides = prepare_overrides(overrides, package.parameters)
    prepared = prepare_inputs(package, inputs, chosen)
    gates = package.amount_gates(chosen)
    with decimal.localcontext(CONTEXT):
        run = _Run(package, prepared, on, known_at, prepared_overrides)
        for name in package.evaluation_order(chosen):
            gate = gates.get(name)
            if gate is not None and run.results[gate][0] is not True:
                continue
            run.variable(name)
    values = {name: run.results[name][0] for name in chosen if name in run.results}
    explanation = tuple(run.results[name][1] for name in chosen if name in run.results)
    return Result(
        package=package.name,
        version=package.version,
        content_hash=package.content_hash,
        on=on,
        known_at=known_at,
        values=values,
        explanation=explanation,
        benefits=package.benefits,
        title=package.title,
    )
