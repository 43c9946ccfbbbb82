"""Identifier validation and CURP derivation.

CURP and RFC checks come from python-stdnum (format, embedded date, state, check digit). The NSS
(número de seguridad social, IMSS) is eleven digits whose last is a Luhn check digit. The CURP
derivation implements RENAPO's rules for positions 1–16 (the "CURP stem"), which the seeder uses
to produce valid CURPs and registration uses to check a CURP against the person's data.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from stdnum import luhn
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)
from stdnum.mx import curp as stdnum_curp
from stdnum.mx import rfc as stdnum_rfc

from pilar.core.regions import is_country_code
from pilar.core.text import fold

CURP = "CURP"
NSS = "NSS"
RFC = "RFC"
PASSPORT = "PASSPORT"
FOREIGN = "FOREIGN"

SCHEME_CHOICES = [
    (CURP, _("CURP")),
    (NSS, _("NSS (IMSS social security number)")),
    (RFC, _("RFC (federal taxpayer registry)")),
    (PASSPORT, _("Passport")),
    (FOREIGN, _("Foreign identifier")),
]
NATIONAL_SCHEMES = frozenset({CURP, NSS, RFC})
SCHEMES = frozenset(code for code, _label in SCHEME_CHOICES)


class IdentifierInvalid(Exception):
    """An identifier value that fails validation; ``code`` is stable, ``message`` translated."""

    def __init__(self, code: str, message: str | Promise) -> None:
        super().__init__(str(message))
        self.code = code
        self.message = message


_STDNUM_ERRORS: list[tuple[type[ValidationError], str]] = [
    (InvalidLength, "invalid_length"),
    (InvalidFormat, "invalid_format"),
    (InvalidChecksum, "invalid_check_digit"),
    (InvalidComponent, "invalid_component"),
]


def _from_stdnum(error: ValidationError, scheme: str) -> IdentifierInvalid:
    messages: dict[str, dict[str, Promise]] = {
        CURP: {
            "invalid_length": _("A CURP has exactly 18 characters."),
            "invalid_format": _(
                "A CURP is 4 letters, 6 digits (birth date), H or M, 5 letters, "
                "a letter or digit and a check digit."
            ),
            "invalid_check_digit": _("The CURP check digit (last character) is wrong."),
            "invalid_component": _(
                "The CURP contains an impossible birth date, sex or state code."
            ),
        },
        RFC: {
            "invalid_length": _("An RFC has 13 characters for a person or 12 for a company."),
            "invalid_format": _("The RFC format is not valid."),
            "invalid_check_digit": _("The RFC check digit (last character) is wrong."),
            "invalid_component": _("The RFC contains an impossible date or homoclave."),
        },
    }
    for error_type, code in _STDNUM_ERRORS:
        if isinstance(error, error_type):
            return IdentifierInvalid(f"{scheme.lower()}.{code}", messages[scheme][code])
    return IdentifierInvalid(f"{scheme.lower()}.invalid_format", messages[scheme]["invalid_format"])


def compact(value: str) -> str:
    return re.sub(r"[\s\-_.]", "", value).upper()


def validate_curp(value: str) -> str:
    try:
        return stdnum_curp.validate(compact(value), validate_check_digits=True)
    except ValidationError as error:
        raise _from_stdnum(error, CURP) from error


def validate_rfc(value: str, *, company: bool | None = None) -> str:
    number = compact(value)
    if company is True and len(number) != 12:
        raise IdentifierInvalid("rfc.invalid_length", _("A company RFC has 12 characters."))
    if company is False and len(number) != 13:
        raise IdentifierInvalid("rfc.invalid_length", _("A person's RFC has 13 characters."))
    try:
        return stdnum_rfc.validate(number, validate_check_digits=True)
    except ValidationError as error:
        raise _from_stdnum(error, RFC) from error


def validate_nss(value: str) -> str:
    number = compact(value)
    if not number.isdigit():
        raise IdentifierInvalid("nss.invalid_format", _("An NSS contains digits only."))
    if len(number) != 11:
        raise IdentifierInvalid("nss.invalid_length", _("An NSS has exactly 11 digits."))
    if not luhn.is_valid(number):
        raise IdentifierInvalid(
            "nss.invalid_check_digit", _("The NSS check digit (last digit) is wrong.")
        )
    return number


def nss_check_digit(first_ten_digits: str) -> str:
    return luhn.calc_check_digit(first_ten_digits)


def validate_employer_registration(value: str) -> str:
    """IMSS employer registration number (registro patronal): 11 characters, letter or digit
    then ten digits. Only the format is checked; the check-digit algorithm is not public."""
    number = compact(value)
    if len(number) != 11:
        raise IdentifierInvalid(
            "employer_registration.invalid_length",
            _("An employer registration number has exactly 11 characters."),
        )
    if not re.fullmatch(r"[A-Z0-9][0-9]{10}", number):
        raise IdentifierInvalid(
            "employer_registration.invalid_format",
            _("An employer registration number is a letter or digit followed by ten digits."),
        )
    return number


def validate_document_number(value: str) -> str:
    number = compact(value)
    if not 3 <= len(number) <= 30:
        raise IdentifierInvalid(
            "foreign.invalid_length", _("A document number has between 3 and 30 characters.")
        )
    if not re.fullmatch(r"[A-Z0-9]+", number):
        raise IdentifierInvalid(
            "foreign.invalid_format", _("A document number contains letters and digits only.")
        )
    return number


@dataclass(frozen=True)
class ValidIdentifier:
    scheme: str
    value: str
    issuing_country: str


def validate_identifier(scheme: str, value: str, issuing_country: str = "") -> ValidIdentifier:
    """Validate and normalise one identifier. National schemes are issued by Mexico; passports
    and foreign identifiers need the issuing country (ISO 3166 alpha-2)."""
    if scheme not in SCHEMES:
        raise IdentifierInvalid("identifier.unknown_scheme", _("Unknown identifier type."))
    if not value or not value.strip():
        raise IdentifierInvalid("identifier.required", _("The identifier value is required."))
    if scheme == CURP:
        return ValidIdentifier(CURP, validate_curp(value), "MX")
    if scheme == NSS:
        return ValidIdentifier(NSS, validate_nss(value), "MX")
    if scheme == RFC:
        return ValidIdentifier(RFC, validate_rfc(value, company=False), "MX")
    country = (issuing_country or "").strip().upper()
    if not is_country_code(country):
        raise IdentifierInvalid(
            "identifier.issuing_country_required",
            _("Give the issuing country as a two-letter ISO code, for example US."),
        )
    return ValidIdentifier(scheme, validate_document_number(value), country)


# --- CURP derivation (RENAPO, Instructivo normativo para la asignación de la CURP) ------------

_PARTICLES = frozenset("DA DAS DE DEL DER DI DIE DD EL LA LOS LAS LE LES MAC MC VAN VON Y".split())
_SKIPPED_GIVEN = frozenset({"MARIA", "MA", "JOSE", "J"})
_VOWELS = frozenset("AEIOU")
_BAD_WORDS = stdnum_curp._name_blacklist


def _significant(name: str, *, given: bool = False) -> str:
    """The word of a name that CURP uses: particles skipped; for given names, a leading MARIA or
    JOSE is skipped when another given name follows. Ñ becomes X, as RENAPO prescribes."""
    words = [w for w in fold(name.replace("Ñ", "X").replace("ñ", "x")).split(" ") if w]
    words = [w for w in words if w not in _PARTICLES] or words
    if given and len(words) > 1 and words[0] in _SKIPPED_GIVEN:
        words = words[1:]
    return words[0] if words else ""


def _first_internal(word: str, *, consonant: bool) -> str:
    for ch in word[1:]:
        if consonant and ch.isalpha() and ch not in _VOWELS:
            return ch
        if not consonant and ch in _VOWELS:
            return ch
    return "X"


def curp_stem(
    *,
    given_names: str,
    paternal_surname: str,
    maternal_surname: str,
    birth_date: datetime.date,
    sex: str,
    birth_state: str,
) -> str:
    """CURP positions 1–16 derived from the person's data (sex ``F``/``M``; state a CURP code).

    With one surname only, RENAPO puts it in the first position and X for the missing one."""
    paternal = _significant(paternal_surname)
    maternal = _significant(maternal_surname)
    if not paternal and maternal:
        paternal, maternal = maternal, ""
    given = _significant(given_names, given=True)
    letters = (
        (paternal[:1] or "X")
        + _first_internal(paternal, consonant=False)
        + (maternal[:1] or "X")
        + (given[:1] or "X")
    )
    if letters in _BAD_WORDS:
        letters = letters[0] + "X" + letters[2:]
    sex_letter = {"M": "H", "F": "M"}.get(sex, "X")
    consonants = (
        _first_internal(paternal, consonant=True)
        + (_first_internal(maternal, consonant=True) if maternal else "X")
        + _first_internal(given, consonant=True)
    )
    return f"{letters}{birth_date:%y%m%d}{sex_letter}{birth_state}{consonants}"


def curp_complete(stem: str, birth_date: datetime.date, homonymy: int = 0) -> str:
    """A full CURP from a stem: position 17 is a digit for births before 2000 and a letter from
    2000 on (``homonymy`` picks which), position 18 the check digit."""
    if birth_date.year < 2000:
        differentiator = "0123456789"[homonymy % 10]
    else:
        differentiator = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[homonymy % 26]
    body = stem + differentiator
    return body + stdnum_curp.calc_check_digit(body)


def curp_birth_date(curp: str) -> datetime.date:
    return stdnum_curp.get_birth_date(curp)


def curp_sex(curp: str) -> str:
    """``F`` or ``M`` as Pilar stores sex (the CURP writes M for women and H for men)."""
    return stdnum_curp.get_gender(curp)


def curp_state(curp: str) -> str:
    return curp[11:13]


def rfc_check_digit(first_twelve_or_eleven: str) -> str:
    return stdnum_rfc.calc_check_digit(first_twelve_or_eleven)
