"""Bitemporal parameters: the law in force on D as known on K, corrections, overrides, periods."""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from pilar.rules import (
    InputTypeError,
    NoValueError,
    ParameterValue,
    UnknownNameError,
    load_package,
)
from pilar.rules.parameters import Found, Parameter
from pilar.rules.tests.packages import FIXTURES, package_copy

D = datetime.date


def parameter(*entries: ParameterValue) -> Parameter:
    return Parameter(
        name="salario_minimo",
        type="number",
        label={"es": "Salario mínimo", "en": "Minimum wage"},
        reference="CPEUM art. 123",
        location="parameters.yaml:1",
        entries=entries,
    )


WAGE = parameter(
    ParameterValue(D(2023, 1, 1), Decimal("207.44")),
    ParameterValue(D(2024, 1, 1), Decimal("248.39"), recorded=D(2023, 12, 1)),
    ParameterValue(D(2024, 1, 1), Decimal("248.93"), recorded=D(2023, 12, 15)),
    ParameterValue(D(2025, 1, 1), Decimal("278.80"), recorded=D(2024, 12, 20)),
)


def value(found: Found | None) -> object:
    assert found is not None
    return found.entry.value


def test_the_greatest_from_on_or_before_the_date_applies() -> None:
    found = WAGE.lookup(D(2023, 6, 1), D(2026, 1, 1))
    assert found is not None
    assert found.entry.value == Decimal("207.44")
    assert found.valid_until == D(2023, 12, 31)
    assert value(WAGE.lookup(D(2023, 1, 1), D(2026, 1, 1))) == Decimal("207.44")
    assert value(WAGE.lookup(D(2025, 1, 1), D(2026, 1, 1))) == Decimal("278.80")


def test_a_correction_applies_only_from_when_it_was_recorded() -> None:
    as_first_published = WAGE.lookup(D(2024, 6, 1), D(2023, 12, 14))
    corrected = WAGE.lookup(D(2024, 6, 1), D(2023, 12, 15))
    assert value(as_first_published) == Decimal("248.39")
    assert value(corrected) == Decimal("248.93")
    assert corrected is not None
    assert corrected.entry.known_from == D(2023, 12, 15)


def test_validity_ends_at_the_next_from_known_at_that_time() -> None:
    # On 2024-06-01, the 2025 value was not yet published: the 2024 value had no end.
    known_then = WAGE.lookup(D(2024, 6, 1), D(2024, 6, 1))
    known_later = WAGE.lookup(D(2024, 6, 1), D(2025, 6, 1))
    assert known_then is not None
    assert known_later is not None
    assert known_then.valid_until is None
    assert known_later.valid_until == D(2024, 12, 31)


def test_a_value_not_yet_recorded_is_not_used() -> None:
    # In force from 2025-01-01 but recorded on 2024-12-20: as known on 2024-12-19, 2025 still
    # used the 2024 value.
    assert value(WAGE.lookup(D(2025, 3, 1), D(2024, 12, 19))) == Decimal("248.93")


def test_before_the_first_entry_there_is_no_value() -> None:
    assert WAGE.lookup(D(2022, 12, 31), D(2026, 1, 1)) is None
    assert WAGE.lookup(D(2023, 6, 1), D(2022, 12, 31)) is None


def test_of_two_entries_recorded_the_same_day_the_later_listed_wins() -> None:
    twice = parameter(
        ParameterValue(D(2023, 1, 1), Decimal(1)),
        ParameterValue(D(2023, 1, 1), Decimal(2)),
    )
    assert value(twice.lookup(D(2023, 2, 1), D(2023, 2, 1))) == Decimal(2)


def test_the_package_explains_which_entry_it_used() -> None:
    package = load_package("lss_demo", schemes_dir=FIXTURES)
    inputs = {
        "fecha_nacimiento": D(1958, 3, 1),
        "fecha_afiliacion": D(1980, 1, 1),
        "fecha_baja": D(2023, 5, 1),
        "semanas_cotizadas": 812,
        "salario_promedio": 650,
    }
    before = package.evaluate(
        inputs, on=D(2024, 6, 1), known_at=D(2023, 12, 10), outputs=["salario_veces_sm"]
    )
    after = package.evaluate(inputs, on=D(2024, 6, 1), outputs=["salario_veces_sm"])
    wage_before = before.node("salario_minimo")
    wage_after = after.node("salario_minimo")
    assert wage_before is not None
    assert wage_after is not None
    assert wage_before.value == Decimal("248.39")
    assert wage_after.value == Decimal("248.93")
    assert after.known_at == D(2024, 6, 1)
    # As known on 2024-06-01 the 2025 wage was not yet published: no end of validity.
    assert wage_after.parameter == {
        "valid_from": D(2024, 1, 1),
        "valid_until": None,
        "recorded": D(2023, 12, 15),
        "source": "DOF 15-12-2023 (fe de erratas)",
        "needs_verification": False,
    }
    assert wage_after.reference == "CPEUM art. 123 A fr. VI"
    assert wage_after.unit == "pesos"


