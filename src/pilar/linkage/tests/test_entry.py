"""Point of entry: match keys kept current, rebuilt in bulk, and the indexed candidate search
catching each kind of error a second registration of one person carries. Real database
(SQLite or PostgreSQL), real features and the built-in default model (or a stored one)."""

from __future__ import annotations

import datetime
import random
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from pilar.core.actor import Actor
from pilar.core.errors import PermissionDenied, ValidationFailed
from pilar.core.identifiers import CURP, NSS, curp_complete, curp_stem
from pilar.core.roles import Role
from pilar.core.tests.factories import actor
from pilar.linkage import entry
from pilar.linkage.features import FEATURE_VERSION, record_features
from pilar.linkage.model import DEFAULT_MODEL, model_document
from pilar.linkage.models import LinkageModel, MatchKey
from pilar.registry import services
from pilar.registry.models import Identifier, Person, RecordStatus
from pilar.registry.seeding.errors import make_duplicate
from pilar.registry.tests.factories import PersonFactory, valid_nss
from pilar.registry.validation import IdentifierData, PersonData

pytestmark = pytest.mark.django_db

ORIGINAL: dict[str, Any] = {
    "given_names": "María Guadalupe",
    "paternal_surname": "Hernández",
    "maternal_surname": "López",
    "sex": "F",
    "birth_date": datetime.date(1980, 5, 7),
    "birth_state": "JC",
    "region": "JC",
}


@pytest.fixture
def registrar() -> Actor:
    return actor(Role.REGISTRAR, region="JC")


def curp_for(values: dict[str, Any], homonymy: int = 0) -> str:
    stem = curp_stem(
        given_names=values["given_names"],
        paternal_surname=values["paternal_surname"],
        maternal_surname=values["maternal_surname"],
        birth_date=values["birth_date"],
        sex=values["sex"],
        birth_state=values["birth_state"],
    )
    return curp_complete(stem, values["birth_date"], homonymy)


def register(
    registrar: Actor, *, with_curp: bool = True, nss: str | None = None, **overrides: Any
) -> Person:
    values = {**ORIGINAL, **overrides}
    identifiers = []
    if with_curp:
        identifiers.append(IdentifierData(CURP, curp_for(values)))
    if nss:
        identifiers.append(IdentifierData(NSS, nss))
    return services.person_register(
        actor=registrar,
        data=PersonData(**values),
        identifiers=identifiers,
        acknowledge_possible_duplicate=True,
    )


def record(**overrides: Any) -> dict[str, Any]:
    values = {**ORIGINAL, **overrides}
    return entry.record_input(values, curp=overrides.get("curp"), nss=overrides.get("nss"))


def found_ids(**overrides: Any) -> list[int]:
    return [candidate.person_id for candidate in entry.find_candidates(record(**overrides))]


# --- match keys -------------------------------------------------------------------------------


def test_registration_writes_the_match_key_with_the_records_features(registrar: Actor) -> None:
    person = register(registrar, nss=valid_nss())

    key = MatchKey.objects.get(person=person)
    curp = person.identifiers.get(scheme=CURP).value
    nss = person.identifiers.get(scheme=NSS).value
    expected = record_features(
        entry.record_input({**ORIGINAL, "id": person.pk}, curp=curp, nss=nss)
    )
    assert key.features == expected
    assert key.feature_version == FEATURE_VERSION
    assert (key.curp, key.nss) == (curp, nss)
    assert key.derived_stem == curp[:16]
    assert key.surnames_sorted == "HERNANDEZ LOPEZ"
    assert key.birth_date == ORIGINAL["birth_date"]


def test_the_key_follows_changes_to_names_and_identifiers(registrar: Actor) -> None:
    person = register(registrar, with_curp=False)
    assert MatchKey.objects.get(person=person).curp == ""

    services.person_update(
        actor=registrar, person_id=person.pk, changes={"maternal_surname": "Ibarra"}
    )
    assert MatchKey.objects.get(person=person).surnames_sorted == "HERNANDEZ IBARRA"

    curp = curp_for({**ORIGINAL, "maternal_surname": "Ibarra"})
    identifier = services.identifier_add(
        actor=registrar, person_id=person.pk, data=IdentifierData(CURP, curp)
    )
    assert MatchKey.objects.get(person=person).curp == curp

    services.identifier_deactivate(actor=registrar, identifier_id=identifier.pk, reason="wrong")
    key = MatchKey.objects.get(person=person)
    assert key.curp == ""
    assert key.features["curp"] is None


