"""Point of entry: the match keys of registry persons and the indexed candidate search that
runs before a person is registered (web form, API, bulk file).

``MatchKey`` holds each active person's feature columns (``features.record_features``), with
database indexes on the blocking keys. ``find_candidates`` computes the would-be record's
features, gathers the persons sharing any blocking key in **one** query — a ``UNION ALL`` of
indexed lookups, each with its own ``LIMIT`` so one very common key (a frequent surname pair,
a popular birth date) cannot make the query slow — and scores them in Python with
``scoring.score_pair`` and the active model's m/u (or ``DEFAULT_MODEL`` on a node that has not
trained one). Those at or above the model's review threshold are returned, best first.

Keys are kept current by the registry services (register, update, identifier changes) and by
merges (``refresh_match_keys``); ``rebuild_match_keys`` recomputes them all in bulk (after a
seed or an import that bypassed the services, or when ``FEATURE_VERSION`` changes):
``pilar linkage_keys``.

The lookups (``_blocking_lookups``): the derived CURP stem (and a typed CURP's stem against
the others' derived stems), CURP, NSS, birth date with the paternal phonetic key (also against
the maternal one: swapped surnames), birth date with the given-name key, sorted surnames with
the given-name key, the day/month-swapped date with either name key, and a window of ±10 birth
days with one name key where a second name also agrees (a wrong day together with a typo or a
missing maternal surname). Measured on PostgreSQL with 1,000,000 seeded persons on this 2-core
machine shared with other work: one query of 0.2–4 ms using only MatchKey's indexes, the whole
``find_candidates`` 2–15 ms at p95 (the rest is scoring in Python), and 98 % of high-noise
second records (``seeding.errors.make_duplicate``) find their original.

Only persons with status ``active`` have a key: a merged record is represented by its golden
record, and an inactive one is not offered as the person to use. Persons that have no key yet
(loaded in bulk before a rebuild) are still caught when their normalised names and birth date
equal the new record's, through the registry's own name index, and scored from their record.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl
from django.db import connection, models, transaction
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from pilar.core import bulk
from pilar.core.actor import Actor
from pilar.core.errors import FieldErrors, PermissionDenied
from pilar.core.identifiers import CURP, NSS
from pilar.core.roles import Perm
from pilar.core.text import normalized_full_name
from pilar.linkage.features import FEATURE_VERSION, person_features, record_features
from pilar.linkage.model import DEFAULT_MODEL, load_model
from pilar.linkage.models import LinkageModel, MatchKey
from pilar.linkage.scoring import Score, score_pair
from pilar.registry import validation
from pilar.registry.models import Identifier, Person, RecordStatus
from pilar.registry.validation import IdentifierData, PersonData

logger = logging.getLogger("pilar.linkage")

MODEL_NAME = "persons"
# Per blocking key, at most this many persons are fetched. A true duplicate shares several
# keys with the new record (stem, birth date and surname, birth date and given name, names),
# so a key that is too common to be read in full loses little; the cap keeps the worst case of
# the query (and of the scoring that follows) bounded.
PER_KEY_LIMIT = 40
# A birth date typed a few days off (the comparisons' "close" level is 10 days).
BIRTH_DAY_WINDOW = 10
# Persons without a match key found by exact normalised names and birth date.
UNKEYED_LIMIT = 10
DEFAULT_LIMIT = 10
# Used when a model carries no review threshold of its own (the default model's is documented
# in ``linkage.model``).
FALLBACK_REVIEW_WEIGHT = 3.0

# The MatchKey columns filled from the feature column of the same name; the rest of the
# features live in the JSON column only.
KEY_COLUMNS = (
    "derived_stem",
    "curp",
    "nss",
    "given_std",
    "given_main",
    "given_phon",
    "paternal_std",
    "maternal_std",
    "paternal_phon",
    "maternal_phon",
    "surnames_sorted",
    "birth_date",
    "sex",
    "birth_state",
)
_TEXT_COLUMNS = tuple(name for name in KEY_COLUMNS if name != "birth_date")
# Every column written, in the order of the bulk writes.
WRITE_COLUMNS = ("person_id", "feature_version", *KEY_COLUMNS, "features")


def _max_length(name: str) -> int:
    column = MatchKey._meta.get_field(name)
    # Every text column of MatchKey is a CharField with a length.
    assert isinstance(column, models.CharField)
    assert column.max_length is not None
    return column.max_length


_MAX_LENGTHS = {name: _max_length(name) for name in _TEXT_COLUMNS}


def _column_text(name: str, value: object) -> str:
    """A feature value as its indexed column holds it: "" for null, cut to the column's
    length. The search passes its own values through the same function, so a very long name
    is compared on the same prefix it was stored with; the JSON keeps the whole value."""
    if value is None:
        return ""
    return str(value)[: _MAX_LENGTHS[name]]


# --- the would-be record ----------------------------------------------------------------------


def record_input(
    values: Mapping[str, Any], *, curp: str | None = None, nss: str | None = None
) -> dict[str, Any]:
    """The feature input of a person record (cleaned registry values, or a form's) with its
    CURP and NSS."""
    return {
        "unique_id": values.get("id") or 0,
        "given_names": values.get("given_names") or "",
        "paternal_surname": values.get("paternal_surname") or "",
        "maternal_surname": values.get("maternal_surname") or "",
        "sex": values.get("sex") or "",
        "birth_date": values.get("birth_date"),
        "birth_state": values.get("birth_state") or "",
        "curp": curp or None,
        "nss": nss or None,
    }


# --- match keys -------------------------------------------------------------------------------


def _identifiers_of(person_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """The active CURP and NSS of each person; the smallest value when a golden record holds
    two of one scheme (as ``linkage.sources`` reads them, so batch runs and the point of entry
    see the same record)."""
    found: dict[int, dict[str, str]] = {}
    rows = Identifier.objects.filter(
        person_id__in=person_ids, is_active=True, scheme__in=(CURP, NSS)
    ).values_list("person_id", "scheme", "value")
    for person_id, scheme, value in rows:
        held = found.setdefault(person_id, {})
        if scheme not in held or value < held[scheme]:
            held[scheme] = value
    return found


def _key_from_features(person_id: int, features: Mapping[str, Any]) -> MatchKey:
    columns: dict[str, Any] = {
        name: _column_text(name, features.get(name)) for name in _TEXT_COLUMNS
    }
    birth = features.get("birth_date")
    columns["birth_date"] = datetime.date.fromisoformat(birth) if isinstance(birth, str) else birth
    return MatchKey(
        person_id=person_id,
        feature_version=FEATURE_VERSION,
        features=_json_ready(features),
        **columns,
    )


def _json_ready(features: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: value.isoformat() if isinstance(value, datetime.date) else value
        for name, value in features.items()
    }


def refresh_match_keys(person_ids: Iterable[int]) -> None:
    """Bring the match keys of these persons up to date with their records: recompute the
    features of the active ones and upsert their keys; delete the keys of persons that are
    merged, inactive or gone. Runs in the caller's transaction (a registration and its key
    commit together)."""
    ids = sorted({int(pk) for pk in person_ids})
    if not ids:
        return
    persons = list(
        Person.objects.filter(pk__in=ids, status=RecordStatus.ACTIVE).values(
            "id",
            "given_names",
            "paternal_surname",
            "maternal_surname",
            "sex",
            "birth_date",
            "birth_state",
        )
    )
    active = [person["id"] for person in persons]
    MatchKey.objects.filter(person_id__in=ids).exclude(person_id__in=active).delete()
    if not persons:
        return
    identifiers = _identifiers_of(active)
    keys = []
    for person in persons:
        held = identifiers.get(person["id"], {})
        features = record_features(record_input(person, curp=held.get(CURP), nss=held.get(NSS)))
        keys.append(_key_from_features(person["id"], features))
    MatchKey.objects.bulk_create(
        keys,
        update_conflicts=True,
        unique_fields=["person"],
        update_fields=["feature_version", *KEY_COLUMNS, "features"],
    )


@dataclass
class RebuildResult:
    persons: int = 0
    removed: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class KeyStatus:
    """How current the match keys are: active persons, and how many lack a key or hold one
    computed by another version of the feature code."""

    persons: int
    keys: int
    missing: int
    stale: int
    orphaned: int

    @property
    def current(self) -> bool:
        return not (self.missing or self.stale or self.orphaned)


def match_key_status() -> KeyStatus:
    active = Person.objects.filter(status=RecordStatus.ACTIVE)
    return KeyStatus(
        persons=active.count(),
        keys=MatchKey.objects.count(),
        missing=active.filter(match_key__isnull=True).count(),
        stale=MatchKey.objects.exclude(feature_version=FEATURE_VERSION).count(),
        orphaned=MatchKey.objects.exclude(person__status=RecordStatus.ACTIVE).count(),
    )


_READ_SCHEMA: dict[str, Any] = {
    "unique_id": pl.Int64,
    "given_names": pl.String,
    "paternal_surname": pl.String,
    "maternal_surname": pl.String,
    "sex": pl.String,
    "birth_date": pl.String,
    "birth_state": pl.String,
    "curp": pl.String,
    "nss": pl.String,
}


def _identifier_subquery(scheme: str) -> str:
    # A correlated lookup per person through the foreign key's index: a chunk reads only its
    # own persons' identifiers instead of aggregating the whole table once per chunk.
    return (
        "(SELECT MIN(i.value) FROM registry_identifier i"  # noqa: S608 (scheme is a constant)
        f" WHERE i.person_id = p.id AND i.is_active AND i.scheme = '{scheme}')"
    )


def _read_chunk(after_id: int, size: int, *, only_stale: bool) -> pl.DataFrame:
    stale = (
        " AND NOT EXISTS (SELECT 1 FROM linkage_matchkey k"
        " WHERE k.person_id = p.id AND k.feature_version = %s)"
        if only_stale
        else ""
    )
    # Only constants are formatted into the SQL (the schemes, the optional condition); values
    # are parameters.
    sql = (
        "SELECT p.id, p.given_names, p.paternal_surname, p.maternal_surname, p.sex,"  # noqa: S608
        " CAST(p.birth_date AS TEXT), p.birth_state,"
        f" {_identifier_subquery(CURP)}, {_identifier_subquery(NSS)}"
        " FROM registry_person p WHERE p.status = %s AND p.id > %s" + stale + " ORDER BY p.id"
        " LIMIT %s"
    )
    params: list[Any] = [RecordStatus.ACTIVE.value, after_id]
    if only_stale:
        params.append(FEATURE_VERSION)
    params.append(size)
    frame = bulk.frame_query(sql, params, _READ_SCHEMA)
    return frame.with_columns(
        [
            pl.when(pl.col(name) == "").then(None).otherwise(pl.col(name)).alias(name)
            for name in ("paternal_surname", "maternal_surname", "birth_state", "curp", "nss")
        ]
        + [pl.col("birth_date").str.slice(0, 10).str.to_date("%Y-%m-%d")]
    )


def _key_frame(features: pl.DataFrame) -> pl.DataFrame:
    """The feature frame as MatchKey rows: the indexed columns ("" for null, cut to length),
    and every feature column as one JSON text."""
    columns = [
        pl.col("unique_id").cast(pl.Int64).alias("person_id"),
        pl.lit(FEATURE_VERSION, dtype=pl.Int64).alias("feature_version"),
    ]
    for name in KEY_COLUMNS:
        if name == "birth_date":
            columns.append(pl.col(name).cast(pl.String).str.slice(0, 10).alias(name))
        else:
            columns.append(
                pl.col(name)
                .cast(pl.String)
                .fill_null("")
                .str.slice(0, _MAX_LENGTHS[name])
                .alias(name)
            )
    feature_names = list(features.columns)
    json_source = features.with_columns(
        [
            pl.col(name).cast(pl.String)
            for name, dtype in features.schema.items()
            if dtype in (pl.Date, pl.Datetime)
        ]
    )
    encoded = json_source.select(pl.struct(feature_names).struct.json_encode().alias("features"))
    return features.select(columns).with_columns(encoded["features"]).select(list(WRITE_COLUMNS))


def _write_keys(rows: pl.DataFrame) -> None:
    """Upsert MatchKey rows: PostgreSQL through ``COPY`` into a staging table and one
    ``INSERT … ON CONFLICT``; SQLite with ``executemany`` of the same upsert."""
    if rows.height == 0:
        return
    quote = connection.ops.quote_name
    table = quote(MatchKey._meta.db_table)
    column_list = ", ".join(quote(name) for name in WRITE_COLUMNS)
    updates = ", ".join(
        f"{quote(name)} = EXCLUDED.{quote(name)}" for name in WRITE_COLUMNS if name != "person_id"
    )
    connection.ensure_connection()
    if bulk.is_postgresql():
        staging = quote("linkage_matchkey_staging")
        text_columns = ", ".join(quote(name) for name in _TEXT_COLUMNS)
        data = rows.write_csv(include_header=False, quote_style="necessary")
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {staging}"
                f" (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            raw = connection.connection
            with (
                raw.cursor() as raw_cursor,
                raw_cursor.copy(
                    f"COPY {staging} ({column_list}) FROM STDIN"
                    f" (FORMAT csv, FORCE_NOT_NULL ({text_columns}))"
                ) as copy,
            ):
                copy.write(data.encode())
            # A key whose features have not changed is left alone: a rebuild that finds little
            # to change writes little (no new row versions, no index churn).
            cursor.execute(
                f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {staging}"  # noqa: S608
                f" ON CONFLICT (person_id) DO UPDATE SET {updates}"
                f" WHERE {table}.feature_version <> EXCLUDED.feature_version"
                f" OR {table}.features <> EXCLUDED.features"
            )
            cursor.execute(f"TRUNCATE {staging}")
        return
    placeholders = ", ".join("?" for _ in WRITE_COLUMNS)
    sql = (
        f"INSERT INTO {table} ({column_list}) VALUES ({placeholders})"  # noqa: S608
        f" ON CONFLICT (person_id) DO UPDATE SET {updates}"
        f" WHERE {table}.feature_version <> excluded.feature_version"
        f" OR {table}.features <> excluded.features"
    )
    raw_sqlite = connection.connection
    for offset in range(0, rows.height, bulk.SQLITE_CHUNK):
        raw_sqlite.executemany(sql, rows.slice(offset, bulk.SQLITE_CHUNK).iter_rows())


def _remove_orphaned_keys() -> int:
    """Delete the keys of persons that are no longer active (merged or deactivated without
    going through the services)."""
    removed, _per_model = MatchKey.objects.exclude(person__status=RecordStatus.ACTIVE).delete()
    return removed


def rebuild_match_keys(
    *,
    chunk: int = 100_000,
    only_stale: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RebuildResult:
    """Recompute the match keys of every active person in bulk: read a chunk of persons in id
    order, compute its features on a Polars frame (``person_features``), write them (COPY and
    upsert on PostgreSQL), commit, go on. Each chunk is its own transaction, so an interrupted
    rebuild keeps what it wrote; running it again is safe (an upsert), and with
    ``only_stale`` it continues where it stopped: only persons without a key of the current
    ``FEATURE_VERSION`` are read. Keys of persons no longer active are deleted at the end.

    ``progress(done, total)`` is called after each chunk."""
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    started = time.monotonic()
    result = RebuildResult()
    total = Person.objects.filter(status=RecordStatus.ACTIVE).count()
    after_id = 0
    while True:
        with transaction.atomic():
            frame = _read_chunk(after_id, chunk, only_stale=only_stale)
            if frame.height == 0:
                break
            _write_keys(_key_frame(person_features(frame)))
        after_id = int(frame["unique_id"].max())  # type: ignore[arg-type]
        result.persons += frame.height
        if progress is not None:
            progress(result.persons, total)
    with transaction.atomic():
        result.removed = _remove_orphaned_keys()
    if bulk.is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(MatchKey._meta.db_table)}")
    result.seconds = time.monotonic() - started
    return result


# --- the active model -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringModel:
    """The model the point of entry scores with, its review threshold, and how to name it."""

    model: Any
    review_weight: float
    label: str = "default"
    model_id: int | None = None


# Loaded models by (id, sha256): a model's definition is immutable (a retrain is a new
# version), so the parsed model stays valid until another one is activated.
_loaded: dict[tuple[int, str], Any] = {}


def _default_model() -> ScoringModel:
    return ScoringModel(DEFAULT_MODEL, _default_review_weight(DEFAULT_MODEL))


def _default_review_weight(model: Any) -> float:
    value = getattr(model, "review_weight", None)
    if isinstance(value, int | float):
        return float(value)
    thresholds = getattr(model, "thresholds", None)
    if isinstance(thresholds, Mapping) and isinstance(thresholds.get("review_weight"), int | float):
        return float(thresholds["review_weight"])
    return FALLBACK_REVIEW_WEIGHT


def scoring_model() -> ScoringModel:
    """The active ``persons`` model (parsed once per version), or the built-in default model
    when none is active. A model that no longer loads (trained with another feature version
    than the running code's) falls back to the default model, logged: registration must keep
    working while the model is retrained."""
    row = (
        LinkageModel.objects.filter(name=MODEL_NAME, is_active=True)
        .values_list("id", "sha256", "review_weight", "version")
        .first()
    )
    if row is None:
        return _default_model()
    model_id, sha256, review_weight, version = row
    model = _loaded.get((model_id, sha256))
    if model is None:
        definition = LinkageModel.objects.values_list("definition", flat=True).get(pk=model_id)
        try:
            model = load_model(definition)
        except Exception:
            logger.exception("linkage model %s does not load; the default model scores", model_id)
            return _default_model()
        _loaded.clear()
        _loaded[(model_id, sha256)] = model
    return ScoringModel(model, float(review_weight), f"{MODEL_NAME} v{version}", model_id)


# --- candidates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A registered person who may be the would-be record: the model's match weight (log2
    Bayes factor) and probability, whether a CURP or NSS on both sides disagrees, and which
    comparisons agree or differ (codes of ``linkage.comparisons``), with the full breakdown."""

    person_id: int
    name: str
    birth_date: datetime.date
    region: str
    weight: float
    probability: float
    identifier_conflict: bool
    agreeing: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)
    breakdown: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of the API and of ``PossibleDuplicate``: the registry's original four
        members (id, name, birth_date, region) and the linkage evidence."""
        return {
            "id": self.person_id,
            "name": self.name,
            "birth_date": self.birth_date.isoformat(),
            "region": self.region,
            "match_weight": round(self.weight, 2),
            "match_probability": round(self.probability, 4),
            "identifier_conflict": self.identifier_conflict,
            "agreeing": list(self.agreeing),
            "differing": list(self.differing),
            "breakdown": [_json_ready(item) for item in self.breakdown],
        }


def _blocking_lookups(features: Mapping[str, Any]) -> list[tuple[str, list[Any]]]:
    """The indexed lookups for a record's features: (WHERE condition on linkage_matchkey,
    parameters), each served by one of MatchKey's indexes."""
    lookups: list[tuple[str, list[Any]]] = []
    seen: set[tuple[str, tuple[Any, ...]]] = set()

    def add(condition: str, *values: Any) -> None:
        if any(value in (None, "") for value in values):
            return
        if (condition, values) in seen:
            return
        seen.add((condition, values))
        lookups.append((condition, list(values)))

    def column(name: str, feature: str | None = None) -> str:
        # The value of feature ``feature`` (default: the column's own) as column ``name``
        # holds it.
        return _column_text(name, features.get(feature or name))

    birth = _as_date(features.get("birth_date"))
    swapped = _as_date(features.get("birth_date_swapped"))
    add("derived_stem = %s", column("derived_stem"))
    # A typed CURP carries the stem of the names RENAPO holds, which the clerk may have typed
    # differently: look for persons whose own names give that stem.
    add("derived_stem = %s", column("derived_stem", "curp_stem"))
    add("curp = %s", column("curp"))
    add("nss = %s", column("nss"))
    add("birth_date = %s AND paternal_phon = %s", birth, column("paternal_phon"))
    # Surnames written the other way round, with a given name the nickname map does not know.
    add(
        "birth_date = %s AND paternal_phon = %s",
        birth,
        column("paternal_phon", "maternal_phon"),
    )
    add("birth_date = %s AND given_phon = %s", birth, column("given_phon"))
    add("surnames_sorted = %s AND given_phon = %s", column("surnames_sorted"), column("given_phon"))
    # Day and month exchanged (03/09 for 09/03), with either name key.
    add("birth_date = %s AND paternal_phon = %s", swapped, column("paternal_phon"))
    add("birth_date = %s AND given_phon = %s", swapped, column("given_phon"))
    if birth is not None:
        # A wrong birth day together with another slip (a typo in a surname, the maternal
        # surname left out) defeats every key above. The same two indexes serve a range of
        # days: at a million persons about 30 are born on any day, so the scan reads a few
        # hundred index entries. A second name must agree too (checked on the row, not the
        # index): sharing one name and a birth month is common, and such a pair scores below
        # the threshold anyway, so reading it would only cost scoring time.
        low, high = _days_around(birth, BIRTH_DAY_WINDOW)
        add(
            "birth_date BETWEEN %s AND %s AND paternal_phon = %s"
            " AND (given_phon = %s OR maternal_phon = %s)",
            low,
            high,
            column("paternal_phon"),
            column("given_phon"),
            column("maternal_phon") or "-",
        )
        add(
            "birth_date BETWEEN %s AND %s AND given_phon = %s"
            " AND (maternal_phon = %s OR paternal_phon = %s)",
            low,
            high,
            column("given_phon"),
            column("maternal_phon") or "-",
            column("maternal_phon") or "-",
        )
    return lookups


