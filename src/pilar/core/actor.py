"""Who is acting, with which roles, through which channel.

Services and selectors take an ``Actor`` rather than a bare user: the same staff member has all
their roles in the web UI but only the token's role through the API, and the channel goes into
every audit event and access-log entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings

from pilar.core.errors import PermissionDenied
from pilar.core.roles import permissions_for

if TYPE_CHECKING:
    from pilar.core.models import User


@dataclass(frozen=True)
class Actor:
    user: User | None
    roles: frozenset[str]
    channel: str
    label: str
    region: str | None = None
    permissions: frozenset[str] = field(default=frozenset())
    # Set for an employer's portal account: everything it does is limited to this employer.
    employer_id: int | None = None

    @classmethod
    def for_user(cls, user: User, *, channel: str, roles: frozenset[str] | None = None) -> Actor:
        held = user.role_codes()
        active = held if roles is None else held & roles
        return cls(
            user=user,
            roles=active,
            channel=channel,
            label=user.username,
            region=user.office.region if user.office_id and user.office else None,
            permissions=permissions_for(active),
        )

    @classmethod
    def for_api_token(cls, user: User, *, role: str) -> Actor:
        """The actor of an API call: the token's one role, which the token lookup has already
        checked the owner still holds (see ``pilar.core.auth.token_authenticate``)."""
        roles = frozenset({role})
        return cls(
            user=user,
            roles=roles,
            channel="api",
            label=user.username,
            region=user.office.region if user.office_id and user.office else None,
            permissions=permissions_for(roles),
        )

    @classmethod
    def system(cls, label: str, *, channel: str = "cli", roles: frozenset[str]) -> Actor:
        """A non-human actor (seeding, a bulk job run from the command line) with national scope."""
        return cls(
            user=None, roles=roles, channel=channel, label=label, permissions=permissions_for(roles)
        )

    @classmethod
    def for_employer_user(cls, user: User, *, employer_id: int) -> Actor:
        """An employer signed in to the portal: its own declarations and account only."""
        from pilar.core.roles import EMPLOYER_PORTAL_PERMISSIONS

        return cls(
            user=user,
            roles=frozenset(),
            channel="portal",
            label=user.username,
            permissions=EMPLOYER_PORTAL_PERMISSIONS,
            employer_id=employer_id,
        )

    def sees_employer(self, employer_id: int) -> bool:
        return self.employer_id is None or self.employer_id == employer_id

    @property
    def national_scope(self) -> bool:
        if self.user is None:
            return True
        if self.employer_id is not None:
            return False
        return bool(self.roles & settings.PILAR_NATIONAL_SCOPE_ROLES)

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise PermissionDenied(extra={"permission": permission})

    def sees_region(self, region: str) -> bool:
        return self.national_scope or (self.region is not None and self.region == region)
