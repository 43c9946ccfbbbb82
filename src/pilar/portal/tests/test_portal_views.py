"""The employer portal through Django's test client: signing in with the RFC (failures and the
lockout), who may use the portal, one employer never seeing another's declarations, a month's
declaration from a file with errors to the posted statement, the same file recognised, the
templates and the file format page, mistakes on the upload form, workers and account."""

from __future__ import annotations

import csv
import datetime
import io
from typing import Any

import openpyxl
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pilar.contributions import fileformat
from pilar.contributions.models import ContributionRecord, Declaration, DeclarationStatus
from pilar.contributions.tests.test_declaration_views import (
    FORMULA,
    Workforce,
    declaration_csv,
    htmx,
    officer,
    rows_with_errors,
    upload_file,
    workforce,
)
from pilar.core import jobs
from pilar.core.actor import Actor
from pilar.core.models import AuditEvent
from pilar.core.roles import Role
from pilar.core.tests.factories import TEST_PASSWORD, staff
from pilar.portal import services
from pilar.portal.models import EmployerUser

pytestmark = pytest.mark.django_db

LOGIN = reverse("portal:login")
HOME = reverse("portal:home")
UPLOAD = reverse("portal:declaration_upload")


@pytest.fixture(autouse=True)
def declaration_dir(settings: Any, tmp_path: Any) -> None:
    settings.PILAR_DECLARATION_DIR = tmp_path / "declarations"


def portal_account(force: Workforce) -> EmployerUser:
    """The employer's portal account, as collections staff create it."""
    return services.employer_account_set(
        actor=Actor.for_user(officer(), channel="ui"),
        employer_id=force.employer.pk,
        password=TEST_PASSWORD,
    )


def employer_client(force: Workforce, language: str = "en") -> Client:
    account = portal_account(force)
    client = Client(headers={"accept-language": language})
    client.force_login(account.user)
    return client


def detail_url(declaration: Declaration) -> str:
    return reverse("portal:declaration_detail", args=[declaration.pk])


def upload(client: Client, force: Workforce, content: bytes, **fields: Any) -> Any:
    data = {
        "period": force.period.strftime("%Y-%m"),
        "kind": "normal",
        "file": upload_file("nomina.csv", content),
        **fields,
    }
    return client.post(UPLOAD, data)


# --- signing in ---------------------------------------------------------------------------------


