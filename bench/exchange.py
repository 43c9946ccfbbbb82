"""The exchange benchmark: signed exchanges between two real Pilar nodes on PostgreSQL, the
latency the exchange layer adds, and the transparency log's appends and proofs.

A hub (``MX-HUB``) and two institutes (``MX-IMSS`` answering, ``MX-ISSSTECALI`` asking) are set
up with ``pilar.exchange.federation`` exactly as ``make demo-federation`` does (keys, members,
agreements, the signed trust list), each on its own PostgreSQL database on the server of
DATABASE_URL; the answering institute is seeded with ``PILAR_BENCH_X_PERSONS`` persons and
served by ``pilar serve`` (gunicorn, two worker processes).

Metrics (BENCHMARKS.md):

- ``exchanges_per_s``: completed person-verification exchanges (``search`` by CURP) per second,
  from ``PILAR_BENCH_X_CLIENTS`` consumer processes × 4 threads calling ``messaging.send`` for
  20 s. Completed means: the request signed, archived and logged at the consumer; verified,
  checked against the agreement, answered, archived and logged at the provider; the signed
  response verified, bound to its request, archived and logged at the consumer; one person
  record answered. Both nodes and the clients share this machine's two cores.
- ``added_latency_p99_ms``: what the exchange layer adds to one hop. One client alternates a
  signed exchange and the same lookup through the provider's staff REST API
  (``GET /api/v1/persons/by-identifier/CURP/{curp}``, same server, same database, token
  authentication, no signatures, archive or log); the figure is the 99th percentile of the
  per-pair difference. ``exchange_latency_p50_ms``/``_p99_ms`` and ``direct_latency_p99_ms``
  are reported beside it.
- ``log_appends_per_s``: leaves appended by 4 threads, each leaf in its own committed
  transaction (durable), while the integrator runs every 0.25 s as in ``pilar serve``;
  ``integration_lag_p99_ms`` is the time from a leaf's commit to the first signed checkpoint
  that covers it (goal ≤ 1 s).
- ``proof_verify_ms``: verifying an inclusion proof plus the checkpoint's signed note (median
  over 1,000 random leaves of the log just built); ``proof_fetch_ms`` is reading the proof
  from the database.

Environment: ``PILAR_BENCH_X_PERSONS`` (default 20,000), ``PILAR_BENCH_RUNS`` (default 3;
metrics are medians), ``PILAR_BENCH_X_SECONDS`` (20), ``PILAR_BENCH_X_CLIENTS`` (2).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import dj_database_url
import psycopg
from psycopg import sql

from bench import BenchmarkFailure, BenchmarkResult, percentile
from bench.registry import _free_port

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/pilar"


def _env_int(name: str, default: int) -> int:
    value = int(os.environ.get(name, default))
    if value < 1:
        raise BenchmarkFailure(f"{name} must be at least 1")
    return value


def _server(url: str) -> dict[str, Any]:
    config = dj_database_url.parse(url)
    return {
        "host": config.get("HOST") or "127.0.0.1",
        "port": config.get("PORT") or 5432,
        "user": config.get("USER") or "postgres",
        "password": config.get("PASSWORD") or None,
    }


def _recreate(url: str, name: str) -> str:
    """Drop and create a database on the server of ``url``; returns its URL."""
    server = _server(url)
    with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=10, **server) as db:
        db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    password = f":{server['password']}" if server["password"] else ""
    return f"postgres://{server['user']}{password}@{server['host']}:{server['port']}/{name}"


def _server_version(url: str) -> str:
    with psycopg.connect(dbname="postgres", connect_timeout=10, **_server(url)) as db:
        row = db.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {str(row[0]).split(' ')[0] if row else '?'}"


def _case(mode: str, environment: dict[str, str], *arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.exchange_case", mode, *arguments],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    stdout, stderr = process.communicate(timeout=1800)
    if process.returncode != 0:
        raise BenchmarkFailure(f"bench.exchange_case failed:\n{stderr[-4000:]}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


def _curps(url: str, count: int) -> list[str]:
    with psycopg.connect(url, connect_timeout=10) as db:
        rows = db.execute(
            "SELECT value FROM registry_identifier WHERE scheme = 'CURP' AND is_active "
            "ORDER BY random() LIMIT %s",
            [count],
        ).fetchall()
    return [row[0] for row in rows]


def _one_run(
    *,
    info: Any,
    consumer_env: dict[str, str],
    provider: Any,
    curp_file: Path,
    token: str,
    seconds: int,
    clients: int,
    log_spec: Any,
) -> dict[str, float]:
    from pilar.exchange import federation

    loads = [
        _case(
            "load",
            consumer_env,
            "--receiver",
            provider.code,
            "--curps",
            str(curp_file),
            "--seconds",
            str(seconds),
        )
        for _ in range(clients)
    ]
    load_results = [_result(process) for process in loads]
    errors = [error for item in load_results for error in item["errors"]]
    failed = sum(item["failed"] for item in load_results)
    if errors or failed:
        raise BenchmarkFailure(f"{failed} exchanges failed; errors: {errors[:3]}")
    completed = sum(item["completed"] for item in load_results)
    latency = _result(
        _case(
            "latency",
            consumer_env,
            "--receiver",
            provider.code,
            "--curps",
            str(curp_file),
            "--direct-url",
            provider.url,
            "--token",
            token,
        )
    )
    if latency["failures"]:
        raise BenchmarkFailure(f"{latency['failures']} latency requests failed")
    signed, direct = latency["signed_ms"], latency["direct_ms"]
    added = [a - b for a, b in zip(signed, direct, strict=True)]
    # The log on a node of its own, so its figures are the log's alone.
    log_spec.var_dir.mkdir(parents=True, exist_ok=True)
    log_env = federation.node_env(log_spec, None)
    federation.run_pilar(log_spec, "migrate", "--noinput", env=log_env)
    federation.run_pilar(log_spec, "exchange", "keys", "init", env=log_env)
    log = _result(_case("log", log_env))
    return {
        "exchanges_per_s": completed / seconds,
        "added_latency_p99_ms": percentile(added, 0.99),
        "exchange_latency_p50_ms": statistics.median(signed),
        "exchange_latency_p99_ms": percentile(signed, 0.99),
        "direct_latency_p99_ms": percentile(direct, 0.99),
        "log_appends_per_s": log["appends_per_s"],
        "integration_lag_p99_ms": log["integration_lag_p99_ms"],
        "proof_verify_ms": log["proof_verify_ms"],
        "proof_fetch_ms": log["proof_fetch_ms"],
    }


def run() -> BenchmarkResult:
    from pilar.exchange import federation

    server_url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    persons = _env_int("PILAR_BENCH_X_PERSONS", 20_000)
    runs = _env_int("PILAR_BENCH_RUNS", 3)
    seconds = _env_int("PILAR_BENCH_X_SECONDS", 20)
    clients = _env_int("PILAR_BENCH_X_CLIENTS", 2)
    database = _server_version(server_url)
    result = BenchmarkResult(
        name="exchange",
        database=database,
        params={
            "persons": persons,
            "runs": runs,
            "seconds": seconds,
            "client_processes": clients,
            "client_threads": 4,
            "provider_workers": 2,
            "log_threads": 4,
        },
    )
    with tempfile.TemporaryDirectory(prefix="pilar-bench-exchange-") as scratch:
        root = Path(scratch)
        specs = [
            federation.NodeSpec(
                code=code,
                role=role,
                name=name,
                port=_free_port(),
                database_url=_recreate(server_url, f"pilar_bench_x_{code[3:].lower()}"),
                var_dir=root / code,
            )
            for code, role, name in (
                ("MX-HUB", "hub", "Concentrador"),
                ("MX-IMSS", "institute", "Instituto Mexicano del Seguro Social"),
                ("MX-ISSSTECALI", "institute", "ISSSTECALI"),
            )
        ]
        print(f"exchange bench: setting up three nodes ({persons:,} persons each)", flush=True)
        info = federation.setup_federation(
            specs, persons=persons, movers=0, progress=lambda text: print(text, flush=True)
        )
        try:
            provider, consumer = info.specs["MX-IMSS"], info.specs["MX-ISSSTECALI"]
            curp_file = root / "curps.txt"
            curp_file.write_text("\n".join(_curps(provider.database_url, 5000)) + "\n")
            token = (
                info.run(
                    provider.code,
                    "token",
                    "create",
                    "--user",
                    "data_steward",
                    "--role",
                    "data_steward",
                    "--name",
                    "exchange benchmark",
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            consumer_env = info.env(consumer.code)
            for number in range(runs):
                print(f"exchange bench: run {number + 1}/{runs}", flush=True)
                result.runs.append(
                    _one_run(
                        info=info,
                        consumer_env=consumer_env,
                        provider=provider,
                        curp_file=curp_file,
                        token=token,
                        seconds=seconds,
                        clients=clients,
                        log_spec=federation.NodeSpec(
                            code="MX-LOGBENCH",
                            role="institute",
                            name="Log benchmark",
                            port=_free_port(),
                            database_url=_recreate(server_url, "pilar_bench_x_log"),
                            var_dir=root / f"log-{number}",
                        ),
                    )
                )
                print(f"exchange bench: {result.runs[-1]}", flush=True)
        finally:
            info.stop_all()
    return result
