"""Staff web UI of the registry: person search, registration, the person page with its small
forms (identifiers, addresses, contacts, family, employment, enrolments), and employers.

Every view parses the request, builds the actor, calls a service or selector and renders.
Person data is read only through ``registry.selectors``, which enforce region scope and write
the access log; every write goes through ``registry.services``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.functional import Promise
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pilar.contributions.selectors import work_history_of
from pilar.core.actor import Actor
from pilar.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from pilar.core.forms import PilarForm, apply_service_errors
from pilar.core.identifiers import CURP, NSS, RFC, compact
from pilar.core.pagination import Page
from pilar.core.regions import STATE_CHOICES, STATES
from pilar.core.roles import Perm
from pilar.core.views import actor_for, is_htmx, page_number, staff_view
from pilar.linkage import entry
from pilar.registry import selectors, services
from pilar.registry.forms import (
    AddressForm,
    ContactForm,
    EmployerEditForm,
    EmployerFilterForm,
    EmployerForm,
    EmploymentForm,
    EndDateForm,
    EnrolmentForm,
    EnrolmentStatusForm,
    FamilyTieForm,
    IdentifierDeactivateForm,
    IdentifierForm,
    PersonEditForm,
    PersonRegisterForm,
    PersonSearchForm,
    RecordExportForm,
    SalaryChangeForm,
)
from pilar.registry.schemas import person_record_json
from pilar.registry.services import PossibleDuplicate, StaleVersion
from pilar.registry.validation import (
    AddressData,
    ContactData,
    EmployerData,
    IdentifierData,
    PersonData,
)

# Where the registration service's field names land on the registration form. Identifier
# errors (``identifiers[n]``) are mapped per request, as n depends on which were given.
REGISTER_FIELD_MAP = {
    "address.street": "address_street",
    "address.neighbourhood": "address_neighbourhood",
    "address.municipality": "address_municipality",
    "address.state": "address_state",
    "address.postal_code": "address_postal_code",
    "address.country": "address_state",
    "address.kind": "address_street",
    "address.valid_from": "address_street",
    "contacts[0].kind": "contact_kind",
    "contacts[0].value": "contact_value",
}


def _region_choices(actor: Actor) -> list[tuple[str, str]]:
    """Regional staff may only place records in their own region: offer only that one."""
    if actor.national_scope or not actor.region or actor.region not in STATES:
        return list(STATE_CHOICES)
    return [(actor.region, STATES[actor.region])]


def _person_url(person_id: int, anchor: str = "") -> str:
    url = reverse("registry:person_detail", args=[person_id])
    return f"{url}#{anchor}" if anchor else url


# --- person search ----------------------------------------------------------------------------


@require_GET
@staff_view
def person_search(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.PERSON_VIEW)
    form = PersonSearchForm(request.GET if "q" in request.GET else None)
    page = None
    query = ""
    if form.is_bound and form.is_valid():
        query = form.cleaned_data["q"].strip()
        if query:
            try:
                page = selectors.person_search(
                    actor=actor,
                    query=query,
                    page=page_number(request),
                    include_inactive=form.cleaned_data["include_inactive"],
                    include_merged=form.cleaned_data["include_merged"],
                )
            except ValidationFailed as error:
                apply_service_errors(form, error)
    template = (
        "registry/_person_results.html" if is_htmx(request) else "registry/person_search.html"
    )
    response = render(request, template, {"form": form, "page": page, "query": query})
    # The same URL answers with a fragment or a whole page: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- registration and editing -----------------------------------------------------------------


def _identifiers_from(form: PersonRegisterForm) -> tuple[list[IdentifierData], dict[str, str]]:
    """The identifiers typed on the form, and where each one's errors belong."""
    items: list[IdentifierData] = []
    field_map: dict[str, str] = {}
    for field_name, scheme in (("curp", CURP), ("nss", NSS), ("rfc", RFC)):
        value = form.cleaned_data.get(field_name, "").strip()
        if value:
            field_map[f"identifiers[{len(items)}]"] = field_name
            items.append(IdentifierData(scheme=scheme, value=value))
    return items, field_map


def _person_data(values: Mapping[str, Any]) -> PersonData:
    return PersonData(**{name: value for name, value in values.items() if value is not None})


def _visible_candidates(actor: Actor, error: PossibleDuplicate) -> list[dict[str, Any]]:
    """The possible duplicates with the "why" in words (which fields agree and differ), marked
    with whether this actor may open them."""
    return [
        {**entry.explain(candidate), "visible": actor.sees_region(candidate.get("region", ""))}
        for candidate in error.extra.get("candidates", [])
    ]


