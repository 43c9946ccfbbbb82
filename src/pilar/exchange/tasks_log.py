"""Jobs of the transparency log: integrate the queued leaves (``exchange.log_integrate``) and,
on an auditor node, check and cosign every member's log (``exchange.audit_round``).

Both also run on a clock in the scheduler thread; the jobs are for running them on demand
(the staff UI's "run a round now") and from ``pilar worker``. Both are idempotent.
"""

from __future__ import annotations

from pilar.core.jobs import job

LOG_INTEGRATE_JOB = "exchange.log_integrate"
AUDIT_ROUND_JOB = "exchange.audit_round"


@job(LOG_INTEGRATE_JOB)
def log_integrate_job(*, job_id: int | None = None) -> None:
    from pilar.exchange.log import log_integrate_all

    log_integrate_all()


@job(AUDIT_ROUND_JOB)
def audit_round_job(*, job_id: int | None = None) -> None:
    from pilar.exchange.auditor import audit_round

    audit_round()
