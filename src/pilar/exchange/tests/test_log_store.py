"""The transparency log in the database: append, integrate, proofs, failure and concurrency."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from django.db import connection

from pilar.exchange import log
from pilar.exchange.keys import SigningKey
from pilar.exchange.models import LogCheckpoint, LogEntry, LogHash
from pilar.exchange.tests.log_support import (
    add_member,
    received_exchange,
    sent_exchange,
    setup_node,
)
from pilar.exchange.translog import merkle, note, tlog

pytestmark = pytest.mark.django_db


@pytest.fixture
def node_key(settings: Any, tmp_path: Path) -> SigningKey:
    return setup_node(settings, tmp_path)


@pytest.fixture
def peer_key() -> SigningKey:
    return add_member("MX-PEER")


def test_append_queues_a_leaf_without_personal_data(
    node_key: SigningKey, peer_key: SigningKey
) -> None:
    row = sent_exchange(node_key, peer_key, answer=False)
    entry = LogEntry.objects.get()
    assert entry.index is None
    assert entry.message == row
    leaf = json.loads(entry.data)
    # Canonical JSON, so anyone can recompute the hash from the served data.
    assert entry.data == rfc8785.dumps(leaf).decode()
    assert entry.leaf_hash == merkle.leaf_hash(entry.data.encode()).hex()
    assert leaf["event"] == "request-sent"
    assert leaf["message_id"] == leaf["request_id"] == row.message_id
    assert (leaf["sender"], leaf["receiver"], leaf["action"]) == ("MX-LOGTEST", "MX-PEER", "search")
    assert leaf["kid"] == node_key.kid
    # The salted digest binds the leaf to the archived envelope, and only with the salt.
    salt = bytes.fromhex(entry.salt)
    assert len(salt) == 32
    expected = hashlib.sha256(salt + rfc8785.dumps(row.envelope)).hexdigest()
    assert leaf["digest"] == f"sha256:{expected}"
    assert "search_request" not in entry.data
    assert "reference_id" not in entry.data


def test_integrate_sequences_stores_hashes_and_signs_a_checkpoint(
    node_key: SigningKey, peer_key: SigningKey
) -> None:
    for _ in range(5):
        sent_exchange(node_key, peer_key)
    checkpoint = log.log_integrate()
    assert checkpoint is not None
    assert checkpoint.size == 10
    entries = list(LogEntry.objects.order_by("pk"))
    assert [entry.index for entry in entries] == list(range(10))
    hashes = [bytes.fromhex(entry.leaf_hash) for entry in entries]
    assert checkpoint.root_hash == merkle.root(hashes).hex()
    assert LogHash.objects.count() == tlog.stored_hash_count(10)
    opened = note.open_note(checkpoint.note, [node_key.verify_key])
    parsed = note.parse_checkpoint(opened.text)
    assert (parsed.origin, parsed.size, parsed.root) == (
        "pilar.exchange/MX-LOGTEST",
        10,
        merkle.root(hashes),
    )
    # Nothing queued: nothing to do, no new checkpoint.
    assert log.log_integrate() is None
    assert LogCheckpoint.objects.count() == 1


def test_proofs_from_the_database_verify_across_checkpoints(
    node_key: SigningKey, peer_key: SigningKey
) -> None:
    sizes = []
    for round_ in range(4):
        for _ in range(round_ + 2):
            received_exchange(node_key, peer_key)
        checkpoint = log.log_integrate()
        assert checkpoint is not None
        sizes.append(checkpoint.size)
    hashes = [
        bytes.fromhex(h)
        for h in LogEntry.objects.order_by("index").values_list("leaf_hash", flat=True)
    ]
    for size in sizes:
        root = bytes.fromhex(LogCheckpoint.objects.get(size=size).root_hash)
        for index in range(size):
            proof = log.log_inclusion_proof(index, size)
            assert proof.leaf_hash == hashes[index]
            assert proof.root_hash == root
            merkle.verify_inclusion(index, size, hashes[index], proof.proof, root)
    for first in sizes:
        for second in sizes:
            if first <= second:
                consistency = log.log_consistency_proof(first, second)
                merkle.verify_consistency(
                    first,
                    second,
                    consistency.first_root,
                    consistency.second_root,
                    consistency.proof,
                )
    leaves = log.log_leaves(0, sizes[-1])
    assert [entry.index for entry in leaves] == list(range(sizes[-1]))


def test_out_of_range_proof_requests_are_refused_precisely(
    node_key: SigningKey, peer_key: SigningKey
) -> None:
    sent_exchange(node_key, peer_key)
    log.log_integrate()
    from pilar.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as caught:
        log.log_inclusion_proof(2, 2)
    assert "index" in caught.value.field_errors
    with pytest.raises(ValidationFailed):
        log.log_inclusion_proof(0, 3)
    with pytest.raises(ValidationFailed):
        log.log_consistency_proof(3, 2)
    with pytest.raises(ValidationFailed):
        log.log_leaves(0, 1001)


def test_a_failure_inside_integrate_leaves_the_log_as_it_was(
    node_key: SigningKey, peer_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent_exchange(node_key, peer_key)
    first = log.log_integrate()
    assert first is not None
    sent_exchange(node_key, peer_key)

    def broken(size: int, root_hash: bytes) -> str:
        raise RuntimeError("disk full while signing")

    monkeypatch.setattr(log, "_sign_checkpoint", broken)
    with pytest.raises(RuntimeError):
        log.log_integrate()
    # Hashes and indexes were written before the failure, and rolled back with it.
    assert LogEntry.objects.filter(index__isnull=True).count() == 2
    assert LogHash.objects.count() == tlog.stored_hash_count(2)
    assert list(LogCheckpoint.objects.values_list("size", flat=True)) == [2]

    monkeypatch.undo()
    second = log.log_integrate()
    assert second is not None
    assert second.size == 4
    hashes = [
        bytes.fromhex(h)
        for h in LogEntry.objects.order_by("index").values_list("leaf_hash", flat=True)
    ]
    assert second.root_hash == merkle.root(hashes).hex()
    consistency = log.log_consistency_proof(2, 4)
    merkle.verify_consistency(
        2, 4, bytes.fromhex(first.root_hash), bytes.fromhex(second.root_hash), consistency.proof
    )


def test_integration_reads_a_constant_number_of_queries(
    node_key: SigningKey, peer_key: SigningKey, django_assert_max_num_queries: Any
) -> None:
    for _ in range(3):
        sent_exchange(node_key, peer_key)
    log.log_integrate()
    for _ in range(150):
        sent_exchange(node_key, peer_key, answer=False)
    # Lock, queued, size, right edge, bulk update (1 per 500), bulk insert (1 per 1000),
    # checkpoint, and the node key — never one query per leaf.
    with django_assert_max_num_queries(14):
        checkpoint = log.log_integrate()
    assert checkpoint is not None
    assert checkpoint.size == 156


@pytest.mark.django_db(transaction=True)
def test_concurrent_integrations_give_every_leaf_one_index(settings: Any, tmp_path: Path) -> None:
    if connection.vendor == "sqlite":
        pytest.skip(
            "the in-memory SQLite test database is shared-cache, whose table locks do not "
            "wait; the file database the nodes use does (IMMEDIATE transactions)"
        )
    node_key = setup_node(settings, tmp_path)
    peer_key = add_member("MX-PEER")
    errors: list[BaseException] = []
    made: list[int] = []

    def integrate_repeatedly() -> None:
        try:
            for _ in range(5):
                checkpoint = log.log_integrate()
                if checkpoint is not None:
                    made.append(checkpoint.size)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    for _ in range(40):
        sent_exchange(node_key, peer_key, answer=False)
    threads = [threading.Thread(target=integrate_repeatedly) for _ in range(4)]

    def append_some() -> None:
        try:
            for _ in range(10):
                sent_exchange(node_key, peer_key)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    appenders = [threading.Thread(target=append_some) for _ in range(2)]
    for thread in threads + appenders:
        thread.start()
    for thread in threads + appenders:
        thread.join()
    assert not errors
    log.log_integrate_all()
    entries = list(LogEntry.objects.order_by("index"))
    assert [entry.index for entry in entries] == list(range(80))
    assert len(made) == len(set(made))
    hashes = [bytes.fromhex(entry.leaf_hash) for entry in entries]
    for checkpoint in LogCheckpoint.objects.all():
        assert checkpoint.root_hash == merkle.root(hashes[: checkpoint.size]).hex()
    assert LogHash.objects.count() == tlog.stored_hash_count(80)
