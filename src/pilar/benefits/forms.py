"""Forms of the benefits screens: the claims queue's filters, finding the claimant, the claim
form (whose declared facts are generated from the kind's package inputs), and the reasons asked
for when a decision is returned or a claim withdrawn.

They parse only. Whether a person may claim, whether the date is acceptable and whether the facts
are complete is for ``benefits.services`` and ``benefits.selectors``, whose errors the views put
back on these forms.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from pilar.benefits.models import ClaimStatus
from pilar.benefits.selectors import ClaimKind, ClaimKindInput
from pilar.core.forms import PilarForm, date_field

# Declared facts travel in fields named ``fact_<input name>``, so a package input can never
# collide with the form's own fields (kind, claim date, the preview marker).
FACT_PREFIX = "fact_"

# Counts and amounts a clerk declares (dependent parents, students) are small; the bound keeps a
# typo such as 1e30 from reaching the rules engine.
MAX_DECLARED_NUMBER = Decimal("999999999")


def language_code() -> str:
    """The two-letter code of the request's language, as the packages' labels are keyed."""
    return "en" if (get_language() or "es").lower().startswith("en") else "es"


def in_language(label: Any, language: str | None = None) -> str:
    """A package label (``{es, en}``) in the request's language, falling back to the other one;
    a plain string is returned as it is."""
    if label is None:
        return ""
    if isinstance(label, str):
        return label
    code = language or language_code()
    other = "es" if code == "en" else "en"
    return str(label.get(code) or label.get(other) or "")


def kind_code(kind: ClaimKind) -> str:
    """The value that names a kind in forms and addresses: ``imss_1973:vejez``."""
    return f"{kind.package}:{kind.benefit}"


def split_kind_code(code: str) -> tuple[str, str] | None:
    package, separator, benefit = (code or "").partition(":")
    if not separator or not package or not benefit:
        return None
    return package, benefit


def kind_choices(kinds: Sequence[ClaimKind], blank: Any | None = None) -> list[tuple[str, Any]]:
    """The kinds grouped by scheme package: two packages may both have an old-age pension, and
    the group says which law each one is under."""
    groups: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for kind in kinds:
        title = in_language(kind.package_title) or kind.package
        groups.setdefault(kind.package, (title, []))[1].append(
            (kind_code(kind), in_language(kind.label))
        )
    choices: list[tuple[str, Any]] = [(title, options) for title, options in groups.values()]
    return [("", str(blank)), *choices] if blank is not None else choices


class ClaimQueueFilterForm(PilarForm):
    """The staff queue of claims."""

    status = forms.ChoiceField(label=_("Status"), required=False)
    kind = forms.ChoiceField(label=_("Kind of benefit"), required=False)
    mine = forms.BooleanField(label=_("Only those awaiting my approval"), required=False)

    def __init__(self, *args: Any, kinds: Sequence[ClaimKind], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        status = self.fields["status"]
        assert isinstance(status, forms.ChoiceField)
        status.choices = [("", _("Any status")), *ClaimStatus.choices]
        kind = self.fields["kind"]
        assert isinstance(kind, forms.ChoiceField)
        kind.choices = kind_choices(kinds, blank=_("Any kind"))


class ClaimantSearchForm(PilarForm):
    """Who is claiming: found by CURP or NSS (exact) or by name."""

    q = forms.CharField(
        label=_("Claimant's CURP, NSS or name"),
        max_length=400,
        help_text=_("A CURP or NSS finds the person directly; parts of a name are enough too."),
        error_messages={"required": _("Type the claimant's CURP, NSS or name.")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )


class ClaimKindForm(PilarForm):
    """The first step of a new claim: which benefit is claimed. Choosing it shows the facts the
    claim form must ask for, which depend on the kind."""

    kind = forms.ChoiceField(
        label=_("Benefit claimed"),
        error_messages={"required": _("Choose the benefit claimed.")},
    )

    def __init__(self, *args: Any, kinds: Sequence[ClaimKind], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["kind"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = kind_choices(kinds, blank="—")


def _fact_field(spec: ClaimKindInput) -> forms.Field:
    """The form field of one declared input: bool → checkbox, number → number input, date →
    date picker, text → text input; labelled in the request's language."""
    label = in_language(spec.label) or spec.name
    # An optional input left empty is not declared, and the package's default applies.
    required = not spec.optional
    if spec.type == "bool":
        return forms.BooleanField(label=label, required=False, initial=spec.default)
    if spec.type == "number":
        return forms.DecimalField(
            label=label,
            required=required,
            initial=spec.default,
            min_value=0,
            max_value=MAX_DECLARED_NUMBER,
            max_digits=20,
            decimal_places=6,
            widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
            error_messages={"required": _("Give a number; write 0 if there are none.")},
        )
    if spec.type == "date":
        return date_field(label, required=required)
    return forms.CharField(label=label, max_length=200, required=required, initial=spec.default)


