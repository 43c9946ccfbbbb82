"""Recalculation runs: what-if previews change nothing, applications write one calculation per
award and update the amounts, a minimum-wage change moves exactly the minimum pensions, a run
resumed after a crash never writes twice, and bad requests are refused with nothing written.

The scheme packages live in a temporary folder for these tests: the shipped ``imss_1973 1.0.0``
and a ``1.0.1`` that adds a 2027 minimum wage, both published there, and a draft ``1.0.2``. Awards
are made by ``make_award`` (an approved claim and decision, the award and its first calculation,
with the amount the engine gives on the claim date), and one through the claim services, so the
reader is proven on the inputs adjudication really stores.
"""

from __future__ import annotations

import datetime
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from pilar.benefits import recalculation, services, tasks
from pilar.benefits.models import (
    Award,
    AwardCalculation,
    CalculationReason,
    Claim,
    ClaimStatus,
    Decision,
    DecisionStatus,
    Outcome,
    RecalculationRun,
    RunKind,
    RunStatus,
)
from pilar.benefits.tests.careers import CLAIM_DATE, long_career
from pilar.core import jobs
from pilar.core.actor import Actor
from pilar.core.errors import PermissionDenied, ValidationFailed
from pilar.core.models import AuditEvent, Job, User
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.registry.tests.factories import PersonFactory
from pilar.rules import load_package, publish
from pilar.rules.package import SCHEMES_DIR

PACKAGE = "imss_1973"
NEW_YEAR = datetime.date(2027, 1, 1)
NEW_MINIMUM_WAGE = "350.00"
# 2025's minimum wage is 278.80 pesos a day: the minimum pension is 278.80 × 30.4 = 8,475.52.
MINIMUM_PENSION_2025 = Decimal("8475.52")
MINIMUM_PENSION_2027 = Decimal("10640.00")  # 350.00 × 30.4

# Far below the minimum: 200 pesos a day, 520 weeks, no family (art. 164 assistance of 15%).
LOW_EARNER = {
    "edad": 66,
    "semanas_cotizadas": 520,
    "salario_promedio_diario": "200.00",
    "conyuge": False,
    "hijos_dependientes": 0,
    "padres_dependientes": 0,
    "tiene_empleo_vigente": False,
    "cotizo_antes_1997": True,
}
# Far above it, and above six minimum wages whichever minimum wage applies (3,000 / 350 =
# 8.6): the art. 167 group, hence the amount, does not depend on the minimum wage.
HIGH_EARNER = {**LOW_EARNER, "semanas_cotizadas": 1500, "salario_promedio_diario": "3000.00"}


def rules_copy(folder: Path, version: str, *, minimum_wage_2027: str | None = None) -> None:
    """Copy the shipped imss_1973 1.0.0 as ``version``, optionally with a 2027 minimum wage."""
    source = SCHEMES_DIR / PACKAGE / "1.0.0"
    target = folder / PACKAGE / version
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("tests"))
    package_yaml = target / "package.yaml"
    package_yaml.write_text(
        package_yaml.read_text().replace("version: 1.0.0", f"version: {version}")
    )
    if minimum_wage_2027 is not None:
        parameters = target / "parameters.yaml"
        text = parameters.read_text().rstrip("\n")
        assert text.endswith("needs_verification: true}")  # the 2026 entry, last of the series
        text += (
            f"\n      - {{from: 2027-01-01, value: {minimum_wage_2027}, recorded: 2026-12-01, "
            'source: "DOF, resolución de la CONASAMI, salario mínimo general 2027", '
            "needs_verification: true}\n"
        )
        parameters.write_text(text)


