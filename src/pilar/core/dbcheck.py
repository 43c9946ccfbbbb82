"""``python -m pilar.core.dbcheck URL``: exit 0 when the PostgreSQL server at URL answers.

Used by the Makefile to decide whether the PostgreSQL test pass can run. Connects to the server's
``postgres`` database, since the test database is created by the test run itself.
"""

from __future__ import annotations

import sys

import dj_database_url
import psycopg


def main(url: str) -> int:
    config = dj_database_url.parse(url)
    try:
        with psycopg.connect(
            host=config["HOST"] or "127.0.0.1",
            port=config["PORT"] or 5432,
            user=config["USER"] or "postgres",
            password=config["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=3,
        ) as connection:
            connection.execute("select 1")
    except psycopg.Error as error:
        print(f"PostgreSQL not reachable: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
