"""The parameter store: lookups at period boundaries, the seeded values, and ``parameter_set``
(permission, closing the open period, refusing overlaps and retroactive values, audit events).
Runs on the real database (SQLite or PostgreSQL)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction
from django.utils import translation

from pilar.contributions.calculation import WorkerLine, line_contribution
from pilar.contributions.models import Parameter, Unit
from pilar.contributions.parameters import (
    ParameterMissing,
    ParameterOverlap,
    ParameterRetroactive,
    parameter_set,
    parameter_snapshot,
    parameter_value,
)
from pilar.core.errors import PermissionDenied, ValidationFailed
from pilar.core.models import AuditEvent
from pilar.core.roles import Role
from pilar.core.tests.factories import actor

pytestmark = pytest.mark.django_db

D = datetime.date


def _set(**overrides: object) -> Parameter:
    values: dict[str, object] = {
        "code": "rate.test.employer",
        "value": Decimal("1.5"),
        "unit": Unit.PERCENT,
        "valid_from": D(2025, 1, 1),
        "legal_reference": "LSS art. 1",
    }
    values.update(overrides)
    values.setdefault("actor", actor(Role.DATA_STEWARD))
    return parameter_set(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "on", "expected"),
    [
        ("minimum_wage_daily", D(2024, 12, 31), "248.93"),
        ("minimum_wage_daily", D(2025, 1, 1), "278.80"),
        ("uma_daily", D(2025, 1, 31), "108.57"),
        ("uma_daily", D(2025, 2, 1), "113.14"),
        ("uma_daily", D(2040, 6, 1), "117.31"),  # the open period
        ("rate.old_age_cesantia.employer", D(2022, 12, 31), "3.150"),
        ("rate.old_age_cesantia.employer.4_01_uma_and_above", D(2026, 1, 1), "7.513"),
    ],
)
def test_value_in_force_at_period_boundaries(code: str, on: datetime.date, expected: str) -> None:
    assert parameter_value(code, on=on) == Decimal(expected)


def test_missing_parameter_is_a_clear_translated_error() -> None:
    with pytest.raises(ParameterMissing) as raised:
        parameter_value("uma_daily", on=D(2016, 1, 27))  # the day before the first UMA
    assert raised.value.code == "contributions.parameter_missing"
    assert raised.value.extra == {"parameter": "uma_daily", "date": "2016-01-27"}
    with translation.override("es"), pytest.raises(ParameterMissing) as raised:
        parameter_value("no.such.code", on=D(2025, 1, 1))
    assert str(raised.value.message) == (
        "El parámetro no.such.code no tiene un valor vigente el 2025-01-01."
    )


def test_seeded_values_are_flagged_for_verification() -> None:
    assert Parameter.objects.exists()
    assert not Parameter.objects.filter(needs_verification=False).exists()
    assert not Parameter.objects.filter(legal_reference="").exists()


def test_seeded_snapshot_covers_the_calculation_in_2025_and_2026() -> None:
    for first_day in (D(2025, 3, 1), D(2026, 3, 1)):
        snapshot = parameter_snapshot(on=first_day)
        result = line_contribution(
            WorkerLine(Decimal("500.00"), 31), parameters=snapshot, period_days=31
        )
        assert result.employer_total > 0


def test_set_closes_the_open_period_the_day_before_and_is_audited() -> None:
    first = _set(valid_from=D(2025, 1, 1))
    second = _set(valid_from=D(2026, 1, 1), value=Decimal("2.25"))
    first.refresh_from_db()
    assert first.valid_to == D(2025, 12, 31)
    assert second.valid_to is None
    assert parameter_value("rate.test.employer", on=D(2025, 12, 31)) == Decimal("1.5")
    assert parameter_value("rate.test.employer", on=D(2026, 1, 1)) == Decimal("2.25")

    events = AuditEvent.objects.filter(entity_type="parameter").order_by("id")
    assert [(e.action, e.entity_id) for e in events] == [
        ("parameter.set", str(first.pk)),
        ("parameter.close", str(first.pk)),
        ("parameter.set", str(second.pk)),
    ]
    assert events[1].changes == {"valid_to": [None, "2025-12-31"]}
    assert events[2].changes["value"] == [None, "2.25"]


def test_set_a_new_seeded_value() -> None:
    _set(
        code="uma_daily",
        value=Decimal("121.00"),
        unit=Unit.PESOS_PER_DAY,
        valid_from=D(2027, 2, 1),
        legal_reference="INEGI, DOF, UMA 2027",
        actor=actor(Role.ADMINISTRATOR),
    )
    assert parameter_value("uma_daily", on=D(2027, 1, 31)) == Decimal("117.31")
    assert parameter_value("uma_daily", on=D(2027, 2, 1)) == Decimal("121.00")


@pytest.mark.parametrize("valid_from", [D(2025, 1, 1), D(2024, 6, 1)])
def test_a_value_cannot_start_on_or_before_the_open_period(valid_from: datetime.date) -> None:
    _set(valid_from=D(2025, 1, 1))
    with pytest.raises(ParameterRetroactive):
        _set(valid_from=valid_from)
    assert Parameter.objects.filter(code="rate.test.employer").count() == 1


def test_a_period_overlapping_a_closed_one_is_refused() -> None:
    _set(valid_from=D(2020, 1, 1), valid_to=D(2020, 12, 31))
    with pytest.raises(ParameterOverlap):
        _set(valid_from=D(2020, 12, 31))
    with pytest.raises(ParameterOverlap):
        _set(valid_from=D(2019, 1, 1), valid_to=D(2020, 1, 1))
    _set(valid_from=D(2019, 1, 1), valid_to=D(2019, 12, 31))  # adjacent: fine
    _set(valid_from=D(2021, 1, 1))
    assert Parameter.objects.filter(code="rate.test.employer").count() == 3


def test_the_database_refuses_overlapping_periods_too() -> None:
    _set(valid_from=D(2025, 1, 1))
    with pytest.raises(DatabaseError), transaction.atomic():
        Parameter.objects.create(
            code="rate.test.employer",
            value=Decimal(1),
            unit=Unit.PERCENT,
            valid_from=D(2024, 1, 1),
            valid_to=D(2025, 1, 1),
            legal_reference="x",
        )


@pytest.mark.parametrize("role", [Role.REGISTRAR, Role.AUDITOR, Role.BENEFITS_OFFICER])
def test_only_stewards_and_administrators_set_parameters(role: str) -> None:
    with pytest.raises(PermissionDenied):
        _set(actor=actor(role))
    assert not Parameter.objects.filter(code="rate.test.employer").exists()


def test_bad_input_reports_every_field() -> None:
    with pytest.raises(ValidationFailed) as raised:
        _set(
            code="Rate Test",
            value=Decimal("-1"),
            unit="furlongs",
            legal_reference=" ",
            valid_to=D(2024, 1, 1),
        )
    assert set(raised.value.field_errors) == {
        "code",
        "value",
        "unit",
        "legal_reference",
        "valid_to",
    }
    assert not AuditEvent.objects.filter(entity_type="parameter").exists()
