"""Reads of record linkage for review: the queue of scored pairs, one pair side by side with its
match-weight breakdown, merges and what they moved, and what the person page says about a
record's merges.

Every read that shows a person's data (a pair's page, a merge's page) checks the actor's
permission and region and is written to the access log, as the registry's own reads are. Lists
are not record reads and are not logged per row.
"""

from __future__ import annotations

import datetime
import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from pilar.core.actor import Actor
from pilar.core.audit import access_record
from pilar.core.errors import NotFound, ValidationFailed
from pilar.core.identifiers import CURP, NSS
from pilar.core.pagination import Page, paginate
from pilar.core.regions import STATES
from pilar.core.roles import Perm
from pilar.core.text import fold
from pilar.linkage.models import LinkageRun, MatchPair, Merge, PairStatus
from pilar.registry.models import Identifier, Person, RecordStatus, Sex


def _purpose(given: str) -> str:
    """The purpose logged with a read: the caller's own, or else "record linkage review" in
    the reader's language, as a clerk would have typed it."""
    return given or gettext("Record linkage review")


# --- agreement of two values ------------------------------------------------------------------


class Agreement:
    """How two values of one field compare, in words and as a badge (never colour alone)."""

    AGREES = "agrees"
    CLOSE = "close"
    DIFFERS = "differs"
    MISSING = "missing"


AGREEMENT_LABELS: dict[str, Promise] = {
    Agreement.AGREES: _("Agrees"),
    Agreement.CLOSE: _("Close"),
    Agreement.DIFFERS: _("Differs"),
    Agreement.MISSING: _("Missing"),
}
# Pilar's badge classes: green, amber, red, grey.
AGREEMENT_BADGES = {
    Agreement.AGREES: "badge--active",
    Agreement.CLOSE: "badge--suspended",
    Agreement.DIFFERS: "badge--error",
    Agreement.MISSING: "badge--inactive",
}

# The fields shown side by side, in order, with their labels.
COMPARED_FIELDS: tuple[tuple[str, Promise], ...] = (
    ("given_names", _("Given names")),
    ("paternal_surname", _("Paternal surname")),
    ("maternal_surname", _("Maternal surname")),
    ("sex", _("Sex")),
    ("birth_date", _("Birth date")),
    ("birth_state", _("State of birth")),
    ("curp", _("CURP")),
    ("nss", _("NSS")),
)
_NAME_FIELDS = {"given_names", "paternal_surname", "maternal_surname"}
_SIMILAR = 0.85


def _as_date(text: str) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(text[:10])
    except ValueError:
        return None


def _close_dates(first: str, second: str) -> bool:
    """Day and month swapped, one digit wrong, or within ten days (the model's near levels)."""
    one, two = _as_date(first), _as_date(second)
    if one is None or two is None:
        return False
    if one.day <= 12 and one.month != one.day:
        try:
            if one.replace(month=one.day, day=one.month) == two:
                return True
        except ValueError:
            pass
    digits_one, digits_two = one.strftime("%Y%m%d"), two.strftime("%Y%m%d")
    if sum(a != b for a, b in zip(digits_one, digits_two, strict=True)) == 1:
        return True
    return abs((one - two).days) <= 10


def _close_values(name: str, first: str, second: str) -> bool:
    if name == "birth_date":
        return _close_dates(first, second)
    if name == "curp":
        return first[:16] == second[:16] or _ratio(first[:16], second[:16]) >= 0.85
    if name in _NAME_FIELDS:
        if set(first.split()) & set(second.split()):
            return True
        return _ratio(first, second) >= _SIMILAR
    return False


def _ratio(first: str, second: str) -> float:
    return difflib.SequenceMatcher(None, first, second).ratio()


def _normal(name: str, value: str) -> str:
    if name == "birth_date":
        return (value or "").strip()[:10]
    return fold(value or "")


def compare_values(
    name: str,
    left: Sequence[str],
    right: Sequence[str],
    *,
    left_other_surname: str = "",
    right_other_surname: str = "",
) -> str:
    """The agreement of one field's values on the two sides (a side may hold several: a golden
    record with two NSS). Accents and case do not count; a surname found in the other position
    of the other side is "close" (the two surnames swapped)."""
    ones = [_normal(name, value) for value in left if _normal(name, value)]
    twos = [_normal(name, value) for value in right if _normal(name, value)]
    if not ones or not twos:
        return Agreement.MISSING
    if set(ones) & set(twos):
        return Agreement.AGREES
    if any(_close_values(name, one, two) for one in ones for two in twos):
        return Agreement.CLOSE
    swapped = fold(right_other_surname) in ones or fold(left_other_surname) in twos
    if name in ("paternal_surname", "maternal_surname") and swapped:
        return Agreement.CLOSE
    return Agreement.DIFFERS


