"""Set-based writes for the seeder: PostgreSQL ``COPY … FROM STDIN`` and SQLite ``executemany``,
with ids assigned by the seeder from max(id) + 1, inside the caller's transaction."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Model

from pilar.core.identifiers import CURP, NSS, RFC
from pilar.registry.models import (
    Address,
    Contact,
    Employer,
    Employment,
    EmploymentSalary,
    Enrolment,
    FamilyTie,
    Identifier,
    Person,
)
from pilar.registry.seeding.render import COLUMNS, POSTGRESQL

MODELS: dict[str, type[Model]] = {
    "person": Person,
    "identifier": Identifier,
    "address": Address,
    "contact": Contact,
    "familytie": FamilyTie,
    "employment": Employment,
    "employmentsalary": EmploymentSalary,
    "enrolment": Enrolment,
    "employer": Employer,
}

EMPLOYER_COLUMNS = (
    "id",
    "rfc",
    "registration_number",
    "legal_name",
    "trade_name",
    "sector",
    "street",
    "municipality",
    "state",
    "postal_code",
    "status",
    "registered_on",
    "normalized_name",
    "version",
    "created_at",
    "updated_at",
)


def table_name(key: str) -> str:
    return MODELS[key]._meta.db_table


def dialect() -> str:
    return connection.vendor


def timestamp_text(now: datetime.datetime) -> str:
    """``now`` as the database stores a DateTimeField, for rows written without the ORM."""
    if dialect() == POSTGRESQL:
        return now.isoformat()
    adapted = connection.ops.adapt_datetimefield_value(now)
    return str(adapted)


def lock_tables() -> None:
    """Keep other writers out of the registry tables until the run commits, so max(id) and the
    identifier values read now stay true. Readers are not blocked. (SQLite's IMMEDIATE
    transactions already hold the database's write lock.)"""
    if dialect() != POSTGRESQL:
        return
    tables = ", ".join(connection.ops.quote_name(table_name(key)) for key in MODELS)
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")


def next_ids() -> dict[str, int]:
    """max(id) + 1 of every table the seeder writes."""
    ids: dict[str, int] = {}
    with connection.cursor() as cursor:
        for key in MODELS:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table_name(key)}")  # noqa: S608
            ids[key] = int(cursor.fetchone()[0]) + 1
    return ids


def existing_identifiers() -> dict[str, list[str]]:
    """Active Mexican CURP, NSS and RFC values already in the database."""
    found: dict[str, list[str]] = {CURP: [], NSS: [], RFC: []}
    rows = Identifier.objects.filter(
        is_active=True, issuing_country="MX", scheme__in=list(found)
    ).values_list("scheme", "value")
    for scheme, value in rows.iterator(chunk_size=50_000):
        found[scheme].append(value)
    return found


def existing_employer_keys() -> tuple[set[str], set[str]]:
    rfcs: set[str] = set()
    registrations: set[str] = set()
    for rfc, registration in Employer.objects.values_list("rfc", "registration_number").iterator(
        chunk_size=50_000
    ):
        rfcs.add(rfc)
        registrations.add(registration)
    return rfcs, registrations


def write_rows(key: str, columns: Sequence[str], data: Any) -> None:
    """Write one table's rows: COPY text (bytes) on PostgreSQL, tuples on SQLite."""
    table = table_name(key)
    column_list = ", ".join(columns)
    if dialect() == POSTGRESQL:
        if not data:
            return
        connection.ensure_connection()
        raw = connection.connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy,
        ):
            copy.write(data)
        return
    rows: list[tuple[Any, ...]] = data
    if not rows:
        return
    placeholders = ", ".join("?" for _ in columns)
    connection.ensure_connection()
    connection.connection.executemany(
        f"INSERT INTO {table} ({column_list}) VALUES ({placeholders})",  # noqa: S608
        rows,
    )


def write_chunk_tables(tables: dict[str, Any]) -> None:
    for key, columns in COLUMNS.items():
        write_rows(key, columns, tables[key])


def copy_text(rows: Iterable[tuple[Any, ...]]) -> bytes:
    return "".join("\t".join(map(str, row)) + "\n" for row in rows).encode()


def reset_sequences() -> None:
    """After explicit ids, move PostgreSQL's id sequences past them (SQLite's AUTOINCREMENT
    follows inserted ids by itself)."""
    if dialect() != POSTGRESQL:
        return
    with connection.cursor() as cursor:
        for key in MODELS:
            table = table_name(key)
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), MAX(id)) FROM {table} "  # noqa: S608
                f"HAVING MAX(id) IS NOT NULL",
                [table],
            )


def analyze() -> None:
    """Refresh the planner's statistics after a large load (PostgreSQL), so the first queries
    after seeding use the indexes."""
    if dialect() != POSTGRESQL:
        return
    with connection.cursor() as cursor:
        for key in MODELS:
            cursor.execute(f"ANALYZE {table_name(key)}")


# --- bulk loads -------------------------------------------------------------------------------


@dataclass
class SetAside:
    """Indexes and constraints dropped for a bulk load, with the SQL that recreates them."""

    indexes: list[tuple[str, str]] = field(default_factory=list)
    constraints: list[tuple[str, str, str]] = field(default_factory=list)


# Tables whose secondary indexes and constraints are set aside during a bulk load. Employers are
# left alone: there are few of them and other tables' foreign keys point at them.
BULK_TABLES = (
    "person",
    "identifier",
    "address",
    "contact",
    "familytie",
    "employment",
    "employmentsalary",
    "enrolment",
)


def set_aside_indexes() -> SetAside:
    """Drop the secondary indexes, unique constraints and foreign keys of the registry tables
    (PostgreSQL only), so a huge load appends rows without maintaining them row by row; the
    caller recreates them with ``restore_indexes`` in the same transaction. Building an index
    once over sorted data is many times faster than millions of single insertions, and
    recreating a foreign key checks all rows in one join. Primary keys stay. Until the
    transaction ends the tables are locked against readers too (ALTER TABLE takes an exclusive
    lock), which is why only large loads do this."""
    aside = SetAside()
    tables = [table_name(key) for key in BULK_TABLES]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
            FROM pg_constraint c
            WHERE c.conrelid = ANY(%s::regclass[]) AND c.contype IN ('f', 'u')
            ORDER BY c.contype DESC, c.conname
            """,
            [tables],
        )
        aside.constraints = [(row[0], row[1], row[2]) for row in cursor.fetchall()]
        cursor.execute(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
            FROM pg_index i
            WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            ORDER BY 1
            """,
            [tables],
        )
        aside.indexes = [(row[0], row[1]) for row in cursor.fetchall()]
        quote = connection.ops.quote_name
        for table, name, _definition in aside.constraints:
            cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
        for name, _definition in aside.indexes:
            cursor.execute(f"DROP INDEX {quote(name)}")
    return aside


def restore_indexes(aside: SetAside, *, progress: Callable[[str], None] | None = None) -> None:
    """Recreate what ``set_aside_indexes`` dropped: indexes first, then unique constraints and
    foreign keys (which validate the loaded rows)."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        # More memory for sorting makes index builds several times faster; local to the
        # transaction.
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        statements = [(name, definition) for name, definition in aside.indexes] + [
            (name, f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}")
            for table, name, definition in aside.constraints
        ]
        for name, statement in statements:
            started = time.monotonic()
            cursor.execute(statement)
            if progress is not None:
                progress(f"  {name}: {time.monotonic() - started:.1f} s")
