"""``periods-gather`` on the hub: the members holding the person's periods (not the caller) are
each sent a relayed ``periods`` request carrying the caller's own signed envelope; their signed
answers come back verbatim; a member that is down is reported ``unavailable`` while the
others' answers are kept; the relayed requests stay in the hub's outbox as evidence."""

from __future__ import annotations

import json
from typing import Any

from pilar.exchange import envelope as env
from pilar.exchange.models import Agreement, Direction, ExchangeMessage, MessageStatus
from pilar.exchange.node import resolve_key
from pilar.exchange.tests.hub_support import (
    HUB,
    A,
    B,
    C,
    MembersTransport,
    Peer,
    by_curp,
    curp,
    deliver_to_this_node,
    hub_fixture,  # noqa: F401 - the fixture
    member_answer,
    periods_document,
    signed_request,
)
from pilar.exchange.transport import set_transport


def enrol_everywhere(hub: dict[str, Peer], number: int, holders: dict[str, bool]) -> str:
    fed_id = ""
    for code, holds in holders.items():
        request = signed_request(
            hub[code],
            "index-enrol",
            {"items": [{"member_ref": f"{code}-1", "curp": curp(number), "holds_periods": holds}]},
            purpose="indexing",
        )
        status, response = deliver_to_this_node(request)
        assert status == 200
        fed_id = response["message"]["enrolled"][0]["fed_id"]
    return fed_id


def gather(peer: Peer, query: dict[str, Any], **extra: Any) -> tuple[dict, int, dict]:
    request = signed_request(peer, "periods-gather", {**query, **extra}, purpose="totalisation")
    status, response = deliver_to_this_node(request)
    return request, status, response


def test_members_answer_and_one_down_is_reported_unavailable(hub: dict[str, Peer]) -> None:
    fed_id = enrol_everywhere(hub, 1, {A: True, B: True, C: True})
    transport = MembersTransport(
        keys={B: hub[B].key, C: hub[C].key},
        answer=lambda member, request: {
            "document": periods_document(member, request["message"]["query"]["value"], 300)
        },
        down={C},
    )
    set_transport(transport)

    request, status, response = gather(hub[A], by_curp(curp(1)), fields=["period.weeks"])

    assert status == 200, response["header"]["status_reason_message"]
    # The hub's answer is signed by the hub and bound to the caller's request.
    env.verify(response, resolve_key=resolve_key)
    assert env.response_matches(response, request)
    message = response["message"]
    assert message["fed_id"] == fed_id
    results = {r["member"]: r for r in message["results"]}
    assert set(results) == {B, C}  # not the caller
    assert results[B]["status"] == "succ"
    assert results[B]["reason_code"] == ""
    member_response = results[B]["response"]
    # The member's own signed answer, verbatim: the caller can verify it with B's key.
    params = env.parse_signature(member_response["signature"])
    env.verify(member_response, resolve_key=resolve_key, now=params.created_at)
    assert member_response["header"]["sender_id"] == B
    assert member_response["message"]["document"]["totals"]["weeks"] == 300
    # ...bound to the hub's relayed request, which carries the caller's envelope.
    relayed = results[B]["request"]
    assert env.response_matches(member_response, relayed)
    assert relayed["header"]["sender_id"] == HUB
    assert relayed["header"]["meta"]["on_behalf_of"] == A
    assert relayed["header"]["meta"]["origin"] == request
    assert relayed["header"]["purpose"] == "totalisation"
    assert relayed["message"] == {
        "query_type": "idtype-value",
        "query": {"type": "FED", "value": fed_id},
        "fields": ["period.weeks"],
    }

    assert results[C]["status"] == "unavailable"
    assert results[C]["reason_code"] == "err.peer.unavailable"
    assert results[C]["response"] is None
    assert C in results[C]["reason_message"]

    # The hub's rows: the caller's request answered; a child per member, B answered, C kept
    # queued for a retry.
    inbound = ExchangeMessage.objects.get(direction=Direction.IN, action="periods-gather")
    assert inbound.status == MessageStatus.ANSWERED
    children = {row.receiver: row for row in inbound.children.all()}
    assert children[B].status == MessageStatus.ANSWERED
    assert children[B].on_behalf_of == A
    assert children[C].status == MessageStatus.QUEUED
    assert children[C].next_attempt_at is not None
    assert results[C]["message_id"] == children[C].message_id
    assert [r["header"]["receiver_id"] for r in transport.requests] == [B, C]


def test_only_members_holding_periods_are_asked(hub: dict[str, Peer]) -> None:
    enrol_everywhere(hub, 2, {A: True, B: False})
    transport = MembersTransport(keys={}, answer=lambda member, request: {})
    set_transport(transport)
    _, status, response = gather(hub[A], by_curp(curp(2)))
    assert status == 200
    assert response["message"]["results"] == []
    assert transport.requests == []


def test_a_member_refusing_is_reported_with_its_reason(hub: dict[str, Peer]) -> None:
    enrol_everywhere(hub, 3, {A: True, B: True})

    class Refusing(MembersTransport):
        def post(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
            request = json.loads(body)
            answer = member_answer(self.keys[B], request, {}, status="rjct")
            return 404, json.dumps(answer).encode()

    set_transport(Refusing(keys={B: hub[B].key}, answer=lambda m, r: {}))
    _, status, response = gather(hub[A], by_curp(curp(3)))
    assert status == 200
    [result] = response["message"]["results"]
    assert (result["member"], result["status"]) == (B, "rjct")
    assert result["reason_code"] == "rjct.person.not_found"
    assert result["response"]["header"]["status"] == "rjct"


def test_an_unknown_person_is_refused(hub: dict[str, Peer]) -> None:
    _, status, response = gather(hub[A], by_curp(curp(9)))
    assert status == 404
    assert response["header"]["status_reason_code"] == "rjct.person.not_found"


def test_a_gather_without_an_agreement_is_refused(hub: dict[str, Peer]) -> None:
    enrol_everywhere(hub, 4, {A: True, B: True})
    Agreement.objects.filter(consumer=A, service="insurance-periods").delete()
    _, status, response = gather(hub[A], by_curp(curp(4)))
    assert status == 403
    assert response["header"]["status_reason_code"] == "rjct.agreement.missing"
    assert not ExchangeMessage.objects.filter(direction=Direction.OUT).exists()
