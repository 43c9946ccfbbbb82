"""REST API of the registry: persons, identifiers, addresses, contacts, family ties, employers
and employments, under ``/api/v1/``.

Each operation parses a typed body (unknown fields refused, sizes bounded), calls one service
or selector with the request's actor, and shapes the response. Permission, region scope, entry
filters, audit events and the access log all happen in the services and selectors, exactly as
for the staff UI. Person data is only ever obtained from a selector or a service; when a
response needs rows related to that person (its identifiers after a lookup, the salaries of an
employment just written), they are read from the object the selector or service returned, after
it has checked access and logged the read.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from ninja import Field, Header, Path, Query, Router, Schema, Status
from pydantic import StrictInt

from pilar.core.api import (
    AUTH_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    AuditEventOut,
    Flag,
    InputSchema,
    IsoDate,
    PageNumber,
    PageOut,
    PageSize,
    ProblemOut,
    RecordId,
    actor_of,
    page_out,
)
from pilar.core.api import MAX_ID as _MAX_ID
from pilar.core.errors import FieldError, FieldErrors, ValidationFailed
from pilar.core.identifiers import SCHEMES
from pilar.core.regions import STATES
from pilar.registry import selectors, services
from pilar.registry.models import (
    INVERSE_RELATION,
    AddressKind,
    ContactKind,
    Employer,
    EmployerStatus,
    Employment,
    FamilyTie,
    Person,
    Relation,
    Sector,
    Sex,
)
from pilar.registry.schemas import (
    AddressOut,
    ContactOut,
    EmployerDetailOut,
    EmployerOut,
    EmploymentOut,
    FamilyTieOut,
    FamilyTieViewOut,
    IdentifierOut,
    PersonCoreOut,
    PersonIdentityOut,
    PersonRecordOut,
    PersonRegisteredOut,
    PersonSummaryOut,
    SalaryOut,
    WorkerOut,
    employment_document,
    person_core,
    person_record_document,
)
from pilar.registry.validation import (
    AddressData,
    ContactData,
    EmployerData,
    IdentifierData,
    PersonData,
)

router = Router()

PERSONS = ["Persons"]
FAMILY = ["Family ties"]
EMPLOYERS = ["Employers"]
EMPLOYMENTS = ["Employments"]

# Caps on list sizes in a request: generous for real records, small enough that one request
# cannot make the server validate thousands of items.
MAX_IDENTIFIERS = 10
MAX_CONTACTS = 10
PURPOSE_MAX_LENGTH = 200


def _choices(values: Iterable[str]) -> dict[str, Any]:
    # The allowed codes go into the OpenAPI document, but the domain's entry filters check
    # them, so a wrong code gets the domain's message ("Choose female, male or non-binary.").
    return {"enum": sorted(values)}


# --- request bodies ---------------------------------------------------------------------------


class IdentifierIn(InputSchema):
    scheme: str = Field(max_length=10, json_schema_extra=_choices(SCHEMES), examples=["CURP"])
    value: str = Field(max_length=40, examples=["HELM800517MJCRPR05"])
    issuing_country: str | None = Field(
        "", max_length=10, description="ISO 3166 alpha-2; required for PASSPORT and FOREIGN."
    )


class AddressIn(InputSchema):
    kind: str = Field("home", max_length=10, json_schema_extra=_choices(AddressKind.values))
    street: str = Field(max_length=200, examples=["Av. Juárez 100"])
    neighbourhood: str | None = Field("", max_length=120)
    municipality: str = Field(max_length=120, examples=["Guadalajara"])
    state: str = Field(max_length=10, json_schema_extra=_choices(STATES), examples=["JC"])
    postal_code: str = Field(max_length=10, examples=["44100"])
    country: str = Field("MX", max_length=10)
    valid_from: IsoDate | None = Field(None, description="Defaults to today.")


class ContactIn(InputSchema):
    kind: str = Field(max_length=10, json_schema_extra=_choices(ContactKind.values))
    value: str = Field(max_length=200, examples=["3312345678"])
    is_preferred: Flag = False


class PersonRowIn(InputSchema):
    """A person to register, with identifiers, an address and contacts."""

    given_names: str = Field(max_length=100, examples=["María Guadalupe"])
    paternal_surname: str | None = Field("", max_length=100, examples=["Hernández"])
    maternal_surname: str | None = Field("", max_length=100, examples=["López"])
    sex: str = Field(max_length=10, json_schema_extra=_choices(Sex.values))
    birth_date: IsoDate
    birth_state: str | None = Field(
        "", max_length=10, description="CURP state code, or NE for born abroad."
    )
    birth_country: str = Field("MX", max_length=10)
    nationality: str = Field("MX", max_length=10)
    death_date: IsoDate | None = None
    region: str | None = Field(
        "", max_length=10, description="The administering state; defaults to the office's."
    )
    identifiers: list[IdentifierIn] = Field(default_factory=list, max_length=MAX_IDENTIFIERS)
    address: AddressIn | None = None
    contacts: list[ContactIn] = Field(default_factory=list, max_length=MAX_CONTACTS)


class PersonRegisterIn(PersonRowIn):
    acknowledge_possible_duplicate: Flag = Field(
        False,
        description="Register even though record linkage found persons who may be this one.",
    )


# Rows in one batch request: every row is matched against the registry and the other rows
# and all are written in one transaction, which must stay short.
MAX_BATCH_ROWS = 1000
RowNumber = Annotated[StrictInt, Field(ge=1, le=MAX_BATCH_ROWS)]


class PersonBatchIn(InputSchema):
    rows: list[PersonRowIn] = Field(max_length=MAX_BATCH_ROWS)
    acknowledge: list[RowNumber] = Field(
        default_factory=list,
        max_length=MAX_BATCH_ROWS,
        description="Numbers of the rows (1 is the first) whose possible duplicates you have "
        "checked: they are registered anyway.",
    )


class PersonBatchItemOut(Schema):
    row: int
    id: int
    full_name: str


class PersonBatchOut(Schema):
    persons: list[PersonBatchItemOut]


class PersonPatchIn(InputSchema):
    """Only the fields sent are changed. ``null`` clears an optional field (a surname, the
    death date); required fields cannot be null."""

    version: RecordId = Field(description="The version read; a concurrent change gives 409.")
    acknowledge_possible_duplicate: Flag = False
    given_names: str | None = Field(None, max_length=100)
    paternal_surname: str | None = Field(None, max_length=100)
    maternal_surname: str | None = Field(None, max_length=100)
    sex: str | None = Field(None, max_length=10, json_schema_extra=_choices(Sex.values))
    birth_date: IsoDate | None = None
    birth_state: str | None = Field(None, max_length=10)
    birth_country: str | None = Field(None, max_length=10)
    nationality: str | None = Field(None, max_length=10)
    death_date: IsoDate | None = None
    region: str | None = Field(None, max_length=10)


class FamilyTieIn(InputSchema):
    person_id: RecordId
    relative_id: RecordId
    relation: str = Field(
        max_length=10,
        json_schema_extra=_choices(Relation.values),
        description="What the relative is to the person: child, parent, spouse or partner.",
    )
    start_date: IsoDate | None = None
    end_date: IsoDate | None = None


class EndIn(InputSchema):
    end_date: IsoDate


class EmployerRegisterIn(InputSchema):
    rfc: str = Field(max_length=20, examples=["CAB850101A13"])
    registration_number: str = Field(max_length=20, examples=["Y0000000001"])
    legal_name: str = Field(max_length=250)
    trade_name: str | None = Field("", max_length=250)
    sector: str = Field(max_length=10, json_schema_extra=_choices(Sector.values))
    street: str = Field(max_length=200)
    municipality: str = Field(max_length=120)
    state: str = Field(max_length=10, json_schema_extra=_choices(STATES))
    postal_code: str = Field(max_length=10)
    status: str = Field("active", max_length=10, json_schema_extra=_choices(EmployerStatus.values))
    registered_on: IsoDate | None = Field(None, description="Defaults to today.")


class EmployerPatchIn(InputSchema):
    version: RecordId
    rfc: str | None = Field(None, max_length=20)
    registration_number: str | None = Field(None, max_length=20)
    legal_name: str | None = Field(None, max_length=250)
    trade_name: str | None = Field(None, max_length=250)
    sector: str | None = Field(None, max_length=10, json_schema_extra=_choices(Sector.values))
    street: str | None = Field(None, max_length=200)
    municipality: str | None = Field(None, max_length=120)
    state: str | None = Field(None, max_length=10)
    postal_code: str | None = Field(None, max_length=10)
    status: str | None = Field(None, max_length=10)
    registered_on: IsoDate | None = None


# Salaries are decimals with two places, sent as a string ("350.50") or a JSON number; the
# API's parser reads JSON numbers as Decimal, so no float ever touches an amount.
DailySalaryIn = Annotated[Decimal, Field(max_digits=12, decimal_places=2, examples=["350.50"])]


class EmploymentIn(InputSchema):
    person_id: RecordId
    employer_id: RecordId
    start_date: IsoDate
    end_date: IsoDate | None = None
    job_title: str | None = Field("", max_length=120)
    daily_salary: DailySalaryIn | None = Field(None, description="The daily base salary (SBC).")


class SalaryIn(InputSchema):
    effective_from: IsoDate
    daily_salary: DailySalaryIn


# --- responses --------------------------------------------------------------------------------


def _employment_written(employment: Employment) -> dict[str, Any]:
    return employment_document(employment, list(employment.salaries.order_by("-effective_from")))


def _purpose(query_value: str, header_value: str) -> str:
    return (query_value or header_value or "").strip()


def _location(response: HttpResponse, view_name: str, **kwargs: int) -> None:
    response["Location"] = reverse(f"api:{view_name}", kwargs=kwargs)


_NULL_REFUSED = _("This field cannot be null.")


def _patch_changes(
    payload: Schema, *, blank_when_null: set[str], nullable: set[str]
) -> dict[str, Any]:
    """The fields a PATCH sent, with ``null`` turned into the field's empty value where the
    field may be empty, and refused where it may not (instead of silently defaulting)."""
    sent = payload.model_dump(
        exclude_unset=True, exclude={"version", "acknowledge_possible_duplicate"}
    )
    changes: dict[str, Any] = {}
    errors = FieldErrors()
    for name, value in sent.items():
        if value is None and name in blank_when_null:
            changes[name] = ""
        elif value is None and name not in nullable:
            errors.add(name, "field.not_nullable", _NULL_REFUSED)
        else:
            changes[name] = value
    errors.raise_if_any()
    return changes


def _identifier_field(code: str) -> str:
    if code == "identifier.unknown_scheme":
        return "scheme"
    if code == "identifier.issuing_country_required":
        return "issuing_country"
    return "value"


def _renamed_identifier_errors(error: ValidationFailed) -> ValidationFailed:
    """The identifier service names its one item ``identifiers[0]``; this endpoint's body is
    the identifier itself, so the errors name its fields."""
    per_field: dict[str, list[FieldError]] = {}
    for name, items in error.field_errors.items():
        for item in items:
            target = _identifier_field(item.code) if name.startswith("identifiers") else name
            per_field.setdefault(target, []).append(item)
    return ValidationFailed(per_field)


# --- persons ----------------------------------------------------------------------------------

PersonId = Annotated[int, Path(ge=1, le=_MAX_ID)]
PurposeQuery = Annotated[
    str,
    Query(
        "",
        max_length=PURPOSE_MAX_LENGTH,
        description="Why the record is read; goes into the access log. Or send X-Purpose.",
    ),
]
PurposeHeader = Annotated[
    str, Header("", alias="X-Purpose", max_length=PURPOSE_MAX_LENGTH, include_in_schema=True)
]


def person_row_parts(
    payload: PersonRowIn,
) -> tuple[PersonData, list[IdentifierData], AddressData | None, list[ContactData]]:
    """A request's person, identifiers, address and contacts as the services take them."""
    data = PersonData(
        given_names=payload.given_names,
        paternal_surname=payload.paternal_surname or "",
        maternal_surname=payload.maternal_surname or "",
        sex=payload.sex,
        birth_date=payload.birth_date,
        birth_state=payload.birth_state or "",
        birth_country=payload.birth_country,
        nationality=payload.nationality,
        death_date=payload.death_date,
        region=payload.region or "",
    )
    identifiers = [
        IdentifierData(
            scheme=item.scheme, value=item.value, issuing_country=item.issuing_country or ""
        )
        for item in payload.identifiers
    ]
    contacts = [
        ContactData(kind=item.kind, value=item.value, is_preferred=item.is_preferred)
        for item in payload.contacts
    ]
    address = _address_data(payload.address) if payload.address else None
    return data, identifiers, address, contacts


