"""Writes of the contributions app: declarations (submit → validate → confirm → post, and
withdraw), payments and their allocation to statements.

The pipeline (issue 3):

1. ``declaration_submit`` keeps the original file (content-addressed by SHA-256 under
   ``PILAR_DECLARATION_DIR``), recognises the same file for the same employer and period (returns
   the earlier declaration instead of processing it twice), refuses a second upload while one is
   being processed, and queues the validation job.
2. ``declaration_validate`` (job) parses and validates every row (``validation``), stages the
   valid lines and the report in committed batches (progress visible, a crash re-runs from the
   start: it deletes what a previous attempt staged), and ends with the summary statement.
3. ``declaration_confirm``: the employer accepts the statement; the posting job is queued.
4. ``declaration_post`` (job): one transaction supersedes the records the declaration replaces,
   inserts the contribution records from the staged lines set-based, applies hires, separations
   and salary changes to the registry, and marks the declaration posted — all or nothing.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from pilar.contributions import fileformat, validation
from pilar.contributions.models import (
    MONEY_FIELDS,
    PROCESSING_STATUSES,
    BankImport,
    ContributionRecord,
    Declaration,
    DeclarationIssue,
    DeclarationKind,
    DeclarationLine,
    DeclarationStatus,
    Movement,
    Payment,
    PaymentAllocation,
    PaymentSource,
    RegistrationRequest,
)
from pilar.contributions.parameters import parameter_snapshot
from pilar.core import bulk, jobs
from pilar.core.actor import Actor
from pilar.core.audit import audit_record
from pilar.core.errors import Conflict, FieldErrors, NotFound, ValidationFailed
from pilar.core.models import AuditEvent
from pilar.core.roles import Perm
from pilar.registry.models import (
    Employer,
    EmployerStatus,
    Employment,
    EmploymentSalary,
    Person,
)

VALIDATE_JOB = "contributions.validate"
POST_JOB = "contributions.post"
BATCH_ROWS = 100_000
# Contributions older than five years can no longer be determined (LSS art. 297), so a
# declaration for such a month is refused.
OPEN_YEARS = 5


def declaration_dir() -> Path:
    return Path(getattr(settings, "PILAR_DECLARATION_DIR", settings.VAR_DIR / "declarations"))


def _employer_for(actor: Actor, employer_id: int) -> Employer:
    if not actor.sees_employer(employer_id):
        raise NotFound()
    employer = Employer.objects.filter(pk=employer_id).first()
    if employer is None:
        raise NotFound()
    return employer


def period_check(period: datetime.date, *, today: datetime.date | None = None) -> None:
    """A declaration's month must have started and be within the last five years."""
    today = today or timezone.localdate()
    if period.day != 1:
        raise ValidationFailed.single(
            "period", "period_format", _("The period is a month: give its first day.")
        )
    if period > today.replace(day=1):
        raise ValidationFailed.single(
            "period", "period_future", _("A month that has not started cannot be declared.")
        )
    oldest = today.replace(day=1, year=today.year - OPEN_YEARS)
    if period < oldest:
        raise ValidationFailed.single(
            "period",
            "period_closed",
            _(
                "Months before %(month)s are closed: contributions older than five years can no "
                "longer be declared."
            )
            % {"month": oldest.strftime("%Y-%m")},
        )


def posted_for_period(employer_id: int, period: datetime.date) -> bool:
    return Declaration.objects.filter(
        employer_id=employer_id, period=period, status=DeclarationStatus.POSTED
    ).exists()


