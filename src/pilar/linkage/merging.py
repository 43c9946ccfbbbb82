"""Merging two records of one person into the golden record, and undoing it.

A merge never deletes anything. The merged record stays, with status ``merged`` and
``merged_into`` pointing at the golden record; every row that depends on it (identifiers,
addresses, contacts, family ties on either side, employments, enrolments, contribution records,
claims, awards, and whatever a later app adds) is moved to the golden record and listed in
``Merge.moved`` as ``{"app_label.Model.field": [ids]}``, so an unmerge puts exactly those rows
back.

Which rows depend on a person is not listed by hand: every reverse relation of ``Person``
(``Person._meta.get_fields(include_hidden=True)``, so relations declared with
``related_name="+"`` are found too) is moved, except the few in ``NOT_MOVED``, each with its
reason. A new app's table therefore follows the person without anyone remembering to add it
here.

Rows that cannot all live on one person are found before anything is written, and the merge is
refused with an error naming them (``MergeRefused``), never resolved by dropping a row:

- a unique constraint of the dependent table that includes the person column (two open claims
  for the same benefit; two contribution records in force for the same employer and month);
- a rule the services keep but the database does not (two current enrolments in the same
  programme);
- a row that links the two records to each other (a family tie between them: the registry
  holds them as two people, and the tie cannot become a tie of a person with themselves).

Identifiers are not such a conflict: a golden record may hold two active NSS (the classic IMSS
duplicate) or two CURPs, and all of them stay active, so a search by any of them finds the
golden record. Two records cannot both hold the same active CURP (the registry's unique index);
an inactive copy moves along as history. Ties of both records to the same relative (a mother
recorded twice as the mother) are not a conflict either: both ties move, nothing is lost, and
the steward may end the repeated one after the merge.

Chains: when B is merged into C and A had been merged into B, A's ``merged_into`` is one of the
rows that move (the reverse relation ``registry.Person.merged_into``): A then points at C, and
the move is recorded in the B→C merge, so undoing it points A at B again. A's own rows moved to
B in the first merge and move on to C with B's. The A→B merge can only be undone after the B→C
merge is (``linkage.unmerge_order``), because its rows are on C by then.

Unmerge restores the fields the golden record took from the merged one (only those that still
hold the value the merge gave them: a later correction is kept and the audit note says so), the
merged record's status and ``merged_into``, and moves back every listed row that is still on the
golden record. Rows created on the golden record after the merge stay there.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from pilar.core.actor import Actor
from pilar.core.audit import audit_record, snapshot
from pilar.core.errors import (
    Conflict,
    FieldErrors,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from pilar.core.models import User
from pilar.core.roles import Perm
from pilar.core.text import normalized_full_name
from pilar.linkage.models import MatchPair, Merge, PairStatus
from pilar.linkage.review import audit_pair
from pilar.registry import validation
from pilar.registry.models import Person, RecordStatus, Relation
from pilar.registry.services import PERSON_FIELDS
from pilar.registry.validation import PersonData

# The person's own fields a steward may take from the merged record.
MERGEABLE_FIELDS: tuple[str, ...] = PERSON_FIELDS
# What ``golden_before`` and ``merged_before`` keep: the own fields plus the record's state.
SNAPSHOT_FIELDS: tuple[str, ...] = (*PERSON_FIELDS, "status", "merged_into", "version")
# In ``golden_before``: {field: the value the golden record took from the merged one}.
TAKEN_KEY = "taken_from_merged"
REASON_MAX_LENGTH = 300
# Rows are moved by primary key in batches: SQLite limits the parameters of one statement.
_BATCH = 500

# Reverse relations of Person whose rows stay where they are, and why.
NOT_MOVED: dict[str, str] = {
    # A scored pair records which two records the model compared; the review page must go on
    # showing exactly those two, merged or not.
    "linkage.MatchPair.left_person": "the pair records what was compared",
    "linkage.MatchPair.right_person": "the pair records what was compared",
    # The merges themselves are the history of the records; they are never rewritten.
    "linkage.Merge.golden": "merge history",
    "linkage.Merge.merged": "merge history",
    # The match key is the record's own features (its primary key is the person): the golden
    # record has its own, and ``entry.refresh_match_keys`` brings both up to date.
    "linkage.MatchKey.person": "derived from the record itself",
}


class MergeRefused(Conflict):
    """Rows of the two records cannot all belong to one person; ``extra["conflicts"]`` names
    each with the rows involved. Nothing was changed."""

    code = "linkage.merge_conflict"
    title = _("The records cannot be merged as they are.")


@dataclass(frozen=True)
class Dependent:
    """One reverse relation of Person: the rows of ``model`` whose ``field`` is the person."""

    model: type[models.Model]
    field: str

    @property
    def key(self) -> str:
        return f"{self.model._meta.app_label}.{self.model.__name__}.{self.field}"

    def rows_of(self, person_id: int) -> QuerySet[Any]:
        return self.model._default_manager.filter(**{self.field: person_id})


@dataclass(frozen=True)
class MergeConflict:
    code: str
    message: str
    rows: dict[str, list[int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "rows": self.rows}


def dependents() -> list[Dependent]:
    """Every reverse relation of Person whose rows follow the person in a merge."""
    found = []
    for relation in Person._meta.get_fields(include_hidden=True):
        if not relation.auto_created or relation.concrete:
            continue
        if not (relation.one_to_many or relation.one_to_one):
            continue
        dependent = Dependent(model=relation.related_model, field=relation.field.name)  # type: ignore[arg-type,union-attr]
        if dependent.key not in NOT_MOVED:
            found.append(dependent)
    return sorted(found, key=lambda d: d.key)


# --- conflicts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _BusinessUnique:
    """A "once per person" rule a service enforces without a database constraint."""

    key: str
    other_fields: tuple[str, ...]
    condition: Q


def _business_rules() -> list[_BusinessUnique]:
    return [
        # enrolment_create refuses a second current enrolment in the same programme.
        _BusinessUnique(
            key="registry.Enrolment.person",
            other_fields=("programme",),
            condition=Q(status__in=("active", "suspended")),
        ),
    ]


def _unique_rules(dependent: Dependent) -> list[tuple[tuple[str, ...], Q | None, str]]:
    """The unique constraints of a dependent table that include its person column, as (the
    other columns, the constraint's condition, its name)."""
    meta = dependent.model._meta
    rules: list[tuple[tuple[str, ...], Q | None, str]] = []
    for constraint in meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and dependent.field in (
            constraint.fields or ()
        ):
            others = tuple(name for name in constraint.fields if name != dependent.field)
            rules.append((others, constraint.condition, constraint.name))
    for together in meta.unique_together:
        if dependent.field in together:
            others = tuple(name for name in together if name != dependent.field)
            rules.append((others, None, "unique_together"))
    person_field = meta.get_field(dependent.field)
    if getattr(person_field, "unique", False) and not getattr(person_field, "primary_key", False):
        rules.append(((), None, f"{dependent.key} unique"))
    return rules


def _collisions(
    dependent: Dependent,
    others: Sequence[str],
    condition: Q | None,
    incoming: QuerySet[Any],
    target_id: int,
) -> list[tuple[tuple[Any, ...], list[int], list[int]]]:
    """Rows of ``incoming`` that would collide with the target's own rows under a "once per
    person" rule: (the shared values, the target's row ids, the incoming row ids)."""
    target_rows = dependent.rows_of(target_id)
    if condition is not None:
        incoming = incoming.filter(condition)
        target_rows = target_rows.filter(condition)
    held: dict[tuple[Any, ...], list[int]] = {}
    for pk, *values in target_rows.values_list("pk", *others):
        # NULLs never collide in a unique constraint.
        if all(value is not None for value in values):
            held.setdefault(tuple(values), []).append(pk)
    clashes: dict[tuple[Any, ...], list[int]] = {}
    for pk, *values in incoming.values_list("pk", *others):
        if tuple(values) in held:
            clashes.setdefault(tuple(values), []).append(pk)
    return [(values, held[values], ids) for values, ids in clashes.items()]


def _collision_message(
    key: str, rule_name: str, values: tuple[Any, ...], target_ids: list[int], incoming: list[int]
) -> tuple[str, str]:
    ids = {
        "target": ", ".join(str(pk) for pk in target_ids),
        "incoming": ", ".join(str(pk) for pk in incoming),
    }
    if rule_name == "benefits_claim_one_open_per_kind":
        return "merge.open_claims", gettext(
            "Both records have an open or granted claim for the same benefit (%(benefit)s: "
            "claims %(target)s and %(incoming)s). Withdraw or decide one of them first."
        ) % {"benefit": "/".join(str(v) for v in values), **ids}
    if rule_name == "contrib_record_one_in_force":
        return "merge.contributions_overlap", gettext(
            "Both records have contributions in force from the same employer for the same month "
            "(records %(target)s and %(incoming)s). A correcting declaration must replace one "
            "of them first."
        ) % ids
    if key == "registry.Enrolment.person":
        from pilar.registry.models import Programme

        programme = Programme.objects.filter(pk=values[0]).first()
        return "merge.same_programme", gettext(
            "Both records are enrolled in the programme %(programme)s (enrolments %(target)s "
            "and %(incoming)s). End one of the enrolments first."
        ) % {"programme": programme.code if programme else values[0], **ids}
    return "merge.unique_rows", gettext(
        "Both records have %(rows)s rows that a person may have only once (%(values)s: rows "
        "%(target)s and %(incoming)s)."
    ) % {"rows": key.rsplit(".", 1)[0], "values": ", ".join(str(v) for v in values), **ids}


def _person_fields_of(model: type[models.Model]) -> list[str]:
    """The model's own columns that point at a person."""
    return [
        f.name
        for f in model._meta.get_fields()
        if f.concrete
        and (f.many_to_one or f.one_to_one)
        and getattr(f, "related_model", None) is Person
    ]


def _links_between(
    dependent: Dependent, incoming: QuerySet[Any], target_id: int
) -> list[MergeConflict]:
    """Rows of ``incoming`` whose other person column is the target: moving them would make a
    row that links a person with themselves (a family tie between the two records)."""
    conflicts = []
    for other in _person_fields_of(dependent.model):
        if other == dependent.field:
            continue
        for row in incoming.filter(**{other: target_id}):
            relation = getattr(row, "relation", "")
            label = Relation(relation).label if relation in Relation.values else dependent.key
            conflicts.append(
                MergeConflict(
                    code="merge.records_linked",
                    message=gettext(
                        "The two records are linked to each other (%(link)s, row %(id)s): the "
                        "registry holds them as two different persons. Correct that first."
                    )
                    % {"link": label, "id": row.pk},
                    rows={dependent.key: [row.pk]},
                )
            )
    return conflicts


def move_conflicts(
    *, source_id: int, target_id: int, rows: dict[str, list[int]] | None = None
) -> list[MergeConflict]:
    """What would break if the source's dependent rows (or only ``rows``, by key) moved to the
    target. Empty when the move is safe."""
    conflicts: list[MergeConflict] = []
    business = {rule.key: rule for rule in _business_rules()}
    seen_links: set[tuple[str, int]] = set()
    for dependent in dependents():
        if rows is None:
            incoming = dependent.rows_of(source_id)
        else:
            ids = rows.get(dependent.key, [])
            if not ids:
                continue
            incoming = dependent.model._default_manager.filter(pk__in=ids)
        for conflict in _links_between(dependent, incoming, target_id):
            # A tie is found from both of its columns; name it once.
            row_id = conflict.rows[dependent.key][0]
            model_label = dependent.key.rsplit(".", 1)[0]
            if (model_label, row_id) not in seen_links:
                seen_links.add((model_label, row_id))
                conflicts.append(conflict)
        rules = list(_unique_rules(dependent))
        if dependent.key in business:
            rule = business[dependent.key]
            rules.append((rule.other_fields, rule.condition, "service rule"))
        for others, condition, name in rules:
            for values, target_ids, incoming_ids in _collisions(
                dependent, others, condition, incoming, target_id
            ):
                code, message = _collision_message(
                    dependent.key, name, values, target_ids, incoming_ids
                )
                conflicts.append(
                    MergeConflict(
                        code=code, message=message, rows={dependent.key: target_ids + incoming_ids}
                    )
                )
    return conflicts


# --- moving rows ------------------------------------------------------------------------------


def _move_rows(dependent: Dependent, ids: Sequence[int], target_id: int) -> None:
    manager = dependent.model._default_manager
    for start in range(0, len(ids), _BATCH):
        manager.filter(pk__in=ids[start : start + _BATCH]).update(**{dependent.field: target_id})


def _move_all(source_id: int, target_id: int) -> dict[str, list[int]]:
    """Move every dependent row of the source to the target; returns what moved, by key. Rows
    are selected and moved by id, so a row written meanwhile by a process that does not lock the
    person (a bulk posting) is never moved unrecorded."""
    moved: dict[str, list[int]] = {}
    for dependent in dependents():
        ids = sorted(dependent.rows_of(source_id).values_list("pk", flat=True))
        if ids:
            _move_rows(dependent, ids, target_id)
            moved[dependent.key] = ids
    return moved


# --- services ---------------------------------------------------------------------------------


def _lock_persons(actor: Actor, first_id: int, second_id: int) -> tuple[Person, Person]:
    """Both persons, locked in id order (two merges of the same records never deadlock), if the
    actor may see both; one outside the actor's region is reported as not found."""
    locked = {
        p.pk: p
        for p in Person.objects.select_for_update()
        .filter(pk__in=(first_id, second_id))
        .order_by("pk")
    }
    for person_id in (first_id, second_id):
        person = locked.get(person_id)
        if person is None or not actor.sees_region(person.region):
            raise NotFound(extra={"entity": "person", "id": person_id})
    return locked[first_id], locked[second_id]


def _root_of(person: Person) -> int:
    """The golden record at the end of a chain of merges."""
    seen = {person.pk}
    current = person
    while current.merged_into_id is not None and current.merged_into_id not in seen:
        seen.add(current.merged_into_id)
        parent = Person.objects.filter(pk=current.merged_into_id).first()
        if parent is None:
            break
        current = parent
    return current.pk


def _staff_member(actor: Actor) -> User:
    """Merges are a steward's act and name the steward; a system actor cannot make one."""
    if actor.user is None:
        raise PermissionDenied(
            _("A merge is made by a signed-in data steward, not by a system process.")
        )
    return actor.user


def _clean_reason(reason: str, errors: FieldErrors, message: str) -> str:
    text = (reason or "").strip()
    if not text:
        errors.add("reason", "required", message)
    elif len(text) > REASON_MAX_LENGTH:
        errors.add(
            "reason",
            "too_long",
            gettext("At most %(max)d characters.") % {"max": REASON_MAX_LENGTH},
        )
    return text


def _pair_for_merge(pair_id: int, golden: Person, merged: Person) -> MatchPair:
    pair = MatchPair.objects.select_for_update().filter(pk=pair_id).first()
    if pair is None:
        raise NotFound(extra={"entity": "linkage.pair", "id": pair_id})
    if {pair.left_person_id, pair.right_person_id} != {golden.pk, merged.pk}:
        raise ValidationFailed.single(
            "pair_id",
            "merge.pair_mismatch",
            _("This pair is not these two records."),
        )
    if pair.status == PairStatus.DIFFERENT:
        raise Conflict(
            _(
                "This pair was decided to be two different persons. Reopen it with a reason "
                "before merging."
            ),
            code="linkage.pair_decided",
        )
    return pair


def _taken_values(golden: Person, merged: Person, take: Iterable[str]) -> dict[str, Any]:
    """The golden record's own fields with the chosen ones from the merged record, validated
    with the registry's entry filters (a death date before the birth date is refused)."""
    values = {name: getattr(golden, name) for name in MERGEABLE_FIELDS}
    for name in take:
        values[name] = getattr(merged, name)
    errors = FieldErrors()
    cleaned = validation.clean_person(PersonData(**values), errors)
    errors.raise_if_any()
    return cleaned


def _refresh_match_keys(person_ids: list[int]) -> None:
    """Bring the point-of-entry match keys up to date, when the entry module offers it."""
    try:
        from pilar.linkage import entry
    except ImportError:
        return
    refresh = getattr(entry, "refresh_match_keys", None)
    if refresh is not None:
        refresh(person_ids)


def _changes_summary(moved: dict[str, list[int]]) -> dict[str, list[Any]]:
    return {f"moved.{key}": [None, len(ids)] for key, ids in sorted(moved.items())}


@transaction.atomic(durable=True)
def merge_persons(
    *,
    actor: Actor,
    golden_id: int,
    merged_id: int,
    reason: str,
    pair_id: int | None = None,
    take_from_merged: Iterable[str] = (),
) -> Merge:
    """Merge record ``merged_id`` into the golden record ``golden_id`` (see the module's
    docstring for what moves). ``take_from_merged`` names the person fields (names, birth data,
    sex…) whose value the golden record takes from the merged one. With ``pair_id`` the pair
    that found the two is decided "same person" in the same transaction.

    Needs ``person.merge`` and both records in the actor's region. Raises ``ValidationFailed``
    (no reason, an unknown field, one record given twice, values that do not fit together),
    ``Conflict`` (a record already merged, a pair decided "different"), ``MergeRefused`` (rows
    that cannot all belong to one person) — and changes nothing then."""
    actor.require(Perm.PERSON_MERGE)
    staff_member = _staff_member(actor)
    take = set(take_from_merged)
    errors = FieldErrors()
    reason = _clean_reason(reason, errors, gettext("Say why the two records are one person."))
    unknown = sorted(take - set(MERGEABLE_FIELDS))
    if unknown:
        errors.add(
            "take_from_merged",
            "field.unknown",
            gettext("These are not fields of a person: %(names)s.") % {"names": ", ".join(unknown)},
        )
    if golden_id == merged_id:
        errors.add(
            "merged_id", "merge.same_record", gettext("A record cannot be merged into itself.")
        )
    errors.raise_if_any()

    golden, merged = _lock_persons(actor, golden_id, merged_id)
    if merged.status == RecordStatus.MERGED:
        raise Conflict(
            gettext("Record %(merged)s has already been merged into record %(golden)s.")
            % {"merged": merged.pk, "golden": merged.merged_into_id},
            code="linkage.already_merged",
            extra={"golden_id": merged.merged_into_id},
        )
    if golden.status == RecordStatus.MERGED:
        root = _root_of(golden)
        raise Conflict(
            gettext(
                "Record %(golden)s has been merged into record %(root)s: merge into that "
                "record instead."
            )
            % {"golden": golden.pk, "root": root},
            code="linkage.golden_merged",
            extra={"golden_id": root},
        )
    pair = _pair_for_merge(pair_id, golden, merged) if pair_id is not None else None
    conflicts = move_conflicts(source_id=merged.pk, target_id=golden.pk)
    if conflicts:
        raise MergeRefused(
            " ".join(c.message for c in conflicts),
            extra={"conflicts": [c.as_dict() for c in conflicts]},
        )
    values = _taken_values(golden, merged, take) if take else {}

    golden_before = snapshot(golden, SNAPSHOT_FIELDS)
    merged_before = snapshot(merged, SNAPSHOT_FIELDS)
    moved = _move_all(merged.pk, golden.pk)
    now = timezone.now()

    merged.status = RecordStatus.MERGED
    merged.merged_into = golden
    merged.version += 1
    merged.updated_at = now
    merged.save(update_fields=["status", "merged_into", "version", "updated_at"])

    taken_changes: dict[str, list[Any]] = {}
    for name in sorted(take):
        if values[name] != getattr(golden, name):
            taken_changes[name] = [golden_before[name], snapshot(merged, [name])[name]]
            setattr(golden, name, values[name])
    # Which fields the golden record took, with the value it took: an unmerge restores exactly
    # these, and only while they still hold that value.
    golden_before[TAKEN_KEY] = {name: snapshot(golden, [name])[name] for name in taken_changes}
    golden.normalized_name = normalized_full_name(
        golden.given_names, golden.paternal_surname, golden.maternal_surname
    )
    golden.version += 1
    golden.updated_at = now
    golden.save()

    merge = Merge.objects.create(
        golden=golden,
        merged=merged,
        pair=pair,
        reason=reason,
        moved=moved,
        golden_before=golden_before,
        merged_before=merged_before,
        created_by=staff_member,
        created_at=now,
    )
    if pair is not None and pair.status != PairStatus.SAME:
        before = pair.status
        pair.status = PairStatus.SAME
        pair.decided_by = actor.user
        pair.decided_at = now
        pair.decision_note = reason
        pair.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        audit_pair(
            actor, pair, "linkage.pair.decide", {"status": [before, PairStatus.SAME.value]}, reason
        )

    moved_summary = _changes_summary(moved)
    audit_record(
        actor=actor,
        action="person.merge",
        entity_type="linkage.merge",
        entity_id=merge.pk,
        person_id=golden.pk,
        changes={"merged_record": [None, merged.pk], **taken_changes, **moved_summary},
        note=reason,
    )
    audit_record(
        actor=actor,
        action="person.merge",
        entity_type="linkage.merge",
        entity_id=merge.pk,
        person_id=merged.pk,
        changes={
            "status": [merged_before["status"], RecordStatus.MERGED.value],
            "merged_into": [None, golden.pk],
            **moved_summary,
        },
        note=reason,
    )
    _refresh_match_keys([golden.pk, merged.pk])
    return merge


def _restore_value(name: str, stored: Any) -> Any:
    field_ = Person._meta.get_field(name)
    if stored is None:
        return None
    if isinstance(field_, models.DateField):
        return datetime.date.fromisoformat(stored) if isinstance(stored, str) else stored
    return stored


@dataclass
class UnmergeResult:
    merge: Merge
    # Fields of the golden record changed since the merge: kept as they are now.
    kept_fields: list[str] = field(default_factory=list)
    # Rows the merge moved that are no longer on the golden record, by key.
    not_returned: dict[str, list[int]] = field(default_factory=dict)


@transaction.atomic(durable=True)
def unmerge(*, actor: Actor, merge_id: int, reason: str) -> UnmergeResult:
    """Undo a merge: every row it moved that is still on the golden record goes back to the
    merged record, the fields the golden record took from it get their earlier values (unless
    corrected since), and the merged record gets its status back. Rows added to the golden
    record after the merge stay on it. Both records' versions go up.

    Needs ``person.merge``. Raises ``Conflict`` for a merge already undone, or one whose golden
    record has since been merged into another (undo that merge first)."""
    actor.require(Perm.PERSON_MERGE)
    errors = FieldErrors()
    reason = _clean_reason(reason, errors, gettext("Say why the merge is undone."))
    errors.raise_if_any()
    merge = Merge.objects.select_for_update().filter(pk=merge_id).first()
    if merge is None:
        raise NotFound(extra={"entity": "linkage.merge", "id": merge_id})
    golden, merged = _lock_persons(actor, merge.golden_id, merge.merged_id)
    if merge.unmerged_at is not None:
        raise Conflict(
            gettext("This merge was already undone."),
            code="linkage.already_unmerged",
        )
    if golden.status == RecordStatus.MERGED:
        root = _root_of(golden)
        raise Conflict(
            gettext(
                "Record %(golden)s has since been merged into record %(root)s: undo that "
                "merge first."
            )
            % {"golden": golden.pk, "root": root},
            code="linkage.unmerge_order",
            extra={"golden_id": root},
        )
    if merged.status != RecordStatus.MERGED or merged.merged_into_id != golden.pk:
        raise Conflict(
            gettext("Record %(merged)s is no longer merged into record %(golden)s.")
            % {"merged": merged.pk, "golden": golden.pk},
            code="linkage.merge_state",
        )

    by_key = {d.key: d for d in dependents()}
    back: dict[str, list[int]] = {}
    not_returned: dict[str, list[int]] = {}
    for key, ids in merge.moved.items():
        dependent = by_key.get(key)
        if dependent is None:
            # A table that no longer exists or is no longer moved: nothing to put back.
            not_returned[key] = list(ids)
            continue
        still = set(
            dependent.model._default_manager.filter(
                pk__in=ids, **{dependent.field: golden.pk}
            ).values_list("pk", flat=True)
        )
        back[key] = sorted(still)
        gone = sorted(set(ids) - still)
        if gone:
            not_returned[key] = gone
    conflicts = move_conflicts(source_id=golden.pk, target_id=merged.pk, rows=back)
    if conflicts:
        raise MergeRefused(
            " ".join(c.message for c in conflicts),
            extra={"conflicts": [c.as_dict() for c in conflicts]},
        )
    for key, ids in back.items():
        if ids:
            _move_rows(by_key[key], ids, merged.pk)

    now = timezone.now()
    restored: dict[str, list[Any]] = {}
    kept: list[str] = []
    taken = merge.golden_before.get(TAKEN_KEY) or {}
    for name, value_set in sorted(taken.items()):
        if name not in MERGEABLE_FIELDS:
            continue
        current = snapshot(golden, [name])[name]
        if current == value_set:
            before_value = merge.golden_before.get(name)
            setattr(golden, name, _restore_value(name, before_value))
            restored[name] = [current, before_value]
        else:
            # Corrected after the merge: the correction is newer than both records' values.
            kept.append(name)
    golden.normalized_name = normalized_full_name(
        golden.given_names, golden.paternal_surname, golden.maternal_surname
    )
    golden.version += 1
    golden.updated_at = now
    golden.save()

    merged.status = merge.merged_before.get("status") or RecordStatus.ACTIVE
    merged.merged_into_id = merge.merged_before.get("merged_into")
    merged.version += 1
    merged.updated_at = now
    merged.save(update_fields=["status", "merged_into", "version", "updated_at"])

    merge.unmerged_by = actor.user
    merge.unmerged_at = now
    merge.unmerge_reason = reason
    merge.save(update_fields=["unmerged_by", "unmerged_at", "unmerge_reason"])

    pair = (
        MatchPair.objects.select_for_update().filter(pk=merge.pair_id).first()
        if merge.pair_id
        else None
    )
    if pair is not None and pair.status == PairStatus.SAME:
        # The "same person" decision is what the unmerge withdraws: the pair goes back to the
        # queue for a fresh decision rather than staying marked as a match nobody stands by.
        pair.status = PairStatus.PENDING
        pair.decided_by = None
        pair.decided_at = None
        pair.decision_note = ""
        pair.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        audit_pair(
            actor,
            pair,
            "linkage.pair.reopen",
            {"status": [PairStatus.SAME.value, PairStatus.PENDING.value]},
            reason,
        )

    returned = {f"returned.{key}": [None, len(ids)] for key, ids in sorted(back.items()) if ids}
    note = reason
    if kept:
        note = f"{reason} — " + gettext("kept as corrected since the merge: %(fields)s") % {
            "fields": ", ".join(kept)
        }
    audit_record(
        actor=actor,
        action="person.unmerge",
        entity_type="linkage.merge",
        entity_id=merge.pk,
        person_id=golden.pk,
        changes={"merged_record": [merged.pk, None], **restored, **returned},
        note=note,
    )
    audit_record(
        actor=actor,
        action="person.unmerge",
        entity_type="linkage.merge",
        entity_id=merge.pk,
        person_id=merged.pk,
        changes={
            "status": [RecordStatus.MERGED.value, merged.status],
            "merged_into": [golden.pk, merged.merged_into_id],
            **returned,
        },
        note=note,
    )
    _refresh_match_keys([golden.pk, merged.pk])
    return UnmergeResult(merge=merge, kept_fields=kept, not_returned=not_returned)
