"""Reads from the registry. Every read of a person's record goes through here: the actor's
permission and region are checked, and the read is written to the access log (who, when,
channel, purpose). Lists and searches are not record reads and are not logged per row.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pilar.core.actor import Actor
from pilar.core.audit import access_record
from pilar.core.errors import NotFound, ValidationFailed
from pilar.core.identifiers import CURP, NSS, RFC, compact
from pilar.core.models import AccessLogEntry, AuditEvent
from pilar.core.pagination import Page, paginate
from pilar.core.roles import Perm
from pilar.core.text import search_terms
from pilar.registry.models import (
    INVERSE_RELATION,
    Address,
    Contact,
    Employer,
    Employment,
    EmploymentSalary,
    Enrolment,
    FamilyTie,
    Identifier,
    Person,
    Programme,
    RecordStatus,
)

_CURP_SHAPE = re.compile(r"^[A-Z]{4}\d{6}[HMX][A-Z]{5}[A-Z0-9]\d$")
_NSS_SHAPE = re.compile(r"^\d{11}$")
_RFC_SHAPE = re.compile(r"^[A-Z&Ñ]{4}\d{6}[A-Z0-9]{3}$")
MIN_SEARCH_TERM = 2


def _visible_persons(actor: Actor) -> QuerySet[Person]:
    actor.require(Perm.PERSON_VIEW)
    persons = Person.objects.all()
    if not actor.national_scope:
        persons = persons.filter(region=actor.region or "")
    return persons


def _identifier_scheme_of(text: str) -> str | None:
    """Which identifier a search box entry looks like, if any."""
    value = compact(text)
    if _CURP_SHAPE.match(value):
        return CURP
    if _NSS_SHAPE.match(value):
        return NSS
    if _RFC_SHAPE.match(value):
        return RFC
    return None


@dataclass(frozen=True)
class PersonSummary:
    """One search hit: enough to tell persons apart, not the whole record."""

    id: int
    full_name: str
    birth_date: datetime.date
    sex: str
    region: str
    status: str
    curp: str | None
    is_deceased: bool
    # The golden record a merged record now belongs to (only shown when merged ones are asked).
    merged_into_id: int | None = None


def person_search(
    *,
    actor: Actor,
    query: str,
    page: int = 1,
    page_size: int = 25,
    include_inactive: bool = False,
    include_merged: bool = False,
) -> Page[PersonSummary]:
    """Persons matching an identifier (CURP, NSS, RFC: exact) or a name (every word must appear
    in the name, accent- and case-insensitive, anywhere: 'garc mar' finds María García).

    Active records only, unless inactive ones (``include_inactive``) or records merged into a
    golden record (``include_merged``) are asked for: a merged record is the same person as its
    golden record, so listing both would show the duplicate the merge removed. A merged
    record's identifiers are on its golden record, so a search by one finds the golden record."""
    persons = _visible_persons(actor)
    statuses = [RecordStatus.ACTIVE]
    if include_inactive:
        statuses.append(RecordStatus.INACTIVE)
    if include_merged:
        statuses.append(RecordStatus.MERGED)
    persons = persons.filter(status__in=statuses)
    text = (query or "").strip()
    if len(text) > 200:
        raise ValidationFailed.single(
            "q", "too_long", _("At most %(max)d characters.") % {"max": 200}
        )
    scheme = _identifier_scheme_of(text)
    if scheme is not None:
        persons = persons.filter(
            pk__in=Identifier.objects.filter(scheme=scheme, value=compact(text)).values("person_id")
        )
    else:
        terms = [t for t in search_terms(text) if len(t) >= MIN_SEARCH_TERM]
        if not terms:
            raise ValidationFailed.single(
                "q",
                "search.too_short",
                _("Type an identifier or at least %(min)d letters of a name.")
                % {"min": MIN_SEARCH_TERM},
            )
        for term in terms:
            persons = persons.filter(normalized_name__contains=term)
    persons = persons.order_by("normalized_name", "pk").only(
        "pk",
        "given_names",
        "paternal_surname",
        "maternal_surname",
        "birth_date",
        "sex",
        "region",
        "status",
        "death_date",
        "merged_into",
    )
    result = paginate(persons, page=page, page_size=page_size, count_cap=1000)
    curps = dict(
        Identifier.objects.filter(
            person_id__in=[p.pk for p in result.items], scheme=CURP, is_active=True
        ).values_list("person_id", "value")
    )
    return result.map(
        lambda p: PersonSummary(
            id=p.pk,
            full_name=p.full_name,
            birth_date=p.birth_date,
            sex=p.sex,
            region=p.region,
            status=p.status,
            curp=curps.get(p.pk),
            is_deceased=p.death_date is not None,
            merged_into_id=p.merged_into_id,
        )
    )


def person_get(*, actor: Actor, person_id: int, purpose: str = "", action: str = "view") -> Person:
    """One person, if the actor may see them; the read is logged. Outside the actor's region a
    person is reported as not found."""
    person = _visible_persons(actor).filter(pk=person_id).first()
    if person is None:
        raise NotFound(extra={"entity": "person", "id": person_id})
    access_record(actor=actor, person_id=person.pk, action=action, purpose=purpose)
    return person


