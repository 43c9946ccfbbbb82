"""Executing linkage runs (``tasks.run_execute``) on a small registry with the built-in default
model, whose weights are fixed: which pairs are stored and how, clusters, decisions kept across
runs, a crash that leaves nothing, list linkage with its result file, cross-programme checks.
Training on a seeded registry is in ``test_end_to_end``."""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import translation

from pilar.core.actor import Actor
from pilar.core.identifiers import CURP, NSS, curp_complete, curp_stem
from pilar.core.jobs import run_pending
from pilar.core.models import AuditEvent
from pilar.core.roles import Role
from pilar.core.tests.factories import actor
from pilar.linkage import selectors_runs, services, tasks
from pilar.linkage.model import DEFAULT_MODEL
from pilar.linkage.models import LinkageRun, MatchPair, PairStatus, RunStatus
from pilar.registry.models import Enrolment, Identifier, Person
from pilar.registry.tests.factories import PersonFactory, ProgrammeFactory, valid_nss

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    # Result tables are worded in the active language; these tests read them in English.
    with translation.override("en"):
        yield


def steward() -> Actor:
    return actor(Role.DATA_STEWARD)


def curp_of(person: Person, homonymy: int = 0) -> str:
    stem = curp_stem(
        given_names=person.given_names,
        paternal_surname=person.paternal_surname,
        maternal_surname=person.maternal_surname,
        birth_date=person.birth_date,
        sex=person.sex,
        birth_state=person.birth_state,
    )
    return curp_complete(stem, person.birth_date, homonymy)


def person(curp: bool | str = False, nss: str | None = None, **fields: Any) -> Person:
    created = PersonFactory.create(**fields)
    if curp:
        value = curp if isinstance(curp, str) else curp_of(created)
        Identifier.objects.create(person=created, scheme=CURP, value=value)
    if nss:
        Identifier.objects.create(person=created, scheme=NSS, value=nss)
    return created


@dataclass
class Registry:
    guadalupe: Person
    guadalupe_again: Person  # capitals, no accents, no CURP: the same person, auto-linked
    jose: Person
    jose_other_curp: Person  # same names and birth date, someone else's CURP: a conflict
    francisco: Person
    paco: Person  # nickname, no maternal surname, a day off: for review
    stranger: Person


def registry() -> Registry:
    guadalupe = person(
        curp=True,
        given_names="María Guadalupe",
        paternal_surname="Hernández",
        maternal_surname="López",
        birth_date=datetime.date(1980, 5, 17),
    )
    jose = person(
        curp=True,
        given_names="José Luis",
        paternal_surname="Pérez",
        maternal_surname="Soto",
        sex="M",
        birth_date=datetime.date(1969, 11, 2),
        region="DF",
    )
    someone_else = PersonFactory.build(
        given_names="Ana",
        paternal_surname="Ruiz",
        maternal_surname="Soto",
        birth_date=datetime.date(1991, 2, 3),
        birth_state="DF",
    )
    return Registry(
        guadalupe=guadalupe,
        guadalupe_again=person(
            given_names="MARIA GUADALUPE",
            paternal_surname="HERNANDEZ",
            maternal_surname="LOPEZ",
            birth_date=datetime.date(1980, 5, 17),
        ),
        jose=jose,
        jose_other_curp=person(
            curp=curp_of(someone_else),
            given_names="José Luis",
            paternal_surname="Pérez",
            maternal_surname="Soto",
            sex="M",
            birth_date=datetime.date(1969, 11, 2),
            region="DF",
        ),
        francisco=person(
            given_names="Francisco",
            paternal_surname="Ramírez",
            maternal_surname="Ortiz",
            sex="M",
            birth_date=datetime.date(1975, 3, 9),
        ),
        paco=person(
            given_names="Paco",
            paternal_surname="Ramírez",
            maternal_surname="",
            sex="M",
            birth_date=datetime.date(1975, 3, 10),
        ),
        stranger=person(
            given_names="Wenceslao",
            paternal_surname="Zúñiga",
            maternal_surname="Olvera",
            sex="M",
            birth_date=datetime.date(1949, 11, 21),
        ),
    )


