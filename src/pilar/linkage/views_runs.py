"""Staff screens of record linkage's batch side: runs (deduplication, list linkage,
cross-programme checks) with their progress, blocking analysis, figures and results, and the
trained models (m/u, thresholds, activation, export and import).

Views stay thin: reads through ``selectors_runs``, writes through ``services``, whose refusals
come back as errors on the form's fields. A run's page follows its job by htmx polling, as the
recalculation runs' page does.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pilar.core.errors import Conflict, ValidationFailed
from pilar.core.forms import PilarForm, apply_service_errors
from pilar.core.models import JobStatus
from pilar.core.regions import STATE_CHOICES
from pilar.core.roles import Perm
from pilar.core.views import actor_for, is_htmx, page_number, staff_view
from pilar.linkage import selectors_runs, services
from pilar.linkage.models import LinkageModel, LinkageRun, RunKind, RunStatus

FILE_ACCEPT = (
    ".csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)
ROW_ERRORS_SHOWN = 50


# --- forms --------------------------------------------------------------------------------------


class RunFilterForm(PilarForm):
    kind = forms.ChoiceField(
        label=gettext_lazy("Kind"),
        choices=[("", gettext_lazy("Any kind")), *RunKind.choices],
        required=False,
    )
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        choices=[("", gettext_lazy("Any status")), *RunStatus.choices],
        required=False,
    )


class DedupeForm(PilarForm):
    model = forms.ChoiceField(
        label=gettext_lazy("Model"),
        required=False,
        help_text=gettext_lazy("Leave it on the active model unless you are comparing versions."),
    )
    region = forms.ChoiceField(
        label=gettext_lazy("Region"),
        required=False,
        help_text=gettext_lazy(
            "Only the persons administered in one state, or the whole registry."
        ),
    )

    def __init__(self, *args: Any, models: list[LinkageModel], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model_field = self.fields["model"]
        assert isinstance(model_field, forms.ChoiceField)
        model_field.choices = [("", _("The active model"))] + [
            (str(model.pk), f"{model.name} v{model.version}") for model in models
        ]
        region_field = self.fields["region"]
        assert isinstance(region_field, forms.ChoiceField)
        region_field.choices = [("", _("The whole registry")), *STATE_CHOICES]


class ListForm(PilarForm):
    name = forms.CharField(
        label=gettext_lazy("Name of the list"),
        max_length=services.LIST_NAME_MAX,
        required=False,
        help_text=gettext_lazy("For example: Beneficiaries of the state programme, May 2026."),
    )
    file = forms.FileField(
        label=gettext_lazy("List (CSV or XLSX)"),
        error_messages={
            "required": gettext_lazy("Choose the list file (CSV or XLSX)."),
            "empty": gettext_lazy("The file is empty."),
        },
        widget=forms.ClearableFileInput(attrs={"accept": FILE_ACCEPT}),
        help_text=gettext_lazy(
            "One person per row with the columns nombre, apellido_paterno, apellido_materno, "
            "fecha_nacimiento, and if known sexo, curp, nss, entidad_nacimiento and folio "
            "(English headers work too)."
        ),
    )


class CrossProgrammeForm(PilarForm):
    programme_a = forms.ChoiceField(label=gettext_lazy("First programme"))
    programme_b = forms.ChoiceField(label=gettext_lazy("Second programme"))

    def __init__(self, *args: Any, choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("programme_a", "programme_b"):
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = choices


class CrossListsForm(PilarForm):
    file_a = forms.FileField(
        label=gettext_lazy("First list (CSV or XLSX)"),
        error_messages={"required": gettext_lazy("Choose the first list.")},
        widget=forms.ClearableFileInput(attrs={"accept": FILE_ACCEPT}),
    )
    file_b = forms.FileField(
        label=gettext_lazy("Second list (CSV or XLSX)"),
        error_messages={"required": gettext_lazy("Choose the second list.")},
        widget=forms.ClearableFileInput(attrs={"accept": FILE_ACCEPT}),
    )


class ThresholdsForm(PilarForm):
    auto_link_weight = forms.FloatField(
        label=gettext_lazy("Auto-link threshold (match weight)"),
        help_text=gettext_lazy(
            "Pairs at or above it, with no CURP or NSS conflict, are linked without review."
        ),
    )
    review_weight = forms.FloatField(
        label=gettext_lazy("Review threshold (match weight)"),
        help_text=gettext_lazy("Pairs between the two thresholds go to the review queue."),
    )


class ModelImportForm(PilarForm):
    file = forms.FileField(
        label=gettext_lazy("Model file (JSON)"),
        error_messages={"required": gettext_lazy("Choose the model file.")},
        widget=forms.ClearableFileInput(attrs={"accept": ".json,application/json"}),
    )
    activate = forms.BooleanField(label=gettext_lazy("Make it the active model"), required=False)


def _programme_choices() -> list[tuple[str, str]]:
    from django.utils.translation import get_language

    language = get_language()
    return [
        (str(programme.pk), f"{programme.code} — {programme.name(language)}")
        for programme in selectors_runs.programmes()
    ]


def review_queue_url(run: LinkageRun) -> str:
    """The review queue filtered by this run (the review screens' URL, by path until they
    exist)."""
    try:
        base = reverse("linkage:review_queue")
    except NoReverseMatch:
        base = "/linkage/review/"
    return f"{base}?{urlencode({'run': run.pk})}"


# --- runs ---------------------------------------------------------------------------------------


@require_GET
@staff_view
def run_list(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    form = RunFilterForm(request.GET or None)
    kind = status = ""
    if form.is_bound and form.is_valid():
        kind, status = form.cleaned_data["kind"], form.cleaned_data["status"]
    page = selectors_runs.run_list(actor=actor, kind=kind, status=status, page=page_number(request))
    rows = [(run, *selectors_runs.run_progress(run)) for run in page.items]
    return render(
        request,
        "linkage/run_list.html",
        {
            "page": page,
            "rows": rows,
            "form": form,
            "can_run": actor.can(Perm.LINKAGE_RUN),
            "active_model": services.active_model(),
        },
    )


@require_http_methods(["GET", "POST"])
@staff_view
def run_dedupe_new(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.LINKAGE_RUN)
    models = selectors_runs.model_list(actor=actor)
    form = DedupeForm(request.POST if request.method == "POST" else None, models=models)
    if request.method == "POST" and form.is_valid():
        model_id = int(form.cleaned_data["model"]) if form.cleaned_data["model"] else None
        try:
            run = services.start_dedupe(
                actor=actor, model_id=model_id, region=form.cleaned_data["region"] or None
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
        except Conflict as error:
            form.add_error(None, str(error.message))
        else:
            return redirect("linkage:run_detail", run_id=run.pk)
    return render(
        request,
        "linkage/run_dedupe_new.html",
        {"form": form, "active_model": services.active_model()},
        status=422 if form.is_bound else 200,
    )


@require_http_methods(["GET", "POST"])
@staff_view
def run_link_new(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.LINKAGE_RUN)
    posted = request.method == "POST"
    form = ListForm(request.POST if posted else None, request.FILES if posted else None)
    if posted and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            run, created = services.start_list_linkage(
                actor=actor,
                file_name=upload.name or "list.csv",
                data=_read_upload(upload, services.LIST_MAX_BYTES),
                name=form.cleaned_data["name"],
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
        except Conflict as error:
            form.add_error(None, str(error.message))
        else:
            if not created:
                messages.info(
                    request,
                    _("This file was linked before (run %(id)s): here are its results.")
                    % {"id": run.pk},
                )
            return redirect("linkage:run_detail", run_id=run.pk)
    return render(
        request,
        "linkage/run_link_new.html",
        {"form": form, "active_model": services.active_model()},
        status=422 if form.is_bound else 200,
    )


def _read_upload(upload: Any, limit: int) -> bytes:
    # Refused before it is read into memory: the service would refuse it anyway.
    if upload.size is not None and upload.size > limit:
        raise ValidationFailed.single(
            "file",
            "too_large",
            _("The file is larger than %(mb)s MB.") % {"mb": limit // (1024 * 1024)},
        )
    data: bytes = upload.read()
    return data


def run_context(run: LinkageRun) -> dict[str, Any]:
    job = run.job
    job_failed = job is not None and job.status == JobStatus.FAILED
    stage, percent = selectors_runs.run_progress(run)
    metrics = run.metrics or {}
    context: dict[str, Any] = {
        "run": run,
        "working": run.status in (RunStatus.QUEUED, RunStatus.RUNNING) and not job_failed,
        "failed": job_failed or run.status == RunStatus.FAILED,
        "done": run.status == RunStatus.DONE,
        "stage": stage,
        "percent": percent,
        "metrics": metrics,
        "row_errors": _row_errors(metrics),
        "row_error_count": int(metrics.get("row_error_count", 0) or 0),
        "blocking": selectors_runs.blocking_rows(run),
        "pair_completeness": (run.blocking or {}).get("pair_completeness"),
        "blocking_total": (run.blocking or {}).get("total"),
        "accuracy": metrics.get("accuracy"),
        "review_url": review_queue_url(run),
        "by_basis": [
            (str(selectors_runs.BASIS_LABELS.get(basis, basis)), count)
            for basis, count in (metrics.get("by_basis") or {}).items()
        ],
    }
    if run.status == RunStatus.DONE:
        context["pair_counts"] = selectors_runs.run_pair_counts(run)
        context["table"] = selectors_runs.result_table(run)
    return context


def _row_errors(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    from pilar.linkage.messages import list_error_message

    rows = []
    for error in (metrics.get("row_errors") or [])[:ROW_ERRORS_SHOWN]:
        stored = SimpleNamespace(code=error.get("code", ""), params=error.get("params") or {})
        rows.append(
            {
                "row": error.get("row"),
                "column": error.get("column") or "",
                "list": error.get("list", ""),
                "skipped": error.get("severity", "error") == "error",
                "message": list_error_message(stored),
            }
        )
    return rows


@require_GET
@staff_view
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    actor = actor_for(request)
    run = selectors_runs.run_get(actor=actor, run_id=run_id)
    response = render(request, "linkage/run_detail.html", run_context(run))
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@staff_view
def run_progress(request: HttpRequest, run_id: int) -> HttpResponse:
    """The polled part of a run's page; without htmx, the whole page."""
    if not is_htmx(request):
        return redirect("linkage:run_detail", run_id=run_id)
    actor = actor_for(request)
    run = selectors_runs.run_get(actor=actor, run_id=run_id)
    response = render(request, "linkage/run_body.html", run_context(run))
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@staff_view
def run_download(request: HttpRequest, run_id: int, file_format: str) -> HttpResponse:
    actor = actor_for(request)
    name, content_type, data = selectors_runs.run_download(
        actor=actor, run_id=run_id, file_format=file_format
    )
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- cross-programme ----------------------------------------------------------------------------


