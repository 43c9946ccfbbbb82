"""Bitemporal parameters: the law in force on a date, as it was known on another.

Each entry of a parameter has a valid time (``from``: in force from that date) and a record time
(``recorded``: known from that date). Lookup of "the law in force on D, as known on K", exactly as
``docs/rules-language.md`` says: take the entries with ``recorded <= K``; for each ``from`` the
entry recorded last wins (a correction); of those, the one with the greatest ``from <= D``. Its
validity runs until the next ``from`` of the same view.

That is the greatest entry by ``(from, recorded, position)`` among those with ``from <= D`` and
``recorded <= K``; ``position`` makes a later-listed entry win a tie, so a what-if override
recorded on the same day as the package's entry replaces it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from pilar.rules.errors import InputTypeError, SchemeFileError, UnknownNameError
from pilar.rules.explanation import Label, TypeName, Value
from pilar.rules.loader import (
    TYPES,
    YamlMap,
    check_keys,
    expect_bool,
    expect_choice,
    expect_date,
    expect_description,
    expect_label,
    expect_list,
    expect_map,
    expect_name,
    expect_reference,
    expect_text,
    typed_value,
)

ONE_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class ParameterValue:
    """One entry of a parameter: ``value`` in force from ``valid_from``, known from ``recorded``.

    ``recorded`` defaults to ``valid_from``. Used both for a package's own entries and for
    ``overrides`` (what-if entries added on top of the package's own).
    """

    valid_from: datetime.date
    value: Value | int | float
    recorded: datetime.date | None = None
    source: str | None = None
    needs_verification: bool = False
    line: int | None = None

    @property
    def known_from(self) -> datetime.date:
        return self.recorded if self.recorded is not None else self.valid_from


@dataclass(frozen=True)
class Found:
    """The entry a lookup chose, with the last day of its validity (None: still in force)."""

    entry: ParameterValue
    valid_until: datetime.date | None


@dataclass(eq=False)
class Parameter:
    name: str
    type: TypeName
    label: Label
    reference: str
    location: str
    unit: str | None = None
    description: str | Label | None = None
    entries: tuple[ParameterValue, ...] = field(default=())

    def lookup(
        self,
        on: datetime.date,
        known_at: datetime.date,
        extra: Sequence[ParameterValue] = (),
    ) -> Found | None:
        """The entry in force on ``on`` as known on ``known_at``; None when there is none."""
        best: ParameterValue | None = None
        best_key: tuple[datetime.date, datetime.date, int] | None = None
        position = 0
        for entry in (*self.entries, *extra) if extra else self.entries:
            position += 1
            recorded = entry.known_from
            if recorded > known_at or entry.valid_from > on:
                continue
            key = (entry.valid_from, recorded, position)
            if best_key is None or key > best_key:
                best, best_key = entry, key
        if best is None:
            return None
        # The next `from` of the same view (entries known on K) ends this one's validity.
        following: datetime.date | None = None
        for entry in (*self.entries, *extra) if extra else self.entries:
            if (
                entry.known_from <= known_at
                and entry.valid_from > best.valid_from
                and (following is None or entry.valid_from < following)
            ):
                following = entry.valid_from
        return Found(best, following - ONE_DAY if following is not None else None)

    def ordered_entries(self, extra: Sequence[ParameterValue] = ()) -> list[ParameterValue]:
        """Every entry, lowest ``(from, recorded, position)`` first: the bulk lookup's order."""
        indexed = list(enumerate((*self.entries, *extra)))
        indexed.sort(key=lambda item: (item[1].valid_from, item[1].known_from, item[0]))
        return [entry for _, entry in indexed]


def read_parameters(document: YamlMap) -> list[Parameter]:
    check_keys(document, "parameters.yaml", required=("parameters",))
    section = expect_map(document["parameters"], "parameters", document.where("parameters"))
    parameters = []
    for name, raw in section.items():
        where = section.where(name)
        expect_name(name, "parameter", where)
        what = f"parameter {name}"
        spec = expect_map(raw, what, where)
        check_keys(
            spec,
            what,
            required=("type", "label", "values"),
            optional=("unit", "reference", "description"),
        )
        type_name: TypeName = expect_choice(
            spec["type"], TYPES, f"{what}: type", spec.where("type")
        )  # type: ignore[assignment]
        reference = expect_reference(spec, what)
        items = expect_list(spec["values"], f"{what}: values", spec.where("values"))
        if not items:
            raise SchemeFileError(
                {"problem": f"{what} has no values"}, location=spec.where("values")
            )
        entries = []
        for index, raw_entry in enumerate(items):
            entry_what = f"{what}, value {index + 1}"
            entry = expect_map(raw_entry, entry_what, items.where(index))
            check_keys(
                entry,
                entry_what,
                required=("from", "value"),
                optional=("recorded", "source", "needs_verification"),
            )
            entries.append(
                ParameterValue(
                    valid_from=expect_date(
                        entry["from"], f"{entry_what}: from", entry.where("from")
                    ),
                    value=typed_value(
                        entry["value"], type_name, f"{entry_what}: value", entry.where("value")
                    ),
                    recorded=(
                        expect_date(
                            entry["recorded"], f"{entry_what}: recorded", entry.where("recorded")
                        )
                        if "recorded" in entry
                        else None
                    ),
                    source=(
                        expect_text(entry["source"], f"{entry_what}: source", entry.where("source"))
                        if "source" in entry
                        else None
                    ),
                    needs_verification=expect_bool(
                        entry.get("needs_verification", False),
                        f"{entry_what}: needs_verification",
                        entry.where("needs_verification"),
                    ),
                    line=entry.line,
                )
            )
        parameters.append(
            Parameter(
                name=name,
                type=type_name,
                label=expect_label(spec["label"], f"{what}: label", spec.where("label")),
                reference=reference,
                location=spec.where(),
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
                entries=tuple(entries),
            )
        )
    return parameters


def coerce_value(
    value: object, type_name: TypeName, name: str, label: Label | None = None
) -> Value:
    """A caller's value (an input or an override) as the engine holds it, or ``input_type``.

    Numbers accept ``int``, ``Decimal``, ``float`` (through its shortest repr, so 0.1 is 0.1) and
    numeric text; dates accept ``datetime.date`` or ISO text. A ``bool`` is never a number.
    """
    try:
        if type_name == "number":
            if isinstance(value, Decimal) and value.is_finite():
                return value
            if isinstance(value, int) and not isinstance(value, bool):
                return Decimal(value)
            if isinstance(value, float | str):
                number = Decimal(str(value).strip())
                if number.is_finite():
                    return number
        elif type_name == "bool":
            if isinstance(value, bool):
                return value
        elif type_name == "date":
            if isinstance(value, datetime.datetime):
                raise ValueError("a datetime is not a date")
            if isinstance(value, datetime.date):
                return value
            if isinstance(value, str):
                return datetime.date.fromisoformat(value)
        elif isinstance(value, str):
            return value
    except (ArithmeticError, ValueError):
        pass
    raise InputTypeError({"name": name, "label": label, "expected": type_name, "got": value})


def prepare_overrides(
    overrides: Mapping[str, Iterable[ParameterValue]] | None,
    parameters: Mapping[str, Parameter],
) -> dict[str, tuple[ParameterValue, ...]]:
    """Check what-if overrides against the package: known names, values of the right type."""
    if not overrides:
        return {}
    prepared: dict[str, tuple[ParameterValue, ...]] = {}
    for name, entries in overrides.items():
        parameter = parameters.get(name)
        if parameter is None:
            raise UnknownNameError({"name": name, "context": " (parameter override)"})
        converted = []
        for entry in entries:
            value = coerce_value(entry.value, parameter.type, name, parameter.label)
            converted.append(
                ParameterValue(
                    valid_from=entry.valid_from,
                    value=value,
                    recorded=entry.recorded,
                    source=entry.source if entry.source is not None else "what-if",
                    needs_verification=entry.needs_verification,
                )
            )
        prepared[name] = tuple(converted)
    return prepared
