"""Totalisation and pro-rata pensions across institutions.

Every worked example has its arithmetic written out, computed by hand; the code must reach the
same figures. Money is rounded half up to the centavo at the end; ratios stay exact.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pilar.rules.errors import RulesError
from pilar.rules.explanation import BenefitInfo, Node
from pilar.rules.totalisation import (
    Agreement,
    InstitutionScheme,
    LinearScheme,
    PackageScheme,
    Periods,
    PeriodUnit,
    TotalisationError,
    convert,
    load_agreement,
    schemes_from_agreement,
    totalise,
)

FIXTURES = Path(__file__).parent / "fixtures" / "totalisation"
AGREEMENTS = Path(__file__).parents[1] / "agreements"
ON = datetime.date(2026, 1, 1)


def fixture(name: str) -> Agreement:
    return load_agreement(path=FIXTURES / f"{name}.yaml")


def periods(quantity: int | str, unit: PeriodUnit) -> Periods:
    return Periods(Decimal(quantity), unit)


def linear(
    unit: PeriodUnit,
    salary: str,
    rate: str,
    required: int,
    full: int | None = None,
) -> LinearScheme:
    return LinearScheme(
        unit=unit,
        reference_salary=Decimal(salary),
        rate_per_period=Decimal(rate),
        required_periods=Decimal(required),
        full_periods=Decimal(full) if full is not None else None,
        reference="Ley de prueba, art. 1",
    )


def find(node: Node, name: str) -> Node:
    for found in node.walk():
        if found.name == name:
            return found
    raise AssertionError(f"no node {name} under {node.name}")


class BasePlusIncrementScheme:
    """A concave scheme, as most real ones: 40% of the salary at 15 years, plus 1% a year more.

    Written here against the ``InstitutionScheme`` protocol: any scheme can be totalised.
    """

    unit: PeriodUnit = "year"
    required_periods = Decimal(15)
    maximum_period = None
    source: Mapping[str, Any] = {"kind": "test", "name": "base_plus_increment"}

    def __init__(self, salary: str) -> None:
        self.salary = Decimal(salary)
        self.calls: list[Decimal] = []

    def amount(self, periods: Decimal, *, on: datetime.date) -> tuple[Decimal | None, Node]:
        self.calls.append(periods)
        value = None
        if periods >= self.required_periods:
            value = self.salary * (Decimal("0.40") + Decimal("0.01") * (periods - 15))
        node = Node(
            name="benefit",
            kind="formula",
            type="number",
            value=value,
            reference="Ley de prueba, art. 2",
            formula="salary * (0.40 + 0.01 * (periods - 15))",
        )
        return value, node


# --------------------------------------------------------------------------------------------
# (1) The classic two-state case
# --------------------------------------------------------------------------------------------


def test_two_states_ten_and_twenty_years_with_the_schemes_of_the_agreement_file() -> None:
    agreement = fixture("two_states")
    result = totalise(
        agreement,
        {"state_a": periods(10, "year"), "state_b": {"quantity": 20, "unit": "year"}},
        schemes_from_agreement(agreement),
        on=ON,
    )

    # State A: 2% of 10,000.00 a year, from 15 years, full at 40.
    #   independent: 10 years < 15 → not entitled on own periods
    #   total = 10 + 20 = 30 years → entitled after totalisation
    #   theoretical = 10,000.00 × 0.02 × 30 = 6,000.00
    #   ratio = 10 / 30 = 1/3; pro-rata = 6,000.00 / 3 = 2,000.00 → the award
    a = result["state_a"]
    assert a.own_periods == 10
    assert a.converted_periods == {"state_b": 20}
    assert a.total_periods == 30
    assert a.entitled_independently is False
    assert a.independent_benefit is None
    assert a.independent_benefit_reason is not None
    assert a.independent_benefit_reason["en"] == "Not entitled on own periods alone."
    assert a.entitled_after_totalisation is True
    assert a.theoretical_amount == Decimal("6000.00")
    assert a.pro_rata_ratio == Decimal(10) / Decimal(30)
    assert a.pro_rata_amount == Decimal("2000.00")
    assert a.award == Decimal("2000.00")
    assert a.award_basis == "pro_rata"

    # State B: 2% of 12,000.00 a year.
    #   independent = 12,000.00 × 0.02 × 20 = 4,800.00
    #   theoretical = 12,000.00 × 0.02 × 30 = 7,200.00; ratio 20/30; pro-rata = 4,800.00
    #   art. 52.3, the higher of the two: equal, the independent benefit is paid.
    b = result["state_b"]
    assert b.independent_benefit == Decimal("4800.00")
    assert b.theoretical_amount == Decimal("7200.00")
    assert b.pro_rata_amount == Decimal("4800.00")
    assert b.award == Decimal("4800.00")
    assert b.award_basis == "independent"


# --------------------------------------------------------------------------------------------
# (2) Entitled only after totalisation
# --------------------------------------------------------------------------------------------


def test_a_person_entitled_in_neither_state_alone_is_entitled_in_both_after_totalisation() -> None:
    result = totalise(
        fixture("two_states"),
        {"state_a": periods(12, "year"), "state_b": periods(8, "year")},
        {
            "state_a": linear("year", "10000.00", "0.02", required=15),
            "state_b": linear("year", "5000.00", "0.025", required=10),
        },
        on=ON,
    )

    # A: 12 < 15 years. Total 20 ≥ 15. theoretical = 10,000.00 × 0.02 × 20 = 4,000.00;
    #    ratio 12/20 = 0.6; pro-rata = 2,400.00.
    a = result["state_a"]
    assert (a.entitled_independently, a.entitled_after_totalisation) == (False, True)
    assert a.theoretical_amount == Decimal("4000.00")
    assert a.pro_rata_ratio == Decimal("0.6")
    assert (a.award, a.award_basis) == (Decimal("2400.00"), "pro_rata")
    # B: 8 < 10 years. Total 20 ≥ 10. theoretical = 5,000.00 × 0.025 × 20 = 2,500.00;
    #    ratio 8/20 = 0.4; pro-rata = 1,000.00.
    b = result["state_b"]
    assert (b.entitled_independently, b.entitled_after_totalisation) == (False, True)
    assert b.theoretical_amount == Decimal("2500.00")
    assert (b.award, b.award_basis) == (Decimal("1000.00"), "pro_rata")


def test_not_entitled_even_after_totalisation_pays_nothing_and_says_why() -> None:
    # 5 + 5 = 10 years, below the 15 both states require.
    result = totalise(
        fixture("two_states"),
        {"state_a": periods(5, "year"), "state_b": periods(5, "year")},
        schemes_from_agreement(fixture("two_states")),
        on=ON,
    )
    for outcome in result.institutions:
        assert outcome.entitled_after_totalisation is False
        assert outcome.theoretical_amount is None
        assert outcome.pro_rata_ratio is None
        assert outcome.pro_rata_amount is None
        assert (outcome.award, outcome.award_basis) == (Decimal("0.00"), "not_entitled")
        denial = find(outcome.explanation, "entitlement_after_totalisation")
        assert find(denial, "entitled").value is False


# --------------------------------------------------------------------------------------------
# (3) The minimum payable period (Reg. 883/2004 art. 57)
# --------------------------------------------------------------------------------------------


def eu_schemes(
    *, es_required: int = 5400, de_required: int = 60, fr_required: int = 60
) -> dict[str, InstitutionScheme]:
    return {
        # Spain, calendar days (seven-day scheme): 0.05% of 1,500.00 a day.
        "es_inss": linear("day", "1500.00", "0.0005", required=es_required),
        # Germany, months: 0.2% of 3,000.00 a month.
        "de_drv": linear("month", "3000.00", "0.002", required=de_required),
        # France, quarters: 0.5% of 2,000.00 a quarter.
        "fr_cnav": linear("quarter", "2000.00", "0.005", required=fr_required),
    }


def test_an_institution_with_less_than_a_year_pays_nothing_and_the_others_count_its_periods() -> (
    None
):
    agreement = load_agreement("eu_883_2004")
    result = totalise(
        agreement,
        {
            "es_inss": periods(200, "day"),
            "de_drv": periods(240, "month"),
            "fr_cnav": periods(40, "quarter"),
        },
        eu_schemes(),
        on=ON,
    )

    # Spain: 200 days < one year (360 days in a seven-day scheme, 987/2009 art. 13.1.b) and
    # 200 < 5,400 days required → art. 57.1: Spain pays nothing.
    #   Its own figures are still computed: total = 200 + 240 × 30 + 40 × 90 = 11,000 days;
    #   theoretical = 1,500.00 × 0.0005 × 11,000 = 8,250.00; pro-rata = 8,250 × 200/11,000 = 150.00
    es = result["es_inss"]
    assert es.total_periods == 11000
    assert es.pro_rata_amount == Decimal("150.00")
    assert es.below_minimum_payable_period is True
    assert (es.award, es.award_basis) == (Decimal("0.00"), "below_minimum_period")
    liable = find(es.explanation, "liable_to_pay")
    assert liable.value is False
    assert liable.reference == "Reg. (CE) 883/2004, art. 57.1"
    assert find(liable, "minimum_payable_period").value == 360

    # Germany, months: Spain's 200 days / 30 = 6.67 → 7 months (art. 13.1.e rounds up);
    # France's 40 quarters × 3 = 120 months. Total = 240 + 7 + 120 = 367 months: the Spanish
    # periods count (art. 57.2).
    #   independent = 3,000.00 × 0.002 × 240 = 1,440.00
    #   theoretical = 3,000.00 × 0.002 × 367 = 2,202.00; pro-rata = 2,202 × 240/367 = 1,440.00
    de = result["de_drv"]
    assert de.converted_periods == {"es_inss": 7, "fr_cnav": 120}
    assert de.total_periods == 367
    assert de.independent_benefit == Decimal("1440.00")
    assert de.theoretical_amount == Decimal("2202.00")
    assert de.pro_rata_amount == Decimal("1440.00")
    assert de.award == Decimal("1440.00")

    # France, quarters: 200 days / 90 = 2.22 → 3 quarters; 240 months / 3 = 80 quarters.
    # Total = 40 + 3 + 80 = 123 quarters; 40 < 60 required → pro-rata only.
    #   theoretical = 2,000.00 × 0.005 × 123 = 1,230.00; pro-rata = 1,230 × 40/123 = 400.00
    fr = result["fr_cnav"]
    assert fr.converted_periods == {"es_inss": 3, "de_drv": 80}
    assert fr.total_periods == 123
    assert fr.theoretical_amount == Decimal("1230.00")
    assert (fr.award, fr.award_basis) == (Decimal("400.00"), "pro_rata")


def test_less_than_a_year_still_pays_when_those_periods_alone_give_entitlement() -> None:
    # Spain requires only 100 days here: 200 days entitle on their own, so art. 57.1 does not
    # relieve it. independent = 1,500.00 × 0.0005 × 200 = 150.00 (= the pro-rata 150.00).
    result = totalise(
        load_agreement("eu_883_2004"),
        {
            "es_inss": periods(200, "day"),
            "de_drv": periods(240, "month"),
            "fr_cnav": periods(40, "quarter"),
        },
        eu_schemes(es_required=100),
        on=ON,
    )
    es = result["es_inss"]
    assert es.below_minimum_payable_period is False
    assert (es.award, es.award_basis) == (Decimal("150.00"), "independent")
    assert find(es.explanation, "liable_to_pay").value is True


ALL_SHORT = {
    "es_inss": periods(200, "day"),
    "de_drv": periods(8, "month"),
    "fr_cnav": periods(2, "quarter"),
}


def test_when_every_institution_is_relieved_the_last_one_whose_conditions_are_met_pays() -> None:
    # Every institution holds less than a year and none entitles alone (art. 57.3).
    #   Germany, months: 8 + ceil(200/30 = 6.67) = 7 + 2 × 3 = 6 → 21 months ≥ 20 required
    #   France, quarters: 2 + ceil(200/90 = 2.22) = 3 + ceil(8/3 = 2.67) = 3 → 8 < 60
    #   Spain, days: 200 + 8 × 30 + 2 × 90 = 620 < 5,400
    # Germany pays as if all 21 months were German: 3,000.00 × 0.002 × 21 = 126.00.
    agreement = load_agreement("eu_883_2004")
    for order in (["fr_cnav", "es_inss", "de_drv"], ["de_drv", "fr_cnav", "es_inss"]):
        result = totalise(agreement, ALL_SHORT, eu_schemes(de_required=20), on=ON, order=order)
        de = result["de_drv"]
        assert (de.award, de.award_basis) == (Decimal("126.00"), "last_institution")
        assert find(de.explanation, "award").reference == "Reg. (CE) 883/2004, art. 57.3"
        assert result["es_inss"].award == 0
        assert result["fr_cnav"].award == 0

    # With France also entitled (8 ≥ 5 quarters), the last of the two in the person's career
    # pays: France last → 2,000.00 × 0.005 × 8 = 80.00; Germany last → 126.00.
    schemes = eu_schemes(de_required=20, fr_required=5)
    result = totalise(agreement, ALL_SHORT, schemes, on=ON, order=["de_drv", "fr_cnav", "es_inss"])
    assert (result["fr_cnav"].award, result["de_drv"].award) == (Decimal("80.00"), 0)
    result = totalise(agreement, ALL_SHORT, schemes, on=ON, order=["fr_cnav", "es_inss", "de_drv"])
    assert (result["fr_cnav"].award, result["de_drv"].award) == (0, Decimal("126.00"))


def test_the_last_institution_rule_needs_the_whole_order_of_the_career() -> None:
    agreement = load_agreement("eu_883_2004")
    schemes = eu_schemes(de_required=20)
    with pytest.raises(TotalisationError) as raised:
        totalise(agreement, ALL_SHORT, schemes, on=ON)
    assert raised.value.code == "order_required"
    assert raised.value.reference == "Reg. (CE) 883/2004, art. 57.3"
    assert raised.value.params["missing"] == "es_inss, de_drv, fr_cnav"
    with pytest.raises(TotalisationError) as raised:
        totalise(agreement, ALL_SHORT, schemes, on=ON, order=["fr_cnav", "de_drv"])
    assert raised.value.message("en").endswith("missing: es_inss. (Reg. (CE) 883/2004, art. 57.3)")


def test_a_single_short_career_needs_no_order_and_pays_nothing() -> None:
    # Eight German months alone: below a year, 60 months required, nobody to totalise with.
    result = totalise(
        load_agreement("eu_883_2004"), {"de_drv": periods(8, "month")}, eu_schemes(), on=ON
    )
    de = result["de_drv"]
    assert (de.total_periods, de.award, de.award_basis) == (8, 0, "below_minimum_period")


def test_mercosur_minimum_is_twelve_months_and_a_state_may_waive_it(tmp_path: Path) -> None:
    # MERCOSUR art. 7.2: a State where the worker contributed less than twelve months may give
    # no benefit. 10 months in Brazil, 300 in Argentina; both pay 0.1% of a salary a month,
    # from 120 months.
    schemes: dict[str, InstitutionScheme] = {
        "br_inss": linear("month", "4000.00", "0.001", required=120),
        "ar_anses": linear("month", "5000.00", "0.001", required=120),
    }
    held = {"br_inss": periods(10, "month"), "ar_anses": periods(300, "month")}
    result = totalise(load_agreement("mercosur"), held, schemes, on=ON)
    # Brazil: 10 < 12 months and not entitled alone → nothing. Its pro-rata benefit would have
    # been 4,000.00 × 0.001 × 310 × 10/310 = 40.00.
    br = result["br_inss"]
    assert br.pro_rata_amount == Decimal("40.00")
    assert (br.award, br.award_basis) == (0, "below_minimum_period")
    assert (
        find(br.explanation, "liable_to_pay").reference == "Acuerdo Multilateral MERCOSUR, art. 7.2"
    )
    # Argentina counts the ten months: total 310; 5,000.00 × 0.001 × 300 = 1,500.00.
    assert result["ar_anses"].total_periods == 310
    assert result["ar_anses"].award == Decimal("1500.00")

    # "Podrá": a State that chooses to pay for short periods says so on its institution.
    text = (AGREEMENTS / "mercosur.yaml").read_text(encoding="utf-8")
    waived = text.replace(
        "  - id: br_inss\n", "  - id: br_inss\n    applies_minimum_payable_period: false\n"
    )
    path = tmp_path / "mercosur.yaml"
    path.write_text(waived, encoding="utf-8")
    br = totalise(load_agreement(path=path), held, schemes, on=ON)["br_inss"]
    assert (br.award, br.award_basis) == (Decimal("40.00"), "pro_rata")


# --------------------------------------------------------------------------------------------
# (4) Choose the higher: the independent benefit beats the pro-rata one
# --------------------------------------------------------------------------------------------


def test_the_independent_benefit_is_paid_when_it_is_higher_than_the_pro_rata_one() -> None:
    # State A's scheme is concave: 40% of 10,000.00 at 15 years plus 1% a year beyond.
    #   independent (20 years) = 10,000.00 × (0.40 + 0.05) = 4,500.00
    #   theoretical (20 + 10 = 30 years) = 10,000.00 × (0.40 + 0.15) = 5,500.00
    #   pro-rata = 5,500.00 × 20/30 = 3,666.666… → 3,666.67
    #   art. 52.3: the higher → 4,500.00
    agreement = fixture("two_states")
    schemes = schemes_from_agreement(agreement)
    schemes["state_a"] = BasePlusIncrementScheme("10000.00")
    held = {"state_a": periods(20, "year"), "state_b": periods(10, "year")}
    a = totalise(agreement, held, schemes, on=ON)["state_a"]
    assert a.independent_benefit == Decimal("4500.00")
    assert a.theoretical_amount == Decimal("5500.00")
    assert a.pro_rata_amount == Decimal("3666.67")
    assert (a.award, a.award_basis) == (Decimal("4500.00"), "independent")
    assert a.award_reason["en"] == (
        "The independent benefit is paid: it is higher than the pro-rata benefit."
    )
    award = a.explanation
    assert award.reference == "Reg. (CE) 883/2004, art. 52.3"
    assert award.formula == "round(max(independent_benefit, pro_rata_amount), 2)"
    assert a.scheme == {"kind": "test", "name": "base_plus_increment"}


def test_without_the_choose_higher_rule_the_independent_benefit_is_paid_when_entitled() -> None:
    # two_states_plain has no art. 52.3: entitled on own periods → the independent benefit,
    # even when the pro-rata one is higher. Here a convex scheme makes pro-rata higher:
    # flat 1,000.00 from 15 years and 3,000.00 from 25.
    class StepScheme:
        unit: PeriodUnit = "year"
        required_periods = Decimal(15)
        maximum_period = None
        source: Mapping[str, Any] = {"kind": "test", "name": "step"}

        def amount(self, periods: Decimal, *, on: datetime.date) -> tuple[Decimal | None, Node]:
            value = None if periods < 15 else Decimal(1000 if periods < 25 else 3000)
            return value, Node(name="benefit", kind="formula", type="number", value=value)

    held = {"state_a": periods(20, "year"), "state_b": periods(10, "year")}
    # independent (20) = 1,000.00; theoretical (30) = 3,000.00; pro-rata = 3,000 × 20/30 = 2,000.00
    plain = fixture("two_states_plain")
    schemes = {**schemes_from_agreement(plain), "state_a": StepScheme()}
    a = totalise(plain, held, schemes, on=ON)["state_a"]
    assert (a.independent_benefit, a.pro_rata_amount) == (Decimal("1000.00"), Decimal("2000.00"))
    assert (a.award, a.award_basis) == (Decimal("1000.00"), "independent")
    # Under art. 52.3 the same person gets the higher, pro-rata, benefit.
    eu_like = fixture("two_states")
    schemes = {**schemes_from_agreement(eu_like), "state_a": StepScheme()}
    a = totalise(eu_like, held, schemes, on=ON)["state_a"]
    assert (a.award, a.award_basis) == (Decimal("2000.00"), "pro_rata")


# --------------------------------------------------------------------------------------------
# (5) The maximum period (Reg. 883/2004 art. 56.1.a)
# --------------------------------------------------------------------------------------------


def test_beyond_the_maximum_period_the_maximum_replaces_the_total() -> None:
    agreement = fixture("two_states")
    result = totalise(
        agreement,
        {"state_a": periods(30, "year"), "state_b": periods(20, "year")},
        schemes_from_agreement(agreement),
        on=ON,
    )
    # Total 50 years > 40, the full-benefit period of both schemes: art. 56.1.a takes 40.
    # A: independent = 10,000.00 × 0.02 × 30 = 6,000.00
    #    theoretical = 10,000.00 × 0.02 × 40 = 8,000.00; ratio 30/40 = 0.75 → 6,000.00
    a = result["state_a"]
    assert a.total_periods == 50
    assert (a.periods_for_calculation, a.maximum_period_applied) == (40, True)
    assert a.theoretical_amount == Decimal("8000.00")
    assert a.pro_rata_ratio == Decimal("0.75")
    assert a.pro_rata_amount == Decimal("6000.00")
    assert a.award == Decimal("6000.00")
    cap = find(a.explanation, "periods_for_calculation")
    assert cap.reference == "Reg. (CE) 883/2004, art. 56.1.a"
    assert find(cap, "maximum_period").value == 40
    # B: independent = 12,000.00 × 0.02 × 20 = 4,800.00; theoretical 12,000.00 × 0.8 = 9,600.00;
    #    ratio 20/40 = 0.5 → 4,800.00
    b = result["state_b"]
    assert (b.theoretical_amount, b.pro_rata_amount) == (Decimal("9600.00"), Decimal("4800.00"))


def test_the_maximum_period_rule_raises_the_pro_rata_benefit_of_a_short_career() -> None:
    held = {"state_a": periods(10, "year"), "state_b": periods(45, "year")}
    # Without art. 56.1.a (two_states_plain): total 55, the scheme gives its full 8,000.00 at
    # 40 years, and the ratio is 10/55: 8,000.00 × 10/55 = 1,454.5454… → 1,454.55.
    plain = fixture("two_states_plain")
    a = totalise(plain, held, schemes_from_agreement(plain), on=ON)["state_a"]
    assert (a.maximum_period_applied, a.periods_for_calculation) == (False, 55)
    assert a.pro_rata_amount == Decimal("1454.55")
    assert a.award == Decimal("1454.55")
    # With it (two_states): 40 replaces 55, ratio 10/40 = 0.25: 8,000.00 × 0.25 = 2,000.00.
    capped = fixture("two_states")
    a = totalise(capped, held, schemes_from_agreement(capped), on=ON)["state_a"]
    assert a.pro_rata_ratio == Decimal("0.25")
    assert a.award == Decimal("2000.00")


def test_own_periods_beyond_the_maximum_never_pay_more_than_the_full_benefit() -> None:
    # A: 45 years of its own, B: 5. Total 50 → 40 by art. 56.1.a; 45/40 > 1 is capped at 1:
    # the pro-rata benefit is the full 10,000.00 × 0.02 × 40 = 8,000.00, no more.
    agreement = fixture("two_states")
    a = totalise(
        agreement,
        {"state_a": periods(45, "year"), "state_b": periods(5, "year")},
        schemes_from_agreement(agreement),
        on=ON,
    )["state_a"]
    assert a.pro_rata_ratio == 1
    assert a.pro_rata_amount == Decimal("8000.00")
    assert a.independent_benefit == Decimal("8000.00")
    assert a.award == Decimal("8000.00")


# --------------------------------------------------------------------------------------------
# (6) Three institutions, three units (Ibero-American convention)
# --------------------------------------------------------------------------------------------


def test_three_institutions_counting_weeks_months_and_days() -> None:
    agreement = load_agreement("iberoamericano")
    result = totalise(
        agreement,
        {
            "co_colpensiones": periods(700, "week"),
            "br_inss": periods(120, "month"),
            "es_inss": periods(1800, "day"),
        },
        {
            # Colombia: 0.05% of 2,000,000.00 a week from 1,300 weeks, full at 1,300.
            "co_colpensiones": linear("week", "2000000.00", "0.0005", required=1300, full=1300),
            # Brazil: 0.15% of 3,000.00 a month from 180 months.
            "br_inss": linear("month", "3000.00", "0.0015", required=180),
            # Spain: 0.01% of 1,200.00 a day from 5,475 days.
            "es_inss": linear("day", "1200.00", "0.0001", required=5475),
        },
        on=ON,
    )

    # Colombia, weeks: Brazil's 120 months × 13/3 = 520 weeks (a quarter is 3 months or 13
    # weeks); Spain's 1,800 days / 7 = 257.14 → 258 weeks. Total = 700 + 520 + 258 = 1,478.
    #   theoretical = 2,000,000.00 × 0.0005 × min(1,478, 1,300) = 1,300,000.00 (the scheme's
    #   full benefit; the convention applies no maximum-period rule, so the ratio keeps 1,478)
    #   pro-rata = 1,300,000.00 × 700/1,478 = 910,000,000 / 1,478 = 615,696.8877 → 615,696.89
    co = result["co_colpensiones"]
    assert co.converted_periods == {"br_inss": 520, "es_inss": 258}
    assert co.total_periods == 1478
    assert co.independent_benefit is None
    assert co.maximum_period_applied is False
    assert co.theoretical_amount == Decimal("1300000.00")
    assert co.pro_rata_amount == Decimal("615696.89")
    assert (co.award, co.award_basis) == (Decimal("615696.89"), "pro_rata")

    # Brazil, months: 700 weeks × 3/13 = 161.54 → 162 months; 1,800 days / 30 = 60 months.
    # Total = 120 + 162 + 60 = 342. theoretical = 3,000.00 × 0.0015 × 342 = 1,539.00;
    # pro-rata = 1,539.00 × 120/342 = 540.00
    br = result["br_inss"]
    assert br.converted_periods == {"co_colpensiones": 162, "es_inss": 60}
    assert br.total_periods == 342
    assert (br.theoretical_amount, br.award) == (Decimal("1539.00"), Decimal("540.00"))

    # Spain, days (seven-day scheme): 700 weeks × 7 = 4,900 days; 120 months × 30 = 3,600.
    # Total = 1,800 + 4,900 + 3,600 = 10,300. theoretical = 1,200.00 × 0.0001 × 10,300 =
    # 1,236.00; pro-rata = 1,236.00 × 1,800/10,300 = 216.00
    es = result["es_inss"]
    assert es.converted_periods == {"co_colpensiones": 4900, "br_inss": 3600}
    assert es.total_periods == 10300
    assert (es.theoretical_amount, es.award) == (Decimal("1236.00"), Decimal("216.00"))

    converted = find(co.explanation, "converted_periods.es_inss")
    assert converted.formula == "ceil(periods.es_inss * 1/7)"
    assert converted.reference is not None
    assert converted.reference.startswith("Reg. (CE) 987/2009, art. 13")


@pytest.mark.parametrize(
    ("quantity", "source", "target", "source_basis", "target_basis", "expected"),
    [
        # 987/2009 art. 13.1.b: the maximum days in a calendar year of each day scheme.
        ("1", "year", "day", None, 5, "264"),
        ("1", "year", "day", None, 6, "312"),
        ("1", "year", "day", None, 7, "360"),
        ("1", "month", "day", None, 5, "22"),
        ("1", "quarter", "day", None, 6, "78"),
        # Between day schemes through hours: 10 days of 9 hours are 15 days of 6 hours.
        ("10", "day", "day", 5, 7, "15"),
        # 13.1.c: a quarter is 3 months or 13 weeks; a year 4 quarters, 12 months, 52 weeks.
        ("1", "quarter", "week", None, None, "13"),
        ("13", "week", "month", None, None, "3"),
        ("1", "year", "week", None, None, "52"),
        ("4", "quarter", "year", None, None, "1"),
        # Weeks and months through the six-day table: 26 days of a six-day scheme = 1 month.
        ("26", "day", "month", 6, None, "1"),
        # 13.1.e: a fraction becomes the next whole unit.
        ("1", "week", "month", None, None, "1"),
        ("200", "day", "month", 7, None, "7"),
        ("5", "month", "quarter", None, None, "2"),
        # 13.1.d: a fraction of a year goes into months.
        ("2.5", "year", "month", None, None, "30"),
        # The same unit is not converted, fractions included.
        ("7.5", "month", "month", None, None, "7.5"),
    ],
)
def test_period_conversion_follows_regulation_987_2009_article_13(
    quantity: str,
    source: PeriodUnit,
    target: PeriodUnit,
    source_basis: int | None,
    target_basis: int | None,
    expected: str,
) -> None:
    converted = convert(
        Decimal(quantity),
        source,
        target,
        source_days_per_week=source_basis,
        target_days_per_week=target_basis,
    )
    assert converted == Decimal(expected)


def test_a_day_unit_without_a_basis_is_refused() -> None:
    with pytest.raises(ValueError, match="5, 6 or 7"):
        convert(Decimal(1), "day", "month")


# --------------------------------------------------------------------------------------------
# (7) The adapter for rules packages
# --------------------------------------------------------------------------------------------


def _imss_1973() -> Any:
    """The shipped package: a package that fails to load fails these tests, never skips them."""
    from pilar.rules.package import load_package

    return load_package("imss_1973")


PERSON = {
    "edad": 66,
    "salario_promedio_diario": Decimal("450.00"),
    "conyuge": False,
    "hijos_dependientes": 0,
    "padres_dependientes": 0,
    "tiene_empleo_vigente": False,
    "cotizo_antes_1997": True,
}


def test_imss_1973_package_as_an_institution_scheme() -> None:
    package = _imss_1973()
    agreement = fixture("imss_and_state")
    schemes = schemes_from_agreement(agreement, person_inputs={"mx_imss": PERSON})
    result = totalise(
        agreement,
        {"mx_imss": periods(400, "week"), "state_m": periods(180, "month")},
        schemes,
        on=ON,
    )

    # IMSS, weeks: 180 months × 13/3 = 780 weeks; total = 400 + 780 = 1,180 weeks.
    # 400 < 500 weeks (LSS 1973 art. 138): not entitled alone; entitled with 1,180.
    # The theoretical amount is the package's old-age pension for 1,180 weeks; the pro-rata
    # benefit is it × 400/1,180.
    mx = result["mx_imss"]
    assert mx.converted_periods == {"state_m": 780}
    assert mx.total_periods == 1180
    assert mx.entitled_independently is False
    assert mx.entitled_after_totalisation is True
    direct = package.evaluate({**PERSON, "semanas_cotizadas": 1180}, on=ON)
    theoretical = direct.values["pension_vejez"]
    assert mx.theoretical_amount == theoretical.quantize(Decimal("0.01"))
    expected = (theoretical * Decimal(400) / Decimal(1180)).quantize(Decimal("0.01"))
    assert (mx.pro_rata_amount, mx.award) == (expected, expected)
    assert mx.scheme["package"] == "imss_1973"
    assert mx.scheme["version"] == package.version
    assert mx.scheme["content_hash"] == package.content_hash
    # The package's own explanation sits under the theoretical amount.
    package_node = find(find(mx.explanation, "theoretical_amount"), "imss_1973.vejez")
    assert find(package_node, "pension_vejez").reference is not None

    # State M, months: 400 weeks × 3/13 = 92.3 → 93 months; total 180 + 93 = 273.
    #   independent = 9,000.00 × 0.002 × 180 = 3,240.00
    #   theoretical = 9,000.00 × 0.002 × 273 = 4,914.00; pro-rata = 4,914 × 180/273 = 3,240.00
    state = result["state_m"]
    assert state.total_periods == 273
    assert (state.independent_benefit, state.theoretical_amount) == (
        Decimal("3240.00"),
        Decimal("4914.00"),
    )
    assert state.award == Decimal("3240.00")


class _Variable:
    def __init__(self, unit: str | None) -> None:
        self.unit = unit


class _Values:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.explanation: tuple[Node, ...] = ()


class FakePackage:
    """A stand-in package: eligible from 500 weeks, 10.00 a week. Records what it is asked."""

    name = "fake"
    version = "1.0.0"
    content_hash = "0" * 64
    benefits: Mapping[str, Any] = {
        "vejez": BenefitInfo(
            name="vejez",
            label={"es": "Vejez", "en": "Old age"},
            eligible="elegible",
            amount="pension",
            frequency="monthly",
        )
    }

    def __init__(self, unit: str | None = "weeks") -> None:
        self.inputs: Mapping[str, Any] = {"semanas": _Variable(unit), "edad": _Variable("years")}
        self.requests: list[tuple[dict[str, Any], list[str]]] = []

    def evaluate(
        self,
        inputs: Mapping[str, Any],
        *,
        on: datetime.date,
        known_at: datetime.date | None = None,
        outputs: Any = None,
        overrides: Any = None,
    ) -> _Values:
        self.requests.append((dict(inputs), list(outputs)))
        eligible = inputs["semanas"] >= 500
        values: dict[str, Any] = {"elegible": eligible}
        if "pension" in outputs:
            if not eligible:
                raise AssertionError("the amount of a person not entitled was asked for")
            values["pension"] = Decimal(10) * inputs["semanas"]
        return _Values(values)


def test_package_scheme_reads_eligibility_then_the_amount() -> None:
    package = FakePackage()
    scheme = PackageScheme(package, benefit="vejez", periods_input="semanas", inputs={"edad": 66})
    assert scheme.unit == "week"
    assert scheme.amount(Decimal(400), on=ON)[0] is None
    value, node = scheme.amount(Decimal(600), on=ON)
    assert value == Decimal(6000)
    assert node.name == "fake.vejez"
    assert package.requests == [
        ({"edad": 66, "semanas": Decimal(400)}, ["elegible"]),
        ({"edad": 66, "semanas": Decimal(600)}, ["elegible"]),
        ({"edad": 66, "semanas": Decimal(600)}, ["elegible", "pension"]),
    ]


@pytest.mark.parametrize(
    ("binding", "package_unit", "code"),
    [
        ({"benefit": "invalidez", "periods_input": "semanas"}, "weeks", "unknown_benefit"),
        ({"benefit": "vejez", "periods_input": "meses"}, "weeks", "unknown_periods_input"),
        (
            {"benefit": "vejez", "periods_input": "semanas", "inputs": {"semanas": 3}},
            "weeks",
            "periods_input_given",
        ),
        (
            {"benefit": "vejez", "periods_input": "semanas", "unit": "month"},
            "weeks",
            "unit_mismatch",
        ),
        ({"benefit": "vejez", "periods_input": "semanas"}, "points", "unit_mismatch"),
    ],
)
def test_package_scheme_refuses_a_wrong_binding(
    binding: dict[str, Any], package_unit: str, code: str
) -> None:
    with pytest.raises(TotalisationError) as raised:
        PackageScheme(FakePackage(package_unit), **{"inputs": {}, **binding})
    assert raised.value.code == code


# --------------------------------------------------------------------------------------------
# The explanation and the record
# --------------------------------------------------------------------------------------------


def test_every_step_of_the_explanation_names_its_article() -> None:
    agreement = load_agreement("eu_883_2004")
    result = totalise(
        agreement,
        {"de_drv": periods(240, "month"), "fr_cnav": periods(40, "quarter")},
        eu_schemes(),
        on=ON,
    )
    award = result["fr_cnav"].explanation
    expected = {
        "award": "Reg. (CE) 883/2004, art. 52.3",
        "total_periods": "Reg. (CE) 883/2004, arts. 6 y 52.1.b.i",
        "converted_periods.de_drv": "Reg. (CE) 987/2009, art. 13",
        "independent_benefit": "Reg. (CE) 883/2004, art. 52.1.a",
        "theoretical_amount": "Reg. (CE) 883/2004, art. 52.1.b.i",
        "pro_rata_ratio": "Reg. (CE) 883/2004, art. 52.1.b.ii",
        "pro_rata_amount": "Reg. (CE) 883/2004, art. 52.1.b.ii",
        "liable_to_pay": "Reg. (CE) 883/2004, art. 57.1",
    }
    assert {name: find(award, name).reference for name in expected} == expected
    # Every computed step has its formula, and the scheme's own nodes sit under the step that
    # asked for them.
    for name in ("award", "total_periods", "theoretical_amount", "pro_rata_ratio"):
        assert find(award, name).formula
    # France: 40 quarters + 240 months / 3 = 120 quarters; 2,000.00 × 0.005 × 120 = 1,200.00.
    assert find(find(award, "theoretical_amount"), "benefit").value == Decimal("1200.00")


def test_the_result_round_trips_through_json() -> None:
    agreement = fixture("two_states")
    result = totalise(
        agreement,
        {"state_a": periods(10, "year"), "state_b": periods(20, "year")},
        schemes_from_agreement(agreement),
        on=ON,
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert data["agreement"] == "two_states"
    assert data["on"] == "2026-01-01"
    first = data["institutions"][0]
    assert first["institution"] == "state_a"
    assert (first["award"], first["pro_rata_amount"], first["independent_benefit"]) == (
        "2000.00",
        "2000.00",
        None,
    )
    assert first["pro_rata_ratio"] == str(Decimal(10) / Decimal(30))
    restored = Node.from_dict(first["explanation"])
    assert restored.to_dict() == first["explanation"]
    assert restored.value == Decimal("2000.00")


# --------------------------------------------------------------------------------------------
# Bad input: a precise error, and nothing computed
# --------------------------------------------------------------------------------------------


def two_state_schemes() -> dict[str, InstitutionScheme]:
    return schemes_from_agreement(fixture("two_states"))


@pytest.mark.parametrize(
    ("held", "code", "fragment"),
    [
        ({"state_c": periods(3, "year")}, "unknown_institution", "state_c"),
        ({"state_a": periods(-1, "year")}, "invalid_periods", "cannot be negative"),
        ({"state_a": {"quantity": 10.5, "unit": "year"}}, "invalid_periods", "not a float"),
        ({"state_a": {"quantity": "NaN", "unit": "year"}}, "invalid_periods", "exact number"),
        ({"state_a": {"quantity": True, "unit": "year"}}, "invalid_periods", "exact number"),
        ({"state_a": {"quantity": "diez", "unit": "year"}}, "invalid_periods", "exact number"),
        ({"state_a": {"quantity": 10, "unit": "decade"}}, "invalid_periods", "unknown unit"),
        ({"state_a": {"quantity": 10}}, "invalid_periods", "expected Periods"),
        ({"state_a": 10}, "invalid_periods", "expected Periods"),
        ({"state_a": periods(120, "month")}, "unit_mismatch", "counts its periods in years"),
    ],
)
def test_bad_periods_are_refused_before_anything_is_computed(
    held: dict[str, Any], code: str, fragment: str
) -> None:
    scheme = BasePlusIncrementScheme("10000.00")
    schemes = {**two_state_schemes(), "state_a": scheme}
    with pytest.raises(TotalisationError) as raised:
        totalise(fixture("two_states"), {"state_b": periods(20, "year"), **held}, schemes, on=ON)
    assert raised.value.code == code
    assert fragment in raised.value.message("en")
    assert scheme.calls == []


def test_no_periods_at_all_is_refused() -> None:
    with pytest.raises(TotalisationError) as raised:
        totalise(fixture("two_states"), {}, two_state_schemes(), on=ON)
    assert raised.value.code == "no_periods"
    assert raised.value.message("es") == (
        "No se indicaron períodos de ninguna institución del convenio two_states."
    )


def test_a_scheme_for_an_institution_outside_the_agreement_is_refused() -> None:
    schemes = {**two_state_schemes(), "state_z": linear("year", "1.00", "0.01", required=1)}
    with pytest.raises(TotalisationError) as raised:
        totalise(fixture("two_states"), {"state_a": periods(10, "year")}, schemes, on=ON)
    assert raised.value.code == "unknown_institution"
    assert raised.value.params["known"] == "state_a, state_b"


def test_an_institution_holding_periods_without_a_scheme_is_refused() -> None:
    with pytest.raises(TotalisationError) as raised:
        totalise(
            load_agreement("eu_883_2004"),
            {"de_drv": periods(240, "month"), "fr_cnav": periods(40, "quarter")},
            {"de_drv": linear("month", "3000.00", "0.002", required=60)},
            on=ON,
        )
    assert raised.value.code == "missing_scheme"
    assert raised.value.message("es").startswith("Falta el régimen de la institución fr_cnav")


def test_a_scheme_counting_other_units_than_its_institution_is_refused() -> None:
    with pytest.raises(TotalisationError) as raised:
        totalise(
            load_agreement("eu_883_2004"),
            {"de_drv": periods(240, "month")},
            {"de_drv": linear("year", "3000.00", "0.02", required=5)},
            on=ON,
        )
    assert raised.value.code == "unit_mismatch"
    assert (
        raised.value.message("en") == "de_drv counts its periods in months; its scheme is in years."
    )
    assert (
        raised.value.message("es")
        == "de_drv cuenta sus períodos en meses; su régimen está en años."
    )


def test_an_unknown_institution_in_the_order_is_refused() -> None:
    with pytest.raises(TotalisationError) as raised:
        totalise(
            load_agreement("eu_883_2004"),
            ALL_SHORT,
            eu_schemes(de_required=20),
            on=ON,
            order=["fr_cnav", "it_inps"],
        )
    assert raised.value.code == "unknown_institution"


def test_errors_are_rules_errors_with_a_message_in_both_languages() -> None:
    with pytest.raises(RulesError) as raised:
        totalise(fixture("two_states"), {"state_q": periods(1, "year")}, {}, on=ON)
    error = raised.value
    assert isinstance(error, TotalisationError)
    assert error.message("es").startswith("La institución state_q no forma parte del convenio")
    assert error.message("en").startswith("Institution state_q is not part of agreement")
    assert error.to_dict()["code"] == "unknown_institution"


# --------------------------------------------------------------------------------------------
# Agreement files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["eu_883_2004", "mercosur", "iberoamericano"])
def test_the_agreement_files_load_and_cite_their_sources(name: str) -> None:
    agreement = load_agreement(name)
    assert agreement.name == name
    assert agreement.title["es"]
    assert agreement.title["en"]
    assert agreement.sources
    for rule in (
        agreement.totalisation,
        agreement.conversion,
        agreement.independent_benefit,
        agreement.theoretical_amount,
        agreement.pro_rata,
        agreement.choose_higher,
    ):
        assert rule.applies
        assert rule.reference
    # The real agreements declare no scheme: Pilar has no package for those institutions, so
    # the caller supplies each one.
    assert schemes_from_agreement(agreement) == {}
    for institution in agreement.institutions.values():
        assert institution.name["es"]
        assert institution.name["en"]
        assert len(institution.country) == 2


def test_the_eu_agreement_carries_articles_52_56_and_57() -> None:
    agreement = load_agreement("eu_883_2004")
    assert agreement.choose_higher.reference == "Reg. (CE) 883/2004, art. 52.3"
    assert agreement.maximum_period.applies
    assert agreement.maximum_period.reference == "Reg. (CE) 883/2004, art. 56.1.a"
    minimum = agreement.minimum_payable_period
    assert minimum is not None
    assert (minimum.quantity, minimum.unit, minimum.when_all_below) == (1, "year", "last_entitled")
    assert agreement.institutions["es_inss"].days_per_week == 7


def test_an_unknown_agreement_is_refused() -> None:
    with pytest.raises(TotalisationError) as raised:
        load_agreement("andino")
    assert raised.value.code == "agreement_not_found"
    # A name is a name, never a path.
    with pytest.raises(TotalisationError):
        load_agreement("../agreements/eu_883_2004")


VALID = (FIXTURES / "two_states.yaml").read_text(encoding="utf-8")


def _line_of(text: str, fragment: str) -> int:
    """The number of the last line containing ``fragment`` (a repeated key is the second)."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if fragment in line]
    assert found, fragment
    return found[-1]


