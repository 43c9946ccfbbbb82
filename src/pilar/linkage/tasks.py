"""The background job of record linkage's batch runs (``services`` starts them).

One job name, ``linkage.run``, executes a ``LinkageRun`` by its kind: training, deduplication,
list linkage or a cross-programme check. Every run

1. reads what it needs (registry persons through ``sources``, a stored list through
   ``lists.read_list``), computes the feature columns (``features.person_features``) and runs
   the engine (``engine.engine_for(run.backend)``: blocking analysis, prediction, training);
2. scores each pair it keeps in Python (``scoring.score_pair``) for the breakdown a reviewer sees
   and the identifier-conflict flag;
3. writes **everything in one transaction at the end**, after locking the run row: its pairs,
   figures and status. A run that fails or is interrupted before that commit leaves nothing but
   its own row (status ``failed`` with the error); a run taken over after a worker died (the
   queue's lease) starts again from the beginning, and one already done is left alone, so
   executing a run twice writes its pairs once.

Progress is the stage the run is in (``metrics["stage"]``), written outside the transaction so
the run's page sees it at once.

Deduplication specifics: pairs are stored with the smaller person id on the left. A pair a
steward has already decided (same or different persons, in any earlier run) keeps its decision
and is not queued again; the undecided pairs (pending or auto-linked, not used by a merge) of
earlier deduplications among the persons this run read are replaced by this run's, so the
review queue never holds the same two records twice. Clusters are the connected components of
this run's auto-linked pairs and of every "same person" decision, labelled by their smallest
person id (stable from run to run) in ``MatchPair.cluster``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import polars as pl
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from pilar.core import jobs
from pilar.core.actor import Actor
from pilar.core.audit import audit_record
from pilar.core.jobs import job
from pilar.core.models import Channel
from pilar.linkage import services, sources
from pilar.linkage.models import (
    LinkageModel,
    LinkageRun,
    MatchPair,
    PairStatus,
    RunKind,
    RunStatus,
)
from pilar.registry.models import Enrolment, EnrolmentStatus, Person, RecordStatus

logger = logging.getLogger("pilar.linkage")

# Training reads at most this many persons (drawn at random): m and u are proportions, and a
# few hundred thousand records estimate them as well as a million, in a fraction of the time.
TRAINING_SAMPLE = 300_000
# Below this the EM has too few matches to learn from.
TRAINING_MINIMUM = 200
# u is estimated on random pairs: up to this many, and fewer for a small registry (twenty per
# record still estimates every u level well, and trains a demo node in seconds).
TRAINING_MAX_PAIRS = 5_000_000
TRAINING_PAIRS_PER_RECORD = 20
TRAINING_MIN_PAIRS = 200_000
# A list row keeps its best registry matches, at most this many.
CANDIDATES_PER_ROW = 3
INSERT_BATCH = 2_000
ERROR_TEXT_MAX = 4000
DEDUPE_STAGES = ("reading", "features", "blocking", "predicting", "scoring", "writing")
LINK_STAGES = ("reading", "features", "predicting", "scoring", "writing")
CROSS_STAGES = ("reading", "features", "predicting", "writing")
TRAIN_STAGES = ("reading", "features", "training", "writing")
STAGES: dict[str, tuple[str, ...]] = {
    RunKind.DEDUPE: DEDUPE_STAGES,
    RunKind.LINK: LINK_STAGES,
    RunKind.CROSS_PROGRAMME: CROSS_STAGES,
    RunKind.TRAIN: TRAIN_STAGES,
}
DECIDED = (PairStatus.SAME, PairStatus.DIFFERENT)
UNDECIDED = (PairStatus.PENDING, PairStatus.AUTO_LINKED)

# Test hook: called inside the final transaction, after the writes and before the commit, so a
# test can crash a run at the worst moment and see that nothing of it stays.
_before_commit: Callable[[LinkageRun], None] | None = None


@contextlib.contextmanager
def quiet_splink(level: int = logging.ERROR) -> Iterator[None]:
    """Splink logs every EM iteration and every level it could not train as warnings: useful in
    a worker's log, noise in a command's summary or the demo's banner."""
    splink_logger = logging.getLogger("splink")
    previous = splink_logger.level
    splink_logger.setLevel(level)
    try:
        yield
    finally:
        splink_logger.setLevel(previous)


class RunCannotStart(Exception):
    """The run cannot be executed (its model no longer loads, its list is gone, too few persons):
    retrying will not help, so the run fails at once with this message."""


@job(services.RUN_JOB)
def run_job(*, job_id: int, run_id: int) -> None:
    run_execute(run_id, job_id=job_id)


