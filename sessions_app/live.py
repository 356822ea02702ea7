"""Server-rendered fragments for the live session page (htmx WebSocket extension, OOB swaps).

Broadcast fragments are the same for every viewer. Parts that depend on who is looking
(forms, controls) are not broadcast: the fragment tells each client to fetch its own copy.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Sequence

from django.db import transaction
from django.template.loader import get_template, render_to_string
from django.urls import reverse
from django.utils.html import escape, format_html

from sessions_app import selectors
from sessions_app.engine.checklist import anti_patterns, gate_checklist
from sessions_app.engine.context import SessionContext
from sessions_app.events import EVENT_ADAPTER, LEGACY_DELTA
from sessions_app.models import Contribution, DesignSession, Round, SessionEvent
from sessions_app.render_share import fragments_render

logger = logging.getLogger(__name__)

PARTIALS = (
    "card", "round", "progress", "synthesis", "header", "gate", "anti_patterns", "questions", "brief", "proposal",
    "plan", "diff_lines", "user_panel",
)


def warm() -> None:
    """Load now what the first fragments would load while every viewer waits for them: the
    URLconf and its reverse table (fragments link to pages; Django imports the URLconf, and with
    it every view module, at the first ``reverse``: ~140 ms) and the fragments' templates. A
    daphne process that only served sockets since it started would otherwise pay it on the first
    event after a restart.

    In a context of its own: building the reverse table sets a context variable on every
    URLconf's resolver (asgiref ``Local``), and set in the context daphne starts its requests
    from, those ~30 variables would be copied into every request and compared after each of its
    hops between threads (asgiref's ``sync_to_async``). ``python -m bench hub`` measured daphne
    at 9.2-11.2 ms of CPU per request with them, 7.0-7.5 ms without. What is loaded stays: the
    table lives on the resolvers, the templates in the loader's cache."""
    contextvars.copy_context().run(_load_fragments_needs)


def _load_fragments_needs() -> None:
    reverse("session_user_panel", kwargs={"pk": 1})  # imports the URLconf and builds its reverse table
    for name in PARTIALS:
        get_template(f"sessions_app/partials/{name}.html")


def seq_marker(seq: int) -> str:
    return format_html('<div id="live-seq" hx-swap-oob="true" data-seq="{}" hidden></div>', seq)


def _user_panel_refresh(session_id: int) -> str:
    url = reverse("session_user_panel", kwargs={"pk": session_id})
    return format_html(
        '<div id="user-panel" hx-swap-oob="true" hx-get="{}" hx-trigger="load" hx-swap="innerHTML"></div>', url
    )


def _card(contribution: Contribution) -> str:
    return render_to_string("sessions_app/partials/card.html", {"c": contribution, "oob": True})


def _round(rnd: Round, *, append: bool) -> str:
    return render_to_string("sessions_app/partials/round.html", {"r": selectors.round_view(rnd), "oob": "append" if append else "replace"})


def _header(session: DesignSession, ctx: SessionContext) -> str:
    from sessions_app.reports import awaiting, continuation

    return render_to_string(
        "sessions_app/partials/header.html",
        {"session": session, "steps": selectors.phase_steps(session), "involved": ctx.involved_services,
         "awaiting": awaiting(session), "continuation": continuation(session, ctx), "oob": True},
    )


def _side(session: DesignSession, ctx: SessionContext) -> str:
    parts = [
        render_to_string("sessions_app/partials/gate.html", {"gate": gate_checklist(session.gate), "oob": True}),
        render_to_string("sessions_app/partials/anti_patterns.html", {"anti_patterns": anti_patterns(session, ctx), "oob": True}),
        render_to_string("sessions_app/partials/questions.html", {"questions": selectors.key_questions_view(session), "oob": True}),
    ]
    return "".join(parts)


_DESIGN_PANELS = {
    "brief.ready": ("brief",),
    "proposal.updated": ("proposal",),
    "plan.updated": ("plan",),
}


def _design(session: DesignSession, kind: str) -> str:
    """The design panels an event changes, rendered from the current rows (state-based, so a
    replayed event shows the latest version again instead of an older one)."""
    panels = selectors.design_panels(session, _DESIGN_PANELS[kind])
    return "".join(
        render_to_string(f"sessions_app/partials/{name}.html", {name: panels[name], "session": session, "oob": True})
        for name in _DESIGN_PANELS[kind]
    )


_CARD_EVENTS = ("contribution.started", "contribution.finished", "contribution.failed", "message.posted")
_ROUND_EVENTS = ("round.started", "synthesis.ready")


class RenderBatch:
    """What the fragments of a batch of events (one session's burst, or a page of its log) read
    alike, read once: the contributions of their cards in one query, their rounds (with their
    syntheses) in one, each session with its context once; and the parts two of them show alike
    (the header, the side panels, the user panel's refresh) rendered once. Each fragment still
    shows the state when the batch renders, after every event of it was committed.

    A row outside the batch's own (or one the batch could not find) is read on its own."""

    def __init__(self, rows: Sequence[SessionEvent] = ()) -> None:
        self.rows = list(rows)
        self._read: dict[str, dict[int, object]] = {}  # by what: {id: row, or None for one that is gone}
        self._sessions: dict[int, tuple[DesignSession, SessionContext]] = {}
        self._parts: dict[tuple, str] = {}

    def contribution(self, pk: int) -> Contribution | None:
        return self._row("contribution", Contribution.objects.select_related("round"), _CARD_EVENTS, pk)

    def round(self, pk: int) -> Round | None:
        return self._row("round", Round.objects.select_related("synthesis"), _ROUND_EVENTS, pk)

    def _row(self, what: str, rows, kinds: tuple[str, ...], pk: int):
        """The row ``pk`` of ``rows``: those the batch's events of ``kinds`` name are read together
        the first time one is asked for; any other on its own."""
        read = self._read.get(what)
        if read is None:
            field = f"{what}_id"
            ids = sorted({
                row.payload[field] for row in self.rows
                if row.type in kinds and isinstance(row.payload, dict) and isinstance(row.payload.get(field), int)
            })
            found = rows.in_bulk(ids) if ids else {}
            read = self._read[what] = {i: found.get(i) for i in ids}
        if pk not in read:
            read[pk] = rows.filter(pk=pk).first()
        return read[pk]

    def session(self, session_id: int) -> tuple[DesignSession, SessionContext]:
        found = self._sessions.get(session_id)
        if found is None:
            session = DesignSession.objects.select_related("project", "prd").get(pk=session_id)
            # One context for every fragment of the batch: its proposal and messages are read once.
            found = self._sessions[session_id] = (session, SessionContext.load(session))
        return found

    def part(self, name: str, session_id: int, render: Callable[[], str]) -> str:
        key = (name, session_id)
        if key not in self._parts:
            self._parts[key] = str(render())
        return self._parts[key]


def render_event(row: SessionEvent, batch: RenderBatch | None = None) -> str:
    """The HTML one event adds to the page. State-based where possible (re-rendering is
    idempotent). Rendered once per event by the delivery module, which keeps it with the event.
    ``batch``: what the other events rendered with it read too (read once for them all)."""
    kind = row.type
    session_id = row.session_id
    if kind == LEGACY_DELTA:  # streamed text of an older version: the card holds it now
        return str(seq_marker(row.seq))
    batch = batch if batch is not None else RenderBatch([row])
    payload = EVENT_ADAPTER.validate_python(row.payload).model_dump()  # typed on the way out too

    def user_panel() -> str:
        return batch.part("user_panel", session_id, lambda: _user_panel_refresh(session_id))

    def side() -> str:
        session, ctx = batch.session(session_id)
        return batch.part("side", session_id, lambda: _side(session, ctx))

    html = ""
    if kind in ("contribution.started", "contribution.finished", "contribution.failed"):
        c = batch.contribution(payload["contribution_id"])
        if c is not None:
            html = _card(c)
            if kind == "contribution.failed":
                html += user_panel()
    elif kind == "message.posted":
        c = batch.contribution(payload["contribution_id"])
        if c is not None:
            html = render_to_string("sessions_app/partials/card.html", {"c": c, "oob": "append"})
    elif kind == "round.started":
        rnd = batch.round(payload["round_id"])
        if rnd is not None:
            html = _round(rnd, append=True)
    elif kind == "round.progress":
        html = render_to_string(
            "sessions_app/partials/progress.html",
            {"round_id": payload["round_id"], "done": payload["done"], "total": payload["total"], "oob": True},
        )
    elif kind == "synthesis.ready":
        rnd = batch.round(payload["round_id"])
        if rnd is not None:
            html = render_to_string(
                "sessions_app/partials/synthesis.html", {"s": getattr(rnd, "synthesis", None), "round_id": rnd.pk, "oob": True}
            ) + side()
    elif kind in _HEADER_EVENTS:
        session, ctx = batch.session(session_id)
        html = batch.part("header", session_id, lambda: _header(session, ctx)) + side() + user_panel()
    elif kind in ("validation.opened", "validation.answered", "validation.closed"):
        html = user_panel()
    elif kind in _DESIGN_PANELS:
        session, _ = batch.session(session_id)
        html = _design(session, kind)
        if kind == "proposal.updated":
            html += user_panel()  # an open point's card shows the proposal too
    return str(html) + seq_marker(row.seq)


def fragment_of(row: SessionEvent, *, keep: bool = True, batch: RenderBatch | None = None) -> str:
    """The event's fragment: the one kept with it, or rendered now (and kept, unless ``keep``
    is False: the caller keeps it later, off its hurry)."""
    if row.html:
        return row.html
    html = render_event(row, batch)
    if keep:
        fragments_keep([(row.pk, html)])
    row.html = html
    return html


def fragments_keep(fragments: list[tuple[int, str]]) -> None:
    """Keep rendered fragments with their events, ``(event id, html)``, in one transaction
    (first one wins; all renders of an event are alike)."""
    with transaction.atomic():
        for event_id, html in fragments:
            SessionEvent.objects.filter(pk=event_id, html="").update(html=html)


def fragments_by_id(event_ids: list[int]) -> dict[int, tuple[str, bool] | None]:
    """(fragment, is it kept already) of each event; None for an event that is gone (its session
    was deleted) or failed to render (a replay renders it again). Events without a kept fragment
    are rendered in the order given, each by one of the processes that ask for it at the same
    time (:mod:`sessions_app.render_share`); each process keeps what it sends (the first write
    wins), since the one that rendered it may not send it at all."""
    rows = SessionEvent.objects.filter(pk__in=event_ids).only("pk", "session_id", "seq", "type", "payload", "html", "created_at")
    by_id = {row.pk: row for row in rows}
    wanted = [by_id[i] for i in event_ids if i in by_id and not by_id[i].html]
    batch = RenderBatch(wanted)
    rendered = fragments_render(wanted, lambda row: render_event(row, batch))
    found: dict[int, tuple[str, bool] | None] = {}
    for event_id in event_ids:
        row = by_id.get(event_id)
        if row is not None and row.html:
            found[event_id] = (row.html, True)
        elif event_id in rendered:
            found[event_id] = (rendered[event_id], False)
        else:
            found[event_id] = None
    return found


def render_events_after(*, session_id: int, after: int, until: int | None, limit: int) -> tuple[int | None, str]:
    """(last seq, concatenated fragments) of up to ``limit`` events after ``after``; (None, "") if none.

    Sends the fragments kept with the events: a replay renders nothing, however many viewers
    ask. Two exceptions, both small: a fragment that shows the current state of something (a
    card, a round's progress, the header, a design panel) is sent only at that thing's last
    event in the page (the earlier ones send their seq marker only; the page ends the same),
    and the card of a contribution still streaming is rendered now, with the text it has so
    far (its kept fragment shows it as it started, and streamed text is not in the log)."""
    qs = SessionEvent.objects.filter(session_id=session_id, seq__gt=after).order_by("seq")
    if until is not None:
        qs = qs.filter(seq__lte=until)
    rows = list(qs.only("pk", "session_id", "seq", "type", "payload", "html")[:limit])
    if not rows:
        return None, ""
    last_of = {key: row.seq for row in rows if (key := _state_key(row)) is not None}
    card_ids = {row.payload["contribution_id"] for row in rows if _state_key(row) and _state_key(row)[0] == "card"}
    streaming = {
        c.pk: c for c in Contribution.objects.select_related("round").filter(
            pk__in=card_ids, status__in=[Contribution.Status.PENDING, Contribution.Status.RUNNING]
        )
    } if card_ids else {}
    parts = []

    def rendered_here(row: SessionEvent) -> bool:
        key = _state_key(row)
        if row.html or row.type == LEGACY_DELTA or (key is not None and last_of[key] != row.seq):
            return False
        return not (key is not None and key[0] == "card" and key[1] in streaming)  # (rendered from its row above)

    batch = RenderBatch([row for row in rows if rendered_here(row)])  # what they read alike, read once
    for row in rows:
        key = _state_key(row)
        if row.type == LEGACY_DELTA or (key is not None and last_of[key] != row.seq):
            parts.append(seq_marker(row.seq))
        elif key is not None and key[0] == "card" and key[1] in streaming:
            parts.append(_card(streaming[key[1]]) + seq_marker(row.seq))
        else:
            parts.append(fragment_of(row, batch=batch))
    return rows[-1].seq, "".join(parts)


_HEADER_EVENTS = ("phase.changed", "status.changed", "gate.changed", "key_question.changed")


def _state_key(row: SessionEvent) -> tuple | None:
    return state_key(row.type, row.payload)


def state_key(kind: str, payload: dict) -> tuple | None:
    """What an event's fragment shows the current state of, or None for fragments that add
    something (posted messages, new rounds) and must all be sent. Of several events with one
    key, only the last one's fragment matters: the page ends the same."""
    if kind in ("contribution.started", "contribution.finished"):
        return ("card", payload["contribution_id"])
    if kind == "round.progress":
        return ("progress", payload["round_id"])
    if kind in _HEADER_EVENTS:
        return ("header",)
    if kind in _DESIGN_PANELS:
        return ("design", kind)
    return None


def streamed_text(parts: list[tuple[int, int, str]]) -> str:
    """One frame of streamed text: ``(contribution id, offset, text)`` parts, each appended to
    its card's stream. The offset lets the page drop text it already shows."""
    return "".join(
        format_html('<div hx-swap-oob="beforeend:#text-{}" data-at="{}">{}</div>', cid, at, text) for cid, at, text in parts
    )


def render_error(message: str) -> str:
    return format_html('<div id="live-error" hx-swap-oob="true" class="live-error" role="alert">{}</div>', escape(message))
