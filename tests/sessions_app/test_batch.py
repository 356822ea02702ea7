"""How a batch of calls gathers its results: those that arrive close together are recorded
together, and the last one never waits for a window to close."""

from __future__ import annotations

import queue
import threading
import time

from sessions_app.engine import batch


def test_results_that_arrive_close_together_are_gathered_and_the_last_never_waits(settings):
    settings.MAESTRO_RESULT_GATHER_MS = 300
    outcomes: queue.SimpleQueue = queue.SimpleQueue()
    outcomes.put("first")
    threading.Timer(0.05, outcomes.put, ["close behind"]).start()
    threading.Timer(1.0, outcomes.put, ["much later"]).start()
    began = time.monotonic()
    assert batch._arrivals(outcomes, 3) == ["first", "close behind"], "the late one is not waited for"
    assert 0.25 <= time.monotonic() - began < 0.9, "gathered for the window, then recorded"
    assert batch._arrivals(outcomes, 1) == ["much later"]
    outcomes.put("a")
    outcomes.put("b")
    began = time.monotonic()
    assert batch._arrivals(outcomes, 2) == ["a", "b"]
    assert time.monotonic() - began < 0.2, "with every running call arrived, nothing is waited for"