@require_http_methods(["GET", "POST"])
@staff_view
def person_register(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.PERSON_REGISTER)
    form = PersonRegisterForm(
        request.POST if request.method == "POST" else None,
        regions=_region_choices(actor),
        initial={"region": actor.region or "", "birth_country": "MX", "nationality": "MX"},
    )
    candidates: list[dict[str, Any]] = []
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            data = form.cleaned_data
            identifiers, identifier_fields = _identifiers_from(form)
            address = None
            if form.has_address():
                address = AddressData(
                    street=data["address_street"],
                    neighbourhood=data["address_neighbourhood"],
                    municipality=data["address_municipality"],
                    state=data["address_state"],
                    postal_code=data["address_postal_code"],
                )
            contacts = []
            if data["contact_kind"] or data["contact_value"]:
                contacts.append(ContactData(kind=data["contact_kind"], value=data["contact_value"]))
            try:
                person = services.person_register(
                    actor=actor,
                    data=_person_data(form.person_values()),
                    identifiers=identifiers,
                    address=address,
                    contacts=contacts,
                    acknowledge_possible_duplicate=data["acknowledge_possible_duplicate"],
                )
            except ValidationFailed as error:
                apply_service_errors(form, error, {**REGISTER_FIELD_MAP, **identifier_fields})
            except PossibleDuplicate as error:
                candidates = _visible_candidates(actor, error)
                status = 409
            except PermissionDenied as error:
                # The actor may register, so what was refused is the region they chose.
                form.add_error("region", str(error.message))
            else:
                messages.success(request, _("The person has been registered."))
                return redirect(_person_url(person.pk))
    return render(
        request,
        "registry/person_register.html",
        {"form": form, "candidates": candidates},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@staff_view
def person_edit(request: HttpRequest, person_id: int) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.PERSON_UPDATE)
    regions = _region_choices(actor)
    candidates: list[dict[str, Any]] = []
    stale = False
    status = 200
    if request.method == "GET":
        person = selectors.person_get(actor=actor, person_id=person_id)
        initial = {name: getattr(person, name) for name in PersonEditForm.PERSON_FIELDS}
        form = PersonEditForm(initial={**initial, "version": person.version}, regions=regions)
    else:
        form = PersonEditForm(request.POST, regions=regions)
        status = 422
        if form.is_valid():
            try:
                services.person_update(
                    actor=actor,
                    person_id=person_id,
                    changes=form.person_values(),
                    expected_version=form.cleaned_data["version"],
                    acknowledge_possible_duplicate=form.cleaned_data[
                        "acknowledge_possible_duplicate"
                    ],
                )
            except StaleVersion:
                stale = True
                status = 409
            except PossibleDuplicate as error:
                candidates = _visible_candidates(actor, error)
                status = 409
            except ValidationFailed as error:
                apply_service_errors(form, error)
            except PermissionDenied as error:
                form.add_error("region", str(error.message))
            else:
                messages.success(request, _("The changes have been saved."))
                return redirect(_person_url(person_id))
    return render(
        request,
        "registry/person_edit.html",
        {"form": form, "person_id": person_id, "candidates": candidates, "stale": stale},
        status=status,
    )


# --- the person page --------------------------------------------------------------------------


@dataclass(frozen=True)
class SubForm:
    """One of the small forms of the person page: what it needs and where it sends you back."""

    form_class: type[PilarForm]
    permission: str
    title: str | Promise
    anchor: str
    success: str | Promise
    field_map: Mapping[str, str] = field(default_factory=dict)

    @property
    def auto_id(self) -> str:
        # Several forms share the person page, so their input ids carry the form's name.
        return f"id_{self.anchor}_%s"

    def unbound(self, **kwargs: Any) -> PilarForm:
        return self.form_class(auto_id=self.auto_id, **kwargs)


