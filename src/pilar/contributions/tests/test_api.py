"""The contributions REST API end to end: real URLs, real tokens, the real database (SQLite or
PostgreSQL) and the real background jobs (run in the test with ``jobs.run_pending``). A
declaration goes from upload through validation, confirmation and posting to the worker's
work history; errors are problem documents with stable codes, and a refused request writes
nothing."""

from __future__ import annotations

import calendar
import datetime
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from pilar.contributions.api import MAX_JSON_LINES
from pilar.contributions.fileformat import CANONICAL
from pilar.contributions.models import BankImport, ContributionRecord, Declaration, Payment
from pilar.core import jobs
from pilar.core.actor import Actor
from pilar.core.auth import token_issue
from pilar.core.models import AccessLogEntry, AuditEvent, User
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.registry.models import Employer, Person
from pilar.registry.tests.factories import EmployerFactory, EmploymentFactory, person_with_curp

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
SYSTEM = Actor.system("test", roles=frozenset({Role.ADMINISTRATOR}))
DECLARATIONS = "/api/v1/declarations"
# Above the minimum wage of any month a test may declare (2026: 315.04).
SALARY = "500.00"


@pytest.fixture(autouse=True)
def _declaration_files(settings: Any, tmp_path: Path) -> None:
    settings.PILAR_DECLARATION_DIR = tmp_path / "declarations"


class Api:
    """A test client that authenticates with a real API token."""

    def __init__(self, user: User, role: str, language: str = "en") -> None:
        self.user = user
        _token, raw = token_issue(actor=SYSTEM, user=user, role=role, name="tests")
        self.headers = {"Authorization": f"Bearer {raw}", "Accept-Language": language}
        self.client = Client()

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params, headers=self.headers)

    def post(self, path: str, body: Any = None, *, raw: str | None = None) -> Any:
        content = raw if raw is not None else ("" if body is None else json.dumps(body))
        return self.client.post(
            path, content, content_type="application/json", headers=self.headers
        )

    def upload(self, path: str, fields: dict[str, Any]) -> Any:
        # A dict body is sent as multipart/form-data.
        return self.client.post(path, fields, headers=self.headers)


def collections(language: str = "en") -> Api:
    return Api(staff(Role.COLLECTIONS_OFFICER), Role.COLLECTIONS_OFFICER, language)


def registrar() -> Api:
    return Api(staff(Role.REGISTRAR), Role.REGISTRAR)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    document: dict[str, Any] = response.json()
    assert document["status"] == status
    assert document["code"] == code
    assert document["type"] == f"https://pilar.example/problems/{code}"
    assert document["title"]
    assert document["instance"] == response.wsgi_request.path
    return document


def errors_of(response: Any) -> dict[str, list[str]]:
    """``{field: [code, ...]}`` from a problem document."""
    found: dict[str, list[str]] = {}
    for item in response.json().get("errors", []):
        found.setdefault(item["field"], []).append(item["code"])
    return found


def last_month() -> datetime.date:
    return (timezone.localdate().replace(day=1) - datetime.timedelta(days=1)).replace(day=1)


def month_text(period: datetime.date) -> str:
    return period.strftime("%Y-%m")


def days_in(period: datetime.date) -> int:
    return calendar.monthrange(period.year, period.month)[1]


