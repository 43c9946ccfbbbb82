"""Pilar's linkage engine: train, analyse blocking, predict and cluster, behind one interface
with two implementations on Splink 5 — ``DuckDBEngine`` (in process) and ``SparkEngine`` (a
Spark session, for registries that outgrow one machine).

Interface (``LinkageEngine``)::

    train(frame_or_frames, *, spec=PERSON_SPEC, link_type="dedupe_only", seed=7,
          max_pairs=5e6) -> TrainedModel
    blocking_analysis(frames, spec=PERSON_SPEC, *, truth_pairs=None) -> list[BlockingCount]
    predict_dedupe(frame, model, *, min_weight) -> pl.DataFrame
    predict_link(left, right, model, *, min_weight) -> pl.DataFrame
    cluster(pairs, *, threshold_weight, ids=None) -> pl.DataFrame

Frames are Polars frames of feature columns (``linkage.features``; FEBRL's own columns for
``febrl.FEBRL_SPEC``) with a ``unique_id``. Predictions have ``unique_id_l``, ``unique_id_r``,
``match_weight``, ``match_probability`` and one ``gamma_<comparison>`` per comparison (Splink's
level numbers; ``Comparison.gamma`` in Python), sorted by weight, strongest first; in a list
linkage ``unique_id_l`` is always the left frame's (the list's) id. ``cluster`` returns
``unique_id`` and ``cluster_id`` (the smallest id of the connected component of the pairs at or
above the threshold) for every id of ``ids`` (default: the ids in ``pairs``).

Training is unsupervised: u by random sampling (``max_pairs`` pairs, seeded), m by expectation
maximisation once per training blocking rule, λ back-calculated from those sessions (the spec's
deterministic rules with an assumed recall as the fallback: see ``train``); term frequencies
are counted from the training frame and kept in the model (see ``linkage.model``). Prediction
hands those frequencies to Splink, so every score equals ``scoring.score_pair`` for the same
pair.

Errors a caller can cause raise ``EngineError(code, **params)``: ``missing_columns``,
``null_unique_id``, ``duplicate_unique_id``, ``too_few_records``, ``frames``,
``training_failed`` (no expectation-maximisation session converged), ``unknown_engine``.

Measured on this machine (2 shared cores) with ``DuckDBEngine`` on the seeded registries (seed
11, 5% duplicates), unsupervised; precision / recall / F1 of the pairs at or above weight 0
(match probability 0.5) and 6.6 (0.99):

- 100,000 persons, high noise: 18,000 blocked pairs, pair completeness 0.991; weight 0: 0.996 /
  0.983 / 0.990; weight 6.6: 0.999 / 0.961 / 0.980; training and prediction 22 s.
- 1,000,000 persons, high noise: 1.33 million blocked pairs, pair completeness 0.992; weight 0:
  0.994 / 0.980 / 0.987; weight 6.6: 0.999 / 0.926 / 0.961; blocking analysis 4 s, training
  (5 million u pairs) 34 s, prediction 20 s, clustering 1 s; 2.3 GB peak resident memory.
- 1,000,000 persons, low noise: pair completeness 0.999; weight 0: 0.997 / 0.996 / 0.996;
  weight 6.6: 0.9995 / 0.960 / 0.979; 63 s.
- FEBRL3 (deduplication) and FEBRL4 (linkage), weight 6.6: precision 1.0, recall 0.997 and
  0.9998 (clusters: F1 0.9997 and 0.9999); about 40 s each, mostly sampling 2 million u pairs.

Memory: ``DuckDBEngine`` sets DuckDB's ``memory_limit`` (default 6 GB, so a run stays under
8 GB with Python's share) and a temporary directory to spill to; blocked pairs are materialised
as id pairs only, and above ``chunk_records`` records the prediction is scored in chunks
(Splink's ``num_chunks_left``/``num_chunks_right``) so the compared columns of all candidate
pairs are never held at once.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import polars as pl
import splink
from splink import Linker
from splink.clustering import cluster_pairwise_predictions_at_threshold

from pilar.linkage.comparisons import SPARK_JARO_WINKLER, Dialect, columns_used, jaro_winkler
from pilar.linkage.model import (
    PERSON_SPEC,
    LinkageSpec,
    LinkType,
    TermFrequencies,
    TrainedModel,
    complete_parameters,
    term_frequencies_from_counts,
)

logger = logging.getLogger(__name__)

Pair = tuple[Any, Any]
# How Splink joins a dataset's name and an id into one key in a linkage.
_CONCAT_SEPARATOR = "-__-"


class EngineError(Exception):
    """A run that cannot proceed; ``code`` is stable, ``params`` say what is wrong."""

    def __init__(self, code: str, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(f"{code}: {params}" if params else code)


class BlockingCount:
    """Pairs a blocking rule adds (not found by an earlier rule), the running total, and —
    when the truth is known — the true pairs found so far and their share (pair
    completeness)."""

    __slots__ = ("cumulative_pairs", "pairs", "rule", "sql", "true_pairs", "true_pairs_found")

    def __init__(
        self,
        *,
        rule: str,
        sql: str,
        pairs: int,
        cumulative_pairs: int,
        true_pairs_found: int | None = None,
        true_pairs: int | None = None,
    ) -> None:
        self.rule = rule
        self.sql = sql
        self.pairs = pairs
        self.cumulative_pairs = cumulative_pairs
        self.true_pairs_found = true_pairs_found
        self.true_pairs = true_pairs

    @property
    def pair_completeness(self) -> float | None:
        if self.true_pairs is None or self.true_pairs_found is None:
            return None
        return self.true_pairs_found / self.true_pairs if self.true_pairs else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "sql": self.sql,
            "pairs": self.pairs,
            "cumulative_pairs": self.cumulative_pairs,
            "true_pairs_found": self.true_pairs_found,
            "true_pairs": self.true_pairs,
            "pair_completeness": self.pair_completeness,
        }

    def __repr__(self) -> str:
        return f"BlockingCount({self.as_dict()!r})"


class LinkageEngine(Protocol):
    name: str

    def train(
        self,
        frame: pl.DataFrame | Sequence[pl.DataFrame],
        *,
        spec: LinkageSpec = PERSON_SPEC,
        link_type: LinkType = "dedupe_only",
        seed: int = 7,
        max_pairs: float = 5e6,
    ) -> TrainedModel: ...

    def blocking_analysis(
        self,
        frames: pl.DataFrame | Sequence[pl.DataFrame],
        spec: LinkageSpec = PERSON_SPEC,
        *,
        truth_pairs: Iterable[Pair] | None = None,
    ) -> list[BlockingCount]: ...

    def predict_dedupe(
        self, frame: pl.DataFrame, model: TrainedModel, *, min_weight: float
    ) -> pl.DataFrame: ...

    def predict_link(
        self, left: pl.DataFrame, right: pl.DataFrame, model: TrainedModel, *, min_weight: float
    ) -> pl.DataFrame: ...

    def cluster(
        self, pairs: pl.DataFrame, *, threshold_weight: float, ids: Iterable[Any] | None = None
    ) -> pl.DataFrame: ...


def required_columns(spec: LinkageSpec) -> list[str]:
    """The columns a frame must have for ``spec``: the id, what the comparisons read and what
    the blocking rules join on."""
    columns = [spec.unique_id_column]
    for column in columns_used(spec.comparisons):
        if column not in columns:
            columns.append(column)
    for blocking_rule in (*spec.blocking_rules, *spec.training_rules, *spec.deterministic_rules):
        columns.extend(column for column in blocking_rule.columns if column not in columns)
    return columns


def _prepare(frame: pl.DataFrame, spec: LinkageSpec) -> pl.DataFrame:
    """The columns Splink reads, in a fixed order; refuses frames that lack one or repeat ids."""
    columns = required_columns(spec)
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise EngineError("missing_columns", missing=missing)
    selected = frame.select(columns)
    if selected.height and selected[spec.unique_id_column].null_count():
        raise EngineError("null_unique_id")
    if selected[spec.unique_id_column].n_unique() != selected.height:
        raise EngineError("duplicate_unique_id")
    return selected


def normalised_truth(truth_pairs: Iterable[Pair], *, ordered: bool) -> pl.DataFrame:
    """Truth pairs as a frame (``unique_id_l``, ``unique_id_r``), without repeats; for a
    deduplication (``ordered`` False) each pair with the smaller id first."""
    rows = [(a, b) for a, b in truth_pairs if a != b]
    if not ordered:
        rows = [(a, b) if a <= b else (b, a) for a, b in rows]
    if not rows:
        return pl.DataFrame(schema={"unique_id_l": pl.Int64, "unique_id_r": pl.Int64})
    return pl.DataFrame(rows, schema=["unique_id_l", "unique_id_r"], orient="row").unique()


def gamma_columns(spec: LinkageSpec) -> list[str]:
    return [item.gamma_column for item in spec.comparisons]


def empty_predictions(spec: LinkageSpec, id_dtype: Any = pl.Int64) -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "unique_id_l": id_dtype,
            "unique_id_r": id_dtype,
            "match_weight": pl.Float64,
            "match_probability": pl.Float64,
            **dict.fromkeys(gamma_columns(spec), pl.Int8),
        }
    )


def parameters_from_settings(
    spec: LinkageSpec, settings: dict[str, Any]
) -> dict[str, dict[int, tuple[float | None, float | None]]]:
    """m and u per level as Splink estimated them; None where it could not (a level never seen
    among the training pairs)."""
    by_name = {item["output_column_name"]: item for item in settings["comparisons"]}
    parameters: dict[str, dict[int, tuple[float | None, float | None]]] = {}
    for item in spec.comparisons:
        stored_levels = by_name[item.name]["comparison_levels"]
        parameters[item.name] = {}
        for level, gamma, stored in zip(item.levels, item.gammas, stored_levels, strict=True):
            if level.is_null:
                continue
            values: list[float | None] = []
            for key in ("m_probability", "u_probability"):
                value = stored.get(key)
                trained = isinstance(value, int | float) and not isinstance(value, bool)
                values.append(float(value) if trained else None)
            parameters[item.name][gamma] = (values[0], values[1])
    return parameters


def term_frequencies_of(frame: pl.DataFrame, spec: LinkageSpec) -> dict[str, TermFrequencies]:
    tables: dict[str, TermFrequencies] = {}
    for column in spec.tf_columns:
        counts = frame.get_column(column).cast(pl.String).drop_nulls().value_counts()
        tables[column] = term_frequencies_from_counts(
            dict(zip(counts[column].to_list(), counts["count"].to_list(), strict=True)),
            total=int(counts["count"].sum()),
        )
    return tables


class SplinkEngine(ABC):
    """What both engines share; a subclass supplies Splink's database API and how a Polars
    frame enters and leaves the backend."""

    name = "splink"
    dialect: Dialect = "duckdb"
    # Above this many records (on the larger side) a prediction is scored in chunks.
    chunk_records = 400_000

    # --- backend hooks -----------------------------------------------------------------------

    @abstractmethod
    def _new_api(self) -> Any: ...

    @abstractmethod
    def _register(self, api: Any, frame: pl.DataFrame, name: str) -> Any: ...

    @abstractmethod
    def _query(self, api: Any, sql: str) -> pl.DataFrame: ...

    def _close(self, api: Any) -> None:  # noqa: B027 — optional hook, nothing to free by default
        """Free what the run held (tables, temporary files)."""

    # --- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _table_name(prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:10]}"

    @staticmethod
    def _linker(inputs: Sequence[Any], settings: dict[str, Any]) -> Linker:
        # log_level None: Splink's messages go to the application's logging configuration.
        return Linker(list(inputs) if len(inputs) > 1 else inputs[0], settings, log_level=None)

    def _register_term_frequencies(
        self,
        api: Any,
        linker: Linker,
        frames: Sequence[pl.DataFrame],
        term_frequencies: dict[str, TermFrequencies],
    ) -> None:
        """Give Splink the model's frequencies for every value present, instead of letting it
        count them in the data being linked."""
        for column, table in term_frequencies.items():
            values = (
                pl.concat([frame.select(pl.col(column).cast(pl.String)) for frame in frames])
                .drop_nulls()
                .unique()
            )
            lookup = values.with_columns(
                pl.col(column)
                .replace_strict(dict(table.values), default=table.floor, return_dtype=pl.Float64)
                .alias(f"tf_{column}")
            )
            registered = self._register(api, lookup, self._table_name(f"pilar_tf_{column}"))
            linker.table_management.register_term_frequency_lookup(registered, column)

    # --- train -------------------------------------------------------------------------------

    def train(
        self,
        frame: pl.DataFrame | Sequence[pl.DataFrame],
        *,
        spec: LinkageSpec = PERSON_SPEC,
        link_type: LinkType = "dedupe_only",
        seed: int = 7,
        max_pairs: float = 5e6,
    ) -> TrainedModel:
        """Estimate λ, u and m. ``dedupe_only``: on the pairs of one frame (the registry);
        ``link_only``: on the pairs across two frames (left, right), whose λ is that of a
        linkage. Term frequencies are counted over all records given."""
        started = time.monotonic()
        inputs = [frame] if isinstance(frame, pl.DataFrame) else list(frame)
        expected = 2 if link_type == "link_only" else 1
        if len(inputs) != expected:
            raise EngineError("frames", count=len(inputs), expected=expected)
        data = [_prepare(item, spec) for item in inputs]
        if min(item.height for item in data) < (1 if link_type == "link_only" else 2):
            raise EngineError("too_few_records", records=min(item.height for item in data))
        api = self._new_api()
        try:
            tables = [
                self._register(api, item, self._table_name(f"pilar_train{index}"))
                for index, item in enumerate(data)
            ]
            linker = self._linker(tables, spec.splink_settings(self.dialect, link_type=link_type))
            try:
                linker.training.estimate_probability_two_random_records_match(
                    [item.sql() for item in spec.deterministic_rules],
                    recall=spec.deterministic_recall,
                )
            except ValueError as error:
                # More deterministic matches than the recall allows (a data set made mostly of
                # duplicates): keep Splink's initial λ rather than fail the training.
                logger.warning("λ estimation refused: %s", error)
            # Splink samples per comparison in chunks (ten by default) to bound memory; each
            # chunk is a query, which for a small data set costs more than its pairs do.
            linker.training.estimate_u_using_random_sampling(
                max_pairs=max_pairs,
                seed=seed,
                min_count_per_level=None,
                num_chunks=max(1, min(10, math.ceil(max_pairs / 2e6))),
            )
            deterministic = float(
                linker.misc.save_model_to_json()["probability_two_random_records_match"]
            )
            sessions: list[dict[str, Any]] = []
            for training_rule in spec.training_rules:
                session_started = time.monotonic()
                before = linker.misc.save_model_to_json()
                try:
                    linker.training.estimate_parameters_using_expectation_maximisation(
                        training_rule.sql(),
                        estimate_without_term_frequencies=True,
                        max_pairs=max_pairs,
                    )
                except ValueError as error:
                    # Splink refuses an iteration whose m underflows (a level no pair of a
                    # small block shows) and leaves the linker's settings half-changed: go on
                    # from the parameters estimated so far; the other sessions still estimate
                    # this comparison.
                    logger.warning("EM on %s failed: %s", training_rule.key, error)
                    sessions.append({"rule": training_rule.key, "failed": str(error)[:200]})
                    linker = self._linker(tables, before)
                    continue
                sessions.append(
                    {
                        "rule": training_rule.key,
                        "seconds": round(time.monotonic() - session_started, 2),
                    }
                )
            if not any("seconds" in session for session in sessions):
                raise EngineError("training_failed", sessions=sessions)
            try:
                # λ from all the sessions that converged (see below). Splink's public flag on
                # the last EM call runs this same method, but is lost when that session fails.
                linker._populate_probability_two_random_records_match_from_trained_values()
            except (ValueError, ZeroDivisionError) as error:
                logger.warning("λ from the EM sessions failed: %s", error)
            settings = linker.misc.save_model_to_json()
            blocked = linker.inference.compute_blocked_pairs_for_predict()
            # A table name Splink generated, never user input.
            count_sql = f"select count(*) as pairs from {blocked.physical_name}"  # noqa: S608
            blocked_pairs = int(self._query(api, count_sql)["pairs"][0])
        finally:
            self._close(api)
        parameters, untrained = complete_parameters(
            spec, parameters_from_settings(spec, settings), u_pairs=max_pairs
        )
        # λ: Splink's back-calculation from the EM sessions (the share of matches among each
        # session's blocked pairs, undone by the Bayes factor of what the rule blocked on). On
        # the seeded registries it lands within 15% of the truth (1.1e-6 for 1.0e-6 at 100,000
        # persons, 9.1e-8 for 1.0e-7 at 1,000,000), where the deterministic rules' count with an
        # assumed recall is off by a factor of three, because how many duplicates agree on
        # everything is exactly what differs between registries. The deterministic estimate is
        # kept when the back-calculation fails (one EM session only, or no matches at all).
        #
        # Capped at the share of all pairs that blocking generates: matches are (nearly all)
        # among the blocked pairs. In a small set made largely of duplicates (FEBRL, a test
        # population) the random pairs that estimate u contain matches, which inflates u,
        # shrinks the Bayes factors the back-calculation divides by and overstates λ twenty-
        # fold; there the cap is close to the truth (FEBRL3: 5.8e-4 for 5.2e-4).
        total_pairs = (
            data[0].height * data[1].height
            if link_type == "link_only"
            else data[0].height * (data[0].height - 1) / 2
        )
        from_sessions = float(settings["probability_two_random_records_match"])
        probability = (
            from_sessions
            if math.isfinite(from_sessions) and 0.0 < from_sessions < 1.0
            else deterministic
        )
        cap = blocked_pairs / total_pairs if total_pairs else probability
        if 0.0 < cap < probability:
            probability = cap
        return TrainedModel(
            spec=spec,
            name=spec.name,
            probability_two_random_records_match=probability,
            parameters=parameters,
            term_frequencies=term_frequencies_of(pl.concat(data), spec),
            trained_at=datetime.datetime.now(tz=datetime.UTC),
            auto_link_weight=spec.auto_link_weight,
            review_weight=spec.review_weight,
            training={
                "engine": self.name,
                "link_type": link_type,
                "records": sum(item.height for item in data),
                "seed": seed,
                "max_pairs": max_pairs,
                "em_sessions": sessions,
                "probability_from_deterministic_rules": deterministic,
                "probability_from_em_sessions": from_sessions,
                "probability_cap_from_blocked_pairs": cap,
                "untrained_levels": untrained,
                "seconds": round(time.monotonic() - started, 2),
            },
            splink_version=splink.__version__,
            dialect=self.dialect,
        )

    # --- blocking analysis -------------------------------------------------------------------

    def blocking_analysis(
        self,
        frames: pl.DataFrame | Sequence[pl.DataFrame],
        spec: LinkageSpec = PERSON_SPEC,
        *,
        truth_pairs: Iterable[Pair] | None = None,
    ) -> list[BlockingCount]:
        """Pairs generated per prediction blocking rule (each pair counted for the first rule
        that finds it) and cumulatively; with ``truth_pairs`` (pairs of ids; for a list
        linkage (left id, right id)) the pair completeness reached after each rule."""
        inputs = [frames] if isinstance(frames, pl.DataFrame) else list(frames)
        if len(inputs) not in (1, 2):
            raise EngineError("frames", count=len(inputs))
        link = len(inputs) == 2
        data = [_prepare(frame, spec) for frame in inputs]
        id_dtype = data[0].schema[spec.unique_id_column]
        api = self._new_api()
        try:
            tables = [
                self._register(api, frame, self._table_name(f"pilar_block{index}"))
                for index, frame in enumerate(data)
            ]
            linker = self._linker(
                tables,
                spec.splink_settings(
                    self.dialect, link_type="link_only" if link else "dedupe_only"
                ),
            )
            blocked = linker.inference.compute_blocked_pairs_for_predict()
            pairs = self._blocked_pairs(api, blocked, tables=tables, id_dtype=id_dtype)
        finally:
            self._close(api)
        counts = pairs.group_by("match_key").len()
        by_key = dict(zip(counts["match_key"].to_list(), counts["len"].to_list(), strict=True))
        found_by_key: dict[int, int] = {}
        true_total: int | None = None
        if truth_pairs is not None:
            truth = normalised_truth(truth_pairs, ordered=link)
            true_total = truth.height
            if truth.height:
                truth = truth.cast({"unique_id_l": id_dtype, "unique_id_r": id_dtype})
                found = pairs.join(truth, on=["unique_id_l", "unique_id_r"], how="inner")
                found_counts = found.group_by("match_key").len()
                found_by_key = dict(
                    zip(
                        found_counts["match_key"].to_list(),
                        found_counts["len"].to_list(),
                        strict=True,
                    )
                )
        result: list[BlockingCount] = []
        cumulative = 0
        cumulative_found = 0
        for index, blocking_rule in enumerate(spec.blocking_rules):
            cumulative += by_key.get(index, 0)
            cumulative_found += found_by_key.get(index, 0)
            result.append(
                BlockingCount(
                    rule=blocking_rule.key,
                    sql=blocking_rule.sql(),
                    pairs=by_key.get(index, 0),
                    cumulative_pairs=cumulative,
                    true_pairs_found=cumulative_found if true_total is not None else None,
                    true_pairs=true_total,
                )
            )
        return result

    def _blocked_pairs(
        self, api: Any, blocked: Any, *, tables: Sequence[Any], id_dtype: Any
    ) -> pl.DataFrame:
        """Splink's blocked pairs as (unique_id_l, unique_id_r, match_key). Splink keys a pair
        by the ids (a deduplication, smaller id first: it joins l.id < r.id only) or by
        "<dataset>-__-<id>" (a linkage); the latter is mapped back to (left id, right id)."""
        # A table name Splink generated, never user input.
        columns = (
            "cast(match_key as bigint) as match_key, "
            "cast(join_key_l as string) as join_key_l, "
            "cast(join_key_r as string) as join_key_r"
        )
        sql = f"select {columns} from {blocked.physical_name}"  # noqa: S608
        pairs = self._query(api, sql)
        if len(tables) == 1:
            return pairs.select(
                pl.col("join_key_l").cast(id_dtype).alias("unique_id_l"),
                pl.col("join_key_r").cast(id_dtype).alias("unique_id_r"),
                "match_key",
            )
        left_name = tables[0].dataset_display_name
        split_l = pl.col("join_key_l").str.split_exact(_CONCAT_SEPARATOR, 1)
        split_r = pl.col("join_key_r").str.split_exact(_CONCAT_SEPARATOR, 1)
        keyed = pairs.with_columns(
            split_l.struct.field("field_0").alias("source_l"),
            split_l.struct.field("field_1").alias("id_l"),
            split_r.struct.field("field_1").alias("id_r"),
        )
        left_first = pl.col("source_l") == left_name
        return keyed.select(
            pl.when(left_first).then("id_l").otherwise("id_r").cast(id_dtype).alias("unique_id_l"),
            pl.when(left_first).then("id_r").otherwise("id_l").cast(id_dtype).alias("unique_id_r"),
            "match_key",
        )

    # --- predict -----------------------------------------------------------------------------

    def _predict(
        self,
        frames: Sequence[pl.DataFrame],
        model: TrainedModel,
        *,
        link_type: LinkType,
        min_weight: float,
    ) -> pl.DataFrame:
        spec = model.spec
        data = [_prepare(frame, spec) for frame in frames]
        link = len(data) == 2
        api = self._new_api()
        try:
            tables = [
                self._register(api, frame, self._table_name(f"pilar_input{index}"))
                for index, frame in enumerate(data)
            ]
            settings = model.splink_settings(
                self.dialect, link_type=link_type, retain_matching_columns=True
            )
            linker = self._linker(tables, settings)
            self._register_term_frequencies(api, linker, data, dict(model.term_frequencies))
            largest = max(frame.height for frame in data)
            chunks = max(1, math.ceil(largest / self.chunk_records))
            predictions = linker.inference.predict(
                threshold_match_weight=min_weight,
                num_chunks_left=chunks,
                num_chunks_right=chunks,
                warning_mode="never",
            )
            columns = ", ".join(
                [
                    f"{spec.unique_id_column}_l as unique_id_l",
                    f"{spec.unique_id_column}_r as unique_id_r",
                    "match_weight",
                    "match_probability",
                    *gamma_columns(spec),
                    *(["source_dataset_l"] if link else []),
                ]
            )
            # Column and table names are the spec's and Splink's, never user input.
            sql = f"select {columns} from {predictions.physical_name}"  # noqa: S608
            result = self._query(api, sql)
            left_name = tables[0].dataset_display_name
        finally:
            self._close(api)
        if link:
            # Splink may put either data set on its left; Pilar's left is the first frame.
            left_first = pl.col("source_dataset_l") == left_name
            result = result.with_columns(
                pl.when(left_first)
                .then("unique_id_l")
                .otherwise("unique_id_r")
                .alias("unique_id_l"),
                pl.when(left_first)
                .then("unique_id_r")
                .otherwise("unique_id_l")
                .alias("unique_id_r"),
            ).drop("source_dataset_l")
        return result.with_columns(
            pl.col("match_weight").cast(pl.Float64),
            pl.col("match_probability").cast(pl.Float64),
            *(pl.col(column).cast(pl.Int8) for column in gamma_columns(spec)),
        ).sort(["match_weight", "unique_id_l", "unique_id_r"], descending=[True, False, False])

    def predict_dedupe(
        self, frame: pl.DataFrame, model: TrainedModel, *, min_weight: float
    ) -> pl.DataFrame:
        """Scored pairs of records of ``frame`` at or above ``min_weight``."""
        if frame.height < 2:
            _prepare(frame, model.spec)
            return empty_predictions(model.spec, frame.schema.get("unique_id", pl.Int64))
        return self._predict([frame], model, link_type="dedupe_only", min_weight=min_weight)

    def predict_link(
        self, left: pl.DataFrame, right: pl.DataFrame, model: TrainedModel, *, min_weight: float
    ) -> pl.DataFrame:
        """Scored pairs (a record of ``left``, a record of ``right``) at or above
        ``min_weight``; ``unique_id_l`` is always ``left``'s id."""
        if left.height == 0 or right.height == 0:
            _prepare(left, model.spec)
            _prepare(right, model.spec)
            return empty_predictions(model.spec, left.schema.get("unique_id", pl.Int64))
        return self._predict([left, right], model, link_type="link_only", min_weight=min_weight)

    # --- cluster -----------------------------------------------------------------------------

    def cluster(
        self, pairs: pl.DataFrame, *, threshold_weight: float, ids: Iterable[Any] | None = None
    ) -> pl.DataFrame:
        """Connected components of the pairs at or above ``threshold_weight``. Ids must be
        unique across both sides (a deduplication's are; for a list linkage prefix them)."""
        edges = pairs.filter(pl.col("match_weight") >= threshold_weight).select(
            "unique_id_l", "unique_id_r"
        )
        if ids is None:
            nodes = pl.concat(
                [
                    pairs["unique_id_l"].rename("unique_id"),
                    pairs["unique_id_r"].rename("unique_id"),
                ]
            ).unique()
        else:
            nodes = pl.Series("unique_id", list(ids)).unique()
            edges = edges.cast({"unique_id_l": nodes.dtype, "unique_id_r": nodes.dtype})
        if nodes.is_empty():
            return pl.DataFrame(schema={"unique_id": nodes.dtype, "cluster_id": nodes.dtype})
        api = self._new_api()
        try:
            node_table = self._register(api, nodes.to_frame(), self._table_name("pilar_nodes"))
            edge_table = self._register(api, edges, self._table_name("pilar_edges"))
            clusters = cluster_pairwise_predictions_at_threshold(
                node_table,
                edge_table,
                db_api=api,
                node_id_column_name="unique_id",
                # The edges are already those at or above the threshold.
            )
            table = clusters.physical_name
            # A table name Splink generated, never user input.
            result = self._query(api, f"select unique_id, cluster_id from {table}")  # noqa: S608
        finally:
            self._close(api)
        # Splink names a cluster after one of its ids; Pilar after the smallest, so both
        # engines label clusters alike.
        return (
            result.with_columns(pl.col("unique_id").cast(nodes.dtype))
            .with_columns(pl.col("unique_id").min().over("cluster_id").alias("cluster_id"))
            .sort("unique_id")
        )


