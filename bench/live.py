"""Live load: K specialists streaming at once to N viewers of one session, and a mass reconnect.

    python -m bench live                     # (1 daphne, 500 viewers), (2 daphnes, 1000), reconnect 500
    python -m bench live -- --quick          # a smoke run: 50 viewers
    python -m bench live -- --daphnes 2 --viewers 1000 --k 8 --seconds 3 --tokens 60 --reconnect-viewers 500

The live part, per configuration (daphnes, viewers): D daphne processes serve the product's ASGI
application and two Celery workers (threads pool, concurrency 8) run the specialists, on a
throwaway database (PostgreSQL when DATABASE_URL is set, else a SQLite file) and the Redis of
REDIS_URL or the test profile's embedded one, with the default channel layer. A design session of
K = 8 built-in specialists on the ``openai`` adapter is started while no worker runs; then the
viewers connect to ``/ws/sessions/<id>/`` (signed-in project members, the page's Origin), spread
evenly over the daphnes, and resume from the log's last sequence number; only when every one has
finished its resume do the workers start and pick up the analysis round.

The local OpenAI-compatible server of tests/support/vendors.py answers each analysis call with
T tokens (60) spread evenly over 3.0 s, each token ``[ts:<µs since the epoch>] `` stamped with
the wall clock when it is written; other calls answer at once. When the round is done the
session is cancelled; once it is quiet (and a second more) the viewers are counted. Two kinds of
items reach a viewer:

* a stamp, found only inside a token fragment ``<div hx-swap-oob="beforeend:#text-<id>" ...>``
  (a finished card repeats the whole text; stamps there are not counted):
  latency = receipt − stamp;
* a durable event, a ``data-seq="N"`` marker (one frame may carry several):
  latency = receipt − the event's ``created_at`` (written in the transaction that commits it).

expected = viewers × (stamps written + durable events after the resume point); delivered =
distinct (viewer, item) pairs received; duplicates = repeats. p50 / p99 are over every delivered
pair of both kinds, and per kind. Client processes (asyncio, the ``websockets`` package; one per
500 viewers) hold the sockets and share the machine's cores with daphne, the workers and Redis.
While the round runs they only keep what each socket read, with the moment the read returned
(bench/viewer.py); the frames, and the stamps and sequence numbers in them, are read after the
round, with the same arrival times, so the clients' own parsing neither takes CPU from the daphnes
nor delays other viewers' frames. Their CPU seconds while the round ran, beside its wall time,
tell a saturated client (inflated latency) from a slow server (``client_parse_cpu_s``: what the
reading afterwards took); daphne's CPU per delivered frame says how many viewers one process can
serve. This
process listens to the session's channel-layer group too: created → published is the share of
the latency spent before any daphne (commit, publish), and ``slowest_events`` names the events
that took longest to reach the viewers.

The reconnect part: a session with a log of about 100 durable events is run the real way (the
offline ``rules`` provider, its tasks inline, both validation points approved by a product
owner); then N viewers connect to one daphne at once and resume from 0 (a handshake daphne
drops is tried again as the page does). caught_up_s = from the first connect until every viewer
has received the log's last sequence number.

Goals: 100 % delivered, 0 duplicates, p99 ≤ 250 ms; reconnect caught up ≤ 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import queue
import random
import re
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.broadcast import ClientProcess, ms_text
from bench.db import round_status
from bench.sessions import session_settle
from tests.support.processes import Daphne, Worker, wait_for

GOAL_P99_MS = 250.0
GOAL_CAUGHT_UP_S = 5.0
VIEWERS_PER_CLIENT = 500  # one asyncio process saturates a core well before 1000 busy sockets
CONNECT_CONCURRENCY = 50
RECONNECT_TARGET_EVENTS = 100
ROOT = Path(__file__).resolve().parents[1]

SEQ_RE = re.compile(r'data-seq="(\d+)"')
# A token fragment: the oob attribute first, then whatever attributes the page adds.
DELTA_RE = re.compile(r'<div hx-swap-oob="beforeend:#text-(\d+)"[^>]*>(.*?)</div>', re.S)
DELTA_MARK = "beforeend:#text-"
STAMP_RE = re.compile(r"\[ts:(\d+)\]")
# The consumer answers a message it does not understand with an error fragment, in order: sent
# after the resume, its answer proves the resume's replay is over.
BARRIER = json.dumps({"type": "bench-barrier"})
LATER_CALL_DELAY_S = 1.0
BARRIER_REPLY = 'id="live-error"'


# --- the model server ----------------------------------------------------------------------------


class AnalysisStamps:
    """The ``stamp`` plan of tests/support/vendors.py's LLMServer: while armed for n calls, the
    next n analysis calls stream ``tokens`` stamps over ``seconds``; every other call gets the
    server's default answer, after ``LATER_CALL_DELAY_S`` (:meth:`delay`): the next round's calls
    are still on their way when the session is cancelled, so every run measures the same events
    (answered at once, the next round could finish first in one run and not in another)."""

    def __init__(self, *, tokens: int, seconds: float, marker: str) -> None:
        self.tokens, self.seconds, self.marker = max(1, tokens), max(0.0, seconds), marker
        self.stamped = 0
        self._armed = 0
        self._lock = threading.Lock()

    def arm(self, calls: int) -> None:
        with self._lock:
            self._armed = calls

    def delay(self, index: int, body: dict) -> float:
        return 0.0 if self.marker in json.dumps(body) else LATER_CALL_DELAY_S

    def __call__(self, index: int, body: dict) -> tuple[int, float] | None:
        if self.marker not in json.dumps(body):
            return None
        with self._lock:
            if self._armed <= 0:
                return None
            self._armed -= 1
            self.stamped += 1
        return self.tokens, self.seconds


# --- the client process --------------------------------------------------------------------------
# One asyncio process holds many WebSockets and talks to the bench over JSON lines: it writes
# {"event": ...} to stdout and reads {"cmd": ...} from stdin (bench.broadcast's design).


def _say(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def _bucket(ms: float) -> int:
    """A latency in tenths of a millisecond, coarser as it grows (0.1 ms to 1 s, 1 ms to 10 s,
    10 ms beyond), so a histogram of a million pairs stays small."""
    tenths = round(ms * 10)
    if tenths >= 100_000:
        return round(tenths, -2)
    if tenths >= 10_000:
        return round(tenths, -1)
    return tenths


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))


def _seq_marker(seq: int) -> str:
    """The attribute a durable event's fragment carries (the closing quote: 10 is not 100)."""
    return f'data-seq="{seq}"'


