"""C2SP signed notes, checkpoints and tlog-cosignatures (translog.note)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pilar.exchange.keys import SigningKey, parse_vkey
from pilar.exchange.translog import note
from pilar.exchange.translog.note import NoteError

# The example of golang.org/x/mod/sumdb/note (note_test.go): Ed25519 is deterministic, so the
# signature we make must equal the published one byte for byte.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def _go_signing_key() -> SigningKey:
    # maxsplit: the base64 key itself may contain "+".
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])[1:]
    return SigningKey("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed))


def test_signing_reproduces_the_go_reference_note() -> None:
    key = _go_signing_key()
    assert key.vkey == GO_VKEY
    assert note.sign_note(GO_TEXT, [key]) == GO_NOTE


def test_the_go_reference_note_opens_with_its_vkey() -> None:
    opened = note.open_note(GO_NOTE, [parse_vkey(GO_VKEY)])
    assert opened.text == GO_TEXT
    assert [s.name for s in opened.verified] == ["PeterNeumann"]


def test_a_tampered_note_is_refused() -> None:
    tampered = GO_NOTE.replace("cryptography", "cryptographY")
    with pytest.raises(NoteError, match="does not verify"):
        note.open_note(tampered, [parse_vkey(GO_VKEY)])


def test_unknown_keys_are_ignored_but_one_known_signature_is_required() -> None:
    log_key = SigningKey.generate("MX-IMSS")
    other = SigningKey.generate("MX-OTHER")
    signed = note.sign_note("pilar.exchange/MX-IMSS\n1\nAAAA\n", [log_key, other])
    opened = note.open_note(signed, [log_key.verify_key])
    assert [s.name for s in opened.verified] == ["MX-IMSS"]
    assert [s.name for s in opened.unverified] == ["MX-OTHER"]
    with pytest.raises(NoteError, match="not signed by any known key"):
        note.open_note(signed, [SigningKey.generate("MX-IMSS").verify_key])


def test_a_known_key_with_a_bad_signature_is_refused_even_beside_a_good_one() -> None:
    key = SigningKey.generate("MX-IMSS")
    other = SigningKey.generate("MX-HUB")
    text = "hello\n"
    good = note.sign_note(text, [key])
    forged = note.sign_note("bye\n", [other]).split("\n\n", 1)[1]
    # A line claiming to be MX-HUB's key over another text.
    with pytest.raises(NoteError, match="MX-HUB"):
        note.open_note(good + forged, [key.verify_key, other.verify_key])


@pytest.mark.parametrize(
    "malformed",
    [
        "no blank line\n— A AAAAAAAA\n",
        "text\n\n— A AAAAAAAA",  # no final newline
        "text\n\nA AAAAAAAA\n",  # no em dash
        "text\n\n— A not-base64!\n",
        "text\n\n— A AAAA\n",  # too short
        "te\x07xt\n\n— A AAAAAAAA\n",  # control character
    ],
)
def test_malformed_notes_are_refused(malformed: str) -> None:
    with pytest.raises(NoteError):
        note.open_note(malformed, [SigningKey.generate("A").verify_key])


def test_checkpoint_round_trip_and_errors() -> None:
    root = bytes(range(32))
    body = note.format_checkpoint("pilar.exchange/MX-IMSS", 20852163, root)
    assert body == ("pilar.exchange/MX-IMSS\n20852163\n" + base64.b64encode(root).decode() + "\n")
    parsed = note.parse_checkpoint(body)
    assert (parsed.origin, parsed.size, parsed.root) == ("pilar.exchange/MX-IMSS", 20852163, root)
    for bad in (
        "origin\n012\n" + base64.b64encode(root).decode() + "\n",  # leading zero
        "origin\n12\n" + base64.b64encode(root[:31]).decode() + "\n",
        "origin\n12\n",
        "origin\n-1\n" + base64.b64encode(root).decode() + "\n",
    ):
        with pytest.raises(NoteError):
            note.parse_checkpoint(bad)


def test_cosignature_round_trip_layout_and_tampering() -> None:
    witness = SigningKey.generate("MX-AUDITOR")
    body = note.format_checkpoint("pilar.exchange/MX-IMSS", 5, bytes(32))
    line = note.cosign(body, witness, 1_700_000_000)
    name, encoded = line.removeprefix("— ").split(" ")
    raw = base64.b64decode(encoded)
    assert name == "MX-AUDITOR"
    # key hash (type 0x04, not the note's 0x01) || big-endian timestamp || signature.
    assert raw[:4] == note.cosignature_key_hash("MX-AUDITOR", witness.public)
    assert raw[:4] != witness.verify_key.key_id.encode()
    assert int.from_bytes(raw[4:12], "big") == 1_700_000_000
    assert len(raw) == 76
    # The signed message is exactly tlog-cosignature's.
    assert witness.verify_key.verify(raw[12:], b"cosignature/v1\ntime 1700000000\n" + body.encode())
    assert note.verify_cosignature(body, line, witness.verify_key).timestamp == 1_700_000_000

    other_body = note.format_checkpoint("pilar.exchange/MX-IMSS", 6, bytes(32))
    with pytest.raises(NoteError, match="does not verify"):
        note.verify_cosignature(other_body, line, witness.verify_key)
    with pytest.raises(NoteError, match="not by"):
        note.verify_cosignature(body, line, SigningKey.generate("MX-X").verify_key)
    with pytest.raises(NoteError, match="key hash"):
        note.verify_cosignature(body, line, SigningKey.generate("MX-AUDITOR").verify_key)
    # A changed timestamp breaks the signature.
    moved = base64.b64encode(raw[:4] + (1_700_000_001).to_bytes(8, "big") + raw[12:]).decode()
    with pytest.raises(NoteError, match="does not verify"):
        note.verify_cosignature(body, f"— MX-AUDITOR {moved}", witness.verify_key)


def test_a_cosigned_checkpoint_still_opens_with_the_log_key() -> None:
    log_key = SigningKey.generate("MX-IMSS")
    witness = SigningKey.generate("MX-AUDITOR")
    body = note.format_checkpoint("pilar.exchange/MX-IMSS", 3, bytes(32))
    signed = note.sign_note(body, [log_key])
    cosigned = note.add_signature_lines(signed, [note.cosign(body, witness, 10)])
    # The same line twice is added once.
    assert note.add_signature_lines(cosigned, [note.cosign(body, witness, 10)]) == cosigned
    opened = note.open_note(cosigned, [log_key.verify_key])
    assert opened.text == body
    assert [s.name for s in opened.unverified] == ["MX-AUDITOR"]
