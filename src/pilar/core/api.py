"""The API's shared machinery: bearer-token authentication, RFC 9457 problem documents, the
request parser, shared schemas and pagination, plus the ``/me`` and audit-trail endpoints.

Problem documents
-----------------
Every error the API returns is ``application/problem+json`` (RFC 9457) with these members:

``type``
    ``https://pilar.example/problems/<code>``. The URI is an identifier, the same on every node
    and stable across versions; it is not meant to be fetched (``.example`` is reserved for
    exactly that, RFC 2606). Clients switch on ``code`` or ``type``, never on ``title``.
``title``, ``detail``
    Human text in the request's language (``Accept-Language``: Spanish or English).
``status``
    The HTTP status, repeated for clients that lose it.
``code``
    The stable machine code (``validation_failed``, ``registry.possible_duplicate``, …), as in
    ``pilar.core.errors``.
``instance``
    The request path.
``errors``
    For input errors: ``[{field, code, message}]``. ``field`` is a path into the request
    (``given_names``, ``identifiers[0].value``, ``address.postal_code``, ``page``). Codes are the
    domain's where the domain has one (``required``, ``too_long``, ``invalid_choice``,
    ``curp.invalid_check_digit`` …), so a client sees the same code whether the request schema
    or the service caught the problem; the parser adds ``field.unknown``,
    ``field.invalid_type``, ``field.invalid_date``, ``field.invalid_decimal``,
    ``field.out_of_range``, ``field.too_many_items``, ``field.not_nullable``,
    ``field.invalid_format``, ``field.invalid`` and ``json.malformed``.

Other members come from the error itself: ``candidates`` for a possible duplicate,
``current_version`` for a stale version, ``permission`` for a refused permission.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from ninja import Field, Query, Router, Schema
from ninja.parser import Parser
from ninja.security import HttpBearer
from pydantic import BeforeValidator, ConfigDict, StrictBool, StrictInt
from pydantic_core import PydanticCustomError

from pilar.core import selectors
from pilar.core.actor import Actor
from pilar.core.auth import token_authenticate
from pilar.core.errors import ApplicationError, FieldError, ValidationFailed
from pilar.core.models import AccessLogEntry, ApiToken, AuditEvent
from pilar.core.pagination import MAX_PAGE_SIZE, Page

logger = logging.getLogger("pilar.api")

PROBLEM_TYPE_BASE = "https://pilar.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
# Database ids are 64-bit signed integers; a larger number can name nothing, and passing it to
# the database would fail with an overflow instead of a clean "not found".
MAX_ID = 2**63 - 1
# Beyond this a page is empty anyway: result counts are capped well below it.
MAX_PAGE_NUMBER = 100_000
# A token is "pilar_" + 12 hex digits + "_" + 43 characters; anything much longer is not one,
# and is refused before it is hashed.
MAX_TOKEN_LENGTH = 200


# --- errors the API adds to the domain's ------------------------------------------------------


class AuthenticationProblem(ApplicationError):
    """A 401: the response carries a ``WWW-Authenticate`` challenge (RFC 6750)."""

    status = 401
    challenge = 'Bearer realm="pilar"'


class AuthenticationRequired(AuthenticationProblem):
    code = "authentication_required"
    title = _("Authentication is required.")

    def __init__(self) -> None:
        super().__init__(
            _("Send an API token in the Authorization header: Bearer pilar_<prefix>_<secret>.")
        )


class TokenInvalid(AuthenticationProblem):
    code = "token_invalid"
    title = _("The API token is not valid.")
    challenge = 'Bearer realm="pilar", error="invalid_token"'

    def __init__(self, message: str | Promise | None = None) -> None:
        super().__init__(
            message or _("The token is unknown, expired or revoked. Ask for a new token.")
        )


class MalformedJson(ApplicationError):
    code = "json.malformed"
    status = 400
    title = _("The request body is not valid JSON.")

    def __init__(self, message: str | Promise) -> None:
        super().__init__(message)
        self.field_errors = {"body": [FieldError(self.code, message)]}


class RequestTooLarge(ApplicationError):
    code = "request.too_large"
    status = 413
    title = _("The request body is too large.")


class RouteNotFound(ApplicationError):
    """No API operation at this path: a mistake in the URL, not a missing record."""

    code = "route.not_found"
    status = 404
    title = _("There is no API operation at this address.")


class MethodNotAllowed(ApplicationError):
    code = "method_not_allowed"
    status = 405
    title = _("This operation does not accept this HTTP method.")


class InternalError(ApplicationError):
    code = "internal_error"
    status = 500
    title = _("An unexpected error occurred. It has been logged; please try again later.")


# --- problem documents ------------------------------------------------------------------------

_RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "code", "instance", "errors"})


def problem_type(code: str) -> str:
    return PROBLEM_TYPE_BASE + code


def field_errors_of(error: ApplicationError) -> list[dict[str, str]]:
    per_field: Mapping[str, Sequence[FieldError]] = getattr(error, "field_errors", {})
    return [item.as_dict(name) for name, items in per_field.items() for item in items]


def problem_document(request: HttpRequest, error: ApplicationError) -> dict[str, Any]:
    """The problem+json body for an application error, in the request's language."""
    document: dict[str, Any] = {
        "type": problem_type(error.code),
        "title": str(error.title),
        "status": error.status,
        "detail": str(error.message),
        "code": error.code,
        "instance": request.path,
    }
    errors = field_errors_of(error)
    if errors:
        document["errors"] = errors
    # Extra members (candidates, current_version, permission, …) ride along; they never
    # overwrite the standard ones.
    for key, value in error.extra.items():
        if key not in _RESERVED_MEMBERS:
            document[key] = value
    return document


