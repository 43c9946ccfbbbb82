"""Messaging: the provider's inbound pipeline (``receive``), the consumer's outbox (``send``,
``deliver``), the handler and answer-applier registries, and the staff retry.

Provider side
-------------
``receive(action, body, content_length)`` runs the contract's checks in order (body size, JSON,
envelope shape, version, action, receiver, sender in the trust list, key, signature, times,
replay, purpose, relay, agreement; the requested fields and the service's own validation are
the handler's) and answers a signed response envelope with the HTTP status of its reason. A
request that passes is handled in ONE transaction: the ``in`` row, the ``request-received``
leaf, the handler's own writes, the access-log entry when a person's data is answered, the
``response-sent`` leaf. A refusal writes only the refused row (when the sender and message id
could be read), one ``exchange.refused`` audit event and a ``refused`` leaf. A handler's fault
rolls its writes back and is answered ``err.internal``, never with a Django error page.

Consumer side
-------------
``send`` signs the request and COMMITS the ``out`` row (``queued``) with its ``request-sent``
leaf before any network call, so a request is never lost; ``deliver`` makes one attempt and
stores the verified answer (signature by the receiver's key AND bound to our request by
``request_hash``), its ``response-received`` leaf and runs the ``on_answer`` applier in the
same transaction. A peer that does not answer leaves the row ``queued`` with a back-off
(2 s doubling, capped at 10 min); ``tasks.deliver_due`` retries due rows with the same message
id, re-signed with a fresh ``created``/``expires``; after ``PILAR_EXCHANGE_MAX_ATTEMPTS`` the
row is ``failed`` with a ``delivery-failed`` leaf, and staff may ``message_retry`` it.

Decisions where docs/federation.md is silent:

- Replay and retry. A second message with the same (sender, message id) is a replay when its
  signature equals the stored one; the sender's retry when the signature differs but the
  content digest (canonical header without ``message_ts``, plus the message) is the same: it is
  processed again and the existing row is updated (the unique constraint allows one ``in`` row
  per sender and id); any other content is ``rjct.message_id.duplicate``. A row stored for a
  refusal decided *before* the signature verified never blocks a later message with that id
  (an unauthenticated message must not reserve a member's id). A replay refusal leaves the
  stored row as it was.
- Every signed version of a request that leaves this node (the first and each re-signed retry)
  gets its own ``request-sent`` leaf, and the row keeps the newest version; likewise an inbound
  retry adds ``request-received``/``response-sent`` leaves and the row keeps the newest pair.
- A refusal of a request whose sender could not be read is addressed to ``*``.
- The ``refused`` leaf records this node's signed refusal (the response envelope), since the
  refused request may be unreadable; it has no row when none could be written.
- ``purpose`` is checked after the replay check and before the agreement, for every action
  (the contract makes it required in every request).
- A relayed request (``header.meta``) is accepted only from a member whose role is ``hub``; the
  origin envelope is verified as of the relay's own creation time (the member signed it just
  before the hub relayed it, and a hub's retry may come after the origin's 5 minutes), must be
  addressed to the hub by ``on_behalf_of`` with the same purpose and action service.
- The applier runs only for ``succ`` answers; a refusal is stored and shown, not applied.
- ``send`` called inside a transaction that is not a test's (a hub handler fanning out) cannot
  commit first: the row and its leaf are written in a savepoint of the caller's transaction
  and delivered at once; they become durable with the caller's commit.
- Trust-list keys (and this node's own keys) are cached per process, keyed on the current
  ``TrustListVersion`` serial (read at most once a second), for at most
  ``TRUST_CACHE_SECONDS`` (hub staff edit members between publications); a sender not in the
  cache causes one reload (at most once a second). ``trust_cache_clear`` forgets it at once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from pilar.core.actor import Actor
from pilar.core.audit import access_record, audit_record
from pilar.core.errors import Conflict, NotFound, ValidationFailed
from pilar.core.roles import Perm
from pilar.exchange import envelope as env
from pilar.exchange.keys import SigningKey, VerifyKey
from pilar.exchange.models import (
    Agreement,
    Direction,
    ExchangeMessage,
    Member,
    MemberKey,
    MemberRole,
    MessageStatus,
    NodeKey,
    TrustListVersion,
)
from pilar.exchange.purposes import SERVICES, is_purpose
from pilar.exchange.reasons import Refusal
from pilar.exchange.selectors_agreements import agreement_for
from pilar.exchange.transport import PeerUnavailable, endpoint_url, get_transport

logger = logging.getLogger("pilar.exchange.messaging")

__all__ = [
    "Answer",
    "Inbound",
    "PeerUnavailable",
    "answer_applier",
    "deliver",
    "handler",
    "message_retry",
    "receive",
    "send",
]

TRUST_CACHE_SECONDS = 30.0
# How often the current trust-list serial is read (one tiny query) on the hot path.
SERIAL_CHECK_SECONDS = 1.0
BACKOFF_FIRST_SECONDS = 2
BACKOFF_CAP_SECONDS = 600
# Re-sign a stored request before posting it when its signature has less than this left.
RESIGN_MARGIN_SECONDS = 60
# Refusals decided before the signature verified: their rows never block a later message.
UNVERIFIED_REASONS = frozenset(
    {
        "rjct.body.too_large",
        "rjct.json.invalid",
        "rjct.envelope.invalid",
        "rjct.version.invalid",
        "rjct.action.invalid",
        "rjct.action.not_supported",
        "rjct.receiver.invalid",
        "rjct.sender.unknown",
        "rjct.key.unknown",
        "rjct.signature.invalid",
        "rjct.message_ts.invalid",
    }
)


# --------------------------------------------------------------------------------------------
# Registries
# --------------------------------------------------------------------------------------------


@dataclass
class Inbound:
    """A verified request, as a handler sees it."""

    sender: str
    header: dict[str, Any]
    message: dict[str, Any]
    purpose: str
    agreement: Agreement | None
    on_behalf_of: str
    row: ExchangeMessage
    # The whole signed request envelope (a hub relays it as ``meta.origin``).
    envelope: dict[str, Any] = field(default_factory=dict)

    @property
    def consumer(self) -> str:
        """Who the agreement was checked for: the member a hub acts for, or the sender."""
        return self.on_behalf_of or self.sender


@dataclass
class Answer:
    message: dict[str, Any]
    # The local person whose data is answered: one access-log entry in the same transaction.
    person_id: int | None = None


HandlerFunction = Callable[[Inbound], Answer]
Applier = Callable[[ExchangeMessage, dict[str, Any]], None]


@dataclass(frozen=True)
class HandlerSpec:
    action: str
    service: str | None
    function: HandlerFunction


_HANDLERS: dict[str, HandlerSpec] = {}
_APPLIERS: dict[str, Applier] = {}
_modules_loaded = False
_modules_lock = threading.Lock()


def handler(action: str, *, service: str | None) -> Callable[[HandlerFunction], HandlerFunction]:
    """Register the provider's handler of ``action``. ``service`` is the service an agreement
    must grant the consumer; ``None`` means no agreement check, and the handler enforces its
    own rule (``notify``: an active subscription; ``key-announce``: the member itself).
    ``service`` has no default on purpose: forgetting it must not switch the check off."""
    if service is not None and service not in SERVICES:
        raise ValueError(f"Unknown service {service!r} for the handler of {action!r}.")

    def register(function: HandlerFunction) -> HandlerFunction:
        _HANDLERS[action] = HandlerSpec(action, service, function)
        return function

    return register


def answer_applier(name: str) -> Callable[[Applier], Applier]:
    """Register the function that applies a ``succ`` answer to an outgoing message whose
    ``on_answer`` names it (stored by name, so never rename one that may have messages)."""

    def register(function: Applier) -> Applier:
        _APPLIERS[name] = function
        return function

    return register


# The modules that register handlers (services this node answers) and answer appliers. Listed
# rather than discovered so that a module that cannot be imported is an error at once, not a
# service that silently answers "not supported".
SERVICE_MODULES = (
    "pilar.exchange.handlers_search",
    "pilar.exchange.handlers_periods",
    "pilar.exchange.handlers_events",
    "pilar.exchange.handlers_trust",
    "pilar.exchange.hub",
    "pilar.exchange.client",
)


def _load_modules() -> None:
    """Import the modules of ``SERVICE_MODULES``, so a worker process that only imported
    ``tasks`` still knows every handler and applier."""
    global _modules_loaded
    if _modules_loaded:
        return
    with _modules_lock:
        if _modules_loaded:
            return
        import importlib

        for name in SERVICE_MODULES:
            importlib.import_module(name)
        _modules_loaded = True


def handler_for(action: str) -> HandlerSpec | None:
    _load_modules()
    return _HANDLERS.get(action)


def supported_actions() -> list[str]:
    _load_modules()
    return sorted(_HANDLERS)


# --------------------------------------------------------------------------------------------
# This node and the trust list's keys
# --------------------------------------------------------------------------------------------


def _node_code() -> str:
    return str(settings.PILAR_NODE_CODE)


def _signing_key() -> SigningKey:
    from pilar.exchange.node import signing_key

    return signing_key()


@dataclass
class _TrustCache:
    serial: int | None = None
    loaded_at: float = 0.0
    serial_checked_at: float = 0.0
    last_miss_reload: float = 0.0
    roles: dict[str, str] = field(default_factory=dict)
    keys: dict[tuple[str, str], list[tuple[VerifyKey, dt.datetime, dt.datetime | None]]] = field(
        default_factory=dict
    )


_trust = _TrustCache()
_trust_lock = threading.Lock()


def trust_cache_clear() -> None:
    """Forget the cached members and keys (after a trust list is taken or a member changed)."""
    global _trust
    with _trust_lock:
        _trust = _TrustCache()


def _current_serial() -> int | None:
    return TrustListVersion.objects.order_by("-serial").values_list("serial", flat=True).first()


def _load_trust(serial: int | None) -> _TrustCache:
    cache = _TrustCache(serial=serial, loaded_at=time.monotonic())
    cache.roles = dict(Member.objects.filter(active=True).values_list("code", "role"))
    # This node's own keys, for the envelopes it sends itself (a node in its own trust list
    # finds them there too). A retired key is valid until it was retired.
    own = _node_code()
    for key_id, public_key, retired_at in NodeKey.objects.values_list(
        "key_id", "public_key", "retired_at"
    ):
        try:
            key = VerifyKey.from_public_b64(own, public_key)
        except ValueError:
            continue
        cache.keys.setdefault((own, key_id), []).append(
            (key, dt.datetime.min.replace(tzinfo=dt.UTC), retired_at)
        )
    for code, key_id, public_key, valid_from, valid_until in MemberKey.objects.filter(
        member__active=True
    ).values_list("member__code", "key_id", "public_key", "valid_from", "valid_until"):
        try:
            key = VerifyKey.from_public_b64(code, public_key)
        except ValueError:
            logger.warning("member %s has an unreadable key %s", code, key_id)
            continue
        cache.keys.setdefault((code, key_id), []).append((key, valid_from, valid_until))
    return cache


def _trust_view(*, sender: str | None = None) -> _TrustCache:
    global _trust
    now = time.monotonic()
    cache = _trust
    serial = cache.serial
    if cache.loaded_at == 0.0 or now - cache.serial_checked_at > SERIAL_CHECK_SECONDS:
        serial = _current_serial()
        cache.serial_checked_at = now
    stale = cache.loaded_at == 0.0 or cache.serial != serial
    stale = stale or now - cache.loaded_at > TRUST_CACHE_SECONDS
    if not stale and sender is not None and sender not in cache.roles:
        stale = now - cache.last_miss_reload > 1.0
        if stale:
            cache.last_miss_reload = now
    if stale:
        fresh = _load_trust(serial)
        fresh.last_miss_reload = cache.last_miss_reload
        fresh.serial_checked_at = now
        with _trust_lock:
            _trust = fresh
        cache = fresh
    return cache


def resolve_key(sender: str, key_id: str, created: dt.datetime) -> VerifyKey | None:
    """The sender's key with this id valid at ``created``: from the trust list's keys (cached),
    and for this node's own code from its own keys."""
    cache = _trust
    for key, valid_from, valid_until in cache.keys.get((sender, key_id), []):
        if valid_from <= created and (valid_until is None or created <= valid_until):
            return key
    if sender == _node_code() and (sender, key_id) not in cache.keys:
        # A key of this node made since the cache was loaded (a rotation in this process).
        from pilar.exchange.node import resolve_key as node_resolve_key

        return node_resolve_key(sender, key_id, created)
    return None


