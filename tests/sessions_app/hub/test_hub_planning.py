"""PRDs found where the seed looks: Task Master AI's planning files (.taskmaster/docs/,
.taskmaster/tasks/tasks.json), imported with manage.py import_prds, from the Hub page, and offered
by the MCP server's PRD question (stdio: its working folder)."""

from __future__ import annotations

import os
import shutil
from io import StringIO
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command
from mcp import Client
from mcp_types import ElicitResult

from sessions_app.hub import selectors
from sessions_app.hub.mcp_server import build_server
from sessions_app.hub.planning import read_planning_folder
from teams_app.models import PRD, Membership
from tests.sessions_app.hub.conftest import TASK

FIXTURE = Path(__file__).parent / "fixtures" / "taskmaster_recipe_manager"
# When each document was last committed in the project the files come from (ORIGIN.md).
WRITTEN = {
    "prd.txt": "2025-07-27T16:00:54",
    "v2-simplification-prd.txt": "2025-07-27T19:28:06",
    "prd-translate-endpoint.txt": "2025-08-03T08:35:20",
    "photo-feature-prd.txt": "2025-08-04T12:16:23",
}


def taskmaster_project(root: Path) -> Path:
    """A project folder laid out as Task Master lays it out, from the real files."""
    from datetime import datetime

    tm = root / ".taskmaster"
    (tm / "docs").mkdir(parents=True)
    (tm / "tasks").mkdir()
    shutil.copy(FIXTURE / "tasks" / "tasks.json", tm / "tasks" / "tasks.json")
    shutil.copy(FIXTURE / "state.json", tm / "state.json")
    for name, when in WRITTEN.items():
        target = tm / "docs" / name
        shutil.copy(FIXTURE / "docs" / name, target)
        stamp = datetime.fromisoformat(when).timestamp()
        os.utime(target, (stamp, stamp))
    return root


def test_reading_a_task_master_folder(tmp_path):
    prds, summaries = read_planning_folder(taskmaster_project(tmp_path))
    assert [p.reference for p in prds] == [
        "PRD-taskmaster", "PRD-v2-simplification", "PRD-translate-endpoint", "PRD-photo-feature",
    ]  # oldest first: the newest is imported last
    assert prds[-1].title == "Recipe Photo Feature - Product Requirements Document"
    assert prds[-1].source == "Task Master: .taskmaster/docs/photo-feature-prd.txt"
    assert prds[0].title == "Recipe Manager - Product Requirements Document"
    (summary,) = summaries
    assert summary.tag == "master" and summary.current and summary.total == 22
    assert prds[-1].body.endswith(f"Task Master tasks: {summary.line()}.")
    # The .taskmaster folder itself works as well.
    assert [p.reference for p in read_planning_folder(tmp_path / ".taskmaster")[0]] == [p.reference for p in prds]


@pytest.mark.django_db
def test_import_prds_command_makes_the_newest_the_projects_latest(project, tmp_path):
    PRD.objects.create(project=project, reference="PRD-7", title="Subscriptions", status=PRD.Status.ACTIVE)
    out = StringIO()
    call_command("import_prds", "--project", "shop", str(taskmaster_project(tmp_path)), stdout=out)
    assert "Imported 4 PRD(s); latest: PRD-photo-feature." in out.getvalue()
    offered = selectors.prds_offered(project=project)
    assert offered[0] == {"reference": "PRD-photo-feature", "title": "Recipe Photo Feature - Product Requirements Document",
                          "source": "Task Master: .taskmaster/docs/photo-feature-prd.txt"}
    assert offered[-1] == {"reference": "PRD-7", "title": "Subscriptions", "source": "added in Maestro"}
    call_command("import_prds", "--project", "shop", str(tmp_path), stdout=StringIO())  # again: updated, not doubled
    assert PRD.objects.filter(project=project).count() == 5


@pytest.mark.django_db
def test_import_prds_command_rejects_a_folder_without_planning_files(project, tmp_path):
    with pytest.raises(CommandError, match="No Task Master planning files"):
        call_command("import_prds", "--project", "shop", str(tmp_path))
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("import_prds", "--project", "shop", str(tmp_path / "missing"))
    assert not PRD.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_prd_question_offers_the_newest_task_master_prd_first(hub_project, tmp_path):
    folder = taskmaster_project(tmp_path)
    asked = []

    async def callback(context, params):
        asked.append(params)
        return ElicitResult(action="accept", content={"prd": params.requested_schema["properties"]["prd"]["enum"][0]})

    async def main():
        async with Client(build_server(project_slug="shop", planning_dir=str(folder)),
                          elicitation_callback=callback) as client:
            return await client.call_tool("orchestrator.route_only", {**TASK, "prd": None})

    routed = async_to_sync(main)()
    (question,) = asked
    assert question.requested_schema["properties"]["prd"]["enum"][:2] == ["PRD-photo-feature", "PRD-translate-endpoint"]
    assert ("- PRD-photo-feature: Recipe Photo Feature - Product Requirements Document "
            "(Task Master: .taskmaster/docs/photo-feature-prd.txt)") in question.message
    assert routed.structured_content["prd"] == "PRD-photo-feature"


@pytest.mark.django_db
def test_import_from_the_hub_page(client, member_factory, project, tmp_path):
    owner = member_factory(Membership.Role.OWNER)
    viewer = member_factory(Membership.Role.VIEWER)
    url = f"/projects/{project.slug}/hub/prds/import/"
    client.force_login(viewer)
    assert client.post(url, {"path": str(taskmaster_project(tmp_path))}).status_code == 403
    client.force_login(owner)
    page = client.post(url, {"path": str(tmp_path / "nowhere")})
    assert page.status_code == 422 and "is not a folder" in page.content.decode()
    done = client.post(url, {"path": str(tmp_path)}, follow=True)
    assert "Imported 4 PRDs from Task Master; the latest is PRD-photo-feature." in done.content.decode()
    assert selectors.prds_offered(project=project)[0]["reference"] == "PRD-photo-feature"
    detail = client.get(f"/projects/{project.slug}/").content.decode()
    assert "Task Master: .taskmaster/docs/photo-feature-prd.txt" in detail
