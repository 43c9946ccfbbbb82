"""Event subscriptions (DCI subscribe/notify, service ``events``): both sides.

Provider side (this institute holds the person): ``subscribe`` and ``unsubscribe`` keep
``Subscription(role=provider)`` rows; the dispatcher (``tasks_events``) reads them to notify.
Subscriber side (this node asked to be told): ``subscribe()`` sends the request and stores
``Subscription(role=subscriber)`` with the provider's code when the answer arrives; ``notify``
stores each event as a ``ReceivedEvent`` for staff to act on — a reported death is a fact to
verify, never a change the exchange makes to the registry (docs/federation.md).

Decisions where the contract is silent:

- One provider subscription is a (subscriber, federation id, purpose) with the event types it
  covers; its code is what the subscriber unsubscribes with. Subscribing to an event already
  covered for that person (under any purpose) answers the existing code with ``succ``: a
  retry or a repeated request is not an error (DCI's ``rjct.event.already_subscribed`` is
  deliberately not used). Another event for the same person and purpose joins the same row.
- Subscribing to a person this institute does not hold (no ``FederationLink`` for the
  federation id) is ``rjct.person.not_found``: such a subscription could never fire. The hub's
  index already tells members who holds whom, so the refusal discloses nothing new.
- The subscriber is the member the request is for (``on_behalf_of`` when a hub relays, else
  the sender): notifications go to it.
- ``unsubscribe`` takes DCI's ``subscription_codes``; each must be an active or ended
  subscription of that subscriber (unknown codes refuse the message, naming them); ending an
  ended one is ``succ`` (idempotent). Ending needs no field grant.
- ``notify`` is accepted only from a provider we hold an active subscription with for that
  federation id and event type (else ``rjct.agreement.missing``); the same event id from the
  same provider is stored once (a retry answers ``succ`` again).
- On the subscriber side a subscription is written ``active=False`` under a provisional code
  (``pending-<message id>``) when the request is sent, and takes the provider's code and
  becomes active when the provider's answer is applied (at once, or on a later delivery
  attempt). A refused request leaves it inactive: notifications under it are refused.
- Writes on either side are audited (``exchange.subscription.*``, ``exchange.event.*``) with
  the peer as the actor label (``exchange:<member>``).
"""

from __future__ import annotations

import datetime
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pilar.core.actor import Actor
from pilar.core.audit import audit_record
from pilar.core.errors import NotFound, ValidationFailed
from pilar.core.roles import Perm
from pilar.exchange.envelope import rfc3339
from pilar.exchange.handlers_search import (
    FED_ID,
    invalid,
    lazy_format,
    peer_actor,
    require_agreement,
)
from pilar.exchange.messaging import Answer, Inbound, answer_applier, deliver, handler, send
from pilar.exchange.models import (
    ExchangeMessage,
    FederationLink,
    Member,
    ReceivedEvent,
    Subscription,
    SubscriptionRole,
)
from pilar.exchange.purposes import is_purpose
from pilar.exchange.reasons import Refusal
from pilar.exchange.selectors_agreements import require_fields
from pilar.registry.models import Person

SERVICE = "events"
DEATH = "death"
PERIODS_UPDATED = "periods-updated"
EVENT_TYPES = (DEATH, PERIODS_UPDATED)
MAX_ITEMS = 100
NOTIFY_RECORD_TYPE = "pilar:Event"
PENDING_PREFIX = "pending-"
STORE_SUBSCRIPTION = "store-subscription"


def event_field(event_type: str) -> str:
    """The agreement field that grants an event type (``event.death``)."""
    return f"event.{event_type}"


def _now() -> str:
    return rfc3339(timezone.now())


def _items(message: dict[str, Any], key: str) -> list[Any]:
    items = message.get(key)
    if not isinstance(items, list) or not items:
        raise invalid(key, _("must be a non-empty list."))
    if len(items) > MAX_ITEMS:
        raise invalid(key, lazy_format(_("at most %(max)s items per message."), {"max": MAX_ITEMS}))
    return items


