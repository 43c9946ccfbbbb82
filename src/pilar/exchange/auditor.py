"""The auditor: checks and cosigns every member's transparency log (docs/federation.md,
"Auditor"). Run by the scheduler thread of an auditor node and by the job
``exchange.audit_round``.

For each active member with a log (role institute or hub): fetch its newest checkpoint, check
the signature with the member's trust-list keys and the origin ``pilar.exchange/<code>``,
check it is consistent with the checkpoint this auditor last saw (a consistency proof fetched
from the member), cosign it (C2SP tlog-cosignature) and post the cosignature back. A failed
check records a ``WitnessAlert`` and makes no cosignature; the witnessed state stays at the
last good checkpoint, so the alert repeats until the member's log is consistent again.

Decisions where the contract is silent:

- A checkpoint of the same size and root as the one already cosigned is not cosigned again
  (``checked_at`` moves); if posting the cosignature failed, the next round posts it again.
- The same alert (member, kind, detail) is not repeated within an hour, so an unreachable
  member does not fill the alert list every 30 s.
- HTTP goes through ``fetch(method, url, body) -> (status, bytes)``, by default httpx with
  ``PILAR_EXCHANGE_TIMEOUT_SECONDS``; tests pass a function serving the Django test client.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from pilar.exchange.keys import SigningKey, VerifyKey
from pilar.exchange.log import log_origin
from pilar.exchange.models import AlertKind, Member, MemberKey, WitnessAlert, WitnessedLog
from pilar.exchange.translog import merkle, note

logger = logging.getLogger("pilar.exchange.auditor")

Fetch = Callable[[str, str, bytes | None], tuple[int, bytes]]
ALERT_REPEAT_AFTER = dt.timedelta(hours=1)
MAX_RESPONSE_BYTES = 1_000_000


class FetchError(Exception):
    """The member could not be reached or answered something unusable."""


def http_fetch(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    timeout = float(getattr(settings, "PILAR_EXCHANGE_TIMEOUT_SECONDS", 10))
    try:
        response = httpx.request(
            method,
            url,
            content=body,
            headers={"Content-Type": "application/json"} if body is not None else None,
            timeout=timeout,
        )
    except httpx.HTTPError as error:
        raise FetchError(str(error) or type(error).__name__) from error
    return response.status_code, response.content[:MAX_RESPONSE_BYTES]


@dataclass(frozen=True)
class AuditResult:
    member: str
    # cosigned | unchanged | alert
    outcome: str
    size: int | None = None
    kind: str = ""
    detail: str = ""


class _Alert(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def _member_keys(code: str) -> list[VerifyKey]:
    now = timezone.now()
    keys = []
    for public, valid_until in MemberKey.objects.filter(
        member__code=code, valid_from__lte=now
    ).values_list("public_key", "valid_until"):
        if valid_until is None or valid_until >= now:
            keys.append(VerifyKey.from_public_b64(code, public))
    return keys


def _get(fetch: Fetch, url: str) -> bytes:
    try:
        status, body = fetch("GET", url, None)
    except FetchError as error:
        # The transport's own words (httpx), after the URL: nothing to translate.
        raise _Alert(AlertKind.UNREACHABLE, f"{url}: {error}") from error
    if status != 200:
        raise _Alert(
            AlertKind.UNREACHABLE,
            _("%(url)s answered HTTP %(status)s") % {"url": url, "status": status},
        )
    return body


def _consistency(fetch: Fetch, endpoint: str, first: int, second: int) -> list[bytes]:
    url = f"{endpoint}/exchange/v1/log/proof/consistency?first={first}&second={second}"
    body = _get(fetch, url)
    try:
        data = json.loads(body)
        return [base64.b64decode(item, validate=True) for item in data["proof"]]
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise _Alert(
            AlertKind.INCONSISTENT,
            _("the consistency proof from %(first)s to %(second)s is malformed")
            % {"first": first, "second": second},
        ) from error


def _check_member(
    member: Member, fetch: Fetch, witnessed: WitnessedLog
) -> tuple[note.Checkpoint, str, bool]:
    """The member's checked checkpoint, its note, and whether it needs a (new) cosignature.
    Raises ``_Alert`` on any failed check."""
    endpoint = member.endpoint.rstrip("/")
    raw = _get(fetch, f"{endpoint}/exchange/v1/log/checkpoint")
    try:
        text = raw.decode("utf-8")
        opened = note.open_note(text, _member_keys(member.code))
        checkpoint = note.parse_checkpoint(opened.text)
    except (UnicodeDecodeError, note.NoteError) as error:
        raise _Alert(
            AlertKind.BAD_SIGNATURE,
            _("the checkpoint does not verify with %(member)s's keys: %(error)s")
            % {"member": member.code, "error": error},
        ) from error
    if checkpoint.origin != log_origin(member.code):
        raise _Alert(
            AlertKind.BAD_SIGNATURE,
            _("the checkpoint is of the log %(origin)s, not of %(member)s")
            % {"origin": checkpoint.origin, "member": member.code},
        )
    old_size, old_root = witnessed.size, bytes.fromhex(witnessed.root_hash or "")
    if checkpoint.size < old_size:
        raise _Alert(
            AlertKind.ROLLBACK,
            _("the log shrank from %(old)s to %(new)s leaves")
            % {"old": old_size, "new": checkpoint.size},
        )
    if checkpoint.size == old_size and old_size > 0:
        if checkpoint.root != old_root:
            raise _Alert(
                AlertKind.INCONSISTENT,
                _("two different root hashes for the same size %(size)s") % {"size": old_size},
            )
        return checkpoint, opened.text, witnessed.cosigned_at is None
    if old_size > 0:
        proof = _consistency(fetch, endpoint, old_size, checkpoint.size)
        try:
            merkle.verify_consistency(old_size, checkpoint.size, old_root, checkpoint.root, proof)
        except merkle.ProofError as error:
            raise _Alert(
                AlertKind.INCONSISTENT,
                _(
                    "the log of size %(new)s is not an extension of the size %(old)s it had: "
                    "%(error)s"
                )
                % {"new": checkpoint.size, "old": old_size, "error": error},
            ) from error
    return checkpoint, opened.text, True


def _alert(member: str, kind: str, detail: str) -> None:
    recent = WitnessAlert.objects.filter(
        member=member,
        kind=kind,
        detail=detail,
        created_at__gte=timezone.now() - ALERT_REPEAT_AFTER,
    ).exists()
    if not recent:
        WitnessAlert.objects.create(member=member, kind=kind, detail=detail)
    logger.warning("log of %s: %s (%s)", member, detail, kind)


def audit_member(
    member: Member, *, fetch: Fetch = http_fetch, key: SigningKey | None = None
) -> AuditResult:
    """Check, cosign and post for one member."""
    if key is None:
        from pilar.exchange.node import signing_key

        key = signing_key()
    witnessed, _created = WitnessedLog.objects.get_or_create(member=member.code)
    now = timezone.now()
    try:
        checkpoint, body, needs_cosignature = _check_member(member, fetch, witnessed)
    except _Alert as alert:
        with transaction.atomic():
            _alert(member.code, alert.kind, alert.detail)
            WitnessedLog.objects.filter(pk=witnessed.pk).update(checked_at=now)
        return AuditResult(member.code, "alert", kind=alert.kind, detail=alert.detail)
    cosigned_at = witnessed.cosigned_at if not needs_cosignature else None
    detail = ""
    if needs_cosignature:
        line = note.cosign(body, key, int(time.time()))
        payload = json.dumps({"size": checkpoint.size, "cosignature": line}).encode()
        url = f"{member.endpoint.rstrip('/')}/exchange/v1/log/cosignature"
        try:
            status, answer = fetch("POST", url, payload)
        except FetchError as error:
            status, answer = 0, str(error).encode()
        if status in (200, 201):
            cosigned_at = now
        else:
            # Verified but not delivered: the next round posts it again.
            detail = _("the cosignature was not accepted (HTTP %(status)s): %(answer)s") % {
                "status": status,
                "answer": answer[:200].decode("utf-8", "replace"),
            }
            logger.warning("log of %s: %s", member.code, detail)
    with transaction.atomic():
        WitnessedLog.objects.filter(pk=witnessed.pk).update(
            size=checkpoint.size,
            root_hash=checkpoint.root.hex(),
            note=body,
            checked_at=now,
            cosigned_at=cosigned_at,
        )
    outcome = "cosigned" if needs_cosignature and cosigned_at == now else "unchanged"
    if needs_cosignature and cosigned_at != now:
        outcome = "not-delivered"
    return AuditResult(member.code, outcome, size=checkpoint.size, detail=detail)


def audit_round(
    *, fetch: Fetch = http_fetch, key: SigningKey | None = None, job_id: int | None = None
) -> list[AuditResult]:
    """Check every member's log once (members with a log: institutes and the hub). An auditor
    that has no trust list yet has no one to audit and needs no key."""
    members = Member.objects.filter(active=True, role__in=["institute", "hub"])
    if not members.exists():
        return []
    if key is None:
        from pilar.exchange.node import signing_key

        key = signing_key()
    results = []
    members = members.exclude(code=key.name)
    for member in members.order_by("code"):
        try:
            results.append(audit_member(member, fetch=fetch, key=key))
        except Exception as error:  # one member's fault must not stop the round
            logger.exception("auditing %s failed", member.code)
            results.append(AuditResult(member.code, "error", detail=str(error)))
    return results
