"""Agreements through Django's test client and the staff API: the hub's staff create, change
and end them through the form with precise errors that change nothing; members only read them;
and the API's list, create and patch."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from pilar.core.auth import token_issue
from pilar.core.models import AuditEvent, User
from pilar.core.roles import Role
from pilar.core.tests.factories import actor, staff
from pilar.exchange import services_agreements
from pilar.exchange.models import Agreement, AgreementStatus, Member

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _hub(settings: Any, tmp_path: Path) -> None:
    settings.PILAR_NODE_CODE = "MX-HUB"
    settings.PILAR_NODE_ROLE = "hub"
    settings.PILAR_KEYS_DIR = tmp_path / "keys"
    for code, name in (("MX-IMSS", "IMSS"), ("MX-ISSSTECALI", "ISSSTECALI")):
        Member.objects.create(
            code=code,
            name=name,
            role="institute",
            endpoint="http://127.0.0.1:8101",
            services=["person-search", "insurance-periods"],
        )


def signed_in(user: User, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


def text_of(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def admin_client(language: str = "en") -> Client:
    return signed_in(staff(Role.ADMINISTRATOR, username=f"admin_{language}"), language)


GOOD: dict[str, Any] = {
    "code": "AG-0001",
    "consumer": "MX-IMSS",
    "provider": "*",
    "service": "insurance-periods",
    "purposes": ["totalisation"],
    "fields": ["period.from", "period.to", "period.weeks"],
    "valid_from": "2026-01-01",
    "valid_until": "",
    "status": "active",
    "legal_basis": "Convenio de portabilidad de derechos IMSS–ISSSTECALI",
}


def form_of(values: dict[str, Any]) -> dict[str, Any]:
    """The agreement as the browser posts it (the form's field for ``fields``)."""
    data = {name: value for name, value in values.items() if value is not None}
    data["granted_fields"] = data.pop("fields", [])
    return data


def test_the_hub_creates_an_agreement_through_the_form() -> None:
    client = admin_client()

    assert client.get(reverse("exchange:agreement_create")).status_code == 200
    response = client.post(reverse("exchange:agreement_create"), form_of(GOOD))

    agreement = Agreement.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("exchange:agreement_detail", args=[agreement.pk])
    assert agreement.consumer == "MX-IMSS"
    assert agreement.fields == ["period.from", "period.to", "period.weeks"]
    assert agreement.valid_from == datetime.date(2026, 1, 1)
    assert AuditEvent.objects.filter(action="agreement.create").exists()
    listing = text_of(client.get(reverse("exchange:agreement_list")))
    assert "AG-0001" in listing
    assert "Pension claim under a totalisation agreement" in listing


def test_a_bad_agreement_is_refused_with_each_problem_and_nothing_is_written() -> None:
    client = admin_client()
    bad = {
        **GOOD,
        "purposes": [],
        "fields": ["curp"],
        "valid_from": "2026-06-01",
        "valid_until": "2026-01-01",
    }

    response = client.post(reverse("exchange:agreement_create"), form_of(bad))

    assert response.status_code == 422
    page = text_of(response)
    assert "Name at least one purpose." in page
    assert "The service insurance-periods cannot grant these fields: curp." in page
    assert "The last day in force cannot be before the first day." in page
    assert not Agreement.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="agreement.").exists()


def test_ending_before_the_first_day_is_refused_and_changes_nothing() -> None:
    agreement = services_agreements.agreement_create(
        actor=actor(Role.ADMINISTRATOR),
        **{**GOOD, "valid_until": None},
    )
    client = admin_client()
    end = reverse("exchange:agreement_end", args=[agreement.pk])

    refused = client.post(end, {"valid_until": "2025-12-31", "version": agreement.version})
    assert refused.status_code == 422
    assert "The last day in force cannot be before the first day." in text_of(refused)
    agreement.refresh_from_db()
    assert agreement.valid_until is None
    assert agreement.version == 1

    ended = client.post(end, {"valid_until": "2026-12-31", "version": agreement.version})
    assert ended.status_code == 302
    agreement.refresh_from_db()
    assert agreement.valid_until == datetime.date(2026, 12, 31)


def test_an_edit_made_on_a_stale_version_is_refused() -> None:
    agreement = services_agreements.agreement_create(
        actor=actor(Role.ADMINISTRATOR), **{**GOOD, "valid_until": None}
    )
    client = admin_client()
    edit = reverse("exchange:agreement_edit", args=[agreement.pk])
    form = {**GOOD, "fields": ["period.from"], "version": agreement.version}
    client.post(edit, form_of(form))

    stale = client.post(edit, form_of({**form, "fields": ["period.to"]}))

    assert stale.status_code == 422
    assert "Someone else changed the agreement after you opened it." in text_of(stale)
    agreement.refresh_from_db()
    assert agreement.fields == ["period.from"]


