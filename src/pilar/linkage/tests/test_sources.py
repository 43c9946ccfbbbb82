"""Reading registry persons into the feature input frame: which persons, which identifiers, and
the shape the features expect — on SQLite and on PostgreSQL (``COPY``)."""

from __future__ import annotations

import datetime

import polars as pl
import pytest

from pilar.core.identifiers import CURP, NSS
from pilar.linkage import sources
from pilar.registry.models import Enrolment, Identifier, Person
from pilar.registry.tests.factories import (
    PersonFactory,
    ProgrammeFactory,
    person_with_curp,
    valid_nss,
)

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2026, 6, 1)


def test_active_persons_with_their_active_identifiers() -> None:
    ana, ana_curp = person_with_curp(given_names="Ana", maternal_surname="")
    nss = valid_nss()
    Identifier.objects.create(person=ana, scheme=NSS, value=nss)
    # A replaced CURP stays for history but is not the person's CURP any more.
    Identifier.objects.create(person=ana, scheme=CURP, value="XXXX800517MJCRPN09", is_active=False)
    luis = PersonFactory.create(given_names="Luis", sex="M", birth_state="")
    merged = PersonFactory.create(given_names="Ana", status="merged", merged_into=ana)
    inactive = PersonFactory.create(given_names="Eva", status="inactive")

    frame = sources.registry_persons()

    assert frame.columns == list(sources.INPUT_COLUMNS)
    assert frame.schema["unique_id"] == pl.Int64
    assert frame.schema["birth_date"] == pl.Date
    assert frame["unique_id"].to_list() == [ana.pk, luis.pk]
    assert merged.pk not in frame["unique_id"].to_list()
    assert inactive.pk not in frame["unique_id"].to_list()
    first = frame.row(0, named=True)
    assert first == {
        "unique_id": ana.pk,
        "given_names": "Ana",
        "paternal_surname": "Hernández",
        "maternal_surname": None,  # empty text is null, as the features expect
        "sex": "F",
        "birth_date": datetime.date(1980, 5, 17),
        "birth_state": "JC",
        "curp": ana_curp,
        "nss": nss,
    }
    second = frame.row(1, named=True)
    assert second["curp"] is None
    assert second["nss"] is None
    assert second["birth_state"] is None


def test_two_active_nss_give_the_smaller_one() -> None:
    person = PersonFactory.create()
    first, second = sorted([valid_nss(), valid_nss()])
    Identifier.objects.create(person=person, scheme=NSS, value=second)
    Identifier.objects.create(person=person, scheme=NSS, value=first)
    assert sources.registry_persons()["nss"].to_list() == [first]


def test_region_and_programme_filters() -> None:
    jalisco = PersonFactory.create(region="JC")
    capital = PersonFactory.create(region="DF")
    ended = PersonFactory.create(region="DF")
    future = PersonFactory.create(region="DF")
    suspended = PersonFactory.create(region="DF")
    programme = ProgrammeFactory.create()
    other = ProgrammeFactory.create(code="IMSS_LEY97", name_es="Ley 97", name_en="1997 law")
    start = datetime.date(2020, 1, 1)
    Enrolment.objects.create(person=capital, programme=programme, start_date=start)
    Enrolment.objects.create(person=jalisco, programme=other, start_date=start)
    Enrolment.objects.create(
        person=ended, programme=programme, start_date=start, end_date=datetime.date(2025, 1, 1)
    )
    Enrolment.objects.create(person=future, programme=programme, start_date=TODAY.replace(day=2))
    Enrolment.objects.create(
        person=suspended, programme=programme, start_date=start, status="suspended"
    )

    assert sources.registry_persons(region="JC")["unique_id"].to_list() == [jalisco.pk]
    receiving = sources.registry_persons(programme_id=programme.pk, today=TODAY)
    assert receiving["unique_id"].to_list() == [capital.pk]
    assert sources.registry_persons(programme_id=other.pk, region="DF", today=TODAY).height == 0


def test_person_ids_and_the_empty_frame() -> None:
    people = [PersonFactory.create() for _ in range(3)]
    Person.objects.filter(pk=people[2].pk).update(status="merged")
    chosen = sources.registry_persons(person_ids=[people[0].pk, people[2].pk])
    assert chosen["unique_id"].to_list() == [people[0].pk]
    empty = sources.registry_persons(person_ids=[])
    assert empty.height == 0
    assert empty.schema == sources.INPUT_SCHEMA
    Person.objects.all().update(status="inactive")
    nobody = sources.registry_persons()
    assert nobody.height == 0
    assert nobody.columns == list(sources.INPUT_COLUMNS)
