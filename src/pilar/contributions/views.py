"""Declaration screens: the staff queue, a declaration's page, uploads on an employer's behalf,
confirmation and withdrawal, and the validation report as CSV or XLSX.

The employer portal (``pilar.portal.views``) shows the same declaration page to employers: the
helpers in the first part of this module build what the shared templates
(``contributions/_*.html``) need, for either side. Views stay thin: every read goes through
``contributions.selectors`` and every write through ``contributions.services``, which check the
permission and, for an employer, that the declaration is its own.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pilar.contributions import fileformat, selectors, services
from pilar.contributions.calculation import Branch
from pilar.contributions.forms import (
    DeclarationQueueFilterForm,
    DeclarationUploadForm,
    StaffDeclarationUploadForm,
)
from pilar.contributions.models import Declaration, DeclarationStatus, Severity
from pilar.core.actor import Actor
from pilar.core.errors import Conflict, NotFound, ValidationFailed
from pilar.core.forms import apply_service_errors
from pilar.core.identifiers import compact
from pilar.core.models import JobStatus
from pilar.core.pagination import Page
from pilar.core.roles import Perm
from pilar.core.views import actor_for, is_htmx, page_number, staff_view
from pilar.registry import selectors as registry_selectors

# --- shared by the staff and the portal declaration pages --------------------------------------

BRANCH_LABELS = {
    Branch.SICKNESS_IN_KIND_FIXED: gettext_lazy(
        "Sickness and maternity, benefits in kind: fixed fee"
    ),
    Branch.SICKNESS_IN_KIND_EXCESS: gettext_lazy(
        "Sickness and maternity, benefits in kind: excess over 3 UMA"
    ),
    Branch.SICKNESS_CASH: gettext_lazy("Sickness and maternity, cash benefits"),
    Branch.SICKNESS_PENSIONERS: gettext_lazy("Sickness and maternity, pensioners' medical care"),
    Branch.DISABILITY_LIFE: gettext_lazy("Disability and life"),
    Branch.WORK_RISKS: gettext_lazy("Work risks"),
    Branch.CHILDCARE: gettext_lazy("Childcare and social benefits"),
    Branch.RETIREMENT: gettext_lazy("Retirement"),
    Branch.OLD_AGE_CESANTIA: gettext_lazy("Severance at advanced age and old age"),
    Branch.HOUSING: gettext_lazy("Housing (INFONAVIT)"),
}

# The declaration's ``stage`` while a job works on it, as the progress bar names it.
STAGE_LABELS = {
    "queued": gettext_lazy("Waiting for its turn"),
    "parsing": gettext_lazy("Reading the file"),
    "validating": gettext_lazy("Checking the lines"),
    "staging": gettext_lazy("Saving the checked lines"),
    "posting": gettext_lazy("Posting the contributions"),
    "done": gettext_lazy("Finished"),
}

REPORT_FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

# Statuses whose summary statement is known (validation has finished without errors).
STATEMENT_STATUSES = (
    DeclarationStatus.VALIDATED,
    DeclarationStatus.CONFIRMED,
    DeclarationStatus.POSTING,
    DeclarationStatus.POSTED,
)
# Statuses whose lines are worth listing: staged and waiting for confirmation, or posted.
LINE_STATUSES = (DeclarationStatus.VALIDATED, DeclarationStatus.POSTED)


@dataclass(frozen=True)
class DeclarationUrls:
    """Where a declaration page's links and buttons go: the staff UI and the portal have the same
    URL names in their own namespaces."""

    detail: str
    progress: str
    confirm: str
    withdraw: str
    report_csv: str
    report_xlsx: str

    @classmethod
    def of(cls, namespace: str, declaration_id: int) -> DeclarationUrls:
        def url(name: str, *extra: str) -> str:
            return reverse(f"{namespace}:{name}", args=[declaration_id, *extra])

        return cls(
            detail=url("declaration_detail"),
            progress=url("declaration_progress"),
            confirm=url("declaration_confirm"),
            withdraw=url("declaration_withdraw"),
            report_csv=url("declaration_report", "csv"),
            report_xlsx=url("declaration_report", "xlsx"),
        )


@dataclass(frozen=True)
class BranchRow:
    label: str
    employer: Any
    worker: Any
    total: Any


@dataclass(frozen=True)
class IssueRow:
    """A line of the validation report with its column named as the employer's header."""

    row: int
    column_label: str
    code: str
    severity: str
    value: str
    message: str

    @classmethod
    def of(cls, issue: selectors.IssueView) -> IssueRow:
        return cls(
            row=issue.row,
            column_label=column_label(issue.column),
            code=issue.code,
            severity=issue.severity,
            value=issue.value,
            message=issue.message,
        )


