"""The REST API: one ``NinjaAPI`` (``api``), mounted at ``/api/`` by ``pilar.urls``.

Operations live under ``/api/v1/``; the OpenAPI 3.1 schema is at ``/api/openapi.json`` and the
Swagger UI at ``/api/docs`` (served from django-ninja's bundled files, so it works offline).
Every operation needs an API token (``Authorization: Bearer pilar_<prefix>_<secret>``).

Every error, from a missing token to an unknown route to a crash, is an RFC 9457 problem
document; see ``pilar.core.api`` for its members and codes. The API layer only parses, calls a
service or selector with the request's ``Actor``, and shapes the response.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.urls import URLPattern, URLResolver, re_path
from django.utils.translation import gettext_lazy as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.schema import OpenAPISchema

from pilar.benefits import api as benefits_api
from pilar.contributions import api as contributions_api
from pilar.core import api as core_api
from pilar.core.api import (
    PROBLEM_MEDIA_TYPE,
    AuthenticationRequired,
    InternalError,
    MalformedJson,
    MethodNotAllowed,
    RequestTooLarge,
    RouteNotFound,
    problem_response,
    request_validation_failed,
)
from pilar.core.errors import ApplicationError, NotFound, PermissionDenied
from pilar.exchange import api as exchange_api
from pilar.linkage import api as linkage_api
from pilar.registry import api as registry_api

logger = logging.getLogger("pilar.api")

DESCRIPTION = """
The REST API of a Pilar node, for staff tools and partner systems.

**Authentication.** Every operation needs an API token: `Authorization: Bearer
pilar_<prefix>_<secret>`. A token carries exactly one of its owner's roles and acts with that
role's permissions only. Staff see the persons of their office's region; national roles see all.

**Errors** are RFC 9457 problem documents (`application/problem+json`) with a stable `code`
(also in `type`, as `https://pilar.example/problems/<code>`), a translated `title` and `detail`
(`Accept-Language: es` or `en`), and, for input errors, `errors: [{field, code, message}]`.
Common codes: `authentication_required`, `token_invalid` (401), `permission_denied` (403),
`not_found`, `route.not_found` (404), `registry.possible_duplicate` (409, with `candidates`:
repeat with `acknowledge_possible_duplicate: true` to register anyway),
`registry.stale_version` (409: reload and retry), `validation_failed` (422),
`json.malformed` (400).

**Reads of a person's record are logged** (who, when, channel, purpose): send the purpose as
`?purpose=` or in the `X-Purpose` header.

**Formats.** Dates are `YYYY-MM-DD`; money is a decimal string (`"350.00"`) and may be sent as
a string or a JSON number; unknown fields in a request body are refused.
"""

# Descriptions for the error responses in the OpenAPI document.
_ERROR_DESCRIPTIONS = {
    400: "Malformed request body (problem+json, code json.malformed).",
    401: "Missing, unknown, expired or revoked token (authentication_required, token_invalid).",
    403: "The token's role does not have the permission (permission_denied).",
    404: "No such record, or outside the caller's region (not_found).",
    409: "Conflict: possible duplicate, stale version, or a state that forbids the change.",
    422: "Invalid input: errors lists every field problem (validation_failed).",
}


def _not_allowed(request: HttpRequest, allowed: str) -> HttpResponse:
    response = problem_response(
        request,
        MethodNotAllowed(
            _("Use one of: %(methods)s.") % {"methods": allowed},
            extra={"allowed": [m.strip() for m in allowed.split(",") if m.strip()]},
        ),
    )
    response["Allow"] = allowed
    return response


def _problem_outside_operations(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """Problem documents for the answers ninja gives outside its operations: a 405 for a known
    path with another method, and the 404 of the API root."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            return problem_response(request, RouteNotFound())
        if response.status_code == 405 and response.get("Content-Type") != PROBLEM_MEDIA_TYPE:
            return _not_allowed(request, response.get("Allow", ""))
        return response

    return wrapper


