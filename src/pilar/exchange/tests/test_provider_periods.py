"""The ``periods`` action: a P5000-shaped document of a person's insurance periods, built from
the work history the benefits module uses, with only the agreed fields."""

from __future__ import annotations

import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pilar.benefits.inputs import work_history_summary
from pilar.benefits.tests.careers import CLAIM_DATE, insured, job
from pilar.contributions import services as contributions
from pilar.contributions.tests.pipeline_helpers import (
    collections_actor,
    csv_file,
    last_month,
    line,
    shop,
)
from pilar.core import jobs
from pilar.core.identifiers import CURP
from pilar.core.models import AccessLogEntry
from pilar.exchange.handlers_periods import periods_document
from pilar.exchange.models import FederationLink
from pilar.exchange.tests.provider_support import (  # noqa: F401 (fixture)
    NODE,
    Federation,
    agree,
    federation_fixture,
)
from pilar.registry.models import Person
from pilar.registry.tests.factories import EmployerFactory

ALL_FIELDS = [
    "period.from",
    "period.to",
    "period.type",
    "period.days",
    "period.weeks",
    "period.salary_basis",
    "period.employer",
]
FED_ID = "FED-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
UNKNOWN_CURP = "HELM800517MJCRPR01"


def days(first: str, last: str) -> int:
    return (datetime.date.fromisoformat(last) - datetime.date.fromisoformat(first)).days + 1


def curp_of(person: Person) -> str:
    return person.identifiers.get(scheme=CURP).value


def two_overlapping_employers() -> tuple[Person, Any, Any]:
    """Employer A 2000-01-03 to 2005-12-31 (300 a day, 400 from 2003), employer B 2004-06-01 to
    2008-03-31 (500 a day): 19 months worked for both at once."""
    first, second = EmployerFactory.create(), EmployerFactory.create()
    person = insured(
        job(
            "2000-01-03",
            "2005-12-31",
            ("2000-01-03", "300.00"),
            ("2003-01-01", "400.00"),
            employer=first,
        ),
        job("2004-06-01", "2008-03-31", ("2004-06-01", "500.00"), employer=second),
    )
    return person, first, second


