"""The staff account screens through Django's test client: an employer's account and its totals,
recording a payment (and the refusals that change nothing), the portal password, bank files,
the non-filers report and its CSV, registration requests, and who may see what."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any, cast

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pilar.contributions.account_views import previous_month
from pilar.contributions.models import (
    BankImport,
    Declaration,
    Payment,
    PaymentAllocation,
    RegistrationRequest,
)
from pilar.core.models import User
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.portal.models import EmployerUser
from pilar.registry.models import Employer
from pilar.registry.tests.factories import EmployerFactory, EmploymentFactory

pytestmark = pytest.mark.django_db

STRONG_PASSWORD = "Lluvia-de-marzo-2031"


def new_employer(**kwargs: Any) -> Employer:
    return cast(Employer, EmployerFactory(**kwargs))


def signed_in(user: User, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


def collections() -> Client:
    return signed_in(staff(Role.COLLECTIONS_OFFICER))


def today() -> datetime.date:
    return timezone.localdate()


def posted(
    employer: Employer, period: datetime.date, total_due: str, due_date: datetime.date
) -> Declaration:
    """A posted declaration with its statement, made directly: the account reads only these."""
    return Declaration.objects.create(
        employer=employer,
        period=period,
        status="posted",
        total_due=Decimal(total_due),
        due_date=due_date,
        file_name="nomina.csv",
        file_sha256=uuid.uuid4().hex * 2,
        file_size=100,
        file_path="test/nomina.csv",
        channel="ui",
        submitted_by_label="test",
    )


def account_url(employer: Employer) -> str:
    return reverse("accounts:employer_account", args=[employer.pk])


def payment_url(employer: Employer) -> str:
    return reverse("accounts:payment_record", args=[employer.pk])


# --- the account page -------------------------------------------------------------------------


def test_account_totals_follow_the_payments() -> None:
    employer = new_employer()
    last_month = previous_month(today())
    older = posted(
        employer,
        previous_month(last_month),
        "1000.00",
        today() - datetime.timedelta(days=10),
    )
    posted(employer, last_month, "500.00", today() + datetime.timedelta(days=10))
    client = collections()

    response = client.post(
        payment_url(employer),
        {"amount": "600.00", "received_on": today().isoformat(), "reference": "SPEI 1"},
    )
    assert response.status_code == 302
    assert response["Location"] == account_url(employer) + "#payments"

    response = client.get(account_url(employer))
    assert response.status_code == 200
    account = response.context["account"]
    # The oldest debt is paid first: 600 of the 1,000 that is ten days late.
    assert account.total_due == Decimal("1500.00")
    assert account.total_paid == Decimal("600.00")
    assert account.balance == Decimal("900.00")
    assert account.arrears == Decimal("400.00")
    assert account.surcharges == Decimal("5.88")  # 1.47% of 400 for one started month
    assert account.unallocated == Decimal("0.00")
    html = response.content.decode()
    assert "1,500.00" in html
    assert "900.00" in html
    assert "5.88" in html
    assert f'href="/declarations/{older.pk}/"' in html
    assert "SPEI 1" in html

    client.post(payment_url(employer), {"amount": "1000", "received_on": today().isoformat()})
    account = client.get(account_url(employer)).context["account"]
    assert account.total_paid == Decimal("1600.00")
    assert account.balance == Decimal("-100.00")
    assert account.arrears == 0
    assert account.surcharges == 0
    assert account.unallocated == Decimal("100.00")


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"amount": "-5", "received_on": "2024-01-10"}, "amount", "The amount must be positive."),
        (
            {"amount": "10.001", "received_on": "2024-01-10"},
            "amount",
            "An amount has at most two decimals (centavos).",
        ),
        (
            {"amount": "10.00", "received_on": "2999-01-01"},
            "received_on",
            "A payment cannot be received in the future.",
        ),
        ({"amount": "", "received_on": "2024-01-10"}, "amount", "Give the amount received."),
        ({"amount": "diez", "received_on": "2024-01-10"}, "amount", "Enter a number."),
    ],
)
def test_a_refused_payment_changes_nothing(data: dict[str, str], field: str, message: str) -> None:
    employer = new_employer()
    posted(employer, datetime.date(2024, 1, 1), "100.00", datetime.date(2024, 2, 17))
    response = collections().post(payment_url(employer), data)
    assert response.status_code == 422
    form = response.context["payment_form"]
    assert message in form.errors[field]
    assert message in response.content.decode()
    assert not Payment.objects.exists()
    assert not PaymentAllocation.objects.exists()


def test_payment_errors_are_in_spanish_by_default() -> None:
    employer = new_employer()
    response = signed_in(staff(Role.COLLECTIONS_OFFICER), language="es").post(
        payment_url(employer), {"amount": "", "received_on": "2024-01-10"}
    )
    assert response.status_code == 422
    assert "Indique el importe recibido." in response.content.decode()


def test_an_auditor_reads_the_account_but_cannot_record_a_payment() -> None:
    employer = new_employer()
    client = signed_in(staff(Role.AUDITOR))
    response = client.get(account_url(employer))
    assert response.status_code == 200
    assert response.context["payment_form"] is None
    assert response.context["portal_form"] is None
    response = client.post(payment_url(employer), {"amount": "10", "received_on": "2024-01-10"})
    assert response.status_code == 403
    assert not Payment.objects.exists()


def test_a_registrar_may_not_open_accounts() -> None:
    employer = new_employer()
    client = signed_in(staff(Role.REGISTRAR))
    for url in (
        reverse("accounts:index"),
        account_url(employer),
        reverse("accounts:bank_imports"),
        reverse("accounts:non_filers"),
        reverse("accounts:non_filers_csv"),
    ):
        assert client.get(url).status_code == 403, url
    response = client.post(payment_url(employer), {"amount": "10", "received_on": "2024-01-10"})
    assert response.status_code == 403


def test_an_unknown_employer_is_not_found() -> None:
    response = collections().get(reverse("accounts:employer_account", args=[999_999]))
    assert response.status_code == 404


def test_the_account_is_linked_from_the_nav_and_the_employer_page() -> None:
    employer = new_employer()
    client = collections()
    html = client.get(reverse("registry:employer_detail", args=[employer.pk])).content.decode()
    assert f'href="{account_url(employer)}"' in html
    assert f'href="{reverse("accounts:index")}"' in html
    registrar_html = (
        signed_in(staff(Role.REGISTRAR))
        .get(reverse("registry:employer_detail", args=[employer.pk]))
        .content.decode()
    )
    assert account_url(employer) not in registrar_html
    assert reverse("accounts:index") not in registrar_html


def test_the_accounts_home_goes_straight_to_an_exact_rfc() -> None:
    employer = new_employer()
    response = collections().get(reverse("accounts:index"), {"q": employer.rfc.lower()})
    assert response.status_code == 302
    assert response["Location"] == account_url(employer)


# --- portal password --------------------------------------------------------------------------


def test_collections_staff_create_and_reset_the_portal_account() -> None:
    employer = new_employer()
    client = collections()
    url = reverse("accounts:portal_account", args=[employer.pk])

    response = client.post(url, {"password": "short", "password_confirmation": "short"})
    assert response.status_code == 422
    assert response.context["portal_form"].errors["password"]
    assert not EmployerUser.objects.exists()

    response = client.post(
        url, {"password": STRONG_PASSWORD, "password_confirmation": STRONG_PASSWORD + "x"}
    )
    assert response.status_code == 422
    assert not EmployerUser.objects.exists()

    response = client.post(
        url, {"password": STRONG_PASSWORD, "password_confirmation": STRONG_PASSWORD}
    )
    assert response.status_code == 302
    account = EmployerUser.objects.select_related("user").get(employer=employer)
    assert account.user.check_password(STRONG_PASSWORD)
    assert employer.rfc in client.get(account_url(employer)).content.decode()

    new_password = STRONG_PASSWORD + "-2"
    client.post(url, {"password": new_password, "password_confirmation": new_password})
    account.user.refresh_from_db()
    assert account.user.check_password(new_password)
    assert EmployerUser.objects.count() == 1


# --- bank files -------------------------------------------------------------------------------


def bank_file(text: str, name: str = "banco.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")


def test_a_bank_file_is_imported_and_applied() -> None:
    first, second = new_employer(), new_employer()
    posted(first, datetime.date(2024, 1, 1), "700.00", datetime.date(2024, 2, 17))
    yesterday = (today() - datetime.timedelta(days=1)).isoformat()
    text = (
        "fecha,importe,referencia,registro_patronal\n"
        f"{yesterday},700.00,REF-1,{first.registration_number}\n"
        f"{yesterday},250.50,REF-2,{second.rfc}\n"
    )
    client = collections()
    response = client.post(reverse("accounts:bank_imports"), {"file": bank_file(text)})
    imported = BankImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:bank_import_detail", args=[imported.pk])
    assert imported.payment_count == 2
    assert imported.total == Decimal("950.50")
    assert Payment.objects.filter(bank_import=imported).count() == 2

    detail = client.get(response["Location"])
    html = detail.content.decode()
    assert first.legal_name in html
    assert second.legal_name in html
    assert "250.50" in html
    assert "banco.csv" in client.get(reverse("accounts:bank_imports")).content.decode()

    account = client.get(account_url(first)).context["account"]
    assert account.balance == 0
    assert account.payments[0].bank_import_id == imported.pk


def test_a_bank_file_with_an_error_imports_nothing() -> None:
    employer = new_employer()
    yesterday = (today() - datetime.timedelta(days=1)).isoformat()
    text = (
        "fecha,importe,referencia,rfc\n"
        f"{yesterday},700.00,REF-1,{employer.rfc}\n"
        f"{yesterday},-3,REF-2,{employer.rfc}\n"
        f"{yesterday},10.00,REF-3,XAXX010101000\n"
    )
    response = collections().post(reverse("accounts:bank_imports"), {"file": bank_file(text)})
    assert response.status_code == 422
    html = response.content.decode()
    assert "Row 3: the amount -3 is not a positive amount." in html
    assert "Row 4: no employer has the RFC or registration number XAXX010101000." in html
    assert not BankImport.objects.exists()
    assert not Payment.objects.exists()


def test_a_bank_file_without_the_columns_is_refused() -> None:
    response = collections().post(
        reverse("accounts:bank_imports"), {"file": bank_file("a,b\n1,2\n")}
    )
    assert response.status_code == 422
    assert "The bank file lacks the columns" in response.content.decode()
    assert not BankImport.objects.exists()


def test_the_same_bank_file_is_imported_once() -> None:
    employer = new_employer()
    text = f"fecha,importe,referencia,rfc\n2024-03-01,100.00,R,{employer.rfc}\n"
    client = collections()
    assert (
        client.post(reverse("accounts:bank_imports"), {"file": bank_file(text)}).status_code == 302
    )
    response = client.post(
        reverse("accounts:bank_imports"), {"file": bank_file(text, name="otra-vez.csv")}
    )
    assert response.status_code == 409
    assert "This bank file was already imported" in response.content.decode()
    assert BankImport.objects.count() == 1
    assert Payment.objects.count() == 1


def test_an_auditor_sees_bank_files_but_cannot_import() -> None:
    client = signed_in(staff(Role.AUDITOR))
    response = client.get(reverse("accounts:bank_imports"))
    assert response.status_code == 200
    assert response.context["form"] is None
    response = client.post(
        reverse("accounts:bank_imports"), {"file": bank_file("fecha,importe,rfc\n")}
    )
    assert response.status_code == 403


# --- non-filers -------------------------------------------------------------------------------


def test_non_filers_lists_employers_with_workers_and_no_declaration() -> None:
    period = previous_month(today())
    silent = new_employer(legal_name="Silenciosa S.A.")
    EmploymentFactory(employer=silent)
    declared = new_employer(legal_name="Cumplida S.A.")
    EmploymentFactory(employer=declared)
    posted(declared, period, "10.00", today())
    without_workers = new_employer(legal_name="Sin Personal S.A.")

    response = collections().get(reverse("accounts:non_filers"))
    assert response.status_code == 200
    assert response.context["period"] == period
    employers = [item.employer for item in response.context["page"].items]
    assert silent in employers
    assert declared not in employers
    assert without_workers not in employers
    html = response.content.decode()
    assert silent.rfc in html
    assert silent.registration_number in html
    assert f"?period={period:%Y-%m}" in html


def test_non_filers_of_a_chosen_month_and_a_mistyped_one() -> None:
    employer = new_employer()
    EmploymentFactory(employer=employer, start_date=datetime.date(2023, 5, 1))
    posted(employer, datetime.date(2024, 1, 1), "10.00", datetime.date(2024, 2, 17))
    client = collections()
    page = client.get(reverse("accounts:non_filers"), {"period": "2024-01"}).context["page"]
    assert employer not in [item.employer for item in page.items]
    page = client.get(reverse("accounts:non_filers"), {"period": "2024-02"}).context["page"]
    assert employer in [item.employer for item in page.items]
    page = client.get(reverse("accounts:non_filers"), {"period": "2023-04"}).context["page"]
    assert employer not in [item.employer for item in page.items]

    response = client.get(reverse("accounts:non_filers"), {"period": "2024-13"})
    assert response.status_code == 422
    assert "Write the month as YYYY-MM" in response.content.decode()


def test_non_filers_csv_escapes_formulas() -> None:
    employer = new_employer(legal_name='=HYPERLINK("http://example.com","Pagar")')
    EmploymentFactory(employer=employer)
    EmploymentFactory(employer=employer)
    response = collections().get(reverse("accounts:non_filers_csv"), {"period": "2024-01"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="pilar-non-filers-2024-01.csv"' in response["Content-Disposition"]
    text = response.content.decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0] == "Legal name,RFC,Registration number,Workers in the month"
    assert lines[1] == (
        f'"\'=HYPERLINK(""http://example.com"",""Pagar"")",{employer.rfc},'
        f"{employer.registration_number},2"
    )


# --- registration requests --------------------------------------------------------------------


def test_registrars_see_open_registration_requests() -> None:
    employer = new_employer()
    declaration = posted(employer, datetime.date(2024, 1, 1), "0", datetime.date(2024, 2, 17))
    RegistrationRequest.objects.create(
        declaration=declaration,
        row=7,
        worker_id="HELM800517MJCRPR09",
        paternal_surname="Hernández",
        given_names="María",
    )
    RegistrationRequest.objects.create(
        declaration=declaration,
        row=8,
        worker_id="RESUELTO00000000X1",
        resolved_at=timezone.now(),
    )
    url = reverse("accounts:registration_requests")
    response = signed_in(staff(Role.REGISTRAR)).get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "HELM800517MJCRPR09" in html
    assert "María" in html
    assert f'href="/declarations/{declaration.pk}/"' in html
    assert "RESUELTO00000000X1" not in html
    # Outside the employer's state, a regional registrar does not see the request.
    other_region = signed_in(staff(Role.REGISTRAR, region="NL")).get(url).content.decode()
    assert "HELM800517MJCRPR09" not in other_region
    assert collections().get(url).status_code == 403
