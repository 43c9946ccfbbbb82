"""Forms of the staff web UI: sign-in, trail filters, API tokens, staff accounts and offices,
and the shared machinery that puts a service's field errors next to the right inputs.

Forms only parse and type-convert what the browser sends. Whether the values make sense is the
services' job, so the web form, the API and bulk files are held to the same rules; the errors
services raise are mapped back onto the form fields here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from pilar.core.errors import ValidationFailed
from pilar.core.models import Channel
from pilar.core.regions import STATE_CHOICES
from pilar.core.roles import Role


class AccessibleFormMixin:
    """Marks inputs that have errors with ``aria-invalid`` and points ``aria-describedby`` at the
    error text, so screen readers announce the problem when the input gets focus.

    Every error, whether from parsing or from a service, arrives through ``add_error``, so this
    is the one place to keep the attributes in step with the errors."""

    fields: dict[str, forms.Field]
    errors: Any

    def add_error(self, field: str | None, error: Any) -> None:
        super().add_error(field, error)  # type: ignore[misc]
        for name in self.errors:
            if name not in self.fields:
                continue
            widget = self.fields[name].widget
            bound_id = self[name].auto_id  # type: ignore[index]
            described = [f"{bound_id}_error"]
            if self.fields[name].help_text:
                described.append(f"{bound_id}_helptext")
            widget.attrs["aria-invalid"] = "true"
            widget.attrs["aria-describedby"] = " ".join(described)


class PilarForm(AccessibleFormMixin, forms.Form):
    """Base of every UI form. Templates render forms with ``includes/form_fields.html``.

    Fields named in ``service_required`` are required by the service, not by the form: an
    empty one then reaches the service with the rest of the input, and the clerk hears about
    every problem in one round (an empty name and a wrong CURP check digit together) instead
    of one batch from the form and a second from the service. The browser is still told the
    field is required, and the label shows no "optional" marker."""

    service_required: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.service_required:
            field = self.fields[name]
            field.required = False
            field.widget.attrs["required"] = True
            field.service_required = True  # type: ignore[attr-defined]


def apply_service_errors(
    form: forms.Form, error: ValidationFailed, field_map: Mapping[str, str] | None = None
) -> None:
    """Attach a service's field errors to ``form``.

    Service field names (``given_names``, ``identifiers[0]``, ``address.postal_code``) are
    translated through ``field_map`` or used as they are when the form has such a field; anything
    else becomes an error of the whole form, so no message is ever lost."""
    mapping = field_map or {}
    for service_name, field_errors in error.field_errors.items():
        name = mapping.get(service_name, service_name)
        target = name if name in form.fields else None
        for field_error in field_errors:
            form.add_error(target, str(field_error.message))


DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def date_field(label: Any, *, required: bool = True, help_text: Any = "") -> forms.DateField:
    """A date typed in the browser's own date picker; the value travels as ISO 8601."""
    return forms.DateField(label=label, required=required, widget=DATE_WIDGET, help_text=help_text)


class LoginForm(AccessibleFormMixin, AuthenticationForm):
    """Django's sign-in form with Pilar's wording: the error never says which of the two was
    wrong, so it does not reveal which usernames exist."""

    error_messages = {
        "invalid_login": _("The username or password is wrong."),
        "inactive": _("This account is disabled. Ask an administrator."),
    }

    def __init__(self, request: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(request, *args, **kwargs)
        self.fields["username"].label = _("Username")
        self.fields["password"].label = _("Password")
        self.fields["username"].widget.attrs.pop("autofocus", None)

    def confirm_login_allowed(self, user: Any) -> None:
        # Employers' portal accounts sign in at /portal/ with their RFC; here they are refused
        # with the same message as a wrong password, which reveals nothing.
        if user.username.startswith("employer:"):
            raise forms.ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )
        super().confirm_login_allowed(user)


class TrailFilterForm(PilarForm):
    """Filters of the audit trail and the access log (see ``core.selectors.TrailFilter``)."""

    actor = forms.CharField(label=_("Staff member (username)"), required=False, max_length=150)
    action = forms.CharField(
        label=_("Action"),
        required=False,
        max_length=60,
        help_text=_("The start of the action name, for example person. or person.register"),
    )
    person_id = forms.IntegerField(
        label=_("Person record number"), required=False, min_value=1, max_value=2**62
    )
    channel = forms.ChoiceField(
        label=_("Channel"), required=False, choices=[("", _("Any channel")), *Channel.choices]
    )
    date_from = date_field(_("From"), required=False)
    date_to = date_field(_("To"), required=False)


