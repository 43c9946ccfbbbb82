"""Entry filters for master data: the checks every registration path runs (web form, API, bulk
file, partner node). Each returns field errors with stable codes and translated messages; none
writes anything.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pilar.core import identifiers
from pilar.core.errors import FieldErrors
from pilar.core.identifiers import IdentifierInvalid, ValidIdentifier
from pilar.core.regions import BORN_ABROAD, STATES, is_country_code
from pilar.core.text import clean_name
from pilar.registry.models import (
    AddressKind,
    ContactKind,
    EmployerStatus,
    Relation,
    Sector,
    Sex,
)

EARLIEST_BIRTH_DATE = datetime.date(1900, 1, 1)
# Mexico's Federal Labour Law sets 15 as the minimum working age.
MINIMUM_WORKING_AGE = 15
NAME_MAX_LENGTH = 100
# Letters of any alphabet (accents, Ñ, Ü), spaces, apostrophes, hyphens and dots (MA. for María).
_NAME_PATTERN = re.compile(r"^[^\W\d_]+(?:[ '’.\-][^\W\d_]*)*$")
_POSTAL_CODE = re.compile(r"^\d{5}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?\d{10,15}$")


@dataclass
class PersonData:
    given_names: str = ""
    paternal_surname: str = ""
    maternal_surname: str = ""
    sex: str = ""
    birth_date: datetime.date | None = None
    birth_state: str = ""
    birth_country: str = "MX"
    nationality: str = "MX"
    death_date: datetime.date | None = None
    region: str = ""


@dataclass
class IdentifierData:
    scheme: str
    value: str
    issuing_country: str = ""


@dataclass
class AddressData:
    street: str
    municipality: str
    state: str
    postal_code: str
    neighbourhood: str = ""
    country: str = "MX"
    kind: str = AddressKind.HOME
    valid_from: datetime.date | None = None


@dataclass
class ContactData:
    kind: str
    value: str
    is_preferred: bool = False


@dataclass
class EmployerData:
    rfc: str = ""
    registration_number: str = ""
    legal_name: str = ""
    trade_name: str = ""
    sector: str = ""
    street: str = ""
    municipality: str = ""
    state: str = ""
    postal_code: str = ""
    status: str = EmployerStatus.ACTIVE
    registered_on: datetime.date | None = None


@dataclass
class CleanPerson:
    values: dict[str, object] = field(default_factory=dict)


def _today() -> datetime.date:
    return timezone.localdate()


def _check_name(errors: FieldErrors, name: str, value: str, *, required: bool) -> str:
    value = clean_name(value or "")
    if not value:
        if required:
            errors.add(name, "required", _("This field is required."))
        return ""
    if len(value) > NAME_MAX_LENGTH:
        errors.add(name, "too_long", _("At most %(max)d characters.") % {"max": NAME_MAX_LENGTH})
    elif not _NAME_PATTERN.match(value):
        errors.add(
            name,
            "name.invalid_characters",
            _("Names contain letters, spaces, apostrophes, hyphens and dots only."),
        )
    return value


def _check_country(errors: FieldErrors, name: str, value: str) -> str:
    value = (value or "").strip().upper()
    if not is_country_code(value):
        errors.add(
            name, "country.invalid", _("Give a two-letter ISO 3166 country code, for example MX.")
        )
    return value


def clean_person(data: PersonData, errors: FieldErrors) -> dict[str, object]:
    """Validate a person's own fields; returns the cleaned values (errors collected, not raised)."""
    today = _today()
    values: dict[str, object] = {
        "given_names": _check_name(errors, "given_names", data.given_names, required=True),
        "paternal_surname": _check_name(
            errors, "paternal_surname", data.paternal_surname, required=False
        ),
        "maternal_surname": _check_name(
            errors, "maternal_surname", data.maternal_surname, required=False
        ),
    }
    if not values["paternal_surname"] and not values["maternal_surname"]:
        errors.add(
            "paternal_surname",
            "person.surname_required",
            _("Give at least one surname (paternal or maternal)."),
        )
    if data.sex not in Sex.values:
        errors.add("sex", "invalid_choice", _("Choose female, male or non-binary."))
    values["sex"] = data.sex

    birth_date = data.birth_date
    if birth_date is None:
        errors.add("birth_date", "required", _("This field is required."))
    elif birth_date > today:
        errors.add("birth_date", "date.in_future", _("The birth date cannot be in the future."))
    elif birth_date < EARLIEST_BIRTH_DATE:
        errors.add(
            "birth_date", "date.too_early", _("The birth date cannot be before 1 January 1900.")
        )
    values["birth_date"] = birth_date

    birth_country = _check_country(errors, "birth_country", data.birth_country or "MX")
    values["nationality"] = _check_country(errors, "nationality", data.nationality or "MX")
    birth_state = (data.birth_state or "").strip().upper()
    if birth_state and birth_state not in STATES and birth_state != BORN_ABROAD:
        errors.add("birth_state", "invalid_choice", _("Choose a state of Mexico or born abroad."))
    elif birth_country == "MX" and birth_state == BORN_ABROAD:
        errors.add(
            "birth_state",
            "person.birth_place_inconsistent",
            _("A person born in Mexico needs a Mexican state of birth."),
        )
    elif birth_country not in ("", "MX") and birth_state not in ("", BORN_ABROAD):
        errors.add(
            "birth_state",
            "person.birth_place_inconsistent",
            _("A person born abroad has 'born abroad' as state of birth."),
        )
    if birth_country not in ("", "MX") and not birth_state:
        birth_state = BORN_ABROAD
    values["birth_country"] = birth_country
    values["birth_state"] = birth_state

    death_date = data.death_date
    if death_date is not None:
        if death_date > today:
            errors.add("death_date", "date.in_future", _("The death date cannot be in the future."))
        elif birth_date is not None and death_date < birth_date:
            errors.add(
                "death_date",
                "person.death_before_birth",
                _("The death date cannot be before the birth date."),
            )
    values["death_date"] = death_date

    region = (data.region or "").strip().upper()
    if region not in STATES:
        errors.add("region", "invalid_choice", _("Choose the state that administers the record."))
    values["region"] = region
    return values


