"""The fault soak: N sessions on real processes, each with one fault injected mid-round (a
Celery worker killed with SIGKILL, the Redis restarted empty, daphne killed with pages
connected), in turn. Prints sessions, faults injected, lost events, duplicates and the longest
stall in seconds (the longest the session's log went without an event, or an event took to
reach a page).

    make bench faults                       # 6 sessions
    python -m bench faults -- --sessions 12 --faults worker_kill,redis_restart
    python -m bench faults -- --sessions 2 --faults worker_kill --lease 30 --sweep 5   # production timings

The processes and the cluster are those of the fault tests (``tests/support/faults.py``), on a
throwaway database: PostgreSQL when DATABASE_URL names it, SQLite otherwise; the Redis is the
soak's own, on a free port.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.sessions import setup_django, throwaway_database


def run(args: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench faults --")
    parser.add_argument("--sessions", type=int, default=6, help="sessions to run, one fault each")
    parser.add_argument("--faults", default="worker_kill,redis_restart,daphne_restart", help="faults to cycle through")
    parser.add_argument("--lease", type=float, default=4.0, help="SPECIALIST_LEASE_SECONDS (30 in production)")
    parser.add_argument("--sweep", type=float, default=1.0, help="MAESTRO_SWEEP_INTERVAL (5 in production)")
    options = parser.parse_args(args or [])
    setup_django()
    from tests.support.faults import FAULTS, demo_project_on_openai, measure

    faults = tuple(f.strip() for f in options.faults.split(",") if f.strip())
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        parser.error(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}")
    with throwaway_database("faults"):
        demo_project_on_openai()
        overrides = {
            "SPECIALIST_LEASE_SECONDS": str(options.lease),
            "SPECIALIST_HEARTBEAT_SECONDS": str(options.lease / 3),
            "MAESTRO_SWEEP_INTERVAL": str(options.sweep),
        }
        return {"lease s": options.lease, "sweep s": options.sweep, **measure(options.sessions, faults, overrides)}
