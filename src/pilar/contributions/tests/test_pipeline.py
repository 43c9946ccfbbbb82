"""The declaration pipeline end to end on the real database: submit → validate (job) → report
and statement → confirm → post (job) → contribution records and work histories; corrections,
idempotent re-upload, crash during posting, and every validation rule."""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pilar.contributions import services
from pilar.contributions.calculation import WorkerLine, line_contribution
from pilar.contributions.models import (
    ContributionRecord,
    Declaration,
    DeclarationLine,
    DeclarationStatus,
)
from pilar.contributions.parameters import parameter_snapshot
from pilar.contributions.selectors import work_history_of
from pilar.contributions.tests.pipeline_helpers import (
    collections_actor,
    csv_file,
    last_month,
    line,
    shop,
)
from pilar.contributions.validation import period_bounds
from pilar.core import jobs
from pilar.core.actor import Actor
from pilar.core.errors import Conflict, PermissionDenied, ValidationFailed
from pilar.core.models import AuditEvent, Job, JobStatus
from pilar.core.tests.factories import actor
from pilar.registry.models import Employment, EmploymentSalary
from pilar.registry.tests.factories import person_with_curp

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk() -> Actor:
    return collections_actor()


def submit(
    clerk: Actor, employer_id: int, data: bytes, *, kind: str = "normal", period: Any = None
) -> Declaration:
    declaration, _created = services.declaration_submit(
        actor=clerk,
        employer_id=employer_id,
        period=period or last_month(),
        kind=kind,
        file_name="nomina.csv",
        data=data,
    )
    jobs.run_pending()
    declaration.refresh_from_db()
    return declaration


def confirm_and_post(clerk: Actor, declaration: Declaration) -> Declaration:
    services.declaration_confirm(actor=clerk, declaration_id=declaration.pk)
    jobs.run_pending()
    declaration.refresh_from_db()
    return declaration


def issue_codes(declaration: Declaration) -> set[tuple[int, str, str]]:
    return {(i.row, i.column, i.code) for i in declaration.issues.all()}


# --- The happy path ------------------------------------------------------------------------------


def test_a_valid_file_is_validated_with_a_statement_then_posted_to_work_histories(
    clerk: Actor,
) -> None:
    s = shop(workers=3)
    a, b, c = s.workers
    data = csv_file(line(a), line(b, sbc="1200.50"), line(c, days=28, absence=2))
    declaration = submit(clerk, s.employer.pk, data)

    assert declaration.status == DeclarationStatus.VALIDATED, list(declaration.issues.values())
    assert declaration.error_count == 0
    assert declaration.worker_count == 3
    # The statement equals the pure Decimal calculation, line by line.
    period = last_month()
    snapshot = parameter_snapshot(on=period)
    days_in_month = period_bounds(period)[2]
    expected = [
        line_contribution(
            WorkerLine(Decimal(sbc), days, absence), parameters=snapshot, period_days=days_in_month
        )
        for sbc, days, absence in (("500.00", 30, 0), ("1200.50", 30, 0), ("500.00", 28, 2))
    ]
    assert declaration.employer_total == sum(e.employer_total for e in expected)
    assert declaration.worker_total == sum(e.worker_total for e in expected)
    assert declaration.total_due == declaration.employer_total + declaration.worker_total
    assert declaration.salary_mass == Decimal("500.00") * 30 + Decimal("1200.50") * 30 + 500 * 28
    assert declaration.due_date == (period + datetime.timedelta(days=40)).replace(day=17)
    assert DeclarationLine.objects.filter(declaration=declaration).count() == 3
    assert not ContributionRecord.objects.exists()

    posted = confirm_and_post(clerk, declaration)
    assert posted.status == DeclarationStatus.POSTED
    records = ContributionRecord.objects.filter(declaration=declaration)
    assert records.count() == 3
    record = records.get(person=b.person)
    assert record.daily_salary == Decimal("1200.50")
    assert record.period == period
    assert record.employer_total == expected[1].employer_total
    assert record.cv_wk == expected[1].share("old_age_cesantia").worker
    history = work_history_of(c.person.pk)
    assert [h.days for h in history.lines] == [28]
    assert history.counted_days == 26  # absence days do not count toward weeks
    assert history.weeks == 3
    assert AuditEvent.objects.filter(entity_type="declaration", action="post").exists()


