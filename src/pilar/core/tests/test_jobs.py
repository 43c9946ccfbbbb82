"""The database job queue: claim with a lease, retries, failure, a dead worker's job taken over,
and ``pilar worker --once``."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from pilar.core import jobs
from pilar.core.models import Job, JobStatus

pytestmark = pytest.mark.django_db

calls: list[int] = []


@jobs.job("tests.record")
def record(*, job_id: int, value: int) -> None:
    calls.append(value)


@jobs.job("tests.explode")
def explode(*, job_id: int) -> None:
    raise RuntimeError("boom")


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


def test_jobs_run_in_order_once() -> None:
    jobs.enqueue("tests.record", value=1)
    jobs.enqueue("tests.record", value=2)
    assert jobs.run_pending() == 2
    assert calls == [1, 2]
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.DONE}
    assert jobs.run_pending() == 0


def test_an_unknown_job_name_is_refused_at_enqueue() -> None:
    with pytest.raises(KeyError):
        jobs.enqueue("tests.nonexistent")
    assert not Job.objects.exists()


def test_a_failing_job_is_retried_then_marked_failed() -> None:
    queued = jobs.enqueue("tests.explode")
    jobs.run_pending()
    queued.refresh_from_db()
    assert queued.status == JobStatus.FAILED
    assert queued.attempts == 3
    assert "boom" in queued.error
    assert queued.finished_at is not None


def test_a_running_job_is_not_claimed_twice_until_its_lease_expires() -> None:
    queued = jobs.enqueue("tests.record", value=7)
    claimed = jobs.claim("worker-a")
    assert claimed is not None
    assert claimed.pk == queued.pk
    assert jobs.claim("worker-b") is None  # leased to worker-a
    # worker-a died: its lease passes and another worker takes the job over.
    Job.objects.filter(pk=queued.pk).update(leased_until=timezone.now() - timedelta(seconds=1))
    taken = jobs.claim("worker-b")
    assert taken is not None
    assert taken.worker == "worker-b"
    assert taken.attempts == 2
    assert jobs.run(taken)
    assert calls == [7]


def test_heartbeat_extends_the_lease() -> None:
    jobs.enqueue("tests.record", value=1)
    claimed = jobs.claim()
    assert claimed is not None
    Job.objects.filter(pk=claimed.pk).update(leased_until=timezone.now())
    jobs.heartbeat(claimed.pk)
    claimed.refresh_from_db()
    assert claimed.leased_until is not None
    assert claimed.leased_until > timezone.now() + timedelta(seconds=60)


def test_worker_once_runs_what_is_queued() -> None:
    jobs.enqueue("tests.record", value=3)
    output = StringIO()
    call_command("worker", "--once", stdout=output)
    assert calls == [3]
    assert "1 job(s) run" in output.getvalue()
