"""Load errors: every problem in a package is refused at load, naming the file and line."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pilar.rules import (
    CycleError,
    FormulaTypeError,
    MissingReferenceError,
    RulesError,
    SchemeFileError,
    TableOverlapError,
    UnknownNameError,
    load_package,
)
from pilar.rules.tests.packages import FIXTURES, package_copy


@pytest.mark.parametrize(
    ("fixture", "error_type", "code", "location", "fragment"),
    [
        ("broken_yaml", SchemeFileError, "yaml_error", "variables.yaml:7", "expected ',' or '}'"),
        ("broken_unknown_key", SchemeFileError, "schema_error", "variables.yaml:20", "'formla'"),
        ("broken_unknown_name", UnknownNameError, "unknown_name", "variables.yaml:20", "monto_bas"),
        ("broken_type", FormulaTypeError, "type_error", "variables.yaml:20", "monto_base + (edad"),
        ("broken_syntax", FormulaTypeError, "syntax_error", "variables.yaml:20", "column 18"),
        ("broken_cycle", CycleError, "cycle", "variables.yaml:15", "monto → doble → monto"),
        (
            "broken_overlap",
            TableOverlapError,
            "table_overlap",
            "tables.yaml:13",
            "Rows 2 (line 11) and 3 (line 13) of table tabla_factor overlap",
        ),
        (
            "broken_reference",
            MissingReferenceError,
            "missing_reference",
            "variables.yaml:15",
            "monto",
        ),
        (
            "broken_parameter_reference",
            MissingReferenceError,
            "missing_reference",
            "parameters.yaml:9",
            "monto_base",
        ),
    ],
)
def test_broken_fixtures_are_refused_with_file_and_line(
    fixture: str, error_type: type[RulesError], code: str, location: str, fragment: str
) -> None:
    with pytest.raises(error_type) as caught:
        load_package(fixture, schemes_dir=FIXTURES)
    error = caught.value
    assert error.code == code
    assert error.location == f"{fixture}/1.0.0/{location}"
    assert fragment in error.message("en")
    # Both languages name the place.
    assert error.message("es").startswith(f"{fixture}/1.0.0/{location}: ")


def test_an_overlap_names_the_tables_article() -> None:
    with pytest.raises(TableOverlapError) as caught:
        load_package("broken_overlap", schemes_dir=FIXTURES)
    assert caught.value.reference == "Ley de prueba art. 5"
    assert caught.value.message("es").endswith("(Ley de prueba art. 5)")


# Variations of the minimal package: (id, edits, code, location, fragment of the message).
# An edit is {file: [(old, new), …]} or {"file+": text to append}.
VARIABLE_MONTO = "  monto:\n    type: number\n"
CASES_VARIABLE = """\
  con_casos:
    type: number
    reference: "Ley de prueba art. 9"
    label: {es: Con casos, en: With cases}
    cases:
      - value: 1
"""
TABLE = """\
tables:
  tabla:
    reference: "Ley de prueba art. 5"
    label: {es: Tabla, en: Table}
    inputs: [edad]
    outputs:
      factor: {type: number}
    rows:
      - when: {edad: "[65, )"}
        then: {factor: 1}
