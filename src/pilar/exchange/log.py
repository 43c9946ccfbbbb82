"""This node's transparency log in the database (docs/federation.md, "Transparency log").

Writing is two steps, so the exchange's hot path stays cheap:

1. ``log_append`` queues a leaf (``LogEntry`` with ``index`` null) in the caller's transaction:
   the leaf exists exactly when the exchange it records does.
2. ``log_integrate`` (a thread of ``pilar serve``/``pilar worker`` every
   ``PILAR_LOG_INTEGRATE_SECONDS``, and the job ``exchange.log_integrate``) takes the queued
   leaves in ``pk`` order under a lock, gives them the next indexes, stores the tlog hashes of
   the subtrees they complete (``LogHash``, bulk), and signs a checkpoint, all in one
   transaction: a failure anywhere leaves the log as it was, the leaves still queued.

Decisions where the contract is silent:

- ``digest`` is ``sha256:`` + hex SHA-256 of the 32 raw salt bytes followed by the RFC 8785
  canonical JSON of the logged envelope (the salt is stored hex in ``LogEntry.salt``). A leaf
  with no envelope (a refusal of a body that was not JSON) has an empty digest, kid and
  signature.
- A leaf's ``message_id`` is the logged envelope's own message id (a response has its own),
  ``request_id`` the exchange's request id (``ExchangeMessage.message_id``); ``sender``,
  ``receiver`` and ``action`` come from the logged envelope's header when there is one.
- ``ts`` is the time of the append, RFC 3339 UTC with milliseconds.
- The lock is ``pg_advisory_xact_lock`` on PostgreSQL and the write lock SQLite takes at the
  start of every transaction (the project's SQLite connections are ``IMMEDIATE``).
- Proof endpoints serve proofs against any size up to the newest checkpoint's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from pilar.core.errors import ApplicationError, ValidationFailed
from pilar.exchange.envelope import canonical
from pilar.exchange.models import (
    ExchangeMessage,
    LogCheckpoint,
    LogCosignature,
    LogEntry,
    LogHash,
    Member,
    MemberKey,
)
from pilar.exchange.translog import merkle, note, tlog

logger = logging.getLogger("pilar.exchange.log")

LEAF_VERSION = 1
EVENTS = (
    "request-sent",
    "response-received",
    "request-received",
    "response-sent",
    "refused",
    "delivery-failed",
)
MAX_LEAVES_PER_PAGE = 1000
# How many queued leaves one integration takes; more wait for the next round (a few ms later)
# so one transaction never grows without bound after an outage.
INTEGRATE_BATCH = 20_000
# An arbitrary constant naming the log's advisory lock on PostgreSQL.
_ADVISORY_LOCK_KEY = 0x70696C61726C6F67  # "pilarlog"
_QUOTED_PARAM = re.compile(r'([A-Za-z]+)="([^"]*)"')


class LogError(ApplicationError):
    code = "exchange.log"
    status = 400


def log_origin(code: str | None = None) -> str:
    """The checkpoint origin line: ``pilar.exchange/<member code>``."""
    return f"pilar.exchange/{code or settings.PILAR_NODE_CODE}"


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _signature_parts(signature: Any) -> tuple[str, str]:
    """``kidId`` and ``signature`` of an envelope's signature string, tolerantly: the log
    records what was received, and a malformed signature is itself worth recording."""
    if not isinstance(signature, str):
        return "", ""
    params = dict(_QUOTED_PARAM.findall(signature))
    return params.get("kidId", ""), params.get("signature", "")


def envelope_digest(salt_hex: str, envelope: dict[str, Any] | None) -> str:
    """The leaf's salted digest of an envelope (empty when there is none)."""
    if envelope is None:
        return ""
    return "sha256:" + hashlib.sha256(bytes.fromhex(salt_hex) + canonical(envelope)).hexdigest()


def canonical_leaf(leaf: dict[str, Any]) -> str:
    return canonical(leaf).decode("utf-8")


