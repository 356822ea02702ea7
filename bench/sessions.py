"""Round makespan: one analysis round of K = 8 specialists on the ``openai`` adapter, on a real
Celery worker, against a local server that answers each call after 1.0 s.

    python -m bench sessions                 # or: python -m bench.sessions
    python -m bench sessions -- --runs 5 --delay 1.0

What is measured, per run: a fresh design session is started (``services.session_start``) on a
seeded project whose team template has 8 built-in specialists and whose provider is ``openai``.
The clock starts when the transaction that creates the analysis round commits (an on-commit
callback registered before any of the engine's own) and stops when a 2 ms poll of the database (a
plain cursor's SELECT of one column, not the ORM's) sees the round's status ``done`` (all
contributions finished and the synthesis written: in one transaction with the last result, so the
round goes from ``running`` to ``done`` in one commit).

* makespan      = commit → round ``done``
* slowest call  = max(finish − start) over the round's 8 calls, as recorded by the server
* ratio         = makespan / slowest call; the goal is ≤ 1.05 (median of ``--runs``)

Between the parallel runs, the same round with a team of one specialist on the same worker
(``--single-runs``): its ratio is the round's fixed cost (the dispatch, the claim, recording the
result and the synthesis, each a few database round trips), which no parallelism removes; the
difference between the two is what running K calls side by side adds.

Beside it, the same round on a worker of concurrency 1 (``--one-slot-runs``): the round's calls
reach a worker in one message and run side by side on its call threads (``MAESTRO_CALL_THREADS``),
not on its Celery slots, so this ratio is about the parallel one: a worker busy with one task
still runs a whole round at once. Only the analysis round is measured: the session is
cancelled as soon as it is done (calls of later rounds are answered at once so they drain fast).

Everything runs against throwaway infrastructure: a test database created under a bench-specific
name (PostgreSQL when DATABASE_URL is set, else a SQLite file in var/) and destroyed afterwards,
an embedded Redis when REDIS_URL is not set (``config.settings.test`` starts it), and a Celery
queue of its own. A developer's data is never touched.

The helpers :func:`setup_django`, :func:`throwaway_database` and :func:`database_url` are shared
with ``bench/broadcast.py``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.db import database_url, round_status, session_quiet_state, throwaway_database  # noqa: F401 - bench.broadcast imports both from here
from tests.support.processes import Worker, wait_for
from tests.support.vendors import LLMServer

GOAL_RATIO = 1.05
# How often the round's status is read: what the makespan can be late by (a 10 ms poll, with its query,
# read the end ~5 ms late on average).
POLL_S = 0.002
ANALYSIS_MARKER = "Analyze the existing cluster"  # the analysis round's mission, in every brief
TEAM_SLUGS = [
    "system-architect",
    "integration-architect",
    "pattern-archaeologist",
    "database-engineer",
    "event-architect",
    "security-guardian",
    "performance-engineer",
    "testing-strategist",
]
ROOT = Path(__file__).resolve().parents[1]
CELERY_APP = "config"  # the worker's -A; a profiling harness may point it at a wrapper
REQUIREMENT = "Add a subscriptions service that creates recurring orders through orders"


# --- shared helpers ------------------------------------------------------------------------------


def setup_django() -> None:
    """The test profile: an embedded Redis when REDIS_URL is unset, PostgreSQL or SQLite by
    DATABASE_URL. The Celery queue gets a bench-specific name unless settings are already loaded
    (then the loaded queue is used; see :func:`celery_queue`)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ.setdefault("MAESTRO_TEST_QUEUE", f"maestro-bench-{os.getpid()}")
    import django

    django.setup()


def celery_queue() -> str:
    from django.conf import settings

    return settings.CELERY_TASK_DEFAULT_QUEUE


def child_env(db_url: str, **extra: str) -> dict[str, str]:
    from django.conf import settings

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": db_url,
        "REDIS_URL": os.environ.get("REDIS_URL") or settings.REDIS_URL,
        "MAESTRO_TEST_QUEUE": celery_queue(),
        **extra,
    }


def log_path(name: str) -> Path:
    path = ROOT / "var" / f"bench-{name}-{os.getpid()}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# --- the worker ----------------------------------------------------------------------------------


