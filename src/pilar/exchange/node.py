"""This node: its identity from the settings, its signing keys, and the keys of its peers.

The private half of a key is a file ``PILAR_KEYS_DIR/<key_id>.key`` (mode 0600, never in the
database); ``NodeKey`` rows hold the public half and the status (active, retiring, retired).

Decisions where docs/federation.md is silent:

- **Which key signs.** Normally the ``active`` key. Right after a rotation, though, the peers
  do not know the new key until they take a trust list that lists it; until this node holds
  such a list, and until that list's next update (by which every member has taken it), it
  keeps signing with the retiring key (which the peers know), so a rotation never makes a
  node's messages refused. A node without a trust list (the hub, a lone node)
  signs with the active key at once. The hub applies the same rule with its own member row
  (its keys enter that row when it publishes), and the first list after a hub rotation is
  signed with the old key (``services_trust``).
- **Cache.** ``signing_key()`` is read from disk once per process and re-checked against the
  database at most every ``SIGNING_KEY_RECHECK_SECONDS``, so a rotation made by another
  process (the web server vs. the worker) is picked up without a query per message.
- **Announcing a rotation** sends ``key-announce`` to the hub *before* the new key becomes
  active, signed with the old key (``messaging.send(key=old)``) — the proof that the key
  holder asks for the change — and carries a
  ``proof``: the new key's signature over the announcement, so the hub knows the node holds
  the new private key too. The announcement's purpose is ``key-management``.
- ``node_keys_init`` and ``node_key_rotate`` are audited (``exchange.key.init``,
  ``exchange.key.rotate``) as the given actor, or as the system actor ``pilar exchange``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pilar.core.actor import Actor
from pilar.core.audit import audit_record
from pilar.core.errors import ApplicationError
from pilar.core.roles import Perm, Role
from pilar.exchange import envelope
from pilar.exchange.keys import SigningKey, VerifyKey, parse_vkey
from pilar.exchange.models import KeyStatus, MemberKey, NodeKey, TrustListVersion

SIGNING_KEY_RECHECK_SECONDS = 30.0
KEY_ANNOUNCE_PURPOSE = "key-management"
ANNOUNCE_PROOF_PREFIX = b"pilar key-announce v1\n"

SYSTEM_ACTOR = Actor.system("pilar exchange", roles=frozenset({Role.ADMINISTRATOR.value}))


class NoNodeKey(ApplicationError):
    code = "exchange.no_key"
    status = 409
    title = _("This node has no signing key yet: run “pilar exchange keys init”.")


class KeyFileMissing(ApplicationError):
    code = "exchange.key_file_missing"
    status = 409
    title = _("The private key file of this node's key is missing or unreadable.")


class BadHubKeys(ApplicationError):
    code = "exchange.bad_hub_keys"
    status = 500
    title = _("PILAR_HUB_KEYS holds a value that is not a valid vkey.")


@dataclass(frozen=True)
class NodeInfo:
    code: str
    role: str
    url: str
    hub_code: str
    hub_url: str
    hub_keys: tuple[VerifyKey, ...]

    @property
    def is_hub(self) -> bool:
        return self.role == "hub"


_hub_keys_cache: dict[tuple[str, ...], tuple[VerifyKey, ...]] = {}


def _hub_keys(values: tuple[str, ...]) -> tuple[VerifyKey, ...]:
    cached = _hub_keys_cache.get(values)
    if cached is None:
        try:
            cached = tuple(parse_vkey(value) for value in values if value.strip())
        except ValueError as error:
            raise BadHubKeys(extra={"detail": str(error)}) from error
        _hub_keys_cache[values] = cached
    return cached


def this_node() -> NodeInfo:
    """This node as configured (read on every call: cheap, and the settings may change in
    tests)."""
    return NodeInfo(
        code=settings.PILAR_NODE_CODE,
        role=settings.PILAR_NODE_ROLE,
        url=settings.PILAR_NODE_URL,
        hub_code=settings.PILAR_HUB_CODE,
        hub_url=settings.PILAR_HUB_URL,
        hub_keys=_hub_keys(tuple(settings.PILAR_HUB_KEYS)),
    )


def key_path(key_id: str) -> Path:
    return Path(settings.PILAR_KEYS_DIR) / f"{key_id}.key"


def load_node_key(row: NodeKey) -> SigningKey:
    """The private key of one of this node's keys, checked against its row."""
    path = key_path(row.key_id)
    try:
        key = SigningKey.load(path, settings.PILAR_NODE_CODE)
    except (OSError, ValueError) as error:
        raise KeyFileMissing(extra={"path": str(path), "detail": str(error)}) from error
    if key.key_id != row.key_id or key.public_b64 != row.public_key:
        # The file belongs to another node code (the key id hashes the name) or another key.
        raise KeyFileMissing(extra={"path": str(path), "detail": "key id mismatch"})
    return key


@dataclass
class _Cached:
    key: SigningKey
    checked_at: float


_cache: dict[tuple[str, str], _Cached] = {}
_cache_lock = threading.Lock()


