"""Reads behind the federation's staff UI and staff API: the exchange monitor (messages in and
out, one message with its envelopes and log leaves), the trust list as this node holds it, this
node's transparency log, the auditor's view of the members' logs, and a person's federation
panel.

Decisions where docs/federation.md is silent:

- Every read needs ``exchange.view``, except the person panel, which also opens to
  ``exchange.request`` (the staff who ask other institutions must see what came back).
- A message's envelopes carry personal data: they are the evidence, shown to holders of
  ``exchange.view``. Opening one (``message_get``) writes an access-log entry on the message's
  person, like opening the person's record; listing messages shows no body and logs nothing.
- A log leaf's inclusion is checked against the newest checkpoint, from the stored hashes, so
  the page says "verified against checkpoint N" only when the proof really verifies.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet

from pilar.core.actor import Actor
from pilar.core.audit import access_record
from pilar.core.errors import NotFound
from pilar.core.pagination import Page, paginate
from pilar.core.roles import Perm
from pilar.exchange.models import (
    Direction,
    ExchangeMessage,
    FederationLink,
    ForeignPeriods,
    LogCheckpoint,
    LogEntry,
    LogHash,
    Member,
    MessageStatus,
    NodeKey,
    ReceivedEvent,
    TrustListVersion,
    WitnessAlert,
    WitnessedLog,
)
from pilar.exchange.translog import merkle, tlog

DEFAULT_PAGE_SIZE = 50


def node_role() -> str:
    return str(settings.PILAR_NODE_ROLE)


def node_code() -> str:
    return str(settings.PILAR_NODE_CODE)


def is_hub() -> bool:
    return node_role() == "hub"


def is_auditor() -> bool:
    return node_role() == "auditor"


# --- messages ---------------------------------------------------------------------------------


def _message_queryset() -> QuerySet[ExchangeMessage]:
    # The bodies are large: a list never needs them, so they are left in the database.
    return ExchangeMessage.objects.select_related("requested_by", "person").defer(
        "envelope", "response"
    )


def message_list(
    *,
    actor: Actor,
    direction: str | None = None,
    status: str | None = None,
    peer: str | None = None,
    action: str | None = None,
    purpose: str | None = None,
    since: datetime.datetime | datetime.date | None = None,
    until: datetime.datetime | datetime.date | None = None,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Page[ExchangeMessage]:
    """Messages newest first. ``peer`` matches the other end (sender of an incoming message,
    receiver of an outgoing one) or the member a hub acted for. Dates are inclusive days;
    datetimes are exact bounds."""
    actor.require(Perm.EXCHANGE_VIEW)
    rows = _message_queryset()
    if direction:
        rows = rows.filter(direction=direction)
    if status:
        rows = rows.filter(status=status)
    if peer:
        rows = rows.filter(
            Q(direction=Direction.IN, sender=peer)
            | Q(direction=Direction.OUT, receiver=peer)
            | Q(on_behalf_of=peer)
        )
    if action:
        rows = rows.filter(action=action)
    if purpose:
        rows = rows.filter(purpose=purpose)
    if since is not None:
        rows = rows.filter(created_at__gte=_bound(since, end=False))
    if until is not None:
        rows = rows.filter(created_at__lt=_bound(until, end=True))
    return paginate(rows.order_by("-created_at", "-pk"), page=page, page_size=page_size)


def _bound(value: datetime.datetime | datetime.date, *, end: bool) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value + datetime.timedelta(microseconds=1) if end else value
    day = value + datetime.timedelta(days=1) if end else value
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=datetime.UTC)


def message_status_counts(*, actor: Actor) -> dict[str, int]:
    """How many messages are in each status, for the monitor's header (every status named,
    zero included)."""
    actor.require(Perm.EXCHANGE_VIEW)
    counts = dict.fromkeys(MessageStatus.values, 0)
    for row in ExchangeMessage.objects.order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return counts


def message_peers() -> list[str]:
    """The members this node has exchanged with, for the monitor's filter."""
    senders = ExchangeMessage.objects.values_list("sender", flat=True).distinct()
    receivers = ExchangeMessage.objects.values_list("receiver", flat=True).distinct()
    members = Member.objects.values_list("code", flat=True)
    return sorted({*senders, *receivers, *members} - {node_code(), "", "*"})


def message_actions() -> list[str]:
    return sorted(set(ExchangeMessage.objects.values_list("action", flat=True).distinct()))