def test_the_original_file_is_kept_and_the_same_file_is_recognised(clerk: Actor) -> None:
    s = shop(workers=1)
    data = csv_file(line(s.workers[0]))
    first = submit(clerk, s.employer.pk, data)
    stored = Path(services.declaration_dir(), first.file_path)
    assert stored.read_bytes() == data
    again, created = services.declaration_submit(
        actor=clerk,
        employer_id=s.employer.pk,
        period=last_month(),
        kind="normal",
        file_name="copy.csv",
        data=data,
    )
    assert created is False
    assert again.pk == first.pk
    assert Declaration.objects.count() == 1


def test_a_second_upload_while_the_first_is_processing_is_refused(clerk: Actor) -> None:
    s = shop(workers=2)
    services.declaration_submit(
        actor=clerk,
        employer_id=s.employer.pk,
        period=last_month(),
        kind="normal",
        file_name="a.csv",
        data=csv_file(line(s.workers[0])),
    )
    with pytest.raises(Conflict):
        services.declaration_submit(
            actor=clerk,
            employer_id=s.employer.pk,
            period=last_month(),
            kind="normal",
            file_name="b.csv",
            data=csv_file(line(s.workers[1])),
        )
    assert Declaration.objects.count() == 1


def test_a_period_already_posted_takes_corrections_only(clerk: Actor) -> None:
    s = shop(workers=1)
    confirm_and_post(clerk, submit(clerk, s.employer.pk, csv_file(line(s.workers[0]))))
    with pytest.raises(Conflict):
        services.declaration_submit(
            actor=clerk,
            employer_id=s.employer.pk,
            period=last_month(),
            kind="normal",
            file_name="again.csv",
            data=csv_file(line(s.workers[0], days=29)),
        )
    other = shop(workers=1)
    with pytest.raises(Conflict):  # nothing posted to correct
        services.declaration_submit(
            actor=clerk,
            employer_id=other.employer.pk,
            period=last_month(),
            kind="complementary",
            file_name="c.csv",
            data=csv_file(line(other.workers[0])),
        )


@pytest.mark.parametrize(
    ("period", "code"),
    [
        (datetime.date(2099, 1, 1), "period_future"),
        (datetime.date(2015, 1, 1), "period_closed"),
        (datetime.date(2025, 1, 15), "period_format"),
    ],
)
def test_closed_future_or_malformed_periods_are_refused(
    clerk: Actor, period: datetime.date, code: str
) -> None:
    s = shop(workers=1)
    with pytest.raises(ValidationFailed) as raised:
        services.declaration_submit(
            actor=clerk,
            employer_id=s.employer.pk,
            period=period,
            kind="normal",
            file_name="a.csv",
            data=csv_file(line(s.workers[0])),
        )
    assert raised.value.field_errors["period"][0].code == code
    assert not Declaration.objects.exists()


def test_only_declaring_roles_submit_and_an_employer_only_for_itself(clerk: Actor) -> None:
    s = shop(workers=1)
    with pytest.raises(PermissionDenied):
        services.declaration_submit(
            actor=actor("registrar"),
            employer_id=s.employer.pk,
            period=last_month(),
            kind="normal",
            file_name="a.csv",
            data=csv_file(line(s.workers[0])),
        )
    other = shop(workers=1)
    portal = Actor.for_employer_user(clerk.user, employer_id=other.employer.pk)  # type: ignore[arg-type]
    from pilar.core.errors import NotFound

    with pytest.raises(NotFound):
        services.declaration_submit(
            actor=portal,
            employer_id=s.employer.pk,
            period=last_month(),
            kind="normal",
            file_name="a.csv",
            data=csv_file(line(s.workers[0])),
        )


# --- Validation rules ----------------------------------------------------------------------------