STATE_B_UNIT = "    unit: year\n    scheme:\n      linear:\n        reference_salary: 12000.00"
STATE_B_FULL = '        full_periods: 40\n        reference: "Ley de pensiones del Estado B'
TITLE = (
    "title:\n  es: Convenio de prueba entre dos Estados\n  en: Test agreement between two states\n"
)
CHOOSE_HIGHER = '  choose_higher: {applies: true, reference: "Reg. (CE) 883/2004, art. 52.3"}'
LAST_REFERENCE = '    when_all_below_reference: "Reg. (CE) 883/2004, art. 57.3"\n'


@pytest.mark.parametrize(
    ("old", "new", "code", "at", "fragment"),
    [
        # (text replaced, its replacement, error code, the line it names, part of the message)
        (STATE_B_UNIT, STATE_B_UNIT.replace("year", "[year"), "yaml_error", None, ""),
        ("country: BB\n", "country: BB\n    country: CC\n", "yaml_error", "CC", "duplicate key"),
        ("name: two_states", "name: otro", "schema_error", "name: otro", "does not match"),
        ("  - id: state_b", "  - id: state_a", "schema_error", "  - id: state_a", "already"),
        ("country: BB", "country: Bb", "schema_error", "country: Bb", "ISO 3166"),
        (STATE_B_UNIT, STATE_B_UNIT.replace("year", "years"), "schema_error", "years", "unit"),
        (STATE_B_UNIT, STATE_B_UNIT.replace("year", "day"), "schema_error", "day", "7 days"),
        (
            STATE_B_UNIT,
            STATE_B_UNIT.replace("year", "year\n    colour: blue"),
            "schema_error",
            "colour: blue",
            "unknown key",
        ),
        (
            STATE_B_FULL,
            STATE_B_FULL.replace("40", "cuarenta"),
            "schema_error",
            "cuarenta",
            "number",
        ),
        (
            CHOOSE_HIGHER,
            "  choose_higher: {applies: true}",
            "schema_error",
            "choose_higher",
            "legal",
        ),
        (
            "  pro_rata: {applies: true",
            "  pro_rata: {applies: false",
            "schema_error",
            "pro_rata",
            "off",
        ),
        (LAST_REFERENCE, "", "schema_error", "when_all_below: last_entitled", "last-institution"),
        (TITLE, "title: Convenio\n", "schema_error", "title: Convenio", "Spanish and English"),
    ],
)
def test_a_malformed_agreement_file_is_refused_naming_file_and_line(
    tmp_path: Path, old: str, new: str, code: str, at: str | None, fragment: str
) -> None:
    assert old in VALID
    text = VALID.replace(old, new, 1)
    path = tmp_path / "two_states.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TotalisationError) as raised:
        load_agreement(path=path)
    error = raised.value
    assert error.code == code
    assert error.location is not None
    file, _, line = error.location.rpartition(":")
    assert file == str(path)
    if at is not None:
        assert int(line) == _line_of(text, at), error.message("en")
    assert fragment in error.message("en")
    assert error.message("es") != error.message("en")