def log_append(
    *,
    event: str,
    envelope: dict[str, Any] | None,
    row: ExchangeMessage | None,
    status: str = "",
    reason_code: str = "",
) -> LogEntry:
    """Queue a leaf recording ``event`` of the exchange ``row`` with ``envelope`` (the envelope
    this event is about: the request for ``request-*``, the response for ``response-*`` and
    ``refused``). Call it inside the exchange's transaction; it writes one row."""
    if event not in EVENTS:
        raise ValueError(f"unknown log event {event!r}")
    header: dict[str, Any] = {}
    if isinstance(envelope, dict) and isinstance(envelope.get("header"), dict):
        header = envelope["header"]
    salt = secrets.token_hex(32)
    kid, signature = _signature_parts(envelope.get("signature") if envelope else None)

    def pick(name: str, fallback: str) -> str:
        value = header.get(name)
        return value if isinstance(value, str) and value else fallback

    request_id = row.message_id if row is not None else pick("request_id", "")
    leaf = {
        "v": LEAF_VERSION,
        "node": settings.PILAR_NODE_CODE,
        "event": event,
        "message_id": pick("message_id", request_id),
        "request_id": request_id,
        "sender": pick("sender_id", row.sender if row is not None else ""),
        "receiver": pick("receiver_id", row.receiver if row is not None else ""),
        "action": pick("action", row.action if row is not None else ""),
        "purpose": row.purpose if row is not None else pick("purpose", ""),
        "status": status or pick("status", ""),
        "reason_code": reason_code or pick("status_reason_code", ""),
        "ts": _rfc3339(timezone.now()),
        "digest": envelope_digest(salt, envelope) if isinstance(envelope, dict) else "",
        "kid": kid,
        "signature": signature,
    }
    data = canonical_leaf(leaf)
    return LogEntry.objects.create(
        event=event,
        data=data,
        salt=salt,
        leaf_hash=merkle.leaf_hash(data.encode("utf-8")).hex(),
        message=row,
    )


# --------------------------------------------------------------------------------------------
# Reading stored hashes
# --------------------------------------------------------------------------------------------


def _read_hashes(indexes: Sequence[int]) -> list[bytes]:
    wanted = list(indexes)
    if not wanted:
        return []
    found = {
        index: bytes(value)
        for index, value in LogHash.objects.filter(index__in=set(wanted)).values_list(
            "index", "hash"
        )
    }
    missing = [index for index in wanted if index not in found]
    if missing:
        raise LogError(
            _("The log is missing stored hash %(index)s.") % {"index": missing[0]},
            code="exchange.log.hash_missing",
        )
    return [found[index] for index in wanted]


class _CachedReader:
    """A hash reader over a dict, falling back to the database (counted, for the tests)."""

    def __init__(self, known: dict[int, bytes]) -> None:
        self.known = known
        self.database_reads = 0

    def __call__(self, indexes: Sequence[int]) -> list[bytes]:
        missing = [index for index in indexes if index not in self.known]
        if missing:
            self.database_reads += 1
            self.known.update(zip(missing, _read_hashes(missing), strict=True))
        return [self.known[index] for index in indexes]


# --------------------------------------------------------------------------------------------
# Integration
# --------------------------------------------------------------------------------------------


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
    # SQLite: the transaction already holds the database's write lock (IMMEDIATE mode).


def log_size() -> int:
    latest = LogCheckpoint.objects.order_by("-size").values_list("size", flat=True).first()
    return int(latest or 0)


def _sign_checkpoint(size: int, root_hash: bytes) -> str:
    from pilar.exchange.node import signing_key

    body = note.format_checkpoint(log_origin(), size, root_hash)
    return note.sign_note(body, [signing_key()])


def _set_indexes(pairs: list[tuple[int, int | None]]) -> None:
    """Give queued entries their indexes, 500 per statement. Django's ``bulk_update`` builds a
    CASE expression per row and is ~100× slower; an UPDATE joined to a VALUES list is one
    pass (PostgreSQL, and SQLite ≥ 3.33, name the VALUES columns column1, column2)."""
    table = connection.ops.quote_name(LogEntry._meta.db_table)
    index_column = connection.ops.quote_name("index")
    with connection.cursor() as cursor:
        for start in range(0, len(pairs), 500):
            chunk = pairs[start : start + 500]
            values = ", ".join(["(%s, %s)"] * len(chunk))
            cursor.execute(
                f"UPDATE {table} SET {index_column} = v.column2 "  # noqa: S608 - names are ours
                f"FROM (VALUES {values}) AS v WHERE {table}.id = v.column1",
                [value for pair in chunk for value in pair],
            )


