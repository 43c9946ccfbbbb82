"""The trust list: publication on the hub, taking it on a member (anchors, rollback, wrong
key, malformed content), key rotation, the fetch, and the public endpoints. One database
plays both nodes in turn: the hub publishes, then the test clears what only the hub would
hold and switches the settings to a member."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import httpx
import pytest
from django.test import RequestFactory
from django.utils import timezone

from pilar.core.actor import Actor
from pilar.core.errors import PermissionDenied, ValidationFailed
from pilar.core.models import AuditEvent
from pilar.core.roles import Role
from pilar.exchange import envelope, node, services_trust, trustlist
from pilar.exchange.keys import SigningKey
from pilar.exchange.models import (
    Agreement,
    AgreementStatus,
    KeyStatus,
    Member,
    MemberKey,
    NodeKey,
    TrustListVersion,
)
from pilar.exchange.reasons import Refusal
from pilar.exchange.views_trust_endpoint import jwks, trust_list_document

pytestmark = pytest.mark.django_db

ADMIN = Actor.system("test", roles=frozenset({Role.ADMINISTRATOR.value}))
NOW = dt.datetime(2026, 5, 12, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def hub(settings: Any, tmp_path) -> Any:
    settings.PILAR_NODE_CODE = "MX-HUB"
    settings.PILAR_NODE_ROLE = "hub"
    settings.PILAR_HUB_CODE = "MX-HUB"
    settings.PILAR_HUB_URL = ""
    settings.PILAR_HUB_KEYS = []
    settings.PILAR_KEYS_DIR = tmp_path / "hub-keys"
    node.reset_signing_key_cache()
    node.node_keys_init()
    yield settings
    node.reset_signing_key_cache()


def register_imss(key: SigningKey | None = None) -> SigningKey:
    key = key or SigningKey.generate("MX-IMSS")
    services_trust.member_register(
        actor=ADMIN,
        code="MX-IMSS",
        name="Instituto Mexicano del Seguro Social",
        role="institute",
        endpoint="http://127.0.0.1:8101/",
        services="person-search,insurance-periods",
        vkeys=[key.vkey],
    )
    Agreement.objects.create(
        code="AG-0001",
        consumer="MX-IMSS",
        provider="*",
        service="insurance-periods",
        purposes=["totalisation"],
        fields=["period.from", "period.to"],
        valid_from=dt.date(2026, 1, 1),
        status=AgreementStatus.ACTIVE,
    )
    return key


def become_member(settings: Any, tmp_path, *, anchors: list[str]) -> None:
    """Forget what only the hub holds and act as the member MX-IMSS."""
    TrustListVersion.objects.all().delete()
    Member.objects.all().delete()
    Agreement.objects.all().delete()
    NodeKey.objects.all().delete()
    settings.PILAR_NODE_CODE = "MX-IMSS"
    settings.PILAR_NODE_ROLE = "institute"
    settings.PILAR_HUB_URL = "http://hub.test"
    settings.PILAR_HUB_KEYS = anchors
    settings.PILAR_KEYS_DIR = tmp_path / "member-keys"
    node.reset_signing_key_cache()


def test_publish_builds_signs_and_keeps_the_list(hub: Any) -> None:
    register_imss()
    first = services_trust.trust_list_publish(actor=ADMIN)
    second = services_trust.trust_list_publish(actor=ADMIN)
    assert (first.serial, second.serial) == (1, 2)
    assert second.key_id == node.signing_key().key_id
    assert second.sha256 == envelope.envelope_hash(second.document)
    trusted = trustlist.verify_trust_list(
        second.document, [node.signing_key().verify_key], current_serial=1
    )
    assert trusted.hub == "MX-HUB"
    assert {member.code for member in trusted.members} == {"MX-HUB", "MX-IMSS"}
    hub_member = next(member for member in trusted.members if member.code == "MX-HUB")
    assert hub_member.role == "hub"
    assert [key.key.key_id for key in hub_member.keys] == [node.signing_key().key_id]
    assert [agreement.code for agreement in trusted.agreements] == ["AG-0001"]
    header = second.document["header"]
    assert (header["action"], header["receiver_id"]) == ("trust-list", "*")
    assert AuditEvent.objects.filter(action="trust_list.publish").count() == 2


def test_publish_is_for_the_hub_and_its_staff(hub: Any) -> None:
    clerk = Actor.system("clerk", roles=frozenset({Role.REGISTRAR.value}))
    with pytest.raises(PermissionDenied):
        services_trust.trust_list_publish(actor=clerk)
    hub.PILAR_NODE_ROLE = "institute"
    with pytest.raises(services_trust.NotTheHub):
        services_trust.trust_list_publish(actor=ADMIN)
    assert not TrustListVersion.objects.exists()


def test_member_register_validates_everything_at_once(hub: Any) -> None:
    other = SigningKey.generate("MX-OTHER")
    with pytest.raises(ValidationFailed) as caught:
        services_trust.member_register(
            actor=ADMIN,
            code="mx imss",
            name="",
            role="bank",
            endpoint="ftp://x",
            services="person-search,teleport",
            vkeys=[other.vkey, "garbage"],
        )
    errors = caught.value.field_errors
    assert set(errors) == {"code", "name", "role", "endpoint", "services", "vkeys"}
    assert not Member.objects.exists()


def test_member_takes_the_list_with_the_anchor(hub: Any, tmp_path) -> None:
    register_imss()
    version = services_trust.trust_list_publish(actor=ADMIN)
    document = version.document
    anchor = node.signing_key().vkey
    become_member(hub, tmp_path, anchors=[anchor])
    taken = services_trust.trust_list_take(actor=ADMIN, document=document)
    assert taken.serial == 1
    assert set(Member.objects.values_list("code", flat=True)) == {"MX-HUB", "MX-IMSS"}
    assert Member.objects.get(code="MX-IMSS").endpoint == "http://127.0.0.1:8101"
    assert MemberKey.objects.filter(member__code="MX-IMSS").count() == 1
    agreement = Agreement.objects.get(code="AG-0001")
    assert agreement.imported
    assert agreement.status == AgreementStatus.ACTIVE
    assert AuditEvent.objects.filter(action="trust_list.take").count() == 1
    # The same list again is not an error and changes nothing.
    assert services_trust.trust_list_take(actor=ADMIN, document=document).pk == taken.pk
    assert AuditEvent.objects.filter(action="trust_list.take").count() == 1


def test_wrong_key_rollback_and_tampering_are_refused_and_change_nothing(
    hub: Any, tmp_path
) -> None:
    register_imss()
    first = services_trust.trust_list_publish(actor=ADMIN).document
    second = services_trust.trust_list_publish(actor=ADMIN).document
    anchor = node.signing_key().vkey
    impostor = SigningKey.generate("MX-HUB")
    forged = trustlist.sign_trust_list(
        copy.deepcopy(second["message"]) | {"serial": 9},
        impostor,
        9,
        timezone.now() + dt.timedelta(hours=1),
    )
    become_member(hub, tmp_path, anchors=[anchor])

    def refusal_of(document: Any) -> str:
        with pytest.raises(Refusal) as caught:
            services_trust.trust_list_take(actor=ADMIN, document=document)
        assert caught.value.code == "rjct.trust_list.invalid"
        return caught.value.message("en")

    assert "not a trusted hub key" in refusal_of(forged)
    assert not Member.objects.exists()
    services_trust.trust_list_take(actor=ADMIN, document=second)
    assert "not newer than the current 2 (rollback)" in refusal_of(first)
    tampered = copy.deepcopy(second)
    tampered["message"]["serial"] = 3
    assert "signature does not verify" in refusal_of(tampered)
    assert "not a signed envelope" in refusal_of({"hello": "world"})
    assert TrustListVersion.objects.get().serial == 2


def test_anchors_come_from_settings_or_the_current_list(hub: Any, tmp_path) -> None:
    register_imss()
    first = services_trust.trust_list_publish(actor=ADMIN).document
    # The hub rotates: the next list is signed with the old key (the members trust it) and
    # carries both; the one after is signed with the new key.
    old_key_id = node.signing_key().key_id
    node.node_key_rotate(actor=ADMIN)
    new_key_id = NodeKey.objects.get(status=KeyStatus.ACTIVE).key_id
    second = services_trust.trust_list_publish(actor=ADMIN)
    # Until every member has taken a list with the new key (the next update of the first list
    # that has it), the hub keeps signing with the old one.
    assert services_trust.trust_list_publish(actor=ADMIN).key_id == old_key_id
    TrustListVersion.objects.filter(serial__gte=2).delete()
    TrustListVersion.objects.filter(pk=second.pk).update(
        next_update=timezone.now() - dt.timedelta(seconds=1)
    )
    second.save()
    TrustListVersion.objects.filter(pk=second.pk).update(
        next_update=timezone.now() - dt.timedelta(seconds=1)
    )
    node.reset_signing_key_cache()
    third = services_trust.trust_list_publish(actor=ADMIN)
    assert second.key_id == old_key_id
    assert third.key_id == new_key_id
    assert third.serial == 3
    anchor = SigningKey.load(tmp_path / "hub-keys" / f"{old_key_id}.key", "MX-HUB").vkey
    become_member(hub, tmp_path, anchors=[])
    with pytest.raises(Refusal):
        services_trust.trust_list_take(actor=ADMIN, document=first)
    hub.PILAR_HUB_KEYS = [anchor]
    services_trust.trust_list_take(actor=ADMIN, document=first)
    # From here the member needs no setting: the hub keys of its current list vouch.
    hub.PILAR_HUB_KEYS = []
    with pytest.raises(Refusal):
        services_trust.trust_list_take(actor=ADMIN, document=third.document)
    services_trust.trust_list_take(actor=ADMIN, document=second.document)
    services_trust.trust_list_take(actor=ADMIN, document=third.document)
    current = services_trust.trust_list_current()
    assert current is not None
    assert current.serial == 3


def test_malformed_lists_are_refused_by_name() -> None:
    key = SigningKey.generate("MX-HUB")
    member_key = SigningKey.generate("MX-IMSS")
    now = timezone.now()

    def document(**changes: Any) -> dict[str, Any]:
        members = [
            {
                "code": "MX-HUB",
                "name": "Hub",
                "role": "hub",
                "endpoint": "http://hub",
                "services": ["trust"],
                "keys": [{"vkey": key.vkey, "valid_from": now}],
            },
            {
                "code": "MX-IMSS",
                "name": "IMSS",
                "role": "institute",
                "endpoint": "http://imss",
                "services": [],
                "keys": [{"vkey": member_key.vkey, "valid_from": now}],
            },
        ]
        message = trustlist.build_message(
            serial=1,
            issued_at=now,
            next_update=now + dt.timedelta(hours=1),
            hub="MX-HUB",
            members=members,
            agreements=[],
        )
        for path, value in changes.items():
            target: Any = message
            *parents, last = path.split("__")
            for part in parents:
                target = target[int(part)] if part.isdigit() else target[part]
            target[last] = value
        return trustlist.sign_trust_list(
            message, key, message["serial"], now + dt.timedelta(hours=1), now=now
        )

    trustlist.verify_trust_list(document(), [key.verify_key], None)
    cases = {
        "members__1__role": ("mayor", "unknown role mayor"),
        "members__1__endpoint": ("imss", "member MX-IMSS has no valid endpoint"),
        "members__1__keys": (
            [{"vkey": key.vkey, "valid_from": "2026-01-01T00:00:00Z"}],
            "a key of MX-HUB",
        ),
        "members__0__keys__0__valid_from": ("yesterday", "not an RFC 3339 time"),
        "agreements": ([{"code": "AG-1", "consumer": "X"}], "agreement AG-1 has no valid provider"),
        "serial": (0, "serial is not a positive"),
        "hub": ("MX-OTHER", "the key belongs to MX-HUB, the sender is MX-OTHER"),
    }
    for path, (value, expected) in cases.items():
        with pytest.raises(Refusal) as caught:
            trustlist.verify_trust_list(document(**{path: value}), [key.verify_key], None)
        assert expected in caught.value.message("en"), path
    expired = document()
    with pytest.raises(Refusal) as caught:
        trustlist.verify_trust_list(
            expired, [key.verify_key], None, now=now + dt.timedelta(hours=2)
        )
    assert "expired" in caught.value.message("en")


def test_rotation_a_retiring_key_verifies_until_its_valid_until(hub: Any, tmp_path) -> None:
    old = register_imss()
    new = SigningKey.generate("MX-IMSS")
    services_trust.member_update(actor=ADMIN, code="MX-IMSS", add_vkeys=[new.vkey])
    request = envelope.build_request(
        action="search",
        sender_id="MX-IMSS",
        receiver_id="MX-HUB",
        purpose="verification",
        message={},
    )
    by_old = envelope.sign(request, old)
    by_new = envelope.sign(request, new)
    envelope.verify(by_old, resolve_key=node.resolve_key)
    envelope.verify(by_new, resolve_key=node.resolve_key)
    services_trust.member_update(
        actor=ADMIN,
        code="MX-IMSS",
        end_keys=[old.key_id],
        keys_valid_until=timezone.now() - dt.timedelta(seconds=60),
    )
    with pytest.raises(Refusal) as caught:
        envelope.verify(by_old, resolve_key=node.resolve_key)
    assert caught.value.code == "rjct.key.unknown"
    envelope.verify(by_new, resolve_key=node.resolve_key)


def test_node_signs_with_retiring_key_until_peers_hold_the_new_one(hub: Any, tmp_path) -> None:
    register_imss()
    document = services_trust.trust_list_publish(actor=ADMIN).document
    anchor = node.signing_key().vkey
    become_member(hub, tmp_path, anchors=[anchor])
    first = node.node_keys_init()
    hub.PILAR_NODE_CODE = "MX-IMSS"
    # The member's registered key is the one the list has; replace it by this node's key.
    MemberKey.objects.all().delete()
    services_trust.trust_list_take(actor=ADMIN, document=document)
    MemberKey.objects.filter(member__code="MX-IMSS").update(
        key_id=first.key_id, public_key=first.public_key
    )
    rotated = node.node_key_rotate(actor=ADMIN, announce=False)
    assert NodeKey.objects.get(key_id=first.key_id).status == KeyStatus.RETIRING
    # The list does not name the new key yet: keep signing with the old one.
    assert node.signing_key().key_id == first.key_id
    MemberKey.objects.create(
        member=Member.objects.get(code="MX-IMSS"),
        key_id=rotated.key_id,
        public_key=rotated.public_key,
        valid_from=timezone.now(),
    )
    node.reset_signing_key_cache()
    # Named, but no stored list names it: the peers cannot hold it yet.
    assert node.signing_key().key_id == first.key_id
    # A list naming it, whose next update has passed: every peer holds it now.
    document = copy.deepcopy(document)
    document["message"]["members"][1]["keys"][0]["vkey"] = SigningKey.load(
        tmp_path / "member-keys" / f"{rotated.key_id}.key", "MX-IMSS"
    ).vkey
    TrustListVersion.objects.create(
        serial=2,
        issued_at=timezone.now() - dt.timedelta(days=2),
        next_update=timezone.now() - dt.timedelta(days=1),
        hub="MX-HUB",
        key_id="00000000",
        document=document,
        sha256="x",
    )
    node.reset_signing_key_cache()
    assert node.signing_key().key_id == rotated.key_id
    # Both keys verify this node's own envelopes.
    request = envelope.build_request(
        action="x", sender_id="MX-IMSS", receiver_id="MX-HUB", purpose="indexing", message={}
    )
    old_key = SigningKey.load(tmp_path / "member-keys" / f"{first.key_id}.key", "MX-IMSS")
    envelope.verify(envelope.sign(request, old_key), resolve_key=node.resolve_key)
    assert AuditEvent.objects.filter(action="exchange.key.rotate").count() == 1


def test_signing_key_needs_keys_init(settings: Any, tmp_path) -> None:
    settings.PILAR_KEYS_DIR = tmp_path / "none"
    node.reset_signing_key_cache()
    with pytest.raises(node.NoNodeKey) as caught:
        node.signing_key()
    assert "pilar exchange keys init" in str(caught.value.message)
    row = node.node_keys_init()
    assert node.node_keys_init().pk == row.pk
    assert node.signing_key().key_id == row.key_id
    (tmp_path / "none" / f"{row.key_id}.key").unlink()
    node.reset_signing_key_cache()
    with pytest.raises(node.KeyFileMissing):
        node.signing_key()


def test_fetch_takes_the_hubs_list_and_names_an_unreachable_hub(hub: Any, tmp_path) -> None:
    register_imss()
    document = services_trust.trust_list_publish(actor=ADMIN).document
    anchor = node.signing_key().vkey
    become_member(hub, tmp_path, anchors=[anchor])
    seen: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=document)

    client = httpx.Client(transport=httpx.MockTransport(serve))
    version = services_trust.trust_list_fetch(actor=ADMIN, client=client)
    assert version.serial == 1
    assert seen == ["http://hub.test/exchange/v1/trust-list"]

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(services_trust.HubUnreachable) as caught:
        services_trust.trust_list_fetch(
            actor=ADMIN, client=httpx.Client(transport=httpx.MockTransport(down))
        )
    assert "http://hub.test/exchange/v1/trust-list" in str(caught.value.message)
    missing = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(404)))
    with pytest.raises(services_trust.HubUnreachable, match="HTTP 404"):
        services_trust.trust_list_fetch(actor=ADMIN, client=missing)


def test_hub_does_not_take_a_list(hub: Any) -> None:
    version = services_trust.trust_list_publish(actor=ADMIN)
    with pytest.raises(services_trust.HubDoesNotTake):
        services_trust.trust_list_take(actor=ADMIN, document=version.document)


def test_key_announce_adds_the_key_and_publishes(hub: Any) -> None:
    old = register_imss()
    services_trust.trust_list_publish(actor=ADMIN)
    new = SigningKey.generate("MX-IMSS")
    stamp = envelope.rfc3339(timezone.now())
    proof = node.announce_proof(new, member="MX-IMSS", valid_from=stamp)
    services_trust.member_key_announce(
        actor=ADMIN, member_code="MX-IMSS", vkey=new.vkey, valid_from=stamp, proof=proof
    )
    assert set(
        MemberKey.objects.filter(member__code="MX-IMSS").values_list("key_id", flat=True)
    ) == {
        old.key_id,
        new.key_id,
    }
    with pytest.raises(Refusal) as caught:
        services_trust.member_key_announce(
            actor=ADMIN,
            member_code="MX-IMSS",
            vkey=SigningKey.generate("MX-IMSS").vkey,
            valid_from=stamp,
            proof=proof,
        )
    assert "proof of possession" in caught.value.message("en")


def test_endpoints_serve_the_list_and_the_jwks(hub: Any) -> None:
    factory = RequestFactory()
    response = trust_list_document(factory.get("/exchange/v1/trust-list"))
    assert response.status_code == 404
    assert json.loads(response.content)["errors"][0]["code"] == "trust_list.none"
    version = services_trust.trust_list_publish(actor=ADMIN)
    response = trust_list_document(factory.get("/exchange/v1/trust-list"))
    assert response.status_code == 200
    assert json.loads(response.content) == version.document
    keys = json.loads(jwks(factory.get("/.well-known/jwks.json")).content)["keys"]
    key = node.signing_key()
    assert keys == [
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": __import__("base64").urlsafe_b64encode(key.public).rstrip(b"=").decode(),
            "kid": f"MX-HUB|{key.key_id}|ed25519",
            "use": "sig",
            "alg": "EdDSA",
        }
    ]