def test_merged_and_inactive_persons_lose_their_key_and_are_not_offered(
    registrar: Actor,
) -> None:
    golden = register(registrar)
    merged = register(registrar, with_curp=False, given_names="Lupita")
    inactive = register(registrar, with_curp=False, paternal_surname="Hernandez")
    assert set(found_ids()) == {golden.pk, merged.pk, inactive.pk}

    Person.objects.filter(pk=merged.pk).update(status=RecordStatus.MERGED, merged_into=golden)
    Person.objects.filter(pk=inactive.pk).update(status=RecordStatus.INACTIVE)
    entry.refresh_match_keys([merged.pk, inactive.pk])

    assert set(MatchKey.objects.values_list("person_id", flat=True)) == {golden.pk}
    assert found_ids() == [golden.pk]


def test_rebuild_equals_the_per_person_refresh(registrar: Actor) -> None:
    nss = valid_nss()
    people = [
        register(registrar, nss=nss),
        register(registrar, with_curp=False, given_names="José María", sex="M"),
        register(
            registrar,
            with_curp=False,
            paternal_surname="de la Cruz",
            maternal_surname="López de García",
            birth_state="",
            birth_date=datetime.date(1992, 12, 31),
        ),
        register(registrar, with_curp=False, paternal_surname="", maternal_surname="Núñez"),
    ]
    refreshed = {key.person_id: key for key in MatchKey.objects.all()}
    assert set(refreshed) == {person.pk for person in people}

    MatchKey.objects.all().delete()
    result = entry.rebuild_match_keys(chunk=3)

    assert result.persons == len(people)
    rebuilt = {key.person_id: key for key in MatchKey.objects.all()}
    columns = ["feature_version", *entry.KEY_COLUMNS, "features"]
    for person_id, key in refreshed.items():
        for name in columns:
            assert getattr(rebuilt[person_id], name) == getattr(key, name), (person_id, name)


def test_rebuild_of_stale_keys_continues_and_removes_orphans(registrar: Actor) -> None:
    kept = register(registrar)
    stale = register(registrar, with_curp=False, given_names="Lupita")
    missing = PersonFactory.create(given_names="Rosa")
    orphan = register(registrar, with_curp=False, given_names="Rosa María")
    MatchKey.objects.filter(person=stale).update(feature_version=FEATURE_VERSION - 1, nss="x")
    Person.objects.filter(pk=orphan.pk).update(status=RecordStatus.INACTIVE)
    before = MatchKey.objects.get(person=kept)
    assert not entry.match_key_status().current

    done: list[tuple[int, int]] = []
    result = entry.rebuild_match_keys(only_stale=True, progress=lambda *a: done.append(a))

    # Only the stale and the missing key were read; the current one was left alone.
    assert result.persons == 2
    assert result.removed == 1
    assert done == [(2, 3)]
    assert MatchKey.objects.get(person=stale).feature_version == FEATURE_VERSION
    assert MatchKey.objects.get(person=stale).nss == ""
    assert MatchKey.objects.filter(person=missing).exists()
    assert not MatchKey.objects.filter(person=orphan).exists()
    assert MatchKey.objects.get(person=kept).features == before.features
    assert entry.match_key_status().current


def test_rebuild_refuses_a_chunk_below_one() -> None:
    with pytest.raises(ValueError, match="chunk"):
        entry.rebuild_match_keys(chunk=0)


def test_the_command_reports_and_brings_keys_up_to_date(
    registrar: Actor, capsys: pytest.CaptureFixture[str]
) -> None:
    register(registrar)
    PersonFactory.create(given_names="Rosa")

    with pytest.raises(CommandError, match="not current"):
        call_command("linkage_keys", "--status")
    assert "missing: 1" in capsys.readouterr().out

    call_command("linkage_keys")
    assert "1 keys written" in capsys.readouterr().out
    call_command("linkage_keys", "--status")
    call_command("linkage_keys", "--rebuild", "--chunk", "1")
    assert "2 keys written" in capsys.readouterr().out
    with pytest.raises(CommandError, match="at least 1"):
        call_command("linkage_keys", "--chunk", "0")


