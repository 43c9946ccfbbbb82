"""Totalisation of insurance periods and pro-rata pensions across institutions.

A person insured under several legislations gets, from each institution that owes a pension,
the benefit the coordination instrument prescribes. The three instruments Pilar knows share one
mechanism, each with its own details (the agreement files in ``rules/agreements/`` cite them):

1. **Independent benefit** (Reg. (CE) 883/2004 art. 52.1.a; CMISS art. 13.1.a): the institution
   applies its own legislation to its own periods alone.
2. **Totalisation** (883/2004 art. 6 and 52.1.b.i; CMISS art. 5; MERCOSUR art. 7.1): the
   periods completed under the other legislations count as if completed under its own. Periods
   in other units are converted first (Reg. (CE) 987/2009 art. 13): each institution counts the
   total in *its own* unit, converting every other institution's aggregate in one operation and
   taking the next whole unit when the conversion leaves a fraction (art. 13.1.e, 13.3).
3. **Theoretical amount** (art. 52.1.b.i): the benefit its legislation would give if all those
   periods had been completed under it. When its legislation gives the full benefit after a
   maximum period and the total exceeds it, that maximum replaces the total, for the theoretical
   amount and as the denominator of the ratio, and the pro-rata benefit never exceeds the full
   benefit (883/2004 art. 56.1.a).
4. **Pro-rata amount** (art. 52.1.b.ii): the theoretical amount times own periods / total.
5. **The award**: the higher of the independent and the pro-rata benefit (art. 52.3), when the
   agreement says so; otherwise the independent benefit when the person is entitled on own
   periods alone, else the pro-rata one. An institution holding less than the minimum payable
   period (one year in 883/2004 art. 57.1, twelve months in MERCOSUR art. 7.2) pays nothing
   unless the person is entitled on those periods alone, while the other institutions still
   count them (art. 57.2). When that relieves every institution, the last one whose conditions
   are met pays as if all periods had been completed under its legislation (art. 57.3).

Institutions hold periods; what an institution's legislation pays for a number of periods is an
``InstitutionScheme``: ``LinearScheme`` (a simple accrual rule for examples and tests) or
``PackageScheme`` (a rules package's benefit, evaluated by the engine). Overlapping periods (the
same months insured in two states) are the caller's concern: ``totalise`` adds what it is given,
so each institution's figure must already leave out periods another one counts (Reg. (CE)
987/2009 art. 12 says which one keeps them).

Everything is ``Decimal``; money is rounded half up to the centavo once, at the end. Each
institution's outcome carries an explanation tree of ``Node``s with the article on every step.
Not modelled: Annex VIII of 883/2004 (art. 52.4 and 52.5, institutions that waive the pro-rata
calculation), art. 56.1.c (earnings-based averages over foreign periods, which is the scheme's
business) and the per-calendar-year caps of 987/2009 art. 13.2, which need periods year by year.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Protocol, cast

import yaml

from pilar.rules.errors import RulesError
from pilar.rules.explanation import Node

AGREEMENTS_DIR = Path(__file__).resolve().parent / "agreements"

PeriodUnit = Literal["day", "week", "month", "quarter", "year"]
UNITS: tuple[PeriodUnit, ...] = ("day", "week", "month", "quarter", "year")
Label = Mapping[str, str]
AwardBasis = Literal[
    "independent",
    "pro_rata",
    "not_entitled",
    "below_minimum_period",
    "last_institution",
]

CENTAVO = Decimal("0.01")

_UNIT_LABELS: dict[str, dict[str, str]] = {
    "day": {"es": "días", "en": "days"},
    "week": {"es": "semanas", "en": "weeks"},
    "month": {"es": "meses", "en": "months"},
    "quarter": {"es": "trimestres", "en": "quarters"},
    "year": {"es": "años", "en": "years"},
}

# Unit names as scheme packages write them in a variable's ``unit`` (free text in the rules
# language), mapped to the units periods are counted in.
_UNIT_ALIASES: dict[str, PeriodUnit] = {
    **{unit: unit for unit in UNITS},
    "days": "day",
    "weeks": "week",
    "months": "month",
    "quarters": "quarter",
    "years": "year",
    "días": "day",
    "dias": "day",
    "semanas": "week",
    "meses": "month",
    "trimestres": "quarter",
    "años": "year",
}


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def _text(value: Any, language: str) -> str:
    if isinstance(value, Mapping):
        return str(value.get(language) or value.get("es") or value.get("en") or "")
    return str(value)


_MESSAGES: dict[str, dict[str, str]] = {
    "agreement_not_found": {
        "es": "No existe el convenio {name} (se buscó en {path}).",
        "en": "There is no agreement {name} (looked in {path}).",
    },
    "yaml_error": {
        "es": "YAML mal formado: {problem}",
        "en": "Malformed YAML: {problem}",
    },
    "schema_error": {
        "es": "Estructura inválida en {field}: {problem}",
        "en": "Invalid structure in {field}: {problem}",
    },
    "unknown_institution": {
        "es": "La institución {institution} no forma parte del convenio {agreement} "
        "(institutions: {known}).",
        "en": "Institution {institution} is not part of agreement {agreement} "
        "(institutions: {known}).",
    },
    "missing_scheme": {
        "es": "Falta el régimen de la institución {institution}: tiene períodos pero no se "
        "indicó cómo calcula su prestación.",
        "en": "The scheme of institution {institution} is missing: it holds periods but nothing "
        "says how it computes its benefit.",
    },
    "no_periods": {
        "es": "No se indicaron períodos de ninguna institución del convenio {agreement}.",
        "en": "No periods were given for any institution of agreement {agreement}.",
    },
    "invalid_periods": {
        "es": "Períodos inválidos para {institution} ({value}): {problem}",
        "en": "Invalid periods for {institution} ({value}): {problem}",
    },
    "unit_mismatch": {
        "es": "{institution} cuenta sus períodos en {expected}; {what} está en {got}.",
        "en": "{institution} counts its periods in {expected}; {what} is in {got}.",
    },
    "order_required": {
        "es": "Ninguna institución está obligada a pagar (todas tienen menos del período mínimo); "
        "para aplicar la regla de la última institución hace falta el orden en que la persona "
        "estuvo asegurada, de la primera a la última (order=[…]); falta: {missing}.",
        "en": "No institution is bound to pay (each holds less than the minimum period); to apply "
        "the last-institution rule the order in which the person was insured is needed, first "
        "to last (order=[…]); missing: {missing}.",
    },
    "unknown_benefit": {
        "es": "El paquete {package} no tiene la prestación {benefit} (tiene: {known}).",
        "en": "Package {package} has no benefit {benefit} (it has: {known}).",
    },
    "unknown_periods_input": {
        "es": "El paquete {package} no tiene el dato de entrada {name} para los períodos.",
        "en": "Package {package} has no input {name} for the periods.",
    },
    "periods_input_given": {
        "es": "El dato {name} no va entre los datos de la persona: lo fija la totalización "
        "(los períodos propios o los totalizados).",
        "en": "Input {name} must not be among the person's inputs: totalisation sets it (own "
        "or totalised periods).",
    },
}


class _Default(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class TotalisationError(RulesError):
    """An error in an agreement file or in a totalisation request.

    ``params`` values may be ``{es, en}`` mappings (a problem described in both languages);
    ``message(language)`` picks the right one. ``location`` is ``file:line`` for file errors.
    """

    code = "totalisation_error"

    def message(self, language: str = "es") -> str:
        language = "en" if language.startswith("en") else "es"
        template = _MESSAGES.get(self.code, {}).get(language)
        params = _Default({key: _text(value, language) for key, value in self.params.items()})
        text = template.format_map(params) if template else f"{self.code}: {dict(self.params)}"
        if self.reference:
            text = f"{text} ({self.reference})"
        if self.location:
            text = f"{self.location}: {text}"
        return text


def _both(es: str, en: str) -> dict[str, str]:
    return {"es": es, "en": en}


# --------------------------------------------------------------------------------------------
# Periods and their conversion (Reg. (CE) 987/2009 art. 13)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Periods:
    """A quantity of insurance periods as an institution communicates them, in its unit.

    A day unit is read on the institution's own basis (five, six or seven days a week, from the
    agreement file: 987/2009 art. 13.4).
    """

    quantity: Decimal
    unit: PeriodUnit


CONVERSION_REFERENCE = "Reg. (CE) 987/2009, art. 13"

# 987/2009 art. 13.1.b: for schemes counting days, what one day is in hours (for converting
# between day schemes of different bases) and how many days make a week, a month, a quarter and
# (the last column, the maximum in a calendar year) a year.
_DAY_SCHEMES: dict[int, dict[str, int]] = {
    5: {"hours": 9, "week": 5, "month": 22, "quarter": 66, "year": 264},
    6: {"hours": 8, "week": 6, "month": 26, "quarter": 78, "year": 312},
    7: {"hours": 6, "week": 7, "month": 30, "quarter": 90, "year": 360},
}

# 987/2009 art. 13.1.c: a quarter is three months or thirteen weeks; a year four quarters,
# twelve months or fifty-two weeks; weeks and months convert through the six-day table
# (a week is six days, a month twenty-six), so a week is 6/26 = 3/13 of a month, which agrees
# with thirteen weeks to the quarter. Everything is expressed in months.
_MONTHS_IN: dict[str, Fraction] = {
    "week": Fraction(3, 13),
    "month": Fraction(1),
    "quarter": Fraction(3),
    "year": Fraction(12),
}


def convert_exact(
    quantity: Fraction,
    source: PeriodUnit,
    target: PeriodUnit,
    *,
    source_days_per_week: int | None = None,
    target_days_per_week: int | None = None,
) -> Fraction:
    """``quantity`` in ``source`` units expressed in ``target`` units, before any rounding.

    Day units need their scheme's basis (5, 6 or 7 days a week): the table of 987/2009
    art. 13.1.b converts days of a scheme to other units, and between day schemes of different
    bases through the hours a day stands for.
    """
    if source == "day" and source_days_per_week not in _DAY_SCHEMES:
        raise ValueError(f"a day unit needs a basis of 5, 6 or 7 days, not {source_days_per_week}")
    if target == "day" and target_days_per_week not in _DAY_SCHEMES:
        raise ValueError(f"a day unit needs a basis of 5, 6 or 7 days, not {target_days_per_week}")
    if source == "day" and target == "day":
        if source_days_per_week == target_days_per_week:
            return quantity
        hours_from = _DAY_SCHEMES[cast(int, source_days_per_week)]["hours"]
        hours_to = _DAY_SCHEMES[cast(int, target_days_per_week)]["hours"]
        return quantity * hours_from / hours_to
    if source == "day":
        return quantity / _DAY_SCHEMES[cast(int, source_days_per_week)][target]
    if target == "day":
        return quantity * _DAY_SCHEMES[cast(int, target_days_per_week)][source]
    return quantity * _MONTHS_IN[source] / _MONTHS_IN[target]


def convert(
    quantity: Decimal,
    source: PeriodUnit,
    target: PeriodUnit,
    *,
    source_days_per_week: int | None = None,
    target_days_per_week: int | None = None,
) -> Decimal:
    """``quantity`` converted for aggregation, a fraction rounded up to the next whole unit.

    987/2009 art. 13.1.e takes the next higher whole unit when a conversion leaves a fraction.
    Fractions in the input (art. 13.1.d) are converted exactly and rounded once here, which
    is what converting them into the next smaller unit first comes to.
    """
    if source == target and source_days_per_week == target_days_per_week:
        return quantity
    exact = convert_exact(
        Fraction(quantity),
        source,
        target,
        source_days_per_week=source_days_per_week,
        target_days_per_week=target_days_per_week,
    )
    return Decimal(math.ceil(exact))


def _factor_text(
    source: PeriodUnit, target: PeriodUnit, source_dpw: int | None, target_dpw: int | None
) -> str:
    factor = convert_exact(
        Fraction(1),
        source,
        target,
        source_days_per_week=source_dpw,
        target_days_per_week=target_dpw,
    )
    return str(factor.numerator) if factor.denominator == 1 else f"{factor}"


# --------------------------------------------------------------------------------------------
# Agreements
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One provision of an agreement: whether it applies, and the article that says so."""

    applies: bool
    reference: str | None
    note: str | None = None


