"""C2SP signed notes, checkpoints and cosignatures (pure: no Django).

- **Signed note** (c2sp.org/signed-note, as ``golang.org/x/mod/sumdb/note``): the text (UTF-8,
  ending in a newline), a blank line, then one line per signature
  ``— <key name> <base64(key hash (4 bytes) || signature)>``. The Ed25519 key hash is
  ``SHA-256(name || "\\n" || 0x01 || public key)[:4]`` (``keys.key_hash_bytes``).
- **Checkpoint** (c2sp.org/tlog-checkpoint): the note text ``<origin>\\n<size>\\n<base64 root>\\n``
  plus optional extension lines.
- **Cosignature** (c2sp.org/tlog-cosignature v1, Ed25519): a note signature whose key hash uses
  the signature type 0x04, ``SHA-256(name || "\\n" || 0x04 || public key)[:4]``, and whose bytes
  are ``key hash || timestamp (uint64 big-endian) || signature``; the signed message is
  ``cosignature/v1\\ntime <timestamp>\\n`` followed by the whole checkpoint text.

Keys are any objects with ``name`` and ``public`` (32 bytes) and ``sign(data)`` (signers) or
``verify(signature, data) -> bool`` (verifiers): ``pilar.exchange.keys.SigningKey`` and
``VerifyKey``; ``ed25519_signer``/``ed25519_verifier`` wrap raw ``cryptography`` keys.

Decisions: ``open_note`` ignores signatures by keys it does not know (another witness's
cosignature is no reason to refuse a checkpoint) and refuses a note where a known key's
signature does not verify, or where no known key signed at all. Notes are limited to 100
signatures, as in Go.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pilar.exchange.keys import key_hash_bytes

SIGNATURE_PREFIX = "— "  # U+2014 EM DASH, then a space
MAX_SIGNATURES = 100
COSIGNATURE_TYPE = 0x04
COSIGNATURE_HEADER = "cosignature/v1\n"
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


class NoteError(ValueError):
    """A note, checkpoint or cosignature is malformed or does not verify."""


class Signer(Protocol):
    name: str
    public: bytes

    def sign(self, data: bytes) -> bytes: ...


class Verifier(Protocol):
    name: str
    public: bytes

    def verify(self, signature: bytes, data: bytes) -> bool: ...


class _Ed25519Signer:
    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name = name
        self._key = private_key
        self.public = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


class _Ed25519Verifier:
    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        self.name = name
        self._key = public_key
        self.public = public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            self._key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


def ed25519_signer(name: str, private_key: Ed25519PrivateKey) -> Signer:
    return _Ed25519Signer(name, private_key)


def ed25519_verifier(name: str, public_key: Ed25519PublicKey) -> Verifier:
    return _Ed25519Verifier(name, public_key)


# --------------------------------------------------------------------------------------------
# Signed notes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_hash: bytes
    # The signature bytes after the key hash (for a cosignature: timestamp || signature).
    signature: bytes

    @property
    def line(self) -> str:
        encoded = base64.b64encode(self.key_hash + self.signature).decode("ascii")
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}"


@dataclass(frozen=True)
class Note:
    text: str
    verified: list[NoteSignature] = field(default_factory=list)
    # Signatures by keys the reader did not know (kept, e.g. cosignatures of other witnesses).
    unverified: list[NoteSignature] = field(default_factory=list)


def _check_name(name: str) -> None:
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise NoteError(f"invalid key name {name!r}")


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note's text must end with a newline")
    for ch in text:
        if ch != "\n" and (ord(ch) < 0x20 or ord(ch) == 0x7F):
            raise NoteError(f"a note's text must not contain the control character {ord(ch):#x}")


def sign_note(text: str, signers: Iterable[Signer]) -> str:
    """The signed note of ``text`` with one signature line per signer."""
    _check_text(text)
    message = text.encode("utf-8")
    lines = []
    for signer in signers:
        _check_name(signer.name)
        signature = NoteSignature(
            signer.name, key_hash_bytes(signer.name, signer.public), signer.sign(message)
        )
        lines.append(signature.line + "\n")
    if not lines:
        raise NoteError("a signed note needs at least one signer")
    return text + "\n" + "".join(lines)


def split_note(note: str) -> tuple[str, list[NoteSignature]]:
    """The text and the parsed signature lines of a note (nothing verified)."""
    if len(note.encode("utf-8")) > 1_000_000:
        raise NoteError("the note is too large")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    _check_text(text)
    if not block.endswith("\n"):
        raise NoteError("malformed note: the signature block must end with a newline")
    signatures: list[NoteSignature] = []
    for number, line in enumerate(block[:-1].split("\n"), start=1):
        signatures.append(_parse_signature_line(line, number))
        if len(signatures) > MAX_SIGNATURES:
            raise NoteError(f"the note has more than {MAX_SIGNATURES} signatures")
    return text, signatures


def _parse_signature_line(line: str, number: int = 1) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError(f"malformed signature line {number}: it must start with '— '")
    rest = line[len(SIGNATURE_PREFIX) :]
    name, space, encoded = rest.partition(" ")
    if not space or not name or " " in encoded:
        raise NoteError(f"malformed signature line {number}: expected '— <name> <signature>'")
    _check_name(name)
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise NoteError(
            f"malformed signature line {number}: the signature is not base64"
        ) from error
    if len(raw) < 5:
        raise NoteError(f"malformed signature line {number}: the signature is too short")
    return NoteSignature(name, raw[:4], raw[4:])


def open_note(note: str, verifiers: Iterable[Verifier]) -> Note:
    """Check a signed note against the known keys.

    Signatures by unknown keys (other name or key hash) are ignored; a known key's signature
    that does not verify is refused; at least one known key must have signed."""
    text, signatures = split_note(note)
    known = {(v.name, key_hash_bytes(v.name, v.public)): v for v in verifiers}
    message = text.encode("utf-8")
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    for signature in signatures:
        verifier = known.get((signature.name, signature.key_hash))
        if verifier is None:
            unverified.append(signature)
            continue
        if not verifier.verify(signature.signature, message):
            raise NoteError(
                f"the signature of {signature.name} "
                f"(key {signature.key_hash.hex()}) does not verify"
            )
        if signature not in verified:
            verified.append(signature)
    if not verified:
        names = ", ".join(sorted({name for name, _ in known})) or "none"
        raise NoteError(f"the note is not signed by any known key (known: {names})")
    return Note(text=text, verified=verified, unverified=unverified)


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    @property
    def body(self) -> str:
        return format_checkpoint(self.origin, self.size, self.root, self.extensions)


def format_checkpoint(origin: str, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
    if not origin or "\n" in origin:
        raise NoteError("a checkpoint origin must be one non-empty line")
    if size < 0:
        raise NoteError("a checkpoint size cannot be negative")
    if len(root) != 32:
        raise NoteError(f"a checkpoint root hash has 32 bytes, not {len(root)}")
    lines = [origin, str(size), base64.b64encode(root).decode("ascii"), *extensions]
    return "\n".join(lines) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint's note text (not the signatures: use ``open_note`` first)."""
    if not text.endswith("\n"):
        raise NoteError("a checkpoint must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("a checkpoint has at least three lines: origin, size and root hash")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise NoteError("the checkpoint's origin line is empty")
    if not _DECIMAL.fullmatch(size_text):
        raise NoteError(f"the checkpoint's size {size_text[:30]!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise NoteError("the checkpoint's root hash is not base64") from error
    if len(root) != 32:
        raise NoteError(f"the checkpoint's root hash has {len(root)} bytes, not 32")
    if any(not line for line in extensions):
        raise NoteError("a checkpoint's extension lines cannot be empty")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


# --------------------------------------------------------------------------------------------
# Cosignatures (tlog-cosignature v1, Ed25519)
# --------------------------------------------------------------------------------------------


def cosignature_key_hash(name: str, public: bytes) -> bytes:
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([COSIGNATURE_TYPE]) + public
    ).digest()[:4]


def cosignature_message(checkpoint_body: str, timestamp: int) -> bytes:
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{checkpoint_body}".encode()


def cosign(checkpoint_body: str, key: Signer, timestamp: int) -> str:
    """The cosignature line (without its final newline) of ``key``'s holder on a checkpoint."""
    _check_text(checkpoint_body)
    parse_checkpoint(checkpoint_body)
    _check_name(key.name)
    if not 0 <= timestamp < 2**63:
        raise NoteError("a cosignature timestamp must be between 0 and 2^63 - 1")
    signature = key.sign(cosignature_message(checkpoint_body, timestamp))
    return NoteSignature(
        key.name,
        cosignature_key_hash(key.name, key.public),
        timestamp.to_bytes(8, "big") + signature,
    ).line


@dataclass(frozen=True)
class Cosignature:
    name: str
    key_hash: bytes
    timestamp: int
    line: str


def parse_cosignature(line: str) -> Cosignature:
    line = line.rstrip("\n")
    signature = _parse_signature_line(line)
    if len(signature.signature) != 8 + 64:
        raise NoteError(f"a cosignature has 4 + 8 + 64 bytes, not {4 + len(signature.signature)}")
    timestamp = int.from_bytes(signature.signature[:8], "big")
    if timestamp >= 2**63:
        raise NoteError("the cosignature's timestamp exceeds 2^63 - 1")
    return Cosignature(signature.name, signature.key_hash, timestamp, line)


def verify_cosignature(checkpoint_body: str, line: str, key: Verifier) -> Cosignature:
    """Check a cosignature line on a checkpoint against a witness's key; returns it parsed."""
    cosignature = parse_cosignature(line)
    if cosignature.name != key.name:
        raise NoteError(f"the cosignature is by {cosignature.name}, not by {key.name}")
    if cosignature.key_hash != cosignature_key_hash(key.name, key.public):
        raise NoteError(
            f"the cosignature's key hash {cosignature.key_hash.hex()} is not that of "
            f"{key.name}'s key"
        )
    raw = base64.b64decode(line.rstrip("\n").rsplit(" ", 1)[1])
    if not key.verify(raw[12:], cosignature_message(checkpoint_body, cosignature.timestamp)):
        raise NoteError(f"the cosignature of {key.name} does not verify on this checkpoint")
    return cosignature


def add_signature_lines(note: str, lines: Iterable[str]) -> str:
    """The note with more signature lines appended (e.g. cosignatures), each once."""
    present = set(note.split("\n"))
    extra = [line.rstrip("\n") for line in lines]
    return note + "".join(f"{line}\n" for line in dict.fromkeys(extra) if line not in present)
