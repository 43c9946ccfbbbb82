"""Review decisions and the review reads: deciding a pair once (and reopening it with a reason),
the queue's order and filters, a pair side by side with its breakdown and λ, what the person
page says about merges, and the registry search hiding merged records."""

from __future__ import annotations

import datetime
import math

import pytest
from django.utils import translation

from pilar.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from pilar.core.models import AccessLogEntry, AuditEvent
from pilar.core.roles import Role
from pilar.core.tests.factories import actor
from pilar.linkage import selectors
from pilar.linkage.merging import merge_persons
from pilar.linkage.models import LinkageModel, PairStatus, RunKind
from pilar.linkage.review import PairDecided, decide_pair, reopen_pair
from pilar.linkage.selectors import Agreement, compare_values
from pilar.linkage.tests.review_helpers import (
    full_record,
    linkage_run,
    pair_of,
    regional_merger,
    steward,
)
from pilar.registry import selectors as registry_selectors
from pilar.registry.models import Person
from pilar.registry.tests.factories import PersonFactory

pytestmark = pytest.mark.django_db


def persons(region: str = "JC") -> tuple[Person, Person]:
    first = PersonFactory.create(given_names="José", region=region)
    second = PersonFactory.create(
        given_names="Pepe", birth_date=datetime.date(1980, 5, 7), region=region
    )
    return first, second


# --- decisions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decision", "status"),
    [("same", PairStatus.SAME), ("different", PairStatus.DIFFERENT), ("skip", PairStatus.SKIPPED)],
)
def test_a_decision_is_recorded_and_audited_on_both_records(decision: str, status: str) -> None:
    first, second = persons()
    pair = pair_of(first, second)
    reviewer = steward()

    decided = decide_pair(actor=reviewer, pair_id=pair.pk, decision=decision, note=" checked ")

    assert decided.status == status
    pair.refresh_from_db()
    assert pair.status == status
    assert pair.decided_by == reviewer.user
    assert pair.decided_at is not None
    assert pair.decision_note == "checked"
    events = AuditEvent.objects.filter(action="linkage.pair.decide", entity_id=str(pair.pk))
    assert {e.person_id for e in events} == {first.pk, second.pk}
    assert all(e.entity_type == "linkage.pair" for e in events)
    assert [e.changes for e in events] == [{"status": ["pending", status]}] * 2


def test_a_decided_pair_is_not_decided_again_but_a_skipped_one_is() -> None:
    first, second = persons()
    pair = pair_of(first, second)
    decide_pair(actor=steward(), pair_id=pair.pk, decision="skip")
    decide_pair(actor=steward(), pair_id=pair.pk, decision="different")

    with pytest.raises(PairDecided) as caught:
        decide_pair(actor=steward(), pair_id=pair.pk, decision="same")

    assert caught.value.code == "linkage.pair_decided"
    assert caught.value.status == 409
    pair.refresh_from_db()
    assert pair.status == PairStatus.DIFFERENT


def test_reopening_needs_a_reason_and_puts_the_pair_back_in_the_queue() -> None:
    first, second = persons()
    pair = pair_of(first, second, status=PairStatus.DIFFERENT)

    with pytest.raises(ValidationFailed) as caught:
        reopen_pair(actor=steward(), pair_id=pair.pk, reason=" ")
    assert caught.value.field_errors["note"][0].code == "required"
    pair.refresh_from_db()
    assert pair.status == PairStatus.DIFFERENT

    reopen_pair(actor=steward(), pair_id=pair.pk, reason="The NSS was mistyped")

    pair.refresh_from_db()
    assert pair.status == PairStatus.PENDING
    assert pair.decided_by is None
    event = AuditEvent.objects.get(action="linkage.pair.reopen", person_id=first.pk)
    assert event.note == "The NSS was mistyped"
    assert event.changes == {"status": ["different", "pending"]}
    with pytest.raises(Conflict) as again:
        reopen_pair(actor=steward(), pair_id=pair.pk, reason="again")
    assert again.value.code == "linkage.pair_open"