"""
VARIATIONS = [
    (
        "duplicate key",
        {"variables.yaml": [("    unit: years\n", "    unit: years\n    unit: days\n")]},
        "schema_error",
        "variables.yaml:6",
        "duplicate key 'unit' (first at line 5)",
    ),
    (
        "missing label",
        {"variables.yaml": [("    label: {es: Monto mensual, en: Monthly amount}\n", "")]},
        "schema_error",
        "variables.yaml:15",
        "missing key 'label' in variable monto",
    ),
    (
        "label without English",
        {"variables.yaml": [("{es: Monto mensual, en: Monthly amount}", "{es: Monto mensual}")]},
        "schema_error",
        "variables.yaml:19",
        "missing key 'en'",
    ),
    (
        "formula and conditions",
        {
            "variables.yaml": [
                ("    formula: monto_base", "    formula: monto_base\n    input: true")
            ]
        },
        "schema_error",
        "variables.yaml:15",
        "exactly one of input, formula, conditions, cases (has input, formula)",
    ),
    (
        "optional without default",
        {"variables.yaml": [("    input: true\n", "    input: true\n    optional: true\n")]},
        "schema_error",
        "variables.yaml:2",
        "optional and needs a default",
    ),
    (
        "default on a required input",
        {"variables.yaml": [("    input: true\n", "    input: true\n    default: 3\n")]},
        "schema_error",
        "variables.yaml:5",
        "has a default but is not optional",
    ),
    (
        "input: false",
        {"variables.yaml": [("    input: true\n", "    input: false\n")]},
        "schema_error",
        "variables.yaml:4",
        "input must be true",
    ),
    (
        "unknown type",
        {"variables.yaml": [(VARIABLE_MONTO, "  monto:\n    type: money\n")]},
        "schema_error",
        "variables.yaml:16",
        "type is 'money'; expected one of number, bool, date, text",
    ),
    (
        "unknown period",
        {"variables.yaml": [(VARIABLE_MONTO, VARIABLE_MONTO + "    period: week\n")]},
        "schema_error",
        "variables.yaml:17",
        "period is 'week'",
    ),
    (
        "unknown entity",
        {"variables.yaml": [(VARIABLE_MONTO, VARIABLE_MONTO + "    entity: household\n")]},
        "schema_error",
        "variables.yaml:17",
        "entity is 'household'; expected one of person",
    ),
    (
        "conditions on a number",
        {"variables.yaml": [("  elegible:\n    type: bool", "  elegible:\n    type: number")]},
        "schema_error",
        "variables.yaml:8",
        "has conditions, so its type must be bool",
    ),
    (
        "condition without reference",
        {"variables.yaml": [('        reference: "Ley de prueba art. 3 fr. I"\n', "")]},
        "missing_reference",
        "variables.yaml:12",
        "variable elegible, condition 1",
    ),
    (
        "case without reference",
        {"variables.yaml+": CASES_VARIABLE},
        "missing_reference",
        "variables.yaml:26",
        "variable con_casos, case 1",
    ),
    (
        "condition that is not bool",
        {"variables.yaml": [("test: edad >= edad_minima", "test: edad + edad_minima")]},
        "type_error",
        "variables.yaml:12",
        "a condition must be bool, but this is number",
    ),
    (
        "formula of the wrong type",
        {"variables.yaml": [("formula: monto_base", "formula: monto_base > 1")]},
        "type_error",
        "variables.yaml:20",
        "the formula of variable monto must be number, but this is bool",
    ),
    (
        "parameter value of the wrong type",
        {"parameters.yaml": [("value: 65}", "value: sesenta}")]},
        "schema_error",
        "parameters.yaml:8",
        "value must be of type number, not 'sesenta'",
    ),
    (
        "parameter from that is not a date",
        {"parameters.yaml": [("{from: 2000-01-01, value: 65}", "{from: 2000, value: 65}")]},
        "schema_error",
        "parameters.yaml:8",
        "from must be a date",
    ),
    (
        "parameter without values",
        {"parameters.yaml": [("      - {from: 2000-01-01, value: 65}\n", "")]},
        "schema_error",
        "parameters.yaml:7",
        "values must be a list",
    ),
    (
        "unknown key in a parameter entry",
        {"parameters.yaml": [("value: 65}", "value: 65, fuente: DOF}")]},
        "schema_error",
        "parameters.yaml:8",
        "unknown key 'fuente'",
    ),
    (
        "benefit of an unknown variable",
        {"package.yaml": [("eligible: elegible", "eligible: elegibles")]},
        "unknown_name",
        "package.yaml:7",
        "elegibles (eligible of benefit ayuda)",
    ),
    (
        "benefit eligibility that is not bool",
        {"package.yaml": [("eligible: elegible", "eligible: monto")]},
        "type_error",
        "package.yaml:7",
        "the eligible of benefit ayuda must be a bool variable; monto is number",
    ),
    (
        "benefit amount that is not a number",
        {"package.yaml": [("amount: monto", "amount: elegible")]},
        "type_error",
        "package.yaml:7",
        "must be a number variable",
    ),
    (
        "unknown frequency",
        {"package.yaml": [("frequency: monthly", "frequency: weekly")]},
        "schema_error",
        "package.yaml:11",
        "frequency is 'weekly'; expected one of monthly, bimonthly",
    ),
    (
        "a variable named like a parameter",
        {"variables.yaml": [("  monto:\n", "  monto_base:\n")]},
        "schema_error",
        "variables.yaml:15",
        "variable monto_base: the name is already a parameter",
    ),
    (
        "a variable named like the built-in",
        {"variables.yaml": [("  monto:\n", "  evaluation_date:\n")]},
        "schema_error",
        "variables.yaml:15",
        "evaluation_date is a built-in name",
    ),
    (
        "a keyword as a name",
        {"variables.yaml": [("  monto:\n", "  if:\n")]},
        "schema_error",
        "variables.yaml:15",
        "variable 'if' is not a valid name",
    ),
]


@pytest.mark.parametrize(
    ("edits", "code", "location", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in VARIATIONS],
)
def test_variations_are_refused_with_file_and_line(
    tmp_path: Path, edits: dict[str, Any], code: str, location: str, fragment: str
) -> None:
    # "file+" appends to the file; "file" lists (old, new) replacements.
    append = {name[:-1]: text for name, text in edits.items() if name.endswith("+")}
    replace = {name: pairs for name, pairs in edits.items() if not name.endswith("+")}
    folder = package_copy(tmp_path, replace=replace, append=append)
    with pytest.raises(RulesError) as caught:
        load_package(path=folder)
    error = caught.value
    assert (error.code, error.location) == (code, f"minimal/1.0.0/{location}"), error.message("en")
    assert fragment in error.message("en")


TABLE_VARIATIONS = [
    (
        "table without reference",
        [('    reference: "Ley de prueba art. 5"\n', "")],
        "missing_reference",
        2,
    ),
    (
        "unknown hit policy",
        [("    inputs:", "    hit_policy: any\n    inputs:")],
        "schema_error",
        5,
    ),
    (
        "table of an unknown input",
        [("inputs: [edad]", "inputs: [edades]"), ("when: {edad:", "when: {edades:")],
        "unknown_name",
        2,
    ),
    ("row without an output", [("then: {factor: 1}", "then: {}")], "schema_error", 10),
    (
        "row naming an unknown input",
        [('when: {edad: "[65, )"}', 'when: {sexo: "M"}')],
        "schema_error",
        9,
    ),
    ("empty interval", [('"[65, )"', '"(70, 65]"')], "schema_error", 9),
    ("closed open end", [('"[65, )"', '"[65, ]"')], "schema_error", 9),
    ("text in a number cell", [('"[65, )"', '"sesenta"')], "schema_error", 9),
    (
        "output of the wrong type",
        [("then: {factor: 1}", "then: {factor: alto}")],
        "schema_error",
        10,
    ),
]


@pytest.mark.parametrize(
    ("edits", "code", "line"),
    [pytest.param(*case[1:], id=case[0]) for case in TABLE_VARIATIONS],
)
def test_table_variations_are_refused_with_file_and_line(
    tmp_path: Path, edits: list[tuple[str, str]], code: str, line: int
) -> None:
    folder = package_copy(tmp_path, append={"tables.yaml": TABLE})
    text = (folder / "tables.yaml").read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    (folder / "tables.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as caught:
        load_package(path=folder)
    assert (caught.value.code, caught.value.location) == (code, f"minimal/1.0.0/tables.yaml:{line}")


def test_a_table_cell_must_suit_its_inputs_type(tmp_path: Path) -> None:
    folder = package_copy(
        tmp_path,
        append={
            "variables.yaml": """\
  casado:
    type: bool
    input: true
    label: {es: Casado, en: Married}
