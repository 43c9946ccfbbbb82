"""The decision letter: what the claimant receives, as an A4 PDF in Spanish or English.

It states who decided what on which claim: the institution, the claimant (name, CURP, NSS), the
claim, the outcome — the amount, its frequency and start date, or each unmet condition with
what the law requires and the article — the calculation in plain language with its articles,
the rules package (name, version, content hash) the decision was computed with, the claimant's
right of appeal, the date and the two officers (maker and checker). A decision not yet approved
gives a draft, marked as such on every page.

The letter is rendered from what the decision stored (its inputs and the engine's result), never
by evaluating the rules again: it shows exactly what was decided.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from pilar.benefits import selectors
from pilar.benefits.inputs import pick
from pilar.benefits.models import Decision, DecisionStatus, Outcome
from pilar.core.actor import Actor
from pilar.core.identifiers import CURP, NSS
from pilar.registry.models import Address, Identifier

LANGUAGES = ("es", "en")
# The recurso de inconformidad (LSS art. 294 and its Reglamento): the term is written from
# memory and flagged on the letter itself until checked against the DOF.
APPEAL_BUSINESS_DAYS = 15


# The units the shipped packages write (free English text in the YAML), in the letter's
# language; an unknown unit is shown as written.
UNIT_NAMES = {
    "years": gettext_lazy("years"),
    "weeks": gettext_lazy("weeks"),
    "days": gettext_lazy("days"),
    "increments": gettext_lazy("increments"),
    "children": gettext_lazy("children"),
    "parents": gettext_lazy("parents"),
    "times the minimum wage": gettext_lazy("times the minimum wage"),
}
# Ratios and multiples are shown to four decimals; the stored result keeps every digit.
SHOWN_DECIMALS = Decimal("0.0001")


@dataclass(frozen=True)
class Step:
    """One line of the calculation: a computed value, a parameter of the law or an input."""

    label: str
    value: str
    kind: str
    formula: str | None
    reference: str | None
    needs_verification: bool
    valid: str | None


@dataclass(frozen=True)
class Unmet:
    label: str
    value: str | None
    requirement: str | None
    reference: str | None


def _operators() -> dict[str, str]:
    """What a comparison asks for, in words: "at least 500 weeks" rather than ">= 500"."""
    return {
        ">=": _("at least"),
        ">": _("more than"),
        "<=": _("at most"),
        "<": _("less than"),
        "==": _("exactly"),
        "!=": _("other than"),
    }


def format_number(value: Any, unit: str | None = None) -> str:
    """A number as the letter writes it: money with two decimals and thousands separators,
    fractions as percentages, counts whole."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    unit_text = (unit or "").lower()
    if "peso" in unit_text:
        return f"${number:,.2f}"
    if unit_text == "fraction":
        percent = (number * 100).quantize(SHOWN_DECIMALS, rounding=ROUND_HALF_UP).normalize()
        return f"{percent:,f} %"
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number.quantize(SHOWN_DECIMALS, rounding=ROUND_HALF_UP).normalize():,f}"


def format_value(value: Any, type_name: str | None, unit: str | None, language: str) -> str:
    if value is None:
        return "—"
    if type_name == "bool" or isinstance(value, bool):
        truthy = value if isinstance(value, bool) else str(value).lower() == "true"
        return _("yes") if truthy else _("no")
    if type_name == "date":
        return str(value)
    if type_name == "number":
        text = format_number(value, unit)
        if unit and "peso" not in unit.lower() and unit != "fraction":
            return f"{text} {UNIT_NAMES.get(unit, unit)}"
        return text
    return str(value)


def _steps(result: Mapping[str, Any], language: str) -> list[Step]:
    """The explanation tree, flattened depth-first, each name once: the outputs first, then
    what they were computed from."""
    seen: set[str] = set()
    steps: list[Step] = []

    def visit(node: Mapping[str, Any]) -> None:
        name = node.get("name", "")
        if name in seen:
            return
        seen.add(name)
        kind = node.get("kind", "")
        if kind != "builtin":
            parameter = node.get("parameter") or {}
            valid = None
            if parameter.get("valid_from"):
                valid = str(parameter["valid_from"])
                if parameter.get("valid_until"):
                    valid += f" – {parameter['valid_until']}"
            steps.append(
                Step(
                    label=pick(node.get("label"), language) or name,
                    value=format_value(
                        node.get("value"), node.get("type"), node.get("unit"), language
                    ),
                    kind=kind,
                    formula=node.get("formula"),
                    reference=node.get("reference"),
                    needs_verification=bool(parameter.get("needs_verification")),
                    valid=valid,
                )
            )
        for child in node.get("children") or ():
            visit(child)

    for root in result.get("explanation") or ():
        visit(root)
    return steps


def _unmet(decision: Decision, language: str) -> list[Unmet]:
    from pilar.benefits.schemas import unmet_conditions

    operators = _operators()
    unmet = []
    for item in unmet_conditions(decision):
        kind = _kind_of(item["value"])
        shown = None
        requirement = None
        if item["threshold"] is not None and item["operator"] is not None:
            shown = format_value(item["value"], kind, item["unit"], language)
            threshold = format_value(item["threshold"], kind, item["unit"], language)
            requirement = f"{operators.get(item['operator'], item['operator'])} {threshold}"
        unmet.append(
            Unmet(
                label=pick(item["label"], language) or item["test"],
                value=shown,
                requirement=requirement,
                reference=item["reference"],
            )
        )
    return unmet


