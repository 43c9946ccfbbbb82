"""``pilar serve``: serve Pilar with gunicorn.

    pilar serve                       # 127.0.0.1:8000
    pilar serve --host 0.0.0.0 --port 8080 --workers 4

On SQLite (the embedded shape) one process with four threads serves everything: SQLite allows
one writer at a time, so more processes would only queue on its lock. On PostgreSQL two worker
processes are the default. Put a TLS-terminating proxy in front of it in production.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from gunicorn.app.base import BaseApplication


class PilarApplication(BaseApplication):
    """gunicorn run from Python with Pilar's WSGI application and the given settings."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from pilar.wsgi import application

        return application


def _start_job_worker(worker: Any) -> None:
    """gunicorn's post_worker_init hook: the embedded shape runs background jobs (declaration
    validation and posting) in a thread of each web process (``PILAR_EMBEDDED_WORKER``)."""
    from django.conf import settings

    from pilar.core import jobs

    if settings.PILAR_EMBEDDED_WORKER:
        jobs.start_embedded_worker()
    if settings.PILAR_EXCHANGE_DUTIES:
        # The federation's clock: log integration, retries, notifications (docs/federation.md).
        from pilar.exchange import scheduler

        scheduler.start_thread()


def gunicorn_options(
    *, host: str, port: int, workers: int | None, threads: int | None, vendor: str
) -> dict[str, Any]:
    """gunicorn settings for the database in use (see the module docstring)."""
    sqlite = vendor == "sqlite"
    chosen_workers = workers or (1 if sqlite else 2)
    chosen_threads = threads or (4 if sqlite else 1)
    return {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": chosen_workers,
        "threads": chosen_threads,
        "worker_class": "gthread" if chosen_threads > 1 else "sync",
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": "-",
        "errorlog": "-",
        "proc_name": "pilar",
        "post_worker_init": _start_job_worker,
    }


class Command(BaseCommand):
    help = "Serve Pilar with gunicorn (one process on SQLite, two on PostgreSQL by default)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1)."
        )
        parser.add_argument("--port", type=int, default=8000, help="Port (default 8000).")
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Worker processes (default 1 on SQLite, 2 on PostgreSQL).",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=None,
            help="Threads per worker (default 4 on SQLite, 1 on PostgreSQL).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not 0 < options["port"] < 65536:
            raise CommandError("--port must be between 1 and 65535.")
        for name in ("workers", "threads"):
            if options[name] is not None and options[name] < 1:
                raise CommandError(f"--{name} must be at least 1.")
        settings = gunicorn_options(
            host=options["host"],
            port=options["port"],
            workers=options["workers"],
            threads=options["threads"],
            vendor=connection.vendor,
        )
        # The management command's own connection is not needed by the workers.
        connection.close()
        self.stdout.write(
            f"Serving Pilar on http://{options['host']}:{options['port']} "
            f"({settings['workers']} worker(s) × {settings['threads']} thread(s)); "
            f"Ctrl+C stops."
        )
        PilarApplication(settings).run()