def column_label(name: str) -> str:
    """A canonical column name as the header in the active language ('days' → 'Días')."""
    column = fileformat.COLUMNS_BY_NAME.get(name)
    return column.label() if column is not None else name


def statement_rows(declaration: Declaration) -> list[BranchRow]:
    """The statement's branches in ``Branch`` order, with their translated names."""
    return [
        BranchRow(
            label=str(BRANCH_LABELS.get(line.branch, line.branch)),
            employer=line.employer,
            worker=line.worker,
            total=line.total,
        )
        for line in selectors.statement_branches(declaration)
    ]


def previously_declared(declaration: Declaration) -> Decimal | None:
    """What the records a correction replaces came to, in pesos; None for a normal declaration."""
    centavos = (declaration.branch_totals or {}).get("previously_declared")
    if centavos is None:
        return None
    return Decimal(int(centavos)) / 100


def declaration_sections(
    request: HttpRequest, *, actor: Actor, declaration: Declaration, namespace: str
) -> dict[str, Any]:
    """The context of ``contributions/_declaration_body.html``: status and progress, and
    whichever of statement, report and lines the declaration's status calls for."""
    job = declaration.job
    job_failed = job is not None and job.status == JobStatus.FAILED
    status = declaration.status
    context: dict[str, Any] = {
        "declaration": declaration,
        "urls": DeclarationUrls.of(namespace, declaration.pk),
        # A job that has given up will not move the declaration on: polling would never end.
        "processing": declaration.is_processing and not job_failed,
        "job_failed": job_failed,
        "progress": selectors.declaration_progress(declaration),
        "stage_label": STAGE_LABELS.get(declaration.stage, declaration.stage),
        "can_act": actor.can(Perm.DECLARATION_SUBMIT) and status == DeclarationStatus.VALIDATED,
        # Staff also see the background job and a link to the employer's record.
        "staff": actor.employer_id is None,
    }
    if status in STATEMENT_STATUSES:
        context["branches"] = statement_rows(declaration)
        context["contributions_total"] = declaration.employer_total + declaration.worker_total
        context["previously_declared"] = previously_declared(declaration)
    finished = status in (
        DeclarationStatus.VALIDATED,
        DeclarationStatus.REJECTED,
        DeclarationStatus.POSTED,
    )
    # A refused file has its reason in ``rejection_message`` and no report lines; warnings of
    # a validated declaration are worth reading before confirming it.
    has_report = declaration.error_count or declaration.warning_count
    if finished and has_report and not declaration.rejection_message:
        issues = selectors.declaration_issues(
            actor=actor, declaration_id=declaration.pk, page=page_number(request, "report_page")
        )
        context["issues"] = Page(
            items=[IssueRow.of(issue) for issue in issues.items],
            number=issues.number,
            page_size=issues.page_size,
            total=issues.total,
            total_is_exact=issues.total_is_exact,
        )
    if status in LINE_STATUSES:
        context["lines"] = selectors.declaration_lines(
            actor=actor, declaration_id=declaration.pk, page=page_number(request, "lines_page")
        )
    return context