def test_every_row_rule_reports_row_column_and_code(clerk: Actor) -> None:
    s = shop(workers=4)
    a, b, c, d = s.workers
    _stranger, stranger_curp = person_with_curp(
        given_names="Pedro",
        paternal_surname="Sánchez",
        maternal_surname="Mora",
        sex="M",
        birth_date=datetime.date(1990, 1, 1),
    )
    period = last_month()
    month_days = period_bounds(period)[2]
    data = csv_file(
        line(a, days=month_days + 1),  # row 2
        line(b, sbc="100.00"),  # row 3: below the minimum wage
        line(c, absence=8),  # row 4
        line(d, names=("Gómez", "López", "Ana")),  # row 5: names differ
        line(a),  # row 6: a twice
        line(a, identifier="XXXX"),  # row 7
        line(a, identifier="HELM800517MJCRPR01"),  # row 8: check digit or unknown
        f"{stranger_curp},Sánchez,Mora,Pedro,30,500.00,0,0,,",  # row 9: not employed here
        line(b, days="treinta"),  # row 10: not a number (and b twice)
        line(c, movement="vacaciones", movement_date=str(period)),  # row 11
        line(d, movement="baja"),  # row 12: movement without date
    )
    declaration = submit(clerk, s.employer.pk, data)
    assert declaration.status == DeclarationStatus.REJECTED
    found = issue_codes(declaration)
    expected = {
        (2, "days", "days_out_of_range"),
        (3, "daily_salary", "salary_below_minimum"),
        (4, "absence_days", "absence_too_many"),
        (5, "paternal_surname", "name_mismatch"),
        (6, "worker_id", "duplicate_worker"),
        (7, "worker_id", "identifier_format"),
        (9, "movement", "no_employment"),
        (10, "days", "not_integer"),
        (11, "movement", "movement_unknown"),
        (12, "movement_date", "movement_date_required"),
    }
    assert expected <= found, expected - found
    assert {code for row, _col, code in found if row == 8} & {
        "identifier_check_digit",
        "worker_unknown",
    }
    # A rejected declaration stages nothing and posts nothing.
    assert not DeclarationLine.objects.filter(declaration=declaration).exists()
    with pytest.raises(Conflict):
        services.declaration_confirm(actor=clerk, declaration_id=declaration.pk)


def test_salary_above_the_cap_is_a_warning_and_computed_on_the_cap(clerk: Actor) -> None:
    s = shop(workers=1)
    declaration = submit(clerk, s.employer.pk, csv_file(line(s.workers[0], sbc="99999.00")))
    assert declaration.status == DeclarationStatus.VALIDATED
    assert declaration.warning_count == 1
    assert issue_codes(declaration) == {(2, "daily_salary", "salary_above_cap")}
    snapshot = parameter_snapshot(on=last_month())
    staged = DeclarationLine.objects.get(declaration=declaration)
    assert staged.base == (snapshot["sbc_cap_uma"] * snapshot["uma_daily"]).quantize(
        Decimal("0.01")
    )


def test_names_are_compared_without_accents_or_case(clerk: Actor) -> None:
    s = shop(workers=1)
    w = s.workers[0]
    data = csv_file(line(w, names=("HERNANDEZ", "lopez", "maria  guadalupe")))
    assert submit(clerk, s.employer.pk, data).status == DeclarationStatus.VALIDATED


def test_unknown_worker_becomes_a_registration_request_when_configured(
    clerk: Actor, settings: Any
) -> None:
    settings.PILAR_UNKNOWN_WORKER = "request"
    s = shop(workers=1)
    unknown = "GAPM900101HJCRRD05"  # well formed; whether its check digit holds is checked
    data = csv_file(line(s.workers[0]), f"{unknown},García,Pérez,Mario,30,500.00,0,0,,")
    declaration = submit(clerk, s.employer.pk, data)
    codes = {code for _r, _c, code in issue_codes(declaration)}
    if "identifier_check_digit" in codes:
        assert declaration.status == DeclarationStatus.REJECTED
    else:
        assert declaration.status == DeclarationStatus.VALIDATED
        assert codes == {"worker_unknown_request"}
        assert declaration.registration_requests.get().worker_id == unknown
        assert declaration.worker_count == 1


def test_hire_creates_the_employment_and_days_are_bounded_by_it(clerk: Actor) -> None:
    s = shop(workers=1)
    period = last_month()
    newcomer, curp = person_with_curp(
        given_names="Lucía",
        paternal_surname="Ramos",
        maternal_surname="Vega",
        sex="F",
        birth_date=datetime.date(1999, 3, 3),
    )
    hire_day = period.replace(day=20)
    month_end = period_bounds(period)[1]
    covered = (month_end - hire_day).days + 1
    too_many = csv_file(
        line(s.workers[0]),
        f"{curp},Ramos,Vega,Lucía,{covered + 1},400.00,0,0,alta,{hire_day.isoformat()}",
    )
    rejected = submit(clerk, s.employer.pk, too_many)
    assert (3, "days", "days_exceed_employment") in issue_codes(rejected)

    fixed = csv_file(
        line(s.workers[0]),
        f"{curp},Ramos,Vega,Lucía,{covered},400.00,0,0,alta,{hire_day.isoformat()}",
    )
    declaration = submit(clerk, s.employer.pk, fixed)
    assert declaration.status == DeclarationStatus.VALIDATED, issue_codes(declaration)
    confirm_and_post(clerk, declaration)
    employment = Employment.objects.get(person=newcomer, employer=s.employer)
    assert employment.start_date == hire_day
    assert EmploymentSalary.objects.get(employment=employment).daily_salary == Decimal("400.00")
    record = ContributionRecord.objects.get(person=newcomer)
    assert record.covered_from == hire_day
    assert work_history_of(newcomer.pk).counted_days == covered


