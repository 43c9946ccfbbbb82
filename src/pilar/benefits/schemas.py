"""Documents the benefits API hands out: claims, decisions (with the inputs, the engine's result
and each unmet condition of a denial), awards with their calculation history, and the kinds of
claim. Money is a decimal string; dates are ISO 8601."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from django.urls import reverse
from ninja import Field, Schema

from pilar.benefits.inputs import GatheredInputs
from pilar.benefits.models import Award, AwardCalculation, Claim, Decision
from pilar.benefits.selectors import ClaimKind, ClaimKindInput
from pilar.core.api import MoneyOut
from pilar.registry.models import Person

Label = dict[str, str]


class PersonBriefOut(Schema):
    id: int
    full_name: str
    birth_date: datetime.date


class PackageOut(Schema):
    name: str = Field(examples=["imss_1973"])
    version: str = Field(examples=["1.0.0"])
    content_hash: str = Field(description="SHA-256 of the package's definition files.")


class DecisionBriefOut(Schema):
    id: int
    outcome: str = Field(description="granted or denied.")
    amount: MoneyOut | None
    frequency: str
    start_date: datetime.date | None
    status: str = Field(description="pending, approved or returned.")
    made_by: str
    made_at: datetime.datetime
    checked_by: str | None
    checked_at: datetime.datetime | None
    return_reason: str


class ClaimSummaryOut(Schema):
    id: int
    person: PersonBriefOut
    package: str
    benefit: str
    claim_date: datetime.date
    status: str = Field(description="entered, decided, granted, denied or withdrawn.")
    status_label: str
    entered_by: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    version: int = Field(description="Send it back as ?version= to detect concurrent changes.")


class ClaimOut(ClaimSummaryOut):
    declared: dict[str, Any] = Field(description="The facts declared on the claim form.")
    withdrawal_reason: str
    agreement: str = Field(
        "", description="The totalisation agreement the claim is decided under, or empty."
    )
    decisions: list[DecisionBriefOut] = Field(description="Newest first.")


class InputOut(Schema):
    value: Any
    source: str = Field(description="registry, work_history, declared or default.")
    label: Label
    type: str | None = Field(None, description="number, bool, date or text.")
    unit: str | None = Field(None, examples=["weeks"])
    detail: dict[str, Any] = Field(
        description="How the value was derived: days counted, the salary window, relatives' ids…"
    )


class UnmetConditionOut(Schema):
    test: str = Field(examples=["semanas_cotizadas >= semanas_minimas"])
    label: Label | None
    value: str | None = Field(description="The claimant's value (left side of the test).")
    operator: str | None
    threshold: str | None = Field(description="What the law requires (right side).")
    unit: str | None = Field(examples=["weeks"])
    reference: str | None = Field(examples=["LSS 1973 art. 138 fr. II"])


class DecisionOut(DecisionBriefOut):
    claim_id: int
    person: PersonBriefOut
    package: PackageOut
    evaluation_date: datetime.date
    known_at: datetime.date
    inputs: dict[str, InputOut]
    unmet_conditions: list[UnmetConditionOut] = Field(
        description="Why a denial: empty for a grant."
    )
    explanation: str = Field(description="The engine's plain-language explanation.")
    result: dict[str, Any] = Field(description="The engine's result: values and explanation tree.")
    letter: str = Field(description="URL of the decision letter (PDF); add ?lang=en for English.")
    award_id: int | None = Field(description="The award an approved grant created.")


class CalculationOut(Schema):
    id: int
    reason: str = Field(description="award or recalculation.")
    run_id: int | None
    package: PackageOut
    evaluation_date: datetime.date
    known_at: datetime.date | None
    amount: MoneyOut | None
    values: dict[str, Any]
    inputs: dict[str, Any]
    created_by: str | None
    created_at: datetime.datetime


class AwardSummaryOut(Schema):
    id: int
    person: PersonBriefOut
    claim_id: int
    decision_id: int
    package: PackageOut
    benefit: str
    amount: MoneyOut | None = Field(description="Null when the scheme decides eligibility only.")
    frequency: str = Field(description="monthly or bimonthly.")
    start_date: datetime.date
    status: str = Field(description="active, suspended or ended.")
    created_at: datetime.datetime


class AwardOut(AwardSummaryOut):
    calculations: list[CalculationOut] = Field(
        description="Every amount the award has had, newest first."
    )


class ClaimKindInputOut(Schema):
    name: str
    type: str = Field(description="number, bool, date or text.")
    label: Label
    unit: str | None
    optional: bool
    default: Any


class ClaimKindOut(Schema):
    package: str
    package_version: str
    package_title: Label
    benefit: str
    label: Label
    frequency: str
    inputs: list[ClaimKindInputOut] = Field(description="The facts the claim form must ask for.")
    derived: list[ClaimKindInputOut] = Field(
        description="The inputs Pilar takes from the registry and the work history."
    )


class MissingOut(Schema):
    name: str
    label: Label
    reason: str
    message: str


class InputsPreviewOut(Schema):
    person_id: int
    claim_date: datetime.date
    complete: bool
    inputs: dict[str, InputOut]
    missing: list[MissingOut]


# --- documents ----------------------------------------------------------------------------------


def _username(user: Any) -> str | None:
    return user.username if user is not None else None


def person_brief(person: Person) -> dict[str, Any]:
    return {"id": person.pk, "full_name": person.full_name, "birth_date": person.birth_date}


def decision_brief(decision: Decision) -> dict[str, Any]:
    return {
        "id": decision.pk,
        "outcome": decision.outcome,
        "amount": decision.amount,
        "frequency": decision.frequency,
        "start_date": decision.start_date,
        "status": decision.status,
        "made_by": decision.made_by.username,
        "made_at": decision.made_at,
        "checked_by": _username(decision.checked_by),
        "checked_at": decision.checked_at,
        "return_reason": decision.return_reason,
    }


def claim_summary(claim: Claim) -> dict[str, Any]:
    return {
        "id": claim.pk,
        "person": person_brief(claim.person),
        "package": claim.package,
        "benefit": claim.benefit,
        "claim_date": claim.claim_date,
        "status": claim.status,
        "status_label": str(claim.get_status_display()),
        "entered_by": _username(claim.entered_by),
        "created_at": claim.created_at,
        "updated_at": claim.updated_at,
        "version": claim.version,
    }


def claim_document(claim: Claim) -> dict[str, Any]:
    return {
        **claim_summary(claim),
        "declared": claim.declared,
        "withdrawal_reason": claim.withdrawal_reason,
        "agreement": claim.agreement,
        "decisions": [decision_brief(d) for d in claim.decisions.all()],
    }


def unmet_conditions(decision: Decision) -> list[dict[str, Any]]:
    """Each unmet condition of a denial, read from the stored result."""
    from pilar.rules import Result

    if not decision.result or decision.outcome != "denied":
        return []
    result = Result.from_dict(decision.result)
    eligible = _eligible_variable(decision)
    if eligible is None:
        return []
    return [
        {
            "test": item.test,
            "label": dict(item.label) if item.label else None,
            "value": _text(item.left),
            "operator": item.operator,
            "threshold": _text(item.right),
            "unit": item.unit,
            "reference": item.reference,
        }
        for item in result.unmet_conditions(eligible)
    ]


def _eligible_variable(decision: Decision) -> str | None:
    benefits: Mapping[str, Any] = decision.result.get("benefits") or {}
    info = benefits.get(decision.claim.benefit)
    if info:
        return str(info["eligible"])
    # Without the benefit's description, the first bool output is the eligibility.
    for name, typed in (decision.result.get("values") or {}).items():
        if typed.get("type") == "bool":
            return str(name)
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def explanation_text(decision: Decision, language: str | None) -> str:
    from pilar.rules import Result, render_text

    if not decision.result:
        return ""
    return render_text(Result.from_dict(decision.result), language=language or "es")


def decision_document(decision: Decision, *, language: str | None) -> dict[str, Any]:
    return {
        **decision_brief(decision),
        "claim_id": decision.claim_id,
        "person": person_brief(decision.claim.person),
        "package": {
            "name": decision.package_name,
            "version": decision.package_version,
            "content_hash": decision.package_hash,
        },
        "evaluation_date": decision.evaluation_date,
        "known_at": decision.known_at,
        "inputs": decision.inputs,
        "unmet_conditions": unmet_conditions(decision),
        "explanation": explanation_text(decision, language),
        "result": decision.result,
        "letter": reverse("api:decision_letter", kwargs={"decision_id": decision.pk}),
        "award_id": Award.objects.filter(decision=decision).values_list("pk", flat=True).first(),
    }


def calculation_document(calculation: AwardCalculation) -> dict[str, Any]:
    return {
        "id": calculation.pk,
        "reason": calculation.reason,
        "run_id": calculation.run_id,
        "package": {
            "name": calculation.package_name,
            "version": calculation.package_version,
            "content_hash": calculation.package_hash,
        },
        "evaluation_date": calculation.evaluation_date,
        "known_at": calculation.known_at,
        "amount": calculation.amount,
        "values": calculation.values,
        "inputs": calculation.inputs,
        "created_by": _username(calculation.created_by),
        "created_at": calculation.created_at,
    }


def award_summary(award: Award) -> dict[str, Any]:
    return {
        "id": award.pk,
        "person": person_brief(award.person),
        "claim_id": award.claim_id,
        "decision_id": award.decision_id,
        "package": {
            "name": award.package_name,
            "version": award.package_version,
            "content_hash": award.package_hash,
        },
        "benefit": award.benefit,
        "amount": award.amount,
        "frequency": award.frequency,
        "start_date": award.start_date,
        "status": award.status,
        "created_at": award.created_at,
    }


def award_document(award: Award) -> dict[str, Any]:
    return {
        **award_summary(award),
        "calculations": [calculation_document(c) for c in award.calculations.all()],
    }


def _kind_input(item: ClaimKindInput) -> dict[str, Any]:
    return {
        "name": item.name,
        "type": item.type,
        "label": dict(item.label),
        "unit": item.unit,
        "optional": item.optional,
        "default": _text(item.default) if item.default is not None else None,
    }


def claim_kind_document(kind: ClaimKind) -> dict[str, Any]:
    return {
        "package": kind.package,
        "package_version": kind.package_version,
        "package_title": dict(kind.package_title),
        "benefit": kind.benefit,
        "label": dict(kind.label),
        "frequency": kind.frequency,
        "inputs": [_kind_input(item) for item in kind.inputs],
        "derived": [_kind_input(item) for item in kind.derived],
    }


def preview_document(gathered: GatheredInputs, *, language: str | None) -> dict[str, Any]:
    return {
        "person_id": gathered.person_id,
        "claim_date": gathered.claim_date,
        "complete": gathered.complete,
        "inputs": gathered.to_dict(),
        "missing": [item.to_dict(language) for item in gathered.missing],
    }
