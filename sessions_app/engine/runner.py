"""One specialist call, from a pending contribution to a finished or failed one.

The call itself runs outside any transaction; every state change around it is a short
transaction that also records its event. A contribution is claimed with a lease so a
duplicated delivery does nothing while the first is alive, and a redelivery after a worker
died (lease expired) takes over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sessions_app import events
from sessions_app.engine import flow
from sessions_app.engine.context import SessionContext
from sessions_app.engine.questions import match_option
from sessions_app.models import Contribution, DesignSession, KeyQuestion, Position
from sessions_app.providers import ProviderConfig, build_provider
from sessions_app.providers.base import KeyQuestionBrief, ProviderError, ProviderRequest, ProviderResult
from teams_app.models import Specialist

C = Contribution.Status


@dataclass
class Claim:
    contribution_id: int
    session_id: int
    round_id: int
    first_try: bool


def provider_config() -> ProviderConfig:
    return ProviderConfig(
        anthropic_api_key=settings.ANTHROPIC_API_KEY or None,
        anthropic_base_url=settings.ANTHROPIC_BASE_URL or None,
        anthropic_model=settings.ANTHROPIC_MODEL,
        openai_base_url=settings.OPENAI_BASE_URL or None,
        openai_api_key=settings.OPENAI_API_KEY or None,
        openai_model=settings.OPENAI_MODEL,
        timeout=settings.PROVIDER_TIMEOUT,
    )


@lru_cache(maxsize=16)
def _provider(name: str, config: ProviderConfig):
    """Adapters keep their HTTP client (connection pool, TLS session): one per configuration per
    process, instead of a new client for every call."""
    return build_provider(name, config)


def provider_name_for(session: DesignSession, specialist: Specialist | None) -> str:
    return (specialist.provider if specialist and specialist.provider else "") or session.provider or session.project.provider or settings.MAESTRO_PROVIDER


def _lock_session_then(contribution_id: int) -> tuple[DesignSession, Contribution]:
    """Lock order everywhere: the session row first, then the contribution (steering services
    such as cancel and re-run take them in this order too, so the two never deadlock)."""
    session_id = Contribution.objects.values_list("session_id", flat=True).get(pk=contribution_id)
    session = flow._lock(session_id)
    return session, Contribution.objects.select_for_update().get(pk=contribution_id)


@transaction.atomic
def claim(contribution_id: int) -> Claim | None:
    """Take the contribution for this delivery, or None when there is nothing to do."""
    session, c = _lock_session_then(contribution_id)
    now = timezone.now()
    if c.status in (C.DONE, C.FAILED, C.CANCELLED):
        return None
    lease = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    if c.status == C.RUNNING and c.started_at and now - c.started_at < lease:
        return None  # another delivery is working on it
    if session.status == DesignSession.Status.CANCELLED:
        c.status = C.CANCELLED
        c.save(update_fields=["status"])
        return None
    first_try = c.tries == 0
    c.status, c.started_at, c.tries, c.text = C.RUNNING, now, c.tries + 1, ""
    c.save(update_fields=["status", "started_at", "tries", "text"])
    events.event_emit(session_id=c.session_id, event=events.ContributionStarted(contribution_id=c.pk, round_id=c.round_id))
    return Claim(contribution_id=c.pk, session_id=c.session_id, round_id=c.round_id, first_try=first_try)


def build_request(contribution: Contribution) -> tuple[ProviderRequest, str]:
    session = contribution.session
    specialist = contribution.specialist
    member = next((m for m in session.team if m.get("specialist") == contribution.specialist_slug), {})
    focus = list(member.get("focus") or (specialist.focus if specialist else []))
    ctx = SessionContext.load(session)
    questions = []
    rnd = contribution.round
    if rnd.kind in ("design", "discussion"):
        open_states = (KeyQuestion.State.OPEN, KeyQuestion.State.CONFLICT)
        qs = session.key_questions.all()
        if rnd.kind == "discussion":
            qs = qs.filter(state__in=open_states)
        questions = [
            KeyQuestionBrief(ref=q.ref, text=q.text, options=list(q.options),
                             grounds={k: v for k, v in (q.grounds or {}).items() if k != "variants"})
            for q in qs
        ]
    name = provider_name_for(session, specialist)
    proposal = ctx.proposal
    reported = sorted({
        f.get("rule") for payload in Contribution.objects.filter(
            session=session, round__number__lt=rnd.number, status=C.DONE, author=Contribution.Author.SPECIALIST,
        ).values_list("payload", flat=True)
        for f in (payload or {}).get("findings") or [] if f.get("rule")
    })
    feedback = [rnd.feedback] if rnd.feedback else []
    if rnd.kind == "planning":
        feedback = [f for f in session.rounds.filter(kind="follow_up").values_list("feedback", flat=True) if f]
    request = ProviderRequest(
        specialist_slug=contribution.specialist_slug,
        specialist_name=contribution.author_name,
        system_prompt=specialist.system_prompt if specialist else "",
        brief=contribution.brief,
        context=ctx.as_text(focus=focus, round=contribution.round),
        focus=focus,
        findings=ctx.findings_for(focus),
        key_questions=questions,
        model=(specialist.model if specialist and specialist.model else ""),
        timeout=settings.PROVIDER_TIMEOUT,
        round_kind=rnd.kind,
        design_brief=dict(session.brief or {}),
        proposal=dict(proposal.content) if proposal else {},
        proposal_version=proposal.version if proposal else 0,
        feedback=feedback,
        reported_rules=reported,
        team=[{"slug": m["specialist"], "name": m["name"], "focus": list(m.get("focus") or [])} for m in session.team if not m.get("is_user")],
        inventory=ctx.inventory,
        cluster_findings=list(ctx.findings),
    )
    return request, name


class DeltaWriter:
    """Coalesces streamed tokens into frames of about ``frame_ms`` and records each frame."""

    def __init__(self, claim: Claim, frame_ms: int) -> None:
        self.claim = claim
        self.frame = frame_ms / 1000
        self.buffer: list[str] = []
        self.text = ""
        self.last_flush = time.monotonic()

    def __call__(self, delta: str) -> None:
        if not delta:
            return
        self.buffer.append(delta)
        if time.monotonic() - self.last_flush >= self.frame:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        chunk = "".join(self.buffer)
        self.buffer.clear()
        self.text += chunk
        with transaction.atomic():
            # The event first: its sequence UPDATE locks the session row before the contribution
            # row, the one lock order everywhere. A delta of a contribution cancelled meanwhile
            # is rolled back with the savepoint below.
            sid = transaction.savepoint()
            events.event_emit(
                session_id=self.claim.session_id,
                event=events.ContributionDelta(contribution_id=self.claim.contribution_id, text=chunk),
            )
            updated = Contribution.objects.filter(pk=self.claim.contribution_id, status=C.RUNNING).update(text=self.text)
            if updated:
                transaction.savepoint_commit(sid)
            else:
                transaction.savepoint_rollback(sid)
        self.last_flush = time.monotonic()


def execute(contribution_id: int) -> ProviderResult:
    """Run the call for a claimed contribution. Raises ProviderError on failure (the caller
    decides between retrying and :func:`fail`)."""
    claim_ = claim(contribution_id)
    if claim_ is None:
        raise _Skip()
    contribution = Contribution.objects.select_related(
        "session__project", "session__prd", "session__inventory_revision", "session__template", "round", "specialist"
    ).get(pk=contribution_id)
    request, provider_name = build_request(contribution)
    writer = DeltaWriter(claim_, settings.MAESTRO_DELTA_FRAME_MS)
    started = time.monotonic()
    provider = _provider(provider_name, provider_config())
    result = provider.run(request, writer)
    writer.flush()
    latency_ms = int((time.monotonic() - started) * 1000)
    finish(contribution_id, result, latency_ms)
    return result


class _Skip(Exception):
    """Nothing to do for this delivery (already finished, or another delivery holds it)."""


@transaction.atomic
def finish(contribution_id: int, result: ProviderResult, latency_ms: int) -> None:
    session, c = _lock_session_then(contribution_id)
    if c.status != C.RUNNING:
        return
    c.status = C.DONE
    c.text = result.text
    c.payload = {
        "summary": _summary(result.text),
        "findings": result.findings,
        "positions": [
            {"question": p.question, "option": p.option, "rationale": p.rationale, "evidence": list(p.evidence)}
            for p in result.positions
        ],
        "proposal_changes": result.proposal_changes or {},
        "plan_items": list(result.plan_items or []),
        "checks": list(result.checks or []),
    }
    c.provider, c.model = result.provider, result.model
    c.tokens_in, c.tokens_out = result.tokens_in, result.tokens_out
    c.cost = Decimal(str(round(result.cost, 6)))
    c.latency_ms = latency_ms
    c.error = ""
    c.finished_at = timezone.now()
    c.save()
    _record_positions(session, c, result)
    flow.add_usage(session.pk, tokens_in=c.tokens_in, tokens_out=c.tokens_out, cost=c.cost)
    events.event_emit(session_id=session.pk, event=events.ContributionFinished(contribution_id=c.pk, round_id=c.round_id))
    flow.round_maybe_complete(c.round)


@transaction.atomic
def fail(contribution_id: int, message: str, *, provider: str = "") -> None:
    _, c = _lock_session_then(contribution_id)
    if c.status in (C.DONE, C.FAILED, C.CANCELLED):
        return
    c.status = C.FAILED
    c.error = message
    c.provider = provider or c.provider
    c.finished_at = timezone.now()
    c.save(update_fields=["status", "error", "provider", "finished_at"])
    events.event_emit(
        session_id=c.session_id, event=events.ContributionFailed(contribution_id=c.pk, round_id=c.round_id, error=message)
    )
    flow.round_maybe_complete(c.round)


def note_retry(contribution_id: int, message: str) -> None:
    Contribution.objects.filter(pk=contribution_id).update(error=message)


def release(contribution_id: int) -> None:
    """Hand a running contribution back before a retry, so the retry's claim can take it."""
    Contribution.objects.filter(pk=contribution_id, status=C.RUNNING).update(status=C.PENDING)


def _summary(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#>*- ").strip()
        if line and not line.lower().startswith(("findings", "recommendations", "open questions", "positions")):
            return line[:240]
    return ""


def _record_positions(session: DesignSession, c: Contribution, result: ProviderResult) -> None:
    if c.round.kind not in ("design", "discussion") or not result.positions:
        return
    questions = {q.ref: q for q in session.key_questions.all()}
    for position in result.positions:
        q = questions.get(position.question.strip().upper())
        if q is None:
            continue
        option = match_option(position.option, list(q.options))
        if option is None:
            continue
        Position.objects.update_or_create(
            question=q, round=c.round, specialist_slug=c.specialist_slug,
            defaults={"contribution": c, "author_name": c.author_name, "option": option, "rationale": position.rationale[:2000]},
        )


Skip = _Skip
__all__ = ["execute", "fail", "note_retry", "release", "Skip", "ProviderError"]