def _kind_of(text: str | None) -> str | None:
    """The type of a condition's operand written as text by ``schemas.unmet_conditions``."""
    if text in ("true", "false"):
        return "bool"
    try:
        Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None
    return "number"


def _identifiers(person_id: int) -> dict[str, str]:
    found = dict(
        Identifier.objects.filter(
            person_id=person_id, scheme__in=[CURP, NSS], is_active=True
        ).values_list("scheme", "value")
    )
    return {scheme: str(value) for scheme, value in found.items()}


def _address(person_id: int, on: datetime.date) -> Address | None:
    return (
        Address.objects.filter(person_id=person_id, kind="home", valid_from__lte=on)
        .exclude(valid_to__lt=on)
        .order_by("-valid_from", "-pk")
        .first()
    )


def _officer(user: Any) -> str:
    if user is None:
        return ""
    return str(user.get_full_name() or user.username)


def _inputs(
    decision: Decision, language: str, units: Mapping[str, tuple[str | None, str | None]]
) -> list[dict[str, str]]:
    sources = {
        "registry": _("Registry"),
        "work_history": _("Work history"),
        "declared": _("Declared on the claim"),
        "default": _("Scheme default"),
    }
    rows = []
    for name, item in (decision.inputs or {}).items():
        # Decisions store each input's type and unit; the explanation tree is the fallback.
        type_name, unit = units.get(name, (None, None))
        type_name = item.get("type") or type_name
        unit = item.get("unit") or unit
        value = item.get("value")
        if type_name is None and isinstance(value, bool):
            type_name = "bool"
        rows.append(
            {
                "label": pick(item.get("label"), language) or name,
                "value": format_value(value, type_name, unit, language),
                "source": str(sources.get(item.get("source", ""), item.get("source", ""))),
            }
        )
    return rows


def _input_units(result: Mapping[str, Any]) -> dict[str, tuple[str | None, str | None]]:
    units: dict[str, tuple[str | None, str | None]] = {}

    def visit(node: Mapping[str, Any]) -> None:
        if node.get("kind") == "input":
            units[node["name"]] = (node.get("type"), node.get("unit"))
        for child in node.get("children") or ():
            visit(child)

    for root in result.get("explanation") or ():
        visit(root)
    return units


def letter_context(decision: Decision, language: str) -> dict[str, Any]:
    """Everything the template shows, computed in ``language`` (the caller has switched to it)."""
    claim = decision.claim
    person = claim.person
    result = decision.result or {}
    benefit = (result.get("benefits") or {}).get(claim.benefit) or {}
    approved = decision.status == DecisionStatus.APPROVED
    issued = (
        timezone.localtime(decision.checked_at).date()
        if approved and decision.checked_at
        else timezone.localdate()
    )
    identifiers = _identifiers(person.pk)
    frequencies = {"monthly": _("monthly"), "bimonthly": _("every two months")}
    steps = _steps(result, language)
    return {
        "language": language,
        "institution_name": settings.PILAR_INSTITUTION_NAME,
        "decision": decision,
        "claim": claim,
        "person": person,
        "curp": identifiers.get(CURP, ""),
        "nss": identifiers.get(NSS, ""),
        "address": _address(person.pk, issued),
        "benefit_label": pick(benefit.get("label"), language) or claim.benefit,
        "scheme_title": pick(result.get("title"), language) or decision.package_name,
        "granted": decision.outcome == Outcome.GRANTED,
        "amount": format_number(decision.amount, "pesos") if decision.amount is not None else None,
        "frequency": frequencies.get(decision.frequency, decision.frequency),
        "unmet": _unmet(decision, language) if decision.outcome == Outcome.DENIED else [],
        "steps": steps,
        "unverified": sum(1 for step in steps if step.needs_verification),
        "inputs": _inputs(decision, language, _input_units(result)),
        "draft": not approved,
        "returned": decision.status == DecisionStatus.RETURNED,
        "issued": issued,
        "maker": _officer(decision.made_by),
        "checker": _officer(decision.checked_by) if approved else "",
        "appeal_days": APPEAL_BUSINESS_DAYS,
    }


def letter_html(decision: Decision, language: str) -> str:
    language = language if language in LANGUAGES else "es"
    with translation.override(language):
        return render_to_string("benefits/letter.html", letter_context(decision, language))


def decision_letter_document(*, actor: Actor, decision_id: int, language: str) -> Any:
    """The letter laid out by WeasyPrint (a ``weasyprint.Document``: pages and their boxes).
    Reading it is a read of the person's record: logged (action ``letter``)."""
    from weasyprint import HTML

    decision = selectors.decision_get(
        actor=actor, decision_id=decision_id, purpose="decision letter"
    )
    html = letter_html(decision, language)
    # The letter links nothing (no images, no style sheets): no base URL to resolve against.
    return HTML(string=html).render()


def decision_letter_pdf(*, actor: Actor, decision_id: int, language: str) -> bytes:
    """The decision letter as PDF bytes (A4), in ``language`` (``es`` or ``en``)."""
    document = decision_letter_document(actor=actor, decision_id=decision_id, language=language)
    pdf: bytes = document.write_pdf()
    return pdf


def document_text(document: Any) -> str:
    """The text a laid-out WeasyPrint document shows, page by page (for checks and tests)."""
    parts: list[str] = []

    def walk(box: Any) -> Iterable[str]:
        text = getattr(box, "text", None)
        if isinstance(text, str):
            yield text
        for child in getattr(box, "children", ()) or ():
            yield from walk(child)

    for page in document.pages:
        parts.append(" ".join(walk(page._page_box)))
    return "\n".join(parts)
