"""The person page's federation panel through Django's test client: the federation id, the
periods documents received with their totals, the events reported (acknowledged from the page),
the purpose the fetch requires, and who sees the panel at all."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pilar.core.models import User
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.exchange.models import (
    Direction,
    ExchangeMessage,
    FederationLink,
    ForeignPeriods,
    MessageStatus,
    ReceivedEvent,
)
from pilar.registry.tests.factories import PersonFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _node(settings: Any, tmp_path: Path) -> None:
    settings.PILAR_NODE_CODE = "MX-IMSS"
    settings.PILAR_NODE_ROLE = "institute"
    settings.PILAR_KEYS_DIR = tmp_path / "keys"


def signed_in(user: User, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


def text_of(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def gather_row(person: Any, direction: str = Direction.OUT, **extra: Any) -> ExchangeMessage:
    return ExchangeMessage.objects.create(
        direction=direction,
        message_id=str(uuid.uuid4()),
        sender="MX-IMSS",
        receiver="MX-HUB",
        action="periods-gather",
        purpose="totalisation",
        status=MessageStatus.ANSWERED,
        person=person,
        **extra,
    )


P5000 = {
    "type": "P5000",
    "institution": {"code": "MX-ISSSTECALI", "name": "ISSSTECALI", "country": "MX"},
    "person": {"fed_id": "FED-7Q2M4K9X3B1C5D6E8F0G2H4J6K"},
    "periods": [
        {
            "from": "1998-02-01",
            "to": "2004-06-30",
            "type": "employment",
            "days": 2342,
            "weeks": 334,
            "salary_basis": "412.50",
            "employer": "Gobierno del Estado de Baja California",
        },
        {"from": "2005-01-01", "to": "2006-12-31", "type": "voluntary", "weeks": 104},
    ],
    "totals": {"days": 3072, "weeks": 438, "unit": "week"},
    "as_of": "2026-03-01",
}


def person_with_documents() -> Any:
    person = PersonFactory.create()
    FederationLink.objects.create(person=person, fed_id="FED-7Q2M4K9X3B1C5D6E8F0G2H4J6K")
    row = gather_row(person)
    ForeignPeriods.objects.create(
        person=person,
        member="MX-ISSSTECALI",
        document=P5000,
        signed_response={"signature": "…", "header": {}, "message": {"document": P5000}},
        message=row,
        purpose="totalisation",
    )
    # A superseded document is not shown: the newer one from the same member replaces it.
    ForeignPeriods.objects.create(
        person=person,
        member="MX-ISSSTECALI",
        document={**P5000, "totals": {"days": 1, "weeks": 999, "unit": "week"}},
        signed_response={},
        message=row,
        purpose="totalisation",
        superseded_at=timezone.now(),
    )
    return person


def test_the_panel_shows_the_federation_id_and_the_periods_received() -> None:
    person = person_with_documents()
    officer = signed_in(staff(Role.BENEFITS_OFFICER, username="officer"))

    page = text_of(officer.get(reverse("registry:person_detail", args=[person.pk])))

    assert 'id="federation"' in page
    assert "FED-7Q2M4K9X3B1C5D6E8F0G2H4J6K" in page
    assert "ISSSTECALI" in page
    assert "1998-02-01" in page
    assert "Gobierno del Estado de Baja California" in page
    assert ">438<" in page
    assert ">999<" not in page
    assert reverse("exchange:person_periods_fetch", args=[person.pk]) in page
    assert reverse("exchange:person_institutions", args=[person.pk]) in page


def test_the_panel_reads_in_spanish() -> None:
    person = person_with_documents()
    officer = signed_in(staff(Role.BENEFITS_OFFICER, username="officer"), "es")

    page = text_of(officer.get(reverse("registry:person_detail", args=[person.pk])))

    assert "Otras instituciones" in page
    assert "Periodos de seguro recibidos" in page
    assert "Obtener periodos de seguro" in page


def test_staff_without_exchange_permissions_do_not_see_the_panel() -> None:
    person = person_with_documents()
    case_worker = signed_in(staff(Role.CASE_WORKER, username="case"))

    page = text_of(case_worker.get(reverse("registry:person_detail", args=[person.pk])))

    assert 'id="federation"' not in page
    assert "FED-7Q2M4K9X3B1C5D6E8F0G2H4J6K" not in page


def test_an_auditor_sees_the_panel_without_the_request_forms() -> None:
    person = person_with_documents()
    auditor = signed_in(staff(Role.AUDITOR, username="aud"))

    page = text_of(auditor.get(reverse("registry:person_detail", args=[person.pk])))

    assert "FED-7Q2M4K9X3B1C5D6E8F0G2H4J6K" in page
    assert reverse("exchange:person_periods_fetch", args=[person.pk]) not in page
    assert (
        auditor.post(
            reverse("exchange:person_periods_fetch", args=[person.pk]), {"purpose": "totalisation"}
        ).status_code
        == 403
    )


def test_fetching_periods_without_a_purpose_is_refused_and_sends_nothing() -> None:
    person = PersonFactory.create()
    officer = signed_in(staff(Role.BENEFITS_OFFICER, username="officer"))
    before = ExchangeMessage.objects.count()

    for purpose in ("", "curiosity"):
        response = officer.post(
            reverse("exchange:person_periods_fetch", args=[person.pk]),
            {"purpose": purpose},
            follow=True,
        )
        assert response.status_code == 200
        flashes = [str(message) for message in response.context["messages"]]
        assert flashes, purpose
    assert ExchangeMessage.objects.count() == before
    assert "Choose the purpose of the request" in text_of(
        officer.post(
            reverse("exchange:person_periods_fetch", args=[person.pk]),
            {"purpose": ""},
            follow=True,
        )
    )


def test_a_reported_death_is_acknowledged_from_the_person_page() -> None:
    person = PersonFactory.create()
    row = gather_row(person, direction=Direction.IN)
    event = ReceivedEvent.objects.create(
        sender="MX-ISSSTECALI",
        event_id="EV-1",
        event_type="event.death",
        fed_id="FED-X",
        person=person,
        event_date=timezone.now().date(),
        message=row,
    )
    officer_user = staff(Role.BENEFITS_OFFICER, username="officer")
    officer = signed_in(officer_user)

    page = text_of(officer.get(reverse("registry:person_detail", args=[person.pk])))
    assert "Death reported" in page
    assert reverse("exchange:event_acknowledge", args=[event.pk]) in page

    response = officer.post(reverse("exchange:event_acknowledge", args=[event.pk]))

    assert response.status_code == 302
    assert response["Location"].endswith(
        reverse("registry:person_detail", args=[person.pk]) + "#federation"
    )
    event.refresh_from_db()
    assert event.acknowledged_by == officer_user
    assert event.acknowledged_at is not None


def test_the_api_lists_a_persons_foreign_periods() -> None:
    from pilar.core.auth import token_issue
    from pilar.core.tests.factories import actor

    person = person_with_documents()
    user = staff(Role.BENEFITS_OFFICER, username="officer")
    _token, secret = token_issue(
        actor=actor(Role.ADMINISTRATOR), user=user, role=Role.BENEFITS_OFFICER, name="t", days=1
    )
    client = Client(headers={"Authorization": f"Bearer {secret}"})

    response = client.get(f"/api/v1/persons/{person.pk}/foreign-periods")

    assert response.status_code == 200
    documents = response.json()
    assert [d["member"] for d in documents] == ["MX-ISSSTECALI"]
    assert documents[0]["total_weeks"] == 438
    assert documents[0]["periods"][0]["employer"] == "Gobierno del Estado de Baja California"
    refused = client.post(
        f"/api/v1/persons/{person.pk}/periods/fetch",
        {"purpose": "curiosity"},
        content_type="application/json",
    )
    assert refused.status_code == 422
