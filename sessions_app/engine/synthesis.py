"""Synthesis: the Maestro's summary of a finished round, and the design it merges from the
round's contributions (proposal versions, the implementation plan, the integration checklist).

:func:`synthesis_write` runs once per round, in the transaction that records the round's last
result (or, when that failed, later through :func:`round_synthesize`, which the sweeper
delivers; a duplicate delivery does nothing), and the session then moves on
(:func:`~sessions_app.engine.flow.after_round`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from sessions_app import events
from sessions_app.design import services as design
from sessions_app.design.designer import checks_for
from sessions_app.design.drafts import assign_tasks, feedback_drafts
from sessions_app.design.plan import plan_merge, plan_stored_items
from sessions_app.design.proposal import merge
from sessions_app.design.schema import PlanItem, ProposalChanges
from sessions_app.diagrams.ascii import stamp_line
from sessions_app.engine import messages
from sessions_app.engine.checklist import design_confirmed
from sessions_app.engine.consensus import apply_decided_edges, edge_question_open, edges_decided, positions_tally
from sessions_app.engine.context import SessionContext
from sessions_app.engine.flow import after_round
from sessions_app.engine.state import attempts_latest, gate_refresh, session_lock, specialist_members
from sessions_app.models import Contribution, DesignSession, KeyQuestion, Round, Synthesis


def round_synthesize(*, round_id: int) -> Synthesis | None:
    """Write the round's synthesis, then take the session's next step, each in a transaction of
    its own: the synthesis reaches the pages as soon as it is written, not after the next round
    has been opened. A delivery that finds the synthesis written (a duplicate, or one sent again
    by the sweeper after a crash between the two) takes the next step if it is still due."""
    synthesis = synthesis_write(round_id)
    after_round(round_id=round_id)
    return synthesis


@dataclass
class SynthesisReads:
    """What a round's synthesis reads that only a writer holding the session's lock changes:
    read by :func:`synthesis_reads` under that lock, before the round's last results are
    there (a round's end waits for them in the open transaction), so the synthesis that
    follows in the same transaction does not read them again."""

    ctx: SessionContext  # of the locked session, with its proposal read
    confirmed: bool  # design_confirmed


def synthesis_reads(session: DesignSession) -> SynthesisReads:
    """Read :class:`SynthesisReads` for ``session``. Precondition: its row is locked
    (:func:`~sessions_app.engine.state.session_lock`) until the synthesis is written."""
    ctx = SessionContext.load(session)
    ctx.proposal  # noqa: B018 - read now
    return SynthesisReads(ctx=ctx, confirmed=design_confirmed(session))


def synthesis_write(
    round_id: int, *, session_id: int | None = None, rnd: Round | None = None, session: DesignSession | None = None,
    settled: bool = False, contributions: list[Contribution] | None = None, reads: SynthesisReads | None = None,
) -> Synthesis | None:
    """Write the round's synthesis and merge the design, mark the round done with its next step
    due (``advance_due``, taken by :func:`~sessions_app.engine.flow.after_round`). Nothing when
    the round is no longer synthesizing. Inside a transaction it is a savepoint of its own: a
    failure undoes only what it wrote, its events included. ``session_id``: the round's session,
    when the caller knows it; ``session`` and ``rnd``: the session and the round as read (and
    changed) in this transaction under the session's lock, when the caller holds it (one read
    fewer each). ``settled``: the caller has just seen, under that lock, every call of the
    round settled, so a round still running is synthesized too (it goes from running to done).
    ``contributions``: the round's (every author's, in ``attempt, id`` order), read with ``rnd``.
    ``reads``: :func:`synthesis_reads` of ``session``, read in this transaction, when the caller has them."""
    try:
        return _synthesis_write_locked(round_id, session_id, rnd, session, settled, contributions, reads)
    except _RoundMoved:  # changed by a writer that did not hold the session's lock: undone, nothing to do
        return None


class _RoundMoved(Exception):
    """The round was no longer in the status it was read in when the synthesis marked it done."""


@transaction.atomic
def _synthesis_write_locked(
    round_id: int, session_id: int | None, rnd: Round | None, session: DesignSession | None, settled: bool,
    contributions: list[Contribution] | None, reads: SynthesisReads | None,
) -> Synthesis | None:
    if session_id is None:
        session_id = Round.objects.values_list("session_id", flat=True).get(pk=round_id)
    if session is None or session.pk != session_id:
        session = session_lock(session_id)
    if rnd is None or rnd.pk != round_id:
        rnd, contributions = Round.objects.get(pk=round_id), None  # read under the lock
    due = (Round.Status.SYNTHESIZING, Round.Status.RUNNING) if settled else (Round.Status.SYNTHESIZING,)
    if rnd.status not in due:
        return None  # a duplicate delivery, or the round was re-opened
    if reads is not None and reads.ctx.session is not session:
        reads = None  # read for another copy of the row: read again
    with events.events_gathered(session.pk):
        return _synthesis_write(session, rnd, contributions, reads)


def _synthesis_write(
    session: DesignSession, rnd: Round, contributions: list[Contribution] | None, reads: SynthesisReads | None
) -> Synthesis:
    ctx = reads.ctx if reads is not None else SessionContext.load(session)
    if contributions is None:
        contributions = list(rnd.contributions.order_by("attempt", "id"))  # the specialists' and the user's
    latest = attempts_latest(rnd, contributions)
    said = [c.text for c in contributions if c.author == Contribution.Author.USER]
    done = [c for c in latest if c.status == Contribution.Status.DONE]
    if rnd.kind in (Round.Kind.DESIGN, Round.Kind.DISCUSSION, Round.Kind.FOLLOW_UP):
        _merge_proposal(session, rnd, ctx, done)
    elif rnd.kind == Round.Kind.PLANNING:
        _merge_plan(session, rnd, ctx, done)
    elif rnd.kind == Round.Kind.VALIDATION:
        _merge_checklist(session, ctx, done)
    synthesis = _write_synthesis(session, rnd, ctx, latest, said)
    # From the status it was read in (running, when written with the round's last result), in one
    # conditional UPDATE.
    finished = {"status": Round.Status.DONE, "finished_at": timezone.now(), "advance_due": True}
    if not Round.objects.filter(pk=rnd.pk, status=rnd.status).update(**finished):
        raise _RoundMoved(rnd.pk)
    for name, value in finished.items():
        setattr(rnd, name, value)
    if rnd.kind in (Round.Kind.DESIGN, Round.Kind.DISCUSSION):
        positions_tally(session, rnd)
        apply_decided_edges(session, ctx, rnd=rnd)
    gate_refresh(
        session, ctx, synthesized=True, delivered=frozenset(c.specialist_slug for c in done),
        confirmed=reads.confirmed if reads is not None else None,
    )
    return synthesis


def _changes_of(c: Contribution) -> ProposalChanges:
    return ProposalChanges.model_validate((c.payload or {}).get("proposal_changes") or {})


def _merge_proposal(session: DesignSession, rnd: Round, ctx: SessionContext, done: list[Contribution]) -> None:
    """The Maestro's synthesis of the round's proposal changes into a new version; edges
    proposed in different ways become key questions instead of a silent pick."""
    base = ctx.proposal  # the latest version: only writers holding the session's lock add one
    pairs = [(c.author_name, _changes_of(c)) for c in done]
    result = merge(design.proposal_content(base) if base else None, pairs, decided_edges=edges_decided(session))
    for conflict in result.conflicts:
        edge_question_open(session, rnd, conflict, done)
    if not result.changed:
        return
    if rnd.kind == Round.Kind.FOLLOW_UP:
        reason = f"Round {rnd.number} follow-up answering the USER: {rnd.feedback[:160]}"
    else:
        reason = f"Round {rnd.number} ({rnd.get_kind_display()}): merged the changes of {', '.join(result.contributors)}"
    if result.conflicts:
        reason += "; " + ", ".join(f"{c.source} → {c.target}" for c in result.conflicts) + " in dispute"
    design.proposal_record(
        session=session, content=result.content, inventory=ctx.inventory, reason=reason, round=rnd,
        contributors=result.contributors,
    )
    ctx.refresh_proposal()
    if rnd.kind == Round.Kind.FOLLOW_UP and session.plan and ctx.brief is not None:
        _replan_for_feedback(session, ctx, rnd.feedback)
    if rnd.kind == Round.Kind.FOLLOW_UP and session.checklist and ctx.brief is not None:
        _recheck_for_feedback(session, ctx, rnd.feedback)


def _recheck_for_feedback(session: DesignSession, ctx: SessionContext, feedback: str) -> None:
    """The integration checklist follows the changed proposal: the Maestro's derived checks are
    derived again; the specialists' own checks stay."""
    drafts = ctx.drafts() + feedback_drafts(ctx.brief, ctx.cluster, feedback)
    derived_sources = {"Maestro", *(d.label for d in drafts)}
    kept = [(c["check"], c["source"]) for c in session.checklist if c.get("source") not in derived_sources]
    proposal = design.proposal_content(ctx.proposal)
    derived = [(check, "Maestro") for check in checks_for([], proposal, ctx.brief, ctx.cluster)]
    derived += [(check, d.label) for d in drafts for check in d.checks]
    design.checklist_record(session=session, checks=derived + kept)


