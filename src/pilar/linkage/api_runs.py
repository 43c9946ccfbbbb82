"""REST API of record linkage's batch side (aggregated by ``linkage.api``):

- ``GET /v1/linkage/runs``: runs, newest first (filters: kind, status).
- ``POST /v1/linkage/runs/dedupe``: deduplicate the registry (202 with the run).
- ``POST /v1/linkage/runs/link``: link an uploaded list (multipart; 202, or 200 with the earlier
  run for the same file).
- ``POST /v1/linkage/runs/train``: train a new model version (202 with the run).
- ``GET /v1/linkage/runs/{int:run_id}``: a run, its progress, blocking analysis and figures.
- ``GET /v1/linkage/runs/{int:run_id}/results``: a finished run's results, CSV or XLSX.
- ``GET /v1/linkage/models``, ``GET /v1/linkage/models/{int:model_id}``: models with m/u.
- ``PATCH /v1/linkage/models/{int:model_id}``: change its thresholds.
- ``POST /v1/linkage/models/{int:model_id}/activate``: make it the active model.
- ``GET /v1/linkage/models/{int:model_id}/export``: the model file.
- ``POST /v1/linkage/models/import``: save a model file as the next version (multipart).
- ``POST /v1/linkage/cross-programme``: the persons receiving two programmes (202).
- ``POST /v1/linkage/cross-programme/lists``: the persons on two uploaded lists (202).
- ``GET /v1/linkage/cross-programme/{run_id}``: a cross-programme check and its results.

Runs are asynchronous: poll the run until its status is ``done`` or ``failed``. Each operation
parses, calls one service or selector with the request's actor and shapes the answer; a refused
start is a problem+json document and writes nothing.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from ninja import Field, File, Form, Path, Query, Router, Schema, Status
from ninja.files import UploadedFile

from pilar.core.api import (
    AUTH_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    InputSchema,
    PageNumber,
    PageOut,
    PageSize,
    ProblemOut,
    RecordId,
    RequestTooLarge,
    actor_of,
    page_out,
)
from pilar.core.api import MAX_ID as _MAX_ID
from pilar.core.errors import NotFound
from pilar.linkage import selectors_runs, services
from pilar.linkage.models import LinkageModel, LinkageRun, RunKind, RunStatus

router = Router(tags=["linkage"])

RunId = Annotated[int, Path(ge=1, le=_MAX_ID)]
ModelId = Annotated[int, Path(ge=1, le=_MAX_ID)]
UPLOAD_ERRORS: dict[int, type[ProblemOut]] = {**WRITE_ERRORS, 413: ProblemOut}
RESULT_ROWS = 100
REVIEW_PAIRS_PATH = "/api/v1/linkage/pairs"


# --- documents ----------------------------------------------------------------------------------


class BlockingRuleOut(Schema):
    rule: str
    pairs: int
    cumulative: int
    pair_completeness: float | None = None


class BlockingOut(Schema):
    rules: list[BlockingRuleOut] = []
    total: int | None = None
    records: int | None = None
    pair_completeness: float | None = Field(
        None, description="Share of the true pairs the blocking rules generate, when known."
    )


class RunOut(Schema):
    id: int
    kind: str = Field(description="dedupe, link, cross_programme or train.")
    status: str = Field(description="queued, running, done or failed.")
    stage: str = Field(description="What the job is doing now (reading, features, …, done).")
    progress: int = Field(description="Percent, by stage.")
    model_id: int | None
    source_name: str
    source_sha256: str
    parameters: dict[str, Any]
    records: int
    pairs_scored: int
    auto_linked: int
    for_review: int
    clusters: int
    blocking: BlockingOut | None
    metrics: dict[str, Any]
    error: str
    created_by: str | None
    created_at: datetime.datetime
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    results_url: str | None = Field(description="CSV or XLSX results, once done.")
    review_url: str | None = Field(description="The pairs of this run awaiting review.")


class RunDetailOut(RunOut):
    results: dict[str, Any] | None = Field(
        None, description="The first result rows: {header, rows} (all of them in the download)."
    )


class LevelOut(Schema):
    label: str
    m: float | None
    u: float | None
    weight: float | None


class ComparisonOut(Schema):
    name: str
    description: str
    levels: list[LevelOut]


class ModelOut(Schema):
    id: int
    name: str
    version: int
    is_active: bool
    auto_link_weight: float
    review_weight: float
    feature_version: int
    splink_version: str
    sha256: str
    trained_by: str | None
    created_at: datetime.datetime
    export_url: str


class ModelDetailOut(ModelOut):
    probability_two_random_records_match: float | None
    prior_weight: float | None
    training: dict[str, Any]
    comparisons: list[ComparisonOut]


class DedupeIn(InputSchema):
    model_id: RecordId | None = Field(None, description="Default: the active model.")
    region: str | None = Field(None, max_length=2, description="Only one state's persons.")


class TrainIn(InputSchema):
    sample: int | None = Field(
        None, ge=1_000, le=5_000_000, description="At most this many persons (random)."
    )
    seed: int = Field(42, ge=0, le=2**31 - 1)


class ThresholdsIn(InputSchema):
    auto_link_weight: float = Field(ge=-60, le=60)
    review_weight: float = Field(ge=-60, le=60)


class CrossProgrammeIn(InputSchema):
    programme_a: str = Field(max_length=30, description="Programme code (or id).")
    programme_b: str = Field(max_length=30, description="Programme code (or id).")


def _user(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def run_document(request: HttpRequest, run: LinkageRun) -> dict[str, Any]:
    _stage, percent = selectors_runs.run_progress(run)
    done = run.status == RunStatus.DONE
    has_results = done and run.kind != RunKind.TRAIN
    metrics = dict(run.metrics or {})
    return {
        "id": run.pk,
        "kind": run.kind,
        "status": run.status,
        "stage": str((run.metrics or {}).get("stage", run.status)),
        "progress": percent,
        "model_id": run.model_id,
        "source_name": run.source_name,
        "source_sha256": run.source_sha256,
        "parameters": {k: v for k, v in (run.parameters or {}).items() if k != "truth"},
        "records": run.records,
        "pairs_scored": run.pairs_scored,
        "auto_linked": run.auto_linked,
        "for_review": run.for_review,
        "clusters": run.clusters,
        "blocking": run.blocking or None,
        "metrics": metrics,
        "error": run.error,
        "created_by": _user(run.created_by),
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "results_url": request.build_absolute_uri(
            reverse("api:linkage_run_results", kwargs={"run_id": run.pk})
        )
        if has_results
        else None,
        # The review queue's list operation (``api_review``), filtered by this run.
        "review_url": request.build_absolute_uri(
            f"{REVIEW_PAIRS_PATH}?{urlencode({'run': str(run.pk), 'status': 'pending'})}"
        )
        if done and run.kind in (RunKind.DEDUPE, RunKind.LINK)
        else None,
    }


def _run_detail(request: HttpRequest, run: LinkageRun) -> dict[str, Any]:
    document = run_document(request, run)
    table = selectors_runs.result_table(run, limit=RESULT_ROWS)
    document["results"] = (
        None
        if table is None
        else {"header": table.header, "rows": [[_plain(v) for v in row] for row in table.rows]}
    )
    return document


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def model_document(request: HttpRequest, model: LinkageModel) -> dict[str, Any]:
    return {
        "id": model.pk,
        "name": model.name,
        "version": model.version,
        "is_active": model.is_active,
        "auto_link_weight": model.auto_link_weight,
        "review_weight": model.review_weight,
        "feature_version": model.feature_version,
        "splink_version": model.splink_version,
        "sha256": model.sha256,
        "trained_by": _user(model.trained_by),
        "created_at": model.created_at,
        "export_url": request.build_absolute_uri(
            reverse("api:linkage_model_export", kwargs={"model_id": model.pk})
        ),
    }


def _model_detail(request: HttpRequest, model: LinkageModel) -> dict[str, Any]:
    summary = model.summary or {}
    return {
        **model_document(request, model),
        "probability_two_random_records_match": summary.get("probability_two_random_records_match"),
        "prior_weight": summary.get("prior_weight"),
        "training": summary.get("training") or {},
        "comparisons": [
            {
                "name": row.name,
                "description": row.description,
                "levels": [
                    {"label": level.label, "m": level.m, "u": level.u, "weight": level.weight}
                    for level in row.levels
                ],
            }
            for row in selectors_runs.model_comparisons(model)
        ],
    }


def _location(response: HttpResponse, run: LinkageRun) -> None:
    response["Location"] = reverse("api:linkage_run_get", kwargs={"run_id": run.pk})


def _file_bytes(upload: UploadedFile, limit: int) -> bytes:
    # Refused before it is read into memory: the service would refuse it anyway.
    if upload.size is not None and upload.size > limit:
        raise RequestTooLarge(
            _("The file is larger than %(mb)s MB.") % {"mb": limit // (1024 * 1024)}
        )
    data: bytes = upload.read()
    return data


# --- runs ---------------------------------------------------------------------------------------


@router.get(
    "/linkage/runs",
    response={200: PageOut[RunOut], **AUTH_ERRORS, 422: ProblemOut},
    summary="List linkage runs",
)
def linkage_run_list(
    request: HttpRequest,
    kind: Annotated[str, Query("", max_length=20, description="dedupe, link, …")],
    status: Annotated[str, Query("", max_length=10, description="queued, running, …")],
    page: Annotated[PageNumber, Query(1)],
    page_size: Annotated[PageSize, Query(25)],
) -> dict[str, Any]:
    """Newest first."""
    result = selectors_runs.run_list(
        actor=actor_of(request), kind=kind, status=status, page=page, page_size=page_size
    )
    return page_out(request, result, [run_document(request, run) for run in result.items])


@router.post(
    "/linkage/runs/dedupe",
    response={202: RunOut, **WRITE_ERRORS},
    summary="Deduplicate the registry",
)
def linkage_dedupe_start(request: HttpRequest, response: HttpResponse, payload: DedupeIn) -> Status:
    """Queue a deduplication with the active model (or `model_id`). Poll the run; its pending
    pairs then appear in the review queue. 409 `linkage.no_model` without a model,
    `linkage.run_busy` while another deduplication is queued or running."""
    run = services.start_dedupe(
        actor=actor_of(request), model_id=payload.model_id, region=payload.region or None
    )
    _location(response, run)
    return Status(202, run_document(request, run))


@router.post(
    "/linkage/runs/link",
    response={200: RunOut, 202: RunOut, **UPLOAD_ERRORS},
    summary="Link a list to the registry",
)
def linkage_link_start(
    request: HttpRequest,
    response: HttpResponse,
    file: Annotated[UploadedFile, File(..., description="CSV or XLSX, one person per row.")],
    name: Annotated[str, Form("", max_length=200, description="A name for the list.")],
) -> Status:
    """`multipart/form-data` with `file` and an optional `name`. A file that cannot be read
    (encoding, missing columns, no rows…) is refused with 422 and every problem; rows with
    errors are reported on the run and skipped. The same file again answers 200 with its
    earlier run."""
    run, created = services.start_list_linkage(
        actor=actor_of(request),
        file_name=file.name or "list.csv",
        data=_file_bytes(file, services.LIST_MAX_BYTES),
        name=name,
    )
    _location(response, run)
    return Status(202 if created else 200, run_document(request, run))


@router.post(
    "/linkage/runs/train",
    response={202: RunOut, **WRITE_ERRORS},
    summary="Train a new model version",
)
def linkage_train_start(request: HttpRequest, response: HttpResponse, payload: TrainIn) -> Status:
    """Queue unsupervised training on the registry; the run names the saved model when done.
    The node's first model becomes active; later ones are activated explicitly."""
    run = services.start_training(actor=actor_of(request), sample=payload.sample, seed=payload.seed)
    _location(response, run)
    return Status(202, run_document(request, run))


