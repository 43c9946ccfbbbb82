"""The linkage specification (comparisons, blocking rules, training rules) and the model file:
Pilar's envelope around Splink's settings JSON, with the trained m/u, λ and the term-frequency
tables that scoring one pair needs.

Public API:

- ``Key``, ``BlockingRule`` (``key``, ``equalities``, ``sql()``), ``rule(*keys)``,
  ``LinkageSpec`` (``name``,
  ``comparisons``, ``blocking_rules``, ``training_rules``, ``deterministic_rules``,
  ``deterministic_recall``, ``splink_settings(dialect, ...)``), ``PERSON_SPEC``.
- ``TrainedModel``: m/u per comparison level, λ (``probability_two_random_records_match``),
  term frequencies, thresholds, ``sha256``, ``to_document()`` / ``to_json()``.
- ``load_model(text_or_dict, *, spec=PERSON_SPEC) -> TrainedModel`` raising
  ``ModelFileError(code, params)`` with ``code`` one of ``not_json``, ``not_a_model``,
  ``format_version``, ``feature_version``, ``splink_version``, ``missing_comparisons``,
  ``comparison_levels``, ``invalid_parameters`` (the Django layer translates the code).
- ``model_document``, ``model_summary``, ``thresholds_of``: what ``services`` stores.
- ``DEFAULT_MODEL``: a hand-set person model for a node that has not trained one.

The model file::

    {"pilar_model_format": 1, "feature_version": 1, "splink_version": "5.0.0",
     "name": "persons", "trained_at": "2025-…Z",
     "summary": {"spec": "persons", "probability_two_random_records_match": …,
                 "comparisons": [{"name": …, "levels": [{"gamma", "key", "label", "m", "u",
                                  "bayes_factor", "weight"}]}],
                 "term_frequencies": {"given_std": {"floor": …, "values": {…}}, …},
                 "thresholds": {"auto_link_weight": …, "review_weight": …},
                 "training": {…}},
     "splink": <Splink's settings JSON, m/u included>}

The stored Splink settings are in the SQL of the engine that trained the model; another engine
does not translate that SQL but rebuilds the settings for its own dialect from the spec and the
m/u (``TrainedModel.splink_settings(dialect)``), so a model trained on DuckDB runs on Spark.

Term frequencies: Splink normally computes them from the data being linked. Pilar computes them
once, at training, and keeps them in the model file (the values seen at least twice, the
``TF_TABLE_SIZE`` most frequent per column; every other value gets the ``floor``, the lowest
stored frequency, which is also Splink's ``tf_minimum_u_value``). The engines hand these tables
to Splink instead of letting it count, so a batch run, a list linkage of 300 rows and the point
of entry scoring one record all use the same frequencies and ``scoring.score_pair`` equals
Splink's ``match_weight``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import splink

from pilar.linkage.comparisons import PERSON_COMPARISONS, Comparison, Dialect
from pilar.linkage.features import FEATURE_VERSION

MODEL_FORMAT = 1
LinkType = Literal["dedupe_only", "link_only"]

# Splink clamps m and u at this value before taking logarithms; scoring does the same.
M_U_CLAMP_MIN = 1e-300
# No m below this: expectation maximisation drives the m of a level that true matches never
# show in the training data (two records of one person with different sex, in seeded data) to
# 1e-19 and the level would veto any match by 60 bits; real clerks do make such errors, and a
# veto should come from evidence, not from its absence. At 1e-4 the level still weighs about
# -12 against an agreement on everything else.
M_FLOOR = 1e-4
TF_TABLE_SIZE = 5000


class ModelFileError(Exception):
    """A model file that cannot be used. ``code`` is stable; ``params`` name what differs."""

    def __init__(self, code: str, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(f"{code}: {params}" if params else code)


# --- specification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """A blocking key: a column, or the first ``length`` characters of it (the year and month
    of an ISO date are ``Key("birth_date", 7)``)."""

    column: str
    length: int | None = None

    def sql(self, side: str) -> str:
        if self.length is None:
            return f"{side}.{self.column}"
        return f"substr({side}.{self.column}, 1, {self.length})"


@dataclass(frozen=True)
class BlockingRule:
    """Pairs agree on every (left key, right key) equality. Structured rather than SQL so the
    point of entry can turn the same rules into indexed lookups."""

    key: str
    equalities: tuple[tuple[Key, Key], ...]

    def sql(self) -> str:
        return " and ".join(
            f"{left.sql('l')} = {right.sql('r')}" for left, right in self.equalities
        )

    @property
    def columns(self) -> tuple[str, ...]:
        seen: list[str] = []
        for left, right in self.equalities:
            for key in (left, right):
                if key.column not in seen:
                    seen.append(key.column)
        return tuple(seen)


def rule(*keys: str | Key, name: str | None = None) -> BlockingRule:
    """Agreement on each of ``keys`` (column names or ``Key``s)."""
    parsed = [key if isinstance(key, Key) else Key(key) for key in keys]
    default_name = "+".join(
        key.column if key.length is None else f"{key.column}[:{key.length}]" for key in parsed
    )
    return BlockingRule(name or default_name, tuple((key, key) for key in parsed))


@dataclass(frozen=True)
class LinkageSpec:
    """What a model compares and how pairs are generated."""

    name: str
    comparisons: tuple[Comparison, ...]
    blocking_rules: tuple[BlockingRule, ...]
    # Expectation maximisation runs once per rule; each comparison must be free (not used by
    # the rule) in at least one of them so its m is estimated.
    training_rules: tuple[BlockingRule, ...]
    # Pairs these rules find are taken as matches to estimate λ, with the assumed recall.
    deterministic_rules: tuple[BlockingRule, ...]
    deterministic_recall: float
    unique_id_column: str = "unique_id"
    # m and u per level (strongest first, null levels left out) for what training cannot
    # estimate: the m of a level no training pair shows (two records of one person sharing an
    # NSS, in data where a second record always has a second NSS).
    fallback_parameters: Mapping[str, Sequence[tuple[float, float]]] = field(default_factory=dict)
    # Thresholds (match weight, prior included) suggested for a model of this spec.
    auto_link_weight: float = 12.0
    review_weight: float = 3.0

    @property
    def comparison_names(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.comparisons)

    def comparison(self, name: str) -> Comparison:
        for item in self.comparisons:
            if item.name == name:
                return item
        raise KeyError(name)

    @property
    def tf_columns(self) -> tuple[str, ...]:
        columns: list[str] = []
        for item in self.comparisons:
            columns.extend(column for column in item.tf_columns if column not in columns)
        return tuple(columns)

    def splink_settings(
        self,
        dialect: Dialect,
        *,
        link_type: LinkType = "dedupe_only",
        parameters: Mapping[str, Mapping[int, tuple[float | None, float | None]]] | None = None,
        probability_two_random_records_match: float = 1e-4,
        tf_minimum_u_value: Mapping[str, float] | None = None,
        retain_matching_columns: bool = False,
    ) -> dict[str, Any]:
        """Splink's settings dict for ``dialect``, with m/u when ``parameters`` are given."""
        return {
            "link_type": link_type,
            "unique_id_column_name": self.unique_id_column,
            "probability_two_random_records_match": probability_two_random_records_match,
            "retain_matching_columns": retain_matching_columns,
            "retain_intermediate_calculation_columns": False,
            "additional_columns_to_retain": [],
            "blocking_rules_to_generate_predictions": [
                {"blocking_rule": item.sql()} for item in self.blocking_rules
            ],
            "comparisons": [
                item.splink_dict(
                    dialect,
                    parameters=(parameters or {}).get(item.name),
                    tf_minimum_u_value=tf_minimum_u_value,
                )
                for item in self.comparisons
            ],
            "sql_dialect": dialect,
        }