def clean_identifier(
    errors: FieldErrors, field_name: str, data: IdentifierData
) -> ValidIdentifier | None:
    try:
        return identifiers.validate_identifier(
            (data.scheme or "").strip().upper(), data.value or "", data.issuing_country or ""
        )
    except IdentifierInvalid as invalid:
        errors.add(field_name, invalid.code, invalid.message)
        return None


def check_curp_consistency(
    errors: FieldErrors, field_name: str, curp: str, person: Mapping[str, object]
) -> None:
    """A CURP embeds the birth date, sex and state of birth; they must agree with the record."""
    birth_date = person.get("birth_date")
    if isinstance(birth_date, datetime.date) and identifiers.curp_birth_date(curp) != birth_date:
        errors.add(
            field_name,
            "curp.birth_date_mismatch",
            _("The CURP's birth date (characters 5–10) does not match the birth date."),
        )
    sex = person.get("sex")
    if sex in (Sex.FEMALE, Sex.MALE) and identifiers.curp_sex(curp) != sex:
        errors.add(
            field_name,
            "curp.sex_mismatch",
            _("The CURP's sex (character 11) does not match the person's sex."),
        )
    birth_state = person.get("birth_state")
    if birth_state and identifiers.curp_state(curp) != birth_state:
        errors.add(
            field_name,
            "curp.birth_state_mismatch",
            _("The CURP's state of birth (characters 12–13) does not match the state of birth."),
        )