def test_a_pair_carried_out_by_a_merge_is_undone_by_unmerging_not_reopening() -> None:
    golden = full_record("José")
    merged = full_record("Pepe", birth_date=datetime.date(1980, 5, 7))
    pair = pair_of(golden, merged)
    merge = merge_persons(
        actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="x", pair_id=pair.pk
    )

    with pytest.raises(Conflict) as caught:
        reopen_pair(actor=steward(), pair_id=pair.pk, reason="wrong")

    assert caught.value.code == "linkage.pair_merged"
    assert caught.value.extra["merge_id"] == merge.pk


def test_bad_decisions_and_notes_are_refused_with_their_field() -> None:
    first, second = persons()
    pair = pair_of(first, second)

    with pytest.raises(ValidationFailed) as caught:
        decide_pair(actor=steward(), pair_id=pair.pk, decision="maybe")
    assert caught.value.field_errors["decision"][0].code == "invalid_choice"
    with pytest.raises(ValidationFailed) as long_note:
        decide_pair(actor=steward(), pair_id=pair.pk, decision="same", note="x" * 301)
    assert long_note.value.field_errors["note"][0].code == "too_long"
    with pytest.raises(NotFound):
        decide_pair(actor=steward(), pair_id=pair.pk + 99, decision="same")
    pair.refresh_from_db()
    assert pair.status == PairStatus.PENDING
    assert not AuditEvent.objects.exists()


def test_only_reviewers_decide_and_only_pairs_of_their_region() -> None:
    first, second = persons()
    elsewhere = PersonFactory.create(given_names="José", region="NL")
    pair = pair_of(first, second)
    far = pair_of(first, elsewhere)

    with pytest.raises(PermissionDenied):
        decide_pair(actor=actor(Role.REGISTRAR), pair_id=pair.pk, decision="same")
    with pytest.raises(NotFound):
        decide_pair(actor=regional_merger("JC"), pair_id=far.pk, decision="same")
    decide_pair(actor=regional_merger("JC"), pair_id=pair.pk, decision="different")
    far.refresh_from_db()
    assert far.status == PairStatus.PENDING


def test_a_list_row_pair_is_audited_on_its_registry_record_only() -> None:
    person = PersonFactory.create()
    pair = pair_of(None, person, left_row=7, left_record={"given_names": "MARIA"})

    decide_pair(actor=steward(), pair_id=pair.pk, decision="same")

    events = AuditEvent.objects.filter(action="linkage.pair.decide")
    assert [e.person_id for e in events] == [person.pk]


# --- the queue ---------------------------------------------------------------------------------


def test_the_queue_lists_pending_pairs_highest_weight_first_with_filters() -> None:
    first, second = persons()
    third = PersonFactory.create(given_names="Josefa", region="NL")
    run = linkage_run()
    low = pair_of(first, second, weight=4.0, run=run)
    high = pair_of(first, third, weight=11.0)
    pair_of(second, third, weight=20.0, status=PairStatus.DIFFERENT)
    reviewer = steward()

    page = selectors.pair_list(actor=reviewer)
    assert [p.pk for p in page.items] == [high.pk, low.pk]
    assert [p.pk for p in selectors.pair_list(actor=reviewer, run_id=run.pk).items] == [low.pk]
    assert [p.pk for p in selectors.pair_list(actor=reviewer, region="NL").items] == [high.pk]
    assert len(selectors.pair_list(actor=reviewer, status=None).items) == 3
    assert [p.pk for p in selectors.pair_list(actor=reviewer, person_id=second.pk).items] == [
        low.pk
    ]
    # Regional staff see the pairs whose records are all in their region.
    assert [p.pk for p in selectors.pair_list(actor=regional_merger("JC")).items] == [low.pk]
    with pytest.raises(ValidationFailed):
        selectors.pair_list(actor=reviewer, status="nonsense")
    with pytest.raises(ValidationFailed):
        selectors.pair_list(actor=reviewer, region="XX")
    with pytest.raises(PermissionDenied):
        selectors.pair_list(actor=actor(Role.REGISTRAR))
    # Lists are not record reads.
    assert not AccessLogEntry.objects.exists()


