"""Bulk evaluation: columns in, columns out, per-row dates, chunks and per-row errors."""

from __future__ import annotations

import datetime
from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pilar.rules import InputTypeError, MissingInputError, UnknownNameError, load_package
from pilar.rules.bulk import _closure, _levels
from pilar.rules.package import Package
from pilar.rules.tests.packages import FIXTURES

D = datetime.date
ON = D(2024, 11, 22)


@pytest.fixture(scope="module")
def demo() -> Package:
    return load_package("lss_demo", schemes_dir=FIXTURES)


@pytest.fixture(scope="module")
def runtime() -> Package:
    return load_package("runtime_errors", schemes_dir=FIXTURES)


def people(count: int = 6) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "fecha_nacimiento": [D(1958, 3, 1), D(1962, 3, 1), D(1969, 1, 1)] * (count // 3),
            "fecha_afiliacion": [D(1980, 1, 1)] * count,
            "fecha_baja": [D(2023, 5, 1)] * count,
            "semanas_cotizadas": [812, 600, 1500] * (count // 3),
            "salario_promedio": [650.5, 300.0, 1200.0] * (count // 3),
            "esposa": [True, False, None] * (count // 3),
        }
    )


def test_outputs_and_their_types(demo: Package) -> None:
    outputs = ["pension_vejez", "elegible_vejez", "fecha_inicio_pago", "regimen"]
    frame = demo.evaluate_bulk(people(3), on=ON, outputs=outputs)
    assert frame.schema == pl.Schema(
        {
            "pension_vejez": pl.Float64,
            "elegible_vejez": pl.Boolean,
            "fecha_inicio_pago": pl.Date,
            "regimen": pl.String,
            "_error": pl.String,
        }
    )
    assert frame["elegible_vejez"].to_list() == [True, False, False]
    assert frame["pension_vejez"][0] == 10109.82


def test_amounts_of_people_not_eligible_are_null_not_errors(demo: Package) -> None:
    frame = demo.evaluate_bulk(people(3), on=ON)
    assert frame.columns == [*demo.default_outputs(), "_error"]
    assert frame["elegible_cesantia"].to_list() == [False, True, False]
    # The third person is 55: the cesantía table has no row for them, but they are not
    # eligible, so there is no amount and no error.
    assert frame["pension_cesantia"].null_count() == 2
    assert frame["_error"].to_list() == [None, None, None]


def test_a_date_per_row_and_knowledge_per_row(demo: Package) -> None:
    frame = pl.DataFrame(
        {
            "salario_promedio": [500.0, 500.0, 500.0],
            "on": [D(2024, 6, 1), D(2024, 6, 1), D(2023, 6, 1)],
            "known": [D(2023, 12, 10), D(2024, 6, 1), D(2023, 6, 1)],
        }
    )
    result = demo.evaluate_bulk(frame, on="on", known_at="known", outputs=["salario_veces_sm"])
    expected = [500 / 248.39, 500 / 248.93, 500 / 207.44]
    assert result["salario_veces_sm"].to_list() == pytest.approx(expected)
    fixed = demo.evaluate_bulk(
        frame, on=D(2024, 6, 1), known_at=D(2023, 12, 10), outputs=["salario_veces_sm"]
    )
    assert fixed["salario_veces_sm"].to_list() == pytest.approx([500 / 248.39] * 3)


def test_a_row_without_its_date_is_that_rows_error(demo: Package) -> None:
    frame = pl.DataFrame(
        {"fecha_nacimiento": [D(1958, 3, 1)] * 2, "on": [D(2024, 11, 22), None]},
        schema_overrides={"on": pl.Date},
    )
    result = demo.evaluate_bulk(frame, on="on", outputs=["edad"])
    assert result.rows() == [(66.0, None), (None, "missing_input:on")]


def test_dates_may_come_as_iso_text(demo: Package) -> None:
    frame = pl.DataFrame({"fecha_nacimiento": ["1958-03-01"], "on": ["2024-11-22"]})
    result = demo.evaluate_bulk(frame, on="on", outputs=["edad"])
    assert result["edad"].to_list() == [66.0]


def test_chunks_do_not_change_the_result(demo: Package) -> None:
    frame = people(300)
    whole = demo.evaluate_bulk(frame, on=ON, outputs=list(demo.variables))
    chunked = demo.evaluate_bulk(frame, on=ON, outputs=list(demo.variables), chunk_size=7)
    assert_frame_equal(whole, chunked)
    assert whole.height == 300


def test_an_empty_frame_gives_an_empty_result(demo: Package) -> None:
    result = demo.evaluate_bulk(people(3).clear(), on=ON)
    assert result.height == 0
    assert result.columns == [*demo.default_outputs(), "_error"]


def test_a_missing_required_column_is_refused_before_any_work(demo: Package) -> None:
    with pytest.raises(MissingInputError) as caught:
        demo.evaluate_bulk(people(3).drop("fecha_baja", "salario_promedio"), on=ON)
    assert caught.value.missing == ["fecha_baja", "salario_promedio"]
    assert "Date insured employment ended" in caught.value.message("en")


def test_a_missing_optional_column_takes_the_default(demo: Package) -> None:
    result = demo.evaluate_bulk(people(3).drop("esposa"), on=ON, outputs=["asignacion_esposa"])
    assert result["asignacion_esposa"].to_list() == [0.0, 0.0, 0.0]


def test_a_null_in_a_required_column_is_that_rows_error(demo: Package) -> None:
    frame = people(3).with_columns(
        pl.Series("semanas_cotizadas", [812, None, 1500], dtype=pl.Int64)
    )
    result = demo.evaluate_bulk(frame, on=ON)
    assert result["_error"].to_list() == [None, "missing_input:semanas_cotizadas", None]
    assert result.row(1)[:-1] == (None, None, None, None)


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("semanas_cotizadas", ["812", "430", "1500"]),
        ("esposa", [1, 0, 1]),
        ("fecha_baja", [1, 2, 3]),
    ],
)
def test_a_column_of_the_wrong_type_is_refused(
    demo: Package, column: str, values: list[object]
) -> None:
    with pytest.raises(InputTypeError) as caught:
        demo.evaluate_bulk(people(3).with_columns(pl.Series(column, values)), on=ON)
    assert caught.value.params["name"] == column


