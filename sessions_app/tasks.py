"""Celery tasks: interfaces that call the engine. Callers enqueue on commit."""

from __future__ import annotations

import logging
import random

from celery import group, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction

from sessions_app.engine import flow, runner
from sessions_app.providers.base import ProviderError

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
    except ProviderError as exc:
        if exc.transient and self.request.retries < settings.PROVIDER_MAX_RETRIES:
            attempt = self.request.retries + 1
            runner.note_retry(contribution_id, f"{exc.message} Retrying ({attempt} of {settings.PROVIDER_MAX_RETRIES}).")
            runner.release(contribution_id)
            raise self.retry(countdown=_backoff(self.request.retries, exc.retry_after), exc=exc) from exc
        suffix = " (gave up after retries)" if exc.transient else ""
        runner.fail(contribution_id, exc.message + suffix)
        return "failed"
    except SoftTimeLimitExceeded:
        runner.fail(contribution_id, f"The specialist did not answer within {settings.CELERY_TASK_SOFT_TIME_LIMIT} seconds.")
        return "failed"
    except Exception as exc:  # a bug must not leave the round waiting forever
        logger.exception("contribution %s crashed", contribution_id)
        runner.fail(contribution_id, f"The call failed unexpectedly: {type(exc).__name__}.")
        return "failed"


@shared_task(acks_late=True, reject_on_worker_lost=True)
def synthesize_round(round_id: int) -> None:
    flow.round_synthesize(round_id=round_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def expire_validation_point(point_id: int) -> None:
    from sessions_app.validation import validation_expire

    validation_expire(point_id=point_id)


def enqueue_expiry(point_id: int, deadline) -> None:
    transaction.on_commit(lambda: expire_validation_point.apply_async(args=[point_id], eta=deadline))


def enqueue_contributions(ids: list[int]) -> None:
    if ids:
        transaction.on_commit(lambda: group(run_contribution.si(i) for i in ids).apply_async())


def enqueue_synthesis(round_id: int) -> None:
    transaction.on_commit(lambda: synthesize_round.delay(round_id))
