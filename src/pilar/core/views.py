"""Staff web UI: sign-in, home, audit trail and access log."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A missing or stale CSRF token: explain it in the user's language, never a bare 403."""
    return render(request, "core/csrf_failure.html", status=403)
