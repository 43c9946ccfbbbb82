"""Effective-dated parameters: the minimum wage, the UMA, the contribution base cap and the rate
of every branch, each with its validity period and legal source.

This is a plain table for now, shaped to move into the rules engine's bitemporal parameter store
when it lands (issue 3, item 4). Writes go through ``pilar.contributions.parameters``, which keeps
the periods of one code from overlapping; the database backs that up (a unique open period per
code, ``valid_to >= valid_from``, and triggers refusing overlapping periods — see migration 0002).
"""

from __future__ import annotations

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
