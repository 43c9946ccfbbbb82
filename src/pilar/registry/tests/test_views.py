"""The registry's staff UI through Django's test client: search, registration (errors, possible
duplicates), editing with optimistic locking, the person page and its small forms, region
scope and permissions, employers."""

from __future__ import annotations

import datetime
import json
import re
from decimal import Decimal
from typing import Any, cast

import pytest
from django.test import Client
from django.urls import reverse

from pilar.core.identifiers import curp_complete, curp_stem, nss_check_digit
from pilar.core.models import AccessLogEntry, AuditEvent, User
from pilar.core.roles import Role
from pilar.core.tests.factories import TEST_PASSWORD, staff
from pilar.core.text import normalized_full_name
from pilar.registry import services
from pilar.registry.models import (
    Address,
    Contact,
    Employer,
    Employment,
    Enrolment,
    FamilyTie,
    Identifier,
    Person,
)
from pilar.registry.tests.factories import (
    EmployerFactory,
    EmploymentFactory,
    PersonFactory,
    ProgrammeFactory,
    person_with_curp,
    valid_nss,
)

pytestmark = pytest.mark.django_db

SEARCH = reverse("registry:person_search")
REGISTER = reverse("registry:person_register")


# factory_boy's factories are untyped; these say what they return.
def new_person(**kwargs: Any) -> Person:
    return cast(Person, PersonFactory(**kwargs))


def new_employer(**kwargs: Any) -> Employer:
    return cast(Employer, EmployerFactory(**kwargs))


def new_employment(**kwargs: Any) -> Employment:
    return cast(Employment, EmploymentFactory(**kwargs))


def signed_in(user: User, language: str = "en") -> Client:
    """A client of ``user`` reading the UI in English, so assertions read naturally; the
    Spanish catalogue is covered by its own tests."""
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


def registrar(region: str = "JC") -> Client:
    return signed_in(staff(Role.REGISTRAR, region=region))


def detail_url(person: Person) -> str:
    return reverse("registry:person_detail", args=[person.pk])


def valid_curp(**person: object) -> str:
    stem = curp_stem(
        given_names=str(person["given_names"]),
        paternal_surname=str(person["paternal_surname"]),
        maternal_surname=str(person["maternal_surname"]),
        birth_date=person["birth_date"],  # type: ignore[arg-type]
        sex=str(person["sex"]),
        birth_state=str(person["birth_state"]),
    )
    return curp_complete(stem, person["birth_date"])  # type: ignore[arg-type]


def registration(**overrides: str) -> dict[str, str]:
    data = {
        "given_names": "José Ángel",
        "paternal_surname": "Núñez",
        "maternal_surname": "Ortega",
        "sex": "M",
        "birth_date": "1975-03-09",
        "birth_state": "JC",
        "birth_country": "MX",
        "nationality": "MX",
        "region": "JC",
    }
    data["curp"] = valid_curp(
        given_names=data["given_names"],
        paternal_surname=data["paternal_surname"],
        maternal_surname=data["maternal_surname"],
        birth_date=datetime.date(1975, 3, 9),
        sex="M",
        birth_state="JC",
    )
    data.update(overrides)
    return data


def with_wrong_check_digit(curp: str) -> str:
    last = int(curp[-1]) if curp[-1].isdigit() else 0
    return curp[:-1] + str((last + 1) % 10)


# --- search -----------------------------------------------------------------------------------


def test_search_by_name_ignores_accents_case_and_word_order() -> None:
    person = new_person(given_names="María Guadalupe", paternal_surname="Hernández")
    new_person(given_names="Pedro", paternal_surname="Gómez", maternal_surname="Ruiz")
    client = registrar()
    for query in ("hernandez", "HERNÁNDEZ maría", "guadalupe hern"):
        response = client.get(SEARCH, {"q": query})
        assert response.status_code == 200
        html = response.content.decode()
        assert detail_url(person) in html, query
        assert "Pedro" not in html


def test_search_by_identifier_finds_the_exact_person() -> None:
    person, curp = person_with_curp()
    new_person(given_names="Otra")
    response = registrar().get(SEARCH, {"q": curp.lower()})
    page = response.context["page"]
    assert [hit.id for hit in page.items] == [person.pk]
    assert curp in response.content.decode()


