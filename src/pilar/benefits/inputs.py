"""Gathering a scheme package's inputs for one person at a claim date.

A package names its inputs (``variables.yaml``: ``input: true``); adjudication supplies them from
three places, and every value carries its source, which the decision stores:

``registry``
    The person's record: age from the birth date (``edad``), an open spouse or partner tie
    (``conyuge``), children under 16 (``hijos_dependientes``, with the students the claim
    declares).
``work_history``
    Weeks of contribution (``semanas_cotizadas``), the average daily SBC of the last 250 weeks
    (``salario_promedio_diario``; ``salario_promedio_uma`` is the same in UMAs), whether the
    person contributed before 1 July 1997 (``cotizo_antes_1997``), and whether an employment is
    still open at the claim date (``tiene_empleo_vigente``).
``declared``
    Every other input: facts the claimant declares on the form (dependent parents, residence,
    nationality, an indigenous municipality, …), read from the claim's ``declared`` JSON.

An input neither derived nor declared is **missing**; an optional input the package gives a
default for is filled with it (source ``default``). Adjudication refuses a claim with anything
missing and lists every missing datum at once: a claim is never decided on incomplete inputs.

The work-history inputs are computed set-based: four queries (contribution records in force,
employments, their salary histories, the wage parameters) and one pass over date intervals in
memory, however long the career.
"""

from __future__ import annotations

import bisect
import datetime
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from pilar.contributions import weeks as weeks_rules
from pilar.contributions.models import ContributionRecord, Parameter
from pilar.core.errors import FieldErrors
from pilar.registry.models import (
    INVERSE_RELATION,
    Employment,
    EmploymentSalary,
    FamilyTie,
    Person,
    Relation,
)

# --- sources and what is derived ----------------------------------------------------------------

REGISTRY = "registry"
WORK_HISTORY = "work_history"
DECLARED = "declared"
DEFAULT = "default"
SOURCES = (REGISTRY, WORK_HISTORY, DECLARED, DEFAULT)

# The inputs Pilar derives itself, by the names the shipped packages use. A package input not in
# this list must be declared on the claim.
DERIVED_INPUTS: dict[str, str] = {
    "edad": REGISTRY,
    "conyuge": REGISTRY,
    "hijos_dependientes": REGISTRY,
    "semanas_cotizadas": WORK_HISTORY,
    "salario_promedio_diario": WORK_HISTORY,
    "salario_promedio_uma": WORK_HISTORY,
    "cotizo_antes_1997": WORK_HISTORY,
    "tiene_empleo_vigente": WORK_HISTORY,
}

# Declared facts that feed a derived input rather than being a package input themselves.
STUDENTS = "hijos_estudiantes"
STUDENTS_LABEL = {
    "es": "Hijos de 16 a 24 años que estudian",
    "en": "Children aged 16 to 24 in education",
}
# Declared counts and their upper bounds (None: no bound but the registry's, checked apart).
DECLARED_COUNTS: dict[str, int | None] = {"padres_dependientes": 2, STUDENTS: None}

# The 1997 law applies to persons insured from 1 July 1997; who contributed before may choose
# the 1973 law (LSS 1997, third transitory article).
LSS_1997_START = datetime.date(1997, 7, 1)
# LSS 1973 art. 167 and LSS 1997 art. 162 average the last 250 weeks of contribution.
AVERAGE_WEEKS = 250
AVERAGE_DAYS = AVERAGE_WEEKS * weeks_rules.DAYS_PER_WEEK
CHILD_AGE_LIMIT = 16
STUDENT_AGE_LIMIT = 25
CENTAVO = Decimal("0.01")


@dataclass(frozen=True)
class InputSpec:
    """What a package says about one of its inputs."""

    name: str
    type: str  # number | bool | date | text
    label: Mapping[str, str]
    unit: str | None = None
    optional: bool = False
    default: Any = None

    @property
    def derived(self) -> bool:
        return self.name in DERIVED_INPUTS