@router.get(
    "/linkage/runs/{int:run_id}",
    response={200: RunDetailOut, **READ_ERRORS},
    summary="A linkage run",
    url_name="linkage_run_get",
)
def linkage_run_get(request: HttpRequest, run_id: RunId) -> dict[str, Any]:
    """Status, progress, blocking analysis (pairs per rule and cumulative; pair completeness
    when the truth was known), figures, and the first result rows once done."""
    return _run_detail(request, selectors_runs.run_get(actor=actor_of(request), run_id=run_id))


@router.get(
    "/linkage/runs/{int:run_id}/results",
    response={200: None, **READ_ERRORS},
    summary="A run's results (CSV or XLSX)",
    url_name="linkage_run_results",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The results file.",
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    selectors_runs.CONTENT_TYPES["xlsx"]: {
                        "schema": {"type": "string", "format": "binary"}
                    },
                },
            }
        }
    },
)
def linkage_run_results(
    request: HttpRequest,
    run_id: RunId,
    format: Annotated[str, Query("csv", pattern="^(csv|xlsx)$", description="csv or xlsx.")],
) -> HttpResponse:
    """Every result row: for a list linkage one line per match of a row (row, external key,
    person, CURP, weight, probability, status), per row without a match and per unreadable
    row; for a deduplication its pairs; for a cross-programme check the persons receiving
    both. The download is recorded in the audit trail."""
    name, content_type, data = selectors_runs.run_download(
        actor=actor_of(request), run_id=run_id, file_format=format
    )
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


