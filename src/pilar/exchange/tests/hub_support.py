"""Shared set-up of the hub and client tests: this node as the hub (or as an institute), the
members with keys the test holds, agreements, signed requests handed to ``messaging.receive``,
and fake transports that answer as the members would (one database per test process, so the
other nodes are simulated by signing with their keys). Its one test checks the set-up."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.utils import timezone

from pilar.core.identifiers import curp_complete, curp_stem
from pilar.exchange import envelope as env
from pilar.exchange import messaging
from pilar.exchange.keys import SigningKey
from pilar.exchange.models import (
    Agreement,
    AgreementStatus,
    Member,
    MemberKey,
    MemberRole,
    NodeKey,
)
from pilar.exchange.node import node_keys_init, reset_signing_key_cache
from pilar.exchange.transport import PeerUnavailable, set_transport

HUB = "MX-HUB"
A = "MX-AAA"
B = "MX-BBB"
C = "MX-CCC"


@dataclass
class Peer:
    code: str
    key: SigningKey
    member: Member


def make_member(
    code: str, *, role: str = MemberRole.INSTITUTE, key: SigningKey | None = None
) -> Peer:
    key = key or SigningKey.generate(code)
    member = Member.objects.create(
        code=code,
        name=f"Instituto {code}",
        role=role,
        endpoint=f"http://{code.lower()}.invalid",
        services=["insurance-periods", "index"],
    )
    MemberKey.objects.create(
        member=member,
        key_id=key.key_id,
        public_key=key.public_b64,
        valid_from=timezone.now() - dt.timedelta(days=1),
    )
    return Peer(code, key, member)


def own_member(code: str, role: str) -> Member:
    """This node's own row in the trust list, with its node key."""
    row = NodeKey.objects.get()
    member = Member.objects.create(
        code=code, name=f"Nodo {code}", role=role, endpoint=f"http://{code.lower()}.invalid"
    )
    MemberKey.objects.create(
        member=member,
        key_id=row.key_id,
        public_key=row.public_key,
        valid_from=timezone.now() - dt.timedelta(days=1),
    )
    return member


def agree(
    consumer: str, service: str, purposes: list[str], fields: list[str] | None = None
) -> None:
    Agreement.objects.create(
        code=f"AG-{consumer}-{service}",
        consumer=consumer,
        provider="*",
        service=service,
        purposes=purposes,
        fields=fields or [],
        valid_from=dt.date(2020, 1, 1),
        status=AgreementStatus.ACTIVE,
        imported=True,
    )


PERIOD_FIELDS = ["period.from", "period.to", "period.type", "period.days", "period.weeks"]


def curp(number: int, *, born: dt.date = dt.date(1960, 5, 17)) -> str:
    """A valid CURP, a different one for each ``number`` (0 to 9 000)."""
    names = ["ANA", "LUIS", "MARIA", "JOSE", "ROSA", "JUAN", "ELENA", "PEDRO", "SARA", "RAUL"]
    surnames = ["PEREZ", "LOPEZ", "GARCIA", "RUIZ", "DIAZ", "MORA", "SOTO", "VEGA", "ROJAS"]
    stem = curp_stem(
        given_names=names[number % 10],
        paternal_surname=surnames[(number // 10) % 9],
        maternal_surname=surnames[(number // 90) % 9],
        birth_date=born + dt.timedelta(days=number // 810),
        sex="M" if number % 2 else "F",
        birth_state="JC",
    )
    return curp_complete(stem, born, number)


def signed_request(
    peer: Peer,
    action: str,
    message: dict[str, Any],
    *,
    purpose: str,
    receiver: str = HUB,
) -> dict[str, Any]:
    return env.sign(
        env.build_request(
            action=action,
            sender_id=peer.code,
            receiver_id=receiver,
            purpose=purpose,
            message=message,
        ),
        peer.key,
    )


def deliver_to_this_node(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Hand a signed request to this node's inbound pipeline, as the endpoint does."""
    body = json.dumps(request).encode()
    return messaging.receive(request["header"]["action"], body, len(body))


@pytest.fixture(name="hub")
def hub_fixture(settings: Any, tmp_path: Any, db: None) -> Iterator[dict[str, Peer]]:
    """This node is the hub ``MX-HUB``, with members A, B, C whose keys the test holds and
    agreements letting them use the index and gather periods for a totalisation."""
    settings.PILAR_NODE_CODE = HUB
    settings.PILAR_NODE_ROLE = "hub"
    settings.PILAR_HUB_CODE = HUB
    settings.PILAR_KEYS_DIR = tmp_path / "keys"
    reset_signing_key_cache()
    messaging.trust_cache_clear()
    node_keys_init()
    own_member(HUB, MemberRole.HUB)
    peers = {}
    for code in (A, B, C):
        peers[code] = make_member(code)
        agree(code, "index", ["indexing"])
        agree(code, "insurance-periods", ["totalisation"], PERIOD_FIELDS)
    yield peers
    set_transport(None)
    reset_signing_key_cache()
    messaging.trust_cache_clear()


def periods_document(member: str, fed_id: str, weeks: int) -> dict[str, Any]:
    return {
        "type": "P5000",
        "institution": {"code": member, "name": f"Instituto {member}", "country": "MX"},
        "person": {"fed_id": fed_id},
        "periods": [
            {"from": "1990-01-01", "to": "1999-12-31", "type": "employment", "days": weeks * 7}
        ],
        "totals": {"days": weeks * 7, "weeks": weeks, "unit": "week"},
        "as_of": "2025-05-01",
    }


def member_answer(
    key: SigningKey, request: dict[str, Any], message: dict[str, Any], *, status: str = "succ"
) -> dict[str, Any]:
    """The signed response a member gives ``request``, bound to it by its hash."""
    return env.sign(
        env.build_response(
            request_header=request["header"],
            request_hash=env.envelope_hash(request),
            sender_id=key.name,
            receiver_id=request["header"]["sender_id"],
            action=request["header"]["action"],
            status=status,
            reason_code="" if status == "succ" else "rjct.person.not_found",
            reason_message="" if status == "succ" else "No person with this identifier.",
            message=message,
        ),
        key,
    )


@dataclass
class MembersTransport:
    """Answers as each member would: ``answer(receiver, request) -> message`` builds the
    answer's message; members in ``down`` do not answer at all."""

    keys: dict[str, SigningKey]
    answer: Callable[[str, dict[str, Any]], dict[str, Any]]
    down: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def post(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        request = json.loads(body)
        self.requests.append(request)
        receiver = request["header"]["receiver_id"]
        if receiver in self.down:
            raise PeerUnavailable(f"{url}: connection refused")
        response = member_answer(self.keys[receiver], request, self.answer(receiver, request))
        return 200, json.dumps(response).encode()


def by_curp(value: str) -> dict[str, Any]:
    return {"query_type": "idtype-value", "query": {"type": "CURP", "value": value}}


def test_the_hub_set_up_answers_a_signed_request(hub: dict[str, Peer]) -> None:
    request = signed_request(hub[A], "index-resolve", by_curp(curp(1)), purpose="indexing")
    status, response = deliver_to_this_node(request)
    assert status == 200, response["header"]["status_reason_message"]
    assert response["header"]["status"] == "succ"
    assert response["message"] == {"fed_id": None, "members": []}
