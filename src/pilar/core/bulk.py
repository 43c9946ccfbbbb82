"""Set-based reads and writes for bulk jobs: Polars frames in and out of the database.

On PostgreSQL both directions use ``COPY`` (CSV), 10–50× faster than row-by-row inserts through
the ORM; on SQLite (the embedded shape, small volumes) plain cursors do. Callers pass trusted
table and column names (from model metadata), never user input, as SQL identifiers.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import polars as pl
from django.db import connection

SQLITE_CHUNK = 5000


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def frame_insert(table: str, frame: pl.DataFrame) -> int:
    """Insert every row of ``frame`` into ``table`` (columns by name). Runs in the caller's
    transaction; returns the number of rows."""
    if frame.height == 0:
        return 0
    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name in frame.columns)
    table = quote(table)
    connection.ensure_connection()
    if is_postgresql():
        data = frame.write_csv(include_header=False, null_value="", quote_style="necessary")
        raw = connection.connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy,
        ):
            copy.write(data.encode())
        return frame.height
    placeholders = ", ".join("?" for _ in frame.columns)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608
    converted = frame.with_columns(
        # sqlite3 takes dates and decimals as text; Polars hands them over as Python objects.
        [
            pl.col(name).cast(pl.String)
            for name, dtype in frame.schema.items()
            if dtype in (pl.Date, pl.Datetime) or isinstance(dtype, pl.Decimal)
        ]
    )
    raw_sqlite = connection.connection
    for offset in range(0, converted.height, SQLITE_CHUNK):
        raw_sqlite.executemany(sql, converted.slice(offset, SQLITE_CHUNK).iter_rows())
    return frame.height


def frame_query(sql: str, params: Sequence[Any], schema: dict[str, Any]) -> pl.DataFrame:
    """Run a SELECT and return its rows as a frame with ``schema`` (column names in the SELECT's
    order). ``sql`` uses ``%s`` placeholders."""
    connection.ensure_connection()
    if is_postgresql():
        buffer = io.BytesIO()
        raw = connection.connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy,
        ):
            for block in copy:
                buffer.write(block)
        if buffer.tell() == 0:
            return pl.DataFrame(schema=schema)
        buffer.seek(0)
        return pl.read_csv(
            buffer,
            has_header=False,
            new_columns=list(schema),
            schema_overrides=schema,
            infer_schema=False,
        ).cast(schema)  # type: ignore[arg-type]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return pl.DataFrame(rows, schema=schema, orient="row")
