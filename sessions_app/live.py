"""Server-rendered fragments for the live session page (htmx WebSocket extension, OOB swaps).

Broadcast fragments are the same for every viewer. Parts that depend on who is looking
(forms, controls) are not broadcast: the fragment tells each client to fetch its own copy.
"""

from __future__ import annotations

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import escape, format_html

from sessions_app import selectors
from sessions_app.engine.context import SessionContext
from sessions_app.engine.gate import anti_patterns, gate_checklist
from sessions_app.events import EVENT_ADAPTER
from sessions_app.models import Contribution, DesignSession, Round, SessionEvent


def _seq_marker(seq: int) -> str:
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


def _header(session: DesignSession) -> str:
    from sessions_app.reports import awaiting, continuation

    ctx = SessionContext.load(session)
    return render_to_string(
        "sessions_app/partials/header.html",
        {"session": session, "steps": selectors.phase_steps(session), "involved": ctx.involved_services,
         "awaiting": awaiting(session), "continuation": continuation(session, ctx), "oob": True},
    )


def _side(session: DesignSession) -> str:
    ctx = SessionContext.load(session)
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


def render_event(row: SessionEvent) -> str:
    """The HTML one event adds to the page. State-based where possible (re-rendering is
    idempotent); token deltas append their text."""
    payload = EVENT_ADAPTER.validate_python(row.payload).model_dump()  # typed on the way out too
    kind = row.type
    session_id = row.session_id
    html = ""
    if kind == "contribution.delta":
        html = format_html(
            '<div hx-swap-oob="beforeend:#text-{}">{}</div>', payload["contribution_id"], payload["text"]
        )
    elif kind in ("contribution.started", "contribution.finished", "contribution.failed"):
        c = Contribution.objects.select_related("round").filter(pk=payload["contribution_id"]).first()
        if c is not None:
            html = _card(c)
            if kind == "contribution.failed":
                html += _user_panel_refresh(session_id)
    elif kind == "message.posted":
        c = Contribution.objects.filter(pk=payload["contribution_id"]).first()
        if c is not None:
            html = render_to_string("sessions_app/partials/card.html", {"c": c, "oob": "append"})
    elif kind == "round.started":
        rnd = Round.objects.filter(pk=payload["round_id"]).first()
        if rnd is not None:
            html = _round(rnd, append=True)
    elif kind == "round.progress":
        html = render_to_string(
            "sessions_app/partials/progress.html",
            {"round_id": payload["round_id"], "done": payload["done"], "total": payload["total"], "oob": True},
        )
    elif kind == "synthesis.ready":
        rnd = Round.objects.filter(pk=payload["round_id"]).first()
        session = DesignSession.objects.get(pk=session_id)
        if rnd is not None:
            html = render_to_string(
                "sessions_app/partials/synthesis.html", {"s": getattr(rnd, "synthesis", None), "round_id": rnd.pk, "oob": True}
            ) + _side(session)
    elif kind in ("phase.changed", "status.changed", "gate.changed", "key_question.changed"):
        session = DesignSession.objects.select_related("project", "prd").get(pk=session_id)
        html = _header(session) + _side(session) + _user_panel_refresh(session_id)
    elif kind in ("validation.opened", "validation.answered", "validation.closed"):
        html = _user_panel_refresh(session_id)
    elif kind in _DESIGN_PANELS:
        session = DesignSession.objects.select_related("project").get(pk=session_id)
        html = _design(session, kind)
        if kind == "proposal.updated":
            html += _user_panel_refresh(session_id)  # an open point's card shows the proposal too
    return str(html) + _seq_marker(row.seq)


def render_events_after(*, session_id: int, after: int, until: int | None, limit: int) -> tuple[int | None, str]:
    """(last seq, concatenated fragments) of up to ``limit`` events after ``after``; (None, "") if none."""
    qs = SessionEvent.objects.filter(session_id=session_id, seq__gt=after).order_by("seq")
    if until is not None:
        qs = qs.filter(seq__lte=until)
    rows = list(qs[:limit])
    if not rows:
        return None, ""
    # A replay renders cards as they are now. A contribution that is no longer streaming has no
    # stream left for its token deltas (its text already holds them): send only their seq markers.
    delta_ids = {row.payload["contribution_id"] for row in rows if row.type == "contribution.delta"}
    streaming = set(
        Contribution.objects.filter(pk__in=delta_ids, status__in=[Contribution.Status.PENDING, Contribution.Status.RUNNING])
        .values_list("pk", flat=True)
    ) if delta_ids else set()
    # Fragments that show something's current state (a card, a round's progress, the header)
    # are the same for every event about that thing: a replay renders each once, at its last
    # event, and sends only the seq marker for the earlier ones. The page ends the same, and a
    # long log replays in a fraction of the time.
    last_of = {key: row.seq for row in rows if (key := _state_key(row)) is not None}
    return rows[-1].seq, "".join(
        _seq_marker(row.seq)
        if (row.type == "contribution.delta" and row.payload["contribution_id"] not in streaming)
        or ((key := _state_key(row)) is not None and last_of[key] != row.seq)
        else render_event(row)
        for row in rows
    )


_HEADER_EVENTS = ("phase.changed", "status.changed", "gate.changed", "key_question.changed")


def _state_key(row: SessionEvent) -> tuple | None:
    """What an event's fragment shows the current state of, or None for fragments that add
    something (token deltas, posted messages, new rounds) and must all be sent."""
    kind = row.type
    if kind in ("contribution.started", "contribution.finished"):
        return ("card", row.payload["contribution_id"])
    if kind == "round.progress":
        return ("progress", row.payload["round_id"])
    if kind in _HEADER_EVENTS:
        return ("header",)
    return None


def render_error(message: str) -> str:
    return format_html('<div id="live-error" hx-swap-oob="true" class="live-error" role="alert">{}</div>', escape(message))