@dataclass(frozen=True)
class MinimumPayablePeriod:
    """Below this, an institution pays nothing unless its periods alone give entitlement."""

    quantity: Decimal
    unit: PeriodUnit
    reference: str
    others_count_reference: str | None
    # What happens when every institution is relieved: ``last_entitled`` (883/2004 art. 57.3)
    # or ``none`` (no rule in the agreement: nobody pays).
    when_all_below: Literal["last_entitled", "none"]
    when_all_below_reference: str | None


@dataclass(frozen=True)
class SchemeDeclaration:
    """How an agreement file says an institution computes its benefit (optional)."""

    kind: Literal["linear", "package"]
    settings: Mapping[str, Any]
    line: int | None


@dataclass(frozen=True)
class Institution:
    id: str
    country: str
    name: Label
    unit: PeriodUnit
    days_per_week: int | None
    scheme: SchemeDeclaration | None
    # An institution may be exempted from the minimum payable period where the agreement lets
    # each state decide (MERCOSUR art. 7.2 says "podrá").
    applies_minimum_payable_period: bool
    # The unit and basis as Pilar understands the national legislation, not yet confirmed with
    # the institution or its liaison body.
    needs_verification: bool
    note: str | None
    line: int | None
    # The federation member code of the institution (``MX-IMSS``): which node's insurance
    # periods documents stand for this institution in a totalisation claim
    # (docs/federation.md, "Hub"). None for an institution outside the federation.
    member: str | None = None


@dataclass(frozen=True)
class Source:
    """A legal text the agreement file relies on, and whether its wording was checked."""

    citation: str
    title: Label | None
    url: str | None
    verified: bool
    note: str | None


@dataclass(frozen=True)
class Agreement:
    name: str
    title: Label
    sources: tuple[Source, ...]
    totalisation: Rule
    conversion: Rule
    independent_benefit: Rule
    theoretical_amount: Rule
    pro_rata: Rule
    choose_higher: Rule
    maximum_period: Rule
    minimum_payable_period: MinimumPayablePeriod | None
    institutions: Mapping[str, Institution]
    path: Path

    def institution(self, institution_id: str) -> Institution:
        try:
            return self.institutions[institution_id]
        except KeyError:
            raise TotalisationError(
                "unknown_institution",
                {
                    "institution": institution_id,
                    "agreement": self.name,
                    "known": ", ".join(self.institutions),
                },
            ) from None


