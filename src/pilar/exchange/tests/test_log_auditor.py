"""The auditor against a member's log served through Django's test client: it cosigns a
consistent log and raises an alert (and cosigns nothing) on a rewritten or rolled-back one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from pilar.exchange import log
from pilar.exchange.auditor import FetchError, audit_round
from pilar.exchange.keys import SigningKey
from pilar.exchange.models import (
    LogCheckpoint,
    LogCosignature,
    LogEntry,
    LogHash,
    WitnessAlert,
    WitnessedLog,
)
from pilar.exchange.tests.log_support import add_member, sent_exchange, setup_node
from pilar.exchange.translog import note

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    # The messages asserted below are the English ones (the project's default is Spanish).
    with translation.override("en"):
        yield


ENDPOINT = "http://mx-logtest.test"


@pytest.fixture
def node_key(settings: Any, tmp_path: Path) -> SigningKey:
    key = setup_node(settings, tmp_path)
    # This node is the audited member; the auditor is another member with its own key.
    add_member(key.name, key=key)
    from pilar.exchange.models import Member

    Member.objects.filter(code=key.name).update(endpoint=ENDPOINT)
    return key


@pytest.fixture
def peer_key() -> SigningKey:
    return add_member("MX-PEER", role="auditor")  # a non-audited member (no log to check)


@pytest.fixture
def auditor_key() -> SigningKey:
    return add_member("MX-AUDITOR", role="auditor")


def client_fetch(method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
    assert url.startswith(ENDPOINT), url
    path = url[len(ENDPOINT) :]
    client = Client()
    # The member's LocaleMiddleware switches this thread's language; the auditor's is kept.
    with translation.override(translation.get_language()):
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(path, data=body, content_type="application/json")
    return response.status_code, response.content


def grow(node_key: SigningKey, peer_key: SigningKey, count: int) -> LogCheckpoint:
    for _ in range(count):
        sent_exchange(node_key, peer_key)
    checkpoint = log.log_integrate()
    assert checkpoint is not None
    return checkpoint


def rewrite_history(node_key: SigningKey, peer_key: SigningKey, count: int) -> None:
    """Throw the log away and build another one (what a node hiding an exchange would do)."""
    LogCosignature.objects.all().delete()
    LogCheckpoint.objects.all().delete()
    LogHash.objects.all().delete()
    LogEntry.objects.all().delete()
    grow(node_key, peer_key, count)


def test_a_consistent_log_is_cosigned_round_after_round(
    node_key: SigningKey, peer_key: SigningKey, auditor_key: SigningKey
) -> None:
    grow(node_key, peer_key, 2)
    [result] = audit_round(fetch=client_fetch, key=auditor_key)
    assert (result.member, result.outcome, result.size) == (node_key.name, "cosigned", 4)
    stored = LogCosignature.objects.get()
    assert (stored.witness, stored.checkpoint.size) == ("MX-AUDITOR", 4)
    # The member now serves its checkpoint with the cosignature, which verifies.
    served = Client().get("/exchange/v1/log/checkpoint").content.decode()
    body, _signatures = note.split_note(served)
    cosignature_line = served.strip().splitlines()[-1]
    note.verify_cosignature(body, cosignature_line, auditor_key.verify_key)

    # Nothing new: checked, not cosigned again.
    [again] = audit_round(fetch=client_fetch, key=auditor_key)
    assert again.outcome == "unchanged"
    assert LogCosignature.objects.count() == 1

    # The log grows: the consistency proof from 4 is checked and the new size cosigned.
    grow(node_key, peer_key, 3)
    [grown] = audit_round(fetch=client_fetch, key=auditor_key)
    assert (grown.outcome, grown.size) == ("cosigned", 10)
    witnessed = WitnessedLog.objects.get(member=node_key.name)
    assert witnessed.size == 10
    assert witnessed.root_hash == LogCheckpoint.objects.get(size=10).root_hash
    assert not WitnessAlert.objects.exists()


def test_a_rewritten_history_raises_an_alert_and_is_not_cosigned(
    node_key: SigningKey, peer_key: SigningKey, auditor_key: SigningKey
) -> None:
    grow(node_key, peer_key, 2)
    audit_round(fetch=client_fetch, key=auditor_key)
    rewrite_history(node_key, peer_key, 4)
    [result] = audit_round(fetch=client_fetch, key=auditor_key)
    assert (result.outcome, result.kind) == ("alert", "inconsistent")
    alert = WitnessAlert.objects.get()
    assert alert.kind == "inconsistent"
    assert "not an extension of the size 4" in alert.detail
    assert not LogCosignature.objects.exists()
    # The auditor keeps its last good view; a second round repeats no alert within the hour.
    assert WitnessedLog.objects.get(member=node_key.name).size == 4
    audit_round(fetch=client_fetch, key=auditor_key)
    assert WitnessAlert.objects.count() == 1


def test_a_log_that_shrank_is_a_rollback(
    node_key: SigningKey, peer_key: SigningKey, auditor_key: SigningKey
) -> None:
    grow(node_key, peer_key, 3)
    audit_round(fetch=client_fetch, key=auditor_key)
    rewrite_history(node_key, peer_key, 1)
    [result] = audit_round(fetch=client_fetch, key=auditor_key)
    assert (result.outcome, result.kind) == ("alert", "rollback")
    assert not LogCosignature.objects.exists()


def test_a_checkpoint_signed_by_another_key_is_refused(
    node_key: SigningKey, peer_key: SigningKey, auditor_key: SigningKey
) -> None:
    checkpoint = grow(node_key, peer_key, 1)
    body, _signatures = note.split_note(checkpoint.note)
    impostor = SigningKey.generate(node_key.name)
    LogCheckpoint.objects.filter(pk=checkpoint.pk).update(note=note.sign_note(body, [impostor]))
    [result] = audit_round(fetch=client_fetch, key=auditor_key)
    assert (result.outcome, result.kind) == ("alert", "bad_signature")
    assert not LogCosignature.objects.exists()


def test_an_unreachable_member_is_an_alert(node_key: SigningKey, auditor_key: SigningKey) -> None:
    def down(method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
        raise FetchError("connection refused")

    [result] = audit_round(fetch=down, key=auditor_key)
    assert (result.outcome, result.kind) == ("alert", "unreachable")
    assert "connection refused" in WitnessAlert.objects.get().detail