def log_integrate(*, batch: int = INTEGRATE_BATCH) -> LogCheckpoint | None:
    """Sequence the queued leaves, store their hashes and sign a checkpoint; None when nothing
    was queued. Safe to call concurrently (the second caller waits, then finds nothing) and to
    repeat after a failure (one transaction: all or nothing)."""
    with transaction.atomic():
        _lock()
        queued = list(
            LogEntry.objects.filter(index__isnull=True)
            .order_by("pk")
            .values_list("pk", "leaf_hash")[:batch]
        )
        if not queued:
            return None
        size = log_size()
        # The only old hashes new leaves combine with are the roots of the current tree's
        # complete subtrees (its right edge): one query of at most log2(n) + 1 rows.
        edge = tlog.tree_hash_indexes(size)
        reader = _CachedReader(dict(zip(edge, _read_hashes(edge), strict=True)))
        new_hashes: list[LogHash] = []
        entries: list[LogEntry] = []
        n = size
        for pk, leaf_hex in queued:
            stored = tlog.stored_hashes_for_record(n, bytes.fromhex(leaf_hex), reader)
            start = tlog.stored_hash_index(0, n)
            for offset, value in enumerate(stored):
                reader.known[start + offset] = value
                new_hashes.append(LogHash(index=start + offset, hash=value))
            entries.append(LogEntry(pk=pk, index=n))
            n += 1
        _set_indexes([(entry.pk, entry.index) for entry in entries])
        LogHash.objects.bulk_create(new_hashes, batch_size=1000)
        root_hash = tlog.tree_hash(n, reader)
        return LogCheckpoint.objects.create(
            size=n, root_hash=root_hash.hex(), note=_sign_checkpoint(n, root_hash)
        )


def log_integrate_all() -> LogCheckpoint | None:
    """Integrate until nothing is queued; the newest checkpoint made, if any."""
    latest = None
    while (checkpoint := log_integrate()) is not None:
        latest = checkpoint
    return latest


# --------------------------------------------------------------------------------------------
# Reading the log
# --------------------------------------------------------------------------------------------


def log_checkpoint_latest() -> LogCheckpoint | None:
    return LogCheckpoint.objects.order_by("-size").first()


def log_checkpoint_note(checkpoint: LogCheckpoint) -> str:
    """The checkpoint's signed note with the cosignatures received for it."""
    lines = checkpoint.cosignatures.order_by("witness", "key_id").values_list("line", flat=True)
    return note.add_signature_lines(checkpoint.note, list(lines))


def _check_size(size: int, *, name: str = "size") -> int:
    current = log_size()
    if size < 1 or size > current:
        raise ValidationFailed.single(
            name,
            "out_of_range",
            _("The tree size must be between 1 and %(size)s.") % {"size": current}
            if current
            else _("The log is empty."),
        )
    return current


def _root_for(size: int) -> bytes:
    stored = LogCheckpoint.objects.filter(size=size).values_list("root_hash", flat=True).first()
    if stored:
        return bytes.fromhex(stored)
    return tlog.tree_hash(size, _read_hashes)


@dataclass(frozen=True)
class InclusionProof:
    index: int
    size: int
    leaf_hash: bytes
    proof: list[bytes]
    root_hash: bytes

    def verify(self) -> None:
        merkle.verify_inclusion(self.index, self.size, self.leaf_hash, self.proof, self.root_hash)


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    proof: list[bytes]
    first_root: bytes
    second_root: bytes


def log_inclusion_proof(index: int, size: int) -> InclusionProof:
    """The audit path of leaf ``index`` in the tree of ``size`` (≤ the newest checkpoint)."""
    _check_size(size)
    if not 0 <= index < size:
        raise ValidationFailed.single(
            "index",
            "out_of_range",
            _("The leaf index must be between 0 and %(last)s.") % {"last": size - 1},
        )
    (leaf,) = _read_hashes([tlog.stored_hash_index(0, index)])
    return InclusionProof(
        index=index,
        size=size,
        leaf_hash=leaf,
        proof=tlog.prove_record(size, index, _read_hashes),
        root_hash=_root_for(size),
    )


def log_consistency_proof(first: int, second: int) -> ConsistencyProof:
    """The proof that the tree of ``first`` leaves is a prefix of the tree of ``second``."""
    _check_size(second, name="second")
    if not 0 <= first <= second:
        raise ValidationFailed.single(
            "first",
            "out_of_range",
            _("The first size must be between 0 and %(second)s.") % {"second": second},
        )
    return ConsistencyProof(
        first=first,
        second=second,
        proof=tlog.prove_tree(second, first, _read_hashes),
        first_root=_root_for(first) if first else merkle.EMPTY_ROOT,
        second_root=_root_for(second),
    )


