"""Template tags of the benefits UI.

- ``{% person_benefits person %}``: the benefits section of the registry's person page. The
  registry never imports benefits; its template loads this library, and the tag reads the
  person's claims and awards through the benefits selectors with the signed-in staff member's
  actor (nothing is shown to someone without ``claim.view`` / ``award.view``).
- ``{% decision_explanation result benefit %}``: a decision's (or an award calculation's) stored
  engine result, ``Result.to_dict()``, in plain language: "why not" for a denial, then every step
  of the calculation with its label, value, formula in words, article and the validity of the
  parameters it used. The JSON tree is turned into ``Step`` objects here, in the request's
  language, and ``benefits/_step.html`` renders them recursively.
- filters for badges and labels.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from pilar.benefits.forms import in_language, language_code
from pilar.core.errors import ApplicationError
from pilar.core.roles import Perm
from pilar.rules.explanation import Node, Result, UnmetCondition

register = template.Library()

# How many claims and awards the person page lists before pointing to the queue.
PERSON_PAGE_ITEMS = 10

# --- values in plain language ---------------------------------------------------------------------


def _units() -> dict[str, str]:
    # Package units are free text (docs/rules-language.md); these are the ones the shipped
    # packages use. Any other unit is shown as the package wrote it.
    return {
        "weeks": _("weeks"),
        "years": _("years"),
        "days": _("days"),
        "months": _("months"),
        "persons": _("persons"),
        "children": _("children"),
        "parents": _("parents"),
        "increments": _("increments"),
        "times the minimum wage": _("times the minimum wage"),
        "uma": _("UMA"),
    }


def _money_period(unit_key: str) -> str:
    """What a money unit says of the period ("pesos per month" → "a month"), or ""."""
    return {
        "pesos per day": _("a day"),
        "pesos per month": _("a month"),
        "pesos per two months": _("per two months"),
        "pesos per year": _("a year"),
    }.get(unit_key, "")


_FRACTION_UNITS = {"fraction", "ratio"}
_PERCENT_UNITS = {"percent", "%"}


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _number(amount: Decimal, places: int = 4) -> str:
    """A number with thousands separators and at most ``places`` decimals, trailing zeros off:
    the engine keeps 28 digits, which nobody reads."""
    rounded = amount.quantize(Decimal(1).scaleb(-places)) if amount.as_tuple().exponent else amount
    text = f"{rounded:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_value(value: Any, type_name: str | None = None, unit: str | None = None) -> str:
    """A rules value as a person reads it: ``$ 8,123.45`` for pesos, ``80 %`` for a fraction,
    ``430 semanas``, ``Sí``, ``1 jul 2021``."""
    if value is None:
        return "—"
    if type_name == "bool" or isinstance(value, bool):
        if isinstance(value, str):
            value = value.lower() == "true"
        return _("Yes") if value else _("No")
    if type_name == "date" or isinstance(value, datetime.date):
        try:
            day = (
                value
                if isinstance(value, datetime.date)
                else datetime.date.fromisoformat(str(value))
            )
        except ValueError:
            return str(value)
        return date_format(day, "j M Y")
    amount = _decimal(value) if type_name in (None, "number") else None
    if amount is None:
        return str(value)
    unit_key = (unit or "").strip().lower()
    if unit_key in ("pesos", "peso", "mxn") or unit_key.startswith("pesos per"):
        money = f"$ {amount.quantize(Decimal('0.01')):,.2f}"
        period = _money_period(unit_key)
        return f"{money} {period}" if period else money
    if unit_key in _FRACTION_UNITS:
        return f"{_number(amount * 100, 3)} %"
    if unit_key in _PERCENT_UNITS:
        return f"{_number(amount, 3)} %"
    if not unit_key:
        return _number(amount)
    return f"{_number(amount)} {_units().get(unit_key, unit or '')}"


@register.filter
def rules_label(label: Any) -> str:
    """``{{ kind.label|rules_label }}``: a package label in the request's language."""
    return in_language(label)


@register.filter
def frequency_label(code: str | None) -> str:
    return {"monthly": _("monthly"), "bimonthly": _("every two months")}.get(code or "", code or "")


@register.filter
def amount(value: Any) -> str:
    """An award or decision amount in pesos."""
    return format_value(value, "number", "pesos")


