"""Starting linkage runs and keeping models: permissions, refusals that write nothing, the model
file round trip and its precise errors, thresholds, activation, list uploads stored
content-addressed. The runs' execution is in ``test_tasks``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import translation

from pilar.core.errors import NotFound, PermissionDenied, ValidationFailed
from pilar.core.models import AuditEvent, Job
from pilar.core.roles import Role
from pilar.core.tests.factories import actor
from pilar.linkage import services
from pilar.linkage.model import DEFAULT_MODEL
from pilar.linkage.models import LinkageModel, LinkageRun, RunKind, RunStatus
from pilar.registry.tests.factories import ProgrammeFactory

pytestmark = pytest.mark.django_db

LIST = (
    "folio,nombre,apellido_paterno,apellido_materno,fecha_nacimiento,sexo,curp\n"
    "A1,María,López,García,1980-05-17,M,\n"
    "A2,,Pérez,Ruiz,1975-01-02,H,\n"
    "A3,Juan,Pérez,Ruiz,31/02/1975,H,\n"
    "A4,José,Núñez,,1990-12-01,H,NOTACURP\n"
).encode()


def steward() -> Any:
    return actor(Role.DATA_STEWARD)


def model_text(**changes: Any) -> str:
    document = json.loads(DEFAULT_MODEL.to_json())
    document.update(changes)
    return json.dumps(document)


def imported(**kwargs: Any) -> LinkageModel:
    return services.import_model(actor=steward(), text=model_text(), **kwargs)


def counts() -> tuple[int, int, int, int]:
    return (
        LinkageModel.objects.count(),
        LinkageRun.objects.count(),
        AuditEvent.objects.count(),
        Job.objects.count(),
    )


def linkage_files() -> list[Path]:
    folder = Path(settings.VAR_DIR) / "linkage"
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


# --- models -------------------------------------------------------------------------------------


def test_import_saves_the_first_model_active_and_export_gives_it_back() -> None:
    first = imported()
    assert (first.name, first.version, first.is_active) == ("persons", 1, True)
    assert first.feature_version == 1
    assert first.sha256 == DEFAULT_MODEL.sha256
    assert first.summary["comparisons"][0]["name"] == "given"
    event = AuditEvent.objects.get(action="linkage.model_import")
    assert event.entity_id == str(first.pk)
    assert event.changes["version"] == [None, 1]

    second = imported()
    assert (second.version, second.is_active) == (2, False)
    name, text = services.export_model(actor=steward(), model_id=first.pk)
    assert name == "pilar-linkage-persons-v1.json"
    assert json.loads(text)["splink"] == json.loads(model_text())["splink"]


def test_export_carries_the_current_thresholds_and_reimports_them() -> None:
    model = imported()
    services.model_thresholds_update(
        actor=steward(), model_id=model.pk, auto_link_weight=15.5, review_weight=4
    )
    _name, text = services.export_model(actor=steward(), model_id=model.pk)
    assert json.loads(text)["summary"]["thresholds"] == {
        "auto_link_weight": 15.5,
        "review_weight": 4.0,
    }
    again = services.import_model(actor=steward(), text=text.encode())
    assert (again.auto_link_weight, again.review_weight) == (15.5, 4.0)


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("{not json", "not_json", "not valid JSON"),
        ('{"hello": 1}', "not_a_model", "not a Pilar linkage model"),
        (model_text(pilar_model_format=2), "format_version", "format version 2"),
        (model_text(feature_version=9), "feature_version", "feature version 9"),
        (model_text(splink_version="4.0.6"), "splink_version", "Splink 4.0.6"),
        ("", "empty", "empty"),
    ],
)
def test_import_refuses_a_bad_file_precisely_and_saves_nothing(
    text: str, code: str, words: str
) -> None:
    before = counts()
    with translation.override("en"), pytest.raises(ValidationFailed) as raised:
        services.import_model(actor=steward(), text=text)
    [error] = raised.value.field_errors["file"]
    assert error.code == code
    assert words in str(error.message)
    assert counts() == before


def test_import_message_in_spanish() -> None:
    with translation.override("es"), pytest.raises(ValidationFailed) as raised:
        services.import_model(actor=steward(), text=model_text(feature_version=9))
    message = str(raised.value.field_errors["file"][0].message)
    assert "versión de atributos 9" in message


def test_bytes_that_are_not_utf8_are_refused() -> None:
    with pytest.raises(ValidationFailed) as raised:
        services.import_model(actor=steward(), text=b"\xff\xfe\x00bad")
    assert raised.value.field_errors["file"][0].code == "linkage.model_not_text"


def test_thresholds_are_checked_and_audited() -> None:
    model = imported()
    with pytest.raises(ValidationFailed) as raised:
        services.model_thresholds_update(
            actor=steward(), model_id=model.pk, auto_link_weight=2, review_weight=5
        )
    assert raised.value.field_errors["auto_link_weight"][0].code == "linkage.thresholds_order"
    with pytest.raises(ValidationFailed) as raised:
        services.model_thresholds_update(
            actor=steward(), model_id=model.pk, auto_link_weight="many", review_weight=999
        )
    assert set(raised.value.field_errors) == {"auto_link_weight", "review_weight"}
    model.refresh_from_db()
    assert (model.auto_link_weight, model.review_weight) == (12.0, 3.0)

    services.model_thresholds_update(
        actor=steward(), model_id=model.pk, auto_link_weight=14, review_weight=3
    )
    event = AuditEvent.objects.get(action="linkage.model_thresholds")
    assert event.changes == {"auto_link_weight": [12.0, 14.0]}
    # Saving the same values again changes nothing and records nothing.
    services.model_thresholds_update(
        actor=steward(), model_id=model.pk, auto_link_weight=14, review_weight=3
    )
    assert AuditEvent.objects.filter(action="linkage.model_thresholds").count() == 1


def test_activate_switches_the_active_version() -> None:
    first, second = imported(), imported()
    services.activate_model(actor=steward(), model_id=second.pk)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_active, second.is_active) == (False, True)
    assert services.active_model() == second
    event = AuditEvent.objects.get(action="linkage.model_activate")
    assert event.changes["previous"] == [[first.pk], None]
    with pytest.raises(NotFound):
        services.activate_model(actor=steward(), model_id=second.pk + 100)


def test_import_with_activate() -> None:
    first = imported()
    second = imported(activate=True)
    first.refresh_from_db()
    assert second.is_active
    assert not first.is_active


@pytest.mark.parametrize("role", [Role.REGISTRAR, Role.AUDITOR, Role.ANALYST])
def test_only_linkage_runners_change_models_or_start_runs(role: str) -> None:
    model = imported()
    someone = actor(role)
    before = counts()
    for attempt in (
        lambda: services.import_model(actor=someone, text=model_text()),
        lambda: services.activate_model(actor=someone, model_id=model.pk),
        lambda: services.model_thresholds_update(
            actor=someone, model_id=model.pk, auto_link_weight=20, review_weight=1
        ),
        lambda: services.start_training(actor=someone),
        lambda: services.start_dedupe(actor=someone),
        lambda: services.start_list_linkage(actor=someone, file_name="l.csv", data=LIST),
    ):
        with pytest.raises(PermissionDenied):
            attempt()
    assert counts() == before


# --- starting runs ------------------------------------------------------------------------------


def test_training_is_queued_once_at_a_time() -> None:
    run = services.start_training(actor=steward(), sample=5000)
    assert run.kind == RunKind.TRAIN
    assert run.status == RunStatus.QUEUED
    assert run.job is not None
    assert run.job.arguments == {"run_id": run.pk}
    assert run.parameters == {"seed": services.TRAINING_SEED, "sample": 5000}
    assert AuditEvent.objects.filter(action="linkage.run_start", entity_id=str(run.pk)).exists()
    before = counts()
    with pytest.raises(services.RunBusy):
        services.start_training(actor=steward())
    with pytest.raises(ValidationFailed):
        services.start_training(actor=steward(), sample=10)
    assert counts() == before


def test_dedupe_needs_a_model_and_checks_its_input() -> None:
    before = counts()
    with pytest.raises(services.NoActiveModel):
        services.start_dedupe(actor=steward())
    assert counts() == before
    model = imported()
    with pytest.raises(ValidationFailed) as raised:
        services.start_dedupe(actor=steward(), region="ZZ")
    assert "region" in raised.value.field_errors
    with pytest.raises(ValidationFailed) as raised:
        services.start_dedupe(actor=steward(), model_id=model.pk + 50)
    assert "model" in raised.value.field_errors
    with pytest.raises(ValidationFailed) as raised:
        services.start_dedupe(actor=steward(), truth_path=Path("/nonexistent/truth.csv"))
    assert "truth" in raised.value.field_errors
    run = services.start_dedupe(actor=steward(), region="JC")
    assert run.model == model
    assert run.parameters == {"region": "JC"}
    with pytest.raises(services.RunBusy):
        services.start_dedupe(actor=steward())


def test_a_list_is_stored_once_and_its_row_problems_reported() -> None:
    imported()
    run, created = services.start_list_linkage(
        actor=steward(), file_name="beneficiarios.csv", data=LIST, name="Programa estatal"
    )
    assert created
    assert run.kind == RunKind.LINK
    assert run.source_name == "Programa estatal"
    stored = services.stored_path(run.parameters["file"])
    assert stored.read_bytes() == LIST
    assert stored.name == f"{run.source_sha256}.csv"
    assert run.metrics["rows"] == 4
    # Row 3 has no given names and row 4 an impossible date: skipped; row 5's CURP is ignored.
    assert run.metrics["row_error_count"] == 2
    assert run.metrics["warning_count"] == 1
    codes = {(error["row"], error["code"]) for error in run.metrics["row_errors"]}
    assert {(3, "given_names_missing"), (4, "birth_date_impossible"), (5, "curp_invalid")} <= codes

    again, created_again = services.start_list_linkage(
        actor=steward(), file_name="otra-copia.csv", data=LIST
    )
    assert (again.pk, created_again) == (run.pk, False)
    assert LinkageRun.objects.filter(kind=RunKind.LINK).count() == 1


@pytest.mark.parametrize(
    ("data", "code", "english"),
    [
        (b"", "empty", "The file is empty."),
        (
            b"nombre,curp\nAna,\n",
            "missing_columns",
            "The list lacks the required columns",
        ),
        (b"nombre,apellido_paterno,fecha_nacimiento\n", "no_rows", "no rows"),
        (b"\x00\x01\x02\x03binary\x00\x00\x00", "not_text", "neither a text"),
    ],
)
def test_an_unreadable_list_is_refused_and_nothing_kept(
    data: bytes, code: str, english: str
) -> None:
    imported()
    before = counts()
    with translation.override("en"), pytest.raises(ValidationFailed) as raised:
        services.start_list_linkage(actor=steward(), file_name="lista.csv", data=data)
    errors = raised.value.field_errors["file"]
    assert code in [error.code for error in errors]
    assert any(english in str(error.message) for error in errors)
    assert counts() == before
    assert linkage_files() == []


def test_list_errors_are_translated() -> None:
    imported()
    with translation.override("es"), pytest.raises(ValidationFailed) as raised:
        services.start_list_linkage(
            actor=steward(), file_name="lista.csv", data=b"nombre,curp\nAna,\n"
        )
    message = str(raised.value.field_errors["file"][0].message)
    assert "columnas" in message


def test_cross_programme_checks_its_programmes() -> None:
    first = ProgrammeFactory.create()
    second = ProgrammeFactory.create(code="IMSS_LEY97", name_es="Ley 97", name_en="1997 law")
    before = counts()
    with pytest.raises(ValidationFailed) as raised:
        services.start_cross_programme(actor=steward(), programme_a="NOPE", programme_b=second.pk)
    assert raised.value.field_errors["programme_a"][0].code == "linkage.unknown_programme"
    with pytest.raises(ValidationFailed) as raised:
        services.start_cross_programme(actor=steward(), programme_a=first, programme_b=first.code)
    assert raised.value.field_errors["programme_b"][0].code == "linkage.same_programme"
    assert counts() == before
    # Without a model the check still runs (same registry person only).
    run = services.start_cross_programme(
        actor=steward(), programme_a="pension_bienestar", programme_b=str(second.pk)
    )
    assert run.model is None
    assert run.parameters["a"] == {"programme": first.pk, "code": first.code}
    assert run.source_name == "PENSION_BIENESTAR × IMSS_LEY97"


def test_two_identical_lists_are_refused() -> None:
    imported()
    with pytest.raises(ValidationFailed) as raised:
        services.start_cross_lists(actor=steward(), file_a=("a.csv", LIST), file_b=("b.csv", LIST))
    assert raised.value.field_errors["file_b"][0].code == "linkage.same_list"
    assert not LinkageRun.objects.exists()


def test_a_run_whose_job_the_queue_gave_up_on_does_not_block_the_next() -> None:
    imported()
    stuck = services.start_dedupe(actor=steward())
    assert stuck.job is not None
    Job.objects.filter(pk=stuck.job.pk).update(status="failed", error="Killed")
    LinkageRun.objects.filter(pk=stuck.pk).update(status=RunStatus.RUNNING)
    fresh = services.start_dedupe(actor=steward())
    stuck.refresh_from_db()
    assert stuck.status == RunStatus.FAILED
    assert stuck.error == "Killed"
    assert fresh.status == RunStatus.QUEUED
