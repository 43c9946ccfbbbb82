"""Reads of the contributions app: declarations and their report, statement and lines; work
histories and weeks of contribution; employer accounts, arrears and non-filers.

Employers (portal actors) see their own declarations and account only; a declaration of another
employer is "not found". A work history is part of a person's record: reading it through the
API is logged like any record read (the person page logs its one read).
"""

from __future__ import annotations

import calendar
import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from pilar.contributions import weeks as weeks_rules
from pilar.contributions.models import (
    ContributionRecord,
    Declaration,
    DeclarationIssue,
    DeclarationLine,
    DeclarationStatus,
    Payment,
    PaymentAllocation,
)
from pilar.contributions.parameters import ParameterMissing, parameter_value
from pilar.contributions.validation import issue_message
from pilar.core.actor import Actor
from pilar.core.errors import NotFound, ValidationFailed
from pilar.core.pagination import Page, paginate
from pilar.core.roles import Perm
from pilar.registry.models import Employer, EmployerStatus, Employment

SURCHARGE_RATE = "surcharge.monthly_rate"


# --- Declarations -------------------------------------------------------------------------------


def declaration_list(
    *,
    actor: Actor,
    employer_id: int | None = None,
    status: str = "",
    period: datetime.date | None = None,
    page: int = 1,
    page_size: int = 25,
) -> Page[Declaration]:
    actor.require(Perm.DECLARATION_VIEW)
    query: QuerySet[Declaration] = Declaration.objects.select_related("employer")
    if actor.employer_id is not None:
        query = query.filter(employer_id=actor.employer_id)
    elif employer_id is not None:
        query = query.filter(employer_id=employer_id)
    if status:
        query = query.filter(status=status)
    if period is not None:
        query = query.filter(period=period)
    return paginate(query.order_by("-submitted_at", "-id"), page=page, page_size=page_size)


def declaration_get(*, actor: Actor, declaration_id: int) -> Declaration:
    actor.require(Perm.DECLARATION_VIEW)
    declaration = (
        Declaration.objects.select_related("employer", "job").filter(pk=declaration_id).first()
    )
    if declaration is None or not actor.sees_employer(declaration.employer_id):
        raise NotFound(extra={"entity": "declaration", "id": declaration_id})
    return declaration


@dataclass(frozen=True)
class IssueView:
    row: int
    column: str
    code: str
    severity: str
    value: str
    message: str


def declaration_issues(
    *, actor: Actor, declaration_id: int, page: int = 1, page_size: int = 50
) -> Page[IssueView]:
    declaration = declaration_get(actor=actor, declaration_id=declaration_id)
    result = paginate(
        DeclarationIssue.objects.filter(declaration=declaration).order_by("row", "id"),
        page=page,
        page_size=page_size,
    )
    return result.map(_issue_view)


def _issue_view(issue: DeclarationIssue) -> IssueView:
    params = issue.params if isinstance(issue.params, dict) else {}
    return IssueView(
        row=issue.row,
        column=issue.column,
        code=issue.code,
        severity=issue.severity,
        value=issue.value,
        message=issue_message(issue.code, params),
    )


def declaration_issues_all(*, actor: Actor, declaration_id: int) -> Iterable[IssueView]:
    """Every issue of the report, for the CSV/XLSX download (streamed)."""
    declaration = declaration_get(actor=actor, declaration_id=declaration_id)
    for issue in (
        DeclarationIssue.objects.filter(declaration=declaration).order_by("row", "id").iterator()
    ):
        yield _issue_view(issue)


def declaration_lines(
    *, actor: Actor, declaration_id: int, page: int = 1, page_size: int = 50
) -> Page[Any]:
    """The declaration's lines: staged lines until posting, its contribution records after."""
    declaration = declaration_get(actor=actor, declaration_id=declaration_id)
    query: QuerySet[Any]
    if declaration.status == DeclarationStatus.POSTED:
        query = ContributionRecord.objects.filter(declaration=declaration)
    else:
        query = DeclarationLine.objects.filter(declaration=declaration)
    return paginate(query.select_related("person").order_by("row"), page=page, page_size=page_size)


