"""A session's engine state: its row lock, status, phase, gate, usage and round progress.

Every change records its event (``event_emit``) in the caller's transaction. The writers
expect the session row locked with :func:`session_lock` (the one lock order: the session row
first, then the rows under it).
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F

from sessions_app import events
from sessions_app.engine.checklist import gate_state
from sessions_app.engine.context import SessionContext
from sessions_app.models import Contribution, DesignSession, Round

SESSION_RELATED = ("project", "prd", "inventory_revision", "template")
"""The rows a session's engine work reads with it."""


def session_lock(session_id: int, *, known: DesignSession | None = None) -> DesignSession:
    """The session row, locked until the transaction ends, with its ``SESSION_RELATED`` rows.
    ``known``: a copy of the session this process read a moment ago with those rows (a round's
    claim): the row alone is read again, and each related row the locked row still points at is
    taken from the copy (as the round's calls saw it) instead of being joined in again.
    Precondition: inside ``transaction.atomic``."""
    if known is None or known.pk != session_id:
        return DesignSession.objects.select_for_update(of=("self",)).select_related(*SESSION_RELATED).get(pk=session_id)
    session = DesignSession.objects.select_for_update().get(pk=session_id)
    for name in SESSION_RELATED:
        field = DesignSession._meta.get_field(name)
        if field.is_cached(known) and getattr(session, field.attname) == getattr(known, field.attname):
            field.set_cached_value(session, field.get_cached_value(known))
    return session


def session_hold(session_id: int) -> None:
    """Lock the session row without reading it (for writers that need the lock order, not the
    session: recording calls' starts and results). Precondition: inside ``transaction.atomic``."""
    list(DesignSession.objects.select_for_update().filter(pk=session_id).values_list("pk", flat=True))


def status_set(session: DesignSession, status: str, reason: str = "") -> None:
    """Set the status and its reason a person reads; no event when neither changes."""
    if session.status == status and session.status_reason == reason:
        return
    session.status, session.status_reason = status, reason
    session.save(update_fields=["status", "status_reason", "updated_at"])
    events.event_emit(session_id=session.pk, event=events.StatusChanged(status=status, reason=reason))


def phase_set(session: DesignSession, phase: str) -> None:
    if session.phase == phase:
        return
    session.phase = phase
    session.save(update_fields=["phase", "updated_at"])
    events.event_emit(session_id=session.pk, event=events.PhaseChanged(phase=phase))


def gate_refresh(
    session: DesignSession, ctx: SessionContext | None = None, *, synthesized: bool = False,
    delivered: frozenset[str] = frozenset(), confirmed: bool | None = None,
) -> dict[str, bool]:
    """Compute the design gate's checklist again and record it when it changed (``synthesized``,
    ``delivered`` and ``confirmed``: what the caller knows, as :func:`gate_state` takes it)."""
    gate = gate_state(
        session, ctx or SessionContext.load(session), synthesized=synthesized, delivered=delivered, confirmed=confirmed
    )
    if gate != session.gate:
        session.gate = gate
        session.save(update_fields=["gate", "updated_at"])
        events.event_emit(session_id=session.pk, event=events.GateChanged(gate=gate))
    return gate


def budget_spent(session: DesignSession) -> bool:
    if session.budget_tokens is not None and session.tokens_in + session.tokens_out >= session.budget_tokens:
        return True
    return session.budget_cost is not None and session.cost >= session.budget_cost


def usage_add(
    session_id: int, *, tokens_in: int, tokens_out: int, cost: Decimal, held: DesignSession | None = None
) -> None:
    """Add one call's usage to the session's totals (an UPDATE, safe for concurrent calls).
    ``held``: the caller's copy of the row, read under its lock, kept in step."""
    DesignSession.objects.filter(pk=session_id).update(
        tokens_in=F("tokens_in") + tokens_in, tokens_out=F("tokens_out") + tokens_out, cost=F("cost") + cost
    )
    if held is not None:
        held.tokens_in += tokens_in
        held.tokens_out += tokens_out
        held.cost += cost


def specialist_members(session: DesignSession) -> list[dict]:
    """The team's specialists (the team snapshot without its USER slots)."""
    return [m for m in session.team if not m.get("is_user")]


def attempts_latest(rnd: Round, contributions: list[Contribution] | None = None) -> list[Contribution]:
    """Each addressed specialist's latest attempt in the round (a re-run replaces a failure).
    ``contributions``: the round's contributions in ``attempt, id`` order, when the caller has read them."""
    if contributions is None:
        contributions = rnd.contributions.filter(author=Contribution.Author.SPECIALIST).order_by("attempt", "id")
    by_slug: dict[str, Contribution] = {}
    for c in contributions:
        if c.author == Contribution.Author.SPECIALIST:
            by_slug[c.specialist_slug] = c
    return list(by_slug.values())


def round_progress(rnd: Round, contributions: list[Contribution] | None = None) -> tuple[int, int]:
    """(settled, addressed): how many latest attempts finished or failed, out of how many.
    ``contributions``: the round's contributions in ``attempt, id`` order, when the caller has read them."""
    latest: dict[str, str] = {}  # slug -> status of its latest attempt
    if contributions is None:  # two columns, no model instances
        rows = rnd.contributions.filter(author=Contribution.Author.SPECIALIST).order_by("attempt", "id")
        pairs = rows.values_list("specialist_slug", "status")
    else:
        pairs = [(c.specialist_slug, c.status) for c in contributions if c.author == Contribution.Author.SPECIALIST]
    for slug, status in pairs:
        latest[slug] = status
    done = sum(1 for status in latest.values() if status in (Contribution.Status.DONE, Contribution.Status.FAILED))
    return done, len(latest)
