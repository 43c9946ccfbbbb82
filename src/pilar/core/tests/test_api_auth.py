"""The API's own machinery: token authentication, problem documents for every kind of failure
(including routes and methods that do not exist, oversized bodies and crashes), /me, the audit
read endpoints, and the OpenAPI document and docs page."""

from __future__ import annotations

import datetime
import json
import logging
import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from pilar.core.actor import Actor
from pilar.core.auth import token_issue, token_revoke
from pilar.core.models import ApiToken, AuditEvent, RoleAssignment, User
from pilar.core.roles import ROLE_PERMISSIONS, Role
from pilar.core.tests.factories import TEST_PASSWORD, staff
from pilar.registry import selectors as registry_selectors
from pilar.registry.tests.factories import PersonFactory

pytestmark = pytest.mark.django_db

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PROBLEM = "application/problem+json"
SYSTEM = Actor.system("test", roles=frozenset({Role.ADMINISTRATOR}))


def issue(user: User, role: str, days: int | None = None) -> tuple[ApiToken, str]:
    return token_issue(actor=SYSTEM, user=user, role=role, name="tests", days=days)


def call(
    path: str,
    *,
    token: str | None = None,
    authorization: str | None = None,
    language: str = "en",
    method: str = "get",
    **kwargs: Any,
) -> Any:
    headers = {"Accept-Language": language}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if authorization is not None:
        headers["Authorization"] = authorization
    return getattr(Client(), method)(path, headers=headers, **kwargs)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    document: dict[str, Any] = response.json()
    assert (document["status"], document["code"]) == (status, code)
    assert document["type"] == f"https://pilar.example/problems/{code}"
    assert document["title"]
    assert document["detail"]
    assert document["instance"] == response.wsgi_request.path
    assert response["Cache-Control"] == "no-store"
    return document


# --- authentication -------------------------------------------------------------------------------


def test_no_token_is_authentication_required_with_a_bearer_challenge() -> None:
    response = call("/api/v1/me")

    assert_problem(response, 401, "authentication_required")
    assert response["WWW-Authenticate"] == 'Bearer realm="pilar"'


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer nonsense",
        "Bearer pilar_000000000000_secret",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
        "Bearer pilar_" + "x" * 500,
    ],
)
def test_a_header_that_is_not_a_usable_token_is_token_invalid(authorization: str) -> None:
    response = call("/api/v1/me", authorization=authorization)

    assert_problem(response, 401, "token_invalid")
    assert response["WWW-Authenticate"] == 'Bearer realm="pilar", error="invalid_token"'


def test_a_known_prefix_with_the_wrong_secret_is_refused() -> None:
    token, raw = issue(staff(Role.REGISTRAR), Role.REGISTRAR)

    response = call("/api/v1/me", token=f"pilar_{token.prefix}_not-the-secret")

    assert_problem(response, 401, "token_invalid")
    assert call("/api/v1/me", token=raw).status_code == 200


