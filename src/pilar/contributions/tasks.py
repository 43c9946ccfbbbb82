"""Background jobs of the contributions app: they take ids and call services (idempotent)."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation

from pilar.contributions import services
from pilar.core.jobs import job


@job(services.VALIDATE_JOB)
def validate_declaration(*, job_id: int, declaration_id: int, language: str | None = None) -> None:
    # Row issues are translated when shown; a whole-file rejection is worded here, in the
    # uploader's language.
    with translation.override(language or settings.LANGUAGE_CODE):
        services.declaration_validate(declaration_id=declaration_id, job_id=job_id)


@job(services.POST_JOB)
def post_declaration(*, job_id: int, declaration_id: int) -> None:
    services.declaration_post(declaration_id=declaration_id, job_id=job_id)
