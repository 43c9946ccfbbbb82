"""The shipped scheme packages: every test case (one pytest test each), and what every package
must carry — sources and verification flags on parameter values, an article on every case, an
intact publication. Then the case runner itself: that a wrong expectation fails, naming the line.
"""

from __future__ import annotations

import datetime
import textwrap
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from pilar.rules import RulesError, available_packages, load_package, package_hash
from pilar.rules.package import SCHEMES_DIR, PackageRef, read_register
from pilar.rules.testing import (
    CaseOutcome,
    SchemeCase,
    condition_key,
    engine_inputs,
    load_cases,
    run_case,
    run_package,
    run_packages,
    values_equal,
)

SHIPPED = available_packages()
CASES: list[tuple[PackageRef, SchemeCase]] = [
    (ref, case)
    for ref in SHIPPED
    for case in load_cases(SCHEMES_DIR / ref.name / ref.version / "tests")
]

# Parameter entries a data steward has checked against the DOF, as (package, parameter, from).
# Nothing has been checked yet (this code cannot reach the gazette). Clearing a value's
# needs_verification flag without adding it here fails the test below, so a flag is never
# dropped by accident.
VERIFIED: frozenset[tuple[str, str, datetime.date]] = frozenset()


def _describe(outcome: CaseOutcome) -> str:
    lines = [f"{outcome.case.location}: {outcome.case.name}"]
    if outcome.problem:
        lines.append(f"  {outcome.problem}")
    lines.extend(
        f"  line {check.line}: {check.name}: expected {check.expected}, got {check.actual}"
        for check in outcome.failed_checks
    )
    return "\n".join(lines)


# --- the shipped packages' cases -------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "case"),
    CASES,
    ids=[f"{ref.name}-{ref.version}:{case.path.name}:{case.line}" for ref, case in CASES],
)
def test_shipped_case(ref: PackageRef, case: SchemeCase) -> None:
    outcome = run_case(load_package(ref.name, ref.version), case)
    assert outcome.passed, _describe(outcome)


EXPECT_CASES = [(ref, case) for ref, case in CASES if case.expect_error is None]


@pytest.mark.parametrize(
    ("ref", "case"),
    EXPECT_CASES,
    ids=[f"{ref.name}-{ref.version}:{case.path.name}:{case.line}" for ref, case in EXPECT_CASES],
)
def test_shipped_case_in_bulk(ref: PackageRef, case: SchemeCase) -> None:
    """The same case as a one-row frame through the Polars path: the benefits app recalculates
    awards in bulk, so a package must decide the same there (numbers in float64, to 1e-9)."""
    package = load_package(ref.name, ref.version)
    row = {
        name: [float(value) if isinstance(value, Decimal) else value]
        for name, value in engine_inputs(package, case.inputs).items()
    }
    frame = package.evaluate_bulk(
        pl.DataFrame(row), on=case.on, known_at=case.known_at, outputs=list(case.expect)
    )
    assert frame["_error"][0] is None, f"{case.location}: {frame['_error'][0]}"
    for name, expected in case.expect.items():
        actual = frame[name][0]
        where = f"{case.location}, line {expected.line}: {name}"
        if isinstance(expected.value, bool):
            assert actual is expected.value, where
        else:
            wanted = Decimal(str(expected.value))
            assert actual is not None, where
            tolerance = Decimal("1e-9") * max(Decimal(1), abs(wanted))
            assert abs(Decimal(repr(actual)) - wanted) <= tolerance, (
                f"{where}: expected {wanted}, got {actual}"
            )


def test_the_three_schemes_are_shipped_and_published() -> None:
    register = read_register(SCHEMES_DIR)
    for name in ("imss_1973", "imss_1997", "bienestar"):
        assert PackageRef(name, "1.0.0") in SHIPPED
        assert "1.0.0" in register.get(name, {}), f"{name} 1.0.0 is not in published.yaml"


@pytest.mark.parametrize("ref", SHIPPED, ids=[f"{r.name}-{r.version}" for r in SHIPPED])
def test_every_package_has_denials_boundaries_and_a_missing_input_case(ref: PackageRef) -> None:
    cases = [case for shipped, case in CASES if shipped == ref]
    assert len(cases) >= 8
    assert any(case.expect_unmet for case in cases), "no denial listing its unmet conditions"
    assert any(
        case.expect_error is not None and case.expect_error.code == "missing_input"
        for case in cases
    ), "no missing-input case"


@pytest.mark.parametrize(("ref", "case"), CASES, ids=[c.location for _, c in CASES])
def test_every_case_names_its_article(ref: PackageRef, case: SchemeCase) -> None:
    assert case.reference, f"{case.location}: the case has no reference"


