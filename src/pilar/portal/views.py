"""The employer portal: an employer signs in with its RFC, uploads its monthly declarations,
follows their validation, confirms the statement, and reads its workers and its account.

Everything an employer does goes through an employer actor (``Actor.for_employer_user``), which
the contributions selectors and services limit to that employer: another employer's declaration
is "not found". The declaration page is the staff UI's, rendered with the portal's layout (see
``pilar.contributions.views``). The file format page and the templates are public: an employer
may want them before it has an account.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pilar.contributions import fileformat, selectors
from pilar.contributions import views as declaration_views
from pilar.core.actor import Actor
from pilar.core.audit import audit_record
from pilar.core.errors import ApplicationError, NotFound, PermissionDenied
from pilar.core.identifiers import CURP, NSS, compact
from pilar.core.models import User
from pilar.core.views import is_htmx, page_number
from pilar.portal.forms import DeclarationStatusFilterForm, DeclarationUploadForm, PortalLoginForm
from pilar.portal.models import EmployerUser, employer_username
from pilar.registry.models import Employer, Employment

logger = logging.getLogger(__name__)

NAMESPACE = "portal"
TEMPLATE_LANGUAGES = ("es", "en")
TEMPLATE_FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class Portal:
    """The signed-in employer of a portal request."""

    actor: Actor
    employer: Employer


PortalView = Callable[..., HttpResponseBase]


def _error_page(
    request: HttpRequest, message: str, status: int, employer: Employer | None = None
) -> HttpResponse:
    return render(
        request,
        "portal/error.html",
        {"message": message, "status": status, "employer": employer},
        status=status,
    )


def portal_view(view: PortalView) -> PortalView:
    """Sign-in to the portal required; the view gets the employer's ``Portal`` after the request.

    Only accounts linked to an employer get through: a staff member signed in to the staff UI is
    refused here (403), so staff never act as an employer by accident. Domain errors become the
    portal's own error pages, in the portal's layout: 404 for another employer's declaration."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            login = redirect_to_login(request.get_full_path(), reverse("portal:login"))
            if is_htmx(request):
                # A poll after the session has ended: the whole page goes to the sign-in,
                # rather than the sign-in page being swapped into the declaration's page.
                response = HttpResponse()
                response["HX-Redirect"] = login["Location"]
                return response
            return login
        account = (
            EmployerUser.objects.select_related("employer").filter(user_id=request.user.pk).first()
        )
        if account is None:
            return _error_page(
                request,
                _(
                    "This is the employers' portal. Staff accounts cannot use it: sign out and "
                    "sign in with the employer's RFC, or use the staff pages."
                ),
                403,
            )
        actor = Actor.for_employer_user(request.user, employer_id=account.employer_id)
        employer = account.employer
        try:
            return view(request, Portal(actor=actor, employer=employer), *args, **kwargs)
        except NotFound:
            message = _("The page or record you asked for does not exist.")
            return _error_page(request, message, 404, employer)
        except PermissionDenied:
            return _error_page(request, _("Your account is not allowed to do this."), 403, employer)
        except ApplicationError as error:
            return _error_page(request, str(error.message), error.status, employer)

    return wrapper


def _render(
    request: HttpRequest,
    portal: Portal,
    template: str,
    context: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request, template, {"employer": portal.employer, **(context or {})}, status=status
    )


# --- sign-in ----------------------------------------------------------------------------------


def _safe_next(request: HttpRequest, candidate: str) -> str:
    """Back to the portal page that asked for the sign-in; never off the site or out of the
    portal."""
    if candidate.startswith("/portal/") and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("portal:home")


def _employer_account(user: User | None) -> EmployerUser | None:
    if user is None:
        return None
    return EmployerUser.objects.select_related("employer").filter(user=user).first()


