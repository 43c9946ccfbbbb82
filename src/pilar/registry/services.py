"""Writes to the registry. Every function here is the one way its change happens, whatever the
channel (web form, API, bulk file, partner node): it checks the actor's permission and region,
runs the entry filters, writes, and records the audit event in the same transaction.

Contract shared by all services: keyword-only arguments, an ``actor`` first; on bad input an
``ApplicationError`` (usually ``ValidationFailed`` with every field error at once) is raised and
nothing is written.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import fields as dataclass_fields
from decimal import Decimal
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pilar.core.actor import Actor
from pilar.core.audit import audit_record, created, diff, snapshot
from pilar.core.errors import (
    Conflict,
    FieldError,
    FieldErrors,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from pilar.core.identifiers import CURP
from pilar.core.roles import Perm
from pilar.core.text import fold, normalized_full_name
from pilar.registry import validation
from pilar.registry.models import (
    Address,
    Contact,
    Employer,
    EmployerStatus,
    Employment,
    EmploymentSalary,
    Enrolment,
    EnrolmentStatus,
    FamilyTie,
    Identifier,
    Person,
    Programme,
    RecordStatus,
    Relation,
)
from pilar.registry.validation import (
    AddressData,
    ContactData,
    EmployerData,
    IdentifierData,
    PersonData,
)

DataT = TypeVar("DataT", PersonData, EmployerData)

PERSON_FIELDS = tuple(f.name for f in dataclass_fields(PersonData))
EMPLOYER_FIELDS = tuple(f.name for f in dataclass_fields(EmployerData))


class PossibleDuplicate(Conflict):
    """Someone with the same normalised names and birth date is already registered. The caller
    shows the candidates and may register anyway with ``acknowledge_possible_duplicate``."""

    code = "registry.possible_duplicate"
    title = _("A person with the same names and birth date is already registered.")


class StaleVersion(Conflict):
    code = "registry.stale_version"
    title = _("Someone else changed this record after you opened it. Reload it and try again.")


# --- access helpers ---------------------------------------------------------------------------


def _person_for_write(actor: Actor, person_id: int, permission: str) -> Person:
    """The person, locked for the rest of the transaction, if the actor may change it.

    A person outside the actor's region is reported as not found, so a staff member cannot
    probe which records exist elsewhere."""
    actor.require(permission)
    person = Person.objects.select_for_update().filter(pk=person_id).first()
    if person is None or not actor.sees_region(person.region):
        raise NotFound(extra={"entity": "person", "id": person_id})
    return person


def _employer_for_write(actor: Actor, employer_id: int, permission: str) -> Employer:
    actor.require(permission)
    employer = Employer.objects.select_for_update().filter(pk=employer_id).first()
    if employer is None:
        raise NotFound(extra={"entity": "employer", "id": employer_id})
    return employer


def _check_version(current: int, expected: int | None) -> None:
    if expected is not None and expected != current:
        raise StaleVersion(extra={"current_version": current})


def duplicate_candidates(
    *, normalized_name: str, birth_date: datetime.date | None, exclude_id: int | None = None
) -> list[Person]:
    """Active persons with the same normalised names and birth date (the entry-point check;
    full record linkage is the ``linkage`` app's work)."""
    if not normalized_name or birth_date is None:
        return []
    candidates = Person.objects.filter(
        normalized_name=normalized_name, birth_date=birth_date, status=RecordStatus.ACTIVE
    )
    if exclude_id is not None:
        candidates = candidates.exclude(pk=exclude_id)
    return list(candidates.order_by("pk")[:10])


def _candidates_extra(candidates: Sequence[Person]) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "id": p.pk,
                "name": p.full_name,
                "birth_date": p.birth_date.isoformat(),
                "region": p.region,
            }
            for p in candidates
        ]
    }