class Payroll:
    """An active employer with workers the registry knows: a CURP, an open employment that
    started before the declared month, and the names the registry holds."""

    def __init__(self, workers: int = 2) -> None:
        self.employer: Employer = EmployerFactory.create()
        self.period = last_month()
        self.workers: list[tuple[Person, str]] = []
        for number in range(workers):
            person, curp = person_with_curp(birth_date=datetime.date(1980 + number, 5, 17))
            EmploymentFactory.create(
                person=person, employer=self.employer, start_date=datetime.date(2020, 1, 6)
            )
            self.workers.append((person, curp))

    def line(self, index: int = 0, **overrides: Any) -> dict[str, Any]:
        person, curp = self.workers[index]
        line: dict[str, Any] = {
            "worker_id": curp,
            "paternal_surname": person.paternal_surname,
            "maternal_surname": person.maternal_surname,
            "given_names": person.given_names,
            "days": days_in(self.period),
            "daily_salary": SALARY,
        }
        line.update(overrides)
        return line

    def body(self, lines: list[dict[str, Any]] | None = None, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "employer_id": self.employer.pk,
            "period": month_text(self.period),
            "kind": "normal",
            "lines": [self.line(i) for i in range(len(self.workers))] if lines is None else lines,
        }
        body.update(overrides)
        return body

    def csv(self) -> bytes:
        rows = [
            "worker_id,paternal_surname,maternal_surname,given_names,days,daily_salary",
            *(
                f"{curp},{p.paternal_surname},{p.maternal_surname},{p.given_names},"
                f"{days_in(self.period)},{SALARY}"
                for p, curp in self.workers
            ),
        ]
        return ("\r\n".join(rows) + "\r\n").encode("utf-8")

    def upload_fields(self, data: bytes | None = None, **overrides: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "employer_id": str(self.employer.pk),
            "period": month_text(self.period),
            "kind": "normal",
            "file": SimpleUploadedFile(
                "nomina.csv", self.csv() if data is None else data, content_type="text/csv"
            ),
        }
        fields.update(overrides)
        # None leaves a field out of the request.
        return {name: value for name, value in fields.items() if value is not None}


def validated(api: Api, payroll: Payroll) -> dict[str, Any]:
    response = api.post(f"{DECLARATIONS}/json", payroll.body())
    assert response.status_code == 202, response.content
    jobs.run_pending()
    document: dict[str, Any] = api.get(f"{DECLARATIONS}/{response.json()['id']}").json()
    assert document["status"] == "validated", document
    return document


def posted(api: Api, payroll: Payroll) -> dict[str, Any]:
    declaration = validated(api, payroll)
    assert api.post(f"{DECLARATIONS}/{declaration['id']}/confirm").status_code == 202
    jobs.run_pending()
    document: dict[str, Any] = api.get(f"{DECLARATIONS}/{declaration['id']}").json()
    assert document["status"] == "posted", document
    return document


# --- upload -----------------------------------------------------------------------------------


def test_an_upload_is_accepted_then_validated_with_its_statement() -> None:
    api, payroll = collections(), Payroll()

    response = api.upload(DECLARATIONS, payroll.upload_fields())

    assert response.status_code == 202, response.content
    received = response.json()
    assert received["status"] == "received"
    assert received["recognised"] is False
    assert received["period"] == month_text(payroll.period)
    assert received["employer"]["id"] == payroll.employer.pk
    assert received["file_name"] == "nomina.csv"
    assert received["statement"] is None
    assert response["Location"] == f"{DECLARATIONS}/{received['id']}"

    assert jobs.run_pending() >= 1
    document = api.get(response["Location"]).json()
    assert document["status"] == "validated"
    assert document["progress"] == 100
    assert document["counts"] == {"lines": 2, "errors": 0, "warnings": 0, "workers": 2}
    assert document["file_format"] == "csv"
    assert document["rejection_code"] is None
    assert (
        document["due_date"]
        == (payroll.period + datetime.timedelta(days=40)).replace(day=17).isoformat()
    )
    statement = document["statement"]
    assert statement["workers"] == 2
    branches = {item["branch"]: item for item in statement["branches"]}
    assert "disability_life" in branches
    # Money is a decimal string, and the branches add up to the totals.
    assert all(isinstance(item["employer"], str) for item in statement["branches"])
    assert sum(Decimal(item["employer"]) for item in statement["branches"]) == Decimal(
        statement["employer_total"]
    )
    assert sum(Decimal(item["worker"]) for item in statement["branches"]) == Decimal(
        statement["worker_total"]
    )
    assert Decimal(statement["total_due"]) == Decimal(statement["employer_total"]) + Decimal(
        statement["worker_total"]
    )
    assert Decimal(statement["total_due"]) > 0

    issues = api.get(f"{response['Location']}/issues").json()
    assert issues["items"] == []
    assert issues["total"] == 0
    lines = api.get(f"{response['Location']}/lines").json()
    assert lines["total"] == 2
    first = lines["items"][0]
    assert first["row"] == 2
    assert first["worker_id"] == payroll.workers[0][1]
    assert first["daily_salary"] == SALARY
    assert first["days"] == days_in(payroll.period)
    assert {share["branch"] for share in first["shares"]} == set(branches)