def input_specs(package: Any) -> dict[str, InputSpec]:
    """The package's inputs as ``InputSpec``s, in the package's order."""
    specs: dict[str, InputSpec] = {}
    for name, variable in package.inputs.items():
        specs[name] = InputSpec(
            name=name,
            type=str(getattr(variable, "type", "number")),
            label=dict(getattr(variable, "label", None) or {"es": name, "en": name}),
            unit=getattr(variable, "unit", None),
            optional=bool(getattr(variable, "optional", False)),
            default=getattr(variable, "default", None),
        )
    return specs


def declared_specs(specs: Mapping[str, InputSpec]) -> dict[str, InputSpec]:
    """What the claim form must ask for: the inputs Pilar does not derive, plus the number of
    children in education when the package counts dependent children."""
    asked = {name: spec for name, spec in specs.items() if not spec.derived}
    if "hijos_dependientes" in specs:
        asked[STUDENTS] = InputSpec(
            name=STUDENTS, type="number", label=STUDENTS_LABEL, unit=None, optional=True, default=0
        )
    return asked


def pick(label: Mapping[str, str] | None, language: str | None) -> str:
    """A ``{es, en}`` label in ``language`` (Spanish unless English is asked for)."""
    if not label:
        return ""
    key = "en" if (language or "").startswith("en") else "es"
    return str(label.get(key) or label.get("es") or label.get("en") or "")


# --- declared facts -----------------------------------------------------------------------------


def clean_declared(
    declared: Mapping[str, Any] | None, specs: Mapping[str, InputSpec], errors: FieldErrors
) -> dict[str, Any]:
    """The declared facts checked against what the package asks for, as JSON-able values.

    Unknown names, derived inputs (taken from the registry, never declared: correct the registry
    instead) and values of the wrong type are field errors (``declared.<name>``). A ``None``
    value means not declared. Numbers are stored as integers when whole, else as decimal text.
    """
    if declared is None:
        return {}
    if not isinstance(declared, Mapping):
        errors.add("declared", "declared.invalid", _("The declared facts must be an object."))
        return {}
    asked = declared_specs(specs)
    cleaned: dict[str, Any] = {}
    for name, value in declared.items():
        field_name = f"declared.{name}"
        if name in DERIVED_INPUTS and name in specs:
            errors.add(
                field_name,
                "declared.derived",
                _("This is taken from the registry and the work history; it cannot be declared."),
            )
            continue
        spec = asked.get(name)
        if spec is None:
            errors.add(field_name, "declared.unknown", _("This claim does not ask for this fact."))
            continue
        if value is None or value == "":
            continue
        parsed = _parse_declared(spec, value)
        if parsed is None:
            errors.add(field_name, "declared.invalid_type", _type_message(spec.type))
            continue
        if name in DECLARED_COUNTS:
            bound = DECLARED_COUNTS[name]
            if not isinstance(parsed, int) or parsed < 0 or (bound is not None and parsed > bound):
                errors.add(
                    field_name,
                    "declared.out_of_range",
                    _("Give a whole number from 0 to %(max)s.") % {"max": bound}
                    if bound is not None
                    else _("Give a whole number, 0 or more."),
                )
                continue
        elif spec.type == "number" and isinstance(parsed, int | Decimal) and parsed < 0:
            errors.add(field_name, "declared.out_of_range", _("The number cannot be negative."))
            continue
        cleaned[name] = parsed.isoformat() if isinstance(parsed, datetime.date) else parsed
        if isinstance(parsed, Decimal):
            cleaned[name] = str(parsed)
    return cleaned


def _type_message(type_name: str) -> Any:
    return {
        "bool": _("Answer yes or no (true or false)."),
        "number": _("Give a number."),
        "date": _("Give a date as YYYY-MM-DD."),
        "text": _("Give a text of at most 200 characters."),
    }.get(type_name, _("This value is not valid."))


