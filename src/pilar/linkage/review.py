"""Review decisions on scored pairs: a data steward says whether the two records are the same
person, different persons, or leaves the pair for later (skip).

A decision is final: deciding a pair again is refused (``linkage.pair_decided``), so two
stewards working the same queue cannot silently overwrite each other. A steward who finds a
decision wrong reopens the pair with a reason (``reopen_pair``), which puts it back in the queue.
A skipped pair stays open and can be decided later. Every decision and reopening is audited on
each registry record of the pair (entity ``linkage.pair``).

"Same person" on two registry records is normally recorded by the merge itself
(``merging.merge_persons`` with ``pair_id``), in one transaction with the merge; ``decide_pair``
records it without merging (an external list's row, or a merge to be made later).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from pilar.core.actor import Actor
from pilar.core.audit import audit_record
from pilar.core.errors import Conflict, FieldErrors, NotFound, ValidationFailed
from pilar.core.roles import Perm
from pilar.linkage.models import MatchPair, Merge, PairStatus
from pilar.registry.models import Person

NOTE_MAX_LENGTH = 300


class Decision:
    """The decisions a reviewer can take, as the API and forms spell them."""

    SAME = "same"
    DIFFERENT = "different"
    SKIP = "skip"

    ALL = (SAME, DIFFERENT, SKIP)


_STATUS_OF = {
    Decision.SAME: PairStatus.SAME,
    Decision.DIFFERENT: PairStatus.DIFFERENT,
    Decision.SKIP: PairStatus.SKIPPED,
}
# Decided for good: only a reopening changes these.
FINAL_STATUSES = (PairStatus.SAME, PairStatus.DIFFERENT)


class PairDecided(Conflict):
    code = "linkage.pair_decided"
    title = _("This pair has already been decided. Reopen it with a reason to decide again.")


def pair_for_write(actor: Actor, pair_id: int, permission: str) -> MatchPair:
    """The pair, locked for the rest of the transaction, if the actor may act on it: the
    permission, and every registry record of the pair in the actor's region (a pair with a
    record elsewhere is reported as not found, like the record itself)."""
    actor.require(permission)
    pair = MatchPair.objects.select_for_update().filter(pk=pair_id).first()
    if pair is None:
        raise NotFound(extra={"entity": "linkage.pair", "id": pair_id})
    person_ids = [pk for pk in (pair.left_person_id, pair.right_person_id) if pk is not None]
    regions = set(Person.objects.filter(pk__in=person_ids).values_list("region", flat=True))
    if not all(actor.sees_region(region) for region in regions):
        raise NotFound(extra={"entity": "linkage.pair", "id": pair_id})
    return pair


def audit_pair(
    actor: Actor, pair: MatchPair, action: str, changes: dict[str, Any], note: str
) -> None:
    """A pair's decision concerns both of its registry records: one event on each record's
    history (an external list's row has no record of its own)."""
    for person_id in sorted({pk for pk in (pair.left_person_id, pair.right_person_id) if pk}):
        audit_record(
            actor=actor,
            action=action,
            entity_type="linkage.pair",
            entity_id=pair.pk,
            person_id=person_id,
            changes=changes,
            note=note,
        )


def _clean_note(note: str, *, required: bool, message: str) -> str:
    text = (note or "").strip()
    errors = FieldErrors()
    if required and not text:
        errors.add("note", "required", message)
    elif len(text) > NOTE_MAX_LENGTH:
        errors.add(
            "note", "too_long", gettext("At most %(max)d characters.") % {"max": NOTE_MAX_LENGTH}
        )
    errors.raise_if_any()
    return text


@transaction.atomic(durable=True)
def decide_pair(*, actor: Actor, pair_id: int, decision: str, note: str = "") -> MatchPair:
    """Record a reviewer's decision on a pair: ``same``, ``different`` or ``skip``.

    Needs ``linkage.review`` and the pair's records in the actor's region. A pair already
    decided "same" or "different" is refused with ``PairDecided`` (reopen it first); a skipped
    or automatically linked pair can be decided. Raises ``ValidationFailed`` for an unknown
    decision or an over-long note."""
    if decision not in Decision.ALL:
        raise ValidationFailed.single(
            "decision",
            "invalid_choice",
            _("Choose same, different or skip."),
        )
    text = _clean_note(note, required=False, message="")
    pair = pair_for_write(actor, pair_id, Perm.LINKAGE_REVIEW)
    if pair.status in FINAL_STATUSES:
        raise PairDecided(extra={"status": pair.status})
    before = pair.status
    pair.status = _STATUS_OF[decision]
    pair.decided_by = actor.user
    pair.decided_at = timezone.now()
    pair.decision_note = text
    pair.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit_pair(actor, pair, "linkage.pair.decide", {"status": [before, pair.status]}, text)
    return pair


@transaction.atomic(durable=True)
def reopen_pair(*, actor: Actor, pair_id: int, reason: str) -> MatchPair:
    """Put a decided pair back in the queue (``pending``), saying why. A pair whose "same
    person" decision was carried out by a merge still in force is refused: undo the merge
    instead (which reopens the pair itself)."""
    text = _clean_note(reason, required=True, message=gettext("Say why the decision is reopened."))
    pair = pair_for_write(actor, pair_id, Perm.LINKAGE_REVIEW)
    if pair.status == PairStatus.PENDING:
        raise Conflict(gettext("This pair is already awaiting review."), code="linkage.pair_open")
    active_merge = Merge.objects.filter(pair=pair, unmerged_at__isnull=True).first()
    if active_merge is not None:
        raise Conflict(
            gettext("The records of this pair were merged (merge %(id)s): undo the merge instead.")
            % {"id": active_merge.pk},
            code="linkage.pair_merged",
            extra={"merge_id": active_merge.pk},
        )
    before = pair.status
    pair.status = PairStatus.PENDING
    pair.decided_by = None
    pair.decided_at = None
    pair.decision_note = ""
    pair.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit_pair(
        actor, pair, "linkage.pair.reopen", {"status": [before, PairStatus.PENDING.value]}, text
    )
    return pair