def reset_signing_key_cache() -> None:
    """Forget the cached signing key (after a rotation or a new trust list)."""
    with _cache_lock:
        _cache.clear()


def _choose_signing_row() -> NodeKey:
    active = NodeKey.objects.filter(status=KeyStatus.ACTIVE).order_by("-created_at").first()
    if active is None:
        raise NoNodeKey()
    retiring = NodeKey.objects.filter(status=KeyStatus.RETIRING).order_by("-created_at").first()
    if retiring is None:
        return active
    own = MemberKey.objects.filter(member__code=settings.PILAR_NODE_CODE)
    published = set(own.values_list("key_id", flat=True))
    if not published or retiring.key_id not in published:
        # No trust list names this node with its old key: nobody relies on it.
        return active
    if active.key_id not in published:
        # The peers know this node's keys from the trust list: keep signing with the retiring
        # key until the list that publishes the new one has been taken here.
        return retiring
    # Every member takes a newer list at its current list's next update at the latest, so by
    # the next update of the first list that named the new key, every peer holds it.
    # (No stored list naming it yet — the hub between adding its key and publishing — means no
    # peer holds it either.)
    first = _first_list_with(f"{settings.PILAR_NODE_CODE}+{active.key_id}+")
    if first is None or timezone.now() < first.next_update:
        return retiring
    return active


def _first_list_with(vkey_prefix: str) -> TrustListVersion | None:
    first = None
    for version in TrustListVersion.objects.order_by("-serial")[:50]:
        if vkey_prefix in json.dumps(version.document):
            first = version
        else:
            break
    return first


def signing_key() -> SigningKey:
    """The key this node signs with now (see the module's note on rotation)."""
    cache_key = (str(settings.PILAR_KEYS_DIR), settings.PILAR_NODE_CODE)
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(cache_key)
        if cached is not None and now - cached.checked_at < SIGNING_KEY_RECHECK_SECONDS:
            return cached.key
    row = _choose_signing_row()
    key = (
        cached.key if cached is not None and cached.key.key_id == row.key_id else load_node_key(row)
    )
    with _cache_lock:
        _cache[cache_key] = _Cached(key=key, checked_at=now)
    return key


def _new_key_file() -> SigningKey:
    key = SigningKey.generate(settings.PILAR_NODE_CODE)
    key.save(key_path(key.key_id))
    return key


def node_keys_init(*, actor: Actor | None = None) -> NodeKey:
    """This node's first key, created if there is none (idempotent: an existing active key is
    returned as it is, after checking its private file is there)."""
    existing = NodeKey.objects.filter(status=KeyStatus.ACTIVE).order_by("-created_at").first()
    if existing is not None:
        load_node_key(existing)
        return existing
    key = _new_key_file()
    with transaction.atomic():
        # Two processes initialising at once: the second sees the first's row and keeps it.
        existing = NodeKey.objects.select_for_update().filter(status=KeyStatus.ACTIVE).first()
        if existing is not None:
            key_path(key.key_id).unlink(missing_ok=True)
            return existing
        row = NodeKey.objects.create(
            key_id=key.key_id, public_key=key.public_b64, status=KeyStatus.ACTIVE
        )
        audit_record(
            actor=actor or SYSTEM_ACTOR,
            action="exchange.key.init",
            entity_type="exchange.node_key",
            entity_id=row.pk,
            changes={"key_id": [None, row.key_id], "status": [None, row.status]},
        )
    reset_signing_key_cache()
    return row


def announce_proof(new_key: SigningKey, *, member: str, valid_from: str) -> str:
    """The new key's signature over what the announcement claims (member, vkey, from)."""
    claim = envelope.canonical({"member": member, "vkey": new_key.vkey, "valid_from": valid_from})
    return base64.b64encode(new_key.sign(ANNOUNCE_PROOF_PREFIX + claim)).decode("ascii")


def check_announce_proof(new_key: VerifyKey, *, member: str, valid_from: str, proof: str) -> bool:
    claim = envelope.canonical({"member": member, "vkey": new_key.vkey, "valid_from": valid_from})
    try:
        signature = base64.b64decode(proof, validate=True)
    except ValueError:
        return False
    return new_key.verify(signature, ANNOUNCE_PROOF_PREFIX + claim)


class AnnouncementRefused(ApplicationError):
    code = "exchange.key_announce_refused"
    status = 409
    title = _("The hub refused the new key; this node keeps its current key.")


