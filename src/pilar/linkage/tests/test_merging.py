"""Merging two records of one person into the golden record and undoing it: every dependent row
moves and comes back, nothing is ever lost, conflicts are refused by name, chains stay
reachable, and every step is audited on both records."""

from __future__ import annotations

import datetime
import itertools
from typing import Any

import pytest
from django.utils import translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pilar.core.actor import Actor
from pilar.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from pilar.core.identifiers import CURP, NSS
from pilar.core.models import AuditEvent
from pilar.core.roles import Role
from pilar.core.tests.factories import actor, staff
from pilar.linkage import merging
from pilar.linkage.merging import MergeRefused, merge_persons, unmerge
from pilar.linkage.models import MatchKey, Merge, PairStatus
from pilar.linkage.tests.review_helpers import (
    claim_with_award,
    contribution,
    full_record,
    pair_of,
    regional_merger,
    rows_of,
    steward,
    table_counts,
)
from pilar.registry.models import (
    Employment,
    Enrolment,
    FamilyTie,
    Identifier,
    Person,
    RecordStatus,
)
from pilar.registry.tests.factories import EmployerFactory, PersonFactory, ProgrammeFactory

pytestmark = pytest.mark.django_db


def two_records(**second: Any) -> tuple[Person, Person]:
    officer = staff(Role.BENEFITS_OFFICER)
    golden = full_record("José", award_officer=officer)
    merged = full_record(
        second.pop("given_names", "Pepe"),
        birth_date=second.pop("birth_date", datetime.date(1980, 5, 7)),
        **second,
    )
    return golden, merged


def refreshed(person: Person) -> Person:
    return Person.objects.get(pk=person.pk)


# --- what moves --------------------------------------------------------------------------------


def test_every_dependent_table_is_found_and_the_history_tables_are_not() -> None:
    keys = {d.key for d in merging.dependents()}

    assert {
        "registry.Identifier.person",
        "registry.Address.person",
        "registry.Contact.person",
        "registry.FamilyTie.person",
        "registry.FamilyTie.relative",
        "registry.Employment.person",
        "registry.Enrolment.person",
        "registry.Person.merged_into",
        "contributions.ContributionRecord.person",
        "contributions.DeclarationLine.person",
        "benefits.Claim.person",
        "benefits.Award.person",
    } <= keys
    assert not keys & set(merging.NOT_MOVED)


def test_a_merge_moves_every_dependent_row_to_the_golden_record_and_keeps_the_merged_one() -> None:
    golden, merged = two_records()
    before_golden, before_merged = rows_of(golden.pk), rows_of(merged.pk)
    counts = table_counts()
    nss_values = set(Identifier.objects.filter(scheme=NSS).values_list("value", flat=True))

    merge = merge_persons(
        actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="Same CURP stem"
    )

    after = rows_of(golden.pk)
    for key, ids in before_merged.items():
        assert ids <= after[key], key
        assert set(merge.moved[key]) == ids
    for key, ids in before_golden.items():
        assert ids <= after[key], key
    assert rows_of(merged.pk) == {}
    assert table_counts() == counts
    merged = refreshed(merged)
    assert merged.status == RecordStatus.MERGED
    assert merged.merged_into_id == golden.pk
    assert merged.version == 2
    assert refreshed(golden).version == 2
    # Both NSS (the classic IMSS duplicate) and both CURPs stay active on the golden record.
    held = Identifier.objects.filter(person=golden, is_active=True)
    assert set(held.filter(scheme=NSS).values_list("value", flat=True)) == nss_values
    assert held.filter(scheme=CURP).count() == 2
    assert merge.golden_before["given_names"] == "José"
    assert merge.merged_before["status"] == "active"


