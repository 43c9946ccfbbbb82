"""Recalculation screens of the staff UI: the runs list, the what-if form (a parameter of a
package, its new value and the date it takes effect → a preview run), the form that applies a
published version to every award, and a run's page, which follows the job's progress by htmx
polling and then shows the summary.

Views stay thin: reads through ``recalculation.recalculation_list/get/packages``, writes through
``recalculation_preview`` and ``recalculation_apply``, whose refusals come back as errors on the
form's fields.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from pilar.benefits import recalculation
from pilar.benefits.models import RecalculationRun, RunKind, RunStatus
from pilar.benefits.templatetags.benefits import rules_label
from pilar.core.actor import Actor
from pilar.core.errors import ApplicationError, Conflict, ValidationFailed
from pilar.core.forms import PilarForm, date_field
from pilar.core.models import JobStatus
from pilar.core.roles import Perm
from pilar.core.views import actor_for, is_htmx, page_number, staff_view

ERROR_ROWS_SHOWN = 50


# --- forms ------------------------------------------------------------------------------------


def _version_code(choice: recalculation.PackageChoice) -> str:
    return f"{choice.name}:{choice.version}"


def _version_label(choice: recalculation.PackageChoice) -> str:
    state = _("published") if choice.published else _("draft")
    return f"{rules_label(choice.title)} — {choice.version} ({state})"


class WhatIfForm(PilarForm):
    package = forms.ChoiceField(label=gettext_lazy("Rules package and version"))
    parameter = forms.ChoiceField(
        label=gettext_lazy("Parameter to change"),
        required=False,
        help_text=gettext_lazy(
            "Leave it empty to preview the version as it is, without a what-if value."
        ),
    )
    value = forms.CharField(
        label=gettext_lazy("New value"),
        required=False,
        max_length=100,
        help_text=gettext_lazy("A number with a decimal point (350.50), yes/no, or a date."),
    )
    valid_from = date_field(
        gettext_lazy("Effective date"),
        help_text=gettext_lazy(
            "The new value is in force from this date, and every award is evaluated on it."
        ),
    )

    def __init__(self, *args: Any, packages: list[recalculation.PackageChoice], **kwargs: Any):
        super().__init__(*args, **kwargs)
        package = self.fields["package"]
        assert isinstance(package, forms.ChoiceField)
        package.choices = [(_version_code(choice), _version_label(choice)) for choice in packages]
        # One group of parameters per package (the newest version's), named as the law does.
        groups: dict[str, list[tuple[str, str]]] = {}
        for choice in packages:
            if choice.name in groups:
                continue
            groups[choice.name] = [
                (parameter.name, f"{rules_label(parameter.label)} ({parameter.name})")
                for parameter in choice.parameters
            ]
        parameter_field = self.fields["parameter"]
        assert isinstance(parameter_field, forms.ChoiceField)
        parameter_field.choices = [
            ("", _("No change (the version as it is)")),
            *((name, options) for name, options in groups.items()),
        ]

    def overrides(self) -> dict[str, Any]:
        data = self.cleaned_data
        if not data["parameter"]:
            return {}
        return {
            data["parameter"]: [{"valid_from": data["valid_from"], "value": _typed(data["value"])}]
        }


def _typed(text: str) -> Any:
    """The value as typed, with yes/no read as booleans; numbers and dates stay text, which the
    service reads exactly (a float would not be)."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "sí", "si"):
        return True
    if lowered in ("false", "no"):
        return False
    return text.strip()