def default_model() -> None:
    services.import_model(actor=steward(), text=DEFAULT_MODEL.to_json())


def dedupe(**kwargs: Any) -> LinkageRun:
    run = services.start_dedupe(actor=steward(), **kwargs)
    assert run_pending() == 1
    run.refresh_from_db()
    return run


def pair_of(run: LinkageRun, first: Person, second: Person) -> MatchPair:
    low, high = sorted((first.pk, second.pk))
    return MatchPair.objects.get(run=run, left_person_id=low, right_person_id=high)


# --- deduplication ------------------------------------------------------------------------------


def test_a_dedupe_stores_scored_pairs_with_status_breakdown_and_clusters() -> None:
    people = registry()
    default_model()

    run = dedupe()

    assert run.status == RunStatus.DONE, run.error
    assert run.records == 7
    assert MatchPair.objects.filter(run=run).count() == 3
    same = pair_of(run, people.guadalupe, people.guadalupe_again)
    assert same.status == PairStatus.AUTO_LINKED
    assert same.match_weight >= 12
    assert not same.identifier_conflict
    assert same.cluster == str(min(people.guadalupe.pk, people.guadalupe_again.pk))
    assert same.left_person_id is not None
    assert same.left_person_id < same.right_person_id
    comparisons = [item["comparison"] for item in same.breakdown]
    assert comparisons == ["given", "surnames", "birth_date", "curp", "nss", "sex", "birth_state"]
    # The breakdown explains the stored weight exactly: λ's prior plus each comparison's part.
    explained = DEFAULT_MODEL.prior_weight + sum(item["weight"] for item in same.breakdown)
    assert abs(explained - same.match_weight) < 1e-6

    conflict = pair_of(run, people.jose, people.jose_other_curp)
    assert conflict.identifier_conflict
    assert conflict.status == PairStatus.PENDING
    assert conflict.match_weight >= 12  # strong on names, but never linked without review
    assert conflict.cluster == ""

    review = pair_of(run, people.francisco, people.paco)
    assert review.status == PairStatus.PENDING
    assert 3 <= review.match_weight < 12

    assert (run.auto_linked, run.for_review, run.clusters) == (1, 2, 1)
    assert run.pairs_scored >= 3
    assert run.metrics["identifier_conflicts"] == 1
    assert run.metrics["stage"] == "done"
    rules = run.blocking["rules"]
    assert rules
    assert rules[-1]["cumulative"] == run.blocking["total"] >= 3
    assert run.blocking["pair_completeness"] is None
    assert AuditEvent.objects.filter(action="linkage.run_done", entity_id=str(run.pk)).exists()


def test_decided_pairs_keep_their_decision_and_undecided_ones_are_replaced() -> None:
    people = registry()
    default_model()
    first = dedupe()
    conflict = pair_of(first, people.jose, people.jose_other_curp)
    conflict.status = PairStatus.DIFFERENT
    conflict.save()
    same = pair_of(first, people.francisco, people.paco)
    same.status = PairStatus.SAME
    same.save()

    second = dedupe()

    assert second.metrics["already_decided"] == 2
    assert MatchPair.objects.filter(run=second).count() == 1
    assert second.for_review == 0
    # The decided pairs stay with their first run; the undecided one moved to the new run.
    assert set(MatchPair.objects.filter(run=first).values_list("status", flat=True)) == {
        PairStatus.DIFFERENT,
        PairStatus.SAME,
    }
    assert second.metrics["superseded"] == 1
    # A "same person" decision is a cluster edge too.
    assert second.clusters == 2
    assert MatchPair.objects.filter(status=PairStatus.PENDING).count() == 0