def _signed_in_employer(request: HttpRequest) -> Employer | None:
    if not request.user.is_authenticated:
        return None
    account = _employer_account(request.user)
    return account.employer if account is not None else None


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = (request.POST.get("next") or request.GET.get("next") or "")[:2000]
    if request.method == "GET" and _employer_account(
        request.user if request.user.is_authenticated else None
    ):
        return redirect(_safe_next(request, next_url))
    form = PortalLoginForm(request.POST if request.method == "POST" else None)
    locked = False
    if request.method == "POST" and form.is_valid():
        rfc = compact(form.cleaned_data["rfc"]).upper()
        user = authenticate(
            request, username=employer_username(rfc), password=form.cleaned_data["password"]
        )
        account = _employer_account(user)
        if account is not None:
            auth_login(request, account.user)
            with transaction.atomic():
                audit_record(
                    actor=Actor.for_employer_user(account.user, employer_id=account.employer_id),
                    action="auth.login",
                    entity_type="user",
                    entity_id=account.user.pk,
                )
            return redirect(_safe_next(request, next_url))
        # The lockout backend flags a locked account on the request: the employer must then be
        # told to wait, or it keeps retrying a password that may in fact be right.
        locked = bool(getattr(request, "pilar_login_locked", False))
        if not locked:
            form.add_error(None, _("The RFC or the password is wrong."))
    return render(
        request,
        "portal/login.html",
        {
            "form": form,
            "locked": locked,
            "lockout_minutes": settings.PILAR_LOCKOUT_MINUTES,
            "next": next_url,
        },
        status=200 if request.method == "GET" else 422,
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    account = _employer_account(request.user if request.user.is_authenticated else None)
    if account is not None:
        with transaction.atomic():
            audit_record(
                actor=Actor.for_employer_user(account.user, employer_id=account.employer_id),
                action="auth.logout",
                entity_type="user",
                entity_id=account.user.pk,
            )
        auth_logout(request)
        messages.info(request, _("You have signed out."))
    return redirect("portal:login")


# --- home, workers, account -------------------------------------------------------------------


@require_GET
@portal_view
def home(request: HttpRequest, portal: Portal) -> HttpResponse:
    employer_id = portal.employer.pk
    return _render(
        request,
        portal,
        "portal/home.html",
        {
            "declarations": selectors.declaration_list(
                actor=portal.actor, employer_id=employer_id, page_size=5
            ),
            "account": selectors.account_get(actor=portal.actor, employer_id=employer_id),
        },
    )


@dataclass(frozen=True)
class WorkerRow:
    employment: Employment
    curp: str
    nss: str
    daily_salary: Decimal | None


def _worker_rows(employments: list[Employment]) -> list[WorkerRow]:
    # The selector has checked the employer; the identifiers and salaries of its page of
    # workers are fetched in two queries rather than two per worker.
    prefetch_related_objects(employments, "person__identifiers", "salaries")
    today = timezone.localdate()
    rows = []
    for employment in employments:
        identifiers = {
            identifier.scheme: identifier.value
            for identifier in employment.person.identifiers.all()
            if identifier.is_active
        }
        salaries = [s for s in employment.salaries.all() if s.effective_from <= today]
        current = max(salaries, key=lambda s: s.effective_from, default=None)
        rows.append(
            WorkerRow(
                employment=employment,
                curp=identifiers.get(CURP, ""),
                nss=identifiers.get(NSS, ""),
                daily_salary=current.daily_salary if current else None,
            )
        )
    return rows


@require_GET
@portal_view
def workers(request: HttpRequest, portal: Portal) -> HttpResponse:
    page = selectors.employer_workers(
        actor=portal.actor, employer_id=portal.employer.pk, page=page_number(request)
    )
    return _render(
        request, portal, "portal/workers.html", {"page": page, "rows": _worker_rows(page.items)}
    )


@require_GET
@portal_view
def account(request: HttpRequest, portal: Portal) -> HttpResponse:
    return _render(
        request,
        portal,
        "portal/account.html",
        {"account": selectors.account_get(actor=portal.actor, employer_id=portal.employer.pk)},
    )


# --- declarations -----------------------------------------------------------------------------


@require_GET
@portal_view
def declaration_list(request: HttpRequest, portal: Portal) -> HttpResponse:
    form = DeclarationStatusFilterForm(request.GET)
    page = None
    if form.is_valid():
        page = selectors.declaration_list(
            actor=portal.actor,
            employer_id=portal.employer.pk,
            status=form.cleaned_data["status"],
            page=page_number(request),
        )
    return _render(
        request,
        portal,
        "portal/declaration_list.html",
        {"form": form, "page": page},
        status=200 if page is not None else 422,
    )


@require_http_methods(["GET", "POST"])
@portal_view
def declaration_upload(request: HttpRequest, portal: Portal) -> HttpResponse:
    form = DeclarationUploadForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
    )
    if request.method == "POST" and form.is_valid():
        done = declaration_views.submit_upload(
            request,
            actor=portal.actor,
            form=form,
            employer_id=portal.employer.pk,
            namespace=NAMESPACE,
        )
        if done is not None:
            return done
    return _render(
        request,
        portal,
        "portal/declaration_upload.html",
        {"form": form},
        status=422 if form.is_bound else 200,
    )


