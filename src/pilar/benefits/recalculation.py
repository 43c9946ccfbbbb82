"""Recalculating awards: what-if previews of a parameter change, and applying a published
version of a scheme package to every active award of the package.

``recalculation_preview`` asks "what would every active award of this package be, with this
version and these what-if parameter values, on this date?": it records a ``preview`` run and
queues the job; the job (``tasks.recalculation_execute``) evaluates every award in bulk and
leaves the awards untouched. ``recalculation_apply`` records an ``apply`` run for a published
version: its job adds an ``AwardCalculation`` per award (package name, version and hash, the
inputs, the amount and the engine's values) and updates the award's amount, version and hash.

Both compare each award's new amount with the amount in payment, so the run's summary says how
many awards were evaluated, changed, increased and decreased, the total paid per payment before
and after, a distribution of the changes in percentage buckets, the 20 largest changes, and the
awards that could not be evaluated with their codes (``ERROR_CODES``).

The evaluation date ``on`` is the date whose law applies (the parameters in force on it); the
law is taken as known on ``known_at`` = the later of ``on`` and the day of the request, so a
correction recorded today counts, and so do the package's own entries for a future ``on``.
What-if entries are recorded on ``known_at``: they override the package's entries for the same
``from`` date and take effect from their own ``from``.

Audit: one event when a run is requested, one per batch an application commits (the award id
range, the number of awards and the money moved) and one when a run finishes — not one per
award. A million audit rows would double the writes of a recalculation and bury everything else
in the trail, and they would add nothing: every award's change is itself an immutable
``AwardCalculation`` that names its run, and the run names who asked for it, when and why.

What a stored calculation was computed with is enough to rebuild its full explanation:
``calculation_explanation`` evaluates its inputs again with its package version (published,
hence immutable, and checked against the stored hash) on its evaluation date, as known on its
``known_at``, with its run's what-if values. Bulk calculations therefore store values only.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from pilar.benefits.errors import EvaluationFailed, PackageUnavailable
from pilar.benefits.inputs import engine_value
from pilar.benefits.models import (
    AwardCalculation,
    RecalculationRun,
    RunKind,
    RunStatus,
)
from pilar.core import jobs
from pilar.core.actor import Actor
from pilar.core.audit import audit_record, created
from pilar.core.errors import Conflict, FieldErrors, NotFound, ValidationFailed
from pilar.core.pagination import Page, paginate
from pilar.core.roles import Perm

if TYPE_CHECKING:
    from pilar.rules import Package, ParameterValue, Result

RECALCULATION_JOB = "benefits.recalculate"
REASON_MAX_LENGTH = 1000
# What-if entries: a handful of parameters, a few dates each, is what a preview is for.
MAX_OVERRIDE_PARAMETERS = 20
MAX_OVERRIDE_ENTRIES = 10
WHAT_IF_SOURCE = "what-if"

# Why an award could not be recalculated (``summary["errors"]["by_code"]``). Codes with a
# variable or input name after a colon carry it: ``no_value:tabla_167``.
ERROR_CODES: dict[str, Any] = {
    "no_value": gettext_lazy("The rules have no value for this case"),
    "conflict": gettext_lazy("Two exceptions of the rules apply at once"),
    "division_by_zero": gettext_lazy("A division by zero in the rules"),
    "missing_input": gettext_lazy("A datum the rules need is not in the award's inputs"),
    "bad_input": gettext_lazy("A datum in the award's inputs is not of the type the rules expect"),
    "not_eligible": gettext_lazy("The rules say the person is no longer entitled"),
    "no_amount": gettext_lazy("The rules give no amount"),
    "negative_amount": gettext_lazy("The rules give a negative amount"),
    "unknown_benefit": gettext_lazy("This version of the package has no such benefit"),
}

# The distribution of changes, by the change in percent of the amount in payment: each bucket
# holds the changes up to its bound (included) and above the previous one; "down_0_1" stops
# short of zero, which is "unchanged"; the last bucket is open. An increase from nothing has no
# percentage and counts in the last bucket.
BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("down_over_20", -20),
    ("down_10_20", -10),
    ("down_5_10", -5),
    ("down_1_5", -1),
    ("down_0_1", 0),
    ("unchanged", 0),
    ("up_0_1", 1),
    ("up_1_5", 5),
    ("up_5_10", 10),
    ("up_10_20", 20),
    ("up_over_20", None),
)
BUCKET_LABELS: dict[str, Any] = {
    "down_over_20": gettext_lazy("Down 20% or more"),
    "down_10_20": gettext_lazy("Down 10% to 20%"),
    "down_5_10": gettext_lazy("Down 5% to 10%"),
    "down_1_5": gettext_lazy("Down 1% to 5%"),
    "down_0_1": gettext_lazy("Down less than 1%"),
    "unchanged": gettext_lazy("Unchanged"),
    "up_0_1": gettext_lazy("Up less than 1%"),
    "up_1_5": gettext_lazy("Up 1% to 5%"),
    "up_5_10": gettext_lazy("Up 5% to 10%"),
    "up_10_20": gettext_lazy("Up 10% to 20%"),
    "up_over_20": gettext_lazy("Up more than 20%"),
}
LARGEST_KEPT = 20
ERROR_ROWS_KEPT = 1000


class RecalculationNotPublished(Conflict):
    """Only a published (immutable) version may be applied: awards keep the version and hash
    they were computed with, which must mean the same rules for ever."""

    code = "benefits.recalculation_unpublished"
    title = gettext_lazy(
        "Only a published version of the rules can be applied to awards; this one is a draft."
    )


class RecalculationRunning(Conflict):
    """An application of the same package is queued or running: two at once would each write a
    calculation for the same awards."""

    code = "benefits.recalculation_running"
    title = gettext_lazy(
        "A recalculation of this scheme is already being applied. Wait until it has finished."
    )


# --- packages and what-if values -------------------------------------------------------------


def load_version(name: Any, version: Any) -> Package:
    """A package version (the newest without ``version``). Unknown names and versions are field
    errors; a package that cannot be loaded is ``PackageUnavailable`` with the engine's message."""
    from pilar.rules import PackageNotFoundError, RulesError, load_package

    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValidationFailed.single("package", "benefits.unknown_package", _("Unknown scheme."))
    if version is not None and (
        not isinstance(version, str) or not version or "/" in version or version.startswith(".")
    ):
        raise ValidationFailed.single(
            "version", "benefits.unknown_version", _("This scheme has no such version.")
        )
    try:
        return load_package(name, version or None)
    except PackageNotFoundError:
        if version:
            try:
                load_package(name)
            except PackageNotFoundError:
                pass
            else:
                raise ValidationFailed.single(
                    "version", "benefits.unknown_version", _("This scheme has no such version.")
                ) from None
        raise ValidationFailed.single(
            "package", "benefits.unknown_package", _("Unknown scheme.")
        ) from None
    except RulesError as error:
        raise PackageUnavailable(
            _("The rules of %(package)s cannot be loaded: %(error)s")
            % {"package": name, "error": error.message(_language())},
            extra={"rules_error": error.to_dict()},
        ) from error