def declaration_submit(
    *,
    actor: Actor,
    employer_id: int,
    period: datetime.date,
    kind: str,
    file_name: str,
    data: bytes,
) -> tuple[Declaration, bool]:
    """Receive a declaration file. Returns (declaration, created): an identical file for the same
    employer and period returns the earlier declaration with created False."""
    actor.require(Perm.DECLARATION_SUBMIT)
    employer = _employer_for(actor, employer_id)
    if kind not in DeclarationKind.values:
        raise ValidationFailed.single("kind", "kind_unknown", _("Unknown declaration kind."))
    period_check(period)
    if employer.status != EmployerStatus.ACTIVE:
        raise Conflict(_("The employer is not active; it cannot declare."))
    limit = getattr(settings, "PILAR_DECLARATION_MAX_BYTES", 100 * 1024 * 1024)
    if len(data) > limit:
        raise ValidationFailed.single(
            "file",
            "too_large",
            _("The file is larger than %(mb)s MB.") % {"mb": limit // (1024 * 1024)},
        )
    if not data:
        raise ValidationFailed.single("file", "empty", _("The file is empty."))
    digest = hashlib.sha256(data).hexdigest()
    with transaction.atomic():
        # One declaration at a time per employer: the lock orders concurrent uploads.
        Employer.objects.select_for_update().filter(pk=employer.pk).first()
        earlier = Declaration.objects.filter(
            employer=employer, period=period, file_sha256=digest
        ).first()
        if earlier is not None:
            return earlier, False
        busy = Declaration.objects.filter(
            employer=employer, period=period, status__in=PROCESSING_STATUSES
        ).first()
        if busy is not None:
            raise Conflict(
                _(
                    "Declaration %(id)s for this month is still being processed (%(status)s). "
                    "Wait until it is finished before uploading another file."
                )
                % {"id": busy.pk, "status": busy.get_status_display()}
            )
        already_posted = posted_for_period(employer.pk, period)
        if kind == DeclarationKind.NORMAL and already_posted:
            raise Conflict(
                _(
                    "This month has already been declared and posted. Upload a complementary or "
                    "a replacement declaration to correct it."
                )
            )
        if kind != DeclarationKind.NORMAL and not already_posted:
            raise Conflict(
                _(
                    "There is no posted declaration for this month to correct; upload a normal "
                    "declaration."
                )
            )
        # A newer upload withdraws an earlier one still waiting for confirmation.
        waiting = list(
            Declaration.objects.filter(
                employer=employer, period=period, status=DeclarationStatus.VALIDATED
            )
        )
        for older in waiting:
            older.status = DeclarationStatus.WITHDRAWN
            older.save(update_fields=["status"])
            audit_record(
                actor=actor,
                action="withdraw",
                entity_type="declaration",
                entity_id=older.pk,
                changes={"status": [DeclarationStatus.VALIDATED, DeclarationStatus.WITHDRAWN]},
                note="replaced by a newer upload",
            )
        suffix = Path(file_name).suffix.lower()[:10] or ".dat"
        relative = Path(str(employer.pk), period.strftime("%Y-%m"), f"{digest}{suffix}")
        target = declaration_dir() / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            partial = target.with_suffix(target.suffix + ".part")
            partial.write_bytes(data)
            partial.replace(target)
        declaration = Declaration.objects.create(
            employer=employer,
            period=period,
            kind=kind,
            file_name=Path(file_name).name[:255] or "declaration",
            file_sha256=digest,
            file_size=len(data),
            file_path=str(relative),
            channel=actor.channel,
            submitted_by=actor.user,
            submitted_by_label=actor.label,
            stage="queued",
            due_date=validation.due_date(period),
        )
        # A whole-file rejection is worded by the job: in the language of whoever uploaded.
        declaration.job = jobs.enqueue(
            VALIDATE_JOB, declaration_id=declaration.pk, language=get_language()
        )
        declaration.save(update_fields=["job"])
        audit_record(
            actor=actor,
            action="submit",
            entity_type="declaration",
            entity_id=declaration.pk,
            changes={
                "employer": [None, employer.pk],
                "period": [None, period.isoformat()],
                "kind": [None, kind],
                "file_name": [None, declaration.file_name],
                "file_sha256": [None, digest],
            },
        )
    return declaration, True


def _progress(declaration_id: int, stage: str, done: int, total: int, job_id: int | None) -> None:
    # Outside any transaction the update is visible at once to the page polling it.
    Declaration.objects.filter(pk=declaration_id).update(
        stage=stage, progress_done=done, progress_total=total
    )
    if job_id is not None:
        jobs.heartbeat(job_id)


def _reset_staging(declaration_id: int) -> None:
    DeclarationLine.objects.filter(declaration_id=declaration_id).delete()
    DeclarationIssue.objects.filter(declaration_id=declaration_id).delete()
    RegistrationRequest.objects.filter(declaration_id=declaration_id).delete()


def declaration_validate(*, declaration_id: int, job_id: int | None = None) -> Declaration:
    """The validation job (module docstring, step 2). Idempotent: a validated or rejected
    declaration is left as it is; one caught mid-validation starts again from a clean stage."""
    declaration = Declaration.objects.select_related("employer").get(pk=declaration_id)
    if declaration.status not in (DeclarationStatus.RECEIVED, DeclarationStatus.VALIDATING):
        return declaration
    Declaration.objects.filter(pk=declaration_id).update(status=DeclarationStatus.VALIDATING)
    _reset_staging(declaration_id)
    _progress(declaration_id, "parsing", 0, declaration.file_size, job_id)
    data = (declaration_dir() / declaration.file_path).read_bytes()
    try:
        parsed = fileformat.read_declaration(data, filename=declaration.file_name)
    except fileformat.FileRejected as rejected:
        with transaction.atomic():
            Declaration.objects.filter(pk=declaration_id).update(
                status=DeclarationStatus.REJECTED,
                stage="done",
                rejection_code=rejected.code,
                rejection_message=str(rejected.message),
                error_count=1,
                validated_at=timezone.now(),
            )
        declaration.refresh_from_db()
        return declaration
    del data
    total = parsed.rows
    _progress(declaration_id, "validating", 0, total, job_id)
    parameters = parameter_snapshot(on=declaration.period)
    result = validation.validate(
        parsed,
        employer_id=declaration.employer_id,
        period=declaration.period,
        parameters=parameters,
    )
    # Stage lines and the report in committed batches so progress shows and a crash loses at
    # most a batch; status moves on only when everything is in.
    rows = validation.line_rows_for_insert(result.lines, declaration_id)
    stored = 0
    for offset in range(0, rows.height, BATCH_ROWS):
        with transaction.atomic():
            stored += bulk.frame_insert(
                DeclarationLine._meta.db_table, rows.slice(offset, BATCH_ROWS)
            )
        _progress(declaration_id, "staging", stored, rows.height, job_id)
    max_issues = getattr(settings, "PILAR_DECLARATION_MAX_ISSUES", 100_000)
    issues = (
        result.issues.head(max_issues)
        .with_columns(declaration_id=declaration_id)
        .select("declaration_id", "row", "column", "code", "severity", "value", "params")
    )
    with transaction.atomic():
        bulk.frame_insert(DeclarationIssue._meta.db_table, issues)
    errors = result.issues.filter(validation.pl.col("severity") == "error").height
    warnings = result.issues.height - errors
    statement = result.statement
    previously = _in_force_totals(declaration, result) if declaration.kind != "normal" else None
    employer_total = Decimal(statement["employer"]) / 100
    worker_total = Decimal(statement["worker"]) / 100
    total_due = employer_total + worker_total
    if previously is not None:
        statement["previously_declared"] = previously
        total_due -= Decimal(previously) / 100
    with transaction.atomic():
        if result.requests is not None and errors == 0:
            RegistrationRequest.objects.bulk_create(
                RegistrationRequest(declaration_id=declaration_id, **row)
                for row in result.requests.iter_rows(named=True)
            )
        Declaration.objects.filter(pk=declaration_id).update(
            status=DeclarationStatus.REJECTED if errors else DeclarationStatus.VALIDATED,
            stage="done",
            progress_done=total,
            progress_total=total,
            file_format=parsed.format,
            file_encoding=parsed.encoding or "",
            line_count=result.line_count,
            error_count=errors,
            warning_count=warnings,
            worker_count=statement["workers"],
            salary_mass=Decimal(statement["salary_mass"]) / 100,
            employer_total=employer_total,
            worker_total=worker_total,
            total_due=total_due,
            branch_totals=statement,
            validated_at=timezone.now(),
        )
        if errors:
            # Nothing of a rejected declaration can be posted: its staged lines go.
            DeclarationLine.objects.filter(declaration_id=declaration_id).delete()
    declaration.refresh_from_db()
    return declaration


def _in_force_totals(declaration: Declaration, result: validation.Validated) -> int:
    """What the records a correction replaces came to, in centavos: every record of the month
    for a replacement, those of the declared workers for a complementary declaration."""
    records = ContributionRecord.objects.filter(
        employer_id=declaration.employer_id,
        period=declaration.period,
        superseded_at__isnull=True,
    )
    if declaration.kind == DeclarationKind.COMPLEMENTARY:
        records = records.filter(
            person_id__in=DeclarationLine.objects.filter(declaration_id=declaration.pk).values(
                "person_id"
            )
        )
    sums = records.aggregate(employer=Sum("employer_total"), worker=Sum("worker_total"))
    return int(((sums["employer"] or 0) + (sums["worker"] or 0)) * 100)


def declaration_confirm(*, actor: Actor, declaration_id: int) -> Declaration:
    """The employer accepts the statement: the declaration is queued for posting."""
    actor.require(Perm.DECLARATION_SUBMIT)
    with transaction.atomic():
        declaration = Declaration.objects.select_for_update().filter(pk=declaration_id).first()
        if declaration is None or not actor.sees_employer(declaration.employer_id):
            raise NotFound()
        if declaration.status != DeclarationStatus.VALIDATED:
            raise Conflict(
                _("Only a validated declaration can be confirmed; this one is %(status)s.")
                % {"status": declaration.get_status_display()}
            )
        declaration.status = DeclarationStatus.CONFIRMED
        declaration.confirmed_by = actor.user
        declaration.confirmed_by_label = actor.label
        declaration.confirmed_at = timezone.now()
        declaration.stage = "queued"
        declaration.progress_done = 0
        declaration.job = jobs.enqueue(POST_JOB, declaration_id=declaration.pk)
        declaration.save()
        audit_record(
            actor=actor,
            action="confirm",
            entity_type="declaration",
            entity_id=declaration.pk,
            changes={"status": [DeclarationStatus.VALIDATED, DeclarationStatus.CONFIRMED]},
        )
    return declaration


def declaration_withdraw(*, actor: Actor, declaration_id: int) -> Declaration:
    """Discard a declaration that has not been confirmed (validated or rejected)."""
    actor.require(Perm.DECLARATION_SUBMIT)
    with transaction.atomic():
        declaration = Declaration.objects.select_for_update().filter(pk=declaration_id).first()
        if declaration is None or not actor.sees_employer(declaration.employer_id):
            raise NotFound()
        if declaration.status not in (DeclarationStatus.VALIDATED, DeclarationStatus.REJECTED):
            raise Conflict(_("Only a declaration that has not been confirmed can be withdrawn."))
        before = declaration.status
        declaration.status = DeclarationStatus.WITHDRAWN
        declaration.save(update_fields=["status"])
        DeclarationLine.objects.filter(declaration_id=declaration.pk).delete()
        audit_record(
            actor=actor,
            action="withdraw",
            entity_type="declaration",
            entity_id=declaration.pk,
            changes={"status": [before, DeclarationStatus.WITHDRAWN]},
        )
    return declaration


# Hooks for tests that simulate a crash in the middle of posting.
_posting_checkpoint: Callable[[str], None] | None = None


def _checkpoint(name: str) -> None:
    if _posting_checkpoint is not None:
        _posting_checkpoint(name)


# Columns copied unchanged from a staged line to its record; money goes from centavos to pesos.
RECORD_COLUMNS = ("days", "absence_days", "incapacity_days", "row", "covered_from", "covered_to")


def declaration_post(*, declaration_id: int, job_id: int | None = None) -> Declaration:
    """The posting job (module docstring, step 4). All or nothing: everything happens in one
    transaction, so a crash leaves the declaration confirmed and the job runs it again."""
    posted_at = timezone.now()
    # Committed at once so the page shows "being posted"; the posting itself is one transaction.
    Declaration.objects.filter(pk=declaration_id, status=DeclarationStatus.CONFIRMED).update(
        status=DeclarationStatus.POSTING, stage="posting"
    )
    if job_id is not None:
        jobs.heartbeat(job_id)
    with transaction.atomic():
        declaration = Declaration.objects.select_for_update().filter(pk=declaration_id).first()
        if declaration is None:
            raise NotFound()
        if declaration.status == DeclarationStatus.POSTED:
            return declaration
        if declaration.status not in (DeclarationStatus.CONFIRMED, DeclarationStatus.POSTING):
            raise Conflict(_("Only a confirmed declaration can be posted."))
        lines = DeclarationLine.objects.filter(declaration_id=declaration.pk)
        if lines.count() != declaration.worker_count:
            # The staging table is unlogged (migration 0007): a database crash empties it.
            # The original file is kept, so validate it again; the employer confirms again.
            return _revalidate(declaration)
        in_force = ContributionRecord.objects.filter(
            employer_id=declaration.employer_id,
            period=declaration.period,
            superseded_at__isnull=True,
        )
        if declaration.kind != DeclarationKind.REPLACEMENT:
            # A normal or complementary line supersedes that worker's earlier record only.
            in_force = in_force.filter(person_id__in=lines.values("person_id"))
        superseded = in_force.update(superseded_by=declaration, superseded_at=posted_at)
        _checkpoint("superseded")
        quote = connection.ops.quote_name
        staged = quote(DeclarationLine._meta.db_table)
        with connection.cursor() as cursor:
            # Every person must exist: one anti-join instead of a foreign-key check per row.
            cursor.execute(
                f"SELECT COUNT(*) FROM {staged} l LEFT JOIN {quote(Person._meta.db_table)} p "  # noqa: S608
                "ON p.id = l.person_id WHERE l.declaration_id = %s AND p.id IS NULL",
                [declaration.pk],
            )
            missing = cursor.fetchone()
            if missing and missing[0]:
                raise Conflict(_("A declared person no longer exists in the registry."))
            columns = [*RECORD_COLUMNS, *MONEY_FIELDS]
            values = [quote(c) for c in RECORD_COLUMNS] + [
                f"{quote(f'{name}_cents')} / 100.0" for name in MONEY_FIELDS
            ]
            cursor.execute(
                f"INSERT INTO {quote(ContributionRecord._meta.db_table)} "  # noqa: S608
                "(person_id, employer_id, period, declaration_id, posted_at, "
                f"{', '.join(quote(c) for c in columns)}) "
                f"SELECT person_id, %s, %s, declaration_id, %s, {', '.join(values)} "
                f"FROM {staged} WHERE declaration_id = %s",
                [declaration.employer_id, declaration.period, posted_at, declaration.pk],
            )
            inserted = cursor.rowcount
        _checkpoint("inserted")
        has_movements = (declaration.branch_totals or {}).get("movements", 1) > 0
        movements = _apply_movements(declaration) if has_movements else 0
        _checkpoint("movements")
        declaration.status = DeclarationStatus.POSTED
        declaration.posted_at = posted_at
        declaration.stage = "done"
        declaration.progress_done = declaration.progress_total = inserted
        declaration.save()
        AuditEvent.objects.create(
            actor=declaration.confirmed_by,
            actor_label=declaration.confirmed_by_label or "system",
            channel="bulk",
            action="post",
            entity_type="declaration",
            entity_id=str(declaration.pk),
            changes={
                "status": [DeclarationStatus.CONFIRMED, DeclarationStatus.POSTED],
                "records": [None, inserted],
                "superseded": [None, superseded],
                "movements": [None, movements],
            },
        )
        _checkpoint("done")
    allocate_payments(employer_id=declaration.employer_id)
    return declaration


def _revalidate(declaration: Declaration) -> Declaration:
    declaration.status = DeclarationStatus.RECEIVED
    declaration.stage = "queued"
    declaration.job = jobs.enqueue(VALIDATE_JOB, declaration_id=declaration.pk)
    declaration.save(update_fields=["status", "stage", "job"])
    AuditEvent.objects.create(
        actor=None,
        actor_label="system",
        channel="bulk",
        action="revalidate",
        entity_type="declaration",
        entity_id=str(declaration.pk),
        changes={"status": [DeclarationStatus.CONFIRMED, DeclarationStatus.RECEIVED]},
        note="staged lines missing at posting (database restart); validating the file again",
    )
    return declaration


def _apply_movements(declaration: Declaration) -> int:
    """Hires create employments (with the declared SBC), separations end them, salary changes
    add a salary from their date. A declaration carries few movements, so this goes row by row,
    with an audit event for each change."""
    moving = DeclarationLine.objects.filter(declaration_id=declaration.pk).exclude(
        movement=Movement.NONE
    )
    count = 0
    for line in moving.iterator():
        assert line.movement_date is not None  # validation requires it
        open_employment = (
            Employment.objects.filter(person_id=line.person_id, employer_id=declaration.employer_id)
            .filter(Q(end_date__isnull=True) | Q(end_date__gte=line.movement_date))
            .filter(start_date__lte=line.movement_date)
            .order_by("-start_date")
            .first()
        )
        changes: dict[str, Any]
        if line.movement == Movement.HIRE:
            employment = Employment.objects.create(
                person_id=line.person_id,
                employer_id=declaration.employer_id,
                start_date=line.movement_date,
            )
            EmploymentSalary.objects.create(
                employment=employment,
                effective_from=line.movement_date,
                daily_salary=line.daily_salary,
            )
            action, entity_id = "create", employment.pk
            changes = {
                "employer": [None, declaration.employer_id],
                "start_date": [None, line.movement_date.isoformat()],
                "daily_salary": [None, str(line.daily_salary)],
            }
        elif open_employment is None:
            continue  # validation guarantees one; a concurrent staff edit may have ended it
        elif line.movement == Movement.SEPARATION:
            before = open_employment.end_date
            open_employment.end_date = line.movement_date
            open_employment.save(update_fields=["end_date"])
            action, entity_id = "update", open_employment.pk
            changes = {
                "end_date": [before.isoformat() if before else None, line.movement_date.isoformat()]
            }
        else:
            EmploymentSalary.objects.update_or_create(
                employment=open_employment,
                effective_from=line.movement_date,
                defaults={"daily_salary": line.daily_salary},
            )
            action, entity_id = "salary_change", open_employment.pk
            changes = {"daily_salary": [None, str(line.daily_salary)]}
        AuditEvent.objects.create(
            actor=declaration.confirmed_by,
            actor_label=declaration.confirmed_by_label or "system",
            channel="bulk",
            action=action,
            entity_type="employment",
            entity_id=str(entity_id),
            person_id=line.person_id,
            changes=changes,
            note=f"declaration {declaration.pk} row {line.row}",
        )
        count += 1
    return count


# --- Payments ---------------------------------------------------------------------------------


def payment_record(
    *,
    actor: Actor,
    employer_id: int,
    amount: Decimal,
    received_on: datetime.date,
    reference: str = "",
) -> Payment:
    """A payment received from an employer, entered by staff; allocated at once."""
    actor.require(Perm.PAYMENT_RECORD)
    employer = _employer_for(actor, employer_id)
    if amount <= 0:
        raise ValidationFailed.single(
            "amount", "amount_positive", _("The amount must be positive.")
        )
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValidationFailed.single(
            "amount", "too_many_decimals", _("An amount has at most two decimals (centavos).")
        )
    if received_on > timezone.localdate():
        raise ValidationFailed.single(
            "received_on", "date_future", _("A payment cannot be received in the future.")
        )
    with transaction.atomic():
        payment = Payment.objects.create(
            employer=employer,
            amount=amount,
            received_on=received_on,
            reference=reference.strip()[:40],
            source=PaymentSource.STAFF,
            recorded_by=actor.user,
        )
        audit_record(
            actor=actor,
            action="create",
            entity_type="payment",
            entity_id=payment.pk,
            changes={
                "employer": [None, employer.pk],
                "amount": [None, str(amount)],
                "received_on": [None, received_on.isoformat()],
                "reference": [None, payment.reference],
            },
        )
        allocate_payments(employer_id=employer.pk)
    return payment


def allocate_payments(*, employer_id: int) -> int:
    """Match the employer's unallocated money to its posted statements: a payment whose
    reference names a declaration ("D123" or "123") goes there first, the rest to the oldest
    due statement first. Idempotent; returns the number of allocations made."""
    with transaction.atomic():
        declarations = list(
            Declaration.objects.select_for_update()
            .filter(employer_id=employer_id, status=DeclarationStatus.POSTED, total_due__gt=0)
            .order_by("due_date", "id")
        )
        if not declarations:
            return 0
        allocated = {
            row["declaration_id"]: row["total"]
            for row in PaymentAllocation.objects.filter(declaration__in=declarations)
            .values("declaration_id")
            .annotate(total=Sum("amount"))
        }
        outstanding = {
            d.pk: d.total_due - (allocated.get(d.pk) or Decimal(0)) for d in declarations
        }
        made = 0
        payments = Payment.objects.filter(employer_id=employer_id).order_by("received_on", "id")
        for payment in payments:
            used = payment.allocations.aggregate(total=Sum("amount"))["total"] or Decimal(0)
            free = payment.amount - used
            if free <= 0:
                continue
            order = [d.pk for d in declarations]
            named = payment.reference.upper().lstrip("D")
            if named.isdigit() and int(named) in outstanding:
                order.remove(int(named))
                order.insert(0, int(named))
            for declaration_id in order:
                if free <= 0:
                    break
                owed = outstanding[declaration_id]
                if owed <= 0:
                    continue
                amount = min(owed, free)
                PaymentAllocation.objects.create(
                    payment=payment, declaration_id=declaration_id, amount=amount
                )
                outstanding[declaration_id] -= amount
                free -= amount
                made += 1
        return made


BANK_COLUMNS = {
    "date": ("fecha", "date", "fecha_pago", "payment_date"),
    "amount": ("importe", "amount", "monto"),
    "reference": ("referencia", "reference"),
    "employer": ("registro_patronal", "rfc", "employer", "patron"),
}


def _bank_header(cells: list[str]) -> dict[str, int]:
    from pilar.core.text import fold

    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        key = fold(cell).lower().replace(" ", "_")
        for name, aliases in BANK_COLUMNS.items():
            if key in aliases:
                found[name] = index
    return found


def bank_import(*, actor: Actor, file_name: str, data: bytes) -> BankImport:
    """Import a bank's CSV of payments received (date, amount, reference, employer RFC or
    registration number). Every row is checked first; any error refuses the whole file with
    the rows at fault, and nothing is imported. The same file is imported once."""
    import csv
    import io

    actor.require(Perm.PAYMENT_RECORD)
    if not data.strip():
        raise ValidationFailed.single("file", "empty", _("The file is empty."))
    if b"\x00" in data[:65536]:
        raise ValidationFailed.single("file", "not_text", _("The file is not a text (CSV) file."))
    digest = hashlib.sha256(data).hexdigest()
    earlier = BankImport.objects.filter(file_sha256=digest).first()
    if earlier is not None:
        raise Conflict(
            _("This bank file was already imported on %(date)s (import %(id)s).")
            % {"date": earlier.imported_at.date().isoformat(), "id": earlier.pk}
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    sample = text.split("\n", 1)[0]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows:
        raise ValidationFailed.single("file", "empty", _("The file is empty."))
    header = _bank_header(rows[0])
    missing = [name for name in BANK_COLUMNS if name not in header and name != "reference"]
    if missing:
        raise ValidationFailed.single(
            "file",
            "missing_columns",
            _(
                "The bank file lacks the columns: %(columns)s. Expected fecha, importe, "
                "referencia and registro_patronal (or rfc)."
            )
            % {"columns": ", ".join(missing)},
        )
    errors: list[str] = []
    parsed: list[tuple[int, datetime.date, Decimal, str, int]] = []
    employers = {}
    for number, cells in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        try:
            raw_date = cells[header["date"]].strip()
            raw_amount = cells[header["amount"]].strip()
            raw_employer = cells[header["employer"]].strip().upper()
            reference = cells[header["reference"]].strip() if "reference" in header else ""
        except IndexError:
            errors.append(_("Row %(row)s: missing cells.") % {"row": number})
            continue
        received = _parse_bank_date(raw_date)
        if received is None or received > timezone.localdate():
            errors.append(
                _("Row %(row)s: the date %(value)s is not valid.")
                % {"row": number, "value": raw_date[:20]}
            )
            continue
        amount = _parse_bank_amount(raw_amount)
        if amount is None or amount <= 0:
            errors.append(
                _("Row %(row)s: the amount %(value)s is not a positive amount.")
                % {"row": number, "value": raw_amount[:20]}
            )
            continue
        if raw_employer not in employers:
            employer = Employer.objects.filter(
                Q(rfc=raw_employer) | Q(registration_number=raw_employer)
            ).first()
            employers[raw_employer] = employer.pk if employer else None
        employer_id = employers[raw_employer]
        if employer_id is None:
            errors.append(
                _("Row %(row)s: no employer has the RFC or registration number %(value)s.")
                % {"row": number, "value": raw_employer[:20]}
            )
            continue
        parsed.append((number, received, amount, reference[:40], employer_id))
    if errors:
        # One error per row (the first 50), so every screen and the API list them separately.
        found = FieldErrors()
        for message in errors[:50]:
            found.add("file", "row_invalid", message)
        found.raise_if_any()
    if not parsed:
        raise ValidationFailed.single("file", "no_rows", _("The file has no payments."))
    with transaction.atomic():
        imported = BankImport.objects.create(
            file_name=Path(file_name).name[:255],
            file_sha256=digest,
            imported_by=actor.user,
            payment_count=len(parsed),
            total=sum((p[2] for p in parsed), Decimal(0)),
        )
        Payment.objects.bulk_create(
            Payment(
                employer_id=employer_id,
                amount=amount,
                received_on=received,
                reference=reference,
                source=PaymentSource.BANK_FILE,
                bank_import=imported,
                recorded_by=actor.user,
            )
            for _row, received, amount, reference, employer_id in parsed
        )
        audit_record(
            actor=actor,
            action="import",
            entity_type="bank_import",
            entity_id=imported.pk,
            changes={
                "file_sha256": [None, digest],
                "payments": [None, len(parsed)],
                "total": [None, str(imported.total)],
            },
        )
        for employer_id in sorted({p[4] for p in parsed}):
            allocate_payments(employer_id=employer_id)
    return imported


def _parse_bank_date(text: str) -> datetime.date | None:
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.datetime.strptime(text, pattern).date()  # noqa: DTZ007
        except ValueError:
            continue
    return None


def _parse_bank_amount(text: str) -> Decimal | None:
    from decimal import InvalidOperation

    cleaned = text.replace("$", "").replace(" ", "")
    if "," in cleaned and "." in cleaned:
        cleaned = (
            cleaned.replace(",", "")
            if cleaned.rfind(".") > cleaned.rfind(",")
            else (cleaned.replace(".", "").replace(",", "."))
        )
    elif "," in cleaned:
        head, _sep, tail = cleaned.rpartition(",")
        cleaned = f"{head.replace(',', '')}.{tail}" if len(tail) <= 2 else cleaned.replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite() or value.as_tuple().exponent < -2:  # type: ignore[operator]
        return None
    return value
