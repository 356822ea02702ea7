"""A small cluster of real processes for fault tests and the fault soak: a Redis of its own
on a free port, Celery workers, daphne, a local model server that streams every answer for a
few seconds, and session pages connected over WebSockets. Faults are injected by killing and
restarting those processes; the figures come from the database and from what the pages got.

The caller provides the database (pytest's test database, or the soak's throwaway one) with
the demo project seeded and set to the ``openai`` provider."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Count
from django.test import Client

from sessions_app.models import Contribution, DesignSession, SessionEvent
from teams_app.models import Membership, Project
from tests.support.pages import Page
from tests.support.processes import ROOT, Daphne, RedisServer, Worker, subprocess_env, wait_for
from tests.support.vendors import LLMServer

# Short leases and sweeps so a fault resolves in seconds, not minutes (the defaults are in
# config/settings/realtime.py and the README).
FAST = {
    "SPECIALIST_LEASE_SECONDS": "4",
    "SPECIALIST_HEARTBEAT_SECONDS": "1",
    "MAESTRO_SWEEP_INTERVAL": "1",
    "MAESTRO_SYNTHESIS_STALL_SECONDS": "2",
    "LIVE_HEARTBEAT_SECONDS": "1",
    "CELERY_BROKER_CONNECTION_TIMEOUT": "2",
    "LOG_LEVEL": "WARNING",
}
REQUIREMENT = "Add a subscriptions service that creates recurring orders through orders"
SETTLED = (DesignSession.Status.AWAITING_USER, DesignSession.Status.COMPLETED, DesignSession.Status.PAUSED)
FAULTS = ("worker_kill", "redis_restart", "daphne_restart")


@dataclass
class Figures:
    session_id: int
    last_seq: int
    lost: int
    duplicates: int
    stall: float
    fault_seconds: float = 0.0  # how long injecting the fault took (e.g. until daphne listened again)
    problems: list[str] = field(default_factory=list)


def demo_project_on_openai() -> Project:
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
    project = Project.objects.get(slug="demo")
    project.provider = "openai"
    project.save(update_fields=["provider"])
    return project


class Cluster:
    def __init__(self, *, word_delay: float = 0.08, workers: int = 1, settings: dict[str, str] | None = None) -> None:
        self.redis = RedisServer()
        self.llm = LLMServer(word_delay=word_delay).start()
        self.env = {"REDIS_URL": self.redis.url, "OPENAI_BASE_URL": self.llm.base_url, **FAST, **(settings or {})}
        self.workers: list[Worker] = []
        self.pages: list[Page] = []
        self.daphne = Daphne(self.env)
        for _ in range(workers):
            self.add_worker()
        self.daphne.wait_ready()
        self._cookie: str | None = None

    def add_worker(self) -> Worker:
        worker = Worker(f"fault{len(self.workers)}", self.env)
        self.workers.append(worker)
        return worker.wait_ready(timeout=60)

    def cookie(self) -> str:
        if self._cookie is None:
            user = get_user_model().objects.create_user(username="fault-viewer", password="pw-Secret-1")
            Membership.objects.create(user=user, project=Project.objects.get(slug="demo"), role=Membership.Role.VIEWER)
            client = Client()
            client.force_login(user)
            self._cookie = f"sessionid={client.cookies['sessionid'].value}"
        return self._cookie

    def start_session(self) -> int:
        """As an operator would: ``manage.py start_session`` in a process of its own."""
        out = subprocess.run(
            [sys.executable, "manage.py", "start_session", "--project", "demo", "--team", "new-service-integration",
             "--requirement", REQUIREMENT, "--prd", "PRD-101", "--json"],
            cwd=ROOT, env=subprocess_env(**self.env), capture_output=True, text=True, timeout=120, check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])["session"]

    def open_pages(self, session_id: int, count: int) -> list[Page]:
        pages = [Page(self.daphne.ws_url, session_id, self.cookie(), self.daphne.url) for _ in range(count)]
        for page in pages:
            page.start()
        self.pages.extend(pages)
        wait_for(lambda: all(p.opens for p in pages), 20, what="pages to connect")
        return pages

    def close(self) -> None:
        for page in self.pages:
            page.stop()
        for worker in self.workers:
            worker.stop()
        self.daphne.stop()
        self.llm.stop()
        self.redis.stop()

    # -- faults ----------------------------------------------------------------------------

    def wait_mid_round(self, session_id: int, timeout: float = 60) -> None:
        """Until specialists are streaming their answers."""
        wait_for(
            lambda: Contribution.objects.filter(session_id=session_id, status=Contribution.Status.RUNNING)
            .exclude(text="").count() >= 2,
            timeout, interval=0.05, what="specialists streaming",
        )

    def inject(self, fault: str) -> float:
        """Inject ``fault``; returns how long that took, until the replacement was ready."""
        started = time.monotonic()
        if fault == "worker_kill":
            victim = next(w for w in self.workers if w.process.poll() is None)
            victim.kill()  # SIGKILL mid-call: nothing acknowledged, nothing cleaned up
            self.add_worker()
        elif fault == "redis_restart":
            self.redis.restart(down_for=1.0)  # every queued message and subscription is gone
        elif fault == "daphne_restart":
            self.daphne.restart(kill=True)
        else:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        return time.monotonic() - started

    def run(self, fault: str | None, *, pages: int = 2, timeout: float = 150) -> Figures:
        """One session, with ``fault`` injected mid-round, watched by ``pages`` pages."""
        session_id = self.start_session()
        watching = self.open_pages(session_id, pages)
        took = 0.0
        if fault:
            self.wait_mid_round(session_id)
            took = self.inject(fault)
        wait_for(lambda: settled(session_id), timeout, interval=0.2, what=f"session {session_id} to settle after {fault}")
        result = figures(session_id, watching, self.llm)
        result.fault_seconds = took
        return result


def settled(session_id: int) -> bool:
    session = DesignSession.objects.get(pk=session_id)
    return session.status in SETTLED and not session.rounds.filter(status__in=["running", "synthesizing"]).exists()


def longest_stall(session_id: int, pages: list[Page]) -> float:
    """The longest time in seconds that nothing moved: the longest the session went without a
    new event in its log or streamed text reaching a page (streamed text is not in the log; a
    call that streams for seconds is moving), or the longest an event took to reach a page."""
    rows = list(SessionEvent.objects.filter(session_id=session_id).order_by("seq").values_list("seq", "created_at"))
    stamps = [created.timestamp() for _, created in rows]
    if stamps:  # text that streamed between the session's first and last events
        stamps = sorted(stamps + [t for page in pages for t in page.streamed if stamps[0] <= t <= stamps[-1]])
    log_gap = max((b - a for a, b in zip(stamps, stamps[1:], strict=False)), default=0.0)
    late = max(
        (page.received[seq] - created.timestamp() for page in pages for seq, created in rows if seq in page.received),
        default=0.0,
    )
    return max(log_gap, late)


def figures(session_id: int, pages: list[Page], llm: LLMServer, catch_up: float = 5.0) -> Figures:
    """Wait up to ``catch_up`` s for every page to reach the log's end, then count."""
    last_seq = DesignSession.objects.get(pk=session_id).last_seq
    for page in pages:
        page.wait_for(last_seq, catch_up)
    lost = duplicates = 0
    problems = []
    for page in pages:
        page_lost, page_dups = page.lost_and_duplicates(last_seq)
        lost += page_lost
        duplicates += page_dups
        if page.seqs != sorted(page.seqs):
            problems.append("a page got events out of order")
    specialist = Contribution.objects.filter(session_id=session_id, author=Contribution.Author.SPECIALIST)
    doubled = specialist.values("round_id", "specialist_slug", "attempt").annotate(n=Count("id")).filter(n__gt=1)
    if doubled.exists():
        problems.append(f"more than one contribution per (round, specialist, attempt): {list(doubled)}")
    unfinished = specialist.exclude(status=Contribution.Status.DONE).values_list("specialist_slug", "status")
    if unfinished:
        problems.append(f"contributions not done: {list(unfinished)}")
    return Figures(session_id=session_id, last_seq=last_seq, lost=lost, duplicates=duplicates,
                   stall=longest_stall(session_id, pages), problems=problems)


