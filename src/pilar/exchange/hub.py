"""The hub's services (docs/federation.md, "Hub"): the pseudonymous federated person index
(``index-enrol``, ``index-resolve``) and the relay that gathers a person's insurance periods
from every member holding them (``periods-gather``).

The hub is the national index: a member sends the CURP of each person it holds, and the hub
keeps only ``HMAC-SHA-256(index secret, "CURP:" + CURP)`` (``IndexKey``) beside a random
federation id (``FederatedPerson``) and which member holds whom under which of its own
references (``IndexEntry``). The index secret is 32 random bytes in
``PILAR_KEYS_DIR/index.secret`` (mode 0600, created on first use, never in the database): without
it the digests cannot be tested against guessed CURPs. Federation ids are ``FED-`` + the 26
base32 characters of 16 bytes from ``secrets``; nothing about a person goes into them, so two
hubs give the same person different ids.

Decisions where the contract is silent:

- Every handler here answers ``rjct.action.not_supported`` on a node whose role is not ``hub``.
- ``index-enrol``'s message is ``{"items": [{"member_ref", "curp", "holds_periods"}]}``, 1 to
  1000 items; one invalid item refuses the whole batch (``rjct.search_criteria.invalid``
  naming ``items[i].field``), so a batch is enrolled whole or not at all. A ``member_ref`` the
  member enrolled before with another CURP (a corrected CURP) moves to the person of the new
  one. An enrolment writes one audit event ``index.enrol`` with counts only.
- ``index-resolve`` and ``periods-gather`` take ``{"query_type": "idtype-value", "query":
  {"type": "CURP" | "FED", "value"}}`` (NSS is a member's number, not the federation's).
  ``index-resolve`` lists every member holding the person, the caller included; it never
  returns a ``member_ref``.
- ``periods-gather`` relays ``fields`` and ``as_of`` as the caller gave them; each member checks
  the caller's signature and agreement on ``meta.origin``. Each result also carries
  ``"request"``: the hub's signed request to that member, so the caller can check the chain
  (the member's response is bound to that request by ``request_hash``, and that request carries
  the caller's own envelope as ``meta.origin``).
- The fan-out runs inside the inbound transaction of ``messaging.receive`` (see
  ``_relay``): each member's request is sent with ``deliver_now`` and a member that does not
  answer is reported ``unavailable`` (``err.peer.unavailable``) while the others' answers are
  kept; the relayed request stays in the hub's outbox and ``exchange.deliver`` retries it, but
  the caller gets the answer by gathering again (the hub has no way to call it back).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from base64 import b32encode
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pilar.core.actor import Actor
from pilar.core.audit import audit_record
from pilar.core.errors import ApplicationError
from pilar.core.identifiers import IdentifierInvalid, validate_curp
from pilar.exchange.handlers_search import FED, invalid, parse_query
from pilar.exchange.messaging import Answer, Inbound, handler
from pilar.exchange.models import (
    ExchangeMessage,
    FederatedPerson,
    IndexEntry,
    IndexKey,
    Member,
    MessageStatus,
)
from pilar.exchange.reasons import Refusal

INDEX = "index"
PERIODS = "insurance-periods"
CURP_KIND = "CURP"
MAX_BATCH = 1000
SECRET_FILE = "index.secret"  # noqa: S105 - a file name, not a secret
SECRET_BYTES = 32

# --------------------------------------------------------------------------------------------
# The index secret and the keyed hashes
# --------------------------------------------------------------------------------------------

_secrets: dict[Path, bytes] = {}


def index_secret() -> bytes:
    """The hub's index secret, created (32 random bytes, mode 0600) on first use."""
    path = Path(settings.PILAR_KEYS_DIR) / SECRET_FILE
    cached = _secrets.get(path)
    if cached is not None:
        return cached
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once must not each write their own secret.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_bytes()
    else:
        value = secrets.token_bytes(SECRET_BYTES)
        with os.fdopen(descriptor, "wb") as file:
            file.write(value)
    if len(value) != SECRET_BYTES:
        raise RuntimeError(f"{path} does not hold a {SECRET_BYTES}-byte index secret.")
    _secrets[path] = value
    return value