""",
            "tables.yaml": TABLE.replace("inputs: [edad]", "inputs: [casado]").replace(
                'when: {edad: "[65, )"}', "when: {casado: sí}"
            ),
        },
    )
    with pytest.raises(SchemeFileError) as caught:
        load_package(path=folder)
    assert "expected true, false or '-'" in caught.value.message("en")


def test_an_unknown_file_in_a_package_is_refused(tmp_path: Path) -> None:
    folder = package_copy(tmp_path, append={"variable.yaml": "variables: {}\n"})
    with pytest.raises(SchemeFileError) as caught:
        load_package(path=folder)
    assert caught.value.location == "minimal/1.0.0/variable.yaml:1"


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    folder = package_copy(tmp_path)
    (folder / "parameters.yaml").write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(SchemeFileError) as caught:
        load_package(path=folder)
    assert caught.value.location == "minimal/1.0.0/parameters.yaml:1"
    assert "empty" in caught.value.message("en")


def test_a_package_must_sit_in_its_own_name_and_version_folder(tmp_path: Path) -> None:
    package_copy(tmp_path, name="minimal", version="2.0.0")
    (tmp_path / "minimal" / "2.0.0" / "package.yaml").write_text(
        (FIXTURES / "minimal" / "1.0.0" / "package.yaml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    with pytest.raises(SchemeFileError) as caught:
        load_package("minimal", "2.0.0", schemes_dir=tmp_path)
    assert "says minimal 1.0.0 but its folder is minimal/2.0.0" in caught.value.message("en")


def test_numbers_are_read_exactly_from_their_text() -> None:
    package = load_package("lss_demo", schemes_dir=FIXTURES)
    assert package.parameters["dias_mes"].entries[0].value == Decimal("30.4")
    cuantia = package.tables["tabla_167"].rows[0].then["cuantia_basica"]
    assert cuantia == Decimal("0.80")
    assert isinstance(cuantia, Decimal)


def test_load_errors_change_nothing_and_the_fixed_package_loads(tmp_path: Path) -> None:
    folder = package_copy(tmp_path, replace={"variables.yaml": [("monto_base", "monto_bas")]})
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    with pytest.raises(UnknownNameError):
        load_package(path=folder)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    (folder / "variables.yaml").write_text(
        (folder / "variables.yaml").read_text(encoding="utf-8").replace("monto_bas", "monto_base"),
        encoding="utf-8",
    )
    assert load_package(path=folder).variables["monto"].formula is not None
