"""The registry benchmark: seed a large population on PostgreSQL, then time the three reads
staff and partner systems do all day through a real server.

Metrics (BENCHMARKS.md): ``seed_1m_s`` (wall time of ``pilar seed``), and the 95th percentile
latencies of ``GET /api/v1/persons/by-identifier/CURP/{curp}`` (``lookup_by_id_p95_ms``),
``GET /api/v1/persons?q=…`` with partial names (``search_by_name_p95_ms``) and the staff page
``GET /persons/{id}/`` (``person_page_p95_ms``), measured from a single client on loopback.

The benchmark creates its own database (``pilar_bench`` on the server of DATABASE_URL), fresh
for every run, serves it with ``pilar serve`` on a free loopback port and stops the server at
the end. Environment:

- ``PILAR_BENCH_PERSONS`` (default 1,000,000; 20,000 for a smoke test), employers = persons/100
- ``PILAR_BENCH_REQUESTS`` timed requests per metric (default 300), after a warm-up
- ``PILAR_BENCH_RUNS`` full runs (default 3, metrics are their medians; each re-creates and
  re-seeds the database, about 4 minutes at 1M)
- ``PILAR_BENCH_DATABASE`` the database name (default ``pilar_bench``)
"""

from __future__ import annotations

import datetime
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dj_database_url
import httpx
import psycopg
from psycopg import sql

from bench import BenchmarkFailure, BenchmarkResult, percentile

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/pilar"
SEED = 1
WARM_UP = 30
SERVER_START_SECONDS = 90.0
REQUEST_TIMEOUT_SECONDS = 30.0


def _env_int(name: str, default: int, *, minimum: int) -> int:
    value = int(os.environ.get(name, default))
    if value < minimum:
        raise BenchmarkFailure(f"{name} must be at least {minimum}")
    return value


@dataclass(frozen=True)
class Setup:
    persons: int
    employers: int
    requests: int
    runs: int
    server_url: str  # postgres://… of the server (any database)
    database: str

    @property
    def database_url(self) -> str:
        config = dj_database_url.parse(self.server_url)
        user = config.get("USER") or "postgres"
        password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
        host = config.get("HOST") or "127.0.0.1"
        port = config.get("PORT") or 5432
        return f"postgres://{user}{password}@{host}:{port}/{self.database}"


def _setup() -> Setup:
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if not url.startswith(("postgres://", "postgresql://")):
        raise BenchmarkFailure("the registry benchmark runs on PostgreSQL; set DATABASE_URL")
    persons = _env_int("PILAR_BENCH_PERSONS", 1_000_000, minimum=1000)
    database = os.environ.get("PILAR_BENCH_DATABASE", "pilar_bench")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
        raise BenchmarkFailure("PILAR_BENCH_DATABASE must be a plain lower-case name")
    return Setup(
        persons=persons,
        employers=max(10, persons // 100),
        requests=_env_int("PILAR_BENCH_REQUESTS", 300, minimum=20),
        runs=_env_int("PILAR_BENCH_RUNS", 3, minimum=1),
        server_url=url,
        database=database,
    )


def _maintenance_connection(setup: Setup) -> psycopg.Connection[Any]:
    config = dj_database_url.parse(setup.server_url)
    return psycopg.connect(
        host=config.get("HOST") or "127.0.0.1",
        port=config.get("PORT") or 5432,
        user=config.get("USER") or "postgres",
        password=config.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    )


def _recreate_database(setup: Setup) -> str:
    """Drop and create the benchmark's own database; returns the server version."""
    with _maintenance_connection(setup) as connection:
        name = sql.Identifier(setup.database)
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(name))
        row = connection.execute("SHOW server_version").fetchone()
    version = str(row[0]).split(" ")[0] if row else "?"
    return f"PostgreSQL {version}"


def _environment(setup: Setup, var_dir: Path) -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(
        {
            "DATABASE_URL": setup.database_url,
            "PILAR_VAR_DIR": str(var_dir),
            "PILAR_ENV": "development",
            "PILAR_LOG_LEVEL": "WARNING",
        }
    )
    environment.pop("PILAR_DEBUG", None)
    return environment


