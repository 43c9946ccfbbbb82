"""Factories for registry data. Persons get a CURP derived from their own data, so every
factory-made record passes the entry filters."""

from __future__ import annotations

import datetime
import itertools

import factory

from pilar.core.identifiers import CURP, curp_complete, curp_stem, nss_check_digit
from pilar.core.text import fold, normalized_full_name
from pilar.registry.models import Employer, Employment, Identifier, Person, Programme

_homonymy = itertools.count()
_serial = itertools.count(1)


class PersonFactory(factory.django.DjangoModelFactory[Person]):
    class Meta:
        model = Person

    given_names = "María Guadalupe"
    paternal_surname = "Hernández"
    maternal_surname = "López"
    sex = "F"
    birth_date = datetime.date(1980, 5, 17)
    birth_state = "JC"
    region = "JC"
    normalized_name = factory.LazyAttribute(
        lambda p: normalized_full_name(p.given_names, p.paternal_surname, p.maternal_surname)
    )


def curp_for(person: Person, homonymy: int | None = None) -> str:
    stem = curp_stem(
        given_names=person.given_names,
        paternal_surname=person.paternal_surname,
        maternal_surname=person.maternal_surname,
        birth_date=person.birth_date,
        sex=person.sex,
        birth_state=person.birth_state,
    )
    return curp_complete(stem, person.birth_date, next(_homonymy) if homonymy is None else homonymy)


def person_with_curp(**kwargs: object) -> tuple[Person, str]:
    person = PersonFactory.create(**kwargs)
    value = curp_for(person)
    Identifier.objects.create(person=person, scheme=CURP, value=value)
    return person, value


def valid_nss() -> str:
    first_ten = f"0199{80:02d}{next(_serial):04d}"
    return first_ten + nss_check_digit(first_ten)


class EmployerFactory(factory.django.DjangoModelFactory[Employer]):
    class Meta:
        model = Employer

    rfc = factory.Sequence(lambda n: _company_rfc(n))
    registration_number = factory.Sequence(lambda n: f"Y{n:010d}")
    legal_name = factory.Sequence(lambda n: f"Comercializadora Jalisco {n} S.A. de C.V.")
    sector = "46"
    street = "Av. Juárez 100"
    municipality = "Guadalajara"
    state = "JC"
    postal_code = "44100"
    normalized_name = factory.LazyAttribute(lambda e: fold(e.legal_name))


def _company_rfc(n: int) -> str:
    from pilar.core.identifiers import rfc_check_digit

    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    body = f"C{letters[n // 26 % 26]}{letters[n % 26]}850101A1"
    return body + rfc_check_digit(body)


class EmploymentFactory(factory.django.DjangoModelFactory[Employment]):
    class Meta:
        model = Employment

    person = factory.SubFactory(PersonFactory)
    employer = factory.SubFactory(EmployerFactory)
    start_date = datetime.date(2005, 1, 10)


class ProgrammeFactory(factory.django.DjangoModelFactory[Programme]):
    class Meta:
        model = Programme
        django_get_or_create = ("code",)

    code = "PENSION_BIENESTAR"
    name_es = "Pensión para el Bienestar de las Personas Adultas Mayores"
    name_en = "Well-being Pension for Older Adults"