def problem_response(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    response = HttpResponse(
        json.dumps(problem_document(request, error), cls=DjangoJSONEncoder),
        status=error.status,
        content_type=PROBLEM_MEDIA_TYPE,
    )
    if isinstance(error, AuthenticationProblem):
        response["WWW-Authenticate"] = error.challenge
    # Error documents can echo personal data (duplicate candidates, submitted values).
    response["Cache-Control"] = "no-store"
    return response


# --- request validation errors (pydantic) → field errors ----------------------------------------

_TYPE_MESSAGES: dict[str, Promise] = {
    "string": _("Expected text."),
    "int": _("Expected a whole number."),
    "bool": _("Expected true or false."),
    "list": _("Expected a list."),
    "model": _("Expected a JSON object."),
    "dict": _("Expected a JSON object."),
    "model_attributes": _("Expected a JSON object."),
}


def _message_for(kind: str, ctx: Mapping[str, Any]) -> tuple[str, str | Promise]:
    """A stable code and a translated message for one pydantic error type."""
    if kind == "missing":
        return "required", _("This field is required.")
    if kind == "extra_forbidden":
        return "field.unknown", _("Unknown field.")
    if kind == "string_too_long":
        return "too_long", _("At most %(max)d characters.") % {"max": ctx.get("max_length", 0)}
    if kind == "too_long":
        return "field.too_many_items", _("At most %(max)d items.") % {
            "max": ctx.get("max_length", 0)
        }
    if kind == "string_too_short":
        return "required", _("This field is required.")
    if kind in ("literal_error", "enum"):
        return "invalid_choice", _("Choose one of: %(choices)s.") % {
            "choices": ctx.get("expected", "")
        }
    if kind.startswith(("date", "datetime")):
        return "field.invalid_date", _("Expected a date written as YYYY-MM-DD.")
    if kind == "decimal_max_places":
        return "field.invalid_decimal", _("At most %(places)d decimal places.") % {
            "places": ctx.get("decimal_places", 0)
        }
    if kind in ("decimal_max_digits", "decimal_whole_digits"):
        return "field.invalid_decimal", _("The number is too large.")
    if kind in ("decimal_type", "decimal_parsing", "finite_number"):
        return "field.invalid_decimal", _(
            'Expected a decimal number, as a string ("350.50") or a JSON number.'
        )
    if kind in ("greater_than", "greater_than_equal"):
        return "field.out_of_range", _("The smallest allowed value is %(limit)s.") % {
            "limit": ctx.get("gt", ctx.get("ge", ""))
        }
    if kind in ("less_than", "less_than_equal"):
        return "field.out_of_range", _("The largest allowed value is %(limit)s.") % {
            "limit": ctx.get("lt", ctx.get("le", ""))
        }
    if kind == "string_pattern_mismatch":
        return "field.invalid_format", _("The value does not have the expected format.")
    if kind == "json_invalid":
        return "json.malformed", _("The request body is not valid JSON.")
    for family, message in _TYPE_MESSAGES.items():
        if kind in (f"{family}_type", f"{family}_parsing", f"{family}_from_float"):
            return "field.invalid_type", message
    if kind.endswith(("_type", "_parsing")):
        return "field.invalid_type", _("The value has the wrong type.")
    return "field.invalid", _("The value is not valid.")


def field_path(location: Sequence[str | int]) -> str:
    """``("body", "payload", "contacts", 0, "value")`` → ``contacts[0].value``.

    The first element is the parameter source (body, query, path, header). For the body the
    second is the view's parameter name, which is not part of the request the client wrote.
    """
    parts = list(location)
    source = str(parts.pop(0)) if parts else ""
    if source == "body" and parts:
        parts.pop(0)
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path or source


def request_validation_failed(errors: Iterable[Mapping[str, Any]]) -> ValidationFailed:
    """Ninja's request validation errors as a ``ValidationFailed`` with stable codes."""
    per_field: dict[str, list[FieldError]] = {}
    for error in errors:
        code, message = _message_for(str(error.get("type", "")), error.get("ctx") or {})
        name = field_path(error.get("loc", ()))
        per_field.setdefault(name, []).append(FieldError(code, message))
    return ValidationFailed(per_field)


# --- parsing ----------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity, which are not JSON (RFC 8259) and not money.
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # With a repeated key, json keeps the last value silently; a client with that bug would
    # never learn that half of what it sent was ignored.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice")
        result[key] = value
    return result


class StrictJsonParser(Parser):
    """JSON bodies with numbers read as ``Decimal`` (money never passes through a float),
    NaN/Infinity and repeated keys refused, and a clear error for malformed input."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        try:
            return json.loads(
                request.body,
                parse_float=Decimal,
                parse_constant=_reject_constant,
                object_pairs_hook=_unique_keys,
            )
        except json.JSONDecodeError as error:
            raise MalformedJson(
                _("The request body is not valid JSON (line %(line)d, column %(column)d).")
                % {"line": error.lineno, "column": error.colno}
            ) from error
        except ValueError as error:  # bad encoding, NaN, repeated keys, a huge integer
            raise MalformedJson(_("The request body is not valid JSON.")) from error


# --- authentication ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiCredentials:
    """What a request authenticated with: the token and the actor it acts as."""

    token: ApiToken
    actor: Actor


class ApiTokenAuth(HttpBearer):
    """``Authorization: Bearer pilar_<prefix>_<secret>``.

    No header at all is ``authentication_required``; a header that is not a usable Pilar token
    (wrong scheme, unknown, expired, revoked, the owner deactivated or no longer holding the
    token's role) is ``token_invalid``. The actor has only the token's role, on the API channel.
    """

    # ninja turns openapi_* attributes into the OpenAPI security scheme, with this spelling.
    openapi_bearerFormat = "pilar_<prefix>_<secret>"

    def __call__(self, request: HttpRequest) -> ApiCredentials | None:
        header = request.headers.get(self.header, "")
        if not header.strip():
            return None  # ninja then raises AuthenticationError: authentication_required
        scheme, _space, raw = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise TokenInvalid()
        return self.authenticate(request, raw.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiCredentials:
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenInvalid()
        api_token = token_authenticate(token)
        if api_token is None:
            raise TokenInvalid()
        if not getattr(api_token, "role_held", False):
            # The role was withdrawn from the user after the token was issued: the token can
            # no longer do anything, and saying so beats a 403 on every call.
            raise TokenInvalid(_("The token's owner no longer holds the token's role."))
        actor = Actor.for_api_token(api_token.user, role=api_token.role)
        return ApiCredentials(token=api_token, actor=actor)


def credentials_of(request: HttpRequest) -> ApiCredentials:
    credentials = getattr(request, "auth", None)
    if not isinstance(credentials, ApiCredentials):
        raise AuthenticationRequired()
    return credentials


def actor_of(request: HttpRequest) -> Actor:
    """The actor an authenticated API request acts as."""
    return credentials_of(request).actor


# --- shared schemas and types -----------------------------------------------------------------

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date_text(value: Any) -> Any:
    # Pydantic would also take a Unix timestamp (0 → 1970-01-01) or a datetime string; a
    # registry date is written YYYY-MM-DD and nothing else.
    if isinstance(value, datetime.date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise PydanticCustomError("date_parsing", "Expected a date written as YYYY-MM-DD")
    return value


IsoDate = Annotated[datetime.date, BeforeValidator(_iso_date_text)]
RecordId = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
Flag = StrictBool


def _decimal_text(value: Any) -> Any:
    return None if value is None else f"{value}"


# Money goes out as a string ("350.00"): JSON numbers are floats to most clients.
MoneyOut = Annotated[str, BeforeValidator(_decimal_text), Field(examples=["350.00"])]


class InputSchema(Schema):
    """A request body: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class FieldErrorOut(Schema):
    field: str = Field(examples=["identifiers[0].value"])
    code: str = Field(examples=["curp.invalid_check_digit"])
    message: str


class DuplicateCandidateOut(Schema):
    """A registered person who may be the one being registered, scored by the record linkage
    model (``linkage.entry``): the match weight is log2 of the Bayes factor, ``breakdown`` gives
    each comparison's level and partial weight."""

    id: int
    name: str
    birth_date: datetime.date
    region: str
    match_weight: float | None = None
    match_probability: float | None = None
    identifier_conflict: bool = False
    agreeing: list[str] = Field(default_factory=list)
    differing: list[str] = Field(default_factory=list)
    breakdown: list[dict[str, Any]] = Field(default_factory=list)


class ProblemOut(Schema):
    """An RFC 9457 problem document (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["https://pilar.example/problems/validation_failed"])
    title: str
    status: int
    detail: str
    code: str = Field(examples=["validation_failed"])
    instance: str = Field(examples=["/api/v1/persons"])
    errors: list[FieldErrorOut] | None = None
    candidates: list[DuplicateCandidateOut] | None = Field(
        None, description="Only for registry.possible_duplicate: the persons already registered."
    )
    current_version: int | None = Field(
        None, description="Only for registry.stale_version: the record's version now."
    )


# Responses every authenticated operation can give; operations add 404/409/422 as they apply.
AUTH_ERRORS: dict[int, type[ProblemOut]] = {401: ProblemOut, 403: ProblemOut}
READ_ERRORS: dict[int, type[ProblemOut]] = {**AUTH_ERRORS, 404: ProblemOut, 422: ProblemOut}
WRITE_ERRORS: dict[int, type[ProblemOut]] = {
    400: ProblemOut,
    **AUTH_ERRORS,
    404: ProblemOut,
    409: ProblemOut,
    422: ProblemOut,
}

ItemT = TypeVar("ItemT")


class PageOut(Schema, Generic[ItemT]):
    items: list[ItemT]
    page: int
    page_size: int
    total: int = Field(description="Matches counted, up to a cap; see total_is_exact.")
    total_is_exact: bool = Field(
        description="False when there are more matches than counted: narrow the search."
    )
    next: str | None = Field(description="The URL of the next page, if there is one.")
    previous: str | None = Field(description="The URL of the previous page, if there is one.")


def _page_url(request: HttpRequest, number: int) -> str:
    query: QueryDict = request.GET.copy()
    query["page"] = str(number)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


def page_out(request: HttpRequest, page: Page[Any], items: Sequence[Any]) -> dict[str, Any]:
    """The pagination envelope around already-shaped ``items``."""
    # With a capped count the last counted page may not be the last one; a full page then
    # suggests there is more.
    has_next = page.has_next or (not page.total_is_exact and len(items) == page.page_size)
    return {
        "items": list(items),
        "page": page.number,
        "page_size": page.page_size,
        "total": page.total,
        "total_is_exact": page.total_is_exact,
        "next": _page_url(request, page.number + 1) if has_next else None,
        "previous": _page_url(request, page.number - 1) if page.has_previous else None,
    }


PageNumber = Annotated[int, Field(ge=1, le=MAX_PAGE_NUMBER)]
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)]


# --- /me ----------------------------------------------------------------------------------------

router = Router()


class OfficeOut(Schema):
    code: str
    name: str
    region: str


class TokenOut(Schema):
    name: str
    prefix: str
    role: str
    created_at: datetime.datetime
    expires_at: datetime.datetime


class MeOut(Schema):
    username: str
    display_name: str
    role: str = Field(description="The token's role: the only role the API acts with.")
    permissions: list[str]
    region: str | None = Field(description="The office's region; null for national scope.")
    national_scope: bool
    office: OfficeOut | None
    token: TokenOut


@router.get("/me", response={200: MeOut, **AUTH_ERRORS}, tags=["Me"], summary="Who am I")
def me(request: HttpRequest) -> dict[str, Any]:
    """The user and token this request authenticated with, and what the token may do."""
    credentials = credentials_of(request)
    actor, token = credentials.actor, credentials.token
    user = token.user
    return {
        "username": user.username,
        "display_name": user.display_name(),
        "role": token.role,
        "permissions": sorted(actor.permissions),
        "region": actor.region,
        "national_scope": actor.national_scope,
        "office": user.office,
        "token": token,
    }


# --- audit trail and access log -----------------------------------------------------------------


class TrailQuery(Schema):
    actor: str = Field("", max_length=150, description="Exact username of who acted.")
    action: str = Field("", max_length=60, description="Action, or its prefix: person.")
    person_id: int | None = Field(None, ge=1, le=MAX_ID)
    channel: str = Field("", max_length=10, description="ui, api, cli, bulk or export.")
    date_from: IsoDate | None = None
    date_to: IsoDate | None = None
    page: PageNumber = 1
    page_size: PageSize = 50

    def trail_filter(self, **more: Any) -> selectors.TrailFilter:
        return selectors.TrailFilter(
            actor_label=self.actor,
            action=self.action,
            person_id=self.person_id,
            channel=self.channel,
            date_from=self.date_from,
            date_to=self.date_to,
            **more,
        )


class AuditQuery(TrailQuery):
    entity_type: str = Field("", max_length=40)
    entity_id: str = Field("", max_length=40)


class AuditEventOut(Schema):
    id: int
    at: datetime.datetime
    actor: str = Field(validation_alias="actor_label")
    channel: str
    action: str
    entity_type: str
    entity_id: str
    person_id: int | None
    changes: dict[str, Any] = Field(description="Changed fields as {field: [before, after]}.")
    note: str


class AccessLogEntryOut(Schema):
    id: int
    at: datetime.datetime
    actor: str = Field(validation_alias="actor_label")
    channel: str
    person_id: int
    action: str
    purpose: str


@router.get(
    "/audit/events",
    response={200: PageOut[AuditEventOut], **AUTH_ERRORS, 422: ProblemOut},
    tags=["Audit"],
    summary="Audit events",
)
def audit_events(request: HttpRequest, filters: Query[AuditQuery]) -> dict[str, Any]:
    """Every write, newest first (auditors)."""
    page: Page[AuditEvent] = selectors.audit_event_list(
        actor=actor_of(request),
        filters=filters.trail_filter(entity_type=filters.entity_type, entity_id=filters.entity_id),
        page=filters.page,
        page_size=filters.page_size,
    )
    return page_out(request, page, page.items)


@router.get(
    "/audit/access-log",
    response={200: PageOut[AccessLogEntryOut], **AUTH_ERRORS, 422: ProblemOut},
    tags=["Audit"],
    summary="Access log",
)
def access_log(request: HttpRequest, filters: Query[TrailQuery]) -> dict[str, Any]:
    """Every read of a person's record, newest first (auditors and data stewards)."""
    page: Page[AccessLogEntry] = selectors.access_log_list(
        actor=actor_of(request),
        filters=filters.trail_filter(),
        page=filters.page,
        page_size=filters.page_size,
    )
    return page_out(request, page, page.items)
