"""Login lockout, API tokens, the append-only trails, region scope and deployment settings."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys

import pytest
from django.contrib.auth import authenticate
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from django.utils import timezone

from pilar.core.actor import Actor
from pilar.core.audit import access_record, audit_record
from pilar.core.auth import token_authenticate, token_issue, token_revoke
from pilar.core.errors import PermissionDenied, ValidationFailed
from pilar.core.models import AccessLogEntry, ApiToken, AuditEvent, User
from pilar.core.roles import Perm, Role
from pilar.core.selectors import TrailFilter, access_log_list, audit_event_list
from pilar.core.tests.factories import TEST_PASSWORD, actor, staff

pytestmark = pytest.mark.django_db


class TestLockout:
    @override_settings(PILAR_LOCKOUT_ATTEMPTS=3, PILAR_LOCKOUT_MINUTES=15)
    def test_repeated_failures_lock_the_account_even_for_the_right_password(self) -> None:
        user = staff(Role.REGISTRAR)
        for _attempt in range(3):
            assert authenticate(username=user.username, password="wrong") is None
        user.refresh_from_db()
        assert user.locked_until is not None
        assert authenticate(username=user.username, password=TEST_PASSWORD) is None
        actions = list(AuditEvent.objects.values_list("action", flat=True).order_by("id"))
        assert actions == ["auth.login_failed"] * 3 + ["auth.locked"]

    @override_settings(PILAR_LOCKOUT_ATTEMPTS=3, PILAR_LOCKOUT_MINUTES=15)
    def test_lock_expires_and_success_resets_the_count(self) -> None:
        user = staff(Role.REGISTRAR)
        User.objects.filter(pk=user.pk).update(
            locked_until=timezone.now() - datetime.timedelta(seconds=1), failed_login_count=2
        )
        assert authenticate(username=user.username, password=TEST_PASSWORD) == user
        user.refresh_from_db()
        assert (user.failed_login_count, user.locked_until) == (0, None)

    def test_unknown_user_is_simply_refused(self) -> None:
        assert authenticate(username="nobody", password="x") is None

    def test_passwords_are_hashed_with_argon2(self) -> None:
        assert staff(Role.REGISTRAR).password.startswith("argon2")


class TestApiTokens:
    def test_issue_authenticate_revoke(self) -> None:
        user = staff(Role.REGISTRAR, Role.CASE_WORKER)
        own = Actor.for_user(user, channel="ui")
        token, raw = token_issue(actor=own, user=user, role=Role.CASE_WORKER, name="sistema")
        stored = ApiToken.objects.get()
        assert raw.startswith("pilar_")
        assert raw.split("_", 2)[2] not in stored.secret_hash
        found = token_authenticate(raw)
        assert found is not None
        assert found.role == Role.CASE_WORKER
        assert token_authenticate(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
        token_revoke(actor=own, token=token)
        assert token_authenticate(raw) is None
        assert list(AuditEvent.objects.values_list("action", flat=True).order_by("id")) == [
            "token.issue",
            "token.revoke",
        ]

    def test_expired_token_is_refused(self) -> None:
        user = staff(Role.REGISTRAR)
        _token, raw = token_issue(
            actor=Actor.for_user(user, channel="ui"), user=user, role=Role.REGISTRAR, name="x"
        )
        ApiToken.objects.update(expires_at=timezone.now() - datetime.timedelta(minutes=1))
        assert token_authenticate(raw) is None

    def test_token_role_must_be_held_and_others_need_permission(self) -> None:
        user = staff(Role.REGISTRAR)
        with pytest.raises(ValidationFailed):
            token_issue(
                actor=Actor.for_user(user, channel="ui"), user=user, role=Role.AUDITOR, name="x"
            )
        other = staff(Role.CASE_WORKER)
        with pytest.raises(PermissionDenied):
            token_issue(
                actor=Actor.for_user(other, channel="ui"), user=user, role=Role.REGISTRAR, name="x"
            )
        admin = actor(Role.ADMINISTRATOR, region="DF")
        token, _raw = token_issue(actor=admin, user=user, role=Role.REGISTRAR, name="x")
        assert token.user == user

    def test_token_actor_has_only_the_token_role(self) -> None:
        user = staff(Role.REGISTRAR, Role.AUDITOR)
        scoped = Actor.for_user(user, channel="api", roles=frozenset({Role.AUDITOR}))
        assert scoped.can(Perm.AUDIT_VIEW)
        assert not scoped.can(Perm.PERSON_REGISTER)


class TestTrails:
    def test_audit_and_access_rows_cannot_be_changed_by_the_application(self) -> None:
        system = Actor.system("test", roles=frozenset({Role.REGISTRAR}))
        event = audit_record(actor=system, action="x.y", entity_type="x", entity_id=1)
        access_record(actor=system, person_id=1, purpose="prueba")
        entry = AccessLogEntry.objects.get()
        for row in (event, entry):
            with pytest.raises(TypeError):
                row.save()
            with pytest.raises(TypeError):
                row.delete()
        with pytest.raises(TypeError):
            AuditEvent.objects.all().update(action="z")
        with pytest.raises(TypeError):
            AccessLogEntry.objects.all().delete()

    def test_database_refuses_updates_behind_the_application(self) -> None:
        system = Actor.system("test", roles=frozenset({Role.REGISTRAR}))
        event = audit_record(actor=system, action="x.y", entity_type="x", entity_id=1)
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE core_auditevent SET action = 'forged' WHERE id = %s", [event.pk])
        assert AuditEvent.objects.get(pk=event.pk).action == "x.y"

    def test_only_auditors_browse_the_audit_trail_with_filters(self) -> None:
        system = Actor.system("seed", roles=frozenset({Role.REGISTRAR}))
        audit_record(
            actor=system, action="person.register", entity_type="person", entity_id=7, person_id=7
        )
        audit_record(actor=system, action="employer.register", entity_type="employer", entity_id=3)
        with pytest.raises(PermissionDenied):
            audit_event_list(actor=actor(Role.REGISTRAR), filters=TrailFilter())
        page = audit_event_list(
            actor=actor(Role.AUDITOR, region="DF"), filters=TrailFilter(action="person.")
        )
        assert [e.entity_id for e in page.items] == ["7"]
        today = timezone.localdate()
        with pytest.raises(ValidationFailed):
            audit_event_list(
                actor=actor(Role.AUDITOR, region="DF"),
                filters=TrailFilter(date_from=today, date_to=today - datetime.timedelta(days=1)),
            )

    def test_access_log_filters_by_person(self) -> None:
        reader = actor(Role.REGISTRAR)
        access_record(actor=reader, person_id=1, purpose="trámite")
        access_record(actor=reader, person_id=2)
        page = access_log_list(
            actor=actor(Role.AUDITOR, region="DF"), filters=TrailFilter(person_id=1)
        )
        assert [(e.person_id, e.purpose, e.channel) for e in page.items] == [(1, "trámite", "ui")]


def test_region_scope() -> None:
    regional = actor(Role.REGISTRAR, region="JC")
    national = actor(Role.AUDITOR, region="DF")
    assert regional.sees_region("JC")
    assert not regional.sees_region("NL")
    assert national.sees_region("NL")


def test_production_settings_pass_the_deployment_checks(tmp_path: object) -> None:
    environment = {
        **os.environ,
        "PILAR_ENV": "production",
        "PILAR_SECRET_KEY": "k" * 20 + "Zq8#vN2$wL5!pR7^tY1&uI4*oP6(aS9)dF3_gH0+jK",
        "PILAR_ALLOWED_HOSTS": "pilar.example.org",
        "PILAR_VAR_DIR": str(tmp_path),
    }
    # The test process allows async-unsafe ORM use for Playwright; a deployment would not.
    environment.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    result = subprocess.run(
        [sys.executable, "-m", "pilar.cli", "check", "--deploy", "--fail-level", "WARNING"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path: object) -> None:
    environment = {
        **os.environ,
        "PILAR_ENV": "production",
        "PILAR_ALLOWED_HOSTS": "x.org",
        "PILAR_VAR_DIR": str(tmp_path),
    }
    environment.pop("PILAR_SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", "pilar.cli", "check"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "PILAR_SECRET_KEY must be set" in result.stderr
