"""Decision services: numbering, the append-only history, superseding, links, and the two entry
points the engine calls (a settled key question, an approved validation point)."""

from __future__ import annotations

import pytest

from sessions_app.decisions.models import Decision, DecisionLink, DecisionProvenance, StatusChange
from sessions_app.decisions.services import hooks, writes
from sessions_app.models import KeyQuestion
from teams_app.errors import ApplicationError
from teams_app.models import Membership, Project
from tests.sessions_app.decisions.builders import EVENTS, MIXED, REST, approve, make_design, open_point

pytestmark = pytest.mark.django_db
D = Decision.Status


def _accepted(project, user, title="Use PostgreSQL for the ledger"):
    d = writes.decision_create(
        project=project, user=user, status=D.PROPOSED, title=title, context="Points need ACID."
    )
    return writes.decision_set_status(decision=d, to_status=D.ACCEPTED, actor=user)


# -- numbering and creation ----------------------------------------------------------------------


def test_numbers_are_per_project_and_shown_as_adr_ids(project, make_user):
    user = make_user("ann")
    other = Project.objects.create(name="Other", slug="other")
    a = writes.decision_create(project=project, user=user, title="First")
    b = writes.decision_create(project=project, user=user, title="Second")
    c = writes.decision_create(project=other, user=user, title="Elsewhere")
    assert (a.number, b.number, c.number) == (1, 2, 1)
    assert a.adr_id == "ADR-0001" and b.adr_id == "ADR-0002"
    assert b.file_name == "0002-second.md"


def test_create_writes_the_first_status_change_and_cleans_lists(project, make_user):
    user = make_user("ann", first_name="Ann", last_name="Lee")
    d = writes.decision_create(
        project=project,
        user=user,
        status=D.PROPOSED,
        title="  Use   events ",
        tags=["Checkout", "checkout", " Data Flow "],
        decision_drivers=["Consistency", "", "Consistency"],
        consulted="Bob",
        options=[{"title": "Events", "good": ["decoupled", ""]}, {"title": "REST", "bad": ["chatty"]}],
    )
    assert d.title == "Use events"
    assert d.tags == ["checkout", "data-flow"]
    assert d.decision_drivers == ["Consistency"]
    assert d.consulted == ["Bob"]
    assert [(o.order, o.title, o.good, o.bad) for o in d.options.all()] == [
        (1, "Events", ["decoupled"], []),
        (2, "REST", [], ["chatty"]),
    ]
    (change,) = d.status_changes.all()
    assert (change.from_status, change.to_status, change.actor, change.actor_label) == ("", D.PROPOSED, user, "Ann Lee")


@pytest.mark.parametrize("status", [D.ACCEPTED, D.SUPERSEDED, "nonsense"])
def test_create_starts_as_draft_or_proposed_only(project, make_user, status):
    with pytest.raises(ApplicationError):
        writes.decision_create(project=project, user=make_user(), status=status, title="X")


def test_create_refuses_an_empty_title_and_another_projects_prd(project, make_user):
    user = make_user()
    with pytest.raises(ApplicationError, match="title"):
        writes.decision_create(project=project, user=user, title="   ")
    other = Project.objects.create(name="Other", slug="other")
    prd = other.prds.create(reference="PRD-1", title="Theirs")
    with pytest.raises(ApplicationError, match="another project"):
        writes.decision_create(project=project, user=user, title="X", prd=prd)
    assert not Decision.objects.exists()


# -- status transitions and the append-only rule -------------------------------------------------


def test_allowed_transitions_each_write_a_status_change(project, make_user):
    user = make_user("ann")
    d = writes.decision_create(project=project, user=user, title="Cache the catalogue")
    d = writes.decision_set_status(decision=d, to_status=D.PROPOSED, actor=user)
    d = writes.decision_set_status(decision=d, to_status=D.ACCEPTED, actor=user, note="Agreed in review")
    d = writes.decision_set_status(decision=d, to_status=D.DEPRECATED, actor=user)
    steps = list(d.status_changes.values_list("from_status", "to_status"))
    assert steps == [("", D.DRAFT), (D.DRAFT, D.PROPOSED), (D.PROPOSED, D.ACCEPTED), (D.ACCEPTED, D.DEPRECATED)]
    assert d.decision_makers == ["ann"]  # accepting by hand names the actor a decision maker


