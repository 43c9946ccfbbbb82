"""Forms of the review screens: the queue's filters, a decision, reopening a pair, the merge
form and the unmerge form. They parse what the browser sends; the services decide whether it
makes sense (a reason is required by the service, not only by the form)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from pilar.core.forms import PilarForm
from pilar.core.regions import STATE_CHOICES
from pilar.linkage.models import LinkageRun, PairStatus
from pilar.linkage.review import Decision
from pilar.registry.models import Person, Sex

ALL_STATUSES = "all"


class QueueFilterForm(PilarForm):
    status = forms.ChoiceField(label=_("Status"), required=False)
    run = forms.TypedChoiceField(label=_("Run"), required=False, coerce=int, empty_value=None)
    region = forms.ChoiceField(label=_("Region"), required=False)

    def __init__(self, *args: Any, runs: Sequence[LinkageRun], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        status = self.fields["status"]
        assert isinstance(status, forms.ChoiceField)
        status.choices = [*PairStatus.choices, (ALL_STATUSES, _("Any status"))]
        run = self.fields["run"]
        assert isinstance(run, forms.ChoiceField)
        run.choices = [
            ("", _("Any run")),
            *(
                (str(r.pk), f"{r.pk} · {r.get_kind_display()} · {r.created_at:%Y-%m-%d}")
                for r in runs
            ),
        ]
        region = self.fields["region"]
        assert isinstance(region, forms.ChoiceField)
        region.choices = [("", _("Any region")), *STATE_CHOICES]

    def status_value(self) -> str | None:
        """The status to list: pending unless another is chosen; None for all."""
        chosen = self.cleaned_data.get("status") or PairStatus.PENDING
        return None if chosen == ALL_STATUSES else str(chosen)


class DecisionForm(PilarForm):
    decision = forms.ChoiceField(
        choices=[(d, d) for d in Decision.ALL], widget=forms.HiddenInput, required=True
    )
    note = forms.CharField(label=_("Note"), max_length=300, required=False)


class ReasonForm(PilarForm):
    """A reason the service requires: reopening a pair, undoing a merge."""

    service_required = ("reason",)

    reason = forms.CharField(
        label=_("Reason"), max_length=300, widget=forms.Textarea(attrs={"rows": 2})
    )


def _shown(name: str, value: Any) -> str:
    if value in (None, ""):
        return "—"
    if name == "sex":
        return str(dict(Sex.choices).get(value, value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


class MergeForm(PilarForm):
    """Which record is the golden record, which value to keep for each field the two records
    disagree on, and why. A field's choice names a record, so it reads the same whichever
    record is golden."""

    service_required = ("reason",)

    golden = forms.TypedChoiceField(
        label=_("Golden record (the one that stays in use)"),
        coerce=int,
        widget=forms.RadioSelect,
        help_text=_("The other record is kept, marked as merged, and its data moves here."),
    )
    reason = forms.CharField(
        label=_("Reason"), max_length=300, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(
        self,
        *args: Any,
        first: Person,
        second: Person,
        fields_to_choose: Sequence[tuple[str, Any]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.first, self.second = first, second
        golden = self.fields["golden"]
        assert isinstance(golden, forms.ChoiceField)
        golden.choices = [
            (str(p.pk), _("Record %(id)s: %(name)s") % {"id": p.pk, "name": p.full_name})
            for p in (first, second)
        ]
        # The older record by default: partner systems already know its number.
        default = min(first.pk, second.pk)
        golden.initial = str(default)
        self.value_fields: list[str] = []
        for name, label in fields_to_choose:
            self.fields[f"value_{name}"] = forms.TypedChoiceField(
                label=label,
                coerce=int,
                widget=forms.RadioSelect,
                choices=[
                    (
                        str(p.pk),
                        _("%(value)s (record %(id)s)")
                        % {"value": _shown(name, getattr(p, name)), "id": p.pk},
                    )
                    for p in (first, second)
                ],
                initial=str(default),
                # No choice keeps the golden record's value.
                required=False,
                empty_value=None,
            )
            # A choice is always made (one is preselected), so the label says nothing of
            # "optional".
            self.fields[f"value_{name}"].service_required = True  # type: ignore[attr-defined]
            self.value_fields.append(f"value_{name}")
        # The reason last, after the choices it explains.
        self.order_fields(["golden", *self.value_fields, "reason"])

    def merged_id(self) -> int:
        golden = int(self.cleaned_data["golden"])
        return self.second.pk if golden == self.first.pk else self.first.pk

    def take_from_merged(self) -> set[str]:
        """The fields whose chosen value is the merged record's."""
        merged = self.merged_id()
        return {
            name.removeprefix("value_")
            for name in self.value_fields
            if self.cleaned_data.get(name) == merged
        }