# --- DuckDB ----------------------------------------------------------------------------------


class DuckDBEngine(SplinkEngine):
    """Splink on an in-process DuckDB, one fresh database per call."""

    name = "duckdb"
    dialect: Dialect = "duckdb"

    def __init__(
        self,
        *,
        memory_limit: str = "6GB",
        threads: int | None = None,
        temp_directory: str | None = None,
        chunk_records: int = 400_000,
    ) -> None:
        self.memory_limit = memory_limit
        self.threads = threads
        self.temp_directory = temp_directory
        self.chunk_records = chunk_records
        self._spill: dict[int, str] = {}

    def _new_api(self) -> Any:
        import duckdb
        from splink import DuckDBAPI

        spill = tempfile.mkdtemp(prefix="pilar-duckdb-", dir=self.temp_directory)
        config: dict[str, Any] = {
            "memory_limit": self.memory_limit,
            "temp_directory": spill,
            "preserve_insertion_order": False,
        }
        if self.threads:
            config["threads"] = self.threads
        api = DuckDBAPI(duckdb.connect(":memory:", config=config))
        self._spill[id(api)] = spill
        return api

    def _register(self, api: Any, frame: pl.DataFrame, name: str) -> Any:
        connection = api.duckdb_con
        view = f"{name}_arrow"
        connection.register(view, frame.to_arrow())
        # A table, not a view over the Arrow data: Splink reads the input many times.
        # Names generated by the engine (prefix and random suffix), never user input.
        connection.execute(f"create table {name} as select * from {view}")  # noqa: S608
        connection.unregister(view)
        return api.register(name)

    def _query(self, api: Any, sql: str) -> pl.DataFrame:
        return pl.DataFrame(pl.from_arrow(api.duckdb_con.sql(sql).to_arrow_table()))

    def _close(self, api: Any) -> None:
        api.duckdb_con.close()
        spill = self._spill.pop(id(api), None)
        if spill:
            shutil.rmtree(spill, ignore_errors=True)


