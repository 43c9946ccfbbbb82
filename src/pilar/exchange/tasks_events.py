"""The event dispatcher: from the audit trail to ``notify`` messages for the subscribers.

The audit trail already records every death recorded and every declaration posted, in one
order, in the transaction of the change; reading it behind a cursor (``EventCursor``) needs no
hook in the registry or the contributions code and cannot miss a change that committed. Per
batch, in one transaction: read the audit events after the cursor, queue a ``notify`` for each
(event, subscriber) in the outbox (``messaging.send(..., deliver_now=False)``: the deliver job
sends and retries it), advance the cursor. A crash rolls the whole batch back, so a re-run
queues exactly what the crashed run would have: nothing twice, nothing lost.

What is an event:

- ``death``: an audit event about a person (``person_id`` set) whose changes set
  ``death_date`` to a date (``person.register`` of someone already dead, ``person.update``,
  a merge that took the death date); the event's date is the death date.
- ``periods-updated``: a declaration posted (action ``post`` on a ``declaration``, written by
  ``contributions.services.declaration_post``): every person with a contribution record of that
  declaration; the event's date is the day of posting.

Decisions where the contract is silent:

- The event id is ``<node code>-<audit id>-<person id>``: stable across re-runs, unique per
  person and change; the subscriber stores it once.
- A merged record's event goes to its golden record's federation id.
- A subscriber holding several subscriptions covering the same person and event (under
  different purposes) is notified once, under the purpose of its oldest subscription.
- Audit ids are allocated when a transaction writes its event but become visible when it
  commits, so a slow transaction can commit an id lower than one already read. The dispatcher
  therefore reads only events older than ``PILAR_EVENTS_SETTLE_SECONDS`` (default 60) and stops
  at the first younger one: an event is read once its transaction has had that long to commit.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pilar.contributions.models import ContributionRecord
from pilar.core.actor import Actor
from pilar.core.jobs import job
from pilar.core.models import AuditEvent
from pilar.exchange.envelope import rfc3339
from pilar.exchange.handlers_events import DEATH, PERIODS_UPDATED
from pilar.exchange.messaging import send
from pilar.exchange.models import (
    EventCursor,
    FederationLink,
    Member,
    Subscription,
    SubscriptionRole,
)
from pilar.exchange.node import this_node
from pilar.registry.models import Person

CURSOR = "events"
BATCH = 500
DISPATCHER = Actor.system("exchange:events", channel="bulk", roles=frozenset())


@dataclass(frozen=True)
class Event:
    audit_id: int
    event_type: str
    person_id: int
    date: datetime.date


def _as_date(value: Any) -> datetime.date | None:
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def events_of(audit: AuditEvent) -> Iterator[Event]:
    """The federation events one audit event stands for (usually none)."""
    changes = audit.changes or {}
    death = changes.get("death_date")
    if audit.person_id is not None and isinstance(death, list) and len(death) == 2:
        before, after = death
        day = _as_date(after)
        if day is not None and before != after:
            yield Event(audit.pk, DEATH, audit.person_id, day)
    if audit.action == "post" and audit.entity_type == "declaration":
        posted = timezone.localdate(audit.at)
        person_ids = (
            ContributionRecord.objects.filter(declaration_id=int(audit.entity_id))
            .values_list("person_id", flat=True)
            .distinct()
            .order_by("person_id")
        )
        for person_id in person_ids:
            yield Event(audit.pk, PERIODS_UPDATED, person_id, posted)


def _fed_ids(person_ids: set[int]) -> dict[int, str]:
    """The federation id of each person, a merged record's being its golden record's. One
    query for the linked persons; the chain is followed only for those without a link."""
    found = dict(
        FederationLink.objects.filter(person_id__in=person_ids).values_list("person_id", "fed_id")
    )
    for person_id in person_ids - set(found):
        seen: set[int] = {person_id}
        current = Person.objects.filter(pk=person_id).values_list("merged_into_id", flat=True)
        golden = current.first()
        while golden is not None and golden not in seen:
            seen.add(golden)
            link = FederationLink.objects.filter(person_id=golden).values_list("fed_id", flat=True)
            fed_id = link.first()
            if fed_id is not None:
                found[person_id] = fed_id
                break
            chain = Person.objects.filter(pk=golden).values_list("merged_into_id", flat=True)
            golden = chain.first()
    return found


@dataclass
class _Recipients:
    """Who is to be told of what, for the federation ids of one batch."""

    # fed id -> [(peer, purpose, event types)] of the active provider subscriptions, oldest first
    subscriptions: dict[str, list[tuple[str, str, list[str]]]]
    members: set[str]

    @classmethod
    def load(cls, fed_ids: set[str]) -> _Recipients:
        subscriptions: dict[str, list[tuple[str, str, list[str]]]] = {}
        for fed_id, peer, purpose, event_types in (
            Subscription.objects.filter(
                role=SubscriptionRole.PROVIDER, fed_id__in=fed_ids, active=True
            )
            .order_by("pk")
            .values_list("fed_id", "peer", "purpose", "event_types")
        ):
            subscriptions.setdefault(fed_id, []).append((peer, purpose, list(event_types)))
        members = set(Member.objects.filter(active=True).values_list("code", flat=True))
        return cls(subscriptions, members)

    def purposes(self, fed_id: str, event_type: str) -> dict[str, str]:
        """Each peer to notify and the purpose to notify it under."""
        chosen: dict[str, str] = {}
        for peer, purpose, event_types in self.subscriptions.get(fed_id, ()):
            # A subscriber no longer in the trust list cannot be sent to (and must not be):
            # it is skipped, not retried, or the whole trail would stall behind it.
            if event_type in event_types and peer in self.members:
                chosen.setdefault(peer, purpose)
        return chosen


def _notify(event: Event, fed_id: str, recipients: _Recipients, node_code: str) -> int:
    purposes = recipients.purposes(fed_id, event.event_type)
    event_id = f"{node_code}-{event.audit_id}-{event.person_id}"
    for peer, purpose in purposes.items():
        send(
            actor=DISPATCHER,
            receiver=peer,
            action="notify",
            purpose=purpose,
            message={
                "transaction_id": event_id,
                "notify_event": [
                    {
                        "reference_id": event_id,
                        "timestamp": rfc3339(timezone.now()),
                        "data": {
                            "event_type": event.event_type,
                            "fed_id": fed_id,
                            "date": event.date.isoformat(),
                        },
                    }
                ],
            },
            person_id=event.person_id,
            deliver_now=False,
        )
    return len(purposes)


def events_dispatch(*, settle_seconds: float | None = None) -> int:
    """Queue the notifications for every audit event after the cursor that has settled;
    returns how many ``notify`` messages were queued. Safe to run again at any time."""
    if settle_seconds is None:
        settle_seconds = float(getattr(settings, "PILAR_EVENTS_SETTLE_SECONDS", 60))
    node_code = this_node().code
    queued = 0
    while True:
        cutoff = timezone.now() - datetime.timedelta(seconds=settle_seconds)
        with transaction.atomic():
            EventCursor.objects.get_or_create(name=CURSOR)
            cursor = EventCursor.objects.select_for_update().get(name=CURSOR)
            batch = list(
                AuditEvent.objects.filter(pk__gt=cursor.last_audit_id).order_by("pk")[:BATCH]
            )
            settled: list[AuditEvent] = []
            for audit in batch:
                if audit.at > cutoff:
                    break
                settled.append(audit)
            if not settled:
                return queued
            events = [event for audit in settled for event in events_of(audit)]
            fed_ids = _fed_ids({event.person_id for event in events})
            recipients = _Recipients.load(set(fed_ids.values()))
            for event in events:
                fed_id = fed_ids.get(event.person_id)
                if fed_id is not None:
                    queued += _notify(event, fed_id, recipients, node_code)
            cursor.last_audit_id = settled[-1].pk
            cursor.save(update_fields=["last_audit_id"])
        if len(settled) < BATCH:
            return queued


@job("exchange.events_dispatch")
def events_dispatch_job(*, job_id: int | None = None) -> None:
    events_dispatch()