def test_the_same_file_again_is_recognised_not_processed_twice() -> None:
    api, payroll = collections(), Payroll()
    first = api.upload(DECLARATIONS, payroll.upload_fields())
    assert first.status_code == 202
    jobs.run_pending()

    again = api.upload(DECLARATIONS, payroll.upload_fields())

    assert again.status_code == 200, again.content
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["recognised"] is True
    assert again.json()["status"] == "validated"
    assert Declaration.objects.count() == 1


def test_a_file_that_is_not_a_declaration_is_rejected_with_a_code() -> None:
    api, payroll = collections(), Payroll()
    response = api.upload(DECLARATIONS, payroll.upload_fields(b"nombre,edad\r\nAna,30\r\n"))
    assert response.status_code == 202
    jobs.run_pending()

    document = api.get(response["Location"]).json()

    assert document["status"] == "rejected"
    assert document["rejection_code"]
    assert document["rejection_message"]
    assert document["statement"] is None


# --- JSON declarations --------------------------------------------------------------------------


def test_a_json_declaration_is_kept_as_a_canonical_csv_file(settings: Any) -> None:
    api, payroll = collections(), Payroll(workers=1)
    body = payroll.body([payroll.line(0, daily_salary="500.50")])
    # The salary as a JSON number: read as an exact decimal, written as sent.
    raw = json.dumps(body).replace('"500.50"', "500.50")

    response = api.post(f"{DECLARATIONS}/json", raw=raw)

    assert response.status_code == 202, response.content
    declaration = Declaration.objects.get(pk=response.json()["id"])
    kept = (Path(settings.PILAR_DECLARATION_DIR) / declaration.file_path).read_bytes()
    header, line = kept.decode("utf-8").splitlines()
    assert header.split(",") == list(CANONICAL)
    assert line.split(",")[:6] == [
        payroll.workers[0][1],
        "Hernández",
        "López",
        "María Guadalupe",
        str(days_in(payroll.period)),
        "500.50",
    ]
    # The same lines again are the same file.
    again = api.post(f"{DECLARATIONS}/json", raw=raw)
    assert again.status_code == 200
    assert again.json()["recognised"] is True


def test_a_json_declaration_with_an_invalid_line_is_rejected_with_its_issues() -> None:
    api, payroll = collections(), Payroll()
    body = payroll.body([payroll.line(0, absence_days=-1), payroll.line(1, daily_salary="100.00")])

    response = api.post(f"{DECLARATIONS}/json", body)
    assert response.status_code == 202, response.content
    jobs.run_pending()

    document = api.get(response["Location"]).json()
    assert document["status"] == "rejected"
    assert document["counts"]["errors"] >= 1
    assert document["statement"] is None
    issues = api.get(f"{response['Location']}/issues").json()
    found = {(item["row"], item["column"], item["code"]) for item in issues["items"]}
    # Row 1 is the header, so lines[0] is row 2 and lines[1] row 3.
    assert (2, "absence_days", "negative") in found
    assert (3, "daily_salary", "salary_below_minimum") in found
    issue = next(item for item in issues["items"] if item["code"] == "salary_below_minimum")
    assert issue["severity"] == "error"
    assert issue["value"] == "100.00"
    assert issue["message"]
    # Nothing of a rejected declaration is staged, and it cannot be confirmed.
    assert api.get(f"{response['Location']}/lines").json()["total"] == 0
    assert_problem(api.post(f"{response['Location']}/confirm"), 409, "conflict")


def test_a_json_declaration_refuses_unknown_fields_and_wrong_types() -> None:
    api, payroll = collections(), Payroll(workers=1)
    body = payroll.body([payroll.line(0, bonus="1", days="many", daily_salary="12.345")])
    body["extra"] = True

    response = api.post(f"{DECLARATIONS}/json", body)

    assert_problem(response, 422, "validation_failed")
    errors = errors_of(response)
    assert errors["extra"] == ["field.unknown"]
    assert errors["lines[0].bonus"] == ["field.unknown"]
    assert errors["lines[0].days"] == ["field.invalid_type"]
    assert errors["lines[0].daily_salary"] == ["field.invalid_decimal"]
    assert Declaration.objects.count() == 0