def test_separation_ends_the_employment(clerk: Actor) -> None:
    s = shop(workers=1)
    period = last_month()
    leaving = period.replace(day=10)
    data = csv_file(line(s.workers[0], days=10, movement="baja", movement_date=str(leaving)))
    declaration = confirm_and_post(clerk, submit(clerk, s.employer.pk, data))
    assert declaration.status == DeclarationStatus.POSTED
    employment = Employment.objects.get(person=s.workers[0].person, employer=s.employer)
    assert employment.end_date == leaving
    assert AuditEvent.objects.filter(
        entity_type="employment", person_id=s.workers[0].person.pk
    ).exists()


def test_a_whole_file_problem_rejects_with_its_reason(clerk: Actor) -> None:
    s = shop(workers=1)
    declaration = submit(clerk, s.employer.pk, b"\x00\x01\x02garbage" * 100)
    assert declaration.status == DeclarationStatus.REJECTED
    assert declaration.rejection_code
    assert declaration.rejection_message
    missing = submit(clerk, s.employer.pk, b"curp,nombre\nX,Y\n")
    assert missing.rejection_code == "missing_columns"


# --- Corrections ---------------------------------------------------------------------------------


def test_complementary_declaration_supersedes_only_its_workers(clerk: Actor) -> None:
    s = shop(workers=2)
    a, b = s.workers
    first = confirm_and_post(clerk, submit(clerk, s.employer.pk, csv_file(line(a), line(b))))
    correction = submit(clerk, s.employer.pk, csv_file(line(a, sbc="650.00")), kind="complementary")
    assert correction.status == DeclarationStatus.VALIDATED
    old_a = ContributionRecord.objects.get(declaration=first, person=a.person)
    # What is due is the difference with the record it replaces.
    assert correction.total_due == (
        correction.employer_total
        + correction.worker_total
        - old_a.employer_total
        - old_a.worker_total
    )
    confirm_and_post(clerk, correction)
    old_a.refresh_from_db()
    assert old_a.superseded_by_id == correction.pk
    in_force = ContributionRecord.objects.filter(superseded_at__isnull=True)
    assert in_force.get(person=a.person).daily_salary == Decimal("650.00")
    assert in_force.get(person=b.person).declaration_id == first.pk
    history = work_history_of(a.person.pk, include_superseded=True)
    assert [h.daily_salary for h in history.lines] == [Decimal("650.00")]
    assert [h.declaration_id for h in history.superseded] == [first.pk]


def test_replacement_declaration_supersedes_every_line_of_the_month(clerk: Actor) -> None:
    s = shop(workers=2)
    a, b = s.workers
    first = confirm_and_post(clerk, submit(clerk, s.employer.pk, csv_file(line(a), line(b))))
    replacement = confirm_and_post(
        clerk, submit(clerk, s.employer.pk, csv_file(line(a, days=15)), kind="replacement")
    )
    assert replacement.status == DeclarationStatus.POSTED
    in_force = ContributionRecord.objects.filter(superseded_at__isnull=True)
    assert list(in_force.values_list("person_id", "days")) == [(a.person.pk, 15)]
    assert (
        ContributionRecord.objects.filter(declaration=first, superseded_by=replacement).count() == 2
    )


# --- Posting is all or nothing -------------------------------------------------------------


