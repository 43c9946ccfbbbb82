"""Turning a chunk's draft into database rows with their final ids.

PostgreSQL gets ``COPY`` text (tab-separated, ``\\N`` for NULL), one byte buffer per table, which
is the fastest way into the server; SQLite gets row tuples for ``executemany``. Generated values
never contain tabs, newlines or backslashes, so the text needs no escaping.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from pilar.registry.seeding.population import ChunkDraft

POSTGRESQL = "postgresql"
SQLITE = "sqlite"

# Columns per table, in the order the rows carry them.
COLUMNS: dict[str, tuple[str, ...]] = {
    "person": (
        "id",
        "given_names",
        "paternal_surname",
        "maternal_surname",
        "sex",
        "birth_date",
        "birth_state",
        "birth_country",
        "nationality",
        "death_date",
        "region",
        "status",
        "normalized_name",
        "version",
        "created_at",
        "updated_at",
    ),
    "identifier": (
        "id",
        "person_id",
        "scheme",
        "value",
        "issuing_country",
        "is_active",
        "created_at",
    ),
    "address": (
        "id",
        "person_id",
        "kind",
        "street",
        "neighbourhood",
        "municipality",
        "state",
        "postal_code",
        "country",
        "valid_from",
        "valid_to",
    ),
    "contact": ("id", "person_id", "kind", "value", "is_preferred", "created_at"),
    "familytie": (
        "id",
        "person_id",
        "relative_id",
        "relation",
        "start_date",
        "end_date",
        "created_at",
    ),
    "employment": (
        "id",
        "person_id",
        "employer_id",
        "start_date",
        "end_date",
        "job_title",
        "created_at",
    ),
    "employmentsalary": ("id", "employment_id", "effective_from", "daily_salary"),
    "enrolment": ("id", "person_id", "programme_id", "start_date", "end_date", "status"),
}
# Write order: referenced tables first.
TABLES = tuple(COLUMNS)


@dataclass(frozen=True)
class Bases:
    """First id of each table for one chunk, and what the rows refer to outside the chunk."""

    ids: dict[str, int]
    employer_base: int
    programme_ids: dict[str, int]
    timestamp: str


@dataclass
class RenderedChunk:
    index: int
    counts: dict[str, int]
    # table → COPY text (PostgreSQL) or row tuples (SQLite)
    tables: dict[str, Any] = field(default_factory=dict)
    # ground-truth CSV lines for the duplicates of this chunk
    ground_truth: list[str] = field(default_factory=list)


def chunk_counts(draft: ChunkDraft, identifier_changes: dict[int, str | None]) -> dict[str, int]:
    """Rows per table once the identifier changes are applied (a few may be dropped)."""
    dropped = sum(1 for value in identifier_changes.values() if value is None)
    return {
        "person": len(draft.persons),
        "identifier": len(draft.identifiers) - dropped,
        "address": len(draft.addresses),
        "contact": len(draft.contacts),
        "familytie": len(draft.ties),
        "employment": len(draft.employments),
        "employmentsalary": len(draft.salaries),
        "enrolment": len(draft.enrolments),
    }


class _DayText:
    """Ordinal → ISO date text, cached (the same days recur millions of times)."""

    def __init__(self) -> None:
        self._text: dict[int, str] = {}

    def __call__(self, ordinal: int) -> str:
        text = self._text.get(ordinal)
        if text is None:
            text = self._text[ordinal] = datetime.date.fromordinal(ordinal).isoformat()
        return text


_day_text = _DayText()


def render(
    draft: ChunkDraft,
    *,
    bases: Bases,
    identifier_changes: dict[int, str | None],
    dialect: str,
) -> RenderedChunk:
    counts = chunk_counts(draft, identifier_changes)
    result = RenderedChunk(index=draft.index, counts=counts)
    identifiers = _identifiers(draft, identifier_changes)
    if dialect == POSTGRESQL:
        result.tables = _copy_tables(draft, bases, identifiers)
    else:
        result.tables = _row_tables(draft, bases, identifiers)
    person_base = bases.ids["person"]
    result.ground_truth = [
        f"{person_base + duplicate},{person_base + original},{errors}"
        for duplicate, original, errors in draft.duplicates
    ]
    return result


def _identifiers(draft: ChunkDraft, changes: dict[int, str | None]) -> list[tuple[int, str, str]]:
    """The chunk's identifiers after the uniqueness pass (changed values, dropped ones gone)."""
    if not changes:
        return draft.identifiers
    kept: list[tuple[int, str, str]] = []
    for position, (person, scheme, value) in enumerate(draft.identifiers):
        if position in changes:
            changed = changes[position]
            if changed is None:
                continue
            value = changed
        kept.append((person, scheme, value))
    return kept