@dataclass(frozen=True)
class BranchLine:
    branch: str
    employer: Decimal
    worker: Decimal

    @property
    def total(self) -> Decimal:
        return self.employer + self.worker


def statement_branches(declaration: Declaration) -> list[BranchLine]:
    branches = (declaration.branch_totals or {}).get("branches", {})
    return [
        BranchLine(
            branch=code,
            employer=Decimal(values["employer"]) / 100,
            worker=Decimal(values["worker"]) / 100,
        )
        for code, values in branches.items()
    ]


def declaration_progress(declaration: Declaration) -> int:
    """Percent done of the current stage, for the progress bar."""
    if declaration.status in (
        DeclarationStatus.POSTED,
        DeclarationStatus.VALIDATED,
        DeclarationStatus.REJECTED,
    ):
        return 100
    if declaration.progress_total <= 0:
        return 0
    return min(100, int(declaration.progress_done * 100 / declaration.progress_total))


# --- Work history -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkHistoryLine:
    period: datetime.date
    employer_id: int
    employer_name: str
    registration_number: str
    days: int
    absence_days: int
    incapacity_days: int
    daily_salary: Decimal
    base: Decimal
    employer_total: Decimal
    worker_total: Decimal
    declaration_id: int
    posted_at: datetime.datetime
    superseded: bool
    superseded_by_id: int | None = None


@dataclass(frozen=True)
class WorkHistory:
    lines: list[WorkHistoryLine]
    counted_days: int
    weeks: int
    superseded: list[WorkHistoryLine] = field(default_factory=list)


def work_history_of(person_id: int, *, include_superseded: bool = False) -> WorkHistory:
    """The person's contribution records, newest month first, with total weeks of
    contribution. The caller has already checked access to the person (and logged the read)."""
    records = list(
        ContributionRecord.objects.filter(person_id=person_id)
        .select_related("employer")
        .order_by("-period", "employer__legal_name", "-posted_at")
    )
    in_force = [r for r in records if r.superseded_at is None]
    days = weeks_rules.counted_days(
        weeks_rules.Span(r.covered_from, r.covered_to, r.days, r.absence_days) for r in in_force
    )

    def view(r: ContributionRecord) -> WorkHistoryLine:
        return WorkHistoryLine(
            period=r.period,
            employer_id=r.employer_id,
            employer_name=r.employer.legal_name,
            registration_number=r.employer.registration_number,
            days=r.days,
            absence_days=r.absence_days,
            incapacity_days=r.incapacity_days,
            daily_salary=r.daily_salary,
            base=r.base,
            employer_total=r.employer_total,
            worker_total=r.worker_total,
            declaration_id=r.declaration_id,
            posted_at=r.posted_at,
            superseded=r.superseded_at is not None,
            superseded_by_id=r.superseded_by_id,
        )

    return WorkHistory(
        lines=[view(r) for r in in_force],
        counted_days=days,
        weeks=weeks_rules.weeks(days),
        superseded=[view(r) for r in records if r.superseded_at is not None]
        if include_superseded
        else [],
    )


def work_history(*, actor: Actor, person_id: int, purpose: str = "") -> WorkHistory:
    """A person's work history through the API: access-checked and logged as a record read."""
    from pilar.registry.selectors import person_get

    person_get(actor=actor, person_id=person_id, purpose=purpose, action="view")
    return work_history_of(person_id, include_superseded=True)


# --- Employer account ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementLine:
    declaration: Declaration
    due: Decimal
    paid: Decimal
    outstanding: Decimal
    months_late: int
    surcharge: Decimal


@dataclass(frozen=True)
class Account:
    employer: Employer
    statements: list[StatementLine]
    payments: list[Payment]
    total_due: Decimal
    total_paid: Decimal
    unallocated: Decimal
    arrears: Decimal
    surcharges: Decimal

    @property
    def balance(self) -> Decimal:
        return self.total_due - self.total_paid


def months_late(due: datetime.date, on: datetime.date) -> int:
    """Started months of delay after the due date (a day late counts as one month, as the
    Código Fiscal's recargos do)."""
    if on <= due:
        return 0
    months = (on.year - due.year) * 12 + (on.month - due.month)
    if on.day > due.day:
        months += 1
    return max(months, 1)


