"""Errors: stable codes, parameters, location, article and a message in Spanish and English."""

from __future__ import annotations

import json

import pytest

from pilar.rules import errors
from pilar.rules.errors import RulesError

SAMPLE_PARAMS = {
    "problem": "p",
    "name": "n",
    "version": "1.0.0",
    "context": "",
    "expression": "a + b",
    "column": 3,
    "cycle": "a → b → a",
    "table": "t",
    "first_row": 1,
    "first_line": 2,
    "second_row": 3,
    "second_line": 4,
    "what": "variable x",
    "expected": "e" * 64,
    "actual": "a" * 64,
    "variable": "v",
    "references": "art. 1, art. 2",
    "date": "2026-01-01",
    "inputs": [{"name": "edad", "label": {"es": "Edad", "en": "Age"}}],
    "label": {"es": "Edad", "en": "Age"},
    "got": "x",
}
CODED = [
    cls
    for cls in vars(errors).values()
    if isinstance(cls, type)
    and issubclass(cls, errors._CodedError)
    and cls is not errors._CodedError
]


def test_every_spec_code_has_its_own_class() -> None:
    codes = {cls.code for cls in CODED}
    assert {
        "schema_error",
        "unknown_name",
        "type_error",
        "cycle",
        "table_overlap",
        "missing_reference",
        "package_integrity",
        "conflict",
        "no_value",
        "missing_input",
        "input_type",
    } <= codes


@pytest.mark.parametrize("cls", CODED, ids=lambda cls: cls.code)
@pytest.mark.parametrize("language", ["es", "en"])
def test_every_code_has_a_complete_message_in_both_languages(
    cls: type[errors._CodedError], language: str
) -> None:
    error = cls(SAMPLE_PARAMS, location="x/1.0.0/variables.yaml:3", reference="art. 9")
    message = error.message(language)
    assert message.startswith("x/1.0.0/variables.yaml:3: ")
    assert message.endswith("(art. 9)")
    assert "{" not in message
    assert error.message("es") != error.message("en")


def test_the_yaml_and_syntax_variants_keep_their_class() -> None:
    assert errors.SchemeFileError({"problem": "p"}, yaml=True).code == "yaml_error"
    assert (
        errors.FormulaTypeError({"expression": "a", "column": 1, "problem": "p"}, syntax=True).code
        == "syntax_error"
    )


def test_a_generic_error_and_its_dictionary() -> None:
    error = RulesError("no_value", {"name": "uma", "date": "2026-01-01"}, "p.yaml:3", "LUMA art. 4")
    assert str(error) == "p.yaml:3: No value for uma on 2026-01-01. (LUMA art. 4)"
    data = json.loads(json.dumps(error.to_dict()))
    assert data == {
        "code": "no_value",
        "params": {"name": "uma", "date": "2026-01-01"},
        "location": "p.yaml:3",
        "reference": "LUMA art. 4",
        "message": {
            "es": "p.yaml:3: Sin valor para uma en 2026-01-01. (LUMA art. 4)",
            "en": "p.yaml:3: No value for uma on 2026-01-01. (LUMA art. 4)",
        },
    }
    assert error.row_error == "no_value:uma"


def test_a_missing_placeholder_does_not_hide_the_error() -> None:
    assert "{name}" in RulesError("no_value", {}).message("en")