class TokenCreateForm(PilarForm):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("What the token is for, for example: payroll upload from the HR system."),
    )
    role = forms.ChoiceField(
        label=_("Role"),
        help_text=_("The token can do only what this role allows."),
    )
    days = forms.IntegerField(
        label=_("Valid for (days)"), min_value=1, max_value=365, required=False
    )

    def __init__(self, *args: Any, roles: list[tuple[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["role"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = roles


class TokenOwnerForm(PilarForm):
    """Administrators pick whose tokens to manage."""

    user = forms.CharField(label=_("Username"), max_length=150, required=False)


# --- staff accounts and offices ---------------------------------------------------------------


def _with_blank(choices: list[tuple[str, Any]], blank_label: Any) -> list[tuple[str, Any]]:
    return [("", blank_label), *choices]


class StaffFilterForm(PilarForm):
    """Filters of the staff list (see ``core.selectors.staff_list``)."""

    STATUS_ACTIVE = "active"
    STATUS_INACTIVE = "inactive"

    q = forms.CharField(label=_("Name, username or email"), max_length=250, required=False)
    office = forms.ChoiceField(label=_("Office"), required=False)
    role = forms.ChoiceField(
        label=_("Role"), required=False, choices=_with_blank(list(Role.choices), _("Any role"))
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[
            ("", _("Any status")),
            (STATUS_ACTIVE, _("Active")),
            (STATUS_INACTIVE, _("Deactivated")),
        ],
    )

    def __init__(self, *args: Any, offices: list[tuple[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["office"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = _with_blank(offices, _("Any office"))

    def active(self) -> bool | None:
        return {self.STATUS_ACTIVE: True, self.STATUS_INACTIVE: False}.get(
            self.cleaned_data.get("status") or ""
        )


def _password_field(label: Any, help_text: Any = "") -> forms.CharField:
    # strip=False: spaces are part of a passphrase. The browser's password manager may offer
    # a generated password for a "new-password" field.
    return forms.CharField(
        label=label,
        strip=False,
        help_text=help_text,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


class PasswordPairMixin:
    """A password typed twice. Whether it is strong enough is the service's call; that both
    copies match is only about the typing, so the form checks it."""

    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        password = cleaned.get("password")
        if password and password != cleaned.get("password_confirmation"):
            self.add_error(  # type: ignore[attr-defined]
                "password_confirmation", _("The two passwords are not the same.")
            )
        return cleaned


class StaffDetailsForm(PilarForm):
    """Names, email and office of an account: what ``staff_update`` changes."""

    service_required: tuple[str, ...] = ("office_code",)

    first_name = forms.CharField(label=_("Given names"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Surnames"), max_length=150, required=False)
    email = forms.CharField(
        label=_("Email"),
        max_length=254,
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    office_code = forms.ChoiceField(label=_("Office"))

    DETAIL_FIELDS = ("first_name", "last_name", "email", "office_code")

    def __init__(self, *args: Any, offices: list[tuple[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["office_code"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = _with_blank(offices, "—")

    def detail_values(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) or "" for name in self.DETAIL_FIELDS}


def _roles_field() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=_("Roles"),
        required=False,
        choices=list(Role.choices),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Each role adds what it allows; an API token carries one of them."),
    )


class StaffCreateForm(PasswordPairMixin, StaffDetailsForm):
    service_required = ("username", "office_code", "password")

    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        help_text=_("Letters, digits and . @ + - _ only. It cannot be changed later."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none"}),
    )
    roles = _roles_field()
    password = _password_field(
        _("Initial password"),
        _("At least 12 characters, not a common password and not like the name or username."),
    )
    password_confirmation = _password_field(_("Repeat the password"))

    field_order = [
        "username",
        "first_name",
        "last_name",
        "email",
        "office_code",
        "roles",
        "password",
        "password_confirmation",
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The service requires a role, but "required" on a checkbox group would make the
        # browser demand every box; so only the label loses its "optional" marker.
        self.fields["roles"].service_required = True  # type: ignore[attr-defined]

    def staff_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            **self.detail_values(),
            "username": data.get("username") or "",
            "roles": data.get("roles") or [],
            "password": data.get("password") or "",
        }


class StaffRolesForm(PilarForm):
    roles = _roles_field()


class StaffPasswordForm(PasswordPairMixin, PilarForm):
    service_required = ("password",)

    password = _password_field(
        _("New password"),
        _("At least 12 characters, not a common password and not like the name or username."),
    )
    password_confirmation = _password_field(_("Repeat the password"))


class StaffDeactivateForm(PilarForm):
    service_required = ("reason",)

    reason = forms.CharField(
        label=_("Reason"),
        max_length=300,
        help_text=_("Recorded in the audit trail, for example: left the institution."),
    )


class OfficeForm(PilarForm):
    service_required = ("code", "name", "region")

    code = forms.CharField(
        label=_("Code"), max_length=20, help_text=_("For example JAL-02. It cannot be changed.")
    )
    name = forms.CharField(label=_("Name"), max_length=200)
    region = forms.ChoiceField(
        label=_("State"),
        choices=_with_blank(list(STATE_CHOICES), "—"),
        help_text=_("Staff of regional roles see the persons of this state only."),
    )
