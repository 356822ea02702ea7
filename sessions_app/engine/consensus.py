"""Key questions and consensus: the questions a design asks, the team's positions on them,
what they agreed, and the proposal edges those decisions settle.

Precondition everywhere: the session row is locked (``state.session_lock``).
"""

from __future__ import annotations

from collections import Counter

from sessions_app import events
from sessions_app.decisions.services.hooks import decision_from_key_question
from sessions_app.design import services as design
from sessions_app.design.proposal import EdgeConflict
from sessions_app.design.questions import edge_conflict_question, grounds_json, session_questions
from sessions_app.design.schema import EdgeChange
from sessions_app.engine.context import SessionContext
from sessions_app.engine.state import specialist_members
from sessions_app.models import Contribution, DesignSession, KeyQuestion, Position, Round


def key_questions_create(session: DesignSession, ctx: SessionContext) -> None:
    if session.key_questions.exists():
        return
    slug = session.template.slug if session.template else ""
    for number, spec in enumerate(session_questions(ctx.drafts(), ctx.cluster, template_slug=slug), start=1):
        q = KeyQuestion.objects.create(
            session=session, ref=f"Q{number}", text=spec.text[:300], options=list(spec.options), key=spec.key,
            grounds=grounds_json(spec),
        )
        events.event_emit(session_id=session.pk, event=events.KeyQuestionChanged(question_id=q.pk, state=q.state))


def questions_note(session: DesignSession, only: list[KeyQuestion] | None = None) -> str:
    questions = only if only is not None else list(session.key_questions.all())
    lines = [f"{q.ref}: {q.text} Options: " + " | ".join(q.options) for q in questions]
    return "Key decisions needed:\n" + "\n".join(lines)


def positions_tally(session: DesignSession, rnd: Round) -> None:
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


def edges_decided(session: DesignSession) -> dict[tuple[str, str], EdgeChange]:
    decided: dict[tuple[str, str], EdgeChange] = {}
    for q in session.key_questions.filter(key__startswith="edge:", state__in=[KeyQuestion.State.AGREED, KeyQuestion.State.DECIDED]):
        variant = (q.grounds.get("variants") or {}).get(q.chosen)
        if variant:
            edge = EdgeChange.model_validate(variant)
            decided[(edge.source, edge.target)] = edge
    return decided


def edge_question_open(session: DesignSession, rnd: Round, conflict: EdgeConflict, done: list[Contribution]) -> None:
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
    decided = edges_decided(session)
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