def _reference_id(item: Any, where: str, seen: set[str]) -> str:
    if not isinstance(item, dict):
        raise invalid(where, _("must be an object."))
    reference_id = item.get("reference_id")
    if not isinstance(reference_id, str) or not reference_id.strip() or len(reference_id) > 64:
        raise invalid(f"{where}.reference_id", _("must be a text of 1 to 64 characters."))
    if reference_id in seen:
        raise invalid(f"{where}.reference_id", _("is used by another item of the message."))
    seen.add(reference_id)
    if not isinstance(item.get("timestamp"), str):
        raise invalid(f"{where}.timestamp", _("must be a date and time (RFC 3339)."))
    return reference_id


def _fed_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not FED_ID.fullmatch(value):
        raise invalid(
            where, _("A federation id is FED- followed by 26 letters A to Z and digits 2 to 7.")
        )
    return value


def _event_type(value: Any, where: str) -> str:
    if value not in EVENT_TYPES:
        raise invalid(where, _("must be death or periods-updated."))
    return str(value)


# --- provider side: subscribe / unsubscribe -------------------------------------------------


@dataclass(frozen=True)
class _SubscribeItem:
    reference_id: str
    event_type: str
    fed_id: str
    notify_record_type: str


def _parse_subscribe(message: dict[str, Any]) -> list[_SubscribeItem]:
    parsed: list[_SubscribeItem] = []
    seen: set[str] = set()
    for index, item in enumerate(_items(message, "subscribe_request")):
        where = f"subscribe_request[{index}]"
        reference_id = _reference_id(item, where, seen)
        criteria = item.get("subscribe_criteria")
        where = f"{where}.subscribe_criteria"
        if not isinstance(criteria, dict):
            raise invalid(where, _("must be an object."))
        event_type = _event_type(criteria.get("reg_event_type"), f"{where}.reg_event_type")
        filter_ = criteria.get("filter")
        if not isinstance(filter_, dict) or filter_.get("type") != "FED":
            raise invalid(f"{where}.filter", _("must be a federation id: {type: FED, value}."))
        fed_id = _fed_id(filter_.get("value"), f"{where}.filter.value")
        record_type = criteria.get("notify_record_type")
        if not isinstance(record_type, str) or not record_type:
            raise invalid(f"{where}.notify_record_type", _("must be a non-empty text."))
        parsed.append(_SubscribeItem(reference_id, event_type, fed_id, record_type))
    return parsed


def _provider_subscription(
    *, peer: str, fed_id: str, event_type: str, purpose: str, actor: Actor
) -> Subscription:
    """The active subscription of ``peer`` covering ``event_type`` for ``fed_id``: the one
    there is, or the person's row for this purpose extended, or a new row."""
    rows = list(
        Subscription.objects.select_for_update()
        .filter(role=SubscriptionRole.PROVIDER, peer=peer, fed_id=fed_id, active=True)
        .order_by("pk")
    )
    for row in rows:
        if event_type in row.event_types:
            return row
    for row in rows:
        if row.purpose == purpose:
            before = list(row.event_types)
            row.event_types = [*before, event_type]
            row.save(update_fields=["event_types"])
            audit_record(
                actor=actor,
                action="exchange.subscription.update",
                entity_type="exchange.subscription",
                entity_id=row.pk,
                changes={"event_types": [before, row.event_types]},
            )
            return row
    row = Subscription.objects.create(
        role=SubscriptionRole.PROVIDER,
        peer=peer,
        code=f"SUB-{secrets.token_hex(12).upper()}",
        event_types=[event_type],
        fed_id=fed_id,
        purpose=purpose,
    )
    audit_record(
        actor=actor,
        action="exchange.subscription.create",
        entity_type="exchange.subscription",
        entity_id=row.pk,
        changes={
            "role": [None, row.role],
            "peer": [None, peer],
            "code": [None, row.code],
            "event_types": [None, row.event_types],
            "fed_id": [None, fed_id],
            "purpose": [None, purpose],
        },
    )
    return row


