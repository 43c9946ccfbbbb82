"""``pilar rules``: list, check, test and publish scheme packages.

Every test works on a copy of the shipped packages (``--schemes-dir``), so none of them can
touch the real ``published.yaml``.
"""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from pilar.rules.package import SCHEMES_DIR, read_register


@pytest.fixture
def schemes(tmp_path: Path) -> Path:
    copy = tmp_path / "schemes"
    shutil.copytree(SCHEMES_DIR, copy)
    return copy


def _rules(schemes: Path, *args: str) -> str:
    output = StringIO()
    call_command("rules", "--schemes-dir", str(schemes), *args, stdout=output)
    return output.getvalue()


def _failing(schemes: Path, *args: str) -> tuple[str, str]:
    """The output and the error message of a run that must end in failure (exit status 1)."""
    output = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("rules", "--schemes-dir", str(schemes), *args, stdout=output)
    return output.getvalue(), str(raised.value)


def _new_version(schemes: Path, name: str, old: str, new: str) -> Path:
    """A draft copy of a package under a new version number."""
    folder = schemes / name / new
    shutil.copytree(schemes / name / old, folder)
    package_yaml = folder / "package.yaml"
    package_yaml.write_text(
        package_yaml.read_text(encoding="utf-8").replace(f"version: {old}", f"version: {new}"),
        encoding="utf-8",
    )
    return folder


def test_list_shows_every_version_with_its_status(schemes: Path) -> None:
    _new_version(schemes, "bienestar", "1.0.0", "1.1.0")
    lines = _rules(schemes, "list").splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["bienestar", "1.0.0", "published"],
        ["bienestar", "1.1.0", "draft"],
        ["imss_1973", "1.0.0", "published"],
        ["imss_1997", "1.0.0", "published"],
    ]
    assert "[vejez, cesantia]" in lines[2]


def test_list_titles_follow_the_language_option(schemes: Path) -> None:
    output = StringIO()
    call_command("rules", "--schemes-dir", str(schemes), "--language", "es", "list", stdout=output)
    assert "Pensión para el Bienestar de las Personas Adultas Mayores" in output.getvalue()


def test_check_passes_on_the_shipped_packages(schemes: Path) -> None:
    output = _rules(schemes, "check")
    assert "imss_1973 1.0.0: ok" in output
    assert output.rstrip().endswith("3 package(s) checked, no errors.")


def test_check_prints_each_error_with_file_and_line(schemes: Path) -> None:
    draft = _new_version(schemes, "bienestar", "1.0.0", "1.1.0")
    variables = draft / "variables.yaml"
    text = variables.read_text(encoding="utf-8")
    variables.write_text(
        text.replace("    input: true\n", "    imput: true\n", 1), encoding="utf-8"
    )
    line = text.splitlines().index("    input: true") + 1
    # And a published package whose files changed after publication.
    parameters = schemes / "imss_1997" / "1.0.0" / "parameters.yaml"
    parameters.write_text(
        parameters.read_text(encoding="utf-8").replace("value: 60", "value: 62"), encoding="utf-8"
    )
    output, error = _failing(schemes, "check")
    assert (
        f"bienestar/1.1.0/variables.yaml:{line}: Invalid structure: unknown key 'imput'" in output
    )
    assert "imss_1997 1.0.0: imss_1997/1.0.0/package.yaml" in output
    assert "was modified" in output
    assert "bienestar 1.0.0: ok" in output
    assert error == "2 of 4 package(s) have errors."


def test_check_names_a_malformed_case_file(schemes: Path) -> None:
    cases = schemes / "bienestar" / "1.0.0" / "tests" / "pension.yaml"
    cases.write_text(
        cases.read_text(encoding="utf-8").replace("  on: 2020-03-01", "  om: 2020-03-01", 1),
        encoding="utf-8",
    )
    output, _ = _failing(schemes, "check")
    assert "tests/pension.yaml:" in output
    assert "unknown key 'om'" in output


