"""Staff screens of employers' accounts: an employer's account (statements, payments, totals,
recording a payment, the portal password), the bank files of payments received, the non-filers
report (also as CSV) and the open requests to register declared workers.

Views are thin: every read goes through ``contributions.selectors`` or
``contributions.account_selectors`` and every write through ``contributions.services`` or
``portal.services``, which check the permissions. A view checks a permission itself only to
refuse a write before parsing it, so a clerk without the right is not shown form errors first.
The forms of these screens live here: they are small and used by no other module.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pilar.contributions import account_selectors, fileformat, selectors, services
from pilar.contributions.forms import MonthField
from pilar.core.actor import Actor
from pilar.core.errors import Conflict, ValidationFailed
from pilar.core.forms import PilarForm, StaffPasswordForm, apply_service_errors, date_field
from pilar.core.identifiers import compact
from pilar.core.pagination import Page
from pilar.core.roles import Perm
from pilar.core.templatetags.pilar_ui import money
from pilar.core.views import actor_for, page_number, staff_view
from pilar.portal.services import employer_account_set
from pilar.registry import selectors as registry_selectors
from pilar.registry.models import Employer

# A bank's statement of payments received is a few thousand lines at most; anything far larger
# is the wrong file, refused before it is read into memory.
BANK_FILE_MAX_BYTES = 10 * 1024 * 1024
# The largest amount the payment table holds (14 digits, two of them centavos).
MAX_AMOUNT = Decimal("999999999999.99")

# The account page carries two forms; their input ids carry the form's name.
PAYMENT_AUTO_ID = "id_payment_%s"
PORTAL_AUTO_ID = "id_portal_%s"


# --- forms ------------------------------------------------------------------------------------


class EmployerLookupForm(PilarForm):
    q = forms.CharField(
        label=gettext_lazy("Employer (name, RFC or registration number)"),
        max_length=250,
        required=False,
    )


class PaymentForm(PilarForm):
    """A payment received at the counter or seen on the bank's site. Whether the amount and the
    date make sense (positive, centavos only, not in the future) is the service's call."""

    amount = forms.DecimalField(
        label=gettext_lazy("Amount (pesos)"),
        max_value=MAX_AMOUNT,
        help_text=gettext_lazy("For example 15230.50"),
        error_messages={"required": gettext_lazy("Give the amount received.")},
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    received_on = date_field(gettext_lazy("Received on"))
    reference = forms.CharField(
        label=gettext_lazy("Reference"),
        max_length=40,
        required=False,
        help_text=gettext_lazy(
            "The bank's reference. A declaration number (for example D123) pays that "
            "statement first; otherwise the oldest debt is paid first."
        ),
    )


class PortalPasswordForm(StaffPasswordForm):
    """The employer's portal password, typed twice: the same fields and rules as a staff
    member's new password (the portal account is a user account like theirs)."""


class BankImportForm(PilarForm):
    file = forms.FileField(
        label=gettext_lazy("Bank file (CSV)"),
        error_messages={
            "required": gettext_lazy("Choose the bank's CSV file."),
            "empty": gettext_lazy("The file is empty."),
        },
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,text/csv"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = _(
            "Columns fecha (YYYY-MM-DD or DD/MM/YYYY), importe, referencia and "
            "registro_patronal or rfc. At most %(mb)s MB."
        ) % {"mb": BANK_FILE_MAX_BYTES // (1024 * 1024)}

    def clean_file(self) -> Any:
        upload = self.cleaned_data.get("file")
        if upload is not None and upload.size > BANK_FILE_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(mb)s MB.")
                % {"mb": BANK_FILE_MAX_BYTES // (1024 * 1024)},
                code="too_large",
            )
        return upload


class NonFilerFilterForm(PilarForm):
    period = MonthField(
        label=gettext_lazy("Month"),
        help_text=gettext_lazy("As YYYY-MM."),
        error_messages={"required": gettext_lazy("Give the month, as YYYY-MM.")},
    )


# --- the accounts home: find an employer's account ---------------------------------------------


def _account_url(employer_id: int, anchor: str = "") -> str:
    url = reverse("accounts:employer_account", args=[employer_id])
    return f"{url}#{anchor}" if anchor else url


@require_GET
@staff_view
def account_index(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.ACCOUNT_VIEW)
    form = EmployerLookupForm(request.GET if "q" in request.GET else None)
    page: Page[Employer] | None = None
    if form.is_bound and form.is_valid() and form.cleaned_data["q"].strip():
        query = form.cleaned_data["q"].strip()
        page = registry_selectors.employer_list(actor=actor, query=query, page=page_number(request))
        # An RFC or registration number typed exactly goes straight to that account.
        exact = [e for e in page.items if compact(query) in (e.rfc, e.registration_number)]
        if len(exact) == 1:
            return redirect(_account_url(exact[0].pk))
    return render(request, "contributions/account/index.html", {"form": form, "page": page})


# --- an employer's account --------------------------------------------------------------------


def _account_page(
    request: HttpRequest,
    actor: Actor,
    employer_id: int,
    *,
    payment_form: PaymentForm | None = None,
    portal_form: PortalPasswordForm | None = None,
    status: int = 200,
) -> HttpResponse:
    account = selectors.account_get(actor=actor, employer_id=employer_id)
    can_record = actor.can(Perm.PAYMENT_RECORD)
    if payment_form is None and can_record:
        payment_form = PaymentForm(
            auto_id=PAYMENT_AUTO_ID, initial={"received_on": timezone.localdate()}
        )
    if portal_form is None and can_record:
        portal_form = PortalPasswordForm(auto_id=PORTAL_AUTO_ID)
    return render(
        request,
        "contributions/account/employer_account.html",
        {
            "account": account,
            "employer": account.employer,
            "payment_form": payment_form,
            "portal_form": portal_form,
            "portal_account": account_selectors.employer_portal_account(
                actor=actor, employer_id=employer_id
            ),
        },
        status=status,
    )


@require_GET
@staff_view
def employer_account(request: HttpRequest, employer_id: int) -> HttpResponse:
    return _account_page(request, actor_for(request), employer_id)


@require_POST
@staff_view
def payment_record(request: HttpRequest, employer_id: int) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.PAYMENT_RECORD)
    form = PaymentForm(request.POST, auto_id=PAYMENT_AUTO_ID)
    if form.is_valid():
        data = form.cleaned_data
        try:
            payment = services.payment_record(
                actor=actor,
                employer_id=employer_id,
                amount=data["amount"],
                received_on=data["received_on"],
                reference=data["reference"],
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
        else:
            messages.success(
                request,
                _("A payment of %(amount)s pesos has been recorded and applied to the statements.")
                % {"amount": money(payment.amount)},
            )
            return redirect(_account_url(employer_id, "payments"))
    return _account_page(request, actor, employer_id, payment_form=form, status=422)


@sensitive_post_parameters("password", "password_confirmation")
@require_POST
@staff_view
def portal_account_set(request: HttpRequest, employer_id: int) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.PAYMENT_RECORD)
    form = PortalPasswordForm(request.POST, auto_id=PORTAL_AUTO_ID)
    if form.is_valid():
        try:
            employer_account_set(
                actor=actor, employer_id=employer_id, password=form.cleaned_data["password"] or ""
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
        else:
            messages.success(
                request,
                _(
                    "The portal password has been set. The employer signs in with its RFC and "
                    "this password; give it only to its legal representative."
                ),
            )
            return redirect(_account_url(employer_id, "portal"))
    return _account_page(request, actor, employer_id, portal_form=form, status=422)


# --- bank files -------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@staff_view
def bank_imports(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    form: BankImportForm | None = None
    status = 200
    if request.method == "POST":
        actor.require(Perm.PAYMENT_RECORD)
        form = BankImportForm(request.POST, request.FILES)
        status = 422
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                imported = services.bank_import(
                    actor=actor, file_name=upload.name or "", data=upload.read()
                )
            except ValidationFailed as error:
                apply_service_errors(form, error)
            except Conflict as error:
                form.add_error("file", str(error.message))
                status = 409
            else:
                messages.success(
                    request,
                    _(
                        "The bank file has been imported: %(count)s payments totalling "
                        "%(total)s pesos, applied to the employers' statements."
                    )
                    % {"count": imported.payment_count, "total": money(imported.total)},
                )
                return redirect("accounts:bank_import_detail", import_id=imported.pk)
    elif actor.can(Perm.PAYMENT_RECORD):
        form = BankImportForm()
    page = account_selectors.bank_import_list(actor=actor, page=page_number(request))
    return render(
        request,
        "contributions/account/bank_imports.html",
        {"form": form, "page": page},
        status=status,
    )


@require_GET
@staff_view
def bank_import_detail(request: HttpRequest, import_id: int) -> HttpResponse:
    actor = actor_for(request)
    imported = account_selectors.bank_import_get(actor=actor, import_id=import_id)
    payments = account_selectors.bank_import_payments(
        actor=actor, import_id=import_id, page=page_number(request)
    )
    return render(
        request,
        "contributions/account/bank_import_detail.html",
        {"imported": imported, "payments": payments},
    )


# --- non-filers -------------------------------------------------------------------------------


def previous_month(today: datetime.date) -> datetime.date:
    """The first day of the month before ``today``'s: the last month whose declarations are
    due by now."""
    return (today.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)


def _non_filer_form(request: HttpRequest) -> NonFilerFilterForm:
    data = request.GET.copy()
    if not data.get("period"):
        data["period"] = previous_month(timezone.localdate()).strftime("%Y-%m")
    return NonFilerFilterForm(data)


@require_GET
@staff_view
def non_filers(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    form = _non_filer_form(request)
    page = None
    if form.is_valid():
        try:
            page = selectors.non_filers(
                actor=actor, period=form.cleaned_data["period"], page=page_number(request)
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
    else:
        # A mistyped month still needs the permission check before the form is shown.
        actor.require(Perm.ACCOUNT_VIEW)
    return render(
        request,
        "contributions/account/non_filers.html",
        {
            "form": form,
            "page": page,
            "period": form.cleaned_data.get("period") if page is not None else None,
        },
        status=200 if page is not None else 422,
    )


@require_GET
@staff_view
def non_filers_csv(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    form = _non_filer_form(request)
    if not form.is_valid():
        actor.require(Perm.ACCOUNT_VIEW)
        return render(
            request,
            "contributions/account/non_filers.html",
            {"form": form, "page": None, "period": None},
            status=422,
        )
    period: datetime.date = form.cleaned_data["period"]
    rows = (
        (
            item.employer.legal_name,
            item.employer.rfc,
            item.employer.registration_number,
            item.active_workers,
        )
        for item in account_selectors.non_filers_all(actor=actor, period=period)
    )
    header = [_("Legal name"), _("RFC"), _("Registration number"), _("Workers in the month")]
    response = HttpResponse(
        fileformat.csv_bytes(header, rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="pilar-non-filers-{period:%Y-%m}.csv"'
    return response


# --- registration requests --------------------------------------------------------------------


@require_GET
@staff_view
def registration_requests(request: HttpRequest) -> HttpResponse:
    page = account_selectors.registration_request_list(
        actor=actor_for(request), page=page_number(request)
    )
    return render(request, "contributions/account/registration_requests.html", {"page": page})
