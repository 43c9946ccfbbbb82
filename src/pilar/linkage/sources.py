"""Registry persons as a Polars frame in the feature input shape (docs/linkage.md, "Feature
columns"): what a dedupe, a list linkage and a cross-programme check read.

One query, set-based: PostgreSQL streams it with ``COPY (SELECT …) TO STDOUT`` through
psycopg 3 on Django's connection (``core.bulk.frame_query``); SQLite reads it with a plain
cursor. The active CURP and NSS come from ``registry_identifier`` in the same query (one
aggregate per person), so no per-person lookups happen.

A person may hold two active identifiers of one scheme (a golden record keeps the NSS of the
record merged into it, the classic IMSS duplicate); the frame carries the smallest value, which
is stable from run to run, and the comparisons treat the NSS as one value per record.

Which persons: those with status ``active`` — never ``merged`` (their golden record stands for
them) nor ``inactive``. A region restricts to the persons that region's offices administer; a
programme to the persons with an enrolment in it that is in force today (``receiving``).

Measured (PostgreSQL 16, this 2-core machine): see ``bench/`` for 1,000,000 persons.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import polars as pl
from django.utils import timezone

from pilar.core import bulk
from pilar.registry.models import EnrolmentStatus, RecordStatus

# The feature input columns a source yields, in order (``features.person_features`` reads them).
INPUT_COLUMNS = (
    "unique_id",
    "given_names",
    "paternal_surname",
    "maternal_surname",
    "sex",
    "birth_date",
    "birth_state",
    "curp",
    "nss",
)

_READ_SCHEMA: dict[str, Any] = {
    "unique_id": pl.Int64,
    "given_names": pl.String,
    "paternal_surname": pl.String,
    "maternal_surname": pl.String,
    "sex": pl.String,
    # Read as ISO text and parsed once by Polars.
    "birth_date": pl.String,
    "birth_state": pl.String,
    "curp": pl.String,
    "nss": pl.String,
}

INPUT_SCHEMA: dict[str, Any] = {**_READ_SCHEMA, "birth_date": pl.Date}


def _identifiers(person_filter: str = "") -> str:
    """One row per person: the smallest active CURP and NSS. ``person_filter`` (fixed SQL on
    ``person_id``) keeps the aggregate to the persons asked for, so reading a few thousand
    persons does not aggregate a million persons' identifiers."""
    return (
        "SELECT person_id,"  # noqa: S608 — fixed SQL and integer ids only
        " MIN(CASE WHEN scheme = 'CURP' THEN value END) AS curp,"
        " MIN(CASE WHEN scheme = 'NSS' THEN value END) AS nss"
        " FROM registry_identifier"
        f" WHERE is_active AND scheme IN ('CURP', 'NSS'){person_filter}"
        " GROUP BY person_id"
    )


def receiving_condition(today: datetime.date) -> tuple[str, list[Any]]:
    """SQL (on ``registry_enrolment`` aliased ``e``) for an enrolment in force on ``today``:
    active, started, not ended. The same rule as ``cross_programme``'s ORM filter."""
    return (
        "e.status = %s AND e.start_date <= %s AND (e.end_date IS NULL OR e.end_date >= %s)",
        [EnrolmentStatus.ACTIVE.value, today, today],
    )


def registry_persons(
    *,
    region: str | None = None,
    programme_id: int | None = None,
    person_ids: Sequence[int] | None = None,
    today: datetime.date | None = None,
) -> pl.DataFrame:
    """Active registry persons with their active CURP and NSS, in person id order.

    ``region`` keeps the persons of one region; ``programme_id`` the persons receiving that
    programme today (an active enrolment in force); ``person_ids`` exactly those persons (still
    only active ones). Empty strings are read as null, as the features expect."""
    conditions = ["p.status = %s"]
    params: list[Any] = [RecordStatus.ACTIVE.value]
    identifiers = _identifiers()
    if region is not None:
        conditions.append("p.region = %s")
        params.append(region)
    if programme_id is not None:
        condition, condition_params = receiving_condition(today or timezone.localdate())
        conditions.append(
            "EXISTS (SELECT 1 FROM registry_enrolment e WHERE e.person_id = p.id"  # noqa: S608 — fixed SQL, values bound
            f" AND e.programme_id = %s AND {condition})"
        )
        params += [programme_id, *condition_params]
    if person_ids is not None:
        if not person_ids:
            return empty_frame()
        # Ids are integers (checked here), so inlining them is safe and avoids SQLite's limit
        # on bound parameters for long lists.
        id_list = ",".join(str(int(pk)) for pk in person_ids)
        conditions.append(f"p.id IN ({id_list})")
        identifiers = _identifiers(f" AND person_id IN ({id_list})")
    # Only fixed SQL and integer ids are put into the text; every value is a bound parameter.
    sql = (
        "SELECT p.id, p.given_names, p.paternal_surname, p.maternal_surname, p.sex,"  # noqa: S608
        # As text on both databases: SQLite would otherwise convert it to a date object per row.
        " CAST(p.birth_date AS TEXT), p.birth_state, i.curp, i.nss"
        " FROM registry_person p"
        f" LEFT JOIN ({identifiers}) i ON i.person_id = p.id"
        " WHERE " + " AND ".join(conditions) + " ORDER BY p.id"
    )
    frame = bulk.frame_query(sql, params, _READ_SCHEMA)
    return _tidy(frame)


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=INPUT_SCHEMA)


def _tidy(frame: pl.DataFrame) -> pl.DataFrame:
    text = [name for name, dtype in _READ_SCHEMA.items() if dtype == pl.String]
    return frame.with_columns(
        [
            pl.when(pl.col(name).str.strip_chars() == "")
            .then(None)
            .otherwise(pl.col(name))
            .alias(name)
            for name in text
            if name != "birth_date"
        ]
        + [pl.col("birth_date").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)]
    ).select(list(INPUT_COLUMNS))