def _parse_declared(
    spec: InputSpec, value: Any
) -> int | Decimal | bool | datetime.date | str | None:
    if spec.type == "bool":
        return value if isinstance(value, bool) else None
    if spec.type == "number":
        if isinstance(value, bool):
            return None
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            return None
        if not number.is_finite():
            return None
        return int(number) if number == number.to_integral_value() else number
    if spec.type == "date":
        if isinstance(value, datetime.date):
            return value
        try:
            return datetime.date.fromisoformat(str(value))
        except ValueError:
            return None
    if isinstance(value, str) and len(value) <= 200:
        return value
    return None


def engine_value(spec_type: str, stored: Any) -> Any:
    """A stored (JSON) value as the engine takes it: numbers as Decimal, dates as dates."""
    if stored is None:
        return None
    if spec_type == "number" and not isinstance(stored, bool):
        return Decimal(str(stored))
    if spec_type == "date" and isinstance(stored, str):
        return datetime.date.fromisoformat(stored)
    return stored


# --- the gathered inputs ------------------------------------------------------------------------


@dataclass(frozen=True)
class InputValue:
    name: str
    value: Any
    source: str
    label: Mapping[str, str]
    detail: Mapping[str, Any] = field(default_factory=dict)
    # The package's type and unit of the input, kept with the value so a stored decision can
    # be shown ("399 weeks", "$300.00") without the package at hand.
    type: str | None = None
    unit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": _jsonable(self.value),
            "source": self.source,
            "label": dict(self.label),
            "type": self.type,
            "unit": self.unit,
            "detail": {key: _jsonable(value) for key, value in self.detail.items()},
        }


@dataclass(frozen=True)
class MissingInput:
    """A datum adjudication needs and does not have, and why."""

    name: str
    label: Mapping[str, str]
    reason: str  # not_declared | no_salary | students_not_declared | students_exceed_registered

    def message(self, language: str | None = None) -> str:
        return f"{pick(self.label, language)}: {reason_text(self.reason)}"

    def to_dict(self, language: str | None = None) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": dict(self.label),
            "reason": self.reason,
            "message": self.message(language),
        }


def reason_text(reason: str) -> str:
    texts = {
        "not_declared": _("not declared on the claim"),
        "no_salary": _("no salary is recorded for the days of contribution"),
        "no_uma": _("the UMA in force on the claim date is not recorded"),
        "students_not_declared": _(
            "the person has registered children aged 16 to 24: say how many are in education"
        ),
        "students_exceed_registered": _(
            "more children in education are declared than the registry holds aged 16 to 24"
        ),
    }
    return str(texts.get(reason, reason))