def index_digest(kind: str, value: str) -> str:
    """The keyed hash under which the index finds an identifier (hex HMAC-SHA-256)."""
    return hmac.new(index_secret(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def new_fed_id() -> str:
    """A random federation id: ``FED-`` + 26 base32 characters (128 bits from ``secrets``)."""
    return "FED-" + b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")


def _require_hub(request: Inbound) -> None:
    if settings.PILAR_NODE_ROLE != "hub":
        raise Refusal("rjct.action.not_supported", action=request.header.get("action", ""))


def _person_for(query_kind: str, value: str) -> FederatedPerson | None:
    if query_kind == FED:
        return FederatedPerson.objects.filter(fed_id=value).first()
    key = (
        IndexKey.objects.filter(kind=CURP_KIND, digest=index_digest(CURP_KIND, value))
        .select_related("person")
        .first()
    )
    return key.person if key is not None else None


def _query(message: dict[str, Any]) -> tuple[str, str]:
    query = parse_query(message, "message")
    if query.kind not in (CURP_KIND, FED):
        raise invalid("message.query.type", _("the hub resolves a CURP or a federation id."))
    return query.kind, query.value


# --------------------------------------------------------------------------------------------
# index-enrol
# --------------------------------------------------------------------------------------------


def _enrol_items(message: dict[str, Any]) -> list[tuple[str, str, bool]]:
    items = message.get("items")
    if not isinstance(items, list) or not items:
        raise invalid("message.items", _("must be a non-empty list."))
    if len(items) > MAX_BATCH:
        raise invalid("message.items", _("at most 1000 items in a batch."))
    checked: list[tuple[str, str, bool]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"message.items[{index}]"
        if not isinstance(item, dict):
            raise invalid(where, _("must be an object."))
        member_ref = item.get("member_ref")
        if not isinstance(member_ref, str) or not member_ref.strip() or len(member_ref) > 64:
            raise invalid(f"{where}.member_ref", _("must be a text of 1 to 64 characters."))
        if member_ref in seen:
            raise invalid(f"{where}.member_ref", _("appears twice in the batch."))
        seen.add(member_ref)
        curp = item.get("curp")
        if not isinstance(curp, str):
            raise invalid(f"{where}.curp", _("must be a text."))
        try:
            curp = validate_curp(curp)
        except IdentifierInvalid as error:
            raise invalid(f"{where}.curp", error.message) from error
        holds_periods = item.get("holds_periods", False)
        if not isinstance(holds_periods, bool):
            raise invalid(f"{where}.holds_periods", _("must be true or false."))
        checked.append((member_ref, curp, holds_periods))
    return checked


def _find_or_create_person(digest: str) -> tuple[FederatedPerson, bool]:
    key = IndexKey.objects.filter(kind=CURP_KIND, digest=digest).select_related("person").first()
    if key is not None:
        return key.person, False
    try:
        # A savepoint: another member enrolling the same person at the same moment makes the
        # unique (kind, digest) fail here, and then its person is the one.
        with transaction.atomic():
            person = FederatedPerson.objects.create(fed_id=new_fed_id())
            IndexKey.objects.create(person=person, kind=CURP_KIND, digest=digest)
    except IntegrityError:
        key = IndexKey.objects.select_related("person").get(kind=CURP_KIND, digest=digest)
        return key.person, False
    return person, True


@handler("index-enrol", service=INDEX)
def handle_index_enrol(request: Inbound) -> Answer:
    """Enrol a batch of a member's persons; answer each one's federation id. Idempotent: the
    same batch again changes nothing and answers the same ids."""
    _require_hub(request)
    items = _enrol_items(request.message)
    member = request.sender
    entries = {
        entry.member_ref: entry
        for entry in IndexEntry.objects.filter(
            member=member, member_ref__in=[ref for ref, _curp, _holds in items]
        )
    }
    now = timezone.now()
    created_persons = created_entries = changed_entries = 0
    enrolled: list[dict[str, str]] = []
    for member_ref, curp, holds_periods in items:
        person, created = _find_or_create_person(index_digest(CURP_KIND, curp))
        created_persons += created
        entry = entries.get(member_ref)
        if entry is None:
            IndexEntry.objects.create(
                person=person,
                member=member,
                member_ref=member_ref,
                holds_periods=holds_periods,
                updated_at=now,
            )
            created_entries += 1
        elif entry.person_id != person.pk or entry.holds_periods != holds_periods:
            entry.person = person
            entry.holds_periods = holds_periods
            entry.updated_at = now
            entry.save(update_fields=["person", "holds_periods", "updated_at"])
            changed_entries += 1
        enrolled.append({"member_ref": member_ref, "fed_id": person.fed_id})
    audit_record(
        actor=_exchange_actor(member),
        action="index.enrol",
        entity_type="exchange_message",
        entity_id=request.row.pk,
        changes={
            "items": [None, len(items)],
            "persons_created": [None, created_persons],
            "entries_created": [None, created_entries],
            "entries_changed": [None, changed_entries],
        },
        note=f"{member} {request.header.get('message_id', '')}",
    )
    return Answer(message={"enrolled": enrolled})


def _exchange_actor(member: str) -> Actor:
    return Actor.system(f"exchange:{member}", channel="exchange", roles=frozenset())


# --------------------------------------------------------------------------------------------
# index-resolve
# --------------------------------------------------------------------------------------------


def holders(person: FederatedPerson) -> list[dict[str, Any]]:
    """The members holding ``person``: code, name, whether it holds periods (never a
    member's reference)."""
    held: dict[str, bool] = {}
    for member, holds_periods in IndexEntry.objects.filter(person=person).values_list(
        "member", "holds_periods"
    ):
        held[member] = held.get(member, False) or holds_periods
    names = dict(Member.objects.filter(code__in=held).values_list("code", "name"))
    return [
        {"code": code, "name": names.get(code, code), "holds_periods": held[code]}
        for code in sorted(held)
    ]


@handler("index-resolve", service=INDEX)
def handle_index_resolve(request: Inbound) -> Answer:
    """The federation id of a CURP or FED and the members holding the person."""
    _require_hub(request)
    kind, value = _query(request.message)
    person = _person_for(kind, value)
    if person is None:
        return Answer(message={"fed_id": None, "members": []})
    return Answer(message={"fed_id": person.fed_id, "members": holders(person)})


# --------------------------------------------------------------------------------------------
# periods-gather
# --------------------------------------------------------------------------------------------


def _result(member: str, row: ExchangeMessage | None, error: str = "") -> dict[str, Any]:
    if row is None or row.status not in (MessageStatus.ANSWERED, MessageStatus.REFUSED):
        return {
            "member": member,
            "status": "unavailable",
            "reason_code": "err.peer.unavailable",
            "reason_message": error,
            "message_id": row.message_id if row is not None else "",
            "request": row.envelope if row is not None else None,
            "response": None,
        }
    return {
        "member": member,
        "status": "succ" if row.status == MessageStatus.ANSWERED else "rjct",
        "reason_code": row.reason_code,
        "reason_message": row.reason_message,
        "message_id": row.message_id,
        "request": row.envelope,
        "response": row.response,
    }


def _relay(request: Inbound, member: str, message: dict[str, Any]) -> dict[str, Any]:
    """Send one member the caller's periods request on its behalf and report what came back.

    This runs inside ``messaging.receive``'s transaction, where ``send`` writes the relayed
    request and its ``request-sent`` leaf in a savepoint of it and delivers at once: the hub's
    outbox row, the caller's request and the answer commit together. The network call happens
    while the transaction is open; it holds no lock another node waits for (the member has its
    own database), only the hub's own rows. A member that does not answer makes ``send`` raise
    ``PeerUnavailable`` after recording the failed attempt (no database error, so the
    transaction goes on): that member is reported ``unavailable``, its request stays in the
    hub's outbox (retried by ``exchange.deliver``, the evidence that it was asked), and the
    other members are still asked."""
    from pilar.exchange.messaging import send

    try:
        row = send(
            actor=_exchange_actor(settings.PILAR_NODE_CODE),
            receiver=member,
            action="periods",
            purpose=request.purpose,
            message=message,
            on_behalf_of=request.sender,
            origin=request.envelope or request.row.envelope,
            parent=request.row,
            deliver_now=True,
        )
    except ApplicationError as error:
        kept_pk = error.extra.get("message_pk")
        kept = ExchangeMessage.objects.filter(pk=kept_pk).first() if kept_pk else None
        return _result(member, kept, str(error.message))
    return _result(member, row)


def gather_members(person: FederatedPerson, caller: str) -> list[str]:
    """The members holding periods of ``person``, other than the caller, that are active."""
    codes = set(
        IndexEntry.objects.filter(person=person, holds_periods=True)
        .exclude(member=caller)
        .values_list("member", flat=True)
    )
    active = set(Member.objects.filter(code__in=codes, active=True).values_list("code", flat=True))
    return sorted(codes & active)


def _relayed_message(message: dict[str, Any], fed_id: str) -> dict[str, Any]:
    relayed: dict[str, Any] = {
        "query_type": "idtype-value",
        "query": {"type": FED, "value": fed_id},
    }
    for name in ("fields", "as_of"):
        if name in message:
            relayed[name] = message[name]
    return relayed


@handler("periods-gather", service=PERIODS)
def handle_periods_gather(request: Inbound) -> Answer:
    """Ask every other member holding the person's periods, on the caller's behalf."""
    _require_hub(request)
    kind, value = _query(request.message)
    person = _person_for(kind, value)
    if person is None:
        raise Refusal("rjct.person.not_found")
    relayed = _relayed_message(request.message, person.fed_id)
    results = [
        _relay(request, member, relayed) for member in gather_members(person, request.sender)
    ]
    return Answer(message={"fed_id": person.fed_id, "results": results})
