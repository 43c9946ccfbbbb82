"""Identifier validation and CURP derivation, checked against python-stdnum."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.mx import curp as stdnum_curp

from pilar.core import identifiers
from pilar.core.identifiers import IdentifierInvalid, curp_complete, curp_stem
from pilar.core.regions import STATES
from pilar.core.text import fold, normalized_full_name, search_terms


@pytest.mark.parametrize(
    ("given_names", "paternal", "maternal", "sex", "born", "state", "stem"),
    [
        # RENAPO's own examples and the rules they illustrate.
        ("Juan", "Pérez", "López", "M", datetime.date(1985, 7, 12), "DF", "PELJ850712HDFRPN"),
        # MARÍA is skipped when another given name follows; particles (DE LA) are skipped.
        (
            "María Fernanda",
            "de la Garza",
            "Ruiz",
            "F",
            datetime.date(2001, 2, 3),
            "NL",
            "GARF010203MNLRZR",
        ),
        # Ñ is written X; no maternal surname gives X.
        ("Iñaki", "Ibáñez", "", "M", datetime.date(1990, 1, 1), "JC", "IAXI900101HJCBXX"),
    ],
)
def test_curp_stem(
    given_names: str,
    paternal: str,
    maternal: str,
    sex: str,
    born: datetime.date,
    state: str,
    stem: str,
) -> None:
    assert (
        curp_stem(
            given_names=given_names,
            paternal_surname=paternal,
            maternal_surname=maternal,
            birth_date=born,
            sex=sex,
            birth_state=state,
        )
        == stem
    )


def test_inconvenient_words_are_masked() -> None:
    # BUEY would be offensive: RENAPO replaces the second letter with X.
    stem = curp_stem(
        given_names="Yolanda",
        paternal_surname="Bueno",
        maternal_surname="Escobar",
        birth_date=datetime.date(1970, 1, 1),
        sex="F",
        birth_state="PL",
    )
    assert stem.startswith("BXEY")


_names = st.text(alphabet="ABCDEFGHIJKLMNÑOPQRSTUVWXYZÁÉÍÓÚ ", min_size=1, max_size=20).filter(
    lambda s: fold(s).strip() != ""
)


@settings(max_examples=300, deadline=None)
@given(
    given_names=_names,
    paternal=_names,
    maternal=st.one_of(st.just(""), _names),
    born=st.dates(min_value=datetime.date(1901, 1, 1), max_value=datetime.date(2025, 12, 31)),
    sex=st.sampled_from(["F", "M"]),
    state=st.sampled_from(sorted(STATES)),
    homonymy=st.integers(min_value=0, max_value=30),
)
def test_every_derived_curp_is_valid_for_stdnum(
    given_names: str,
    paternal: str,
    maternal: str,
    born: datetime.date,
    sex: str,
    state: str,
    homonymy: int,
) -> None:
    stem = curp_stem(
        given_names=given_names,
        paternal_surname=paternal,
        maternal_surname=maternal,
        birth_date=born,
        sex=sex,
        birth_state=state,
    )
    curp = curp_complete(stem, born, homonymy)
    assert stdnum_curp.is_valid(curp)
    assert identifiers.curp_birth_date(curp) == born
    assert identifiers.curp_sex(curp) == sex
    assert identifiers.curp_state(curp) == state


@pytest.mark.parametrize(
    ("scheme", "value", "code"),
    [
        ("CURP", "BOXW310820HNERXN08", "curp.invalid_check_digit"),
        ("CURP", "BOXW311320HNERXN09", "curp.invalid_component"),
        ("CURP", "BOXW31", "curp.invalid_length"),
        ("NSS", "1234567890", "nss.invalid_length"),
        ("NSS", "1234567890A", "nss.invalid_format"),
        ("NSS", "12345678904", "nss.invalid_check_digit"),
        ("RFC", "GODE561231GR9", "rfc.invalid_check_digit"),
        ("PASSPORT", "X1234567", "identifier.issuing_country_required"),
        ("SSN", "123", "identifier.unknown_scheme"),
        ("CURP", "  ", "identifier.required"),
    ],
)
def test_invalid_identifiers(scheme: str, value: str, code: str) -> None:
    with pytest.raises(IdentifierInvalid) as caught:
        identifiers.validate_identifier(scheme, value)
    assert caught.value.code == code


def test_valid_identifiers_are_normalised() -> None:
    assert (
        identifiers.validate_identifier("CURP", " boxw310820hnerxn09 ").value
        == "BOXW310820HNERXN09"
    )
    assert identifiers.validate_identifier("NSS", "1234-5678-903").value == "12345678903"
    assert identifiers.validate_identifier("RFC", "GODE561231GR8").value == "GODE561231GR8"
    assert identifiers.validate_employer_registration("y5412345108") == "Y5412345108"


def test_name_folding() -> None:
    assert fold("  Núñez-Peña ") == "NUNEZ PENA"
    assert normalized_full_name("José Luis", "Núñez", "") == "NUNEZ JOSE LUIS"
    assert search_terms("garcía  mar") == ["GARCIA", "MAR"]
