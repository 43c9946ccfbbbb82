"""Single-case evaluation: values, Decimal semantics, default logic, errors and explanations."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pilar.rules import (
    ConflictError,
    InputTypeError,
    MissingInputError,
    Node,
    NoValueError,
    Result,
    UnknownNameError,
    load_package,
)
from pilar.rules.errors import DivisionByZeroError
from pilar.rules.package import Package
from pilar.rules.tests.packages import FIXTURES, package_copy

D = datetime.date
ON = D(2024, 11, 22)
PERSON: dict[str, Any] = {
    "fecha_nacimiento": D(1958, 3, 1),
    "fecha_afiliacion": D(1980, 1, 1),
    "fecha_baja": D(2023, 5, 1),
    "semanas_cotizadas": 812,
    "salario_promedio": Decimal("650.50"),
    "esposa": True,
}


@pytest.fixture(scope="module")
def demo() -> Package:
    return load_package("lss_demo", schemes_dir=FIXTURES)


@pytest.fixture(scope="module")
def runtime() -> Package:
    return load_package("runtime_errors", schemes_dir=FIXTURES)


class TestOutputs:
    def test_by_default_every_benefits_eligibility_and_amount(self, demo: Package) -> None:
        result = demo.evaluate(PERSON, on=ON)
        assert result.values == {
            "elegible_vejez": True,
            "pension_vejez": Decimal("10109.82"),
            "elegible_cesantia": False,
        }
        assert [node.name for node in result.explanation] == [
            "elegible_vejez",
            "pension_vejez",
            "elegible_cesantia",
        ]
        assert (result.package, result.version, result.content_hash) == (
            "lss_demo",
            "1.0.0",
            demo.content_hash,
        )

    def test_an_amount_is_not_computed_for_someone_not_eligible(self, demo: Package) -> None:
        # At 55 the cesantía table has no row: the amount has no value, which must not stop
        # the decision that the person is not eligible.
        young = {**PERSON, "fecha_nacimiento": D(1969, 1, 1)}
        result = demo.evaluate(young, on=ON)
        assert result.values["elegible_cesantia"] is False
        assert "pension_cesantia" not in result.values
        with pytest.raises(NoValueError) as caught:
            demo.evaluate(young, on=ON, outputs=["pension_cesantia"])
        assert caught.value.params["name"] == "tabla_171"

    def test_named_outputs_in_the_order_asked(self, demo: Package) -> None:
        result = demo.evaluate(PERSON, on=ON, outputs=["regimen", "edad", "fecha_inicio_pago"])
        assert list(result.values.items()) == [
            ("regimen", "LSS 1973"),
            ("edad", Decimal(66)),
            ("fecha_inicio_pago", ON),
        ]

    def test_an_unknown_output_is_refused(self, demo: Package) -> None:
        with pytest.raises(UnknownNameError) as caught:
            demo.evaluate(PERSON, on=ON, outputs=["pension"])
        assert caught.value.params["name"] == "pension"

    def test_the_evaluation_date_must_be_a_date(self, demo: Package) -> None:
        with pytest.raises(TypeError):
            demo.evaluate(PERSON, on=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))

    def test_known_at_defaults_to_the_evaluation_date(self, demo: Package) -> None:
        result = demo.evaluate(PERSON, on=ON)
        assert result.known_at == ON
        assert demo.evaluate(PERSON, on=ON, known_at=D(2024, 1, 1)).known_at == D(2024, 1, 1)


class TestInputs:
    def test_every_missing_required_input_is_listed_with_its_label(self, demo: Package) -> None:
        with pytest.raises(MissingInputError) as caught:
            demo.evaluate({"semanas_cotizadas": 500, "esposa": None}, on=ON)
        error = caught.value
        assert error.missing == [
            "fecha_nacimiento",
            "fecha_afiliacion",
            "fecha_baja",
            "salario_promedio",
        ]
        assert error.params["inputs"][0] == {
            "name": "fecha_nacimiento",
            "label": {"es": "Fecha de nacimiento", "en": "Date of birth"},
        }
        assert error.message("es").startswith("Faltan datos obligatorios: Fecha de nacimiento")
        assert "Date of birth (fecha_nacimiento)" in error.message("en")

    def test_only_the_inputs_the_outputs_need_are_required(self, demo: Package) -> None:
        result = demo.evaluate({"fecha_nacimiento": D(1960, 5, 5)}, on=ON, outputs=["edad"])
        assert result.values["edad"] == Decimal(64)

    def test_optional_inputs_take_their_default(self, demo: Package) -> None:
        result = demo.evaluate(PERSON, on=ON, outputs=["hijos", "estado_civil", "vive_solo"])
        assert result.values == {"hijos": Decimal(0), "estado_civil": "casado", "vive_solo": False}

    def test_values_are_converted_to_the_declared_type(self, demo: Package) -> None:
        result = demo.evaluate(
            {
                **PERSON,
                "semanas_cotizadas": "812",
                "salario_promedio": 650.5,
                "fecha_baja": "2023-05-01",
            },
            on=ON,
            outputs=["semanas_cotizadas", "salario_promedio", "fecha_baja"],
        )
        assert result.values == {
            "semanas_cotizadas": Decimal(812),
            "salario_promedio": Decimal("650.5"),
            "fecha_baja": D(2023, 5, 1),
        }

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("semanas_cotizadas", True),
            ("semanas_cotizadas", "muchas"),
            ("fecha_baja", "01/05/2023"),
            ("fecha_baja", datetime.datetime(2023, 5, 1, tzinfo=datetime.UTC)),
            ("esposa", "sí"),
            ("estado_civil", 3),
        ],
    )
    def test_a_value_of_the_wrong_type_is_refused(
        self, demo: Package, name: str, value: object
    ) -> None:
        with pytest.raises(InputTypeError) as caught:
            demo.evaluate({**PERSON, name: value}, on=ON, outputs=[name])
        assert caught.value.params["name"] == name

    def test_inputs_the_package_does_not_know_are_ignored(self, demo: Package) -> None:
        result = demo.evaluate({**PERSON, "curp": "XXXX000000HDFXXX00"}, on=ON)
        assert result.values["elegible_vejez"] is True


ARITHMETIC = """\
  a:
    type: number
    input: true
    label: {es: A, en: A}
  b:
    type: number
    input: true
    label: {es: B, en: B}
  suma:
    type: number
    reference: "Ley de prueba art. 20"
    label: {es: Suma, en: Sum}
    formula: a + b
  es_tres_decimos:
    type: bool
    reference: "Ley de prueba art. 20"
    label: {es: Es 0.3, en: Is 0.3}
    formula: a + b == 0.3
  redondeo:
    type: number
    reference: "Ley de prueba art. 20"
    label: {es: Redondeo, en: Rounding}
    formula: round(a, 2)
  redondeo_entero:
    type: number
    reference: "Ley de prueba art. 20"
    label: {es: Redondeo entero, en: Whole rounding}
    formula: round(a, 0)
  piso:
    type: number
    reference: "Ley de prueba art. 20"
    label: {es: Piso, en: Floor}
    formula: floor(a * b * 10)
  techo:
    type: number
    reference: "Ley de prueba art. 20"
    label: {es: Techo, en: Ceiling}
    formula: ceil(a * b * 10)
  tercio:
    type: number
    reference: "Ley de prueba art. 20"
    label: {es: Tercio, en: Third}
    formula: a / 3 * 3
  tercio_es_a:
    type: bool
    reference: "Ley de prueba art. 20"
    label: {es: Tercio igual a A, en: Third equals A}
    formula: tercio >= a and tercio <= a
