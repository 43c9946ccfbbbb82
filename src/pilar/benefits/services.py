"""Writes of benefits: claims are entered, adjudicated by the rules engine, and the decision is
approved or returned by a second officer (maker–checker) before an award exists.

1. ``claim_create``: a person, a scheme package and one of its benefits, the claim date and the
   facts declared on the form (checked against what the package asks for).
2. ``claim_adjudicate``: gathers the package's inputs (``inputs.gather_inputs``: registry, work
   history, declared facts, each with its source), refuses with ``ClaimIncomplete`` listing every
   missing datum, evaluates the newest version of the package on the claim date as the law is
   known today, and stores a ``pending`` decision with the inputs, the engine's result and the
   package's name, version and content hash. The claim becomes ``decided``.
3. ``decision_approve`` by another officer than the one who adjudicated (``same_officer``): a
   grant creates the award and its first calculation, the claim becomes ``granted``; a denial
   closes the claim as ``denied``. ``decision_return`` sends the claim back to ``entered`` with a
   reason, to be corrected and adjudicated again.
4. ``claim_withdraw``: the claimant withdraws an open claim.

Every entry point is one durable transaction that locks the claim row, checks the claim's
``version`` when the caller passes the one it read (optimistic locking: a decision made on a
claim someone else changed meanwhile is refused), writes, and records an audit event naming the
person. A refusal writes nothing.

The start date of an award is the claim date. The law pays old-age and cesantía pensions from
the day after the insured person stopped working, or from the claim date when they had already
stopped (LSS 1973 art. 139 and 146; NEEDS VERIFICATION): using the claim date is exact for a
claimant already out of work and a refinement to make for the others, once separations are
reliably recorded.
"""

from __future__ import annotations

import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from pilar.benefits import inputs as gathering
from pilar.benefits import totalisation
from pilar.benefits.errors import (
    ClaimExists,
    ClaimIncomplete,
    ClaimState,
    EvaluationFailed,
    SameOfficer,
    StaleVersion,
)
from pilar.benefits.models import (
    OPEN_CLAIM_STATUSES,
    Award,
    AwardCalculation,
    CalculationReason,
    Claim,
    ClaimStatus,
    Decision,
    DecisionStatus,
    Outcome,
)
from pilar.benefits.selectors import (
    benefit_of,
    check_claim,
    check_claim_date,
    scheme_package,
)
from pilar.core.actor import Actor
from pilar.core.audit import audit_record, created
from pilar.core.errors import FieldErrors, NotFound, PermissionDenied, ValidationFailed
from pilar.core.models import User
from pilar.core.roles import Perm
from pilar.registry.models import Person

CENTAVO = Decimal("0.01")
REASON_MAX_LENGTH = 1000


# --- helpers ------------------------------------------------------------------------------------


def _claim_for_write(actor: Actor, claim_id: int, permission: str) -> Claim:
    """The claim, locked for the rest of the transaction, if the actor may act on it. Outside
    the actor's region it is "not found", as for the person."""
    actor.require(permission)
    claim = Claim.objects.select_for_update().filter(pk=claim_id).first()
    if claim is None:
        raise NotFound(extra={"entity": "claim", "id": claim_id})
    person = Person.objects.filter(pk=claim.person_id).first()
    if person is None or not actor.sees_region(person.region):
        raise NotFound(extra={"entity": "claim", "id": claim_id})
    claim.person = person
    return claim


def _decision_for_write(actor: Actor, decision_id: int, permission: str) -> Decision:
    """The decision and its claim, both locked (claim first, the order every service uses)."""
    actor.require(permission)
    claim_id = Decision.objects.filter(pk=decision_id).values_list("claim_id", flat=True).first()
    if claim_id is None:
        raise NotFound(extra={"entity": "decision", "id": decision_id})
    try:
        claim = _claim_for_write(actor, claim_id, permission)
    except NotFound:
        raise NotFound(extra={"entity": "decision", "id": decision_id}) from None
    decision = Decision.objects.select_for_update().get(pk=decision_id)
    decision.claim = claim
    return decision


