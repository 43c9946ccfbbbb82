"""Decision tables: cell conditions, overlaps under ``unique``, ``first``, and matching."""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from pilar.rules import NoValueError, SchemeFileError, TableOverlapError, load_package
from pilar.rules.explanation import Value
from pilar.rules.tables import AnyCell, BoolCell, Interval, TextSet, parse_cell
from pilar.rules.tests.packages import FIXTURES, package_copy

D = datetime.date
N = Decimal


def number_cell(text: object) -> object:
    return parse_cell(text, "number", "tables.yaml:3", "cell")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(0, 1]", Interval(N(0), False, N(1), True)),
        ("[1.25, 1.50)", Interval(N("1.25"), True, N("1.50"), False)),
        ("[60, )", Interval(N(60), True, None, False)),
        ("(, 5]", Interval(None, False, N(5), True)),
        (">= 65", Interval(N(65), True, None, False)),
        ("> 6", Interval(N(6), False, None, False)),
        ("<= 3", Interval(None, False, N(3), True)),
        ("< 3", Interval(None, False, N(3), False)),
        ("== 2", Interval(N(2), True, N(2), True)),
        ("7", Interval(N(7), True, N(7), True)),
        (N("0.5"), Interval(N("0.5"), True, N("0.5"), True)),
        ("-", AnyCell()),
        (None, AnyCell()),
    ],
)
def test_number_cells(text: object, expected: object) -> None:
    assert number_cell(text) == expected


def test_date_text_and_bool_cells() -> None:
    assert parse_cell("[1997-07-01, )", "date", "t:1", "c") == Interval(
        D(1997, 7, 1), True, None, False
    )
    assert parse_cell(D(2000, 1, 1), "date", "t:1", "c") == Interval(
        D(2000, 1, 1), True, D(2000, 1, 1), True
    )
    assert parse_cell("casado", "text", "t:1", "c") == TextSet(frozenset({"casado"}))
    assert parse_cell(["viudo", "soltero"], "text", "t:1", "c") == TextSet(
        frozenset({"viudo", "soltero"})
    )
    assert parse_cell(True, "bool", "t:1", "c") == BoolCell(True)
    assert parse_cell("-", "bool", "t:1", "c") == AnyCell()


@pytest.mark.parametrize("text", ["(5, 3]", "(3, 3]", "[a, 3]", "[3, ]", "hello", "> x"])
def test_invalid_number_cells(text: str) -> None:
    with pytest.raises(SchemeFileError) as caught:
        number_cell(text)
    assert caught.value.location == "tables.yaml:3"


def test_adjacent_intervals_partition_the_line_even_with_float_noise() -> None:
    low = Interval(N(0), False, N(1), True)
    high = Interval(N(1), False, N(2), True)
    for value in (N(1), N("1.0000000001"), N("0.9999999999")):
        assert [low.contains(value), high.contains(value)] == [True, False]
    assert [low.contains(N("1.000001")), high.contains(N("1.000001"))] == [False, True]
    assert not low.contains(N(0))


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("[0, 1]", "[1, 2]", True),
        ("[0, 1)", "[1, 2]", False),
        ("(0, 1]", "(1, 2]", False),
        ("(, 5]", "[5, )", True),
        ("< 5", ">= 5", False),
        ("-", "[1, 2]", True),
        ("3", "[1, 3)", False),
        ("3", "[1, 3]", True),
    ],
)
def test_number_intervals_intersect(first: str, second: str, overlap: bool) -> None:
    a, b = number_cell(first), number_cell(second)
    assert a.intersects(b) is overlap  # type: ignore[attr-defined]
    assert b.intersects(a) is overlap  # type: ignore[attr-defined]


def test_text_and_bool_cells_intersect() -> None:
    assert TextSet(frozenset({"a", "b"})).intersects(TextSet(frozenset({"b"})))
    assert not TextSet(frozenset({"a"})).intersects(TextSet(frozenset({"b"})))
    assert not BoolCell(True).intersects(BoolCell(False))
    assert BoolCell(True).intersects(AnyCell())


TWO_INPUTS = """\
  casado:
    type: bool
    input: true
    label: {es: Casado, en: Married}
"""


def two_input_table(rows: str, hit_policy: str = "unique") -> str:
    return f"""\
tables:
  tabla:
    reference: "Ley de prueba art. 5"
    label: {{es: Tabla, en: Table}}
    hit_policy: {hit_policy}
    inputs: [edad, casado]
    outputs:
      factor: {{type: number}}
    rows:
{rows}"""