def _announce(
    actor: Actor, old_key: SigningKey, new_key: SigningKey, valid_from: dt.datetime
) -> None:
    """Tell the hub of the new key, signed with the old one. A hub that does not answer now
    gets the announcement on a retry (messaging keeps it, signed with the old key); a hub that
    refuses it stops the rotation."""
    from pilar.exchange import messaging  # imported late: messaging imports this module
    from pilar.exchange.models import MessageStatus
    from pilar.exchange.transport import PeerUnavailable

    node = this_node()
    stamp = envelope.rfc3339(valid_from)
    try:
        row = messaging.send(
            actor=actor,
            receiver=node.hub_code,
            action="key-announce",
            purpose=KEY_ANNOUNCE_PURPOSE,
            message={
                "member": node.code,
                "vkey": new_key.vkey,
                "valid_from": stamp,
                "proof": announce_proof(new_key, member=node.code, valid_from=stamp),
            },
            key=old_key,
        )
    except PeerUnavailable:
        return
    if row.status == MessageStatus.REFUSED:
        raise AnnouncementRefused(
            extra={"reason_code": row.reason_code, "reason": row.reason_message}
        )


def node_key_rotate(*, actor: Actor, announce: bool = True) -> NodeKey:
    """A new active key; the previous active key becomes ``retiring`` (still published and
    accepted). On a member with a hub configured, the hub is told with a ``key-announce``
    signed with the old key, before the switch. Audited ``exchange.key.rotate``."""
    actor.require(Perm.EXCHANGE_MANAGE)
    old_row = NodeKey.objects.filter(status=KeyStatus.ACTIVE).order_by("-created_at").first()
    if old_row is None:
        raise NoNodeKey()
    old_key = load_node_key(old_row)
    new_key = _new_key_file()
    # Whole seconds, like the ``created`` of the signatures the key will make.
    valid_from = timezone.now().replace(microsecond=0)
    node = this_node()
    try:
        if announce and not node.is_hub and node.hub_url:
            _announce(actor, old_key, new_key, valid_from)
        with transaction.atomic():
            retiring = list(NodeKey.objects.filter(status=KeyStatus.RETIRING))
            # Only one key is kept retiring: an older retiring key is retired now (it has been
            # replaced twice; messages signed with it are long past their 5 minutes).
            NodeKey.objects.filter(status=KeyStatus.RETIRING).update(
                status=KeyStatus.RETIRED, retired_at=valid_from
            )
            NodeKey.objects.filter(pk=old_row.pk).update(status=KeyStatus.RETIRING)
            row = NodeKey.objects.create(
                key_id=new_key.key_id,
                public_key=new_key.public_b64,
                status=KeyStatus.ACTIVE,
                created_at=valid_from,
            )
            audit_record(
                actor=actor,
                action="exchange.key.rotate",
                entity_type="exchange.node_key",
                entity_id=row.pk,
                changes={
                    "active": [old_row.key_id, row.key_id],
                    "retiring": [[key.key_id for key in retiring], old_row.key_id],
                },
            )
    except BaseException:
        key_path(new_key.key_id).unlink(missing_ok=True)
        raise
    reset_signing_key_cache()
    return row


def node_key_retire(*, actor: Actor, key_id: str) -> NodeKey:
    """Stop accepting one of this node's retiring keys (it was replaced and the peers hold
    the new one). Audited ``exchange.key.retire``."""
    actor.require(Perm.EXCHANGE_MANAGE)
    with transaction.atomic():
        row = NodeKey.objects.select_for_update().filter(key_id=key_id).first()
        if row is None or row.status != KeyStatus.RETIRING:
            raise ApplicationError(
                _("Only a retiring key can be retired."), code="exchange.key_not_retiring"
            )
        row.status = KeyStatus.RETIRED
        row.retired_at = timezone.now()
        row.save(update_fields=["status", "retired_at"])
        audit_record(
            actor=actor,
            action="exchange.key.retire",
            entity_type="exchange.node_key",
            entity_id=row.pk,
            changes={"status": [KeyStatus.RETIRING, KeyStatus.RETIRED]},
        )
    reset_signing_key_cache()
    return row


def resolve_key(sender_id: str, key_id: str, created: dt.datetime) -> VerifyKey | None:
    """The sender's key with this id whose validity covers ``created``: from the trust list's
    ``MemberKey`` rows, or, for this node's own code, from its ``NodeKey`` rows (so a node
    verifies its own envelopes and checkpoints, including after a rotation)."""
    row = (
        MemberKey.objects.filter(
            member__code=sender_id, member__active=True, key_id=key_id, valid_from__lte=created
        )
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=created))
        .values_list("public_key", flat=True)
        .first()
    )
    if row is not None:
        return _verify_key(sender_id, row)
    if sender_id == settings.PILAR_NODE_CODE:
        own = (
            NodeKey.objects.filter(key_id=key_id)
            .filter(Q(retired_at__isnull=True) | Q(retired_at__gte=created))
            .values_list("public_key", flat=True)
            .first()
        )
        if own is not None:
            return _verify_key(sender_id, own)
    return None


_verify_keys: dict[tuple[str, str], VerifyKey] = {}


def _verify_key(name: str, public_b64: str) -> VerifyKey:
    # Parsing a public key is cheap but not free; the same few keys verify every message.
    cached = _verify_keys.get((name, public_b64))
    if cached is None:
        cached = VerifyKey.from_public_b64(name, public_b64)
        if len(_verify_keys) > 1000:
            _verify_keys.clear()
        _verify_keys[(name, public_b64)] = cached
    return cached
