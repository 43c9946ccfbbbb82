"""Ed25519 keys, key ids and C2SP vkeys (pure: no database)."""

from __future__ import annotations

import base64
import hashlib
import stat

import pytest

from pilar.exchange.keys import SigningKey, VerifyKey, key_hash_bytes, key_id, parse_vkey

# The example verifier key of golang.org/x/mod/sumdb/note (C2SP signed-note): its key hash is
# c74f20a3, so this checks our key id against an independent implementation.
GO_NOTE_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"


def test_key_id_is_the_signed_note_key_hash() -> None:
    key = parse_vkey(GO_NOTE_VKEY)
    assert key.name == "PeterNeumann"
    assert key.key_id == "c74f20a3"
    assert key.vkey == GO_NOTE_VKEY
    expected = hashlib.sha256(b"PeterNeumann\n\x01" + key.public).digest()[:4]
    assert key_hash_bytes("PeterNeumann", key.public) == expected
    assert key_id("PeterNeumann", key.public) == expected.hex()


def test_generated_key_has_consistent_identity() -> None:
    key = SigningKey.generate("MX-IMSS")
    assert len(key.public) == 32
    assert key.key_id == key_id("MX-IMSS", key.public)
    assert key.vkey.startswith(f"MX-IMSS+{key.key_id}+")
    assert base64.b64decode(key.public_b64) == key.public
    assert key.kid == f"MX-IMSS|{key.key_id}|ed25519"
    parsed = parse_vkey(key.vkey)
    assert parsed == key.verify_key
    assert parsed.public == key.public


def test_same_public_key_under_another_name_has_another_id() -> None:
    key = SigningKey.generate("MX-IMSS")
    assert key_id("MX-ISSSTE", key.public) != key.key_id


def test_sign_and_verify() -> None:
    key = SigningKey.generate("MX-IMSS")
    signature = key.sign(b"hello")
    assert len(signature) == 64
    verify_key = VerifyKey.from_public("MX-IMSS", key.public)
    assert verify_key.verify(signature, b"hello")
    assert not verify_key.verify(signature, b"hellO")
    assert not verify_key.verify(signature[:-1], b"hello")
    assert not verify_key.verify(bytes(64), b"hello")
    other = SigningKey.generate("MX-IMSS")
    assert not other.verify_key.verify(signature, b"hello")


def test_save_is_owner_only_pkcs8_and_loads_back(tmp_path) -> None:
    key = SigningKey.generate("MX-IMSS")
    path = tmp_path / "keys" / f"{key.key_id}.key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = SigningKey.load(path, "MX-IMSS")
    assert loaded.public == key.public
    assert loaded.key_id == key.key_id
    assert key.verify_key.verify(loaded.sign(b"x"), b"x")


def test_save_never_overwrites_a_key(tmp_path) -> None:
    path = tmp_path / "a.key"
    SigningKey.generate("MX-IMSS").save(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        SigningKey.generate("MX-IMSS").save(path)
    assert path.read_bytes() == before


def test_load_refuses_what_is_not_a_private_key(tmp_path) -> None:
    path = tmp_path / "bad.key"
    path.write_text("not a key")
    with pytest.raises(ValueError, match="not an unencrypted PEM private key"):
        SigningKey.load(path, "MX-IMSS")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("MX-IMSS+abcdef12", "has 2 part"),
        ("MX-IMSS+ABCDEF12+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 lowercase hex"),
        ("MX-IMSS+abcdef12+not base64!", "not valid base64"),
        ("MX-IMSS+abcdef12+" + base64.b64encode(b"\x02" + bytes(32)).decode(), "not an Ed25519"),
        ("MX-IMSS+abcdef12+" + base64.b64encode(b"\x01" + bytes(31)).decode(), "31 bytes"),
        ("+abcdef12+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "name is empty"),
        # A vkey copied with another name: the key id no longer matches.
        ("PeterNeuman+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
    ],
)
def test_parse_vkey_names_the_defect(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_vkey(text)


def test_key_names_follow_signed_note_rules() -> None:
    with pytest.raises(ValueError, match="Invalid key name"):
        SigningKey.generate("MX IMSS")
    with pytest.raises(ValueError, match="Invalid key name"):
        SigningKey.generate("MX+IMSS")
    with pytest.raises(ValueError, match="32 bytes"):
        VerifyKey("MX-IMSS", b"short")


def test_vkeys_whose_base64_holds_plus_signs_parse() -> None:
    # Standard base64 uses "+": the vkey splits on its first two "+" only.
    for _ in range(200):
        key = SigningKey.generate("MX-IMSS")
        assert parse_vkey(key.vkey).public == key.public
