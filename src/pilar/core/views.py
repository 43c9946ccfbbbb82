"""Staff web UI: sign-in, home, audit trail, access log and API tokens, plus the helpers every
UI view uses (the actor of a request, domain errors turned into error pages, page numbers).

Views are thin: they parse the request, build an ``Actor``, call a service or selector and
render. Access control lives in the services and selectors; a view only turns their errors into
the right page.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.template import loader
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pilar.core import selectors
from pilar.core.actor import Actor
from pilar.core.audit import audit_record
from pilar.core.auth import token_issue, token_revoke
from pilar.core.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from pilar.core.forms import (
    LoginForm,
    TokenCreateForm,
    TokenOwnerForm,
    TrailFilterForm,
    apply_service_errors,
)
from pilar.core.models import ApiToken, User
from pilar.core.regions import STATES
from pilar.core.roles import Perm, Role

logger = logging.getLogger(__name__)

ViewFunction = Callable[..., HttpResponseBase]

# Page numbers come from the address bar; anything past this is a typo or a probe, not a page.
MAX_PAGE_NUMBER = 100_000


# --- helpers shared by the UI views of every app ----------------------------------------------


def actor_for(request: HttpRequest) -> Actor:
    """The signed-in staff member acting through the web UI, with all their roles."""
    return Actor.for_user(cast(User, request.user), channel="ui")


def page_number(request: HttpRequest, name: str = "page") -> int:
    """A page number from the query string; nonsense means the first page, not an error."""
    try:
        number = int(request.GET.get(name, "1"))
    except ValueError:
        return 1
    return min(max(number, 1), MAX_PAGE_NUMBER)


def is_htmx(request: HttpRequest) -> bool:
    """An htmx request that wants a fragment. A history restore asks for the whole page."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def staff_view(view: ViewFunction) -> ViewFunction:
    """Sign-in required; domain errors a view does not handle itself become error pages.

    ``PermissionDenied`` and ``NotFound`` become Django's 403 and 404 (rendered by ``403.html``
    and ``404.html``); any other ``ApplicationError`` that reaches here is a user mistake the
    view did not expect, shown with its message and status instead of a server error."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as error:
            raise DjangoPermissionDenied(str(error.message)) from error
        except NotFound as error:
            raise Http404(str(error.message)) from error
        except ApplicationError as error:
            return render(
                request,
                "core/application_error.html",
                {"error": error, "message": str(error.message)},
                status=error.status,
            )

    return login_required(wrapper)


# --- error pages ------------------------------------------------------------------------------


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A missing or stale CSRF token: explain it in the user's language, never a bare 403."""
    return render(request, "core/csrf_failure.html", status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page, rendered with the request so it carries the layout and language. If that
    fails too (the database may be what broke), a plain page is better than none."""
    try:
        return render(request, "500.html", status=500)
    except Exception:  # the error page must not fail in turn
        logger.exception("rendering the 500 page failed")
        template = loader.get_template("500_plain.html")
        return HttpResponse(template.render(), status=500)


# --- sign-in ----------------------------------------------------------------------------------


def _safe_next(request: HttpRequest, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL)


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.method == "GET" and request.user.is_authenticated:
        return redirect(_safe_next(request, next_url))
    form = LoginForm(request, data=request.POST if request.method == "POST" else None)
    locked = False
    if request.method == "POST":
        if form.is_valid():
            user = form.get_user()
            auth_login(request, user)
            with transaction.atomic():
                audit_record(
                    actor=Actor.for_user(user, channel="ui"),
                    action="auth.login",
                    entity_type="user",
                    entity_id=user.pk,
                )
            return redirect(_safe_next(request, next_url))
        # The backend flags a locked account on the request; the message must then say so,
        # or the staff member keeps retrying a password that is in fact right.
        locked = bool(getattr(request, "pilar_login_locked", False))
    return render(
        request,
        "core/login.html",
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
    if request.user.is_authenticated:
        with transaction.atomic():
            audit_record(
                actor=actor_for(request),
                action="auth.logout",
                entity_type="user",
                entity_id=request.user.pk,
            )
        auth_logout(request)
        messages.info(request, _("You have signed out."))
    return redirect(settings.LOGOUT_REDIRECT_URL)


# --- home -------------------------------------------------------------------------------------


@require_GET
@staff_view
def home(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    user = cast(User, request.user)
    return render(
        request,
        "core/home.html",
        {
            "roles": [Role(code).label for code in sorted(actor.roles) if code in Role.values],
            "office": user.office,
            "region_name": STATES.get(actor.region or "", ""),
            "national_scope": actor.national_scope,
        },
    )


# --- audit trail and access log ---------------------------------------------------------------


def _trail_filter(form: TrailFilterForm) -> selectors.TrailFilter:
    data = form.cleaned_data
    return selectors.TrailFilter(
        actor_label=data.get("actor") or "",
        action=data.get("action") or "",
        person_id=data.get("person_id"),
        channel=data.get("channel") or "",
        date_from=data.get("date_from"),
        date_to=data.get("date_to"),
    )


def _trail_page(
    request: HttpRequest,
    *,
    permission: str,
    list_function: Callable[..., Any],
    template: str,
) -> HttpResponse:
    actor = actor_for(request)
    actor.require(permission)
    form = TrailFilterForm(request.GET)
    page = None
    if form.is_valid():
        try:
            page = list_function(
                actor=actor, filters=_trail_filter(form), page=page_number(request)
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
    return render(
        request,
        template,
        {"form": form, "page": page},
        status=200 if page is not None else 422,
    )


@require_GET
@staff_view
def audit(request: HttpRequest) -> HttpResponse:
    return _trail_page(
        request,
        permission=Perm.AUDIT_VIEW,
        list_function=selectors.audit_event_list,
        template="core/audit.html",
    )


@require_GET
@staff_view
def access_log(request: HttpRequest) -> HttpResponse:
    return _trail_page(
        request,
        permission=Perm.ACCESS_LOG_VIEW,
        list_function=selectors.access_log_list,
        template="core/access_log.html",
    )


# --- API tokens -------------------------------------------------------------------------------


def _token_owner(request: HttpRequest, actor: Actor, username: str) -> User:
    """Whose tokens the page shows: the signed-in user's, or, for administrators, anyone's."""
    me = cast(User, request.user)
    if not username or username == me.username:
        return me
    actor.require(Perm.TOKEN_MANAGE)
    owner = User.objects.filter(username=username).select_related("office").first()
    if owner is None:
        raise NotFound(extra={"entity": "user", "username": username})
    return owner


def _role_choices(user: User) -> list[tuple[str, Any]]:
    return [(code, Role(code).label) for code in sorted(user.role_codes()) if code in Role.values]


@require_http_methods(["GET", "POST"])
@staff_view
def tokens(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    username = (request.POST.get("owner") or request.GET.get("user") or "").strip()[:150]
    owner = _token_owner(request, actor, username)
    create_form = TokenCreateForm(
        request.POST if request.method == "POST" else None, roles=_role_choices(owner)
    )
    issued_secret = None
    status = 200
    if request.method == "POST":
        if create_form.is_valid():
            try:
                _token, issued_secret = token_issue(
                    actor=actor,
                    user=owner,
                    role=create_form.cleaned_data["role"],
                    name=create_form.cleaned_data["name"],
                    days=create_form.cleaned_data["days"],
                )
            except ValidationFailed as error:
                apply_service_errors(create_form, error)
        if issued_secret is None:
            status = 422
        else:
            # The clear token is shown in this response only: it is never stored, so the page
            # is rendered here rather than redirected to.
            create_form = TokenCreateForm(roles=_role_choices(owner))
    return render(
        request,
        "core/tokens.html",
        {
            "owner": owner,
            "is_self": owner.pk == request.user.pk,
            "tokens": ApiToken.objects.filter(user=owner).order_by("-created_at")[:200],
            "create_form": create_form,
            "owner_form": TokenOwnerForm(initial={"user": owner.username})
            if actor.can(Perm.TOKEN_MANAGE)
            else None,
            "issued_secret": issued_secret,
        },
        status=status,
    )


@require_POST
@staff_view
def token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    actor = actor_for(request)
    token = ApiToken.objects.filter(pk=token_id).select_related("user").first()
    # Someone else's token is "not found" to a non-administrator, so ids cannot be probed.
    if token is None or (token.user_id != request.user.pk and not actor.can(Perm.TOKEN_MANAGE)):
        raise NotFound(extra={"entity": "api_token", "id": token_id})
    token_revoke(actor=actor, token=token)
    messages.success(request, _("The token has been revoked."))
    target = reverse("core:tokens")
    if token.user_id != request.user.pk:
        target += "?" + urlencode({"user": token.user.username})
    return redirect(target)