# --- hand-set parameters -----------------------------------------------------------------------

# Hand-set m and u per level, strongest level first (the null levels have none), for a node
# that has not trained a model yet and for the levels training cannot estimate.
#
# The u are what random pairs of a Mexican registry show (a given name shared by about 1 in 200
# random pairs, a pair of surnames by 1 in 5,000, a birth date by 1 in 25,000); the m what
# clerical errors do to true duplicates. They are set by hand, not copied from a trained model,
# and are more cautious than one on purpose: models trained on the seeded registries (high
# noise, 100,000 and 1,000,000 persons) give a nickname (canonical) agreement 10 bits where this
# gives 6.6, a different NSS and a different sex or birth state m ≈ 1 and ≈ 0.0001 where this
# keeps 0.30, 0.02 and 0.10 (the seeder never gives a duplicate the same NSS, and never gets sex
# or birth state wrong; clerks do), a different CURP m 0.38 where this keeps 0.05 (seeded
# duplicates carry a CURP computed from the mistyped data; RENAPO's CURPs rarely change). An
# exact CURP or NSS (never seen among seeded duplicates, whose identifiers are unique by
# construction) takes m 0.55 and 0.70 here and in trained models alike.
_DEFAULT_PARAMETERS: dict[str, Sequence[tuple[float, float]]] = {
    "given": (
        (0.70, 0.005),  # exact
        (0.05, 0.0005),  # canonical (nickname)
        (0.10, 0.004),  # main given name
        (0.06, 0.03),  # one name in common
        (0.05, 0.002),  # Jaro-Winkler
        (0.01, 0.002),  # phonetic
        (0.01, 0.005),  # one edit
        (0.02, 0.9515),  # else
    ),
    "surnames": (
        (0.64, 0.0002),  # exact
        (0.05, 0.00002),  # swapped
        (0.07, 0.0004),  # one missing
        (0.02, 0.0001),  # one missing, the other similar
        (0.09, 0.0003),  # both similar
        (0.05, 0.003),  # paternal equal only
        (0.02, 0.0002),  # both sound alike
        (0.04, 0.02),  # one similar
        (0.02, 0.97578),  # else
    ),
    "birth_date": (
        (0.80, 0.00004),  # exact
        (0.04, 0.00001),  # day and month swapped
        (0.08, 0.0004),  # one edit
        (0.05, 0.0008),  # close
        (0.01, 0.012),  # same year
        (0.02, 0.98675),  # else
    ),
    "curp": (
        (0.55, 0.000001),  # exact
        (0.05, 0.000001),  # same stem
        (0.20, 0.000002),  # one's stem is the other's derived stem
        (0.15, 0.00005),  # no CURP on one side, stems close
        (0.05, 0.999946),  # else: a different CURP
    ),
    "nss": (
        (0.70, 0.000001),  # exact
        (0.30, 0.999999),  # else: a different NSS
    ),
    "sex": (
        (0.98, 0.5),  # exact
        (0.02, 0.5),  # else
    ),
    "birth_state": (
        (0.90, 0.08),  # exact
        (0.10, 0.92),  # else
    ),
}

