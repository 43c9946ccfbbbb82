"""Contribution histories for the demo, posted through the real declaration pipeline.

For the largest employers, one declaration file per recent month is written from the registry
(the workers employed in the month, their CURP and names, the days their employment covers and
their SBC) and submitted, validated, confirmed and posted exactly as an employer's upload would
be. The last month of the demo employer is left undeclared, with a ready file (and one with
mistakes) under ``var/demo/`` to upload through the portal.
"""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Q

from pilar.contributions import services
from pilar.contributions.models import Declaration, DeclarationStatus
from pilar.contributions.parameters import parameter_value
from pilar.core.actor import Actor
from pilar.core.identifiers import CURP
from pilar.core.roles import Role
from pilar.registry.models import Employer, Employment, Identifier

DEMO_EMPLOYER_PASSWORD = "demo-employer-2026"  # noqa: S105 — the published demo password


def months_back(count: int, today: datetime.date) -> list[datetime.date]:
    """The ``count`` months before today's, oldest first."""
    months: list[datetime.date] = []
    current = today.replace(day=1)
    for _ in range(count):
        current = (current - datetime.timedelta(days=1)).replace(day=1)
        months.append(current)
    return list(reversed(months))


def declaration_csv(employer: Employer, period: datetime.date) -> bytes:
    """A correct declaration of ``employer`` for ``period`` from what the registry holds."""
    end = period.replace(day=calendar.monthrange(period.year, period.month)[1])
    minimum = parameter_value("minimum_wage_daily", on=period)
    employments = (
        Employment.objects.filter(employer=employer, start_date__lte=end)
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=period))
        .select_related("person")
        .prefetch_related("salaries")
        .order_by("person__normalized_name")
    )
    curps = dict(
        Identifier.objects.filter(
            scheme=CURP,
            is_active=True,
            person_id__in=[e.person_id for e in employments],
        ).values_list("person_id", "value")
    )
    lines = [
        "curp,apellido_paterno,apellido_materno,nombre,dias,sbc,ausencias,incapacidades,"
        "movimiento,fecha_movimiento"
    ]
    seen: set[int] = set()
    for employment in employments:
        person = employment.person
        curp = curps.get(person.pk)
        if curp is None or person.pk in seen:
            continue
        if person.death_date is not None and person.death_date < period:
            continue
        seen.add(person.pk)
        start = max(employment.start_date, period)
        stop = min(employment.end_date or end, end)
        days = (stop - start).days + 1
        salaries = [s for s in employment.salaries.all() if s.effective_from <= stop]
        salary = max((s for s in salaries), key=lambda s: s.effective_from, default=None)
        sbc = max(salary.daily_salary if salary else minimum, minimum)
        lines.append(
            ",".join(
                [
                    curp,
                    _cell(person.paternal_surname),
                    _cell(person.maternal_surname),
                    _cell(person.given_names),
                    str(days),
                    f"{sbc.quantize(Decimal('0.01'))}",
                    "0",
                    "0",
                    "",
                    "",
                ]
            )
        )
    return ("\n".join(lines) + "\n").encode()


def _cell(text: str) -> str:
    return f'"{text}"' if "," in text or '"' in text else text


@dataclass(frozen=True)
class DemoContributions:
    employers: int
    declarations: int
    records: int
    portal_employer: Employer | None
    ready_file: Path | None
    file_with_errors: Path | None


def demo_contributions(*, employers: int = 12, months: int = 3) -> DemoContributions:
    """Post ``months`` months of declarations for the ``employers`` largest employers (once:
    months already declared are skipped), and prepare the portal demo employer."""
    from pilar.portal.services import employer_account_set

    actor = Actor.system("demo", channel="bulk", roles=frozenset({Role.COLLECTIONS_OFFICER}))
    today = datetime.date.today()  # noqa: DTZ011 — the demo runs in the node's own time
    chosen = list(
        Employer.objects.annotate(
            workers=Count("employments", filter=Q(employments__end_date__isnull=True))
        )
        .filter(workers__gt=0)
        .order_by("-workers", "pk")[:employers]
    )
    periods = months_back(months, today)
    posted = 0
    records = 0
    for index, employer in enumerate(chosen):
        # The portal demo employer leaves its latest month for the visitor to declare.
        employer_periods = periods[:-1] if index == 0 else periods
        for period in employer_periods:
            if Declaration.objects.filter(
                employer=employer, period=period, status=DeclarationStatus.POSTED
            ).exists():
                continue
            data = declaration_csv(employer, period)
            declaration, _created = services.declaration_submit(
                actor=actor,
                employer_id=employer.pk,
                period=period,
                kind="normal",
                file_name=f"nomina-{period:%Y-%m}.csv",
                data=data,
            )
            declaration = services.declaration_validate(declaration_id=declaration.pk)
            if declaration.status != DeclarationStatus.VALIDATED:
                continue
            services.declaration_confirm(actor=actor, declaration_id=declaration.pk)
            declaration = services.declaration_post(declaration_id=declaration.pk)
            posted += 1
            records += declaration.worker_count
    portal_employer = chosen[0] if chosen else None
    ready = with_errors = None
    if portal_employer is not None:
        employer_account_set(
            actor=Actor.system("demo", channel="cli", roles=frozenset({Role.COLLECTIONS_OFFICER})),
            employer_id=portal_employer.pk,
            password=DEMO_EMPLOYER_PASSWORD,
        )
        folder = Path(settings.VAR_DIR) / "demo"
        folder.mkdir(parents=True, exist_ok=True)
        period = periods[-1]
        data = declaration_csv(portal_employer, period)
        ready = folder / f"declaracion-{portal_employer.rfc}-{period:%Y-%m}.csv"
        ready.write_bytes(data)
        with_errors = folder / f"declaracion-{portal_employer.rfc}-{period:%Y-%m}-con-errores.csv"
        with_errors.write_bytes(_spoil(data))
    return DemoContributions(
        employers=len(chosen),
        declarations=posted,
        records=records,
        portal_employer=portal_employer,
        ready_file=ready,
        file_with_errors=with_errors,
    )


def _spoil(data: bytes) -> bytes:
    """The same declaration with typical mistakes: a salary below the minimum wage, 40 days, a
    misspelt CURP and a worker declared twice."""
    lines = data.decode().splitlines()
    if len(lines) < 5:
        return data
    first = lines[1].split(",")
    first[5] = "100.00"
    lines[1] = ",".join(first)
    second = lines[2].split(",")
    second[4] = "40"
    lines[2] = ",".join(second)
    third = lines[3].split(",")
    third[0] = third[0][:-1] + ("0" if third[0][-1] != "0" else "1")
    lines[3] = ",".join(third)
    lines.append(lines[4])
    return ("\n".join(lines) + "\n").encode()