@dataclass(frozen=True)
class LeafView:
    """One log leaf of a message, with whether its inclusion in the newest checkpoint was
    proved (``verified`` None: not yet sequenced, or no checkpoint covers it yet)."""

    entry: LogEntry
    data: dict[str, Any]
    checkpoint_size: int | None = None
    verified: bool | None = None
    problem: str = ""


@dataclass(frozen=True)
class MessageView:
    message: ExchangeMessage
    envelope_text: str
    response_text: str
    leaves: list[LeafView]
    reason_text: str
    can_retry: bool
    children: list[ExchangeMessage] = field(default_factory=list)


def pretty_json(document: Any) -> str:
    if document is None:
        return ""
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False)


def reason_text(code: str) -> str:
    """The reason code's explanation in the reader's language. The parameters a refusal named
    are not stored apart, so they read "—" here; the message as recorded (with them) is shown
    beside it. A code this version does not know (a newer peer's) gives an empty text."""
    from pilar.exchange.reasons import REASONS, Refusal

    if code not in REASONS:
        return ""
    return Refusal(code).message()


def retryable(message: ExchangeMessage) -> bool:
    # A queued message is already being retried by the delivery job; only one given up on
    # needs a person to start it again (messaging.message_retry).
    return message.direction == Direction.OUT and message.status == MessageStatus.FAILED


def message_get(*, actor: Actor, message_pk: int, purpose: str = "") -> MessageView:
    """One message with its envelopes pretty-printed and its log leaves with their inclusion
    checked. The envelopes are the evidence and carry personal data: opening them is logged on
    the message's person."""
    actor.require(Perm.EXCHANGE_VIEW)
    message = (
        ExchangeMessage.objects.select_related("requested_by", "person", "parent")
        .filter(pk=message_pk)
        .first()
    )
    if message is None:
        raise NotFound(extra={"entity": "exchange_message", "id": message_pk})
    if message.person_id is not None:
        access_record(
            actor=actor,
            person_id=message.person_id,
            action="exchange.message",
            purpose=purpose or f"exchange message {message.pk}",
        )
    return MessageView(
        message=message,
        envelope_text=pretty_json(message.envelope),
        response_text=pretty_json(message.response),
        leaves=_leaves_of(message),
        reason_text=reason_text(message.reason_code),
        can_retry=retryable(message) and actor.can(Perm.EXCHANGE_MANAGE),
        children=list(message.children.order_by("pk")),
    )


def _leaves_of(message: ExchangeMessage) -> list[LeafView]:
    newest = LogCheckpoint.objects.order_by("-size").first()
    leaves: list[LeafView] = []
    for entry in message.log_entries.order_by("index", "pk"):
        try:
            data = json.loads(entry.data)
        except ValueError:
            data = {}
        if entry.index is None or newest is None or entry.index >= newest.size:
            leaves.append(LeafView(entry=entry, data=data))
            continue
        verified, problem = inclusion_check(entry, newest)
        leaves.append(
            LeafView(
                entry=entry,
                data=data,
                checkpoint_size=newest.size,
                verified=verified,
                problem=problem,
            )
        )
    return leaves


def _stored_hashes(indexes: Sequence[int]) -> list[bytes]:
    """The tlog reader over ``LogHash``: the hashes at these stored indexes, in that order."""
    found = {row.index: bytes(row.hash) for row in LogHash.objects.filter(index__in=list(indexes))}
    missing = [index for index in indexes if index not in found]
    if missing:
        raise merkle.ProofError(f"stored hashes {missing[:5]} are missing")
    return [found[index] for index in indexes]


def inclusion_check(entry: LogEntry, checkpoint: LogCheckpoint) -> tuple[bool, str]:
    """Prove that the leaf is in the tree the checkpoint signs: the audit path read from the
    stored hashes, verified against the checkpoint's root (RFC 9162 §2.1.3.2). Computed here,
    not taken from the log module, so the page checks the same stored data a peer would."""
    assert entry.index is not None
    try:
        proof = tlog.prove_record(checkpoint.size, entry.index, _stored_hashes)
        merkle.verify_inclusion(
            entry.index,
            checkpoint.size,
            bytes.fromhex(entry.leaf_hash),
            proof,
            bytes.fromhex(checkpoint.root_hash),
        )
    except ValueError as error:  # ProofError is a ValueError, and so is a bad hex string.
        return False, str(error)
    return True, ""


# --- trust list, keys, log, auditor -----------------------------------------------------------


