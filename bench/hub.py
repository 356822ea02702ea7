"""Hub benchmark: ``POST /hub/route_only`` against a trivial JSON view on the same server.

A real daphne serves ``config.asgi:application`` on a free loopback port, on a throwaway database
created for the run (bench-specific name; ``config.settings.test`` unless DJANGO_SETTINGS_MODULE
says otherwise, so PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set, else SQLite and an
embedded Redis). ``--clients`` concurrent keep-alive clients call each endpoint for ``--seconds`` in total, the
two endpoints alternating in ``--rounds`` slices (background load weighs on both alike):

* ``GET /hub/ping`` — authenticated with the same token and rate-limited like every hub call, it
  answers ``{"ok": true}``: the baseline (Django + token lookup + rate limit + JSON);
* ``POST /hub/route_only`` — the same plus parsing and validating the task object and ranking
  all 20 built-in specialists.

Reported: throughput (requests/s), p50 and p99 latency of each, and the ratio
throughput(route_only) / throughput(ping), which isolates routing (goal ≥ 0.8). The rate limit
stays on with a limit no run reaches, so both endpoints pay for it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.db import database_url
from tests.support.processes import Daphne, answers, free_port

GOAL_RATIO = 0.8
TASK = {
    "task_id": "bench-1",
    "area": "db",
    "summary": "Add a subscriptions table and migrate existing recurring orders",
    "hints": ["schema", "migration", "postgres"],
    "prd": "PRD-101",
}


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()


def _seed() -> str:
    """Built-in specialists, a project with a PRD, and a token; returns the raw token."""
    from sessions_app.hub.services import api_token_create
    from teams_app.models import PRD, Project
    from teams_app.specialists.loader import load_specialists

    load_specialists()
    project = Project.objects.create(name="Bench shop", slug="bench-shop")
    PRD.objects.create(project=project, reference="PRD-101", title="Subscriptions")
    _token, raw = api_token_create(project=project, name="bench")
    return raw


def _daphne(port: int, log: Path, token: str) -> Daphne:
    """daphne on this run's database, ready when ``GET /hub/ping`` with the token answers 200."""
    env = {
        "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"],
        "DATABASE_URL": database_url(),
        "HUB_RATE_LIMIT_PER_MINUTE": str(10**9),  # on, never reached: both endpoints pay for it
    }
    ready = answers("/hub/ping", status=200, headers={"Authorization": f"Bearer {token}"})
    return Daphne(env, port, log=log, ready=ready)


async def _client(port: int, request: bytes, stop_at: float, latencies: list[float], errors: list[int]) -> None:
    """One keep-alive HTTP/1.1 client: send, read the whole response, repeat until ``stop_at``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    try:
        while loop.time() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status_line.startswith(b"HTTP/1.1 200"):
                errors.append(int(status_line.split()[1]) if len(status_line.split()) > 1 else 0)
    finally:
        writer.close()


def _request(method: str, path: str, token: str, body: dict | None = None) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}", "Connection: keep-alive"]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


def _load(port: int, request: bytes, clients: int, seconds: float) -> tuple[list[float], int, float]:
    """``clients`` concurrent clients for ``seconds``: (latencies, errors, elapsed seconds)."""

    async def main() -> tuple[list[float], int, float]:
        latencies: list[float] = []
        errors: list[int] = []
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(_client(port, request, started + seconds, latencies, errors) for _ in range(clients)))
        return latencies, len(errors), loop.time() - started

    return asyncio.run(main())


def _summary(latencies: list[float], errors: int, elapsed: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "throughput_rps": round(len(ordered) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


def _measure(port: int, requests: dict[str, bytes], clients: int, seconds: float, rounds: int) -> dict[str, Any]:
    """Alternate the endpoints in ``rounds`` short slices, so a change in the machine's background
    load during the run weighs on both alike; each endpoint gets ``seconds`` in total."""
    totals = {name: ([], 0, 0.0) for name in requests}
    for _ in range(rounds):
        for name, request in requests.items():
            latencies, errors, elapsed = _load(port, request, clients, seconds / rounds)
            all_latencies, all_errors, all_elapsed = totals[name]
            totals[name] = (all_latencies + latencies, all_errors + errors, all_elapsed + elapsed)
    return {name: _summary(*total) for name, total in totals.items()}


def run(args: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench hub --")
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive clients")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per endpoint first")
    parser.add_argument("--rounds", type=int, default=5, help="alternating slices per endpoint")
    options = parser.parse_args(args or [])

    _setup_django()
    from django.conf import settings
    from django.db import connection

    from bench.db import throwaway_database

    port = free_port()
    log = settings.DATA_DIR / f"bench-hub-daphne-{port}.log"
    with throwaway_database("hub"):
        token = _seed()
        vendor = connection.vendor
        connection.close()  # daphne owns the database from here
        daphne = _daphne(port, log, token)
        try:
            daphne.wait_ready(timeout=30.0)
            requests = {
                "ping": _request("GET", "/hub/ping", token),
                "route_only": _request("POST", "/hub/route_only", token, TASK),
            }
            for request in requests.values():
                _load(port, request, options.clients, options.warmup)
            results = _measure(port, requests, options.clients, options.seconds, max(1, options.rounds))
        finally:
            daphne.stop()
    ratio = results["route_only"]["throughput_rps"] / max(results["ping"]["throughput_rps"], 1e-9)
    return {
        "bench": "hub",
        "server": "daphne config.asgi:application (1 process)",
        "database": vendor,
        "clients": options.clients,
        "seconds_per_endpoint": options.seconds,
        "rounds": max(1, options.rounds),
        "ping": results["ping"],
        "route_only": results["route_only"],
        "ratio": round(ratio, 3),
        "goal_ratio": GOAL_RATIO,
        "within_goal": ratio >= GOAL_RATIO,
    }


def report(result: dict[str, Any]) -> None:
    print(
        f"{result['server']}, database {result['database']}, {result['clients']} keep-alive clients, "
        f"{result['seconds_per_endpoint']:.0f} s per endpoint in {result['rounds']} alternating rounds"
    )
    print(f"  {'endpoint':<22} {'req/s':>9} {'p50':>9} {'p99':>9} {'requests':>9} {'errors':>7}")
    for key, label in (("ping", "GET /hub/ping"), ("route_only", "POST /hub/route_only")):
        r = result[key]
        print(f"  {label:<22} {r['throughput_rps']:>9.1f} {r['p50_ms']:>7.2f}ms {r['p99_ms']:>7.2f}ms "
              f"{r['requests']:>9} {r['errors']:>7}")
    verdict = "within" if result["within_goal"] else "BELOW"
    print(f"  ratio throughput(route_only)/throughput(ping) = {result['ratio']:.3f} (goal ≥ {result['goal_ratio']}) → {verdict} the goal")
    print(json.dumps(result, sort_keys=True))


def main(args: list[str] | None = None) -> int:
    result = run(args)
    report(result)
    errors = result["ping"]["errors"] + result["route_only"]["errors"]
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
