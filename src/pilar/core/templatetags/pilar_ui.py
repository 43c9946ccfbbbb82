"""Template filters of the staff UI that turn stored codes into what people read."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template
from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.utils.text import capfirst

from pilar.core.models import Channel
from pilar.core.regions import BORN_ABROAD, COUNTRIES, STATES
from pilar.core.roles import Role

register = template.Library()


@register.filter
def region_name(code: str | None) -> str:
    """'JC' → 'Jalisco'; the CURP's 'NE' reads as born abroad. Unknown codes show as they are."""
    if code == BORN_ABROAD:
        from django.utils.translation import gettext

        return gettext("Born abroad")
    return STATES.get(code or "", code or "")


@register.filter
def country_name(code: str | None) -> str:
    return COUNTRIES.get(code or "", code or "")


@register.filter
def role_label(code: str) -> str:
    return str(Role(code).label) if code in Role.values else code


@register.filter
def channel_label(code: str) -> str:
    return str(Channel(code).label) if code in Channel.values else code


@register.filter
def money(value: Any) -> str:
    """Pesos as written in Mexico whatever the interface language: 1,234.50."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    return f"{amount:,.2f}"


# Audit events name their entity; these are the models whose field labels explain a change.
# Looked up by label through the app registry, so core does not import the apps above it.
_ENTITY_MODELS = {
    "person": "registry.Person",
    "identifier": "registry.Identifier",
    "address": "registry.Address",
    "contact": "registry.Contact",
    "family_tie": "registry.FamilyTie",
    "employer": "registry.Employer",
    "employment": "registry.Employment",
    "enrolment": "registry.Enrolment",
    "user": "core.User",
    "office": "core.Office",
    "api_token": "core.ApiToken",
}


@register.filter
def change_field(name: str, entity_type: str) -> str:
    """The translated label of a changed field ("given_names" → "Nombre(s)"); names that are
    not model fields (``identifier.CURP``, ``contact.mobile``) keep their own readable form."""
    label = _ENTITY_MODELS.get(entity_type)
    if label is not None:
        try:
            field = apps.get_model(label)._meta.get_field(name)
        except (LookupError, FieldDoesNotExist):
            field = None
        verbose = getattr(field, "verbose_name", None)
        if verbose:
            return capfirst(str(verbose))
    return name


@register.filter
def change_value(value: Any) -> str:
    """One side of an audit change: nothing becomes a dash, lists and dicts stay readable."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        # A set of codes, such as a staff member's roles: "auditor, registrar".
        return ", ".join(value) or "—"
    return str(value)


@register.filter
def page_start(page: Any) -> int:
    return (page.number - 1) * page.page_size + 1 if page.items else 0


@register.filter
def page_end(page: Any) -> int:
    return (page.number - 1) * page.page_size + len(page.items)


@register.simple_tag(takes_context=True)
def page_url(context: dict[str, Any], param: str, number: int, **extra: str) -> str:
    """The current address with one page parameter changed (other filters kept). Extra keyword
    arguments are added too, for htmx fragment requests."""
    query = context["request"].GET.copy()
    query.pop("fragment", None)
    query[param] = str(number)
    for key, value in extra.items():
        query[key] = value
    return "?" + query.urlencode()
