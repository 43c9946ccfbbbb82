"""Single-case and bulk evaluation agree, on generated cases, for every package that loads.

The two modes share the parsed AST but not the arithmetic (``Decimal`` against float64) nor
the control flow (an interpreter against column expressions with error columns), so each
package is run both ways on thousands of generated cases and every output is compared:
booleans, texts and dates exactly, numbers to the centavo, and errors by code and name.
The shipped schemes are included as they appear under ``schemes/``.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pilar.rules import RulesError, available_packages, load_package
from pilar.rules.bulk import DTYPES
from pilar.rules.errors import ConflictError, DivisionByZeroError, NoValueError
from pilar.rules.package import Package
from pilar.rules.tests.cases import CaseGenerator

FIXTURES = Path(__file__).parent / "fixtures"
CASES = 3000
EVALUATION_ERRORS = (NoValueError, ConflictError, DivisionByZeroError)


def _sources() -> list[Any]:
    sources: list[Any] = [
        pytest.param(("path", FIXTURES / "lss_demo" / "1.0.0"), id="fixture-lss_demo")
    ]
    for ref in available_packages():
        sources.append(pytest.param(("scheme", ref), id=f"{ref.name}-{ref.version}"))
    return sources


def _load(source: tuple[str, Any]) -> Package:
    kind, where = source
    if kind == "path":
        return load_package(path=where)
    return load_package(where.name, where.version)


def _frame(package: Package, cases: Sequence[tuple[dict[str, Any], datetime.date]]) -> pl.DataFrame:
    columns: dict[str, pl.Series] = {}
    for name, variable in package.inputs.items():
        values = [inputs[name] for inputs, _ in cases]
        if variable.type == "number":
            values = [float(value) if value is not None else None for value in values]
        columns[name] = pl.Series(name, values, dtype=DTYPES[variable.type])
    columns["evaluation_on"] = pl.Series("evaluation_on", [on for _, on in cases], dtype=pl.Date)
    return pl.DataFrame(columns)


def _single(
    package: Package,
    inputs: dict[str, Any],
    on: datetime.date,
    outputs: Sequence[str] | None,
    known_at: datetime.date | None = None,
) -> tuple[dict[str, Any] | None, str | None]:
    try:
        result = package.evaluate(inputs, on=on, known_at=known_at, outputs=outputs)
    except EVALUATION_ERRORS as error:
        return None, error.row_error
    return dict(result.values), None


def _agree(expected: Any, found: Any) -> bool:
    if expected is None:
        return found is None
    if isinstance(expected, Decimal):
        return found is not None and abs(float(expected) - found) < 0.005
    return bool(expected == found)


def _compare(
    package: Package,
    cases: Sequence[tuple[dict[str, Any], datetime.date]],
    singles: Sequence[tuple[dict[str, Any] | None, str | None]],
    bulk: pl.DataFrame,
    outputs: Sequence[str],
) -> int:
    """Assert agreement row by row; return how many rows evaluated without error."""
    assert bulk.height == len(cases)
    succeeded = 0
    for index, ((values, error), row) in enumerate(
        zip(singles, bulk.iter_rows(named=True), strict=True)
    ):
        inputs, on = cases[index]
        context = f"{package.name} {package.version} row {index} on {on}: {inputs}"
        assert row["_error"] == error, context
        if error is not None:
            assert all(row[name] is None for name in outputs), context
            continue
        succeeded += 1
        assert values is not None
        for name in outputs:
            assert _agree(values.get(name), row[name]), (
                f"{name}: {values.get(name)} ≠ {row[name]} — {context}"
            )
    return succeeded


@pytest.mark.parametrize("source", _sources())
def test_every_variable_agrees_with_a_date_per_row(source: tuple[str, Any]) -> None:
    package = _load(source)
    generator = CaseGenerator(package, seed=2026)
    cases = [generator.case() for _ in range(CASES)]
    outputs = [name for name, variable in package.variables.items() if not variable.input]
    singles = [_single(package, inputs, on, outputs) for inputs, on in cases]
    # A small chunk size so the run crosses several chunks.
    bulk = package.evaluate_bulk(
        _frame(package, cases), on="evaluation_on", outputs=outputs, chunk_size=700
    )
    succeeded = _compare(package, cases, singles, bulk, outputs)
    # Generated cases that all fail would compare nothing but error codes.
    assert succeeded >= CASES // 20


@pytest.mark.parametrize("source", _sources())
def test_benefits_agree_on_one_date_and_earlier_knowledge(source: tuple[str, Any]) -> None:
    package = _load(source)
    if not package.benefits:
        pytest.skip("the package declares no benefits")
    generator = CaseGenerator(package, seed=1973)
    for _ in range(3):
        on = generator.evaluation_date()
        known_at = on - datetime.timedelta(days=generator.rng.randrange(0, 400))
        cases = [(generator.case()[0], on) for _ in range(CASES // 3)]
        outputs = package.default_outputs()
        singles = [_single(package, inputs, on, None, known_at) for inputs, _ in cases]
        bulk = package.evaluate_bulk(_frame(package, cases), on=on, known_at=known_at)
        _compare(package, cases, singles, bulk, outputs)


def test_the_fixture_cases_reach_every_kind_of_outcome() -> None:
    """The generator is aimed well: grants, denials and evaluation errors all occur."""
    package = load_package(path=FIXTURES / "lss_demo" / "1.0.0")
    generator = CaseGenerator(package, seed=2026)
    outcomes: set[str] = set()
    for _ in range(1000):
        inputs, on = generator.case()
        try:
            result = package.evaluate(inputs, on=on)
        except RulesError as error:
            outcomes.add(error.code)
            continue
        outcomes.add(f"vejez={result.values['elegible_vejez']}")
        outcomes.add(f"cesantia={result.values['elegible_cesantia']}")
    assert {"vejez=True", "vejez=False", "cesantia=True", "cesantia=False", "no_value"} <= outcomes
