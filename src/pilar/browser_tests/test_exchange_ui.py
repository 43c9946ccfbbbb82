"""The federation's staff screens in a real browser, on a hub: an administrator (who is also an
auditor, so may open person records) sees the trust list with a registered member, creates an
agreement through the form (first a bad one, refused with precise errors and nothing kept),
publishes the trust list, follows the exchange monitor to a message's signed envelopes, and
finds another institution's insurance periods on a person's page.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from pilar.core.roles import Role
from pilar.core.tests.factories import TEST_PASSWORD, actor, staff
from pilar.exchange.models import (
    Agreement,
    Direction,
    ExchangeMessage,
    ForeignPeriods,
    MessageStatus,
    TrustListVersion,
)
from pilar.registry.tests.factories import PersonFactory

pytestmark = pytest.mark.browser

SCREENSHOTS = os.environ.get("PILAR_SCREENSHOT_DIR", tempfile.gettempdir())


@pytest.fixture
def hub(settings: Any, tmp_path: Path) -> None:
    from pilar.exchange import node, services_trust
    from pilar.exchange.keys import SigningKey

    settings.PILAR_NODE_ROLE = "hub"
    settings.PILAR_NODE_CODE = "MX-HUB"
    settings.PILAR_KEYS_DIR = tmp_path / "keys"
    node.reset_signing_key_cache()
    node.node_keys_init()
    services_trust.member_register(
        actor=actor(Role.ADMINISTRATOR),
        code="MX-IMSS",
        name="Instituto Mexicano del Seguro Social",
        role="institute",
        endpoint="http://127.0.0.1:8101",
        services=["person-search", "insurance-periods", "events"],
        vkeys=[SigningKey.generate("MX-IMSS").vkey],
    )


def sign_in(page: Any, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Usuario").fill(username)
    page.get_by_label("Contraseña").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bienvenida/o")


def flash(page: Any) -> Any:
    return page.get_by_role("status").first


def test_an_administrator_runs_the_hubs_federation_screens(page: Any, hub: None) -> None:
    staff(Role.ADMINISTRATOR, Role.AUDITOR, username="rosa", first_name="Rosa", last_name="Ibarra")
    person = PersonFactory.create(given_names="Juana", paternal_surname="Ríos")
    gather = ExchangeMessage.objects.create(
        direction=Direction.OUT,
        message_id=str(uuid.uuid4()),
        sender="MX-HUB",
        receiver="MX-IMSS",
        action="periods",
        purpose="totalisation",
        status=MessageStatus.ANSWERED,
        person=person,
        envelope={"signature": "…", "header": {"action": "periods"}, "message": {"q": "FED"}},
        response={"signature": "…", "header": {"status": "succ"}, "message": {"ok": True}},
        attempts=1,
        duration_ms=38.2,
    )
    ExchangeMessage.objects.create(
        direction=Direction.IN,
        message_id=str(uuid.uuid4()),
        sender="MX-IMSS",
        receiver="MX-HUB",
        action="index-resolve",
        purpose="verification",
        status=MessageStatus.REFUSED,
        reason_code="rjct.agreement.missing",
        reason_message="No active agreement.",
    )
    ForeignPeriods.objects.create(
        person=person,
        member="MX-IMSS",
        document={
            "type": "P5000",
            "institution": {"code": "MX-IMSS", "name": "IMSS", "country": "MX"},
            "periods": [
                {
                    "from": "1999-03-01",
                    "to": "2010-08-31",
                    "type": "employment",
                    "weeks": 600,
                    "employer": "Hilados de Occidente S.A.",
                }
            ],
            "totals": {"days": 4200, "weeks": 600, "unit": "week"},
            "as_of": "2026-03-01",
        },
        signed_response={},
        message=gather,
        purpose="totalisation",
    )

    sign_in(page, "rosa")
    page.get_by_role("navigation", name="Principal").get_by_role("link", name="Intercambio").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Monitor de intercambio")

    # The trust list: the member registered, this node's key; nothing published yet.
    page.get_by_role("link", name="Lista de confianza").first.click()
    expect(page.locator("#member-list")).to_contain_text("MX-IMSS")
    expect(page.locator("#member-list")).to_contain_text("http://127.0.0.1:8101")
    expect(page.locator("#current-list")).to_contain_text("Aún no se ha publicado")

    # A bad agreement is refused with each problem named, and nothing is kept.
    page.get_by_role("link", name="Convenios").first.click()
    page.get_by_role("link", name="Nuevo convenio").click()
    page.get_by_label("Clave del convenio").fill("AG-0001")
    page.get_by_label("Consumidor").select_option("MX-IMSS")
    page.get_by_label("Servicio").select_option("insurance-periods")
    page.get_by_label("Vigente desde").fill("2026-01-01")
    page.locator('input[name="granted_fields"][value="curp"]').check()
    page.get_by_role("button", name="Crear el convenio").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("curp")
    expect(page.locator(".field--error")).to_have_count(2)
    assert not Agreement.objects.exists()
    page.screenshot(path=f"{SCREENSHOTS}/pilar-exchange-agreement-error.png", full_page=True)

    # Corrected: a purpose, and only fields of the service.
    page.locator('input[name="granted_fields"][value="curp"]').uncheck()
    page.locator('input[name="purposes"][value="totalisation"]').check()
    page.locator('input[name="granted_fields"][value="period.weeks"]').check()
    page.get_by_role("button", name="Crear el convenio").click()
    expect(flash(page)).to_contain_text("Se creó el convenio AG-0001.")
    expect(page.locator("#agreement-fields")).to_contain_text("period.weeks")
    assert Agreement.objects.get().fields == ["period.weeks"]

    # Publishing signs the first trust list, with the member and the agreement.
    page.get_by_role("link", name="Intercambio").first.click()
    page.get_by_role("link", name="Lista de confianza").first.click()
    page.get_by_role("button", name="Publicar una nueva lista de confianza").click()
    expect(flash(page)).to_contain_text("se firmó y se publicó")
    version = TrustListVersion.objects.get()
    expect(page.locator("#trust-serial")).to_have_text(str(version.serial))
    page.screenshot(path=f"{SCREENSHOTS}/pilar-exchange-trust.png", full_page=True)

    # The monitor: both messages; the refused one filtered by status; a message's evidence.
    page.get_by_role("link", name="Monitor de intercambio").first.click()
    expect(page.locator("#message-list tbody tr")).to_have_count(2)
    page.get_by_label("Estado del mensaje").select_option("refused")
    page.get_by_role("button", name="Filtrar").click()
    expect(page.locator("#message-list tbody tr")).to_have_count(1)
    expect(page.locator("#message-list")).to_contain_text("rjct.agreement.missing")
    page.get_by_role("link", name="Limpiar").click()
    page.locator(f'#message-list a[href="/exchange/messages/{gather.pk}/"]').click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("periods: MX-HUB → MX-IMSS")
    expect(page.locator("#delivery")).to_contain_text("38,2 ms")
    expect(page.locator("#request-envelope")).to_contain_text('"q": "FED"')
    page.screenshot(path=f"{SCREENSHOTS}/pilar-exchange-message.png", full_page=True)

    # The person's page: the other institution's periods with their totals.
    page.locator("#delivery, header").get_by_role("link", name=f"Registro {person.pk}").click()
    panel = page.locator("#federation")
    expect(panel).to_contain_text("Periodos de seguro recibidos")
    expect(panel).to_contain_text("Hilados de Occidente S.A.")
    expect(panel).to_contain_text("600")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-exchange-person.png", full_page=True)
