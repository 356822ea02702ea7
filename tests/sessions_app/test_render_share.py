"""Live fragments rendered once across processes (sessions_app/render_share.py), on the real
Redis of the test profile: two callers asking at the same moment split the events between them,
each event is rendered once, and a caller whose winner failed or died renders the event itself."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from django.core.management import call_command
from django.utils import timezone

from sessions_app import live, render_share, services
from sessions_app.models import SessionEvent
from sessions_app.redis_client import redis_client
from teams_app.models import Project, TeamTemplate

_ids = itertools.count(int(time.time() * 1000) % 10**9 * 1000)


def events(n: int) -> list[SessionEvent]:
    """Events as the render sees them (an id and a creation time), unique to this test run."""
    now = timezone.now()
    return [SessionEvent(pk=next(_ids), seq=i + 1, created_at=now) for i in range(n)]


class Renders:
    """A render that takes ``cost`` seconds and counts what it rendered, thread-safely."""

    def __init__(self, cost: float = 0.02, fail: set[int] = frozenset()) -> None:
        self.cost = cost
        self.fail = set(fail)
        self.done: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, row: SessionEvent) -> str:
        time.sleep(self.cost)
        if row.pk in self.fail:
            raise RuntimeError("render failed")
        with self.lock:
            self.done.append(row.pk)
        return f"<div>event {row.pk}</div>"


@pytest.fixture(autouse=True)
def sharing(settings):
    settings.LIVE_RENDER_WAIT_MS = 500
    assert redis_client() is not None, "these tests need the test profile's Redis"
    render_share._paused_until = 0.0


def both(rows, first: Renders, second: Renders) -> tuple[dict, dict, float]:
    """Two callers (two processes' socket threads) asking for ``rows`` at the same moment."""
    results: list[dict] = [{}, {}]
    gate = threading.Barrier(2)

    def ask(i, render):
        gate.wait()
        results[i] = render_share.fragments_render(rows, render)
    started = time.monotonic()
    threads = [threading.Thread(target=ask, args=(i, r)) for i, r in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results[0], results[1], time.monotonic() - started


def test_two_processes_asking_together_render_each_event_once_and_get_every_fragment():
    rows = events(8)
    a, b = Renders(), Renders()
    got_a, got_b, took = both(rows, a, b)
    assert sorted(a.done + b.done) == sorted(r.pk for r in rows), "each event rendered once, by one of them"
    expected = {r.pk: f"<div>event {r.pk}</div>" for r in rows}
    assert got_a == expected and got_b == expected
    assert took < 8 * 0.02 * 2, "the two did not each render the whole burst"


def test_an_event_whose_winner_failed_is_rendered_by_the_other_without_waiting_out_the_limit(settings):
    settings.LIVE_RENDER_WAIT_MS = 3000
    rows = events(3)
    broken = rows[1].pk
    a = Renders(fail={broken})
    # a claims everything first and fails on one; b then finds that claim given up.
    got_a = render_share.fragments_render(rows, a)
    assert broken not in got_a and len(got_a) == 2
    b = Renders()
    started = time.monotonic()
    got_b = render_share.fragments_render(rows, b)
    assert b.done == [broken], "only the one whose winner failed"
    assert got_b == {r.pk: f"<div>event {r.pk}</div>" for r in rows}
    assert time.monotonic() - started < 1.0


def test_an_event_whose_winner_died_is_rendered_after_the_wait(settings):
    settings.LIVE_RENDER_WAIT_MS = 300
    rows = events(2)
    client = redis_client()
    dead = rows[0]
    client.set(f"{render_share._name(dead)}:claim", 1, px=10_000)  # claimed by a process that then died
    r = Renders(cost=0)
    started = time.monotonic()
    got = render_share.fragments_render(rows, r)
    waited = time.monotonic() - started
    assert sorted(r.done) == sorted(x.pk for x in rows) and got[dead.pk] == f"<div>event {dead.pk}</div>"
    assert 0.3 <= waited < 2.0


def test_an_event_id_reused_after_a_database_reset_never_gets_the_old_fragment():
    old = events(1)[0]
    render_share.fragments_render([old], Renders(cost=0))
    again = SessionEvent(pk=old.pk, seq=1, created_at=old.created_at + timezone.timedelta(seconds=1))
    r = Renders(cost=0)
    got = render_share.fragments_render([again], r)
    assert r.done == [again.pk] and got == {again.pk: f"<div>event {again.pk}</div>"}


def test_turned_off_each_process_renders_its_own(settings):
    settings.LIVE_RENDER_WAIT_MS = 0
    rows = events(4)
    a, b = Renders(cost=0.005), Renders(cost=0.005)
    got_a, got_b, _ = both(rows, a, b)
    assert len(a.done) == len(b.done) == 4
    assert len(got_a) == len(got_b) == 4


@pytest.mark.django_db(transaction=True)
def test_a_fragment_sent_to_live_viewers_is_kept_with_its_event(eager_celery, monkeypatch):
    """fragments_by_id says a fragment it rendered (or took from another process) is not kept
    yet, so the feed keeps it with the event for replays; once kept, it is sent as kept and
    nothing renders it again."""
    call_command("seed_demo", verbosity=0)
    project = Project.objects.get(slug="demo")
    template = TeamTemplate.objects.get(slug="new-service-integration")
    session = services.session_start(project=project, template=template, requirement="Add subscriptions to orders", user=None)
    row = session.events.order_by("seq").first()
    assert row is not None and not row.html
    renders = []
    render_event = live.render_event
    monkeypatch.setattr(live, "render_event", lambda r, *rest: renders.append(r.pk) or render_event(r, *rest))
    first = live.fragments_by_id([row.pk])[row.pk]
    assert first is not None and first[1] is False and 'data-seq="' in first[0]
    assert live.fragments_by_id([row.pk])[row.pk] == (first[0], False), "shared, still to be kept"
    live.fragments_keep([(row.pk, first[0])])  # what the feed does once its viewers have it
    assert live.fragments_by_id([row.pk])[row.pk] == (first[0], True)
    assert renders == [row.pk], "rendered once"