def _language() -> str:
    from django.utils.translation import get_language

    return get_language() or "es"


def is_published(package: Package) -> bool:
    """The version is in the publication register with this very content hash."""
    from pilar.rules.package import read_register

    register = read_register(package.path.parent.parent)
    return register.get(package.name, {}).get(package.version) == package.content_hash


def known_at_for(on: datetime.date, today: datetime.date | None = None) -> datetime.date:
    """The record date a run takes the law as known on (module docstring)."""
    today = today or timezone.localdate()
    return max(on, today)


def clean_overrides(
    package: Package, overrides: Any, *, known_at: datetime.date
) -> dict[str, list[dict[str, Any]]]:
    """What-if values checked against the package, as the run stores them.

    ``overrides`` is ``{parameter: [{"valid_from": date or ISO text, "value": ...}, ...]}`` (a
    single entry may be given without the list). Every problem is reported at once, as field
    errors named ``overrides.<parameter>``, ``overrides.<parameter>.valid_from`` and
    ``overrides.<parameter>.value``: an unknown parameter, a missing or malformed date, a value
    not of the parameter's type. Returns ``{parameter: [{"valid_from", "value", "recorded",
    "source"}]}`` with values encoded as the engine writes them (numbers as exact text)."""
    from pilar.rules import RulesError
    from pilar.rules.explanation import encode_value
    from pilar.rules.parameters import coerce_value

    if overrides is None or overrides == {}:
        return {}
    errors = FieldErrors()
    if not isinstance(overrides, Mapping):
        errors.add(
            "overrides",
            "benefits.recalculation.bad_overrides",
            _("What-if values are a mapping of parameter names to dated values."),
        )
        errors.raise_if_any()
    if len(overrides) > MAX_OVERRIDE_PARAMETERS:
        errors.add(
            "overrides",
            "benefits.recalculation.too_many",
            _("At most %(max)d parameters can be changed in one preview.")
            % {"max": MAX_OVERRIDE_PARAMETERS},
        )
        errors.raise_if_any()
    cleaned: dict[str, list[dict[str, Any]]] = {}
    for name, raw_entries in overrides.items():
        field = f"overrides.{name}"
        parameter = package.parameters.get(name) if isinstance(name, str) else None
        if parameter is None:
            errors.add(
                field,
                "benefits.recalculation.unknown_parameter",
                _("%(package)s %(version)s has no parameter %(name)s.")
                % {"package": package.name, "version": package.version, "name": name},
            )
            continue
        entries = [raw_entries] if isinstance(raw_entries, Mapping) else raw_entries
        if not isinstance(entries, Sequence) or isinstance(entries, str) or not entries:
            errors.add(
                field,
                "benefits.recalculation.no_values",
                _("Give at least one value with the date it takes effect."),
            )
            continue
        if len(entries) > MAX_OVERRIDE_ENTRIES:
            errors.add(
                field,
                "benefits.recalculation.too_many",
                _("At most %(max)d dated values per parameter.") % {"max": MAX_OVERRIDE_ENTRIES},
            )
            continue
        for entry in entries:
            if not isinstance(entry, Mapping):
                errors.add(
                    field,
                    "benefits.recalculation.bad_overrides",
                    _("Each what-if value has a date (valid_from) and a value."),
                )
                continue
            valid_from = _override_date(entry.get("valid_from"))
            if valid_from is None:
                errors.add(
                    f"{field}.valid_from",
                    "date.invalid",
                    _("Give the date the value takes effect as YYYY-MM-DD."),
                )
            try:
                value = coerce_value(entry.get("value"), parameter.type, name, parameter.label)
            except RulesError:
                errors.add(
                    f"{field}.value",
                    "benefits.recalculation.bad_value",
                    _("%(name)s takes a %(type)s.")
                    % {"name": name, "type": TYPE_NAMES.get(parameter.type, parameter.type)},
                )
                continue
            if valid_from is None:
                continue
            cleaned.setdefault(name, []).append(
                {
                    "valid_from": valid_from.isoformat(),
                    "value": encode_value(value),
                    "recorded": known_at.isoformat(),
                    "source": WHAT_IF_SOURCE,
                }
            )
    errors.raise_if_any()
    return cleaned