@pytest.mark.parametrize(
    "path,bad",
    [
        ([], D.ACCEPTED),  # draft cannot skip proposed
        ([D.PROPOSED], D.DEPRECATED),
        ([D.PROPOSED, D.REJECTED], D.ACCEPTED),
        ([D.PROPOSED, D.ACCEPTED], D.PROPOSED),
        ([D.PROPOSED, D.ACCEPTED, D.DEPRECATED], D.ACCEPTED),
        ([D.PROPOSED], D.PROPOSED),
    ],
)
def test_refused_transitions_change_nothing(project, make_user, path, bad):
    user = make_user()
    d = writes.decision_create(project=project, user=user, title="X")
    for status in path:
        d = writes.decision_set_status(decision=d, to_status=status, actor=user)
    before = StatusChange.objects.count()
    with pytest.raises(ApplicationError):
        writes.decision_set_status(decision=d, to_status=bad, actor=user)
    d.refresh_from_db()
    assert d.status == (path[-1] if path else D.DRAFT)
    assert StatusChange.objects.count() == before


def test_draft_and_proposed_can_be_edited(project, make_user):
    user = make_user()
    d = writes.decision_create(project=project, user=user, title="X", options=[{"title": "A"}])
    d = writes.decision_update(decision=d, user=user, title="Better title", options=[{"title": "B"}, {"title": "C"}])
    assert d.title == "Better title"
    assert [o.title for o in d.options.all()] == ["B", "C"]
    assert d.number == 1 and d.slug == "x"  # the file name stays stable


def test_an_accepted_decision_is_never_rewritten(project, make_user):
    user = make_user()
    d = _accepted(project, user)
    with pytest.raises(ApplicationError, match="supersede it instead"):
        writes.decision_update(decision=d, user=user, title="Quietly different", context="Rewritten")
    d.refresh_from_db()
    assert (d.title, d.context) == ("Use PostgreSQL for the ledger", "Points need ACID.")
    deprecated = writes.decision_set_status(decision=d, to_status=D.DEPRECATED, actor=user)
    with pytest.raises(ApplicationError, match="cannot be edited"):
        writes.decision_update(decision=deprecated, user=user, title="Still no")


# -- supersede and links -------------------------------------------------------------------------


def test_supersede_links_the_successor_and_records_the_change(project, make_user):
    user = make_user("ann")
    old = _accepted(project, user)
    new = writes.decision_supersede(old=old, user=user, title="Use PostgreSQL with an outbox", chosen_option="Outbox")
    old.refresh_from_db()
    assert old.status == D.SUPERSEDED
    assert new.number == 2 and new.status == D.PROPOSED
    assert DecisionLink.objects.filter(from_decision=new, to_decision=old, kind="supersedes").exists()
    last = old.status_changes.order_by("-at", "-id").first()
    assert (last.from_status, last.to_status, last.actor, last.note) == (
        D.ACCEPTED,
        D.SUPERSEDED,
        user,
        "Superseded by ADR-0002",
    )


def test_a_decision_may_have_several_successors(project, make_user):
    user = make_user()
    old = _accepted(project, user, title="One database for everything")
    a = writes.decision_supersede(old=old, user=user, title="Orders keep their own database", status=D.ACCEPTED)
    b = writes.decision_supersede(old=old, user=user, title="Points keep their own database")
    successors = DecisionLink.objects.filter(to_decision=old, kind="supersedes").values_list(
        "from_decision__number", flat=True
    )
    assert sorted(successors) == [a.number, b.number]
    # Only the first supersede changed the status; the history has no duplicate step.
    assert old.status_changes.filter(to_status=D.SUPERSEDED).count() == 1
    assert a.status == D.ACCEPTED and a.status_changes.get().to_status == D.ACCEPTED


