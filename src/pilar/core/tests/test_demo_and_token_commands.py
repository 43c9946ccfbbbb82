"""``pilar demo`` (accounts, offices, seeding once) and ``pilar token`` (create, list, revoke)."""

from __future__ import annotations

import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from pilar.core.auth import token_authenticate
from pilar.core.management.commands.demo import demo_accounts_ensure, demo_password
from pilar.core.models import ApiToken, AuditEvent, Office, RoleAssignment, User
from pilar.core.roles import Role
from pilar.registry.models import Person

pytestmark = pytest.mark.django_db


def test_demo_creates_one_account_per_role_in_the_right_office() -> None:
    accounts = demo_accounts_ensure()
    # One account per role, and a second benefits officer for maker–checker.
    assert {account.username for account in accounts} == set(Role.values) | {"benefits_checker"}
    checker = User.objects.get(username="benefits_checker")
    assert checker.role_codes() == frozenset({Role.BENEFITS_OFFICER.value})
    assert checker.check_password("demo-benefits_checker-2026")
    assert set(Office.objects.values_list("code", "region")) == {
        ("CDMX-01", "DF"),
        ("JAL-01", "JC"),
    }
    for role in Role:
        user = User.objects.get(username=role.value)
        assert user.check_password(f"demo-{role.value}-2026")
        assert user.check_password(demo_password(role.value))
        assert list(user.role_assignments.values_list("role", flat=True)) == [role.value]
        regional = role in {Role.REGISTRAR, Role.CASE_WORKER, Role.BENEFITS_OFFICER}
        assert user.office is not None
        assert user.office.code == ("JAL-01" if regional else "CDMX-01")
    assert AuditEvent.objects.filter(action="demo.accounts_reset").count() == 1


def test_demo_accounts_are_reset_when_run_again() -> None:
    demo_accounts_ensure()
    user = User.objects.get(username="auditor")
    user.set_password("something-else-entirely")
    user.failed_login_count = 4
    user.locked_until = timezone.now() + datetime.timedelta(minutes=10)
    user.save()
    RoleAssignment.objects.create(user=user, role=Role.ADMINISTRATOR.value)
    demo_accounts_ensure()
    user.refresh_from_db()
    assert user.check_password("demo-auditor-2026")
    assert user.failed_login_count == 0
    assert user.locked_until is None
    assert user.role_codes() == frozenset({Role.AUDITOR.value})
    assert User.objects.count() == len(Role.values) + 1
    assert Office.objects.count() == 2


def test_demo_command_seeds_once_and_prints_the_banner() -> None:
    output = StringIO()
    call_command("demo", "--no-serve", "--persons", "60", stdout=output)
    text = output.getvalue()
    assert Person.objects.count() == 60
    assert "http://127.0.0.1:8000" in text
    assert "demo-registrar-2026" in text
    assert "/audit/" in text
    assert "/api/docs" in text
    assert "pilar token create" in text
    # Contribution histories went through the declaration pipeline, and the portal demo
    # employer can sign in with the password the banner prints.
    from pilar.contributions.models import ContributionRecord, Declaration
    from pilar.portal.models import EmployerUser

    posted = Declaration.objects.filter(status="posted")
    assert posted.exists()
    assert ContributionRecord.objects.count() == sum(d.worker_count for d in posted)
    account = EmployerUser.objects.select_related("employer", "user").get()
    assert account.employer.rfc in text
    assert account.user.check_password("demo-employer-2026")
    output = StringIO()
    call_command("demo", "--no-serve", "--persons", "60", stdout=output)
    assert "not seeding again" in output.getvalue()
    assert Person.objects.count() == 60
    assert Declaration.objects.filter(status="posted").count() == posted.count()


def test_demo_refuses_a_bad_size() -> None:
    with pytest.raises(CommandError, match="--persons"):
        call_command("demo", "--no-serve", "--persons", "0")


@pytest.fixture
def registrar() -> User:
    user = User.objects.create_user(username="ana", password="a-long-password-123")
    RoleAssignment.objects.create(user=user, role=Role.REGISTRAR.value)
    return user


def test_token_create_prints_a_working_token_once(registrar: User) -> None:
    output, messages = StringIO(), StringIO()
    call_command(
        "token",
        "create",
        "--user",
        "ana",
        "--role",
        "registrar",
        "--name",
        "import",
        "--days",
        "7",
        stdout=output,
        stderr=messages,
    )
    secret = output.getvalue().strip()
    token = token_authenticate(secret)
    assert token is not None
    assert token.user == registrar
    assert token.role == "registrar"
    assert token.name == "import"
    assert token.expires_at - timezone.now() <= datetime.timedelta(days=7)
    assert secret not in messages.getvalue()
    assert token.prefix in messages.getvalue()
    assert secret not in str(ApiToken.objects.values_list("secret_hash", flat=True)[0])
    event = AuditEvent.objects.get(action="token.issue")
    assert event.actor_label == "cli"
    assert event.channel == "cli"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--user", "nobody", "--role", "registrar"], "Unknown user"),
        (["--user", "ana", "--role", "wizard"], "Unknown role"),
        (["--user", "ana", "--role", "auditor"], "does not hold"),
        (["--user", "ana", "--role", "registrar", "--days", "0"], "--days"),
    ],
)
def test_token_create_refuses_bad_input(
    registrar: User, arguments: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("token", "create", *arguments, stdout=StringIO(), stderr=StringIO())
    assert not ApiToken.objects.exists()


def test_token_list_and_revoke(registrar: User) -> None:
    output = StringIO()
    call_command(
        "token", "create", "--user", "ana", "--role", "registrar", stdout=output, stderr=StringIO()
    )
    secret = output.getvalue().strip()
    token = ApiToken.objects.get()
    listing = StringIO()
    call_command("token", "list", "--user", "ana", stdout=listing)
    assert token.prefix in listing.getvalue()
    assert "active" in listing.getvalue()
    assert secret not in listing.getvalue()
    call_command("token", "revoke", "--prefix", token.prefix, stdout=StringIO())
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token_authenticate(secret) is None
    assert AuditEvent.objects.filter(action="token.revoke").count() == 1
    listing = StringIO()
    call_command("token", "list", stdout=listing)
    assert "revoked" in listing.getvalue()
    with pytest.raises(CommandError, match="already revoked"):
        call_command("token", "revoke", "--prefix", token.prefix)
    with pytest.raises(CommandError, match="No token"):
        call_command("token", "revoke", "--prefix", "000000000000")
