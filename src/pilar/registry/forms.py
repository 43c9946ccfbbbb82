"""Forms of the registry's staff UI. They parse and type-convert only: lengths that match the
database columns, dates, numbers and choices. Every rule about what makes a record valid lives
in ``registry.validation`` and the services, whose field errors the views map back onto these
forms (see ``FIELD_MAP`` constants).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from pilar.core.forms import PilarForm, date_field
from pilar.core.identifiers import SCHEME_CHOICES
from pilar.core.regions import BIRTH_STATE_CHOICES, COUNTRY_CHOICES, STATE_CHOICES
from pilar.registry.models import (
    AddressKind,
    ContactKind,
    EmployerStatus,
    EnrolmentStatus,
    Relation,
    Sector,
    Sex,
)

BLANK = [("", "—")]


def _choices(choices: Any, *, blank: bool = True) -> list[tuple[str, Any]]:
    return [*BLANK, *choices] if blank else list(choices)


class PersonSearchForm(PilarForm):
    # Longer than the selector's limit of 200, so an over-long query gets the selector's own
    # message rather than being cut silently.
    q = forms.CharField(
        label=_("CURP, NSS, RFC or name"),
        max_length=400,
        required=False,
        help_text=_("Accents and capitals do not matter; parts of names are enough."),
    )
    include_inactive = forms.BooleanField(label=_("Include inactive records"), required=False)
    include_merged = forms.BooleanField(
        label=_("Include records merged into another"), required=False
    )


class PersonForm(PilarForm):
    """A person's own fields, as registration and editing share them."""

    service_required = ("given_names", "sex", "birth_date", "region")

    given_names = forms.CharField(label=_("Given names"), max_length=100)
    paternal_surname = forms.CharField(label=_("Paternal surname"), max_length=100, required=False)
    maternal_surname = forms.CharField(label=_("Maternal surname"), max_length=100, required=False)
    sex = forms.ChoiceField(label=_("Sex"), choices=_choices(Sex.choices))
    birth_date = date_field(_("Birth date"))
    birth_state = forms.ChoiceField(
        label=_("State of birth"), choices=_choices(BIRTH_STATE_CHOICES), required=False
    )
    birth_country = forms.ChoiceField(
        label=_("Country of birth"), choices=COUNTRY_CHOICES, initial="MX"
    )
    nationality = forms.ChoiceField(label=_("Nationality"), choices=COUNTRY_CHOICES, initial="MX")
    region = forms.ChoiceField(
        label=_("Administering state"),
        choices=STATE_CHOICES,
        help_text=_("The state whose offices administer the record."),
    )
    acknowledge_possible_duplicate = forms.BooleanField(
        label=_("I have checked these records; register anyway"), required=False
    )

    PERSON_FIELDS: tuple[str, ...] = (
        "given_names",
        "paternal_surname",
        "maternal_surname",
        "sex",
        "birth_date",
        "birth_state",
        "birth_country",
        "nationality",
        "region",
    )

    def __init__(self, *args: Any, regions: list[tuple[str, str]] | None = None, **kw: Any):
        super().__init__(*args, **kw)
        if regions is not None:
            field = self.fields["region"]
            assert isinstance(field, forms.ChoiceField)
            field.choices = regions

    def person_values(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in self.PERSON_FIELDS}


class PersonRegisterForm(PersonForm):
    curp = forms.CharField(
        label=_("CURP"),
        max_length=30,
        required=False,
        help_text=_("18 characters. It must agree with the birth date, sex and state of birth."),
    )
    nss = forms.CharField(label=_("NSS"), max_length=30, required=False)
    rfc = forms.CharField(label=_("RFC"), max_length=30, required=False)

    address_street = forms.CharField(label=_("Street and number"), max_length=200, required=False)
    address_neighbourhood = forms.CharField(
        label=_("Neighbourhood (colonia)"), max_length=120, required=False
    )
    address_municipality = forms.CharField(label=_("Municipality"), max_length=120, required=False)
    address_state = forms.ChoiceField(
        label=_("State"), choices=_choices(STATE_CHOICES), required=False
    )
    address_postal_code = forms.CharField(label=_("Postal code"), max_length=10, required=False)

    contact_kind = forms.ChoiceField(
        label=_("Contact type"), choices=_choices(ContactKind.choices), required=False
    )
    contact_value = forms.CharField(
        label=_("Phone number or email"), max_length=200, required=False
    )

    ADDRESS_FIELDS = ("street", "neighbourhood", "municipality", "state", "postal_code")

    def has_address(self) -> bool:
        return any(self.cleaned_data.get(f"address_{name}") for name in self.ADDRESS_FIELDS)


class PersonEditForm(PersonForm):
    acknowledge_possible_duplicate = forms.BooleanField(
        label=_("I have checked these records; save anyway"), required=False
    )
    death_date = date_field(_("Date of death"), required=False)
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    PERSON_FIELDS = (*PersonForm.PERSON_FIELDS, "death_date")

    field_order = [*PersonForm.PERSON_FIELDS, "death_date"]


# --- sub-forms of the person page -------------------------------------------------------------


class IdentifierForm(PilarForm):
    scheme = forms.ChoiceField(label=_("Type"), choices=_choices(SCHEME_CHOICES))
    value = forms.CharField(label=_("Number"), max_length=40)
    issuing_country = forms.ChoiceField(
        label=_("Issuing country"),
        choices=_choices(COUNTRY_CHOICES),
        required=False,
        help_text=_("Only for passports and foreign identifiers."),
    )


