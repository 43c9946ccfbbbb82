"""The explanation tree and the result of a single-case evaluation.

A ``Result`` is what the benefits app stores (as JSON, through ``to_dict``) next to an award, and
re-renders later with ``render_text``; so both ``Node`` and ``Result`` round-trip through plain
JSON exactly: numbers are written as strings (a ``Decimal`` must not pass through a float) and
dates as ISO strings, and ``from_dict`` restores the Python types from each value's declared type.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Value = Decimal | bool | datetime.date | str
"""A value of one of the four types of the rules language (number, bool, date, text)."""

# A comparison read from the other side: `a <= b` is `b >= a`.
FLIPPED = {">=": "<=", ">": "<", "<=": ">=", "<": ">", "==": "==", "!=": "!="}

TypeName = Literal["number", "bool", "date", "text"]
NodeKind = Literal["input", "parameter", "formula", "table", "conditions", "cases", "builtin"]
Label = Mapping[str, str]


def encode_value(value: Value | None) -> Any:
    """A value as JSON: a number as a string (exact), a date as ISO, bool and text unchanged."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, int | float):
        # Callers hand ints to the engine; a float here would be a bug upstream, but a string of
        # its repr keeps whatever precision it had rather than failing on the way to storage.
        return str(Decimal(str(value)))
    raise TypeError(f"not a rules value: {value!r}")


def decode_value(value: Any, type_name: str | None) -> Value | None:
    """The inverse of ``encode_value`` given the value's declared type."""
    if value is None:
        return None
    if type_name == "number":
        return Decimal(str(value))
    if type_name == "date":
        return value if isinstance(value, datetime.date) else datetime.date.fromisoformat(value)
    if type_name == "bool":
        return bool(value)
    return str(value)


def _encode_mapping(data: Mapping[str, Any] | None, date_keys: Sequence[str]) -> Any:
    if data is None:
        return None
    encoded = dict(data)
    for key in date_keys:
        if isinstance(encoded.get(key), datetime.date):
            encoded[key] = encoded[key].isoformat()
    return encoded


def _decode_dates(data: Mapping[str, Any] | None, date_keys: Sequence[str]) -> Any:
    if data is None:
        return None
    decoded = dict(data)
    for key in date_keys:
        if isinstance(decoded.get(key), str):
            decoded[key] = datetime.date.fromisoformat(decoded[key])
    return decoded


_PARAMETER_DATES = ("valid_from", "valid_until", "recorded")


def _encode_condition(condition: Mapping[str, Any]) -> dict[str, Any]:
    encoded = dict(condition)
    encoded["left"] = encode_value(condition.get("left"))
    encoded["right"] = encode_value(condition.get("right"))
    if condition.get("label") is not None:
        encoded["label"] = dict(condition["label"])
    return encoded


def _decode_condition(condition: Mapping[str, Any]) -> dict[str, Any]:
    decoded = dict(condition)
    operand_type = condition.get("type")
    decoded["left"] = decode_value(condition.get("left"), operand_type)
    decoded["right"] = decode_value(condition.get("right"), operand_type)
    return decoded


