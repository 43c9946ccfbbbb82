"""The rules benchmark: Pilar's rules engine against OpenFisca on the same million persons, the
single case with its full explanation, and recalculating a million awards on PostgreSQL.

Targets (issue 4): bulk evaluation no slower than OpenFisca (ratio ≤ 1.0) for the toy formula
and for the Ley 1973 old-age pension; one case with its full explanation ≤ 5 ms; recalculating
1,000,000 awards end to end, database read and write included, ≤ 60 s.

1. **Engines** (no database). Seeded NumPy arrays for 1,000,000 persons (``_toy_inputs``,
   ``_ley73_inputs``), the same arrays for both engines. Each engine is timed *from the input
   arrays in memory to the output array*:

   - Pilar: ``pl.DataFrame(arrays)`` (zero copy), ``Package.evaluate_bulk`` of the benefit's
     eligibility and amount on 2026-06-01, the amount column to a NumPy array (nulls, i.e. not
     eligible, as 0).
   - OpenFisca (``bench/openfisca_models.py``): a new simulation of 1,000,000 persons, every
     input ``set_input`` (OpenFisca converts them to float32), ``calculate`` of the amount for
     2026-06. Its ``calculate`` alone is reported too (``…_openfisca_calculate_s``).

   Loading the package and building the tax and benefit system are outside the timing (both are
   done once per process). ``PILAR_BENCH_ENGINE_RUNS`` runs (default 5), alternating which
   engine goes first; the metrics are the medians, the ratio is Pilar ÷ OpenFisca (the median
   of the runs' ratios). The two engines' amounts are compared on every row: the largest
   absolute and relative differences and the rows more than a centavo apart are in ``params``.
2. **Single case**: ``Package.evaluate`` of the Ley 1973 old-age pension (eligibility and amount,
   with the explanation tree) for 1,000 of the generated persons, each timed alone after a
   warm-up; ``single_case_explain_ms`` is the mean per case, ``…_p95_ms`` the 95th percentile.
3. **Recalculation** (PostgreSQL). The database ``pilar_bench`` (the registry benchmark's: its
   1,000,000 persons are reused when present, otherwise ``pilar seed`` makes them) gets, once and
   untimed, one ``imss_1973`` award per person (90% vejez, 10% cesantía), each with its claim,
   approved decision and first calculation, written with ``COPY`` (``core.bulk.frame_insert``).
   Inputs are stored as adjudication stores them (value, source, label and provenance of each
   input, about 1.4 kB a calculation) and the amounts are the engine's on the claim date
   (2015–2025). Decisions keep empty inputs and results, and first calculations no result tree:
   the recalculation never reads them, and a million explanation trees would only fill the disk.
   Timed, per run: ``recalculation_preview`` then ``recalculation_apply`` of the published
   ``imss_1973 1.0.0`` on 2026-06-01, each from the service call to the end of its job, run as
   the worker runs it (``jobs.run``; the worker's polling delay is not included):
   ``preview_1m_s`` and ``recalc_1m_s``. The apply job's time is split by wrapping the job's
   module functions: ``recalc_read_s`` (``COPY`` out of the awards and their inputs),
   ``recalc_evaluate_s`` (``evaluate_bulk`` and the judgement of each row), ``recalc_write_s``
   (staging ``COPY``, ``INSERT … SELECT``, ``UPDATE … FROM``); the rest is commits, summaries
   and progress. Between runs (untimed) the awards are put back and the run's calculations
   deleted, the tables vacuumed and a checkpoint taken. ``PILAR_BENCH_RUNS`` runs (default 3).

Environment: ``PILAR_BENCH_ROWS`` (engine rows, default 1,000,000), ``PILAR_BENCH_AWARDS``
(default: every seeded person up to 1,000,000), ``PILAR_BENCH_PERSONS``, ``PILAR_BENCH_RUNS``,
``PILAR_BENCH_ENGINE_RUNS``, ``PILAR_BENCH_DATABASE``, ``PILAR_BENCH_RESEED=1``,
``PILAR_BENCH_SKIP_DB=1`` (engines and single case only).
"""

