"""The Maestro's state machine: phases, rounds, synthesis, key questions and gates.

Plain Python over the ORM. Every write is a ``@transaction.atomic`` service that records the
events it causes (``event_emit``) and enqueues specialist calls on commit, so the same code is
driven synchronously in tests (eager Celery) and asynchronously by workers.
"""

from __future__ import annotations

from collections import Counter

from django.db import transaction
from django.utils import timezone

from sessions_app import events
from sessions_app.design import services as design
from sessions_app.design.brief import brief_build, brief_text
from sessions_app.design.designer import checks_for
from sessions_app.design.drafts import assign_tasks, feedback_drafts, route_by_design
from sessions_app.design.plan import plan_merge
from sessions_app.design.proposal import EdgeConflict, diff_is_empty, merge, proposal_diff, proposal_lines
from sessions_app.design.questions import edge_conflict_question, grounds_json, session_questions
from sessions_app.design.schema import EdgeChange, PlanItem, ProposalChanges
from sessions_app.engine import messages
from sessions_app.engine.context import SessionContext
from sessions_app.engine.dispatch import dispatcher
from sessions_app.engine.gate import DESIGN_GATE, DISCOVERY_INPUT, VALIDATION_GATE, gate_state
from sessions_app.engine.state import (
    attempts_latest,
    budget_spent,
    gate_refresh,
    phase_set,
    round_progress,
    session_lock,
    specialist_members,
    status_set,
)
from sessions_app.models import (
    Contribution,
    DesignSession,
    KeyQuestion,
    Phase,
    Position,
    Round,
    Synthesis,
    ValidationPoint,
)

S = DesignSession.Status
PRD_QUESTION = "What PRD id/link should we attach?"

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
MAX_FOLLOW_UP_SPECIALISTS = 3


# -- helpers ---------------------------------------------------------------------------------


def _next_round_number(session: DesignSession) -> int:
    last = session.rounds.order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


# -- start -----------------------------------------------------------------------------------


def begin(session: DesignSession) -> None:
    """Phase 1, Team Assembly: the Maestro's assembly message, then Pattern Discovery.

    Precondition: the session row is locked and has a PRD."""
    ctx = SessionContext.load(session)
    status_set(session, S.RUNNING)
    brief = brief_build(
        requirement=session.requirement, prd_reference=session.prd.reference, prd_title=session.prd.title,
        prd_body=session.prd.body or "", project_constraints=session.project.constraints, cluster=ctx.cluster,
    )
    design.brief_record(session=session, brief=brief)
    assembly = Round.objects.create(
        session=session, number=_next_round_number(session), phase=Phase.ASSEMBLY, kind=Round.Kind.ASSEMBLY,
        status=Round.Status.DONE, finished_at=timezone.now(),
    )
    events.event_emit(session_id=session.pk, event=events.RoundStarted(round_id=assembly.pk))
    members = [(m["name"], m["role"]) for m in session.team]
    text = messages.assembly_message(
        team_name=session.team_name,
        requirement=session.requirement,
        cluster_line=ctx.cluster_line(),
        constraints=session.project.constraints,
        members=members,
        prd_reference=session.prd.reference,
        brief=brief_text(brief),
    )
    assembly.brief = text
    assembly.save(update_fields=["brief"])
    maestro = Contribution.objects.create(
        session=session, round=assembly, author=Contribution.Author.MAESTRO, author_name="Maestro",
        text=text, status=Contribution.Status.DONE, provider="maestro", finished_at=timezone.now(),
    )
    events.event_emit(session_id=session.pk, event=events.ContributionFinished(contribution_id=maestro.pk, round_id=assembly.pk))
    phase_set(session, Phase.DISCOVERY)
    if any(m.get("is_user") for m in session.team):
        open_point(
            session,
            gate=DISCOVERY_INPUT,
            kind=ValidationPoint.Kind.INPUT,
            title="Business requirements for the team",
            body=(
                f"USER, what business capability do we need?\n\nRequirement as stated: {session.requirement.strip()}\n\n"
                "Tell the team what must be true for this to solve your need: capabilities, expected load, latency, "
                "and anything the requirement leaves out. Your answer joins the next briefs."
                + ("\n\nThe brief leaves these open:\n" + "\n".join(f"- {q}" for q in brief.questions) if brief.questions else "")
            ),
            questions=[*brief.questions, "Which business capabilities must this provide?", "Performance or scaling expectations?"][:8],
            round=assembly,
        )
    open_round(session, kind=Round.Kind.ANALYSIS, ctx=ctx)


