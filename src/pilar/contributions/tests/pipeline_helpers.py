"""Builders for declaration tests: an employer with workers the registry knows, and declaration
files for them."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from pilar.core.actor import Actor
from pilar.core.tests.factories import actor
from pilar.registry.models import Employer, Employment, EmploymentSalary, Person
from pilar.registry.tests.factories import EmployerFactory, person_with_curp

HEADER = (
    "curp,apellido_paterno,apellido_materno,nombre,dias,sbc,ausencias,incapacidades,"
    "movimiento,fecha_movimiento"
)

WORKER_NAMES = (
    ("María Guadalupe", "Hernández", "López", "F", datetime.date(1980, 5, 17)),
    ("José Luis", "Núñez", "Peña", "M", datetime.date(1975, 2, 3)),
    ("Ana Sofía", "García", "Ruiz", "F", datetime.date(1992, 11, 30)),
    ("Juan Carlos", "Martínez", "Díaz", "M", datetime.date(1988, 7, 21)),
)


def last_month(today: datetime.date | None = None) -> datetime.date:
    today = today or timezone.localdate()
    return (today.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)


@dataclass
class Worker:
    person: Person
    curp: str
    given_names: str
    paternal_surname: str
    maternal_surname: str


@dataclass
class Shop:
    employer: Employer
    workers: list[Worker]


def shop(*, workers: int = 3, employed_since: datetime.date | None = None) -> Shop:
    """An employer with ``workers`` persons employed since ``employed_since`` (2020 by default)."""
    employer = EmployerFactory.create()
    since = employed_since or datetime.date(2020, 1, 6)
    made = []
    for given, paternal, maternal, sex, born in WORKER_NAMES[:workers]:
        person, curp = person_with_curp(
            given_names=given,
            paternal_surname=paternal,
            maternal_surname=maternal,
            sex=sex,
            birth_date=born,
        )
        employment = Employment.objects.create(person=person, employer=employer, start_date=since)
        EmploymentSalary.objects.create(
            employment=employment, effective_from=since, daily_salary=Decimal("500.00")
        )
        made.append(Worker(person, curp, given, paternal, maternal))
    return Shop(employer, made)


def line(
    worker: Worker,
    *,
    days: int | str = 30,
    sbc: str = "500.00",
    absence: int | str = 0,
    incapacity: int | str = 0,
    movement: str = "",
    movement_date: str = "",
    names: tuple[str, str, str] | None = None,
    identifier: str | None = None,
) -> str:
    paternal, maternal, given = names or (
        worker.paternal_surname,
        worker.maternal_surname,
        worker.given_names,
    )
    sbc_cell = f'"{sbc}"' if "," in sbc else sbc
    return (
        f"{identifier or worker.curp},{paternal},{maternal},{given},{days},{sbc_cell},"
        f"{absence},{incapacity},{movement},{movement_date}"
    )


def csv_file(*lines: str) -> bytes:
    return ("\n".join([HEADER, *lines]) + "\n").encode()


def collections_actor() -> Actor:
    return actor("collections_officer")