# --- candidates -------------------------------------------------------------------------------

# Each kind of error a clerk or a form makes (as ``pilar seed`` injects them), on a record with
# no CURP: the typed record must still find the registered person.
SECOND_RECORDS: dict[str, dict[str, Any]] = {
    "accents lost, capitals": {
        "given_names": "MARIA GUADALUPE",
        "paternal_surname": "HERNANDEZ",
        "maternal_surname": "LOPEZ",
    },
    "surnames swapped": {"paternal_surname": "López", "maternal_surname": "Hernández"},
    "maternal surname missing": {"maternal_surname": ""},
    "typo in a surname": {"paternal_surname": "Hernandes"},
    "typo in the given name": {"given_names": "María Guadalupr"},
    "nickname": {"given_names": "Lupita"},
    "given name dropped": {"given_names": "Guadalupe"},
    "birth day wrong": {"birth_date": datetime.date(1980, 5, 8)},
    "birth day wrong, maternal surname missing": {
        "birth_date": datetime.date(1980, 5, 10),
        "maternal_surname": "",
    },
    "birth day wrong, typo in a surname": {
        "birth_date": datetime.date(1980, 4, 30),
        "paternal_surname": "Hernandes",
    },
    "day and month swapped": {"birth_date": datetime.date(1980, 7, 5)},
    "particles": {"paternal_surname": "de Hernández", "maternal_surname": "López y"},
    "birth state unknown": {"birth_state": ""},
    "nickname and swapped surnames": {
        "given_names": "Lupe",
        "paternal_surname": "Lopez",
        "maternal_surname": "Hernandez",
    },
    "married form": {"maternal_surname": "López de García"},
}


@pytest.mark.parametrize("error", sorted(SECOND_RECORDS))
def test_a_second_record_with_an_error_finds_the_registered_person(
    registrar: Actor, error: str
) -> None:
    original = register(registrar)

    candidates = entry.find_candidates(record(**SECOND_RECORDS[error]))

    assert [candidate.person_id for candidate in candidates] == [original.pk]
    candidate = candidates[0]
    assert candidate.weight >= entry.scoring_model().review_weight
    assert 0 < candidate.probability <= 1
    assert not candidate.identifier_conflict
    assert "birth_date" in candidate.agreeing or "birth_date" in candidate.differing
    assert candidate.name == "María Guadalupe Hernández López"
    assert candidate.region == "JC"


def test_seeded_duplicates_are_found(registrar: Actor) -> None:
    """``make_duplicate`` draws one to three errors per record, as the seeder does; nearly all
    second records must find their original (the rest are the batch runs' work)."""
    rng = random.Random(5)
    people = [
        ("María Guadalupe", "Hernández", "López", "F", datetime.date(1980, 5, 7)),
        ("José Luis", "García", "Martínez", "M", datetime.date(1975, 3, 9)),
        ("Juan Carlos", "Ramírez", "Sánchez", "M", datetime.date(1990, 11, 2)),
        ("Ana María", "Flores", "Gómez", "F", datetime.date(1968, 1, 24)),
        ("Francisco", "Pérez", "Cruz", "M", datetime.date(2001, 8, 5)),
        ("Rosa", "Vázquez", "Jiménez", "F", datetime.date(1959, 6, 30)),
        ("Jesús", "González", "Reyes", "M", datetime.date(1985, 2, 11)),
        ("Guadalupe", "Díaz", "Morales", "F", datetime.date(1972, 10, 3)),
    ]
    originals = {}
    for given, paternal, maternal, sex, born in people:
        person = register(
            registrar,
            given_names=given,
            paternal_surname=paternal,
            maternal_surname=maternal,
            sex=sex,
            birth_date=born,
        )
        originals[person.pk] = (given, paternal, maternal, sex, born)
    found = 0
    tried = 0
    for person_id, (given, paternal, maternal, sex, born) in originals.items():
        for _copy in range(5):
            duplicate = make_duplicate(
                rng,
                original_given=given,
                original_paternal=paternal,
                original_maternal=maternal,
                original_birth=born.toordinal(),
                date=datetime.date.fromordinal,
            )
            typed = entry.record_input(
                {
                    **ORIGINAL,
                    "given_names": duplicate.given,
                    "paternal_surname": duplicate.paternal,
                    "maternal_surname": duplicate.maternal,
                    "sex": sex,
                    "birth_date": datetime.date.fromordinal(duplicate.birth),
                }
            )
            tried += 1
            ids = [candidate.person_id for candidate in entry.find_candidates(typed)]
            found += ids[:1] == [person_id]
    assert found / tried >= 0.9, f"{found} of {tried}"


