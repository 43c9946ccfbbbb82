"""Reading an external list (a programme's beneficiary list, another institute's extract).

Pure Python and Polars (no Django): the bench and the Spark path read lists without a database,
so errors carry a stable ``code`` and ``params`` and the English text in ``MESSAGES``; the Django
layer (``pilar.linkage.messages.list_error_message``) translates it. The texts are marked with
``_`` (a no-op, like Django's ``gettext_noop``) so the catalogues and the translation test see
them.

``read_list(source)`` takes the file's bytes or a path and returns ``(frame, row_errors,
file_errors)``:

* ``frame``: one row per readable line, in the feature input shape (``features.INPUT_COLUMNS``:
  ``unique_id`` is the line's number as a spreadsheet shows it, the header being row 1) plus
  ``external_key`` (the list's own ``id``/``folio``); null, never "", where a value is absent.
* ``row_errors``: ``ListError``s of single lines. ``severity == "error"`` leaves the line out of
  the frame (no names, an impossible or future birth date, an unknown sex, a line of the wrong
  shape); ``"warning"`` keeps it with the value removed (a CURP or NSS that fails validation, an
  unknown birth state, a missing birth date).
* ``file_errors``: problems of the whole file (too large, empty, not text, undecodable bytes,
  missing or duplicate columns, no rows). With any of them the frame is empty.

Formats: CSV in UTF-8 (with or without a byte order mark), UTF-16 with a byte order mark, or
Windows-1252/Latin-1 (what Excel writes as "CSV" on Spanish Windows), separated by commas,
semicolons or tabs; or an Excel workbook (.xlsx, first sheet), opened read-only after a check
that it does not expand beyond ``XLSX_EXPANSION_FACTOR`` times the size limit (a "zip bomb").
Told apart by content, never by file name.

Headers in Spanish or English, matched folded (no accents, case or punctuation): see
``HEADER_ALIASES``. Sex: H/M (hombre/mujer), F/M (female/male), X; since "M" means *mujer* in
Spanish and *male* in English, a column decides once: any H or HOMBRE → Spanish; otherwise any F,
FEMALE or FEMENINO → English; otherwise the header's language (``sexo`` Spanish, ``sex`` or
``gender`` English).
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from os import PathLike
from pathlib import Path
from typing import Any

import polars as pl

from pilar.core.regions import BORN_ABROAD, STATES
from pilar.core.text import fold
from pilar.linkage import features


def _(message: str) -> str:
    """Marks a message for translation without translating it (Django's ``gettext_noop``)."""
    return message


MAX_BYTES = 50 * 1024 * 1024
# A workbook is a zip of XML; a small upload can expand enormously when opened. Real workbooks
# compress five to ten times, so ten times the size limit leaves ample room.
XLSX_EXPANSION_FACTOR = 10
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
OLE_MAGIC = b"\xd0\xcf\x11\xe0"
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
DELIMITERS = (",", ";", "\t")
# The share of control characters (other than tab and line ends) above which data is binary.
_CONTROL_BYTES = bytes([*range(0, 9), 11, 12, *range(14, 32), 127])
_MAX_CONTROL_SHARE = 0.01
_SAMPLE = 64 * 1024
_BLANK = re.compile(rb"(?:\xef\xbb\xbf|\xff\xfe|\xfe\xff|\s|\x00)*")
# A UTF-8 multi-byte sequence: a file that has some and fails to decode mixes two encodings.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}")

ERROR = "error"
WARNING = "warning"

EXTERNAL_KEY = "external_key"
OUTPUT_COLUMNS: tuple[str, ...] = (*features.INPUT_COLUMNS, EXTERNAL_KEY)
OUTPUT_SCHEMA: dict[str, Any] = {
    "unique_id": pl.Int64,
    "given_names": pl.String,
    "paternal_surname": pl.String,
    "maternal_surname": pl.String,
    "sex": pl.String,
    "birth_date": pl.Date,
    "birth_state": pl.String,
    "curp": pl.String,
    "nss": pl.String,
    EXTERNAL_KEY: pl.String,
}
REQUIRED_COLUMNS = ("given_names", "paternal_surname", "birth_date")

# Folded header (lower case, words joined by "_") → column.
HEADER_ALIASES: dict[str, str] = {
    "curp": "curp",
    "nss": "nss",
    "numero_seguridad_social": "nss",
    "numero_de_seguridad_social": "nss",
    "nombre": "given_names",
    "nombres": "given_names",
    "nombre_s": "given_names",
    "given_names": "given_names",
    "given_name": "given_names",
    "first_name": "given_names",
    "first_names": "given_names",
    "apellido_paterno": "paternal_surname",
    "primer_apellido": "paternal_surname",
    "paternal_surname": "paternal_surname",
    "apellido_materno": "maternal_surname",
    "segundo_apellido": "maternal_surname",
    "maternal_surname": "maternal_surname",
    "fecha_nacimiento": "birth_date",
    "fecha_de_nacimiento": "birth_date",
    "birth_date": "birth_date",
    "date_of_birth": "birth_date",
    "sexo": "sex",
    "sex": "sex",
    "genero": "sex",
    "gender": "sex",
    "entidad_nacimiento": "birth_state",
    "entidad_de_nacimiento": "birth_state",
    "estado_nacimiento": "birth_state",
    "estado_de_nacimiento": "birth_state",
    "birth_state": "birth_state",
    "id": EXTERNAL_KEY,
    "folio": EXTERNAL_KEY,
    "clave": EXTERNAL_KEY,
    "external_id": EXTERNAL_KEY,
    "external_key": EXTERNAL_KEY,
}
_ENGLISH_SEX_HEADERS = frozenset({"sex", "gender"})

MESSAGES: dict[str, str] = {
    # Whole file.
    "too_large": _("The file is %(size_mb)s MB; a list can have at most %(limit_mb)s MB."),
    "empty": _("The file is empty."),
    "not_text": _("The file is neither a text (CSV) file nor an Excel workbook (.xlsx)."),
    "undecodable": _(
        "Line %(line)s has a byte (%(byte)s) that is not a character in UTF-8 or "
        "Windows-1252. Save the list as CSV UTF-8."
    ),
    "mixed_encoding": _(
        "The file mixes two text encodings: line %(line)s is not UTF-8 while other lines are. "
        "Save the list again as CSV UTF-8."
    ),
    "xls_unsupported": _(
        "This is an old Excel 97-2003 workbook (.xls). Save it as .xlsx or CSV and upload it again."
    ),
    "not_xlsx": _("The file is a compressed (zip) file but not an Excel workbook."),
    "xlsx_too_large": _(
        "The workbook expands to more than %(limit_mb)s MB when opened. Save it as CSV."
    ),
    "missing_columns": _(
        "The list lacks the required columns: %(columns)s. Name them in the first row, for "
        "example nombre, apellido_paterno, fecha_nacimiento."
    ),
    "duplicate_columns": _("These columns appear more than once: %(columns)s. Keep one of each."),
    "no_rows": _("The list has a header but no rows."),
    # One line.
    "wrong_cell_count": _(
        "This line has %(found)s cells but the header has %(expected)s. A separator is missing "
        "or extra."
    ),
    "given_names_missing": _("The given names are empty."),
    "surnames_missing": _("Both surnames are empty."),
    "birth_date_format": _(
        "'%(value)s' is not a date. Write it as YYYY-MM-DD or DD/MM/YYYY, for example "
        "1980-02-28 or 28/02/1980."
    ),
    "birth_date_impossible": _("'%(value)s' is not a possible date."),
    "birth_date_future": _("The birth date %(value)s is in the future."),
    "birth_date_missing": _("The birth date is empty; the row is compared without it."),
    "sex_invalid": _("'%(value)s' is not a sex. Write H or M (hombre, mujer), F, or X."),
    "curp_invalid": _("'%(value)s' is not a valid CURP; the row is compared without it."),
    "nss_invalid": _("'%(value)s' is not a valid NSS; the row is compared without it."),
    "birth_state_invalid": _(
        "'%(value)s' is not a state code or name; the row is compared without it."
    ),
}


@dataclass(frozen=True)
class ListError:
    """A problem with the list: ``row`` as a spreadsheet numbers it (0 for the whole file),
    ``column`` a column of ``OUTPUT_COLUMNS`` or "", a ``code`` of ``MESSAGES``, the message's
    ``params`` and whether the row is left out (``severity`` ``error``) or kept (``warning``)."""

    row: int
    column: str
    code: str
    params: dict[str, Any] = field(default_factory=dict)
    severity: str = ERROR

    @property
    def message(self) -> str:
        """The English message (the Django layer translates ``MESSAGES[code]`` instead)."""
        return MESSAGES[self.code] % self.params if self.params else MESSAGES[self.code]


class _Refused(Exception):
    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.error = ListError(0, "", code, params)


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=OUTPUT_SCHEMA)


