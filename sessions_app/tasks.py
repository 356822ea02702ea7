"""Celery tasks: interfaces that call the engine. Callers enqueue on commit."""

from __future__ import annotations

import logging
import random
import time
from datetime import datetime, timedelta

from celery import group, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sessions_app import selectors, sweeper
from sessions_app.engine import batch, runner, synthesis
from sessions_app.providers.base import ProviderError
from sessions_app.validation import validation_expire

logger = logging.getLogger(__name__)


def _backoff(retries: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(max(retry_after, 0.5), 120.0)
    return min(2 ** retries + random.uniform(0, 1), 60.0)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # bounded by PROVIDER_MAX_RETRIES below, per error kind
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def run_contribution(self, contribution_id: int) -> str:
    try:
        runner.execute(contribution_id)
        return "done"
    except runner.Skip:
        return "skipped"
    except runner.Busy as busy:
        # Another delivery holds a live lease. Come back when it ends: if that worker died,
        # this delivery takes over; if it finished, this one finds nothing to do. (Run inline,
        # without a broker, the holder is this very process: nothing to come back to.)
        if self.request.is_eager:
            return "busy"
        _come_back(contribution_id, busy.retry_in)
        return "deferred"
    except Exception as exc:
        error = exc

        def retry(countdown: float) -> None:
            raise self.retry(countdown=countdown, exc=error) from error

        return _call_failed(contribution_id, exc, retries=self.request.retries, retry=retry)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def run_contributions(self, contribution_ids: list[int]) -> str:
    """The calls a round opened together, side by side in this worker (see
    :mod:`sessions_app.engine.batch`). A call to retry, or one another delivery holds, goes on
    as a :func:`run_contribution` of its own."""
    if self.request.is_eager:
        for pk in contribution_ids:
            run_contribution.apply(args=[pk])
        return "inline"

    def retry_alone(pk: int):
        return lambda countdown: run_contribution.apply_async(args=[pk], countdown=countdown, retries=1)

    ran = batch.execute_many(
        contribution_ids,
        on_busy=_come_back,
        on_error=lambda pk, exc: _call_failed(pk, exc, retries=0, retry=retry_alone(pk)),
    )
    return f"ran {ran}"


def _come_back(contribution_id: int, retry_in: float) -> None:
    run_contribution.apply_async(args=[contribution_id], countdown=retry_in)


def _call_failed(contribution_id: int, exc: BaseException, *, retries: int, retry) -> str:
    """Settle a failed call: retry a transient provider error (``retry(countdown)``) while
    retries are left, else record the failure, so the round never waits forever."""
    tries = getattr(exc, "tries", None)
    if isinstance(exc, ProviderError):
        if exc.transient and retries < settings.PROVIDER_MAX_RETRIES:
            countdown = _backoff(retries, exc.retry_after)
            runner.note_retry(contribution_id, f"{exc.message} Retrying ({retries + 1} of {settings.PROVIDER_MAX_RETRIES}).")
            runner.release(contribution_id, hold_for=countdown, tries=tries)
            retry(countdown)
            return "retrying"
        suffix = " (gave up after retries)" if exc.transient else ""
        runner.fail(contribution_id, exc.message + suffix, tries=tries)
        return "failed"
    if isinstance(exc, SoftTimeLimitExceeded):
        runner.fail(
            contribution_id, f"The specialist did not answer within {settings.CELERY_TASK_SOFT_TIME_LIMIT} seconds.", tries=tries
        )
        return "failed"
    logger.error("contribution %s crashed", contribution_id, exc_info=exc)  # a bug must not leave the round waiting
    runner.fail(contribution_id, f"The call failed unexpectedly: {type(exc).__name__}.", tries=tries)
    return "failed"


@shared_task(acks_late=True, reject_on_worker_lost=True)
def synthesize_round(round_id: int) -> None:
    synthesis.round_synthesize(round_id=round_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def expire_validation_point(point_id: int) -> None:
    validation_expire(point_id=point_id)


class CeleryDispatcher:
    """The engine's :class:`~sessions_app.engine.dispatch.Dispatcher`: Celery messages, sent on commit."""

    def contributions(self, ids: list[int]) -> None:
        if ids:
            transaction.on_commit(lambda: _send_contributions(ids, together=True))

    def validation_expiry(self, point_id: int, deadline: datetime) -> None:
        # An ETA message waits unacknowledged in a worker; past the visibility timeout the broker
        # would hand out copies of it. Far deadlines are left to the sweeper instead.
        if deadline - timezone.now() < timedelta(seconds=settings.CELERY_VISIBILITY_TIMEOUT / 2):
            transaction.on_commit(lambda: _publish(lambda: expire_validation_point.apply_async(args=[point_id], eta=deadline)))


def _publish(send) -> bool:
    """Send a message; when the broker is down, log it and let the sweeper send it later
    (the work is in the database either way). Never raises into the committing caller."""
    try:
        send()
        return True
    except Exception:
        logger.warning("could not reach the broker; the sweeper will enqueue this work again", exc_info=True)
        return False


def _send_contributions(ids: list[int], *, together: bool = False) -> None:
    """One message per contribution, or with ``together`` one message for them all (a round's
    calls, run side by side by one worker)."""
    if together and len(ids) > 1 and not run_contributions.app.conf.task_always_eager:
        sent = _publish(lambda: run_contributions.delay(list(ids)))
    else:
        sent = _publish(lambda: group(run_contribution.si(i) for i in ids).apply_async())
    if not sent:
        runner.contributions_due_now(ids)


# -- the sweeper (see sessions_app/sweeper.py for why it is a timer in the worker) ------------

_synthesis_sent: dict[int, float] = {}


def sweep() -> dict[str, int]:
    """One pass: re-enqueue contributions whose lease expired or whose message was lost,
    syntheses that never ran, and expire validation points past their deadline."""
    due = runner.contributions_due()
    if due:
        logger.info("sweeper: enqueueing %d contribution(s) again: %s", len(due), due)
        _send_contributions(due)
    now = time.monotonic()
    stalled = [
        pk for pk in runner.rounds_stalled()
        if now - _synthesis_sent.get(pk, 0.0) >= settings.MAESTRO_SYNTHESIS_STALL_SECONDS
    ]
    for pk in stalled:
        logger.info("sweeper: round %s is overdue for its synthesis or the step after it; enqueueing it again", pk)
        if _publish(lambda pk=pk: synthesize_round.delay(pk)):
            _synthesis_sent[pk] = now
    for pk in [pk for pk, sent in _synthesis_sent.items() if now - sent > 3600]:
        del _synthesis_sent[pk]
    expired = sum(validation_expire(point_id=pk) for pk in selectors.validation_points_overdue())
    return {"contributions": len(due), "syntheses": len(stalled), "expired": expired}


@worker_ready.connect
def _start_sweeper(**_kwargs) -> None:
    if settings.MAESTRO_SWEEP_INTERVAL > 0:
        sweeper.start(sweep, settings.MAESTRO_SWEEP_INTERVAL)


@worker_shutdown.connect
def _stop_sweeper(**_kwargs) -> None:
    sweeper.stop()
