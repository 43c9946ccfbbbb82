"""Writing the audit trail and the access log. Call these inside the service's transaction, so
an event exists exactly when its change does."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Iterable, Mapping
from typing import Any

from pilar.core.actor import Actor
from pilar.core.models import AccessLogEntry, AuditEvent


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if hasattr(value, "pk"):
        return value.pk
    return value


def snapshot(instance: Any, fields: Iterable[str]) -> dict[str, Any]:
    return {name: _jsonable(getattr(instance, name)) for name in fields}


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Changed fields only, as ``{field: [before, after]}``."""
    changed: dict[str, list[Any]] = {}
    for name in sorted(set(before) | set(after)):
        old, new = _jsonable(before.get(name)), _jsonable(after.get(name))
        if old != new:
            changed[name] = [old, new]
    return changed


def created(values: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {
        name: [None, _jsonable(value)]
        for name, value in sorted(values.items())
        if value not in (None, "")
    }


def audit_record(
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: Any,
    person_id: int | None = None,
    changes: Mapping[str, Any] | None = None,
    note: str = "",
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor.user,
        actor_label=actor.label,
        channel=actor.channel,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        person_id=person_id,
        changes=dict(changes or {}),
        note=note[:300],
    )


def access_record(*, actor: Actor, person_id: int, action: str = "view", purpose: str = "") -> None:
    AccessLogEntry.objects.create(
        actor=actor.user,
        actor_label=actor.label,
        channel=actor.channel,
        person_id=person_id,
        action=action,
        purpose=(purpose or "")[:200],
    )