def test_sign_in_with_the_rfc_and_sign_out() -> None:
    force = workforce()
    account = portal_account(force)
    client = Client(headers={"accept-language": "en"})
    assert client.get(HOME)["Location"].startswith(LOGIN)

    page = client.get(LOGIN)
    assert page.status_code == 200
    assert "Employer&#x27;s RFC" in page.content.decode()
    response = client.post(
        LOGIN,
        {"rfc": force.employer.rfc.lower(), "password": TEST_PASSWORD, "next": "/portal/workers/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/portal/workers/"
    home = client.get(HOME).content.decode()
    assert force.employer.legal_name in home
    assert force.employer.registration_number in home
    assert AuditEvent.objects.filter(action="auth.login", entity_id=str(account.user.pk)).exists()

    # A "next" off the portal is ignored.
    client.post(reverse("portal:logout"))
    off_site = client.post(
        LOGIN,
        {"rfc": force.employer.rfc, "password": TEST_PASSWORD, "next": "https://evil.example/"},
    )
    assert off_site["Location"] == HOME

    signed_out = client.post(reverse("portal:logout"), follow=True)
    assert "You have signed out." in signed_out.content.decode()
    assert client.get(HOME)["Location"].startswith(LOGIN)


def test_wrong_password_and_lockout_are_explained() -> None:
    force = workforce()
    portal_account(force)
    client = Client(headers={"accept-language": "en"})
    wrong = client.post(LOGIN, {"rfc": force.employer.rfc, "password": "not-the-password"})
    assert wrong.status_code == 422
    assert "The RFC or the password is wrong." in wrong.content.decode()
    unknown = client.post(LOGIN, {"rfc": "XAXX010101000", "password": TEST_PASSWORD})
    assert "The RFC or the password is wrong." in unknown.content.decode()

    for _attempt in range(settings.PILAR_LOCKOUT_ATTEMPTS - 1):
        client.post(LOGIN, {"rfc": force.employer.rfc, "password": "not-the-password"})
    locked = client.post(LOGIN, {"rfc": force.employer.rfc, "password": TEST_PASSWORD})
    text = locked.content.decode()
    assert locked.status_code == 422
    assert "The account is locked" in text
    assert f"Try again in {settings.PILAR_LOCKOUT_MINUTES} min" in text
    assert "_auth_user_id" not in client.session


def test_sign_in_messages_are_in_spanish_by_default() -> None:
    force = workforce()
    portal_account(force)
    client = Client()
    page = client.post(LOGIN, {"rfc": force.employer.rfc, "password": "no"}).content.decode()
    assert 'lang="es"' in page
    assert "El RFC o la contraseña no son correctos." in page
    empty = client.post(LOGIN, {"rfc": "", "password": ""}).content.decode()
    assert "Este campo es obligatorio." in empty


def test_a_poll_after_the_session_ended_sends_the_page_to_the_sign_in() -> None:
    url = reverse("portal:declaration_progress", args=[1])
    response = Client().get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(LOGIN)


def test_staff_accounts_cannot_use_the_portal() -> None:
    client = Client(headers={"accept-language": "en"})
    client.force_login(staff(Role.COLLECTIONS_OFFICER))
    refused = client.get(HOME)
    assert refused.status_code == 403
    assert "Staff accounts cannot use it" in refused.content.decode()
    assert client.get(reverse("portal:declaration_list")).status_code == 403
    # A staff username is not an RFC: the portal sign-in does not know it.
    user = staff(Role.COLLECTIONS_OFFICER, username="cobranza")
    response = Client().post(LOGIN, {"rfc": user.username, "password": TEST_PASSWORD})
    assert response.status_code == 422


# --- isolation ----------------------------------------------------------------------------------


def test_an_employer_cannot_reach_another_employers_declaration() -> None:
    mine = workforce()
    theirs = workforce(legal_name="Otra Empresa S.A. de C.V.")
    their_client = employer_client(theirs)
    upload(their_client, theirs, declaration_csv(rows_with_errors(theirs)))
    jobs.run_pending()
    declaration = Declaration.objects.get()
    client = employer_client(mine)

    for name, args in (
        ("declaration_detail", [declaration.pk]),
        ("declaration_progress", [declaration.pk]),
        ("declaration_report", [declaration.pk, "csv"]),
    ):
        response = client.get(reverse(f"portal:{name}", args=args), headers={"HX-Request": "true"})
        assert response.status_code == 404, name
        assert theirs.employer.legal_name not in response.content.decode()
    for name in ("declaration_confirm", "declaration_withdraw"):
        assert client.post(reverse(f"portal:{name}", args=[declaration.pk])).status_code == 404
    declaration.refresh_from_db()
    assert declaration.status == DeclarationStatus.REJECTED
    listing = client.get(reverse("portal:declaration_list")).content.decode()
    assert detail_url(declaration) not in listing
    # The owner does see it.
    assert their_client.get(detail_url(declaration)).status_code == 200


# --- a month's declaration ----------------------------------------------------------------------


def test_from_a_file_with_errors_to_the_posted_statement() -> None:
    force = workforce()
    client = employer_client(force)

    first = upload(client, force, declaration_csv(rows_with_errors(force)))
    rejected = Declaration.objects.get()
    assert first["Location"] == detail_url(rejected)
    assert rejected.channel == "portal"
    assert rejected.submitted_by_label.startswith("employer:")
    page = client.get(detail_url(rejected)).content.decode()
    assert "<progress" in page
    assert 'hx-trigger="every 1s"' in page
    jobs.run_pending()

    progress = reverse("portal:declaration_progress", args=[rejected.pk])
    report = htmx(client, progress).content.decode()
    assert "hx-trigger" not in report
    assert "The declaration was rejected" in report
    assert "This is not an amount." in report
    assert "Days must be between 0 and" in report
    download = client.get(reverse("portal:declaration_report", args=[rejected.pk, "csv"]))
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert rows[1][:2] == ["2", "Daily contributory salary"]
    assert rows[1][5] == "'" + FORMULA
    workbook = client.get(reverse("portal:declaration_report", args=[rejected.pk, "xlsx"]))
    sheet = openpyxl.load_workbook(io.BytesIO(workbook.content)).worksheets[0]
    assert "'" + FORMULA in [row[5] for row in sheet.iter_rows(values_only=True)]

    fixed = upload(client, force, declaration_csv(force.rows()))
    declaration = Declaration.objects.exclude(pk=rejected.pk).get()
    assert fixed["Location"] == detail_url(declaration)
    jobs.run_pending()
    page = client.get(detail_url(declaration)).content.decode()
    assert "Summary statement" in page
    assert "Confirm the declaration" in page
    assert "Old age" not in page
    assert "Severance at advanced age and old age" in page

    confirmed = client.post(
        reverse("portal:declaration_confirm", args=[declaration.pk]), follow=True
    )
    assert "The declaration has been confirmed." in confirmed.content.decode()
    jobs.run_pending()
    posted = client.get(detail_url(declaration)).content.decode()
    declaration.refresh_from_db()
    assert declaration.status == DeclarationStatus.POSTED
    assert "Posted lines" in posted
    assert "Summary statement" in posted
    assert f"{declaration.total_due:,.2f}" in posted
    for worker in force.workers:
        assert worker.given_names in posted
    assert ContributionRecord.objects.filter(declaration=declaration).count() == len(force.workers)
    # Employers see no link into staff pages, nor the background job.
    assert "/persons/" not in posted
    assert "/employers/" not in posted
    assert "Background job" not in posted

    account = client.get(reverse("portal:account")).content.decode()
    assert f"{declaration.total_due:,.2f}" in account
    assert detail_url(declaration) in account


def test_the_same_file_is_recognised() -> None:
    force = workforce()
    client = employer_client(force)
    content = declaration_csv(force.rows())
    upload(client, force, content)
    jobs.run_pending()
    earlier = Declaration.objects.get()
    again = upload(client, force, content)
    assert again["Location"] == detail_url(earlier)
    assert Declaration.objects.count() == 1
    page = client.get(again["Location"]).content.decode()
    assert f"as declaration {earlier.pk}. It is not processed twice" in page


def test_withdraw_then_upload_again() -> None:
    force = workforce()
    client = employer_client(force)
    upload(client, force, declaration_csv(force.rows()))
    jobs.run_pending()
    declaration = Declaration.objects.get()
    client.post(reverse("portal:declaration_withdraw", args=[declaration.pk]))
    declaration.refresh_from_db()
    assert declaration.status == DeclarationStatus.WITHDRAWN
    listing = client.get(reverse("portal:declaration_list"), {"status": "withdrawn"})
    assert detail_url(declaration) in listing.content.decode()
    assert (
        "No declarations."
        in client.get(reverse("portal:declaration_list"), {"status": "posted"}).content.decode()
    )


# --- upload mistakes ----------------------------------------------------------------------------


def test_upload_mistakes_are_shown_on_the_form() -> None:
    force = workforce()
    client = employer_client(force)
    content = declaration_csv(force.rows())

    no_file = client.post(UPLOAD, {"period": force.period.strftime("%Y-%m"), "kind": "normal"})
    assert no_file.status_code == 422
    assert "Choose the declaration file (CSV or XLSX)." in no_file.content.decode()

    bad_month = upload(client, force, content, period="2026-13")
    assert bad_month.status_code == 422
    assert "Write the month as YYYY-MM, for example 2026-01." in bad_month.content.decode()

    today = timezone.localdate()
    next_month = (today.replace(day=28) + datetime.timedelta(days=10)).strftime("%Y-%m")
    future = upload(client, force, content, period=next_month)
    assert future.status_code == 422
    assert "A month that has not started cannot be declared." in future.content.decode()

    empty = upload(client, force, b"")
    assert empty.status_code == 422

    bad_kind = upload(client, force, content, kind="annual")
    assert bad_kind.status_code == 422
    assert not Declaration.objects.exists()


def test_upload_mistakes_are_in_spanish_by_default() -> None:
    force = workforce()
    client = employer_client(force, language="es")
    no_file = client.post(UPLOAD, {"period": "2026-13", "kind": "normal"}).content.decode()
    assert "Elija el archivo de la declaración (CSV o XLSX)." in no_file
    assert "Escriba el mes como AAAA-MM, por ejemplo 2026-01." in no_file


def test_a_garbage_file_is_rejected_with_its_reason() -> None:
    force = workforce()
    client = employer_client(force)
    upload(client, force, b"\x00\x01\x02 not a spreadsheet \xff" * 50)
    jobs.run_pending()
    declaration = Declaration.objects.get()
    assert declaration.status == DeclarationStatus.REJECTED
    page = client.get(detail_url(declaration))
    assert page.status_code == 200
    text = page.content.decode()
    assert "The file could not be read:" in text
    # Nothing to download: the whole file was refused, there is no line-by-line report.
    assert reverse("portal:declaration_report", args=[declaration.pk, "csv"]) not in text


# --- templates, file format, workers, account ---------------------------------------------------


@pytest.mark.parametrize("language", ["es", "en"])
@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_templates_download_and_read_back(language: str, file_format: str) -> None:
    response = Client().get(reverse("portal:template_download", args=[language, file_format]))
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    parsed = fileformat.read_declaration(response.content, filename=f"template.{file_format}")
    assert parsed.rows == 2
    assert not parsed.row_errors
    assert parsed.format == file_format
    headers = [
        c.spanish_header if language == "es" else c.english_header for c in fileformat.COLUMNS
    ]
    if file_format == "csv":
        first_line = response.content.decode("utf-8-sig").splitlines()[0]
        assert first_line.split(",") == headers


def test_unknown_template_is_not_found() -> None:
    assert Client().get(reverse("portal:template_download", args=["fr", "csv"])).status_code == 404
    assert Client().get(reverse("portal:template_download", args=["es", "pdf"])).status_code == 404


def test_file_format_page_lists_every_column() -> None:
    page = Client(headers={"accept-language": "en"}).get(reverse("portal:file_format"))
    text = page.content.decode()
    assert page.status_code == 200
    for column in fileformat.COLUMNS:
        assert column.english_header in text
        assert column.aliases[0] in text
    assert "modificacion" in text
    assert "UTF-8" in text
    assert "25 UMA" in text
    assert f"{fileformat.max_bytes() // (1024 * 1024)} MB" in text


def test_workers_page_lists_identifiers_and_salary() -> None:
    force = workforce()
    client = employer_client(force)
    text = client.get(reverse("portal:workers")).content.decode()
    for worker in force.workers:
        assert worker.curp in text
        assert worker.given_names in text
    assert "655.00" in text
    assert "2020-01-06" in text


def test_home_and_account_of_a_new_employer() -> None:
    force = workforce()
    client = employer_client(force)
    home = client.get(HOME).content.decode()
    assert "No declarations." in home
    account = client.get(reverse("portal:account")).content.decode()
    assert "No declaration has been posted yet." in account
    assert "No payments have been received." in account


def test_portal_account_user_is_not_staff() -> None:
    force = workforce()
    account = portal_account(force)
    assert not account.user.role_codes()