def run_execute(run_id: int, *, job_id: int | None = None) -> LinkageRun:
    """Execute a run (see the module docstring). A run already done or failed is returned as it
    is; any error fails the run with its message instead of retrying it."""
    run = LinkageRun.objects.select_related("model").get(pk=run_id)
    if run.status in (RunStatus.DONE, RunStatus.FAILED):
        return run
    LinkageRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING,
        started_at=run.started_at or timezone.now(),
        error="",
        metrics={**_upload_metrics(run), "stage": "reading"},
    )
    run.refresh_from_db()
    started = time.monotonic()

    def progress(stage: str) -> None:
        LinkageRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
            metrics={**_upload_metrics(run), "stage": stage}
        )
        if job_id is not None:
            jobs.heartbeat(job_id)

    executor = EXECUTORS[run.kind]
    try:
        executor(run, progress, started)
    except RunCannotStart as error:
        logger.warning("linkage run %s (%s) cannot run: %s", run.pk, run.kind, error)
        _fail(run, str(error))
    except Exception as error:
        logger.exception("linkage run %s (%s) failed", run.pk, run.kind)
        _fail(run, _error_text(error))
    run.refresh_from_db()
    return run


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:ERROR_TEXT_MAX]


def _upload_metrics(run: LinkageRun) -> dict[str, Any]:
    """What the upload already reported (a list's row errors) and stays on the run."""
    metrics = run.metrics or {}
    return {
        key: metrics[key]
        for key in ("rows", "row_error_count", "warning_count", "row_errors")
        if key in metrics
    }


def _fail(run: LinkageRun, message: str) -> None:
    with transaction.atomic():
        LinkageRun.objects.filter(pk=run.pk).exclude(status=RunStatus.DONE).update(
            status=RunStatus.FAILED,
            error=message[:ERROR_TEXT_MAX],
            finished_at=timezone.now(),
            metrics={**_upload_metrics(run), "stage": "failed"},
        )
        _audit(run, "linkage.run_failed", {"status": [RunStatus.RUNNING, RunStatus.FAILED]})


def _job_actor(run: LinkageRun) -> Actor:
    # A job has no request: its events name the steward who asked for the run, through the
    # bulk channel, as the other apps' jobs do.
    user = run.created_by
    return Actor(
        user=user,
        roles=frozenset(),
        channel=Channel.BULK,
        label=user.get_username() if user is not None else "system",
    )


def _audit(run: LinkageRun, action: str, changes: dict[str, Any], note: str = "") -> None:
    audit_record(
        actor=_job_actor(run),
        action=action,
        entity_type="linkage.run",
        entity_id=run.pk,
        changes=changes,
        note=note,
    )


def _lock_for_finish(run: LinkageRun) -> LinkageRun | None:
    """The run row, locked, unless another worker has finished it meanwhile."""
    locked = LinkageRun.objects.select_for_update().get(pk=run.pk)
    if locked.status != RunStatus.RUNNING:
        return None
    return locked


def _finish(
    run: LinkageRun,
    *,
    started: float,
    metrics: dict[str, Any],
    fields: dict[str, Any],
) -> None:
    """Inside the final transaction: the run's figures and status, and its audit event."""
    metrics = {
        **_upload_metrics(run),
        **metrics,
        "stage": "done",
        "seconds": round(time.monotonic() - started, 1),
    }
    for name, value in fields.items():
        setattr(run, name, value)
    run.metrics = metrics
    run.status = RunStatus.DONE
    run.finished_at = timezone.now()
    run.save()
    _audit(
        run,
        "linkage.run_done",
        {
            "status": [RunStatus.RUNNING, RunStatus.DONE],
            **{
                name: [None, getattr(value, "pk", value)]
                for name, value in fields.items()
                if name != "blocking"
            },
        },
    )
    if _before_commit is not None:
        _before_commit(run)


# --- engine and model ---------------------------------------------------------------------------


def _engine(run: LinkageRun) -> Any:
    from pilar.linkage.engine import engine_for

    return engine_for(run.backend or "duckdb")


def _trained(model: LinkageModel | None) -> Any:
    from pilar.linkage.model import ModelFileError, load_model

    if model is None:
        raise RunCannotStart("the run has no model")
    try:
        return load_model(model.definition)
    except ModelFileError as error:
        raise RunCannotStart(
            f"model {model.name} v{model.version} no longer loads: {error}"
        ) from error


def _features(frame: pl.DataFrame) -> pl.DataFrame:
    from pilar.linkage.features import person_features

    return person_features(frame)


