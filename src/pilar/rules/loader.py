"""Reading a package's YAML files into definitions, with the file and line of everything.

PyYAML's ``compose`` gives a node graph with marks; we convert it ourselves into dicts and lists
that remember the line of each key and item, so every later error (a schema problem, an unknown
name in a formula, a type error, overlapping table rows) can name ``file:line``. Numbers are read
as ``Decimal`` from their source text (``0.80`` must not pass through a float).

This module checks the *shape* of each file (known keys, required keys, value types); names,
types of formulas and cycles are checked by ``package`` once every file is read.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pilar.rules.errors import MissingReferenceError, SchemeFileError
from pilar.rules.explanation import Label, TypeName, Value
from pilar.rules.expressions import KEYWORDS, Expression, parse

TYPES: tuple[TypeName, ...] = ("number", "bool", "date", "text")
PERIODS = ("day", "month", "year")
FREQUENCIES = ("monthly", "bimonthly")
NAME_PATTERN = re.compile(r"^[^\W\d]\w*$", re.UNICODE)


class YamlMap(dict[str, Any]):
    """A mapping read from YAML that knows its own line and the line of each key."""

    file: str
    line: int
    key_lines: dict[str, int]

    def where(self, key: str | None = None) -> str:
        line = self.key_lines.get(key, self.line) if key is not None else self.line
        return f"{self.file}:{line}"


class YamlList(list[Any]):
    """A sequence read from YAML that knows its own line and the line of each item."""

    file: str
    line: int
    item_lines: list[int]

    def where(self, index: int | None = None) -> str:
        line = self.item_lines[index] if index is not None else self.line
        return f"{self.file}:{line}"


_SCALARS = SafeConstructor()


def _convert(node: Node, file: str) -> Any:
    if isinstance(node, MappingNode):
        mapping = YamlMap()
        mapping.file = file
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {}
        for key_node, value_node in node.value:
            key = _convert(key_node, file)
            line = key_node.start_mark.line + 1
            if isinstance(key, Decimal | bool | datetime.date) or key is None:
                # Keys are names; a version key such as 1.0.0 is text already, but a key like
                # `1` or `yes` would otherwise silently become a number or a bool.
                key = key_node.value if isinstance(key_node, ScalarNode) else str(key)
            if not isinstance(key, str):
                raise SchemeFileError(
                    {"problem": "a key must be a name"}, location=f"{file}:{line}"
                )
            if key in mapping:
                raise SchemeFileError(
                    {"problem": f"duplicate key {key!r} (first at line {mapping.key_lines[key]})"},
                    location=f"{file}:{line}",
                )
            value = _convert(value_node, file)
            if isinstance(value, YamlMap | YamlList):
                # A nested block starts on the line after its key; errors about the block as a
                # whole (a missing key) read better pointing at the key that names it.
                value.line = line
            mapping[key] = value
            mapping.key_lines[key] = line
        return mapping
    if isinstance(node, SequenceNode):
        sequence = YamlList()
        sequence.file = file
        sequence.line = node.start_mark.line + 1
        sequence.item_lines = []
        for item in node.value:
            sequence.append(_convert(item, file))
            sequence.item_lines.append(item.start_mark.line + 1)
        return sequence
    assert isinstance(node, ScalarNode)
    if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
        try:
            number = Decimal(node.value.replace("_", ""))
        except InvalidOperation:
            number = Decimal(str(_SCALARS.construct_object(node)))
        if not number.is_finite():
            raise SchemeFileError(
                {"problem": f"{node.value!r} is not a finite number"},
                location=f"{file}:{node.start_mark.line + 1}",
            )
        return number
    try:
        return _SCALARS.construct_object(node)
    except (ConstructorError, ValueError) as error:
        raise SchemeFileError(
            {"problem": str(error).splitlines()[0]},
            location=f"{file}:{node.start_mark.line + 1}",
            yaml=True,
        ) from None


def read_yaml(path: Path, display: str, *, allow_empty: bool = False) -> YamlMap:
    """The top-level mapping of a YAML file; ``display`` is the name errors use for it."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SchemeFileError(
            {"problem": f"not UTF-8 text ({error.reason})"}, location=f"{display}:1", yaml=True
        ) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(error, "problem", None) or str(error)
        context = getattr(error, "context", None)
        if context:
            problem = f"{problem} ({context})"
        raise SchemeFileError(
            {"problem": problem}, location=f"{display}:{line}", yaml=True
        ) from None
    if root is None and allow_empty:
        empty = YamlMap()
        empty.file, empty.line, empty.key_lines = display, 1, {}
        return empty
    if root is None:
        raise SchemeFileError({"problem": "the file is empty"}, location=f"{display}:1")
    converted = _convert(root, display)
    if not isinstance(converted, YamlMap):
        raise SchemeFileError(
            {"problem": "the file must be a mapping of keys to values"}, location=f"{display}:1"
        )
    return converted


