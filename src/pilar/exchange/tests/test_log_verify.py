"""``pilar audit verify`` on a log built from real exchanges: clean, then tampered."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone, translation

from pilar.exchange import log
from pilar.exchange.keys import SigningKey
from pilar.exchange.models import ExchangeMessage, LogCheckpoint, LogEntry, LogHash
from pilar.exchange.tests.log_support import (
    add_member,
    received_exchange,
    sent_exchange,
    setup_node,
)
from pilar.exchange.translog import note, tlog
from pilar.exchange.verify import log_verify

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    # The messages asserted below are the English ones (the project's default is Spanish).
    with translation.override("en"):
        yield


@pytest.fixture
def node_key(settings: Any, tmp_path: Path) -> SigningKey:
    return setup_node(settings, tmp_path)


@pytest.fixture
def peer_key() -> SigningKey:
    return add_member("MX-PEER")


@pytest.fixture
def clean_log(node_key: SigningKey, peer_key: SigningKey) -> list[ExchangeMessage]:
    rows = [sent_exchange(node_key, peer_key), received_exchange(node_key, peer_key)]
    log.log_integrate()
    rows.append(sent_exchange(node_key, peer_key))
    log.log_integrate()
    return rows


def run_command(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("audit", "verify", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_a_clean_log_passes(clean_log: list[ExchangeMessage]) -> None:
    report = log_verify()
    assert report.ok, list(report.lines())
    assert report.counts["leaves"] == 6
    assert report.counts["checkpoints"] == 2
    status, output = run_command()
    assert status == 0
    assert output.strip().splitlines()[-1].startswith("OK: 6 leaves")


def test_tampered_leaf_data_is_named_by_its_index(clean_log: list[ExchangeMessage]) -> None:
    entry = LogEntry.objects.get(index=3)
    LogEntry.objects.filter(pk=entry.pk).update(data=entry.data.replace("MX-PEER", "MX-PEEX"))
    status, output = run_command()
    assert status == 1
    assert "FAIL leaf 3: data does not match its leaf hash" in output
    # The tree recomputed from the data no longer has the checkpoints' roots.
    assert "FAIL checkpoint 4: its root hash differs" in output
    assert "FAIL checkpoint 6: its root hash differs" in output
    status, json_output = run_command("--json")
    assert status == 1
    assert '"index": 3' in json_output


def test_tampered_leaf_hash_and_stored_hash_are_found(clean_log: list[ExchangeMessage]) -> None:
    # Someone rewrites a leaf consistently (data and its hash) but not the stored tree.
    entry = LogEntry.objects.get(index=1)
    new_data = entry.data.replace("MX-PEER", "MX-PEEX")
    from pilar.exchange.translog import merkle

    LogEntry.objects.filter(pk=entry.pk).update(
        data=new_data, leaf_hash=merkle.leaf_hash(new_data.encode()).hex()
    )
    report = log_verify()
    subjects = [finding.subject for finding in report.failures]
    assert "leaf 1" in subjects  # the stored leaf hash in LogHash differs
    assert "checkpoint 4" in subjects
    # A stored subtree hash rewritten alone is named too.
    LogHash.objects.filter(index=tlog.stored_hash_index(1, 0)).update(hash=b"\x00" * 32)
    assert any("level 1" in finding.detail for finding in log_verify().failures)


def test_tampered_archived_envelope_is_named_by_its_message(
    clean_log: list[ExchangeMessage],
) -> None:
    row = clean_log[0]
    envelope = dict(row.envelope or {})
    envelope["message"] = {"search_request": [{"reference_id": "999"}]}
    ExchangeMessage.objects.filter(pk=row.pk).update(envelope=envelope)
    status, output = run_command()
    assert status == 1
    short = row.message_id[:8]
    assert (
        f"FAIL message {short}… (request-sent to MX-PEER): the archived envelope does not "
        "match the digest of leaf 0"
    ) in output
    assert (
        f"FAIL message {short}… (request-sent to MX-PEER): the archived envelope's signature"
        in output
    )


def test_a_request_without_its_response_is_named_or_pending(
    node_key: SigningKey, peer_key: SigningKey
) -> None:
    young = sent_exchange(node_key, peer_key, answer=False)
    old = sent_exchange(node_key, peer_key, answer=False)
    ExchangeMessage.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - dt.timedelta(days=3)
    )
    log.log_integrate()
    report = log_verify()
    lines = list(report.lines())
    assert (
        f"FAIL message {old.message_id[:8]}… (request-sent to MX-PEER): no response-received "
        "or delivery-failed event"
    ) in lines
    assert [finding.message_id for finding in report.pending] == [young.message_id]
    assert len(report.failures) == 1


def test_a_received_request_without_response_sent_is_named(
    node_key: SigningKey, peer_key: SigningKey
) -> None:
    row = received_exchange(node_key, peer_key)
    LogEntry.objects.filter(message=row, event="response-sent").delete()
    log.log_integrate()
    lines = list(log_verify().lines())
    assert (
        f"FAIL message {row.message_id[:8]}… (request-received from MX-PEER): no response-sent "
        "event"
    ) in lines


def test_a_forged_checkpoint_and_cosignature_are_refused(
    clean_log: list[ExchangeMessage], node_key: SigningKey
) -> None:
    checkpoint = LogCheckpoint.objects.get(size=6)
    body, _ = note.split_note(checkpoint.note)
    impostor = SigningKey.generate(node_key.name)
    LogCheckpoint.objects.filter(pk=checkpoint.pk).update(note=note.sign_note(body, [impostor]))
    lines = list(log_verify().lines())
    assert any(
        line.startswith("FAIL checkpoint 6: the signed note does not verify") for line in lines
    )


def test_a_cosignature_is_checked_against_the_auditor_key(
    clean_log: list[ExchangeMessage],
) -> None:
    auditor = add_member("MX-AUDITOR", role="auditor")
    checkpoint = LogCheckpoint.objects.get(size=6)
    body, _ = note.split_note(checkpoint.note)
    log.log_cosignature_add(
        line_or_note=note.cosign(body, auditor, 1_800_000_000), checkpoint_size=6
    )
    assert log_verify().ok
    # A cosignature line replaced in the database by one of another key.
    other = SigningKey.generate("MX-AUDITOR")
    checkpoint.cosignatures.update(line=note.cosign(body, other, 1_800_000_000))
    lines = list(log_verify().lines())
    assert any(line.startswith("FAIL cosignature of MX-AUDITOR on checkpoint 6") for line in lines)
