"""``pilar rules explain``: one person's result under a scheme package on a date, explained.

It gathers the inputs exactly as adjudication does (registry, work history, declared facts),
evaluates the package in single-case mode and renders the explanation in plain language. It
decides nothing and writes nothing but the access-log entry of reading the person's record: the
tool a rules officer uses to answer "why does this person get this amount?" before, or without,
a claim.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from pilar.benefits.errors import ClaimIncomplete
from pilar.benefits.inputs import pick
from pilar.benefits.selectors import claim_inputs_preview, scheme_package
from pilar.core.actor import Actor
from pilar.core.errors import ValidationFailed
from pilar.core.roles import Role
from pilar.registry.models import Person
from pilar.registry.selectors import person_get, person_get_by_identifier

CURP_LENGTH = 18
NSS_LENGTH = 11


@dataclass(frozen=True)
class ExplainRequest:
    person: str  # a person id, CURP or NSS
    package: str
    benefit: str | None = None
    on: datetime.date | None = None
    known_at: datetime.date | None = None
    declared: dict[str, Any] = field(default_factory=dict)
    purpose: str = "pilar rules explain"
    language: str = "es"


@dataclass(frozen=True)
class Explained:
    person_id: int
    package: str
    version: str
    content_hash: str
    benefit: str
    on: datetime.date
    inputs: dict[str, Any]
    result: dict[str, Any]
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "package": self.package,
            "version": self.version,
            "content_hash": self.content_hash,
            "benefit": self.benefit,
            "on": self.on.isoformat(),
            "inputs": self.inputs,
            "result": self.result,
        }


def _person(actor: Actor, text: str, purpose: str) -> Person:
    value = text.strip().upper()
    if len(value) == CURP_LENGTH:
        return person_get_by_identifier(actor=actor, scheme="CURP", value=value, purpose=purpose)
    if len(value) == NSS_LENGTH and value.isdigit():
        return person_get_by_identifier(actor=actor, scheme="NSS", value=value, purpose=purpose)
    if value.isdigit():
        return person_get(actor=actor, person_id=int(value), purpose=purpose)
    raise ValidationFailed.single(
        "person",
        "benefits.person_reference",
        _("Give a person id, an 18-character CURP or an NSS."),
    )


def explain_person(request: ExplainRequest) -> Explained:
    """Evaluate ``request.package`` for the person and explain it. Refuses, listing every
    missing datum, when the inputs are incomplete — as adjudication would."""
    from pilar.rules import render_text

    with translation.override(request.language):
        # The command line acts as a national-scope benefits officer; the read of the person's
        # record is logged under that label and the purpose given.
        actor = Actor.system(
            "rules-explain", channel="cli", roles=frozenset({Role.BENEFITS_OFFICER.value})
        )
        person = _person(actor, request.person, request.purpose)
        package = scheme_package(request.package)
        benefit_name = request.benefit or next(iter(package.benefits))
        if benefit_name not in package.benefits:
            raise ValidationFailed.single(
                "benefit",
                "benefits.unknown_benefit",
                _("%(package)s decides %(benefits)s, not %(benefit)s.")
                % {
                    "package": request.package,
                    "benefits": ", ".join(package.benefits),
                    "benefit": benefit_name,
                },
            )
        benefit = package.benefits[benefit_name]
        on = request.on or timezone.localdate()
        gathered = claim_inputs_preview(
            actor=actor,
            person_id=person.pk,
            package=request.package,
            benefit=benefit_name,
            claim_date=on,
            declared=request.declared,
            purpose=request.purpose,
        )
        if gathered.missing:
            raise ClaimIncomplete(gathered.missing)
        result = package.evaluate(
            gathered.engine_inputs(),
            on=on,
            known_at=request.known_at,
            outputs=[benefit.eligible, benefit.amount],
        )
        lines = [
            f"{pick(package.title, request.language)} — {package.name} {package.version} "
            f"(sha256 {package.content_hash[:16]}…)",
            f"{person.given_names} {person.paternal_surname} {person.maternal_surname}".strip()
            + f" · {on.isoformat()}",
            "",
        ]
        for item in gathered.values.values():
            lines.append(f"  {pick(item.label, request.language)}: {item.value} [{item.source}]")
        lines += ["", render_text(result, language=request.language)]
        return Explained(
            person_id=person.pk,
            package=package.name,
            version=package.version,
            content_hash=package.content_hash,
            benefit=benefit_name,
            on=on,
            inputs=gathered.to_dict(),
            result=result.to_dict(),
            text="\n".join(lines),
        )
