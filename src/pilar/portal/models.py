"""Portal accounts. An employer's account is a ``core.User`` (so passwords, Argon2 hashing and
lockout are the staff accounts' own) linked here to its employer; it signs in with the
employer's RFC. It holds no staff role, and the staff sign-in refuses it."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class EmployerUser(models.Model):
    user = models.OneToOneField(
        "core.User", related_name="employer_account", on_delete=models.PROTECT
    )
    employer = models.OneToOneField(
        "registry.Employer", related_name="portal_account", on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(default=timezone.now)


def employer_username(rfc: str) -> str:
    """The ``core.User`` username of an employer's portal account."""
    return f"employer:{rfc.upper()}"
