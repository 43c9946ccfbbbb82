"""Forms of the declaration screens, shared by the employer portal and the staff UI.

They parse only: a month typed as YYYY-MM, a declaration kind, an uploaded file, the queue's
filters. Whether a month may be declared, whether the file is readable and whether its lines are
right is for ``contributions.services`` and the validation job, whose errors the views put back
on these forms.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from pilar.contributions import fileformat
from pilar.contributions.models import DeclarationKind, DeclarationStatus
from pilar.core.forms import PilarForm

_MONTH = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")

# What the file picker offers; the server tells CSV from XLSX by content, not by this.
FILE_ACCEPT = (
    ".csv,.xlsx,.txt,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)


def max_megabytes() -> int:
    return fileformat.max_bytes() // (1024 * 1024)


def parse_month(text: str) -> datetime.date | None:
    """'2026-10' → 1 October 2026; anything else → None."""
    match = _MONTH.match(text or "")
    if match is None:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if not (1 <= month <= 12 and 1900 <= year <= 9999):
        return None
    return datetime.date(year, month, 1)


class MonthField(forms.Field):
    """A month as the browser's month picker sends it (YYYY-MM), cleaned to its first day."""

    widget = forms.TextInput(attrs={"type": "month"})
    default_error_messages = {
        "invalid": _("Write the month as YYYY-MM, for example 2026-01."),
    }

    def to_python(self, value: Any) -> datetime.date | None:
        text = str(value or "").strip()[:20]
        if not text:
            return None
        month = parse_month(text)
        if month is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return month

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, datetime.date):
            return value.strftime("%Y-%m")
        return value


class DeclarationUploadForm(PilarForm):
    """An employer's monthly declaration file (the portal's upload form)."""

    period = MonthField(
        label=_("Month declared"),
        help_text=_("The month the payroll is for, as YYYY-MM. It must have started."),
        error_messages={"required": _("Give the month the declaration is for.")},
    )
    kind = forms.ChoiceField(
        label=_("Kind of declaration"),
        choices=DeclarationKind.choices,
        initial=DeclarationKind.NORMAL,
        help_text=_(
            "Normal for a month not yet declared; complementary to add or correct some workers "
            "of a posted month; replacement to replace every line of a posted month."
        ),
    )
    file = forms.FileField(
        label=_("File (CSV or XLSX)"),
        error_messages={
            "required": _("Choose the declaration file (CSV or XLSX)."),
            "empty": _("The file is empty."),
        },
        widget=forms.ClearableFileInput(attrs={"accept": FILE_ACCEPT}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = _(
            "One line per worker, with the columns of the template. At most %(mb)s MB."
        ) % {"mb": max_megabytes()}

    def clean_file(self) -> Any:
        # Refused before it is read into memory; the service checks the size again.
        upload = self.cleaned_data.get("file")
        if upload is not None and upload.size > fileformat.max_bytes():
            raise forms.ValidationError(
                _("The file is larger than %(mb)s MB.") % {"mb": max_megabytes()}, code="too_large"
            )
        return upload


class StaffDeclarationUploadForm(DeclarationUploadForm):
    """A file brought to the counter: staff upload it on the employer's behalf."""

    employer = forms.CharField(
        label=_("Employer (RFC or registration number)"),
        max_length=30,
        error_messages={"required": _("Give the employer's RFC or registration number.")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )

    field_order = ["employer", "period", "kind", "file"]


class DeclarationStatusFilterForm(PilarForm):
    """The portal's list of declarations, filtered by status."""

    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("", _("Any status")), *DeclarationStatus.choices],
        required=False,
    )


class DeclarationQueueFilterForm(DeclarationStatusFilterForm):
    """The staff queue of declarations."""

    period = MonthField(label=_("Month declared"), required=False, help_text=_("As YYYY-MM."))
    employer = forms.CharField(
        label=_("Employer (RFC, registration number or record number)"),
        max_length=30,
        required=False,
    )
