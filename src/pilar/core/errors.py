"""Domain errors. Every error a user can cause is an ``ApplicationError`` with a stable code.

The API turns them into RFC 9457 problem+json documents, the staff UI into form errors and
messages. Codes are part of the API contract: never rename one, add a new one instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field: a stable code and a translated message."""

    code: str
    message: str | Promise

    def as_dict(self, field_name: str) -> dict[str, str]:
        return {"field": field_name, "code": self.code, "message": str(self.message)}


class ApplicationError(Exception):
    """Base of every error a caller can cause and should be told about."""

    code: str = "error"
    status: int = 400
    title: str | Promise = _("The request could not be processed.")

    def __init__(
        self,
        message: str | Promise | None = None,
        *,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = message if message is not None else self.title
        if code is not None:
            self.code = code
        self.extra: dict[str, Any] = extra or {}
        super().__init__(str(self.message))


@dataclass
class FieldErrors:
    """Collects field errors while validating, so a caller hears every problem at once."""

    errors: dict[str, list[FieldError]] = field(default_factory=dict)

    def add(self, field_name: str, code: str, message: str | Promise) -> None:
        self.errors.setdefault(field_name, []).append(FieldError(code, message))

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)


class ValidationFailed(ApplicationError):
    code = "validation_failed"
    status = 422
    title = _("Some fields are not valid.")

    def __init__(self, field_errors: dict[str, list[FieldError]]) -> None:
        super().__init__()
        self.field_errors = field_errors

    @classmethod
    def single(cls, field_name: str, code: str, message: str | Promise) -> ValidationFailed:
        return cls({field_name: [FieldError(code, message)]})


class PermissionDenied(ApplicationError):
    code = "permission_denied"
    status = 403
    title = _("You do not have permission to do this.")


class NotFound(ApplicationError):
    code = "not_found"
    status = 404
    title = _("The record does not exist or is outside your area.")


class Conflict(ApplicationError):
    code = "conflict"
    status = 409
    title = _("The request conflicts with the current state of the record.")
