"""Background jobs of the contributions app: they take ids and call services (idempotent)."""

from __future__ import annotations

from pilar.contributions import services
from pilar.core.jobs import job


@job(services.VALIDATE_JOB)
def validate_declaration(*, job_id: int, declaration_id: int) -> None:
    services.declaration_validate(declaration_id=declaration_id, job_id=job_id)


@job(services.POST_JOB)
def post_declaration(*, job_id: int, declaration_id: int) -> None:
    services.declaration_post(declaration_id=declaration_id, job_id=job_id)
