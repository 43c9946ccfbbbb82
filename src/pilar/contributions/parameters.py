"""Reading and setting effective-dated parameters.

``parameter_value`` and ``parameter_snapshot`` are the reads every calculation uses: the value in
force on a date. ``parameter_set`` is the one way a new value enters the store: it closes the
open period the day before the new one starts, refuses anything that would overlap or rewrite
history, and records the change in the audit trail.

Parameters are public reference data (published in the DOF), so reading them needs no
permission and leaves no access-log entry.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from pilar.contributions.models import Parameter, Unit
from pilar.core.actor import Actor
from pilar.core.audit import audit_record, created, diff
from pilar.core.errors import ApplicationError, Conflict, FieldErrors
from pilar.core.roles import Perm

_CODE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
_AUDITED_FIELDS = (
    "code",
    "value",
    "unit",
    "valid_from",
    "valid_to",
    "legal_reference",
    "needs_verification",
    "verification_note",
)


class ParameterMissing(ApplicationError):
    """No value of a parameter is in force on the date asked for: the store must be completed
    before anything that depends on it can be computed."""

    code = "contributions.parameter_missing"
    status = 422
    title = _("A parameter needed for this calculation has no value in force on that date.")


class ParameterOverlap(Conflict):
    code = "contributions.parameter_overlap"
    title = _("The new period overlaps a period of this parameter that is already recorded.")


class ParameterRetroactive(Conflict):
    code = "contributions.parameter_retroactive"
    title = _(
        "The new value must start after the start of the value now in force; "
        "earlier periods cannot be rewritten."
    )


def _in_force(on: datetime.date) -> Q:
    return Q(valid_from__lte=on) & (Q(valid_to__isnull=True) | Q(valid_to__gte=on))


def parameter_value(code: str, *, on: datetime.date) -> Decimal:
    """The value of ``code`` in force on ``on``; ``ParameterMissing`` if there is none."""
    value = Parameter.objects.filter(_in_force(on), code=code).values_list("value", flat=True)
    found = value.first()
    if found is None:
        raise ParameterMissing(
            _("The parameter %(code)s has no value in force on %(date)s.")
            % {"code": code, "date": on.isoformat()},
            extra={"parameter": code, "date": on.isoformat()},
        )
    return found


def parameter_snapshot(*, on: datetime.date) -> dict[str, Decimal]:
    """Every parameter in force on ``on``, by code: the mapping ``calculation`` takes. One query,
    so a declaration of a million lines reads the store once per period."""
    return dict(Parameter.objects.filter(_in_force(on)).values_list("code", "value"))


@transaction.atomic(durable=True)
def parameter_set(
    *,
    actor: Actor,
    code: str,
    value: Decimal,
    unit: str,
    valid_from: datetime.date,
    legal_reference: str,
    valid_to: datetime.date | None = None,
    needs_verification: bool = False,
    verification_note: str = "",
) -> Parameter:
    """Record a new value of ``code`` from ``valid_from`` (to ``valid_to``, or open-ended).

    If an open period exists and starts before ``valid_from``, it is closed the day before. A new
    value may not start on or before the start of the open period (that would rewrite a value
    contributions may already have been computed with), nor overlap any closed period. Raises
    ``ValidationFailed`` for bad input, ``ParameterRetroactive`` or ``ParameterOverlap`` for a
    period that does not fit, ``PermissionDenied`` without ``parameter.manage``. Both the closing
    and the new value are audit events (entity type ``parameter``)."""
    actor.require(Perm.PARAMETER_MANAGE)
    errors = FieldErrors()
    code = (code or "").strip()
    if not _CODE.match(code) or len(code) > 80:
        errors.add(
            "code",
            "parameter.code_invalid",
            _("A parameter code is lower-case letters, digits and underscores, dot-separated."),
        )
    try:
        value = Decimal(value)
        if not value.is_finite() or value < 0 or abs(value) >= Decimal("1e12"):
            raise InvalidOperation
    except (InvalidOperation, TypeError, ValueError):
        errors.add("value", "parameter.value_invalid", _("Give a number of at least 0."))
    if unit not in Unit.values:
        errors.add("unit", "parameter.unit_invalid", _("Unknown unit."))
    legal_reference = (legal_reference or "").strip()
    if not legal_reference:
        errors.add(
            "legal_reference",
            "parameter.legal_reference_required",
            _("Say which law, article or DOF publication sets this value."),
        )
    if valid_to is not None and valid_to < valid_from:
        errors.add(
            "valid_to",
            "date.end_before_start",
            _("The end date cannot be before the start date."),
        )
    errors.raise_if_any()

    # Lock the code's periods, so two stewards setting the same parameter queue up. (When the
    # code has no rows yet there is nothing to lock; the one-open-period constraint and the
    # overlap trigger then settle a race.)
    periods = list(Parameter.objects.select_for_update().filter(code=code).order_by("valid_from"))
    open_period = next((p for p in periods if p.valid_to is None), None)
    if open_period is not None and valid_from <= open_period.valid_from:
        raise ParameterRetroactive(
            extra={"parameter": code, "open_from": open_period.valid_from.isoformat()}
        )
    for period in periods:
        if period is open_period:
            continue
        assert period.valid_to is not None  # only the open period has no end
        if period.valid_from <= (valid_to or datetime.date.max) and period.valid_to >= valid_from:
            raise ParameterOverlap(
                extra={
                    "parameter": code,
                    "valid_from": period.valid_from.isoformat(),
                    "valid_to": period.valid_to.isoformat(),
                }
            )

    if open_period is not None:
        closing_day = valid_from - datetime.timedelta(days=1)
        audit_record(
            actor=actor,
            action="parameter.close",
            entity_type="parameter",
            entity_id=open_period.pk,
            changes=diff({"valid_to": None}, {"valid_to": closing_day}),
            note=f"{code} superseded from {valid_from.isoformat()}",
        )
        open_period.valid_to = closing_day
        open_period.save(update_fields=["valid_to"])

    parameter = Parameter.objects.create(
        code=code,
        value=value,
        unit=unit,
        valid_from=valid_from,
        valid_to=valid_to,
        legal_reference=legal_reference,
        needs_verification=needs_verification,
        verification_note=verification_note.strip(),
    )
    audit_record(
        actor=actor,
        action="parameter.set",
        entity_type="parameter",
        entity_id=parameter.pk,
        changes=created({name: getattr(parameter, name) for name in _AUDITED_FIELDS}),
        note=code,
    )
    return parameter
