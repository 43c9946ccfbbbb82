"""Shared helpers of the transparency-log tests: this node's key in a temporary directory,
peer members with keys, and exchanges (signed envelopes in ExchangeMessage rows) with their
log leaves, built the way messaging builds them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.utils import timezone

from pilar.exchange import envelope
from pilar.exchange.keys import SigningKey
from pilar.exchange.log import log_append
from pilar.exchange.models import ExchangeMessage, Member, MemberKey
from pilar.exchange.node import node_keys_init, reset_signing_key_cache, signing_key

NODE = "MX-LOGTEST"
PEER = "MX-PEER"


def setup_node(settings: Any, tmp_path: Path, code: str = NODE) -> SigningKey:
    settings.PILAR_NODE_CODE = code
    settings.PILAR_KEYS_DIR = tmp_path / f"keys-{code}"
    reset_signing_key_cache()
    node_keys_init()
    return signing_key()


def add_member(code: str, role: str = "institute", key: SigningKey | None = None) -> SigningKey:
    key = key or SigningKey.generate(code)
    member, _ = Member.objects.get_or_create(
        code=code,
        defaults={"name": code, "role": role, "endpoint": f"http://{code.lower()}.test"},
    )
    MemberKey.objects.create(
        member=member,
        key_id=key.key_id,
        public_key=key.public_b64,
        valid_from=timezone.now() - dt.timedelta(days=1),
    )
    return key


def sent_exchange(
    node_key: SigningKey,
    peer_key: SigningKey,
    *,
    answer: bool = True,
    purpose: str = "verification",
) -> ExchangeMessage:
    """An outgoing request this node sent to the peer, with its leaves (and the answer)."""
    request = envelope.sign(
        envelope.build_request(
            action="search",
            sender_id=node_key.name,
            receiver_id=peer_key.name,
            purpose=purpose,
            message={"search_request": [{"reference_id": "1"}]},
        ),
        node_key,
    )
    row = ExchangeMessage.objects.create(
        direction="out",
        message_id=request["header"]["message_id"],
        sender=node_key.name,
        receiver=peer_key.name,
        action="search",
        purpose=purpose,
        status="queued",
        request_hash=envelope.envelope_hash(request),
        envelope=request,
    )
    log_append(event="request-sent", envelope=request, row=row)
    if answer:
        response = envelope.sign(
            envelope.build_response(
                request_header=request["header"],
                request_hash=row.request_hash,
                sender_id=peer_key.name,
                receiver_id=node_key.name,
                action="search",
                status="succ",
                message={"search_response": []},
            ),
            peer_key,
        )
        row.response = response
        row.status = "answered"
        row.save(update_fields=["response", "status"])
        log_append(event="response-received", envelope=response, row=row)
    return row


def received_exchange(node_key: SigningKey, peer_key: SigningKey) -> ExchangeMessage:
    """An incoming request the peer sent here, answered by this node."""
    request = envelope.sign(
        envelope.build_request(
            action="periods",
            sender_id=peer_key.name,
            receiver_id=node_key.name,
            purpose="totalisation",
            message={"search_request": [{"reference_id": "1"}]},
        ),
        peer_key,
    )
    row = ExchangeMessage.objects.create(
        direction="in",
        message_id=request["header"]["message_id"],
        sender=peer_key.name,
        receiver=node_key.name,
        action="periods",
        purpose="totalisation",
        status="answered",
        request_hash=envelope.envelope_hash(request),
        envelope=request,
    )
    log_append(event="request-received", envelope=request, row=row)
    response = envelope.sign(
        envelope.build_response(
            request_header=request["header"],
            request_hash=row.request_hash,
            sender_id=node_key.name,
            receiver_id=peer_key.name,
            action="periods",
            status="succ",
            message={"document": {}},
        ),
        node_key,
    )
    row.response = response
    row.save(update_fields=["response"])
    log_append(event="response-sent", envelope=response, row=row)
    return row
