"""Precision, recall, F1 and pair completeness against a known truth.

Everything is measured on **pairs**: a prediction (pairs above a threshold, or clusters) and a
truth (pairs, or cluster labels) are both turned into sets of record pairs, all pairs within a
cluster counting — a truth cluster of three records holds three true pairs. In a deduplication
a pair is unordered; in a list linkage it is (left id, right id).

Public API:

- ``pairs_from_clusters(labels)``: ``{id: cluster}`` (or a frame with ``unique_id`` and
  ``cluster_id``) → set of pairs.
- ``pairs_from_frame(frame, *, threshold_weight=None)``: predicted pairs from a predictions frame.
- ``normalise_pairs(pairs, *, ordered=False)``.
- ``pair_metrics(predicted, truth, *, ordered=False) -> PairMetrics`` (precision, recall, F1 and
  the counts).
- ``pair_completeness(candidate_pairs, truth, *, ordered=False)``: the share of true pairs the
  blocking generated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import polars as pl

Pair = tuple[Any, Any]


@dataclass(frozen=True)
class PairMetrics:
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        predicted = self.true_positives + self.false_positives
        # Nothing predicted: nothing wrong was claimed.
        return self.true_positives / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        true = self.true_positives + self.false_negatives
        return self.true_positives / true if true else 1.0

    @property
    def f1(self) -> float:
        precision, recall = self.precision, self.recall
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
        }


def normalise_pairs(pairs: Iterable[Pair], *, ordered: bool = False) -> set[Pair]:
    """The pairs as a set; unordered pairs (a deduplication) with the smaller id first, a
    record paired with itself dropped."""
    result: set[Pair] = set()
    for first, second in pairs:
        if first == second:
            continue
        if not ordered and second < first:
            first, second = second, first
        result.add((first, second))
    return result


def pairs_from_clusters(labels: Mapping[Any, Any] | pl.DataFrame) -> set[Pair]:
    """Every pair of records that share a cluster label. A frame needs ``unique_id`` and
    ``cluster_id``."""
    if isinstance(labels, pl.DataFrame):
        items: Iterable[tuple[Any, Any]] = zip(
            labels["unique_id"].to_list(), labels["cluster_id"].to_list(), strict=True
        )
    else:
        items = labels.items()
    members: dict[Any, list[Any]] = defaultdict(list)
    for record, cluster in items:
        members[cluster].append(record)
    pairs: set[Pair] = set()
    for group in members.values():
        pairs.update(normalise_pairs(combinations(sorted(group), 2)))
    return pairs


def pairs_from_frame(
    frame: pl.DataFrame, *, threshold_weight: float | None = None, ordered: bool = False
) -> set[Pair]:
    """The pairs of a predictions frame (``unique_id_l``, ``unique_id_r``, ``match_weight``),
    those at or above ``threshold_weight`` when given."""
    if threshold_weight is not None:
        frame = frame.filter(pl.col("match_weight") >= threshold_weight)
    return normalise_pairs(
        zip(frame["unique_id_l"].to_list(), frame["unique_id_r"].to_list(), strict=True),
        ordered=ordered,
    )


def pair_metrics(
    predicted: Iterable[Pair], truth: Iterable[Pair], *, ordered: bool = False
) -> PairMetrics:
    predicted_set = normalise_pairs(predicted, ordered=ordered)
    truth_set = normalise_pairs(truth, ordered=ordered)
    true_positives = len(predicted_set & truth_set)
    return PairMetrics(
        true_positives=true_positives,
        false_positives=len(predicted_set) - true_positives,
        false_negatives=len(truth_set) - true_positives,
    )


def pair_completeness(
    candidate_pairs: Iterable[Pair], truth: Iterable[Pair], *, ordered: bool = False
) -> float:
    """The share of true pairs among the candidate pairs blocking generated (1.0 without true
    pairs)."""
    truth_set = normalise_pairs(truth, ordered=ordered)
    if not truth_set:
        return 1.0
    return len(normalise_pairs(candidate_pairs, ordered=ordered) & truth_set) / len(truth_set)
