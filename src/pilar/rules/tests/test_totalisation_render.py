"""Plain-language report of a totalisation, in Spanish and English (no database).

The figures are those of the worked examples in ``test_totalisation.py``; what is tested here
is that the report states each of them, in the institution's unit, with its article.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from pilar.rules.totalisation import (
    Agreement,
    LinearScheme,
    Periods,
    TotalisationResult,
    load_agreement,
    schemes_from_agreement,
    totalise,
)
from pilar.rules.totalisation_render import render_totalisation

FIXTURES = Path(__file__).parent / "fixtures" / "totalisation"
ON = datetime.date(2026, 3, 1)


def fixture(name: str) -> Agreement:
    return load_agreement(path=FIXTURES / f"{name}.yaml")


def years(quantity: str) -> Periods:
    return Periods(Decimal(quantity), "year")


def two_states(a: str, b: str, *, order: list[str] | None = None) -> TotalisationResult:
    agreement = fixture("two_states")
    return totalise(
        agreement,
        {"state_a": years(a), "state_b": years(b)},
        schemes_from_agreement(agreement),
        on=ON,
        order=order,
    )


def paragraph(text: str, institution: str) -> list[str]:
    """The lines of one institution's paragraph."""
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if f"({institution}," in lines[0]:
            return lines
    raise AssertionError(f"no paragraph for {institution} in:\n{text}")


def test_each_figure_is_stated_with_its_unit_and_article_in_spanish() -> None:
    # State A: 30 years own, 15 with state B → 45, capped at the 40-year maximum (art. 56.1.a).
    #   independent = 10,000 × 0.02 × 30 = 6,000.00; theoretical = 10,000 × 0.02 × 40 = 8,000.00
    #   ratio = 30 / 40 = 0.75; pro-rata = 6,000.00; equal, so the independent benefit is kept.
    text = render_totalisation(two_states("30", "15"), "es")
    assert text.split("\n\n")[0] == (
        "Totalización de períodos según Convenio de prueba entre dos Estados [two_states], "
        "a la fecha 01/03/2026."
    )
    assert paragraph(text, "state_a") == [
        "Instituto del Estado A (state_a, AA), cuenta en años:",
        "- Períodos propios: 30 años (Reg. (CE) 883/2004, arts. 6 y 52.1.b.i).",
        "- Períodos ante Instituto del Estado B: 15 años (Reg. (CE) 987/2009, art. 13).",
        "- Períodos totalizados: 45 años (Reg. (CE) 883/2004, arts. 6 y 52.1.b.i).",
        "- Períodos para el cálculo: 40 años, el período máximo para la prestación completa "
        "(se totalizaron 45 años) (Reg. (CE) 883/2004, art. 56.1.a).",
        "- Con los períodos propios solamente tiene derecho: prestación nacional 6,000.00 "
        "(Reg. (CE) 883/2004, art. 52.1.a; Ley de pensiones del Estado A, art. 1).",
        "- Importe teórico (la prestación con 40 años): 8,000.00 "
        "(Reg. (CE) 883/2004, art. 52.1.b.i; Ley de pensiones del Estado A, art. 1).",
        "- Proporción a prorrata: 30 / 40 = 0.75, sin pasar de 1 "
        "(Reg. (CE) 883/2004, art. 52.1.b.ii; Reg. (CE) 883/2004, art. 56.1.a).",
        "- Prestación a prorrata (importe teórico × proporción): 6,000.00 "
        "(Reg. (CE) 883/2004, art. 52.1.b.ii).",
        "- Período mínimo que da lugar a pago: 1 año; está obligada a pagar "
        "(Reg. (CE) 883/2004, art. 57.1).",
        "- Prestación que paga: 6,000.00. Se paga la prestación nacional: la prestación a "
        "prorrata es igual (Reg. (CE) 883/2004, art. 52.3).",
    ]
    assert text.endswith(
        "Fuentes: Reg. (CE) 883/2004, arts. 52, 56 y 57 (reglas tomadas como modelo)."
    )