@dataclass(frozen=True)
class TrustSummary:
    node_code: str
    node_role: str
    current: TrustListVersion | None
    members: list[Member]
    node_keys: list[NodeKey]
    versions: list[TrustListVersion]
    is_hub: bool


def trust_summary() -> TrustSummary:
    """The current trust list as this node holds it: its serial and dates, the members with
    their keys, endpoints and services, and this node's own keys. Nothing personal; the view
    checks ``exchange.view``."""
    return TrustSummary(
        node_code=node_code(),
        node_role=node_role(),
        current=TrustListVersion.objects.order_by("-serial").first(),
        members=list(Member.objects.prefetch_related("keys").order_by("code")),
        node_keys=list(NodeKey.objects.order_by("-created_at")),
        versions=list(TrustListVersion.objects.order_by("-serial")[:10]),
        is_hub=is_hub(),
    )


@dataclass(frozen=True)
class LogSummary:
    origin: str
    size: int
    pending: int
    newest: LogCheckpoint | None
    checkpoints: list[LogCheckpoint]


def log_summary(*, limit: int = 50) -> LogSummary:
    """This node's log: how many leaves are sequenced and waiting, and the newest checkpoints
    with their cosignatures."""
    checkpoints = list(
        LogCheckpoint.objects.prefetch_related("cosignatures").order_by("-size")[:limit]
    )
    return LogSummary(
        origin=f"pilar.exchange/{node_code()}",
        size=LogEntry.objects.filter(index__isnull=False).count(),
        pending=LogEntry.objects.filter(index__isnull=True).count(),
        newest=checkpoints[0] if checkpoints else None,
        checkpoints=checkpoints,
    )


@dataclass(frozen=True)
class AuditorSummary:
    witnessed: list[WitnessedLog]
    alerts: list[WitnessAlert]


def auditor_summary(*, limit: int = 100) -> AuditorSummary:
    return AuditorSummary(
        witnessed=list(WitnessedLog.objects.order_by("member")),
        alerts=list(WitnessAlert.objects.order_by("-created_at")[:limit]),
    )


# --- a person's federation panel --------------------------------------------------------------


@dataclass(frozen=True)
class PeriodsDocument:
    """A P5000-shaped document received from another member, as the panel shows it."""

    row: ForeignPeriods
    member: str
    institution: str
    periods: list[dict[str, Any]]
    total_days: Any
    total_weeks: Any
    as_of: str


def periods_document(row: ForeignPeriods) -> PeriodsDocument:
    # Stored either as the document itself or as the answer that wraps it ({"document": …}).
    document = row.document if isinstance(row.document, dict) else {}
    document = document.get("document", document)
    institution = document.get("institution") or {}
    totals = document.get("totals") or {}
    return PeriodsDocument(
        row=row,
        member=row.member,
        institution=str(institution.get("name") or row.member),
        periods=[period for period in document.get("periods") or [] if isinstance(period, dict)],
        total_days=totals.get("days"),
        total_weeks=totals.get("weeks"),
        as_of=str(document.get("as_of") or ""),
    )


@dataclass(frozen=True)
class PersonFederation:
    fed_id: str
    events: list[ReceivedEvent]
    periods: list[PeriodsDocument]
    can_request: bool
    recent: list[ExchangeMessage]


def person_federation(*, actor: Actor, person_id: int) -> PersonFederation | None:
    """What the federation holds about one of this node's persons: the federation id, the
    events peers notified, the current (not superseded) periods documents received, and the
    latest requests sent about the person. None for staff with neither ``exchange.request`` nor
    ``exchange.view``. The person page that shows it has already logged the read."""
    if not (actor.can(Perm.EXCHANGE_REQUEST) or actor.can(Perm.EXCHANGE_VIEW)):
        return None
    link = FederationLink.objects.filter(person_id=person_id).first()
    documents = ForeignPeriods.objects.filter(
        person_id=person_id, superseded_at__isnull=True
    ).order_by("member", "-received_at")
    return PersonFederation(
        fed_id=link.fed_id if link else "",
        events=list(ReceivedEvent.objects.filter(person_id=person_id).order_by("-received_at")),
        periods=[periods_document(row) for row in documents],
        can_request=actor.can(Perm.EXCHANGE_REQUEST),
        recent=list(
            ExchangeMessage.objects.filter(person_id=person_id, direction=Direction.OUT)
            .defer("envelope", "response")
            .order_by("-created_at")[:5]
        ),
    )