@router.post(
    "/persons",
    response={201: PersonRegisteredOut, **WRITE_ERRORS},
    tags=PERSONS,
    summary="Register a person",
)
def person_register(
    request: HttpRequest, payload: PersonRegisterIn, response: HttpResponse
) -> Status:
    """Register a person with identifiers, an address and contacts. When record linkage finds
    persons who may be this one (similar names, birth date or identifiers, allowing for lost
    accents, swapped surnames, nicknames, typing slips and a missing CURP) the answer is 409
    `registry.possible_duplicate` with `candidates`: each with its `match_weight`,
    `match_probability`, `identifier_conflict`, the comparisons `agreeing` and `differing`
    and the `breakdown`. Send the request again with `acknowledge_possible_duplicate: true`
    to register anyway."""
    data, identifiers, address, contacts = person_row_parts(payload)
    person = services.person_register(
        actor=actor_of(request),
        data=data,
        identifiers=identifiers,
        address=address,
        contacts=contacts,
        acknowledge_possible_duplicate=payload.acknowledge_possible_duplicate,
    )
    _location(response, "person_get", person_id=person.pk)
    # The caller has just written these rows; echoing them back is not a read of the record.
    return Status(
        201,
        {
            **person_core(person),
            "identifiers": list(person.identifiers.order_by("scheme", "pk")),
            "addresses": list(person.addresses.all()),
            "contacts": list(person.contacts.all()),
        },
    )