# --------------------------------------------------------------------------------------------
# Shape checks


def check_keys(
    mapping: YamlMap, what: str, *, required: Iterable[str] = (), optional: Iterable[str] = ()
) -> None:
    """Refuse unknown keys and report missing required ones, at the mapping's line."""
    required = tuple(required)
    allowed = set(required) | set(optional)
    for key in mapping:
        if key not in allowed:
            raise SchemeFileError(
                {
                    "problem": f"unknown key {key!r} in {what}; "
                    f"allowed: {', '.join(sorted(allowed))}"
                },
                location=mapping.where(key),
            )
    for key in required:
        if key not in mapping:
            raise SchemeFileError(
                {"problem": f"missing key {key!r} in {what}"}, location=mapping.where()
            )


def expect_map(value: Any, what: str, location: str) -> YamlMap:
    if not isinstance(value, YamlMap):
        raise SchemeFileError({"problem": f"{what} must be a mapping"}, location=location)
    return value


def expect_list(value: Any, what: str, location: str) -> YamlList:
    if not isinstance(value, YamlList):
        raise SchemeFileError({"problem": f"{what} must be a list"}, location=location)
    return value


def expect_text(value: Any, what: str, location: str) -> str:
    if isinstance(value, Decimal) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise SchemeFileError({"problem": f"{what} must be text"}, location=location)
    return value


def expect_name(value: Any, what: str, location: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value) or value in KEYWORDS:
        raise SchemeFileError(
            {
                "problem": f"{what} {value!r} is not a valid name "
                "(a letter, then letters, digits, _)"
            },
            location=location,
        )
    return value


def expect_choice(value: Any, choices: Iterable[str], what: str, location: str) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise SchemeFileError(
            {"problem": f"{what} is {value!r}; expected one of {', '.join(choices)}"},
            location=location,
        )
    return str(value)


def expect_bool(value: Any, what: str, location: str) -> bool:
    if not isinstance(value, bool):
        raise SchemeFileError({"problem": f"{what} must be true or false"}, location=location)
    return value


def expect_date(value: Any, what: str, location: str) -> datetime.date:
    if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
        raise SchemeFileError(
            {"problem": f"{what} must be a date (YYYY-MM-DD), not {value!r}"}, location=location
        )
    return value


def expect_label(value: Any, what: str, location: str) -> dict[str, str]:
    """A ``{es, en}`` label: UI text is bilingual, so both languages are required."""
    if not isinstance(value, YamlMap):
        raise SchemeFileError({"problem": f"{what} must be {{es: …, en: …}}"}, location=location)
    check_keys(value, what, required=("es", "en"))
    return {
        "es": expect_text(value["es"], f"{what}.es", value.where("es")),
        "en": expect_text(value["en"], f"{what}.en", value.where("en")),
    }