class _LineDict(dict[str, Any]):
    """A YAML mapping that remembers its own line and each key's line (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class _AgreementLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _LineDict:
    mapping = _LineDict()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            # PyYAML keeps the last of two equal keys silently; in a legal file that hides a
            # mistake, so it is refused.
            raise yaml.MarkedYAMLError(
                problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[str(key)] = key_node.start_mark.line + 1
    return mapping


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal | str:
    # A rate such as 0.02 must not pass through a binary float; it is read from its source
    # text. Text that is not a finite decimal (.inf, .nan) stays text and is refused later.
    text = node.value.replace("_", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        return node.value
    return value if value.is_finite() else node.value


_AgreementLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)
_AgreementLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class _Reader:
    """Reads one agreement file, turning every structural problem into a ``file:line`` error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.display = str(path.relative_to(Path(__file__).resolve().parents[3]))
        except ValueError:
            self.display = str(path)

    def fail(self, field_name: str, line: int | None, es: str, en: str) -> TotalisationError:
        location = f"{self.display}:{line}" if line else self.display
        return TotalisationError(
            "schema_error", {"field": field_name, "problem": _both(es, en)}, location=location
        )

    def mapping(self, data: Any, field_name: str, line: int | None) -> _LineDict:
        if not isinstance(data, _LineDict):
            raise self.fail(
                field_name, line, "se esperaba un mapeo (clave: valor)", "expected a mapping"
            )
        return data

    def keys(
        self, data: _LineDict, field_name: str, *, required: Iterable[str], optional: Iterable[str]
    ) -> None:
        required = tuple(required)
        allowed = set(required) | set(optional)
        for key in data:
            if key not in allowed:
                raise self.fail(
                    f"{field_name}.{key}" if field_name else str(key),
                    data.key_lines.get(str(key), data.line),
                    f"clave desconocida (se admiten: {', '.join(sorted(allowed))})",
                    f"unknown key (allowed: {', '.join(sorted(allowed))})",
                )
        for key in required:
            if key not in data:
                raise self.fail(
                    f"{field_name}.{key}" if field_name else key,
                    data.line,
                    "falta esta clave obligatoria",
                    "this required key is missing",
                )

    def line_of(self, data: _LineDict, key: str) -> int:
        return data.key_lines.get(key, data.line)

    def label(self, data: _LineDict, key: str, field_name: str) -> Label:
        value = data[key]
        line = self.line_of(data, key)
        if not (
            isinstance(value, Mapping)
            and set(value) == {"es", "en"}
            and all(isinstance(v, str) and v.strip() for v in value.values())
        ):
            raise self.fail(
                field_name,
                line,
                "se espera un texto en español y en inglés: {es: …, en: …}",
                "expected a text in Spanish and English: {es: …, en: …}",
            )
        return MappingProxyType({"es": value["es"], "en": value["en"]})

    def string(self, data: _LineDict, key: str, field_name: str) -> str:
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(
                field_name, self.line_of(data, key), "se espera un texto", "expected a text"
            )
        return value

    def optional_string(self, data: _LineDict, key: str, field_name: str) -> str | None:
        return self.string(data, key, field_name) if data.get(key) is not None else None

    def boolean(self, data: _LineDict, key: str, field_name: str) -> bool:
        value = data[key]
        if not isinstance(value, bool):
            raise self.fail(
                field_name,
                self.line_of(data, key),
                "se espera true o false",
                "expected true or false",
            )
        return value

    def quantity(self, data: _LineDict, key: str, field_name: str) -> Decimal:
        value = data[key]
        line = self.line_of(data, key)
        try:
            quantity = _decimal(value)
        except ValueError:
            raise self.fail(
                field_name, line, "se espera un número (sin comillas)", "expected a number"
            ) from None
        if quantity < 0:
            raise self.fail(field_name, line, "no puede ser negativo", "cannot be negative")
        return quantity

    def unit(self, data: _LineDict, key: str, field_name: str) -> PeriodUnit:
        value = data[key]
        if value not in UNITS:
            raise self.fail(
                field_name,
                self.line_of(data, key),
                f"unidad desconocida {value!r} (se admiten: {', '.join(UNITS)})",
                f"unknown unit {value!r} (allowed: {', '.join(UNITS)})",
            )
        return cast(PeriodUnit, value)

    def rule(self, rules: _LineDict, key: str, *, needs_reference: bool = True) -> Rule:
        data = self.mapping(rules[key], f"rules.{key}", self.line_of(rules, key))
        self.keys(data, f"rules.{key}", required=("applies",), optional=("reference", "note"))
        applies = self.boolean(data, "applies", f"rules.{key}.applies")
        reference = self.optional_string(data, "reference", f"rules.{key}.reference")
        if applies and needs_reference and reference is None:
            # Every step of a calculation names its article (docs/rules-language.md); a rule
            # that applies without one could not be explained.
            raise self.fail(
                f"rules.{key}.reference",
                data.line,
                "una regla que aplica necesita su referencia legal",
                "a rule that applies needs its legal reference",
            )
        return Rule(applies, reference, self.optional_string(data, "note", f"rules.{key}.note"))


def load_agreement(name: str | None = None, *, path: str | Path | None = None) -> Agreement:
    """The agreement ``name`` from ``rules/agreements/<name>.yaml``, or the file at ``path``.

    Raises ``TotalisationError``: ``agreement_not_found``, or ``yaml_error`` / ``schema_error``
    naming the file and line of the first problem.
    """
    if path is None:
        if name is None or not _NAME.match(name):
            raise TotalisationError(
                "agreement_not_found", {"name": name, "path": str(AGREEMENTS_DIR)}
            )
        file_path = AGREEMENTS_DIR / f"{name}.yaml"
    else:
        file_path = Path(path)
    if not file_path.is_file():
        raise TotalisationError(
            "agreement_not_found", {"name": name or file_path.stem, "path": str(file_path)}
        )
    reader = _Reader(file_path.resolve())
    try:
        data = yaml.load(file_path.read_text(encoding="utf-8"), Loader=_AgreementLoader)  # noqa: S506 - a SafeLoader subclass that only adds line numbers
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = error.problem or str(error)
        raise TotalisationError(
            "yaml_error",
            {"problem": problem},
            location=f"{reader.display}:{line}" if line else reader.display,
        ) from None
    except yaml.YAMLError as error:
        raise TotalisationError(
            "yaml_error", {"problem": str(error)}, location=reader.display
        ) from None
    return _read_agreement(reader, data)


def _read_agreement(reader: _Reader, data: Any) -> Agreement:
    root = reader.mapping(data, "(file)", 1)
    reader.keys(
        root,
        "",
        required=("name", "title", "sources", "rules", "institutions"),
        optional=("note",),
    )
    name = reader.string(root, "name", "name")
    if name != reader.path.stem:
        raise reader.fail(
            "name",
            reader.line_of(root, "name"),
            f"el nombre {name!r} no coincide con el archivo {reader.path.name}",
            f"the name {name!r} does not match the file {reader.path.name}",
        )
    title = reader.label(root, "title", "title")
    sources = _read_sources(reader, root)
    rules = reader.mapping(root["rules"], "rules", reader.line_of(root, "rules"))
    rule_keys = (
        "totalisation",
        "conversion",
        "independent_benefit",
        "theoretical_amount",
        "pro_rata",
        "choose_higher",
        "maximum_period",
    )
    reader.keys(rules, "rules", required=(*rule_keys, "minimum_payable_period"), optional=())
    read = {key: reader.rule(rules, key) for key in rule_keys}
    for always in ("totalisation", "conversion", "independent_benefit", "theoretical_amount"):
        if not read[always].applies:
            raise reader.fail(
                f"rules.{always}.applies",
                reader.line_of(rules, always),
                "esta regla es el mecanismo mismo de la totalización y no puede desactivarse",
                "this rule is the totalisation mechanism itself and cannot be switched off",
            )
    if not read["pro_rata"].applies:
        raise reader.fail(
            "rules.pro_rata.applies",
            reader.line_of(rules, "pro_rata"),
            "el cálculo a prorrata no puede desactivarse (anexo VIII del 883/2004 no se modela)",
            "the pro-rata calculation cannot be switched off (883/2004 Annex VIII is not modelled)",
        )
    minimum = _read_minimum(reader, rules)
    institutions = _read_institutions(reader, root)
    return Agreement(
        name=name,
        title=title,
        sources=sources,
        minimum_payable_period=minimum,
        institutions=institutions,
        path=reader.path,
        **read,
    )


def _read_sources(reader: _Reader, root: _LineDict) -> tuple[Source, ...]:
    items = root["sources"]
    if not isinstance(items, list) or not items:
        raise reader.fail(
            "sources",
            reader.line_of(root, "sources"),
            "se espera una lista no vacía de textos legales",
            "expected a non-empty list of legal texts",
        )
    sources = []
    for index, item in enumerate(items):
        where = f"sources[{index}]"
        entry = reader.mapping(item, where, reader.line_of(root, "sources"))
        reader.keys(
            entry, where, required=("citation", "verified"), optional=("title", "url", "note")
        )
        sources.append(
            Source(
                citation=reader.string(entry, "citation", f"{where}.citation"),
                title=reader.label(entry, "title", f"{where}.title") if "title" in entry else None,
                url=reader.optional_string(entry, "url", f"{where}.url"),
                verified=reader.boolean(entry, "verified", f"{where}.verified"),
                note=reader.optional_string(entry, "note", f"{where}.note"),
            )
        )
    return tuple(sources)


def _read_minimum(reader: _Reader, rules: _LineDict) -> MinimumPayablePeriod | None:
    raw = rules["minimum_payable_period"]
    if raw is None:
        return None
    where = "rules.minimum_payable_period"
    data = reader.mapping(raw, where, reader.line_of(rules, "minimum_payable_period"))
    reader.keys(
        data,
        where,
        required=("quantity", "unit", "reference", "when_all_below"),
        optional=("others_count_reference", "when_all_below_reference", "note"),
    )
    when_all_below = data["when_all_below"]
    if when_all_below not in ("last_entitled", "none"):
        raise reader.fail(
            f"{where}.when_all_below",
            reader.line_of(data, "when_all_below"),
            "se espera last_entitled o none",
            "expected last_entitled or none",
        )
    when_reference = reader.optional_string(
        data, "when_all_below_reference", f"{where}.when_all_below_reference"
    )
    if when_all_below == "last_entitled" and when_reference is None:
        raise reader.fail(
            f"{where}.when_all_below_reference",
            reader.line_of(data, "when_all_below"),
            "la regla de la última institución necesita su referencia legal",
            "the last-institution rule needs its legal reference",
        )
    return MinimumPayablePeriod(
        quantity=reader.quantity(data, "quantity", f"{where}.quantity"),
        unit=reader.unit(data, "unit", f"{where}.unit"),
        reference=reader.string(data, "reference", f"{where}.reference"),
        others_count_reference=reader.optional_string(
            data, "others_count_reference", f"{where}.others_count_reference"
        ),
        when_all_below=when_all_below,
        when_all_below_reference=when_reference,
    )