@handler("subscribe", service=SERVICE)
def handle_subscribe(request: Inbound) -> Answer:
    """Answer a DCI SubscribeRequest: one subscription code per item."""
    agreement = require_agreement(request, SERVICE)
    items = _parse_subscribe(request.message)
    require_fields(agreement, sorted({event_field(item.event_type) for item in items}))
    links = dict(
        FederationLink.objects.filter(fed_id__in={item.fed_id for item in items}).values_list(
            "fed_id", "person_id"
        )
    )
    if any(item.fed_id not in links for item in items):
        raise Refusal("rjct.person.not_found")
    actor = peer_actor(request)
    peer = request.consumer
    responses = []
    for item in items:
        row = _provider_subscription(
            peer=peer,
            fed_id=item.fed_id,
            event_type=item.event_type,
            purpose=request.purpose,
            actor=actor,
        )
        responses.append(
            {
                "reference_id": item.reference_id,
                "timestamp": _now(),
                "status": "succ",
                "subscriptions": [
                    {
                        "code": row.code,
                        "status": "subscribe",
                        "timestamp": rfc3339(row.created_at),
                        "reg_event_type": item.event_type,
                        "filter_type": "idtype-value",
                        "filter": {"type": "FED", "value": item.fed_id},
                        "notify_record_type": item.notify_record_type,
                    }
                ],
            }
        )
    return Answer(
        message={
            "transaction_id": str(request.message.get("transaction_id") or ""),
            "correlation_id": str(request.header.get("message_id") or ""),
            "subscribe_response": responses,
        }
    )


@handler("unsubscribe", service=SERVICE)
def handle_unsubscribe(request: Inbound) -> Answer:
    """Answer a DCI UnSubscribeRequest: end the named subscriptions of the subscriber."""
    require_agreement(request, SERVICE)
    codes = request.message.get("subscription_codes")
    if (
        not isinstance(codes, list)
        or not codes
        or len(codes) > MAX_ITEMS
        or not all(isinstance(code, str) for code in codes)
    ):
        raise invalid(
            "subscription_codes",
            lazy_format(_("must be a list of 1 to %(max)s codes."), {"max": MAX_ITEMS}),
        )
    peer = request.consumer
    rows = {
        row.code: row
        for row in Subscription.objects.select_for_update().filter(
            role=SubscriptionRole.PROVIDER, peer=peer, code__in=codes
        )
    }
    unknown = sorted(set(codes) - set(rows))
    if unknown:
        raise invalid(
            "subscription_codes",
            lazy_format(
                _("no subscription of yours has these codes: %(codes)s."),
                {"codes": ", ".join(unknown)},
            ),
        )
    actor = peer_actor(request)
    now = timezone.now()
    for row in rows.values():
        if row.active:
            row.active = False
            row.ended_at = now
            row.save(update_fields=["active", "ended_at"])
            audit_record(
                actor=actor,
                action="exchange.subscription.end",
                entity_type="exchange.subscription",
                entity_id=row.pk,
                changes={"active": [True, False]},
            )
    return Answer(
        message={
            "transaction_id": str(request.message.get("transaction_id") or ""),
            "correlation_id": str(request.header.get("message_id") or ""),
            "timestamp": _now(),
            "status": "succ",
            "subscription_status": [
                {"code": code, "status": "unsubscribe"} for code in dict.fromkeys(codes)
            ],
        }
    )


# --- subscriber side: notify ----------------------------------------------------------------


@dataclass(frozen=True)
class _NotifyItem:
    event_id: str
    event_type: str
    fed_id: str
    date: datetime.date | None
    data: dict[str, Any]


def _parse_notify(message: dict[str, Any]) -> list[_NotifyItem]:
    parsed: list[_NotifyItem] = []
    seen: set[str] = set()
    for index, item in enumerate(_items(message, "notify_event")):
        where = f"notify_event[{index}]"
        event_id = _reference_id(item, where, seen)
        data = item.get("data")
        if not isinstance(data, dict):
            raise invalid(f"{where}.data", _("must be an object."))
        event_type = _event_type(data.get("event_type"), f"{where}.data.event_type")
        fed_id = _fed_id(data.get("fed_id"), f"{where}.data.fed_id")
        raw_date = data.get("date")
        date: datetime.date | None = None
        if raw_date is not None:
            try:
                date = datetime.date.fromisoformat(raw_date) if isinstance(raw_date, str) else None
            except ValueError:
                date = None
            if date is None:
                raise invalid(f"{where}.data.date", _("must be a date as YYYY-MM-DD."))
        parsed.append(_NotifyItem(event_id, event_type, fed_id, date, data))
    return parsed


