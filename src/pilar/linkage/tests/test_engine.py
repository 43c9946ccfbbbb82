"""The engine on DuckDB end to end (blocking analysis, training, deduplication, list linkage,
clusters) on a seeded population with known duplicates, its refusals, and — with
``PILAR_SPARK_TESTS=1`` — the same model on a local Spark session."""

from __future__ import annotations

import os

import polars as pl
import pytest

from pilar.linkage.engine import (
    DuckDBEngine,
    EngineError,
    SparkEngine,
    engine_for,
    required_columns,
)
from pilar.linkage.evaluation import pair_metrics, pairs_from_clusters, pairs_from_frame
from pilar.linkage.model import PERSON_SPEC, load_model
from pilar.linkage.tests.engine_data import trained_population

ENGINE = DuckDBEngine(memory_limit="1GB", threads=2)


def test_blocking_analysis_counts_pairs_and_completeness() -> None:
    features, truth, _model = trained_population()
    counts = ENGINE.blocking_analysis(features, truth_pairs=truth)
    assert [count.rule for count in counts] == [item.key for item in PERSON_SPEC.blocking_rules]
    cumulative = 0
    for count in counts:
        cumulative += count.pairs
        assert count.cumulative_pairs == cumulative
        assert count.true_pairs == len(truth)
    completeness = [count.pair_completeness or 0.0 for count in counts]
    assert completeness == sorted(completeness)
    assert counts[-1].pair_completeness is not None
    assert counts[-1].pair_completeness >= 0.95
    # Without the truth there is no completeness, only counts.
    plain = ENGINE.blocking_analysis(features)
    assert [count.pairs for count in plain] == [count.pairs for count in counts]
    assert plain[0].pair_completeness is None
    assert plain[0].as_dict()["rule"] == "derived_stem"


def test_training_estimates_every_level() -> None:
    _features, _truth, model = trained_population()
    for item in PERSON_SPEC.comparisons:
        for level, gamma in zip(item.levels, item.gammas, strict=True):
            if level.is_null:
                continue
            m, u = model.parameters[item.name][gamma]
            assert 0 < m <= 1, (item.name, level.key)
            assert 0 < u <= 1, (item.name, level.key)
    assert 0 < model.probability_two_random_records_match < 0.01
    # Agreeing on a birth date is evidence for, disagreeing on everything is against.
    assert model.level("birth_date", 5).weight > 5
    assert model.level("surnames", 0).weight < 0
    assert model.training["records"] == 1500
    # Every session is recorded, also one that Splink refused (and training went on without).
    assert [session["rule"] for session in model.training["em_sessions"]] == [
        item.key for item in PERSON_SPEC.training_rules
    ]
    assert set(model.term_frequencies) == {"given_std", "surnames_sorted"}
    # The trained model survives its own file.
    assert load_model(model.to_json()).sha256 == model.sha256


def test_deduplication_finds_the_duplicates() -> None:
    features, truth, model = trained_population()
    predictions = ENGINE.predict_dedupe(features, model, min_weight=-10)
    assert predictions.columns[:4] == [
        "unique_id_l",
        "unique_id_r",
        "match_weight",
        "match_probability",
    ]
    assert [column for column in predictions.columns if column.startswith("gamma_")] == [
        item.gamma_column for item in PERSON_SPEC.comparisons
    ]
    assert (predictions["unique_id_l"] < predictions["unique_id_r"]).all()
    assert float(predictions["match_weight"].min()) >= -10  # type: ignore[arg-type]  # a float column
    weights = predictions["match_weight"].to_list()
    assert weights == sorted(weights, reverse=True)
    metrics = pair_metrics(pairs_from_frame(predictions, threshold_weight=0), truth)
    # Floors for this generated population (measured: precision 0.985, recall 0.976).
    assert metrics.precision >= 0.95
    assert metrics.recall >= 0.95

    clusters = ENGINE.cluster(predictions, threshold_weight=0, ids=features["unique_id"])
    assert clusters.height == features.height
    assert set(clusters.columns) == {"unique_id", "cluster_id"}
    # A cluster is named after its smallest member.
    assert (clusters["cluster_id"] <= clusters["unique_id"]).all()
    cluster_metrics = pair_metrics(pairs_from_clusters(clusters), truth)
    assert cluster_metrics.recall >= metrics.recall
    assert cluster_metrics.f1 >= 0.95


def test_cluster_of_hand_made_pairs() -> None:
    pairs = pl.DataFrame(
        {
            "unique_id_l": [1, 2, 5, 7],
            "unique_id_r": [2, 3, 6, 8],
            "match_weight": [10.0, 4.0, 12.0, -3.0],
        }
    )
    clusters = ENGINE.cluster(pairs, threshold_weight=5, ids=range(1, 10))
    labels = dict(zip(clusters["unique_id"], clusters["cluster_id"], strict=True))
    assert labels == {1: 1, 2: 1, 3: 3, 4: 4, 5: 5, 6: 5, 7: 7, 8: 8, 9: 9}