def person_get_by_identifier(*, actor: Actor, scheme: str, value: str, purpose: str = "") -> Person:
    """The person holding an active identifier; the read is logged. One query finds the person
    and applies the region scope: this is the lookup partner systems make all day."""
    person = (
        _visible_persons(actor)
        .filter(
            identifiers__scheme=scheme.upper(),
            identifiers__value=compact(value),
            identifiers__is_active=True,
        )
        .order_by("pk")
        .first()
    )
    if person is None:
        raise NotFound(extra={"entity": "person", "scheme": scheme})
    access_record(actor=actor, person_id=person.pk, action="view", purpose=purpose)
    return person


@dataclass(frozen=True)
class TieView:
    """A family tie seen from one person's side: ``relation`` is what the other person is."""

    tie_id: int
    relation: str
    other: Person
    start_date: datetime.date | None
    end_date: datetime.date | None


@dataclass(frozen=True)
class EmploymentView:
    employment: Employment
    current_salary: Decimal | None
    salaries: list[EmploymentSalary]


@dataclass(frozen=True)
class PersonRecord:
    """Everything the person page and the API's full record show."""

    person: Person
    identifiers: list[Identifier]
    addresses: list[Address]
    contacts: list[Contact]
    ties: list[TieView]
    employments: list[EmploymentView]
    enrolments: list[Enrolment]


def person_record(
    *, actor: Actor, person_id: int, purpose: str = "", action: str = "view"
) -> PersonRecord:
    """The whole record of one person, read once and logged once (``action`` says how it was
    read: ``view`` on a page or API call, ``export`` when it leaves as a file)."""
    person = person_get(actor=actor, person_id=person_id, purpose=purpose, action=action)
    ties = [
        TieView(
            tie_id=t.pk,
            relation=t.relation,
            other=t.relative,
            start_date=t.start_date,
            end_date=t.end_date,
        )
        for t in FamilyTie.objects.filter(person=person).select_related("relative")
    ] + [
        TieView(
            tie_id=t.pk,
            relation=INVERSE_RELATION[t.relation],
            other=t.person,
            start_date=t.start_date,
            end_date=t.end_date,
        )
        for t in FamilyTie.objects.filter(relative=person).select_related("person")
    ]
    ties.sort(key=lambda tie: (tie.end_date is not None, tie.relation, tie.other.birth_date))
    employments = [
        EmploymentView(
            employment=e,
            current_salary=e.salaries.all()[0].daily_salary if e.salaries.all() else None,
            salaries=list(e.salaries.all()),
        )
        for e in Employment.objects.filter(person=person)
        .select_related("employer")
        .prefetch_related(
            Prefetch("salaries", queryset=EmploymentSalary.objects.order_by("-effective_from"))
        )
    ]
    return PersonRecord(
        person=person,
        identifiers=list(person.identifiers.order_by("-is_active", "scheme", "pk")),
        addresses=list(person.addresses.all()),
        contacts=list(person.contacts.all()),
        ties=ties,
        employments=employments,
        enrolments=list(person.enrolments.select_related("programme")),
    )


def person_history(
    *,
    actor: Actor,
    person_id: int,
    page: int = 1,
    page_size: int = 20,
    purpose: str = "",
    already_logged: bool = False,
) -> Page[AuditEvent]:
    """The changes to one person's record, newest first. Visible to whoever may see the person:
    the history is part of the record, and its before/after values are personal data, so reading
    it is logged like any read. ``already_logged`` is for a page that read the record through
    ``person_record`` in the same request and has logged that read once already."""
    if not _visible_persons(actor).filter(pk=person_id).exists():
        raise NotFound(extra={"entity": "person", "id": person_id})
    if not already_logged:
        access_record(actor=actor, person_id=person_id, action="history", purpose=purpose)
    return paginate(AuditEvent.objects.filter(person_id=person_id), page=page, page_size=page_size)


def person_access_log(
    *, actor: Actor, person_id: int, page: int = 1, page_size: int = 20
) -> Page[AccessLogEntry]:
    """Who read this person's record. Shown on the person page to everyone who may see the
    record: knowing reads are visible is what deters browsing without a reason."""
    if not _visible_persons(actor).filter(pk=person_id).exists():
        raise NotFound(extra={"entity": "person", "id": person_id})
    return paginate(
        AccessLogEntry.objects.filter(person_id=person_id), page=page, page_size=page_size
    )


def family_ties_list(*, actor: Actor, person_id: int, purpose: str = "") -> list[TieView]:
    return person_record(actor=actor, person_id=person_id, purpose=purpose).ties


def employments_list(*, actor: Actor, person_id: int, purpose: str = "") -> list[EmploymentView]:
    """A person's working periods with their salary histories. Salaries are personal data, so
    the read is logged like a view of the record."""
    person_get(actor=actor, person_id=person_id, purpose=purpose, action="employments")
    return [
        EmploymentView(
            employment=e,
            current_salary=e.salaries.all()[0].daily_salary if e.salaries.all() else None,
            salaries=list(e.salaries.all()),
        )
        for e in Employment.objects.filter(person_id=person_id)
        .select_related("employer")
        .prefetch_related(
            Prefetch("salaries", queryset=EmploymentSalary.objects.order_by("-effective_from"))
        )
    ]


