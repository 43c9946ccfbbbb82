"""The contribution of one worker line, with every expected amount worked out by hand from the
2025 parameters. Pure: no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pilar.contributions.calculation import (
    Branch,
    InvalidLine,
    MissingParameter,
    WorkerLine,
    cesantia_employer_rate,
    line_contribution,
)

# The 2025 values as seeded (minimum wage from 1 January, UMA from 1 February), written out so
# these tests do not depend on the seed migration.
PARAMETERS_2025: dict[str, Decimal] = {
    "minimum_wage_daily": Decimal("278.80"),
    "uma_daily": Decimal("113.14"),
    "sbc_cap_uma": Decimal(25),
    "sickness_maternity.excess_threshold_uma": Decimal(3),
    "rate.sickness_maternity.in_kind_fixed.employer": Decimal("20.400"),
    "rate.sickness_maternity.in_kind_excess.employer": Decimal("1.100"),
    "rate.sickness_maternity.in_kind_excess.worker": Decimal("0.400"),
    "rate.sickness_maternity.cash.employer": Decimal("0.700"),
    "rate.sickness_maternity.cash.worker": Decimal("0.250"),
    "rate.sickness_maternity.pensioners.employer": Decimal("1.050"),
    "rate.sickness_maternity.pensioners.worker": Decimal("0.375"),
    "rate.disability_life.employer": Decimal("1.750"),
    "rate.disability_life.worker": Decimal("0.625"),
    "rate.work_risks.employer": Decimal("0.54355"),
    "rate.childcare.employer": Decimal("1.000"),
    "rate.retirement.employer": Decimal("2.000"),
    "rate.old_age_cesantia.worker": Decimal("1.125"),
    "rate.housing.employer": Decimal("5.000"),
    **{
        f"rate.old_age_cesantia.employer.{band}": Decimal(rate)
        for band, rate in zip(
            (
                "up_to_1_00_minimum_wage",
                "1_01_to_1_50_uma",
                "1_51_to_2_00_uma",
                "2_01_to_2_50_uma",
                "2_51_to_3_00_uma",
                "3_01_to_3_50_uma",
                "3_51_to_4_00_uma",
                "4_01_uma_and_above",
            ),
            ("3.150", "3.544", "4.426", "4.954", "5.307", "5.559", "5.747", "6.422"),
            strict=True,
        )
    },
}


def _shares(result: object) -> dict[str, tuple[str, str]]:
    return {s.branch: (str(s.employer), str(s.worker)) for s in result.shares}  # type: ignore[attr-defined]


def test_middle_salary_full_month() -> None:
    # SBC 500.00 for 31 days. 3 UMA = 339.42, so the excess is 160.58; 500 / 113.14 = 4.42 UMA,
    # the top cesantía band (6.422%).
    result = line_contribution(
        WorkerLine(Decimal("500.00"), 31), parameters=PARAMETERS_2025, period_days=31
    )
    assert result.base == Decimal("500.00")
    assert not (result.floor_applied)
    assert not (result.cap_applied)
    assert not result.worker_share_paid_by_employer
    assert _shares(result) == {
        # 113.14 × 20.40% × 31 = 715.49736
        Branch.SICKNESS_IN_KIND_FIXED: ("715.50", "0.00"),
        # 160.58 × 1.10% × 31 = 54.75778; 160.58 × 0.40% × 31 = 19.91192
        Branch.SICKNESS_IN_KIND_EXCESS: ("54.76", "19.91"),
        # 500 × 0.70% × 31 = 108.50; 500 × 0.25% × 31 = 38.75
        Branch.SICKNESS_CASH: ("108.50", "38.75"),
        # 500 × 1.05% × 31 = 162.75; 500 × 0.375% × 31 = 58.125, half up
        Branch.SICKNESS_PENSIONERS: ("162.75", "58.13"),
        # 500 × 1.75% × 31 = 271.25; 500 × 0.625% × 31 = 96.875, half up
        Branch.DISABILITY_LIFE: ("271.25", "96.88"),
        # 500 × 0.54355% × 31 = 84.25025
        Branch.WORK_RISKS: ("84.25", "0.00"),
        Branch.CHILDCARE: ("155.00", "0.00"),
        Branch.RETIREMENT: ("310.00", "0.00"),
        # 500 × 6.422% × 31 = 995.41; 500 × 1.125% × 31 = 174.375, half up
        Branch.OLD_AGE_CESANTIA: ("995.41", "174.38"),
        Branch.HOUSING: ("775.00", "0.00"),
    }
    assert result.employer_total == Decimal("3632.42")
    assert result.worker_total == Decimal("388.05")


def test_salary_below_the_floor_is_raised_and_the_employer_pays_the_worker_share() -> None:
    # Declared 250.00, below the minimum wage: the base is 278.80 and, on the minimum wage, the
    # employer pays the worker's share too (LSS art. 36). 30 days.
    result = line_contribution(
        WorkerLine(Decimal("250.00"), 30), parameters=PARAMETERS_2025, period_days=30
    )
    assert result.base == Decimal("278.80")
    assert result.floor_applied
    assert result.worker_share_paid_by_employer
    assert result.worker_total == Decimal("0.00")
    shares = _shares(result)
    # 113.14 × 20.40% × 30 = 692.4168
    assert shares[Branch.SICKNESS_IN_KIND_FIXED] == ("692.42", "0.00")
    # Below 3 UMA: no excess.
    assert shares[Branch.SICKNESS_IN_KIND_EXCESS] == ("0.00", "0.00")
    # 278.80 × 0.70% × 30 = 58.548 → 58.55, plus the worker's 278.80 × 0.25% × 30 = 20.91
    assert shares[Branch.SICKNESS_CASH] == ("79.46", "0.00")
    # Minimum-wage band, 3.150%: 278.80 × 3.15% × 30 = 263.466 → 263.47,
    # plus 278.80 × 1.125% × 30 = 94.095 → 94.10
    assert shares[Branch.OLD_AGE_CESANTIA] == ("357.57", "0.00")
    # 278.80 × 5% × 30 = 418.20
    assert shares[Branch.HOUSING] == ("418.20", "0.00")


def test_salary_above_the_cap_is_capped_at_25_uma() -> None:
    result = line_contribution(
        WorkerLine(Decimal("4000.00"), 31), parameters=PARAMETERS_2025, period_days=31
    )
    # 25 × 113.14 = 2828.50
    assert result.base == Decimal("2828.50")
    assert result.cap_applied
    assert not result.floor_applied
    shares = _shares(result)
    # Excess 2828.50 − 339.42 = 2489.08: × 1.10% × 31 = 848.77628; × 0.40% × 31 = 308.64592
    assert shares[Branch.SICKNESS_IN_KIND_EXCESS] == ("848.78", "308.65")
    # The fixed fee does not depend on the salary.
    assert shares[Branch.SICKNESS_IN_KIND_FIXED] == ("715.50", "0.00")
    # 2828.50 × 5% × 31 = 4384.175 → 4384.18 (housing uses the same capped base)
    assert shares[Branch.HOUSING] == ("4384.18", "0.00")
    # 2828.50 × 6.422% × 31 = 5631.03227
    assert shares[Branch.OLD_AGE_CESANTIA] == ("5631.03", "986.44")


def test_absence_and_incapacity_days() -> None:
    # 30 days employed, 2 absent, 3 on incapacity: sickness and maternity is paid for 27 days,
    # housing for 28 (incapacity days are paid to INFONAVIT), every other branch for 25.
    result = line_contribution(
        WorkerLine(Decimal("500.00"), 30, absence_days=2, incapacity_days=3),
        parameters=PARAMETERS_2025,
        period_days=30,
    )
    shares = _shares(result)
    # 113.14 × 20.40% × 27 = 623.17512
    assert shares[Branch.SICKNESS_IN_KIND_FIXED] == ("623.18", "0.00")
    assert shares[Branch.SICKNESS_CASH] == ("94.50", "33.75")  # 3.50 and 1.25 × 27
    assert shares[Branch.DISABILITY_LIFE] == ("218.75", "78.13")  # 8.75 and 3.125 × 25
    assert shares[Branch.RETIREMENT] == ("250.00", "0.00")  # 10 × 25
    assert shares[Branch.HOUSING] == ("700.00", "0.00")  # 25 × 28


def test_employer_work_risk_premium_replaces_the_default() -> None:
    result = line_contribution(
        WorkerLine(Decimal("500.00"), 31, work_risk_rate=Decimal("7.58875")),
        parameters=PARAMETERS_2025,
        period_days=31,
    )
    # 500 × 7.58875% × 31 = 1176.25625
    assert result.share(Branch.WORK_RISKS).employer == Decimal("1176.26")


def test_zero_days_owe_nothing() -> None:
    result = line_contribution(
        WorkerLine(Decimal("500.00"), 0), parameters=PARAMETERS_2025, period_days=31
    )
    assert result.employer_total == result.worker_total == Decimal(0)


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("278.80", "3.150"),  # the minimum wage itself
        ("339.42", "5.307"),  # exactly 3.00 UMA: the 2.51–3.00 band
        ("339.43", "5.559"),  # just above 3.00 UMA
        ("452.56", "5.747"),  # exactly 4.00 UMA
        ("452.57", "6.422"),  # above 4.00 UMA
    ],
)
def test_cesantia_band_boundaries(base: str, expected: str) -> None:
    rate = cesantia_employer_rate(
        Decimal(base),
        minimum_wage=Decimal("278.80"),
        uma=Decimal("113.14"),
        parameters=PARAMETERS_2025,
    )
    assert rate == Decimal(expected)


def test_single_cesantia_rate_before_the_2023_ramp() -> None:
    parameters = {
        code: value
        for code, value in PARAMETERS_2025.items()
        if not code.startswith("rate.old_age_cesantia.employer.")
    }
    parameters["rate.old_age_cesantia.employer"] = Decimal("3.150")
    rate = cesantia_employer_rate(
        Decimal("1000"),
        minimum_wage=Decimal("278.80"),
        uma=Decimal("113.14"),
        parameters=parameters,
    )
    assert rate == Decimal("3.150")


def test_missing_parameter_names_the_code() -> None:
    parameters = dict(PARAMETERS_2025)
    del parameters["rate.housing.employer"]
    with pytest.raises(MissingParameter) as raised:
        line_contribution(WorkerLine(Decimal("500"), 31), parameters=parameters, period_days=31)
    assert raised.value.code == "rate.housing.employer"


@pytest.mark.parametrize(
    "line",
    [
        WorkerLine(Decimal("500"), 32),
        WorkerLine(Decimal("500"), -1),
        WorkerLine(Decimal("500"), 10, absence_days=6, incapacity_days=5),
        WorkerLine(Decimal("500"), 31, absence_days=8),
        WorkerLine(Decimal("500"), 31, incapacity_days=-1),
        WorkerLine(Decimal("0"), 31),
    ],
)
def test_impossible_lines_are_refused(line: WorkerLine) -> None:
    with pytest.raises(InvalidLine):
        line_contribution(line, parameters=PARAMETERS_2025, period_days=31)