def test_test_runs_every_case_and_prints_each_with_file_and_line(schemes: Path) -> None:
    output = _rules(schemes, "test", "imss_1997")
    assert "imss_1997 1.0.0: 14 passed, 0 failed" in output
    assert "  PASS  " in output
    assert "imss_1997/1.0.0/tests/bitemporal.yaml:5  Solicitud de 2021 con 800 semanas" in output
    assert output.rstrip().endswith("14 case(s) passed in 1 package version(s).")
    assert "bienestar" not in output


def test_a_failing_case_fails_the_run_naming_file_line_and_values(schemes: Path) -> None:
    cases = schemes / "bienestar" / "1.0.0" / "tests" / "pension.yaml"
    text = cases.read_text(encoding="utf-8")
    cases.write_text(text.replace('pension_bienestar: "2620"', 'pension_bienestar: "2600"', 1))
    line = text.splitlines().index('    pension_bienestar: "2620"') + 1
    output, error = _failing(schemes, "test", "--failures-only")
    assert "bienestar 1.0.0: 17 passed, 1 failed" in output
    assert "  FAIL  " in output
    assert f"pension.yaml:{line}: pension_bienestar: expected 2600, got 2620" in output
    assert "  PASS  " not in output
    assert error.startswith("1 of ")


def test_test_of_an_unknown_package_fails(schemes: Path) -> None:
    output, error = _failing(schemes, "test", "imss_2030")
    assert "imss_2030: ERROR There is no rules package imss_2030" in output
    assert error == "1 package(s) could not be tested."


def test_publish_records_the_hash_once(schemes: Path) -> None:
    _new_version(schemes, "bienestar", "1.0.0", "1.1.0")
    output = _rules(schemes, "publish", "bienestar", "1.1.0")
    digest = read_register(schemes)["bienestar"]["1.1.0"]
    assert output.startswith("Published bienestar 1.1.0 (18 case(s) passed): ")
    assert output.strip().endswith(digest)
    again = _rules(schemes, "publish", "bienestar", "1.1.0")
    assert again.strip() == f"bienestar 1.1.0 was already published as {digest}."
    assert read_register(schemes)["bienestar"] == {
        "1.0.0": read_register(SCHEMES_DIR)["bienestar"]["1.0.0"],
        "1.1.0": digest,
    }


def test_publish_refuses_a_changed_published_version(schemes: Path) -> None:
    before = (schemes / "published.yaml").read_bytes()
    parameters = schemes / "bienestar" / "1.0.0" / "parameters.yaml"
    parameters.write_text(
        parameters.read_text(encoding="utf-8").replace("value: 6400", "value: 6500"),
        encoding="utf-8",
    )
    _, error = _failing(schemes, "publish", "bienestar", "1.0.0")
    assert "Published package bienestar 1.0.0 was modified" in error
    assert (schemes / "published.yaml").read_bytes() == before


def test_publish_refuses_a_version_whose_cases_fail(schemes: Path) -> None:
    draft = _new_version(schemes, "bienestar", "1.0.0", "1.1.0")
    parameters = draft / "parameters.yaml"
    parameters.write_text(
        parameters.read_text(encoding="utf-8").replace("value: 6400", "value: 6500"),
        encoding="utf-8",
    )
    output, error = _failing(schemes, "publish", "bienestar", "1.1.0")
    assert "pension_bienestar: expected 6400, got 6500" in output
    assert error == "bienestar 1.1.0 is not published: its test cases fail."
    assert "1.1.0" not in read_register(schemes)["bienestar"]


def test_publish_refuses_a_version_without_cases(schemes: Path) -> None:
    draft = _new_version(schemes, "bienestar", "1.0.0", "1.1.0")
    shutil.rmtree(draft / "tests")
    _, error = _failing(schemes, "publish", "bienestar", "1.1.0")
    assert error.startswith("bienestar 1.1.0 has no test cases")
