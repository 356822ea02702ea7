"""One specialist call, from a queued or pending contribution to a finished or failed one.

The call itself runs outside any transaction; every state change around it is a short
transaction that also records its event. A contribution is claimed with a short lease
(``SPECIALIST_LEASE_SECONDS``) that a heartbeat renews while the call runs; every streamed
frame renews it too. A delivery that finds a live lease is told to come back later
(:class:`Busy`), never dropped; once a lease has expired (its worker died) the next delivery
takes over, and :func:`contributions_due` finds such contributions for the sweeper. The try
number (``tries``) fences a call that outlived its lease: its late result is discarded.

A round's calls are opened queued (:mod:`sessions_app.engine.rounds`): their try and their
started events are written with the round, and the first delivery takes each by stamping its
start time on it (one compare-and-set UPDATE, no transaction). Any other contribution (a re-run,
a retry, one the sweeper sent again) is pending, and its claim appends its started event.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from sessions_app import events, streaming
from sessions_app.engine import rounds, state, synthesis
from sessions_app.engine.context import SessionContext
from sessions_app.engine.flow import after_round
from sessions_app.engine.rounds import call_lease as _lease
from sessions_app.engine.rows import joined_instance, joined_select
from sessions_app.models import CONTRIBUTION_WAITING, Contribution, DesignSession, KeyQuestion, Position, Round
from sessions_app.providers import ProviderConfig, build_provider
from sessions_app.providers.base import KeyQuestionBrief, ProviderError, ProviderRequest, ProviderResult, match_option
from teams_app.models import Specialist

C = Contribution.Status
R = Round.Status
logger = logging.getLogger(__name__)


@dataclass
class Claim:
    contribution_id: int
    session_id: int
    round_id: int
    tries: int | None = None  # the try this claim took; None: whichever try is running
    started: bool = False  # its started event is in the log already (with its round, or with the claim)
    # The row as claimed, with what the call needs (CONTRIBUTION_RELATED, SESSION_RELATED): read with the claim.
    contribution: Contribution | None = field(default=None, repr=False, compare=False)


CONTRIBUTION_RELATED = ("round", "specialist")
"""What a call needs besides its row: read with the claim, its session (with ``SESSION_RELATED``) once for all its calls."""


class Busy(Exception):
    """Another delivery holds a live lease on the contribution: deliver again in ``retry_in`` s."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"leased for another {retry_in:.1f} s")
        self.retry_in = retry_in


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
    session = state.session_lock(session_id)
    return session, Contribution.objects.select_for_update().get(pk=contribution_id)


def _lease_left(c: Contribution, now) -> float:
    """Seconds the running contribution's lease has left (0 when expired)."""
    if c.lease_expires_at is not None:
        return max(0.0, (c.lease_expires_at - now).total_seconds())
    if c.started_at is not None:  # claimed before leases were renewed: the old, long lease
        return max(0.0, settings.CELERY_TASK_TIME_LIMIT - (now - c.started_at).total_seconds())
    return 0.0


def claim(contribution_id: int) -> Claim | None:
    """Take the contribution for this delivery, or None when there is nothing to do.

    Raises :class:`Busy` while another delivery's lease is live. One compare-and-set UPDATE of
    the contribution's own row: no lock on the session row, so the calls of a round start
    together instead of one after another. (Cancelling takes the session row, then the
    contributions: a claim that loses that race finds its row changed and does nothing; one
    that wins is cancelled as a running call, whose result is then discarded.) The started
    event of a pending contribution is appended by the call's :class:`Heartbeat`, beside the
    call; a queued one's is in the log already."""
    claims, busy = claims_take([contribution_id])
    if busy:
        raise Busy(busy[0][1])
    return claims[0] if claims else None


def claims_take(ids: list[int], *, record_start: bool = False) -> tuple[list[Claim], list[tuple[int, float]]]:
    """:func:`claim` for several contributions: the claims taken, and ``(id, retry_in)`` for
    each that another delivery holds.

    The rows are read in one query and their session once (a round's calls share it, with its
    inventory and PRD), then taken by one compare-and-set UPDATE per state they were read in
    (usually one for the whole round): a queued row by stamping its start time (it keeps the
    try it was queued with), a pending one (or one whose lease expired) by starting its next
    try. When another delivery changed some of them meanwhile, the rows this UPDATE took are
    those that carry its start time. A round's queued calls are taken with no transaction and
    no lock on the session row: a cancellation changes their status first, and the UPDATE
    then finds nothing to take.

    With ``record_start`` (a round's calls, claimed together), the started events of the
    pending ones are appended too, in one transaction with their claim: the session rows are
    locked first (the lock order of cancelling), so a cancelled session's calls are never
    taken and a taken call is never shown as started after its cancellation.

    On PostgreSQL the queued rows are taken first, by one statement that reads them as it takes
    them (:func:`_queued_take`); only the others, if any, are read and taken as above."""
    claims = _queued_take(ids) if transaction.get_connection().vendor == "postgresql" else []
    if not claims:
        return _claims_read_take(ids, record_start=record_start)
    taken = {c.contribution_id for c in claims}
    rest = [pk for pk in ids if pk not in taken]
    more, busy = _claims_read_take(rest, record_start=record_start) if rest else ([], [])
    order = {pk: i for i, pk in enumerate(ids)}
    return sorted(claims + more, key=lambda c: order[c.contribution_id]), busy