def account_get(*, actor: Actor, employer_id: int, on: datetime.date | None = None) -> Account:
    """The employer's current account: posted statements with what was paid against them,
    arrears with surcharges at the monthly rate in force (``surcharge.monthly_rate``), and the
    payments received."""
    actor.require(Perm.ACCOUNT_VIEW)
    if not actor.sees_employer(employer_id):
        raise NotFound()
    employer = Employer.objects.filter(pk=employer_id).first()
    if employer is None:
        raise NotFound()
    on = on or timezone.localdate()
    declarations = list(
        Declaration.objects.filter(employer=employer, status=DeclarationStatus.POSTED)
        .annotate(paid=Sum("allocations__amount"))
        .order_by("-period", "-id")
    )
    try:
        rate = parameter_value(SURCHARGE_RATE, on=on)
    except ParameterMissing:
        rate = Decimal(0)
    statements = []
    for d in declarations:
        paid = getattr(d, "paid", None) or Decimal(0)
        outstanding = max(d.total_due - paid, Decimal(0))
        late = months_late(d.due_date, on) if d.due_date and outstanding > 0 else 0
        surcharge = (outstanding * rate / 100 * late).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
        statements.append(StatementLine(d, d.total_due, paid, outstanding, late, surcharge))
    payments = list(Payment.objects.filter(employer=employer).order_by("-received_on", "-id"))
    total_paid = sum((p.amount for p in payments), Decimal(0))
    allocated = PaymentAllocation.objects.filter(payment__employer=employer).aggregate(
        total=Sum("amount")
    )["total"] or Decimal(0)
    return Account(
        employer=employer,
        statements=statements,
        payments=payments,
        total_due=sum((s.due for s in statements), Decimal(0)),
        total_paid=total_paid,
        unallocated=total_paid - allocated,
        arrears=sum((s.outstanding for s in statements if s.months_late), Decimal(0)),
        surcharges=sum((s.surcharge for s in statements), Decimal(0)),
    )


@dataclass(frozen=True)
class NonFiler:
    employer: Employer
    active_workers: int


def non_filers(
    *, actor: Actor, period: datetime.date, page: int = 1, page_size: int = 50
) -> Page[NonFiler]:
    """Active employers with employments in force during the month and no posted or pending
    declaration for it."""
    actor.require(Perm.ACCOUNT_VIEW)
    if period.day != 1:
        raise ValidationFailed.single(
            "period", "period_format", _("The period is a month: give its first day.")
        )
    end = period.replace(day=calendar.monthrange(period.year, period.month)[1])
    in_force = Q(employments__start_date__lte=end) & (
        Q(employments__end_date__isnull=True) | Q(employments__end_date__gte=period)
    )
    declared = Declaration.objects.filter(
        employer=OuterRef("pk"),
        period=period,
        status__in=[
            DeclarationStatus.POSTED,
            DeclarationStatus.CONFIRMED,
            DeclarationStatus.POSTING,
            DeclarationStatus.VALIDATED,
        ],
    )
    query = (
        Employer.objects.filter(status=EmployerStatus.ACTIVE)
        .annotate(active_workers=Count("employments", filter=in_force))
        .filter(active_workers__gt=0)
        .exclude(Exists(declared))
        .order_by("-active_workers", "legal_name")
    )
    result = paginate(query, page=page, page_size=page_size)
    return result.map(lambda e: NonFiler(e, e.active_workers))


def employer_workers(
    *, actor: Actor, employer_id: int, page: int = 1, page_size: int = 50
) -> Page[Employment]:
    """The employer's workers (employments in force), for the portal."""
    actor.require(Perm.DECLARATION_VIEW)
    if not actor.sees_employer(employer_id):
        raise NotFound()
    query = (
        Employment.objects.filter(employer_id=employer_id, end_date__isnull=True)
        .select_related("person")
        .order_by("person__normalized_name")
    )
    return paginate(query, page=page, page_size=page_size)
