"""The contributions of a whole declaration at once: the vectorised twin of ``calculation``.

``compute_contributions`` takes a Polars frame of worker lines and returns it with the daily base,
the base's flags and one column of centavos per branch share, computed with the rules of
``calculation.line_contribution`` (see that module's docstring) and giving, line for line, the
same centavos. It is exact: every rate is turned into an integer of millionths of a percent and
every amount of money into integer centavos, so the work is integer multiplication and floor
division, with no floating point anywhere.

Rounding. ``calculation`` rounds each share half up to centavos from its exact value (the Decimal
products it quantizes are exact: a 28-digit context holds them). Here a share is the rational
``n / d`` with ``n = base_cents × rate_micro × days`` (``rate_micro`` = percent × 10**6) and
``d = 10**8``, since pesos = (base_cents / 100) × (rate_micro / 10**6) / 100 × days, and centavos
are 100 times that. For ``n >= 0`` and even ``d``, half up to an integer is
``floor(n / d + 1/2) = (n + d // 2) // d``: exactly Decimal's ROUND_HALF_UP.

Input. The lines are assumed validated, as ``line_contribution`` would require: ``salary_cents``
positive, ``0 <= days <= period_days``, ``absence_days`` and ``incapacity_days`` not negative,
at most ``MAX_ABSENCE_DAYS`` absence days, absence + incapacity at most ``days``. A line with a
null ``salary_cents``, ``days``, ``absence_days`` or ``incapacity_days`` (a line validation
refused) gets null amounts instead. A non-null line breaking those rules is refused with
``ValueError`` (one cheap pass over the frame), because outside them the integer arithmetic could
round wrongly (negative numerators) or overflow.

Overflow (Int64, up to 9.2 × 10**18). The base is at most the cap, about 300,000 centavos (25 UMA
of 2026 is 293,275); rates are at most 15% (work risks), 1.5 × 10**7 millionths, say 3 × 10**7
with room; days at most 31: ``n <= 3 × 10**5 × 3 × 10**7 × 31 ≈ 2.8 × 10**14``, some 30,000 times
below the limit. ``compute_contributions`` checks the actual bound from the parameters before it
starts and raises ``ValueError`` if it is ever reached (say, a parameter typed a thousand times
too large). Sums over a million lines stay below 10**13 centavos.

The worker's share of the branches where only the employer pays (the fixed fee, work risks,
childcare, retirement, housing) is always zero and has no column.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

import polars as pl

from pilar.contributions.calculation import (
    CAP_UMA,
    CESANTIA_BANDS,
    CESANTIA_EMPLOYER,
    EXCESS_THRESHOLD_UMA,
    MAX_ABSENCE_DAYS,
    MINIMUM_WAGE,
    UMA,
    Branch,
    MissingParameter,
)

EMPLOYER = "employer"
WORKER = "worker"

# (column, branch code, side): one Int64 column of centavos per share that can be non-zero.
SHARE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("sm_fixed_er", Branch.SICKNESS_IN_KIND_FIXED, EMPLOYER),
    ("sm_excess_er", Branch.SICKNESS_IN_KIND_EXCESS, EMPLOYER),
    ("sm_excess_wk", Branch.SICKNESS_IN_KIND_EXCESS, WORKER),
    ("sm_cash_er", Branch.SICKNESS_CASH, EMPLOYER),
    ("sm_cash_wk", Branch.SICKNESS_CASH, WORKER),
    ("sm_pens_er", Branch.SICKNESS_PENSIONERS, EMPLOYER),
    ("sm_pens_wk", Branch.SICKNESS_PENSIONERS, WORKER),
    ("dl_er", Branch.DISABILITY_LIFE, EMPLOYER),
    ("dl_wk", Branch.DISABILITY_LIFE, WORKER),
    ("wr_er", Branch.WORK_RISKS, EMPLOYER),
    ("cc_er", Branch.CHILDCARE, EMPLOYER),
    ("ret_er", Branch.RETIREMENT, EMPLOYER),
    ("cv_er", Branch.OLD_AGE_CESANTIA, EMPLOYER),
    ("cv_wk", Branch.OLD_AGE_CESANTIA, WORKER),
    ("hou_er", Branch.HOUSING, EMPLOYER),
)
# Every branch, in statement order (``Branch``'s order).
BRANCHES: tuple[str, ...] = (
    Branch.SICKNESS_IN_KIND_FIXED,
    Branch.SICKNESS_IN_KIND_EXCESS,
    Branch.SICKNESS_CASH,
    Branch.SICKNESS_PENSIONERS,
    Branch.DISABILITY_LIFE,
    Branch.WORK_RISKS,
    Branch.CHILDCARE,
    Branch.RETIREMENT,
    Branch.OLD_AGE_CESANTIA,
    Branch.HOUSING,
)
INPUT_COLUMNS = ("salary_cents", "days", "absence_days", "incapacity_days")
# The keys of ``statement_totals`` besides the branch codes.
TOTAL = "total"
SUMMARY = "summary"

_RATE_SCALE = 10**6  # a percent rate as an integer of millionths of a percent
_DENOMINATOR = 10**8  # centavos × millionths of a percent × days → centavos
_INT64_MAX = 2**63 - 1


def _parameter(parameters: Mapping[str, Decimal], code: str) -> Decimal:
    try:
        return Decimal(parameters[code])
    except KeyError:
        raise MissingParameter(code) from None


def _scaled(value: Decimal, scale: int, what: str) -> int:
    """``value × scale`` as an integer; ``ValueError`` if it is not whole (too many decimals)."""
    scaled = Fraction(value) * scale
    if scaled.denominator != 1 or scaled < 0:
        raise ValueError(
            f"{what} = {value}: expected a non-negative value with at most "
            f"{len(str(scale)) - 1} decimals"
        )
    return int(scaled)


def _rate(value: Decimal, code: str) -> int:
    return _scaled(value, _RATE_SCALE, f"the rate {code}")


def _floor(value: Fraction) -> int:
    return value.numerator // value.denominator


def _half_up(value: Fraction) -> int:
    # Half up to an integer, as Decimal's quantize(ROUND_HALF_UP) does for a non-negative value.
    return _floor(value + Fraction(1, 2))


def compute_contributions(
    frame: pl.DataFrame,
    *,
    parameters: Mapping[str, Decimal],
    period_days: int,
    work_risk_rate: Decimal | None = None,
) -> pl.DataFrame:
    """Every line's base and shares, in centavos (module docstring).

    ``frame`` has the Int64 (or narrower integer) columns ``salary_cents`` (the declared daily
    SBC), ``days``, ``absence_days`` and ``incapacity_days``; ``parameters`` is
    ``parameter_snapshot(on=first day of the period)``; ``work_risk_rate`` is the employer's
    premium in percent for the whole declaration (None: the parameter's default).

    Returns ``frame`` with ``base_cents``, ``floor_applied``, ``cap_applied``,
    ``paid_by_employer``, the ``SHARE_COLUMNS`` and ``employer_total_cents``,
    ``worker_total_cents`` added. Raises ``MissingParameter`` for a parameter the snapshot lacks
    and ``ValueError`` for a rate with more than 6 decimals, a minimum wage or UMA not in whole
    centavos, a missing column, or a non-null line outside the validated ranges.
    """
    missing = [name for name in INPUT_COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks the columns {', '.join(missing)}")

    # --- Parameters, as exact integers -------------------------------------------------------
    minimum_wage = _scaled(_parameter(parameters, MINIMUM_WAGE), 100, MINIMUM_WAGE)
    uma = _scaled(_parameter(parameters, UMA), 100, UMA)
    # calculation: ``cap = sbc_cap_uma × uma``, exact; ``cap_applied = sbc > cap``; the base is
    # ``min(max(sbc, minimum_wage), cap)`` quantized half up. Quantizing is monotone, so it
    # commutes with min and max: base = min(max(sbc, q(minimum_wage)), q(cap)), and the minimum
    # wage is already whole centavos. For a whole number of centavos s, s > cap ⟺ s > ⌊cap⌋.
    cap = Fraction(_parameter(parameters, CAP_UMA)) * uma  # centavos, maybe fractional
    cap_floor = _floor(cap)
    cap_base = _half_up(cap)
    # The excess threshold (3 UMA) is not quantized in calculation: the excess keeps any
    # fraction of a centavo. Work in units of 1/scale centavo, scale the smallest power of ten
    # that makes the threshold whole (1 with the seeded values).
    threshold = Fraction(_parameter(parameters, EXCESS_THRESHOLD_UMA)) * uma
    excess_scale = 1
    while (threshold * excess_scale).denominator != 1:
        excess_scale *= 10
    threshold_scaled = int(threshold * excess_scale)

    def rate(code: str) -> int:
        full = f"rate.{code}"
        return _rate(_parameter(parameters, full), full)

    fixed_er = rate("sickness_maternity.in_kind_fixed.employer")
    excess_er = rate("sickness_maternity.in_kind_excess.employer")
    excess_wk = rate("sickness_maternity.in_kind_excess.worker")
    cash_er = rate("sickness_maternity.cash.employer")
    cash_wk = rate("sickness_maternity.cash.worker")
    pens_er = rate("sickness_maternity.pensioners.employer")
    pens_wk = rate("sickness_maternity.pensioners.worker")
    dl_er = rate("disability_life.employer")
    dl_wk = rate("disability_life.worker")
    wr_er = (
        _rate(work_risk_rate, "work_risk_rate")
        if work_risk_rate is not None
        else rate("work_risks.employer")
    )
    cc_er = rate("childcare.employer")
    ret_er = rate("retirement.employer")
    cv_wk = rate("old_age_cesantia.worker")
    hou_er = rate("housing.employer")

    # The employer's cesantía rate: (upper limit in centavos or None, rate). As in
    # ``cesantia_employer_rate``: a base at or below the minimum wage takes the first band;
    # above it, the first band whose limit × UMA the base does not exceed. The limits are exact:
    # base ≤ upper × uma ⟺ base_cents ≤ ⌊upper × uma_cents⌋ (base_cents × 100 ≤ upper_hundredths
    # × uma_cents). calculation compares base / uma, rounded to 28 digits, with the limit; with
    # whole centavos the two differ by at least 1 / (2 × uma_cents) when not equal, far above
    # that rounding, so the comparisons agree.
    banded_code = f"{CESANTIA_EMPLOYER}.{CESANTIA_BANDS[0][0]}"
    cesantia: list[tuple[int | None, int]]
    if banded_code in parameters:
        cesantia = [(minimum_wage, _rate(_parameter(parameters, banded_code), banded_code))]
        for suffix, upper in CESANTIA_BANDS[1:]:
            code = f"{CESANTIA_EMPLOYER}.{suffix}"
            limit = None if upper is None else _floor(Fraction(upper) * uma)
            cesantia.append((limit, _rate(_parameter(parameters, code), code)))
    else:  # before 2023: one rate whatever the base
        cesantia = [(None, _rate(_parameter(parameters, CESANTIA_EMPLOYER), CESANTIA_EMPLOYER))]
    cv_rates = [band_rate for _, band_rate in cesantia]

    # --- Overflow guard (module docstring) -----------------------------------------------------
    largest_base = max(cap_base * excess_scale, uma, minimum_wage)
    largest_rate = max(
        fixed_er, excess_er, excess_wk, cash_er, cash_wk, pens_er, pens_wk, dl_er, dl_wk, wr_er,
        cc_er, ret_er, cv_wk, hou_er, *cv_rates,
    )  # fmt: skip
    # The largest numerator ``amount`` forms, plus its rounding half-denominator.
    if largest_base * largest_rate * period_days + _DENOMINATOR * excess_scale > _INT64_MAX:
        raise ValueError("the parameters are too large for exact Int64 arithmetic")

    # --- The lines must be in the validated ranges -------------------------------------------
    salary = pl.col("salary_cents").cast(pl.Int64)
    days = pl.col("days").cast(pl.Int64)
    absence = pl.col("absence_days").cast(pl.Int64)
    incapacity = pl.col("incapacity_days").cast(pl.Int64)
    out_of_range = (
        (salary <= 0)
        | (days < 0)
        | (days > period_days)
        | (absence < 0)
        | (absence > MAX_ABSENCE_DAYS)
        | (incapacity < 0)
        | (absence + incapacity > days)
    )
    bad = frame.select(out_of_range.fill_null(False).sum()).item()
    if bad:
        raise ValueError(f"{bad} lines are outside the validated ranges (module docstring)")

    # --- The lines ----------------------------------------------------------------------------
    base = pl.col("base_cents")
    # Days each group of branches is paid for (calculation's docstring, "Days").
    sickness_days = days - incapacity
    other_days = days - incapacity - absence
    housing_days = days - absence

    def amount(cents: pl.Expr, rate_micro: int, paid_days: pl.Expr, scale: int = 1) -> pl.Expr:
        denominator = _DENOMINATOR * scale
        return (cents * rate_micro * paid_days + denominator // 2) // denominator

    # In 1/excess_scale centavos; clip (unlike max_horizontal) keeps a null base null.
    excess = (base * excess_scale - threshold_scaled).clip(lower_bound=0)
    uma_per_line = pl.when(base.is_not_null()).then(pl.lit(uma, pl.Int64))
    cv_rate: pl.Expr
    if len(cesantia) == 1:
        cv_rate = pl.lit(cv_rates[0], pl.Int64)
    else:
        # Built from the last band backwards: nested when/then, first match wins.
        cv_rate = pl.lit(cesantia[-1][1], pl.Int64)
        for limit, band_rate in reversed(cesantia[:-1]):
            cv_rate = pl.when(base <= limit).then(pl.lit(band_rate, pl.Int64)).otherwise(cv_rate)

    raw = {
        "sm_fixed_er": amount(uma_per_line, fixed_er, sickness_days),
        "sm_excess_er": amount(excess, excess_er, sickness_days, excess_scale),
        "sm_excess_wk": amount(excess, excess_wk, sickness_days, excess_scale),
        "sm_cash_er": amount(base, cash_er, sickness_days),
        "sm_cash_wk": amount(base, cash_wk, sickness_days),
        "sm_pens_er": amount(base, pens_er, sickness_days),
        "sm_pens_wk": amount(base, pens_wk, sickness_days),
        "dl_er": amount(base, dl_er, other_days),
        "dl_wk": amount(base, dl_wk, other_days),
        "wr_er": amount(base, wr_er, other_days),
        "cc_er": amount(base, cc_er, other_days),
        "ret_er": amount(base, ret_er, other_days),
        "cv_er": (base * cv_rate * other_days + _DENOMINATOR // 2) // _DENOMINATOR,
        "cv_wk": amount(base, cv_wk, other_days),
        "hou_er": amount(base, hou_er, housing_days),
    }
    # Art. 36: on the minimum wage the employer pays the worker's share too.
    paid = pl.col("paid_by_employer")
    shares: dict[str, pl.Expr] = {}
    for column, _branch, side in SHARE_COLUMNS:
        if side == EMPLOYER:
            worker_column = column.removesuffix("_er") + "_wk"
            if worker_column in raw:
                shares[column] = (
                    pl.when(paid).then(pl.col(column) + pl.col(worker_column)).otherwise(column)
                )
        else:
            shares[column] = pl.when(paid).then(pl.lit(0, pl.Int64)).otherwise(column)

    def total(side: str) -> pl.Expr:
        # Plain ``+`` rather than sum_horizontal, which would skip nulls.
        columns = [pl.col(c) for c, _, s in SHARE_COLUMNS if s == side]
        result = columns[0]
        for column_expr in columns[1:]:
            result = result + column_expr
        return result

    return (
        frame.lazy()
        .with_columns(
            pl.when(salary < minimum_wage)
            .then(pl.lit(minimum_wage, pl.Int64))
            .otherwise(salary)
            .clip(upper_bound=cap_base)
            .alias("base_cents"),
            (salary < minimum_wage).alias("floor_applied"),
            (salary > cap_floor).alias("cap_applied"),
        )
        .with_columns((base <= minimum_wage).alias("paid_by_employer"))
        .with_columns(**raw)
        .with_columns(**shares)
        .with_columns(
            total(EMPLOYER).alias("employer_total_cents"),
            total(WORKER).alias("worker_total_cents"),
        )
        .collect()
    )


def statement_totals(frame: pl.DataFrame) -> dict[str, dict[str, int]]:
    """The declaration's summary from ``compute_contributions``' result, in centavos: for each
    branch code (``BRANCHES``), ``{"employer": …, "worker": …}``; under ``TOTAL`` the same for
    all branches; under ``SUMMARY``, ``workers`` (the lines computed) and ``salary_mass_cents``
    (the declared SBC × days of those lines, before floor and cap). Lines with null amounts
    (refused by validation) are left out of everything."""
    computed = frame.filter(pl.col("employer_total_cents").is_not_null())
    sums = computed.select(
        *(pl.col(column).sum() for column, _, _ in SHARE_COLUMNS),
        pl.col("employer_total_cents").sum(),
        pl.col("worker_total_cents").sum(),
        (pl.col("salary_cents").cast(pl.Int64) * pl.col("days").cast(pl.Int64))
        .sum()
        .alias("salary_mass_cents"),
        pl.len().alias("workers"),
    ).row(0, named=True)
    result: dict[str, dict[str, int]] = {branch: {EMPLOYER: 0, WORKER: 0} for branch in BRANCHES}
    for column, branch, side in SHARE_COLUMNS:
        result[branch][side] += int(sums[column] or 0)
    result[TOTAL] = {
        EMPLOYER: int(sums["employer_total_cents"] or 0),
        WORKER: int(sums["worker_total_cents"] or 0),
    }
    result[SUMMARY] = {
        "workers": int(sums["workers"]),
        "salary_mass_cents": int(sums["salary_mass_cents"] or 0),
    }
    return result


__all__ = [
    "BRANCHES",
    "EMPLOYER",
    "SHARE_COLUMNS",
    "SUMMARY",
    "TOTAL",
    "WORKER",
    "compute_contributions",
    "statement_totals",
]
