"""Plain-language report of a totalisation, in Spanish or English.

For each institution: its own periods in its unit, the other institutions' periods converted to
that unit, the total, whether the person is entitled on own periods alone (the independent
benefit, or every unmet condition with the person's value and the article), the theoretical
amount, the pro-rata ratio and amount, and the award with its reason. Every line ends with the
articles it rests on, read from the outcome's explanation tree (``Node``), so the report says
exactly what the calculation did and nothing the tree does not back.

Amounts carry no currency sign: each institution pays in its own currency, which an agreement
file does not state, and a peso sign on a benefit paid in euros would mislead.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal

from pilar.rules.explanation import Node, Result, Value
from pilar.rules.render import describe_unmet, format_value
from pilar.rules.totalisation import InstitutionOutcome, PeriodUnit, TotalisationResult

_UNIT_WORDS: dict[str, dict[str, tuple[str, str]]] = {
    # unit → language → (singular, plural)
    "day": {"es": ("día", "días"), "en": ("day", "days")},
    "week": {"es": ("semana", "semanas"), "en": ("week", "weeks")},
    "month": {"es": ("mes", "meses"), "en": ("month", "months")},
    "quarter": {"es": ("trimestre", "trimestres"), "en": ("quarter", "quarters")},
    "year": {"es": ("año", "años"), "en": ("year", "years")},
}
# Period nodes carry their unit as the English plural (``Node.unit``); this reads it back.
_UNIT_OF_NODE: dict[str, PeriodUnit] = {
    "days": "day",
    "weeks": "week",
    "months": "month",
    "quarters": "quarter",
    "years": "year",
}

_TEXT: dict[str, dict[str, str]] = {
    "es": {
        "heading": "Totalización de períodos según {title} [{name}], a la fecha {on}.",
        "order": "Orden en que la persona estuvo asegurada: {order}.",
        "institution": "{name} ({id}, {country}), cuenta en {unit}:",
        "own": "Períodos propios: {periods}",
        "converted": "Períodos ante {name}: {periods}, que son {converted}",
        "same_unit": "Períodos ante {name}: {periods}",
        "total": "Períodos totalizados: {periods}",
        "capped": "Períodos para el cálculo: {periods}, el período máximo para la prestación "
        "completa (se totalizaron {total})",
        "alone_yes": "Con los períodos propios solamente tiene derecho: prestación nacional "
        "{amount}",
        "alone_no": "Con los períodos propios solamente no tiene derecho",
        "together_no": "Con los períodos totalizados tampoco tiene derecho",
        "not_met": "No cumple",
        "theoretical": "Importe teórico (la prestación con {periods}): {amount}",
        "ratio": "Proporción a prorrata: {own} / {periods} = {ratio}",
        "ratio_capped": "Proporción a prorrata: {own} / {periods} = {ratio}, sin pasar de 1",
        "pro_rata": "Prestación a prorrata (importe teórico × proporción): {amount}",
        "minimum_yes": "Período mínimo que da lugar a pago: {periods}; está obligada a pagar",
        "minimum_no": "Período mínimo que da lugar a pago: {periods}; no está obligada a pagar",
        "award": "Prestación que paga: {amount}. {reason}",
        "tie": "Se paga la prestación nacional: la prestación a prorrata es igual",
        "sources": "Fuentes: {sources}.",
        "unverified": "por verificar",
    },
    "en": {
        "heading": "Totalisation of periods under {title} [{name}], on {on}.",
        "order": "Order in which the person was insured: {order}.",
        "institution": "{name} ({id}, {country}), counting in {unit}:",
        "own": "Own periods: {periods}",
        "converted": "Periods with {name}: {periods}, counted as {converted}",
        "same_unit": "Periods with {name}: {periods}",
        "total": "Totalised periods: {periods}",
        "capped": "Periods for the calculation: {periods}, the maximum period for the full "
        "benefit ({total} were totalised)",
        "alone_yes": "Entitled on own periods alone: independent benefit {amount}",
        "alone_no": "Not entitled on own periods alone",
        "together_no": "Not entitled with the totalised periods either",
        "not_met": "Not met",
        "theoretical": "Theoretical amount (the benefit for {periods}): {amount}",
        "ratio": "Pro-rata ratio: {own} / {periods} = {ratio}",
        "ratio_capped": "Pro-rata ratio: {own} / {periods} = {ratio}, at most 1",
        "pro_rata": "Pro-rata benefit (theoretical amount × ratio): {amount}",
        "minimum_yes": "Minimum payable period: {periods}; the institution is bound to pay",
        "minimum_no": "Minimum payable period: {periods}; the institution is not bound to pay",
        "award": "Benefit paid: {amount}. {reason}",
        "tie": "The independent benefit is paid: the pro-rata benefit is the same",
        "sources": "Sources: {sources}.",
        "unverified": "not yet verified",
    },
}


def _language(language: str) -> str:
    return "en" if language.startswith("en") else "es"


def _text(label: Mapping[str, str] | None, language: str, fallback: str = "") -> str:
    if not label:
        return fallback
    return label.get(language) or label.get("es") or label.get("en") or fallback


def _quantity(value: Value | None, language: str) -> str:
    return format_value(value, None, language)


def _periods(value: Value | None, unit: PeriodUnit, language: str) -> str:
    singular, plural = _UNIT_WORDS[unit][language]
    return f"{_quantity(value, language)} {singular if value == 1 else plural}"


def _money(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


def _references(*references: str | None) -> str:
    """`` (a; b)`` for the articles given, each once and in order; empty when there is none."""
    unique = list(dict.fromkeys(ref for ref in references if ref))
    return f" ({'; '.join(unique)})" if unique else ""


def _child(node: Node | None, name: str) -> Node | None:
    if node is None:
        return None
    return next((child for child in node.children if child.name == name), None)


def _scheme_node(step: Node | None) -> Node | None:
    """The scheme's own calculation under a step ``benefit(periods)``: its last child.

    ``independent_benefit``, ``theoretical_amount`` and ``entitlement_after_totalisation`` each
    have the periods they were computed on first and what the scheme made of them last.
    """
    if step is None or not step.children:
        return None
    return step.children[-1]


def _scheme_reference(scheme: Node | None) -> str | None:
    """The article the scheme's amount rests on.

    A linear scheme's node carries it; a rules package's node wraps the package's own
    explanation (eligibility, then amount), whose amount variable carries it.
    """
    if scheme is None:
        return None
    if scheme.reference:
        return scheme.reference
    amounts = [child for child in scheme.children if child.type == "number" and child.reference]
    return amounts[-1].reference if amounts else None


def _why_not(scheme: Node | None, language: str) -> str | None:
    """Why a scheme gives nothing: each unmet condition with the person's value and article.

    The eligibility is the first false ``conditions`` node of the scheme's explanation (the
    package's ``eligible`` variable, or a linear scheme's ``entitled``). ``Result`` already
    knows how to read a conditions node in plain language (the person's value as the subject,
    the law's threshold as what is required), so the node is wrapped in one to reuse it.
    """
    words = _TEXT[language]
    condition_node = next(
        (
            node
            for node in (scheme.walk() if scheme is not None else [])
            if node.kind == "conditions" and node.value is False
        ),
        None,
    )
    if condition_node is not None:
        wrapper = Result(
            package="",
            version="",
            content_hash="",
            # ``Result`` needs dates; nothing here reads them.
            on=datetime.date.min,
            known_at=datetime.date.min,
            values={},
            explanation=(condition_node,),
        )
        unmet = wrapper.unmet_conditions(condition_node.name)
        if unmet:
            reasons = "; ".join(describe_unmet(condition, language) for condition in unmet)
            return f"{words['not_met']}: {reasons}"
    # A scheme whose eligibility is not a list of conditions (cases, a formula) says no more
    # than its node: the line itself already states that the person is not entitled.
    return None


def _line(text: str, *references: str | None, then: str | None = None) -> str:
    """One step of the report, its articles in parentheses, ending in a full stop.

    ``then`` is a further sentence (why a condition is not met) that carries its own articles.
    """
    line = f"- {text.rstrip('.')}{_references(*references)}."
    return f"{line} {then.rstrip('.')}." if then else line


def _institution_lines(
    outcome: InstitutionOutcome, result: TotalisationResult, language: str
) -> list[str]:
    words = _TEXT[language]
    unit = outcome.unit
    award = outcome.explanation
    total_node = _child(award, "total_periods")
    own_node = _child(total_node, "own_periods")
    independent_node = _child(award, "independent_benefit")
    theoretical_node = _child(award, "theoretical_amount")
    pro_rata_node = _child(award, "pro_rata_amount")
    ratio_node = _child(pro_rata_node, "pro_rata_ratio")
    calculation_node = _child(theoretical_node, "periods_for_calculation")
    not_entitled_node = _child(award, "entitlement_after_totalisation")
    liable_node = _child(award, "liable_to_pay")

    lines = [
        words["institution"].format(
            name=_text(outcome.name, language, outcome.institution),
            id=outcome.institution,
            country=outcome.country,
            unit=_UNIT_WORDS[unit][language][1],
        )
    ]
    lines.append(
        _line(
            words["own"].format(periods=_periods(outcome.own_periods, unit, language)),
            own_node.reference if own_node else None,
        )
    )
    for other_id, converted in outcome.converted_periods.items():
        converted_node = _child(total_node, f"converted_periods.{other_id}")
        source_node = _child(converted_node, f"periods.{other_id}")
        other_name, other_unit = _other_institution(result, other_id, source_node, language)
        held = source_node.value if source_node is not None else None
        if other_unit == unit and held == converted:
            # Same unit (and basis): nothing was converted, so no conversion is reported.
            text = words["same_unit"].format(
                name=other_name, periods=_periods(converted, unit, language)
            )
        else:
            text = words["converted"].format(
                name=other_name,
                periods=_periods(held, other_unit, language) if held is not None else "—",
                converted=_periods(converted, unit, language),
            )
        lines.append(_line(text, converted_node.reference if converted_node else None))
    lines.append(
        _line(
            words["total"].format(periods=_periods(outcome.total_periods, unit, language)),
            total_node.reference if total_node else None,
        )
    )
    if outcome.maximum_period_applied:
        maximum_node = _child(calculation_node, "maximum_period")
        lines.append(
            _line(
                words["capped"].format(
                    periods=_periods(outcome.periods_for_calculation, unit, language),
                    total=_periods(outcome.total_periods, unit, language),
                ),
                calculation_node.reference if calculation_node else None,
                maximum_node.reference if maximum_node else None,
            )
        )

    independent_reference = independent_node.reference if independent_node else None
    if outcome.entitled_independently:
        lines.append(
            _line(
                words["alone_yes"].format(amount=_money(outcome.independent_benefit)),
                independent_reference,
                _scheme_reference(_scheme_node(independent_node)),
            )
        )
    else:
        reason = _why_not(_scheme_node(independent_node), language)
        lines.append(_line(words["alone_no"], independent_reference, then=reason))

    if not outcome.entitled_after_totalisation:
        # With nothing to add (the others hold nothing) the totalised calculation is the
        # independent one and was already explained; saying it twice would read as a new fact.
        if outcome.total_periods != outcome.own_periods:
            lines.append(
                _line(
                    words["together_no"],
                    not_entitled_node.reference if not_entitled_node else None,
                    then=_why_not(_scheme_node(not_entitled_node), language),
                )
            )
    else:
        lines.append(
            _line(
                words["theoretical"].format(
                    periods=_periods(outcome.periods_for_calculation, unit, language),
                    amount=_money(outcome.theoretical_amount),
                ),
                theoretical_node.reference if theoretical_node else None,
                _scheme_reference(_scheme_node(theoretical_node)),
            )
        )
        if outcome.pro_rata_ratio is not None:
            template = "ratio_capped" if outcome.maximum_period_applied else "ratio"
            lines.append(
                _line(
                    words[template].format(
                        own=_quantity(outcome.own_periods, language),
                        periods=_quantity(outcome.periods_for_calculation, language),
                        ratio=_quantity(outcome.pro_rata_ratio, language),
                    ),
                    ratio_node.reference if ratio_node else None,
                )
            )
        if outcome.pro_rata_amount is not None:
            lines.append(
                _line(
                    words["pro_rata"].format(amount=_money(outcome.pro_rata_amount)),
                    pro_rata_node.reference if pro_rata_node else None,
                )
            )

    if liable_node is not None:
        minimum_node = _child(liable_node, "minimum_payable_period")
        template = "minimum_yes" if liable_node.value is True else "minimum_no"
        case_reference = (liable_node.case or {}).get("reference")
        lines.append(
            _line(
                words[template].format(
                    periods=_periods(minimum_node.value if minimum_node else None, unit, language)
                ),
                case_reference or liable_node.reference,
            )
        )

    lines.append(
        _line(
            words["award"].format(
                amount=_money(outcome.award), reason=_award_reason(outcome, language)
            ),
            award.reference,
        )
    )
    return lines


def _award_reason(outcome: InstitutionOutcome, language: str) -> str:
    """The outcome's reason, except on a tie that the engine words as "higher".

    Choose-higher keeps the independent benefit when the two are equal (the pro-rata amount of
    a linear scheme is the independent one, up to the last digit of the ratio); to a reader of
    amounts rounded to the centavo, "higher" would contradict the two figures printed above.
    """
    if (
        outcome.award_basis == "independent"
        and outcome.pro_rata_amount is not None
        and outcome.pro_rata_amount == outcome.independent_benefit
    ):
        return _TEXT[language]["tie"]
    return _text(outcome.award_reason, language).rstrip(".")


def _other_institution(
    result: TotalisationResult, institution_id: str, node: Node | None, language: str
) -> tuple[str, PeriodUnit]:
    """The name and unit of another institution that held periods."""
    try:
        other = result[institution_id]
    except KeyError:
        # Every institution holding periods has an outcome; this only guards a result rebuilt
        # by hand, where the period node still knows its unit.
        unit = _UNIT_OF_NODE.get(node.unit or "", "month") if node is not None else "month"
        return institution_id, unit
    return _text(other.name, language, institution_id), other.unit


def _sources(result: TotalisationResult, language: str) -> str | None:
    if not result.sources:
        return None
    words = _TEXT[language]
    listed = [
        source.citation if source.verified else f"{source.citation} ({words['unverified']})"
        for source in result.sources
    ]
    return words["sources"].format(sources="; ".join(listed))


def _order(order: Sequence[str] | None, language: str) -> str | None:
    if not order:
        return None
    return _TEXT[language]["order"].format(order=", ".join(order))


def render_totalisation(result: TotalisationResult, language: str = "es") -> str:
    """The totalisation in plain language: a heading, one paragraph per institution, sources."""
    language = _language(language)
    words = _TEXT[language]
    paragraphs: list[str] = [
        words["heading"].format(
            title=_text(result.title, language, result.agreement),
            name=result.agreement,
            on=format_value(result.on, None, language),
        )
    ]
    order = _order(result.order, language)
    if order:
        paragraphs[0] += "\n" + order
    paragraphs.extend(
        "\n".join(_institution_lines(outcome, result, language)) for outcome in result.institutions
    )
    sources = _sources(result, language)
    if sources:
        paragraphs.append(sources)
    return "\n\n".join(paragraphs)
