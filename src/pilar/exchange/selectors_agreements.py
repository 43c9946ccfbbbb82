"""Reading agreements: the deny-by-default lookup the exchange's inbound checks use, the check
of requested fields against what an agreement grants, and the staff list.

Decisions where docs/federation.md is silent:

- An agreement is in force on a day when ``valid_from <= day <= valid_until`` (both ends
  inclusive; no ``valid_until`` means open-ended). Only ``active`` agreements count: a draft
  grants nothing, and an ended one grants nothing even if its dates would still cover the day.
- When both an agreement naming the provider and a ``*`` agreement are in force, the one
  naming the provider wins (it is the more specific instrument); ties go to the lowest code so
  the choice is stable.
- ``purposes`` and ``fields`` are JSON lists, filtered in Python: a consumer has a handful of
  agreements per service, and JSON containment is not portable to SQLite.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.db.models import Q, QuerySet

from pilar.core.actor import Actor
from pilar.core.errors import NotFound
from pilar.core.roles import Perm
from pilar.exchange.models import Agreement, AgreementStatus
from pilar.exchange.reasons import Refusal

ANY_PROVIDER = "*"


def agreement_for(
    *, consumer: str, provider: str, service: str, purpose: str, on: datetime.date
) -> Agreement | None:
    """The active agreement in force on ``on`` letting ``consumer`` use ``service`` of
    ``provider`` for ``purpose``; None when there is none (deny by default)."""
    candidates = (
        Agreement.objects.filter(
            consumer=consumer,
            service=service,
            status=AgreementStatus.ACTIVE,
            provider__in=(provider, ANY_PROVIDER),
            valid_from__lte=on,
        )
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=on))
        .order_by("code")
    )
    found: Agreement | None = None
    for agreement in candidates:
        if purpose not in (agreement.purposes or []):
            continue
        if agreement.provider == provider:
            return agreement
        if found is None:
            found = agreement
    return found


def agreed_fields(agreement: Agreement) -> frozenset[str]:
    """The fields the agreement grants (what a provider may answer)."""
    return frozenset(agreement.fields or [])


def require_fields(agreement: Agreement, requested: Iterable[str]) -> None:
    """Refuse (``rjct.field.not_agreed``, naming them) when any requested field is outside the
    agreement. The whole request is refused, never silently trimmed: the consumer asked for
    something it may not have and must know."""
    granted = agreed_fields(agreement)
    outside = sorted({str(name) for name in requested} - granted)
    if outside:
        raise Refusal("rjct.field.not_agreed", fields=outside)


def agreement_list(
    *,
    actor: Actor,
    consumer: str = "",
    provider: str = "",
    service: str = "",
    status: str = "",
) -> QuerySet[Agreement]:
    """Agreements for the staff list, filtered by the non-empty arguments."""
    actor.require(Perm.EXCHANGE_VIEW)
    query = Agreement.objects.all().order_by("code")
    if consumer:
        query = query.filter(consumer=consumer)
    if provider:
        query = query.filter(provider=provider)
    if service:
        query = query.filter(service=service)
    if status:
        query = query.filter(status=status)
    return query


def agreement_get(*, actor: Actor, agreement_id: int) -> Agreement:
    actor.require(Perm.EXCHANGE_VIEW)
    try:
        return Agreement.objects.get(pk=agreement_id)
    except Agreement.DoesNotExist:
        raise NotFound() from None
