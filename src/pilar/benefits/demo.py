"""Demo claims and awards: a handful of older persons claim their pensions, a first benefits
officer adjudicates them through the rules engine and a second approves most of them, so the demo
shows every state of the maker–checker flow with real explanations.

Everything goes through the services, exactly as a clerk's clicks would: nothing here writes a
model directly.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Exists, OuterRef
from django.utils import timezone

from pilar.benefits.models import Claim
from pilar.benefits.selectors import claim_kinds
from pilar.benefits.services import claim_adjudicate, claim_create, decision_approve
from pilar.core.actor import Actor
from pilar.core.errors import ApplicationError
from pilar.core.models import User
from pilar.registry.models import Employment, Person

# Bool facts a claimant declares that the demo answers "yes" to: living in Mexico and being
# Mexican (the synthetic population is), so Bienestar claims turn on age alone.
DECLARED_TRUE = frozenset({"reside_en_mexico", "mexicano_o_residente_25"})


@dataclass
class DemoBenefits:
    claims: int = 0
    awards: int = 0
    pending: int = 0
    denied: int = 0
    skipped: list[str] = field(default_factory=list)


def _declared(kind_inputs: list[Any]) -> dict[str, Any]:
    declared: dict[str, Any] = {}
    for spec in kind_inputs:
        if spec.type == "bool":
            declared[spec.name] = spec.name in DECLARED_TRUE
        elif spec.type == "number":
            declared[spec.name] = 0
    return declared


def _age(person: Person, on: datetime.date) -> int:
    years = on.year - person.birth_date.year
    return years - ((on.month, on.day) < (person.birth_date.month, person.birth_date.day))


def demo_benefits(
    *, maker: User, checker: User, region: str, claims: int = 12, leave_pending: int = 2
) -> DemoBenefits:
    """Enter ``claims`` claims for older persons of ``region`` (the officers' region), adjudicate
    them as ``maker`` and approve all but ``leave_pending`` as ``checker``. Runs once: a node
    that already has claims is left as it is, so running the demo twice adds nothing."""
    summary = DemoBenefits()
    if Claim.objects.exists():
        return summary
    today = timezone.localdate()
    kinds = {kind.key: kind for kind in claim_kinds()}
    maker_actor = Actor.for_user(maker, channel="web")
    checker_actor = Actor.for_user(checker, channel="web")
    has_claim = Claim.objects.filter(person=OuterRef("pk"))
    has_work = Employment.objects.filter(person=OuterRef("pk"))
    candidates = (
        Person.objects.filter(
            region=region,
            death_date__isnull=True,
            birth_date__lte=today.replace(year=today.year - 60),
        )
        .annotate(claimed=Exists(has_claim), worked=Exists(has_work))
        .filter(claimed=False, worked=True)
        .order_by("birth_date", "pk")[: claims * 3]
    )
    decided = []
    for person in candidates:
        if summary.claims >= claims:
            break
        age = _age(person, today)
        old_law = person.employments.filter(start_date__lt=datetime.date(1997, 7, 1)).exists()
        if summary.claims % 4 == 3 and age >= 65:
            key = "bienestar:pension_bienestar"
        elif old_law:
            key = "imss_1973:vejez" if age >= 65 else "imss_1973:cesantia"
        else:
            key = "imss_1997:vejez_garantizada" if age >= 65 else "imss_1997:cesantia_garantizada"
        kind = kinds.get(key)
        if kind is None:
            summary.skipped.append(key)
            continue
        try:
            claim = claim_create(
                actor=maker_actor,
                person_id=person.pk,
                package=kind.package,
                benefit=kind.benefit,
                claim_date=today,
                declared=_declared(kind.inputs),
            )
            decision = claim_adjudicate(actor=maker_actor, claim_id=claim.pk)
        except ApplicationError as error:
            # A claim the registry cannot complete stays entered, as it would at the counter.
            summary.skipped.append(f"{person.pk}: {error.code}")
            summary.claims += 1
            continue
        summary.claims += 1
        decided.append(decision)
    # One claim that the rules deny, so the demo shows a denial and its reasons: a Bienestar
    # pension asked for before 65.
    younger = (
        Person.objects.filter(
            region=region,
            death_date__isnull=True,
            birth_date__lte=today.replace(year=today.year - 60),
            birth_date__gt=today.replace(year=today.year - 64),
        )
        .annotate(claimed=Exists(has_claim))
        .filter(claimed=False)
        .order_by("pk")
        .first()
    )
    bienestar = kinds.get("bienestar:pension_bienestar")
    if younger is not None and bienestar is not None:
        claim = claim_create(
            actor=maker_actor,
            person_id=younger.pk,
            package=bienestar.package,
            benefit=bienestar.benefit,
            claim_date=today,
            declared=_declared(bienestar.inputs),
        )
        summary.claims += 1
        decided.append(claim_adjudicate(actor=maker_actor, claim_id=claim.pk))
    for index, decision in enumerate(decided):
        if index < leave_pending:
            summary.pending += 1
            continue
        award = decision_approve(actor=checker_actor, decision_id=decision.pk)
        if award is None:
            summary.denied += 1
        else:
            summary.awards += 1
    return summary