def declared_value(value: Any) -> Any:
    """A cleaned field value as stored in the claim's ``declared`` JSON: whole numbers as
    integers (``padres_dependientes: 1``), other numbers as exact decimal strings (never a
    float), dates as ISO strings."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value.normalize())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class ClaimForm(PilarForm):
    """A claim of one kind: its date and the facts the claimant declares.

    The declared facts are generated from the kind's inputs (``ClaimKind.inputs``: the package
    inputs the registry and the work history cannot supply). ``previewed`` carries a digest of
    what the clerk last previewed, so saving can tell whether the preview shown is still the
    one for the values in the form."""

    service_required = ("claim_date",)

    claim_date = date_field(
        _("Claim date"),
        help_text=_("The day the claim was filed. The law in force on this day decides it."),
    )
    previewed = forms.CharField(required=False, widget=forms.HiddenInput)
    agreement = forms.ChoiceField(
        label=_("Totalisation agreement"),
        required=False,
        help_text=_(
            "Only for a claim decided with the insurance periods of other institutions: fetch "
            "them from the person's page first."
        ),
    )

    def __init__(self, *args: Any, kind: ClaimKind, **kwargs: Any) -> None:
        from pilar.benefits.totalisation import agreement_files

        kwargs.setdefault("initial", {}).setdefault("claim_date", timezone.localdate())
        super().__init__(*args, **kwargs)
        self.kind = kind
        agreement = self.fields["agreement"]
        assert isinstance(agreement, forms.ChoiceField)
        agreement.choices = [("", _("None: this institution's periods only"))] + [
            (name, name) for name in sorted(agreement_files())
        ]
        for spec in kind.inputs:
            self.fields[FACT_PREFIX + spec.name] = _fact_field(spec)

    def fact_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith(FACT_PREFIX)]

    def declared(self) -> dict[str, Any]:
        """The declared facts of a valid form, keyed by input name."""
        return {
            name.removeprefix(FACT_PREFIX): declared_value(value)
            for name, value in self.cleaned_data.items()
            if name.startswith(FACT_PREFIX) and value is not None
        }

    def digest(self, person_id: int) -> str:
        """What identifies the values of a valid form: person, kind, date and facts."""
        claim_date = self.cleaned_data.get("claim_date")
        content = json.dumps(
            {
                "person": person_id,
                "kind": kind_code(self.kind),
                "claim_date": claim_date.isoformat() if claim_date else None,
                "declared": self.declared(),
            },
            sort_keys=True,
        )
        return hashlib.sha256(content.encode()).hexdigest()

    def field_for(self, service_name: str) -> str | None:
        """The form field where a service error about ``service_name`` belongs: the service
        names facts as ``declared.<input>`` or by the input's own name."""
        name = service_name.removeprefix("declared.")
        if FACT_PREFIX + name in self.fields:
            return FACT_PREFIX + name
        return service_name if service_name in self.fields else None


class ReasonForm(PilarForm):
    """Why a decision is returned to its maker, or a claim withdrawn: recorded with the change."""

    service_required = ("reason",)

    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
