"""Leases on running contributions and what the sweeper finds: a live lease makes a second
delivery come back later, an expired one lets it take over, a call that outlived its lease
cannot overwrite the try that replaced it, and lost work is found again."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from datetime import timedelta

import pytest
from django.utils import timezone

from sessions_app import services, tasks
from sessions_app.engine import runner
from sessions_app.models import Contribution, DesignSession, Round, Synthesis
from sessions_app.providers.base import ProviderResult
from teams_app.models import TeamTemplate

pytestmark = pytest.mark.django_db
C = Contribution.Status
REQ = "Add a subscriptions service that creates recurring orders through orders"


@pytest.fixture
def analysis(demo, settings):
    """A running round of queued contributions whose messages were never sent (on-commit
    callbacks do not run inside the test's transaction)."""
    settings.SPECIALIST_LEASE_SECONDS = 30
    template = TeamTemplate.objects.get(slug="new-service-integration")
    session = services.session_start(project=demo, template=template, requirement=REQ, user=None, prd=demo.prds.get())
    rnd = session.rounds.get(kind="analysis")
    assert rnd.status == Round.Status.RUNNING and sum(c.queued for c in rnd.contributions.all()) == 6
    return rnd


def age(contribution: Contribution, **fields) -> None:
    Contribution.objects.filter(pk=contribution.pk).update(**fields)


def test_a_second_delivery_inside_a_live_lease_is_told_to_come_back(analysis):
    c = analysis.contributions.first()
    first = runner.claim(c.pk)
    assert first is not None and first.tries == 1
    with pytest.raises(runner.Busy) as busy:
        runner.claim(c.pk)
    assert 29 < busy.value.retry_in < 32  # about the lease that is left
    assert Contribution.objects.get(pk=c.pk).tries == 1, "the busy delivery changed nothing"


def test_an_expired_lease_is_taken_over_and_the_late_result_is_discarded(analysis):
    c = analysis.contributions.first()
    stale = runner.claim(c.pk)
    age(c, lease_expires_at=timezone.now() - timedelta(seconds=1))  # its worker died
    fresh = runner.claim(c.pk)
    assert fresh is not None and fresh.tries == 2
    late = ProviderResult(text="late", provider="openai", model="m")
    runner.finish(c.pk, late, 10, tries=stale.tries)
    assert Contribution.objects.get(pk=c.pk).status == C.RUNNING, "the old try cannot finish the new one"
    runner.fail(c.pk, "old try failed", tries=stale.tries)
    assert Contribution.objects.get(pk=c.pk).status == C.RUNNING
    runner.finish(c.pk, ProviderResult(text="answer", provider="openai", model="m"), 10, tries=fresh.tries)
    done = Contribution.objects.get(pk=c.pk)
    assert done.status == C.DONE and done.text == "answer" and done.lease_expires_at is None



def test_results_that_arrive_together_are_recorded_together_each_fenced_by_its_try(analysis):
    from sessions_app.models import SessionEvent

    session = analysis.session
    claims = [runner.claim(c.pk) for c in analysis.contributions.order_by("pk")]
    before = SessionEvent.objects.filter(session=session).count()
    answer = ProviderResult(text="## Findings\n- ok", provider="openai", model="m", tokens_in=10, tokens_out=5)
    results = [runner.Finished(c.contribution_id, answer, 10, c.tries) for c in claims[:5]]
    results.append(runner.Finished(claims[5].contribution_id, answer, 10, claims[5].tries + 1))  # not this try's
    runner.finish_many(results)
    status = dict(Contribution.objects.filter(round=analysis).values_list("pk", "status"))
    assert [status[c.contribution_id] for c in claims] == [C.DONE] * 5 + [C.RUNNING]
    new = list(SessionEvent.objects.filter(session=session).order_by("seq")[before:].values_list("type", "payload"))
    assert [t for t, _ in new] == ["contribution.finished"] * 5 + ["round.progress"], "the round advances once"
    assert (new[-1][1]["done"], new[-1][1]["total"]) == (5, 6)
    totals = DesignSession.objects.filter(pk=session.pk).values_list("tokens_in", "tokens_out").get()
    assert totals == (50, 25), "the usage of the five recorded results, none of the discarded one"

def test_the_sweeper_finds_expired_leases_and_lost_messages_once(analysis):
    running, lost, fresh, rerun, *_ = list(analysis.contributions.order_by("id"))
    runner.claim(running.pk)
    age(running, lease_expires_at=timezone.now() - timedelta(seconds=1))
    age(lost, lease_expires_at=timezone.now() - timedelta(seconds=1))  # queued, and no worker took it in time
    # Pending as a re-run is opened (no lease, no try), and its message lost a lease ago.
    age(rerun, status=C.PENDING, tries=0, lease_expires_at=None, created_at=timezone.now() - timedelta(seconds=31))
    due = runner.contributions_due()
    assert sorted(due) == sorted([running.pk, lost.pk, rerun.pk])
    assert fresh.pk not in due
    assert Contribution.objects.get(pk=running.pk).status == C.PENDING, "handed back for the next delivery"
    assert Contribution.objects.get(pk=lost.pk).status == C.PENDING, "the next delivery starts its next try"
    assert runner.contributions_due() == [], "each is enqueued once per lease, not on every sweep"
    # A publish that failed (broker down) makes them due again at the next sweep.
    runner.contributions_due_now(due)
    assert sorted(runner.contributions_due()) == sorted(due)


def test_the_sweeper_leaves_cancelled_sessions_and_settled_rounds_alone(analysis):
    c = analysis.contributions.first()
    age(c, lease_expires_at=timezone.now() - timedelta(minutes=5))
    DesignSession.objects.filter(pk=analysis.session_id).update(status=DesignSession.Status.CANCELLED)
    assert runner.contributions_due() == []
    DesignSession.objects.filter(pk=analysis.session_id).update(status=DesignSession.Status.RUNNING)
    Round.objects.filter(pk=analysis.pk).update(status=Round.Status.DONE)
    assert runner.contributions_due() == []


def test_a_round_left_synthesizing_is_found_after_the_stall_time(analysis, settings):
    settings.MAESTRO_SYNTHESIS_STALL_SECONDS = 5
    analysis.contributions.update(status=C.DONE, finished_at=timezone.now())
    Round.objects.filter(pk=analysis.pk).update(status=Round.Status.SYNTHESIZING)
    assert runner.rounds_stalled() == [], "its synthesis may still be on its way"
    analysis.contributions.update(finished_at=timezone.now() - timedelta(seconds=6))
    assert runner.rounds_stalled() == [analysis.pk]


def test_sweeps_run_lost_work_to_the_end(analysis, eager_celery, settings):
    """A dead worker's contribution, five lost messages, then a lost synthesis: sweeps (tasks
    run inline here) get the round done."""
    settings.MAESTRO_SYNTHESIS_STALL_SECONDS = 5
    first = analysis.contributions.first()
    runner.claim(first.pk)
    age(first, lease_expires_at=timezone.now() - timedelta(seconds=1))
    analysis.contributions.exclude(pk=first.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=1))
    with _synthesis_failing():
        assert tasks.sweep()["contributions"] == 6
    assert not analysis.contributions.exclude(status=C.DONE).exists()
    assert Contribution.objects.get(pk=first.pk).tries == 2
    # The synthesis failed, and its retry after commit is lost too (on-commit callbacks never run
    # in this test).
    assert Round.objects.get(pk=analysis.pk).status == Round.Status.SYNTHESIZING
    analysis.contributions.update(finished_at=timezone.now() - timedelta(seconds=6))
    assert tasks.sweep()["syntheses"] == 1
    assert Round.objects.get(pk=analysis.pk).status == Round.Status.DONE
    assert tasks.sweep() == {"contributions": 0, "syntheses": 0, "expired": 0}