# -- rounds ----------------------------------------------------------------------------------


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
        session=session, number=_next_round_number(session), phase=session.phase, kind=kind,
        addressed_to=[m["specialist"] for m in members], status=Round.Status.RUNNING,
        brief=f"{_sentence(mission)}\nReport: {_sentence(report)}", feedback=feedback.strip(),
    )
    events.event_emit(session_id=session.pk, event=events.RoundStarted(round_id=rnd.pk))
    involved = ctx.involved_services
    created = []
    for member in members:
        brief = messages.deployment_brief(
            agent=member["name"],
            team_name=session.team_name,
            feature=session.title,
            mission=f"{_sentence(member['role'])} {mission}",
            cluster_state=ctx.cluster_line(),
            patterns=ctx.patterns_line(),
            integrate_with=involved,
            report=report,
        )
        created.append(contribution_pending(session, rnd, member, brief, attempt=1))
    events.event_emit(session_id=session.pk, event=events.RoundProgress(round_id=rnd.pk, done=0, total=len(created)))
    status_set(session, S.RUNNING)
    dispatcher().contributions([c.pk for c in created])
    return rnd


def contribution_pending(session: DesignSession, rnd: Round, member: dict, brief: str, *, attempt: int) -> Contribution:
    return Contribution.objects.create(
        session=session, round=rnd, author=Contribution.Author.SPECIALIST,
        specialist_id=member.get("specialist_id"), specialist_slug=member["specialist"],
        author_name=member["name"], color=member.get("color", ""), brief=brief,
        status=Contribution.Status.PENDING, attempt=attempt,
        idempotency_key=f"round:{rnd.pk}:{member['specialist']}:attempt:{attempt}",
    )


def round_maybe_complete(rnd: Round) -> bool:
    """Called after a contribution settles. Exactly one caller wins the running→synthesizing
    transition (a conditional UPDATE), and that caller enqueues the synthesis on commit."""
    done, total = round_progress(rnd)
    events.event_emit(session_id=rnd.session_id, event=events.RoundProgress(round_id=rnd.pk, done=done, total=total))
    if done < total:
        return False
    won = Round.objects.filter(pk=rnd.pk, status=Round.Status.RUNNING).update(status=Round.Status.SYNTHESIZING)
    if won:
        dispatcher().synthesis(rnd.pk)
    return bool(won)


# -- synthesis and advancing ------------------------------------------------------------------


@transaction.atomic
def round_synthesize(*, round_id: int) -> Synthesis | None:
    rnd = Round.objects.select_related("session").get(pk=round_id)
    session = session_lock(rnd.session_id)
    rnd.refresh_from_db()
    if rnd.status != Round.Status.SYNTHESIZING:
        return None  # a duplicate delivery, or the round was re-opened
    ctx = SessionContext.load(session)
    latest = attempts_latest(rnd)
    failed = [c for c in latest if c.status == Contribution.Status.FAILED]
    done = [c for c in latest if c.status == Contribution.Status.DONE]
    if rnd.kind in (Round.Kind.DESIGN, Round.Kind.DISCUSSION, Round.Kind.FOLLOW_UP):
        _merge_proposal(session, rnd, ctx, done)
    elif rnd.kind == Round.Kind.PLANNING:
        _merge_plan(session, rnd, ctx, done)
    elif rnd.kind == Round.Kind.VALIDATION:
        _merge_checklist(session, ctx, done)
    synthesis = _write_synthesis(session, rnd, ctx, latest)
    rnd.status = Round.Status.DONE
    rnd.finished_at = timezone.now()
    rnd.save(update_fields=["status", "finished_at"])
    if rnd.kind in (Round.Kind.DESIGN, Round.Kind.DISCUSSION):
        _tally_positions(session, rnd)
        apply_decided_edges(session, ctx, rnd=rnd)
    gate_refresh(session, ctx)
    if session.status in (S.CANCELLED, S.COMPLETED):
        return synthesis
    if session.mode == DesignSession.Mode.TASK:
        session_complete(session, ctx)  # a hub task is one specialist's answer; a failure is in its report
        return synthesis
    if failed:
        names = ", ".join(c.author_name for c in failed)
        status_set(
            session, S.AWAITING_USER,
            f"{names} could not contribute. Re-run them, or continue without them.",
        )
        return synthesis
    if session.status == S.PAUSED:
        return synthesis
    advance(session, ctx=ctx, after=rnd)
    return synthesis