def test_overlapping_employers_are_two_periods_counted_once_in_the_totals(db: None) -> None:
    person, first, second = two_overlapping_employers()

    document = periods_document(person, fields=ALL_FIELDS, on=CLAIM_DATE)

    first_days = days("2000-01-03", "2005-12-31")
    second_days = days("2004-06-01", "2008-03-31")
    at_300, at_400 = days("2000-01-03", "2002-12-31"), days("2003-01-01", "2005-12-31")
    average = ((Decimal(300) * at_300 + Decimal(400) * at_400) / first_days).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
    assert document["periods"] == [
        {
            "from": "2000-01-03",
            "to": "2005-12-31",
            "type": "employment",
            "days": first_days,
            "weeks": first_days // 7,
            "salary_basis": str(average),
            "employer": {"rfc": first.rfc, "name": first.legal_name},
        },
        {
            "from": "2004-06-01",
            "to": "2008-03-31",
            "type": "employment",
            "days": second_days,
            "weeks": second_days // 7,
            "salary_basis": "500.00",
            "employer": {"rfc": second.rfc, "name": second.legal_name},
        },
    ]
    union = days("2000-01-03", "2008-03-31")
    assert document["totals"] == {"days": union, "weeks": union // 7, "unit": "week"}
    # The weeks another institution totalises are the weeks this institute's own decisions use.
    assert document["totals"]["weeks"] == work_history_summary(person.pk, CLAIM_DATE).weeks
    assert document["type"] == "P5000"
    assert document["as_of"] == CLAIM_DATE.isoformat()
    assert document["person"] == {"fed_id": None}


def test_a_gap_with_the_same_employer_starts_a_new_period(db: None) -> None:
    employer = EmployerFactory.create()
    person = insured(
        job("1990-02-01", "1994-06-30", ("1990-02-01", "100.00"), employer=employer),
        job("1994-07-01", "1996-12-31", ("1994-07-01", "150.00"), employer=employer),
        job("1998-01-05", "1999-12-31", ("1998-01-05", "200.00"), employer=employer),
    )

    document = periods_document(person, fields=["period.from", "period.to"], on=CLAIM_DATE)

    # A rehire the next day continues the period; a year without work does not.
    assert document["periods"] == [
        {"from": "1990-02-01", "to": "1996-12-31"},
        {"from": "1998-01-05", "to": "1999-12-31"},
    ]
    assert document["totals"] == {"unit": "week"}


def test_posted_records_with_absences_match_the_benefits_weeks(db: None) -> None:
    clerk = collections_actor()
    workshop = shop(workers=1)
    worker = workshop.workers[0]
    month = last_month()
    month_days = ((month.replace(day=28) + datetime.timedelta(days=4)).replace(day=1) - month).days
    declaration, _created = contributions.declaration_submit(
        actor=clerk,
        employer_id=workshop.employer.pk,
        period=month,
        kind="normal",
        file_name="nomina.csv",
        data=csv_file(line(worker, days=month_days, sbc="800.00", absence=5)),
    )
    jobs.run_pending()
    contributions.declaration_confirm(actor=clerk, declaration_id=declaration.pk)
    jobs.run_pending()
    today = datetime.date.today()

    document = periods_document(worker.person, fields=ALL_FIELDS, on=today)

    summary = work_history_summary(worker.person.pk, today)
    assert document["totals"]["days"] == summary.counted_days
    assert document["totals"]["weeks"] == summary.weeks
    # The five unpaid days at the end of the declared month interrupt the period.
    first, *rest = document["periods"]
    assert first["from"] == "2020-01-06"
    assert first["to"] == (month + datetime.timedelta(days=month_days - 6)).isoformat()
    assert sum(period["days"] for period in document["periods"]) == summary.counted_days
    assert rest
    assert rest[0]["from"] == (month + datetime.timedelta(days=month_days)).isoformat()


def request(value: str, *, kind: str = "CURP", **extra: Any) -> dict[str, Any]:
    return {"query_type": "idtype-value", "query": {"type": kind, "value": value}, **extra}


def test_the_endpoint_answers_only_the_agreed_fields(federation: Federation) -> None:
    agree(
        "insurance-periods",
        ["period.from", "period.to", "period.weeks"],
        purposes=("totalisation",),
    )
    person, _first, _second = two_overlapping_employers()
    FederationLink.objects.create(person=person, fed_id=FED_ID)

    status, answer = federation.post(
        "periods",
        request(FED_ID, kind="FED", as_of=CLAIM_DATE.isoformat()),
        purpose="totalisation",
    )

    assert status == 200, answer["header"]
    document = answer["message"]["document"]
    assert document["institution"] == {"code": NODE, "name": "Instituto de Prueba", "country": "MX"}
    assert document["person"] == {"fed_id": FED_ID}
    assert [set(period) for period in document["periods"]] == [{"from", "to", "weeks"}] * 2
    union = days("2000-01-03", "2008-03-31")
    assert document["totals"] == {"weeks": union // 7, "unit": "week"}
    entry = AccessLogEntry.objects.get(person_id=person.pk)
    assert (entry.actor_label, entry.purpose) == ("exchange:MX-TEST", "totalisation")


def test_a_requested_field_outside_the_agreement_is_refused(federation: Federation) -> None:
    agree("insurance-periods", ["period.from", "period.to"], purposes=("totalisation",))
    person, _first, _second = two_overlapping_employers()

    status, answer = federation.post(
        "periods",
        request(curp_of(person), fields=["period.from", "period.salary_basis"]),
        purpose="totalisation",
    )

    assert status == 403
    assert answer["header"]["status_reason_code"] == "rjct.field.not_agreed"
    assert "period.salary_basis" in answer["header"]["status_reason_message"]
    assert answer["message"] == {}
    assert not AccessLogEntry.objects.exists()


def test_an_unknown_person_is_refused(federation: Federation) -> None:
    agree("insurance-periods", ALL_FIELDS, purposes=("totalisation",))

    status, answer = federation.post("periods", request(UNKNOWN_CURP), purpose="totalisation")

    assert status == 404
    assert answer["header"]["status_reason_code"] == "rjct.person.not_found"


def test_invalid_requests_are_refused(federation: Federation) -> None:
    agree("insurance-periods", ALL_FIELDS, purposes=("totalisation",))
    person, _first, _second = two_overlapping_employers()
    tomorrow = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()

    for message, where in (
        (request(curp_of(person), as_of=tomorrow), "as_of"),
        (request(curp_of(person), as_of="2025-13-01"), "as_of"),
        (request("123"), "message.query.value"),
        (request(curp_of(person), fields=["period.pay"]), "period.pay"),
    ):
        status, answer = federation.post("periods", message, purpose="totalisation")
        assert status == 422, where
        assert answer["header"]["status_reason_code"] == "rjct.search_criteria.invalid"
        assert where in answer["header"]["status_reason_message"]