def test_search_shows_deceased_badge_and_hides_inactive_unless_asked() -> None:
    new_person(paternal_surname="Vega", death_date=datetime.date(2020, 1, 1))
    new_person(paternal_surname="Vega", given_names="Inés", status="inactive")
    client = registrar()
    html = client.get(SEARCH, {"q": "vega"}).content.decode()
    assert "badge--deceased" in html
    assert "Inés" not in html
    assert "Inés" in client.get(SEARCH, {"q": "vega", "include_inactive": "on"}).content.decode()


def test_search_too_short_or_too_long_shows_a_message_not_an_error() -> None:
    client = registrar()
    short = client.get(SEARCH, {"q": "a"})
    assert short.status_code == 200
    assert "at least 2 letters" in short.content.decode()
    long = client.get(SEARCH, {"q": "x" * 5000})
    assert long.status_code == 200
    assert 'aria-invalid="true"' in long.content.decode()


def test_search_answers_htmx_with_the_results_fragment_only() -> None:
    person = new_person()
    response = registrar().get(SEARCH, {"q": "hernandez"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "<html" not in html
    assert 'id="search-results"' in html
    assert detail_url(person) in html
    assert "HX-Request" in response["Vary"]
    full = registrar().get(
        SEARCH,
        {"q": "hernandez"},
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in full.content.decode()


def test_search_paginates_and_reports_when_the_count_is_capped() -> None:
    Person.objects.bulk_create(
        Person(
            given_names=f"Ana{index:04d}",
            paternal_surname="Soto",
            sex="F",
            birth_date=datetime.date(1990, 1, 1),
            region="JC",
            normalized_name=normalized_full_name(f"Ana{index:04d}", "Soto", ""),
        )
        for index in range(1005)
    )
    client = registrar()
    first = client.get(SEARCH, {"q": "soto"})
    assert len(first.context["page"].items) == 25
    assert "more than 1,000" in first.content.decode()
    second = client.get(SEARCH, {"q": "soto", "page": "2"})
    assert "ANA0025" in second.context["page"].items[0].full_name.upper()
    assert 'rel="prev"' in second.content.decode()


def test_search_is_refused_to_roles_without_person_access() -> None:
    assert signed_in(staff(Role.ANALYST)).get(SEARCH, {"q": "x"}).status_code == 403


# --- registration -----------------------------------------------------------------------------


def test_register_form_defaults_to_the_users_region_and_offers_only_it() -> None:
    response = registrar("NL").get(REGISTER)
    form = response.context["form"]
    assert form.initial["region"] == "NL"
    assert [code for code, _name in form.fields["region"].choices] == ["NL"]
    html = response.content.decode()
    assert 'type="date"' in html
    assert '<label for="id_given_names"' in html


def test_register_invalid_shows_errors_next_to_fields_and_saves_nothing() -> None:
    data = registration(given_names="", postal_code="")
    data["curp"] = with_wrong_check_digit(data["curp"])
    data["address_street"] = "Av. Vallarta 100"
    data["address_postal_code"] = "441"
    data["contact_kind"] = "email"
    data["contact_value"] = "not-an-email"
    response = registrar().post(REGISTER, data)
    assert response.status_code == 422
    html = response.content.decode()
    assert 'id="id_given_names_error"' in html
    assert "The CURP check digit (last character) is wrong." in html
    assert 'id="id_curp_error"' in html
    assert 'aria-describedby="id_curp_error id_curp_helptext"' in html
    assert 'id="id_address_postal_code_error"' in html
    assert 'id="id_contact_value_error"' in html
    assert 'class="error-summary"' in html
    assert 'href="#id_curp"' in html
    assert not Person.objects.exists()
    assert not AuditEvent.objects.filter(action="person.register").exists()


def test_register_valid_redirects_to_the_record_and_is_audited() -> None:
    data = registration(nss="")
    first_ten = "0199751234"
    data["nss"] = first_ten + nss_check_digit(first_ten)
    data.update(
        address_street="Av. Hidalgo 12",
        address_municipality="Guadalajara",
        address_state="JC",
        address_postal_code="44100",
        contact_kind="mobile",
        contact_value="33 1234 5678",
    )
    client = registrar()
    response = client.post(REGISTER, data)
    person = Person.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail_url(person)
    assert person.full_name == "José Ángel Núñez Ortega"
    assert set(person.identifiers.values_list("scheme", flat=True)) == {"CURP", "NSS"}
    assert Address.objects.filter(person=person, postal_code="44100").exists()
    assert Contact.objects.filter(person=person, value="3312345678").exists()
    event = AuditEvent.objects.get(action="person.register")
    assert event.person_id == person.pk
    assert event.channel == "ui"
    assert "The person has been registered." in client.get(response["Location"]).content.decode()


def test_register_oversized_fields_are_refused_without_saving() -> None:
    response = registrar().post(
        REGISTER, registration(given_names="A" * 10_000, address_street="B" * 5_000)
    )
    assert response.status_code == 422
    assert 'id="id_given_names_error"' in response.content.decode()
    assert not Person.objects.exists()


def test_register_in_another_region_is_a_field_error() -> None:
    response = registrar("JC").post(REGISTER, registration(region="NL"))
    assert response.status_code == 422
    assert 'id="id_region_error"' in response.content.decode()
    assert not Person.objects.exists()


def test_possible_duplicate_is_shown_then_registered_when_acknowledged() -> None:
    existing = new_person(
        given_names="José Ángel",
        paternal_surname="Núñez",
        maternal_surname="Ortega",
        sex="M",
        birth_date=datetime.date(1975, 3, 9),
    )
    client = registrar()
    data = registration(curp="")
    first = client.post(REGISTER, data)
    assert first.status_code == 409
    html = first.content.decode()
    assert detail_url(existing) in html
    assert 'name="acknowledge_possible_duplicate"' in html
    assert Person.objects.count() == 1

    second = client.post(REGISTER, {**data, "acknowledge_possible_duplicate": "on"})
    assert second.status_code == 302
    assert Person.objects.count() == 2
    assert "possible duplicate" in AuditEvent.objects.get(action="person.register").note


def test_the_warning_says_why_a_differently_typed_record_matches() -> None:
    client = registrar()
    first = client.post(REGISTER, registration())
    assert first.status_code == 302
    existing = Person.objects.get()

    # A nickname, the surnames swapped, no accents, no CURP.
    typed = registration(
        given_names="Pepe Angel", paternal_surname="Ortega", maternal_surname="Nunez", curp=""
    )
    response = client.post(REGISTER, typed)

    assert response.status_code == 409
    html = response.content.decode()
    assert detail_url(existing) in html
    assert f'data-candidate="{existing.pk}"' in html
    agree = re.search(r'class="candidate-agree"><strong>Agree:</strong> ([^<]*)</p>', html)
    assert agree is not None
    assert {"Surnames", "Birth date"} <= set(agree.group(1).split(", "))
    assert "the same, in the other order" in html
    assert 'name="acknowledge_possible_duplicate"' in html
    assert Person.objects.count() == 1


def test_an_identifier_conflict_is_flagged_in_the_warning() -> None:
    client = registrar()
    assert client.post(REGISTER, registration(nss=valid_nss())).status_code == 302

    response = client.post(REGISTER, registration(curp="", nss=valid_nss()))

    assert response.status_code == 409
    assert "Different CURP or NSS" in response.content.decode()


def test_register_needs_the_permission() -> None:
    client = signed_in(staff(Role.BENEFITS_OFFICER))
    assert client.get(REGISTER).status_code == 403
    assert client.post(REGISTER, registration()).status_code == 403
    assert not Person.objects.exists()


# --- editing ----------------------------------------------------------------------------------


def test_edit_form_is_prefilled_with_the_version() -> None:
    person = new_person()
    response = registrar().get(reverse("registry:person_edit", args=[person.pk]))
    form = response.context["form"]
    assert form.initial["given_names"] == "María Guadalupe"
    assert form.initial["version"] == 1
    assert 'name="version" value="1"' in response.content.decode()


def _edit_data(person: Person, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "given_names": person.given_names,
        "paternal_surname": person.paternal_surname,
        "maternal_surname": person.maternal_surname,
        "sex": person.sex,
        "birth_date": person.birth_date.isoformat(),
        "birth_state": person.birth_state,
        "birth_country": person.birth_country,
        "nationality": person.nationality,
        "region": person.region,
        "death_date": "",
        "version": person.version,
    }
    data.update(overrides)
    return data


def test_edit_saves_and_bumps_the_version() -> None:
    person = new_person()
    url = reverse("registry:person_edit", args=[person.pk])
    response = registrar().post(url, _edit_data(person, maternal_surname="Lopez Díaz"))
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.maternal_surname == "Lopez Díaz"
    assert person.version == 2
    assert AuditEvent.objects.filter(action="person.update", person_id=person.pk).exists()


def test_edit_with_a_stale_version_is_refused_with_a_reload_link() -> None:
    person = new_person()
    url = reverse("registry:person_edit", args=[person.pk])
    stale = _edit_data(person, given_names="Guadalupe")
    registrar().post(url, _edit_data(person, maternal_surname="Ruiz"))
    response = registrar().post(url, stale)
    assert response.status_code == 409
    html = response.content.decode()
    assert "Someone else changed this record" in html
    assert f'href="{url}"' in html
    person.refresh_from_db()
    assert person.given_names == "María Guadalupe"
    assert person.maternal_surname == "Ruiz"


def test_edit_invalid_date_of_death_is_shown_on_the_field() -> None:
    person = new_person()
    url = reverse("registry:person_edit", args=[person.pk])
    response = registrar().post(url, _edit_data(person, death_date="1970-01-01"))
    assert response.status_code == 422
    assert 'id="id_death_date_error"' in response.content.decode()


# --- the person page --------------------------------------------------------------------------


def test_person_page_shows_the_record_and_logs_the_reading_with_its_purpose() -> None:
    person, curp = person_with_curp()
    employer = new_employer(legal_name="Tequilera Los Altos S.A. de C.V.")
    employment = new_employment(person=person, employer=employer)
    employment.salaries.create(effective_from=employment.start_date, daily_salary=Decimal("1234.5"))
    user = staff(Role.REGISTRAR)
    response = signed_in(user).get(detail_url(person), {"purpose": "pension claim 12"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "María Guadalupe Hernández López" in html
    assert curp in html
    assert "Tequilera Los Altos" in html
    assert "1,234.50" in html
    entry = AccessLogEntry.objects.get(person_id=person.pk)
    assert entry.actor == user
    assert entry.purpose == "pension claim 12"
    assert entry.channel == "ui"
    assert "pension claim 12" in html  # the reader sees their own reading in the log


def test_person_page_shows_change_history_with_before_and_after() -> None:
    person = new_person()
    client = registrar()
    client.post(
        reverse("registry:person_edit", args=[person.pk]),
        _edit_data(person, maternal_surname="Ruiz"),
    )
    html = client.get(detail_url(person)).content.decode()
    assert "person.update" in html
    assert "López" in html
    assert "Ruiz" in html


def test_person_page_logs_one_reading_per_request() -> None:
    person = new_person()
    registrar().get(detail_url(person), {"history_page": "1"})
    assert AccessLogEntry.objects.filter(person_id=person.pk).count() == 1


def test_history_fragment_renders_the_table_only_and_logs_a_history_read() -> None:
    person = new_person()
    client = registrar()
    response = client.get(
        detail_url(person),
        {"fragment": "history", "purpose": "appeal 7"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="history"' in html
    assert "<html" not in html
    entry = AccessLogEntry.objects.get(person_id=person.pk)
    assert entry.action == "history"
    assert entry.purpose == "appeal 7"
    access = client.get(detail_url(person), {"fragment": "access"}, headers={"HX-Request": "true"})
    assert 'id="access"' in access.content.decode()
    assert AccessLogEntry.objects.filter(person_id=person.pk).count() == 1


def test_person_outside_the_users_region_is_not_found() -> None:
    person = new_person(region="NL", birth_state="NL")
    client = registrar("JC")
    assert client.get(detail_url(person)).status_code == 404
    assert client.get(reverse("registry:person_edit", args=[person.pk])).status_code == 404
    assert not AccessLogEntry.objects.exists()
    assert "hernandez"
    assert not client.get(SEARCH, {"q": "hernandez"}).context["page"].items


def test_analyst_may_not_open_a_person() -> None:
    person = new_person()
    response = signed_in(staff(Role.ANALYST)).get(detail_url(person))
    assert response.status_code == 403
    assert "You do not have permission" in response.content.decode()


def test_unknown_person_is_not_found() -> None:
    assert registrar().get(reverse("registry:person_detail", args=[999999])).status_code == 404


def test_read_only_roles_see_no_sub_forms() -> None:
    person = new_person()
    html = signed_in(staff(Role.AUDITOR)).get(detail_url(person)).content.decode()
    assert reverse("registry:identifier_add", args=[person.pk]) not in html
    assert reverse("registry:person_edit", args=[person.pk]) not in html
    full = registrar().get(detail_url(person)).content.decode()
    assert reverse("registry:identifier_add", args=[person.pk]) in full


# --- sub-forms --------------------------------------------------------------------------------


def test_add_identifier_redirects_back_to_the_section() -> None:
    person = new_person()
    first_ten = "0199800042"
    response = registrar().post(
        reverse("registry:identifier_add", args=[person.pk]),
        {"scheme": "NSS", "value": first_ten + nss_check_digit(first_ten)},
    )
    assert response.status_code == 302
    assert response["Location"] == detail_url(person) + "#identifiers"
    assert person.identifiers.filter(scheme="NSS").exists()


def test_invalid_identifier_is_shown_on_the_standalone_form() -> None:
    person = new_person()
    url = reverse("registry:identifier_add", args=[person.pk])
    response = registrar().post(url, {"scheme": "NSS", "value": "12345678901"})
    assert response.status_code == 422
    html = response.content.decode()
    assert "The NSS check digit (last digit) is wrong." in html
    assert 'id="id_identifiers_value_error"' in html
    assert not person.identifiers.exists()
    assert registrar().get(url).status_code == 200


def test_deactivate_identifier_needs_a_reason() -> None:
    person, _curp = person_with_curp()
    identifier = person.identifiers.get()
    url = reverse("registry:identifier_deactivate", args=[person.pk, identifier.pk])
    client = registrar()
    assert client.post(url, {"reason": ""}).status_code == 422
    assert client.post(url, {"reason": "Corrected by RENAPO"}).status_code == 302
    identifier.refresh_from_db()
    assert not identifier.is_active


def test_add_address_and_contact() -> None:
    person = new_person()
    client = registrar()
    address = client.post(
        reverse("registry:address_add", args=[person.pk]),
        {
            "kind": "home",
            "street": "Calle Morelos 5",
            "municipality": "Zapopan",
            "state": "JC",
            "postal_code": "45100",
        },
    )
    assert address.status_code == 302
    assert person.addresses.get().municipality == "Zapopan"
    bad = client.post(
        reverse("registry:address_add", args=[person.pk]),
        {"kind": "home", "street": "X", "municipality": "Y", "state": "JC", "postal_code": "1"},
    )
    assert bad.status_code == 422
    assert "A Mexican postal code has five digits." in bad.content.decode()

    contact = client.post(
        reverse("registry:contact_add", args=[person.pk]),
        {"kind": "email", "value": "Ana@Example.mx", "is_preferred": "on"},
    )
    assert contact.status_code == 302
    saved = person.contacts.get()
    assert saved.value == "ana@example.mx"
    assert saved.is_preferred
    removed = client.post(reverse("registry:contact_remove", args=[person.pk, saved.pk]))
    assert removed.status_code == 302
    assert not person.contacts.exists()
    assert client.get(reverse("registry:contact_remove", args=[person.pk, 1])).status_code == 405


def test_family_tie_by_curp_shows_from_both_sides_and_can_end() -> None:
    mother = new_person(birth_date=datetime.date(1960, 1, 1))
    child, child_curp = person_with_curp(
        given_names="Luis", sex="M", birth_date=datetime.date(1990, 6, 1)
    )
    client = registrar()
    response = client.post(
        reverse("registry:family_tie_add", args=[mother.pk]),
        {"relative": child_curp, "relation": "child"},
    )
    assert response.status_code == 302
    tie = FamilyTie.objects.get()
    child_page = client.get(detail_url(child))
    ties = child_page.context["record"].ties
    assert [(t.relation, t.other.pk) for t in ties] == [("parent", mother.pk)]

    end = client.post(
        reverse("registry:family_tie_end", args=[mother.pk, tie.pk]), {"end_date": "2020-01-01"}
    )
    assert end.status_code == 302
    tie.refresh_from_db()
    assert tie.end_date == datetime.date(2020, 1, 1)


def test_family_tie_with_an_unknown_relative_is_a_field_error() -> None:
    person = new_person()
    url = reverse("registry:family_tie_add", args=[person.pk])
    for relative in ("999999", "HELG800517MJCRPD09", "garcia"):
        response = registrar().post(url, {"relative": relative, "relation": "spouse"})
        assert response.status_code == 422, relative
        assert 'id="id_family_relative_error"' in response.content.decode()
    outside = new_person(region="NL", birth_state="NL", given_names="Rosa")
    hidden = registrar().post(url, {"relative": str(outside.pk), "relation": "spouse"})
    assert hidden.status_code == 422
    assert not FamilyTie.objects.exists()


def test_employment_by_rfc_then_salary_change_and_end() -> None:
    person = new_person()
    employer = new_employer()
    client = registrar()
    response = client.post(
        reverse("registry:employment_add", args=[person.pk]),
        {
            "employer": employer.rfc.lower(),
            "start_date": "2010-02-01",
            "job_title": "Contadora",
            "daily_salary": "450.00",
        },
    )
    assert response.status_code == 302
    employment = Employment.objects.get()
    assert employment.employer == employer
    change = client.post(
        reverse("registry:salary_change", args=[person.pk, employment.pk]),
        {"effective_from": "2015-01-01", "daily_salary": "600.50"},
    )
    assert change.status_code == 302
    latest = employment.salaries.first()
    assert latest is not None
    assert latest.daily_salary == Decimal("600.50")
    end = client.post(
        reverse("registry:employment_end", args=[person.pk, employment.pk]),
        {"end_date": "2009-01-01"},
    )
    assert end.status_code == 422
    assert "The end date cannot be before the start date." in end.content.decode()
    ok = client.post(
        reverse("registry:employment_end", args=[person.pk, employment.pk]),
        {"end_date": "2020-12-31"},
    )
    assert ok.status_code == 302
    again = client.post(
        reverse("registry:employment_end", args=[person.pk, employment.pk]),
        {"end_date": "2020-12-31"},
    )
    assert again.status_code == 422
    assert "already ended" in again.content.decode()


def test_employment_with_an_unknown_employer_is_a_field_error() -> None:
    person = new_person()
    response = registrar().post(
        reverse("registry:employment_add", args=[person.pk]),
        {"employer": "Y0000000000", "start_date": "2010-02-01"},
    )
    assert response.status_code == 422
    assert 'id="id_employment_employer_error"' in response.content.decode()


def test_enrolment_and_status_change() -> None:
    ProgrammeFactory()
    person = new_person()
    client = registrar()
    response = client.post(
        reverse("registry:enrolment_add", args=[person.pk]),
        {"programme": "PENSION_BIENESTAR", "start_date": "2022-01-01"},
    )
    assert response.status_code == 302
    enrolment = Enrolment.objects.get()
    status = client.post(
        reverse("registry:enrolment_status", args=[person.pk, enrolment.pk]),
        {"status": "ended", "on": "2023-01-01"},
    )
    assert status.status_code == 302
    enrolment.refresh_from_db()
    assert enrolment.status == "ended"
    assert enrolment.end_date == datetime.date(2023, 1, 1)


def test_sub_forms_refuse_roles_without_the_permission() -> None:
    person = new_person()
    case_worker = signed_in(staff(Role.CASE_WORKER))
    response = case_worker.post(
        reverse("registry:address_add", args=[person.pk]),
        {
            "kind": "home",
            "street": "X 1",
            "municipality": "Y",
            "state": "JC",
            "postal_code": "44100",
        },
    )
    assert response.status_code == 403
    assert not Address.objects.exists()


def test_sub_forms_on_another_regions_person_are_not_found() -> None:
    person = new_person(region="NL", birth_state="NL")
    response = registrar("JC").post(
        reverse("registry:contact_add", args=[person.pk]), {"kind": "mobile", "value": "3312345678"}
    )
    assert response.status_code == 404
    assert not Contact.objects.exists()


# --- employers --------------------------------------------------------------------------------


def test_employer_list_searches_and_filters() -> None:
    alpha = new_employer(legal_name="Alfarería Tonalá S.A.")
    beta = new_employer(legal_name="Aceros del Norte S.A.", state="NL", status="closed")
    client = signed_in(staff(Role.ANALYST))
    by_name = client.get(reverse("registry:employer_list"), {"q": "alfareria"})
    assert list(by_name.context["page"].items) == [alpha]
    by_rfc = client.get(reverse("registry:employer_list"), {"q": beta.rfc})
    assert list(by_rfc.context["page"].items) == [beta]
    by_state = client.get(reverse("registry:employer_list"), {"state": "NL", "status": "closed"})
    assert list(by_state.context["page"].items) == [beta]
    assert client.get(reverse("registry:employer_list"), {"status": "bogus"}).status_code == 422


def _employer_post(**overrides: str) -> dict[str, str]:
    template = EmployerFactory.build()
    data = {
        "legal_name": "Servicios Integrales de Occidente S.A. de C.V.",
        "rfc": template.rfc,
        "registration_number": "Y9876543210",
        "sector": "54",
        "street": "Av. Américas 1500",
        "municipality": "Guadalajara",
        "state": "JC",
        "postal_code": "44630",
        "status": "active",
    }
    data.update(overrides)
    return data


def test_employer_register_invalid_then_valid() -> None:
    client = registrar()
    url = reverse("registry:employer_register")
    bad = client.post(url, _employer_post(rfc="XXX", registration_number="12"))
    assert bad.status_code == 422
    html = bad.content.decode()
    assert 'id="id_rfc_error"' in html
    assert 'id="id_registration_number_error"' in html
    assert not Employer.objects.exists()
    good = client.post(url, _employer_post())
    employer = Employer.objects.get()
    assert good.status_code == 302
    assert good["Location"] == reverse("registry:employer_detail", args=[employer.pk])
    assert AuditEvent.objects.filter(action="employer.register").exists()


def test_employer_page_lists_current_workers_in_the_users_region() -> None:
    employer = new_employer()
    new_employment(employer=employer, person=new_person(given_names="Visible"))
    new_employment(
        employer=employer,
        person=new_person(given_names="Lejana", region="NL", birth_state="NL"),
    )
    new_employment(
        employer=employer,
        person=new_person(given_names="Pasada"),
        end_date=datetime.date(2010, 1, 1),
    )
    url = reverse("registry:employer_detail", args=[employer.pk])
    html = registrar().get(url).content.decode()
    assert "Visible" in html
    assert "Lejana" not in html
    assert "Pasada" not in html
    assert "Pasada" in registrar().get(url, {"all": "1"}).content.decode()
    analyst_html = signed_in(staff(Role.ANALYST)).get(url).content.decode()
    assert "Visible" not in analyst_html
    assert employer.legal_name in analyst_html


def test_employer_edit_with_stale_version() -> None:
    employer = new_employer()
    url = reverse("registry:employer_edit", args=[employer.pk])
    client = registrar()
    form = client.get(url).context["form"]
    assert form.initial["rfc"] == employer.rfc
    data = _employer_post(rfc=employer.rfc, registration_number=employer.registration_number)
    assert client.post(url, {**data, "version": "1"}).status_code == 302
    employer.refresh_from_db()
    assert employer.version == 2
    assert employer.legal_name.startswith("Servicios Integrales")
    stale = client.post(url, {**data, "trade_name": "Otro", "version": "1"})
    assert stale.status_code == 409
    assert "Someone else changed this record" in stale.content.decode()


def test_pages_render_in_spanish_by_default() -> None:
    person = new_person()
    client = signed_in(staff(Role.REGISTRAR), language="es")
    html = client.get(detail_url(person)).content.decode()
    assert "Historial de cambios" in html
    assert "Quién consultó este registro" in html
    assert "Registrar persona" in client.get(REGISTER).content.decode()


def test_service_data_created_through_services_shows_on_the_page() -> None:
    """The page is a view of what services wrote, including the inverse side of a tie."""
    from pilar.core.actor import Actor

    user = staff(Role.REGISTRAR)
    actor = Actor.for_user(user, channel="ui")
    spouse_a = new_person(given_names="Carmen")
    spouse_b = new_person(given_names="Raúl", sex="M")
    services.family_tie_create(
        actor=actor, person_id=spouse_a.pk, relative_id=spouse_b.pk, relation="spouse"
    )
    html = signed_in(user).get(detail_url(spouse_b)).content.decode()
    assert "Carmen" in html
    assert "Spouse" in html
    assert Identifier.objects.count() == 0


class TestRecordExport:
    """The export channel of the access log: a JSON copy of the record with a stated purpose."""

    def test_export_needs_a_purpose_and_is_logged_on_the_export_channel(self) -> None:
        person, curp = person_with_curp()
        user = staff(Role.CASE_WORKER, region="JC")
        client = Client()
        assert client.login(username=user.username, password=TEST_PASSWORD)
        url = f"/persons/{person.pk}/export/"
        refused = client.post(url, {"purpose": "  "})
        assert refused.status_code == 422
        assert not AccessLogEntry.objects.filter(action="export").exists()
        response = client.post(url, {"purpose": "Solicitud ARCO 2026-114"})
        assert response.status_code == 200
        assert response["Content-Disposition"] == (
            f'attachment; filename="pilar-person-{person.pk}.json"'
        )
        document = json.loads(response.content)
        assert document["id"] == person.pk
        assert [i["value"] for i in document["identifiers"]] == [curp]
        entry = AccessLogEntry.objects.get(action="export")
        assert (entry.person_id, entry.channel, entry.purpose, entry.actor_label) == (
            person.pk,
            "export",
            "Solicitud ARCO 2026-114",
            user.username,
        )

    def test_export_of_another_region_is_not_found(self) -> None:
        person = PersonFactory.create(region="NL")
        user = staff(Role.REGISTRAR, region="JC")
        client = Client()
        assert client.login(username=user.username, password=TEST_PASSWORD)
        assert client.post(f"/persons/{person.pk}/export/", {"purpose": "x"}).status_code == 404


class TestStatistics:
    def test_analyst_sees_national_counts_but_no_person(self) -> None:
        PersonFactory.create(region="JC")
        PersonFactory.create(region="JC", given_names="Ana", death_date=datetime.date(2020, 1, 1))
        PersonFactory.create(region="NL", given_names="Luis", sex="M")
        analyst = staff(Role.ANALYST, region="DF")
        client = Client()
        assert client.login(username=analyst.username, password=TEST_PASSWORD)
        page = client.get("/statistics/")
        assert page.status_code == 200
        stats = page.context["stats"]
        assert (stats.persons_active, stats.persons_deceased) == (3, 1)
        assert [(row.region, row.persons) for row in stats.by_region] == [("JC", 2), ("NL", 1)]
        assert stats.by_sex == {"F": 2, "M": 1}
        assert not AccessLogEntry.objects.exists()
        # Analysts never open individual records.
        person = Person.objects.first()
        assert person is not None
        assert client.get(f"/persons/{person.pk}/").status_code == 403

    def test_regional_registrar_sees_only_their_region(self) -> None:
        PersonFactory.create(region="JC")
        PersonFactory.create(region="NL", given_names="Luis")
        registrar = staff(Role.REGISTRAR, region="JC")
        client = Client()
        assert client.login(username=registrar.username, password=TEST_PASSWORD)
        stats = client.get("/statistics/").context["stats"]
        assert (stats.scope_region, stats.persons_active) == ("JC", 1)

    def test_case_worker_without_permission_is_refused(self) -> None:
        worker = staff(Role.CASE_WORKER, region="JC")
        client = Client()
        assert client.login(username=worker.username, password=TEST_PASSWORD)
        assert client.get("/statistics/").status_code == 403


def test_change_history_names_fields_by_their_translated_labels() -> None:
    from pilar.core.actor import Actor

    person = PersonFactory.create()
    registrar = staff(Role.REGISTRAR, region="JC")
    services.person_update(
        actor=Actor.for_user(registrar, channel="ui"),
        person_id=person.pk,
        changes={"maternal_surname": "Gómez"},
    )
    client = Client()
    assert client.login(username=registrar.username, password=TEST_PASSWORD)
    page = client.get(f"/persons/{person.pk}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert '<span class="changes__field">Segundo apellido</span>' in page
    english = client.get(f"/persons/{person.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<span class="changes__field">Maternal surname</span>' in english
