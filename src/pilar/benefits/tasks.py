"""Background jobs of the benefits app: recalculation runs (``recalculation`` module docstring).

A run is executed set-based, in batches of ``BATCH_AWARDS`` awards in award id order, each batch
one transaction:

1. read the batch's active awards with the inputs of their newest calculation (PostgreSQL:
   ``COPY (SELECT …) TO STDOUT`` into Polars). The inputs are JSON; the query unpacks each
   calculation's once (``jsonb_to_record``) and sends only each input's value, not the labels
   and provenance stored beside it; Polars then casts each input's column to its type at once;
2. evaluate them with ``Package.evaluate_bulk``, one call per benefit of the package;
3. for an application: ``COPY`` the new amounts and values into a temporary staging table, then
   one ``INSERT … SELECT`` adds the calculations (copying each award's inputs inside the
   database) and one ``UPDATE … FROM`` sets the awards' amount, version and hash;
4. merge the batch's figures into the run's summary and move its cursor (the last award id
   done) and its progress, in the same transaction.

On PostgreSQL the next batch is read in a second connection while one is written (``_Reader``).

Resumable and idempotent: a batch's writes and the cursor that records them commit together, so
a run taken over after a crash (the queue's lease) starts after the last committed batch and
never writes a calculation twice; each batch also locks the run row first and skips itself if
another worker has meanwhile committed it. On SQLite the same statements run through plain
cursors (``core.bulk``'s executemany path).

The set of awards is fixed when a run starts: the active awards of the package with an id up to
the largest one then (``summary["upper"]``); an award granted during the run is left for the next.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Count, Max
from django.utils import timezone

from pilar.benefits import recalculation
from pilar.benefits.models import (
    Award,
    AwardCalculation,
    AwardStatus,
    CalculationReason,
    RecalculationRun,
    RunKind,
    RunStatus,
)
from pilar.core import bulk, jobs
from pilar.core.jobs import job
from pilar.core.models import AuditEvent, Channel, Job

if TYPE_CHECKING:
    from pilar.rules import Package, ParameterValue

BATCH_AWARDS = 100_000
# Read the next batch while this one is written (PostgreSQL only; see ``_Reader``).
READ_AHEAD = True
STAGE_TABLE = "benefits_recalculation_stage"
ERROR_TEXT_MAX = 4000

# Test hook, as ``contributions.services._posting_checkpoint``: called with "written" inside a
# batch's transaction after its writes, and with "committed" after the commit, so a test can
# crash a run at either point.
_batch_checkpoint: Callable[[str], None] | None = None


def _checkpoint(name: str) -> None:
    if _batch_checkpoint is not None:
        _batch_checkpoint(name)


class RunCannotStart(Exception):
    """A run that cannot be executed as requested (its package version is gone or changed):
    retrying will not help, so the run fails at once with this message."""


@job(recalculation.RECALCULATION_JOB)
def recalculate(*, job_id: int, run_id: int) -> None:
    recalculation_execute(run_id=run_id, job_id=job_id)


# --- what a run evaluates ---------------------------------------------------------------------


@dataclass(frozen=True)
class BenefitPlan:
    name: str
    eligible: str
    amount: str | None
    outputs: list[str]
    inputs: list[str]


@dataclass(frozen=True)
class Plan:
    run: RecalculationRun
    package: Package
    known_at: datetime.date
    overrides: dict[str, list[ParameterValue]]
    benefits: dict[str, BenefitPlan]
    inputs: list[str]  # every input any benefit needs, in the package's order

    @property
    def applying(self) -> bool:
        return self.run.kind == RunKind.APPLY


def _plan(run: RecalculationRun) -> Plan:
    from pilar.rules import RulesError, load_package

    try:
        package = load_package(run.package_name, run.package_version)
    except RulesError as error:
        raise RunCannotStart(error.message("en")) from error
    expected = (run.summary or {}).get("package_hash")
    if package.content_hash != expected:
        raise RunCannotStart(
            f"{run.package_name} {run.package_version} changed after the run was requested "
            f"(hash {package.content_hash[:12]}, requested {str(expected)[:12]})"
        )
    if run.kind == RunKind.APPLY and not recalculation.is_published(package):
        raise RunCannotStart(f"{run.package_name} {run.package_version} is not published")
    benefits = {}
    for info in package.benefits.values():
        outputs = [info.eligible] + ([info.amount] if info.amount else [])
        benefits[info.name] = BenefitPlan(
            name=info.name,
            eligible=info.eligible,
            amount=info.amount,
            outputs=outputs,
            inputs=package.required_inputs(outputs),
        )
    needed = {name for plan in benefits.values() for name in plan.inputs}
    return Plan(
        run=run,
        package=package,
        known_at=datetime.date.fromisoformat(run.summary["known_at"]),
        overrides=recalculation.parameter_values(package, run.overrides),
        benefits=benefits,
        inputs=[name for name in package.inputs if name in needed],
    )


# --- the run ----------------------------------------------------------------------------------


def recalculation_execute(*, run_id: int, job_id: int | None = None) -> RecalculationRun:
    """Execute a recalculation run to the end (module docstring). A finished run is returned as
    it is; one caught in the middle goes on after its last committed batch."""
    run = RecalculationRun.objects.get(pk=run_id)
    if run.status in (RunStatus.DONE, RunStatus.FAILED):
        return run
    try:
        plan = _plan(run)
    except RunCannotStart as error:
        _fail(run_id, str(error))
        run.refresh_from_db()
        return run
    try:
        cursor, last = _start(run_id)
        with _Reader(plan, last) as reader:
            reader.read_after(cursor)
            while (batch := reader.next()) is not None:
                (lower, upper), frame = batch
                reader.read_after(upper)
                _process_batch(plan, lower, upper, frame)
                if job_id is not None:
                    jobs.heartbeat(job_id)
                _checkpoint("committed")
        _finish(plan)
    except Exception as error:
        _record_failure(run_id, job_id, error)
        raise
    run.refresh_from_db()
    return run


def _awards_of(package_name: str) -> Any:
    return Award.objects.filter(package_name=package_name, status=AwardStatus.ACTIVE)


def _start(run_id: int) -> tuple[int, int]:
    """Mark the run running; on its first start, fix the set of awards it covers. Returns its
    cursor (the last award id done) and the last award id it covers."""
    with transaction.atomic():
        run = RecalculationRun.objects.select_for_update().get(pk=run_id)
        summary = dict(run.summary or {})
        if "upper" not in summary:
            found = _awards_of(run.package_name).aggregate(total=Count("pk"), last=Max("pk"))
            summary.update(upper=found["last"] or 0, cursor=0, batches=0)
            run.total = found["total"]
            run.processed = 0
        run.status = RunStatus.RUNNING
        run.started_at = run.started_at or timezone.now()
        run.error = ""
        run.summary = summary
        run.save(update_fields=["status", "started_at", "error", "summary", "total", "processed"])
    return int(summary["cursor"]), int(summary["upper"])


def _batch_after(package_name: str, cursor: int, last: int) -> tuple[int, int] | None:
    """The batch after award id ``cursor``, as award ids (lower, upper]: at most
    ``BATCH_AWARDS`` active awards of the package, none past ``last``."""
    if cursor >= last:
        return None
    remaining = _awards_of(package_name).filter(pk__gt=cursor, pk__lte=last).order_by("pk")
    found = remaining.values_list("pk", flat=True)[BATCH_AWARDS - 1 : BATCH_AWARDS].first()
    return cursor, found if found is not None else last


def _finish(plan: Plan) -> None:
    with transaction.atomic():
        run = RecalculationRun.objects.select_for_update().get(pk=plan.run.pk)
        run.status = RunStatus.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "finished_at"])
        summary = run.summary
        _audit(
            run,
            "recalculation.finish",
            {
                "status": [RunStatus.RUNNING, RunStatus.DONE],
                "evaluated": [None, summary.get("evaluated", 0)],
                "changed": [None, summary.get("changed", 0)],
                "errors": [None, (summary.get("errors") or {}).get("count", 0)],
            },
        )


def _fail(run_id: int, message: str) -> None:
    with transaction.atomic():
        run = RecalculationRun.objects.select_for_update().get(pk=run_id)
        run.status = RunStatus.FAILED
        run.error = message[:ERROR_TEXT_MAX]
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        _audit(run, "recalculation.fail", {"status": [None, RunStatus.FAILED]}, note=message)


def _record_failure(run_id: int, job_id: int | None, error: Exception) -> None:
    """Keep the error on the run. The queue retries the job; after its last attempt the run is
    failed too, so its page stops showing progress. Executed outside the queue (a test, a
    shell), the run stays as it is, to be executed again."""
    message = f"{type(error).__name__}: {error}"[:ERROR_TEXT_MAX]
    attempts = (
        Job.objects.filter(pk=job_id).values_list("attempts", flat=True).first()
        if job_id is not None
        else None
    )
    final = attempts is not None and attempts >= getattr(settings, "PILAR_JOB_MAX_ATTEMPTS", 3)
    if final:
        _fail(run_id, message)
    else:
        RecalculationRun.objects.filter(pk=run_id).update(error=message)


def _audit(run: RecalculationRun, action: str, changes: dict[str, Any], note: str = "") -> None:
    # A job has no request: its events name the officer who asked for the run, through the
    # bulk channel, as the contributions posting job does.
    user = run.created_by
    AuditEvent.objects.create(
        actor=user,
        actor_label=user.username if user is not None else "system",
        channel=Channel.BULK,
        action=action,
        entity_type="recalculation_run",
        entity_id=str(run.pk),
        changes=changes,
        note=note[:300],
    )


# --- one batch ----------------------------------------------------------------------------------


def _process_batch(plan: Plan, lower: int, upper: int, frame: pl.DataFrame) -> None:
    """Evaluate a batch read by ``read_awards`` and, for an application, write it; one
    transaction with the run's summary, cursor and progress."""
    with transaction.atomic():
        run = RecalculationRun.objects.select_for_update().get(pk=plan.run.pk)
        if int(run.summary["cursor"]) >= upper:
            return  # another worker committed this batch while this one waited for the lock
        _no_jit()
        evaluated, errors = evaluate_awards(plan, frame)
        if plan.applying and evaluated.height:
            write_calculations(plan, evaluated)
        figures = batch_figures(evaluated, errors)
        summary = merge_figures(run.summary, figures)
        summary["cursor"] = upper
        summary["batches"] = int(summary.get("batches", 0)) + 1
        run.summary = summary
        run.processed = min(run.total, run.processed + frame.height) if run.total else 0
        run.save(update_fields=["summary", "processed"])
        if plan.applying:
            _audit(
                run,
                "recalculation.batch",
                {
                    "awards": [None, evaluated.height],
                    "first_award": [None, lower + 1],
                    "last_award": [None, upper],
                    "errors": [None, errors.height],
                    "total_before": [None, str(recalculation.centavos(figures["before"]))],
                    "total_after": [None, str(recalculation.centavos(figures["after"]))],
                },
            )
        _checkpoint("written")