@pytest.fixture
def schemes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A schemes folder of our own: 1.0.0 and 1.0.1 published, 1.0.2 a draft."""
    folder = tmp_path / "schemes"
    rules_copy(folder, "1.0.0")
    rules_copy(folder, "1.0.1", minimum_wage_2027=NEW_MINIMUM_WAGE)
    rules_copy(folder, "1.0.2", minimum_wage_2027="360.00")
    publish(PACKAGE, "1.0.0", schemes_dir=folder)
    publish(PACKAGE, "1.0.1", schemes_dir=folder)
    monkeypatch.setattr("pilar.rules.package.SCHEMES_DIR", folder)
    return folder


def officer() -> Actor:
    return Actor.for_user(staff(Role.BENEFITS_OFFICER), channel="ui")


def stored_inputs(values: dict[str, Any]) -> dict[str, Any]:
    """Inputs as a decision stores them (``GatheredInputs.to_dict``): value, source, label."""
    return {
        name: {
            "value": value,
            "source": "work_history",
            "label": {"es": name, "en": name},
            "detail": {},
        }
        for name, value in values.items()
    }


def make_award(
    inputs: dict[str, Any],
    *,
    benefit: str = "vejez",
    claim_date: datetime.date = datetime.date(2025, 6, 2),
    version: str = "1.0.0",
) -> Award:
    """An award as approval leaves it, with the amount the engine gives on the claim date."""
    package = load_package(PACKAGE, version)
    info = package.benefits[benefit]
    assert info.amount is not None
    result = package.evaluate(
        inputs, on=claim_date, known_at=claim_date, outputs=[info.eligible, info.amount]
    )
    assert result.values[info.eligible] is True
    amount = Decimal(str(result.values[info.amount]))
    maker = User.objects.create(username=f"maker{User.objects.count()}")
    checker = User.objects.create(username=f"checker{User.objects.count()}")
    person = PersonFactory.create()
    claim = Claim.objects.create(
        person=person,
        package=PACKAGE,
        benefit=benefit,
        claim_date=claim_date,
        status=ClaimStatus.GRANTED,
    )
    common = {
        "package_name": PACKAGE,
        "package_version": package.version,
        "package_hash": package.content_hash,
    }
    decision = Decision.objects.create(
        claim=claim,
        outcome=Outcome.GRANTED,
        amount=amount,
        frequency="monthly",
        start_date=claim_date,
        evaluation_date=claim_date,
        known_at=claim_date,
        inputs=stored_inputs(inputs),
        result=result.to_dict(),
        status=DecisionStatus.APPROVED,
        made_by=maker,
        checked_by=checker,
        **common,
    )
    award = Award.objects.create(
        person=person,
        claim=claim,
        decision=decision,
        benefit=benefit,
        amount=amount,
        frequency="monthly",
        start_date=claim_date,
        **common,
    )
    AwardCalculation.objects.create(
        award=award,
        reason=CalculationReason.AWARD,
        evaluation_date=claim_date,
        known_at=claim_date,
        inputs=stored_inputs(inputs),
        amount=amount,
        values={name: str(value) for name, value in result.values.items()},
        result=result.to_dict(),
        **common,
    )
    return award


def run_jobs() -> None:
    jobs.run_pending()


def what_if(actor: Actor, **changes: Any) -> RecalculationRun:
    arguments: dict[str, Any] = {
        "actor": actor,
        "package": PACKAGE,
        "version": "1.0.0",
        "overrides": {
            "salario_minimo_diario": [{"valid_from": "2027-01-01", "value": NEW_MINIMUM_WAGE}]
        },
        "on": NEW_YEAR,
    }
    arguments.update(changes)
    return recalculation.recalculation_preview(**arguments)


def snapshot() -> dict[int, tuple[Any, ...]]:
    return {
        award.pk: (award.amount, award.package_version, award.package_hash, award.version)
        for award in Award.objects.all()
    }


pytestmark = pytest.mark.django_db(transaction=True)


# --- previews -------------------------------------------------------------------------------------


def test_a_minimum_wage_preview_raises_exactly_the_minimum_pensions_and_changes_nothing(
    schemes: Path,
) -> None:
    low = [make_award(LOW_EARNER) for _ in range(3)]
    high = [make_award(HIGH_EARNER) for _ in range(2)]
    assert {award.amount for award in low} == {MINIMUM_PENSION_2025}
    before = snapshot()
    calculations = AwardCalculation.objects.count()

    run = what_if(officer())
    assert run.status == RunStatus.QUEUED
    assert run.kind == RunKind.PREVIEW
    run_jobs()
    run.refresh_from_db()

    assert run.status == RunStatus.DONE, run.error
    assert (run.processed, run.total) == (5, 5)
    summary = run.summary
    assert summary["evaluated"] == 5
    assert (summary["changed"], summary["increased"], summary["decreased"]) == (3, 3, 0)
    assert {row["award_id"] for row in summary["largest"]} == {award.pk for award in low}
    assert all(row["after"] == 1_064_000 for row in summary["largest"])  # centavos
    high_total = sum(int((award.amount or 0) * 100) for award in high)
    monthly = summary["totals"]["monthly"]
    assert monthly["awards"] == 5
    assert monthly["before"] == 3 * 847_552 + high_total
    assert monthly["after"] == 3 * 1_064_000 + high_total
    # 8,475.52 → 10,640.00 is +25.5%.
    assert summary["buckets"] == {"up_over_20": 3, "unchanged": 2}
    assert summary["errors"]["count"] == 0
    # Nothing changed: no calculation, no award.
    assert AwardCalculation.objects.count() == calculations
    assert snapshot() == before


def test_without_the_what_if_value_the_law_in_force_applies(schemes: Path) -> None:
    # On 1 January 2027 version 1.0.0 still has 2026's minimum wage, 315.04: 9,577.22.
    award = make_award(LOW_EARNER)
    run = what_if(officer(), overrides=None)
    run_jobs()
    run.refresh_from_db()
    assert run.summary["largest"] == [
        {
            "award_id": award.pk,
            "person_id": award.person_id,
            "benefit": "vejez",
            "before": 847_552,
            "after": 957_722,
        }
    ]
    assert run.overrides == {}


def test_an_award_the_rules_cannot_evaluate_is_listed_with_its_code_and_left_alone(
    schemes: Path,
) -> None:
    good = make_award(HIGH_EARNER)
    broken = make_award(LOW_EARNER)
    calculation = broken.calculations.get()
    inputs = dict(calculation.inputs)
    del inputs["semanas_cotizadas"]
    inputs["conyuge"] = {**inputs["conyuge"], "value": "perhaps"}
    AwardCalculation.objects.filter(pk=calculation.pk).update(inputs=inputs)

    run = what_if(officer())
    run_jobs()
    run.refresh_from_db()

    errors = run.summary["errors"]
    assert errors["count"] == 1
    assert errors["rows"] == [
        {"award_id": broken.pk, "person_id": broken.person_id, "code": "bad_input:conyuge"}
    ]
    assert run.summary["evaluated"] == 1
    assert run.processed == 2
    assert run.summary["largest"] == []  # the good award does not change
    assert good.pk not in {row["award_id"] for row in errors["rows"]}


def test_an_award_made_through_the_claim_services_is_read_as_adjudication_stored_it(
    schemes: Path,
) -> None:
    maker = staff(Role.BENEFITS_OFFICER)
    checker = staff(Role.BENEFITS_OFFICER)
    person = long_career()
    as_maker = Actor.for_user(maker, channel="ui")
    claim = services.claim_create(
        actor=as_maker,
        person_id=person.pk,
        package=PACKAGE,
        benefit="vejez",
        claim_date=CLAIM_DATE,
        declared={"padres_dependientes": 0},
    )
    decision = services.claim_adjudicate(actor=as_maker, claim_id=claim.pk)
    award = services.decision_approve(
        actor=Actor.for_user(checker, channel="ui"), decision_id=decision.pk
    )
    assert award is not None
    assert award.amount

    # The same law, the same date: the bulk evaluation finds the amount adjudication found.
    run = recalculation.recalculation_preview(
        actor=as_maker, package=PACKAGE, version="1.0.1", overrides={}, on=CLAIM_DATE
    )
    run_jobs()
    run.refresh_from_db()
    assert run.status == RunStatus.DONE, run.error
    assert run.summary["errors"]["count"] == 0, run.summary["errors"]
    assert (run.summary["evaluated"], run.summary["changed"]) == (1, 0)


# --- applications -------------------------------------------------------------------------------


def test_apply_writes_one_calculation_per_award_and_updates_the_awards(schemes: Path) -> None:
    low = [make_award(LOW_EARNER) for _ in range(2)]
    high = make_award(HIGH_EARNER)
    cesantia = make_award({**HIGH_EARNER, "edad": 62}, benefit="cesantia")
    actor = officer()
    new = load_package(PACKAGE, "1.0.1")

    run = recalculation.recalculation_apply(
        actor=actor, package=PACKAGE, version="1.0.1", on=NEW_YEAR, reason="Salario mínimo 2027"
    )
    run_jobs()
    run.refresh_from_db()

    assert run.status == RunStatus.DONE, run.error
    assert run.created_by == actor.user
    assert run.summary["evaluated"] == 4
    assert run.summary["increased"] == 2
    new_calculations = AwardCalculation.objects.filter(run=run)
    assert new_calculations.count() == 4
    assert sorted(new_calculations.values_list("award_id", flat=True)) == sorted(
        award.pk for award in [*low, high, cesantia]
    )
    for award in [*low, high, cesantia]:
        first = AwardCalculation.objects.get(award=award, reason=CalculationReason.AWARD)
        latest = AwardCalculation.objects.get(award=award, run=run)
        award.refresh_from_db()
        assert latest.reason == CalculationReason.RECALCULATION
        assert (latest.package_name, latest.package_version, latest.package_hash) == (
            PACKAGE,
            "1.0.1",
            new.content_hash,
        )
        # Who asked is the run's, not repeated on a million rows.
        assert (latest.evaluation_date, latest.run, latest.created_by_id) == (NEW_YEAR, run, None)
        assert latest.inputs == first.inputs
        assert latest.result is None
        assert award.amount == latest.amount
        assert (award.package_version, award.package_hash, award.version) == (
            "1.0.1",
            new.content_hash,
            2,
        )
    for award in low:
        award.refresh_from_db()
        assert award.amount == MINIMUM_PENSION_2027
        assert AwardCalculation.objects.get(award=award, run=run).values == {
            "elegible_vejez": True,
            "pension_vejez": "10640.00",
        }
    assert AwardCalculation.objects.get(award=cesantia, run=run).amount == cesantia.amount
    # One audit event for the request, one per batch, one at the end; none per award.
    actions = list(
        AuditEvent.objects.filter(entity_type="recalculation_run", entity_id=str(run.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["recalculation.apply", "recalculation.batch", "recalculation.finish"]
    assert not AuditEvent.objects.filter(entity_type="award").exists()


def test_a_stored_bulk_calculation_explains_itself_again(schemes: Path) -> None:
    award = make_award(LOW_EARNER)
    run = recalculation.recalculation_apply(
        actor=officer(), package=PACKAGE, version="1.0.1", on=NEW_YEAR, reason="2027"
    )
    run_jobs()
    calculation = AwardCalculation.objects.get(award=award, run=run)
    result = recalculation.calculation_explanation(calculation)
    assert result.values["pension_vejez"] == calculation.amount
    assert result.version == "1.0.1"
    assert result.explanation[1].name == "pension_vejez"


@pytest.mark.parametrize("crash_at", ["written", "committed"])
def test_a_crashed_apply_resumes_without_writing_twice(
    schemes: Path, monkeypatch: pytest.MonkeyPatch, crash_at: str
) -> None:
    awards = [make_award(LOW_EARNER if n % 2 else HIGH_EARNER) for n in range(5)]
    monkeypatch.setattr(tasks, "BATCH_AWARDS", 2)
    run = recalculation.recalculation_apply(
        actor=officer(), package=PACKAGE, version="1.0.1", on=NEW_YEAR, reason="2027"
    )
    batches = []

    def crash_in_the_second_batch(point: str) -> None:
        if point == crash_at:
            batches.append(point)
            if len(batches) == 2:
                raise RuntimeError("the worker died")

    monkeypatch.setattr(tasks, "_batch_checkpoint", crash_in_the_second_batch)
    with pytest.raises(RuntimeError):
        tasks.recalculation_execute(run_id=run.pk)
    run.refresh_from_db()
    # Crashing inside the second batch's transaction undoes it; after its commit, it stays.
    done_before_crash = 2 if crash_at == "written" else 4
    assert AwardCalculation.objects.filter(run=run).count() == done_before_crash
    assert run.processed == done_before_crash
    assert run.status == RunStatus.RUNNING  # the queue will try again

    monkeypatch.setattr(tasks, "_batch_checkpoint", None)
    tasks.recalculation_execute(run_id=run.pk)
    tasks.recalculation_execute(run_id=run.pk)  # a finished run is left as it is
    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    assert run.processed == run.total == 5
    for award in awards:
        assert AwardCalculation.objects.filter(award=award, run=run).count() == 1
        award.refresh_from_db()
        assert award.version == 2
    assert run.summary["evaluated"] == 5
    assert run.summary["increased"] == 2


def test_a_job_that_keeps_failing_fails_the_run(
    schemes: Path, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    make_award(LOW_EARNER)
    settings.PILAR_JOB_MAX_ATTEMPTS = 2

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(tasks, "write_calculations", broken)
    run = recalculation.recalculation_apply(
        actor=officer(), package=PACKAGE, version="1.0.1", on=NEW_YEAR, reason="2027"
    )
    jobs.run_pending()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "disk full" in run.error
    assert Job.objects.get(pk=run.job_id or 0).attempts == 2
    assert not AwardCalculation.objects.filter(run=run).exists()


def test_only_a_published_version_is_applied(schemes: Path) -> None:
    make_award(LOW_EARNER)
    with pytest.raises(recalculation.RecalculationNotPublished):
        recalculation.recalculation_apply(
            actor=officer(), package=PACKAGE, version="1.0.2", on=NEW_YEAR, reason="2027"
        )
    assert not RecalculationRun.objects.exists()
    assert not Job.objects.exists()


def test_one_application_of_a_package_at_a_time(schemes: Path) -> None:
    actor = officer()
    first = recalculation.recalculation_apply(
        actor=actor, package=PACKAGE, version="1.0.1", on=NEW_YEAR, reason="2027"
    )
    with pytest.raises(recalculation.RecalculationRunning):
        recalculation.recalculation_apply(
            actor=actor, package=PACKAGE, version="1.0.1", on=NEW_YEAR, reason="again"
        )
    assert list(RecalculationRun.objects.values_list("pk", flat=True)) == [first.pk]


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        (
            {"salario_minimo": [{"valid_from": "2027-01-01", "value": "350"}]},
            "overrides.salario_minimo",
            "benefits.recalculation.unknown_parameter",
        ),
        (
            {"salario_minimo_diario": [{"valid_from": "2027-13-01", "value": "350"}]},
            "overrides.salario_minimo_diario.valid_from",
            "date.invalid",
        ),
        (
            {"salario_minimo_diario": [{"value": "350"}]},
            "overrides.salario_minimo_diario.valid_from",
            "date.invalid",
        ),
        (
            {"salario_minimo_diario": [{"valid_from": "2027-01-01", "value": "mucho"}]},
            "overrides.salario_minimo_diario.value",
            "benefits.recalculation.bad_value",
        ),
        (
            {"salario_minimo_diario": [{"valid_from": "2027-01-01", "value": True}]},
            "overrides.salario_minimo_diario.value",
            "benefits.recalculation.bad_value",
        ),
        (
            {"salario_minimo_diario": []},
            "overrides.salario_minimo_diario",
            "benefits.recalculation.no_values",
        ),
    ],
)
def test_bad_what_if_values_are_refused_and_nothing_is_written(
    schemes: Path, overrides: dict[str, Any], field: str, code: str
) -> None:
    actor = officer()
    with pytest.raises(ValidationFailed) as refused:
        what_if(actor, overrides=overrides)
    assert [error.code for error in refused.value.field_errors[field]] == [code]
    assert not RecalculationRun.objects.exists()
    assert not Job.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="recalculation").exists()


def test_every_problem_is_reported_at_once(schemes: Path) -> None:
    with pytest.raises(ValidationFailed) as refused:
        what_if(
            officer(),
            overrides={
                "salario_minimo": [{"valid_from": "2027-01-01", "value": "1"}],
                "edad_vejez": [{"valid_from": "mañana", "value": "sesenta"}],
            },
        )
    assert set(refused.value.field_errors) == {
        "overrides.salario_minimo",
        "overrides.edad_vejez.valid_from",
        "overrides.edad_vejez.value",
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"package": "imss_2099"}, "package"),
        ({"version": "9.9.9"}, "version"),
        ({"on": "2027-01-01"}, "on"),
    ],
)
def test_unknown_packages_versions_and_bad_dates_are_refused(
    schemes: Path, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        what_if(officer(), **changes)
    assert field in refused.value.field_errors
    assert not RecalculationRun.objects.exists()


def test_staff_without_the_permission_cannot_run_or_read_recalculations(schemes: Path) -> None:
    registrar = Actor.for_user(staff(Role.REGISTRAR), channel="ui")
    with pytest.raises(PermissionDenied):
        what_if(registrar)
    with pytest.raises(PermissionDenied):
        recalculation.recalculation_list(actor=registrar)
    assert not RecalculationRun.objects.exists()


# --- the summary arithmetic (no database) --------------------------------------------------------


@pytest.mark.django_db(transaction=False)
def test_batches_add_up_to_the_same_summary_as_one_batch() -> None:
    import polars as pl

    evaluated = pl.DataFrame(
        {
            "award_id": [1, 2, 3, 4],
            "person_id": [10, 20, 30, 40],
            "benefit": ["vejez"] * 4,
            "frequency": ["monthly"] * 4,
            "calculation_id": [1, 2, 3, 4],
            "before": [10_000, 10_000, 10_000, 0],
            "after": [10_050, 9_000, 10_000, 500],
            "values_json": ["{}"] * 4,
        }
    )
    errors = pl.DataFrame({"award_id": [5], "person_id": [50], "code": ["not_eligible"]})
    whole = tasks.merge_figures({}, tasks.batch_figures(evaluated, errors))
    split = tasks.merge_figures(
        tasks.merge_figures({}, tasks.batch_figures(evaluated.head(2), errors.head(0))),
        tasks.batch_figures(evaluated.tail(2), errors),
    )
    assert whole == split
    assert whole["buckets"] == {"up_0_1": 1, "down_10_20": 1, "unchanged": 1, "up_over_20": 1}
    assert [row["award_id"] for row in whole["largest"]] == [2, 4, 1]
    assert whole["totals"]["monthly"] == {"awards": 4, "before": 30_000, "after": 29_550}
    assert whole["errors"]["by_code"] == {"not_eligible": 1}


# --- the screens ----------------------------------------------------------------------------------


def test_the_what_if_form_starts_a_preview_and_its_page_shows_the_summary(schemes: Path) -> None:
    make_award(LOW_EARNER)
    user = staff(Role.BENEFITS_OFFICER)
    client = Client(headers={"accept-language": "es"})
    client.force_login(user)
    page = client.get(reverse("recalculation:preview_new"))
    assert page.status_code == 200
    assert "salario_minimo_diario" in page.content.decode()

    response = client.post(
        reverse("recalculation:preview_new"),
        {
            "package": f"{PACKAGE}:1.0.0",
            "parameter": "salario_minimo_diario",
            "value": NEW_MINIMUM_WAGE,
            "valid_from": "2027-01-01",
        },
    )
    run = RecalculationRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("recalculation:run_detail", args=[run.pk])
    progress = client.get(
        reverse("recalculation:run_progress", args=[run.pk]), headers={"HX-Request": "true"}
    )
    assert 'hx-trigger="every 1s"' in progress.content.decode()

    run_jobs()
    done = client.get(reverse("recalculation:run_detail", args=[run.pk])).content.decode()
    assert "hx-trigger" not in done
    assert "10,640.00" in done
    assert "8,475.52" in done
    listing = client.get(reverse("recalculation:run_list")).content.decode()
    assert reverse("recalculation:run_detail", args=[run.pk]) in listing


def test_the_form_shows_the_services_refusal_on_its_fields(schemes: Path) -> None:
    client = Client(headers={"accept-language": "en"})
    client.force_login(staff(Role.BENEFITS_OFFICER))
    response = client.post(
        reverse("recalculation:preview_new"),
        {
            "package": f"{PACKAGE}:1.0.0",
            "parameter": "salario_minimo_diario",
            "value": "a lot",
            "valid_from": "2027-01-01",
        },
    )
    assert response.status_code == 422
    assert "takes a number" in response.content.decode()
    assert not RecalculationRun.objects.exists()


def test_apply_from_the_screen_needs_a_published_version_and_a_reason(schemes: Path) -> None:
    make_award(LOW_EARNER)
    client = Client(headers={"accept-language": "en"})
    client.force_login(staff(Role.BENEFITS_OFFICER))
    refused = client.post(
        reverse("recalculation:apply_new"),
        {"package": f"{PACKAGE}:1.0.2", "on": "2027-01-01", "reason": "2027"},
    )
    assert refused.status_code == 422
    assert not RecalculationRun.objects.exists()
    accepted = client.post(
        reverse("recalculation:apply_new"),
        {"package": f"{PACKAGE}:1.0.1", "on": "2027-01-01", "reason": "Salario mínimo 2027"},
    )
    run = RecalculationRun.objects.get()
    assert accepted.status_code == 302
    assert run.kind == RunKind.APPLY


def test_staff_without_the_permission_get_a_403(schemes: Path) -> None:
    client = Client()
    client.force_login(staff(Role.REGISTRAR))
    assert client.get(reverse("recalculation:run_list")).status_code == 403
    assert client.get(reverse("recalculation:preview_new")).status_code == 403


def test_the_award_page_explains_a_recalculated_amount_again_from_its_version(
    schemes: Path,
) -> None:
    award = make_award(LOW_EARNER)
    run = recalculation.recalculation_apply(
        actor=officer(), package=PACKAGE, version="1.0.1", on=NEW_YEAR, reason="2027"
    )
    run_jobs()
    recalculated = AwardCalculation.objects.get(award=award, run=run)
    assert recalculated.result is None  # a bulk calculation keeps values, not the tree
    client = Client(headers={"accept-language": "en"})
    client.force_login(staff(Role.AUDITOR))
    listing = client.get(reverse("benefits:award_detail", args=[award.pk])).content.decode()
    page_url = reverse("benefits:award_calculation", args=[award.pk, recalculated.pk])
    assert page_url in listing
    page = client.get(page_url)
    text = page.content.decode()
    assert page.status_code == 200
    assert "computed again" in text
    assert "LSS 1973 art. 168" in text  # the minimum pension step, with its article
    assert "different amount" not in text
    other = make_award(HIGH_EARNER)
    foreign = AwardCalculation.objects.filter(award=other).first()
    assert foreign is not None
    wrong = reverse("benefits:award_calculation", args=[award.pk, foreign.pk])
    assert client.get(wrong).status_code == 404
