"""Writing agreements (hub only): create, change and end, each validated, audited with the
diff, and guarded by the row's ``version`` (optimistic concurrency). Members receive the
active agreements with the next trust list the hub publishes; they never write agreements.

Decisions where docs/federation.md is silent:

- An agreement's ``code`` never changes once created (members and the trust list refer to it).
- ``agreement_end`` sets ``valid_until`` (the last day in force, inclusive). The status turns
  ``ended`` only when that day is already past; an agreement ended at a future date stays
  ``active`` and stops by its dates, so it keeps being published in the trust list until then.
- Dates may be given as ``date`` objects or ISO strings (``YYYY-MM-DD``), purposes and fields
  as lists or comma-separated strings (the command line passes strings).
- A new agreement may be ``draft`` or ``active``; ``ended`` is reached through
  ``agreement_end`` only. An ended agreement cannot be changed (make a new one).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from pilar.core.actor import Actor
from pilar.core.audit import audit_record, created, diff, snapshot
from pilar.core.errors import Conflict, FieldErrors, NotFound, PermissionDenied
from pilar.core.roles import Perm
from pilar.exchange.models import Agreement, AgreementStatus, Member
from pilar.exchange.purposes import SERVICES, is_purpose
from pilar.exchange.selectors_agreements import ANY_PROVIDER

ENTITY = "exchange.agreement"
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
FIELDS_AUDITED = (
    "code",
    "consumer",
    "provider",
    "service",
    "purposes",
    "fields",
    "valid_from",
    "valid_until",
    "status",
    "legal_basis",
)
CHANGEABLE = frozenset(FIELDS_AUDITED) - {"code"}


class NotTheHub(PermissionDenied):
    code = "exchange.not_hub"
    title = gettext_lazy(
        "Agreements are managed on the hub; this node receives them with the trust list."
    )


class AgreementEnded(Conflict):
    code = "exchange.agreement_ended"
    title = gettext_lazy("The agreement has ended and can no longer be changed.")


class StaleAgreement(Conflict):
    code = "exchange.agreement_stale"
    title = gettext_lazy(
        "Someone else changed the agreement after you opened it. Reload it and try again."
    )


def _require_hub(actor: Actor) -> None:
    actor.require(Perm.EXCHANGE_MANAGE)
    if settings.PILAR_NODE_ROLE != "hub":
        raise NotTheHub()


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Iterable):
        items = list(value)
        if all(isinstance(item, str) for item in items):
            return [item.strip() for item in items]
    return None


def _as_date(value: Any, name: str, errors: FieldErrors) -> datetime.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            pass
    errors.add(name, "invalid", _("Enter a date as YYYY-MM-DD."))
    return None


def _clean(values: dict[str, Any], *, errors: FieldErrors, existing_pk: int | None) -> dict:
    """Validate and normalise an agreement's values (all of them: on update, the merged
    result), collecting every problem at once."""
    clean: dict[str, Any] = {}

    if "code" in values:
        code = str(values["code"] or "").strip()
        if not code:
            errors.add("code", "required", _("Give the agreement a code, e.g. AG-0001."))
        elif not CODE_PATTERN.match(code):
            errors.add(
                "code",
                "invalid",
                _("Use up to 40 letters, digits, dots, hyphens or underscores for the code."),
            )
        elif Agreement.objects.filter(code=code).exclude(pk=existing_pk or 0).exists():
            errors.add(
                "code",
                "taken",
                _("Another agreement already has the code %(code)s.") % {"code": code},
            )
        clean["code"] = code

    service = str(values.get("service") or "").strip()
    if not service:
        errors.add("service", "required", _("Choose the service the agreement grants."))
    elif service not in SERVICES:
        errors.add(
            "service",
            "unknown",
            _("%(service)s is not a service of the federation.") % {"service": service},
        )
    clean["service"] = service

    consumer = str(values.get("consumer") or "").strip()
    members = dict(
        Member.objects.filter(
            code__in=[consumer, str(values.get("provider") or "").strip()]
        ).values_list("code", "active")
    )
    if not consumer:
        errors.add("consumer", "required", _("Name the member that will use the service."))
    elif consumer not in members:
        errors.add(
            "consumer",
            "unknown",
            _("%(code)s is not a registered member.") % {"code": consumer},
        )
    elif not members[consumer]:
        errors.add(
            "consumer", "inactive", _("%(code)s is not an active member.") % {"code": consumer}
        )
    clean["consumer"] = consumer

    provider = str(values.get("provider") or "").strip()
    if not provider:
        errors.add(
            "provider",
            "required",
            _("Name the member that provides the service, or * for every member."),
        )
    elif provider != ANY_PROVIDER and provider not in members:
        errors.add(
            "provider",
            "unknown",
            _("%(code)s is not a registered member.") % {"code": provider},
        )
    clean["provider"] = provider

    purposes = _as_list(values.get("purposes"))
    if purposes is None:
        errors.add("purposes", "invalid", _("Give the purposes as a list of purpose codes."))
    elif not purposes:
        errors.add("purposes", "required", _("Name at least one purpose."))
    else:
        unknown = [code for code in purposes if not is_purpose(code)]
        if unknown:
            errors.add(
                "purposes",
                "unknown",
                _("Not purpose codes: %(codes)s.") % {"codes": ", ".join(unknown)},
            )
        clean["purposes"] = list(dict.fromkeys(purposes))

    fields = _as_list(values.get("fields"))
    if fields is None:
        errors.add("fields", "invalid", _("Give the fields as a list of field names."))
    else:
        grantable = set(SERVICES[service].fields) if service in SERVICES else set()
        outside = [name for name in fields if name not in grantable]
        if outside and service in SERVICES:
            errors.add(
                "fields",
                "not_grantable",
                _("The service %(service)s cannot grant these fields: %(fields)s.")
                % {"service": service, "fields": ", ".join(outside)},
            )
        clean["fields"] = list(dict.fromkeys(fields))

    valid_from = _as_date(values.get("valid_from"), "valid_from", errors)
    if valid_from is None and "valid_from" not in errors.errors:
        errors.add("valid_from", "required", _("Give the first day the agreement is in force."))
    valid_until = _as_date(values.get("valid_until"), "valid_until", errors)
    if valid_from and valid_until and valid_until < valid_from:
        errors.add(
            "valid_until",
            "before_start",
            _("The last day in force cannot be before the first day."),
        )
    clean["valid_from"] = valid_from
    clean["valid_until"] = valid_until

    status = str(values.get("status") or "").strip()
    if status not in AgreementStatus.values:
        errors.add("status", "invalid", _("Choose draft or active."))
    clean["status"] = status

    legal_basis = str(values.get("legal_basis") or "").strip()
    if len(legal_basis) > 300:
        errors.add("legal_basis", "too_long", _("Keep the legal basis under 300 characters."))
    clean["legal_basis"] = legal_basis
    return clean


@transaction.atomic(durable=True)
def agreement_create(
    *,
    actor: Actor,
    code: str,
    consumer: str,
    provider: str,
    service: str,
    purposes: Iterable[str] | str,
    fields: Iterable[str] | str,
    valid_from: datetime.date | str,
    valid_until: datetime.date | str | None = None,
    legal_basis: str = "",
    status: str = AgreementStatus.ACTIVE,
) -> Agreement:
    """Create an agreement on the hub. It reaches the members with the next trust list."""
    _require_hub(actor)
    errors = FieldErrors()
    if status == AgreementStatus.ENDED:
        errors.add("status", "invalid", _("Choose draft or active."))
    values = _clean(
        {
            "code": code,
            "consumer": consumer,
            "provider": provider,
            "service": service,
            "purposes": purposes,
            "fields": fields,
            "valid_from": valid_from,
            "valid_until": valid_until,
            "legal_basis": legal_basis,
            "status": status,
        },
        errors=errors,
        existing_pk=None,
    )
    errors.raise_if_any()
    agreement = Agreement.objects.create(**values, created_by=actor.user)
    audit_record(
        actor=actor,
        action="agreement.create",
        entity_type=ENTITY,
        entity_id=agreement.pk,
        changes=created(snapshot(agreement, FIELDS_AUDITED)),
    )
    return agreement


def _locked(agreement_id: int, expected_version: int) -> Agreement:
    try:
        agreement = Agreement.objects.select_for_update().get(pk=agreement_id)
    except Agreement.DoesNotExist:
        raise NotFound() from None
    if agreement.version != expected_version:
        raise StaleAgreement(extra={"version": agreement.version})
    if agreement.status == AgreementStatus.ENDED:
        raise AgreementEnded()
    return agreement


@transaction.atomic(durable=True)
def agreement_update(
    *, actor: Actor, agreement_id: int, expected_version: int, **changes: Any
) -> Agreement:
    """Change an agreement's terms (not its code). Every change is validated on the merged
    result, so an update cannot leave an agreement that could not have been created."""
    _require_hub(actor)
    errors = FieldErrors()
    for name in sorted(set(changes) - CHANGEABLE):
        errors.add(name, "not_changeable", _("This field cannot be changed."))
    agreement = _locked(agreement_id, expected_version)
    before = snapshot(agreement, FIELDS_AUDITED)
    merged = {name: getattr(agreement, name) for name in CHANGEABLE}
    merged.update({name: value for name, value in changes.items() if name in CHANGEABLE})
    if merged.get("status") == AgreementStatus.ENDED and agreement.status != AgreementStatus.ENDED:
        errors.add(
            "status", "invalid", _("End an agreement with the end action, giving its last day.")
        )
    values = _clean(merged, errors=errors, existing_pk=agreement.pk)
    errors.raise_if_any()
    for name, value in values.items():
        setattr(agreement, name, value)
    after = snapshot(agreement, FIELDS_AUDITED)
    changed = diff(before, after)
    if changed:
        agreement.version += 1
        agreement.updated_at = timezone.now()
        agreement.save()
        audit_record(
            actor=actor,
            action="agreement.update",
            entity_type=ENTITY,
            entity_id=agreement.pk,
            changes=changed,
        )
    return agreement


@transaction.atomic(durable=True)
def agreement_end(
    *,
    actor: Actor,
    agreement_id: int,
    expected_version: int,
    valid_until: datetime.date | str,
) -> Agreement:
    """End an agreement: ``valid_until`` is its last day in force."""
    _require_hub(actor)
    agreement = _locked(agreement_id, expected_version)
    errors = FieldErrors()
    last_day = _as_date(valid_until, "valid_until", errors)
    if last_day is None and "valid_until" not in errors.errors:
        errors.add("valid_until", "required", _("Give the last day the agreement is in force."))
    if last_day is not None and last_day < agreement.valid_from:
        errors.add(
            "valid_until",
            "before_start",
            _("The last day in force cannot be before the first day."),
        )
    errors.raise_if_any()
    assert last_day is not None
    before = snapshot(agreement, FIELDS_AUDITED)
    agreement.valid_until = last_day
    if last_day < timezone.localdate():
        agreement.status = AgreementStatus.ENDED
    agreement.version += 1
    agreement.updated_at = timezone.now()
    agreement.save()
    audit_record(
        actor=actor,
        action="agreement.end",
        entity_type=ENTITY,
        entity_id=agreement.pk,
        changes=diff(before, snapshot(agreement, FIELDS_AUDITED)),
    )
    return agreement
