"""Password login with lockout after repeated failures, and API token authentication."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pilar.core.actor import Actor
from pilar.core.audit import audit_record
from pilar.core.models import ApiToken, RoleAssignment, User

TOKEN_PREFIX = "pilar"  # noqa: S105 — a public marker that starts every token, not a secret


class LockoutModelBackend(ModelBackend):
    """Django's model backend, refusing locked accounts and counting failures.

    After ``PILAR_LOCKOUT_ATTEMPTS`` consecutive failures the account is locked for
    ``PILAR_LOCKOUT_MINUTES``; during that time even the right password is refused, so guessing
    cannot continue. Every failure and lock is audited.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if not username or password is None:
            return None
        user = User.objects.filter(username=username).first()
        if user is None:
            # Hash anyway so the response time does not reveal which usernames exist.
            User().set_password(password)
            return None
        now = timezone.now()
        if user.locked_until and user.locked_until > now:
            if request is not None:
                request.pilar_login_locked = True  # type: ignore[attr-defined]
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            if user.failed_login_count or user.locked_until:
                User.objects.filter(pk=user.pk).update(failed_login_count=0, locked_until=None)
            return user
        self._record_failure(user, now, request)
        return None

    @staticmethod
    def _record_failure(user: User, now: datetime.datetime, request: HttpRequest | None) -> None:
        actor = Actor(user=None, roles=frozenset(), channel="ui", label=user.username)
        with transaction.atomic():
            User.objects.filter(pk=user.pk).update(failed_login_count=F("failed_login_count") + 1)
            user.refresh_from_db(fields=["failed_login_count"])
            audit_record(
                actor=actor, action="auth.login_failed", entity_type="user", entity_id=user.pk
            )
            if user.failed_login_count >= settings.PILAR_LOCKOUT_ATTEMPTS:
                until = now + datetime.timedelta(minutes=settings.PILAR_LOCKOUT_MINUTES)
                User.objects.filter(pk=user.pk).update(locked_until=until, failed_login_count=0)
                audit_record(
                    actor=actor,
                    action="auth.locked",
                    entity_type="user",
                    entity_id=user.pk,
                    changes={"locked_until": [None, until.isoformat()]},
                )
                if request is not None:
                    request.pilar_login_locked = True  # type: ignore[attr-defined]


def _hash_secret(secret: str) -> str:
    # Tokens are 256-bit random values, so a fast hash is enough: there is nothing to brute-force,
    # and a slow password hash would add its cost to every API call.
    return hashlib.sha256(secret.encode()).hexdigest()


def token_issue(
    *, actor: Actor, user: User, role: str, name: str, days: int | None = None
) -> tuple[ApiToken, str]:
    """Create an API token for ``user`` scoped to one of their roles; returns the token row and
    the clear token, which is shown once and never stored."""
    from pilar.core.errors import ValidationFailed
    from pilar.core.roles import Perm

    if actor.user is not None and actor.user != user:
        actor.require(Perm.TOKEN_MANAGE)
    if role not in user.role_codes():
        raise ValidationFailed.single(
            "role", "token.role_not_held", _("The user does not hold this role.")
        )
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    lifetime = datetime.timedelta(days=days or settings.PILAR_API_TOKEN_DAYS)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name[:100],
            role=role,
            prefix=prefix,
            secret_hash=_hash_secret(secret),
            expires_at=timezone.now() + lifetime,
        )
        audit_record(
            actor=actor,
            action="token.issue",
            entity_type="api_token",
            entity_id=token.pk,
            changes={"user": [None, user.username], "role": [None, role], "name": [None, name]},
        )
    return token, f"{TOKEN_PREFIX}_{prefix}_{secret}"


def token_revoke(*, actor: Actor, token: ApiToken) -> None:
    from pilar.core.roles import Perm

    if actor.user is not None and actor.user != token.user:
        actor.require(Perm.TOKEN_MANAGE)
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        audit_record(
            actor=actor, action="token.revoke", entity_type="api_token", entity_id=token.pk
        )


def token_authenticate(raw: str) -> ApiToken | None:
    """The usable token matching ``raw`` (``pilar_<prefix>_<secret>``), or None."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    # Whether the owner still holds the token's role is read in the same query: every API call
    # pays for this lookup, so it is one round trip.
    token = (
        ApiToken.objects.select_related("user", "user__office")
        .annotate(
            role_held=Exists(
                RoleAssignment.objects.filter(user_id=OuterRef("user_id"), role=OuterRef("role"))
            )
        )
        .filter(prefix=parts[1])
        .first()
    )
    if token is None or not hmac.compare_digest(token.secret_hash, _hash_secret(parts[2])):
        return None
    now = timezone.now()
    if not token.is_usable(now) or not token.user.is_active:
        return None
    # Record use at most once a minute: an audit of token use without a write on every call.
    if token.last_used_at is None or now - token.last_used_at > datetime.timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
