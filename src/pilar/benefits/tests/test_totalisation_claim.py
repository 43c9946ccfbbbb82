"""Totalisation claims: a claim entered under an agreement is decided with this institution's
own weeks and the insurance periods another federation member sent, exactly as
``rules.totalisation.totalise`` computes; a missing document refuses the adjudication naming
the institution and writes nothing."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone, translation

from pilar.benefits import inputs as gathering
from pilar.benefits import services
from pilar.benefits.models import Claim, ClaimStatus, Decision
from pilar.benefits.tests.careers import CLAIM_DATE, insured, job, officer
from pilar.benefits.totalisation import AgreementNotApplicable, ForeignPeriodsMissing
from pilar.core.errors import ValidationFailed
from pilar.core.models import AuditEvent
from pilar.exchange.models import Direction, ExchangeMessage, ForeignPeriods, MessageStatus
from pilar.registry.models import Person
from pilar.rules import load_package
from pilar.rules.totalisation import (
    PackageScheme,
    Periods,
    load_agreement,
    schemes_from_agreement,
    totalise,
)

pytestmark = pytest.mark.django_db

EXAMPLE = Path(__file__).resolve().parents[4] / "docs/examples/agreement-imss-and-state.yaml"
NAME = "agreement-imss-and-state"


@pytest.fixture
def agreement_file(tmp_path: Path, settings: Any) -> Path:
    """The documented example agreement with the federation members named."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("  - id: mx_imss\n", "  - id: mx_imss\n    member: MX-IMSS\n", 1)
    text = text.replace("  - id: mx_state\n", "  - id: mx_state\n    member: MX-STATE\n", 1)
    path = tmp_path / f"{NAME}.yaml"
    path.write_text(text, encoding="utf-8")
    settings.PILAR_TOTALISATION_AGREEMENTS = {NAME: path}
    settings.PILAR_NODE_CODE = "MX-IMSS"
    return path


def short_career() -> Person:
    """Born 1955, insured at the IMSS 1990-01-01 to 1996-12-31 (2,557 days: 365 weeks) under the
    1973 law, short of its 500 weeks alone."""
    return insured(job("1990-01-01", "1996-12-31", ("1990-01-01", "300.00")))


def received(person: Person, *, weeks: int, days: int, member: str = "MX-STATE") -> ForeignPeriods:
    """A periods document as ``exchange.client``'s applier stores it (the exchange itself is
    tested in ``exchange/tests``)."""
    message = ExchangeMessage.objects.create(
        direction=Direction.OUT,
        message_id=str(uuid.uuid4()),
        sender="MX-IMSS",
        receiver="MX-HUB",
        action="periods-gather",
        purpose="totalisation",
        status=MessageStatus.ANSWERED,
        person=person,
    )
    document = {
        "type": "P5000",
        "institution": {"code": member, "name": "Instituto estatal", "country": "MX"},
        "person": {"fed_id": "FED-TEST"},
        "periods": [],
        "totals": {"days": days, "weeks": weeks, "unit": "week"},
        "as_of": "2025-05-01",
    }
    return ForeignPeriods.objects.create(
        person=person,
        member=member,
        document=document,
        signed_response={},
        message=message,
        purpose="totalisation",
        received_at=timezone.now(),
    )


def enter(person: Person, clerk: Any, agreement: str = NAME) -> Claim:
    return services.claim_create(
        actor=clerk,
        person_id=person.pk,
        package="imss_1973",
        benefit="vejez",
        claim_date=CLAIM_DATE,
        declared={"padres_dependientes": 0},
        agreement=agreement,
    )