@require_GET
@portal_view
def declaration_detail(request: HttpRequest, portal: Portal, declaration_id: int) -> HttpResponse:
    fragment = declaration_views.declaration_fragment(
        request, actor=portal.actor, declaration_id=declaration_id, namespace=NAMESPACE
    )
    if fragment is not None:
        return fragment
    declaration = selectors.declaration_get(actor=portal.actor, declaration_id=declaration_id)
    context = declaration_views.declaration_sections(
        request, actor=portal.actor, declaration=declaration, namespace=NAMESPACE
    )
    response = _render(request, portal, "portal/declaration_detail.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@portal_view
def declaration_progress(request: HttpRequest, portal: Portal, declaration_id: int) -> HttpResponse:
    return declaration_views.declaration_progress_response(
        request, actor=portal.actor, declaration_id=declaration_id, namespace=NAMESPACE
    )


@require_POST
@portal_view
def declaration_confirm(request: HttpRequest, portal: Portal, declaration_id: int) -> HttpResponse:
    return declaration_views.confirm_or_withdraw(
        request,
        actor=portal.actor,
        declaration_id=declaration_id,
        namespace=NAMESPACE,
        confirm=True,
    )


@require_POST
@portal_view
def declaration_withdraw(request: HttpRequest, portal: Portal, declaration_id: int) -> HttpResponse:
    return declaration_views.confirm_or_withdraw(
        request,
        actor=portal.actor,
        declaration_id=declaration_id,
        namespace=NAMESPACE,
        confirm=False,
    )


@require_GET
@portal_view
def declaration_report(
    request: HttpRequest, portal: Portal, declaration_id: int, file_format: str
) -> HttpResponse:
    return declaration_views.report_response(
        actor=portal.actor, declaration_id=declaration_id, file_format=file_format
    )


# --- the file format: public ------------------------------------------------------------------


@require_GET
def file_format(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "portal/file_format.html",
        {
            "columns": fileformat.COLUMNS,
            "max_megabytes": fileformat.max_bytes() // (1024 * 1024),
            "movements": [
                ("alta", _("hire: the worker starts; creates the working period")),
                ("baja", _("separation: the worker leaves; ends the working period")),
                ("modificacion", _("salary change: the SBC changes from the movement date")),
            ],
            # Signed in or not: the layout shows the employer's menu when there is one.
            "employer": _signed_in_employer(request),
        },
    )


@require_GET
def template_download(request: HttpRequest, language: str, file_format: str) -> HttpResponse:
    """The declaration template, with Spanish or English headers and two example lines."""
    if language not in TEMPLATE_LANGUAGES or file_format not in TEMPLATE_FORMATS:
        message = _("The page or record you asked for does not exist.")
        return _error_page(request, message, 404, _signed_in_employer(request))
    if file_format == "csv":
        content = fileformat.template_csv(language)
    else:
        content = fileformat.template_xlsx(language)
    stem = "plantilla-declaracion" if language == "es" else "declaration-template"
    response = HttpResponse(content, content_type=TEMPLATE_FORMATS[file_format])
    response["Content-Disposition"] = f'attachment; filename="{stem}.{file_format}"'
    return response
