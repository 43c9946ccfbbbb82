"""Starting batch linkage runs and keeping the trained models: the writes of record linkage's
batch side (the review decisions are in ``review``, merges in ``merging``).

Runs
----
Every run is a ``LinkageRun`` row and a background job (``tasks.run_execute``):

``start_training``
    trains a Fellegi–Sunter model on the registry (a random sample when it is large) and saves
    it as the next ``LinkageModel`` version. The node's first model becomes the active one; later
    versions are activated by a steward (``activate_model``) after a look at their m/u.
``start_dedupe``
    scores the registry against itself with a model (the active one by default): pairs at or
    above the model's review threshold are stored; at or above its auto-link threshold with no
    identifier conflict they are ``auto_linked`` (a cluster edge), the rest ``pending`` in the
    review queue. Pairs a steward has already decided keep their decision and are not queued
    again. See ``tasks`` for how a run writes.
``start_list_linkage``
    links the rows of an external list (CSV or XLSX) to the registry. The file is kept
    content-addressed under ``VAR_DIR/linkage/``; the same file again returns the earlier run.
    A list that cannot be read at all is refused at upload and nothing is saved; rows with
    errors are reported on the run and skipped.
``start_cross_programme`` / ``start_cross_lists``
    the persons receiving two programmes (active enrolments in force today) or on two lists.

Errors a user can cause are ``ApplicationError``s with stable codes; a refused start writes
nothing. Each entry point checks ``Perm.LINKAGE_RUN`` and national scope (a run reads the whole
registry), writes an audit event, and enqueues its job in the same transaction.

Every service takes ``enqueue``: the command line (``pilar linkage …``) passes ``False`` and runs
the job in its own process with ``tasks.run_execute``.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from pilar.core import jobs
from pilar.core.actor import Actor
from pilar.core.audit import audit_record, diff
from pilar.core.errors import (
    Conflict,
    FieldErrors,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from pilar.core.models import JobStatus
from pilar.core.roles import Perm
from pilar.linkage.models import LinkageModel, LinkageRun, RunKind, RunStatus
from pilar.registry.models import Programme

if TYPE_CHECKING:
    from pilar.linkage.model import TrainedModel

logger = logging.getLogger("pilar.linkage")

RUN_JOB = "linkage.run"
MODEL_NAME = "persons"
BACKENDS = ("duckdb",)
# A list or a model file larger than this is refused before it is read.
LIST_MAX_BYTES = 50 * 1024 * 1024
MODEL_MAX_BYTES = 5 * 1024 * 1024
LIST_NAME_MAX = 200
# Row errors kept on a run for the report (the count is always exact).
ROW_ERRORS_KEPT = 1000
# Thresholds are match weights (log2 Bayes factors): beyond ±60 they mean nothing.
WEIGHT_LIMIT = 60.0
TRAINING_SEED = 42
ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class NoActiveModel(Conflict):
    code = "linkage.no_model"
    title = gettext_lazy(
        "No linkage model is active. Train a model (or import one and activate it) first."
    )


class RunBusy(Conflict):
    code = "linkage.run_busy"
    title = gettext_lazy(
        "A run of this kind is already queued or running. Wait until it has finished."
    )


class ModelRefused(ValidationFailed):
    """A model file that cannot be used: not a Pilar model, or made by another version."""

    code = "linkage.model_refused"


# --- where files live ---------------------------------------------------------------------------


def linkage_dir() -> Path:
    return Path(settings.VAR_DIR) / "linkage"


def results_dir() -> Path:
    return linkage_dir() / "results"


def stored_path(relative: str) -> Path:
    """The absolute path of a file a run stored (``parameters`` keep it relative)."""
    return linkage_dir() / relative


def _require(actor: Actor, permission: str) -> None:
    actor.require(permission)
    if not actor.national_scope:
        # A run reads and links the whole registry: only national roles may start one.
        raise PermissionDenied()


def _refuse_if_busy(kind: str) -> None:
    busy = (
        LinkageRun.objects.select_for_update(of=("self",))
        .filter(kind=kind, status__in=ACTIVE_STATUSES)
        .select_related("job")
        .order_by("id")
        .first()
    )
    if busy is not None and busy.job is not None and busy.job.status == JobStatus.FAILED:
        # The queue gave up on its job (a worker crashed on it every time): the run will never
        # finish, and must not block the next one.
        LinkageRun.objects.filter(pk=busy.pk).update(
            status=RunStatus.FAILED,
            error=busy.job.error[-4000:] or "the job failed",
            finished_at=timezone.now(),
        )
        busy = None
    if busy is not None:
        raise RunBusy(
            _("Run %(id)s of this kind is %(status)s. Wait until it has finished.")
            % {"id": busy.pk, "status": busy.get_status_display().lower()}
        )


def _create_run(
    *,
    actor: Actor,
    kind: str,
    model: LinkageModel | None,
    parameters: dict[str, Any],
    enqueue: bool,
    source_name: str = "",
    source_sha256: str = "",
    metrics: dict[str, Any] | None = None,
) -> LinkageRun:
    run = LinkageRun.objects.create(
        kind=kind,
        model=model,
        parameters=parameters,
        source_name=source_name[:LIST_NAME_MAX],
        source_sha256=source_sha256,
        metrics=metrics or {},
        created_by=actor.user,
    )
    if enqueue:
        run.job = jobs.enqueue(RUN_JOB, run_id=run.pk)
        run.save(update_fields=["job"])
    audit_record(
        actor=actor,
        action="linkage.run_start",
        entity_type="linkage.run",
        entity_id=run.pk,
        changes={
            "kind": [None, kind],
            "model": [None, model.pk if model else None],
            "parameters": [None, parameters],
            **({"source_sha256": [None, source_sha256]} if source_sha256 else {}),
        },
    )
    return run


# --- models -------------------------------------------------------------------------------------


def active_model(name: str = MODEL_NAME) -> LinkageModel | None:
    return LinkageModel.objects.filter(name=name, is_active=True).first()


def _model_for_write(model_id: int) -> LinkageModel:
    model = LinkageModel.objects.select_for_update().filter(pk=model_id).first()
    if model is None:
        raise NotFound()
    return model


def _model_for_run(model_id: int | None) -> LinkageModel:
    if model_id is None:
        model = active_model()
        if model is None:
            raise NoActiveModel()
        return model
    model = LinkageModel.objects.filter(pk=model_id).first()
    if model is None:
        raise ValidationFailed.single(
            "model", "linkage.unknown_model", _("There is no linkage model with this number.")
        )
    return model


def canonical_json(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def model_file_text(model: LinkageModel) -> str:
    """The model file of a saved model, as exported: indented JSON, keys sorted. It carries the
    model's current thresholds (a steward may have changed them since training), so the node
    that imports it starts from the same ones."""
    document = copy.deepcopy(model.definition)
    summary = document.setdefault("summary", {})
    summary["thresholds"] = {
        "auto_link_weight": model.auto_link_weight,
        "review_weight": model.review_weight,
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _next_version(name: str) -> int:
    latest = LinkageModel.objects.filter(name=name).aggregate(latest=Max("version"))["latest"]
    return int(latest or 0) + 1


def model_summary(trained: TrainedModel) -> dict[str, Any]:
    """What the model pages show: λ and each comparison's levels with m, u and the weight
    (``model.model_summary``), plus whatever the trainer recorded."""
    from pilar.linkage import model as model_module

    return model_module.model_summary(trained)


def save_trained_model(
    *,
    actor: Actor,
    trained: TrainedModel,
    training: dict[str, Any],
    activate_if_first: bool = True,
    action: str = "linkage.model_train",
) -> LinkageModel:
    """Store ``trained`` as the next version (inside the caller's transaction) with an audit
    event. The node's first model becomes active, so the point of entry and runs use it."""
    from pilar.linkage import model as model_module

    document = model_module.model_document(trained)
    name = str(document.get("name") or MODEL_NAME)[:40]
    LinkageModel.objects.select_for_update().filter(name=name).exists()
    thresholds = model_module.thresholds_of(trained)
    summary = {**model_summary(trained), "training": {**dict(trained.training), **training}}
    is_first = not LinkageModel.objects.filter(name=name, is_active=True).exists()
    saved = LinkageModel.objects.create(
        name=name,
        version=_next_version(name),
        definition=document,
        feature_version=int(document["feature_version"]),
        splink_version=str(document["splink_version"])[:20],
        sha256=hashlib.sha256(canonical_json(document).encode()).hexdigest(),
        auto_link_weight=thresholds[0],
        review_weight=thresholds[1],
        summary=summary,
        is_active=activate_if_first and is_first,
        trained_by=actor.user,
    )
    audit_record(
        actor=actor,
        action=action,
        entity_type="linkage.model",
        entity_id=saved.pk,
        changes={
            "name": [None, saved.name],
            "version": [None, saved.version],
            "sha256": [None, saved.sha256],
            "is_active": [None, saved.is_active],
            "auto_link_weight": [None, saved.auto_link_weight],
            "review_weight": [None, saved.review_weight],
        },
    )
    return saved


@transaction.atomic(durable=True)
def activate_model(*, actor: Actor, model_id: int) -> LinkageModel:
    """Make this version the one runs and the point of entry use (the previous active version
    of the same name is deactivated)."""
    _require(actor, Perm.LINKAGE_RUN)
    model = _model_for_write(model_id)
    if model.is_active:
        return model
    from pilar.linkage.model import ModelFileError, load_model

    try:
        load_model(model.definition)
    except ModelFileError as error:
        raise _model_refused(error) from error
    previous = list(
        LinkageModel.objects.select_for_update().filter(name=model.name, is_active=True)
    )
    LinkageModel.objects.filter(pk__in=[p.pk for p in previous]).update(is_active=False)
    model.is_active = True
    model.save(update_fields=["is_active"])
    audit_record(
        actor=actor,
        action="linkage.model_activate",
        entity_type="linkage.model",
        entity_id=model.pk,
        changes={
            "is_active": [False, True],
            "previous": [[p.pk for p in previous], None],
        },
    )
    return model


def _weight(value: Any, field: str, errors: FieldErrors) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        errors.add(field, "invalid", _("Enter a number, for example 12.5."))
        return None
    if number != number or not -WEIGHT_LIMIT <= number <= WEIGHT_LIMIT:
        errors.add(
            field,
            "out_of_range",
            _("A match weight is between -%(limit)d and %(limit)d.") % {"limit": WEIGHT_LIMIT},
        )
        return None
    return number


@transaction.atomic(durable=True)
def model_thresholds_update(
    *, actor: Actor, model_id: int, auto_link_weight: Any, review_weight: Any
) -> LinkageModel:
    """Change a model's two thresholds (match weights). They apply to runs started afterwards
    and at once to the point of entry; the m/u of the model never change."""
    _require(actor, Perm.LINKAGE_RUN)
    model = _model_for_write(model_id)
    errors = FieldErrors()
    auto = _weight(auto_link_weight, "auto_link_weight", errors)
    review = _weight(review_weight, "review_weight", errors)
    if auto is not None and review is not None and auto <= review:
        errors.add(
            "auto_link_weight",
            "linkage.thresholds_order",
            _("The auto-link threshold must be higher than the review threshold."),
        )
    errors.raise_if_any()
    assert auto is not None
    assert review is not None
    before = {"auto_link_weight": model.auto_link_weight, "review_weight": model.review_weight}
    model.auto_link_weight = auto
    model.review_weight = review
    model.save(update_fields=["auto_link_weight", "review_weight"])
    changes = diff(before, {"auto_link_weight": auto, "review_weight": review})
    if changes:
        audit_record(
            actor=actor,
            action="linkage.model_thresholds",
            entity_type="linkage.model",
            entity_id=model.pk,
            changes=changes,
        )
    return model


def export_model(*, actor: Actor, model_id: int) -> tuple[str, str]:
    """(file name, text) of a saved model's file, to move it to another node."""
    actor.require(Perm.LINKAGE_VIEW)
    model = LinkageModel.objects.filter(pk=model_id).first()
    if model is None:
        raise NotFound()
    return f"pilar-linkage-{model.name}-v{model.version}.json", model_file_text(model)


def _model_refused(error: Any) -> ModelRefused:
    from pilar.linkage.messages import model_error_message

    return ModelRefused({"file": [_field_error(error.code, model_error_message(error))]})


def _field_error(code: str, message: str) -> Any:
    from pilar.core.errors import FieldError

    return FieldError(code, message)


@transaction.atomic(durable=True)
def import_model(*, actor: Actor, text: str | bytes, activate: bool = False) -> LinkageModel:
    """Save a model file exported by another node (or an earlier version of this one) as the
    next version. The file is checked first (``model.load_model``): not JSON, not a Pilar model,
    another format, feature or Splink version → a precise error and nothing saved."""
    _require(actor, Perm.LINKAGE_RUN)
    from pilar.linkage.model import ModelFileError, load_model

    if isinstance(text, bytes):
        if len(text) > MODEL_MAX_BYTES:
            raise ValidationFailed.single(
                "file",
                "too_large",
                _("The file is larger than %(mb)s MB.") % {"mb": MODEL_MAX_BYTES // (1024 * 1024)},
            )
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationFailed.single(
                "file",
                "linkage.model_not_text",
                _("The file is not a model file: it is not UTF-8 text."),
            ) from None
    if not text.strip():
        raise ValidationFailed.single("file", "empty", _("The file is empty."))
    try:
        trained = load_model(text)
    except ModelFileError as error:
        raise _model_refused(error) from error
    saved = save_trained_model(
        actor=actor,
        trained=trained,
        training={"imported": True, "imported_at": timezone.now().isoformat()},
        activate_if_first=True,
        action="linkage.model_import",
    )
    if activate and not saved.is_active:
        LinkageModel.objects.filter(name=saved.name, is_active=True).update(is_active=False)
        saved.is_active = True
        saved.save(update_fields=["is_active"])
        audit_record(
            actor=actor,
            action="linkage.model_activate",
            entity_type="linkage.model",
            entity_id=saved.pk,
            changes={"is_active": [False, True]},
        )
    return saved


# --- training -----------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def start_training(
    *,
    actor: Actor,
    backend: str = "duckdb",
    seed: int = TRAINING_SEED,
    sample: int | None = None,
    enqueue: bool = True,
) -> LinkageRun:
    """Queue the training of a new model version on the registry's active persons (at most
    ``sample`` of them, drawn at random with ``seed``; default ``tasks.TRAINING_SAMPLE``)."""
    _require(actor, Perm.LINKAGE_RUN)
    errors = FieldErrors()
    if backend not in BACKENDS:
        errors.add("backend", "invalid_choice", _("Unknown linkage engine."))
    if sample is not None and not 1_000 <= sample <= 5_000_000:
        errors.add(
            "sample",
            "out_of_range",
            _("Train on between 1,000 and 5,000,000 persons."),
        )
    errors.raise_if_any()
    _refuse_if_busy(RunKind.TRAIN)
    parameters: dict[str, Any] = {"seed": int(seed)}
    if sample is not None:
        parameters["sample"] = int(sample)
    run = _create_run(
        actor=actor, kind=RunKind.TRAIN, model=None, parameters=parameters, enqueue=enqueue
    )
    run.backend = backend
    run.save(update_fields=["backend"])
    return run


# --- deduplication ------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def start_dedupe(
    *,
    actor: Actor,
    model_id: int | None = None,
    region: str | None = None,
    truth_path: Path | None = None,
    enqueue: bool = True,
) -> LinkageRun:
    """Queue a deduplication of the registry (or of one region's persons) with ``model_id``
    (default: the active model). ``truth_path`` — a ground-truth CSV such as ``pilar seed``
    writes, given on the command line only — adds precision, recall and pair completeness to
    the run's figures."""
    _require(actor, Perm.LINKAGE_RUN)
    model = _model_for_run(model_id)
    parameters: dict[str, Any] = {}
    if region:
        from pilar.core.regions import STATES

        if region not in STATES:
            raise ValidationFailed.single("region", "invalid_choice", _("Unknown region."))
        parameters["region"] = region
    if truth_path is not None:
        if not truth_path.is_file():
            raise ValidationFailed.single(
                "truth", "linkage.truth_missing", _("The ground-truth file does not exist.")
            )
        parameters["truth"] = str(truth_path.resolve())
    _refuse_if_busy(RunKind.DEDUPE)
    return _create_run(
        actor=actor, kind=RunKind.DEDUPE, model=model, parameters=parameters, enqueue=enqueue
    )