_BADGES = {
    "claim": {
        "entered": "badge--info",
        "decided": "badge--suspended",
        "granted": "badge--active",
        "denied": "badge--error",
        "withdrawn": "badge--inactive",
    },
    "decision": {
        "pending": "badge--suspended",
        "approved": "badge--active",
        "returned": "badge--inactive",
    },
    "outcome": {"granted": "badge--active", "denied": "badge--error"},
    "award": {"active": "badge--active", "suspended": "badge--suspended", "ended": "badge--ended"},
}


@register.filter
def badge_class(status: str, kind: str) -> str:
    """``{{ claim.status|badge_class:"claim" }}``: the badge colour of a status."""
    return _BADGES.get(kind, {}).get(status, "badge--info")


# --- formulas in words ----------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'[^']*')
      | (?P<number>\d+(?:\.\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)
      | (?P<operator><=|>=|==|!=|[-+*/<>(),])
    )""",
    re.X,
)


def _word_map() -> dict[str, str]:
    return {
        "and": _("and"),
        "or": _("or"),
        "not": _("not"),
        "if": _("if"),
        "then": _("then"),
        "else": _("otherwise"),
        "true": _("yes"),
        "false": _("no"),
        "min": _("the lesser of"),
        "max": _("the greater of"),
        "round": _("rounded"),
        "floor": _("rounded down"),
        "ceil": _("rounded up"),
        "abs": _("the absolute value of"),
        "year": _("the year of"),
        "years_between": _("whole years between"),
        "date": _("the date"),
        "evaluation_date": _("the evaluation date"),
    }


_SYMBOLS = {"*": "×", "/": "÷", "-": "−", ">=": "≥", "<=": "≤", "==": "=", "!=": "≠"}


def formula_in_words(formula: str | None, labels: Mapping[str, str]) -> str:
    """An expression with each name replaced by its label and operators as a reader writes them:
    ``(cuantia_basica + incrementos) * salario_promedio_diario * 365`` → "(Cuantía básica +
    Incrementos) × Salario promedio diario × 365". Unknown text is kept as it is."""
    if not formula:
        return ""
    words = _word_map()
    parts: list[str] = []
    position = 0
    while position < len(formula):
        match = _TOKEN.match(formula, position)
        if match is None or match.end() == position:
            # Not an expression the tokenizer knows (the engine parsed it, so this is only a
            # display matter): show the rest untouched.
            parts.append(formula[position:].strip())
            break
        position = match.end()
        if match.group("name"):
            name = match.group("name")
            parts.append(labels.get(name) or words.get(name) or name)
        elif match.group("operator"):
            operator = match.group("operator")
            parts.append(_SYMBOLS.get(operator, operator))
        else:
            parts.append(match.group("string") or match.group("number"))
    text = " ".join(part for part in parts if part)
    return text.replace("( ", "(").replace(" )", ")").replace(" ,", ",")


# --- the explanation tree -------------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterView:
    valid_from: datetime.date | None
    valid_until: datetime.date | None
    recorded: datetime.date | None
    source: str
    needs_verification: bool


@dataclass(frozen=True)
class ConditionView:
    label: str
    test: str
    holds: bool
    sentence: str
    reference: str


@dataclass(frozen=True)
class Step:
    """One node of the explanation, ready to show."""

    name: str
    kind: str
    label: str
    value: str
    reference: str
    formula: str
    formula_words: str
    parameter: ParameterView | None = None
    table_text: str = ""
    case_text: str = ""
    conditions: tuple[ConditionView, ...] = ()
    children: tuple[Step, ...] = field(default_factory=tuple)
    table_needs_verification: bool = False

    @property
    def needs_verification(self) -> bool:
        parameter_unverified = self.parameter is not None and self.parameter.needs_verification
        return parameter_unverified or self.table_needs_verification


def _label_of(node: Node, language: str) -> str:
    return in_language(node.label, language) or node.name


def requirement_sentence(unmet: UnmetCondition, language: str) -> str:
    """An unmet condition as a sentence: "Semanas cotizadas: 430; se requieren 500"."""
    condition_label = in_language(unmet.label, language)
    if unmet.operator is None or unmet.left_name is None:
        return _("%(condition)s: not met") % {"condition": condition_label or unmet.test}
    subject = in_language(unmet.left_label, language) or unmet.left_name
    left = format_value(unmet.left, None, unmet.unit)
    right = format_value(unmet.right, None, unmet.unit)
    templates = {
        ">=": _("%(subject)s: %(left)s; %(right)s required"),
        ">": _("%(subject)s: %(left)s; more than %(right)s required"),
        "<=": _("%(subject)s: %(left)s; at most %(right)s allowed"),
        "<": _("%(subject)s: %(left)s; must be less than %(right)s"),
        "==": _("%(subject)s: %(left)s; must be %(right)s"),
        "!=": _("%(subject)s: %(left)s; must not be %(right)s"),
    }
    template_text = templates.get(unmet.operator, _("%(subject)s: %(left)s; not met"))
    return template_text % {"subject": subject, "left": left, "right": right}


