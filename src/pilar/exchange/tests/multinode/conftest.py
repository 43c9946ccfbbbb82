"""A federation of real Pilar nodes for the multi-node tests: four processes (hub, two
institutes, auditor) on free loopback ports, each with its own database, set up once per test
session through the nodes' own command lines (``pilar.exchange.federation``).

Databases: on the PostgreSQL pass (DATABASE_URL names PostgreSQL) each node gets a database
``pilar_mn_<code>_<pid>`` on that server, dropped at the end; otherwise an SQLite file in the
session's temporary folder. The tests read and write the nodes' databases directly only to
look at what a node stored and to tamper with a log entry; everything else goes through the
nodes' HTTP endpoints and command lines.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dj_database_url
import pytest

from pilar.exchange.federation import (
    FederationInfo,
    NodeSpec,
    node_env,
    run_pilar,
    setup_federation,
    sqlite_url,
)

# Roles in the scenarios: the institute the persons left (A) and the one they moved to (B).
HUB = "MX-HUB"
SOURCE = "MX-ISSSTECALI"
DESTINATION = "MX-IMSS"
AUDITOR = "MX-AUDITOR"
LAYOUT = (
    (HUB, "hub", "Concentrador de prueba"),
    (DESTINATION, "institute", "Instituto Mexicano del Seguro Social"),
    (SOURCE, "institute", "Instituto de Seguridad Social de Baja California"),
    (AUDITOR, "auditor", "Auditoría de prueba"),
)
MOVERS = 3


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _postgres_server() -> dict[str, Any] | None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    return dict(dj_database_url.parse(url))


def _admin_connection(server: dict[str, Any]) -> Any:
    import psycopg

    return psycopg.connect(
        host=server.get("HOST") or "127.0.0.1",
        port=server.get("PORT") or 5432,
        user=server.get("USER") or "postgres",
        password=server.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )


def _postgres_url(server: dict[str, Any], name: str) -> str:
    user = server.get("USER") or "postgres"
    password = f":{server['PASSWORD']}" if server.get("PASSWORD") else ""
    host = server.get("HOST") or "127.0.0.1"
    port = server.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{name}"


class NodeDatabase:
    """Direct SQL on one node's database (SQLite file or PostgreSQL), ``%s`` placeholders."""

    def __init__(self, spec: NodeSpec) -> None:
        self.spec = spec
        self.url = spec.database_url

    def _connect(self) -> Any:
        if self.url.startswith("sqlite:///"):
            connection = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=20)
            return connection
        import psycopg

        return psycopg.connect(self.url, autocommit=False)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        connection = self._connect()
        try:
            if self.url.startswith("sqlite:///"):
                sql = sql.replace("%s", "?")
            cursor = connection.cursor()
            cursor.execute(sql, tuple(params))
            rows = cursor.fetchall() if cursor.description else []
            connection.commit()
            return [tuple(row) for row in rows]
        finally:
            connection.close()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None


@pytest.fixture(scope="session")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FederationInfo]:
    """The federation, set up once for every multi-node test and stopped at the end."""
    base = tmp_path_factory.mktemp("federation")
    server = _postgres_server()
    names: list[str] = []
    specs = []
    info: FederationInfo | None = None
    try:
        template = ""
        if server is not None:
            # Migrated once, then copied per node (CREATE DATABASE … TEMPLATE): the schema is
            # the same on every node and migrating four times would triple the setup time.
            template = f"pilar_mn_template_{os.getpid()}"
            names.append(template)
            with _admin_connection(server) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{template}"')
                admin.execute(f'CREATE DATABASE "{template}"')
            migrator = NodeSpec(
                "MX-TEMPLATE",
                "institute",
                "template",
                free_port(),
                _postgres_url(server, template),
                base / "template",
            )
            migrator.var_dir.mkdir(parents=True)
            run_pilar(migrator, "migrate", "--noinput", env=node_env(migrator, None))
        for code, role, name in LAYOUT:
            var_dir = base / code
            if server is None:
                url = sqlite_url(var_dir)
            else:
                database = f"pilar_mn_{code.lower().replace('-', '_')}_{os.getpid()}"
                names.append(database)
                with _admin_connection(server) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
                    admin.execute(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
                url = _postgres_url(server, database)
            specs.append(NodeSpec(code, role, name, free_port(), url, var_dir))
        info = setup_federation(
            specs, seed=False, movers=MOVERS, source=SOURCE, destination=DESTINATION
        )
        yield info
    finally:
        if info is not None:
            info.stop_all()
        if server is not None:
            with _admin_connection(server) as admin:
                for database in reversed(names):
                    with contextlib.suppress(Exception):
                        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture(scope="session")
def node_db(federation: FederationInfo) -> Callable[[str], NodeDatabase]:
    def database(code: str) -> NodeDatabase:
        return NodeDatabase(federation.specs[code])

    return database


def wait_for(
    condition: Callable[[], Any], *, timeout: float = 20, interval: float = 0.2, what: str = ""
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what or condition}")
        time.sleep(interval)


def log_integrated(database: NodeDatabase) -> bool:
    """Every queued leaf of the node's log has its index (the integrator ran)."""
    return (
        database.scalar('SELECT COUNT(*) FROM exchange_logentry WHERE "index" IS NULL') == 0
        and database.scalar("SELECT COUNT(*) FROM exchange_logentry") > 0
    )


def read_output(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