def _claims_read_take(ids: list[int], *, record_start: bool) -> tuple[list[Claim], list[tuple[int, float]]]:
    """:func:`claims_take` through the ORM: the rows read, then taken by state."""
    # Unordered: the model's ordering (round, then the round's session) would join the session
    # table into the query, and compiling that ordering costs as much as the rest of it.
    rows = Contribution.objects.filter(pk__in=ids).select_related(*CONTRIBUTION_RELATED).order_by().in_bulk()
    live = [rows[pk] for pk in ids if pk in rows and rows[pk].status not in (C.DONE, C.FAILED, C.CANCELLED)]
    if not live:
        return [], []
    if record_start and not all(c.queued for c in live):
        with transaction.atomic():
            return _claims_take(ids, live, record_start=True)
    return _claims_take(ids, live, record_start=False)


def _claims_take(ids: list[int], live: list[Contribution], *, record_start: bool) -> tuple[list[Claim], list[tuple[int, float]]]:
    session_ids = sorted({c.session_id for c in live})
    sessions = DesignSession.objects.select_related(*state.SESSION_RELATED).order_by()  # (no ordering to compile)
    if record_start:  # locked as read, in id order (the lock order)
        sessions = sessions.select_for_update(of=("self",)).order_by("pk")
    sessions = {s.pk: s for s in sessions.filter(pk__in=session_ids)}
    now = timezone.now()
    busy: list[tuple[int, float]] = []
    wanted: dict[tuple[bool, str, int], list[Contribution]] = {}
    for c in live:
        queued = c.queued
        if not queued and c.status == C.RUNNING and (left := _lease_left(c, now)) > 0:
            busy.append((c.pk, left + random.uniform(0.5, 1.5)))  # another delivery is working on it
            continue
        session = sessions.get(c.session_id)
        if session is None:
            continue
        if session.status == DesignSession.Status.CANCELLED:
            Contribution.objects.filter(pk=c.pk, status=c.status, tries=c.tries).update(status=C.CANCELLED)
            continue
        c.session = session
        wanted.setdefault((queued, c.status, c.tries), []).append(c)
    claims: list[Claim] = []
    for (queued, status, tries), group in wanted.items():
        pks = [c.pk for c in group]
        rows = Contribution.objects.filter(pk__in=pks, status=status, tries=tries)
        if queued:  # stamped as taken; its try and its started event came with the round
            taken = {"started_at": now, "lease_expires_at": now + _lease()}
            count = rows.filter(started_at__isnull=True).update(**taken)
            tried = tries
        else:
            taken = {"status": C.RUNNING, "started_at": now, "tries": tries + 1, "text": "", "lease_expires_at": now + _lease()}
            count = rows.update(**taken)
            tried = tries + 1
        mine = set(pks) if count == len(pks) else set(
            Contribution.objects.filter(pk__in=pks, status=C.RUNNING, tries=tried, started_at=now).values_list("pk", flat=True)
        )
        for c in group:
            if c.pk not in mine:
                busy.append((c.pk, random.uniform(0.5, 1.5)))  # another delivery claimed it a moment ago: look again
                continue
            for name, value in taken.items():
                setattr(c, name, value)
            claims.append(Claim(c.pk, c.session_id, c.round_id, tries=tried, started=queued, contribution=c))
    order = {pk: i for i, pk in enumerate(ids)}
    claims.sort(key=lambda c: order[c.contribution_id])
    if record_start:
        for session_id in session_ids:
            mine = [c for c in claims if c.session_id == session_id and not c.started]
            _starts_append(session_id, mine)
            for c in mine:
                c.started = True
    return claims, busy


def _queued_take(ids: list[int]) -> list[Claim]:
    """PostgreSQL: take the queued contributions among ``ids`` (of sessions not cancelled) in
    one statement, the compare-and-set UPDATE of :func:`_claims_take` for queued rows that
    returns the rows it took with what their calls need (``CONTRIBUTION_RELATED``), then read
    their sessions with ``SESSION_RELATED`` in a second. Where the ORM compiles three queries
    anew for every round (longer than the database takes to run them), these two are written
    once, and each joins few enough tables that the database plans it at once: the calls of
    every round start after them. Returns the claims; the rows not taken (not queued, already
    taken, or of a cancelled session) are left to the general path."""
    connection_ = transaction.get_connection()
    now = timezone.now()
    with connection_.cursor() as cursor:
        cursor.execute(_queued_take_sql(connection_), [now, now + _lease(), list(ids), C.RUNNING, DesignSession.Status.CANCELLED])
        taken = [joined_instance(row, _TAKEN_ROWS, connection_) for row in cursor.fetchall()]
        if not taken:
            return []
        cursor.execute(_sessions_sql(connection_), [sorted({c.session_id for c in taken})])
        sessions = {session.pk: session for session in (joined_instance(row, _SESSION_ROWS, connection_) for row in cursor.fetchall())}
    claims = []
    for c in taken:
        if c.session_id not in sessions:  # deleted meanwhile, its rows with it: nothing to run
            continue
        c.session = sessions[c.session_id]
        claims.append(Claim(c.pk, c.session_id, c.round_id, tries=c.tries, started=True, contribution=c))
    return claims


