"""``pilar office``: offices from the command line.

    pilar office create --code JAL-02 --name "Oficina Zapopan" --region JC
    pilar office list

An office's region (a state code, as in the CURP) is the region its staff work in. Creation
goes through the same service as the web UI and is audited as done by the command line.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError, no_translations

from pilar.core import selectors, services
from pilar.core.errors import ApplicationError
from pilar.core.management.commands.staff import cli_actor, error_text
from pilar.core.regions import STATES


class Command(BaseCommand):
    help = "Create and list offices."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{create,list}")
        create = actions.add_parser("create", help="Create an office.")
        create.add_argument("--code", required=True, help="Capitals, digits, hyphens: JAL-02.")
        create.add_argument("--name", required=True)
        create.add_argument(
            "--region", required=True, help="The state's two-letter code, e.g. JC for Jalisco."
        )
        actions.add_parser("list", help="List offices with their number of staff accounts.")

    # Messages are English like the rest of the command line, whatever LANGUAGE_CODE says.
    @no_translations
    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "create":
                office = services.office_create(
                    actor=cli_actor(),
                    code=options["code"],
                    name=options["name"],
                    region=options["region"],
                )
                self.stdout.write(f"Created office {office.code} ({STATES[office.region]}).")
            else:
                self._list()
        except ApplicationError as error:
            raise CommandError(error_text(error)) from error

    def _list(self) -> None:
        offices = selectors.office_list(actor=cli_actor())
        if not offices:
            self.stdout.write("(no offices)")
            return
        width = max(len(office.code) for office in offices)
        for office in offices:
            count = getattr(office, "staff_count", 0)
            self.stdout.write(
                f"{office.code:<{width}}  {office.region}  {count:>5} staff  {office.name}"
            )
