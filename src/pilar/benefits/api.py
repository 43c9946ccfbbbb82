"""REST API of benefits: claims, adjudication, maker–checker decisions, awards, under /api/v1/.

As in the registry's and contributions' APIs, each operation parses its input, calls one service
or selector with the request's actor, and shapes the response; permissions, the region scope,
maker–checker, the audit trail and the access log live in the services and selectors. A refused
write (unknown scheme or benefit, a bad date, missing data, the same officer approving) is a
problem+json document and writes nothing.

Claims carry a ``version``: send it back as ``?version=`` (or ``version`` in a body) when acting
on a claim, and a change someone else made in between is refused (409
``benefits.stale_version``) instead of being acted on unseen.
"""

from __future__ import annotations

from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from ninja import Field, Path, Query, Router, Status

from pilar.benefits import letter, schemas, selectors, services
from pilar.benefits.models import AwardStatus, ClaimStatus
from pilar.benefits.schemas import (
    AwardOut,
    AwardSummaryOut,
    ClaimKindOut,
    ClaimOut,
    ClaimSummaryOut,
    DecisionOut,
    InputsPreviewOut,
)
from pilar.core.api import (
    AUTH_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    InputSchema,
    IsoDate,
    PageNumber,
    PageOut,
    PageSize,
    ProblemOut,
    RecordId,
    actor_of,
    page_out,
)
from pilar.core.api import MAX_ID as _MAX_ID
from pilar.core.errors import ValidationFailed
from pilar.registry.api import PurposeHeader, PurposeQuery

router = Router()

BENEFITS = ["Benefits"]
MAX_DECLARED_FACTS = 30

ClaimId = Annotated[int, Path(ge=1, le=_MAX_ID)]
DecisionId = Annotated[int, Path(ge=1, le=_MAX_ID)]
AwardId = Annotated[int, Path(ge=1, le=_MAX_ID)]
VersionQuery = Annotated[
    int | None,
    Query(None, ge=1, le=_MAX_ID, description="The claim's version as you read it."),
]
LETTER_ERRORS: dict[int, type[ProblemOut]] = {**READ_ERRORS}


def _purpose(purpose: str, header: str) -> str:
    return (purpose or header or "").strip()


def _language(request: HttpRequest) -> str:
    return get_language() or "es"


# --- claim kinds --------------------------------------------------------------------------------


@router.get(
    "/claim-kinds",
    response={200: list[ClaimKindOut], **AUTH_ERRORS, 503: ProblemOut},
    tags=BENEFITS,
    summary="The kinds of claim",
)
def claim_kinds(request: HttpRequest) -> list[dict[str, Any]]:
    """Every benefit of every scheme package (newest version), its frequency, and the facts a
    claim of that kind must declare (`inputs`, with type and label) besides those Pilar derives
    from the registry and the work history (`derived`)."""
    actor_of(request)
    return [schemas.claim_kind_document(kind) for kind in selectors.claim_kinds()]


# --- claims -------------------------------------------------------------------------------------

STATUS_DESCRIPTION = "One of: " + ", ".join(ClaimStatus.values) + "."


@router.get(
    "/claims",
    response={200: PageOut[ClaimSummaryOut], **AUTH_ERRORS, 404: ProblemOut, 422: ProblemOut},
    tags=BENEFITS,
    summary="List claims",
)
def claim_list(
    request: HttpRequest,
    status: Annotated[str, Query("", max_length=12, description=STATUS_DESCRIPTION)],
    person_id: Annotated[int | None, Query(None, ge=1, le=_MAX_ID)],
    package: Annotated[str, Query("", max_length=60)],
    benefit: Annotated[str, Query("", max_length=60)],
    awaiting_my_approval: Annotated[
        bool, Query(False, description="Only decisions made by others, pending approval.")
    ],
    page: Annotated[PageNumber, Query(1)],
    page_size: Annotated[PageSize, Query(25)],
    purpose: PurposeQuery,
    x_purpose: PurposeHeader,
) -> dict[str, Any]:
    """Newest first, in the token owner's region. Filtering by `person_id` reads that person's
    record and is logged with the purpose."""
    result = selectors.claim_list(
        actor=actor_of(request),
        status=status or None,
        person_id=person_id,
        package=package or None,
        benefit=benefit or None,
        awaiting_my_approval=awaiting_my_approval,
        page=page,
        page_size=page_size,
        purpose=_purpose(purpose, x_purpose),
    )
    return page_out(request, result, [schemas.claim_summary(claim) for claim in result.items])


class ClaimIn(InputSchema):
    person_id: RecordId
    package: str = Field(max_length=60, examples=["imss_1973"])
    benefit: str = Field(max_length=60, examples=["vejez"])
    claim_date: IsoDate
    declared: dict[str, Any] = Field(
        default_factory=dict,
        description="The facts the claim kind asks for (GET /claim-kinds): "
        '{"padres_dependientes": 1, "hijos_estudiantes": 0}.',
        examples=[{"padres_dependientes": 0}],
    )
    agreement: str = Field(
        default="",
        max_length=80,
        description="A totalisation agreement (its name) to decide the claim under, with the "
        "insurance periods other institutions sent; empty for this institution's periods alone.",
        examples=[""],
    )


