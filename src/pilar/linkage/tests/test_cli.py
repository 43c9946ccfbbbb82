"""``pilar linkage`` from the command line: runs execute in the command and print a summary; bad
input is a clear error (``CommandError``: exit status 1) and writes nothing."""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from pilar.core.models import AuditEvent, Job
from pilar.linkage.model import DEFAULT_MODEL
from pilar.linkage.models import LinkageModel, LinkageRun, MatchPair, RunKind, RunStatus
from pilar.registry.models import Enrolment, Person
from pilar.registry.tests.factories import PersonFactory, ProgrammeFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("linkage", *args, stdout=out)
    return out.getvalue()


def counts() -> tuple[int, int, int, int]:
    return (
        LinkageModel.objects.count(),
        LinkageRun.objects.count(),
        MatchPair.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "persons.json"
    path.write_text(DEFAULT_MODEL.to_json(), encoding="utf-8")
    return path


def small_registry() -> None:
    birth = datetime.date(1980, 5, 17)
    PersonFactory.create(
        given_names="María Guadalupe", paternal_surname="Hernández", birth_date=birth
    )
    PersonFactory.create(
        given_names="MARIA GUADALUPE", paternal_surname="HERNANDEZ", birth_date=birth
    )
    PersonFactory.create(
        given_names="Wenceslao",
        paternal_surname="Zúñiga",
        maternal_surname="Olvera",
        sex="M",
        birth_date=datetime.date(1949, 11, 21),
    )


def test_models_import_export_activate(model_file: Path, tmp_path: Path) -> None:
    assert "No model yet" in run("models")
    assert "Saved as persons v1 (active)." in run("model", "import", str(model_file))
    assert "Saved as persons v2." in run("model", "import", str(model_file))
    listing = run("models")
    assert "persons v1  (active)" in listing
    assert "persons v2  auto-link 12.00" in listing
    assert "persons v2 is the active model." in run("model", "activate", "2")
    assert LinkageModel.objects.get(is_active=True).version == 2
    target = tmp_path / "exported.json"
    assert "written to" in run("model", "export", "1", str(target))
    assert json.loads(target.read_text())["pilar_model_format"] == 1


def test_bad_model_input_is_an_error_and_writes_nothing(model_file: Path, tmp_path: Path) -> None:
    before = counts()
    other = tmp_path / "other.json"
    other.write_text(
        json.dumps({**json.loads(DEFAULT_MODEL.to_json()), "splink_version": "4.0.1"}),
        encoding="utf-8",
    )
    with pytest.raises(CommandError) as raised:
        run("model", "import", str(other))
    assert "made with Splink 4.0.1" in str(raised.value)
    with pytest.raises(CommandError, match="is not a file"):
        run("model", "import", str(tmp_path / "missing.json"))
    with pytest.raises(CommandError, match="no model version 7"):
        run("model", "export", "7", str(tmp_path / "x.json"))
    with pytest.raises(CommandError, match="No linkage model is active"):
        run("dedupe")
    assert counts() == before


def test_dedupe_runs_in_the_command_and_prints_a_summary(model_file: Path, tmp_path: Path) -> None:
    small_registry()
    run("model", "import", str(model_file))
    with pytest.raises(CommandError, match=r"--output must end in \.csv or \.xlsx"):
        run("dedupe", "--output", str(tmp_path / "pairs.txt"))
    assert not LinkageRun.objects.exists()
    output = tmp_path / "pairs.csv"
    printed = run("dedupe", "--output", str(output))
    done = LinkageRun.objects.get(kind=RunKind.DEDUPE)
    assert done.status == RunStatus.DONE
    # No worker was needed: the job is not queued.
    assert not Job.objects.exists()
    assert f"Run {done.pk} done" in printed
    assert "records 3; pairs scored" in printed
    assert "auto-linked 1" in printed
    assert "blocking rule" in printed
    assert output.read_bytes().decode("utf-8-sig").startswith("Record,CURP,Other record")
    assert f"{done.pk:>6}  dedupe           done" in run("runs")


def test_link_prints_the_rows_and_refuses_unreadable_files(
    model_file: Path, tmp_path: Path
) -> None:
    small_registry()
    run("model", "import", str(model_file))
    unreadable = tmp_path / "bad.csv"
    unreadable.write_text("nombre,curp\nAna,\n", encoding="utf-8")
    before = counts()
    with pytest.raises(CommandError, match="lacks the required columns"):
        run("link", str(unreadable))
    assert counts() == before
    good = tmp_path / "lista.csv"
    good.write_text(
        "folio,nombre,apellido_paterno,fecha_nacimiento\n"
        "1,Maria Guadalupe,Hernandez,17/05/1980\n"
        "2,,Nadie,01/01/1990\n",
        encoding="utf-8",
    )
    printed = run("link", str(good), "--output", str(tmp_path / "out.xlsx"))
    assert "rows 2: matched 1" in printed
    assert "skipped for errors 1" in printed
    assert (tmp_path / "out.xlsx").read_bytes()[:2] == b"PK"
    assert "This file was linked before" in run("link", str(good))
    assert LinkageRun.objects.filter(kind=RunKind.LINK).count() == 1


def test_cross_programme_and_blocking(model_file: Path) -> None:
    small_registry()
    with pytest.raises(CommandError, match="Unknown programme"):
        run("cross-programme", "NADA", "OTRO")
    pension = ProgrammeFactory.create()
    imss = ProgrammeFactory.create(code="IMSS_LEY97", name_es="Ley 97", name_en="1997 law")
    for person in Person.objects.all():
        Enrolment.objects.create(
            person=person, programme=pension, start_date=datetime.date(2020, 1, 1)
        )
    first = Person.objects.order_by("id")[0]
    Enrolment.objects.create(person=first, programme=imss, start_date=datetime.date(2020, 1, 1))
    printed = run("cross-programme", "pension_bienestar", "IMSS_LEY97")
    assert "receiving both: 1" in printed
    assert "no active model" in printed

    before = counts()
    blocking = run("blocking")
    assert "3 records" in blocking
    assert "nothing written" in blocking
    assert counts() == before


def test_the_language_option() -> None:
    with pytest.raises(CommandError) as raised:
        call_command("linkage", "--language", "es", "dedupe", stdout=io.StringIO())
    assert "No hay ningún modelo de vinculación activo" in str(raised.value)


def test_train_refuses_a_registry_too_small(tmp_path: Path) -> None:
    small_registry()
    with pytest.raises(CommandError, match="training needs at least"):
        run("train")
    failed = LinkageRun.objects.get(kind=RunKind.TRAIN)
    assert failed.status == RunStatus.FAILED
    assert not LinkageModel.objects.exists()
