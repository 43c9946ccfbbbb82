"""Scoring one pair in Python equals Splink's match weight, with and without term-frequency
adjustments; the breakdown, identifier conflicts and the default model."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from pilar.core.identifiers import curp_complete, nss_check_digit
from pilar.linkage.engine import DuckDBEngine
from pilar.linkage.features import record_features
from pilar.linkage.model import DEFAULT_MODEL, PERSON_SPEC
from pilar.linkage.scoring import Score, probability_of_weight, score_pair
from pilar.linkage.tests.engine_data import trained_population

ENGINE = DuckDBEngine(memory_limit="1GB", threads=2)


def _assert_python_equals_splink(model: Any) -> int:
    features, _truth, _trained = trained_population()
    rows = {row["unique_id"]: row for row in features.iter_rows(named=True)}
    predictions = ENGINE.predict_dedupe(features, model, min_weight=-1000)
    worst = 0.0
    for row in predictions.iter_rows(named=True):
        score = score_pair(model, rows[row["unique_id_l"]], rows[row["unique_id_r"]])
        worst = max(worst, abs(score.weight - row["match_weight"]))
        assert score.probability == pytest.approx(row["match_probability"], abs=1e-9)
        gammas = [item["gamma"] for item in score.breakdown]
        assert gammas == [row[item.gamma_column] for item in PERSON_SPEC.comparisons]
    assert worst < 1e-6
    return predictions.height


def test_score_equals_splink_with_term_frequencies() -> None:
    _features, _truth, model = trained_population()
    assert model.term_frequencies["given_std"].values
    assert _assert_python_equals_splink(model) > 200


def test_score_equals_splink_without_term_frequencies() -> None:
    _features, _truth, model = trained_population()
    plain = dataclasses.replace(model, term_frequencies={})
    assert _assert_python_equals_splink(plain) > 200


def test_term_frequency_moves_the_exact_given_name_weight() -> None:
    _features, _truth, model = trained_population()
    table = model.term_frequencies["given_std"]
    common = max(table.values, key=lambda value: table.values[value])
    base = {"given_std": common}
    rare = {"given_std": "XOCHIQUETZAL"}
    common_score = score_pair(model, base, base).breakdown[0]
    rare_score = score_pair(model, rare, rare).breakdown[0]
    assert common_score["level"] == rare_score["level"] == "exact"
    # A shared rare name is stronger evidence than a shared common one.
    assert rare_score["weight"] > common_score["weight"]
    m, u = model.parameters["given"][7]
    assert common_score["weight"] == pytest.approx(
        math.log2(m / u) + math.log2(u) - math.log2(table.values[common])
    )


def _person(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "unique_id": 1,
        "given_names": "José Luis",
        "paternal_surname": "Hernández",
        "maternal_surname": "Ortiz",
        "sex": "M",
        "birth_date": "1975-11-23",
        "birth_state": "JC",
        "curp": None,
        "nss": None,
    }
    base.update(values)
    return record_features(base)


def _curp_of(features: dict[str, Any], homonymy: int = 0) -> str:
    import datetime

    return curp_complete(
        features["derived_stem"], datetime.date.fromisoformat(features["birth_date"]), homonymy
    )


def test_breakdown_lists_every_comparison() -> None:
    left = _person()
    right = _person(given_names="Pepe Luis", maternal_surname="", birth_state="")
    score = score_pair(DEFAULT_MODEL, left, right)
    assert isinstance(score, Score)
    assert [item["comparison"] for item in score.breakdown] == [
        item.name for item in PERSON_SPEC.comparisons
    ]
    by_name = {item["comparison"]: item for item in score.breakdown}
    assert by_name["surnames"]["level"] == "one_missing"
    assert by_name["surnames"]["left"] == "HERNANDEZ ORTIZ"
    assert by_name["surnames"]["right"] == "HERNANDEZ"
    assert by_name["birth_state"]["level"] == "null"
    assert by_name["birth_state"]["weight"] == 0.0
    assert by_name["birth_state"]["bayes_factor"] == 1.0
    assert by_name["nss"]["level"] == "null"
    expected = DEFAULT_MODEL.prior_weight + sum(item["weight"] for item in score.breakdown)
    assert score.weight == pytest.approx(expected)
    assert score.probability == pytest.approx(probability_of_weight(score.weight))
    assert score.identifier_conflict is False


def test_identifier_conflicts() -> None:
    left = _person()
    left_curp = _curp_of(left)
    other = _person(birth_date="1975-11-24")
    other_curp = _curp_of(other)
    with_curp = _person(curp=left_curp)
    conflicting = _person(curp=other_curp)
    assert with_curp["curp"]
    assert conflicting["curp"]
    assert score_pair(DEFAULT_MODEL, with_curp, conflicting).identifier_conflict is True
    # A CURP on one side only: nothing to conflict with.
    assert score_pair(DEFAULT_MODEL, with_curp, _person()).identifier_conflict is False
    # The same stem with another homonymy character is not the "else" level.
    homonym = _person(curp=_curp_of(left, homonymy=1))
    assert score_pair(DEFAULT_MODEL, with_curp, homonym).identifier_conflict is False

    nss_a = "0123456789" + nss_check_digit("0123456789")
    nss_b = "1123456789" + nss_check_digit("1123456789")
    assert score_pair(DEFAULT_MODEL, _person(nss=nss_a), _person(nss=nss_b)).identifier_conflict
    assert not score_pair(DEFAULT_MODEL, _person(nss=nss_a), _person(nss=nss_a)).identifier_conflict


def test_default_model_separates_a_duplicate_from_a_namesake() -> None:
    left = _person()
    duplicate = _person(given_names="Jose Luis", maternal_surname="Ortis", birth_date="1975-11-25")
    namesake = _person(maternal_surname="Ramírez", birth_date="1981-02-14", birth_state="NL")
    same = score_pair(DEFAULT_MODEL, left, _person())
    likely = score_pair(DEFAULT_MODEL, left, duplicate)
    unlikely = score_pair(DEFAULT_MODEL, left, namesake)
    assert same.weight >= DEFAULT_MODEL.auto_link_weight
    assert likely.weight >= DEFAULT_MODEL.review_weight
    assert unlikely.weight < DEFAULT_MODEL.review_weight
    assert same.weight > likely.weight > unlikely.weight


def test_probability_of_weight_is_stable() -> None:
    assert probability_of_weight(0) == 0.5
    assert probability_of_weight(2000) == 1.0
    assert probability_of_weight(-2000) == 0.0
    assert probability_of_weight(math.log2(99)) == pytest.approx(0.99)
