"""Rounds: opening one with a contribution per addressed specialist, and its end.

A round is opened with the session row locked; its contributions are handed to the dispatcher,
which sends them after commit. They are opened *queued* (running, with no start time yet): their
started events are appended with the round, in its transaction, so the worker that takes them
has only to stamp its start on them (:func:`~sessions_app.engine.runner.claims_take`), not to
lock the session and append to its log while the round's calls wait. The contribution that
settles last moves the round to synthesis (exactly once, by a conditional UPDATE).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from sessions_app import events
from sessions_app.engine import messages
from sessions_app.engine.context import SessionContext
from sessions_app.engine.dispatch import dispatcher
from sessions_app.engine.state import budget_spent, round_progress, specialist_members, status_set
from sessions_app.models import Contribution, DesignSession, Round

S = DesignSession.Status

ROUND_MISSIONS = {
    Round.Kind.ANALYSIS: (
        "Analyze the existing cluster from your role's perspective and report the patterns you see",
        "The established patterns, the integration points the requirement touches, and the risks for your role",
    ),
    Round.Kind.DESIGN: (
        "Design the integration for the requirement and take a position on each key question",
        "Your proposed design for your role and one position line per key question",
    ),
    Round.Kind.DISCUSSION: (
        "The team disagrees on the key questions listed below; weigh the other positions and restate yours",
        "Your position on each disputed question, with the trade-off that decides it for you",
    ),
    Round.Kind.PLANNING: (
        "Plan your part of the implementation of the agreed design; coordinate before building",
        "The steps, contracts and configuration your role owns, in order, with their dependencies",
    ),
    Round.Kind.VALIDATION: (
        "Check the planned integration against the proposal before anything is built",
        "One integration test per integration point, event and constraint your role owns",
    ),
    Round.Kind.FOLLOW_UP: (
        "Address the user's feedback on the design",
        "A concrete change to the design that answers the feedback, and what it affects",
    ),
}


def round_number_next(session: DesignSession) -> int:
    last = session.rounds.order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


def open_round(
    session: DesignSession,
    *,
    kind: str,
    ctx: SessionContext | None = None,
    addressed_to: list[str] | None = None,
    note: str = "",
    feedback: str = "",
) -> Round | None:
    """Create a round with one pending contribution per addressed specialist and fan out on commit.

    Precondition: session row locked. Returns None if the budget is spent (the session then
    waits at a human gate)."""
    if budget_spent(session):
        status_set(session, S.AWAITING_USER, "The session's budget is spent. Raise it to continue.")
        return None
    ctx = ctx or SessionContext.load(session)
    members = specialist_members(session)
    if addressed_to:
        members = [m for m in members if m["specialist"] in addressed_to] or members
    mission, report = ROUND_MISSIONS[kind]
    if note:
        # On a line of its own: a multi-line note ("Design agreed:" and its list) must not end
        # the mission's first line, which the rule-based provider quotes as the scope.
        mission = f"{_sentence(mission)}\n{note}"
    rnd = Round.objects.create(
        session=session, number=round_number_next(session), phase=session.phase, kind=kind,
        addressed_to=[m["specialist"] for m in members], status=Round.Status.RUNNING,
        brief=f"{_sentence(mission)}\nReport: {_sentence(report)}", feedback=feedback.strip(),
    )
    events.event_emit(session_id=session.pk, event=events.RoundStarted(round_id=rnd.pk))
    involved = ctx.involved_services
    cluster_state, patterns = ctx.cluster_line(), ctx.patterns_line()
    queued_until = timezone.now() + call_lease()  # the sweeper sends a call again that no worker took by then
    rows = [
        _pending(session, rnd, member, messages.deployment_brief(
            agent=member["name"],
            team_name=session.team_name,
            feature=session.title,
            mission=f"{_sentence(member['role'])} {mission}",
            cluster_state=cluster_state,
            patterns=patterns,
            integrate_with=involved,
            report=report,
        ), attempt=1, queued_until=queued_until)
        for member in members
    ]
    created = _insert_all(rows)
    events.events_emit(session_id=session.pk, events=[
        *(events.ContributionStarted(contribution_id=c.pk, round_id=rnd.pk) for c in created),
        events.RoundProgress(round_id=rnd.pk, done=0, total=len(created)),
    ])
    status_set(session, S.RUNNING)
    dispatcher().contributions([c.pk for c in created])
    return rnd


def call_lease() -> timedelta:
    """How long a call's claim holds without being renewed (``SPECIALIST_LEASE_SECONDS``), and
    how long a queued call may wait for a worker before the sweeper sends it again."""
    return timedelta(seconds=settings.SPECIALIST_LEASE_SECONDS)


def _insert_all(rows: list[Contribution]) -> list[Contribution]:
    """One INSERT for a round's calls, where the database returns the new rows' ids from it
    (PostgreSQL; SQLite from 3.35); else one per call."""
    if connection.features.can_return_rows_from_bulk_insert:
        return Contribution.objects.bulk_create(rows)
    for row in rows:
        row.save(force_insert=True)
    return rows


def contribution_pending(session: DesignSession, rnd: Round, member: dict, brief: str, *, attempt: int) -> Contribution:
    contribution = _pending(session, rnd, member, brief, attempt=attempt)
    contribution.save(force_insert=True)
    return contribution


def _pending(
    session: DesignSession, rnd: Round, member: dict, brief: str, *, attempt: int, queued_until: datetime | None = None
) -> Contribution:
    """A pending contribution of ``member`` to ``rnd``, not saved yet; with ``queued_until``,
    queued instead: running on its first try, its wait in the queue leased until then."""
    queued = queued_until is not None
    return Contribution(
        session=session, round=rnd, author=Contribution.Author.SPECIALIST,
        specialist_id=member.get("specialist_id"), specialist_slug=member["specialist"],
        author_name=member["name"], color=member.get("color", ""), brief=brief,
        status=Contribution.Status.RUNNING if queued else Contribution.Status.PENDING, attempt=attempt,
        tries=1 if queued else 0, lease_expires_at=queued_until,
        idempotency_key=f"round:{rnd.pk}:{member['specialist']}:attempt:{attempt}",
    )


def round_all_settled(rnd: Round, contributions: list[Contribution] | None = None) -> bool:
    """Called after a contribution settles: records the round's progress, and says whether every
    addressed specialist's latest attempt has finished or failed (the round is then synthesized).
    ``contributions``: the round's, as :func:`~sessions_app.engine.state.round_progress` takes them."""
    done, total = round_progress(rnd, contributions)
    events.event_emit(session_id=rnd.session_id, event=events.RoundProgress(round_id=rnd.pk, done=done, total=total))
    return done >= total


