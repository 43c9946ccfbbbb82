"""The exchange monitor through Django's test client: who may see it, its filters and status
counts, a message's detail with its envelopes (the read logged on the person), the reason code
in the reader's language, its log leaves proved against the newest checkpoint, and the trust
list, log and auditor pages."""

from __future__ import annotations

import datetime
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pilar.core.models import AccessLogEntry, User
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.exchange import log
from pilar.exchange.models import (
    Direction,
    ExchangeMessage,
    LogEntry,
    Member,
    MemberKey,
    MessageStatus,
    WitnessAlert,
)
from pilar.registry.tests.factories import PersonFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _node(settings: Any, tmp_path: Path) -> None:
    settings.PILAR_NODE_CODE = "MX-IMSS"
    settings.PILAR_NODE_ROLE = "institute"
    settings.PILAR_KEYS_DIR = tmp_path / "keys"


def signed_in(user: User, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


def text_of(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def envelope(action: str, sender: str, receiver: str, **message: Any) -> dict[str, Any]:
    return {
        "signature": 'Signature: namespace="pilar", kidId="MX-IMSS|1a2b3c4d|ed25519"',
        "header": {
            "version": "1.0.0",
            "message_id": str(uuid.uuid4()),
            "message_ts": "2026-03-02T10:00:00Z",
            "action": action,
            "sender_id": sender,
            "receiver_id": receiver,
            "total_count": 1,
            "purpose": "totalisation",
        },
        "message": message,
    }


def message_row(
    *,
    direction: str = Direction.OUT,
    status: str = MessageStatus.ANSWERED,
    peer: str = "MX-ISSSTECALI",
    action: str = "periods",
    purpose: str = "totalisation",
    person: Any = None,
    created_at: datetime.datetime | None = None,
    **extra: Any,
) -> ExchangeMessage:
    sender, receiver = ("MX-IMSS", peer) if direction == Direction.OUT else (peer, "MX-IMSS")
    request = envelope(
        action,
        sender,
        receiver,
        search_request=[{"query": {"type": "CURP", "value": "HELM800517MJCRPR09"}}],
    )
    return ExchangeMessage.objects.create(
        direction=direction,
        message_id=request["header"]["message_id"],
        sender=sender,
        receiver=receiver,
        action=action,
        purpose=purpose,
        status=status,
        envelope=request,
        person=person,
        created_at=created_at or timezone.now(),
        **extra,
    )


# --- who may see it ----------------------------------------------------------------------------


def test_a_registrar_cannot_open_the_monitor_or_a_message() -> None:
    row = message_row()
    client = signed_in(staff(Role.REGISTRAR, username="reg"))

    assert client.get(reverse("exchange:monitor")).status_code == 403
    assert client.get(reverse("exchange:message_detail", args=[row.pk])).status_code == 403
    assert client.get(reverse("exchange:trust")).status_code == 403
    assert client.get(reverse("exchange:log")).status_code == 403
    assert not AccessLogEntry.objects.exists()


def test_the_nav_links_the_monitor_for_holders_of_exchange_view_only() -> None:
    auditor_page = text_of(signed_in(staff(Role.AUDITOR, username="aud")).get(reverse("core:home")))
    registrar_page = text_of(
        signed_in(staff(Role.REGISTRAR, username="reg")).get(reverse("core:home"))
    )

    assert f'href="{reverse("exchange:monitor")}"' in auditor_page
    assert f'href="{reverse("exchange:monitor")}"' not in registrar_page


# --- the list ----------------------------------------------------------------------------------


def test_the_monitor_lists_filters_and_counts_messages() -> None:
    answered = message_row()
    refused = message_row(
        direction=Direction.IN,
        status=MessageStatus.REFUSED,
        peer="MX-HUB",
        action="search",
        reason_code="rjct.agreement.missing",
    )
    failed = message_row(status=MessageStatus.FAILED, peer="MX-HUB", action="periods-gather")
    old = message_row(created_at=timezone.now() - datetime.timedelta(days=40))
    client = signed_in(staff(Role.AUDITOR, username="aud"))

    everything = client.get(reverse("exchange:monitor"))
    assert everything.status_code == 200
    page = text_of(everything)
    for row in (answered, refused, failed, old):
        assert f"/exchange/messages/{row.pk}/" in page
    assert page.index(f"/messages/{failed.pk}/") < page.index(f"/messages/{old.pk}/")
    counts = everything.context["counts"]
    assert counts == {"queued": 0, "answered": 2, "refused": 1, "failed": 1}

    incoming = text_of(client.get(reverse("exchange:monitor"), {"direction": "in"}))
    assert f"/messages/{refused.pk}/" in incoming
    assert f"/messages/{answered.pk}/" not in incoming

    by_peer = text_of(client.get(reverse("exchange:monitor"), {"peer": "MX-HUB"}))
    assert f"/messages/{refused.pk}/" in by_peer
    assert f"/messages/{failed.pk}/" in by_peer
    assert f"/messages/{answered.pk}/" not in by_peer

    by_status = text_of(client.get(reverse("exchange:monitor"), {"status": "failed"}))
    assert f"/messages/{failed.pk}/" in by_status
    assert f"/messages/{refused.pk}/" not in by_status

    since = (timezone.now() - datetime.timedelta(days=2)).date().isoformat()
    recent = text_of(client.get(reverse("exchange:monitor"), {"since": since}))
    assert f"/messages/{answered.pk}/" in recent
    assert f"/messages/{old.pk}/" not in recent


def test_the_monitor_refuses_nonsense_filters() -> None:
    client = signed_in(staff(Role.AUDITOR, username="aud"))

    backwards = client.get(
        reverse("exchange:monitor"), {"since": "2026-03-10", "until": "2026-03-01"}
    )
    unknown = client.get(reverse("exchange:monitor"), {"status": "lost"})

    assert backwards.status_code == 422
    assert "The end date is before the start date." in text_of(backwards)
    assert unknown.status_code == 422


def test_the_monitor_pages_through_many_messages() -> None:
    for _ in range(55):
        message_row()
    client = signed_in(staff(Role.AUDITOR, username="aud"))

    first = client.get(reverse("exchange:monitor"))
    second = client.get(reverse("exchange:monitor"), {"page": 2})

    assert len(first.context["page"].items) == 50
    assert len(second.context["page"].items) == 5
    assert 'rel="next"' in text_of(first)


# --- one message -------------------------------------------------------------------------------


def test_a_message_shows_its_envelopes_and_logs_the_read_on_the_person() -> None:
    person = PersonFactory.create()
    row = message_row(person=person, attempts=3, duration_ms=41.5)
    auditor = staff(Role.AUDITOR, username="aud")

    response = signed_in(auditor).get(reverse("exchange:message_detail", args=[row.pk]))

    assert response.status_code == 200
    page = text_of(response)
    assert row.message_id in page
    assert "HELM800517MJCRPR09" in page
    assert "41.5 ms" in page
    entry = AccessLogEntry.objects.get()
    assert entry.person_id == person.pk
    assert entry.actor == auditor
    assert entry.action == "exchange.message"


def test_an_unknown_message_is_not_found() -> None:
    client = signed_in(staff(Role.AUDITOR, username="aud"))
    assert client.get(reverse("exchange:message_detail", args=[999_999])).status_code == 404


def test_a_refusal_reads_in_the_readers_language_beside_the_recorded_message() -> None:
    row = message_row(
        status=MessageStatus.REFUSED,
        reason_code="rjct.agreement.missing",
        reason_message="No agreement covers MX-IMSS for insurance-periods (totalisation).",
    )
    auditor = staff(Role.AUDITOR, username="aud")

    spanish = text_of(
        signed_in(auditor, "es").get(reverse("exchange:message_detail", args=[row.pk]))
    )

    assert "rjct.agreement.missing" in spanish
    assert "No agreement covers MX-IMSS for insurance-periods (totalisation)." in spanish
    assert "Tal como se registró:" in spanish


def test_a_messages_log_leaves_are_proved_against_the_newest_checkpoint() -> None:
    from pilar.exchange import node

    node.node_keys_init()
    row = message_row()
    other = message_row()
    log.log_append(event="request-sent", envelope=row.envelope, row=row)
    log.log_append(event="request-sent", envelope=other.envelope, row=other)
    log.log_append(event="response-received", envelope=None, row=row, status="succ")
    checkpoint = log.log_integrate()
    assert checkpoint is not None
    assert checkpoint.size == 3
    client = signed_in(staff(Role.AUDITOR, username="aud"))

    response = client.get(reverse("exchange:message_detail", args=[row.pk]))

    leaves = response.context["view"].leaves
    assert [leaf.entry.index for leaf in leaves] == [0, 2]
    assert all(leaf.verified for leaf in leaves)
    assert "verified against checkpoint 3" in text_of(response)

    # A leaf whose stored hash was altered no longer proves against the signed root.
    LogEntry.objects.filter(message=row, index=0).update(leaf_hash="00" * 32)
    tampered = client.get(reverse("exchange:message_detail", args=[row.pk]))
    first = tampered.context["view"].leaves[0]
    assert first.verified is False
    assert "does not verify against checkpoint 3" in text_of(tampered)


def test_a_leaf_not_yet_sequenced_says_so() -> None:
    row = message_row(status=MessageStatus.QUEUED)
    log.log_append(event="request-sent", envelope=row.envelope, row=row)

    response = signed_in(staff(Role.AUDITOR, username="aud")).get(
        reverse("exchange:message_detail", args=[row.pk])
    )

    assert "Not yet in a checkpoint." in text_of(response)


def test_retry_is_offered_to_managers_on_failed_outgoing_messages_only() -> None:
    failed = message_row(status=MessageStatus.FAILED, last_error="connection refused")
    answered = message_row()
    incoming = message_row(direction=Direction.IN, status=MessageStatus.REFUSED)
    admin = signed_in(staff(Role.ADMINISTRATOR, username="admin"))
    auditor = signed_in(staff(Role.AUDITOR, username="aud"))
    retry = reverse("exchange:message_retry", args=[failed.pk])

    assert f'action="{retry}"' in text_of(
        admin.get(reverse("exchange:message_detail", args=[failed.pk]))
    )
    assert "connection refused" in text_of(
        admin.get(reverse("exchange:message_detail", args=[failed.pk]))
    )
    for other in (answered, incoming):
        page = text_of(admin.get(reverse("exchange:message_detail", args=[other.pk])))
        assert "/retry/" not in page
    assert f'action="{retry}"' not in text_of(
        auditor.get(reverse("exchange:message_detail", args=[failed.pk]))
    )
    assert auditor.post(retry).status_code == 403
    failed.refresh_from_db()
    assert failed.status == MessageStatus.FAILED
    assert failed.attempts == 0


# --- trust list, log, auditor ------------------------------------------------------------------


def test_the_trust_page_shows_members_keys_and_this_nodes_keys() -> None:
    from pilar.exchange import node

    key = node.node_keys_init()
    member = Member.objects.create(
        code="MX-ISSSTECALI",
        name="ISSSTECALI",
        role="institute",
        endpoint="http://127.0.0.1:8102",
        services=["insurance-periods"],
    )
    MemberKey.objects.create(
        member=member, key_id="1a2b3c4d", public_key="A" * 43 + "=", valid_from=timezone.now()
    )
    admin = signed_in(staff(Role.ADMINISTRATOR, username="admin"))

    page = text_of(admin.get(reverse("exchange:trust")))

    assert "MX-ISSSTECALI" in page
    assert "http://127.0.0.1:8102" in page
    assert "Insurance periods" in page
    assert "1a2b3c4d" in page
    assert key.key_id in page
    assert reverse("exchange:key_rotate") in page
    # Publishing is the hub's: an institute offers "fetch now" only.
    assert reverse("exchange:trust_publish") not in page
    assert reverse("exchange:trust_fetch") in page
    assert admin.post(reverse("exchange:trust_publish")).status_code == 403


def test_rotating_the_key_asks_for_confirmation_then_rotates(settings: Any) -> None:
    from pilar.exchange import node
    from pilar.exchange.models import KeyStatus, NodeKey

    first = node.node_keys_init()
    admin = signed_in(staff(Role.ADMINISTRATOR, username="admin"))

    confirm = admin.get(reverse("exchange:key_rotate"))
    assert confirm.status_code == 200
    assert NodeKey.objects.count() == 1

    # Without a hub to announce the key to, the rotation still happens locally.
    settings.PILAR_HUB_URL = ""
    response = admin.post(reverse("exchange:key_rotate"))
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.status == KeyStatus.RETIRING
    assert NodeKey.objects.filter(status=KeyStatus.ACTIVE).exclude(pk=first.pk).exists()


def test_the_log_page_lists_checkpoints_and_verifies_on_demand() -> None:
    from pilar.exchange import node

    node.node_keys_init()
    row = message_row()
    log.log_append(event="request-sent", envelope=row.envelope, row=row)
    log.log_integrate()
    client = signed_in(staff(Role.AUDITOR, username="aud"))

    page = text_of(client.get(reverse("exchange:log")))
    assert "pilar.exchange/MX-IMSS" in page
    assert 'id="log-size">1<' in page

    verified = client.post(reverse("exchange:log_verify"))
    assert verified.status_code == 200
    assert 'id="verify-report"' in text_of(verified)


def test_the_auditor_page_lists_alerts() -> None:
    WitnessAlert.objects.create(member="MX-IMSS", kind="rollback", detail="size 9 after 12")
    page = text_of(signed_in(staff(Role.AUDITOR, username="aud")).get(reverse("exchange:auditor")))

    assert "Log shrank" in page
    assert "size 9 after 12" in page
    # Not the auditor node: no "run a round" button, and the action is refused.
    assert reverse("exchange:auditor_round") not in page


def test_a_manager_puts_a_failed_message_back_in_the_queue() -> None:
    failed = message_row(status=MessageStatus.FAILED, attempts=12, last_error="timeout")
    admin = signed_in(staff(Role.ADMINISTRATOR, username="admin"))

    response = admin.post(reverse("exchange:message_retry", args=[failed.pk]), follow=True)

    assert response.status_code == 200
    assert "The message is queued again" in text_of(response)
    failed.refresh_from_db()
    assert failed.status == MessageStatus.QUEUED
    assert failed.attempts == 0
    # An answered message cannot be retried: refused with a message, nothing changes.
    answered = message_row()
    refused = admin.post(reverse("exchange:message_retry", args=[answered.pk]), follow=True)
    assert "Only a failed outgoing message can be retried." in text_of(refused)
    answered.refresh_from_db()
    assert answered.status == MessageStatus.ANSWERED
