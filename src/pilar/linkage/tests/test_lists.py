"""Reading external lists: encodings, separators, XLSX, headers in Spanish and English, whole-file
refusals, row errors and warnings, and the translated messages."""

from __future__ import annotations

import datetime
import io
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from django.utils import translation
from django.utils.translation import gettext

from pilar.core.identifiers import curp_complete, curp_stem
from pilar.linkage import lists
from pilar.linkage.features import person_features
from pilar.linkage.lists import ERROR, WARNING, read_list

TODAY = datetime.date(2026, 6, 1)
HEADER_ES = "folio,nombre,apellido_paterno,apellido_materno,fecha_nacimiento,sexo,curp,nss"


def _curp() -> str:
    birth = datetime.date(1980, 3, 5)
    stem = curp_stem(
        given_names="María",
        paternal_surname="López",
        maternal_surname="García",
        birth_date=birth,
        sex="F",
        birth_state="JC",
    )
    return curp_complete(stem, birth)


def _read(
    text: str, encoding: str = "utf-8"
) -> tuple[pl.DataFrame, list[lists.ListError], list[lists.ListError]]:
    return read_list(text.encode(encoding), today=TODAY)


def _codes(errors: list[lists.ListError]) -> list[tuple[int, str, str]]:
    return [(error.row, error.column, error.code) for error in errors]


def test_spanish_csv_gives_the_feature_input_shape() -> None:
    curp = _curp()
    frame, row_errors, file_errors = _read(
        f"{HEADER_ES}\nA-1,María,López,García,05/03/1980,M,{curp.lower()},12345678903\n"
        "A-2,José Luis,Pérez,,1975-11-30,H,,\n"
    )
    assert file_errors == []
    assert row_errors == []
    assert frame.columns == list(lists.OUTPUT_COLUMNS)
    assert frame.schema["birth_date"] == pl.Date
    first, second = frame.to_dicts()
    assert first == {
        "unique_id": 2,
        "given_names": "María",
        "paternal_surname": "López",
        "maternal_surname": "García",
        "sex": "F",
        "birth_date": datetime.date(1980, 3, 5),
        "birth_state": None,
        "curp": curp,
        "nss": "12345678903",
        "external_key": "A-1",
    }
    assert second["unique_id"] == 3
    assert second["sex"] == "M"
    assert second["maternal_surname"] is None
    assert second["curp"] is None
    # The frame feeds the features directly.
    computed = person_features(frame)
    assert computed["curp"].to_list() == [curp, None]
    assert computed["given_main"].to_list() == ["MARIA", "LUIS"]


@pytest.mark.parametrize(
    "header",
    [
        "id;given_names;paternal_surname;maternal_surname;birth_date;sex",
        "Folio;Nombre(s);Primer apellido;Segundo apellido;Fecha de nacimiento;Sexo",
        "FOLIO;NOMBRES;APELLIDO PATERNO;APELLIDO MATERNO;FECHA_NACIMIENTO;GÉNERO",
    ],
)
def test_headers_in_spanish_or_english_any_case_and_accents(header: str) -> None:
    frame, row_errors, file_errors = _read(f"{header}\n7;Ana;Ruiz;Soto;1990-01-02;F\n")
    assert (file_errors, row_errors) == ([], [])
    assert frame.row(0, named=True)["external_key"] == "7"
    assert frame.row(0, named=True)["paternal_surname"] == "Ruiz"
    assert frame.row(0, named=True)["sex"] == "F"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("nombre,apellido_paterno,fecha_nacimiento\nJosé,Núñez,1980-01-01\n".encode(), "utf-8"),
        (
            b"\xef\xbb\xbf"
            + "nombre,apellido_paterno,fecha_nacimiento\nJosé,Núñez,1980-01-01\n".encode(),
            "utf-8",
        ),
        (
            "nombre,apellido_paterno,fecha_nacimiento\nJosé,Núñez,1980-01-01\n".encode("cp1252"),
            "cp1252",
        ),
        (
            "nombre\tapellido_paterno\tfecha_nacimiento\r\nJosé\tNúñez\t1980-01-01\r\n".encode(
                "utf-16"
            ),
            "utf-16",
        ),
    ],
)
def test_encodings_are_detected(data: bytes, encoding: str) -> None:
    frame, row_errors, file_errors = read_list(data, today=TODAY)
    assert (file_errors, row_errors) == ([], [])
    assert frame["given_names"].to_list() == ["José"]
    assert frame["paternal_surname"].to_list() == ["Núñez"]


def test_undecodable_bytes_are_refused_with_line_and_byte() -> None:
    data = (
        b"nombre,apellido_paterno,fecha_nacimiento\nAna,Ruiz,1980-01-01\nJos\x81,Ruiz,1980-01-01\n"
    )
    frame, row_errors, file_errors = read_list(data, today=TODAY)
    assert frame.height == 0
    assert row_errors == []
    assert [(e.code, e.params) for e in file_errors] == [
        ("undecodable", {"line": 3, "byte": "0x81"})
    ]


