"""Reads of record linkage's batch side: runs, models, a run's results and their download.

Runs and models need ``Perm.LINKAGE_VIEW``. A run's results name registry persons (ids, names,
CURPs): downloading them is recorded in the audit trail (one event per download, naming the run
and the number of rows) rather than one access-log entry per person — a result file is a bulk
extract, and its event says exactly which one was taken.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from pilar.core.actor import Actor
from pilar.core.audit import audit_record
from pilar.core.errors import NotFound, ValidationFailed
from pilar.core.pagination import Page, paginate
from pilar.core.roles import Perm
from pilar.linkage import services
from pilar.linkage.models import (
    LinkageModel,
    LinkageRun,
    MatchPair,
    PairStatus,
    RunKind,
    RunStatus,
)
from pilar.registry.models import Identifier, Programme

FORMATS = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# Result rows shown on a run's page; the download has them all.
PREVIEW_ROWS = 25

BASIS_LABELS: dict[str, Any] = {
    "same_record": gettext_lazy("Same registry record"),
    "merged": gettext_lazy("Records merged into one golden record"),
    "linked_cluster": gettext_lazy("Records linked by the deduplication"),
    "probable": gettext_lazy("Probably the same person (model)"),
}
STAGE_LABELS: dict[str, Any] = {
    "queued": gettext_lazy("Waiting for a worker"),
    "reading": gettext_lazy("Reading the records"),
    "features": gettext_lazy("Computing the comparison features"),
    "blocking": gettext_lazy("Counting the pairs each blocking rule generates"),
    "predicting": gettext_lazy("Scoring the candidate pairs"),
    "scoring": gettext_lazy("Explaining the pairs kept"),
    "training": gettext_lazy("Estimating the model (m and u)"),
    "writing": gettext_lazy("Saving the results"),
    "done": gettext_lazy("Finished"),
    "failed": gettext_lazy("Stopped"),
}


def _view(actor: Actor) -> None:
    actor.require(Perm.LINKAGE_VIEW)


# --- runs ---------------------------------------------------------------------------------------


def run_list(
    *,
    actor: Actor,
    kind: str = "",
    status: str = "",
    page: int = 1,
    page_size: int = 25,
) -> Page[LinkageRun]:
    """Runs, newest first, optionally of one kind and status."""
    _view(actor)
    errors: dict[str, Any] = {}
    if kind and kind not in RunKind.values:
        errors["kind"] = _("Unknown kind of run.")
    if status and status not in RunStatus.values:
        errors["status"] = _("Unknown status.")
    if errors:
        from pilar.core.errors import FieldError

        raise ValidationFailed(
            {name: [FieldError("invalid_choice", message)] for name, message in errors.items()}
        )
    runs: QuerySet[LinkageRun] = LinkageRun.objects.select_related("model", "created_by", "job")
    if kind:
        runs = runs.filter(kind=kind)
    if status:
        runs = runs.filter(status=status)
    return paginate(runs.order_by("-created_at", "-id"), page=page, page_size=page_size)


def run_get(*, actor: Actor, run_id: int) -> LinkageRun:
    _view(actor)
    run = LinkageRun.objects.select_related("model", "created_by", "job").filter(pk=run_id).first()
    if run is None:
        raise NotFound()
    return run


def run_progress(run: LinkageRun) -> tuple[str, int]:
    """(stage label, percent) of a run, from the stage its job reports."""
    from pilar.linkage.tasks import STAGES

    if run.status == RunStatus.DONE:
        return str(STAGE_LABELS["done"]), 100
    if run.status == RunStatus.FAILED:
        return str(STAGE_LABELS["failed"]), 0
    if run.status == RunStatus.QUEUED:
        return str(STAGE_LABELS["queued"]), 0
    stage = str((run.metrics or {}).get("stage", "reading"))
    stages = STAGES.get(run.kind, ())
    position = stages.index(stage) if stage in stages else 0
    percent = int(position * 100 / len(stages)) if stages else 0
    return str(STAGE_LABELS.get(stage, stage)), percent


def run_pair_counts(run: LinkageRun) -> dict[str, int]:
    """The run's stored pairs by their current status (decisions change them after the run)."""
    counts = dict.fromkeys(PairStatus.values, 0)
    for row in MatchPair.objects.filter(run=run).values("status").annotate(count=Count("id")):
        counts[row["status"]] = row["count"]
    return counts


@dataclass(frozen=True)
class BlockingRow:
    rule: str
    pairs: int
    cumulative: int
    share: int  # percent of the cumulative total, for the bar


def blocking_rows(run: LinkageRun) -> list[BlockingRow]:
    rules = (run.blocking or {}).get("rules") or []
    total = max((int(rule.get("cumulative", 0)) for rule in rules), default=0)
    return [
        BlockingRow(
            rule=str(rule.get("rule", "")),
            pairs=int(rule.get("pairs", 0)),
            cumulative=int(rule.get("cumulative", 0)),
            share=round(int(rule.get("cumulative", 0)) * 100 / total) if total else 0,
        )
        for rule in rules
    ]