def test_an_unknown_date_column_is_refused(demo: Package) -> None:
    with pytest.raises(UnknownNameError):
        demo.evaluate_bulk(people(3), on="fecha_solicitud")


def test_evaluation_errors_are_per_row(runtime: Package) -> None:
    frame = pl.DataFrame(
        {
            "edad": [70.0, 70.0, 64.0, 70.0],
            "residente": [True, True, True, False],
            "indigena": [False, True, False, None],
        }
    )
    result = runtime.evaluate_bulk(
        frame, on=ON, outputs=["edad_aplicable", "factor", "edad_especial"]
    )
    assert result.rows() == [
        (65.0, 1.1, 55.0, None),
        (None, None, None, "conflict:edad_aplicable"),
        (None, None, None, "no_value:tabla_factor"),
        (None, None, None, "no_value:edad_especial"),
    ]


def test_one_with_columns_per_dependency_level(demo: Package) -> None:
    """Each level depends only on earlier ones; the plan has as many stages as levels."""
    levels = _levels(demo, _closure(demo, demo.default_outputs()))
    placed: dict[str, int] = {}
    for number, group in enumerate(levels):
        for name in group:
            placed[name] = number
    for name, number in placed.items():
        for dependency in demo.graph_dependencies(name):
            assert placed[dependency] < number, (name, dependency)
    assert len(levels) < len(placed) / 2


def test_bulk_and_single_agree_on_the_decimal_result(demo: Package) -> None:
    frame = people(3)
    bulk = demo.evaluate_bulk(frame, on=ON, outputs=["pension_vejez", "pension_anual"])
    single = demo.evaluate(
        {name: value for name, value in frame.row(0, named=True).items() if value is not None},
        on=ON,
        outputs=["pension_vejez", "pension_anual"],
    )
    assert Decimal(str(bulk["pension_vejez"][0])) == single.values["pension_vejez"]
    annual = single.values["pension_anual"]
    assert isinstance(annual, Decimal)
    assert bulk["pension_anual"][0] == pytest.approx(float(annual))
