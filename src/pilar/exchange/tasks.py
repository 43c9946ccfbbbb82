"""The outbox's delivery job: retry outgoing messages whose next attempt is due.

``deliver_due`` runs every 2 s in the exchange's scheduler thread (``scheduler.py``) and as
the job ``exchange.deliver``. Each message gets one attempt per run (``messaging.deliver``):
same message id, re-signed with a fresh ``created``/``expires``; back-off 2 s doubling up to
10 min; after ``PILAR_EXCHANGE_MAX_ATTEMPTS`` the message is ``failed`` with a
``delivery-failed`` leaf. Running it in several processes at once is safe: an answer is stored
under a row lock, and a second attempt of an answered message does nothing.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from pilar.core.jobs import job
from pilar.exchange.models import Direction, ExchangeMessage, MessageStatus

logger = logging.getLogger("pilar.exchange.tasks")

DELIVER_JOB = "exchange.deliver"
# Messages tried per run: the rest wait for the next tick, so one run stays short.
BATCH = 200


def deliver_due(
    *, job_id: int | None = None, message_pk: int | None = None, limit: int = BATCH
) -> int:
    """Try the queued outgoing messages that are due (or only ``message_pk``). Returns how
    many were tried."""
    from pilar.exchange.messaging import deliver

    if message_pk is not None:
        pks = [message_pk]
    else:
        pks = list(
            ExchangeMessage.objects.filter(
                direction=Direction.OUT,
                status=MessageStatus.QUEUED,
                next_attempt_at__lte=timezone.now(),
            )
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
    for pk in pks:
        try:
            deliver(pk, due_only=message_pk is None)
        except Exception:  # one message's fault (an applier's bug) must not stop the others
            logger.exception("delivering message %s failed", pk)
    return len(pks)


@job(DELIVER_JOB)
def deliver_job(*, job_id: int | None = None, message_pk: int | None = None) -> None:
    """The job form of ``deliver_due`` (a job returns nothing)."""
    deliver_due(message_pk=message_pk)


# The queue imports each app's ``tasks`` module only: the exchange's other jobs (log
# integration and auditor rounds, event dispatch, enrolment in the hub's index) register here.
from pilar.exchange import tasks_client, tasks_events, tasks_log  # noqa: E402, F401