IDENTIFIER_ADD = SubForm(
    IdentifierForm,
    Perm.PERSON_UPDATE,
    _("Add an identifier"),
    "identifiers",
    _("The identifier has been added."),
    {"identifiers[0]": "value"},
)
IDENTIFIER_DEACTIVATE = SubForm(
    IdentifierDeactivateForm,
    Perm.PERSON_UPDATE,
    _("Deactivate an identifier"),
    "identifiers",
    _("The identifier has been deactivated."),
)
ADDRESS_ADD = SubForm(
    AddressForm,
    Perm.PERSON_UPDATE,
    _("Add an address"),
    "addresses",
    _("The address has been recorded."),
)
CONTACT_ADD = SubForm(
    ContactForm,
    Perm.PERSON_UPDATE,
    _("Add a contact"),
    "contacts",
    _("The contact has been added."),
)
TIE_ADD = SubForm(
    FamilyTieForm,
    Perm.FAMILY_MANAGE,
    _("Add a family tie"),
    "family",
    _("The family tie has been recorded."),
    {"relative_id": "relative"},
)
TIE_END = SubForm(
    EndDateForm,
    Perm.FAMILY_MANAGE,
    _("End a family tie"),
    "family",
    _("The family tie has been ended."),
)
EMPLOYMENT_ADD = SubForm(
    EmploymentForm,
    Perm.EMPLOYMENT_MANAGE,
    _("Add a working period"),
    "employment",
    _("The working period has been recorded."),
    {"employer_id": "employer"},
)
EMPLOYMENT_END = SubForm(
    EndDateForm,
    Perm.EMPLOYMENT_MANAGE,
    _("End a working period"),
    "employment",
    _("The working period has been ended."),
)
SALARY_CHANGE = SubForm(
    SalaryChangeForm,
    Perm.EMPLOYMENT_MANAGE,
    _("Record a salary change"),
    "employment",
    _("The salary change has been recorded."),
)
ENROLMENT_ADD = SubForm(
    EnrolmentForm,
    Perm.ENROLMENT_MANAGE,
    _("Enrol in a programme"),
    "enrolments",
    _("The enrolment has been recorded."),
)
ENROLMENT_STATUS = SubForm(
    EnrolmentStatusForm,
    Perm.ENROLMENT_MANAGE,
    _("Change an enrolment's status"),
    "enrolments",
    _("The enrolment has been updated."),
    {"end_date": "on"},
)


def _programme_choices(actor: Actor) -> list[tuple[str, str]]:
    language = get_language()
    return [(p.code, p.name(language)) for p in selectors.programme_list(actor=actor)]