def _declared_of(payload: ClaimIn) -> dict[str, Any]:
    if len(payload.declared) > MAX_DECLARED_FACTS:
        raise ValidationFailed.single(
            "declared",
            "field.too_many_items",
            _("At most %(max)d declared facts.") % {"max": MAX_DECLARED_FACTS},
        )
    return payload.declared


@router.post(
    "/claims",
    response={201: ClaimOut, **WRITE_ERRORS, 503: ProblemOut},
    tags=BENEFITS,
    summary="Enter a claim",
)
def claim_create(request: HttpRequest, payload: ClaimIn, response: HttpResponse) -> Status:
    """A claim for a person under a scheme package and benefit, with the claim date and the
    declared facts. An unknown scheme or benefit, a date in the future or outside the person's
    life, or a declared fact the kind does not ask for is 422 with field errors; an open or
    granted claim of the same kind is 409 `benefits.claim_exists`."""
    claim = services.claim_create(
        actor=actor_of(request),
        person_id=payload.person_id,
        package=payload.package,
        benefit=payload.benefit,
        claim_date=payload.claim_date,
        declared=_declared_of(payload),
        agreement=payload.agreement,
    )
    response["Location"] = reverse("api:claim_get", kwargs={"claim_id": claim.pk})
    claim = selectors.claim_get(actor=actor_of(request), claim_id=claim.pk, purpose="claim entry")
    return Status(201, schemas.claim_document(claim))


@router.post(
    "/claims/preview",
    response={200: InputsPreviewOut, **WRITE_ERRORS, 503: ProblemOut},
    tags=BENEFITS,
    summary="Preview a claim's inputs",
)
def claim_preview(request: HttpRequest, payload: ClaimIn) -> dict[str, Any]:
    """What adjudication would use for this claim, without entering it: each input's value and
    source (`registry`, `work_history`, `declared`, `default`) and what is missing. Reads the
    person's work history: logged."""
    gathered = selectors.claim_inputs_preview(
        actor=actor_of(request),
        person_id=payload.person_id,
        package=payload.package,
        benefit=payload.benefit,
        claim_date=payload.claim_date,
        declared=_declared_of(payload),
        purpose="claim preview",
    )
    return schemas.preview_document(gathered, language=_language(request))


@router.get(
    "/claims/{int:claim_id}",
    response={200: ClaimOut, **READ_ERRORS},
    tags=BENEFITS,
    summary="A claim",
    url_name="claim_get",
)
def claim_get(
    request: HttpRequest, claim_id: ClaimId, purpose: PurposeQuery, x_purpose: PurposeHeader
) -> dict[str, Any]:
    """The claim with its decisions, newest first. Logged as a read of the person's record."""
    claim = selectors.claim_get(
        actor=actor_of(request), claim_id=claim_id, purpose=_purpose(purpose, x_purpose)
    )
    return schemas.claim_document(claim)


@router.post(
    "/claims/{int:claim_id}/adjudicate",
    response={201: DecisionOut, **WRITE_ERRORS, 503: ProblemOut},
    tags=BENEFITS,
    summary="Adjudicate a claim",
)
def claim_adjudicate(
    request: HttpRequest, claim_id: ClaimId, version: VersionQuery, response: HttpResponse
) -> Status:
    """Gather the inputs and evaluate the scheme package: 201 with a `pending` decision (granted
    with amount, frequency and start date, or denied with each unmet condition). Missing data is
    422 `benefits.claim_incomplete` with `missing: [{name, label, reason, message}]`, and
    nothing is written. Only an `entered` claim can be adjudicated (409 otherwise)."""
    decision = services.claim_adjudicate(
        actor=actor_of(request), claim_id=claim_id, expected_version=version
    )
    response["Location"] = reverse("api:decision_get", kwargs={"decision_id": decision.pk})
    decision = selectors.decision_get(
        actor=actor_of(request), decision_id=decision.pk, purpose="adjudication"
    )
    return Status(201, schemas.decision_document(decision, language=_language(request)))


class ReasonIn(InputSchema):
    reason: str = Field(max_length=1000, examples=["The declared parents are not dependants."])
    version: int | None = Field(None, ge=1, le=_MAX_ID, description="The claim's version.")


@router.post(
    "/claims/{int:claim_id}/withdraw",
    response={200: ClaimOut, **WRITE_ERRORS},
    tags=BENEFITS,
    summary="Withdraw a claim",
)
def claim_withdraw(request: HttpRequest, claim_id: ClaimId, payload: ReasonIn) -> dict[str, Any]:
    """The claimant withdraws an entered or decided claim; the reason is required."""
    services.claim_withdraw(
        actor=actor_of(request),
        claim_id=claim_id,
        reason=payload.reason,
        expected_version=payload.version,
    )
    claim = selectors.claim_get(actor=actor_of(request), claim_id=claim_id, purpose="withdrawal")
    return schemas.claim_document(claim)