@pytest.mark.parametrize("ref", SHIPPED, ids=[f"{r.name}-{r.version}" for r in SHIPPED])
def test_every_parameter_value_has_a_source_and_is_flagged_until_verified(
    ref: PackageRef,
) -> None:
    package = load_package(ref.name, ref.version)
    for parameter in package.parameters.values():
        assert parameter.entries, f"{parameter.location}: {parameter.name} has no values"
        for entry in parameter.entries:
            where = f"{parameter.location} ({parameter.name} from {entry.valid_from})"
            assert entry.source, f"{where}: no source"
            assert entry.source.strip(), f"{where}: a blank source"
            verified = (ref.name, parameter.name, entry.valid_from) in VERIFIED
            assert entry.needs_verification is not verified, (
                f"{where}: needs_verification must be true until the value is checked "
                "against the DOF (and listed in VERIFIED)"
            )


def test_every_published_package_passes_integrity() -> None:
    register = read_register(SCHEMES_DIR)
    assert register, "published.yaml lists no package"
    for name, versions in register.items():
        for version, digest in versions.items():
            folder = SCHEMES_DIR / name / version
            assert folder.is_dir(), f"published {name} {version} has no folder"
            assert package_hash(folder) == digest, f"{name} {version} changed after publication"
            assert load_package(name, version).content_hash == digest


# --- the runner ------------------------------------------------------------------------------

# A bienestar claim that is entitled on 2020-03-01 (70 years old, 2,620 a bimester).
ENTITLED_INPUTS = (
    "{edad: 70, reside_en_mexico: true, mexicano_o_residente_25: true, municipio_indigena: false}"
)


