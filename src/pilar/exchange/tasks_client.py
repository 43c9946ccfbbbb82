"""Background job of the institute's side of the hub: enrol this node's persons in the hub's
federated index (``client.persons_enrol``), run by ``pilar worker`` or the embedded worker.

Re-running is safe: only persons not yet linked, or whose ``holds_periods`` changed, are sent.
"""

from __future__ import annotations

from pilar.core.actor import Actor
from pilar.core.jobs import job
from pilar.core.roles import Role
from pilar.exchange import client

PERSONS_ENROL_JOB = "exchange.persons_enrol"

# Enrolment is node administration: the job acts as the system with the administrator's role.
JOB_ACTOR = Actor.system(
    "exchange.persons_enrol", channel="bulk", roles=frozenset({Role.ADMINISTRATOR.value})
)


@job(PERSONS_ENROL_JOB)
def persons_enrol_job(
    *, job_id: int | None = None, person_ids: list[int] | None = None, batch: int = 500
) -> None:
    client.persons_enrol(actor=JOB_ACTOR, person_ids=person_ids, batch=batch)