# --- reading ------------------------------------------------------------------------------------


class _Reader:
    """Finds and reads the batches, on PostgreSQL one ahead: while a batch is evaluated and
    written in this thread, the next one is found and read in another, through a connection
    of its own, so that the database works on both at once.

    Reading ahead changes nothing a batch sees: the next batch's awards and calculations are
    not the ones being written, and the write never depended on a lock taken by the read
    (``read_awards``). SQLite (one writer, small volumes) reads each batch when it comes."""

    def __init__(self, plan: Plan, last: int) -> None:
        self.plan = plan
        self.last = last
        self.pending: Future[Batch | None] | None = None
        self.after: int | None = None
        self.executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="recalculation-read")
            if READ_AHEAD and bulk.is_postgresql()
            else None
        )

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.executor is not None:
            # The reading thread's connection is its own: it is closed there.
            self.executor.submit(connections.close_all).result()
            self.executor.shutdown(wait=True)

    def read_after(self, cursor: int) -> None:
        """Start on the batch after award id ``cursor``."""
        if self.executor is not None:
            self.pending = self.executor.submit(self._read, cursor)
        else:
            self.after = cursor

    def next(self) -> Batch | None:
        """The batch asked for by ``read_after``: its bounds and its awards, or None when
        the run has no more."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            return pending.result()
        if self.after is not None:
            after, self.after = self.after, None
            return self._read(after)
        return None

    def _read(self, cursor: int) -> Batch | None:
        bounds = _batch_after(self.plan.run.package_name, cursor, self.last)
        if bounds is None:
            return None
        return bounds, _read_alone(self.plan, *bounds)


Batch = tuple[tuple[int, int], pl.DataFrame]


def _read_alone(plan: Plan, lower: int, upper: int) -> pl.DataFrame:
    """``read_awards`` in a transaction of its own (one consistent snapshot)."""
    with transaction.atomic():
        _no_jit()
        return read_awards(plan, lower, upper)


def _no_jit() -> None:
    if bulk.is_postgresql():
        # A batch's statements are plain joins over 100,000 rows, whose estimated cost switches
        # JIT compilation on: a third of a second per statement, for nothing.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


def _quote(name: str) -> str:
    return str(connection.ops.quote_name(name))


def read_awards(plan: Plan, lower: int, upper: int) -> pl.DataFrame:
    """The batch's active awards with the inputs of their newest calculation (the one with the
    largest id: calculations are only ever added), one text column per input, null when the
    calculation has none.

    The award rows are not locked: the write sets only what a recalculation owns (amount,
    version and hash, and ``version + 1``), so an officer's change made meanwhile, to the
    status say, is neither lost nor undone."""
    award = _quote(Award._meta.db_table)
    calculation = _quote(AwardCalculation._meta.db_table)
    parameters: list[Any] = []
    if bulk.is_postgresql():
        # The inputs are compressed on disk (a jsonb of about 2 kB): jsonb_to_record unpacks
        # them once per row into one small jsonb per input; eight lookups on the stored column
        # would decompress it eight times, which costs four times as much.
        names = [_quote(name) for name in plan.inputs]
        record = ", ".join(f"{name} jsonb" for name in names)
        extracted = "".join(f", x.{name} ->> 'value'" for name in names)
        unpack = (
            f" LEFT JOIN LATERAL jsonb_to_record(c.inputs) AS x({record}) ON true" if names else ""
        )
        newest = (
            f"LEFT JOIN LATERAL (SELECT l.id, l.inputs FROM {calculation} l "  # noqa: S608 — model table names
            "WHERE l.award_id = a.id ORDER BY l.id DESC LIMIT 1) c ON true"
        )
    else:
        # SQLite's json_extract gives numbers and booleans (1/0) their SQL type.
        extracted = "".join(", CAST(json_extract(c.inputs, %s) AS TEXT)" for _ in plan.inputs)
        parameters += [f'$."{name}".value' for name in plan.inputs]
        unpack = ""
        newest = (
            f"LEFT JOIN {calculation} c ON c.id = "  # noqa: S608 — model table names
            f"(SELECT MAX(l.id) FROM {calculation} l WHERE l.award_id = a.id)"
        )
    sql = (
        "SELECT a.id, a.person_id, a.benefit, a.frequency, CAST(a.amount AS TEXT), c.id"  # noqa: S608 — model table names
        f"{extracted} FROM {award} a {newest}{unpack} "
        "WHERE a.package_name = %s AND a.status = %s AND a.id > %s AND a.id <= %s "
        "ORDER BY a.id"
    )
    parameters += [plan.run.package_name, AwardStatus.ACTIVE, lower, upper]
    schema: dict[str, Any] = {
        "award_id": pl.Int64,
        "person_id": pl.Int64,
        "benefit": pl.String,
        "frequency": pl.String,
        "amount": pl.String,
        "calculation_id": pl.Int64,
        **{f"input:{name}": pl.String for name in plan.inputs},
    }
    frame = bulk.frame_query(sql, parameters, schema)
    return frame.with_columns(
        # Stored amounts have two decimals: through float64 and rounding, exact centavos.
        before=(pl.col("amount").cast(pl.Float64) * 100).round(0).cast(pl.Int64)
    ).drop("amount")


# --- evaluating -------------------------------------------------------------------------------


def _typed_input(name: str, type_name: str) -> tuple[pl.Expr, pl.Expr]:
    """The text column of an input as the engine's type, and a flag for a value that is present
    but unreadable as that type."""
    raw = pl.col(f"input:{name}")
    if type_name == "number":
        value = raw.cast(pl.Float64, strict=False)
    elif type_name == "bool":
        lowered = raw.str.to_lowercase()
        value = (
            pl.when(lowered.is_in(["true", "1"]))
            .then(pl.lit(True))
            .when(lowered.is_in(["false", "0"]))
            .then(pl.lit(False))
            .otherwise(pl.lit(None, dtype=pl.Boolean))
        )
    elif type_name == "date":
        value = raw.str.to_date("%Y-%m-%d", strict=False)
    else:
        value = raw
    return value.alias(name), (raw.is_not_null() & value.is_null())


def evaluate_awards(plan: Plan, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Evaluate a batch. Returns the awards evaluated (``award_id``, ``person_id``,
    ``benefit``, ``frequency``, ``calculation_id``, ``before`` and ``after`` in centavos —
    ``after`` null for a benefit decided on eligibility only —, and ``values_json``, the
    engine's values as the calculation stores them) and the awards in error (``award_id``,
    ``person_id``, ``code``)."""
    keys = ["award_id", "person_id", "benefit", "frequency", "calculation_id", "before"]
    done: list[pl.DataFrame] = []
    failed: list[pl.DataFrame] = []
    for (benefit,), rows in frame.group_by("benefit", maintain_order=True):
        benefit_plan = plan.benefits.get(str(benefit))
        if benefit_plan is None:
            failed.append(_errors(rows, pl.lit("unknown_benefit")))
            continue
        typed = []
        bad: list[pl.Expr] = []
        for name in benefit_plan.inputs:
            value, unreadable = _typed_input(name, plan.package.variables[name].type)
            typed.append(value)
            bad.append(pl.when(unreadable).then(pl.lit(f"bad_input:{name}")))
        checked = rows.with_columns(
            _input_error=pl.coalesce(bad) if bad else pl.lit(None, dtype=pl.String)
        )
        unreadable_rows = checked.filter(pl.col("_input_error").is_not_null())
        if unreadable_rows.height:
            failed.append(_errors(unreadable_rows, pl.col("_input_error")))
        readable = checked.filter(pl.col("_input_error").is_null())
        if readable.height == 0:
            continue
        results = plan.package.evaluate_bulk(
            readable.select(typed),
            on=plan.run.evaluation_date,
            known_at=plan.known_at,
            outputs=benefit_plan.outputs,
            overrides=plan.overrides,
            chunk_size=BATCH_AWARDS,
        )
        combined = pl.concat([readable.select(keys), results], how="horizontal")
        done_rows, failed_rows = _judge(combined, benefit_plan)
        done.append(done_rows)
        if failed_rows.height:
            failed.append(failed_rows)
    evaluated = pl.concat(done) if done else _empty_evaluated()
    errors = pl.concat(failed) if failed else _empty_errors()
    return evaluated, errors


