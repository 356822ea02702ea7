"""Decision pages: the permission matrix for every URL, the forms, the detail page, exports, and a
list whose query count does not grow with the page size."""

from __future__ import annotations

import datetime
import io
import zipfile

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sessions_app.decisions.models import Decision, DecisionLink, DecisionProvenance, StatusChange
from sessions_app.decisions.services import hooks, writes
from teams_app.models import Membership
from tests.sessions_app.decisions.builders import EVENTS, approve, make_design, open_point

pytestmark = pytest.mark.django_db
D = Decision.Status
R = Membership.Role
WRITERS = [R.OWNER, R.ARCHITECT, R.PRODUCT_OWNER]


@pytest.fixture
def log(project, make_user):
    """ADR-0001 draft (editable), ADR-0002 accepted (supersedable)."""
    author = make_user("author")
    draft = writes.decision_create(
        project=project, user=author, title="Cache the catalogue", context="Reads dominate."
    )
    accepted = writes.decision_create(project=project, user=author, status=D.PROPOSED, title="Use PostgreSQL")
    accepted = writes.decision_set_status(decision=accepted, to_status=D.ACCEPTED, actor=author)
    return {"draft": draft, "accepted": accepted}


def form_data(title: str = "Adopt an outbox", **extra) -> dict:
    data = {
        "title": title,
        "status": D.PROPOSED,
        "context": "Events get lost on crashes.",
        "decision_drivers": "Consistency\nSimplicity",
        "chosen_option": "Outbox",
        "justification": "it is transactional.",
        "tags": "events, storage",
        "options-TOTAL_FORMS": "2",
        "options-INITIAL_FORMS": "0",
        "options-MIN_NUM_FORMS": "0",
        "options-MAX_NUM_FORMS": "20",
        "options-0-title": "Outbox",
        "options-0-good": "Atomic with the write",
        "options-0-bad": "A relay to run",
        "options-1-title": "Dual write",
        "options-1-bad": "Loses events",
    }
    data.update(extra)
    return data


def url(name: str, slug: str = "shop", **kwargs) -> str:
    return reverse(name, kwargs={"slug": slug, **kwargs})


READ_URLS = [
    ("decision_list", {}),
    ("decision_detail", {"number": 1}),
    ("decision_detail", {"number": 2}),
    ("decision_markdown", {"number": 1}),
    ("decisions_export_zip", {}),
]
WRITE_FORMS = [
    ("decision_create", {}),
    ("decision_edit", {"number": 1}),
    ("decision_supersede", {"number": 2}),
]
WRITE_POSTS = [
    ("decision_create", {}, form_data()),
    ("decision_edit", {"number": 1}, form_data("Cache the catalogue in Redis")),
    ("decision_status", {"number": 1}, {"to_status": D.PROPOSED, "note": "Ready"}),
    ("decision_supersede", {"number": 2}, form_data("Use PostgreSQL with an outbox")),
    ("decision_link_add", {"number": 1}, {"kind": "relates", "target": "2"}),
]


def _state() -> tuple:
    return (
        list(Decision.objects.order_by("number").values_list("number", "title", "status")),
        StatusChange.objects.count(),
        DecisionLink.objects.count(),
    )


# -- permission matrix ---------------------------------------------------------------------------


@pytest.mark.parametrize("name,kwargs", READ_URLS + WRITE_FORMS)
def test_non_members_get_404_on_every_page(client, log, make_user, name, kwargs):
    client.force_login(make_user("outsider"))
    assert client.get(url(name, **kwargs)).status_code == 404


@pytest.mark.parametrize("name,kwargs,data", WRITE_POSTS)
def test_non_members_get_404_on_every_write_and_nothing_changes(client, log, make_user, name, kwargs, data):
    client.force_login(make_user("outsider"))
    before = _state()
    assert client.post(url(name, **kwargs), data).status_code == 404
    assert _state() == before


@pytest.mark.parametrize("name,kwargs", READ_URLS + WRITE_FORMS)
def test_anonymous_is_sent_to_login(client, log, name, kwargs):
    response = client.get(url(name, **kwargs))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("role", [*WRITERS, R.VIEWER])
