"""Reads of benefits: claims, decisions, awards, the kinds of claim the scheme packages offer,
and a preview of the inputs adjudication would use.

Claims, decisions and awards are part of a person's record: reading one is checked against the
actor's permission and region (a person outside the region is "not found") and written to the
access log with its purpose, like any read of the record. Lists are not record reads and are not
logged per row, except a list of one person's claims or awards, which is a read of that person.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pilar.benefits import inputs as gathering
from pilar.benefits.errors import PackageUnavailable
from pilar.benefits.inputs import GatheredInputs, InputSpec
from pilar.benefits.models import (
    Award,
    AwardCalculation,
    AwardStatus,
    Claim,
    ClaimStatus,
    Decision,
    DecisionStatus,
)
from pilar.core.actor import Actor
from pilar.core.audit import access_record
from pilar.core.errors import FieldErrors, NotFound, ValidationFailed
from pilar.core.pagination import Page, paginate
from pilar.core.roles import Perm
from pilar.registry.models import Person

logger = logging.getLogger("pilar.benefits")

# --- scheme packages ----------------------------------------------------------------------------


def scheme_package(name: str, *, field: str = "package") -> Any:
    """The newest version of a scheme package. An unknown name is a field error; a package that
    exists but cannot be loaded (a changed published version, a broken file) is
    ``PackageUnavailable`` with the engine's message (file, line, article)."""
    from pilar.rules import PackageNotFoundError, RulesError, load_package

    if not name or not isinstance(name, str) or "/" in name or name.startswith("."):
        raise ValidationFailed.single(field, "benefits.unknown_package", _("Unknown scheme."))
    try:
        return load_package(name)
    except PackageNotFoundError:
        raise ValidationFailed.single(
            field, "benefits.unknown_package", _("Unknown scheme.")
        ) from None
    except RulesError as error:
        language = _language()
        raise PackageUnavailable(
            _("The rules of %(package)s cannot be loaded: %(error)s")
            % {"package": name, "error": error.message(language)},
            extra={"rules_error": error.to_dict()},
        ) from error


def _language() -> str:
    from django.utils.translation import get_language

    return get_language() or "es"


def benefit_of(package: Any, benefit: str, *, field: str = "benefit") -> Any:
    """The package's ``BenefitInfo`` for ``benefit``; an unknown one is a field error."""
    info = package.benefits.get(benefit) if isinstance(benefit, str) else None
    if info is None:
        raise ValidationFailed.single(
            field,
            "benefits.unknown_benefit",
            _("This scheme has no benefit %(benefit)s; it has: %(benefits)s.")
            % {"benefit": benefit, "benefits": ", ".join(sorted(package.benefits))},
        )
    return info


@dataclass(frozen=True)
class ClaimKindInput:
    """A fact the claim form asks for: the package's name, type and label for it."""

    name: str
    type: str
    label: Mapping[str, str]
    unit: str | None
    optional: bool
    default: Any


@dataclass(frozen=True)
class ClaimKind:
    package: str
    package_version: str
    package_title: Mapping[str, str]
    benefit: str
    label: Mapping[str, str]
    frequency: str
    inputs: list[ClaimKindInput]
    derived: list[ClaimKindInput]

    @property
    def key(self) -> str:
        return f"{self.package}:{self.benefit}"


def _kind_input(spec: InputSpec) -> ClaimKindInput:
    return ClaimKindInput(
        name=spec.name,
        type=spec.type,
        label=spec.label,
        unit=spec.unit,
        optional=spec.optional,
        default=spec.default,
    )


def claim_kind(package: Any, benefit: str) -> ClaimKind:
    info = benefit_of(package, benefit)
    specs = gathering.input_specs(package)
    return ClaimKind(
        package=package.name,
        package_version=package.version,
        package_title=dict(package.title or {}),
        benefit=benefit,
        label=dict(info.label),
        frequency=info.frequency or "monthly",
        inputs=[_kind_input(spec) for spec in gathering.declared_specs(specs).values()],
        derived=[_kind_input(spec) for spec in specs.values() if spec.derived],
    )


def claim_kinds() -> list[ClaimKind]:
    """Every benefit of every shipped package (newest versions), with the facts its claim form
    must ask for. Scheme rules are public: no permission is needed to read them."""
    from pilar.rules import available_packages

    names = sorted({str(getattr(entry, "name", entry)) for entry in available_packages()})
    kinds: list[ClaimKind] = []
    for name in names:
        try:
            package = scheme_package(name)
        except PackageUnavailable:
            # One broken package must not stop claims of every other scheme; it is logged for
            # the administrators, and its claims are refused with the reason at adjudication.
            logger.exception("Scheme package %s cannot be loaded; its claim kinds are hidden", name)
            continue
        kinds.extend(claim_kind(package, benefit) for benefit in package.benefits)
    return kinds


