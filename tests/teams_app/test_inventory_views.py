"""Inventory pages through the test client: import, bad input, roles, findings, compare, rules."""

from __future__ import annotations

import html
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from sessions_app.models import Diagram, DiagramVersion
from teams_app.inventory import services
from teams_app.inventory.rules import RULES
from teams_app.inventory.selectors import findings_for_project, findings_summary
from teams_app.models import InventoryRevision, Service, ServiceDependency
from tests.teams_app.inventory_samples import BAD_INPUTS, SMALL, SMALL_V2

pytestmark = pytest.mark.django_db


def _page(response) -> str:
    return html.unescape(response.content.decode())


def _counts() -> tuple[int, int, int, int]:
    return (
        InventoryRevision.objects.count(),
        Service.objects.count(),
        ServiceDependency.objects.count(),
        DiagramVersion.objects.count(),
    )


@pytest.fixture
def architect_client(client, member_factory):
    client.force_login(member_factory("architect"))
    return client


def _url(name: str, project, **kwargs) -> str:
    return reverse(name, kwargs={"slug": project.slug, **kwargs})


# --- import ------------------------------------------------------------------------------


def test_import_an_uploaded_file(architect_client, project):
    upload = SimpleUploadedFile("docker-compose.yml", SMALL.encode(), content_type="application/x-yaml")
    response = architect_client.post(_url("inventory_import", project), {"format": "auto", "file": upload})
    assert response.status_code == 302 and response["Location"] == _url("inventory_detail", project)
    revision = InventoryRevision.objects.get(project=project)
    assert (revision.number, revision.source_format, revision.source_name) == (1, "compose", "docker-compose.yml")
    assert set(revision.services.values_list("name", flat=True)) == {"gateway", "orders", "db", "mq"}
    assert DiagramVersion.objects.filter(diagram__project=project).count() == 1

    page = _page(architect_client.get(_url("inventory_detail", project)))
    assert "Imported revision 1: 4 services, 3 dependencies." in page
    for name in ("gateway", "orders", "db", "mq"):
        assert f"<strong>{name}</strong>" in page


def test_import_pasted_text_with_an_explicit_format(architect_client, project):
    response = architect_client.post(_url("inventory_import", project), {"format": "compose", "text": SMALL})
    assert response.status_code == 302
    revision = InventoryRevision.objects.get(project=project)
    assert revision.source_name == "pasted text"
    assert revision.services.count() == 4 and revision.dependencies.count() == 3


def test_a_format_that_does_not_match_the_content_is_refused(architect_client, project):
    response = architect_client.post(_url("inventory_import", project), {"format": "k8s", "text": SMALL})
    assert response.status_code == 400
    assert "The file does not look like Kubernetes manifests." in _page(response)
    assert _counts() == (0, 0, 0, 0)