PERSON_SPEC = LinkageSpec(
    name="persons",
    comparisons=PERSON_COMPARISONS,
    blocking_rules=(
        rule("derived_stem"),
        rule("curp"),
        rule("nss"),
        rule("birth_date", "paternal_phon"),
        rule("birth_date", "given_phon"),
        rule("surnames_sorted", "birth_year"),
        # Day and month exchanged. One orientation suffices: swapping is its own inverse, so
        # l.swapped = r.date exactly when r.swapped = l.date.
        BlockingRule(
            "birth_date_swapped+paternal_phon",
            (
                (Key("birth_date_swapped"), Key("birth_date")),
                (Key("paternal_phon"), Key("paternal_phon")),
            ),
        ),
        rule("given_main", "paternal_std", "birth_year"),
        # A wrong birth day together with a mistyped or missing surname: the first three
        # rules catch what the seeded high-noise data loses to the rules above (measured in
        # the module docstring of linkage.engine).
        rule("given_main", Key("birth_date", 7), "birth_state"),
        rule("given_std", "maternal_std", "birth_year"),
        rule("given_phon", "paternal_phon", "birth_year"),
    ),
    # birth_date's m comes from the session on full names: blocking on paternal surname and main
    # given name instead gave, at 1,000,000 persons with few errors, so many namesakes per block
    # that expectation maximisation took "same date" for "same person" and drove the m of a
    # one-digit date error to nothing (recall at weight 0: 0.94; with full names: 0.996).
    training_rules=(
        rule("birth_date"),
        rule("given_std", "paternal_std", "maternal_std"),
        rule("derived_stem"),
    ),
    deterministic_rules=(
        rule("curp"),
        rule("given_std", "paternal_std", "maternal_std", "birth_date"),
    ),
    deterministic_recall=0.7,
    fallback_parameters=_DEFAULT_PARAMETERS,
    # The product's defaults (LinkageModel's too), which a steward tunes per model. Measured
    # on the seeded registries (high noise, 1,000,000 persons, trained model): pairs at weight
    # 12 or more are 99.9% right and hold 78% of the true pairs; from 3 to 12 lie another 18%,
    # 19 in 20 of them true; below 3, 3.5% more, half of them true (at -5: precision 0.96,
    # recall 0.985) — lowering the review threshold to 0 or -5 finds them at the price of a
    # longer review queue and more candidates shown at the point of entry.
    auto_link_weight=12.0,
    review_weight=3.0,
)