def _check_version(claim: Claim, expected: int | None) -> None:
    if expected is not None and expected != claim.version:
        raise StaleVersion(extra={"current_version": claim.version})


def _require_officer(actor: Actor) -> User:
    # Maker–checker needs two identifiable people: a script acting as the system cannot be one.
    if actor.user is None:
        raise PermissionDenied(_("Only a named officer can decide claims."))
    return actor.user


def _touch(claim: Claim, status: str) -> None:
    claim.status = status
    claim.version += 1
    claim.updated_at = timezone.now()
    claim.save(update_fields=["status", "version", "updated_at", "withdrawal_reason"])


def _clean_reason(reason: Any, field: str = "reason") -> str:
    text = (reason or "").strip() if isinstance(reason, str) else ""
    if not text:
        raise ValidationFailed.single(field, "required", _("Give the reason."))
    if len(text) > REASON_MAX_LENGTH:
        raise ValidationFailed.single(
            field,
            "too_long",
            _("At most %(max)d characters.") % {"max": REASON_MAX_LENGTH},
        )
    return text


# --- claims -------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def claim_create(
    *,
    actor: Actor,
    person_id: int,
    package: str,
    benefit: str,
    claim_date: datetime.date,
    declared: dict[str, Any] | None = None,
    agreement: str = "",
) -> Claim:
    """Enter a claim. Raises ``ValidationFailed`` with every field error (unknown scheme or
    benefit, a date in the future, before the birth or after the death, declared facts the
    scheme does not ask for or of the wrong type), ``ClaimExists`` when the person already has
    an open or granted claim of this kind, ``NotFound`` for a person outside the region.

    ``agreement`` names a totalisation agreement (``benefits.totalisation.agreement_files``):
    the claim is then decided with the periods of the agreement's other institutions too."""
    actor.require(Perm.CLAIM_ENTER)
    person = Person.objects.select_for_update().filter(pk=person_id).first()
    if person is None or not actor.sees_region(person.region):
        raise NotFound(extra={"entity": "person", "id": person_id})
    if person.death_date is not None:
        raise ValidationFailed.single(
            "person_id",
            "benefits.person_deceased",
            _("The person is recorded as deceased; a deceased person cannot claim."),
        )
    checked = check_claim(
        person=person, package=package, benefit=benefit, claim_date=claim_date, declared=declared
    )
    agreement_name = totalisation.check_agreement_name(agreement)
    existing = Claim.objects.filter(
        person=person, package=package, benefit=benefit, status__in=OPEN_CLAIM_STATUSES
    ).first()
    if existing is not None:
        raise ClaimExists(extra={"claim_id": existing.pk, "claim_status": existing.status})
    now = timezone.now()
    try:
        with transaction.atomic():
            claim = Claim.objects.create(
                person=person,
                package=checked.package.name,
                benefit=benefit,
                claim_date=claim_date,
                declared=checked.declared,
                agreement=agreement_name,
                entered_by=actor.user,
                created_at=now,
                updated_at=now,
            )
    except IntegrityError as error:
        # A concurrent entry of the same claim, caught by the unique index.
        raise ClaimExists() from error
    audit_record(
        actor=actor,
        action="claim.create",
        entity_type="claim",
        entity_id=claim.pk,
        person_id=person.pk,
        changes=created(
            {
                "package": claim.package,
                "benefit": claim.benefit,
                "claim_date": claim.claim_date,
                "status": claim.status,
                "agreement": claim.agreement,
                **{f"declared.{name}": value for name, value in checked.declared.items()},
            }
        ),
    )
    return claim


