"""``python -m bench [name …]``: run every benchmark, or the named ones.

With several benchmarks each runs in a fresh interpreter, since each configures Django for its
own database.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

from bench import BENCHMARKS, BenchmarkFailure, write_result


def _run_one(name: str) -> int:
    module = importlib.import_module(f"bench.{name}")
    try:
        result = module.run()
    except BenchmarkFailure as error:
        print(f"benchmark {name} FAILED: {error}", file=sys.stderr)
        return 1
    path = write_result(result)
    print(f"{name}: {result.metrics()} → {path}")
    return 0


def main(arguments: list[str]) -> int:
    unknown = [name for name in arguments if name not in BENCHMARKS]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    names = arguments or list(BENCHMARKS)
    if len(names) == 1:
        return _run_one(names[0])
    failures = 0
    for name in names:
        completed = subprocess.run([sys.executable, "-m", "bench", name], check=False)
        failures += completed.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