def test_a_merge_is_audited_on_both_records_with_what_moved() -> None:
    golden, merged = two_records()

    merge = merge_persons(
        actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="Same person"
    )

    events = AuditEvent.objects.filter(action="person.merge", entity_id=str(merge.pk))
    assert {e.person_id for e in events} == {golden.pk, merged.pk}
    assert all(e.entity_type == "linkage.merge" and e.note == "Same person" for e in events)
    on_merged = events.get(person_id=merged.pk)
    assert on_merged.changes["status"] == ["active", "merged"]
    assert on_merged.changes["merged_into"] == [None, golden.pk]
    on_golden = events.get(person_id=golden.pk)
    assert on_golden.changes["merged_record"] == [None, merged.pk]
    assert on_golden.changes["moved.registry.Identifier.person"] == [None, 2]


def test_the_golden_record_takes_the_chosen_values_and_an_unmerge_gives_them_back() -> None:
    golden, merged = two_records()

    merge = merge_persons(
        actor=steward(),
        golden_id=golden.pk,
        merged_id=merged.pk,
        reason="The birth certificate says 7 May",
        take_from_merged={"birth_date", "given_names"},
    )

    after = refreshed(golden)
    assert after.birth_date == datetime.date(1980, 5, 7)
    assert after.given_names == "Pepe"
    assert after.normalized_name == "LOPEZ CRUZ PEPE"
    assert merge.golden_before["birth_date"] == "1980-07-05"
    assert merge.golden_before["taken_from_merged"] == {
        "birth_date": "1980-05-07",
        "given_names": "Pepe",
    }
    event = AuditEvent.objects.get(action="person.merge", person_id=golden.pk)
    assert event.changes["birth_date"] == ["1980-07-05", "1980-05-07"]

    unmerge(actor=steward(), merge_id=merge.pk, reason="Two people after all")

    restored = refreshed(golden)
    assert restored.birth_date == datetime.date(1980, 7, 5)
    assert restored.given_names == "José"
    assert restored.normalized_name == "LOPEZ CRUZ JOSE"
    assert restored.version == 3


def test_a_field_corrected_after_the_merge_is_kept_by_the_unmerge() -> None:
    golden, merged = two_records()
    merge = merge_persons(
        actor=steward(),
        golden_id=golden.pk,
        merged_id=merged.pk,
        reason="Same person",
        take_from_merged={"given_names"},
    )
    Person.objects.filter(pk=golden.pk).update(given_names="José Luis")

    result = unmerge(actor=steward(), merge_id=merge.pk, reason="Wrong merge")

    assert refreshed(golden).given_names == "José Luis"
    assert result.kept_fields == ["given_names"]
    event = AuditEvent.objects.get(action="person.unmerge", person_id=golden.pk)
    assert "given_names" in event.note


# --- unmerge -----------------------------------------------------------------------------------


def test_an_unmerge_puts_every_moved_row_back_and_rows_added_since_stay_on_the_golden_record() -> (
    None
):
    golden, merged = two_records()
    before_golden, before_merged = rows_of(golden.pk), rows_of(merged.pk)
    pair = pair_of(merged, golden)
    merge = merge_persons(
        actor=steward(),
        golden_id=golden.pk,
        merged_id=merged.pk,
        reason="Same person",
        pair_id=pair.pk,
    )
    added = Employment.objects.create(
        person=golden, employer=EmployerFactory.create(), start_date=datetime.date(2024, 1, 1)
    )

    result = unmerge(actor=steward(), merge_id=merge.pk, reason="Father and son")

    assert rows_of(merged.pk) == before_merged
    after_golden = rows_of(golden.pk)
    assert after_golden["registry.Employment.person"] == (
        before_golden["registry.Employment.person"] | {added.pk}
    )
    assert {k: v for k, v in after_golden.items() if k != "registry.Employment.person"} == {
        k: v for k, v in before_golden.items() if k != "registry.Employment.person"
    }
    merged = refreshed(merged)
    assert merged.status == RecordStatus.ACTIVE
    assert merged.merged_into_id is None
    assert merged.version == 3
    merge.refresh_from_db()
    assert merge.unmerged_at is not None
    assert merge.unmerge_reason == "Father and son"
    assert merge.moved  # the record of what moved is kept
    assert result.not_returned == {}
    # The "same person" decision is withdrawn: the pair is back in the queue.
    pair.refresh_from_db()
    assert pair.status == PairStatus.PENDING
    events = AuditEvent.objects.filter(action="person.unmerge", entity_id=str(merge.pk))
    assert {e.person_id for e in events} == {golden.pk, merged.pk}
    assert AuditEvent.objects.filter(action="linkage.pair.reopen", entity_id=str(pair.pk)).count()


