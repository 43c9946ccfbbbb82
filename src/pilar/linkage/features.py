"""The feature columns of a person record, in bulk (Polars) and for one record.

Pure Python and Polars (no Django): the benchmark computes features for FEBRL and for Spark
without a database. ``pilar.core.identifiers`` is imported for RENAPO's CURP derivation; it
imports Django's lazy translation, which needs no settings until a message is rendered, and
nothing here renders one.

The column contract is in docs/linkage.md ("Feature columns"); ``FEATURE_COLUMNS`` fixes their
order and ``FEATURE_VERSION`` changes whenever any column's meaning does (a saved model records
the version it was trained on).

Bulk (``person_features``): names repeat heavily (a few thousand given names and surnames cover
most people), so every name feature is computed once per *distinct* value in Python and joined
back; dates, CURP and NSS checks and the derived CURP stem are vectorised Polars expressions.
One record (``record_features``) runs the same per-value Python functions and plain-Python
versions of the vectorised parts (CURP through python-stdnum, the stem through
``pilar.core.identifiers.curp_stem``); a property test proves both give identical output.

``derived_stem`` reads the names as written, with a married "DE X" cut off: RENAPO derives a
CURP from the registered name, and a nickname ("Pepe" for José) yields a stem one or two
characters away from the real one, which the CURP comparison's edit-distance level allows.
Expanding nicknames instead would break the stem of people registered under a name that is also
a nickname somewhere (Mayte, Lola).

Measured on this machine (2 cores), 1,000,000 records with seeder names and two thirds with a
CURP: ``person_features`` takes about 2.7 s when the cores are idle (7–10 s while other jobs
load them); the CURP check digits are half of it, the per-distinct name work a tenth.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import polars as pl
from stdnum import luhn
from stdnum.exceptions import ValidationError
from stdnum.mx import curp as stdnum_curp

from pilar.core.identifiers import _BAD_WORDS, _first_internal, _significant, curp_stem
from pilar.linkage import names

FEATURE_VERSION = 1

FEATURE_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "given_std",
    "given_canon",
    "given_main",
    "given_phon",
    "paternal_std",
    "maternal_std",
    "married_surname",
    "paternal_phon",
    "maternal_phon",
    "surnames_sorted",
    "birth_date",
    "birth_year",
    "birth_date_swapped",
    "sex",
    "birth_state",
    "curp",
    "curp_stem",
    "derived_stem",
    "stem_or_curp",
    "nss",
)
INPUT_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "given_names",
    "paternal_surname",
    "maternal_surname",
    "sex",
    "birth_date",
    "birth_state",
    "curp",
    "nss",
)
# The state code a derived CURP stem uses when the birth state is unknown (RENAPO's code for
# "born abroad", the only code that is never a wrong guess of a Mexican state).
UNKNOWN_STATE = "NE"
SEXES = frozenset({"F", "M", "X"})

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
_STATE_PATTERN = r"^[A-Z]{2}$"
_CURP_PATTERN = r"^[A-Z]{4}[0-9]{6}[A-Z]{6}[0-9A-Z][0-9]$"
_CURP_SEPARATORS = r"[\s\-_.]"
_CURP_ALPHABET = "0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ"
_CURP_STATES = frozenset(stdnum_curp._valid_states)
_CURP_BAD_WORDS = frozenset(stdnum_curp._name_blacklist)
_NSS_PATTERN = r"^[0-9]{11}$"
_DIGITS = re.compile(r"[0-9]")


# --- per-value functions (shared by both paths) ------------------------------------------------


def _present(text: str) -> str | None:
    return text or None


def _curp_text(value: str | None) -> str:
    """A name as CURP derivation reads it: NFKC, so a decomposed Ñ is still one Ñ, and without
    digits (nor "²"), which no registered name has: ``curp_stem`` would copy a stray "0" into
    the stem and make it an impossible CURP."""
    return _DIGITS.sub("", unicodedata.normalize("NFKC", value)) if value else ""


def given_values(given: str | None, sex: str | None) -> dict[str, str | None]:
    """given_std, given_canon, given_main, given_phon and the CURP letters of one given-names
    value."""
    standard = names.given_std(given)
    canonical = names.given_canon(given, sex)
    main = names.given_main(canonical)
    significant = _significant(_curp_text(given), given=True)
    return {
        "given_std": _present(standard),
        "given_canon": _present(canonical),
        "given_main": _present(main),
        "given_phon": _present(names.spanish_phonetic(main)),
        "_g_first": significant[:1],
        "_g_consonant": _first_internal(significant, consonant=True),
    }


def surname_for_curp(text: str | None) -> str:
    """The surname as RENAPO derives the CURP from it: the married "DE X" cut off (a married
    name is never part of a CURP), particles and Ñ left to ``curp_stem``'s own rules."""
    raw = _curp_text(text)
    if not names.surname_parts(raw)[1]:
        return raw
    # Ñ becomes X before folding so the cut text keeps what CURP derivation needs of it.
    words = names.fold_name(raw.replace("Ñ", "X").replace("ñ", "x")).split(" ")
    return " ".join(words[:-2])


