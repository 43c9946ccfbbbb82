"""Staff accounts and offices: the services (permission, entry checks, self-protection, audit
events, token revocation), the selectors, the ``pilar staff`` and ``pilar office`` commands,
and the administrators' pages. Runs on the real database (SQLite or PostgreSQL)."""

from __future__ import annotations

import datetime
import json
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from pilar.core import selectors, services
from pilar.core.actor import Actor
from pilar.core.auth import token_issue
from pilar.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from pilar.core.models import ApiToken, AuditEvent, Office, User
from pilar.core.roles import Role
from pilar.core.tests.factories import TEST_PASSWORD, OfficeFactory, staff

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Quetzal-maíz-río-2026"
CLI = Actor.system("test", roles=frozenset({Role.ADMINISTRATOR.value}))


def as_actor(user: User) -> Actor:
    return Actor.for_user(user, channel="ui")


@pytest.fixture
def admin() -> User:
    return staff(Role.ADMINISTRATOR, username="admin", region="DF")


@pytest.fixture
def office() -> Office:
    return OfficeFactory.create(code="JAL-01", name="Oficina Guadalajara", region="JC")


def create(admin: User, **overrides: Any) -> User:
    values: dict[str, Any] = {
        "username": "lucia.ramos",
        "first_name": "Lucía",
        "last_name": "Ramos",
        "office_code": "JAL-01",
        "roles": [Role.REGISTRAR.value],
        "password": NEW_PASSWORD,
    }
    values.update(overrides)
    values.setdefault("email", f"{values['username']}@example.org")
    return services.staff_create(actor=as_actor(admin), **values)


def field_codes(error: ValidationFailed) -> dict[str, list[str]]:
    return {name: [e.code for e in errors] for name, errors in error.field_errors.items()}


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def api_me(raw_token: str) -> int:
    response = Client().get("/api/v1/me", headers={"Authorization": f"Bearer {raw_token}"})
    return response.status_code


# --- creating accounts ------------------------------------------------------------------------


def test_staff_create_makes_an_active_account_and_audits_it_without_the_password(
    admin: User, office: Office
) -> None:
    user = create(admin, email="Lucia.Ramos@EXAMPLE.org", roles=["registrar", "auditor"])

    user.refresh_from_db()
    assert user.is_active
    assert user.office == office
    assert user.email == "Lucia.Ramos@example.org"
    assert user.role_codes() == frozenset({"registrar", "auditor"})
    assert user.check_password(NEW_PASSWORD)
    assert authenticate(username="lucia.ramos", password=NEW_PASSWORD) == user
    [event] = events("staff.create")
    assert (event.entity_type, event.entity_id) == ("user", str(user.pk))
    assert (event.actor, event.channel) == (admin, "ui")
    assert event.changes["username"] == [None, "lucia.ramos"]
    assert event.changes["office"] == [None, "JAL-01"]
    assert event.changes["roles"] == [None, ["auditor", "registrar"]]
    assert event.note == "password set"
    stored = json.dumps(event.changes)
    assert "password" not in stored
    assert NEW_PASSWORD not in stored
    assert user.password not in stored


def test_only_holders_of_user_manage_create_accounts(office: Office) -> None:
    for role in (Role.REGISTRAR, Role.AUDITOR, Role.DATA_STEWARD):
        with pytest.raises(PermissionDenied):
            create(staff(role))
    assert not User.objects.filter(username="lucia.ramos").exists()
    assert not events("staff.create")