def _frames_read(
    received: list[list[tuple[float, str]]], stats: Counter, since: list[int] | None = None,
) -> tuple[list[dict[int, float]], list[dict[tuple[str, int], float]]]:
    """What each viewer's frames held: per viewer, the durable events (seq → first arrival) and
    the stamps (card, stamp → arrival; a stamp is found only in a token fragment, and one cut
    between two fragments of its card is joined). Counts frames, repeats and the like in
    ``stats``, from each viewer's frame ``since[i]`` on (those before are read, not counted)."""
    seqs: list[dict[int, float]] = []
    stamps: list[dict[tuple[str, int], float]] = []
    for i, frames in enumerate(received):
        seen: dict[int, float] = {}
        stamped: dict[tuple[str, int], float] = {}
        tails: dict[str, str] = {}
        tally = stats if since is None else Counter()
        for index, (now, frame) in enumerate(frames):
            if since is not None and index == since[i]:
                tally = stats
            tally["frames"] += 1
            if DELTA_MARK in frame:
                for cid, text in DELTA_RE.findall(frame):
                    tally["delta_divs"] += 1
                    buf = tails.pop(cid, "") + text
                    end = 0
                    for match in STAMP_RE.finditer(buf):
                        end = match.end()
                        # two streams may write the same microsecond: a stamp is its card's
                        stamp = (cid, int(match.group(1)))
                        if stamp in stamped:
                            tally["duplicate_stamps"] += 1
                        else:
                            stamped[stamp] = now
                    rest = buf[end:]
                    cut = rest.rfind("[")
                    if cut >= 0 and "]" not in rest[cut:]:
                        tails[cid] = rest[cut:][-40:]  # a stamp cut between two fragments
            found = SEQ_RE.findall(frame)
            if len(found) > 1:
                tally["multi_event_frames"] += 1
            for raw in found:
                seq = int(raw)
                if seq in seen:
                    tally["duplicate_seqs"] += 1
                else:
                    seen[seq] = now
        seqs.append(seen)
        stamps.append(stamped)
    return seqs, stamps