def test_an_unmerge_cannot_be_done_twice() -> None:
    golden, merged = two_records()
    merge = merge_persons(actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="x")
    unmerge(actor=steward(), merge_id=merge.pk, reason="Wrong")

    with pytest.raises(Conflict) as caught:
        unmerge(actor=steward(), merge_id=merge.pk, reason="Again")

    assert caught.value.code == "linkage.already_unmerged"


def test_an_unmerge_needs_a_reason_and_an_existing_merge() -> None:
    golden, merged = two_records()
    merge = merge_persons(actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="x")

    with pytest.raises(ValidationFailed) as caught:
        unmerge(actor=steward(), merge_id=merge.pk, reason="  ")
    assert "reason" in caught.value.field_errors
    with pytest.raises(NotFound):
        unmerge(actor=steward(), merge_id=merge.pk + 1000, reason="Wrong")
    assert refreshed(merged).status == RecordStatus.MERGED


# --- chains ------------------------------------------------------------------------------------


def test_a_chain_of_merges_keeps_the_first_records_rows_reachable_and_unwinds_in_order() -> None:
    first = full_record("Juan", birth_date=datetime.date(1975, 3, 3))
    second = full_record("Juan", birth_date=datetime.date(1975, 3, 3), paternal_surname="Lopes")
    third = full_record("Juan", birth_date=datetime.date(1975, 3, 3), maternal_surname="Crus")
    rows = {p.pk: rows_of(p.pk) for p in (first, second, third)}
    a_into_b = merge_persons(actor=steward(), golden_id=second.pk, merged_id=first.pk, reason="1")

    b_into_c = merge_persons(actor=steward(), golden_id=third.pk, merged_id=second.pk, reason="2")

    assert refreshed(first).merged_into_id == third.pk
    assert b_into_c.moved["registry.Person.merged_into"] == [first.pk]
    on_third = rows_of(third.pk)
    for key, ids in rows[first.pk].items():
        assert ids <= on_third[key]
    # The first merge's rows are on the third record now: undo the second merge first.
    with pytest.raises(Conflict) as caught:
        unmerge(actor=steward(), merge_id=a_into_b.pk, reason="wrong")
    assert caught.value.code == "linkage.unmerge_order"
    assert caught.value.extra["golden_id"] == third.pk

    unmerge(actor=steward(), merge_id=b_into_c.pk, reason="wrong")
    assert refreshed(first).merged_into_id == second.pk
    unmerge(actor=steward(), merge_id=a_into_b.pk, reason="wrong")

    for person in (first, second, third):
        assert rows_of(person.pk) == rows[person.pk]
        assert refreshed(person).status == RecordStatus.ACTIVE


def test_merging_into_a_merged_record_names_the_record_to_merge_into() -> None:
    first, second = two_records()
    third = full_record("José", birth_date=datetime.date(1980, 7, 6))
    merge_persons(actor=steward(), golden_id=second.pk, merged_id=first.pk, reason="same")

    with pytest.raises(Conflict) as caught:
        merge_persons(actor=steward(), golden_id=first.pk, merged_id=third.pk, reason="same")

    assert caught.value.code == "linkage.golden_merged"
    assert caught.value.extra["golden_id"] == second.pk
    assert str(second.pk) in str(caught.value.message)


# --- refusals ----------------------------------------------------------------------------------


def _nothing_changed(golden: Person, merged: Person, rows: dict[int, Any]) -> None:
    assert rows_of(golden.pk) == rows[golden.pk]
    assert rows_of(merged.pk) == rows[merged.pk]
    assert refreshed(merged).status == RecordStatus.ACTIVE
    assert refreshed(golden).version == 1
    assert not Merge.objects.exists()
    assert not AuditEvent.objects.filter(action="person.merge").exists()


