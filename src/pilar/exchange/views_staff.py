"""Staff screens of the federation: the exchange monitor and a message's evidence, agreements
(written on the hub), the trust list and this node's keys, the transparency log with "verify
now", the auditor's view of the members' logs, and the person page's federation actions.

Views stay thin: they parse, call one selector or service with the signed-in staff member's
actor, and render. A refusal becomes a form error or a message on the page; only "not found"
and "not allowed" become the 404 and 403 pages (``staff_view``). A refusal by another node
(``Refusal``) is shown with its translated message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pilar.core.actor import Actor
from pilar.core.errors import (
    ApplicationError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from pilar.core.forms import apply_service_errors
from pilar.core.roles import Perm
from pilar.core.views import actor_for, page_number, staff_view
from pilar.exchange import selectors_monitor as monitor
from pilar.exchange.forms_exchange import (
    AgreementEndForm,
    AgreementForm,
    InstitutionsForm,
    MessageFilterForm,
    PeriodsFetchForm,
)
from pilar.exchange.models import Agreement, Member, MessageStatus
from pilar.exchange.reasons import Refusal
from pilar.exchange.transport import PeerUnavailable


def _reraise_access(error: ApplicationError) -> None:
    """Not found and not allowed stay what they are (404 and 403 pages)."""
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


def _require_hub() -> None:
    if not monitor.is_hub():
        raise PermissionDenied(
            _("Only the hub's staff write agreements and publish the trust list.")
        )


# --- the monitor ------------------------------------------------------------------------------


@require_GET
@staff_view
def monitor_list(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    counts = monitor.message_status_counts(actor=actor)
    form = MessageFilterForm(
        request.GET, peers=monitor.message_peers(), actions=monitor.message_actions()
    )
    page = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            page = monitor.message_list(
                actor=actor,
                direction=data.get("direction") or None,
                status=data.get("status") or None,
                peer=data.get("peer") or None,
                action=data.get("action") or None,
                purpose=data.get("purpose") or None,
                since=data.get("since"),
                until=data.get("until"),
                page=page_number(request),
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
    return render(
        request,
        "exchange/monitor.html",
        {
            "form": form,
            "page": page,
            "counts": counts,
            "counts_shown": [
                (status, label, counts.get(status, 0)) for status, label in MessageStatus.choices
            ],
            "node_code": monitor.node_code(),
        },
        status=200 if page is not None else 422,
    )


@require_GET
@staff_view
def message_detail(request: HttpRequest, message_pk: int) -> HttpResponse:
    actor = actor_for(request)
    view = monitor.message_get(actor=actor, message_pk=message_pk)
    return render(
        request,
        "exchange/message_detail.html",
        {"view": view, "message": view.message},
    )


@require_POST
@staff_view
def message_retry(request: HttpRequest, message_pk: int) -> HttpResponse:
    from pilar.exchange import messaging

    actor = actor_for(request)
    actor.require(Perm.EXCHANGE_MANAGE)
    target = reverse("exchange:message_detail", args=[message_pk])
    try:
        row = messaging.message_retry(actor=actor, message_pk=message_pk)
    except ApplicationError as error:
        _reraise_access(error)
        messages.error(request, _refusal_text(error))
        return redirect(target)
    except Refusal as refusal:
        messages.error(request, refusal.message())
        return redirect(target)
    status = getattr(row, "status", "")
    if status == "answered":
        messages.success(request, _("The message was sent again and answered."))
    elif status == "refused":
        messages.warning(request, _("The message was sent again and refused by the other member."))
    else:
        messages.info(
            request,
            _("The message is queued again; it will be delivered when the other member answers."),
        )
    return redirect(target)


# --- agreements -------------------------------------------------------------------------------


def _member_codes() -> list[str]:
    return list(Member.objects.order_by("code").values_list("code", flat=True))


def _agreement(actor: Any, agreement_pk: int) -> Agreement:
    from pilar.exchange import selectors_agreements

    return selectors_agreements.agreement_get(actor=actor, agreement_id=agreement_pk)


@require_GET
@staff_view
def agreement_list(request: HttpRequest) -> HttpResponse:
    from pilar.exchange import selectors_agreements

    actor = actor_for(request)
    actor.require(Perm.EXCHANGE_VIEW)
    agreements = selectors_agreements.agreement_list(actor=actor)
    return render(
        request,
        "exchange/agreement_list.html",
        {
            "agreements": agreements,
            "can_write": monitor.is_hub() and actor.can(Perm.EXCHANGE_MANAGE),
        },
    )


def _agreement_context(actor: Any, agreement: Agreement, **extra: Any) -> dict[str, Any]:
    can_write = monitor.is_hub() and actor.can(Perm.EXCHANGE_MANAGE) and not agreement.imported
    return {
        "agreement": agreement,
        "can_write": can_write and agreement.status != "ended",
        "end_form": extra.pop("end_form", None)
        or AgreementEndForm(initial={"version": agreement.version}),
        **extra,
    }


@require_GET
@staff_view
def agreement_detail(request: HttpRequest, agreement_pk: int) -> HttpResponse:
    actor = actor_for(request)
    agreement = _agreement(actor, agreement_pk)
    return render(request, "exchange/agreement_detail.html", _agreement_context(actor, agreement))


@require_http_methods(["GET", "POST"])
@staff_view
def agreement_create(request: HttpRequest) -> HttpResponse:
    from pilar.exchange import services_agreements

    actor = actor_for(request)
    actor.require(Perm.EXCHANGE_MANAGE)
    _require_hub()
    form = AgreementForm(
        request.POST if request.method == "POST" else None, members=_member_codes()
    )
    if request.method == "POST" and form.is_valid():
        try:
            agreement = services_agreements.agreement_create(
                actor=actor, code=form.cleaned_data.get("code") or "", **form.values()
            )
        except ValidationFailed as error:
            apply_service_errors(form, error, AgreementForm.SERVICE_FIELDS)
        except ApplicationError as error:
            _reraise_access(error)
            form.add_error(None, _refusal_text(error))
        else:
            messages.success(
                request,
                _(
                    "Agreement %(code)s has been created. It takes effect on the members with "
                    "the next trust list published."
                )
                % {"code": agreement.code},
            )
            return redirect("exchange:agreement_detail", agreement_pk=agreement.pk)
    return render(
        request,
        "exchange/agreement_form.html",
        {"form": form, "agreement": None},
        status=422 if form.is_bound else 200,
    )


@require_http_methods(["GET", "POST"])
@staff_view
def agreement_edit(request: HttpRequest, agreement_pk: int) -> HttpResponse:
    from pilar.exchange import services_agreements

    actor = actor_for(request)
    actor.require(Perm.EXCHANGE_MANAGE)
    _require_hub()
    agreement = _agreement(actor, agreement_pk)
    initial = {
        "code": agreement.code,
        "consumer": agreement.consumer,
        "provider": agreement.provider,
        "service": agreement.service,
        "purposes": agreement.purposes,
        "granted_fields": agreement.fields,
        "valid_from": agreement.valid_from,
        "valid_until": agreement.valid_until,
        "status": agreement.status,
        "legal_basis": agreement.legal_basis,
        "version": agreement.version,
    }
    form = AgreementForm(
        request.POST if request.method == "POST" else None,
        initial=initial,
        members=_member_codes(),
        editing=True,
    )
    if request.method == "POST" and form.is_valid():
        try:
            services_agreements.agreement_update(
                actor=actor,
                agreement_id=agreement.pk,
                expected_version=form.cleaned_data.get("version") or agreement.version,
                **form.values(),
            )
        except ValidationFailed as error:
            apply_service_errors(form, error, AgreementForm.SERVICE_FIELDS)
        except ApplicationError as error:
            _reraise_access(error)
            form.add_error(None, _refusal_text(error))
        else:
            messages.success(
                request,
                _("Agreement %(code)s has been changed; the next trust list publishes it.")
                % {"code": agreement.code},
            )
            return redirect("exchange:agreement_detail", agreement_pk=agreement.pk)
    return render(
        request,
        "exchange/agreement_form.html",
        {"form": form, "agreement": agreement},
        status=422 if form.is_bound else 200,
    )


@require_POST
@staff_view
def agreement_end(request: HttpRequest, agreement_pk: int) -> HttpResponse:
    from pilar.exchange import services_agreements

    actor = actor_for(request)
    actor.require(Perm.EXCHANGE_MANAGE)
    _require_hub()
    agreement = _agreement(actor, agreement_pk)
    form = AgreementEndForm(request.POST)
    if form.is_valid():
        try:
            services_agreements.agreement_end(
                actor=actor,
                agreement_id=agreement.pk,
                expected_version=form.cleaned_data.get("version") or agreement.version,
                valid_until=form.cleaned_data.get("valid_until"),  # type: ignore[arg-type]
            )
        except ValidationFailed as error:
            apply_service_errors(form, error)
        except ApplicationError as error:
            _reraise_access(error)
            form.add_error(None, _refusal_text(error))
        else:
            messages.success(
                request,
                _("Agreement %(code)s has been ended; the next trust list no longer grants it.")
                % {"code": agreement.code},
            )
            return redirect("exchange:agreement_detail", agreement_pk=agreement.pk)
    context = _agreement_context(actor, agreement, end_form=form, end_open=True)
    return render(request, "exchange/agreement_detail.html", context, status=422)


# --- trust list and keys ----------------------------------------------------------------------


def _trust_page(request: HttpRequest, *, status: int = 200, **extra: Any) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.EXCHANGE_VIEW)
    return render(
        request,
        "exchange/trust.html",
        {
            "summary": monitor.trust_summary(),
            "can_manage": actor.can(Perm.EXCHANGE_MANAGE),
            **extra,
        },
        status=status,
    )


@require_GET
@staff_view
def trust(request: HttpRequest) -> HttpResponse:
    return _trust_page(request)


def _trust_action(request: HttpRequest, run: Any, success: str) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.EXCHANGE_MANAGE)
    try:
        result = run(actor)
    except ApplicationError as error:
        _reraise_access(error)
        messages.error(request, _refusal_text(error))
    except Refusal as refusal:
        messages.error(request, refusal.message())
    else:
        messages.success(request, success % {"serial": getattr(result, "serial", "")})
    return redirect("exchange:trust")


@require_POST
@staff_view
def trust_fetch(request: HttpRequest) -> HttpResponse:
    from pilar.exchange import services_trust

    return _trust_action(
        request,
        lambda actor: services_trust.trust_list_fetch(actor=actor),
        _("Trust list %(serial)s is now the current one."),
    )


@require_POST
@staff_view
def trust_publish(request: HttpRequest) -> HttpResponse:
    _require_hub()
    from pilar.exchange import services_trust

    return _trust_action(
        request,
        lambda actor: services_trust.trust_list_publish(actor=actor),
        _("Trust list %(serial)s has been signed and published."),
    )


@require_http_methods(["GET", "POST"])
@staff_view
def key_rotate(request: HttpRequest) -> HttpResponse:
    from pilar.exchange import node

    actor = actor_for(request)
    actor.require(Perm.EXCHANGE_MANAGE)
    if request.method == "GET":
        return render(request, "exchange/key_rotate.html", {"node_code": monitor.node_code()})
    try:
        key = node.node_key_rotate(actor=actor)
    except ApplicationError as error:
        _reraise_access(error)
        messages.error(request, _refusal_text(error))
    except Refusal as refusal:
        messages.error(request, refusal.message())
    else:
        messages.success(
            request,
            _(
                "Key %(key_id)s now signs this node's messages; the previous key is retiring "
                "and still accepted until the hub publishes the new one."
            )
            % {"key_id": key.key_id},
        )
    return redirect("exchange:trust")


# --- transparency log -------------------------------------------------------------------------


def _log_page(request: HttpRequest, **extra: Any) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.EXCHANGE_VIEW)
    return render(
        request,
        "exchange/log.html",
        {"summary": monitor.log_summary(), "can_manage": actor.can(Perm.EXCHANGE_MANAGE), **extra},
    )


@require_GET
@staff_view
def log_page(request: HttpRequest) -> HttpResponse:
    return _log_page(request)


@require_POST
@staff_view
def log_verify(request: HttpRequest) -> HttpResponse:
    """Runs the same checks as ``pilar audit verify`` and shows each failure. A read: anyone who
    may see the log may check it."""
    from pilar.exchange import verify

    actor = actor_for(request)
    actor.require(Perm.EXCHANGE_VIEW)
    report = verify.log_verify()
    return _log_page(
        request, report=report, verified=True, counts=sorted(dict(report.counts).items())
    )


# --- auditor ----------------------------------------------------------------------------------


@require_GET
@staff_view
def auditor(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    actor.require(Perm.EXCHANGE_VIEW)
    return render(
        request,
        "exchange/auditor.html",
        {
            "summary": monitor.auditor_summary(),
            "is_auditor": monitor.is_auditor(),
            "can_manage": actor.can(Perm.EXCHANGE_MANAGE),
        },
    )


@require_POST
@staff_view
def auditor_round(request: HttpRequest) -> HttpResponse:
    from pilar.exchange import auditor as auditor_module

    actor = actor_for(request)
    actor.require(Perm.EXCHANGE_MANAGE)
    if not monitor.is_auditor():
        raise PermissionDenied(_("Only an auditor node checks the members' logs."))
    # The round is the auditor node's own work (its key cosigns), not a change made on the
    # staff member's behalf, so it takes no actor; each alert it raises is stored and listed.
    results = auditor_module.audit_round()
    problems = [r for r in results if r.outcome not in ("cosigned", "unchanged")]
    if problems:
        messages.warning(
            request,
            _("The round is done; not cosigned: %(members)s.")
            % {"members": ", ".join(f"{r.member} ({r.outcome})" for r in problems)},
        )
    else:
        messages.success(request, _("The round is done: every log checked was consistent."))
    return redirect("exchange:auditor")


# --- person page actions ----------------------------------------------------------------------


def _person_url(person_id: int) -> str:
    return reverse("registry:person_detail", args=[person_id]) + "#federation"


def _person_request(
    request: HttpRequest,
    person_id: int,
    form_class: type[forms.Form],
    ask: Callable[[Actor, str], list[tuple[int, str]]],
) -> HttpResponse:
    """The person page's requests to other institutions: a stated purpose (the form), the
    request, and its outcome as messages on the person's page. A hub that does not answer is a
    warning (the request is kept and retried), a refusal an error."""
    actor = actor_for(request)
    actor.require(Perm.EXCHANGE_REQUEST)
    form = form_class(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors.get("purpose", [])))
        return redirect(_person_url(person_id))
    try:
        outcome = ask(actor, form.cleaned_data["purpose"])
    except PeerUnavailable as error:
        messages.warning(request, str(error.message))
    except ApplicationError as error:
        _reraise_access(error)
        messages.error(request, _refusal_text(error))
    except Refusal as refusal:
        messages.error(request, refusal.message())
    else:
        for level, text in outcome:
            messages.add_message(request, level, text)
    return redirect(_person_url(person_id))


@require_POST
@staff_view
def person_institutions(request: HttpRequest, person_id: int) -> HttpResponse:
    from pilar.exchange import client

    def ask(actor: Actor, purpose: str) -> list[tuple[int, str]]:
        result = client.person_institutions(actor=actor, person_id=person_id, purpose=purpose)
        members = [f"{holder.name or holder.code} ({holder.code})" for holder in result.members]
        if not members:
            return [(messages.INFO, _("No other institution holds records of this person."))]
        return [
            (
                messages.SUCCESS,
                _("Institutions holding records of this person: %(members)s.")
                % {"members": ", ".join(members)},
            )
        ]

    return _person_request(request, person_id, InstitutionsForm, ask)


@require_POST
@staff_view
def person_periods_fetch(request: HttpRequest, person_id: int) -> HttpResponse:
    from pilar.exchange import client

    def ask(actor: Actor, purpose: str) -> list[tuple[int, str]]:
        outcome = client.person_periods_fetch(actor=actor, person_id=person_id, purpose=purpose)
        return list(periods_fetch_messages(outcome))

    return _person_request(request, person_id, PeriodsFetchForm, ask)


def periods_fetch_messages(outcome: Any) -> list[tuple[int, str]]:
    """What staff are told after a fetch: who answered, who refused (or sent an answer that
    did not verify), and who did not answer and will be asked again."""
    answered = [r.member for r in outcome.results if r.status == "stored"]
    refused = [
        f"{r.member} ({r.reason_code})" if r.reason_code else r.member
        for r in outcome.results
        if r.status in ("refused", "invalid")
    ]
    unavailable = [r.member for r in outcome.results if r.status == "unavailable"]
    shown: list[tuple[int, str]] = []
    if answered:
        shown.append(
            (
                messages.SUCCESS,
                _("Insurance periods received from: %(members)s.")
                % {"members": ", ".join(answered)},
            )
        )
    if refused:
        shown.append(
            (messages.ERROR, _("Refused by: %(members)s.") % {"members": ", ".join(refused)})
        )
    if unavailable:
        shown.append(
            (
                messages.WARNING,
                _("Did not answer (fetch again later): %(members)s.")
                % {"members": ", ".join(unavailable)},
            )
        )
    if not shown:
        shown.append((messages.INFO, _("No other institution holds periods of this person.")))
    return shown


@require_POST
@staff_view
def event_acknowledge(request: HttpRequest, event_pk: int) -> HttpResponse:
    from pilar.exchange import handlers_events

    actor = actor_for(request)
    try:
        event = handlers_events.event_acknowledge(actor=actor, event_id=event_pk)
    except ApplicationError as error:
        _reraise_access(error)
        messages.error(request, _refusal_text(error))
        return redirect("core:home")
    messages.success(request, _("The event has been acknowledged."))
    if event.person_id:
        return redirect(_person_url(event.person_id))
    return redirect("exchange:monitor")