TYPE_NAMES: dict[str, Any] = {
    "number": gettext_lazy("number"),
    "bool": gettext_lazy("yes or no"),
    "date": gettext_lazy("date"),
    "text": gettext_lazy("text"),
}


def _override_date(value: Any) -> datetime.date | None:
    if isinstance(value, datetime.datetime):
        return None
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def parameter_values(
    package: Package, stored: Mapping[str, Any]
) -> dict[str, list[ParameterValue]]:
    """A run's stored what-if values as the engine's ``overrides``."""
    from pilar.rules import ParameterValue
    from pilar.rules.explanation import decode_value

    values: dict[str, list[ParameterValue]] = {}
    for name, entries in (stored or {}).items():
        parameter_type = package.parameters[name].type
        values[name] = [
            ParameterValue(
                valid_from=datetime.date.fromisoformat(entry["valid_from"]),
                value=decode_value(entry["value"], parameter_type),  # type: ignore[arg-type]
                recorded=datetime.date.fromisoformat(entry["recorded"]),
                source=entry.get("source") or WHAT_IF_SOURCE,
            )
            for entry in entries
        ]
    return values


def _check_date(value: Any, field: str = "on") -> datetime.date:
    if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
        raise ValidationFailed.single(field, "date.invalid", _("Give a date as YYYY-MM-DD."))
    return value


def _clean_reason(reason: Any) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise ValidationFailed.single("reason", "required", _("Give the reason."))
    if len(text) > REASON_MAX_LENGTH:
        raise ValidationFailed.single(
            "reason",
            "too_long",
            _("At most %(max)d characters.") % {"max": REASON_MAX_LENGTH},
        )
    return text


# --- services --------------------------------------------------------------------------------