def test_a_record_is_not_merged_into_itself() -> None:
    golden, _merged = two_records()

    with pytest.raises(ValidationFailed) as caught:
        merge_persons(actor=steward(), golden_id=golden.pk, merged_id=golden.pk, reason="x")

    assert caught.value.field_errors["merged_id"][0].code == "merge.same_record"


def test_bad_input_is_refused_field_by_field_and_changes_nothing() -> None:
    golden, merged = two_records()
    rows = {golden.pk: rows_of(golden.pk), merged.pk: rows_of(merged.pk)}

    with pytest.raises(ValidationFailed) as caught:
        merge_persons(
            actor=steward(),
            golden_id=golden.pk,
            merged_id=merged.pk,
            reason="",
            take_from_merged={"salary", "given_names"},
        )

    errors = caught.value.field_errors
    assert errors["reason"][0].code == "required"
    assert errors["take_from_merged"][0].code == "field.unknown"
    assert "salary" in str(errors["take_from_merged"][0].message)
    _nothing_changed(golden, merged, rows)


def test_values_that_do_not_fit_together_are_refused() -> None:
    golden, merged = two_records()
    Person.objects.filter(pk=golden.pk).update(death_date=datetime.date(1980, 12, 1))
    Person.objects.filter(pk=merged.pk).update(birth_date=datetime.date(1981, 1, 1))
    rows = {golden.pk: rows_of(golden.pk), merged.pk: rows_of(merged.pk)}

    with pytest.raises(ValidationFailed) as caught:
        merge_persons(
            actor=steward(),
            golden_id=golden.pk,
            merged_id=merged.pk,
            reason="x",
            take_from_merged={"birth_date"},
        )

    assert "death_date" in caught.value.field_errors
    _nothing_changed(golden, merged, rows)


def test_a_record_already_merged_is_refused() -> None:
    golden, merged = two_records()
    other = full_record("José", birth_date=datetime.date(1980, 7, 6))
    merge_persons(actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="x")

    with pytest.raises(Conflict) as caught:
        merge_persons(actor=steward(), golden_id=other.pk, merged_id=merged.pk, reason="x")

    assert caught.value.code == "linkage.already_merged"
    assert caught.value.extra["golden_id"] == golden.pk


def test_two_records_linked_by_a_family_tie_are_not_merged() -> None:
    golden, merged = two_records()
    tie = FamilyTie.objects.create(person=golden, relative=merged, relation="child")
    rows = {golden.pk: rows_of(golden.pk), merged.pk: rows_of(merged.pk)}

    with pytest.raises(MergeRefused) as caught, translation.override("en"):
        merge_persons(actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="x")

    conflicts = caught.value.extra["conflicts"]
    assert [c["code"] for c in conflicts] == ["merge.records_linked"]
    assert conflicts[0]["rows"] == {"registry.FamilyTie.relative": [tie.pk]}
    assert f"row {tie.pk}" in str(caught.value.message)
    _nothing_changed(golden, merged, rows)


def test_two_current_enrolments_in_one_programme_are_named_and_refused() -> None:
    programme = ProgrammeFactory.create(code="BIENESTAR")
    golden = full_record("José", programme=programme)
    merged = full_record("Pepe", programme=programme, birth_date=datetime.date(1980, 5, 7))
    rows = {golden.pk: rows_of(golden.pk), merged.pk: rows_of(merged.pk)}

    with pytest.raises(MergeRefused) as caught:
        merge_persons(actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="x")

    (conflict,) = caught.value.extra["conflicts"]
    assert conflict["code"] == "merge.same_programme"
    assert "BIENESTAR" in conflict["message"]
    assert set(conflict["rows"]["registry.Enrolment.person"]) == set(
        Enrolment.objects.filter(programme=programme).values_list("pk", flat=True)
    )
    _nothing_changed(golden, merged, rows)

    # Once one enrolment has ended, the merge goes through and keeps both enrolments.
    Enrolment.objects.filter(person=merged).update(status="ended")
    merge_persons(actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="x")
    assert Enrolment.objects.filter(person=golden, programme=programme).count() == 2