# --- term frequencies ------------------------------------------------------------------------


@dataclass(frozen=True)
class TermFrequencies:
    """The relative frequency of the common values of one column; ``floor`` for the rest."""

    floor: float
    values: Mapping[str, float]

    def of(self, value: Any) -> float | None:
        if value is None:
            return None
        return self.values.get(str(value), self.floor)

    def as_dict(self) -> dict[str, Any]:
        return {"floor": self.floor, "values": dict(self.values)}


def complete_parameters(
    spec: LinkageSpec,
    estimated: Mapping[str, Mapping[int, tuple[float | None, float | None]]],
    *,
    u_pairs: float,
) -> tuple[dict[str, dict[int, tuple[float, float]]], list[str]]:
    """Fill what training could not estimate and apply ``M_FLOOR``; returns the parameters and
    what was filled ("<comparison>.<level>.m" or ".u").

    An m nobody estimated comes from the spec's fallback (else ``M_FLOOR``); a u no sampled pair
    showed is taken as half a pair in ``u_pairs`` (the usual estimate of a rate never observed,
    and below every u that was observed), where Splink would use 1e-6 — more than the u of a
    CURP stem agreement it did observe."""
    completed: dict[str, dict[int, tuple[float, float]]] = {}
    filled: list[str] = []
    unobserved_u = 0.5 / max(u_pairs, 1.0)
    for item in spec.comparisons:
        fallback = list(spec.fallback_parameters.get(item.name, ()))
        completed[item.name] = {}
        index = 0
        for level, gamma in zip(item.levels, item.gammas, strict=True):
            if level.is_null:
                continue
            m, u = estimated.get(item.name, {}).get(gamma, (None, None))
            if m is None:
                filled.append(f"{item.name}.{level.key}.m")
                m = fallback[index][0] if index < len(fallback) else M_FLOOR
            if u is None:
                filled.append(f"{item.name}.{level.key}.u")
                u = unobserved_u
            completed[item.name][gamma] = (max(m, M_FLOOR), u)
            index += 1
    return completed, filled


