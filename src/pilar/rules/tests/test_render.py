"""Plain-language rendering of results, in Spanish and English."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pilar.rules import Result, load_package, render_text
from pilar.rules.package import Package
from pilar.rules.render import format_value
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
DENIED = {**PERSON, "fecha_nacimiento": D(1962, 3, 1), "semanas_cotizadas": 430}


@pytest.fixture(scope="module")
def demo() -> Package:
    return load_package("lss_demo", schemes_dir=FIXTURES)


def test_a_denial_lists_each_unmet_condition_with_values_and_article(demo: Package) -> None:
    result = demo.evaluate(DENIED, on=ON)
    assert render_text(result, "es").split("\n\n") == [
        "Pensión de vejez: no procede. No cumple: edad 62, se requieren 65 "
        "(LSS 1973 art. 138 fr. I); semanas cotizadas 430, se requieren 500 "
        "(LSS 1973 art. 138 fr. II).",
        "Pensión de cesantía en edad avanzada: no procede. No cumple: semanas cotizadas 430, "
        "se requieren 500 (LSS 1973 art. 145 fr. II).",
    ]
    assert render_text(result, "en").split("\n\n")[0] == (
        "Old-age pension: not granted. Not met: age 62, 65 required (LSS 1973 art. 138 fr. I); "
        "weeks of contribution 430, 500 required (LSS 1973 art. 138 fr. II)."
    )


def test_a_condition_that_is_not_a_comparison_reads_as_its_label(demo: Package) -> None:
    gone = {**PERSON, "fecha_baja": D(2010, 1, 1)}
    text = render_text(demo.evaluate(gone, on=ON), "es")
    assert text.startswith(
        "Pensión de vejez: no procede. No cumple: Conservar derechos (LSS 1973 art. 182)."
    )
    # Without a label, the test itself is shown.
    assert "conserva_derechos and es_regimen_1973 (LSS 1973 art. 182)" in text


def test_a_grant_shows_the_amount_and_every_step(demo: Package) -> None:
    text = render_text(demo.evaluate(PERSON, on=ON), "es")
    lines = text.split("\n")
    assert lines[0] == "Pensión de vejez: procede. Cuantía: $10,109.82 mensual."
    assert lines[1] == "Cálculo:"
    assert lines[2] == (
        "- Pensión de vejez mensual: $10,109.82 = "
        "round(max(pension_mensual_calculada, pension_minima), 2) (LSS 1973 art. 168)"
    )
    assert (
        "- Salario mínimo general diario: $248.93 (vigente desde 01/01/2024; "
        "DOF 15-12-2023 (fe de erratas); CPEUM art. 123 A fr. VI)"
    ) in text
    assert "- Cuantía básica: 0.2783 (tabla tabla_167, fila 7; LSS 1973 art. 167)" in text
    assert "- Semanas cotizadas: 812 semanas (dato de la solicitud)" in text
    assert "valor por verificar contra el DOF" in text
    assert "caso aplicado: Decreto DOF 11-08-2004 art. único" in text
    # A value used twice is explained once.
    assert text.count("- Salario base diario: $650.50 =") == 1
    assert "- Salario base diario: véase arriba" in text
    english = render_text(demo.evaluate(PERSON, on=ON), "en")
    assert english.startswith(
        "Old-age pension: granted. Amount: $10,109.82 per month.\nCalculation:"
    )


def test_other_outputs_are_listed_after_the_benefits(demo: Package) -> None:
    result = demo.evaluate(
        PERSON, on=ON, outputs=["elegible_vejez", "regimen", "fecha_inicio_pago"]
    )
    text = render_text(result, "es")
    assert text.split("\n\n")[-1] == (
        "Resultado:\n"
        "- Régimen: LSS 1973 = leyenda_regimen (caso aplicado: LSS 1997 transitorio tercero)\n"
        "- Fecha de inicio del pago: 22/11/2024 = max(fecha_baja, evaluation_date) "
        "(LSS 1973 art. 140)"
    )


def test_a_stored_result_renders_the_same_without_its_package(demo: Package) -> None:
    for inputs in (PERSON, DENIED):
        result = demo.evaluate(inputs, on=ON)
        stored = json.loads(json.dumps(result.to_dict()))
        for language in ("es", "en"):
            assert render_text(Result.from_dict(stored), language) == render_text(result, language)


def test_a_comparison_written_the_other_way_round_reads_naturally(tmp_path: Path) -> None:
    folder = package_copy(
        tmp_path, replace={"variables.yaml": [("edad >= edad_minima", "edad_minima <= edad")]}
    )
    result = load_package(path=folder).evaluate({"edad": 60}, on=ON)
    assert render_text(result, "es") == (
        "Ayuda de prueba: no procede. "
        "No cumple: edad 60, se requieren 65 (Ley de prueba art. 3 fr. I)."
    )


@pytest.mark.parametrize(
    ("value", "unit", "language", "text"),
    [
        (Decimal("1234.5"), "pesos", "es", "$1,234.50"),
        (Decimal("0.005"), "pesos", "es", "$0.01"),
        (Decimal("430"), "weeks", "es", "430"),
        (Decimal("2.613184429357650745189410678"), None, "es", "2.6132"),
        (Decimal("0.15"), "fraction", "en", "0.15"),
        (Decimal("12000"), None, "es", "12,000"),
        (D(2026, 1, 5), None, "es", "05/01/2026"),
        (D(2026, 1, 5), None, "en", "2026-01-05"),
        (True, None, "es", "sí"),
        (False, None, "en", "no"),
        ("LSS 1973", None, "es", "LSS 1973"),
    ],
)
def test_values_are_formatted_for_people(
    value: Any, unit: str | None, language: str, text: str
) -> None:
    assert format_value(value, unit, language) == text
