"""The core staff UI through Django's test client: signing in and out, lockout, the language
switch, CSRF failures, the audit trail and access log pages, and API tokens."""

from __future__ import annotations

import datetime

import pytest
from django.conf import settings
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from pilar.core.actor import Actor
from pilar.core.audit import access_record, audit_record
from pilar.core.auth import token_authenticate
from pilar.core.models import AccessLogEntry, ApiToken, AuditEvent, User
from pilar.core.roles import Role
from pilar.core.tests.factories import TEST_PASSWORD, staff
from pilar.core.views import server_error

pytestmark = pytest.mark.django_db

LOGIN = reverse("core:login")
HOME = reverse("core:home")


def signed_in(user: User, language: str = "es") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


def english(client: Client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


# --- signing in and out -----------------------------------------------------------------------


def test_login_page_is_spanish_by_default_with_labelled_inputs() -> None:
    response = Client().get(LOGIN)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="es">' in html
    assert "Iniciar sesión" in html
    assert '<label for="id_username"' in html
    assert '<label for="id_password"' in html
    assert 'href="#main"' in html  # skip link
    assert "<main" in html


def test_anonymous_staff_pages_redirect_to_login_keeping_the_destination() -> None:
    response = Client().get(reverse("core:audit"))
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN + "?next=")


