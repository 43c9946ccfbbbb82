"""The ``search`` action through the real endpoint: signed requests from a consumer member,
signed answers with only the agreed fields."""

from __future__ import annotations

import datetime
from typing import Any

from pilar.core.identifiers import NSS
from pilar.core.models import AccessLogEntry
from pilar.core.roles import Role
from pilar.core.tests.factories import actor
from pilar.exchange.models import ExchangeMessage, FederationLink
from pilar.exchange.tests.provider_support import (  # noqa: F401 (fixture)
    CONSUMER,
    Federation,
    agree,
    federation_fixture,
)
from pilar.linkage.merging import merge_persons
from pilar.registry.models import Identifier, Person
from pilar.registry.tests.factories import person_with_curp, valid_nss

FED_ID = "FED-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
OTHER_FED_ID = "FED-234567ABCDEFGHIJKLMNOPQRST"
UNKNOWN_CURP = "HELM800517MJCRPR01"


def item(kind: str, value: str, fields: list[str] | None = None, ref: str = "1") -> dict[str, Any]:
    criteria: dict[str, Any] = {
        "query_type": "idtype-value",
        "query": {"type": kind, "value": value},
    }
    if fields is not None:
        criteria["fields"] = fields
    return {
        "reference_id": ref,
        "timestamp": "2026-01-05T10:00:00Z",
        "search_criteria": criteria,
    }