def _read_institutions(reader: _Reader, root: _LineDict) -> Mapping[str, Institution]:
    items = root["institutions"]
    if not isinstance(items, list) or not items:
        raise reader.fail(
            "institutions",
            reader.line_of(root, "institutions"),
            "se espera una lista no vacía de instituciones",
            "expected a non-empty list of institutions",
        )
    institutions: dict[str, Institution] = {}
    for index, item in enumerate(items):
        where = f"institutions[{index}]"
        entry = reader.mapping(item, where, reader.line_of(root, "institutions"))
        reader.keys(
            entry,
            where,
            required=("id", "country", "name", "unit"),
            optional=(
                "days_per_week",
                "scheme",
                "applies_minimum_payable_period",
                "needs_verification",
                "note",
                "member",
            ),
        )
        institution_id = reader.string(entry, "id", f"{where}.id")
        if not _NAME.match(institution_id):
            raise reader.fail(
                f"{where}.id",
                reader.line_of(entry, "id"),
                "un id usa minúsculas, cifras y _",
                "an id uses lower-case letters, digits and _",
            )
        if institution_id in institutions:
            raise reader.fail(
                f"{where}.id",
                reader.line_of(entry, "id"),
                f"la institución {institution_id} ya está definida (línea "
                f"{institutions[institution_id].line})",
                f"institution {institution_id} is already defined (line "
                f"{institutions[institution_id].line})",
            )
        country = reader.string(entry, "country", f"{where}.country")
        if not re.match(r"^[A-Z]{2}$", country):
            raise reader.fail(
                f"{where}.country",
                reader.line_of(entry, "country"),
                "se espera un código de país ISO 3166 de dos letras (MX, ES…)",
                "expected a two-letter ISO 3166 country code (MX, ES…)",
            )
        unit = reader.unit(entry, "unit", f"{where}.unit")
        days_per_week: int | None = None
        if unit == "day":
            days_per_week = entry.get("days_per_week")
            if days_per_week not in _DAY_SCHEMES or isinstance(days_per_week, bool):
                raise reader.fail(
                    f"{where}.days_per_week",
                    reader.line_of(entry, "days_per_week" if "days_per_week" in entry else "unit"),
                    "una institución que cuenta días indica si su régimen es de 5, 6 o 7 días "
                    "por semana (Reg. 987/2009 art. 13.4)",
                    "an institution counting days states whether its scheme is based on 5, 6 "
                    "or 7 days a week (Reg. 987/2009 art. 13.4)",
                )
        elif "days_per_week" in entry:
            raise reader.fail(
                f"{where}.days_per_week",
                reader.line_of(entry, "days_per_week"),
                "solo una institución que cuenta días indica días por semana",
                "only an institution counting days states days per week",
            )
        applies_minimum = True
        if "applies_minimum_payable_period" in entry:
            applies_minimum = reader.boolean(
                entry, "applies_minimum_payable_period", f"{where}.applies_minimum_payable_period"
            )
        scheme = (
            _read_scheme(reader, entry, f"{where}.scheme", unit)
            if entry.get("scheme") is not None
            else None
        )
        institutions[institution_id] = Institution(
            id=institution_id,
            country=country,
            name=reader.label(entry, "name", f"{where}.name"),
            unit=unit,
            days_per_week=days_per_week,
            scheme=scheme,
            applies_minimum_payable_period=applies_minimum,
            needs_verification=(
                reader.boolean(entry, "needs_verification", f"{where}.needs_verification")
                if "needs_verification" in entry
                else False
            ),
            note=reader.optional_string(entry, "note", f"{where}.note"),
            line=entry.line,
            member=_read_member(reader, entry, where, institutions),
        )
    return MappingProxyType(institutions)


_MEMBER_CODE = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")


def _read_member(
    reader: _Reader, entry: _LineDict, where: str, institutions: Mapping[str, Institution]
) -> str | None:
    """The optional ``member:`` of an institution: a federation member code, each named once
    (two institutions cannot both be one node's periods)."""
    member = reader.optional_string(entry, "member", f"{where}.member")
    if member is None:
        return None
    if not _MEMBER_CODE.match(member):
        raise reader.fail(
            f"{where}.member",
            reader.line_of(entry, "member"),
            "se espera un código de miembro de la federación (MX-IMSS, MX-ISSSTECALI…)",
            "expected a federation member code (MX-IMSS, MX-ISSSTECALI…)",
        )
    for other in institutions.values():
        if other.member == member:
            raise reader.fail(
                f"{where}.member",
                reader.line_of(entry, "member"),
                f"el miembro {member} ya es la institución {other.id} (línea {other.line})",
                f"member {member} is already institution {other.id} (line {other.line})",
            )
    return member


def _read_scheme(
    reader: _Reader, entry: _LineDict, where: str, unit: PeriodUnit
) -> SchemeDeclaration:
    data = reader.mapping(entry["scheme"], where, reader.line_of(entry, "scheme"))
    reader.keys(data, where, required=(), optional=("linear", "package"))
    if len(data) != 1:
        raise reader.fail(
            where,
            data.line,
            "se espera exactamente uno de linear o package",
            "expected exactly one of linear or package",
        )
    kind = next(iter(data))
    body = reader.mapping(data[kind], f"{where}.{kind}", reader.line_of(data, kind))
    settings: dict[str, Any]
    if kind == "linear":
        reader.keys(
            body,
            f"{where}.linear",
            required=("reference_salary", "rate_per_period", "required_periods", "reference"),
            optional=("full_periods", "label"),
        )
        settings = {
            "unit": unit,
            "reference_salary": reader.quantity(
                body, "reference_salary", f"{where}.linear.reference_salary"
            ),
            "rate_per_period": reader.quantity(
                body, "rate_per_period", f"{where}.linear.rate_per_period"
            ),
            "required_periods": reader.quantity(
                body, "required_periods", f"{where}.linear.required_periods"
            ),
            "full_periods": (
                reader.quantity(body, "full_periods", f"{where}.linear.full_periods")
                if body.get("full_periods") is not None
                else None
            ),
            "reference": reader.string(body, "reference", f"{where}.linear.reference"),
            "label": (
                reader.label(body, "label", f"{where}.linear.label") if "label" in body else None
            ),
        }
    else:
        reader.keys(
            body,
            f"{where}.package",
            required=("name", "benefit", "periods_input"),
            optional=("version", "required_periods", "maximum_period"),
        )
        settings = {
            "name": reader.string(body, "name", f"{where}.package.name"),
            "version": (str(body["version"]) if body.get("version") is not None else None),
            "benefit": reader.string(body, "benefit", f"{where}.package.benefit"),
            "periods_input": reader.string(body, "periods_input", f"{where}.package.periods_input"),
            "required_periods": (
                reader.quantity(body, "required_periods", f"{where}.package.required_periods")
                if body.get("required_periods") is not None
                else None
            ),
            "maximum_period": (
                reader.quantity(body, "maximum_period", f"{where}.package.maximum_period")
                if body.get("maximum_period") is not None
                else None
            ),
        }
    return SchemeDeclaration(
        kind=cast(Literal["linear", "package"], kind),
        settings=MappingProxyType(settings),
        line=data.line,
    )


# --------------------------------------------------------------------------------------------
# Schemes: what an institution pays for a number of periods
# --------------------------------------------------------------------------------------------


class InstitutionScheme(Protocol):
    """What an institution's legislation pays for a number of periods in ``unit``.

    ``amount`` returns ``(None, node)`` when the person is not entitled with that many periods
    (the node says why); otherwise the amount and how it was reached. ``required_periods`` is
    the number of periods the legislation asks for (None when it is not a plain number, e.g.
    when other conditions decide); ``maximum_period`` the number after which it gives the full
    benefit (None when there is none). ``source`` identifies the scheme for the record.
    """

    @property
    def unit(self) -> PeriodUnit: ...

    @property
    def required_periods(self) -> Decimal | None: ...

    @property
    def maximum_period(self) -> Decimal | None: ...

    @property
    def source(self) -> Mapping[str, Any]: ...

    def amount(self, periods: Decimal, *, on: datetime.date) -> tuple[Decimal | None, Node]: ...