def programmes() -> list[Programme]:
    return list(Programme.objects.order_by("code"))


# --- models -------------------------------------------------------------------------------------


def model_list(*, actor: Actor) -> list[LinkageModel]:
    _view(actor)
    return list(
        LinkageModel.objects.select_related("trained_by")
        .annotate(run_count=Count("runs", filter=~Q(runs__kind=RunKind.TRAIN)))
        .order_by("name", "-version")
    )


def model_get(*, actor: Actor, model_id: int) -> LinkageModel:
    _view(actor)
    model = LinkageModel.objects.select_related("trained_by").filter(pk=model_id).first()
    if model is None:
        raise NotFound()
    return model


@dataclass(frozen=True)
class LevelRow:
    label: str
    m: float | None
    u: float | None
    weight: float | None


@dataclass(frozen=True)
class ComparisonRow:
    name: str
    description: str
    levels: list[LevelRow]


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    # A runtime message id: the catalogue has the current labels; any other shows as written.
    return _(str(value)) if value else ""


def lambda_text(value: Any) -> str:
    """λ as a person reads it: "2.0e-07 (1 in 5,000,000)"."""
    number = _number(value)
    if number is None or number <= 0:
        return "—"
    return f"{number:.2g} (1 : {round(1 / number):,})"


def model_comparisons(model: LinkageModel) -> list[ComparisonRow]:
    """The m/u table of a model's summary: each comparison, its levels strongest first, with
    m, u and the level's match weight (log2 m/u). Labels and descriptions are the comparisons'
    own English texts (``linkage.comparisons`` runs without Django), translated here through
    the catalogues when they have them."""
    rows = []
    for comparison in (model.summary or {}).get("comparisons") or []:
        levels = [
            LevelRow(
                label=_text(level.get("label")),
                m=_number(level.get("m")),
                u=_number(level.get("u")),
                weight=_number(level.get("weight")),
            )
            for level in comparison.get("levels") or []
        ]
        rows.append(
            ComparisonRow(
                name=str(comparison.get("name", "")),
                description=_text(comparison.get("description")),
                levels=levels,
            )
        )
    return rows


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultTable:
    header: list[str]
    rows: list[list[Any]]


def _curps(person_ids: Iterable[int]) -> dict[int, str]:
    ids = list(set(person_ids))
    found: dict[int, str] = {}
    for offset in range(0, len(ids), 5000):
        for person, value in (
            Identifier.objects.filter(
                person_id__in=ids[offset : offset + 5000], scheme="CURP", is_active=True
            )
            .order_by("person_id", "value")
            .values_list("person_id", "value")
        ):
            found.setdefault(person, value)
    return found


def _status_label(status: str) -> str:
    try:
        return str(PairStatus(status).label)
    except ValueError:
        return status


def _dedupe_table(run: LinkageRun, limit: int | None) -> ResultTable:
    pairs = MatchPair.objects.filter(run=run).order_by("-match_weight", "id")
    if limit is not None:
        pairs = pairs[:limit]
    items = list(
        pairs.values_list(
            "left_person_id",
            "right_person_id",
            "match_weight",
            "match_probability",
            "status",
            "cluster",
            "identifier_conflict",
        )
    )
    curps = _curps([pk for item in items for pk in item[:2]])
    header = [
        _("Record"),
        _("CURP"),
        _("Other record"),
        _("Other CURP"),
        _("Match weight"),
        _("Probability"),
        _("Status"),
        _("Cluster"),
        _("Identifier conflict"),
    ]
    rows = [
        [
            left,
            curps.get(left),
            right,
            curps.get(right),
            round(weight, 3),
            round(probability, 6),
            _status_label(status),
            cluster or None,
            _("yes") if conflict else _("no"),
        ]
        for left, right, weight, probability, status, cluster, conflict in items
    ]
    return ResultTable(header, rows)