# --- one side of a pair -----------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One record of a pair: a registry person, or a row of an external list."""

    person: Person | None
    row: int | None
    values: dict[str, list[str]]

    @property
    def is_person(self) -> bool:
        return self.person is not None


def _person_values(person: Person, identifiers: Sequence[Identifier]) -> dict[str, list[str]]:
    held = [i for i in identifiers if i.person_id == person.pk and i.is_active]
    return {
        "given_names": [person.given_names],
        "paternal_surname": [person.paternal_surname],
        "maternal_surname": [person.maternal_surname],
        "sex": [person.sex],
        "birth_date": [person.birth_date.isoformat()],
        "birth_state": [person.birth_state],
        "curp": sorted(i.value for i in held if i.scheme == CURP),
        "nss": sorted(i.value for i in held if i.scheme == NSS),
    }


def _row_values(record: Mapping[str, Any]) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for name, _label in COMPARED_FIELDS:
        value = record.get(name)
        values[name] = [] if value in (None, "") else [str(value)]
    return values


@dataclass(frozen=True)
class FieldRow:
    name: str
    label: Promise
    left: list[str]
    right: list[str]
    agreement: str

    @property
    def agreement_label(self) -> Promise:
        return AGREEMENT_LABELS[self.agreement]

    @property
    def badge(self) -> str:
        return AGREEMENT_BADGES[self.agreement]


def _display(name: str, values: Sequence[str]) -> list[str]:
    if name == "sex":
        labels = dict(Sex.choices)
        return [str(labels.get(value, value)) for value in values]
    if name == "birth_state":
        return [STATES.get(value, value) for value in values]
    return list(values)


def field_rows(left: Side, right: Side) -> list[FieldRow]:
    rows = []
    for name, label in COMPARED_FIELDS:
        other = {"paternal_surname": "maternal_surname", "maternal_surname": "paternal_surname"}
        other_name = other.get(name)
        agreement = compare_values(
            name,
            left.values.get(name, []),
            right.values.get(name, []),
            left_other_surname=(left.values.get(other_name) or [""])[0] if other_name else "",
            right_other_surname=(right.values.get(other_name) or [""])[0] if other_name else "",
        )
        rows.append(
            FieldRow(
                name=name,
                label=label,
                left=_display(name, left.values.get(name, [])),
                right=_display(name, right.values.get(name, [])),
                agreement=agreement,
            )
        )
    return rows


# --- the match-weight breakdown ---------------------------------------------------------------


@dataclass(frozen=True)
class BreakdownRow:
    """One comparison's part in the match weight: its level, Bayes factor and partial weight
    (log2 of the Bayes factor), with the values compared."""

    comparison: str
    label: Any
    level: str
    level_label: Any
    bayes_factor: float | None
    weight: float | None
    left: Any
    right: Any
    agreement: str

    @property
    def agreement_label(self) -> Promise:
        return AGREEMENT_LABELS[self.agreement]

    @property
    def badge(self) -> str:
        return AGREEMENT_BADGES[self.agreement]

    @property
    def magnitude(self) -> float:
        return abs(self.weight) if self.weight is not None else 0.0

    @property
    def direction(self) -> str:
        if self.weight is None or self.weight == 0:
            return "none"
        return "for" if self.weight > 0 else "against"


