"""Effective-dated parameters: the minimum wage, the UMA, the contribution base cap and the rate
of every branch, each with its validity period and legal source.

This is a plain table for now, shaped to move into the rules engine's bitemporal parameter store
when it lands (issue 3, item 4). Writes go through ``pilar.contributions.parameters``, which keeps
the periods of one code from overlapping; the database backs that up (a unique open period per
code, ``valid_to >= valid_from``, and triggers refusing overlapping periods — see migration 0002).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Unit(models.TextChoices):
    PESOS_PER_DAY = "pesos_per_day", _("Pesos per day")
    PERCENT = "percent", _("Percent of the base")
    UMA_MULTIPLE = "uma_multiple", _("Multiple of the UMA")


class Parameter(models.Model):
    """One value of one parameter for one period. ``valid_to`` is inclusive; null means the
    period is open (the value in force until a new one is set)."""

    code = models.CharField(_("code"), max_length=80)
    value = models.DecimalField(_("value"), max_digits=18, decimal_places=6)
    unit = models.CharField(_("unit"), max_length=20, choices=Unit.choices)
    valid_from = models.DateField(_("valid from"))
    valid_to = models.DateField(_("valid to"), null=True, blank=True)
    legal_reference = models.CharField(_("legal reference"), max_length=300)
    # Seed values were written from memory and from approximate tables: each stays flagged until
    # someone has checked it against the Diario Oficial de la Federación.
    needs_verification = models.BooleanField(_("needs verification"), default=False)
    verification_note = models.CharField(_("verification note"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["code", "valid_from"]
        verbose_name = _("parameter")
        verbose_name_plural = _("parameters")
        constraints = [
            models.UniqueConstraint(
                fields=["code", "valid_from"], name="contributions_parameter_one_start"
            ),
            models.UniqueConstraint(
                fields=["code"],
                condition=Q(valid_to__isnull=True),
                name="contributions_parameter_one_open_period",
            ),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=F("valid_from")),
                name="contributions_parameter_period_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} = {self.value} ({self.valid_from} – {self.valid_to or '…'})"


# --- Declarations -------------------------------------------------------------------------------


class DeclarationKind(models.TextChoices):
    NORMAL = "normal", _("Normal")
    # Adds or corrects some workers' lines of a posted period; the other lines stay in force.
    COMPLEMENTARY = "complementary", _("Complementary")
    # Replaces every line of a posted period.
    REPLACEMENT = "replacement", _("Replacement")


class DeclarationStatus(models.TextChoices):
    RECEIVED = "received", _("Received, waiting to be validated")
    VALIDATING = "validating", _("Being validated")
    REJECTED = "rejected", _("Rejected: has errors")
    VALIDATED = "validated", _("Validated: waiting for the employer's confirmation")
    CONFIRMED = "confirmed", _("Confirmed, waiting to be posted")
    POSTING = "posting", _("Being posted")
    POSTED = "posted", _("Posted")
    WITHDRAWN = "withdrawn", _("Withdrawn")


# Statuses during which another upload for the same employer and period must wait.
PROCESSING_STATUSES = (
    DeclarationStatus.RECEIVED,
    DeclarationStatus.VALIDATING,
    DeclarationStatus.CONFIRMED,
    DeclarationStatus.POSTING,
)


class Declaration(models.Model):
    """One payroll declaration of one employer for one month: the original file (kept on disk
    with its SHA-256), its validation, its summary statement and, once confirmed, its posting."""

    employer = models.ForeignKey(
        "registry.Employer", related_name="declarations", on_delete=models.PROTECT
    )
    period = models.DateField(_("period"), help_text=_("The first day of the declared month."))
    kind = models.CharField(
        _("kind"), max_length=15, choices=DeclarationKind.choices, default=DeclarationKind.NORMAL
    )
    status = models.CharField(
        _("status"),
        max_length=12,
        choices=DeclarationStatus.choices,
        default=DeclarationStatus.RECEIVED,
    )
    # The file as received.
    file_name = models.CharField(_("file name"), max_length=255)
    file_sha256 = models.CharField(_("SHA-256"), max_length=64)
    file_size = models.PositiveBigIntegerField(_("file size"))
    file_path = models.CharField(max_length=300)
    file_format = models.CharField(_("format"), max_length=10, blank=True)
    file_encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    channel = models.CharField(max_length=10)
    submitted_by = models.ForeignKey(
        "core.User", null=True, blank=True, related_name="+", on_delete=models.PROTECT
    )
    submitted_by_label = models.CharField(max_length=150)
    submitted_at = models.DateTimeField(_("submitted at"), default=timezone.now)
    # Progress of the current stage, for the progress bar.
    stage = models.CharField(max_length=30, blank=True)
    progress_done = models.PositiveBigIntegerField(default=0)
    progress_total = models.PositiveBigIntegerField(default=0)
    # Outcome of validation.
    rejection_code = models.CharField(max_length=40, blank=True)
    rejection_message = models.TextField(blank=True)
    line_count = models.PositiveIntegerField(_("lines"), default=0)
    error_count = models.PositiveIntegerField(_("errors"), default=0)
    warning_count = models.PositiveIntegerField(_("warnings"), default=0)
    # The summary statement.
    worker_count = models.PositiveIntegerField(_("workers"), default=0)
    salary_mass = models.DecimalField(_("salary mass"), max_digits=16, decimal_places=2, default=0)
    employer_total = models.DecimalField(
        _("employer share"), max_digits=16, decimal_places=2, default=0
    )
    worker_total = models.DecimalField(
        _("worker share"), max_digits=16, decimal_places=2, default=0
    )
    total_due = models.DecimalField(_("total due"), max_digits=16, decimal_places=2, default=0)
    branch_totals = models.JSONField(default=dict)
    due_date = models.DateField(_("due date"), null=True, blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(
        "core.User", null=True, blank=True, related_name="+", on_delete=models.PROTECT
    )
    confirmed_by_label = models.CharField(max_length=150, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True)
    job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        verbose_name = _("declaration")
        verbose_name_plural = _("declarations")
        constraints = [
            # The same file for the same employer and period is recognised, not processed twice.
            models.UniqueConstraint(
                fields=["employer", "period", "file_sha256"],
                name="contributions_declaration_file_once",
            ),
        ]
        indexes = [
            models.Index(fields=["employer", "period"], name="contrib_decl_employer_period"),
            models.Index(fields=["status", "submitted_at"], name="contrib_decl_status"),
        ]

    def __str__(self) -> str:
        return f"{self.employer_id} {self.period:%Y-%m} #{self.pk}"

    @property
    def is_processing(self) -> bool:
        return self.status in PROCESSING_STATUSES


class Severity(models.TextChoices):
    ERROR = "error", _("Error")
    WARNING = "warning", _("Warning")


class DeclarationIssue(models.Model):
    """One finding of the validation report: a row, a column, a code and the value as written."""

    declaration = models.ForeignKey(Declaration, related_name="issues", on_delete=models.CASCADE)
    row = models.PositiveIntegerField()
    column = models.CharField(max_length=30, blank=True)
    code = models.CharField(max_length=40)
    severity = models.CharField(max_length=7, choices=Severity.choices)
    value = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict)

    class Meta:
        ordering = ["declaration", "row", "id"]
        indexes = [models.Index(fields=["declaration", "row"], name="contrib_issue_row")]


# The share columns of a staged line and of a contribution record (see bulk_calculation).
SHARE_FIELDS = (
    "sm_fixed_er",
    "sm_excess_er",
    "sm_excess_wk",
    "sm_cash_er",
    "sm_cash_wk",
    "sm_pens_er",
    "sm_pens_wk",
    "dl_er",
    "dl_wk",
    "wr_er",
    "cc_er",
    "ret_er",
    "cv_er",
    "cv_wk",
    "hou_er",
)


def _money(verbose: Any = None) -> models.DecimalField:
    return models.DecimalField(verbose, max_digits=14, decimal_places=2, default=0)


class Movement(models.TextChoices):
    NONE = "", _("None")
    HIRE = "hire", _("Hire (alta)")
    SEPARATION = "separation", _("Separation (baja)")
    SALARY_CHANGE = "salary_change", _("Salary change (modificación)")


# Money of a line: the declared SBC, the base after floor and cap, the 15 shares, the totals.
MONEY_FIELDS = ("daily_salary", "base", *SHARE_FIELDS, "employer_total", "worker_total")


class DayFields(models.Model):
    days = models.PositiveSmallIntegerField(_("days"))
    absence_days = models.PositiveSmallIntegerField(_("absence days"), default=0)
    incapacity_days = models.PositiveSmallIntegerField(_("incapacity days"), default=0)

    class Meta:
        abstract = True


class LineFields(DayFields):
    """A contribution record's days and money in pesos (decimal)."""

    daily_salary = models.DecimalField(_("daily salary (SBC)"), max_digits=12, decimal_places=2)
    base = models.DecimalField(_("contribution base"), max_digits=12, decimal_places=2)
    sm_fixed_er = _money()
    sm_excess_er = _money()
    sm_excess_wk = _money()
    sm_cash_er = _money()
    sm_cash_wk = _money()
    sm_pens_er = _money()
    sm_pens_wk = _money()
    dl_er = _money()
    dl_wk = _money()
    wr_er = _money()
    cc_er = _money()
    ret_er = _money()
    cv_er = _money()
    cv_wk = _money()
    hou_er = _money()
    employer_total = _money(_("employer share"))
    worker_total = _money(_("worker share"))

    class Meta:
        abstract = True