async def _client_main(options: argparse.Namespace) -> None:
    from bench.viewer import open_viewer

    _raise_fd_limit(options.n + 200)
    n = options.n
    urls = options.urls.split(",")
    received: list[list[tuple[float, str]]] = [[] for _ in range(n)]  # (arrival, frame) per viewer
    caught_up: list[float | None] = [None] * n
    barrier_done = [False] * n
    stats = Counter()
    last_frame = [time.time()]
    errors: list[str] = []
    conns: list[Any] = [None] * n
    connect_times: list[float | None] = [None] * n
    target = options.target
    watch = _seq_marker(target) if target else ""  # the frame that tells a viewer has caught up

    def on_frame_of(i: int):
        """Viewer ``i``'s frames: each kept with the moment it arrived; nothing more. What a frame
        holds is read after the measure (:func:`_frames_read`): parsed here, the stamps of 500
        viewers took this process's CPU from the daphnes it shares the machine with while the
        round streamed, and queued the frames of other viewers behind them."""
        kept = received[i]

        def on_frame(now: float, frame: str) -> None:
            last_frame[0] = now
            if BARRIER_REPLY in frame:
                if not barrier_done[i] and "bench-barrier" not in frame and "does not understand" in frame:
                    barrier_done[i] = True
                    return
                stats["live_errors"] += 1
                return
            kept.append((now, frame))
            if watch and caught_up[i] is None and watch in frame:
                caught_up[i] = now

        return on_frame

    def closed(_future: asyncio.Future) -> None:
        stats["closed"] += 1

    async def open_one(i: int, gate: asyncio.Semaphore, resume: str, barrier: bool, until: float) -> None:
        """Connect and resume; a refused or dropped handshake is tried again as the page does
        (static/js/session.js: jittered, doubling from 250 ms, at most 2 s) until ``until``."""
        url = urls[(options.offset + i) % len(urls)]
        retries = 0
        while True:
            async with gate:
                try:
                    ws = await open_viewer(
                        url, origin=url.replace("ws://", "http://", 1).split("/ws/")[0], cookie=options.cookie,
                        on_frame=on_frame_of(i), timeout=60,
                    )
                    ws.send(resume)
                    if barrier:
                        ws.send(BARRIER)
                    break
                except Exception as exc:  # reported, not fatal: delivered < expected shows it
                    if len(errors) < 50:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    stats["connect_retries"] += 1
            pause = min(0.25 * 2**retries, 2.0) * (0.5 + random.random() / 2)
            retries += 1
            if time.time() + pause > until:
                return
            await asyncio.sleep(pause)
        connect_times[i] = time.time()
        conns[i] = ws
        ws.closed.add_done_callback(closed)

    loop = asyncio.get_running_loop()

    async def command() -> dict[str, Any]:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            raise SystemExit("the bench closed the pipe")
        return json.loads(line)

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    async def wait_for_seq(seq: int, timeout: float, idle: float) -> float:
        """Until every connected viewer has ``seq``, or no frame came for ``idle`` seconds (what
        is missing then is lost, not late), or ``timeout``; returns the wait."""
        began = time.time()
        connected = [i for i in range(n) if conns[i] is not None]
        marker, scanned = _seq_marker(seq), [0] * n
        waiting = set(connected)
        while time.time() - began < timeout:
            for i in list(waiting):
                frames = received[i]
                if any(marker in frame for _, frame in frames[scanned[i]:]):
                    waiting.discard(i)
                scanned[i] = len(frames)
            if not waiting:
                break
            if time.time() - max(last_frame[0], began) > idle:
                break
            await asyncio.sleep(0.02)
        return time.time() - began

    resume = json.dumps({"type": "resume", "last_seq": options.last_seq})
    if options.mode == "reconnect":
        cmd = await command()  # "go": every client process starts at once
        started = time.time()
        cpu_before = cpu()
        until = started + cmd.get("timeout", 120)
        gate = asyncio.Semaphore(options.concurrency or n)
        openers = [asyncio.create_task(open_one(i, gate, resume, False, until)) for i in range(n)]
        while time.time() < until and not all(t is not None for t in caught_up):
            await asyncio.sleep(0.02)
        for task in openers:
            task.cancel()
        seqs, _ = _frames_read(received, stats)
        missing = sum(1 for i in range(n) for s in range(1, target + 1) if s not in seqs[i])
        _say({"event": "result", "started": started, "connect_times": connect_times, "caught_up": caught_up,
              "connected": sum(1 for c in conns if c is not None), "errors": sorted(set(errors))[:5], "missing": missing,
              "waited_s": round(time.time() - started, 3), "cpu_s": round(cpu() - cpu_before, 3), **stats})
    else:
        started = time.time()
        gate = asyncio.Semaphore(options.concurrency or n)
        await asyncio.gather(*(open_one(i, gate, resume, True, started + 120) for i in range(n)))
        connected = [i for i in range(n) if conns[i] is not None]
        deadline = time.time() + 60
        while time.time() < deadline and not all(barrier_done[i] for i in connected):
            await asyncio.sleep(0.01)
        _say({"event": "connected", "connected": len(connected), "failed": n - len(connected),
              "resumed": sum(1 for i in connected if barrier_done[i]), "errors": sorted(set(errors))[:5],
              "retries": stats["connect_retries"],
              "connect_s": round(time.time() - started, 3)})
        cmd = await command()  # "measure": the workers are about to start
        stats.clear()
        since = [len(frames) for frames in received]
        cpu_before, wall_before = cpu(), time.time()
        for ws in conns:  # while the round runs, the viewers only keep what they read
            if ws is not None:
                ws.defer()
        cmd = await command()  # "done", with what was written
        cpu_s, wall_s = cpu() - cpu_before, time.time() - wall_before  # the clients' CPU while the round ran
        for ws in conns:
            if ws is not None:
                ws.parse_kept()
        waited = await wait_for_seq(cmd["last"], cmd.get("timeout", 300), cmd.get("idle", 5))
        await asyncio.sleep(cmd.get("grace", 0.5))  # a token fragment without a seq may trail the last event
        seqs, stamps = _frames_read(received, stats, since)
        written = {int(k): v for k, v in cmd["written"].items()}
        emitted = set(cmd["stamps"])
        hist: dict[str, Counter] = {"stamp": Counter(), "event": Counter()}
        delivered = Counter()
        per_seq: dict[int, list[float]] = {}  # seq -> [viewers, sum of latencies, max], to name the slow events
        for i in range(n):
            for seq, at in seqs[i].items():
                if seq in written:
                    delivered["event"] += 1
                    ms = (at - written[seq]) * 1000
                    hist["event"][_bucket(ms)] += 1
                    row = per_seq.setdefault(seq, [0, 0.0, ms])
                    row[0] += 1
                    row[1] += ms
                    row[2] = max(row[2], ms)
                else:
                    stats["other_seqs"] += 1
            for (_, stamp), at in stamps[i].items():
                if stamp in emitted:
                    delivered["stamp"] += 1
                    hist["stamp"][_bucket(at * 1000 - stamp / 1000)] += 1
                else:
                    stats["unknown_stamps"] += 1
        _say({"event": "result", "delivered": dict(delivered), "hist": {k: dict(v) for k, v in hist.items()},
              "per_seq": per_seq,
              "waited_s": round(waited, 3), "cpu_s": round(cpu_s, 3), "wall_s": round(wall_s, 3), **stats})
    await command()  # "quit"
    for ws in conns:
        if ws is not None:
            ws.close()
    closing = [ws.closed for ws in conns if ws is not None]
    if closing:
        await asyncio.wait(closing, timeout=10)