@require_GET
@staff_view
def cross_list(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    page = selectors_runs.run_list(
        actor=actor, kind=RunKind.CROSS_PROGRAMME, page=page_number(request)
    )
    rows = [(run, *selectors_runs.run_progress(run)) for run in page.items]
    return render(
        request,
        "linkage/cross_list.html",
        {"page": page, "rows": rows, "can_run": actor.can(Perm.LINKAGE_RUN)},
    )


@require_http_methods(["GET", "POST"])
@staff_view
def cross_new(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.LINKAGE_RUN)
    form = CrossProgrammeForm(
        request.POST if request.method == "POST" else None, choices=_programme_choices()
    )
    if request.method == "POST" and form.is_valid():
        try:
            run = services.start_cross_programme(
                actor=actor,
                programme_a=int(form.cleaned_data["programme_a"]),
                programme_b=int(form.cleaned_data["programme_b"]),
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
        else:
            return redirect("linkage:run_detail", run_id=run.pk)
    return render(
        request,
        "linkage/cross_new.html",
        {"form": form, "active_model": services.active_model()},
        status=422 if form.is_bound else 200,
    )


@require_http_methods(["GET", "POST"])
@staff_view
def cross_lists_new(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.LINKAGE_RUN)
    posted = request.method == "POST"
    form = CrossListsForm(request.POST if posted else None, request.FILES if posted else None)
    if posted and form.is_valid():
        first, second = form.cleaned_data["file_a"], form.cleaned_data["file_b"]
        try:
            run = services.start_cross_lists(
                actor=actor,
                file_a=(first.name or "a.csv", _read_upload(first, services.LIST_MAX_BYTES)),
                file_b=(second.name or "b.csv", _read_upload(second, services.LIST_MAX_BYTES)),
            )
        except ValidationFailed as error:
            apply_service_errors(form, error, {"file": "file_a"})
        except Conflict as error:
            form.add_error(None, str(error.message))
        else:
            return redirect("linkage:run_detail", run_id=run.pk)
    return render(
        request,
        "linkage/cross_lists_new.html",
        {"form": form, "active_model": services.active_model()},
        status=422 if form.is_bound else 200,
    )


# --- models -------------------------------------------------------------------------------------


@require_GET
@staff_view
def model_list(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    models = selectors_runs.model_list(actor=actor)
    training = selectors_runs.run_list(actor=actor, kind=RunKind.TRAIN, page=1, page_size=5)
    return render(
        request,
        "linkage/model_list.html",
        {
            "models": models,
            "training_runs": [(run, *selectors_runs.run_progress(run)) for run in training.items],
            "can_run": actor.can(Perm.LINKAGE_RUN),
        },
    )


@require_POST
@staff_view
def model_train(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    try:
        run = services.start_training(actor=actor)
    except Conflict as error:
        messages.error(request, str(error.message))
        return redirect("linkage:model_list")
    return redirect("linkage:run_detail", run_id=run.pk)


def _model_context(model: LinkageModel, form: ThresholdsForm | None = None) -> dict[str, Any]:
    summary = model.summary or {}
    return {
        "model": model,
        "comparisons": selectors_runs.model_comparisons(model),
        "prior_weight": summary.get("prior_weight"),
        "lambda_": selectors_runs.lambda_text(summary.get("probability_two_random_records_match")),
        "training": summary.get("training") or {},
        "form": form
        or ThresholdsForm(
            initial={
                "auto_link_weight": model.auto_link_weight,
                "review_weight": model.review_weight,
            }
        ),
    }


@require_GET
@staff_view
def model_detail(request: HttpRequest, model_id: int) -> HttpResponse:
    actor = actor_for(request)
    model = selectors_runs.model_get(actor=actor, model_id=model_id)
    context = _model_context(model)
    context["can_run"] = actor.can(Perm.LINKAGE_RUN)
    return render(request, "linkage/model_detail.html", context)


@require_POST
@staff_view
def model_thresholds(request: HttpRequest, model_id: int) -> HttpResponse:
    actor = actor_for(request)
    model = selectors_runs.model_get(actor=actor, model_id=model_id)
    form = ThresholdsForm(request.POST)
    if form.is_valid():
        try:
            services.model_thresholds_update(
                actor=actor,
                model_id=model.pk,
                auto_link_weight=form.cleaned_data["auto_link_weight"],
                review_weight=form.cleaned_data["review_weight"],
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
        else:
            messages.success(request, _("The thresholds have been saved."))
            return redirect("linkage:model_detail", model_id=model.pk)
    context = _model_context(model, form)
    context["can_run"] = actor.can(Perm.LINKAGE_RUN)
    return render(request, "linkage/model_detail.html", context, status=422)


@require_POST
@staff_view
def model_activate(request: HttpRequest, model_id: int) -> HttpResponse:
    actor = actor_for(request)
    try:
        model = services.activate_model(actor=actor, model_id=model_id)
    except ValidationFailed as error:
        for field_errors in error.field_errors.values():
            for field_error in field_errors:
                messages.error(request, str(field_error.message))
        return redirect("linkage:model_detail", model_id=model_id)
    messages.success(
        request,
        _("%(name)s v%(version)s is now the active model.")
        % {"name": model.name, "version": model.version},
    )
    return redirect("linkage:model_detail", model_id=model.pk)


@require_GET
@staff_view
def model_export(request: HttpRequest, model_id: int) -> HttpResponse:
    actor = actor_for(request)
    name, text = services.export_model(actor=actor, model_id=model_id)
    response = HttpResponse(text.encode(), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_http_methods(["GET", "POST"])
@staff_view
def model_import(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.LINKAGE_RUN)
    posted = request.method == "POST"
    form = ModelImportForm(request.POST if posted else None, request.FILES if posted else None)
    if posted and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            model = services.import_model(
                actor=actor,
                text=_read_upload(upload, services.MODEL_MAX_BYTES),
                activate=form.cleaned_data["activate"],
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
        else:
            messages.success(
                request,
                _("The model has been saved as %(name)s v%(version)s.")
                % {"name": model.name, "version": model.version},
            )
            return redirect("linkage:model_detail", model_id=model.pk)
    return render(
        request,
        "linkage/model_import.html",
        {"form": form},
        status=422 if form.is_bound else 200,
    )