def clean_address(errors: FieldErrors, prefix: str, data: AddressData) -> dict[str, object]:
    values: dict[str, object] = {}
    # Limits match the columns: street 200, municipality and neighbourhood 120.
    for name, limit in (("street", 200), ("municipality", 120), ("neighbourhood", 120)):
        value = clean_name(getattr(data, name) or "")
        if not value and name != "neighbourhood":
            errors.add(f"{prefix}{name}", "required", _("This field is required."))
        elif len(value) > limit:
            errors.add(
                f"{prefix}{name}", "too_long", _("At most %(max)d characters.") % {"max": limit}
            )
        values[name] = value
    state = (data.state or "").strip().upper()
    if state not in STATES:
        errors.add(f"{prefix}state", "invalid_choice", _("Choose a state of Mexico."))
    values["state"] = state
    postal_code = (data.postal_code or "").strip()
    if not _POSTAL_CODE.match(postal_code):
        errors.add(
            f"{prefix}postal_code",
            "postal_code.invalid",
            _("A Mexican postal code has five digits."),
        )
    values["postal_code"] = postal_code
    values["country"] = _check_country(errors, f"{prefix}country", data.country or "MX")
    if data.kind not in AddressKind.values:
        errors.add(f"{prefix}kind", "invalid_choice", _("Choose home, postal or work."))
    values["kind"] = data.kind
    valid_from = data.valid_from or _today()
    if valid_from > _today():
        errors.add(f"{prefix}valid_from", "date.in_future", _("The date cannot be in the future."))
    values["valid_from"] = valid_from
    return values


def clean_contact(errors: FieldErrors, prefix: str, data: ContactData) -> dict[str, object]:
    value = (data.value or "").strip()
    if data.kind not in ContactKind.values:
        errors.add(f"{prefix}kind", "invalid_choice", _("Choose mobile phone, landline or email."))
    elif data.kind == ContactKind.EMAIL:
        if not _EMAIL.match(value) or len(value) > 200:
            errors.add(f"{prefix}value", "email.invalid", _("Enter a valid email address."))
        value = value.lower()
    else:
        value = re.sub(r"[\s\-().]", "", value)
        if not _PHONE.match(value):
            errors.add(
                f"{prefix}value",
                "phone.invalid",
                _("A phone number has 10 digits, or 10 to 15 with the country code."),
            )
    return {"kind": data.kind, "value": value, "is_preferred": bool(data.is_preferred)}


def clean_employer(errors: FieldErrors, data: EmployerData) -> dict[str, object]:
    values: dict[str, object] = {}
    try:
        values["rfc"] = identifiers.validate_rfc(data.rfc or "")
    except IdentifierInvalid as invalid:
        errors.add("rfc", invalid.code, invalid.message)
        values["rfc"] = data.rfc
    try:
        values["registration_number"] = identifiers.validate_employer_registration(
            data.registration_number or ""
        )
    except IdentifierInvalid as invalid:
        errors.add("registration_number", invalid.code, invalid.message)
        values["registration_number"] = data.registration_number
    legal_name = clean_name(data.legal_name or "")
    if not legal_name:
        errors.add("legal_name", "required", _("This field is required."))
    elif len(legal_name) > 250:
        errors.add("legal_name", "too_long", _("At most %(max)d characters.") % {"max": 250})
    values["legal_name"] = legal_name
    trade_name = clean_name(data.trade_name or "")
    if len(trade_name) > 250:
        errors.add("trade_name", "too_long", _("At most %(max)d characters.") % {"max": 250})
    values["trade_name"] = trade_name
    if data.sector not in Sector.values:
        errors.add("sector", "invalid_choice", _("Choose an economic sector."))
    values["sector"] = data.sector
    if data.status not in EmployerStatus.values:
        errors.add("status", "invalid_choice", _("Choose active, suspended or closed."))
    values["status"] = data.status
    address = clean_address(
        errors,
        "",
        AddressData(
            street=data.street,
            municipality=data.municipality,
            state=data.state,
            postal_code=data.postal_code,
        ),
    )
    for name in ("street", "municipality", "state", "postal_code"):
        values[name] = address[name]
    registered_on = data.registered_on or _today()
    if registered_on > _today():
        errors.add("registered_on", "date.in_future", _("The date cannot be in the future."))
    values["registered_on"] = registered_on
    return values


def check_salary(errors: FieldErrors, name: str, salary: Decimal | None) -> None:
    if salary is not None and (salary <= 0 or salary >= Decimal("1000000")):
        errors.add(
            name,
            "salary.out_of_range",
            _("The daily salary must be greater than 0 and less than 1,000,000."),
        )


def check_relation(errors: FieldErrors, relation: str) -> None:
    if relation not in Relation.values:
        errors.add("relation", "invalid_choice", _("Choose spouse, partner, child or parent."))
