"""Builders for benefits tests: insured persons with a migrated work history (employment periods
and salary histories in the registry), their families, and benefits officers."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from pilar.core.actor import Actor
from pilar.core.identifiers import NSS
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.registry.models import (
    Employer,
    Employment,
    EmploymentSalary,
    FamilyTie,
    Identifier,
    Person,
)
from pilar.registry.tests.factories import (
    EmployerFactory,
    PersonFactory,
    person_with_curp,
    valid_nss,
)

# A claim date comfortably in the past, after the last seeded minimum wage change it uses.
CLAIM_DATE = datetime.date(2025, 6, 2)


@dataclass(frozen=True)
class Job:
    """A working period: from ``start`` to ``end`` (None: still open) with its salary history
    ``salaries`` as (effective_from, daily SBC)."""

    start: datetime.date
    end: datetime.date | None
    salaries: Sequence[tuple[datetime.date, str]]
    employer: Employer | None = None


def job(
    start: str, end: str | None, *salaries: tuple[str, str], employer: Employer | None = None
) -> Job:
    return Job(
        datetime.date.fromisoformat(start),
        datetime.date.fromisoformat(end) if end else None,
        [(datetime.date.fromisoformat(day), amount) for day, amount in salaries],
        employer,
    )


def employ(person: Person, *jobs: Job) -> list[Employment]:
    made = []
    for item in jobs:
        employment = Employment.objects.create(
            person=person,
            employer=item.employer or EmployerFactory.create(),
            start_date=item.start,
            end_date=item.end,
        )
        EmploymentSalary.objects.bulk_create(
            EmploymentSalary(
                employment=employment, effective_from=day, daily_salary=Decimal(amount)
            )
            for day, amount in item.salaries
        )
        made.append(employment)
    return made


def insured(
    *jobs: Job,
    born: datetime.date = datetime.date(1955, 3, 10),
    region: str = "JC",
    **person: object,
) -> Person:
    """A person with a CURP and an NSS, employed as ``jobs`` say."""
    made, _curp = person_with_curp(birth_date=born, region=region, **person)
    Identifier.objects.create(person=made, scheme=NSS, value=valid_nss())
    employ(made, *jobs)
    return made


def long_career() -> Person:
    """Born 1955, employed 1980-01-07 to 2010-12-31 (11,317 days: 1,616 weeks), 450 pesos a
    day from 2000: enough for an old-age pension under the 1973 law at 70."""
    return insured(
        job("1980-01-07", "2010-12-31", ("1980-01-07", "150.00"), ("2000-01-01", "450.00"))
    )


def short_career() -> Person:
    """Born 1955, employed 2000-01-03 to 2007-08-31: 2,798 days, 399 weeks, short of the 500 the
    1973 law requires."""
    return insured(
        job("2000-01-03", "2007-08-31", ("2000-01-03", "300.00")),
        given_names="José Luis",
        paternal_surname="Núñez",
        maternal_surname="Peña",
        sex="M",
    )


def relative(born: datetime.date, *, died: datetime.date | None = None, **fields: object) -> Person:
    return PersonFactory.create(
        given_names=fields.pop("given_names", "Luis"),
        birth_date=born,
        death_date=died,
        **fields,
    )


def marry(
    person: Person, spouse: Person, *, since: str | None = None, until: str | None = None
) -> None:
    FamilyTie.objects.create(
        person=person,
        relative=spouse,
        relation="spouse",
        start_date=datetime.date.fromisoformat(since) if since else None,
        end_date=datetime.date.fromisoformat(until) if until else None,
    )


def child(
    person: Person,
    born: datetime.date,
    *,
    died: datetime.date | None = None,
    stored_from_child: bool = False,
) -> Person:
    """A child of ``person``; the tie stored from the parent's side, or from the child's (as a
    ``parent`` tie) to check both are read."""
    kid = relative(born, died=died)
    if stored_from_child:
        FamilyTie.objects.create(person=kid, relative=person, relation="parent")
    else:
        FamilyTie.objects.create(person=person, relative=kid, relation="child")
    return kid


def officer(region: str = "JC", channel: str = "ui") -> Actor:
    return Actor.for_user(staff(Role.BENEFITS_OFFICER, region=region), channel=channel)
