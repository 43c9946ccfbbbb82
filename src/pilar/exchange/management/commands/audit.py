"""``pilar audit verify``: check this node's transparency log and message archive.

    pilar audit verify           # one line per failure (FAIL …) and pending message (PENDING …)
    pilar audit verify --json    # the report as JSON

Exit status 1 when any check fails (pending messages are not failures). The checks are
described in ``pilar.exchange.verify``.
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from pilar.exchange.verify import VerifyReport, log_verify


class Command(BaseCommand):
    help = "Verify this node's transparency log, checkpoints, cosignatures and message archive."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("action", choices=["verify"], help="What to do: verify.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] != "verify":
            raise CommandError("Unknown action.")
        # Command-line output is in English, like Pilar's other commands.
        with translation.override("en"):
            report = log_verify()
            self._print(report, as_json=options["json"])
        if not report.ok:
            # BaseCommand has no exit status of its own besides CommandError's, whose message
            # would repeat the report; flush and leave with 1.
            self.stdout.flush()
            sys.exit(1)

    def _print(self, report: VerifyReport, *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        else:
            for line in report.lines():
                self.stdout.write(line)
            counts = report.counts
            self.stdout.write(
                f"{'OK' if report.ok else 'FAILED'}: {counts['leaves']} leaves "
                f"({counts['queued']} queued), {counts['checkpoints']} checkpoints, "
                f"{counts['cosignatures']} cosignatures, {counts['messages']} messages; "
                f"{len(report.failures)} failure(s), {len(report.pending)} pending."
            )
