"""The ``search`` action (service ``person-search``): person verification, DCI ``idtype-value``.

A member asks whether this institute holds a person under a CURP, an NSS or a federation id
and receives, for each item, the agreed fields of the person's record (docs/federation.md,
"Services answered"). The request is a DCI ``SearchRequest``; the answer a DCI
``SearchResponse`` whose records are ``pilar:Person`` objects holding only the fields the
agreement grants and the item asks for.

Decisions where the contract is silent:

- The whole message is validated before anything is looked up, and any invalid item refuses
  the whole message (``rjct.search_criteria.invalid`` naming the item and the problem). A
  requested field outside the service's field list is invalid input; a service field outside
  the agreement is ``rjct.field.not_agreed`` (through ``require_fields``), for the union of the
  fields every item asks for — so a consumer never receives part of an answer it could not
  have asked for as a whole.
- ``reference_id`` must be unique within the message (DCI's ``rjct.reference_id.duplicate``
  is folded into ``rjct.search_criteria.invalid``), because the consumer pairs answers with
  items by it.
- The record's surnames are the registry's paternal and maternal surnames under the agreement
  names ``first_surname`` and ``second_surname``; ``curp`` and ``nss`` are the person's first
  active identifier of that scheme (the lowest id, the oldest), or null.
- A person is found by any identifier of the scheme, active first; a merged record answers as
  its golden record (following ``merged_into`` to the end of the chain).
- The access log: ``Answer.person_id`` is the first person answered (messaging writes that
  entry with the rest of the exchange); every other distinct person of the message gets its
  own entry here, in the same transaction, with the same actor label and purpose.

The lookup helpers (``parse_query``, ``find_person``) are shared with ``handlers_periods``.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.functional import Promise, lazy
from django.utils.translation import gettext_lazy as _

from pilar.core.actor import Actor
from pilar.core.audit import access_record
from pilar.core.identifiers import CURP, NSS, IdentifierInvalid, validate_curp, validate_nss
from pilar.exchange.messaging import Answer, Inbound, handler
from pilar.exchange.models import Agreement, FederationLink
from pilar.exchange.purposes import service_fields
from pilar.exchange.reasons import Refusal
from pilar.exchange.selectors_agreements import agreed_fields, require_fields
from pilar.registry.models import Identifier, Person

SERVICE = "person-search"
FED = "FED"
QUERY_TYPES = ("CURP", "NSS", FED)
# DCI pages long answers; a verification batch is small, and a hard bound keeps one message's
# work (and the access log it writes) predictable.
MAX_ITEMS = 100
# A federation id as the hub issues it: "FED-" and 26 base32 characters (docs/federation.md).
FED_ID = re.compile(r"FED-[A-Z2-7]{26}")
# A merge chain longer than this is a data fault, not a person; stop rather than loop.
MAX_MERGE_DEPTH = 20
RECORD_TYPE = "pilar:Person"


def _format(template: str | Promise, params: Mapping[str, Any]) -> str:
    return str(template) % {name: str(value) for name, value in params.items()}


# A translated message with parameters, rendered only when read: the refusal may be rendered in
# English for the peer and in Spanish for staff.
lazy_format = lazy(_format, str)


def invalid(where: str, problem: str | Promise) -> Refusal:
    """``rjct.search_criteria.invalid`` naming the element of the message and the problem."""
    return Refusal(
        "rjct.search_criteria.invalid",
        detail=lazy_format(_("%(where)s: %(problem)s"), {"where": where, "problem": problem}),
    )


# --- queries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """A validated ``idtype-value`` query: the scheme (CURP, NSS or FED) and the value in its
    canonical form."""

    kind: str
    value: str


def parse_query(criteria: Any, where: str) -> Query:
    """The ``{"query_type": "idtype-value", "query": {"type", "value"}}`` part of a request,
    checked; raises ``rjct.search_criteria.invalid`` naming ``where`` and what is wrong."""
    if not isinstance(criteria, dict):
        raise invalid(where, _("must be an object."))
    if criteria.get("query_type") != "idtype-value":
        raise invalid(f"{where}.query_type", _("only idtype-value is supported."))
    query = criteria.get("query")
    if not isinstance(query, dict):
        raise invalid(f"{where}.query", _("must be an object with a type and a value."))
    kind = query.get("type")
    if kind not in QUERY_TYPES:
        raise invalid(f"{where}.query.type", _("must be CURP, NSS or FED."))
    value = query.get("value")
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"{where}.query.value", _("must be a non-empty text."))
    try:
        if kind == CURP:
            return Query(CURP, validate_curp(value))
        if kind == NSS:
            return Query(NSS, validate_nss(value))
    except IdentifierInvalid as error:
        raise invalid(f"{where}.query.value", error.message) from error
    fed_id = value.strip().upper()
    if not FED_ID.fullmatch(fed_id):
        raise invalid(
            f"{where}.query.value",
            _("A federation id is FED- followed by 26 letters A to Z and digits 2 to 7."),
        )
    return Query(FED, fed_id)


def parse_fields(value: Any, where: str, allowed: Iterable[str]) -> list[str] | None:
    """The optional ``fields`` list: None when omitted (every agreed field), else the names,
    each one of ``allowed`` (the service's fields)."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise invalid(where, _("must be a list of field names."))
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise invalid(
            where,
            lazy_format(
                _("these are not fields of the service: %(fields)s."),
                {"fields": ", ".join(unknown)},
            ),
        )
    return list(dict.fromkeys(value))


def golden(person: Person) -> Person:
    """The record that answers for ``person``: itself, or the end of its merge chain."""
    seen = 0
    while person.merged_into_id is not None and seen < MAX_MERGE_DEPTH:
        person = Person.objects.get(pk=person.merged_into_id)
        seen += 1
    return person


def find_person(query: Query) -> Person | None:
    """The person this institute holds under ``query`` (as its golden record), or None.

    Identifiers: an active identifier first; else an inactive one (a replaced CURP, a merged
    record's history) — the person it belonged to is still the person asked about."""
    if query.kind == FED:
        link = FederationLink.objects.filter(fed_id=query.value).select_related("person").first()
        return golden(link.person) if link is not None else None
    identifier = (
        Identifier.objects.filter(scheme=query.kind, value=query.value, issuing_country="MX")
        .select_related("person")
        .order_by("-is_active", "pk")
        .first()
    )
    return golden(identifier.person) if identifier is not None else None


def require_agreement(request: Inbound, service: str) -> Agreement:
    # Messaging checks the agreement before calling a service's handler; a handler reached
    # without one is a wiring fault, and the safe answer is the refusal deny-by-default gives.
    if request.agreement is None:
        raise Refusal(
            "rjct.agreement.missing",
            consumer=request.consumer,
            service=service,
            provider=str(request.header.get("receiver_id") or ""),
            purpose=request.purpose,
        )
    return request.agreement


def now_rfc3339() -> str:
    return (
        timezone.now().astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def peer_actor(request: Inbound) -> Actor:
    """The actor a peer's request acts as, in the audit trail and the access log: the label
    messaging gives the exchange's own access-log entry (``exchange:<consumer>``, the member
    a hub acts for or the sender)."""
    return Actor.system(f"exchange:{request.consumer}", channel="exchange", roles=frozenset())


def log_other_accesses(request: Inbound, person_ids: Iterable[int], first: int | None) -> None:
    """Access-log entries for the persons of a message other than the one messaging logs
    (``Answer.person_id``), with messaging's actor, action (the exchange's action) and
    purpose."""
    actor = peer_actor(request)
    for person_id in dict.fromkeys(person_ids):
        if person_id != first:
            access_record(
                actor=actor,
                person_id=person_id,
                action=str(request.header.get("action") or "")[:30],
                purpose=request.purpose,
            )


# --- the record -----------------------------------------------------------------------------


def _date(value: datetime.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def person_record(person: Person, fields: Iterable[str]) -> dict[str, Any]:
    """The ``pilar:Person`` record of ``person`` with exactly ``fields``."""
    wanted = list(fields)
    identifiers: dict[str, str] = {}
    if "curp" in wanted or "nss" in wanted:
        for scheme, value in (
            Identifier.objects.filter(person=person, is_active=True, scheme__in=(CURP, NSS))
            .order_by("pk")
            .values_list("scheme", "value")
        ):
            identifiers.setdefault(scheme, value)
    values: dict[str, Any] = {
        "curp": identifiers.get(CURP),
        "nss": identifiers.get(NSS),
        "given_names": person.given_names,
        "first_surname": person.paternal_surname,
        "second_surname": person.maternal_surname,
        "birth_date": _date(person.birth_date),
        "sex": person.sex,
        "birth_state": person.birth_state,
        "status": person.status,
        "death_date": _date(person.death_date),
    }
    return {name: values[name] for name in wanted}


# --- the handler ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    reference_id: str
    query: Query
    fields: list[str] | None


def _parse_items(message: dict[str, Any], allowed: tuple[str, ...]) -> list[_Item]:
    items = message.get("search_request")
    if not isinstance(items, list) or not items:
        raise invalid("search_request", _("must be a non-empty list."))
    if len(items) > MAX_ITEMS:
        raise invalid(
            "search_request",
            lazy_format(_("at most %(max)s items per message."), {"max": MAX_ITEMS}),
        )
    parsed: list[_Item] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"search_request[{index}]"
        if not isinstance(item, dict):
            raise invalid(where, _("must be an object."))
        reference_id = item.get("reference_id")
        if not isinstance(reference_id, str) or not reference_id.strip():
            raise invalid(f"{where}.reference_id", _("must be a non-empty text."))
        if reference_id in seen:
            raise invalid(f"{where}.reference_id", _("is used by another item of the message."))
        seen.add(reference_id)
        if not isinstance(item.get("timestamp"), str):
            raise invalid(f"{where}.timestamp", _("must be a date and time (RFC 3339)."))
        criteria = item.get("search_criteria")
        query = parse_query(criteria, f"{where}.search_criteria")
        assert isinstance(criteria, dict)  # parse_query checked it
        fields = parse_fields(criteria.get("fields"), f"{where}.search_criteria.fields", allowed)
        parsed.append(_Item(reference_id, query, fields))
    return parsed


@handler("search", service=SERVICE)
def handle_search(request: Inbound) -> Answer:
    """Answer a DCI SearchRequest with the agreed fields of each person found."""
    agreement = require_agreement(request, SERVICE)
    allowed = service_fields(SERVICE)
    items = _parse_items(request.message, allowed)
    granted = agreed_fields(agreement)
    agreed = [name for name in allowed if name in granted]
    requested: set[str] = set()
    for item in items:
        requested.update(item.fields if item.fields is not None else ())
    require_fields(agreement, sorted(requested))

    responses: list[dict[str, Any]] = []
    answered: list[int] = []
    for item in items:
        person = find_person(item.query)
        records: list[dict[str, Any]] = []
        if person is not None:
            fields = item.fields if item.fields is not None else agreed
            records.append(person_record(person, fields))
            answered.append(person.pk)
        responses.append(
            {
                "reference_id": item.reference_id,
                "timestamp": now_rfc3339(),
                "status": "succ",
                "data": {"reg_record_type": RECORD_TYPE, "reg_records": records},
            }
        )
    first = answered[0] if answered else None
    log_other_accesses(request, answered, first)
    return Answer(
        message={
            "transaction_id": str(request.message.get("transaction_id") or ""),
            "correlation_id": str(request.header.get("message_id") or ""),
            "search_response": responses,
        },
        person_id=first,
    )