def _conditions(node: Node, result: Result | None, language: str) -> tuple[ConditionView, ...]:
    if not node.conditions:
        return ()
    unmet_by_test: dict[str, UnmetCondition] = {}
    if result is not None:
        try:
            unmet_by_test = {u.test: u for u in result.unmet_conditions(node.name)}
        except KeyError:
            unmet_by_test = {}
    views = []
    for condition in node.conditions:
        holds = bool(condition.get("holds"))
        unmet = unmet_by_test.get(condition.get("test", ""))
        label = in_language(condition.get("label"), language) or str(condition.get("test", ""))
        views.append(
            ConditionView(
                label=label,
                test=str(condition.get("test", "")),
                holds=holds,
                sentence=requirement_sentence(unmet, language) if unmet is not None else "",
                reference=str(condition.get("reference") or ""),
            )
        )
    return tuple(views)


def _parameter(node: Node) -> ParameterView | None:
    if node.kind != "parameter" or not node.parameter:
        return None
    data = node.parameter
    return ParameterView(
        valid_from=data.get("valid_from"),
        valid_until=data.get("valid_until"),
        recorded=data.get("recorded"),
        source=str(data.get("source") or ""),
        needs_verification=bool(data.get("needs_verification")),
    )


def _table_text(node: Node) -> str:
    if not node.table:
        return ""
    cells = node.table.get("when") or {}
    when = ", ".join(f"{name} {cell}" for name, cell in cells.items())
    return _("row %(row)s of table %(table)s (%(when)s)") % {
        "row": node.table.get("row", "?"),
        "table": node.table.get("name", node.name),
        "when": when,
    }


def _case_text(node: Node, labels: Mapping[str, str]) -> str:
    if not node.case:
        return ""
    when = node.case.get("when")
    return _("the case that applies: %(when)s (priority %(priority)s)") % {
        "when": formula_in_words(str(when), labels)
        if when not in (None, True, "true")
        else _("general rule"),
        "priority": node.case.get("priority", 0),
    }


def build_step(node: Node, result: Result | None, language: str) -> Step:
    labels = {child.name: _label_of(child, language) for child in node.children}
    return Step(
        name=node.name,
        kind=node.kind,
        label=_label_of(node, language),
        value=format_value(node.value, node.type, node.unit),
        reference=node.reference or "",
        formula=node.formula or "",
        formula_words=formula_in_words(node.formula, labels),
        parameter=_parameter(node),
        table_text=_table_text(node),
        table_needs_verification=bool((node.table or {}).get("needs_verification")),
        case_text=_case_text(node, labels),
        conditions=_conditions(node, result, language),
        children=tuple(build_step(child, result, language) for child in node.children),
    )


@dataclass(frozen=True)
class Unmet:
    sentence: str
    label: str
    reference: str


@dataclass(frozen=True)
class Explanation:
    """What the explanation partial shows for one stored result."""

    eligible: bool | None
    amount: str
    why_not: tuple[Unmet, ...]
    steps: tuple[Step, ...]
    package: str
    version: str
    content_hash: str
    evaluated_on: datetime.date | None
    known_at: datetime.date | None
    unverified: int
    error: str = ""