@pytest.mark.parametrize("status_path", [[], [D.PROPOSED], [D.PROPOSED, D.REJECTED]])
def test_only_accepted_decisions_are_superseded(project, make_user, status_path):
    user = make_user()
    d = writes.decision_create(project=project, user=user, title="X")
    for s in status_path:
        d = writes.decision_set_status(decision=d, to_status=s, actor=user)
    with pytest.raises(ApplicationError, match="accepted"):
        writes.decision_supersede(old=d, user=user, title="Y")
    assert Decision.objects.count() == 1


def test_links_are_idempotent_and_stay_in_one_project(project, make_user):
    user = make_user()
    a = writes.decision_create(project=project, user=user, title="A")
    b = writes.decision_create(project=project, user=user, title="B")
    first = writes.decision_link(from_decision=a, to_decision=b, kind="amends", user=user)
    again = writes.decision_link(from_decision=a, to_decision=b, kind="amends", user=user)
    assert first.pk == again.pk
    writes.decision_link(from_decision=a, to_decision=b, kind="relates", user=user)
    assert DecisionLink.objects.count() == 2
    with pytest.raises(ApplicationError):
        writes.decision_link(from_decision=a, to_decision=a, kind="relates")
    with pytest.raises(ApplicationError):
        writes.decision_link(from_decision=a, to_decision=b, kind="blocks")
    other = writes.decision_create(project=Project.objects.create(name="O", slug="o"), user=user, title="C")
    with pytest.raises(ApplicationError, match="same project"):
        writes.decision_link(from_decision=a, to_decision=other, kind="relates")


# -- from a key question (the engine) ------------------------------------------------------------


def test_decision_from_key_question_records_options_provenance_and_links(design):
    d = hooks.decision_from_key_question(question=design.question)
    assert (d.number, d.status, d.key_question_id) == (1, D.PROPOSED, design.question.pk)
    assert d.title == design.question.text
    assert design.session.requirement in d.context and design.question.text in d.context
    assert d.chosen_option == EVENTS
    assert "75%" in d.justification and "Performance Engineer preferred" in d.justification
    assert d.decision_makers == []
    assert d.consulted == ["Integration Architect", "Data Flow Analyst", "Security Guardian", "Performance Engineer"]
    assert (d.session, d.round, d.prd, d.prd_reference) == (design.session, design.round2, design.prd, "PRD-42")
    assert d.tags == ["new-service-integration"]

    options = {o.title: o for o in d.options.all()}
    assert list(options) == [REST, EVENTS, MIXED]
    # Latest positions only: the analyst moved from REST to events in round 4.
    assert options[EVENTS].good == [
        "Integration Architect: Decouples checkout from the points ledger.",
        "Data Flow Analyst: An outbox keeps balances consistent.",
        "Security Guardian favours it",
    ]
    assert options[EVENTS].neutral == [f'Performance Engineer preferred "{MIXED}"']
    assert options[MIXED].good == ["Performance Engineer: Commands need an answer at once."]
    assert options[REST].good == []

    # Provenance cites every position's contribution (both rounds), with who/provider/model kept.
    cited = {(p.contribution_id, p.specialist_slug, p.provider, p.model, p.option) for p in d.provenance.all()}
    assert len(cited) == 8
    c = design.contributions["data-flow-analyst@3"]
    assert (c.pk, "data-flow-analyst", "openai", "llama3.1:8b", REST) in cited
    assert set(d.contributions.all()) == set(design.contributions.values())
    (created,) = d.status_changes.all()
    assert (created.actor, created.actor_label, created.to_status) == (None, "Maestro", D.PROPOSED)


def test_decision_from_key_question_is_idempotent(design):
    first = hooks.decision_from_key_question(question=design.question)
    second = hooks.decision_from_key_question(question=design.question)
    assert first.pk == second.pk
    assert Decision.objects.count() == 1
    assert DecisionProvenance.objects.count() == 8
    assert StatusChange.objects.count() == 1


