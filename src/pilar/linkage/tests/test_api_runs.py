"""The linkage runs and models API end to end: real tokens and URLs. Starting runs (202 with a
Location), refusals as problem documents that write nothing, models (import, thresholds,
activation, export), cross-programme checks, and a finished run's results and download."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from pilar.core.actor import Actor
from pilar.core.auth import token_issue
from pilar.core.models import AuditEvent, User
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.linkage.model import DEFAULT_MODEL
from pilar.linkage.models import LinkageModel, LinkageRun, RunKind
from pilar.registry.tests.factories import ProgrammeFactory

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
SYSTEM = Actor.system("test", roles=frozenset({Role.ADMINISTRATOR}))
MODEL_FILE = DEFAULT_MODEL.to_json().encode()
LIST = (
    "folio,nombre,apellido_paterno,apellido_materno,fecha_nacimiento\n1,Ana,López,Ruiz,1980-01-02\n"
).encode()


class Api:
    def __init__(self, role: str = Role.DATA_STEWARD, language: str = "en") -> None:
        self.user: User = staff(role)
        _token, raw = token_issue(actor=SYSTEM, user=self.user, role=role, name="tests")
        self.headers = {"Authorization": f"Bearer {raw}", "Accept-Language": language}
        self.client = Client()

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api/v1{path}", params, headers=self.headers)

    def post(self, path: str, body: Any = None) -> Any:
        return self.client.post(
            f"/api/v1{path}",
            json.dumps(body or {}),
            content_type="application/json",
            headers=self.headers,
        )

    def patch(self, path: str, body: Any) -> Any:
        return self.client.patch(
            f"/api/v1{path}",
            json.dumps(body),
            content_type="application/json",
            headers=self.headers,
        )

    def upload(self, path: str, fields: dict[str, Any]) -> Any:
        return self.client.post(f"/api/v1{path}", fields, headers=self.headers)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    document: dict[str, Any] = response.json()
    assert document["code"] == code
    return document


def model_upload(data: bytes = MODEL_FILE) -> dict[str, Any]:
    return {"file": SimpleUploadedFile("model.json", data, "application/json")}


def test_reading_needs_linkage_view_and_starting_linkage_run() -> None:
    registrar = Api(Role.REGISTRAR)
    assert_problem(registrar.get("/linkage/runs"), 403, "permission_denied")
    assert_problem(registrar.get("/linkage/models"), 403, "permission_denied")
    auditor = Api(Role.AUDITOR)
    assert auditor.get("/linkage/runs").json()["items"] == []
    assert_problem(auditor.post("/linkage/runs/train"), 403, "permission_denied")
    assert_problem(
        auditor.upload("/linkage/models/import", model_upload()), 403, "permission_denied"
    )
    assert not LinkageRun.objects.exists()
    assert not LinkageModel.objects.exists()


def test_models_import_thresholds_activation_export() -> None:
    api = Api()
    refused = assert_problem(
        api.upload(
            "/linkage/models/import",
            model_upload(json.dumps({**json.loads(MODEL_FILE), "splink_version": "3.9"}).encode()),
        ),
        422,
        "linkage.model_refused",
    )
    assert refused["errors"][0]["field"] == "file"
    assert refused["errors"][0]["code"] == "splink_version"
    assert "Splink 3.9" in refused["errors"][0]["message"]
    assert not LinkageModel.objects.exists()

    created = api.upload("/linkage/models/import", model_upload())
    assert created.status_code == 201
    first = created.json()
    assert (first["version"], first["is_active"]) == (1, True)
    assert first["comparisons"][0]["name"] == "given"
    assert first["comparisons"][0]["levels"][1]["m"] is not None
    second = api.upload("/linkage/models/import", model_upload()).json()

    bad = assert_problem(
        api.patch(f"/linkage/models/{first['id']}", {"auto_link_weight": 1, "review_weight": 2}),
        422,
        "validation_failed",
    )
    assert bad["errors"][0]["code"] == "linkage.thresholds_order"
    changed = api.patch(
        f"/linkage/models/{first['id']}", {"auto_link_weight": 14, "review_weight": 2}
    ).json()
    assert (changed["auto_link_weight"], changed["review_weight"]) == (14, 2)

    activated = api.post(f"/linkage/models/{second['id']}/activate").json()
    assert activated["is_active"] is True
    listed = api.get("/linkage/models").json()
    assert [(m["version"], m["is_active"]) for m in listed] == [(2, True), (1, False)]

    exported = api.client.get(first["export_url"], headers=api.headers)
    assert exported.status_code == 200
    assert json.loads(exported.content)["summary"]["thresholds"]["auto_link_weight"] == 14
    assert_problem(api.get("/linkage/models/999999"), 404, "not_found")


def test_runs_start_and_refuse() -> None:
    api = Api()
    assert_problem(api.post("/linkage/runs/dedupe", {}), 409, "linkage.no_model")
    api.upload("/linkage/models/import", model_upload())
    assert_problem(api.post("/linkage/runs/dedupe", {"region": "QQ"}), 422, "validation_failed")
    assert_problem(api.post("/linkage/runs/dedupe", {"colour": "red"}), 422, "validation_failed")
    started = api.post("/linkage/runs/dedupe", {"region": "JC"})
    assert started.status_code == 202
    run = started.json()
    assert (run["kind"], run["status"], run["stage"]) == ("dedupe", "queued", "queued")
    assert started["Location"] == f"/api/v1/linkage/runs/{run['id']}"
    assert run["results_url"] is None
    assert_problem(api.post("/linkage/runs/dedupe", {}), 409, "linkage.run_busy")
    detail = api.get(f"/linkage/runs/{run['id']}").json()
    assert detail["results"] is None
    assert detail["parameters"] == {"region": "JC"}
    assert_problem(api.get(f"/linkage/runs/{run['id']}/results"), 404, "not_found")
    assert_problem(api.get(f"/linkage/cross-programme/{run['id']}"), 404, "not_found")
    training = api.post("/linkage/runs/train", {"sample": 2000})
    assert training.status_code == 202
    assert training.json()["parameters"] == {"seed": 42, "sample": 2000}
    listed = api.get("/linkage/runs", kind="train").json()
    assert [item["id"] for item in listed["items"]] == [training.json()["id"]]
    assert_problem(api.get("/linkage/runs", kind="magic"), 422, "validation_failed")


def test_list_upload_refused_then_accepted_then_recognised() -> None:
    api = Api()
    api.upload("/linkage/models/import", model_upload())
    refused = assert_problem(
        api.upload(
            "/linkage/runs/link",
            {"file": SimpleUploadedFile("l.csv", b"nombre;curp\nAna;\n", "text/csv")},
        ),
        422,
        "validation_failed",
    )
    assert refused["errors"][0]["code"] == "missing_columns"
    assert not LinkageRun.objects.exists()
    first = api.upload(
        "/linkage/runs/link",
        {"file": SimpleUploadedFile("l.csv", LIST, "text/csv"), "name": "Lista"},
    )
    assert first.status_code == 202
    assert first.json()["source_name"] == "Lista"
    again = api.upload("/linkage/runs/link", {"file": SimpleUploadedFile("m.csv", LIST)})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


def test_cross_programme_start() -> None:
    api = Api()
    ProgrammeFactory.create()
    ProgrammeFactory.create(code="IMSS_LEY97", name_es="Ley 97", name_en="1997 law")
    refused = assert_problem(
        api.post("/linkage/cross-programme", {"programme_a": "NADA", "programme_b": "IMSS_LEY97"}),
        422,
        "validation_failed",
    )
    assert refused["errors"][0]["field"] == "programme_a"
    started = api.post(
        "/linkage/cross-programme",
        {"programme_a": "PENSION_BIENESTAR", "programme_b": "IMSS_LEY97"},
    )
    assert started.status_code == 202
    run = started.json()
    assert run["kind"] == RunKind.CROSS_PROGRAMME
    assert started["Location"] == f"/api/v1/linkage/cross-programme/{run['id']}"
    assert api.get(f"/linkage/cross-programme/{run['id']}").json()["status"] == "queued"
    assert AuditEvent.objects.filter(action="linkage.run_start", entity_id=str(run["id"])).exists()