def _labels() -> tuple[Mapping[str, Any], Mapping[tuple[str, str], Any]]:
    """The translated comparison and level names the point-of-entry screen uses, when that
    module is present; otherwise the model's own (English) labels are shown."""
    try:
        from pilar.linkage.entry import COMPARISON_LABELS, LEVEL_LABELS
    except ImportError:
        return {}, {}
    return COMPARISON_LABELS, LEVEL_LABELS


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def breakdown_rows(breakdown: Sequence[Mapping[str, Any]]) -> list[BreakdownRow]:
    comparison_labels, level_labels = _labels()
    rows = []
    for item in breakdown:
        if not isinstance(item, Mapping):
            continue
        comparison = str(item.get("comparison", ""))
        level = str(item.get("level", ""))
        weight = _number(item.get("weight"))
        if level == "null":
            agreement = Agreement.MISSING
        elif level == "exact":
            agreement = Agreement.AGREES
        elif level == "else" or (weight is not None and weight < 0):
            agreement = Agreement.DIFFERS
        else:
            agreement = Agreement.CLOSE
        rows.append(
            BreakdownRow(
                comparison=comparison,
                label=comparison_labels.get(comparison, comparison),
                level=level,
                level_label=level_labels.get((comparison, level), item.get("label") or level),
                bayes_factor=_number(item.get("bayes_factor")),
                weight=weight,
                left=item.get("left"),
                right=item.get("right"),
                agreement=agreement,
            )
        )
    return rows


@dataclass(frozen=True)
class Prior:
    """λ, the probability that two records drawn at random are the same person, and its weight
    log2(λ / (1 − λ)): where every pair starts before the comparisons speak."""

    probability: float
    weight: float
    from_model: bool


def prior_of(pair: MatchPair, rows: Sequence[BreakdownRow]) -> Prior | None:
    """λ as the run's model states it, or else as implied by the stored total: the total
    match weight is the prior weight plus the partial weights."""
    model = pair.run.model if pair.run_id and pair.run.model_id else None
    if model is not None:
        splink = (model.definition or {}).get("splink") or {}
        value = _number(splink.get("probability_two_random_records_match"))
        if value is not None and 0 < value < 1:
            return Prior(value, math.log2(value / (1 - value)), True)
    partial = [row.weight for row in rows if row.weight is not None]
    if not partial:
        return None
    weight = pair.match_weight - sum(partial)
    return Prior(2**weight / (1 + 2**weight), weight, False)


# --- the queue --------------------------------------------------------------------------------

QUEUE_STATUSES = (
    PairStatus.PENDING,
    PairStatus.SKIPPED,
    PairStatus.AUTO_LINKED,
    PairStatus.SAME,
    PairStatus.DIFFERENT,
)


def _visible_pairs(actor: Actor) -> QuerySet[MatchPair]:
    actor.require(Perm.LINKAGE_VIEW)
    pairs = MatchPair.objects.all()
    if not actor.national_scope:
        region = actor.region or ""
        pairs = pairs.filter(right_person__region=region).filter(
            Q(left_person__isnull=True) | Q(left_person__region=region)
        )
    return pairs


def pair_list(
    *,
    actor: Actor,
    status: str | None = PairStatus.PENDING,
    run_id: int | None = None,
    region: str | None = None,
    person_id: int | None = None,
    page: int = 1,
    page_size: int = 25,
) -> Page[MatchPair]:
    """Scored pairs, highest match weight first: by default the ones awaiting review. Filters:
    status (None: all), run, region (either record administered there), person (either side,
    and also the records merged into that person)."""
    pairs = _visible_pairs(actor)
    if status:
        if status not in PairStatus.values:
            raise ValidationFailed.single("status", "invalid_choice", _("Unknown pair status."))
        pairs = pairs.filter(status=status)
    if run_id is not None:
        pairs = pairs.filter(run_id=run_id)
    if region:
        if region not in STATES:
            raise ValidationFailed.single("region", "invalid_choice", _("Unknown region."))
        pairs = pairs.filter(Q(right_person__region=region) | Q(left_person__region=region))
    if person_id is not None:
        # A golden record's pairs include those of the records merged into it: their pairs
        # still name the record as it was compared.
        ids = [
            person_id,
            *Person.objects.filter(merged_into_id=person_id).values_list("pk", flat=True),
        ]
        pairs = pairs.filter(Q(left_person_id__in=ids) | Q(right_person_id__in=ids))
    pairs = pairs.select_related("run", "left_person", "right_person").order_by(
        "-match_weight", "id"
    )
    return paginate(pairs, page=page, page_size=page_size)


def run_choices(*, actor: Actor, limit: int = 50) -> list[LinkageRun]:
    """The latest runs that produced pairs, for the queue's filter."""
    actor.require(Perm.LINKAGE_VIEW)
    return list(LinkageRun.objects.filter(pairs__isnull=False).distinct().order_by("-id")[:limit])