def explain(
    data: Mapping[str, Any] | None, benefit: str, language: str | None = None
) -> Explanation:
    """A stored ``Result.to_dict()`` in plain language for ``benefit``: the unmet conditions of
    its eligibility (a denial's reasons), and the steps — the amount first, then eligibility,
    then any other output."""
    code = language or language_code()
    empty = Explanation(None, "", (), (), "", "", "", None, None, 0)
    if not data:
        return empty
    try:
        result = Result.from_dict(data)
    except (KeyError, TypeError, ValueError) as error:
        # A stored result this version of the UI cannot read must not take the page down: the
        # decision's amount and status are still shown from their own columns.
        return Explanation(**{**empty.__dict__, "error": f"{type(error).__name__}: {error}"})
    info = result.benefits.get(benefit)
    eligible_name = info.eligible if info else None
    amount_name = info.amount if info else None
    eligible_value = result.values.get(eligible_name) if eligible_name else None
    why_not: tuple[Unmet, ...] = ()
    if eligible_name and result.node(eligible_name) is not None:
        why_not = tuple(
            Unmet(
                sentence=requirement_sentence(unmet, code),
                label=in_language(unmet.label, code),
                reference=unmet.reference or "",
            )
            for unmet in result.unmet_conditions(eligible_name)
        )
    # A denial's amount, if the package computed one anyway, is not what the person receives:
    # the steps then start from eligibility.
    order = (
        [eligible_name, amount_name] if eligible_value is False else [amount_name, eligible_name]
    )
    roots = [node for name in order if name for node in result.explanation if node.name == name]
    roots += [node for node in result.explanation if node not in roots]
    if eligible_value is False and amount_name:
        roots = [node for node in roots if node.name != amount_name]
    amount_value = result.values.get(amount_name) if amount_name else None
    unverified = {
        found.name
        for root in roots
        for found in root.walk()
        if (found.kind == "parameter" and (found.parameter or {}).get("needs_verification"))
        or (found.kind == "table" and (found.table or {}).get("needs_verification"))
    }
    return Explanation(
        eligible=eligible_value if isinstance(eligible_value, bool) else None,
        amount=format_value(amount_value, "number", "pesos") if amount_value is not None else "",
        why_not=why_not,
        steps=tuple(build_step(root, result, code) for root in roots),
        package=result.package,
        version=result.version,
        content_hash=result.content_hash,
        evaluated_on=result.on,
        known_at=result.known_at,
        unverified=len(unverified),
    )


@register.inclusion_tag("benefits/_explanation.html")
def decision_explanation(
    result: Mapping[str, Any] | None, benefit: str, heading_level: int = 3
) -> dict[str, Any]:
    """``{% decision_explanation decision.result decision.claim.benefit %}``."""
    return {"explanation": explain(result, benefit), "heading_level": heading_level}


# --- the person page ------------------------------------------------------------------------------


@register.inclusion_tag("benefits/_person_benefits.html", takes_context=True)
def person_benefits(context: template.Context, person: Any) -> dict[str, Any]:
    """The person's claims and awards, for the registry's person page. Someone without the
    benefits permissions gets nothing (the section is not rendered), not an error."""
    from pilar.benefits import selectors
    from pilar.core.views import actor_for

    request = context.get("request")
    shown: dict[str, Any] = {"person": person, "show": False}
    if request is None or not getattr(request, "user", None) or not request.user.is_authenticated:
        return shown
    actor = actor_for(request)
    can_claims = actor.can(Perm.CLAIM_VIEW)
    can_awards = actor.can(Perm.AWARD_VIEW)
    if not (can_claims or can_awards):
        return shown
    shown.update(
        show=True,
        can_enter=actor.can(Perm.CLAIM_ENTER),
        claims=selectors.claim_list(actor=actor, person_id=person.pk, page_size=PERSON_PAGE_ITEMS)
        if can_claims
        else None,
        awards=selectors.award_list(actor=actor, person_id=person.pk, page_size=PERSON_PAGE_ITEMS)
        if can_awards
        else None,
        kinds=_kinds_or_none(),
    )
    return shown


def _kinds_or_none() -> dict[str, Any]:
    """The claim kinds by code for labels. A scheme package that cannot be loaded must not take
    the registry's person page down: the claims then show their codes."""
    from pilar.benefits import selectors

    try:
        return {f"{kind.package}:{kind.benefit}": kind for kind in selectors.claim_kinds()}
    except ApplicationError:
        return {}


@register.filter
def kind_label(claim: Any, kinds: Mapping[str, Any] | Sequence[Any] | None = None) -> str:
    """The label of a claim's (or award's) kind: "Pensión de vejez (IMSS, Ley 1973)"."""
    package = getattr(claim, "package", None) or getattr(claim, "package_name", "")
    benefit = getattr(claim, "benefit", "")
    if isinstance(kinds, Mapping):
        kind = kinds.get(f"{package}:{benefit}")
        if kind is not None:
            return in_language(kind.label)
    return f"{benefit} ({package})"


@register.simple_tag
def rules_value(value: Any, type_name: str | None = None, unit: str | None = None) -> str:
    """``{% rules_value row.value row.type row.unit %}``: an input's value as a person reads it."""
    return format_value(value, type_name, unit)