def surname_values(text: str | None) -> dict[str, str | None]:
    """std, married, phonetic key and the CURP letters of one surname value."""
    standard, married = names.surname_parts(text)
    significant = _significant(surname_for_curp(text))
    return {
        "std": _present(standard),
        "married": _present(married),
        "phon": _present(names.spanish_phonetic(standard)),
        "_first": significant[:1],
        "_vowel": _first_internal(significant, consonant=False),
        "_consonant": _first_internal(significant, consonant=True),
    }


def _clean_code(value: Any) -> str:
    return "" if value is None else str(value).strip().upper()


def sex_value(value: Any) -> str | None:
    code = _clean_code(value)
    return code if code in SEXES else None


def state_value(value: Any) -> str | None:
    code = _clean_code(value)
    return code if re.fullmatch(_STATE_PATTERN, code) else None


def date_value(value: Any) -> datetime.date | None:
    """A date from a date, a datetime or an ISO ``YYYY-MM-DD`` string; None otherwise."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    text = str(value).strip()
    if not _ISO_DATE.match(text):
        return None
    try:
        return datetime.date(int(text[:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return None


def curp_value(value: Any) -> str | None:
    """The CURP upper-case and compact when python-stdnum validates it (format, embedded date,
    sex, state, check digit), else None."""
    if value is None:
        return None
    number = re.sub(_CURP_SEPARATORS, "", str(value)).upper()
    try:
        return stdnum_curp.validate(number, validate_check_digits=True)
    except ValidationError:
        return None


def nss_value(value: Any) -> str | None:
    """Eleven digits with a valid Luhn check digit, else None."""
    if value is None:
        return None
    number = re.sub(_CURP_SEPARATORS, "", str(value))
    if not re.fullmatch(_NSS_PATTERN, number) or not luhn.is_valid(number):
        return None
    return number


def swapped_date(birth: datetime.date | None) -> datetime.date | None:
    if birth is None or birth.day > 12 or birth.day == birth.month:
        return None
    return birth.replace(month=birth.day, day=birth.month)


def sorted_surnames(paternal: str | None, maternal: str | None) -> str | None:
    present = sorted(value for value in (paternal, maternal) if value)
    return " ".join(present) or None


# --- one record --------------------------------------------------------------------------------


def record_features(record: Mapping[str, Any]) -> dict[str, Any]:
    """The feature columns of one record (a mapping with ``INPUT_COLUMNS``; missing keys are
    absent values). Identical to the matching row of ``person_features``."""
    sex = sex_value(record.get("sex"))
    given = given_values(_text_or_none(record.get("given_names")), sex)
    paternal_raw = _text_or_none(record.get("paternal_surname"))
    maternal_raw = _text_or_none(record.get("maternal_surname"))
    paternal = surname_values(paternal_raw)
    maternal = surname_values(maternal_raw)
    birth = date_value(record.get("birth_date"))
    state = state_value(record.get("birth_state"))
    curp = curp_value(record.get("curp"))
    swapped = swapped_date(birth)
    derived = None
    if birth is not None:
        derived = curp_stem(
            given_names=_curp_text(_text_or_none(record.get("given_names"))),
            paternal_surname=surname_for_curp(paternal_raw),
            maternal_surname=surname_for_curp(maternal_raw),
            birth_date=birth,
            sex=sex or "",
            birth_state=state or UNKNOWN_STATE,
        )
    stem = curp[:16] if curp else None
    return {
        "unique_id": record.get("unique_id"),
        "given_std": given["given_std"],
        "given_canon": given["given_canon"],
        "given_main": given["given_main"],
        "given_phon": given["given_phon"],
        "paternal_std": paternal["std"],
        "maternal_std": maternal["std"],
        "married_surname": maternal["married"] or paternal["married"],
        "paternal_phon": paternal["phon"],
        "maternal_phon": maternal["phon"],
        "surnames_sorted": sorted_surnames(paternal["std"], maternal["std"]),
        "birth_date": birth.isoformat() if birth else None,
        "birth_year": birth.year if birth else None,
        "birth_date_swapped": swapped.isoformat() if swapped else None,
        "sex": sex,
        "birth_state": state,
        "curp": curp,
        "curp_stem": stem,
        "derived_stem": derived,
        "stem_or_curp": stem or derived,
        "nss": nss_value(record.get("nss")),
    }


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


# --- bulk --------------------------------------------------------------------------------------


def _per_distinct(
    frame: pl.DataFrame,
    keys: Sequence[str],
    compute: Callable[..., Mapping[str, str | None]],
    prefix: str,
) -> pl.DataFrame:
    """Run ``compute`` once per distinct combination of ``keys`` and join the results back,
    their columns named ``prefix`` + key of the returned mapping."""
    distinct = frame.select(keys).unique()
    results = [compute(*row) for row in distinct.iter_rows()]
    # The names of the results, also when the frame is empty.
    fields = list(compute(*([None] * len(keys))))
    table = distinct.with_columns(
        pl.Series(f"{prefix}{name}", [result[name] for result in results], dtype=pl.String)
        for name in fields
    )
    return frame.join(table, on=list(keys), how="left", nulls_equal=True, maintain_order="left")


def _string(frame: pl.DataFrame, name: str) -> pl.Expr:
    if name not in frame.columns:
        return pl.lit(None, dtype=pl.String).alias(name)
    return pl.col(name).cast(pl.String).alias(name)


def _date_expression(frame: pl.DataFrame) -> pl.Expr:
    if "birth_date" not in frame.columns:
        return pl.lit(None, dtype=pl.Date)
    dtype = frame.schema["birth_date"]
    column = pl.col("birth_date")
    if dtype == pl.Date:
        return column
    if isinstance(dtype, pl.Datetime):
        return column.dt.date()
    text = column.cast(pl.String).str.strip_chars()
    # Year 0 parses in Polars but is no date in Python; neither is a birth date.
    return (
        pl.when(text.str.contains(_ISO_DATE_PATTERN) & ~text.str.starts_with("0000"))
        .then(text.str.to_date("%Y-%m-%d", strict=False))
        .otherwise(None)
    )


def _curp_clean(raw: pl.Expr) -> pl.Expr:
    return raw.str.replace_all(_CURP_SEPARATORS, "").str.to_uppercase()


def _curp_expression(number: pl.Expr) -> pl.Expr:
    """The vectorised twin of ``curp_value``: python-stdnum's checks, column-wise, on a column
    already through ``_curp_clean`` (a column, not an expression: every check reads it)."""
    century = pl.when(number.str.slice(16, 1).str.contains(r"^[0-9]$")).then(19).otherwise(20)
    iso = pl.concat_str(
        century.cast(pl.String),
        number.str.slice(4, 2),
        pl.lit("-"),
        number.str.slice(6, 2),
        pl.lit("-"),
        number.str.slice(8, 2),
    )
    weights = pl.sum_horizontal(
        number.str.slice(position, 1).replace_strict(
            list(_CURP_ALPHABET), list(range(len(_CURP_ALPHABET))), default=0, return_dtype=pl.Int64
        )
        * (18 - position)
        for position in range(17)
    )
    check = ((10 - weights % 10) % 10).cast(pl.String)
    valid = (
        number.str.contains(_CURP_PATTERN)
        & ~number.str.slice(0, 4).is_in(list(_CURP_BAD_WORDS))
        & iso.str.to_date("%Y-%m-%d", strict=False).is_not_null()
        & number.str.slice(10, 1).is_in(["H", "M"])
        & number.str.slice(11, 2).is_in(list(_CURP_STATES))
        & (number.str.slice(17, 1) == check)
    )
    return pl.when(valid.fill_null(False)).then(number).otherwise(None)


def _nss_clean(raw: pl.Expr) -> pl.Expr:
    return raw.str.replace_all(_CURP_SEPARATORS, "")


def _nss_expression(number: pl.Expr) -> pl.Expr:
    """The vectorised twin of ``nss_value`` (eleven digits, Luhn check digit), on a column
    already through ``_nss_clean``."""
    digits = [number.str.slice(position, 1).cast(pl.Int64, strict=False) for position in range(11)]
    # Luhn from the right: the check digit (position 10) as is, the one before it doubled, …
    total = pl.sum_horizontal(
        (
            pl.when(digits[position] * 2 > 9)
            .then(digits[position] * 2 - 9)
            .otherwise(digits[position] * 2)
            if (10 - position) % 2 == 1
            else digits[position]
        )
        for position in range(11)
    )
    valid = number.str.contains(_NSS_PATTERN) & (total % 10 == 0)
    return pl.when(valid.fill_null(False)).then(number).otherwise(None)


def _first_or_x(column: str) -> pl.Expr:
    return pl.when(pl.col(column) == "").then(pl.lit("X")).otherwise(pl.col(column))


def person_features(frame: pl.DataFrame) -> pl.DataFrame:
    """The feature columns (``FEATURE_COLUMNS``, in order) of every row of ``frame`` (columns
    ``INPUT_COLUMNS``; missing optional columns are absent values), in the input order."""
    base = frame.select(
        (pl.col("unique_id") if "unique_id" in frame.columns else pl.lit(None)).alias("unique_id"),
        _string(frame, "given_names"),
        _string(frame, "paternal_surname"),
        _string(frame, "maternal_surname"),
        _string(frame, "sex").str.strip_chars().str.to_uppercase().alias("_sex_raw"),
        _date_expression(frame).alias("_birth"),
        _string(frame, "birth_state").str.strip_chars().str.to_uppercase().alias("_state_raw"),
        _curp_clean(_string(frame, "curp")).alias("_curp_raw"),
        _nss_clean(_string(frame, "nss")).alias("_nss_raw"),
    ).with_columns(
        pl.when(pl.col("_sex_raw").is_in(list(SEXES))).then(pl.col("_sex_raw")).alias("sex"),
        pl.when(pl.col("_state_raw").str.contains(_STATE_PATTERN))
        .then(pl.col("_state_raw"))
        .alias("birth_state"),
    )
    with_given = _per_distinct(base, ["given_names", "sex"], given_values, "")
    with_paternal = _per_distinct(with_given, ["paternal_surname"], surname_values, "_p_")
    enriched = _per_distinct(with_paternal, ["maternal_surname"], surname_values, "_m_")

    # CURP positions 1–16 as ``curp_stem`` builds them, from per-value parts. With one surname
    # only RENAPO puts it first, whichever field held it.
    only_maternal = (pl.col("_p__first") == "") & (pl.col("_m__first") != "")

    def part(name: str) -> pl.Expr:
        return pl.when(only_maternal).then(pl.col(f"_m_{name}")).otherwise(pl.col(f"_p_{name}"))

    def maternal_part(name: str) -> pl.Expr:
        return pl.when(only_maternal).then(pl.lit("")).otherwise(pl.col(f"_m_{name}"))

    enriched = enriched.with_columns(
        part("_first").alias("_s_p_first"),
        part("_vowel").alias("_s_p_vowel"),
        part("_consonant").alias("_s_p_consonant"),
        maternal_part("_first").alias("_s_m_first"),
        maternal_part("_consonant").alias("_s_m_consonant"),
    ).with_columns(
        pl.concat_str(
            _first_or_x("_s_p_first"),
            pl.col("_s_p_vowel"),
            _first_or_x("_s_m_first"),
            _first_or_x("_g_first"),
        ).alias("_letters")
    )
    letters = pl.col("_letters")
    letters = (
        pl.when(letters.is_in(list(_BAD_WORDS)))
        .then(pl.concat_str(letters.str.slice(0, 1), pl.lit("X"), letters.str.slice(2, 2)))
        .otherwise(letters)
    )
    sex_letter = pl.col("sex").replace_strict({"M": "H", "F": "M"}, default="X")
    derived = pl.concat_str(
        letters,
        pl.col("_birth").dt.strftime("%y%m%d"),
        sex_letter.fill_null("X"),
        pl.col("birth_state").fill_null(UNKNOWN_STATE),
        pl.col("_s_p_consonant"),
        pl.when(pl.col("_s_m_first") == "").then(pl.lit("X")).otherwise(pl.col("_s_m_consonant")),
        pl.col("_g_consonant"),
    )
    birth = pl.col("_birth")
    swapped = (
        pl.when((birth.dt.day() <= 12) & (birth.dt.day() != birth.dt.month()))
        .then(pl.date(birth.dt.year(), birth.dt.day(), birth.dt.month()))
        .otherwise(None)
    )
    curp = _curp_expression(pl.col("_curp_raw"))
    result = enriched.with_columns(
        pl.col("_p_std").alias("paternal_std"),
        pl.col("_m_std").alias("maternal_std"),
        pl.coalesce("_m_married", "_p_married").alias("married_surname"),
        pl.col("_p_phon").alias("paternal_phon"),
        pl.col("_m_phon").alias("maternal_phon"),
        pl.when(pl.col("_p_std").is_not_null() & pl.col("_m_std").is_not_null())
        .then(
            pl.when(pl.col("_p_std") <= pl.col("_m_std"))
            .then(pl.concat_str("_p_std", pl.lit(" "), "_m_std"))
            .otherwise(pl.concat_str("_m_std", pl.lit(" "), "_p_std"))
        )
        .otherwise(pl.coalesce("_p_std", "_m_std"))
        .alias("surnames_sorted"),
        birth.dt.strftime("%Y-%m-%d").alias("birth_date"),
        birth.dt.year().cast(pl.Int64).alias("birth_year"),
        swapped.dt.strftime("%Y-%m-%d").alias("birth_date_swapped"),
        curp.alias("curp"),
        curp.str.slice(0, 16).alias("curp_stem"),
        derived.alias("derived_stem"),
        _nss_expression(pl.col("_nss_raw")).alias("nss"),
    ).with_columns(pl.coalesce("curp_stem", "derived_stem").alias("stem_or_curp"))
    return result.select(FEATURE_COLUMNS)
