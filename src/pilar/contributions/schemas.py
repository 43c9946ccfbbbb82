"""Documents the contributions API hands out: declarations with their statement, report and
lines, work histories, employer accounts and payments. Money is a decimal string, a month is
written ``YYYY-MM`` (as it is sent), dates are ISO 8601."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from ninja import Field, Schema

from pilar.contributions import selectors
from pilar.contributions.bulk_calculation import SHARE_COLUMNS
from pilar.contributions.models import (
    BankImport,
    ContributionRecord,
    Declaration,
    DeclarationLine,
    Payment,
)
from pilar.core.api import MoneyOut
from pilar.registry.models import Employer
from pilar.registry.schemas import EmployerBriefOut


def month_text(period: datetime.date) -> str:
    return period.strftime("%Y-%m")


# --- declarations -------------------------------------------------------------------------------


class BranchOut(Schema):
    branch: str = Field(examples=["disability_life"])
    employer: MoneyOut
    worker: MoneyOut
    total: MoneyOut


class StatementOut(Schema):
    workers: int
    salary_mass: MoneyOut = Field(description="Sum of daily salary × days over the lines.")
    employer_total: MoneyOut
    worker_total: MoneyOut
    previously_declared: MoneyOut | None = Field(
        description="For a correction: what the records it replaces came to."
    )
    total_due: MoneyOut = Field(
        description="Employer and worker shares, less what was previously declared."
    )
    branches: list[BranchOut]


class CountsOut(Schema):
    lines: int
    errors: int
    warnings: int
    workers: int


class DeclarationSummaryOut(Schema):
    id: int
    employer: EmployerBriefOut
    period: str = Field(examples=["2026-01"], description="The declared month, YYYY-MM.")
    kind: str = Field(description="normal, complementary or replacement.")
    status: str = Field(
        description="received, validating, rejected, validated, confirmed, posting, posted "
        "or withdrawn."
    )
    status_label: str
    file_name: str
    submitted_at: datetime.datetime
    submitted_by: str
    due_date: datetime.date | None
    counts: CountsOut
    total_due: MoneyOut


class DeclarationOut(DeclarationSummaryOut):
    channel: str
    file_sha256: str
    file_size: int
    file_format: str
    file_encoding: str
    stage: str = Field(description="What the background job is doing: queued, parsing, …")
    progress: int = Field(description="Percent done of the current stage.", ge=0, le=100)
    rejection_code: str | None = Field(
        description="Why the whole file was refused (empty, not_text, missing_columns, …); "
        "null when it was read and its lines have errors."
    )
    rejection_message: str | None
    statement: StatementOut | None = Field(
        description="Once validated without errors; null before and for a rejected declaration."
    )
    validated_at: datetime.datetime | None
    confirmed_by: str | None
    confirmed_at: datetime.datetime | None
    posted_at: datetime.datetime | None
    recognised: bool = Field(
        False,
        description="True when this very file was already received for this employer and month: "
        "the earlier declaration is returned and nothing is processed again.",
    )


def _counts(declaration: Declaration) -> dict[str, int]:
    return {
        "lines": declaration.line_count,
        "errors": declaration.error_count,
        "warnings": declaration.warning_count,
        "workers": declaration.worker_count,
    }


def declaration_summary(declaration: Declaration) -> dict[str, Any]:
    return {
        "id": declaration.pk,
        "employer": declaration.employer,
        "period": month_text(declaration.period),
        "kind": declaration.kind,
        "status": declaration.status,
        "status_label": str(declaration.get_status_display()),
        "file_name": declaration.file_name,
        "submitted_at": declaration.submitted_at,
        "submitted_by": declaration.submitted_by_label,
        "due_date": declaration.due_date,
        "counts": _counts(declaration),
        "total_due": declaration.total_due,
    }


def _statement(declaration: Declaration) -> dict[str, Any] | None:
    # A rejected declaration has a statement of its valid lines only; showing it as what the
    # employer owes would mislead, so there is none until the whole file is clean.
    if declaration.validated_at is None or declaration.error_count:
        return None
    previously = (declaration.branch_totals or {}).get("previously_declared")
    return {
        "workers": declaration.worker_count,
        "salary_mass": declaration.salary_mass,
        "employer_total": declaration.employer_total,
        "worker_total": declaration.worker_total,
        "previously_declared": None if previously is None else Decimal(previously) / 100,
        "total_due": declaration.total_due,
        "branches": [
            {
                "branch": line.branch,
                "employer": line.employer,
                "worker": line.worker,
                "total": line.total,
            }
            for line in selectors.statement_branches(declaration)
        ],
    }


def declaration_document(declaration: Declaration, *, recognised: bool = False) -> dict[str, Any]:
    """A declaration as ``DeclarationOut`` expects it."""
    return {
        **declaration_summary(declaration),
        "channel": declaration.channel,
        "file_sha256": declaration.file_sha256,
        "file_size": declaration.file_size,
        "file_format": declaration.file_format,
        "file_encoding": declaration.file_encoding,
        "stage": declaration.stage,
        "progress": selectors.declaration_progress(declaration),
        "rejection_code": declaration.rejection_code or None,
        "rejection_message": declaration.rejection_message or None,
        "statement": _statement(declaration),
        "validated_at": declaration.validated_at,
        "confirmed_by": declaration.confirmed_by_label or None,
        "confirmed_at": declaration.confirmed_at,
        "posted_at": declaration.posted_at,
        "recognised": recognised,
    }


class IssueOut(Schema):
    row: int = Field(
        description="The spreadsheet row (the header is row 1); for a JSON "
        "declaration, the line's position counting from 2."
    )
    column: str = Field(description="The canonical column name, or empty for the whole line.")
    code: str = Field(examples=["salary_below_minimum"])
    severity: str = Field(description="error or warning.")
    value: str = Field(description="The value as written.")
    message: str


class LineOut(Schema):
    row: int
    person_id: int
    worker_id: str | None = Field(
        description="The identifier as declared; null once posted (kept in the original file)."
    )
    days: int
    absence_days: int
    incapacity_days: int
    daily_salary: MoneyOut = Field(description="The declared daily salary (SBC).")
    base: MoneyOut = Field(description="The contribution base after the floor and the cap.")
    movement: str | None = Field(
        description="hire, separation, salary_change or empty; null once posted."
    )
    movement_date: datetime.date | None
    covered_from: datetime.date
    covered_to: datetime.date
    shares: list[BranchOut]
    employer_total: MoneyOut
    worker_total: MoneyOut
    superseded: bool = Field(description="A posted record a later correction replaced.")


def line_document(line: DeclarationLine | ContributionRecord) -> dict[str, Any]:
    """A staged line or, once posted, a contribution record, in one shape."""
    shares: dict[str, dict[str, Decimal]] = {}
    for name, branch, side in SHARE_COLUMNS:
        amount = line.pesos(name) if isinstance(line, DeclarationLine) else getattr(line, name)
        shares.setdefault(branch, {"employer": Decimal(0), "worker": Decimal(0)})[side] += amount
    if isinstance(line, DeclarationLine):
        declared: dict[str, Any] = {
            "worker_id": line.worker_id,
            "movement": line.movement,
            "movement_date": line.movement_date,
            "superseded": False,
        }
    else:
        declared = {
            "worker_id": None,
            "movement": None,
            "movement_date": None,
            "superseded": line.superseded_at is not None,
        }
    return {
        "row": line.row,
        "person_id": line.person_id,
        "days": line.days,
        "absence_days": line.absence_days,
        "incapacity_days": line.incapacity_days,
        "daily_salary": line.daily_salary,
        "base": line.base,
        "covered_from": line.covered_from,
        "covered_to": line.covered_to,
        "shares": [
            {
                "branch": branch,
                "employer": amounts["employer"],
                "worker": amounts["worker"],
                "total": amounts["employer"] + amounts["worker"],
            }
            for branch, amounts in shares.items()
        ],
        "employer_total": line.employer_total,
        "worker_total": line.worker_total,
        **declared,
    }


# --- work history -------------------------------------------------------------------------------


class WorkEmployerOut(Schema):
    id: int
    name: str
    registration_number: str = Field(description="The registro patronal.")


class WorkHistoryLineOut(Schema):
    period: str = Field(examples=["2026-01"])
    employer: WorkEmployerOut
    days: int
    absence_days: int
    incapacity_days: int
    daily_salary: MoneyOut = Field(description="The declared daily salary (SBC).")
    base: MoneyOut
    employer_total: MoneyOut
    worker_total: MoneyOut
    declaration_id: int
    posted_at: datetime.datetime
    superseded: bool


class WorkHistoryOut(Schema):
    person_id: int
    counted_days: int = Field(
        description="Days of contribution, overlapping employments counted once, absences deducted."
    )
    weeks: int = Field(description="Whole weeks of contribution.")
    lines: list[WorkHistoryLineOut] = Field(description="Records in force, newest month first.")
    superseded: list[WorkHistoryLineOut] = Field(
        description="Records a later correction replaced, kept for the record."
    )


def _history_line(line: selectors.WorkHistoryLine) -> dict[str, Any]:
    return {
        "period": month_text(line.period),
        "employer": {
            "id": line.employer_id,
            "name": line.employer_name,
            "registration_number": line.registration_number,
        },
        "days": line.days,
        "absence_days": line.absence_days,
        "incapacity_days": line.incapacity_days,
        "daily_salary": line.daily_salary,
        "base": line.base,
        "employer_total": line.employer_total,
        "worker_total": line.worker_total,
        "declaration_id": line.declaration_id,
        "posted_at": line.posted_at,
        "superseded": line.superseded,
    }


def work_history_document(person_id: int, history: selectors.WorkHistory) -> dict[str, Any]:
    return {
        "person_id": person_id,
        "counted_days": history.counted_days,
        "weeks": history.weeks,
        "lines": [_history_line(line) for line in history.lines],
        "superseded": [_history_line(line) for line in history.superseded],
    }


# --- accounts and payments ----------------------------------------------------------------------


class AllocationOut(Schema):
    declaration_id: int
    amount: MoneyOut


class PaymentOut(Schema):
    id: int
    employer_id: int
    amount: MoneyOut
    received_on: datetime.date
    reference: str
    source: str = Field(description="staff or bank_file.")
    bank_import_id: int | None
    recorded_at: datetime.datetime
    allocations: list[AllocationOut] = Field(
        description="The statements the payment was applied to."
    )


def payment_document(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.pk,
        "employer_id": payment.employer_id,
        "amount": payment.amount,
        "received_on": payment.received_on,
        "reference": payment.reference,
        "source": payment.source,
        "bank_import_id": payment.bank_import_id,
        "recorded_at": payment.recorded_at,
        "allocations": [
            {"declaration_id": allocation.declaration_id, "amount": allocation.amount}
            for allocation in payment.allocations.all()
        ],
    }


class AccountStatementOut(Schema):
    declaration_id: int
    period: str = Field(examples=["2026-01"])
    kind: str
    due_date: datetime.date | None
    due: MoneyOut
    paid: MoneyOut
    outstanding: MoneyOut
    months_late: int
    surcharge: MoneyOut = Field(description="Recargos on the outstanding amount, to the day.")


class AccountTotalsOut(Schema):
    due: MoneyOut
    paid: MoneyOut
    balance: MoneyOut = Field(
        description="Due less paid; negative when the employer has paid in advance."
    )
    unallocated: MoneyOut = Field(description="Money received not yet applied to a statement.")
    arrears: MoneyOut = Field(description="Outstanding amounts past their due date.")
    surcharges: MoneyOut


class AccountOut(Schema):
    employer: EmployerBriefOut
    as_of: datetime.date
    totals: AccountTotalsOut
    statements: list[AccountStatementOut] = Field(description="Posted statements, newest first.")
    payments: list[PaymentOut] = Field(description="Payments received, newest first.")


def account_document(account: selectors.Account, *, as_of: datetime.date) -> dict[str, Any]:
    return {
        "employer": account.employer,
        "as_of": as_of,
        "totals": {
            "due": account.total_due,
            "paid": account.total_paid,
            "balance": account.balance,
            "unallocated": account.unallocated,
            "arrears": account.arrears,
            "surcharges": account.surcharges,
        },
        "statements": [
            {
                "declaration_id": line.declaration.pk,
                "period": month_text(line.declaration.period),
                "kind": line.declaration.kind,
                "due_date": line.declaration.due_date,
                "due": line.due,
                "paid": line.paid,
                "outstanding": line.outstanding,
                "months_late": line.months_late,
                "surcharge": line.surcharge,
            }
            for line in account.statements
        ],
        "payments": [payment_document(payment) for payment in account.payments],
    }


class BankImportOut(Schema):
    id: int
    file_name: str
    file_sha256: str
    imported_at: datetime.datetime
    payment_count: int
    total: MoneyOut


def bank_import_document(imported: BankImport) -> dict[str, Any]:
    return {
        "id": imported.pk,
        "file_name": imported.file_name,
        "file_sha256": imported.file_sha256,
        "imported_at": imported.imported_at,
        "payment_count": imported.payment_count,
        "total": imported.total,
    }


class NonFilerOut(Schema):
    employer: EmployerBriefOut
    active_workers: int = Field(description="Employments in force during the month.")


def non_filer_document(employer: Employer, active_workers: int) -> dict[str, Any]:
    return {"employer": employer, "active_workers": active_workers}