@dataclass(frozen=True)
class LinearScheme:
    """A simple accrual rule: ``rate_per_period`` of a reference salary per period.

    Entitled from ``required_periods``; the benefit stops growing at ``full_periods`` (the full
    benefit, and the maximum period of 883/2004 art. 56.1.a). E.g. 2% of the salary per year,
    full (80%) at 40 years, from 15 years.
    """

    unit: PeriodUnit
    reference_salary: Decimal
    rate_per_period: Decimal
    required_periods: Decimal
    full_periods: Decimal | None = None
    reference: str | None = None
    label: Label | None = None

    @property
    def maximum_period(self) -> Decimal | None:
        return self.full_periods

    @property
    def source(self) -> Mapping[str, Any]:
        return {
            "kind": "linear",
            "unit": self.unit,
            "reference_salary": str(self.reference_salary),
            "rate_per_period": str(self.rate_per_period),
            "required_periods": str(self.required_periods),
            "full_periods": str(self.full_periods) if self.full_periods is not None else None,
        }

    def amount(self, periods: Decimal, *, on: datetime.date) -> tuple[Decimal | None, Node]:
        unit = _UNIT_LABELS[self.unit]["en"]
        periods_node = Node(
            name="periods",
            kind="input",
            type="number",
            value=periods,
            unit=unit,
            label=_both("Períodos considerados", "Periods taken into account"),
        )
        required_node = Node(
            name="required_periods",
            kind="parameter",
            type="number",
            value=self.required_periods,
            unit=unit,
            label=_both("Períodos exigidos", "Periods required"),
            reference=self.reference,
        )
        holds = periods >= self.required_periods
        entitled_node = Node(
            name="entitled",
            kind="conditions",
            type="bool",
            value=holds,
            label=_both("Tiene derecho", "Is entitled"),
            reference=self.reference,
            conditions=(
                {
                    "test": "periods >= required_periods",
                    "holds": holds,
                    "left": periods,
                    "operator": ">=",
                    "right": self.required_periods,
                    "type": "number",
                    "left_name": "periods",
                    "right_name": "required_periods",
                    "reference": self.reference,
                    "label": _both("Reunir los períodos exigidos", "Have the required periods"),
                },
            ),
            children=(periods_node, required_node),
        )
        salary_node = Node(
            name="reference_salary",
            kind="parameter",
            type="number",
            value=self.reference_salary,
            label=_both("Salario de referencia", "Reference salary"),
            reference=self.reference,
        )
        rate_node = Node(
            name="rate_per_period",
            kind="parameter",
            type="number",
            value=self.rate_per_period,
            unit="fraction",
            label=_both("Porcentaje por período", "Rate per period"),
            reference=self.reference,
        )
        counted = periods
        formula = "reference_salary * rate_per_period * periods"
        children: list[Node] = [entitled_node, salary_node, rate_node, periods_node]
        if self.full_periods is not None:
            counted = min(periods, self.full_periods)
            formula = "reference_salary * rate_per_period * min(periods, full_periods)"
            children.append(
                Node(
                    name="full_periods",
                    kind="parameter",
                    type="number",
                    value=self.full_periods,
                    unit=unit,
                    label=_both(
                        "Períodos para la prestación completa",
                        "Periods for the full benefit",
                    ),
                    reference=self.reference,
                )
            )
        value = self.reference_salary * self.rate_per_period * counted if holds else None
        node = Node(
            name="benefit",
            kind="formula",
            type="number",
            value=value,
            label=self.label or _both("Prestación", "Benefit"),
            reference=self.reference,
            formula=f"if entitled then {formula} else none",
            children=tuple(children),
        )
        return value, node


class RulesPackage(Protocol):
    """The part of ``pilar.rules.Package`` the adapter uses (docs/rules-language.md)."""

    name: str
    version: str
    content_hash: str
    benefits: Mapping[str, Any]
    inputs: Mapping[str, Any]

    def evaluate(
        self,
        inputs: Mapping[str, Any],
        *,
        on: datetime.date,
        known_at: datetime.date | None = None,
        outputs: Sequence[str] | None = None,
        overrides: Any = None,
    ) -> Any: ...


class PackageScheme:
    """A rules package's benefit as an ``InstitutionScheme``.

    The periods go into ``periods_input`` (e.g. ``semanas_cotizadas``); the person's other
    inputs are fixed (``inputs``). Entitlement is the benefit's ``eligible`` variable, the amount
    its ``amount`` variable. The unit comes from the periods input's declared ``unit``.
    """

    def __init__(
        self,
        package: RulesPackage,
        *,
        benefit: str,
        periods_input: str,
        inputs: Mapping[str, Any],
        required_periods: Decimal | None = None,
        maximum_period: Decimal | None = None,
        unit: PeriodUnit | None = None,
    ) -> None:
        if benefit not in package.benefits:
            raise TotalisationError(
                "unknown_benefit",
                {
                    "package": package.name,
                    "benefit": benefit,
                    "known": ", ".join(package.benefits),
                },
            )
        variable = package.inputs.get(periods_input)
        if variable is None:
            raise TotalisationError(
                "unknown_periods_input", {"package": package.name, "name": periods_input}
            )
        if periods_input in inputs:
            raise TotalisationError("periods_input_given", {"name": periods_input})
        declared = _UNIT_ALIASES.get(str(getattr(variable, "unit", "") or "").strip().lower())
        if unit is not None and declared is not None and unit != declared:
            raise TotalisationError(
                "unit_mismatch",
                {
                    "institution": f"{package.name}.{periods_input}",
                    "expected": _unit_both(declared),
                    "what": _both("la unidad indicada", "the unit given"),
                    "got": _unit_both(unit),
                },
            )
        resolved = unit or declared
        if resolved is None:
            raise TotalisationError(
                "unit_mismatch",
                {
                    "institution": f"{package.name}.{periods_input}",
                    "expected": _both("una unidad de tiempo", "a unit of time"),
                    "what": _both("el dato del paquete", "the package's input"),
                    "got": str(getattr(variable, "unit", None)),
                },
            )
        info = package.benefits[benefit]
        self.package = package
        self.benefit = benefit
        self.eligible_variable: str = info.eligible
        self.amount_variable: str | None = info.amount
        self.benefit_label: Label | None = getattr(info, "label", None)
        self.periods_input = periods_input
        self.inputs = dict(inputs)
        self._unit: PeriodUnit = resolved
        self._required_periods = required_periods
        self._maximum_period = maximum_period

    @classmethod
    def from_package_name(
        cls, name: str, *, version: str | None = None, **settings: Any
    ) -> PackageScheme:
        from pilar.rules.package import load_package

        return cls(cast(RulesPackage, load_package(name, version)), **settings)

    @property
    def unit(self) -> PeriodUnit:
        return self._unit

    @property
    def required_periods(self) -> Decimal | None:
        return self._required_periods

    @property
    def maximum_period(self) -> Decimal | None:
        return self._maximum_period

    @property
    def source(self) -> Mapping[str, Any]:
        return {
            "kind": "package",
            "package": self.package.name,
            "version": self.package.version,
            "content_hash": self.package.content_hash,
            "benefit": self.benefit,
            "periods_input": self.periods_input,
        }

    def amount(self, periods: Decimal, *, on: datetime.date) -> tuple[Decimal | None, Node]:
        inputs = {**self.inputs, self.periods_input: periods}
        # Eligibility first: an amount formula may have no value for a person who is not
        # entitled (no table row for too few weeks), and a denial is not an error.
        result = self.package.evaluate(inputs, on=on, outputs=[self.eligible_variable])
        eligible = result.values[self.eligible_variable] is True
        value: Decimal | None = None
        if eligible and self.amount_variable is not None:
            result = self.package.evaluate(
                inputs, on=on, outputs=[self.eligible_variable, self.amount_variable]
            )
            value = Decimal(result.values[self.amount_variable])
        node = Node(
            name=f"{self.package.name}.{self.benefit}",
            kind="formula",
            type="number",
            value=value,
            label=self.benefit_label,
            formula=f"if {self.eligible_variable} then {self.amount_variable} else none",
            children=tuple(result.explanation),
        )
        return value, node


