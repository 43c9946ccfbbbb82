"""Signed envelopes: the signature format, every refusal of ``verify``, RFC 8785 canonical
JSON, responses bound to their request (pure: no database)."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import re
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from pilar.exchange import envelope as env
from pilar.exchange.keys import SigningKey, VerifyKey
from pilar.exchange.reasons import REASONS, Refusal

KEY = SigningKey.generate("MX-IMSS")
NOW = dt.datetime(2026, 5, 12, 10, 0, tzinfo=dt.UTC)


def resolver(*keys: SigningKey):
    table = {(key.name, key.key_id): key.verify_key for key in keys}

    def resolve(sender: str, key_id: str, created: dt.datetime) -> VerifyKey | None:
        return table.get((sender, key_id))

    return resolve


def signed(message: dict[str, Any] | None = None, *, ttl: int = 300, now=NOW) -> dict[str, Any]:
    request = env.build_request(
        action="search",
        sender_id="MX-IMSS",
        receiver_id="MX-ISSSTECALI",
        purpose="verification",
        message=message if message is not None else {"search_request": [{"a": 1}, {"b": 2}]},
        now=now,
    )
    return env.sign(request, KEY, ttl=ttl, now=now)


def refused(document: Any, code: str, *, now=NOW, **options: Any) -> Refusal:
    with pytest.raises(Refusal) as caught:
        env.verify(document, resolve_key=options.pop("resolve", resolver(KEY)), now=now, **options)
    assert caught.value.code == code, caught.value.message("en")
    return caught.value


def test_request_header_has_the_contract_fields() -> None:
    request = env.build_request(
        action="search",
        sender_id="MX-IMSS",
        receiver_id="MX-HUB",
        purpose="verification",
        message={"search_request": [{}, {}, {}]},
        now=NOW,
    )
    header = request["header"]
    assert header["version"] == "1.0.0"
    assert re.fullmatch(r"[0-9a-f-]{36}", header["message_id"])
    assert header["message_ts"] == "2026-05-12T10:00:00.000Z"
    assert (header["action"], header["sender_id"], header["receiver_id"]) == (
        "search",
        "MX-IMSS",
        "MX-HUB",
    )
    assert header["total_count"] == 3
    assert header["purpose"] == "verification"
    assert "meta" not in header
    relayed = env.build_request(
        action="periods",
        sender_id="MX-HUB",
        receiver_id="MX-IMSS",
        purpose="totalisation",
        message={},
        meta={"on_behalf_of": "MX-ISSSTECALI", "origin": {}},
    )
    assert relayed["header"]["meta"]["on_behalf_of"] == "MX-ISSSTECALI"


def test_sign_and_verify_round_trip() -> None:
    document = signed()
    assert set(document) == {"signature", "header", "message"}
    params = env.verify(document, resolve_key=resolver(KEY), now=NOW)
    created = int(NOW.timestamp())
    assert (params.created, params.expires) == (created, created + 300)
    assert params.kid == f"MX-IMSS|{KEY.key_id}|ed25519"
    assert params.key_id == KEY.key_id
    assert params.envelope_hash == env.envelope_hash(document)
    assert params.created_at == NOW


def test_signature_is_the_dci_form_over_created_expires_digest() -> None:
    document = signed()
    value = document["signature"]
    created = int(NOW.timestamp())
    assert value.startswith(
        f'Signature: namespace="pilar", kidId="MX-IMSS|{KEY.key_id}|ed25519", '
        f'algorithm="ed25519", created="{created}", expires="{created + 300}", '
        'headers="(created) (expires) digest", signature="'
    )
    body = rfc8785.dumps({"header": document["header"], "message": document["message"]})
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    signed_bytes = f"(created): {created}\n(expires): {created + 300}\ndigest: SHA-256={digest}"
    raw = env.parse_signature(value).signature
    assert KEY.verify_key.verify(raw, signed_bytes.encode())
    # The "Signature: " prefix is optional when parsing.
    assert (
        env.parse_signature(value.removeprefix("Signature: ")).kid == env.parse_signature(value).kid
    )


def test_tampered_header_message_or_signature_is_refused() -> None:
    document = signed()
    header = copy.deepcopy(document)
    header["header"]["receiver_id"] = "MX-OTHER"
    refused(header, "rjct.signature.invalid")
    message = copy.deepcopy(document)
    message["message"]["search_request"][0]["a"] = 2
    refused(message, "rjct.signature.invalid")
    signature = copy.deepcopy(document)
    raw = bytearray(env.parse_signature(document["signature"]).signature)
    raw[0] ^= 1
    old = base64.b64encode(env.parse_signature(document["signature"]).signature).decode()
    signature["signature"] = document["signature"].replace(old, base64.b64encode(raw).decode())
    refused(signature, "rjct.signature.invalid")
    # Changing the times in the signature string breaks the signature too.
    created = str(int(NOW.timestamp()))
    times = copy.deepcopy(document)
    times["signature"] = document["signature"].replace(
        f'expires="{int(created) + 300}"', f'expires="{int(created) + 200}"'
    )
    refused(times, "rjct.signature.invalid")


def test_key_of_another_member_or_unknown_key_is_refused() -> None:
    refusal = refused(signed(), "rjct.key.unknown", resolve=lambda *args: None)
    assert refusal.params == {"sender": "MX-IMSS", "key_id": KEY.key_id}
    impostor = SigningKey.generate("MX-ISSSTECALI")
    request = env.build_request(
        action="search",
        sender_id="MX-IMSS",
        receiver_id="MX-ISSSTECALI",
        purpose="verification",
        message={},
        now=NOW,
    )
    refused(env.sign(request, impostor, now=NOW), "rjct.signature.invalid")
    # Another key with the same name: the resolver knows the real one only.
    other = SigningKey.generate("MX-IMSS")
    refused(env.sign(request, other, now=NOW), "rjct.key.unknown")


@pytest.mark.parametrize(
    ("document", "detail"),
    [
        ([], "not a JSON object"),
        ({"header": {}, "message": {}}, "signature is missing"),
        ({"signature": "x", "message": {}}, "header is missing"),
        ({"signature": "x", "header": {}, "message": []}, "message has the wrong type"),
        ({"signature": 1, "header": {}, "message": {}}, "signature has the wrong type"),
    ],
)
def test_malformed_envelope_is_refused(document: Any, detail: str) -> None:
    refusal = refused(document, "rjct.envelope.invalid")
    assert detail in refusal.message("en")


def test_missing_header_fields_and_extra_parts_are_refused() -> None:
    for field in ("message_id", "action", "sender_id", "receiver_id", "message_ts"):
        document = signed()
        del document["header"][field]
        assert field in refused(document, "rjct.envelope.invalid").message("en")
    document = signed()
    document["header"]["total_count"] = "2"
    refused(document, "rjct.envelope.invalid")
    document = signed()
    document["unsigned"] = {"smuggled": True}
    assert "unsigned" in refused(document, "rjct.envelope.invalid").message("en")
    document = signed()
    document["header"]["meta"] = "relay"
    refused(document, "rjct.envelope.invalid")


def test_other_version_is_refused() -> None:
    document = signed()
    document["header"]["version"] = "2.0.0"
    refusal = refused(document, "rjct.version.invalid")
    assert "2.0.0" in refusal.message("en")


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda s: s.replace('namespace="pilar"', 'namespace="g2p"'), "namespace"),
        (lambda s: s.replace('algorithm="ed25519"', 'algorithm="rsa"'), "algorithm"),
        (lambda s: s.replace("(created) (expires) digest", "digest"), "signed headers"),
        (lambda s: s.replace("|ed25519", "|rsa"), "key id"),
        (lambda s: re.sub(r'signature="[^"]*"', 'signature="!!"', s), "not base64"),
        (lambda s: re.sub(r'signature="[^"]*"', 'signature="AAAA"', s), "64 bytes"),
        (lambda s: re.sub(r', created="\d+"', "", s), "created is missing"),
        (lambda s: re.sub(r'created="\d+"', 'created="soon"', s), "whole seconds"),
        (lambda s: s + ', created="1"', "appears twice"),
        (lambda s: "garbage", 'name="value"'),
    ],
)
def test_malformed_signature_is_refused_with_its_defect(change, detail: str) -> None:
    document = signed()
    document["signature"] = change(document["signature"])
    refusal = refused(document, "rjct.signature.invalid")
    assert detail in refusal.message("en")


def test_times() -> None:
    document = signed()
    created = NOW
    # Within the lifetime and up to the skew early: accepted.
    env.verify(document, resolve_key=resolver(KEY), now=created + dt.timedelta(seconds=300))
    env.verify(document, resolve_key=resolver(KEY), now=created - dt.timedelta(seconds=30))
    expired = refused(document, "rjct.message_ts.invalid", now=created + dt.timedelta(seconds=301))
    assert "expired 1 s ago" in expired.message("en")
    future = refused(document, "rjct.message_ts.invalid", now=created - dt.timedelta(seconds=31))
    assert "31 s in the future" in future.message("en")
    refused(document, "rjct.message_ts.invalid", now=created - dt.timedelta(seconds=10), skew=5)
    long_lived = signed(ttl=301)
    refusal = refused(long_lived, "rjct.message_ts.invalid")
    assert "301 s" in refusal.message("en")
    # A trust list may live longer: max_ttl=None lifts the limit, not the expiry.
    env.verify(long_lived, resolve_key=resolver(KEY), now=NOW, max_ttl=None)


def test_refusal_messages_are_translated() -> None:
    document = signed()
    document["message"]["x"] = 1
    refusal = refused(document, "rjct.signature.invalid")
    assert refusal.http_status == 401
    assert refusal.message("es").startswith("La firma no se verifica")
    assert refusal.message("en").startswith("The signature does not verify")
    assert Refusal("rjct.field.not_agreed", fields=["curp", "nss"]).message("en") == (
        "These fields are outside the agreement: curp, nss."
    )
    # A parameter the raiser did not give does not break the message.
    assert "—" in Refusal("rjct.sender.unknown").message("en")
    with pytest.raises(ValueError, match="Unknown reason code"):
        Refusal("rjct.no_such_code")


def test_every_reason_renders_in_both_languages() -> None:
    for code, reason in REASONS.items():
        english = Refusal(code).message("en")
        spanish = Refusal(code).message("es")
        assert english, code
        assert spanish != english, code
        assert 100 <= reason.http_status < 600


def test_canonical_json_is_rfc_8785() -> None:
    assert env.canonical({"b": 1, "a": {"d": [], "c": None}}) == b'{"a":{"c":null,"d":[]},"b":1}'
    # Non-ASCII stays UTF-8 (not \u escapes); control characters are escaped.
    assert env.canonical({"name": "Peña\n"}) == '{"name":"Peña\\n"}'.encode()
    # Keys sort by UTF-16 code units: "€" (U+20AC) before "😀" (a surrogate pair, D83D…).
    assert env.canonical({"😀": 1, "€": 2, "a": 3}) == '{"a":3,"€":2,"😀":1}'.encode()
    # ECMAScript number forms.
    assert env.canonical([1.0, 1e21, 0.1, -0.0, 100]) == b"[1,1e+21,0.1,0,100]"


def test_response_is_bound_to_its_request() -> None:
    request = signed()
    request_hash = env.envelope_hash(request)
    assert request_hash == hashlib.sha256(rfc8785.dumps(request)).hexdigest()
    peer = SigningKey.generate("MX-ISSSTECALI")
    response = env.sign(
        env.build_response(
            request_header=request["header"],
            request_hash=request_hash,
            sender_id="MX-ISSSTECALI",
            receiver_id="MX-IMSS",
            action="search",
            status="succ",
            message={"search_response": []},
            now=NOW,
        ),
        peer,
        now=NOW,
    )
    header = response["header"]
    assert header["action"] == "on-search"
    assert header["request_id"] == request["header"]["message_id"]
    assert header["request_hash"] == f"sha256:{request_hash}"
    assert (header["total_count"], header["completed_count"]) == (2, 2)
    assert header["message_id"] != request["header"]["message_id"]
    env.verify(response, resolve_key=resolver(peer), now=NOW)
    assert env.response_matches(response, request)
    other = signed()
    assert not env.response_matches(response, other)
    # A re-signed request (a retry) has another hash: the response names one exact version.
    assert not env.response_matches(response, env.sign(request, KEY, now=NOW, ttl=200))
    refusal = env.build_response(
        request_header=None,
        request_hash="",
        sender_id="MX-ISSSTECALI",
        receiver_id="",
        action="search",
        status="rjct",
        reason_code="rjct.json.invalid",
        reason_message="…",
    )
    assert refusal["header"]["status_reason_code"] == "rjct.json.invalid"
    assert refusal["header"]["completed_count"] == 0
    with pytest.raises(ValueError, match="succ or rjct"):
        env.build_response(
            request_header=None,
            request_hash="",
            sender_id="a",
            receiver_id="b",
            action="x",
            status="ok",
        )


def test_a_response_with_missing_binding_fields_is_malformed() -> None:
    peer = SigningKey.generate("MX-ISSSTECALI")
    response = env.build_response(
        request_header={"message_id": "m", "total_count": 1},
        request_hash="ab",
        sender_id="MX-ISSSTECALI",
        receiver_id="MX-IMSS",
        action="on-search",
        status="succ",
        now=NOW,
    )
    del response["header"]["request_hash"]
    with pytest.raises(Refusal) as caught:
        env.verify(env.sign(response, peer, now=NOW), resolve_key=resolver(peer), now=NOW)
    assert caught.value.code == "rjct.envelope.invalid"


def test_numbers_out_of_the_json_range_are_malformed_not_a_crash() -> None:
    document = signed()
    document["message"]["big"] = 2**60
    refused(document, "rjct.envelope.invalid")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(message=st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_any_json_message_round_trips(message: dict[str, Any]) -> None:
    document = signed(message)
    # Through the wire: JSON text and back, with keys in another order.
    received = json.loads(json.dumps(document, ensure_ascii=False, sort_keys=True))
    params = env.verify(received, resolve_key=resolver(KEY), now=NOW)
    assert params.envelope_hash == env.envelope_hash(document)


# Every kind of value a JSON document can hold, floats and non-ASCII keys included, so both the
# fast path of ``canonical`` and its fall-back to the reference implementation are exercised.
canonical_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(document=canonical_values)
def test_canonical_equals_the_reference_rfc_8785_implementation(document: Any) -> None:
    try:
        expected = rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        with pytest.raises((rfc8785.CanonicalizationError, ValueError, TypeError)):
            env.canonical(document)
        return
    assert env.canonical(document) == expected


def test_canonical_escapes_control_characters_as_jcs_does() -> None:
    document = {"b": '\x00\x1f\x7f\b\f\n\r\t"\\/ é 𝄞 \u2028', "a": [1, True, None]}
    assert env.canonical(document) == rfc8785.dumps(document)
    assert env.canonical(document).startswith(b'{"a":[1,true,null],"b":"\\u0000\\u001f')
