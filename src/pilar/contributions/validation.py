"""Validation of a payroll declaration: every row of the parsed file checked against the rules
and the registry, set-based (Polars), producing the validation report, the staged lines and the
summary statement.

The rules (issue codes in brackets; messages in ``ISSUE_MESSAGES``):

- Cells: required cells present [required]; days, absence and incapacity days whole numbers,
  SBC a number of pesos with at most two decimals, dates real dates (see ``fileformat``).
- Worker: the identifier is a well-formed CURP or NSS [identifier_format] with a correct check
  digit [identifier_check_digit] and known to the registry [worker_unknown]; not twice in the
  file [duplicate_worker]; the names agree with the registry's, ignoring accents, case and
  spacing [name_mismatch]. The registry's name is never echoed back: an employer typing a
  stranger's CURP must not learn whose it is.
- Days: between 0 and the days of the month [days_out_of_range]; at most 7 absence days
  (LSS art. 31) [absence_too_many]; absence plus incapacity days within the days
  [absence_exceeds_days]; within the days the employment covers in the month
  [days_exceed_employment].
- SBC: not below the minimum wage [salary_below_minimum]; above the cap (25 UMA) it is accepted
  and contributions are computed on the cap [salary_above_cap, warning].
- Employment: the worker has an employment with this employer in the month, or the line is a
  hire that creates it [no_employment]; a hire of someone already employed [already_employed];
  movements need a date inside the month [movement_date_required, movement_date_outside_period]
  and a known type [movement_unknown]; a date without a movement [movement_missing].

Rows with an error are reported and not staged; warnings are reported and the row is staged.
"""

from __future__ import annotations

import calendar
import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl
from django.conf import settings
from django.db import connection, transaction
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from pilar.contributions import bulk_calculation, fileformat
from pilar.contributions.calculation import CAP_UMA, MINIMUM_WAGE, UMA
from pilar.core import bulk
from pilar.core.identifiers import CURP, NSS, IdentifierInvalid, validate_curp, validate_nss
from pilar.core.text import fold

CURP_PATTERN = r"^[A-Z]{4}[0-9]{6}[HMX][A-Z]{5}[A-Z0-9][0-9]$"
NSS_PATTERN = r"^[0-9]{11}$"

MOVEMENT_WORDS: dict[str, str] = {
    "": "",
    "ALTA": "hire",
    "REINGRESO": "hire",
    "HIRE": "hire",
    "BAJA": "separation",
    "SEPARATION": "separation",
    "MODIFICACION": "salary_change",
    "MODIFICACION DE SALARIO": "salary_change",
    "MODIFICACION SALARIO": "salary_change",
    "SALARY CHANGE": "salary_change",
    "SALARY_CHANGE": "salary_change",
}

ISSUE_MESSAGES: dict[str, Promise] = {
    "required": _("This cell is required."),
    "identifier_format": _(
        "The worker identifier must be a CURP (18 characters) or an NSS (11 digits)."
    ),
    "identifier_check_digit": _("The identifier's check digit is wrong: %(reason)s"),
    "worker_unknown": _(
        "No insured person with this CURP or NSS is registered. Register the worker first."
    ),
    "worker_unknown_request": _(
        "No insured person with this identifier is registered: a registration request was "
        "made. Declare this worker again in a complementary declaration once registered."
    ),
    "duplicate_worker": _("This worker is already declared in row %(first_row)s."),
    "name_mismatch": _(
        "The names do not match the registry's record for this identifier (accents and case "
        "are ignored). Check the identifier and the names."
    ),
    "days_out_of_range": _("Days must be between 0 and %(max)s, the days of the month."),
    "absence_too_many": _("At most %(max)s absence days can be declared in a month."),
    "absence_exceeds_days": _("Absence and incapacity days together exceed the days declared."),
    "days_exceed_employment": _(
        "%(days)s days declared, but the employment covers only %(covered)s days of this month."
    ),
    "salary_below_minimum": _(
        "The SBC is below the minimum wage in force for the month (%(minimum)s pesos a day)."
    ),
    "salary_above_cap": _(
        "The SBC is above the cap of %(cap)s pesos a day (25 UMA); contributions are computed "
        "on the cap."
    ),
    "no_employment": _(
        "The worker has no employment with this employer in this month. Declare a hire "
        "(alta) with its date to start one."
    ),
    "already_employed": _(
        "The worker is already employed by this employer on the hire date; a hire cannot be "
        "declared twice."
    ),
    "movement_unknown": _(
        "Unknown movement type. Use alta (hire), baja (separation) or modificacion (salary "
        "change), or leave it empty."
    ),
    "movement_date_required": _("A movement needs its date."),
    "movement_date_outside_period": _("The movement date must be inside the declared month."),
    "movement_missing": _("A movement date was given without a movement type."),
    "separation_before_start": _("The separation date is before the employment started."),
}


