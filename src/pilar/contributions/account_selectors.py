"""Reads behind the staff account screens that ``contributions.selectors`` does not cover: the
bank files imported, an employer's portal account, the non-filers report in full (for the CSV
download) and the open registration requests.

Like every selector they take the actor and check the permission. Bank files hold payments of
many employers, so an employer's own portal account never sees them.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import QuerySet

from pilar.contributions.models import BankImport, Payment, RegistrationRequest
from pilar.contributions.selectors import NonFiler, non_filers
from pilar.core.actor import Actor
from pilar.core.errors import NotFound, PermissionDenied
from pilar.core.pagination import MAX_PAGE_SIZE, Page, paginate
from pilar.core.roles import Perm
from pilar.portal.models import EmployerUser


def _require_staff(actor: Actor, permission: str) -> None:
    actor.require(permission)
    if actor.employer_id is not None:
        raise PermissionDenied(extra={"permission": permission})


def bank_import_list(*, actor: Actor, page: int = 1, page_size: int = 25) -> Page[BankImport]:
    """The bank files imported, newest first, with who imported them."""
    _require_staff(actor, Perm.ACCOUNT_VIEW)
    query: QuerySet[BankImport] = BankImport.objects.select_related("imported_by").order_by(
        "-imported_at", "-id"
    )
    return paginate(query, page=page, page_size=page_size)


def bank_import_get(*, actor: Actor, import_id: int) -> BankImport:
    _require_staff(actor, Perm.ACCOUNT_VIEW)
    imported = BankImport.objects.select_related("imported_by").filter(pk=import_id).first()
    if imported is None:
        raise NotFound(extra={"entity": "bank_import", "id": import_id})
    return imported


def bank_import_payments(
    *, actor: Actor, import_id: int, page: int = 1, page_size: int = 50
) -> Page[Payment]:
    """The payments a bank file brought in, in the file's order, with their employers."""
    imported = bank_import_get(actor=actor, import_id=import_id)
    query: QuerySet[Payment] = (
        Payment.objects.filter(bank_import=imported).select_related("employer").order_by("id")
    )
    return paginate(query, page=page, page_size=page_size)


@dataclass(frozen=True)
class PortalAccount:
    """An employer's portal sign-in, as collections staff see it (never the password)."""

    username: str
    created_at: datetime.datetime
    is_active: bool
    locked: bool


def employer_portal_account(*, actor: Actor, employer_id: int) -> PortalAccount | None:
    """The employer's portal account, or None when it has none yet."""
    _require_staff(actor, Perm.ACCOUNT_VIEW)
    account = EmployerUser.objects.select_related("user").filter(employer_id=employer_id).first()
    if account is None:
        return None
    user = account.user
    return PortalAccount(
        username=user.username,
        created_at=account.created_at,
        is_active=user.is_active,
        locked=user.is_locked(),
    )


def non_filers_all(*, actor: Actor, period: datetime.date) -> Iterator[NonFiler]:
    """Every non-filer of the month, for the CSV download: the report's pages one after the
    other, so the download lists exactly what the screen does."""
    number = 1
    while True:
        page = non_filers(actor=actor, period=period, page=number, page_size=MAX_PAGE_SIZE)
        yield from page.items
        if len(page.items) < MAX_PAGE_SIZE:
            return
        number += 1


def registration_request_list(
    *, actor: Actor, page: int = 1, page_size: int = 50
) -> Page[RegistrationRequest]:
    """Open requests to register a worker an employer declared but the registry does not know,
    oldest first. Regional registrars see the requests of employers in their own state, where
    the employer's office would send the worker."""
    _require_staff(actor, Perm.PERSON_REGISTER)
    query: QuerySet[RegistrationRequest] = RegistrationRequest.objects.filter(
        resolved_at__isnull=True
    ).select_related("declaration__employer")
    if not actor.national_scope:
        query = query.filter(declaration__employer__state=actor.region or "")
    return paginate(query.order_by("created_at", "id"), page=page, page_size=page_size)