def _clean_identifiers(
    errors: FieldErrors,
    items: Sequence[IdentifierData],
    person_values: Mapping[str, object],
    *,
    exclude_person_id: int | None = None,
) -> list[validation.ValidIdentifier]:
    cleaned: list[validation.ValidIdentifier] = []
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(items):
        name = f"identifiers[{index}]"
        valid = validation.clean_identifier(errors, name, item)
        if valid is None:
            continue
        if (valid.scheme, valid.issuing_country) in seen:
            errors.add(
                name, "identifier.scheme_repeated", _("A person has one identifier of each type.")
            )
            continue
        seen.add((valid.scheme, valid.issuing_country))
        if valid.scheme == CURP:
            validation.check_curp_consistency(errors, name, valid.value, person_values)
        taken = Identifier.objects.filter(
            scheme=valid.scheme,
            issuing_country=valid.issuing_country,
            value=valid.value,
            is_active=True,
        )
        if exclude_person_id is not None:
            taken = taken.exclude(person_id=exclude_person_id)
        if taken.exists():
            errors.add(
                name,
                "identifier.already_registered",
                _("This %(scheme)s is already registered to another person.")
                % {"scheme": valid.scheme},
            )
        else:
            cleaned.append(valid)
    return cleaned


def _apply_changes(
    data_class: type[DataT], *, record: Person | Employer, changes: Mapping[str, Any]
) -> DataT:
    """The record's current values with ``changes`` laid over them, ready for the same entry
    filters as a registration. A field name the record does not have is an error."""
    known = [f.name for f in dataclass_fields(data_class)]
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise ValidationFailed(
            {name: [FieldError("field.unknown", _("Unknown field."))] for name in unknown}
        )
    current = {name: getattr(record, name) for name in known}
    return data_class(**{**current, **changes})


# --- persons ----------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def person_register(
    *,
    actor: Actor,
    data: PersonData,
    identifiers: Sequence[IdentifierData] = (),
    address: AddressData | None = None,
    contacts: Sequence[ContactData] = (),
    acknowledge_possible_duplicate: bool = False,
) -> Person:
    """Register a new person with identifiers, an address and contacts.

    Raises ``ValidationFailed`` with every field error, ``PermissionDenied`` when the actor may
    not register or not in that region, and ``PossibleDuplicate`` when a person with the same
    normalised names and birth date exists and the caller has not acknowledged it."""
    actor.require(Perm.PERSON_REGISTER)
    if not data.region and actor.region:
        data.region = actor.region
    errors = FieldErrors()
    values = validation.clean_person(data, errors)
    clean_ids = _clean_identifiers(errors, identifiers, values)
    address_values = validation.clean_address(errors, "address.", address) if address else None
    contact_values = [
        validation.clean_contact(errors, f"contacts[{i}].", contact)
        for i, contact in enumerate(contacts)
    ]
    errors.raise_if_any()
    if not actor.sees_region(str(values["region"])):
        raise PermissionDenied(_("You can only register persons in your office's region."))

    normalized = normalized_full_name(
        str(values["given_names"]), str(values["paternal_surname"]), str(values["maternal_surname"])
    )
    candidates = duplicate_candidates(normalized_name=normalized, birth_date=values["birth_date"])  # type: ignore[arg-type]
    if candidates and not acknowledge_possible_duplicate:
        raise PossibleDuplicate(extra=_candidates_extra(candidates))

    now = timezone.now()
    person = Person.objects.create(
        normalized_name=normalized, created_at=now, updated_at=now, **values
    )
    try:
        # A savepoint, so a concurrent registration of the same identifier (caught by the
        # unique index) becomes a field error instead of a broken transaction.
        with transaction.atomic():
            Identifier.objects.bulk_create(
                [
                    Identifier(
                        person=person,
                        scheme=i.scheme,
                        value=i.value,
                        issuing_country=i.issuing_country,
                    )
                    for i in clean_ids
                ]
            )
    except IntegrityError as error:
        raise ValidationFailed.single(
            "identifiers",
            "identifier.already_registered",
            _("One of these identifiers was registered to another person a moment ago."),
        ) from error
    if address_values is not None:
        Address.objects.create(person=person, **address_values)
    for contact in contact_values:
        Contact.objects.create(person=person, **contact)

    changes = created(values)
    for identifier in clean_ids:
        changes[f"identifier.{identifier.scheme}"] = [None, identifier.value]
    if address_values is not None:
        changes["address"] = [None, f"{address_values['street']}, {address_values['postal_code']}"]
    for contact in contact_values:
        changes[f"contact.{contact['kind']}"] = [None, contact["value"]]
    audit_record(
        actor=actor,
        action="person.register",
        entity_type="person",
        entity_id=person.pk,
        person_id=person.pk,
        changes=changes,
        note="possible duplicate acknowledged: " + ", ".join(str(c.pk) for c in candidates)
        if candidates
        else "",
    )
    return person


