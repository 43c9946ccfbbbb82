"""Feature columns: the contract of docs/linkage.md, nulls, dates, identifiers, the derived CURP
stem against python-stdnum and the seeder, and bulk = one record on generated data."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from fractions import Fraction
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.mx import curp as stdnum_curp

from pilar.core.identifiers import curp_complete, curp_stem
from pilar.linkage import features
from pilar.linkage.features import FEATURE_COLUMNS, person_features, record_features
from pilar.registry.seeding.employers import generate_employers
from pilar.registry.seeding.population import ChunkGenerator

DOCS_COLUMNS = (
    "unique_id given_std given_canon given_main given_phon paternal_std maternal_std "
    "married_surname paternal_phon maternal_phon surnames_sorted birth_date birth_year "
    "birth_date_swapped sex birth_state curp curp_stem derived_stem stem_or_curp nss"
).split()


def _record(**values: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "unique_id": 1,
        "given_names": "María Guadalupe",
        "paternal_surname": "López",
        "maternal_surname": "de la Cruz de García",
        "sex": "F",
        "birth_date": datetime.date(1980, 3, 5),
        "birth_state": "DF",
        "curp": None,
        "nss": None,
    }
    record.update(values)
    return record


def _bulk_row(record: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = person_features(pl.DataFrame([record])).row(0, named=True)
    return row


def test_columns_follow_the_contract_in_order() -> None:
    assert list(FEATURE_COLUMNS) == DOCS_COLUMNS
    assert features.FEATURE_VERSION == 1
    assert person_features(pl.DataFrame([_record()])).columns == DOCS_COLUMNS
    assert list(record_features(_record())) == DOCS_COLUMNS


def test_the_documented_example() -> None:
    row = record_features(_record())
    assert row["given_std"] == "MARIA GUADALUPE"
    assert row["given_canon"] == "MARIA GUADALUPE"
    assert row["given_main"] == "GUADALUPE"
    assert row["paternal_std"] == "LOPEZ"
    assert row["maternal_std"] == "CRUZ"
    assert row["married_surname"] == "GARCIA"
    assert row["surnames_sorted"] == "CRUZ LOPEZ"
    assert row["birth_date"] == "1980-03-05"
    assert row["birth_year"] == 1980
    assert row["birth_date_swapped"] == "1980-05-03"
    # The married name is not part of a CURP; de la Cruz gives C (particles skipped).
    assert row["derived_stem"] == curp_stem(
        given_names="María Guadalupe",
        paternal_surname="López",
        maternal_surname="de la Cruz",
        birth_date=datetime.date(1980, 3, 5),
        sex="F",
        birth_state="DF",
    )
    assert row["stem_or_curp"] == row["derived_stem"]
    assert row == _bulk_row(_record())


def test_nicknames_reach_the_canonical_name_and_phonetic_key() -> None:
    pepe = record_features(_record(given_names="Pepe", sex="M"))
    jose = record_features(_record(given_names="José", sex="M"))
    assert pepe["given_std"] == "PEPE"
    assert pepe["given_canon"] == pepe["given_main"] == "JOSE"
    assert pepe["given_phon"] == jose["given_phon"]


def test_absent_values_are_null_never_empty() -> None:
    record = {
        "unique_id": "a-1",
        "given_names": "",
        "paternal_surname": None,
        "maternal_surname": "  ",
        "sex": "",
        "birth_date": None,
        "birth_state": "",
        "curp": "",
        "nss": "",
    }
    row = record_features(record)
    assert row["unique_id"] == "a-1"
    for column in DOCS_COLUMNS[1:]:
        assert row[column] is None, column
    assert _bulk_row(record) == row


def test_missing_optional_input_columns_are_absent_values() -> None:
    frame = pl.DataFrame(
        {
            "unique_id": [7],
            "given_names": ["Ana"],
            "paternal_surname": ["Ruiz"],
            "maternal_surname": [None],
            "sex": ["F"],
            "birth_date": ["1990-01-31"],
        }
    )
    row = person_features(frame).row(0, named=True)
    assert (row["curp"], row["nss"], row["birth_state"]) == (None, None, None)
    # The derived stem uses NE (born abroad) when the state is unknown.
    assert row["derived_stem"][11:13] == "NE"
    assert row == record_features(frame.row(0, named=True))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime.date(1975, 11, 2), "1975-11-02"),
        (datetime.datetime(1975, 11, 2, 10, 30), "1975-11-02"),
        ("1975-11-02", "1975-11-02"),
        (" 1975-11-02 ", "1975-11-02"),
        ("1975-02-30", None),
        ("02/11/1975", None),
        ("1975-1-2", None),
        ("0000-01-01", None),
        ("", None),
    ],
)
def test_birth_date_from_date_or_iso_string(value: Any, expected: str | None) -> None:
    record = _record(birth_date=value)
    assert record_features(record)["birth_date"] == expected
    assert _bulk_row(record)["birth_date"] == expected


@pytest.mark.parametrize(
    ("birth", "swapped"),
    [
        (datetime.date(1980, 3, 5), "1980-05-03"),
        (datetime.date(1980, 12, 1), "1980-01-12"),
        (datetime.date(1980, 3, 3), None),
        (datetime.date(1980, 3, 13), None),
    ],
)
def test_day_month_swap_only_when_valid_and_different(
    birth: datetime.date, swapped: str | None
) -> None:
    assert record_features(_record(birth_date=birth))["birth_date_swapped"] == swapped
    assert _bulk_row(_record(birth_date=birth))["birth_date_swapped"] == swapped


def _valid_curp() -> str:
    stem = curp_stem(
        given_names="Juan",
        paternal_surname="García",
        maternal_surname="López",
        birth_date=datetime.date(1985, 3, 12),
        sex="M",
        birth_state="DF",
    )
    return curp_complete(stem, datetime.date(1985, 3, 12))


def test_valid_curp_is_kept_upper_case_and_compact() -> None:
    curp = _valid_curp()
    written = curp[:4].lower() + " " + curp[4:10] + "-" + curp[10:]
    row = record_features(_record(curp=written))
    assert row["curp"] == curp
    assert row["curp_stem"] == curp[:16]
    assert row["stem_or_curp"] == curp[:16]
    assert _bulk_row(_record(curp=written)) == row


@pytest.mark.parametrize(
    "mutate",
    [
        lambda curp: curp[:17] + str((int(curp[17]) + 1) % 10),  # check digit
        lambda curp: curp[:16],  # too short
        lambda curp: curp[:4] + "851312" + curp[10:],  # month 13
        lambda curp: curp[:10] + "X" + curp[11:],  # sex
        lambda curp: curp[:11] + "ZZ" + curp[13:],  # state
        lambda curp: "CACA" + curp[4:],  # blacklisted word
        lambda curp: curp.replace("A", "Á"),
    ],
)
def test_invalid_curp_is_null(mutate: Any) -> None:
    bad = mutate(_valid_curp())
    assert not stdnum_curp.is_valid(bad)
    row = record_features(_record(curp=bad))
    assert (row["curp"], row["curp_stem"]) == (None, None)
    assert row["stem_or_curp"] == row["derived_stem"]
    assert _bulk_row(_record(curp=bad)) == row


@pytest.mark.parametrize(
    ("nss", "expected"),
    [
        ("12345678903", "12345678903"),
        ("1234 5678 903", "12345678903"),
        ("12345678904", None),  # Luhn check digit wrong
        ("1234567890", None),
        ("1234567890A", None),
        ("", None),
    ],
)
def test_nss_is_eleven_digits_with_check_digit(nss: str, expected: str | None) -> None:
    assert record_features(_record(nss=nss))["nss"] == expected
    assert _bulk_row(_record(nss=nss))["nss"] == expected


def test_sex_and_state_codes() -> None:
    row = record_features(_record(sex=" f ", birth_state="jc"))
    assert (row["sex"], row["birth_state"]) == ("F", "JC")
    unknown = record_features(_record(sex="H", birth_state="Jalisco"))
    assert (unknown["sex"], unknown["birth_state"]) == (None, None)
    assert unknown["derived_stem"][10:13] == "XNE"


# --- derived stem against python-stdnum and the seeder -----------------------------------------

_NAMES = st.sampled_from(
    [
        "María Guadalupe",
        "José Luis",
        "Ñoño",
        "Ma. del Carmen",
        "Juan",
        "Íñigo",
        "Pepe",
        "J. Jesús",
        "Ana",
        "Ximena",
        "",
    ]
)
_SURNAMES = st.sampled_from(
    [
        "Hernández",
        "de la Cruz",
        "Núñez",
        "Peña",
        "López de García",
        "del Río",
        "Ochoa",
        "Ávila",
        "Montes de Oca",
        "Y",
        "Cacas",
        "Uribe",
        "",
    ]
)
_DATES = st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2099, 12, 31))
_STATES = st.sampled_from(sorted(stdnum_curp._valid_states))


@settings(max_examples=400, deadline=None)
@given(
    given_names=_NAMES | st.text(max_size=12),
    paternal=_SURNAMES | st.text(max_size=12),
    maternal=_SURNAMES,
    birth=_DATES,
    sex=st.sampled_from(["F", "M"]),
    state=_STATES,
    homonymy=st.integers(min_value=0, max_value=30),
)
def test_a_curp_built_from_the_derived_stem_validates_with_stdnum(
    given_names: str,
    paternal: str,
    maternal: str,
    birth: datetime.date,
    sex: str,
    state: str,
    homonymy: int,
) -> None:
    row = record_features(
        _record(
            given_names=given_names,
            paternal_surname=paternal,
            maternal_surname=maternal,
            birth_date=birth,
            sex=sex,
            birth_state=state,
        )
    )
    stem = row["derived_stem"]
    full = curp_complete(stem, birth, homonymy)
    assert stdnum_curp.validate(full) == full
    assert stdnum_curp.get_birth_date(full) == birth
    assert stdnum_curp.get_gender(full) == sex
    # And the bulk path reads it back as a valid CURP with the same stem.
    with_curp = _bulk_row(_record(curp=full, birth_date=birth, sex=sex, birth_state=state))
    assert with_curp["curp"] == full
    assert with_curp["curp_stem"] == stem


def test_derived_stem_equals_the_seeders_curp_stem() -> None:
    as_of = datetime.date(2026, 1, 15)
    draft = ChunkGenerator(
        seed=11,
        as_of=as_of,
        total_persons=3000,
        duplicates_share=Fraction(1, 10),
        employers=generate_employers(seed=11, count=10, as_of=as_of),
    ).generate(0)
    curps = {person: value for person, scheme, value in draft.identifiers if scheme == "CURP"}
    records = [
        {
            "unique_id": local,
            "given_names": person[0],
            "paternal_surname": person[1],
            "maternal_surname": person[2],
            "sex": person[3],
            "birth_date": datetime.date.fromordinal(person[4]),
            "birth_state": person[5],
            "curp": curps.get(local),
            "nss": None,
        }
        for local, person in enumerate(draft.persons)
    ]
    frame = person_features(pl.DataFrame(records))
    with_curp = frame.filter(pl.col("curp").is_not_null())
    # Every seeded CURP is valid, and the stem derived from the person's data is its stem.
    assert with_curp.height == len(curps) > 2500
    mismatched = with_curp.filter(pl.col("derived_stem") != pl.col("curp_stem"))
    assert mismatched.height == 0, mismatched.head(5)
    # The one-record path agrees on a sample.
    for index, record in enumerate(records[:300]):
        assert record_features(record) == frame.row(index, named=True)


# --- bulk and one record are the same ----------------------------------------------------------

_VALID_CURPS = st.builds(
    lambda stem_parts, birth, homonymy: curp_complete(
        curp_stem(
            given_names=stem_parts[0],
            paternal_surname=stem_parts[1],
            maternal_surname=stem_parts[2],
            birth_date=birth,
            sex=stem_parts[3],
            birth_state="JC",
        ),
        birth,
        homonymy,
    ),
    st.tuples(_NAMES, _SURNAMES, _SURNAMES, st.sampled_from(["F", "M"])),
    _DATES,
    st.integers(min_value=0, max_value=30),
)
_CURPS = (
    st.none()
    | _VALID_CURPS
    | _VALID_CURPS.map(lambda curp: curp.lower())
    | _VALID_CURPS.map(lambda curp: curp[:17] + "0")
    | st.text(alphabet="ABCDEFHMX0123456789 -", max_size=20)
)
_NSSES = (
    st.none()
    | st.from_regex(r"[0-9]{10}", fullmatch=True).map(lambda d: d + luhn.calc_check_digit(d))
    | st.text(alphabet="0123456789 -A", max_size=13)
)
_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "M", "Zs", "P", "Nd"]), max_size=16
)
_RECORDS = st.fixed_dictionaries(
    {
        "given_names": st.none() | _NAMES | _TEXT,
        "paternal_surname": st.none() | _SURNAMES | _TEXT,
        "maternal_surname": st.none() | _SURNAMES | _TEXT,
        "sex": st.sampled_from(["F", "M", "X", "", "f", "H", None]),
        "birth_state": st.none() | _STATES | st.sampled_from(["", "jc", "XYZ", " DF "]),
        "curp": _CURPS,
        "nss": _NSSES,
    }
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(_RECORDS, min_size=1, max_size=60),
    dates=st.lists(
        st.none()
        | st.dates(min_value=datetime.date(1000, 1, 1), max_value=datetime.date(9999, 12, 31)),
        min_size=60,
        max_size=60,
    ),
    as_text=st.booleans(),
)
def test_bulk_and_one_record_give_identical_features(
    records: list[dict[str, Any]], dates: list[datetime.date | None], as_text: bool
) -> None:
    rows = [
        {
            "unique_id": index,
            **record,
            "birth_date": birth.isoformat() if as_text and birth else birth,
        }
        for index, (record, birth) in enumerate(zip(records, dates, strict=False))
    ]
    date_type = pl.String if as_text else pl.Date
    bulk = person_features(pl.DataFrame(rows, schema_overrides={"birth_date": date_type}))
    assert bulk.height == len(rows)
    for row in rows:
        assert bulk.row(row["unique_id"], named=True) == record_features(row)


@settings(max_examples=30, deadline=None)
@given(text=st.lists(st.sampled_from(["1980-02-29", "1981-02-29", "x", "", " 2001-12-01"])))
def test_bulk_and_one_record_agree_on_date_strings(text: list[str]) -> None:
    rows = [_record(unique_id=index, birth_date=value) for index, value in enumerate(text)]
    if not rows:
        return
    bulk = person_features(pl.DataFrame(rows))
    for row in rows:
        assert bulk.row(row["unique_id"], named=True) == record_features(row)


def test_empty_frame_gives_empty_features() -> None:
    empty = pl.DataFrame(
        schema={
            "unique_id": pl.Int64,
            "given_names": pl.String,
            "paternal_surname": pl.String,
            "maternal_surname": pl.String,
            "sex": pl.String,
            "birth_date": pl.Date,
            "birth_state": pl.String,
            "curp": pl.String,
            "nss": pl.String,
        }
    )
    result = person_features(empty)
    assert result.height == 0
    assert result.columns == DOCS_COLUMNS


def test_bulk_keeps_the_input_order_with_repeated_names() -> None:
    rows = [
        _record(unique_id=index, given_names=name)
        for index, name in enumerate(["Ana", "Pepe", "Ana", "Lupita", "Pepe", "Ana"] * 50)
    ]
    result = person_features(pl.DataFrame(rows))
    assert result["unique_id"].to_list() == list(range(300))
    assert result["given_canon"].to_list()[:4] == ["ANA", "JOSE", "ANA", "GUADALUPE"]


def test_runs_without_django_settings() -> None:
    """The bench imports these modules on Spark and FEBRL with no Django project configured."""
    script = (
        "import datetime, polars as pl\n"
        "from pilar.linkage import features, lists, names\n"
        "row = features.record_features({'given_names': 'Pepe', 'paternal_surname': 'Ruiz',"
        " 'sex': 'M', 'birth_date': datetime.date(1990, 1, 2), 'curp': 'bad', 'nss': '1'})\n"
        "assert row['given_canon'] == 'JOSE' and row['curp'] is None, row\n"
        "features.person_features(pl.DataFrame([{'unique_id': 1, 'given_names': 'Ana'}]))\n"
        "lists.read_list(b'nombre,apellido_paterno,fecha_nacimiento\\nAna,Ruiz,1990-01-02\\n')\n"
        "from django.conf import settings\n"
        "assert not settings.configured\n"
        "print('ok')\n"
    )
    environment = {
        key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"
    }
    # The command is this interpreter and a literal script: nothing untrusted.
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