def test_a_crash_before_the_commit_leaves_no_pairs_and_the_old_queue_intact() -> None:
    registry()
    default_model()
    first = dedupe()
    before = list(MatchPair.objects.order_by("id").values_list("id", "status"))

    def crash(run: LinkageRun) -> None:
        raise RuntimeError("the disk is full")

    tasks._before_commit = crash
    try:
        second = dedupe()
    finally:
        tasks._before_commit = None

    assert second.status == RunStatus.FAILED
    assert "the disk is full" in second.error
    assert not MatchPair.objects.filter(run=second).exists()
    assert list(MatchPair.objects.order_by("id").values_list("id", "status")) == before
    assert first.pk != second.pk
    assert AuditEvent.objects.filter(action="linkage.run_failed", entity_id=str(second.pk)).exists()
    # Executing it again does nothing: a failed run stays failed, with nothing stored.
    assert tasks.run_execute(second.pk).status == RunStatus.FAILED
    assert not MatchPair.objects.filter(run=second).exists()


def test_executing_a_run_twice_writes_its_pairs_once() -> None:
    registry()
    default_model()
    run = dedupe()
    count = MatchPair.objects.filter(run=run).count()
    # A worker that took the run over after a lease expired finds it done.
    again = tasks.run_execute(run.pk)
    assert again.status == RunStatus.DONE
    assert MatchPair.objects.filter(run=run).count() == count
    # A run caught mid-way (status running, nothing written) starts again from the beginning.
    LinkageRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    MatchPair.objects.filter(run=run).delete()
    assert tasks.run_execute(run.pk).status == RunStatus.DONE
    assert MatchPair.objects.filter(run=run).count() == count


def test_a_region_dedupe_reads_only_that_region() -> None:
    people = registry()
    default_model()
    run = dedupe(region="DF")
    assert run.records == 2
    assert list(MatchPair.objects.filter(run=run).values_list("left_person_id", flat=True)) == [
        min(people.jose.pk, people.jose_other_curp.pk)
    ]


def test_an_unloadable_model_fails_the_run_with_the_reason() -> None:
    registry()
    default_model()
    run = services.start_dedupe(actor=steward())
    model = run.model
    assert model is not None
    model.definition = {**model.definition, "feature_version": 99}
    model.save()
    done = tasks.run_execute(run.pk)
    assert done.status == RunStatus.FAILED
    assert "no longer loads" in done.error
    assert not MatchPair.objects.exists()


def test_truth_gives_accuracy_and_pair_completeness(tmp_path: Any) -> None:
    people = registry()
    default_model()
    truth = tmp_path / "truth.csv"
    truth.write_text(
        "duplicate_person_id,original_person_id,errors\n"
        f"{people.guadalupe_again.pk},{people.guadalupe.pk},accents_lost\n"
        f"{people.paco.pk},{people.francisco.pk},nickname\n",
        encoding="utf-8",
    )
    run = dedupe(truth_path=truth)
    accuracy = run.metrics["accuracy"]
    assert accuracy["truth_pairs"] == 2
    assert accuracy["clusters"] == {
        "pairs": 1,
        "true_positives": 1,
        "precision": 1.0,
        "recall": 0.5,
        "f1": 0.6667,
    }
    assert accuracy["stored_pairs"]["recall"] == 1.0
    assert run.blocking["pair_completeness"] == 1.0


# --- list linkage -------------------------------------------------------------------------------


