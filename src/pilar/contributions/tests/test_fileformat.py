"""Reading payroll declaration files into strings, parsing their values, writing exports and
templates. Pure: no database."""

from __future__ import annotations

import datetime
import io
import zipfile
from collections.abc import Sequence
from decimal import Decimal

import openpyxl
import polars as pl
import pytest
from django.utils import translation
from pytest_django.fixtures import Settings

from pilar.contributions.fileformat import (
    CANONICAL,
    COLUMNS,
    ROW_ERROR_MESSAGES,
    FileRejected,
    ParsedFile,
    RowError,
    cell_text,
    csv_bytes,
    escape_cell,
    frame_from_records,
    header_key,
    parse_date,
    parse_int,
    parse_money,
    read_declaration,
    template_csv,
    template_xlsx,
    xlsx_bytes,
)

HEADER = "curp,apellido_paterno,apellido_materno,nombre,dias,sbc"
LINE = "GALJ850312HDFRPN03,García,López,Juan Carlos,30,315.04"


def csv_text(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def rejected(data: bytes, **kwargs: str) -> FileRejected:
    with pytest.raises(FileRejected) as caught:
        read_declaration(data, **kwargs)
    return caught.value


def xlsx_file(rows: Sequence[Sequence[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- Columns ---------------------------------------------------------------------------------


def test_canonical_columns_in_order() -> None:
    assert CANONICAL == (
        "worker_id",
        "paternal_surname",
        "maternal_surname",
        "given_names",
        "days",
        "daily_salary",
        "absence_days",
        "incapacity_days",
        "movement",
        "movement_date",
    )
    assert [column.name for column in COLUMNS if column.required] == list(CANONICAL[:6])


def test_every_template_header_is_an_accepted_header() -> None:
    for column in COLUMNS:
        for header in (column.spanish_header, column.english_header, *column.aliases):
            parsed = read_declaration(
                csv_text(
                    ",".join(
                        header if other is column else other.name
                        for other in COLUMNS
                        if other.required or other is column
                    ),
                    ",".join("x" for other in COLUMNS if other.required or other is column),
                ).encode()
            )
            assert parsed.rows == 1, header


def test_header_key_ignores_case_accents_spaces_underscores_and_hyphens() -> None:
    assert header_key(" Días-Trabajados ") == header_key("DIAS_TRABAJADOS") == "diastrabajados"


# --- CSV -------------------------------------------------------------------------------------


def test_utf8_csv() -> None:
    parsed = read_declaration(csv_text(HEADER, LINE).encode("utf-8"), filename="enero.csv")
    assert parsed.format == "csv"
    assert parsed.encoding == "utf-8"
    assert parsed.delimiter == ","
    assert parsed.rows == 1
    assert parsed.row_errors == []
    assert parsed.frame.columns == ["row", *CANONICAL]
    assert parsed.frame.schema["row"] == pl.Int64
    assert all(parsed.frame.schema[name] == pl.String for name in CANONICAL)
    assert parsed.frame.row(0, named=True) == {
        "row": 2,
        "worker_id": "GALJ850312HDFRPN03",
        "paternal_surname": "García",
        "maternal_surname": "López",
        "given_names": "Juan Carlos",
        "days": "30",
        "daily_salary": "315.04",
        "absence_days": "",
        "incapacity_days": "",
        "movement": "",
        "movement_date": "",
    }


def test_utf8_with_byte_order_mark() -> None:
    parsed = read_declaration(b"\xef\xbb\xbf" + csv_text(HEADER, LINE).encode("utf-8"))
    assert parsed.encoding == "utf-8"
    assert parsed.frame["worker_id"].to_list() == ["GALJ850312HDFRPN03"]


def test_windows_1252_accents() -> None:
    data = csv_text(HEADER, "41987654328,PEÑA,NÚÑEZ,MARÍA,30,315.04").encode("cp1252")
    parsed = read_declaration(data)
    assert parsed.encoding == "latin-1"
    assert parsed.frame.select("paternal_surname", "maternal_surname", "given_names").row(0) == (
        "PEÑA",
        "NÚÑEZ",
        "MARÍA",
    )


def test_utf16_with_byte_order_mark_and_tabs() -> None:
    # Excel's "Unicode text" export.
    data = csv_text(HEADER.replace(",", "\t"), LINE.replace(",", "\t")).encode("utf-16")
    parsed = read_declaration(data)
    assert (parsed.encoding, parsed.delimiter) == ("utf-16", "\t")
    assert parsed.frame["paternal_surname"].to_list() == ["García"]


def test_semicolon_delimiter_with_decimal_comma() -> None:
    data = csv_text(HEADER.replace(",", ";"), LINE.replace(",", ";").replace("315.04", "315,04"))
    parsed = read_declaration(data.encode())
    assert parsed.delimiter == ";"
    assert parsed.frame["daily_salary"].to_list() == ["315,04"]


def test_quoted_fields_containing_the_delimiter_and_quotes() -> None:
    data = csv_text(
        HEADER,
        'GALJ850312HDFRPN03,"García, de la",López,"Juan ""Juanito"" Carlos",30,"1,234.56"',
    )
    parsed = read_declaration(data.encode())
    assert parsed.row_errors == []
    row = parsed.frame.row(0, named=True)
    assert row["paternal_surname"] == "García, de la"
    assert row["given_names"] == 'Juan "Juanito" Carlos'
    assert row["daily_salary"] == "1,234.56"


def test_spanish_headers_with_accents_case_and_spaces() -> None:
    header = ";".join(
        [
            "CURP o NSS",
            "APELLIDO PATERNO",
            "Apellido-Materno",
            "Nombres",
            "Días trabajados",
            "Salario diario",
            "Fecha de movimiento",
        ]
    )
    parsed = read_declaration(csv_text(header, "41987654328;Peña;;Ana;15;300;").encode())
    assert parsed.frame.row(0, named=True) | {"row": 0} == {
        "row": 0,
        "worker_id": "41987654328",
        "paternal_surname": "Peña",
        "maternal_surname": "",
        "given_names": "Ana",
        "days": "15",
        "daily_salary": "300",
        "absence_days": "",
        "incapacity_days": "",
        "movement": "",
        "movement_date": "",
    }


def test_columns_in_any_order_and_optional_columns() -> None:
    header = "sbc,dias,movimiento,nombre,apellido_materno,apellido_paterno,curp,faltas"
    parsed = read_declaration(
        csv_text(header, "315.04,30,alta,Ana,Ruiz,Peña,41987654328,2").encode()
    )
    row = parsed.frame.row(0, named=True)
    assert (row["worker_id"], row["daily_salary"], row["movement"], row["absence_days"]) == (
        "41987654328",
        "315.04",
        "alta",
        "2",
    )
    assert row["incapacity_days"] == ""


def test_cells_are_stripped_and_blank_lines_skipped_keeping_spreadsheet_row_numbers() -> None:
    data = "\r\n".join(
        [HEADER, "  " + LINE.replace(",", " , ") + "  ", "", ",,,,,", "   ", LINE, ""]
    )
    parsed = read_declaration(data.encode())
    assert parsed.frame["row"].to_list() == [2, 6]
    assert parsed.frame["paternal_surname"].to_list() == ["García", "García"]
    assert parsed.frame["daily_salary"].to_list() == ["315.04", "315.04"]


def test_classic_mac_line_endings() -> None:
    parsed = read_declaration(f"{HEADER}\r{LINE}\r{LINE}\r".encode())
    assert parsed.frame["row"].to_list() == [2, 3]


def test_leading_blank_lines_before_the_header() -> None:
    parsed = read_declaration(csv_text("", ",,,", HEADER, LINE).encode())
    assert parsed.frame["row"].to_list() == [4]


def test_line_with_wrong_cell_count_is_a_row_error() -> None:
    data = csv_text(HEADER, LINE, LINE + ",extra", "GALJ850312HDFRPN03,García,López,30", LINE)
    parsed = read_declaration(data.encode())
    assert parsed.row_errors == [
        RowError(3, "", "wrong_cell_count", {"found": 7, "expected": 6}),
        RowError(4, "", "wrong_cell_count", {"found": 4, "expected": 6}),
    ]
    assert parsed.frame["row"].to_list() == [2, 5]
    assert parsed.rows == 2
    with translation.override("en"):
        assert parsed.row_errors[0].message == (
            "This line has 7 cells but the header has 6. A separator is missing or extra, or a "
            "value contains one without quotation marks."
        )


def test_a_quoted_delimiter_does_not_count_as_a_cell() -> None:
    data = csv_text(HEADER, 'GALJ850312HDFRPN03,"García, de la",López,Juan,30,315.04,x')
    parsed = read_declaration(data.encode())
    assert parsed.row_errors == [RowError(2, "", "wrong_cell_count", {"found": 7, "expected": 6})]


def test_an_unclosed_quotation_mark_spoils_only_its_own_line() -> None:
    data = csv_text(
        HEADER,
        'GALJ850312HDFRPN03,"García,López,Juan,30,315.04',
        LINE,
        'GALJ850312HDFRPN03,O"Brien,López,Juan,30,315.04',
    )
    parsed = read_declaration(data.encode())
    assert [error.row for error in parsed.row_errors] == [2]
    assert parsed.frame["row"].to_list() == [3, 4]
    assert parsed.frame["paternal_surname"].to_list() == ["García", 'O"Brien']


def test_value_in_a_column_without_header_is_a_row_error() -> None:
    data = csv_text(HEADER + ",", LINE + ",", LINE + ",stray")
    parsed = read_declaration(data.encode())
    assert parsed.row_errors == [RowError(3, "", "cell_outside_columns", {"column_number": 7})]
    assert parsed.frame["row"].to_list() == [2]


def test_header_problems_are_reported_together() -> None:
    data = csv_text("CURP,NSS,apellido paterno,nombre,foo,Bar Baz,dias", "x,x,x,x,x,x,x")
    with translation.override("en"):
        error = rejected(data.encode())
    assert error.code == "invalid_columns"
    assert error.params == {
        "missing": ["maternal_surname", "daily_salary"],
        "unknown": ["foo", "Bar Baz"],
        "duplicate": ["worker_id"],
    }
    assert error.message == (
        "The required columns 'Maternal surname', 'Daily contributory salary' are missing. Add "
        "them with one of the accepted headers; the column specification lists them. The "
        "declaration has 2 columns Pilar does not know: 'foo', 'Bar Baz'. Rename or remove "
        "them; the column specification lists the accepted headers. The columns 'CURP', 'NSS' "
        "all mean 'Worker identifier'. Keep only one of them."
    )


def test_a_single_kind_of_header_problem_has_its_own_code() -> None:
    error = rejected(csv_text(HEADER + ",comentarios", LINE + ",x").encode())
    assert error.code == "unknown_columns"
    assert error.params["columns"] == ["comentarios"]
    error = rejected(csv_text("curp,nombre,dias,sbc", "x,x,x,x").encode())
    assert error.code == "missing_columns"
    assert error.params["columns"] == ["paternal_surname", "maternal_surname"]


def test_header_messages_are_translated() -> None:
    with translation.override("es"):
        error = rejected(csv_text("curp,nombre,dias,sbc,apellido_paterno", "x,x,x,x,x").encode())
    assert error.message == (
        "Falta la columna obligatoria 'Apellido materno'. Agréguela con uno de los encabezados "
        "aceptados; la especificación de columnas los enumera."
    )


def test_a_header_that_names_nothing_is_reported_as_unknown_columns() -> None:
    error = rejected(b"foo;bar\n1;2\n")
    assert error.params["unknown"] == ["foo", "bar"]
    assert error.params["missing"] == list(CANONICAL[:6])


@pytest.mark.parametrize("data", [b"", b"   \r\n\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n\n"])
def test_empty_file(data: bytes) -> None:
    assert rejected(data).code == "empty"


@pytest.mark.parametrize("data", [csv_text(HEADER), csv_text(HEADER, "", ",,,,,", "")])
def test_only_a_header(data: str) -> None:
    assert rejected(data.encode()).code == "no_rows"


def test_binary_garbage_named_csv() -> None:
    garbage = bytes(range(256)) * 64
    error = rejected(garbage, filename="nomina.csv")
    assert error.code == "not_text"
    assert "nomina.csv" in error.message


def test_control_characters_without_nul_are_binary() -> None:
    assert rejected(b"\x01\x02\x03\x04 abc" * 100).code == "not_text"


def test_legacy_xls_is_refused_with_advice() -> None:
    with translation.override("en"):
        error = rejected(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, filename="a.xls")
    assert error.code == "xls_unsupported"
    assert "save it as .xlsx or CSV" in error.message


def test_zip_that_is_not_a_workbook() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    assert rejected(buffer.getvalue(), filename="a.xlsx").code == "not_xlsx"
    assert rejected(b"PK\x03\x04 truncated").code == "not_xlsx"


def test_too_large(settings: Settings) -> None:
    settings.PILAR_DECLARATION_MAX_BYTES = 1024 * 1024
    data = csv_text(HEADER, *[LINE] * 20_000).encode()
    with translation.override("en"):
        error = rejected(data)
    assert error.code == "too_large"
    assert error.params["limit"] == 1024 * 1024
    assert "at most 1 MB" in error.message


def test_size_is_checked_before_anything_else(settings: Settings) -> None:
    settings.PILAR_DECLARATION_MAX_BYTES = 10
    assert rejected(b"\xd0\xcf\x11\xe0" + b"\x00" * 20).code == "too_large"


def test_large_file_parses_every_line() -> None:
    lines = [HEADER]
    lines.extend(
        f"GALJ850312HDFRPN{index % 100:02d},García,López,Juan,30,{300 + index % 1000}.{index % 97}"
        for index in range(200_000)
    )
    parsed = read_declaration(csv_text(*lines).encode())
    assert parsed.rows == 200_000
    assert parsed.row_errors == []
    assert parsed.frame["row"][-1] == 200_001


# --- XLSX ------------------------------------------------------------------------------------


def test_xlsx_round_trip_with_typed_cells() -> None:
    data = xlsx_file(
        [
            [
                *["CURP o NSS", "Apellido paterno", "Apellido materno", "Nombres", "Días", "SBC"],
                *["Movimiento", "Fecha de movimiento"],
            ],
            ["GALJ850312HDFRPN03", "García", "López", " Juan Carlos ", 30, 315.04, None, None],
            [],
            [
                41987654328,
                "Peña",
                None,
                "Ana",
                15.0,
                1250.5,
                "alta",
                datetime.datetime(2025, 1, 16),
            ],
            [
                "41987654328",
                "Peña",
                None,
                "Ana",
                15,
                "1,234.56",
                "alta",
                datetime.date(2025, 1, 16),
            ],
        ]
    )
    parsed = read_declaration(data, filename="declaracion.csv")
    assert (parsed.format, parsed.encoding, parsed.delimiter) == ("xlsx", None, None)
    assert parsed.row_errors == []
    assert parsed.frame.select(
        "row", "worker_id", "given_names", "days", "daily_salary", "movement_date"
    ).rows() == [
        (2, "GALJ850312HDFRPN03", "Juan Carlos", "30", "315.04", ""),
        (4, "41987654328", "Ana", "15", "1250.5", "2025-01-16"),
        (5, "41987654328", "Ana", "15", "1,234.56", "2025-01-16"),
    ]


def test_xlsx_header_below_empty_rows_and_stray_cells() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for column, header in enumerate(HEADER.split(","), start=1):
        sheet.cell(row=3, column=column, value=header)
    for column, value in enumerate(LINE.split(","), start=1):
        sheet.cell(row=4, column=column, value=value)
        sheet.cell(row=6, column=column, value=value)
    sheet.cell(row=6, column=9, value="stray")
    buffer = io.BytesIO()
    workbook.save(buffer)
    parsed = read_declaration(buffer.getvalue())
    assert parsed.frame["row"].to_list() == [4]
    assert parsed.row_errors == [RowError(6, "", "cell_outside_columns", {"column_number": 9})]


def test_xlsx_header_problems_and_no_rows() -> None:
    assert rejected(xlsx_file([["curp", "nombre", "otra"]])).code == "invalid_columns"
    assert rejected(xlsx_file([HEADER.split(","), [None, None]])).code == "no_rows"
    assert rejected(xlsx_file([])).code == "empty"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (" x ", "x"),
        (30, "30"),
        (30.0, "30"),
        (315.04, "315.04"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-05, "0.00001"),
        (1.5e16, "15000000000000000"),
        (12345678903.0, "12345678903"),
        (Decimal("315.040"), "315.04"),
        (Decimal("3E+2"), "300"),
        (1.125, "1.1250"),
        (Decimal("1.125"), "1.1250"),
        (datetime.datetime(2025, 1, 16, 13, 5), "2025-01-16"),
        (datetime.date(2025, 1, 16), "2025-01-16"),
        (True, "TRUE"),
    ],
)
def test_cell_text(value: object, text: str) -> None:
    assert cell_text(value) == text


def test_three_decimal_numbers_are_not_mistaken_for_thousands() -> None:
    parsed = read_declaration(xlsx_file([HEADER.split(","), [*LINE.split(",")[:5], 1.125]]))
    assert parsed.frame["daily_salary"].to_list() == ["1.1250"]
    assert parse_money(parsed.frame["daily_salary"])[1].to_list() == ["too_many_decimals"]


# --- JSON ------------------------------------------------------------------------------------


def test_frame_from_records() -> None:
    parsed = frame_from_records(
        [
            {
                "worker_id": "GALJ850312HDFRPN03",
                "paternal_surname": " García ",
                "maternal_surname": None,
                "given_names": "Juan",
                "days": 30,
                "daily_salary": Decimal("315.040"),
            },
            {
                "worker_id": "41987654328",
                "paternal_surname": "Peña",
                "maternal_surname": "Ruiz",
                "given_names": "Ana",
                "days": 15,
                "daily_salary": 300.5,
                "movement": "alta",
            },
        ]
    )
    assert isinstance(parsed, ParsedFile)
    assert (parsed.format, parsed.rows) == ("json", 2)
    assert parsed.frame.columns == ["row", *CANONICAL]
    assert parsed.frame.select("row", "paternal_surname", "maternal_surname", "days").rows() == [
        (1, "García", "", "30"),
        (2, "Peña", "Ruiz", "15"),
    ]
    assert parsed.frame["daily_salary"].to_list() == ["315.04", "300.5"]
    assert parsed.frame["movement"].to_list() == ["", "alta"]


def test_frame_from_records_rejects_unknown_and_missing_keys() -> None:
    with pytest.raises(FileRejected) as error:
        frame_from_records([{"worker_id": "x", "salary": 1}])
    assert error.value.code == "invalid_columns"
    assert error.value.params["unknown"] == ["salary"]
    assert error.value.params["missing"] == list(CANONICAL[1:6])
    with pytest.raises(FileRejected) as error:
        frame_from_records([])
    assert error.value.code == "no_rows"


# --- Values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "centavos", "error"),
    [
        ("315.04", 31504, None),
        ("315", 31500, None),
        ("315.5", 31550, None),
        ("0.05", 5, None),
        ("  315.04 ", 31504, None),
        ("315,04", 31504, None),
        ("1,234.56", 123456, None),
        ("1.234,56", 123456, None),
        ("1,234,567.8", 123456780, None),
        ("1.234.567,89", 123456789, None),
        ("1,234", 123400, None),
        # A lone point with three digits is three decimals in Mexico's notation, refused.
        ("1.234", None, "too_many_decimals"),
        ("$315.04", 31504, None),
        ("$ 1,234.56", 123456, None),
        ("-0", 0, None),
        ("", None, None),
        (None, None, None),
        ("315.045", None, "too_many_decimals"),
        ("1.234.567", 123456700, None),
        ("315.0450", None, "too_many_decimals"),
        ("315,0450", None, "too_many_decimals"),
        ("0.125", None, "too_many_decimals"),
        ("1,234.567", None, "too_many_decimals"),
        ("-315.04", None, "negative"),
        ("-$5", None, "negative"),
        ("$-5", None, "negative"),
        ("1,23,456", None, "number_format"),
        ("1,234,56", None, "number_format"),
        ("1.234.56", None, "number_format"),
        ("1,234.567,89", None, "number_format"),
        ("1 234,56", None, "number_format"),
        ("315.", None, "number_format"),
        ("$", None, "number_format"),
        ("abc", None, "number_format"),
        ("3l5", None, "number_format"),
        ("1234567890123456", None, "number_format"),
    ],
)
def test_parse_money(text: str | None, centavos: int | None, error: str | None) -> None:
    values, errors = parse_money(pl.Series("daily_salary", [text], dtype=pl.String))
    assert values.dtype == pl.Int64
    assert errors.dtype == pl.String
    assert (values[0], errors[0]) == (centavos, error)


def test_parse_money_mixes_plain_and_other_shapes() -> None:
    values, errors = parse_money(pl.Series(["315.04", "1,234.56", "x", "", "7"]))
    assert values.to_list() == [31504, 123456, None, None, 700]
    assert errors.to_list() == [None, None, "number_format", None, None]


@pytest.mark.parametrize(
    ("text", "number", "error"),
    [
        ("15", 15, None),
        (" 7 ", 7, None),
        ("15.0", 15, None),
        ("15,00", 15, None),
        ("", None, None),
        ("15.5", None, "not_integer"),
        ("1,000", None, "not_integer"),
        ("quince", None, "not_integer"),
        ("-3", None, "negative"),
    ],
)
def test_parse_int(text: str, number: int | None, error: str | None) -> None:
    values, errors = parse_int(pl.Series([text]))
    assert values.dtype == pl.Int64
    assert (values[0], errors[0]) == (number, error)


@pytest.mark.parametrize(
    ("text", "date", "error"),
    [
        ("2025-01-31", datetime.date(2025, 1, 31), None),
        ("31/01/2025", datetime.date(2025, 1, 31), None),
        ("5/1/2025", datetime.date(2025, 1, 5), None),
        ("2024-02-29", datetime.date(2024, 2, 29), None),
        ("2025-01-31 00:00:00", datetime.date(2025, 1, 31), None),
        ("", None, None),
        ("2025-02-29", None, "date_format"),
        ("31/02/2025", None, "date_format"),
        ("01/31/2025", None, "date_format"),
        ("31-01-2025", None, "date_format"),
        ("mañana", None, "date_format"),
    ],
)
def test_parse_date(text: str, date: datetime.date | None, error: str | None) -> None:
    values, errors = parse_date(pl.Series([text]))
    assert values.dtype == pl.Date
    assert (values[0], errors[0]) == (date, error)


def test_every_value_error_code_has_a_message() -> None:
    codes = {"wrong_cell_count", "cell_outside_columns"}
    series = pl.Series(["x", "-1", "1.234", "0.125"])
    for parser in (parse_money, parse_int, parse_date):
        codes.update(parser(series)[1].drop_nulls().to_list())
    assert codes <= set(ROW_ERROR_MESSAGES)


# --- Writing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("=1+2", "'=1+2"),
        ("+52 55", "'+52 55"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("García", "García"),
        ("", ""),
    ],
)
def test_escape_cell(value: str, escaped: str) -> None:
    assert escape_cell(value) == escaped