@dataclass(frozen=True)
class GatheredInputs:
    """What adjudication would use for a person at a claim date: each input's value and
    source, and what is missing."""

    person_id: int
    claim_date: datetime.date
    values: dict[str, InputValue]
    missing: list[MissingInput]
    specs: Mapping[str, InputSpec] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing

    def engine_inputs(self) -> dict[str, Any]:
        """``{name: value}`` for ``Package.evaluate``: numbers as Decimal."""
        return {
            name: engine_value(self.specs[name].type if name in self.specs else "", item.value)
            for name, item in self.values.items()
            if name in self.specs
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON a decision stores: ``{input: {value, source, label, detail}}``."""
        return {name: item.to_dict() for name, item in self.values.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def gather_inputs(
    *,
    person: Person,
    claim_date: datetime.date,
    declared: Mapping[str, Any],
    specs: Mapping[str, InputSpec],
) -> GatheredInputs:
    """Every input of ``specs`` for ``person`` at ``claim_date``, from the registry, the work
    history and the (already cleaned) ``declared`` facts. The caller has checked access."""
    values: dict[str, InputValue] = {}
    missing: list[MissingInput] = []
    wanted = set(specs)

    def put(name: str, value: Any, source: str, **detail: Any) -> None:
        spec = specs[name]
        values[name] = InputValue(name, value, source, spec.label, detail, spec.type, spec.unit)

    if "edad" in wanted:
        put("edad", age_on(person.birth_date, claim_date), REGISTRY, birth_date=person.birth_date)

    if wanted & {"conyuge", "hijos_dependientes"}:
        family = family_on(person.pk, claim_date)
        if "conyuge" in wanted:
            put("conyuge", bool(family.spouse_ids), REGISTRY, relative_ids=family.spouse_ids)
        if "hijos_dependientes" in wanted:
            students = declared.get(STUDENTS)
            if students is None and family.children_16_to_24:
                missing.append(
                    MissingInput(STUDENTS, STUDENTS_LABEL, "students_not_declared"),
                )
            elif students is not None and int(students) > len(family.children_16_to_24):
                missing.append(
                    MissingInput(STUDENTS, STUDENTS_LABEL, "students_exceed_registered"),
                )
            else:
                count = int(students or 0)
                put(
                    "hijos_dependientes",
                    len(family.children_under_16) + count,
                    REGISTRY,
                    under_16_ids=family.children_under_16,
                    students_declared=count,
                    registered_16_to_24_ids=family.children_16_to_24,
                )

    work_inputs = wanted & {
        name for name, source in DERIVED_INPUTS.items() if source == WORK_HISTORY
    }
    if work_inputs:
        summary = work_history_summary(person.pk, claim_date)
        if "semanas_cotizadas" in wanted:
            put(
                "semanas_cotizadas",
                summary.weeks,
                WORK_HISTORY,
                counted_days=summary.counted_days,
                days_from_records=summary.days_from_records,
                days_from_employments_only=summary.counted_days - summary.days_from_records,
                first_day=summary.first_day,
                last_day=summary.last_day,
            )
        if "cotizo_antes_1997" in wanted:
            put(
                "cotizo_antes_1997",
                summary.first_day is not None and summary.first_day < LSS_1997_START,
                WORK_HISTORY,
                first_day=summary.first_day,
            )
        if "tiene_empleo_vigente" in wanted:
            put(
                "tiene_empleo_vigente",
                bool(summary.open_employment_ids),
                WORK_HISTORY,
                employment_ids=summary.open_employment_ids,
            )
        if wanted & {"salario_promedio_diario", "salario_promedio_uma"}:
            average = summary.average
            salary_detail = {
                "window_from": average.window_from,
                "window_to": average.window_to,
                "days": average.days,
                "days_without_salary": average.days_without_salary,
                "capped_days": average.capped_days,
                "uncapped_days": average.uncapped_days,
                "cap_rule": CAP_RULE,
            }
            if average.days and average.value is None:
                for name in sorted(wanted & {"salario_promedio_diario", "salario_promedio_uma"}):
                    missing.append(MissingInput(name, specs[name].label, "no_salary"))
            else:
                daily = average.value if average.value is not None else Decimal("0.00")
                if "salario_promedio_diario" in wanted:
                    put("salario_promedio_diario", daily, WORK_HISTORY, **salary_detail)
                if "salario_promedio_uma" in wanted:
                    uma = _parameter_on("uma_daily", claim_date)
                    if uma is None:
                        missing.append(
                            MissingInput(
                                "salario_promedio_uma",
                                specs["salario_promedio_uma"].label,
                                "no_uma",
                            )
                        )
                    else:
                        put(
                            "salario_promedio_uma",
                            (daily / uma).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
                            WORK_HISTORY,
                            uma=uma,
                            salario_promedio_diario=daily,
                            **salary_detail,
                        )

    for name, spec in specs.items():
        if spec.derived:
            continue
        if name in declared and declared[name] is not None:
            values[name] = InputValue(
                name, declared[name], DECLARED, spec.label, type=spec.type, unit=spec.unit
            )
        elif spec.optional:
            values[name] = InputValue(
                name, _jsonable(spec.default), DEFAULT, spec.label, type=spec.type, unit=spec.unit
            )
        else:
            missing.append(MissingInput(name, spec.label, "not_declared"))

    ordered = {name: values[name] for name in specs if name in values}
    return GatheredInputs(
        person_id=person.pk,
        claim_date=claim_date,
        values=ordered,
        missing=missing,
        specs=dict(specs),
    )


# --- registry: age and family -------------------------------------------------------------------


def age_on(birth_date: datetime.date, on: datetime.date) -> int:
    """Whole years completed on ``on`` (a person born on 29 February turns a year older on
    1 March in common years)."""
    years = on.year - birth_date.year
    if (on.month, on.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def _years_before(on: datetime.date, years: int) -> datetime.date:
    try:
        return on.replace(year=on.year - years)
    except ValueError:  # 29 February in a common year
        return on.replace(year=on.year - years, day=28)


@dataclass(frozen=True)
class Family:
    spouse_ids: list[int]
    children_under_16: list[int]
    children_16_to_24: list[int]


def family_on(person_id: int, on: datetime.date) -> Family:
    """The person's spouse or partner and children at ``on``, from the registry's ties (one
    query: ties are stored once, from either side). Relatives who had died by ``on``, or were
    not yet born, are not dependants; a spouse tie counts while it is open at ``on``."""
    ties = FamilyTie.objects.filter(Q(person_id=person_id) | Q(relative_id=person_id)).values_list(
        "person_id",
        "relative_id",
        "relation",
        "start_date",
        "end_date",
        "person__birth_date",
        "person__death_date",
        "relative__birth_date",
        "relative__death_date",
    )
    spouses: set[int] = set()
    children: dict[int, datetime.date] = {}
    for (
        tie_person,
        relative,
        relation,
        start,
        end,
        person_born,
        person_died,
        relative_born,
        relative_died,
    ) in ties:
        mine = tie_person == person_id
        other, born, died = (
            (relative, relative_born, relative_died)
            if mine
            else (tie_person, person_born, person_died)
        )
        if born > on or (died is not None and died <= on):
            continue
        # Seen from the person's side: (Ana, Luis, child) means Luis is Ana's child; stored the
        # other way round, (Luis, Ana, parent) means the same.
        relation_seen = relation if mine else INVERSE_RELATION.get(relation, relation)
        if relation_seen in (Relation.SPOUSE, Relation.PARTNER):
            if (start is None or start <= on) and (end is None or end >= on):
                spouses.add(other)
        elif relation_seen == Relation.CHILD:
            children[other] = born
    under_16_born_after = _years_before(on, CHILD_AGE_LIMIT)
    under_25_born_after = _years_before(on, STUDENT_AGE_LIMIT)
    return Family(
        spouse_ids=sorted(spouses),
        children_under_16=sorted(c for c, born in children.items() if born > under_16_born_after),
        children_16_to_24=sorted(
            c for c, born in children.items() if under_25_born_after < born <= under_16_born_after
        ),
    )


# --- work history -------------------------------------------------------------------------------

CAP_RULE = (
    "LSS 1973 art. 33 (10 x SM, IVCM) before 1997-07-01; LSS 1997 transitory art. 25 "
    "(15 x SM + 1 each year to 25 in 2007); LSS art. 28 (25 x SM, 25 x UMA from 2016-01-28)"
)


@dataclass(frozen=True)
class Piece:
    """Consecutive days (``start``–``end`` inclusive) on which one employer's job counts, with
    the daily SBC in force (None when no salary is recorded for them)."""

    start: datetime.date
    end: datetime.date
    employer_id: int
    daily_salary: Decimal | None
    from_record: bool

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class Average:
    value: Decimal | None
    days: int
    days_without_salary: int
    capped_days: int
    uncapped_days: int
    window_from: datetime.date | None
    window_to: datetime.date | None


@dataclass(frozen=True)
class WorkHistorySummary:
    counted_days: int
    days_from_records: int
    first_day: datetime.date | None
    last_day: datetime.date | None
    open_employment_ids: list[int]
    average: Average

    @property
    def weeks(self) -> int:
        return weeks_rules.weeks(self.counted_days)


def _read_work_history(
    person_id: int, on: datetime.date
) -> tuple[list[Piece], list[tuple[int, int, datetime.date, datetime.date | None]]]:
    """The person's work pieces up to ``on`` (records in force, employment periods, salary
    histories) and the employment rows they were built from."""
    records = list(
        ContributionRecord.objects.filter(
            person_id=person_id, superseded_at__isnull=True, covered_from__lte=on
        ).values_list(
            "employer_id",
            "period",
            "covered_from",
            "covered_to",
            "days",
            "absence_days",
            "daily_salary",
        )
    )
    employments = list(
        Employment.objects.filter(person_id=person_id, start_date__lte=on).values_list(
            "pk", "employer_id", "start_date", "end_date"
        )
    )
    salaries: dict[int, list[tuple[datetime.date, Decimal]]] = defaultdict(list)
    for employment_id, effective_from, daily_salary in (
        EmploymentSalary.objects.filter(employment__person_id=person_id)
        .order_by("employment_id", "effective_from")
        .values_list("employment_id", "effective_from", "daily_salary")
    ):
        salaries[employment_id].append((effective_from, daily_salary))
    return work_pieces(records, employments, salaries, on=on), employments


def person_work_pieces(person_id: int, on: datetime.date) -> list[Piece]:
    """The counted days of the person's career up to ``on`` with their SBC: what the weeks of
    contribution and the average salary are computed from, and what the insurance-periods
    document sent to other institutions (P5000) lists."""
    return _read_work_history(person_id, on)[0]


def work_history_summary(person_id: int, on: datetime.date) -> WorkHistorySummary:
    """Weeks, first day, open employments and the 250-week average at ``on``.

    Two sources are combined because neither is the whole history. Contribution records exist
    only for months declared through Pilar; the years before (decades, for the persons who claim
    pensions now) are the employment periods migrated into the registry, with their salary
    histories. For a month and employer with a posted record, the record wins (it knows the
    days actually paid, less unpaid absences); the employment period fills every other day it
    was open. Days with several employers count once toward weeks (``weeks.counted_days``);
    their salaries add up for the average.
    """
    pieces, employments = _read_work_history(person_id, on)
    open_ids = sorted(
        pk
        for pk, _employer, start, end in employments
        if start <= on and (end is None or end >= on)
    )
    all_days = weeks_rules.counted_days(_spans(pieces))
    record_days = weeks_rules.counted_days(_spans(p for p in pieces if p.from_record))
    return WorkHistorySummary(
        counted_days=all_days,
        days_from_records=record_days,
        first_day=min((p.start for p in pieces), default=None),
        last_day=max((p.end for p in pieces), default=None),
        open_employment_ids=open_ids,
        average=average_salary(pieces, CapSchedule.load()),
    )


def _spans(pieces: Iterable[Piece]) -> list[weeks_rules.Span]:
    return [weeks_rules.Span(p.start, p.end, p.days) for p in pieces]


def _month_end(month: datetime.date) -> datetime.date:
    following = (month.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return following - datetime.timedelta(days=1)


def _subtract(
    interval: tuple[datetime.date, datetime.date],
    holes: Sequence[tuple[datetime.date, datetime.date]],
) -> list[tuple[datetime.date, datetime.date]]:
    """``interval`` less the sorted, disjoint ``holes``."""
    start, end = interval
    left: list[tuple[datetime.date, datetime.date]] = []
    cursor = start
    for hole_start, hole_end in holes:
        if hole_end < cursor or hole_start > end:
            continue
        if hole_start > cursor:
            left.append((cursor, hole_start - datetime.timedelta(days=1)))
        cursor = max(cursor, hole_end + datetime.timedelta(days=1))
        if cursor > end:
            break
    if cursor <= end:
        left.append((cursor, end))
    return left


def work_pieces(
    records: Iterable[tuple[int, datetime.date, datetime.date, datetime.date, int, int, Decimal]],
    employments: Iterable[tuple[int, int, datetime.date, datetime.date | None]],
    salaries: Mapping[int, Sequence[tuple[datetime.date, Decimal]]],
    *,
    on: datetime.date,
) -> list[Piece]:
    """The counted days of a career up to ``on`` as pieces with their SBC.

    ``records`` are (employer, period, covered_from, covered_to, days, absence_days, SBC) of the
    records in force; ``employments`` (id, employer, start, end); ``salaries`` each
    employment's (effective_from, SBC) in date order. Pure: no database."""
    pieces: list[Piece] = []
    declared_months: dict[int, set[datetime.date]] = defaultdict(set)
    for employer_id, period, covered_from, covered_to, days, absence_days, sbc in records:
        declared_months[employer_id].add(period)
        counted = weeks_rules.Span(covered_from, covered_to, days, absence_days).counted()
        if counted is None or counted[0] > on:
            continue
        pieces.append(Piece(counted[0], min(counted[1], on), employer_id, sbc, True))
    for employment_id, employer_id, start, end in employments:
        last = min(end or on, on)
        if last < start:
            continue
        holes = sorted((month, _month_end(month)) for month in declared_months.get(employer_id, ()))
        history = salaries.get(employment_id, ())
        changes = [effective for effective, _salary in history]
        for part_start, part_end in _subtract((start, last), holes):
            # Split at each salary change inside the part: the SBC in force on each day.
            cuts = [effective for effective in changes if part_start < effective <= part_end]
            bounds = [part_start, *cuts]
            for index, piece_start in enumerate(bounds):
                piece_end = (
                    bounds[index + 1] - datetime.timedelta(days=1)
                    if index + 1 < len(bounds)
                    else part_end
                )
                position = bisect.bisect_right(changes, piece_start) - 1
                salary = history[position][1] if position >= 0 else None
                pieces.append(Piece(piece_start, piece_end, employer_id, salary, False))
    pieces.sort(key=lambda p: (p.start, p.end, p.employer_id))
    return pieces