def _days_around(day: datetime.date, days: int) -> tuple[datetime.date, datetime.date]:
    try:
        low = day - datetime.timedelta(days=days)
    except OverflowError:
        low = datetime.date.min
    try:
        high = day + datetime.timedelta(days=days)
    except OverflowError:
        high = datetime.date.max
    return low, high


def _as_date(value: object) -> datetime.date | None:
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _candidate_rows(
    features: Mapping[str, Any], normalized_name: str, birth_date: datetime.date | None
) -> list[tuple[Any, ...]]:
    """One round trip: the persons sharing a blocking key with the record (and, without a
    match key yet, those with its exact normalised names and birth date), with what the
    candidate list shows and their stored features."""
    branches: list[str] = []
    params: list[Any] = []
    for number, (condition, values) in enumerate(_blocking_lookups(features)):
        branches.append(
            f"SELECT person_id FROM (SELECT person_id FROM linkage_matchkey WHERE {condition}"  # noqa: S608
            f" LIMIT {PER_KEY_LIMIT}) b{number}"
        )
        params += values
    if normalized_name and birth_date is not None:
        branches.append(
            "SELECT id FROM (SELECT u.id FROM registry_person u"  # noqa: S608
            " WHERE u.normalized_name = %s AND u.birth_date = %s AND u.status = %s"
            " AND NOT EXISTS (SELECT 1 FROM linkage_matchkey uk WHERE uk.person_id = u.id)"
            f" LIMIT {UNKEYED_LIMIT}) unkeyed"
        )
        params += [normalized_name, birth_date, RecordStatus.ACTIVE.value]
    if not branches:
        return []
    # The lookups' conditions are constants of ``_blocking_lookups``; every value is a parameter.
    sql = (
        "SELECT p.id, p.given_names, p.paternal_surname, p.maternal_surname, p.birth_date,"  # noqa: S608
        " p.region, k.features"
        " FROM registry_person p LEFT JOIN linkage_matchkey k ON k.person_id = p.id"
        " WHERE p.status = %s AND p.id IN (" + " UNION ALL ".join(branches) + ")"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [RecordStatus.ACTIVE.value, *params])
        return list(cursor.fetchall())