# --- access helpers -----------------------------------------------------------------------------


def visible_claims(actor: Actor) -> QuerySet[Claim]:
    actor.require(Perm.CLAIM_VIEW)
    claims = Claim.objects.all()
    if not actor.national_scope:
        claims = claims.filter(person__region=actor.region or "")
    return claims


def visible_awards(actor: Actor) -> QuerySet[Award]:
    actor.require(Perm.AWARD_VIEW)
    awards = Award.objects.all()
    if not actor.national_scope:
        awards = awards.filter(person__region=actor.region or "")
    return awards


def visible_person(actor: Actor, person_id: int) -> Person:
    """The person, if the actor may see their record (not logged: the caller logs the read)."""
    person = Person.objects.filter(pk=person_id).first()
    if person is None or not actor.sees_region(person.region):
        raise NotFound(extra={"entity": "person", "id": person_id})
    return person


# --- claims -------------------------------------------------------------------------------------


def claim_list(
    *,
    actor: Actor,
    status: str | None = None,
    person_id: int | None = None,
    package: str | None = None,
    benefit: str | None = None,
    awaiting_my_approval: bool = False,
    page: int = 1,
    page_size: int = 25,
    purpose: str = "",
) -> Page[Claim]:
    """Claims, newest first, in the actor's region. ``awaiting_my_approval`` keeps the claims
    whose pending decision another officer made (what the actor may approve). Each claim
    carries ``pending_decision_id`` and ``pending_made_by_id`` (None without one). A list of one
    person's claims is a read of that person's record and is logged."""
    claims = visible_claims(actor)
    if status:
        if status not in ClaimStatus.values:
            raise ValidationFailed.single(
                "status",
                "invalid_choice",
                _("Choose one of: %(choices)s.") % {"choices": ", ".join(ClaimStatus.values)},
            )
        claims = claims.filter(status=status)
    if person_id is not None:
        visible_person(actor, person_id)
        claims = claims.filter(person_id=person_id)
    if package:
        claims = claims.filter(package=package)
    if benefit:
        claims = claims.filter(benefit=benefit)
    pending = Decision.objects.filter(claim=OuterRef("pk"), status=DecisionStatus.PENDING)
    claims = claims.annotate(
        pending_decision_id=Subquery(pending.values("pk")[:1]),
        pending_made_by_id=Subquery(pending.values("made_by_id")[:1]),
    )
    if awaiting_my_approval:
        claims = claims.filter(pending_decision_id__isnull=False).exclude(
            pending_made_by_id=actor.user.pk if actor.user is not None else None
        )
    result = paginate(
        claims.select_related("person", "entered_by").order_by("-created_at", "-pk"),
        page=page,
        page_size=page_size,
    )
    if person_id is not None:
        access_record(actor=actor, person_id=person_id, action="claims", purpose=purpose)
    return result


def claim_get(*, actor: Actor, claim_id: int, purpose: str = "") -> Claim:
    """One claim with its person and its decisions (newest first, ``claim.decisions.all()``);
    the read is logged against the person."""
    claim = (
        visible_claims(actor)
        .select_related("person", "entered_by")
        .prefetch_related(
            Prefetch(
                "decisions",
                queryset=Decision.objects.select_related("made_by", "checked_by").order_by(
                    "-made_at", "-pk"
                ),
            )
        )
        .filter(pk=claim_id)
        .first()
    )
    if claim is None:
        raise NotFound(extra={"entity": "claim", "id": claim_id})
    access_record(actor=actor, person_id=claim.person_id, action="claim", purpose=purpose)
    return claim


def decision_get(*, actor: Actor, decision_id: int, purpose: str = "") -> Decision:
    """One decision with its claim, person and officers; the read is logged."""
    actor.require(Perm.CLAIM_VIEW)
    decision = (
        Decision.objects.select_related("claim__person", "made_by", "checked_by")
        .filter(pk=decision_id)
        .first()
    )
    if decision is None or not actor.sees_region(decision.claim.person.region):
        raise NotFound(extra={"entity": "decision", "id": decision_id})
    access_record(
        actor=actor, person_id=decision.claim.person_id, action="decision", purpose=purpose
    )
    return decision


# --- awards -------------------------------------------------------------------------------------


