"""Claims through the services, with the shipped scheme packages and the real database: entry,
adjudication, maker–checker approval into an award, denials with their unmet conditions,
returns and re-adjudication, withdrawal, optimistic locking, permissions and regions, and that
a refused write changes nothing."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import translation

from pilar.benefits import selectors, services
from pilar.benefits.errors import (
    ClaimExists,
    ClaimIncomplete,
    ClaimState,
    PackageUnavailable,
    SameOfficer,
    StaleVersion,
)
from pilar.benefits.models import (
    Award,
    AwardCalculation,
    Claim,
    ClaimStatus,
    Decision,
    DecisionStatus,
)
from pilar.benefits.tests.careers import (
    CLAIM_DATE,
    insured,
    long_career,
    marry,
    officer,
    relative,
    short_career,
)
from pilar.core.errors import NotFound, PermissionDenied, ValidationFailed
from pilar.core.models import AccessLogEntry, AuditEvent
from pilar.core.roles import Role
from pilar.core.tests.factories import actor
from pilar.registry.models import Person
from pilar.rules import load_package

pytestmark = pytest.mark.django_db


def enter(person: Person, clerk: Any = None, **overrides: Any) -> Claim:
    values: dict[str, Any] = {
        "package": "imss_1973",
        "benefit": "vejez",
        "claim_date": CLAIM_DATE,
        "declared": {"padres_dependientes": 0},
    }
    values.update(overrides)
    return services.claim_create(actor=clerk or officer(), person_id=person.pk, **values)


def writes() -> tuple[int, int, int, int, int]:
    """Counts of every row a benefits write can create, to show a refusal created none."""
    return (
        Claim.objects.count(),
        Decision.objects.count(),
        Award.objects.count(),
        AwardCalculation.objects.count(),
        AuditEvent.objects.count(),
    )


# --- the full flow ------------------------------------------------------------------------------


def test_a_grant_needs_a_second_officer_and_becomes_an_award_with_its_calculation() -> None:
    maker, checker = officer(), officer()
    person = long_career()
    marry(person, relative(datetime.date(1957, 1, 1)), since="1979-05-01")
    claim = enter(person, maker)
    assert claim.status == ClaimStatus.ENTERED
    assert claim.declared == {"padres_dependientes": 0}

    decision = services.claim_adjudicate(actor=maker, claim_id=claim.pk)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.DECIDED
    assert decision.status == DecisionStatus.PENDING
    assert decision.outcome == "granted"
    package = load_package("imss_1973")
    assert (decision.package_name, decision.package_version, decision.package_hash) == (
        package.name,
        package.version,
        package.content_hash,
    )
    assert (decision.evaluation_date, decision.start_date) == (CLAIM_DATE, CLAIM_DATE)
    assert decision.frequency == "monthly"
    # The inputs, worked out by hand: 70 on 2025-06-02; 1980-01-07 to 2010-12-31 is 11,317 days
    # = 1,616 weeks; the last 1,750 days are all at 450; married; no children; parents declared 0.
    stored = {name: (item["value"], item["source"]) for name, item in decision.inputs.items()}
    assert stored == {
        "edad": (70, "registry"),
        "semanas_cotizadas": (1616, "work_history"),
        "salario_promedio_diario": ("450.00", "work_history"),
        "conyuge": (True, "registry"),
        "hijos_dependientes": (0, "registry"),
        "padres_dependientes": (0, "declared"),
        "tiene_empleo_vigente": (False, "work_history"),
        "cotizo_antes_1997": (True, "work_history"),
    }
    # The amount is the package's for exactly those inputs, to the centavo.
    expected = package.evaluate(
        {
            "edad": 70,
            "semanas_cotizadas": 1616,
            "salario_promedio_diario": Decimal("450.00"),
            "conyuge": True,
            "hijos_dependientes": 0,
            "padres_dependientes": 0,
            "tiene_empleo_vigente": False,
            "cotizo_antes_1997": True,
        },
        on=CLAIM_DATE,
        outputs=["elegible_vejez", "pension_vejez"],
    ).values["pension_vejez"]
    assert isinstance(expected, Decimal)
    assert decision.amount == expected.quantize(Decimal("0.01"))
    assert decision.amount > 0
    assert decision.result["values"]["elegible_vejez"]["value"] is True
    assert decision.result["explanation"][0]["name"] == "elegible_vejez"

    before = writes()
    with pytest.raises(SameOfficer) as refused:
        services.decision_approve(actor=maker, decision_id=decision.pk)
    assert refused.value.code == "same_officer"
    assert writes() == before
    decision.refresh_from_db()
    assert decision.status == DecisionStatus.PENDING

    award = services.decision_approve(actor=checker, decision_id=decision.pk)
    assert award is not None
    decision.refresh_from_db()
    claim.refresh_from_db()
    assert decision.status == DecisionStatus.APPROVED
    assert decision.checked_by == checker.user
    assert claim.status == ClaimStatus.GRANTED
    assert (award.person_id, award.claim_id, award.decision_id) == (
        person.pk,
        claim.pk,
        decision.pk,
    )
    assert (award.amount, award.frequency, award.start_date, award.status) == (
        decision.amount,
        "monthly",
        CLAIM_DATE,
        "active",
    )
    assert (award.package_name, award.benefit, award.package_version) == (
        "imss_1973",
        "vejez",
        package.version,
    )
    [calculation] = award.calculations.all()
    assert calculation.amount == award.amount
    assert calculation.package_hash == package.content_hash
    assert calculation.inputs == decision.inputs
    assert calculation.values["pension_vejez"] == str(expected)
    actions = list(
        AuditEvent.objects.filter(person_id=person.pk)
        .order_by("id")
        .values_list("action", "actor_label")
    )
    assert actions == [
        ("claim.create", maker.label),
        ("decision.make", maker.label),
        ("decision.approve", checker.label),
        ("award.create", checker.label),
    ]


def test_a_denial_lists_each_unmet_condition_and_closes_the_claim() -> None:
    maker, checker = officer(), officer()
    person = short_career()
    claim = enter(person, maker)
    decision = services.claim_adjudicate(actor=maker, claim_id=claim.pk)
    assert decision.outcome == "denied"
    assert decision.amount is None
    assert decision.start_date is None
    from pilar.benefits.schemas import unmet_conditions

    # Two reasons: insured only from 2000 (the 1973 law is for those insured before
    # 1 July 1997), and 399 weeks where 500 are required.
    unmet = {u["test"]: u for u in unmet_conditions(decision)}
    assert set(unmet) == {"cotizo_antes_1997", "semanas_cotizadas >= semanas_minimas"}
    weeks = unmet["semanas_cotizadas >= semanas_minimas"]
    assert (weeks["value"], weeks["operator"], weeks["threshold"]) == ("399", ">=", "500")
    assert "138" in (weeks["reference"] or "")
    assert unmet["cotizo_antes_1997"]["label"]["es"]

    assert services.decision_approve(actor=checker, decision_id=decision.pk) is None
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.DENIED
    assert not Award.objects.exists()


def test_a_returned_decision_sends_the_claim_back_to_be_adjudicated_again() -> None:
    maker, checker = officer(), officer()
    person = long_career()
    claim = enter(person, maker)
    first = services.claim_adjudicate(actor=maker, claim_id=claim.pk)

    with pytest.raises(ValidationFailed) as no_reason:
        services.decision_return(actor=checker, decision_id=first.pk, reason="  ")
    assert "reason" in no_reason.value.field_errors
    with pytest.raises(SameOfficer):
        services.decision_return(actor=maker, decision_id=first.pk, reason="Revisar")

    returned = services.decision_return(
        actor=checker, decision_id=first.pk, reason="The spouse tie is missing from the registry."
    )
    assert returned.status == DecisionStatus.RETURNED
    assert returned.return_reason == "The spouse tie is missing from the registry."
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.ENTERED
    with pytest.raises(ClaimState):
        services.decision_approve(actor=checker, decision_id=first.pk)

    # The registry is corrected, and the claim decided again: a new pending decision.
    marry(person, relative(datetime.date(1957, 1, 1)))
    second = services.claim_adjudicate(actor=maker, claim_id=claim.pk)
    assert second.pk != first.pk
    assert second.inputs["conyuge"]["value"] is True
    assert first.inputs["conyuge"]["value"] is False
    assert list(claim.decisions.values_list("pk", flat=True)) == [second.pk, first.pk]
    assert services.decision_approve(actor=checker, decision_id=second.pk) is not None


def test_adjudication_refuses_missing_data_with_every_missing_datum_and_writes_nothing() -> None:
    clerk = officer()
    person = insured()
    claim = enter(
        person,
        clerk,
        package="bienestar",
        benefit="pension_bienestar",
        declared={"reside_en_mexico": True},
    )
    before = writes()
    # The message is worded in the active language; Spanish is the node's default.
    with translation.override("es"), pytest.raises(ClaimIncomplete) as refused:
        services.claim_adjudicate(actor=clerk, claim_id=claim.pk)
    assert [item.name for item in refused.value.missing] == [
        "mexicano_o_residente_25",
        "municipio_indigena",
    ]
    assert refused.value.extra["missing"][0]["label"]["es"].startswith("Es mexicano")
    assert "Vive en un municipio indígena" in str(refused.value.message)
    assert writes() == before
    claim.refresh_from_db()
    assert (claim.status, claim.version) == (ClaimStatus.ENTERED, 1)


def test_a_bimonthly_non_contributory_pension_from_declared_facts() -> None:
    maker, checker = officer(), officer()
    person = insured()  # 70 on the claim date, no work history at all
    claim = enter(
        person,
        maker,
        package="bienestar",
        benefit="pension_bienestar",
        declared={
            "reside_en_mexico": True,
            "mexicano_o_residente_25": True,
            "municipio_indigena": False,
        },
    )
    decision = services.claim_adjudicate(actor=maker, claim_id=claim.pk)
    assert (decision.outcome, decision.frequency) == ("granted", "bimonthly")
    assert decision.inputs["reside_en_mexico"]["source"] == "declared"
    award = services.decision_approve(actor=checker, decision_id=decision.pk)
    assert award is not None
    assert award.frequency == "bimonthly"
    assert award.amount == decision.amount


def test_a_benefit_decided_on_eligibility_only_is_granted_without_an_amount() -> None:
    maker, checker = officer(), officer()
    person = long_career()
    claim = enter(person, maker, package="imss_1997", benefit="vejez_garantizada", declared={})
    decision = services.claim_adjudicate(actor=maker, claim_id=claim.pk)
    assert (decision.outcome, decision.amount) == ("granted", None)
    award = services.decision_approve(actor=checker, decision_id=decision.pk)
    assert award is not None
    assert award.amount is None
    assert award.calculations.get().amount is None


# --- entry --------------------------------------------------------------------------------------


def test_bad_claims_are_refused_with_every_field_error_and_nothing_is_written() -> None:
    person = insured()
    before = writes()
    with pytest.raises(ValidationFailed) as refused:
        enter(
            person,
            package="imss_1973",
            benefit="invalidez",
            claim_date=datetime.date.today() + datetime.timedelta(days=3),
        )
    assert {
        name: [e.code for e in errors] for name, errors in refused.value.field_errors.items()
    } == {
        "benefit": ["benefits.unknown_benefit"],
        "claim_date": ["date.in_future"],
    }
    with pytest.raises(ValidationFailed) as unknown:
        enter(person, package="imss_2099")
    assert [e.code for e in unknown.value.field_errors["package"]] == ["benefits.unknown_package"]
    with pytest.raises(ValidationFailed) as derived:
        enter(person, declared={"semanas_cotizadas": 2000, "padres_dependientes": "dos"})
    assert set(derived.value.field_errors) == {
        "declared.semanas_cotizadas",
        "declared.padres_dependientes",
    }
    with pytest.raises(ValidationFailed) as before_birth:
        enter(person, claim_date=datetime.date(1950, 1, 1))
    assert "claim_date" in before_birth.value.field_errors
    assert writes() == before


def test_a_deceased_person_cannot_claim() -> None:
    person = insured()
    Person.objects.filter(pk=person.pk).update(death_date=datetime.date(2024, 1, 1))
    with pytest.raises(ValidationFailed) as refused:
        enter(person)
    assert [e.code for e in refused.value.field_errors["person_id"]] == ["benefits.person_deceased"]
    assert not Claim.objects.exists()


def test_one_open_claim_per_person_and_benefit() -> None:
    person = long_career()
    first = enter(person)
    with pytest.raises(ClaimExists) as refused:
        enter(person)
    assert refused.value.extra["claim_id"] == first.pk
    # Another benefit of the same scheme is another claim.
    assert enter(person, benefit="cesantia").pk != first.pk
    services.claim_withdraw(actor=officer(), claim_id=first.pk, reason="Presentada por error")
    assert enter(person).pk != first.pk


# --- state, locking, permissions, regions -------------------------------------------------------


def test_withdrawing_a_decided_claim_sets_its_pending_decision_aside() -> None:
    maker = officer()
    claim = enter(long_career(), maker)
    decision = services.claim_adjudicate(actor=maker, claim_id=claim.pk)
    withdrawn = services.claim_withdraw(
        actor=maker, claim_id=claim.pk, reason="El asegurado desiste"
    )
    assert (withdrawn.status, withdrawn.withdrawal_reason) == (
        ClaimStatus.WITHDRAWN,
        "El asegurado desiste",
    )
    decision.refresh_from_db()
    assert decision.status == DecisionStatus.RETURNED
    with pytest.raises(ClaimState):
        services.claim_adjudicate(actor=maker, claim_id=claim.pk)
    with pytest.raises(ClaimState):
        services.claim_withdraw(actor=maker, claim_id=claim.pk, reason="otra vez")


def test_a_decision_on_a_claim_changed_meanwhile_is_refused() -> None:
    maker, checker = officer(), officer()
    claim = enter(long_career(), maker)
    read_version = claim.version
    decision = services.claim_adjudicate(
        actor=maker, claim_id=claim.pk, expected_version=read_version
    )
    # The checker's page showed version 2 (decided); the maker withdraws meanwhile (version 3).
    services.claim_withdraw(actor=maker, claim_id=claim.pk, reason="desiste")
    with pytest.raises(StaleVersion) as stale:
        services.decision_approve(
            actor=checker, decision_id=decision.pk, expected_version=read_version + 1
        )
    assert stale.value.extra["current_version"] == read_version + 2
    with pytest.raises(StaleVersion):
        services.claim_adjudicate(actor=maker, claim_id=claim.pk, expected_version=read_version)


def test_each_step_needs_its_permission() -> None:
    person = long_career()
    registrar = actor(Role.REGISTRAR)
    auditor = actor(Role.AUDITOR)
    with pytest.raises(PermissionDenied):
        enter(person, registrar)
    claim = enter(person)
    with pytest.raises(PermissionDenied):
        services.claim_adjudicate(actor=auditor, claim_id=claim.pk)
    decision = services.claim_adjudicate(actor=officer(), claim_id=claim.pk)
    with pytest.raises(PermissionDenied):
        services.decision_approve(actor=auditor, decision_id=decision.pk)
    # Auditors read claims and awards, nationally.
    assert selectors.claim_get(actor=actor(Role.AUDITOR, region="NL"), claim_id=claim.pk) == claim


def test_claims_outside_the_officers_region_do_not_exist_for_them() -> None:
    claim = enter(long_career())
    decision = services.claim_adjudicate(actor=officer(), claim_id=claim.pk)
    elsewhere = officer(region="NL")
    with pytest.raises(NotFound):
        selectors.claim_get(actor=elsewhere, claim_id=claim.pk)
    with pytest.raises(NotFound):
        services.decision_approve(actor=elsewhere, decision_id=decision.pk)
    with pytest.raises(NotFound):
        enter(insured(region="JC"), elsewhere)
    assert selectors.claim_list(actor=elsewhere).total == 0


def test_reading_a_persons_claims_and_awards_is_logged_with_its_purpose() -> None:
    maker, checker = officer(), officer()
    person = long_career()
    claim = enter(person, maker)
    decision = services.claim_adjudicate(actor=maker, claim_id=claim.pk)
    award = services.decision_approve(actor=checker, decision_id=decision.pk)
    assert award is not None
    AccessLogEntry.objects.all()  # nothing logged by the writes themselves
    assert not AccessLogEntry.objects.exists()

    selectors.claim_get(actor=checker, claim_id=claim.pk, purpose="revisión")
    selectors.decision_get(actor=checker, decision_id=decision.pk, purpose="revisión")
    selectors.award_get(actor=checker, award_id=award.pk, purpose="pago")
    page = selectors.award_list(actor=checker, person_id=person.pk, purpose="pago")
    assert [a.pk for a in page.items] == [award.pk]
    selectors.claim_list(actor=checker, status="granted")  # a queue, not a read of a person
    logged = list(
        AccessLogEntry.objects.filter(person_id=person.pk)
        .order_by("id")
        .values_list("action", "purpose")
    )
    assert logged == [
        ("claim", "revisión"),
        ("decision", "revisión"),
        ("award", "pago"),
        ("awards", "pago"),
    ]


def test_the_queue_shows_what_awaits_my_approval() -> None:
    maker, checker = officer(), officer()
    mine = services.claim_adjudicate(actor=maker, claim_id=enter(long_career(), maker).pk)
    theirs = services.claim_adjudicate(actor=checker, claim_id=enter(short_career(), checker).pk)
    waiting_for_checker = selectors.claim_list(actor=checker, awaiting_my_approval=True)
    assert [c.pk for c in waiting_for_checker.items] == [mine.claim_id]
    assert maker.user is not None
    assert waiting_for_checker.items[0].pending_made_by_id == maker.user.pk  # type: ignore[attr-defined]
    assert [c.pk for c in selectors.claim_list(actor=maker, awaiting_my_approval=True).items] == [
        theirs.claim_id
    ]
    with pytest.raises(ValidationFailed):
        selectors.claim_list(actor=maker, status="lost")


def test_claim_kinds_list_every_benefit_with_the_facts_to_declare() -> None:
    kinds = {kind.key: kind for kind in selectors.claim_kinds()}
    assert {"imss_1973:vejez", "imss_1973:cesantia", "bienestar:pension_bienestar"} <= set(kinds)
    vejez = kinds["imss_1973:vejez"]
    assert vejez.frequency == "monthly"
    assert [item.name for item in vejez.inputs] == ["padres_dependientes", "hijos_estudiantes"]
    assert "semanas_cotizadas" in [item.name for item in vejez.derived]
    assert vejez.label["es"] == "Pensión de vejez"
    bienestar = kinds["bienestar:pension_bienestar"]
    assert bienestar.frequency == "bimonthly"
    assert {item.name for item in bienestar.inputs} == {
        "reside_en_mexico",
        "mexicano_o_residente_25",
        "municipio_indigena",
    }


def test_a_broken_package_hides_its_own_kinds_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import pilar.rules
    from pilar.rules import PackageIntegrityError

    real = pilar.rules.load_package

    def load(name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if name == "bienestar":
            raise PackageIntegrityError({"name": name}, location="bienestar/1.0.0")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(pilar.rules, "load_package", load)
    packages = {kind.package for kind in selectors.claim_kinds()}
    assert packages == {"imss_1973", "imss_1997"}
    person = insured()
    with pytest.raises(PackageUnavailable) as refused:
        enter(person, package="bienestar", benefit="pension_bienestar", declared={})
    assert refused.value.status == 503
    assert not Claim.objects.exists()


def test_the_database_refuses_a_checker_who_is_the_maker() -> None:
    maker = officer()
    decision = services.claim_adjudicate(actor=maker, claim_id=enter(long_career(), maker).pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        Decision.objects.filter(pk=decision.pk).update(checked_by=decision.made_by)
