"""Event subscriptions: subscribe/unsubscribe on the provider, notify on the subscriber, the
subscriber's client, and the dispatcher that turns the audit trail into notifications."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest

from pilar.contributions import services as contributions
from pilar.contributions.tests.pipeline_helpers import (
    collections_actor,
    csv_file,
    last_month,
    line,
    shop,
)
from pilar.core import jobs
from pilar.core.errors import NotFound, PermissionDenied, ValidationFailed
from pilar.core.models import AuditEvent
from pilar.core.roles import Role
from pilar.core.tests.factories import actor
from pilar.exchange import messaging
from pilar.exchange.handlers_events import event_acknowledge, subscribe
from pilar.exchange.models import (
    EventCursor,
    ExchangeMessage,
    FederationLink,
    ReceivedEvent,
    Subscription,
)
from pilar.exchange.tasks_events import events_dispatch
from pilar.exchange.tests.provider_support import (  # noqa: F401 (fixture)
    CONSUMER,
    NODE,
    Federation,
    agree,
    federation_fixture,
)
from pilar.exchange.transport import LocalTransport, set_transport
from pilar.linkage.merging import merge_persons
from pilar.registry.services import person_update
from pilar.registry.tests.factories import person_with_curp

FED_ID = "FED-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
OTHER_FED_ID = "FED-234567ABCDEFGHIJKLMNOPQRST"
EVENTS = ["event.death", "event.periods-updated"]


def subscribe_message(*events: str, fed_id: str = FED_ID) -> dict[str, Any]:
    return {
        "transaction_id": "T-1",
        "subscribe_request": [
            {
                "reference_id": f"r-{event}",
                "timestamp": "2026-01-05T10:00:00Z",
                "subscribe_criteria": {
                    "reg_event_type": event,
                    "filter": {"type": "FED", "value": fed_id},
                    "notify_record_type": "pilar:Event",
                },
            }
            for event in events
        ],
    }


def notify_message(event_id: str, event_type: str = "death", fed_id: str = FED_ID) -> dict:
    return {
        "transaction_id": event_id,
        "notify_event": [
            {
                "reference_id": event_id,
                "timestamp": "2026-01-05T10:00:00Z",
                "data": {"event_type": event_type, "fed_id": fed_id, "date": "2026-01-02"},
            }
        ],
    }


def codes(answer: dict[str, Any]) -> list[str]:
    return [item["subscriptions"][0]["code"] for item in answer["message"]["subscribe_response"]]


@pytest.fixture
def linked_person(db: None) -> Any:
    person, _curp = person_with_curp()
    FederationLink.objects.create(person=person, fed_id=FED_ID)
    return person


# --- provider: subscribe / unsubscribe ------------------------------------------------------


def test_subscribe_is_idempotent(federation: Federation, linked_person: Any) -> None:
    agree("events", EVENTS, purposes=("death-check",))

    status, first = federation.post("subscribe", subscribe_message("death"), purpose="death-check")
    _status, again = federation.post("subscribe", subscribe_message("death"), purpose="death-check")
    _status, both = federation.post(
        "subscribe", subscribe_message("death", "periods-updated"), purpose="death-check"
    )

    assert status == 200, first["header"]
    (code,) = codes(first)
    assert codes(again) == [code]
    assert codes(both) == [code, code]
    (row,) = Subscription.objects.filter(role="provider")
    assert (row.peer, row.code, row.fed_id, row.purpose) == (CONSUMER, code, FED_ID, "death-check")
    assert row.event_types == ["death", "periods-updated"]
    assert row.active
    assert list(
        AuditEvent.objects.filter(entity_type="exchange.subscription")
        .order_by("pk")
        .values_list("action", flat=True)
    ) == ["exchange.subscription.create", "exchange.subscription.update"]


def test_an_event_outside_the_agreement_is_refused(
    federation: Federation, linked_person: Any
) -> None:
    agree("events", ["event.death"], purposes=("death-check",))

    status, answer = federation.post(
        "subscribe", subscribe_message("death", "periods-updated"), purpose="death-check"
    )

    assert status == 403
    assert answer["header"]["status_reason_code"] == "rjct.field.not_agreed"
    assert "event.periods-updated" in answer["header"]["status_reason_message"]
    assert not Subscription.objects.exists()


def test_subscribing_to_a_person_not_held_here_is_refused(
    federation: Federation, linked_person: Any
) -> None:
    agree("events", EVENTS, purposes=("death-check",))

    status, answer = federation.post(
        "subscribe", subscribe_message("death", fed_id=OTHER_FED_ID), purpose="death-check"
    )
    assert status == 404
    assert answer["header"]["status_reason_code"] == "rjct.person.not_found"

    bad = subscribe_message("birth")
    status, answer = federation.post("subscribe", bad, purpose="death-check")
    assert status == 422
    assert "reg_event_type" in answer["header"]["status_reason_message"]
    assert not Subscription.objects.exists()


def test_unsubscribe_ends_the_subscription(federation: Federation, linked_person: Any) -> None:
    agree("events", EVENTS, purposes=("death-check",))
    _status, answer = federation.post(
        "subscribe", subscribe_message("death"), purpose="death-check"
    )
    (code,) = codes(answer)
    message = {"transaction_id": "T-2", "timestamp": "2026-01-05T10:00:00Z"}

    status, answer = federation.post(
        "unsubscribe", {**message, "subscription_codes": [code]}, purpose="death-check"
    )
    assert status == 200
    assert answer["message"]["subscription_status"] == [{"code": code, "status": "unsubscribe"}]
    row = Subscription.objects.get(code=code)
    assert not row.active
    assert row.ended_at is not None

    status, _answer = federation.post(
        "unsubscribe", {**message, "subscription_codes": [code]}, purpose="death-check"
    )
    assert status == 200
    status, answer = federation.post(
        "unsubscribe", {**message, "subscription_codes": ["SUB-NOPE"]}, purpose="death-check"
    )
    assert status == 422
    assert "SUB-NOPE" in answer["header"]["status_reason_message"]


# --- subscriber: notify ---------------------------------------------------------------------


def test_notify_from_a_peer_we_did_not_subscribe_with_is_refused(
    federation: Federation, linked_person: Any
) -> None:
    # A subscription with another member, or for another event, does not let MX-TEST notify.
    Subscription.objects.create(
        role="subscriber", peer="MX-OTHER", code="SUB-1", event_types=["death"], fed_id=FED_ID
    )
    Subscription.objects.create(
        role="subscriber",
        peer=CONSUMER,
        code="SUB-2",
        event_types=["periods-updated"],
        fed_id=FED_ID,
    )

    status, answer = federation.post("notify", notify_message("E-1"), purpose="death-check")

    assert status == 403
    assert answer["header"]["status_reason_code"] == "rjct.agreement.missing"
    assert not ReceivedEvent.objects.exists()


def test_notify_is_stored_once_and_linked_to_the_person(
    federation: Federation, linked_person: Any
) -> None:
    Subscription.objects.create(
        role="subscriber", peer=CONSUMER, code="SUB-1", event_types=["death"], fed_id=FED_ID
    )

    status, answer = federation.post("notify", notify_message("E-1"), purpose="death-check")
    again, _answer = federation.post("notify", notify_message("E-1"), purpose="death-check")

    assert (status, again) == (200, 200)
    assert answer["message"]["notify_response"][0]["status"] == "succ"
    event = ReceivedEvent.objects.get()
    assert (event.sender, event.event_id, event.event_type) == (CONSUMER, "E-1", "death")
    assert event.person_id == linked_person.pk
    assert event.event_date == datetime.date(2026, 1, 2)
    # A reported death is a fact to verify: the registry is not changed by the exchange.
    linked_person.refresh_from_db()
    assert linked_person.death_date is None


def test_acknowledging_an_event(federation: Federation, linked_person: Any) -> None:
    Subscription.objects.create(
        role="subscriber", peer=CONSUMER, code="SUB-1", event_types=["death"], fed_id=FED_ID
    )
    federation.post("notify", notify_message("E-1"), purpose="death-check")
    event = ReceivedEvent.objects.get()
    registrar = actor(Role.REGISTRAR)

    with pytest.raises(PermissionDenied):
        event_acknowledge(actor=actor(Role.ANALYST), event_id=event.pk)
    with pytest.raises(NotFound):
        event_acknowledge(actor=actor(Role.REGISTRAR, region="SO"), event_id=event.pk)
    done = event_acknowledge(actor=registrar, event_id=event.pk)
    again = event_acknowledge(actor=registrar, event_id=event.pk)

    assert done.acknowledged_by == registrar.user
    assert again.acknowledged_at == done.acknowledged_at
    assert AuditEvent.objects.filter(action="exchange.event.acknowledge").count() == 1


# --- the subscriber's client and the dispatcher, with this node as its own peer --------------


@pytest.fixture
def loopback(federation: Federation) -> Iterator[LocalTransport]:
    """This node subscribes to itself: its requests reach its own endpoint in-process."""
    agree("events", EVENTS, purposes=("death-check",), consumer=NODE, code="AG-SELF")
    transport = LocalTransport()
    previous = set_transport(transport)
    yield transport
    set_transport(previous)


def test_subscribe_client_stores_the_providers_code(
    loopback: LocalTransport, linked_person: Any
) -> None:
    registrar = actor(Role.REGISTRAR)

    made = subscribe(
        actor=registrar,
        provider=NODE,
        person_id=linked_person.pk,
        event_types=["death"],
        purpose="death-check",
    )

    provider_side = Subscription.objects.get(role="provider")
    assert made.role == "subscriber"
    assert made.active
    assert made.code == provider_side.code
    assert (made.peer, made.fed_id, made.event_types) == (NODE, FED_ID, ["death"])
    row = ExchangeMessage.objects.get(direction="out", action="subscribe")
    assert row.status == "answered"
    assert row.requested_by == registrar.user

    more = subscribe(
        actor=registrar,
        provider=NODE,
        person_id=linked_person.pk,
        event_types=["periods-updated"],
        purpose="death-check",
    )
    assert more.pk == made.pk
    assert more.event_types == ["death", "periods-updated"]
    assert Subscription.objects.filter(role="subscriber").count() == 1


def test_subscribe_client_waits_for_an_unavailable_provider(
    loopback: LocalTransport, linked_person: Any
) -> None:
    loopback.unavailable = True
    made = subscribe(
        actor=actor(Role.REGISTRAR),
        provider=NODE,
        person_id=linked_person.pk,
        event_types=["death"],
        purpose="death-check",
    )
    assert not made.active
    assert made.code.startswith("pending-")

    loopback.unavailable = False
    messaging.deliver(ExchangeMessage.objects.get(direction="out").pk)

    made.refresh_from_db()
    assert made.active
    assert made.code.startswith("SUB-")


def test_subscribe_client_checks_its_input(loopback: LocalTransport, linked_person: Any) -> None:
    registrar = actor(Role.REGISTRAR)
    unlinked, _curp = person_with_curp(given_names="Rosa")
    for kwargs, field in (
        ({"event_types": ["birth"]}, "event_types"),
        ({"purpose": "curiosity"}, "purpose"),
        ({"provider": "MX-NOBODY"}, "provider"),
        ({"person_id": unlinked.pk}, "person_id"),
    ):
        arguments: dict[str, Any] = {
            "provider": NODE,
            "person_id": linked_person.pk,
            "event_types": ["death"],
            "purpose": "death-check",
            **kwargs,
        }
        with pytest.raises(ValidationFailed) as raised:
            subscribe(actor=registrar, **arguments)
        assert field in raised.value.field_errors
    assert not ExchangeMessage.objects.exists()


def test_dispatch_notifies_each_subscriber_once_and_is_idempotent(
    federation: Federation, linked_person: Any
) -> None:
    agree("events", EVENTS, purposes=("death-check",))
    federation.post("subscribe", subscribe_message("death"), purpose="death-check")
    # Not linked to a federation id: nobody to notify.
    other, _curp = person_with_curp(
        given_names="Rosa", paternal_surname="Ruiz", birth_date=datetime.date(1970, 1, 1)
    )

    person_update(
        actor=actor(Role.REGISTRAR),
        person_id=linked_person.pk,
        changes={"death_date": datetime.date(2026, 1, 2)},
    )
    person_update(
        actor=actor(Role.REGISTRAR),
        person_id=other.pk,
        changes={"death_date": datetime.date(2026, 1, 3)},
    )

    assert events_dispatch(settle_seconds=0) == 1
    assert events_dispatch(settle_seconds=0) == 0

    (row,) = ExchangeMessage.objects.filter(direction="out", action="notify")
    assert (row.receiver, row.status, row.purpose) == (CONSUMER, "queued", "death-check")
    assert row.person_id == linked_person.pk
    audit_id = AuditEvent.objects.get(action="person.update", person_id=linked_person.pk).pk
    assert row.envelope is not None
    (item,) = row.envelope["message"]["notify_event"]
    assert item["reference_id"] == f"{NODE}-{audit_id}-{linked_person.pk}"
    assert item["data"] == {"event_type": "death", "fed_id": FED_ID, "date": "2026-01-02"}
    assert EventCursor.objects.get(name="events").last_audit_id >= audit_id


def test_dispatch_waits_for_recent_events_to_settle(
    federation: Federation, linked_person: Any
) -> None:
    agree("events", EVENTS, purposes=("death-check",))
    federation.post("subscribe", subscribe_message("death"), purpose="death-check")
    person_update(
        actor=actor(Role.REGISTRAR),
        person_id=linked_person.pk,
        changes={"death_date": datetime.date(2026, 1, 2)},
    )

    assert events_dispatch(settle_seconds=3600) == 0
    assert events_dispatch(settle_seconds=0) == 1


def test_posted_contributions_notify_periods_updated(federation: Federation) -> None:
    agree("events", EVENTS, purposes=("periods-update",))
    workshop = shop(workers=2)
    subscribed, unsubscribed = workshop.workers
    FederationLink.objects.create(person=subscribed.person, fed_id=FED_ID)
    FederationLink.objects.create(person=unsubscribed.person, fed_id=OTHER_FED_ID)
    federation.post("subscribe", subscribe_message("periods-updated"), purpose="periods-update")
    clerk = collections_actor()
    declaration, _created = contributions.declaration_submit(
        actor=clerk,
        employer_id=workshop.employer.pk,
        period=last_month(),
        kind="normal",
        file_name="nomina.csv",
        data=csv_file(line(subscribed), line(unsubscribed)),
    )
    jobs.run_pending()
    contributions.declaration_confirm(actor=clerk, declaration_id=declaration.pk)
    jobs.run_pending()

    assert events_dispatch(settle_seconds=0) == 1

    (row,) = ExchangeMessage.objects.filter(direction="out", action="notify")
    assert row.envelope is not None
    (item,) = row.envelope["message"]["notify_event"]
    assert item["data"]["event_type"] == "periods-updated"
    assert item["data"]["fed_id"] == FED_ID
    assert row.purpose == "periods-update"


def test_a_death_travels_from_the_registry_to_the_subscriber(
    loopback: LocalTransport, linked_person: Any
) -> None:
    registrar = actor(Role.REGISTRAR)
    subscribe(
        actor=registrar,
        provider=NODE,
        person_id=linked_person.pk,
        event_types=["death"],
        purpose="death-check",
    )
    person_update(
        actor=registrar,
        person_id=linked_person.pk,
        changes={"death_date": datetime.date(2026, 1, 2)},
    )

    assert events_dispatch(settle_seconds=0) == 1
    row = ExchangeMessage.objects.get(direction="out", action="notify")
    messaging.deliver(row.pk)

    row.refresh_from_db()
    assert row.status == "answered"
    event = ReceivedEvent.objects.get()
    assert (event.sender, event.event_type, event.person_id) == (NODE, "death", linked_person.pk)
    assert event.event_date == datetime.date(2026, 1, 2)


def test_a_death_taken_in_a_merge_is_notified_and_departed_members_are_skipped(
    federation: Federation, linked_person: Any
) -> None:
    agree("events", EVENTS, purposes=("death-check",))
    federation.post("subscribe", subscribe_message("death"), purpose="death-check")
    Subscription.objects.create(
        role="provider", peer="MX-GONE", code="SUB-GONE", event_types=["death"], fed_id=FED_ID
    )
    duplicate, _curp = person_with_curp(death_date=datetime.date(2026, 1, 2))
    merge_persons(
        actor=actor(Role.DATA_STEWARD),
        golden_id=linked_person.pk,
        merged_id=duplicate.pk,
        reason="Same person, registered twice.",
        take_from_merged=["death_date"],
    )

    assert events_dispatch(settle_seconds=0) == 1

    (row,) = ExchangeMessage.objects.filter(direction="out", action="notify")
    assert row.receiver == CONSUMER
    assert row.envelope is not None
    (item,) = row.envelope["message"]["notify_event"]
    assert item["data"] == {"event_type": "death", "fed_id": FED_ID, "date": "2026-01-02"}