@router.post(
    "/persons/batch",
    response={201: PersonBatchOut, **WRITE_ERRORS},
    tags=PERSONS,
    summary="Register many persons, all or nothing",
)
def person_register_batch(request: HttpRequest, payload: PersonBatchIn) -> Status:
    """Up to 1,000 persons in one transaction. Each row is validated as a single registration
    and matched against the registry and against the other rows. If any row has a field error
    the answer is 422 `registry.batch_invalid`; if rows only have possible duplicates it is
    409 `registry.batch_possible_duplicates`. Either way nothing is written and `rows` reports
    each row with a problem: `row` (1 is the first), `errors`, `candidates` (registered
    persons) and `batch_candidates` (earlier rows of this request). Send the batch again with
    those row numbers in `acknowledge` to register them anyway."""
    rows = []
    for number, item in enumerate(payload.rows, start=1):
        data, identifiers, address, contacts = person_row_parts(item)
        rows.append(
            services.PersonRow(
                row=number, data=data, identifiers=identifiers, address=address, contacts=contacts
            )
        )
    persons = services.person_register_batch(
        actor=actor_of(request), rows=rows, acknowledge=set(payload.acknowledge)
    )
    return Status(
        201,
        {
            "persons": [
                {"row": number, "id": person.pk, "full_name": person.full_name}
                for number, person in enumerate(persons, start=1)
            ]
        },
    )