def _feature_records(features: pl.DataFrame, ids: Iterable[Any]) -> dict[Any, dict[str, Any]]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    chosen = features.filter(pl.col("unique_id").is_in(wanted))
    return {row["unique_id"]: row for row in chosen.iter_rows(named=True)}


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _score(trained: Any, left: Mapping[str, Any], right: Mapping[str, Any]) -> Any:
    from pilar.linkage.scoring import score_pair

    return score_pair(trained, left, right)


def _status(weight: float, conflict: bool, model: LinkageModel) -> str:
    if weight >= model.auto_link_weight and not conflict:
        return PairStatus.AUTO_LINKED
    return PairStatus.PENDING


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        # A log2 Bayes factor of ±infinity (a probability of exactly 0 or 1) is stored at the
        # edge of what the thresholds can express.
        return math.copysign(services.WEIGHT_LIMIT * 2, number)
    return number


# --- training -----------------------------------------------------------------------------------


def _train(run: LinkageRun, progress: Callable[[str], None], started: float) -> None:
    parameters = run.parameters or {}
    seed = int(parameters.get("seed", services.TRAINING_SEED))
    limit = int(parameters.get("sample", TRAINING_SAMPLE))
    persons = sources.registry_persons()
    population = persons.height
    if population < TRAINING_MINIMUM:
        raise RunCannotStart(
            f"the registry holds {population} active persons; training needs at least "
            f"{TRAINING_MINIMUM}"
        )
    if population > limit:
        persons = persons.sample(n=limit, seed=seed).sort("unique_id")
    progress("features")
    features = _features(persons)
    progress("training")
    max_pairs = min(
        TRAINING_MAX_PAIRS, max(TRAINING_MIN_PAIRS, features.height * TRAINING_PAIRS_PER_RECORD)
    )
    trained = _engine(run).train(
        features, link_type="dedupe_only", seed=seed, max_pairs=float(max_pairs)
    )
    progress("writing")
    training = {
        "run": run.pk,
        "records": features.height,
        "population": population,
        "seed": seed,
        "backend": run.backend,
        "seconds": round(time.monotonic() - started, 1),
    }
    with transaction.atomic():
        locked = _lock_for_finish(run)
        if locked is None:
            return
        saved = services.save_trained_model(
            actor=_job_actor(locked), trained=trained, training=training
        )
        _finish(
            locked,
            started=started,
            metrics={"model_version": saved.version, "model_active": saved.is_active},
            fields={"model": saved, "records": features.height},
        )


# --- deduplication ------------------------------------------------------------------------------


def blocking_summary(
    engine: Any, features: pl.DataFrame, truth: set[tuple[int, int]] | None
) -> Any:
    """The blocking analysis as stored on the run: pairs per rule (each pair counted for the
    first rule that generates it), cumulative, and pair completeness when the truth is known."""
    counts = engine.blocking_analysis(features, truth_pairs=truth)
    rules = [
        {
            "rule": count.rule,
            "sql": count.sql,
            "pairs": int(count.pairs),
            "cumulative": int(count.cumulative_pairs),
            "pair_completeness": count.pair_completeness,
        }
        for count in counts
    ]
    return {
        "rules": rules,
        "total": rules[-1]["cumulative"] if rules else 0,
        "records": features.height,
        "pair_completeness": rules[-1]["pair_completeness"] if rules else None,
    }


def read_truth(path: str | Path) -> set[tuple[int, int]]:
    """Truth pairs from a ground-truth CSV of ``pilar seed`` (duplicate id, original id, …):
    every pair within a group of records of one person, smaller id first."""
    groups: dict[int, set[int]] = {}
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            if len(row) < 2 or not row[0].strip().isdigit() or not row[1].strip().isdigit():
                continue
            duplicate, original = int(row[0]), int(row[1])
            groups.setdefault(original, {original}).add(duplicate)
    pairs: set[tuple[int, int]] = set()
    for members in groups.values():
        ordered = sorted(members)
        for index, first in enumerate(ordered):
            for second in ordered[index + 1 :]:
                pairs.add((first, second))
    return pairs