# The rows :func:`_queued_take` reads: (the model, the foreign key on the first row's model that
# points at it), the first row's own model first.
_TAKEN_ROWS = [(Contribution, None)] + [(Contribution._meta.get_field(n).related_model, n) for n in CONTRIBUTION_RELATED]
_SESSION_ROWS = [(DesignSession, None)] + [(DesignSession._meta.get_field(n).related_model, n) for n in state.SESSION_RELATED]


_statements: dict[tuple[str, str], str] = {}  # (vendor, which) -> SQL, built once per process


def _queued_take_sql(connection_) -> str:
    key = (connection_.vendor, "take")
    if key not in _statements:
        quote = connection_.ops.quote_name
        contributions, sessions = quote(Contribution._meta.db_table), quote(DesignSession._meta.db_table)
        returned = ", ".join(f"c.{quote(f.column)}" for f in Contribution._meta.concrete_fields)
        _statements[key] = (
            f"WITH taken AS (UPDATE {contributions} AS c SET started_at = %s, lease_expires_at = %s "  # noqa: S608 - the models' own names
            f"FROM {sessions} AS s WHERE c.id = ANY(%s) AND c.status = %s AND c.started_at IS NULL "
            f"AND s.id = c.session_id AND s.status <> %s RETURNING {returned}) "
            + joined_select(connection_, _TAKEN_ROWS, "taken")
        )
    return _statements[key]


def _sessions_sql(connection_) -> str:
    key = (connection_.vendor, "sessions")
    if key not in _statements:
        table = connection_.ops.quote_name(DesignSession._meta.db_table)
        _statements[key] = joined_select(connection_, _SESSION_ROWS, table) + " WHERE t0.id = ANY(%s)"
    return _statements[key]


def _starts_append(session_id: int, claims: list[Claim]) -> None:
    events.events_emit(session_id=session_id, events=[
        events.ContributionStarted(contribution_id=c.contribution_id, round_id=c.round_id) for c in claims
    ])


def started_record(*claims: Claim) -> None:
    """Append the contributions' started events, one transaction per session, for the claims
    that still hold their contributions (checked under the session row's lock, which
    cancelling takes too, so a cancelled call never shows as started after its cancellation)."""
    sessions: dict[int, list[Claim]] = {}
    for claim_ in claims:
        sessions.setdefault(claim_.session_id, []).append(claim_)
    for session_id, mine in sessions.items():
        with transaction.atomic():
            state.session_hold(session_id)
            tries = dict(
                Contribution.objects.filter(pk__in=[c.contribution_id for c in mine], status=C.RUNNING)
                .values_list("pk", "tries")
            )
            _starts_append(session_id, [c for c in mine if c.contribution_id in tries and c.tries in (None, tries[c.contribution_id])])


def _held(claim_: Claim):
    """The contribution's row while this claim still holds it (same try, still running)."""
    rows = Contribution.objects.filter(pk=claim_.contribution_id, status=C.RUNNING)
    return rows if claim_.tries is None else rows.filter(tries=claim_.tries)


def lease_renew(claim_: Claim) -> bool:
    """Extend the claim's lease; False when the contribution is no longer this claim's."""
    return bool(_held(claim_).update(lease_expires_at=timezone.now() + _lease()))