def _features_of_unkeyed(rows: Sequence[tuple[Any, ...]]) -> dict[int, dict[str, Any]]:
    """Features for candidates that have no match key yet, from their registry record."""
    ids = [row[0] for row in rows if row[6] is None]
    if not ids:
        return {}
    persons = Person.objects.filter(pk__in=ids).values(
        "id",
        "given_names",
        "paternal_surname",
        "maternal_surname",
        "sex",
        "birth_date",
        "birth_state",
    )
    identifiers = _identifiers_of(ids)
    found = {}
    for person in persons:
        held = identifiers.get(person["id"], {})
        found[person["id"]] = record_features(
            record_input(person, curp=held.get(CURP), nss=held.get(NSS))
        )
    return found


def _full_name(given: str, paternal: str, maternal: str) -> str:
    return " ".join(part for part in (given, paternal, maternal) if part)


def agreement_of(breakdown: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """The comparisons that speak for the match (partial weight above 0) and against it
    (below 0), in the breakdown's order; skipped comparisons (a side missing) are in neither.
    """
    agreeing: list[str] = []
    differing: list[str] = []
    for item in breakdown:
        weight = item.get("weight")
        if not isinstance(weight, int | float):
            continue
        if weight > 0:
            agreeing.append(str(item.get("comparison")))
        elif weight < 0:
            differing.append(str(item.get("comparison")))
    return agreeing, differing


def find_candidates(
    record: Mapping[str, Any],
    *,
    exclude_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
    model: ScoringModel | None = None,
) -> list[Candidate]:
    """The registered persons who may be the person described by ``record`` (the feature input:
    given_names, paternal_surname, maternal_surname, sex, birth_date, birth_state, curp, nss),
    at or above the model's review threshold, best first, at most ``limit``.

    ``exclude_id`` leaves out the record itself (when its own data changes)."""
    features = record_features({**record, "unique_id": record.get("unique_id") or 0})
    birth_date = _as_date(record.get("birth_date"))
    normalized = normalized_full_name(
        str(record.get("given_names") or ""),
        str(record.get("paternal_surname") or ""),
        str(record.get("maternal_surname") or ""),
    )
    rows = [
        row for row in _candidate_rows(features, normalized, birth_date) if row[0] != exclude_id
    ]
    if not rows:
        return []
    scoring = model or scoring_model()
    unkeyed = _features_of_unkeyed(rows)
    candidates: list[Candidate] = []
    seen: set[int] = set()
    for person_id, given, paternal, maternal, born, region, stored in rows:
        if person_id in seen:
            continue
        seen.add(person_id)
        other = unkeyed.get(person_id) if stored is None else _loaded_json(stored)
        if other is None:
            continue
        score = score_pair(scoring.model, features, other)
        if score.weight < scoring.review_weight:
            continue
        agreeing, differing = agreement_of(score.breakdown)
        candidates.append(
            Candidate(
                person_id=person_id,
                name=_full_name(given, paternal, maternal),
                birth_date=_as_date(born) or datetime.date.min,
                region=region,
                weight=float(score.weight),
                probability=float(score.probability),
                identifier_conflict=bool(score.identifier_conflict),
                agreeing=agreeing,
                differing=differing,
                breakdown=[dict(item) for item in score.breakdown],
            )
        )
    candidates.sort(key=lambda candidate: (-candidate.weight, candidate.person_id))
    return candidates[:limit]


def _loaded_json(value: Any) -> dict[str, Any]:
    # A raw cursor hands jsonb over as text on some drivers and SQLite always does.
    if isinstance(value, str):
        loaded: dict[str, Any] = json.loads(value)
        return loaded
    return dict(value)


# --- within a batch ---------------------------------------------------------------------------


def _batch_keys(features: Mapping[str, Any]) -> set[tuple[Any, ...]]:
    """The blocking keys of one record as comparable tuples: two records that share one would
    have found each other through ``_blocking_lookups`` had one of them been registered."""
    keys: set[tuple[Any, ...]] = set()
    birth = features.get("birth_date")
    swapped = features.get("birth_date_swapped")
    given = features.get("given_phon")
    for stem in (features.get("derived_stem"), features.get("curp_stem")):
        keys.add(("stem", stem))
    keys.add(("curp", features.get("curp")))
    keys.add(("nss", features.get("nss")))
    for day in (birth, swapped):
        keys.add(("dob_given", day, given))
        for surname in (features.get("paternal_phon"), features.get("maternal_phon")):
            keys.add(("dob_surname", day, surname))
    keys.add(("names", features.get("surnames_sorted"), given))
    # The batch's counterpart of the database's range of birth days: the same year.
    year = features.get("birth_year")
    keys.add(("year_surname", year, features.get("paternal_phon")))
    keys.add(("year_given", year, given))
    return {key for key in keys if all(part not in (None, "") for part in key[1:])}


def pairs_within(
    records: Mapping[int, Mapping[str, Any]], *, model: ScoringModel | None = None
) -> list[tuple[int, int, Score]]:
    """Pairs of records of one batch that may be one person: (earlier, later, score) for every
    two records sharing a blocking key and scoring at or above the review threshold, ordered by
    the later record and then by weight, best first."""
    scoring = model or scoring_model()
    features = {
        index: record_features({**record, "unique_id": index}) for index, record in records.items()
    }
    by_key: dict[tuple[Any, ...], list[int]] = {}
    for index, record_keys in ((i, _batch_keys(f)) for i, f in features.items()):
        for key in record_keys:
            by_key.setdefault(key, []).append(index)
    candidate_pairs: set[tuple[int, int]] = set()
    for indexes in by_key.values():
        ordered = sorted(indexes)
        # A key shared by very many rows (one birth date and a frequent name) is capped like
        # the database lookups are.
        for position, later in enumerate(ordered[: PER_KEY_LIMIT + 1]):
            for earlier in ordered[:position]:
                candidate_pairs.add((earlier, later))
    found = []
    for earlier, later in candidate_pairs:
        score = score_pair(scoring.model, features[later], features[earlier])
        if score.weight >= scoring.review_weight:
            found.append((earlier, later, score))
    found.sort(key=lambda item: (item[1], -item[2].weight, item[0]))
    return found


# --- the "why" shown to the clerk -------------------------------------------------------------

COMPARISON_LABELS: dict[str, Promise] = {
    "given": _("Given names"),
    "surnames": _("Surnames"),
    "birth_date": _("Birth date"),
    "curp": _("CURP"),
    "nss": _("NSS"),
    "sex": _("Sex"),
    "birth_state": _("State of birth"),
}

# What each level of ``linkage.comparisons`` means, by (comparison, level key).
LEVEL_LABELS: dict[tuple[str, str], Promise] = {
    ("given", "exact"): _("the same"),
    ("given", "canonical"): _("the same once nicknames are read (Pepe = José)"),
    ("given", "main"): _("the same main given name"),
    ("given", "token"): _("one given name in common"),
    ("given", "jaro_winkler"): _("very similar (a typing slip)"),
    ("given", "phonetic"): _("sound alike"),
    ("given", "one_edit"): _("one letter different"),
    ("surnames", "exact"): _("the same"),
    ("surnames", "swapped"): _("the same, in the other order"),
    ("surnames", "one_missing"): _("one record has one surname only, and it is the other's"),
    ("surnames", "one_missing_similar"): _(
        "one record has one surname only, very similar to one of the other's"
    ),
    ("surnames", "jaro_winkler_both"): _("both very similar (typing slips)"),
    ("surnames", "paternal_only"): _("same paternal surname, different maternal"),
    ("surnames", "phonetic_both"): _("both sound alike"),
    ("surnames", "jaro_winkler_one"): _("one surname very similar"),
    ("birth_date", "exact"): _("the same"),
    ("birth_date", "swapped"): _("day and month exchanged"),
    ("birth_date", "one_edit"): _("one digit different"),
    ("birth_date", "close"): _("close (same month, or within 10 days)"),
    ("birth_date", "year"): _("the same year only"),
    ("curp", "exact"): _("the same"),
    ("curp", "stem"): _("the same except the last two characters"),
    ("curp", "derived_stem"): _("one CURP agrees with the other record's names and birth date"),
    ("curp", "close"): _("one or two characters different"),
    ("curp", "else"): _("different"),
    ("nss", "exact"): _("the same"),
    ("nss", "else"): _("different"),
    ("sex", "exact"): _("the same"),
    ("birth_state", "exact"): _("the same"),
}
_DIFFERENT = _("different")
_NOT_COMPARED = _("not compared (missing on one side)")


def explain(candidate: Mapping[str, Any]) -> dict[str, Any]:
    """A candidate as ``Candidate.as_dict`` gives it, with translated texts for the screen:
    the labels of the comparisons that agree and differ, and one line per comparison."""
    reasons = []
    for item in candidate.get("breakdown", []):
        comparison = str(item.get("comparison", ""))
        level = str(item.get("level", ""))
        weight = item.get("weight")
        if level == "null":
            text: str | Promise = _NOT_COMPARED
        else:
            text = LEVEL_LABELS.get((comparison, level), _DIFFERENT if level == "else" else level)
        reasons.append(
            {
                "comparison": comparison,
                "label": COMPARISON_LABELS.get(comparison, comparison),
                "level": text,
                "weight": weight,
                "agrees": isinstance(weight, int | float) and weight > 0,
                "differs": isinstance(weight, int | float) and weight < 0,
            }
        )
    return {
        **candidate,
        "agreeing_labels": [COMPARISON_LABELS.get(c, c) for c in candidate.get("agreeing", [])],
        "differing_labels": [COMPARISON_LABELS.get(c, c) for c in candidate.get("differing", [])],
        "reasons": reasons,
        "probability_percent": _percent(candidate.get("match_probability")),
    }


def _percent(probability: object) -> float | None:
    if not isinstance(probability, int | float):
        return None
    # Rounded down, so 99.97 % reads 99.9 % and not 100 %: the model is never certain.
    return math.floor(probability * 1000) / 10


# --- checking a would-be registration -----------------------------------------------------------


@dataclass(frozen=True)
class CandidateCheck:
    candidates: list[Candidate]
    model_label: str
    review_weight: float


def candidates_for_registration(
    *, actor: Actor, data: PersonData, identifiers: Sequence[IdentifierData] = ()
) -> CandidateCheck:
    """The persons who may be the one a registration with ``data`` and ``identifiers`` would
    create, without saving anything. The person fields and identifier formats go through the
    registration's entry filters (``ValidationFailed`` with every field error); an identifier
    already registered is not an error here — its holder is a candidate.

    Needs the permission to register persons or to view record linkage."""
    if not (actor.can(Perm.PERSON_REGISTER) or actor.can(Perm.LINKAGE_VIEW)):
        raise PermissionDenied(extra={"permission": Perm.PERSON_REGISTER})
    if not data.region and actor.region:
        data = replace(data, region=actor.region)
    errors = FieldErrors()
    values = validation.clean_person(data, errors)
    held: dict[str, str] = {}
    for index, item in enumerate(identifiers):
        valid = validation.clean_identifier(errors, f"identifiers[{index}]", item)
        if valid is not None:
            held.setdefault(valid.scheme, valid.value)
    errors.raise_if_any()
    scoring = scoring_model()
    found = find_candidates(
        record_input(values, curp=held.get(CURP), nss=held.get(NSS)), model=scoring
    )
    return CandidateCheck(found, scoring.label, scoring.review_weight)