def test_a_golden_records_pairs_include_those_of_the_records_merged_into_it() -> None:
    golden = full_record("José")
    merged = full_record("Pepe", birth_date=datetime.date(1980, 5, 7))
    other = PersonFactory.create(given_names="José", birth_date=datetime.date(1980, 5, 8))
    later = pair_of(merged, other)
    merge_persons(actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="x")

    page = selectors.pair_list(actor=steward(), person_id=golden.pk)

    assert [p.pk for p in page.items] == [later.pk]


# --- one pair ----------------------------------------------------------------------------------


def test_a_pair_is_shown_side_by_side_with_its_breakdown_and_the_read_is_logged() -> None:
    golden = full_record("José")
    merged = full_record("Pepe", birth_date=datetime.date(1980, 5, 7), maternal_surname="Lopez")
    pair = pair_of(merged, golden, conflict=True)

    with translation.override("en"):
        view = selectors.pair_get(actor=steward(), pair_id=pair.pk, purpose="duplicate check")

    fields = {row.name: row for row in view.fields}
    assert fields["given_names"].agreement == Agreement.DIFFERS
    assert fields["paternal_surname"].agreement == Agreement.AGREES
    # Cruz on one side is López on the other: the surnames swapped, so close.
    assert fields["maternal_surname"].agreement == Agreement.CLOSE
    assert fields["birth_date"].agreement == Agreement.CLOSE  # day and month swapped
    with translation.override("en"):
        assert fields["sex"].left == ["Male"]
    assert len(fields["nss"].left) == 1
    assert fields["nss"].agreement == Agreement.DIFFERS
    assert [row.comparison for row in view.breakdown] == [
        "given",
        "surnames",
        "birth_date",
        "sex",
        "birth_state",
        "nss",
    ]
    by_name = {row.comparison: row for row in view.breakdown}
    assert by_name["birth_state"].agreement == Agreement.MISSING
    assert by_name["surnames"].agreement == Agreement.AGREES
    assert by_name["nss"].direction == "against"
    assert by_name["nss"].weight == pytest.approx(math.log2(0.01))
    assert view.conflicting  # the NSS comparison is named in the warning
    assert view.bar_maximum == pytest.approx(math.log2(120))
    # Without a model, λ is what the stored total implies.
    assert view.prior is not None
    assert not view.prior.from_model
    assert view.prior.weight == pytest.approx(
        pair.match_weight - sum(row.weight or 0 for row in view.breakdown)
    )
    entries = AccessLogEntry.objects.filter(action="compare")
    assert {e.person_id for e in entries} == {golden.pk, merged.pk}
    assert {e.purpose for e in entries} == {"duplicate check"}


def test_lambda_comes_from_the_runs_model_when_it_has_one() -> None:
    first, second = persons()
    model = LinkageModel.objects.create(
        version=1,
        definition={"splink": {"probability_two_random_records_match": 0.0001}},
        feature_version=1,
        splink_version="5.0.0",
        sha256="0" * 64,
    )
    run = linkage_run()
    run.model = model
    run.save()

    view = selectors.pair_get(actor=steward(), pair_id=pair_of(first, second, run=run).pk)

    assert view.prior is not None
    assert view.prior.from_model
    assert view.prior.probability == 0.0001
    assert view.prior.weight == pytest.approx(math.log2(0.0001 / 0.9999))


def test_a_list_row_is_compared_from_the_row_as_read() -> None:
    person = PersonFactory.create(given_names="María Guadalupe")
    pair = pair_of(
        None,
        person,
        left_row=12,
        left_record={
            "given_names": "MA GUADALUPE",
            "paternal_surname": "HERNANDEZ",
            "maternal_surname": "",
            "birth_date": "1980-05-17",
        },
        run=linkage_run(RunKind.LINK),
    )

    view = selectors.pair_get(actor=steward(), pair_id=pair.pk)

    fields = {row.name: row.agreement for row in view.fields}
    assert fields["given_names"] == Agreement.CLOSE
    assert fields["paternal_surname"] == Agreement.AGREES
    assert fields["maternal_surname"] == Agreement.MISSING
    assert fields["birth_date"] == Agreement.AGREES
    assert not view.can_merge
    assert [e.person_id for e in AccessLogEntry.objects.all()] == [person.pk]


