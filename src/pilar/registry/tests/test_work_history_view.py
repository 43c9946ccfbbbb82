"""The person page's work history: weeks of contribution counted once across employers, the
monthly lines, corrected records kept apart, and one access-log entry for the whole page."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any, cast

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pilar.contributions.models import ContributionRecord, Declaration
from pilar.core.models import AccessLogEntry, User
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.registry.models import Employer, Person
from pilar.registry.tests.factories import EmployerFactory, PersonFactory

pytestmark = pytest.mark.django_db

JANUARY = datetime.date(2025, 1, 1)
FEBRUARY = datetime.date(2025, 2, 1)


def signed_in(user: User, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


def declaration(employer: Employer, period: datetime.date) -> Declaration:
    return Declaration.objects.create(
        employer=employer,
        period=period,
        status="posted",
        file_name="nomina.csv",
        file_sha256=uuid.uuid4().hex * 2,
        file_size=100,
        file_path="test/nomina.csv",
        channel="ui",
        submitted_by_label="test",
    )


def record(
    person: Person,
    employer: Employer,
    period: datetime.date,
    covered: tuple[int, int],
    days: int,
    **fields: Any,
) -> ContributionRecord:
    """A posted contribution record covering days ``covered`` of the month ``period``."""
    values: dict[str, Any] = {
        "declaration": declaration(employer, period),
        "row": 2,
        "absence_days": 0,
        "incapacity_days": 0,
        "daily_salary": Decimal("500.00"),
        "base": Decimal("500.00"),
        "employer_total": Decimal("1234.56"),
        "worker_total": Decimal("210.00"),
        "posted_at": timezone.now(),
        **fields,
    }
    return ContributionRecord.objects.create(
        person=person,
        employer=employer,
        period=period,
        covered_from=period.replace(day=covered[0]),
        covered_to=period.replace(day=covered[1]),
        days=days,
        **values,
    )


def test_the_person_page_shows_weeks_counting_overlapping_days_once() -> None:
    person = cast(Person, PersonFactory())
    first = cast(Employer, EmployerFactory(legal_name="Primera S.A."))
    second = cast(Employer, EmployerFactory(legal_name="Segunda S.A."))
    # January: the whole month with the first employer, and from the 16th with the second too.
    record(person, first, JANUARY, (1, 31), 31)
    record(person, second, JANUARY, (16, 31), 16, incapacity_days=2)
    # February: the first employer, three unpaid absence days.
    record(person, first, FEBRUARY, (1, 28), 28, absence_days=3)

    client = signed_in(staff(Role.REGISTRAR))
    logged_before = AccessLogEntry.objects.filter(person_id=person.pk).count()
    response = client.get(reverse("registry:person_detail", args=[person.pk]))
    assert response.status_code == 200
    history = response.context["work_history"]
    # 31 + 25 days: the second employer's January days are already counted by the first's.
    assert history.counted_days == 56
    assert history.weeks == 8
    html = response.content.decode()
    assert "Weeks of contribution" in html
    assert "<strong>8</strong>" in html
    assert "2025-01" in html
    assert "2025-02" in html
    assert "Segunda S.A." in html
    assert second.registration_number in html
    assert "1,234.56" in html
    # The page's one read of the record is logged once, the work history included.
    assert AccessLogEntry.objects.filter(person_id=person.pk).count() == logged_before + 1


def test_corrected_records_are_shown_apart_and_do_not_count() -> None:
    person = cast(Person, PersonFactory())
    employer = cast(Employer, EmployerFactory())
    # Posting a correction supersedes the record in force before inserting the new one.
    replaced = record(person, employer, JANUARY, (1, 31), 31, superseded_at=timezone.now())
    correction = record(person, employer, JANUARY, (1, 31), 20, row=5)
    replaced.superseded_by = correction.declaration
    replaced.save(update_fields=["superseded_by"])

    response = signed_in(staff(Role.REGISTRAR)).get(
        reverse("registry:person_detail", args=[person.pk])
    )
    history = response.context["work_history"]
    assert history.counted_days == 20
    assert [line.declaration_id for line in history.lines] == [correction.declaration_id]
    assert [line.declaration_id for line in history.superseded] == [replaced.declaration_id]
    html = response.content.decode()
    assert "1 corrected record" in html
    assert f"Declared in declaration No. {replaced.declaration_id}" in html
    assert f'href="/declarations/{correction.declaration_id}/"' in html
    assert f"Replaced by declaration No. {correction.declaration_id}." in html


def test_a_person_without_contributions_has_zero_weeks() -> None:
    person = cast(Person, PersonFactory())
    response = signed_in(staff(Role.REGISTRAR), language="es").get(
        reverse("registry:person_detail", args=[person.pk])
    )
    assert response.context["work_history"].weeks == 0
    html = response.content.decode()
    assert "Semanas cotizadas" in html
    assert "No hay cotizaciones registradas para esta persona." in html