@pytest.mark.parametrize(
    "other",
    [
        # The same common surnames and birth year, another person.
        {
            "given_names": "José Luis",
            "sex": "M",
            "birth_date": datetime.date(1980, 11, 2),
        },
        {
            "given_names": "Rosa",
            "paternal_surname": "Hernández",
            "maternal_surname": "García",
            "birth_date": datetime.date(1980, 2, 19),
        },
        # Same given name and birth date, different surnames.
        {"paternal_surname": "Ortega", "maternal_surname": "Ruiz"},
    ],
)
def test_a_different_person_is_not_a_candidate(registrar: Actor, other: dict[str, Any]) -> None:
    register(registrar)

    assert entry.find_candidates(record(**other)) == []


def test_an_identifier_conflict_is_shown(registrar: Actor) -> None:
    registered = register(registrar, nss=valid_nss())

    candidates = entry.find_candidates(record(nss=valid_nss()))

    assert [candidate.person_id for candidate in candidates] == [registered.pk]
    assert candidates[0].identifier_conflict
    assert "nss" in candidates[0].differing
    document = candidates[0].as_dict()
    assert document["identifier_conflict"] is True
    assert {item["comparison"] for item in document["breakdown"]} >= {"given", "nss"}


def test_a_typed_curp_finds_its_holder_whatever_the_names(registrar: Actor) -> None:
    registered = register(registrar)
    curp = registered.identifiers.get(scheme=CURP).value

    candidates = entry.find_candidates(
        record(given_names="Lupe", paternal_surname="Ernandes", maternal_surname="", curp=curp)
    )

    assert [candidate.person_id for candidate in candidates] == [registered.pk]
    assert "curp" in candidates[0].agreeing


def test_the_record_itself_is_excluded(registrar: Actor) -> None:
    person = register(registrar)

    assert entry.find_candidates(record(), exclude_id=person.pk) == []


def test_persons_without_a_key_are_found_by_exact_names() -> None:
    # Loaded in bulk (here: a factory) and not yet given a key.
    person = PersonFactory.create(
        given_names="María Guadalupe",
        paternal_surname="Hernandez",
        maternal_surname="LÓPEZ",
        birth_date=ORIGINAL["birth_date"],
    )
    assert not MatchKey.objects.exists()

    candidates = entry.find_candidates(record())

    assert [candidate.person_id for candidate in candidates] == [person.pk]
    assert candidates[0].agreeing


def test_one_query_finds_and_scores_the_candidates(
    registrar: Actor, django_assert_num_queries: Any
) -> None:
    register(registrar)
    model = entry.scoring_model()

    with django_assert_num_queries(1):
        candidates = entry.find_candidates(record(given_names="Lupita"), model=model)

    assert len(candidates) == 1


def test_a_very_common_key_is_read_only_up_to_its_limit(registrar: Actor) -> None:
    # Many persons born the same day with the same given name and surname: the lookup reads at
    # most PER_KEY_LIMIT of them per key, and only those above the threshold are returned.
    people = PersonFactory.create_batch(
        entry.PER_KEY_LIMIT + 15,
        given_names="María Guadalupe",
        paternal_surname="Hernández",
        maternal_surname="López",
        birth_date=ORIGINAL["birth_date"],
    )
    entry.refresh_match_keys([person.pk for person in people])

    candidates = entry.find_candidates(record(), limit=500)

    assert 0 < len(candidates) <= 6 * entry.PER_KEY_LIMIT
    assert len(entry.find_candidates(record())) == entry.DEFAULT_LIMIT