@contextmanager
def running_worker(name: str, concurrency: int, env: dict[str, str]) -> Iterator[Worker]:
    """A started, ready worker (threads pool) on this bench's queue and database; stopped
    afterwards. Its log is kept (and named) only on failure."""
    worker = Worker(
        f"{name}-{os.getpid()}", env, concurrency, queue=celery_queue(), app=CELERY_APP, loglevel="WARNING",
        host="maestro-bench", log=log_path(f"worker-{name}"),
    )
    try:
        yield worker.wait_ready(timeout=60.0)
    except BaseException:
        worker.stop(keep_log=True)
        print(f"worker log: {worker.log_path}", file=sys.stderr)
        raise
    worker.stop(keep_log=False)


# --- seeding and measuring -----------------------------------------------------------------------


def seed(k: int):
    """The demo project (inventory, PRD, built-in specialists) with provider ``openai`` and a
    team template of ``k`` built-in specialists (no USER slot)."""
    from django.core.management import call_command

    from teams_app.models import Project

    call_command("seed_demo", verbosity=0, stdout=io.StringIO())  # specialists, team templates, demo project
    project = Project.objects.get(slug="demo")
    project.provider = "openai"
    project.save(update_fields=["provider"])
    return project, team_template(k), project.prds.get()


def team_template(k: int):
    """A team template of ``k`` built-in specialists (no USER slot), the first ``k`` of ``TEAM_SLUGS``."""
    from teams_app.models import Specialist, TeamSlot, TeamTemplate

    specialists = list(Specialist.objects.filter(slug__in=TEAM_SLUGS))
    specialists.sort(key=lambda s: TEAM_SLUGS.index(s.slug))
    if len(specialists) < k:  # a different built-in set: fill up with any others
        extra = Specialist.objects.exclude(pk__in=[s.pk for s in specialists]).order_by("slug")
        specialists += list(extra[: k - len(specialists)])
    specialists = specialists[:k]
    if len(specialists) < k:
        raise RuntimeError(f"only {len(specialists)} specialists are available; the bench needs {k}")
    template = TeamTemplate.objects.create(
        slug=f"bench-{k}", name=f"Bench team of {k}", mission="Measure one analysis round"
    )
    for order, s in enumerate(specialists, start=1):
        TeamSlot.objects.create(
            template=template, order=order, specialist=s, role=(s.description.splitlines() or [s.name])[0][:200]
        )
    return template


def measure_round(project, template, prd, server, *, timeout: float = 120.0) -> dict[str, Any]:
    """Start a session, time its analysis round, cancel the session and wait until it is quiet."""
    from django.db import transaction

    from sessions_app import services
    from sessions_app.models import Round

    first_call = len(server.calls)
    marks: dict[str, float] = {}
    with transaction.atomic():
        # Registered before the engine's callbacks, so it runs first: the moment of commit.
        transaction.on_commit(lambda: marks.setdefault("commit", time.monotonic()))
        session = services.session_start(project=project, template=template, requirement=REQUIREMENT, user=None, prd=prd)
    returned = time.monotonic()
    t0 = marks["commit"]
    rnd = Round.objects.get(session=session, kind=Round.Kind.ANALYSIS)
    seen: dict[str, float] = {}
    deadline = t0 + timeout
    while True:
        status = round_status(rnd.pk)  # a plain cursor's read: the ORM would take the vendor server's CPU
        now = time.monotonic()
        seen.setdefault(status, now)
        if status == Round.Status.DONE:
            break
        if now > deadline:
            raise RuntimeError(f"the analysis round is still {status!r} after {timeout:.0f} s")
        time.sleep(POLL_S)
    makespan = seen[Round.Status.DONE] - t0
    calls = [c for c in server.calls[first_call:] if ANALYSIS_MARKER in c.user]
    k = rnd.contributions.filter(author="specialist").count()
    if len(calls) != k or any(not c.finished for c in calls):
        raise RuntimeError(f"expected {k} finished analysis calls, the server saw {len(calls)}")
    slowest = max(c.finished - c.started for c in calls)
    last_finish = max(c.finished for c in calls)
    settled = seen.get(Round.Status.SYNTHESIZING, seen[Round.Status.DONE])
    failed = rnd.contributions.filter(author="specialist").exclude(status="done").count()
    session_settle(session.pk)
    return {
        "session_id": session.pk,
        "calls": len(calls),
        "failed_contributions": failed,
        "makespan_s": makespan,
        "slowest_call_s": slowest,
        "ratio": makespan / slowest,
        "ratio_to_settled": (settled - t0) / slowest,  # the same without the synthesis step
        # Where the time beyond the slowest call goes (all from the commit):
        "first_call_start_s": min(c.started for c in calls) - t0,  # dispatch: on-commit work, broker, claim
        "last_call_start_s": max(c.started for c in calls) - t0,
        "last_call_finish_s": last_finish - t0,
        "all_settled_s": settled - t0,  # round left 'running' (finish + round_maybe_complete)
        "synthesis_s": seen[Round.Status.DONE] - settled,
        "session_start_after_commit_s": returned - t0,  # on-commit callbacks in session_start
    }


