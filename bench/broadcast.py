"""WebSocket broadcast latency, from the commit of an event to its receipt by every viewer.

    python -m bench broadcast                # or: python -m bench.broadcast
    python -m bench broadcast -- --clients 100 500 --events 50 --interval-ms 100 --backends pubsub core
    python -m bench.broadcast --interval-ms 20   # a stress rate: 25,000 frames/s at 500 clients

For each channel layer (``CHANNEL_LAYER_BACKEND=pubsub``: RedisPubSubChannelLayer; ``core``:
RedisChannelLayer) a daphne server is started on the product's ASGI application
(``python -m daphne config.asgi:application``) against a throwaway database and Redis. For each
N, one client process (asyncio, the ``websockets`` package) opens N WebSockets to
``/ws/sessions/<id>/`` as a signed-in project member (a ``sessionid`` cookie and the page's
Origin), sends ``{"type": "resume", "last_seq": S}`` and reads HTML fragments. Measuring starts
only when every consumer has finished its resume replay (a message the consumer does not
understand, sent after the resume, is answered in order with an error fragment) and has received
a warm-up event (so every socket is in the group). This process then emits M ``RoundProgress``
events, one every ``--interval-ms`` (100 ms by default: one event's fan-out to 500 sockets fits
between two events, so the figure is latency, not a queue), through the product's own
``sessions_app.events.event_emit`` inside ``transaction.atomic()``, exactly as the engine does.

* commit time: an on-commit callback registered before ``event_emit``'s own, so it runs at
  the commit and before the fragment is rendered and published (that work is part of the
  measured latency);
* receipt time: when the client reads the frame (``data-seq="N"`` identifies the event);
* latency = receipt − commit, for every (client, event); p50, p99 and max over all of them;
* delivered / expected: distinct (client, event) pairs received, against N × M; duplicates and
  frames carrying more than one event (the consumer caught up from the log) are counted too.

The goal is p99 ≤ 100 ms at 500 clients with delivered = expected, at ≤ 40 µs of daphne CPU per
frame. The clients
share this machine's cores with daphne, Redis and the emitter, so the client process's CPU time
is reported beside the figures: a saturated client inflates the latency it measures. So is
daphne's, per delivered frame: it decides how many viewers one daphne process can serve, and it
barely moves with the machine's other load, which latency does (the load average is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import queue
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from tests.support.processes import ROOT, Daphne, answers, stop_process

GOAL_P99_MS = 100.0
GOAL_CPU_US_PER_FRAME = 40.0
GOAL_CLIENTS = 500
BACKENDS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
SEQ_RE = re.compile(rb'data-seq="(\d+)"')
# The consumer handles a client's messages in order and answers one it does not understand with
# an error fragment: sent right after the resume, its answer proves the resume's replay is over.
BARRIER = json.dumps({"type": "bench-barrier"})
BARRIER_REPLY = b'id="live-error"'
CONNECT_CONCURRENCY = 50
ASGI_APP = "config.asgi:application"  # what daphne serves; a profiling harness may wrap it


# --- the client process -------------------------------------------------------------------------
# One asyncio process holds every WebSocket. It talks to the bench over JSON lines: it writes
# {"event": ...} to stdout and reads {"cmd": ...} from stdin.


def _say(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def _client_main(options: argparse.Namespace) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = options.n + 200
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted, hard))

    n = options.n
    received: list[dict[int, float]] = [{} for _ in range(n)]
    stats = {"duplicates": 0, "multi_event_frames": 0, "frames": 0, "closed": 0}
    last_frame = [time.time()]
    barrier_done: list[bool] = [False] * n
    errors: list[str] = []
    conns: list[Any] = [None] * n
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    resume = json.dumps({"type": "resume", "last_seq": options.last_seq})

    async def read(i: int, ws: Any) -> None:
        seen = received[i]
        try:
            async for frame in ws:
                now = last_frame[0] = time.time()
                data = frame.encode() if isinstance(frame, str) else frame
                if BARRIER_REPLY in data:
                    barrier_done[i] = True
                    continue
                seqs = SEQ_RE.findall(data)
                stats["frames"] += 1
                if len(seqs) > 1:
                    stats["multi_event_frames"] += 1
                for raw in seqs:
                    seq = int(raw)
                    if seq in seen:
                        stats["duplicates"] += 1
                    else:
                        seen[seq] = now
        except ConnectionClosed:
            pass
        stats["closed"] += 1

    async def open_one(i: int) -> None:
        async with gate:
            try:
                ws = await connect(
                    options.url,
                    origin=options.origin,
                    additional_headers={"Cookie": options.cookie},
                    compression=None,
                    ping_interval=None,
                    max_size=None,
                    open_timeout=60,
                    close_timeout=2,
                )
                await ws.send(resume)
                await ws.send(BARRIER)
            except Exception as exc:  # reported, not fatal: delivered < expected shows it
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            conns[i] = ws
            readers.append(asyncio.create_task(read(i, ws)))

    readers: list[asyncio.Task] = []
    started = time.time()
    await asyncio.gather(*(open_one(i) for i in range(n)))
    connected = [i for i in range(n) if conns[i] is not None]
    deadline = time.time() + 60
    while time.time() < deadline and not all(barrier_done[i] for i in connected):
        await asyncio.sleep(0.01)
    _say({"event": "connected", "connected": len(connected), "failed": n - len(connected),
          "connect_s": round(time.time() - started, 3), "errors": errors[:5],
          "resumed": sum(1 for i in connected if barrier_done[i])})

    loop = asyncio.get_running_loop()

    async def command() -> dict[str, Any]:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            raise SystemExit("the bench closed the pipe")
        return json.loads(line)

    async def wait_all(seq: int, timeout: float, idle: float) -> float:
        """Until every connected client has ``seq``, or no frame came for ``idle`` seconds (what
        is missing then is lost, not late), or ``timeout``; returns the wait."""
        began = time.time()
        while time.time() - began < timeout:
            if connected and all(seq in received[i] for i in connected):
                break
            if time.time() - max(last_frame[0], began) > idle:
                break
            await asyncio.sleep(0.01)
        return time.time() - began

    cpu_before = 0.0
    while True:
        cmd = await command()
        if cmd["cmd"] == "warmup":
            waited = await wait_all(cmd["seq"], cmd.get("timeout", 30), cmd.get("idle", 5))
            have = sum(1 for i in connected if cmd["seq"] in received[i])
            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu_before = usage.ru_utime + usage.ru_stime
            _say({"event": "ready", "have_warmup": have, "waited_s": round(waited, 3)})
        elif cmd["cmd"] == "done":
            first, last = cmd["first"], cmd["last"]
            waited = await wait_all(last, cmd.get("timeout", 60), cmd.get("idle", 3))
            usage = resource.getrusage(resource.RUSAGE_SELF)
            recv = [[received[i].get(seq) for seq in range(first, last + 1)] for i in range(n)]
            _say({"event": "result", "recv": recv, "waited_s": round(waited, 3), **stats,
                  "cpu_s": round(usage.ru_utime + usage.ru_stime - cpu_before, 3)})
        elif cmd["cmd"] == "quit":
            break
    for task in readers:
        task.cancel()
    await asyncio.wait_for(
        asyncio.gather(*(ws.close() for ws in conns if ws is not None), return_exceptions=True), timeout=10
    )


def client_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.broadcast --client")
    parser.add_argument("--client", action="store_true")
    parser.add_argument("--url", required=True)
    parser.add_argument("--origin", required=True)
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--last-seq", type=int, required=True)
    options = parser.parse_args(argv)
    try:
        asyncio.run(_client_main(options))
    except (TimeoutError, SystemExit):
        pass
    return 0


class ClientProcess:
    """The bench's handle on the client process: JSON lines both ways, with timeouts."""

    def __init__(self, *, url: str, origin: str, cookie: str, n: int, last_seq: int, log) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.broadcast", "--client", "--url", url, "--origin", origin,
             "--cookie", cookie, "--n", str(n), "--last-seq", str(last_seq)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
            cwd=ROOT,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.lines.put(line)
        self.lines.put("")

    def send(self, payload: dict[str, Any]) -> None:
        self.process.stdin.write(json.dumps(payload) + "\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"the client process said nothing for {timeout:.0f} s (waiting for {event!r})") from None
        if not line:
            raise RuntimeError(f"the client process exited (waiting for {event!r}); see its log")
        message = json.loads(line)
        if message.get("event") != event:
            raise RuntimeError(f"expected {event!r} from the client process, got {message.get('event')!r}")
        return message

    def stop(self) -> None:
        try:
            self.send({"cmd": "quit"})
        except (BrokenPipeError, ValueError):
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            stop_process(self.process, timeout=5)


# --- the server side ----------------------------------------------------------------------------


def use_backend(name: str) -> None:
    """Point this process's channel layer (the emitter's) at ``name``, as daphne's is."""
    from channels.layers import channel_layers
    from django.conf import settings

    settings.CHANNEL_LAYERS["default"]["BACKEND"] = BACKENDS[name]
    channel_layers.backends.clear()


def seed() -> tuple[Any, Any, str]:
    """A member of a project, a running session in it (an unusual id, so a concurrent test run on
    the same Redis never shares its group), a round, and a signed-in Django session's cookie."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model

    from sessions_app.models import DesignSession, Phase, Round
    from teams_app.models import Membership, Project

    user = get_user_model().objects.create_user(username="bench-viewer", password="bench-Secret-1")
    project = Project.objects.create(name="Broadcast bench", slug="broadcast-bench")
    Membership.objects.create(user=user, project=project, role=Membership.Role.VIEWER)
    session = DesignSession.objects.create(
        pk=7_000_000 + os.getpid() % 1_000_000, project=project, team_name="Bench team", title="Broadcast bench",
        requirement="Measure broadcast latency", status=DesignSession.Status.RUNNING, phase=Phase.DISCOVERY,
    )
    rnd = Round.objects.create(session=session, number=1, phase=Phase.DISCOVERY, kind=Round.Kind.ANALYSIS,
                               status=Round.Status.RUNNING)
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = user._meta.pk.value_to_string(user)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return session, rnd, f"{settings.SESSION_COOKIE_NAME}={store.session_key}"


def emit(session_id: int, round_id: int, done: int, total: int) -> tuple[int, float]:
    """One event through the product's path; returns (seq, commit time)."""
    from django.db import transaction

    from sessions_app.events import RoundProgress, event_emit

    marks: dict[str, float] = {}
    with transaction.atomic():
        transaction.on_commit(lambda: marks.setdefault("commit", time.time()))  # runs before the delivery
        seq = event_emit(session_id=session_id, event=RoundProgress(round_id=round_id, done=done, total=total))
    return seq, marks["commit"]


def measure(daphne: Daphne, session, rnd, cookie: str, n: int, events: int, interval: float, log) -> dict[str, Any]:
    from sessions_app.models import DesignSession

    last_seq = DesignSession.objects.filter(pk=session.pk).values_list("last_seq", flat=True).get()
    client = ClientProcess(
        url=f"ws://127.0.0.1:{daphne.port}/ws/sessions/{session.pk}/", origin=f"http://127.0.0.1:{daphne.port}",
        cookie=cookie, n=n, last_seq=last_seq, log=log,
    )
    try:
        connected = client.expect("connected", timeout=120)
        # A warm-up event proves every socket is in the group and past its resume.
        warm_seq, _ = emit(session.pk, rnd.pk, 0, events)
        client.send({"cmd": "warmup", "seq": warm_seq, "timeout": 30, "idle": 5})
        ready = client.expect("ready", timeout=60)
        cpu_before = daphne.cpu_seconds()
        commits: dict[int, float] = {}
        publish_s: list[float] = []
        began = time.monotonic()
        for i in range(events):
            target = began + i * interval
            pause = target - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            t = time.time()
            seq, commit = emit(session.pk, rnd.pk, i + 1, events)
            commits[seq] = commit
            publish_s.append(time.time() - t)
        emit_s = time.monotonic() - began
        first, last = min(commits), max(commits)
        client.send({"cmd": "done", "first": first, "last": last, "timeout": 90, "idle": 5})
        result = client.expect("result", timeout=150)
        cpu_after = daphne.cpu_seconds()
    finally:
        client.stop()
    latencies: list[float] = []
    for row in result["recv"]:
        for offset, received in enumerate(row):
            if received is not None:
                latencies.append((received - commits[first + offset]) * 1000)
    expected = n * events
    latencies.sort()
    return {
        "clients": n,
        "connected": connected["connected"],
        "connect_failures": connected["failed"],
        "connect_errors": connected["errors"],
        "connect_s": connected["connect_s"],  # N handshakes + resumes, CONNECT_CONCURRENCY at a time
        "resumed": connected["resumed"],
        "warmup_received": ready["have_warmup"],
        "events": events,
        "interval_ms": round(interval * 1000, 1),
        "emit_s": round(emit_s, 3),
        "emit_call_ms_p50": round(statistics.median(publish_s) * 1000, 2),
        "expected": expected,
        "delivered": len(latencies),
        "duplicates": result["duplicates"],
        "multi_event_frames": result["multi_event_frames"],
        "p50_ms": round(_quantile(latencies, 0.50), 1) if latencies else None,
        "p99_ms": round(_quantile(latencies, 0.99), 1) if latencies else None,
        "max_ms": round(latencies[-1], 1) if latencies else None,
        "frames_per_s_demanded": round(n / interval),
        "client_cpu_s": result["cpu_s"],
        "daphne_cpu_s": round(cpu_after - cpu_before, 2) if cpu_before is not None and cpu_after is not None else None,
        "client_waited_s": result["waited_s"],
    }


def _quantile(ordered: list[float], q: float) -> float:
    """Nearest-rank quantile of an ascending list."""
    index = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


# --- the benchmark -------------------------------------------------------------------------------


def run(args: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench broadcast --")
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--events", type=int, default=50)
    # 100 ms: one event's fan-out to 500 sockets (~140 µs of daphne CPU per frame, measured) ends
    # before the next event, so this measures latency; at 20 ms (25,000 frames/s at 500 clients)
    # one daphne process saturates and the figure is queueing (try it: -- --interval-ms 20).
    parser.add_argument("--interval-ms", type=float, default=100.0)
    parser.add_argument("--backends", nargs="+", choices=sorted(BACKENDS), default=["pubsub", "core"])
    args = list(args or [])
    options = parser.parse_args(args[1:] if args[:1] == ["--"] else args)

    from bench.sessions import child_env, log_path, redis_label, setup_django, throwaway_database

    setup_django()
    from django.conf import settings
    from django.db import connection

    result: dict[str, Any] = {
        "bench": "broadcast",
        "database": connection.vendor,
        "redis": redis_label(),
        "events": options.events,
        "interval_ms": options.interval_ms,
        "goal_p99_ms": GOAL_P99_MS,
        "goal_cpu_us_per_frame": GOAL_CPU_US_PER_FRAME,
        "goal_clients": GOAL_CLIENTS,
        "load_average_1m_before": round(os.getloadavg()[0], 2),
        "results": {},
    }
    previous_backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    client_log_file = log_path("broadcast-clients")
    failed = False
    with open(client_log_file, "w") as client_log:
        try:
            with throwaway_database("broadcast") as db_url:
                session, rnd, cookie = seed()
                for backend in options.backends:
                    use_backend(backend)
                    daphne = Daphne(child_env(db_url, CHANNEL_LAYER_BACKEND=backend, LOG_LEVEL="WARNING"), app=ASGI_APP,
                                    log=log_path(f"daphne-{backend}"), ready=answers("/accounts/login/"))
                    try:
                        daphne.wait_ready(timeout=60.0)
                        rows = []
                        for n in options.clients:
                            rows.append(measure(daphne, session, rnd, cookie, n, options.events,
                                                options.interval_ms / 1000, client_log))
                        result["results"][backend] = rows
                    except BaseException:
                        failed = True
                        daphne.stop(keep_log=True)
                        print(f"daphne log: {daphne.log_path}", file=sys.stderr)
                        raise
                    daphne.stop(keep_log=False)
        finally:
            settings.CHANNEL_LAYERS["default"]["BACKEND"] = previous_backend
            from channels.layers import channel_layers

            channel_layers.backends.clear()
    if failed:
        print(f"client log: {client_log_file}", file=sys.stderr)
    else:
        client_log_file.unlink(missing_ok=True)
    result["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    result["verdicts"] = {backend: _verdict(rows) for backend, rows in result["results"].items()}
    result["winner"] = _winner(result["results"])
    result["daphne_cpu_us_per_frame"] = {
        backend: {str(r["clients"]): round(v, 1) for r in rows if (v := _per_frame_us(r)) is not None}
        for backend, rows in result["results"].items()
    }
    return result


def _at_goal(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(rows, key=lambda r: r["clients"]) if rows else None


def _verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    row = _at_goal(rows)
    complete = all(r["delivered"] == r["expected"] for r in rows)
    p99 = row["p99_ms"] if row else None
    per_frame = _per_frame_us(row)
    return {
        "clients": row["clients"] if row else None,
        "p99_ms": p99,
        "all_delivered": complete,
        "cpu_us_per_frame": per_frame,
        "within_goal": bool(
            row and row["clients"] >= GOAL_CLIENTS and p99 is not None and p99 <= GOAL_P99_MS and complete
            and per_frame is not None and per_frame <= GOAL_CPU_US_PER_FRAME
        ),
    }


def _per_frame_us(row: dict[str, Any] | None) -> float | None:
    if not row or row.get("daphne_cpu_s") is None or not row["delivered"]:
        return None
    return row["daphne_cpu_s"] / row["delivered"] * 1e6


def _winner(results: dict[str, list[dict[str, Any]]]) -> str | None:
    """Complete delivery first; then the lower daphne CPU per delivered frame at the largest N
    (it sets how many viewers one process serves, and unlike latency it hardly moves with the
    machine's other load); then the lower p99 at the largest N."""
    if not results:
        return None

    def key(item):
        backend, rows = item
        row = _at_goal(rows)
        lost = sum(r["expected"] - r["delivered"] for r in rows)
        per_frame = _per_frame_us(row)
        p99 = row["p99_ms"] if row and row["p99_ms"] is not None else float("inf")
        return (lost, per_frame if per_frame is not None else 0.0, p99)

    return min(results.items(), key=key)[0]


def report(result: dict[str, Any]) -> None:
    print(
        f"WebSocket broadcast, commit → receipt: {result['events']} events, one every {result['interval_ms']:.0f} ms, "
        f"through event_emit; database {result['database']}, Redis {result['redis']}"
    )
    print(
        f"  {'layer':<7} {'clients':>7} {'delivered/expected':>19} {'p50':>9} {'p99':>9} {'max':>9} "
        f"{'dup':>4} {'caught-up':>9} {'connect':>8} {'client CPU':>10} {'daphne CPU':>10} {'per frame':>9}"
    )
    for backend, rows in result["results"].items():
        for r in rows:
            ratio = f"{r['delivered']}/{r['expected']}"
            daphne = f"{r['daphne_cpu_s']:.2f}s" if r["daphne_cpu_s"] is not None else "-"
            per_frame = (
                f"{r['daphne_cpu_s'] / r['delivered'] * 1e6:.0f}µs" if r["daphne_cpu_s"] is not None and r["delivered"] else "-"
            )
            print(
                f"  {backend:<7} {r['clients']:>7} {ratio:>19} {ms_text(r['p50_ms']):>9} {ms_text(r['p99_ms']):>9} "
                f"{ms_text(r['max_ms']):>9} {r['duplicates']:>4} {r['multi_event_frames']:>9} {r['connect_s']:>7.1f}s "
                f"{r['client_cpu_s']:>9.2f}s {daphne:>10} {per_frame:>9}"
            )
            if r["connect_failures"]:
                print(f"          {r['connect_failures']} connections failed: {r['connect_errors']}")
    print("  (caught-up = frames carrying several events: the consumer replayed missed events from the log;")
    print(f"   CPU = time used by the client process and by daphne while the events were emitted and received, ~{result['events'] * result['interval_ms'] / 1000:.1f} s;")
    print("   per frame = daphne CPU / frames delivered: N clients × 1000/interval frames per second must fit in one daphne process)")
    for backend, verdict in result["verdicts"].items():
        state = "within" if verdict["within_goal"] else "OVER"
        print(
            f"  {backend}: p99 {ms_text(verdict['p99_ms'])} at {verdict['clients']} clients, "
            f"{'all' if verdict['all_delivered'] else 'NOT all'} delivered, "
            f"{verdict['cpu_us_per_frame'] or 0:.0f} µs of daphne CPU per frame → {state} the goal "
            f"(p99 ≤ {result['goal_p99_ms']:.0f} ms at {result['goal_clients']}, delivered = expected, "
            f"≤ {result['goal_cpu_us_per_frame']:.0f} µs per frame)"
        )
    if result["winner"]:
        parts = []
        for backend, rows in result["results"].items():
            row = _at_goal(rows)
            per_frame = _per_frame_us(row)
            cost = f", {per_frame:.0f} µs of daphne CPU per frame" if per_frame is not None else ""
            lost = sum(r["expected"] - r["delivered"] for r in rows)
            parts.append(f"{backend}: {lost} lost{cost}, p99 {ms_text(row['p99_ms'] if row else None)}")
        print(f"  winner: {result['winner']} ({BACKENDS[result['winner']]}); at {_at_goal(next(iter(result['results'].values())))['clients']} clients " + "; ".join(parts))
    print(f"  load average {result['load_average_1m_before']:.1f} before, {result['load_average_1m_after']:.1f} after")
    compact = {**result, "results": {b: [{k: v for k, v in r.items() if k != "connect_errors"} for r in rows]
                                     for b, rows in result["results"].items()}}
    print(json.dumps(compact, sort_keys=True))


def ms_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}ms"


def main(args: list[str] | None = None) -> int:
    report(run(args))
    return 0


if __name__ == "__main__":
    if "--client" in sys.argv[1:]:
        sys.exit(client_main(sys.argv[1:]))
    sys.exit(main(sys.argv[1:]))
