"""The benefits REST API end to end: real tokens, real URLs, the shipped scheme packages and the
real database. A claim goes from entry through adjudication and maker–checker approval to an
award with its calculation history and a decision letter; every refusal is a problem document
with a stable code and field errors, and writes nothing."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from django.test import Client

from pilar.benefits.models import Award, Claim, Decision
from pilar.benefits.tests.careers import CLAIM_DATE, insured, long_career, short_career
from pilar.core.actor import Actor
from pilar.core.auth import token_issue
from pilar.core.models import AccessLogEntry, AuditEvent, User
from pilar.core.roles import Role
from pilar.core.tests.factories import staff

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
SYSTEM = Actor.system("test", roles=frozenset({Role.ADMINISTRATOR}))


class Api:
    """A test client that authenticates with a real API token of one role."""

    def __init__(self, user: User, role: str, language: str = "en") -> None:
        self.user = user
        _token, raw = token_issue(actor=SYSTEM, user=user, role=role, name="tests")
        self.headers = {"Authorization": f"Bearer {raw}", "Accept-Language": language}
        self.client = Client()

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params, headers=self.headers)

    def post(self, path: str, body: Any = None) -> Any:
        content = "" if body is None else json.dumps(body)
        return self.client.post(
            path, content, content_type="application/json", headers=self.headers
        )


def officer_api(language: str = "en", region: str = "JC") -> Api:
    return Api(staff(Role.BENEFITS_OFFICER, region=region), Role.BENEFITS_OFFICER, language)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    document: dict[str, Any] = response.json()
    assert document["code"] == code
    return document


def claim_body(person_id: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "person_id": person_id,
        "package": "imss_1973",
        "benefit": "vejez",
        "claim_date": CLAIM_DATE.isoformat(),
        "declared": {"padres_dependientes": 0},
    }
    body.update(overrides)
    return body


def counts() -> tuple[int, int, int, int]:
    return (
        Claim.objects.count(),
        Decision.objects.count(),
        Award.objects.count(),
        AuditEvent.objects.count(),
    )


def test_claim_to_award_through_the_api() -> None:
    maker, checker = officer_api(), officer_api()
    person = long_career()

    created = maker.post("/api/v1/claims", claim_body(person.pk))
    assert created.status_code == 201, created.content
    claim = created.json()
    assert created["Location"] == f"/api/v1/claims/{claim['id']}"
    assert (claim["status"], claim["version"], claim["declared"]) == (
        "entered",
        1,
        {"padres_dependientes": 0},
    )

    adjudicated = maker.post(f"/api/v1/claims/{claim['id']}/adjudicate?version=1")
    assert adjudicated.status_code == 201, adjudicated.content
    decision = adjudicated.json()
    assert (decision["outcome"], decision["status"], decision["frequency"]) == (
        "granted",
        "pending",
        "monthly",
    )
    assert decision["package"]["name"] == "imss_1973"
    assert len(decision["package"]["content_hash"]) == 64
    weeks = decision["inputs"]["semanas_cotizadas"]
    assert (weeks["value"], weeks["source"], weeks["type"], weeks["unit"]) == (
        1616,
        "work_history",
        "number",
        "weeks",
    )
    assert weeks["detail"]["counted_days"] == 11317
    assert weeks["label"]["en"] == "Recognised weeks of contribution"
    assert decision["unmet_conditions"] == []
    amount = decision["amount"]
    assert isinstance(amount, str)
    assert "." in amount

    same = maker.post(f"/api/v1/decisions/{decision['id']}/approve")
    problem = assert_problem(same, 403, "same_officer")
    assert "Another officer" in problem["title"]

    approved = checker.post(f"/api/v1/decisions/{decision['id']}/approve?version=2")
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "approved"
    assert approved.json()["checked_by"] == checker.user.username
    award_id = approved.json()["award_id"]

    awards = checker.get("/api/v1/awards", person_id=person.pk, purpose="pago")
    assert awards.status_code == 200
    [summary] = awards.json()["items"]
    assert summary["id"] == award_id
    assert (summary["amount"], summary["frequency"], summary["start_date"]) == (
        amount,
        "monthly",
        CLAIM_DATE.isoformat(),
    )
    award = checker.get(f"/api/v1/awards/{summary['id']}").json()
    [calculation] = award["calculations"]
    assert calculation["amount"] == amount
    assert calculation["package"] == decision["package"]
    assert calculation["reason"] == "award"

    got = checker.get(f"/api/v1/claims/{claim['id']}", purpose="consulta")
    assert got.json()["status"] == "granted"
    assert [d["id"] for d in got.json()["decisions"]] == [decision["id"]]
    assert AccessLogEntry.objects.filter(person_id=person.pk, purpose="consulta").exists()

    letter = checker.get(f"/api/v1/decisions/{decision['id']}/letter.pdf", lang="en")
    assert letter.status_code == 200
    assert letter["Content-Type"] == "application/pdf"
    assert letter.content.startswith(b"%PDF")


def test_a_denial_through_the_api_lists_the_unmet_conditions() -> None:
    maker = officer_api(language="es")
    person = short_career()
    claim = maker.post("/api/v1/claims", claim_body(person.pk)).json()
    decision = maker.post(f"/api/v1/claims/{claim['id']}/adjudicate").json()
    assert decision["outcome"] == "denied"
    assert decision["amount"] is None
    weeks = [u for u in decision["unmet_conditions"] if u["test"].startswith("semanas")]
    assert weeks == [
        {
            "test": "semanas_cotizadas >= semanas_minimas",
            "label": weeks[0]["label"],
            "value": "399",
            "operator": ">=",
            "threshold": "500",
            "unit": "weeks",
            "reference": weeks[0]["reference"],
        }
    ]


def test_bad_claims_are_problems_with_field_errors_and_write_nothing() -> None:
    api = officer_api()
    person = insured()
    before = counts()

    unknown = api.post("/api/v1/claims", claim_body(person.pk, package="imss_2099", benefit="x"))
    problem = assert_problem(unknown, 422, "validation_failed")
    assert {e["field"]: e["code"] for e in problem["errors"]} == {
        "package": "benefits.unknown_package"
    }

    bad_benefit = api.post("/api/v1/claims", claim_body(person.pk, benefit="invalidez"))
    problem = assert_problem(bad_benefit, 422, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["benefit"]

    bad_date = api.post("/api/v1/claims", claim_body(person.pk, claim_date="2025-02-30"))
    problem = assert_problem(bad_date, 422, "validation_failed")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("claim_date", "field.invalid_date")
    ]

    future = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
    later = api.post("/api/v1/claims", claim_body(person.pk, claim_date=future))
    problem = assert_problem(later, 422, "validation_failed")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("claim_date", "date.in_future")
    ]

    declared = api.post(
        "/api/v1/claims", claim_body(person.pk, declared={"edad": 90, "padres_dependientes": True})
    )
    problem = assert_problem(declared, 422, "validation_failed")
    assert {e["field"]: e["code"] for e in problem["errors"]} == {
        "declared.edad": "declared.derived",
        "declared.padres_dependientes": "declared.invalid_type",
    }

    extra = api.post("/api/v1/claims", {**claim_body(person.pk), "amount": "1.00"})
    assert_problem(extra, 422, "validation_failed")

    assert_problem(api.post("/api/v1/claims", claim_body(999_999)), 404, "not_found")
    assert counts() == before


def test_missing_data_refuses_adjudication_with_the_list_and_writes_nothing() -> None:
    api = officer_api(language="es")
    person = insured()
    claim = api.post(
        "/api/v1/claims",
        claim_body(person.pk, package="bienestar", benefit="pension_bienestar", declared={}),
    ).json()
    before = counts()
    refused = api.post(f"/api/v1/claims/{claim['id']}/adjudicate")
    problem = assert_problem(refused, 422, "benefits.claim_incomplete")
    assert [item["name"] for item in problem["missing"]] == [
        "reside_en_mexico",
        "mexicano_o_residente_25",
        "municipio_indigena",
    ]
    assert problem["missing"][0]["message"] == "Reside en México: no se declaró en la solicitud"
    assert problem["title"] == "No se puede resolver la solicitud: faltan datos."
    assert counts() == before


def test_returning_and_adjudicating_again_and_stale_versions() -> None:
    maker, checker = officer_api(), officer_api()
    claim = maker.post("/api/v1/claims", claim_body(long_career().pk)).json()
    decision = maker.post(f"/api/v1/claims/{claim['id']}/adjudicate").json()
    no_reason = checker.post(f"/api/v1/decisions/{decision['id']}/return", {"reason": ""})
    assert_problem(no_reason, 422, "validation_failed")
    stale = checker.post(
        f"/api/v1/decisions/{decision['id']}/return", {"reason": "Revisar", "version": 1}
    )
    assert assert_problem(stale, 409, "benefits.stale_version")["current_version"] == 2
    returned = checker.post(
        f"/api/v1/decisions/{decision['id']}/return", {"reason": "Revisar", "version": 2}
    )
    assert returned.status_code == 200, returned.content
    assert (returned.json()["status"], returned.json()["return_reason"]) == ("returned", "Revisar")
    again = maker.post(f"/api/v1/claims/{claim['id']}/adjudicate?version=3")
    assert again.status_code == 201
    assert assert_problem(
        checker.post(f"/api/v1/decisions/{decision['id']}/approve"), 409, "benefits.invalid_state"
    )


def test_lists_kinds_permissions_and_regions() -> None:
    api = officer_api()
    claim = api.post("/api/v1/claims", claim_body(long_career().pk)).json()

    kinds = api.get("/api/v1/claim-kinds")
    assert kinds.status_code == 200
    vejez = next(k for k in kinds.json() if (k["package"], k["benefit"]) == ("imss_1973", "vejez"))
    assert [i["name"] for i in vejez["inputs"]] == ["padres_dependientes", "hijos_estudiantes"]
    assert vejez["label"] == {"es": "Pensión de vejez", "en": "Old-age pension"}

    listed = api.get("/api/v1/claims", status="entered")
    assert [c["id"] for c in listed.json()["items"]] == [claim["id"]]
    assert_problem(api.get("/api/v1/claims", status="lost"), 422, "validation_failed")

    registrar = Api(staff(Role.REGISTRAR), Role.REGISTRAR)
    assert_problem(registrar.get("/api/v1/claims"), 403, "permission_denied")
    assert_problem(
        registrar.post("/api/v1/claims", claim_body(insured().pk)), 403, "permission_denied"
    )
    auditor = Api(staff(Role.AUDITOR, region="NL"), Role.AUDITOR)
    assert auditor.get(f"/api/v1/claims/{claim['id']}").status_code == 200
    assert_problem(
        auditor.post(f"/api/v1/claims/{claim['id']}/adjudicate"), 403, "permission_denied"
    )
    elsewhere = officer_api(region="NL")
    assert_problem(elsewhere.get(f"/api/v1/claims/{claim['id']}"), 404, "not_found")
    assert elsewhere.get("/api/v1/claims").json()["total"] == 0


def test_preview_and_withdraw() -> None:
    api = officer_api()
    person = long_career()
    preview = api.post("/api/v1/claims/preview", claim_body(person.pk, declared={}))
    assert preview.status_code == 200, preview.content
    document = preview.json()
    assert document["complete"] is False
    assert [m["name"] for m in document["missing"]] == ["padres_dependientes"]
    assert document["inputs"]["edad"]["value"] == 70
    assert not Claim.objects.exists()

    claim = api.post("/api/v1/claims", claim_body(person.pk)).json()
    withdrawn = api.post(f"/api/v1/claims/{claim['id']}/withdraw", {"reason": "Desiste"})
    assert withdrawn.status_code == 200
    assert (withdrawn.json()["status"], withdrawn.json()["withdrawal_reason"]) == (
        "withdrawn",
        "Desiste",
    )
