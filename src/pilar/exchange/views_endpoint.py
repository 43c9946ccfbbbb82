"""The node-to-node endpoint: ``POST /exchange/v1/sync/<action>`` with a signed envelope.

No session and no CSRF token (a peer is not a browser: the envelope's signature is the
authentication). The size limit is checked on ``Content-Length`` before the body is read, and
again on what is read (a chunked body has no length), so a 50 MB body costs nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from pilar.exchange.messaging import receive, response_body


def _content_length(request: HttpRequest) -> int | None:
    try:
        value = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return value if value >= 0 else None


@csrf_exempt
def sync(request: HttpRequest, action: str) -> HttpResponse:
    if request.method != "POST":
        response = JsonResponse({"detail": _("Send exchange messages with POST.")}, status=405)
        response["Allow"] = "POST"
        return response
    limit = int(settings.PILAR_EXCHANGE_MAX_BYTES)
    content_length = _content_length(request)
    body: bytes | None = None
    if content_length is None or content_length <= limit:
        # One byte more than the limit is enough to know a body is too large.
        body = request.read(limit + 1)
    status, envelope = receive(action, body, content_length)
    return HttpResponse(response_body(envelope), status=status, content_type="application/json")