def log_leaves(start: int, end: int) -> list[LogEntry]:
    """Sequenced leaves ``start`` ≤ index < ``end`` (at most 1000, within the newest checkpoint)."""
    current = log_size()
    if start < 0 or end <= start:
        raise ValidationFailed.single(
            "start", "out_of_range", _("The start must be at least 0 and less than the end.")
        )
    if end - start > MAX_LEAVES_PER_PAGE:
        raise ValidationFailed.single(
            "end",
            "too_many",
            _("At most %(count)s leaves can be read at once.") % {"count": MAX_LEAVES_PER_PAGE},
        )
    if end > current:
        raise ValidationFailed.single(
            "end",
            "out_of_range",
            _("The log has %(size)s leaves; the end cannot be beyond that.") % {"size": current},
        )
    return list(
        LogEntry.objects.filter(index__gte=start, index__lt=end)
        .order_by("index")
        .only("index", "data", "leaf_hash")
    )


# --------------------------------------------------------------------------------------------
# Cosignatures from the auditor
# --------------------------------------------------------------------------------------------


def _witness_keys() -> list[tuple[str, Any]]:
    """(member code, VerifyKey) of every active auditor member's current keys."""
    from pilar.exchange.keys import VerifyKey

    now = timezone.now()
    keys = []
    rows = MemberKey.objects.filter(
        member__role="auditor", member__active=True, valid_from__lte=now
    ).select_related("member")
    for row in rows:
        if row.valid_until is not None and row.valid_until < now:
            continue
        keys.append((row.member.code, VerifyKey.from_public_b64(row.member.code, row.public_key)))
    return keys


def log_cosignature_add(*, line_or_note: str, checkpoint_size: int) -> LogCosignature:
    """Verify an auditor's cosignature on this node's checkpoint of ``checkpoint_size`` and
    keep it (once per witness and key). ``line_or_note`` is the cosignature line, or a whole
    cosigned note whose cosignature lines are tried in turn."""
    from pilar.exchange.keys import VerifyKey

    checkpoint = LogCheckpoint.objects.filter(size=checkpoint_size).first()
    if checkpoint is None:
        raise ValidationFailed.single(
            "size",
            "unknown_checkpoint",
            _("This log has no checkpoint of size %(size)s.") % {"size": checkpoint_size},
        )
    body, _signatures = note.split_note(checkpoint.note)
    candidates = [
        line for line in line_or_note.replace("\r\n", "\n").split("\n") if line.startswith("— ")
    ]
    if not candidates:
        raise ValidationFailed.single(
            "cosignature", "malformed", _("No cosignature line was given.")
        )
    witnesses = _witness_keys()
    problems: list[str] = []
    for line in candidates:
        try:
            parsed = note.parse_cosignature(line)
        except note.NoteError as error:
            problems.append(str(error))
            continue
        for code, key in witnesses:
            if code != parsed.name or not isinstance(key, VerifyKey):
                continue
            if parsed.key_hash != note.cosignature_key_hash(key.name, key.public):
                continue
            try:
                note.verify_cosignature(body, line, key)
            except note.NoteError as error:
                raise LogError(
                    _("The cosignature of %(witness)s does not verify on checkpoint %(size)s.")
                    % {"witness": code, "size": checkpoint_size},
                    code="exchange.log.cosignature_invalid",
                    extra={"detail": str(error)},
                ) from error
            with transaction.atomic():
                cosignature, _created = LogCosignature.objects.get_or_create(
                    checkpoint=checkpoint,
                    witness=code,
                    key_id=key.key_id,
                    defaults={"timestamp": parsed.timestamp, "line": parsed.line},
                )
            return cosignature
    if problems and len(problems) == len(candidates):
        raise ValidationFailed.single(
            "cosignature",
            "malformed",
            _("The cosignature line is malformed: %(detail)s") % {"detail": problems[0]},
        )
    raise LogError(
        _("The cosignature is not by an auditor of the trust list."),
        code="exchange.log.cosignature_unknown_witness",
    )


def log_auditor_codes() -> list[str]:
    return list(Member.objects.filter(role="auditor", active=True).values_list("code", flat=True))
