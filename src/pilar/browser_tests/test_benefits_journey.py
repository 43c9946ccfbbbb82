"""A benefits claim in a real browser, maker–checker: officer A finds a person with enough weeks
of contribution by CURP, enters an old-age claim (the facts asked for come from the scheme
package), previews the inputs, saves, adjudicates and reads the explanation; officer B approves
it from the queue, and the award appears on the person's page. A second claim, by a person with
too few weeks, is denied and its page says why (each unmet condition with its threshold and
article).
"""

from __future__ import annotations

import datetime
import os
import re
import tempfile
from typing import Any, cast

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from pilar.benefits.models import Award, Claim
from pilar.core.roles import Role
from pilar.core.tests.factories import TEST_PASSWORD, staff
from pilar.registry.models import Employment, Person
from pilar.registry.tests.factories import EmployerFactory, EmploymentFactory, person_with_curp

pytestmark = pytest.mark.browser

SCREENSHOTS = os.environ.get("PILAR_SCREENSHOT_DIR", tempfile.gettempdir())


def sign_in(page: Any, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Usuario").fill(username)
    page.get_by_label("Contraseña").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bienvenida/o")


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Iniciar sesión")


def insured(
    given_names: str, *, worked_from: datetime.date, worked_to: datetime.date
) -> tuple[Person, str]:
    """A person of 71 insured under the 1973 law: one closed working period in the registry's
    migrated history, with its daily salary, and no spouse, children or current job."""
    today = timezone.localdate()
    person, curp = person_with_curp(
        given_names=given_names,
        paternal_surname="Ibarra",
        maternal_surname="Cota",
        sex="M",
        birth_date=datetime.date(today.year - 71, 1, 1),
    )
    employment = cast(
        Employment,
        EmploymentFactory(
            person=person,
            employer=EmployerFactory(legal_name="Hilados de Occidente S.A."),
            start_date=worked_from,
            end_date=worked_to,
        ),
    )
    employment.salaries.create(effective_from=worked_from, daily_salary="350.00")
    return person, curp


def main_nav(page: Any) -> Any:
    return page.get_by_role("navigation", name="Principal")


def test_a_claim_is_entered_adjudicated_explained_and_approved(page: Any) -> None:
    staff(Role.BENEFITS_OFFICER, username="ana", first_name="Ana", last_name="Solís")
    staff(Role.BENEFITS_OFFICER, username="beto", first_name="Alberto", last_name="Vega")
    person, curp = insured(
        "Ramón", worked_from=datetime.date(1975, 1, 6), worked_to=datetime.date(2005, 12, 31)
    )

    # Officer A: the claimant by CURP, the benefit, the declared facts, the preview.
    sign_in(page, "ana")
    main_nav(page).get_by_role("link", name="Prestaciones").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Solicitudes de prestaciones")
    page.get_by_role("link", name="Nueva solicitud").click()
    page.get_by_label("CURP, NSS o nombre del solicitante").fill(curp)
    page.get_by_role("button", name="Buscar al solicitante").click()
    expect(page.locator("#claim-step")).to_contain_text("Ramón Ibarra Cota")
    # Choosing the benefit fetches the claim form with htmx, without leaving the page.
    page.get_by_label("Prestación solicitada", exact=True).select_option("imss_1973:vejez")
    expect(page.get_by_role("heading", name=re.compile("3. La solicitud"))).to_be_visible()
    expect(page).to_have_url(re.compile(r"kind=imss_1973%3Avejez|kind=imss_1973:vejez"))
    page.get_by_label("Padres que dependen económicamente").fill("0")
    page.get_by_role("button", name="Revisar los datos").click()
    preview = page.locator("#preview-title-section")
    expect(preview).to_contain_text("Semanas de cotización reconocidas")
    expect(preview).to_contain_text("Historial de cotizaciones")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-claim-preview.png", full_page=True)
    page.get_by_role("button", name="Guardar la solicitud").click()
    expect(page.get_by_role("status").first).to_contain_text("La solicitud ha sido capturada.")
    claim = Claim.objects.get(person=person)

    # Adjudicate and read the explanation.
    page.get_by_role("button", name="Dictaminar").click()
    expect(page.get_by_role("status").first).to_contain_text("dictaminada: procede")
    decision = page.locator("article.panel").first
    expect(decision).to_contain_text("Cómo se decidió, paso a paso")
    expect(decision).to_contain_text("En espera de otro servidor público")
    expect(decision).to_contain_text("por verificar contra el DOF")
    expect(decision.get_by_role("button", name=re.compile("^Aprobar"))).to_have_count(0)
    # Sub-steps fold away in <details>; opening one shows how a value was obtained.
    steps = decision.locator("ol.explanation > li > details > summary").first
    steps.click()
    expect(decision.locator("ol.explanation details[open]").first).to_be_visible()
    page.screenshot(path=f"{SCREENSHOTS}/pilar-claim-decided.png", full_page=True)
    sign_out(page)

    # Officer B finds it marked in the queue and approves it.
    sign_in(page, "beto")
    main_nav(page).get_by_role("link", name="Prestaciones").click()
    row = page.locator("table.data-table tbody tr", has_text="Ramón Ibarra Cota")
    expect(row).to_contain_text("Espera su aprobación")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-claims-queue.png", full_page=True)
    row.get_by_role("link", name=str(claim.pk)).click()
    page.get_by_role("button", name=re.compile("^Aprobar")).click()
    expect(page.get_by_role("status").first).to_contain_text("El dictamen ha sido aprobado")
    award = Award.objects.get(claim=claim)
    page.get_by_role("link", name=f"Pensión {award.pk}").click()
    expect(page.get_by_role("heading", name="Historial de cálculos")).to_be_visible()
    expect(page.locator("table.data-table")).to_contain_text(award.package_version)
    page.screenshot(path=f"{SCREENSHOTS}/pilar-award.png", full_page=True)

    # The award is on the person's page.
    page.goto(f"/persons/{person.pk}/")
    section = page.locator("#benefits")
    expect(section).to_contain_text(f"Pensión {award.pk}")
    expect(section).to_contain_text("Pensión de vejez")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-person-benefits.png", full_page=True)


def test_a_denied_claim_says_why(page: Any) -> None:
    staff(Role.BENEFITS_OFFICER, username="ana")
    # Three years of work: about 156 weeks, far from the 500 the 1973 law requires.
    person, _curp = insured(
        "Jacinto", worked_from=datetime.date(1990, 1, 1), worked_to=datetime.date(1992, 12, 31)
    )
    sign_in(page, "ana")
    page.goto(f"/benefits/claims/new/?person={person.pk}&kind=imss_1973:vejez")
    page.get_by_label("Padres que dependen económicamente").fill("0")
    page.get_by_role("button", name="Revisar los datos").click()
    page.get_by_role("button", name="Guardar la solicitud").click()
    page.get_by_role("button", name="Dictaminar").click()
    expect(page.get_by_role("status").first).to_contain_text("dictaminada: no procede")
    why_not = page.locator(".warning-panel", has_text="Por qué no procede")
    expect(why_not).to_contain_text(
        re.compile(r"Semanas de cotización reconocidas: \d+ semanas; se requieren 500 semanas")
    )
    expect(why_not).to_contain_text("LSS 1973 art. 138")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-claim-denied.png", full_page=True)

    # The same page in English.
    page.get_by_role("button", name="English").click()
    expect(page.locator(".warning-panel", has_text="Why not")).to_contain_text(
        re.compile(r"Recognised weeks of contribution: \d+ weeks; 500 weeks required")
    )
