"""The transparency log's public endpoints (``/exchange/v1/log/…``): what they serve has no
personal data (codes, salted digests, signatures), so they need no session.

Bad query parameters answer 400 with a JSON body ``{"error": code, "message": text}``, never
a server error; a cosignature that does not verify answers 403.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from pilar.core.errors import ApplicationError, ValidationFailed
from pilar.exchange import log

# A cosignature request is a line of about 150 bytes and a number.
MAX_COSIGNATURE_BODY = 16 * 1024


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": code, "message": message}, status=status)


def _from_application_error(error: ApplicationError) -> JsonResponse:
    if isinstance(error, ValidationFailed):
        field, problems = next(iter(error.field_errors.items()))
        return _error(400, f"{field}.{problems[0].code}", str(problems[0].message))
    status = 403 if error.code.startswith("exchange.log.cosignature") else 400
    return _error(status, error.code, str(error.message))


class _BadParameter(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


def _int_param(request: HttpRequest, name: str, default: int | None = None) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        if default is not None:
            return default
        raise _BadParameter(name, _("The parameter %(name)s is required.") % {"name": name})
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise _BadParameter(
            name, _("The parameter %(name)s must be a whole number.") % {"name": name}
        )
    return int(raw)


def _no_store(response: HttpResponse) -> HttpResponse:
    # A checkpoint changes every fraction of a second; proofs are immutable but cheap.
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def checkpoint(request: HttpRequest) -> HttpResponse:
    latest = log.log_checkpoint_latest()
    if latest is None:
        return _error(404, "exchange.log.empty", _("The log has no checkpoint yet."))
    response = HttpResponse(
        log.log_checkpoint_note(latest), content_type="text/plain; charset=utf-8"
    )
    return _no_store(response)


@require_GET
def inclusion(request: HttpRequest) -> HttpResponse:
    try:
        index = _int_param(request, "index")
        size = _int_param(request, "size", default=log.log_size() or None)
        proof = log.log_inclusion_proof(index, size)
    except _BadParameter as error:
        return _error(400, f"{error.name}.invalid", error.message)
    except ApplicationError as error:
        return _from_application_error(error)
    return JsonResponse(
        {
            "index": proof.index,
            "size": proof.size,
            "leaf_hash": _b64(proof.leaf_hash),
            "proof": [_b64(item) for item in proof.proof],
            "root_hash": _b64(proof.root_hash),
        }
    )


@require_GET
def consistency(request: HttpRequest) -> HttpResponse:
    try:
        first = _int_param(request, "first")
        second = _int_param(request, "second", default=log.log_size() or None)
        proof = log.log_consistency_proof(first, second)
    except _BadParameter as error:
        return _error(400, f"{error.name}.invalid", error.message)
    except ApplicationError as error:
        return _from_application_error(error)
    return JsonResponse(
        {
            "first": proof.first,
            "second": proof.second,
            "proof": [_b64(item) for item in proof.proof],
            "first_root": _b64(proof.first_root),
            "second_root": _b64(proof.second_root),
        }
    )


@require_GET
def leaves(request: HttpRequest) -> HttpResponse:
    try:
        start = _int_param(request, "start")
        end = _int_param(request, "end")
        entries = log.log_leaves(start, end)
    except _BadParameter as error:
        return _error(400, f"{error.name}.invalid", error.message)
    except ApplicationError as error:
        return _from_application_error(error)
    return JsonResponse(
        [
            {
                "index": entry.index,
                "data": entry.data,
                "leaf_hash": _b64(bytes.fromhex(entry.leaf_hash)),
            }
            for entry in entries
        ],
        safe=False,
    )


def _cosignature_input(request: HttpRequest) -> tuple[str, int]:
    """``{"size": N, "cosignature": "— …"}`` as JSON, or the same two fields as a form."""
    if request.content_type == "application/json":
        try:
            body: Any = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _BadParameter("body", _("The body is not valid JSON.")) from None
        if not isinstance(body, dict):
            raise _BadParameter("body", _("The body must be a JSON object."))
        line, size = body.get("cosignature"), body.get("size")
    else:
        line, size = request.POST.get("cosignature"), request.POST.get("size")
        if isinstance(size, str) and size.isascii() and size.isdigit() and len(size) < 20:
            size = int(size)
    if not isinstance(line, str) or not line.strip():
        raise _BadParameter("cosignature", _("The cosignature line is required."))
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise _BadParameter("size", _("The checkpoint size must be a whole number of at least 1."))
    return line, size


@csrf_exempt
@require_POST
def cosignature(request: HttpRequest) -> HttpResponse:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_COSIGNATURE_BODY:
        return _error(413, "body.too_large", _("The body is too large for a cosignature."))
    try:
        line, size = _cosignature_input(request)
        stored = log.log_cosignature_add(line_or_note=line, checkpoint_size=size)
    except _BadParameter as error:
        return _error(400, f"{error.name}.invalid", error.message)
    except ApplicationError as error:
        return _from_application_error(error)
    return JsonResponse(
        {
            "size": size,
            "witness": stored.witness,
            "key_id": stored.key_id,
            "timestamp": stored.timestamp,
        },
        status=201,
    )