def _pilar(*arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, "-m", "pilar.cli", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if completed.returncode != 0:
        raise BenchmarkFailure(
            f"pilar {' '.join(arguments)} failed ({completed.returncode}):\n"
            f"{completed.stdout[-2000:]}\n{completed.stderr[-4000:]}"
        )
    return completed


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Fixtures:
    """What the requests need: credentials and realistic request parameters."""

    username: str
    password: str
    token: str
    person_ids: list[int]
    curps: list[str]
    queries: list[str]


def _prepare_fixtures(setup: Setup, environment: dict[str, str], count: int) -> Fixtures:
    """A benchmark account with a national-scope role, an API token, and samples of ids, CURPs
    and partial names, from the seeded database (through Django, configured for it)."""
    os.environ.update({key: environment[key] for key in ("DATABASE_URL", "PILAR_VAR_DIR")})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pilar.settings")
    import django

    django.setup()
    from django.db import connection

    from pilar.core.actor import Actor
    from pilar.core.auth import token_issue
    from pilar.core.models import RoleAssignment, User
    from pilar.core.roles import Role
    from pilar.core.text import fold

    # Django may have been set up by an earlier run in this process: point it at this run's
    # database again (the name is the same, the database is new).
    connection.close()
    password = secrets.token_urlsafe(18)
    user = User.objects.create_user(username="bench", password=password)
    # Data stewards read every region's persons, so random ids and CURPs are all visible.
    RoleAssignment.objects.create(user=user, role=Role.DATA_STEWARD.value)
    _token, secret = token_issue(
        actor=Actor.system("bench", roles=frozenset({Role.ADMINISTRATOR.value})),
        user=user,
        role=Role.DATA_STEWARD.value,
        name="registry benchmark",
    )
    rng = random.Random(SEED)
    with connection.cursor() as cursor:
        cursor.execute("SELECT MIN(id), MAX(id) FROM registry_person")
        low, high = cursor.fetchone()
        ids = sorted({rng.randint(low, high) for _ in range(count * 2)})
        cursor.execute(
            "SELECT p.id, p.given_names, p.paternal_surname, p.maternal_surname, i.value "
            "FROM registry_person p JOIN registry_identifier i ON i.person_id = p.id "
            "AND i.scheme = 'CURP' AND i.is_active WHERE p.id = ANY(%s)",
            [ids],
        )
        rows = cursor.fetchall()
    if len(rows) < count:
        raise BenchmarkFailure(f"only {len(rows)} sampled persons with a CURP; seed more")
    rng.shuffle(rows)
    rows = rows[:count]
    queries: list[str] = []
    for index, (_id, given, paternal, maternal, _curp) in enumerate(rows):
        given_word = fold(given).lower().split(" ")[0]
        paternal_word = fold(paternal or maternal).lower().split(" ")[-1]
        maternal_word = fold(maternal).lower().split(" ")[-1] if maternal else ""
        # What staff type: a partial surname and given name ("garc mar"), two full surnames
        # ("hernandez lopez"), or a surname and a given name.
        shape = index % 3
        if shape == 0:
            queries.append(f"{paternal_word[:4]} {given_word[:3]}")
        elif shape == 1 and maternal_word:
            queries.append(f"{paternal_word} {maternal_word}")
        else:
            queries.append(f"{given_word} {paternal_word}")
    connection.close()
    return Fixtures(
        username="bench",
        password=password,
        token=secret,
        person_ids=[row[0] for row in rows],
        curps=[row[4] for row in rows],
        queries=queries,
    )


class Server:
    """``pilar serve`` in a child process on a free loopback port."""

    def __init__(self, environment: dict[str, str], log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pilar.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.log_path = log_path

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchmarkFailure(f"pilar serve exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/login/", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise BenchmarkFailure(f"pilar serve did not answer within {SERVER_START_SECONDS:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def _login(client: httpx.Client, fixtures: Fixtures) -> None:
    page = client.get("/login/")
    _expect(page, 200, "GET /login/")
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if match is None:
        raise BenchmarkFailure("no csrfmiddlewaretoken in the login form")
    response = client.post(
        "/login/",
        data={
            "username": fixtures.username,
            "password": fixtures.password,
            "csrfmiddlewaretoken": match.group(1),
        },
        headers={"Referer": f"{client.base_url}/login/"},
    )
    if response.status_code != 302 or "sessionid" not in client.cookies:
        raise BenchmarkFailure(f"login failed: {response.status_code} {response.text[:500]}")


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise BenchmarkFailure(
            f"{what}: expected {status}, got {response.status_code}: {response.text[:800]}"
        )


def _p95_ms(
    client: httpx.Client,
    paths: list[str],
    *,
    headers: dict[str, str],
    what: str,
    check: Callable[[httpx.Response], None] | None = None,
) -> float:
    """Warm up, then time each request; the 95th percentile in milliseconds."""
    for path in paths[:WARM_UP]:
        _expect(client.get(path, headers=headers), 200, f"{what} (warm-up) {path}")
    timings: list[float] = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        elapsed = time.perf_counter() - started
        _expect(response, 200, f"{what} {path}")
        if check is not None:
            check(response)
        timings.append(elapsed * 1000)
    return percentile(timings, 0.95)


def _check_found(response: httpx.Response) -> None:
    # Every query is made from a seeded person's name, so an empty result means search is broken.
    body = response.json()
    if not isinstance(body, dict) or not body.get("items"):
        raise BenchmarkFailure(f"search found nothing: {response.url} {response.text[:300]}")


def _check_identifier(response: httpx.Response) -> None:
    curp = str(response.url).rsplit("/", 1)[-1]
    if curp not in response.text:
        raise BenchmarkFailure(f"lookup answered another person: {response.text[:300]}")


def _one_run(setup: Setup, *, run_number: int) -> tuple[dict[str, float], str]:
    var_dir = Path(tempfile.mkdtemp(prefix="pilar-bench-"))
    server: Server | None = None
    try:
        database = _recreate_database(setup)
        environment = _environment(setup, var_dir)
        _pilar("migrate", "--noinput", environment=environment)
        print(f"[run {run_number}] seeding {setup.persons:,} persons …", flush=True)
        started = time.perf_counter()
        _pilar(
            "seed",
            "--persons",
            str(setup.persons),
            "--employers",
            str(setup.employers),
            "--seed",
            str(SEED),
            "--as-of",
            datetime.datetime.now(datetime.UTC).date().isoformat(),
            environment=environment,
        )
        seed_seconds = time.perf_counter() - started
        print(f"[run {run_number}] seeded in {seed_seconds:.1f} s", flush=True)
        fixtures = _prepare_fixtures(setup, environment, setup.requests)
        server = Server(environment, var_dir / "serve.log")
        server.wait_ready()
        api_headers = {"Authorization": f"Bearer {fixtures.token}", "X-Purpose": "benchmark"}
        limits = httpx.Timeout(REQUEST_TIMEOUT_SECONDS)
        with httpx.Client(base_url=server.url, timeout=limits) as api:
            lookup = _p95_ms(
                api,
                [f"/api/v1/persons/by-identifier/CURP/{curp}" for curp in fixtures.curps],
                headers=api_headers,
                what="lookup by CURP",
                check=_check_identifier,
            )
            search = _p95_ms(
                api,
                [f"/api/v1/persons?{httpx.QueryParams({'q': q})}" for q in fixtures.queries],
                headers=api_headers,
                what="search by name",
                check=_check_found,
            )
        with httpx.Client(base_url=server.url, timeout=limits, follow_redirects=False) as ui:
            _login(ui, fixtures)
            page = _p95_ms(
                ui,
                [f"/persons/{person_id}/" for person_id in fixtures.person_ids],
                headers={},
                what="person page",
            )
        metrics = {
            "seed_1m_s": seed_seconds,
            "lookup_by_id_p95_ms": lookup,
            "search_by_name_p95_ms": search,
            "person_page_p95_ms": page,
        }
        print(f"[run {run_number}] {metrics}", flush=True)
        return metrics, database
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(var_dir, ignore_errors=True)


def run() -> BenchmarkResult:
    setup = _setup()
    runs: list[dict[str, float]] = []
    database = "PostgreSQL"
    for number in range(1, setup.runs + 1):
        metrics, database = _one_run(setup, run_number=number)
        runs.append(metrics)
    return BenchmarkResult(
        name="registry",
        database=database,
        params={
            "persons": setup.persons,
            "employers": setup.employers,
            "requests_per_metric": setup.requests,
            "warm_up": WARM_UP,
            "runs": setup.runs,
            "seed": SEED,
            "server": "pilar serve (gunicorn, 2 workers), one client on loopback",
        },
        runs=runs,
    )