class Heartbeat:
    """Beside the calls, from a thread: first appends the contributions' started events (so
    the calls do not wait for them), then renews the claims' leases while the calls run (a
    call may wait a long time for its first token). Each beat uses a short-lived connection of
    its own, so a worker holds no extra connection per running call. Streamed text waits for
    the started events (:attr:`started`), so pages get the cards before their text."""

    def __init__(self, *claims: Claim, started: bool = False) -> None:
        self.claims = list(claims)
        self.stopped = threading.Event()
        self.started = threading.Event()
        if started:  # recorded with the claims (:func:`claims_take`)
            self.started.set()
        name = ",".join(str(c.contribution_id) for c in claims)
        self.thread = threading.Thread(target=self._run, name=f"lease-{name}"[:60], daemon=True)

    def __enter__(self) -> Heartbeat:
        if connection.in_atomic_block and not self.started.is_set():
            # Called inside a transaction (a task run inline): another connection would not
            # see its rows, so the start is recorded here, in it.
            started_record(*self.claims)
            self.started.set()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        if not self.started.is_set():  # the thread could not record it: the result must not come first
            self._record_start()

    def _record_start(self) -> None:
        try:
            started_record(*self.claims)
        except Exception:
            logger.warning("the start of contributions %s was not recorded", [c.contribution_id for c in self.claims], exc_info=True)
            return
        finally:
            connection.close()
        self.started.set()

    def _run(self) -> None:
        if not self.started.is_set():
            self._record_start()
        while self.claims and not self.stopped.wait(settings.SPECIALIST_HEARTBEAT_SECONDS):
            for claim_ in list(self.claims):
                try:
                    if not lease_renew(claim_):
                        self.claims.remove(claim_)  # finished, cancelled or taken over: nothing to keep alive
                except Exception:  # the next beat tries again; the lease outlasts a few misses
                    logger.warning("lease renewal of contribution %s failed", claim_.contribution_id, exc_info=True)
            connection.close()  # no idle connection per running call between beats


@dataclass
class RoundBasis:
    """What every call of one round is told alike: the session's context, its key questions,
    the rules reported in earlier rounds, the feedback, the team."""

    ctx: SessionContext
    questions: list[KeyQuestionBrief]
    reported: list[str]
    feedback: list[str]
    team: list[dict]


def round_basis(contribution: Contribution) -> RoundBasis:
    session = contribution.session
    rnd = contribution.round
    ctx = SessionContext.load(session)
    questions = []
    if rnd.kind in ("design", "discussion"):
        open_states = (KeyQuestion.State.OPEN, KeyQuestion.State.CONFLICT)
        qs = session.key_questions.order_by("ref")  # the model's order within one session, without its join
        if rnd.kind == "discussion":
            qs = qs.filter(state__in=open_states)
        questions = [
            KeyQuestionBrief(ref=q.ref, text=q.text, options=list(q.options),
                             grounds={k: v for k, v in (q.grounds or {}).items() if k != "variants"})
            for q in qs
        ]
    reported = sorted({
        f.get("rule") for payload in Contribution.objects.filter(
            session=session, round__number__lt=rnd.number, status=C.DONE, author=Contribution.Author.SPECIALIST,
        ).values_list("payload", flat=True)
        for f in (payload or {}).get("findings") or [] if f.get("rule")
    }) if not rnd.opens_the_work else []
    feedback = [rnd.feedback] if rnd.feedback else []
    if rnd.kind == "planning":
        feedback = [f for f in session.rounds.filter(kind="follow_up").values_list("feedback", flat=True) if f]
    # Read now, once, for every call that shares this basis.
    ctx.proposal  # noqa: B018
    ctx.user_messages  # noqa: B018
    ctx.previous_synthesis(before=rnd)
    team = [{"slug": m["specialist"], "name": m["name"], "focus": list(m.get("focus") or [])} for m in session.team if not m.get("is_user")]
    return RoundBasis(ctx=ctx, questions=questions, reported=reported, feedback=feedback, team=team)


