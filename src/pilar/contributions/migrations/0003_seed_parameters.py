"""Seed the parameter store: the general minimum wage and the UMA for the years the synthetic-data
seeder covers, the contribution base cap, and the IMSS and INFONAVIT rates.

The figures are copied here (not imported from ``pilar.registry.seeding.wages``) because a
migration must stay frozen: changing the seeder later must not change what this migration did.

Every value is flagged ``needs_verification``: the wage tables are approximate (see the seeder)
and the rates were written from memory of the Ley del Seguro Social (LSS) and the Ley del
INFONAVIT. A data steward clears the flag after checking each value against the DOF.
"""

import datetime
from decimal import Decimal

from django.db import migrations

# General minimum wage (zone A / Mexico City), daily pesos of today's currency, one value per
# calendar year; in years with several increases, the highest rate of the year.
# fmt: off
MINIMUM_WAGE = {
    1960: "0.0145", 1961: "0.0145", 1962: "0.0175", 1963: "0.0175", 1964: "0.0215",
    1965: "0.0215", 1966: "0.025", 1967: "0.025", 1968: "0.02825", 1969: "0.02825",
    1970: "0.032", 1971: "0.032", 1972: "0.038", 1973: "0.044", 1974: "0.052", 1975: "0.0634",
    1976: "0.0967", 1977: "0.1064", 1978: "0.120", 1979: "0.138", 1980: "0.163", 1981: "0.210",
    1982: "0.364", 1983: "0.523", 1984: "0.816", 1985: "1.250", 1986: "2.480", 1987: "6.470",
    1988: "8.000", 1989: "9.160", 1990: "11.900", 1991: "13.330", 1992: "13.330",
    1993: "14.27", 1994: "15.27", 1995: "20.15", 1996: "26.45", 1997: "26.45", 1998: "34.45",
    1999: "34.45", 2000: "37.90", 2001: "40.35", 2002: "42.15", 2003: "43.65", 2004: "45.24",
    2005: "46.80", 2006: "48.67", 2007: "50.57", 2008: "52.59", 2009: "54.80", 2010: "57.46",
    2011: "59.82", 2012: "62.33", 2013: "64.76", 2014: "67.29", 2015: "70.10", 2016: "73.04",
    2017: "80.04", 2018: "88.36", 2019: "102.68", 2020: "123.22", 2021: "141.70",
    2022: "172.87", 2023: "207.44", 2024: "248.93", 2025: "278.80", 2026: "315.04",
}
# UMA, daily pesos. The first value took effect on 28 January 2016; since 2017 each new value
# takes effect on 1 February.
UMA = {
    2016: "73.04", 2017: "75.49", 2018: "80.60", 2019: "84.49", 2020: "86.88", 2021: "89.62",
    2022: "96.22", 2023: "103.74", 2024: "108.57", 2025: "113.14", 2026: "117.31",
}
# fmt: on

WAGE_NOTE = (
    "Copied from the synthetic-data seeder's approximate table; check against the DOF. "
    "Years with several increases carry the highest rate. From 2019 the northern border zone "
    "(Zona Libre de la Frontera Norte) has its own, higher minimum wage, which is not modelled."
)
RATE_NOTE = (
    "Written from memory of the law; check the article and the percentage against the DOF. "
    "Stored from 2023-01-01 only: the rate is believed unchanged since the 1997 law's "
    "transition ended in 2007, but earlier history is not seeded."
)

