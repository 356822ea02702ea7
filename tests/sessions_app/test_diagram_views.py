"""Diagram pages through the test client: detail, hand edits, versions and compare."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from sessions_app.models import Diagram, DiagramVersion
from teams_app.inventory import services
from tests.teams_app.inventory_samples import SMALL, SMALL_V2

pytestmark = pytest.mark.django_db


def _page(response) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def architect(member_factory):
    return member_factory("architect")


@pytest.fixture
def diagram(project):
    services.inventory_import(project=project, text=SMALL)
    return Diagram.objects.get(project=project, kind=Diagram.Kind.CLUSTER)


def _url(name: str, project, diagram: Diagram) -> str:
    return reverse(name, kwargs={"slug": project.slug, "diagram_id": diagram.pk})


def test_diagram_list_links_the_cluster_diagram(client, project, architect, diagram):
    client.force_login(architect)
    page = _page(client.get(reverse("diagram_list", kwargs={"slug": project.slug})))
    assert _url("diagram_detail", project, diagram) in page
    assert "Current cluster" in page and "v1 · " in page


def test_detail_shows_the_mermaid_source_and_the_ascii_view(client, project, architect, diagram):
    version = diagram.versions.get()
    client.force_login(architect)
    response = client.get(_url("diagram_detail", project, diagram))
    assert response.status_code == 200
    page = _page(response)
    assert f'<pre class="mermaid-source" data-mermaid>{version.mermaid}</pre>' in page
    assert f'<pre class="ascii">{version.ascii}</pre>' in page
    # Mermaid comes from our own static files, never a CDN: every script is same-origin.
    sources = re.findall(r'<script[^>]*\ssrc="([^"]*)"', page)
    assert any(src.endswith("vendor/mermaid/mermaid.min.js") for src in sources)
    assert all(src.startswith("/static/") for src in sources), sources


def test_detail_shows_an_older_version_on_request(client, project, architect, diagram):
    services.inventory_import(project=project, text=SMALL_V2)
    first = diagram.versions.get(number=1)
    client.force_login(architect)
    page = _page(client.get(_url("diagram_detail", project, diagram), {"version": 1}))
    assert f"data-mermaid>{first.mermaid}</pre>" in page
    assert "svc_payments" not in page.split("<h2>Versions</h2>")[0]


def test_viewers_see_the_diagram_but_no_edit_form(client, project, member_factory, diagram):
    client.force_login(member_factory("viewer"))
    page = _page(client.get(_url("diagram_detail", project, diagram)))
    assert "svc_orders" in page
    assert _url("diagram_edit", project, diagram) not in page


INVALID = [
    ("unbalanced-subgraph", lambda m: m.replace("\n    end\n", "\n", 1), "is never closed with 'end'"),
    ("click", lambda m: m + '    click svc_orders "https://evil.example"\n', "click directives are not allowed"),
    ("javascript-url", lambda m: m + "    svc_orders -->|x| svc_db\n    %% javascript:alert(1)\n", "javascript: URLs"),
    ("security-directive", lambda m: '%%{init: {"securityLevel": "loose"}}%%\n' + m, "securityLevel"),
    ("not-a-diagram", lambda m: "hello world\n", "expected a diagram type"),
]


@pytest.mark.parametrize("mutate,message", [(f, m) for _, f, m in INVALID], ids=[i[0] for i in INVALID])
def test_an_invalid_hand_edit_is_refused_with_the_error(client, project, architect, diagram, mutate, message):
    source = diagram.versions.get().mermaid
    client.force_login(architect)
    response = client.post(_url("diagram_edit", project, diagram), {"mermaid": mutate(source), "note": "broken"})
    assert response.status_code == 400
    page = _page(response)
    assert "The Mermaid source is not valid" in page and message in page
    assert diagram.versions.count() == 1


def test_an_unchanged_source_is_not_saved_again(client, project, architect, diagram):
    client.force_login(architect)
    source = diagram.versions.get().mermaid
    response = client.post(_url("diagram_edit", project, diagram), {"mermaid": source.replace("\n", "\r\n")})
    assert response.status_code == 400
    assert "The Mermaid source is unchanged" in _page(response)
    assert diagram.versions.count() == 1


def test_a_valid_hand_edit_is_version_two_authored_by_the_user(client, project, architect, diagram):
    first = diagram.versions.get()
    edited = first.mermaid.replace('svc_mq[/"mq"\\]', 'svc_mq[/"events"\\]')
    assert edited != first.mermaid
    client.force_login(architect)
    response = client.post(_url("diagram_edit", project, diagram), {"mermaid": edited, "note": "Rename the broker"})
    assert response.status_code == 302
    assert response["Location"] == _url("diagram_detail", project, diagram)
    version = diagram.versions.get(number=2)
    assert version.mermaid == edited
    assert version.author_kind == DiagramVersion.Author.USER
    assert version.author_user == architect
    assert version.note == "Rename the broker"
    page = _page(client.get(response["Location"]))
    assert "Saved version 2." in page
    assert f"by {architect.username}" in page
    assert 'svc_mq[/"events"\\]' in page
    # The hand-edited text no longer matches the inventory's ASCII drawing, so none is shown.
    assert version.ascii == ""
    assert "edited by hand: the ASCII view is drawn only from an inventory" in page


def test_compare_shows_both_versions_and_the_text_diff(client, project, architect, diagram):
    services.inventory_import(project=project, text=SMALL_V2)
    v1, v2 = diagram.versions.get(number=1), diagram.versions.get(number=2)
    client.force_login(architect)
    response = client.get(_url("diagram_compare", project, diagram), {"a": 1, "b": 2})
    assert response.status_code == 200
    page = _page(response)
    assert f"data-mermaid>{v1.mermaid}</pre>" in page
    assert f"data-mermaid>{v2.mermaid}</pre>" in page
    inserted = re.findall(r'<tr class="diff-insert"><td><pre></pre></td><td><pre>(.*?)</pre></td></tr>', page)
    deleted = re.findall(r'<tr class="diff-delete"><td><pre>(.*?)</pre></td><td><pre></pre></td></tr>', page)
    replaced = re.findall(r'<tr class="diff-replace"><td><pre>(.*?)</pre></td><td><pre>(.*?)</pre></td></tr>', page)
    new_lines = inserted + [right for _, right in replaced]
    old_lines = deleted + [left for left, _ in replaced]
    assert any("svc_payments" in line for line in new_lines)
    assert any("svc_mq" in line for line in old_lines)
    assert not any("svc_payments" in line for line in old_lines)
    assert "+++ v2" in page and "--- v1" in page


def test_compare_defaults_to_the_last_two_versions(client, project, architect, diagram):
    services.inventory_import(project=project, text=SMALL_V2)
    client.force_login(architect)
    response = client.get(_url("diagram_compare", project, diagram))
    assert response.status_code == 200
    assert "<h3>v1</h3>" in response.content.decode() and "<h3>v2</h3>" in response.content.decode()


def test_compare_with_an_unknown_version_is_a_clear_400(client, project, architect, diagram):
    client.force_login(architect)
    response = client.get(_url("diagram_compare", project, diagram), {"a": 1, "b": 7})
    assert response.status_code == 400
    assert "Choose two existing versions." in _page(response)


def test_a_diagram_of_another_project_is_404(client, project, architect, diagram):
    from teams_app.models import Membership, Project

    other = Project.objects.create(name="Other", slug="other")
    Membership.objects.create(project=other, user=architect, role="architect")
    client.force_login(architect)
    wrong = reverse("diagram_detail", kwargs={"slug": other.slug, "diagram_id": diagram.pk})
    assert client.get(wrong).status_code == 404
    edit = reverse("diagram_edit", kwargs={"slug": other.slug, "diagram_id": diagram.pk})
    assert client.post(edit, {"mermaid": "flowchart LR\n    a --> b\n"}).status_code == 404
    assert diagram.versions.count() == 1


def test_the_diagram_script_renders_strictly_and_reports_errors_in_place():
    from django.contrib.staticfiles import finders

    with open(finders.find("js/diagrams.js"), encoding="utf-8") as handle:
        script = handle.read()
    assert 'securityLevel: "strict"' in script
    # Mermaid's own error graphic would land at the end of <body>; the notice goes next to the diagram.
    assert "suppressErrorRendering: true" in script and ".diagram-error" in script
