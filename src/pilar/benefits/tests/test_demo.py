"""The demo's pension claims: entered, adjudicated and (mostly) approved through the services,
with one denial, and only once."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from pilar.benefits.demo import demo_benefits
from pilar.benefits.models import Award, Claim, ClaimStatus, Decision, DecisionStatus, Outcome
from pilar.benefits.tests.careers import insured, job
from pilar.core.roles import Role
from pilar.core.tests.factories import staff

pytestmark = pytest.mark.django_db


def _born(years_ago: int) -> datetime.date:
    today = timezone.localdate()
    return today.replace(year=today.year - years_ago, month=1, day=15)


def test_demo_claims_show_grants_a_pending_decision_and_a_denial() -> None:
    career = job("1980-01-07", "2010-12-31", ("1980-01-07", "150.00"), ("2000-01-01", "450.00"))
    for years in (70, 72, 75):
        insured(career, born=_born(years))
    insured(job("1985-03-04", "2015-06-30", ("1985-03-04", "200.00")), born=_born(62))
    maker = staff(Role.BENEFITS_OFFICER)
    checker = staff(Role.BENEFITS_OFFICER)

    summary = demo_benefits(maker=maker, checker=checker, region="JC", claims=3, leave_pending=1)

    assert summary.claims == 4  # three pension claims and the Bienestar claim made too young
    assert summary.pending == 1
    assert summary.denied == 1
    assert summary.awards == 2
    assert Award.objects.count() == 2
    denial = Decision.objects.get(outcome=Outcome.DENIED)
    assert denial.claim.package == "bienestar"
    assert denial.status == DecisionStatus.APPROVED
    assert denial.claim.status == ClaimStatus.DENIED
    assert Decision.objects.filter(status=DecisionStatus.PENDING, made_by=maker).count() == 1
    assert not Decision.objects.filter(checked_by=maker).exists()

    again = demo_benefits(maker=maker, checker=checker, region="JC")
    assert again.claims == 0
    assert Claim.objects.count() == 4
