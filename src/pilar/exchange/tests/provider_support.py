"""Shared set-up of the provider tests (search, periods, events): this node with a signing key,
a consumer member ``MX-TEST`` with a key the test holds, agreements, and a way to post signed
envelopes to the real endpoint and read the signed answer. No tests here."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from pilar.exchange import envelope
from pilar.exchange.keys import SigningKey, VerifyKey
from pilar.exchange.messaging import trust_cache_clear
from pilar.exchange.models import Agreement, AgreementStatus, Member, MemberKey, NodeKey
from pilar.exchange.node import node_keys_init, reset_signing_key_cache

NODE = "MX-PROV"
CONSUMER = "MX-TEST"


@dataclass
class Federation:
    client: Client
    consumer_key: SigningKey
    node_key: VerifyKey

    def post(
        self,
        action: str,
        message: dict[str, Any],
        *,
        purpose: str = "verification",
        sender: str = CONSUMER,
        key: SigningKey | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Sign ``message`` as ``sender`` and POST it to this node's endpoint; the HTTP status
        and the response envelope, whose signature (this node's key) and binding to the
        request are checked here."""
        request = envelope.sign(
            envelope.build_request(
                action=action,
                sender_id=sender,
                receiver_id=NODE,
                purpose=purpose,
                message=message,
            ),
            key or self.consumer_key,
        )
        response = self.client.post(
            f"/exchange/v1/sync/{action}",
            data=json.dumps(request),
            content_type="application/json",
        )
        answer = json.loads(response.content)
        envelope.verify(
            answer,
            resolve_key=lambda sender_id, key_id, created: (
                self.node_key if sender_id == NODE and key_id == self.node_key.key_id else None
            ),
        )
        assert envelope.response_matches(answer, request)
        return response.status_code, answer


def add_member(code: str, key: SigningKey, *, services: list[str] | None = None) -> Member:
    member = Member.objects.create(
        code=code,
        name=f"Instituto {code}",
        role="institute",
        endpoint=f"http://{code.lower()}.invalid",
        services=services or ["person-search", "insurance-periods", "events"],
    )
    MemberKey.objects.create(
        member=member,
        key_id=key.key_id,
        public_key=key.public_b64,
        valid_from=timezone.now() - datetime.timedelta(days=1),
    )
    return member


def agree(
    service: str,
    fields: list[str],
    *,
    purposes: tuple[str, ...] = ("verification",),
    consumer: str = CONSUMER,
    code: str | None = None,
) -> Agreement:
    return Agreement.objects.create(
        code=code or f"AG-{service}-{consumer}",
        consumer=consumer,
        provider="*",
        service=service,
        purposes=list(purposes),
        fields=fields,
        valid_from=datetime.date(2020, 1, 1),
        status=AgreementStatus.ACTIVE,
        imported=True,
    )


@pytest.fixture(name="federation")
def federation_fixture(
    settings: Any, tmp_path: Any, client: Client, db: None
) -> Iterator[Federation]:
    settings.PILAR_NODE_CODE = NODE
    settings.PILAR_NODE_ROLE = "institute"
    settings.PILAR_KEYS_DIR = tmp_path / "keys"
    settings.PILAR_INSTITUTION_NAME = "Instituto de Prueba"
    reset_signing_key_cache()
    trust_cache_clear()
    row: NodeKey = node_keys_init()
    consumer_key = SigningKey.generate(CONSUMER)
    add_member(CONSUMER, consumer_key)
    add_member(NODE, SigningKey.generate(NODE)).keys.all().delete()
    MemberKey.objects.create(
        member=Member.objects.get(code=NODE),
        key_id=row.key_id,
        public_key=row.public_key,
        valid_from=timezone.now() - datetime.timedelta(days=1),
    )
    yield Federation(
        client=client,
        consumer_key=consumer_key,
        node_key=VerifyKey.from_public_b64(NODE, row.public_key),
    )
    reset_signing_key_cache()
    trust_cache_clear()