# --- models -------------------------------------------------------------------------------------


@router.get(
    "/linkage/models",
    response={200: list[ModelOut], **AUTH_ERRORS},
    summary="List linkage models",
)
def linkage_model_list(request: HttpRequest) -> list[dict[str, Any]]:
    """Every saved version, newest first; `is_active` marks the one in use."""
    return [
        model_document(request, model)
        for model in selectors_runs.model_list(actor=actor_of(request))
    ]


@router.get(
    "/linkage/models/{int:model_id}",
    response={200: ModelDetailOut, **READ_ERRORS},
    summary="A linkage model",
)
def linkage_model_get(request: HttpRequest, model_id: ModelId) -> dict[str, Any]:
    """With λ and m, u and the match weight of every comparison level."""
    model = selectors_runs.model_get(actor=actor_of(request), model_id=model_id)
    return _model_detail(request, model)


@router.patch(
    "/linkage/models/{int:model_id}",
    response={200: ModelDetailOut, **WRITE_ERRORS},
    summary="Change a model's thresholds",
)
def linkage_model_thresholds(
    request: HttpRequest, model_id: ModelId, payload: ThresholdsIn
) -> dict[str, Any]:
    """Match weights; the auto-link threshold must be above the review threshold. Applies to
    runs started afterwards and at once to the point of entry."""
    model = services.model_thresholds_update(
        actor=actor_of(request),
        model_id=model_id,
        auto_link_weight=payload.auto_link_weight,
        review_weight=payload.review_weight,
    )
    return _model_detail(request, model)