def test_english_report() -> None:
    text = render_totalisation(two_states("30", "15"), "en")
    lines = paragraph(text, "state_b")
    assert lines[0] == "State B institute (state_b, BB), counting in years:"
    assert "- Totalised periods: 45 years (Reg. (CE) 883/2004, arts. 6 y 52.1.b.i)." in lines
    assert (
        "- Entitled on own periods alone: independent benefit 3,600.00 "
        "(Reg. (CE) 883/2004, art. 52.1.a; Ley de pensiones del Estado B, art. 1)." in lines
    )
    assert lines[-1] == (
        "- Benefit paid: 3,600.00. The independent benefit is paid: the pro-rata benefit is the "
        "same (Reg. (CE) 883/2004, art. 52.3)."
    )
    assert text.startswith("Totalisation of periods under Test agreement between two states")
    # Any language tag starting with "en" reads English; anything else Spanish.
    assert render_totalisation(two_states("30", "15"), "en-GB") == text
    assert render_totalisation(two_states("30", "15"), "fr").startswith("Totalización")


def test_not_entitled_alone_lists_the_unmet_condition_then_the_pro_rata_award() -> None:
    # Plain agreement (no choose-higher): state B holds 10 years < 15 required, so it pays the
    # pro-rata benefit on 30 + 10 = 40 years: 12,000 × 0.02 × 40 = 9,600 × 10/40 = 2,400.00.
    agreement = fixture("two_states_plain")
    result = totalise(
        agreement,
        {"state_a": years("30"), "state_b": years("10")},
        schemes_from_agreement(agreement),
        on=ON,
    )
    lines = paragraph(render_totalisation(result, "es"), "state_b")
    assert (
        "- Con los períodos propios solamente no tiene derecho (Convenio de prueba, art. 2.a). "
        "No cumple: períodos considerados 10, se requieren 15 "
        "(Ley de pensiones del Estado B, art. 1)." in lines
    )
    assert "- Proporción a prorrata: 10 / 40 = 0.25 (Convenio de prueba, art. 2.c)." in lines
    assert lines[-1] == (
        "- Prestación que paga: 2,400.00. Se paga la prestación a prorrata "
        "(Convenio de prueba, art. 2.a)."
    )
    # No minimum payable period in this agreement: no line about it.
    assert not any("mínimo" in line for line in lines)


def test_below_the_minimum_payable_period_pays_nothing_with_its_article() -> None:
    # State B holds half a year: less than the one-year minimum (art. 57.1) and not entitled on
    # it alone, so it pays nothing although its pro-rata benefit would be 120.00.
    lines = paragraph(render_totalisation(two_states("30", "0.5"), "en"), "state_b")
    assert (
        "- Minimum payable period: 1 year; the institution is not bound to pay "
        "(Reg. (CE) 883/2004, art. 57.1)." in lines
    )
    assert "- Pro-rata benefit (theoretical amount × ratio): 120.00" in lines[-3]
    assert lines[-1].startswith("- Benefit paid: 0.00. Pays nothing: it holds less than")
    assert lines[-1].endswith("(Reg. (CE) 883/2004, art. 57.1).")


def test_not_entitled_even_with_the_totalised_periods() -> None:
    # 5 + 3 = 8 years < 15: no entitlement anywhere; there is no theoretical amount to state.
    lines = paragraph(render_totalisation(two_states("5", "3"), "es"), "state_a")
    assert (
        "- Con los períodos totalizados tampoco tiene derecho "
        "(Reg. (CE) 883/2004, arts. 6 y 52.1.b.i). No cumple: períodos considerados 8, "
        "se requieren 15 (Ley de pensiones del Estado A, art. 1)." in lines
    )
    assert not any("Importe teórico" in line or "prorrata:" in line for line in lines)
    assert lines[-1] == (
        "- Prestación que paga: 0.00. Sin derecho: no se reúnen los requisitos ni con los "
        "períodos totalizados (Reg. (CE) 883/2004, arts. 6 y 52.1.b.i)."
    )


def test_last_institution_pays_on_all_periods_and_the_order_is_stated() -> None:
    # Both below one year; schemes entitled from one year. Art. 57.3: the last one (state B)
    # pays as if all 1.25 years were its own: 12,000 × 0.02 × 1.25 = 300.00.
    agreement = fixture("two_states")

    def scheme(salary: str, law: str) -> LinearScheme:
        return LinearScheme(
            unit="year",
            reference_salary=Decimal(salary),
            rate_per_period=Decimal("0.02"),
            required_periods=Decimal(1),
            full_periods=Decimal(40),
            reference=law,
        )

    result = totalise(
        agreement,
        {"state_a": years("0.5"), "state_b": years("0.75")},
        {"state_a": scheme("10000", "Ley A, art. 1"), "state_b": scheme("12000", "Ley B, art. 1")},
        on=ON,
        order=["state_a", "state_b"],
    )
    text = render_totalisation(result, "en")
    assert text.split("\n\n")[0].endswith(
        "\nOrder in which the person was insured: state_a, state_b."
    )
    assert paragraph(text, "state_a")[-1].startswith("- Benefit paid: 0.00. Pays nothing")
    assert paragraph(text, "state_b")[-1] == (
        "- Benefit paid: 300.00. Pays as if all periods had been completed under its "
        "legislation: no institution held the minimum period and it is the last one whose "
        "conditions are met (Reg. (CE) 883/2004, art. 57.3)."
    )


