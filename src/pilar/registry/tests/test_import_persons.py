"""``pilar import_persons``: a list file registered all or nothing, with the per-row report."""

from __future__ import annotations

import datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from pilar.core.actor import Actor
from pilar.core.models import AuditEvent
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.linkage.models import MatchKey
from pilar.registry import services
from pilar.registry.models import Identifier, Person
from pilar.registry.tests.factories import valid_nss
from pilar.registry.validation import PersonData

pytestmark = pytest.mark.django_db

HEADER = "nombre,apellido_paterno,apellido_materno,fecha_nacimiento,sexo,entidad_nacimiento,nss\n"


def write(tmp_path: Path, *lines: str, name: str = "personas.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def run(*args: object) -> str:
    out = StringIO()
    call_command("import_persons", *[str(arg) for arg in args], stdout=out, stderr=StringIO())
    return out.getvalue()


def existing_person() -> Person:
    return services.person_register(
        actor=Actor.system("test", roles=frozenset({Role.REGISTRAR})),
        data=PersonData(
            given_names="José Luis",
            paternal_surname="Núñez",
            maternal_surname="Peña",
            sex="M",
            birth_date=datetime.date(1975, 3, 9),
            birth_state="JC",
            region="JC",
        ),
    )


def test_a_clean_list_is_registered(tmp_path: Path) -> None:
    nss = valid_nss()
    path = write(
        tmp_path,
        f"Rosa,Ortega,Ruiz,12/04/1988,M,JC,{nss}",
        "Juan Carlos,Ramírez,Sánchez,1990-11-02,H,NL,",
    )

    output = run(path, "--region", "JC")

    assert "2 persons registered." in output
    assert "row 2: registered as person" in output
    rosa = Person.objects.get(given_names="Rosa")
    assert (rosa.sex, rosa.region, str(rosa.birth_date)) == ("F", "JC", "1988-04-12")
    assert Identifier.objects.get(person=rosa).value == nss
    assert MatchKey.objects.count() == 2
    assert set(AuditEvent.objects.values_list("channel", flat=True)) == {"bulk"}


def test_possible_duplicates_stop_the_import_until_acknowledged(tmp_path: Path) -> None:
    existing = existing_person()
    path = write(
        tmp_path,
        "Rosa,Ortega,Ruiz,12/04/1988,M,JC,",
        "Pepe Luis,Pena,Nunez,09/03/1975,H,JC,",
        "Rosa,Ortega,Ruiz,1988-12-04,M,JC,",
    )

    with pytest.raises(CommandError, match="2 rows need attention; nothing registered"):
        run(path, "--region", "JC", "--language", "en")
    assert Person.objects.count() == 1

    out = StringIO()
    with pytest.raises(CommandError):
        call_command("import_persons", str(path), "--region", "JC", stdout=out)
    report = out.getvalue()
    assert f"row 3: may be person {existing.pk}, José Luis Núñez Peña" in report
    assert "agree: " in report
    assert "row 4: may be the same person as row 2" in report
    assert "--acknowledge 3,4" in report

    output = run(path, "--region", "JC", "--acknowledge", "3,4")

    assert "3 persons registered." in output
    assert Person.objects.count() == 4


def test_a_list_with_bad_rows_writes_nothing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Rosa,Ortega,Ruiz,12/04/1988,M,JC,",
        ",Ramírez,Sánchez,31/02/1990,H,NL,123",
    )
    out = StringIO()
    with pytest.raises(CommandError, match="problems in the list; nothing registered"):
        call_command("import_persons", str(path), "--region", "JC", stdout=out)

    assert "row 3:" in out.getvalue()
    assert not Person.objects.exists()


def test_a_row_the_registry_refuses_writes_nothing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Rosa,Ortega,Ruiz,12/04/1988,M,JC,",
        "Ana,Ortega,=HYPERLINK(1),12/04/1989,M,JC,",
    )
    out = StringIO()
    with pytest.raises(CommandError, match="1 rows need attention"):
        call_command("import_persons", str(path), "--region", "JC", stdout=out)

    assert "row 3: maternal_surname:" in out.getvalue()
    assert not Person.objects.exists()


def test_arguments_and_files_are_checked(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no file"):
        run(tmp_path / "missing.csv", "--region", "JC")
    path = write(tmp_path, "Rosa,Ortega,Ruiz,12/04/1988,M,JC,")
    with pytest.raises(CommandError, match="--region"):
        run(path)
    with pytest.raises(CommandError, match="no active staff member"):
        run(path, "--user", "nobody")
    with pytest.raises(CommandError):
        run(path, "--region", "JC", "--acknowledge", "two")
    empty = tmp_path / "vacía.csv"
    empty.write_bytes(b"")
    with pytest.raises(CommandError, match="empty"):
        run(empty, "--region", "JC")
    assert not Person.objects.exists()


def test_as_a_staff_member_in_their_region(tmp_path: Path) -> None:
    staff(Role.REGISTRAR, region="NL", username="ana.perez")
    path = write(tmp_path, "Rosa,Ortega,Ruiz,12/04/1988,M,JC,")

    run(path, "--user", "ana.perez")

    assert Person.objects.get().region == "NL"
    assert AuditEvent.objects.get(action="person.register").actor_label == "ana.perez"