@transaction.atomic(durable=True)
def claim_adjudicate(
    *, actor: Actor, claim_id: int, expected_version: int | None = None
) -> Decision:
    """Decide an entered claim with the rules engine; the decision awaits a second officer.

    Gathers the inputs and refuses with ``ClaimIncomplete`` (every missing datum, labelled)
    before evaluating anything. Evaluates the newest version of the claim's package on the claim
    date, with the parameters as known today. Eligible: the amount and frequency of the
    package's benefit, from the claim date. Not eligible: a denial whose result lists each unmet
    condition. ``EvaluationFailed`` when the engine cannot decide (no parameter in force on the
    date, conflicting exceptions)."""
    from pilar.rules import MissingInputError, RulesError

    claim = _claim_for_write(actor, claim_id, Perm.CLAIM_ADJUDICATE)
    officer = _require_officer(actor)
    _check_version(claim, expected_version)
    if claim.status != ClaimStatus.ENTERED:
        raise ClaimState(
            _("Only an entered claim can be adjudicated; this one is %(status)s.")
            % {"status": claim.get_status_display()}
        )
    person = claim.person
    errors = FieldErrors()
    check_claim_date(errors, person, claim.claim_date)
    errors.raise_if_any()
    package = scheme_package(claim.package)
    info = benefit_of(package, claim.benefit)
    specs = gathering.input_specs(package)
    # The declared facts are checked again: the package may have a new version since entry.
    check = FieldErrors()
    declared = gathering.clean_declared(claim.declared, specs, check)
    check.raise_if_any()
    gathered = gathering.gather_inputs(
        person=person, claim_date=claim.claim_date, declared=declared, specs=specs
    )
    if gathered.missing:
        raise ClaimIncomplete(gathered.missing)

    today = timezone.localdate()
    if claim.agreement:
        return _adjudicate_totalised(
            actor=actor,
            claim=claim,
            officer=officer,
            package=package,
            info=info,
            gathered=gathered,
            today=today,
        )
    language = get_language() or "es"
    try:
        result = package.evaluate(
            gathered.engine_inputs(),
            on=claim.claim_date,
            known_at=today,
            outputs=[info.eligible],
        )
        eligible = bool(result.values[info.eligible])
        if eligible and info.amount:
            result = package.evaluate(
                gathered.engine_inputs(),
                on=claim.claim_date,
                known_at=today,
                outputs=[info.eligible, info.amount],
            )
    except MissingInputError as error:
        # Gathering supplies every required input; a package that wants more is a mismatch
        # between the package and DERIVED_INPUTS, reported like missing data.
        raise ClaimIncomplete(
            [
                gathering.MissingInput(item["name"], item.get("label") or {}, "not_declared")
                for item in error.params.get("inputs", [])
            ]
        ) from error
    except RulesError as error:
        raise EvaluationFailed(
            error.message(language), extra={"rules_error": error.to_dict()}
        ) from error

    # A benefit without an amount variable is decided on eligibility only (the 1997 law's
    # guaranteed pension, paid from the individual account): granted, with no amount.
    amount: Decimal | None = None
    if eligible and info.amount:
        raw = result.values.get(info.amount)
        if raw is None:
            raise EvaluationFailed(_("The scheme gives no amount for this benefit."))
        amount = Decimal(raw).quantize(CENTAVO, rounding=ROUND_HALF_UP)
    return _record_decision(
        actor=actor,
        claim=claim,
        officer=officer,
        package=package,
        info=info,
        eligible=eligible,
        amount=amount,
        inputs=gathered.to_dict(),
        result=result.to_dict(),
        today=today,
    )


def _adjudicate_totalised(
    *,
    actor: Actor,
    claim: Claim,
    officer: User,
    package: Any,
    info: Any,
    gathered: gathering.GatheredInputs,
    today: datetime.date,
) -> Decision:
    """The totalisation branch of ``claim_adjudicate`` (``benefits.totalisation``): this
    institution's award under the claim's agreement, with the other members' periods."""
    agreement = totalisation.agreement_load(claim.agreement)
    decided = totalisation.totalised_decision(
        agreement=agreement,
        package=package,
        info=info,
        gathered=gathered,
        claim_date=claim.claim_date,
        known_at=today,
        person_id=claim.person_id,
    )
    amount = (
        decided.amount.quantize(CENTAVO, rounding=ROUND_HALF_UP)
        if decided.amount is not None
        else None
    )
    foreign = {
        name: item["detail"]["message_id"]
        for name, item in decided.inputs.items()
        if item.get("source") == totalisation.FOREIGN_PERIODS
    }
    return _record_decision(
        actor=actor,
        claim=claim,
        officer=officer,
        package=package,
        info=info,
        eligible=decided.eligible,
        amount=amount,
        inputs=decided.inputs,
        result=decided.result,
        today=today,
        audited={"agreement": claim.agreement, "foreign_periods": foreign},
    )


