"""REST API of the federation for staff tools (under ``/api/v1/``): the monitor, agreements,
trust list, log, and a person's records at other institutions. The node-to-node exchange itself
is not this API: it is the signed-envelope endpoint under ``/exchange/v1/``.

- ``GET /v1/exchange/messages`` (filters: direction, status, peer, action, purpose, since,
  until), ``GET /v1/exchange/messages/{id}`` (the envelopes; the read is logged on the
  person), ``POST /v1/exchange/messages/{id}/retry``.
- ``GET``/``POST /v1/exchange/agreements``, ``PATCH /v1/exchange/agreements/{id}`` (hub).
- ``GET /v1/exchange/trust-list``, ``GET /v1/exchange/log/checkpoint``.
- ``GET /v1/persons/{id}/institutions?purpose=``, ``POST /v1/persons/{id}/periods/fetch``,
  ``GET /v1/persons/{id}/foreign-periods``.

As elsewhere in the API, each operation parses, calls one service or selector with the
request's actor and shapes the answer; refusals are problem+json documents. A refusal by
another node (``Refusal``) becomes a problem with the reason code as its ``code``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import Path, Query, Router, Status

from pilar.core.api import (
    AUTH_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    PageNumber,
    PageOut,
    PageSize,
    ProblemOut,
    actor_of,
    page_out,
)
from pilar.core.api import MAX_ID as _MAX_ID
from pilar.core.errors import ApplicationError, NotFound, ValidationFailed
from pilar.core.roles import Perm
from pilar.exchange import schemas
from pilar.exchange import selectors_monitor as monitor
from pilar.exchange.models import Agreement, ExchangeMessage, ForeignPeriods
from pilar.exchange.purposes import is_purpose
from pilar.exchange.reasons import Refusal

router = Router(tags=["exchange"])

ObjectId = Annotated[int, Path(ge=1, le=_MAX_ID)]
T = TypeVar("T")


class PeerRefused(ApplicationError):
    """Another node (or this node's client-side checks) refused: the reason code is the
    problem's code, its translated message the detail."""

    status = 502
    code = "exchange.refused"

    def __init__(self, refusal: Refusal) -> None:
        status = refusal.http_status
        super().__init__(refusal.message(), code=refusal.code)
        # A peer that is down is "service unavailable" to the caller, not our bug.
        self.status = status if status in (400, 403, 404, 409, 422, 503) else 502


def _call(function: Callable[[], T]) -> T:
    try:
        return function()
    except Refusal as refusal:
        raise PeerRefused(refusal) from refusal


def _bad_purpose(purpose: str) -> None:
    if not is_purpose(purpose):
        raise ValidationFailed.single(
            "purpose",
            "purpose.invalid",
            _("Give the purpose of the request as one of the purpose codes."),
        )


# --- messages ---------------------------------------------------------------------------------


def _message_summary(row: ExchangeMessage) -> dict[str, Any]:
    return {
        "id": row.pk,
        "message_id": row.message_id,
        "direction": row.direction,
        "sender": row.sender,
        "receiver": row.receiver,
        "action": row.action,
        "purpose": row.purpose,
        "on_behalf_of": row.on_behalf_of,
        "status": row.status,
        "reason_code": row.reason_code,
        "reason_message": row.reason_message,
        "person_id": row.person_id,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at,
        "duration_ms": row.duration_ms,
        "created_at": row.created_at,
        "answered_at": row.answered_at,
    }


@router.get(
    "/exchange/messages",
    response={200: PageOut[schemas.MessageSummaryOut], **AUTH_ERRORS, 422: ProblemOut},
    summary="Messages sent and received (the exchange monitor)",
)
def exchange_message_list(
    request: HttpRequest,
    page: Annotated[PageNumber, Query(1)],
    page_size: Annotated[PageSize, Query(50)],
    direction: Annotated[str, Query("", max_length=3, description="in or out.")],
    status: Annotated[
        str, Query("", max_length=10, description="queued, answered, refused or failed.")
    ],
    peer: Annotated[str, Query("", max_length=40, description="The other member's code.")],
    action: Annotated[str, Query("", max_length=40)],
    purpose: Annotated[str, Query("", max_length=40)],
    since: Annotated[datetime.date | None, Query(None, description="From this day.")],
    until: Annotated[datetime.date | None, Query(None, description="Up to this day.")],
) -> dict[str, Any]:
    """Newest first, without the envelopes. Needs `exchange.view`."""
    result = monitor.message_list(
        actor=actor_of(request),
        direction=direction or None,
        status=status or None,
        peer=peer or None,
        action=action or None,
        purpose=purpose or None,
        since=since,
        until=until,
        page=page,
        page_size=page_size,
    )
    return page_out(request, result, [_message_summary(row) for row in result.items])


def _message_detail(view: monitor.MessageView) -> dict[str, Any]:
    row = view.message
    return {
        **_message_summary(row),
        "reason_text": view.reason_text,
        "last_error": row.last_error,
        "requested_by": row.requested_by.username if row.requested_by else None,
        "parent_id": row.parent_id,
        "envelope": row.envelope,
        "response": row.response,
        "leaves": [
            {
                "index": leaf.entry.index,
                "event": leaf.entry.event,
                "leaf_hash": leaf.entry.leaf_hash,
                "leaf": leaf.data,
                "checkpoint_size": leaf.checkpoint_size,
                "verified": leaf.verified,
                "problem": leaf.problem,
            }
            for leaf in view.leaves
        ],
    }


@router.get(
    "/exchange/messages/{int:message_pk}",
    response={200: schemas.MessageDetailOut, **READ_ERRORS},
    summary="A message with its signed envelopes and log leaves",
    url_name="exchange_message_get",
)
def exchange_message_get(request: HttpRequest, message_pk: ObjectId) -> dict[str, Any]:
    """The envelopes are the evidence and carry personal data: the read is logged on the
    message's person. Each log leaf says whether its inclusion proof verified against the
    newest checkpoint."""
    view = monitor.message_get(actor=actor_of(request), message_pk=message_pk)
    return _message_detail(view)


@router.post(
    "/exchange/messages/{int:message_pk}/retry",
    response={200: schemas.MessageDetailOut, **WRITE_ERRORS, 502: ProblemOut, 503: ProblemOut},
    summary="Send a failed or queued outgoing message again",
)
def exchange_message_retry(request: HttpRequest, message_pk: ObjectId) -> dict[str, Any]:
    """The same message id, signed again. Needs `exchange.manage`. An incoming or answered
    message gives 409."""
    from pilar.exchange import messaging

    actor = actor_of(request)
    actor.require(Perm.EXCHANGE_MANAGE)
    _call(lambda: messaging.message_retry(actor=actor, message_pk=message_pk))
    return _message_detail(monitor.message_get(actor=actor, message_pk=message_pk))


# --- agreements -------------------------------------------------------------------------------


def _agreement(agreement: Agreement) -> dict[str, Any]:
    return {
        "id": agreement.pk,
        "code": agreement.code,
        "consumer": agreement.consumer,
        "provider": agreement.provider,
        "service": agreement.service,
        "purposes": list(agreement.purposes),
        "fields": list(agreement.fields),
        "valid_from": agreement.valid_from,
        "valid_until": agreement.valid_until,
        "status": agreement.status,
        "legal_basis": agreement.legal_basis,
        "imported": agreement.imported,
        "version": agreement.version,
    }


@router.get(
    "/exchange/agreements",
    response={200: list[schemas.AgreementOut], **AUTH_ERRORS},
    summary="Agreements",
)
def exchange_agreement_list(
    request: HttpRequest,
    consumer: Annotated[str, Query("", max_length=40)],
    provider: Annotated[str, Query("", max_length=40)],
    service: Annotated[str, Query("", max_length=40)],
    status: Annotated[str, Query("", max_length=10)],
) -> list[dict[str, Any]]:
    """Every agreement this node holds (on a member: those of the current trust list). Needs
    `exchange.view`."""
    from pilar.exchange import selectors_agreements

    rows = selectors_agreements.agreement_list(
        actor=actor_of(request),
        consumer=consumer,
        provider=provider,
        service=service,
        status=status,
    )
    return [_agreement(row) for row in rows]


@router.post(
    "/exchange/agreements",
    response={201: schemas.AgreementOut, **WRITE_ERRORS},
    summary="Create an agreement (hub)",
)
def exchange_agreement_create(
    request: HttpRequest, payload: schemas.AgreementIn, response: HttpResponse
) -> Status:
    """Only on the hub, with `exchange.manage`; members receive it with the next trust list.
    A member code that is not registered, a field the service cannot grant, or an unknown
    purpose gives 422 with each problem."""
    from pilar.exchange import services_agreements

    agreement = services_agreements.agreement_create(
        actor=actor_of(request), **payload.model_dump()
    )
    response["Location"] = reverse("exchange:agreement_detail", args=[agreement.pk])
    return Status(201, _agreement(agreement))


@router.patch(
    "/exchange/agreements/{int:agreement_id}",
    response={200: schemas.AgreementOut, **WRITE_ERRORS},
    summary="Change or end an agreement (hub)",
)
def exchange_agreement_update(
    request: HttpRequest, agreement_id: ObjectId, payload: schemas.AgreementPatchIn
) -> dict[str, Any]:
    """Send the version read: someone else's change in between gives 409
    `exchange.agreement_stale`. With `end: true`, `valid_until` is the last day in force."""
    from pilar.exchange import services_agreements

    actor = actor_of(request)
    changes = payload.model_dump(exclude_unset=True, exclude={"version", "end"})
    if payload.end:
        agreement = services_agreements.agreement_end(
            actor=actor,
            agreement_id=agreement_id,
            expected_version=payload.version,
            valid_until=payload.valid_until,  # type: ignore[arg-type]
        )
    else:
        agreement = services_agreements.agreement_update(
            actor=actor, agreement_id=agreement_id, expected_version=payload.version, **changes
        )
    return _agreement(agreement)


# --- trust list and log -----------------------------------------------------------------------


@router.get(
    "/exchange/trust-list",
    response={200: schemas.TrustListOut, **AUTH_ERRORS},
    summary="The current trust list and this node's keys",
)
def exchange_trust_list(request: HttpRequest) -> dict[str, Any]:
    actor_of(request).require(Perm.EXCHANGE_VIEW)
    summary = monitor.trust_summary()
    current = summary.current
    return {
        "node": summary.node_code,
        "role": summary.node_role,
        "serial": current.serial if current else None,
        "issued_at": current.issued_at if current else None,
        "next_update": current.next_update if current else None,
        "hub": current.hub if current else "",
        "members": [
            {
                "code": member.code,
                "name": member.name,
                "role": member.role,
                "country": member.country,
                "endpoint": member.endpoint,
                "services": list(member.services),
                "active": member.active,
                "keys": [
                    {
                        "key_id": key.key_id,
                        "public_key": key.public_key,
                        "valid_from": key.valid_from,
                        "valid_until": key.valid_until,
                    }
                    for key in member.keys.all()
                ],
            }
            for member in summary.members
        ],
        "node_keys": [
            {
                "key_id": key.key_id,
                "public_key": key.public_key,
                "status": key.status,
                "created_at": key.created_at,
                "retired_at": key.retired_at,
            }
            for key in summary.node_keys
        ],
    }


@router.get(
    "/exchange/log/checkpoint",
    response={200: schemas.CheckpointOut, **READ_ERRORS},
    summary="This node's newest checkpoint with its cosignatures",
)
def exchange_log_checkpoint(request: HttpRequest) -> dict[str, Any]:
    """404 before the first checkpoint is signed."""
    actor_of(request).require(Perm.EXCHANGE_VIEW)
    summary = monitor.log_summary(limit=1)
    checkpoint = summary.newest
    if checkpoint is None:
        raise NotFound(extra={"entity": "log_checkpoint"})
    return {
        "origin": summary.origin,
        "size": checkpoint.size,
        "root_hash": checkpoint.root_hash,
        "note": checkpoint.note,
        "created_at": checkpoint.created_at,
        "cosignatures": [
            {
                "witness": cosignature.witness,
                "key_id": cosignature.key_id,
                "timestamp": cosignature.timestamp,
                "received_at": cosignature.received_at,
            }
            for cosignature in checkpoint.cosignatures.all()
        ],
    }


# --- a person at other institutions -----------------------------------------------------------


@router.get(
    "/persons/{int:person_id}/institutions",
    response={200: schemas.InstitutionsOut, **READ_ERRORS, 502: ProblemOut, 503: ProblemOut},
    summary="Other institutions holding records of the person (through the hub's index)",
)
def person_institutions(
    request: HttpRequest,
    person_id: ObjectId,
    purpose: Annotated[str, Query(..., max_length=40, description="A purpose code.")],
) -> dict[str, Any]:
    """Asks the hub's index (`index-resolve`) with the stated purpose. Needs
    `exchange.request`. A hub that does not answer gives 503 `err.peer.unavailable`."""
    from pilar.exchange import client

    actor = actor_of(request)
    actor.require(Perm.EXCHANGE_REQUEST)
    _bad_purpose(purpose)
    result = _call(
        lambda: client.person_institutions(actor=actor, person_id=person_id, purpose=purpose)
    )
    return {
        "fed_id": result.fed_id or "",
        "members": [
            {"code": item.code, "name": item.name, "holds_periods": item.holds_periods}
            for item in result.members
        ],
    }


@router.post(
    "/persons/{int:person_id}/periods/fetch",
    response={200: schemas.PeriodsFetchOut, **WRITE_ERRORS, 502: ProblemOut, 503: ProblemOut},
    summary="Fetch the person's insurance periods from the other institutions",
)
def person_periods_fetch(
    request: HttpRequest, person_id: ObjectId, payload: schemas.PeriodsFetchIn
) -> dict[str, Any]:
    """Through the hub (`periods-gather`), with the stated purpose. Each member's document is
    verified and stored; members that do not answer are listed in `unavailable` and asked
    again automatically. Needs `exchange.request`."""
    from pilar.exchange import client

    actor = actor_of(request)
    actor.require(Perm.EXCHANGE_REQUEST)
    _bad_purpose(payload.purpose)
    result = _call(
        lambda: client.person_periods_fetch(
            actor=actor, person_id=person_id, purpose=payload.purpose
        )
    )
    return {
        "fed_id": result.fed_id or "",
        "message_id": result.message_id,
        "results": [
            {
                "member": item.member,
                "status": item.status,
                "reason_code": item.reason_code,
                "reason_message": item.reason_message,
                "foreign_periods_id": item.foreign_periods_id,
            }
            for item in result.results
        ],
    }


@router.get(
    "/persons/{int:person_id}/foreign-periods",
    response={200: list[schemas.ForeignPeriodsOut], **READ_ERRORS},
    summary="Insurance periods received from other institutions",
)
def person_foreign_periods(request: HttpRequest, person_id: ObjectId) -> list[dict[str, Any]]:
    """The current document of each member (a newer one supersedes the older). Needs
    `person.view` (the read is logged on the person) and `exchange.request` or
    `exchange.view`."""
    from pilar.registry import selectors as registry_selectors

    actor = actor_of(request)
    if not (actor.can(Perm.EXCHANGE_REQUEST) or actor.can(Perm.EXCHANGE_VIEW)):
        actor.require(Perm.EXCHANGE_REQUEST)
    person = registry_selectors.person_get(
        actor=actor, person_id=person_id, purpose="foreign insurance periods"
    )
    rows = ForeignPeriods.objects.filter(person=person, superseded_at__isnull=True).order_by(
        "member", "-received_at"
    )
    documents = [monitor.periods_document(row) for row in rows]
    return [
        {
            "id": document.row.pk,
            "member": document.member,
            "institution": document.institution,
            "purpose": document.row.purpose,
            "received_at": document.row.received_at,
            "as_of": document.as_of,
            "periods": document.periods,
            "total_days": document.total_days,
            "total_weeks": document.total_weeks,
            "message_id": document.row.message_id,
        }
        for document in documents
    ]