def test_staff_create_reports_every_problem_at_once_and_writes_nothing(
    admin: User, office: Office
) -> None:
    staff(Role.REGISTRAR, username="Lucia.Ramos")
    users_before = User.objects.count()

    with pytest.raises(ValidationFailed) as caught:
        create(
            admin,
            username="lucia.ramos",
            email="not-an-address",
            office_code="NOWHERE-01",
            roles=["registrar", "wizard"],
            password="short",
        )

    codes = field_codes(caught.value)
    assert codes["username"] == ["staff.username_taken"]  # case is ignored
    assert codes["email"] == ["staff.email_invalid"]
    assert codes["office_code"] == ["staff.office_unknown"]
    assert codes["roles"] == ["staff.role_unknown"]
    assert "password.password_too_short" in codes["password"]
    assert User.objects.count() == users_before
    assert not events("staff.create")


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"username": ""}, "username", "required"),
        ({"username": "ana perez"}, "username", "staff.username_invalid"),
        ({"username": "x" * 151}, "username", "too_long"),
        ({"roles": []}, "roles", "staff.role_required"),
        ({"office_code": ""}, "office_code", "required"),
        ({"password": ""}, "password", "required"),
        ({"password": "123456789012345"}, "password", "password.password_entirely_numeric"),
        ({"password": "lucia.ramos.2026"}, "password", "password.password_too_similar"),
        ({"password": "password1234"}, "password", "password.password_too_common"),
    ],
)
def test_staff_create_entry_checks(
    admin: User, office: Office, overrides: dict[str, Any], field: str, code: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        create(admin, **overrides)
    assert code in field_codes(caught.value)[field]


def test_domain_messages_are_translated(admin: User, office: Office) -> None:
    with pytest.raises(ValidationFailed) as caught:
        create(admin, office_code="NOWHERE-01", roles=[])
    with translation.override("es"):
        messages = {
            name: str(errors[0].message) for name, errors in caught.value.field_errors.items()
        }
    assert messages == {
        "office_code": "No existe una oficina con esta clave.",
        "roles": "Elija al menos un rol.",
    }


# --- changing accounts ------------------------------------------------------------------------


def test_staff_update_changes_the_given_fields_and_audits_before_and_after(
    admin: User, office: Office
) -> None:
    user = create(admin)
    other = OfficeFactory.create(code="DF-02", name="Oficina Coyoacán", region="DF")

    services.staff_update(
        actor=as_actor(admin),
        user_id=user.pk,
        changes={"last_name": "Ramos Díaz", "office_code": "df-02"},
    )

    user.refresh_from_db()
    assert (user.first_name, user.last_name, user.office) == ("Lucía", "Ramos Díaz", other)
    [event] = events("staff.update")
    assert event.changes == {
        "last_name": ["Ramos", "Ramos Díaz"],
        "office": ["JAL-01", "DF-02"],
    }
    # Nothing changed: no write, no event.
    services.staff_update(actor=as_actor(admin), user_id=user.pk, changes={"first_name": "Lucía"})
    assert len(events("staff.update")) == 1


def test_staff_update_refuses_unknown_fields_such_as_the_username(
    admin: User, office: Office
) -> None:
    user = create(admin)
    with pytest.raises(ValidationFailed) as caught:
        services.staff_update(
            actor=as_actor(admin), user_id=user.pk, changes={"username": "someone.else"}
        )
    assert field_codes(caught.value) == {"username": ["field.unknown"]}
    with pytest.raises(NotFound):
        services.staff_update(actor=as_actor(admin), user_id=10**9, changes={})


def test_staff_set_roles_replaces_the_roles_and_audits_them(admin: User, office: Office) -> None:
    user = create(admin, roles=["registrar", "auditor"])

    services.staff_set_roles(actor=as_actor(admin), user_id=user.pk, roles=["auditor", "analyst"])

    assert User.objects.get(pk=user.pk).role_codes() == frozenset({"auditor", "analyst"})
    [event] = events("staff.roles_set")
    assert event.changes == {"roles": [["auditor", "registrar"], ["analyst", "auditor"]]}
    services.staff_set_roles(actor=as_actor(admin), user_id=user.pk, roles=["analyst", "auditor"])
    assert len(events("staff.roles_set")) == 1


def test_an_administrator_cannot_remove_their_own_administrator_role(admin: User) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.staff_set_roles(actor=as_actor(admin), user_id=admin.pk, roles=["auditor"])
    assert field_codes(caught.value) == {"roles": ["staff.own_administrator_role"]}
    assert User.objects.get(pk=admin.pk).role_codes() == frozenset({"administrator"})

    # Adding a role to oneself is fine, and another administrator may withdraw the role.
    services.staff_set_roles(
        actor=as_actor(admin), user_id=admin.pk, roles=["administrator", "auditor"]
    )
    colleague = staff(Role.ADMINISTRATOR, region="DF")
    services.staff_set_roles(actor=as_actor(colleague), user_id=admin.pk, roles=["auditor"])
    assert User.objects.get(pk=admin.pk).role_codes() == frozenset({"auditor"})


def test_withdrawing_a_role_revokes_its_tokens_and_the_api_refuses_them(
    admin: User, office: Office
) -> None:
    user = create(admin, roles=["registrar", "auditor"])
    registrar_token, registrar_raw = token_issue(
        actor=CLI, user=user, role="registrar", name="import"
    )
    auditor_token, auditor_raw = token_issue(actor=CLI, user=user, role="auditor", name="report")
    assert api_me(registrar_raw) == 200

    services.staff_set_roles(actor=as_actor(admin), user_id=user.pk, roles=["auditor"])

    registrar_token.refresh_from_db()
    auditor_token.refresh_from_db()
    assert registrar_token.revoked_at is not None
    assert auditor_token.revoked_at is None
    assert api_me(registrar_raw) == 401
    assert api_me(auditor_raw) == 200
    [revocation] = events("token.revoke")
    assert (revocation.entity_id, revocation.note) == (str(registrar_token.pk), "role withdrawn")
    # Granting the role again does not bring the old token back.
    services.staff_set_roles(actor=as_actor(admin), user_id=user.pk, roles=["auditor", "registrar"])
    assert api_me(registrar_raw) == 401
    assert ApiToken.objects.count() == 2  # revoked, not deleted


def test_unlock_ends_a_lockout_so_the_right_password_works_again(
    admin: User, office: Office
) -> None:
    user = create(admin)
    until = timezone.now() + datetime.timedelta(minutes=10)
    User.objects.filter(pk=user.pk).update(locked_until=until, failed_login_count=2)
    assert authenticate(username=user.username, password=NEW_PASSWORD) is None

    services.staff_unlock(actor=as_actor(admin), user_id=user.pk)

    user.refresh_from_db()
    assert (user.locked_until, user.failed_login_count) == (None, 0)
    assert authenticate(username=user.username, password=NEW_PASSWORD) == user
    [event] = events("staff.unlock")
    assert event.changes == {
        "failed_login_count": [2, 0],
        "locked_until": [until.isoformat(), None],
    }
    with pytest.raises(Conflict) as caught:
        services.staff_unlock(actor=as_actor(admin), user_id=user.pk)
    assert caught.value.code == "staff.not_locked"


def test_deactivation_blocks_sign_in_and_revokes_every_token_in_the_same_transaction(
    admin: User, office: Office
) -> None:
    user = create(admin, roles=["registrar", "auditor"])
    tokens = [
        token_issue(actor=CLI, user=user, role=role, name=role)[1]
        for role in ("registrar", "auditor")
    ]

    services.staff_deactivate(
        actor=as_actor(admin), user_id=user.pk, reason="  Left the institution  "
    )

    user.refresh_from_db()
    assert not user.is_active
    assert authenticate(username=user.username, password=NEW_PASSWORD) is None
    assert not ApiToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    assert all(api_me(raw) == 401 for raw in tokens)
    [event] = events("staff.deactivate")
    assert (event.changes, event.note) == ({"is_active": [True, False]}, "Left the institution")
    assert [e.note for e in events("token.revoke")] == ["account deactivated"] * 2


def test_deactivation_needs_a_reason_and_an_active_account_not_ones_own(
    admin: User, office: Office
) -> None:
    user = create(admin)
    with pytest.raises(ValidationFailed) as caught:
        services.staff_deactivate(actor=as_actor(admin), user_id=user.pk, reason="  ")
    assert field_codes(caught.value) == {"reason": ["required"]}
    with pytest.raises(Conflict) as own:
        services.staff_deactivate(actor=as_actor(admin), user_id=admin.pk, reason="oops")
    assert own.value.code == "staff.own_account"
    assert User.objects.get(pk=admin.pk).is_active

    services.staff_deactivate(actor=as_actor(admin), user_id=user.pk, reason="leave")
    with pytest.raises(Conflict) as again:
        services.staff_deactivate(actor=as_actor(admin), user_id=user.pk, reason="leave")
    assert again.value.code == "staff.already_inactive"
    assert len(events("staff.deactivate")) == 1


def test_reactivation_restores_sign_in_but_not_the_tokens(admin: User, office: Office) -> None:
    user = create(admin)
    _token, raw = token_issue(actor=CLI, user=user, role="registrar", name="import")
    services.staff_deactivate(actor=as_actor(admin), user_id=user.pk, reason="leave")

    services.staff_reactivate(actor=as_actor(admin), user_id=user.pk)

    assert authenticate(username=user.username, password=NEW_PASSWORD) == user
    assert api_me(raw) == 401
    assert events("staff.reactivate")[0].changes == {"is_active": [False, True]}
    with pytest.raises(Conflict):
        services.staff_reactivate(actor=as_actor(admin), user_id=user.pk)


def test_set_password_validates_and_audits_only_that_a_password_was_set(
    admin: User, office: Office
) -> None:
    user = create(admin)
    with pytest.raises(ValidationFailed) as caught:
        services.staff_set_password(actor=as_actor(admin), user_id=user.pk, password="Ramos")
    assert "password" in caught.value.field_errors
    assert User.objects.get(pk=user.pk).check_password(NEW_PASSWORD)

    services.staff_set_password(
        actor=as_actor(admin), user_id=user.pk, password="Otra-contraseña-larga-9"
    )

    assert User.objects.get(pk=user.pk).check_password("Otra-contraseña-larga-9")
    [event] = events("staff.password_set")
    assert (event.changes, event.note) == ({}, "password set")


def test_every_change_needs_user_manage(admin: User, office: Office) -> None:
    user = create(admin)
    registrar = as_actor(staff(Role.REGISTRAR))
    for call in (
        lambda: services.staff_update(actor=registrar, user_id=user.pk, changes={}),
        lambda: services.staff_set_roles(actor=registrar, user_id=user.pk, roles=["registrar"]),
        lambda: services.staff_unlock(actor=registrar, user_id=user.pk),
        lambda: services.staff_deactivate(actor=registrar, user_id=user.pk, reason="x"),
        lambda: services.staff_reactivate(actor=registrar, user_id=user.pk),
        lambda: services.staff_set_password(actor=registrar, user_id=user.pk, password="x"),
        lambda: services.office_create(actor=registrar, code="X-1", name="X", region="JC"),
        lambda: selectors.staff_list(actor=registrar),
        lambda: selectors.staff_get(actor=registrar, user_id=user.pk),
        lambda: selectors.office_list(actor=registrar),
    ):
        with pytest.raises(PermissionDenied):
            call()


# --- offices ----------------------------------------------------------------------------------


def test_office_create_normalises_the_code_and_audits(admin: User) -> None:
    office = services.office_create(
        actor=as_actor(admin), code=" jal-02 ", name="Oficina Zapopan", region="jc"
    )
    assert (office.code, office.region) == ("JAL-02", "JC")
    [event] = events("office.create")
    assert event.changes == {
        "code": [None, "JAL-02"],
        "name": [None, "Oficina Zapopan"],
        "region": [None, "JC"],
    }
    with pytest.raises(ValidationFailed) as caught:
        services.office_create(actor=as_actor(admin), code="Jal-02", name="", region="XX")
    assert field_codes(caught.value) == {
        "code": ["office.code_taken"],
        "name": ["required"],
        "region": ["office.region_unknown"],
    }
    with pytest.raises(ValidationFailed) as shape:
        services.office_create(actor=as_actor(admin), code="JAL 02!", name="X", region="JC")
    assert field_codes(shape.value) == {"code": ["office.code_invalid"]}


# --- regional administrators ------------------------------------------------------------------


def test_an_administrator_without_national_scope_manages_their_region_only(
    settings: Any, office: Office
) -> None:
    settings.PILAR_NATIONAL_SCOPE_ROLES = frozenset({"auditor"})
    regional_admin = as_actor(staff(Role.ADMINISTRATOR, region="JC"))
    elsewhere = staff(Role.REGISTRAR, username="far.away", region="DF")
    nearby = staff(Role.REGISTRAR, username="nearby", region="JC")

    listed = {u.username for u in selectors.staff_list(actor=regional_admin).items}
    assert "nearby" in listed
    assert "far.away" not in listed
    assert {o.region for o in selectors.office_list(actor=regional_admin)} == {"JC"}
    with pytest.raises(NotFound):
        selectors.staff_get(actor=regional_admin, user_id=elsewhere.pk)
    with pytest.raises(NotFound):
        services.staff_unlock(actor=regional_admin, user_id=elsewhere.pk)
    with pytest.raises(ValidationFailed) as caught:
        services.staff_create(
            actor=regional_admin,
            username="new.df",
            office_code="DF-01",
            roles=["registrar"],
            password=NEW_PASSWORD,
        )
    assert field_codes(caught.value) == {"office_code": ["staff.office_unknown"]}
    with pytest.raises(ValidationFailed):
        services.office_create(actor=regional_admin, code="DF-09", name="X", region="DF")
    services.staff_update(actor=regional_admin, user_id=nearby.pk, changes={"first_name": "Eva"})


# --- selectors --------------------------------------------------------------------------------


def test_staff_list_filters_by_words_office_role_and_status(admin: User, office: Office) -> None:
    create(admin, username="lucia.ramos", roles=["registrar"])
    create(admin, username="elena", first_name="Elena", last_name="Torres", roles=["auditor"])
    gone = create(admin, username="pablo", first_name="Pablo", last_name="Ramos")
    services.staff_deactivate(actor=as_actor(admin), user_id=gone.pk, reason="left")
    actor = as_actor(admin)

    def names(**filters: Any) -> list[str]:
        return [u.username for u in selectors.staff_list(actor=actor, **filters).items]

    assert names(query="ramos") == ["lucia.ramos", "pablo"]
    assert names(query="RAMOS luc") == ["lucia.ramos"]
    assert names(query="example.org", role="auditor") == ["elena"]
    assert names(office="jal-01", active=True) == ["elena", "lucia.ramos"]
    assert names(active=False) == ["pablo"]
    with pytest.raises(ValidationFailed):
        selectors.staff_list(actor=actor, role="wizard")


def test_staff_events_are_the_accounts_own_history(admin: User, office: Office) -> None:
    user = create(admin)
    other = create(admin, username="elena")
    services.staff_set_roles(actor=as_actor(admin), user_id=other.pk, roles=["auditor"])
    services.staff_set_roles(actor=as_actor(admin), user_id=user.pk, roles=["analyst"])

    page = selectors.staff_events(actor=as_actor(admin), user_id=user.pk)

    assert [e.action for e in page.items] == ["staff.roles_set", "staff.create"]


# --- the command line -------------------------------------------------------------------------


def run(*arguments: str, stdin: str | None = None) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    extra: dict[str, Any] = {"stdin": StringIO(stdin)} if stdin is not None else {}
    call_command(*arguments, stdout=out, stderr=err, **extra)
    return out.getvalue(), err.getvalue()


def listed_usernames(*arguments: str) -> list[str]:
    lines = run(*arguments)[0].splitlines()
    return [line.split()[0] for line in lines[1:]]


def test_cli_create_generates_a_password_and_prints_it_once(office: Office) -> None:
    out, err = run(
        "staff",
        "create",
        "--username",
        "ana",
        "--office",
        "jal-01",
        "--role",
        "registrar",
        "--role",
        "auditor",
        "--first-name",
        "Ana",
    )

    password = out.strip()
    user = User.objects.get(username="ana")
    assert len(password) >= 24
    assert user.check_password(password)
    assert user.role_codes() == frozenset({"registrar", "auditor"})
    assert user.first_name == "Ana"
    assert "shown only now" in err
    assert password not in err
    event = AuditEvent.objects.get(action="staff.create")
    assert (event.actor_label, event.channel, event.actor) == ("cli", "cli", None)


def test_cli_create_reads_the_password_from_standard_input(office: Office) -> None:
    out, _err = run(
        "staff",
        "create",
        "--username",
        "ana",
        "--office",
        "JAL-01",
        "--role",
        "registrar",
        "--password-stdin",
        stdin=NEW_PASSWORD + "\n",
    )
    assert "Created ana in JAL-01" in out
    assert NEW_PASSWORD not in out
    assert User.objects.get(username="ana").check_password(NEW_PASSWORD)


@pytest.mark.parametrize(
    ("arguments", "stdin", "message"),
    [
        (["--office", "NOWHERE", "--role", "registrar"], None, "office_code: There is no office"),
        (["--office", "JAL-01", "--role", "wizard"], None, "roles: Unknown role: wizard"),
        (["--office", "JAL-01", "--role", "registrar", "--password-stdin"], "short\n", "password:"),
        (["--office", "JAL-01", "--role", "registrar", "--password-stdin"], "", "No password"),
    ],
)
def test_cli_create_refuses_bad_input_in_english_and_writes_nothing(
    office: Office, arguments: list[str], stdin: str | None, message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        run("staff", "create", "--username", "ana", *arguments, stdin=stdin)
    assert not User.objects.filter(username="ana").exists()
    assert not AuditEvent.objects.exists()


def test_cli_roles_unlock_deactivate_reactivate_password_and_list(
    admin: User, office: Office
) -> None:
    user = create(admin, username="ana", roles=["registrar"])
    _token, raw = token_issue(actor=CLI, user=user, role="registrar", name="import")

    out, _err = run("staff", "roles", "--username", "ana", "--role", "auditor", "--role", "analyst")
    assert "ana now holds: analyst, auditor." in out
    assert api_me(raw) == 401

    User.objects.filter(pk=user.pk).update(
        locked_until=timezone.now() + datetime.timedelta(minutes=5)
    )
    listing, _err = run("staff", "list", "--office", "JAL-01")
    assert "active, locked" in listing
    assert "analyst,auditor" in listing
    run("staff", "unlock", "--username", "ana")
    assert not User.objects.get(pk=user.pk).is_locked()
    with pytest.raises(CommandError, match="The account is not locked"):
        run("staff", "unlock", "--username", "ana")

    run("staff", "deactivate", "--username", "ana", "--reason", "Left")
    assert not User.objects.get(pk=user.pk).is_active
    assert listed_usernames("staff", "list", "--inactive") == ["ana"]
    assert listed_usernames("staff", "list") == ["admin"]
    run("staff", "reactivate", "--username", "ana")
    assert User.objects.get(pk=user.pk).is_active

    out, _err = run("staff", "password", "--username", "ana")
    assert User.objects.get(pk=user.pk).check_password(out.strip())
    with pytest.raises(CommandError, match="Unknown user 'ghost'"):
        run("staff", "unlock", "--username", "ghost")
    # The account was created through the web UI above; everything after, by the command line.
    changes = AuditEvent.objects.filter(action__startswith="staff.").exclude(action="staff.create")
    assert {e.channel for e in changes} == {"cli"}


def test_cli_can_withdraw_the_last_administrator_role_and_restore_it(admin: User) -> None:
    # The command line is the system, not a person: it is the way back in, so self-protection
    # does not apply to it.
    run("staff", "roles", "--username", "admin", "--role", "auditor")
    run("staff", "roles", "--username", "admin", "--role", "administrator")
    assert User.objects.get(pk=admin.pk).role_codes() == frozenset({"administrator"})


def test_cli_office_create_and_list() -> None:
    out, _err = run(
        "office", "create", "--code", "jal-02", "--name", "Oficina Zapopan", "--region", "JC"
    )
    assert "Created office JAL-02 (Jalisco)" in out
    assert "JAL-02" in run("office", "list")[0]
    with pytest.raises(CommandError, match="code: An office with this code already exists"):
        run("office", "create", "--code", "JAL-02", "--name", "Again", "--region", "JC")
    assert Office.objects.count() == 1
    assert AuditEvent.objects.filter(action="office.create").count() == 1


# --- the administrators' pages ----------------------------------------------------------------


def signed_in(user: User, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    client.force_login(user)
    return client


STAFF_LIST = reverse("core:staff_list")
STAFF_NEW = reverse("core:staff_create")
OFFICES = reverse("core:offices")


def member_url(name: str, user: User) -> str:
    return reverse(f"core:{name}", args=[user.pk])


def test_the_staff_link_is_shown_to_administrators_only(admin: User) -> None:
    spanish = signed_in(admin, "es").get(reverse("core:home")).content.decode()
    assert f'href="{STAFF_LIST}"' in spanish
    assert ">Personal</a>" in spanish
    registrar_home = signed_in(staff(Role.REGISTRAR)).get(reverse("core:home")).content.decode()
    assert STAFF_LIST not in registrar_home


def test_other_roles_get_403_on_every_staff_page(admin: User, office: Office) -> None:
    user = create(admin)
    client = signed_in(staff(Role.REGISTRAR))
    for url in (STAFF_LIST, STAFF_NEW, OFFICES, member_url("staff_detail", user)):
        assert client.get(url).status_code == 403, url
    for name in ("staff_unlock", "staff_reactivate", "staff_deactivate", "staff_roles"):
        assert client.post(member_url(name, user), {"reason": "x"}).status_code == 403, name
    assert client.post(OFFICES, {"code": "X-1", "name": "X", "region": "JC"}).status_code == 403
    assert not events("staff.deactivate")
    assert not Office.objects.filter(code="X-1").exists()


def test_administrator_lists_and_searches_staff(admin: User, office: Office) -> None:
    create(admin)
    create(admin, username="elena", first_name="Elena", last_name="Torres", roles=["auditor"])
    client = signed_in(admin)

    everyone = client.get(STAFF_LIST)
    assert everyone.status_code == 200
    html = everyone.content.decode()
    assert "lucia.ramos" in html
    assert "elena" in html
    found = client.get(STAFF_LIST, {"q": "torres"}).content.decode()
    assert "elena" in found
    assert "lucia.ramos" not in found
    by_role = client.get(STAFF_LIST, {"role": "registrar", "office": "JAL-01"}).content.decode()
    assert "lucia.ramos" in by_role
    assert "elena" not in by_role
    assert client.get(STAFF_LIST, {"role": "wizard"}).status_code == 422


def test_staff_list_queries_do_not_grow_with_the_number_of_accounts(
    admin: User, office: Office
) -> None:
    client = signed_in(admin)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(STAFF_LIST).status_code == 200
        return len(captured.captured_queries)

    for number in range(3):
        create(admin, username=f"few{number}")
    few = queries()
    for number in range(10):
        create(admin, username=f"many{number}", roles=["registrar", "auditor"])
    assert queries() == few


def test_administrator_creates_an_account_through_the_form(admin: User, office: Office) -> None:
    client = signed_in(admin)
    form = client.get(STAFF_NEW).content.decode()
    assert '<legend class="field__label">Roles' in form
    assert 'type="checkbox" name="roles" value="registrar"' in form
    assert '<option value="JAL-01">' in form

    response = client.post(
        STAFF_NEW,
        {
            "username": "lucia.ramos",
            "first_name": "Lucía",
            "last_name": "Ramos",
            "email": "",
            "office_code": "JAL-01",
            "roles": ["registrar", "case_worker"],
            "password": NEW_PASSWORD,
            "password_confirmation": NEW_PASSWORD,
        },
    )

    user = User.objects.get(username="lucia.ramos")
    assert response.status_code == 302
    assert response["Location"] == member_url("staff_detail", user)
    assert user.role_codes() == frozenset({"registrar", "case_worker"})
    assert AuditEvent.objects.get(action="staff.create").channel == "ui"
    detail = client.get(response["Location"]).content.decode()
    assert "The account lucia.ramos has been created." in detail
    assert "staff.create" in detail  # the account's history


def test_create_form_shows_service_and_typing_errors_and_creates_nothing(
    admin: User, office: Office
) -> None:
    client = signed_in(admin)
    data = {"username": "lucia", "office_code": "JAL-01", "roles": ["registrar"]}

    weak = client.post(STAFF_NEW, {**data, "password": "short", "password_confirmation": "short"})
    assert weak.status_code == 422
    html = weak.content.decode()
    assert 'id="id_password_error"' in html
    assert "This password is too short" in html

    no_role = client.post(
        STAFF_NEW,
        {**data, "roles": [], "password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD},
    )
    assert no_role.status_code == 422
    assert "Choose at least one role." in no_role.content.decode()

    mismatch = client.post(
        STAFF_NEW, {**data, "password": NEW_PASSWORD, "password_confirmation": "other"}
    )
    assert mismatch.status_code == 422
    assert "The two passwords are not the same." in mismatch.content.decode()
    assert not User.objects.filter(username="lucia").exists()


def test_the_detail_page_shows_roles_status_tokens_and_history(admin: User, office: Office) -> None:
    user = create(admin, roles=["registrar"])
    token_issue(actor=CLI, user=user, role="registrar", name="Nightly import")
    User.objects.filter(pk=user.pk).update(
        locked_until=timezone.now() + datetime.timedelta(minutes=5), failed_login_count=0
    )

    html = signed_in(admin).get(member_url("staff_detail", user)).content.decode()

    assert "Lucía Ramos" in html
    assert "Oficina Guadalajara (Jalisco)" in html
    assert "Locked" in html
    assert member_url("staff_unlock", user) in html
    assert member_url("staff_deactivate", user) in html
    assert member_url("staff_reactivate", user) not in html
    assert "Nightly import" in html
    assert "staff.create" in html
    assert 'id="id_roles_roles_0"' in html  # the roles form, ids unique on the page
    assert 'id="id_password_password"' in html


def test_unlock_deactivate_and_reactivate_through_the_page(admin: User, office: Office) -> None:
    user = create(admin)
    _token, raw = token_issue(actor=CLI, user=user, role="registrar", name="import")
    User.objects.filter(pk=user.pk).update(
        locked_until=timezone.now() + datetime.timedelta(minutes=5)
    )
    victim_session = signed_in(user)
    assert victim_session.get(reverse("core:home")).status_code == 200
    client = signed_in(admin)

    assert client.get(member_url("staff_unlock", user)).status_code == 405
    unlocked = client.post(member_url("staff_unlock", user))
    assert unlocked.status_code == 302
    assert unlocked["Location"].endswith("#status")
    assert not User.objects.get(pk=user.pk).is_locked()
    again = client.post(member_url("staff_unlock", user), follow=True)
    assert "The account is not locked." in again.content.decode()

    no_reason = client.post(member_url("staff_deactivate", user), {"reason": ""})
    assert no_reason.status_code == 422
    assert User.objects.get(pk=user.pk).is_active
    deactivated = client.post(member_url("staff_deactivate", user), {"reason": "Left"})
    assert deactivated.status_code == 302
    assert not User.objects.get(pk=user.pk).is_active
    assert api_me(raw) == 401
    # The deactivated staff member's open session ends at its next request.
    assert victim_session.get(reverse("core:home")).status_code == 302

    assert client.post(member_url("staff_reactivate", user)).status_code == 302
    assert User.objects.get(pk=user.pk).is_active


def test_an_administrator_cannot_lock_themselves_out_through_the_page(admin: User) -> None:
    client = signed_in(admin)
    detail = client.get(member_url("staff_detail", admin)).content.decode()
    assert member_url("staff_deactivate", admin) not in detail

    refused = client.post(member_url("staff_deactivate", admin), {"reason": "test"})
    assert refused.status_code == 422
    assert "You cannot deactivate your own account." in refused.content.decode()
    roles = client.post(member_url("staff_roles", admin), {"roles": ["auditor"]})
    assert roles.status_code == 422
    assert "You cannot remove your own administrator role." in roles.content.decode()
    assert User.objects.get(pk=admin.pk).is_active
    assert User.objects.get(pk=admin.pk).role_codes() == frozenset({"administrator"})


def test_roles_edit_and_password_forms(admin: User, office: Office) -> None:
    user = create(admin)
    client = signed_in(admin)

    roles = client.post(member_url("staff_roles", user), {"roles": ["auditor", "analyst"]})
    assert roles.status_code == 302
    assert User.objects.get(pk=user.pk).role_codes() == frozenset({"auditor", "analyst"})
    history = client.get(roles["Location"]).content.decode()
    assert '<span class="changes__after">analyst, auditor</span>' in history

    edit_page = client.get(member_url("staff_edit", user)).content.decode()
    assert 'value="Lucía"' in edit_page
    edited = client.post(
        member_url("staff_edit", user),
        {"first_name": "Lucía", "last_name": "Ramos Díaz", "email": "", "office_code": "JAL-01"},
    )
    assert edited.status_code == 302
    assert User.objects.get(pk=user.pk).last_name == "Ramos Díaz"

    password = client.post(
        member_url("staff_password", user),
        {"password": "Nueva-clave-segura-77", "password_confirmation": "Nueva-clave-segura-77"},
    )
    assert password.status_code == 302
    assert User.objects.get(pk=user.pk).check_password("Nueva-clave-segura-77")


def test_setting_ones_own_password_keeps_ones_session_and_ends_the_others(admin: User) -> None:
    other_session = signed_in(admin)
    client = signed_in(admin)
    response = client.post(
        member_url("staff_password", admin),
        {"password": "Nueva-clave-segura-77", "password_confirmation": "Nueva-clave-segura-77"},
    )
    assert response.status_code == 302
    assert client.get(STAFF_LIST).status_code == 200
    # A session opened with the old password ends at its next request.
    assert other_session.get(STAFF_LIST).status_code == 302
    assert not User.objects.get(pk=admin.pk).check_password(TEST_PASSWORD)


def test_staff_posts_are_csrf_protected(admin: User, office: Office) -> None:
    user = create(admin)
    User.objects.filter(pk=user.pk).update(
        locked_until=timezone.now() + datetime.timedelta(minutes=5)
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    assert client.post(member_url("staff_unlock", user)).status_code == 403
    assert client.post(member_url("staff_deactivate", user), {"reason": "x"}).status_code == 403
    created = client.post(
        STAFF_NEW,
        {
            "username": "sneaky",
            "office_code": "JAL-01",
            "roles": ["administrator"],
            "password": NEW_PASSWORD,
            "password_confirmation": NEW_PASSWORD,
        },
    )
    assert created.status_code == 403
    assert User.objects.get(pk=user.pk).is_locked()
    assert User.objects.get(pk=user.pk).is_active
    assert not User.objects.filter(username="sneaky").exists()


def test_offices_page_lists_and_creates_offices(admin: User, office: Office) -> None:
    client = signed_in(admin)
    page = client.get(OFFICES).content.decode()
    assert "JAL-01" in page
    assert "Oficina Guadalajara" in page

    bad = client.post(OFFICES, {"code": "JAL-01", "name": "Again", "region": "JC"})
    assert bad.status_code == 422
    assert "An office with this code already exists." in bad.content.decode()
    good = client.post(OFFICES, {"code": "jal-02", "name": "Oficina Zapopan", "region": "JC"})
    assert good.status_code == 302
    assert Office.objects.filter(code="JAL-02", region="JC").exists()


def test_staff_pages_carry_no_inline_script_or_style_and_are_translated(
    admin: User, office: Office
) -> None:
    user = create(admin)
    client = signed_in(admin, "es")
    for url in (
        STAFF_LIST,
        STAFF_NEW,
        OFFICES,
        member_url("staff_detail", user),
        member_url("staff_edit", user),
        member_url("staff_roles", user),
        member_url("staff_password", user),
        member_url("staff_deactivate", user),
    ):
        html = client.get(url).content.decode()
        assert "<style" not in html, url
        assert "style=" not in html, url
        assert "<script>" not in html, url
        assert '<html lang="es">' in html, url
    assert "Dar de alta a un servidor público" in client.get(STAFF_NEW).content.decode()
