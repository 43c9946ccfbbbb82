"""The duplicate warning at the point of entry, in a real browser: a registrar types a person
already registered under a nickname and with the surnames the other way round; record linkage
shows the registered record with why it matches. In one case the registrar acknowledges and
registers anyway; in the other they open the candidate instead and register nothing."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from playwright.sync_api import expect

from pilar.core.actor import Actor
from pilar.core.identifiers import CURP, curp_complete, curp_stem
from pilar.core.roles import Role
from pilar.core.tests.factories import TEST_PASSWORD, staff
from pilar.linkage.models import MatchKey
from pilar.registry import services
from pilar.registry.models import Person
from pilar.registry.validation import IdentifierData, PersonData

pytestmark = pytest.mark.browser

REGISTERED = {
    "given_names": "Francisco Javier",
    "paternal_surname": "Ramírez",
    "maternal_surname": "Soto",
    "sex": "M",
    "birth_date": datetime.date(1979, 4, 21),
    "birth_state": "JC",
    "region": "JC",
}


def registered_person() -> Person:
    stem = curp_stem(
        **{name: value for name, value in REGISTERED.items() if name != "region"}  # type: ignore[arg-type]
    )
    curp = curp_complete(stem, REGISTERED["birth_date"])  # type: ignore[arg-type]
    return services.person_register(
        actor=Actor.system("test", roles=frozenset({Role.REGISTRAR})),
        data=PersonData(**REGISTERED),  # type: ignore[arg-type]
        identifiers=[IdentifierData(CURP, curp)],
    )


def sign_in(page: Any, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Usuario").fill(username)
    page.get_by_label("Contraseña").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bienvenida/o")


def type_the_same_person_differently(page: Any) -> None:
    """Paco for Francisco Javier, the surnames swapped, no accents, no CURP."""
    page.goto("/persons/new/")
    page.get_by_label("Nombre(s)").fill("Paco")
    page.get_by_label("Primer apellido").fill("Soto")
    page.get_by_label("Segundo apellido").fill("Ramirez")
    page.get_by_label("Sexo").select_option("M")
    page.get_by_label("Fecha de nacimiento").fill("1979-04-21")
    page.get_by_label("Entidad de nacimiento").select_option("JC")
    page.get_by_role("button", name="Registrar", exact=True).click()


def expect_the_warning_with_why(page: Any, existing: Person) -> Any:
    panel = page.locator("#possible-duplicates")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("heading", level=2)).to_have_text(
        "Es posible que esta persona ya esté registrada"
    )
    row = panel.locator(f'tr[data-candidate="{existing.pk}"]')
    expect(row).to_contain_text("Francisco Javier Ramírez Soto")
    expect(row.locator(".candidate-agree")).to_contain_text("Apellidos")
    expect(row.locator(".candidate-agree")).to_contain_text("Fecha de nacimiento")
    row.get_by_text("Campo por campo").click()
    expect(row).to_contain_text("coinciden, en el otro orden")
    expect(row).to_contain_text("coincide el nombre principal")
    return row


def test_registrar_acknowledges_the_warning_and_registers(page: Any) -> None:
    staff(Role.REGISTRAR, username="registradora")
    existing = registered_person()
    sign_in(page, "registradora")

    type_the_same_person_differently(page)

    expect_the_warning_with_why(page, existing)
    assert Person.objects.count() == 1
    # What was typed is kept for the second submission.
    expect(page.get_by_label("Nombre(s)")).to_have_value("Paco")
    page.get_by_label("He revisado estos registros; registrar de todos modos").check()
    page.get_by_role("button", name="Registrar", exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Paco Soto Ramirez")
    expect(page.get_by_role("status").first).to_contain_text("La persona ha sido registrada.")
    new = Person.objects.exclude(pk=existing.pk).get()
    assert MatchKey.objects.filter(person=new).exists()


def test_registrar_opens_the_candidate_instead(page: Any) -> None:
    staff(Role.REGISTRAR, username="registrador")
    existing = registered_person()
    sign_in(page, "registrador")

    type_the_same_person_differently(page)
    row = expect_the_warning_with_why(page, existing)

    with page.context.expect_page() as opened:
        row.get_by_role("link", name="Francisco Javier Ramírez Soto").click()
    record = opened.value
    expect(record.get_by_role("heading", level=1)).to_have_text("Francisco Javier Ramírez Soto")
    assert Person.objects.count() == 1