@transaction.atomic(durable=True)
def person_update(
    *,
    actor: Actor,
    person_id: int,
    changes: Mapping[str, Any],
    expected_version: int | None = None,
    acknowledge_possible_duplicate: bool = False,
) -> Person:
    """Change a person's own fields. ``changes`` holds only the fields to change; unknown field
    names are an error. With ``expected_version`` a concurrent edit is detected and refused."""
    person = _person_for_write(actor, person_id, Perm.PERSON_UPDATE)
    _check_version(person.version, expected_version)
    before = snapshot(person, PERSON_FIELDS)
    merged = _apply_changes(PersonData, record=person, changes=changes)
    errors = FieldErrors()
    values = validation.clean_person(merged, errors)
    for identifier in person.identifiers.filter(is_active=True, scheme=CURP):
        validation.check_curp_consistency(errors, "identifiers", identifier.value, values)
    errors.raise_if_any()
    if values["region"] != person.region and not actor.sees_region(str(values["region"])):
        raise PermissionDenied(_("You can only move a record to a region you administer."))

    normalized = normalized_full_name(
        str(values["given_names"]), str(values["paternal_surname"]), str(values["maternal_surname"])
    )
    if (normalized, values["birth_date"]) != (person.normalized_name, person.birth_date):
        candidates = duplicate_candidates(
            normalized_name=normalized,
            birth_date=values["birth_date"],  # type: ignore[arg-type]
            exclude_id=person.pk,
        )
        if candidates and not acknowledge_possible_duplicate:
            raise PossibleDuplicate(extra=_candidates_extra(candidates))
    field_changes = diff(before, values)
    if not field_changes:
        return person
    for name, value in values.items():
        setattr(person, name, value)
    person.normalized_name = normalized
    person.version += 1
    person.updated_at = timezone.now()
    person.save()
    audit_record(
        actor=actor,
        action="person.update",
        entity_type="person",
        entity_id=person.pk,
        person_id=person.pk,
        changes=field_changes,
    )
    return person


@transaction.atomic(durable=True)
def identifier_add(*, actor: Actor, person_id: int, data: IdentifierData) -> Identifier:
    """Add an identifier of a type the person does not have yet (replace = deactivate + add)."""
    person = _person_for_write(actor, person_id, Perm.PERSON_UPDATE)
    errors = FieldErrors()
    values = snapshot(person, PERSON_FIELDS)
    cleaned = _clean_identifiers(errors, [data], values, exclude_person_id=person.pk)
    errors.raise_if_any()
    valid = cleaned[0]
    if person.identifiers.filter(
        scheme=valid.scheme, issuing_country=valid.issuing_country, is_active=True
    ).exists():
        raise ValidationFailed.single(
            "identifiers[0]",
            "identifier.scheme_repeated",
            _("The person already has an active identifier of this type; deactivate it first."),
        )
    identifier = Identifier.objects.create(
        person=person, scheme=valid.scheme, value=valid.value, issuing_country=valid.issuing_country
    )
    audit_record(
        actor=actor,
        action="identifier.add",
        entity_type="identifier",
        entity_id=identifier.pk,
        person_id=person.pk,
        changes={f"identifier.{valid.scheme}": [None, valid.value]},
    )
    return identifier


@transaction.atomic(durable=True)
def identifier_deactivate(*, actor: Actor, identifier_id: int, reason: str) -> Identifier:
    identifier = Identifier.objects.filter(pk=identifier_id, is_active=True).first()
    if identifier is None:
        raise NotFound(extra={"entity": "identifier", "id": identifier_id})
    _person_for_write(actor, identifier.person_id, Perm.PERSON_UPDATE)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed.single(
            "reason", "required", _("Say why the identifier is deactivated.")
        )
    identifier.is_active = False
    identifier.save(update_fields=["is_active"])
    audit_record(
        actor=actor,
        action="identifier.deactivate",
        entity_type="identifier",
        entity_id=identifier.pk,
        person_id=identifier.person_id,
        changes={f"identifier.{identifier.scheme}": [identifier.value, None]},
        note=reason,
    )
    return identifier