@contextmanager
def _synthesis_failing():
    """The synthesis written with a round's last result fails (and is undone alone)."""
    from sessions_app.engine import synthesis

    def failed(round_id, **_kwargs):
        raise RuntimeError("synthesis failed")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(synthesis, "synthesis_write", failed)
        yield


def _settle_all(rnd: Round, *, synthesize: bool = False) -> None:
    """Every call of the round answered; unless ``synthesize``, the synthesis written with the
    last result fails (and its retry after commit is never run in these tests)."""
    with nullcontext() if synthesize else _synthesis_failing():
        for c in rnd.contributions.all():
            claim_ = runner.claim(c.pk)
            runner.finish(c.pk, ProviderResult(text=f"{c.author_name} answers.", provider="openai", model="m"), 10, tries=claim_.tries)
    if not synthesize:
        assert Round.objects.get(pk=rnd.pk).status == Round.Status.SYNTHESIZING


def test_the_last_result_and_the_synthesis_commit_together(analysis):
    """The transaction that records a round's last result writes its synthesis too; the next
    step follows after commit (never run here), so it stays due."""
    _settle_all(analysis, synthesize=True)
    rnd = Round.objects.get(pk=analysis.pk)
    assert rnd.status == Round.Status.DONE and rnd.advance_due
    assert rnd.synthesis.text.startswith(f'"CLUSTER ARCHITECTURE ROUND {rnd.number}:')
    types = list(analysis.session.events.order_by("seq").values_list("type", flat=True))
    assert types.index("synthesis.ready") > max(i for i, t in enumerate(types) if t == "contribution.finished")


