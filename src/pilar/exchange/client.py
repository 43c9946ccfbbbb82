"""The institute's side of the hub (docs/federation.md, "Hub"): enrolling this node's persons
in the federated index, asking which institutions hold a person, and fetching a person's
insurance periods from the other members through the hub.

Every call goes through ``messaging.send`` (signed, kept in the outbox, retried with the same
message id); what arrives is applied by the registered appliers ``store-enrolment``
(``FederationLink``) and ``store-periods`` (``ForeignPeriods``), in the transaction that stores
the answer, so an answer arriving on a later retry is applied exactly like one that arrived at
once.

Decisions where the contract is silent:

- ``member_ref`` is the person's primary key here, as text: opaque to the hub, stable, and it
  names no personal datum. ``holds_periods`` is "the person has contribution records or
  employments". Enrolment skips merged records (their golden record is enrolled), persons
  without an active CURP and CURPs that fail validation. A federation id the hub gives a
  second local person already linked to it (two unmerged records of one person) is not stored
  for the second: record linkage must merge them first.
- The enrolment's purpose is ``indexing``; resolve and gather take the caller's purpose.
- ``store-periods`` checks each member's response itself, never trusting the hub for it: the
  response's signature with that member's key from the trust list (``node.resolve_key``,
  verified at the response's own ``created`` time, since the evidence is checked after its
  five minutes), that it comes from that member and answers ``periods``, that it is bound by
  ``request_hash`` to the hub's relayed request (carried beside it in the result as
  ``request``), that this relayed request is signed by the hub and carries *our* request as
  ``meta.origin``. A response that fails any check is not stored and is reported ``invalid``
  with the reason, and audited (``foreign_periods.refused``); the others are stored.
- A newer document of the same member supersedes the older one (``superseded_at``); the
  totalisation uses the current one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from pilar.contributions.models import ContributionRecord
from pilar.core.actor import Actor
from pilar.core.audit import access_record, audit_record
from pilar.core.errors import ApplicationError, NotFound, ValidationFailed
from pilar.core.identifiers import CURP, IdentifierInvalid, validate_curp
from pilar.core.roles import Perm
from pilar.exchange import envelope
from pilar.exchange.messaging import answer_applier, send
from pilar.exchange.models import (
    ExchangeMessage,
    FederationLink,
    ForeignPeriods,
    MessageStatus,
)
from pilar.exchange.node import resolve_key, this_node
from pilar.exchange.purposes import is_purpose
from pilar.exchange.reasons import Refusal
from pilar.registry.models import Employment, Identifier, Person, RecordStatus

INDEXING = "indexing"
MAX_BATCH = 1000
STORE_ENROLMENT = "store-enrolment"
STORE_PERIODS = "store-periods"


class ExchangeRefused(ApplicationError):
    """The hub answered with a refusal (its reason code and message are passed on)."""

    code = "exchange.refused"
    status = 409


def _refused(row: ExchangeMessage) -> ExchangeRefused:
    return ExchangeRefused(
        _("%(peer)s refused message %(message_id)s: %(reason)s (%(code)s).")
        % {
            "peer": row.receiver,
            "message_id": row.message_id,
            "reason": row.reason_message or "—",
            "code": row.reason_code,
        },
        extra={"reason_code": row.reason_code, "message_id": row.message_id},
    )


def _hub() -> str:
    return this_node().hub_code


def _exchange_actor(peer: str) -> Actor:
    return Actor.system(f"exchange:{peer}", channel="exchange", roles=frozenset())


def _check_purpose(purpose: Any) -> str:
    if not is_purpose(purpose):
        raise ValidationFailed.single(
            "purpose",
            "exchange.purpose_required" if not purpose else "exchange.purpose_unknown",
            _("State the purpose of the request.")
            if not purpose
            else _("Unknown purpose %(purpose)s.") % {"purpose": purpose},
        )
    return str(purpose)


def _person_for(actor: Actor, person_id: int) -> Person:
    person = Person.objects.filter(pk=person_id).first()
    if person is None or not actor.sees_region(person.region):
        raise NotFound(extra={"entity": "person", "id": person_id})
    return person


def _active_curp(person: Person) -> str | None:
    value = (
        Identifier.objects.filter(person=person, scheme=CURP, is_active=True)
        .values_list("value", flat=True)
        .first()
    )
    return value


def _query_for(person: Person) -> dict[str, Any]:
    """How the hub is asked about ``person``: by federation id once enrolled, else by CURP."""
    link = FederationLink.objects.filter(person=person).values_list("fed_id", flat=True).first()
    if link:
        return {"query_type": "idtype-value", "query": {"type": "FED", "value": link}}
    curp = _active_curp(person)
    if curp is None:
        raise ValidationFailed.single(
            "person_id",
            "exchange.no_identifier",
            _("The person has neither a federation id nor an active CURP to ask the hub with."),
        )
    return {"query_type": "idtype-value", "query": {"type": "CURP", "value": curp}}


# --------------------------------------------------------------------------------------------
# Enrolment in the hub's index
# --------------------------------------------------------------------------------------------


def _holds_periods() -> Q:
    return Q(
        Exists(ContributionRecord.objects.filter(person_id=OuterRef("pk")))
        | Exists(Employment.objects.filter(person_id=OuterRef("pk")))
    )


def enrolment_candidates(person_ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """The items to send: persons not merged, with a valid active CURP, not yet linked or
    whose ``holds_periods`` changed since, ordered by id."""
    persons = Person.objects.filter(merged_into__isnull=True).exclude(status=RecordStatus.MERGED)
    if person_ids is not None:
        persons = persons.filter(pk__in=list(person_ids))
    rows = (
        persons.annotate(holds=_holds_periods())
        .filter(
            Exists(Identifier.objects.filter(person_id=OuterRef("pk"), scheme=CURP, is_active=True))
        )
        .order_by("pk")
        .values_list("pk", "holds")
    )
    links = dict(FederationLink.objects.values_list("person_id", "holds_periods"))
    wanted = [(pk, holds) for pk, holds in rows if links.get(pk) is None or links[pk] != holds]
    curps = dict(
        Identifier.objects.filter(
            person_id__in=[pk for pk, _holds in wanted], scheme=CURP, is_active=True
        ).values_list("person_id", "value")
    )
    items = []
    for pk, holds in wanted:
        try:
            curp = validate_curp(curps[pk])
        except (IdentifierInvalid, KeyError):
            continue
        items.append({"member_ref": str(pk), "curp": curp, "holds_periods": bool(holds)})
    return items


def persons_enrol(
    *, actor: Actor, person_ids: Sequence[int] | None = None, batch: int = 500
) -> int:
    """Enrol this node's persons in the hub's index, ``batch`` at a time (1 to 1000); returns
    how many persons the hub answered for. Raises ``PeerUnavailable`` when the hub does not
    answer (the batch stays in the outbox and is retried; the persons not yet sent are picked
    up by the next run, as they are still not linked)."""
    actor.require(Perm.EXCHANGE_MANAGE)
    size = max(1, min(int(batch), MAX_BATCH))
    items = enrolment_candidates(person_ids)
    enrolled = 0
    for start in range(0, len(items), size):
        chunk = items[start : start + size]
        row = send(
            actor=actor,
            receiver=_hub(),
            action="index-enrol",
            purpose=INDEXING,
            message={"items": chunk},
            on_answer=STORE_ENROLMENT,
        )
        row.refresh_from_db()
        if row.status == MessageStatus.REFUSED:
            raise _refused(row)
        if row.status == MessageStatus.ANSWERED:
            enrolled += len(chunk)
    return enrolled


@answer_applier(STORE_ENROLMENT)
def store_enrolment(row: ExchangeMessage, response_message: dict[str, Any]) -> None:
    """Store the federation ids the hub gave (``FederationLink``), in the answer's
    transaction. Runs for answered messages only."""
    sent = {
        item["member_ref"]: bool(item.get("holds_periods"))
        for item in ((row.envelope or {}).get("message") or {}).get("items", [])
        if isinstance(item, dict) and "member_ref" in item
    }
    answered = [
        item
        for item in response_message.get("enrolled") or []
        if isinstance(item, dict) and item.get("member_ref") in sent and item.get("fed_id")
    ]
    person_ids = [int(item["member_ref"]) for item in answered]
    links = {
        link.person_id: link for link in FederationLink.objects.filter(person_id__in=person_ids)
    }
    taken = dict(
        FederationLink.objects.filter(fed_id__in=[item["fed_id"] for item in answered]).values_list(
            "fed_id", "person_id"
        )
    )
    existing = set(Person.objects.filter(pk__in=person_ids).values_list("pk", flat=True))
    created = changed = skipped = 0
    for item in answered:
        person_id, fed_id = int(item["member_ref"]), str(item["fed_id"])
        holds = sent[item["member_ref"]]
        owner = taken.get(fed_id)
        if person_id not in existing or (owner is not None and owner != person_id):
            skipped += 1
            continue
        link = links.get(person_id)
        if link is None:
            FederationLink.objects.create(person_id=person_id, fed_id=fed_id, holds_periods=holds)
            taken[fed_id] = person_id
            created += 1
        elif link.fed_id != fed_id or link.holds_periods != holds:
            link.fed_id = fed_id
            link.holds_periods = holds
            link.save(update_fields=["fed_id", "holds_periods"])
            changed += 1
    audit_record(
        actor=_exchange_actor(row.receiver),
        action="federation_link.store",
        entity_type="exchange_message",
        entity_id=row.pk,
        changes={
            "created": [None, created],
            "changed": [None, changed],
            "skipped": [None, skipped],
        },
        note=row.message_id,
    )


# --------------------------------------------------------------------------------------------
# Which institutions hold a person
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    code: str
    name: str
    holds_periods: bool


@dataclass(frozen=True)
class Resolution:
    fed_id: str | None
    members: list[Holder]
    message_id: str


def _ask_hub(
    *, actor: Actor, person_id: int, purpose: str, action: str, on_answer: str = ""
) -> ExchangeMessage:
    """Send the hub a request about one of our persons, for a stated purpose: the access is
    logged with the purpose first (the person's data leaves this node). Raises
    ``PeerUnavailable`` when the hub does not answer and ``ExchangeRefused`` when it refuses."""
    actor.require(Perm.EXCHANGE_REQUEST)
    purpose = _check_purpose(purpose)
    person = _person_for(actor, person_id)
    query = _query_for(person)
    with transaction.atomic():
        access_record(
            actor=actor, person_id=person.pk, action=f"exchange.{action}", purpose=purpose
        )
    row = send(
        actor=actor,
        receiver=_hub(),
        action=action,
        purpose=purpose,
        message=query,
        person_id=person.pk,
        on_answer=on_answer,
    )
    row.refresh_from_db()
    if row.status == MessageStatus.REFUSED:
        raise _refused(row)
    return row


def person_institutions(*, actor: Actor, person_id: int, purpose: str) -> Resolution:
    """Ask the hub which other members hold records of the person (``index-resolve``). The access
    is logged with the purpose. Raises ``PeerUnavailable`` (naming the hub and the message id)
    when the hub does not answer, ``ExchangeRefused`` when it refuses."""
    row = _ask_hub(actor=actor, person_id=person_id, purpose=purpose, action="index-resolve")
    message = ((row.response or {}).get("message")) or {}
    members = [
        Holder(
            code=str(item.get("code", "")),
            name=str(item.get("name", "")),
            holds_periods=bool(item.get("holds_periods")),
        )
        for item in message.get("members") or []
        # The hub lists every member holding records, this one included: the others are asked.
        if isinstance(item, dict) and item.get("code") != this_node().code
    ]
    return Resolution(fed_id=message.get("fed_id"), members=members, message_id=row.message_id)


# --------------------------------------------------------------------------------------------
# Insurance periods through the hub
# --------------------------------------------------------------------------------------------


def _verify_signed(signed: dict[str, Any]) -> envelope.SignatureParams:
    """The envelope's signature with its sender's key valid when it was signed. The times are
    checked as of its creation: this is evidence kept after its five minutes."""
    params = envelope.parse_signature(signed.get("signature", ""))
    return envelope.verify(signed, resolve_key=resolve_key, now=params.created_at)


def member_response_problem(
    result: dict[str, Any], our_request: dict[str, Any] | None
) -> Refusal | None:
    """Why a member's answer in a gather result cannot be taken (None: it can). See the
    module's note: signature, sender, action, binding to the hub's relayed request, and that
    request's origin being our own request."""
    member = result.get("member")
    response = result.get("response")
    relayed = result.get("request")
    if not isinstance(response, dict) or not isinstance(relayed, dict):
        return Refusal("rjct.envelope.invalid", detail=_("the member's answer is missing."))
    try:
        _verify_signed(response)
        _verify_signed(relayed)
    except Refusal as refusal:
        return refusal
    header = response.get("header") or {}
    relayed_header = relayed.get("header") or {}
    if header.get("sender_id") != member or relayed_header.get("receiver_id") != member:
        return Refusal(
            "rjct.signature.invalid",
            detail=_("the answer is signed by %(signer)s, not by %(member)s.")
            % {"signer": header.get("sender_id"), "member": member},
        )
    if header.get("action") != "on-periods" or relayed_header.get("action") != "periods":
        return Refusal("rjct.envelope.invalid", detail=_("the answer is not a periods answer."))
    if relayed_header.get("sender_id") != _hub():
        return Refusal("rjct.signature.invalid", detail=_("the relayed request is not the hub's."))
    if not envelope.response_matches(response, relayed):
        return Refusal(
            "rjct.signature.invalid",
            detail=_("the answer is not bound to the hub's relayed request (request_hash)."),
        )
    origin = (relayed_header.get("meta") or {}).get("origin")
    if our_request is None or not isinstance(origin, dict):
        return Refusal(
            "rjct.envelope.invalid", detail=_("the relayed request does not carry our request.")
        )
    if envelope.envelope_hash(origin) != envelope.envelope_hash(our_request):
        return Refusal(
            "rjct.signature.invalid",
            detail=_("the relayed request carries another request than ours."),
        )
    if header.get("status") != "succ":
        return Refusal("rjct.envelope.invalid", detail=_("the member refused the request."))
    document = (response.get("message") or {}).get("document")
    if not isinstance(document, dict) or document.get("type") != "P5000":
        return Refusal("rjct.envelope.invalid", detail=_("the answer holds no periods document."))
    return None


@answer_applier(STORE_PERIODS)
def store_periods(row: ExchangeMessage, response_message: dict[str, Any]) -> None:
    """Store each member's verified periods document for the person (``ForeignPeriods``),
    superseding that member's older one; a response that does not verify is audited and left
    out. Runs in the transaction that stores the hub's answer."""
    if row.person_id is None:
        return
    hub_actor = _exchange_actor(row.receiver)
    now = timezone.now()
    for result in response_message.get("results") or []:
        if not isinstance(result, dict) or result.get("status") != "succ":
            continue
        member = str(result.get("member", ""))
        if ForeignPeriods.objects.filter(message=row, member=member).exists():
            continue
        problem = member_response_problem(result, row.envelope)
        if problem is not None:
            audit_record(
                actor=hub_actor,
                action="foreign_periods.refused",
                entity_type="exchange_message",
                entity_id=row.pk,
                person_id=row.person_id,
                changes={"member": [None, member], "reason_code": [None, problem.code]},
                note=problem.message("en"),
            )
            continue
        response = result["response"]
        superseded = list(
            ForeignPeriods.objects.filter(
                person_id=row.person_id, member=member, superseded_at__isnull=True
            ).values_list("pk", flat=True)
        )
        ForeignPeriods.objects.filter(pk__in=superseded).update(superseded_at=now)
        stored = ForeignPeriods.objects.create(
            person_id=row.person_id,
            member=member,
            document=response["message"]["document"],
            signed_response=response,
            message=row,
            purpose=row.purpose,
            received_at=now,
        )
        audit_record(
            actor=hub_actor,
            action="foreign_periods.store",
            entity_type="foreign_periods",
            entity_id=stored.pk,
            person_id=row.person_id,
            changes={
                "member": [None, member],
                "message_id": [None, row.message_id],
                "member_response_id": [None, response["header"].get("message_id")],
                "superseded": [None, superseded],
            },
        )


@dataclass(frozen=True)
class MemberOutcome:
    member: str
    # ``stored`` (verified and kept), ``refused`` (the member refused), ``invalid`` (an answer
    # that did not verify) or ``unavailable`` (the member did not answer the hub).
    status: str
    reason_code: str = ""
    reason_message: str = ""
    foreign_periods_id: int | None = None


@dataclass(frozen=True)
class GatherOutcome:
    message_id: str
    fed_id: str | None
    results: list[MemberOutcome] = field(default_factory=list)

    @property
    def answered(self) -> list[str]:
        return [r.member for r in self.results if r.status == "stored"]

    @property
    def not_answered(self) -> list[str]:
        return [r.member for r in self.results if r.status != "stored"]


def gather_outcome(row: ExchangeMessage) -> GatherOutcome:
    """What a gather brought, read from the stored answer and documents."""
    message = ((row.response or {}).get("message")) or {}
    stored = dict(ForeignPeriods.objects.filter(message=row).values_list("member", "pk"))
    results: list[MemberOutcome] = []
    for result in message.get("results") or []:
        if not isinstance(result, dict):
            continue
        member = str(result.get("member", ""))
        status = result.get("status")
        if member in stored:
            results.append(MemberOutcome(member, "stored", foreign_periods_id=stored[member]))
        elif status == "succ":
            problem = member_response_problem(result, row.envelope)
            results.append(
                MemberOutcome(
                    member,
                    "invalid",
                    problem.code if problem else "",
                    problem.message() if problem else "",
                )
            )
        else:
            results.append(
                MemberOutcome(
                    member,
                    "refused" if status == "rjct" else "unavailable",
                    str(result.get("reason_code") or ""),
                    str(result.get("reason_message") or ""),
                )
            )
    return GatherOutcome(message_id=row.message_id, fed_id=message.get("fed_id"), results=results)


def person_periods_fetch(*, actor: Actor, person_id: int, purpose: str) -> GatherOutcome:
    """Ask the hub to gather the person's insurance periods from every other member holding
    them (``periods-gather``) and store each verified document. Partial results are kept: the
    outcome says which members answered and which did not (gather again later). Raises
    ``PeerUnavailable`` (naming the hub and the message id, kept and retried: the documents
    are stored when the answer comes) and ``ExchangeRefused``."""
    row = _ask_hub(
        actor=actor,
        person_id=person_id,
        purpose=purpose,
        action="periods-gather",
        on_answer=STORE_PERIODS,
    )
    return gather_outcome(row)


def foreign_periods_list(
    *, actor: Actor, person_id: int, include_superseded: bool = False
) -> list[ForeignPeriods]:
    """The periods documents other members sent for the person, current first (newest
    first within), each with its message. The access is logged."""
    if not (actor.can(Perm.EXCHANGE_VIEW) or actor.can(Perm.EXCHANGE_REQUEST)):
        actor.require(Perm.EXCHANGE_VIEW)
    person = _person_for(actor, person_id)
    documents = ForeignPeriods.objects.filter(person=person).select_related("message")
    if not include_superseded:
        documents = documents.filter(superseded_at__isnull=True)
    found = sorted(
        documents,
        key=lambda d: (d.superseded_at is not None, d.member, -d.received_at.timestamp(), -d.pk),
    )
    if found:
        with transaction.atomic():
            access_record(actor=actor, person_id=person.pk, action="exchange.foreign-periods")
    return found


def hub_code() -> str:
    """The hub this node talks to (settings ``PILAR_HUB_CODE``)."""
    return str(settings.PILAR_HUB_CODE)