@transaction.atomic(durable=True)
def address_add(*, actor: Actor, person_id: int, data: AddressData) -> Address:
    """Record a new address; the current address of the same kind ends the day before."""
    person = _person_for_write(actor, person_id, Perm.PERSON_UPDATE)
    errors = FieldErrors()
    values = validation.clean_address(errors, "", data)
    errors.raise_if_any()
    valid_from: datetime.date = values["valid_from"]  # type: ignore[assignment]
    current = person.addresses.filter(kind=values["kind"], valid_to__isnull=True)
    for previous in current:
        previous.valid_to = max(previous.valid_from, valid_from - datetime.timedelta(days=1))
        previous.save(update_fields=["valid_to"])
    address = Address.objects.create(person=person, **values)
    audit_record(
        actor=actor,
        action="address.add",
        entity_type="address",
        entity_id=address.pk,
        person_id=person.pk,
        changes=created(values),
    )
    return address


@transaction.atomic(durable=True)
def contact_add(*, actor: Actor, person_id: int, data: ContactData) -> Contact:
    person = _person_for_write(actor, person_id, Perm.PERSON_UPDATE)
    errors = FieldErrors()
    values = validation.clean_contact(errors, "", data)
    errors.raise_if_any()
    if person.contacts.filter(kind=values["kind"], value=values["value"]).exists():
        raise ValidationFailed.single(
            "value", "contact.exists", _("The person already has this contact.")
        )
    if values["is_preferred"]:
        person.contacts.filter(is_preferred=True).update(is_preferred=False)
    contact = Contact.objects.create(person=person, **values)
    audit_record(
        actor=actor,
        action="contact.add",
        entity_type="contact",
        entity_id=contact.pk,
        person_id=person.pk,
        changes=created(values),
    )
    return contact


@transaction.atomic(durable=True)
def contact_remove(*, actor: Actor, contact_id: int) -> None:
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is None:
        raise NotFound(extra={"entity": "contact", "id": contact_id})
    _person_for_write(actor, contact.person_id, Perm.PERSON_UPDATE)
    audit_record(
        actor=actor,
        action="contact.remove",
        entity_type="contact",
        entity_id=contact.pk,
        person_id=contact.person_id,
        changes={contact.kind: [contact.value, None]},
    )
    contact.delete()


# --- family ties ------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def family_tie_create(
    *,
    actor: Actor,
    person_id: int,
    relative_id: int,
    relation: str,
    start_date: datetime.date | None = None,
    end_date: datetime.date | None = None,
) -> FamilyTie:
    """Record that ``relative`` is the ``relation`` of ``person``. A parent tie is stored as the
    inverse child tie, so each tie exists once whichever side it was entered from."""
    errors = FieldErrors()
    validation.check_relation(errors, relation)
    if person_id == relative_id:
        errors.add("relative_id", "tie.self", _("A person cannot be their own relative."))
    errors.raise_if_any()
    person = _person_for_write(actor, person_id, Perm.FAMILY_MANAGE)
    relative = _person_for_write(actor, relative_id, Perm.FAMILY_MANAGE)
    if relation == Relation.PARENT:
        person, relative, relation = relative, person, Relation.CHILD
    if relation == Relation.CHILD and relative.birth_date <= person.birth_date:
        errors.add(
            "relative_id", "tie.child_not_younger", _("A child must be born after their parent.")
        )
    if start_date and end_date and end_date < start_date:
        errors.add(
            "end_date", "date.end_before_start", _("The end date cannot be before the start date.")
        )
    latest_birth = max(person.birth_date, relative.birth_date)
    if start_date and start_date < latest_birth:
        errors.add(
            "start_date",
            "tie.before_birth",
            _("The tie cannot start before both persons were born."),
        )
    if start_date and start_date > timezone.localdate():
        errors.add("start_date", "date.in_future", _("The date cannot be in the future."))
    existing = FamilyTie.objects.filter(end_date__isnull=True).filter(
        person__in=(person, relative), relative__in=(person, relative)
    )
    if existing.exists():
        errors.add(
            "relative_id", "tie.exists", _("These two persons already have an open family tie.")
        )
    if relation in (Relation.SPOUSE, Relation.PARTNER) and end_date is None:
        for side in (person, relative):
            open_union = FamilyTie.objects.filter(
                relation__in=(Relation.SPOUSE, Relation.PARTNER), end_date__isnull=True
            ).filter(Q(person=side) | Q(relative=side))
            if open_union.exists():
                errors.add(
                    "relative_id",
                    "tie.union_exists",
                    _("%(name)s already has an open marriage or partnership; end it first.")
                    % {"name": side.full_name},
                )
    errors.raise_if_any()
    tie = FamilyTie.objects.create(
        person=person,
        relative=relative,
        relation=relation,
        start_date=start_date,
        end_date=end_date,
    )
    changes = {
        "relation": [None, relation],
        "person": [None, person.pk],
        "relative": [None, relative.pk],
    }
    if start_date:
        changes["start_date"] = [None, start_date.isoformat()]
    for side in (person, relative):
        audit_record(
            actor=actor,
            action="family_tie.create",
            entity_type="family_tie",
            entity_id=tie.pk,
            person_id=side.pk,
            changes=changes,
        )
    return tie