def vendor_calls(llm: LLMServer) -> tuple[int, int, int]:
    """(calls the model server saw, tries recorded, contributions): at most one vendor call per
    try (a worker killed between its claim and its request makes a try without a call), and at
    least one per contribution."""
    specialist = Contribution.objects.filter(author=Contribution.Author.SPECIALIST)
    return len(llm.calls), sum(specialist.values_list("tries", flat=True)), specialist.count()


def measure(runs: int, faults: tuple[str, ...] = FAULTS, settings: dict[str, str] | None = None) -> dict:
    """The soak: ``runs`` sessions, cycling through ``faults``, on one cluster (``settings``
    override the short leases and sweeps of :data:`FAST`)."""
    cluster = Cluster(settings=settings)
    started = time.monotonic()
    try:
        results = []
        for n in range(runs):
            fault = faults[n % len(faults)]
            result = cluster.run(fault)
            results.append((fault, result))
        calls, tries, contributions = vendor_calls(cluster.llm)
    finally:
        cluster.close()
    stall = {fault: max((r.stall for f, r in results if f == fault), default=0.0) for fault in faults}
    return {
        "sessions": len(results),
        "faults injected": len(results),
        "lost events": sum(r.lost for _, r in results),
        "duplicates": sum(r.duplicates for _, r in results),
        "longest stall s": round(max(stall.values(), default=0.0), 1),
        **{f"longest stall s ({fault})": round(value, 1) for fault, value in stall.items()},
        "longest fault s (until the replacement was ready)": round(max((r.fault_seconds for _, r in results), default=0.0), 1),
        "vendor calls / tries / contributions": f"{calls} / {tries} / {contributions}",
        "calls within tries": contributions <= calls <= tries,
        "problems": sum(len(r.problems) for _, r in results),
        "seconds": round(time.monotonic() - started, 1),
    }
