"""Forms of the staff web UI: sign-in, trail filters, API tokens, and the shared machinery that
puts a service's field errors next to the right inputs.

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
