"""Template tags of the federation's screens.

- ``{% person_federation person %}``: on the registry's person page, the person's federation
  id, the events other members notified, the insurance periods documents received, and the
  "Other institutions" and "Fetch insurance periods" actions. The registry never imports the
  exchange; its template loads this library, and the tag reads through
  ``selectors_monitor.person_federation`` with the signed-in staff member's actor.
- filters that turn purpose and service codes into what people read.
"""

from __future__ import annotations

from typing import Any

from django import template

from pilar.exchange import purposes

register = template.Library()


@register.filter
def purpose_label(code: str) -> str:
    return purposes.purpose_label(code or "")


@register.filter
def service_label(code: str) -> str:
    return purposes.service_label(code or "")


@register.filter
def period_value(period: dict[str, Any], name: str) -> Any:
    """A field of a P5000 period ("from" is a Python keyword, so templates cannot write
    ``period.from``). Fields the agreement did not grant are absent: a dash."""
    if not isinstance(period, dict):
        return "—"
    value = period.get(name)
    if isinstance(value, dict):
        # The employer: its RFC and name.
        value = " — ".join(str(value[key]) for key in ("rfc", "name") if value.get(key))
    return "—" if value in (None, "") else value


@register.inclusion_tag("exchange/_person_federation.html", takes_context=True)
def person_federation(context: template.Context, person: Any) -> dict[str, Any]:
    """The federation panel of the person page. Nothing for staff who hold neither
    ``exchange.request`` nor ``exchange.view``."""
    from pilar.core.views import actor_for
    from pilar.exchange import selectors_monitor
    from pilar.exchange.forms_exchange import PeriodsFetchForm

    request = context.get("request")
    shown: dict[str, Any] = {"person": person, "federation": None}
    if request is None or not getattr(request, "user", None) or not request.user.is_authenticated:
        return shown
    actor = actor_for(request)
    shown["federation"] = selectors_monitor.person_federation(actor=actor, person_id=person.pk)
    shown["fetch_form"] = PeriodsFetchForm(auto_id="fetch_%s")
    shown["institutions_form"] = PeriodsFetchForm(auto_id="institutions_%s")
    shown["csrf_token"] = context.get("csrf_token")
    shown["request"] = request
    return shown