def _address_data(address: AddressIn) -> AddressData:
    return AddressData(
        kind=address.kind,
        street=address.street,
        neighbourhood=address.neighbourhood or "",
        municipality=address.municipality,
        state=address.state,
        postal_code=address.postal_code,
        country=address.country,
        valid_from=address.valid_from,
    )


@router.get(
    "/persons",
    response={200: PageOut[PersonSummaryOut], **AUTH_ERRORS, 422: ProblemOut},
    tags=PERSONS,
    summary="Search persons",
)
def person_search(
    request: HttpRequest,
    q: Annotated[str, Query("", max_length=200)],
    page: Annotated[PageNumber, Query(1)],
    page_size: Annotated[PageSize, Query(25)],
    include_inactive: Annotated[bool, Query(False)],
    include_merged: Annotated[bool, Query(False)],
) -> dict[str, Any]:
    """By identifier (a CURP, NSS or RFC: exact match) or by name (every word must appear,
    accents and case ignored: `garc mar` finds María García). Only persons of the caller's
    region, unless the role has national scope. Records merged into a golden record are left
    out unless `include_merged` (an identifier of a merged record finds the golden record)."""
    result = selectors.person_search(
        actor=actor_of(request),
        query=q,
        page=page,
        page_size=page_size,
        include_inactive=include_inactive,
        include_merged=include_merged,
    )
    return page_out(request, result, result.items)