def warm_up(project, prd, *, timeout: float = 90.0) -> float:
    """One single-specialist task session through a freshly started worker, not measured: a
    worker's first task pays one-off costs (importing the provider SDK, opening connections).
    Returns how long it took from commit to the session's completion."""
    from sessions_app import services
    from sessions_app.models import DesignSession
    from teams_app.models import Specialist

    specialist = Specialist.objects.get(slug=TEAM_SLUGS[0])
    started = time.monotonic()
    session = services.task_session_start(project=project, specialist=specialist, summary="Warm-up call", prd=prd)
    while time.monotonic() - started < timeout:
        status = DesignSession.objects.filter(pk=session.pk).values_list("status", flat=True).get()
        if status in (DesignSession.Status.COMPLETED, DesignSession.Status.AWAITING_USER):
            return time.monotonic() - started
        time.sleep(0.05)
    raise RuntimeError(f"the warm-up session is still {status!r} after {timeout:.0f} s")


def session_settle(session_id: int, *, timeout: float = 60.0) -> None:
    """Cancel the session (if still active) and wait until nothing runs or waits for it and its
    log has been still for 0.3 s (read with plain queries, see :mod:`bench.db`)."""
    from sessions_app import services
    from sessions_app.models import DesignSession
    from teams_app.errors import ApplicationError

    try:
        services.session_cancel(session=DesignSession.objects.get(pk=session_id))
    except ApplicationError:
        pass  # already over
    state = {"seq": None, "since": time.monotonic()}

    def quiet() -> bool:
        seq, busy = session_quiet_state(session_id) or (None, False)
        if seq != state["seq"]:
            state.update(seq=seq, since=time.monotonic())
        return not busy and time.monotonic() - state["since"] > 0.3

    wait_for(quiet, timeout, interval=0.05, what="the cancelled session to be quiet")


# --- the benchmark -------------------------------------------------------------------------------


