"""The review queue in a real browser: a data steward opens the queue, opens a pair, reads the
side-by-side comparison and the match-weight breakdown, decides "same person" and merges the
two records (taking the birth date from the other record), finds both records' identifiers and
work history on the golden record, undoes the merge and finds the records apart again. A second
pair is decided "different persons" and leaves the queue.
"""

from __future__ import annotations

import datetime
import os
import re
import tempfile
from typing import Any

import pytest
from playwright.sync_api import expect

from pilar.core.identifiers import NSS
from pilar.core.roles import Role
from pilar.core.tests.factories import TEST_PASSWORD, staff
from pilar.linkage.models import Merge, PairStatus
from pilar.linkage.tests.review_helpers import full_record, pair_of
from pilar.registry.models import Employment, Person
from pilar.registry.tests.factories import EmployerFactory, PersonFactory

pytestmark = pytest.mark.browser

SCREENSHOTS = os.environ.get("PILAR_SCREENSHOT_DIR", tempfile.gettempdir())


def sign_in(page: Any, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Usuario").fill(username)
    page.get_by_label("Contraseña").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bienvenida/o")


def flash(page: Any) -> Any:
    return page.get_by_role("status").first


def test_a_steward_reviews_merges_and_unmerges_a_duplicate(page: Any) -> None:
    staff(Role.DATA_STEWARD, username="lucia", first_name="Lucía", last_name="Mora")
    golden = full_record("José")
    merged = full_record("Pepe", birth_date=datetime.date(1980, 5, 7))
    Employment.objects.filter(person=golden).update(
        employer=EmployerFactory.create(legal_name="Hilados de Occidente S.A.")
    )
    Employment.objects.filter(person=merged).update(
        employer=EmployerFactory.create(legal_name="Tortillería La Esperanza")
    )
    golden_nss = golden.identifiers.get(scheme=NSS).value
    merged_nss = merged.identifiers.get(scheme=NSS).value
    pair = pair_of(merged, golden, weight=9.5)
    other = PersonFactory.create(given_names="Josefina", birth_date=datetime.date(1980, 7, 5))
    different = pair_of(golden, other, weight=4.0)

    sign_in(page, "lucia")
    page.goto("/linkage/review/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Posibles duplicados por revisar")
    row = page.locator("#review-queue tbody tr").first
    expect(row).to_contain_text("Pepe López Cruz")
    expect(row).to_contain_text("+9,50")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-linkage-queue.png", full_page=True)
    row.get_by_role("link", name=re.compile("^Revisar")).click()

    # The pair: which fields agree, in words, and why the model scored it.
    expect(page.get_by_role("heading", level=1)).to_contain_text("Pepe López Cruz")
    comparison = page.locator("#comparison")
    expect(comparison.locator('tr[data-field="paternal_surname"]')).to_contain_text("Coincide")
    expect(comparison.locator('tr[data-field="given_names"]')).to_contain_text("Difiere")
    expect(comparison.locator('tr[data-field="birth_date"]')).to_contain_text("Parecido")
    breakdown = page.locator("#breakdown")
    expect(breakdown).to_contain_text("Factor de Bayes")
    expect(breakdown).to_contain_text("A priori (λ)")
    expect(breakdown.locator("meter")).to_have_count(6)
    expect(breakdown.locator("tfoot")).to_contain_text("+9,50")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-linkage-pair.png", full_page=True)

    # Same person: merge into José's record, keeping Pepe's birth date.
    page.get_by_role("link", name="Misma persona → fusionar").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Fusionar en el registro maestro")
    page.get_by_label(f"Registro {golden.pk}: José López Cruz").check()
    page.get_by_label(f"1980-05-07 (registro {merged.pk})").check()
    page.get_by_label("Motivo").fill("Misma CURP raíz; acta de nacimiento revisada")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-linkage-merge-form.png", full_page=True)
    page.get_by_role("button", name="Fusionar los registros").click()
    expect(flash(page)).to_contain_text(
        f"El registro {merged.pk} se fusionó en el registro {golden.pk}."
    )
    merge = Merge.objects.get()
    expect(page.locator("#moved")).to_contain_text("filas pasaron al registro maestro")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-linkage-merge.png", full_page=True)

    # The golden record holds both records' identifiers and work history.
    page.get_by_role("link", name=re.compile("^José López Cruz")).first.click()
    expect(page.locator("#merged-records")).to_contain_text(f"Registro {merged.pk}: Pepe")
    identifiers = page.locator("#identifiers")
    expect(identifiers).to_contain_text(golden_nss)
    expect(identifiers).to_contain_text(merged_nss)
    employment = page.locator("#employment")
    expect(employment).to_contain_text("Hilados de Occidente S.A.")
    expect(employment).to_contain_text("Tortillería La Esperanza")
    expect(page.locator("#identity")).to_contain_text(re.compile("7 may 1980", re.I))
    page.screenshot(path=f"{SCREENSHOTS}/pilar-linkage-golden.png", full_page=True)

    # The merged record is still there, pointing at the golden record.
    page.goto(f"/persons/{merged.pk}/")
    expect(page.locator("#merge-banner")).to_contain_text("Este registro se fusionó")
    expect(page.locator("#identifiers")).not_to_contain_text(merged_nss)

    # Undo the merge.
    page.goto(f"/linkage/merges/{merge.pk}/")
    page.locator("details.subform > summary").click()
    page.get_by_label("Motivo").fill("Eran padre e hijo")
    page.get_by_role("button", name="Deshacer la fusión").click()
    expect(flash(page)).to_contain_text("Se deshizo la fusión")
    expect(page.locator("#unmerged-note")).to_contain_text("Eran padre e hijo")

    page.goto(f"/persons/{merged.pk}/")
    expect(page.locator("#merge-banner")).to_have_count(0)
    expect(page.locator(".record-header__badges")).to_contain_text("Activo")
    expect(page.locator("#identifiers")).to_contain_text(merged_nss)
    expect(page.locator("#employment")).to_contain_text("Tortillería La Esperanza")
    page.goto(f"/persons/{golden.pk}/")
    expect(page.locator("#identifiers")).not_to_contain_text(merged_nss)
    expect(page.locator("#employment")).not_to_contain_text("Tortillería La Esperanza")
    expect(page.locator("#identity")).to_contain_text(re.compile("5 jul 1980", re.I))
    assert Person.objects.get(pk=merged.pk).status == "active"
    pair.refresh_from_db()
    assert pair.status == PairStatus.PENDING

    # A different decision: the pair leaves the queue.
    page.goto(f"/linkage/pairs/{different.pk}/")
    page.get_by_label("Nota").fill("Madre e hija con el mismo nombre")
    page.get_by_role("button", name="Personas distintas").click()
    expect(flash(page)).to_contain_text("Se decidió el par: personas distintas.")
    expect(page.locator("#review-queue")).not_to_contain_text("Josefina")
    different.refresh_from_db()
    assert different.status == PairStatus.DIFFERENT
