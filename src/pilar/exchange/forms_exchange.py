"""Forms of the federation's staff UI: the monitor's filters, an agreement (create, edit, end),
confirmations, and the person panel's "fetch insurance periods" with its required purpose.

Forms only parse what the browser sends. Whether an agreement makes sense (members known, the
fields within the service, the dates in order) is ``services_agreements``' call, so the web
form and the API are held to the same rules; its field errors are put back on the inputs.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from pilar.core.forms import PilarForm, date_field
from pilar.exchange.models import AgreementStatus, Direction, MessageStatus
from pilar.exchange.purposes import SERVICES, purpose_choices, service_label


def _blank(choices: list[tuple[str, Any]], label: Any) -> list[tuple[str, Any]]:
    return [("", label), *choices]


class MessageFilterForm(PilarForm):
    """Filters of the exchange monitor (see ``selectors_monitor.message_list``)."""

    direction = forms.ChoiceField(label=_("Direction"), required=False)
    status = forms.ChoiceField(label=_("Message status"), required=False)
    peer = forms.ChoiceField(label=_("Other member"), required=False)
    action = forms.ChoiceField(label=_("Action"), required=False)
    purpose = forms.ChoiceField(label=_("Purpose"), required=False)
    since = date_field(_("From"), required=False)
    until = date_field(_("To"), required=False)

    def __init__(self, *args: Any, peers: list[str], actions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choices("direction", _blank(list(Direction.choices), _("Both directions")))
        self._choices("status", _blank(list(MessageStatus.choices), _("Any status")))
        self._choices("peer", _blank([(code, code) for code in peers], _("Any member")))
        self._choices("action", _blank([(code, code) for code in actions], _("Any action")))
        self._choices("purpose", _blank(purpose_choices(), _("Any purpose")))

    def _choices(self, name: str, choices: list[tuple[str, Any]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            self.add_error("until", _("The end date is before the start date."))
        return cleaned


def _all_fields() -> list[tuple[str, str]]:
    return [
        (name, f"{name} ({service_label(service.code)})")
        for service in SERVICES.values()
        for name in service.fields
    ]


class AgreementForm(PilarForm):
    """An agreement as the hub's staff write it. ``code`` cannot be changed once created."""

    # The service's field names that differ from the form's.
    SERVICE_FIELDS = {"fields": "granted_fields"}

    service_required = ("code", "consumer", "provider", "service", "purposes", "valid_from")

    code = forms.CharField(
        label=_("Agreement code"), max_length=40, help_text=_("For example AG-0001.")
    )
    consumer = forms.ChoiceField(
        label=_("Consumer"), help_text=_("The member that may call the service.")
    )
    provider = forms.ChoiceField(
        label=_("Provider"),
        help_text=_("The member that answers, or every member offering the service."),
    )
    service = forms.ChoiceField(label=_("Service"))
    purposes = forms.MultipleChoiceField(
        label=_("Purposes"), widget=forms.CheckboxSelectMultiple, required=False
    )
    # Not named ``fields``: that is the form's own attribute (its dict of fields).
    granted_fields = forms.MultipleChoiceField(
        label=_("Fields granted"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("Only fields of the chosen service may be granted."),
    )
    valid_from = date_field(_("Valid from"), required=False)
    valid_until = date_field(_("Valid until"), required=False)
    status = forms.ChoiceField(
        label=_("Agreement status"),
        choices=[
            (AgreementStatus.DRAFT, AgreementStatus.DRAFT.label),
            (AgreementStatus.ACTIVE, AgreementStatus.ACTIVE.label),
        ],
        help_text=_("Only active agreements are published in the trust list."),
    )
    legal_basis = forms.CharField(
        label=_("Legal basis"),
        max_length=300,
        required=False,
        help_text=_("The convenio or legal instrument the agreement implements."),
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)

    def __init__(
        self, *args: Any, members: list[str], editing: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        member_choices = [(code, code) for code in members]
        consumer = self.fields["consumer"]
        assert isinstance(consumer, forms.ChoiceField)
        consumer.choices = _blank(member_choices, "—")
        provider = self.fields["provider"]
        assert isinstance(provider, forms.ChoiceField)
        provider.choices = [("*", _("Any member offering the service")), *member_choices]
        service = self.fields["service"]
        assert isinstance(service, forms.ChoiceField)
        service.choices = _blank([(code, str(item.label)) for code, item in SERVICES.items()], "—")
        purposes = self.fields["purposes"]
        assert isinstance(purposes, forms.MultipleChoiceField)
        purposes.choices = purpose_choices()
        granted = self.fields["granted_fields"]
        assert isinstance(granted, forms.MultipleChoiceField)
        granted.choices = _all_fields()
        if editing:
            # The code names the agreement in every trust list already published.
            self.fields["code"].disabled = True

    def values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "consumer": data.get("consumer") or "",
            "provider": data.get("provider") or "",
            "service": data.get("service") or "",
            "purposes": list(data.get("purposes") or []),
            "fields": list(data.get("granted_fields") or []),
            "valid_from": data.get("valid_from"),
            "valid_until": data.get("valid_until"),
            "status": data.get("status") or AgreementStatus.DRAFT,
            "legal_basis": data.get("legal_basis") or "",
        }


class AgreementEndForm(PilarForm):
    service_required = ("valid_until",)

    valid_until = date_field(
        _("Last day in force"), required=False, help_text=_("Today or a later date.")
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)


class PeriodsFetchForm(PilarForm):
    """Asking the other institutions for a person's insurance periods: the purpose is required,
    it travels in every request and is logged at both ends."""

    purpose = forms.ChoiceField(label=_("Purpose of the request"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["purpose"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = _blank(purpose_choices(staff=True), "—")
        field.error_messages["required"] = _(
            "Choose the purpose of the request: it is sent with it and logged at both ends."
        )


class InstitutionsForm(PeriodsFetchForm):
    """ "Other institutions": the index is asked with a purpose too."""
