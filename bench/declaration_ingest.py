"""The declaration ingest benchmark: a payroll declaration of a million lines against a registry
of a million persons on PostgreSQL, through the real pipeline (``contributions.services``), with
the straightforward Django ORM posting as the reference, and a 10,000-line file end to end
through the employer portal (and the REST API) of a real server.

Targets (issue 3): parse + validate + statement ≤ 10 s, posting ≤ 20 s (end to end ≥ 33,000
lines/s), peak memory ≤ 2 GB; the 10,000-line file in under 5 s.

Setup (not timed). The database ``pilar_bench`` is the registry benchmark's: 1,000,000 persons
from ``pilar seed`` (seed 1). It is reused when it holds exactly that population, otherwise
dropped and seeded again. Two bench employers are added, with an open employment from
2020-01-01 and a daily salary (SBC) for every living, active person with an active CURP
(employer A, the large file) and for 10,000 of them (employer B, the portal), each written with
one ``INSERT … SELECT``. The declaration files are exported from the database with ``COPY``: the
CURP and the names as the registry has them, the days of the month, the SBC (a log-normal spread
from the month's minimum wage, median about 1.7 minimum wages, a few above the cap), some absence
and incapacity days. The month is the previous one.

Timed, per run, each phase in a fresh interpreter so that its peak memory is the pipeline's own:

1. *validate* child: ``declaration_submit`` (hash + store, ``submit_s``), the validation job
   run as the worker runs it (``validate_s``: parse, checks, contributions, staging, report,
   statement), then ``declaration_confirm`` (``confirm_s``). Inside the job, the stages are timed
   by wrapping the module functions the job calls (no second pass): ``parse_s``
   (``fileformat.read_declaration``), ``validate_statement_s`` (``validation.validate``: cell
   checks, registry and employment lookups, name folding, contributions and the statement) with
   its parts ``registry_lookup_s``, ``employments_lookup_s``, ``fold_names_s``, ``compute_s``,
   ``stage_s`` (rows for insert + the ``COPY`` of the staged lines and the report) and
   ``validate_commit_s`` (the COMMITs, which run the deferred foreign-key checks of the staged
   rows). ``parse_validate_statement_s`` = ``parse_s`` + ``validate_statement_s``, the issue's
   figure.
2. *post* child: the posting job (``post_s``), split by the posting checkpoints into
   ``post_supersede_s``, ``post_insert_s`` (the ``INSERT … SELECT``), ``post_movements_s``,
   ``post_commit_s`` (the COMMIT, with the deferred foreign-key checks of every record) and
   ``post_finish_s`` (the declaration's update, its audit event, payment allocation).
3. *orm* child, alternating with 2 (post first in odd runs, ORM first in even runs), on the same
   staged lines: the same supersede ``UPDATE``, ``ContributionRecord`` instances built from the
   staged ``DeclarationLine`` rows (``iterator``) and ``bulk_create(batch_size=5000)`` in one
   transaction. Its records are deleted before the pipeline posts (not timed).

``lines_per_s`` = lines / (``validate_s`` + ``post_s``); the ORM's = lines / (``validate_s`` +
its ``post_s``). ``peak_rss_mb`` is the larger high-water mark (VmHWM) of the validate and post
children. Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries the parent's peak over into a
child across fork and exec, so a child of a large parent would report the parent's memory.

Then, with ``pilar serve`` started (embedded job workers, as deployed), per run: the 10,000-line
file through the portal (``portal_10k_s``: sign in, then from the upload POST to posted, polling
the progress fragment and confirming as an employer does; the declaration's status is read from
the database between polls) and through the REST API (``api_10k_s``: POST
``/api/v1/declarations``, poll ``GET /api/v1/declarations/{id}``, POST ``…/confirm``, poll),
each with the time to validated (``…_validated_s``). The portal is skipped, and its metrics left
out, when ``/portal/login/`` is not served. Polling is every 0.1 s; the embedded job workers look
for new jobs every second, which the figures include.

Every run starts from a clean state: the bench employers' declarations, staged lines, issues,
records and jobs are deleted with SQL, the tables vacuumed and a checkpoint taken (not timed).

Environment:

- ``PILAR_BENCH_PERSONS`` persons to seed (default 1,000,000; 20,000 for a smoke test)
- ``PILAR_BENCH_RUNS`` runs (default 3; metrics are their medians)
- ``PILAR_BENCH_DATABASE`` the database name (default ``pilar_bench``)
- ``PILAR_BENCH_RESEED=1`` drop and seed the database even if it could be reused
- ``PILAR_BENCH_PORTAL_LINES`` lines of the portal file (default 10,000)
- ``PILAR_BENCH_PROFILE=<dir>`` run the children under cProfile, stats written to <dir>
"""

from __future__ import annotations

import calendar
import cProfile
import datetime
import io
import json
import os
import pstats
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from bench import BenchmarkFailure, BenchmarkResult
from bench.registry import (
    DEFAULT_URL,
    SEED,
    Server,
    Setup,
    _env_int,
    _environment,
    _expect,
    _maintenance_connection,
    _pilar,
    _recreate_database,
)

NAME = "declaration_ingest"
REPOSITORY = Path(__file__).resolve().parent.parent
EMPLOYMENT_START = datetime.date(2020, 1, 1)
# The two bench employers. RFCs and registration numbers are unique in the registry; the seeder
# writes RFCs from a company's initials, never "ZZB", and none of its registration numbers
# (seed 1) is one of these.
BENCH_EMPLOYERS = {
    "large": ("ZZB200101AA1", "Z0000000001", "Bench Ingest Grande SA de CV"),
    "portal": ("ZZB200101AA2", "Z0000000002", "Bench Ingest Portal SA de CV"),
}
CONTRIBUTION_JOBS = ("contributions.validate", "contributions.post")
ORM_BATCH_SIZE = 5000
POLL_SECONDS = 0.1
PORTAL_TIMEOUT_SECONDS = 300.0
CHILD_TIMEOUT_SECONDS = 3600
MB = 1024 * 1024