def test_list_linkage_keeps_the_list_on_the_left() -> None:
    features, truth, model = trained_population()
    originals = features.filter(pl.col("unique_id") <= 1300)
    duplicates = features.filter(pl.col("unique_id") > 1300)
    predictions = ENGINE.predict_link(duplicates, originals, model, min_weight=0)
    assert predictions.height > 0
    assert (predictions["unique_id_l"] > 1300).all()
    assert (predictions["unique_id_r"] <= 1300).all()
    linked = {(right, left) for left, right in pairs_from_frame(predictions, ordered=True)}
    across = {(a, b) for a, b in truth if a <= 1300 < b}
    metrics = pair_metrics(linked, across, ordered=True)
    assert metrics.recall >= 0.95
    assert metrics.precision >= 0.95
    # Blocking analysis of a linkage reports (left, right) pairs.
    counts = ENGINE.blocking_analysis(
        [duplicates, originals], truth_pairs=[(b, a) for a, b in across]
    )
    assert counts[-1].pair_completeness is not None
    assert counts[-1].pair_completeness >= 0.95


def test_a_link_model_trains_across_two_frames() -> None:
    features, _truth, _model = trained_population()
    originals = features.filter(pl.col("unique_id") <= 1300)
    duplicates = features.filter(pl.col("unique_id") > 1300)
    model = ENGINE.train([duplicates, originals], link_type="link_only", max_pairs=1e5)
    assert model.training["link_type"] == "link_only"
    assert model.training["records"] == 1500
    # Every session is recorded, also one that Splink refused (and training went on without).
    assert [session["rule"] for session in model.training["em_sessions"]] == [
        item.key for item in PERSON_SPEC.training_rules
    ]
    predictions = ENGINE.predict_link(duplicates, originals, model, min_weight=0)
    assert predictions.height > 150


def test_empty_sides_and_refusals() -> None:
    features, _truth, model = trained_population()
    empty = features.head(0)
    assert ENGINE.predict_link(empty, features, model, min_weight=0).height == 0
    assert ENGINE.predict_dedupe(features.head(1), model, min_weight=0).height == 0

    with pytest.raises(EngineError) as caught:
        ENGINE.predict_dedupe(features.drop("derived_stem"), model, min_weight=0)
    assert caught.value.code == "missing_columns"
    assert caught.value.params == {"missing": ["derived_stem"]}

    doubled = pl.concat([features.head(3), features.head(1)])
    with pytest.raises(EngineError) as caught:
        ENGINE.predict_dedupe(doubled, model, min_weight=0)
    assert caught.value.code == "duplicate_unique_id"

    with pytest.raises(EngineError) as caught:
        ENGINE.train(features.head(1))
    assert caught.value.code == "too_few_records"

    with pytest.raises(EngineError) as caught:
        ENGINE.train(features, link_type="link_only")
    assert caught.value.code == "frames"

    with pytest.raises(EngineError) as caught:
        engine_for("oracle")
    assert caught.value.code == "unknown_engine"
    assert isinstance(engine_for("duckdb", memory_limit="1GB"), DuckDBEngine)
    assert "unique_id" in required_columns(PERSON_SPEC)


@pytest.mark.skipif(
    os.environ.get("PILAR_SPARK_TESTS") != "1",
    reason="starts a local Spark session (about a minute); set PILAR_SPARK_TESTS=1",
)
def test_spark_gives_the_clusters_duckdb_gives() -> None:
    from pilar.linkage.engine import local_spark_session

    features, truth, model = trained_population()
    spark = SparkEngine(local_spark_session(cores=2, memory="2g"))
    try:
        spark_predictions = spark.predict_dedupe(features, model, min_weight=0)
        duckdb_predictions = ENGINE.predict_dedupe(features, model, min_weight=0)
        spark_pairs = pairs_from_frame(spark_predictions)
        duckdb_pairs = pairs_from_frame(duckdb_predictions)
        # The same pairs with the same weights: Spark runs Pilar's Jaro-Winkler, not the jar's.
        assert spark_pairs == duckdb_pairs
        joined = spark_predictions.join(
            duckdb_predictions, on=["unique_id_l", "unique_id_r"], suffix="_duckdb"
        )
        difference = (joined["match_weight"] - joined["match_weight_duckdb"]).abs()
        assert difference.max() < 1e-6  # type: ignore[operator]  # a float column
        spark_clusters = spark.cluster(
            spark_predictions, threshold_weight=0, ids=features["unique_id"]
        )
        duckdb_clusters = ENGINE.cluster(
            duckdb_predictions, threshold_weight=0, ids=features["unique_id"]
        )
        assert pairs_from_clusters(spark_clusters) == pairs_from_clusters(duckdb_clusters)
        counts = spark.blocking_analysis(features, truth_pairs=truth)
        assert counts[-1].pair_completeness == (
            ENGINE.blocking_analysis(features, truth_pairs=truth)[-1].pair_completeness
        )
    finally:
        spark.spark.stop()