"""
ARITHMETIC_OUTPUTS = [
    "suma",
    "es_tres_decimos",
    "redondeo",
    "redondeo_entero",
    "piso",
    "techo",
    "tercio_es_a",
]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("0.1", "0.2", ["0.3", True, "0.1", "0", "0", "1", True]),
        ("2.675", "1", ["3.675", False, "2.68", "3", "26", "27", True]),
        ("-2.5", "1", ["-1.5", False, "-2.5", "-3", "-25", "-25", True]),
        ("1.005", "0.3", ["1.305", False, "1.01", "1", "3", "4", True]),
        ("0.1", "3", ["3.1", False, "0.1", "0", "3", "3", True]),
    ],
)
def test_number_semantics_agree_in_both_modes(
    tmp_path: Path, a: str, b: str, expected: list[object]
) -> None:
    """Decimal arithmetic, round half up, floor/ceil snapped to the tolerance — in both modes."""
    package = load_package(path=package_copy(tmp_path, append={"variables.yaml": ARITHMETIC}))
    result = package.evaluate({"a": Decimal(a), "b": Decimal(b)}, on=ON, outputs=ARITHMETIC_OUTPUTS)
    wanted = [Decimal(value) if isinstance(value, str) else value for value in expected]
    assert [result.values[name] for name in ARITHMETIC_OUTPUTS] == wanted
    bulk = package.evaluate_bulk(
        pl.DataFrame({"a": [float(a)], "b": [float(b)]}), on=ON, outputs=ARITHMETIC_OUTPUTS
    )
    row = bulk.row(0, named=True)
    for name, value in zip(ARITHMETIC_OUTPUTS, wanted, strict=True):
        if isinstance(value, Decimal):
            assert row[name] == pytest.approx(float(value), abs=1e-9), name
        else:
            assert row[name] is value, name


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (D(1960, 3, 1), D(2025, 3, 1), 65),
        (D(1960, 3, 1), D(2025, 2, 28), 64),
        (D(1960, 2, 29), D(2025, 2, 28), 64),
        (D(1960, 2, 29), D(2025, 3, 1), 65),
        (D(1960, 2, 29), D(2024, 2, 29), 64),
    ],
)
def test_ages_are_whole_years_in_both_modes(
    demo: Package, born: datetime.date, on: datetime.date, age: int
) -> None:
    result = demo.evaluate({"fecha_nacimiento": born}, on=on, outputs=["edad"])
    assert result.values["edad"] == Decimal(age)
    bulk = demo.evaluate_bulk(pl.DataFrame({"fecha_nacimiento": [born]}), on=on, outputs=["edad"])
    assert bulk["edad"][0] == age


class TestCases:
    def test_the_highest_priority_applying_case_wins(self, runtime: Package) -> None:
        general = runtime.evaluate(
            {"edad": 70, "residente": True}, on=ON, outputs=["edad_aplicable"]
        )
        assert general.values["edad_aplicable"] == Decimal(65)
        node = general.explanation[0]
        assert node.kind == "cases"
        assert node.case == {
            "priority": 0,
            "when": None,
            "reference": "Ley de prueba art. 7 párr. 1",
        }
        indigenous = runtime.evaluate(
            {"edad": 70, "residente": False, "indigena": True}, on=ON, outputs=["edad_aplicable"]
        )
        assert indigenous.values["edad_aplicable"] == Decimal(60)
        assert indigenous.explanation[0].formula == "60"
        assert indigenous.explanation[0].case == {
            "priority": 1,
            "when": "indigena",
            "reference": "Ley de prueba art. 7 párr. 2",
        }

    def test_two_cases_at_the_top_priority_are_a_conflict(self, runtime: Package) -> None:
        with pytest.raises(ConflictError) as caught:
            runtime.evaluate(
                {"edad": 70, "residente": True, "indigena": True}, on=ON, outputs=["edad_aplicable"]
            )
        error = caught.value
        assert error.params["variable"] == "edad_aplicable"
        assert error.params["references"] == (
            "Ley de prueba art. 7 párr. 2, Ley de prueba art. 7 párr. 3"
        )
        assert error.row_error == "conflict:edad_aplicable"
        assert "Conflicto en edad_aplicable" in error.message("es")

    def test_no_applying_case_is_no_value_naming_the_variables_article(
        self, runtime: Package
    ) -> None:
        with pytest.raises(NoValueError) as caught:
            runtime.evaluate({"edad": 70, "residente": False}, on=ON, outputs=["edad_especial"])
        assert caught.value.params["name"] == "edad_especial"
        assert caught.value.reference == "Ley de prueba art. 8"


LAZY = """\
  solo_si_rico:
    type: number
    reference: "Ley de prueba art. 21"
    label: {es: Solo si aplica, en: Only if it applies}
    formula: if edad > 200 then bono_2030 else 0
  ambas:
    type: bool
    reference: "Ley de prueba art. 21"
    label: {es: Ambas, en: Both}
    formula: edad > 200 and bono_2030 > 0
  alguna:
    type: bool
    reference: "Ley de prueba art. 21"
    label: {es: Alguna, en: Either}
    formula: edad < 200 or bono_2030 > 0
  sin_atajo:
    type: bool
    reference: "Ley de prueba art. 21"
    label: {es: Sin atajo, en: No shortcut}
    formula: edad < 200 and bono_2030 > 0