class ApplyForm(PilarForm):
    package = forms.ChoiceField(
        label=gettext_lazy("Published version to apply"),
        help_text=gettext_lazy(
            "Only published versions can be applied: their rules can never change afterwards."
        ),
    )
    on = date_field(
        gettext_lazy("Evaluation date"),
        help_text=gettext_lazy("Every award is evaluated with the law in force on this date."),
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=recalculation.REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("For example: minimum wage for 2027, published in the DOF."),
    )

    def __init__(self, *args: Any, packages: list[recalculation.PackageChoice], **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Drafts are offered too, so that choosing one is explained rather than impossible.
        package = self.fields["package"]
        assert isinstance(package, forms.ChoiceField)
        package.choices = [(_version_code(choice), _version_label(choice)) for choice in packages]


def _split(code: str) -> tuple[str, str]:
    name, _sep, version = code.partition(":")
    return name, version


def _attach(form: PilarForm, error: ValidationFailed, date_field_name: str) -> None:
    """A service's field errors on the form's fields: ``overrides.<name>.value`` on the value,
    ``….valid_from`` on the date, any other ``overrides.…`` on the parameter, ``package`` and
    ``version`` on the package, ``on`` on the date."""
    for name, field_errors in error.field_errors.items():
        if name.startswith("overrides"):
            if name.endswith(".value"):
                target: str | None = "value"
            elif name.endswith(".valid_from"):
                target = "valid_from"
            else:
                target = "parameter"
        elif name in ("package", "version"):
            target = "package"
        elif name == "on":
            target = date_field_name
        else:
            target = name
        if target not in form.fields:
            target = None
        for field_error in field_errors:
            form.add_error(target, str(field_error.message))


# --- views ------------------------------------------------------------------------------------


@require_GET
@staff_view
def run_list(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    page = recalculation.recalculation_list(actor=actor, page=page_number(request))
    return render(request, "benefits/recalculation/run_list.html", {"page": page})


@require_http_methods(["GET", "POST"])
@staff_view
def preview_new(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    packages = recalculation.recalculation_packages(actor=actor)
    form = WhatIfForm(request.POST if request.method == "POST" else None, packages=packages)
    if request.method == "POST" and form.is_valid():
        name, version = _split(form.cleaned_data["package"])
        try:
            run = recalculation.recalculation_preview(
                actor=actor,
                package=name,
                version=version,
                overrides=form.overrides(),
                on=form.cleaned_data["valid_from"],
            )
        except ValidationFailed as error:
            _attach(form, error, "valid_from")
        else:
            return redirect("recalculation:run_detail", run_id=run.pk)
    return render(
        request,
        "benefits/recalculation/preview_new.html",
        {"form": form, "packages": packages},
        status=422 if form.is_bound else 200,
    )


@require_http_methods(["GET", "POST"])
@staff_view
def apply_new(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    packages = recalculation.recalculation_packages(actor=actor)
    initial = {"package": request.GET.get("package", ""), "on": request.GET.get("on", "")}
    form = ApplyForm(
        request.POST if request.method == "POST" else None, packages=packages, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        name, version = _split(form.cleaned_data["package"])
        try:
            run = recalculation.recalculation_apply(
                actor=actor,
                package=name,
                version=version,
                on=form.cleaned_data["on"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationFailed as error:
            _attach(form, error, "on")
        except Conflict as error:
            # A draft version, or another application of the scheme under way.
            form.add_error(
                "package" if error.code == recalculation.RecalculationNotPublished.code else None,
                str(error.message),
            )
        else:
            return redirect("recalculation:run_detail", run_id=run.pk)
    return render(
        request,
        "benefits/recalculation/apply_new.html",
        {"form": form},
        status=422 if form.is_bound else 200,
    )


@require_GET
@staff_view
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    actor = actor_for(request)
    run = recalculation.recalculation_get(actor=actor, run_id=run_id)
    response = render(request, "benefits/recalculation/run_detail.html", run_context(actor, run))
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@staff_view
def run_progress(request: HttpRequest, run_id: int) -> HttpResponse:
    """The polled part of a run's page: with the polling trigger while the job works, without
    it (and with the summary) once the run has finished. Without htmx: the whole page."""
    if not is_htmx(request):
        return redirect("recalculation:run_detail", run_id=run_id)
    actor = actor_for(request)
    run = recalculation.recalculation_get(actor=actor, run_id=run_id)
    response = render(request, "benefits/recalculation/_run_body.html", run_context(actor, run))
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- the run's page -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TotalRow:
    frequency: str
    awards: int
    before: Decimal | None
    after: Decimal | None
    difference: Decimal | None


@dataclass(frozen=True)
class BucketRow:
    label: str
    count: int
    share: int  # percent of the evaluated awards with an amount, for the bar


@dataclass(frozen=True)
class ChangeRow:
    award_id: int
    benefit: str
    before: Decimal | None
    after: Decimal | None
    difference: Decimal | None
    percent: Decimal | None


@dataclass(frozen=True)
class ErrorRow:
    award_id: int
    code: str
    label: str


@dataclass(frozen=True)
class OverrideRow:
    parameter: str
    value: str
    valid_from: str


def run_context(actor: Actor, run: RecalculationRun) -> dict[str, Any]:
    summary = run.summary or {}
    job = run.job
    job_failed = job is not None and job.status == JobStatus.FAILED
    working = run.status in (RunStatus.QUEUED, RunStatus.RUNNING) and not job_failed
    progress = int(run.processed * 100 / run.total) if run.total else 0
    context: dict[str, Any] = {
        "run": run,
        "working": working,
        "job_failed": job_failed or run.status == RunStatus.FAILED,
        "progress": 100 if run.status == RunStatus.DONE else progress,
        "known_at": _date(summary.get("known_at")),
        "reason": summary.get("reason", ""),
        "package_hash": summary.get("package_hash", ""),
        "overrides": [
            OverrideRow(name, str(entry.get("value")), str(entry.get("valid_from")))
            for name, entries in (run.overrides or {}).items()
            for entry in entries
        ],
        "done": run.status == RunStatus.DONE,
        "can_apply": False,
    }
    if run.status != RunStatus.DONE:
        return context
    centavos = recalculation.centavos
    totals = []
    for frequency, values in sorted((summary.get("totals") or {}).items()):
        before, after = centavos(values.get("before")), centavos(values.get("after"))
        totals.append(
            TotalRow(
                frequency=frequency,
                awards=int(values.get("awards", 0)),
                before=before,
                after=after,
                difference=after - before if before is not None and after is not None else None,
            )
        )
    counted = sum(int(count) for count in (summary.get("buckets") or {}).values())
    buckets = [
        BucketRow(
            label=str(recalculation.BUCKET_LABELS[key]),
            count=int((summary.get("buckets") or {}).get(key, 0)),
            share=round(int((summary.get("buckets") or {}).get(key, 0)) * 100 / counted)
            if counted
            else 0,
        )
        for key, _upper in recalculation.BUCKETS
    ]
    largest = []
    for row in summary.get("largest") or []:
        before, after = centavos(row.get("before")), centavos(row.get("after"))
        difference = after - before if before is not None and after is not None else None
        percent = (
            (difference * 100 / before).quantize(Decimal("0.1"))
            if difference is not None and before
            else None
        )
        largest.append(
            ChangeRow(
                award_id=int(row["award_id"]),
                benefit=str(row.get("benefit", "")),
                before=before,
                after=after,
                difference=difference,
                percent=percent,
            )
        )
    errors = summary.get("errors") or {}
    context.update(
        evaluated=int(summary.get("evaluated", 0)),
        changed=int(summary.get("changed", 0)),
        increased=int(summary.get("increased", 0)),
        decreased=int(summary.get("decreased", 0)),
        unchanged=int(summary.get("unchanged", 0)),
        totals=totals,
        buckets=buckets,
        largest=largest,
        error_count=int(errors.get("count", 0)),
        error_codes=sorted(
            (
                (recalculation.error_label(code), int(count))
                for code, count in (errors.get("by_code") or {}).items()
            ),
            key=lambda item: -item[1],
        ),
        error_rows=[
            ErrorRow(
                award_id=int(row["award_id"]),
                code=str(row["code"]),
                label=recalculation.error_label(str(row["code"])),
            )
            for row in (errors.get("rows") or [])[:ERROR_ROWS_SHOWN]
        ],
        # A preview of a published version, without what-if values, can be applied as it is.
        can_apply=(
            run.kind == RunKind.PREVIEW
            and not run.overrides
            and actor.can(Perm.RECALCULATION_RUN)
            and _published(run)
        ),
    )
    return context


def _date(text: Any) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(str(text))
    except ValueError:
        return None


def _published(run: RecalculationRun) -> bool:
    try:
        package = recalculation.load_version(run.package_name, run.package_version)
    except (ApplicationError, ValidationFailed):
        return False
    return recalculation.is_published(package)