def test_expired_revoked_and_deactivated_tokens_are_refused() -> None:
    user = staff(Role.REGISTRAR)
    expired, expired_raw = issue(user, Role.REGISTRAR)
    ApiToken.objects.filter(pk=expired.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    revoked, revoked_raw = issue(user, Role.REGISTRAR)
    token_revoke(actor=SYSTEM, token=revoked)
    other = staff(Role.REGISTRAR)
    _token, inactive_raw = issue(other, Role.REGISTRAR)
    User.objects.filter(pk=other.pk).update(is_active=False)

    for raw in (expired_raw, revoked_raw, inactive_raw):
        assert_problem(call("/api/v1/me", token=raw), 401, "token_invalid")


def test_a_token_whose_role_was_withdrawn_is_refused_and_says_why() -> None:
    user = staff(Role.REGISTRAR, Role.AUDITOR)
    _token, raw = issue(user, Role.REGISTRAR)
    RoleAssignment.objects.filter(user=user, role=Role.REGISTRAR).delete()

    document = assert_problem(call("/api/v1/me", token=raw), 401, "token_invalid")

    assert document["detail"] == "The token's owner no longer holds the token's role."


def test_authentication_messages_are_translated() -> None:
    spanish = call("/api/v1/me", language="es").json()
    english = call("/api/v1/me", language="en").json()

    assert spanish["title"] == "Se requiere autenticación."
    assert english["title"] == "Authentication is required."
    assert spanish["code"] == english["code"] == "authentication_required"


def test_a_staff_session_does_not_authenticate_the_api() -> None:
    user = staff(Role.REGISTRAR)
    client = Client()
    assert client.login(username=user.username, password=TEST_PASSWORD)

    response = client.get("/api/v1/me")

    assert_problem(response, 401, "authentication_required")


def test_a_token_acts_with_its_one_role_only() -> None:
    user = staff(Role.REGISTRAR, Role.AUDITOR)
    _token, raw = issue(user, Role.AUDITOR)

    person = PersonFactory.create()

    me = call("/api/v1/me", token=raw).json()
    patch = call(
        f"/api/v1/persons/{person.pk}",
        token=raw,
        method="patch",
        data=json.dumps({"version": 1, "given_names": "Ana"}),
        content_type="application/json",
    )

    assert me["role"] == "auditor"
    assert me["permissions"] == sorted(ROLE_PERMISSIONS[Role.AUDITOR])
    # The user may edit persons in the web UI as a registrar, but not with an auditor token.
    assert_problem(patch, 403, "permission_denied")


def test_token_use_is_recorded() -> None:
    token, raw = issue(staff(Role.REGISTRAR), Role.REGISTRAR)
    assert token.last_used_at is None

    call("/api/v1/me", token=raw)

    token.refresh_from_db()
    assert token.last_used_at is not None


# --- /me ------------------------------------------------------------------------------------------


def test_me_describes_the_user_the_token_and_its_permissions() -> None:
    user = staff(Role.REGISTRAR, region="JC", username="ana.perez")
    token, raw = issue(user, Role.REGISTRAR, days=30)

    response = call("/api/v1/me", token=raw)

    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    data = response.json()
    assert data["username"] == "ana.perez"
    assert data["display_name"] == "Ana Pérez"
    assert data["role"] == "registrar"
    assert data["permissions"] == sorted(ROLE_PERMISSIONS[Role.REGISTRAR])
    assert (data["region"], data["national_scope"]) == ("JC", False)
    assert data["office"] == {"code": "JC-01", "name": "Oficina JC", "region": "JC"}
    assert data["token"]["prefix"] == token.prefix
    expires = datetime.datetime.fromisoformat(data["token"]["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - token.expires_at) < datetime.timedelta(seconds=1)
    assert "secret_hash" not in json.dumps(data)


# --- audit trail and access log -------------------------------------------------------------------


def test_auditors_read_audit_events_with_filters() -> None:
    auditor = staff(Role.AUDITOR)
    _token, raw = issue(auditor, Role.AUDITOR)
    registrar_user = staff(Role.REGISTRAR, username="clerk")
    _other, registrar_raw = issue(registrar_user, Role.REGISTRAR)
    person = PersonFactory.create()
    call(
        f"/api/v1/persons/{person.pk}",
        token=registrar_raw,
        method="patch",
        data=json.dumps({"version": 1, "given_names": "Ana"}),
        content_type="application/json",
    )

    everything = call("/api/v1/audit/events", token=raw).json()
    by_person = call(
        "/api/v1/audit/events", token=raw, data={"person_id": person.pk, "channel": "api"}
    ).json()
    by_action = call("/api/v1/audit/events", token=raw, data={"action": "token."}).json()

    assert everything["total"] == AuditEvent.objects.count()
    [event] = by_person["items"]
    assert (event["action"], event["actor"], event["channel"]) == ("person.update", "clerk", "api")
    assert event["changes"] == {"given_names": ["María Guadalupe", "Ana"]}
    assert {item["action"] for item in by_action["items"]} == {"token.issue"}


def test_audit_filters_are_validated() -> None:
    _token, raw = issue(staff(Role.AUDITOR), Role.AUDITOR)

    bad_channel = call("/api/v1/audit/events", token=raw, data={"channel": "fax"})
    backwards = call(
        "/api/v1/audit/events", token=raw, data={"date_from": "2024-02-01", "date_to": "2024-01-01"}
    )
    not_a_date = call("/api/v1/audit/access-log", token=raw, data={"date_from": "yesterday"})

    assert_problem(bad_channel, 422, "validation_failed")
    assert bad_channel.json()["errors"][0]["field"] == "channel"
    assert [e["code"] for e in backwards.json()["errors"]] == ["date.end_before_start"]
    assert not_a_date.json()["errors"] == [
        {
            "field": "date_from",
            "code": "field.invalid_date",
            "message": "Expected a date written as YYYY-MM-DD.",
        }
    ]


def test_access_log_shows_reads_and_is_closed_to_registrars() -> None:
    steward = staff(Role.DATA_STEWARD)
    _token, raw = issue(steward, Role.DATA_STEWARD)
    person = PersonFactory.create()
    call(f"/api/v1/persons/{person.pk}", token=raw, data={"purpose": "quality review"})

    entries = call("/api/v1/audit/access-log", token=raw, data={"person_id": person.pk}).json()
    _other, registrar_raw = issue(staff(Role.REGISTRAR), Role.REGISTRAR)
    refused_log = call("/api/v1/audit/access-log", token=registrar_raw)
    refused_events = call("/api/v1/audit/events", token=raw)

    [entry] = entries["items"]
    assert (entry["person_id"], entry["purpose"], entry["channel"]) == (
        person.pk,
        "quality review",
        "api",
    )
    assert_problem(refused_log, 403, "permission_denied")
    assert_problem(refused_events, 403, "permission_denied")


# --- problems outside the operations --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/", "/api/v2/persons"])
def test_unknown_routes_under_the_api_are_problem_404s(path: str) -> None:
    _token, raw = issue(staff(Role.REGISTRAR), Role.REGISTRAR)

    assert_problem(call(path, token=raw), 404, "route.not_found")
    assert_problem(call(path), 404, "route.not_found")


def test_a_wrong_method_is_a_problem_405_with_allow() -> None:
    _token, raw = issue(staff(Role.REGISTRAR), Role.REGISTRAR)

    response = call("/api/v1/persons", token=raw, method="delete")

    document = assert_problem(response, 405, "method_not_allowed")
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert set(document["allowed"]) == {"GET", "POST"}


def test_an_oversized_body_is_a_413_problem() -> None:
    _token, raw = issue(staff(Role.REGISTRAR), Role.REGISTRAR)
    body = json.dumps({"given_names": "x" * (51 * 1024 * 1024)})

    response = call(
        "/api/v1/persons", token=raw, method="post", data=body, content_type="application/json"
    )

    assert_problem(response, 413, "request.too_large")


def test_an_unexpected_error_is_logged_and_reported_without_internals(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _token, raw = issue(staff(Role.REGISTRAR), Role.REGISTRAR)

    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("connection string postgres://secret@db")

    monkeypatch.setattr(registry_selectors, "person_search", broken)
    with caplog.at_level(logging.ERROR, logger="pilar.api"):
        response = call("/api/v1/persons", token=raw, data={"q": "garcia"}, language="es")

    document = assert_problem(response, 500, "internal_error")
    assert "secret" not in response.content.decode()
    assert document["title"].startswith("Ocurrió un error inesperado")
    assert "connection string postgres://secret@db" in caplog.text


# --- OpenAPI and docs -----------------------------------------------------------------------------


def test_the_openapi_document_is_served_and_complete() -> None:
    response = call("/api/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Pilar API"
    assert schema["info"]["version"] == "1"
    assert schema["components"]["securitySchemes"]["ApiTokenAuth"]["scheme"] == "bearer"
    expected = {
        ("post", "/api/v1/declarations"),
        ("get", "/api/v1/declarations"),
        ("post", "/api/v1/declarations/json"),
        ("get", "/api/v1/declarations/{declaration_id}"),
        ("get", "/api/v1/declarations/{declaration_id}/issues"),
        ("get", "/api/v1/declarations/{declaration_id}/lines"),
        ("post", "/api/v1/declarations/{declaration_id}/confirm"),
        ("post", "/api/v1/declarations/{declaration_id}/withdraw"),
        ("get", "/api/v1/persons/{person_id}/work-history"),
        ("get", "/api/v1/employers/{employer_id}/account"),
        ("post", "/api/v1/employers/{employer_id}/payments"),
        ("post", "/api/v1/payments/bank-imports"),
        ("get", "/api/v1/non-filers"),
        ("get", "/api/v1/claim-kinds"),
        ("get", "/api/v1/claims"),
        ("post", "/api/v1/claims"),
        ("post", "/api/v1/claims/preview"),
        ("get", "/api/v1/claims/{claim_id}"),
        ("post", "/api/v1/claims/{claim_id}/adjudicate"),
        ("post", "/api/v1/claims/{claim_id}/withdraw"),
        ("get", "/api/v1/decisions/{decision_id}"),
        ("post", "/api/v1/decisions/{decision_id}/approve"),
        ("post", "/api/v1/decisions/{decision_id}/return"),
        ("get", "/api/v1/decisions/{decision_id}/letter.pdf"),
        ("get", "/api/v1/awards"),
        ("get", "/api/v1/awards/{award_id}"),
        ("get", "/api/v1/me"),
        ("get", "/api/v1/audit/events"),
        ("get", "/api/v1/audit/access-log"),
        ("post", "/api/v1/persons"),
        ("get", "/api/v1/persons"),
        ("get", "/api/v1/persons/{person_id}"),
        ("patch", "/api/v1/persons/{person_id}"),
        ("get", "/api/v1/persons/by-identifier/{scheme}/{value}"),
        ("get", "/api/v1/persons/{person_id}/history"),
        ("post", "/api/v1/persons/{person_id}/identifiers"),
        ("post", "/api/v1/persons/{person_id}/addresses"),
        ("post", "/api/v1/persons/{person_id}/contacts"),
        ("get", "/api/v1/persons/{person_id}/family-ties"),
        ("post", "/api/v1/family-ties"),
        ("post", "/api/v1/family-ties/{tie_id}/end"),
        ("get", "/api/v1/employers"),
        ("post", "/api/v1/employers"),
        ("get", "/api/v1/employers/{employer_id}"),
        ("patch", "/api/v1/employers/{employer_id}"),
        ("get", "/api/v1/employers/{employer_id}/workers"),
        ("get", "/api/v1/persons/{person_id}/employments"),
        ("post", "/api/v1/employments"),
        ("post", "/api/v1/employments/{employment_id}/end"),
        ("post", "/api/v1/employments/{employment_id}/salaries"),
        ("post", "/api/v1/persons/batch"),
        ("post", "/api/v1/linkage/candidates"),
        ("get", "/api/v1/linkage/pairs"),
        ("get", "/api/v1/linkage/pairs/{pair_id}"),
        ("post", "/api/v1/linkage/pairs/{pair_id}/decision"),
        ("post", "/api/v1/linkage/merges"),
        ("get", "/api/v1/linkage/merges/{merge_id}"),
        ("post", "/api/v1/linkage/merges/{merge_id}/unmerge"),
        ("get", "/api/v1/linkage/runs"),
        ("post", "/api/v1/linkage/runs/dedupe"),
        ("post", "/api/v1/linkage/runs/link"),
        ("post", "/api/v1/linkage/runs/train"),
        ("get", "/api/v1/linkage/runs/{run_id}"),
        ("get", "/api/v1/linkage/runs/{run_id}/results"),
        ("get", "/api/v1/linkage/models"),
        ("get", "/api/v1/linkage/models/{model_id}"),
        ("patch", "/api/v1/linkage/models/{model_id}"),
        ("post", "/api/v1/linkage/models/{model_id}/activate"),
        ("get", "/api/v1/linkage/models/{model_id}/export"),
        ("post", "/api/v1/linkage/models/import"),
        ("post", "/api/v1/linkage/cross-programme"),
        ("post", "/api/v1/linkage/cross-programme/lists"),
        ("get", "/api/v1/linkage/cross-programme/{run_id}"),
        ("get", "/api/v1/exchange/messages"),
        ("get", "/api/v1/exchange/messages/{message_pk}"),
        ("post", "/api/v1/exchange/messages/{message_pk}/retry"),
        ("get", "/api/v1/exchange/agreements"),
        ("post", "/api/v1/exchange/agreements"),
        ("patch", "/api/v1/exchange/agreements/{agreement_id}"),
        ("get", "/api/v1/exchange/trust-list"),
        ("get", "/api/v1/exchange/log/checkpoint"),
        ("get", "/api/v1/persons/{person_id}/institutions"),
        ("post", "/api/v1/persons/{person_id}/periods/fetch"),
        ("get", "/api/v1/persons/{person_id}/foreign-periods"),
    }
    found = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert found == expected
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"401", "403"} <= set(responses), (method, path)
            if method in ("post", "patch"):
                assert {"400", "404", "409", "422"} <= set(responses), (method, path)
            for status, documented in responses.items():
                media = set(documented["content"])
                # Documents (the decision letter, linkage result files) are the successes that
                # are not JSON.
                if path.endswith(".pdf"):
                    success = {"application/pdf"}
                elif path.endswith("/results"):
                    success = {"text/csv", XLSX}
                else:
                    success = {"application/json"}
                assert media == ({PROBLEM} if int(status) >= 400 else success)
            assert operation["security"] == [{"ApiTokenAuth": []}]
    problem = schema["components"]["schemas"]["ProblemOut"]
    assert {"type", "title", "status", "detail", "code", "errors", "candidates"} <= set(
        problem["properties"]
    )


def test_every_documented_operation_refuses_an_anonymous_caller() -> None:
    schema = call("/api/openapi.json").json()
    before = AuditEvent.objects.count()

    for template, item in schema["paths"].items():
        path = re.sub(r"{[a-z_]+}", "1", template)
        for method in item:
            body = {} if method == "get" else {"data": "{}", "content_type": "application/json"}
            response = call(path, method=method, **body)
            assert response.status_code == 401, (method, path)
            assert response.json()["code"] == "authentication_required", (method, path)
    assert AuditEvent.objects.count() == before


def test_the_docs_page_works_offline_from_bundled_files() -> None:
    response = call("/api/docs")

    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page
    assert "/static/ninja/swagger-ui.css" in page
    assert "cdn" not in page.lower()
    assert "https://" not in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui-init.js", "swagger-ui.css"):
        served = Client().get(f"/static/ninja/{asset}")
        assert served.status_code == 200, asset
