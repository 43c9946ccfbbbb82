"""Reading and writing payroll declaration files.

An employer uploads one monthly declaration: one line per worker, as CSV (UTF-8, UTF-16 with a
byte order mark, or Windows-1252; comma, semicolon or tab separated) or as an Excel workbook
(.xlsx). ``read_declaration`` turns the bytes into a Polars DataFrame of stripped *strings*, one
column per canonical column, or rejects the whole file with a precise, translated reason. Values
are validated elsewhere; this module only offers vectorised helpers to parse amounts, whole
numbers and dates (``parse_money``, ``parse_int``, ``parse_date``), each returning the parsed
Series and a Series of error codes (``ROW_ERROR_MESSAGES`` holds their messages).

Problems that affect the whole file (size, format, header) reject it; problems of one line (a
line with more or fewer cells than the header) become ``RowError``s and the line is left out of
the frame, so a validator never sees values shifted into the wrong column.

Writing: ``csv_bytes`` and ``xlsx_bytes`` escape every text cell that a spreadsheet would run as a
formula (OWASP "CSV injection"); ``template_csv`` and ``template_xlsx`` produce the downloadable
template, which ``read_declaration`` reads back without errors.

Pure module: Django's translation functions and settings only; no models, no database.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import polars as pl
from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import get_language, gettext, ngettext
from django.utils.translation import gettext_lazy as _
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

from pilar.core.errors import ApplicationError

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
# A workbook is a zip of XML; a small upload can expand enormously when opened (a "zip bomb").
# Real workbooks compress about 5-10 times, so ten times the upload limit leaves ample room.
XLSX_EXPANSION_FACTOR = 10
# The sample of the file inspected to tell text from binary data, and the share of control
# characters it may contain before the file is taken for binary.
TEXT_SAMPLE_BYTES = 64 * 1024
MAX_CONTROL_SHARE = 0.01
# An amount or a whole number with more digits than this is certainly a mistake, and keeps the
# value in centavos far inside Int64.
MAX_INTEGER_DIGITS = 15

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
OLE_MAGIC = b"\xd0\xcf\x11\xe0"
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
DELIMITERS = (",", ";", "\t")
# Bytes that never occur in text, apart from tab, line feed and carriage return.
CONTROL_BYTES = bytes([*range(0, 9), 11, 12, *range(14, 32), 127])
# Nothing but white space and byte order marks (UTF-8 or UTF-16); the search stops at the first
# other byte, so it costs nothing on a real file.
_BLANK = re.compile(rb"(?:\xef\xbb\xbf|\xff\xfe|\xfe\xff|\s|\x00)*")


# --- Columns ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of the declaration, as the column specification page shows it."""

    name: str
    required: bool
    spanish_header: str
    english_header: str
    description: str | Promise
    example: str
    aliases: tuple[str, ...]

    def label(self) -> str:
        """The header in the active language, for messages."""
        language = get_language() or settings.LANGUAGE_CODE
        return self.spanish_header if language.startswith("es") else self.english_header


COLUMNS: tuple[Column, ...] = (
    Column(
        name="worker_id",
        required=True,
        spanish_header="CURP o NSS",
        english_header="Worker identifier",
        description=_(
            "The worker's CURP (18 characters) or IMSS social security number (NSS, 11 digits)."
        ),
        example="GALJ850312HDFRPN03",
        aliases=(
            "curp_o_nss",
            "curp/nss",
            "id_trabajador",
            "identificador",
            "worker_id",
            "worker identifier",
            "curp",
            "nss",
        ),
    ),
    Column(
        name="paternal_surname",
        required=True,
        spanish_header="Apellido paterno",
        english_header="Paternal surname",
        description=_("The worker's first (paternal) surname, as on the CURP."),
        example="García",
        aliases=("apellido_paterno", "primer_apellido", "paternal_surname", "first_surname"),
    ),
    Column(
        name="maternal_surname",
        required=True,
        spanish_header="Apellido materno",
        english_header="Maternal surname",
        description=_(
            "The worker's second (maternal) surname, as on the CURP. Leave the cell empty if the "
            "worker has none."
        ),
        example="López",
        aliases=("apellido_materno", "segundo_apellido", "maternal_surname", "second_surname"),
    ),
    Column(
        name="given_names",
        required=True,
        spanish_header="Nombres",
        english_header="Given names",
        description=_("The worker's given names, as on the CURP."),
        example="Juan Carlos",
        aliases=("nombre", "nombres", "given_names", "first_names"),
    ),
    Column(
        name="days",
        required=True,
        spanish_header="Días",
        english_header="Days",
        description=_(
            "Days the worker was employed in the month, a whole number; absence and incapacity "
            "days are part of it."
        ),
        example="30",
        aliases=("dias", "dias_trabajados", "dias_cotizados", "days", "days_worked"),
    ),
    Column(
        name="daily_salary",
        required=True,
        spanish_header="Salario base de cotización",
        english_header="Daily contributory salary",
        description=_(
            "The daily contributory salary (SBC) in pesos, with at most two decimals, for "
            "example 315.04."
        ),
        example="315.04",
        aliases=(
            "sbc",
            "salario_base_de_cotizacion",
            "salario_diario",
            "daily_salary",
            "daily_contributory_salary",
        ),
    ),
    Column(
        name="absence_days",
        required=False,
        spanish_header="Días de ausencia",
        english_header="Absence days",
        description=_("Unpaid absences in the month, a whole number. Empty means none."),
        example="0",
        aliases=("ausencias", "dias_ausencia", "dias_de_ausencia", "faltas", "absence_days"),
    ),
    Column(
        name="incapacity_days",
        required=False,
        spanish_header="Días de incapacidad",
        english_header="Incapacity days",
        description=_(
            "Days of incapacity certified by the IMSS in the month, a whole number. Empty means "
            "none."
        ),
        example="0",
        aliases=("incapacidades", "dias_incapacidad", "dias_de_incapacidad", "incapacity_days"),
    ),
    Column(
        name="movement",
        required=False,
        spanish_header="Movimiento",
        english_header="Movement",
        description=_(
            "Empty when nothing changed; otherwise alta (hire), baja (separation) or "
            "modificacion (salary change)."
        ),
        example="alta",
        aliases=(
            "movimiento",
            "tipo_movimiento",
            "tipo_de_movimiento",
            "movement",
            "movement_type",
        ),
    ),
    Column(
        name="movement_date",
        required=False,
        spanish_header="Fecha de movimiento",
        english_header="Movement date",
        description=_(
            "The date of the movement, as YYYY-MM-DD or DD/MM/YYYY. Required when there is a "
            "movement."
        ),
        example="2025-01-16",
        aliases=("fecha_movimiento", "fecha_de_movimiento", "movement_date"),
    ),
)
CANONICAL: tuple[str, ...] = tuple(column.name for column in COLUMNS)
COLUMNS_BY_NAME: dict[str, Column] = {column.name: column for column in COLUMNS}
REQUIRED: tuple[str, ...] = tuple(column.name for column in COLUMNS if column.required)