def test_a_json_declaration_needs_lines_and_has_a_limit() -> None:
    api, payroll = collections(), Payroll(workers=1)

    empty = api.post(f"{DECLARATIONS}/json", payroll.body([]))
    assert_problem(empty, 422, "validation_failed")
    assert errors_of(empty) == {"lines": ["lines.empty"]}

    too_many = api.post(f"{DECLARATIONS}/json", payroll.body([{}] * (MAX_JSON_LINES + 1)))
    assert_problem(too_many, 422, "validation_failed")
    assert errors_of(too_many) == {"lines": ["field.too_many_items"]}
    assert Declaration.objects.count() == 0


def test_a_body_over_the_request_limit_is_a_413(settings: Any) -> None:
    api, payroll = collections(), Payroll(workers=1)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = api.post(f"{DECLARATIONS}/json", payroll.body([payroll.line(0)] * 20))

    assert_problem(response, 413, "request.too_large")
    assert Declaration.objects.count() == 0


# --- confirm, post, withdraw ----------------------------------------------------------------------


def test_confirming_posts_the_declaration_into_the_work_history() -> None:
    api, payroll = collections(), Payroll()
    declaration = validated(api, payroll)
    path = f"{DECLARATIONS}/{declaration['id']}"

    confirmed = api.post(f"{path}/confirm")

    assert confirmed.status_code == 202, confirmed.content
    assert confirmed.json()["status"] == "confirmed"
    assert confirmed.json()["confirmed_by"] == api.user.username
    jobs.run_pending()
    document = api.get(path).json()
    assert document["status"] == "posted"
    assert document["posted_at"]
    assert ContributionRecord.objects.filter(declaration_id=declaration["id"]).count() == 2
    lines = api.get(f"{path}/lines").json()
    assert lines["total"] == 2
    assert lines["items"][0]["superseded"] is False
    assert lines["items"][0]["worker_id"] is None

    # Confirming again is a conflict, and changes nothing.
    again = api.post(f"{path}/confirm")
    assert_problem(again, 409, "conflict")
    assert api.get(path).json()["status"] == "posted"

    # The worker's work history shows the month (read by a registrar: it is a person record).
    reader = registrar()
    person, _curp = payroll.workers[0]
    history = reader.get(f"/api/v1/persons/{person.pk}/work-history", purpose="pension estimate")
    assert history.status_code == 200, history.content
    result = history.json()
    assert result["person_id"] == person.pk
    assert result["counted_days"] == days_in(payroll.period)
    assert result["weeks"] == days_in(payroll.period) // 7
    assert result["superseded"] == []
    (line,) = result["lines"]
    assert line["period"] == month_text(payroll.period)
    assert line["employer"] == {
        "id": payroll.employer.pk,
        "name": payroll.employer.legal_name,
        "registration_number": payroll.employer.registration_number,
    }
    assert line["days"] == days_in(payroll.period)
    assert line["daily_salary"] == SALARY
    assert line["declaration_id"] == declaration["id"]
    assert line["superseded"] is False
    assert Decimal(line["employer_total"]) > 0
    logged = AccessLogEntry.objects.filter(person_id=person.pk, channel="api").get()
    assert logged.purpose == "pension estimate"


def test_a_declaration_can_be_withdrawn_once_before_confirmation() -> None:
    api, payroll = collections(), Payroll()
    declaration = validated(api, payroll)
    path = f"{DECLARATIONS}/{declaration['id']}"

    withdrawn = api.post(f"{path}/withdraw")

    assert withdrawn.status_code == 200, withdrawn.content
    assert withdrawn.json()["status"] == "withdrawn"
    assert_problem(api.post(f"{path}/withdraw"), 409, "conflict")
    assert_problem(api.post(f"{path}/confirm"), 409, "conflict")


# --- lists ------------------------------------------------------------------------------------


