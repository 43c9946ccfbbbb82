"""Documents the registry hands out: the shapes of the REST API's responses, reused by the staff
UI's record export, so a person's record reads the same whichever way it leaves Pilar."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from ninja import Field, Schema

from pilar.core.api import MoneyOut
from pilar.registry import selectors
from pilar.registry.models import Employment, EmploymentSalary, Person


class PersonCoreOut(Schema):
    id: int
    given_names: str
    paternal_surname: str
    maternal_surname: str
    full_name: str
    sex: str
    birth_date: datetime.date
    birth_state: str
    birth_country: str
    nationality: str
    death_date: datetime.date | None
    region: str
    status: str
    version: int = Field(description="Send it back with PATCH for optimistic locking.")
    created_at: datetime.datetime
    updated_at: datetime.datetime


class IdentifierOut(Schema):
    id: int
    scheme: str
    value: str
    issuing_country: str
    is_active: bool
    created_at: datetime.datetime


class AddressOut(Schema):
    id: int
    kind: str
    street: str
    neighbourhood: str
    municipality: str
    state: str
    postal_code: str
    country: str
    valid_from: datetime.date
    valid_to: datetime.date | None


class ContactOut(Schema):
    id: int
    kind: str
    value: str
    is_preferred: bool


class PersonBriefOut(Schema):
    id: int
    full_name: str
    birth_date: datetime.date
    sex: str


class FamilyTieViewOut(Schema):
    """A tie seen from one person: ``relation`` is what ``relative`` is to that person."""

    id: int
    relation: str
    relative: PersonBriefOut
    start_date: datetime.date | None
    end_date: datetime.date | None

    @staticmethod
    def resolve_id(tie: selectors.TieView) -> int:
        return tie.tie_id

    @staticmethod
    def resolve_relative(tie: selectors.TieView) -> Person:
        return tie.other


class FamilyTieOut(Schema):
    """A tie as written: ``relative`` is the ``relation`` of ``person``."""

    id: int
    person_id: int
    relative_id: int
    relation: str
    start_date: datetime.date | None
    end_date: datetime.date | None


class EmployerBriefOut(Schema):
    id: int
    legal_name: str
    rfc: str
    registration_number: str


class SalaryOut(Schema):
    employment_id: int
    effective_from: datetime.date
    daily_salary: MoneyOut


class EmploymentOut(Schema):
    id: int
    person_id: int
    employer: EmployerBriefOut
    start_date: datetime.date
    end_date: datetime.date | None
    job_title: str
    current_daily_salary: MoneyOut | None
    salaries: list[SalaryOut] = Field(description="Salary history, newest first.")


class EnrolmentOut(Schema):
    id: int
    programme: str
    programme_name: str
    start_date: datetime.date
    end_date: datetime.date | None
    status: str


class PersonRegisteredOut(PersonCoreOut):
    identifiers: list[IdentifierOut]
    addresses: list[AddressOut]
    contacts: list[ContactOut]


class PersonIdentityOut(PersonCoreOut):
    identifiers: list[IdentifierOut] = Field(description="Active identifiers only.")


class PersonRecordOut(PersonCoreOut):
    identifiers: list[IdentifierOut]
    addresses: list[AddressOut]
    contacts: list[ContactOut]
    family_ties: list[FamilyTieViewOut]
    employments: list[EmploymentOut]
    enrolments: list[EnrolmentOut]


class PersonSummaryOut(Schema):
    id: int
    full_name: str
    birth_date: datetime.date
    sex: str
    region: str
    status: str
    curp: str | None
    is_deceased: bool


class EmployerOut(Schema):
    id: int
    rfc: str
    registration_number: str
    legal_name: str
    trade_name: str
    sector: str
    street: str
    municipality: str
    state: str
    postal_code: str
    status: str
    registered_on: datetime.date
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime


class EmployerDetailOut(EmployerOut):
    active_workers: int
    total_employments: int


class WorkerOut(Schema):
    employment_id: int
    person: PersonBriefOut
    start_date: datetime.date
    end_date: datetime.date | None
    job_title: str

    @staticmethod
    def resolve_employment_id(employment: Employment) -> int:
        return employment.pk


def person_core(person: Person) -> dict[str, Any]:
    return {name: getattr(person, name) for name in PersonCoreOut.model_fields}


def employment_document(
    employment: Employment, salaries: Sequence[EmploymentSalary]
) -> dict[str, Any]:
    return {
        "id": employment.pk,
        "person_id": employment.person_id,
        "employer": employment.employer,
        "start_date": employment.start_date,
        "end_date": employment.end_date,
        "job_title": employment.job_title,
        "current_daily_salary": salaries[0].daily_salary if salaries else None,
        "salaries": list(salaries),
    }


def person_record_document(
    record: selectors.PersonRecord, *, language: str | None
) -> dict[str, Any]:
    """The whole record as PersonRecordOut expects it (model objects are read by the schema)."""
    return {
        **person_core(record.person),
        "identifiers": record.identifiers,
        "addresses": record.addresses,
        "contacts": record.contacts,
        "family_ties": record.ties,
        "employments": [
            employment_document(view.employment, view.salaries) for view in record.employments
        ],
        "enrolments": [
            {
                "id": enrolment.pk,
                "programme": enrolment.programme.code,
                "programme_name": enrolment.programme.name(language),
                "start_date": enrolment.start_date,
                "end_date": enrolment.end_date,
                "status": enrolment.status,
            }
            for enrolment in record.enrolments
        ],
    }


def person_record_json(record: selectors.PersonRecord, *, language: str | None) -> str:
    """The record as JSON text, validated against the same schema as the API's response."""
    document = PersonRecordOut.model_validate(person_record_document(record, language=language))
    return document.model_dump_json(indent=2)