_HEADER_NOISE = re.compile(r"[\s_\-]+")


def header_key(text: str) -> str:
    """How headers are compared: 'Días  Trabajados', 'dias_trabajados' → 'diastrabajados'."""
    decomposed = unicodedata.normalize("NFKD", text.replace("\ufeff", ""))
    without_accents = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _HEADER_NOISE.sub("", without_accents.casefold())


def _build_header_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for column in COLUMNS:
        for header in (*column.aliases, column.name, column.spanish_header, column.english_header):
            key = header_key(header)
            if index.setdefault(key, column.name) != column.name:
                raise AssertionError(f"Header {header!r} would mean two columns")
    return index


HEADER_INDEX: dict[str, str] = _build_header_index()


# --- Results and errors ----------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """A problem with one line: ``row`` as a spreadsheet numbers it, ``column`` a canonical name
    or "" for the whole line, a stable ``code`` (a key of ``ROW_ERROR_MESSAGES``) and the
    message's ``params``."""

    row: int
    column: str
    code: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return str(ROW_ERROR_MESSAGES[self.code]) % self.params


@dataclass(frozen=True)
class ParsedFile:
    """A declaration read into strings.

    ``frame`` has the Int64 column ``row`` (the spreadsheet row: the header is row 1) and then
    every canonical column as a stripped String, "" where empty or absent. Blank lines and lines
    with a ``RowError`` are not in it. ``rows`` is the frame's height.
    """

    frame: pl.DataFrame
    format: str
    encoding: str | None
    delimiter: str | None
    row_errors: list[RowError]
    rows: int


class FileRejected(ApplicationError):
    """The whole file cannot be read; ``code`` is stable, ``message`` says what to do."""

    status = 422

    def __init__(self, code: str, message: str, params: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=code, extra=params)
        self.message: str = message
        self.params: dict[str, Any] = params or {}


ROW_ERROR_MESSAGES: dict[str, str | Promise] = {
    "wrong_cell_count": _(
        "This line has %(found)d cells but the header has %(expected)d. A separator is missing "
        "or extra, or a value contains one without quotation marks."
    ),
    "cell_outside_columns": _(
        "This line has a value in column %(column_number)d, which has no header. Remove the "
        "value or move it to its column."
    ),
    "number_format": _("This is not an amount. Write it like 315.04 or 1,234.56."),
    "too_many_decimals": _("An amount can have at most two decimals (centavos)."),
    "negative": _("The value cannot be negative."),
    "not_integer": _("Write a whole number, for example 30."),
    "date_format": _(
        "This is not a valid date. Write it as YYYY-MM-DD or DD/MM/YYYY, for example 2025-01-31 "
        "or 31/01/2025."
    ),
}