from __future__ import annotations

import datetime
import gc
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench import BenchmarkFailure, BenchmarkResult, percentile
from bench import openfisca_models as reference
from bench.declaration_ingest import (
    Config,
    _bench_connection,
    _config,
    _django,
    _prepare_database,
    _server_version,
)
from bench.registry import _env_int, _environment

NAME = "rules"
REPOSITORY = Path(__file__).resolve().parent.parent
TOY_PACKAGE = REPOSITORY / "bench" / "schemes" / "toy_pension" / "1.0.0"
LEY73 = "imss_1973"
LEY73_VERSION = "1.0.0"
ON = datetime.date(2026, 6, 1)
PERIOD = "2026-06"
SEED = 4
SINGLE_CASES = 1000
WARM_UP = 50
BENCH_MAKER = "bench-rules-maker"
BENCH_CHECKER = "bench-rules-checker"
SEED_CHUNK = 100_000
FIRST_CLAIM_DAY = datetime.date(2015, 1, 1)
LAST_CLAIM_DAY = datetime.date(2025, 12, 31)


# --- generated persons --------------------------------------------------------------------------


def _toy_inputs(rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "age": rng.integers(50, 85, rows).astype(np.float64),
        "years": rng.integers(0, 46, rows).astype(np.float64),
        "average_salary": np.round(np.exp(rng.normal(np.log(9000.0), 0.6, rows)), 2),
    }


