"""The provider side through the real endpoint: every reason code of the contract's table, what
a refusal writes (the refused row, one audit event, one refused leaf; nothing else), what an
answer writes, replays and the sender's retries, relayed requests from the hub."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.utils import timezone

from pilar.core.models import AccessLogEntry, AuditEvent
from pilar.exchange import envelope as env
from pilar.exchange import messaging
from pilar.exchange.keys import SigningKey
from pilar.exchange.models import Direction, ExchangeMessage, LogEntry, MemberKey, MemberRole
from pilar.exchange.reasons import REASONS
from pilar.exchange.tests.messaging_support import (
    ECHO,
    HUB,
    NODE,
    PEER,
    PURPOSE,
    Peer,
    counts,
    make_agreement,
    make_peer,
    node,
    peer,
    post,
    request_envelope,
    verify_with_node,
)
from pilar.registry.tests.factories import PersonFactory

__all__ = ["node", "peer"]  # fixtures used by name

pytestmark = pytest.mark.django_db


def assert_refused(
    response: Any, code: str, before: dict[str, int], *, row: bool = True
) -> dict[str, Any]:
    """The answer is a signed refusal with ``code`` and its HTTP status, and the only writes
    are the refused row (when ``row``), one ``exchange.refused`` event and one refused leaf."""
    assert response.status_code == REASONS[code].http_status, response.content
    answer = json.loads(response.content)
    header = answer["header"]
    assert header["status"] == "rjct"
    assert header["status_reason_code"] == code
    assert header["status_reason_message"]
    assert header["sender_id"] == NODE
    verify_with_node(answer)
    after = counts()
    assert after["messages"] - before["messages"] == (1 if row else 0)
    assert after["audit"] - before["audit"] == 1
    assert after["leaves"] - before["leaves"] == 1
    assert after["access"] == before["access"]
    event = AuditEvent.objects.latest("id")
    assert event.action == "exchange.refused"
    assert event.changes["reason_code"] == code
    leaf = LogEntry.objects.latest("id")
    assert leaf.event == "refused"
    assert json.loads(leaf.data)["reason_code"] == code
    if row:
        stored = ExchangeMessage.objects.latest("id")
        assert stored.direction == Direction.IN
        assert stored.status == "refused"
        assert stored.reason_code == code
        assert stored.response == answer
        assert leaf.message_id == stored.pk
    return answer


# --- answered ---------------------------------------------------------------------------------


def test_a_valid_request_is_answered_signed_and_logged(client: Any, peer: Peer) -> None:
    before = counts()
    envelope = request_envelope(peer, {"fields": ["curp"]})
    response = post(client, envelope)
    assert response.status_code == 200, response.content
    answer = json.loads(response.content)
    verify_with_node(answer)
    assert answer["header"]["status"] == "succ"
    assert answer["header"]["request_id"] == envelope["header"]["message_id"]
    assert env.response_matches(answer, envelope)
    assert answer["message"]["echo"] == {"fields": ["curp"]}
    row = ExchangeMessage.objects.get(direction=Direction.IN, sender=PEER)
    assert row.status == "answered"
    assert row.envelope == envelope
    assert row.response == answer
    assert row.request_hash == env.envelope_hash(envelope)
    assert [leaf.event for leaf in LogEntry.objects.order_by("id")] == [
        "request-received",
        "response-sent",
    ]
    after = counts()
    assert after["audit"] == before["audit"]  # an answer is logged, not audited
    assert after["access"] == before["access"]  # no person answered


def test_a_person_answered_gets_an_access_log_entry(client: Any, peer: Peer) -> None:
    person: Any = PersonFactory()
    response = post(client, request_envelope(peer, {"person_id": person.pk}))
    assert response.status_code == 200
    entry = AccessLogEntry.objects.get(person_id=person.pk)
    assert entry.actor_label == f"exchange:{PEER}"
    assert entry.channel == "exchange"
    assert entry.purpose == PURPOSE
    assert ExchangeMessage.objects.get(direction=Direction.IN).person_id == person.pk


def test_get_is_not_allowed(client: Any, node: str) -> None:
    response = client.get(f"/exchange/v1/sync/{ECHO}")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "detail" in json.loads(response.content)


# --- every reason code --------------------------------------------------------------------------


def test_body_too_large_by_content_length_is_refused_before_reading(
    client: Any, peer: Peer
) -> None:
    before = counts()
    response = post(client, request_envelope(peer), CONTENT_LENGTH=str(50 * 1024 * 1024))
    # Nothing of the body was read, so no sender or id: no row.
    assert_refused(response, "rjct.body.too_large", before, row=False)


def test_a_real_over_limit_body_is_refused(client: Any, peer: Peer, settings: Any) -> None:
    big = request_envelope(peer, {"padding": "x" * (settings.PILAR_EXCHANGE_MAX_BYTES + 10)})
    before = counts()
    assert_refused(post(client, big), "rjct.body.too_large", before, row=False)


def test_a_body_without_length_over_the_limit_is_refused(peer: Peer, settings: Any) -> None:
    body = b"{" + b" " * (settings.PILAR_EXCHANGE_MAX_BYTES + 1) + b"}"
    status, answer = messaging.receive(ECHO, body, None)
    assert status == 413
    assert answer["header"]["status_reason_code"] == "rjct.body.too_large"


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", '{"a": 1}'.encode("utf-16"), b"\xff\xfe{}"]
)
def test_malformed_json_is_refused(client: Any, peer: Peer, body: bytes) -> None:
    before = counts()
    assert_refused(post(client, body), "rjct.json.invalid", before, row=False)


def test_an_envelope_without_signature_is_refused(client: Any, peer: Peer) -> None:
    envelope = request_envelope(peer)
    del envelope["signature"]
    before = counts()
    # The sender and id are readable: the refusal is kept on a row.
    assert_refused(post(client, envelope), "rjct.envelope.invalid", before)


def test_another_version_is_refused(client: Any, peer: Peer) -> None:
    envelope = request_envelope(peer)
    envelope["header"]["version"] = "2.0.0"
    before = counts()
    assert_refused(post(client, envelope), "rjct.version.invalid", before)


def test_an_action_other_than_the_address_is_refused(client: Any, peer: Peer) -> None:
    before = counts()
    response = post(client, request_envelope(peer), action="search")
    assert_refused(response, "rjct.action.invalid", before)


def test_an_action_not_offered_is_refused(client: Any, peer: Peer) -> None:
    before = counts()
    envelope = request_envelope(peer, action="no-such-action")
    assert_refused(
        post(client, envelope, action="no-such-action"), "rjct.action.not_supported", before
    )


def test_a_message_for_another_node_is_refused(client: Any, peer: Peer) -> None:
    before = counts()
    envelope = request_envelope(peer, receiver="MX-OTHER")
    assert_refused(post(client, envelope), "rjct.receiver.invalid", before)


def test_an_unknown_sender_is_refused(client: Any, node: str) -> None:
    stranger = Peer("MX-STRANGER", SigningKey.generate("MX-STRANGER"), None)  # type: ignore[arg-type]
    before = counts()
    assert_refused(post(client, request_envelope(stranger)), "rjct.sender.unknown", before)


def test_an_inactive_member_is_refused(client: Any, peer: Peer) -> None:
    peer.member.active = False
    peer.member.save()
    messaging.trust_cache_clear()
    before = counts()
    assert_refused(post(client, request_envelope(peer)), "rjct.sender.unknown", before)


def test_an_unknown_key_is_refused(client: Any, peer: Peer) -> None:
    impostor = Peer(PEER, SigningKey.generate(PEER), peer.member)
    before = counts()
    assert_refused(post(client, request_envelope(impostor)), "rjct.key.unknown", before)


def test_a_key_not_yet_valid_at_creation_is_refused(client: Any, peer: Peer) -> None:
    MemberKey.objects.filter(member=peer.member).update(
        valid_from=timezone.now() + dt.timedelta(hours=1)
    )
    messaging.trust_cache_clear()
    before = counts()
    assert_refused(post(client, request_envelope(peer)), "rjct.key.unknown", before)


def test_a_bad_signature_is_refused(client: Any, peer: Peer) -> None:
    envelope = request_envelope(peer, {"amount": "10"})
    envelope["message"]["amount"] = "1000"  # altered after signing
    before = counts()
    assert_refused(post(client, envelope), "rjct.signature.invalid", before)


def test_a_malformed_signature_is_refused(client: Any, peer: Peer) -> None:
    envelope = request_envelope(peer)
    envelope["signature"] = "Signature: nonsense"
    before = counts()
    assert_refused(post(client, envelope), "rjct.signature.invalid", before)


def test_an_expired_message_is_refused(client: Any, peer: Peer) -> None:
    envelope = request_envelope(peer, now=timezone.now() - dt.timedelta(minutes=10))
    before = counts()
    assert_refused(post(client, envelope), "rjct.message_ts.invalid", before)


def test_a_message_from_the_future_is_refused(client: Any, peer: Peer) -> None:
    envelope = request_envelope(peer, now=timezone.now() + dt.timedelta(minutes=2))
    before = counts()
    assert_refused(post(client, envelope), "rjct.message_ts.invalid", before)


def test_a_lifetime_over_five_minutes_is_refused(client: Any, peer: Peer) -> None:
    envelope = request_envelope(peer, ttl=301)
    before = counts()
    assert_refused(post(client, envelope), "rjct.message_ts.invalid", before)


def test_a_replay_is_refused_and_the_record_is_kept(client: Any, peer: Peer) -> None:
    envelope = request_envelope(peer)
    assert post(client, envelope).status_code == 200
    stored = ExchangeMessage.objects.get(direction=Direction.IN)
    before = counts()
    assert_refused(post(client, envelope), "rjct.message_id.duplicate", before, row=False)
    stored.refresh_from_db()
    assert stored.status == "answered"  # the verified exchange keeps its record
    assert stored.envelope == envelope


def test_the_same_id_with_other_content_is_refused(client: Any, peer: Peer) -> None:
    first = request_envelope(peer, {"n": 1})
    assert post(client, first).status_code == 200
    second = request_envelope(peer, {"n": 2}, message_id=first["header"]["message_id"])
    before = counts()
    assert_refused(post(client, second), "rjct.message_id.duplicate", before, row=False)


def test_the_senders_retry_is_answered_again_on_the_same_row(client: Any, peer: Peer) -> None:
    first = request_envelope(peer, {"n": 1})
    assert post(client, first).status_code == 200
    # Same id and content, signed again a few seconds later (new created/expires, new
    # message_ts): the sender's retry after a lost answer.
    retry = request_envelope(
        peer,
        {"n": 1},
        message_id=first["header"]["message_id"],
        now=timezone.now() + dt.timedelta(seconds=5),
    )
    assert retry["signature"] != first["signature"]
    response = post(client, retry)
    assert response.status_code == 200, response.content
    answer = json.loads(response.content)
    assert env.response_matches(answer, retry)
    row = ExchangeMessage.objects.get(direction=Direction.IN)
    assert row.envelope == retry
    assert row.response == answer
    assert LogEntry.objects.filter(event="request-received").count() == 2


def test_a_missing_or_unknown_purpose_is_refused(client: Any, peer: Peer) -> None:
    before = counts()
    envelope = request_envelope(peer, purpose="curiosity")
    assert_refused(post(client, envelope), "rjct.purpose.invalid", before)


def test_no_agreement_is_refused(client: Any, node: str) -> None:
    stranger = make_peer("MX-NOAGR")
    before = counts()
    assert_refused(post(client, request_envelope(stranger)), "rjct.agreement.missing", before)


def test_an_agreement_for_another_purpose_is_refused(client: Any, peer: Peer) -> None:
    before = counts()
    envelope = request_envelope(peer, purpose="totalisation")
    assert_refused(post(client, envelope), "rjct.agreement.missing", before)


def test_a_field_outside_the_agreement_is_refused_naming_it(client: Any, peer: Peer) -> None:
    before = counts()
    envelope = request_envelope(peer, {"fields": ["curp", "birth_date", "sex"]})
    answer = assert_refused(post(client, envelope), "rjct.field.not_agreed", before)
    assert "birth_date, sex" in answer["header"]["status_reason_message"]


def test_the_services_own_refusal(client: Any, peer: Peer) -> None:
    before = counts()
    envelope = request_envelope(peer, {"invalid": True})
    assert_refused(post(client, envelope), "rjct.search_criteria.invalid", before)


def test_a_handler_fault_rolls_back_and_answers_err_internal(client: Any, peer: Peer) -> None:
    before = counts()
    response = post(client, request_envelope(peer, {"crash": True}))
    assert_refused(response, "err.internal", before)
    assert not AuditEvent.objects.filter(action="echo.before_crash").exists()
    assert not LogEntry.objects.filter(event="request-received").exists()


def test_an_earlier_refusal_before_verification_does_not_reserve_the_id(
    client: Any, peer: Peer
) -> None:
    genuine = request_envelope(peer)
    forged = json.loads(json.dumps(genuine))
    forged["message"]["hello"] = "forged"
    assert post(client, forged).status_code == 401
    response = post(client, genuine)
    assert response.status_code == 200
    row = ExchangeMessage.objects.get(direction=Direction.IN)
    assert row.status == "answered"
    assert row.envelope == genuine


# --- relayed by the hub -------------------------------------------------------------------------


@pytest.fixture
def hub(peer: Peer) -> Peer:
    return make_peer(HUB, role=MemberRole.HUB)


def relayed(hub: Peer, member: Peer, *, purpose: str = PURPOSE, **origin_changes: Any) -> dict:
    origin = env.sign(
        env.build_request(
            action="periods-gather",
            sender_id=member.code,
            receiver_id=origin_changes.pop("receiver", hub.code),
            purpose=origin_changes.pop("origin_purpose", purpose),
            message={"query": "x"},
        ),
        member.key,
    )
    return request_envelope(
        hub, purpose=purpose, meta={"on_behalf_of": member.code, "origin": origin}
    )


def test_a_relayed_request_is_checked_against_the_members_agreement(
    client: Any, hub: Peer, peer: Peer
) -> None:
    response = post(client, relayed(hub, peer))
    assert response.status_code == 200, response.content
    answer = json.loads(response.content)
    assert answer["message"]["consumer"] == PEER
    row = ExchangeMessage.objects.get(direction=Direction.IN)
    assert row.sender == HUB
    assert row.on_behalf_of == PEER


def test_a_relay_for_a_member_without_agreement_is_refused(client: Any, hub: Peer) -> None:
    other = make_peer("MX-NOAGR")
    before = counts()
    assert_refused(post(client, relayed(hub, other)), "rjct.agreement.missing", before)


def test_only_the_hub_may_relay(client: Any, peer: Peer) -> None:
    other = make_peer("MX-OTHER")
    make_agreement("MX-OTHER")
    before = counts()
    envelope = relayed(other, peer)
    assert_refused(post(client, envelope), "rjct.envelope.invalid", before)


def test_a_relay_whose_origin_was_altered_is_refused(client: Any, hub: Peer, peer: Peer) -> None:
    envelope = relayed(hub, peer)
    envelope["header"]["meta"]["origin"]["message"]["query"] = "y"
    # Re-sign the hub's envelope over the altered origin: the hub's signature is fine, the
    # member's is not.
    envelope = env.sign({"header": envelope["header"], "message": envelope["message"]}, hub.key)
    before = counts()
    assert_refused(post(client, envelope), "rjct.signature.invalid", before)


def test_a_relay_with_another_purpose_than_the_origin_is_refused(
    client: Any, hub: Peer, peer: Peer
) -> None:
    before = counts()
    envelope = relayed(hub, peer, origin_purpose="totalisation")
    assert_refused(post(client, envelope), "rjct.envelope.invalid", before)
