"""Builders for the review and merge tests: persons with a full record (identifiers, address,
contact, family tie, working period with salary, contributions, enrolment, claim and award),
linkage runs and scored pairs with a plausible breakdown, and the data steward who reviews them.

Pairs are written directly (the batch runs that create them are tested with the runs); the
breakdown has the shape ``linkage.scoring`` stores."""

from __future__ import annotations

import datetime
import itertools
import math
import uuid
from decimal import Decimal
from typing import Any

from django.utils import timezone

from pilar.benefits.models import Award, Claim, Decision
from pilar.contributions.models import ContributionRecord, Declaration
from pilar.core.actor import Actor
from pilar.core.identifiers import NSS
from pilar.core.models import User
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.linkage.merging import dependents
from pilar.linkage.models import LinkageRun, MatchPair, RunKind, RunStatus
from pilar.registry.models import (
    Address,
    Contact,
    Employer,
    Employment,
    EmploymentSalary,
    Enrolment,
    FamilyTie,
    Identifier,
    Person,
    Programme,
)
from pilar.registry.tests.factories import (
    EmployerFactory,
    PersonFactory,
    ProgrammeFactory,
    person_with_curp,
    valid_nss,
)

_months = itertools.count()


def steward(region: str = "JC", channel: str = "ui", **kwargs: Any) -> Actor:
    """A data steward: national scope, reviews pairs and merges records."""
    return Actor.for_user(staff(Role.DATA_STEWARD, region=region, **kwargs), channel=channel)


def regional_merger(region: str = "JC") -> Actor:
    """A staff member with the review and merge permissions but regional scope (no shipped role
    is like this; a node may configure one), to check the region rules."""
    user = staff(Role.REGISTRAR, region=region)
    return Actor(
        user=user,
        roles=frozenset({Role.REGISTRAR}),
        channel="ui",
        label=user.username,
        region=region,
        permissions=frozenset({"person.view", "linkage.view", "linkage.review", "person.merge"}),
    )


def breakdown(*, conflict: bool = False) -> list[dict[str, Any]]:
    """A breakdown as the scorer stores it: each comparison's level, Bayes factor, partial
    weight and the values compared."""
    items = [
        ("given", "canonical", "Equal after nicknames (Pepe = José)", 40.0, "JOSE", "JOSE"),
        ("surnames", "exact", "Both surnames equal", 120.0, "LOPEZ CRUZ", "LOPEZ CRUZ"),
        ("birth_date", "swapped", "Day and month swapped", 25.0, "1980-05-07", "1980-07-05"),
        ("sex", "exact", "Same sex", 2.0, "M", "M"),
        ("birth_state", "null", "Missing on either side", 1.0, None, "JC"),
    ]
    if conflict:
        items.append(("nss", "else", "Different NSS", 0.01, "01998000011", "01998000029"))
    else:
        items.append(("curp", "exact", "Same CURP", 900.0, "LOCJ800705HJCPRS01", "X"))
    return [
        {
            "comparison": comparison,
            "level": level,
            "label": label,
            "bayes_factor": factor,
            "weight": math.log2(factor),
            "left": left,
            "right": right,
        }
        for comparison, level, label, factor, left, right in items
    ]


def linkage_run(kind: str = RunKind.DEDUPE) -> LinkageRun:
    return LinkageRun.objects.create(kind=kind, status=RunStatus.DONE, finished_at=timezone.now())


def pair_of(
    left: Person | None,
    right: Person,
    *,
    weight: float = 9.5,
    status: str = "pending",
    conflict: bool = False,
    run: LinkageRun | None = None,
    left_row: int | None = None,
    left_record: dict[str, Any] | None = None,
) -> MatchPair:
    items = breakdown(conflict=conflict)
    return MatchPair.objects.create(
        run=run or linkage_run(),
        left_person=left,
        left_row=left_row,
        left_record=left_record or {},
        right_person=right,
        match_weight=weight,
        match_probability=2**weight / (1 + 2**weight),
        breakdown=items,
        identifier_conflict=conflict,
        status=status,
    )


