"""Benefits screens of the staff UI: the claims queue, entering a claim (with a preview of the
inputs adjudication would use), a claim's page with its decisions explained in plain language and
the maker–checker buttons, the decision letter, and an award's page with its calculation history.

Views stay thin: every read goes through ``benefits.selectors`` and every write through
``benefits.services``, which check the permissions, the region and the maker–checker rule. A
refusal (``ApplicationError``) becomes a form error or a message on the page, never an error
page; only "not found" and "not allowed" become the 404 and 403 pages (``staff_view``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pilar.benefits import selectors, services
from pilar.benefits.forms import (
    ClaimantSearchForm,
    ClaimForm,
    ClaimKindForm,
    ClaimQueueFilterForm,
    ReasonForm,
    kind_code,
    language_code,
    split_kind_code,
)
from pilar.benefits.inputs import GatheredInputs
from pilar.benefits.letter import decision_letter_pdf
from pilar.benefits.models import Award, Claim, Decision
from pilar.benefits.selectors import ClaimKind, ClaimKindInput
from pilar.core.actor import Actor
from pilar.core.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from pilar.core.forms import apply_service_errors
from pilar.core.roles import Perm
from pilar.core.views import actor_for, is_htmx, page_number, staff_view
from pilar.registry import selectors as registry_selectors
from pilar.registry.models import Person

# --- helpers --------------------------------------------------------------------------------------


def refusal_text(error: ApplicationError) -> str:
    """A service's refusal as one message: its own text, then each field problem it lists (a
    ``ClaimIncomplete`` names every missing datum), so no reason is lost on the way to the page."""
    text = str(error.message)
    if getattr(error, "missing", None):
        # ClaimIncomplete's message is the list alone; its title says what the list is.
        text = f"{error.title} {text}"
    details: list[str] = []
    for field_errors in getattr(error, "field_errors", {}).values():
        for field_error in field_errors:
            detail = str(field_error.message)
            if detail and detail not in text and detail not in details:
                details.append(detail)
    return " ".join([text, *details]) if details else text


def reraise_access(error: ApplicationError) -> None:
    """Not allowed and not found stay what they are (403 and 404 pages), whatever the view was
    doing when it learnt so: a message would let someone probe other regions' records. The
    maker–checker refusal (``same_officer``, a kind of "not allowed") is an explanation for the
    officer, not a missing permission: it stays a message on the claim's page."""
    if isinstance(error, NotFound):
        raise error
    if isinstance(error, PermissionDenied) and error.code == PermissionDenied.code:
        raise error


def expected_version(request: HttpRequest) -> int | None:
    """The claim version the page showed when the officer pressed the button: a change made
    meanwhile by someone else (a decision returned, the claim withdrawn) is then refused by the
    service instead of being acted on unseen."""
    text = request.POST.get("version", "").strip()
    return int(text) if text.isdigit() and len(text) < 10 else None


def kinds_by_code(*, strict: bool = False) -> dict[str, ClaimKind]:
    """The claim kinds by code (``imss_1973:vejez``). Pages that only show a kind's labels
    (the queue, a claim, an award) pass ``strict=False``: a scheme package that cannot be loaded
    then leaves its claims labelled by code instead of hiding their stored decisions behind an
    error page. Entering a claim needs the kinds themselves and lets the error through."""
    try:
        return {kind_code(kind): kind for kind in selectors.claim_kinds()}
    except ApplicationError:
        if strict:
            raise
        return {}


def kind_by_code(code: str, *, strict: bool = False) -> ClaimKind | None:
    """The claim kind a form or address names, or None."""
    if split_kind_code(code) is None:
        return None
    return kinds_by_code(strict=strict).get(code)


def awaits(actor: Actor, made_by_id: int | None) -> bool:
    """Whether a pending decision made by ``made_by_id`` waits for this officer: made by
    someone else, and the officer may approve decisions."""
    return (
        made_by_id is not None
        and actor.can(Perm.DECISION_APPROVE)
        and actor.user is not None
        and made_by_id != actor.user.pk
    )


# --- the claims queue -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimRow:
    claim: Claim
    kind_label: Any
    awaiting_me: bool
    awaiting_other: bool