def _cents() -> models.BigIntegerField:
    return models.BigIntegerField(default=0)


class DeclarationLine(DayFields):
    """A valid line of a validated declaration, staged for posting (lines with errors are in the
    report, not here). Written in bulk by the validation job; read by posting.

    Money is kept in integer centavos here (``<name>_cents``; the pesos are properties with the
    record's names): a million lines load twice as fast without PostgreSQL parsing 19 decimal
    columns, and posting turns them into pesos in its one INSERT … SELECT."""

    # Staging is written a million rows at a time: no database foreign keys (the validation job
    # has just read these persons from the registry, and posting copies them into
    # ContributionRecord, whose person key is enforced) and no index but the declaration's.
    declaration = models.ForeignKey(
        Declaration, related_name="lines", on_delete=models.CASCADE, db_constraint=False
    )
    row = models.PositiveIntegerField()
    person = models.ForeignKey(
        "registry.Person",
        related_name="+",
        on_delete=models.PROTECT,
        db_constraint=False,
        db_index=False,
    )
    worker_id = models.CharField(max_length=18)
    movement = models.CharField(max_length=15, choices=Movement.choices, blank=True)
    movement_date = models.DateField(null=True, blank=True)
    covered_from = models.DateField()
    covered_to = models.DateField()
    daily_salary_cents = _cents()
    base_cents = _cents()
    sm_fixed_er_cents = _cents()
    sm_excess_er_cents = _cents()
    sm_excess_wk_cents = _cents()
    sm_cash_er_cents = _cents()
    sm_cash_wk_cents = _cents()
    sm_pens_er_cents = _cents()
    sm_pens_wk_cents = _cents()
    dl_er_cents = _cents()
    dl_wk_cents = _cents()
    wr_er_cents = _cents()
    cc_er_cents = _cents()
    ret_er_cents = _cents()
    cv_er_cents = _cents()
    cv_wk_cents = _cents()
    hou_er_cents = _cents()
    employer_total_cents = _cents()
    worker_total_cents = _cents()

    class Meta:
        # One line per worker is the validation's rule (duplicate_worker); posting relies on
        # ContributionRecord's unique in-force record instead of a second unique index here.
        ordering = ["declaration", "row"]

    def pesos(self, name: str) -> Decimal:
        """A money field in pesos, by the record's name (``daily_salary``, ``cv_er``, …)."""
        return Decimal(getattr(self, f"{name}_cents")).scaleb(-2)

    @property
    def daily_salary(self) -> Decimal:
        return self.pesos("daily_salary")

    @property
    def base(self) -> Decimal:
        return self.pesos("base")

    @property
    def employer_total(self) -> Decimal:
        return self.pesos("employer_total")

    @property
    def worker_total(self) -> Decimal:
        return self.pesos("worker_total")