"""


def test_a_branch_not_taken_is_not_evaluated(tmp_path: Path) -> None:
    folder = package_copy(tmp_path, source="runtime_errors", append={"variables.yaml": LAZY})
    package = load_package(path=folder)
    inputs = {"edad": 70, "residente": True}
    result = package.evaluate(inputs, on=ON, outputs=["solo_si_rico", "ambas", "alguna"])
    assert result.values == {"solo_si_rico": Decimal(0), "ambas": False, "alguna": True}
    # The parameter never read does not appear in the explanation either.
    assert result.node("bono_2030") is None
    with pytest.raises(NoValueError):
        package.evaluate(inputs, on=ON, outputs=["sin_atajo"])
    bulk = package.evaluate_bulk(
        pl.DataFrame({"edad": [70.0, 70.0]}),
        on=ON,
        outputs=["solo_si_rico", "ambas", "alguna"],
    )
    assert bulk.row(0) == (0.0, False, True, None)
    failing = package.evaluate_bulk(pl.DataFrame({"edad": [70.0]}), on=ON, outputs=["sin_atajo"])
    assert failing.row(0) == (None, "no_value:bono_2030")


def test_division_by_zero_is_an_evaluation_error(runtime: Package) -> None:
    with pytest.raises(DivisionByZeroError) as caught:
        runtime.evaluate({"edad": 65}, on=ON, outputs=["por_persona"])
    error = caught.value
    assert error.row_error == "division_by_zero:por_persona"
    assert error.params["expression"] == "monto_base / (edad - edad_minima)"
    assert error.reference == "Ley de prueba art. 10"
    assert runtime.evaluate({"edad": 70}, on=ON, outputs=["por_persona"]).values[
        "por_persona"
    ] == Decimal(300)
    bulk = runtime.evaluate_bulk(
        pl.DataFrame({"edad": [65.0, 70.0]}), on=ON, outputs=["por_persona"]
    )
    assert bulk.rows() == [(None, "division_by_zero:por_persona"), (300.0, None)]


class TestExplanation:
    def test_each_output_has_its_tree(self, demo: Package) -> None:
        result = demo.evaluate(PERSON, on=ON)
        amount = result.explanation[1]
        assert amount.name == "pension_vejez"
        assert amount.kind == "formula"
        assert amount.formula == "round(max(pension_mensual_calculada, pension_minima), 2)"
        assert amount.reference == "LSS 1973 art. 168"
        assert amount.unit == "pesos"
        assert amount.label == {"es": "Pensión de vejez mensual", "en": "Monthly old-age pension"}
        assert [child.name for child in amount.children] == [
            "pension_mensual_calculada",
            "pension_minima",
        ]
        kinds = {node.kind for node in amount.walk()}
        assert kinds == {"formula", "input", "parameter", "table", "cases", "builtin"}

    def test_children_are_in_order_of_first_use(self, demo: Package) -> None:
        result = demo.evaluate(PERSON, on=ON, outputs=["incrementos"])
        node = result.explanation[0]
        assert [child.name for child in node.children] == [
            "anios_excedentes",
            "semanas_residuales",
        ]

    def test_conditions_record_each_test_with_its_operands(self, demo: Package) -> None:
        young = {**PERSON, "fecha_nacimiento": D(1962, 3, 1), "semanas_cotizadas": 430}
        result = demo.evaluate(young, on=ON, outputs=["elegible_vejez"])
        node = result.explanation[0]
        assert node.kind == "conditions"
        assert node.value is False
        assert node.conditions is not None
        first, second, third, _ = node.conditions
        assert first == {
            "test": "edad >= edad_vejez",
            "holds": False,
            "left": Decimal(62),
            "operator": ">=",
            "right": Decimal(65),
            "type": "number",
            "left_name": "edad",
            "right_name": "edad_vejez",
            "reference": "LSS 1973 art. 138 fr. I",
            "label": {"es": "Tener 65 años cumplidos", "en": "Be 65 or older"},
        }
        assert second["holds"] is False
        assert third["test"] == "conserva_derechos"
        assert third["holds"] is True
        assert third["operator"] is None

    def test_unmet_conditions_list_every_reason(self, demo: Package) -> None:
        young = {**PERSON, "fecha_nacimiento": D(1962, 3, 1), "semanas_cotizadas": 430}
        result = demo.evaluate(young, on=ON)
        unmet = result.unmet_conditions("elegible_vejez")
        assert [(u.test, u.left, u.right, u.reference) for u in unmet] == [
            ("edad >= edad_vejez", Decimal(62), Decimal(65), "LSS 1973 art. 138 fr. I"),
            (
                "semanas_cotizadas >= semanas_minimas",
                Decimal(430),
                Decimal(500),
                "LSS 1973 art. 138 fr. II",
            ),
        ]
        assert unmet[1].left_label == {"es": "Semanas cotizadas", "en": "Weeks of contribution"}
        assert unmet[1].unit == "weeks"
        assert demo.evaluate(PERSON, on=ON).unmet_conditions("elegible_vejez") == []
        with pytest.raises(KeyError):
            result.unmet_conditions("elegible_invalidez")

    def test_results_round_trip_through_json(self, demo: Package) -> None:
        result = demo.evaluate(
            PERSON, on=ON, outputs=[*demo.default_outputs(), "regimen", "fecha_inicio_pago"]
        )
        data = json.loads(json.dumps(result.to_dict()))
        assert data["values"]["pension_vejez"] == {"type": "number", "value": "10109.82"}
        assert data["explanation"][1]["value"] == "10109.82"
        restored = Result.from_dict(data)
        assert restored == result
        assert restored.values["fecha_inicio_pago"] == ON
        node = restored.node("salario_minimo")
        assert node is not None
        assert node.parameter is not None
        assert node.parameter["valid_from"] == D(2024, 1, 1)

    def test_a_node_round_trips_on_its_own(self) -> None:
        node = Node(
            "edad",
            "formula",
            "number",
            Decimal("66.50"),
            unit="years",
            label={"es": "Edad", "en": "Age"},
            reference="art. 1",
            formula="years_between(a, b)",
            children=(Node("a", "input", "date", D(1958, 1, 1)),),
        )
        assert Node.from_dict(json.loads(json.dumps(node.to_dict()))) == node
        assert node.to_dict()["value"] == "66.50"
