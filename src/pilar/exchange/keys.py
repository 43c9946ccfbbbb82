"""Ed25519 keys of the federation, named by member code (pure: no Django).

A key's id is the C2SP signed-note key hash: the first 4 bytes of
``SHA-256(name || "\\n" || 0x01 || public_key)`` as 8 lowercase hex digits, where 0x01 is the
signed-note signature type of Ed25519. Public keys travel as C2SP *vkeys*:
``<name>+<key id>+<base64(0x01 || public)>``, the format ``PILAR_HUB_KEYS`` and the trust list
use, so the same key checks envelopes and the transparency log's signed notes.

Decisions where docs/federation.md is silent: a key name must be a valid signed-note name (no
``+``, no whitespace, not empty); private keys are PEM PKCS#8 without a passphrase (the file's
mode 0600 and the directory are the protection, like an SSH host key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# The signed-note signature type of Ed25519 (C2SP signed-note).
ED25519_TYPE = 0x01
ALGORITHM = "ed25519"


def _check_name(name: str) -> None:
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise ValueError(f"Invalid key name {name!r}: it must be non-empty, with no '+' or spaces.")


def key_hash_bytes(name: str, public: bytes) -> bytes:
    """The 4-byte key hash of C2SP signed notes (what signature lines start with)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ED25519_TYPE]) + public).digest()[
        :4
    ]


def key_id(name: str, public: bytes) -> str:
    """The key id: the signed-note key hash as 8 lowercase hex digits."""
    return key_hash_bytes(name, public).hex()


def _vkey(name: str, public: bytes) -> str:
    encoded = base64.b64encode(bytes([ED25519_TYPE]) + public).decode("ascii")
    return f"{name}+{key_id(name, public)}+{encoded}"


class VerifyKey:
    """A member's public key: checks Ed25519 signatures."""

    __slots__ = ("_public_key", "key_id", "name", "public")

    def __init__(self, name: str, public: bytes) -> None:
        _check_name(name)
        if len(public) != 32:
            raise ValueError(f"An Ed25519 public key has 32 bytes, not {len(public)}.")
        self.name = name
        self.public = bytes(public)
        self.key_id = key_id(name, self.public)
        # Parsing the point once per key, not once per signature, keeps verification cheap.
        self._public_key = Ed25519PublicKey.from_public_bytes(self.public)

    @classmethod
    def from_public(cls, name: str, public: bytes) -> VerifyKey:
        return cls(name, public)

    @classmethod
    def from_public_b64(cls, name: str, public_b64: str) -> VerifyKey:
        """From the base64 public key as stored in ``NodeKey``/``MemberKey.public_key``."""
        try:
            public = base64.b64decode(public_b64, validate=True)
        except (binascii.Error, ValueError) as error:
            raise ValueError(f"The public key of {name} is not valid base64.") from error
        return cls(name, public)

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public).decode("ascii")

    @property
    def vkey(self) -> str:
        return _vkey(self.name, self.public)

    @property
    def kid(self) -> str:
        """The envelope's ``kidId``: ``<name>|<key id>|ed25519``."""
        return f"{self.name}|{self.key_id}|{ALGORITHM}"

    def verify(self, signature: bytes, data: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            self._public_key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, VerifyKey) and other.name == self.name and other.public == self.public
        )

    def __hash__(self) -> int:
        return hash((self.name, self.public))

    def __repr__(self) -> str:
        return f"VerifyKey({self.name!r}, {self.key_id!r})"


class SigningKey:
    """One of this node's private keys: signs envelopes and checkpoints."""

    __slots__ = ("_private_key", "key_id", "name", "public", "verify_key")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_name(name)
        self.name = name
        self._private_key = private_key
        self.public = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id(name, self.public)
        self.verify_key = VerifyKey(name, self.public)

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str | os.PathLike[str], name: str) -> SigningKey:
        """Read a PEM PKCS#8 Ed25519 private key file (ValueError if it is not one)."""
        data = Path(path).read_bytes()
        try:
            private_key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path} is not an unencrypted PEM private key.") from error
        if not isinstance(private_key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key.")
        return cls(name, private_key)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the private key as PEM PKCS#8, readable by the owner only (mode 0600).

        The file is created with mode 0600 from the start (never world-readable for an
        instant) and an existing file is never overwritten: a key id is unique, so a file
        already there is another key and must not be lost."""
        pem = self._private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, pem)
        finally:
            os.close(descriptor)
        os.chmod(target, 0o600)

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public).decode("ascii")

    @property
    def vkey(self) -> str:
        return _vkey(self.name, self.public)

    @property
    def kid(self) -> str:
        return f"{self.name}|{self.key_id}|{ALGORITHM}"

    def sign(self, data: bytes) -> bytes:
        return self._private_key.sign(data)

    def __repr__(self) -> str:
        return f"SigningKey({self.name!r}, {self.key_id!r})"


def parse_vkey(text: str) -> VerifyKey:
    """Parse a C2SP vkey ``<name>+<key id>+<base64(0x01 || public)>``.

    Raises ValueError naming what is wrong: the shape, the base64, the key type, the length,
    or a key id that does not match the name and key (a vkey copied with a typo)."""
    text = text.strip()
    # The name has no "+", the key id neither, but standard base64 may: split twice only.
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise ValueError(
            "A vkey has the form <name>+<key id>+<base64 key>; "
            f"{text[:60]!r} has {len(parts)} part(s)."
        )
    name, given_id, encoded = parts
    if not name or any(ch.isspace() for ch in name):
        raise ValueError("The vkey's name is empty or contains spaces.")
    if len(given_id) != 8 or any(ch not in "0123456789abcdef" for ch in given_id):
        raise ValueError(f"The vkey's key id {given_id!r} is not 8 lowercase hex digits.")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("The vkey's key is not valid base64.") from error
    if not raw or raw[0] != ED25519_TYPE:
        raise ValueError("The vkey is not an Ed25519 key (type byte 0x01 expected).")
    if len(raw) != 33:
        raise ValueError(f"The vkey's Ed25519 key has {len(raw) - 1} bytes, not 32.")
    key = VerifyKey(name, raw[1:])
    if key.key_id != given_id:
        raise ValueError(
            f"The vkey's key id {given_id} does not match its name and key ({key.key_id})."
        )
    return key