def _record_decision(
    *,
    actor: Actor,
    claim: Claim,
    officer: User,
    package: Any,
    info: Any,
    eligible: bool,
    amount: Decimal | None,
    inputs: dict[str, Any],
    result: dict[str, Any],
    today: datetime.date,
    audited: dict[str, Any] | None = None,
) -> Decision:
    """Store a decision made by the rules engine (awaiting a second officer) and audit it."""
    decision = Decision.objects.create(
        claim=claim,
        outcome=Outcome.GRANTED if eligible else Outcome.DENIED,
        amount=amount,
        frequency=info.frequency or "monthly",
        start_date=claim.claim_date if eligible else None,
        package_name=package.name,
        package_version=package.version,
        package_hash=package.content_hash,
        evaluation_date=claim.claim_date,
        known_at=today,
        inputs=inputs,
        result=result,
        made_by=officer,
        made_at=timezone.now(),
    )
    _touch(claim, ClaimStatus.DECIDED)
    audit_record(
        actor=actor,
        action="decision.make",
        entity_type="decision",
        entity_id=decision.pk,
        person_id=claim.person_id,
        changes=created(
            {
                "claim": claim.pk,
                "outcome": decision.outcome,
                "amount": decision.amount,
                "frequency": decision.frequency,
                "start_date": decision.start_date,
                "package": f"{package.name} {package.version}",
                "package_hash": package.content_hash,
                **(audited or {}),
            }
        ),
    )
    return decision


@transaction.atomic(durable=True)
def claim_withdraw(
    *, actor: Actor, claim_id: int, reason: str, expected_version: int | None = None
) -> Claim:
    """The claimant withdraws an entered or decided claim (a pending decision is set aside as
    returned, with the same reason). A granted, denied or withdrawn claim cannot be withdrawn."""
    claim = _claim_for_write(actor, claim_id, Perm.CLAIM_ENTER)
    text = _clean_reason(reason)
    _check_version(claim, expected_version)
    if claim.status not in (ClaimStatus.ENTERED, ClaimStatus.DECIDED):
        raise ClaimState(
            _("Only an open claim can be withdrawn; this one is %(status)s.")
            % {"status": claim.get_status_display()}
        )
    before = claim.status
    now = timezone.now()
    set_aside = []
    for pending in Decision.objects.select_for_update().filter(
        claim=claim, status=DecisionStatus.PENDING
    ):
        pending.status = DecisionStatus.RETURNED
        pending.return_reason = text
        pending.checked_at = now
        pending.save(update_fields=["status", "return_reason", "checked_at"])
        set_aside.append(pending.pk)
    claim.withdrawal_reason = text
    _touch(claim, ClaimStatus.WITHDRAWN)
    audit_record(
        actor=actor,
        action="claim.withdraw",
        entity_type="claim",
        entity_id=claim.pk,
        person_id=claim.person_id,
        changes={
            "status": [before, claim.status],
            **({"decisions_set_aside": [None, set_aside]} if set_aside else {}),
        },
        note=text,
    )
    return claim


# --- maker–checker ------------------------------------------------------------------------------


def _check_pending(actor: Actor, decision: Decision, expected_version: int | None) -> None:
    if decision.made_by_id == _require_officer(actor).pk:
        raise SameOfficer()
    _check_version(decision.claim, expected_version)
    if decision.status != DecisionStatus.PENDING or decision.claim.status != ClaimStatus.DECIDED:
        raise ClaimState(
            _("This decision is no longer awaiting approval (%(status)s).")
            % {"status": decision.get_status_display()}
        )