def client_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live --client")
    parser.add_argument("--client", action="store_true")
    parser.add_argument("--mode", choices=["live", "reconnect"], required=True)
    parser.add_argument("--urls", required=True, help="comma-separated WebSocket URLs; viewers are spread over them")
    parser.add_argument("--offset", type=int, default=0, help="index of this process's first viewer, for the spread")
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--last-seq", type=int, default=0)
    parser.add_argument("--target", type=int, default=0, help="reconnect: the seq that means caught up")
    parser.add_argument("--concurrency", type=int, default=CONNECT_CONCURRENCY, help="handshakes at once; 0: all")
    options = parser.parse_args(argv)
    try:
        asyncio.run(_client_main(options))
    except (TimeoutError, SystemExit):
        pass
    return 0


class LiveClient(ClientProcess):
    """The bench's handle on one client process (bench.broadcast's JSON-lines pipe)."""

    def __init__(self, *, log, **options: Any) -> None:  # the parent's pipe, another command line
        command = [sys.executable, "-m", "bench.live", "--client"]
        for key, value in options.items():
            command += [f"--{key.replace('_', '-')}", str(value)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1, cwd=ROOT,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()


def _clients(*, mode: str, n: int, processes: int, urls: list[str], cookie: str, log, **extra: Any) -> list[LiveClient]:
    """``processes`` client processes for ``n`` viewers, spread evenly over ``urls``."""
    processes = max(1, min(processes, n))
    clients, offset = [], 0
    for p in range(processes):
        count = n // processes + (1 if p < n % processes else 0)
        clients.append(LiveClient(log=log, mode=mode, urls=",".join(urls), offset=offset, cookie=cookie, n=count, **extra))
        offset += count
    return clients


def _progress(message: str) -> None:
    print(f"  live: {message}", file=sys.stderr, flush=True)


def _stop_all(items) -> None:
    for item in items:
        try:
            item.stop()
        except Exception as exc:  # stop the others whatever happens to one
            print(f"stopping {type(item).__name__} failed: {exc}", file=sys.stderr)


# --- seeding -------------------------------------------------------------------------------------


def viewer_cookie(project) -> str:
    """A signed-in project member's ``sessionid`` cookie."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from teams_app.models import Membership

    user = get_user_model().objects.create_user(username="live-viewer", password="bench-Secret-1")
    Membership.objects.create(user=user, project=project, role=Membership.Role.VIEWER)
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def move_session_ids() -> None:
    """Sessions of this run get ids no other run on the same Redis uses (their channel-layer
    groups are named after the id, and the test profile's layer prefix is fixed)."""
    from django.core.management.color import no_style
    from django.db import connection

    from sessions_app.models import DesignSession
    from teams_app.models import Project

    base = 8_000_000 + (os.getpid() % 100_000) * 10
    marker = DesignSession.objects.create(pk=base, project=Project.objects.get(slug="demo"), title="ids",
                                          requirement="ids", team_name="ids")
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [DesignSession]):
            cursor.execute(sql)
    marker.delete()


def reconnect_session(project, prd) -> Any:
    """A session of the demo team on the offline ``rules`` provider, its tasks run inline, both
    validation points answered by a product owner until its log holds about 100 events."""
    from django.contrib.auth import get_user_model

    from config.celery import app
    from sessions_app import services
    from sessions_app.models import DesignSession, ValidationPoint
    from sessions_app.validation import validation_respond
    from teams_app.models import Membership, TeamTemplate

    owner = get_user_model().objects.create_user(username="live-owner", password="bench-Secret-1")
    Membership.objects.create(user=owner, project=project, role=Membership.Role.PRODUCT_OWNER)
    template = TeamTemplate.objects.get(slug="new-service-integration")
    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    trace = logging.getLogger("celery.app.trace")  # one "Task ... succeeded" line per inline task
    level = trace.level
    trace.setLevel(logging.WARNING)
    try:
        session = services.session_start(project=project, template=template, requirement=REQUIREMENT_RECONNECT,
                                         user=None, prd=prd, provider="rules")
        for _ in range(6):
            session = DesignSession.objects.get(pk=session.pk)
            if session.last_seq >= RECONNECT_TARGET_EVENTS or session.status != DesignSession.Status.AWAITING_USER:
                break
            points = list(ValidationPoint.objects.filter(session=session, state=ValidationPoint.State.OPEN))
            if not points:
                break
            for point in points:
                validation_respond(point=point, user=owner, verdict="approve", comment="Confirmed.")
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = previous
        trace.setLevel(level)
    return DesignSession.objects.get(pk=session.pk)


REQUIREMENT_RECONNECT = "Add a subscriptions service that creates recurring orders through orders"


# --- measuring -----------------------------------------------------------------------------------


class LayerListener(threading.Thread):
    """Listens to the session's group on the channel layer as a daphne does, to record when
    each event was published: created → published is the writer's share of the latency
    (commit, render, publish), published → received the daphnes' and the clients'."""

    def __init__(self, session_id: int) -> None:
        super().__init__(name="live-layer-listener", daemon=True)
        self.session_id = session_id
        self.published: dict[int, float] = {}
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._listen())
        except BaseException as exc:  # reported by start_listening / the figures' absence
            self.error = exc
            self.ready.set()

    async def _listen(self) -> None:
        from channels.layers import channel_layers

        from sessions_app.events import session_group
        from sessions_app.publisher import BATCH_MESSAGE

        layer = channel_layers.make_backend("default")
        channel = await layer.new_channel()
        group = session_group(self.session_id)
        await layer.group_add(group, channel)
        self.ready.set()
        try:
            while not self.stopping.is_set():
                try:
                    message = await asyncio.wait_for(layer.receive(channel), 0.25)
                except TimeoutError:
                    continue
                heard = time.time()
                for one in message.get("messages", []) if message.get("type") == BATCH_MESSAGE else [message]:
                    if isinstance(one.get("seq"), int):
                        self.published.setdefault(one["seq"], heard)
        finally:
            await layer.group_discard(group, channel)
            if hasattr(layer, "flush"):
                await layer.flush()

    def start_listening(self) -> LayerListener:
        self.start()
        if not self.ready.wait(10) or self.error is not None:
            raise RuntimeError(f"could not listen to the channel layer: {self.error!r}")
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.ident is not None:
            self.join(timeout=5)


