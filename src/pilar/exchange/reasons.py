"""Reason codes of the exchange (docs/federation.md, "Reason codes").

DCI's codes where DCI has one, Pilar's in the same form otherwise. Each code has the HTTP
status a provider answers it with and a translated message template. Codes are part of the
contract between nodes: never rename one, add a new one instead.

A ``Refusal`` carries the code and named parameters; the message is rendered only when asked
for, in the language asked for, so the same refusal can be logged in English, answered in the
peer's envelope and shown to staff in Spanish.

Decisions where the contract is silent: the two client-side codes have no HTTP status of their
own; ``rjct.trust_list.invalid`` uses 400 and ``err.peer.unavailable`` 503 so that a caller
that needs one has a sensible value. A list parameter (``fields``) is rendered comma-separated.
``Refusal`` is not an ``ApplicationError`` (the contract makes ``message`` a method); views
that show one to staff render ``refusal.message()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.utils import translation
from django.utils.functional import Promise, lazy
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Reason:
    code: str
    http_status: int
    template: str | Promise


_REASON_LIST = [
    Reason(
        "rjct.body.too_large",
        413,
        _("The message is larger than this node accepts (%(limit_kb)s KB)."),
    ),
    Reason("rjct.json.invalid", 400, _("The body is not a UTF-8 JSON object.")),
    Reason("rjct.envelope.invalid", 400, _("The envelope is not valid: %(detail)s")),
    Reason(
        "rjct.version.invalid",
        400,
        _("Message version %(version)s is not supported; this node speaks 1.0.0."),
    ),
    Reason(
        "rjct.action.invalid",
        400,
        _("The header's action %(action)s differs from the address's action %(expected)s."),
    ),
    Reason("rjct.action.not_supported", 404, _("This node does not offer the action %(action)s.")),
    Reason(
        "rjct.receiver.invalid",
        400,
        _("The message is addressed to %(receiver)s, not to this node (%(node)s)."),
    ),
    Reason(
        "rjct.sender.unknown",
        403,
        _("The sender %(sender)s is not an active member of the trust list."),
    ),
    Reason(
        "rjct.key.unknown",
        403,
        _("The sender %(sender)s has no key %(key_id)s valid at the message's creation time."),
    ),
    Reason("rjct.signature.invalid", 401, _("The signature does not verify: %(detail)s")),
    Reason("rjct.message_ts.invalid", 401, _("The message's time is not valid: %(detail)s")),
    Reason(
        "rjct.message_id.duplicate",
        409,
        _("The message %(message_id)s was already received (replay or reused message id)."),
    ),
    Reason(
        "rjct.purpose.invalid",
        400,
        _("The purpose %(purpose)s is missing or not a known purpose code."),
    ),
    Reason(
        "rjct.agreement.missing",
        403,
        _(
            "No agreement in force lets %(consumer)s use %(service)s of %(provider)s for the "
            "purpose %(purpose)s."
        ),
    ),
    Reason(
        "rjct.field.not_agreed",
        403,
        _("These fields are outside the agreement: %(fields)s."),
    ),
    Reason("rjct.search_criteria.invalid", 422, _("The request is not valid: %(detail)s")),
    Reason("rjct.person.not_found", 404, _("No person with this identifier is held here.")),
    Reason("rjct.trust_list.invalid", 400, _("The trust list is not acceptable: %(detail)s")),
    Reason(
        "err.peer.unavailable",
        503,
        _("The member %(peer)s did not answer; the message is kept and will be retried."),
    ),
    Reason("err.internal", 500, _("The receiving node failed to process the message.")),
]

REASONS: dict[str, Reason] = {reason.code: reason for reason in _REASON_LIST}


def _format_now(template: Any, params: dict[str, Any]) -> str:
    return str(template) % params


_lazy_format = lazy(_format_now, str)


def lazy_detail(template: str | Promise, **params: Any) -> str:
    """A translated detail with parameters, rendered in the language active when the refusal's
    message is rendered, not when it is raised: the same refusal is answered in the peer's
    envelope and shown to staff in their language."""
    return _lazy_format(template, params)


def lazy_message(refusal: Refusal) -> str:
    """A refusal's message as a parameter of another message, rendered just as late."""
    return lazy(refusal.message, str)()


class _Params(dict[str, Any]):
    """Parameters for a message template: a parameter the raiser did not give renders as
    "—" instead of breaking the message (a refusal must always be explainable)."""

    def __missing__(self, key: str) -> str:
        return "—"


def _render(value: Any) -> str:
    if isinstance(value, str | Promise):
        return str(value)
    if isinstance(value, Iterable):
        return ", ".join(str(item) for item in value)
    return str(value)


class Refusal(Exception):
    """A reason code with its parameters: raised by the checks and the handlers, answered as a
    signed ``rjct`` response with the code's HTTP status."""

    def __init__(self, code: str, **params: Any) -> None:
        if code not in REASONS:
            raise ValueError(f"Unknown reason code {code!r}.")
        self.code = code
        self.params = params
        super().__init__(code)

    @property
    def http_status(self) -> int:
        return REASONS[self.code].http_status

    def message(self, language: str | None = None) -> str:
        """The translated explanation, in ``language`` or in the active language."""
        if language is None:
            return self._format()
        with translation.override(language):
            return self._format()

    def _format(self) -> str:
        params = _Params({name: _render(value) for name, value in self.params.items()})
        return str(REASONS[self.code].template) % params

    def __str__(self) -> str:
        return f"{self.code}: {self.message('en')}"

    def __repr__(self) -> str:
        return f"Refusal({self.code!r}, **{self.params!r})"
