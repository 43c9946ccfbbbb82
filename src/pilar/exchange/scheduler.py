"""The federation's periodic duties, run by a thread of ``pilar serve`` and ``pilar worker``.

The job queue runs what someone asked for; these run on a clock:

- integrate the transparency log's queued leaves and sign a checkpoint (every
  ``PILAR_LOG_INTEGRATE_SECONDS``), so a leaf is in a signed checkpoint within a second;
- deliver outgoing messages whose retry time has come (every 2 s);
- turn new audit events (deaths, posted contributions) into notifications (every 5 s);
- on an auditor node, check and cosign every member's checkpoint (every 30 s);
- on a member, take the hub's newer trust list when the current one reaches its next update.

Every duty is idempotent and safe to run in several processes at once (each takes its own
database lock or claims its rows), so two gunicorn workers each running this thread only cost
a few empty queries. A duty that fails is logged and tried again at its next tick; it never
stops the others.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger("pilar.exchange.scheduler")


@dataclass(frozen=True)
class Duty:
    name: str
    interval: float
    target: str  # "module:function", imported when first run
    roles: frozenset[str] = frozenset({"institute", "hub", "auditor"})


def duties() -> list[Duty]:
    return [
        Duty("log", settings.PILAR_LOG_INTEGRATE_SECONDS, "pilar.exchange.log:log_integrate_all"),
        Duty("deliver", 2.0, "pilar.exchange.tasks:deliver_due"),
        Duty(
            "events",
            5.0,
            "pilar.exchange.tasks_events:events_dispatch",
            frozenset({"institute"}),
        ),
        Duty("audit", 30.0, "pilar.exchange.auditor:audit_round", frozenset({"auditor"})),
        Duty(
            "trust",
            60.0,
            "pilar.exchange.services_trust:trust_list_refresh_due",
            # Members take the hub's newer list; the hub republishes before its list expires.
            frozenset({"institute", "hub", "auditor"}),
        ),
    ]


def _resolve(target: str) -> Callable[[], object]:
    module_name, _, function_name = target.partition(":")
    function: Callable[[], object] = getattr(importlib.import_module(module_name), function_name)
    return function


def run_once(*, only: set[str] | None = None) -> dict[str, str]:
    """Run every duty of this node's role once, now (``pilar worker --once``, tests). Returns
    each duty's outcome (``ok`` or the error) so a caller can show it."""
    outcomes: dict[str, str] = {}
    for duty in duties():
        if settings.PILAR_NODE_ROLE not in duty.roles or (only and duty.name not in only):
            continue
        try:
            _resolve(duty.target)()
            outcomes[duty.name] = "ok"
        except Exception as error:  # one duty's fault must not stop the others
            logger.exception("exchange duty %s failed", duty.name)
            outcomes[duty.name] = f"{type(error).__name__}: {error}"
    return outcomes


def run_forever(stop: threading.Event) -> None:
    mine = [duty for duty in duties() if settings.PILAR_NODE_ROLE in duty.roles]
    due = {duty.name: 0.0 for duty in mine}
    while not stop.is_set():
        now = time.monotonic()
        for duty in mine:
            if now < due[duty.name]:
                continue
            due[duty.name] = now + duty.interval
            close_old_connections()
            try:
                _resolve(duty.target)()
            except Exception:
                logger.exception("exchange duty %s failed", duty.name)
        next_due = min(due.values(), default=now + 1.0)
        stop.wait(max(0.05, next_due - time.monotonic()))


def start_thread() -> threading.Thread:
    """A daemon thread running the duties inside a web or worker process."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever, args=(stop,), name="pilar-exchange-duties", daemon=True
    )
    thread.start()
    return thread