def test_an_institution_may_name_its_federation_member(tmp_path: Path) -> None:
    # A totalisation claim reads each institution's periods from the documents its federation
    # member sent (docs/federation.md, "Hub"): the file says which member is which institution.
    text = VALID.replace("  - id: state_a\n", "  - id: state_a\n    member: MX-STATEA\n", 1)
    path = tmp_path / "two_states.yaml"
    path.write_text(text, encoding="utf-8")
    agreement = load_agreement(path=path)
    assert agreement.institutions["state_a"].member == "MX-STATEA"
    assert agreement.institutions["state_b"].member is None
    assert fixture("two_states").institutions["state_a"].member is None


@pytest.mark.parametrize(
    ("member_b", "fragment"),
    [("mx-stateb", "member code"), ("MX-STATEA", "already institution state_a")],
)
def test_a_bad_or_repeated_member_code_is_refused_naming_the_line(
    tmp_path: Path, member_b: str, fragment: str
) -> None:
    text = VALID.replace("  - id: state_a\n", "  - id: state_a\n    member: MX-STATEA\n", 1)
    text = text.replace("  - id: state_b\n", f"  - id: state_b\n    member: {member_b}\n", 1)
    path = tmp_path / "two_states.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TotalisationError) as raised:
        load_agreement(path=path)
    assert raised.value.code == "schema_error"
    assert raised.value.location == f"{path}:{_line_of(text, f'member: {member_b}')}"
    assert fragment in raised.value.message("en")