@pytest.mark.parametrize("name,kwargs", READ_URLS)
def test_every_member_reads(client, log, member_factory, role, name, kwargs):
    client.force_login(member_factory(role))
    assert client.get(url(name, **kwargs)).status_code == 200


@pytest.mark.parametrize("name,kwargs", WRITE_FORMS)
def test_viewers_get_403_on_write_forms(client, log, member_factory, name, kwargs):
    client.force_login(member_factory(R.VIEWER))
    assert client.get(url(name, **kwargs)).status_code == 403


@pytest.mark.parametrize("name,kwargs,data", WRITE_POSTS)
def test_viewers_get_403_on_writes_and_nothing_changes(client, log, member_factory, name, kwargs, data):
    client.force_login(member_factory(R.VIEWER))
    before = _state()
    assert client.post(url(name, **kwargs), data).status_code == 403
    assert _state() == before


@pytest.mark.parametrize("role", WRITERS)
@pytest.mark.parametrize("name,kwargs", WRITE_FORMS)
def test_writers_open_the_forms(client, log, member_factory, role, name, kwargs):
    client.force_login(member_factory(role))
    assert client.get(url(name, **kwargs)).status_code == 200


@pytest.mark.parametrize("role", WRITERS)
@pytest.mark.parametrize("name,kwargs,data", WRITE_POSTS)
def test_writers_succeed(client, log, member_factory, role, name, kwargs, data):
    user = member_factory(role)
    client.force_login(user)
    before = _state()
    response = client.post(url(name, **kwargs), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert _state() != before
    if name in ("decision_create", "decision_supersede"):
        new = Decision.objects.get(number=3)
        assert new.created_by == user and response["Location"] == url("decision_detail", number=3)


def test_get_only_and_post_only_urls_refuse_other_methods(client, log, member_factory):
    client.force_login(member_factory(R.OWNER))
    assert client.post(url("decision_list")).status_code == 405
    assert client.get(url("decision_status", number=1)).status_code == 405
    assert client.get(url("decision_link_add", number=1)).status_code == 405


def test_unknown_decision_number_is_404(client, log, member_factory):
    client.force_login(member_factory(R.OWNER))
    assert client.get(url("decision_detail", number=99)).status_code == 404
    assert client.post(url("decision_link_add", number=1), {"kind": "relates", "target": "99"}).status_code == 404


# -- forms ---------------------------------------------------------------------------------------


def test_create_form_records_madr_fields_and_options(client, project, member_factory):
    user = member_factory(R.ARCHITECT)
    client.force_login(user)
    response = client.post(url("decision_create"), form_data())
    assert response.status_code == 302
    d = Decision.objects.get()
    assert (d.number, d.status, d.title, d.chosen_option) == (1, D.PROPOSED, "Adopt an outbox", "Outbox")
    assert d.decision_drivers == ["Consistency", "Simplicity"] and d.tags == ["events", "storage"]
    assert [(o.title, o.good, o.bad) for o in d.options.all()] == [
        ("Outbox", ["Atomic with the write"], ["A relay to run"]),
        ("Dual write", [], ["Loses events"]),
    ]


def test_create_form_errors_are_shown_and_nothing_is_saved(client, project, member_factory):
    client.force_login(member_factory(R.OWNER))
    response = client.post(url("decision_create"), form_data(chosen_option="Something else"))
    assert response.status_code == 400
    assert "must be one of the considered options" in response.content.decode()
    response = client.post(url("decision_create"), form_data(title=""))
    assert response.status_code == 400
    assert not Decision.objects.exists()


def test_editing_an_accepted_decision_is_refused(client, log, member_factory):
    client.force_login(member_factory(R.OWNER))
    before = _state()
    response = client.get(url("decision_edit", number=2), follow=True)
    assert "supersede it instead" in response.content.decode()
    response = client.post(url("decision_edit", number=2), form_data("Rewritten"), follow=True)
    assert "supersede it instead" in response.content.decode()
    assert _state() == before
    # The detail page offers no edit link for it, and a supersede link instead.
    page = client.get(url("decision_detail", number=2)).content.decode()
    assert url("decision_edit", number=2) not in page and url("decision_supersede", number=2) in page


def test_status_form_offers_only_allowed_transitions(client, log, member_factory):
    client.force_login(member_factory(R.PRODUCT_OWNER))
    page = client.get(url("decision_detail", number=2)).content.decode()
    assert 'value="deprecated"' in page and 'value="superseded"' not in page
    client.post(url("decision_status", number=2), {"to_status": "draft"})
    assert Decision.objects.get(number=2).status == D.ACCEPTED


def test_supersede_form_links_the_successor(client, log, member_factory):
    client.force_login(member_factory(R.ARCHITECT))
    client.post(url("decision_supersede", number=2), form_data("Use PostgreSQL with an outbox"))
    old, new = Decision.objects.get(number=2), Decision.objects.get(number=3)
    assert old.status == D.SUPERSEDED
    assert DecisionLink.objects.filter(from_decision=new, to_decision=old, kind="supersedes").exists()
    page = client.get(url("decision_detail", number=2)).content.decode()
    assert "Superseded by" in page and "ADR-0003" in page
    listing = client.get(url("decision_list")).content.decode()
    assert "superseded by" in listing


# -- the decision page ---------------------------------------------------------------------------


def test_decision_page_shows_madr_history_approvals_provenance_and_links(client, project, member_factory):
    design = make_design(project)
    po = member_factory(R.PRODUCT_OWNER)
    d = hooks.decision_from_key_question(question=design.question)
    point = open_point(design.session)
    response_row = approve(point, po)
    hooks.decisions_accept_from_validation(point=point, response=response_row, approvers=[po])
    other = writes.decision_create(project=project, user=po, title="Publish events with CloudEvents")
    writes.decision_link(from_decision=other, to_decision=d, kind="amends", user=po)
    client.force_login(member_factory(R.VIEWER))
    page = client.get(url("decision_detail", number=d.number)).content.decode()
    for text in (
        "ADR-0001",
        "Context and Problem Statement",
        "Considered Options",
        "Pros and Cons of the Options",
        f"Chosen option: <strong>“{EVENTS}”</strong>",
        "Good, because Integration Architect: Decouples checkout",
        "status-accepted",
        "Proposed → Accepted",
        "Maestro",
        "product_owner-shop",
        point.title,
        f"#point-{point.pk}",
        "Integration Architect",
        "anthropic/claude-sonnet-4",
        "openai/llama3.1:8b",
        f"#card-{design.round2.pk}-data-flow-analyst",
        "Amended by",
        "ADR-0002",
        "PRD-42",
        design.session.title,
    ):
        assert text in page, text
    # Read-only for a viewer: no forms.
    assert url("decision_status", number=1) not in page and url("decision_link_add", number=1) not in page


def test_markdown_is_sanitised_on_the_page(client, project, member_factory):
    owner = member_factory(R.OWNER)
    writes.decision_create(
        project=project, user=owner, title="X", context="<script>alert(1)</script> [x](javascript:alert(1))"
    )
    client.force_login(owner)
    page = client.get(url("decision_detail", number=1)).content.decode()
    assert "<script>alert(1)" not in page
    assert 'href="javascript' not in page


# -- exports -------------------------------------------------------------------------------------


def test_zip_export_holds_one_madr_file_per_decision(client, log, member_factory):
    client.force_login(member_factory(R.VIEWER))
    response = client.get(url("decisions_export_zip"))
    assert response["Content-Type"] == "application/zip"
    assert 'filename="shop-decisions.zip"' in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.namelist() == ["decisions/0001-cache-the-catalogue.md", "decisions/0002-use-postgresql.md"]
    text = archive.read("decisions/0002-use-postgresql.md").decode()
    assert text.startswith("---\nstatus: accepted\n") and "\n# Use PostgreSQL\n" in text
    single = client.get(url("decision_markdown", number=2))
    assert single.content.decode() == text
    assert 'filename="0002-use-postgresql.md"' in single["Content-Disposition"]


def test_zip_export_in_the_log4brains_layout(client, log, member_factory):
    client.force_login(member_factory(R.VIEWER))
    response = client.get(url("decisions_export_zip"), {"format": "log4brains"})
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    text = archive.read("decisions/0002-use-postgresql.md").decode()
    assert text.startswith("# Use PostgreSQL\n\n- Status: accepted\n")
    bad = client.get(url("decisions_export_zip"), {"format": "docx"})
    assert bad.status_code == 400 and "madr4, log4brains" in bad.content.decode()


# -- the list ------------------------------------------------------------------------------------


def test_list_filters_search_timeline_and_htmx_partial(client, log, member_factory):
    client.force_login(member_factory(R.VIEWER))
    page = client.get(url("decision_list"), {"q": "dominate"}).content.decode()
    assert "Cache the catalogue" in page and "Use PostgreSQL" not in page
    assert f'href="{url("decision_detail", number=1)}"' in page
    page = client.get(url("decision_list"), {"status": "accepted"}).content.decode()
    assert "Use PostgreSQL" in page and "Cache the catalogue" not in page
    partial = client.get(url("decision_list"), {"view": "timeline"}, headers={"HX-Request": "true"}).content.decode()
    assert partial.lstrip().startswith('<div id="decision-results"') and "<html" not in partial
    assert datetime.date.today().strftime("%B %Y") in partial
    bad = client.get(url("decision_list"), {"date_from": "not-a-date", "session": "x", "per_page": "1000"})
    assert bad.status_code == 200 and bad.context["per_page"] == 100


def _bulk(project, count: int, design) -> None:
    rows = [
        Decision(
            project=project,
            number=n,
            slug=f"decision-{n}",
            title=f"Decision {n} about the ledger",
            status=D.ACCEPTED,
            date=datetime.date(2024, 1 + n % 12, 1 + n % 28),
            tags=["ledger", f"team-{n % 5}"],
            session=design.session,
            context="The points ledger must stay consistent.",
        )
        for n in range(1, count + 1)
    ]
    Decision.objects.bulk_create(rows)
    decisions = list(Decision.objects.filter(project=project).order_by("number"))
    DecisionProvenance.objects.bulk_create(
        DecisionProvenance(
            decision=d,
            contribution=c,
            specialist_slug=c.specialist_slug,
            author_name=c.author_name,
            provider=c.provider,
            model=c.model,
        )
        for d in decisions
        for c in list(design.contributions.values())[:3]
    )
    DecisionLink.objects.bulk_create(
        DecisionLink(from_decision=decisions[i + 1], to_decision=decisions[i], kind="supersedes")
        for i in range(0, count - 1, 2)
    )


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": "ledger"},
        {"view": "timeline"},
        {"tag": "ledger", "specialist": "data-flow-analyst", "status": "accepted"},
    ],
    ids=["list", "search", "timeline", "filters"],
)
def test_list_query_count_does_not_depend_on_page_size(client, project, member_factory, params):
    design = make_design(project)
    _bulk(project, 120, design)
    client.force_login(member_factory(R.VIEWER))
    counts: dict[tuple[str, int], int] = {}
    for size in (10, 100):
        for state in ("cold", "warm"):  # the filter choices are cached: a cold and a warm cache
            if state == "cold":
                cache.clear()
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(url("decision_list"), {**params, "per_page": size})
            assert response.status_code == 200
            assert response.content.decode().count('class="adr"') == size
            counts[(state, size)] = len(ctx.captured_queries)
    assert counts[("cold", 10)] == counts[("cold", 100)], counts
    assert counts[("warm", 10)] == counts[("warm", 100)], counts
    assert counts[("warm", 100)] == counts[("cold", 100)] - 3, counts
    assert counts[("cold", 100)] <= 15, counts


def test_filter_choices_follow_writes(client, log, member_factory):
    client.force_login(member_factory(R.VIEWER))
    assert "brand-new-tag" not in client.get(url("decision_list")).content.decode()
    writes.decision_create(project=log["draft"].project, user=None, title="Tagged", tags=["brand-new-tag"])
    assert "brand-new-tag" in client.get(url("decision_list")).content.decode()
    writes.decision_update(decision=Decision.objects.get(number=3), user=None, tags=["renamed-tag"])
    page = client.get(url("decision_list")).content.decode()
    assert "renamed-tag" in page and "brand-new-tag" not in page