class Cluster:
    """daphne processes and Celery workers (tests/support/processes.py), stopped in any case;
    their logs are kept (and named) only when something failed."""

    keep_logs = False  # --keep-logs

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.processes: list[Any] = []
        self.failed = False

    def daphnes(self, count: int) -> list[Any]:
        started = [Daphne(self.env) for _ in range(count)]
        self.processes += started
        return [d.wait_ready(timeout=60) for d in started]

    def workers(self, count: int, concurrency: int) -> list[Any]:
        started = [Worker(f"live{len(self.processes)}-{i}-{os.getpid()}", self.env, concurrency) for i in range(count)]
        self.processes += started
        return [w.wait_ready(timeout=90) for w in started]

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        self.failed = kind is not None
        keep = self.failed or self.keep_logs
        for process in self.processes:
            try:
                process.stop(keep_log=keep)
            except Exception as error:  # stop the others whatever happens to one
                print(f"stopping {type(process).__name__} failed: {error}", file=sys.stderr)
            if keep:
                print(f"log: {process.log_path}", file=sys.stderr)


def measure_live(*, project, template, prd, server, plan: AnalysisStamps, cookie: str, env: dict[str, str], daphnes: int,
                 viewers: int, clients: int, workers: int, concurrency: int, k: int, log) -> dict[str, Any]:
    from sessions_app import services
    from sessions_app.models import DesignSession, Round, SessionEvent

    with Cluster(env) as cluster:
        servers = cluster.daphnes(daphnes)
        session = services.session_start(project=project, template=template, requirement=REQUIREMENT_LIVE, user=None, prd=prd)
        analysis = Round.objects.get(session=session, kind=Round.Kind.ANALYSIS)
        resumed_at = DesignSession.objects.filter(pk=session.pk).values_list("last_seq", flat=True).get()
        urls = [f"{d.ws_url}/ws/sessions/{session.pk}/" for d in servers]
        listener = LayerListener(session.pk)
        procs: list[LiveClient] = []
        try:
            listener.start_listening()
            procs = _clients(mode="live", n=viewers, processes=clients, urls=urls, cookie=cookie, log=log,
                             last_seq=resumed_at)
            connected = [c.expect("connected", timeout=180) for c in procs]
            _progress(f"{sum(c['connected'] for c in connected)}/{viewers} viewers on {daphnes} daphne(s) resumed "
                      f"at seq {resumed_at}; starting the workers")
            for c in procs:
                c.send({"cmd": "measure"})
            daphne_cpu = [d.cpu_seconds() for d in servers]
            first_call = len(server.calls)
            plan.arm(k)
            began = time.monotonic()
            cluster.workers(workers, concurrency)
            workers_ready = time.monotonic() - began
            wait_for(lambda: round_status(analysis.pk) == Round.Status.DONE, 120 + 3 * k,
                     interval=0.02, what="the analysis round to be done")
            round_s = time.monotonic() - began
            _progress(f"analysis round done {round_s:.1f} s after the workers were started; cancelling")
            session_settle(session.pk)
            time.sleep(1.0)
            plan.arm(0)
            last = DesignSession.objects.filter(pk=session.pk).values_list("last_seq", flat=True).get()
            rows = SessionEvent.objects.filter(session=session, seq__gt=resumed_at, seq__lte=last)
            written = {seq: created.timestamp() for seq, created in rows.values_list("seq", "created_at")}
            kinds = dict(rows.values_list("seq", "type"))
            stamps = [stamp for call in server.calls[first_call:] for stamp in call.stamps]
            _progress(f"{len(stamps)} stamps and {len(written)} events written; counting what the viewers got")
            for c in procs:
                c.send({"cmd": "done", "last": last, "written": written, "stamps": stamps, "timeout": 300, "idle": 5,
                        "grace": 0.5})
            results = [c.expect("result", timeout=420) for c in procs]
            daphne_cpu = [
                round(after - before, 2) if before is not None and after is not None else None
                for before, after in zip(daphne_cpu, (d.cpu_seconds() for d in servers), strict=True)
            ]
        finally:
            _stop_all([*procs, listener])
    published = {
        seq: (listener.published[seq] - at) * 1000 for seq, at in written.items() if seq in listener.published
    }
    return _live_row(published=published, daphnes=daphnes, viewers=viewers, k=k, stamps=len(stamps), events=len(written),
                     connected=connected, results=results, daphne_cpu=daphne_cpu, round_s=round_s,
                     workers_ready_s=workers_ready, session_id=session.pk, resumed_at=resumed_at, last_seq=last,
                     kinds=kinds)


REQUIREMENT_LIVE = "Add a subscriptions service that creates recurring orders through orders"


