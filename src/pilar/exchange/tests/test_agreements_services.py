"""Agreements: the deny-by-default lookup, the field check, and the hub's services (validated,
audited with the diff, optimistic version, hub only)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone, translation

from pilar.core.actor import Actor
from pilar.core.errors import NotFound, PermissionDenied, ValidationFailed
from pilar.core.models import AuditEvent
from pilar.exchange.models import Agreement, AgreementStatus, Member, MemberRole
from pilar.exchange.reasons import Refusal
from pilar.exchange.selectors_agreements import (
    agreed_fields,
    agreement_for,
    agreement_get,
    agreement_list,
    require_fields,
)
from pilar.exchange.services_agreements import (
    AgreementEnded,
    NotTheHub,
    StaleAgreement,
    agreement_create,
    agreement_end,
    agreement_update,
)

pytestmark = pytest.mark.django_db

MANAGER = Actor.system("hub-staff", roles=frozenset({"administrator"}))
NOBODY = Actor.system("nobody", roles=frozenset())
TODAY = dt.date(2026, 6, 1)


@pytest.fixture
def hub(settings: Any) -> None:
    settings.PILAR_NODE_ROLE = "hub"
    for code in ("MX-IMSS", "MX-ISSSTECALI"):
        Member.objects.create(
            code=code, name=code, role=MemberRole.INSTITUTE, endpoint=f"http://{code}.example"
        )


def create(**changes: Any) -> Agreement:
    values: dict[str, Any] = {
        "actor": MANAGER,
        "code": "AG-0001",
        "consumer": "MX-IMSS",
        "provider": "*",
        "service": "insurance-periods",
        "purposes": ["totalisation"],
        "fields": ["period.from", "period.to", "period.weeks"],
        "valid_from": "2026-01-01",
        "legal_basis": "Convenio de totalización 2026",
    }
    values.update(changes)
    return agreement_create(**values)


def field_codes(error: ValidationFailed) -> dict[str, list[str]]:
    return {name: [item.code for item in items] for name, items in error.field_errors.items()}


# --- lookup ---------------------------------------------------------------------------------------


def test_agreement_for_finds_the_agreement_in_force(hub: None) -> None:
    agreement = create(valid_until="2026-12-31")
    found = agreement_for(
        consumer="MX-IMSS",
        provider="MX-ISSSTECALI",
        service="insurance-periods",
        purpose="totalisation",
        on=TODAY,
    )
    assert found == agreement
    # Both ends are inclusive.
    for day in (dt.date(2026, 1, 1), dt.date(2026, 12, 31)):
        assert agreement_for(
            consumer="MX-IMSS",
            provider="MX-X",
            service="insurance-periods",
            purpose="totalisation",
            on=day,
        )


@pytest.mark.parametrize(
    ("consumer", "service", "purpose", "on"),
    [
        ("MX-ISSSTECALI", "insurance-periods", "totalisation", TODAY),  # other consumer
        ("MX-IMSS", "person-search", "totalisation", TODAY),  # other service
        ("MX-IMSS", "insurance-periods", "verification", TODAY),  # other purpose
        ("MX-IMSS", "insurance-periods", "totalisation", dt.date(2025, 12, 31)),  # before
        ("MX-IMSS", "insurance-periods", "totalisation", dt.date(2027, 1, 1)),  # after
    ],
)
def test_agreement_for_denies_by_default(
    hub: None, consumer: str, service: str, purpose: str, on: dt.date
) -> None:
    create(valid_until="2026-12-31")
    assert (
        agreement_for(consumer=consumer, provider="MX-X", service=service, purpose=purpose, on=on)
        is None
    )


def test_a_draft_grants_nothing(hub: None) -> None:
    create(status=AgreementStatus.DRAFT)
    assert (
        agreement_for(
            consumer="MX-IMSS",
            provider="MX-X",
            service="insurance-periods",
            purpose="totalisation",
            on=TODAY,
        )
        is None
    )


def test_an_agreement_naming_the_provider_wins_over_any(hub: None) -> None:
    create(code="AG-ANY")
    named = create(code="AG-NAMED", provider="MX-ISSSTECALI", fields=["period.from"])
    found = agreement_for(
        consumer="MX-IMSS",
        provider="MX-ISSSTECALI",
        service="insurance-periods",
        purpose="totalisation",
        on=TODAY,
    )
    assert found == named
    other = agreement_for(
        consumer="MX-IMSS",
        provider="MX-OTHER",
        service="insurance-periods",
        purpose="totalisation",
        on=TODAY,
    )
    assert other is not None
    assert other.code == "AG-ANY"


def test_require_fields_names_the_fields_outside(hub: None) -> None:
    agreement = create()
    require_fields(agreement, ["period.from", "period.weeks"])
    assert agreed_fields(agreement) == {"period.from", "period.to", "period.weeks"}
    with pytest.raises(Refusal) as raised:
        require_fields(agreement, ["period.from", "period.salary_basis", "period.employer"])
    assert raised.value.code == "rjct.field.not_agreed"
    assert "period.employer, period.salary_basis" in raised.value.message("en")


def test_list_and_get_need_the_view_permission(hub: None) -> None:
    agreement = create()
    assert list(agreement_list(actor=MANAGER, consumer="MX-IMSS")) == [agreement]
    assert list(agreement_list(actor=MANAGER, service="person-search")) == []
    assert agreement_get(actor=MANAGER, agreement_id=agreement.pk) == agreement
    with pytest.raises(NotFound):
        agreement_get(actor=MANAGER, agreement_id=agreement.pk + 100)
    with pytest.raises(PermissionDenied):
        agreement_list(actor=NOBODY)


# --- create ---------------------------------------------------------------------------------------


def test_create_stores_and_audits(hub: None) -> None:
    agreement = create()
    assert agreement.status == AgreementStatus.ACTIVE
    assert agreement.valid_from == dt.date(2026, 1, 1)
    assert agreement.purposes == ["totalisation"]
    assert agreement.version == 1
    event = AuditEvent.objects.get(action="agreement.create")
    assert event.entity_id == str(agreement.pk)
    assert event.changes["code"] == [None, "AG-0001"]
    assert event.changes["fields"] == [None, ["period.from", "period.to", "period.weeks"]]


def test_create_accepts_comma_separated_lists(hub: None) -> None:
    agreement = create(purposes="totalisation, survivor-claim", fields="period.from,period.to")
    assert agreement.purposes == ["totalisation", "survivor-claim"]
    assert agreement.fields == ["period.from", "period.to"]


def test_create_reports_every_problem_at_once(hub: None) -> None:
    create()
    with pytest.raises(ValidationFailed) as raised:
        create(
            consumer="MX-NOBODY",
            provider="MX-NOWHERE",
            purposes=["curiosity"],
            fields=["curp"],
            valid_from="2026-02-01",
            valid_until="2026-01-01",
        )
    assert field_codes(raised.value) == {
        "code": ["taken"],
        "consumer": ["unknown"],
        "provider": ["unknown"],
        "purposes": ["unknown"],
        "fields": ["not_grantable"],
        "valid_until": ["before_start"],
    }
    assert Agreement.objects.count() == 1
    assert AuditEvent.objects.filter(action="agreement.create").count() == 1


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"service": "gossip"}, "service", "unknown"),
        ({"code": ""}, "code", "required"),
        ({"code": "AG 1"}, "code", "invalid"),
        ({"purposes": []}, "purposes", "required"),
        ({"valid_from": "June"}, "valid_from", "invalid"),
        ({"valid_from": None}, "valid_from", "required"),
        ({"status": "ended"}, "status", "invalid"),
        ({"legal_basis": "x" * 301}, "legal_basis", "too_long"),
    ],
)
def test_create_validates_each_field(
    hub: None, changes: dict[str, Any], field: str, code: str
) -> None:
    with pytest.raises(ValidationFailed) as raised:
        create(**changes)
    assert code in field_codes(raised.value)[field]
    assert not Agreement.objects.exists()


def test_a_service_without_fields_takes_none(hub: None) -> None:
    agreement = create(code="AG-IDX", service="index", purposes=["indexing"], fields=[])
    assert agreement.fields == []
    with pytest.raises(ValidationFailed):
        create(code="AG-IDX2", service="index", purposes=["indexing"], fields=["curp"])


def test_only_the_hub_manages_agreements(hub: None, settings: Any) -> None:
    settings.PILAR_NODE_ROLE = "institute"
    with translation.override("en"):
        with pytest.raises(NotTheHub) as raised:
            create()
        assert "hub" in str(raised.value.message)
    with pytest.raises(PermissionDenied):
        create(actor=NOBODY)
    assert not Agreement.objects.exists()


# --- update and end ---------------------------------------------------------------------------


def test_update_changes_audits_the_diff_and_bumps_the_version(hub: None) -> None:
    agreement = create()
    changed = agreement_update(
        actor=MANAGER,
        agreement_id=agreement.pk,
        expected_version=1,
        fields=["period.from"],
        purposes=["totalisation", "survivor-claim"],
    )
    assert changed.version == 2
    assert changed.fields == ["period.from"]
    event = AuditEvent.objects.get(action="agreement.update")
    assert event.changes == {
        "fields": [["period.from", "period.to", "period.weeks"], ["period.from"]],
        "purposes": [["totalisation"], ["totalisation", "survivor-claim"]],
    }


def test_update_with_a_stale_version_is_refused(hub: None) -> None:
    agreement = create()
    agreement_update(actor=MANAGER, agreement_id=agreement.pk, expected_version=1, legal_basis="x")
    with pytest.raises(StaleAgreement):
        agreement_update(
            actor=MANAGER, agreement_id=agreement.pk, expected_version=1, legal_basis="y"
        )
    agreement.refresh_from_db()
    assert agreement.legal_basis == "x"


def test_update_validates_the_merged_agreement(hub: None) -> None:
    agreement = create()
    with pytest.raises(ValidationFailed) as raised:
        agreement_update(
            actor=MANAGER,
            agreement_id=agreement.pk,
            expected_version=1,
            service="person-search",  # the periods fields are not grantable there
            code="AG-NEW",
        )
    assert field_codes(raised.value) == {"code": ["not_changeable"], "fields": ["not_grantable"]}
    agreement.refresh_from_db()
    assert agreement.service == "insurance-periods"
    assert agreement.version == 1


def test_end_sets_the_last_day_and_ends_a_past_agreement(hub: None) -> None:
    agreement = create(valid_from="2020-01-01")
    future = timezone.localdate() + dt.timedelta(days=30)
    ended = agreement_end(
        actor=MANAGER, agreement_id=agreement.pk, expected_version=1, valid_until=future
    )
    # In force until its last day.
    assert ended.status == AgreementStatus.ACTIVE
    assert ended.valid_until == future
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    ended = agreement_end(
        actor=MANAGER, agreement_id=agreement.pk, expected_version=2, valid_until=yesterday
    )
    assert ended.status == AgreementStatus.ENDED
    assert (
        agreement_for(
            consumer="MX-IMSS",
            provider="MX-X",
            service="insurance-periods",
            purpose="totalisation",
            on=timezone.localdate(),
        )
        is None
    )
    assert AuditEvent.objects.filter(action="agreement.end").count() == 2
    with pytest.raises(AgreementEnded):
        agreement_update(actor=MANAGER, agreement_id=agreement.pk, expected_version=3, fields=[])


def test_end_before_the_start_is_refused(hub: None) -> None:
    agreement = create()
    with pytest.raises(ValidationFailed):
        agreement_end(
            actor=MANAGER, agreement_id=agreement.pk, expected_version=1, valid_until="2025-01-01"
        )
    agreement.refresh_from_db()
    assert agreement.valid_until is None