def _ley73_inputs(rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Claimants of all kinds: a third too young or short of weeks (denials), salaries spread
    over every art. 167 group (median 1.7 minimum wages of 2026), families of every kind."""
    return {
        "edad": rng.integers(55, 86, rows).astype(np.float64),
        "semanas_cotizadas": rng.integers(300, 2600, rows).astype(np.float64),
        "salario_promedio_diario": np.round(np.exp(rng.normal(np.log(1.7 * 315.04), 0.8, rows)), 2),
        "conyuge": rng.random(rows) < 0.6,
        "hijos_dependientes": rng.choice([0, 0, 0, 0, 1, 2, 3], rows).astype(np.float64),
        "padres_dependientes": rng.choice([0, 0, 1, 2], rows).astype(np.float64),
        "cotizo_antes_1997": rng.random(rows) < 0.9,
    }


# --- the engines --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    key: str  # metric prefix
    package: Any
    eligible: str
    amount: str
    inputs: dict[str, np.ndarray]


def _time_pilar(model: Model) -> tuple[float, np.ndarray]:
    gc.collect()
    started = time.perf_counter()
    frame = pl.DataFrame(model.inputs)
    result = model.package.evaluate_bulk(frame, on=ON, outputs=[model.eligible, model.amount])
    amounts = result.get_column(model.amount).fill_null(0.0).to_numpy()
    elapsed = time.perf_counter() - started
    errors = result.get_column("_error").drop_nulls()
    if errors.len():
        raise BenchmarkFailure(f"{model.key}: {errors.len()} rows in error, e.g. {errors[0]}")
    return elapsed, amounts


def _time_openfisca(system: Any, model: Model) -> tuple[float, float, np.ndarray]:
    gc.collect()
    started = time.perf_counter()
    count = len(next(iter(model.inputs.values())))
    simulation = reference.SimulationBuilder().build_default_simulation(system, count)
    for name, values in model.inputs.items():
        simulation.set_input(name, PERIOD, values)
    calculating = time.perf_counter()
    amounts: np.ndarray = simulation.calculate(model.amount, PERIOD)
    finished = time.perf_counter()
    return finished - started, finished - calculating, amounts


def _agreement(ours: np.ndarray, theirs: np.ndarray) -> dict[str, Any]:
    difference = np.abs(ours - theirs.astype(np.float64))
    scale = np.maximum(np.abs(ours), 1.0)
    worst = int(np.argmax(difference))
    return {
        "max_abs_difference": round(float(difference.max()), 6),
        "max_relative_difference": float(f"{float((difference / scale).max()):.3g}"),
        "rows_more_than_a_centavo_apart": int((difference > 0.01 + 1e-9).sum()),
        "worst_row": {"pilar": float(ours[worst]), "openfisca": float(theirs[worst])},
        "rows": len(ours),
    }


def _engine_runs(
    models: list[Model], system: Any, runs: int
) -> tuple[list[dict[str, float]], dict[str, Any]]:
    results: list[dict[str, float]] = []
    agreement: dict[str, Any] = {}
    for number in range(runs):
        figures: dict[str, float] = {}
        for model in models:
            # Alternate which engine goes first, so a warmer cache favours neither.
            if number % 2 == 0:
                theirs_s, calculate_s, theirs = _time_openfisca(system, model)
                ours_s, ours = _time_pilar(model)
            else:
                ours_s, ours = _time_pilar(model)
                theirs_s, calculate_s, theirs = _time_openfisca(system, model)
            figures[f"{model.key}_pilar_s"] = ours_s
            figures[f"{model.key}_openfisca_s"] = theirs_s
            figures[f"{model.key}_openfisca_calculate_s"] = calculate_s
            figures[f"{model.key}_ratio_vs_openfisca"] = ours_s / theirs_s
            if number == 0:
                agreement[model.key] = _agreement(ours, theirs)
        print(
            f"[engines] run {number + 1}: " + ", ".join(f"{k}={v:.3f}" for k, v in figures.items())
        )
        results.append(figures)
    return results, agreement


def _single_case(package: Any, inputs: dict[str, np.ndarray]) -> dict[str, float]:
    cases = []
    for index in range(WARM_UP + SINGLE_CASES):
        case: dict[str, Any] = {
            name: bool(values[index])
            if values.dtype == np.bool_
            else Decimal(str(round(float(values[index]), 2)))
            for name, values in inputs.items()
        }
        cases.append(case)
    outputs = ["elegible_vejez", "pension_vejez"]
    for case in cases[:WARM_UP]:
        package.evaluate(case, on=ON, outputs=outputs)
    timings = []
    nodes = 0
    for case in cases[WARM_UP:]:
        started = time.perf_counter()
        result = package.evaluate(case, on=ON, outputs=outputs)
        timings.append((time.perf_counter() - started) * 1000)
        nodes = max(nodes, _count_nodes(result.explanation))
    return {
        "single_case_explain_ms": statistics.fmean(timings),
        "single_case_explain_p95_ms": percentile(timings, 0.95),
        "single_case_explanation_nodes": float(nodes),
    }


def _count_nodes(nodes: Any) -> int:
    return sum(1 + _count_nodes(node.children) for node in nodes)


# --- recalculation: the awards ------------------------------------------------------------------


def _claim_dates(rows: int, rng: np.random.Generator) -> np.ndarray:
    span = (LAST_CLAIM_DAY - FIRST_CLAIM_DAY).days
    days = rng.integers(0, span + 1, rows)
    return np.datetime64(FIRST_CLAIM_DAY.isoformat()) + days.astype("timedelta64[D]")


def _award_inputs(rows: int, rng: np.random.Generator) -> pl.DataFrame:
    """Persons entitled on their claim date: 90% vejez at 65–85, 10% cesantía at 60–64."""
    cesantia = rng.random(rows) < 0.1
    age = np.where(cesantia, rng.integers(60, 65, rows), rng.integers(65, 86, rows))
    return pl.DataFrame(
        {
            "benefit": np.where(cesantia, "cesantia", "vejez"),
            "claim_date": _claim_dates(rows, rng),
            "edad": age.astype(np.float64),
            "semanas_cotizadas": rng.integers(500, 2600, rows).astype(np.float64),
            "salario_promedio_diario": np.maximum(
                np.round(np.exp(rng.normal(np.log(450.0), 0.7, rows)), 2), 60.0
            ),
            "conyuge": rng.random(rows) < 0.6,
            "hijos_dependientes": rng.choice([0, 0, 0, 0, 1, 2], rows).astype(np.float64),
            "padres_dependientes": rng.choice([0, 0, 1, 2], rows).astype(np.float64),
            "tiene_empleo_vigente": np.zeros(rows, dtype=bool),
            "cotizo_antes_1997": np.ones(rows, dtype=bool),
        }
    ).with_columns(pl.col("claim_date").cast(pl.Date))


def _amounts(package: Any, awards: pl.DataFrame) -> pl.DataFrame:
    """The engine's amount of each award on its claim date, in centavos."""
    parts = []
    for (benefit,), rows in awards.group_by("benefit", maintain_order=True):
        info = package.benefits[str(benefit)]
        result = package.evaluate_bulk(rows, on="claim_date", outputs=[info.eligible, info.amount])
        if result.get_column("_error").null_count() != rows.height or not bool(
            result.get_column(info.eligible).all()
        ):
            raise BenchmarkFailure(f"a generated {benefit} award is not entitled")
        parts.append(
            rows.with_columns(
                cents=(result.get_column(info.amount) * 100).round(0).cast(pl.Int64),
                eligible_name=pl.lit(info.eligible),
                amount_name=pl.lit(info.amount),
            )
        )
    return pl.concat(parts)


def _label_json(package: Any, name: str) -> str:
    return json.dumps(dict(package.variables[name].label), ensure_ascii=False)


def _inputs_json(package: Any) -> pl.Expr:
    """Each award's inputs as ``GatheredInputs.to_dict`` writes them, built column-wise."""

    def item(name: str, value: pl.Expr, source: str, detail: pl.Expr | str) -> list[pl.Expr]:
        head = f'"{name}": {{"value": '
        middle = f', "source": "{source}", "label": {_label_json(package, name)}, "detail": '
        detail_expr = pl.lit(detail) if isinstance(detail, str) else detail
        return [pl.lit(head), value, pl.lit(middle), detail_expr, pl.lit("}")]

    def text(expression: pl.Expr) -> pl.Expr:
        return expression.cast(pl.String)

    def boolean(name: str) -> pl.Expr:
        return pl.when(pl.col(name)).then(pl.lit("true")).otherwise(pl.lit("false"))

    def quoted(expression: pl.Expr) -> pl.Expr:
        return pl.concat_str([pl.lit('"'), expression, pl.lit('"')])

    birth = (
        pl.col("claim_date") - pl.duration(days=(pl.col("edad") * 365.25).cast(pl.Int64))
    ).cast(pl.String)
    days = (pl.col("semanas_cotizadas") * 7).cast(pl.Int64).cast(pl.String)
    window_to = pl.col("claim_date").cast(pl.String)
    window_from = (pl.col("claim_date") - pl.duration(days=1750)).cast(pl.String)
    salary = _money((pl.col("salario_promedio_diario") * 100).round(0).cast(pl.Int64))
    parts: list[pl.Expr] = [pl.lit("{")]
    pieces = [
        item(
            "edad",
            text(pl.col("edad").cast(pl.Int64)),
            "registry",
            _joined('{"birth_date": "', birth, '"}'),
        ),
        item(
            "semanas_cotizadas",
            text(pl.col("semanas_cotizadas").cast(pl.Int64)),
            "work_history",
            _joined(
                '{"counted_days": ',
                days,
                ', "days_from_records": ',
                days,
                ', "days_from_employments_only": 0, "first_day": "1985-02-04", "last_day": "',
                window_to,
                '"}',
            ),
        ),
        item(
            "salario_promedio_diario",
            quoted(salary),
            "work_history",
            _joined(
                '{"window_from": "',
                window_from,
                '", "window_to": "',
                window_to,
                '", "days": 1750, "days_without_salary": 0, "capped_days": 0, '
                '"uncapped_days": 1750, "cap_rule": "LSS 1973 art. 33 (10 x SM, IVCM) before '
                '1997-07-01; LSS 1997 transitory art. 25"}',
            ),
        ),
        item("conyuge", boolean("conyuge"), "registry", '{"relative_ids": []}'),
        item(
            "hijos_dependientes",
            text(pl.col("hijos_dependientes").cast(pl.Int64)),
            "registry",
            '{"under_16_ids": [], "students_declared": 0, "registered_16_to_24_ids": []}',
        ),
        item(
            "padres_dependientes",
            text(pl.col("padres_dependientes").cast(pl.Int64)),
            "declared",
            "{}",
        ),
        item(
            "tiene_empleo_vigente",
            boolean("tiene_empleo_vigente"),
            "work_history",
            '{"employment_ids": []}',
        ),
        item(
            "cotizo_antes_1997",
            boolean("cotizo_antes_1997"),
            "work_history",
            '{"first_day": "1985-02-04"}',
        ),
    ]
    for index, piece in enumerate(pieces):
        if index:
            parts.append(pl.lit(", "))
        parts.extend(piece)
    parts.append(pl.lit("}"))
    return pl.concat_str(parts)


def _joined(*parts: str | pl.Expr) -> pl.Expr:
    """Text and columns joined into one string column (JSON written column-wise)."""
    return pl.concat_str([pl.lit(part) if isinstance(part, str) else part for part in parts])


def _money(cents: pl.Expr) -> pl.Expr:
    return pl.format("{}.{}", cents // 100, (cents % 100).cast(pl.String).str.zfill(2))


def _seed_awards(count: int) -> dict[str, Any]:
    """One award per person for the first ``count`` persons (module docstring, part 3)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from pilar.core import bulk
    from pilar.core.models import RoleAssignment, User
    from pilar.core.roles import Role
    from pilar.rules import load_package

    package = load_package(LEY73, LEY73_VERSION)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE benefits_awardcalculation, benefits_award, benefits_decision, "
            "benefits_claim, benefits_recalculationrun RESTART IDENTITY CASCADE"
        )
        cursor.execute("DELETE FROM core_job WHERE name = 'benefits.recalculate'")
        cursor.execute("SELECT id FROM registry_person ORDER BY id LIMIT %s", [count])
        person_ids = np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)
    if len(person_ids) < count:
        raise BenchmarkFailure(f"only {len(person_ids)} persons to give awards to")
    maker = User.objects.get_or_create(username=BENCH_MAKER)[0]
    checker = User.objects.get_or_create(username=BENCH_CHECKER)[0]
    # The maker asks for the runs: a benefits officer, who holds the recalculation permission.
    RoleAssignment.objects.get_or_create(user=maker, role=Role.BENEFITS_OFFICER.value)
    rng = np.random.default_rng(SEED)
    started = time.perf_counter()
    awards = _amounts(package, _award_inputs(count, rng))
    awards = awards.with_columns(
        id=pl.int_range(1, count + 1, dtype=pl.Int64),
        person_id=pl.Series(person_ids),
    )
    now = timezone.now()
    common = {
        "package_name": pl.lit(LEY73),
        "package_version": pl.lit(package.version),
        "package_hash": pl.lit(package.content_hash),
    }
    amount = _money(pl.col("cents"))
    for offset in range(0, count, SEED_CHUNK):
        chunk = awards.slice(offset, SEED_CHUNK)
        with transaction.atomic():
            bulk.frame_insert(
                "benefits_claim",
                chunk.select(
                    "id",
                    "person_id",
                    package=pl.lit(LEY73),
                    benefit=pl.col("benefit"),
                    claim_date=pl.col("claim_date"),
                    status=pl.lit("granted"),
                    declared=pl.lit('{"padres_dependientes": 0}'),
                    entered_by_id=pl.lit(maker.pk),
                    withdrawal_reason=pl.lit(""),
                    created_at=pl.lit(now),
                    updated_at=pl.lit(now),
                    version=pl.lit(3),
                ),
            )
            bulk.frame_insert(
                "benefits_decision",
                chunk.select(
                    "id",
                    claim_id=pl.col("id"),
                    outcome=pl.lit("granted"),
                    amount=amount,
                    frequency=pl.lit("monthly"),
                    start_date=pl.col("claim_date"),
                    **common,
                    evaluation_date=pl.col("claim_date"),
                    known_at=pl.col("claim_date"),
                    inputs=pl.lit("{}"),
                    result=pl.lit("{}"),
                    status=pl.lit("approved"),
                    made_by_id=pl.lit(maker.pk),
                    made_at=pl.lit(now),
                    checked_by_id=pl.lit(checker.pk),
                    checked_at=pl.lit(now),
                    return_reason=pl.lit(""),
                ),
            )
            bulk.frame_insert(
                "benefits_award",
                chunk.select(
                    "id",
                    "person_id",
                    claim_id=pl.col("id"),
                    decision_id=pl.col("id"),
                    package_name=pl.lit(LEY73),
                    benefit=pl.col("benefit"),
                    amount=amount,
                    frequency=pl.lit("monthly"),
                    start_date=pl.col("claim_date"),
                    package_version=pl.lit(package.version),
                    package_hash=pl.lit(package.content_hash),
                    status=pl.lit("active"),
                    created_at=pl.lit(now),
                    updated_at=pl.lit(now),
                    version=pl.lit(1),
                ),
            )
            bulk.frame_insert(
                "benefits_awardcalculation",
                chunk.select(
                    "id",
                    award_id=pl.col("id"),
                    reason=pl.lit("award"),
                    **common,
                    evaluation_date=pl.col("claim_date"),
                    known_at=pl.col("claim_date"),
                    inputs=_inputs_json(package),
                    amount=amount,
                    values=pl.concat_str(
                        [
                            pl.lit('{"'),
                            pl.col("eligible_name"),
                            pl.lit('": true, "'),
                            pl.col("amount_name"),
                            pl.lit('": "'),
                            amount,
                            pl.lit('"}'),
                        ]
                    ),
                    created_by_id=pl.lit(checker.pk),
                    created_at=pl.lit(now),
                ),
            )
        print(f"[setup] {min(offset + SEED_CHUNK, count):,} awards written", flush=True)
    with connection.cursor() as cursor:
        for table in (
            "benefits_claim",
            "benefits_decision",
            "benefits_award",
            "benefits_awardcalculation",
        ):
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, count])
    return {"awards_seed_s": round(time.perf_counter() - started, 1)}


def _sample_inputs_size() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT avg(pg_column_size(inputs))::int FROM benefits_awardcalculation")
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _awards_ready(count: int) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM benefits_award), "
            "(SELECT count(*) FROM benefits_awardcalculation), "
            "(SELECT count(*) FROM core_user WHERE username = %s)",
            [BENCH_MAKER],
        )
        awards, calculations, makers = cursor.fetchone()
    return (awards, makers) == (count, 1) and calculations >= count


def _revert(setup: Any) -> None:
    """Put the awards back as seeded and forget the runs (untimed)."""
    with _bench_connection(setup) as connection:
        connection.execute(
            "UPDATE benefits_award a SET amount = c.amount, package_version = c.package_version, "
            "package_hash = c.package_hash, version = 1, updated_at = a.created_at "
            "FROM benefits_awardcalculation c WHERE c.award_id = a.id AND c.reason = 'award' "
            "AND (a.version <> 1 OR a.amount IS DISTINCT FROM c.amount "
            "OR a.package_hash <> c.package_hash)"
        )
        connection.execute("DELETE FROM benefits_awardcalculation WHERE run_id IS NOT NULL")
        connection.execute("DELETE FROM benefits_recalculationrun")
        connection.execute("DELETE FROM core_job WHERE name = 'benefits.recalculate'")
        # A full rewrite packs the table by its fillfactor (migration 0002), so every run starts
        # from the layout a node has after its first recalculation.
        connection.execute("VACUUM FULL ANALYZE benefits_award")
        connection.execute("VACUUM ANALYZE benefits_awardcalculation")
        connection.execute("CHECKPOINT")


# --- recalculation: the runs --------------------------------------------------------------------


@contextmanager
def _timed(module: Any, names: dict[str, str], totals: dict[str, float]) -> Iterator[None]:
    """Wrap ``module``'s functions so each call adds its time to ``totals[metric]``."""
    originals = {name: getattr(module, name) for name in names}

    def wrap(function: Callable[..., Any], metric: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                totals[metric] = totals.get(metric, 0.0) + time.perf_counter() - started

        return timed

    for name, metric in names.items():
        setattr(module, name, wrap(originals[name], metric))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(module, name, function)


def _execute(run: Any) -> None:
    """Run the run's job as a worker does (``jobs.run`` after claiming it)."""
    from django.utils import timezone

    from pilar.core import jobs
    from pilar.core.models import Job, JobStatus

    Job.objects.filter(pk=run.job_id).update(
        status=JobStatus.RUNNING, attempts=1, leased_until=timezone.now() + jobs._lease()
    )
    found = Job.objects.get(pk=run.job_id)
    if not jobs.run(found):
        raise BenchmarkFailure(f"the job of run {run.pk} failed: {found.error or '?'}")


def _recalculation_run(count: int) -> dict[str, float]:
    from pilar.benefits import recalculation, tasks
    from pilar.benefits.models import AwardCalculation, RecalculationRun, RunStatus
    from pilar.core.actor import Actor
    from pilar.core.models import User

    actor = Actor.for_user(User.objects.get(username=BENCH_MAKER), channel="ui")
    figures: dict[str, float] = {}

    started = time.perf_counter()
    preview = recalculation.recalculation_preview(
        actor=actor, package=LEY73, version=LEY73_VERSION, overrides={}, on=ON
    )
    _execute(preview)
    figures["preview_1m_s"] = time.perf_counter() - started

    phases: dict[str, float] = {}
    with _timed(
        tasks,
        {
            "read_awards": "recalc_read_s",
            "evaluate_awards": "recalc_evaluate_s",
            "write_calculations": "recalc_write_s",
        },
        phases,
    ):
        started = time.perf_counter()
        run = recalculation.recalculation_apply(
            actor=actor, package=LEY73, version=LEY73_VERSION, on=ON, reason="rules benchmark"
        )
        _execute(run)
        figures["recalc_1m_s"] = time.perf_counter() - started
    figures.update(phases)
    run = RecalculationRun.objects.get(pk=run.pk)
    written = AwardCalculation.objects.filter(run=run).count()
    if run.status != RunStatus.DONE or written + run.summary["errors"]["count"] != count:
        raise BenchmarkFailure(
            f"run {run.pk}: {run.status}, {written} calculations for {count} awards, "
            f"errors {run.summary.get('errors', {}).get('by_code')}"
        )
    figures["recalc_awards_per_s"] = count / figures["recalc_1m_s"]
    figures["recalc_changed"] = float(run.summary["changed"])
    figures["recalc_errors"] = float(run.summary["errors"]["count"])
    return figures


def _recalculation(config: Config, var_dir: Path) -> tuple[list[dict[str, float]], dict[str, Any]]:
    setup = config.setup
    environment = _environment(setup, var_dir)
    prepared = _prepare_database(config, environment)
    _django(environment)
    count = _env_int("PILAR_BENCH_AWARDS", min(setup.persons, 1_000_000), minimum=100)
    params: dict[str, Any] = {"awards": count, **prepared}
    if config.reseed or not _awards_ready(count):
        print(f"[setup] writing {count:,} awards …", flush=True)
        params.update(_seed_awards(count))
        params["awards_reused"] = False
    else:
        params["awards_reused"] = True
    _revert(setup)
    params["inputs_bytes_per_calculation"] = _sample_inputs_size()
    runs = []
    for number in range(setup.runs):
        figures = _recalculation_run(count)
        print(
            f"[recalculation] run {number + 1}: "
            + ", ".join(f"{key}={value:.2f}" for key, value in figures.items()),
            flush=True,
        )
        runs.append(figures)
        _revert(setup)
    return runs, params


# --- the benchmark ------------------------------------------------------------------------------


def run() -> BenchmarkResult:
    from pilar.rules import load_package

    rows = _env_int("PILAR_BENCH_ROWS", 1_000_000, minimum=1000)
    engine_runs = _env_int("PILAR_BENCH_ENGINE_RUNS", 5, minimum=1)
    rng = np.random.default_rng(SEED)
    toy = load_package(path=TOY_PACKAGE)
    ley73 = load_package(LEY73, LEY73_VERSION)
    system = reference.build_system(ley73)
    models = [
        Model("toy", toy, "toy_eligible", "toy_pension", _toy_inputs(rows, rng)),
        Model("ley73", ley73, "elegible_vejez", "pension_vejez", _ley73_inputs(rows, rng)),
    ]
    engine, agreement = _engine_runs(models, system, engine_runs)
    single = [_single_case(ley73, models[1].inputs) for _ in range(engine_runs)]
    for figures, case in zip(engine, single, strict=True):
        figures.update(case)
    params: dict[str, Any] = {
        "rows": rows,
        "engine_runs": engine_runs,
        "evaluation_date": ON.isoformat(),
        "openfisca_core": _openfisca_version(),
        "polars": pl.__version__,
        "timed": (
            "from the input arrays in memory to the output array: Pilar = DataFrame + "
            "evaluate_bulk + amount column to NumPy; OpenFisca = new simulation + set_input of "
            "every input + calculate"
        ),
        "agreement": agreement,
        "single_cases": SINGLE_CASES,
    }
    database = "none"
    runs = engine
    if os.environ.get("PILAR_BENCH_SKIP_DB") != "1":
        config = _config()
        var_dir = Path(tempfile.mkdtemp(prefix="pilar-bench-rules-"))
        try:
            database = _server_version(config.setup)
            recalc_runs, recalc_params = _recalculation(config, var_dir)
        finally:
            shutil.rmtree(var_dir, ignore_errors=True)
        params["recalculation"] = {
            "package": f"{LEY73} {LEY73_VERSION}",
            "evaluation_date": ON.isoformat(),
            "runs": config.setup.runs,
            "timed": "service call to the end of the job, run in-process as the worker runs it",
            **recalc_params,
        }
        # Engine runs and recalculation runs differ in number: each metric is the median of
        # its own runs, so the recalculation figures go into the first runs.
        runs = [dict(figures) for figures in engine]
        for index, figures in enumerate(recalc_runs):
            runs[index % len(runs)].update(figures)
    result = RulesResult(name=NAME, database=database, params=params, runs=runs)
    _table(result)
    return result


class RulesResult(BenchmarkResult):
    """Engine metrics come from every run, recalculation metrics from the runs that have them."""

    def metrics(self) -> dict[str, float]:
        names: dict[str, None] = {}
        for figures in self.runs:
            names.update(dict.fromkeys(figures))
        return {
            name: round(
                statistics.median(figures[name] for figures in self.runs if name in figures), 3
            )
            for name in names
        }


def _openfisca_version() -> str:
    from importlib.metadata import version

    return version("openfisca-core")


def _table(result: BenchmarkResult) -> None:
    metrics = result.metrics()
    rows = [
        (
            "toy: Pilar / OpenFisca",
            f"{metrics['toy_pilar_s']:.3f} s / {metrics['toy_openfisca_s']:.3f} s",
            "",
        ),
        ("toy ratio", f"{metrics['toy_ratio_vs_openfisca']:.2f}", "≤ 1.0"),
        (
            "Ley 1973: Pilar / OpenFisca",
            f"{metrics['ley73_pilar_s']:.3f} s / {metrics['ley73_openfisca_s']:.3f} s",
            "",
        ),
        ("Ley 1973 ratio", f"{metrics['ley73_ratio_vs_openfisca']:.2f}", "≤ 1.0"),
        ("single case, full explanation", f"{metrics['single_case_explain_ms']:.2f} ms", "≤ 5 ms"),
    ]
    if "recalc_1m_s" in metrics:
        rows.append(("recalculation, 1M awards", f"{metrics['recalc_1m_s']:.1f} s", "≤ 60 s"))
        rows.append(("preview, 1M awards", f"{metrics['preview_1m_s']:.1f} s", ""))
    width = max(len(row[0]) for row in rows)
    for name, value, target in rows:
        print(f"  {name:<{width}}  {value:>28}  {target}")