def test_the_last_result_takes_the_round_from_running_to_done_in_one_update(analysis):
    """Written with the round's last result, the synthesis marks the round done from running: the
    round is never written as synthesizing on the way (one statement fewer at a round's end)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    *first, last = list(analysis.contributions.all())
    answer = ProviderResult(text="An answer.", provider="openai", model="m")
    for c in first:
        runner.finish(c.pk, answer, 10, tries=runner.claim(c.pk).tries)
    claim_ = runner.claim(last.pk)
    with CaptureQueriesContext(connection) as queries:
        runner.finish(last.pk, answer, 10, tries=claim_.tries)
    round_writes = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "sessions_app_round"')]
    assert len(round_writes) == 1 and "'done'" in round_writes[0] and "'running'" in round_writes[0]
    assert Round.objects.get(pk=analysis.pk).status == Round.Status.DONE


def test_a_rounds_end_reads_its_contributions_once_and_asks_the_gate_only_what_it_does_not_know(analysis):
    """The round's rows are read (and locked) once, with the session: the results are applied to
    them, and the progress and the synthesis come from them. The gate is not asked whether a
    synthesis exists (one was just written) nor whether the round's specialists delivered, and
    it comes out as the full check says."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from sessions_app.engine.checklist import gate_state
    from sessions_app.engine.context import SessionContext

    *first, last = list(analysis.contributions.all())
    answer = ProviderResult(text="An answer.", provider="openai", model="m")
    for c in first:
        runner.finish(c.pk, answer, 10, tries=runner.claim(c.pk).tries)
    claim_ = runner.claim(last.pk)
    with CaptureQueriesContext(connection) as queries:
        runner.finish_many([runner.Finished(last.pk, answer, 10, claim_.tries, claim_.session_id, claim_.round_id)])
    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT") and 'FROM "sessions_app_contribution"' in q["sql"]]
    assert len(reads) == 1, reads
    assert not any("sessions_app_synthesis" in q["sql"] and "EXISTS" in q["sql"] for q in queries)
    session = DesignSession.objects.get(pk=analysis.session_id)
    assert Round.objects.get(pk=analysis.pk).status == Round.Status.DONE
    assert session.gate == gate_state(session, SessionContext.load(session))
    assert session.gate["data_flow_understood"] and session.gate["pattern_consistency_verified"]


def test_a_contributions_summary_is_its_providers_or_its_first_line_of_substance(analysis):
    """The synthesis lists each specialist's summary: the one the provider gave, else the text's
    first line that is neither a section heading nor a byline in italics."""
    given, derived = list(analysis.contributions.all())[:2]
    byline = "_Written by the rule-based designer: no language model was involved._\n\n## Findings\n\n"
    runner.finish(given.pk, ProviderResult(text=byline + "- orders owns the order rows", provider="rules", model="m",
                                           summary="Rule-based analysis: 2 findings."), 10, tries=runner.claim(given.pk).tries)
    runner.finish(derived.pk, ProviderResult(text=byline + "- orders owns the order rows", provider="rules", model="m"),
                  10, tries=runner.claim(derived.pk).tries)
    assert Contribution.objects.get(pk=given.pk).payload["summary"] == "Rule-based analysis: 2 findings."
    assert Contribution.objects.get(pk=derived.pk).payload["summary"] == "orders owns the order rows"


def test_a_synthesis_delivered_while_the_round_still_runs_writes_nothing(analysis):
    """Only the transaction that sees every call settled may synthesize a running round; a
    delivery of the synthesis (a duplicate, the sweeper's) needs the round synthesizing."""
    from sessions_app.engine import synthesis

    assert synthesis.synthesis_write(analysis.pk) is None
    assert Round.objects.get(pk=analysis.pk).status == Round.Status.RUNNING
    assert not Synthesis.objects.filter(round=analysis).exists()