def test_csv_bytes_escapes_text_but_not_numbers() -> None:
    data = csv_bytes(
        ["Nombre", "=cmd"],
        [
            ['=HYPERLINK("http://x")', -5],
            ["Peña", Decimal("-1.50")],
            [None, datetime.date(2025, 1, 31)],
        ],
    )
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.decode("utf-8-sig").split("\r\n") == [
        "Nombre,'=cmd",
        '"\'=HYPERLINK(""http://x"")",-5',
        "Peña,-1.50",
        ",2025-01-31",
        "",
    ]


def test_xlsx_bytes_escapes_text_and_keeps_types() -> None:
    data = xlsx_bytes(
        ["Nombre", "Monto", "Fecha"],
        [["=1+2", Decimal("315.04"), datetime.date(2025, 1, 31)], ["@x", 7, None]],
        sheet_title="Enero/2025: [x]",
    )
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    sheet = workbook.active
    assert sheet is not None
    assert sheet.title == "Enero 2025 x"
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("Nombre", "Monto", "Fecha")
    assert rows[1] == ("'=1+2", 315.04, datetime.datetime(2025, 1, 31))
    assert rows[2] == ("'@x", 7, None)
    assert sheet["A2"].data_type == "s"


@pytest.mark.parametrize("language", ["es", "en"])
def test_templates_read_back_without_errors(language: str) -> None:
    for data in (template_csv(language), template_xlsx(language)):
        parsed = read_declaration(data)
        assert parsed.row_errors == []
        assert parsed.rows == 2
        assert parsed.frame["worker_id"].to_list() == ["GALJ850312HDFRPN03", "41987654328"]
        values, errors = parse_money(parsed.frame["daily_salary"])
        assert values.to_list() == [31504, 125050]
        assert errors.null_count() == 2
    header = template_csv(language).decode("utf-8-sig").splitlines()[0]
    first = "CURP o NSS" if language == "es" else "Worker identifier"
    assert header.startswith(first)
