"""`pilar rules explain`: one person's result under a package, from the registry and the work
history, in plain language — decided nowhere, logged as a read of the record."""

from __future__ import annotations

import datetime
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from pilar.benefits.models import Claim, Decision
from pilar.benefits.tests.careers import long_career, short_career
from pilar.core.models import AccessLogEntry, AuditEvent
from pilar.registry.models import Identifier

pytestmark = pytest.mark.django_db


def _explain(*args: str) -> str:
    output = StringIO()
    call_command("rules", *args, stdout=output)
    return output.getvalue()


def test_explains_an_old_age_pension_from_the_work_history_by_curp() -> None:
    person = long_career()
    curp = Identifier.objects.get(person=person, scheme="CURP").value
    text = _explain(
        "--language", "es", "explain", "--person", curp, "--package", "imss_1973",
        "--benefit", "vejez", "--on", "2026-03-01", "--declare", "padres_dependientes=0",
    )  # fmt: skip
    # 11,317 days from 1980-01-07 to 2010-12-31 are 1,616 whole weeks (tests/careers.py).
    assert "1616 [work_history]" in text
    assert "imss_1973 1.0.0" in text
    assert "LSS 1973 art. 167" in text  # the amount's steps carry their articles
    reads = AccessLogEntry.objects.filter(person_id=person.pk, purpose="pilar rules explain")
    assert {entry.action for entry in reads} == {"view", "claim_preview"}
    assert {entry.channel for entry in reads} == {"cli"}
    # Explaining decides nothing.
    assert not Claim.objects.exists()
    assert not Decision.objects.exists()
    assert not AuditEvent.objects.filter(entity_type="claim").exists()


def test_a_denial_lists_the_unmet_condition_with_its_threshold_and_article() -> None:
    person = short_career()
    output = _explain(
        "--language", "en", "explain", "--person", str(person.pk), "--package", "imss_1973",
        "--benefit", "vejez", "--on", "2026-03-01", "--declare", "padres_dependientes=0", "--json",
    )  # fmt: skip
    explained = json.loads(output)
    assert explained["result"]["values"]["elegible_vejez"]["value"] is False
    text = _explain(
        "--language", "en", "explain", "--person", str(person.pk), "--package", "imss_1973",
        "--benefit", "vejez", "--on", "2026-03-01", "--declare", "padres_dependientes=0",
    )  # fmt: skip
    assert "399" in text
    assert "500" in text
    assert "art. 138" in text


def test_missing_facts_are_listed_and_nothing_is_evaluated() -> None:
    person = long_career()
    with pytest.raises(CommandError) as refused:
        _explain(
            "explain", "--person", str(person.pk), "--package", "imss_1973", "--benefit", "vejez",
        )  # fmt: skip
    assert "padres_dependientes" in str(refused.value) or "parents" in str(refused.value).lower()


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--person", "not-a-person", "--package", "imss_1973"], "CURP"),
        (["--person", "{pk}", "--package", "no_such_scheme"], "scheme"),
        (["--person", "{pk}", "--package", "imss_1973", "--benefit", "orphanhood"], "orphanhood"),
        (["--person", "{pk}", "--package", "imss_1973", "--declare", "nothing"], "NAME=VALUE"),
    ],
)
def test_bad_arguments_get_a_clear_error(arguments: list[str], expected: str) -> None:
    person = long_career()
    filled = [argument.replace("{pk}", str(person.pk)) for argument in arguments]
    with pytest.raises(CommandError) as refused:
        _explain("explain", *filled)
    assert expected.lower() in str(refused.value).lower()


def test_a_bad_date_is_refused_by_the_argument_parser() -> None:
    with pytest.raises(CommandError, match="not a date"):
        _explain("explain", "--person", "1", "--package", "imss_1973", "--on", "2026-02-30")


def test_the_claim_date_defaults_to_today() -> None:
    person = long_career()
    output = _explain(
        "explain", "--person", str(person.pk), "--package", "bienestar",
        "--declare", "reside_en_mexico=true", "--declare", "mexicano_o_residente_25=true",
        "--declare", "municipio_indigena=false", "--json",
    )  # fmt: skip
    assert json.loads(output)["on"] == datetime.date.today().isoformat()
