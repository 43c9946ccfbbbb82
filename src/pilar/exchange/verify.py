"""``pilar audit verify``: check this node's transparency log and message archive end to end
(docs/federation.md, "pilar audit verify"), naming every failure.

Checks:

1. every leaf's hash from its data, the indexes 0..n-1 without a gap, and the stored hash of
   each leaf;
2. the whole tree: every stored subtree hash (``LogHash``) recomputed from the leaves, and the
   root of every stored checkpoint;
3. every checkpoint's signature (this node's keys, including retiring and retired ones) and
   every cosignature (the auditors' keys in the trust list);
4. every leaf's digest against the archived envelope with its salt, and every archived
   envelope's signature with its sender's key (without the expiry check: old messages);
5. the pairing of events: ``request-sent`` ↔ ``response-received`` or ``delivery-failed``,
   ``request-received`` ↔ ``response-sent``, every response has its request, ``refused``
   stands alone.

Decisions where the contract is silent:

- A retry re-signs a request (new signature, same id) and the archive keeps the newest
  envelope, so for each message and event only the newest leaf must match the archive; the
  older ones are counted as superseded, not failures. The same holds for a refusal row a later
  refusal of the same unverified id overwrote.
- An incoming message refused for its signature or key is archived as received: its envelope's
  signature is not checked (not verifying is why it was refused); our signed refusal is.
- A queued outgoing message younger than its retry horizon (every back-off until the last
  attempt, plus the signature's lifetime) is reported *pending*, not a failure.
- The verifier reads the whole log into memory (about 100 bytes per leaf): fine for millions
  of leaves; a larger log would verify in ranges.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from pilar.exchange.envelope import canonical
from pilar.exchange.keys import VerifyKey
from pilar.exchange.models import (
    Direction,
    ExchangeMessage,
    LogCheckpoint,
    LogCosignature,
    LogEntry,
    LogHash,
    MemberKey,
    MessageStatus,
    NodeKey,
)
from pilar.exchange.translog import merkle, note, tlog

REQUEST_EVENTS = {Direction.OUT: "request-sent", Direction.IN: "request-received"}
RESPONSE_EVENTS = {"response-received", "response-sent"}
# Refusals for these reasons are of envelopes that did not verify (or could not be read).
UNVERIFIED_REASONS = {
    "rjct.json.invalid",
    "rjct.envelope.invalid",
    "rjct.version.invalid",
    "rjct.sender.unknown",
    "rjct.key.unknown",
    "rjct.signature.invalid",
    "rjct.message_ts.invalid",
    "rjct.body.too_large",
    "rjct.receiver.invalid",
    "rjct.action.invalid",
    "rjct.action.not_supported",
    "rjct.message_id.duplicate",
}


@dataclass(frozen=True)
class Finding:
    kind: str  # leaf, tree, checkpoint, cosignature, message
    subject: str  # "leaf 17", "checkpoint 20", "message 3f2a… (request-sent to MX-HUB)"
    detail: str
    index: int | None = None
    size: int | None = None
    message_id: str = ""

    def line(self, status: str = "FAIL") -> str:
        return f"{status} {self.subject}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "subject": self.subject, "detail": self.detail}
        if self.index is not None:
            data["index"] = self.index
        if self.size is not None:
            data["size"] = self.size
        if self.message_id:
            data["message_id"] = self.message_id
        return data


@dataclass
class VerifyReport:
    failures: list[Finding] = field(default_factory=list)
    pending: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, finding: Finding) -> None:
        self.failures.append(finding)

    def lines(self) -> Iterator[str]:
        for finding in self.failures:
            yield finding.line("FAIL")
        for finding in self.pending:
            yield finding.line("PENDING")

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failures": [f.as_dict() for f in self.failures],
            "pending": [f.as_dict() for f in self.pending],
            "counts": dict(self.counts),
        }


def _short(message_id: str) -> str:
    return f"{message_id[:8]}…" if len(message_id) > 8 else message_id


def _message_subject(row: ExchangeMessage, event: str) -> str:
    if row.direction == Direction.OUT:
        return f"message {_short(row.message_id)} ({event} to {row.receiver})"
    return f"message {_short(row.message_id)} ({event} from {row.sender})"


def _retry_horizon() -> dt.timedelta:
    from pilar.exchange import messaging

    attempts = int(getattr(settings, "PILAR_EXCHANGE_MAX_ATTEMPTS", 12))
    waits = sum((messaging._backoff(n) for n in range(1, attempts + 1)), dt.timedelta())
    timeout = float(getattr(settings, "PILAR_EXCHANGE_TIMEOUT_SECONDS", 10))
    ttl = int(getattr(settings, "PILAR_EXCHANGE_TTL_SECONDS", 300))
    return waits + dt.timedelta(seconds=attempts * timeout + ttl)


# --------------------------------------------------------------------------------------------
# 1–2: leaves and tree
# --------------------------------------------------------------------------------------------


@dataclass
class _Leaf:
    pk: int
    index: int
    event: str
    data: str
    salt: str
    message_pk: int | None
    fields: dict[str, Any]


def _check_leaves(report: VerifyReport) -> tuple[list[bytes], list[_Leaf]]:
    hashes: list[bytes] = []
    leaves: list[_Leaf] = []
    rows = (
        LogEntry.objects.filter(index__isnull=False)
        .order_by("index")
        .values_list("pk", "index", "event", "data", "salt", "leaf_hash", "message_id")
    )
    for expected, (pk, index, event, data, salt, stored_hash, message_pk) in enumerate(
        rows.iterator(chunk_size=5000)
    ):
        if index != expected:
            report.fail(
                Finding(
                    "leaf",
                    f"leaf {expected}",
                    _("missing: the next stored leaf has index %(index)s") % {"index": index},
                    index=expected,
                )
            )
            break
        computed = merkle.leaf_hash(data.encode("utf-8"))
        if computed.hex() != stored_hash:
            report.fail(
                Finding(
                    "leaf", f"leaf {index}", _("data does not match its leaf hash"), index=index
                )
            )
        try:
            fields = json.loads(data)
            canonical_ok = canonical(fields).decode("utf-8") == data
        except (ValueError, TypeError):
            fields, canonical_ok = {}, False
        if not canonical_ok or not isinstance(fields, dict):
            report.fail(
                Finding("leaf", f"leaf {index}", _("data is not canonical JSON"), index=index)
            )
            fields = fields if isinstance(fields, dict) else {}
        elif fields.get("event") != event:
            report.fail(
                Finding(
                    "leaf",
                    f"leaf {index}",
                    _("its data says event %(data)s, the entry says %(entry)s")
                    % {"data": fields.get("event"), "entry": event},
                    index=index,
                )
            )
        hashes.append(computed)
        leaves.append(_Leaf(pk, index, event, data, salt, message_pk, fields))
    report.counts["leaves"] = len(hashes)
    report.counts["queued"] = LogEntry.objects.filter(index__isnull=True).count()
    return hashes, leaves


def _check_tree(report: VerifyReport, hashes: list[bytes]) -> dict[int, bytes]:
    """Recompute every stored hash from the leaves, compare with ``LogHash``; return the roots
    of the checkpoint sizes."""
    computed: list[bytes] = []

    def reader(indexes: Any) -> list[bytes]:
        return [computed[i] for i in indexes]

    for n, leaf in enumerate(hashes):
        computed.extend(tlog.stored_hashes_for_record(n, leaf, reader))
    stored_count = 0
    for index, value in (
        LogHash.objects.order_by("index").values_list("index", "hash").iterator(chunk_size=10000)
    ):
        stored_count += 1
        if index >= len(computed):
            report.fail(
                Finding(
                    "tree",
                    f"stored hash {index}",
                    _("beyond the %(count)s hashes of the sequenced leaves")
                    % {"count": len(computed)},
                )
            )
            continue
        if bytes(value) != computed[index]:
            level, n = tlog.split_stored_hash_index(index)
            subject = f"leaf {n}" if level == 0 else f"stored hash {index}"
            report.fail(
                Finding(
                    "tree",
                    subject,
                    _(
                        "the stored hash (level %(level)s, subtree %(n)s) differs from the "
                        "hash of the leaves"
                    )
                    % {"level": level, "n": n},
                    index=n if level == 0 else None,
                )
            )
    if stored_count != len(computed):
        report.fail(
            Finding(
                "tree",
                "stored hashes",
                _("%(stored)s stored, %(expected)s expected for %(leaves)s leaves")
                % {"stored": stored_count, "expected": len(computed), "leaves": len(hashes)},
            )
        )
    return {
        size: tlog.tree_hash(size, reader)
        for size in LogCheckpoint.objects.values_list("size", flat=True)
        if size <= len(hashes)
    }


# --------------------------------------------------------------------------------------------
# 3: checkpoints and cosignatures
# --------------------------------------------------------------------------------------------


def _node_verifiers() -> list[VerifyKey]:
    code = settings.PILAR_NODE_CODE
    return [
        VerifyKey.from_public_b64(code, public)
        for public in NodeKey.objects.values_list("public_key", flat=True)
    ]


def _witness_verifiers(code: str) -> list[VerifyKey]:
    return [
        VerifyKey.from_public_b64(code, public)
        for public in MemberKey.objects.filter(member__code=code).values_list(
            "public_key", flat=True
        )
    ]


def _check_checkpoints(report: VerifyReport, roots: dict[int, bytes], leaf_count: int) -> None:
    verifiers = _node_verifiers()
    bodies: dict[int, str] = {}
    for checkpoint in LogCheckpoint.objects.order_by("size"):
        report.counts["checkpoints"] += 1
        subject = f"checkpoint {checkpoint.size}"

        def fail(detail: str, subject: str = subject, size: int = checkpoint.size) -> None:
            report.fail(Finding("checkpoint", subject, detail, size=size))

        if checkpoint.size > leaf_count:
            fail(_("larger than the %(count)s sequenced leaves") % {"count": leaf_count})
            continue
        if roots.get(checkpoint.size, b"").hex() != checkpoint.root_hash:
            fail(
                _("its root hash differs from the root of the first %(size)s leaves")
                % {"size": checkpoint.size}
            )
        try:
            opened = note.open_note(checkpoint.note, verifiers)
            parsed = note.parse_checkpoint(opened.text)
        except note.NoteError as error:
            fail(_("the signed note does not verify: %(error)s") % {"error": error})
            continue
        if parsed.size != checkpoint.size or parsed.root.hex() != checkpoint.root_hash:
            fail(_("the signed note names another size or root hash than the stored one"))
        bodies[checkpoint.size] = opened.text
    for cosignature in LogCosignature.objects.select_related("checkpoint").order_by("pk"):
        report.counts["cosignatures"] += 1
        size = cosignature.checkpoint.size
        subject = f"cosignature of {cosignature.witness} on checkpoint {size}"
        body = bodies.get(size)
        if body is None:
            continue  # its checkpoint already failed
        problems = []
        for key in _witness_verifiers(cosignature.witness):
            try:
                note.verify_cosignature(body, cosignature.line, key)
                break
            except note.NoteError as error:
                problems.append(str(error))
        else:
            report.fail(
                Finding(
                    "cosignature",
                    subject,
                    problems[-1] if problems else _("the witness has no key in the trust list"),
                    size=size,
                )
            )


# --------------------------------------------------------------------------------------------
# 4–5: archive and pairing
# --------------------------------------------------------------------------------------------


def _expected_envelope(row: ExchangeMessage, event: str) -> dict[str, Any] | None:
    if event in ("request-sent", "request-received", "delivery-failed"):
        return row.envelope
    return row.response


def _digest(salt: str, document: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(bytes.fromhex(salt) + canonical(document)).hexdigest()


def _check_signature(
    report: VerifyReport, row: ExchangeMessage, document: dict[str, Any], what: str
) -> None:
    from pilar.exchange import envelope
    from pilar.exchange.node import resolve_key
    from pilar.exchange.reasons import Refusal

    try:
        params = envelope.parse_signature(document.get("signature", ""))
        # "now" at the signature's creation: every check but the expiry, which old messages
        # are long past.
        envelope.verify(
            document, resolve_key=resolve_key, now=params.created_at, max_ttl=None, skew=0
        )
    except Refusal as refusal:
        report.fail(
            Finding(
                "message",
                _message_subject(row, what),
                _("the archived envelope's signature does not verify: %(reason)s")
                % {"reason": refusal.message()},
                message_id=row.message_id,
            )
        )
    except (KeyError, TypeError, ValueError) as error:
        report.fail(
            Finding(
                "message",
                _message_subject(row, what),
                _("the archived envelope is malformed: %(error)s") % {"error": error},
                message_id=row.message_id,
            )
        )


def _check_archive(report: VerifyReport, leaves: list[_Leaf], now: dt.datetime) -> None:
    by_row: dict[int, dict[str, list[_Leaf]]] = defaultdict(lambda: defaultdict(list))
    for leaf in leaves:
        if leaf.message_pk is None:
            if leaf.event != "refused":
                report.fail(
                    Finding(
                        "leaf",
                        f"leaf {leaf.index}",
                        _("a %(event)s event without its archived message") % {"event": leaf.event},
                        index=leaf.index,
                    )
                )
            continue
        by_row[leaf.message_pk][leaf.event].append(leaf)
    horizon = _retry_horizon()
    for row in ExchangeMessage.objects.order_by("pk").iterator(chunk_size=2000):
        report.counts["messages"] += 1
        events = by_row.pop(row.pk, {})
        request_event = REQUEST_EVENTS.get(Direction(row.direction), "request-sent")
        # 4. Digests: the newest leaf of each event against the archive; older ones were
        # superseded by a retry (see the module's note).
        for event, group in events.items():
            newest = group[-1]
            report.counts["superseded"] += len(group) - 1
            if newest.fields.get("request_id") != row.message_id:
                report.fail(
                    Finding(
                        "leaf",
                        f"leaf {newest.index}",
                        _("it names message %(named)s, its archive row is %(row)s")
                        % {"named": newest.fields.get("request_id"), "row": row.message_id},
                        index=newest.index,
                        message_id=row.message_id,
                    )
                )
            document = _expected_envelope(row, event)
            digest = newest.fields.get("digest", "")
            if not digest:
                continue
            if not isinstance(document, dict) or _digest(newest.salt, document) != digest:
                report.fail(
                    Finding(
                        "message",
                        _message_subject(row, event),
                        _("the archived envelope does not match the digest of leaf %(index)s")
                        % {"index": newest.index},
                        index=newest.index,
                        message_id=row.message_id,
                    )
                )
        # 4. Signatures of the archived envelopes.
        unverified = row.status == MessageStatus.REFUSED and row.reason_code in UNVERIFIED_REASONS
        if isinstance(row.envelope, dict) and not (row.direction == Direction.IN and unverified):
            _check_signature(report, row, row.envelope, request_event)
        if isinstance(row.response, dict) and row.response.get("signature"):
            response_event = (
                "response-received" if row.direction == Direction.OUT else "response-sent"
            )
            if row.status == MessageStatus.REFUSED and row.direction == Direction.IN:
                response_event = "refused"
            _check_signature(report, row, row.response, response_event)
        # 5. Pairing.
        _check_pairing(report, row, events, now, horizon)
    for _orphan_pk, events in by_row.items():
        for group in events.values():
            for leaf in group:
                report.fail(
                    Finding(
                        "leaf",
                        f"leaf {leaf.index}",
                        _("its archived message is missing"),
                        index=leaf.index,
                    )
                )


def _check_pairing(
    report: VerifyReport,
    row: ExchangeMessage,
    events: dict[str, list[_Leaf]],
    now: dt.datetime,
    horizon: dt.timedelta,
) -> None:
    def fail(event: str, detail: str) -> None:
        report.fail(
            Finding("message", _message_subject(row, event), detail, message_id=row.message_id)
        )

    if row.direction == Direction.OUT:
        if "request-sent" not in events:
            fail("request-sent", _("no request-sent event"))
        if "response-received" in events and "request-sent" not in events:
            fail("response-received", _("a response without its request-sent event"))
        ended = "response-received" in events or "delivery-failed" in events
        if ended:
            if row.status in (MessageStatus.ANSWERED, MessageStatus.REFUSED) and (
                "response-received" not in events
            ):
                fail("request-sent", _("answered, but no response-received event"))
            return
        if row.status == MessageStatus.QUEUED and row.created_at + horizon > now:
            report.pending.append(
                Finding(
                    "message",
                    _message_subject(row, "request-sent"),
                    _("waiting for an answer (attempt %(attempts)s)") % {"attempts": row.attempts},
                    message_id=row.message_id,
                )
            )
            return
        fail("request-sent", _("no response-received or delivery-failed event"))
        return
    # Incoming.
    if row.status == MessageStatus.REFUSED:
        if "refused" not in events:
            fail("refused", _("refused, but no refused event"))
        return
    if "request-received" not in events:
        fail("request-received", _("no request-received event"))
    if "response-sent" not in events:
        fail("request-received", _("no response-sent event"))


def log_verify(*, now: dt.datetime | None = None) -> VerifyReport:
    """Run every check; the report lists each failure (and the pending messages)."""
    report = VerifyReport()
    hashes, leaves = _check_leaves(report)
    roots = _check_tree(report, hashes)
    _check_checkpoints(report, roots, len(hashes))
    _check_archive(report, leaves, now or timezone.now())
    return report


# The name the staff UI and the command know it by.
audit_verify = log_verify
