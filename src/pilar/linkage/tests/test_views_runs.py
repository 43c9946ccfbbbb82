"""The linkage runs, cross-programme and model screens through Django's test client: who may see
and start what, form errors from the services (nothing written), the model pages (m/u,
thresholds, activation, export and import), a run's page while queued and when done (blocking
analysis, figures, results and their download), both languages."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from pilar.core.actor import Actor
from pilar.core.jobs import run_pending
from pilar.core.models import AuditEvent, User
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.linkage import services, tasks
from pilar.linkage.model import DEFAULT_MODEL
from pilar.linkage.models import LinkageModel, LinkageRun, RunKind, RunStatus
from pilar.registry.tests.factories import PersonFactory, ProgrammeFactory

pytestmark = pytest.mark.django_db

MODEL_FILE = DEFAULT_MODEL.to_json().encode()


def signed_in(user: User, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


def steward_client(language: str = "en") -> tuple[Client, User]:
    user = staff(Role.DATA_STEWARD, username=f"steward_{language}")
    return signed_in(user, language), user


def text_of(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def with_model(user: User) -> LinkageModel:
    return services.import_model(actor=Actor.for_user(user, channel="ui"), text=MODEL_FILE)


def test_pages_need_the_linkage_permissions() -> None:
    registrar = signed_in(staff(Role.REGISTRAR))
    for name in ("run_list", "model_list", "cross_list", "run_dedupe_new", "model_import"):
        assert registrar.get(reverse(f"linkage:{name}")).status_code == 403
    auditor = signed_in(staff(Role.AUDITOR))
    assert auditor.get(reverse("linkage:run_list")).status_code == 200
    assert auditor.get(reverse("linkage:model_list")).status_code == 200
    # Auditors read; they start nothing.
    assert auditor.get(reverse("linkage:run_dedupe_new")).status_code == 403
    assert auditor.post(reverse("linkage:model_train")).status_code == 403
    assert not LinkageRun.objects.exists()
    anonymous = Client().get(reverse("linkage:run_list"))
    assert anonymous.status_code == 302


def test_the_runs_list_without_a_model_says_to_train_one() -> None:
    client, _user = steward_client()
    page = text_of(client.get(reverse("linkage:run_list")))
    assert "Linkage runs" in page
    assert "No linkage model is active yet" in page
    assert "No linkage runs yet." in page
    spanish, _user = steward_client("es")
    assert "Ejecuciones de vinculación" in text_of(spanish.get(reverse("linkage:run_list")))


def test_starting_a_dedupe_without_a_model_is_a_form_error() -> None:
    client, _user = steward_client()
    response = client.post(reverse("linkage:run_dedupe_new"), {"model": "", "region": ""})
    assert response.status_code == 422
    assert "No linkage model is active" in text_of(response)
    assert not LinkageRun.objects.exists()


def test_a_dedupe_started_from_the_form_shows_its_progress() -> None:
    client, user = steward_client()
    model = with_model(user)
    response = client.post(reverse("linkage:run_dedupe_new"), {"model": "", "region": "JC"})
    run = LinkageRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("linkage:run_detail", args=[run.pk])
    assert (run.kind, run.model, run.parameters) == (RunKind.DEDUPE, model, {"region": "JC"})
    page = client.get(response["Location"])
    body = page.content.decode()
    assert 'hx-trigger="every 2s"' in body
    assert "Waiting for a worker" in text_of(page)
    # The polled part alone for htmx; the whole page otherwise.
    fragment = client.get(
        reverse("linkage:run_progress", args=[run.pk]), headers={"HX-Request": "true"}
    )
    assert fragment.content.decode().lstrip().startswith('<div id="run-body"')
    plain = client.get(reverse("linkage:run_progress", args=[run.pk]))
    assert plain.status_code == 302
    # Nothing to download before the run is done.
    assert client.get(reverse("linkage:run_download", args=[run.pk, "csv"])).status_code == 404
    # A second deduplication while this one waits is refused on the form.
    again = client.post(reverse("linkage:run_dedupe_new"), {"model": "", "region": ""})
    assert again.status_code == 422
    assert f"Run {run.pk} of this kind is queued. Wait until it has finished." in text_of(again)
    assert LinkageRun.objects.count() == 1


def test_an_unreadable_list_is_refused_on_the_form() -> None:
    client, user = steward_client()
    with_model(user)
    upload = SimpleUploadedFile("lista.csv", b"nombre,curp\nAna,\n", "text/csv")
    response = client.post(reverse("linkage:run_link_new"), {"name": "", "file": upload})
    assert response.status_code == 422
    assert "The list lacks the required columns" in text_of(response)
    assert not LinkageRun.objects.exists()
    missing = client.post(reverse("linkage:run_link_new"), {"name": "x"})
    assert missing.status_code == 422
    assert "Choose the list file (CSV or XLSX)." in text_of(missing)


def test_a_list_upload_starts_a_run_and_the_same_file_finds_it_again() -> None:
    client, user = steward_client()
    with_model(user)
    content = (
        "folio,nombre,apellido_paterno,apellido_materno,fecha_nacimiento\n"
        "1,Ana,López,Ruiz,1980-01-02\n"
        "2,,López,Ruiz,1980-01-02\n"
    ).encode()
    response = client.post(
        reverse("linkage:run_link_new"),
        {"name": "Padrón estatal", "file": SimpleUploadedFile("a.csv", content)},
    )
    run = LinkageRun.objects.get()
    assert response["Location"] == reverse("linkage:run_detail", args=[run.pk])
    page = text_of(client.get(response["Location"]))
    assert "Padrón estatal" in page
    assert "1 row could not be read and was skipped." in page
    assert "The given names are empty." in page
    again = client.post(
        reverse("linkage:run_link_new"),
        {"name": "", "file": SimpleUploadedFile("b.csv", content)},
        follow=True,
    )
    assert "This file was linked before" in text_of(again)
    assert LinkageRun.objects.count() == 1


def test_the_cross_programme_form() -> None:
    client, _user = steward_client()
    first = ProgrammeFactory.create()
    second = ProgrammeFactory.create(code="IMSS_LEY97", name_es="Ley 97", name_en="1997 law")
    form = text_of(client.get(reverse("linkage:cross_new")))
    assert "IMSS_LEY97 — 1997 law" in form
    same = client.post(
        reverse("linkage:cross_new"), {"programme_a": first.pk, "programme_b": first.pk}
    )
    assert same.status_code == 422
    assert "Choose two different programmes." in text_of(same)
    started = client.post(
        reverse("linkage:cross_new"), {"programme_a": first.pk, "programme_b": second.pk}
    )
    run = LinkageRun.objects.get()
    assert started["Location"] == reverse("linkage:run_detail", args=[run.pk])
    assert "PENSION_BIENESTAR × IMSS_LEY97" in text_of(client.get(reverse("linkage:cross_list")))


def test_model_import_refusal_and_success() -> None:
    client, _user = steward_client()
    bad = dict(json.loads(MODEL_FILE), feature_version=7)
    refused = client.post(
        reverse("linkage:model_import"),
        {"file": SimpleUploadedFile("m.json", json.dumps(bad).encode())},
    )
    assert refused.status_code == 422
    assert "trained on feature version 7" in text_of(refused)
    assert not LinkageModel.objects.exists()
    saved = client.post(
        reverse("linkage:model_import"),
        {"file": SimpleUploadedFile("m.json", MODEL_FILE), "activate": "on"},
        follow=True,
    )
    model = LinkageModel.objects.get()
    assert model.is_active
    page = text_of(saved)
    assert "The model has been saved as persons v1." in page
    assert "Comparisons: m and u per level" in page
    assert "Day and month swapped" in page


def test_thresholds_activation_and_export_from_the_model_page() -> None:
    client, user = steward_client()
    first, second = with_model(user), with_model(user)
    url = reverse("linkage:model_thresholds", args=[first.pk])
    wrong = client.post(url, {"auto_link_weight": "2", "review_weight": "5"})
    assert wrong.status_code == 422
    assert "must be higher than the review threshold" in text_of(wrong)
    client.post(url, {"auto_link_weight": "13.5", "review_weight": "2.5"})
    first.refresh_from_db()
    assert (first.auto_link_weight, first.review_weight) == (13.5, 2.5)
    assert AuditEvent.objects.filter(action="linkage.model_thresholds").count() == 1

    activated = client.post(reverse("linkage:model_activate", args=[second.pk]), follow=True)
    assert "persons v2 is now the active model." in text_of(activated)
    second.refresh_from_db()
    assert second.is_active

    exported = client.get(reverse("linkage:model_export", args=[first.pk]))
    assert exported["Content-Disposition"] == (
        'attachment; filename="pilar-linkage-persons-v1.json"'
    )
    assert json.loads(exported.content)["summary"]["thresholds"]["auto_link_weight"] == 13.5
    listing = text_of(client.get(reverse("linkage:model_list")))
    assert "persons v2" in listing
    assert "persons v1" in listing


def test_a_failed_run_says_nothing_was_saved() -> None:
    client, user = steward_client()
    with_model(user)
    run = services.start_dedupe(actor=Actor.for_user(user, channel="ui"))
    LinkageRun.objects.filter(pk=run.pk).update(
        status=RunStatus.FAILED, error="EngineError: too_few_records"
    )
    page = text_of(client.get(reverse("linkage:run_detail", args=[run.pk])))
    assert "The run has stopped" in page
    assert "too_few_records" in page
    assert tasks.run_execute(run.pk).status == RunStatus.FAILED


def test_a_finished_dedupe_page_shows_blocking_figures_results_and_downloads() -> None:
    client, user = steward_client()
    with_model(user)
    birth = datetime.date(1980, 5, 17)
    PersonFactory.create(
        given_names="María Guadalupe", paternal_surname="Hernández", birth_date=birth
    )
    PersonFactory.create(
        given_names="MARIA GUADALUPE", paternal_surname="HERNANDEZ", birth_date=birth
    )
    run = services.start_dedupe(actor=Actor.for_user(user, channel="ui"))
    assert run_pending() == 1
    page = client.get(reverse("linkage:run_detail", args=[run.pk]))
    body = page.content.decode()
    text = text_of(page)
    assert "hx-trigger" not in body  # finished: no more polling
    assert "Blocking analysis" in text
    assert "derived_stem" in text
    assert "Pair completeness is measured only when the truth is known" in text
    assert "Linked automatically" in text
    assert f"/linkage/review/?run={run.pk}" not in body  # nothing awaits review
    assert "Download CSV" in text
    download = client.get(reverse("linkage:run_download", args=[run.pk, "csv"]))
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith('attachment; filename="pilar-linkage-dedupe-')
    assert download.content.decode("utf-8-sig").startswith("Record,CURP,Other record")
    assert client.get(reverse("linkage:run_download", args=[run.pk, "pdf"])).status_code == 422
    spanish = signed_in(user, "es")
    texto = text_of(spanish.get(reverse("linkage:run_detail", args=[run.pk])))
    assert "Análisis de bloqueo" in texto
    assert "Deduplicación del padrón" in texto
    model_page = text_of(client.get(reverse("linkage:model_detail", args=[run.model_id])))
    assert "1e-05 (1 : 100,000)" in model_page
    assert "Day and month swapped" in model_page
    modelo = text_of(spanish.get(reverse("linkage:model_detail", args=[run.model_id])))
    assert "Día y mes intercambiados" in modelo