# --------------------------------------------------------------------------------------------
# Provider side: receive
# --------------------------------------------------------------------------------------------


def response_body(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _system_actor(sender: str) -> Actor:
    return Actor.system(f"exchange:{sender or 'unknown'}", channel="exchange", roles=frozenset())


def _content_digest(header: dict[str, Any], message: dict[str, Any]) -> bytes:
    """What a sender's retry keeps unchanged: the header without ``message_ts`` and the
    message (the signature and its times change on every attempt)."""
    stable = {name: value for name, value in header.items() if name != "message_ts"}
    return env.canonical({"header": stable, "message": message})


@dataclass
class _Incoming:
    """What is known about an incoming request so far (a refusal uses whatever is there)."""

    action: str
    started: float
    envelope: Any = None
    header: dict[str, Any] | None = None
    sender: str = ""
    message_id: str = ""
    request_hash: str = ""
    # The stored row of an earlier message with this sender and id, when it may be reused.
    reusable: ExchangeMessage | None = None
    # Whether that stored row was a refusal (a refusal may then update it; an answered
    # exchange keeps its record).
    reusable_was_refused: bool = False
    # The stored row is a verified earlier exchange: a refusal must not touch it.
    protected: bool = False


class _DuplicateRace(Exception):
    """Another request with the same sender and id was stored between the check and ours."""


def receive(action: str, body: bytes | None, content_length: int | None) -> tuple[int, dict]:
    """Handle one incoming request: ``(http_status, signed response envelope)``.

    ``body`` may be None when ``content_length`` already exceeds the limit (the view does not
    read such a body at all)."""
    incoming = _Incoming(action=action, started=time.perf_counter())
    try:
        return _receive(incoming, body, content_length)
    except Refusal as refusal:
        return _refuse(incoming, refusal)
    except _DuplicateRace:
        return _refuse(
            incoming, Refusal("rjct.message_id.duplicate", message_id=incoming.message_id)
        )
    except Exception:
        logger.exception("exchange %s from %s failed", action, incoming.sender or "?")
        return _refuse(incoming, Refusal("err.internal"))


def _read(incoming: _Incoming, body: bytes | None, content_length: int | None) -> dict[str, Any]:
    limit = int(settings.PILAR_EXCHANGE_MAX_BYTES)
    if (content_length is not None and content_length > limit) or body is None or len(body) > limit:
        raise Refusal("rjct.body.too_large", limit_kb=limit // 1024)
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Refusal("rjct.json.invalid") from None
    if not isinstance(document, dict):
        raise Refusal("rjct.json.invalid")
    incoming.envelope = document
    header = document.get("header")
    if isinstance(header, dict):
        sender, message_id = header.get("sender_id"), header.get("message_id")
        if isinstance(sender, str) and 0 < len(sender) <= 40:
            incoming.sender = sender
        if isinstance(message_id, str) and 0 < len(message_id) <= 64:
            incoming.message_id = message_id
    return document


def _receive(
    incoming: _Incoming, body: bytes | None, content_length: int | None
) -> tuple[int, dict]:
    document = _read(incoming, body, content_length)
    header, message, signature = env.check_shape(document)
    incoming.header = header
    action = incoming.action
    if header["action"] != action:
        raise Refusal("rjct.action.invalid", action=header["action"], expected=action)
    spec = handler_for(action)
    if spec is None:
        raise Refusal("rjct.action.not_supported", action=action)
    node = _node_code()
    if header["receiver_id"] != node:
        raise Refusal("rjct.receiver.invalid", receiver=header["receiver_id"], node=node)
    sender = header["sender_id"]
    trust = _trust_view(sender=sender)
    if sender not in trust.roles and sender != node:
        raise Refusal("rjct.sender.unknown", sender=sender)
    ttl, skew = int(settings.PILAR_EXCHANGE_TTL_SECONDS), int(settings.PILAR_EXCHANGE_SKEW_SECONDS)
    params = env.verify(document, resolve_key=resolve_key, max_ttl=ttl, skew=skew)
    incoming.request_hash = params.envelope_hash

    existing = ExchangeMessage.objects.filter(
        direction=Direction.IN, sender=sender, message_id=header["message_id"]
    ).first()
    if existing is not None:
        incoming.reusable_was_refused = existing.status == MessageStatus.REFUSED
        if existing.status == MessageStatus.REFUSED and existing.reason_code in UNVERIFIED_REASONS:
            incoming.reusable = existing
        else:
            incoming.protected = True
            stored = existing.envelope if isinstance(existing.envelope, dict) else {}
            if stored.get("signature") == signature:
                raise Refusal("rjct.message_id.duplicate", message_id=header["message_id"])
            stored_header, stored_message = stored.get("header"), stored.get("message")
            if not (
                isinstance(stored_header, dict)
                and isinstance(stored_message, dict)
                and _content_digest(stored_header, stored_message)
                == _content_digest(header, message)
            ):
                raise Refusal("rjct.message_id.duplicate", message_id=header["message_id"])
            # The sender's retry: answer it again on the same row.
            incoming.reusable = existing
            incoming.protected = False

    purpose = header.get("purpose")
    if not is_purpose(purpose):
        raise Refusal("rjct.purpose.invalid", purpose=purpose if isinstance(purpose, str) else "")
    assert isinstance(purpose, str)
    on_behalf_of = _check_relay(header, trust, params)
    consumer = on_behalf_of or sender
    agreement: Agreement | None = None
    if spec.service is not None:
        agreement = agreement_for(
            consumer=consumer,
            provider=node,
            service=spec.service,
            purpose=purpose,
            on=timezone.localdate(),
        )
        if agreement is None:
            raise Refusal(
                "rjct.agreement.missing",
                consumer=consumer,
                service=spec.service,
                provider=node,
                purpose=purpose,
            )
    return _answer(
        incoming,
        spec=spec,
        document=document,
        header=header,
        message=message,
        purpose=purpose,
        agreement=agreement,
        on_behalf_of=on_behalf_of,
    )


def _check_relay(header: dict[str, Any], trust: _TrustCache, params: env.SignatureParams) -> str:
    """For a request a hub relays for a member: the member's own signed request must come
    with it and agree with the relay. Returns the member acted for ('' when not relayed)."""
    meta = header.get("meta")
    if not meta:
        return ""
    assert isinstance(meta, dict)
    sender = header["sender_id"]
    on_behalf_of, origin = meta.get("on_behalf_of"), meta.get("origin")
    if not isinstance(on_behalf_of, str) or not on_behalf_of or not isinstance(origin, dict):
        raise Refusal(
            "rjct.envelope.invalid",
            detail=_("a relayed request needs meta.on_behalf_of and meta.origin."),
        )
    if trust.roles.get(sender) != MemberRole.HUB:
        raise Refusal(
            "rjct.envelope.invalid",
            detail=_("only the hub may relay a request on behalf of a member."),
        )
    # As of the relay's creation: the member signed the origin just before the hub relayed it.
    env.verify(origin, resolve_key=resolve_key, now=params.created_at, max_ttl=None, skew=0)
    origin_header = origin["header"]
    if origin_header["sender_id"] != on_behalf_of:
        raise Refusal(
            "rjct.envelope.invalid",
            detail=_("the relayed request was not sent by %(member)s.") % {"member": on_behalf_of},
        )
    if origin_header["receiver_id"] != sender:
        raise Refusal(
            "rjct.envelope.invalid",
            detail=_("the relayed request was not addressed to the hub."),
        )
    if origin_header.get("purpose") != header.get("purpose"):
        raise Refusal(
            "rjct.envelope.invalid",
            detail=_("the relayed request states another purpose."),
        )
    return on_behalf_of


def _answer(
    incoming: _Incoming,
    *,
    spec: HandlerSpec,
    document: dict[str, Any],
    header: dict[str, Any],
    message: dict[str, Any],
    purpose: str,
    agreement: Agreement | None,
    on_behalf_of: str,
) -> tuple[int, dict]:
    from pilar.exchange.log import log_append

    sender, node = header["sender_id"], _node_code()
    key = _signing_key()
    now = timezone.now()
    with transaction.atomic():
        row = incoming.reusable
        values = {
            "receiver": node,
            "action": incoming.action,
            "purpose": purpose,
            "on_behalf_of": on_behalf_of,
            "status": MessageStatus.ANSWERED,
            "reason_code": "",
            "reason_message": "",
            "request_hash": incoming.request_hash,
            "envelope": document,
            "updated_at": now,
        }
        if row is None:
            try:
                row = ExchangeMessage.objects.create(
                    direction=Direction.IN,
                    message_id=header["message_id"],
                    sender=sender,
                    created_at=now,
                    **values,
                )
            except IntegrityError:
                raise _DuplicateRace() from None
        else:
            for name, value in values.items():
                setattr(row, name, value)
        log_append(event="request-received", envelope=document, row=row)
        answer = spec.function(
            Inbound(
                sender=sender,
                header=header,
                message=message,
                purpose=purpose,
                agreement=agreement,
                on_behalf_of=on_behalf_of,
                row=row,
                envelope=document,
            )
        )
        response = env.sign(
            env.build_response(
                request_header=header,
                request_hash=incoming.request_hash,
                sender_id=node,
                receiver_id=sender,
                action=incoming.action,
                status="succ",
                message=answer.message,
            ),
            key,
            ttl=int(settings.PILAR_EXCHANGE_TTL_SECONDS),
        )
        row.response = response
        row.person_id = answer.person_id
        row.answered_at = timezone.now()
        row.duration_ms = (time.perf_counter() - incoming.started) * 1000
        row.save()
        log_append(event="response-sent", envelope=response, row=row, status="succ")
        if answer.person_id is not None:
            access_record(
                actor=_system_actor(on_behalf_of or sender),
                person_id=answer.person_id,
                action=incoming.action[:30],
                purpose=purpose,
            )
    return 200, response


def _refuse(incoming: _Incoming, refusal: Refusal) -> tuple[int, dict]:
    """Answer a refusal: signed when this node can sign; writes the refused row (when the
    sender and id are readable and no verified exchange holds them), one audit event and a
    ``refused`` leaf, nothing else."""
    from pilar.exchange.log import log_append

    node = _node_code()
    header = incoming.header
    if header is None and isinstance(incoming.envelope, dict):
        raw_header = incoming.envelope.get("header")
        header = raw_header if isinstance(raw_header, dict) else None
    if not incoming.request_hash and isinstance(incoming.envelope, dict):
        try:
            incoming.request_hash = env.envelope_hash(incoming.envelope)
        except Exception:  # an envelope canonical JSON cannot represent has no hash
            incoming.request_hash = ""
    reason_message = refusal.message()
    response = env.build_response(
        request_header=header,
        request_hash=incoming.request_hash,
        sender_id=node,
        # A refusal of a body whose sender could not be read goes to "*": whoever sent it.
        receiver_id=incoming.sender or "*",
        action=incoming.action[:40] or "unknown",
        status="rjct",
        reason_code=refusal.code,
        reason_message=reason_message,
    )
    try:
        response = env.sign(response, _signing_key(), ttl=int(settings.PILAR_EXCHANGE_TTL_SECONDS))
    except Exception:
        # A node without a key yet still tells the sender why, unsigned.
        logger.exception("could not sign a refusal")
        response = {"signature": "", **response}

    def text(value: Any, limit: int) -> str:
        return value[:limit] if isinstance(value, str) else ""

    try:
        with transaction.atomic():
            row: ExchangeMessage | None = None
            if incoming.reusable is not None:
                row = incoming.reusable if incoming.reusable_was_refused else None
            elif incoming.sender and incoming.message_id and not incoming.protected:
                row = ExchangeMessage.objects.filter(
                    direction=Direction.IN,
                    sender=incoming.sender,
                    message_id=incoming.message_id,
                ).first()
                if row is None:
                    row = ExchangeMessage(
                        direction=Direction.IN,
                        sender=incoming.sender,
                        message_id=incoming.message_id,
                    )
                elif not (
                    row.status == MessageStatus.REFUSED and row.reason_code in UNVERIFIED_REASONS
                ):
                    row = None  # a verified exchange keeps its record
                if row is not None:
                    row.receiver = text((header or {}).get("receiver_id"), 40)
                    row.action = incoming.action[:40]
                    row.purpose = text((header or {}).get("purpose"), 40)
                    row.on_behalf_of = ""
                    row.status = MessageStatus.REFUSED
                    row.reason_code = refusal.code
                    row.reason_message = reason_message
                    row.request_hash = incoming.request_hash
                    row.envelope = (
                        incoming.envelope if isinstance(incoming.envelope, dict) else None
                    )
                    row.response = response
                    row.person_id = None
                    row.answered_at = timezone.now()
                    row.updated_at = row.answered_at
                    row.duration_ms = (time.perf_counter() - incoming.started) * 1000
                    row.save()
            audit_record(
                actor=_system_actor(incoming.sender),
                action="exchange.refused",
                entity_type="exchange.message",
                entity_id=row.pk if row is not None else (incoming.message_id or "-"),
                changes={
                    "reason_code": refusal.code,
                    "action": incoming.action[:40],
                    "sender": incoming.sender,
                    "message_id": incoming.message_id,
                },
                note=refusal.message("en"),
            )
            log_append(
                event="refused",
                envelope=response,
                row=row,  # None when no row could be written
                status="rjct",
                reason_code=refusal.code,
            )
    except Exception:
        logger.exception("could not record the refusal of %s", incoming.message_id or "?")
    return refusal.http_status, response


# --------------------------------------------------------------------------------------------
# Consumer side: send, deliver
# --------------------------------------------------------------------------------------------


def _in_callers_transaction() -> bool:
    """Whether we run inside a transaction opened by a caller (not a test case's wrapper)."""
    blocks = getattr(connection, "atomic_blocks", [])
    return any(not getattr(block, "_from_testcase", False) for block in blocks)


def _backoff(attempts: int) -> dt.timedelta:
    seconds = BACKOFF_FIRST_SECONDS * 2 ** max(attempts - 1, 0)
    return dt.timedelta(seconds=min(seconds, BACKOFF_CAP_SECONDS))


def send(
    *,
    actor: Actor,
    receiver: str,
    action: str,
    purpose: str,
    message: dict[str, Any],
    person_id: int | None = None,
    on_answer: str = "",
    on_behalf_of: str = "",
    origin: dict[str, Any] | None = None,
    parent: ExchangeMessage | None = None,
    deliver_now: bool = True,
    key: SigningKey | None = None,
) -> ExchangeMessage:
    """Sign and store a request to ``receiver`` (committed before any network call), then,
    with ``deliver_now``, make the first attempt. Raises ``PeerUnavailable`` when that attempt
    got no valid answer; the row stays queued and is retried. ``key`` signs with a given key
    instead of the active one (a key rotation announces the new key with the old one)."""
    from pilar.exchange.log import log_append

    member = (
        Member.objects.filter(code=receiver, active=True).only("code", "endpoint", "active").first()
    )
    if member is None:
        raise ValidationFailed.single(
            "receiver",
            "unknown",
            _("%(code)s is not an active member of the trust list.") % {"code": receiver},
        )
    if not is_purpose(purpose):
        raise ValidationFailed.single(
            "purpose", "unknown", _("Choose the purpose of the request from the list.")
        )
    if on_answer:
        _load_modules()
        if on_answer not in _APPLIERS:
            raise ValueError(f"No answer applier is registered as {on_answer!r}.")
    meta = {"on_behalf_of": on_behalf_of, "origin": origin} if on_behalf_of else None
    signed = env.sign(
        env.build_request(
            action=action,
            sender_id=_node_code(),
            receiver_id=receiver,
            purpose=purpose,
            message=message,
            meta=meta,
        ),
        key or _signing_key(),
        ttl=int(settings.PILAR_EXCHANGE_TTL_SECONDS),
    )
    now = timezone.now()
    with transaction.atomic(durable=not _in_callers_transaction()):
        row = ExchangeMessage.objects.create(
            direction=Direction.OUT,
            message_id=signed["header"]["message_id"],
            sender=_node_code(),
            receiver=receiver,
            action=action,
            purpose=purpose,
            on_behalf_of=on_behalf_of,
            status=MessageStatus.QUEUED,
            request_hash=env.envelope_hash(signed),
            envelope=signed,
            person_id=person_id,
            requested_by=actor.user,
            parent=parent,
            on_answer=on_answer,
            next_attempt_at=now,
            # This process makes the first attempt: no other takes the message meanwhile.
            attempt_until=now + _attempt_lease() if deliver_now else None,
            created_at=now,
            updated_at=now,
        )
        log_append(event="request-sent", envelope=signed, row=row)
    if not deliver_now:
        return row
    row = _deliver(row, member=member, key=key, claimed=True)
    details = {"peer": receiver, "message_id": row.message_id, "error": row.last_error}
    extra = {"message_id": row.message_id, "message_pk": row.pk, "peer": receiver}
    if row.status == MessageStatus.QUEUED:
        raise PeerUnavailable(
            _(
                "%(peer)s did not answer message %(message_id)s (%(error)s). The message is "
                "kept and will be retried."
            )
            % details,
            extra=extra,
        )
    if row.status == MessageStatus.FAILED:
        raise PeerUnavailable(
            _(
                "%(peer)s did not answer message %(message_id)s (%(error)s). No attempts are "
                "left; staff may retry it from the exchange monitor."
            )
            % details,
            extra=extra,
        )
    return row


def deliver(message_pk: int, *, due_only: bool = False) -> ExchangeMessage:
    """One delivery attempt of a queued outgoing message (a no-op for any other status, and
    while another process is making one). ``due_only``: only if its next attempt is due (the
    scheduler's retries), not at once (staff, ``pilar federation deliver``)."""
    row = ExchangeMessage.objects.get(pk=message_pk, direction=Direction.OUT)
    return _deliver(row, now_or_later=not due_only)


def _resign_key(envelope: dict[str, Any]) -> SigningKey:
    """The key a retry is signed with: the key that signed the first attempt while this node
    still has it (a key-announce must stay signed with the old key), else the active key."""
    from pilar.exchange.models import KeyStatus

    try:
        key_id = env.parse_signature(envelope.get("signature", "")).key_id
    except Refusal:
        return _signing_key()
    current = _signing_key()
    if key_id == current.key_id:
        return current
    if NodeKey.objects.filter(key_id=key_id).exclude(status=KeyStatus.RETIRED).exists():
        path = Path(settings.PILAR_KEYS_DIR) / f"{key_id}.key"
        try:
            return SigningKey.load(path, _node_code())
        except (OSError, ValueError):
            logger.warning("the key %s that signed a queued message is gone", key_id)
    return current


def _attempt_lease() -> dt.timedelta:
    """The longest one attempt can take (the HTTP timeout and a margin)."""
    return dt.timedelta(seconds=float(settings.PILAR_EXCHANGE_TIMEOUT_SECONDS) + 30)


def _claim(row: ExchangeMessage, *, now_or_later: bool) -> bool:
    """Take one attempt of a queued message for this process (``attempt_until``), so another
    process (the duties of another worker, a ``pilar federation deliver``) leaves it alone
    meanwhile; an attempt that died with its process is made again once that time has passed.
    Two processes sending one message at once would each re-sign it, and the answer to one
    would not match the request the row keeps. ``now_or_later``: attempt even before the
    back-off's next attempt is due (staff or a command asking for it now)."""
    now = timezone.now()
    due = Q()
    if not now_or_later:
        due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    taken = (
        ExchangeMessage.objects.filter(pk=row.pk, status=MessageStatus.QUEUED)
        .filter(Q(attempt_until__isnull=True) | Q(attempt_until__lte=now))
        .filter(due)
        .update(attempt_until=now + _attempt_lease())
    )
    if taken:
        row.refresh_from_db()
    return bool(taken)


def _deliver(
    row: ExchangeMessage,
    *,
    member: Member | None = None,
    key: SigningKey | None = None,
    claimed: bool = False,
    now_or_later: bool = True,
) -> ExchangeMessage:
    from pilar.exchange.log import log_append

    if row.status != MessageStatus.QUEUED or not isinstance(row.envelope, dict):
        return row
    if not claimed and not _claim(row, now_or_later=now_or_later):
        return row
    if member is None:
        member = Member.objects.filter(code=row.receiver).only("code", "endpoint", "active").first()
    if member is None or not member.active:
        return _record_failure(
            row, _("%(code)s is no longer an active member.") % {"code": row.receiver}
        )
    envelope: dict[str, Any] = row.envelope
    try:
        expires = env.parse_signature(envelope.get("signature", "")).expires
    except Refusal:
        expires = 0
    if row.attempts > 0 or expires - time.time() < RESIGN_MARGIN_SECONDS:
        envelope = env.sign(
            {"header": envelope["header"], "message": envelope["message"]},
            key or _resign_key(envelope),
            ttl=int(settings.PILAR_EXCHANGE_TTL_SECONDS),
        )
        with transaction.atomic():
            row.envelope = envelope
            row.request_hash = env.envelope_hash(envelope)
            row.updated_at = timezone.now()
            row.save(update_fields=["envelope", "request_hash", "updated_at"])
            log_append(event="request-sent", envelope=envelope, row=row)

    started = time.perf_counter()
    url = endpoint_url(member.endpoint, row.action)
    try:
        status, content = get_transport().post(
            url, response_body(envelope), float(settings.PILAR_EXCHANGE_TIMEOUT_SECONDS)
        )
    except PeerUnavailable as error:
        return _record_failure(row, str(error.message))
    duration_ms = (time.perf_counter() - started) * 1000
    response, problem = _check_response(row, envelope, status, content)
    if response is None:
        return _record_failure(row, problem)
    try:
        return _store_answer(row, response, duration_ms)
    except Exception as error:
        _record_failure(
            row, _("The answer could not be applied: %(error)s") % {"error": repr(error)[:300]}
        )
        raise


def _check_response(
    row: ExchangeMessage, request: dict[str, Any], status: int, content: bytes
) -> tuple[dict[str, Any] | None, str]:
    """The peer's answer if it is a signed response by the receiver bound to our request;
    otherwise None and why (the message then counts as not answered)."""
    try:
        response = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, _("HTTP %(status)s without a signed answer.") % {"status": status}
    if not isinstance(response, dict) or not response.get("signature"):
        return None, _("HTTP %(status)s without a signed answer.") % {"status": status}
    try:
        header, _message, _signature = env.check_shape(response)
        if header["sender_id"] != row.receiver:
            raise Refusal("rjct.sender.unknown", sender=header["sender_id"])
        _trust_view(sender=row.receiver)
        env.verify(
            response,
            resolve_key=resolve_key,
            max_ttl=int(settings.PILAR_EXCHANGE_TTL_SECONDS),
            skew=int(settings.PILAR_EXCHANGE_SKEW_SECONDS),
        )
    except Refusal as refusal:
        return None, _("The answer does not verify: %(reason)s") % {"reason": refusal.message()}
    if not env.response_matches(response, request):
        return None, _("The answer is not bound to this request (request id or hash differs).")
    if header["receiver_id"] != row.sender or header["action"] != f"on-{row.action}":
        return None, _("The answer is addressed to another node or action.")
    return response, ""


def _store_answer(
    row: ExchangeMessage, response: dict[str, Any], duration_ms: float
) -> ExchangeMessage:
    from pilar.exchange.log import log_append

    header = response["header"]
    succeeded = header["status"] == "succ"
    with transaction.atomic():
        locked = ExchangeMessage.objects.select_for_update().get(pk=row.pk)
        if locked.status != MessageStatus.QUEUED:
            return locked  # another attempt stored an answer first
        if isinstance(locked.envelope, dict) and not env.response_matches(
            response, locked.envelope
        ):
            # A late answer to an attempt whose lease ran out and was re-signed since: the
            # request the row keeps is the newer one, whose own answer is awaited.
            return locked
        now = timezone.now()
        locked.response = response
        locked.status = MessageStatus.ANSWERED if succeeded else MessageStatus.REFUSED
        locked.reason_code = "" if succeeded else str(header.get("status_reason_code", ""))[:60]
        locked.reason_message = "" if succeeded else str(header.get("status_reason_message", ""))
        locked.attempts += 1
        locked.next_attempt_at = None
        locked.attempt_until = None
        locked.last_error = ""
        locked.duration_ms = duration_ms
        locked.answered_at = now
        locked.updated_at = now
        locked.save()
        log_append(
            event="response-received",
            envelope=response,
            row=locked,
            status=header["status"],
            reason_code=locked.reason_code,
        )
        if succeeded and locked.on_answer:
            _load_modules()
            _APPLIERS[locked.on_answer](locked, response["message"])
    return locked


def _record_failure(row: ExchangeMessage, problem: str) -> ExchangeMessage:
    """Count a failed attempt: back off, or give up after the last attempt."""
    from pilar.exchange.log import log_append

    with transaction.atomic():
        locked = ExchangeMessage.objects.select_for_update().get(pk=row.pk)
        if locked.status != MessageStatus.QUEUED:
            return locked
        now = timezone.now()
        locked.attempts += 1
        locked.last_error = problem[:2000]
        locked.updated_at = now
        if locked.attempts >= int(settings.PILAR_EXCHANGE_MAX_ATTEMPTS):
            locked.status = MessageStatus.FAILED
            locked.next_attempt_at = None
            locked.attempt_until = None
            locked.save()
            log_append(
                event="delivery-failed",
                envelope=locked.envelope,
                row=locked,
                status="failed",
                reason_code="err.peer.unavailable",
            )
        else:
            locked.next_attempt_at = now + _backoff(locked.attempts)
            locked.attempt_until = None
            locked.save()
    return locked


# --------------------------------------------------------------------------------------------
# Staff: retry a failed message
# --------------------------------------------------------------------------------------------


class NotRetryable(Conflict):
    code = "exchange.not_retryable"


@transaction.atomic(durable=True)
def message_retry(
    *, actor: Actor, message_id_pk: int | None = None, message_pk: int | None = None
) -> ExchangeMessage:
    """Put a failed outgoing message back in the queue for a new series of attempts (same
    message id; the delivery job sends it at its next tick). ``message_pk`` is accepted as
    another name of ``message_id_pk`` (the row's primary key, not the envelope's id)."""
    actor.require(Perm.EXCHANGE_MANAGE)
    pk = message_id_pk if message_id_pk is not None else message_pk
    if pk is None:
        raise NotFound()
    try:
        row = ExchangeMessage.objects.select_for_update().get(pk=pk)
    except ExchangeMessage.DoesNotExist:
        raise NotFound() from None
    if row.direction != Direction.OUT or row.status != MessageStatus.FAILED:
        raise NotRetryable(_("Only a failed outgoing message can be retried."))
    before = {"status": row.status, "attempts": row.attempts}
    row.status = MessageStatus.QUEUED
    row.attempts = 0
    row.next_attempt_at = timezone.now()
    row.updated_at = row.next_attempt_at
    row.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    audit_record(
        actor=actor,
        action="exchange.retry",
        entity_type="exchange.message",
        entity_id=row.pk,
        changes={
            "status": [before["status"], row.status],
            "attempts": [before["attempts"], 0],
        },
        note=f"{row.action} {row.message_id} to {row.receiver}",
    )
    return row