# --- external lists -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredList:
    relative: str
    sha256: str
    file_name: str
    rows: int
    row_errors: list[dict[str, Any]]
    row_error_count: int
    warning_count: int
    created: bool


def _file_name(name: str) -> str:
    return Path(name or "list").name[:LIST_NAME_MAX] or "list"


def store_list(*, field: str, file_name: str, data: bytes) -> StoredList:
    """Read a list file with ``lists.read_list`` and keep it content-addressed under
    ``VAR_DIR/linkage/lists/``. A whole-file error (encoding, columns, no rows, …) raises
    ``ValidationFailed`` on ``field`` with every problem, translated, and nothing is kept."""
    from pilar.linkage import lists
    from pilar.linkage.messages import list_error_message

    if not data:
        raise ValidationFailed.single(field, "empty", _("The file is empty."))
    if len(data) > LIST_MAX_BYTES:
        raise ValidationFailed.single(
            field,
            "too_large",
            _("The file is larger than %(mb)s MB.") % {"mb": LIST_MAX_BYTES // (1024 * 1024)},
        )
    frame, row_errors, file_errors = lists.read_list(data)
    if file_errors:
        errors = FieldErrors()
        for error in file_errors:
            errors.add(field, error.code, list_error_message(error))
        errors.raise_if_any()
    digest = hashlib.sha256(data).hexdigest()
    # The type is told by content (``lists`` does the same), not by the name a user gave.
    suffix = ".xlsx" if data.startswith(lists.ZIP_MAGIC) else ".csv"
    relative = f"lists/{digest}{suffix}"
    target = stored_path(relative)
    existed = target.exists()
    if not existed:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{digest}.part")
        partial.write_bytes(data)
        partial.replace(target)
    kept = [
        {
            "row": error.row,
            "column": error.column,
            "code": error.code,
            "params": _jsonable_params(error.params),
            "severity": error.severity,
        }
        for error in row_errors[:ROW_ERRORS_KEPT]
    ]
    return StoredList(
        relative=relative,
        sha256=digest,
        file_name=_file_name(file_name),
        rows=frame.height,
        row_errors=kept,
        row_error_count=len({e.row for e in row_errors if e.severity == lists.ERROR}),
        warning_count=len({e.row for e in row_errors if e.severity != lists.ERROR}),
        created=not existed,
    )


def _jsonable_params(params: Any) -> dict[str, Any]:
    return {
        str(key): value
        if isinstance(value, str | int | float | bool) or value is None
        else str(value)
        for key, value in dict(params or {}).items()
    }


def start_list_linkage(
    *,
    actor: Actor,
    file_name: str,
    data: bytes,
    name: str = "",
    enqueue: bool = True,
) -> tuple[LinkageRun, bool]:
    """Link an external list to the registry with the active model. Returns (run, created):
    the same file again returns its earlier run (unless that one failed) with created False."""
    _require(actor, Perm.LINKAGE_RUN)
    name = (name or "").strip()
    if len(name) > LIST_NAME_MAX:
        raise ValidationFailed.single(
            "name",
            "too_long",
            _("At most %(max)d characters.") % {"max": LIST_NAME_MAX},
        )
    model = _model_for_run(None)
    digest = hashlib.sha256(data).hexdigest() if data else ""
    earlier = (
        LinkageRun.objects.filter(kind=RunKind.LINK, source_sha256=digest)
        .exclude(status=RunStatus.FAILED)
        .order_by("-id")
        .first()
        if digest
        else None
    )
    if earlier is not None:
        return earlier, False
    stored = store_list(field="file", file_name=file_name, data=data)
    with transaction.atomic(durable=True):
        run = _create_run(
            actor=actor,
            kind=RunKind.LINK,
            model=model,
            parameters={"file": stored.relative, "file_name": stored.file_name},
            enqueue=enqueue,
            source_name=name or stored.file_name,
            source_sha256=stored.sha256,
            metrics={
                "rows": stored.rows + stored.row_error_count,
                "row_error_count": stored.row_error_count,
                "warning_count": stored.warning_count,
                "row_errors": stored.row_errors,
            },
        )
    return run, True


# --- cross-programme check ----------------------------------------------------------------------


def _programme(value: Any, field: str) -> Programme:
    programme = None
    if isinstance(value, Programme):
        programme = value
    elif isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        programme = Programme.objects.filter(pk=int(value)).first()
    if programme is None and isinstance(value, str) and value.strip():
        programme = Programme.objects.filter(code=value.strip().upper()).first()
    if programme is None:
        raise ValidationFailed.single(field, "linkage.unknown_programme", _("Unknown programme."))
    return programme


@transaction.atomic(durable=True)
def start_cross_programme(
    *, actor: Actor, programme_a: Any, programme_b: Any, enqueue: bool = True
) -> LinkageRun:
    """The persons receiving both programmes (by id, code or ``Programme``): the same registry
    person (directly, through a merge into one golden record, or through an auto-linked cluster
    of the latest deduplication) and, with the active model, probably the same person."""
    _require(actor, Perm.LINKAGE_RUN)
    first = _programme(programme_a, "programme_a")
    second = _programme(programme_b, "programme_b")
    if first.pk == second.pk:
        raise ValidationFailed.single(
            "programme_b", "linkage.same_programme", _("Choose two different programmes.")
        )
    model = active_model()
    return _create_run(
        actor=actor,
        kind=RunKind.CROSS_PROGRAMME,
        model=model,
        parameters={
            "a": {"programme": first.pk, "code": first.code},
            "b": {"programme": second.pk, "code": second.code},
            "on": timezone.localdate().isoformat(),
        },
        enqueue=enqueue,
        source_name=f"{first.code} × {second.code}",
    )


def start_cross_lists(
    *,
    actor: Actor,
    file_a: tuple[str, bytes],
    file_b: tuple[str, bytes],
    enqueue: bool = True,
) -> LinkageRun:
    """The persons on both of two uploaded lists: the same registry person (each row linked to
    the registry) or probably the same person by the active model. Both files are read first;
    either one unreadable → nothing saved."""
    _require(actor, Perm.LINKAGE_RUN)
    model = _model_for_run(None)
    if file_a[1] and file_a[1] == file_b[1]:
        raise ValidationFailed.single(
            "file_b", "linkage.same_list", _("The two files are the same list.")
        )
    first = store_list(field="file_a", file_name=file_a[0], data=file_a[1])
    second = store_list(field="file_b", file_name=file_b[0], data=file_b[1])
    with transaction.atomic(durable=True):
        return _create_run(
            actor=actor,
            kind=RunKind.CROSS_PROGRAMME,
            model=model,
            parameters={
                "a": {"list": first.relative, "file_name": first.file_name},
                "b": {"list": second.relative, "file_name": second.file_name},
                "on": timezone.localdate().isoformat(),
            },
            enqueue=enqueue,
            source_name=f"{first.file_name} × {second.file_name}",
            metrics={
                "row_error_count": first.row_error_count + second.row_error_count,
                "warning_count": first.warning_count + second.warning_count,
                "row_errors": [{**e, "list": "a"} for e in first.row_errors]
                + [{**e, "list": "b"} for e in second.row_errors],
            },
        )


def run_date(run: LinkageRun) -> datetime.date:
    text = (run.parameters or {}).get("on")
    try:
        return datetime.date.fromisoformat(str(text))
    except ValueError:
        return timezone.localdate()
