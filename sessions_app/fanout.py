"""One channel-layer subscription per session per daphne process, fanned out to its sockets.

Every viewer of a session in this process shares one :class:`Feed`: it receives each message of
the session's group once and sends it to the process's viewers itself, in sequence order. For a
committed event it renders the fragment once (or sends only its seq marker when a later event of
the same burst shows the same thing) and sends the events of a burst as one frame, built once,
to every viewer that is up to date; a viewer that is behind (a gap, or its replay still running)
catches up from the log, and viewers resuming from the same place share one read of it.
Streamed text is collected and sent as one frame per tick (``LIVE_FRAME_MS``) for the whole
session, however many specialists stream; events at most once per ``LIVE_EVENT_FRAME_MS``. The
events that have arrived are rendered together, in one call on a socket thread, batch after batch
in sequence order (one that a later event of the burst supersedes is not rendered), and their
fragments are kept with them in one write on the sockets' writing thread. One heartbeat per feed
compares the log's last sequence number with what each viewer has, so an event the channel layer
lost (a Redis restart) arrives all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from channels.layers import get_channel_layer
from django.conf import settings

from sessions_app import selectors
from sessions_app.delivery import EVENT_MESSAGE
from sessions_app.events import session_group
from sessions_app.live import fragments_by_id, fragments_keep, render_events_after, seq_marker, streamed_text
from sessions_app.publisher import BATCH_MESSAGE
from sessions_app.socket_db import socket_db, socket_db_write, socket_render
from sessions_app.streaming import TEXT_MESSAGE
from sessions_app.wire import Frame

logger = logging.getLogger(__name__)
IDLE_GRACE_SECONDS = 5.0  # a feed outlives its last viewer this long (reloads reconnect at once)
REORDER_SECONDS = 0.25  # how long a later event waits for an earlier one published after it


class Viewer(Protocol):
    last_sent: int | None  # None until the page said where it is (resume)

    async def send_frame(self, frame: Frame) -> None: ...


class _State:
    __slots__ = ("busy", "wanted")

    def __init__(self) -> None:
        self.busy = False  # catching up from the log
        self.wanted = 0  # the highest seq announced while busy


class Feed:
    def __init__(self, session_id: int) -> None:
        self.session_id = session_id
        self.viewers: dict[Viewer, _State] = {}
        self.streams: dict[int, list] = {}  # contribution id -> [offset of text, text] seen so far
        self.pending: list[tuple[int, int, str]] = []
        self.last_flush = 0.0
        self.last_live = time.monotonic()
        self.flush_handle: asyncio.TimerHandle | None = None
        self.sending = asyncio.Lock()  # one sender at a time: frames reach each viewer in order
        self.channel = ""
        self.tasks: list[asyncio.Task] = []
        self.idle_handle: asyncio.TimerHandle | None = None
        self.started = asyncio.Event()
        # Events come in the order they were published, not always in sequence order (two
        # commits a moment apart, published by two threads). ``head`` is the last event this
        # feed has passed on; later ones wait in ``early`` for the ones before them.
        self.head = 0
        self.early: dict[int, tuple[int, tuple | None, int | None, int | None]] = {}  # seq -> (id, key, starts, ends)
        self.hole_handle: asyncio.TimerHandle | None = None
        self.passing = asyncio.Lock()  # one passer at a time: events leave in sequence order
        self.pages: dict[int, asyncio.Future] = {}  # replay pages by where they start, while head stays
        self.pages_head = -1
        self.out: list[tuple[int, str, int | None]] = []  # passed on, for the next frame: (seq, fragment, starts)
        self.events_handle: asyncio.TimerHandle | None = None
        self.last_events = 0.0
        self.starting: set[int] = set()  # contributions whose card is on its way: their text waits
        # Fragments being rendered, by seq: the batch each is in. A batch is queued as soon as its
        # events (and every event before them) have arrived, instead of when the one before has
        # been sent; batches run one after another in sequence order, so each fragment reads the
        # state after the one before it (a fragment shows the current state: rendered out of order,
        # a page could end on an older one), and one thread call renders a whole burst.
        self.renders: dict[int, asyncio.Future] = {}
        self.render_tail: asyncio.Future | None = None
        self.dropped: set[int] = set()  # queued renders no longer needed
        self.renders_soon = False
        self.to_keep: list[tuple[int, str]] = []  # rendered here, not kept with their events yet

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        layer = get_channel_layer()
        # The default prefix: the Redis core layer reads all of a process's own channels through one
        # receive loop per prefix, and consumers already use this one.
        self.channel = await layer.new_channel()
        await layer.group_add(session_group(self.session_id), self.channel)
        # Subscribed first, then read: every event after ``head`` comes live; viewers get the
        # ones before it from the log when they resume.
        self.head = await socket_db(selectors.session_last_seq, session_id=self.session_id) or 0
        self.tasks = [asyncio.ensure_future(self._read(layer)), asyncio.ensure_future(self._heartbeat())]
        self.started.set()

    async def stop(self) -> None:
        for task in [*self.tasks, *self.renders.values()]:
            task.cancel()
        self.renders.clear()
        self.render_tail = None
        for handle in (self.flush_handle, self.hole_handle, self.events_handle):
            if handle is not None:
                handle.cancel()
        with contextlib.suppress(Exception):  # the layer's Redis may be down; the subscription dies with it
            await get_channel_layer().group_discard(session_group(self.session_id), self.channel)

    # -- viewers ---------------------------------------------------------------------------

    async def resume(self, viewer: Viewer, last_seq: int) -> None:
        """The page shows everything up to ``last_seq``: send it the rest, then the text streamed so far."""
        state = self.viewers.get(viewer)
        if state is None:
            return
        viewer.last_sent = last_seq
        await self._catch_up(viewer, state, last_seq)
        if self.streams and viewer in self.viewers:
            await viewer.send_frame(Frame(streamed_text([(cid, at, text) for cid, (at, text) in self.streams.items()])))

    async def _catch_up(self, viewer: Viewer, state: _State, wanted: int) -> None:
        """Send the log after ``viewer.last_sent`` in pages, until it has ``wanted`` and every
        event announced meanwhile. One catch-up per viewer at a time; a second request while one
        runs only raises what the running one reads up to."""
        state.wanted = max(state.wanted, wanted)
        if state.busy:
            return
        state.busy = True
        waits = 0
        try:
            while viewer in self.viewers:
                after = viewer.last_sent
                seq, frame = await self._page(after)
                if seq is None:
                    self.pages.pop(after, None)  # nothing yet: the next look reads the log again
                    waits += 1
                    if state.wanted <= viewer.last_sent or waits > 100:
                        return  # (after 5 s of waiting the heartbeat takes over)
                    await asyncio.sleep(0.05)  # announced but not readable yet (a replica behind)
                    continue
                await viewer.send_frame(frame)
                viewer.last_sent = seq
        finally:
            state.busy = False

    def _page(self, after: int) -> asyncio.Future:
        """The page of the log after ``after``, read once for every viewer that asks for the same
        page while no new event has come (a crowd reconnecting from the same place)."""
        if self.pages_head != self.head:
            self.pages, self.pages_head = {}, self.head
        page = self.pages.get(after)
        if page is None or (page.done() and page.exception() is not None):
            page = self.pages[after] = asyncio.ensure_future(self._read_page(after))
        return page

    async def _read_page(self, after: int) -> tuple[int | None, Frame]:
        seq, html = await socket_db(
            render_events_after, session_id=self.session_id, after=after, until=None, limit=settings.LIVE_REPLAY_PAGE,
        )
        return seq, Frame(html)  # one frame for every viewer that reads this page

    # -- messages from the channel layer ---------------------------------------------------

    async def _read(self, layer) -> None:
        while True:
            try:
                message = await layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis restarting: the heartbeat fills in what this misses
                logger.warning("live feed of session %s lost its channel layer; retrying", self.session_id, exc_info=True)
                await asyncio.sleep(0.5)
                continue
            for one in message["messages"] if message.get("type") == BATCH_MESSAGE else [message]:
                kind = one.get("type")
                if kind == TEXT_MESSAGE:
                    self._text(one["contribution_id"], one["at"], one["text"])
                elif kind == EVENT_MESSAGE:
                    key = one.get("key")
                    self._arrived(one["seq"], one["event_id"], tuple(key) if key else None, one.get("starts"), one.get("ends"))

    def _arrived(self, seq: int, event_id: int, key: tuple | None, starts: int | None, ends: int | None) -> None:
        """Pass events on in sequence order (see :meth:`_fragment` for what each one sends). One
        that arrives before an earlier one waits for it (``REORDER_SECONDS``); an earlier one
        that never comes was lost on the way, and the viewers read it from the log."""
        self.last_live = time.monotonic()
        if seq <= self.head or seq in self.early:
            return
        if starts is not None:
            self.starting.add(starts)
        if key is not None:  # an earlier event of the burst that shows the same thing sends its marker only
            for earlier in [s_ for s_, (_, k, _, _) in self.early.items() if s_ < seq and k == key]:
                self._render_drop(earlier)
        self.early[seq] = (event_id, key, starts, ends)
        if not self.renders_soon:
            # After the other messages already read: the events of one commit arrive together,
            # and one that a later one supersedes is not rendered at all.
            self.renders_soon = True
            asyncio.get_running_loop().call_soon(self._renders_start)
        asyncio.ensure_future(self._pass_on())

    def _renders_start(self) -> None:
        self.renders_soon = False
        if not self._watched():
            return
        last_of = {key: seq for seq, (_, key, _, _) in sorted(self.early.items()) if key is not None}
        batch = []
        seq = self.head + 1
        while seq in self.early:  # the events that arrived in order; one after a hole waits for it
            event_id, key, _, _ = self.early[seq]
            if seq not in self.renders and (key is None or last_of[key] == seq):
                batch.append((seq, event_id))
            seq += 1
        if batch:
            self._render_queued(batch)

    def _render_queued(self, batch: list[tuple[int, int]]) -> asyncio.Future:
        """Render ``batch`` ((seq, event id), in sequence order) in one go on a socket thread, after
        the batch before it; each of its seqs maps to the batch's future."""
        previous = self.render_tail
        render = self.render_tail = asyncio.ensure_future(self._render(batch, previous))
        for seq, _ in batch:
            self.renders[seq] = render
        return render

    def _watched(self) -> bool:
        """Has any viewer here resumed? (Until then their resume reads the log.)"""
        return any(viewer.last_sent is not None for viewer in self.viewers)

    def _render_drop(self, seq: int) -> None:
        """Its fragment is not needed: a queued render skips its turn (it stays in the queue,
        so the renders after it still wait for the ones before it)."""
        if self.renders.pop(seq, None) is not None:
            self.dropped.add(seq)

    async def _pass_on(self, *, skip_holes: bool = False) -> None:
        async with self.passing:
            await self._pass_on_locked(skip_holes)

    async def _pass_on_locked(self, skip_holes: bool) -> None:
        while self.early:
            nxt = self.head + 1
            if nxt not in self.early:
                if not skip_holes:
                    if self.hole_handle is None:
                        self.hole_handle = asyncio.get_running_loop().call_later(REORDER_SECONDS, self._hole_expired)
                    return
                nxt = min(self.early)
            event_id, key, starts, ends = self.early.pop(nxt)
            self.head = nxt
            html = await self._fragment(nxt, event_id, key)
            if ends is not None:
                self.streams.pop(ends, None)
            if html is None:
                if starts is not None:
                    self.starting.discard(starts)
                continue
            if self.out and nxt != self.out[-1][0] + 1:
                await self._flush_events()  # a frame carries consecutive events only
            self.out.append((nxt, html, starts))
            if self.events_handle is None:
                # At most one event frame per LIVE_EVENT_FRAME_MS: a burst shares frames, and an
                # event after a quiet spell never waits.
                delay = max(0.0, self.last_events + settings.LIVE_EVENT_FRAME_MS / 1000 - time.monotonic())
                self.events_handle = asyncio.get_running_loop().call_later(delay, self._events_soon)
        if self.hole_handle is not None:
            self.hole_handle.cancel()
            self.hole_handle = None

    async def _fragment(self, seq: int, event_id: int, key: tuple | None) -> str | None:
        """The event's fragment for the viewers here: only its seq marker when an event that
        arrived after it shows the same thing (a burst of key-question changes renders the
        header once), nothing when no viewer here has resumed yet (their resume reads the log),
        else its fragment, rendered once and kept."""
        if not self._watched():
            self._render_drop(seq)
            return None
        if key is not None and any(later[1] == key for s_, later in self.early.items() if s_ > seq):
            self._render_drop(seq)
            return seq_marker(seq)
        render = self.renders.pop(seq, None) or self._render_queued([(seq, event_id)])
        found = (await render).get(event_id)
        if found is None:
            return None
        html, kept = found
        if not kept:  # kept for replays and other processes, after the viewers have it
            self._keep(event_id, html)
        return html

    async def _render(self, batch: list[tuple[int, int]], previous: asyncio.Future | None) -> dict[int, tuple[str, bool] | None]:
        """{event id: (fragment, was it kept already), or None: the event is gone, or its render
        failed (the viewers read it from the log instead)}. Starts when ``previous`` has ended,
        however; events dropped meanwhile are not rendered."""
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        wanted = [event_id for seq, event_id in batch if seq not in self.dropped]
        self.dropped.difference_update(seq for seq, _ in batch)
        self.dropped = {seq for seq in self.dropped if seq > self.head}  # (dropped after their batch ran)
        if not wanted:
            return {}
        try:
            return await socket_render(fragments_by_id, wanted)
        except Exception:
            logger.warning("fragments of session %s could not be rendered", self.session_id, exc_info=True)
            return {}

    def _keep(self, event_id: int, html: str) -> None:
        self.to_keep.append((event_id, html))
        if len(self.to_keep) == 1:
            asyncio.ensure_future(self._keep_all())

    async def _keep_all(self) -> None:
        """Keep the fragments rendered meanwhile, in one write on the sockets' writing thread."""
        await asyncio.sleep(0)  # the rest of the burst joins this write
        fragments, self.to_keep = self.to_keep, []
        try:
            await socket_db_write(fragments_keep, fragments)
        except Exception:  # a replay renders them again
            logger.warning("%d fragments of session %s could not be kept", len(fragments), self.session_id, exc_info=True)

    def _hole_expired(self) -> None:
        self.hole_handle = None
        asyncio.ensure_future(self._pass_on(skip_holes=True))

    def _text(self, cid: int, at: int, text: str) -> None:
        stream = self.streams.get(cid)
        if stream is None or at < stream[0] or at > stream[0] + len(stream[1]):
            self.streams[cid] = [at, text]  # a new stream (a new try starts at 0), or one this process joined late
        else:
            stream[1] = stream[1][: at - stream[0]] + text
        self.pending.append((cid, at, text))
        if self.flush_handle is None:
            delay = max(0.0, self.last_flush + settings.LIVE_FRAME_MS / 1000 - time.monotonic())
            self.flush_handle = asyncio.get_running_loop().call_later(delay, self._flush_soon)

    def _flush_soon(self) -> None:
        self.flush_handle = None
        asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        if not self.pending:
            return
        async with self.sending:
            held = [p for p in self.pending if p[0] in self.starting]
            parts, self.pending = _merged([p for p in self.pending if p[0] not in self.starting]), held
            if not parts:
                return
            self.last_flush = time.monotonic()
            frame = Frame(streamed_text(parts))  # serialised once for every viewer of this process
            for viewer in list(self.viewers):
                if viewer.last_sent is not None:
                    await _send(viewer, frame)

    def _events_soon(self) -> None:
        self.events_handle = None
        asyncio.ensure_future(self._flush_events())

    async def _flush_events(self) -> None:
        """Send the events passed on since the last frame as one frame (built once): a burst
        (a round's calls finishing together) costs each viewer one frame per tick, not one per
        event. Streamed text sent before them goes first."""
        if self.events_handle is not None:
            self.events_handle.cancel()
            self.events_handle = None
        if not self.out:
            return
        if self.pending:
            if self.flush_handle is not None:
                self.flush_handle.cancel()
                self.flush_handle = None
            await self._flush()
        async with self.sending:
            batch, self.out = self.out, []
            if not batch:
                return
            self.last_events = time.monotonic()
            first, last = batch[0][0], batch[-1][0]
            joined = Frame("".join(html for _, html, _ in batch))
            for viewer, state in list(self.viewers.items()):
                seen = viewer.last_sent
                if seen is None or seen >= last:
                    continue
                if state.busy or seen < first - 1:
                    asyncio.ensure_future(self._catch_up(viewer, state, last))
                    continue
                frame = joined if seen == first - 1 else Frame("".join(html for seq, html, _ in batch if seq > seen))
                if await _send(viewer, frame):
                    viewer.last_sent = last
        started = {cid for _, _, cid in batch if cid is not None}
        if started:
            self.starting -= started  # their cards are out: their text may follow
            if self.pending and self.flush_handle is None:
                self.flush_handle = asyncio.get_running_loop().call_soon(self._flush_soon)

    async def _heartbeat(self) -> None:
        interval = settings.LIVE_HEARTBEAT_SECONDS
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - self.last_live < interval:
                continue  # live events are flowing (a gap among them shows itself)
            try:
                seq = await socket_db(selectors.session_last_seq, session_id=self.session_id)
            except Exception:  # a database hiccup: try again next beat
                logger.warning("live heartbeat of session %s failed", self.session_id, exc_info=True)
                continue
            if seq is None:
                continue
            for viewer, state in list(self.viewers.items()):
                if viewer.last_sent is not None and seq > viewer.last_sent:
                    asyncio.ensure_future(self._catch_up(viewer, state, seq))


