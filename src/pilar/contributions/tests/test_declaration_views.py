"""The staff declaration screens through Django's test client: the queue and its filters, a
declaration's page as it moves from received to posted (progress, statement, report, lines),
uploads on an employer's behalf, confirmation and withdrawal, the report download, and who may
do what.

The helpers at the top build an employer with workers the registry knows and declaration files
for them; the portal's tests and the browser test use them too.
"""

from __future__ import annotations

import csv
import datetime
import io
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pilar.contributions import services
from pilar.contributions.models import ContributionRecord, Declaration, DeclarationStatus
from pilar.core import jobs
from pilar.core.actor import Actor
from pilar.core.models import User
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.registry.models import Employer, Employment, Person
from pilar.registry.tests.factories import EmployerFactory, EmploymentFactory, person_with_curp

pytestmark = pytest.mark.django_db

HEADER = [
    "curp",
    "apellido_paterno",
    "apellido_materno",
    "nombre",
    "dias",
    "sbc",
    "ausencias",
    "incapacidades",
    "movimiento",
    "fecha_movimiento",
]
# Workers the helpers create: given names, paternal and maternal surnames, daily salary.
WORKERS = (
    ("María Guadalupe", "Hernández", "López", "412.50"),
    ("José Ángel", "Núñez", "Ortega", "655.00"),
    ("Rosa Elena", "Ibarra", "Cota", "350.25"),
)


# --- helpers shared with the portal and browser tests -------------------------------------------


def previous_month(today: datetime.date | None = None) -> datetime.date:
    """The last month that has ended: one every test may declare."""
    first = (today or timezone.localdate()).replace(day=1)
    return (first - datetime.timedelta(days=1)).replace(day=1)


