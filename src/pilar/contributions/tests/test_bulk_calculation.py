"""The vectorised calculation against the Decimal one, line for line: random lines (Hypothesis)
under the seeded parameters of three dates and under hand-made snapshots that reach the corners
the seeded ones cannot, the boundaries written out, the statement totals, and a million lines."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pilar.contributions.bulk_calculation import (
    BRANCHES,
    EMPLOYER,
    SHARE_COLUMNS,
    SUMMARY,
    TOTAL,
    WORKER,
    compute_contributions,
    statement_totals,
)
from pilar.contributions.calculation import (
    CESANTIA_BANDS,
    Branch,
    LineContribution,
    MissingParameter,
    WorkerLine,
    line_contribution,
)
from pilar.contributions.parameters import parameter_snapshot
from pilar.contributions.tests.test_calculation import PARAMETERS_2025

Line = tuple[int, int, int, int]  # salary_cents, days, absence_days, incapacity_days

BANDED = "rate.old_age_cesantia.employer."
SINGLE = "rate.old_age_cesantia.employer"

# Before 2023: the single cesantía rate.
PARAMETERS_2022 = {
    **{code: value for code, value in PARAMETERS_2025.items() if not code.startswith(BANDED)},
    "minimum_wage_daily": Decimal("172.87"),
    "uma_daily": Decimal("96.22"),
    SINGLE: Decimal("3.150"),
}
# A minimum wage below 1.50 UMA (as before 2019), so every cesantía band can be reached.
PARAMETERS_LOW_MINIMUM = {**PARAMETERS_2025, "minimum_wage_daily": Decimal("141.70")}
# A UMA of odd centavos and multiples with decimals: the band limits, the cap (25.1 × 113.15 =
# 2840.065, quantized half up to 2840.07) and the excess threshold (3.3 × 113.15 = 373.395) fall
# between centavos. Rates with six decimals.
PARAMETERS_ODD = {
    **PARAMETERS_LOW_MINIMUM,
    "uma_daily": Decimal("113.15"),
    "sbc_cap_uma": Decimal("25.1"),
    "sickness_maternity.excess_threshold_uma": Decimal("3.3"),
    "rate.sickness_maternity.cash.worker": Decimal("0.250001"),
    "rate.disability_life.employer": Decimal("1.749999"),
}

SEEDED_DATES = (
    datetime.date(2022, 6, 1),
    datetime.date(2025, 1, 1),
    datetime.date(2026, 3, 1),
)


def _seeded_snapshot(day: datetime.date) -> dict[str, Decimal]:
    """The snapshot the seed migration gives. Before 2023 the store has the minimum wage, the
    UMA, the cap, the threshold and the single cesantía rate, but not the other rates (seeded
    from 2023 only, believed unchanged since 2007): those are taken from 2023."""
    snapshot = parameter_snapshot(on=day)
    if day.year < 2023:
        assert SINGLE in snapshot
        assert not any(code.startswith(BANDED) for code in snapshot)
        for code, value in parameter_snapshot(on=datetime.date(2023, 1, 1)).items():
            if code.startswith("rate.") and not code.startswith(BANDED):
                snapshot.setdefault(code, value)
    else:
        assert any(code.startswith(BANDED) for code in snapshot)
    return snapshot


def _cents(value: Decimal) -> int:
    cents = value * 100
    assert cents == cents.to_integral_value()
    return int(cents)


def _frame(lines: list[Line]) -> pl.DataFrame:
    return pl.DataFrame(
        lines,
        schema={
            "salary_cents": pl.Int64,
            "days": pl.Int64,
            "absence_days": pl.Int64,
            "incapacity_days": pl.Int64,
        },
        orient="row",
    )


def _decimal(
    line: Line, parameters: Mapping[str, Decimal], period_days: int, work_risk_rate: Decimal | None
) -> LineContribution:
    salary, days, absence, incapacity = line
    return line_contribution(
        WorkerLine(Decimal(salary) / 100, days, absence, incapacity, work_risk_rate),
        parameters=parameters,
        period_days=period_days,
    )


def _assert_rows_match(
    lines: list[Line],
    parameters: Mapping[str, Decimal],
    period_days: int,
    work_risk_rate: Decimal | None = None,
) -> pl.DataFrame:
    result = compute_contributions(
        _frame(lines),
        parameters=parameters,
        period_days=period_days,
        work_risk_rate=work_risk_rate,
    )
    assert result.height == len(lines)
    for line, row in zip(lines, result.iter_rows(named=True), strict=True):
        expected = _decimal(line, parameters, period_days, work_risk_rate)
        got = {
            "base_cents": row["base_cents"],
            "floor_applied": row["floor_applied"],
            "cap_applied": row["cap_applied"],
            "paid_by_employer": row["paid_by_employer"],
            "employer_total_cents": row["employer_total_cents"],
            "worker_total_cents": row["worker_total_cents"],
        }
        want: dict[str, object] = {
            "base_cents": _cents(expected.base),
            "floor_applied": expected.floor_applied,
            "cap_applied": expected.cap_applied,
            "paid_by_employer": expected.worker_share_paid_by_employer,
            "employer_total_cents": _cents(expected.employer_total),
            "worker_total_cents": _cents(expected.worker_total),
        }
        for column, branch, side in SHARE_COLUMNS:
            got[column] = row[column]
            want[column] = _cents(getattr(expected.share(branch), side))
        assert got == want, line
        # The shares without a column are the ones that are always zero.
        with_worker_column = {branch for _, branch, side in SHARE_COLUMNS if side == WORKER}
        for share in expected.shares:
            if share.branch not in with_worker_column:
                assert share.worker == 0
    return result


def _special_salaries(parameters: Mapping[str, Decimal]) -> list[int]:
    """Salaries in centavos at and around every limit the rules compare with."""
    uma = parameters["uma_daily"]
    minimum_wage = _cents(parameters["minimum_wage_daily"])
    limits = [
        (parameters["sbc_cap_uma"] * uma * 100).to_integral_value(ROUND_FLOOR),
        (parameters["sickness_maternity.excess_threshold_uma"] * uma * 100).to_integral_value(
            ROUND_FLOOR
        ),
        *(
            (upper * uma * 100).to_integral_value(ROUND_FLOOR)
            for _, upper in CESANTIA_BANDS
            if upper
        ),
    ]
    values = {1, minimum_wage - 1, minimum_wage, minimum_wage + 1}
    for limit in limits:
        values.update({int(limit) - 1, int(limit), int(limit) + 1, int(limit) + 2})
    return sorted(value for value in values if value > 0)


@st.composite
def _lines(draw: st.DrawFn, parameters: Mapping[str, Decimal], period_days: int) -> list[Line]:
    cap = int(parameters["sbc_cap_uma"] * parameters["uma_daily"] * 100)
    salary = st.one_of(
        st.sampled_from(_special_salaries(parameters)),
        st.integers(min_value=1, max_value=cap + 100_000),
    )

    @st.composite
    def line(draw: st.DrawFn) -> Line:
        days = draw(st.integers(min_value=0, max_value=period_days))
        absence = draw(st.integers(min_value=0, max_value=min(7, days)))
        incapacity = draw(st.integers(min_value=0, max_value=days - absence))
        return (draw(salary), days, absence, incapacity)

    return draw(st.lists(line(), min_size=1, max_size=80))


WORK_RISK_RATES = st.sampled_from(
    [None, Decimal("0.5"), Decimal("0.54355"), Decimal("7.58875"), Decimal("15.000000")]
)


@pytest.mark.django_db
@pytest.mark.parametrize("day", SEEDED_DATES, ids=str)
def test_seeded_parameters_match_the_decimal_calculation(day: datetime.date) -> None:
    # The database is read once, here; the Hypothesis test runs inside this test (a
    # ``django_db`` test decorated with ``given`` would be re-entered for every example).
    parameters = _seeded_snapshot(day)

    @settings(max_examples=40, deadline=None)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        period_days = data.draw(st.integers(min_value=28, max_value=31), label="period_days")
        lines = data.draw(_lines(parameters, period_days), label="lines")
        work_risk_rate = data.draw(WORK_RISK_RATES, label="work_risk_rate")
        _assert_rows_match(lines, parameters, period_days, work_risk_rate)

    check()


@pytest.mark.parametrize(
    "parameters",
    [PARAMETERS_2022, PARAMETERS_2025, PARAMETERS_LOW_MINIMUM, PARAMETERS_ODD],
    ids=["2022", "2025", "low-minimum", "odd"],
)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_hand_made_parameters_match_the_decimal_calculation(
    parameters: dict[str, Decimal], data: st.DataObject
) -> None:
    period_days = data.draw(st.integers(min_value=28, max_value=31), label="period_days")
    lines = data.draw(_lines(parameters, period_days), label="lines")
    work_risk_rate = data.draw(WORK_RISK_RATES, label="work_risk_rate")
    _assert_rows_match(lines, parameters, period_days, work_risk_rate)


# --- Boundaries, written out (2025: minimum wage 278.80, UMA 113.14) ---------------------------


def test_the_worked_example_of_the_decimal_tests() -> None:
    # test_calculation.test_middle_salary_full_month: 500.00 for 31 days.
    row = _assert_rows_match([(50_000, 31, 0, 0)], PARAMETERS_2025, 31).row(0, named=True)
    assert row["sm_fixed_er"] == 71_550
    assert (row["sm_excess_er"], row["sm_excess_wk"]) == (5_476, 1_991)
    assert (row["dl_er"], row["dl_wk"]) == (27_125, 9_688)  # 96.875 half up
    assert (row["cv_er"], row["cv_wk"]) == (99_541, 17_438)
    assert (row["employer_total_cents"], row["worker_total_cents"]) == (363_242, 38_805)


def test_exactly_the_minimum_wage() -> None:
    result = _assert_rows_match(
        [(27_879, 30, 0, 0), (27_880, 30, 0, 0), (27_881, 30, 0, 0)], PARAMETERS_2025, 30
    )
    assert result["base_cents"].to_list() == [27_880, 27_880, 27_881]
    assert result["floor_applied"].to_list() == [True, False, False]
    # On the minimum wage (raised to it or exactly it) the employer pays the worker's share.
    assert result["paid_by_employer"].to_list() == [True, True, False]
    assert result["worker_total_cents"].to_list()[:2] == [0, 0]
    # 278.80 × (0.70% + 0.25%) × 30 = 58.548 → 58.55 plus 20.91
    assert result["sm_cash_er"].to_list()[:2] == [7_946, 7_946]
    assert result["sm_cash_wk"].to_list() == [0, 0, 2_091]


def test_exactly_three_uma() -> None:
    # 3 × 113.14 = 339.42: no excess yet, and the 2.51–3.00 UMA cesantía band (5.307%).
    result = _assert_rows_match([(33_942, 31, 0, 0), (33_943, 31, 0, 0)], PARAMETERS_2025, 31)
    assert result["sm_excess_er"].to_list() == [0, 0]  # 0.01 × 1.10% × 31 rounds to 0
    # 339.42 × 5.307% × 31 = 558.40... ; 339.43 × 5.559% × 31 = 584.94...
    assert result["cv_er"].to_list() == [55_840, 58_494]


def test_exactly_twenty_five_uma() -> None:
    result = _assert_rows_match([(282_850, 31, 0, 0), (282_851, 31, 0, 0)], PARAMETERS_2025, 31)
    assert result["base_cents"].to_list() == [282_850, 282_850]
    assert result["cap_applied"].to_list() == [False, True]
    assert result["hou_er"].to_list() == [438_418, 438_418]  # 4384.175 half up


def test_the_1_50_uma_band_edge() -> None:
    # With a minimum wage under 1.50 UMA (169.71): 169.71 is in the 1.01–1.50 band (3.544%),
    # 169.72 in the next (4.426%).
    result = _assert_rows_match(
        [(16_971, 30, 0, 0), (16_972, 30, 0, 0)], PARAMETERS_LOW_MINIMUM, 30
    )
    # 169.71 × 3.544% × 30 = 180.4357...; 169.72 × 4.426% × 30 = 225.3541...
    assert result["cv_er"].to_list() == [18_044, 22_535]


def test_band_edges_between_centavos() -> None:
    # UMA 113.15: 1.50 UMA = 169.725, so 169.72 is in the lower band and 169.73 above.
    result = _assert_rows_match([(16_972, 30, 0, 0), (16_973, 30, 0, 0)], PARAMETERS_ODD, 30)
    rates = [Decimal("3.544"), Decimal("4.426")]
    expected = [
        int((Decimal(cents) * rate / 100 * 30).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        for cents, rate in zip([16_972, 16_973], rates, strict=True)
    ]
    assert result["cv_er"].to_list() == expected
    # The cap, 2840.065, is quantized half up to 2840.07; 2840.06 is not above it.
    capped = _assert_rows_match([(284_006, 31, 0, 0), (284_007, 31, 0, 0)], PARAMETERS_ODD, 31)
    assert capped["base_cents"].to_list() == [284_006, 284_007]
    assert capped["cap_applied"].to_list() == [False, True]


def test_zero_days_owe_nothing() -> None:
    result = _assert_rows_match([(50_000, 0, 0, 0), (10_000, 0, 0, 0)], PARAMETERS_2025, 31)
    for column, _, _ in SHARE_COLUMNS:
        assert result[column].to_list() == [0, 0]
    assert result["employer_total_cents"].to_list() == [0, 0]


def test_single_rate_before_2023_whatever_the_band() -> None:
    result = _assert_rows_match(
        [(17_287, 31, 0, 0), (30_000, 31, 0, 0), (200_000, 31, 0, 0)], PARAMETERS_2022, 31
    )
    # 3.150% of each base × 31
    assert result["cv_er"].to_list()[1:] == [29_295, 195_300]


def test_narrow_integer_columns_are_accepted() -> None:
    frame = _frame([(50_000, 31, 0, 0)]).cast(pl.Int32)
    result = compute_contributions(frame, parameters=PARAMETERS_2025, period_days=31)
    assert result["employer_total_cents"].to_list() == [363_242]
    assert result["salary_cents"].dtype == pl.Int32  # the input columns are left as they were


# --- Invalid lines and parameters ----------------------------------------------------------


def test_null_lines_give_nulls() -> None:
    frame = pl.DataFrame(
        {
            "salary_cents": [50_000, None, 50_000, 50_000],
            "days": [31, 31, None, 31],
            "absence_days": [0, 0, 0, None],
            "incapacity_days": [0, 0, 0, 0],
        },
        schema=dict.fromkeys(("salary_cents", "days", "absence_days", "incapacity_days"), pl.Int64),
    )
    result = compute_contributions(frame, parameters=PARAMETERS_2025, period_days=31)
    assert result["employer_total_cents"].to_list() == [363_242, None, None, None]
    assert result["worker_total_cents"].to_list() == [38_805, None, None, None]
    for column, _, _ in SHARE_COLUMNS:
        assert result[column].to_list()[1:3] == [None, None], column
    assert result["base_cents"].to_list() == [50_000, None, 50_000, 50_000]
    assert result["paid_by_employer"].to_list() == [False, None, False, False]
    totals = statement_totals(result)
    assert totals[SUMMARY] == {"workers": 1, "salary_mass_cents": 50_000 * 31}
    assert totals[TOTAL] == {EMPLOYER: 363_242, WORKER: 38_805}


@pytest.mark.parametrize(
    "line",
    [
        (50_000, 32, 0, 0),
        (50_000, -1, 0, 0),
        (50_000, 10, 6, 5),
        (50_000, 31, 8, 0),
        (50_000, 31, 0, -1),
        (0, 31, 0, 0),
    ],
)
def test_lines_outside_the_validated_ranges_are_refused(line: Line) -> None:
    with pytest.raises(ValueError, match="validated ranges"):
        compute_contributions(_frame([line]), parameters=PARAMETERS_2025, period_days=31)


def test_a_rate_with_more_than_six_decimals_is_refused() -> None:
    with pytest.raises(ValueError, match="work_risk_rate"):
        compute_contributions(
            _frame([(50_000, 31, 0, 0)]),
            parameters=PARAMETERS_2025,
            period_days=31,
            work_risk_rate=Decimal("0.5435501"),
        )
    parameters = {**PARAMETERS_2025, "rate.housing.employer": Decimal("5.0000001")}
    with pytest.raises(ValueError, match=r"rate\.housing\.employer"):
        compute_contributions(_frame([(50_000, 31, 0, 0)]), parameters=parameters, period_days=31)


def test_money_not_in_whole_centavos_is_refused() -> None:
    parameters = {**PARAMETERS_2025, "uma_daily": Decimal("113.145")}
    with pytest.raises(ValueError, match="uma_daily"):
        compute_contributions(_frame([(50_000, 31, 0, 0)]), parameters=parameters, period_days=31)


def test_missing_parameter_names_the_code() -> None:
    parameters = dict(PARAMETERS_2025)
    del parameters["rate.childcare.employer"]
    with pytest.raises(MissingParameter) as raised:
        compute_contributions(_frame([(50_000, 31, 0, 0)]), parameters=parameters, period_days=31)
    assert raised.value.code == "rate.childcare.employer"


def test_a_missing_column_is_refused() -> None:
    frame = _frame([(50_000, 31, 0, 0)]).drop("incapacity_days")
    with pytest.raises(ValueError, match="incapacity_days"):
        compute_contributions(frame, parameters=PARAMETERS_2025, period_days=31)


# --- Statement totals ------------------------------------------------------------------------


def test_statement_totals_are_the_sums_of_the_lines() -> None:
    lines: list[Line] = [
        (25_000, 30, 0, 0),
        (50_000, 30, 2, 3),
        (400_000, 30, 0, 0),
        (33_943, 15, 1, 0),
    ]
    totals = statement_totals(
        compute_contributions(_frame(lines), parameters=PARAMETERS_2025, period_days=30)
    )
    expected = [_decimal(line, PARAMETERS_2025, 30, None) for line in lines]
    assert set(totals) == {*BRANCHES, TOTAL, SUMMARY}
    for branch in BRANCHES:
        assert totals[branch] == {
            EMPLOYER: sum(_cents(result.share(branch).employer) for result in expected),
            WORKER: sum(_cents(result.share(branch).worker) for result in expected),
        }
    assert totals[TOTAL] == {
        EMPLOYER: sum(_cents(result.employer_total) for result in expected),
        WORKER: sum(_cents(result.worker_total) for result in expected),
    }
    assert totals[SUMMARY] == {
        "workers": 4,
        "salary_mass_cents": 25_000 * 30 + 50_000 * 30 + 400_000 * 30 + 33_943 * 15,
    }


def test_statement_totals_of_an_empty_declaration() -> None:
    totals = statement_totals(
        compute_contributions(_frame([]), parameters=PARAMETERS_2025, period_days=31)
    )
    assert totals[TOTAL] == {EMPLOYER: 0, WORKER: 0}
    assert totals[SUMMARY] == {"workers": 0, "salary_mass_cents": 0}
    assert totals[Branch.HOUSING] == {EMPLOYER: 0, WORKER: 0}


# --- Size -----------------------------------------------------------------------------------


def test_a_million_lines() -> None:
    index = pl.int_range(1_000_000, dtype=pl.Int64, eager=True).alias("index")
    frame = pl.select(
        salary_cents=(index * 7_919) % 400_000 + 1,  # from 0.01 to 4000.00, every band
        days=index % 32,
        absence_days=pl.min_horizontal(index % 32, index % 3),
        incapacity_days=(index % 32 - index % 3).clip(0, 2),
    )
    result = compute_contributions(frame, parameters=PARAMETERS_2025, period_days=31)
    assert result.height == 1_000_000
    assert result["employer_total_cents"].null_count() == 0
    assert statement_totals(result)[SUMMARY]["workers"] == 1_000_000