def months_agreement(tmp_path: Path) -> Agreement:
    """``two_states`` with state B counting months, and its one source not yet verified.

    Only units and sources change; state B's scheme figures (now months) are not looked at.
    """
    text = (FIXTURES / "two_states.yaml").read_text(encoding="utf-8")
    state_b = text.index("  - id: state_b")
    changed = text[:state_b] + text[state_b:].replace("unit: year", "unit: month", 1)
    path = tmp_path / "two_states.yaml"
    path.write_text(changed.replace("verified: true", "verified: false"), encoding="utf-8")
    return load_agreement(path=path)


def test_periods_in_another_unit_are_shown_before_and_after_conversion(tmp_path: Path) -> None:
    # State B counts months: its 120 months are 10 years for state A; state A's 30 years are
    # 360 months for state B (Reg. 987/2009 art. 13).
    agreement = months_agreement(tmp_path)
    result = totalise(
        agreement,
        {"state_a": years("30"), "state_b": Periods(Decimal(120), "month")},
        schemes_from_agreement(agreement),
        on=ON,
    )
    text = render_totalisation(result, "es")
    assert (
        "- Períodos ante Instituto del Estado B: 120 meses, que son 10 años "
        "(Reg. (CE) 987/2009, art. 13)." in paragraph(text, "state_a")
    )
    assert (
        "- Períodos ante Instituto del Estado A: 30 años, que son 360 meses "
        "(Reg. (CE) 987/2009, art. 13)." in paragraph(text, "state_b")
    )
    assert paragraph(text, "state_b")[0] == "Instituto del Estado B (state_b, BB), cuenta en meses:"
    # A source whose wording was not checked says so.
    assert text.endswith("(reglas tomadas como modelo) (por verificar).")


@pytest.fixture(scope="module")
def imss_result() -> TotalisationResult:
    agreement = fixture("imss_and_state")
    person = {
        "edad": 66,
        "salario_promedio_diario": Decimal("630.08"),
        "conyuge": True,
        "hijos_dependientes": 0,
        "padres_dependientes": 0,
        "tiene_empleo_vigente": False,
        "cotizo_antes_1997": True,
    }
    return totalise(
        agreement,
        {"mx_imss": Periods(Decimal(420), "week"), "state_m": Periods(Decimal(180), "month")},
        schemes_from_agreement(agreement, person_inputs={"mx_imss": person}),
        on=ON,
    )


def test_a_package_scheme_gives_its_own_unmet_condition_and_article(
    imss_result: TotalisationResult,
) -> None:
    # 420 weeks < 500 (LSS 1973 art. 138); with state M's 180 months (780 weeks) the total is
    # 1,200 weeks, whose old-age pension is 14,209.53 (vejez.yaml, first case): × 420/1,200 =
    # 14,209.53 × 0.35 = 4,973.3355 → 4,973.34.
    lines = paragraph(render_totalisation(imss_result, "es"), "mx_imss")
    assert lines[0] == "Instituto Mexicano del Seguro Social (mx_imss, MX), cuenta en semanas:"
    assert (
        "- Con los períodos propios solamente no tiene derecho (Convenio de prueba, art. 2.a). "
        "No cumple: semanas de cotización reconocidas 420, se requieren 500 "
        "(LSS 1973 art. 138)." in lines
    )
    # The theoretical amount cites the agreement and the package's article for the amount.
    assert (
        "- Importe teórico (la prestación con 1,200 semanas): 14,209.53 "
        "(Convenio de prueba, art. 2.b; LSS 1973 art. 167, 164 y 168)." in lines
    )
    assert lines[-1] == (
        "- Prestación que paga: 4,973.34. Se paga la prestación a prorrata "
        "(Convenio de prueba, art. 3)."
    )
