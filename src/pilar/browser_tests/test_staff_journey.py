"""A staff member's day in a real browser: sign in, search, open a record, register a person
(first with a wrong CURP, then a right one), find them again; an auditor then finds the
registration in the audit trail. Plus keyboard-only use and the language switch."""

from __future__ import annotations

import datetime
import os
import re
import tempfile
from typing import Any, cast

import pytest
from playwright.sync_api import expect

from pilar.core.identifiers import curp_complete, curp_stem
from pilar.core.roles import Role
from pilar.core.tests.factories import TEST_PASSWORD, staff
from pilar.registry.models import Employment
from pilar.registry.tests.factories import EmployerFactory, EmploymentFactory, person_with_curp

pytestmark = pytest.mark.browser

# Screenshots for a person to look at after a run; they are not compared automatically.
SCREENSHOTS = os.environ.get("PILAR_SCREENSHOT_DIR", tempfile.gettempdir())

NEW_PERSON = {
    "given_names": "José Ángel",
    "paternal_surname": "Núñez",
    "maternal_surname": "Ortega",
    "sex": "M",
    "birth_date": datetime.date(1975, 3, 9),
    "birth_state": "JC",
}


def new_person_curp() -> str:
    stem = curp_stem(**NEW_PERSON)  # type: ignore[arg-type]
    return curp_complete(stem, NEW_PERSON["birth_date"])  # type: ignore[arg-type]


def wrong_check_digit(curp: str) -> str:
    return curp[:-1] + str((int(curp[-1]) + 1) % 10)