def link_list(people: Registry) -> bytes:
    rows = [
        ["folio", "nombre", "apellido_paterno", "apellido_materno", "fecha_nacimiento", "curp"],
        ["F-1", "Maria Guadalupe", "Hernandez", "Lopez", "17/05/1980", ""],
        ["F-2", "JOSE LUIS", "PEREZ", "SOTO", "1969-11-02", ""],
        ["F-3", "Perla", "Quintanilla", "Ybarra", "1961-09-03", ""],
        ["F-4", "", "Ramírez", "Soto", "1970-07-14", ""],
    ]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def test_list_linkage_links_rows_and_writes_the_result_file() -> None:
    people = registry()
    default_model()
    run, created = services.start_list_linkage(
        actor=steward(), file_name="lista.csv", data=link_list(people), name="Programa"
    )
    assert created
    assert run_pending() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.DONE, run.error
    pairs = MatchPair.objects.filter(run=run).order_by("left_row", "-match_weight")
    by_row: dict[int, list[MatchPair]] = {}
    for pair in pairs:
        assert pair.left_person is None
        assert pair.left_row is not None
        by_row.setdefault(pair.left_row, []).append(pair)
    # Row 2 is Guadalupe (both of her records), row 3 José Luis (both his records).
    assert {pair.right_person_id for pair in by_row[2]} == {
        people.guadalupe.pk,
        people.guadalupe_again.pk,
    }
    assert by_row[2][0].left_record["external_key"] == "F-1"
    assert {pair.right_person_id for pair in by_row[3]} == {
        people.jose.pk,
        people.jose_other_curp.pk,
    }
    assert 4 not in by_row  # a stranger to the registry
    assert run.metrics["matched_rows"] == 2
    assert run.metrics["unmatched_rows"] == 1
    assert run.metrics["row_error_count"] == 1

    table = selectors_runs.result_table(run, limit=None)
    assert table is not None
    assert table.header[:7] == [
        "Row",
        "External key",
        "Person",
        "CURP",
        "Match weight",
        "Probability",
        "Status",
    ]
    first = table.rows[0]
    assert first[0] == 2
    assert first[1] == "F-1"
    assert first[2] == people.guadalupe.pk or first[2] == people.guadalupe_again.pk
    statuses = {row[0]: row[6] for row in table.rows}
    assert statuses[4] == "No match"
    assert statuses[5] == "Not read"
    name, content_type, data = selectors_runs.run_download(
        actor=steward(), run_id=run.pk, file_format="csv"
    )
    assert content_type.startswith("text/csv")
    assert name.endswith(".csv")
    text = data.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Row,External key,Person,CURP")
    assert "F-3" in text
    _name, _type, workbook = selectors_runs.run_download(
        actor=steward(), run_id=run.pk, file_format="xlsx"
    )
    assert workbook[:2] == b"PK"
    assert AuditEvent.objects.filter(action="linkage.run_download").count() == 2


# --- cross-programme ----------------------------------------------------------------------------


def test_cross_programme_finds_same_merged_linked_and_probable_persons() -> None:
    people = registry()
    pension = ProgrammeFactory.create()
    imss = ProgrammeFactory.create(code="IMSS_LEY97", name_es="Ley 97", name_en="1997 law")
    start = datetime.date(2020, 1, 1)

    def enrol(who: Person, programme: Any, **fields: Any) -> None:
        Enrolment.objects.create(person=who, programme=programme, start_date=start, **fields)

    # The stranger receives both on one record.
    enrol(people.stranger, pension)
    enrol(people.stranger, imss)
    # José Luis's second record was merged into the first: its enrolment stayed behind.
    Person.objects.filter(pk=people.jose_other_curp.pk).update(
        status="merged", merged_into=people.jose
    )
    enrol(people.jose, pension)
    enrol(people.jose_other_curp, imss)
    # Guadalupe's two records are auto-linked by a deduplication.
    enrol(people.guadalupe, pension)
    enrol(people.guadalupe_again, imss)
    # Francisco and Paco are probably one person: the model says so.
    enrol(people.francisco, pension)
    enrol(people.paco, imss)
    # An ended enrolment does not count.
    lone = person(
        given_names="Irma", paternal_surname="Cárdenas", birth_date=datetime.date(1950, 1, 1)
    )
    enrol(lone, pension)
    enrol(lone, imss, status="ended", end_date=datetime.date(2021, 1, 1))
    default_model()
    dedupe()

    run = services.start_cross_programme(
        actor=steward(), programme_a=pension.code, programme_b=imss.code
    )
    assert run_pending() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.DONE, run.error
    assert run.metrics["by_basis"] == {
        "same_record": 1,
        "merged": 1,
        "linked_cluster": 1,
        "probable": 1,
    }
    table = selectors_runs.result_table(run, limit=None)
    assert table is not None
    found = {(row[1], row[4]): row[0] for row in table.rows}
    assert found == {
        (people.stranger.pk, people.stranger.pk): "Same registry record",
        (people.jose.pk, people.jose_other_curp.pk): "Records merged into one golden record",
        (people.guadalupe.pk, people.guadalupe_again.pk): "Records linked by the deduplication",
        (people.francisco.pk, people.paco.pk): "Probably the same person (model)",
    }
    probable = next(row for row in table.rows if row[0].startswith("Probably"))
    assert probable[8] is not None
    assert probable[8] >= 3