def test_members_read_agreements_but_cannot_write_them(settings: Any) -> None:
    services_agreements.agreement_create(
        actor=actor(Role.ADMINISTRATOR), **{**GOOD, "valid_until": None}
    )
    settings.PILAR_NODE_ROLE = "institute"
    client = admin_client()

    listing = text_of(client.get(reverse("exchange:agreement_list")))

    assert "AG-0001" in listing
    assert reverse("exchange:agreement_create") not in listing
    assert client.post(reverse("exchange:agreement_create"), form_of(GOOD)).status_code == 403
    assert Agreement.objects.count() == 1


def test_a_registrar_cannot_see_agreements() -> None:
    client = signed_in(staff(Role.REGISTRAR, username="reg"))
    assert client.get(reverse("exchange:agreement_list")).status_code == 403
    assert client.post(reverse("exchange:agreement_create"), form_of(GOOD)).status_code == 403
    assert not Agreement.objects.exists()


# --- the API -----------------------------------------------------------------------------------


def bearer(role: str, username: str) -> dict[str, str]:
    user = staff(role, username=username)
    _token, secret = token_issue(
        actor=actor(Role.ADMINISTRATOR), user=user, role=role, name="test", days=1
    )
    return {"Authorization": f"Bearer {secret}"}


def test_the_api_creates_lists_changes_and_ends_agreements() -> None:
    client = Client(headers=bearer(Role.ADMINISTRATOR, "api_admin"))
    body = {**GOOD, "valid_until": None}

    created = client.post("/api/v1/exchange/agreements", body, content_type="application/json")
    assert created.status_code == 201, created.content
    agreement_id = created.json()["id"]
    assert created["Location"] == reverse("exchange:agreement_detail", args=[agreement_id])

    listed = client.get("/api/v1/exchange/agreements").json()
    assert [item["code"] for item in listed] == ["AG-0001"]

    changed = client.patch(
        f"/api/v1/exchange/agreements/{agreement_id}",
        {"version": 1, "fields": ["period.from"]},
        content_type="application/json",
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["fields"] == ["period.from"]
    assert changed.json()["version"] == 2

    stale = client.patch(
        f"/api/v1/exchange/agreements/{agreement_id}",
        {"version": 1, "fields": ["period.to"]},
        content_type="application/json",
    )
    assert stale.status_code == 409
    assert stale.json()["code"] == "exchange.agreement_stale"

    ended = client.patch(
        f"/api/v1/exchange/agreements/{agreement_id}",
        {"version": 2, "end": True, "valid_until": "2026-12-31"},
        content_type="application/json",
    )
    assert ended.status_code == 200, ended.content
    assert ended.json()["valid_until"] == "2026-12-31"


def test_the_api_refuses_a_bad_agreement_with_field_errors() -> None:
    client = Client(headers=bearer(Role.ADMINISTRATOR, "api_admin"))

    response = client.post(
        "/api/v1/exchange/agreements",
        {**GOOD, "consumer": "MX-NOBODY", "valid_until": None},
        content_type="application/json",
    )

    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["errors"]}
    assert "consumer" in fields
    assert not Agreement.objects.exists()


def test_the_api_trust_list_and_checkpoint() -> None:
    client = Client(headers=bearer(Role.ADMINISTRATOR, "api_admin"))

    trust = client.get("/api/v1/exchange/trust-list")
    assert trust.status_code == 200
    assert trust.json()["node"] == "MX-HUB"
    assert {member["code"] for member in trust.json()["members"]} == {"MX-IMSS", "MX-ISSSTECALI"}
    assert trust.json()["serial"] is None

    assert client.get("/api/v1/exchange/log/checkpoint").status_code == 404
    registrar = Client(headers=bearer(Role.REGISTRAR, "api_reg"))
    assert registrar.get("/api/v1/exchange/trust-list").status_code == 403
    assert registrar.get("/api/v1/exchange/messages").status_code == 403


def test_agreement_status_is_only_draft_or_active_on_create() -> None:
    client = admin_client()
    response = client.post(
        reverse("exchange:agreement_create"), form_of({**GOOD, "status": "ended"})
    )
    assert response.status_code == 422
    assert not Agreement.objects.filter(status=AgreementStatus.ENDED).exists()