def _serialise_applications(package: str) -> None:
    """Make concurrent requests to apply the same package take turns, so that the check for a
    queued or running application and the new run commit together. PostgreSQL: a transaction
    advisory lock on the package name. SQLite lets one writer at a time anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"benefits.recalculation:{package}"]
            )


def _queue(run: RecalculationRun) -> None:
    run.job = jobs.enqueue(RECALCULATION_JOB, run_id=run.pk)
    run.save(update_fields=["job"])


@transaction.atomic(durable=True)
def recalculation_preview(
    *,
    actor: Actor,
    package: str,
    version: str | None,
    overrides: Mapping[str, Any] | None,
    on: datetime.date,
) -> RecalculationRun:
    """Queue a preview: every active award of ``package`` evaluated with ``version`` (the newest
    without one) and the what-if ``overrides`` on ``on``, compared with the amount in payment.
    No award changes. Raises ``ValidationFailed`` (unknown package or version, a bad date, bad
    what-if values: see ``clean_overrides``) or ``PackageUnavailable``; nothing is written then."""
    actor.require(Perm.RECALCULATION_RUN)
    loaded = load_version(package, version)
    on = _check_date(on)
    known_at = known_at_for(on)
    cleaned = clean_overrides(loaded, overrides, known_at=known_at)
    run = RecalculationRun.objects.create(
        kind=RunKind.PREVIEW,
        package_name=loaded.name,
        package_version=loaded.version,
        overrides=cleaned,
        evaluation_date=on,
        created_by=actor.user,
        summary={"package_hash": loaded.content_hash, "known_at": known_at.isoformat()},
    )
    _queue(run)
    audit_record(
        actor=actor,
        action="recalculation.preview",
        entity_type="recalculation_run",
        entity_id=run.pk,
        changes=created(
            {
                "kind": run.kind,
                "package": f"{loaded.name} {loaded.version}",
                "package_hash": loaded.content_hash,
                "evaluation_date": on,
                "known_at": known_at,
                **{
                    f"overrides.{name}": ", ".join(
                        f"{entry['value']} from {entry['valid_from']}" for entry in entries
                    )
                    for name, entries in cleaned.items()
                },
            }
        ),
    )
    return run


@transaction.atomic(durable=True)
def recalculation_apply(
    *,
    actor: Actor,
    package: str,
    version: str,
    on: datetime.date,
    reason: str,
) -> RecalculationRun:
    """Queue an application of a published ``version`` of ``package`` to every active award of
    the package on ``on``: each award gets a new ``AwardCalculation`` (reason
    ``recalculation``, linked to the run) and its amount, version and hash are updated. Awards
    the rules cannot evaluate, or find no longer entitled, are left as they are and listed in
    the run's summary. Raises ``ValidationFailed`` (unknown package or version, a bad date, no
    reason), ``RecalculationNotPublished`` for a draft version and ``RecalculationRunning``
    while another application of the package is queued or running."""
    actor.require(Perm.RECALCULATION_RUN)
    if not version:
        raise ValidationFailed.single(
            "version", "required", _("Choose the published version to apply.")
        )
    loaded = load_version(package, version)
    on = _check_date(on)
    text = _clean_reason(reason)
    if not is_published(loaded):
        raise RecalculationNotPublished()
    _serialise_applications(loaded.name)
    busy = RecalculationRun.objects.filter(
        kind=RunKind.APPLY,
        package_name=loaded.name,
        status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
    ).first()
    if busy is not None:
        raise RecalculationRunning(extra={"run_id": busy.pk})
    known_at = known_at_for(on)
    run = RecalculationRun.objects.create(
        kind=RunKind.APPLY,
        package_name=loaded.name,
        package_version=loaded.version,
        overrides={},
        evaluation_date=on,
        created_by=actor.user,
        summary={
            "package_hash": loaded.content_hash,
            "known_at": known_at.isoformat(),
            "reason": text,
        },
    )
    _queue(run)
    audit_record(
        actor=actor,
        action="recalculation.apply",
        entity_type="recalculation_run",
        entity_id=run.pk,
        changes=created(
            {
                "kind": run.kind,
                "package": f"{loaded.name} {loaded.version}",
                "package_hash": loaded.content_hash,
                "evaluation_date": on,
                "known_at": known_at,
            }
        ),
        note=text,
    )
    return run


# --- selectors -------------------------------------------------------------------------------


def recalculation_list(
    *,
    actor: Actor,
    kind: str | None = None,
    package: str | None = None,
    page: int = 1,
    page_size: int = 25,
) -> Page[RecalculationRun]:
    """Recalculation runs, newest first. A run is about a whole scheme, not a person: listing
    runs is not a read of anyone's record."""
    actor.require(Perm.RECALCULATION_RUN)
    runs = RecalculationRun.objects.select_related("created_by", "job")
    if kind:
        if kind not in RunKind.values:
            raise ValidationFailed.single(
                "kind",
                "invalid_choice",
                _("Choose one of: %(choices)s.") % {"choices": ", ".join(RunKind.values)},
            )
        runs = runs.filter(kind=kind)
    if package:
        runs = runs.filter(package_name=package)
    return paginate(runs.order_by("-created_at", "-pk"), page=page, page_size=page_size)