def schemes_from_agreement(
    agreement: Agreement,
    *,
    person_inputs: Mapping[str, Mapping[str, Any]] | None = None,
    institutions: Iterable[str] | None = None,
) -> dict[str, InstitutionScheme]:
    """The schemes the agreement file declares, for ``institutions`` (default: all declared).

    ``person_inputs[institution_id]`` are the person's inputs for a package scheme (everything
    but the periods). Institutions without a declared scheme are left out: the caller supplies
    theirs to ``totalise``.
    """
    person_inputs = person_inputs or {}
    wanted = list(institutions) if institutions is not None else list(agreement.institutions)
    schemes: dict[str, InstitutionScheme] = {}
    for institution_id in wanted:
        institution = agreement.institution(institution_id)
        declaration = institution.scheme
        if declaration is None:
            continue
        settings = declaration.settings
        if declaration.kind == "linear":
            schemes[institution_id] = LinearScheme(
                unit=settings["unit"],
                reference_salary=settings["reference_salary"],
                rate_per_period=settings["rate_per_period"],
                required_periods=settings["required_periods"],
                full_periods=settings["full_periods"],
                reference=settings["reference"],
                label=settings["label"],
            )
        else:
            schemes[institution_id] = PackageScheme.from_package_name(
                settings["name"],
                version=settings["version"],
                benefit=settings["benefit"],
                periods_input=settings["periods_input"],
                inputs=person_inputs.get(institution_id, {}),
                required_periods=settings["required_periods"],
                maximum_period=settings["maximum_period"],
                unit=institution.unit,
            )
    return schemes


# --------------------------------------------------------------------------------------------
# Totalisation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstitutionOutcome:
    """What one institution owes, with every intermediate figure and its explanation.

    Money is rounded to the centavo; ``pro_rata_ratio`` is exact (28 significant digits).
    ``converted_periods`` are the other institutions' periods in this institution's unit.
    """

    institution: str
    country: str
    name: Label
    unit: PeriodUnit
    own_periods: Decimal
    converted_periods: Mapping[str, Decimal]
    total_periods: Decimal
    periods_for_calculation: Decimal
    maximum_period_applied: bool
    entitled_independently: bool
    independent_benefit: Decimal | None
    independent_benefit_reason: Label | None
    entitled_after_totalisation: bool
    theoretical_amount: Decimal | None
    pro_rata_ratio: Decimal | None
    pro_rata_amount: Decimal | None
    below_minimum_payable_period: bool
    award: Decimal
    award_basis: AwardBasis
    award_reason: Label
    scheme: Mapping[str, Any]
    explanation: Node

    def to_dict(self) -> dict[str, Any]:
        def number(value: Decimal | None) -> str | None:
            return None if value is None else str(value)

        return {
            "institution": self.institution,
            "country": self.country,
            "name": dict(self.name),
            "unit": self.unit,
            "own_periods": number(self.own_periods),
            "converted_periods": {k: str(v) for k, v in self.converted_periods.items()},
            "total_periods": number(self.total_periods),
            "periods_for_calculation": number(self.periods_for_calculation),
            "maximum_period_applied": self.maximum_period_applied,
            "entitled_independently": self.entitled_independently,
            "independent_benefit": number(self.independent_benefit),
            "independent_benefit_reason": (
                dict(self.independent_benefit_reason)
                if self.independent_benefit_reason is not None
                else None
            ),
            "entitled_after_totalisation": self.entitled_after_totalisation,
            "theoretical_amount": number(self.theoretical_amount),
            "pro_rata_ratio": number(self.pro_rata_ratio),
            "pro_rata_amount": number(self.pro_rata_amount),
            "below_minimum_payable_period": self.below_minimum_payable_period,
            "award": number(self.award),
            "award_basis": self.award_basis,
            "award_reason": dict(self.award_reason),
            "scheme": dict(self.scheme),
            "explanation": self.explanation.to_dict(),
        }


@dataclass(frozen=True)
class TotalisationResult:
    agreement: str
    title: Label
    on: datetime.date
    institutions: tuple[InstitutionOutcome, ...]
    order: tuple[str, ...] | None = None
    sources: tuple[Source, ...] = field(default=())

    def __getitem__(self, institution_id: str) -> InstitutionOutcome:
        for outcome in self.institutions:
            if outcome.institution == institution_id:
                return outcome
        raise KeyError(institution_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agreement": self.agreement,
            "title": dict(self.title),
            "on": self.on.isoformat(),
            "order": list(self.order) if self.order is not None else None,
            "institutions": [outcome.to_dict() for outcome in self.institutions],
            "sources": [
                {
                    "citation": source.citation,
                    "url": source.url,
                    "verified": source.verified,
                }
                for source in self.sources
            ],
        }


PeriodsInput = Periods | Mapping[str, Any]


def _decimal(value: Any) -> Decimal:
    """An exact number: int, Decimal or a numeric string; floats and bools are refused."""
    if isinstance(value, bool | float):
        raise ValueError(value)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(value) from None
    else:
        raise ValueError(value)
    if not result.is_finite():
        raise ValueError(value)
    return result


def _unit_both(unit: PeriodUnit) -> dict[str, str]:
    return dict(_UNIT_LABELS[unit])


def _read_periods(agreement: Agreement, institution_id: str, raw: PeriodsInput) -> Decimal:
    institution = agreement.institution(institution_id)
    if isinstance(raw, Periods):
        quantity_raw: Any = raw.quantity
        unit_raw: Any = raw.unit
    elif isinstance(raw, Mapping) and set(raw) == {"quantity", "unit"}:
        quantity_raw, unit_raw = raw["quantity"], raw["unit"]
    else:
        raise TotalisationError(
            "invalid_periods",
            {
                "institution": institution_id,
                "value": repr(raw),
                "problem": _both(
                    "se espera Periods(quantity, unit) o {quantity, unit}",
                    "expected Periods(quantity, unit) or {quantity, unit}",
                ),
            },
        )
    if unit_raw not in UNITS:
        raise TotalisationError(
            "invalid_periods",
            {
                "institution": institution_id,
                "value": repr(unit_raw),
                "problem": _both(
                    f"unidad desconocida (se admiten: {', '.join(UNITS)})",
                    f"unknown unit (allowed: {', '.join(UNITS)})",
                ),
            },
        )
    try:
        quantity = _decimal(quantity_raw)
    except ValueError:
        raise TotalisationError(
            "invalid_periods",
            {
                "institution": institution_id,
                "value": repr(quantity_raw),
                "problem": _both(
                    "la cantidad debe ser un número exacto (entero, Decimal o texto; no float)",
                    "the quantity must be an exact number (int, Decimal or text; not a float)",
                ),
            },
        ) from None
    if quantity < 0:
        raise TotalisationError(
            "invalid_periods",
            {
                "institution": institution_id,
                "value": str(quantity),
                "problem": _both("no puede ser negativa", "cannot be negative"),
            },
        )
    if unit_raw != institution.unit:
        # 987/2009 art. 13.1.a: the basis of any conversion is the period as the institution
        # where it was completed communicates it, so it must come in that institution's unit.
        raise TotalisationError(
            "unit_mismatch",
            {
                "institution": institution_id,
                "expected": _unit_both(institution.unit),
                "what": _both("el período indicado", "the period given"),
                "got": _unit_both(unit_raw),
            },
            reference=agreement.conversion.reference,
        )
    return quantity


