"""A session page's WebSocket, driven the way ``static/js/session.js`` drives it: on every
open it sends the last sequence number it has seen, and after a drop it reconnects within a
couple of seconds. It records every sequence number it receives, so a test can check for
gaps and duplicates, and when streamed text reached it (text is not in the log: see
``sessions_app/streaming.py``)."""

from __future__ import annotations

import json
import random
import re
import threading
import time

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

SEQ = re.compile(r'data-seq="(\d+)"')
STREAMED = 'hx-swap-oob="beforeend:#text-'  # a frame of streamed text (sessions_app/live.py)


class Page(threading.Thread):
    def __init__(self, ws_url: str, session_id: int, cookie: str, origin: str) -> None:
        super().__init__(name=f"page-{session_id}", daemon=True)
        self.url = f"{ws_url}/ws/sessions/{session_id}/"
        self.headers = {"Cookie": cookie}
        self.origin = origin
        self.seqs: list[int] = []
        self.received: dict[int, float] = {}  # seq -> wall-clock time it first arrived
        self.streamed: list[float] = []  # wall-clock times frames of streamed text arrived
        self.opens = 0
        self.errors: list[str] = []
        self.stopped = threading.Event()

    @property
    def last(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    def run(self) -> None:
        retries = 0
        while not self.stopped.is_set():
            try:
                with connect(self.url, additional_headers=self.headers, open_timeout=3, origin=self.origin, proxy=None) as ws:
                    self.opens += 1
                    retries = 0
                    ws.send(json.dumps({"type": "resume", "last_seq": self.last}))
                    while not self.stopped.is_set():
                        try:
                            frame = ws.recv(timeout=0.5)
                        except TimeoutError:
                            continue
                        if 'id="live-error"' in frame:
                            self.errors.append(frame)
                        now = time.time()
                        if STREAMED in frame:
                            self.streamed.append(now)
                        for seq in (int(s) for s in SEQ.findall(frame)):
                            self.seqs.append(seq)
                            self.received.setdefault(seq, now)
            except (WebSocketException, OSError, TimeoutError):
                pass  # the server went away or refused us for now: reconnect as the page does
            # session.js: jittered, doubling from 250 ms, at most 2 s.
            delay = min(0.25 * 2**retries, 2.0) * (0.5 + random.random() / 2)
            retries += 1
            self.stopped.wait(delay)

    def wait_for(self, seq: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.last >= seq:
                return True
            time.sleep(0.05)
        return self.last >= seq

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)

    def lost_and_duplicates(self, last_seq: int) -> tuple[int, int]:
        """Events of 1..last_seq this page never got, and events it got more than once."""
        seen = set(self.seqs)
        return len(set(range(1, last_seq + 1)) - seen), len(self.seqs) - len(seen)