def award_list(
    *,
    actor: Actor,
    person_id: int | None = None,
    status: str | None = None,
    package: str | None = None,
    page: int = 1,
    page_size: int = 25,
    purpose: str = "",
) -> Page[Award]:
    """Awards, newest first, in the actor's region; one person's awards are a logged read."""
    awards = visible_awards(actor)
    if status:
        if status not in AwardStatus.values:
            raise ValidationFailed.single(
                "status",
                "invalid_choice",
                _("Choose one of: %(choices)s.") % {"choices": ", ".join(AwardStatus.values)},
            )
        awards = awards.filter(status=status)
    if person_id is not None:
        visible_person(actor, person_id)
        awards = awards.filter(person_id=person_id)
    if package:
        awards = awards.filter(package_name=package)
    result = paginate(
        awards.select_related("person", "claim").order_by("-created_at", "-pk"),
        page=page,
        page_size=page_size,
    )
    if person_id is not None:
        access_record(actor=actor, person_id=person_id, action="awards", purpose=purpose)
    return result


def award_get(*, actor: Actor, award_id: int, purpose: str = "") -> Award:
    """One award with its calculation history (``award.calculations.all()``, newest first)."""
    award = (
        visible_awards(actor)
        .select_related("person", "claim", "decision__made_by", "decision__checked_by")
        .prefetch_related(
            Prefetch(
                "calculations",
                queryset=AwardCalculation.objects.select_related("run", "created_by").order_by(
                    "-created_at", "-pk"
                ),
            )
        )
        .filter(pk=award_id)
        .first()
    )
    if award is None:
        raise NotFound(extra={"entity": "award", "id": award_id})
    access_record(actor=actor, person_id=award.person_id, action="award", purpose=purpose)
    return award


# --- inputs preview -----------------------------------------------------------------------------


def check_claim_date(
    errors: FieldErrors, person: Person, claim_date: Any, *, today: datetime.date | None = None
) -> None:
    """A claim date is a real date, not in the future, within the person's life."""
    today = today or timezone.localdate()
    if not isinstance(claim_date, datetime.date) or isinstance(claim_date, datetime.datetime):
        errors.add("claim_date", "date.invalid", _("Give a date as YYYY-MM-DD."))
        return
    if claim_date > today:
        errors.add("claim_date", "date.in_future", _("The date cannot be in the future."))
    if claim_date < person.birth_date:
        errors.add(
            "claim_date",
            "benefits.claim_before_birth",
            _("The claim date is before the birth date."),
        )
    if person.death_date is not None and person.death_date <= claim_date:
        errors.add(
            "person_id",
            "benefits.person_deceased",
            _("The person had died by the claim date; a deceased person cannot claim."),
        )


@dataclass(frozen=True)
class CheckedClaim:
    package: Any
    benefit: Any
    specs: dict[str, InputSpec]
    declared: dict[str, Any]


def check_claim(
    *, person: Person, package: str, benefit: str, claim_date: Any, declared: Any
) -> CheckedClaim:
    """Everything about a claim that can be wrong, as one ``ValidationFailed`` with every field
    error: the scheme and benefit exist, the date is sensible, the declared facts are those the
    scheme asks for, with the right types."""
    errors = FieldErrors()
    loaded = None
    info = None
    try:
        loaded = scheme_package(package)
        info = benefit_of(loaded, benefit)
    except ValidationFailed as error:
        for name, items in error.field_errors.items():
            for item in items:
                errors.add(name, item.code, item.message)
    check_claim_date(errors, person, claim_date)
    specs = gathering.input_specs(loaded) if loaded is not None else {}
    cleaned = gathering.clean_declared(declared, specs, errors) if loaded is not None else {}
    errors.raise_if_any()
    return CheckedClaim(package=loaded, benefit=info, specs=specs, declared=cleaned)


def claim_inputs_preview(
    *,
    actor: Actor,
    person_id: int,
    package: str,
    benefit: str,
    claim_date: datetime.date,
    declared: Mapping[str, Any] | None,
    purpose: str = "",
) -> GatheredInputs:
    """What adjudication would use for this claim, before it is entered: each input's value and
    source, and what is missing. Reads the person's work history: logged as a record read."""
    actor.require(Perm.CLAIM_ENTER)
    person = visible_person(actor, person_id)
    checked = check_claim(
        person=person, package=package, benefit=benefit, claim_date=claim_date, declared=declared
    )
    access_record(actor=actor, person_id=person.pk, action="claim_preview", purpose=purpose)
    return gathering.gather_inputs(
        person=person, claim_date=claim_date, declared=checked.declared, specs=checked.specs
    )