@transaction.atomic(durable=True)
def decision_approve(
    *, actor: Actor, decision_id: int, expected_version: int | None = None
) -> Award | None:
    """Approve a pending decision: another officer than its maker, holding the approval
    permission. A grant creates the award and its first calculation (claim ``granted``); a denial
    closes the claim (``denied``) and returns None."""
    decision = _decision_for_write(actor, decision_id, Perm.DECISION_APPROVE)
    _check_pending(actor, decision, expected_version)
    claim = decision.claim
    now = timezone.now()
    decision.status = DecisionStatus.APPROVED
    decision.checked_by = actor.user
    decision.checked_at = now
    decision.save(update_fields=["status", "checked_by", "checked_at"])
    award: Award | None = None
    if decision.outcome == Outcome.GRANTED:
        assert decision.start_date is not None  # benefits_decision_granted_has_start
        award = Award.objects.create(
            person_id=claim.person_id,
            claim=claim,
            decision=decision,
            package_name=decision.package_name,
            benefit=claim.benefit,
            amount=decision.amount,
            frequency=decision.frequency,
            start_date=decision.start_date,
            package_version=decision.package_version,
            package_hash=decision.package_hash,
            created_at=now,
            updated_at=now,
        )
        AwardCalculation.objects.create(
            award=award,
            reason=CalculationReason.AWARD,
            package_name=decision.package_name,
            package_version=decision.package_version,
            package_hash=decision.package_hash,
            evaluation_date=decision.evaluation_date,
            known_at=decision.known_at,
            inputs=decision.inputs,
            amount=decision.amount,
            values={
                name: typed.get("value")
                for name, typed in decision.result.get("values", {}).items()
            },
            result=decision.result,
            created_by=actor.user,
            created_at=now,
        )
    _touch(claim, ClaimStatus.GRANTED if award is not None else ClaimStatus.DENIED)
    audit_record(
        actor=actor,
        action="decision.approve",
        entity_type="decision",
        entity_id=decision.pk,
        person_id=claim.person_id,
        changes={
            "status": [DecisionStatus.PENDING, DecisionStatus.APPROVED],
            "claim.status": [ClaimStatus.DECIDED, claim.status],
        },
    )
    if award is not None:
        audit_record(
            actor=actor,
            action="award.create",
            entity_type="award",
            entity_id=award.pk,
            person_id=claim.person_id,
            changes=created(
                {
                    "claim": claim.pk,
                    "decision": decision.pk,
                    "amount": award.amount,
                    "frequency": award.frequency,
                    "start_date": award.start_date,
                    "package": f"{award.package_name} {award.package_version}",
                }
            ),
        )
    return award


@transaction.atomic(durable=True)
def decision_return(
    *, actor: Actor, decision_id: int, reason: str, expected_version: int | None = None
) -> Decision:
    """Return a pending decision to be corrected: another officer than its maker, with a
    reason. The claim goes back to ``entered`` and can be adjudicated again."""
    decision = _decision_for_write(actor, decision_id, Perm.DECISION_APPROVE)
    text = _clean_reason(reason)
    _check_pending(actor, decision, expected_version)
    claim = decision.claim
    decision.status = DecisionStatus.RETURNED
    decision.checked_by = actor.user
    decision.checked_at = timezone.now()
    decision.return_reason = text
    decision.save(update_fields=["status", "checked_by", "checked_at", "return_reason"])
    _touch(claim, ClaimStatus.ENTERED)
    audit_record(
        actor=actor,
        action="decision.return",
        entity_type="decision",
        entity_id=decision.pk,
        person_id=claim.person_id,
        changes={
            "status": [DecisionStatus.PENDING, DecisionStatus.RETURNED],
            "claim.status": [ClaimStatus.DECIDED, ClaimStatus.ENTERED],
        },
        note=text,
    )
    return decision