def expect_description(value: Any, what: str, location: str) -> str | dict[str, str]:
    """Free documentation: plain text, or ``{es, en}`` when it is meant to be shown to users."""
    if isinstance(value, YamlMap):
        return expect_label(value, what, location)
    return expect_text(value, what, location)


def expect_reference(mapping: YamlMap, what: str) -> str:
    """The legal reference of ``what``: required, and a load error of its own when missing."""
    value = mapping.get("reference")
    if not isinstance(value, str) or not value.strip():
        raise MissingReferenceError({"what": what}, location=mapping.where("reference"))
    return value


def typed_value(value: Any, type_name: TypeName, what: str, location: str) -> Value:
    """A literal of a declared type, as the engine holds it (numbers as ``Decimal``)."""
    if type_name == "number" and isinstance(value, Decimal):
        return value
    if type_name == "bool" and isinstance(value, bool):
        return value
    if (
        type_name == "date"
        and isinstance(value, datetime.date)
        and not isinstance(value, datetime.datetime)
    ):
        return value
    if type_name == "text" and isinstance(value, str):
        return value
    raise SchemeFileError(
        {"problem": f"{what} must be of type {type_name}, not {value!r}"}, location=location
    )


def expression(value: Any, what: str, location: str) -> Expression:
    """Parse a formula written in YAML (a bare number or bool is a formula too)."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, Decimal):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise SchemeFileError({"problem": f"{what} must be an expression"}, location=location)
    return parse(value.strip(), location=location)


# --------------------------------------------------------------------------------------------
# Definitions (what a package file says, shape-checked; names and types are checked later)


@dataclass(frozen=True)
class Condition:
    """One test of a ``conditions`` variable: all must hold."""

    test: Expression
    reference: str
    label: Label | None
    location: str


@dataclass(frozen=True)
class Case:
    """One case of a ``cases`` variable: ``value`` when ``when`` holds, at ``priority``."""

    when: Expression | None
    value: Expression
    priority: int
    reference: str
    location: str


@dataclass(eq=False)
class Variable:
    """An input or a computed variable (formula, conditions or cases)."""

    name: str
    type: TypeName
    kind: str  # input | formula | conditions | cases
    label: Label
    location: str
    entity: str
    period: str = "day"
    unit: str | None = None
    reference: str | None = None
    description: str | Label | None = None
    optional: bool = False
    default: Value | None = None
    formula: Expression | None = None
    conditions: tuple[Condition, ...] = ()
    cases: tuple[Case, ...] = ()
    # Filled by the package once names are resolved: the variables, parameters and tables
    # this one reads in any branch, in order of first appearance.
    dependencies: tuple[str, ...] = field(default=())

    @property
    def input(self) -> bool:
        return self.kind == "input"

    def expressions(self) -> list[Expression]:
        """Every expression of the variable, in the order evaluation meets them."""
        if self.formula is not None:
            return [self.formula]
        found: list[Expression] = [condition.test for condition in self.conditions]
        for case in self.cases:
            if case.when is not None:
                found.append(case.when)
            found.append(case.value)
        return found


def read_variables(
    document: YamlMap, *, first_entity: str, entities: Iterable[str]
) -> list[Variable]:
    check_keys(document, "variables.yaml", required=("variables",))
    section = expect_map(document["variables"], "variables", document.where("variables"))
    entities = tuple(entities)
    variables: list[Variable] = []
    for name, raw in section.items():
        where = section.where(name)
        expect_name(name, "variable", where)
        spec = expect_map(raw, f"variable {name}", where)
        variables.append(_read_variable(name, spec, first_entity, entities))
    return variables


_VARIABLE_KEYS = (
    "type",
    "entity",
    "period",
    "input",
    "optional",
    "default",
    "unit",
    "label",
    "reference",
    "description",
    "formula",
    "conditions",
    "cases",
)


def _read_variable(
    name: str, spec: YamlMap, first_entity: str, entities: tuple[str, ...]
) -> Variable:
    what = f"variable {name}"
    check_keys(spec, what, required=("type", "label"), optional=_VARIABLE_KEYS)
    type_name: TypeName = expect_choice(spec["type"], TYPES, f"{what}: type", spec.where("type"))  # type: ignore[assignment]
    kinds = [key for key in ("input", "formula", "conditions", "cases") if key in spec]
    if len(kinds) != 1:
        raise SchemeFileError(
            {
                "problem": f"{what} must have exactly one of input, formula, conditions, cases"
                + (f" (has {', '.join(kinds)})" if kinds else "")
            },
            location=spec.where(),
        )
    kind = kinds[0]
    entity = spec.get("entity", first_entity)
    expect_choice(entity, entities, f"{what}: entity", spec.where("entity"))
    period = expect_choice(
        spec.get("period", "day"), PERIODS, f"{what}: period", spec.where("period")
    )
    variable = Variable(
        name=name,
        type=type_name,
        kind=kind,
        label=expect_label(spec["label"], f"{what}: label", spec.where("label")),
        location=spec.where(),
        entity=str(entity),
        period=period,
        unit=expect_text(spec["unit"], f"{what}: unit", spec.where("unit"))
        if "unit" in spec
        else None,
        description=(
            expect_description(
                spec["description"], f"{what}: description", spec.where("description")
            )
            if "description" in spec
            else None
        ),
    )
    if kind == "input":
        if spec["input"] is not True:
            raise SchemeFileError(
                {"problem": f"{what}: input must be true (a computed variable has a formula)"},
                location=spec.where("input"),
            )
        variable.reference = spec.get("reference")
        variable.optional = expect_bool(
            spec.get("optional", False), f"{what}: optional", spec.where("optional")
        )
        if variable.optional and "default" not in spec:
            raise SchemeFileError(
                {"problem": f"{what} is optional and needs a default"}, location=spec.where()
            )
        if not variable.optional and "default" in spec:
            raise SchemeFileError(
                {"problem": f"{what} has a default but is not optional (add optional: true)"},
                location=spec.where("default"),
            )
        if "default" in spec:
            variable.default = typed_value(
                spec["default"], type_name, f"{what}: default", spec.where("default")
            )
        return variable
    for key in ("optional", "default"):
        if key in spec:
            raise SchemeFileError(
                {"problem": f"{what}: {key} applies to inputs only"}, location=spec.where(key)
            )
    variable.reference = expect_reference(spec, what)
    if kind == "formula":
        variable.formula = expression(spec["formula"], f"{what}: formula", spec.where("formula"))
    elif kind == "conditions":
        if type_name != "bool":
            raise SchemeFileError(
                {"problem": f"{what} has conditions, so its type must be bool"},
                location=spec.where("type"),
            )
        variable.conditions = _read_conditions(name, spec)
    else:
        variable.cases = _read_cases(name, spec)
    return variable


def _read_conditions(name: str, spec: YamlMap) -> tuple[Condition, ...]:
    items = expect_list(
        spec["conditions"], f"variable {name}: conditions", spec.where("conditions")
    )
    if not items:
        raise SchemeFileError(
            {"problem": f"variable {name}: conditions is empty"}, location=spec.where("conditions")
        )
    conditions = []
    for index, raw in enumerate(items):
        what = f"variable {name}, condition {index + 1}"
        item = expect_map(raw, what, items.where(index))
        check_keys(item, what, required=("test",), optional=("reference", "label"))
        conditions.append(
            Condition(
                test=expression(item["test"], f"{what}: test", item.where("test")),
                reference=expect_reference(item, what),
                label=(
                    expect_label(item["label"], f"{what}: label", item.where("label"))
                    if "label" in item
                    else None
                ),
                location=item.where(),
            )
        )
    return tuple(conditions)


def _read_cases(name: str, spec: YamlMap) -> tuple[Case, ...]:
    items = expect_list(spec["cases"], f"variable {name}: cases", spec.where("cases"))
    if not items:
        raise SchemeFileError(
            {"problem": f"variable {name}: cases is empty"}, location=spec.where("cases")
        )
    cases = []
    for index, raw in enumerate(items):
        what = f"variable {name}, case {index + 1}"
        item = expect_map(raw, what, items.where(index))
        check_keys(item, what, required=("value",), optional=("when", "priority", "reference"))
        priority = item.get("priority", Decimal(0))
        if not isinstance(priority, Decimal) or priority != priority.to_integral_value():
            raise SchemeFileError(
                {"problem": f"{what}: priority must be a whole number"},
                location=item.where("priority"),
            )
        cases.append(
            Case(
                when=(
                    expression(item["when"], f"{what}: when", item.where("when"))
                    if "when" in item
                    else None
                ),
                value=expression(item["value"], f"{what}: value", item.where("value")),
                priority=int(priority),
                reference=expect_reference(item, what),
                location=item.where(),
            )
        )
    return tuple(cases)


@dataclass(frozen=True)
class BenefitSpec:
    name: str
    label: Label
    eligible: str
    amount: str | None
    frequency: str | None
    location: str


@dataclass(frozen=True)
class PackageSpec:
    """What ``package.yaml`` says."""

    name: str
    version: str
    title: Label
    entities: tuple[str, ...]
    benefits: tuple[BenefitSpec, ...]
    description: str | Label | None
    location: str


def read_package_yaml(document: YamlMap) -> PackageSpec:
    check_keys(
        document,
        "package.yaml",
        required=("name", "version", "title", "entities"),
        optional=("benefits", "description"),
    )
    name = expect_name(document["name"], "package name", document.where("name"))
    version = expect_text(document["version"], "version", document.where("version"))
    entities_list = expect_list(document["entities"], "entities", document.where("entities"))
    if not entities_list:
        raise SchemeFileError({"problem": "entities is empty"}, location=document.where("entities"))
    entities = tuple(
        expect_name(entity, "entity", entities_list.where(index))
        for index, entity in enumerate(entities_list)
    )
    benefits: list[BenefitSpec] = []
    if "benefits" in document:
        section = expect_map(document["benefits"], "benefits", document.where("benefits"))
        for benefit_name, raw in section.items():
            where = section.where(benefit_name)
            expect_name(benefit_name, "benefit", where)
            what = f"benefit {benefit_name}"
            spec = expect_map(raw, what, where)
            check_keys(
                spec,
                what,
                required=("label", "eligible"),
                optional=("amount", "frequency", "description"),
            )
            if "description" in spec:
                # Documentation for the package's readers; checked, not kept.
                expect_description(
                    spec["description"], f"{what}: description", spec.where("description")
                )
            benefits.append(
                BenefitSpec(
                    name=benefit_name,
                    label=expect_label(spec["label"], f"{what}: label", spec.where("label")),
                    eligible=expect_name(
                        spec["eligible"], f"{what}: eligible", spec.where("eligible")
                    ),
                    amount=(
                        expect_name(spec["amount"], f"{what}: amount", spec.where("amount"))
                        if "amount" in spec
                        else None
                    ),
                    frequency=(
                        expect_choice(
                            spec["frequency"],
                            FREQUENCIES,
                            f"{what}: frequency",
                            spec.where("frequency"),
                        )
                        if "frequency" in spec
                        else None
                    ),
                    location=spec.where(),
                )
            )
    return PackageSpec(
        name=name,
        version=version,
        title=expect_label(document["title"], "title", document.where("title")),
        entities=entities,
        benefits=tuple(benefits),
        description=(
            expect_description(
                document["description"], "description", document.where("description")
            )
            if "description" in document
            else None
        ),
        location=document.where(),
    )


def label_text(label: Mapping[str, str] | None, language: str) -> str:
    if not label:
        return ""
    return label.get(language) or label.get("es") or label.get("en") or ""