def _judge(combined: pl.DataFrame, plan: BenefitPlan) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split evaluated rows into new calculations and errors (``recalculation.ERROR_CODES``)."""
    amount = pl.col(plan.amount) if plan.amount else None
    after = (amount * 100).round(0).cast(pl.Int64) if amount is not None else None
    # Polars' when/then chain changes type as it grows; it is an expression in the end.
    code: Any = pl.when(pl.col("_error").is_not_null()).then(pl.col("_error"))
    code = code.when(pl.col(plan.eligible).fill_null(False).not_()).then(pl.lit("not_eligible"))
    if after is not None:
        code = code.when(after.is_null()).then(pl.lit("no_amount"))
        code = code.when(after < 0).then(pl.lit("negative_amount"))
    judged = combined.with_columns(
        code=code.otherwise(pl.lit(None, dtype=pl.String)),
        after=after if after is not None else pl.lit(None, dtype=pl.Int64),
    )
    failed = _errors(judged.filter(pl.col("code").is_not_null()), pl.col("code"))
    good = judged.filter(pl.col("code").is_null())
    # The values as a calculation stores them: booleans as such, numbers as exact text.
    values = [pl.col(plan.eligible)]
    if plan.amount:
        cents = pl.col("after")
        values.append(
            pl.format("{}.{}", cents // 100, (cents % 100).cast(pl.String).str.zfill(2)).alias(
                plan.amount
            )
        )
    done = good.select(
        "award_id",
        "person_id",
        "benefit",
        "frequency",
        "calculation_id",
        "before",
        "after",
        pl.struct(values).struct.json_encode().alias("values_json"),
    )
    return done, failed


def _errors(rows: pl.DataFrame, code: pl.Expr) -> pl.DataFrame:
    return rows.select(pl.col("award_id"), pl.col("person_id"), code.cast(pl.String).alias("code"))


def _empty_evaluated() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "award_id": pl.Int64,
            "person_id": pl.Int64,
            "benefit": pl.String,
            "frequency": pl.String,
            "calculation_id": pl.Int64,
            "before": pl.Int64,
            "after": pl.Int64,
            "values_json": pl.String,
        }
    )


def _empty_errors() -> pl.DataFrame:
    return pl.DataFrame(schema={"award_id": pl.Int64, "person_id": pl.Int64, "code": pl.String})


# --- writing ------------------------------------------------------------------------------------


def write_calculations(plan: Plan, evaluated: pl.DataFrame) -> None:
    """A new calculation for every evaluated award and the award's new amount, version and
    hash, set-based through a staging table, in the caller's transaction.

    The calculation's inputs are copied from the one it was computed from, inside the
    database (compressed as they are stored, never decoded). Its ``created_by`` stays empty:
    its run names who asked for it, and a foreign key to the same user on every row would cost
    a key check per row at each commit for nothing."""
    stage = _quote(STAGE_TABLE)
    award = _quote(Award._meta.db_table)
    calculation = _quote(AwardCalculation._meta.db_table)
    postgresql = bulk.is_postgresql()
    run = plan.run
    now = timezone.now()
    package = plan.package
    first_award, last_award, first_calculation, last_calculation = evaluated.select(
        pl.col("award_id").min().alias("first_award"),
        pl.col("award_id").max().alias("last_award"),
        pl.col("calculation_id").min().alias("first_calculation"),
        pl.col("calculation_id").max().alias("last_calculation"),
    ).row(0)
    # A temporary table: never logged, never seen by another session, gone with the batch.
    # "temp." / "pg_temp." name the session's own schema, so the DROP of a table a rolled-back
    # or nested batch left behind can never reach a permanent table.
    temporary = f"pg_temp.{stage}" if postgresql else f"temp.{stage}"
    integer = "bigint" if postgresql else "integer"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {temporary}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {stage} (award_id {integer} NOT NULL, "
            f"calculation_id {integer}, amount_cents {integer}, values_json text NOT NULL)"
        )
        bulk.frame_insert(
            STAGE_TABLE,
            evaluated.select(
                "award_id",
                "calculation_id",
                pl.col("after").alias("amount_cents"),
                "values_json",
            ),
        )
        if postgresql:
            # Row estimates for the two joins below: without them the planner guesses.
            cursor.execute(f"ANALYZE {stage}")
        values = "CAST(s.values_json AS jsonb)" if postgresql else "s.values_json"
        cursor.execute(
            f"INSERT INTO {calculation} (award_id, run_id, reason, package_name, "  # noqa: S608 — model table names
            "package_version, package_hash, evaluation_date, known_at, inputs, amount, "
            f'"values", result, created_by_id, created_at) '
            f"SELECT s.award_id, %s, %s, %s, %s, %s, %s, %s, c.inputs, s.amount_cents / 100.0, "
            f"{values}, NULL, NULL, %s FROM {stage} s "
            # The id range lets the join start where the batch's calculations are instead of
            # reading the table's index from its first row.
            f"JOIN {calculation} c ON c.id = s.calculation_id AND c.id BETWEEN %s AND %s",
            [
                run.pk,
                CalculationReason.RECALCULATION,
                package.name,
                package.version,
                package.content_hash,
                run.evaluation_date,
                plan.known_at,
                now,
                first_calculation,
                last_calculation,
            ],
        )
        cursor.execute(
            f"UPDATE {award} SET amount = s.amount_cents / 100.0, "  # noqa: S608 — model table names
            "package_version = %s, package_hash = %s, updated_at = %s, version = version + 1 "
            f"FROM {stage} s WHERE {award}.id = s.award_id AND {award}.id BETWEEN %s AND %s",
            [
                package.version,
                package.content_hash,
                now,
                first_award,
                last_award,
            ],
        )
        cursor.execute(f"DROP TABLE {temporary}")


# --- the summary --------------------------------------------------------------------------------


def _bucket_expression(before: pl.Expr, difference: pl.Expr) -> pl.Expr:
    """The bucket of each change (``recalculation.BUCKETS``), by its percentage of the amount
    in payment; an increase from nothing has no percentage and counts as the largest."""
    percent = difference * 100.0 / before
    expression: Any = pl.when(difference == 0).then(pl.lit("unchanged"))
    expression = expression.when(before <= 0).then(pl.lit(recalculation.BUCKETS[-1][0]))
    for key, upper in recalculation.BUCKETS:
        if upper is None or key == "unchanged":
            continue
        # Decreases below 1% stop short of zero itself, which is "unchanged".
        condition = percent < 0 if key == "down_0_1" else percent <= upper
        expression = expression.when(condition).then(pl.lit(key))
    return expression.otherwise(pl.lit(recalculation.BUCKETS[-1][0]))


def batch_figures(evaluated: pl.DataFrame, errors: pl.DataFrame) -> dict[str, Any]:
    """A batch's contribution to the run's summary (``recalculation`` module docstring)."""
    money = evaluated.filter(pl.col("after").is_not_null()).with_columns(
        before=pl.col("before").fill_null(0)
    )
    money = money.with_columns(difference=pl.col("after") - pl.col("before"))
    difference = pl.col("difference")
    counts = money.select(
        changed=(difference != 0).sum(),
        increased=(difference > 0).sum(),
        decreased=(difference < 0).sum(),
        before=pl.col("before").sum(),
        after=pl.col("after").sum(),
    ).row(0, named=True)
    totals = {
        row["frequency"]: {
            "awards": row["awards"],
            "before": row["before"],
            "after": row["after"],
        }
        for row in money.group_by("frequency")
        .agg(awards=pl.len(), before=pl.col("before").sum(), after=pl.col("after").sum())
        .iter_rows(named=True)
    }
    buckets = dict(
        money.group_by(_bucket_expression(pl.col("before"), difference).alias("bucket"))
        .agg(pl.len())
        .iter_rows()
    )
    largest = (
        money.filter(difference != 0)
        .sort([difference.abs(), pl.col("award_id")], descending=[True, False])
        .head(recalculation.LARGEST_KEPT)
        .select("award_id", "person_id", "benefit", "before", "after")
        .to_dicts()
    )
    return {
        "evaluated": evaluated.height,
        "changed": int(counts["changed"] or 0),
        "increased": int(counts["increased"] or 0),
        "decreased": int(counts["decreased"] or 0),
        "before": int(counts["before"] or 0),
        "after": int(counts["after"] or 0),
        "totals": totals,
        "buckets": buckets,
        "largest": largest,
        "error_count": errors.height,
        "error_codes": dict(errors.group_by("code").agg(pl.len()).iter_rows()),
        "error_rows": errors.head(recalculation.ERROR_ROWS_KEPT).to_dicts(),
    }


def merge_figures(summary: dict[str, Any], figures: dict[str, Any]) -> dict[str, Any]:
    """The run's summary with a batch's figures added. Money is in centavos (exact integers)."""
    merged = dict(summary)
    for key in ("evaluated", "changed", "increased", "decreased"):
        merged[key] = int(merged.get(key, 0)) + figures[key]
    merged["unchanged"] = merged["evaluated"] - merged["changed"]
    totals = {name: dict(values) for name, values in (merged.get("totals") or {}).items()}
    for frequency, values in figures["totals"].items():
        current = totals.setdefault(frequency, {"awards": 0, "before": 0, "after": 0})
        for key in ("awards", "before", "after"):
            current[key] = int(current[key]) + int(values[key])
    merged["totals"] = totals
    buckets = dict(merged.get("buckets") or {})
    for key, count in figures["buckets"].items():
        buckets[key] = int(buckets.get(key, 0)) + int(count)
    merged["buckets"] = buckets
    largest = [*(merged.get("largest") or []), *figures["largest"]]
    largest.sort(key=lambda row: (-abs(row["after"] - row["before"]), row["award_id"]))
    merged["largest"] = largest[: recalculation.LARGEST_KEPT]
    errors = dict(merged.get("errors") or {"count": 0, "by_code": {}, "rows": []})
    by_code = dict(errors.get("by_code") or {})
    for code, count in figures["error_codes"].items():
        by_code[code] = int(by_code.get(code, 0)) + int(count)
    rows = [*(errors.get("rows") or []), *figures["error_rows"]]
    merged["errors"] = {
        "count": int(errors.get("count", 0)) + figures["error_count"],
        "by_code": by_code,
        "rows": rows[: recalculation.ERROR_ROWS_KEPT],
    }
    return merged
