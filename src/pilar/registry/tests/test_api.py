"""The registry's REST API end to end: real URLs, real tokens, the real database (SQLite or
PostgreSQL). Each endpoint is checked for success, its error documents, and what it writes to
the registry, the audit trail and the access log — and that a refused request writes nothing."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from pilar.core.actor import Actor
from pilar.core.auth import token_issue
from pilar.core.identifiers import CURP, NSS, curp_complete, curp_stem, rfc_check_digit
from pilar.core.models import AccessLogEntry, AuditEvent, User
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.registry.models import (
    Address,
    Contact,
    Employer,
    Employment,
    EmploymentSalary,
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

PROBLEM = "application/problem+json"
SYSTEM = Actor.system("test", roles=frozenset({Role.ADMINISTRATOR}))


class Api:
    """A test client that authenticates with a real API token and speaks JSON."""

    def __init__(self, user: User, role: str, language: str = "en") -> None:
        self.user = user
        _token, raw = token_issue(actor=SYSTEM, user=user, role=role, name="tests")
        self.headers = {"Authorization": f"Bearer {raw}", "Accept-Language": language}
        self.client = Client()

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        return self.client.get(path, params, headers={**self.headers, **(headers or {})})

    def send(self, method: str, path: str, body: Any = None, *, raw: str | None = None) -> Any:
        content = raw if raw is not None else ("" if body is None else json.dumps(body))
        return getattr(self.client, method)(
            path, content, content_type="application/json", headers=self.headers
        )

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.send("post", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.send("patch", path, body, **kwargs)


def registrar(region: str = "JC", language: str = "en") -> Api:
    return Api(staff(Role.REGISTRAR, region=region), Role.REGISTRAR, language)


def counts() -> dict[str, int]:
    """Rows of everything a registry request could write."""
    return {
        model.__name__: model.objects.count()
        for model in (
            Person,
            Identifier,
            Address,
            Contact,
            FamilyTie,
            Employer,
            Employment,
            EmploymentSalary,
            AuditEvent,
            AccessLogEntry,
        )
    }


def errors_of(response: Any) -> dict[str, list[str]]:
    """``{field: [code, ...]}`` from a problem document."""
    found: dict[str, list[str]] = {}
    for item in response.json().get("errors", []):
        found.setdefault(item["field"], []).append(item["code"])
    return found


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    document: dict[str, Any] = response.json()
    assert document["status"] == status
    assert document["code"] == code
    assert document["type"] == f"https://pilar.example/problems/{code}"
    assert document["title"]
    assert document["instance"] == response.wsgi_request.path
    return document


def person_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "given_names": "José Luis",
        "paternal_surname": "Núñez",
        "maternal_surname": "Peña",
        "sex": "M",
        "birth_date": "1975-03-09",
        "birth_state": "JC",
        "region": "JC",
    }
    body.update(overrides)
    return body


def curp_of(body: dict[str, Any], homonymy: int = 0) -> str:
    birth_date = datetime.date.fromisoformat(body["birth_date"])
    stem = curp_stem(
        given_names=body["given_names"],
        paternal_surname=body.get("paternal_surname") or "",
        maternal_surname=body.get("maternal_surname") or "",
        birth_date=birth_date,
        sex=body["sex"],
        birth_state=body["birth_state"],
    )
    return curp_complete(stem, birth_date, homonymy)


def company_rfc(letters: str) -> str:
    body = f"C{letters}850101A1"
    return body + rfc_check_digit(body)


def employer_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "rfc": company_rfc("ZZ"),
        "registration_number": "Y9876543210",
        "legal_name": "Tortillería La Esperanza S.A. de C.V.",
        "sector": "31",
        "street": "Calle Hidalgo 12",
        "municipality": "Zapopan",
        "state": "JC",
        "postal_code": "45100",
    }
    body.update(overrides)
    return body


# --- register -----------------------------------------------------------------------------------


def test_register_creates_the_person_with_identifiers_address_and_contacts() -> None:
    api = registrar()
    body = person_body(
        identifiers=[{"scheme": "CURP", "value": ""}, {"scheme": "NSS", "value": valid_nss()}],
        address={
            "street": "Av. Vallarta 1200",
            "municipality": "Guadalajara",
            "state": "JC",
            "postal_code": "44100",
        },
        contacts=[{"kind": "mobile", "value": "33 1234 5678", "is_preferred": True}],
    )
    curp = curp_of(body)
    body["identifiers"][0]["value"] = curp.lower()  # normalised by the service

    response = api.post("/api/v1/persons", body)

    assert response.status_code == 201, response.content
    data = response.json()
    person = Person.objects.get()
    assert response["Location"] == f"/api/v1/persons/{person.pk}"
    assert response["Cache-Control"] == "no-store"
    assert data["id"] == person.pk
    assert data["full_name"] == "José Luis Núñez Peña"
    assert data["birth_date"] == "1975-03-09"
    assert data["version"] == 1
    assert {(i["scheme"], i["value"]) for i in data["identifiers"]} == {
        (CURP, curp),
        (NSS, body["identifiers"][1]["value"]),
    }
    assert data["addresses"][0]["postal_code"] == "44100"
    assert data["contacts"] == [
        {
            "id": data["contacts"][0]["id"],
            "kind": "mobile",
            "value": "3312345678",
            "is_preferred": True,
        }
    ]
    event = AuditEvent.objects.get(action="person.register")
    assert (event.channel, event.actor, event.person_id) == ("api", api.user, person.pk)
    assert event.changes["identifier.CURP"] == [None, curp]
    # Echoing back what the caller just wrote is not a read of the record.
    assert not AccessLogEntry.objects.exists()


def test_register_defaults_the_region_to_the_office_and_accepts_nulls_for_optional_text() -> None:
    api = registrar(region="JC")
    body = person_body(maternal_surname=None, birth_state=None, region=None)

    response = api.post("/api/v1/persons", body)

    assert response.status_code == 201, response.content
    assert response.json()["region"] == "JC"
    assert response.json()["maternal_surname"] == ""


def test_register_reports_every_field_error_with_stable_codes_and_writes_nothing() -> None:
    api = registrar()
    body = person_body(
        given_names="",
        sex="Q",
        birth_date=(timezone.localdate() + datetime.timedelta(days=3)).isoformat(),
        identifiers=[{"scheme": "CURP", "value": "HELM800517MJCRPR09"}],
        address={
            "street": "Av. Juárez 1",
            "municipality": "Guadalajara",
            "state": "JC",
            "postal_code": "441",
        },
        contacts=[{"kind": "mobile", "value": "12"}],
    )
    before = counts()

    response = api.post("/api/v1/persons", body)

    document = assert_problem(response, 422, "validation_failed")
    assert document["detail"] == "Some fields are not valid."
    assert errors_of(response) == {
        "given_names": ["required"],
        "sex": ["invalid_choice"],
        "birth_date": ["date.in_future"],
        "identifiers[0]": ["curp.invalid_check_digit"],
        "address.postal_code": ["postal_code.invalid"],
        "contacts[0].value": ["phone.invalid"],
    }
    assert all(item["message"] for item in document["errors"])
    assert counts() == before


def test_register_refuses_unknown_fields_at_any_depth() -> None:
    api = registrar()
    body = person_body(
        nickname="Pepe",
        address={
            "street": "Juárez 1",
            "municipality": "Gdl",
            "state": "JC",
            "postal_code": "44100",
            "colour": "blue",
        },
    )
    before = counts()

    response = api.post("/api/v1/persons", body)

    assert_problem(response, 422, "validation_failed")
    assert errors_of(response) == {
        "nickname": ["field.unknown"],
        "address.colour": ["field.unknown"],
    }
    assert counts() == before


def test_register_reports_wrong_types_by_field() -> None:
    api = registrar()
    body = person_body(
        given_names=5,
        birth_date=0,
        identifiers="CURP",
        acknowledge_possible_duplicate="yes",
        contacts=[{"kind": "email", "value": "a@b.mx", "is_preferred": 1}],
    )

    response = api.post("/api/v1/persons", body)

    assert_problem(response, 422, "validation_failed")
    assert errors_of(response) == {
        "given_names": ["field.invalid_type"],
        "birth_date": ["field.invalid_date"],
        "identifiers": ["field.invalid_type"],
        "acknowledge_possible_duplicate": ["field.invalid_type"],
        "contacts[0].is_preferred": ["field.invalid_type"],
    }


@pytest.mark.parametrize("value", ["1975-3-9", "1975-03-09T00:00:00", "09/03/1975", "1975-02-30"])
def test_dates_must_be_real_iso_dates(value: str) -> None:
    response = registrar().post("/api/v1/persons", person_body(birth_date=value))

    assert_problem(response, 422, "validation_failed")
    assert errors_of(response) == {"birth_date": ["field.invalid_date"]}


def test_register_reports_missing_required_fields_and_an_empty_body() -> None:
    api = registrar()

    empty_object = api.post("/api/v1/persons", {})
    no_body = api.post("/api/v1/persons")

    assert_problem(empty_object, 422, "validation_failed")
    assert errors_of(empty_object) == {
        "given_names": ["required"],
        "sex": ["required"],
        "birth_date": ["required"],
    }
    assert_problem(no_body, 422, "validation_failed")
    assert errors_of(no_body) == {"body": ["required"]}


def test_register_bounds_field_sizes_and_list_lengths() -> None:
    api = registrar()
    body = person_body(
        given_names="A" * 101,
        identifiers=[{"scheme": "NSS", "value": "1"}] * 11,
        contacts=[{"kind": "email", "value": "x" * 201}],
    )

    response = api.post("/api/v1/persons", body)

    assert_problem(response, 422, "validation_failed")
    assert errors_of(response) == {
        "given_names": ["too_long"],
        "identifiers": ["field.too_many_items"],
        "contacts[0].value": ["too_long"],
    }
    messages = {item["field"]: item["message"] for item in response.json()["errors"]}
    assert messages["given_names"] == "At most 100 characters."
    assert messages["identifiers"] == "At most 10 items."


@pytest.mark.parametrize(
    "raw",
    ['{"given_names": "Ana",', "not json", '{"given_names": NaN}', '{"sex": "F", "sex": "M"}'],
)
def test_malformed_json_is_a_400_problem_and_writes_nothing(raw: str) -> None:
    api = registrar()
    before = counts()

    response = api.post("/api/v1/persons", raw=raw)

    document = assert_problem(response, 400, "json.malformed")
    assert document["errors"][0]["field"] == "body"
    assert document["errors"][0]["code"] == "json.malformed"
    assert counts() == before


def test_malformed_json_says_where() -> None:
    response = registrar().post("/api/v1/persons", raw='{\n  "given_names": "Ana",\n}')

    assert response.json()["detail"] == "The request body is not valid JSON (line 3, column 1)."


def test_a_json_body_that_is_not_an_object_is_a_type_error() -> None:
    response = registrar().post("/api/v1/persons", ["Ana"])

    assert_problem(response, 422, "validation_failed")
    assert errors_of(response) == {"body": ["field.invalid_type"]}


def test_possible_duplicate_gives_409_with_candidates_then_201_when_acknowledged() -> None:
    api = registrar()
    existing = PersonFactory.create(
        given_names="José Luis",
        paternal_surname="Nuñez",
        maternal_surname="Pena",
        sex="M",
        birth_date=datetime.date(1975, 3, 9),
    )
    before = counts()

    refused = api.post("/api/v1/persons", person_body())

    document = assert_problem(refused, 409, "registry.possible_duplicate")
    (candidate,) = document["candidates"]
    assert {key: candidate[key] for key in ("id", "name", "birth_date", "region")} == {
        "id": existing.pk,
        "name": existing.full_name,
        "birth_date": "1975-03-09",
        "region": "JC",
    }
    assert candidate["match_weight"] > 0
    assert 0 < candidate["match_probability"] <= 1
    assert candidate["identifier_conflict"] is False
    assert {"given", "surnames", "birth_date"} <= set(candidate["agreeing"])
    assert {item["comparison"] for item in candidate["breakdown"]} >= {"given", "surnames"}
    assert counts() == before

    accepted = api.post("/api/v1/persons", person_body(acknowledge_possible_duplicate=True))

    assert accepted.status_code == 201, accepted.content
    event = AuditEvent.objects.get(action="person.register")
    assert str(existing.pk) in event.note


def test_a_nickname_with_swapped_surnames_is_a_409_with_the_evidence() -> None:
    api = registrar()
    first = api.post(
        "/api/v1/persons",
        person_body(identifiers=[{"scheme": "CURP", "value": curp_of(person_body())}]),
    )
    assert first.status_code == 201, first.content
    before = counts()

    refused = api.post(
        "/api/v1/persons",
        person_body(given_names="Pepe Luis", paternal_surname="Pena", maternal_surname="Nunez"),
    )

    document = assert_problem(refused, 409, "registry.possible_duplicate")
    assert [c["id"] for c in document["candidates"]] == [first.json()["id"]]
    surnames = next(
        item for item in document["candidates"][0]["breakdown"] if item["comparison"] == "surnames"
    )
    assert surnames["level"] == "swapped"
    assert surnames["weight"] > 0
    assert counts() == before


def batch_row(**overrides: Any) -> dict[str, Any]:
    body = person_body(**overrides)
    body.pop("acknowledge_possible_duplicate", None)
    return body


def test_batch_registers_every_row() -> None:
    api = registrar()
    rows = [
        batch_row(),
        batch_row(
            given_names="Rosa",
            paternal_surname="Ortega",
            sex="F",
            contacts=[{"kind": "mobile", "value": "3312345678"}],
        ),
    ]

    response = api.post("/api/v1/persons/batch", {"rows": rows})

    assert response.status_code == 201, response.content
    persons = response.json()["persons"]
    assert [(item["row"], item["full_name"]) for item in persons] == [
        (1, "José Luis Núñez Peña"),
        (2, "Rosa Ortega Peña"),
    ]
    assert Person.objects.count() == 2
    assert Contact.objects.get().person_id == persons[1]["id"]
    registrations = AuditEvent.objects.filter(action="person.register")
    assert list(registrations.values_list("channel", flat=True)) == ["api", "api"]


def test_batch_with_a_possible_duplicate_is_a_409_until_acknowledged() -> None:
    api = registrar()
    existing = api.post("/api/v1/persons", person_body()).json()
    before = counts()
    rows = [
        batch_row(given_names="Rosa", paternal_surname="Ortega", sex="F"),
        batch_row(given_names="JOSE LUIS", maternal_surname=""),
        batch_row(given_names="Rosa", paternal_surname="Ortega", sex="F", birth_date="1975-09-03"),
    ]

    refused = api.post("/api/v1/persons/batch", {"rows": rows})

    document = assert_problem(refused, 409, "registry.batch_possible_duplicates")
    reports = {item["row"]: item for item in document["rows"]}
    assert set(reports) == {2, 3}
    assert [c["id"] for c in reports[2]["candidates"]] == [existing["id"]]
    assert [c["row"] for c in reports[3]["batch_candidates"]] == [1]
    assert reports[3]["errors"] == []
    assert counts() == before

    accepted = api.post("/api/v1/persons/batch", {"rows": rows, "acknowledge": [2, 3]})

    assert accepted.status_code == 201, accepted.content
    assert Person.objects.count() == 4


def test_batch_with_an_invalid_row_is_a_422_per_row() -> None:
    api = registrar()
    before = counts()

    refused = api.post(
        "/api/v1/persons/batch",
        {
            "rows": [
                batch_row(),
                batch_row(given_names="Rosa", sex="F", region="NL", birth_state="ZZ"),
            ]
        },
    )

    document = assert_problem(refused, 422, "registry.batch_invalid")
    (report,) = document["rows"]
    assert report["row"] == 2
    assert {item["field"] for item in report["errors"]} == {"region", "birth_state"}
    assert counts() == before


def test_batch_request_shape_is_checked() -> None:
    api = registrar()

    too_many = api.post("/api/v1/persons/batch", {"rows": [batch_row()] * 1001})
    empty = api.post("/api/v1/persons/batch", {"rows": []})
    unknown_row = api.post("/api/v1/persons/batch", {"rows": [batch_row()], "acknowledge": [5]})
    wrong_field = api.post("/api/v1/persons/batch", {"rows": [batch_row(shoe_size=42)]})

    assert errors_of(too_many) == {"rows": ["field.too_many_items"]}
    assert errors_of(empty) == {"rows": ["required"]}
    assert errors_of(unknown_row) == {"acknowledge": ["batch.unknown_rows"]}
    assert errors_of(wrong_field) == {"rows[0].shoe_size": ["field.unknown"]}
    assert not Person.objects.exists()


def test_batch_needs_the_register_permission() -> None:
    auditor = Api(staff(Role.AUDITOR), Role.AUDITOR)

    response = auditor.post("/api/v1/persons/batch", {"rows": [batch_row()]})

    assert_problem(response, 403, "permission_denied")
    assert not Person.objects.exists()


def test_register_outside_the_office_region_is_forbidden() -> None:
    api = registrar(region="JC")
    before = counts()

    response = api.post("/api/v1/persons", person_body(region="DF"))

    assert_problem(response, 403, "permission_denied")
    assert counts() == before


@pytest.mark.parametrize("role", [Role.ANALYST, Role.BENEFITS_OFFICER, Role.ADMINISTRATOR])
def test_roles_without_the_permission_cannot_register(role: str) -> None:
    api = Api(staff(role), role)

    response = api.post("/api/v1/persons", person_body())

    document = assert_problem(response, 403, "permission_denied")
    assert document["permission"] == "person.register"
    assert not Person.objects.exists()


def test_messages_follow_accept_language() -> None:
    body = person_body(given_names="", nickname="x", birth_state=7)
    spanish = registrar(language="es").post("/api/v1/persons", body)
    english = registrar(language="en").post("/api/v1/persons", body)

    def messages(response: Any) -> dict[str, str]:
        return {item["field"]: item["message"] for item in response.json()["errors"]}

    assert spanish["Content-Language"] == "es"
    assert english["Content-Language"] == "en"
    assert spanish.json()["title"] == "Algunos campos no son válidos."
    assert english.json()["title"] == "Some fields are not valid."
    assert messages(spanish) == {
        "nickname": "Campo desconocido.",
        "birth_state": "Se esperaba un texto.",
    }
    assert messages(english) == {"nickname": "Unknown field.", "birth_state": "Expected text."}
    # The codes are the same in every language.
    assert errors_of(spanish) == errors_of(english)


def test_domain_messages_are_translated_too() -> None:
    body = person_body(given_names="")
    spanish = registrar(language="es").post("/api/v1/persons", body)

    assert spanish.json()["errors"] == [
        {"field": "given_names", "code": "required", "message": "Este campo es obligatorio."}
    ]


# --- search -------------------------------------------------------------------------------------


def test_search_by_name_paginates_with_links() -> None:
    api = registrar()
    for given in ("Ana", "Beatriz", "Carmen"):
        PersonFactory.create(given_names=given, paternal_surname="García", maternal_surname="Ruiz")
    PersonFactory.create(given_names="Dolores", paternal_surname="García", region="DF")

    first = api.get("/api/v1/persons", q="garcia", page_size=2)

    assert first.status_code == 200, first.content
    data = first.json()
    assert [item["full_name"] for item in data["items"]] == [
        "Ana García Ruiz",
        "Beatriz García Ruiz",
    ]
    assert (data["page"], data["page_size"]) == (1, 2)
    assert (data["total"], data["total_is_exact"]) == (3, True)
    assert data["previous"] is None
    assert data["next"] == "http://testserver/api/v1/persons?q=garcia&page_size=2&page=2"

    second = api.get("/api/v1/persons", q="garcia", page_size=2, page=2).json()

    assert [item["full_name"] for item in second["items"]] == ["Carmen García Ruiz"]
    assert second["next"] is None
    assert second["previous"] == "http://testserver/api/v1/persons?q=garcia&page_size=2&page=1"
    # Searching is not reading a record: nothing is logged per hit.
    assert not AccessLogEntry.objects.exists()


def test_search_by_curp_finds_exactly_that_person() -> None:
    person, curp = person_with_curp()
    PersonFactory.create(given_names="Otra")

    data = registrar().get("/api/v1/persons", q=curp).json()

    assert [(item["id"], item["curp"]) for item in data["items"]] == [(person.pk, curp)]
    assert set(data["items"][0]) == {
        "id",
        "full_name",
        "birth_date",
        "sex",
        "region",
        "status",
        "curp",
        "is_deceased",
    }


def test_search_argument_errors() -> None:
    api = registrar()

    too_short = api.get("/api/v1/persons", q="a")
    bad_page = api.get("/api/v1/persons", q="garcia", page=0, page_size=500)
    not_a_number = api.get("/api/v1/persons", q="garcia", page="two")

    assert_problem(too_short, 422, "validation_failed")
    assert errors_of(too_short) == {"q": ["search.too_short"]}
    assert errors_of(bad_page) == {
        "page": ["field.out_of_range"],
        "page_size": ["field.out_of_range"],
    }
    assert errors_of(not_a_number) == {"page": ["field.invalid_type"]}


def test_analysts_cannot_search_persons() -> None:
    response = Api(staff(Role.ANALYST), Role.ANALYST).get("/api/v1/persons", q="garcia")

    assert_problem(response, 403, "permission_denied")


# --- the full record ----------------------------------------------------------------------------


def test_get_person_returns_the_whole_record_and_logs_the_read_with_its_purpose() -> None:
    api = registrar()
    person, curp = person_with_curp()
    child = PersonFactory.create(given_names="Luis", birth_date=datetime.date(2005, 1, 1))
    FamilyTie.objects.create(person=person, relative=child, relation="child")
    Address.objects.create(
        person=person,
        street="Juárez 1",
        municipality="Guadalajara",
        state="JC",
        postal_code="44100",
    )
    Contact.objects.create(person=person, kind="email", value="maria@example.mx")
    employment = EmploymentFactory.create(person=person, job_title="Cajera")
    EmploymentSalary.objects.create(
        employment=employment, effective_from=employment.start_date, daily_salary=Decimal("250.00")
    )
    EmploymentSalary.objects.create(
        employment=employment,
        effective_from=datetime.date(2010, 1, 1),
        daily_salary=Decimal("412.37"),
    )
    Enrolment.objects.create(
        person=person, programme=ProgrammeFactory.create(), start_date=datetime.date(2020, 1, 1)
    )

    response = api.get(f"/api/v1/persons/{person.pk}", purpose="benefit claim 42")

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["full_name"] == "María Guadalupe Hernández López"
    assert [i["value"] for i in data["identifiers"]] == [curp]
    assert data["addresses"][0]["street"] == "Juárez 1"
    assert data["contacts"][0]["value"] == "maria@example.mx"
    assert data["family_ties"] == [
        {
            "id": data["family_ties"][0]["id"],
            "relation": "child",
            "relative": {
                "id": child.pk,
                "full_name": child.full_name,
                "birth_date": "2005-01-01",
                "sex": "F",
            },
            "start_date": None,
            "end_date": None,
        }
    ]
    [job] = data["employments"]
    assert job["employer"]["id"] == employment.employer_id
    assert job["current_daily_salary"] == "412.37"  # money is a string, never a float
    assert [s["daily_salary"] for s in job["salaries"]] == ["412.37", "250.00"]
    assert data["enrolments"][0]["programme"] == "PENSION_BIENESTAR"
    assert data["enrolments"][0]["programme_name"] == "Well-being Pension for Older Adults"
    entry = AccessLogEntry.objects.get()
    assert (entry.person_id, entry.purpose, entry.channel, entry.actor) == (
        person.pk,
        "benefit claim 42",
        "api",
        api.user,
    )


def test_the_purpose_can_come_in_a_header() -> None:
    person = PersonFactory.create()

    registrar().get(f"/api/v1/persons/{person.pk}", headers={"X-Purpose": "rectificación"})

    assert AccessLogEntry.objects.get().purpose == "rectificación"


def test_a_person_of_another_region_is_not_found_and_the_attempt_is_not_logged() -> None:
    elsewhere = PersonFactory.create(region="DF")

    response = registrar(region="JC").get(f"/api/v1/persons/{elsewhere.pk}")
    missing = registrar(region="JC").get("/api/v1/persons/999999")

    assert_problem(response, 404, "not_found")
    assert_problem(missing, 404, "not_found")
    assert response.json()["detail"] == missing.json()["detail"]
    assert not AccessLogEntry.objects.exists()


def test_national_roles_see_every_region() -> None:
    elsewhere = PersonFactory.create(region="DF")

    response = Api(staff(Role.AUDITOR), Role.AUDITOR).get(f"/api/v1/persons/{elsewhere.pk}")

    assert response.status_code == 200


def test_ids_that_cannot_exist_are_refused_cleanly() -> None:
    api = registrar()

    too_big = api.get(f"/api/v1/persons/{2**64}")
    zero = api.get("/api/v1/persons/0")
    not_a_number = api.get("/api/v1/persons/abc")

    assert errors_of(too_big) == {"person_id": ["field.out_of_range"]}
    assert errors_of(zero) == {"person_id": ["field.out_of_range"]}
    assert_problem(not_a_number, 404, "route.not_found")


# --- lookup by identifier -------------------------------------------------------------------------


def test_lookup_by_identifier_returns_identity_and_logs_the_read(
    django_assert_num_queries: Any,
) -> None:
    api = registrar()
    person, curp = person_with_curp()
    Identifier.objects.create(person=person, scheme=NSS, value="01234567890", is_active=False)
    path = f"/api/v1/persons/by-identifier/CURP/{curp}"
    api.get(path)  # the token's first use records last_used_at; later calls do not

    # token (with the role check), person by identifier (with the region scope), access-log
    # insert, identifiers: nothing per request grows with the size of the registry or record.
    with django_assert_num_queries(4):
        response = api.get(path, purpose="partner check")

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["id"] == person.pk
    assert data["identifiers"] == [
        {
            "id": data["identifiers"][0]["id"],
            "scheme": "CURP",
            "value": curp,
            "issuing_country": "MX",
            "is_active": True,
            "created_at": data["identifiers"][0]["created_at"],
        }
    ]
    assert "family_ties" not in data
    assert AccessLogEntry.objects.filter(person_id=person.pk, purpose="partner check").count() == 1


def test_lookup_by_identifier_normalises_the_value() -> None:
    person, curp = person_with_curp()

    response = registrar().get(f"/api/v1/persons/by-identifier/curp/{curp.lower()}")

    assert response.json()["id"] == person.pk


def test_lookup_by_unknown_or_out_of_region_identifier_is_not_found() -> None:
    _elsewhere, curp = person_with_curp(region="DF")

    unknown = registrar().get("/api/v1/persons/by-identifier/NSS/01234567890")
    out_of_region = registrar(region="JC").get(f"/api/v1/persons/by-identifier/CURP/{curp}")

    assert_problem(unknown, 404, "not_found")
    assert_problem(out_of_region, 404, "not_found")
    assert not AccessLogEntry.objects.exists()


# --- partial update -------------------------------------------------------------------------------


def test_patch_changes_only_what_was_sent_and_bumps_the_version() -> None:
    api = registrar()
    person = PersonFactory.create(maternal_surname="López")

    response = api.patch(
        f"/api/v1/persons/{person.pk}",
        {"version": 1, "given_names": "María José", "maternal_surname": None},
    )

    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["given_names"], data["maternal_surname"], data["version"]) == ("María José", "", 2)
    assert data["paternal_surname"] == "Hernández"  # absent: untouched
    event = AuditEvent.objects.get(action="person.update")
    assert event.changes == {
        "given_names": ["María Guadalupe", "María José"],
        "maternal_surname": ["López", ""],
    }
    assert event.channel == "api"


def test_patch_can_clear_the_death_date_but_not_null_a_required_field() -> None:
    api = registrar()
    person = PersonFactory.create(death_date=datetime.date(2020, 1, 1))
    before = counts()

    refused = api.patch(
        f"/api/v1/persons/{person.pk}", {"version": 1, "given_names": None, "sex": None}
    )

    assert_problem(refused, 422, "validation_failed")
    assert errors_of(refused) == {
        "given_names": ["field.not_nullable"],
        "sex": ["field.not_nullable"],
    }
    assert counts() == before

    cleared = api.patch(f"/api/v1/persons/{person.pk}", {"version": 1, "death_date": None})

    assert cleared.json()["death_date"] is None


def test_patch_with_a_stale_version_is_a_409_and_changes_nothing() -> None:
    api = registrar()
    person = PersonFactory.create(version=3)
    before = counts()

    response = api.patch(f"/api/v1/persons/{person.pk}", {"version": 2, "given_names": "Otra"})

    document = assert_problem(response, 409, "registry.stale_version")
    assert document["current_version"] == 3
    person.refresh_from_db()
    assert person.given_names == "María Guadalupe"
    assert counts() == before


def test_patch_needs_a_version_and_refuses_unknown_or_non_person_fields() -> None:
    person = PersonFactory.create()

    response = registrar().patch(
        f"/api/v1/persons/{person.pk}", {"status": "inactive", "normalized_name": "X"}
    )

    assert errors_of(response) == {
        "version": ["required"],
        "status": ["field.unknown"],
        "normalized_name": ["field.unknown"],
    }


def test_patch_into_a_possible_duplicate_is_a_409() -> None:
    api = registrar()
    PersonFactory.create(given_names="Ana", birth_date=datetime.date(1990, 1, 1))
    person = PersonFactory.create(given_names="Anabel", birth_date=datetime.date(1990, 1, 1))

    refused = api.patch(f"/api/v1/persons/{person.pk}", {"version": 1, "given_names": "Ana"})
    accepted = api.patch(
        f"/api/v1/persons/{person.pk}",
        {"version": 1, "given_names": "Ana", "acknowledge_possible_duplicate": True},
    )

    assert_problem(refused, 409, "registry.possible_duplicate")
    assert accepted.status_code == 200


def test_patch_of_another_regions_person_is_not_found() -> None:
    person = PersonFactory.create(region="DF")

    response = registrar(region="JC").patch(
        f"/api/v1/persons/{person.pk}", {"version": 1, "given_names": "Ana"}
    )

    assert_problem(response, 404, "not_found")


def test_patch_as_a_read_only_role_is_forbidden() -> None:
    person = PersonFactory.create()
    api = Api(staff(Role.AUDITOR), Role.AUDITOR)

    response = api.patch(f"/api/v1/persons/{person.pk}", {"version": 1, "given_names": "Ana"})

    assert_problem(response, 403, "permission_denied")


# --- history --------------------------------------------------------------------------------------


def test_history_lists_the_persons_audit_events_newest_first() -> None:
    api = registrar()
    person = PersonFactory.create()
    api.patch(f"/api/v1/persons/{person.pk}", {"version": 1, "given_names": "Ana"})
    api.patch(f"/api/v1/persons/{person.pk}", {"version": 2, "given_names": "Ana María"})

    data = api.get(f"/api/v1/persons/{person.pk}/history", page_size=1).json()

    assert data["total"] == 2
    [latest] = data["items"]
    assert latest["action"] == "person.update"
    assert latest["changes"] == {"given_names": ["Ana", "Ana María"]}
    assert latest["actor"] == api.user.username
    assert latest["channel"] == "api"
    assert data["next"] is not None


def test_history_of_another_regions_person_is_not_found() -> None:
    person = PersonFactory.create(region="DF")

    assert_problem(registrar().get(f"/api/v1/persons/{person.pk}/history"), 404, "not_found")


# --- identifiers, addresses, contacts ----------------------------------------------------------


def test_add_identifier() -> None:
    api = registrar()
    person = PersonFactory.create()
    nss = valid_nss()

    response = api.post(f"/api/v1/persons/{person.pk}/identifiers", {"scheme": "NSS", "value": nss})

    assert response.status_code == 201, response.content
    assert response.json()["value"] == nss
    assert person.identifiers.get().value == nss
    assert AuditEvent.objects.filter(action="identifier.add", person_id=person.pk).exists()


def test_add_identifier_errors_name_the_fields_of_this_request() -> None:
    api = registrar()
    person = PersonFactory.create()
    before = counts()

    bad_check_digit = api.post(
        f"/api/v1/persons/{person.pk}/identifiers", {"scheme": "NSS", "value": "01234567891"}
    )
    unknown_scheme = api.post(
        f"/api/v1/persons/{person.pk}/identifiers", {"scheme": "IFE", "value": "X1"}
    )
    no_country = api.post(
        f"/api/v1/persons/{person.pk}/identifiers", {"scheme": "PASSPORT", "value": "G1234567"}
    )

    assert errors_of(bad_check_digit) == {"value": ["nss.invalid_check_digit"]}
    assert errors_of(unknown_scheme) == {"scheme": ["identifier.unknown_scheme"]}
    assert errors_of(no_country) == {"issuing_country": ["identifier.issuing_country_required"]}
    assert counts() == before


def test_an_identifier_already_registered_to_someone_else_is_refused() -> None:
    _other, curp = person_with_curp()
    person = PersonFactory.create(given_names="Otra")

    response = registrar().post(
        f"/api/v1/persons/{person.pk}/identifiers", {"scheme": "CURP", "value": curp}
    )

    assert "identifier.already_registered" in errors_of(response)["value"]


def test_add_address_ends_the_previous_one() -> None:
    api = registrar()
    person = PersonFactory.create()
    old = Address.objects.create(
        person=person,
        street="Juárez 1",
        municipality="Guadalajara",
        state="JC",
        postal_code="44100",
        valid_from=datetime.date(2010, 1, 1),
    )

    response = api.post(
        f"/api/v1/persons/{person.pk}/addresses",
        {
            "street": "Av. México 2",
            "municipality": "Zapopan",
            "state": "JC",
            "postal_code": "45000",
            "valid_from": "2024-06-01",
        },
    )

    assert response.status_code == 201, response.content
    assert response.json()["valid_from"] == "2024-06-01"
    old.refresh_from_db()
    assert old.valid_to == datetime.date(2024, 5, 31)


def test_add_address_errors() -> None:
    person = PersonFactory.create()

    response = registrar().post(
        f"/api/v1/persons/{person.pk}/addresses",
        {"street": "", "municipality": "M" * 121, "state": "XX", "postal_code": "4410"},
    )

    assert errors_of(response) == {"municipality": ["too_long"]}
    response = registrar().post(
        f"/api/v1/persons/{person.pk}/addresses",
        {"street": "", "municipality": "Zapopan", "state": "XX", "postal_code": "4410"},
    )
    assert errors_of(response) == {
        "street": ["required"],
        "state": ["invalid_choice"],
        "postal_code": ["postal_code.invalid"],
    }


def test_add_contact() -> None:
    api = registrar()
    person = PersonFactory.create()

    created = api.post(
        f"/api/v1/persons/{person.pk}/contacts",
        {"kind": "email", "value": "Ana@Example.MX", "is_preferred": True},
    )
    invalid = api.post(
        f"/api/v1/persons/{person.pk}/contacts", {"kind": "email", "value": "not-an-email"}
    )
    repeated = api.post(
        f"/api/v1/persons/{person.pk}/contacts", {"kind": "email", "value": "ana@example.mx"}
    )

    assert created.status_code == 201, created.content
    assert created.json()["value"] == "ana@example.mx"
    assert errors_of(invalid) == {"value": ["email.invalid"]}
    assert errors_of(repeated) == {"value": ["contact.exists"]}
    assert person.contacts.count() == 1


# --- family ties ----------------------------------------------------------------------------------


def test_record_a_parent_and_read_the_tie_from_both_sides() -> None:
    api = registrar()
    child = PersonFactory.create(given_names="Luis", birth_date=datetime.date(2005, 1, 1))
    mother = PersonFactory.create(given_names="Ana", birth_date=datetime.date(1980, 1, 1))

    response = api.post(
        "/api/v1/family-ties",
        {"person_id": child.pk, "relative_id": mother.pk, "relation": "parent"},
    )

    assert response.status_code == 201, response.content
    assert response.json() == {
        "id": response.json()["id"],
        "person_id": child.pk,
        "relative_id": mother.pk,
        "relation": "parent",
        "start_date": None,
        "end_date": None,
    }
    # Stored once, as the inverse child tie.
    tie = FamilyTie.objects.get()
    assert (tie.person_id, tie.relative_id, tie.relation) == (mother.pk, child.pk, "child")
    childs_view = api.get(f"/api/v1/persons/{child.pk}/family-ties", purpose="survivor claim")
    mothers_view = api.get(f"/api/v1/persons/{mother.pk}/family-ties")
    assert [(t["relation"], t["relative"]["id"]) for t in childs_view.json()] == [
        ("parent", mother.pk)
    ]
    assert [(t["relation"], t["relative"]["id"]) for t in mothers_view.json()] == [
        ("child", child.pk)
    ]
    assert AccessLogEntry.objects.filter(person_id=child.pk, purpose="survivor claim").exists()
    assert AuditEvent.objects.filter(action="family_tie.create").count() == 2  # one per person


def test_family_tie_errors() -> None:
    api = registrar()
    person = PersonFactory.create()
    elsewhere = PersonFactory.create(given_names="Otra", region="DF")
    before = counts()

    to_self = api.post(
        "/api/v1/family-ties",
        {"person_id": person.pk, "relative_id": person.pk, "relation": "spouse"},
    )
    bad_relation = api.post(
        "/api/v1/family-ties",
        {"person_id": person.pk, "relative_id": elsewhere.pk, "relation": "cousin"},
    )
    out_of_region = api.post(
        "/api/v1/family-ties",
        {"person_id": person.pk, "relative_id": elsewhere.pk, "relation": "spouse"},
    )
    string_id = api.post(
        "/api/v1/family-ties",
        {"person_id": str(person.pk), "relative_id": elsewhere.pk, "relation": "spouse"},
    )

    assert errors_of(to_self) == {"relative_id": ["tie.self"]}
    assert errors_of(bad_relation) == {"relation": ["invalid_choice"]}
    assert_problem(out_of_region, 404, "not_found")
    assert errors_of(string_id) == {"person_id": ["field.invalid_type"]}
    assert counts() == before


def test_end_a_family_tie() -> None:
    api = registrar()
    one = PersonFactory.create(given_names="Ana", birth_date=datetime.date(1980, 1, 1))
    other = PersonFactory.create(given_names="Pedro", sex="M", birth_date=datetime.date(1979, 1, 1))
    tie = FamilyTie.objects.create(
        person=one, relative=other, relation="spouse", start_date=datetime.date(2000, 5, 1)
    )

    before_start = api.post(f"/api/v1/family-ties/{tie.pk}/end", {"end_date": "1999-01-01"})
    ended = api.post(f"/api/v1/family-ties/{tie.pk}/end", {"end_date": "2015-02-01"})
    again = api.post(f"/api/v1/family-ties/{tie.pk}/end", {"end_date": "2016-02-01"})
    unknown = api.post("/api/v1/family-ties/999999/end", {"end_date": "2016-02-01"})

    assert errors_of(before_start) == {"end_date": ["date.end_before_start"]}
    assert ended.status_code == 200, ended.content
    assert ended.json()["end_date"] == "2015-02-01"
    assert_problem(again, 409, "tie.already_ended")
    assert_problem(unknown, 404, "not_found")


# --- employers ------------------------------------------------------------------------------------


def test_register_an_employer() -> None:
    api = registrar()

    response = api.post("/api/v1/employers", employer_body())

    assert response.status_code == 201, response.content
    employer = Employer.objects.get()
    assert response["Location"] == f"/api/v1/employers/{employer.pk}"
    assert response.json()["rfc"] == employer.rfc
    assert response.json()["status"] == "active"
    assert AuditEvent.objects.get(action="employer.register").channel == "api"


def test_register_employer_errors_and_uniqueness() -> None:
    api = registrar()
    taken = EmployerFactory.create()
    before = counts()

    invalid = api.post(
        "/api/v1/employers", employer_body(rfc="XXX", registration_number="12", sector="99")
    )
    duplicate = api.post("/api/v1/employers", employer_body(rfc=taken.rfc))

    assert errors_of(invalid) == {
        "rfc": ["rfc.invalid_length"],
        "registration_number": ["employer_registration.invalid_length"],
        "sector": ["invalid_choice"],
    }
    assert errors_of(duplicate) == {"rfc": ["employer.rfc_taken"]}
    assert counts() == before


def test_list_employers_filters_and_validates_filters() -> None:
    api = registrar()
    EmployerFactory.create(legal_name="Panadería Jalisco S.A.", state="JC")
    EmployerFactory.create(legal_name="Panadería Capital S.A.", state="DF", status="closed")

    by_name = api.get("/api/v1/employers", q="panaderia").json()
    by_state = api.get("/api/v1/employers", q="panaderia", state="DF").json()
    by_status = api.get("/api/v1/employers", status="closed").json()
    invalid = api.get("/api/v1/employers", status="bankrupt", state="ZZ")

    assert by_name["total"] == 2
    assert [e["legal_name"] for e in by_state["items"]] == ["Panadería Capital S.A."]
    assert [e["status"] for e in by_status["items"]] == ["closed"]
    assert errors_of(invalid) == {"status": ["invalid_choice"], "state": ["invalid_choice"]}


def test_get_employer_with_worker_counts() -> None:
    employer = EmployerFactory.create()
    EmploymentFactory.create(employer=employer)
    EmploymentFactory.create(
        employer=employer,
        person=PersonFactory.create(given_names="Otra"),
        end_date=datetime.date(2010, 1, 1),
    )

    data = registrar().get(f"/api/v1/employers/{employer.pk}").json()
    missing = registrar().get("/api/v1/employers/999999")

    assert (data["active_workers"], data["total_employments"]) == (1, 2)
    assert_problem(missing, 404, "not_found")


def test_patch_employer() -> None:
    api = registrar()
    employer = EmployerFactory.create()

    changed = api.patch(
        f"/api/v1/employers/{employer.pk}",
        {"version": 1, "status": "suspended", "trade_name": None},
    )
    stale = api.patch(f"/api/v1/employers/{employer.pk}", {"version": 1, "status": "closed"})
    null_name = api.patch(f"/api/v1/employers/{employer.pk}", {"version": 2, "legal_name": None})

    assert changed.status_code == 200, changed.content
    assert (changed.json()["status"], changed.json()["version"]) == ("suspended", 2)
    assert_problem(stale, 409, "registry.stale_version")
    assert errors_of(null_name) == {"legal_name": ["field.not_nullable"]}
    employer.refresh_from_db()
    assert employer.status == "suspended"


def test_employer_workers_are_limited_to_the_callers_region() -> None:
    employer = EmployerFactory.create()
    local = EmploymentFactory.create(
        employer=employer, person=PersonFactory.create(given_names="Ana")
    )
    EmploymentFactory.create(
        employer=employer, person=PersonFactory.create(given_names="Bea", region="DF")
    )

    data = registrar(region="JC").get(f"/api/v1/employers/{employer.pk}/workers").json()
    analyst = (
        Api(staff(Role.ANALYST), Role.ANALYST)
        .get(f"/api/v1/employers/{employer.pk}/workers")
        .json()
    )
    unknown = registrar().get("/api/v1/employers/999999/workers")

    assert [(w["employment_id"], w["person"]["full_name"]) for w in data["items"]] == [
        (local.pk, "Ana Hernández López")
    ]
    assert analyst["items"] == []  # analysts see employers, never persons
    assert_problem(unknown, 404, "not_found")


def test_analysts_may_read_but_not_register_employers() -> None:
    api = Api(staff(Role.ANALYST), Role.ANALYST)

    assert api.get("/api/v1/employers").status_code == 200
    assert_problem(api.post("/api/v1/employers", employer_body()), 403, "permission_denied")


# --- employments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"), [("350.50", "350.50"), (1234.56, "1234.56"), (400, "400.00")]
)
def test_record_employment_with_an_exact_daily_salary(sent: Any, stored: str) -> None:
    api = registrar()
    person = PersonFactory.create()
    employer = EmployerFactory.create()

    response = api.post(
        "/api/v1/employments",
        {
            "person_id": person.pk,
            "employer_id": employer.pk,
            "start_date": "2015-03-01",
            "job_title": "Panadero",
            "daily_salary": sent,
        },
    )

    assert response.status_code == 201, response.content
    data = response.json()
    assert data["current_daily_salary"] == stored
    assert data["salaries"] == [
        {"employment_id": data["id"], "effective_from": "2015-03-01", "daily_salary": stored}
    ]
    assert EmploymentSalary.objects.get().daily_salary == Decimal(stored)
    _before, audited = AuditEvent.objects.get(action="employment.create").changes["daily_salary"]
    assert Decimal(audited) == Decimal(stored)


def test_daily_salary_must_be_a_decimal_with_two_places() -> None:
    api = registrar()
    person = PersonFactory.create()
    employer = EmployerFactory.create()
    base = {"person_id": person.pk, "employer_id": employer.pk, "start_date": "2015-03-01"}
    before = counts()

    results = {
        repr(value): errors_of(api.post("/api/v1/employments", {**base, "daily_salary": value}))
        for value in ("350.123", "abc", True, "NaN", "1e20", -5)
    }

    assert results == {
        "'350.123'": {"daily_salary": ["field.invalid_decimal"]},
        "'abc'": {"daily_salary": ["field.invalid_decimal"]},
        "True": {"daily_salary": ["field.invalid_decimal"]},
        "'NaN'": {"daily_salary": ["field.invalid_decimal"]},
        "'1e20'": {"daily_salary": ["field.invalid_decimal"]},
        "-5": {"daily_salary": ["salary.out_of_range"]},
    }
    assert counts() == before


def test_employment_domain_errors() -> None:
    api = registrar()
    person = PersonFactory.create(birth_date=datetime.date(2000, 1, 1))

    response = api.post(
        "/api/v1/employments",
        {
            "person_id": person.pk,
            "employer_id": 999999,
            "start_date": "2010-01-01",
            "end_date": "2009-01-01",
        },
    )

    assert errors_of(response) == {
        "employer_id": ["employer.not_found"],
        "start_date": ["employment.under_age"],
        "end_date": ["date.end_before_start"],
    }


def test_end_employment_and_change_salary() -> None:
    api = registrar()
    employment = EmploymentFactory.create(start_date=datetime.date(2015, 1, 1))
    EmploymentSalary.objects.create(
        employment=employment, effective_from=employment.start_date, daily_salary=Decimal("300.00")
    )

    raised = api.post(
        f"/api/v1/employments/{employment.pk}/salaries",
        {"effective_from": "2018-01-01", "daily_salary": "345.67"},
    )
    outside = api.post(
        f"/api/v1/employments/{employment.pk}/salaries",
        {"effective_from": "2014-01-01", "daily_salary": "345.67"},
    )
    ended = api.post(f"/api/v1/employments/{employment.pk}/end", {"end_date": "2020-06-30"})
    again = api.post(f"/api/v1/employments/{employment.pk}/end", {"end_date": "2020-07-30"})
    unknown = api.post("/api/v1/employments/999999/end", {"end_date": "2020-07-30"})

    assert raised.status_code == 201, raised.content
    assert raised.json() == {
        "employment_id": employment.pk,
        "effective_from": "2018-01-01",
        "daily_salary": "345.67",
    }
    assert errors_of(outside) == {"effective_from": ["salary.outside_period"]}
    assert ended.status_code == 200, ended.content
    assert ended.json()["end_date"] == "2020-06-30"
    assert ended.json()["current_daily_salary"] == "345.67"
    assert_problem(again, 409, "employment.already_ended")
    assert_problem(unknown, 404, "not_found")
    actions = set(
        AuditEvent.objects.filter(person_id=employment.person_id).values_list("action", flat=True)
    )
    assert actions == {"employment.salary_change", "employment.end"}


def test_list_employments_is_a_logged_read() -> None:
    api = registrar()
    employment = EmploymentFactory.create()

    response = api.get(
        f"/api/v1/persons/{employment.person_id}/employments", purpose="pension estimate"
    )

    assert [e["id"] for e in response.json()] == [employment.pk]
    entry = AccessLogEntry.objects.get()
    assert (entry.person_id, entry.action, entry.purpose) == (
        employment.person_id,
        "employments",
        "pension estimate",
    )


def test_employments_of_another_regions_person_are_not_found() -> None:
    employment = EmploymentFactory.create(person=PersonFactory.create(region="DF"))

    response = registrar(region="JC").get(f"/api/v1/persons/{employment.person_id}/employments")

    assert_problem(response, 404, "not_found")
    assert not AccessLogEntry.objects.exists()