class RecordExportForm(PilarForm):
    # An export is a copy of personal data leaving the system: the reason is mandatory and is
    # written to the access log with the read.
    purpose = forms.CharField(
        label=_("Purpose of the export"),
        max_length=200,
        help_text=_("For example: ARCO access request 2026-114, or a court order."),
    )


class IdentifierDeactivateForm(PilarForm):
    reason = forms.CharField(label=_("Reason"), max_length=300)


class AddressForm(PilarForm):
    kind = forms.ChoiceField(
        label=_("Address type"), choices=AddressKind.choices, initial=AddressKind.HOME
    )
    street = forms.CharField(label=_("Street and number"), max_length=200)
    neighbourhood = forms.CharField(
        label=_("Neighbourhood (colonia)"), max_length=120, required=False
    )
    municipality = forms.CharField(label=_("Municipality"), max_length=120)
    state = forms.ChoiceField(label=_("State"), choices=_choices(STATE_CHOICES))
    postal_code = forms.CharField(label=_("Postal code"), max_length=10)
    valid_from = date_field(
        _("Lives here since"),
        required=False,
        help_text=_(
            "Leave empty for today. The previous address of this type ends the day before."
        ),
    )


class ContactForm(PilarForm):
    kind = forms.ChoiceField(label=_("Contact type"), choices=_choices(ContactKind.choices))
    value = forms.CharField(label=_("Phone number or email"), max_length=200)
    is_preferred = forms.BooleanField(label=_("Preferred contact"), required=False)


class FamilyTieForm(PilarForm):
    relative = forms.CharField(
        label=_("Relative (CURP, NSS or record number)"),
        max_length=30,
        help_text=_("The relative must already be registered."),
    )
    relation = forms.ChoiceField(
        label=_("The relative is this person's"), choices=_choices(Relation.choices)
    )
    start_date = date_field(_("From"), required=False)
    end_date = date_field(_("To"), required=False)


class EndDateForm(PilarForm):
    end_date = date_field(_("End date"))


class EmploymentForm(PilarForm):
    employer = forms.CharField(
        label=_("Employer (RFC or registration number)"),
        max_length=30,
        help_text=_("For example ABC850101AB1 or Y1234567890."),
    )
    start_date = date_field(_("Start date"))
    end_date = date_field(_("End date"), required=False)
    job_title = forms.CharField(label=_("Job title"), max_length=120, required=False)
    daily_salary = forms.DecimalField(
        label=_("Daily base salary (SBC), pesos"),
        max_digits=12,
        decimal_places=2,
        required=False,
        help_text=_("For example 523.45"),
    )


class SalaryChangeForm(PilarForm):
    effective_from = date_field(_("Effective from"))
    daily_salary = forms.DecimalField(
        label=_("New daily base salary (SBC), pesos"), max_digits=12, decimal_places=2
    )


class EnrolmentForm(PilarForm):
    programme = forms.ChoiceField(label=_("Programme"))
    start_date = date_field(_("Start date"))

    def __init__(self, *args: Any, programmes: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["programme"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [*BLANK, *programmes]


class EnrolmentStatusForm(PilarForm):
    status = forms.ChoiceField(label=_("New status"), choices=EnrolmentStatus.choices)
    on = date_field(_("End date"), required=False, help_text=_("Only when ending; default today."))


# --- employers --------------------------------------------------------------------------------


class EmployerFilterForm(PilarForm):
    q = forms.CharField(label=_("Name, RFC or registration number"), max_length=250, required=False)
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("", _("Any status")), *EmployerStatus.choices],
        required=False,
    )
    state = forms.ChoiceField(
        label=_("State"), choices=[("", _("Any state")), *STATE_CHOICES], required=False
    )


class EmployerForm(PilarForm):
    service_required = (
        "legal_name",
        "rfc",
        "registration_number",
        "sector",
        "street",
        "municipality",
        "state",
        "postal_code",
        "status",
    )

    legal_name = forms.CharField(label=_("Legal name"), max_length=250)
    trade_name = forms.CharField(label=_("Trade name"), max_length=250, required=False)
    rfc = forms.CharField(label=_("RFC"), max_length=30)
    registration_number = forms.CharField(
        label=_("Employer registration number"),
        max_length=30,
        help_text=_("IMSS registro patronal: 11 characters."),
    )
    sector = forms.ChoiceField(label=_("Economic sector"), choices=_choices(Sector.choices))
    street = forms.CharField(label=_("Street and number"), max_length=200)
    municipality = forms.CharField(label=_("Municipality"), max_length=120)
    state = forms.ChoiceField(label=_("State"), choices=_choices(STATE_CHOICES))
    postal_code = forms.CharField(label=_("Postal code"), max_length=10)
    status = forms.ChoiceField(
        label=_("Status"), choices=EmployerStatus.choices, initial=EmployerStatus.ACTIVE
    )
    registered_on = date_field(_("Registered on"), required=False)

    EMPLOYER_FIELDS = (
        "rfc",
        "registration_number",
        "legal_name",
        "trade_name",
        "sector",
        "street",
        "municipality",
        "state",
        "postal_code",
        "status",
        "registered_on",
    )

    def employer_values(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in self.EMPLOYER_FIELDS}


class EmployerEditForm(EmployerForm):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
