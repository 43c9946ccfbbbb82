"""Reads of the audit trail and the access log, for auditors (and data stewards for the access
log). Filters are validated; nothing here can change a row."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pilar.core.actor import Actor
from pilar.core.errors import ValidationFailed
from pilar.core.models import AccessLogEntry, AuditEvent, Channel
from pilar.core.pagination import Page, paginate
from pilar.core.roles import Perm


@dataclass
class TrailFilter:
    actor_label: str = ""
    action: str = ""
    entity_type: str = ""
    entity_id: str = ""
    person_id: int | None = None
    channel: str = ""
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None


def _apply(queryset: QuerySet, filters: TrailFilter) -> QuerySet:
    if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
        raise ValidationFailed.single(
            "date_to", "date.end_before_start", _("The end date cannot be before the start date.")
        )
    if filters.channel and filters.channel not in Channel.values:
        raise ValidationFailed.single("channel", "invalid_choice", _("Unknown channel."))
    if filters.actor_label:
        queryset = queryset.filter(actor_label=filters.actor_label.strip())
    if filters.action:
        queryset = queryset.filter(action__startswith=filters.action.strip())
    if filters.person_id is not None:
        queryset = queryset.filter(person_id=filters.person_id)
    if filters.channel:
        queryset = queryset.filter(channel=filters.channel)
    zone = timezone.get_current_timezone()
    if filters.date_from:
        start = datetime.datetime.combine(filters.date_from, datetime.time.min, tzinfo=zone)
        queryset = queryset.filter(at__gte=start)
    if filters.date_to:
        end = datetime.datetime.combine(
            filters.date_to + datetime.timedelta(days=1), datetime.time.min, tzinfo=zone
        )
        queryset = queryset.filter(at__lt=end)
    return queryset


def audit_event_list(
    *, actor: Actor, filters: TrailFilter, page: int = 1, page_size: int = 50
) -> Page[AuditEvent]:
    actor.require(Perm.AUDIT_VIEW)
    events = _apply(AuditEvent.objects.all(), filters)
    if filters.entity_type:
        events = events.filter(entity_type=filters.entity_type.strip())
    if filters.entity_id:
        events = events.filter(entity_id=filters.entity_id.strip())
    return paginate(events.order_by("-at", "-id"), page=page, page_size=page_size)


def access_log_list(
    *, actor: Actor, filters: TrailFilter, page: int = 1, page_size: int = 50
) -> Page[AccessLogEntry]:
    actor.require(Perm.ACCESS_LOG_VIEW)
    entries = _apply(AccessLogEntry.objects.all(), filters)
    return paginate(entries.order_by("-at", "-id"), page=page, page_size=page_size)