def search(federation: Federation, *items: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return federation.post("search", {"transaction_id": "T-1", "search_request": list(items)})


def records(answer: dict[str, Any], index: int = 0) -> list[dict[str, Any]]:
    return answer["message"]["search_response"][index]["data"]["reg_records"]


def test_only_the_agreed_fields_are_answered(federation: Federation) -> None:
    agree("person-search", ["curp", "given_names", "first_surname", "birth_date", "death_date"])
    person, curp = person_with_curp()

    status, answer = search(federation, item("CURP", curp))

    assert status == 200
    assert answer["header"]["status"] == "succ"
    response = answer["message"]["search_response"][0]
    assert response["status"] == "succ"
    assert response["reference_id"] == "1"
    assert response["data"]["reg_record_type"] == "pilar:Person"
    assert records(answer) == [
        {
            "curp": curp,
            "given_names": "María Guadalupe",
            "first_surname": "Hernández",
            "birth_date": "1980-05-17",
            "death_date": None,
        }
    ]
    row = ExchangeMessage.objects.get(direction="in", action="search")
    assert row.status == "answered"
    # Messaging logs the access to the person answered, as the consumer and for the purpose.
    entry = AccessLogEntry.objects.get(person_id=person.pk)
    assert entry.actor_label == f"exchange:{CONSUMER}"
    assert entry.purpose == "verification"


def test_requested_fields_narrow_the_answer(federation: Federation) -> None:
    agree("person-search", ["curp", "given_names", "first_surname", "birth_date"])
    _person, curp = person_with_curp()

    _status, answer = search(federation, item("CURP", curp, fields=["birth_date"]))

    assert records(answer) == [{"birth_date": "1980-05-17"}]


def test_a_field_outside_the_agreement_refuses_the_whole_message(federation: Federation) -> None:
    agree("person-search", ["curp", "given_names"])
    _person, curp = person_with_curp()

    status, answer = search(
        federation,
        item("CURP", curp, fields=["given_names"], ref="a"),
        item("CURP", curp, fields=["given_names", "nss", "death_date"], ref="b"),
    )

    assert status == 403
    assert answer["header"]["status"] == "rjct"
    assert answer["header"]["status_reason_code"] == "rjct.field.not_agreed"
    assert "death_date, nss" in answer["header"]["status_reason_message"]
    assert "search_response" not in answer["message"]
    assert not AccessLogEntry.objects.exists()


def test_an_unknown_field_name_is_invalid_input(federation: Federation) -> None:
    agree("person-search", ["curp"])

    status, answer = search(federation, item("CURP", UNKNOWN_CURP, fields=["salary"]))

    assert status == 422
    assert answer["header"]["status_reason_code"] == "rjct.search_criteria.invalid"
    assert "salary" in answer["header"]["status_reason_message"]


def test_an_unknown_curp_answers_succ_with_no_record(federation: Federation) -> None:
    agree("person-search", ["curp"])

    status, answer = search(federation, item("CURP", UNKNOWN_CURP))

    assert status == 200
    assert answer["message"]["search_response"][0]["status"] == "succ"
    assert records(answer) == []
    assert not AccessLogEntry.objects.exists()


def test_an_invalid_curp_is_refused_naming_the_item(federation: Federation) -> None:
    agree("person-search", ["curp"])

    status, answer = search(federation, item("CURP", "HELM800517MJCRPR02"))

    assert status == 422
    header = answer["header"]
    assert header["status_reason_code"] == "rjct.search_criteria.invalid"
    assert "search_request[0].search_criteria.query.value" in header["status_reason_message"]


def test_invalid_shapes_are_refused(federation: Federation) -> None:
    agree("person-search", ["curp"])
    bad_type = item("RFC", "XAXX010101000")
    bad_query_type = item("CURP", UNKNOWN_CURP)
    bad_query_type["search_criteria"]["query_type"] = "expression"
    duplicate = [item("CURP", UNKNOWN_CURP, ref="x"), item("CURP", UNKNOWN_CURP, ref="x")]
    too_many = [item("CURP", UNKNOWN_CURP, ref=str(n)) for n in range(101)]

    for items, where in (
        ([bad_type], "query.type"),
        ([bad_query_type], "query_type"),
        (duplicate, "search_request[1].reference_id"),
        (too_many, "100"),
        ([], "search_request"),
    ):
        status, answer = search(federation, *items)
        assert status == 422, where
        assert answer["header"]["status_reason_code"] == "rjct.search_criteria.invalid"
        assert where in answer["header"]["status_reason_message"]


def test_search_by_nss_and_by_federation_id(federation: Federation) -> None:
    agree("person-search", ["curp", "nss"])
    person, curp = person_with_curp()
    nss = valid_nss()
    Identifier.objects.create(person=person, scheme=NSS, value=nss)
    FederationLink.objects.create(person=person, fed_id=FED_ID)

    _status, answer = search(
        federation,
        item("NSS", nss, ref="by-nss"),
        item("FED", FED_ID, ref="by-fed"),
        item("FED", OTHER_FED_ID, ref="nobody"),
    )

    expected = [{"curp": curp, "nss": nss}]
    assert records(answer, 0) == expected
    assert records(answer, 1) == expected
    assert records(answer, 2) == []


def test_a_merged_record_answers_as_its_golden_record(federation: Federation) -> None:
    agree("person-search", ["curp", "given_names", "death_date"])
    golden, golden_curp = person_with_curp(given_names="Ana")
    merged, merged_curp = person_with_curp(given_names="Anna")
    FederationLink.objects.create(person=merged, fed_id=FED_ID)
    merge_persons(
        actor=actor(Role.DATA_STEWARD),
        golden_id=golden.pk,
        merged_id=merged.pk,
        reason="Same person, registered twice.",
    )
    Person.objects.filter(pk=golden.pk).update(death_date=datetime.date(2025, 3, 1))

    _status, answer = search(
        federation, item("CURP", merged_curp, ref="m"), item("FED", FED_ID, ref="f")
    )

    for index in (0, 1):
        (record,) = records(answer, index)
        assert record["given_names"] == "Ana"
        assert record["death_date"] == "2025-03-01"
        # The golden record holds both CURPs; the first active one is answered.
        assert record["curp"] in (golden_curp, merged_curp)


def test_every_person_answered_is_in_the_access_log(federation: Federation) -> None:
    agree("person-search", ["curp"])
    first, first_curp = person_with_curp()
    second, second_curp = person_with_curp(given_names="Rosa")

    search(
        federation,
        item("CURP", first_curp, ref="1"),
        item("CURP", second_curp, ref="2"),
        item("CURP", first_curp, ref="3"),
        item("CURP", UNKNOWN_CURP, ref="4"),
    )

    logged = sorted(AccessLogEntry.objects.values_list("person_id", "actor_label", "purpose"))
    assert logged == sorted(
        [
            (first.pk, f"exchange:{CONSUMER}", "verification"),
            (second.pk, f"exchange:{CONSUMER}", "verification"),
        ]
    )