# Employer old-age and cesantía rate (percent of SBC) by year and SBC band, from the transitory
# table of the 2020 pension reform (DOF 16 December 2020), which raises the employer's share from
# 2023 to 2030. The band suffixes are the code's last segment; ``calculation`` maps them to limits.
CESANTIA_BANDS = (
    "up_to_1_00_minimum_wage",
    "1_01_to_1_50_uma",
    "1_51_to_2_00_uma",
    "2_01_to_2_50_uma",
    "2_51_to_3_00_uma",
    "3_01_to_3_50_uma",
    "3_51_to_4_00_uma",
    "4_01_uma_and_above",
)
# fmt: off
CESANTIA_EMPLOYER = {
    2023: ("3.150", "3.281", "3.575", "3.751", "3.869", "3.953", "4.016", "4.241"),
    2024: ("3.150", "3.413", "4.000", "4.353", "4.588", "4.756", "4.882", "5.331"),
    2025: ("3.150", "3.544", "4.426", "4.954", "5.307", "5.559", "5.747", "6.422"),
    2026: ("3.150", "3.676", "4.851", "5.556", "6.026", "6.361", "6.613", "7.513"),
    2027: ("3.150", "3.807", "5.276", "6.157", "6.745", "7.164", "7.479", "8.603"),
    2028: ("3.150", "3.939", "5.701", "6.759", "7.464", "7.967", "8.345", "9.694"),
    2029: ("3.150", "4.070", "6.126", "7.360", "8.183", "8.770", "9.211", "10.784"),
    2030: ("3.150", "4.202", "6.552", "7.962", "8.902", "9.573", "10.077", "11.875"),
}
# fmt: on
CESANTIA_NOTE = (
    "From the 2020 reform's transitory table, written from memory: the 2023 and 2030 rows are "
    "the best remembered, the years between follow the yearly ramp; check every cell, and how "
    "IMSS places an SBC between two bands (for example 1.505 UMA), against the DOF."
)

# (code, percent, legal reference, extra note). All valid from 2023-01-01, open-ended.
RATES = (
    ("rate.retirement.employer", "2.000", "LSS art. 168 fr. I (retiro)", ""),
    ("rate.old_age_cesantia.worker", "1.125", "LSS art. 168 fr. II (cesantía y vejez)", ""),
    ("rate.disability_life.employer", "1.750", "LSS art. 147 (invalidez y vida)", ""),
    ("rate.disability_life.worker", "0.625", "LSS art. 147 (invalidez y vida)", ""),
    (
        "rate.work_risks.employer",
        "0.54355",
        "LSS arts. 71–74 (riesgos de trabajo); Reglamento de la LSS en materia de afiliación",
        "A default only: each employer pays its own risk premium (between 0.5% and 15%), set "
        "from its claims record; 0.54355% is the class I premium for a new employer.",
    ),
    (
        "rate.sickness_maternity.in_kind_fixed.employer",
        "20.400",
        "LSS art. 106 fr. I (cuota fija, percent of one UMA per day)",
        "",
    ),
    (
        "rate.sickness_maternity.in_kind_excess.employer",
        "1.100",
        "LSS art. 106 fr. II (excedente de 3 UMA)",
        "",
    ),
    (
        "rate.sickness_maternity.in_kind_excess.worker",
        "0.400",
        "LSS art. 106 fr. II (excedente de 3 UMA)",
        "",
    ),
    ("rate.sickness_maternity.cash.employer", "0.700", "LSS art. 107 (prestaciones en dinero)", ""),
    ("rate.sickness_maternity.cash.worker", "0.250", "LSS art. 107 (prestaciones en dinero)", ""),
    (
        "rate.sickness_maternity.pensioners.employer",
        "1.050",
        "LSS art. 25 (gastos médicos de pensionados)",
        "",
    ),
    (
        "rate.sickness_maternity.pensioners.worker",
        "0.375",
        "LSS art. 25 (gastos médicos de pensionados)",
        "",
    ),
    (
        "rate.childcare.employer",
        "1.000",
        "LSS art. 211 (guarderías y prestaciones sociales)",
        "",
    ),
    ("rate.housing.employer", "5.000", "Ley del INFONAVIT art. 29 fr. II", ""),
)