# -- the design: proposal, plan, checklist ------------------------------------------------------


def _changes_of(c: Contribution) -> ProposalChanges:
    return ProposalChanges.model_validate((c.payload or {}).get("proposal_changes") or {})


def _decided_edges(session: DesignSession) -> dict[tuple[str, str], EdgeChange]:
    decided: dict[tuple[str, str], EdgeChange] = {}
    for q in session.key_questions.filter(key__startswith="edge:", state__in=[KeyQuestion.State.AGREED, KeyQuestion.State.DECIDED]):
        variant = (q.grounds.get("variants") or {}).get(q.chosen)
        if variant:
            edge = EdgeChange.model_validate(variant)
            decided[(edge.source, edge.target)] = edge
    return decided


def _merge_proposal(session: DesignSession, rnd: Round, ctx: SessionContext, done: list[Contribution]) -> None:
    """The Maestro's synthesis of the round's proposal changes into a new version; edges
    proposed in different ways become key questions instead of a silent pick."""
    base = design.proposal_latest(session)
    pairs = [(c.author_name, _changes_of(c)) for c in done]
    result = merge(design.proposal_content(base) if base else None, pairs, decided_edges=_decided_edges(session))
    for conflict in result.conflicts:
        _edge_question(session, rnd, conflict, done)
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
    existing = [PlanItem.model_validate({**p, "key": p.get("key") or f"plan:{p['order']}"}) for p in session.plan]
    added = [
        PlanItem(specialist=t_owner["slug"], service=t.service, task=t.task, acceptance=t.acceptance, key=t.key,
                 depends_on_keys=list(t.after))
        for t, t_owner in assign_tasks([t for d in drafts for t in d.tasks], team)
    ]
    if added:
        design.plan_record(session=session, plan=plan_merge(existing + added, drafts))


def _edge_question(session: DesignSession, rnd: Round, conflict: EdgeConflict, done: list[Contribution]) -> None:
    key, text, options, grounds = edge_conflict_question(conflict, specialist_members(session))
    if session.key_questions.filter(key=key).exists():
        return
    number = session.key_questions.count() + 1
    q = KeyQuestion.objects.create(
        session=session, ref=f"Q{number}", text=text[:300], options=options, key=key, grounds=grounds,
        state=KeyQuestion.State.CONFLICT,
    )
    by_name = {c.author_name: c for c in done}
    for option, (edge, names) in zip(options, conflict.variants, strict=True):
        for name in names:
            c = by_name.get(name)
            if c is not None:
                Position.objects.update_or_create(
                    question=q, round=rnd, specialist_slug=c.specialist_slug,
                    defaults={"contribution": c, "author_name": c.author_name, "option": option,
                              "rationale": f"proposed {edge.protocol} {edge.mode}" + (f" to {edge.purpose}" if edge.purpose else "")},
                )
    q.agreement = max(len(n) for _, n in conflict.variants) / max(1, sum(len(n) for _, n in conflict.variants))
    q.save(update_fields=["agreement"])
    events.event_emit(session_id=session.pk, event=events.KeyQuestionChanged(question_id=q.pk, state=q.state))


def apply_decided_edges(session: DesignSession, ctx: SessionContext, *, rnd: Round | None = None, user=None) -> None:
    """Agreed or decided edge questions change the proposal: a new version with the chosen edge."""
    decided = _decided_edges(session)
    latest = design.proposal_latest(session)
    if not decided or latest is None:
        return
    content = design.proposal_content(latest)
    edges = {(e.source, e.target): e for e in content.edges}
    changed = [key for key, edge in decided.items() if edges.get(key) != edge]
    if not changed:
        return
    edges.update({key: decided[key] for key in changed})
    new = content.model_copy(update={"edges": sorted(edges.values(), key=lambda e: (e.source, e.target))})
    who = f"decided by {user.get_username()}" if user is not None else "team consensus"
    design.proposal_record(
        session=session, content=new, inventory=ctx.inventory, round=rnd,
        reason=f"{', '.join(f'{a} → {b}' for a, b in changed)}: {who}",
        author_kind="user" if user is not None else "maestro",
        author_name=user.get_username() if user is not None else "Maestro",
    )
    ctx.refresh_proposal()


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