@router.get(
    "/persons/by-identifier/{scheme}/{value}",
    response={200: PersonIdentityOut, **READ_ERRORS},
    tags=PERSONS,
    summary="Look a person up by identifier",
)
def person_get_by_identifier(
    request: HttpRequest,
    scheme: Annotated[str, Path(max_length=10, description="CURP, NSS, RFC, PASSPORT, FOREIGN")],
    value: Annotated[str, Path(max_length=40)],
    purpose: PurposeQuery,
    x_purpose: PurposeHeader,
) -> dict[str, Any]:
    """The person holding an active identifier, with identity and identifiers only (the fast
    path for partner systems). The read is logged."""
    person = selectors.person_get_by_identifier(
        actor=actor_of(request), scheme=scheme, value=value, purpose=_purpose(purpose, x_purpose)
    )
    identifiers = person.identifiers.filter(is_active=True).order_by("scheme", "pk")
    return {**person_core(person), "identifiers": list(identifiers)}


@router.get(
    "/persons/{int:person_id}",
    response={200: PersonRecordOut, **READ_ERRORS},
    tags=PERSONS,
    summary="A person's full record",
    url_name="person_get",
)
def person_get(
    request: HttpRequest, person_id: PersonId, purpose: PurposeQuery, x_purpose: PurposeHeader
) -> dict[str, Any]:
    """Identity, identifiers, addresses, contacts, family ties, employments with salaries, and
    programme enrolments. The read is logged with its purpose."""
    record = selectors.person_record(
        actor=actor_of(request), person_id=person_id, purpose=_purpose(purpose, x_purpose)
    )
    return person_record_document(record, language=get_language())


@router.patch(
    "/persons/{int:person_id}",
    response={200: PersonCoreOut, **WRITE_ERRORS},
    tags=PERSONS,
    summary="Change a person's own fields",
)
def person_update(request: HttpRequest, person_id: PersonId, payload: PersonPatchIn) -> Person:
    """Send only the fields to change, and the `version` you read: if someone changed the
    record since, the answer is 409 `registry.stale_version` and nothing changes."""
    return services.person_update(
        actor=actor_of(request),
        person_id=person_id,
        changes=_patch_changes(
            payload,
            blank_when_null={"paternal_surname", "maternal_surname", "birth_state"},
            nullable={"death_date"},
        ),
        expected_version=payload.version,
        acknowledge_possible_duplicate=payload.acknowledge_possible_duplicate,
    )