def issue_message(code: str, params: Mapping[str, Any]) -> str:
    template = ISSUE_MESSAGES.get(code) or fileformat.ROW_ERROR_MESSAGES.get(code)
    if template is None:
        return code
    text = str(template)
    try:
        return text % params if params else text
    except (KeyError, TypeError, ValueError):
        return text


WARNING_CODES = frozenset({"salary_above_cap", "worker_unknown_request"})

ISSUE_SCHEMA = {
    "row": pl.Int64,
    "column": pl.String,
    "code": pl.String,
    "severity": pl.String,
    "value": pl.String,
    "params": pl.String,
}


def period_bounds(period: datetime.date) -> tuple[datetime.date, datetime.date, int]:
    days = calendar.monthrange(period.year, period.month)[1]
    return period, period.replace(day=days), days


def due_date(period: datetime.date) -> datetime.date:
    """Contributions of a month are due by the 17th of the following month (LSS art. 39)."""
    following = (period.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return following.replace(day=17)


@dataclass
class Validated:
    lines: pl.DataFrame  # valid lines, in DeclarationLine's columns (but declaration_id)
    issues: pl.DataFrame  # ISSUE_SCHEMA
    error_rows: int
    line_count: int
    statement: dict[str, Any] = field(default_factory=dict)
    requests: pl.DataFrame | None = None


class _Issues:
    def __init__(self) -> None:
        self.parts: list[pl.DataFrame] = []

    def add(
        self,
        frame: pl.DataFrame,
        condition: pl.Expr,
        *,
        column: str,
        code: str,
        value: pl.Expr | None = None,
        params: pl.Expr | dict[str, Any] | None = None,
    ) -> None:
        hits = frame.filter(condition)
        if hits.height == 0:
            return
        if isinstance(params, pl.Expr):
            params_expr = params
        else:
            params_expr = pl.lit(json.dumps(params or {}, default=str))
        value_expr = value if value is not None else (pl.col(column) if column else pl.lit(""))
        self.parts.append(
            hits.select(
                pl.col("row").cast(pl.Int64),
                pl.lit(column).alias("column"),
                pl.lit(code).alias("code"),
                pl.lit("warning" if code in WARNING_CODES else "error").alias("severity"),
                value_expr.cast(pl.String).fill_null("").str.slice(0, 200).alias("value"),
                params_expr.cast(pl.String).alias("params"),
            )
        )

    def frame(self) -> pl.DataFrame:
        if not self.parts:
            return pl.DataFrame(schema=ISSUE_SCHEMA)
        return pl.concat(self.parts).sort(["row", "column"], maintain_order=True)


def _blank(column: str) -> pl.Expr:
    return pl.col(column).fill_null("") == ""


def _fold_columns(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Fold names as the registry does (``core.text.fold``), once per distinct value: names
    repeat a great deal, so a million rows hold a few thousand distinct names."""
    distinct = pl.concat([frame[c].fill_null("") for c in columns]).unique()
    folded = pl.Series([fold(v) for v in distinct.to_list()], dtype=pl.String)
    return frame.with_columns(
        [
            pl.col(c)
            .fill_null("")
            .replace_strict(distinct, folded, return_dtype=pl.String)
            .alias(f"{c}_folded")
            for c in columns
        ]
    )


def registry_lookup(identifiers: pl.Series) -> pl.DataFrame:
    """Persons known by the given CURPs and NSSs: worker_id, person_id, normalized_name."""
    schema = {"worker_id": pl.String, "person_id": pl.Int64, "normalized_name": pl.String}
    values = identifiers.unique().to_list()
    if not values:
        return pl.DataFrame(schema=schema)
    if bulk.is_postgresql():
        # The identifiers go into an analysed temporary table rather than an array parameter:
        # the planner then knows there are a million of them and hash-joins (3 s for a million
        # against a million persons) instead of probing the index once per value (8 s).
        with transaction.atomic():
            with connection.cursor() as cursor:
                # Dropped at commit; also dropped here in case an enclosing transaction (a
                # test's) kept an earlier one.
                cursor.execute("DROP TABLE IF EXISTS pilar_wanted")
                cursor.execute("CREATE TEMP TABLE pilar_wanted (value text) ON COMMIT DROP")
                cursor.execute("SET LOCAL work_mem = '256MB'")
            bulk.frame_insert(
                "pilar_wanted", pl.DataFrame({"value": values}, schema={"value": pl.String})
            )
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE pilar_wanted")
            return bulk.frame_query(
                "SELECT i.value, i.person_id, p.normalized_name FROM pilar_wanted w"
                " JOIN registry_identifier i ON i.value = w.value"
                " JOIN registry_person p ON p.id = i.person_id"
                " WHERE i.is_active AND i.scheme IN (%s, %s) AND i.issuing_country = 'MX'",
                [CURP, NSS],
                schema,
            )
    parts = []
    for offset in range(0, len(values), 900):
        chunk = values[offset : offset + 900]
        marks = ", ".join(["%s"] * len(chunk))
        parts.append(
            bulk.frame_query(
                "SELECT i.value, i.person_id, p.normalized_name FROM registry_identifier i"  # noqa: S608
                " JOIN registry_person p ON p.id = i.person_id"
                f" WHERE i.is_active AND i.scheme IN (%s, %s) AND i.value IN ({marks})"
                " AND i.issuing_country = 'MX'",
                [CURP, NSS, *chunk],
                schema,
            )
        )
    return pl.concat(parts)


def employments_lookup(employer_id: int, start: datetime.date, end: datetime.date) -> pl.DataFrame:
    """The employer's employments that touch the month, one row per person: the latest one's
    id, and the span of the month they cover together."""
    schema = {
        "person_id": pl.Int64,
        "employment_id": pl.Int64,
        "start_date": pl.Date,
        "end_date": pl.Date,
    }
    found = bulk.frame_query(
        "SELECT person_id, id, start_date, end_date FROM registry_employment"
        " WHERE employer_id = %s AND start_date <= %s"
        " AND (end_date IS NULL OR end_date >= %s)",
        [employer_id, end, start],
        schema,
    )
    return (
        found.sort(["person_id", "start_date"])
        .group_by("person_id", maintain_order=True)
        .agg(
            pl.col("employment_id").last(),
            pl.col("start_date").min().alias("employment_start"),
            pl.col("end_date").max().alias("employment_end"),
            pl.col("end_date").is_null().any().alias("employment_open"),
        )
    )


def validate(
    parsed: fileformat.ParsedFile,
    *,
    employer_id: int,
    period: datetime.date,
    parameters: Mapping[str, Decimal],
    unknown_worker: str | None = None,
) -> Validated:
    """Check every row (module docstring) and compute the contributions of the valid ones."""
    unknown_worker = unknown_worker or getattr(settings, "PILAR_UNKNOWN_WORKER", "error")
    start, end, month_days = period_bounds(period)
    issues = _Issues()
    frame = parsed.frame
    for error in parsed.row_errors:
        issues.parts.append(
            pl.DataFrame(
                {
                    "row": [error.row],
                    "column": [error.column],
                    "code": [error.code],
                    "severity": ["error"],
                    "value": [""],
                    "params": [json.dumps(error.params, default=str)],
                },
                schema=ISSUE_SCHEMA,
            )
        )

    # --- Cells -------------------------------------------------------------------------------
    frame = frame.with_columns(
        pl.col("worker_id").fill_null("").str.to_uppercase().str.replace_all(r"[\s-]", ""),
    )
    parsed_columns: dict[str, pl.Series] = {}
    for column, parser in (
        ("days", fileformat.parse_int),
        ("absence_days", fileformat.parse_int),
        ("incapacity_days", fileformat.parse_int),
        ("daily_salary", fileformat.parse_money),
        ("movement_date", fileformat.parse_date),
    ):
        values, errors = parser(frame[column])
        parsed_columns[f"{column}_value"] = values
        parsed_columns[f"{column}_error"] = errors
    frame = frame.with_columns(**parsed_columns)
    for column in ("days", "absence_days", "incapacity_days", "daily_salary", "movement_date"):
        error_column = f"{column}_error"
        for code in frame[error_column].drop_nulls().unique().to_list():
            issues.add(frame, pl.col(error_column) == code, column=column, code=code)
    for column in ("worker_id", "given_names", "days", "daily_salary"):
        issues.add(frame, _blank(column), column=column, code="required")
    issues.add(
        frame,
        _blank("paternal_surname") & _blank("maternal_surname"),
        column="paternal_surname",
        code="required",
    )
    frame = frame.with_columns(
        pl.col("absence_days_value").fill_null(0),
        pl.col("incapacity_days_value").fill_null(0),
    )

    # --- Worker ------------------------------------------------------------------------------
    is_curp = pl.col("worker_id").str.contains(CURP_PATTERN)
    is_nss = pl.col("worker_id").str.contains(NSS_PATTERN)
    issues.add(
        frame,
        ~_blank("worker_id") & ~is_curp & ~is_nss,
        column="worker_id",
        code="identifier_format",
    )
    well_formed = frame.filter(is_curp | is_nss)["worker_id"]
    known = registry_lookup(well_formed)
    frame = frame.join(known, on="worker_id", how="left", coalesce=True)
    unknown = frame.filter((is_curp | is_nss) & pl.col("person_id").is_null())
    request_rows: list[int] = []
    if unknown.height:
        reasons: dict[str, str] = {}
        for value in unknown["worker_id"].unique().to_list():
            try:
                (validate_curp if len(value) == 18 else validate_nss)(value)
            except IdentifierInvalid as invalid:
                reasons[value] = str(invalid.message)
        bad_digit = pl.col("worker_id").is_in(list(reasons))
        issues.add(
            unknown,
            bad_digit,
            column="worker_id",
            code="identifier_check_digit",
            params=pl.struct(
                pl.col("worker_id")
                .replace_strict(reasons, default="", return_dtype=pl.String)
                .alias("reason")
            ).struct.json_encode(),
        )
        code = "worker_unknown_request" if unknown_worker == "request" else "worker_unknown"
        issues.add(unknown, ~bad_digit, column="worker_id", code=code)
        if code == "worker_unknown_request":
            request_rows = unknown.filter(~bad_digit)["row"].to_list()

    # A worker twice: by person where known, by identifier as written otherwise (one person
    # may appear once by CURP and once by NSS).
    frame = frame.with_columns(
        pl.coalesce(pl.col("person_id").cast(pl.String), pl.col("worker_id")).alias("_worker_key")
    )
    frame = frame.with_columns(
        pl.col("row").first().over("_worker_key").alias("_first_row"),
    )
    issues.add(
        frame,
        ~_blank("worker_id") & (pl.col("row") != pl.col("_first_row")),
        column="worker_id",
        code="duplicate_worker",
        params=pl.struct(pl.col("_first_row").alias("first_row")).struct.json_encode(),
    )

    frame = _fold_columns(frame, ["paternal_surname", "maternal_surname", "given_names"])
    name_key = pl.concat_str(
        [
            pl.when(pl.col(f"{c}_folded") != "").then(pl.col(f"{c}_folded"))
            for c in ("paternal_surname", "maternal_surname", "given_names")
        ],
        separator=" ",
        ignore_nulls=True,
    )
    issues.add(
        frame,
        pl.col("person_id").is_not_null() & (name_key != pl.col("normalized_name")),
        column="paternal_surname",
        code="name_mismatch",
        value=pl.concat_str(
            [pl.col("paternal_surname"), pl.col("maternal_surname"), pl.col("given_names")],
            separator=" ",
            ignore_nulls=True,
        ),
    )

    # --- Days and salary -----------------------------------------------------------------------
    days = pl.col("days_value")
    issues.add(
        frame,
        days.is_not_null() & ((days < 0) | (days > month_days)),
        column="days",
        code="days_out_of_range",
        params={"max": month_days},
    )
    issues.add(
        frame,
        pl.col("absence_days_value") > 7,
        column="absence_days",
        code="absence_too_many",
        params={"max": 7},
    )
    issues.add(
        frame,
        days.is_not_null()
        & (pl.col("absence_days_value") + pl.col("incapacity_days_value") > days),
        column="absence_days",
        code="absence_exceeds_days",
    )
    minimum_cents = int(Decimal(parameters[MINIMUM_WAGE]) * 100)
    cap = (Decimal(parameters[CAP_UMA]) * Decimal(parameters[UMA])).quantize(Decimal("0.01"))
    salary = pl.col("daily_salary_value")
    issues.add(
        frame,
        salary.is_not_null() & (salary < minimum_cents),
        column="daily_salary",
        code="salary_below_minimum",
        params={"minimum": str(parameters[MINIMUM_WAGE])},
    )
    issues.add(
        frame,
        salary.is_not_null() & (salary > int(cap * 100)),
        column="daily_salary",
        code="salary_above_cap",
        params={"cap": str(cap)},
    )

    # --- Movements and employment ----------------------------------------------------------------
    # A handful of distinct values: fold each once, then map the column.
    written = frame["movement"].fill_null("").unique().to_list()
    meaning = {value: MOVEMENT_WORDS.get(fold(value)) for value in written}
    frame = frame.with_columns(
        pl.col("movement")
        .fill_null("")
        .replace_strict(meaning, default=None, return_dtype=pl.String)
        .alias("movement_value")
    )
    issues.add(
        frame, pl.col("movement_value").is_null(), column="movement", code="movement_unknown"
    )
    has_movement = pl.col("movement_value").fill_null("") != ""
    movement_date = pl.col("movement_date_value")
    issues.add(
        frame,
        has_movement & _blank("movement_date"),
        column="movement_date",
        code="movement_date_required",
    )
    issues.add(
        frame,
        movement_date.is_not_null() & ((movement_date < start) | (movement_date > end)),
        column="movement_date",
        code="movement_date_outside_period",
    )
    issues.add(
        frame,
        (pl.col("movement_value") == "") & ~_blank("movement_date"),
        column="movement",
        code="movement_missing",
    )
    employments = employments_lookup(employer_id, start, end)
    frame = frame.join(employments, on="person_id", how="left", coalesce=True)
    hire = pl.col("movement_value") == "hire"
    employed = pl.col("employment_id").is_not_null()
    # A hire of someone whose employment is still open on the hire date.
    issues.add(
        frame,
        hire
        & employed
        & movement_date.is_not_null()
        & (pl.col("employment_end").is_null() | (pl.col("employment_end") >= movement_date))
        & (pl.col("employment_start") <= movement_date),
        column="movement",
        code="already_employed",
    )
    issues.add(
        frame,
        pl.col("person_id").is_not_null() & ~hire & ~employed,
        column="movement",
        code="no_employment",
    )
    issues.add(
        frame,
        (pl.col("movement_value") == "separation")
        & employed
        & movement_date.is_not_null()
        & (movement_date < pl.col("employment_start")),
        column="movement_date",
        code="separation_before_start",
    )
    # The span of the month the employment covers: from the later of the month's start and the
    # hire date, to the earlier of the month's end and the separation date.
    frame = frame.with_columns(
        pl.when(hire)
        .then(movement_date)
        .otherwise(pl.max_horizontal(pl.col("employment_start"), pl.lit(start)))
        .alias("covered_from"),
        pl.when(pl.col("movement_value") == "separation")
        .then(movement_date)
        .when(pl.col("employment_end").is_not_null() & ~hire)
        .then(pl.min_horizontal(pl.col("employment_end"), pl.lit(end)))
        .otherwise(pl.lit(end))
        .alias("covered_to"),
    )
    frame = frame.with_columns(
        ((pl.col("covered_to") - pl.col("covered_from")).dt.total_days() + 1)
        .clip(lower_bound=0)
        .alias("covered_days")
    )
    issues.add(
        frame,
        days.is_not_null()
        & pl.col("covered_days").is_not_null()
        & (days > pl.col("covered_days"))
        & (days <= month_days),
        column="days",
        code="days_exceed_employment",
        params=pl.struct(
            days.alias("days"), pl.col("covered_days").alias("covered")
        ).struct.json_encode(),
    )

    # --- Outcome ---------------------------------------------------------------------------------
    issue_frame = issues.frame()
    error_rows = issue_frame.filter(pl.col("severity") == "error")["row"].unique()
    valid = frame.filter(
        ~pl.col("row").is_in(error_rows.implode()) & pl.col("person_id").is_not_null()
    )
    computed = bulk_calculation.compute_contributions(
        valid.select(
            pl.col("daily_salary_value").alias("salary_cents"),
            days.alias("days"),
            pl.col("absence_days_value").alias("absence_days"),
            pl.col("incapacity_days_value").alias("incapacity_days"),
        ),
        parameters=parameters,
        period_days=month_days,
    )
    share_columns = [name for name, _branch, _side in bulk_calculation.SHARE_COLUMNS]
    lines = pl.concat(
        [
            valid.select(
                "row",
                "person_id",
                "worker_id",
                pl.col("movement_value").alias("movement"),
                movement_date.alias("movement_date"),
                "covered_from",
                "covered_to",
            ),
            computed.select(
                "days",
                "absence_days",
                "incapacity_days",
                "salary_cents",
                "base_cents",
                *share_columns,
                "employer_total_cents",
                "worker_total_cents",
            ),
        ],
        how="horizontal",
    )
    statement = statement_of(lines)
    requests = None
    if request_rows:
        requests = frame.filter(pl.col("row").is_in(request_rows)).select(
            "row", "worker_id", "paternal_surname", "maternal_surname", "given_names"
        )
    return Validated(
        lines=lines,
        issues=issue_frame,
        error_rows=error_rows.len(),
        line_count=frame.height,
        statement=statement,
        requests=requests,
    )


def statement_of(lines: pl.DataFrame) -> dict[str, Any]:
    """The summary statement of staged lines: workers, salary mass, and per branch the employer
    and worker shares, in centavos."""
    branches: dict[str, dict[str, int]] = {}
    sums = lines.select(
        [pl.col(name).sum() for name, _b, _s in bulk_calculation.SHARE_COLUMNS]
        + [
            (pl.col("salary_cents") * pl.col("days")).sum().alias("_mass"),
            pl.col("employer_total_cents").sum().alias("_employer"),
            pl.col("worker_total_cents").sum().alias("_worker"),
        ]
    ).row(0, named=True)
    for name, branch, side in bulk_calculation.SHARE_COLUMNS:
        branches.setdefault(branch, {"employer": 0, "worker": 0})[side] += int(sums[name] or 0)
    return {
        "workers": lines.height,
        "salary_mass": int(sums["_mass"] or 0),
        "employer": int(sums["_employer"] or 0),
        "worker": int(sums["_worker"] or 0),
        "branches": branches,
        # Hires, separations and salary changes to apply when posting.
        "movements": lines.filter(pl.col("movement").fill_null("") != "").height,
    }


def line_rows_for_insert(lines: pl.DataFrame, declaration_id: int) -> pl.DataFrame:
    """Staged lines in ``contributions_declarationline``'s columns, money in centavos."""
    share_columns = [name for name, _b, _s in bulk_calculation.SHARE_COLUMNS]
    return lines.select(
        pl.lit(declaration_id).alias("declaration_id"),
        "row",
        "person_id",
        "worker_id",
        pl.col("movement").fill_null(""),
        "movement_date",
        "covered_from",
        "covered_to",
        "days",
        "absence_days",
        "incapacity_days",
        pl.col("salary_cents").alias("daily_salary_cents"),
        "base_cents",
        *[pl.col(name).alias(f"{name}_cents") for name in share_columns],
        "employer_total_cents",
        "worker_total_cents",
    )