def _replan_for_feedback(session: DesignSession, ctx: SessionContext, feedback: str) -> None:
    """After planning, feedback that adds to the design adds its tasks to the plan, owned as
    the team's planning round would own them."""
    drafts = feedback_drafts(ctx.brief, ctx.cluster, feedback)
    team = [{"slug": m["specialist"], "name": m["name"], "focus": list(m.get("focus") or [])} for m in specialist_members(session)]
    existing = plan_stored_items(session.plan)
    added = [
        PlanItem(specialist=t_owner["slug"], service=t.service, task=t.task, acceptance=t.acceptance, key=t.key,
                 depends_on_keys=list(t.after))
        for t, t_owner in assign_tasks([t for d in drafts for t in d.tasks], team)
    ]
    if added:
        design.plan_record(session=session, plan=plan_merge(existing + added, drafts))


def _feedback_texts(session: DesignSession) -> list[str]:
    return [f for f in session.rounds.filter(kind=Round.Kind.FOLLOW_UP).order_by("number").values_list("feedback", flat=True) if f]


def _merge_plan(session: DesignSession, rnd: Round, ctx: SessionContext, done: list[Contribution]) -> None:
    items = [PlanItem.model_validate(i) for c in done for i in (c.payload or {}).get("plan_items") or []]
    brief = ctx.brief
    drafts = ctx.drafts() + ([d for f in _feedback_texts(session) for d in feedback_drafts(brief, ctx.cluster, f)] if brief else [])
    design.plan_record(session=session, plan=plan_merge(items, drafts))