def test_the_decision_is_the_pro_rata_amount_totalise_gives(agreement_file: Path) -> None:
    maker = officer()
    person = short_career()
    document = received(person, weeks=520, days=3640)  # 520 weeks = 120 months exactly
    claim = enter(person, maker)
    assert claim.agreement == NAME

    decision = services.claim_adjudicate(actor=maker, claim_id=claim.pk)

    package: Any = load_package("imss_1973")
    specs = gathering.input_specs(package)
    gathered = gathering.gather_inputs(
        person=person, claim_date=CLAIM_DATE, declared={"padres_dependientes": 0}, specs=specs
    )
    inputs = {k: v for k, v in gathered.engine_inputs().items() if k != "semanas_cotizadas"}
    agreement = load_agreement(path=agreement_file)
    direct = totalise(
        agreement,
        {"mx_imss": Periods(Decimal(365), "week"), "mx_state": Periods(Decimal(120), "month")},
        {
            **schemes_from_agreement(agreement, institutions=["mx_state"]),
            "mx_imss": PackageScheme(
                package,
                benefit="vejez",
                periods_input="semanas_cotizadas",
                inputs=inputs,
                required_periods=Decimal(500),
                unit="week",
            ),
        },
        on=CLAIM_DATE,
    )["mx_imss"]
    assert direct.entitled_independently is False
    assert direct.award_basis == "pro_rata", (direct.award_reason, inputs, direct.total_periods)
    assert direct.award > 0
    assert decision.outcome == "granted"
    assert decision.amount == direct.award
    assert decision.amount == direct.pro_rata_amount
    # 120 months are 520 weeks for the IMSS: 365 + 520 = 885.
    mine = decision.result["totalisation"]["institutions"][0]
    assert mine["institution"] == "mx_imss"
    assert mine["total_periods"] == "885"
    assert mine["explanation"]["children"]
    assert decision.result["values"]["pension_vejez"]["value"] == str(direct.award)
    foreign = decision.inputs["foreign_periods.mx_state"]
    assert foreign["value"] == "120.0000"
    assert foreign["detail"]["message_id"] == document.message.message_id
    assert foreign["detail"]["member"] == "MX-STATE"
    assert decision.inputs["semanas_cotizadas"]["value"] == 365
    event = AuditEvent.objects.get(action="decision.make", entity_id=str(decision.pk))
    assert event.changes["foreign_periods"][1] == {
        "foreign_periods.mx_state": document.message.message_id
    }
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.DECIDED


def test_a_newer_document_replaces_the_superseded_one(agreement_file: Path) -> None:
    maker = officer()
    person = short_career()
    old = received(person, weeks=52, days=364)
    old.superseded_at = timezone.now()
    old.save(update_fields=["superseded_at"])
    received(person, weeks=520, days=3640)
    decision = services.claim_adjudicate(actor=maker, claim_id=enter(person, maker).pk)
    assert decision.inputs["foreign_periods.mx_state"]["value"] == "120.0000"


def test_a_missing_document_refuses_naming_the_institution(agreement_file: Path) -> None:
    maker = officer()
    person = short_career()
    claim = enter(person, maker)
    before = (Decision.objects.count(), AuditEvent.objects.count())
    with translation.override("en"), pytest.raises(ForeignPeriodsMissing) as refused:
        services.claim_adjudicate(actor=maker, claim_id=claim.pk)
    assert refused.value.code == "benefits.foreign_periods_missing"
    assert "MX-STATE" in str(refused.value.message)
    assert "person's page" in str(refused.value.message)
    assert refused.value.extra["institutions"] == ["State Pensions Institute (example) (MX-STATE)"]
    with translation.override("es"), pytest.raises(ForeignPeriodsMissing) as refused:
        services.claim_adjudicate(actor=maker, claim_id=claim.pk)
    assert "Instituto de Pensiones del Estado (ejemplo) (MX-STATE)" in str(refused.value.message)
    assert "ficha de la persona" in str(refused.value.message)
    assert (Decision.objects.count(), AuditEvent.objects.count()) == before
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.ENTERED


def test_an_agreement_without_this_node_is_refused(agreement_file: Path, settings: Any) -> None:
    maker = officer()
    person = short_career()
    received(person, weeks=520, days=3640)
    claim = enter(person, maker)
    settings.PILAR_NODE_CODE = "MX-OTHER"
    with pytest.raises(AgreementNotApplicable) as refused:
        services.claim_adjudicate(actor=maker, claim_id=claim.pk)
    assert "MX-OTHER" in str(refused.value.message)


def test_an_unknown_agreement_is_a_field_error(agreement_file: Path) -> None:
    with pytest.raises(ValidationFailed) as refused:
        enter(short_career(), officer(), agreement="no-such-agreement")
    assert refused.value.field_errors["agreement"][0].code == "benefits.unknown_agreement"
    assert Claim.objects.count() == 0


def test_a_domestic_claim_is_unchanged(agreement_file: Path) -> None:
    maker = officer()
    person = short_career()
    received(person, weeks=520, days=3640)
    claim = enter(person, maker, agreement="")
    decision = services.claim_adjudicate(actor=maker, claim_id=claim.pk)
    # 365 weeks alone: denied, and no totalisation in the result.
    assert decision.outcome == "denied"
    assert "totalisation" not in decision.result
