"""Run the benchmark modules of this package: all of them, or those named on the command line.

    python -m bench                      # every module, in name order
    python -m bench inventory            # only bench/inventory.py
    python -m bench inventory -- --runs 3   # options after -- go to each module

Modules are discovered, not listed, so adding ``bench/<name>.py`` with a ``main(args)`` or
``run(args) -> dict`` is all a new benchmark needs; modules with neither are helpers and skipped.

Each module's last line gives the machine's pace before and after it: how long a fixed piece of
plain Python took. A shared or throttled machine can change speed by half or more within
minutes; when the two differ, that module's figures were measured on a machine that changed
under them, and figures from runs at different paces are not comparable.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import bench


def _is_benchmark(path: Path) -> bool:
    """A module with a top-level ``main`` or ``run``; others (servers, fixtures) are helpers.

    Decided from the source, so discovery imports nothing and a helper's import-time work never runs."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return True  # let the import report the problem rather than hide the module
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in ("main", "run") for node in tree.body
    )


def available() -> list[str]:
    names = []
    for module in pkgutil.iter_modules(bench.__path__):
        if module.name.startswith("_") or module.ispkg:
            continue
        if _is_benchmark(Path(module.module_finder.path) / f"{module.name}.py"):
            names.append(module.name)
    return sorted(names)


PACE_STEPS = 2_000_000


def pace_ms() -> float:
    """How long ``PACE_STEPS`` steps of a plain Python loop take here now, in ms (the best of 3)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _step in range(PACE_STEPS):
            pass
        best = min(best, time.perf_counter() - started)
    return best * 1000


HANDOFFS = 1_000


def handoff_us() -> float:
    """How long one round trip between two threads of this process takes here now, in µs (the
    best of 3 means of ``HANDOFFS``): each is two wake-ups of a waiting thread, the step that
    every database query, Redis command and task hand-over pays. The loop's pace does not show
    it: a machine (a nested virtual one, say) can run plain Python at full speed and still wake a
    waiting thread several times slower, and then every figure made of round trips is slower too."""
    ping, pong = threading.Event(), threading.Event()

    def echo() -> None:
        for _ in range(HANDOFFS):
            ping.wait()
            ping.clear()
            pong.set()

    best = float("inf")
    for _ in range(3):
        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        started = time.perf_counter()
        for _ in range(HANDOFFS):
            ping.set()
            pong.wait()
            pong.clear()
        best = min(best, (time.perf_counter() - started) / HANDOFFS)
        thread.join()
    return best * 1e6


def _call(fn: Callable[..., Any], args: list[str]) -> Any:
    # main() without parameters is allowed; give args only to functions that take them.
    return fn(args) if inspect.signature(fn).parameters else fn()


def run_module(module: ModuleType, args: list[str]) -> bool:
    """Run one module; True when it succeeded (no exception, no non-zero exit status)."""
    if hasattr(module, "main"):
        status = _call(module.main, args)
        return status in (None, 0, True)
    if hasattr(module, "run"):
        result = _call(module.run, args)
        print(json.dumps(result, sort_keys=True, default=str))
        return True
    print(f"{module.__name__} has neither main() nor run(); skipped")
    return False


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    module_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, module_args = argv[:cut], argv[cut + 1 :]
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        print("available:", ", ".join(available()) or "none")
        return 0
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}", file=sys.stderr)
        return 2
    failed: list[str] = []
    for name in names:
        print(f"\n=== bench.{name} ===", flush=True)
        pace_before, handoff_before = pace_ms(), handoff_us()
        started = time.perf_counter()
        try:
            ok = run_module(importlib.import_module(f"bench.{name}"), module_args)
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            ok = False
        took = time.perf_counter() - started
        pace = (
            f"machine pace: {PACE_STEPS:,} loop steps took {pace_before:.0f} ms before, {pace_ms():.0f} ms after; "
            f"a thread hand-off round trip {handoff_before:.0f} µs before, {handoff_us():.0f} µs after"
        )
        print(f"--- bench.{name}: {'done' if ok else 'FAILED'} in {took:.1f} s ({pace})", flush=True)
        if not ok:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
