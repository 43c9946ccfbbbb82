"""Background jobs on a database queue.

Django 5.2 has no ``django.tasks`` yet (it arrives with Django 6, which needs Python 3.12), so
Pilar keeps a small queue of its own with the same shape: a job is a registered function name
plus JSON arguments (ids, never objects), stored in ``core.Job`` and run by ``pilar worker`` or,
in the embedded shape, by a worker thread inside ``pilar serve``. It works on SQLite and
PostgreSQL and needs no other server.

Guarantees:

- A job is enqueued in the caller's transaction (``transaction.on_commit`` is not needed: the
  row itself is part of the transaction), so it exists exactly when the change that asked for it.
- A worker claims a job with a lease (``PILAR_JOB_LEASE_SECONDS``); a job whose worker died is
  claimed again when the lease passes. Job functions must therefore be idempotent and resumable;
  they report progress on their own records (e.g. the declaration), which also renews the lease
  through ``heartbeat``.
- A job that raises is retried up to ``PILAR_JOB_MAX_ATTEMPTS`` times, then marked failed with
  the error kept for the operator.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from pilar.core.models import Job, JobStatus

logger = logging.getLogger("pilar.jobs")

JobFunction = Callable[..., None]
_REGISTRY: dict[str, JobFunction] = {}


def job(name: str) -> Callable[[JobFunction], JobFunction]:
    """Register a job function under a stable name (stored in the queue, so never rename one
    that may have queued jobs)."""

    def register(function: JobFunction) -> JobFunction:
        _REGISTRY[name] = function
        return function

    return register


def enqueue(name: str, **arguments: Any) -> Job:
    if name not in _REGISTRY:
        _import_job_modules()
    if name not in _REGISTRY:
        raise KeyError(f"no job registered as {name!r}")
    return Job.objects.create(name=name, arguments=arguments)


def _import_job_modules() -> None:
    # Job functions live in each app's ``tasks`` module; importing them registers them.
    from django.apps import apps
    from django.utils.module_loading import module_has_submodule

    for config in apps.get_app_configs():
        if module_has_submodule(config.module, "tasks"):
            __import__(f"{config.name}.tasks")


def _lease() -> timedelta:
    return timedelta(seconds=getattr(settings, "PILAR_JOB_LEASE_SECONDS", 300))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def claim(worker: str | None = None) -> Job | None:
    """Take the oldest runnable job: queued, or running with an expired lease."""
    now = timezone.now()
    with transaction.atomic():
        candidates = Job.objects.filter(status=JobStatus.QUEUED) | Job.objects.filter(
            status=JobStatus.RUNNING, leased_until__lt=now
        )
        query = candidates.order_by("id")
        if connection.features.has_select_for_update_skip_locked:
            query = query.select_for_update(skip_locked=True)
        found = query.first()
        if found is None:
            return None
        found.status = JobStatus.RUNNING
        found.attempts += 1
        found.leased_until = now + _lease()
        found.worker = worker or worker_name()
        found.started_at = found.started_at or now
        found.save(update_fields=["status", "attempts", "leased_until", "worker", "started_at"])
        return found


def heartbeat(job_id: int) -> None:
    """Renew a running job's lease; long jobs call it as they report progress."""
    Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        leased_until=timezone.now() + _lease()
    )


def run(found: Job) -> bool:
    """Run one claimed job. Returns True when it succeeded."""
    if found.name not in _REGISTRY:
        _import_job_modules()
    function = _REGISTRY.get(found.name)
    try:
        if function is None:
            raise KeyError(f"no job registered as {found.name!r}")
        function(job_id=found.pk, **found.arguments)
    except Exception:
        logger.exception("job %s (%s) failed", found.pk, found.name)
        max_attempts = getattr(settings, "PILAR_JOB_MAX_ATTEMPTS", 3)
        final = found.attempts >= max_attempts
        Job.objects.filter(pk=found.pk).update(
            status=JobStatus.FAILED if final else JobStatus.QUEUED,
            leased_until=None,
            error=traceback.format_exc()[-4000:],
            finished_at=timezone.now() if final else None,
        )
        return False
    Job.objects.filter(pk=found.pk).update(
        status=JobStatus.DONE, leased_until=None, finished_at=timezone.now(), error=""
    )
    return True


def run_pending(*, limit: int = 1000) -> int:
    """Run queued jobs in this thread until none is left (tests, the CLI's ``--once``)."""
    ran = 0
    while ran < limit:
        found = claim()
        if found is None:
            break
        run(found)
        ran += 1
    return ran


def work_forever(*, poll_seconds: float = 1.0, stop: threading.Event | None = None) -> None:
    """The worker loop of ``pilar worker`` and of the embedded worker thread."""
    stop = stop or threading.Event()
    name = worker_name()
    logger.info("worker %s started", name)
    while not stop.is_set():
        close_old_connections()
        try:
            found = claim(name)
        except Exception:
            logger.exception("could not claim a job")
            found = None
        if found is None:
            stop.wait(poll_seconds)
            continue
        run(found)


def start_embedded_worker() -> threading.Thread:
    """A daemon worker thread inside the web process, for the embedded (SQLite) shape."""
    thread = threading.Thread(target=work_forever, name="pilar-worker", daemon=True)
    thread.start()
    return thread