@require_GET
@staff_view
def person_detail(request: HttpRequest, person_id: int) -> HttpResponse:
    actor = actor_for(request)
    history_page = page_number(request, "history_page")
    access_page = page_number(request, "access_page")
    fragment = request.GET.get("fragment", "")
    purpose = request.GET.get("purpose", "").strip()[:200]
    if is_htmx(request) and fragment in ("history", "access"):
        # Paging through the history or the access log fetches that table only, not the whole
        # record again. The history's before/after values are personal data, so the selector
        # logs that read; the access log lists readers, not the person's data.
        page: Page[Any]
        if fragment == "history":
            page = selectors.person_history(
                actor=actor, person_id=person_id, page=history_page, purpose=purpose
            )
            template = "registry/_person_history.html"
        else:
            page = selectors.person_access_log(actor=actor, person_id=person_id, page=access_page)
            template = "registry/_person_access.html"
        response = render(request, template, {"page": page, "person_id": person_id})
        patch_vary_headers(response, ["HX-Request"])
        return response

    record = selectors.person_record(actor=actor, person_id=person_id, purpose=purpose)
    context: dict[str, Any] = {
        "record": record,
        "person": record.person,
        # person_record above has logged this request's read of the record, history included.
        "history": selectors.person_history(
            actor=actor, person_id=person_id, page=history_page, already_logged=True
        ),
        "accesses": selectors.person_access_log(actor=actor, person_id=person_id, page=access_page),
        "active_employments": sum(1 for e in record.employments if e.employment.end_date is None),
        # Contributions are part of the record: person_record above has checked access and
        # logged this read, so the history is read without a second check or log entry.
        "work_history": work_history_of(person_id, include_superseded=True),
    }
    if actor.can(Perm.PERSON_UPDATE):
        context["identifier_form"] = IDENTIFIER_ADD.unbound()
        context["address_form"] = ADDRESS_ADD.unbound()
        context["contact_form"] = CONTACT_ADD.unbound()
    if actor.can(Perm.FAMILY_MANAGE):
        context["tie_form"] = TIE_ADD.unbound()
    if actor.can(Perm.EMPLOYMENT_MANAGE):
        context["employment_form"] = EMPLOYMENT_ADD.unbound()
    if actor.can(Perm.ENROLMENT_MANAGE):
        context["enrolment_form"] = ENROLMENT_ADD.unbound(programmes=_programme_choices(actor))
    response = render(request, "registry/person_detail.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


Perform = Callable[[Actor, dict[str, Any]], object]


def _subform(
    request: HttpRequest,
    person_id: int,
    spec: SubForm,
    perform: Perform,
    *,
    form_kwargs: Mapping[str, Any] | None = None,
    subject: str = "",
) -> HttpResponse:
    """Run one of the person page's small forms.

    A valid submission calls the service and goes back to the person page. Invalid input, or
    a service refusal, shows the form on a page of its own with the errors next to the fields;
    the same page is what a GET shows, so every form also works without the person page."""
    actor = actor_for(request)
    actor.require(spec.permission)
    form = spec.form_class(
        request.POST if request.method == "POST" else None,
        auto_id=spec.auto_id,
        **(form_kwargs or {}),
    )
    if request.method == "POST" and form.is_valid():
        try:
            perform(actor, form.cleaned_data)
        except ValidationFailed as error:
            apply_service_errors(form, error, spec.field_map)
        except Conflict as error:
            form.add_error(None, str(error.message))
        else:
            messages.success(request, str(spec.success))
            return redirect(_person_url(person_id, spec.anchor))
    person = selectors.person_get(actor=actor, person_id=person_id)
    return render(
        request,
        "registry/person_subform.html",
        {"person": person, "form": form, "spec": spec, "subject": subject},
        status=422 if form.is_bound else 200,
    )


RECORD_EXPORT = SubForm(
    RecordExportForm,
    Perm.PERSON_VIEW,
    _("Export the record"),
    "identity",
    _("The record has been exported."),
)


@require_http_methods(["GET", "POST"])
@staff_view
def person_export(request: HttpRequest, person_id: int) -> HttpResponse:
    """The whole record as a JSON file (for a data subject's access request, a court, another
    institution by hand). The read is logged on the export channel with the stated purpose; the
    document has the API's shape, so it is validated by the same schema."""
    actor = actor_for(request)
    form = RecordExportForm(
        request.POST if request.method == "POST" else None, auto_id=RECORD_EXPORT.auto_id
    )
    if request.method == "POST" and form.is_valid():
        record = selectors.person_record(
            actor=replace(actor, channel="export"),
            person_id=person_id,
            purpose=form.cleaned_data["purpose"],
            action="export",
        )
        response = HttpResponse(
            person_record_json(record, language=get_language()),
            content_type="application/json; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="pilar-person-{person_id}.json"'
        return response
    person = selectors.person_get(actor=actor, person_id=person_id)
    return render(
        request,
        "registry/person_subform.html",
        {"person": person, "form": form, "spec": RECORD_EXPORT, "submit_label": _("Download")},
        status=422 if form.is_bound else 200,
    )


@require_http_methods(["GET", "POST"])
@staff_view
def identifier_add(request: HttpRequest, person_id: int) -> HttpResponse:
    def perform(actor: Actor, data: dict[str, Any]) -> object:
        return services.identifier_add(
            actor=actor,
            person_id=person_id,
            data=IdentifierData(
                scheme=data["scheme"],
                value=data["value"],
                issuing_country=data["issuing_country"],
            ),
        )

    return _subform(request, person_id, IDENTIFIER_ADD, perform)


@require_http_methods(["GET", "POST"])
@staff_view
def identifier_deactivate(request: HttpRequest, person_id: int, identifier_id: int) -> HttpResponse:
    def perform(actor: Actor, data: dict[str, Any]) -> object:
        return services.identifier_deactivate(
            actor=actor, identifier_id=identifier_id, reason=data["reason"]
        )

    return _subform(request, person_id, IDENTIFIER_DEACTIVATE, perform)


@require_http_methods(["GET", "POST"])
@staff_view
def address_add(request: HttpRequest, person_id: int) -> HttpResponse:
    def perform(actor: Actor, data: dict[str, Any]) -> object:
        return services.address_add(
            actor=actor,
            person_id=person_id,
            data=AddressData(
                kind=data["kind"],
                street=data["street"],
                neighbourhood=data["neighbourhood"],
                municipality=data["municipality"],
                state=data["state"],
                postal_code=data["postal_code"],
                valid_from=data["valid_from"],
            ),
        )

    return _subform(request, person_id, ADDRESS_ADD, perform)


@require_http_methods(["GET", "POST"])
@staff_view
def contact_add(request: HttpRequest, person_id: int) -> HttpResponse:
    def perform(actor: Actor, data: dict[str, Any]) -> object:
        return services.contact_add(
            actor=actor,
            person_id=person_id,
            data=ContactData(
                kind=data["kind"], value=data["value"], is_preferred=data["is_preferred"]
            ),
        )

    return _subform(request, person_id, CONTACT_ADD, perform)


@require_POST
@staff_view
def contact_remove(request: HttpRequest, person_id: int, contact_id: int) -> HttpResponse:
    services.contact_remove(actor=actor_for(request), contact_id=contact_id)
    messages.success(request, _("The contact has been removed."))
    return redirect(_person_url(person_id, "contacts"))


def _resolve_relative(actor: Actor, text: str) -> int:
    """The record number of the relative the clerk typed: a CURP or NSS is looked up through
    the search (which keeps to the actor's region); a plain number is a record number."""
    value = compact(text)
    if value.isdigit() and len(value) < 11:
        return int(value)
    is_nss = value.isdigit() and len(value) == 11
    if is_nss or len(value) == 18:
        # Only identifier-shaped text is searched, so a name can never pick a relative.
        matches = selectors.person_search(actor=actor, query=value, page_size=2)
        if len(matches.items) == 1 and (is_nss or matches.items[0].curp == value):
            return matches.items[0].id
    raise ValidationFailed.single(
        "relative",
        "relative.not_found",
        _("No registered person in your area has this CURP, NSS or record number."),
    )


@require_http_methods(["GET", "POST"])
@staff_view
def family_tie_add(request: HttpRequest, person_id: int) -> HttpResponse:
    def perform(actor: Actor, data: dict[str, Any]) -> object:
        relative_id = _resolve_relative(actor, data["relative"])
        try:
            return services.family_tie_create(
                actor=actor,
                person_id=person_id,
                relative_id=relative_id,
                relation=data["relation"],
                start_date=data["start_date"],
                end_date=data["end_date"],
            )
        except NotFound as error:
            if error.extra.get("id") != relative_id or relative_id == person_id:
                raise
            raise ValidationFailed.single(
                "relative",
                "relative.not_found",
                _("No registered person in your area has this CURP, NSS or record number."),
            ) from error

    return _subform(request, person_id, TIE_ADD, perform)


@require_http_methods(["GET", "POST"])
@staff_view
def family_tie_end(request: HttpRequest, person_id: int, tie_id: int) -> HttpResponse:
    def perform(actor: Actor, data: dict[str, Any]) -> object:
        return services.family_tie_end(actor=actor, tie_id=tie_id, end_date=data["end_date"])

    return _subform(request, person_id, TIE_END, perform)


def _resolve_employer(actor: Actor, text: str) -> int:
    """The employer whose RFC or registration number the clerk typed (exact match only)."""
    value = compact(text)
    for employer in selectors.employer_list(actor=actor, query=value, page_size=5).items:
        if value in (employer.rfc, employer.registration_number):
            return employer.pk
    raise ValidationFailed.single(
        "employer",
        "employer.not_found",
        _("No employer has this RFC or registration number."),
    )


@require_http_methods(["GET", "POST"])
@staff_view
def employment_add(request: HttpRequest, person_id: int) -> HttpResponse:
    def perform(actor: Actor, data: dict[str, Any]) -> object:
        return services.employment_create(
            actor=actor,
            person_id=person_id,
            employer_id=_resolve_employer(actor, data["employer"]),
            start_date=data["start_date"],
            end_date=data["end_date"],
            job_title=data["job_title"],
            daily_salary=data["daily_salary"],
        )

    return _subform(request, person_id, EMPLOYMENT_ADD, perform)


@require_http_methods(["GET", "POST"])
@staff_view
def employment_end(request: HttpRequest, person_id: int, employment_id: int) -> HttpResponse:
    def perform(actor: Actor, data: dict[str, Any]) -> object:
        return services.employment_end(
            actor=actor, employment_id=employment_id, end_date=data["end_date"]
        )

    return _subform(request, person_id, EMPLOYMENT_END, perform)


@require_http_methods(["GET", "POST"])
@staff_view
def salary_change(request: HttpRequest, person_id: int, employment_id: int) -> HttpResponse:
    def perform(actor: Actor, data: dict[str, Any]) -> object:
        return services.employment_salary_change(
            actor=actor,
            employment_id=employment_id,
            effective_from=data["effective_from"],
            daily_salary=data["daily_salary"],
        )

    return _subform(request, person_id, SALARY_CHANGE, perform)


@require_http_methods(["GET", "POST"])
@staff_view
def enrolment_add(request: HttpRequest, person_id: int) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.ENROLMENT_MANAGE)

    def perform(actor: Actor, data: dict[str, Any]) -> object:
        return services.enrolment_create(
            actor=actor,
            person_id=person_id,
            programme_code=data["programme"],
            start_date=data["start_date"],
        )

    return _subform(
        request,
        person_id,
        ENROLMENT_ADD,
        perform,
        form_kwargs={"programmes": _programme_choices(actor)},
    )


@require_http_methods(["GET", "POST"])
@staff_view
def enrolment_status(request: HttpRequest, person_id: int, enrolment_id: int) -> HttpResponse:
    def perform(actor: Actor, data: dict[str, Any]) -> object:
        return services.enrolment_set_status(
            actor=actor, enrolment_id=enrolment_id, status=data["status"], on=data["on"]
        )

    return _subform(request, person_id, ENROLMENT_STATUS, perform)


# --- employers --------------------------------------------------------------------------------


@require_GET
@staff_view
def employer_list(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    form = EmployerFilterForm(request.GET)
    page = None
    if form.is_valid():
        page = selectors.employer_list(
            actor=actor,
            query=form.cleaned_data["q"],
            status=form.cleaned_data["status"],
            state=form.cleaned_data["state"],
            page=page_number(request),
        )
    else:
        # An invalid filter (a status that does not exist) still needs the permission check.
        actor.require(Perm.EMPLOYER_VIEW)
    return render(
        request,
        "registry/employer_list.html",
        {"form": form, "page": page},
        status=200 if page is not None else 422,
    )


def _employer_data(values: Mapping[str, Any]) -> EmployerData:
    return EmployerData(**{name: value for name, value in values.items() if value is not None})


@require_http_methods(["GET", "POST"])
@staff_view
def employer_register(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.EMPLOYER_REGISTER)
    form = EmployerForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            try:
                employer = services.employer_register(
                    actor=actor, data=_employer_data(form.employer_values())
                )
            except ValidationFailed as error:
                apply_service_errors(form, error)
            else:
                messages.success(request, _("The employer has been registered."))
                return redirect("registry:employer_detail", employer_id=employer.pk)
    return render(request, "registry/employer_form.html", {"form": form}, status=status)


@require_GET
@staff_view
def employer_detail(request: HttpRequest, employer_id: int) -> HttpResponse:
    actor = actor_for(request)
    record = selectors.employer_get(actor=actor, employer_id=employer_id)
    show_all = request.GET.get("all") == "1"
    workers = selectors.employer_workers(
        actor=actor,
        employer_id=employer_id,
        current_only=not show_all,
        page=page_number(request),
    )
    return render(
        request,
        "registry/employer_detail.html",
        {
            "record": record,
            "employer": record.employer,
            "workers": workers,
            "show_all": show_all,
            "can_see_workers": actor.can(Perm.PERSON_VIEW),
        },
    )


@require_http_methods(["GET", "POST"])
@staff_view
def employer_edit(request: HttpRequest, employer_id: int) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.EMPLOYER_UPDATE)
    stale = False
    status = 200
    if request.method == "GET":
        employer = selectors.employer_get(actor=actor, employer_id=employer_id).employer
        initial = {name: getattr(employer, name) for name in EmployerEditForm.EMPLOYER_FIELDS}
        form: forms.Form = EmployerEditForm(initial={**initial, "version": employer.version})
    else:
        form = edit_form = EmployerEditForm(request.POST)
        status = 422
        if edit_form.is_valid():
            try:
                services.employer_update(
                    actor=actor,
                    employer_id=employer_id,
                    changes=edit_form.employer_values(),
                    expected_version=edit_form.cleaned_data["version"],
                )
            except StaleVersion:
                stale = True
                status = 409
            except ValidationFailed as error:
                apply_service_errors(edit_form, error)
            else:
                messages.success(request, _("The changes have been saved."))
                return redirect("registry:employer_detail", employer_id=employer_id)
    return render(
        request,
        "registry/employer_form.html",
        {"form": form, "employer_id": employer_id, "stale": stale},
        status=status,
    )


@require_GET
@staff_view
def statistics(request: HttpRequest) -> HttpResponse:
    """Registry counts for analysts and managers: aggregates only, no person is shown."""
    stats = selectors.registry_statistics(actor=actor_for(request))
    largest = max((row.persons for row in stats.by_region), default=0)
    return render(request, "registry/statistics.html", {"stats": stats, "largest": largest})