def _quoted(values: Iterable[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _megabytes(size: int) -> str:
    megabytes = size / (1024 * 1024)
    return f"{megabytes:.0f}" if megabytes == int(megabytes) else f"{megabytes:.1f}"


def max_bytes() -> int:
    """The largest declaration file accepted, in bytes."""
    return int(getattr(settings, "PILAR_DECLARATION_MAX_BYTES", DEFAULT_MAX_BYTES))


# --- Reading ---------------------------------------------------------------------------------


def read_declaration(data: bytes, *, filename: str = "") -> ParsedFile:
    """Read an uploaded declaration (CSV or XLSX, told apart by content, not by ``filename``).

    Raises ``FileRejected`` when the file as a whole cannot be used: too large, empty, not a
    spreadsheet, a wrong header, no data lines. Lines of the wrong shape become ``row_errors``.
    ``filename`` is only used to word messages.
    """
    limit = max_bytes()
    if len(data) > limit:
        raise FileRejected(
            "too_large",
            gettext(
                "The file is %(size)s MB; Pilar accepts files of at most %(limit)s MB. Remove "
                "unused sheets, columns or formatting, or save it as CSV."
            )
            % {"size": _megabytes(len(data)), "limit": _megabytes(limit)},
            {"size": len(data), "limit": limit},
        )
    if _BLANK.fullmatch(data):
        raise _empty()
    if data.startswith(ZIP_MAGIC):
        return _read_xlsx(data, limit=limit)
    if data.startswith(OLE_MAGIC):
        raise FileRejected(
            "xls_unsupported",
            gettext(
                "This is an old Excel 97-2003 workbook (.xls), which Pilar cannot read. Open it "
                "in Excel and save it as .xlsx or CSV."
            ),
        )
    return _read_csv(data, filename=filename)


def _empty() -> FileRejected:
    return FileRejected("empty", gettext("The file is empty."))


def _not_text(filename: str) -> FileRejected:
    if filename:
        message = gettext(
            "The file '%(file)s' is neither a text (CSV) file nor an Excel workbook. Upload the "
            "declaration as CSV or .xlsx."
        ) % {"file": filename}
    else:
        message = gettext(
            "The file is neither a text (CSV) file nor an Excel workbook. Upload the declaration "
            "as CSV or .xlsx."
        )
    return FileRejected("not_text", message, {"filename": filename})


def _decode(data: bytes, *, filename: str) -> tuple[bytes, str]:
    """The file as UTF-8 bytes without a byte order mark, and the encoding it was in."""
    if data.startswith(UTF16_BOMS):
        try:
            return data.decode("utf-16").encode("utf-8"), "utf-16"
        except UnicodeDecodeError as error:
            raise _not_text(filename) from error
    # Searching for NUL is a memchr over the whole file; text never contains one.
    if b"\x00" in data:
        raise _not_text(filename)
    sample = data[:TEXT_SAMPLE_BYTES]
    control = len(sample) - len(sample.translate(None, CONTROL_BYTES))
    if control > MAX_CONTROL_SHARE * len(sample):
        raise _not_text(filename)
    payload = data.removeprefix(UTF8_BOM)
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        # Windows-1252 is Latin-1 with printable characters where Latin-1 has C1 controls, and
        # is what Excel writes as "CSV" on Spanish Windows. Its five undefined bytes fall back to
        # Latin-1 so that decoding never fails.
        try:
            text = payload.decode("cp1252")
        except UnicodeDecodeError:
            text = payload.decode("latin-1")
        return text.encode("utf-8"), "latin-1"
    return payload, "utf-8"


@dataclass(frozen=True)
class _Header:
    """The header line matched against the columns."""

    cells: list[str]
    width: int  # cells, counting trailing blank ones (the line's real width)
    named: int  # cells up to the last one with a header
    positions: dict[str, int]  # canonical name → cell index
    unknown: list[str]
    duplicates: dict[str, list[str]]
    missing: list[str]


def _match_header(raw_cells: Sequence[str]) -> _Header:
    cells = [cell.strip().strip("\ufeff").strip() for cell in raw_cells]
    named = len(cells)
    while named and not cells[named - 1]:
        named -= 1
    positions: dict[str, int] = {}
    written: dict[str, list[str]] = {}
    unknown: list[str] = []
    for index, cell in enumerate(cells[:named]):
        canonical = HEADER_INDEX.get(header_key(cell)) if cell else None
        if canonical is None:
            unknown.append(
                cell or gettext("(no header, column %(number)d)") % {"number": index + 1}
            )
            continue
        positions.setdefault(canonical, index)
        written.setdefault(canonical, []).append(cell)
    duplicates = {name: headers for name, headers in written.items() if len(headers) > 1}
    missing = [name for name in REQUIRED if name not in positions]
    return _Header(cells, len(cells), named, positions, unknown, duplicates, missing)


def _check_header(header: _Header) -> None:
    """Reject the file with every header problem at once, if there is any."""
    if not (header.missing or header.unknown or header.duplicates):
        return
    sentences: list[str] = []
    kinds: list[str] = []
    if header.missing:
        kinds.append("missing_columns")
        labels = [COLUMNS_BY_NAME[name].label() for name in header.missing]
        sentences.append(
            ngettext(
                "The required column %(columns)s is missing. Add it with one of the accepted "
                "headers; the column specification lists them.",
                "The required columns %(columns)s are missing. Add them with one of the accepted "
                "headers; the column specification lists them.",
                len(labels),
            )
            % {"columns": _quoted(labels), "count": len(labels)}
        )
    if header.unknown:
        kinds.append("unknown_columns")
        sentences.append(
            ngettext(
                "The declaration has %(count)d column Pilar does not know: %(columns)s. Rename "
                "or remove it; the column specification lists the accepted headers.",
                "The declaration has %(count)d columns Pilar does not know: %(columns)s. Rename "
                "or remove them; the column specification lists the accepted headers.",
                len(header.unknown),
            )
            % {"count": len(header.unknown), "columns": _quoted(header.unknown)}
        )
    if header.duplicates:
        kinds.append("duplicate_columns")
        for name, headers in header.duplicates.items():
            sentences.append(
                gettext("The columns %(headers)s all mean %(column)s. Keep only one of them.")
                % {"headers": _quoted(headers), "column": f"'{COLUMNS_BY_NAME[name].label()}'"}
            )
    params: dict[str, Any] = {
        "missing": header.missing,
        "unknown": header.unknown,
        "duplicate": sorted(header.duplicates),
    }
    if len(kinds) == 1:
        params["columns"] = {
            "missing_columns": header.missing,
            "unknown_columns": header.unknown,
            "duplicate_columns": sorted(header.duplicates),
        }[kinds[0]]
    raise FileRejected(
        kinds[0] if len(kinds) == 1 else "invalid_columns", " ".join(sentences), params
    )


def _no_rows() -> FileRejected:
    return FileRejected("no_rows", gettext("The file has a header but no worker lines below it."))


def _read_csv(data: bytes, *, filename: str) -> ParsedFile:
    payload, encoding = _decode(data, filename=filename)
    if b"\n" not in payload:
        # Classic Mac line endings: a lone carriage return ends each line.
        payload = payload.replace(b"\r", b"\n")
    # Every physical line as one string: NUL never occurs (checked above), so it serves as a
    # separator that splits nothing, and with quoting off nothing spans lines.
    lines = pl.read_csv(
        payload,
        has_header=False,
        separator="\x00",
        quote_char=None,
        schema={"line": pl.String},
        empty_string_is_null=False,
    ).get_column("line")
    header_index = _first_content_line(lines)
    header_text = str(lines[header_index])
    delimiter, header = _sniff(header_text)
    _check_header(header)

    data_start = 0
    for _line in range(header_index + 1):
        newline = payload.find(b"\n", data_start)
        data_start = len(payload) if newline < 0 else newline + 1
    data_lines = lines.slice(header_index + 1)
    parsed = _parse_records(
        payload[data_start:], data_lines, delimiter=delimiter, width=header.width
    ) or _split_lines(data_lines, delimiter=delimiter, width=header.width)
    cells, cell_counts = parsed
    first_row = header_index + 2
    row_numbers = pl.int_range(first_row, first_row + cells.height, dtype=pl.Int64, eager=True)
    return _assemble(
        cells,
        header=header,
        row_numbers=row_numbers,
        cell_counts=cell_counts,
        outside=None,
        file_format="csv",
        encoding=encoding,
        delimiter=delimiter,
    )


def _first_content_line(lines: pl.Series) -> int:
    """The index of the header: the first line with something other than separators."""
    # Looking at the first lines alone spares stripping a million lines to find line 1.
    for candidates in (lines.head(100), lines):
        content = candidates.str.strip_chars(" \t\r,;\"'").ne("").arg_true()
        if not content.is_empty():
            return int(content[0])
    raise _empty()


def _sniff(header_text: str) -> tuple[str, _Header]:
    """The delimiter under which the header line names the most columns.

    With no column recognised under any delimiter, the one that splits the line into most cells
    wins, so the rejection lists the unknown headers one by one; ties go to the comma.
    """
    candidates: list[tuple[tuple[int, int, int], str, _Header]] = []
    for order, delimiter in enumerate(DELIMITERS):
        cells = next(csv.reader([header_text], delimiter=delimiter, quotechar='"'), [])
        header = _match_header(cells)
        candidates.append(((len(header.positions), header.named, -order), delimiter, header))
    _score, delimiter, header = max(candidates, key=lambda candidate: candidate[0])
    return delimiter, header


def _parse_records(
    data: bytes, lines: pl.Series, *, delimiter: str, width: int
) -> tuple[pl.DataFrame, pl.Series] | None:
    """Cells and cell counts of each line with Polars' CSV reader, or None when some line
    leaves a quotation mark open (then records and lines may not correspond)."""
    quotes = lines.str.count_matches('"', literal=True)
    if (quotes % 2 == 1).any():
        return None
    cells = pl.read_csv(
        data,
        has_header=False,
        separator=delimiter,
        quote_char='"',
        schema={f"c{index}": pl.String for index in range(width)},
        # The schema, not the first record, sets the width: a short or long first line must
        # neither drop nor add columns.
        missing_columns="insert",
        extra_columns="ignore",
        truncate_ragged_lines=True,
        empty_string_is_null=False,
        raise_if_empty=False,
    )
    if cells.height != lines.len():
        return None
    # The reader pads short records and truncates long ones without saying so; the number of
    # separators outside quoted values tells each line's real number of cells.
    counts = (
        pl.DataFrame({"line": lines, "quotes": quotes})
        .select(
            pl.when(pl.col("quotes") > 0)
            .then(pl.col("line").str.replace_all(r'"[^"]*"', ""))
            .otherwise(pl.col("line"))
            .str.count_matches(delimiter, literal=True)
            .cast(pl.Int64)
            + 1
        )
        .to_series()
    )
    return cells, counts


def _split_lines(lines: pl.Series, *, delimiter: str, width: int) -> tuple[pl.DataFrame, pl.Series]:
    """Cells and cell counts of each physical line, each line read on its own.

    Used when a quotation mark is left open or a value spans lines. Neither belongs in a
    declaration, and reading line by line keeps an unclosed quote from swallowing the rest of
    the file: it spoils only its own line. Lines without quotes are split by Polars; only lines
    with quotes go through the csv module.
    """
    plain = lines.str.split(delimiter)
    needs_csv = lines.str.contains('"', literal=True)
    parsed: dict[int, list[str]] = {}
    for position in needs_csv.arg_true().to_list():
        record = next(csv.reader([lines[position]], delimiter=delimiter, quotechar='"'), [])
        parsed[position] = record
    if parsed:
        replaced = plain.to_list()
        for position, record in parsed.items():
            replaced[position] = record
        plain = pl.Series(replaced, dtype=pl.List(pl.String))
    cells = pl.DataFrame(
        {f"c{index}": plain.list.get(index, null_on_oob=True) for index in range(width)}
    ).fill_null("")
    counts = plain.list.len().fill_null(0).cast(pl.Int64)
    return cells, counts


def _assemble(
    cells: pl.DataFrame,
    *,
    header: _Header,
    row_numbers: pl.Series,
    cell_counts: pl.Series | None,
    outside: pl.Series | None,
    file_format: str,
    encoding: str | None,
    delimiter: str | None,
) -> ParsedFile:
    """The common end of reading: strip, drop blank lines, find misshapen lines, name columns.

    ``cells`` has ``c0`` … ``c{width-1}``; ``cell_counts`` is each line's real number of cells
    (CSV), ``outside`` the first column number beyond the header holding a value (XLSX).
    """
    names = [f"c{index}" for index in range(header.width)]
    stripped = cells.lazy().select(pl.col(names).fill_null("").str.strip_chars())
    frame = stripped.with_columns(
        row=row_numbers,
        count=cell_counts if cell_counts is not None else pl.lit(None, dtype=pl.Int64),
        outside=outside if outside is not None else pl.lit(None, dtype=pl.Int64),
    )
    # Cells after the last header cell may only be empty (spreadsheets often export them).
    unnamed = [
        pl.when(pl.col(names[index]) != "").then(index + 1)
        for index in range(header.named, header.width)
    ]
    if unnamed:
        frame = frame.with_columns(outside=pl.coalesce(pl.col("outside"), *unnamed))
    blank = pl.all_horizontal(pl.col(name) == "" for name in names) if names else pl.lit(True)
    frame = frame.with_columns(
        blank=blank & pl.col("outside").is_null(),
        wrong_count=pl.col("count").is_not_null() & (pl.col("count") != header.width),
    ).with_columns(
        keep=~pl.col("blank") & ~pl.col("wrong_count") & pl.col("outside").is_null(),
    )
    # One pass computes the kept lines and the (few) flagged ones, sharing the stripping.
    result, flagged, lines = pl.collect_all(
        [
            frame.filter("keep").select(
                "row",
                *(
                    pl.col(f"c{header.positions[name]}").alias(name)
                    if name in header.positions
                    else pl.lit("", dtype=pl.String).alias(name)
                    for name in CANONICAL
                ),
            ),
            frame.filter(~pl.col("blank") & ~pl.col("keep")).select(
                "row", "count", "wrong_count", "outside"
            ),
            frame.select((~pl.col("blank")).sum()),
        ]
    )
    if not lines.item():
        raise _no_rows()
    row_errors: list[RowError] = []
    for row, count, wrong, outside_column in flagged.iter_rows():
        if wrong:
            row_errors.append(
                RowError(row, "", "wrong_cell_count", {"found": count, "expected": header.width})
            )
        else:
            row_errors.append(
                RowError(row, "", "cell_outside_columns", {"column_number": outside_column})
            )
    return ParsedFile(
        frame=result,
        format=file_format,
        encoding=encoding,
        delimiter=delimiter,
        row_errors=row_errors,
        rows=result.height,
    )


# --- XLSX ------------------------------------------------------------------------------------


def _number_text(value: float | Decimal) -> str:
    """A number as a declaration would write it: no float noise, no exponent.

    A value with exactly three decimals gets a fourth ("1.125" → "1.1250"): read as text,
    "1.125" would be the thousands-grouped 1125, and the value must instead be reported as
    having too many decimals.
    """
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value.is_integer():
            return str(int(value))
        number = Decimal(repr(value))
    else:
        if not value.is_finite():
            return str(value)
        number = value.normalize()
    text = format(number, "f")
    if "." in text:
        decimals = len(text) - text.index(".") - 1
        if decimals == 3:
            text += "0"
    return text


def cell_text(value: object) -> str:
    """A spreadsheet or JSON value as declaration text: 30 → "30", 315.04 → "315.04",
    a date → "YYYY-MM-DD", None → ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        return _number_text(value)
    if isinstance(value, datetime.datetime):
        return value.date().isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value).strip()


def _not_xlsx() -> FileRejected:
    return FileRejected(
        "not_xlsx",
        gettext(
            "The file is a compressed (zip) file but not an Excel workbook Pilar can read. "
            "Upload an .xlsx workbook or a CSV file."
        ),
    )


def _read_xlsx(data: bytes, *, limit: int) -> ParsedFile:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as error:
        raise _not_xlsx() from error
    if expanded > XLSX_EXPANSION_FACTOR * limit:
        raise FileRejected(
            "xlsx_too_large",
            gettext(
                "The workbook expands to more than %(limit)s MB when opened, more than Pilar "
                "accepts. Save it as CSV, or remove unused sheets and formatting."
            )
            % {"limit": _megabytes(XLSX_EXPANSION_FACTOR * limit)},
            {"expanded": expanded, "limit": XLSX_EXPANSION_FACTOR * limit},
        )
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:
        # openpyxl reports a zip that is not a workbook as KeyError, InvalidFileException,
        # ValueError, XML parse errors and more; all mean the same to the employer.
        raise _not_xlsx() from error
    try:
        if not workbook.worksheets:
            raise _empty()
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header: _Header | None = None
        columns: list[list[str]] = []
        row_numbers: list[int] = []
        outside: list[int | None] = []
        try:
            # openpyxl numbers rows from 1 and yields empty rows for gaps in the sheet.
            for number, values in enumerate(rows, start=1):
                texts = [cell_text(value) for value in values]
                if header is None:
                    if any(texts):
                        header = _match_header(texts)
                        _check_header(header)
                        # Cells after the last header cell are not columns; a value there is
                        # reported per row (formatting alone makes openpyxl yield them empty).
                        header = replace(header, width=header.named)
                        columns = [[] for _ in range(header.width)]
                    continue
                if not any(texts):
                    continue
                row_numbers.append(number)
                for index in range(header.width):
                    columns[index].append(texts[index] if index < len(texts) else "")
                beyond = next(
                    (index + 1 for index in range(header.width, len(texts)) if texts[index]),
                    None,
                )
                outside.append(beyond)
        except FileRejected:
            raise
        except Exception as error:
            # A sheet's XML can be broken in ways openpyxl finds only while reading it.
            raise _not_xlsx() from error
    finally:
        workbook.close()
    if header is None:
        raise _empty()
    cells = pl.DataFrame(
        {f"c{index}": pl.Series(values, dtype=pl.String) for index, values in enumerate(columns)}
    )
    if not row_numbers:
        raise _no_rows()
    return _assemble(
        cells,
        header=header,
        row_numbers=pl.Series(row_numbers, dtype=pl.Int64),
        cell_counts=None,
        outside=pl.Series(outside, dtype=pl.Int64),
        file_format="xlsx",
        encoding=None,
        delimiter=None,
    )


# --- JSON ------------------------------------------------------------------------------------


def frame_from_records(records: list[dict[str, object]]) -> ParsedFile:
    """The lines of a declaration sent as JSON, keyed by canonical names, as a ``ParsedFile``
    (``row`` is the 1-based position of the record). Unknown keys and absent required keys
    reject the declaration like a wrong header; a key absent from one record is "" there."""
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(record))
    unknown = [key for key in keys if key not in COLUMNS_BY_NAME]
    missing = [name for name in REQUIRED if name not in keys] if records else []
    _check_header(
        _Header(
            cells=list(keys),
            width=len(keys),
            named=len(keys),
            positions={},
            unknown=unknown,
            duplicates={},
            missing=missing,
        )
    )
    if not records:
        raise FileRejected("no_rows", gettext("The declaration has no worker lines."))
    frame = pl.DataFrame(
        {
            "row": pl.Series(range(1, len(records) + 1), dtype=pl.Int64),
            **{
                name: pl.Series(
                    [cell_text(record.get(name)) for record in records], dtype=pl.String
                )
                for name in CANONICAL
            },
        }
    )
    return ParsedFile(
        frame=frame, format="json", encoding=None, delimiter=None, row_errors=[], rows=frame.height
    )


# --- Values ----------------------------------------------------------------------------------

# Plain digits with an optional decimal point or comma and one or two decimals; or thousands
# grouped with commas (decimal point) or with points (decimal comma). Group names differ per
# alternative because the regex engine does not allow repeating one.
_MONEY = (
    r"^(?:(?P<plain>\d+)(?:[.,](?P<plain_decimals>\d{1,2}))?"
    r"|(?P<comma>[1-9]\d{0,2}(?:,\d{3})+)(?:\.(?P<comma_decimals>\d{1,2}))?"
    r"|(?P<point>[1-9]\d{0,2}(?:\.\d{3})+)(?:,(?P<point_decimals>\d{1,2}))?)$"
)
# The same shapes with three or more decimals.
_MONEY_TOO_PRECISE = r"^(?:\d+[.,]|[1-9]\d{0,2}(?:,\d{3})+\.|[1-9]\d{0,2}(?:\.\d{3})+,)\d{3,}$"
_MONEY_PREFIX = r"^-?\s*\$?\s*-?\s*"
_MONEY_SIMPLE = rf"^\d{{1,{MAX_INTEGER_DIGITS}}}(?:\.\d{{1,2}})?$"


def parse_money(series: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Amounts as Int64 centavos, and an error code per value (null when fine).

    Accepted: "315.04", "315", "$ 315.04", "1,234.56", "1.234,56", "315,04", "1,234" (1234).
    "1.234" alone is ``too_many_decimals`` (Mexico writes decimals with a point). The last "."
    or "," is the decimal separator when one or two digits follow it; a separator followed by
    groups of exactly three digits groups thousands; the thousands separator must be the other
    character than the decimal one. Empty gives null and no error.
    Codes: ``number_format``, ``too_many_decimals``, ``negative``.
    """
    text = series.cast(pl.String).str.strip_chars()
    # Nearly every amount is written plainly ("315.04"): a Decimal cast converts those at once,
    # and only the others go through the rules above.
    simple = text.str.contains(_MONEY_SIMPLE)
    exact = text.cast(pl.Decimal(MAX_INTEGER_DIGITS + 2, 2), strict=False) * 100
    value = pl.select(pl.when(simple).then(exact.cast(pl.Int64, strict=False))).to_series()
    error = pl.Series(values=[None] * len(text), dtype=pl.String)
    others = ((~simple) & (text != "")).fill_null(False).arg_true()
    if others.len():
        other_values, other_errors = _money_by_rules(text.gather(others))
        value = value.scatter(others, other_values)
        error = error.scatter(others, other_errors)
    return value.alias(series.name), error.alias(series.name)


def _money_by_rules(text: pl.Series) -> tuple[pl.Series, pl.Series]:
    """``parse_money`` for stripped, non-empty values in any accepted or rejected shape."""
    frame = pl.DataFrame({"text": text}).with_columns(
        negative=pl.col("text").str.contains(r"^(?:-|\$\s*-)"),
        body=pl.col("text").str.replace(_MONEY_PREFIX, ""),
    )
    frame = frame.with_columns(parts=pl.col("body").str.extract_groups(_MONEY)).unnest("parts")
    frame = frame.with_columns(
        integer=pl.coalesce("plain", "comma", "point").str.replace_all(r"[.,]", ""),
        decimals=pl.coalesce("plain_decimals", "comma_decimals", "point_decimals"),
    )
    # "315.045" is, in Mexico's notation, an SBC with three decimals, not 315,045 pesos: a lone
    # point followed by three digits is refused rather than read as a thousands separator (a
    # silent 1000× error otherwise). "1.234,56" and "1,234" stay unambiguous.
    lone_point = pl.col("body").str.contains(r"^\d{1,3}\.\d{3}$")
    valid = (
        pl.col("integer").is_not_null()
        & (pl.col("integer").str.len_bytes() <= MAX_INTEGER_DIGITS)
        & ~lone_point
    )
    centavos = pl.col("integer").cast(pl.Int64, strict=False) * 100 + pl.col(
        "decimals"
    ).str.pad_end(2, "0").cast(pl.Int64, strict=False).fill_null(0)
    # "-0" is zero, not a negative amount.
    negative = pl.col("negative") & (centavos != 0)
    result = frame.select(
        value=pl.when(valid & ~negative).then(centavos),
        error=pl.when(valid & negative)
        .then(pl.lit("negative"))
        .when(valid)
        .then(None)
        .when(pl.col("body").str.contains(_MONEY_TOO_PRECISE) | lone_point)
        .then(pl.lit("too_many_decimals"))
        .otherwise(pl.lit("number_format")),
    )
    return (
        result.get_column("value").cast(pl.Int64),
        result.get_column("error").cast(pl.String),
    )


def parse_int(series: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Whole numbers as Int64, and an error code per value (null when fine).

    "15" and, as spreadsheets write whole numbers, "15.0" or "15,00" are 15; anything else is
    ``not_integer`` ("-3" is ``negative``). Empty gives null and no error.
    """
    text = series.cast(pl.String).str.strip_chars()
    frame = pl.DataFrame({"text": text}).with_columns(
        digits=pl.col("text").str.extract(rf"^(\d{{1,{MAX_INTEGER_DIGITS}}})(?:[.,]0{{1,2}})?$")
    )
    result = frame.select(
        value=pl.col("digits").cast(pl.Int64, strict=False),
        error=pl.when(
            pl.col("text").is_null() | (pl.col("text") == "") | pl.col("digits").is_not_null()
        )
        .then(None)
        .when(pl.col("text").str.contains(r"^-\s*\d+(?:[.,]0{1,2})?$"))
        .then(pl.lit("negative"))
        .otherwise(pl.lit("not_integer")),
    )
    return (
        result.get_column("value").alias(series.name),
        result.get_column("error").cast(pl.String).alias(series.name),
    )


_DATE = (
    r"^(?:(?P<iso_year>\d{4})-(?P<iso_month>\d{1,2})-(?P<iso_day>\d{1,2})(?:[ T]00:00(?::00)?)?"
    r"|(?P<day>\d{1,2})/(?P<month>\d{1,2})/(?P<year>\d{4}))$"
)


def parse_date(series: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Dates written YYYY-MM-DD or DD/MM/YYYY (day first, as in Mexico), and an error code per
    value (null when fine): ``date_format`` for other shapes and impossible dates (31/02/2025).
    Empty gives null and no error."""
    text = series.cast(pl.String).str.strip_chars()
    frame = (
        pl.DataFrame({"text": text})
        .with_columns(parts=pl.col("text").str.extract_groups(_DATE))
        .unnest("parts")
    )
    iso = pl.concat_str(
        pl.coalesce("iso_year", "year"),
        pl.coalesce("iso_month", "month").str.pad_start(2, "0"),
        pl.coalesce("iso_day", "day").str.pad_start(2, "0"),
        separator="-",
    )
    result = frame.with_columns(value=iso.str.to_date("%Y-%m-%d", strict=False)).select(
        "value",
        error=pl.when(
            pl.col("text").is_null() | (pl.col("text") == "") | pl.col("value").is_not_null()
        )
        .then(None)
        .otherwise(pl.lit("date_format")),
    )
    return (
        result.get_column("value").alias(series.name),
        result.get_column("error").cast(pl.String).alias(series.name),
    )


# --- Writing ---------------------------------------------------------------------------------

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: str) -> str:
    """Text a spreadsheet would run as a formula, made inert with a leading apostrophe (OWASP
    CSV injection guidance): "=1+2" → "'=1+2"."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return escape_cell(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return escape_cell(str(value))


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """A CSV export: UTF-8 with a byte order mark (so Excel shows accents), comma separated,
    CRLF line endings, every text cell escaped against formula injection."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_csv_value(cell) for cell in header])
    writer.writerows([_csv_value(cell) for cell in row] for row in rows)
    return UTF8_BOM + buffer.getvalue().encode("utf-8")


_SHEET_TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def _xlsx_value(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | Decimal):
        return value
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            # Excel has no time zones: show the local time of the installation.
            value = value.astimezone(ZoneInfo(settings.TIME_ZONE)).replace(tzinfo=None)
        return value
    if isinstance(value, datetime.date):
        return value
    # openpyxl refuses control characters that XML cannot hold.
    return escape_cell(ILLEGAL_CHARACTERS_RE.sub("", str(value)))


def xlsx_bytes(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, sheet_title: str
) -> bytes:
    """An XLSX export (one sheet, written streaming): text escaped against formula injection,
    numbers and Decimals as numbers, dates as dates, the header in bold."""
    workbook = openpyxl.Workbook(write_only=True)
    title = " ".join(_SHEET_TITLE_FORBIDDEN.sub(" ", sheet_title).split())[:31] or "Sheet1"
    sheet = workbook.create_sheet(title=title)
    bold = Font(bold=True)
    header_cells = []
    for text in header:
        cell = WriteOnlyCell(sheet, value=_xlsx_value(text))
        cell.font = bold
        header_cells.append(cell)
    sheet.append(header_cells)
    for row in rows:
        sheet.append([_xlsx_value(value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _template_rows(language: str) -> tuple[list[str], list[list[object]]]:
    spanish = language.startswith("es")
    header = [column.spanish_header if spanish else column.english_header for column in COLUMNS]
    rows: list[list[object]] = [
        [
            "GALJ850312HDFRPN03",
            "García",
            "López",
            "Juan Carlos",
            30,
            Decimal("315.04"),
            0,
            0,
            "",
            "",
        ],
        [
            "41987654328",
            "Peña",
            "Núñez",
            "María Guadalupe",
            16,
            Decimal("1250.50"),
            0,
            0,
            "alta" if spanish else "hire",
            "2025-01-16",
        ],
    ]
    return header, rows


def template_csv(language: str) -> bytes:
    """The downloadable CSV template: the header in ``language`` ("es" or "en") and two example
    lines."""
    header, rows = _template_rows(language)
    return csv_bytes(header, rows)


def template_xlsx(language: str) -> bytes:
    """The downloadable XLSX template: the header in ``language`` ("es" or "en") and two example
    lines; identifiers are text cells so that an NSS keeps its leading zeros."""
    header, rows = _template_rows(language)
    title = "Declaración" if language.startswith("es") else "Declaration"
    return xlsx_bytes(header, rows, sheet_title=title)