def _rows():
    years = sorted(MINIMUM_WAGE)
    for year in years:
        yield {
            "code": "minimum_wage_daily",
            "value": MINIMUM_WAGE[year],
            "unit": "pesos_per_day",
            "valid_from": datetime.date(year, 1, 1),
            "valid_to": None if year == years[-1] else datetime.date(year, 12, 31),
            "legal_reference": f"Resolución de la CONASAMI, DOF, salario mínimo general {year}",
            "verification_note": WAGE_NOTE,
        }
    years = sorted(UMA)
    for year in years:
        start = datetime.date(2016, 1, 28) if year == 2016 else datetime.date(year, 2, 1)
        yield {
            "code": "uma_daily",
            "value": UMA[year],
            "unit": "pesos_per_day",
            "valid_from": start,
            "valid_to": None if year == years[-1] else datetime.date(year + 1, 1, 31),
            "legal_reference": f"Ley para Determinar el Valor de la UMA; INEGI, DOF, UMA {year}",
            "verification_note": WAGE_NOTE if year < 2026 else WAGE_NOTE + " 2026 is projected.",
        }
    yield {
        "code": "sbc_cap_uma",
        "value": "25",
        "unit": "uma_multiple",
        "valid_from": datetime.date(2016, 1, 28),
        "valid_to": None,
        "legal_reference": "LSS art. 28; decreto de desindexación del salario mínimo, DOF "
        "27 January 2016 (caps expressed in minimum wages are read as UMA)",
        "verification_note": "Before the UMA the cap was 25 minimum wages (phased in from 15 "
        "in 1997); earlier caps are not seeded.",
    }
    yield {
        "code": "sickness_maternity.excess_threshold_uma",
        "value": "3",
        "unit": "uma_multiple",
        "valid_from": datetime.date(2016, 1, 28),
        "valid_to": None,
        "legal_reference": "LSS art. 106 fr. II (excedente de 3 veces la UMA)",
        "verification_note": "Earlier periods (3 minimum wages) are not seeded.",
    }
    yield {
        "code": "rate.old_age_cesantia.employer",
        "value": "3.150",
        "unit": "percent",
        "valid_from": datetime.date(1997, 7, 1),
        "valid_to": datetime.date(2022, 12, 31),
        "legal_reference": "LSS art. 168 fr. II as in force until the 2020 reform",
        "verification_note": "Single rate before the 2023–2030 ramp; from 2023 the rate depends "
        "on the SBC band (codes rate.old_age_cesantia.employer.<band>).",
    }
    for year, rates in sorted(CESANTIA_EMPLOYER.items()):
        for band, rate in zip(CESANTIA_BANDS, rates, strict=True):
            yield {
                "code": f"rate.old_age_cesantia.employer.{band}",
                "value": rate,
                "unit": "percent",
                "valid_from": datetime.date(year, 1, 1),
                "valid_to": None if year == 2030 else datetime.date(year, 12, 31),
                "legal_reference": "LSS art. 168 fr. II; artículo segundo transitorio del "
                "decreto de reforma, DOF 16 December 2020",
                "verification_note": CESANTIA_NOTE,
            }
    for code, rate, reference, note in RATES:
        yield {
            "code": code,
            "value": rate,
            "unit": "percent",
            "valid_from": datetime.date(2023, 1, 1),
            "valid_to": None,
            "legal_reference": reference,
            "verification_note": f"{note} {RATE_NOTE}".strip(),
        }


def seed(apps, schema_editor):
    Parameter = apps.get_model("contributions", "Parameter")
    Parameter.objects.bulk_create(
        Parameter(**{**row, "value": Decimal(row["value"]), "needs_verification": True})
        for row in _rows()
    )


def unseed(apps, schema_editor):
    # Only the seeded rows go; values staff set since then are not this migration's to remove.
    Parameter = apps.get_model("contributions", "Parameter")
    for row in _rows():
        Parameter.objects.filter(
            code=row["code"], valid_from=row["valid_from"], needs_verification=True
        ).delete()


class Migration(migrations.Migration):
    dependencies = [("contributions", "0002_parameter_overlap_triggers")]
    operations = [migrations.RunPython(seed, unseed)]