def declaration_fragment(
    request: HttpRequest, *, actor: Actor, declaration_id: int, namespace: str
) -> HttpResponse | None:
    """An htmx request for one page of the report or of the lines, or None when the whole
    declaration page is wanted."""
    fragment = request.GET.get("fragment", "")
    if not is_htmx(request) or fragment not in ("report", "lines"):
        return None
    declaration = selectors.declaration_get(actor=actor, declaration_id=declaration_id)
    context = declaration_sections(
        request, actor=actor, declaration=declaration, namespace=namespace
    )
    response = render(request, f"contributions/_declaration_{fragment}.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def declaration_progress_response(
    request: HttpRequest, *, actor: Actor, declaration_id: int, namespace: str
) -> HttpResponse:
    """The polled part of the declaration page. While a job works on the declaration it carries
    the polling trigger again; once finished it comes without it, with the statement or the
    report, so polling stops and the page shows the outcome. Without htmx: the whole page."""
    if not is_htmx(request):
        return redirect(f"{namespace}:declaration_detail", declaration_id=declaration_id)
    declaration = selectors.declaration_get(actor=actor, declaration_id=declaration_id)
    response = render(
        request,
        "contributions/_declaration_body.html",
        declaration_sections(request, actor=actor, declaration=declaration, namespace=namespace),
    )
    patch_vary_headers(response, ["HX-Request"])
    return response


def report_response(*, actor: Actor, declaration_id: int, file_format: str) -> HttpResponse:
    """The validation report as a CSV or XLSX file. Values are what the employer typed, so every
    text cell is escaped against formula injection (``fileformat.csv_bytes``/``xlsx_bytes``)."""
    if file_format not in REPORT_FORMATS:
        raise NotFound(extra={"entity": "report_format", "id": file_format})
    declaration = selectors.declaration_get(actor=actor, declaration_id=declaration_id)
    header = [_("Row"), _("Column"), _("Code"), _("Severity"), _("Message"), _("Value")]
    severities = dict(Severity.choices)
    rows = (
        [
            issue.row,
            column_label(issue.column),
            issue.code,
            str(severities.get(issue.severity, issue.severity)),
            issue.message,
            issue.value,
        ]
        for issue in selectors.declaration_issues_all(actor=actor, declaration_id=declaration.pk)
    )
    if file_format == "csv":
        content = fileformat.csv_bytes(header, rows)
    else:
        content = fileformat.xlsx_bytes(header, rows, sheet_title=_("Validation report"))
    name = f"declaration-{declaration.pk}-report.{file_format}"
    response = HttpResponse(content, content_type=REPORT_FORMATS[file_format])
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def submit_upload(
    request: HttpRequest,
    *,
    actor: Actor,
    form: DeclarationUploadForm,
    employer_id: int,
    namespace: str,
) -> HttpResponse | None:
    """Hand a valid upload form's file to ``declaration_submit``. Returns the redirect to the
    declaration page, or None with the service's refusal put on the form."""
    data = form.cleaned_data
    upload = data["file"]
    try:
        declaration, created = services.declaration_submit(
            actor=actor,
            employer_id=employer_id,
            period=data["period"],
            kind=data["kind"],
            file_name=upload.name or "",
            data=upload.read(),
        )
    except ValidationFailed as error:
        apply_service_errors(form, error)
        return None
    except Conflict as error:
        form.add_error(None, str(error.message))
        return None
    if created:
        messages.success(
            request,
            _("The file has been received and is being checked. This page shows the progress."),
        )
    else:
        messages.info(
            request,
            _(
                "This file had already been uploaded for this month, as declaration %(id)s. "
                "It is not processed twice: here is that declaration."
            )
            % {"id": declaration.pk},
        )
    return redirect(f"{namespace}:declaration_detail", declaration_id=declaration.pk)