@dataclass(frozen=True)
class Config:
    setup: Setup  # the registry benchmark's: server URL, database, persons, employers, runs
    portal_lines: int
    reseed: bool
    profile_dir: Path | None


def _config() -> Config:
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if not url.startswith(("postgres://", "postgresql://")):
        raise BenchmarkFailure(f"the {NAME} benchmark runs on PostgreSQL; set DATABASE_URL")
    persons = _env_int("PILAR_BENCH_PERSONS", 1_000_000, minimum=1000)
    database = os.environ.get("PILAR_BENCH_DATABASE", "pilar_bench")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
        raise BenchmarkFailure("PILAR_BENCH_DATABASE must be a plain lower-case name")
    profile = os.environ.get("PILAR_BENCH_PROFILE")
    return Config(
        setup=Setup(
            persons=persons,
            employers=max(10, persons // 100),
            requests=0,
            runs=_env_int("PILAR_BENCH_RUNS", 3, minimum=1),
            server_url=url,
            database=database,
        ),
        portal_lines=_env_int("PILAR_BENCH_PORTAL_LINES", 10_000, minimum=10),
        reseed=os.environ.get("PILAR_BENCH_RESEED") == "1",
        profile_dir=Path(profile).resolve() if profile else None,
    )


def _bench_connection(setup: Setup) -> psycopg.Connection[Any]:
    """An autocommit connection to the bench database, for setup and clean-up SQL (VACUUM
    cannot run in a transaction)."""
    return psycopg.connect(setup.database_url, autocommit=True, connect_timeout=10)


# --- the database ------------------------------------------------------------------------------


def _seed_marker(setup: Setup) -> str:
    return f"pilar seed --persons {setup.persons} --employers {setup.employers} --seed {SEED}"


def _reusable(setup: Setup) -> bool:
    """The database holds the seeded population this benchmark asks for: the same numbers of
    persons and of seeded employers, and (when we seeded it) the same seed."""
    with _maintenance_connection(setup) as connection:
        row = connection.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [setup.database],
        ).fetchone()
    if row is None:
        return False
    marker = row[0]
    if marker is not None and marker != _seed_marker(setup):
        return False
    try:
        with _bench_connection(setup) as connection:
            persons = connection.execute("SELECT count(*) FROM registry_person").fetchone()
            employers = connection.execute(
                "SELECT count(*) FROM registry_employer WHERE rfc NOT LIKE 'ZZB%'"
            ).fetchone()
    except psycopg.Error:
        return False
    return (persons, employers) == ((setup.persons,), (setup.employers,))


def _server_version(setup: Setup) -> str:
    with _maintenance_connection(setup) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {str(row[0]).split(' ')[0] if row else '?'}"


def _prepare_database(config: Config, environment: dict[str, str]) -> dict[str, Any]:
    setup = config.setup
    reused = not config.reseed and _reusable(setup)
    seed_seconds = None
    if not reused:
        _recreate_database(setup)
        _pilar("migrate", "--noinput", environment=environment)
        print(f"[setup] seeding {setup.persons:,} persons …", flush=True)
        started = time.perf_counter()
        _pilar(
            "seed",
            "--persons",
            str(setup.persons),
            "--employers",
            str(setup.employers),
            "--seed",
            str(SEED),
            environment=environment,
        )
        seed_seconds = round(time.perf_counter() - started, 1)
        with _maintenance_connection(setup) as connection:
            connection.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(setup.database), sql.Literal(_seed_marker(setup))
                )
            )
        print(f"[setup] seeded in {seed_seconds} s", flush=True)
    else:
        print(f"[setup] reusing {setup.database} ({setup.persons:,} seeded persons)", flush=True)
    _pilar("migrate", "--noinput", environment=environment)
    return {"database_reused": reused, "seed_s": seed_seconds}


def _django(environment: dict[str, str]) -> None:
    os.environ.update({key: environment[key] for key in ("DATABASE_URL", "PILAR_VAR_DIR")})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pilar.settings")
    import django

    django.setup()


def _previous_month(today: datetime.date) -> datetime.date:
    return (today.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)


# Persons who can be on a payroll: alive, active, with an active Mexican CURP.
ELIGIBLE = """
    SELECT p.id FROM registry_person p
    WHERE p.status = 'active' AND p.death_date IS NULL
      AND EXISTS (SELECT 1 FROM registry_identifier i WHERE i.person_id = p.id
                  AND i.scheme = %(curp)s AND i.issuing_country = 'MX' AND i.is_active)
"""
# A daily salary spread deterministically by person: log-normal around 1.7 minimum wages
# (Box-Muller on two hashes of the id), never below the minimum.
SALARY = """
    greatest(%(minimum)s::numeric, round((%(minimum)s::numeric * exp(0.55 + 0.6
      * sqrt(-2 * ln(((hashint8(e.person_id) & 2147483647)::float8 + 0.5) / 2147483648.0))
      * cos(2 * pi() * ((hashint8(e.person_id # 1431655765) & 2147483647)::float8 + 0.5)
            / 2147483648.0)))::numeric, 2))
"""


@dataclass
class Employers:
    large_id: int
    portal_id: int
    large_lines: int
    portal_lines: int


def _employer(key: str) -> int:
    from pilar.core.text import fold
    from pilar.registry.models import Employer, EmployerStatus

    rfc, registration, name = BENCH_EMPLOYERS[key]
    employer, _created = Employer.objects.get_or_create(
        rfc=rfc,
        defaults={
            "registration_number": registration,
            "legal_name": name,
            "normalized_name": fold(name),
            "sector": "31",
            "street": "Av. Benchmark 1",
            "municipality": "Cuauhtémoc",
            "state": "DF",
            "postal_code": "06000",
            "status": EmployerStatus.ACTIVE,
            "registered_on": EMPLOYMENT_START,
        },
    )
    if employer.status != EmployerStatus.ACTIVE:
        raise BenchmarkFailure(f"bench employer {rfc} is not active")
    return int(employer.pk)