class _Bases:
    """Round bases shared by the calls of one round that start together in this process: the
    first call reads the basis, the others of that burst reuse it (``ttl`` seconds) instead of
    reading the same rows again, one after another under the GIL. A re-run (a new attempt)
    reads its own."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.lock = threading.Lock()
        self.entries: dict[tuple, tuple[float, RoundBasis]] = {}
        self.building: dict[tuple, threading.Lock] = {}

    def get(self, contribution: Contribution) -> RoundBasis:
        rnd = contribution.round
        key = (rnd.pk, rnd.created_at, contribution.attempt)  # the time too: a database reset reuses ids
        with self.lock:
            building = self.building.setdefault(key, threading.Lock())
        with building:
            now = time.monotonic()
            hit = self.entries.get(key)
            if hit is not None and now - hit[0] < self.ttl:
                return hit[1]
            basis = round_basis(contribution)
            with self.lock:
                for old in [k for k, (at, _) in self.entries.items() if now - at >= self.ttl]:
                    self.entries.pop(old, None)
                    self.building.pop(old, None)
                self.entries[key] = (now, basis)
            return basis


_bases = _Bases(ttl=2.0)


def build_request(contribution: Contribution) -> tuple[ProviderRequest, str]:
    session = contribution.session
    specialist = contribution.specialist
    member = next((m for m in session.team if m.get("specialist") == contribution.specialist_slug), {})
    focus = list(member.get("focus") or (specialist.focus if specialist else []))
    basis = _bases.get(contribution)
    ctx = basis.ctx
    rnd = contribution.round
    proposal = ctx.proposal
    request = ProviderRequest(
        specialist_slug=contribution.specialist_slug,
        specialist_name=contribution.author_name,
        system_prompt=specialist.system_prompt if specialist else "",
        brief=contribution.brief,
        context=ctx.as_text(focus=focus, round=rnd),
        focus=focus,
        findings=ctx.findings_for(focus),
        key_questions=basis.questions,
        model=(specialist.model if specialist and specialist.model else ""),
        timeout=settings.PROVIDER_TIMEOUT,
        round_kind=rnd.kind,
        design_brief=dict(ctx.session.brief or {}),
        proposal=dict(proposal.content) if proposal else {},
        proposal_version=proposal.version if proposal else 0,
        feedback=basis.feedback,
        reported_rules=basis.reported,
        team=basis.team,
        inventory=ctx.inventory,
        cluster_findings=list(ctx.findings),
    )
    return request, provider_name_for(session, specialist)


class DeltaWriter:
    """Coalesces streamed tokens into frames of about ``frame_ms`` and streams each frame.

    Frames go over the channel layer only (:mod:`sessions_app.streaming`): no event row, no
    lock on the session row, so parallel calls do not queue on each other. The text so far is
    saved on the contribution's own row at most every ``save_ms``, counted from the first token
    (a page loaded meanwhile shows it, then the frames that follow), which renews the lease too.
    A reply that streams for less than ``save_ms`` is never saved half-way: its result follows
    at once (counted from the call's start instead, every call of a round that answers after a
    wait would write its first token at the same moment as the round's results)."""

    def __init__(self, claim: Claim, frame_ms: int, save_ms: int = 1000, started: threading.Event | None = None) -> None:
        self.claim = claim
        self.started = started
        self.frame = frame_ms / 1000
        self.save_every = save_ms / 1000
        self.buffer: list[str] = []
        self.text = ""
        self.saved = 0
        self.last_flush = self.last_save = time.monotonic()

    def __call__(self, delta: str) -> None:
        if not delta:
            return
        if not self.buffer and not self.text:
            self.last_save = time.monotonic()  # the first token: saves count from here
        self.buffer.append(delta)
        if time.monotonic() - self.last_flush >= self.frame:
            self.flush()

    def taken(self) -> None:
        """The call starts: an empty part of its text tells the pages, whose card of a queued
        call then turns from waiting to working (a card rendered from the database knows it
        already). Sent before any text of the call, so it never shortens what was streamed; not
        sent while the card is not on the pages yet (its started event renders it working)."""
        if self.started is None or self.started.is_set():
            streaming.text_streamed(session_id=self.claim.session_id, contribution_id=self.claim.contribution_id, at=0, text="")

    def flush(self, *, last: bool = False) -> None:
        if self.started is not None and not self.started.is_set() and not last:
            return  # the card is not on the pages yet: keep the text until it is
        if self.buffer:
            chunk = "".join(self.buffer)
            self.buffer.clear()
            at = len(self.text)
            self.text += chunk
            streaming.text_streamed(
                session_id=self.claim.session_id, contribution_id=self.claim.contribution_id, at=at, text=chunk
            )
            self.last_flush = time.monotonic()
        if not last and len(self.text) > self.saved and time.monotonic() - self.last_save >= self.save_every:
            self.save()  # (the last frame is not saved: the result that follows holds the whole text)

    def save(self) -> None:
        """Keep the text so far on the contribution (only while this claim holds it)."""
        if len(self.text) > self.saved:
            _held(self.claim).update(text=self.text, lease_expires_at=timezone.now() + _lease())
            self.saved = len(self.text)
        self.last_save = time.monotonic()


def execute(contribution_id: int) -> ProviderResult:
    """Run the call for a claimed contribution. Raises ProviderError on failure (the caller
    decides between retrying and :func:`fail`)."""
    claim_ = claim(contribution_id)
    if claim_ is None:
        raise _Skip()
    try:
        with Heartbeat(claim_, started=claim_.started) as beat:
            request, provider_name = build_request(claim_.contribution)
            result, latency_ms = call(claim_, request, provider_name, beat.started)
    except BaseException as exc:
        exc.tries = claim_.tries  # lets the caller's fail/release touch only this try
        raise
    finish(contribution_id, result, latency_ms, claim_=claim_)
    return result


def call(claim_: Claim, request: ProviderRequest, provider_name: str, started: threading.Event) -> tuple[ProviderResult, int]:
    """The specialist call itself, streaming its text once the start is recorded (``started``).
    Returns the result and the call's latency in ms."""
    writer = DeltaWriter(claim_, settings.MAESTRO_DELTA_FRAME_MS, settings.MAESTRO_STREAM_SAVE_MS, started)
    writer.taken()
    begun = time.monotonic()
    result = _provider(provider_name, provider_config()).run(request, writer)
    latency_ms = int((time.monotonic() - begun) * 1000)
    started.wait(5)
    writer.flush(last=True)
    return result, latency_ms


class _Skip(Exception):
    """Nothing to do for this delivery (already finished, or another delivery holds it)."""


@dataclass
class Finished:
    """A call's result, to be recorded by :func:`finish_many`."""

    contribution_id: int
    result: ProviderResult
    latency_ms: int
    tries: int | None = None
    session_id: int | None = None  # read from the contribution when not given (with round_id)
    round_id: int | None = None
    # The session as the call's claim read it (with SESSION_RELATED), when the caller has it.
    session: DesignSession | None = field(default=None, repr=False, compare=False)


def finish(
    contribution_id: int, result: ProviderResult, latency_ms: int, *, tries: int | None = None,
    claim_: Claim | None = None,
) -> None:
    """Record the result. With ``tries``, only if that try still holds the contribution (a call
    that outlived its lease while another worker took over is discarded). ``claim_``: the
    call's claim, whose try fences the result and whose session and round are used as it read
    them (see :attr:`Finished.session`)."""
    if claim_ is None:
        finish_many([Finished(contribution_id, result, latency_ms, tries)])
        return
    finish_many([Finished(
        contribution_id, result, latency_ms, claim_.tries, claim_.session_id, claim_.round_id,
        session=claim_.contribution.session,
    )])


def finish_many(results: list[Finished]) -> None:
    """Record several calls' results: one transaction per session, which locks the session row
    once for all of them and advances each round once (a round they complete is synthesized in
    that transaction, and the session's next step is taken after its commit). Each result is fenced by its try, as in :func:`finish`."""
    unknown = [r.contribution_id for r in results if r.session_id is None or r.round_id is None]
    owners = {pk: (s, rd) for pk, s, rd in Contribution.objects.filter(pk__in=unknown).values_list("pk", "session_id", "round_id")} if unknown else {}
    owners.update({r.contribution_id: (r.session_id, r.round_id) for r in results if r.session_id is not None and r.round_id is not None})
    sessions: dict[int, list[Finished]] = {}
    for r in results:
        if r.contribution_id in owners:
            session_id, round_id = owners[r.contribution_id]
            sessions.setdefault(session_id, []).append(replace(r, session_id=session_id, round_id=round_id))
    for session_id, batch in sessions.items():
        _finish_in_session(session_id, batch)


def _finish_in_session(session_id: int, results: list[Finished]) -> None:
    known = next((r.session for r in results if r.session is not None), None)
    with results_recording(session_id, {r.round_id for r in results}, known=known) as record:
        if record is not None:
            record(results)


Record = Callable[[list[Finished]], None]


@contextmanager
def results_recording(
    session_id: int, round_ids: set[int], *, known: DesignSession | None = None, expected: int = 0,
) -> Iterator[Record | None]:
    """The transaction of :func:`finish_many` for one session, which can be opened before its
    results are all there: on entry it locks the session row and reads (and locks) the
    contributions of ``round_ids``; the function it yields records results of those rounds
    (fenced by their tries), once; the transaction commits on exit. Yields None when the
    session is gone (deleted with its contributions: nothing to record). ``known``: the session
    as the calls' claim read it, whose related rows are used again (:func:`state.session_lock`).
    ``expected``: how many results the caller may record here, those still awaited included;
    when they can complete a round, what its synthesis reads is read on entry too
    (:func:`synthesis.synthesis_reads`), while they are awaited, instead of after the last one."""
    with transaction.atomic():
        # The whole row, not only its lock: a round these results complete is synthesized in
        # this transaction, from it.
        try:
            session = state.session_lock(session_id, known=known)
        except DesignSession.DoesNotExist:
            yield None
            return
        in_rounds: dict[int, list[Contribution]] = {}
        rows = (
            Contribution.objects.select_for_update(of=("self",)).select_related("round")
            .filter(round_id__in=round_ids, session_id=session_id).order_by("round_id", "attempt", "id")
        )
        for c in rows:
            in_rounds.setdefault(c.round_id, []).append(c)
        reads = synthesis.synthesis_reads(session) if _completable(in_rounds, expected) else None
        with events.events_gathered(session_id):  # the results' events, the progress and the synthesis's
            yield lambda results: _results_record(session, results, in_rounds, reads)


def _completable(in_rounds: dict[int, list[Contribution]], expected: int) -> bool:
    """Whether ``expected`` results can complete one of the running rounds (read in ``attempt, id`` order)."""
    for contributions in in_rounds.values():
        if not expected or not contributions or contributions[0].round.status != Round.Status.RUNNING:
            continue
        unsettled = sum(1 for c in state.attempts_latest(contributions[0].round, contributions) if c.status not in (C.DONE, C.FAILED))
        if 0 < unsettled <= expected:
            return True
    return False


def _results_record(
    session: DesignSession, results: list[Finished], in_rounds: dict[int, list[Contribution]],
    reads: synthesis.SynthesisReads | None = None,
) -> None:
    """``in_rounds``: the contributions of the results' rounds, read (and locked) after the
    session row, in ``attempt, id`` order. The results are applied to them, and the rounds'
    progress and syntheses are taken from them, with no second read. ``reads``: what a
    synthesis reads, read on entry (for the first round these results complete)."""
    session_id = session.pk
    contributions = {c.pk: c for round_rows in in_rounds.values() for c in round_rows}
    settled: dict[int, Round] = {}
    usage = [0, 0, Decimal(0)]
    finished = []
    recorded = []
    for r in results:
        c = contributions.get(r.contribution_id)
        if c is None or c.status != C.RUNNING or (r.tries is not None and c.tries != r.tries):
            continue
        _result_apply(c, r.result, r.latency_ms)
        recorded.append((c, r.result))
    _results_save([c for c, _ in recorded])
    for c, result in recorded:
        _record_positions(session_id, c, result)
        usage = [usage[0] + c.tokens_in, usage[1] + c.tokens_out, usage[2] + c.cost]
        finished.append(events.ContributionFinished(contribution_id=c.pk, round_id=c.round_id))
        settled.setdefault(c.round_id, c.round)
    events.events_emit(session_id=session_id, events=finished)
    if settled:
        state.usage_add(session_id, tokens_in=usage[0], tokens_out=usage[1], cost=usage[2], held=session)
    for round_id, rnd in settled.items():
        if _settled(rnd, session, in_rounds[round_id], reads=reads):
            reads = None  # used (a synthesis may change what it read): another round reads its own


RESULT_FIELDS = (
    "status", "text", "payload", "provider", "model", "tokens_in", "tokens_out", "cost", "latency_ms", "error",
    "finished_at", "lease_expires_at",
)


def _results_save(rows: list[Contribution]) -> None:
    """Save the result columns (``RESULT_FIELDS``) of the contributions: one UPDATE statement
    sent with each row's values in one batch (``executemany``, which psycopg pipelines), where
    ``save()`` would compile and send one statement per row. The values are prepared by their
    fields, as ``save()`` prepares them (the model has no save signals or auto fields among these)."""
    if len(rows) <= 1:
        for c in rows:
            c.save(update_fields=RESULT_FIELDS)
        return
    meta = Contribution._meta
    fields = [meta.get_field(name) for name in RESULT_FIELDS]
    connection_ = transaction.get_connection()
    quote = connection_.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608 - the model's own names
    values = [[f.get_db_prep_save(getattr(c, f.attname), connection_) for f in fields] + [c.pk] for c in rows]
    with connection_.cursor() as cursor:
        cursor.executemany(sql, values)


def _result_apply(c: Contribution, result: ProviderResult, latency_ms: int) -> None:
    c.status = C.DONE
    c.text = result.text
    c.payload = {
        "summary": result.summary.strip()[:240] or _summary(result.text),
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
    c.lease_expires_at = None


@transaction.atomic
def fail(contribution_id: int, message: str, *, provider: str = "", tries: int | None = None) -> None:
    session, c = _lock_session_then(contribution_id)
    if c.status in (C.DONE, C.FAILED, C.CANCELLED) or (tries is not None and c.tries != tries):
        return
    c.status = C.FAILED
    c.error = message
    c.provider = provider or c.provider
    c.finished_at = timezone.now()
    c.lease_expires_at = None
    c.save(update_fields=["status", "error", "provider", "finished_at", "lease_expires_at"])
    events.event_emit(
        session_id=c.session_id, event=events.ContributionFailed(contribution_id=c.pk, round_id=c.round_id, error=message)
    )
    _settled(c.round, session)


def _settled(
    rnd: Round, session: DesignSession, contributions: list[Contribution] | None = None, *,
    reads: synthesis.SynthesisReads | None = None,
) -> bool:
    """After a contribution settles: the one that completes its round writes the round's
    synthesis here, in the same transaction (the round's last results and its synthesis reach
    the pages with one commit), taking the round from running to done, and the session's next
    step follows after commit. A synthesis that fails is undone alone (its own savepoint): the
    results stand, the round is left synthesizing, and the synthesis is tried again after
    commit, then by the sweeper. ``session`` and ``rnd``: the round's session and the round,
    read in this transaction under the session's lock; ``contributions``: the round's, read
    the same way (in ``attempt, id`` order, with the results just recorded), when the caller has them;
    ``reads``: :func:`synthesis.synthesis_reads` of ``session`` in this transaction, when the
    caller has them. Returns whether the round's synthesis was tried."""
    if contributions is None:
        contributions = list(rnd.contributions.order_by("attempt", "id"))
    if not rounds.round_all_settled(rnd, contributions) or rnd.status != Round.Status.RUNNING:
        return False
    round_id = rnd.pk
    try:
        written = synthesis.synthesis_write(
            round_id, session_id=rnd.session_id, rnd=rnd, session=session, settled=True, contributions=contributions,
            reads=reads,
        )
    except Exception:
        if transaction.get_rollback():  # not even its savepoint could be undone: nothing here holds
            raise
        session.refresh_from_db()  # what the synthesis changed on it was undone with its savepoint
        logger.exception("synthesis of round %s failed; it is tried again after commit", round_id)
        if rounds.round_synthesis_due(rnd):
            transaction.on_commit(lambda: _synthesize(round_id))
        return True
    if written is not None:
        transaction.on_commit(lambda: _advance(round_id))
    return True


def _synthesize(round_id: int) -> None:
    try:
        synthesis.round_synthesize(round_id=round_id)
    except Exception:  # the round stays 'synthesizing': the sweeper enqueues it again
        logger.exception("synthesis of round %s failed; the sweeper will try again", round_id)


def _advance(round_id: int) -> None:
    try:
        after_round(round_id=round_id)
    except Exception:  # the round keeps advance_due: the sweeper takes the step
        logger.exception("the step after round %s failed; the sweeper will take it", round_id)


def note_retry(contribution_id: int, message: str) -> None:
    Contribution.objects.filter(pk=contribution_id).update(error=message)


def release(contribution_id: int, *, hold_for: float = 0.0, tries: int | None = None) -> None:
    """Hand a running contribution back before a retry, so the retry's claim can take it. The
    sweeper leaves it alone for ``hold_for`` seconds (the retry's backoff) plus a lease."""
    rows = Contribution.objects.filter(pk=contribution_id, status=C.RUNNING)
    if tries is not None:
        rows = rows.filter(tries=tries)
    rows.update(status=C.PENDING, lease_expires_at=timezone.now() + timedelta(seconds=hold_for) + _lease())


# -- the sweeper's side: work whose worker or message was lost ---------------------------------


def contributions_due(*, limit: int = 500) -> list[int]:
    """Contributions to enqueue again: running ones whose lease expired (their worker died)
    and pending ones nobody claimed in time (their message was lost). Each is marked with a
    new deadline by a compare-and-set, so concurrent sweepers enqueue it once; a running one
    goes back to pending, so the next delivery claims it at once. Only rounds still running."""
    now = timezone.now()
    cutoff = now - _lease()
    candidates = (
        Contribution.objects.filter(author=Contribution.Author.SPECIALIST, round__status=R.RUNNING)
        .filter(
            Q(status=C.RUNNING, lease_expires_at__lt=now)
            | Q(status=C.RUNNING, lease_expires_at__isnull=True, started_at__lt=now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT))
            | Q(status=C.PENDING, lease_expires_at__lt=now)
            | Q(status=C.PENDING, lease_expires_at__isnull=True, created_at__lt=cutoff)
        )
        .exclude(session__status=DesignSession.Status.CANCELLED)
        .values_list("pk", "status", "lease_expires_at")[:limit]
    )
    due = []
    for pk, status, lease in list(candidates):
        unchanged = Q(lease_expires_at=lease) if lease is not None else Q(lease_expires_at__isnull=True)
        if Contribution.objects.filter(unchanged, pk=pk, status=status).update(status=C.PENDING, lease_expires_at=now + _lease()):
            due.append(pk)
    return due


def contributions_due_now(ids: list[int]) -> None:
    """Their messages could not be sent (the broker is down): the next sweep tries again."""
    Contribution.objects.filter(CONTRIBUTION_WAITING, pk__in=ids).update(lease_expires_at=timezone.now())


def rounds_stalled(*, limit: int = 100) -> list[int]:
    """Rounds left synthesizing for ``MAESTRO_SYNTHESIS_STALL_SECONDS`` after their last
    contribution settled (the synthesis message was lost), and rounds synthesized that long ago
    whose next step was never taken (the process died in between). Delivering the synthesis
    again does what is left; it is idempotent."""
    cutoff = timezone.now() - timedelta(seconds=settings.MAESTRO_SYNTHESIS_STALL_SECONDS)
    return list(
        Round.objects.filter(
            Q(status=R.SYNTHESIZING) & ~Q(contributions__finished_at__gte=cutoff)
            | Q(status=R.DONE, advance_due=True, finished_at__lt=cutoff)
        )
        .exclude(session__status=DesignSession.Status.CANCELLED)
        .values_list("pk", flat=True)[:limit]
    )


def _summary(text: str) -> str:
    """The text's first line of substance: not a heading of its own sections, and not a byline
    (a line wholly in italics, such as the rule-based designer's note on how it was written)."""
    for line in text.splitlines():
        line = line.strip()
        if len(line) > 2 and line[0] == line[-1] and line[0] in "_*" and line[:2] != "**":
            continue
        line = line.lstrip("#>*- ").strip()
        if line and not line.lower().startswith(("findings", "recommendations", "open questions", "positions")):
            return line[:240]
    return ""


def _record_positions(session_id: int, c: Contribution, result: ProviderResult) -> None:
    if c.round.kind not in ("design", "discussion") or not result.positions:
        return
    questions = {q.ref: q for q in KeyQuestion.objects.filter(session_id=session_id)}
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
__all__ = [
    "execute", "fail", "note_retry", "release", "Skip", "Busy", "ProviderError",
    "contributions_due", "contributions_due_now", "rounds_stalled",
]