@pytest.mark.parametrize("crash_at", ["superseded", "inserted", "movements", "done"])
def test_a_crash_during_posting_leaves_nothing_and_the_job_runs_again(
    clerk: Actor, crash_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = shop(workers=2)
    a, b = s.workers
    first = confirm_and_post(clerk, submit(clerk, s.employer.pk, csv_file(line(a), line(b))))
    leaving = last_month().replace(day=5)
    correction = submit(
        clerk,
        s.employer.pk,
        csv_file(line(a, days=5, movement="baja", movement_date=str(leaving)), line(b)),
        kind="replacement",
    )
    assert correction.status == DeclarationStatus.VALIDATED

    def crash(name: str) -> None:
        if name == crash_at:
            raise RuntimeError(f"simulated crash at {name}")

    monkeypatch.setattr(services, "_posting_checkpoint", crash)
    services.declaration_confirm(actor=clerk, declaration_id=correction.pk)
    jobs.run_pending(limit=1)
    correction.refresh_from_db()
    assert correction.status in (DeclarationStatus.CONFIRMED, DeclarationStatus.POSTING)
    # Nothing of the correction is visible: the first declaration's records are all in force.
    assert ContributionRecord.objects.filter(declaration=correction).count() == 0
    assert (
        ContributionRecord.objects.filter(declaration=first, superseded_at__isnull=True).count()
        == 2
    )
    assert Employment.objects.get(person=a.person, employer=s.employer).end_date is None
    assert correction.job_id is not None
    job = Job.objects.get(pk=correction.job_id)
    assert job.status == JobStatus.QUEUED
    assert "simulated crash" in job.error

    monkeypatch.setattr(services, "_posting_checkpoint", None)
    jobs.run_pending()
    correction.refresh_from_db()
    assert correction.status == DeclarationStatus.POSTED
    assert ContributionRecord.objects.filter(declaration=correction).count() == 2
    assert Employment.objects.get(person=a.person, employer=s.employer).end_date == leaving
    # Running the job again changes nothing.
    services.declaration_post(declaration_id=correction.pk)
    assert ContributionRecord.objects.filter(declaration=correction).count() == 2


def test_a_validation_job_interrupted_after_staging_starts_clean(clerk: Actor) -> None:
    s = shop(workers=2)
    data = csv_file(line(s.workers[0]), line(s.workers[1]))
    declaration, _ = services.declaration_submit(
        actor=clerk,
        employer_id=s.employer.pk,
        period=last_month(),
        kind="normal",
        file_name="a.csv",
        data=data,
    )
    services.declaration_validate(declaration_id=declaration.pk)
    # Simulate a worker that died after staging: the status goes back to validating.
    Declaration.objects.filter(pk=declaration.pk).update(status=DeclarationStatus.VALIDATING)
    services.declaration_validate(declaration_id=declaration.pk)
    assert DeclarationLine.objects.filter(declaration=declaration).count() == 2


def test_withdrawn_declarations_cannot_be_confirmed(clerk: Actor) -> None:
    s = shop(workers=1)
    declaration = submit(clerk, s.employer.pk, csv_file(line(s.workers[0])))
    services.declaration_withdraw(actor=clerk, declaration_id=declaration.pk)
    with pytest.raises(Conflict):
        services.declaration_confirm(actor=clerk, declaration_id=declaration.pk)
    assert not DeclarationLine.objects.filter(declaration=declaration).exists()


def test_overlapping_employers_count_weeks_once(clerk: Actor) -> None:
    first = shop(workers=1)
    worker = first.workers[0]
    second_employer_shop = shop(workers=0)
    Employment.objects.create(
        person=worker.person,
        employer=second_employer_shop.employer,
        start_date=datetime.date(2021, 1, 1),
    )
    confirm_and_post(clerk, submit(clerk, first.employer.pk, csv_file(line(worker))))
    confirm_and_post(clerk, submit(clerk, second_employer_shop.employer.pk, csv_file(line(worker))))
    history = work_history_of(worker.person.pk)
    assert len(history.lines) == 2
    assert history.counted_days == 30


def test_posting_with_lost_staging_validates_the_kept_file_again(clerk: Actor) -> None:
    s = shop(workers=2)
    declaration = submit(clerk, s.employer.pk, csv_file(line(s.workers[0]), line(s.workers[1])))
    services.declaration_confirm(actor=clerk, declaration_id=declaration.pk)
    # What a PostgreSQL crash does to the unlogged staging table.
    DeclarationLine.objects.filter(declaration=declaration).delete()
    jobs.run_pending()
    declaration.refresh_from_db()
    assert not ContributionRecord.objects.filter(declaration=declaration).exists()
    assert declaration.status == DeclarationStatus.VALIDATED
    assert DeclarationLine.objects.filter(declaration=declaration).count() == 2
    assert confirm_and_post(clerk, declaration).status == DeclarationStatus.POSTED
    assert ContributionRecord.objects.filter(declaration=declaration).count() == 2


def test_a_whole_file_rejection_is_worded_in_the_uploaders_language(clerk: Actor) -> None:
    from django.utils import translation

    s = shop(workers=1)
    with translation.override("en"):
        english = submit(clerk, s.employer.pk, b"curp,nombre\nX,Y\n")
    with translation.override("es"):
        spanish = submit(clerk, s.employer.pk, b"curp;nombre\nX;Y\n")
    assert english.rejection_code == spanish.rejection_code == "missing_columns"
    assert english.rejection_message.startswith("The required columns 'Paternal surname'")
    assert spanish.rejection_message.startswith("Faltan las columnas obligatorias")
