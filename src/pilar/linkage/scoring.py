"""Scoring one pair in Python with a model's m/u: the match weight, the probability, whether
an identifier conflicts, and the per-comparison breakdown the reviewer and the clerk see.

``score_pair(model, left_features, right_features) -> Score`` evaluates each comparison with
the Python twin of its Splink levels (``linkage.comparisons``), takes the level's m and u from
the model and adds the term-frequency adjustment exactly as Splink does::

    weight = log2(λ / (1 − λ)) + Σ log2(m / u) + Σ (log2(u_level) − log2(max(tf_l, tf_r, floor)))

the last sum over the exact levels with a frequency table (``given_std``, ``surnames_sorted``).
The frequencies are the model's own (counted at training and kept in the model file), which the
engines also hand to Splink: ``score_pair`` equals Splink's ``match_weight`` for the same pair
(``tests/test_scoring.py`` checks it to 1e-6). A model without a table for a column (the default
model) scores that level with its m and u alone, in Python and in Splink alike.

``Score.breakdown`` has one entry per comparison, in the model's order::

    {"comparison": "surnames", "level": "swapped", "gamma": 7, "label": "Surnames swapped",
     "bayes_factor": 4287.2, "weight": 12.07, "left": "LOPEZ CRUZ", "right": "CRUZ LOPEZ"}

``level`` is the level's stable key (``"null"`` when the comparison is skipped: Bayes factor
1, weight 0); ``left``/``right`` are the compared values as the reviewer reads them.

``identifier_conflict``: both records have a CURP and the CURP comparison is at its "else"
level, or both have an NSS and they differ — never linked without review.

``DEFAULT_MODEL`` (from ``linkage.model``) is the hand-set model used before one is trained.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pilar.linkage.comparisons import Comparison
from pilar.linkage.model import DEFAULT_MODEL, M_U_CLAMP_MIN, TrainedModel

__all__ = ["DEFAULT_MODEL", "Score", "probability_of_weight", "score_pair"]


@dataclass(frozen=True)
class Score:
    weight: float
    probability: float
    identifier_conflict: bool
    breakdown: list[dict[str, Any]] = field(default_factory=list)


def probability_of_weight(weight: float) -> float:
    """Match probability of a match weight, computed as Splink does (stable for any sign)."""
    if weight >= 0:
        return 1.0 / (1.0 + 2.0 ** (-weight))
    power = 2.0**weight
    return power / (1.0 + power)


def _display(item: Comparison, features: Mapping[str, Any]) -> str | None:
    values = [str(features[column]) for column in item.columns if features.get(column) is not None]
    return " ".join(values) if values else None


def _term_frequency_adjustment(
    model: TrainedModel, column: str, u: float, left: Any, right: Any
) -> float:
    table = model.term_frequencies.get(column)
    if table is None:
        return 0.0
    # Splink: greatest(coalesce(tf_l, tf_r), coalesce(tf_r, tf_l), floor), no adjustment when
    # both are missing.
    present = [value for value in (table.of(left), table.of(right)) if value is not None]
    if not present:
        return 0.0
    return math.log2(u) - math.log2(max(*present, table.floor))


def score_pair(
    model: TrainedModel, left_features: Mapping[str, Any], right_features: Mapping[str, Any]
) -> Score:
    """The model's score of the pair, as Splink would compute it, with its breakdown."""
    total = model.prior_weight
    breakdown: list[dict[str, Any]] = []
    levels_by_name: dict[str, str] = {}
    for item in model.spec.comparisons:
        index = item.level_index(left_features, right_features)
        level = item.levels[index]
        gamma = item.gammas[index]
        levels_by_name[item.name] = level.key
        if level.is_null:
            weight = 0.0
        else:
            m, u = model.parameters[item.name][gamma]
            weight = math.log2(max(m, M_U_CLAMP_MIN) / max(u, M_U_CLAMP_MIN))
            if level.tf_column:
                weight += _term_frequency_adjustment(
                    model,
                    level.tf_column,
                    u,
                    left_features.get(level.tf_column),
                    right_features.get(level.tf_column),
                )
        total += weight
        breakdown.append(
            {
                "comparison": item.name,
                "level": level.key,
                "gamma": gamma,
                "label": level.label,
                "bayes_factor": 2.0**weight,
                "weight": weight,
                "left": _display(item, left_features),
                "right": _display(item, right_features),
            }
        )
    return Score(
        weight=total,
        probability=probability_of_weight(total),
        identifier_conflict=_identifier_conflict(levels_by_name, left_features, right_features),
        breakdown=breakdown,
    )


def _identifier_conflict(
    levels: Mapping[str, str], left: Mapping[str, Any], right: Mapping[str, Any]
) -> bool:
    if (
        left.get("curp") is not None
        and right.get("curp") is not None
        and levels.get("curp") == "else"
    ):
        return True
    return (
        left.get("nss") is not None
        and right.get("nss") is not None
        and left.get("nss") != right.get("nss")
    )