def test_the_active_model_and_its_threshold_are_used(registrar: Actor) -> None:
    registered = register(registrar)
    typed = record(given_names="Lupita", maternal_surname="")
    weight = entry.find_candidates(typed)[0].weight

    document = model_document(DEFAULT_MODEL)
    stored = LinkageModel.objects.create(
        version=1,
        definition=document,
        feature_version=FEATURE_VERSION,
        splink_version=document["splink_version"],
        sha256="a" * 64,
        review_weight=weight + 1,
        auto_link_weight=weight + 10,
        is_active=True,
    )
    scoring = entry.scoring_model()
    assert (scoring.model_id, scoring.review_weight) == (stored.pk, weight + 1)
    assert scoring.label == "persons v1"
    assert entry.find_candidates(typed) == []

    LinkageModel.objects.filter(pk=stored.pk).update(review_weight=weight - 1)
    assert [c.person_id for c in entry.find_candidates(typed)] == [registered.pk]


def test_a_model_that_no_longer_loads_falls_back_to_the_default(registrar: Actor) -> None:
    register(registrar)
    LinkageModel.objects.create(
        version=1,
        definition={"pilar_model_format": 99},
        feature_version=FEATURE_VERSION,
        splink_version="5.0.0",
        sha256="b" * 64,
        is_active=True,
    )

    scoring = entry.scoring_model()

    assert scoring.model is DEFAULT_MODEL
    assert scoring.label == "default"
    assert len(entry.find_candidates(record(given_names="Lupita"))) == 1


def test_the_why_is_worded_for_the_screen(registrar: Actor) -> None:
    register(registrar)
    candidate = entry.find_candidates(
        record(given_names="Lupita", paternal_surname="López", maternal_surname="Hernández")
    )[0]

    explained = entry.explain(candidate.as_dict())

    with translation.override("en"):
        assert "Birth date" in [str(label) for label in explained["agreeing_labels"]]
    reasons = {reason["comparison"]: reason for reason in explained["reasons"]}
    with translation.override("en"):
        assert str(reasons["surnames"]["level"]) == "the same, in the other order"
        assert str(reasons["nss"]["level"]) == "not compared (missing on one side)"
    with translation.override("es"):
        assert str(reasons["surnames"]["level"]) == "coinciden, en el otro orden"
    assert reasons["surnames"]["agrees"]
    assert 0 < explained["probability_percent"] <= 100


# --- within a batch ---------------------------------------------------------------------------


def test_pairs_within_a_batch_name_the_later_row() -> None:
    records = {
        0: record(),
        1: record(given_names="Rosa", paternal_surname="Ortega", maternal_surname="Ruiz"),
        2: record(given_names="Lupita", maternal_surname=""),
        3: record(
            given_names="Rosa",
            paternal_surname="Ortega",
            maternal_surname="",
            birth_date=datetime.date(1980, 5, 9),
        ),
    }

    pairs = entry.pairs_within(records)

    assert [(earlier, later) for earlier, later, _score in pairs] == [(0, 2), (1, 3)]
    assert all(score.weight >= entry.scoring_model().review_weight for *_, score in pairs)


# --- checking a would-be registration ---------------------------------------------------------


def test_the_check_validates_like_registration_and_needs_a_permission(registrar: Actor) -> None:
    registered = register(registrar)
    curp = registered.identifiers.get(scheme=CURP).value

    check = entry.candidates_for_registration(
        actor=registrar,
        data=PersonData(**{**ORIGINAL, "region": ""}),
        identifiers=[IdentifierData(CURP, curp)],
    )
    assert [candidate.person_id for candidate in check.candidates] == [registered.pk]
    assert check.model_label == "default"

    with pytest.raises(ValidationFailed) as caught:
        entry.candidates_for_registration(
            actor=registrar,
            data=PersonData(**{**ORIGINAL, "birth_date": datetime.date(2999, 1, 1)}),
            identifiers=[IdentifierData(CURP, "NOT-A-CURP")],
        )
    assert set(caught.value.field_errors) == {"birth_date", "identifiers[0]"}

    with pytest.raises(PermissionDenied):
        entry.candidates_for_registration(
            actor=actor(Role.BENEFITS_OFFICER), data=PersonData(**ORIGINAL)
        )
    assert Identifier.objects.count() == 1
