"""Totalisation claims: a claim decided under a totalisation agreement, with this institution's
own periods from its work history and the other institutions' periods from the insurance
periods documents their federation members sent (``exchange.ForeignPeriods``).

Decisions taken here (docs/federation.md, "Hub", leaves them open):

- **Which agreements.** ``settings.PILAR_TOTALISATION_AGREEMENTS`` maps a name to an agreement
  file. When the setting is absent the names are the shipped agreements
  (``rules/agreements/<name>.yaml``) and the examples in ``docs/examples/agreement-*.yaml``
  when the source tree is at hand. ``Claim.agreement`` stores the name, never a path, so a
  decision is reproducible on another node configured alike.
- **Which institution is this node.** The agreement's institution whose ``member`` is
  ``settings.PILAR_NODE_CODE``; its scheme must be a package scheme naming the claim's package
  (the benefit is the claim's). The other institutions' schemes come from the agreement file.
- **Whose periods are needed.** Every other institution of the agreement that names a federation
  ``member``: a claim under the agreement is decided on a statement from each (a statement of
  no periods is still one). Institutions without a ``member`` are outside the federation and
  hold nothing this node can know of. A missing document refuses the adjudication naming the
  institutions (staff fetch them from the person's page).
- **Units.** A member's document states ``totals.weeks`` and ``totals.days``. An institution
  counting weeks takes the weeks, one counting days takes the days; one counting months,
  quarters or years takes the weeks converted exactly with the factors of Reg. (CE) 987/2009
  art. 13.1.c, kept to four decimals rounded down (a fraction is allowed, art. 13.1.d; the
  totalisation rounds up once, art. 13.1.e). Overlapping periods are left to the documents:
  each member states the periods it counts (987/2009 art. 12), and ``totalise`` adds them as
  given.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from pilar.core.errors import ApplicationError, ValidationFailed

FOREIGN_PERIODS = "foreign_periods"
FOUR_PLACES = Decimal("0.0001")


class ForeignPeriodsMissing(ApplicationError):
    """A totalisation claim needs every member institution's insurance periods document."""

    code = "benefits.foreign_periods_missing"
    status = 422
    title = gettext_lazy("The insurance periods of other institutions are missing.")


class AgreementNotApplicable(ApplicationError):
    """The agreement cannot decide this claim here (this node is not one of its institutions,
    its scheme is not the claim's package, a document cannot be read)."""

    code = "benefits.agreement_not_applicable"
    status = 422
    title = gettext_lazy("The totalisation agreement cannot be applied to this claim.")


def agreement_files() -> dict[str, Path]:
    """The agreements a claim may name, ``{name: file}``."""
    configured = getattr(settings, "PILAR_TOTALISATION_AGREEMENTS", None)
    if configured is not None:
        return {str(name): Path(path) for name, path in dict(configured).items()}
    from pilar.rules.totalisation import AGREEMENTS_DIR

    files = {path.stem: path for path in sorted(AGREEMENTS_DIR.glob("*.yaml"))}
    examples = Path(__file__).resolve().parents[3] / "docs" / "examples"
    for path in sorted(examples.glob("agreement-*.yaml")):
        files.setdefault(path.stem, path)
    return files


def check_agreement_name(name: Any, *, field: str = "agreement") -> str:
    """``name`` stripped, or ``ValidationFailed`` naming the agreements there are."""
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        return ""
    known = agreement_files()
    if text not in known:
        raise ValidationFailed.single(
            field,
            "benefits.unknown_agreement",
            _("Unknown totalisation agreement %(name)s; there are: %(known)s.")
            % {"name": text, "known": ", ".join(sorted(known)) or "—"},
        )
    return text


def agreement_load(name: str) -> Any:
    """The ``rules.totalisation.Agreement`` named ``name``."""
    from pilar.rules.totalisation import TotalisationError, load_agreement

    path = agreement_files().get(name)
    if path is None:
        check_agreement_name(name)
    try:
        return load_agreement(path=path)
    except TotalisationError as error:
        raise AgreementNotApplicable(error.message(get_language() or "es")) from error