def _live_row(*, published: dict[int, float], daphnes: int, viewers: int, k: int, stamps: int, events: int, connected: list[dict], results: list[dict],
              daphne_cpu: list[float | None], round_s: float, workers_ready_s: float, session_id: int, resumed_at: int,
              last_seq: int, kinds: dict[int, str]) -> dict[str, Any]:
    hist: dict[str, Counter] = {"stamp": Counter(), "event": Counter()}
    delivered: Counter = Counter()
    totals: Counter = Counter()
    for r in results:
        for kind in hist:
            hist[kind].update({int(b): c for b, c in r["hist"][kind].items()})
        delivered.update(r["delivered"])
        for key in ("frames", "multi_event_frames", "delta_divs", "duplicate_stamps", "duplicate_seqs", "live_errors",
                    "closed", "other_seqs", "unknown_stamps"):
            totals[key] += r.get(key, 0)
    both = hist["stamp"] + hist["event"]
    per_seq: dict[int, list[float]] = {}
    for r in results:
        for seq, (count, total, top) in r["per_seq"].items():
            row = per_seq.setdefault(int(seq), [0, 0.0, top])
            row[0], row[1], row[2] = row[0] + count, row[1] + total, max(row[2], top)
    slowest = sorted(per_seq.items(), key=lambda item: item[1][1] / item[1][0], reverse=True)[:5]
    frames = totals["frames"]
    cpu_known = [c for c in daphne_cpu if c is not None]
    row: dict[str, Any] = {
        "daphnes": daphnes,
        "viewers": viewers,
        "k": k,
        "expected": viewers * (stamps + events),
        "delivered": delivered["stamp"] + delivered["event"],
        "duplicates": totals["duplicate_stamps"] + totals["duplicate_seqs"],
        "p50_ms": _quantile(both, 0.50),
        "p99_ms": _quantile(both, 0.99),
        "max_ms": _quantile(both, 1.0),
        "stamps": stamps,
        "events": events,
        "stamp_expected": viewers * stamps,
        "stamp_delivered": delivered["stamp"],
        "stamp_duplicates": totals["duplicate_stamps"],
        "stamp_p50_ms": _quantile(hist["stamp"], 0.50),
        "stamp_p99_ms": _quantile(hist["stamp"], 0.99),
        "event_expected": viewers * events,
        "event_delivered": delivered["event"],
        "event_duplicates": totals["duplicate_seqs"],
        "event_p50_ms": _quantile(hist["event"], 0.50),
        "event_p99_ms": _quantile(hist["event"], 0.99),
        "connected": sum(c["connected"] for c in connected),
        "connect_failures": sum(c["failed"] for c in connected),
        "connect_retries": sum(c["retries"] for c in connected),
        "connect_errors": sorted({e for c in connected for e in c["errors"]})[:5],
        "resumed": sum(c["resumed"] for c in connected),
        "connect_s": max(c["connect_s"] for c in connected),
        "frames": frames,
        "multi_event_frames": totals["multi_event_frames"],
        "delta_divs": totals["delta_divs"],
        "live_errors": totals["live_errors"],
        "closed_by_server": totals["closed"],
        "client_processes": len(results),
        "client_cpu_s": [r["cpu_s"] for r in results],
        "client_wall_s": max(r["wall_s"] for r in results),
        "client_waited_s": max(r["waited_s"] for r in results),
        "daphne_cpu_s": daphne_cpu,
        "daphne_cpu_us_per_frame": round(sum(cpu_known) / frames * 1e6, 1) if frames and cpu_known else None,
        # created → heard on the channel layer: the writer's share (commit, render, publish)
        "event_published": len(published),
        "event_published_p50_ms": _quantile(Counter(_bucket(ms) for ms in published.values()), 0.50),
        "event_published_p99_ms": _quantile(Counter(_bucket(ms) for ms in published.values()), 0.99),
        "slowest_events": [
            {"seq": seq, "type": kinds.get(seq), "mean_ms": round(total / count, 1), "max_ms": round(top, 1),
             "published_ms": round(published[seq], 1) if seq in published else None}
            for seq, (count, total, top) in slowest
        ],
        "workers_ready_s": round(workers_ready_s, 2),
        "round_s": round(round_s, 2),  # workers starting → analysis round done
        "session_id": session_id,
        "resumed_at_seq": resumed_at,
        "last_seq": last_seq,
    }
    if totals["unknown_stamps"] or totals["other_seqs"]:
        row["unknown_stamps"], row["other_seqs"] = totals["unknown_stamps"], totals["other_seqs"]
    row["within_goal"] = bool(
        row["expected"] and row["delivered"] == row["expected"] and row["duplicates"] == 0
        and row["p99_ms"] is not None and row["p99_ms"] <= GOAL_P99_MS
    )
    return row