def test_declarations_are_listed_with_filters() -> None:
    api = collections()
    first, second = Payroll(workers=1), Payroll(workers=1)
    one = validated(api, first)
    rejected = api.post(f"{DECLARATIONS}/json", second.body([second.line(0, daily_salary="1.00")]))
    jobs.run_pending()

    everything = api.get(DECLARATIONS).json()
    assert everything["total"] == 2
    assert {item["id"] for item in everything["items"]} == {one["id"], rejected.json()["id"]}

    by_status = api.get(DECLARATIONS, status="validated").json()
    assert [item["id"] for item in by_status["items"]] == [one["id"]]
    assert by_status["items"][0]["total_due"] == one["statement"]["total_due"]
    by_employer = api.get(DECLARATIONS, employer_id=second.employer.pk).json()
    assert [item["status"] for item in by_employer["items"]] == ["rejected"]
    by_period = api.get(DECLARATIONS, period=month_text(first.period), page_size=1).json()
    assert by_period["total"] == 2
    assert len(by_period["items"]) == 1
    assert by_period["next"]
    assert api.get(DECLARATIONS, period="2001-01").json()["total"] == 0


def test_list_filters_are_checked() -> None:
    api = collections()
    assert errors_of(api.get(DECLARATIONS, status="lost")) == {"status": ["invalid_choice"]}
    assert errors_of(api.get(DECLARATIONS, period="2026-13")) == {"period": ["period_format"]}
    response = api.get(DECLARATIONS, employer_id="x")
    assert_problem(response, 422, "validation_failed")
    assert errors_of(response) == {"employer_id": ["field.invalid_type"]}


# --- permissions --------------------------------------------------------------------------------


def test_roles_without_the_permission_are_refused_and_nothing_is_written() -> None:
    payroll = Payroll(workers=1)
    reader = registrar()  # may view declarations, not submit them
    before = AuditEvent.objects.count()

    upload = reader.upload(DECLARATIONS, payroll.upload_fields())
    document = assert_problem(upload, 403, "permission_denied")
    assert document["permission"] == "declaration.submit"
    assert_problem(reader.post(f"{DECLARATIONS}/json", payroll.body()), 403, "permission_denied")
    assert_problem(
        reader.post(
            f"/api/v1/employers/{payroll.employer.pk}/payments",
            {"amount": "10.00", "received_on": timezone.localdate().isoformat()},
        ),
        403,
        "permission_denied",
    )
    assert_problem(
        reader.get(f"/api/v1/employers/{payroll.employer.pk}/account"), 403, "permission_denied"
    )
    assert Declaration.objects.count() == 0
    assert Payment.objects.count() == 0
    assert AuditEvent.objects.count() == before
    assert reader.get(DECLARATIONS).status_code == 200

    # Collections officers run declarations but do not read person records.
    officer = collections()
    person, _curp = payroll.workers[0]
    assert_problem(
        officer.get(f"/api/v1/persons/{person.pk}/work-history"), 403, "permission_denied"
    )
    # A registrar of another region does not see the person at all.
    elsewhere = Api(staff(Role.REGISTRAR, region="NL"), Role.REGISTRAR)
    assert_problem(elsewhere.get(f"/api/v1/persons/{person.pk}/work-history"), 404, "not_found")
    assert not AccessLogEntry.objects.exists()


def test_requests_without_a_token_are_refused() -> None:
    response = Client().get(DECLARATIONS)
    assert_problem(response, 401, "authentication_required")


# --- accounts and payments ----------------------------------------------------------------------