def test_mixed_encodings_are_refused() -> None:
    data = (
        "nombre,apellido_paterno,fecha_nacimiento\nJosé,Ruiz,1980-01-01\n".encode()
        + "Inés,Ruiz,1980-01-01\n".encode("cp1252")
    )
    frame, _rows, file_errors = read_list(data, today=TODAY)
    assert frame.height == 0
    assert [(e.code, e.params) for e in file_errors] == [("mixed_encoding", {"line": 3})]


def _workbook(rows: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_xlsx_with_date_cells_and_numeric_nss() -> None:
    data = _workbook(
        [
            [
                "Folio",
                "Nombre",
                "Apellido paterno",
                "Apellido materno",
                "Fecha de nacimiento",
                "NSS",
            ],
            [101, "Ana", "Ruiz", None, datetime.datetime(1990, 1, 2), 1234567897],
            [None, None, None, None, None, None],
            [102.0, "Luis", "Soto", "Paz", "28/02/1985", None],
        ]
    )
    frame, row_errors, file_errors = read_list(data, today=TODAY)
    assert (file_errors, row_errors) == ([], [])
    assert frame["unique_id"].to_list() == [2, 4]
    assert frame["external_key"].to_list() == ["101", "102"]
    assert frame["birth_date"].to_list() == [datetime.date(1990, 1, 2), datetime.date(1985, 2, 28)]
    # The spreadsheet dropped the leading zero of the NSS; it is restored and validated.
    assert frame["nss"].to_list() == ["01234567897", None]


def test_xlsx_that_expands_too_much_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\x00" * 200_000)
    data = buffer.getvalue()
    assert len(data) < 5_000
    frame, _rows, file_errors = read_list(data, today=TODAY, max_bytes=10_000)
    assert frame.height == 0
    assert [error.code for error in file_errors] == ["xlsx_too_large"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"  \r\n\n ", "empty"),
        (b"\xef\xbb\xbf\n", "empty"),
        (b"nombre,apellido_paterno,fecha_nacimiento\n", "no_rows"),
        (b"nombre,apellido_paterno,fecha_nacimiento\n,,\n\n", "no_rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not_text"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "xls_unsupported"),
        (b"PK\x03\x04 not really a zip", "not_xlsx"),
        (b"nombre,apellido_materno,sexo\nAna,Ruiz,M\n", "missing_columns"),
        (
            b"nombre,nombres,apellido_paterno,fecha_nacimiento\nAna,Ana,Ruiz,1980-01-01\n",
            "duplicate_columns",
        ),
        (
            b"curp,CURP,nombre,apellido_paterno,fecha_nacimiento\n,,Ana,Ruiz,1980-01-01\n",
            "duplicate_columns",
        ),
    ],
)
def test_whole_file_errors_yield_no_rows(data: bytes, code: str) -> None:
    frame, row_errors, file_errors = read_list(data, today=TODAY)
    assert [error.code for error in file_errors] == [code]
    assert frame.height == 0
    assert frame.columns == list(lists.OUTPUT_COLUMNS)
    assert row_errors == []


def test_missing_columns_are_named() -> None:
    _frame, _rows, file_errors = _read("nombre,apellido_materno\nAna,Ruiz\n")
    assert file_errors[0].params == {"columns": "paternal_surname, birth_date"}
    _frame, _rows, file_errors = _read("nombre,nombres,apellido_paterno,fecha_nacimiento\n")
    assert file_errors[0].params == {"columns": "nombres"}


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hello")
    _frame, _rows, file_errors = read_list(buffer.getvalue(), today=TODAY)
    assert [error.code for error in file_errors] == ["not_xlsx"]


