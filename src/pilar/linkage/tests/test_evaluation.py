"""Precision, recall, F1 and pair completeness on tiny hand-made cases."""

from __future__ import annotations

import polars as pl
import pytest

from pilar.linkage.evaluation import (
    normalise_pairs,
    pair_completeness,
    pair_metrics,
    pairs_from_clusters,
    pairs_from_frame,
)


def test_cluster_labels_give_all_pairs_within_a_cluster() -> None:
    labels = {1: "a", 2: "a", 3: "a", 4: "b", 5: "c", 6: "c"}
    assert pairs_from_clusters(labels) == {(1, 2), (1, 3), (2, 3), (5, 6)}
    frame = pl.DataFrame({"unique_id": [1, 2, 3], "cluster_id": [1, 1, 3]})
    assert pairs_from_clusters(frame) == {(1, 2)}


def test_pairs_are_unordered_in_a_deduplication() -> None:
    assert normalise_pairs([(2, 1), (1, 2), (3, 3)]) == {(1, 2)}
    assert normalise_pairs([(2, 1), (1, 2)], ordered=True) == {(2, 1), (1, 2)}


def test_metrics_count_true_and_false_pairs() -> None:
    truth = pairs_from_clusters({1: 1, 2: 1, 3: 1, 4: 4, 5: 4})  # 4 true pairs
    predicted = {(2, 1), (2, 3), (4, 6)}  # 2 right, 1 wrong
    metrics = pair_metrics(predicted, truth)
    assert (metrics.true_positives, metrics.false_positives, metrics.false_negatives) == (2, 1, 2)
    assert metrics.precision == pytest.approx(2 / 3)
    assert metrics.recall == pytest.approx(2 / 4)
    assert metrics.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert metrics.as_dict()["f1"] == metrics.f1


def test_edge_cases() -> None:
    nothing = pair_metrics([], [])
    assert (nothing.precision, nothing.recall) == (1.0, 1.0)
    all_wrong = pair_metrics([(1, 2)], [(3, 4)])
    assert (all_wrong.precision, all_wrong.recall, all_wrong.f1) == (0.0, 0.0, 0.0)


def test_linkage_pairs_keep_their_sides() -> None:
    # In a list linkage (row 1 of the list, person 1 of the registry) is not (1, 1) reversed.
    metrics = pair_metrics([("L1", "R1"), ("R2", "L2")], [("L1", "R1"), ("L2", "R2")], ordered=True)
    assert metrics.true_positives == 1


def test_pair_completeness_and_frames() -> None:
    truth = [(1, 2), (3, 4), (5, 6), (7, 8)]
    assert pair_completeness([(2, 1), (3, 4), (9, 10)], truth) == 0.5
    assert pair_completeness([], []) == 1.0
    frame = pl.DataFrame(
        {"unique_id_l": [1, 3, 5], "unique_id_r": [2, 4, 6], "match_weight": [9.0, 1.0, -2.0]}
    )
    assert pairs_from_frame(frame) == {(1, 2), (3, 4), (5, 6)}
    assert pairs_from_frame(frame, threshold_weight=1.0) == {(1, 2), (3, 4)}