def measure_reconnect(*, session, cookie: str, env: dict[str, str], viewers: int, clients: int, concurrency: int,
                      timeout: float, log) -> dict[str, Any]:
    from sessions_app.models import DesignSession

    with Cluster(env) as cluster:
        (server,) = cluster.daphnes(1)
        url = f"{server.ws_url}/ws/sessions/{session.pk}/"
        last = DesignSession.objects.filter(pk=session.pk).values_list("last_seq", flat=True).get()
        procs: list[LiveClient] = []
        try:
            procs = _clients(mode="reconnect", n=viewers, processes=clients, urls=[url], cookie=cookie, log=log,
                             last_seq=0, target=last, concurrency=concurrency)
            time.sleep(0.5)  # the client processes import websockets and wait for "go"
            cpu_before = server.cpu_seconds()
            _progress(f"{viewers} viewers resume from 0 on a log of {last} events")
            for c in procs:
                c.send({"cmd": "go", "timeout": timeout})
            results = [c.expect("result", timeout=timeout + 120) for c in procs]
            cpu_after = server.cpu_seconds()
        finally:
            _stop_all(procs)
    started = min(r["started"] for r in results)
    done = [t for r in results for t in r["caught_up"]]
    reached = sorted(t - started for t in done if t is not None)
    opened = [t for r in results for t in r["connect_times"] if t is not None]
    all_caught_up = len(reached) == viewers
    row = {
        "viewers": viewers,
        "events": last,
        "caught_up_s": round(reached[-1], 3) if all_caught_up else None,
        "caught_up_viewers": len(reached),
        "gave_up_after_s": None if all_caught_up else timeout,
        # over every viewer: one that never caught up ranks last, so a quantile it decides is None
        "viewer_p50_s": _viewer_quantile(reached, viewers, 0.50),
        "viewer_p99_s": _viewer_quantile(reached, viewers, 0.99),
        # the last handshake that succeeded (retries included), from the first connect
        "connected_s": round(max(opened) - started, 3) if opened else None,
        "connected": sum(r["connected"] for r in results),
        "connect_retries": sum(r.get("connect_retries", 0) for r in results),
        "connect_errors": sorted({e for r in results for e in r["errors"]})[:5],
        "missing": sum(r["missing"] for r in results),
        "duplicates": sum(r.get("duplicate_seqs", 0) for r in results),
        "frames": sum(r.get("frames", 0) for r in results),
        "daphnes": 1,
        "connect_concurrency": concurrency or viewers,
        "client_processes": len(results),
        "client_cpu_s": [r["cpu_s"] for r in results],
        "daphne_cpu_s": round(cpu_after - cpu_before, 2) if cpu_before is not None and cpu_after is not None else None,
        "session_id": session.pk,
    }
    row["within_goal"] = bool(all_caught_up and row["missing"] == 0 and row["duplicates"] == 0
                              and row["caught_up_s"] <= GOAL_CAUGHT_UP_S)
    return row


def _viewer_quantile(reached: list[float], viewers: int, q: float) -> float | None:
    rank = max(1, math.ceil(q * viewers))
    return round(reached[rank - 1], 3) if rank <= len(reached) else None


def _quantile(hist: Counter, q: float) -> float | None:
    """Nearest-rank quantile of a histogram of tenths of a millisecond, in milliseconds."""
    total = sum(hist.values())
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    running = 0
    for bucket in sorted(hist):
        running += hist[bucket]
        if running >= rank:
            return round(bucket / 10, 1)
    return None


# --- the benchmark -------------------------------------------------------------------------------


def _configurations(options: argparse.Namespace) -> list[tuple[int, int]]:
    if options.quick and not (options.daphnes or options.viewers):
        return [(1, 50), (2, 50)]
    if not (options.daphnes or options.viewers):
        return [(1, 500), (2, 1000)]
    daphnes, viewers = options.daphnes or [1], options.viewers or [500]
    if len(daphnes) == 1:
        daphnes = daphnes * len(viewers)
    if len(viewers) == 1:
        viewers = viewers * len(daphnes)
    if len(daphnes) != len(viewers):
        raise SystemExit("--daphnes and --viewers pair up: give one value or as many as the other")
    return list(zip(daphnes, viewers, strict=True))


