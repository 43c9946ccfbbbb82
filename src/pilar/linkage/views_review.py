"""Review screens of the staff UI: the queue of pairs awaiting review, a pair side by side with
its match-weight breakdown and the decision buttons, the merge form, and merges with their
unmerge button.

Views stay thin: reads go through ``linkage.selectors`` (permission, region, access log) and
writes through ``linkage.review`` and ``linkage.merging``. A refusal becomes a message on the
page or a form error, never an error page; only "not found" and "not allowed" become the 404
and 403 pages (``staff_view``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pilar.core.actor import Actor
from pilar.core.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from pilar.core.forms import apply_service_errors
from pilar.core.roles import Perm
from pilar.core.views import actor_for, page_number, staff_view
from pilar.linkage import merging, review, selectors
from pilar.linkage.forms_review import DecisionForm, MergeForm, QueueFilterForm, ReasonForm
from pilar.linkage.models import PairStatus
from pilar.linkage.selectors import COMPARED_FIELDS
from pilar.registry.models import Person

# The person fields the merge form offers a choice for, in the order the form shows them.
_MERGE_FIELD_LABELS = dict(COMPARED_FIELDS)


def _reraise_access(error: ApplicationError) -> None:
    """Not found and not allowed stay what they are (404 and 403 pages): a message would let
    someone probe records of other regions."""
    if isinstance(error, NotFound | PermissionDenied):
        raise error


def _refusal_text(error: ApplicationError) -> str:
    text = str(error.message)
    details = [
        str(item.message)
        for items in getattr(error, "field_errors", {}).values()
        for item in items
        if str(item.message) not in text
    ]
    return " ".join([text, *details])


def _person_param(request: HttpRequest) -> int | None:
    text = request.GET.get("person", "").strip()
    return int(text) if text.isdigit() and len(text) < 18 else None


# --- the queue --------------------------------------------------------------------------------


@require_GET
@staff_view
def review_queue(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    form = QueueFilterForm(request.GET or None, runs=selectors.run_choices(actor=actor))
    person_id = _person_param(request)
    page = None
    status: str | None = PairStatus.PENDING
    if not request.GET or form.is_valid():
        filters = form.cleaned_data if form.is_bound else {}
        status = form.status_value() if form.is_bound else PairStatus.PENDING
        try:
            page = selectors.pair_list(
                actor=actor,
                status=status,
                run_id=filters.get("run"),
                region=filters.get("region") or None,
                person_id=person_id,
                page=page_number(request),
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
    return render(
        request,
        "linkage/review_queue.html",
        {"form": form, "page": page, "person_id": person_id, "status": status},
        status=200 if page is not None else 422,
    )


# --- one pair ---------------------------------------------------------------------------------


def _pair_context(request: HttpRequest, actor: Actor, pair_id: int, **extra: Any) -> dict[str, Any]:
    view = selectors.pair_get(
        actor=actor, pair_id=pair_id, purpose=request.GET.get("purpose", "").strip()[:200]
    )
    return {
        "view": view,
        "pair": view.pair,
        "can_review": actor.can(Perm.LINKAGE_REVIEW),
        "can_merge": actor.can(Perm.PERSON_MERGE) and view.can_merge,
        "reopen_form": extra.pop("reopen_form", None) or ReasonForm(prefix="reopen"),
        "note_form": extra.pop("note_form", None) or DecisionForm(prefix="decide"),
        **extra,
    }


@require_GET
@staff_view
def pair_detail(request: HttpRequest, pair_id: int) -> HttpResponse:
    actor = actor_for(request)
    return render(request, "linkage/pair_detail.html", _pair_context(request, actor, pair_id))


@require_POST
@staff_view
def pair_decide(request: HttpRequest, pair_id: int) -> HttpResponse:
    actor = actor_for(request)
    form = DecisionForm(request.POST, prefix="decide")
    if not form.is_valid():
        messages.error(request, _("Choose same, different or skip."))
        return redirect("linkage:pair_detail", pair_id=pair_id)
    decision = form.cleaned_data["decision"]
    try:
        review.decide_pair(
            actor=actor, pair_id=pair_id, decision=decision, note=form.cleaned_data["note"]
        )
    except ApplicationError as error:
        _reraise_access(error)
        messages.error(request, _refusal_text(error))
        return redirect("linkage:pair_detail", pair_id=pair_id)
    if decision == review.Decision.SAME:
        messages.success(request, _("The pair has been decided: same person."))
    elif decision == review.Decision.DIFFERENT:
        messages.success(request, _("The pair has been decided: different persons."))
    else:
        messages.success(request, _("The pair has been skipped; it stays open for later."))
    # After a decision the reviewer moves on to the next pair of the queue.
    return redirect("linkage:review_queue")


@require_POST
@staff_view
def pair_reopen(request: HttpRequest, pair_id: int) -> HttpResponse:
    actor = actor_for(request)
    form = ReasonForm(request.POST, prefix="reopen")
    if form.is_valid():
        try:
            review.reopen_pair(actor=actor, pair_id=pair_id, reason=form.cleaned_data["reason"])
        except ValidationFailed as error:
            apply_service_errors(form, error, {"note": "reason"})
        except ApplicationError as error:
            _reraise_access(error)
            messages.error(request, _refusal_text(error))
            return redirect("linkage:pair_detail", pair_id=pair_id)
        else:
            messages.success(request, _("The pair has been reopened and awaits review again."))
            return redirect("linkage:pair_detail", pair_id=pair_id)
    context = _pair_context(request, actor, pair_id, reopen_form=form, reopen_open=True)
    return render(request, "linkage/pair_detail.html", context, status=422)


# --- merging ----------------------------------------------------------------------------------


def _fields_to_choose(first: Person, second: Person) -> list[tuple[str, Any]]:
    """The person fields on which the two records disagree: the steward picks a value for
    each. Fields that agree need no choice."""
    return [
        (
            name,
            _MERGE_FIELD_LABELS.get(name)
            or getattr(Person._meta.get_field(name), "verbose_name", name),
        )
        for name in merging.MERGEABLE_FIELDS
        if getattr(first, name) != getattr(second, name)
    ]


@require_http_methods(["GET", "POST"])
@staff_view
def pair_merge(request: HttpRequest, pair_id: int) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.PERSON_MERGE)
    view = selectors.pair_get(actor=actor, pair_id=pair_id)
    if not view.can_merge or view.left.person is None or view.right.person is None:
        messages.error(
            request,
            _(
                "These records cannot be merged: one is a list row or already merged, or the pair "
                "was decided to be two persons."
            ),
        )
        return redirect("linkage:pair_detail", pair_id=pair_id)
    first, second = view.left.person, view.right.person
    choices = _fields_to_choose(first, second)
    form = MergeForm(
        request.POST if request.method == "POST" else None,
        first=first,
        second=second,
        fields_to_choose=choices,
    )
    if request.method == "POST" and form.is_valid():
        try:
            merge = merging.merge_persons(
                actor=actor,
                golden_id=int(form.cleaned_data["golden"]),
                merged_id=form.merged_id(),
                reason=form.cleaned_data["reason"],
                pair_id=pair_id,
                take_from_merged=form.take_from_merged(),
            )
        except ValidationFailed as error:
            apply_service_errors(
                form, error, {name.removeprefix("value_"): name for name in form.value_fields}
            )
        except ApplicationError as error:
            _reraise_access(error)
            form.add_error(None, _refusal_text(error))
        else:
            messages.success(
                request,
                _("Record %(merged)s has been merged into record %(golden)s.")
                % {"merged": merge.merged_id, "golden": merge.golden_id},
            )
            return redirect("linkage:merge_detail", merge_id=merge.pk)
    return render(
        request,
        "linkage/pair_merge.html",
        {"view": view, "pair": view.pair, "form": form},
        status=422 if form.is_bound else 200,
    )


@require_GET
@staff_view
def merge_list(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    person_id = _person_param(request)
    page = selectors.merge_list(
        actor=actor,
        person_id=person_id,
        active_only=request.GET.get("active") == "1",
        page=page_number(request),
    )
    return render(request, "linkage/merge_list.html", {"page": page, "person_id": person_id})


def _merge_context(
    request: HttpRequest, actor: Actor, merge_id: int, **extra: Any
) -> dict[str, Any]:
    view = selectors.merge_get(
        actor=actor, merge_id=merge_id, purpose=request.GET.get("purpose", "").strip()[:200]
    )
    return {
        "view": view,
        "merge": view.merge,
        "can_unmerge": actor.can(Perm.PERSON_MERGE) and view.is_active,
        "unmerge_form": extra.pop("unmerge_form", None) or ReasonForm(prefix="unmerge"),
        **extra,
    }


@require_GET
@staff_view
def merge_detail(request: HttpRequest, merge_id: int) -> HttpResponse:
    actor = actor_for(request)
    return render(request, "linkage/merge_detail.html", _merge_context(request, actor, merge_id))


@require_POST
@staff_view
def merge_unmerge(request: HttpRequest, merge_id: int) -> HttpResponse:
    actor = actor_for(request)
    form = ReasonForm(request.POST, prefix="unmerge")
    if form.is_valid():
        try:
            result = merging.unmerge(
                actor=actor, merge_id=merge_id, reason=form.cleaned_data["reason"]
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
        except ApplicationError as error:
            _reraise_access(error)
            messages.error(request, _refusal_text(error))
            return redirect("linkage:merge_detail", merge_id=merge_id)
        else:
            messages.success(
                request,
                _("The merge has been undone: record %(merged)s is separate again.")
                % {"merged": result.merge.merged_id},
            )
            if result.kept_fields:
                messages.warning(
                    request,
                    _("Fields corrected after the merge were kept: %(fields)s.")
                    % {"fields": ", ".join(result.kept_fields)},
                )
            return redirect("linkage:merge_detail", merge_id=merge_id)
    context = _merge_context(request, actor, merge_id, unmerge_form=form, unmerge_open=True)
    return render(request, "linkage/merge_detail.html", context, status=422)