def confirm_or_withdraw(
    request: HttpRequest, *, actor: Actor, declaration_id: int, namespace: str, confirm: bool
) -> HttpResponse:
    """Confirm the statement (posting follows) or withdraw the declaration; a declaration no
    longer in the right status is explained on its page, not turned into an error page."""
    try:
        if confirm:
            services.declaration_confirm(actor=actor, declaration_id=declaration_id)
        else:
            services.declaration_withdraw(actor=actor, declaration_id=declaration_id)
    except Conflict as error:
        messages.error(request, str(error.message))
    else:
        if confirm:
            messages.success(
                request,
                _("The declaration has been confirmed. Its contributions are being posted."),
            )
        else:
            messages.success(request, _("The declaration has been withdrawn."))
    return redirect(f"{namespace}:declaration_detail", declaration_id=declaration_id)


# --- staff screens ----------------------------------------------------------------------------

NAMESPACE = "contributions"


def _employer_id_from(actor: Actor, text: str) -> int:
    """The employer a clerk typed: its RFC or registration number (exact), or a record number."""
    value = compact(text).upper()
    if value.isdigit() and len(value) < 11:
        return int(value)
    for employer in registry_selectors.employer_list(actor=actor, query=value, page_size=5).items:
        if value in (employer.rfc, employer.registration_number):
            return employer.pk
    raise ValidationFailed.single(
        "employer",
        "employer.not_found",
        gettext_lazy("No employer has this RFC or registration number."),
    )


@require_GET
@staff_view
def declaration_queue(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.DECLARATION_VIEW)
    form = DeclarationQueueFilterForm(request.GET)
    page = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            employer_id = (
                _employer_id_from(actor, data["employer"]) if data["employer"].strip() else None
            )
            period: datetime.date | None = data["period"]
            page = selectors.declaration_list(
                actor=actor,
                employer_id=employer_id,
                status=data["status"],
                period=period,
                page=page_number(request),
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
    return render(
        request,
        "contributions/declaration_queue.html",
        {"form": form, "page": page},
        status=200 if page is not None else 422,
    )


@require_GET
@staff_view
def declaration_detail(request: HttpRequest, declaration_id: int) -> HttpResponse:
    actor = actor_for(request)
    fragment = declaration_fragment(
        request, actor=actor, declaration_id=declaration_id, namespace=NAMESPACE
    )
    if fragment is not None:
        return fragment
    declaration = selectors.declaration_get(actor=actor, declaration_id=declaration_id)
    context = declaration_sections(
        request, actor=actor, declaration=declaration, namespace=NAMESPACE
    )
    response = render(request, "contributions/declaration_detail.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@staff_view
def declaration_progress(request: HttpRequest, declaration_id: int) -> HttpResponse:
    return declaration_progress_response(
        request, actor=actor_for(request), declaration_id=declaration_id, namespace=NAMESPACE
    )


@require_http_methods(["GET", "POST"])
@staff_view
def declaration_upload(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.DECLARATION_SUBMIT)
    form = StaffDeclarationUploadForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
    )
    if request.method == "POST" and form.is_valid():
        try:
            employer_id = _employer_id_from(actor, form.cleaned_data["employer"])
            done = submit_upload(
                request, actor=actor, form=form, employer_id=employer_id, namespace=NAMESPACE
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
        except NotFound:
            form.add_error("employer", _("No employer has this RFC or registration number."))
        else:
            if done is not None:
                return done
    return render(
        request,
        "contributions/declaration_upload.html",
        {"form": form},
        status=422 if form.is_bound else 200,
    )


@require_POST
@staff_view
def declaration_confirm(request: HttpRequest, declaration_id: int) -> HttpResponse:
    return confirm_or_withdraw(
        request,
        actor=actor_for(request),
        declaration_id=declaration_id,
        namespace=NAMESPACE,
        confirm=True,
    )


@require_POST
@staff_view
def declaration_withdraw(request: HttpRequest, declaration_id: int) -> HttpResponse:
    return confirm_or_withdraw(
        request,
        actor=actor_for(request),
        declaration_id=declaration_id,
        namespace=NAMESPACE,
        confirm=False,
    )


@require_GET
@staff_view
def declaration_report(request: HttpRequest, declaration_id: int, file_format: str) -> HttpResponse:
    return report_response(
        actor=actor_for(request), declaration_id=declaration_id, file_format=file_format
    )
