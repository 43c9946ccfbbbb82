"""The review and merge API end to end: real URLs, real tokens, the real database. Each
operation is checked for its answer, its problem documents, and what it writes — and that a
refused request writes nothing."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from django.test import Client

from pilar.core.actor import Actor
from pilar.core.auth import token_issue
from pilar.core.models import AccessLogEntry, AuditEvent, User
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.linkage.models import Merge, PairStatus
from pilar.linkage.tests.review_helpers import full_record, pair_of, rows_of
from pilar.registry.models import FamilyTie, Person, RecordStatus
from pilar.registry.tests.factories import PersonFactory

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
SYSTEM = Actor.system("test", roles=frozenset({Role.ADMINISTRATOR}))


class Api:
    def __init__(self, user: User, role: str, language: str = "en") -> None:
        _token, raw = token_issue(actor=SYSTEM, user=user, role=role, name="tests")
        self.headers = {"Authorization": f"Bearer {raw}", "Accept-Language": language}
        self.client = Client()

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params, headers=self.headers)

    def post(self, path: str, body: Any) -> Any:
        return self.client.post(
            path, json.dumps(body), content_type="application/json", headers=self.headers
        )


def steward_api(language: str = "en") -> Api:
    return Api(staff(Role.DATA_STEWARD), Role.DATA_STEWARD, language)


def two_records() -> tuple[Person, Person]:
    return full_record("José"), full_record("Pepe", birth_date=datetime.date(1980, 5, 7))


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    document: dict[str, Any] = response.json()
    assert document["code"] == code
    return document


# --- pairs -------------------------------------------------------------------------------------


def test_the_queue_lists_pairs_with_filters_and_pages() -> None:
    golden, merged = two_records()
    other = PersonFactory.create(given_names="Josefa", region="NL")
    high = pair_of(merged, golden, weight=11)
    low = pair_of(golden, other, weight=5)
    pair_of(merged, other, weight=15, status=PairStatus.DIFFERENT)
    api = steward_api()

    response = api.get("/api/v1/linkage/pairs")

    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["items"]] == [high.pk, low.pk]
    assert body["items"][0]["left_person"]["id"] == merged.pk
    assert body["items"][0]["right_person"]["name"] == "José López Cruz"
    assert body["total"] == 2
    assert [i["id"] for i in api.get("/api/v1/linkage/pairs", region="NL").json()["items"]] == [
        low.pk
    ]
    assert len(api.get("/api/v1/linkage/pairs", status="all").json()["items"]) == 3
    paged = api.get("/api/v1/linkage/pairs", page_size=1).json()
    assert len(paged["items"]) == 1
    assert paged["next"]
    problem(api.get("/api/v1/linkage/pairs", status="nonsense"), 422, "validation_failed")
    assert not AccessLogEntry.objects.exists()


def test_a_pair_comes_with_its_fields_breakdown_and_lambda_and_the_read_is_logged() -> None:
    golden, merged = two_records()
    pair = pair_of(merged, golden, conflict=True)

    response = steward_api().get(f"/api/v1/linkage/pairs/{pair.pk}", purpose="review")

    assert response.status_code == 200
    body = response.json()
    fields = {f["field"]: f for f in body["fields"]}
    assert fields["paternal_surname"]["agreement"] == "agrees"
    assert fields["birth_date"]["agreement"] == "close"
    assert body["identifier_conflict"] is True
    nss = next(item for item in body["breakdown"] if item["comparison"] == "nss")
    assert nss["agreement"] == "differs"
    assert nss["weight"] < 0
    assert body["prior"]["from_model"] is False
    assert {e.person_id for e in AccessLogEntry.objects.filter(purpose="review")} == {
        golden.pk,
        merged.pk,
    }
    problem(steward_api().get(f"/api/v1/linkage/pairs/{pair.pk + 9}"), 404, "not_found")


def test_a_decision_is_recorded_once() -> None:
    golden, merged = two_records()
    pair = pair_of(merged, golden)
    api = steward_api()

    response = api.post(
        f"/api/v1/linkage/pairs/{pair.pk}/decision", {"decision": "different", "note": "twins"}
    )

    assert response.status_code == 200
    assert response.json()["status"] == "different"
    assert response.json()["decision_note"] == "twins"
    again = api.post(f"/api/v1/linkage/pairs/{pair.pk}/decision", {"decision": "same"})
    problem(again, 409, "linkage.pair_decided")
    bad = api.post(f"/api/v1/linkage/pairs/{pair.pk}/decision", {"decision": "perhaps"})
    assert problem(bad, 422, "validation_failed")["errors"][0]["field"] == "decision"
    unknown = api.post(f"/api/v1/linkage/pairs/{pair.pk}/decision", {"decision": "same", "x": 1})
    problem(unknown, 422, "validation_failed")
    pair.refresh_from_db()
    assert pair.status == PairStatus.DIFFERENT


def test_a_registrar_token_cannot_review_or_merge() -> None:
    golden, merged = two_records()
    pair = pair_of(merged, golden)
    api = Api(staff(Role.REGISTRAR), Role.REGISTRAR)

    problem(api.get("/api/v1/linkage/pairs"), 403, "permission_denied")
    problem(
        api.post(f"/api/v1/linkage/pairs/{pair.pk}/decision", {"decision": "same"}),
        403,
        "permission_denied",
    )
    problem(
        api.post(
            "/api/v1/linkage/merges",
            {"golden_id": golden.pk, "merged_id": merged.pk, "reason": "x"},
        ),
        403,
        "permission_denied",
    )
    assert not AuditEvent.objects.filter(entity_type__startswith="linkage").exists()


# --- merges ------------------------------------------------------------------------------------


def test_a_merge_is_created_read_and_undone() -> None:
    golden, merged = two_records()
    before = rows_of(merged.pk)
    pair = pair_of(merged, golden)
    api = steward_api()

    created = api.post(
        "/api/v1/linkage/merges",
        {
            "golden_id": golden.pk,
            "merged_id": merged.pk,
            "reason": "Same CURP stem",
            "pair_id": pair.pk,
            "take_from_merged": ["birth_date"],
        },
    )

    assert created.status_code == 201, created.content
    body = created.json()
    merge = Merge.objects.get()
    assert created["Location"] == f"/api/v1/linkage/merges/{merge.pk}"
    assert body["golden_id"] == golden.pk
    assert body["merged_id"] == merged.pk
    moved = {group["key"]: group for group in body["moved"]}
    assert set(moved["registry.Identifier.person"]["ids"]) == before["registry.Identifier.person"]
    assert moved["registry.Identifier.person"]["still_on_golden"] == 2
    assert body["golden_before"]["birth_date"] == "1980-07-05"
    assert body["golden_before"]["taken_from_merged"] == {"birth_date": "1980-05-07"}
    assert Person.objects.get(pk=golden.pk).birth_date == datetime.date(1980, 5, 7)

    read = api.get(f"/api/v1/linkage/merges/{merge.pk}")
    assert read.status_code == 200
    assert read.json()["id"] == merge.pk

    undone = api.post(f"/api/v1/linkage/merges/{merge.pk}/unmerge", {"reason": "Two persons"})
    assert undone.status_code == 200, undone.content
    assert undone.json()["unmerge_reason"] == "Two persons"
    assert undone.json()["kept_fields"] == []
    assert rows_of(merged.pk) == before
    assert Person.objects.get(pk=merged.pk).status == RecordStatus.ACTIVE
    problem(
        api.post(f"/api/v1/linkage/merges/{merge.pk}/unmerge", {"reason": "again"}),
        409,
        "linkage.already_unmerged",
    )


def test_refused_merges_are_problem_documents_naming_the_conflict_and_write_nothing() -> None:
    golden, merged = two_records()
    tie = FamilyTie.objects.create(person=golden, relative=merged, relation="spouse")
    api = steward_api("es")

    conflict = problem(
        api.post(
            "/api/v1/linkage/merges",
            {"golden_id": golden.pk, "merged_id": merged.pk, "reason": "misma persona"},
        ),
        409,
        "linkage.merge_conflict",
    )
    assert conflict["conflicts"][0]["code"] == "merge.records_linked"
    assert conflict["conflicts"][0]["rows"] == {"registry.FamilyTie.relative": [tie.pk]}
    itself = problem(
        api.post(
            "/api/v1/linkage/merges",
            {"golden_id": golden.pk, "merged_id": golden.pk, "reason": "x"},
        ),
        422,
        "validation_failed",
    )
    assert itself["errors"][0]["code"] == "merge.same_record"
    missing = problem(
        api.post(
            "/api/v1/linkage/merges",
            {"golden_id": golden.pk, "merged_id": 10**9, "reason": "x"},
        ),
        404,
        "not_found",
    )
    assert missing["status"] == 404
    unknown_field = problem(
        api.post(
            "/api/v1/linkage/merges",
            {
                "golden_id": golden.pk,
                "merged_id": merged.pk,
                "reason": "x",
                "take_from_merged": ["salary"],
            },
        ),
        422,
        "validation_failed",
    )
    assert unknown_field["errors"][0]["field"] == "take_from_merged"
    assert not Merge.objects.exists()
    assert not AuditEvent.objects.filter(entity_type__startswith="linkage").exists()
    problem(api.get("/api/v1/linkage/merges/12345"), 404, "not_found")