def run(args: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench sessions --")
    parser.add_argument("--runs", type=int, default=3, help="parallel runs (the median is reported)")
    parser.add_argument("--one-slot-runs", type=int, default=1, help="runs on a worker of concurrency 1")
    parser.add_argument(
        "--single-runs", type=int, default=3,
        help="rounds of one specialist, between the parallel runs: the round's fixed cost, without parallel calls",
    )
    parser.add_argument("--k", type=int, default=8, help="specialists in the team")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds the server waits before answering")
    parser.add_argument("--concurrency", type=int, default=8, help="worker threads for the parallel runs")
    args = list(args or [])
    options = parser.parse_args(args[1:] if args[:1] == ["--"] else args)
    runs, k = max(1, options.runs), options.k

    delay = options.delay
    server = LLMServer(delay=lambda index, body: delay if ANALYSIS_MARKER in json.dumps(body) else 0.0).start()
    setup_django()
    from django.db import connection

    result: dict[str, Any] = {
        "bench": "sessions",
        "k": k,
        "delay_s": delay,
        "database": connection.vendor,
        "redis": redis_label(),
        "queue": celery_queue(),
        "worker_concurrency": max(k, options.concurrency),
        "goal_ratio": GOAL_RATIO,
        "load_average_1m_before": round(os.getloadavg()[0], 2),
    }
    try:
        with throwaway_database("sessions") as db_url:
            project, template, prd = seed(k)
            alone = team_template(1) if k > 1 and options.single_runs > 0 else None
            env = child_env(db_url, OPENAI_BASE_URL=server.base_url, MAESTRO_PROVIDER="openai")
            parallel: list[dict[str, Any]] = []
            single: list[dict[str, Any]] = []
            one_slot: list[dict[str, Any]] = []
            with running_worker("parallel", max(k, options.concurrency), env):
                result["warm_up_s"] = {"parallel": round(warm_up(project, prd), 3)}
                for i in range(max(runs, options.single_runs if alone else 0)):
                    # Interleaved, so both see the machine in the same state.
                    if i < runs:
                        parallel.append(measure_round(project, template, prd, server))
                    if alone is not None and i < options.single_runs:
                        single.append(measure_round(project, alone, prd, server))
            if options.one_slot_runs > 0:
                with running_worker("one-slot", 1, env):
                    result["warm_up_s"]["one slot"] = round(warm_up(project, prd), 3)
                    for _ in range(options.one_slot_runs):
                        one_slot.append(measure_round(project, template, prd, server))
    finally:
        server.stop()

    result["parallel_runs"] = [_rounded(r) for r in parallel]
    result["one_slot_runs"] = [_rounded(r) for r in one_slot]
    result["single_runs"] = [_rounded(r) for r in single]
    result["parallel_ratio_median"] = round(statistics.median(r["ratio"] for r in parallel), 3)
    result["parallel_ratio_to_settled_median"] = round(statistics.median(r["ratio_to_settled"] for r in parallel), 3)
    result["parallel_makespan_median_s"] = round(statistics.median(r["makespan_s"] for r in parallel), 3)
    if single:
        result["single_ratio_median"] = round(statistics.median(r["ratio"] for r in single), 3)
        result["parallel_cost"] = round(result["parallel_ratio_median"] - result["single_ratio_median"], 3)
    if one_slot:
        result["one_slot_ratio"] = round(statistics.median(r["ratio"] for r in one_slot), 3)
    result["within_goal"] = result["parallel_ratio_median"] <= GOAL_RATIO
    result["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    return result


def redis_label() -> str:
    """'embedded' when the test profile started its own Redis, else the REDIS_URL in use."""
    test_settings = sys.modules.get("config.settings.test")
    if test_settings is not None and getattr(test_settings, "_EMBEDDED", None) is not None:
        return "embedded"
    return os.environ.get("REDIS_URL", "")


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in row.items()}


def report(result: dict[str, Any]) -> None:
    print(
        f"Round makespan: K = {result['k']} specialists, openai adapter, local server answering each call after "
        f"{result['delay_s']:.1f} s; database {result['database']}, Redis {result['redis']}"
    )
    head = f"  {'run':<14} {'makespan':>9} {'slowest':>9} {'ratio':>7}   {'1st start':>9} {'last start':>10} {'last fin.':>9} {'settled':>8} {'synth.':>7}"
    print(head)
    rows = [(f"parallel {i + 1}", r) for i, r in enumerate(result["parallel_runs"])]
    rows += [(f"one alone {i + 1}", r) for i, r in enumerate(result["single_runs"])]
    rows += [(f"one slot {i + 1}", r) for i, r in enumerate(result["one_slot_runs"])]
    for label, r in rows:
        print(
            f"  {label:<14} {r['makespan_s']:>8.3f}s {r['slowest_call_s']:>8.3f}s {r['ratio']:>7.3f}   "
            f"{r['first_call_start_s'] * 1000:>7.0f}ms {r['last_call_start_s'] * 1000:>8.0f}ms "
            f"{r['last_call_finish_s']:>8.3f}s {r['all_settled_s']:>7.3f}s {r['synthesis_s'] * 1000:>5.0f}ms"
        )
    print(
        "  (times after the commit that created the round; settled = round left 'running'; synth. = settled → done,\n"
        "   0 when the synthesis is written in the transaction of the round's last result, as it is unless it failed)"
    )
    warm = result.get("warm_up_s", {})
    print(
        "  not measured: one warm-up call per fresh worker ("
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in warm.items())
        + f"); load average {result['load_average_1m_before']:.1f} before, {result['load_average_1m_after']:.1f} after"
    )
    verdict = "within" if result["within_goal"] else "OVER"
    print(
        f"  parallel   ratio makespan/slowest call: {result['parallel_ratio_median']:.3f} "
        f"(median of {len(result['parallel_runs'])}, worker concurrency {result['worker_concurrency']}) "
        f"→ {verdict} the goal ≤ {result['goal_ratio']:.2f}"
    )
    print(
        f"  parallel   ratio without the synthesis (commit → all contributions settled): "
        f"{result['parallel_ratio_to_settled_median']:.3f}"
    )
    if "single_ratio_median" in result:
        print(
            f"  one alone  ratio makespan/call: {result['single_ratio_median']:.3f} (median of {len(result['single_runs'])}, "
            f"a round of 1 specialist on the same worker: the round's fixed cost); what {result['k']} parallel calls add: "
            f"{result['parallel_cost']:+.3f}"
        )
    if "one_slot_ratio" in result:
        print(f"  one slot   ratio makespan/slowest call: {result['one_slot_ratio']:.3f} (worker concurrency 1, the round's calls on its call threads)")
    print(json.dumps(result, sort_keys=True))


def main(args: list[str] | None = None) -> int:
    result = run(args)
    report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
