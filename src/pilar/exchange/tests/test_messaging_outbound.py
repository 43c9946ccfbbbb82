"""The consumer side: ``send`` commits before the network, answers are verified and bound to
our request, the applier runs once, retries keep the message id, back-off, giving up, and the
staff retry. The peer is a fake transport answering with the peer's key, or this node itself
through ``LocalTransport``."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.utils import timezone, translation

from pilar.core.actor import Actor
from pilar.core.errors import PermissionDenied, ValidationFailed
from pilar.core.models import AuditEvent
from pilar.exchange import envelope as env
from pilar.exchange import messaging
from pilar.exchange.models import Direction, ExchangeMessage, LogEntry, NodeKey
from pilar.exchange.node import node_key_rotate, signing_key
from pilar.exchange.tasks import deliver_due
from pilar.exchange.tests.messaging_support import (
    APPLIED,
    ECHO,
    NODE,
    PEER,
    PURPOSE,
    Peer,
    PeerTransport,
    make_agreement,
    make_peer,
    node,
    peer,
)
from pilar.exchange.transport import LocalTransport, PeerUnavailable, set_transport

__all__ = ["node", "peer"]

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests", roles=frozenset())
MANAGER = Actor.system("manager", roles=frozenset({"administrator"}))


def send(**changes: Any) -> ExchangeMessage:
    values: dict[str, Any] = {
        "actor": SYSTEM,
        "receiver": PEER,
        "action": ECHO,
        "purpose": PURPOSE,
        "message": {"ask": "curp"},
        "on_answer": "echo-store",
    }
    values.update(changes)
    return messaging.send(**values)


@pytest.fixture(autouse=True)
def _english() -> Any:
    # Stored errors are in the language active when they were written; these tests read them.
    with translation.override("en"):
        yield


def events(row: ExchangeMessage) -> list[str]:
    return list(row.log_entries.order_by("id").values_list("event", flat=True))


def test_an_answered_request_is_stored_and_applied_once(peer: Peer) -> None:
    transport = PeerTransport(peer)
    set_transport(transport)
    row = send()
    assert row.status == "answered"
    assert row.direction == Direction.OUT
    assert row.attempts == 1
    assert row.response is not None
    assert row.envelope is not None
    assert row.response["message"] == {"answer": 42}
    assert env.response_matches(row.response, row.envelope)
    assert events(row) == ["request-sent", "response-received"]
    assert [(row.pk, {"answer": 42})] == APPLIED
    # Delivering again is a no-op: the applier does not run twice.
    messaging.deliver(row.pk)
    assert len(APPLIED) == 1
    assert len(transport.requests) == 1


def test_a_refusal_is_stored_not_applied(peer: Peer) -> None:
    set_transport(PeerTransport(peer, "rjct"))
    row = send()
    assert row.status == "refused"
    assert row.reason_code == "rjct.agreement.missing"
    assert APPLIED == []
    assert events(row) == ["request-sent", "response-received"]


def test_the_request_is_committed_before_the_network_call(peer: Peer) -> None:
    seen: list[int] = []

    class Watching(PeerTransport):
        def post(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
            request = json.loads(body)
            row = ExchangeMessage.objects.get(message_id=request["header"]["message_id"])
            seen.append(row.log_entries.count())
            assert row.status == "queued"
            return super().post(url, body, timeout)

    set_transport(Watching(peer))
    send()
    assert seen == [1]  # the row and its request-sent leaf existed during the call


def test_an_unavailable_peer_keeps_the_message_and_the_retry_uses_the_same_id(
    peer: Peer,
) -> None:
    transport = PeerTransport(peer, "down")
    set_transport(transport)
    with pytest.raises(PeerUnavailable) as raised:
        send()
    assert PEER in str(raised.value.message)
    assert raised.value.code == "exchange.peer_unavailable"
    row = ExchangeMessage.objects.get(direction=Direction.OUT)
    assert str(row.message_id) in str(raised.value.message)
    assert row.status == "queued"
    assert row.attempts == 1
    assert row.next_attempt_at is not None
    assert row.next_attempt_at > timezone.now()
    assert "connection refused" in row.last_error

    transport.mode = "ok"
    row = messaging.deliver(row.pk)
    assert row.status == "answered"
    assert row.attempts == 2
    retried = transport.requests[1]
    assert retried["header"] == transport.requests[0]["header"]
    assert retried["message"] == transport.requests[0]["message"]
    assert row.envelope == retried
    assert [(row.pk, {"answer": 42})] == APPLIED
    assert events(row)[-1] == "response-received"


def test_a_retry_is_re_signed_with_a_fresh_lifetime(peer: Peer) -> None:
    transport = PeerTransport(peer, "down")
    set_transport(transport)
    with pytest.raises(PeerUnavailable):
        send()
    row = ExchangeMessage.objects.get(direction=Direction.OUT)
    assert row.envelope is not None
    # Pretend the first signature was made 4 minutes ago.
    old = env.sign(
        {"header": row.envelope["header"], "message": row.envelope["message"]},
        signing_key(),
        now=timezone.now() - dt.timedelta(minutes=4),
    )
    ExchangeMessage.objects.filter(pk=row.pk).update(envelope=old)
    transport.mode = "ok"
    messaging.deliver(row.pk)
    sent = env.parse_signature(transport.requests[-1]["signature"])
    assert sent.created >= int(timezone.now().timestamp()) - 5
    assert transport.requests[-1]["header"]["message_id"] == row.message_id


def test_an_answer_not_bound_to_our_request_is_not_accepted(peer: Peer) -> None:
    set_transport(PeerTransport(peer, "unbound"))
    with pytest.raises(PeerUnavailable):
        send()
    row = ExchangeMessage.objects.get(direction=Direction.OUT)
    assert row.status == "queued"
    assert row.response is None
    assert "not bound" in row.last_error
    assert APPLIED == []
    assert events(row) == ["request-sent"]


def test_an_answer_signed_by_someone_else_is_not_accepted(peer: Peer) -> None:
    impostor = make_peer("MX-IMPOSTOR")
    set_transport(PeerTransport(Peer(PEER, impostor.key, peer.member)))
    with pytest.raises(PeerUnavailable):
        send()
    row = ExchangeMessage.objects.get(direction=Direction.OUT)
    assert row.status == "queued"
    assert "does not verify" in row.last_error


def test_an_unsigned_error_page_is_not_an_answer(peer: Peer) -> None:
    set_transport(PeerTransport(peer, "proxy"))
    with pytest.raises(PeerUnavailable):
        send()
    row = ExchangeMessage.objects.get(direction=Direction.OUT)
    assert row.status == "queued"
    assert "502" in row.last_error


def test_back_off_doubles_and_the_message_fails_after_the_last_attempt(
    peer: Peer, settings: Any
) -> None:
    settings.PILAR_EXCHANGE_MAX_ATTEMPTS = 3
    set_transport(PeerTransport(peer, "down"))
    row = send(deliver_now=False)
    assert row.status == "queued"
    delays = []
    for _attempt in range(2):
        before = timezone.now()
        ExchangeMessage.objects.filter(pk=row.pk).update(next_attempt_at=before)
        assert deliver_due() == 1
        row.refresh_from_db()
        assert row.next_attempt_at is not None
        delays.append(round((row.next_attempt_at - before).total_seconds()))
    assert delays == [2, 4]
    ExchangeMessage.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    deliver_due()
    row.refresh_from_db()
    assert row.status == "failed"
    assert row.attempts == 3
    assert events(row)[-1] == "delivery-failed"
    # A failed message is not retried by the job.
    assert deliver_due() == 0


def test_messages_not_yet_due_wait(peer: Peer) -> None:
    set_transport(PeerTransport(peer, "down"))
    with pytest.raises(PeerUnavailable):
        send()
    assert deliver_due() == 0  # its next attempt is 2 s away


def test_staff_retry_a_failed_message(peer: Peer, settings: Any) -> None:
    settings.PILAR_EXCHANGE_MAX_ATTEMPTS = 1
    transport = PeerTransport(peer, "down")
    set_transport(transport)
    with pytest.raises(PeerUnavailable):
        send()
    row = ExchangeMessage.objects.get(direction=Direction.OUT)
    assert row.status == "failed"
    with pytest.raises(PermissionDenied):
        messaging.message_retry(actor=SYSTEM, message_id_pk=row.pk)
    retried = messaging.message_retry(actor=MANAGER, message_id_pk=row.pk)
    assert retried.status == "queued"
    assert AuditEvent.objects.filter(action="exchange.retry", entity_id=str(row.pk)).exists()
    transport.mode = "ok"
    assert deliver_due() == 1
    row.refresh_from_db()
    assert row.status == "answered"
    assert row.message_id == transport.requests[0]["header"]["message_id"]
    with pytest.raises(messaging.NotRetryable):
        messaging.message_retry(actor=MANAGER, message_pk=row.pk)


def test_send_refuses_an_unknown_receiver_and_purpose(peer: Peer) -> None:
    with pytest.raises(ValidationFailed):
        send(receiver="MX-NOBODY")
    with pytest.raises(ValidationFailed):
        send(purpose="curiosity")
    assert not ExchangeMessage.objects.exists()


def test_a_node_talks_to_itself_through_the_local_transport(node: str) -> None:
    make_peer(NODE)  # this node in its own trust list (its key: the NodeKey fallback)
    make_agreement(NODE)
    set_transport(LocalTransport())
    row = send(receiver=NODE)
    assert row.status == "answered", row.last_error
    assert row.response is not None
    assert row.response["message"]["echo"] == {"ask": "curp"}
    incoming = ExchangeMessage.objects.get(direction=Direction.IN)
    assert incoming.message_id == row.message_id
    assert sorted(LogEntry.objects.values_list("event", flat=True)) == sorted(
        ["request-sent", "request-received", "response-sent", "response-received"]
    )
    assert len(APPLIED) == 1


def test_the_local_transport_can_play_a_peer_that_is_down(node: str) -> None:
    make_peer(NODE)
    set_transport(LocalTransport(unavailable=True))
    with pytest.raises(PeerUnavailable):
        send(receiver=NODE)
    assert not ExchangeMessage.objects.filter(direction=Direction.IN).exists()


def test_a_retry_after_a_rotation_is_signed_with_the_key_that_signed_it(
    peer: Peer, settings: Any
) -> None:
    transport = PeerTransport(peer, "down")
    set_transport(transport)
    old_key = signing_key()
    with pytest.raises(PeerUnavailable):
        send()
    node_key_rotate(actor=MANAGER, announce=False)
    assert NodeKey.objects.get(key_id=old_key.key_id).status == "retiring"
    row = ExchangeMessage.objects.get(direction=Direction.OUT)
    messaging.deliver(row.pk)
    kid = env.parse_signature(transport.requests[-1]["signature"]).key_id
    assert kid == old_key.key_id


def test_a_message_being_sent_by_another_process_is_left_alone(peer: Peer) -> None:
    """Two processes (two workers' duties, a command) must never send one message at once:
    each would re-sign it, and the answer to one would not match the request the row keeps."""
    transport = PeerTransport(peer, "ok")
    set_transport(transport)
    row = send(deliver_now=False)
    # Another process has taken the attempt (its lease runs for the HTTP timeout and a margin).
    ExchangeMessage.objects.filter(pk=row.pk).update(
        attempt_until=timezone.now() + dt.timedelta(seconds=40)
    )
    assert messaging.deliver(row.pk).status == "queued"
    assert deliver_due() == 1  # due, tried, and left to the other process
    assert transport.requests == []
    # An attempt that died with its process is made again once its lease has passed.
    ExchangeMessage.objects.filter(pk=row.pk).update(
        attempt_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert deliver_due() == 1
    row.refresh_from_db()
    assert row.status == "answered"
    assert row.attempt_until is None
    assert len(transport.requests) == 1


def test_send_holds_the_first_attempt_against_the_scheduler(peer: Peer) -> None:
    """While ``send`` makes its first attempt, the row is already due for the scheduler's
    retries; its lease keeps the scheduler from sending it a second time meanwhile."""
    seen: list[int] = []

    class Racing(PeerTransport):
        def post(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
            # The scheduler's retry runs while this attempt is on the wire.
            seen.append(deliver_due())
            return super().post(url, body, timeout)

    transport = Racing(peer, "ok")
    set_transport(transport)
    row = send()
    assert row.status == "answered"
    assert len(transport.requests) == 1
    assert seen == [1]  # the scheduler saw the row due, and left it to send


def test_a_late_answer_to_a_superseded_attempt_is_not_stored(peer: Peer) -> None:
    """An attempt whose lease ran out was re-signed and sent again by another process; the
    answer to the old attempt arriving late must not be taken for the answer to the new one."""
    set_transport(PeerTransport(peer, "ok"))
    row = send(deliver_now=False)
    old_request = row.envelope
    assert isinstance(old_request, dict)
    # Another process re-signed the message since (a new attempt, same message id).
    resigned = env.sign(
        {"header": old_request["header"], "message": old_request["message"]},
        signing_key(),
        ttl=120,
    )
    ExchangeMessage.objects.filter(pk=row.pk).update(envelope=resigned)
    late = json.loads(PeerTransport(peer, "ok").post("", json.dumps(old_request).encode(), 5)[1])
    stored = messaging._store_answer(row, late, 1.0)
    assert stored.status == "queued"
    assert stored.response is None
