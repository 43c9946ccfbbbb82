"""Template context every staff page needs: institution name, the actor's permissions."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from pilar.core.roles import permissions_for


def pilar(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    perms: frozenset[str] = frozenset()
    if user is not None and user.is_authenticated:
        perms = permissions_for(user.role_codes())
    return {
        "institution_name": settings.PILAR_INSTITUTION_NAME,
        "pilar_perms": perms,
        "pilar_env": settings.PILAR_ENV,
    }