def sign_in(page: Any, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Usuario").fill(username)
    page.get_by_label("Contraseña").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bienvenida/o")


def test_staff_journey(page: Any) -> None:
    staff(Role.REGISTRAR, username="registradora", first_name="Lucía", last_name="Ramos")
    staff(Role.AUDITOR, username="auditora", first_name="Elena", last_name="Torres")
    person, curp = person_with_curp()
    employment = cast(
        Employment,
        EmploymentFactory(
            person=person, employer=EmployerFactory(legal_name="Tequilera Los Altos S.A. de C.V.")
        ),
    )
    employment.salaries.create(effective_from=employment.start_date, daily_salary="612.40")

    sign_in(page, "registradora")

    # Search from the home page and open the record.
    quick_search = page.get_by_role("search").get_by_label("CURP, NSS, RFC o nombre")
    quick_search.fill("hernandez")
    quick_search.press("Enter")
    page.get_by_role("link", name="María Guadalupe Hernández López").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("María Guadalupe Hernández López")
    expect(page.locator(".record-header")).to_contain_text(curp)
    expect(page.locator("#access")).to_contain_text("registradora")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-person.png", full_page=True)

    # Register with a CURP whose check digit is wrong: the translated error, next to the field.
    page.get_by_role("navigation", name="Principal").get_by_role(
        "link", name="Registrar persona"
    ).click()
    page.get_by_label("Nombre(s)").fill(NEW_PERSON["given_names"])
    page.get_by_label("Primer apellido").fill(NEW_PERSON["paternal_surname"])
    page.get_by_label("Segundo apellido").fill(NEW_PERSON["maternal_surname"])
    page.get_by_label("Sexo").select_option("M")
    page.get_by_label("Fecha de nacimiento").fill("1975-03-09")
    page.get_by_label("Entidad de nacimiento").select_option("JC")
    curp_input = page.locator("#id_curp")
    curp_input.fill(wrong_check_digit(new_person_curp()))
    page.get_by_role("button", name="Registrar", exact=True).click()
    message = "El dígito verificador de la CURP (último carácter) es incorrecto."
    expect(page.locator(".error-summary")).to_contain_text(message)
    expect(page.locator("#id_curp_error")).to_contain_text(message)
    expect(curp_input).to_have_attribute("aria-invalid", "true")
    # What the clerk typed is kept.
    expect(page.get_by_label("Primer apellido")).to_have_value("Núñez")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-register-errors.png", full_page=True)

    curp_input.fill(new_person_curp())
    page.get_by_role("button", name="Registrar", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("José Ángel Núñez Ortega")
    expect(page.get_by_role("status").first).to_contain_text("La persona ha sido registrada.")

    # Find them with the live search (no Enter: htmx fetches the results as one types).
    page.get_by_role("navigation", name="Principal").get_by_role("link", name="Personas").click()
    page.get_by_label("CURP, NSS, RFC o nombre").press_sequentially("nunez ort", delay=40)
    expect(page.locator("#search-results")).to_contain_text("José Ángel Núñez Ortega")
    expect(page).to_have_url(re.compile(r"[?&]q=nunez"))
    page.screenshot(path=f"{SCREENSHOTS}/pilar-search.png", full_page=True)

    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Iniciar sesión")

    # The auditor finds the registration in the audit trail.
    sign_in(page, "auditora")
    page.get_by_role("navigation", name="Principal").get_by_role(
        "link", name="Bitácora de auditoría"
    ).click()
    page.get_by_label("Acción").fill("person.register")
    page.get_by_role("button", name="Filtrar").click()
    rows = page.locator("table.data-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("registradora")
    expect(rows.first).to_contain_text("Núñez")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-audit.png", full_page=True)


def test_keyboard_only_search(page: Any) -> None:
    staff(Role.REGISTRAR, username="teclado")
    person_with_curp()
    sign_in(page, "teclado")
    page.goto("/persons/")
    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    expect(skip).to_have_text("Saltar al contenido principal")
    for _step in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "id_q":
            break
    else:
        pytest.fail("the search box cannot be reached with the Tab key")
    page.keyboard.type("guadalupe hernandez")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]q=guadalupe"))
    expect(page.locator("#search-results")).to_contain_text("María Guadalupe Hernández López")
    # The focused element is visibly outlined.
    page.keyboard.press("Shift+Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_language_switch(page: Any) -> None:
    staff(Role.REGISTRAR, username="bilingue")
    page.goto("/login/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Iniciar sesión")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_label("Username").fill("bilingue")
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bienvenida/o")
    expect(page.locator("html")).to_have_attribute("lang", "es")


def test_administrator_creates_an_account_that_can_sign_in(page: Any) -> None:
    staff(Role.ADMINISTRATOR, username="administradora", region="DF")
    sign_in(page, "administradora")
    page.get_by_role("navigation", name="Principal").get_by_role("link", name="Personal").click()
    page.get_by_role("link", name="Dar de alta a un servidor público").click()

    page.get_by_label("Usuario").fill("lucia.ramos")
    page.get_by_label("Oficina").select_option("DF-01")
    page.get_by_label("Nombre(s)").fill("Lucía")
    page.get_by_label("Apellidos").fill("Ramos")
    roles = page.get_by_role("group", name="Roles")
    roles.get_by_label("Registrador").check()
    roles.get_by_label("Auditor").check()
    new_password = "Quetzal-maíz-río-2026"  # noqa: S105 — a synthetic test account
    page.get_by_label("Contraseña inicial").fill(new_password)
    page.get_by_label("Repita la contraseña").fill(new_password)
    page.screenshot(path=f"{SCREENSHOTS}/pilar-staff-create.png", full_page=True)
    page.get_by_role("button", name="Crear cuenta").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Lucía Ramos")
    expect(page.get_by_role("status").first).to_contain_text("Se ha creado la cuenta lucia.ramos.")
    expect(page.locator("#roles")).to_contain_text("Registrador")
    expect(page.locator("#history")).to_contain_text("staff.create")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-staff-detail.png", full_page=True)

    page.get_by_role("button", name="Cerrar sesión").click()
    page.get_by_label("Usuario").fill("lucia.ramos")
    page.get_by_label("Contraseña").fill(new_password)
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bienvenida/o, Lucía Ramos")
