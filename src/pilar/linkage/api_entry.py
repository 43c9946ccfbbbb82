"""REST API of record linkage: the point-of-entry check (aggregated by `linkage.api`).

``POST /v1/linkage/candidates`` takes the body of a person registration and answers with the
registered persons who may be that person, without saving anything: a client can warn its
user before it registers, exactly as ``POST /v1/persons`` would with a 409.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from pilar.core.api import WRITE_ERRORS, actor_of
from pilar.linkage import entry
from pilar.registry.api import PersonRegisterIn, person_row_parts

router = Router(tags=["linkage"])


class BreakdownOut(Schema):
    comparison: str = Field(examples=["surnames"])
    level: str = Field(examples=["swapped"])
    label: str = Field(description="The level in English, as Splink's charts name it.")
    bayes_factor: float | None = None
    weight: float | None = Field(None, description="This comparison's part of the weight.")
    left: Any = Field(None, description="The would-be record's values.")
    right: Any = Field(None, description="The registered person's values.")


class CandidateOut(Schema):
    id: int
    name: str
    birth_date: str
    region: str
    match_weight: float = Field(description="log2 of the Bayes factor: above 0 favours a match.")
    match_probability: float
    identifier_conflict: bool = Field(
        description="Both have a CURP or an NSS and they differ: strong evidence against."
    )
    agreeing: list[str] = Field(description="The comparisons that speak for the match.")
    differing: list[str] = Field(description="The comparisons that speak against it.")
    breakdown: list[BreakdownOut]


class CandidatesOut(Schema):
    candidates: list[CandidateOut]
    model: str = Field(description="The model that scored them: its name and version, or default.")
    review_weight: float = Field(description="Candidates have at least this match weight.")


@router.post(
    "/linkage/candidates",
    response={200: CandidatesOut, **WRITE_ERRORS},
    summary="Check a would-be registration for possible duplicates",
)
def candidates(request: HttpRequest, payload: PersonRegisterIn) -> dict[str, Any]:
    """The same body as `POST /v1/persons`; nothing is saved. Answers with the registered
    persons who may be this person (best first), each with its match weight and probability
    and the comparisons that agree and differ. Invalid fields give 422 as registration would;
    an identifier already registered is not an error here but a candidate."""
    data, identifiers, _address, _contacts = person_row_parts(payload)
    result = entry.candidates_for_registration(
        actor=actor_of(request), data=data, identifiers=identifiers
    )
    return {
        "candidates": [candidate.as_dict() for candidate in result.candidates],
        "model": result.model_label,
        "review_weight": result.review_weight,
    }
