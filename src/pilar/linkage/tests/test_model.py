"""The specification and the model file: envelope, round trip, and every refusal of
``load_model`` with its precise code."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from typing import Any

import pytest

from pilar.linkage.features import FEATURE_VERSION
from pilar.linkage.model import (
    DEFAULT_MODEL,
    M_FLOOR,
    MODEL_FORMAT,
    PERSON_SPEC,
    Key,
    ModelFileError,
    TermFrequencies,
    complete_parameters,
    load_model,
    model_document,
    model_summary,
    rule,
    term_frequencies_from_counts,
    thresholds_of,
)


def _trained_like() -> Any:
    """The default model with frequency tables, as a trained one carries them."""
    return dataclasses.replace(
        DEFAULT_MODEL,
        term_frequencies={
            "given_std": TermFrequencies(floor=0.0001, values={"MARIA": 0.02, "JOSE": 0.015}),
            "surnames_sorted": TermFrequencies(floor=0.00002, values={"GARCIA LOPEZ": 0.001}),
        },
        auto_link_weight=11.5,
        review_weight=-1.0,
        training={"records": 1000, "seed": 7},
    )


def _document() -> dict[str, Any]:
    return _trained_like().to_document()


def _refusal(source: Any) -> ModelFileError:
    with pytest.raises(ModelFileError) as caught:
        load_model(source)
    return caught.value


def test_blocking_rules_render_sql() -> None:
    assert rule("birth_date", "paternal_phon").sql() == (
        "l.birth_date = r.birth_date and l.paternal_phon = r.paternal_phon"
    )
    month = rule("given_main", Key("birth_date", 7))
    assert month.sql() == (
        "l.given_main = r.given_main and substr(l.birth_date, 1, 7) = substr(r.birth_date, 1, 7)"
    )
    assert month.key == "given_main+birth_date[:7]"
    assert month.columns == ("given_main", "birth_date")
    keys = [item.key for item in PERSON_SPEC.blocking_rules]
    assert keys[:3] == ["derived_stem", "curp", "nss"]
    assert len(set(keys)) == len(keys)


def test_training_rules_leave_every_comparison_free_once() -> None:
    """Expectation maximisation cannot estimate the m of a comparison that reads a column
    the training rule blocks on; each comparison must be free in one session."""
    from pilar.linkage.comparisons import columns_used

    for item in PERSON_SPEC.comparisons:
        reads = set(columns_used((item,)))
        free_in = [
            training.key
            for training in PERSON_SPEC.training_rules
            if not reads & set(training.columns)
        ]
        assert free_in, item.name


def test_model_file_round_trip() -> None:
    trained = _trained_like()
    text = trained.to_json()
    loaded = load_model(text)
    assert loaded.parameters == trained.parameters
    assert loaded.probability_two_random_records_match == (
        trained.probability_two_random_records_match
    )
    assert loaded.term_frequencies == trained.term_frequencies
    assert thresholds_of(loaded) == (11.5, -1.0)
    assert loaded.training == {"records": 1000, "seed": 7}
    assert loaded.sha256 == trained.sha256
    assert len(loaded.sha256) == 64
    # From the stored dict as well (what LinkageModel.definition holds), and bytes.
    assert load_model(model_document(trained)).sha256 == trained.sha256
    assert load_model(text.encode()).sha256 == trained.sha256


def test_envelope_fields() -> None:
    document = _document()
    assert document["pilar_model_format"] == MODEL_FORMAT
    assert document["feature_version"] == FEATURE_VERSION
    assert document["name"] == "persons"
    assert document["trained_at"].endswith("+00:00")
    splink_settings = document["splink"]
    assert [item["output_column_name"] for item in splink_settings["comparisons"]] == [
        "given",
        "surnames",
        "birth_date",
        "curp",
        "nss",
        "sex",
        "birth_state",
    ]
    exact_given = splink_settings["comparisons"][0]["comparison_levels"][1]
    assert exact_given["tf_adjustment_column"] == "given_std"
    assert exact_given["tf_minimum_u_value"] == 0.0001
    summary = model_summary(_trained_like())
    assert summary["term_frequencies"]["given_std"] == {"floor": 0.0001, "values": 2}
    assert summary["comparisons"][0]["levels"][1]["key"] == "exact"


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("{not json", "not_json"),
        (b"\xff\xfe", "not_json"),
        ("[1, 2]", "not_a_model"),
        ('{"name": "persons"}', "not_a_model"),
    ],
)
def test_refuses_what_is_not_a_model(source: Any, code: str) -> None:
    assert _refusal(source).code == code


def test_refuses_other_versions_saying_which() -> None:
    document = _document()
    document["pilar_model_format"] = 2
    error = _refusal(document)
    assert (error.code, error.params) == ("format_version", {"found": 2, "expected": 1})

    document = _document()
    document["feature_version"] = FEATURE_VERSION + 1
    error = _refusal(document)
    assert error.code == "feature_version"
    assert error.params == {"found": FEATURE_VERSION + 1, "expected": FEATURE_VERSION}

    document = _document()
    document["splink_version"] = "4.0.8"
    error = _refusal(document)
    assert error.code == "splink_version"
    assert error.params["found"] == "4.0.8"

    # Another minor version of the same major loads.
    document = _document()
    document["splink_version"] = "5.9.1"
    assert load_model(document).splink_version == "5.9.1"


def test_refuses_missing_comparisons_and_broken_parameters() -> None:
    document = _document()
    document["splink"]["comparisons"] = [
        item for item in document["splink"]["comparisons"] if item["output_column_name"] != "nss"
    ]
    error = _refusal(document)
    assert (error.code, error.params) == ("missing_comparisons", {"missing": ["nss"]})

    document = _document()
    document["splink"]["comparisons"][1]["comparison_levels"].pop(2)
    error = _refusal(document)
    assert error.code == "comparison_levels"
    assert error.params["comparison"] == "surnames"

    document = _document()
    document["splink"]["comparisons"][0]["comparison_levels"][1]["m_probability"] = "high"
    error = _refusal(document)
    assert (error.code, error.params) == ("invalid_parameters", {"where": "given.exact"})

    document = _document()
    document["splink"]["probability_two_random_records_match"] = 0
    assert _refusal(document).code == "invalid_parameters"

    document = _document()
    document["summary"]["term_frequencies"]["given_std"]["floor"] = -1
    assert _refusal(document).code == "invalid_parameters"


def test_load_does_not_change_the_document() -> None:
    document = _document()
    before = copy.deepcopy(document)
    load_model(document)
    assert document == before


def test_complete_parameters_fills_and_floors() -> None:
    estimated: dict[str, dict[int, tuple[float | None, float | None]]] = {
        item.name: {
            gamma: (0.5, 0.5)
            for level, gamma in zip(item.levels, item.gammas, strict=True)
            if not level.is_null
        }
        for item in PERSON_SPEC.comparisons
    }
    estimated["nss"][1] = (None, None)  # the exact level: never seen
    estimated["sex"][0] = (1e-19, 0.5)  # a level EM drove to nothing
    completed, filled = complete_parameters(PERSON_SPEC, estimated, u_pairs=1e6)
    assert filled == ["nss.exact.m", "nss.exact.u"]
    # m from the spec's fallback (the default model's), u as half a pair in a million.
    assert completed["nss"][1] == (0.70, 5e-7)
    assert completed["sex"][0] == (M_FLOOR, 0.5)


def test_default_model_is_a_distribution_per_comparison() -> None:
    for item in PERSON_SPEC.comparisons:
        values = DEFAULT_MODEL.parameters[item.name]
        assert set(values) == {
            gamma
            for level, gamma in zip(item.levels, item.gammas, strict=True)
            if not level.is_null
        }
        assert math.isclose(sum(m for m, _u in values.values()), 1.0, abs_tol=1e-9), item.name
        assert math.isclose(sum(u for _m, u in values.values()), 1.0, abs_tol=1e-9), item.name
    # The default model loads back from its own file.
    assert load_model(DEFAULT_MODEL.to_json()).parameters == DEFAULT_MODEL.parameters


def test_term_frequency_table() -> None:
    table = term_frequencies_from_counts({"MARIA": 50, "JOSE": 30, "XOCHITL": 1}, total=100)
    assert dict(table.values) == {"MARIA": 0.5, "JOSE": 0.3}
    assert table.floor == 0.3
    assert table.of("XOCHITL") == 0.3
    assert table.of(None) is None
    small = term_frequencies_from_counts({"A": 5, "B": 4, "C": 3}, total=12, size=2)
    assert list(small.values) == ["A", "B"]
    assert small.floor == pytest.approx(4 / 12)
    assert term_frequencies_from_counts({}, total=0).floor == 1.0


def test_spark_settings_use_spark_functions() -> None:
    settings = DEFAULT_MODEL.splink_settings("spark")
    text = json.dumps(settings)
    assert settings["sql_dialect"] == "spark"
    assert "pilar_jaro_winkler(" in text
    assert "jaro_winkler_similarity" not in text