def test_a_payment_is_applied_to_the_statement_and_shows_in_the_account() -> None:
    api, payroll = collections(), Payroll()
    declaration = posted(api, payroll)
    due = Decimal(declaration["statement"]["total_due"])
    today = timezone.localdate().isoformat()

    response = api.post(
        f"/api/v1/employers/{payroll.employer.pk}/payments",
        {"amount": "100.50", "received_on": today, "reference": f"D{declaration['id']}"},
    )

    assert response.status_code == 201, response.content
    payment = response.json()
    assert payment["amount"] == "100.50"
    assert payment["source"] == "staff"
    assert payment["allocations"] == [{"declaration_id": declaration["id"], "amount": "100.50"}]
    # A JSON number is read as an exact decimal too.
    as_number = api.post(
        f"/api/v1/employers/{payroll.employer.pk}/payments",
        raw=f'{{"amount": 0.25, "received_on": "{today}"}}',
    )
    assert as_number.json()["amount"] == "0.25"

    account = api.get(f"/api/v1/employers/{payroll.employer.pk}/account").json()
    assert account["employer"]["id"] == payroll.employer.pk
    assert account["as_of"] == today
    (statement,) = account["statements"]
    assert statement["declaration_id"] == declaration["id"]
    assert statement["period"] == month_text(payroll.period)
    assert Decimal(statement["due"]) == due
    assert statement["paid"] == "100.75"
    assert Decimal(statement["outstanding"]) == due - Decimal("100.75")
    assert account["totals"]["paid"] == "100.75"
    assert Decimal(account["totals"]["balance"]) == due - Decimal("100.75")
    assert Decimal(account["totals"]["unallocated"]) == 0
    assert [item["amount"] for item in account["payments"]] == ["0.25", "100.50"]


def test_payment_input_is_checked() -> None:
    api, payroll = collections(), Payroll(workers=0)
    path = f"/api/v1/employers/{payroll.employer.pk}/payments"
    today = timezone.localdate().isoformat()
    tomorrow = (timezone.localdate() + datetime.timedelta(days=1)).isoformat()

    negative = api.post(path, {"amount": "-5", "received_on": today})
    assert errors_of(negative) == {"amount": ["amount_positive"]}
    future = api.post(path, {"amount": "5", "received_on": tomorrow})
    assert errors_of(future) == {"received_on": ["date_future"]}
    wrong = api.post(path, {"amount": "5.001", "received_on": "05/01/2026", "note": "x"})
    assert errors_of(wrong) == {
        "amount": ["field.invalid_decimal"],
        "received_on": ["field.invalid_date"],
        "note": ["field.unknown"],
    }
    unknown = api.post("/api/v1/employers/999999/payments", {"amount": "5", "received_on": today})
    assert_problem(unknown, 404, "not_found")
    assert Payment.objects.count() == 0


def test_a_bank_file_is_imported_once() -> None:
    api, payroll = collections(), Payroll()
    declaration = posted(api, payroll)
    today = timezone.localdate()
    data = (
        "fecha,importe,referencia,registro_patronal\r\n"
        f"{today.isoformat()},250.00,D{declaration['id']},{payroll.employer.registration_number}\r\n"
    ).encode()

    response = api.upload(
        "/api/v1/payments/bank-imports",
        {"file": SimpleUploadedFile("banco.csv", data, content_type="text/csv")},
    )

    assert response.status_code == 201, response.content
    imported = response.json()
    assert imported["payment_count"] == 1
    assert imported["total"] == "250.00"
    assert imported["file_name"] == "banco.csv"
    account = api.get(f"/api/v1/employers/{payroll.employer.pk}/account").json()
    assert account["payments"][0]["source"] == "bank_file"
    assert account["payments"][0]["bank_import_id"] == imported["id"]

    again = api.upload(
        "/api/v1/payments/bank-imports",
        {"file": SimpleUploadedFile("banco.csv", data, content_type="text/csv")},
    )
    assert_problem(again, 409, "conflict")
    assert BankImport.objects.count() == 1


def test_a_bank_file_with_a_bad_row_imports_nothing() -> None:
    api = collections()
    data = b"fecha,importe,referencia,registro_patronal\r\n2026-01-05,abc,,Y999\r\n"

    response = api.upload(
        "/api/v1/payments/bank-imports",
        {"file": SimpleUploadedFile("banco.csv", data, content_type="text/csv")},
    )

    assert_problem(response, 422, "validation_failed")
    assert set(errors_of(response)) == {"file"}
    assert set(errors_of(response)["file"]) == {"row_invalid"}
    missing = api.upload("/api/v1/payments/bank-imports", {})
    assert errors_of(missing) == {"file": ["required"]}
    assert Payment.objects.count() == 0