async def _send(viewer: Viewer, frame: Frame) -> bool:
    try:
        await viewer.send_frame(frame)
        return True
    except Exception:  # the socket is closing; its disconnect removes it
        logger.debug("live send failed", exc_info=True)
        return False


def _merged(parts: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Consecutive parts of one contribution's text joined into one."""
    out: list[list] = []
    last: dict[int, list] = {}
    for cid, at, text in parts:
        prev = last.get(cid)
        if prev is not None and prev[1] + len(prev[2]) == at:
            prev[2] += text
        else:
            prev = [cid, at, text]
            out.append(prev)
            last[cid] = prev
    return [(cid, at, text) for cid, at, text in out]


class Hub:
    """The feeds of this process's event loop."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.feeds: dict[int, Feed] = {}

    async def join(self, session_id: int, viewer: Viewer) -> Feed:
        loop = asyncio.get_running_loop()
        if loop is not self.loop:  # a new event loop (tests): feeds of the old one are gone
            self.loop, self.feeds = loop, {}
        feed = self.feeds.get(session_id)
        if feed is None:
            feed = self.feeds[session_id] = Feed(session_id)
            try:
                await feed.start()
            except BaseException:
                self.feeds.pop(session_id, None)
                raise
        else:
            await feed.started.wait()
        if feed.idle_handle is not None:
            feed.idle_handle.cancel()
            feed.idle_handle = None
        feed.viewers[viewer] = _State()
        return feed

    def leave(self, session_id: int, viewer: Viewer) -> None:
        feed = self.feeds.get(session_id)
        if feed is None:
            return
        feed.viewers.pop(viewer, None)
        if not feed.viewers and feed.idle_handle is None:
            feed.idle_handle = asyncio.get_running_loop().call_later(IDLE_GRACE_SECONDS, self._close_if_idle, session_id, feed)

    def _close_if_idle(self, session_id: int, feed: Feed) -> None:
        feed.idle_handle = None
        if not feed.viewers and self.feeds.get(session_id) is feed:
            del self.feeds[session_id]
            asyncio.ensure_future(feed.stop())


hub = Hub()
