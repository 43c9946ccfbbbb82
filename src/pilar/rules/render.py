"""Plain-language rendering of a result, in Spanish or English.

For each benefit: whether it is granted; when denied, every unmet condition with the person's
value, what the law requires and the article ("Pensión de vejez: no procede. No cumple: semanas
cotizadas 430, se requieren 500 (LSS 1973 art. 138 fr. II)."); when granted, the amount and
each step that produced it, with its label, value, formula and article. The text is built only
from the ``Result`` (which carries the benefits' labels), so a result stored as JSON years ago
renders the same today without loading its package.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

from pilar.rules.explanation import Node, Result, UnmetCondition, Value

MONEY_UNITS = frozenset({"pesos", "peso", "mxn", "$"})
_UNITS_ES = {
    "weeks": "semanas",
    "week": "semana",
    "years": "años",
    "year": "año",
    "months": "meses",
    "days": "días",
    "fraction": "",
    "times the minimum wage": "veces el salario mínimo",
    "children": "hijos",
    "persons": "personas",
}
_UNITS_EN = {"fraction": ""}
_TEXT = {
    "es": {
        "granted": "procede",
        "denied": "no procede",
        "not_met": "No cumple",
        "amount": "Cuantía",
        "how": "Cálculo",
        "input": "dato de la solicitud",
        "in_force": "vigente desde",
        "unverified": "valor por verificar contra el DOF",
        "row": "fila",
        "table": "tabla",
        "case": "caso aplicado",
        "seen": "véase arriba",
        "true": "sí",
        "false": "no",
        "monthly": "mensual",
        "bimonthly": "bimestral",
        "operators": {
            ">=": "se requieren {right}",
            ">": "se requieren más de {right}",
            "<=": "el máximo es {right}",
            "<": "debe ser menor que {right}",
            "==": "se requiere {right}",
            "!=": "no puede ser {right}",
        },
        "result": "Resultado",
    },
    "en": {
        "granted": "granted",
        "denied": "not granted",
        "not_met": "Not met",
        "amount": "Amount",
        "how": "Calculation",
        "input": "from the claim",
        "in_force": "in force from",
        "unverified": "value not yet verified against the official gazette",
        "row": "row",
        "table": "table",
        "case": "case applied",
        "seen": "see above",
        "true": "yes",
        "false": "no",
        "monthly": "per month",
        "bimonthly": "every two months",
        "operators": {
            ">=": "{right} required",
            ">": "more than {right} required",
            "<=": "at most {right} allowed",
            "<": "must be less than {right}",
            "==": "{right} required",
            "!=": "must not be {right}",
        },
        "result": "Result",
    },
}


def _language(language: str) -> str:
    return "en" if language.startswith("en") else "es"


def _label(label: Mapping[str, str] | None, language: str, fallback: str = "") -> str:
    if not label:
        return fallback
    return label.get(language) or label.get("es") or label.get("en") or fallback


def _lower_first(text: str) -> str:
    # "Semanas cotizadas" → "semanas cotizadas", but "UMA diaria" stays as it is.
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def format_value(value: Value | None, unit: str | None, language: str) -> str:
    """A value as a person reads it: money with two decimals, dates in the local order."""
    language = _language(language)
    words = _TEXT[language]
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(words["true"] if value else words["false"])
    if isinstance(value, datetime.date):
        return value.strftime("%d/%m/%Y") if language == "es" else value.isoformat()
    if isinstance(value, Decimal):
        if unit is not None and unit.lower() in MONEY_UNITS:
            return f"${value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"
        # Long quotients (a salary in minimum wages) are shown to four decimals.
        exponent = value.as_tuple().exponent
        shown = (
            value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
            if isinstance(exponent, int) and exponent < -4
            else value
        )
        if shown == shown.to_integral_value():
            return f"{shown.to_integral_value():,}"
        return f"{shown.normalize():,f}"
    return str(value)


def _unit_suffix(unit: str | None, language: str) -> str:
    if not unit or unit.lower() in MONEY_UNITS:
        return ""
    table = _UNITS_ES if language == "es" else _UNITS_EN
    word = table.get(unit, unit)
    return f" {word}" if word else ""


def describe_unmet(condition: UnmetCondition, language: str = "es") -> str:
    """One unmet condition: the person's value and what the law asks, or the condition's label."""
    language = _language(language)
    words = _TEXT[language]
    operators: Mapping[str, str] = words["operators"]  # type: ignore[assignment]
    reference = f" ({condition.reference})" if condition.reference else ""
    operator = condition.operator
    if operator is not None and condition.left_name:
        # Result.unmet_conditions puts the person's own value on the left.
        subject = _lower_first(_label(condition.left_label, language, condition.left_name))
        unit = condition.unit
        required = format_value(condition.right, unit, language)
        requirement = operators[operator].format(right=required)
        return f"{subject} {format_value(condition.left, unit, language)}, {requirement}{reference}"
    return f"{_label(condition.label, language, condition.test)}{reference}"


def _step(node: Node, language: str) -> str:
    words = _TEXT[language]
    value = format_value(node.value, node.unit, language) + _unit_suffix(node.unit, language)
    text = f"{_label(node.label, language, node.name)}: {value}"
    details: list[str] = []
    if node.kind == "input":
        details.append(str(words["input"]))
    elif node.kind == "parameter" and node.parameter is not None:
        valid_from = node.parameter.get("valid_from")
        if valid_from is not None:
            details.append(f"{words['in_force']} {format_value(valid_from, None, language)}")
        if node.parameter.get("source"):
            details.append(str(node.parameter["source"]))
        if node.parameter.get("needs_verification"):
            details.append(str(words["unverified"]))
    elif node.kind == "table" and node.table is not None:
        details.append(f"{words['table']} {node.table['name']}, {words['row']} {node.table['row']}")
        if node.table.get("source"):
            details.append(str(node.table["source"]))
        if node.table.get("needs_verification"):
            details.append(str(words["unverified"]))
    elif node.kind in ("formula", "cases") and node.formula:
        text += f" = {node.formula}"
    if node.kind == "cases" and node.case is not None and node.case.get("reference"):
        details.append(f"{words['case']}: {node.case['reference']}")
    elif node.reference:
        details.append(node.reference)
    if details:
        text += f" ({'; '.join(details)})"
    return text


def _steps(node: Node, language: str, depth: int, seen: set[str], lines: list[str]) -> None:
    indent = "  " * depth + "- "
    if node.name in seen:
        lines.append(
            f"{indent}{_label(node.label, language, node.name)}: {_TEXT[language]['seen']}"
        )
        return
    seen.add(node.name)
    lines.append(indent + _step(node, language))
    for child in node.children:
        _steps(child, language, depth + 1, seen, lines)


def render_text(result: Result, language: str = "es") -> str:
    """The result in plain language: one paragraph per benefit, then any other output."""
    language = _language(language)
    words = _TEXT[language]
    paragraphs: list[str] = []
    explained: set[str] = set()
    for benefit in result.benefits.values():
        if benefit.eligible not in result.values:
            continue
        explained.add(benefit.eligible)
        title = _label(benefit.label, language, benefit.name)
        if result.values[benefit.eligible] is not True:
            unmet = result.unmet_conditions(benefit.eligible)
            if unmet:
                reasons = "; ".join(describe_unmet(condition, language) for condition in unmet)
                paragraphs.append(f"{title}: {words['denied']}. {words['not_met']}: {reasons}.")
            else:
                node = result.node(benefit.eligible)
                reference = f" ({node.reference})" if node is not None and node.reference else ""
                paragraphs.append(f"{title}: {words['denied']}{reference}.")
            continue
        lines = [f"{title}: {words['granted']}."]
        if benefit.amount is not None and benefit.amount in result.values:
            explained.add(benefit.amount)
            amount_node = result.node(benefit.amount)
            frequency = f" {words[benefit.frequency]}" if benefit.frequency else ""
            amount = format_value(
                result.values[benefit.amount],
                amount_node.unit if amount_node else "pesos",
                language,
            )
            lines[0] += f" {words['amount']}: {amount}{frequency}."
            if amount_node is not None:
                lines.append(f"{words['how']}:")
                _steps(amount_node, language, 0, set(), lines)
        paragraphs.append("\n".join(lines))
    others = [node for node in result.explanation if node.name not in explained]
    if others:
        lines = [f"{words['result']}:"]
        for node in others:
            lines.append("- " + _step(node, language))
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)