class ContributionRecord(LineFields):
    """One worker's contributions for one month with one employer: the posted line. A correction
    supersedes it (``superseded_by``) rather than changing it, so what was declared, when and by
    whom stays readable."""

    # A posting inserts up to a million records in one statement, so the table carries only the
    # indexes it needs and no per-row foreign-key triggers (checked at commit, they cost 6 s a
    # million rows): posting checks that every person exists with one anti-join in its
    # transaction; the employer and the declarations are the same for the whole posting,
    # written from the declaration row the service holds locked. Persons, employers and
    # declarations are never deleted (PROTECT; no service deletes them).
    person = models.ForeignKey(
        "registry.Person",
        related_name="contribution_records",
        on_delete=models.PROTECT,
        db_constraint=False,
        db_index=False,  # the (person, period) index serves person lookups
    )
    employer = models.ForeignKey(
        "registry.Employer",
        related_name="contribution_records",
        on_delete=models.PROTECT,
        db_constraint=False,
        db_index=False,  # the (employer, period) index serves employer lookups
    )
    period = models.DateField(_("period"))
    declaration = models.ForeignKey(
        Declaration, related_name="records", on_delete=models.PROTECT, db_constraint=False
    )
    row = models.PositiveIntegerField()
    # The days of the month the record covers (contiguous from the later of the month's first
    # day and the hire date): how overlapping employments are counted once toward weeks.
    covered_from = models.DateField()
    covered_to = models.DateField()
    posted_at = models.DateTimeField(_("posted at"))
    superseded_by = models.ForeignKey(
        Declaration,
        null=True,
        blank=True,
        related_name="superseded_records",
        on_delete=models.PROTECT,
        db_constraint=False,
        db_index=False,
    )
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period", "employer", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["person", "employer", "period"],
                condition=Q(superseded_at__isnull=True),
                name="contrib_record_one_in_force",
            ),
        ]
        indexes = [
            models.Index(fields=["person", "period"], name="contrib_record_person"),
            models.Index(fields=["employer", "period"], name="contrib_record_employer"),
        ]