@pytest.mark.parametrize("text,message", [(t, m) for _, t, m in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_pasted_input_answers_400_with_the_message_and_stores_nothing(architect_client, project, text, message):
    response = architect_client.post(_url("inventory_import", project), {"format": "auto", "text": text})
    assert response.status_code == 400
    assert message in _page(response)
    assert _counts() == (0, 0, 0, 0)


@pytest.mark.parametrize("text,message", [(t, m) for _, t, m in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_uploaded_file_leaves_the_current_inventory_alone(architect_client, project, text, message):
    services.inventory_import(project=project, text=SMALL)
    before = _counts()
    upload = SimpleUploadedFile("bad.yml", text.encode())
    response = architect_client.post(_url("inventory_import", project), {"format": "auto", "file": upload})
    assert response.status_code == 400
    assert message in _page(response)
    assert _counts() == before


def test_an_oversize_file_is_refused_before_parsing(architect_client, project, settings):
    settings.INVENTORY_MAX_BYTES = 200
    upload = SimpleUploadedFile("big.yml", SMALL.encode())
    assert len(SMALL.encode()) > 200
    response = architect_client.post(_url("inventory_import", project), {"format": "auto", "file": upload})
    assert response.status_code == 400
    # Limits under a kilobyte used to read "larger than 0 KB".
    assert "The file is larger than 200 bytes." in _page(response)
    assert _counts() == (0, 0, 0, 0)


def test_oversize_pasted_text_is_refused(architect_client, project, settings):
    settings.INVENTORY_MAX_BYTES = 2_000
    text = SMALL + "# " + "x" * 2_000 + "\n"
    response = architect_client.post(_url("inventory_import", project), {"format": "auto", "text": text})
    assert response.status_code == 400
    assert "The inventory is larger than 2 KB." in _page(response)
    assert _counts() == (0, 0, 0, 0)


def test_a_file_that_is_not_utf8_is_refused(architect_client, project):
    upload = SimpleUploadedFile("latin1.yml", "services:\n  caf\xe9:\n    image: a:1\n".encode("latin-1"))
    response = architect_client.post(_url("inventory_import", project), {"format": "auto", "file": upload})
    assert response.status_code == 400
    assert "The file is not UTF-8 text." in _page(response)
    assert _counts() == (0, 0, 0, 0)


def test_an_empty_submission_asks_for_a_file(architect_client, project):
    response = architect_client.post(_url("inventory_import", project), {"format": "auto", "text": "  "})
    assert response.status_code == 400
    assert "Choose a file or paste its content." in _page(response)


# --- hand edits through the forms ----------------------------------------------------------


def test_service_and_dependency_forms_make_new_revisions(architect_client, project):
    services.inventory_import(project=project, text=SMALL)
    response = architect_client.post(
        _url("inventory_service_save", project),
        {"original_name": "", "name": "payments", "kind": "service", "image": "acme/pay:1", "replicas": 2},
    )
    assert response.status_code == 302
    response = architect_client.post(
        _url("inventory_dependency_add", project), {"source": "orders", "target": "payments", "kind": "sync_http"}
    )
    assert response.status_code == 302
    response = architect_client.post(_url("inventory_dependency_remove", project), {"source": "orders", "target": "mq"})
    assert response.status_code == 302
    response = architect_client.post(_url("inventory_service_remove", project), {"name": "mq"})
    assert response.status_code == 302
    latest = InventoryRevision.objects.filter(project=project).order_by("-number").first()
    assert latest.number == 5
    assert set(latest.services.values_list("name", flat=True)) == {"gateway", "orders", "db", "payments"}
    assert latest.services.get(name="payments").replicas == 2
    edges = set(latest.dependencies.values_list("source__name", "target__name", "kind"))
    assert ("orders", "payments", "sync_http") in edges and not any("mq" in e for e in edges)


def test_a_refused_hand_edit_shows_the_error_on_the_form(architect_client, project):
    services.inventory_import(project=project, text=SMALL)
    before = _counts()
    response = architect_client.post(
        _url("inventory_dependency_add", project), {"source": "orders", "target": "orders", "kind": "sync_http"}
    )
    assert response.status_code == 400
    assert "A service cannot depend on itself." in _page(response)
    response = architect_client.post(
        _url("inventory_service_save", project), {"original_name": "", "name": "db", "kind": "database", "replicas": 1}
    )
    assert response.status_code == 400
    assert "A service named db already exists." in _page(response)
    assert _counts() == before


def test_removing_an_unknown_service_reports_it(architect_client, project):
    services.inventory_import(project=project, text=SMALL)
    response = architect_client.post(_url("inventory_service_remove", project), {"name": "ghost"}, follow=True)
    assert "There is no service named ghost in the current inventory." in _page(response)
    assert InventoryRevision.objects.count() == 1


# --- roles -------------------------------------------------------------------------------

POSTS = [
    ("inventory_import", {"format": "auto", "text": SMALL}),
    ("inventory_service_save", {"original_name": "", "name": "payments", "kind": "service", "replicas": 1}),
    ("inventory_service_remove", {"name": "mq"}),
    ("inventory_dependency_add", {"source": "gateway", "target": "db", "kind": "database"}),
    ("inventory_dependency_remove", {"source": "orders", "target": "mq"}),
    ("diagram_edit", {"mermaid": "flowchart LR\n    a --> b\n", "note": "x"}),
]


@pytest.mark.parametrize("role", ["viewer", "product_owner"])
@pytest.mark.parametrize("name,data", POSTS, ids=[p[0] for p in POSTS])
def test_members_who_may_not_edit_get_403_on_every_inventory_and_diagram_post(
    client, project, member_factory, role, name, data
):
    services.inventory_import(project=project, text=SMALL)
    diagram = Diagram.objects.get(project=project)
    client.force_login(member_factory(role))
    kwargs = {"diagram_id": diagram.pk} if name == "diagram_edit" else {}
    before = _counts()
    response = client.post(_url(name, project, **kwargs), data)
    assert response.status_code == 403
    assert _counts() == before


def test_viewers_see_the_inventory_without_edit_forms(client, project, member_factory):
    services.inventory_import(project=project, text=SMALL)
    client.force_login(member_factory("viewer"))
    page = _page(client.get(_url("inventory_detail", project)))
    assert "<strong>orders</strong>" in page
    assert _url("inventory_import", project) not in page
    assert _url("inventory_service_remove", project) not in page


def test_owners_may_import(client, project, member_factory):
    client.force_login(member_factory("owner"))
    response = client.post(_url("inventory_import", project), {"format": "auto", "text": SMALL})
    assert response.status_code == 302 and InventoryRevision.objects.count() == 1


# --- findings ----------------------------------------------------------------------------

_ROW = re.compile(r'<tr class="sev-row-(?P<severity>\w+)">(?P<body>.*?)</tr>', re.S)
_CELLS = re.compile(r"<td>(.*?)</td>", re.S)


def _finding_rows(page: str) -> list[tuple[str, str, str]]:
    """(severity, rule, role) of each row in the findings table."""
    rows = []
    for match in _ROW.finditer(page):
        rule = re.search(r"<code>(\w+)</code>", match["body"])[1]
        role = _CELLS.findall(match["body"])[2]  # severity, rule, role, services, why
        rows.append((match["severity"], rule, role))
    return rows


def test_findings_are_listed_and_filter_by_role_and_severity(architect_client, project):
    services.inventory_import(project=project, text=SMALL)
    findings = findings_for_project(project=project)
    assert {f.role for f in findings} >= {"security", "devops"} and {f.severity for f in findings} >= {
        "critical",
        "warning",
    }

    everything = _finding_rows(_page(architect_client.get(_url("inventory_detail", project))))
    assert everything == [(f.severity, f.rule, f.role) for f in findings]

    security = _finding_rows(_page(architect_client.get(_url("inventory_detail", project), {"role": "security"})))
    assert security == [(f.severity, f.rule, f.role) for f in findings if f.role == "security"]

    critical_security = _finding_rows(
        _page(architect_client.get(_url("inventory_detail", project), {"role": "security", "severity": "critical"}))
    )
    expected = [(f.severity, f.rule, f.role) for f in findings if f.role == "security" and f.severity == "critical"]
    assert critical_security == expected and expected
    assert {rule for _, rule, _ in critical_security} >= {"SEC001", "SEC002"}

    warnings = _finding_rows(_page(architect_client.get(_url("inventory_detail", project), {"severity": "warning"})))
    assert warnings and all(sev == "warning" for sev, _, _ in warnings)
    assert len(warnings) == sum(1 for f in findings if f.severity == "warning")


def test_a_filter_that_matches_nothing_says_so(architect_client, project):
    services.inventory_import(project=project, text=SMALL)
    response = architect_client.get(_url("inventory_detail", project), {"role": "pattern", "severity": "critical"})
    page = _page(response)
    assert _finding_rows(page) == []
    assert "No finding matches this filter." in page


# --- compare and rules reference --------------------------------------------------------------


def test_compare_page_lists_the_differences(architect_client, project):
    services.inventory_import(project=project, text=SMALL)
    services.inventory_import(project=project, text=SMALL_V2)
    response = architect_client.get(_url("inventory_compare", project), {"a": 1, "b": 2})
    assert response.status_code == 200
    page = _page(response)
    assert "+ service payments" in page
    assert "− service mq" in page
    assert re.search(r"~ service orders: [^<]*image", page)
    assert "+ orders → payments (sync_http)" in page
    assert "− orders → mq (async_event)" in page
    assert "+ service gateway" not in page and "service db" not in page


def test_compare_defaults_to_the_last_two_revisions(architect_client, project):
    services.inventory_import(project=project, text=SMALL)
    services.inventory_import(project=project, text=SMALL_V2)
    page = _page(architect_client.get(_url("inventory_compare", project)))
    assert "+ service payments" in page


def test_compare_with_an_unknown_revision_is_a_clear_400(architect_client, project):
    services.inventory_import(project=project, text=SMALL)
    response = architect_client.get(_url("inventory_compare", project), {"a": 1, "b": 9})
    assert response.status_code == 400
    assert "Choose two existing revisions." in _page(response)


def test_rules_reference_lists_every_rule(architect_client):
    response = architect_client.get(reverse("rules_reference"))
    assert response.status_code == 200
    page = _page(response)
    assert len(RULES) >= 20
    for rule in RULES:
        assert f'<tr id="{rule.id}"><td><code>{rule.id}</code></td>' in page
        assert rule.title in page


def test_inventory_page_links_findings_to_the_rules_reference(architect_client, project):
    services.inventory_import(project=project, text=SMALL)
    page = _page(architect_client.get(_url("inventory_detail", project)))
    assert f'href="{reverse("rules_reference")}#SEC002"' in page


# --- project overview --------------------------------------------------------------------


def test_project_overview_shows_the_current_diagram_and_findings_counts(architect_client, project):
    services.inventory_import(project=project, text=SMALL)
    services.inventory_import(project=project, text=SMALL_V2)
    version = DiagramVersion.objects.filter(diagram__project=project).order_by("-number").first()
    summary = findings_summary(findings_for_project(project=project))
    page = _page(architect_client.get(_url("project_detail", project)))
    assert version.number == 2
    assert version.mermaid in page
    assert version.ascii.rstrip("\n") in page
    assert f"{summary['critical']} critical" in page
    assert f"{summary['warning']} warning" in page
    assert f"{summary['info']} info" in page
    assert reverse("diagram_detail", kwargs={"slug": project.slug, "diagram_id": version.diagram_id}) in page


def test_project_overview_without_an_inventory_invites_an_import(architect_client, project):
    page = _page(architect_client.get(_url("project_detail", project)))
    assert "No inventory yet." in page
    assert "Findings appear once an inventory is imported." in page


def test_each_service_row_lists_its_own_calls_with_a_remove_button(architect_client, project):
    services.inventory_import(project=project, text=SMALL)
    page = _page(architect_client.get(_url("inventory_detail", project)))
    rows = {m[1]: m[2] for m in re.finditer(r"<tr>\s*<td><strong>([\w-]+)</strong></td>(.*?)</tr>", page, re.S)}
    assert set(rows) == {"gateway", "orders", "db", "mq"}
    edge_buttons = r'form="dependency-remove-form" name="edge" value="([\w-]+ [\w-]+)"'
    assert re.findall(edge_buttons, rows["orders"]) == ["orders db", "orders mq"]
    assert re.findall(edge_buttons, rows["gateway"]) == ["gateway orders"]
    assert 'name="edge"' not in rows["db"]
    assert 'form="service-remove-form" name="name" value="db"' in rows["db"]
    # No separator dangles after a service's last call.
    assert not re.search(r"</span>, </td>", rows["gateway"])
    # The buttons share one form per action: one CSRF token each, not one per edge.
    table = page.split('<div class="table-scroll"><table>', 1)[1].split("</table>", 1)[0]
    assert "csrfmiddlewaretoken" not in table and "<form" not in table
    response = architect_client.post(_url("inventory_dependency_remove", project), {"edge": "orders mq"})
    assert response.status_code == 302
    latest = InventoryRevision.objects.order_by("-number").first()
    assert latest.number == 2
    assert set(latest.dependencies.values_list("source__name", "target__name")) == {
        ("gateway", "orders"),
        ("orders", "db"),
    }
    response = architect_client.post(_url("inventory_service_remove", project), {"name": "mq"})
    assert response.status_code == 302
    assert "mq" not in set(InventoryRevision.objects.get(number=3).services.values_list("name", flat=True))


def test_compare_with_a_single_revision_says_identical(architect_client, project):
    services.inventory_import(project=project, text=SMALL)
    response = architect_client.get(_url("inventory_compare", project))
    assert response.status_code == 200
    assert "The two revisions are identical." in _page(response)