@dataclass(frozen=True)
class Node:
    """One value in an explanation: what it is, where the law says so, and what it came from.

    ``parameter``, ``table``, ``conditions`` and ``case`` are filled for the matching ``kind``:

    - ``parameter``: ``{valid_from, valid_until, recorded, source, needs_verification}``
      (dates as ``datetime.date``; ``valid_until`` is None when the value is still in force);
    - ``table``: ``{name, row, line, when}``: the 1-based row that matched, its YAML line and its
      ``when`` cells as written;
    - ``conditions``: one ``{test, holds, left, operator, right, reference, label, type,
      left_name, right_name}`` per condition. When the test is a comparison, ``left`` and
      ``right`` are the values of its two sides and ``type`` their type; ``left_name`` /
      ``right_name`` name a side that is a single variable or parameter (for plain-language
      rendering). Otherwise the operands and operator are None;
    - ``case``: ``{priority, when, reference}`` of the case that applied.
    """

    name: str
    kind: NodeKind
    type: TypeName
    value: Value | None
    unit: str | None = None
    label: Label | None = None
    reference: str | None = None
    formula: str | None = None
    parameter: Mapping[str, Any] | None = None
    table: Mapping[str, Any] | None = None
    conditions: tuple[Mapping[str, Any], ...] | None = None
    case: Mapping[str, Any] | None = None
    children: tuple[Node, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The node as JSON-able data (numbers as strings, dates as ISO strings)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "type": self.type,
            "unit": self.unit,
            "value": encode_value(self.value),
            "label": dict(self.label) if self.label is not None else None,
            "reference": self.reference,
            "formula": self.formula,
            "parameter": _encode_mapping(self.parameter, _PARAMETER_DATES),
            "table": _encode_mapping(self.table, ()),
            "conditions": (
                [_encode_condition(c) for c in self.conditions]
                if self.conditions is not None
                else None
            ),
            "case": _encode_mapping(self.case, ()),
            "children": [child.to_dict() for child in self.children],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Node:
        """Rebuild a node written by ``to_dict``."""
        conditions = data.get("conditions")
        return cls(
            name=data["name"],
            kind=data["kind"],
            type=data["type"],
            unit=data.get("unit"),
            value=decode_value(data.get("value"), data["type"]),
            label=data.get("label"),
            reference=data.get("reference"),
            formula=data.get("formula"),
            parameter=_decode_dates(data.get("parameter"), _PARAMETER_DATES),
            table=data.get("table"),
            conditions=(
                tuple(_decode_condition(c) for c in conditions) if conditions is not None else None
            ),
            case=data.get("case"),
            children=tuple(cls.from_dict(child) for child in data.get("children") or ()),
        )

    def walk(self) -> list[Node]:
        """This node and every node below it, depth first, in order."""
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found


@dataclass(frozen=True)
class UnmetCondition:
    """A condition of a bool ``conditions`` variable that did not hold: why a claim is denied."""

    variable: str
    test: str
    reference: str | None
    label: Label | None
    left: Value | None = None
    operator: str | None = None
    right: Value | None = None
    left_name: str | None = None
    left_label: Label | None = None
    right_name: str | None = None
    right_label: Label | None = None
    unit: str | None = None


@dataclass(frozen=True)
class BenefitInfo:
    """What a package says a benefit is: kept in a result so it can be rendered on its own."""

    name: str
    label: Label
    eligible: str
    amount: str | None
    frequency: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": dict(self.label),
            "eligible": self.eligible,
            "amount": self.amount,
            "frequency": self.frequency,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenefitInfo:
        return cls(
            name=data["name"],
            label=data["label"],
            eligible=data["eligible"],
            amount=data.get("amount"),
            frequency=data.get("frequency"),
        )


@dataclass(frozen=True)
class Result:
    """The outcome of ``Package.evaluate``: the values asked for and how each was reached."""

    package: str
    version: str
    content_hash: str
    on: datetime.date
    known_at: datetime.date
    values: Mapping[str, Value]
    explanation: tuple[Node, ...]
    benefits: Mapping[str, BenefitInfo] = field(default_factory=dict)
    title: Label | None = None

    def node(self, name: str) -> Node | None:
        """The first node named ``name`` anywhere in the explanation (outputs first)."""
        for root in self.explanation:
            if root.name == name:
                return root
        for root in self.explanation:
            for found in root.walk():
                if found.name == name:
                    return found
        return None

    def unmet_conditions(self, variable: str) -> list[UnmetCondition]:
        """Each condition of the bool variable ``variable`` that did not hold, in declared order.

        Empty when the variable holds, or when it is not a ``conditions`` variable. Conditions
        are all evaluated (not short-circuited) so a denial lists every reason at once.
        """
        node = self.node(variable)
        if node is None:
            raise KeyError(variable)
        if node.conditions is None:
            return []
        nodes = {n.name: n for n in node.walk()}
        labels = {name: n.label for name, n in nodes.items()}
        units = {name: n.unit for name, n in nodes.items()}
        unmet: list[UnmetCondition] = []
        for condition in node.conditions:
            if condition.get("holds"):
                continue
            left_name = condition.get("left_name")
            right_name = condition.get("right_name")
            left, operator, right = (
                condition.get("left"),
                condition.get("operator"),
                condition.get("right"),
            )
            # The person's own value is the subject: `edad_minima <= edad` (a parameter or a
            # constant on the left) reads as `edad >= edad_minima`.
            if (
                operator is not None
                and right_name is not None
                and (
                    left_name is None
                    or (
                        nodes[left_name].kind == "parameter"
                        and nodes[right_name].kind != "parameter"
                    )
                )
            ):
                left_name, right_name = right_name, left_name
                left, right = right, left
                operator = FLIPPED[operator]
            unmet.append(
                UnmetCondition(
                    variable=variable,
                    test=condition["test"],
                    reference=condition.get("reference"),
                    label=condition.get("label"),
                    left=left,
                    operator=operator,
                    right=right,
                    left_name=left_name,
                    left_label=labels.get(left_name) if left_name else None,
                    right_name=right_name,
                    right_label=labels.get(right_name) if right_name else None,
                    unit=(units.get(left_name) if left_name else None)
                    or (units.get(right_name) if right_name else None),
                )
            )
        return unmet

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-able data; ``Result.from_dict`` restores it exactly."""
        types = {node.name: node.type for node in self.explanation}
        return {
            "package": self.package,
            "version": self.version,
            "content_hash": self.content_hash,
            "title": dict(self.title) if self.title is not None else None,
            "on": self.on.isoformat(),
            "known_at": self.known_at.isoformat(),
            "values": {
                name: {"type": types.get(name, _type_of(value)), "value": encode_value(value)}
                for name, value in self.values.items()
            },
            "explanation": [node.to_dict() for node in self.explanation],
            "benefits": {name: info.to_dict() for name, info in self.benefits.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        values: dict[str, Value] = {}
        for name, typed in data["values"].items():
            decoded = decode_value(typed["value"], typed["type"])
            if decoded is not None:
                values[name] = decoded
        return cls(
            package=data["package"],
            version=data["version"],
            content_hash=data["content_hash"],
            title=data.get("title"),
            on=datetime.date.fromisoformat(data["on"]),
            known_at=datetime.date.fromisoformat(data["known_at"]),
            values=values,
            explanation=tuple(Node.from_dict(node) for node in data["explanation"]),
            benefits={
                name: BenefitInfo.from_dict(info)
                for name, info in (data.get("benefits") or {}).items()
            },
        )


def _type_of(value: Value) -> TypeName:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Decimal | int):
        return "number"
    if isinstance(value, datetime.date):
        return "date"
    return "text"