def _merge_checklist(session: DesignSession, ctx: SessionContext, done: list[Contribution]) -> None:
    checks: list[tuple[str, str]] = []
    for c in done:
        checks += [(check, c.author_name) for check in (c.payload or {}).get("checks") or []]
    brief = ctx.brief
    if brief is not None and ctx.proposal is not None:
        proposal = design.proposal_content(ctx.proposal)
        checks += [(check, "Maestro") for check in checks_for([], proposal, brief, ctx.cluster)]
        for d in ctx.drafts():
            checks += [(check, d.label) for check in d.checks]
    design.checklist_record(session=session, checks=checks)


def _write_synthesis(
    session: DesignSession, rnd: Round, ctx: SessionContext, latest: list[Contribution], said: list[str]
) -> Synthesis:
    """``latest``: each specialist's latest attempt; ``said``: what the user wrote in the round."""
    findings: list[tuple[str, str]] = []
    for c in latest:
        if c.status == Contribution.Status.FAILED:
            findings.append((c.author_name, f"no contribution ({c.error})"))
            continue
        summary = (c.payload or {}).get("summary") or _first_line(c.text)
        findings.append((c.author_name, summary))
    for user_msg in said:
        findings.append(("USER", _first_line(user_msg)))
    checks = pattern_checks(ctx)
    requested = sorted({c.author_name for c in latest if c.status == Contribution.Status.FAILED})
    if rnd.kind in (Round.Kind.DESIGN, Round.Kind.DISCUSSION):
        conflicted = KeyQuestion.objects.filter(session=session, state=KeyQuestion.State.CONFLICT).exists()
        if conflicted:
            requested.append("USER (key questions in conflict)")
    plan = ctx.integration_plan()
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M UTC")
    if ctx.proposal is not None and ctx.proposal.diagram_version is not None:
        ascii_state = f"[CLUSTER-SESSION: {stamp}]\n{ctx.proposal.diagram_version.ascii.rstrip()}\n\nIntegration Focus: {session.title}"
    elif ctx.inventory.services:
        ascii_state = f"{stamp_line(stamp)}\n{ctx.cluster_drawing(focus=session.title)}"
    else:
        ascii_state = "(no inventory imported)"
    text = messages.synthesis_message(
        number=rnd.number, ascii_state=ascii_state, findings=findings, pattern_checks=checks,
        integration_plan=plan, requested_from=requested,
    )
    fields = {
        "session": session, "text": text, "ascii": ascii_state, "pattern_checks": checks,
        "integration_plan": plan, "requested_from": requested,
    }
    # One statement, written or written again (a round synthesized again after a re-run has its
    # synthesis already: it is updated in place, keeping its id and creation time).
    synthesis = Synthesis(round=rnd, **fields)
    Synthesis.objects.bulk_create([synthesis], update_conflicts=True, unique_fields=["round"], update_fields=list(fields))
    events.event_emit(session_id=session.pk, event=events.SynthesisReady(round_id=rnd.pk, synthesis_id=synthesis.pk))
    return synthesis


def _first_line(text: str) -> str:
    for line in (text or "").splitlines():
        line = line.strip().lstrip("#").strip()
        if line and not line.lower().startswith(("to ", "as part of")):
            return line[:240]
    return "(empty)"


def pattern_checks(ctx: SessionContext) -> list[dict]:
    checks: list[dict] = []
    pattern_findings = [f for f in ctx.findings if f.role == "pattern"]
    for f in pattern_findings:
        if f.severity == "info":
            checks.append({"ok": True, "text": f.why})
    for f in pattern_findings:
        if f.severity != "info":
            checks.append({"ok": False, "text": f.why})
    if not checks and ctx.inventory.services:
        checks.append({"ok": True, "text": f"Patterns consistent: {ctx.patterns_line()}"})
    return checks
