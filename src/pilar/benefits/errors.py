"""Errors of the benefits domain. Codes are part of the API contract: never rename one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from pilar.benefits.inputs import MissingInput
from pilar.core.errors import ApplicationError, Conflict, PermissionDenied


class ClaimIncomplete(ApplicationError):
    """Adjudication needs data the registry does not hold and the claim does not declare.
    ``missing`` lists every datum at once, each with its label in the reader's language."""

    code = "benefits.claim_incomplete"
    status = 422
    title = _("The claim cannot be decided: some data are missing.")

    def __init__(self, missing: Sequence[MissingInput]) -> None:
        language = get_language()
        listed = "; ".join(item.message(language) for item in missing)
        super().__init__(
            _("Missing: %(items)s.") % {"items": listed},
            extra={"missing": [item.to_dict(language) for item in missing]},
        )
        self.missing = list(missing)


class SameOfficer(PermissionDenied):
    """Maker–checker: the officer who made a decision cannot also approve or return it. The
    code is the contract's (``same_officer``), shared with the staff UI."""

    code = "same_officer"
    title = _("Another officer must check this decision: you made it.")


class ClaimState(Conflict):
    """The claim or decision is not in a state that allows the operation."""

    code = "benefits.invalid_state"
    title = _("The claim is not in a state that allows this.")


class ClaimExists(Conflict):
    code = "benefits.claim_exists"
    title = _("The person already has an open or granted claim for this benefit.")


class StaleVersion(Conflict):
    code = "benefits.stale_version"
    title = _("Someone else changed this claim after you opened it. Reload it and try again.")


class PackageUnavailable(ApplicationError):
    """The scheme package cannot be loaded (a changed published package, a broken file): an
    administrator must fix the rules before claims of this kind can be decided."""

    code = "benefits.package_unavailable"
    status = 503
    title = _("The rules of this scheme cannot be loaded.")


class EvaluationFailed(ApplicationError):
    """The rules engine could not decide with these inputs (no parameter value on the date, two
    exceptions applying at once): the rules or the claim date must be looked at."""

    code = "benefits.evaluation_failed"
    status = 422
    title = _("The rules could not be applied to this claim.")

    def __init__(self, message: Any, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message, extra=extra)