# --- employers --------------------------------------------------------------------------------


def employer_list(
    *,
    actor: Actor,
    query: str = "",
    status: str = "",
    state: str = "",
    page: int = 1,
    page_size: int = 25,
) -> Page[Employer]:
    """Employers by name, RFC or registration number. Employer data is not personal data and
    is visible nationally to everyone with the employer permission."""
    actor.require(Perm.EMPLOYER_VIEW)
    employers = Employer.objects.all()
    text = (query or "").strip()
    if text:
        value = compact(text)
        terms = [t for t in search_terms(text) if len(t) >= MIN_SEARCH_TERM]
        name_match = Q()
        for term in terms:
            name_match &= Q(normalized_name__contains=term)
        employers = employers.filter(
            Q(rfc=value) | Q(registration_number=value) | (name_match if terms else Q(pk=None))
        )
    if status:
        employers = employers.filter(status=status)
    if state:
        employers = employers.filter(state=state)
    return paginate(employers.order_by("normalized_name", "pk"), page=page, page_size=page_size)


@dataclass(frozen=True)
class EmployerRecord:
    employer: Employer
    active_workers: int
    total_employments: int


def employer_get(*, actor: Actor, employer_id: int) -> EmployerRecord:
    actor.require(Perm.EMPLOYER_VIEW)
    employer = Employer.objects.filter(pk=employer_id).first()
    if employer is None:
        raise NotFound(extra={"entity": "employer", "id": employer_id})
    return EmployerRecord(
        employer=employer,
        active_workers=employer.employments.filter(end_date__isnull=True).count(),
        total_employments=employer.employments.count(),
    )


def employer_workers(
    *,
    actor: Actor,
    employer_id: int,
    current_only: bool = True,
    page: int = 1,
    page_size: int = 25,
) -> Page[Employment]:
    """An employer's working periods. Persons outside the actor's region are left out, and
    without the person permission (analysts) no worker is listed at all."""
    actor.require(Perm.EMPLOYER_VIEW)
    employments = Employment.objects.filter(employer_id=employer_id).select_related("person")
    if current_only:
        employments = employments.filter(end_date__isnull=True)
    if not actor.can(Perm.PERSON_VIEW):
        employments = employments.none()
    elif not actor.national_scope:
        employments = employments.filter(person__region=actor.region or "")
    return paginate(
        employments.order_by("person__normalized_name", "pk"), page=page, page_size=page_size
    )


def programme_list(*, actor: Actor) -> list[Programme]:
    """The programmes a person can be enrolled in now (reference data for enrolment forms)."""
    actor.require(Perm.ENROLMENT_MANAGE)
    return list(Programme.objects.filter(is_active=True).order_by("code"))


# --- aggregates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionCount:
    region: str
    persons: int
    deceased: int


@dataclass(frozen=True)
class RegistryStatistics:
    """Counts only, never a person: what analysts and managers see of the registry."""

    scope_region: str | None
    persons_active: int
    persons_deceased: int
    persons_registered_last_30_days: int
    by_region: list[RegionCount]
    by_sex: dict[str, int]
    employers_by_status: dict[str, int]
    open_employments: int
    active_enrolments: int


def registry_statistics(*, actor: Actor) -> RegistryStatistics:
    """Aggregate counts of the registry, limited to the actor's region unless they have national
    scope. Aggregates are not record reads and write no access-log entry."""
    actor.require(Perm.STATISTICS_VIEW)
    persons = Person.objects.filter(status=RecordStatus.ACTIVE)
    employments = Employment.objects.filter(end_date__isnull=True)
    enrolments = Enrolment.objects.filter(status="active")
    scope = None if actor.national_scope else (actor.region or "")
    if scope is not None:
        persons = persons.filter(region=scope)
        employments = employments.filter(person__region=scope)
        enrolments = enrolments.filter(person__region=scope)
    by_region = [
        RegionCount(region=row["region"], persons=row["persons"], deceased=row["deceased"])
        for row in persons.values("region")
        .annotate(persons=Count("pk"), deceased=Count("pk", filter=Q(death_date__isnull=False)))
        .order_by("-persons", "region")
    ]
    since = timezone.now() - datetime.timedelta(days=30)
    return RegistryStatistics(
        scope_region=scope,
        persons_active=sum(row.persons for row in by_region),
        persons_deceased=sum(row.deceased for row in by_region),
        persons_registered_last_30_days=persons.filter(created_at__gte=since).count(),
        by_region=by_region,
        by_sex=dict(persons.values_list("sex").annotate(n=Count("pk")).order_by()),
        employers_by_status=dict(
            Employer.objects.values_list("status").annotate(n=Count("pk")).order_by()
        ),
        open_employments=employments.count(),
        active_enrolments=enrolments.count(),
    )
