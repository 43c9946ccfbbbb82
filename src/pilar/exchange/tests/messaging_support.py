"""Shared set-up of the messaging tests: this node with a key in a temporary folder, a peer
member ``MX-TEST`` with its own key, an agreement, a tiny ``echo-test`` handler, counters of
everything an exchange may write, and a fake transport that answers like a peer.

(A module of fixtures and helpers; its one test checks the set-up itself.)"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from pilar.core.actor import Actor
from pilar.core.audit import audit_record
from pilar.core.models import AccessLogEntry, AuditEvent
from pilar.exchange import envelope as env
from pilar.exchange import messaging
from pilar.exchange.keys import SigningKey
from pilar.exchange.messaging import Answer, Inbound, answer_applier, handler
from pilar.exchange.models import (
    Agreement,
    AgreementStatus,
    ExchangeMessage,
    LogEntry,
    Member,
    MemberKey,
    MemberRole,
)
from pilar.exchange.node import node_keys_init, reset_signing_key_cache, signing_key
from pilar.exchange.reasons import Refusal
from pilar.exchange.selectors_agreements import require_fields
from pilar.exchange.transport import PeerUnavailable, set_transport

NODE = "MX-NODE"
PEER = "MX-TEST"
HUB = "MX-HUBT"
ECHO = "echo-test"
PURPOSE = "verification"

# What the tiny handler and applier saw, so tests can count their runs.
APPLIED: list[tuple[int, dict[str, Any]]] = []


@handler(ECHO, service="person-search")
def handle_echo(request: Inbound) -> Answer:
    message = request.message
    require_fields(request.agreement, message.get("fields", []))  # type: ignore[arg-type]
    if message.get("invalid"):
        raise Refusal("rjct.search_criteria.invalid", detail="invalid was asked for")
    if message.get("crash"):
        # A write the rollback must undo, then a fault.
        audit_record(
            actor=Actor.system("echo", roles=frozenset()),
            action="echo.before_crash",
            entity_type="test",
            entity_id=1,
        )
        raise RuntimeError("the handler broke")
    return Answer(
        message={"echo": message, "consumer": request.consumer, "row": request.row.pk},
        person_id=message.get("person_id"),
    )


@answer_applier("echo-store")
def apply_echo(row: ExchangeMessage, response_message: dict[str, Any]) -> None:
    APPLIED.append((row.pk, response_message))


@dataclass
class Peer:
    code: str
    key: SigningKey
    member: Member


def make_peer(code: str, *, role: str = MemberRole.INSTITUTE, endpoint: str = "") -> Peer:
    key = SigningKey.generate(code)
    member = Member.objects.create(
        code=code,
        name=f"Institution {code}",
        role=role,
        endpoint=endpoint or f"http://{code.lower()}.example",
        services=["person-search"],
    )
    MemberKey.objects.create(
        member=member,
        key_id=key.key_id,
        public_key=key.public_b64,
        valid_from=timezone.now() - dt.timedelta(days=1),
    )
    return Peer(code, key, member)


def make_agreement(
    consumer: str, *, provider: str = "*", fields: tuple[str, ...] = ("curp", "nss"), **extra: Any
) -> Agreement:
    values: dict[str, Any] = {
        "code": f"AG-{consumer}-{provider}".replace("*", "ALL"),
        "consumer": consumer,
        "provider": provider,
        "service": "person-search",
        "purposes": [PURPOSE],
        "fields": list(fields),
        "valid_from": timezone.localdate() - dt.timedelta(days=10),
        "status": AgreementStatus.ACTIVE,
    }
    values.update(extra)
    return Agreement.objects.create(**values)


@pytest.fixture
def node(settings: Any, tmp_path: Any) -> Iterator[str]:
    settings.PILAR_NODE_CODE = NODE
    settings.PILAR_NODE_ROLE = "institute"
    settings.PILAR_KEYS_DIR = tmp_path / "keys"
    reset_signing_key_cache()
    messaging.trust_cache_clear()
    node_keys_init()
    APPLIED.clear()
    yield NODE
    set_transport(None)
    reset_signing_key_cache()
    messaging.trust_cache_clear()


@pytest.fixture
def peer(node: str) -> Peer:
    peer = make_peer(PEER)
    make_agreement(PEER)
    return peer


def request_envelope(
    peer: Peer,
    message: dict[str, Any] | None = None,
    *,
    action: str = ECHO,
    receiver: str = NODE,
    purpose: str = PURPOSE,
    now: dt.datetime | None = None,
    ttl: int = 300,
    message_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    unsigned = env.build_request(
        action=action,
        sender_id=peer.code,
        receiver_id=receiver,
        purpose=purpose,
        message=message if message is not None else {"hello": "world"},
        message_id=message_id,
        meta=meta,
        now=now,
    )
    return env.sign(unsigned, peer.key, ttl=ttl, now=now)


def post(client: Any, body: bytes | dict[str, Any], *, action: str = ECHO, **extra: Any) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        f"/exchange/v1/sync/{action}", data=data, content_type="application/json", **extra
    )


def counts() -> dict[str, int]:
    return {
        "messages": ExchangeMessage.objects.count(),
        "audit": AuditEvent.objects.count(),
        "leaves": LogEntry.objects.count(),
        "access": AccessLogEntry.objects.count(),
    }


def verify_with_node(response_envelope: dict[str, Any]) -> env.SignatureParams:
    from pilar.exchange.node import resolve_key

    return env.verify(response_envelope, resolve_key=resolve_key)


class PeerTransport:
    """Answers like the peer would: a signed response bound to the request (``mode`` ``ok``
    or ``rjct``), or a response bound to another request (``unbound``), or no answer at all
    (``down``), or an unsigned 502 from a proxy (``proxy``)."""

    def __init__(self, peer: Peer, mode: str = "ok") -> None:
        self.peer = peer
        self.mode = mode
        self.requests: list[dict[str, Any]] = []

    def post(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        request = json.loads(body)
        self.requests.append(request)
        if self.mode == "down":
            raise PeerUnavailable(f"{url}: connection refused")
        if self.mode == "proxy":
            return 502, b"<html>Bad gateway</html>"
        bound_to = request
        if self.mode == "unbound":
            bound_to = {**request, "signature": request["signature"].replace("pilar", "other")}
        response = env.sign(
            env.build_response(
                request_header=request["header"],
                request_hash=env.envelope_hash(bound_to),
                sender_id=self.peer.code,
                receiver_id=request["header"]["sender_id"],
                action=request["header"]["action"],
                status="rjct" if self.mode == "rjct" else "succ",
                reason_code="rjct.agreement.missing" if self.mode == "rjct" else "",
                reason_message="no agreement" if self.mode == "rjct" else "",
                message={} if self.mode == "rjct" else {"answer": 42},
            ),
            self.peer.key,
        )
        return (403 if self.mode == "rjct" else 200), json.dumps(response).encode()


def test_the_set_up_signs_with_this_node_and_the_peer(db: None, peer: Peer) -> None:
    assert signing_key().name == NODE
    envelope = request_envelope(peer)
    messaging._trust_view(sender=PEER)
    assert env.verify(envelope, resolve_key=messaging.resolve_key).key_id == peer.key.key_id