class _Components:
    """Union–find over person ids: the clusters of linked records."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, item: int) -> int:
        parent = self.parent.setdefault(item, item)
        while parent != self.parent.setdefault(parent, parent):
            self.parent[item] = self.parent[parent]
            item, parent = parent, self.parent[parent]
        return parent

    def union(self, first: int, second: int) -> None:
        root_first, root_second = self.find(first), self.find(second)
        if root_first != root_second:
            low, high = sorted((root_first, root_second))
            self.parent[high] = low

    def label(self, item: int) -> str | None:
        if item not in self.parent:
            return None
        return str(self.find(item))

    def clusters(self) -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}
        for item in self.parent:
            found.setdefault(self.find(item), []).append(item)
        return {root: members for root, members in found.items() if len(members) > 1}


def _same_decisions(person_ids: set[int]) -> list[tuple[int, int]]:
    """Pairs stewards decided are the same person, both records still read by this run."""
    edges = []
    for left, right in MatchPair.objects.filter(
        status=PairStatus.SAME, left_person__isnull=False
    ).values_list("left_person_id", "right_person_id"):
        if left in person_ids and right in person_ids:
            edges.append((left, right))
    return edges


def _decided_pairs() -> dict[tuple[int, int], str]:
    decided: dict[tuple[int, int], str] = {}
    for left, right, status in MatchPair.objects.filter(
        status__in=DECIDED, left_person__isnull=False
    ).values_list("left_person_id", "right_person_id", "status"):
        decided[(min(left, right), max(left, right))] = status
    return decided


def _dedupe(run: LinkageRun, progress: Callable[[str], None], started: float) -> None:
    model = run.model
    trained = _trained(model)
    assert model is not None
    parameters = run.parameters or {}
    truth = read_truth(parameters["truth"]) if parameters.get("truth") else None
    persons = sources.registry_persons(region=parameters.get("region"))
    progress("features")
    features = _features(persons)
    engine = _engine(run)
    progress("blocking")
    blocking = blocking_summary(engine, features, truth)
    progress("predicting")
    predictions = engine.predict_dedupe(features, trained, min_weight=model.review_weight)
    progress("scoring")
    decided = _decided_pairs()
    records = _feature_records(
        features,
        list(predictions["unique_id_l"].to_list()) + list(predictions["unique_id_r"].to_list()),
    )
    pairs: list[MatchPair] = []
    already_decided = 0
    seen: set[tuple[int, int]] = set()
    for row in predictions.select(
        "unique_id_l", "unique_id_r", "match_weight", "match_probability"
    ).iter_rows():
        first, second = int(row[0]), int(row[1])
        left, right = min(first, second), max(first, second)
        if left == right or (left, right) in seen:
            continue
        seen.add((left, right))
        if (left, right) in decided:
            already_decided += 1
            continue
        score = _score(trained, records[left], records[right])
        weight = _finite(row[2])
        conflict = bool(score.identifier_conflict)
        pairs.append(
            MatchPair(
                run_id=run.pk,
                left_person_id=left,
                right_person_id=right,
                match_weight=weight,
                match_probability=float(row[3]),
                breakdown=_jsonable(score.breakdown),
                identifier_conflict=conflict,
                status=_status(weight, conflict, model),
            )
        )
    person_ids = {int(value) for value in features["unique_id"].to_list()}
    components = _Components()
    for pair in pairs:
        if pair.status == PairStatus.AUTO_LINKED:
            components.union(pair.left_person_id, pair.right_person_id)  # type: ignore[arg-type]
    for left, right in _same_decisions(person_ids):
        components.union(left, right)
    for pair in pairs:
        left_label = components.label(pair.left_person_id)  # type: ignore[arg-type]
        if left_label is not None and left_label == components.label(pair.right_person_id):
            pair.cluster = left_label
    clusters = components.clusters()
    auto_linked = sum(1 for pair in pairs if pair.status == PairStatus.AUTO_LINKED)
    for_review = len(pairs) - auto_linked
    metrics: dict[str, Any] = {
        "already_decided": already_decided,
        "identifier_conflicts": sum(1 for pair in pairs if pair.identifier_conflict),
        "clustered_records": sum(len(members) for members in clusters.values()),
        "largest_cluster": max((len(members) for members in clusters.values()), default=0),
        "auto_link_weight": model.auto_link_weight,
        "review_weight": model.review_weight,
    }
    if truth is not None:
        metrics["accuracy"] = _accuracy(pairs, clusters, truth, person_ids)
    progress("writing")
    with transaction.atomic():
        locked = _lock_for_finish(run)
        if locked is None:
            return
        metrics["superseded"] = _supersede_undecided(locked, person_ids)
        MatchPair.objects.filter(run=locked).delete()
        MatchPair.objects.bulk_create(pairs, batch_size=INSERT_BATCH)
        _finish(
            locked,
            started=started,
            metrics=metrics,
            fields={
                "records": features.height,
                "blocking": blocking,
                "pairs_scored": int(predictions.height),
                "auto_linked": auto_linked,
                "for_review": for_review,
                "clusters": len(clusters),
            },
        )


def _supersede_undecided(run: LinkageRun, person_ids: set[int]) -> int:
    """Delete the undecided pairs of earlier deduplications between persons this run read; the
    pairs this run stores replace them. Pairs a merge refers to are kept."""
    earlier = (
        MatchPair.objects.filter(run__kind=RunKind.DEDUPE, status__in=UNDECIDED)
        .exclude(run=run)
        .filter(merges__isnull=True)
        .values_list("id", "left_person_id", "right_person_id")
    )
    doomed = [
        pk for pk, left, right in earlier.iterator() if left in person_ids and right in person_ids
    ]
    for offset in range(0, len(doomed), INSERT_BATCH):
        MatchPair.objects.filter(pk__in=doomed[offset : offset + INSERT_BATCH]).delete()
    return len(doomed)


def _accuracy(
    pairs: list[MatchPair],
    clusters: dict[int, list[int]],
    truth: set[tuple[int, int]],
    person_ids: set[int],
) -> dict[str, Any]:
    """Precision, recall and F1 of the auto-linked clusters and of every stored pair, against
    the truth pairs among the persons read."""
    relevant = {pair for pair in truth if pair[0] in person_ids and pair[1] in person_ids}
    predicted: set[tuple[int, int]] = set()
    for members in clusters.values():
        ordered = sorted(members)
        for index, first in enumerate(ordered):
            for second in ordered[index + 1 :]:
                predicted.add((first, second))
    stored = {(pair.left_person_id, pair.right_person_id) for pair in pairs}

    def figures(found: set[Any]) -> dict[str, Any]:
        true_positives = len(found & relevant)
        precision = true_positives / len(found) if found else 1.0
        recall = true_positives / len(relevant) if relevant else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "pairs": len(found),
            "true_positives": true_positives,
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
        }

    return {
        "truth_pairs": len(relevant),
        "clusters": figures(predicted),
        "stored_pairs": figures(stored),
    }


# --- list linkage -------------------------------------------------------------------------------


def read_stored_list(relative: str) -> tuple[pl.DataFrame, list[Any]]:
    """A list a run stored: the readable rows (``unique_id`` = row number) and the row errors."""
    from pilar.linkage import lists

    path = services.stored_path(relative)
    if not path.is_file():
        raise RunCannotStart(f"the stored list {relative} is missing")
    frame, row_errors, file_errors = lists.read_list(path)
    if file_errors:
        raise RunCannotStart(f"the stored list {relative} no longer reads: {file_errors[0].code}")
    return frame, row_errors


def _link_rows(
    engine: Any,
    trained: Any,
    model: LinkageModel,
    rows: pl.DataFrame,
    registry: pl.DataFrame,
) -> list[dict[str, Any]]:
    """The best registry matches of each list row at or above the review threshold (at most
    ``CANDIDATES_PER_ROW`` per row), scored: dicts with row, person, weight, probability,
    conflict, breakdown and status."""
    if rows.height == 0 or registry.height == 0:
        return []
    predictions = engine.predict_link(rows, registry, trained, min_weight=model.review_weight)
    if predictions.height == 0:
        return []
    best = (
        predictions.sort(["unique_id_l", "match_weight"], descending=[False, True])
        .group_by("unique_id_l", maintain_order=True)
        .head(CANDIDATES_PER_ROW)
    )
    left_records = _feature_records(rows, best["unique_id_l"].to_list())
    right_records = _feature_records(registry, best["unique_id_r"].to_list())
    found = []
    for row_number, person_id, weight, probability in best.select(
        "unique_id_l", "unique_id_r", "match_weight", "match_probability"
    ).iter_rows():
        score = _score(trained, left_records[row_number], right_records[person_id])
        weight = _finite(weight)
        conflict = bool(score.identifier_conflict)
        found.append(
            {
                "row": int(row_number),
                "person": int(person_id),
                "weight": weight,
                "probability": float(probability),
                "conflict": conflict,
                "breakdown": _jsonable(score.breakdown),
                "status": _status(weight, conflict, model),
            }
        )
    return found


def _list_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A list row as stored on its pairs: the input columns as read, and the external key."""
    keep = [*sources.INPUT_COLUMNS, "external_key"]
    return {name: _jsonable(row.get(name)) for name in keep if name in row and name != "unique_id"}


