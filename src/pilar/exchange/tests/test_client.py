"""The institute's side of the hub, with a fake hub that answers as the real one would (signed
with a hub key the test holds, relaying to a member whose key the test holds too): enrolment in
batches stores the federation ids; ``store-periods`` verifies each member's signed answer
itself, refuses a tampered one or one not bound to our request, keeps partial results,
supersedes older documents; a hub that is down leaves the request queued and the documents
arrive with the retry."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from pilar.benefits.tests.careers import employ, insured, job
from pilar.core.errors import PermissionDenied, ValidationFailed
from pilar.core.jobs import enqueue, run_pending
from pilar.core.models import AccessLogEntry, AuditEvent
from pilar.core.roles import Role
from pilar.core.tests.factories import actor
from pilar.exchange import client, messaging, tasks_client
from pilar.exchange import envelope as env
from pilar.exchange.keys import SigningKey
from pilar.exchange.models import (
    Direction,
    ExchangeMessage,
    FederationLink,
    ForeignPeriods,
    MemberRole,
    MessageStatus,
)
from pilar.exchange.node import node_keys_init, reset_signing_key_cache
from pilar.exchange.tests.hub_support import (
    HUB,
    B,
    C,
    Peer,
    make_member,
    member_answer,
    periods_document,
)
from pilar.exchange.transport import PeerUnavailable, set_transport
from pilar.registry.models import Person, RecordStatus
from pilar.registry.tests.factories import PersonFactory, person_with_curp

NODE = "MX-AAA"


@dataclass
class FakeHub:
    """Answers as the hub: enrolment with random-looking ids, resolve, and a gather relayed to
    member B (signed with B's key) while C is down. ``tamper`` alters B's document after B
    signed it; ``foreign_origin`` makes the hub relay someone else's request; ``down`` makes
    the hub itself unreachable."""

    hub: Peer
    member: Peer
    weeks: int = 300
    tamper: bool = False
    foreign_origin: bool = False
    down: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)

    def _answer(self, request: dict[str, Any], message: dict[str, Any]) -> bytes:
        return json.dumps(member_answer(self.hub.key, request, message)).encode()

    def post(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        if self.down:
            raise PeerUnavailable(f"{url}: connection refused")
        request = json.loads(body)
        self.requests.append(request)
        action = request["header"]["action"]
        message = request["message"]
        if action == "index-enrol":
            enrolled = [
                {"member_ref": item["member_ref"], "fed_id": fed_id(item["member_ref"])}
                for item in message["items"]
            ]
            return 200, self._answer(request, {"enrolled": enrolled})
        if action == "index-resolve":
            return 200, self._answer(
                request,
                {
                    "fed_id": "FED-" + "A" * 26,
                    "members": [
                        {"code": NODE, "name": "Nosotros", "holds_periods": True},
                        {"code": B, "name": "Instituto B", "holds_periods": True},
                    ],
                },
            )
        assert action == "periods-gather"
        origin = request
        if self.foreign_origin:
            origin = copy.deepcopy(request)
            origin["header"]["message_id"] = "00000000-0000-4000-8000-000000000000"
        relayed = env.sign(
            env.build_request(
                action="periods",
                sender_id=HUB,
                receiver_id=B,
                purpose=request["header"]["purpose"],
                message={"query_type": "idtype-value", "query": {"type": "FED", "value": "X"}},
                meta={"on_behalf_of": NODE, "origin": origin},
            ),
            self.hub.key,
        )
        answer = member_answer(
            self.member.key,
            relayed,
            {"document": periods_document(B, "FED-" + "B" * 26, self.weeks)},
        )
        if self.tamper:
            answer["message"]["document"]["totals"]["weeks"] = self.weeks * 10
        results = [
            {
                "member": B,
                "status": "succ",
                "reason_code": "",
                "request": relayed,
                "response": answer,
            },
            {
                "member": C,
                "status": "unavailable",
                "reason_code": "err.peer.unavailable",
                "reason_message": "MX-CCC did not answer",
                "request": None,
                "response": None,
            },
        ]
        return 200, self._answer(request, {"fed_id": "FED-" + "B" * 26, "results": results})


def fed_id(member_ref: str) -> str:
    digits = "".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ"[int(d)] for d in member_ref)
    return "FED-" + (digits + "Q" * 26)[:26]


@pytest.fixture
def fake_hub(settings: Any, tmp_path: Any, db: None) -> Iterator[FakeHub]:
    settings.PILAR_NODE_CODE = NODE
    settings.PILAR_NODE_ROLE = "institute"
    settings.PILAR_HUB_CODE = HUB
    settings.PILAR_KEYS_DIR = tmp_path / "keys"
    reset_signing_key_cache()
    messaging.trust_cache_clear()
    node_keys_init()
    fake = FakeHub(
        hub=make_member(HUB, role=MemberRole.HUB, key=SigningKey.generate(HUB)),
        member=make_member(B),
    )
    make_member(C)
    set_transport(fake)
    yield fake
    set_transport(None)
    reset_signing_key_cache()
    messaging.trust_cache_clear()


def administrator() -> Any:
    return actor(Role.ADMINISTRATOR)


def officer() -> Any:
    return actor(Role.BENEFITS_OFFICER)


def worker() -> Person:
    return insured(job("1990-01-01", "1999-12-31", ("1990-01-01", "300.00")))


# --- enrolment ----------------------------------------------------------------------------------


def test_enrolment_sends_batches_and_stores_the_links(fake_hub: FakeHub) -> None:
    employed = [worker() for _ in range(3)]
    idle, _ = person_with_curp()
    golden, _ = person_with_curp()
    merged, _ = person_with_curp(status=RecordStatus.MERGED, merged_into=golden)
    no_curp = PersonFactory.create()

    assert client.persons_enrol(actor=administrator(), batch=2) == 5

    enrols = [r for r in fake_hub.requests if r["header"]["action"] == "index-enrol"]
    assert [len(r["message"]["items"]) for r in enrols] == [2, 2, 1]
    assert all(r["header"]["purpose"] == "indexing" for r in enrols)
    links = dict(FederationLink.objects.values_list("person_id", "holds_periods"))
    assert links == {
        **{p.pk: True for p in employed},
        idle.pk: False,
        golden.pk: False,
    }
    assert merged.pk not in links
    assert no_curp.pk not in links
    assert FederationLink.objects.get(person=idle).fed_id == fed_id(str(idle.pk))
    assert AuditEvent.objects.filter(action="federation_link.store").count() == 3

    # Nothing changed: nothing sent. A new employment changes holds_periods: sent again.
    before = len(fake_hub.requests)
    assert client.persons_enrol(actor=administrator()) == 0
    assert len(fake_hub.requests) == before
    employ(idle, job("2001-01-01", "2002-12-31", ("2001-01-01", "200.00")))
    assert client.persons_enrol(actor=administrator()) == 1
    assert FederationLink.objects.get(person=idle).holds_periods is True


def test_enrolment_needs_the_manage_permission(fake_hub: FakeHub) -> None:
    worker()
    with pytest.raises(PermissionDenied):
        client.persons_enrol(actor=officer())
    assert not ExchangeMessage.objects.exists()


# --- which institutions -------------------------------------------------------------------------


def test_resolve_lists_the_institutions_and_logs_the_access(fake_hub: FakeHub) -> None:
    person = worker()
    clerk = officer()
    resolution = client.person_institutions(
        actor=clerk, person_id=person.pk, purpose="verification"
    )
    # The hub lists this node too; the others are what the clerk is told.
    assert [m.code for m in resolution.members] == [B]
    assert resolution.fed_id == "FED-" + "A" * 26
    [sent] = fake_hub.requests
    assert sent["message"]["query"]["type"] == "CURP"  # not enrolled yet
    access = AccessLogEntry.objects.get(person_id=person.pk)
    assert access.purpose == "verification"
    row = ExchangeMessage.objects.get(message_id=resolution.message_id)
    assert row.person_id == person.pk


def test_a_purpose_is_required_and_must_be_known(fake_hub: FakeHub) -> None:
    person = worker()
    for purpose in ("", "curiosity"):
        with pytest.raises(ValidationFailed) as refused:
            client.person_periods_fetch(actor=officer(), person_id=person.pk, purpose=purpose)
        assert "purpose" in refused.value.field_errors
    assert not ExchangeMessage.objects.exists()


# --- periods ------------------------------------------------------------------------------------


def test_periods_are_verified_stored_and_partial_results_kept(fake_hub: FakeHub) -> None:
    person = worker()
    FederationLink.objects.create(person=person, fed_id="FED-" + "B" * 26, holds_periods=True)
    outcome = client.person_periods_fetch(
        actor=officer(), person_id=person.pk, purpose="totalisation"
    )
    assert outcome.answered == [B]
    assert outcome.not_answered == [C]
    status = {r.member: (r.status, r.reason_code) for r in outcome.results}
    assert status == {B: ("stored", ""), C: ("unavailable", "err.peer.unavailable")}
    stored = ForeignPeriods.objects.get(person=person)
    assert stored.member == B
    assert stored.document["totals"]["weeks"] == 300
    assert stored.signed_response["header"]["sender_id"] == B
    assert stored.purpose == "totalisation"
    assert stored.message.message_id == outcome.message_id
    sent = fake_hub.requests[-1]
    assert sent["message"]["query"] == {"type": "FED", "value": "FED-" + "B" * 26}
    assert AuditEvent.objects.filter(action="foreign_periods.store", person_id=person.pk).exists()
    assert AccessLogEntry.objects.filter(person_id=person.pk, purpose="totalisation").exists()

    # A second fetch supersedes the first document of the same member.
    fake_hub.weeks = 320
    client.person_periods_fetch(actor=officer(), person_id=person.pk, purpose="totalisation")
    stored.refresh_from_db()
    assert stored.superseded_at is not None
    current = client.foreign_periods_list(actor=officer(), person_id=person.pk)
    assert [(d.member, d.document["totals"]["weeks"]) for d in current] == [(B, 320)]
    everything = client.foreign_periods_list(
        actor=officer(), person_id=person.pk, include_superseded=True
    )
    assert len(everything) == 2


def test_a_tampered_member_answer_is_refused(fake_hub: FakeHub) -> None:
    person = worker()
    fake_hub.tamper = True
    outcome = client.person_periods_fetch(
        actor=officer(), person_id=person.pk, purpose="totalisation"
    )
    assert not ForeignPeriods.objects.exists()
    result = {r.member: r for r in outcome.results}[B]
    assert (result.status, result.reason_code) == ("invalid", "rjct.signature.invalid")
    refused = AuditEvent.objects.get(action="foreign_periods.refused")
    assert refused.changes["reason_code"][1] == "rjct.signature.invalid"
    # The hub's own answer was fine: the message is answered, the evidence kept.
    row = ExchangeMessage.objects.get(message_id=outcome.message_id)
    assert row.status == MessageStatus.ANSWERED


def test_an_answer_to_another_request_is_refused(fake_hub: FakeHub) -> None:
    person = worker()
    fake_hub.foreign_origin = True
    outcome = client.person_periods_fetch(
        actor=officer(), person_id=person.pk, purpose="totalisation"
    )
    assert not ForeignPeriods.objects.exists()
    assert {r.member: r.status for r in outcome.results}[B] == "invalid"


def test_the_hub_down_keeps_the_request_and_the_retry_stores_the_documents(
    fake_hub: FakeHub,
) -> None:
    person = worker()
    fake_hub.down = True
    with pytest.raises(PeerUnavailable) as raised:
        client.person_periods_fetch(actor=officer(), person_id=person.pk, purpose="totalisation")
    row = ExchangeMessage.objects.get(direction=Direction.OUT, action="periods-gather")
    assert row.status == MessageStatus.QUEUED
    assert row.message_id in str(raised.value.message)
    assert HUB in str(raised.value.message)
    assert not ForeignPeriods.objects.exists()

    fake_hub.down = False
    assert row.next_attempt_at is not None  # backing off until the next attempt
    delivered = messaging.deliver(row.pk)
    assert delivered.status == MessageStatus.ANSWERED
    assert fake_hub.requests[-1]["header"]["message_id"] == row.message_id
    assert client.gather_outcome(delivered).answered == [B]
    assert ForeignPeriods.objects.get(person=person).message_id == row.pk


def test_the_enrolment_job_enrols(fake_hub: FakeHub) -> None:
    person = worker()

    enqueue(tasks_client.PERSONS_ENROL_JOB, batch=10)
    run_pending()
    assert FederationLink.objects.filter(person=person).exists()