@transaction.atomic(durable=True)
def family_tie_end(*, actor: Actor, tie_id: int, end_date: datetime.date) -> FamilyTie:
    tie = FamilyTie.objects.filter(pk=tie_id).first()
    if tie is None:
        raise NotFound(extra={"entity": "family_tie", "id": tie_id})
    _person_for_write(actor, tie.person_id, Perm.FAMILY_MANAGE)
    if tie.end_date is not None:
        raise Conflict(_("This family tie has already ended."), code="tie.already_ended")
    if tie.start_date and end_date < tie.start_date:
        raise ValidationFailed.single(
            "end_date", "date.end_before_start", _("The end date cannot be before the start date.")
        )
    if end_date > timezone.localdate():
        raise ValidationFailed.single(
            "end_date", "date.in_future", _("The date cannot be in the future.")
        )
    tie.end_date = end_date
    tie.save(update_fields=["end_date"])
    for side_id in (tie.person_id, tie.relative_id):
        audit_record(
            actor=actor,
            action="family_tie.end",
            entity_type="family_tie",
            entity_id=tie.pk,
            person_id=side_id,
            changes={"end_date": [None, end_date.isoformat()]},
        )
    return tie


# --- employers --------------------------------------------------------------------------------


def _check_employer_unique(
    errors: FieldErrors, values: Mapping[str, object], exclude_id: int | None
) -> None:
    for name, message in (
        ("rfc", _("An employer with this RFC is already registered.")),
        (
            "registration_number",
            _("An employer with this registration number is already registered."),
        ),
    ):
        if name in errors.errors:
            continue
        taken = Employer.objects.filter(**{name: values[name]})
        if exclude_id is not None:
            taken = taken.exclude(pk=exclude_id)
        if taken.exists():
            errors.add(name, f"employer.{name}_taken", message)


@transaction.atomic(durable=True)
def employer_register(*, actor: Actor, data: EmployerData) -> Employer:
    actor.require(Perm.EMPLOYER_REGISTER)
    errors = FieldErrors()
    values = validation.clean_employer(errors, data)
    _check_employer_unique(errors, values, None)
    errors.raise_if_any()
    now = timezone.now()
    employer = Employer.objects.create(
        normalized_name=fold(str(values["legal_name"])), created_at=now, updated_at=now, **values
    )
    audit_record(
        actor=actor,
        action="employer.register",
        entity_type="employer",
        entity_id=employer.pk,
        changes=created(values),
    )
    return employer


@transaction.atomic(durable=True)
def employer_update(
    *,
    actor: Actor,
    employer_id: int,
    changes: Mapping[str, Any],
    expected_version: int | None = None,
) -> Employer:
    employer = _employer_for_write(actor, employer_id, Perm.EMPLOYER_UPDATE)
    _check_version(employer.version, expected_version)
    before = snapshot(employer, EMPLOYER_FIELDS)
    merged = _apply_changes(EmployerData, record=employer, changes=changes)
    errors = FieldErrors()
    values = validation.clean_employer(errors, merged)
    _check_employer_unique(errors, values, employer.pk)
    errors.raise_if_any()
    field_changes = diff(before, values)
    if not field_changes:
        return employer
    for name, value in values.items():
        setattr(employer, name, value)
    employer.normalized_name = fold(employer.legal_name)
    employer.version += 1
    employer.updated_at = timezone.now()
    employer.save()
    audit_record(
        actor=actor,
        action="employer.update",
        entity_type="employer",
        entity_id=employer.pk,
        changes=field_changes,
    )
    return employer