def term_frequencies_from_counts(
    counts: Mapping[str, int], *, total: int, size: int = TF_TABLE_SIZE
) -> TermFrequencies:
    """Keep the ``size`` most frequent values seen at least twice."""
    total = max(total, 1)
    common = sorted(
        ((value, count) for value, count in counts.items() if count >= 2),
        key=lambda item: (-item[1], item[0]),
    )[:size]
    values = {value: count / total for value, count in common}
    floor = min(values.values()) if values else 1.0 / total
    return TermFrequencies(floor=floor, values=values)


# --- the trained model -----------------------------------------------------------------------


@dataclass(frozen=True)
class LevelParameters:
    gamma: int
    key: str
    label: str
    m: float
    u: float

    @property
    def bayes_factor(self) -> float:
        return max(self.m, M_U_CLAMP_MIN) / max(self.u, M_U_CLAMP_MIN)

    @property
    def weight(self) -> float:
        return math.log2(self.bayes_factor)


@dataclass(frozen=True)
class TrainedModel:
    spec: LinkageSpec
    name: str
    probability_two_random_records_match: float
    # comparison name → gamma → (m, u); every non-null level has both.
    parameters: Mapping[str, Mapping[int, tuple[float, float]]]
    term_frequencies: Mapping[str, TermFrequencies]
    trained_at: datetime.datetime
    auto_link_weight: float
    review_weight: float
    training: Mapping[str, Any] = field(default_factory=dict)
    splink_version: str = splink.__version__
    feature_version: int = FEATURE_VERSION
    # The dialect whose SQL the stored Splink settings carry (the engine that trained it).
    dialect: Dialect = "duckdb"

    @property
    def thresholds(self) -> dict[str, float]:
        return {"auto_link_weight": self.auto_link_weight, "review_weight": self.review_weight}

    @property
    def prior_weight(self) -> float:
        probability = self.probability_two_random_records_match
        return math.log2(probability / (1.0 - probability))

    def level(self, comparison: str, gamma: int) -> LevelParameters:
        item = self.spec.comparison(comparison)
        level = item.level_for_gamma(gamma)
        m, u = self.parameters[comparison][gamma]
        return LevelParameters(gamma, level.key, level.label, m, u)

    def tf_minimum_u_value(self) -> dict[str, float]:
        return {column: table.floor for column, table in self.term_frequencies.items()}

    def splink_settings(
        self,
        dialect: Dialect | None = None,
        *,
        link_type: LinkType = "dedupe_only",
        retain_matching_columns: bool = False,
    ) -> dict[str, Any]:
        """Splink's settings for this model in ``dialect`` (default: the training dialect)."""
        return self.spec.splink_settings(
            dialect or self.dialect,
            link_type=link_type,
            parameters=self.parameters,
            probability_two_random_records_match=self.probability_two_random_records_match,
            tf_minimum_u_value=self.tf_minimum_u_value(),
            retain_matching_columns=retain_matching_columns,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "spec": self.spec.name,
            "probability_two_random_records_match": self.probability_two_random_records_match,
            "prior_weight": self.prior_weight,
            "comparisons": [
                {
                    "name": item.name,
                    "description": item.description,
                    "levels": [
                        {
                            "gamma": gamma,
                            "key": level.key,
                            "label": level.label,
                            **(
                                {}
                                if level.is_null
                                else _level_numbers(self.level(item.name, gamma))
                            ),
                        }
                        for level, gamma in zip(item.levels, item.gammas, strict=True)
                    ],
                }
                for item in self.spec.comparisons
            ],
            "term_frequencies": {
                column: table.as_dict() for column, table in self.term_frequencies.items()
            },
            "thresholds": self.thresholds,
            "training": dict(self.training),
        }

    def to_document(self) -> dict[str, Any]:
        return {
            "pilar_model_format": MODEL_FORMAT,
            "feature_version": self.feature_version,
            "splink_version": self.splink_version,
            "name": self.name,
            "trained_at": self.trained_at.astimezone(datetime.UTC).isoformat(),
            "summary": self.summary(),
            "splink": self.splink_settings(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @property
    def sha256(self) -> str:
        """Of the canonical JSON (keys sorted, no spaces) of the model file."""
        return hashlib.sha256(canonical_json(self.to_document()).encode()).hexdigest()


def _level_numbers(level: LevelParameters) -> dict[str, float]:
    return {
        "m": level.m,
        "u": level.u,
        "bayes_factor": level.bayes_factor,
        "weight": level.weight,
    }


def canonical_json(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def model_document(trained: TrainedModel) -> dict[str, Any]:
    """The model file as a dict (what ``LinkageModel.definition`` stores)."""
    return trained.to_document()


def model_summary(trained: TrainedModel) -> dict[str, Any]:
    """The summary for the model pages: the document's summary without the term-frequency
    tables (their sizes instead), which can hold thousands of values."""
    summary = trained.summary()
    summary["term_frequencies"] = {
        column: {"floor": table.floor, "values": len(table.values)}
        for column, table in trained.term_frequencies.items()
    }
    return summary


def thresholds_of(trained: TrainedModel) -> tuple[float, float]:
    """(auto-link weight, review weight) suggested by the model."""
    return trained.auto_link_weight, trained.review_weight


# --- loading ---------------------------------------------------------------------------------


def _major(version: str) -> str:
    return str(version).split(".", 1)[0]


def _probability(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ModelFileError("invalid_parameters", where=what)
    number = float(value)
    if not 0.0 <= number <= 1.0 or math.isnan(number):
        raise ModelFileError("invalid_parameters", where=what)
    return number


def load_model(
    source: str | bytes | Mapping[str, Any], *, spec: LinkageSpec = PERSON_SPEC
) -> TrainedModel:
    """Read a model file (JSON text or the parsed dict) made for ``spec``. Refuses, with the
    first problem found, a file that is not JSON, not a Pilar model, of another format, feature
    version or Splink major version, or that lacks one of the spec's comparisons."""
    if isinstance(source, Mapping):
        document: Any = source
    else:
        try:
            document = json.loads(source)
        except (ValueError, UnicodeDecodeError):
            raise ModelFileError("not_json") from None
    if not isinstance(document, Mapping) or "pilar_model_format" not in document:
        raise ModelFileError("not_a_model")
    if document.get("pilar_model_format") != MODEL_FORMAT:
        raise ModelFileError(
            "format_version", found=document.get("pilar_model_format"), expected=MODEL_FORMAT
        )
    if document.get("feature_version") != FEATURE_VERSION:
        raise ModelFileError(
            "feature_version", found=document.get("feature_version"), expected=FEATURE_VERSION
        )
    splink_version = str(document.get("splink_version", ""))
    if _major(splink_version) != _major(splink.__version__):
        raise ModelFileError("splink_version", found=splink_version, expected=splink.__version__)
    settings = document.get("splink")
    summary = document.get("summary")
    if not isinstance(settings, Mapping) or not isinstance(summary, Mapping):
        raise ModelFileError("not_a_model")
    comparisons = settings.get("comparisons")
    if not isinstance(comparisons, list):
        raise ModelFileError("not_a_model")
    by_name = {
        item.get("output_column_name"): item for item in comparisons if isinstance(item, Mapping)
    }
    missing = [name for name in spec.comparison_names if name not in by_name]
    if missing:
        raise ModelFileError("missing_comparisons", missing=missing)
    parameters: dict[str, dict[int, tuple[float, float]]] = {}
    for item in spec.comparisons:
        levels = by_name[item.name].get("comparison_levels")
        if not isinstance(levels, list) or len(levels) != len(item.levels):
            raise ModelFileError(
                "comparison_levels",
                comparison=item.name,
                found=len(levels) if isinstance(levels, list) else None,
                expected=len(item.levels),
            )
        parameters[item.name] = {}
        for level, gamma, stored in zip(item.levels, item.gammas, levels, strict=True):
            if level.is_null:
                continue
            if not isinstance(stored, Mapping):
                raise ModelFileError("invalid_parameters", where=f"{item.name}.{level.key}")
            where = f"{item.name}.{level.key}"
            parameters[item.name][gamma] = (
                _probability(stored.get("m_probability"), where),
                _probability(stored.get("u_probability"), where),
            )
    probability = _probability(
        settings.get("probability_two_random_records_match"), "probability_two_random_records_match"
    )
    if not 0.0 < probability < 1.0:
        raise ModelFileError("invalid_parameters", where="probability_two_random_records_match")
    term_frequencies: dict[str, TermFrequencies] = {}
    stored_tf = summary.get("term_frequencies") or {}
    if not isinstance(stored_tf, Mapping):
        raise ModelFileError("invalid_parameters", where="term_frequencies")
    for column in spec.tf_columns:
        table = stored_tf.get(column)
        if table is None:
            continue
        if not isinstance(table, Mapping) or not isinstance(table.get("values"), Mapping):
            raise ModelFileError("invalid_parameters", where=f"term_frequencies.{column}")
        floor = _probability(table.get("floor"), f"term_frequencies.{column}")
        values = {
            str(value): _probability(frequency, f"term_frequencies.{column}")
            for value, frequency in table["values"].items()
        }
        if floor <= 0.0:
            raise ModelFileError("invalid_parameters", where=f"term_frequencies.{column}")
        term_frequencies[column] = TermFrequencies(floor=floor, values=values)
    thresholds = summary.get("thresholds") or {}
    auto_link = thresholds.get("auto_link_weight", spec.auto_link_weight)
    review = thresholds.get("review_weight", spec.review_weight)
    if not all(
        isinstance(value, int | float) and math.isfinite(value) for value in (auto_link, review)
    ):
        raise ModelFileError("invalid_parameters", where="thresholds")
    try:
        trained_at = datetime.datetime.fromisoformat(str(document.get("trained_at")))
    except ValueError:
        raise ModelFileError("invalid_parameters", where="trained_at") from None
    if trained_at.tzinfo is None:
        trained_at = trained_at.replace(tzinfo=datetime.UTC)
    dialect = settings.get("sql_dialect", "duckdb")
    return TrainedModel(
        spec=spec,
        name=str(document.get("name") or spec.name),
        probability_two_random_records_match=probability,
        parameters=parameters,
        term_frequencies=term_frequencies,
        trained_at=trained_at,
        auto_link_weight=float(auto_link),
        review_weight=float(review),
        training=dict(summary.get("training") or {}),
        splink_version=splink_version,
        feature_version=int(document["feature_version"]),
        dialect="spark" if dialect == "spark" else "duckdb",
    )


# --- the default model -----------------------------------------------------------------------


def _default_model() -> TrainedModel:
    parameters: dict[str, dict[int, tuple[float, float]]] = {}
    for item in PERSON_SPEC.comparisons:
        values = list(_DEFAULT_PARAMETERS[item.name])
        gammas = [
            gamma
            for level, gamma in zip(item.levels, item.gammas, strict=True)
            if not level.is_null
        ]
        parameters[item.name] = dict(zip(gammas, values, strict=True))
    return TrainedModel(
        spec=PERSON_SPEC,
        name="persons",
        # One duplicate pair in 100,000 random pairs: deliberately generous (a trained model of
        # a registry of 100,000 persons with 5% duplicates says 1e-6), so a new node without a
        # trained model warns the clerk about likely duplicates rather than miss them; the
        # review threshold (3) keeps namesakes born on another day out.
        probability_two_random_records_match=1e-5,
        parameters=parameters,
        # No frequencies without data: the exact levels keep their hand-set weight.
        term_frequencies={},
        trained_at=datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
        auto_link_weight=PERSON_SPEC.auto_link_weight,
        review_weight=PERSON_SPEC.review_weight,
        training={"default": True},
    )


DEFAULT_MODEL = _default_model()