def days_in(period: datetime.date) -> int:
    following = (period.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return (following - period).days


@dataclass(frozen=True)
class Worker:
    person: Person
    curp: str
    given_names: str
    paternal_surname: str
    maternal_surname: str
    daily_salary: str


@dataclass(frozen=True)
class Workforce:
    employer: Employer
    workers: list[Worker]
    period: datetime.date

    def rows(self) -> list[list[str]]:
        """A line per worker, right in every cell: the whole month at the registry's salary."""
        days = str(days_in(self.period))
        return [
            [
                w.curp,
                w.paternal_surname,
                w.maternal_surname,
                w.given_names,
                days,
                w.daily_salary,
                "0",
                "0",
                "",
                "",
            ]
            for w in self.workers
        ]


def workforce(
    *, employer: Employer | None = None, count: int = 2, **employer_fields: Any
) -> Workforce:
    """An active employer whose ``count`` workers are registered with a CURP and employed since
    2020, so that a declaration of the previous month validates."""
    if employer is None:
        employer = EmployerFactory.create(**employer_fields)
    assert employer is not None
    workers = []
    for given, paternal, maternal, salary in WORKERS[:count]:
        person, curp = person_with_curp(
            given_names=given, paternal_surname=paternal, maternal_surname=maternal
        )
        employment: Employment = EmploymentFactory.create(
            person=person, employer=employer, start_date=datetime.date(2020, 1, 6)
        )
        employment.salaries.create(effective_from=employment.start_date, daily_salary=salary)
        workers.append(Worker(person, curp, given, paternal, maternal, salary))
    return Workforce(employer=employer, workers=workers, period=previous_month())


def declaration_csv(rows: list[list[str]], header: list[str] | None = None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header or HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


FORMULA = '=HYPERLINK("http://evil.example","x")'


def rows_with_errors(force: Workforce) -> list[list[str]]:
    """The workforce's lines with two mistakes: a salary written as a spreadsheet formula (row 2)
    and more days than the month has (row 3)."""
    rows = force.rows()
    rows[0][5] = FORMULA
    rows[1][4] = str(days_in(force.period) + 1)
    return rows


def upload_file(name: str, content: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="text/csv")


def signed_in(user: User, language: str = "en") -> Client:
    """A client of ``user`` reading the UI in English, so assertions read naturally."""
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


def htmx(client: Client, url: str, **kwargs: Any) -> Any:
    return client.get(url, headers={"HX-Request": "true"}, **kwargs)


@pytest.fixture(autouse=True)
def declaration_dir(settings: Any, tmp_path: Path) -> Path:
    """Uploaded files go to a directory of the test's own."""
    settings.PILAR_DECLARATION_DIR = tmp_path / "declarations"
    return Path(settings.PILAR_DECLARATION_DIR)


# --- staff helpers ------------------------------------------------------------------------------

QUEUE = reverse("contributions:declaration_queue")
UPLOAD = reverse("contributions:declaration_upload")


def detail_url(declaration_id: int) -> str:
    return reverse("contributions:declaration_detail", args=[declaration_id])


def officer() -> User:
    return staff(Role.COLLECTIONS_OFFICER)


def staff_upload(client: Client, force: Workforce, content: bytes, **fields: str) -> Any:
    data = {
        "employer": force.employer.rfc,
        "period": force.period.strftime("%Y-%m"),
        "kind": "normal",
        "file": upload_file("nomina.csv", content),
        **fields,
    }
    return client.post(UPLOAD, data)


def submitted(force: Workforce, content: bytes, user: User | None = None) -> Declaration:
    actor = Actor.for_user(user or officer(), channel="ui")
    declaration, _created = services.declaration_submit(
        actor=actor,
        employer_id=force.employer.pk,
        period=force.period,
        kind="normal",
        file_name="nomina.csv",
        data=content,
    )
    return declaration


# --- the queue ----------------------------------------------------------------------------------


def test_queue_lists_and_filters_declarations() -> None:
    first = workforce()
    second = workforce(legal_name="Maquiladora del Bajío S.A. de C.V.")
    accepted = submitted(first, declaration_csv(first.rows()))
    refused = submitted(second, declaration_csv(rows_with_errors(second)))
    jobs.run_pending()
    client = signed_in(officer())

    page = client.get(QUEUE)
    assert page.status_code == 200
    text = page.content.decode()
    assert first.employer.legal_name in text
    assert second.employer.legal_name in text
    assert detail_url(accepted.pk) in text
    assert detail_url(refused.pk) in text

    by_status = client.get(QUEUE, {"status": "rejected"}).content.decode()
    assert detail_url(refused.pk) in by_status
    assert detail_url(accepted.pk) not in by_status

    by_employer = client.get(QUEUE, {"employer": first.employer.rfc}).content.decode()
    assert detail_url(accepted.pk) in by_employer
    assert detail_url(refused.pk) not in by_employer
    by_number = client.get(QUEUE, {"employer": str(second.employer.pk)}).content.decode()
    assert detail_url(refused.pk) in by_number
    assert detail_url(accepted.pk) not in by_number

    other_month = (first.period - datetime.timedelta(days=40)).strftime("%Y-%m")
    assert "No declarations." in client.get(QUEUE, {"period": other_month}).content.decode()
    same_month = client.get(QUEUE, {"period": first.period.strftime("%Y-%m")}).content.decode()
    assert detail_url(accepted.pk) in same_month


def test_queue_filter_mistakes_are_explained() -> None:
    client = signed_in(officer())
    bad_month = client.get(QUEUE, {"period": "2026-13"})
    assert bad_month.status_code == 422
    assert "Write the month as YYYY-MM" in bad_month.content.decode()
    unknown = client.get(QUEUE, {"employer": "XAXX010101000"})
    assert unknown.status_code == 422
    assert "No employer has this RFC or registration number." in unknown.content.decode()


def test_queue_and_navigation_need_the_declaration_permission() -> None:
    assert signed_in(staff(Role.BENEFITS_OFFICER)).get(QUEUE).status_code == 403
    home = signed_in(staff(Role.BENEFITS_OFFICER)).get(reverse("core:home")).content.decode()
    assert QUEUE not in home
    home = signed_in(officer()).get(reverse("core:home")).content.decode()
    assert QUEUE in home


# --- a declaration from upload to posting -------------------------------------------------------


def test_staff_upload_follow_confirm_and_post() -> None:
    force = workforce()
    user = officer()
    client = signed_in(user)
    response = staff_upload(client, force, declaration_csv(force.rows()))
    declaration = Declaration.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail_url(declaration.pk)
    assert declaration.submitted_by == user
    assert declaration.channel == "ui"

    # Received: the page polls its progress URL.
    page = client.get(detail_url(declaration.pk)).content.decode()
    progress_url = reverse("contributions:declaration_progress", args=[declaration.pk])
    assert 'hx-trigger="every 1s"' in page
    assert progress_url in page
    assert "<progress" in page
    assert "The file has been received and is being checked." in page
    poll = htmx(client, progress_url).content.decode()
    assert 'hx-trigger="every 1s"' in poll
    assert "Waiting for its turn" in poll
    # Without htmx the progress URL is the page itself.
    assert client.get(progress_url)["Location"] == detail_url(declaration.pk)

    jobs.run_pending()
    poll = htmx(client, progress_url).content.decode()
    assert "hx-trigger" not in poll
    assert "Summary statement" in poll
    assert "Confirm the declaration" in poll
    assert "Disability and life" in poll
    assert "Housing (INFONAVIT)" in poll
    declaration.refresh_from_db()
    assert declaration.status == DeclarationStatus.VALIDATED
    page = client.get(detail_url(declaration.pk)).content.decode()
    assert f"{declaration.total_due:,.2f}" in page
    assert "Lines to be posted" in page
    assert force.workers[0].given_names in page
    # Staff see the file's fingerprint, the job and a link to the employer.
    assert declaration.file_sha256 in page
    assert "Background job" in page
    assert reverse("registry:employer_detail", args=[force.employer.pk]) in page

    confirmed = client.post(reverse("contributions:declaration_confirm", args=[declaration.pk]))
    assert confirmed["Location"] == detail_url(declaration.pk)
    page = client.get(detail_url(declaration.pk)).content.decode()
    assert "The declaration has been confirmed." in page
    assert 'hx-trigger="every 1s"' in page
    jobs.run_pending()
    poll = htmx(client, progress_url).content.decode()
    assert "hx-trigger" not in poll
    assert "Posted lines" in poll
    declaration.refresh_from_db()
    assert declaration.status == DeclarationStatus.POSTED
    assert declaration.confirmed_by == user
    assert ContributionRecord.objects.filter(declaration=declaration).count() == 2

    # Confirming twice is explained on the page, not an error page.
    again = client.post(
        reverse("contributions:declaration_confirm", args=[declaration.pk]), follow=True
    )
    assert "Only a validated declaration can be confirmed" in again.content.decode()


def test_rejected_declaration_shows_report_and_downloads_escape_formulas() -> None:
    force = workforce()
    client = signed_in(officer())
    declaration = submitted(force, declaration_csv(rows_with_errors(force)))
    jobs.run_pending()
    page = client.get(detail_url(declaration.pk)).content.decode()
    assert "The declaration was rejected" in page
    assert "Validation report" in page
    assert "Days must be between 0 and" in page
    assert "Confirm the declaration" not in page

    report = client.get(reverse("contributions:declaration_report", args=[declaration.pk, "csv"]))
    assert report["Content-Type"].startswith("text/csv")
    assert "attachment" in report["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert rows[0] == ["Row", "Column", "Code", "Severity", "Message", "Value"]
    values = [row[5] for row in rows[1:]]
    assert "'" + FORMULA in values
    assert FORMULA not in values

    workbook = client.get(
        reverse("contributions:declaration_report", args=[declaration.pk, "xlsx"])
    )
    import openpyxl

    sheet = openpyxl.load_workbook(io.BytesIO(workbook.content)).worksheets[0]
    cells = [row[5] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert "'" + FORMULA in cells

    assert (
        client.get(
            reverse("contributions:declaration_report", args=[declaration.pk, "pdf"])
        ).status_code
        == 404
    )


def test_a_correction_shows_what_was_declared_before() -> None:
    force = workforce()
    user = officer()
    client = signed_in(user)
    posted = submitted(force, declaration_csv(force.rows()), user)
    jobs.run_pending()
    services.declaration_confirm(actor=Actor.for_user(user, channel="ui"), declaration_id=posted.pk)
    jobs.run_pending()
    first_worker = ContributionRecord.objects.get(
        declaration=posted, person=force.workers[0].person
    )
    before = first_worker.employer_total + first_worker.worker_total

    rows = [force.rows()[0]]
    rows[0][5] = "500.00"
    response = staff_upload(client, force, declaration_csv(rows), kind="complementary")
    correction = Declaration.objects.exclude(pk=posted.pk).get()
    assert response["Location"] == detail_url(correction.pk)
    jobs.run_pending()
    correction.refresh_from_db()
    assert correction.status == DeclarationStatus.VALIDATED
    page = client.get(detail_url(correction.pk)).content.decode()
    assert "Previously declared" in page
    assert f"{before:,.2f}" in page
    assert "Complementary" in page
    contributions = correction.employer_total + correction.worker_total
    assert correction.total_due == contributions - before
    assert f"{correction.total_due:,.2f}" in page


def test_withdraw_a_validated_declaration() -> None:
    force = workforce()
    client = signed_in(officer())
    declaration = submitted(force, declaration_csv(force.rows()))
    jobs.run_pending()
    response = client.post(
        reverse("contributions:declaration_withdraw", args=[declaration.pk]), follow=True
    )
    text = response.content.decode()
    assert "The declaration has been withdrawn." in text
    assert "This declaration was withdrawn." in text
    declaration.refresh_from_db()
    assert declaration.status == DeclarationStatus.WITHDRAWN


def test_report_pages_come_as_fragments() -> None:
    force = workforce(count=1)
    rows = [force.rows()[0]] + [
        ["GALJ850312HDFRPN0" + str(n % 10), "García", "López", "Juan", "30", "400", "", "", "", ""]
        for n in range(60)
    ]
    declaration = submitted(force, declaration_csv(rows))
    jobs.run_pending()
    client = signed_in(officer())
    fragment = htmx(
        client, detail_url(declaration.pk), data={"fragment": "report", "report_page": "2"}
    )
    text = fragment.content.decode()
    assert text.lstrip().startswith('<section class="panel" id="declaration-report"')
    assert "Page 2" in text


# --- uploads on an employer's behalf ------------------------------------------------------------


def test_staff_upload_mistakes_are_shown_on_the_form() -> None:
    force = workforce()
    client = signed_in(officer())
    content = declaration_csv(force.rows())

    unknown = staff_upload(client, force, content, employer="XAXX010101000")
    assert unknown.status_code == 422
    assert "No employer has this RFC or registration number." in unknown.content.decode()

    no_file = client.post(
        UPLOAD, {"employer": force.employer.rfc, "period": "2026-01", "kind": "normal"}
    )
    assert no_file.status_code == 422
    assert "Choose the declaration file (CSV or XLSX)." in no_file.content.decode()

    future = (timezone.localdate().replace(day=28) + datetime.timedelta(days=10)).strftime("%Y-%m")
    in_future = staff_upload(client, force, content, period=future)
    assert in_future.status_code == 422
    assert "A month that has not started cannot be declared." in in_future.content.decode()

    correction = staff_upload(client, force, content, kind="complementary")
    assert correction.status_code == 422
    assert "There is no posted declaration for this month to correct" in correction.content.decode()
    assert not Declaration.objects.exists()


def test_upload_and_confirm_need_the_submit_permission() -> None:
    force = workforce()
    registrar = signed_in(staff(Role.REGISTRAR))
    assert registrar.get(UPLOAD).status_code == 403
    assert staff_upload(registrar, force, declaration_csv(force.rows())).status_code == 403
    declaration = submitted(force, declaration_csv(force.rows()))
    jobs.run_pending()
    # A registrar reads declarations but has no confirm button and cannot confirm.
    page = registrar.get(detail_url(declaration.pk)).content.decode()
    assert "Summary statement" in page
    assert "Confirm the declaration" not in page
    refused = registrar.post(reverse("contributions:declaration_confirm", args=[declaration.pk]))
    assert refused.status_code == 403
    declaration.refresh_from_db()
    assert declaration.status == DeclarationStatus.VALIDATED


def test_unknown_declaration_is_not_found() -> None:
    client = signed_in(officer())
    assert client.get(detail_url(999_999)).status_code == 404


def test_statement_amounts_match_the_declaration() -> None:
    force = workforce()
    declaration = submitted(force, declaration_csv(force.rows()))
    jobs.run_pending()
    declaration.refresh_from_db()
    page = signed_in(officer()).get(detail_url(declaration.pk)).content.decode()
    mass = sum(Decimal(w.daily_salary) * days_in(force.period) for w in force.workers)
    assert declaration.salary_mass == mass
    assert f"{mass:,.2f}" in page
    assert f"{declaration.employer_total:,.2f}" in page
