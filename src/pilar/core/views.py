"""Staff web UI: sign-in, home, audit trail, access log, API tokens, and staff accounts and
offices for administrators, plus the helpers every UI view uses (the actor of a request, domain
errors turned into error pages, page numbers).

Views are thin: they parse the request, build an ``Actor``, call a service or selector and
render. Access control lives in the services and selectors; a view only turns their errors into
the right page.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.template import loader
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pilar.core import selectors, services
from pilar.core.actor import Actor
from pilar.core.audit import audit_record
from pilar.core.auth import token_issue, token_revoke
from pilar.core.errors import (
    ApplicationError,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from pilar.core.forms import (
    LoginForm,
    OfficeForm,
    PilarForm,
    StaffCreateForm,
    StaffDeactivateForm,
    StaffDetailsForm,
    StaffFilterForm,
    StaffPasswordForm,
    StaffRolesForm,
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
        # An employer's portal session never reaches staff pages. Portal usernames are
        # "employer:<RFC>" (``portal.models.employer_username``) and staff usernames cannot
        # contain ":", so the prefix tells them apart without a query.
        if request.user.is_authenticated and request.user.get_username().startswith("employer:"):
            raise DjangoPermissionDenied("employer account")
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


# --- staff accounts and offices ---------------------------------------------------------------
#
# For holders of ``user.manage``. The selectors and services check the permission and the
# administrator's scope; an account outside it is a 404, like a record outside a region.


def _office_choices(actor: Actor) -> list[tuple[str, Any]]:
    return [(office.code, str(office)) for office in selectors.office_list(actor=actor)]


def _staff_url(user_id: int, anchor: str = "") -> str:
    url = reverse("core:staff_detail", args=[user_id])
    return f"{url}#{anchor}" if anchor else url


@require_GET
@staff_view
def staff_list(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    # office_list checks the permission, so an invalid filter is still refused to others.
    form = StaffFilterForm(request.GET, offices=_office_choices(actor))
    page = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            page = selectors.staff_list(
                actor=actor,
                query=data["q"],
                office=data["office"],
                role=data["role"],
                active=form.active(),
                page=page_number(request),
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
    return render(
        request,
        "core/staff_list.html",
        {"form": form, "page": page},
        status=200 if page is not None else 422,
    )


@sensitive_post_parameters("password", "password_confirmation")
@require_http_methods(["GET", "POST"])
@staff_view
def staff_create(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    offices = _office_choices(actor)
    form = StaffCreateForm(request.POST if request.method == "POST" else None, offices=offices)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            try:
                member = services.staff_create(actor=actor, **form.staff_values())
            except ValidationFailed as error:
                apply_service_errors(form, error)
            else:
                messages.success(
                    request,
                    _("The account %(username)s has been created.") % {"username": member.username},
                )
                return redirect("core:staff_detail", user_id=member.pk)
    return render(
        request,
        "core/staff_create.html",
        {"form": form, "has_offices": bool(offices)},
        status=status,
    )


@dataclass(frozen=True)
class StaffAction:
    """One of the changes made from a staff account's page: its form, wording, and the section
    of the page it returns to."""

    form_class: type[PilarForm]
    title: str | Promise
    success: str | Promise
    submit: str | Promise
    anchor: str

    @property
    def auto_id(self) -> str:
        # Several of these forms share the account page, so their input ids carry the name.
        return f"id_{self.anchor}_%s"

    def form(self, data: Any = None, **kwargs: Any) -> PilarForm:
        return self.form_class(data, auto_id=self.auto_id, **kwargs)


STAFF_EDIT = StaffAction(
    StaffDetailsForm,
    gettext_lazy("Edit account details"),
    gettext_lazy("The account details have been saved."),
    gettext_lazy("Save changes"),
    "details",
)
STAFF_ROLES = StaffAction(
    StaffRolesForm,
    gettext_lazy("Change roles"),
    gettext_lazy("The roles have been changed."),
    gettext_lazy("Save roles"),
    "roles",
)
STAFF_PASSWORD = StaffAction(
    StaffPasswordForm,
    gettext_lazy("Set a new password"),
    gettext_lazy("The new password has been set."),
    gettext_lazy("Set password"),
    "password",
)
STAFF_DEACTIVATE = StaffAction(
    StaffDeactivateForm,
    gettext_lazy("Deactivate the account"),
    gettext_lazy("The account has been deactivated and its API tokens revoked."),
    gettext_lazy("Deactivate"),
    "status",
)

StaffPerform = Callable[[Actor, dict[str, Any]], object]


def _staff_action(
    request: HttpRequest,
    actor: Actor,
    record: selectors.StaffRecord,
    spec: StaffAction,
    perform: StaffPerform,
    *,
    form_kwargs: dict[str, Any] | None = None,
) -> HttpResponse:
    """Run one of the account page's forms. A valid submission calls the service and returns
    to the account page; invalid input or a refusal shows the form on a page of its own with
    the errors, which is also what a GET shows, so every form works without the account page."""
    form = spec.form(request.POST if request.method == "POST" else None, **(form_kwargs or {}))
    if request.method == "POST" and form.is_valid():
        try:
            perform(actor, form.cleaned_data)
        except ValidationFailed as error:
            apply_service_errors(form, error)
        except Conflict as error:
            form.add_error(None, str(error.message))
        else:
            messages.success(request, str(spec.success))
            return redirect(_staff_url(record.user.pk, spec.anchor))
    return render(
        request,
        "core/staff_action.html",
        {"member": record.user, "form": form, "spec": spec},
        status=422 if form.is_bound else 200,
    )


@require_GET
@staff_view
def staff_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    actor = actor_for(request)
    record = selectors.staff_get(actor=actor, user_id=user_id)
    events = selectors.staff_events(
        actor=actor, user_id=user_id, page=page_number(request, "events_page")
    )
    return render(
        request,
        "core/staff_detail.html",
        {
            "record": record,
            # Not "user": that name is the signed-in staff member in every template.
            "member": record.user,
            "events": events,
            "is_self": record.user.pk == request.user.pk,
            "roles_form": STAFF_ROLES.form(initial={"roles": record.roles}),
            "password_form": STAFF_PASSWORD.form(),
            "deactivate_form": STAFF_DEACTIVATE.form(),
        },
    )


@require_http_methods(["GET", "POST"])
@staff_view
def staff_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    actor = actor_for(request)
    record = selectors.staff_get(actor=actor, user_id=user_id)
    member = record.user
    initial = {
        "first_name": member.first_name,
        "last_name": member.last_name,
        "email": member.email,
        "office_code": member.office.code if member.office else "",
    }

    def perform(actor: Actor, data: dict[str, Any]) -> object:
        changes = {name: data.get(name) or "" for name in StaffDetailsForm.DETAIL_FIELDS}
        return services.staff_update(actor=actor, user_id=user_id, changes=changes)

    return _staff_action(
        request,
        actor,
        record,
        STAFF_EDIT,
        perform,
        form_kwargs={"offices": _office_choices(actor), "initial": initial},
    )


@require_http_methods(["GET", "POST"])
@staff_view
def staff_roles(request: HttpRequest, user_id: int) -> HttpResponse:
    actor = actor_for(request)
    record = selectors.staff_get(actor=actor, user_id=user_id)

    def perform(actor: Actor, data: dict[str, Any]) -> object:
        return services.staff_set_roles(actor=actor, user_id=user_id, roles=data["roles"])

    return _staff_action(
        request,
        actor,
        record,
        STAFF_ROLES,
        perform,
        form_kwargs={"initial": {"roles": record.roles}},
    )


@sensitive_post_parameters("password", "password_confirmation")
@require_http_methods(["GET", "POST"])
@staff_view
def staff_password(request: HttpRequest, user_id: int) -> HttpResponse:
    actor = actor_for(request)
    record = selectors.staff_get(actor=actor, user_id=user_id)

    def perform(actor: Actor, data: dict[str, Any]) -> object:
        member = services.staff_set_password(
            actor=actor, user_id=user_id, password=data.get("password") or ""
        )
        if member.pk == request.user.pk:
            # A new password ends the account's sessions; not the one setting it.
            update_session_auth_hash(request, member)
        return member

    return _staff_action(request, actor, record, STAFF_PASSWORD, perform)


@require_http_methods(["GET", "POST"])
@staff_view
def staff_deactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    actor = actor_for(request)
    record = selectors.staff_get(actor=actor, user_id=user_id)

    def perform(actor: Actor, data: dict[str, Any]) -> object:
        return services.staff_deactivate(
            actor=actor, user_id=user_id, reason=data.get("reason") or ""
        )

    return _staff_action(request, actor, record, STAFF_DEACTIVATE, perform)


def _staff_button(
    request: HttpRequest, user_id: int, perform: Callable[[Actor], object], success: str
) -> HttpResponse:
    """A one-button change (unlock, reactivate): a refusal because the account is not in the
    state the button assumed (another administrator was quicker) is a message, not an error
    page."""
    try:
        perform(actor_for(request))
    except Conflict as error:
        messages.error(request, str(error.message))
    else:
        messages.success(request, success)
    return redirect(_staff_url(user_id, "status"))


@require_POST
@staff_view
def staff_unlock(request: HttpRequest, user_id: int) -> HttpResponse:
    return _staff_button(
        request,
        user_id,
        lambda actor: services.staff_unlock(actor=actor, user_id=user_id),
        _("The account has been unlocked."),
    )


@require_POST
@staff_view
def staff_reactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    return _staff_button(
        request,
        user_id,
        lambda actor: services.staff_reactivate(actor=actor, user_id=user_id),
        _("The account has been reactivated. Its old API tokens stay revoked."),
    )


@require_http_methods(["GET", "POST"])
@staff_view
def offices(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    office_rows = selectors.office_list(actor=actor)
    form = OfficeForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            data = form.cleaned_data
            try:
                office = services.office_create(
                    actor=actor, code=data["code"], name=data["name"], region=data["region"]
                )
            except ValidationFailed as error:
                apply_service_errors(form, error)
            else:
                messages.success(
                    request, _("The office %(code)s has been created.") % {"code": office.code}
                )
                return redirect("core:offices")
    return render(
        request, "core/offices.html", {"offices": office_rows, "form": form}, status=status
    )