def test_open_claims_for_the_same_benefit_and_overlapping_contributions_are_refused() -> None:
    officer = staff(Role.BENEFITS_OFFICER)
    golden, merged = two_records()
    claim_with_award(merged, officer)  # the golden record has one for the same benefit
    employer = EmployerFactory.create()
    month = datetime.date(2001, 3, 1)
    contribution(golden, employer, month)
    contribution(merged, employer, month)
    rows = {golden.pk: rows_of(golden.pk), merged.pk: rows_of(merged.pk)}

    with pytest.raises(MergeRefused) as caught:
        merge_persons(actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="x")

    codes = {c["code"] for c in caught.value.extra["conflicts"]}
    assert codes == {"merge.open_claims", "merge.contributions_overlap"}
    assert caught.value.status == 409
    _nothing_changed(golden, merged, rows)


def test_only_stewards_merge_and_only_records_they_may_see() -> None:
    golden, merged = two_records()

    with pytest.raises(PermissionDenied):
        merge_persons(
            actor=actor(Role.REGISTRAR), golden_id=golden.pk, merged_id=merged.pk, reason="x"
        )
    elsewhere = full_record("José", region="NL", birth_date=datetime.date(1980, 7, 8))
    with pytest.raises(NotFound):
        merge_persons(
            actor=regional_merger("JC"), golden_id=golden.pk, merged_id=elsewhere.pk, reason="x"
        )
    with pytest.raises(PermissionDenied):
        merge_persons(
            actor=Actor.system("script", roles=frozenset({Role.DATA_STEWARD})),
            golden_id=golden.pk,
            merged_id=merged.pk,
            reason="x",
        )
    assert not Merge.objects.exists()
    # Within the region, the regional actor may merge.
    merge_persons(actor=regional_merger("JC"), golden_id=golden.pk, merged_id=merged.pk, reason="x")
    assert refreshed(merged).status == RecordStatus.MERGED


# --- pairs -------------------------------------------------------------------------------------


def test_a_merge_from_a_pair_decides_the_pair() -> None:
    golden, merged = two_records()
    pair = pair_of(golden, merged)
    reviewer = steward()

    merge = merge_persons(
        actor=reviewer, golden_id=golden.pk, merged_id=merged.pk, reason="Same", pair_id=pair.pk
    )

    pair.refresh_from_db()
    assert merge.pair_id == pair.pk
    assert pair.status == PairStatus.SAME
    assert pair.decided_by == reviewer.user
    assert pair.decision_note == "Same"
    decided = AuditEvent.objects.filter(action="linkage.pair.decide", entity_id=str(pair.pk))
    assert {e.person_id for e in decided} == {golden.pk, merged.pk}


def test_a_pair_of_other_records_or_decided_different_is_refused() -> None:
    golden, merged = two_records()
    stranger = PersonFactory.create(given_names="Otro")
    wrong = pair_of(golden, stranger)
    different = pair_of(golden, merged, status=PairStatus.DIFFERENT)

    with pytest.raises(ValidationFailed) as caught:
        merge_persons(
            actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="x", pair_id=wrong.pk
        )
    assert caught.value.field_errors["pair_id"][0].code == "merge.pair_mismatch"
    with pytest.raises(Conflict) as refused:
        merge_persons(
            actor=steward(),
            golden_id=golden.pk,
            merged_id=merged.pk,
            reason="x",
            pair_id=different.pk,
        )
    assert refused.value.code == "linkage.pair_decided"
    assert not Merge.objects.exists()