def test_over_fifty_megabytes_is_refused() -> None:
    header = b"nombre,apellido_paterno,fecha_nacimiento\n"
    data = header + b"Ana,Ruiz,1980-01-01\n" * (lists.MAX_BYTES // 20 + 1)
    assert len(data) > 50 * 1024 * 1024
    frame, _rows, file_errors = read_list(data, today=TODAY)
    assert frame.height == 0
    assert [(e.code, e.params["limit_mb"]) for e in file_errors] == [("too_large", "50")]


def test_row_errors_leave_the_row_out_and_warnings_keep_it() -> None:
    frame, row_errors, file_errors = _read(
        "folio,nombre,apellido_paterno,apellido_materno,fecha_nacimiento,sexo,curp,nss,"
        "entidad_nacimiento\n"
        "1,Ana,Ruiz,,31/02/1980,M,,,\n"  # impossible date
        "2,,Ruiz,Soto,1980-01-01,M,,,\n"  # no given names
        "3,Ana,,,1980-01-01,M,,,\n"  # no surname at all
        "4,Ana,Ruiz,,2030-01-01,M,,,\n"  # future
        "5,Ana,Ruiz,,1980-01-01,Q,,,\n"  # bad sex
        "6,Ana,Ruiz,,1980-13-01,M,,,\n"  # impossible month
        "7,Ana,Ruiz,,ayer,M,,,\n"  # not a date
        "8,Ana,Ruiz,,1980-01-01,M,ABCD,123,Narnia\n"  # warnings only
        "9,Ana,,Soto,,H,,,Jalisco\n"  # maternal only, no birth date: warning
        "10,Ana,Ruiz,,1980-01-01,M,,,,extra\n"  # one cell too many
        "11,Ana,Ruiz\n"  # short line: the missing cells are empty
    )
    assert file_errors == []
    assert _codes([e for e in row_errors if e.severity == ERROR]) == [
        (2, "birth_date", "birth_date_impossible"),
        (3, "given_names", "given_names_missing"),
        (4, "paternal_surname", "surnames_missing"),
        (5, "birth_date", "birth_date_future"),
        (6, "sex", "sex_invalid"),
        (7, "birth_date", "birth_date_impossible"),
        (8, "birth_date", "birth_date_format"),
        (11, "", "wrong_cell_count"),
    ]
    assert _codes([e for e in row_errors if e.severity == WARNING]) == [
        (9, "curp", "curp_invalid"),
        (9, "nss", "nss_invalid"),
        (9, "birth_state", "birth_state_invalid"),
        (10, "birth_date", "birth_date_missing"),
        (12, "birth_date", "birth_date_missing"),
    ]
    assert frame["unique_id"].to_list() == [9, 10, 12]
    kept = frame.to_dicts()
    assert (kept[0]["curp"], kept[0]["nss"], kept[0]["birth_state"]) == (None, None, None)
    assert kept[1]["birth_state"] == "JC"
    assert kept[1]["maternal_surname"] == "Soto"
    assert kept[1]["birth_date"] is None
    by_row = {error.row: error for error in row_errors}
    assert by_row[2].params == {"value": "31/02/1980"}
    assert by_row[11].params == {"found": 10, "expected": 9}


@pytest.mark.parametrize(
    ("header", "values", "expected"),
    [
        ("sexo", ["H", "M"], ["M", "F"]),
        ("sexo", ["M", "M"], ["F", "F"]),
        ("sex", ["M", "M"], ["M", "M"]),
        ("sex", ["F", "M"], ["F", "M"]),
        ("sexo", ["F", "M"], ["F", "M"]),
        ("sex", ["H", "M"], ["M", "F"]),
        ("sexo", ["Hombre", "mujer"], ["M", "F"]),
        ("gender", ["male", "Female"], ["M", "F"]),
        ("sexo", ["x", "Masculino"], ["X", "M"]),
    ],
)
def test_sex_convention_is_decided_per_column(
    header: str, values: list[str], expected: list[str]
) -> None:
    lines = "".join(f"Ana,Ruiz,1980-01-01,{value}\n" for value in values)
    frame, row_errors, _file = _read(f"nombre,apellido_paterno,fecha_nacimiento,{header}\n{lines}")
    assert row_errors == []
    assert frame["sex"].to_list() == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1980-02-29", datetime.date(1980, 2, 29)),
        ("29/02/1980", datetime.date(1980, 2, 29)),
        ("1/2/1980", datetime.date(1980, 2, 1)),
        ("01-02-1980", datetime.date(1980, 2, 1)),
        ("1980-02-01 00:00:00", datetime.date(1980, 2, 1)),
    ],
)
def test_dates_iso_or_day_first(text: str, expected: datetime.date) -> None:
    frame, row_errors, _file = _read(f"nombre,apellido_paterno,fecha_nacimiento\nAna,Ruiz,{text}\n")
    assert row_errors == []
    assert frame["birth_date"].to_list() == [expected]


def test_quoted_cells_and_row_numbers_across_multiline_cells() -> None:
    frame, row_errors, _file = _read(
        'nombre,apellido_paterno,fecha_nacimiento\n"Ana, María","de la\nCruz",1980-01-01\n'
        ",,\nLuis,Paz,1980-13-01\n"
    )
    assert frame["given_names"].to_list() == ["Ana, María"]
    assert frame["paternal_surname"].to_list() == ["de la\nCruz"]
    # The blank line counts; the bad line is the spreadsheet's row 5.
    assert _codes(row_errors) == [(5, "birth_date", "birth_date_impossible")]


def test_reads_a_path(tmp_path: Path) -> None:
    path = tmp_path / "lista.csv"
    path.write_bytes(b"nombre,apellido_paterno,fecha_nacimiento\nAna,Ruiz,1980-01-01\n")
    frame, _rows, file_errors = read_list(path, today=TODAY)
    assert file_errors == []
    assert frame.height == 1


def test_every_message_is_translated_and_formats_with_its_params() -> None:
    params = {
        "size_mb": "51",
        "limit_mb": "50",
        "line": 3,
        "byte": "0x81",
        "columns": "birth_date",
        "found": 4,
        "expected": 3,
        "value": "x",
    }
    with translation.override("es"):
        for code, english in lists.MESSAGES.items():
            spanish = gettext(english)
            assert spanish != english, code
            assert (spanish % params) != (english % params)
    error = lists.ListError(3, "birth_date", "birth_date_future", {"value": "2030-01-01"})
    assert error.message == "The birth date 2030-01-01 is in the future."