# --- decisions ----------------------------------------------------------------------------------


@router.get(
    "/decisions/{int:decision_id}",
    response={200: DecisionOut, **READ_ERRORS},
    tags=BENEFITS,
    summary="A decision",
    url_name="decision_get",
)
def decision_get(
    request: HttpRequest, decision_id: DecisionId, purpose: PurposeQuery, x_purpose: PurposeHeader
) -> dict[str, Any]:
    """Outcome, amount, the inputs with their sources, the unmet conditions of a denial, the
    plain-language explanation and the engine's full result. Logged."""
    decision = selectors.decision_get(
        actor=actor_of(request), decision_id=decision_id, purpose=_purpose(purpose, x_purpose)
    )
    return schemas.decision_document(decision, language=_language(request))


@router.post(
    "/decisions/{int:decision_id}/approve",
    response={200: DecisionOut, **WRITE_ERRORS},
    tags=BENEFITS,
    summary="Approve a decision",
)
def decision_approve(
    request: HttpRequest, decision_id: DecisionId, version: VersionQuery
) -> dict[str, Any]:
    """Maker–checker: another officer than the one who adjudicated (403 `same_officer`). A grant
    creates the award (see `award_id` in `GET /awards?person_id=`); a denial closes the claim."""
    services.decision_approve(
        actor=actor_of(request), decision_id=decision_id, expected_version=version
    )
    decision = selectors.decision_get(
        actor=actor_of(request), decision_id=decision_id, purpose="approval"
    )
    return schemas.decision_document(decision, language=_language(request))


@router.post(
    "/decisions/{int:decision_id}/return",
    response={200: DecisionOut, **WRITE_ERRORS},
    tags=BENEFITS,
    summary="Return a decision",
)
def decision_return(
    request: HttpRequest, decision_id: DecisionId, payload: ReasonIn
) -> dict[str, Any]:
    """Send a pending decision back with a reason (required); the claim is `entered` again and
    can be corrected and adjudicated anew. Another officer than the maker."""
    services.decision_return(
        actor=actor_of(request),
        decision_id=decision_id,
        reason=payload.reason,
        expected_version=payload.version,
    )
    decision = selectors.decision_get(
        actor=actor_of(request), decision_id=decision_id, purpose="return"
    )
    return schemas.decision_document(decision, language=_language(request))


@router.get(
    "/decisions/{int:decision_id}/letter.pdf",
    response={200: None, **LETTER_ERRORS},
    tags=BENEFITS,
    summary="The decision letter (PDF)",
    url_name="decision_letter",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The letter, A4 PDF.",
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def decision_letter(
    request: HttpRequest,
    decision_id: DecisionId,
    lang: Annotated[str, Query("es", pattern="^(es|en)$", description="es or en.")],
) -> HttpResponse:
    """The letter to the claimant, A4 PDF, in Spanish (`lang=es`) or English (`lang=en`). A
    decision not yet approved gives a draft, marked as such. Logged as a read."""
    content = letter.decision_letter_pdf(
        actor=actor_of(request), decision_id=decision_id, language=lang
    )
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="decision-{decision_id}-{lang}.pdf"'
    response["Cache-Control"] = "no-store"
    return response


# --- awards -------------------------------------------------------------------------------------

AWARD_STATUS_DESCRIPTION = "One of: " + ", ".join(AwardStatus.values) + "."


@router.get(
    "/awards",
    response={200: PageOut[AwardSummaryOut], **AUTH_ERRORS, 404: ProblemOut, 422: ProblemOut},
    tags=BENEFITS,
    summary="List awards",
)
def award_list(
    request: HttpRequest,
    person_id: Annotated[int | None, Query(None, ge=1, le=_MAX_ID)],
    status: Annotated[str, Query("", max_length=12, description=AWARD_STATUS_DESCRIPTION)],
    package: Annotated[str, Query("", max_length=60)],
    page: Annotated[PageNumber, Query(1)],
    page_size: Annotated[PageSize, Query(25)],
    purpose: PurposeQuery,
    x_purpose: PurposeHeader,
) -> dict[str, Any]:
    """Newest first, in the token owner's region; by `person_id` a logged read of the person."""
    result = selectors.award_list(
        actor=actor_of(request),
        person_id=person_id,
        status=status or None,
        package=package or None,
        page=page,
        page_size=page_size,
        purpose=_purpose(purpose, x_purpose),
    )
    return page_out(request, result, [schemas.award_summary(award) for award in result.items])


@router.get(
    "/awards/{int:award_id}",
    response={200: AwardOut, **READ_ERRORS},
    tags=BENEFITS,
    summary="An award and its calculation history",
)
def award_get(
    request: HttpRequest, award_id: AwardId, purpose: PurposeQuery, x_purpose: PurposeHeader
) -> dict[str, Any]:
    """The award with every calculation it has had (newest first), each with the package
    version and hash it was computed with. Logged."""
    award = selectors.award_get(
        actor=actor_of(request), award_id=award_id, purpose=_purpose(purpose, x_purpose)
    )
    return schemas.award_document(award)