@router.post(
    "/linkage/models/{int:model_id}/activate",
    response={200: ModelDetailOut, **WRITE_ERRORS},
    summary="Make a model the active one",
)
def linkage_model_activate(request: HttpRequest, model_id: ModelId) -> dict[str, Any]:
    model = services.activate_model(actor=actor_of(request), model_id=model_id)
    return _model_detail(request, model)


@router.get(
    "/linkage/models/{int:model_id}/export",
    response={200: None, **READ_ERRORS},
    summary="Export a model file",
    url_name="linkage_model_export",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The model file (JSON).",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        }
    },
)
def linkage_model_export(request: HttpRequest, model_id: ModelId) -> HttpResponse:
    """The model file to import on another node (`POST /linkage/models/import`)."""
    name, text = services.export_model(actor=actor_of(request), model_id=model_id)
    response = HttpResponse(text.encode(), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@router.post(
    "/linkage/models/import",
    response={201: ModelDetailOut, **UPLOAD_ERRORS},
    summary="Import a model file",
)
def linkage_model_import(
    request: HttpRequest,
    file: Annotated[UploadedFile, File(..., description="A model file exported by Pilar.")],
    activate: Annotated[bool, Form(False, description="Make it the active model.")],
) -> Status:
    """`multipart/form-data` with `file`. A file that is not a Pilar model, or was made with
    another format, feature or Splink version, is refused with 422 naming what differs."""
    model = services.import_model(
        actor=actor_of(request),
        text=_file_bytes(file, services.MODEL_MAX_BYTES),
        activate=activate,
    )
    return Status(201, _model_detail(request, model))


# --- cross-programme ----------------------------------------------------------------------------


@router.post(
    "/linkage/cross-programme",
    response={202: RunOut, **WRITE_ERRORS},
    summary="Persons receiving two programmes",
)
def linkage_cross_programme_start(
    request: HttpRequest, response: HttpResponse, payload: CrossProgrammeIn
) -> Status:
    """Persons with an active enrolment in force in both programmes: the same registry
    person (directly, merged records, auto-linked clusters) and, with the active model,
    probably the same person. Poll `GET /linkage/cross-programme/{run_id}`."""
    run = services.start_cross_programme(
        actor=actor_of(request), programme_a=payload.programme_a, programme_b=payload.programme_b
    )
    response["Location"] = reverse("api:linkage_cross_get", kwargs={"run_id": run.pk})
    return Status(202, run_document(request, run))


@router.post(
    "/linkage/cross-programme/lists",
    response={202: RunOut, **UPLOAD_ERRORS},
    summary="Persons on two lists",
)
def linkage_cross_lists_start(
    request: HttpRequest,
    response: HttpResponse,
    file_a: Annotated[UploadedFile, File(..., description="The first list (CSV or XLSX).")],
    file_b: Annotated[UploadedFile, File(..., description="The second list (CSV or XLSX).")],
) -> Status:
    """`multipart/form-data` with `file_a` and `file_b`. Either file unreadable → 422 and
    nothing kept."""
    run = services.start_cross_lists(
        actor=actor_of(request),
        file_a=(file_a.name or "a.csv", _file_bytes(file_a, services.LIST_MAX_BYTES)),
        file_b=(file_b.name or "b.csv", _file_bytes(file_b, services.LIST_MAX_BYTES)),
    )
    response["Location"] = reverse("api:linkage_cross_get", kwargs={"run_id": run.pk})
    return Status(202, run_document(request, run))


@router.get(
    "/linkage/cross-programme/{int:run_id}",
    response={200: RunDetailOut, **READ_ERRORS},
    summary="A cross-programme check",
    url_name="linkage_cross_get",
)
def linkage_cross_get(request: HttpRequest, run_id: RunId) -> dict[str, Any]:
    """As `GET /linkage/runs/{int:run_id}`; 404 for a run of another kind."""
    run = selectors_runs.run_get(actor=actor_of(request), run_id=run_id)
    if run.kind != RunKind.CROSS_PROGRAMME:
        raise NotFound()
    return _run_detail(request, run)