@dataclass(frozen=True)
class ForeignStatement:
    """One other institution's periods for the totalisation, from its member's document."""

    institution: str
    member: str
    quantity: Decimal
    unit: str
    foreign_periods_id: int
    message_id: str
    received_at: datetime.datetime
    totals: Mapping[str, Any]
    label: Mapping[str, str]

    def as_input(self) -> dict[str, Any]:
        return {
            "value": str(self.quantity),
            "source": FOREIGN_PERIODS,
            "label": dict(self.label),
            "type": "number",
            "unit": self.unit,
            "detail": {
                "member": self.member,
                "foreign_periods_id": self.foreign_periods_id,
                "message_id": self.message_id,
                "received_at": self.received_at.isoformat(),
                "totals": dict(self.totals),
            },
        }


def _number(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise ValueError(value)
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(value) from None
    if not result.is_finite() or result < 0:
        raise ValueError(value)
    return result


def statement_quantity(totals: Mapping[str, Any], unit: str) -> Decimal:
    """The periods of a document's ``totals`` in ``unit`` (see the module's note on units).
    Raises ``ValueError`` when the figure it needs is absent or not a number."""
    from pilar.rules.totalisation import convert_exact

    if unit == "day":
        return _number(totals.get("days"))
    weeks = _number(totals.get("weeks"))
    if unit == "week":
        return weeks
    exact = convert_exact(Fraction(weeks), "week", unit)  # type: ignore[arg-type]
    return (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
        FOUR_PLACES, rounding=ROUND_DOWN
    )


def foreign_statements(*, person_id: int, agreement: Any, own: str) -> list[ForeignStatement]:
    """Each member institution's current document as periods in its unit; raises
    ``ForeignPeriodsMissing`` naming every institution without one."""
    from pilar.exchange.models import ForeignPeriods

    language = get_language() or "es"
    statements: list[ForeignStatement] = []
    missing: list[str] = []
    for institution in agreement.institutions.values():
        if institution.id == own or not institution.member:
            continue
        document = (
            ForeignPeriods.objects.filter(
                person_id=person_id, member=institution.member, superseded_at__isnull=True
            )
            .select_related("message")
            .order_by("-received_at", "-pk")
            .first()
        )
        name = institution.name.get(language[:2]) or institution.name.get("es") or institution.id
        if document is None:
            missing.append(f"{name} ({institution.member})")
            continue
        totals = (document.document or {}).get("totals") or {}
        try:
            quantity = statement_quantity(totals, institution.unit)
        except ValueError:
            raise AgreementNotApplicable(
                _(
                    "The insurance periods document of %(member)s (message %(message)s) does "
                    "not state the total %(unit)s this agreement counts."
                )
                % {
                    "member": institution.member,
                    "message": document.message.message_id,
                    "unit": institution.unit,
                },
                extra={"member": institution.member, "foreign_periods_id": document.pk},
            ) from None
        statements.append(
            ForeignStatement(
                institution=institution.id,
                member=institution.member,
                quantity=quantity,
                unit=institution.unit,
                foreign_periods_id=document.pk,
                message_id=document.message.message_id,
                received_at=document.received_at,
                totals=totals,
                label={
                    "es": f"Períodos en {institution.name.get('es', institution.id)}",
                    "en": f"Periods at {institution.name.get('en', institution.id)}",
                },
            )
        )
    if missing:
        raise ForeignPeriodsMissing(
            _(
                "The insurance periods of %(institutions)s are missing: fetch them from the "
                "person's page, then adjudicate again."
            )
            % {"institutions": ", ".join(missing)},
            extra={"institutions": missing},
        )
    return statements


@dataclass(frozen=True)
class TotalisedDecision:
    eligible: bool
    amount: Decimal | None
    result: dict[str, Any]
    inputs: dict[str, Any]


def own_institution(agreement: Any, package_name: str) -> Any:
    """This node's institution in ``agreement``, whose scheme must be ``package_name``."""
    code = settings.PILAR_NODE_CODE
    for institution in agreement.institutions.values():
        if institution.member == code:
            break
    else:
        raise AgreementNotApplicable(
            _(
                "Agreement %(agreement)s names no institution for this node (%(code)s): add "
                "member: %(code)s to its institution in the agreement file."
            )
            % {"agreement": agreement.name, "code": code}
        )
    scheme = institution.scheme
    if scheme is None or scheme.kind != "package" or scheme.settings["name"] != package_name:
        raise AgreementNotApplicable(
            _(
                "In agreement %(agreement)s, institution %(institution)s is not computed with "
                "the claim's scheme %(package)s."
            )
            % {"agreement": agreement.name, "institution": institution.id, "package": package_name}
        )
    return institution


def totalised_decision(
    *,
    agreement: Any,
    package: Any,
    info: Any,
    gathered: Any,
    claim_date: datetime.date,
    known_at: datetime.date,
    person_id: int,
) -> TotalisedDecision:
    """Decide a claim under ``agreement``: this institution's outcome of ``totalise`` with its
    own periods (the package's periods input, from the work history) and the other members'
    documents. ``result`` is shaped like a rules ``Result`` (values, explanation, benefits) so
    the decision is shown like any other, with the whole totalisation under
    ``result["totalisation"]``; ``inputs`` adds the foreign periods and their message ids."""
    from pilar.rules.explanation import Node
    from pilar.rules.totalisation import (
        PackageScheme,
        Periods,
        TotalisationError,
        schemes_from_agreement,
        totalise,
    )

    institution = own_institution(agreement, package.name)
    declared = institution.scheme.settings
    periods_input = declared["periods_input"]
    own_value = gathered.values.get(periods_input)
    if own_value is None:
        raise AgreementNotApplicable(
            _("The scheme has no input %(name)s for the periods.") % {"name": periods_input}
        )
    statements = foreign_statements(person_id=person_id, agreement=agreement, own=institution.id)
    engine_inputs = {
        name: value for name, value in gathered.engine_inputs().items() if name != periods_input
    }
    language = get_language() or "es"
    periods: dict[str, Periods] = {
        institution.id: Periods(Decimal(str(own_value.value)), institution.unit)
    }
    for statement in statements:
        periods[statement.institution] = Periods(statement.quantity, statement.unit)  # type: ignore[arg-type]
    try:
        # The other institutions' schemes as the file declares them; a package scheme of
        # another institution gets no person inputs of ours (only its own statement counts).
        others = schemes_from_agreement(agreement, institutions=[s.institution for s in statements])
        own_scheme = PackageScheme(
            package,
            benefit=info.name,
            periods_input=periods_input,
            inputs=engine_inputs,
            required_periods=declared["required_periods"],
            maximum_period=declared["maximum_period"],
            unit=institution.unit,
        )
        result = totalise(agreement, periods, {**others, institution.id: own_scheme}, on=claim_date)
    except TotalisationError as error:
        raise AgreementNotApplicable(
            error.message(language), extra={"rules_error": error.to_dict()}
        ) from error
    outcome = result[institution.id]
    eligible = outcome.award > 0
    amount = outcome.award if eligible else None
    root = Node(
        name=info.amount or info.eligible,
        kind="formula",
        type="number",
        value=outcome.award,
        label=info.label,
        reference=agreement.pro_rata.reference,
        formula=f"totalise({agreement.name}).{institution.id}.award",
        children=(outcome.explanation,),
    )
    values: dict[str, Any] = {info.eligible: {"type": "bool", "value": eligible}}
    if info.amount:
        values[info.amount] = {"type": "number", "value": str(outcome.award)}
    shaped = {
        "package": package.name,
        "version": package.version,
        "content_hash": package.content_hash,
        "title": dict(agreement.title),
        "on": claim_date.isoformat(),
        "known_at": known_at.isoformat(),
        "values": values,
        "explanation": [root.to_dict()],
        "benefits": {info.name: info.to_dict()},
        "totalisation": {
            **result.to_dict(),
            "institution": institution.id,
            "member": institution.member,
        },
    }
    inputs = gathered.to_dict()
    for statement in statements:
        inputs[f"{FOREIGN_PERIODS}.{statement.institution}"] = statement.as_input()
    return TotalisedDecision(eligible=eligible, amount=amount, result=shaped, inputs=inputs)