def _link(run: LinkageRun, progress: Callable[[str], None], started: float) -> None:
    model = run.model
    trained = _trained(model)
    assert model is not None
    rows, row_errors = read_stored_list(str((run.parameters or {}).get("file", "")))
    registry_persons = sources.registry_persons()
    progress("features")
    row_features = _features(rows.select(_input_columns(rows)))
    registry = _features(registry_persons)
    progress("predicting")
    engine = _engine(run)
    found = _link_rows(engine, trained, model, row_features, registry)
    progress("scoring")
    originals = {row["unique_id"]: row for row in rows.iter_rows(named=True)}
    pairs = [
        MatchPair(
            run_id=run.pk,
            left_row=item["row"],
            left_record=_list_record(originals[item["row"]]),
            right_person_id=item["person"],
            match_weight=item["weight"],
            match_probability=item["probability"],
            breakdown=item["breakdown"],
            identifier_conflict=item["conflict"],
            status=item["status"],
        )
        for item in found
    ]
    matched_rows = {pair.left_row for pair in pairs}
    auto_rows = {pair.left_row for pair in pairs if pair.status == PairStatus.AUTO_LINKED}
    metrics = {
        "rows": rows.height + len({error.row for error in row_errors if error.severity == "error"}),
        "rows_read": rows.height,
        "matched_rows": len(matched_rows),
        "auto_linked_rows": len(auto_rows),
        "review_rows": len(matched_rows - auto_rows),
        "unmatched_rows": rows.height - len(matched_rows),
        "identifier_conflicts": sum(1 for pair in pairs if pair.identifier_conflict),
        "auto_link_weight": model.auto_link_weight,
        "review_weight": model.review_weight,
    }
    progress("writing")
    with transaction.atomic():
        locked = _lock_for_finish(run)
        if locked is None:
            return
        MatchPair.objects.filter(run=locked).delete()
        MatchPair.objects.bulk_create(pairs, batch_size=INSERT_BATCH)
        _finish(
            locked,
            started=started,
            metrics=metrics,
            fields={
                "records": rows.height,
                "pairs_scored": len(pairs),
                "auto_linked": sum(1 for pair in pairs if pair.status == PairStatus.AUTO_LINKED),
                "for_review": sum(1 for pair in pairs if pair.status == PairStatus.PENDING),
            },
        )