def read_list(
    source: bytes | str | PathLike[str],
    *,
    today: datetime.date | None = None,
    max_bytes: int = MAX_BYTES,
) -> tuple[pl.DataFrame, list[ListError], list[ListError]]:
    """Read a list (the bytes, or a path to them). See the module docstring. ``today`` bounds
    birth dates (default: the machine's date); ``max_bytes`` is the largest file accepted."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if today is None:
        # A birth date is a civil date: the machine's calendar day is the right bound.
        today = datetime.date.today()  # noqa: DTZ011
    try:
        header, lines = _table(data, max_bytes=max_bytes)
        columns, sex_header = _match_header(header)
        frame, row_errors = _rows(columns, sex_header, len(header), lines, today=today)
    except _Refused as refused:
        return empty_frame(), [], [refused.error]
    if frame.height == 0 and not row_errors:
        return empty_frame(), [], [ListError(0, "", "no_rows")]
    return frame, row_errors, []


# --- bytes to a table -------------------------------------------------------------------------


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0")


Line = tuple[int, list[str]]


def _table(data: bytes, *, max_bytes: int) -> tuple[list[str], Iterator[Line]]:
    """The header cells and an iterator of (row number, cells) of the lines after it."""
    if len(data) > max_bytes:
        raise _Refused("too_large", size_mb=_megabytes(len(data)), limit_mb=_megabytes(max_bytes))
    if _BLANK.fullmatch(data):
        raise _Refused("empty")
    if data.startswith(ZIP_MAGIC):
        lines = _xlsx_lines(data, max_bytes=max_bytes)
    elif data.startswith(OLE_MAGIC):
        raise _Refused("xls_unsupported")
    else:
        lines = _csv_lines(_decode(data))
    for _number, cells in lines:
        if any(cells):
            return cells, lines
    raise _Refused("empty")


def _decode(data: bytes) -> str:
    if data.startswith(UTF16_BOMS):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise _Refused("not_text") from error
    if b"\x00" in data:
        raise _Refused("not_text")
    sample = data[:_SAMPLE]
    if len(sample) - len(sample.translate(None, _CONTROL_BYTES)) > _MAX_CONTROL_SHARE * len(sample):
        raise _Refused("not_text")
    payload = data.removeprefix(UTF8_BOM)
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as error:
        line = payload.count(b"\n", 0, error.start) + 1
        if data.startswith(UTF8_BOM) or _UTF8_SEQUENCE.search(payload):
            raise _Refused("mixed_encoding", line=line) from error
    try:
        # Windows-1252 leaves five bytes undefined; they are C1 controls in Latin-1 and never
        # occur in a real list, so they are refused rather than guessed.
        return payload.decode("cp1252")
    except UnicodeDecodeError as error:
        line = payload.count(b"\n", 0, error.start) + 1
        byte = f"0x{payload[error.start]:02X}"
        raise _Refused("undecodable", line=line, byte=byte) from error


def _csv_lines(text: str) -> Iterator[Line]:
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(DELIMITERS, key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    for cells in reader:
        # The line number of the record's first physical line (a quoted cell may span lines).
        yield start, [cell.strip() for cell in cells]
        start = reader.line_num + 1


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, datetime.datetime):
        return value.date().isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value))
    return str(value).strip()


def _xlsx_lines(data: bytes, *, max_bytes: int) -> Iterator[Line]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as error:
        raise _Refused("not_xlsx") from error
    if expanded > XLSX_EXPANSION_FACTOR * max_bytes:
        raise _Refused("xlsx_too_large", limit_mb=_megabytes(XLSX_EXPANSION_FACTOR * max_bytes))
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:
        # openpyxl reports a zip that is not a workbook as KeyError, InvalidFileException,
        # XML errors and more; all mean the same to the user.
        raise _Refused("not_xlsx") from error
    if not workbook.worksheets:
        workbook.close()
        raise _Refused("empty")
    rows = list(_sheet_rows(workbook))
    return iter(rows)


def _sheet_rows(workbook: Any) -> Iterator[Line]:
    try:
        sheet = workbook.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell_text(value) for value in values]
            while cells and not cells[-1]:
                cells.pop()
            yield number, cells
    except _Refused:
        raise
    except Exception as error:
        # A sheet's XML can be broken in ways openpyxl finds only while reading it.
        raise _Refused("not_xlsx") from error
    finally:
        workbook.close()


def _header_key(text: str) -> str:
    return "_".join(fold(text).lower().split(" "))


def _match_header(header: list[str]) -> tuple[dict[str, int], str]:
    """Column → position in the line, and the folded header of the sex column."""
    positions: dict[str, int] = {}
    repeated: list[str] = []
    sex_header = ""
    for index, text in enumerate(header):
        column = HEADER_ALIASES.get(_header_key(text))
        if column is None:
            continue
        if column in positions:
            repeated.append(text)
            continue
        positions[column] = index
        if column == "sex":
            sex_header = _header_key(text)
    if repeated:
        raise _Refused("duplicate_columns", columns=", ".join(repeated))
    missing = [column for column in REQUIRED_COLUMNS if column not in positions]
    if missing:
        raise _Refused("missing_columns", columns=", ".join(missing))
    return positions, sex_header


# --- values ------------------------------------------------------------------------------------

_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]00:00(?::00)?)?$")
_DAY_FIRST = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4})$")

_SPANISH_SEX = {"H": "M", "HOMBRE": "M", "MASCULINO": "M", "M": "F", "MUJER": "F"}
_SPANISH_SEX |= {"FEMENINO": "F", "F": "F", "X": "X", "NO BINARIO": "X"}
_ENGLISH_SEX = {"M": "M", "MALE": "M", "MAN": "M", "F": "F", "FEMALE": "F", "WOMAN": "F"}
_ENGLISH_SEX |= {"X": "X", "H": "M", "HOMBRE": "M", "MUJER": "F", "MASCULINO": "M"}
_ENGLISH_SEX |= {"FEMENINO": "F", "NON BINARY": "X", "NONBINARY": "X", "NO BINARIO": "X"}

_STATE_NAMES = {fold(name): code for code, name in STATES.items()}
_STATE_NAMES |= {
    "CDMX": "DF",
    "CIUDAD DE MEXICO": "DF",
    "DISTRITO FEDERAL": "DF",
    "ESTADO DE MEXICO": "MC",
    "EDOMEX": "MC",
    "NACIDO EN EL EXTRANJERO": BORN_ABROAD,
    "EXTRANJERO": BORN_ABROAD,
}
_STATE_CODES = frozenset([*STATES, BORN_ABROAD])


def parse_date(text: str) -> tuple[datetime.date | None, str]:
    """(date, "") or (None, error code) for ``YYYY-MM-DD`` or ``DD/MM/YYYY`` text."""
    iso = _ISO.match(text)
    day_first = None if iso else _DAY_FIRST.match(text)
    if iso:
        year, month, day = (int(part) for part in iso.groups())
    elif day_first:
        day, month, year = (int(part) for part in day_first.groups())
    else:
        return None, "birth_date_format"
    try:
        return datetime.date(year, month, day), ""
    except ValueError:
        return None, "birth_date_impossible"


def _sex_convention(values: list[str], header: str) -> dict[str, str]:
    folded = {fold(value) for value in values if value}
    if folded & {"H", "HOMBRE"}:
        return _SPANISH_SEX
    if folded & {"F", "FEMALE", "FEMENINO"}:
        return _ENGLISH_SEX
    return _ENGLISH_SEX if header in _ENGLISH_SEX_HEADERS else _SPANISH_SEX


def _state(text: str) -> str | None:
    folded = fold(text)
    if folded in _STATE_CODES:
        return folded
    return _STATE_NAMES.get(folded)


def _rows(
    positions: dict[str, int],
    sex_header: str,
    header_width: int,
    lines: Iterator[Line],
    *,
    today: datetime.date,
) -> tuple[pl.DataFrame, list[ListError]]:
    table: list[tuple[int, list[str]]] = []
    for number, cells in lines:
        # Trailing empty cells (a trailing separator, formatting in a sheet) are no values.
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            table.append((number, cells))
    sex_position = positions.get("sex")
    sex_values = [
        cells[sex_position]
        for _number, cells in table
        if sex_position is not None and sex_position < len(cells)
    ]
    sexes = _sex_convention(sex_values, sex_header)
    errors: list[ListError] = []
    columns: dict[str, list[Any]] = {name: [] for name in OUTPUT_COLUMNS}
    for number, cells in table:
        if len(cells) > header_width:
            # A value beyond the header: a separator inside an unquoted value shifted the
            # line, so none of its values can be trusted in its column.
            params = {"found": len(cells), "expected": header_width}
            errors.append(ListError(number, "", "wrong_cell_count", params))
            continue
        # Fewer cells than the header: the missing ones at the end are empty.
        row = {
            name: (cells[index] if index < len(cells) else "") for name, index in positions.items()
        }
        row_errors, values = _row_values(number, row, sexes, today)
        errors.extend(row_errors)
        if any(error.severity == ERROR for error in row_errors):
            continue
        values["unique_id"] = number
        for name in OUTPUT_COLUMNS:
            columns[name].append(values.get(name))
    return pl.DataFrame(columns, schema=OUTPUT_SCHEMA), errors


def _row_values(
    number: int, row: dict[str, str], sexes: dict[str, str], today: datetime.date
) -> tuple[list[ListError], dict[str, Any]]:
    errors: list[ListError] = []
    values: dict[str, Any] = {
        name: (row.get(name) or None)
        for name in ("given_names", "paternal_surname", "maternal_surname", EXTERNAL_KEY)
    }
    if not fold(row.get("given_names", "")):
        errors.append(ListError(number, "given_names", "given_names_missing"))
    if not fold(row.get("paternal_surname", "")) and not fold(row.get("maternal_surname", "")):
        errors.append(ListError(number, "paternal_surname", "surnames_missing"))
    birth_text = row.get("birth_date", "")
    if birth_text:
        birth, code = parse_date(birth_text)
        if birth is None:
            errors.append(ListError(number, "birth_date", code, {"value": birth_text}))
        elif birth > today:
            errors.append(
                ListError(number, "birth_date", "birth_date_future", {"value": birth.isoformat()})
            )
        values["birth_date"] = birth
    else:
        errors.append(ListError(number, "birth_date", "birth_date_missing", severity=WARNING))
    sex_text = row.get("sex", "")
    if sex_text:
        sex = sexes.get(fold(sex_text))
        if sex is None:
            errors.append(ListError(number, "sex", "sex_invalid", {"value": sex_text}))
        values["sex"] = sex
    for name, check, code in (
        ("curp", features.curp_value, "curp_invalid"),
        ("nss", features.nss_value, "nss_invalid"),
    ):
        text = row.get(name, "")
        if text:
            # A spreadsheet stores an NSS as a number and drops its leading zeros.
            padded = text.zfill(11) if name == "nss" and text.isdigit() and len(text) >= 9 else text
            valid = check(padded)
            if valid is None:
                errors.append(ListError(number, name, code, {"value": text}, WARNING))
            values[name] = valid
    state_text = row.get("birth_state", "")
    if state_text:
        state = _state(state_text)
        if state is None:
            params = {"value": state_text}
            errors.append(ListError(number, "birth_state", "birth_state_invalid", params, WARNING))
        values["birth_state"] = state
    return errors, values