@handler("notify", service=None)
def handle_notify(request: Inbound) -> Answer:
    """Store the events a provider notifies under our subscriptions."""
    items = _parse_notify(request.message)
    subscriptions = list(
        Subscription.objects.filter(
            role=SubscriptionRole.SUBSCRIBER,
            peer=request.sender,
            fed_id__in={item.fed_id for item in items},
            active=True,
        ).values_list("fed_id", "event_types")
    )
    covered = {(fed_id, event) for fed_id, events in subscriptions for event in events}
    for item in items:
        if (item.fed_id, item.event_type) not in covered:
            raise Refusal(
                "rjct.agreement.missing",
                consumer=request.sender,
                service=SERVICE,
                provider=str(request.header.get("receiver_id") or ""),
                purpose=request.purpose,
            )
    persons = dict(
        FederationLink.objects.filter(fed_id__in={item.fed_id for item in items}).values_list(
            "fed_id", "person_id"
        )
    )
    actor = peer_actor(request)
    responses = []
    for item in items:
        event, created = ReceivedEvent.objects.get_or_create(
            sender=request.sender,
            event_id=item.event_id,
            defaults={
                "event_type": item.event_type,
                "fed_id": item.fed_id,
                "person_id": persons.get(item.fed_id),
                "event_date": item.date,
                "data": item.data,
                "message": request.row,
            },
        )
        if created:
            audit_record(
                actor=actor,
                action="exchange.event.receive",
                entity_type="exchange.received_event",
                entity_id=event.pk,
                person_id=event.person_id,
                changes={
                    "event_type": [None, item.event_type],
                    "event_date": [None, item.date.isoformat() if item.date else None],
                    "sender": [None, request.sender],
                },
            )
        responses.append({"reference_id": item.event_id, "timestamp": _now(), "status": "succ"})
    return Answer(
        message={
            "transaction_id": str(request.message.get("transaction_id") or ""),
            "correlation_id": str(request.header.get("message_id") or ""),
            "notify_response": responses,
        }
    )


@transaction.atomic(durable=True)
def event_acknowledge(*, actor: Actor, event_id: int) -> ReceivedEvent:
    """Staff have seen and acted on a received event (``ReceivedEvent`` id ``event_id``).
    Acknowledging it again changes nothing."""
    actor.require(Perm.EXCHANGE_REQUEST)
    event = (
        # Only the event is locked: the person is read, and may be absent (an outer join).
        ReceivedEvent.objects.select_for_update(of=("self",))
        .select_related("person")
        .filter(pk=event_id)
        .first()
    )
    if event is None or (event.person is not None and not actor.sees_region(event.person.region)):
        raise NotFound()
    if event.acknowledged_at is not None:
        return event
    event.acknowledged_by = actor.user
    event.acknowledged_at = timezone.now()
    event.save(update_fields=["acknowledged_by", "acknowledged_at"])
    audit_record(
        actor=actor,
        action="exchange.event.acknowledge",
        entity_type="exchange.received_event",
        entity_id=event.pk,
        person_id=event.person_id,
        changes={"acknowledged_at": [None, event.acknowledged_at.isoformat()]},
    )
    return event


# --- subscriber side: the client ------------------------------------------------------------


def _check_subscribe(
    *, provider: str, person_id: int, event_types: Iterable[str], purpose: str
) -> tuple[str, list[str]]:
    errors: dict[str, Any] = {}
    wanted = list(dict.fromkeys(event_types))
    if not wanted or any(event not in EVENT_TYPES for event in wanted):
        errors["event_types"] = _("Choose death, periods-updated or both.")
    if not is_purpose(purpose):
        errors["purpose"] = _("Choose the purpose of the subscription.")
    member = Member.objects.filter(code=provider, active=True).first()
    if member is None or SERVICE not in (member.services or []):
        errors["provider"] = _("This member does not offer event notifications.")
    if errors:
        field_name, message = next(iter(errors.items()))
        raise ValidationFailed.single(field_name, "exchange.subscribe.invalid", message)
    fed_id = FederationLink.objects.filter(person_id=person_id).values_list("fed_id", flat=True)
    found = fed_id.first()
    if found is None:
        raise ValidationFailed.single(
            "person_id",
            "exchange.person_not_enrolled",
            _("The person has no federation id yet: enrol the person in the index first."),
        )
    return found, wanted