def _input_columns(frame: pl.DataFrame) -> list[str]:
    return [name for name in sources.INPUT_COLUMNS if name in frame.columns]


# --- cross-programme check ----------------------------------------------------------------------

CROSS_COLUMNS: dict[str, Any] = {
    "basis": pl.String,
    "a_row": pl.Int64,
    "a_key": pl.String,
    "a_person": pl.Int64,
    "a_name": pl.String,
    "a_curp": pl.String,
    "b_row": pl.Int64,
    "b_key": pl.String,
    "b_person": pl.Int64,
    "b_name": pl.String,
    "b_curp": pl.String,
    "golden": pl.Int64,
    "weight": pl.Float64,
    "probability": pl.Float64,
}
# Why two records count as one person receiving both, strongest first.
BASIS_SAME_RECORD = "same_record"
BASIS_MERGED = "merged"
BASIS_CLUSTER = "linked_cluster"
BASIS_PROBABLE = "probable"
BASES = (BASIS_SAME_RECORD, BASIS_MERGED, BASIS_CLUSTER, BASIS_PROBABLE)


def result_path(run_id: int) -> Path:
    return services.results_dir() / f"run_{run_id}.parquet"


def _golden_of() -> dict[int, int]:
    """Each merged record's golden record, following chains to the end."""
    pointers = dict(
        Person.objects.filter(status=RecordStatus.MERGED, merged_into__isnull=False).values_list(
            "id", "merged_into_id"
        )
    )
    resolved: dict[int, int] = {}
    for start in pointers:
        current, hops = start, 0
        while current in pointers and hops < 100:
            current, hops = pointers[current], hops + 1
        resolved[start] = current
    return resolved


def _latest_clusters(golden: Mapping[int, int]) -> _Components:
    """Auto-linked pairs of the latest finished deduplication and every "same person" decision,
    between golden records."""
    components = _Components()
    latest = (
        LinkageRun.objects.filter(kind=RunKind.DEDUPE, status=RunStatus.DONE)
        .order_by("-finished_at", "-id")
        .first()
    )
    condition = Q(status=PairStatus.SAME)
    if latest is not None:
        condition |= Q(run=latest, status=PairStatus.AUTO_LINKED)
    for left, right in (
        MatchPair.objects.filter(condition, left_person__isnull=False)
        .values_list("left_person_id", "right_person_id")
        .iterator()
    ):
        components.union(golden.get(left, left), golden.get(right, right))
    return components


def _programme_side(programme_id: int, on: datetime.date) -> dict[int, set[int]]:
    """golden record → the enrolled records (any status: a merged record's enrolment may not
    have moved) receiving the programme on ``on``."""
    enrolled = Enrolment.objects.filter(
        Q(end_date__isnull=True) | Q(end_date__gte=on),
        programme_id=programme_id,
        status=EnrolmentStatus.ACTIVE,
        start_date__lte=on,
    ).values_list("person_id", flat=True)
    return {int(person): {int(person)} for person in enrolled}