# --- Spark -----------------------------------------------------------------------------------


def local_spark_session(
    *, cores: int = 2, memory: str = "4g", app_name: str = "pilar-linkage"
) -> Any:
    """A local Spark session with Splink's similarity functions (Jaro-Winkler, Damerau-
    Levenshtein) on the class path."""
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    # Python workers must run this interpreter, where Pilar and pandas are installed (Spark
    # reads the variable when it starts a worker; the configuration keys below are not enough
    # in local mode).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    checkpoints = Path(tempfile.mkdtemp(prefix="pilar-spark-"))
    session = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app_name)
        .config("spark.driver.memory", memory)
        .config("spark.jars", similarity_jar_location())
        .config("spark.pyspark.python", sys.executable)
        .config("spark.sql.shuffle.partitions", str(max(4, cores * 4)))
        .config("spark.default.parallelism", str(max(4, cores * 4)))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setCheckpointDir(str(checkpoints))
    # Splink re-registers its functions on every run, which Spark reports as a warning each time.
    session.sparkContext.setLogLevel("ERROR")
    return session


def _register_jaro_winkler(spark: Any, *, exact: bool) -> None:
    """Register ``pilar_jaro_winkler``: Pilar's (DuckDB's) definition as a vectorised Python
    function — Spark's Python workers must be able to import ``pilar`` —, or, ``exact`` False,
    Splink's faster Scala one, which disagrees with DuckDB on about one name pair in two hundred
    near the 0.92 threshold."""
    if not exact:
        from pyspark.sql.types import DoubleType

        spark.udf.registerJavaFunction(
            SPARK_JARO_WINKLER, "uk.gov.moj.dash.linkage.JaroWinklerSimilarity", DoubleType()
        )
        return
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    def similarity(first: pd.Series, second: pd.Series) -> pd.Series:
        return pd.Series(
            [
                None if pd.isna(a) or pd.isna(b) else jaro_winkler(str(a), str(b))
                for a, b in zip(first, second, strict=True)
            ],
            dtype="float64",
        )

    # pyspark reads the type hints to pick a vectorised UDF; this module's postponed
    # annotations are strings naming a local import, so give it the types themselves.
    similarity.__annotations__ = {"first": pd.Series, "second": pd.Series, "return": pd.Series}
    # Through an untyped name: pyspark's stubs miss this call form, and without pyspark
    # installed (a plain `make test`) the function is untyped anyway; one spelling serves both.
    make_udf: Any = pandas_udf
    spark.udf.register(SPARK_JARO_WINKLER, make_udf(similarity, "double"))