def _write_synthesis(session: DesignSession, rnd: Round, ctx: SessionContext, latest: list[Contribution]) -> Synthesis:
    from sessions_app.diagrams.ascii import render_ascii

    findings: list[tuple[str, str]] = []
    for c in latest:
        if c.status == Contribution.Status.FAILED:
            findings.append((c.author_name, f"no contribution ({c.error})"))
            continue
        summary = (c.payload or {}).get("summary") or _first_line(c.text)
        findings.append((c.author_name, summary))
    for user_msg in Contribution.objects.filter(round=rnd, author=Contribution.Author.USER).values_list("text", flat=True):
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
        ascii_state = render_ascii(ctx.inventory, focus=session.title, highlight_services=set(), timestamp=stamp)
    else:
        ascii_state = "(no inventory imported)"
    text = messages.synthesis_message(
        number=rnd.number, ascii_state=ascii_state, findings=findings, pattern_checks=checks,
        integration_plan=plan, requested_from=requested,
    )
    synthesis, _ = Synthesis.objects.update_or_create(
        round=rnd,
        defaults={
            "session": session, "text": text, "ascii": ascii_state, "pattern_checks": checks,
            "integration_plan": plan, "requested_from": requested,
        },
    )
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


def advance(session: DesignSession, *, ctx: SessionContext, after: Round | None = None) -> None:
    """Move the session forward from wherever it stands. Precondition: session row locked."""
    if session.phase == Phase.DISCOVERY:
        phase_set(session, Phase.DESIGN)
        _create_key_questions(session, ctx)
        open_round(session, kind=Round.Kind.DESIGN, ctx=ctx, note=_questions_note(session))
        return
    if session.phase == Phase.DESIGN and after is not None and after.kind == Round.Kind.FOLLOW_UP:
        _escalate_or_gate(session, ctx, discuss=False)
        return
    if session.phase == Phase.DESIGN:
        _escalate_or_gate(session, ctx, discuss=True)
        return
    if session.phase == Phase.PLANNING:
        phase_set(session, Phase.VALIDATION)
        open_round(session, kind=Round.Kind.VALIDATION, ctx=ctx, note=f"Proposal v{ctx.proposal.version if ctx.proposal else 0} and the plan of {len(session.plan)} tasks")
        return
    if session.phase == Phase.VALIDATION and after is not None and after.kind in (Round.Kind.FOLLOW_UP, Round.Kind.VALIDATION):
        open_validation_gate(session, ctx)


def _escalate_or_gate(session: DesignSession, ctx: SessionContext, *, discuss: bool) -> None:
    """Disputed questions get bounded discussion rounds, then go to the user; otherwise the
    design waits at its gate (open questions are listed there for the user to decide)."""
    conflicts = list(session.key_questions.filter(state=KeyQuestion.State.CONFLICT))
    discussable = [q for q in conflicts if discuss and q.discussion_rounds < session.discussion_limit]
    if discussable:
        for q in discussable:
            q.discussion_rounds += 1
            q.save(update_fields=["discussion_rounds"])
        open_round(session, kind=Round.Kind.DISCUSSION, ctx=ctx, note=_questions_note(session, only=discussable))
        return
    if conflicts:
        refs = ", ".join(q.ref for q in conflicts)
        what = "it" if len(conflicts) == 1 else "them"
        status_set(session, S.AWAITING_USER, f"The team could not agree on {refs}. Decide {what} to continue.")
        return
    open_design_gate(session, ctx)


# -- key questions -----------------------------------------------------------------------------


def _create_key_questions(session: DesignSession, ctx: SessionContext) -> None:
    if session.key_questions.exists():
        return
    slug = session.template.slug if session.template else ""
    for number, spec in enumerate(session_questions(ctx.drafts(), ctx.cluster, template_slug=slug), start=1):
        q = KeyQuestion.objects.create(
            session=session, ref=f"Q{number}", text=spec.text[:300], options=list(spec.options), key=spec.key,
            grounds=grounds_json(spec),
        )
        events.event_emit(session_id=session.pk, event=events.KeyQuestionChanged(question_id=q.pk, state=q.state))


