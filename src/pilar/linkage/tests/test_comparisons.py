"""The comparisons: the string metrics against DuckDB's, the levels on hand-made pairs, and the
differential test — Splink's gamma equals the Python level for every comparison of thousands
of generated pairs aimed at the levels' edges."""

from __future__ import annotations

import datetime
import itertools
import os
import random
from collections import Counter
from typing import Any

import duckdb
import polars as pl
import pytest
from splink import DuckDBAPI, Linker

from pilar.core.identifiers import curp_complete, nss_check_digit
from pilar.linkage.comparisons import (
    PERSON_COMPARISONS,
    Comparison,
    Dialect,
    columns_used,
    damerau_levenshtein,
    jaro,
    jaro_winkler,
    levenshtein,
)
from pilar.linkage.features import FEATURE_COLUMNS, record_features
from pilar.linkage.tests.engine_data import boundary_pairs, population

COMPARISONS = {item.name: item for item in PERSON_COMPARISONS}


def _record(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "unique_id": 1,
        "given_names": "María Guadalupe",
        "paternal_surname": "López",
        "maternal_surname": "Cruz",
        "sex": "F",
        "birth_date": "1980-03-04",
        "birth_state": "DF",
        "curp": None,
        "nss": None,
    }
    base.update(values)
    return record_features(base)


def _level(name: str, left: dict[str, Any], right: dict[str, Any]) -> str:
    item = COMPARISONS[name]
    return item.levels[item.level_index(left, right)].key


# --- string metrics --------------------------------------------------------------------------


def test_metrics_known_values() -> None:
    assert jaro_winkler("MARTHA", "MARHTA") == pytest.approx(0.961111, abs=1e-6)
    assert jaro("AB", "BA") == 0.0
    assert jaro_winkler("", "") == 0.0
    assert levenshtein("KITTEN", "SITTING") == 3
    # Unrestricted Damerau-Levenshtein, as DuckDB: the restricted variant would say 3.
    assert damerau_levenshtein("CA", "ABC") == 2
    assert damerau_levenshtein("19800304", "19800340") == 1


