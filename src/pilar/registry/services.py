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
from dataclasses import dataclass, field, replace
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
    ApplicationError,
    Conflict,
    FieldError,
    FieldErrors,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from pilar.core.identifiers import CURP, NSS
from pilar.core.roles import Perm
from pilar.core.text import fold, normalized_full_name
from pilar.linkage import entry
from pilar.linkage.entry import Candidate
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
# A change to any of these makes the record describe possibly someone else: the duplicate
# check runs again (sex and birth state only refine a match, so they do not trigger it).
_IDENTITY_FIELDS = ("given_names", "paternal_surname", "maternal_surname", "birth_date")
# Identifier schemes that are part of a person's match key.
_MATCHED_SCHEMES = (CURP, NSS)


class PossibleDuplicate(Conflict):
    """Someone who may be this person is already registered: the record linkage check at the
    point of entry (``linkage.entry``) found candidates at or above the review threshold. The
    caller shows them and may register anyway with ``acknowledge_possible_duplicate``."""

    code = "registry.possible_duplicate"
    title = _("This person may already be registered.")


class MergedRecord(Conflict):
    """The record was merged into a golden record (record linkage): changes go to the golden
    record, so the person's data is never split again. Unmerge first to change this one."""

    code = "registry.merged_record"
    title = _(
        "This record was merged into another record of the same person. "
        "Make the change on that record."
    )


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
    if person.merged_into_id is not None:
        raise MergedRecord(extra={"golden_id": person.merged_into_id})
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
    *,
    values: Mapping[str, object],
    identifiers: Sequence[validation.ValidIdentifier] = (),
    exclude_id: int | None = None,
) -> list[Candidate]:
    """Registered persons who may be the person described by ``values`` (cleaned person fields)
    and ``identifiers``: record linkage on the indexed match keys, so lost accents, swapped
    surnames, a nickname, a missing maternal surname, a day/month swap or a missing CURP are
    caught as well as identical names. Best first, each with its match weight and the fields
    that agree and differ."""
    held = {identifier.scheme: identifier.value for identifier in identifiers}
    record = entry.record_input(values, curp=held.get(CURP), nss=held.get(NSS))
    return entry.find_candidates(record, exclude_id=exclude_id)


def _candidates_extra(candidates: Sequence[Candidate]) -> dict[str, Any]:
    return {"candidates": [candidate.as_dict() for candidate in candidates]}


def _acknowledged_note(candidates: Sequence[Candidate]) -> str:
    if not candidates:
        return ""
    return "possible duplicate acknowledged: " + ", ".join(
        f"{candidate.person_id} ({candidate.weight:.1f})" for candidate in candidates
    )


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


@dataclass
class _CleanRegistration:
    """A registration that has passed the entry filters, ready to be written."""

    values: dict[str, object]
    identifiers: list[validation.ValidIdentifier]
    address: dict[str, object] | None
    contacts: list[dict[str, object]]


def _clean_registration(
    actor: Actor,
    errors: FieldErrors,
    data: PersonData,
    identifiers: Sequence[IdentifierData],
    address: AddressData | None,
    contacts: Sequence[ContactData],
) -> _CleanRegistration:
    """Run every entry filter of a registration, adding to ``errors``."""
    if not data.region and actor.region:
        data = replace(data, region=actor.region)
    values = validation.clean_person(data, errors)
    clean_ids = _clean_identifiers(errors, identifiers, values)
    address_values = validation.clean_address(errors, "address.", address) if address else None
    contact_values = [
        validation.clean_contact(errors, f"contacts[{i}].", contact)
        for i, contact in enumerate(contacts)
    ]
    return _CleanRegistration(values, clean_ids, address_values, contact_values)