def _questions_note(session: DesignSession, only: list[KeyQuestion] | None = None) -> str:
    questions = only if only is not None else list(session.key_questions.all())
    lines = [f"{q.ref}: {q.text} Options: " + " | ".join(q.options) for q in questions]
    return "Key decisions needed:\n" + "\n".join(lines)


def _tally_positions(session: DesignSession, rnd: Round) -> None:
    threshold = session.consensus_threshold
    for q in session.key_questions.exclude(state=KeyQuestion.State.DECIDED):
        votes = Counter(Position.objects.filter(question=q, round=rnd).values_list("option", flat=True))
        total = sum(votes.values())
        if not total:
            continue  # nobody had evidence: the question stays open for the user
        ranked = votes.most_common()
        top_option, top_count = ranked[0]
        tie = len(ranked) > 1 and ranked[1][1] == top_count
        agreement = top_count / total
        if tie or agreement < threshold:
            state = KeyQuestion.State.CONFLICT
        elif total < 2:
            state = KeyQuestion.State.OPEN  # one voice is a recommendation, not a consensus
        else:
            state = KeyQuestion.State.AGREED
        chosen = top_option if state == KeyQuestion.State.AGREED else ""
        if rnd.kind == Round.Kind.DISCUSSION and state == KeyQuestion.State.CONFLICT and _unmoved(q, rnd, votes):
            # Nobody changed their position: another round would only repeat it. The user decides.
            q.discussion_rounds = max(q.discussion_rounds, session.discussion_limit)
            q.save(update_fields=["discussion_rounds"])
        if (q.state, q.chosen, round(q.agreement, 4)) != (state, chosen, round(agreement, 4)):
            chosen = chosen if state == KeyQuestion.State.AGREED else ""
            q.state, q.chosen, q.agreement = state, chosen, agreement
            q.save(update_fields=["state", "chosen", "agreement"])
            events.event_emit(session_id=session.pk, event=events.KeyQuestionChanged(question_id=q.pk, state=state))
            if state == KeyQuestion.State.AGREED:
                from sessions_app.decisions.services import decision_from_key_question

                decision_from_key_question(question=q)  # consensus becomes a proposed ADR


def _unmoved(q: KeyQuestion, rnd: Round, votes: Counter) -> bool:
    previous = Position.objects.filter(question=q, round__number__lt=rnd.number).order_by("-round__number")
    last_round = previous.values_list("round_id", flat=True).first()
    if last_round is None:
        return False
    return Counter(previous.filter(round_id=last_round).values_list("option", flat=True)) == votes


def key_decisions(session: DesignSession) -> list[str]:
    decisions = []
    for q in session.key_questions.all():
        if q.state in (KeyQuestion.State.AGREED, KeyQuestion.State.DECIDED):
            how = "decided by the user" if q.state == KeyQuestion.State.DECIDED else f"consensus {q.agreement:.0%}"
            rationale = (
                Position.objects.filter(question=q, option=q.chosen).exclude(rationale="").values_list("rationale", flat=True).first()
            )
            decisions.append(f"{q.text} → {q.chosen} ({how}){': ' + rationale if rationale else ''}")
    return decisions


# -- gates -------------------------------------------------------------------------------------


def open_point(
    session: DesignSession, *, gate: str, kind: str, title: str, body: str, questions: list[str], round: Round | None = None
) -> ValidationPoint:
    from sessions_app.validation import validation_open

    return validation_open(session, gate=gate, kind=kind, title=title, body=body, questions=questions, round=round)


def _cancel_open_points(session: DesignSession, gate: str) -> None:
    for point in session.validation_points.filter(gate=gate, state=ValidationPoint.State.OPEN):
        point.state = ValidationPoint.State.CANCELLED
        point.closed_at = timezone.now()
        point.save(update_fields=["state", "closed_at"])
        events.event_emit(session_id=session.pk, event=events.ValidationClosed(point_id=point.pk, state=point.state))


def _seen_version(session: DesignSession) -> int:
    """The proposal version shown at the latest closed approval point (what a person last saw)."""
    point = (
        session.validation_points.filter(kind=ValidationPoint.Kind.APPROVAL)
        .exclude(state__in=[ValidationPoint.State.OPEN, ValidationPoint.State.CANCELLED])
        .order_by("-opened_at").first()
    )
    if point is None:
        return 0
    return (
        session.proposals.filter(created_at__lte=point.opened_at).order_by("-version").values_list("version", flat=True).first() or 0
    )


