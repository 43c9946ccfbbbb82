"""The hub's federated person index: enrolment is idempotent, federation ids are random (two hubs
give the same CURP different ids), no CURP is stored in clear anywhere in the index, the index
secret is a 0600 file, resolving never reveals a member's own reference, and a node that is
not the hub does not offer the index."""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from pilar.core.models import AuditEvent
from pilar.exchange import hub as hub_module
from pilar.exchange.models import (
    ExchangeMessage,
    FederatedPerson,
    IndexEntry,
    IndexKey,
    MessageStatus,
)
from pilar.exchange.tests.hub_support import (
    A,
    B,
    Peer,
    by_curp,
    curp,
    deliver_to_this_node,
    hub_fixture,  # noqa: F401 - the fixture
    signed_request,
)

FED = re.compile(r"^FED-[A-Z2-7]{26}$")


def enrol(peer: Peer, items: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    return deliver_to_this_node(
        signed_request(peer, "index-enrol", {"items": items}, purpose="indexing")
    )


def item(number: int, ref: str, holds: bool = True) -> dict[str, Any]:
    return {"member_ref": ref, "curp": curp(number), "holds_periods": holds}


def resolve(peer: Peer, query: dict[str, Any]) -> dict[str, Any]:
    status, response = deliver_to_this_node(
        signed_request(peer, "index-resolve", query, purpose="indexing")
    )
    assert status == 200, response["header"]["status_reason_message"]
    return response["message"]


def test_enrolment_gives_random_ids_and_is_idempotent(hub: dict[str, Peer]) -> None:
    batch = [item(1, "101"), item(2, "102", holds=False), item(3, "103")]
    status, response = enrol(hub[A], batch)
    assert status == 200, response["header"]["status_reason_message"]
    enrolled = response["message"]["enrolled"]
    assert [e["member_ref"] for e in enrolled] == ["101", "102", "103"]
    ids = [e["fed_id"] for e in enrolled]
    assert all(FED.match(fed_id) for fed_id in ids)
    assert len(set(ids)) == 3
    counts = (FederatedPerson.objects.count(), IndexKey.objects.count(), IndexEntry.objects.count())
    assert counts == (3, 3, 3)

    # The same batch again (a new message): same ids, nothing new.
    status, again = enrol(hub[A], batch)
    assert status == 200
    assert again["message"]["enrolled"] == enrolled
    assert (
        FederatedPerson.objects.count(),
        IndexKey.objects.count(),
        IndexEntry.objects.count(),
    ) == counts

    # Another member holding the same person gets the same federation id, its own entry.
    status, other = enrol(hub[B], [item(1, "B-77")])
    assert other["message"]["enrolled"] == [{"member_ref": "B-77", "fed_id": ids[0]}]
    assert FederatedPerson.objects.count() == 3
    assert IndexEntry.objects.filter(person__fed_id=ids[0]).count() == 2
    # holds_periods is updated by a later enrolment.
    enrol(hub[A], [item(2, "102", holds=True)])
    assert IndexEntry.objects.get(member=A, member_ref="102").holds_periods is True
    # Audited with counts only, no CURP.
    events = AuditEvent.objects.filter(action="index.enrol")
    assert events.count() == 4
    assert all(curp(1) not in str(event.changes) + event.note for event in events)


def test_a_corrected_curp_moves_the_members_reference(hub: dict[str, Peer]) -> None:
    _, first = enrol(hub[A], [item(1, "101")])
    _, second = enrol(hub[A], [item(4, "101")])
    old, new = first["message"]["enrolled"][0]["fed_id"], second["message"]["enrolled"][0]["fed_id"]
    assert old != new
    assert IndexEntry.objects.get(member=A, member_ref="101").person.fed_id == new


def test_two_hubs_give_the_same_curp_different_ids(
    hub: dict[str, Peer], settings: Any, tmp_path: Path
) -> None:
    _, first = enrol(hub[A], [item(5, "1")])
    first_id = first["message"]["enrolled"][0]["fed_id"]
    first_digest = IndexKey.objects.get().digest
    # A second hub: its own database (the index emptied) and its own index secret.
    IndexEntry.objects.all().delete()
    IndexKey.objects.all().delete()
    FederatedPerson.objects.all().delete()
    other = tmp_path / "other-hub-keys"
    other.mkdir()
    for key_file in Path(settings.PILAR_KEYS_DIR).glob("*.key"):
        shutil.copy2(key_file, other / key_file.name)  # the node's signing key, not the secret
    settings.PILAR_KEYS_DIR = other
    _, second = enrol(hub[A], [item(5, "1")])
    second_id = second["message"]["enrolled"][0]["fed_id"]
    assert FED.match(second_id)
    assert second_id != first_id
    assert IndexKey.objects.get().digest != first_digest


def test_no_curp_is_stored_in_clear_in_the_hub(hub: dict[str, Peer], settings: Any) -> None:
    values = [curp(n) for n in range(20)]
    enrol(
        hub[A],
        [{"member_ref": str(n), "curp": v, "holds_periods": True} for n, v in enumerate(values)],
    )
    enrol(
        hub[B],
        [
            {"member_ref": f"b{n}", "curp": v, "holds_periods": False}
            for n, v in enumerate(values[:5])
        ],
    )
    # Every text column of the index tables, read back from the database.
    seen: list[str] = []
    for model in (FederatedPerson, IndexKey, IndexEntry):
        names = [
            f.column
            for f in model._meta.concrete_fields
            if f.get_internal_type() in ("CharField", "TextField")
        ]
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {', '.join(names)} FROM {model._meta.db_table}")  # noqa: S608 - column names from the model
            seen.extend(str(value) for row in cursor.fetchall() for value in row)
    assert seen
    text = "\n".join(seen).upper()
    for value in values:
        assert value not in text
        # Not even the part derived from the birth date and the name.
        assert value[:10] not in text
    # The keyed hash is an HMAC with the secret file, not a plain hash of the CURP.
    assert hashlib.sha256(values[0].encode()).hexdigest() not in text.lower()
    secret = Path(settings.PILAR_KEYS_DIR) / "index.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_bytes()) == 32


def test_resolve_lists_the_members_and_never_their_references(hub: dict[str, Peer]) -> None:
    _, enrolled = enrol(hub[A], [item(6, "secret-ref-a", holds=False)])
    fed_id = enrolled["message"]["enrolled"][0]["fed_id"]
    enrol(hub[B], [item(6, "secret-ref-b", holds=True)])

    by_id = resolve(
        hub[B], {"query_type": "idtype-value", "query": {"type": "FED", "value": fed_id}}
    )
    assert by_id == {
        "fed_id": fed_id,
        "members": [
            {"code": A, "name": f"Instituto {A}", "holds_periods": False},
            {"code": B, "name": f"Instituto {B}", "holds_periods": True},
        ],
    }
    assert resolve(hub[A], by_curp(curp(6))) == by_id
    answered = ExchangeMessage.objects.filter(action="index-resolve", status=MessageStatus.ANSWERED)
    assert answered.count() == 2
    assert all("secret-ref" not in str(row.response) for row in answered)

    # Unknown: success with nothing, not a refusal.
    assert resolve(hub[A], by_curp(curp(7))) == {"fed_id": None, "members": []}


@pytest.mark.parametrize(
    ("items", "where"),
    [
        ([], "message.items"),
        ([{"member_ref": "1", "curp": "NOTACURP", "holds_periods": True}], "items[0].curp"),
        ([item(1, "1"), {"member_ref": "1", "curp": curp(2)}], "items[1].member_ref"),
        ([item(1, "1"), {"member_ref": "2", "curp": curp(2), "holds_periods": "yes"}], "items[1]"),
        ([item(n, str(n)) for n in range(1001)], "1000"),
    ],
)
def test_a_bad_batch_is_refused_whole_naming_the_item(
    hub: dict[str, Peer], items: list[dict[str, Any]], where: str
) -> None:
    status, response = enrol(hub[A], items)
    assert status == 422
    assert response["header"]["status_reason_code"] == "rjct.search_criteria.invalid"
    assert where in response["header"]["status_reason_message"]
    assert (FederatedPerson.objects.count(), IndexEntry.objects.count()) == (0, 0)


def test_only_a_hub_offers_the_index(hub: dict[str, Peer], settings: Any) -> None:
    settings.PILAR_NODE_ROLE = "institute"
    status, response = enrol(hub[A], [item(1, "1")])
    assert status == 404
    assert response["header"]["status_reason_code"] == "rjct.action.not_supported"
    assert FederatedPerson.objects.count() == 0


def test_federation_ids_are_random_not_derived() -> None:
    ids = {hub_module.new_fed_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(FED.match(value) for value in ids)