def _write_registration(
    actor: Actor, registration: _CleanRegistration, *, note: str = ""
) -> Person:
    """Write a validated registration and its audit event, in the caller's transaction."""
    values = registration.values
    normalized = normalized_full_name(
        str(values["given_names"]), str(values["paternal_surname"]), str(values["maternal_surname"])
    )
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
                    for i in registration.identifiers
                ]
            )
    except IntegrityError as error:
        raise ValidationFailed.single(
            "identifiers",
            "identifier.already_registered",
            _("One of these identifiers was registered to another person a moment ago."),
        ) from error
    if registration.address is not None:
        Address.objects.create(person=person, **registration.address)
    for contact in registration.contacts:
        Contact.objects.create(person=person, **contact)

    changes = created(values)
    for identifier in registration.identifiers:
        changes[f"identifier.{identifier.scheme}"] = [None, identifier.value]
    if registration.address is not None:
        street = registration.address["street"]
        changes["address"] = [None, f"{street}, {registration.address['postal_code']}"]
    for contact in registration.contacts:
        changes[f"contact.{contact['kind']}"] = [None, contact["value"]]
    audit_record(
        actor=actor,
        action="person.register",
        entity_type="person",
        entity_id=person.pk,
        person_id=person.pk,
        changes=changes,
        note=note,
    )
    return person


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
    not register or not in that region, and ``PossibleDuplicate`` (with the candidates, their
    match weights and the fields that agree) when record linkage finds persons who may be this
    one and the caller has not acknowledged it. The new person's match key is written in the
    same transaction."""
    actor.require(Perm.PERSON_REGISTER)
    errors = FieldErrors()
    registration = _clean_registration(actor, errors, data, identifiers, address, contacts)
    errors.raise_if_any()
    if not actor.sees_region(str(registration.values["region"])):
        raise PermissionDenied(_("You can only register persons in your office's region."))

    candidates = duplicate_candidates(
        values=registration.values, identifiers=registration.identifiers
    )
    if candidates and not acknowledge_possible_duplicate:
        raise PossibleDuplicate(extra=_candidates_extra(candidates))
    person = _write_registration(actor, registration, note=_acknowledged_note(candidates))
    entry.refresh_match_keys([person.pk])
    return person


# --- bulk registration ------------------------------------------------------------------------

# At most this many rows in one batch: all are validated, matched and written in one
# transaction, so the batch must stay small enough to hold locks briefly.
BATCH_MAX_ROWS = 10_000


@dataclass
class PersonRow:
    """One row of a bulk registration. ``row`` is the caller's number for it (the line of the
    file, the position in the request), used in the report and in ``acknowledge``."""

    row: int
    data: PersonData
    identifiers: Sequence[IdentifierData] = ()
    address: AddressData | None = None
    contacts: Sequence[ContactData] = ()


@dataclass
class RowReport:
    """What is wrong with one row: field errors, registered persons it may be, and earlier rows
    of the same batch it may be."""

    row: int
    errors: dict[str, list[FieldError]] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)
    batch_candidates: list[dict[str, Any]] = field(default_factory=list)
    acknowledged: bool = False

    @property
    def blocked(self) -> bool:
        has_candidates = bool(self.candidates or self.batch_candidates)
        return bool(self.errors) or (has_candidates and not self.acknowledged)

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "errors": [item.as_dict(name) for name, items in self.errors.items() for item in items],
            "candidates": [candidate.as_dict() for candidate in self.candidates],
            "batch_candidates": self.batch_candidates,
            "acknowledged": self.acknowledged,
        }


class BatchRefused(ApplicationError):
    """A bulk registration wrote nothing: ``rows`` reports every row with a problem."""

    def __init__(self, reports: Sequence[RowReport]) -> None:
        super().__init__(extra={"rows": [report.as_dict() for report in reports]})
        self.reports = list(reports)


class BatchInvalid(BatchRefused):
    code = "registry.batch_invalid"
    status = 422
    title = _("Some rows are not valid; nothing has been registered.")


class BatchPossibleDuplicates(BatchRefused):
    code = "registry.batch_possible_duplicates"
    status = 409
    title = _(
        "Some rows may be persons already registered, or repeat another row; nothing has been "
        "registered. Check them and acknowledge the rows to register anyway."
    )


def _batch_errors(
    actor: Actor, rows: Sequence[PersonRow], acknowledge: set[int]
) -> tuple[list[RowReport], list[_CleanRegistration | None]]:
    """Validate every row as a registration, plus what only a batch can get wrong: a row
    number used twice, an identifier given on two rows, an acknowledged row that does not
    exist."""
    reports = [RowReport(row=row.row, acknowledged=row.row in acknowledge) for row in rows]
    cleaned: list[_CleanRegistration | None] = []
    numbers_seen: set[int] = set()
    identifiers_seen: dict[tuple[str, str, str], int] = {}
    for row, report in zip(rows, reports, strict=True):
        errors = FieldErrors()
        if row.row in numbers_seen:
            errors.add("row", "batch.row_repeated", _("This row number appears twice."))
        numbers_seen.add(row.row)
        registration = _clean_registration(
            actor, errors, row.data, row.identifiers, row.address, row.contacts
        )
        region = str(registration.values.get("region") or "")
        if "region" not in errors.errors and region and not actor.sees_region(region):
            errors.add(
                "region",
                "region.not_allowed",
                _("You can only register persons in your office's region."),
            )
        for index, identifier in enumerate(registration.identifiers):
            key = (identifier.scheme, identifier.issuing_country, identifier.value)
            if key in identifiers_seen:
                errors.add(
                    f"identifiers[{index}]",
                    "identifier.repeated_in_batch",
                    _("This %(scheme)s is also on row %(row)d.")
                    % {"scheme": identifier.scheme, "row": identifiers_seen[key]},
                )
            else:
                identifiers_seen[key] = row.row
        report.errors = errors.errors
        cleaned.append(None if errors else registration)
    return reports, cleaned


def _batch_candidate(row: int, registration: _CleanRegistration, score: Any) -> dict[str, Any]:
    values = registration.values
    agreeing, differing = entry.agreement_of(score.breakdown)
    return {
        "row": row,
        "name": " ".join(
            str(values[name])
            for name in ("given_names", "paternal_surname", "maternal_surname")
            if values[name]
        ),
        "birth_date": values["birth_date"].isoformat(),  # type: ignore[attr-defined]
        "match_weight": round(float(score.weight), 2),
        "match_probability": round(float(score.probability), 4),
        "identifier_conflict": bool(score.identifier_conflict),
        "agreeing": agreeing,
        "differing": differing,
    }


def _record_of(registration: _CleanRegistration) -> dict[str, Any]:
    held = {identifier.scheme: identifier.value for identifier in registration.identifiers}
    return entry.record_input(registration.values, curp=held.get(CURP), nss=held.get(NSS))


@transaction.atomic(durable=True)
def person_register_batch(
    *, actor: Actor, rows: Sequence[PersonRow], acknowledge: set[int] | frozenset[int] = frozenset()
) -> list[Person]:
    """Register many persons at once, all or nothing.

    Every row is validated as a single registration would be, and matched against the
    registry **and against the other rows** (a list that names one person twice). The rows are
    written in one transaction only when no row has an error and every row with candidates is
    in ``acknowledge``; otherwise ``BatchInvalid`` (any field error, 422) or
    ``BatchPossibleDuplicates`` (409) reports each row with a problem and nothing is written.
    A within-batch pair is reported on the later row, which is the one to acknowledge.

    Returns the persons in row order."""
    actor.require(Perm.PERSON_REGISTER)
    if not rows:
        raise ValidationFailed.single("rows", "required", _("There are no rows to register."))
    if len(rows) > BATCH_MAX_ROWS:
        raise ValidationFailed.single(
            "rows",
            "batch.too_many_rows",
            _("At most %(max)d rows in one batch.") % {"max": BATCH_MAX_ROWS},
        )
    reports, cleaned = _batch_errors(actor, rows, set(acknowledge))
    unknown = sorted(set(acknowledge) - {row.row for row in rows})
    if unknown:
        raise ValidationFailed.single(
            "acknowledge",
            "batch.unknown_rows",
            _("There is no row %(rows)s in this batch.")
            % {"rows": ", ".join(str(number) for number in unknown)},
        )

    model = entry.scoring_model()
    records: dict[int, dict[str, Any]] = {}
    for index, registration in enumerate(cleaned):
        if registration is None:
            continue
        record = _record_of(registration)
        records[index] = record
        reports[index].candidates = entry.find_candidates(record, model=model)
    for earlier, later, score in entry.pairs_within(records, model=model):
        earlier_registration = cleaned[earlier]
        assert earlier_registration is not None  # only validated rows are paired
        reports[later].batch_candidates.append(
            _batch_candidate(rows[earlier].row, earlier_registration, score)
        )

    # Every row with an error or candidates is reported (acknowledged ones too, marked so), so
    # one round of corrections is enough.
    reported = [
        report
        for report in reports
        if report.errors or report.candidates or report.batch_candidates
    ]
    if any(report.errors for report in reports):
        raise BatchInvalid(reported)
    if any(report.blocked for report in reports):
        raise BatchPossibleDuplicates(reported)

    persons: list[Person] = []
    for row, report, registration in zip(rows, reports, cleaned, strict=True):
        assert registration is not None  # no row has an error here
        acknowledged = _acknowledged_note(report.candidates)
        within = ", ".join(f"row {item['row']}" for item in report.batch_candidates)
        notes = [f"bulk row {row.row}", acknowledged]
        if within:
            notes.append(f"same person as {within} acknowledged")
        try:
            person = _write_registration(
                actor, registration, note="; ".join(note for note in notes if note)
            )
        except ValidationFailed as error:
            raise BatchInvalid([RowReport(row=row.row, errors=error.field_errors)]) from error
        persons.append(person)
    entry.refresh_match_keys([person.pk for person in persons])
    return persons


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
    candidates: list[Candidate] = []
    if any(values[name] != before[name] for name in _IDENTITY_FIELDS):
        # The record now describes someone else's names or birth: check it is not a person
        # registered already (itself excluded).
        active_identifiers = [
            validation.ValidIdentifier(scheme=i.scheme, value=i.value, issuing_country="MX")
            for i in person.identifiers.filter(is_active=True, scheme__in=(CURP, NSS))
        ]
        candidates = duplicate_candidates(
            values=values, identifiers=active_identifiers, exclude_id=person.pk
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
        note=_acknowledged_note(candidates),
    )
    entry.refresh_match_keys([person.pk])
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
    if valid.scheme in _MATCHED_SCHEMES:
        entry.refresh_match_keys([person.pk])
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
    if identifier.scheme in _MATCHED_SCHEMES:
        entry.refresh_match_keys([identifier.person_id])
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
