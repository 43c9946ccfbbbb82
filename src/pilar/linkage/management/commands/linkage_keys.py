"""``pilar linkage_keys``: the match keys the point-of-entry duplicate check searches.

    pilar linkage_keys              # bring them up to date: persons without a key, or with a
                                    # key of another feature version; drop keys of merged and
                                    # inactive persons (also continues an interrupted rebuild)
    pilar linkage_keys --rebuild    # recompute every key (after a bulk load that bypassed the
                                    # services, or to be sure)
    pilar linkage_keys --status     # how many are missing or stale; exit status 1 if any

The registry keeps keys current on every registration, change, identifier change and merge;
this command is for loads that did not go through those services (``pilar seed``) and for a new
``FEATURE_VERSION``. Chunks commit one by one, so an interrupted run keeps what it wrote.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pilar.linkage.entry import match_key_status, rebuild_match_keys


class Command(BaseCommand):
    help = "Build or refresh the match keys of the point-of-entry duplicate check."

    def add_arguments(self, parser: ArgumentParser) -> None:
        action = parser.add_mutually_exclusive_group()
        action.add_argument(
            "--rebuild", action="store_true", help="Recompute the keys of every active person."
        )
        action.add_argument(
            "--status", action="store_true", help="Report missing and stale keys; write nothing."
        )
        parser.add_argument(
            "--chunk",
            type=int,
            default=100_000,
            help="Persons per chunk (one transaction each); default 100000.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["chunk"] < 1:
            raise CommandError("--chunk must be at least 1.")
        if options["status"]:
            self._report_status()
            return
        result = rebuild_match_keys(
            chunk=options["chunk"],
            only_stale=not options["rebuild"],
            progress=lambda done, total: self.stderr.write(
                f"{done:,} keys written ({total:,} persons)"
            ),
        )
        self.stdout.write(
            f"{result.persons:,} keys written, {result.removed:,} removed, "
            f"in {result.seconds:.1f} s."
        )

    def _report_status(self) -> None:
        status = match_key_status()
        self.stdout.write(
            f"active persons: {status.persons:,}\n"
            f"keys: {status.keys:,}\n"
            f"missing: {status.missing:,}\n"
            f"of another feature version: {status.stale:,}\n"
            f"of persons no longer active: {status.orphaned:,}"
        )
        if not status.current:
            raise CommandError("The match keys are not current: run `pilar linkage_keys`.")
