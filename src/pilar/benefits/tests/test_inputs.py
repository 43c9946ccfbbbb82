"""Gathering a package's inputs from the registry, the work history and the claim's declared
facts: weeks with overlapping employers, the 250-week average (salary changes, several
employers, the cap), contribution records taking over from the migrated employment periods,
dependants from family ties, and what is missing. Real database (SQLite or PostgreSQL); every
expected figure is worked out by hand in the test."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest

from pilar.benefits import inputs, selectors
from pilar.benefits.inputs import InputSpec, gather_inputs
from pilar.benefits.tests.careers import (
    CLAIM_DATE,
    child,
    insured,
    job,
    marry,
    officer,
    relative,
)
from pilar.contributions import services as contributions
from pilar.contributions.tests.pipeline_helpers import (
    collections_actor,
    csv_file,
    last_month,
    line,
    shop,
)
from pilar.core import jobs
from pilar.core.errors import FieldErrors, NotFound, ValidationFailed
from pilar.core.models import AccessLogEntry
from pilar.registry.models import Person

pytestmark = pytest.mark.django_db


def specs(*names: str, declared: tuple[str, ...] = ()) -> dict[str, InputSpec]:
    """Input specs as a package would give them: derived names by their usual types."""
    types = {
        "edad": "number",
        "semanas_cotizadas": "number",
        "salario_promedio_diario": "number",
        "salario_promedio_uma": "number",
        "conyuge": "bool",
        "hijos_dependientes": "number",
        "tiene_empleo_vigente": "bool",
        "cotizo_antes_1997": "bool",
    }
    made = {name: InputSpec(name, types[name], {"es": name, "en": name}) for name in names}
    for name in declared:
        made[name] = InputSpec(name, "bool", {"es": f"¿{name}?", "en": f"{name}?"})
    return made


def gather(
    person: Person, *names: str, on: datetime.date = CLAIM_DATE, **declared: Any
) -> inputs.GatheredInputs:
    return gather_inputs(person=person, claim_date=on, declared=declared, specs=specs(*names))


def value(gathered: inputs.GatheredInputs, name: str) -> Any:
    return gathered.values[name].value


# --- age ----------------------------------------------------------------------------------------


def test_age_is_whole_years_at_the_claim_date() -> None:
    person = insured(born=datetime.date(1960, 6, 15))
    assert value(gather(person, "edad", on=datetime.date(2025, 6, 14)), "edad") == 64
    turned = gather(person, "edad", on=datetime.date(2025, 6, 15))
    assert value(turned, "edad") == 65
    assert turned.values["edad"].source == "registry"
    assert turned.to_dict()["edad"]["detail"] == {"birth_date": "1960-06-15"}


def test_born_on_29_february_ages_on_1_march_in_common_years() -> None:
    assert inputs.age_on(datetime.date(1960, 2, 29), datetime.date(2025, 2, 28)) == 64
    assert inputs.age_on(datetime.date(1960, 2, 29), datetime.date(2025, 3, 1)) == 65


# --- weeks --------------------------------------------------------------------------------------


def test_overlapping_employers_count_their_common_days_once() -> None:
    # A: 2000-01-01 to 2009-12-31; B: 2005-01-01 to 2014-12-31. Five years overlap. The union is
    # 2000-01-01 to 2014-12-31: 15 years with four leap days (2000, 2004, 2008, 2012) =
    # 15 × 365 + 4 = 5,479 days = 782 whole weeks (5,479 / 7 = 782.7).
    person = insured(
        job("2000-01-01", "2009-12-31", ("2000-01-01", "300.00")),
        job("2005-01-01", "2014-12-31", ("2005-01-01", "200.00")),
    )
    gathered = gather(person, "semanas_cotizadas", "cotizo_antes_1997", "tiene_empleo_vigente")
    assert value(gathered, "semanas_cotizadas") == 782
    detail = gathered.values["semanas_cotizadas"].detail
    assert detail["counted_days"] == 5479
    assert detail["days_from_records"] == 0
    assert detail["first_day"] == datetime.date(2000, 1, 1)
    assert value(gathered, "cotizo_antes_1997") is False
    assert value(gathered, "tiene_empleo_vigente") is False
    assert gathered.values["semanas_cotizadas"].source == "work_history"


def test_days_after_the_claim_date_do_not_count_and_an_open_job_is_current() -> None:
    # Open since 2025-01-01; claim on 2025-06-02: 31 + 28 + 31 + 30 + 31 + 2 = 153 days.
    person = insured(job("2025-01-01", None, ("2025-01-01", "400.00")))
    gathered = gather(
        person, "semanas_cotizadas", "tiene_empleo_vigente", "salario_promedio_diario"
    )
    assert gathered.values["semanas_cotizadas"].detail["counted_days"] == 153
    assert value(gathered, "semanas_cotizadas") == 21
    assert value(gathered, "tiene_empleo_vigente") is True
    assert value(gathered, "salario_promedio_diario") == Decimal("400.00")


def test_a_day_before_1_july_1997_makes_the_1973_law_available() -> None:
    before = insured(job("1997-06-30", "1997-12-31", ("1997-06-30", "100.00")))
    after = insured(job("1997-07-01", "1997-12-31", ("1997-07-01", "100.00")))
    assert value(gather(before, "cotizo_antes_1997"), "cotizo_antes_1997") is True
    assert value(gather(after, "cotizo_antes_1997"), "cotizo_antes_1997") is False


# --- the 250-week average -----------------------------------------------------------------------


def test_the_average_is_over_the_last_1750_days_with_the_salary_in_force_each_day() -> None:
    # One job 2000-01-01 to 2014-12-31: 100 a day, 400 from 2013-01-01. The last 1,750 counted
    # days run back from 2014-12-31 to 2010-03-18 (2014: 365, 2013: 365, 2012: 366, 2011: 365 =
    # 1,461 days; 289 more of 2010 start on 18 March). 2013-01-01 to 2014-12-31 is 730 days at
    # 400 = 292,000; the other 1,020 days at 100 = 102,000; 394,000 / 1,750 = 225.142… → 225.14.
    person = insured(
        job("2000-01-01", "2014-12-31", ("2000-01-01", "100.00"), ("2013-01-01", "400.00"))
    )
    gathered = gather(person, "salario_promedio_diario")
    assert value(gathered, "salario_promedio_diario") == Decimal("225.14")
    detail = gathered.values["salario_promedio_diario"].detail
    assert detail["window_from"] == datetime.date(2010, 3, 18)
    assert detail["window_to"] == datetime.date(2014, 12, 31)
    assert detail["days"] == 1750
    assert detail["capped_days"] == 0


def test_salaries_of_several_employers_on_the_same_day_add_up() -> None:
    # As above, plus a second job 2014-07-01 to 2014-12-31 (184 days) at 50 a day. The days are
    # counted once, their salaries add: 394,000 + 184 × 50 = 403,200; / 1,750 = 230.40.
    person = insured(
        job("2000-01-01", "2014-12-31", ("2000-01-01", "100.00"), ("2013-01-01", "400.00")),
        job("2014-07-01", "2014-12-31", ("2014-07-01", "50.00")),
    )
    gathered = gather(person, "salario_promedio_diario", "semanas_cotizadas")
    assert value(gathered, "salario_promedio_diario") == Decimal("230.40")
    # 2000-01-01 to 2014-12-31 = 5,479 days whatever the second job adds.
    assert gathered.values["semanas_cotizadas"].detail["counted_days"] == 5479


def test_a_day_above_the_cap_counts_at_the_cap() -> None:
    # 5,000 a day from 2005 to 2014: every day of the window is above the cap of 25 general
    # minimum wages (LSS art. 28; the UMA only replaces the wage from 2016). With the seeded
    # wages (2010: 57.46, 2011: 59.82, 2012: 62.33, 2013: 64.76, 2014: 67.29) the caps are
    # 1,436.50; 1,495.50; 1,558.25; 1,619.00; 1,682.25. The window (2010-03-18 to 2014-12-31)
    # has 289, 365, 366, 365 and 365 days of those years:
    # 289 × 1,436.50 + 365 × 1,495.50 + 366 × 1,558.25 + 365 × 1,619.00 + 365 × 1,682.25
    # = 415,148.50 + 545,857.50 + 570,319.50 + 590,935.00 + 614,021.25 = 2,736,281.75;
    # / 1,750 = 1,563.5896 → 1,563.59.
    person = insured(job("2005-01-01", "2014-12-31", ("2005-01-01", "5000.00")))
    gathered = gather(person, "salario_promedio_diario")
    assert value(gathered, "salario_promedio_diario") == Decimal("1563.59")
    assert gathered.values["salario_promedio_diario"].detail["capped_days"] == 1750


def test_the_cap_schedule_follows_the_law_of_each_day() -> None:
    caps = inputs.CapSchedule.load()
    # Before the 1997 law: 10 minimum wages (1996: 26.45).
    assert caps.cap_on(datetime.date(1997, 6, 30)) == Decimal("264.50")
    # From 1 July 1997: 15 minimum wages (1997: 26.45), one more each 1 July.
    assert caps.cap_on(datetime.date(1997, 7, 1)) == Decimal("396.75")
    assert caps.cap_on(datetime.date(1998, 7, 1)) == Decimal("34.45") * 16
    assert caps.cap_on(datetime.date(2007, 6, 30)) == Decimal("50.57") * 24
    assert caps.cap_on(datetime.date(2007, 7, 1)) == Decimal("50.57") * 25
    # From 28 January 2016: 25 UMA (2016: 73.04).
    assert caps.cap_on(datetime.date(2016, 1, 28)) == Decimal("1826.00")


def test_with_fewer_than_250_weeks_the_average_is_over_the_days_there_are() -> None:
    # 2024-01-01 to 2024-12-31 (366 days): 200 a day, then 300 from 2024-07-01 (184 days).
    # (182 × 200 + 184 × 300) / 366 = (36,400 + 55,200) / 366 = 250.273… → 250.27.
    person = insured(
        job("2024-01-01", "2024-12-31", ("2024-01-01", "200.00"), ("2024-07-01", "300.00"))
    )
    gathered = gather(person, "salario_promedio_diario")
    assert value(gathered, "salario_promedio_diario") == Decimal("250.27")
    assert gathered.values["salario_promedio_diario"].detail["days"] == 366


def test_the_average_in_umas_divides_by_the_uma_of_the_claim_date() -> None:
    # 226.28 a day through 2024; the UMA in force on 2025-06-02 is 113.14: 2 UMA exactly.
    person = insured(job("2024-01-01", "2024-12-31", ("2024-01-01", "226.28")))
    gathered = gather(person, "salario_promedio_uma")
    assert value(gathered, "salario_promedio_uma") == Decimal("2.0000")
    assert gathered.values["salario_promedio_uma"].detail["uma"] == Decimal("113.14")


def test_days_without_a_recorded_salary_stay_out_of_the_average() -> None:
    # Employed from 2024-01-01 but the salary history starts 2024-07-01 (184 days at 300): the
    # 182 days before count as weeks and are left out of the average.
    person = insured(job("2024-01-01", "2024-12-31", ("2024-07-01", "300.00")))
    gathered = gather(person, "salario_promedio_diario", "semanas_cotizadas")
    assert value(gathered, "salario_promedio_diario") == Decimal("300.00")
    assert gathered.values["salario_promedio_diario"].detail["days_without_salary"] == 182
    assert value(gathered, "semanas_cotizadas") == 52


def test_no_salary_at_all_is_missing_and_no_work_at_all_is_zero() -> None:
    unpaid = insured(job("2024-01-01", "2024-12-31"))
    gathered = gather(unpaid, "salario_promedio_diario")
    assert [(m.name, m.reason) for m in gathered.missing] == [
        ("salario_promedio_diario", "no_salary")
    ]
    never_worked = insured()
    gathered = gather(never_worked, "salario_promedio_diario", "semanas_cotizadas")
    assert gathered.complete
    assert value(gathered, "salario_promedio_diario") == Decimal("0.00")
    assert value(gathered, "semanas_cotizadas") == 0


def test_posted_contribution_records_take_over_their_month_from_the_employment() -> None:
    # A worker employed since 2020-01-06 at 500 a day (the registry) has last month declared
    # through the pipeline at 800 a day with 5 unpaid absence days: that month counts its days
    # less the absences (LSS art. 31), at the declared SBC; every other day, the employment's.
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
    gathered = gather(
        worker.person,
        "semanas_cotizadas",
        "salario_promedio_diario",
        "tiene_empleo_vigente",
        on=today,
    )
    employed_days = (today - datetime.date(2020, 1, 6)).days + 1
    counted = employed_days - 5
    detail = gathered.values["semanas_cotizadas"].detail
    assert detail["counted_days"] == counted
    assert detail["days_from_records"] == month_days - 5
    assert value(gathered, "semanas_cotizadas") == counted // 7
    window = min(1750, counted)
    expected = (
        Decimal(800) * (month_days - 5) + Decimal(500) * (window - (month_days - 5))
    ) / window
    assert value(gathered, "salario_promedio_diario") == expected.quantize(Decimal("0.01"))
    assert value(gathered, "tiene_empleo_vigente") is True


def test_the_work_history_is_read_in_a_handful_of_queries(
    django_assert_max_num_queries: Any,
) -> None:
    person = insured(
        *[
            job(f"{1980 + year}-01-01", f"{1980 + year}-12-31", (f"{1980 + year}-01-01", "200.00"))
            for year in range(40)
        ]
    )
    # Records, employments, salaries, wage parameters: one query each, however long the career.
    with django_assert_max_num_queries(4):
        summary = inputs.work_history_summary(person.pk, CLAIM_DATE)
    assert summary.first_day == datetime.date(1980, 1, 1)


# --- family -------------------------------------------------------------------------------------


def test_an_open_spouse_tie_at_the_claim_date_is_a_spouse() -> None:
    person = insured()
    spouse = relative(datetime.date(1957, 1, 1))
    marry(person, spouse, since="1980-05-01")
    gathered = gather(person, "conyuge")
    assert value(gathered, "conyuge") is True
    assert gathered.values["conyuge"].detail["relative_ids"] == [spouse.pk]


def test_an_ended_union_or_a_dead_spouse_is_not_a_spouse() -> None:
    divorced = insured()
    marry(divorced, relative(datetime.date(1957, 1, 1)), since="1980-05-01", until="2001-02-01")
    widowed = insured(given_names="Rosa")
    marry(widowed, relative(datetime.date(1950, 1, 1), died=datetime.date(2020, 3, 3)))
    assert value(gather(divorced, "conyuge"), "conyuge") is False
    assert value(gather(widowed, "conyuge"), "conyuge") is False


def test_children_under_16_count_and_students_are_declared_up_to_the_registered_16_to_24() -> None:
    person = insured(born=datetime.date(1965, 1, 1))
    young = child(person, datetime.date(2012, 1, 1))  # 13 at the claim date
    stored_inverse = child(person, datetime.date(2009, 6, 3), stored_from_child=True)  # 15
    child(person, datetime.date(2003, 1, 1))  # 22: a dependant only as a student
    child(person, datetime.date(1990, 1, 1))  # 35: never
    child(person, datetime.date(2015, 1, 1), died=datetime.date(2020, 1, 1))  # died before

    undeclared = gather(person, "hijos_dependientes")
    assert [(m.name, m.reason) for m in undeclared.missing] == [
        ("hijos_estudiantes", "students_not_declared")
    ]
    one_student = gather(person, "hijos_dependientes", hijos_estudiantes=1)
    assert value(one_student, "hijos_dependientes") == 3
    detail = one_student.values["hijos_dependientes"].detail
    assert sorted(detail["under_16_ids"]) == sorted([young.pk, stored_inverse.pk])
    assert detail["students_declared"] == 1
    no_student = gather(person, "hijos_dependientes", hijos_estudiantes=0)
    assert value(no_student, "hijos_dependientes") == 2
    too_many = gather(person, "hijos_dependientes", hijos_estudiantes=2)
    assert [(m.name, m.reason) for m in too_many.missing] == [
        ("hijos_estudiantes", "students_exceed_registered")
    ]


def test_without_children_aged_16_to_24_no_student_count_is_needed() -> None:
    person = insured()
    gathered = gather(person, "hijos_dependientes")
    assert gathered.complete
    assert value(gathered, "hijos_dependientes") == 0


# --- declared facts and what is missing ---------------------------------------------------------


def test_facts_the_registry_does_not_hold_come_from_the_claim_or_are_missing() -> None:
    person = insured()
    needs = specs("edad", declared=("reside_en_mexico", "municipio_indigena"))
    gathered = gather_inputs(
        person=person, claim_date=CLAIM_DATE, declared={"reside_en_mexico": True}, specs=needs
    )
    assert gathered.values["reside_en_mexico"].source == "declared"
    assert gathered.values["reside_en_mexico"].value is True
    assert [(m.name, m.reason) for m in gathered.missing] == [
        ("municipio_indigena", "not_declared")
    ]
    assert gathered.engine_inputs() == {"edad": Decimal(70), "reside_en_mexico": True}


def test_an_optional_input_takes_the_package_default() -> None:
    needs = {
        "bono": InputSpec(
            "bono", "number", {"es": "Bono", "en": "Bonus"}, optional=True, default=Decimal("0")
        )
    }
    gathered = gather_inputs(person=insured(), claim_date=CLAIM_DATE, declared={}, specs=needs)
    assert gathered.values["bono"].source == "default"
    assert gathered.engine_inputs() == {"bono": Decimal("0")}


def test_declared_facts_are_checked_against_what_the_package_asks() -> None:
    needs = {
        **specs("hijos_dependientes", "edad"),
        "padres_dependientes": InputSpec(
            "padres_dependientes", "number", {"es": "Padres", "en": "Parents"}
        ),
        "reside_en_mexico": InputSpec(
            "reside_en_mexico", "bool", {"es": "Reside", "en": "Resides"}
        ),
    }
    errors = FieldErrors()
    cleaned = inputs.clean_declared(
        {
            "edad": 80,  # derived: taken from the registry, never declared
            "color_favorito": "azul",  # not asked
            "reside_en_mexico": "yes",  # not a bool
            "padres_dependientes": 3,  # at most 2
            "hijos_estudiantes": 1,
        },
        needs,
        errors,
    )
    codes = {name: [e.code for e in items] for name, items in errors.errors.items()}
    assert codes == {
        "declared.edad": ["declared.derived"],
        "declared.color_favorito": ["declared.unknown"],
        "declared.reside_en_mexico": ["declared.invalid_type"],
        "declared.padres_dependientes": ["declared.out_of_range"],
    }
    assert cleaned == {"hijos_estudiantes": 1}


# --- the preview --------------------------------------------------------------------------------


def test_the_preview_shows_values_sources_and_missing_for_a_real_package_and_logs_the_read() -> (
    None
):
    person = insured(job("1980-01-07", "2010-12-31", ("1980-01-07", "150.00")))
    clerk = officer()
    preview = selectors.claim_inputs_preview(
        actor=clerk,
        person_id=person.pk,
        package="imss_1973",
        benefit="vejez",
        claim_date=CLAIM_DATE,
        declared={},
        purpose="ventanilla",
    )
    assert preview.values["semanas_cotizadas"].value == 1616
    assert {name: item.source for name, item in preview.values.items()} == {
        "edad": "registry",
        "semanas_cotizadas": "work_history",
        "salario_promedio_diario": "work_history",
        "conyuge": "registry",
        "hijos_dependientes": "registry",
        "tiene_empleo_vigente": "work_history",
        "cotizo_antes_1997": "work_history",
    }
    assert [m.name for m in preview.missing] == ["padres_dependientes"]
    entry = AccessLogEntry.objects.get(person_id=person.pk)
    assert (entry.action, entry.purpose) == ("claim_preview", "ventanilla")


def test_the_preview_refuses_a_bad_claim_and_another_region() -> None:
    person = insured()
    with pytest.raises(ValidationFailed) as refused:
        selectors.claim_inputs_preview(
            actor=officer(),
            person_id=person.pk,
            package="imss_1973",
            benefit="invalidez",
            claim_date=datetime.date.today() + datetime.timedelta(days=1),
            declared={},
        )
    assert set(refused.value.field_errors) == {"benefit", "claim_date"}
    with pytest.raises(NotFound):
        selectors.claim_inputs_preview(
            actor=officer(region="NL"),
            person_id=person.pk,
            package="imss_1973",
            benefit="vejez",
            claim_date=CLAIM_DATE,
            declared={},
        )
    assert not AccessLogEntry.objects.exists()