def test_metrics_equal_duckdb_to_the_last_bit() -> None:
    rng = random.Random(3)
    pairs = []
    for _ in range(3000):
        alphabet = rng.choice(("AB", "ABCDE", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        first = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        second = list(first)
        for _ in range(rng.randint(0, 3)):
            if second and rng.random() < 0.5:
                second[rng.randrange(len(second))] = rng.choice(alphabet)
            else:
                second.insert(rng.randrange(len(second) + 1), rng.choice(alphabet))
        pairs.append((first, "".join(second)))
    connection = duckdb.connect()
    connection.execute("create table p (a varchar, b varchar)")
    connection.executemany("insert into p values (?, ?)", pairs)
    rows = connection.sql(
        "select a, b, jaro_winkler_similarity(a, b), levenshtein(a, b), "
        "damerau_levenshtein(a, b) from p"
    ).fetchall()
    mismatches = [
        (a, b)
        for a, b, similarity, distance, transposition in rows
        if jaro_winkler(a, b) != similarity
        or levenshtein(a, b) != distance
        or damerau_levenshtein(a, b) != transposition
    ]
    assert len(rows) == 3000
    assert mismatches == []


# --- levels on hand-made pairs ---------------------------------------------------------------


def test_given_name_levels() -> None:
    left = _record()
    assert _level("given", left, _record()) == "exact"
    assert _level("given", _record(given_names="Pepe"), _record(given_names="José")) == "canonical"
    assert _level("given", left, _record(given_names="Guadalupe")) == "main"
    assert _level("given", left, _record(given_names="María Elena")) == "token"
    assert _level("given", _record(given_names="Margarita"), _record(given_names="Margarta")) == (
        "jaro_winkler"
    )
    assert _level("given", _record(given_names="Carlos"), _record(given_names="Caelos")) == (
        "one_edit"
    )
    assert _level("given", left, _record(given_names="Juana")) == "else"
    assert _level("given", left, _record(given_names="")) == "null"


def test_surname_levels() -> None:
    left = _record()
    assert _level("surnames", left, _record()) == "exact"
    swapped = _record(paternal_surname="Cruz", maternal_surname="López")
    assert _level("surnames", left, swapped) == "swapped"
    assert _level("surnames", left, _record(maternal_surname="")) == "one_missing"
    assert _level("surnames", left, _record(paternal_surname="Lopes", maternal_surname="")) == (
        "one_missing_similar"
    )
    long_names = _record(paternal_surname="González", maternal_surname="Martínez")
    typed = _record(paternal_surname="Gonsalez", maternal_surname="Martinex")
    assert _level("surnames", long_names, typed) == "jaro_winkler_both"
    assert _level("surnames", left, _record(maternal_surname="Reyes")) == "paternal_only"
    assert _level(
        "surnames", left, _record(paternal_surname="Ramos", maternal_surname="Pérez")
    ) == ("else")
    assert _level("surnames", left, _record(paternal_surname="", maternal_surname="")) == "null"


def test_birth_date_levels() -> None:
    left = _record()
    assert _level("birth_date", left, _record()) == "exact"
    assert _level("birth_date", left, _record(birth_date="1980-04-03")) == "swapped"
    assert _level("birth_date", left, _record(birth_date="1980-03-07")) == "one_edit"
    assert _level("birth_date", left, _record(birth_date="1980-03-29")) == "close"
    assert _level("birth_date", left, _record(birth_date="1980-02-26")) == "close"
    assert _level("birth_date", left, _record(birth_date="1980-09-30")) == "year"
    assert _level("birth_date", left, _record(birth_date="1975-09-30")) == "else"
    assert _level("birth_date", left, _record(birth_date=None)) == "null"


def _curp(stem: str, homonymy: int = 0) -> str:
    return curp_complete(stem, datetime.date(1900 + int(stem[4:6]), 1, 1), homonymy)


def test_curp_levels_and_conflict() -> None:
    curp = _curp(_record()["derived_stem"])
    with_curp = _record(curp=curp)
    without = _record()
    assert with_curp["curp"] == curp
    assert _level("curp", with_curp, _record(curp=curp)) == "exact"
    assert _level("curp", with_curp, _record(curp=_curp(curp[:16], homonymy=1))) == "stem"
    # The record without a CURP has the same data, so its derived stem is the CURP's stem.
    assert _level("curp", with_curp, without) == "derived_stem"
    assert _level("curp", with_curp, _record(birth_date="1980-03-05")) == "close"
    # Two real CURPs one character apart are a conflict, never "close".
    other = _record(curp=_curp(_record(birth_date="1980-03-05")["derived_stem"]))
    assert other["curp"] is not None
    assert _level("curp", with_curp, other) == "else"
    assert _level("curp", without, _record()) == "null"


def test_identifier_and_simple_levels() -> None:
    nss = "1234567890" + nss_check_digit("1234567890")
    other_nss = "9876543210" + nss_check_digit("9876543210")
    left = _record(nss=nss)
    assert left["nss"] == nss
    assert _level("nss", left, _record(nss=nss)) == "exact"
    assert _level("nss", left, _record(nss=other_nss)) == "else"
    assert _level("nss", left, _record()) == "null"
    assert _level("sex", left, _record(sex="M")) == "else"
    assert _level("birth_state", left, _record(birth_state="")) == "null"


def test_spark_sql_uses_the_jar_functions() -> None:
    surnames = COMPARISONS["surnames"].splink_dict("spark")
    given = COMPARISONS["given"].splink_dict("spark")
    conditions = " ".join(
        level["sql_condition"]
        for level in surnames["comparison_levels"] + given["comparison_levels"]
    )
    # Pilar's own function (engine.SparkEngine registers it), not the jar's jaro_winkler.
    assert "pilar_jaro_winkler(paternal_std_l, paternal_std_r) >= 0.92" in conditions
    assert "jaro_winkler_similarity" not in conditions
    assert "arrays_overlap(split(given_canon_l, ' '), split(given_canon_r, ' '))" in conditions
    assert "damerau_levenshtein(given_main_l, given_main_r) <= 1" in conditions


def test_columns_used_are_feature_columns() -> None:
    assert set(columns_used(PERSON_COMPARISONS)) <= set(FEATURE_COLUMNS)
    assert "surnames_sorted" in columns_used(PERSON_COMPARISONS)


# --- the differential test -------------------------------------------------------------------

_SCHEMA = {
    column: (pl.Int64 if column in ("unique_id", "birth_year") else pl.String)
    for column in FEATURE_COLUMNS
}


def splink_gammas(
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
    comparisons: tuple[Comparison, ...],
    *,
    api: Any = None,
    dialect: Dialect = "duckdb",
) -> pl.DataFrame:
    """Splink's comparison vector of each pair, by pair number (DuckDB unless ``api`` is
    another Splink database API)."""
    left = pl.DataFrame(
        [{**first, "unique_id": index} for index, (first, _second) in enumerate(pairs)],
        schema=_SCHEMA,
    )
    right = pl.DataFrame(
        [{**second, "unique_id": index} for index, (_first, second) in enumerate(pairs)],
        schema=_SCHEMA,
    )
    api = api or DuckDBAPI()
    settings = {
        "link_type": "link_only",
        "comparisons": [item.splink_dict(dialect) for item in comparisons],
        "blocking_rules_to_generate_predictions": [{"blocking_rule": "l.unique_id = r.unique_id"}],
        "retain_matching_columns": True,
    }
    linker = Linker(
        [api.register(left.to_arrow()), api.register(right.to_arrow())], settings, log_level=None
    )
    predictions = linker.inference.predict(warning_mode="never")
    gammas = [item.gamma_column for item in comparisons]
    frame = pl.DataFrame(pl.from_arrow(predictions.as_pyarrow_table()))
    # Each pair is (record n of the left table, record n of the right): the same number.
    assert (frame["unique_id_l"] == frame["unique_id_r"]).all()
    return frame.select(pl.col("unique_id_l").alias("pair"), *gammas).sort("pair")


def _assert_levels_agree(
    pairs: list[tuple[dict[str, Any], dict[str, Any]]], splink: pl.DataFrame
) -> Counter[tuple[str, int]]:
    assert splink.height == len(pairs)
    seen: Counter[tuple[str, int]] = Counter()
    mismatches = []
    for row in splink.iter_rows(named=True):
        left, right = pairs[row["pair"]]
        for item in PERSON_COMPARISONS:
            python = item.gamma(left, right)
            seen[(item.name, python)] += 1
            if python != row[item.gamma_column]:
                mismatches.append((row["pair"], item.name, python, row[item.gamma_column]))
    assert mismatches == []
    return seen


def test_splink_and_python_levels_agree_on_every_pair() -> None:
    pairs = boundary_pairs(2400)
    # Realistic pairs too: a population's true duplicates and random neighbours.
    features, truth = population(400, 120, seed=5)
    rows = {row["unique_id"]: row for row in features.iter_rows(named=True)}
    pairs += [(rows[a], rows[b]) for a, b in sorted(truth)]
    ids = sorted(rows)
    pairs += [(rows[a], rows[b]) for a, b in itertools.pairwise(ids)]
    assert len(pairs) >= 2000

    seen = _assert_levels_agree(pairs, splink_gammas(pairs, PERSON_COMPARISONS))
    # The sample reaches every level of every comparison (else the agreement proves little).
    missing = [
        (item.name, level.key)
        for item in PERSON_COMPARISONS
        for level, gamma in zip(item.levels, item.gammas, strict=True)
        if seen[(item.name, gamma)] == 0
    ]
    assert missing == []


@pytest.mark.skipif(
    os.environ.get("PILAR_SPARK_TESTS") != "1",
    reason="starts a local Spark session; set PILAR_SPARK_TESTS=1",
)
def test_spark_levels_agree_with_python() -> None:
    from pilar.linkage.engine import SparkEngine, local_spark_session

    pairs = boundary_pairs(2400)
    engine = SparkEngine(local_spark_session(cores=2, memory="2g"))
    try:
        # The engine's API: Splink's functions from the jar plus Pilar's Jaro-Winkler.
        splink = splink_gammas(pairs, PERSON_COMPARISONS, api=engine._new_api(), dialect="spark")
        _assert_levels_agree(pairs, splink)
    finally:
        engine.spark.stop()