def _declaration(employer: Employer, period: datetime.date) -> Declaration:
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


def contribution(
    person: Person, employer: Employer, period: datetime.date | None = None
) -> ContributionRecord:
    """A posted contribution record for a whole month."""
    if period is None:
        month = next(_months)
        period = datetime.date(2010 + month // 12, month % 12 + 1, 1)
    return ContributionRecord.objects.create(
        person=person,
        employer=employer,
        period=period,
        covered_from=period,
        covered_to=period.replace(day=28),
        days=28,
        declaration=_declaration(employer, period),
        row=2,
        daily_salary=Decimal("500.00"),
        base=Decimal("500.00"),
        employer_total=Decimal("1234.56"),
        worker_total=Decimal("210.00"),
        posted_at=timezone.now(),
    )


def claim_with_award(person: Person, officer: User, *, benefit: str = "vejez") -> Claim:
    claim = Claim.objects.create(
        person=person,
        package="imss_1973",
        benefit=benefit,
        claim_date=datetime.date(2025, 6, 2),
        status="granted",
    )
    decision = Decision.objects.create(
        claim=claim,
        outcome="granted",
        amount=Decimal("5000.00"),
        frequency="monthly",
        start_date=datetime.date(2025, 7, 1),
        package_name="imss_1973",
        package_version="2025.1",
        package_hash="0" * 64,
        evaluation_date=datetime.date(2025, 6, 2),
        known_at=datetime.date(2025, 6, 2),
        status="approved",
        made_by=officer,
    )
    Award.objects.create(
        person=person,
        claim=claim,
        decision=decision,
        package_name="imss_1973",
        benefit=benefit,
        amount=Decimal("5000.00"),
        frequency="monthly",
        start_date=datetime.date(2025, 7, 1),
        package_version="2025.1",
        package_hash="0" * 64,
    )
    return claim


def full_record(
    given_names: str = "José",
    *,
    paternal_surname: str = "López",
    maternal_surname: str = "Cruz",
    birth_date: datetime.date = datetime.date(1980, 7, 5),
    region: str = "JC",
    programme: Programme | None = None,
    relative: Person | None = None,
    award_officer: User | None = None,
    contributions: int = 2,
) -> Person:
    """A person with something in every table that depends on a person."""
    person, _curp = person_with_curp(
        given_names=given_names,
        paternal_surname=paternal_surname,
        maternal_surname=maternal_surname,
        sex="M",
        birth_date=birth_date,
        region=region,
    )
    Identifier.objects.create(person=person, scheme=NSS, value=valid_nss())
    Address.objects.create(
        person=person,
        street="Av. Juárez 100",
        municipality="Guadalajara",
        state="JC",
        postal_code="44100",
    )
    Contact.objects.create(person=person, kind="mobile", value=f"33{person.pk:08d}")
    employer = EmployerFactory.create()
    employment = Employment.objects.create(
        person=person, employer=employer, start_date=datetime.date(2005, 1, 10)
    )
    EmploymentSalary.objects.create(
        employment=employment, effective_from=datetime.date(2005, 1, 10), daily_salary="350.00"
    )
    for _ in range(contributions):
        contribution(person, employer)
    Enrolment.objects.create(
        person=person,
        programme=programme or ProgrammeFactory.create(code=f"P{person.pk}"),
        start_date=datetime.date(2020, 1, 1),
    )
    other = relative or PersonFactory.create(
        given_names="Ana", birth_date=datetime.date(2010, 1, 1)
    )
    FamilyTie.objects.create(person=person, relative=other, relation="child")
    if award_officer is not None:
        claim_with_award(person, award_officer)
    return person


def rows_of(person_id: int) -> dict[str, set[int]]:
    """Every dependent row of a person, by ``app.Model.field``."""
    found: dict[str, set[int]] = {}
    for dependent in dependents():
        ids = set(dependent.rows_of(person_id).values_list("pk", flat=True))
        if ids:
            found[dependent.key] = ids
    return found


def table_counts() -> dict[str, int]:
    return {
        dependent.model.__name__: dependent.model._default_manager.count()
        for dependent in dependents()
    }