# --- employments ------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def employment_create(
    *,
    actor: Actor,
    person_id: int,
    employer_id: int,
    start_date: datetime.date,
    end_date: datetime.date | None = None,
    job_title: str = "",
    daily_salary: Decimal | None = None,
) -> Employment:
    """Record a working period (alta, and baja when ``end_date`` is given) with its hire SBC."""
    person = _person_for_write(actor, person_id, Perm.EMPLOYMENT_MANAGE)
    employer = Employer.objects.filter(pk=employer_id).first()
    errors = FieldErrors()
    if employer is None:
        errors.add("employer_id", "employer.not_found", _("There is no such employer."))
    elif end_date is None and employer.status != EmployerStatus.ACTIVE:
        errors.add(
            "employer_id",
            "employer.not_active",
            _("An open working period needs an active employer."),
        )
    today = timezone.localdate()
    earliest = _add_years(person.birth_date, validation.MINIMUM_WORKING_AGE)
    if start_date > today:
        errors.add("start_date", "date.in_future", _("The date cannot be in the future."))
    elif start_date < earliest:
        errors.add(
            "start_date",
            "employment.under_age",
            _("The person was under the minimum working age (15) on this date."),
        )
    if end_date is not None:
        if end_date < start_date:
            errors.add(
                "end_date",
                "date.end_before_start",
                _("The end date cannot be before the start date."),
            )
        elif end_date > today:
            errors.add("end_date", "date.in_future", _("The date cannot be in the future."))
    if person.death_date and start_date > person.death_date:
        errors.add(
            "start_date",
            "employment.after_death",
            _("The working period cannot start after the person's death."),
        )
    validation.check_salary(errors, "daily_salary", daily_salary)
    job_title = (job_title or "").strip()
    if len(job_title) > 120:
        errors.add("job_title", "too_long", _("At most %(max)d characters.") % {"max": 120})
    if employer is not None and not errors:
        overlapping = (
            Employment.objects.filter(person=person, employer=employer)
            .exclude(start_date__gt=end_date or datetime.date.max)
            .exclude(end_date__lt=start_date)
        )
        if overlapping.exists():
            errors.add(
                "start_date",
                "employment.overlaps",
                _("The person already has a working period with this employer in these dates."),
            )
    errors.raise_if_any()
    assert employer is not None  # raise_if_any() above covers the unknown employer
    employment = Employment.objects.create(
        person=person,
        employer=employer,
        start_date=start_date,
        end_date=end_date,
        job_title=job_title,
    )
    changes: dict[str, Any] = {
        "employer": [None, employer.pk],
        "start_date": [None, start_date.isoformat()],
    }
    if end_date:
        changes["end_date"] = [None, end_date.isoformat()]
    if daily_salary is not None:
        EmploymentSalary.objects.create(
            employment=employment, effective_from=start_date, daily_salary=daily_salary
        )
        changes["daily_salary"] = [None, str(daily_salary)]
    audit_record(
        actor=actor,
        action="employment.create",
        entity_type="employment",
        entity_id=employment.pk,
        person_id=person.pk,
        changes=changes,
    )
    return employment


