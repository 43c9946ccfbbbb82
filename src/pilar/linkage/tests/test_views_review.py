"""The review screens through Django's test client: the queue and its filters, a pair side by
side with its breakdown (agreement in words, not colour alone), the decision buttons, the merge
form and its refusals, the merge page with its unmerge button, the person page's banner, both
languages, and who may do what."""

from __future__ import annotations

import datetime
import re

import pytest
from django.test import Client
from django.urls import reverse

from pilar.core.models import AccessLogEntry, User
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.linkage.models import Merge, PairStatus
from pilar.linkage.tests.review_helpers import full_record, pair_of, rows_of
from pilar.registry.models import FamilyTie, Person, RecordStatus
from pilar.registry.tests.factories import PersonFactory

pytestmark = pytest.mark.django_db


def signed_in(user: User, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


def steward_client(language: str = "en") -> Client:
    return signed_in(staff(Role.DATA_STEWARD, username=f"steward_{language}"), language)


def two_records() -> tuple[Person, Person]:
    golden = full_record("José")
    merged = full_record("Pepe", birth_date=datetime.date(1980, 5, 7))
    return golden, merged


def text_of(response: object) -> str:
    return re.sub(r"\s+", " ", response.content.decode())  # type: ignore[attr-defined]


# --- the queue ---------------------------------------------------------------------------------


def test_the_queue_lists_pending_pairs_highest_weight_first() -> None:
    golden, merged = two_records()
    other = PersonFactory.create(given_names="Josefa")
    low = pair_of(golden, other, weight=4.25)
    high = pair_of(merged, golden, weight=10.5, conflict=True)
    pair_of(merged, other, weight=30, status=PairStatus.DIFFERENT)

    response = steward_client().get(reverse("linkage:review_queue"))

    assert response.status_code == 200
    page = text_of(response)
    assert page.index(f"/linkage/pairs/{high.pk}/") < page.index(f"/linkage/pairs/{low.pk}/")
    assert "+10.50" in page
    assert "+4.25" in page
    assert "+30.00" not in page
    assert "Identifier conflict" in page
    assert not AccessLogEntry.objects.exists()


def test_the_queue_filters_by_status_region_and_person_and_refuses_nonsense() -> None:
    golden, merged = two_records()
    far = PersonFactory.create(given_names="José", region="NL")
    local = pair_of(merged, golden, weight=8)
    distant = pair_of(golden, far, weight=9)
    decided = pair_of(merged, far, weight=7, status=PairStatus.DIFFERENT)
    client = steward_client()

    by_region = text_of(client.get(reverse("linkage:review_queue"), {"region": "NL"}))
    assert f"/pairs/{distant.pk}/" in by_region
    assert f"/pairs/{local.pk}/" not in by_region
    decided_page = text_of(client.get(reverse("linkage:review_queue"), {"status": "different"}))
    assert f"/pairs/{decided.pk}/" in decided_page
    assert f"/pairs/{local.pk}/" not in decided_page
    everything = text_of(client.get(reverse("linkage:review_queue"), {"status": "all"}))
    assert all(f"/pairs/{p.pk}/" in everything for p in (local, distant, decided))
    of_person = text_of(client.get(reverse("linkage:review_queue"), {"person": far.pk}))
    assert f"/pairs/{distant.pk}/" in of_person
    assert f"/pairs/{local.pk}/" not in of_person
    nonsense = client.get(reverse("linkage:review_queue"), {"status": "maybe", "region": "ZZ"})
    assert nonsense.status_code == 422
    assert "There is a problem" in nonsense.content.decode()


def test_only_those_with_the_linkage_permission_open_the_review_screens() -> None:
    golden, merged = two_records()
    pair = pair_of(merged, golden)
    client = signed_in(staff(Role.REGISTRAR))

    assert client.get(reverse("linkage:review_queue")).status_code == 403
    assert client.get(reverse("linkage:pair_detail", args=[pair.pk])).status_code == 403
    assert client.get(reverse("linkage:merge_list")).status_code == 403
    assert Client().get(reverse("linkage:review_queue")).status_code == 302


# --- a pair ------------------------------------------------------------------------------------


def test_the_pair_page_compares_the_records_and_explains_the_weight() -> None:
    golden, merged = two_records()
    pair = pair_of(merged, golden, conflict=True)

    response = steward_client().get(reverse("linkage:pair_detail", args=[pair.pk]))

    assert response.status_code == 200
    page = text_of(response)
    # Each field says in words whether it agrees; the symbol is decoration.
    assert re.search(r'data-field="paternal_surname" data-agreement="agrees"', page)
    assert re.search(r'data-field="given_names" data-agreement="differs"', page)
    assert re.search(r'data-field="birth_date" data-agreement="close"', page)
    assert "Agrees" in page
    assert "Close" in page
    assert "Differs" in page
    # The breakdown: the level, the Bayes factor, the partial weight, a bar, λ and the total.
    assert "day and month exchanged" in page or "Day and month swapped" in page
    assert "× 120" in page
    assert "÷ 100" in page
    assert "+6.91" in page  # log2(120)
    assert "<meter" in page
    assert "Prior (λ)" in page
    assert f"{pair.match_weight:+.2f}" in page
    assert "The identifiers disagree" in page
    assert "Same person → merge" in page
    assert {e.person_id for e in AccessLogEntry.objects.filter(action="compare")} == {
        golden.pk,
        merged.pk,
    }


def test_the_pair_page_speaks_spanish() -> None:
    golden, merged = two_records()
    pair = pair_of(merged, golden)

    page = text_of(steward_client("es").get(reverse("linkage:pair_detail", args=[pair.pk])))

    assert "Los dos registros lado a lado" in page
    assert "Coincide" in page
    assert "Misma persona → fusionar" in page
    assert "Factor de Bayes" in page


def test_deciding_different_and_skip_from_the_pair_page() -> None:
    golden, merged = two_records()
    different = pair_of(merged, golden)
    skipped = pair_of(golden, PersonFactory.create(given_names="Josefa"))
    client = steward_client()

    response = client.post(
        reverse("linkage:pair_decide", args=[different.pk]),
        {"decide-decision": "different", "decide-note": "Father and son"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("linkage:review_queue")
    different.refresh_from_db()
    assert different.status == PairStatus.DIFFERENT
    assert different.decision_note == "Father and son"
    client.post(reverse("linkage:pair_decide", args=[skipped.pk]), {"decide-decision": "skip"})
    skipped.refresh_from_db()
    assert skipped.status == PairStatus.SKIPPED

    # Deciding again is refused with a message, not an error page.
    again = client.post(
        reverse("linkage:pair_decide", args=[different.pk]),
        {"decide-decision": "skip"},
        follow=True,
    )
    assert "already been decided" in again.content.decode()
    different.refresh_from_db()
    assert different.status == PairStatus.DIFFERENT


def test_a_decided_pair_is_reopened_with_a_reason() -> None:
    golden, merged = two_records()
    pair = pair_of(merged, golden, status=PairStatus.DIFFERENT)
    client = steward_client()

    missing = client.post(reverse("linkage:pair_reopen", args=[pair.pk]), {"reopen-reason": ""})
    assert missing.status_code == 422
    assert "Say why the decision is reopened." in missing.content.decode()
    pair.refresh_from_db()
    assert pair.status == PairStatus.DIFFERENT

    client.post(reverse("linkage:pair_reopen", args=[pair.pk]), {"reopen-reason": "Typo in NSS"})
    pair.refresh_from_db()
    assert pair.status == PairStatus.PENDING


# --- merging -----------------------------------------------------------------------------------


def test_the_merge_form_offers_the_fields_that_differ_and_merges() -> None:
    golden, merged = two_records()
    pair = pair_of(merged, golden)
    client = steward_client()

    form = text_of(client.get(reverse("linkage:pair_merge", args=[pair.pk])))
    assert 'name="value_given_names"' in form
    assert 'name="value_birth_date"' in form
    assert 'name="value_paternal_surname"' not in form  # the same on both
    assert f"Record {golden.pk}: José López Cruz" in form

    response = client.post(
        reverse("linkage:pair_merge", args=[pair.pk]),
        {
            "golden": golden.pk,
            "value_given_names": golden.pk,
            "value_birth_date": merged.pk,
            "reason": "Same CURP stem; birth certificate seen",
        },
    )

    merge = Merge.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("linkage:merge_detail", args=[merge.pk])
    assert (merge.golden_id, merge.merged_id, merge.pair_id) == (golden.pk, merged.pk, pair.pk)
    golden.refresh_from_db()
    assert golden.birth_date == datetime.date(1980, 5, 7)
    assert golden.given_names == "José"
    pair.refresh_from_db()
    assert pair.status == PairStatus.SAME


def test_a_merge_without_reason_or_with_conflicts_shows_the_problem_and_changes_nothing() -> None:
    golden, merged = two_records()
    pair = pair_of(merged, golden)
    tie = FamilyTie.objects.create(person=merged, relative=golden, relation="spouse")
    client = steward_client()
    url = reverse("linkage:pair_merge", args=[pair.pk])

    missing = client.post(url, {"golden": golden.pk, "reason": ""})
    assert missing.status_code == 422
    assert "Say why the two records are one person." in missing.content.decode()
    refused = client.post(url, {"golden": golden.pk, "reason": "same"})
    assert refused.status_code == 422
    assert f"row {tie.pk}" in refused.content.decode()
    wrong_golden = client.post(url, {"golden": 999999, "reason": "same"})
    assert wrong_golden.status_code == 422
    assert not Merge.objects.exists()
    assert Person.objects.get(pk=merged.pk).status == RecordStatus.ACTIVE


def test_the_merge_page_lists_what_moved_and_the_unmerge_button_puts_it_back() -> None:
    golden, merged = two_records()
    before = rows_of(merged.pk)
    pair = pair_of(merged, golden)
    client = steward_client()
    client.post(
        reverse("linkage:pair_merge", args=[pair.pk]),
        {
            "golden": golden.pk,
            "value_given_names": golden.pk,
            "value_birth_date": golden.pk,
            "reason": "same",
        },
    )
    merge = Merge.objects.get()

    page = text_of(client.get(reverse("linkage:merge_detail", args=[merge.pk])))
    assert "Identifiers" in page or "identifiers" in page
    assert 'data-key="registry.Employment.person"' in page
    assert "Undo the merge" in page
    assert "The golden record kept all its own values." in page

    missing = client.post(reverse("linkage:merge_unmerge", args=[merge.pk]), {"unmerge-reason": ""})
    assert missing.status_code == 422
    assert Person.objects.get(pk=merged.pk).status == RecordStatus.MERGED

    done = client.post(
        reverse("linkage:merge_unmerge", args=[merge.pk]),
        {"unmerge-reason": "Two persons"},
        follow=True,
    )
    assert "The merge has been undone" in done.content.decode()
    assert rows_of(merged.pk) == before
    assert Person.objects.get(pk=merged.pk).status == RecordStatus.ACTIVE
    listing = text_of(client.get(reverse("linkage:merge_list")))
    assert f"/linkage/merges/{merge.pk}/" in listing
    assert "Undone" in listing


def test_the_person_page_shows_the_merge_banner_on_both_records() -> None:
    golden, merged = two_records()
    pair = pair_of(golden, PersonFactory.create(given_names="Josefa"))
    client = steward_client()
    client.post(
        reverse("linkage:pair_merge", args=[pair_of(merged, golden).pk]),
        {
            "golden": golden.pk,
            "value_given_names": golden.pk,
            "value_birth_date": golden.pk,
            "reason": "same",
        },
    )

    merged_page = text_of(client.get(reverse("registry:person_detail", args=[merged.pk])))
    golden_page = text_of(client.get(reverse("registry:person_detail", args=[golden.pk])))

    assert "This record has been merged" in merged_page
    assert reverse("registry:person_detail", args=[golden.pk]) in merged_page
    assert "This record holds merged records" in golden_page
    assert f"Record {merged.pk}: Pepe López Cruz" in golden_page
    assert f"{reverse('linkage:review_queue')}?person={golden.pk}" in golden_page
    assert "1 possible duplicate of this record awaits review" in golden_page
    assert pair.status == PairStatus.PENDING
    # The golden record shows both records' identifiers.
    assert golden_page.count("<code>") >= 4


def test_a_list_row_pair_is_decided_same_without_a_merge() -> None:
    person = PersonFactory.create()
    pair = pair_of(None, person, left_row=3, left_record={"given_names": "MARIA GUADALUPE"})
    client = steward_client()

    page = text_of(client.get(reverse("linkage:pair_detail", args=[pair.pk])))
    assert "List row 3" in page
    assert "Same person → merge" not in page
    assert client.get(reverse("linkage:pair_merge", args=[pair.pk])).status_code == 302
    client.post(reverse("linkage:pair_decide", args=[pair.pk]), {"decide-decision": "same"})
    pair.refresh_from_db()
    assert pair.status == PairStatus.SAME