def test_cross_programme_without_a_model_counts_known_persons_only() -> None:
    people = registry()
    pension = ProgrammeFactory.create()
    imss = ProgrammeFactory.create(code="IMSS_LEY97", name_es="Ley 97", name_en="1997 law")
    start = datetime.date(2020, 1, 1)
    Enrolment.objects.create(person=people.stranger, programme=pension, start_date=start)
    Enrolment.objects.create(person=people.stranger, programme=imss, start_date=start)
    Enrolment.objects.create(person=people.francisco, programme=pension, start_date=start)
    Enrolment.objects.create(person=people.paco, programme=imss, start_date=start)
    run = services.start_cross_programme(
        actor=steward(), programme_a=pension.pk, programme_b=imss.pk
    )
    done = tasks.run_execute(run.pk)
    assert done.status == RunStatus.DONE, done.error
    assert done.metrics["model_used"] is False
    assert done.metrics["by_basis"]["same_record"] == 1
    assert done.metrics["by_basis"]["probable"] == 0


def test_cross_lists_find_rows_of_one_person() -> None:
    people = registry()
    default_model()
    first = (
        "folio,nombre,apellido_paterno,apellido_materno,fecha_nacimiento,nss\n"
        "A-1,María Guadalupe,Hernández,López,1980-05-17,\n"
        f"A-2,Wenceslao,Zúñiga,Olvera,1949-11-21,{valid_nss()}\n"
        "A-3,Perla,Quintanilla,Ybarra,1961-09-03,\n"
    ).encode()
    second = (
        b"folio,nombre,apellido_paterno,apellido_materno,fecha_nacimiento\n"
        b"B-1,MARIA GUADALUPE,HERNANDEZ,LOPEZ,17/05/1980\n"
        b"B-2,Perla,Quintanila,Ybarra,03/09/1961\n"
        b"B-3,Juan,Nadie,Nunca,01/01/2001\n"
    )
    run = services.start_cross_lists(
        actor=steward(), file_a=("a.csv", first), file_b=("b.csv", second)
    )
    done = tasks.run_execute(run.pk)
    assert done.status == RunStatus.DONE, done.error
    table = selectors_runs.result_table(done, limit=None)
    assert table is not None
    keys = {(row[1], row[3]) for row in table.rows}
    assert ("A-1", "B-1") in keys
    # Perla is no one in the registry but both lists carry her: probably the same person.
    assert ("A-3", "B-2") in keys
    assert all(key_b != "B-3" for _a, key_b in keys)
    assert done.metrics["a_linked"] >= 1
    assert people.guadalupe.pk


# --- the demo -----------------------------------------------------------------------------------


def test_the_demo_deduplicates_once_and_writes_a_list_to_try(settings: Any) -> None:
    from pilar.core.tests.factories import staff
    from pilar.linkage.demo import demo_linkage

    registry()
    default_model()
    user = staff(Role.DATA_STEWARD)
    first = demo_linkage(steward=user)
    assert first.run is not None
    assert first.run.status == RunStatus.DONE
    assert (first.auto_linked, first.for_review) == (1, 2)
    assert first.list_file is not None
    lines = first.list_file.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("folio,nombre,apellido_paterno")
    assert len(lines) == 1 + 7 + 4
    again = demo_linkage(steward=user)
    assert again.run == first.run
    assert LinkageRun.objects.count() == 1
    # The list it wrote links: the unreadable rows are reported, the rest read.
    run, created = services.start_list_linkage(
        actor=steward(), file_name="demo.csv", data=first.list_file.read_bytes()
    )
    assert created
    assert run.metrics["row_error_count"] == 2