@dataclass(frozen=True)
class CapSchedule:
    """The upper limit of the daily SBC on any day, for the branch that pays old-age pensions.

    The average salary of a pension is an average of what was contributed on, and no
    contribution was ever paid above the cap: when several employers' SBCs add up past it on a
    day, that day counts at the cap. The cap of the pension branch in force on each day:

    - before 1 July 1997, 10 times the general minimum wage of the Distrito Federal (LSS 1973
      art. 33, the limit of the invalidez, vejez, cesantía y muerte branch);
    - from 1 July 1997, 15 minimum wages, one more each 1 July, 25 from 1 July 2007 (LSS 1997,
      25th transitory article, for the retiro, cesantía y vejez branch);
    - from 28 January 2016, 25 UMA (LSS art. 28 read with the de-indexation decree; the store's
      ``sbc_cap_uma`` and ``uma_daily``).

    NEEDS VERIFICATION against the DOF, and against the Supreme Court's case law on whether a
    1973-law pension caps the average at 10 or at 25 minimum wages: the imss_1973 package does
    not cap the average itself (see its package.yaml), so this is the only cap applied.
    """

    minimum_wage: tuple[tuple[datetime.date, Decimal], ...]
    uma: tuple[tuple[datetime.date, Decimal], ...]
    uma_multiple: tuple[tuple[datetime.date, Decimal], ...]

    UMA_START = datetime.date(2016, 1, 28)
    PHASE_END = datetime.date(2007, 7, 1)

    @classmethod
    def load(cls) -> CapSchedule:
        series: dict[str, list[tuple[datetime.date, Decimal]]] = defaultdict(list)
        for code, valid_from, value in (
            Parameter.objects.filter(code__in=["minimum_wage_daily", "uma_daily", "sbc_cap_uma"])
            .order_by("code", "valid_from")
            .values_list("code", "valid_from", "value")
        ):
            series[code].append((valid_from, value))
        return cls(
            minimum_wage=tuple(series["minimum_wage_daily"]),
            uma=tuple(series["uma_daily"]),
            uma_multiple=tuple(series["sbc_cap_uma"]),
        )

    @staticmethod
    def _value(
        series: Sequence[tuple[datetime.date, Decimal]], on: datetime.date
    ) -> Decimal | None:
        position = bisect.bisect_right([start for start, _ in series], on) - 1
        return series[position][1] if position >= 0 else None

    def cap_on(self, on: datetime.date) -> Decimal | None:
        """The cap on ``on`` in pesos a day, or None when the wage it is a multiple of is not
        recorded for that day."""
        if on >= self.UMA_START:
            uma = self._value(self.uma, on)
            multiple = self._value(self.uma_multiple, on)
            return None if uma is None or multiple is None else uma * multiple
        wage = self._value(self.minimum_wage, on)
        if wage is None:
            return None
        if on >= self.PHASE_END:
            multiple = Decimal(25)
        elif on >= LSS_1997_START:
            years = on.year - 1997 - (1 if (on.month, on.day) < (7, 1) else 0)
            multiple = Decimal(15 + years)
        else:
            multiple = Decimal(10)
        return wage * multiple

    def change_days(self) -> list[datetime.date]:
        """Every day the cap can change on (so a stretch between two of them has one cap)."""
        days = {start for start, _ in (*self.minimum_wage, *self.uma, *self.uma_multiple)}
        days.update(datetime.date(year, 7, 1) for year in range(1997, 2008))
        days.add(self.UMA_START)
        return sorted(days)