def _cases(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "tests"
    folder.mkdir(exist_ok=True)
    (folder / "cases.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def _run(tmp_path: Path, text: str) -> list[CaseOutcome]:
    report = run_package(load_package("bienestar", "1.0.0"), _cases(tmp_path, text))
    assert report.error is None, report.error
    return list(report.outcomes)


def test_a_wrong_amount_fails_naming_the_line_expected_and_actual(tmp_path: Path) -> None:
    outcomes = _run(
        tmp_path,
        f"""\
        - name: Monto equivocado
          on: 2020-03-01
          inputs: {ENTITLED_INPUTS}
          expect:
            elegible_pension_bienestar: true
            pension_bienestar: "2600"
        """,
    )
    (outcome,) = outcomes
    assert not outcome.passed
    assert outcome.case.line == 1
    (check,) = outcome.failed_checks
    assert (check.name, check.expected, check.actual, check.line) == (
        "pension_bienestar",
        "2600",
        "2620",
        6,
    )
    assert outcome.to_dict()["checks"][1]["location"].endswith("cases.yaml:6")


def test_numbers_compare_as_decimals_and_types_do_not_mix() -> None:
    assert values_equal("2620", Decimal("2620.00"))
    assert values_equal(0.1, Decimal("0.1"))
    assert values_equal(2620, Decimal("2620"))
    assert not values_equal("2620.01", Decimal("2620"))
    assert not values_equal(1, True)
    assert not values_equal(True, Decimal(1))
    assert not values_equal("true", True)
    assert values_equal("2021-07-01", datetime.date(2021, 7, 1))


def test_unmet_conditions_must_match_exactly(tmp_path: Path) -> None:
    outcomes = _run(
        tmp_path,
        """\
        - name: Falta una razón
          on: 2026-03-01
          inputs: {edad: 50, reside_en_mexico: false, mexicano_o_residente_25: true,
                   municipio_indigena: false}
          expect: {elegible_pension_bienestar: false}
          expect_unmet: [edad]
        - name: Sobra una razón
          on: 2026-03-01
          inputs: {edad: 50, reside_en_mexico: true, mexicano_o_residente_25: true,
                   municipio_indigena: false}
          expect: {elegible_pension_bienestar: false}
          expect_unmet: [edad, reside_en_mexico]
        - name: Por el texto de la prueba y por nombre
          on: 2026-03-01
          inputs: {edad: 50, reside_en_mexico: false, mexicano_o_residente_25: true,
                   municipio_indigena: false}
          expect: {elegible_pension_bienestar: false}
          expect_unmet: ["edad>=edad_minima", reside_en_mexico]
        """,
    )
    missing_one, extra_one, by_test = outcomes
    assert not missing_one.passed
    assert missing_one.failed_checks[0].actual == "edad, reside_en_mexico"
    assert missing_one.failed_checks[0].line == 6
    assert not extra_one.passed
    assert by_test.passed, _describe(by_test)


def test_expected_errors_are_checked(tmp_path: Path) -> None:
    outcomes = _run(
        tmp_path,
        f"""\
        - name: Se esperaba un error que no ocurre
          on: 2020-03-01
          inputs: {ENTITLED_INPUTS}
          expect_error: {{code: missing_input}}
        - name: Otro dato faltante
          on: 2020-03-01
          inputs: {{edad: 70, reside_en_mexico: true, mexicano_o_residente_25: true}}
          expect_error: {{code: missing_input, missing: [edad]}}
        - name: El error esperado
          on: 2020-03-01
          inputs: {{edad: 70, reside_en_mexico: true, mexicano_o_residente_25: true}}
          expect_error: {{code: missing_input, missing: [municipio_indigena]}}
        - name: Un error inesperado hace fallar el caso
          on: 2018-01-01
          inputs: {ENTITLED_INPUTS}
          expect: {{elegible_pension_bienestar: true}}
        """,
    )
    no_error, wrong_missing, right, unexpected = outcomes
    assert not no_error.passed
    assert no_error.failed_checks[0].actual.startswith("no error")
    assert not wrong_missing.passed
    assert [check.actual for check in wrong_missing.failed_checks] == ["municipio_indigena"]
    assert right.passed, _describe(right)
    assert not unexpected.passed
    assert unexpected.problem is not None
    assert "No value" in unexpected.problem


def test_case_files_read_on_as_a_key_and_yes_as_text(tmp_path: Path) -> None:
    (case,) = load_cases(
        _cases(
            tmp_path,
            """\
            - name: on es una clave
              on: 2020-03-01
              known_at: 2020-01-01
              inputs: {texto: yes, numero: 0.1}
              expect: {x: true}
            """,
        )
    )
    assert case.on == datetime.date(2020, 3, 1)
    assert case.known_at == datetime.date(2020, 1, 1)
    assert case.inputs == {"texto": "yes", "numero": 0.1}


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("- name: a\n  on: 2020-03-01\n  inputs: {}\n  expected: {x: 1}\n", 4, "unknown key"),
        ("- name: a\n  on: 2020-03-01\n  inputs: {}\n", 1, "exactly one of expect"),
        ("- name: a\n  on: 2020-13-01\n  inputs: {}\n  expect: {x: 1}\n", 2, "date"),
        (
            "- name: a\n  on: 2020-03-01\n  inputs: {}\n  expect: {x: 1}\n- name: a\n"
            "  on: 2020-03-01\n  inputs: {}\n  expect: {x: 1}\n",
            5,
            "already used at",
        ),
        (
            "- name: a\n  on: 2020-03-01\n  inputs: {}\n  expect: {x: false, y: false}\n"
            "  expect_unmet: [edad]\n",
            5,
            "exactly one output expected false",
        ),
        (
            "- name: a\n  on: 2020-03-01\n  inputs: {}\n  expect_error: {kind: no_value}\n",
            4,
            "code",
        ),
        ("- name: [a\n", 2, ""),
    ],
)
def test_a_malformed_case_file_is_refused_naming_file_and_line(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    folder = tmp_path / "tests"
    folder.mkdir()
    (folder / "bad.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as raised:
        load_cases(folder)
    assert raised.value.location is not None
    assert raised.value.location.endswith(f"bad.yaml:{line}")
    assert problem in raised.value.message("en")


def test_a_broken_case_file_is_a_package_report_error(tmp_path: Path) -> None:
    folder = _cases(tmp_path, "- just text\n")
    report = run_package(load_package("bienestar", "1.0.0"), folder)
    assert not report.passed
    assert report.error is not None
    assert report.error.code == "schema_error"


def test_an_unknown_package_name_is_a_failing_report() -> None:
    (report,) = run_packages(["no_such_scheme"])
    assert not report.passed
    assert report.error is not None
    assert report.error.code == "package_not_found"


@pytest.mark.parametrize(
    ("test", "key"),
    [
        ("edad >= edad_vejez", "edad"),
        ("not tiene_empleo_vigente", "tiene_empleo_vigente"),
        ("max(semanas, 0) > 'texto'", "semanas"),
        ("tabla_167.cuantia_basica > 0", "tabla_167.cuantia_basica"),
        ("cotizo_antes_1997", "cotizo_antes_1997"),
    ],
)
def test_a_condition_is_named_by_the_first_name_its_test_reads(test: str, key: str) -> None:
    assert condition_key(test) == key