def _add_years(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a non-leap target year
        return day.replace(year=day.year + years, day=28)


def _employment_for_write(actor: Actor, employment_id: int) -> Employment:
    employment = Employment.objects.select_for_update().filter(pk=employment_id).first()
    if employment is None:
        raise NotFound(extra={"entity": "employment", "id": employment_id})
    _person_for_write(actor, employment.person_id, Perm.EMPLOYMENT_MANAGE)
    return employment


@transaction.atomic(durable=True)
def employment_end(*, actor: Actor, employment_id: int, end_date: datetime.date) -> Employment:
    """Close a working period (baja)."""
    employment = _employment_for_write(actor, employment_id)
    if employment.end_date is not None:
        raise Conflict(_("This working period has already ended."), code="employment.already_ended")
    if end_date < employment.start_date:
        raise ValidationFailed.single(
            "end_date", "date.end_before_start", _("The end date cannot be before the start date.")
        )
    if end_date > timezone.localdate():
        raise ValidationFailed.single(
            "end_date", "date.in_future", _("The date cannot be in the future.")
        )
    employment.end_date = end_date
    employment.save(update_fields=["end_date"])
    audit_record(
        actor=actor,
        action="employment.end",
        entity_type="employment",
        entity_id=employment.pk,
        person_id=employment.person_id,
        changes={"end_date": [None, end_date.isoformat()]},
    )
    return employment


@transaction.atomic(durable=True)
def employment_salary_change(
    *, actor: Actor, employment_id: int, effective_from: datetime.date, daily_salary: Decimal
) -> EmploymentSalary:
    """Record a salary change (modificación de salario) from a date within the period."""
    employment = _employment_for_write(actor, employment_id)
    errors = FieldErrors()
    validation.check_salary(errors, "daily_salary", daily_salary)
    if effective_from < employment.start_date or (
        employment.end_date and effective_from > employment.end_date
    ):
        errors.add(
            "effective_from",
            "salary.outside_period",
            _("The date must fall within the working period."),
        )
    if employment.salaries.filter(effective_from=effective_from).exists():
        errors.add(
            "effective_from", "salary.exists", _("There is already a salary from this date.")
        )
    errors.raise_if_any()
    previous = employment.salaries.filter(effective_from__lt=effective_from).first()
    salary = EmploymentSalary.objects.create(
        employment=employment, effective_from=effective_from, daily_salary=daily_salary
    )
    audit_record(
        actor=actor,
        action="employment.salary_change",
        entity_type="employment",
        entity_id=employment.pk,
        person_id=employment.person_id,
        changes={
            "daily_salary": [str(previous.daily_salary) if previous else None, str(daily_salary)],
            "effective_from": [None, effective_from.isoformat()],
        },
    )
    return salary


# --- programme enrolments ---------------------------------------------------------------------


@transaction.atomic(durable=True)
def enrolment_create(
    *, actor: Actor, person_id: int, programme_code: str, start_date: datetime.date
) -> Enrolment:
    person = _person_for_write(actor, person_id, Perm.ENROLMENT_MANAGE)
    programme = Programme.objects.filter(code=programme_code, is_active=True).first()
    errors = FieldErrors()
    if programme is None:
        errors.add("programme", "programme.unknown", _("There is no such active programme."))
    if start_date < person.birth_date:
        errors.add(
            "start_date",
            "enrolment.before_birth",
            _("The enrolment cannot start before the person's birth."),
        )
    if (
        programme is not None
        and person.enrolments.filter(
            programme=programme, status__in=(EnrolmentStatus.ACTIVE, EnrolmentStatus.SUSPENDED)
        ).exists()
    ):
        errors.add(
            "programme", "enrolment.exists", _("The person is already enrolled in this programme.")
        )
    errors.raise_if_any()
    assert programme is not None  # raise_if_any() above covers the unknown programme
    enrolment = Enrolment.objects.create(person=person, programme=programme, start_date=start_date)
    audit_record(
        actor=actor,
        action="enrolment.create",
        entity_type="enrolment",
        entity_id=enrolment.pk,
        person_id=person.pk,
        changes={"programme": [None, programme_code], "start_date": [None, start_date.isoformat()]},
    )
    return enrolment


@transaction.atomic(durable=True)
def enrolment_set_status(
    *, actor: Actor, enrolment_id: int, status: str, on: datetime.date | None = None
) -> Enrolment:
    enrolment = Enrolment.objects.filter(pk=enrolment_id).first()
    if enrolment is None:
        raise NotFound(extra={"entity": "enrolment", "id": enrolment_id})
    _person_for_write(actor, enrolment.person_id, Perm.ENROLMENT_MANAGE)
    if status not in EnrolmentStatus.values:
        raise ValidationFailed.single(
            "status", "invalid_choice", _("Choose active, suspended or ended.")
        )
    if enrolment.status == EnrolmentStatus.ENDED:
        raise Conflict(_("This enrolment has ended."), code="enrolment.ended")
    before = {"status": enrolment.status, "end_date": enrolment.end_date}
    enrolment.status = status
    if status == EnrolmentStatus.ENDED:
        end = on or timezone.localdate()
        if end < enrolment.start_date:
            raise ValidationFailed.single(
                "end_date",
                "date.end_before_start",
                _("The end date cannot be before the start date."),
            )
        enrolment.end_date = end
    enrolment.save(update_fields=["status", "end_date"])
    audit_record(
        actor=actor,
        action="enrolment.status",
        entity_type="enrolment",
        entity_id=enrolment.pk,
        person_id=enrolment.person_id,
        changes=diff(before, {"status": status, "end_date": enrolment.end_date}),
    )
    return enrolment
