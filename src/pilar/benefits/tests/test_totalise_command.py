"""``pilar rules totalise``: totalisation of periods from the command line.

The worked example is the documented one (``docs/examples/agreement-imss-and-state.yaml``):
420 weeks with the IMSS and 180 months with an illustrative state institute, on 2026-03-01.
Nothing here touches the database: totalise reads no person and writes nothing.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from pilar.rules import load_package
from pilar.rules.package import SCHEMES_DIR

EXAMPLE = (
    Path(__file__).resolve().parents[4] / "docs" / "examples" / "agreement-imss-and-state.yaml"
)
ON = "2026-03-01"
# The person of the first old-age case of imss_1973/1.0.0/tests/vejez.yaml, less the weeks.
PERSON = [
    "--input=mx_imss.edad=66",
    "--input=mx_imss.salario_promedio_diario=630.08",
    "--input=mx_imss.conyuge=yes",
    "--input=mx_imss.hijos_dependientes=0",
    "--input=mx_imss.padres_dependientes=0",
    "--input=mx_imss.tiene_empleo_vigente=no",
    "--input=mx_imss.cotizo_antes_1997=yes",
]
EXAMPLE_ARGUMENTS = [
    "--agreement-file",
    str(EXAMPLE),
    "--period=mx_imss=420",
    "--period=mx_state=180",
    "--on",
    ON,
    *PERSON,
]


def _totalise(*args: str, language: str = "en") -> str:
    output = StringIO()
    call_command("rules", "--language", language, "totalise", *args, stdout=output)
    return output.getvalue()


def _failing(*args: str, language: str = "en") -> str:
    """The error of a run that must fail, after checking it printed nothing."""
    output = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("rules", "--language", language, "totalise", *args, stdout=output)
    assert output.getvalue() == ""
    return str(raised.value)


def _paragraph(text: str, institution: str) -> list[str]:
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if f"({institution}," in lines[0]:
            return lines
    raise AssertionError(f"no paragraph for {institution} in:\n{text}")


# The worked example, by hand.
#
# IMSS (weeks). The state's 180 months are 180 × 13/3 = 780 weeks (Reg. 987/2009 art. 13.1.c);
# total 420 + 780 = 1,200 weeks. 420 < 500 weeks (LSS 1973 art. 138): no pension on its own
# weeks. The 1973 old-age pension for 1,200 weeks with 630.08 a day (2 minimum wages) and a
# spouse is 14,209.53 a month (vejez.yaml, first case: 0.644725 × 630.08 × 365 × 1.15 / 12).
# Pro-rata: 14,209.53 × 420 / 1,200 = 14,209.53 × 0.35 = 4,973.3355 → 4,973.34, the award.
#
# State institute (months). The IMSS's 420 weeks are 420 × 3/13 = 96.92 → 97 months (a fraction
# is rounded up, art. 13.1.e); total 180 + 97 = 277 months, under the 360-month maximum.
# Independent: 9,000 × 0.002 × 180 = 3,240.00 (180 ≥ 120 months). Theoretical: 9,000 × 0.002
# × 277 = 4,986.00; pro-rata 4,986.00 × 180/277 = 3,240.00. The higher of the two (clause 4):
# equal, so the independent benefit, 3,240.00.
IMSS_AWARD = "4,973.34"
STATE_AWARD = "3,240.00"


def test_the_worked_example_in_english() -> None:
    text = _totalise(*EXAMPLE_ARGUMENTS)
    assert text.startswith(
        "Totalisation of periods under Example agreement between the IMSS and a state pensions "
        "institute (illustrative) [agreement-imss-and-state], on 2026-03-01."
    )
    imss = _paragraph(text, "mx_imss")
    assert imss[0] == "Mexican Social Security Institute (mx_imss, MX), counting in weeks:"
    assert "- Own periods: 420 weeks (Convenio ilustrativo, cláusula 1)." in imss
    assert any(
        line.startswith(
            "- Periods with State Pensions Institute (example): 180 months, counted as 780 weeks"
        )
        for line in imss
    )
    assert "- Totalised periods: 1,200 weeks (Convenio ilustrativo, cláusula 1)." in imss
    assert (
        "- Not entitled on own periods alone (Convenio ilustrativo, cláusula 3.a). Not met: "
        "recognised weeks of contribution 420, 500 required (LSS 1973 art. 138)." in imss
    )
    assert (
        "- Theoretical amount (the benefit for 1,200 weeks): 14,209.53 "
        "(Convenio ilustrativo, cláusula 3.b; LSS 1973 art. 167, 164 y 168)." in imss
    )
    assert "- Pro-rata ratio: 420 / 1,200 = 0.35 (Convenio ilustrativo, cláusula 3.c)." in imss
    assert imss[-1] == (
        f"- Benefit paid: {IMSS_AWARD}. The pro-rata benefit is paid "
        "(Convenio ilustrativo, cláusula 4)."
    )
    state = _paragraph(text, "mx_state")
    assert "counted as 97 months" in state[2]
    assert "- Totalised periods: 277 months (Convenio ilustrativo, cláusula 1)." in state
    assert state[-1].startswith(f"- Benefit paid: {STATE_AWARD}. The independent benefit is paid")
    # The example's one source is made up, and the report says it was never verified.
    assert text.rstrip().endswith("(not yet verified).")


def test_the_report_follows_the_language_option() -> None:
    text = _totalise(*EXAMPLE_ARGUMENTS, language="es")
    imss = _paragraph(text, "mx_imss")
    assert imss[0] == "Instituto Mexicano del Seguro Social (mx_imss, MX), cuenta en semanas:"
    assert imss[-1] == (
        f"- Prestación que paga: {IMSS_AWARD}. Se paga la prestación a prorrata "
        "(Convenio ilustrativo, cláusula 4)."
    )
    assert "a la fecha 01/03/2026" in text.splitlines()[0]


def test_json_output_carries_every_figure_exactly_and_the_package_used() -> None:
    data = json.loads(_totalise(*EXAMPLE_ARGUMENTS, "--json"))
    assert (data["agreement"], data["on"]) == ("agreement-imss-and-state", ON)
    imss, state = data["institutions"]
    assert (imss["institution"], state["institution"]) == ("mx_imss", "mx_state")
    # Numbers are exact strings, never floats.
    assert imss["converted_periods"] == {"mx_state": "780"}
    assert (imss["total_periods"], imss["theoretical_amount"]) == ("1200", "14209.53")
    assert (imss["pro_rata_ratio"], imss["award"], imss["award_basis"]) == (
        "0.35",
        "4973.34",
        "pro_rata",
    )
    assert imss["entitled_independently"] is False
    package = load_package("imss_1973", "1.0.0")
    assert imss["scheme"] == {
        "kind": "package",
        "package": "imss_1973",
        "version": "1.0.0",
        "content_hash": package.content_hash,
        "benefit": "vejez",
        "periods_input": "semanas_cotizadas",
    }
    assert imss["explanation"]["name"] == "award"
    assert (state["total_periods"], state["independent_benefit"], state["award"]) == (
        "277",
        "3240.00",
        "3240.00",
    )
    assert state["award_basis"] == "independent"


def test_the_order_is_passed_to_the_totalisation() -> None:
    data = json.loads(_totalise(*EXAMPLE_ARGUMENTS, "--order", "mx_state, mx_imss", "--json"))
    assert data["order"] == ["mx_state", "mx_imss"]


def test_a_built_in_agreement_is_found_by_name_and_a_missing_scheme_named_with_its_line() -> None:
    # The EU agreement file declares no scheme for the Spanish INSS (Pilar holds no package for
    # it): the error names the institution and where the agreement file describes it.
    message = _failing("--agreement", "eu_883_2004", "--period", "es_inss=3600", "--on", ON)
    assert "eu_883_2004.yaml:" in message
    assert "The scheme of institution es_inss is missing" in message
    message = _failing(
        "--agreement", "eu_883_2004", "--period", "es_inss=3600", "--on", ON, language="es"
    )
    assert "Falta el régimen de la institución es_inss" in message


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        # --period syntax
        (
            ["--period=mx_imss"],
            "--period takes INSTITUTION=QUANTITY, a number in the institution's own unit "
            "(e.g. mx_imss=420), not 'mx_imss'.",
        ),
        (["--period=mx_imss=many"], "not 'mx_imss=many'"),
        (["--period=mx_imss=NaN"], "not 'mx_imss=NaN'"),
        (["--period==420"], "not '=420'"),
        (["--period=mx_imss=420", "--period=mx_imss=10"], "--period mx_imss is given twice."),
        # --input syntax
        (
            ["--period=mx_imss=420", "--input=edad=66"],
            "--input takes INSTITUTION.NAME=VALUE (e.g. mx_imss.edad=66), not 'edad=66'.",
        ),
        (["--period=mx_imss=420", "--input=mx_imss.edad"], "not 'mx_imss.edad'"),
        (["--period=mx_imss=420", "--input=mx_imss.edad="], "not 'mx_imss.edad='"),
        (
            ["--period=mx_imss=420", "--input=mx_imss.edad=66", "--input=mx_imss.edad=67"],
            "--input mx_imss.edad is given twice.",
        ),
    ],
)
def test_bad_syntax_gets_a_clear_error(arguments: list[str], expected: str) -> None:
    message = _failing("--agreement-file", str(EXAMPLE), "--on", ON, *arguments)
    assert expected in message


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            ["--period=mx_imss=420", "--period=es_inss=10"],
            "Institution es_inss is not part of agreement agreement-imss-and-state "
            "(institutions: mx_imss, mx_state).",
        ),
        (
            ["--period=mx_state=-5"],
            "Invalid periods for mx_state (-5): cannot be negative",
        ),
        (
            ["--period=mx_state=180", "--input=mx_imss.edad=66"],
            "--input mx_imss.edad: mx_imss holds no periods (no --period mx_imss=…).",
        ),
        (
            ["--period=mx_state=180", "--input=mx_state.edad=66"],
            "--input mx_state.edad: the scheme of mx_state in the agreement file is linear, "
            "which takes no inputs.",
        ),
        (
            [*EXAMPLE_ARGUMENTS[2:4], "--input=mx_imss.edda=66"],
            "--input mx_imss.edda: package imss_1973 1.0.0 has no input edda (its inputs: edad, "
            "salario_promedio_diario,",
        ),
        (
            [*EXAMPLE_ARGUMENTS[2:4], "--input=mx_imss.semanas_cotizadas=900"],
            "Input semanas_cotizadas must not be among the person's inputs: totalisation sets it",
        ),
        (
            [*EXAMPLE_ARGUMENTS[2:4], "--input=mx_imss.edad=sixty"],
            "(edad) must be of type number, got 'sixty'.",
        ),
        (
            [*EXAMPLE_ARGUMENTS[2:4], "--input=mx_imss.conyuge=maybe"],
            "(conyuge) must be of type bool, got 'maybe'.",
        ),
        (
            [*EXAMPLE_ARGUMENTS[2:4], *PERSON, "--order", "mx_imss,es_inss"],
            "Institution es_inss is not part of agreement agreement-imss-and-state",
        ),
    ],
)
def test_input_the_agreement_or_package_refuses_gets_a_clear_error(
    arguments: list[str], expected: str
) -> None:
    message = _failing("--agreement-file", str(EXAMPLE), "--on", ON, *arguments)
    assert expected in message


def test_missing_inputs_are_all_listed_with_their_labels() -> None:
    message = _failing(
        "--agreement-file",
        str(EXAMPLE),
        "--on",
        ON,
        "--period=mx_imss=420",
        "--input=mx_imss.edad=66",
    )
    assert message.startswith("mx_imss: Missing required inputs: ")
    for name in ("salario_promedio_diario", "conyuge", "hijos_dependientes", "cotizo_antes_1997"):
        assert f"({name})" in message
    assert "(edad)" not in message
    assert message.endswith("(--input mx_imss.NAME=VALUE)")


def test_engine_errors_come_in_the_language_of_the_option() -> None:
    message = _failing(
        "--agreement-file", str(EXAMPLE), "--on", ON, "--period=mx_state=-5", language="es"
    )
    assert "Períodos inválidos para mx_state (-5): no puede ser negativa" in message


def test_an_unknown_or_malformed_agreement_is_refused(tmp_path: Path) -> None:
    message = _failing("--agreement", "andean", "--period=x=1", "--on", ON)
    assert message.startswith("There is no agreement andean")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\ntitle: [unclosed\n", encoding="utf-8")
    message = _failing("--agreement-file", str(broken), "--period=x=1", "--on", ON)
    assert "broken.yaml:" in message
    assert "Malformed YAML" in message


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            ["--agreement", "eu_883_2004", "--agreement-file", str(EXAMPLE), "--on", ON],
            "not allowed with argument --agreement",
        ),
        (["--period=mx_imss=420", "--on", ON], "one of the arguments --agreement"),
        (["--agreement-file", str(EXAMPLE), "--on", ON], "--period"),
        (["--agreement-file", str(EXAMPLE), "--period=mx_imss=1"], "--on"),
        (
            ["--agreement-file", str(EXAMPLE), "--period=mx_imss=1", "--on", "01/03/2026"],
            "not a date (YYYY-MM-DD): '01/03/2026'",
        ),
        (
            ["--agreement-file", str(EXAMPLE), "--period=mx_imss=1", "--on", ON, "--order=a,,b"],
            "expected institution ids separated by commas, each once (A,B,...), not 'a,,b'",
        ),
        (
            ["--agreement-file", str(EXAMPLE), "--period=mx_imss=1", "--on", ON, "--order=a,a"],
            "each once",
        ),
    ],
)
def test_the_argument_parser_refuses_missing_or_malformed_options(
    arguments: list[str], expected: str
) -> None:
    assert expected in _failing(*arguments)


def test_schemes_dir_is_refused_rather_than_silently_ignored() -> None:
    with pytest.raises(CommandError, match="--schemes-dir does not apply to totalise"):
        call_command("rules", "--schemes-dir", str(SCHEMES_DIR), "totalise", *EXAMPLE_ARGUMENTS)