def round_synthesis_due(rnd: Round) -> bool:
    """Mark a settled round as waiting for its synthesis (running → synthesizing, a conditional
    UPDATE: exactly one caller wins and gets True, and ``rnd`` shows the new status). The
    sweeper finds a round left synthesizing and delivers its synthesis again."""
    if not Round.objects.filter(pk=rnd.pk, status=Round.Status.RUNNING).update(status=Round.Status.SYNTHESIZING):
        return False
    rnd.status = Round.Status.SYNTHESIZING
    return True


def user_message_record(session: DesignSession, text: str, user) -> Contribution:
    rnd = session.rounds.order_by("-number").first()
    contribution = Contribution.objects.create(
        session=session, round=rnd, author=Contribution.Author.USER, user=user,
        author_name=f"USER ({user.get_username()})" if user else "USER", text=text.strip(),
        status=Contribution.Status.DONE, finished_at=timezone.now(),
    )
    events.event_emit(session_id=session.pk, event=events.MessagePosted(contribution_id=contribution.pk, round_id=rnd.pk))
    return contribution


def _sentence(text: str) -> str:
    """``text`` ending with exactly one full stop (roles and missions may bring their own)."""
    text = text.rstrip()
    return text if text.endswith((".", ":", "!", "?")) else f"{text}."