def _names(person_ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
    ids = list(set(person_ids))
    found: dict[int, tuple[str, str | None]] = {}
    for offset in range(0, len(ids), 5000):
        frame = sources.registry_persons(person_ids=ids[offset : offset + 5000])
        for row in frame.iter_rows(named=True):
            name = " ".join(
                part
                for part in (row["given_names"], row["paternal_surname"], row["maternal_surname"])
                if part
            )
            found[row["unique_id"]] = (name, row["curp"])
    missing = [pk for pk in ids if pk not in found]
    for person in Person.objects.filter(pk__in=missing).prefetch_related("identifiers"):
        curp = next(
            (i.value for i in person.identifiers.all() if i.scheme == "CURP" and i.is_active), None
        )
        found[person.pk] = (person.full_name, curp)
    return found


def _cross(run: LinkageRun, progress: Callable[[str], None], started: float) -> None:
    parameters = run.parameters or {}
    on = services.run_date(run)
    side_a, side_b = parameters.get("a", {}), parameters.get("b", {})
    if "programme" in side_a and "programme" in side_b:
        rows, metrics = _cross_programmes(
            run, int(side_a["programme"]), int(side_b["programme"]), on, progress
        )
    else:
        rows, metrics = _cross_lists(
            run, str(side_a.get("list")), str(side_b.get("list")), progress
        )
    progress("writing")
    frame = (
        pl.DataFrame(rows, schema=CROSS_COLUMNS, orient="row")
        if rows
        else pl.DataFrame(schema=CROSS_COLUMNS)
    )
    order = {basis: index for index, basis in enumerate(BASES)}
    frame = (
        frame.with_columns(
            pl.col("basis").replace_strict(order, return_dtype=pl.Int64).alias("_order")
        )
        .sort(["_order", "weight"], descending=[False, True], nulls_last=True)
        .drop("_order")
    )
    target = result_path(run.pk)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    frame.write_parquet(partial)
    partial.replace(target)
    by_basis = {basis: int((frame["basis"] == basis).sum()) for basis in BASES}
    with transaction.atomic():
        locked = _lock_for_finish(run)
        if locked is None:
            return
        _finish(
            locked,
            started=started,
            metrics={**metrics, "by_basis": by_basis, "result_rows": frame.height},
            fields={
                "records": int(metrics.get("records", 0)),
                "pairs_scored": int(metrics.get("pairs_scored", 0)),
                "clusters": frame.height,
            },
        )


def _cross_programmes(
    run: LinkageRun,
    programme_a: int,
    programme_b: int,
    on: datetime.date,
    progress: Callable[[str], None],
) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    golden = _golden_of()
    enrolled_a = set(_programme_side(programme_a, on))
    enrolled_b = set(_programme_side(programme_b, on))
    by_golden_b: dict[int, list[int]] = {}
    for person in enrolled_b:
        by_golden_b.setdefault(golden.get(person, person), []).append(person)
    components = _latest_clusters(golden)
    by_cluster_b: dict[str, list[int]] = {}
    for root, members in by_golden_b.items():
        label = components.label(root)
        if label is not None:
            by_cluster_b.setdefault(label, []).extend(members)
    found: dict[tuple[int, int], tuple[str, float | None, float | None]] = {}
    for person in sorted(enrolled_a):
        root = golden.get(person, person)
        for other in by_golden_b.get(root, []):
            basis = BASIS_SAME_RECORD if other == person else BASIS_MERGED
            found[(person, other)] = (basis, None, None)
        label = components.label(root)
        if label is not None:
            for other in by_cluster_b.get(label, []):
                found.setdefault((person, other), (BASIS_CLUSTER, None, None))
    metrics: dict[str, Any] = {
        "a_records": len(enrolled_a),
        "b_records": len(enrolled_b),
        "records": len(enrolled_a) + len(enrolled_b),
        "model_used": run.model is not None,
    }
    progress("features")
    if run.model is not None and enrolled_a and enrolled_b:
        trained = _trained(run.model)
        features_a = _features(sources.registry_persons(person_ids=sorted(enrolled_a)))
        features_b = _features(sources.registry_persons(person_ids=sorted(enrolled_b)))
        progress("predicting")
        predictions = _engine(run).predict_link(
            features_a, features_b, trained, min_weight=run.model.review_weight
        )
        metrics["pairs_scored"] = predictions.height
        for left, right, weight, probability in predictions.select(
            "unique_id_l", "unique_id_r", "match_weight", "match_probability"
        ).iter_rows():
            key = (int(left), int(right))
            if key not in found:
                found[key] = (BASIS_PROBABLE, _finite(weight), float(probability))
    names = _names([pk for pair in found for pk in pair])
    rows = []
    for (person_a, person_b), (basis, weight, probability) in found.items():
        name_a, curp_a = names.get(person_a, ("", None))
        name_b, curp_b = names.get(person_b, ("", None))
        rows.append(
            (
                basis,
                None,
                None,
                person_a,
                name_a,
                curp_a,
                None,
                None,
                person_b,
                name_b,
                curp_b,
                golden.get(person_a, person_a) if basis != BASIS_PROBABLE else None,
                weight,
                probability,
            )
        )
    return rows, metrics


def _cross_lists(
    run: LinkageRun, list_a: str, list_b: str, progress: Callable[[str], None]
) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    model = run.model
    trained = _trained(model)
    assert model is not None
    rows_a, _errors_a = read_stored_list(list_a)
    rows_b, _errors_b = read_stored_list(list_b)
    progress("features")
    features_a = _features(rows_a.select(_input_columns(rows_a)))
    features_b = _features(rows_b.select(_input_columns(rows_b)))
    registry = _features(sources.registry_persons())
    engine = _engine(run)
    progress("predicting")
    golden = _golden_of()
    components = _latest_clusters(golden)

    def linked(features: pl.DataFrame) -> dict[int, int]:
        # Each row's registry person: its best auto-linked match, without conflict.
        best: dict[int, int] = {}
        for item in _link_rows(engine, trained, model, features, registry):
            if item["status"] == PairStatus.AUTO_LINKED and item["row"] not in best:
                best[item["row"]] = item["person"]
        return best

    person_a, person_b = linked(features_a), linked(features_b)
    found: dict[tuple[int, int], tuple[str, float | None, float | None]] = {}
    rows_of_b: dict[int, list[int]] = {}
    rows_of_b_cluster: dict[str, list[int]] = {}
    for row, person in person_b.items():
        root = golden.get(person, person)
        rows_of_b.setdefault(root, []).append(row)
        label = components.label(root)
        if label is not None:
            rows_of_b_cluster.setdefault(label, []).append(row)
    for row, person in person_a.items():
        root = golden.get(person, person)
        for other in rows_of_b.get(root, []):
            basis = BASIS_SAME_RECORD if person_b[other] == person else BASIS_MERGED
            found[(row, other)] = (basis, None, None)
        label = components.label(root)
        if label is not None:
            for other in rows_of_b_cluster.get(label, []):
                found.setdefault((row, other), (BASIS_CLUSTER, None, None))
    predictions = engine.predict_link(
        features_a, features_b, trained, min_weight=model.review_weight
    )
    for left, right, weight, probability in predictions.select(
        "unique_id_l", "unique_id_r", "match_weight", "match_probability"
    ).iter_rows():
        key = (int(left), int(right))
        if key not in found:
            found[key] = (BASIS_PROBABLE, _finite(weight), float(probability))
    original_a = {row["unique_id"]: row for row in rows_a.iter_rows(named=True)}
    original_b = {row["unique_id"]: row for row in rows_b.iter_rows(named=True)}

    def name_of(row: Mapping[str, Any]) -> str:
        return " ".join(
            str(row.get(part) or "")
            for part in ("given_names", "paternal_surname", "maternal_surname")
            if row.get(part)
        )

    rows = []
    for (row_a, row_b), (basis, weight, probability) in found.items():
        a, b = original_a[row_a], original_b[row_b]
        linked_person = person_a.get(row_a)
        rows.append(
            (
                basis,
                row_a,
                _text(a.get("external_key")),
                linked_person,
                name_of(a),
                a.get("curp"),
                row_b,
                _text(b.get("external_key")),
                person_b.get(row_b),
                name_of(b),
                b.get("curp"),
                golden.get(linked_person, linked_person)
                if linked_person is not None and basis != BASIS_PROBABLE
                else None,
                weight,
                probability,
            )
        )
    metrics = {
        "a_records": rows_a.height,
        "b_records": rows_b.height,
        "records": rows_a.height + rows_b.height,
        "a_linked": len(person_a),
        "b_linked": len(person_b),
        "pairs_scored": predictions.height,
        "model_used": True,
    }
    return rows, metrics


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


EXECUTORS: dict[str, Callable[[LinkageRun, Callable[[str], None], float], None]] = {
    RunKind.TRAIN: _train,
    RunKind.DEDUPE: _dedupe,
    RunKind.LINK: _link,
    RunKind.CROSS_PROGRAMME: _cross,
}