def _validation_body(session: DesignSession, ctx: SessionContext, gate: str = DESIGN_GATE) -> str:
    proposal = ctx.proposal
    if proposal is not None and proposal.diagram_version is not None:
        diagram = proposal.diagram_version.ascii
    else:
        synthesis = Synthesis.objects.filter(session=session).order_by("-round__number").first()
        diagram = "\n".join(ctx.integration_plan()) or (synthesis.ascii if synthesis else "(no diagram)")
    sections: list[tuple[str, list[str]]] = []
    content = design.proposal_content(proposal)
    seen = _seen_version(session)
    if proposal is not None and seen and seen < proposal.version:
        old = design.proposal_content(session.proposals.filter(version=seen).first())
        diff = proposal_diff(old, content)
        if not diff_is_empty(diff):
            sections.append((
                f"What changed since v{seen}, the version you last saw (now v{proposal.version})",
                [f"+ {x}" for x in diff["added"]] + [f"~ {x}" for x in diff["changed"]] + [f"- {x}" for x in diff["removed"]],
            ))
    if gate == DESIGN_GATE:
        if proposal is not None:
            sections.append((f"Proposal v{proposal.version} ({proposal.reason})", proposal_lines(content)))
        undecided = session.key_questions.filter(state__in=[KeyQuestion.State.OPEN, KeyQuestion.State.CONFLICT])
        sections.append(("Open questions for you (decide them on the key questions panel)",
                         [f"{q.ref}: {q.text} Options: {' | '.join(q.options)}" for q in undecided]))
        brief = ctx.brief
        if brief is not None:
            sections.append(("Conflicts in the brief", [c.text for c in brief.conflicts]))
    else:
        sections.append((f"Implementation plan ({len(session.plan)} tasks)", [
            f"{p['order']}. [{p['specialist'] or 'team'}] {p['service']}: {p['task']}"
            + (f" (after {', '.join(map(str, p['depends_on']))})" if p.get("depends_on") else "")
            for p in session.plan
        ]))
        sections.append(("Integration checklist", [f"[ ] {c['check']}" for c in session.checklist]))
        if proposal is not None:
            sections.append((f"Proposal v{proposal.version}", [f"{len(content.services)} services, {len(content.edges)} edges, {len(content.events)} events changed; risks: " + ("; ".join(content.risks) or "none")]))
    return messages.validation_message(feature=session.title, diagram=diagram, decisions=key_decisions(session), sections=sections)


APPROVAL_GATES = {
    DESIGN_GATE: (
        "Design Before Development: confirm the design",
        "The design waits for your validation before implementation planning.",
    ),
    VALIDATION_GATE: (
        "Integration Validation: does the planned integration work for you?",
        "The implementation plan waits for your validation.",
    ),
}


def _open_approval_gate(session: DesignSession, ctx: SessionContext, gate: str) -> ValidationPoint:
    """Replace any open point of this gate with a fresh one (the User Validation Points
    template on the latest synthesis) and wait for the people who may answer it."""
    title, reason = APPROVAL_GATES[gate]
    _cancel_open_points(session, gate)
    point = open_point(
        session, gate=gate, kind=ValidationPoint.Kind.APPROVAL, title=title,
        body=_validation_body(session, ctx, gate), questions=list(messages.VALIDATION_QUESTIONS),
        round=session.rounds.order_by("-number").first(),
    )
    status_set(session, S.AWAITING_USER, reason)
    return point


def open_design_gate(session: DesignSession, ctx: SessionContext) -> ValidationPoint:
    return _open_approval_gate(session, ctx, DESIGN_GATE)


def open_validation_gate(session: DesignSession, ctx: SessionContext) -> ValidationPoint:
    return _open_approval_gate(session, ctx, VALIDATION_GATE)


UNMET_GATE = "The design cannot be approved yet: {items}. Request changes so the team can close these gaps."


