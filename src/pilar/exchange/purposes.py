"""Purpose codes and services of the exchange (docs/federation.md, "Agreements").

Every request states its purpose, and an agreement grants a service for named purposes only,
so the codes here are what consumers, providers and the hub's staff agree on. The labels are
translated (English and Spanish); the codes never are.

Decisions where the contract is silent: ``key-management`` is the purpose of a member's
``key-announce`` (every request states a known purpose); ``indexing`` (maintaining the
federated person index) is the purpose of ``index-enrol``/``index-resolve``; the hub's
``trust`` service (``key-announce``) and ``index`` grant no fields; ``periods-gather``
belongs to the ``insurance-periods`` service on the hub, as the contract's table says.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

PURPOSES: dict[str, str | Promise] = {
    "totalisation": _("Pension claim under a totalisation agreement"),
    "verification": _("Identity verification at registration"),
    "survivor-claim": _("Survivor's pension claim"),
    "death-check": _("Stopping payments after a death"),
    "periods-update": _("Updating insurance periods"),
    "indexing": _("Maintaining the federated person index"),
    # A member announcing its new key to the hub (``key-announce``): no person is concerned.
    "key-management": _("Managing the federation's keys"),
}


def is_purpose(code: object) -> bool:
    return isinstance(code, str) and code in PURPOSES


def purpose_label(code: str) -> str:
    """The translated label of a purpose code (the code itself if unknown, so an old message
    with a retired code can still be shown)."""
    label = PURPOSES.get(code)
    return str(label) if label is not None else code


# Purposes of the federation's own housekeeping, which nodes state themselves: staff asking about
# a person choose among the others.
SYSTEM_PURPOSES = frozenset({"indexing", "key-management"})


def purpose_choices(*, staff: bool = False) -> list[tuple[str, str]]:
    """Every purpose (filters, agreements), or with ``staff`` those a person may state when
    asking another institution about a person."""
    return [
        (code, str(label))
        for code, label in PURPOSES.items()
        if not (staff and code in SYSTEM_PURPOSES)
    ]


@dataclass(frozen=True)
class Service:
    code: str
    label: str | Promise
    actions: tuple[str, ...]
    fields: tuple[str, ...]


_SERVICE_LIST = [
    Service(
        "person-search",
        _("Person search and verification"),
        ("search",),
        (
            "curp",
            "nss",
            "given_names",
            "first_surname",
            "second_surname",
            "birth_date",
            "sex",
            "birth_state",
            "status",
            "death_date",
        ),
    ),
    Service(
        "insurance-periods",
        _("Insurance periods"),
        ("periods", "periods-gather"),
        (
            "period.from",
            "period.to",
            "period.type",
            "period.days",
            "period.weeks",
            "period.salary_basis",
            "period.employer",
        ),
    ),
    Service(
        "events",
        _("Event notifications"),
        ("subscribe", "unsubscribe", "notify"),
        ("event.death", "event.periods-updated"),
    ),
    Service("index", _("Federated person index"), ("index-enrol", "index-resolve"), ()),
    Service("trust", _("Trust list and keys"), ("key-announce",), ()),
]

SERVICES: dict[str, Service] = {service.code: service for service in _SERVICE_LIST}

# The service an action belongs to (what an agreement must grant to allow it).
ACTION_SERVICE: dict[str, str] = {
    action: service.code for service in _SERVICE_LIST for action in service.actions
}


def is_service(code: object) -> bool:
    return isinstance(code, str) and code in SERVICES


def service_label(code: str) -> str:
    service = SERVICES.get(code)
    return str(service.label) if service is not None else code


def service_fields(code: str) -> tuple[str, ...]:
    """The fields an agreement for this service may grant (empty for an unknown service)."""
    service = SERVICES.get(code)
    return service.fields if service is not None else ()