def run(args: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench live --")
    parser.add_argument("--viewers", type=int, nargs="+", help="viewers per configuration (default 500 1000)")
    parser.add_argument("--daphnes", type=int, nargs="+", help="daphne processes per configuration (default 1 2)")
    parser.add_argument("--k", type=int, default=8, help="specialists streaming at once")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long each analysis answer streams")
    parser.add_argument("--tokens", type=int, default=60, help="stamped tokens per analysis answer")
    parser.add_argument("--reconnect-viewers", type=int, help="viewers resuming from 0 at once (default 500; 0: skip)")
    parser.add_argument("--reconnect-concurrency", type=int, default=0, help="handshakes at once (0: all)")
    parser.add_argument("--reconnect-timeout", type=float, default=120.0, help="seconds to wait for every viewer")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker")
    parser.add_argument("--clients", type=int, help=f"client processes (default one per {VIEWERS_PER_CLIENT} viewers)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 50 viewers")
    parser.add_argument("--keep-logs", action="store_true", help="keep the daphne and worker logs in var/")
    args = list(args or [])
    options = parser.parse_args(args[1:] if args[:1] == ["--"] else args)
    configurations = _configurations(options)
    Cluster.keep_logs = options.keep_logs
    reconnect_viewers = options.reconnect_viewers if options.reconnect_viewers is not None else (50 if options.quick else 500)

    from bench.sessions import ANALYSIS_MARKER, log_path, redis_label, seed, setup_django, throwaway_database

    setup_django()
    from django.conf import settings
    from django.db import connection

    result: dict[str, Any] = {
        "bench": "live",
        "database": connection.vendor,
        "redis": redis_label(),
        "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1],
        "seconds": options.seconds,
        "tokens": options.tokens,
        "workers": f"{options.workers} × {options.concurrency} threads",
        "goals": {"delivered": "100 %", "duplicates": 0, "p99_ms": GOAL_P99_MS, "caught_up_s": GOAL_CAUGHT_UP_S},
        "load_average_1m_before": round(os.getloadavg()[0], 2),
        "results": [],
    }
    from tests.support.vendors import LLMServer

    plan = AnalysisStamps(tokens=options.tokens, seconds=options.seconds, marker=ANALYSIS_MARKER)
    server = LLMServer(stamp=plan, delay=plan.delay).start()
    client_log_file = log_path("live-clients")
    failed = True
    try:
        with open(client_log_file, "w") as client_log, throwaway_database("live"):
            project, template, prd = seed(options.k)
            move_session_ids()
            cookie = viewer_cookie(project)
            # tests/support/processes.py adds the database (this one), the Redis and the queue.
            env = {"OPENAI_BASE_URL": server.base_url, "MAESTRO_PROVIDER": "openai", "LOG_LEVEL": "WARNING"}
            rebuilt = reconnect_session(project, prd) if reconnect_viewers else None
            for daphnes, viewers in configurations:
                clients = options.clients or math.ceil(viewers / VIEWERS_PER_CLIENT)
                result["results"].append(measure_live(
                    project=project, template=template, prd=prd, server=server, plan=plan, cookie=cookie, env=env,
                    daphnes=daphnes, viewers=viewers, clients=clients, workers=options.workers,
                    concurrency=options.concurrency, k=options.k, log=client_log,
                ))
            if rebuilt is not None:
                clients = options.clients or math.ceil(reconnect_viewers / VIEWERS_PER_CLIENT)
                result["reconnect"] = measure_reconnect(
                    session=rebuilt, cookie=cookie, env=env, viewers=reconnect_viewers, clients=clients,
                    concurrency=options.reconnect_concurrency, timeout=options.reconnect_timeout, log=client_log,
                )
        failed = False
    finally:
        server.stop()
        if failed:
            print(f"client log: {client_log_file}", file=sys.stderr)
        else:
            client_log_file.unlink(missing_ok=True)
    result["model_calls"] = {"stamped": plan.stamped, "plain": len(server.calls) - plan.stamped}
    result["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    return result


def report(result: dict[str, Any]) -> None:
    goals = result["goals"]
    print(
        f"Live load: K specialists stream {result['tokens']} stamped tokens over {result['seconds']:.1f} s each; "
        f"database {result['database']}, Redis {result['redis']}, {result['channel_layer']}, workers {result['workers']}"
    )
    print(
        f"  {'daphnes':>7} {'viewers':>7} {'k':>2} {'delivered/expected':>21} {'dup':>5} {'p50':>10} {'p99':>10} "
        f"{'stamp p99':>10} {'event p99':>10} {'frames':>8} {'client CPU / wall':>20} {'daphne µs/frame':>15}"
    )
    for r in result["results"]:
        ratio = f"{r['delivered']}/{r['expected']}"
        cpu = "+".join(f"{c:.1f}" for c in r["client_cpu_s"]) + f"s / {r['client_wall_s']:.1f}s"
        per_frame = "-" if r["daphne_cpu_us_per_frame"] is None else f"{r['daphne_cpu_us_per_frame']:.0f}"
        print(
            f"  {r['daphnes']:>7} {r['viewers']:>7} {r['k']:>2} {ratio:>21} {r['duplicates']:>5} {ms_text(r['p50_ms']):>10} "
            f"{ms_text(r['p99_ms']):>10} {ms_text(r['stamp_p99_ms']):>10} {ms_text(r['event_p99_ms']):>10} {r['frames']:>8} "
            f"{cpu:>20} {per_frame:>15}"
        )
        print(
            f"          stamps {r['stamp_delivered']}/{r['stamp_expected']}, events {r['event_delivered']}/{r['event_expected']}"
            f" ({r['events']} events, {r['multi_event_frames']} frames with several); "
            f"{'within' if r['within_goal'] else 'OVER'} the goal"
        )
        if r["connect_failures"] or r["connect_retries"]:
            print(f"          {r['connect_failures']} connections failed, {r['connect_retries']} handshakes tried again: "
                  f"{r['connect_errors']}")
    rc = result.get("reconnect")
    if rc:
        caught = f"> {rc['gave_up_after_s']:.0f} s" if rc["caught_up_s"] is None else f"{rc['caught_up_s']:.2f} s"
        print(
            f"  reconnect: {rc['viewers']} viewers resume from 0 at once on a log of {rc['events']} events: all caught up "
            f"after {caught} ({rc['caught_up_viewers']} of {rc['viewers']} did; per viewer p50 {_s(rc['viewer_p50_s'])}, "
            f"p99 {_s(rc['viewer_p99_s'])}; {rc['connect_retries']} handshakes tried again, the last one through after "
            f"{_s(rc['connected_s'])}; missing {rc['missing']}, duplicates {rc['duplicates']}) "
            f"→ {'within' if rc['within_goal'] else 'OVER'} the goal"
        )
    print(
        f"  goals: {goals['delivered']} delivered, {goals['duplicates']} duplicates, p99 ≤ {goals['p99_ms']:.0f} ms; "
        f"reconnect caught up ≤ {goals['caught_up_s']:.0f} s. Load average {result['load_average_1m_before']:.1f} before, "
        f"{result['load_average_1m_after']:.1f} after"
    )
    print(json.dumps(result, sort_keys=True))


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def main(args: list[str] | None = None) -> int:
    report(run(args))
    return 0


if __name__ == "__main__":
    if "--client" in sys.argv[1:]:
        sys.exit(client_main(sys.argv[1:]))
    sys.exit(main(sys.argv[1:]))