def test_a_failed_synthesis_leaves_the_round_results_recorded(analysis):
    """The synthesis is undone alone: every result stays recorded and the round waits,
    synthesizing, for the synthesis to be tried again."""
    _settle_all(analysis)
    assert not analysis.contributions.exclude(status=C.DONE).exists()
    assert not Synthesis.objects.filter(round=analysis).exists()
    finished = analysis.session.events.filter(type="contribution.finished", payload__round_id=analysis.pk)
    assert finished.count() == analysis.contributions.count()


def test_a_synthesis_that_fails_half_way_takes_its_events_with_it(analysis, monkeypatch):
    """The synthesis appends its events with the round's results, in one statement at the end;
    one that fails after writing its synthesis and announcing it leaves neither the row nor the
    announcement, and the results' events stay, numbered without a gap."""
    from sessions_app.engine import synthesis

    def broken(*_args, **_kwargs):
        raise RuntimeError("gate check failed")
    monkeypatch.setattr(synthesis, "gate_refresh", broken)
    _settle_all(analysis, synthesize=True)
    assert Round.objects.get(pk=analysis.pk).status == Round.Status.SYNTHESIZING
    assert not Synthesis.objects.filter(round=analysis).exists()
    log = analysis.session.events.order_by("seq")
    assert not log.filter(type="synthesis.ready").exists()
    assert log.filter(type="contribution.finished", payload__round_id=analysis.pk).count() == analysis.contributions.count()
    seqs = list(log.values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert DesignSession.objects.get(pk=analysis.session_id).last_seq == seqs[-1]


def test_the_last_results_progress_and_synthesis_are_numbered_in_the_order_they_happened(analysis):
    """Gathered into one append, the round's end keeps its order: each result, the progress, the
    synthesis, then the gate."""
    contributions = list(analysis.contributions.order_by("pk"))
    claims = [runner.claim(c.pk) for c in contributions]
    results = [
        runner.Finished(c.pk, ProviderResult(text=f"{c.author_name} answers.", provider="openai", model="m"), 10, claim_.tries)
        for c, claim_ in zip(contributions, claims, strict=True)
    ]
    runner.finish_many(results[:-2])
    before = analysis.session.events.order_by("-seq").values_list("seq", flat=True).first()
    runner.finish_many(results[-2:])
    tail = list(analysis.session.events.filter(seq__gt=before).order_by("seq").values_list("type", "payload"))
    assert [t for t, _ in tail] == [
        "contribution.finished", "contribution.finished", "round.progress", "synthesis.ready", "gate.changed",
    ]
    assert [p["contribution_id"] for _, p in tail[:2]] == [c.pk for c in contributions[-2:]]
    assert tail[2][1]["done"] == tail[2][1]["total"] == len(contributions)
    done = Contribution.objects.filter(pk__in=[c.pk for c in contributions], status=C.DONE)
    assert sorted(done.values_list("text", flat=True)) == sorted(f"{c.author_name} answers." for c in contributions)


class _Died(Exception):
    pass


def test_a_crash_between_the_synthesis_and_the_next_step_is_found_and_the_step_taken_once(analysis, eager_celery, settings, monkeypatch):
    """The synthesis commits on its own, so pages see it at once; when the process dies before
    the next step, the round keeps ``advance_due`` and the sweeper takes that step, once."""
    from sessions_app.engine import synthesis

    settings.MAESTRO_SYNTHESIS_STALL_SECONDS = 5
    monkeypatch.setattr(tasks, "_synthesis_sent", {})  # (round ids of earlier tests may come again)
    _settle_all(analysis)

    def died(**_kwargs):
        raise _Died
    with monkeypatch.context() as patch:
        patch.setattr(synthesis, "after_round", died)
        with pytest.raises(_Died):
            synthesis.round_synthesize(round_id=analysis.pk)
    rnd = Round.objects.get(pk=analysis.pk)
    assert rnd.status == Round.Status.DONE and rnd.advance_due, "the synthesis is written, the next step is not taken"
    assert rnd.synthesis is not None
    session = DesignSession.objects.get(pk=analysis.session_id)
    assert session.phase == "discovery" and session.rounds.count() == 2
    assert runner.rounds_stalled() == [], "the next step may still be on its way"
    Round.objects.filter(pk=rnd.pk).update(finished_at=timezone.now() - timedelta(seconds=6))
    assert runner.rounds_stalled() == [rnd.pk]
    assert tasks.sweep()["syntheses"] == 1
    session.refresh_from_db()
    assert session.phase == "design"
    assert list(session.rounds.values_list("kind", flat=True)) == ["assembly", "analysis", "design"]
    assert not Round.objects.get(pk=rnd.pk).advance_due
    # A late duplicate of the synthesis message, and the next sweep, change nothing.
    synthesis.round_synthesize(round_id=rnd.pk)
    assert runner.rounds_stalled() == []
    assert session.rounds.count() == 3


def test_resuming_between_the_synthesis_and_the_next_step_takes_the_step_once(analysis, monkeypatch):
    """A session paused while its round synthesizes: a resume that lands before the step after the
    synthesis takes that step itself; the step then finds nothing left to do."""
    from sessions_app.engine import flow, synthesis

    _settle_all(analysis)
    session = services.session_pause(session=analysis.session)
    with monkeypatch.context() as patch:
        patch.setattr(synthesis, "after_round", lambda **_kwargs: None)  # not yet run
        synthesis.round_synthesize(round_id=analysis.pk)
    assert Round.objects.get(pk=analysis.pk).advance_due
    services.session_resume(session=session)
    assert session.rounds.filter(kind="design").count() == 1
    flow.after_round(round_id=analysis.pk)  # the step that was on its way
    assert session.rounds.filter(kind="design").count() == 1
    assert not Round.objects.get(pk=analysis.pk).advance_due


def test_a_batch_opens_its_results_transaction_while_the_last_calls_are_still_coming(analysis, settings, monkeypatch):
    """The first result of a batch locks the session and reads the round before the others
    arrive, with what the round's synthesis reads (the results still awaited can complete the
    round); those that arrive within the gather window are recorded in the same transaction,
    and the round ends with the last of them."""
    import queue
    import threading
    import time

    from sessions_app.engine import batch, state, synthesis

    settings.MAESTRO_RESULT_GATHER_MS = 2000
    claims, busy = runner.claims_take([c.pk for c in analysis.contributions.order_by("pk")])
    assert claims and not busy
    locked: list[float] = []
    real_lock = state.session_lock
    monkeypatch.setattr(state, "session_lock", lambda pk, **kw: locked.append(time.monotonic()) or real_lock(pk, **kw))
    read: list[float] = []
    real_reads = synthesis.synthesis_reads
    monkeypatch.setattr(synthesis, "synthesis_reads", lambda session: read.append(time.monotonic()) or real_reads(session))
    answer = ProviderResult(text="An answer.", provider="openai", model="m")
    outcomes: queue.SimpleQueue = queue.SimpleQueue()
    outcomes.put(batch._Outcome(claims[0], result=answer, latency_ms=10))
    last_put: list[float] = []

    def the_rest() -> None:
        for claim_ in claims[1:]:
            outcomes.put(batch._Outcome(claim_, result=answer, latency_ms=10))
        last_put.append(time.monotonic())
    threading.Timer(0.3, the_rest).start()
    rounds = {analysis.session_id: {analysis.pk}}
    started = threading.Event()
    started.set()  # the calls' starts are recorded
    assert batch._record_next(outcomes, len(claims), rounds, started, lambda *a: None) == len(claims)
    assert len(locked) == 1 and locked[0] < last_put[0], "the session was locked before the last result came"
    assert len(read) == 1 and read[0] < last_put[0], "what the synthesis reads was read before the last result came"
    assert Round.objects.get(pk=analysis.pk).status == Round.Status.DONE
    assert set(analysis.contributions.values_list("status", flat=True)) == {C.DONE}


def test_a_cancellation_is_appended_as_one_burst(analysis):
    """Cancelling a session with a round of queued calls appends each untaken call's
    cancellation, the points it closes and the status in one INSERT, numbered in that order;
    a call no worker had taken never starts, one a worker took is left to it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    session = DesignSession.objects.get(pk=analysis.session_id)
    taken = runner.claim(analysis.contributions.order_by("pk").first().pk)
    before = DesignSession.objects.get(pk=session.pk).last_seq
    waiting = list(analysis.contributions.exclude(pk=taken.contribution_id).order_by("pk").values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as queries:
        services.session_cancel(session=session)
    inserts = [q for q in queries if 'INSERT INTO "sessions_app_sessionevent"' in q["sql"]]
    assert len(inserts) == 1
    tail = list(analysis.session.events.filter(seq__gt=before).order_by("seq").values_list("type", "payload"))
    assert [p["contribution_id"] for t, p in tail if t == "contribution.failed"] == waiting
    assert tail[-1][0] == "status.changed" and tail[-1][1]["status"] == DesignSession.Status.CANCELLED
    assert set(analysis.contributions.filter(pk__in=waiting).values_list("status", flat=True)) == {C.CANCELLED}
    assert Contribution.objects.get(pk=taken.contribution_id).status == C.RUNNING
    assert runner.claims_take(waiting, record_start=True) == ([], []), "a cancelled call is not taken"


def test_a_rounds_queued_calls_are_taken_by_one_update_with_their_starts_already_in_the_log(analysis):
    """A round's calls come queued, their starts appended with the round: the delivery takes
    them by stamping its start on them (no transaction, no lock on the session, nothing appended);
    a second delivery finds them taken."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ids = list(analysis.contributions.order_by("pk").values_list("pk", flat=True))
    before = DesignSession.objects.get(pk=analysis.session_id).last_seq
    with CaptureQueriesContext(connection) as queries:
        claims, busy = runner.claims_take(ids, record_start=True)
    assert [c.contribution_id for c in claims] == ids and not busy
    assert all(c.tries == 1 and c.started for c in claims)
    sql = [q["sql"] for q in queries]
    assert sum("UPDATE" in s.replace("FOR UPDATE", "") for s in sql) == 1
    assert not any("FOR UPDATE" in s or "SAVEPOINT" in s or "sessionevent" in s for s in sql)
    if connection.vendor == "postgresql":  # taken and read in one statement, the session in another
        assert len(sql) == 2 and sql[0].startswith("WITH taken AS (UPDATE")
    assert DesignSession.objects.get(pk=analysis.session_id).last_seq == before, "their starts came with the round"
    assert all(c.started_at is not None and not c.queued and c.tries == 1 for c in Contribution.objects.filter(pk__in=ids))
    again, busy = runner.claims_take(ids, record_start=True)
    assert again == [] and sorted(pk for pk, _ in busy) == sorted(ids)


def test_queued_calls_taken_in_one_statement_carry_the_rows_the_orm_reads(analysis):
    """The claim of queued calls reads the rows itself (PostgreSQL): every field of the
    contribution, its round and specialist, the session and its related rows comes out as the
    ORM reads it (JSON, times, decimals), and the call needs no further query."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ids = list(analysis.contributions.order_by("pk").values_list("pk", flat=True))
    claims, _ = runner.claims_take(ids, record_start=True)
    assert [c.contribution_id for c in claims] == ids

    def fields(obj):
        return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}

    for claim_ in claims:
        c = claim_.contribution
        fresh = Contribution.objects.select_related("round", "specialist", "session__project", "session__prd",
                                                    "session__inventory_revision", "session__template").get(pk=c.pk)
        with CaptureQueriesContext(connection) as queries:
            read = [c, c.round, c.specialist, c.session, c.session.project, c.session.prd,
                    c.session.inventory_revision, c.session.template]
        assert not queries.captured_queries, "what the call needs came with its claim"
        expected = [fresh, fresh.round, fresh.specialist, fresh.session, fresh.session.project, fresh.session.prd,
                    fresh.session.inventory_revision, fresh.session.template]
        for got, want in zip(read, expected, strict=True):
            assert (got is None) == (want is None)
            if want is not None:
                assert type(got) is type(want) and fields(got) == fields(want)
                assert got._state.adding is False and got._state.db == want._state.db
    assert claims[0].contribution.session.team and isinstance(claims[0].contribution.session.team, list)
    assert len({id(c.contribution.session) for c in claims}) == 1, "the round's calls share their session's rows"


def test_a_queued_call_of_a_cancelled_session_is_cancelled_not_taken(analysis):
    ids = list(analysis.contributions.order_by("pk").values_list("pk", flat=True))
    DesignSession.objects.filter(pk=analysis.session_id).update(status=DesignSession.Status.CANCELLED)
    assert runner.claims_take(ids, record_start=True) == ([], [])
    assert set(Contribution.objects.filter(pk__in=ids).values_list("status", flat=True)) == {C.CANCELLED}
    assert not Contribution.objects.filter(pk__in=ids, started_at__isnull=False).exists()


def test_a_pending_call_among_queued_ones_gets_its_start_appended_with_its_claim(analysis):
    rerun, *queued = list(analysis.contributions.order_by("pk"))
    age(rerun, status=C.PENDING, tries=0, lease_expires_at=None)  # as a re-run is opened
    before = DesignSession.objects.get(pk=analysis.session_id).last_seq
    claims, busy = runner.claims_take([rerun.pk, *(c.pk for c in queued)], record_start=True)
    assert len(claims) == 1 + len(queued) and not busy and all(c.started for c in claims)
    assert {c.contribution_id: c.tries for c in claims} == {rerun.pk: 1, **{c.pk: 1 for c in queued}}
    appended = list(analysis.session.events.filter(seq__gt=before).values_list("type", "payload__contribution_id"))
    assert appended == [("contribution.started", rerun.pk)]


def test_a_queued_call_whose_message_could_not_be_sent_is_due_at_the_next_sweep(analysis):
    c = analysis.contributions.first()
    assert runner.contributions_due() == []
    runner.contributions_due_now([c.pk])  # the broker was down at commit
    assert runner.contributions_due() == [c.pk]


def test_a_round_s_results_reuse_the_related_rows_its_claim_read(analysis):
    """The results' transaction locks the session row alone and takes its project, PRD and
    inventory revision from the session as the claim read them: no join, and the synthesis is
    written from them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    claims, _ = runner.claims_take([c.pk for c in analysis.contributions.order_by("pk")])
    answer = ProviderResult(text="An answer.", provider="openai", model="m")
    results = [
        runner.Finished(c.contribution_id, answer, 10, c.tries, c.session_id, c.round_id, session=c.contribution.session)
        for c in claims
    ]
    with CaptureQueriesContext(connection) as queries:
        runner.finish_many(results)
    # (SQLite has no FOR UPDATE: there the read that would lock is the session's only read.)
    for_update = "FOR UPDATE" if connection.vendor == "postgresql" else ""
    locks = [q["sql"] for q in queries if 'FROM "sessions_app_designsession"' in q["sql"] and for_update in q["sql"]]
    assert len(locks) == 1 and "JOIN" not in locks[0], locks
    assert not any('FROM "teams_app_project"' in q["sql"] or 'FROM "teams_app_prd"' in q["sql"] for q in queries)
    assert Round.objects.get(pk=analysis.pk).status == Round.Status.DONE
    assert Synthesis.objects.filter(round=analysis).exists()


def test_a_round_s_end_reads_what_its_synthesis_needs_before_the_last_results(analysis):
    """Opened while the round's results are still awaited, the results' transaction reads the
    session's proposal and design approval on entry; recording the results that complete the
    round then reads neither, and writes the synthesis and the gate. Opened with nothing to
    await, it reads nothing ahead."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    claims, _ = runner.claims_take([c.pk for c in analysis.contributions.order_by("pk")])
    answer = ProviderResult(text="An answer.", provider="openai", model="m")
    results = [
        runner.Finished(c.contribution_id, answer, 10, c.tries, c.session_id, c.round_id, session=c.contribution.session)
        for c in claims
    ]
    ahead = ('FROM "sessions_app_designproposal"', 'FROM "sessions_app_validationpoint"')
    with CaptureQueriesContext(connection) as entry:
        with runner.results_recording(analysis.session_id, {analysis.pk}, expected=len(results)) as record:
            entry_sql = [q["sql"] for q in entry.captured_queries]
            with CaptureQueriesContext(connection) as recording:
                record(results)
    assert all(any(table in sql for sql in entry_sql) for table in ahead), "read on entry"
    assert not any(table in q["sql"] for q in recording.captured_queries for table in ahead), "not read again"
    assert Round.objects.get(pk=analysis.pk).status == Round.Status.DONE
    assert Synthesis.objects.filter(round=analysis).exists()
    assert DesignSession.objects.get(pk=analysis.session_id).gate["user_requirements_confirmed"] is False

    with CaptureQueriesContext(connection) as nothing_awaited:
        with runner.results_recording(analysis.session_id, {analysis.pk}) as record:
            pass
    assert not any(table in q["sql"] for q in nothing_awaited.captured_queries for table in ahead)


def test_an_approval_read_on_entry_is_the_gate_s_answer(analysis):
    """The design approval read ahead is the one the gate records (an approved design gate reads
    as confirmed)."""
    from sessions_app.engine.checklist import DESIGN_GATE
    from sessions_app.models import ValidationPoint

    ValidationPoint.objects.create(
        session_id=analysis.session_id, gate=DESIGN_GATE, kind=ValidationPoint.Kind.APPROVAL, state=ValidationPoint.State.APPROVED,
        title="Design", body="Approve the design.",
    )
    claims, _ = runner.claims_take([c.pk for c in analysis.contributions.order_by("pk")])
    answer = ProviderResult(text="An answer.", provider="openai", model="m")
    results = [
        runner.Finished(c.contribution_id, answer, 10, c.tries, c.session_id, c.round_id, session=c.contribution.session)
        for c in claims
    ]
    with runner.results_recording(analysis.session_id, {analysis.pk}, expected=len(results)) as record:
        record(results)
    assert DesignSession.objects.get(pk=analysis.session_id).gate["user_requirements_confirmed"] is True


def test_a_related_row_the_session_no_longer_points_at_is_read_again(analysis, demo):
    """A copy whose PRD is not the one the locked row points at (it was switched meanwhile)
    lends only what still matches: the new PRD is read from the database."""
    from django.db import transaction

    from sessions_app.engine import state
    from teams_app.models import PRD

    session = DesignSession.objects.select_related(*state.SESSION_RELATED).get(pk=analysis.session_id)
    other = PRD.objects.create(project=session.project, reference="PRD-999", title="Another PRD", body="Other body.")
    DesignSession.objects.filter(pk=session.pk).update(prd=other)
    with transaction.atomic():
        locked = state.session_lock(session.pk, known=session)
        assert locked.project is session.project  # still the same row: the copy's object
        assert locked.prd.pk == other.pk and locked.prd.title == "Another PRD"


def test_a_queued_call_s_card_waits_until_a_worker_takes_it(analysis, client, demo):
    """The card of a call no worker has taken reads "Waiting" (marked queued, with the label it
    takes once taken); once a worker has taken it, the page shows it working."""
    from django.template.loader import render_to_string

    c = analysis.contributions.filter(author="specialist").order_by("pk").first()
    waiting = render_to_string("sessions_app/partials/card.html", {"c": c})
    assert 'class="contrib contrib-specialist status-running queued"' in waiting
    assert '<span class="cstatus" title="Handed to the queue; no worker has taken it yet" data-taken="Working">Waiting</span>' in waiting
    runner.claim(c.pk)
    taken = render_to_string("sessions_app/partials/card.html", {"c": Contribution.objects.get(pk=c.pk)})
    assert " queued" not in taken and '<span class="cstatus">Working</span>' in taken


def test_a_call_says_it_was_taken_before_its_first_text(analysis, settings):
    """The first part of a taken call's text is empty (it turns a waiting card to working on
    the pages), and its text follows it; a call whose card is not out yet sends no such part."""
    import asyncio
    import threading

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from sessions_app.events import session_group
    from sessions_app.publisher import BATCH_MESSAGE, publisher
    from sessions_app.streaming import TEXT_MESSAGE

    claims, _ = runner.claims_take([c.pk for c in analysis.contributions.order_by("pk")][:2])
    out, held = claims
    request, name = runner.build_request(out.contribution)
    assert name == "rules"
    started, not_yet = threading.Event(), threading.Event()
    started.set()

    async def scenario() -> list[dict]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(session_group(analysis.session_id), channel)
        runner.DeltaWriter(held, frame_ms=50, started=not_yet).taken()  # its card is on its way: nothing
        result, _ = runner.call(out, request, name, started)
        assert publisher.flush()
        parts: list[dict] = []
        while "".join(p["text"] for p in parts) != result.text:
            message = await asyncio.wait_for(layer.receive(channel), timeout=5)
            parts += [m for m in (message["messages"] if message["type"] == BATCH_MESSAGE else [message]) if m["type"] == TEXT_MESSAGE]
        await layer.group_discard(session_group(analysis.session_id), channel)
        return parts

    parts = async_to_sync(scenario)()
    assert {p["contribution_id"] for p in parts} == {out.contribution_id}
    assert (parts[0]["at"], parts[0]["text"]) == (0, "") and parts[1]["at"] == 0 and parts[1]["text"]