def test_rows_overlapping_in_one_input_but_not_another_do_not_overlap(tmp_path: Path) -> None:
    rows = """\
      - {when: {edad: "[65, )", casado: true}, then: {factor: 1.1}}
      - {when: {edad: "[65, )", casado: false}, then: {factor: 1}}
"""
    folder = package_copy(
        tmp_path, append={"variables.yaml": TWO_INPUTS, "tables.yaml": two_input_table(rows)}
    )
    table = load_package(path=folder).tables["tabla"]
    assert table.match({"edad": N(70), "casado": False}).then["factor"] == N(1)  # type: ignore[union-attr]
    assert table.match({"edad": N(70), "casado": True}).then["factor"] == N("1.1")  # type: ignore[union-attr]
    assert table.match({"edad": N(60), "casado": True}) is None


def test_rows_overlapping_in_every_input_are_refused_under_unique(tmp_path: Path) -> None:
    rows = """\
      - {when: {edad: "[65, )", casado: true}, then: {factor: 1.1}}
      - {when: {edad: "[70, 80)"}, then: {factor: 1}}
"""
    folder = package_copy(
        tmp_path, append={"variables.yaml": TWO_INPUTS, "tables.yaml": two_input_table(rows)}
    )
    with pytest.raises(TableOverlapError) as caught:
        load_package(path=folder)
    assert caught.value.params == {
        "table": "tabla",
        "first_row": 1,
        "first_line": 10,
        "second_row": 2,
        "second_line": 11,
    }


def test_the_first_policy_takes_the_first_matching_row(tmp_path: Path) -> None:
    rows = """\
      - {when: {edad: "[65, )", casado: true}, then: {factor: 1.1}}
      - {when: {edad: "[70, 80)"}, then: {factor: 1}}
      - {when: {edad: "-"}, then: {factor: 0}}
"""
    folder = package_copy(
        tmp_path,
        append={"variables.yaml": TWO_INPUTS, "tables.yaml": two_input_table(rows, "first")},
    )
    table = load_package(path=folder).tables["tabla"]
    matches = {
        (70, True): 1,
        (70, False): 2,
        (90, False): 3,
        (10, True): 3,
    }
    for (age, married), row in matches.items():
        found = table.match({"edad": N(age), "casado": married})
        assert found is not None
        assert found.number == row


def test_first_policy_with_text_lists_in_the_fixture() -> None:
    package = load_package("lss_demo", schemes_dir=FIXTURES)
    table = package.tables["tabla_ayuda"]
    alone: dict[str, Value] = {
        "estado_civil": "viudo",
        "vive_solo": True,
        "padres_dependientes": N(1),
    }
    with_parent: dict[str, Value] = {
        "estado_civil": "casado",
        "vive_solo": True,
        "padres_dependientes": N(1),
    }
    nobody: dict[str, Value] = {
        "estado_civil": "casado",
        "vive_solo": False,
        "padres_dependientes": N(0),
    }
    assert table.match(alone).then["motivo"] == "sin familiares"  # type: ignore[union-attr]
    assert table.match(with_parent).then["motivo"] == "un ascendiente"  # type: ignore[union-attr]
    assert table.match(nobody).then["motivo"] == "ninguno"  # type: ignore[union-attr]


def test_no_matching_row_is_no_value_naming_the_tables_article() -> None:
    package = load_package("runtime_errors", schemes_dir=FIXTURES)
    with pytest.raises(NoValueError) as caught:
        package.evaluate({"edad": 64, "residente": True}, on=D(2024, 1, 1), outputs=["factor"])
    assert caught.value.params["name"] == "tabla_factor"
    assert caught.value.reference == "Ley de prueba art. 5"
    assert caught.value.location == "runtime_errors/1.0.0/tables.yaml:2"


def test_the_explanation_names_the_row_and_its_cells() -> None:
    package = load_package("runtime_errors", schemes_dir=FIXTURES)
    result = package.evaluate({"edad": 75, "residente": True}, on=D(2024, 1, 1), outputs=["factor"])
    node = result.node("tabla_factor.factor")
    assert node is not None
    assert node.kind == "table"
    assert node.value == N("1.1")
    assert node.table == {
        "name": "tabla_factor",
        "row": 2,
        "line": 11,
        "when": {"edad": "[70, 80)"},
        "source": None,
        "needs_verification": False,
    }
    assert [child.name for child in node.children] == ["edad"]


def test_a_table_carries_its_source_and_verification_mark_into_the_explanation() -> None:
    package = load_package("imss_1973")
    result = package.evaluate(
        {
            "edad": 62,
            "semanas_cotizadas": 1200,
            "salario_promedio_diario": N("600"),
            "conyuge": False,
            "hijos_dependientes": 0,
            "padres_dependientes": 0,
            "tiene_empleo_vigente": False,
            "cotizo_antes_1997": True,
        },
        on=D(2026, 3, 1),
        outputs=["pension_cesantia"],
    )
    node = result.node("tabla_171.factor_edad")
    assert node is not None
    assert node.table is not None
    assert node.table["needs_verification"] is True
    assert node.table["source"] == "DOF 12-03-1973"