@router.get(
    "/persons/{int:person_id}/history",
    response={200: PageOut[AuditEventOut], **READ_ERRORS},
    tags=PERSONS,
    summary="A person's change history",
)
def person_history(
    request: HttpRequest,
    person_id: PersonId,
    page: Annotated[PageNumber, Query(1)],
    page_size: Annotated[PageSize, Query(20)],
    purpose: PurposeQuery,
    x_purpose: PurposeHeader,
) -> dict[str, Any]:
    """The audit events that concern the person, newest first. Their before/after values are
    personal data, so the read is logged with its purpose."""
    result = selectors.person_history(
        actor=actor_of(request),
        person_id=person_id,
        page=page,
        page_size=page_size,
        purpose=_purpose(purpose, x_purpose),
    )
    return page_out(request, result, result.items)


@router.post(
    "/persons/{int:person_id}/identifiers",
    response={201: IdentifierOut, **WRITE_ERRORS},
    tags=PERSONS,
    summary="Add an identifier",
)
def identifier_add(request: HttpRequest, person_id: PersonId, payload: IdentifierIn) -> Status:
    """Add an identifier of a type the person does not hold yet."""
    try:
        identifier = services.identifier_add(
            actor=actor_of(request),
            person_id=person_id,
            data=IdentifierData(
                scheme=payload.scheme,
                value=payload.value,
                issuing_country=payload.issuing_country or "",
            ),
        )
    except ValidationFailed as error:
        raise _renamed_identifier_errors(error) from error
    return Status(201, identifier)


@router.post(
    "/persons/{int:person_id}/addresses",
    response={201: AddressOut, **WRITE_ERRORS},
    tags=PERSONS,
    summary="Record a new address",
)
def address_add(request: HttpRequest, person_id: PersonId, payload: AddressIn) -> Status:
    """The current address of the same kind ends the day before the new one starts."""
    address = services.address_add(
        actor=actor_of(request), person_id=person_id, data=_address_data(payload)
    )
    return Status(201, address)


@router.post(
    "/persons/{int:person_id}/contacts",
    response={201: ContactOut, **WRITE_ERRORS},
    tags=PERSONS,
    summary="Add a contact",
)
def contact_add(request: HttpRequest, person_id: PersonId, payload: ContactIn) -> Status:
    contact = services.contact_add(
        actor=actor_of(request),
        person_id=person_id,
        data=ContactData(kind=payload.kind, value=payload.value, is_preferred=payload.is_preferred),
    )
    return Status(201, contact)


# --- family ties ------------------------------------------------------------------------------


@router.get(
    "/persons/{int:person_id}/family-ties",
    response={200: list[FamilyTieViewOut], **READ_ERRORS},
    tags=FAMILY,
    summary="A person's family ties",
)
def family_ties_list(
    request: HttpRequest, person_id: PersonId, purpose: PurposeQuery, x_purpose: PurposeHeader
) -> list[selectors.TieView]:
    """Open ties first; `relation` is what the relative is to this person. Logged as a read."""
    return selectors.family_ties_list(
        actor=actor_of(request), person_id=person_id, purpose=_purpose(purpose, x_purpose)
    )


def _tie_out(tie: FamilyTie, *, seen_from: int) -> dict[str, Any]:
    """The tie from the side the caller named: a parent tie is stored as the inverse child
    tie, but the caller asked to record a parent."""
    if tie.person_id == seen_from:
        person_id, relative_id, relation = tie.person_id, tie.relative_id, tie.relation
    else:
        person_id, relative_id = tie.relative_id, tie.person_id
        relation = INVERSE_RELATION[tie.relation]
    return {
        "id": tie.pk,
        "person_id": person_id,
        "relative_id": relative_id,
        "relation": relation,
        "start_date": tie.start_date,
        "end_date": tie.end_date,
    }