def average_salary(pieces: Sequence[Piece], caps: CapSchedule) -> Average:
    """The average daily SBC over the last 250 weeks (1,750 days) of contribution.

    Walks the career backwards in stretches over which the set of jobs and the cap are
    constant; each day's SBC is the sum of its jobs' SBCs (LSS 1997 art. 33: the salaries of
    several employers add up), capped (``CapSchedule``). Days on which no job has a recorded
    salary stay in the window (they are weeks of contribution) but out of the average, and are
    counted in ``days_without_salary``. With fewer than 1,750 days, the average is over the days
    there are."""
    if not pieces:
        return Average(None, 0, 0, 0, 0, None, None)
    starts: dict[datetime.date, list[Piece]] = defaultdict(list)
    stops: dict[datetime.date, list[Piece]] = defaultdict(list)
    for piece in pieces:
        starts[piece.start].append(piece)
        stops[piece.end + datetime.timedelta(days=1)].append(piece)
    first, last = pieces[0].start, max(p.end for p in pieces)
    bounds = sorted(
        set(starts) | set(stops) | {day for day in caps.change_days() if first < day <= last}
    )
    stretches: list[tuple[datetime.date, datetime.date, list[Piece]]] = []
    active: dict[int, Piece] = {}
    for index, bound in enumerate(bounds[:-1]):
        for piece in stops.get(bound, ()):
            active.pop(id(piece), None)
        for piece in starts.get(bound, ()):
            active[id(piece)] = piece
        if active:
            stretches.append(
                (bound, bounds[index + 1] - datetime.timedelta(days=1), list(active.values()))
            )
    remaining = AVERAGE_DAYS
    total = Decimal(0)
    salary_days = days_without = capped = uncapped = 0
    window_from: datetime.date | None = None
    window_to = stretches[-1][1] if stretches else None
    for start, end, jobs in reversed(stretches):
        length = (end - start).days + 1
        taken = min(length, remaining)
        remaining -= taken
        window_from = end - datetime.timedelta(days=taken - 1)
        known = [job.daily_salary for job in jobs if job.daily_salary is not None]
        if not known:
            days_without += taken
        else:
            daily = sum(known, Decimal(0))
            cap = caps.cap_on(start)
            if cap is None:
                uncapped += taken
            elif daily > cap:
                daily = cap
                capped += taken
            total += daily * taken
            salary_days += taken
        if remaining == 0:
            break
    value = (total / salary_days).quantize(CENTAVO, rounding=ROUND_HALF_UP) if salary_days else None
    return Average(
        value=value,
        days=AVERAGE_DAYS - remaining,
        days_without_salary=days_without,
        capped_days=capped,
        uncapped_days=uncapped,
        window_from=window_from,
        window_to=window_to,
    )


def _parameter_on(code: str, on: datetime.date) -> Decimal | None:
    value = (
        Parameter.objects.filter(code=code, valid_from__lte=on)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=on))
        .values_list("value", flat=True)
        .first()
    )
    return value
