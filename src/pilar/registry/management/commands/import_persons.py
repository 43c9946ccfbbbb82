"""``pilar import_persons``: register the persons of a list file, all or nothing.

    pilar import_persons personas.csv --region JC
    pilar import_persons personas.xlsx --region JC --acknowledge 3,17
    pilar import_persons personas.csv --user ana.perez      # as a staff member, in her region

The file is read like a linkage list (``linkage.lists.read_list``): CSV in UTF-8 or
Windows-1252, or an Excel workbook, with Spanish or English headers (``nombre``,
``apellido_paterno``, ``apellido_materno``, ``fecha_nacimiento``, ``sexo``,
``entidad_nacimiento``, ``curp``, ``nss``; or ``given_names``, ``paternal_surname`` …). Rows are
numbered as a spreadsheet shows them (the header is row 1).

Every row is validated as a registration and matched against the registry and the other rows
(``registry.services.person_register_batch``). Nothing is written unless every row is valid and
every row with possible duplicates is named in ``--acknowledge`` after checking; otherwise the
report lists each row's problems and the exit status is 1. Registrations are audited on the
``bulk`` channel, as the system or as ``--user``.

The command line speaks English like Pilar's other commands; ``--language es`` gives Spanish.
"""

from __future__ import annotations

from argparse import ArgumentParser, ArgumentTypeError
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, no_translations
from django.utils import translation

from pilar.core.actor import Actor
from pilar.core.errors import ApplicationError, ValidationFailed
from pilar.core.identifiers import CURP, NSS
from pilar.core.models import User
from pilar.core.regions import STATES
from pilar.core.roles import Role
from pilar.linkage import entry, lists
from pilar.linkage.messages import list_error_message
from pilar.registry import services
from pilar.registry.validation import IdentifierData, PersonData


def _row_numbers(text: str) -> set[int]:
    numbers: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or int(part) < 1:
            raise ArgumentTypeError(f"not a row number: {part!r}")
        numbers.add(int(part))
    return numbers


class Command(BaseCommand):
    help = "Register the persons of a CSV or XLSX list, all or nothing, after a duplicate check."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", type=Path, help="The list: .csv or .xlsx.")
        parser.add_argument(
            "--acknowledge",
            type=_row_numbers,
            default=set(),
            help="Rows (comma-separated numbers) whose possible duplicates you have checked.",
        )
        parser.add_argument(
            "--region",
            default="",
            help="The administering state of every person (CURP state code, e.g. JC); "
            "default: the region of --user's office.",
        )
        parser.add_argument(
            "--user", default="", help="The staff member the registrations are made as."
        )
        parser.add_argument(
            "--language", choices=("en", "es"), default="en", help="Language of the messages."
        )

    @no_translations
    def handle(self, *args: Any, **options: Any) -> None:
        with translation.override(options["language"]):
            self._import(options)

    def _import(self, options: dict[str, Any]) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"There is no file {path}.")
        actor = self._actor(options["user"])
        region = (options["region"] or actor.region or "").strip().upper()
        if region not in STATES:
            raise CommandError(
                "Give --region, the state code of the administering state (e.g. JC)."
            )

        frame, row_errors, file_errors = lists.read_list(path)
        if file_errors:
            raise CommandError("; ".join(list_error_message(error) for error in file_errors))
        if row_errors:
            # A linkage reads past a bad CURP or date; a registration cannot: every problem of
            # the list is a reason to write nothing.
            for error in row_errors:
                column = f" {error.column}:" if error.column else ""
                self.stdout.write(f"row {error.row}:{column} {list_error_message(error)}")
            raise CommandError(f"{len(row_errors)} problems in the list; nothing registered.")

        rows = [self._person_row(values, region) for values in frame.iter_rows(named=True)]
        try:
            persons = services.person_register_batch(
                actor=actor, rows=rows, acknowledge=options["acknowledge"]
            )
        except services.BatchRefused as refused:
            self._report(refused)
            blocked = sum(report.blocked for report in refused.reports)
            raise CommandError(f"{blocked} rows need attention; nothing registered.") from refused
        except ValidationFailed as error:
            raise CommandError(_error_text(error)) from error
        except ApplicationError as error:
            raise CommandError(str(error.message)) from error
        for row, person in zip(rows, persons, strict=True):
            self.stdout.write(f"row {row.row}: registered as person {person.pk}")
        self.stdout.write(f"{len(persons)} persons registered.")

    def _actor(self, username: str) -> Actor:
        if not username:
            return Actor.system("import_persons", channel="bulk", roles=frozenset({Role.REGISTRAR}))
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"There is no active staff member {username!r}.")
        return Actor.for_user(user, channel="bulk")

    @staticmethod
    def _person_row(values: dict[str, Any], region: str) -> services.PersonRow:
        identifiers = [
            IdentifierData(scheme, values[column])
            for scheme, column in ((CURP, "curp"), (NSS, "nss"))
            if values[column]
        ]
        return services.PersonRow(
            row=int(values["unique_id"]),
            data=PersonData(
                given_names=values["given_names"] or "",
                paternal_surname=values["paternal_surname"] or "",
                maternal_surname=values["maternal_surname"] or "",
                sex=values["sex"] or "",
                birth_date=values["birth_date"],
                birth_state=values["birth_state"] or "",
                region=region,
            ),
            identifiers=identifiers,
        )

    def _report(self, refused: services.BatchRefused) -> None:
        for report in refused.reports:
            checked = " [acknowledged]" if report.acknowledged else ""
            for name, field_errors in report.errors.items():
                for field_error in field_errors:
                    self.stdout.write(f"row {report.row}: {name}: {field_error.message}")
            for candidate in report.candidates:
                self.stdout.write(
                    f"row {report.row}: may be person {candidate.person_id}, "
                    f"{candidate.name} ({candidate.birth_date.isoformat()}, {candidate.region})"
                    f"{_evidence(candidate.as_dict())}{checked}"
                )
            for other in report.batch_candidates:
                self.stdout.write(
                    f"row {report.row}: may be the same person as row {other['row']}, "
                    f"{other['name']} ({other['birth_date']}){_evidence(other)}{checked}"
                )
        pending = [
            report.row
            for report in refused.reports
            if (report.candidates or report.batch_candidates) and not report.acknowledged
        ]
        if pending:
            self.stdout.write(
                "After checking, register them anyway with --acknowledge "
                + ",".join(str(row) for row in pending)
            )


def _evidence(candidate: dict[str, Any]) -> str:
    explained = entry.explain(candidate)
    parts = [f"weight {candidate['match_weight']:.1f}"]
    if candidate.get("identifier_conflict"):
        parts.append("CURP or NSS differ")
    if explained["agreeing_labels"]:
        parts.append("agree: " + ", ".join(str(label) for label in explained["agreeing_labels"]))
    if explained["differing_labels"]:
        parts.append("differ: " + ", ".join(str(label) for label in explained["differing_labels"]))
    return " — " + "; ".join(parts)


def _error_text(error: ValidationFailed) -> str:
    return "; ".join(
        f"{name}: {field_error.message}"
        for name, field_errors in error.field_errors.items()
        for field_error in field_errors
    )