def test_provenance_survives_the_contributions(design):
    d = hooks.decision_from_key_question(question=design.question)
    design.session.contributions.all().delete()  # e.g. a cleaned-up session
    rows = list(d.provenance.all())
    assert len(rows) == 8 and all(r.contribution_id is None for r in rows)
    assert {r.model for r in rows} == {"claude-sonnet-4", "llama3.1:8b", "rules-v1"}


def test_a_user_decision_says_who_decided(project, make_user):
    design = make_design(project, state=KeyQuestion.State.CONFLICT)
    q = design.question
    q.state, q.chosen, q.decided_by, q.agreement = (
        KeyQuestion.State.DECIDED,
        MIXED,
        make_user("pat", first_name="Pat"),
        0.5,
    )
    q.save()
    d = hooks.decision_from_key_question(question=q)
    assert d.chosen_option == MIXED
    assert d.justification.startswith("Pat decided it after the team could not agree (50% agreement).")
    assert d.decision_makers == []


def test_an_unsettled_question_is_refused(project):
    design = make_design(project, state=KeyQuestion.State.CONFLICT)
    with pytest.raises(ApplicationError, match="consensus"):
        hooks.decision_from_key_question(question=design.question)
    assert not Decision.objects.exists()


# -- accepted by a validation point --------------------------------------------------------------


def test_approval_accepts_the_sessions_proposed_decisions_with_history(design, member_factory, make_user):
    po = member_factory(Membership.Role.PRODUCT_OWNER)
    po2 = make_user("second-po", first_name="Sam", last_name="Ode")
    from_question = hooks.decision_from_key_question(question=design.question)
    by_hand = writes.decision_create(
        project=design.project, user=po, status=D.PROPOSED, title="Points expire after a year", session=design.session
    )
    draft = writes.decision_create(project=design.project, user=po, title="Still a draft", session=design.session)
    elsewhere = writes.decision_create(project=design.project, user=po, status=D.PROPOSED, title="Another session's")
    point = open_point(design.session)
    response = approve(point, po)

    accepted = hooks.decisions_accept_from_validation(point=point, response=response, approvers=[po, po2])
    assert [d.pk for d in accepted] == [from_question.pk, by_hand.pk]
    for d in accepted:
        d.refresh_from_db()
        assert d.status == D.ACCEPTED
        assert d.decision_makers == ["product_owner-shop", "Sam Ode"]
        change = d.status_changes.get(to_status=D.ACCEPTED)
        assert (change.from_status, change.actor, change.via) == (D.PROPOSED, po, response)
    for d in (draft, elsewhere):
        d.refresh_from_db()
        assert d.status in (D.DRAFT, D.PROPOSED) and not d.status_changes.filter(via=response).exists()

    # Idempotent: again changes nothing and answers the same decisions.
    again = hooks.decisions_accept_from_validation(point=point, response=response, approvers=[po, po2])
    assert [d.pk for d in again] == [from_question.pk, by_hand.pk]
    assert StatusChange.objects.filter(via=response).count() == 2


def test_approval_creates_missing_decisions_for_settled_questions(design, member_factory):
    po = member_factory(Membership.Role.PRODUCT_OWNER)
    point = open_point(design.session)
    (d,) = hooks.decisions_accept_from_validation(point=point, response=approve(point, po), approvers=[po])
    assert d.key_question == design.question and d.status == D.ACCEPTED
    assert list(d.status_changes.values_list("to_status", flat=True)) == [D.PROPOSED, D.ACCEPTED]


def test_only_an_approving_response_accepts(design, member_factory):
    from sessions_app.models import ValidationResponse

    po = member_factory(Membership.Role.PRODUCT_OWNER)
    hooks.decision_from_key_question(question=design.question)
    point = open_point(design.session)
    response = ValidationResponse.objects.create(point=point, user=po, verdict="request_changes", comment="No")
    with pytest.raises(ApplicationError):
        hooks.decisions_accept_from_validation(point=point, response=response, approvers=[po])
    assert Decision.objects.get().status == D.PROPOSED