class RegistrationRequest(models.Model):
    """A worker declared by an employer but unknown to the registry (when the node is set to
    turn unknown workers into requests, ``PILAR_UNKNOWN_WORKER=request``): registrars register
    the person, and the employer declares the line again in a complementary declaration."""

    declaration = models.ForeignKey(
        Declaration, related_name="registration_requests", on_delete=models.CASCADE
    )
    row = models.PositiveIntegerField()
    worker_id = models.CharField(max_length=18)
    paternal_surname = models.CharField(max_length=100, blank=True)
    maternal_surname = models.CharField(max_length=100, blank=True)
    given_names = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]


# --- Employer account ---------------------------------------------------------------------------


class PaymentSource(models.TextChoices):
    STAFF = "staff", _("Entered by staff")
    BANK_FILE = "bank_file", _("Bank file")


class BankImport(models.Model):
    """One bank statement file of payments received; the same file is imported once."""

    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64, unique=True)
    imported_by = models.ForeignKey("core.User", null=True, on_delete=models.PROTECT)
    imported_at = models.DateTimeField(default=timezone.now)
    payment_count = models.PositiveIntegerField(default=0)
    total = models.DecimalField(max_digits=16, decimal_places=2, default=0)


class Payment(models.Model):
    employer = models.ForeignKey(
        "registry.Employer", related_name="payments", on_delete=models.PROTECT
    )
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    received_on = models.DateField(_("received on"))
    reference = models.CharField(_("reference"), max_length=40, blank=True)
    source = models.CharField(max_length=10, choices=PaymentSource.choices)
    bank_import = models.ForeignKey(
        BankImport, null=True, blank=True, related_name="payments", on_delete=models.PROTECT
    )
    recorded_by = models.ForeignKey("core.User", null=True, on_delete=models.PROTECT)
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_on", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="contrib_payment_positive"),
        ]


class PaymentAllocation(models.Model):
    """Part of a payment applied to a declaration's statement (oldest debt first unless the
    payment's reference names the declaration)."""

    payment = models.ForeignKey(Payment, related_name="allocations", on_delete=models.PROTECT)
    declaration = models.ForeignKey(
        Declaration, related_name="allocations", on_delete=models.PROTECT
    )
    amount = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="contrib_allocation_positive"),
        ]