def test_non_filers_are_employers_with_workers_and_no_declaration() -> None:
    api = collections()
    declared, silent = Payroll(workers=1), Payroll(workers=2)
    validated(api, declared)

    response = api.get("/api/v1/non-filers", period=month_text(declared.period))

    assert response.status_code == 200, response.content
    items = response.json()["items"]
    assert [item["employer"]["id"] for item in items] == [silent.employer.pk]
    assert items[0]["active_workers"] == 2
    assert errors_of(api.get("/api/v1/non-filers", period="January")) == {
        "period": ["period_format"]
    }
    assert errors_of(api.get("/api/v1/non-filers")) == {"period": ["required"]}


# --- bad input ----------------------------------------------------------------------------------


def test_bad_upload_input_is_a_problem_with_field_codes() -> None:
    api, payroll = collections(), Payroll(workers=1)
    next_month = timezone.localdate().replace(day=1) + datetime.timedelta(days=40)

    cases = [
        (payroll.upload_fields(period="2026/01"), {"period": ["period_format"]}),
        (payroll.upload_fields(period="0000-01"), {"period": ["period_format"]}),
        (payroll.upload_fields(employer_id="abc"), {"employer_id": ["field.invalid_type"]}),
        (payroll.upload_fields(kind="extra"), {"kind": ["kind_unknown"]}),
        (payroll.upload_fields(period=month_text(next_month)), {"period": ["period_future"]}),
    ]
    for fields, expected in cases:
        response = api.upload(DECLARATIONS, fields)
        assert_problem(response, 422, "validation_failed")
        assert errors_of(response) == expected, fields

    no_file = api.upload(DECLARATIONS, payroll.upload_fields(file=None))
    assert_problem(no_file, 422, "validation_failed")
    assert errors_of(no_file) == {"file": ["required"]}

    empty = api.upload(DECLARATIONS, payroll.upload_fields(b""))
    assert_problem(empty, 422, "validation_failed")
    assert errors_of(empty) == {"file": ["empty"]}

    # A JSON body where a form is expected says what is missing.
    as_json = api.post(DECLARATIONS, {"employer_id": payroll.employer.pk})
    assert_problem(as_json, 422, "validation_failed")
    assert set(errors_of(as_json)) == {"employer_id", "period", "file"}

    unknown_employer = api.upload(DECLARATIONS, payroll.upload_fields(employer_id="999999"))
    assert_problem(unknown_employer, 404, "not_found")
    assert Declaration.objects.count() == 0


def test_a_file_over_the_size_limit_is_a_413(settings: Any) -> None:
    api, payroll = collections(), Payroll(workers=1)
    settings.PILAR_DECLARATION_MAX_BYTES = 100

    response = api.upload(DECLARATIONS, payroll.upload_fields())

    assert_problem(response, 413, "request.too_large")
    assert Declaration.objects.count() == 0


@pytest.mark.parametrize("raw", ["{", "[1, 2", '{"period": NaN}', "not json"])
def test_garbage_json_is_a_400_problem(raw: str) -> None:
    response = collections().post(f"{DECLARATIONS}/json", raw=raw)
    assert_problem(response, 400, "json.malformed")


def test_unknown_records_and_routes_are_404_problems() -> None:
    api = collections()
    assert_problem(api.get(f"{DECLARATIONS}/999999"), 404, "not_found")
    assert_problem(api.get(f"{DECLARATIONS}/999999/issues"), 404, "not_found")
    assert_problem(api.post(f"{DECLARATIONS}/999999/confirm"), 404, "not_found")
    assert_problem(api.get(f"{DECLARATIONS}/abc"), 404, "route.not_found")
    assert_problem(api.get("/api/v1/employers/999999/account"), 404, "not_found")
    too_big = api.get(f"{DECLARATIONS}/{2**63}")
    assert_problem(too_big, 422, "validation_failed")
    assert errors_of(too_big) == {"declaration_id": ["field.out_of_range"]}


def test_problems_follow_the_request_language() -> None:
    api, payroll = collections(language="es"), Payroll(workers=1)
    response = api.upload(DECLARATIONS, payroll.upload_fields(period="enero"))
    (error,) = response.json()["errors"]
    assert error["message"] == "Escriba el mes como AAAA-MM, por ejemplo 2026-01."