@router.post(
    "/family-ties",
    response={201: FamilyTieOut, **WRITE_ERRORS},
    tags=FAMILY,
    summary="Record a family tie",
)
def family_tie_create(request: HttpRequest, payload: FamilyTieIn) -> Status:
    """Record that `relative_id` is the `relation` of `person_id` (child, parent, spouse or
    partner), with optional dates for marriages and partnerships."""
    tie = services.family_tie_create(
        actor=actor_of(request),
        person_id=payload.person_id,
        relative_id=payload.relative_id,
        relation=payload.relation,
        start_date=payload.start_date,
        end_date=payload.end_date,
    )
    return Status(201, _tie_out(tie, seen_from=payload.person_id))


@router.post(
    "/family-ties/{int:tie_id}/end",
    response={200: FamilyTieOut, **WRITE_ERRORS},
    tags=FAMILY,
    summary="End a family tie",
)
def family_tie_end(
    request: HttpRequest, tie_id: Annotated[int, Path(ge=1, le=_MAX_ID)], payload: EndIn
) -> dict[str, Any]:
    tie = services.family_tie_end(actor=actor_of(request), tie_id=tie_id, end_date=payload.end_date)
    return _tie_out(tie, seen_from=tie.person_id)


# --- employers --------------------------------------------------------------------------------

EmployerId = Annotated[int, Path(ge=1, le=_MAX_ID)]


@router.get(
    "/employers",
    response={200: PageOut[EmployerOut], **AUTH_ERRORS, 422: ProblemOut},
    tags=EMPLOYERS,
    summary="Search employers",
)
def employer_list(
    request: HttpRequest,
    q: Annotated[str, Query("", max_length=200, description="Name, RFC or registration no.")],
    status: Annotated[str, Query("", max_length=10, description="active, suspended or closed")],
    state: Annotated[str, Query("", max_length=10, description="CURP state code, e.g. JC")],
    page: Annotated[PageNumber, Query(1)],
    page_size: Annotated[PageSize, Query(25)],
) -> dict[str, Any]:
    errors = FieldErrors()
    if status and status not in EmployerStatus.values:
        errors.add("status", "invalid_choice", _("Choose active, suspended or closed."))
    if state and state not in STATES:
        errors.add("state", "invalid_choice", _("Choose a state of Mexico."))
    errors.raise_if_any()
    result = selectors.employer_list(
        actor=actor_of(request),
        query=q,
        status=status,
        state=state,
        page=page,
        page_size=page_size,
    )
    return page_out(request, result, result.items)


@router.post(
    "/employers",
    response={201: EmployerOut, **WRITE_ERRORS},
    tags=EMPLOYERS,
    summary="Register an employer",
)
def employer_register(
    request: HttpRequest, payload: EmployerRegisterIn, response: HttpResponse
) -> Status:
    employer = services.employer_register(
        actor=actor_of(request),
        data=EmployerData(
            rfc=payload.rfc,
            registration_number=payload.registration_number,
            legal_name=payload.legal_name,
            trade_name=payload.trade_name or "",
            sector=payload.sector,
            street=payload.street,
            municipality=payload.municipality,
            state=payload.state,
            postal_code=payload.postal_code,
            status=payload.status,
            registered_on=payload.registered_on,
        ),
    )
    _location(response, "employer_get", employer_id=employer.pk)
    return Status(201, employer)


@router.get(
    "/employers/{int:employer_id}",
    response={200: EmployerDetailOut, **READ_ERRORS},
    tags=EMPLOYERS,
    summary="An employer",
    url_name="employer_get",
)
def employer_get(request: HttpRequest, employer_id: EmployerId) -> dict[str, Any]:
    record = selectors.employer_get(actor=actor_of(request), employer_id=employer_id)
    return {
        **{name: getattr(record.employer, name) for name in EmployerOut.model_fields},
        "active_workers": record.active_workers,
        "total_employments": record.total_employments,
    }