def _round(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(CENTAVO, rounding=ROUND_HALF_UP)


@dataclass
class _Assessment:
    """One institution's figures before rounding, and the nodes explaining them."""

    institution: Institution
    scheme: InstitutionScheme
    own: Decimal
    converted: dict[str, Decimal]
    total: Decimal
    independent: Decimal | None
    entitled_total: bool
    calculation_periods: Decimal
    capped: bool
    theoretical: Decimal | None
    ratio: Decimal | None
    pro_rata: Decimal | None
    below_minimum: bool
    nodes: dict[str, Node]


def totalise(
    agreement: Agreement,
    periods: Mapping[str, PeriodsInput],
    schemes: Mapping[str, InstitutionScheme],
    *,
    on: datetime.date,
    order: Sequence[str] | None = None,
) -> TotalisationResult:
    """Each institution's award under ``agreement`` for a person holding ``periods``.

    ``periods[institution_id]`` is what that institution holds, in its own unit (as
    ``Periods`` or ``{"quantity": …, "unit": …}``). They must not overlap: totalise adds them as
    given. ``schemes[institution_id]`` says how each institution that holds periods computes
    its benefit. ``order`` (institution ids, first insured to last) is needed only when every
    institution holds less than the minimum payable period and the agreement then makes the last
    one pay (883/2004 art. 57.3). Raises ``TotalisationError`` before computing anything when
    an institution is unknown, a scheme is missing, or a period is negative or malformed.
    """
    held: dict[str, Decimal] = {}
    for institution_id, raw in periods.items():
        held[institution_id] = _read_periods(agreement, institution_id, raw)
    if not held:
        raise TotalisationError("no_periods", {"agreement": agreement.name})
    for institution_id in schemes:
        agreement.institution(institution_id)
    for institution_id in held:
        if institution_id not in schemes:
            raise TotalisationError("missing_scheme", {"institution": institution_id})
        scheme = schemes[institution_id]
        institution = agreement.institutions[institution_id]
        if scheme.unit != institution.unit:
            raise TotalisationError(
                "unit_mismatch",
                {
                    "institution": institution_id,
                    "expected": _unit_both(institution.unit),
                    "what": _both("su régimen", "its scheme"),
                    "got": _unit_both(scheme.unit),
                },
            )
    if order is not None:
        for institution_id in order:
            agreement.institution(institution_id)

    with localcontext() as context:
        context.prec = 28
        assessments = {
            institution_id: _assess(agreement, institution_id, held, schemes, on=on)
            for institution_id in held
        }
        outcomes = _award(agreement, assessments, order, on=on)
    return TotalisationResult(
        agreement=agreement.name,
        title=agreement.title,
        on=on,
        institutions=tuple(outcomes),
        order=tuple(order) if order is not None else None,
        sources=agreement.sources,
    )


def _periods_node(
    name: str, institution: Institution, quantity: Decimal, reference: str | None
) -> Node:
    return Node(
        name=name,
        kind="input",
        type="number",
        value=quantity,
        unit=_UNIT_LABELS[institution.unit]["en"],
        label=_both(
            f"Períodos cumplidos ante {institution.name['es']}",
            f"Periods completed with {institution.name['en']}",
        ),
        reference=reference,
    )


def _assess(
    agreement: Agreement,
    institution_id: str,
    held: Mapping[str, Decimal],
    schemes: Mapping[str, InstitutionScheme],
    *,
    on: datetime.date,
) -> _Assessment:
    institution = agreement.institutions[institution_id]
    scheme = schemes[institution_id]
    unit_name = _UNIT_LABELS[institution.unit]["en"]
    own = held[institution_id]
    own_node = _periods_node("own_periods", institution, own, agreement.totalisation.reference)

    converted: dict[str, Decimal] = {}
    converted_nodes: list[Node] = []
    for other_id, quantity in held.items():
        if other_id == institution_id:
            continue
        other = agreement.institutions[other_id]
        value = convert(
            quantity,
            other.unit,
            institution.unit,
            source_days_per_week=other.days_per_week,
            target_days_per_week=institution.days_per_week,
        )
        converted[other_id] = value
        factor = _factor_text(
            other.unit, institution.unit, other.days_per_week, institution.days_per_week
        )
        formula = (
            f"periods.{other_id}"
            if other.unit == institution.unit and other.days_per_week == institution.days_per_week
            else f"ceil(periods.{other_id} * {factor})"
        )
        converted_nodes.append(
            Node(
                name=f"converted_periods.{other_id}",
                kind="formula",
                type="number",
                value=value,
                unit=unit_name,
                label=_both(
                    f"Períodos de {other.name['es']} en {_UNIT_LABELS[institution.unit]['es']}",
                    f"Periods with {other.name['en']} in {unit_name}",
                ),
                reference=agreement.conversion.reference,
                formula=formula,
                children=(_periods_node(f"periods.{other_id}", other, quantity, None),),
            )
        )
    total = own + sum(converted.values(), Decimal(0))
    total_node = Node(
        name="total_periods",
        kind="formula",
        type="number",
        value=total,
        unit=unit_name,
        label=_both("Períodos totalizados", "Totalised periods"),
        reference=agreement.totalisation.reference,
        formula=" + ".join(["own_periods", *(f"converted_periods.{o}" for o in converted)]),
        children=(own_node, *converted_nodes),
    )

    independent, scheme_own_node = scheme.amount(own, on=on)
    independent_node = Node(
        name="independent_benefit",
        kind="formula",
        type="number",
        value=independent,
        label=_both(
            "Prestación con los períodos propios (prestación nacional)",
            "Benefit on own periods alone (independent benefit)",
        ),
        reference=agreement.independent_benefit.reference,
        formula="benefit(own_periods)",
        children=(own_node, scheme_own_node),
    )

    # With nothing to add (a single institution, or the others hold nothing) the totalised
    # calculation is the independent one; the scheme is not asked twice.
    if total == own:
        total_amount, scheme_total_node = independent, scheme_own_node
    else:
        total_amount, scheme_total_node = scheme.amount(total, on=on)
    entitled_total = total_amount is not None

    nodes: dict[str, Node] = {"total_periods": total_node, "independent_benefit": independent_node}
    calculation_periods = total
    capped = False
    maximum = scheme.maximum_period
    if agreement.maximum_period.applies and maximum is not None and total > maximum:
        calculation_periods = maximum
        capped = True
    if capped:
        maximum_node = Node(
            name="maximum_period",
            kind="parameter",
            type="number",
            value=maximum,
            unit=unit_name,
            label=_both(
                "Período máximo para la prestación completa",
                "Maximum period for the full benefit",
            ),
            reference=agreement.maximum_period.reference,
        )
        nodes["periods_for_calculation"] = Node(
            name="periods_for_calculation",
            kind="formula",
            type="number",
            value=calculation_periods,
            unit=unit_name,
            label=_both("Períodos para el cálculo", "Periods for the calculation"),
            reference=agreement.maximum_period.reference,
            formula="min(total_periods, maximum_period)",
            children=(total_node, maximum_node),
        )
    calculation_node = nodes.get("periods_for_calculation", total_node)

    theoretical: Decimal | None = None
    ratio: Decimal | None = None
    pro_rata: Decimal | None = None
    theoretical_node: Node | None = None
    if entitled_total:
        if capped:
            theoretical, scheme_calc_node = scheme.amount(calculation_periods, on=on)
        else:
            theoretical, scheme_calc_node = total_amount, scheme_total_node
        theoretical_node = Node(
            name="theoretical_amount",
            kind="formula",
            type="number",
            value=theoretical,
            label=_both("Importe teórico", "Theoretical amount"),
            reference=agreement.theoretical_amount.reference,
            formula=f"benefit({calculation_node.name})",
            children=(calculation_node, scheme_calc_node),
        )
        nodes["theoretical_amount"] = theoretical_node
        if calculation_periods > 0:
            # 883/2004 art. 56.1.a: with the maximum period as denominator an institution never
            # pays more than its full benefit, hence the cap at one.
            ratio = min(own / calculation_periods, Decimal(1))
            ratio_formula = (
                "min(own_periods / periods_for_calculation, 1)"
                if capped
                else "own_periods / total_periods"
            )
            nodes["pro_rata_ratio"] = Node(
                name="pro_rata_ratio",
                kind="formula",
                type="number",
                value=ratio,
                unit="fraction",
                label=_both("Proporción a prorrata", "Pro-rata ratio"),
                reference=(
                    f"{agreement.pro_rata.reference}; {agreement.maximum_period.reference}"
                    if capped
                    else agreement.pro_rata.reference
                ),
                formula=ratio_formula,
                children=(own_node, calculation_node),
            )
            if theoretical is not None:
                pro_rata = theoretical * ratio
                nodes["pro_rata_amount"] = Node(
                    name="pro_rata_amount",
                    kind="formula",
                    type="number",
                    value=pro_rata,
                    label=_both("Prestación a prorrata", "Pro-rata benefit"),
                    reference=agreement.pro_rata.reference,
                    formula="theoretical_amount * pro_rata_ratio",
                    children=(theoretical_node, nodes["pro_rata_ratio"]),
                )
    else:
        nodes["entitlement_after_totalisation"] = Node(
            name="entitlement_after_totalisation",
            kind="formula",
            type="number",
            value=None,
            label=_both(
                "Prestación con los períodos totalizados (sin derecho)",
                "Benefit on totalised periods (not entitled)",
            ),
            reference=agreement.totalisation.reference,
            formula="benefit(total_periods)",
            children=(total_node, scheme_total_node),
        )

    minimum = agreement.minimum_payable_period
    below = False
    minimum_in_unit: Decimal | None = None
    if minimum is not None and institution.applies_minimum_payable_period:
        minimum_in_unit = convert(
            minimum.quantity,
            minimum.unit,
            institution.unit,
            # The minimum is a span of time, not a period communicated by a day scheme; when it
            # is stated in days it is read on the institution's own basis.
            source_days_per_week=institution.days_per_week if minimum.unit == "day" else None,
            target_days_per_week=institution.days_per_week,
        )
        below = own < minimum_in_unit and independent is None
        nodes["liable_to_pay"] = _liable_node(
            agreement, institution, own_node, own, minimum_in_unit, independent is not None, below
        )

    return _Assessment(
        institution=institution,
        scheme=scheme,
        own=own,
        converted=converted,
        total=total,
        independent=independent,
        entitled_total=entitled_total,
        calculation_periods=calculation_periods,
        capped=capped,
        theoretical=theoretical,
        ratio=ratio,
        pro_rata=pro_rata,
        below_minimum=below,
        nodes=nodes,
    )


def _liable_node(
    agreement: Agreement,
    institution: Institution,
    own_node: Node,
    own: Decimal,
    minimum_in_unit: Decimal,
    entitled_alone: bool,
    below: bool,
) -> Node:
    minimum = cast(MinimumPayablePeriod, agreement.minimum_payable_period)
    unit_name = _UNIT_LABELS[institution.unit]["en"]
    minimum_node = Node(
        name="minimum_payable_period",
        kind="parameter",
        type="number",
        value=minimum_in_unit,
        unit=unit_name,
        label=_both(
            f"Período mínimo que da lugar a pago ({minimum.quantity} "
            f"{_UNIT_LABELS[minimum.unit]['es']})",
            f"Minimum payable period ({minimum.quantity} {_UNIT_LABELS[minimum.unit]['en']})",
        ),
        reference=minimum.reference,
    )
    # Default logic: an institution pays (the default case) unless it holds less than the
    # minimum and the person is not entitled on those periods alone (the exception).
    return Node(
        name="liable_to_pay",
        kind="cases",
        type="bool",
        value=not below,
        label=_both("La institución está obligada a pagar", "The institution is bound to pay"),
        reference=minimum.reference,
        formula=(
            "if own_periods < minimum_payable_period and not entitled_independently "
            "then false else true"
        ),
        case=(
            {
                "priority": 1,
                "when": "own_periods < minimum_payable_period and not entitled_independently",
                "reference": minimum.reference,
            }
            if below
            else {"priority": 0, "when": "true", "reference": minimum.reference}
        ),
        children=(
            own_node,
            minimum_node,
            Node(
                name="entitled_independently",
                kind="formula",
                type="bool",
                value=entitled_alone,
                label=_both(
                    "Tiene derecho con los períodos propios",
                    "Entitled on own periods alone",
                ),
                reference=agreement.independent_benefit.reference,
                formula="independent_benefit is not none",
            ),
        ),
    )


_REASONS: dict[str, dict[str, str]] = {
    "independent": _both(
        "Se paga la prestación nacional (con los períodos propios).",
        "The independent benefit (on own periods) is paid.",
    ),
    "independent_higher": _both(
        "Se paga la prestación nacional: es mayor que la prestación a prorrata.",
        "The independent benefit is paid: it is higher than the pro-rata benefit.",
    ),
    "pro_rata": _both(
        "Se paga la prestación a prorrata.",
        "The pro-rata benefit is paid.",
    ),
    "pro_rata_higher": _both(
        "Se paga la prestación a prorrata: es mayor que la prestación nacional.",
        "The pro-rata benefit is paid: it is higher than the independent benefit.",
    ),
    "not_entitled": _both(
        "Sin derecho: no se reúnen los requisitos ni con los períodos totalizados.",
        "Not entitled: the conditions are not met even with the totalised periods.",
    ),
    "below_minimum_period": _both(
        "No paga: tiene menos del período mínimo y sin derecho con esos períodos solos; las "
        "demás instituciones los cuentan en la totalización.",
        "Pays nothing: it holds less than the minimum period and those periods alone give no "
        "entitlement; the other institutions count them in the totalisation.",
    ),
    "last_institution": _both(
        "Paga como si todos los períodos se hubieran cumplido bajo su legislación: ninguna "
        "institución tenía el período mínimo y es la última cuyas condiciones se cumplen.",
        "Pays as if all periods had been completed under its legislation: no institution "
        "held the minimum period and it is the last one whose conditions are met.",
    ),
}

_NOT_ENTITLED_ALONE = _both(
    "Sin derecho con los períodos propios solamente.",
    "Not entitled on own periods alone.",
)


def _award(
    agreement: Agreement,
    assessments: Mapping[str, _Assessment],
    order: Sequence[str] | None,
    *,
    on: datetime.date,
) -> list[InstitutionOutcome]:
    minimum = agreement.minimum_payable_period
    last_payer: str | None = None
    last_amount: Decimal | None = None
    last_node: Node | None = None
    all_below = all(a.below_minimum for a in assessments.values())
    if all_below and minimum is not None and minimum.when_all_below == "last_entitled":
        if order is None and len(assessments) == 1:
            order = list(assessments)
        missing = [i for i in assessments if order is None or i not in order]
        if order is None or missing:
            raise TotalisationError(
                "order_required",
                {"missing": ", ".join(missing)},
                reference=minimum.when_all_below_reference,
            )
        # 883/2004 art. 57.3: the last state whose conditions are met pays, as if every period
        # (totalised, in its unit) had been completed under its legislation.
        for institution_id in reversed([i for i in order if i in assessments]):
            assessment = assessments[institution_id]
            amount, node = assessment.scheme.amount(assessment.total, on=on)
            if amount is not None:
                last_payer, last_amount, last_node = institution_id, amount, node
                break

    outcomes: list[InstitutionOutcome] = []
    for institution_id, a in assessments.items():
        award: Decimal
        basis: AwardBasis
        reason_key: str
        formula: str
        reference = agreement.choose_higher.reference if agreement.choose_higher.applies else None
        children: list[Node] = [a.nodes["independent_benefit"]]
        children.extend(
            a.nodes[key]
            for key in ("theoretical_amount", "pro_rata_amount", "entitlement_after_totalisation")
            if key in a.nodes
        )
        if "liable_to_pay" in a.nodes:
            children.append(a.nodes["liable_to_pay"])
        if institution_id == last_payer:
            award, basis, reason_key = (
                cast(Decimal, last_amount),
                "last_institution",
                "last_institution",
            )
            formula = "benefit(total_periods)"
            reference = cast(MinimumPayablePeriod, minimum).when_all_below_reference
            children.append(cast(Node, last_node))
        elif a.below_minimum:
            award, basis, reason_key = Decimal(0), "below_minimum_period", "below_minimum_period"
            formula = "0"
            reference = cast(MinimumPayablePeriod, minimum).reference
        elif a.independent is None and a.pro_rata is None:
            award, basis, reason_key = Decimal(0), "not_entitled", "not_entitled"
            formula = "0"
            reference = agreement.totalisation.reference
        elif agreement.choose_higher.applies:
            formula = "max(independent_benefit, pro_rata_amount)"
            independent = a.independent if a.independent is not None else Decimal(0)
            pro_rata = a.pro_rata if a.pro_rata is not None else Decimal(0)
            if a.independent is not None and independent >= pro_rata:
                award, basis = independent, "independent"
                reason_key = "independent_higher" if a.pro_rata is not None else "independent"
            else:
                award, basis = pro_rata, "pro_rata"
                reason_key = "pro_rata_higher" if a.independent is not None else "pro_rata"
        else:
            formula = "if entitled_independently then independent_benefit else pro_rata_amount"
            reference = agreement.independent_benefit.reference
            if a.independent is not None:
                award, basis, reason_key = a.independent, "independent", "independent"
            else:
                award, basis, reason_key = cast(Decimal, a.pro_rata), "pro_rata", "pro_rata"
        rounded_award = cast(Decimal, _round(award))
        explanation = Node(
            name="award",
            kind="formula",
            type="number",
            value=rounded_award,
            label=_both(
                f"Prestación que paga {a.institution.name['es']}",
                f"Benefit paid by {a.institution.name['en']}",
            ),
            reference=reference,
            formula=f"round({formula}, 2)",
            children=(a.nodes["total_periods"], *children),
        )
        outcomes.append(
            InstitutionOutcome(
                institution=institution_id,
                country=a.institution.country,
                name=a.institution.name,
                unit=a.institution.unit,
                own_periods=a.own,
                converted_periods=MappingProxyType(dict(a.converted)),
                total_periods=a.total,
                periods_for_calculation=a.calculation_periods,
                maximum_period_applied=a.capped,
                entitled_independently=a.independent is not None,
                independent_benefit=_round(a.independent),
                independent_benefit_reason=None
                if a.independent is not None
                else _NOT_ENTITLED_ALONE,
                entitled_after_totalisation=a.entitled_total,
                theoretical_amount=_round(a.theoretical),
                pro_rata_ratio=a.ratio,
                pro_rata_amount=_round(a.pro_rata),
                below_minimum_payable_period=a.below_minimum,
                award=rounded_award,
                award_basis=basis,
                award_reason=MappingProxyType(_REASONS[reason_key]),
                scheme=MappingProxyType(dict(a.scheme.source)),
                explanation=explanation,
            )
        )
    return outcomes
