"""``POST /api/v1/linkage/candidates``: a would-be registration checked without saving, through
real URLs, real tokens and the real database."""

from __future__ import annotations

from typing import Any

import pytest

from pilar.core.models import AuditEvent
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.registry.models import Identifier, Person
from pilar.registry.tests.test_api import Api, assert_problem, curp_of, errors_of, person_body

pytestmark = pytest.mark.django_db

CANDIDATES = "/api/v1/linkage/candidates"


def registrar() -> Api:
    return Api(staff(Role.REGISTRAR, region="JC"), Role.REGISTRAR)


def registered(api: Api, **overrides: Any) -> dict[str, Any]:
    body = person_body(**overrides)
    body["identifiers"] = [{"scheme": "CURP", "value": curp_of(body)}]
    response = api.post("/api/v1/persons", body)
    assert response.status_code == 201, response.content
    document: dict[str, Any] = response.json()
    return document


def test_candidates_of_a_would_be_registration_and_nothing_is_saved() -> None:
    api = registrar()
    existing = registered(api)
    before = (Person.objects.count(), Identifier.objects.count(), AuditEvent.objects.count())

    response = api.post(
        CANDIDATES,
        person_body(given_names="Pepe Luis", paternal_surname="Pena", maternal_surname="Nunez"),
    )

    assert response.status_code == 200, response.content
    document = response.json()
    assert document["model"] == "default"
    (candidate,) = document["candidates"]
    assert candidate["id"] == existing["id"]
    assert candidate["name"] == "José Luis Núñez Peña"
    assert candidate["match_weight"] >= document["review_weight"]
    assert "surnames" in candidate["agreeing"]
    assert {item["comparison"] for item in candidate["breakdown"]} >= {"given", "birth_date"}
    assert (Person.objects.count(), Identifier.objects.count(), AuditEvent.objects.count()) == (
        before
    )


def test_no_candidates_for_someone_new() -> None:
    api = registrar()
    registered(api)

    response = api.post(
        CANDIDATES, person_body(given_names="Rosa", paternal_surname="Ortega", sex="F")
    )

    assert response.status_code == 200
    assert response.json()["candidates"] == []


def test_a_registered_identifier_is_a_candidate_not_an_error() -> None:
    api = registrar()
    existing = registered(api)
    curp = Identifier.objects.get(person_id=existing["id"]).value

    response = api.post(
        CANDIDATES,
        person_body(
            given_names="Lupe",
            paternal_surname="Ortega",
            identifiers=[{"scheme": "CURP", "value": curp}],
        ),
    )

    assert response.status_code == 200, response.content
    (candidate,) = response.json()["candidates"]
    assert candidate["id"] == existing["id"]
    assert "curp" in candidate["agreeing"]


def test_invalid_fields_are_reported_as_registration_would() -> None:
    response = registrar().post(
        CANDIDATES,
        person_body(
            birth_date="2999-01-01", sex="Q", identifiers=[{"scheme": "CURP", "value": "X"}]
        ),
    )

    assert_problem(response, 422, "validation_failed")
    assert set(errors_of(response)) == {"birth_date", "sex", "identifiers[0]"}


def test_unknown_fields_and_a_missing_birth_date_are_refused() -> None:
    body = person_body(shoe_size=42)
    del body["birth_date"]

    response = registrar().post(CANDIDATES, body)

    assert errors_of(response) == {"shoe_size": ["field.unknown"], "birth_date": ["required"]}


def test_a_role_that_may_not_register_nor_view_linkage_is_refused() -> None:
    api = Api(staff(Role.BENEFITS_OFFICER), Role.BENEFITS_OFFICER)

    response = api.post(CANDIDATES, person_body())

    assert_problem(response, 403, "permission_denied")


def test_a_data_steward_may_check() -> None:
    api = Api(staff(Role.DATA_STEWARD, region="DF"), Role.DATA_STEWARD)

    response = api.post(CANDIDATES, person_body())

    assert response.status_code == 200, response.content
