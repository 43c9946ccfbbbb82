"""Reads of the audit trail and the access log, for auditors (and data stewards for the access
log), and of staff accounts and offices, for administrators. Filters are validated; nothing here
can change a row."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pilar.core.actor import Actor
from pilar.core.errors import NotFound, ValidationFailed
from pilar.core.models import (
    AccessLogEntry,
    ApiToken,
    AuditEvent,
    Channel,
    Office,
    RoleAssignment,
    User,
)
from pilar.core.pagination import Page, paginate
from pilar.core.roles import Perm, Role


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


# --- staff accounts and offices ---------------------------------------------------------------

# A search box entry longer than this is not a name, a username or an email address.
MAX_STAFF_QUERY_LENGTH = 200


def _managed_offices(actor: Actor) -> QuerySet[Office]:
    """Offices whose staff the actor manages: all of them with national scope, otherwise those
    of the actor's region (the same rule the staff services apply)."""
    actor.require(Perm.USER_MANAGE)
    offices = Office.objects.all()
    if not actor.national_scope:
        offices = offices.filter(region=actor.region or "")
    return offices


def _managed_staff(actor: Actor) -> QuerySet[User]:
    offices = _managed_offices(actor)  # checks the permission
    staff = User.objects.all()
    if not actor.national_scope:
        staff = staff.filter(office__in=offices)
    return staff


def office_list(*, actor: Actor) -> list[Office]:
    """Every office the actor manages, by code, with ``staff_count`` (active and inactive)."""
    return list(_managed_offices(actor).annotate(staff_count=Count("user")).order_by("code"))


def staff_list(
    *,
    actor: Actor,
    query: str = "",
    office: str = "",
    role: str = "",
    active: bool | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[User]:
    """Staff accounts by username. ``query``: every word must appear in the username, a name
    or the email address (case ignored); ``office``: an office code; ``role``: a role code;
    ``active``: only active (True) or only deactivated (False) accounts."""
    staff = _managed_staff(actor)
    if role and role not in Role.values:
        raise ValidationFailed.single("role", "invalid_choice", _("Unknown role."))
    text = (query or "").strip()
    if len(text) > MAX_STAFF_QUERY_LENGTH:
        raise ValidationFailed.single(
            "q",
            "query.too_long",
            _("At most %(max)d characters.") % {"max": MAX_STAFF_QUERY_LENGTH},
        )
    for word in text.split():
        staff = staff.filter(
            Q(username__icontains=word)
            | Q(first_name__icontains=word)
            | Q(last_name__icontains=word)
            | Q(email__icontains=word)
        )
    if office:
        staff = staff.filter(office__code=office.strip().upper())
    if role:
        staff = staff.filter(role_assignments__role=role)
    if active is not None:
        staff = staff.filter(is_active=active)
    staff = staff.select_related("office").prefetch_related(
        # Sorted here so templates list roles in a stable order without another query.
        Prefetch("role_assignments", queryset=RoleAssignment.objects.order_by("role"))
    )
    return paginate(staff.order_by("username"), page=page, page_size=page_size)


@dataclass(frozen=True)
class StaffRecord:
    """One account as its administrators see it: never the password hash, never a token
    secret (only hashes are stored anyway)."""

    user: User
    roles: list[str]
    tokens: list[ApiToken]


def staff_get(*, actor: Actor, user_id: int) -> StaffRecord:
    """The account with its roles and API tokens, if the actor manages it; otherwise
    ``NotFound``, so accounts outside the actor's scope cannot be probed."""
    user = _managed_staff(actor).select_related("office").filter(pk=user_id).first()
    if user is None:
        raise NotFound(extra={"entity": "user", "id": user_id})
    return StaffRecord(
        user=user,
        roles=sorted(user.role_codes()),
        tokens=list(ApiToken.objects.filter(user=user).order_by("-created_at")[:200]),
    )


def staff_events(
    *, actor: Actor, user_id: int, page: int = 1, page_size: int = 20
) -> Page[AuditEvent]:
    """The audit events about an account (sign-ins, failures and lockouts, and every change an
    administrator made), newest first. Administrators see these without ``audit.view``: they
    are the account's own history, not the registry's."""
    if not _managed_staff(actor).filter(pk=user_id).exists():
        raise NotFound(extra={"entity": "user", "id": user_id})
    events = AuditEvent.objects.filter(entity_type="user", entity_id=str(user_id))
    return paginate(events.order_by("-at", "-id"), page=page, page_size=page_size)
