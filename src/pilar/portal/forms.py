"""Forms of the employer portal. The declaration forms are the staff UI's own
(``contributions.forms``); only the sign-in is the portal's."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from pilar.contributions.forms import DeclarationStatusFilterForm, DeclarationUploadForm
from pilar.core.forms import PilarForm

__all__ = ["DeclarationStatusFilterForm", "DeclarationUploadForm", "PortalLoginForm"]


class PortalLoginForm(PilarForm):
    """An employer signs in with its RFC and the password collections staff gave it."""

    rfc = forms.CharField(
        label=_("Employer's RFC"),
        max_length=20,
        help_text=_("12 characters for a company, 13 for a natural person."),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "username",
                "autocapitalize": "characters",
                "spellcheck": "false",
            }
        ),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