def subscribe(
    *, actor: Actor, provider: str, person_id: int, event_types: Iterable[str], purpose: str
) -> Subscription:
    """Ask ``provider`` to notify ``event_types`` about the person (by federation id) for
    ``purpose``. Returns the subscription: active with the provider's code once the provider
    answered, else inactive under a provisional code until a later delivery is answered."""
    actor.require(Perm.EXCHANGE_REQUEST)
    person = Person.objects.filter(pk=person_id).first()
    if person is None or not actor.sees_region(person.region):
        raise NotFound()
    fed_id, wanted = _check_subscribe(
        provider=provider, person_id=person_id, event_types=event_types, purpose=purpose
    )
    timestamp = _now()
    message = {
        "transaction_id": str(uuid.uuid4()),
        "subscribe_request": [
            {
                "reference_id": event_type,
                "timestamp": timestamp,
                "subscribe_criteria": {
                    "reg_event_type": event_type,
                    "filter_type": "idtype-value",
                    "filter": {"type": "FED", "value": fed_id},
                    "notify_record_type": NOTIFY_RECORD_TYPE,
                },
            }
            for event_type in wanted
        ],
    }
    with transaction.atomic():
        row = send(
            actor=actor,
            receiver=provider,
            action="subscribe",
            purpose=purpose,
            message=message,
            person_id=person_id,
            on_answer=STORE_SUBSCRIPTION,
            deliver_now=False,
        )
        pending = Subscription.objects.create(
            role=SubscriptionRole.SUBSCRIBER,
            peer=provider,
            code=f"{PENDING_PREFIX}{row.message_id}",
            event_types=wanted,
            fed_id=fed_id,
            purpose=purpose,
            active=False,
        )
        audit_record(
            actor=actor,
            action="exchange.subscription.request",
            entity_type="exchange.subscription",
            entity_id=pending.pk,
            person_id=person_id,
            changes={
                "peer": [None, provider],
                "event_types": [None, wanted],
                "purpose": [None, purpose],
            },
        )
    # One attempt now; a peer that does not answer leaves the request queued for the
    # deliver job, and the answer activates the subscription whenever it comes.
    deliver(row.pk)
    found = Subscription.objects.filter(pk=pending.pk).first()
    if found is not None:
        return found
    # The answer merged the request into a subscription we already had with the provider.
    merged = (
        Subscription.objects.filter(
            role=SubscriptionRole.SUBSCRIBER, peer=provider, fed_id=fed_id, active=True
        )
        .order_by("-pk")
        .first()
    )
    assert merged is not None  # the applier keeps one of the two rows
    return merged


@answer_applier(STORE_SUBSCRIPTION)
def store_subscription(row: ExchangeMessage, response_message: dict) -> None:
    """The provider answered a subscribe request: the provisional subscription takes the
    provider's code (or joins the subscription we already hold under that code)."""
    codes: dict[str, list[str]] = {}
    for item in response_message.get("subscribe_response") or []:
        if not isinstance(item, dict) or item.get("status") != "succ":
            continue
        for info in item.get("subscriptions") or []:
            if isinstance(info, dict) and isinstance(info.get("code"), str):
                event = info.get("reg_event_type") or item.get("reference_id")
                codes.setdefault(info["code"], []).append(str(event))
    pending = (
        Subscription.objects.select_for_update()
        .filter(
            role=SubscriptionRole.SUBSCRIBER,
            peer=row.receiver,
            code=f"{PENDING_PREFIX}{row.message_id}",
        )
        .first()
    )
    if pending is None or not codes:
        return
    pending_used = False
    for code, events in codes.items():
        existing = (
            Subscription.objects.select_for_update()
            .filter(role=SubscriptionRole.SUBSCRIBER, peer=row.receiver, code=code)
            .first()
        )
        if existing is not None:
            target = existing
        elif not pending_used:
            target, pending_used = pending, True
            target.code = code
        else:
            target = Subscription(
                role=SubscriptionRole.SUBSCRIBER,
                peer=row.receiver,
                code=code,
                event_types=[],
                fed_id=pending.fed_id,
                purpose=pending.purpose,
            )
        target.event_types = list(dict.fromkeys([*target.event_types, *events]))
        target.active = True
        target.ended_at = None
        target.save()
    if not pending_used:
        pending.delete()