def recalculation_get(*, actor: Actor, run_id: int) -> RecalculationRun:
    """One run with its summary."""
    actor.require(Perm.RECALCULATION_RUN)
    run = RecalculationRun.objects.select_related("created_by", "job").filter(pk=run_id).first()
    if run is None:
        raise NotFound(extra={"entity": "recalculation_run", "id": run_id})
    return run


@dataclass(frozen=True)
class ParameterChoice:
    """A parameter of a package, as the what-if form offers it."""

    name: str
    type: str
    unit: str | None
    label: Mapping[str, str]
    reference: str
    # The value in force on the day the form is shown, for the officer to start from.
    current: Any


@dataclass(frozen=True)
class PackageChoice:
    name: str
    title: Mapping[str, str]
    version: str
    published: bool
    parameters: list[ParameterChoice]


def recalculation_packages(*, actor: Actor, on: datetime.date | None = None) -> list[PackageChoice]:
    """Every version of every shipped package (newest first within a package), with its
    parameters and their values on ``on`` (default today), for the what-if and apply forms.
    Versions that cannot be loaded are left out."""
    from pilar.rules import RulesError, available_packages, load_package

    actor.require(Perm.RECALCULATION_RUN)
    day = on or timezone.localdate()
    choices: list[PackageChoice] = []
    for ref in reversed(available_packages()):
        try:
            loaded = load_package(ref.name, ref.version)
        except RulesError:
            continue
        parameters = []
        for parameter in loaded.parameters.values():
            found = parameter.lookup(day, day)
            parameters.append(
                ParameterChoice(
                    name=parameter.name,
                    type=parameter.type,
                    unit=parameter.unit,
                    label=dict(parameter.label),
                    reference=parameter.reference,
                    current=found.entry.value if found is not None else None,
                )
            )
        choices.append(
            PackageChoice(
                name=loaded.name,
                title=dict(loaded.title or {}),
                version=loaded.version,
                published=is_published(loaded),
                parameters=parameters,
            )
        )
    choices.sort(key=lambda choice: choice.name)
    return choices


def calculation_explanation(calculation: AwardCalculation) -> Result:
    """The full explanation of a stored calculation, computed again from what it stores (module
    docstring). Raises ``PackageUnavailable`` when its package version is gone or its files no
    longer have the stored hash, ``EvaluationFailed`` when the rules cannot evaluate it."""
    from pilar.rules import RulesError

    try:
        package = load_version(calculation.package_name, calculation.package_version)
    except ValidationFailed as error:
        raise PackageUnavailable(
            _("The rules version %(version)s of %(package)s is no longer available.")
            % {"version": calculation.package_version, "package": calculation.package_name}
        ) from error
    if package.content_hash != calculation.package_hash:
        raise PackageUnavailable(
            _("The rules version %(version)s of %(package)s have changed since the calculation.")
            % {"version": calculation.package_version, "package": calculation.package_name}
        )
    overrides = parameter_values(package, calculation.run.overrides) if calculation.run else {}
    # The award's benefit decides the outputs and their order (a JSON object, jsonb above
    # all, does not keep the order its keys were written in).
    info = package.benefits.get(calculation.award.benefit)
    if info is not None:
        outputs = [info.eligible] + ([info.amount] if info.amount else [])
    else:
        outputs = [name for name in package.variables if name in (calculation.values or {})]
    inputs = {
        name: engine_value(package.inputs[name].type, item.get("value"))
        for name, item in (calculation.inputs or {}).items()
        if name in package.inputs and isinstance(item, Mapping)
    }
    try:
        return package.evaluate(
            inputs,
            on=calculation.evaluation_date,
            known_at=calculation.known_at,
            outputs=outputs or None,
            overrides=overrides,
        )
    except RulesError as error:
        raise EvaluationFailed(
            error.message(_language()), extra={"rules_error": error.to_dict()}
        ) from error


# --- summaries -------------------------------------------------------------------------------


def centavos(value: Any) -> Decimal | None:
    """An amount stored in the summary in centavos, as pesos."""
    if value is None:
        return None
    return Decimal(int(value)) / 100


def error_label(code: str) -> str:
    """The reader's words for an error code (``no_value:tabla_167`` → its kind, with the name)."""
    kind, _sep, name = code.partition(":")
    label = ERROR_CODES.get(kind)
    if label is None:
        return code
    return f"{label} ({name})" if name else str(label)