def _copy_tables(
    draft: ChunkDraft, bases: Bases, identifiers: list[tuple[int, str, str]]
) -> dict[str, Any]:
    """COPY text per table. Written out table by table with f-strings: this is the seeder's
    innermost loop, and building tuples first and joining them costs twice as much."""
    day = _day_text
    stamp = bases.timestamp
    ids = bases.ids
    p = ids["person"]
    employment_base = ids["employment"]
    employer_base = bases.employer_base
    programmes = bases.programme_ids
    null = "\\N"

    def optional(ordinal: int | None) -> str:
        return null if ordinal is None else day(ordinal)

    base = ids["person"]
    person = "".join(
        [
            f"{base + n}\t{given}\t{paternal}\t{maternal}\t{sex}\t{day(birth)}\t{birth_state}\t"
            f"{birth_country}\t{nationality}\t{null if death is None else day(death)}\t{region}\t"
            f"active\t{normalized}\t1\t{stamp}\t{stamp}\n"
            for n, (
                given,
                paternal,
                maternal,
                sex,
                birth,
                birth_state,
                birth_country,
                nationality,
                death,
                region,
                normalized,
            ) in enumerate(draft.persons)
        ]
    )
    base = ids["identifier"]
    identifier = "".join(
        [
            f"{base + n}\t{p + person_local}\t{scheme}\t{value}\tMX\tt\t{stamp}\n"
            for n, (person_local, scheme, value) in enumerate(identifiers)
        ]
    )
    base = ids["address"]
    address = "".join(
        [
            f"{base + n}\t{p + person_local}\thome\t{street}\t{neighbourhood}\t{municipality}\t"
            f"{state}\t{postal}\tMX\t{day(valid_from)}\t{null}\n"
            for n, (
                person_local,
                street,
                neighbourhood,
                municipality,
                state,
                postal,
                valid_from,
            ) in enumerate(draft.addresses)
        ]
    )
    base = ids["contact"]
    contact = "".join(
        [
            f"{base + n}\t{p + person_local}\t{kind}\t{value}\t{'t' if preferred else 'f'}\t"
            f"{stamp}\n"
            for n, (person_local, kind, value, preferred) in enumerate(draft.contacts)
        ]
    )
    base = ids["familytie"]
    familytie = "".join(
        [
            f"{base + n}\t{p + person_local}\t{p + relative}\t{relation}\t{optional(start)}\t"
            f"{optional(end)}\t{stamp}\n"
            for n, (person_local, relative, relation, start, end) in enumerate(draft.ties)
        ]
    )
    base = ids["employment"]
    employment = "".join(
        [
            f"{base + n}\t{p + person_local}\t{employer_base + employer}\t{day(start)}\t"
            f"{null if end is None else day(end)}\t{title}\t{stamp}\n"
            for n, (person_local, employer, start, end, title) in enumerate(draft.employments)
        ]
    )
    base = ids["employmentsalary"]
    salary = "".join(
        [
            f"{base + n}\t{employment_base + employment_local}\t{day(effective)}\t"
            f"{cents // 100}.{cents % 100:02d}\n"
            for n, (employment_local, effective, cents) in enumerate(draft.salaries)
        ]
    )
    base = ids["enrolment"]
    enrolment = "".join(
        [
            f"{base + n}\t{p + person_local}\t{programmes[code]}\t{day(start)}\t{optional(end)}\t"
            f"{status}\n"
            for n, (person_local, code, start, end, status) in enumerate(draft.enrolments)
        ]
    )
    return {
        "person": person.encode(),
        "identifier": identifier.encode(),
        "address": address.encode(),
        "contact": contact.encode(),
        "familytie": familytie.encode(),
        "employment": employment.encode(),
        "employmentsalary": salary.encode(),
        "enrolment": enrolment.encode(),
    }


def _row_tables(
    draft: ChunkDraft, bases: Bases, identifiers: list[tuple[int, str, str]]
) -> dict[str, Any]:
    """Row tuples per table, in ``COLUMNS`` order, for executemany."""
    day = _day_text
    stamp = bases.timestamp
    ids = bases.ids
    p = ids["person"]
    employment_base = ids["employment"]
    employer_base = bases.employer_base
    programmes = bases.programme_ids

    def optional(ordinal: int | None) -> str | None:
        return None if ordinal is None else day(ordinal)

    tables: dict[str, list[tuple[Any, ...]]] = {}
    base = ids["person"]
    tables["person"] = [
        (
            base + n,
            given,
            paternal,
            maternal,
            sex,
            day(birth),
            birth_state,
            birth_country,
            nationality,
            optional(death),
            region,
            "active",
            normalized,
            1,
            stamp,
            stamp,
        )
        for n, (
            given,
            paternal,
            maternal,
            sex,
            birth,
            birth_state,
            birth_country,
            nationality,
            death,
            region,
            normalized,
        ) in enumerate(draft.persons)
    ]
    base = ids["identifier"]
    tables["identifier"] = [
        (base + n, p + person_local, scheme, value, "MX", 1, stamp)
        for n, (person_local, scheme, value) in enumerate(identifiers)
    ]
    base = ids["address"]
    tables["address"] = [
        (
            base + n,
            p + person_local,
            "home",
            street,
            neighbourhood,
            municipality,
            state,
            postal,
            "MX",
            day(valid_from),
            None,
        )
        for n, (
            person_local,
            street,
            neighbourhood,
            municipality,
            state,
            postal,
            valid_from,
        ) in enumerate(draft.addresses)
    ]
    base = ids["contact"]
    tables["contact"] = [
        (base + n, p + person_local, kind, value, 1 if preferred else 0, stamp)
        for n, (person_local, kind, value, preferred) in enumerate(draft.contacts)
    ]
    base = ids["familytie"]
    tables["familytie"] = [
        (base + n, p + person_local, p + relative, relation, optional(start), optional(end), stamp)
        for n, (person_local, relative, relation, start, end) in enumerate(draft.ties)
    ]
    base = ids["employment"]
    tables["employment"] = [
        (
            base + n,
            p + person_local,
            employer_base + employer,
            day(start),
            optional(end),
            title,
            stamp,
        )
        for n, (person_local, employer, start, end, title) in enumerate(draft.employments)
    ]
    base = ids["employmentsalary"]
    tables["employmentsalary"] = [
        (
            base + n,
            employment_base + employment_local,
            day(effective),
            f"{cents // 100}.{cents % 100:02d}",
        )
        for n, (employment_local, effective, cents) in enumerate(draft.salaries)
    ]
    base = ids["enrolment"]
    tables["enrolment"] = [
        (base + n, p + person_local, programmes[code], day(start), optional(end), status)
        for n, (person_local, code, start, end, status) in enumerate(draft.enrolments)
    ]
    return dict(tables)
