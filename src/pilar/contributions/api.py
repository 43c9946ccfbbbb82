"""REST API of contributions: payroll declarations (upload, JSON, report, lines, confirm,
withdraw), work histories, employer accounts, payments, bank files and non-filers, under
``/api/v1/``.

As in the registry's API, each operation parses its input, calls one service or selector with
the request's actor, and shapes the response; permissions, employer scope, the audit trail and
the access log live in the services and selectors. Declarations are processed by background
jobs: an upload answers 202 at once and the client polls ``GET /declarations/{id}``.

A declaration sent as JSON is written out as a canonical CSV file (UTF-8, the canonical column
names as header) and submitted exactly like an upload, so the original is kept and hashed,
recognised when sent twice, and validated by the same code as every file.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from decimal import Decimal
from typing import Annotated, Any

from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Field, File, Form, Path, Query, Router, Status
from ninja.files import UploadedFile
from pydantic import StrictInt

from pilar.contributions import fileformat, selectors, services
from pilar.contributions.models import Declaration, DeclarationKind, DeclarationStatus
from pilar.contributions.schemas import (
    AccountOut,
    BankImportOut,
    DeclarationOut,
    DeclarationSummaryOut,
    IssueOut,
    LineOut,
    NonFilerOut,
    PaymentOut,
    WorkHistoryOut,
    account_document,
    bank_import_document,
    declaration_document,
    declaration_summary,
    line_document,
    non_filer_document,
    payment_document,
    work_history_document,
)
from pilar.core.api import (
    AUTH_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    InputSchema,
    IsoDate,
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
from pilar.core.errors import ValidationFailed
from pilar.registry.api import EmployerId, PersonId, PurposeHeader, PurposeQuery

router = Router()

CONTRIBUTIONS = ["Contributions"]

# A JSON declaration is parsed and validated in memory by the web process before it is queued;
# larger payrolls are uploaded as a file. The request body limit of the node
# (DATA_UPLOAD_MAX_MEMORY_SIZE) may cut in first, with 413 request.too_large.
MAX_JSON_LINES = 200_000
JSON_FILE_NAME = "declaration.csv"
UPLOAD_ERRORS: dict[int, type[ProblemOut]] = {**WRITE_ERRORS, 413: ProblemOut}

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _month(value: str, *, field: str = "period") -> datetime.date:
    """``YYYY-MM`` → the month's first day; anything else is a field error."""
    match = _MONTH.match(value.strip())
    try:
        if match is None:
            raise ValueError(value)
        return datetime.date(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        raise ValidationFailed.single(
            field, "period_format", _("Write the month as YYYY-MM, for example 2026-01.")
        ) from None


def _location(response: HttpResponse, declaration_id: int) -> None:
    response["Location"] = reverse("api:declaration_get", kwargs={"declaration_id": declaration_id})


def _file_bytes(upload: UploadedFile) -> bytes:
    # Refused before it is read into memory: the service would refuse it anyway.
    limit = fileformat.max_bytes()
    if upload.size is not None and upload.size > limit:
        raise RequestTooLarge(
            _(
                "The file is larger than %(mb)s MB, the largest Pilar accepts. Remove unused "
                "sheets, columns or formatting, or save it as CSV."
            )
            % {"mb": limit // (1024 * 1024)}
        )
    return upload.read()


def _submitted(response: HttpResponse, declaration: Declaration, created: bool) -> Status:
    _location(response, declaration.pk)
    if created:
        return Status(202, declaration_document(declaration))
    return Status(200, declaration_document(declaration, recognised=True))


# --- declarations: submit ---------------------------------------------------------------------

KIND_DESCRIPTION = "normal; complementary or replacement to correct a posted month."
KIND_CHOICES: dict[str, Any] = {"enum": sorted(DeclarationKind.values)}


@router.post(
    "/declarations",
    response={200: DeclarationOut, 202: DeclarationOut, **UPLOAD_ERRORS},
    tags=CONTRIBUTIONS,
    summary="Upload a declaration file",
)
def declaration_upload(
    request: HttpRequest,
    response: HttpResponse,
    employer_id: Annotated[int, Form(..., ge=1, le=_MAX_ID)],
    period: Annotated[str, Form(..., max_length=20, description="The month, YYYY-MM.")],
    file: Annotated[
        UploadedFile,
        File(..., description="CSV (UTF-8, UTF-16 or Windows-1252) or .xlsx, one line per worker."),
    ],
    kind: Annotated[
        str,
        Form(DeclarationKind.NORMAL, max_length=20, description=KIND_DESCRIPTION),
    ],
) -> Status:
    """`multipart/form-data` with `employer_id`, `period` (YYYY-MM), `kind` and `file`. The file
    is kept as received and validated in the background: the answer is 202 with the declaration;
    poll `GET /declarations/{id}` until its status is validated or rejected. The same file sent
    again for the same employer and month answers 200 with the earlier declaration and
    `recognised: true`."""
    month = _month(period)
    data = _file_bytes(file)
    declaration, created = services.declaration_submit(
        actor=actor_of(request),
        employer_id=employer_id,
        period=month,
        kind=kind,
        file_name=file.name or "declaration",
        data=data,
    )
    return _submitted(response, declaration, created)


# Daily salaries as in the registry's API: a decimal string or a JSON number (read as Decimal).
DailySalaryIn = Annotated[Decimal, Field(max_digits=12, decimal_places=2, examples=["315.04"])]


class DeclarationLineIn(InputSchema):
    worker_id: str = Field(
        max_length=18, description="CURP or NSS.", examples=["GALJ850312HDFRPN03"]
    )
    paternal_surname: str = Field(max_length=100)
    maternal_surname: str | None = Field("", max_length=100)
    given_names: str = Field(max_length=100)
    # Whole numbers as JSON integers; their ranges are checked with the rest of the line, so
    # a JSON declaration's report reads like a file's.
    days: StrictInt = Field(description="Days employed in the month.", examples=[31])
    daily_salary: DailySalaryIn
    absence_days: StrictInt | None = 0
    incapacity_days: StrictInt | None = 0
    movement: str | None = Field(
        "",
        max_length=30,
        description="Empty, hire, separation or salary_change (or alta, baja, modificacion).",
    )
    movement_date: IsoDate | None = None


class DeclarationJsonIn(InputSchema):
    employer_id: RecordId
    period: str = Field(max_length=20, examples=["2026-01"], description="The month, YYYY-MM.")
    kind: str = Field(
        DeclarationKind.NORMAL,
        max_length=20,
        json_schema_extra=KIND_CHOICES,
        description=KIND_DESCRIPTION,
    )
    lines: list[DeclarationLineIn] = Field(max_length=MAX_JSON_LINES)


def _cell(value: object) -> str:
    # Amounts keep the decimals they were sent with ("100.00" stays "100.00"), so the report
    # quotes the value the way the client wrote it.
    if isinstance(value, Decimal):
        return format(value, "f")
    return fileformat.cell_text(value)


def canonical_csv(lines: list[DeclarationLineIn]) -> bytes:
    """The lines as a declaration file: UTF-8, comma separated, the canonical column names as
    header. Cells are written as sent. Unlike an export, nothing is escaped against spreadsheet
    formulas: the file is the employer's own input, kept as evidence of what was declared, and
    an apostrophe added to a value would change what is validated."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(fileformat.CANONICAL)
    for line in lines:
        values = line.model_dump()
        writer.writerow(_cell(values.get(name)) for name in fileformat.CANONICAL)
    return buffer.getvalue().encode("utf-8")


@router.post(
    "/declarations/json",
    response={200: DeclarationOut, 202: DeclarationOut, **UPLOAD_ERRORS},
    tags=CONTRIBUTIONS,
    summary="Send a declaration as JSON",
)
def declaration_submit_json(
    request: HttpRequest, payload: DeclarationJsonIn, response: HttpResponse
) -> Status:
    """The lines become a canonical CSV file (header `worker_id, paternal_surname, …`) that is
    submitted like an upload: the answer is 202, the file is validated in the background, and
    the report's row *n* is `lines[n-2]` (row 1 is the header). At most 200,000 lines; larger
    payrolls are uploaded as a file."""
    month = _month(payload.period)
    if not payload.lines:
        raise ValidationFailed.single(
            "lines", "lines.empty", _("A declaration needs at least one worker line.")
        )
    declaration, created = services.declaration_submit(
        actor=actor_of(request),
        employer_id=payload.employer_id,
        period=month,
        kind=payload.kind,
        file_name=JSON_FILE_NAME,
        data=canonical_csv(payload.lines),
    )
    return _submitted(response, declaration, created)


# --- declarations: read -------------------------------------------------------------------------

DeclarationId = Annotated[int, Path(ge=1, le=_MAX_ID)]
STATUS_DESCRIPTION = "One of: " + ", ".join(DeclarationStatus.values) + "."


@router.get(
    "/declarations",
    response={200: PageOut[DeclarationSummaryOut], **AUTH_ERRORS, 422: ProblemOut},
    tags=CONTRIBUTIONS,
    summary="List declarations",
)
def declaration_list(
    request: HttpRequest,
    status: Annotated[str, Query("", max_length=12, description=STATUS_DESCRIPTION)],
    period: Annotated[str, Query("", max_length=20, description="The month, YYYY-MM.")],
    employer_id: Annotated[int | None, Query(None, ge=1, le=_MAX_ID)],
    page: Annotated[PageNumber, Query(1)],
    page_size: Annotated[PageSize, Query(25)],
) -> dict[str, Any]:
    """Newest first."""
    if status and status not in DeclarationStatus.values:
        raise ValidationFailed.single(
            "status",
            "invalid_choice",
            _("Choose one of: %(choices)s.") % {"choices": ", ".join(DeclarationStatus.values)},
        )
    result = selectors.declaration_list(
        actor=actor_of(request),
        employer_id=employer_id,
        status=status,
        period=_month(period) if period else None,
        page=page,
        page_size=page_size,
    )
    return page_out(request, result, [declaration_summary(item) for item in result.items])


@router.get(
    "/declarations/{int:declaration_id}",
    response={200: DeclarationOut, **READ_ERRORS},
    tags=CONTRIBUTIONS,
    summary="A declaration",
    url_name="declaration_get",
)
def declaration_get(request: HttpRequest, declaration_id: DeclarationId) -> dict[str, Any]:
    """Status, progress of the background job, counts, the summary statement per branch once
    validated, the due date and, for a file refused as a whole, the rejection code."""
    declaration = selectors.declaration_get(actor=actor_of(request), declaration_id=declaration_id)
    return declaration_document(declaration)


@router.get(
    "/declarations/{int:declaration_id}/issues",
    response={200: PageOut[IssueOut], **READ_ERRORS},
    tags=CONTRIBUTIONS,
    summary="A declaration's validation report",
)
def declaration_issues(
    request: HttpRequest,
    declaration_id: DeclarationId,
    page: Annotated[PageNumber, Query(1)],
    page_size: Annotated[PageSize, Query(50)],
) -> dict[str, Any]:
    """Errors and warnings by row and column, with the value as written."""
    result = selectors.declaration_issues(
        actor=actor_of(request), declaration_id=declaration_id, page=page, page_size=page_size
    )
    return page_out(request, result, result.items)


@router.get(
    "/declarations/{int:declaration_id}/lines",
    response={200: PageOut[LineOut], **READ_ERRORS},
    tags=CONTRIBUTIONS,
    summary="A declaration's lines",
)
def declaration_lines(
    request: HttpRequest,
    declaration_id: DeclarationId,
    page: Annotated[PageNumber, Query(1)],
    page_size: Annotated[PageSize, Query(50)],
) -> dict[str, Any]:
    """The valid lines with their base and shares per branch: staged lines until the
    declaration is posted, its contribution records after."""
    result = selectors.declaration_lines(
        actor=actor_of(request), declaration_id=declaration_id, page=page, page_size=page_size
    )
    return page_out(request, result, [line_document(line) for line in result.items])


# --- declarations: confirm and withdraw ---------------------------------------------------------


@router.post(
    "/declarations/{int:declaration_id}/confirm",
    response={202: DeclarationOut, **WRITE_ERRORS},
    tags=CONTRIBUTIONS,
    summary="Confirm a validated declaration",
)
def declaration_confirm(request: HttpRequest, declaration_id: DeclarationId) -> Status:
    """Accept the statement: the declaration is posted in the background (202). Only a
    validated declaration can be confirmed; anything else is 409 `conflict`."""
    declaration = services.declaration_confirm(
        actor=actor_of(request), declaration_id=declaration_id
    )
    return Status(202, declaration_document(declaration))


@router.post(
    "/declarations/{int:declaration_id}/withdraw",
    response={200: DeclarationOut, **WRITE_ERRORS},
    tags=CONTRIBUTIONS,
    summary="Withdraw a declaration",
)
def declaration_withdraw(request: HttpRequest, declaration_id: DeclarationId) -> dict[str, Any]:
    """Discard a validated or rejected declaration that was not confirmed (409 otherwise)."""
    declaration = services.declaration_withdraw(
        actor=actor_of(request), declaration_id=declaration_id
    )
    return declaration_document(declaration)


# --- work history -------------------------------------------------------------------------------


@router.get(
    "/persons/{int:person_id}/work-history",
    response={200: WorkHistoryOut, **READ_ERRORS},
    tags=CONTRIBUTIONS,
    summary="A person's work history and weeks of contribution",
)
def work_history(
    request: HttpRequest, person_id: PersonId, purpose: PurposeQuery, x_purpose: PurposeHeader
) -> dict[str, Any]:
    """Every posted month, newest first, with the employer, days, SBC, base and shares, and the
    weeks of contribution. Part of the person's record: the read is logged with its purpose."""
    history = selectors.work_history(
        actor=actor_of(request),
        person_id=person_id,
        purpose=(purpose or x_purpose or "").strip(),
    )
    return work_history_document(person_id, history)


# --- employer accounts and payments -------------------------------------------------------------


@router.get(
    "/employers/{int:employer_id}/account",
    response={200: AccountOut, **READ_ERRORS},
    tags=CONTRIBUTIONS,
    summary="An employer's account",
)
def account_get(request: HttpRequest, employer_id: EmployerId) -> dict[str, Any]:
    """Posted statements with what was paid against them, arrears and surcharges as of today,
    and the payments received."""
    today = timezone.localdate()
    account = selectors.account_get(actor=actor_of(request), employer_id=employer_id, on=today)
    prefetch_related_objects(account.payments, "allocations")
    return account_document(account, as_of=today)


class PaymentIn(InputSchema):
    amount: Annotated[Decimal, Field(max_digits=14, decimal_places=2, examples=["1250.00"])]
    received_on: IsoDate
    reference: str | None = Field(
        "",
        max_length=40,
        description="The bank reference; a declaration id (D123) sends the money there first.",
    )


@router.post(
    "/employers/{int:employer_id}/payments",
    response={201: PaymentOut, **WRITE_ERRORS},
    tags=CONTRIBUTIONS,
    summary="Record a payment",
)
def payment_record(request: HttpRequest, employer_id: EmployerId, payload: PaymentIn) -> Status:
    """A payment received from the employer, applied at once to its statements (oldest due
    first, unless the reference names a declaration)."""
    payment = services.payment_record(
        actor=actor_of(request),
        employer_id=employer_id,
        amount=payload.amount,
        received_on=payload.received_on,
        reference=payload.reference or "",
    )
    return Status(201, payment_document(payment))


@router.post(
    "/payments/bank-imports",
    response={201: BankImportOut, **UPLOAD_ERRORS},
    tags=CONTRIBUTIONS,
    summary="Import a bank file of payments",
)
def bank_import(
    request: HttpRequest,
    file: Annotated[
        UploadedFile,
        File(
            ..., description="CSV with fecha, importe, referencia and registro_patronal (or rfc)."
        ),
    ],
) -> Status:
    """`multipart/form-data` with `file`. Every row is checked first: any error refuses the
    whole file (422, the rows at fault in the message) and nothing is imported. The same file
    is imported once (409 the second time)."""
    imported = services.bank_import(
        actor=actor_of(request), file_name=file.name or "bank.csv", data=_file_bytes(file)
    )
    return Status(201, bank_import_document(imported))


@router.get(
    "/non-filers",
    response={200: PageOut[NonFilerOut], **AUTH_ERRORS, 422: ProblemOut},
    tags=CONTRIBUTIONS,
    summary="Employers that have not declared a month",
)
def non_filers(
    request: HttpRequest,
    period: Annotated[str, Query(..., max_length=20, description="The month, YYYY-MM.")],
    page: Annotated[PageNumber, Query(1)],
    page_size: Annotated[PageSize, Query(50)],
) -> dict[str, Any]:
    """Active employers with workers in the month and no declaration for it (validated,
    confirmed or posted), most workers first."""
    result = selectors.non_filers(
        actor=actor_of(request), period=_month(period), page=page, page_size=page_size
    )
    return page_out(
        request,
        result,
        [non_filer_document(item.employer, item.active_workers) for item in result.items],
    )