def _employ(
    connection: psycopg.Connection[Any], employer_id: int, *, limit: int | None, minimum: Decimal
) -> int:
    """Give the eligible persons (all, or ``limit`` spread over the registry) an open employment
    with ``employer_id`` and a salary; kept when already there. Returns the number employed."""
    from pilar.core.identifiers import CURP

    params: dict[str, Any] = {"curp": CURP, "employer": employer_id, "minimum": minimum}
    eligible = connection.execute(f"SELECT count(*) FROM ({ELIGIBLE}) e", params).fetchone()  # noqa: S608
    wanted = eligible[0] if eligible else 0
    if limit is not None:
        wanted = min(wanted, limit)
    row = connection.execute(
        "SELECT count(*), count(s.id) FROM registry_employment e"
        " LEFT JOIN registry_employmentsalary s ON s.employment_id = e.id"
        " WHERE e.employer_id = %(employer)s AND e.end_date IS NULL",
        params,
    ).fetchone()
    if row == (wanted, wanted):
        return int(wanted)
    started = time.perf_counter()
    with connection.transaction():
        connection.execute(
            "DELETE FROM registry_employmentsalary WHERE employment_id IN"
            " (SELECT id FROM registry_employment WHERE employer_id = %(employer)s)",
            params,
        )
        connection.execute(
            "DELETE FROM registry_employment WHERE employer_id = %(employer)s", params
        )
        # Every eligible person, or every n-th one for a smaller payroll.
        step = 1 if limit is None else max(1, (eligible[0] if eligible else 0) // limit)
        params.update(step=step, limit=wanted, start=EMPLOYMENT_START)
        connection.execute(
            "INSERT INTO registry_employment"  # noqa: S608
            " (person_id, employer_id, start_date, end_date, job_title, created_at)"
            " SELECT id, %(employer)s, %(start)s, NULL, '', now() FROM"
            f" (SELECT id, row_number() OVER (ORDER BY id) AS n FROM ({ELIGIBLE}) e) numbered"
            " WHERE mod(n, %(step)s) = 0 ORDER BY id LIMIT %(limit)s",
            params,
        )
        connection.execute(
            "INSERT INTO registry_employmentsalary (employment_id, effective_from, daily_salary)"  # noqa: S608
            f" SELECT e.id, e.start_date, {SALARY} FROM registry_employment e"
            " WHERE e.employer_id = %(employer)s",
            params,
        )
    connection.execute("VACUUM ANALYZE registry_employment")
    connection.execute("VACUUM ANALYZE registry_employmentsalary")
    print(
        f"[setup] {wanted:,} employments for employer {employer_id} in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return int(wanted)


def _export_declaration(
    connection: psycopg.Connection[Any],
    employer_id: int,
    *,
    period: datetime.date,
    minimum: Decimal,
    path: Path,
) -> int:
    """The employer's declaration for ``period`` as an employer would write it (Spanish headers,
    comma-separated, UTF-8), straight from the registry with COPY. Returns the lines."""
    from pilar.contributions.fileformat import COLUMNS_BY_NAME
    from pilar.core.identifiers import CURP

    columns = (
        "worker_id",
        "paternal_surname",
        "maternal_surname",
        "given_names",
        "days",
        "daily_salary",
        "absence_days",
        "incapacity_days",
    )
    header = ",".join(COLUMNS_BY_NAME[name].spanish_header for name in columns)
    days = calendar.monthrange(period.year, period.month)[1]
    query = sql.SQL(
        "COPY (SELECT i.value, p.paternal_surname, p.maternal_surname, p.given_names, {days},"
        " greatest(s.daily_salary, {minimum}),"
        # One worker in twenty has one to three absence days, one in a hundred three days of
        # incapacity (hashes of the id, so the file is the same every time).
        " CASE WHEN mod(hashint8(p.id # 12345) & 2147483647, 20) = 0"
        "  THEN 1 + mod(hashint8(p.id # 54321) & 2147483647, 3) ELSE 0 END,"
        " CASE WHEN mod(hashint8(p.id # 6789) & 2147483647, 100) = 0 THEN 3 ELSE 0 END"
        " FROM registry_employment e"
        " JOIN registry_person p ON p.id = e.person_id"
        " JOIN registry_identifier i ON i.person_id = p.id AND i.scheme = {curp}"
        "  AND i.issuing_country = 'MX' AND i.is_active"
        " JOIN registry_employmentsalary s ON s.employment_id = e.id"
        " WHERE e.employer_id = {employer} AND e.end_date IS NULL ORDER BY e.id)"
        " TO STDOUT (FORMAT csv)"
    ).format(
        days=sql.Literal(days),
        minimum=sql.Literal(minimum),
        curp=sql.Literal(CURP),
        employer=sql.Literal(employer_id),
    )
    lines = 0
    with path.open("wb") as output, connection.cursor() as cursor:
        output.write(header.encode() + b"\n")
        with cursor.copy(query) as copy:
            for block in copy:
                output.write(block)
                lines += bytes(block).count(b"\n")
    return lines


@dataclass
class Fixtures:
    employers: Employers
    period: datetime.date
    minimum_wage: Decimal
    large_file: Path
    portal_file: Path
    portal_rfc: str
    portal_password: str
    api_token: str


def _prepare_fixtures(config: Config, work_dir: Path) -> Fixtures:
    from django.db import connection as django_connection

    from pilar.contributions.calculation import MINIMUM_WAGE
    from pilar.contributions.parameters import parameter_value
    from pilar.core.actor import Actor
    from pilar.core.auth import token_issue
    from pilar.core.models import RoleAssignment, User
    from pilar.core.roles import Role
    from pilar.portal.services import employer_account_set

    period = _previous_month(datetime.date.today())  # noqa: DTZ011 - the node's local date
    minimum = parameter_value(MINIMUM_WAGE, on=period)
    large_id, portal_id = _employer("large"), _employer("portal")
    with _bench_connection(config.setup) as connection:
        large = _employ(connection, large_id, limit=None, minimum=minimum)
        portal = _employ(connection, portal_id, limit=config.portal_lines, minimum=minimum)
        started = time.perf_counter()
        large_file = work_dir / "declaration-1m.csv"
        written = _export_declaration(
            connection, large_id, period=period, minimum=minimum, path=large_file
        )
        portal_file = work_dir / "declaration-portal.csv"
        portal_written = _export_declaration(
            connection, portal_id, period=period, minimum=minimum, path=portal_file
        )
    if (written, portal_written) != (large, portal):
        raise BenchmarkFailure(
            f"exported {written} and {portal_written} lines for {large} and {portal} employments"
        )
    print(
        f"[setup] files of {large:,} lines ({large_file.stat().st_size / MB:.1f} MB) and "
        f"{portal:,} lines written in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    officer = Actor.system("bench", roles=frozenset({Role.COLLECTIONS_OFFICER.value}))
    password = secrets.token_urlsafe(18)
    employer_account_set(actor=officer, employer_id=portal_id, password=password)
    user, _created = User.objects.get_or_create(username="bench-collections")
    RoleAssignment.objects.get_or_create(user=user, role=Role.COLLECTIONS_OFFICER.value)
    _token, secret = token_issue(
        actor=Actor.system("bench", roles=frozenset({Role.ADMINISTRATOR.value})),
        user=user,
        role=Role.COLLECTIONS_OFFICER.value,
        name="declaration ingest benchmark",
    )
    django_connection.close()
    return Fixtures(
        employers=Employers(large_id, portal_id, large, portal),
        period=period,
        minimum_wage=minimum,
        large_file=large_file,
        portal_file=portal_file,
        portal_rfc=BENCH_EMPLOYERS["portal"][0],
        portal_password=password,
        api_token=secret,
    )


def _clean(setup: Setup, employer_ids: list[int], var_dir: Path, *, vacuum: bool) -> None:
    """Remove every trace of earlier runs' declarations of the bench employers (not timed)."""
    with _bench_connection(setup) as connection:
        with connection.transaction():
            rows = connection.execute(
                "SELECT id FROM contributions_declaration WHERE employer_id = ANY(%s::bigint[])",
                [employer_ids],
            ).fetchall()
            ids = [row[0] for row in rows]
            connection.execute(
                "DELETE FROM contributions_contributionrecord"
                " WHERE employer_id = ANY(%s::bigint[])",
                [employer_ids],
            )
            for table in (
                "contributions_declarationline",
                "contributions_declarationissue",
                "contributions_registrationrequest",
                "contributions_paymentallocation",
            ):
                connection.execute(
                    sql.SQL("DELETE FROM {} WHERE declaration_id = ANY(%s::bigint[])").format(
                        sql.Identifier(table)
                    ),
                    [ids],
                )
            connection.execute(
                "DELETE FROM contributions_declaration WHERE id = ANY(%s::bigint[])", [ids]
            )
            # Jobs of these declarations, and any contributions job left queued by an aborted
            # run (a worker would otherwise pick it up in the middle of a measurement).
            connection.execute(
                "DELETE FROM core_job WHERE name = ANY(%s) AND ("
                " (arguments->>'declaration_id')::bigint = ANY(%s::bigint[]) OR status <> 'done')",
                [list(CONTRIBUTION_JOBS), ids],
            )
            queued = connection.execute(
                "SELECT count(*) FROM core_job WHERE status IN ('queued', 'running')"
            ).fetchone()
        if queued and queued[0]:
            raise BenchmarkFailure(f"{queued[0]} other job(s) queued in the bench database")
        if vacuum:
            for table in (
                "contributions_contributionrecord",
                "contributions_declarationline",
                "contributions_declarationissue",
                "contributions_declaration",
                "core_job",
            ):
                connection.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
            connection.execute("CHECKPOINT")
    for employer_id in employer_ids:
        shutil.rmtree(var_dir / "declarations" / str(employer_id), ignore_errors=True)


def _delete_records(setup: Setup, declaration_id: int) -> None:
    """Empty the contribution records between the pipeline's posting and the ORM's."""
    with _bench_connection(setup) as connection:
        connection.execute(
            "DELETE FROM contributions_contributionrecord WHERE declaration_id = %s",
            [declaration_id],
        )
        connection.execute("VACUUM ANALYZE contributions_contributionrecord")
        connection.execute("CHECKPOINT")


# --- the children: the measured work, each in a fresh interpreter ---------------------------------


def _child(
    phase: str,
    arguments: dict[str, Any],
    *,
    environment: dict[str, str],
    config: Config,
    label: str,
) -> dict[str, Any]:
    child_environment = {**environment, "DJANGO_SETTINGS_MODULE": "pilar.settings"}
    if config.profile_dir is not None:
        config.profile_dir.mkdir(parents=True, exist_ok=True)
        child_environment["PILAR_BENCH_PROFILE"] = str(config.profile_dir / label)
    else:
        child_environment.pop("PILAR_BENCH_PROFILE", None)
    completed = subprocess.run(
        [sys.executable, "-m", "bench.declaration_ingest", phase, json.dumps(arguments)],
        cwd=REPOSITORY,
        env=child_environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=CHILD_TIMEOUT_SECONDS,
    )
    if completed.returncode != 0:
        raise BenchmarkFailure(
            f"{phase} child failed ({completed.returncode}):\n{completed.stdout[-2000:]}\n"
            f"{completed.stderr[-6000:]}"
        )
    lines = completed.stdout.strip().splitlines()
    if not lines:
        raise BenchmarkFailure(f"{phase} child printed nothing: {completed.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _peak_rss_mb() -> float:
    """This process's memory high-water mark (VmHWM), in MB."""
    status = Path("/proc/self/status")
    if status.exists():
        match = re.search(r"^VmHWM:\s+(\d+) kB", status.read_text(), re.MULTILINE)
        if match:
            return int(match.group(1)) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Timings:
    """Accumulated wall time of wrapped functions, by label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, module: Any, attribute: str, label: str) -> None:
        function = getattr(module, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(label, time.perf_counter() - started)

        setattr(module, attribute, timed)

    def add(self, label: str, seconds: float) -> None:
        self.seconds[label] = self.seconds.get(label, 0.0) + seconds

    @contextmanager
    def measure(self, label: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(label, time.perf_counter() - started)


def _run_job(declaration_id: int, expected_job: int | None) -> tuple[float, float]:
    """Claim the declaration's queued job and run it as the worker does; when it started and
    ended (``perf_counter``)."""
    from pilar.core import jobs
    from pilar.core.models import Job

    found = jobs.claim("bench")
    if found is None or found.pk != expected_job:
        raise BenchmarkFailure(
            f"expected job {expected_job} of declaration {declaration_id}, claimed "
            f"{found.pk if found else None}"
        )
    started = time.perf_counter()
    succeeded = jobs.run(found)
    elapsed = time.perf_counter() - started
    if not succeeded:
        error = Job.objects.filter(pk=found.pk).values_list("error", flat=True).first()
        raise BenchmarkFailure(f"job {found.name} failed:\n{error}")
    return started, started + elapsed


def _officer() -> Any:
    from pilar.core.actor import Actor
    from pilar.core.roles import Role

    return Actor.system("bench", roles=frozenset({Role.COLLECTIONS_OFFICER.value}))


def _phase_validate(arguments: dict[str, Any]) -> dict[str, Any]:
    from django.db import connection

    from pilar.contributions import bulk_calculation, services, validation
    from pilar.contributions.models import Declaration, DeclarationStatus
    from pilar.core import bulk

    timings = Timings()
    # services calls these through their modules, so wrapping the module attributes times the
    # real job's stages without a second pass.
    timings.wrap(services.fileformat, "read_declaration", "parse_s")
    timings.wrap(services.validation, "validate", "validate_statement_s")
    timings.wrap(validation, "registry_lookup", "registry_lookup_s")
    timings.wrap(validation, "employments_lookup", "employments_lookup_s")
    timings.wrap(validation, "_fold_columns", "fold_names_s")
    timings.wrap(bulk_calculation, "compute_contributions", "compute_s")
    timings.wrap(services.validation, "line_rows_for_insert", "stage_s")
    timings.wrap(bulk, "frame_insert", "stage_s")
    # COMMIT runs the deferred foreign-key checks of every row staged in the transaction.
    timings.wrap(connection, "commit", "validate_commit_s")

    data = Path(arguments["file"]).read_bytes()
    period = datetime.date.fromisoformat(arguments["period"])
    officer = _officer()
    started = time.perf_counter()
    declaration, created = services.declaration_submit(
        actor=officer,
        employer_id=arguments["employer_id"],
        period=period,
        kind="normal",
        file_name=Path(arguments["file"]).name,
        data=data,
    )
    submit_seconds = time.perf_counter() - started
    if not created:
        raise BenchmarkFailure(f"the file was recognised as declaration {declaration.pk}")
    del data
    job_started, job_ended = _run_job(declaration.pk, declaration.job_id)
    declaration = Declaration.objects.get(pk=declaration.pk)
    expected = arguments["lines"]
    if (
        declaration.status != DeclarationStatus.VALIDATED
        or declaration.error_count
        or declaration.worker_count != expected
    ):
        issues = list(declaration.issues.values_list("row", "column", "code", "value")[:10])
        raise BenchmarkFailure(
            f"declaration {declaration.pk}: {declaration.status}, {declaration.error_count} "
            f"errors, {declaration.worker_count} workers of {expected} "
            f"({declaration.rejection_code} {declaration.rejection_message}); first issues: "
            f"{issues}"
        )
    rss = _peak_rss_mb()
    started = time.perf_counter()
    services.declaration_confirm(actor=officer, declaration_id=declaration.pk)
    confirm_seconds = time.perf_counter() - started
    parts = timings.seconds
    return {
        "declaration_id": declaration.pk,
        "warnings": declaration.warning_count,
        "statement_total_due": str(declaration.total_due),
        "metrics": {
            "submit_s": submit_seconds,
            "validate_s": job_ended - job_started,
            "parse_validate_statement_s": parts["parse_s"] + parts["validate_statement_s"],
            "parse_s": parts["parse_s"],
            "validate_statement_s": parts["validate_statement_s"],
            "registry_lookup_s": parts["registry_lookup_s"],
            "employments_lookup_s": parts["employments_lookup_s"],
            "fold_names_s": parts["fold_names_s"],
            "compute_s": parts["compute_s"],
            "stage_s": parts["stage_s"],
            "validate_commit_s": parts.get("validate_commit_s", 0.0),
            "confirm_s": confirm_seconds,
            "validate_peak_rss_mb": rss,
        },
    }


def _record_count(declaration_id: int) -> int:
    from pilar.contributions.models import ContributionRecord

    return ContributionRecord.objects.filter(declaration_id=declaration_id).count()


def _phase_post(arguments: dict[str, Any]) -> dict[str, Any]:
    from django.db import connection

    from pilar.contributions import services
    from pilar.contributions.models import Declaration, DeclarationStatus

    declaration_id = arguments["declaration_id"]
    declaration = Declaration.objects.get(pk=declaration_id)
    marks: dict[str, float] = {}

    def mark(name: str) -> None:
        marks.setdefault(name, time.perf_counter())

    services._posting_checkpoint = mark
    timings = Timings()
    timings.wrap(connection, "commit", "commit_s")
    started, ended = _run_job(declaration_id, declaration.job_id)
    services._posting_checkpoint = None
    commit = timings.seconds.get("commit_s", 0.0)
    declaration.refresh_from_db()
    records = _record_count(declaration_id)
    if declaration.status != DeclarationStatus.POSTED or records != arguments["lines"]:
        raise BenchmarkFailure(
            f"declaration {declaration_id}: {declaration.status}, {records} records of "
            f"{arguments['lines']}"
        )
    return {
        "metrics": {
            "post_s": ended - started,
            "post_supersede_s": marks["superseded"] - started,
            "post_insert_s": marks["inserted"] - marks["superseded"],
            "post_movements_s": marks["movements"] - marks["inserted"],
            "post_commit_s": commit,
            "post_finish_s": ended - marks["movements"] - commit,
            "post_peak_rss_mb": _peak_rss_mb(),
        }
    }


def _phase_orm(arguments: dict[str, Any]) -> dict[str, Any]:
    """The straightforward ORM posting: instances from the staged lines, ``bulk_create``."""
    from django.db import transaction
    from django.utils import timezone

    from pilar.contributions.models import (
        MONEY_FIELDS,
        ContributionRecord,
        Declaration,
        DeclarationLine,
    )
    from pilar.contributions.services import RECORD_COLUMNS

    declaration = Declaration.objects.get(pk=arguments["declaration_id"])
    if _record_count(declaration.pk):
        raise BenchmarkFailure("contribution records left over before the ORM posting")
    started = time.perf_counter()
    with transaction.atomic():
        posted_at = timezone.now()
        lines = DeclarationLine.objects.filter(declaration_id=declaration.pk)
        ContributionRecord.objects.filter(
            employer_id=declaration.employer_id,
            period=declaration.period,
            superseded_at__isnull=True,
            person_id__in=lines.values("person_id"),
        ).update(superseded_by=declaration, superseded_at=posted_at)
        records = [
            ContributionRecord(
                person_id=line.person_id,
                employer_id=declaration.employer_id,
                period=declaration.period,
                declaration_id=declaration.pk,
                posted_at=posted_at,
                **{name: getattr(line, name) for name in RECORD_COLUMNS},
                **{name: line.pesos(name) for name in MONEY_FIELDS},
            )
            for line in lines.iterator(chunk_size=ORM_BATCH_SIZE)
        ]
        built = time.perf_counter()
        ContributionRecord.objects.bulk_create(records, batch_size=ORM_BATCH_SIZE)
    ended = time.perf_counter()
    count = len(records)
    del records
    if count != arguments["lines"] or _record_count(declaration.pk) != count:
        raise BenchmarkFailure(f"the ORM posting wrote {count} records of {arguments['lines']}")
    return {
        "metrics": {
            "post_s": ended - started,
            "read_build_s": built - started,
            "bulk_create_s": ended - built,
            "peak_rss_mb": _peak_rss_mb(),
        }
    }


PHASES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "validate": _phase_validate,
    "post": _phase_post,
    "orm": _phase_orm,
}


def _child_main(phase: str, raw: str) -> None:
    import django

    django.setup()
    function = PHASES[phase]
    arguments = json.loads(raw)
    profile_path = os.environ.get("PILAR_BENCH_PROFILE")
    if profile_path:
        profiler = cProfile.Profile()
        result = profiler.runcall(function, arguments)
        profiler.dump_stats(f"{profile_path}-{phase}.prof")
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
        Path(f"{profile_path}-{phase}.txt").write_text(text.getvalue())
    else:
        result = function(arguments)
    print(json.dumps(result), flush=True)


# --- the portal and the API: a real server ----------------------------------------------------


def _csrf(text: str, client: httpx.Client) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text)
    if match:
        return match.group(1)
    token = client.cookies.get("csrftoken")
    if token:
        return str(token)
    raise BenchmarkFailure("no CSRF token in the page nor in the cookies")


def _status(setup: Setup, declaration_id: int) -> tuple[str, int]:
    with _bench_connection(setup) as connection:
        row = connection.execute(
            "SELECT status, error_count FROM contributions_declaration WHERE id = %s",
            [declaration_id],
        ).fetchone()
    if row is None:
        raise BenchmarkFailure(f"declaration {declaration_id} vanished")
    return str(row[0]), int(row[1])


def _wait_for(
    wanted: str, status: Callable[[], tuple[str, int]], poll: Callable[[], None], what: str
) -> None:
    deadline = time.monotonic() + PORTAL_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        poll()
        current, errors = status()
        if current == wanted:
            return
        if current in ("rejected", "withdrawn"):
            raise BenchmarkFailure(f"{what}: the declaration was {current} ({errors} errors)")
        time.sleep(POLL_SECONDS)
    raise BenchmarkFailure(f"{what}: not {wanted} within {PORTAL_TIMEOUT_SECONDS:.0f} s")


def _portal_available(server: Server) -> bool:
    try:
        return httpx.get(f"{server.url}/portal/login/", timeout=10.0).status_code == 200
    except httpx.TransportError:
        return False


def _portal_run(server: Server, setup: Setup, fixtures: Fixtures) -> tuple[float, float]:
    """An employer signs in, uploads the file, follows the validation, confirms and follows the
    posting; seconds from the upload POST to validated and to posted."""
    timeout = httpx.Timeout(60.0)
    with httpx.Client(base_url=server.url, timeout=timeout, follow_redirects=False) as client:
        page = client.get("/portal/login/")
        _expect(page, 200, "GET /portal/login/")
        response = client.post(
            "/portal/login/",
            data={
                "rfc": fixtures.portal_rfc,
                "password": fixtures.portal_password,
                "csrfmiddlewaretoken": _csrf(page.text, client),
            },
            headers={"Referer": f"{server.url}/portal/login/"},
        )
        if response.status_code != 302:
            raise BenchmarkFailure(
                f"portal sign-in failed: {response.status_code} {response.text[:500]}"
            )
        form = client.get("/portal/declarations/upload/")
        _expect(form, 200, "GET /portal/declarations/upload/")
        data = fixtures.portal_file.read_bytes()
        referer = {"Referer": f"{server.url}/portal/declarations/upload/"}
        started = time.perf_counter()
        response = client.post(
            "/portal/declarations/upload/",
            data={
                "period": fixtures.period.strftime("%Y-%m"),
                "kind": "normal",
                "csrfmiddlewaretoken": _csrf(form.text, client),
            },
            files={"file": (fixtures.portal_file.name, data, "text/csv")},
            headers=referer,
        )
        location = response.headers.get("location", "")
        match = re.search(r"/portal/declarations/(\d+)/", location)
        if response.status_code != 302 or match is None:
            raise BenchmarkFailure(
                f"portal upload: {response.status_code} {location} {response.text[:800]}"
            )
        declaration_id = int(match.group(1))
        detail = f"/portal/declarations/{declaration_id}/"
        _expect(client.get(detail), 200, f"GET {detail}")

        def poll() -> None:
            # What the page's progress bar asks for while the job runs.
            _expect(
                client.get(f"{detail}progress/", headers={"HX-Request": "true"}),
                200,
                f"GET {detail}progress/",
            )

        def status() -> tuple[str, int]:
            return _status(setup, declaration_id)

        _wait_for("validated", status, poll, "portal validation")
        validated = time.perf_counter() - started
        page = client.get(detail)
        _expect(page, 200, f"GET {detail}")
        response = client.post(
            f"{detail}confirm/",
            data={"csrfmiddlewaretoken": _csrf(page.text, client)},
            headers={"Referer": f"{server.url}{detail}"},
        )
        if response.status_code not in (200, 302, 303):
            raise BenchmarkFailure(f"portal confirm: {response.status_code} {response.text[:800]}")
        _wait_for("posted", status, poll, "portal posting")
        return validated, time.perf_counter() - started


def _api_run(server: Server, fixtures: Fixtures) -> tuple[float, float]:
    """The same file through the REST API; seconds from the upload POST to validated and to
    posted."""
    headers = {"Authorization": f"Bearer {fixtures.api_token}", "X-Purpose": "benchmark"}
    timeout = httpx.Timeout(60.0)
    with httpx.Client(base_url=server.url, timeout=timeout, headers=headers) as client:
        data = fixtures.portal_file.read_bytes()
        started = time.perf_counter()
        response = client.post(
            "/api/v1/declarations",
            data={
                "employer_id": str(fixtures.employers.portal_id),
                "period": fixtures.period.strftime("%Y-%m"),
                "kind": "normal",
            },
            files={"file": (fixtures.portal_file.name, data, "text/csv")},
        )
        _expect(response, 202, "POST /api/v1/declarations")
        declaration_id = int(response.json()["id"])
        path = f"/api/v1/declarations/{declaration_id}"
        last: dict[str, Any] = {}

        def poll() -> None:
            answer = client.get(path)
            _expect(answer, 200, f"GET {path}")
            last.update(answer.json())

        def status() -> tuple[str, int]:
            return str(last.get("status")), int((last.get("counts") or {}).get("errors") or 0)

        _wait_for("validated", status, poll, "API validation")
        validated = time.perf_counter() - started
        _expect(client.post(f"{path}/confirm"), 202, f"POST {path}/confirm")
        _wait_for("posted", status, poll, "API posting")
        return validated, time.perf_counter() - started


# --- the benchmark ----------------------------------------------------------------------------


@dataclass
class IngestResult(BenchmarkResult):
    compared_with: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        document = super().as_json()
        document["compared_with"] = self.compared_with
        return document


def _code_version() -> str:
    """The commit measured, marked "+modified" when the pipeline's sources differ from it."""

    def git(*arguments: str) -> str:
        completed = subprocess.run(
            ["git", *arguments], cwd=REPOSITORY, capture_output=True, text=True, check=False
        )
        return completed.stdout.strip() if completed.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    modified = git(
        "status",
        "--porcelain",
        "--",
        "src/pilar/contributions",
        "src/pilar/core",
        ":(exclude)*/tests/*",
    )
    return f"{commit}+modified" if modified else commit


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def _one_run(
    number: int, config: Config, environment: dict[str, str], fixtures: Fixtures, var_dir: Path
) -> tuple[dict[str, float], dict[str, float]]:
    setup = config.setup
    employers = fixtures.employers
    lines = employers.large_lines
    _clean(setup, [employers.large_id, employers.portal_id], var_dir, vacuum=True)
    validated = _child(
        "validate",
        {
            "employer_id": employers.large_id,
            "period": fixtures.period.isoformat(),
            "file": str(fixtures.large_file),
            "lines": lines,
        },
        environment=environment,
        config=config,
        label=f"run{number}",
    )
    declaration_id = validated["declaration_id"]
    ours = dict(validated["metrics"])
    target = {"declaration_id": declaration_id, "lines": lines}
    # Alternate which posting goes first, so that drift in the machine's state (caches, the
    # table's bloat, checkpoints) does not always favour the same side.
    order = ("post", "orm") if number % 2 else ("orm", "post")
    orm: dict[str, float] = {}
    for position, phase in enumerate(order):
        if position:
            _delete_records(setup, declaration_id)
        else:
            with _bench_connection(setup) as connection:
                connection.execute("CHECKPOINT")
        outcome = _child(
            phase, target, environment=environment, config=config, label=f"run{number}"
        )["metrics"]
        if phase == "post":
            ours.update(outcome)
        else:
            orm = outcome
    ours["peak_rss_mb"] = max(ours.pop("validate_peak_rss_mb"), ours.pop("post_peak_rss_mb"))
    ours["lines_per_s"] = lines / (ours["validate_s"] + ours["post_s"])
    orm["lines_per_s"] = lines / (ours["validate_s"] + orm["post_s"])
    orm["ratio"] = orm["post_s"] / ours["post_s"]
    print(
        f"[run {number}] validate {ours['validate_s']:.1f} s (parse+validate+statement "
        f"{ours['parse_validate_statement_s']:.1f} s), post {ours['post_s']:.1f} s, "
        f"{ours['lines_per_s']:,.0f} lines/s, peak {ours['peak_rss_mb']:,.0f} MB; "
        f"ORM post {orm['post_s']:.1f} s (×{orm['ratio']:.1f}); warnings "
        f"{validated['warnings']:,}, total due {validated['statement_total_due']}",
        flush=True,
    )
    return ours, orm


def _serve_runs(
    config: Config, environment: dict[str, str], fixtures: Fixtures, var_dir: Path
) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """The 10,000-line file through the portal and the API, once per run."""
    setup = config.setup
    employers = [fixtures.employers.large_id, fixtures.employers.portal_id]
    _clean(setup, employers, var_dir, vacuum=True)
    server = Server(environment, var_dir / "serve.log")
    runs: list[dict[str, float]] = []
    try:
        server.wait_ready()
        portal = _portal_available(server)
        for number in range(1, setup.runs + 1):
            run: dict[str, float] = {}
            if portal:
                _clean(setup, employers, var_dir, vacuum=False)
                run["portal_10k_validated_s"], run["portal_10k_s"] = _portal_run(
                    server, setup, fixtures
                )
            _clean(setup, employers, var_dir, vacuum=False)
            run["api_10k_validated_s"], run["api_10k_s"] = _api_run(server, fixtures)
            print(f"[serve run {number}] {run}", flush=True)
            runs.append(run)
    finally:
        server.stop()
    return runs, {"portal_served": portal}


def run() -> BenchmarkResult:
    config = _config()
    setup = config.setup
    var_dir = Path(tempfile.mkdtemp(prefix="pilar-bench-ingest-"))
    code = _code_version()
    try:
        environment = _environment(setup, var_dir)
        database = _server_version(setup)
        prepared = _prepare_database(config, environment)
        _django(environment)
        fixtures = _prepare_fixtures(config, var_dir)
        ours: list[dict[str, float]] = []
        orm: list[dict[str, float]] = []
        # The machine may be shared: its load when each run starts goes with the figures.
        loads: list[float] = []
        for number in range(1, setup.runs + 1):
            loads.append(round(os.getloadavg()[0], 2))
            mine, reference = _one_run(number, config, environment, fixtures, var_dir)
            ours.append(mine)
            orm.append(reference)
        served, serve_params = _serve_runs(config, environment, fixtures, var_dir)
        ended_with = _code_version()
        if ended_with != code:
            # The children import the sources afresh: a change during the runs mixes versions.
            print(f"WARNING: the sources changed during the runs ({code} → {ended_with})")
            code = f"{code} → {ended_with} (changed during the runs)"
        _clean(
            setup,
            [fixtures.employers.large_id, fixtures.employers.portal_id],
            var_dir,
            vacuum=False,
        )
        for mine, extra in zip(ours, served, strict=True):
            mine.update(extra)
        reference_metrics = {
            name: _median([run[name] for run in orm]) for name in orm[0] if name != "ratio"
        }
        result = IngestResult(
            name=NAME,
            database=database,
            params={
                "lines": fixtures.employers.large_lines,
                "persons": setup.persons,
                "employers_seeded": setup.employers,
                "seed": SEED,
                "runs": setup.runs,
                "period": fixtures.period.strftime("%Y-%m"),
                "minimum_wage_daily": str(fixtures.minimum_wage),
                "file_mb": round(fixtures.large_file.stat().st_size / MB, 1),
                "portal_lines": fixtures.employers.portal_lines,
                "orm_batch_size": ORM_BATCH_SIZE,
                "peak_rss": "VmHWM of the validate and post child processes",
                "server": "pilar serve (gunicorn, 2 workers, embedded job workers), loopback",
                "code": code,
                "load_average_1m_at_run_start": loads,
                **prepared,
                **serve_params,
            },
            runs=ours,
            compared_with={
                "name": "django_orm_bulk_create",
                "metrics": reference_metrics,
                # The median of the runs' ratios: each run's two postings ran back to back.
                "ratio": _median([run["ratio"] for run in orm]),
                "runs": [{name: round(value, 3) for name, value in run.items()} for run in orm],
            },
        )
        _table(result)
        return result
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


def _table(result: IngestResult) -> None:
    """A short table of the medians, with the targets."""
    metrics = result.metrics()
    reference = result.compared_with
    rows = [
        ("lines", f"{result.params['lines']:,}", ""),
        (
            "parse + validate + statement",
            f"{metrics['parse_validate_statement_s']:.2f} s",
            "≤ 10 s",
        ),
        ("validation job (with staging)", f"{metrics['validate_s']:.2f} s", ""),
        ("posting", f"{metrics['post_s']:.2f} s", "≤ 20 s"),
        ("end to end", f"{metrics['lines_per_s']:,.0f} lines/s", "≥ 33,000 lines/s"),
        ("peak memory", f"{metrics['peak_rss_mb']:,.0f} MB", "≤ 2,048 MB"),
        ("ORM posting", f"{reference['metrics']['post_s']:.2f} s", ""),
        ("ORM ÷ ours (posting)", f"{reference['ratio']:.2f}", ""),
    ]
    for name, label in (
        ("portal_10k_s", "portal, 10,000 lines"),
        ("api_10k_s", "API, 10,000 lines"),
    ):
        if name in metrics:
            rows.append((label, f"{metrics[name]:.2f} s", "< 5 s"))
    width = max(len(row[0]) for row in rows)
    for name, value, target in rows:
        print(f"  {name:<{width}}  {value:>18}  {target}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in PHASES:
        _child_main(sys.argv[1], sys.argv[2])
    else:
        print("usage: python -m bench declaration_ingest", file=sys.stderr)
        sys.exit(2)