@router.patch(
    "/employers/{int:employer_id}",
    response={200: EmployerOut, **WRITE_ERRORS},
    tags=EMPLOYERS,
    summary="Change an employer",
)
def employer_update(
    request: HttpRequest, employer_id: EmployerId, payload: EmployerPatchIn
) -> Employer:
    """Send only the fields to change, and the `version` you read."""
    return services.employer_update(
        actor=actor_of(request),
        employer_id=employer_id,
        changes=_patch_changes(payload, blank_when_null={"trade_name"}, nullable=set()),
        expected_version=payload.version,
    )


@router.get(
    "/employers/{int:employer_id}/workers",
    response={200: PageOut[WorkerOut], **READ_ERRORS},
    tags=EMPLOYERS,
    summary="An employer's workers",
)
def employer_workers(
    request: HttpRequest,
    employer_id: EmployerId,
    current_only: Annotated[bool, Query(True, description="Only open working periods.")],
    page: Annotated[PageNumber, Query(1)],
    page_size: Annotated[PageSize, Query(25)],
) -> dict[str, Any]:
    """Working periods with this employer, of persons in the caller's region (none for roles
    that may not see persons)."""
    actor = actor_of(request)
    # An unknown employer is a 404, not an empty list.
    selectors.employer_get(actor=actor, employer_id=employer_id)
    result = selectors.employer_workers(
        actor=actor,
        employer_id=employer_id,
        current_only=current_only,
        page=page,
        page_size=page_size,
    )
    return page_out(request, result, result.items)


# --- employments ------------------------------------------------------------------------------


@router.get(
    "/persons/{int:person_id}/employments",
    response={200: list[EmploymentOut], **READ_ERRORS},
    tags=EMPLOYMENTS,
    summary="A person's working periods",
)
def employments_list(
    request: HttpRequest, person_id: PersonId, purpose: PurposeQuery, x_purpose: PurposeHeader
) -> list[dict[str, Any]]:
    """Newest first, each with its salary history. Logged as a read."""
    views = selectors.employments_list(
        actor=actor_of(request), person_id=person_id, purpose=_purpose(purpose, x_purpose)
    )
    return [employment_document(view.employment, view.salaries) for view in views]


@router.post(
    "/employments",
    response={201: EmploymentOut, **WRITE_ERRORS},
    tags=EMPLOYMENTS,
    summary="Record a working period",
)
def employment_create(request: HttpRequest, payload: EmploymentIn) -> Status:
    """A working period (alta, and baja with `end_date`), with the hire daily salary."""
    employment = services.employment_create(
        actor=actor_of(request),
        person_id=payload.person_id,
        employer_id=payload.employer_id,
        start_date=payload.start_date,
        end_date=payload.end_date,
        job_title=payload.job_title or "",
        daily_salary=payload.daily_salary,
    )
    return Status(201, _employment_written(employment))


EmploymentId = Annotated[int, Path(ge=1, le=_MAX_ID)]


@router.post(
    "/employments/{int:employment_id}/end",
    response={200: EmploymentOut, **WRITE_ERRORS},
    tags=EMPLOYMENTS,
    summary="End a working period",
)
def employment_end(
    request: HttpRequest, employment_id: EmploymentId, payload: EndIn
) -> dict[str, Any]:
    employment = services.employment_end(
        actor=actor_of(request), employment_id=employment_id, end_date=payload.end_date
    )
    return _employment_written(employment)


@router.post(
    "/employments/{int:employment_id}/salaries",
    response={201: SalaryOut, **WRITE_ERRORS},
    tags=EMPLOYMENTS,
    summary="Record a salary change",
)
def employment_salary_change(
    request: HttpRequest, employment_id: EmploymentId, payload: SalaryIn
) -> Status:
    """A new daily salary from a date within the working period (modificación de salario)."""
    salary = services.employment_salary_change(
        actor=actor_of(request),
        employment_id=employment_id,
        effective_from=payload.effective_from,
        daily_salary=payload.daily_salary,
    )
    return Status(201, salary)
