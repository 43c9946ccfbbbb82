"""Template filters of the registry UI: stored codes shown with their translated labels."""

from __future__ import annotations

from django import template
from django.db.models import TextChoices

from pilar.core.identifiers import SCHEME_CHOICES
from pilar.registry.models import (
    AddressKind,
    ContactKind,
    EmployerStatus,
    EnrolmentStatus,
    RecordStatus,
    Relation,
    Sector,
    Sex,
)

register = template.Library()

_CHOICES: dict[str, type[TextChoices]] = {
    "sex": Sex,
    "relation": Relation,
    "address_kind": AddressKind,
    "contact_kind": ContactKind,
    "record_status": RecordStatus,
    "employer_status": EmployerStatus,
    "enrolment_status": EnrolmentStatus,
    "sector": Sector,
}
_SCHEMES = dict(SCHEME_CHOICES)


@register.filter
def label(value: str | None, kind: str) -> str:
    """``{{ person.sex|label:"sex" }}`` → "Female" (or "Mujer"): the choice's translated label."""
    if kind == "scheme":
        return str(_SCHEMES.get(value or "", value or ""))
    choices = _CHOICES[kind]
    return str(choices(value).label) if value in choices.values else (value or "")
