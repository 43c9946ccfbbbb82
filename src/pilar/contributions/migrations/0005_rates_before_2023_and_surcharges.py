"""Seed the branch rates for 2008–2022 and the monthly surcharge rate on late contributions.

Declarations may be filed for the last five years (LSS art. 297), which reach back before 2023,
so the rates 0003 seeded from 2023 get their earlier period. From 2008 (the end of the 1997
law's transition for the sickness fixed fee and excess) to 2022 the branch rates were the same
as in 2023; only the employer's old-age and cesantía rate differed (a single 3.150%, seeded in
0003). Late payment carries surcharges (recargos) at the monthly rate of the Ley de Ingresos de
la Federación (Código Fiscal de la Federación art. 21, applied by LSS art. 40 A). Every value is
flagged for verification against the DOF.
"""

import datetime
from decimal import Decimal

from django.db import migrations

RATE_CODES = (
    ("rate.retirement.employer", "2.000"),
    ("rate.old_age_cesantia.worker", "1.125"),
    ("rate.disability_life.employer", "1.750"),
    ("rate.disability_life.worker", "0.625"),
    ("rate.work_risks.employer", "0.54355"),
    ("rate.sickness_maternity.in_kind_fixed.employer", "20.400"),
    ("rate.sickness_maternity.in_kind_excess.employer", "1.100"),
    ("rate.sickness_maternity.in_kind_excess.worker", "0.400"),
    ("rate.sickness_maternity.cash.employer", "0.700"),
    ("rate.sickness_maternity.cash.worker", "0.250"),
    ("rate.sickness_maternity.pensioners.employer", "1.050"),
    ("rate.sickness_maternity.pensioners.worker", "0.375"),
    ("rate.childcare.employer", "1.000"),
    ("rate.housing.employer", "5.000"),
)
NOTE = "Same rate as from 2023, written from memory of the LSS as in force 2008–2022; check."


def _rows():
    for code, value in RATE_CODES:
        yield {
            "code": code,
            "value": value,
            "unit": "percent",
            "valid_from": datetime.date(2008, 1, 1),
            "valid_to": datetime.date(2022, 12, 31),
            "legal_reference": "LSS as in force 2008–2022",
            "verification_note": NOTE,
        }
    yield {
        "code": "surcharge.monthly_rate",
        "value": "1.470",
        "unit": "percent",
        "valid_from": datetime.date(2020, 1, 1),
        "valid_to": None,
        "legal_reference": "Ley de Ingresos de la Federación art. 8 (recargos por mora); "
        "CFF art. 21; LSS art. 40 A",
        "verification_note": "1.47% a month as in the LIF 2020–2026; check each year's LIF.",
    }


def seed(apps, schema_editor):
    Parameter = apps.get_model("contributions", "Parameter")
    Parameter.objects.bulk_create(
        Parameter(**{**row, "value": Decimal(row["value"]), "needs_verification": True})
        for row in _rows()
    )


def unseed(apps, schema_editor):
    Parameter = apps.get_model("contributions", "Parameter")
    for row in _rows():
        Parameter.objects.filter(
            code=row["code"], valid_from=row["valid_from"], needs_verification=True
        ).delete()


class Migration(migrations.Migration):
    dependencies = [("contributions", "0004_declarations_records_payments")]

    operations = [migrations.RunPython(seed, unseed)]
