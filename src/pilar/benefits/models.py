"""Benefit claims, the decisions the rules engine proposes on them, and the awards a second
officer's approval creates.

A claim (``Claim``) names a person, a scheme package and one of its benefits, and the date it was
made. Adjudication gathers the package's inputs from the registry, the work history and the
facts declared on the claim, evaluates the package and stores a ``pending`` decision with
everything needed to explain and reproduce it: the inputs with their sources, the engine's
result (values and explanation tree), and the package's name, version and content hash. A
second officer approves (a grant becomes an ``Award`` with its first ``AwardCalculation``) or
returns it (the claim goes back to ``entered``). Every amount an award ever has is an
``AwardCalculation``, with the package version it was computed with.

Models hold data and invariants; every write goes through ``services`` (validated, audited).
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ClaimStatus(models.TextChoices):
    ENTERED = "entered", _("Entered")
    # A decision has been proposed and awaits a second officer's approval.
    DECIDED = "decided", _("Decided, awaiting approval")
    GRANTED = "granted", _("Granted")
    DENIED = "denied", _("Denied")
    WITHDRAWN = "withdrawn", _("Withdrawn")


# A person has at most one claim of each kind in these statuses: a second claim for the same
# benefit while one is open or granted is a mistake, not a new right.
OPEN_CLAIM_STATUSES = (ClaimStatus.ENTERED, ClaimStatus.DECIDED, ClaimStatus.GRANTED)


class Frequency(models.TextChoices):
    MONTHLY = "monthly", _("Monthly")
    BIMONTHLY = "bimonthly", _("Every two months")


class Claim(models.Model):
    person = models.ForeignKey(
        "registry.Person", related_name="claims", on_delete=models.PROTECT, verbose_name=_("person")
    )
    # The scheme package by name; the version is fixed by each decision (the newest at the time).
    package = models.CharField(_("scheme"), max_length=60)
    benefit = models.CharField(_("benefit"), max_length=60)
    claim_date = models.DateField(_("claim date"))
    status = models.CharField(
        _("status"), max_length=10, choices=ClaimStatus.choices, default=ClaimStatus.ENTERED
    )
    # Facts declared on the claim form that the registry does not hold ({input name: value}).
    declared = models.JSONField(_("declared facts"), default=dict, blank=True)
    # A totalisation claim names the agreement it is decided under (a name of
    # ``PILAR_TOTALISATION_AGREEMENTS``, see ``benefits.totalisation``); blank for a claim
    # decided on this institution's periods alone.
    agreement = models.CharField(_("totalisation agreement"), max_length=80, blank=True)
    entered_by = models.ForeignKey(
        "core.User",
        null=True,
        blank=True,
        related_name="+",
        on_delete=models.PROTECT,
        verbose_name=_("entered by"),
    )
    withdrawal_reason = models.TextField(_("reason for withdrawal"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    # Optimistic locking: every change increments it; a caller that read an older version is
    # refused instead of overwriting a change it has not seen.
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("claim")
        verbose_name_plural = _("claims")
        constraints = [
            models.UniqueConstraint(
                fields=["person", "package", "benefit"],
                condition=Q(status__in=["entered", "decided", "granted"]),
                name="benefits_claim_one_open_per_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="benefits_claim_queue"),
            models.Index(fields=["person", "created_at"], name="benefits_claim_person"),
        ]

    def __str__(self) -> str:
        return f"{self.package}/{self.benefit} #{self.pk}"

    @property
    def kind(self) -> str:
        """``package:benefit``, the key of a claim kind."""
        return f"{self.package}:{self.benefit}"


class Outcome(models.TextChoices):
    GRANTED = "granted", _("Granted")
    DENIED = "denied", _("Denied")


class DecisionStatus(models.TextChoices):
    PENDING = "pending", _("Awaiting approval")
    APPROVED = "approved", _("Approved")
    RETURNED = "returned", _("Returned")


class Decision(models.Model):
    """What adjudication proposed for a claim, with everything needed to explain it later."""

    claim = models.ForeignKey(Claim, related_name="decisions", on_delete=models.PROTECT)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    # Null for a denial, and for a grant of a benefit whose package decides eligibility only.
    amount = models.DecimalField(
        _("amount"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    frequency = models.CharField(
        _("frequency"), max_length=10, choices=Frequency.choices, blank=True
    )
    start_date = models.DateField(_("start date"), null=True, blank=True)
    package_name = models.CharField(_("scheme"), max_length=60)
    package_version = models.CharField(_("scheme version"), max_length=30)
    package_hash = models.CharField(_("content hash"), max_length=64)
    # The law in force on evaluation_date, as known on known_at (the day of the decision).
    evaluation_date = models.DateField(_("evaluation date"))
    known_at = models.DateField(_("known at"))
    # {input: {"value": ..., "source": "registry" | "work_history" | "declared" | "default",
    #          "label": {es, en}, "detail": {...}}}
    inputs = models.JSONField(_("inputs"), default=dict)
    # The engine's Result.to_dict(): values and the explanation tree.
    result = models.JSONField(_("result"), default=dict)
    status = models.CharField(
        _("status"), max_length=10, choices=DecisionStatus.choices, default=DecisionStatus.PENDING
    )
    made_by = models.ForeignKey(
        "core.User", related_name="+", on_delete=models.PROTECT, verbose_name=_("made by")
    )
    made_at = models.DateTimeField(_("made at"), default=timezone.now)
    checked_by = models.ForeignKey(
        "core.User",
        null=True,
        blank=True,
        related_name="+",
        on_delete=models.PROTECT,
        verbose_name=_("checked by"),
    )
    checked_at = models.DateTimeField(_("checked at"), null=True, blank=True)
    return_reason = models.TextField(_("reason for return"), blank=True)

    class Meta:
        ordering = ["-made_at", "-id"]
        verbose_name = _("decision")
        verbose_name_plural = _("decisions")
        constraints = [
            models.UniqueConstraint(
                fields=["claim"],
                condition=Q(status="pending"),
                name="benefits_decision_one_pending",
            ),
            # Maker–checker in the database too: the services refuse it first, with a message.
            models.CheckConstraint(
                condition=Q(checked_by__isnull=True) | ~Q(checked_by=F("made_by")),
                name="benefits_decision_checker_is_not_maker",
            ),
            models.CheckConstraint(
                condition=Q(outcome="granted", start_date__isnull=False)
                | Q(outcome="denied", amount__isnull=True),
                name="benefits_decision_granted_has_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} #{self.pk} ({self.claim_id})"


class AwardStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")
    ENDED = "ended", _("Ended")


class Award(models.Model):
    """A benefit in payment: created when a second officer approves a granting decision."""

    person = models.ForeignKey(
        "registry.Person", related_name="awards", on_delete=models.PROTECT, verbose_name=_("person")
    )
    claim = models.OneToOneField(Claim, related_name="award", on_delete=models.PROTECT)
    decision = models.OneToOneField(Decision, related_name="award", on_delete=models.PROTECT)
    package_name = models.CharField(_("scheme"), max_length=60)
    benefit = models.CharField(_("benefit"), max_length=60)
    # The amount in payment now, and the package version it was last computed with (the same
    # as the newest AwardCalculation's). Null when the package decides eligibility only (the
    # 1997 law's guaranteed pension: the amount comes from the individual account).
    amount = models.DecimalField(
        _("amount"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    frequency = models.CharField(_("frequency"), max_length=10, choices=Frequency.choices)
    start_date = models.DateField(_("start date"))
    package_version = models.CharField(_("scheme version"), max_length=30)
    package_hash = models.CharField(_("content hash"), max_length=64)
    status = models.CharField(
        _("status"), max_length=10, choices=AwardStatus.choices, default=AwardStatus.ACTIVE
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("award")
        verbose_name_plural = _("awards")
        indexes = [
            models.Index(fields=["package_name", "status"], name="benefits_award_package"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="benefits_award_amount_ge_0"),
        ]

    def __str__(self) -> str:
        return f"{self.package_name}/{self.benefit} #{self.pk}"


class RunKind(models.TextChoices):
    PREVIEW = "preview", _("Preview")
    APPLY = "apply", _("Apply")


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class RecalculationRun(models.Model):
    """A recalculation of every active award of a package: a preview (what would change,
    optionally with what-if parameter entries) or an application (new AwardCalculations)."""

    kind = models.CharField(_("kind"), max_length=10, choices=RunKind.choices)
    package_name = models.CharField(_("scheme"), max_length=60)
    package_version = models.CharField(_("scheme version"), max_length=30)
    # {parameter: [{"valid_from": ..., "value": ..., "recorded": ..., "source": ...}]}
    overrides = models.JSONField(_("what-if parameter values"), default=dict, blank=True)
    evaluation_date = models.DateField(_("evaluation date"))
    status = models.CharField(
        _("status"), max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED
    )
    processed = models.PositiveIntegerField(_("processed"), default=0)
    total = models.PositiveIntegerField(_("total"), default=0)
    summary = models.JSONField(_("summary"), default=dict, blank=True)
    error = models.TextField(blank=True)
    job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL)
    created_by = models.ForeignKey(
        "core.User", null=True, blank=True, related_name="+", on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("recalculation run")
        verbose_name_plural = _("recalculation runs")


class CalculationReason(models.TextChoices):
    AWARD = "award", _("Initial award")
    RECALCULATION = "recalculation", _("Recalculation")


class AwardCalculation(models.Model):
    """One amount an award had, how it was computed and with which package version. Rows are
    added, never changed: together they are the award's calculation history."""

    award = models.ForeignKey(Award, related_name="calculations", on_delete=models.PROTECT)
    run = models.ForeignKey(
        RecalculationRun,
        null=True,
        blank=True,
        related_name="calculations",
        on_delete=models.PROTECT,
    )
    reason = models.CharField(
        _("reason"), max_length=15, choices=CalculationReason.choices, default="award"
    )
    package_name = models.CharField(_("scheme"), max_length=60)
    package_version = models.CharField(_("scheme version"), max_length=30)
    package_hash = models.CharField(_("content hash"), max_length=64)
    evaluation_date = models.DateField(_("evaluation date"))
    known_at = models.DateField(_("known at"), null=True, blank=True)
    inputs = models.JSONField(_("inputs"), default=dict)
    amount = models.DecimalField(
        _("amount"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    # The engine's output values ({name: value}, numbers as strings).
    values = models.JSONField(_("values"), default=dict)
    # The full Result.to_dict(); null for bulk recalculations, which keep values only.
    result = models.JSONField(_("result"), null=True, blank=True)
    created_by = models.ForeignKey(
        "core.User", null=True, blank=True, related_name="+", on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("award calculation")
        verbose_name_plural = _("award calculations")