def _link_table(run: LinkageRun, limit: int | None) -> ResultTable:
    """One line per stored match of a list row (best first), one per row without a match, and
    one per row that could not be read."""
    from pilar.linkage.messages import list_error_message
    from pilar.linkage.tasks import read_stored_list

    pairs = list(
        MatchPair.objects.filter(run=run)
        .order_by("left_row", "-match_weight", "id")
        .values_list(
            "left_row",
            "left_record",
            "right_person_id",
            "match_weight",
            "match_probability",
            "status",
            "identifier_conflict",
        )
    )
    curps = _curps(item[2] for item in pairs)
    by_row: dict[int, list[Any]] = {}
    for item in pairs:
        by_row.setdefault(int(item[0] or 0), []).append(item)
    keys: dict[int, Any] = {}
    errors: dict[int, list[str]] = {}
    warnings: dict[int, list[str]] = {}
    rows_read: Sequence[int] = sorted(by_row)
    relative = str((run.parameters or {}).get("file", ""))
    if services.stored_path(relative).is_file():
        frame, row_errors = read_stored_list(relative)
        rows_read = frame["unique_id"].to_list()
        if "external_key" in frame.columns:
            keys = dict(
                zip(frame["unique_id"].to_list(), frame["external_key"].to_list(), strict=True)
            )
        for error in row_errors:
            target = errors if error.severity == "error" else warnings
            target.setdefault(int(error.row), []).append(list_error_message(error))
    header = [
        _("Row"),
        _("External key"),
        _("Person"),
        _("CURP"),
        _("Match weight"),
        _("Probability"),
        _("Status"),
        _("Detail"),
    ]
    lines: list[tuple[int, list[Any]]] = []
    for row in rows_read:
        matches = by_row.get(int(row))
        key = keys.get(row)
        if key is None and matches:
            key = (matches[0][1] or {}).get("external_key")
        noted = "; ".join(warnings.get(int(row), [])) or None
        if not matches:
            lines.append((int(row), [row, key, None, None, None, None, _("No match"), noted]))
            continue
        for _row, _record, person, weight, probability, status, conflict in matches:
            detail = [_("CURP or NSS differ")] if conflict else []
            lines.append(
                (
                    int(row),
                    [
                        row,
                        key,
                        person,
                        curps.get(person),
                        round(weight, 3),
                        round(probability, 6),
                        _status_label(status),
                        "; ".join([*detail, *warnings.get(int(row), [])]) or None,
                    ],
                )
            )
    for row, messages in errors.items():
        lines.append((row, [row, None, None, None, None, None, _("Not read"), "; ".join(messages)]))
    lines.sort(key=lambda line: line[0])
    body = [line for _row, line in lines]
    return ResultTable(header, body[:limit] if limit is not None else body)


def _cross_table(run: LinkageRun, limit: int | None) -> ResultTable:
    from pilar.linkage.tasks import CROSS_COLUMNS, result_path

    path = result_path(run.pk)
    frame = pl.read_parquet(path) if path.is_file() else pl.DataFrame(schema=CROSS_COLUMNS)
    if limit is not None:
        frame = frame.head(limit)
    lists = "list" in ((run.parameters or {}).get("a") or {})
    header = [_("Why"), _("Person (A)"), _("Name (A)"), _("CURP (A)")]
    header += [_("Person (B)"), _("Name (B)"), _("CURP (B)"), _("Golden record")]
    header += [_("Match weight"), _("Probability")]
    if lists:
        header = [_("Row (A)"), _("Key (A)"), _("Row (B)"), _("Key (B)"), *header]
    rows = []
    for item in frame.iter_rows(named=True):
        line = [
            str(BASIS_LABELS.get(item["basis"], item["basis"])),
            item["a_person"],
            item["a_name"],
            item["a_curp"],
            item["b_person"],
            item["b_name"],
            item["b_curp"],
            item["golden"],
            None if item["weight"] is None else round(item["weight"], 3),
            None if item["probability"] is None else round(item["probability"], 6),
        ]
        if lists:
            line = [item["a_row"], item["a_key"], item["b_row"], item["b_key"], *line]
        rows.append(line)
    return ResultTable(header, rows)


def result_table(run: LinkageRun, *, limit: int | None = PREVIEW_ROWS) -> ResultTable | None:
    """A finished run's results as a table (``None`` for a training run, or a run not done)."""
    if run.status != RunStatus.DONE:
        return None
    if run.kind == RunKind.DEDUPE:
        return _dedupe_table(run, limit)
    if run.kind == RunKind.LINK:
        return _link_table(run, limit)
    if run.kind == RunKind.CROSS_PROGRAMME:
        return _cross_table(run, limit)
    return None


def run_download(*, actor: Actor, run_id: int, file_format: str) -> tuple[str, str, bytes]:
    """(file name, content type, bytes) of a finished run's full results as CSV or XLSX."""
    from pilar.contributions.fileformat import csv_bytes, xlsx_bytes

    run = run_get(actor=actor, run_id=run_id)
    if file_format not in FORMATS:
        raise ValidationFailed.single("format", "invalid_choice", _("Choose CSV or XLSX."))
    table = result_table(run, limit=None)
    if table is None:
        raise NotFound(_("This run has no results to download."))
    if file_format == "csv":
        data = csv_bytes(table.header, table.rows)
    else:
        data = xlsx_bytes(table.header, table.rows, sheet_title=str(run.get_kind_display()))
    audit_record(
        actor=actor,
        action="linkage.run_download",
        entity_type="linkage.run",
        entity_id=run.pk,
        note=f"{file_format}, {len(table.rows)} rows",
    )
    stamp = (run.finished_at or run.created_at).astimezone(datetime.UTC).strftime("%Y%m%d")
    name = f"pilar-linkage-{run.kind}-{run.pk}-{stamp}.{file_format}"
    return name, CONTENT_TYPES[file_format], data
