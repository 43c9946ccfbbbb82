"""Pilar's benchmarks: ``python -m bench [name]`` (``make bench``).

Each benchmark is a module of this package with a ``run() -> BenchmarkResult`` function; it
builds its own data and database, and its result is written to ``bench/results/<name>.json`` in
the form described in BENCHMARKS.md (metrics are medians over the runs).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BENCHMARKS = ("registry", "declaration_ingest", "rules", "linkage", "exchange")


class BenchmarkFailure(RuntimeError):
    """The system under test misbehaved (an error response, a crash): no figures are written."""


@dataclass
class BenchmarkResult:
    name: str
    database: str
    params: dict[str, Any]
    runs: list[dict[str, float]] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        names = list(self.runs[0]) if self.runs else []
        return {name: round(statistics.median(run[name] for run in self.runs), 3) for name in names}

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "when": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": machine(self.database),
            "params": self.params,
            "metrics": self.metrics(),
            "runs": [{name: round(value, 3) for name, value in run.items()} for run in self.runs],
        }


def machine(database: str) -> dict[str, Any]:
    memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpus": os.cpu_count() or 1,
        "memory_gb": round(memory_bytes / 2**30),
        "python": platform.python_version(),
        "database": database,
    }


def write_result(result: BenchmarkResult) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{result.name}.json"
    path.write_text(json.dumps(result.as_json(), indent=2, ensure_ascii=False) + "\n")
    return path


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (p95: the value 95% of the observations do not exceed)."""
    if not values:
        raise ValueError("no observations")
    ordered = sorted(values)
    # Rounded first so that 300 × 0.95 is rank 285, not 286 through floating-point noise.
    rank = max(1, math.ceil(round(len(ordered) * fraction, 6)))
    return ordered[rank - 1]
