"""An employer's month in a real browser: sign in to the portal with the RFC, upload a payroll
file with mistakes, read the validation report while the page follows the processing by itself,
download the report, upload the corrected file, confirm the statement and see it posted. A
registrar then finds the posted month in a worker's work history.

The live server shares the test's in-memory database, so the background jobs are run from the
test thread (``jobs.run_pending``) while the page polls for the outcome.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from pilar.contributions.models import Declaration, DeclarationStatus
from pilar.contributions.tests.test_declaration_views import (
    FORMULA,
    declaration_csv,
    rows_with_errors,
    workforce,
)
from pilar.core import jobs
from pilar.core.actor import Actor
from pilar.core.roles import Role
from pilar.core.tests.factories import TEST_PASSWORD, staff
from pilar.portal import services

pytestmark = pytest.mark.browser

SCREENSHOTS = os.environ.get("PILAR_SCREENSHOT_DIR", tempfile.gettempdir())


@pytest.fixture(autouse=True)
def declaration_dir(settings: Any, tmp_path: Path) -> None:
    settings.PILAR_DECLARATION_DIR = tmp_path / "declarations"


def upload(page: Any, month: str, name: str, content: bytes) -> None:
    page.get_by_role("navigation", name="Principal").get_by_role(
        "link", name="Cargar una declaración"
    ).click()
    page.get_by_label("Mes declarado").fill(month)
    page.get_by_label("Tipo de declaración").select_option("normal")
    page.get_by_label("Archivo (CSV o XLSX)").set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": content}
    )
    page.get_by_role("button", name="Cargar", exact=True).click()


def test_employer_declares_a_month(page: Any) -> None:
    force = workforce(legal_name="Tequilera Los Altos S.A. de C.V.")
    officer = staff(Role.COLLECTIONS_OFFICER, username="cobranza")
    services.employer_account_set(
        actor=Actor.for_user(officer, channel="ui"),
        employer_id=force.employer.pk,
        password=TEST_PASSWORD,
    )
    staff(Role.REGISTRAR, username="registradora")
    month = force.period.strftime("%Y-%m")

    # Sign in with the RFC: a wrong password first.
    page.goto("/portal/")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Iniciar sesión en el portal patronal"
    )
    page.get_by_label("RFC del patrón").fill(force.employer.rfc)
    page.get_by_label("Contraseña").fill("no-es-la-contraseña")
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.locator(".error-summary")).to_contain_text(
        "El RFC o la contraseña no son correctos."
    )
    page.get_by_label("Contraseña").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tequilera Los Altos S.A. de C.V.")

    # A file with a formula for a salary and too many days: rejected, with a report.
    upload(page, month, "nomina-octubre.csv", declaration_csv(rows_with_errors(force)))
    expect(page.locator("#declaration-body progress")).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text("El archivo ha sido recibido")
    jobs.run_pending()
    body = page.locator("#declaration-body")
    expect(body).to_contain_text("La declaración fue rechazada")
    expect(page.locator("#declaration-body progress")).to_have_count(0)
    report = page.locator("#declaration-report")
    expect(report).to_contain_text("Los días deben estar entre 0 y")
    expect(report).to_contain_text("Esto no es un importe.")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-portal-report.png", full_page=True)

    with page.expect_download() as download_info:
        report.get_by_role("link", name="CSV").click()
    download = download_info.value
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "Fila"
    assert "'" + FORMULA in [row[5] for row in rows[1:]]

    # The corrected file: a statement to confirm.
    upload(page, month, "nomina-octubre-corregida.csv", declaration_csv(force.rows()))
    jobs.run_pending()
    expect(page.locator("#declaration-statement")).to_contain_text("Liquidación")
    expect(page.locator("#declaration-statement")).to_contain_text("Invalidez y vida")
    expect(page.locator("#declaration-lines")).to_contain_text("José Ángel Núñez Ortega")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-portal-statement.png", full_page=True)
    page.get_by_role("button", name="Confirmar la declaración").click()
    expect(page.get_by_role("status").first).to_contain_text("La declaración ha sido confirmada.")
    jobs.run_pending()
    expect(page.locator("#declaration-lines")).to_contain_text("Líneas aplicadas")
    expect(body).to_contain_text("Aplicada el")
    expect(page.locator("#declaration-body progress")).to_have_count(0)
    declaration = Declaration.objects.get(status=DeclarationStatus.POSTED)
    expect(page.locator("#declaration-statement")).to_contain_text(f"{declaration.total_due:,.2f}")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-portal-posted.png", full_page=True)

    nav = page.get_by_role("navigation", name="Principal")
    nav.get_by_role("link", name="Cuenta").click()
    expect(page.locator("main")).to_contain_text(f"{declaration.total_due:,.2f}")
    nav.get_by_role("link", name="Trabajadores").click()
    expect(page.locator("main")).to_contain_text(force.workers[0].curp)
    nav.get_by_role("link", name="Formato de archivo").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Formato del archivo de declaración")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-portal-format.png", full_page=True)
    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Iniciar sesión en el portal patronal"
    )

    # A registrar sees both uploads in the queue, and the posted month in a worker's work
    # history, which links back to the declaration.
    worker = force.workers[1]
    page.goto("/login/")
    page.get_by_label("Usuario").fill("registradora")
    page.get_by_label("Contraseña").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()
    page.get_by_role("navigation", name="Principal").get_by_role(
        "link", name="Declaraciones"
    ).click()
    expect(page.locator("table.data-table tbody tr")).to_have_count(2)
    expect(page.locator("table.data-table")).to_contain_text("Rechazada: tiene errores")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-declaration-queue.png", full_page=True)
    page.goto(f"/persons/{worker.person.pk}/")
    history = page.locator("#work-history")
    expect(history).to_contain_text(month)
    expect(history).to_contain_text("Tequilera Los Altos S.A. de C.V.")
    expect(history).to_contain_text(worker.daily_salary)
    page.screenshot(path=f"{SCREENSHOTS}/pilar-work-history.png", full_page=True)
    history.get_by_role("link", name=f"Núm. {declaration.pk}").click()
    expect(page.locator("#declaration-body")).to_contain_text("Aplicada el")
    expect(page.locator("#declaration-file")).to_contain_text("Tarea en segundo plano")
    page.screenshot(path=f"{SCREENSHOTS}/pilar-staff-declaration.png", full_page=True)