def test_successful_login_redirects_and_records_an_audit_event() -> None:
    user = staff(Role.REGISTRAR)
    response = Client().post(LOGIN, {"username": user.username, "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == HOME
    event = AuditEvent.objects.get(action="auth.login")
    assert event.actor == user
    assert event.channel == "ui"


def test_login_follows_a_safe_next_but_not_an_external_one() -> None:
    user = staff(Role.REGISTRAR)
    data = {"username": user.username, "password": TEST_PASSWORD}
    inside = Client().post(LOGIN, {**data, "next": "/persons/"})
    assert inside["Location"] == "/persons/"
    outside = Client().post(LOGIN, {**data, "next": "https://evil.example/"})
    assert outside["Location"] == HOME


def test_wrong_password_gives_a_generic_message_and_no_session() -> None:
    user = staff(Role.REGISTRAR)
    client = Client(headers={"accept-language": "en"})
    response = client.post(LOGIN, {"username": user.username, "password": "nope"})
    assert response.status_code == 422
    html = response.content.decode()
    assert "The username or password is wrong." in html
    assert "The account is locked" not in html
    assert "_auth_user_id" not in client.session
    unknown = client.post(LOGIN, {"username": "nobody", "password": "nope"})
    assert "The username or password is wrong." in unknown.content.decode()


def test_locked_account_says_so_even_with_the_right_password() -> None:
    user = staff(Role.REGISTRAR)
    client = Client(headers={"accept-language": "en"})
    for _attempt in range(settings.PILAR_LOCKOUT_ATTEMPTS):
        response = client.post(LOGIN, {"username": user.username, "password": "wrong"})
    assert "The account is locked" in response.content.decode()
    right = client.post(LOGIN, {"username": user.username, "password": TEST_PASSWORD})
    assert right.status_code == 422
    assert "The account is locked" in right.content.decode()
    assert "_auth_user_id" not in client.session


def test_lockout_message_is_translated() -> None:
    user = staff(Role.REGISTRAR)
    user.locked_until = timezone.now() + datetime.timedelta(minutes=10)
    user.save()
    response = Client().post(LOGIN, {"username": user.username, "password": TEST_PASSWORD})
    assert "La cuenta está bloqueada" in response.content.decode()


def test_logout_is_post_only_and_audited() -> None:
    user = staff(Role.REGISTRAR)
    client = signed_in(user)
    assert client.get(reverse("core:logout")).status_code == 405
    response = client.post(reverse("core:logout"))
    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert AuditEvent.objects.filter(action="auth.logout", actor=user).exists()
    assert client.get(HOME).status_code == 302


# --- home and navigation ----------------------------------------------------------------------


def test_home_greets_and_links_only_what_the_roles_allow() -> None:
    registrar = staff(Role.REGISTRAR, first_name="Lucía", last_name="Ramos")
    html = signed_in(registrar).get(HOME).content.decode()
    assert "Lucía Ramos" in html
    assert "Registrador" in html or "Registrar" in html
    assert "Jalisco" in html
    assert reverse("registry:person_register") in html
    assert reverse("core:audit") not in html

    analyst_html = signed_in(staff(Role.ANALYST)).get(HOME).content.decode()
    assert reverse("registry:person_search") not in analyst_html
    assert reverse("registry:employer_list") in analyst_html


# --- language switch and CSRF -----------------------------------------------------------------


def test_language_switch_to_english_and_back() -> None:
    client = signed_in(staff(Role.REGISTRAR))
    assert "Cerrar sesión" in client.get(HOME).content.decode()
    response = client.post(reverse("set_language"), {"language": "en", "next": HOME})
    assert response.status_code == 302
    html = client.get(HOME).content.decode()
    assert '<html lang="en">' in html
    assert "Sign out" in html
    client.post(reverse("set_language"), {"language": "es", "next": HOME})
    assert "Cerrar sesión" in client.get(HOME).content.decode()


def test_missing_csrf_token_shows_a_friendly_page() -> None:
    user = staff(Role.REGISTRAR)
    client = Client(enforce_csrf_checks=True)
    response = client.post(LOGIN, {"username": user.username, "password": TEST_PASSWORD})
    assert response.status_code == 403
    html = response.content.decode()
    assert "El formulario ha caducado" in html
    assert "<main" in html
    assert not AuditEvent.objects.filter(action="auth.login").exists()


# --- error pages ------------------------------------------------------------------------------


def test_unknown_address_gets_the_404_page() -> None:
    response = signed_in(staff(Role.REGISTRAR)).get("/no-such-page/")
    assert response.status_code == 404
    assert "No encontrado" in response.content.decode()


def test_server_error_page_renders_with_the_layout() -> None:
    request = RequestFactory().get("/")
    request.user = staff(Role.REGISTRAR)
    response = server_error(request)
    assert response.status_code == 500
    assert "site-header" in response.content.decode()


# --- audit trail and access log ---------------------------------------------------------------


def _event(action: str, *, person_id: int | None = None, label: str = "someone") -> AuditEvent:
    actor = Actor.system(label, roles=frozenset({Role.REGISTRAR}))
    return audit_record(
        actor=actor, action=action, entity_type="person", entity_id=1, person_id=person_id
    )


def test_audit_page_is_for_auditors_only() -> None:
    _event("person.register", person_id=7)
    assert signed_in(staff(Role.REGISTRAR)).get(reverse("core:audit")).status_code == 403
    response = signed_in(staff(Role.AUDITOR)).get(reverse("core:audit"))
    assert response.status_code == 200
    assert "person.register" in response.content.decode()


def test_audit_page_filters_by_action_prefix_actor_and_person() -> None:
    _event("person.register", person_id=7, label="alice")
    _event("employer.register", label="bob")
    client = signed_in(staff(Role.AUDITOR))
    person, employer = "<code>person.register</code>", "<code>employer.register</code>"
    by_action = client.get(reverse("core:audit"), {"action": "employer."}).content.decode()
    assert employer in by_action
    assert person not in by_action
    by_actor = client.get(reverse("core:audit"), {"actor": "alice"}).content.decode()
    assert person in by_actor
    assert employer not in by_actor
    by_person = client.get(reverse("core:audit"), {"person_id": "7"}).content.decode()
    assert person in by_person
    assert employer not in by_person


def test_audit_filter_errors_are_shown_not_raised() -> None:
    client = signed_in(staff(Role.AUDITOR))
    reversed_dates = client.get(
        reverse("core:audit"), {"date_from": "2024-05-02", "date_to": "2024-05-01"}
    )
    assert reversed_dates.status_code == 422
    assert 'id="id_date_to_error"' in reversed_dates.content.decode()
    bad_number = client.get(reverse("core:audit"), {"person_id": "abc", "channel": "fax"})
    assert bad_number.status_code == 422
    assert 'aria-invalid="true"' in bad_number.content.decode()


def test_audit_page_paginates() -> None:
    for number in range(55):
        _event(f"person.update.{number:02d}")
    client = signed_in(staff(Role.AUDITOR))
    first = client.get(reverse("core:audit")).content.decode()
    assert "person.update.54" in first
    assert "person.update.04" not in first
    second = client.get(reverse("core:audit"), {"page": "2"}).content.decode()
    assert "person.update.04" in second
    assert "person.update.54" not in second
    assert client.get(reverse("core:audit"), {"page": "-3"}).status_code == 200


def test_access_log_page_needs_its_permission() -> None:
    access_record(
        actor=Actor.system("reader", roles=frozenset({Role.AUDITOR})), person_id=9, purpose="claim"
    )
    assert signed_in(staff(Role.REGISTRAR)).get(reverse("core:access_log")).status_code == 403
    response = signed_in(staff(Role.DATA_STEWARD)).get(reverse("core:access_log"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "reader" in html
    assert "claim" in html


# --- API tokens -------------------------------------------------------------------------------


def test_token_is_created_for_one_of_my_roles_and_shown_once() -> None:
    user = staff(Role.REGISTRAR, Role.AUDITOR)
    client = signed_in(user)
    response = client.post(reverse("core:tokens"), {"name": "HR upload", "role": "registrar"})
    assert response.status_code == 200
    secret = response.context["issued_secret"]
    assert secret
    assert secret in response.content.decode()
    token = token_authenticate(secret)
    assert token is not None
    assert token.role == "registrar"
    assert token.user == user
    assert AuditEvent.objects.filter(action="token.issue").exists()
    assert secret not in client.get(reverse("core:tokens")).content.decode()


def test_token_role_must_be_held() -> None:
    client = signed_in(staff(Role.REGISTRAR))
    response = client.post(reverse("core:tokens"), {"name": "x", "role": "administrator"})
    assert response.status_code == 422
    assert not ApiToken.objects.exists()


def test_token_revoke_and_others_tokens_are_hidden_from_non_administrators() -> None:
    owner = staff(Role.REGISTRAR)
    client = signed_in(owner)
    client.post(reverse("core:tokens"), {"name": "mine", "role": "registrar"})
    token = ApiToken.objects.get(user=owner)

    stranger = signed_in(staff(Role.REGISTRAR))
    revoke_url = reverse("core:token_revoke", args=[token.pk])
    assert stranger.post(revoke_url).status_code == 404
    assert stranger.get(reverse("core:tokens"), {"user": owner.username}).status_code == 403

    assert client.post(revoke_url).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_administrator_manages_another_users_tokens() -> None:
    owner = staff(Role.REGISTRAR)
    admin = signed_in(staff(Role.ADMINISTRATOR))
    page = admin.get(reverse("core:tokens"), {"user": owner.username})
    assert page.status_code == 200
    assert page.context["owner"] == owner
    response = admin.post(
        reverse("core:tokens"), {"owner": owner.username, "name": "batch", "role": "registrar"}
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(user=owner)
    assert admin.post(reverse("core:token_revoke", args=[token.pk])).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert admin.get(reverse("core:tokens"), {"user": "ghost"}).status_code == 404


def test_every_page_carries_no_inline_script_or_style() -> None:
    client = signed_in(staff(Role.AUDITOR))
    for url in (HOME, reverse("core:audit"), reverse("core:access_log"), reverse("core:tokens")):
        html = client.get(url).content.decode()
        assert "<style" not in html
        assert "style=" not in html
        assert "<script>" not in html
        assert "onclick" not in html
        assert 'name="htmx-config"' in html


def test_access_log_rows_are_never_written_by_trail_pages() -> None:
    client = signed_in(staff(Role.AUDITOR))
    client.get(reverse("core:audit"))
    client.get(reverse("core:access_log"))
    assert not AccessLogEntry.objects.exists()