def test_a_pair_outside_the_region_or_unknown_is_not_found() -> None:
    first = PersonFactory.create()
    elsewhere = PersonFactory.create(region="NL")
    pair = pair_of(first, elsewhere)

    with pytest.raises(NotFound):
        selectors.pair_get(actor=regional_merger("JC"), pair_id=pair.pk)
    with pytest.raises(NotFound):
        selectors.pair_get(actor=steward(), pair_id=pair.pk + 50)
    assert not AccessLogEntry.objects.exists()


@pytest.mark.parametrize(
    ("name", "left", "right", "expected"),
    [
        ("given_names", ["José"], ["JOSE"], Agreement.AGREES),
        ("given_names", ["José Luis"], ["Luis"], Agreement.CLOSE),
        ("given_names", ["Guadalupe"], ["Guadalup"], Agreement.CLOSE),
        ("given_names", ["Pedro"], ["Juan"], Agreement.DIFFERS),
        ("given_names", [""], ["Juan"], Agreement.MISSING),
        ("birth_date", ["1980-05-07"], ["1980-07-05"], Agreement.CLOSE),
        ("birth_date", ["1980-05-07"], ["1980-05-12"], Agreement.CLOSE),
        ("birth_date", ["1980-05-07"], ["1990-01-20"], Agreement.DIFFERS),
        ("curp", ["LOCJ800705HJCPRS01"], ["LOCJ800705HJCPRS02"], Agreement.CLOSE),
        ("nss", ["01998000011", "01998000029"], ["01998000029"], Agreement.AGREES),
        ("nss", ["01998000011"], ["01998000029"], Agreement.DIFFERS),
        ("sex", ["F"], ["M"], Agreement.DIFFERS),
    ],
)
def test_field_agreement(name: str, left: list[str], right: list[str], expected: str) -> None:
    assert compare_values(name, left, right) == expected


# --- the person page and search ----------------------------------------------------------------


def test_the_person_page_knows_the_golden_record_the_merged_ones_and_pending_pairs() -> None:
    golden = full_record("José")
    merged = full_record("Pepe", birth_date=datetime.date(1980, 5, 7))
    other = PersonFactory.create(given_names="Josefa")
    pair_of(golden, other)
    merge = merge_persons(actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="x")
    reviewer = steward()

    on_golden = selectors.person_linkage(actor=reviewer, person=Person.objects.get(pk=golden.pk))
    on_merged = selectors.person_linkage(actor=reviewer, person=Person.objects.get(pk=merged.pk))

    assert on_golden.merged_records[0][0].pk == merged.pk
    assert on_golden.merged_records[0][1] == merge
    assert on_golden.pending_pairs == 1
    assert on_merged.merged_into is not None
    assert on_merged.merged_into.pk == golden.pk
    assert on_merged.merge_into == merge
    registrar = actor(Role.REGISTRAR)
    assert selectors.person_linkage(actor=registrar, person=golden).pending_pairs is None


def test_search_hides_merged_records_unless_asked_and_finds_the_golden_by_their_nss() -> None:
    golden = full_record("José")
    merged = full_record("José", birth_date=datetime.date(1980, 5, 7))
    merged_nss = merged.identifiers.get(scheme="NSS").value
    merge_persons(actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="x")
    reviewer = steward()

    found = registry_selectors.person_search(actor=reviewer, query="jose lopez")
    assert [p.id for p in found.items] == [golden.pk]
    found = registry_selectors.person_search(
        actor=reviewer, query="jose lopez", include_merged=True
    )
    assert {p.id for p in found.items} == {golden.pk, merged.pk}
    assert {p.id: p.merged_into_id for p in found.items}[merged.pk] == golden.pk
    by_nss = registry_selectors.person_search(actor=reviewer, query=merged_nss)
    assert [p.id for p in by_nss.items] == [golden.pk]
    # Opening the merged record still works.
    assert registry_selectors.person_get(actor=reviewer, person_id=merged.pk).status == "merged"