# --- one pair ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairView:
    pair: MatchPair
    left: Side
    right: Side
    fields: list[FieldRow]
    breakdown: list[BreakdownRow]
    prior: Prior | None
    # The comparisons whose identifiers disagree (CURP, NSS) when the pair has a conflict.
    conflicting: list[Any]
    # Merges made from this pair, newest first.
    merges: list[Merge]
    bar_maximum: float = 1.0
    notes: list[str] = field(default_factory=list)

    @property
    def active_merge(self) -> Merge | None:
        return next((m for m in self.merges if m.unmerged_at is None), None)

    @property
    def is_final(self) -> bool:
        return self.pair.status in (PairStatus.SAME, PairStatus.DIFFERENT)

    @property
    def can_merge(self) -> bool:
        """Two registry records, neither already merged, and the pair not decided "different"."""
        return (
            self.left.person is not None
            and self.right.person is not None
            and self.left.person.status != RecordStatus.MERGED
            and self.right.person.status != RecordStatus.MERGED
            and self.pair.status != PairStatus.DIFFERENT
        )


def _pair_visible(actor: Actor, pair_id: int) -> MatchPair:
    pair = (
        _visible_pairs(actor)
        .select_related("run__model", "left_person", "right_person", "decided_by")
        .filter(pk=pair_id)
        .first()
    )
    if pair is None:
        raise NotFound(extra={"entity": "linkage.pair", "id": pair_id})
    return pair


def pair_get(*, actor: Actor, pair_id: int, purpose: str = "") -> PairView:
    """One pair with both records side by side and the model's breakdown. Showing a pair shows
    both records' data, so the read is logged on each registry record."""
    pair = _pair_visible(actor, pair_id)
    persons = [p for p in (pair.left_person, pair.right_person) if p is not None]
    identifiers = list(
        Identifier.objects.filter(person__in=persons, scheme__in=(CURP, NSS), is_active=True)
    )
    left = (
        Side(pair.left_person, None, _person_values(pair.left_person, identifiers))
        if pair.left_person is not None
        else Side(None, pair.left_row, _row_values(pair.left_record or {}))
    )
    right = Side(pair.right_person, None, _person_values(pair.right_person, identifiers))
    rows = breakdown_rows(pair.breakdown or [])
    for person in persons:
        access_record(actor=actor, person_id=person.pk, action="compare", purpose=_purpose(purpose))
    return PairView(
        pair=pair,
        left=left,
        right=right,
        fields=field_rows(left, right),
        breakdown=rows,
        prior=prior_of(pair, rows),
        conflicting=[
            row.label
            for row in rows
            if row.comparison in ("curp", "nss") and row.agreement == Agreement.DIFFERS
        ]
        if pair.identifier_conflict
        else [],
        merges=list(Merge.objects.filter(pair=pair).select_related("created_by", "unmerged_by")),
        bar_maximum=max([1.0, *(row.magnitude for row in rows)]),
    )


# --- merges -----------------------------------------------------------------------------------


def _visible_merges(actor: Actor) -> QuerySet[Merge]:
    actor.require(Perm.LINKAGE_VIEW)
    merges = Merge.objects.all()
    if not actor.national_scope:
        region = actor.region or ""
        merges = merges.filter(golden__region=region, merged__region=region)
    return merges


def merge_list(
    *,
    actor: Actor,
    person_id: int | None = None,
    active_only: bool = False,
    page: int = 1,
    page_size: int = 25,
) -> Page[Merge]:
    """Merges, newest first; of one person (golden or merged) when asked."""
    merges = _visible_merges(actor)
    if person_id is not None:
        merges = merges.filter(Q(golden_id=person_id) | Q(merged_id=person_id))
    if active_only:
        merges = merges.filter(unmerged_at__isnull=True)
    merges = merges.select_related("golden", "merged", "created_by", "unmerged_by").order_by(
        "-created_at", "-id"
    )
    return paginate(merges, page=page, page_size=page_size)


@dataclass(frozen=True)
class MovedGroup:
    """The rows of one table a merge moved, and how many of them are still on the golden
    record (the ones an unmerge would move back)."""

    key: str
    label: str
    ids: list[int]
    still_on_golden: int


@dataclass(frozen=True)
class MergeView:
    merge: Merge
    golden: Person
    merged: Person
    moved: list[MovedGroup]
    # Person fields whose value the golden record took from the merged one.
    taken: list[tuple[str, Any, Any]]

    @property
    def total_moved(self) -> int:
        return sum(len(group.ids) for group in self.moved)

    @property
    def is_active(self) -> bool:
        return self.merge.unmerged_at is None


