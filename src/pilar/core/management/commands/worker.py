"""``pilar worker``: run background jobs from the database queue.

    pilar worker            # run until stopped (Ctrl-C / SIGTERM)
    pilar worker --once     # run what is queued now, then exit

Start as many as the machine has cores for bulk work; each claims jobs with a lease, so two
workers never run the same job and a dead worker's job is picked up again (``pilar.core.jobs``).
"""

from __future__ import annotations

import signal
import threading
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from pilar.core import jobs


class Command(BaseCommand):
    help = "Run background jobs (declaration validation and posting, …) from the database queue."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--once", action="store_true", help="Run the queued jobs and exit.")
        parser.add_argument("--poll", type=float, default=1.0, help="Seconds between polls.")

    def handle(self, *args: Any, **options: Any) -> None:
        from django.conf import settings

        from pilar.exchange import scheduler

        if options["once"]:
            ran = jobs.run_pending()
            self.stdout.write(f"{ran} job(s) run")
            if settings.PILAR_EXCHANGE_DUTIES:
                for duty, outcome in scheduler.run_once().items():
                    self.stdout.write(f"exchange {duty}: {outcome}")
            return
        if settings.PILAR_EXCHANGE_DUTIES:
            scheduler.start_thread()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        jobs.work_forever(poll_seconds=options["poll"], stop=stop)
