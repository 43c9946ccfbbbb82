"""REST API of record linkage: the review queue, decisions, merges and unmerges (aggregated by
`linkage.api`).

- ``GET /v1/linkage/pairs``: scored pairs, highest match weight first (filters: status, run,
  region, person).
- ``GET /v1/linkage/pairs/{pair_id}``: one pair with both records side by side and the
  match-weight breakdown; the read is logged on each record.
- ``POST /v1/linkage/pairs/{pair_id}/decision``: same, different or skip.
- ``POST /v1/linkage/merges``: merge one record into a golden record.
- ``GET /v1/linkage/merges/{merge_id}``: a merge and what it moved.
- ``POST /v1/linkage/merges/{merge_id}/unmerge``: undo it.

As elsewhere in the API, each operation parses, calls one service or selector with the
request's actor and shapes the answer; refusals are problem+json documents.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Field, Path, Query, Router, Schema, Status

from pilar.core.api import (
    AUTH_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    InputSchema,
    PageNumber,
    PageOut,
    PageSize,
    ProblemOut,
    RecordId,
    actor_of,
    page_out,
)
from pilar.core.api import MAX_ID as _MAX_ID
from pilar.linkage import merging, review, selectors
from pilar.linkage.models import MatchPair, PairStatus
from pilar.registry.api import PurposeHeader, PurposeQuery
from pilar.registry.models import Person

router = Router(tags=["linkage"])


def _choices(values: list[str] | tuple[str, ...]) -> dict[str, Any]:
    return {"enum": sorted(values)}


PairId = Annotated[int, Path(ge=1, le=_MAX_ID)]
MergeId = Annotated[int, Path(ge=1, le=_MAX_ID)]


# --- responses --------------------------------------------------------------------------------


class PairPersonOut(Schema):
    id: int
    name: str
    birth_date: datetime.date
    region: str
    status: str


class PairSummaryOut(Schema):
    id: int
    run_id: int
    status: str = Field(json_schema_extra=_choices(PairStatus.values))
    match_weight: float = Field(description="log2 of the Bayes factor: above 0 favours a match.")
    match_probability: float
    identifier_conflict: bool
    left_person: PairPersonOut | None = Field(
        None, description="A registry record, or null when the left side is an external list row."
    )
    left_row: int | None = Field(None, description="The external list's row number, if any.")
    right_person: PairPersonOut
    decided_by: str | None = None
    decided_at: datetime.datetime | None = None
    decision_note: str = ""


class FieldComparisonOut(Schema):
    field: str = Field(examples=["paternal_surname"])
    left: list[str]
    right: list[str]
    agreement: str = Field(json_schema_extra=_choices(["agrees", "close", "differs", "missing"]))


class PairBreakdownItemOut(Schema):
    comparison: str = Field(examples=["surnames"])
    level: str = Field(examples=["swapped"])
    label: str = Field(description="The level in the request's language.")
    bayes_factor: float | None = None
    weight: float | None = Field(None, description="This comparison's partial weight.")
    left: Any = None
    right: Any = None
    agreement: str


class PriorOut(Schema):
    probability: float = Field(description="λ: two records taken at random are one person.")
    weight: float = Field(description="log2(λ / (1 − λ)), where every pair starts.")
    from_model: bool = Field(description="False when implied by the stored weights.")


class PairDetailOut(PairSummaryOut):
    left_record: dict[str, Any] = Field(
        default_factory=dict, description="The external list's row as read (list linkage)."
    )
    fields: list[FieldComparisonOut]
    breakdown: list[PairBreakdownItemOut]
    prior: PriorOut | None = None
    merge_ids: list[int] = Field(description="Merges made from this pair, newest first.")


class MovedOut(Schema):
    key: str = Field(examples=["registry.Identifier.person"])
    ids: list[int]
    still_on_golden: int = Field(description="How many an unmerge would move back.")


class MergeOut(Schema):
    id: int
    golden_id: int
    merged_id: int
    pair_id: int | None
    reason: str
    created_by: str
    created_at: datetime.datetime
    unmerged_by: str | None = None
    unmerged_at: datetime.datetime | None = None
    unmerge_reason: str = ""
    moved: list[MovedOut]
    golden_before: dict[str, Any]
    merged_before: dict[str, Any]


class UnmergeOut(MergeOut):
    kept_fields: list[str] = Field(
        description="Fields of the golden record corrected after the merge, kept as they are."
    )
    not_returned: dict[str, list[int]] = Field(
        description="Moved rows no longer on the golden record, by table, left where they are."
    )


def _person(person: Person | None) -> dict[str, Any] | None:
    if person is None:
        return None
    return {
        "id": person.pk,
        "name": person.full_name,
        "birth_date": person.birth_date,
        "region": person.region,
        "status": person.status,
    }


def _pair_summary(pair: MatchPair) -> dict[str, Any]:
    return {
        "id": pair.pk,
        "run_id": pair.run_id,
        "status": pair.status,
        "match_weight": pair.match_weight,
        "match_probability": pair.match_probability,
        "identifier_conflict": pair.identifier_conflict,
        "left_person": _person(pair.left_person),
        "left_row": pair.left_row,
        "right_person": _person(pair.right_person),
        "decided_by": pair.decided_by.username if pair.decided_by else None,
        "decided_at": pair.decided_at,
        "decision_note": pair.decision_note,
    }


def _merge_document(view: selectors.MergeView) -> dict[str, Any]:
    merge = view.merge
    return {
        "id": merge.pk,
        "golden_id": merge.golden_id,
        "merged_id": merge.merged_id,
        "pair_id": merge.pair_id,
        "reason": merge.reason,
        "created_by": merge.created_by.username,
        "created_at": merge.created_at,
        "unmerged_by": merge.unmerged_by.username if merge.unmerged_by else None,
        "unmerged_at": merge.unmerged_at,
        "unmerge_reason": merge.unmerge_reason,
        "moved": [
            {"key": g.key, "ids": g.ids, "still_on_golden": g.still_on_golden} for g in view.moved
        ],
        "golden_before": merge.golden_before,
        "merged_before": merge.merged_before,
    }


def _purpose(query_value: str, header_value: str) -> str:
    return (query_value or header_value or "").strip()


# --- pairs ------------------------------------------------------------------------------------


@router.get(
    "/linkage/pairs",
    response={200: PageOut[PairSummaryOut], **AUTH_ERRORS, 422: ProblemOut},
    summary="The review queue of scored pairs",
)
def linkage_pair_list(
    request: HttpRequest,
    page: Annotated[PageNumber, Query(1)],
    page_size: Annotated[PageSize, Query(25)],
    status: Annotated[
        str,
        Query(
            "pending",
            max_length=20,
            description="pending (default), skipped, auto_linked, same, different, or all.",
        ),
    ],
    run: Annotated[int | None, Query(None, ge=1, le=_MAX_ID)],
    region: Annotated[str, Query("", max_length=10)],
    person: Annotated[int | None, Query(None, ge=1, le=_MAX_ID)],
) -> dict[str, Any]:
    """Pairs highest match weight first. Needs `linkage.view`; regional staff see the pairs
    whose records are all in their region."""
    result = selectors.pair_list(
        actor=actor_of(request),
        status=None if status == "all" else status,
        run_id=run,
        region=region or None,
        person_id=person,
        page=page,
        page_size=page_size,
    )
    return page_out(request, result, [_pair_summary(pair) for pair in result.items])


@router.get(
    "/linkage/pairs/{int:pair_id}",
    response={200: PairDetailOut, **READ_ERRORS},
    summary="A pair side by side with its match-weight breakdown",
    url_name="linkage_pair_get",
)
def linkage_pair_get(
    request: HttpRequest, pair_id: PairId, purpose: PurposeQuery, x_purpose: PurposeHeader
) -> dict[str, Any]:
    """Both records' compared fields with their agreement, each comparison's level, Bayes
    factor and partial weight, and λ. The read is logged on each registry record."""
    view = selectors.pair_get(
        actor=actor_of(request), pair_id=pair_id, purpose=_purpose(purpose, x_purpose)
    )
    return {
        **_pair_summary(view.pair),
        "left_record": view.pair.left_record or {},
        "fields": [
            {"field": r.name, "left": r.left, "right": r.right, "agreement": r.agreement}
            for r in view.fields
        ],
        "breakdown": [
            {
                "comparison": r.comparison,
                "level": r.level,
                "label": str(r.level_label),
                "bayes_factor": r.bayes_factor,
                "weight": r.weight,
                "left": r.left,
                "right": r.right,
                "agreement": r.agreement,
            }
            for r in view.breakdown
        ],
        "prior": (
            {
                "probability": view.prior.probability,
                "weight": view.prior.weight,
                "from_model": view.prior.from_model,
            }
            if view.prior
            else None
        ),
        "merge_ids": [m.pk for m in view.merges],
    }


class DecisionIn(InputSchema):
    decision: str = Field(max_length=20, json_schema_extra=_choices(review.Decision.ALL))
    note: str = Field("", max_length=300)


@router.post(
    "/linkage/pairs/{int:pair_id}/decision",
    response={200: PairSummaryOut, **WRITE_ERRORS},
    summary="Decide a pair: same person, different persons, or skip",
)
def linkage_pair_decide(request: HttpRequest, pair_id: PairId, payload: DecisionIn) -> Any:
    """A decided pair (same or different) gives 409 `linkage.pair_decided`. "same" records
    the decision only; to merge the two records (and decide the pair in the same step) use
    `POST /v1/linkage/merges` with `pair_id`."""
    pair = review.decide_pair(
        actor=actor_of(request), pair_id=pair_id, decision=payload.decision, note=payload.note
    )
    pair = MatchPair.objects.select_related("left_person", "right_person", "decided_by").get(
        pk=pair.pk
    )
    return _pair_summary(pair)


# --- merges -----------------------------------------------------------------------------------


class MergeIn(InputSchema):
    golden_id: RecordId = Field(description="The record that stays in use.")
    merged_id: RecordId = Field(description="The record merged into it (kept, status merged).")
    reason: str = Field(max_length=300)
    pair_id: RecordId | None = Field(
        None, description="The pair that found the two: decided 'same' in the same step."
    )
    take_from_merged: list[str] = Field(
        default_factory=list,
        max_length=len(merging.MERGEABLE_FIELDS),
        description="Person fields whose value the golden record takes from the merged one.",
        json_schema_extra={"items": _choices(merging.MERGEABLE_FIELDS)},
    )


class ReasonIn(InputSchema):
    reason: str = Field(max_length=300)


@router.post(
    "/linkage/merges",
    response={201: MergeOut, **WRITE_ERRORS},
    summary="Merge a record into the golden record",
)
def linkage_merge_create(request: HttpRequest, payload: MergeIn, response: HttpResponse) -> Status:
    """Every row that depends on the merged record moves to the golden record (listed in
    `moved`); nothing is deleted. Rows that cannot all belong to one person give 409
    `linkage.merge_conflict` with `conflicts`; a record already merged gives 409
    `linkage.already_merged`. Needs `person.merge`."""
    actor = actor_of(request)
    merge = merging.merge_persons(
        actor=actor,
        golden_id=payload.golden_id,
        merged_id=payload.merged_id,
        reason=payload.reason,
        pair_id=payload.pair_id,
        take_from_merged=payload.take_from_merged,
    )
    response["Location"] = reverse("api:linkage_merge_get", kwargs={"merge_id": merge.pk})
    view = selectors.merge_get(actor=actor, merge_id=merge.pk, purpose="merge")
    return Status(201, _merge_document(view))


@router.get(
    "/linkage/merges/{int:merge_id}",
    response={200: MergeOut, **READ_ERRORS},
    summary="A merge and what it moved",
    url_name="linkage_merge_get",
)
def linkage_merge_get(
    request: HttpRequest, merge_id: MergeId, purpose: PurposeQuery, x_purpose: PurposeHeader
) -> dict[str, Any]:
    """The two records, the reason, the rows moved by table and how many are still on the
    golden record, and both records' values before the merge. The read is logged on both."""
    view = selectors.merge_get(
        actor=actor_of(request), merge_id=merge_id, purpose=_purpose(purpose, x_purpose)
    )
    return _merge_document(view)


@router.post(
    "/linkage/merges/{int:merge_id}/unmerge",
    response={200: UnmergeOut, **WRITE_ERRORS},
    summary="Undo a merge",
)
def linkage_merge_unmerge(request: HttpRequest, merge_id: MergeId, payload: ReasonIn) -> Any:
    """Moves back every row the merge moved that is still on the golden record and restores
    both records' values (a field corrected since is kept: `kept_fields`). A merge whose golden
    record has since been merged again gives 409 `linkage.unmerge_order`."""
    actor = actor_of(request)
    result = merging.unmerge(actor=actor, merge_id=merge_id, reason=payload.reason)
    view = selectors.merge_get(actor=actor, merge_id=result.merge.pk, purpose="unmerge")
    return {
        **_merge_document(view),
        "kept_fields": result.kept_fields,
        "not_returned": result.not_returned,
    }