def test_no_value_names_the_parameter_and_its_article() -> None:
    package = load_package("runtime_errors", schemes_dir=FIXTURES)
    with pytest.raises(NoValueError) as caught:
        package.evaluate({"edad": 70, "residente": True}, on=D(2026, 1, 1), outputs=["bono_futuro"])
    error = caught.value
    assert error.params["name"] == "bono_2030"
    assert error.params["date"] == "2026-01-01"
    assert error.reference == "Ley de prueba art. 9"
    assert error.row_error == "no_value:bono_2030"
    assert "Sin valor para bono_2030 en 2026-01-01" in error.message("es")
    result = package.evaluate(
        {"edad": 70, "residente": True}, on=D(2030, 1, 1), outputs=["bono_futuro"]
    )
    assert result.values["bono_futuro"] == Decimal(500)


class TestOverrides:
    inputs = {"edad": 70}

    def test_an_override_adds_a_value_on_top_of_the_package(self) -> None:
        package = load_package("minimal", schemes_dir=FIXTURES)
        what_if = {"monto_base": [ParameterValue(D(2026, 1, 1), 1800)]}
        on = D(2026, 3, 1)
        assert package.evaluate(self.inputs, on=on).values["monto"] == Decimal(1500)
        result = package.evaluate(self.inputs, on=on, overrides=what_if)
        assert result.values["monto"] == Decimal(1800)
        node = result.node("monto_base")
        assert node is not None
        assert node.parameter is not None
        assert node.parameter["source"] == "what-if"
        # Before the override's date, the package's own value still applies.
        earlier = package.evaluate(self.inputs, on=D(2025, 12, 31), overrides=what_if)
        assert earlier.values["monto"] == Decimal(1500)

    def test_an_override_on_the_same_date_replaces_the_package_value(self) -> None:
        package = load_package("minimal", schemes_dir=FIXTURES)
        what_if = {"monto_base": [ParameterValue(D(2020, 1, 1), Decimal("1500.50"))]}
        result = package.evaluate(self.inputs, on=D(2024, 1, 1), overrides=what_if)
        assert result.values["monto"] == Decimal("1500.50")

    def test_overrides_apply_in_bulk_too(self) -> None:
        package = load_package("minimal", schemes_dir=FIXTURES)
        what_if = {"monto_base": [ParameterValue(D(2026, 1, 1), 1800)]}
        frame = pl.DataFrame({"edad": [70.0, 70.0], "on": [D(2025, 6, 1), D(2026, 6, 1)]})
        bulk = package.evaluate_bulk(frame, on="on", overrides=what_if)
        assert bulk["monto"].to_list() == [1500.0, 1800.0]

    def test_an_override_of_an_unknown_parameter_is_refused(self) -> None:
        package = load_package("minimal", schemes_dir=FIXTURES)
        with pytest.raises(UnknownNameError) as caught:
            package.evaluate(
                self.inputs,
                on=D(2026, 1, 1),
                overrides={"monto": [ParameterValue(D(2026, 1, 1), 1)]},
            )
        assert caught.value.params["name"] == "monto"

    def test_an_override_of_the_wrong_type_is_refused(self) -> None:
        package = load_package("minimal", schemes_dir=FIXTURES)
        with pytest.raises(InputTypeError):
            package.evaluate(
                self.inputs,
                on=D(2026, 1, 1),
                overrides={"monto_base": [ParameterValue(D(2026, 1, 1), "mil")]},
            )


PERIODS = """\
  bono_dia:
    type: number
    reference: "Ley de prueba art. 11"
    label: {es: Bono del día, en: Bonus of the day}
    formula: bono
  bono_mes:
    type: number
    period: month
    reference: "Ley de prueba art. 11"
    label: {es: Bono del mes, en: Bonus of the month}
    formula: bono
  bono_anio:
    type: number
    period: year
    reference: "Ley de prueba art. 11"
    label: {es: Bono del año, en: Bonus of the year}
    formula: bono
"""
BONUS = """\
  bono:
    type: number
    label: {es: Bono, en: Bonus}
    reference: "Ley de prueba art. 11"
    values:
      - {from: 2024-01-01, value: 100}
      - {from: 2024-03-15, value: 200}
"""


@pytest.mark.parametrize(
    ("on", "day", "month", "year"),
    [
        (D(2024, 3, 20), 200, 100, 100),
        (D(2024, 4, 2), 200, 200, 100),
        (D(2025, 1, 1), 200, 200, 200),
    ],
)
def test_a_variables_period_sets_the_date_its_parameters_are_read(
    tmp_path: Path, on: datetime.date, day: int, month: int, year: int
) -> None:
    folder = package_copy(tmp_path, append={"variables.yaml": PERIODS, "parameters.yaml": BONUS})
    package = load_package(path=folder)
    outputs = ["bono_dia", "bono_mes", "bono_anio"]
    result = package.evaluate({}, on=on, outputs=outputs)
    assert [result.values[name] for name in outputs] == [day, month, year]
    per_row = package.evaluate_bulk(pl.DataFrame({"on": [on]}), on="on", outputs=outputs)
    one_date = package.evaluate_bulk(pl.DataFrame({"edad": [1]}), on=on, outputs=outputs)
    for frame in (per_row, one_date):
        assert frame.select(outputs).row(0) == (day, month, year)