def gate_passed(
    session: DesignSession, point: ValidationPoint, verdict: str, feedback: str, user, *, response=None
) -> None:
    """The engine's gate API: a validation point closed with an outcome. Precondition: session locked."""
    ctx = SessionContext.load(session)
    if point.gate == DISCOVERY_INPUT:
        if feedback.strip():
            user_message_record(session, feedback, user)
        return
    if verdict == "approve":
        if point.gate == DESIGN_GATE:
            if response is not None:
                from sessions_app.decisions.services import decisions_accept_from_validation

                approvers = [r.user for r in point.responses.filter(verdict="approve").select_related("user")]
                decisions_accept_from_validation(point=point, response=response, approvers=approvers)
            gate_refresh(session, ctx)
            phase_set(session, Phase.PLANNING)
            open_round(session, kind=Round.Kind.PLANNING, ctx=ctx, note=_decisions_note(session))
        elif point.gate == VALIDATION_GATE:
            session_complete(session, ctx)
        return
    if feedback.strip():
        user_message_record(session, feedback, user)
    if verdict == "reject":
        phase_set(session, Phase.DESIGN)
        open_round(session, kind=Round.Kind.DESIGN, ctx=ctx, note="The user rejected the design: " + feedback.strip())
        return
    follow_up(session, ctx, feedback)


def follow_up(session: DesignSession, ctx: SessionContext, feedback: str) -> Round | None:
    """A follow-up round for the USER's feedback, addressed to the specialists it concerns
    (the router, on the feedback and the parts of the proposal it names), at most three."""
    from teams_app.router import route_feedback

    members = specialist_members(session)
    brief = ctx.brief
    addressed = route_by_design(feedback_drafts(brief, ctx.cluster, feedback), members) if brief else []
    if not addressed:
        content = design.proposal_content(ctx.proposal)
        words = [w for w in feedback.lower().split() if len(w) > 4]
        named = [line for line in proposal_lines(content) if any(w in line.lower() for w in words)]
        addressed = route_feedback(text=" ".join([feedback, *named[:6]]), candidates=members)
    return open_round(
        session, kind=Round.Kind.FOLLOW_UP, ctx=ctx, addressed_to=addressed[:MAX_FOLLOW_UP_SPECIALISTS],
        note="USER: " + feedback.strip(), feedback=feedback,
    )


def unmet_gate_items(session: DesignSession, ctx: SessionContext) -> list[str]:
    from sessions_app.engine.gate import GATE_ITEMS

    gate = gate_state(session, ctx)
    return [label for key, label in GATE_ITEMS if key != "user_requirements_confirmed" and not gate[key]]


def _sentence(text: str) -> str:
    """``text`` ending with exactly one full stop (roles and missions may bring their own)."""
    text = text.rstrip()
    return text if text.endswith((".", ":", "!", "?")) else f"{text}."


def _decisions_note(session: DesignSession) -> str:
    decisions = key_decisions(session)
    return "Design agreed:\n" + "\n".join(f"- {d}" for d in decisions) if decisions else "Design agreed."


def user_message_record(session: DesignSession, text: str, user) -> Contribution:
    rnd = session.rounds.order_by("-number").first()
    contribution = Contribution.objects.create(
        session=session, round=rnd, author=Contribution.Author.USER, user=user,
        author_name=f"USER ({user.get_username()})" if user else "USER", text=text.strip(),
        status=Contribution.Status.DONE, finished_at=timezone.now(),
    )
    events.event_emit(session_id=session.pk, event=events.MessagePosted(contribution_id=contribution.pk, round_id=rnd.pk))
    return contribution


def close_open_points(session: DesignSession) -> None:
    """A session that ends (completed or cancelled) closes the points still open, such as the
    optional business-requirements input, so nobody's waiting list keeps them.
    Precondition: session row locked."""
    for point in session.validation_points.filter(state=ValidationPoint.State.OPEN):
        point.state, point.closed_at = ValidationPoint.State.CANCELLED, timezone.now()
        point.save(update_fields=["state", "closed_at"])
        events.event_emit(session_id=session.pk, event=events.ValidationClosed(point_id=point.pk, state=point.state))


def session_complete(session: DesignSession, ctx: SessionContext) -> None:
    from sessions_app.reports import final_report

    close_open_points(session)
    phase_set(session, Phase.COMPLETED)
    status_set(session, S.COMPLETED)  # first, so the report and its continuation block say so
    session.completed_at = timezone.now()
    session.report = final_report(session, ctx)
    session.save(update_fields=["completed_at", "report", "updated_at"])