# What the moved rows of each table are called on the merge page; a table not listed here (a
# later app's) is named by its model.
_TABLE_LABELS: dict[str, Promise] = {
    "registry.Identifier.person": _("Identifiers"),
    "registry.Address.person": _("Addresses"),
    "registry.Contact.person": _("Contacts"),
    "registry.FamilyTie.person": _("Family ties"),
    "registry.FamilyTie.relative": _("Family ties (recorded from the relative's side)"),
    "registry.Employment.person": _("Working periods"),
    "registry.Enrolment.person": _("Programme enrolments"),
    "registry.Person.merged_into": _("Records merged into the merged record earlier"),
    "contributions.ContributionRecord.person": _("Contribution records"),
    "contributions.DeclarationLine.person": _("Declaration lines not yet posted"),
    "benefits.Claim.person": _("Benefit claims"),
    "benefits.Award.person": _("Awards"),
}


def _table_label(key: str) -> str:
    if key in _TABLE_LABELS:
        return str(_TABLE_LABELS[key])
    from django.apps import apps

    app_label, model_name, _field = key.split(".", 2)
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError:
        return key
    return str(model._meta.verbose_name_plural)


def merge_get(*, actor: Actor, merge_id: int, purpose: str = "") -> MergeView:
    """One merge: the two records, the fields taken, and what moved. The read is logged on both
    records (the page shows their names and the moved rows)."""
    merge = (
        _visible_merges(actor)
        .select_related("golden", "merged", "created_by", "unmerged_by", "pair")
        .filter(pk=merge_id)
        .first()
    )
    if merge is None:
        raise NotFound(extra={"entity": "linkage.merge", "id": merge_id})
    from pilar.linkage.merging import TAKEN_KEY, dependents

    by_key = {d.key: d for d in dependents()}
    groups = []
    for key, ids in sorted((merge.moved or {}).items()):
        dependent = by_key.get(key)
        still = (
            dependent.model._default_manager.filter(
                pk__in=ids, **{dependent.field: merge.golden_id}
            ).count()
            if dependent is not None
            else 0
        )
        groups.append(
            MovedGroup(key=key, label=_table_label(key), ids=list(ids), still_on_golden=still)
        )
    # The fields the golden record took from the merged one: (field, golden's value before,
    # the value taken).
    taken = [
        (
            getattr(Person._meta.get_field(name), "verbose_name", name),
            merge.golden_before.get(name),
            value,
        )
        for name, value in sorted((merge.golden_before.get(TAKEN_KEY) or {}).items())
    ]
    for person_id in (merge.golden_id, merge.merged_id):
        access_record(actor=actor, person_id=person_id, action="merge", purpose=_purpose(purpose))
    return MergeView(
        merge=merge, golden=merge.golden, merged=merge.merged, moved=groups, taken=taken
    )


# --- the person page --------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonLinkage:
    """What the person page says about merges: the golden record this one was merged into, the
    records merged into this one, and how many pairs of this person await review."""

    merged_into: Person | None
    merge_into: Merge | None
    merged_records: list[tuple[Person, Merge | None]]
    pending_pairs: int | None


def person_linkage(*, actor: Actor, person: Person) -> PersonLinkage:
    """For a person the caller has already read (through the registry's selectors, which
    checked access and logged the read). Records outside the actor's region are left out of
    the lists; pair counts only for those who may see the queue."""
    merged_into = None
    merge_into = None
    if person.merged_into_id is not None:
        golden = Person.objects.filter(pk=person.merged_into_id).first()
        if golden is not None and actor.sees_region(golden.region):
            merged_into = golden
        merge_into = Merge.objects.filter(merged=person, unmerged_at__isnull=True).first()
    active = {m.merged_id: m for m in Merge.objects.filter(golden=person, unmerged_at__isnull=True)}
    merged_records = [
        (record, active.get(record.pk))
        for record in Person.objects.filter(merged_into=person).order_by("pk")
        if actor.sees_region(record.region)
    ]
    pending = None
    if actor.can(Perm.LINKAGE_VIEW):
        pending = (
            _visible_pairs(actor)
            .filter(status=PairStatus.PENDING)
            .filter(Q(left_person=person) | Q(right_person=person))
            .count()
        )
    return PersonLinkage(
        merged_into=merged_into,
        merge_into=merge_into,
        merged_records=merged_records,
        pending_pairs=pending,
    )
