"""The ``periods`` action (service ``insurance-periods``): a person's insurance periods at this
institute, as an EESSI P5000-shaped document (docs/federation.md, "Services answered").

The P5000 ("Insurance periods for the purpose of the award of a pension") is what an
institution under Reg. (CE) 987/2009 sends another for a totalisation claim. This document
keeps its substance and Pilar's names:

========================  =================================================================
P5000                     here
========================  =================================================================
institution (sending)     ``institution``: member code, name (``PILAR_INSTITUTION_NAME``),
                          country
person identification     ``person.fed_id``: the federation id only (no names: the
                          requester already knows who it asked about)
insurance periods,        ``periods[]``: ``from`` / ``to`` (inclusive dates)
with dates
type of period            ``type``: ``employment`` (contributions from an employer);
                          ``voluntary`` and ``equivalent`` are reserved for sources this
                          registry does not hold yet
days / weeks              ``days`` (calendar days counted), ``weeks`` (``days // 7``, whole
                          weeks as IMSS reports them)
basis (earnings)          ``salary_basis``: the average daily SBC of the period, a decimal
                          string (null when no salary is recorded for it)
employer                  ``employer``: ``{"rfc", "name"}``
total of periods          ``totals``: ``days`` and ``weeks`` counted once where periods of
                          several employers overlap; ``unit`` ``week``
========================  =================================================================

The periods come from the same work history adjudication uses
(``pilar.benefits.inputs.work_pieces``: contribution records in force where a month was
declared, employment periods with their salary histories elsewhere), so the total weeks
equal ``work_history_summary(person, as_of).weeks`` — the weeks this institute's own
decisions use. Consecutive pieces of one employer (adjacent or overlapping days) form one
period; a gap (a month without work, absence days at the end of a declared month) starts a
new one.

Decisions where the contract is silent:

- The request is ``{"query_type": "idtype-value", "query": {"type", "value"}, "fields":
  [...], "as_of": "YYYY-MM-DD"}`` (``search_criteria``'s shape, one person); ``fields``
  omitted means every agreed ``period.*`` field; ``as_of`` defaults to today and may not be
  in the future (days not yet worked are not insurance periods).
- ``totals.days`` is included when ``period.days`` is granted and requested, ``totals.weeks``
  when ``period.weeks`` is: the totals are the same facts as the periods' days and weeks.
- An unknown person is ``rjct.person.not_found`` (a periods request names someone the
  requester believes is insured here); a merged record answers as its golden record.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pilar.benefits.inputs import Piece, person_work_pieces
from pilar.contributions import weeks as weeks_rules
from pilar.exchange.handlers_search import (
    find_person,
    invalid,
    parse_fields,
    parse_query,
    require_agreement,
)
from pilar.exchange.messaging import Answer, Inbound, handler
from pilar.exchange.models import FederationLink, Member
from pilar.exchange.node import this_node
from pilar.exchange.purposes import service_fields
from pilar.exchange.reasons import Refusal
from pilar.exchange.selectors_agreements import agreed_fields, require_fields
from pilar.registry.models import Employer, Person

SERVICE = "insurance-periods"
DOCUMENT_TYPE = "P5000"
EMPLOYMENT = "employment"
CENTAVO = Decimal("0.01")
ONE_DAY = datetime.timedelta(days=1)


def _spans(pieces: Iterable[Piece]) -> list[weeks_rules.Span]:
    return [weeks_rules.Span(p.start, p.end, p.days) for p in pieces]


def _average(pieces: Sequence[Piece]) -> str | None:
    """The day-weighted average daily SBC of the pieces with a recorded salary."""
    total = Decimal(0)
    days = 0
    for piece in pieces:
        if piece.daily_salary is not None:
            total += piece.daily_salary * piece.days
            days += piece.days
    if not days:
        return None
    return str((total / days).quantize(CENTAVO, rounding=ROUND_HALF_UP))


def _group(pieces: Sequence[Piece]) -> list[list[Piece]]:
    """Consecutive pieces of one employer, each group one period."""
    by_employer: dict[int, list[Piece]] = defaultdict(list)
    for piece in pieces:
        by_employer[piece.employer_id].append(piece)
    groups: list[list[Piece]] = []
    for employer_pieces in by_employer.values():
        employer_pieces.sort(key=lambda p: (p.start, p.end))
        current: list[Piece] = []
        current_end: datetime.date | None = None
        for piece in employer_pieces:
            if current_end is not None and piece.start <= current_end + ONE_DAY:
                current.append(piece)
                current_end = max(current_end, piece.end)
            else:
                if current:
                    groups.append(current)
                current = [piece]
                current_end = piece.end
        if current:
            groups.append(current)
    groups.sort(key=lambda group: (group[0].start, group[0].employer_id))
    return groups


def institution() -> dict[str, str]:
    node = this_node()
    country = Member.objects.filter(code=node.code).values_list("country", flat=True).first()
    return {
        "code": node.code,
        "name": str(settings.PILAR_INSTITUTION_NAME),
        "country": country or "MX",
    }


def periods_document(person: Person, *, fields: Iterable[str], on: datetime.date) -> dict:
    """The P5000-shaped document of ``person``'s insurance periods up to ``on`` with only
    ``fields`` (``period.*`` names) in each period. Reads the database; writes nothing."""
    wanted = {name.removeprefix("period.") for name in fields if name.startswith("period.")}
    pieces = person_work_pieces(person.pk, on)
    employers = {
        pk: {"rfc": rfc, "name": name}
        for pk, rfc, name in Employer.objects.filter(
            pk__in={p.employer_id for p in pieces}
        ).values_list("pk", "rfc", "legal_name")
    }
    periods: list[dict[str, Any]] = []
    for group in _group(pieces):
        days = weeks_rules.counted_days(_spans(group))
        values: dict[str, Any] = {
            "from": group[0].start.isoformat(),
            "to": max(p.end for p in group).isoformat(),
            "type": EMPLOYMENT,
            "days": days,
            "weeks": weeks_rules.weeks(days),
            "salary_basis": _average(group),
            "employer": employers.get(group[0].employer_id),
        }
        periods.append({name: value for name, value in values.items() if name in wanted})
    total_days = weeks_rules.counted_days(_spans(pieces))
    totals: dict[str, Any] = {}
    if "days" in wanted:
        totals["days"] = total_days
    if "weeks" in wanted:
        totals["weeks"] = weeks_rules.weeks(total_days)
    totals["unit"] = "week"
    fed_id = FederationLink.objects.filter(person=person).values_list("fed_id", flat=True).first()
    return {
        "type": DOCUMENT_TYPE,
        "institution": institution(),
        "person": {"fed_id": fed_id},
        "periods": periods,
        "totals": totals,
        "as_of": on.isoformat(),
    }


def _as_of(value: Any) -> datetime.date:
    today = timezone.localdate()
    if value is None:
        return today
    try:
        day = datetime.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        day = None
    if day is None:
        raise invalid("as_of", _("must be a date as YYYY-MM-DD."))
    if day > today:
        raise invalid("as_of", _("cannot be in the future."))
    return day


@handler("periods", service=SERVICE)
def handle_periods(request: Inbound) -> Answer:
    """Answer a periods request with the person's P5000-shaped document."""
    agreement = require_agreement(request, SERVICE)
    message = request.message
    query = parse_query(message, "message")
    allowed = service_fields(SERVICE)
    requested = parse_fields(message.get("fields"), "fields", allowed)
    on = _as_of(message.get("as_of"))
    granted = agreed_fields(agreement)
    if requested is not None:
        require_fields(agreement, requested)
    fields = requested if requested is not None else [f for f in allowed if f in granted]
    person = find_person(query)
    if person is None:
        raise Refusal("rjct.person.not_found")
    return Answer(
        message={"document": periods_document(person, fields=fields, on=on)},
        person_id=person.pk,
    )