class SparkEngine(SplinkEngine):
    """Splink on a Spark session (``local_spark_session()`` or a cluster's). By default
    Jaro-Winkler runs with Pilar's definition, so Spark's scores equal DuckDB's and
    ``scoring.score_pair``'s; ``exact_jaro_winkler=False`` uses Splink's Scala function, faster
    and off by a level for about one name pair in two hundred near the threshold."""

    name = "spark"
    dialect: Dialect = "spark"

    def __init__(
        self,
        spark_session: Any,
        *,
        chunk_records: int = 2_000_000,
        exact_jaro_winkler: bool = True,
    ) -> None:
        self.spark = spark_session
        self.chunk_records = chunk_records
        self.exact_jaro_winkler = exact_jaro_winkler

    def _new_api(self) -> Any:
        from splink import SparkAPI

        api = SparkAPI(spark_session=self.spark, break_lineage_method="persist")
        _register_jaro_winkler(self.spark, exact=self.exact_jaro_winkler)
        return api

    def _register(self, api: Any, frame: pl.DataFrame, name: str) -> Any:
        self.spark.createDataFrame(frame.to_arrow()).createOrReplaceTempView(name)
        return api.register(name)

    def _query(self, api: Any, sql: str) -> pl.DataFrame:
        return pl.DataFrame(pl.from_arrow(self.spark.sql(sql).toArrow()))

    def _close(self, api: Any) -> None:
        for table in self.spark.catalog.listTables():
            if table.isTemporary and table.name.startswith(("pilar_", "__splink")):
                self.spark.catalog.dropTempView(table.name)
        self.spark.catalog.clearCache()


def engine_for(name: str, **options: Any) -> LinkageEngine:
    """``duckdb`` (options: memory_limit, threads, temp_directory, chunk_records) or ``spark``
    (options: spark_session — a local session by default —, chunk_records)."""
    if name == "duckdb":
        return DuckDBEngine(**options)
    if name == "spark":
        session = options.pop("spark_session", None) or local_spark_session()
        return SparkEngine(session, **options)
    raise EngineError("unknown_engine", name=name)