@require_GET
@staff_view
def claim_queue(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.CLAIM_VIEW)
    kinds = kinds_by_code()
    form = ClaimQueueFilterForm(request.GET, kinds=list(kinds.values()))
    page = None
    rows: list[ClaimRow] = []
    person_id = _person_id_param(request)
    if form.is_valid():
        data = form.cleaned_data
        package, benefit = split_kind_code(data["kind"]) or (None, None)
        try:
            page = selectors.claim_list(
                actor=actor,
                status=data["status"] or None,
                package=package,
                benefit=benefit,
                person_id=person_id,
                awaiting_my_approval=data["mine"],
                page=page_number(request),
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
    if page is not None:
        for claim in page.items:
            # claim_list annotates each claim with its pending decision's maker, if any.
            pending = getattr(claim, "pending_decision_id", None)
            made_by = getattr(claim, "pending_made_by_id", None)
            kind = kinds.get(claim.kind)
            rows.append(
                ClaimRow(
                    claim=claim,
                    kind_label=kind.label if kind is not None else claim.benefit,
                    awaiting_me=pending is not None and awaits(actor, made_by),
                    awaiting_other=pending is not None and not awaits(actor, made_by),
                )
            )
    return render(
        request,
        "benefits/claim_queue.html",
        {"form": form, "page": page, "rows": rows, "person_id": person_id},
        status=200 if page is not None else 422,
    )


def _person_id_param(request: HttpRequest) -> int | None:
    text = request.GET.get("person", "").strip()
    if not text.isdigit() or len(text) > 18:
        return None
    return int(text)


# --- a new claim ----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@staff_view
def claim_new(request: HttpRequest) -> HttpResponse:
    """Three steps on one address: find the claimant (``?q=``), choose the benefit
    (``?person=``), then the claim form (``?person=&kind=``), which is previewed before it is
    saved. With htmx each step replaces the page's step area only."""
    actor = actor_for(request)
    actor.require(Perm.CLAIM_ENTER)
    person_id = _person_id_param(request)
    if person_id is None:
        return _claimant_step(request, actor)
    # The claimant's identity is part of the claim being entered: the read is logged with that
    # purpose, and a person outside the officer's region is "not found".
    person = registry_selectors.person_get(
        actor=actor, person_id=person_id, purpose=_("Claim entry")
    )
    kinds = list(kinds_by_code(strict=True).values())
    chosen = request.GET.get("kind", "").strip()
    kind = kind_by_code(chosen, strict=True)
    # No kind chosen (the blank option) is the step before choosing, not a mistake; an
    # unknown kind is one, shown on the kind form.
    kind_form = ClaimKindForm({"kind": chosen} if chosen else None, kinds=kinds)
    context: dict[str, Any] = {
        "person": person,
        "curp": _curp_of(person),
        "kind_form": kind_form,
        "kind": kind,
        "form": None,
        "preview": None,
    }
    status = 200
    if kind is not None:
        form = ClaimForm(request.POST if request.method == "POST" else None, kind=kind)
        context["form"] = form
        if request.method == "POST":
            saved = _preview_or_save(request, actor, person.pk, kind, form, context)
            if saved is not None:
                return saved
            status = 422 if form.errors else 200
    elif chosen:
        kind_form.is_valid()
        status = 422
    template = "benefits/_claim_step.html" if is_htmx(request) else "benefits/claim_new.html"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _claimant_step(request: HttpRequest, actor: Actor) -> HttpResponse:
    form = ClaimantSearchForm(request.GET if "q" in request.GET else None)
    page = None
    if form.is_bound and form.is_valid():
        query = form.cleaned_data["q"].strip()
        try:
            page = registry_selectors.person_search(
                actor=actor, query=query, page=page_number(request)
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
        else:
            if page.total == 1 and page.total_is_exact:
                # One person holds this CURP or NSS (or this name): go straight to the claim.
                query = urlencode({"person": page.items[0].id})
                return redirect(f"{reverse('benefits:claim_new')}?{query}")
    return render(
        request,
        "benefits/claim_new.html",
        {"search_form": form, "results": page, "person": None},
        status=422 if form.errors else 200,
    )


def _curp_of(person: Person) -> str:
    for identifier in person.identifiers.all():
        if identifier.scheme == "CURP" and identifier.is_active:
            return str(identifier.value)
    return ""


def _preview_or_save(
    request: HttpRequest,
    actor: Actor,
    person_id: int,
    kind: ClaimKind,
    form: ClaimForm,
    context: dict[str, Any],
) -> HttpResponse | None:
    """Preview the inputs of a valid claim form, or save it when the clerk asked to save what
    the preview on the page shows. Returns the redirect after saving, or None to show the form
    again (with the preview or with errors)."""
    if not form.is_valid():
        return None
    digest = form.digest(person_id)
    wants_save = request.POST.get("action") == "save"
    if wants_save and form.cleaned_data.get("previewed") == digest:
        try:
            claim = services.claim_create(
                actor=actor,
                person_id=person_id,
                package=kind.package,
                benefit=kind.benefit,
                claim_date=form.cleaned_data["claim_date"],
                declared=form.declared(),
                agreement=form.cleaned_data.get("agreement") or "",
            )
        except ApplicationError as error:
            reraise_access(error)
            _put_on_form(form, error)
            return None
        messages.success(request, _("The claim has been entered. It can now be adjudicated."))
        return redirect("benefits:claim_detail", claim_id=claim.pk)
    if wants_save:
        # The values changed after the preview the clerk saw: show the preview of these ones.
        messages.warning(
            request,
            _("The claim changed after its preview. Check the new preview, then save the claim."),
        )
    try:
        context["preview"] = selectors.claim_inputs_preview(
            actor=actor,
            person_id=person_id,
            package=kind.package,
            benefit=kind.benefit,
            claim_date=form.cleaned_data["claim_date"],
            declared=form.declared(),
        )
    except ApplicationError as error:
        reraise_access(error)
        _put_on_form(form, error)
        return None
    context["preview_rows"] = preview_rows(context["preview"], kind)
    context["missing"] = missing_texts(context["preview"])
    # The next "save" is accepted for exactly these values.
    data = cast(QueryDict, form.data).copy()
    data["previewed"] = digest
    form.data = data
    return None


def _put_on_form(form: ClaimForm, error: ApplicationError) -> None:
    if isinstance(error, ValidationFailed):
        for service_name, field_errors in error.field_errors.items():
            target = form.field_for(service_name)
            for field_error in field_errors:
                form.add_error(target, str(field_error.message))
    else:
        form.add_error(None, refusal_text(error))


# --- inputs and their sources ---------------------------------------------------------------------


@dataclass(frozen=True)
class InputRow:
    name: str
    label: Any
    value: Any
    type: str | None
    unit: str | None
    source: str


def source_label(source: str | None) -> str:
    return {
        "registry": _("Registry"),
        "work_history": _("Work history"),
        "declared": _("Declared on the claim"),
        "default": _("Package default"),
    }.get(source or "", source or "—")


def _specs_of(kind: ClaimKind | None) -> dict[str, ClaimKindInput]:
    """A kind's inputs by name, declared and derived: their types and units format the values."""
    if kind is None:
        return {}
    return {spec.name: spec for spec in [*kind.inputs, *kind.derived]}


def preview_rows(preview: GatheredInputs, kind: ClaimKind | None) -> list[InputRow]:
    """The rows of a ``GatheredInputs``: each value with its label and source."""
    return inputs_rows(
        {name: item.to_dict() for name, item in preview.values.items()},
        kind,
    )


def inputs_rows(stored: Any, kind: ClaimKind | None) -> list[InputRow]:
    """The rows of a decision's stored ``inputs`` JSON (``{name: {value, source, label}}``)."""
    specs = _specs_of(kind)
    rows = []
    for name, entry in (stored or {}).items():
        item = entry if isinstance(entry, dict) else {"value": entry}
        spec = specs.get(name)
        rows.append(
            InputRow(
                name=name,
                label=item.get("label") or (spec.label if spec is not None else name),
                value=item.get("value"),
                type=spec.type if spec is not None else None,
                unit=spec.unit if spec is not None else None,
                source=source_label(item.get("source")),
            )
        )
    return rows


def missing_texts(preview: GatheredInputs) -> list[str]:
    """Each datum a ``GatheredInputs`` lacks, with why, in the request's language."""
    return [item.message(language_code()) for item in preview.missing]


# --- a claim's page -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionCard:
    decision: Decision
    can_check: bool
    made_by_me: bool
    return_form: ReasonForm | None


def claim_context(
    request: HttpRequest,
    actor: Actor,
    claim_id: int,
    *,
    return_forms: dict[int, ReasonForm] | None = None,
    withdraw_form: ReasonForm | None = None,
) -> dict[str, Any]:
    """What ``benefits/claim_detail.html`` shows. A form coming back with errors (a return
    without a reason) is passed in to be shown instead of a blank one."""
    claim = selectors.claim_get(actor=actor, claim_id=claim_id)
    kind = kind_by_code(f"{claim.package}:{claim.benefit}")
    decisions = list(claim.decisions.all())
    cards = []
    for decision in decisions:
        pending = decision.status == "pending"
        can_check = pending and awaits(actor, decision.made_by_id)
        cards.append(
            DecisionCard(
                decision=decision,
                can_check=can_check,
                made_by_me=pending
                and actor.user is not None
                and decision.made_by_id == actor.user.pk,
                return_form=(return_forms or {}).get(decision.pk)
                or (ReasonForm(prefix=f"return-{decision.pk}") if can_check else None),
            )
        )
    context: dict[str, Any] = {
        "claim": claim,
        "kind": kind,
        "person": claim.person,
        "curp": _curp_of(claim.person),
        "decisions": cards,
        "award": _award_of(claim),
        "can_adjudicate": actor.can(Perm.CLAIM_ADJUDICATE) and claim.status == "entered",
        "can_withdraw": actor.can(Perm.CLAIM_ENTER) and claim.status in ("entered", "decided"),
        "withdraw_form": withdraw_form or ReasonForm(prefix="withdraw"),
        "declared_rows": _declared_rows(claim, kind),
    }
    if claim.status == "entered" and actor.can(Perm.CLAIM_ENTER):
        # Not decided yet, or returned to be decided again: what adjudication would use today,
        # so missing data shows before the officer presses "Adjudicate". (The preview is for
        # those who enter claims; readers such as auditors see the facts declared below.)
        try:
            preview = selectors.claim_inputs_preview(
                actor=actor,
                person_id=claim.person_id,
                package=claim.package,
                benefit=claim.benefit,
                claim_date=claim.claim_date,
                declared=claim.declared,
            )
        except ApplicationError as error:
            reraise_access(error)
            context["preview_error"] = refusal_text(error)
        else:
            context["preview"] = preview
            context["inputs_rows"] = preview_rows(preview, kind)
            context["missing"] = missing_texts(preview)
    elif decisions:
        context["inputs_rows"] = inputs_rows(decisions[0].inputs, kind)
        context["inputs_decision"] = decisions[0]
    return context


def _declared_rows(claim: Claim, kind: ClaimKind | None) -> list[InputRow]:
    specs = _specs_of(kind)
    rows = []
    for name, value in (claim.declared or {}).items():
        spec = specs.get(name)
        rows.append(
            InputRow(
                name=name,
                label=spec.label if spec is not None else name,
                value=value,
                type=spec.type if spec is not None else None,
                unit=spec.unit if spec is not None else None,
                source=source_label("declared"),
            )
        )
    return rows


def _award_of(claim: Claim) -> Award | None:
    try:
        return claim.award
    except ObjectDoesNotExist:
        return None


@require_GET
@staff_view
def claim_detail(request: HttpRequest, claim_id: int) -> HttpResponse:
    actor = actor_for(request)
    return render(request, "benefits/claim_detail.html", claim_context(request, actor, claim_id))


@require_POST
@staff_view
def claim_adjudicate(request: HttpRequest, claim_id: int) -> HttpResponse:
    actor = actor_for(request)
    try:
        decision = services.claim_adjudicate(
            actor=actor, claim_id=claim_id, expected_version=expected_version(request)
        )
    except ApplicationError as error:
        reraise_access(error)
        messages.error(request, refusal_text(error))
    else:
        if decision.outcome == "granted":
            messages.success(
                request,
                _("The claim has been adjudicated: granted. Another officer must approve it."),
            )
        else:
            messages.success(
                request,
                _("The claim has been adjudicated: denied. Another officer must approve it."),
            )
    return redirect("benefits:claim_detail", claim_id=claim_id)


@require_POST
@staff_view
def claim_withdraw(request: HttpRequest, claim_id: int) -> HttpResponse:
    actor = actor_for(request)
    form = ReasonForm(request.POST, prefix="withdraw")
    if form.is_valid():
        try:
            services.claim_withdraw(
                actor=actor,
                claim_id=claim_id,
                reason=form.cleaned_data["reason"],
                expected_version=expected_version(request),
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
        except ApplicationError as error:
            reraise_access(error)
            messages.error(request, refusal_text(error))
            return redirect("benefits:claim_detail", claim_id=claim_id)
        else:
            messages.success(request, _("The claim has been withdrawn."))
            return redirect("benefits:claim_detail", claim_id=claim_id)
    context = claim_context(request, actor, claim_id, withdraw_form=form)
    context["withdraw_open"] = True
    return render(request, "benefits/claim_detail.html", context, status=422)


@require_POST
@staff_view
def decision_approve(request: HttpRequest, decision_id: int) -> HttpResponse:
    actor = actor_for(request)
    decision = selectors.decision_get(actor=actor, decision_id=decision_id)
    try:
        award = services.decision_approve(
            actor=actor, decision_id=decision_id, expected_version=expected_version(request)
        )
    except ApplicationError as error:
        reraise_access(error)
        messages.error(request, refusal_text(error))
    else:
        if award is not None:
            messages.success(
                request,
                _("The decision has been approved and the award %(id)s created.")
                % {"id": award.pk},
            )
        else:
            messages.success(request, _("The decision has been approved: the claim is denied."))
    return redirect("benefits:claim_detail", claim_id=decision.claim_id)


@require_POST
@staff_view
def decision_return(request: HttpRequest, decision_id: int) -> HttpResponse:
    actor = actor_for(request)
    decision = selectors.decision_get(actor=actor, decision_id=decision_id)
    form = ReasonForm(request.POST, prefix=f"return-{decision.pk}")
    if form.is_valid():
        try:
            services.decision_return(
                actor=actor,
                decision_id=decision_id,
                reason=form.cleaned_data["reason"],
                expected_version=expected_version(request),
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
        except ApplicationError as error:
            reraise_access(error)
            messages.error(request, refusal_text(error))
            return redirect("benefits:claim_detail", claim_id=decision.claim_id)
        else:
            messages.success(
                request,
                _("The decision has been returned to the officer who made it."),
            )
            return redirect("benefits:claim_detail", claim_id=decision.claim_id)
    context = claim_context(request, actor, decision.claim_id, return_forms={decision.pk: form})
    return render(request, "benefits/claim_detail.html", context, status=422)


@require_GET
@staff_view
def decision_letter(request: HttpRequest, decision_id: int) -> HttpResponse:
    """The decision letter as a PDF, in the language asked for (``?lang=en``) or the page's."""
    actor = actor_for(request)
    language = request.GET.get("lang", "") if request.GET.get("lang") in ("es", "en") else ""
    content = decision_letter_pdf(
        actor=actor, decision_id=decision_id, language=language or language_code()
    )
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="decision-{decision_id}.pdf"'
    return response


# --- an award's page ------------------------------------------------------------------------------


@require_GET
@staff_view
def award_detail(request: HttpRequest, award_id: int) -> HttpResponse:
    actor = actor_for(request)
    award = selectors.award_get(actor=actor, award_id=award_id)
    return render(
        request,
        "benefits/award_detail.html",
        {
            "award": award,
            "kind": kind_by_code(f"{award.package_name}:{award.benefit}"),
            "calculations": list(award.calculations.all()),
            "curp": _curp_of(award.person),
        },
    )


@require_GET
@staff_view
def award_calculation(request: HttpRequest, award_id: int, calculation_id: int) -> HttpResponse:
    """One calculation of an award, explained. A decision's calculation shows the explanation
    stored with it; a recalculation stores values only (decision 24), so its explanation is
    computed again from its package version, inputs and date, and checked against the stored
    amount."""
    from pilar.benefits.recalculation import calculation_explanation

    actor = actor_for(request)
    award = selectors.award_get(actor=actor, award_id=award_id)
    calculation = award.calculations.filter(pk=calculation_id).first()
    if calculation is None:
        raise NotFound()
    result: dict[str, Any] | None = calculation.result
    regenerated = result is None
    problem = ""
    agrees = True
    if result is None:
        try:
            explained = calculation_explanation(calculation)
        except ApplicationError as error:
            problem = str(error)
        else:
            result = explained.to_dict()
            info = explained.benefits.get(award.benefit)
            amount = explained.values.get(info.amount) if info and info.amount else None
            agrees = calculation.amount is None or amount == calculation.amount
    return render(
        request,
        "benefits/calculation_detail.html",
        {
            "award": award,
            "calculation": calculation,
            "result": result,
            "regenerated": regenerated,
            "problem": problem,
            "agrees": agrees,
        },
    )