def test_match_keys_follow_the_merge() -> None:
    from pilar.linkage import entry

    golden, merged = two_records()
    entry.refresh_match_keys([golden.pk, merged.pk])
    assert MatchKey.objects.filter(person_id__in=(golden.pk, merged.pk)).count() == 2

    merge = merge_persons(actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="x")

    # A merged record is no candidate at the point of entry any more.
    assert not MatchKey.objects.filter(person_id=merged.pk).exists()
    assert MatchKey.objects.filter(person_id=golden.pk).exists()
    unmerge(actor=steward(), merge_id=merge.pk, reason="wrong")
    assert MatchKey.objects.filter(person_id=merged.pk).exists()


# --- the property: merge + unmerge is the identity on every table ------------------------------

# Examples share the test's database; each gets its own birth dates, so its CURPs are new.
_example_days = itertools.count(1)
_FIELDS = st.sets(st.sampled_from(["given_names", "birth_date", "sex", "maternal_surname"]))


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    golden_contributions=st.integers(min_value=0, max_value=3),
    merged_contributions=st.integers(min_value=0, max_value=3),
    award_on=st.sampled_from(["golden", "merged", "none"]),
    shared_relative=st.booleans(),
    take=_FIELDS,
    golden_is_older=st.booleans(),
)
def test_merge_then_unmerge_puts_every_row_of_every_table_back(
    golden_contributions: int,
    merged_contributions: int,
    award_on: str,
    shared_relative: bool,
    take: set[str],
    golden_is_older: bool,
) -> None:
    officer = staff(Role.BENEFITS_OFFICER)
    relative = PersonFactory.create(given_names="Lucía", birth_date=datetime.date(2012, 2, 2))
    day = datetime.date(1960, 1, 1) + datetime.timedelta(days=40 * next(_example_days))
    one = full_record(
        "José",
        birth_date=day,
        contributions=golden_contributions,
        award_officer=officer if award_on == "golden" else None,
        relative=relative if shared_relative else None,
    )
    two = full_record(
        "Pepe",
        birth_date=day + datetime.timedelta(days=3),
        contributions=merged_contributions,
        award_officer=officer if award_on == "merged" else None,
        relative=relative if shared_relative else None,
    )
    golden, merged = (one, two) if golden_is_older else (two, one)
    before = {p.pk: rows_of(p.pk) for p in (golden, merged)}
    fields_before = {
        p.pk: {name: getattr(p, name) for name in merging.MERGEABLE_FIELDS}
        for p in (golden, merged)
    }
    counts = table_counts()
    reviewer = steward()

    merge = merge_persons(
        actor=reviewer,
        golden_id=golden.pk,
        merged_id=merged.pk,
        reason="property",
        take_from_merged=take,
    )
    assert table_counts() == counts
    assert rows_of(merged.pk) == {}
    # Every row of both is on the golden record, and the merged record itself points there.
    assert sum(len(ids) for ids in rows_of(golden.pk).values()) == 1 + sum(
        len(ids) for person_rows in before.values() for ids in person_rows.values()
    )

    unmerge(actor=reviewer, merge_id=merge.pk, reason="property")

    assert table_counts() == counts
    for person in (golden, merged):
        assert rows_of(person.pk) == before[person.pk]
        now = refreshed(person)
        assert {name: getattr(now, name) for name in merging.MERGEABLE_FIELDS} == fields_before[
            person.pk
        ]
        assert now.status == RecordStatus.ACTIVE
        assert now.version == 3
    for action in ("person.merge", "person.unmerge"):
        assert {
            e.person_id for e in AuditEvent.objects.filter(action=action, entity_id=str(merge.pk))
        } == {golden.pk, merged.pk}


def test_a_merged_record_refuses_changes_and_names_its_golden_record() -> None:
    from pilar.registry.services import MergedRecord, person_update

    golden, merged = two_records()
    merge_persons(actor=steward(), golden_id=golden.pk, merged_id=merged.pk, reason="Same person")
    before = refreshed(merged)

    with pytest.raises(MergedRecord) as refused:
        person_update(actor=steward(), person_id=merged.pk, changes={"given_names": "Pepe"})

    assert refused.value.extra["golden_id"] == golden.pk
    after = refreshed(merged)
    assert (after.given_names, after.version) == (before.given_names, before.version)
