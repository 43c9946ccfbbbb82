"""Template tags of the review screens.

- ``{% person_linkage_banner person %}``: on the registry's person page, the banner "merged into
  record N" or "this record holds merged records: …", and a link to the pairs of this person
  awaiting review. The registry never imports linkage; its template loads this library, and
  the tag reads through the linkage selectors with the signed-in staff member's actor.
- filters for match weights, Bayes factors and probabilities, written the way the page's
  language writes numbers.
"""

from __future__ import annotations

import math
from typing import Any

from django import template
from django.utils.formats import number_format

from pilar.core.roles import Perm

register = template.Library()

# A typographic minus: "−3.20" reads as negative at a glance, "-3.20" is easily missed.
_MINUS = "\u2212"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@register.filter
def signed_weight(value: Any) -> str:
    """A match weight with its sign: +5.32, −2.10, 0.00."""
    number = _number(value)
    if number is None:
        return "—"
    # Django's number_format cuts decimals off; round first so 6.907 reads 6.91.
    text = number_format(round(abs(number), 2), decimal_pos=2, use_l10n=True)
    if round(number, 2) > 0:
        return f"+{text}"
    if round(number, 2) < 0:
        return f"{_MINUS}{text}"
    return text


@register.filter
def bayes_factor(value: Any) -> str:
    """A Bayes factor as "× 45.2" (evidence for a match) or "÷ 250" (against it)."""
    number = _number(value)
    if number is None or number <= 0:
        return "—"
    if number >= 1:
        return f"× {_magnitude(number)}"
    return f"÷ {_magnitude(1 / number)}"


def _magnitude(number: float) -> str:
    if number >= 100:
        return number_format(round(number), decimal_pos=0, use_l10n=True, force_grouping=True)
    places = 1 if number >= 10 else 2
    return number_format(round(number, places), decimal_pos=places, use_l10n=True)


@register.filter
def percent(value: Any) -> str:
    """A probability as a percentage, rounded down: the model is never certain."""
    number = _number(value)
    if number is None:
        return "—"
    shown = math.floor(number * 10000) / 100
    return number_format(shown, decimal_pos=2, use_l10n=True) + " %"


@register.filter
def probability(value: Any) -> str:
    """A small probability (λ) in plain notation: 0.000123 rather than 1.23e-4."""
    number = _number(value)
    if number is None:
        return "—"
    if number == 0:
        return "0"
    places = max(2, 2 - math.floor(math.log10(abs(number))))
    places = min(places, 12)
    return number_format(round(number, places), decimal_pos=places, use_l10n=True)


@register.inclusion_tag("linkage/merge_person_banner.html", takes_context=True)
def person_linkage_banner(context: template.Context, person: Any) -> dict[str, Any]:
    """What the person page says about merges and pending pairs. Nothing for someone who is
    not signed in; the pending-pair link only for those who may see the review queue."""
    from pilar.core.views import actor_for
    from pilar.linkage import selectors

    request = context.get("request")
    shown: dict[str, Any] = {"person": person, "linkage": None}
    if request is None or not getattr(request, "user", None) or not request.user.is_authenticated:
        return shown
    actor = actor_for(request)
    shown["linkage"] = selectors.person_linkage(actor=actor, person=person)
    shown["can_view_linkage"] = actor.can(Perm.LINKAGE_VIEW)
    return shown
