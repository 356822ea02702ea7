"""Several specialist calls at once, in one process: the contributions a round opened together.

The calls of a round are handed over in one message, so they start together instead of one
message, one claim and one start event after another. Here they are claimed together (their
started events came with the round); their calls run side by side on threads of
this process, and their results recorded as they arrive: the results that arrived together in
one transaction per session (:func:`runner.results_recording`), so a round's calls do not queue
one by one on the session row's lock. That transaction is opened by the first result, while
the calls started with it are still ending: the round's last result then finds the session
locked and the round read.

Leases, the try fence and the sweeper work as for one call (:mod:`sessions_app.engine.runner`):
the heartbeat renews every claim's lease, and when the worker dies mid-batch the leases expire
and each contribution is delivered again on its own.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, connection

from sessions_app.engine import runner
from sessions_app.providers.base import ProviderResult

logger = logging.getLogger(__name__)

OnBusy = Callable[[int, float], None]
"""``on_busy(contribution_id, retry_in)``: another delivery holds the contribution's lease."""
OnError = Callable[[int, BaseException], None]
"""``on_error(contribution_id, exc)``: the call failed; ``exc.tries`` is the try it ran as."""

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _threads() -> ThreadPoolExecutor:
    """The process's call threads (created on first use, so a forked worker makes its own)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=settings.MAESTRO_CALL_THREADS, thread_name_prefix="specialist-call")
        return _pool


@dataclass
class _Outcome:
    claim: runner.Claim
    result: ProviderResult | None = None
    latency_ms: int = 0
    error: BaseException | None = None


def claim_many(ids: list[int], on_busy: OnBusy) -> list[runner.Claim]:
    """Claim the contributions ``ids``, each with its started event in the log (queued ones
    have it from their round; a pending one's is appended with its claim, in one transaction);
    those another delivery holds go to ``on_busy``, those with nothing left to do are skipped.
    The calls then start with nothing else of this batch competing with them for the process."""
    claims, busy = runner.claims_take(ids, record_start=True)
    for pk, retry_in in busy:
        on_busy(pk, retry_in)
    return claims


def execute_many(ids: list[int], *, on_busy: OnBusy, on_error: OnError) -> int:
    """Run the calls of the contributions ``ids`` side by side and record each result; returns
    how many calls ran. Failures go to ``on_error`` (which retries or fails them), one by one,
    as they arrive. Precondition: not inside a transaction (the calls' threads must see the claims)."""
    claims = claim_many(ids, on_busy)
    if not claims:
        return 0
    outcomes: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
    beat = runner.Heartbeat(*claims, started=True)
    for claim_ in claims:
        try:
            request, provider_name = runner.build_request(claim_.contribution)
        except Exception as exc:
            outcomes.put(_Outcome(claim_, error=_tagged(exc, claim_)))
        else:
            _threads().submit(_call, claim_, request, provider_name, beat.started, outcomes)
    rounds: dict[int, set[int]] = {}  # session -> the rounds of its claims
    for claim_ in claims:
        rounds.setdefault(claim_.session_id, set()).add(claim_.round_id)
    with beat:
        running = len(claims)
        while running:
            running -= _record_next(outcomes, running, rounds, beat.started, on_error)
    return len(claims)


def _record_next(
    outcomes: queue.SimpleQueue, running: int, rounds: dict[int, set[int]], started: threading.Event, on_error: OnError
) -> int:
    """Wait for the next outcome, record it with those that arrive close behind it
    (:func:`_arrivals`), and return how many were recorded. When a result comes first and
    more calls are running, its session's transaction is opened at once
    (:func:`runner.results_recording`: the session row locked, its rounds' rows read) while
    the others are awaited, so that work is done by the time the last of them arrives."""
    first = outcomes.get()
    started.wait(5)  # a result is never recorded before its start
    if first.error is not None or running == 1:
        arrived = _arrivals(outcomes, running, first)
        _record(arrived, on_error)
        return len(arrived)
    session_id = first.claim.session_id
    arrived, mine = [first], []
    try:
        with runner.results_recording(
            session_id, rounds[session_id], known=first.claim.contribution.session, expected=running,
        ) as record:
            arrived = _arrivals(outcomes, running, first)
            mine = [o for o in arrived if o.error is None and o.claim.session_id == session_id]
            if record is not None:
                record(_finished(mine))
    except Exception:  # recorded again below, together, then one by one
        logger.exception("recording contributions %s failed", [o.claim.contribution_id for o in arrived])
        close_old_connections()
        mine = []
    _record([o for o in arrived if not any(o is m for m in mine)], on_error)
    return len(arrived)


def _arrivals(outcomes: queue.SimpleQueue, running: int, first: _Outcome | None = None) -> list[_Outcome]:
    """The next outcomes to record: the first to arrive (``first``, when already taken), and
    those that follow it within ``MAESTRO_RESULT_GATHER_MS`` while calls are still running.
    Calls started together end close together, and one transaction for several results costs
    little more than for one; the last result never waits (nothing runs after it)."""
    arrived = [outcomes.get() if first is None else first]
    until = time.monotonic() + settings.MAESTRO_RESULT_GATHER_MS / 1000
    while len(arrived) < running:
        try:
            arrived.append(outcomes.get(timeout=max(0.0, until - time.monotonic())))
        except queue.Empty:
            break
    return arrived


def _call(claim_: runner.Claim, request, provider_name: str, started: threading.Event, outcomes: queue.SimpleQueue) -> None:
    try:
        result, latency_ms = runner.call(claim_, request, provider_name, started)
        outcomes.put(_Outcome(claim_, result=result, latency_ms=latency_ms))
    except BaseException as exc:  # handed to the batch's thread, which settles it
        outcomes.put(_Outcome(claim_, error=_tagged(exc, claim_)))
    finally:
        connection.close()  # a call thread holds no connection between calls


def _tagged(exc: BaseException, claim_: runner.Claim) -> BaseException:
    exc.tries = claim_.tries  # lets fail/release touch only this try
    return exc


def _record(arrived: list[_Outcome], on_error: OnError) -> None:
    """Record what arrived: the results together, then each failure."""
    results = _finished([o for o in arrived if o.error is None])
    if results:
        try:
            runner.finish_many(results)
        except Exception:  # record them one by one: one bad result must not lose the others
            logger.exception("recording contributions %s together failed", [r.contribution_id for r in results])
            close_old_connections()
            for r in results:
                try:
                    runner.finish_many([r])
                except Exception as exc:  # a bug or a lost database must not leave the round waiting
                    exc.tries = r.tries
                    _settle(on_error, r.contribution_id, exc)
    for o in arrived:
        if o.error is not None:
            _settle(on_error, o.claim.contribution_id, o.error)


def _finished(arrived: list[_Outcome]) -> list[runner.Finished]:
    return [
        runner.Finished(
            o.claim.contribution_id, o.result, o.latency_ms, o.claim.tries, o.claim.session_id, o.claim.round_id,
            session=o.claim.contribution.session,
        )
        for o in arrived
    ]


def _settle(on_error: OnError, contribution_id: int, exc: BaseException) -> None:
    """Hand a failure to ``on_error``; if that fails too (the database or the broker is down),
    the batch goes on with the other calls and the sweeper finds this one once its lease expires."""
    try:
        on_error(contribution_id, exc)
    except Exception:
        logger.exception("contribution %s could not be settled; the sweeper will run it again", contribution_id)