def _unknown_route(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    return problem_response(request, RouteNotFound())


class PilarAPI(NinjaAPI):
    """NinjaAPI with problem documents wherever ninja would answer in its own format, no
    caching of responses (they carry personal data), and an OpenAPI document that says
    which responses are problem+json."""

    @property
    def urls(self) -> tuple[list[URLResolver | URLPattern], str, str]:
        patterns, app_name, namespace = super().urls
        for pattern in patterns:
            if isinstance(pattern, URLPattern):
                pattern.callback = _problem_outside_operations(pattern.callback)
        # Last: any other path under /api/ is a problem+json 404, not the staff UI's HTML page.
        catch_all = re_path(r"^.*$", _unknown_route, name="unknown-route")
        catch_all.callback.csrf_exempt = True  # type: ignore[attr-defined]
        return [*patterns, catch_all], app_name, namespace

    def create_response(
        self,
        request: HttpRequest,
        data: Any,
        *,
        status: int | None = None,
        temporal_response: HttpResponse | None = None,
    ) -> HttpResponse:
        response = super().create_response(
            request, data, status=status, temporal_response=temporal_response
        )
        response["Cache-Control"] = "no-store"
        return response

    def get_openapi_operation_id(self, operation: Any) -> str:
        # The view function names are unique across the API and read well in generated
        # clients ("person_register"), unlike the module-qualified default.
        return str(operation.view_func.__name__)

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                for status, response in operation.get("responses", {}).items():
                    if int(status) < 400:
                        continue
                    content = response.get("content", {})
                    if "application/json" in content:
                        content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
                    response["description"] = _ERROR_DESCRIPTIONS.get(
                        int(status), response.get("description", "")
                    )
        return schema


api = PilarAPI(
    title="Pilar API",
    version="1",
    description=DESCRIPTION,
    auth=core_api.ApiTokenAuth(),
    parser=core_api.StrictJsonParser(),
    urls_namespace="api",
)
api.add_router("/v1/", core_api.router)
api.add_router("/v1/", registry_api.router)
api.add_router("/v1/", contributions_api.router)
api.add_router("/v1/", benefits_api.router)
api.add_router("/v1/", linkage_api.router)
api.add_router("/v1/", exchange_api.router)


@api.exception_handler(ApplicationError)
def _application_error(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    return problem_response(request, error)


@api.exception_handler(NinjaValidationError)
def _request_invalid(request: HttpRequest, error: NinjaValidationError) -> HttpResponse:
    return problem_response(request, request_validation_failed(error.errors))


@api.exception_handler(AuthenticationError)
def _no_credentials(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return problem_response(request, AuthenticationRequired())


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    # Ninja wraps whatever the body parser raises in a 400; the parser's own error says more.
    cause = error.__cause__
    if isinstance(cause, ApplicationError):
        return problem_response(request, cause)
    if error.status_code == 400:
        return problem_response(request, MalformedJson(_("The request body is not valid JSON.")))
    problem = ApplicationError(code=f"http_{error.status_code}")
    problem.status = error.status_code
    return problem_response(request, problem)


@api.exception_handler(Http404)
def _http_404(request: HttpRequest, error: Http404) -> HttpResponse:
    return problem_response(request, NotFound())


@api.exception_handler(DjangoPermissionDenied)
def _django_permission_denied(request: HttpRequest, error: DjangoPermissionDenied) -> HttpResponse:
    return problem_response(request, PermissionDenied())


@api.exception_handler(SuspiciousOperation)
def _suspicious(request: HttpRequest, error: SuspiciousOperation) -> HttpResponse:
    if isinstance(error, RequestDataTooBig):
        return problem_response(request, RequestTooLarge())
    logger.warning("Suspicious API request refused: %s", error)
    return problem_response(request, ApplicationError(code="bad_request"))


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, error: Exception) -> HttpResponse:
    # The traceback goes to the log, never to the client: it can hold data and internals.
    logger.exception("Unexpected error in %s %s", request.method, request.path)
    return problem_response(request, InternalError())
