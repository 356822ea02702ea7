"""The hub's HTTP API end to end through the Django test client (SPEC §10)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from sessions_app.hub import services
from sessions_app.hub.models import ApiToken, HubTask
from sessions_app.models import DesignSession
from teams_app.models import PRD, Membership, Project
from tests.sessions_app.hub.conftest import TASK, Api

pytestmark = pytest.mark.django_db


def task(**changes):
    body = {**TASK, **changes}
    return {k: v for k, v in body.items() if v is not ...}


# -- auth -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path,method", [
    ("/hub/health", "get"), ("/hub/ping", "get"), ("/hub/route_only", "post"), ("/hub/run_task", "post"),
    ("/hub/tasks/T-1", "get"),
])
def test_a_missing_token_is_401_with_a_bearer_challenge(client, hub_project, path, method):
    response = getattr(Api(client, None), method)(path, task()) if method == "post" else Api(client, None).get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="maestro-hub"'
    assert "Bearer" in response.json()["error"]


def test_an_unknown_or_malformed_token_is_401_invalid_token(client, hub_project):
    for header in ("Bearer mst_nope", "Basic abc", "Bearer", "bearer  "):
        response = client.get("/hub/ping", headers={"Authorization": header})
        assert response.status_code == 401, header
    response = client.get("/hub/ping", headers={"Authorization": "Bearer mst_nope"})
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_a_revoked_token_is_401(api, token):
    assert api.get("/hub/ping").status_code == 200
    services.api_token_revoke(token=ApiToken.objects.get())
    response = api.get("/hub/ping")
    assert response.status_code == 401
    assert response.json()["error"] == "The token is invalid or revoked."


def test_the_token_is_stored_hashed_and_marks_its_use(api, token):
    stored = ApiToken.objects.get()
    assert token not in (stored.token_hash, stored.prefix) and token.startswith(stored.prefix)
    assert stored.last_used_at is None
    api.get("/hub/ping")
    stored.refresh_from_db()
    assert stored.last_used_at is not None


def test_another_projects_task_is_404(api, hub_project, hub_eager, django_capture_on_commit_callbacks):
    other = Project.objects.create(name="Other", slug="other")
    PRD.objects.create(project=other, reference="PRD-9", title="Other PRD")
    _t, other_raw = services.api_token_create(project=other, name="other agent")
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/hub/run_task", task(task_id="mine-1")).status_code == 202
    assert api.get("/hub/tasks/mine-1").status_code == 200
    response = api.get("/hub/tasks/mine-1", token=other_raw)
    assert response.status_code == 404
    assert response.json()["error"] == "No task with this task_id in the token's project."
    # the other project may use the same task_id for its own task
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/hub/run_task", task(task_id="mine-1", prd="PRD-9"), token=other_raw).status_code == 202
    assert HubTask.objects.filter(task_id="mine-1").count() == 2


def test_openapi_is_public_and_the_api_is_csrf_exempt(client, api):
    assert client.get("/hub/openapi.json").status_code == 200
    csrf_client = api.client.__class__(enforce_csrf_checks=True)
    response = csrf_client.post("/hub/route_only", data=task(), content_type="application/json",
                                headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200


def test_wrong_method_is_405_json(api):
    response = api.get("/hub/run_task")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "POST" in response.json()["error"]


# -- validation and the PRD guard ---------------------------------------------------------------------


@pytest.mark.parametrize("changes,field", [
    ({"task_id": ...}, "task_id"),
    ({"task_id": ""}, "task_id"),
    ({"task_id": "-starts-with-dash"}, "task_id"),
    ({"task_id": "has space"}, "task_id"),
    ({"task_id": "x" * 129}, "task_id"),
    ({"task_id": 12}, "task_id"),
    ({"area": "backend"}, "area"),
    ({"area": ...}, "area"),
    ({"summary": ""}, "summary"),
    ({"summary": "   "}, "summary"),
    ({"summary": "s" * 501}, "summary"),
    ({"summary": ...}, "summary"),
    ({"hints": "schema"}, "hints"),
    ({"hints": [""]}, "hints.0"),
    ({"hints": ["ok", "h" * 51]}, "hints.1"),
    ({"hints": ["h"] * 21}, "hints"),
    ({"hints": [3]}, "hints.0"),
    ({"prd": "JIRA-1"}, "prd"),
    ({"prd": "ftp://x/PRD-1"}, "prd"),
    ({"prd": 7}, "prd"),
    ({"unexpected": 1}, "unexpected"),
    ({"summary": "nul \x00 byte"}, "summary"),
    ({"summary": "lone \ud800 surrogate"}, "summary"),
    ({"hints": ["\x00"]}, "hints.0"),
    ({"prd": "https://docs.example.com/\x00"}, "prd"),
    ({"prd": "https://docs.example.com/\udfff"}, "prd"),
    ({"task_id": "a\ud800"}, "task_id"),
])
@pytest.mark.parametrize("path", ["/hub/route_only", "/hub/run_task"])
def test_each_constraint_of_the_task_object_is_a_field_error(api, path, changes, field):
    response = api.post(path, task(**changes))
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "The task object has invalid fields."
    assert field in body["fields"], body
    assert HubTask.objects.count() == 0


def test_field_messages_are_written_for_people(api):
    body = api.post("/hub/route_only", task(task_id="a b", prd="nope", area="x", extra=1)).json()["fields"]
    assert body["task_id"].startswith("Use 1–128 letters")
    assert body["prd"] == "Use a PRD id such as PRD-123 or an http(s) link."
    assert body["area"] == "Use one of: dev, cluster, migration, content, db, ui, edge, infra."
    assert body["extra"] == "Unknown field."


@pytest.mark.parametrize("raw", ["", "not json", "[1, 2]", '"text"', "null", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_400(api, raw):
    response = api.post("/hub/run_task", raw=raw)
    assert response.status_code == 400
    assert response.json() == {"error": "The body must be a JSON object.", "fields": {}}


def test_valid_boundaries_are_accepted(api):
    ok = task(task_id="a" + "b" * 127, summary="s" * 500, hints=["h" * 50] * 20, prd="https://docs.example.com/PRD-7")
    assert api.post("/hub/route_only", ok).status_code == 200
    assert api.post("/hub/route_only", task(task_id="x.y:z-1_2".replace("_", "-"), hints=[])).status_code == 200
    assert api.post("/hub/route_only", {k: v for k, v in TASK.items() if k != "hints"}).status_code == 200


@pytest.mark.parametrize("prd", [..., None, "", "   "])
@pytest.mark.parametrize("path", ["/hub/route_only", "/hub/run_task"])
def test_a_missing_or_blank_prd_pauses_and_asks_for_one(api, path, prd):
    response = api.post(path, task(prd=prd))
    assert response.status_code == 422
    assert response.json() == {
        "status": "paused", "reason": "prd_required", "question": "What PRD id/link should we attach?",
        "latest_prd": "PRD-7",
    }
    assert HubTask.objects.count() == 0 and DesignSession.objects.count() == 0


def test_the_prd_guard_offers_null_when_the_project_has_no_active_prd(api, hub_project):
    hub_project.prds.update(status=PRD.Status.SUPERSEDED)
    assert api.post("/hub/run_task", task(prd=None)).json()["latest_prd"] is None


# -- routing ----------------------------------------------------------------------------------------


def test_route_only_picks_the_database_engineer_for_a_db_schema_migration_task(api):
    response = api.post("/hub/route_only", task())
    assert response.status_code == 200
    body = response.json()
    assert body["specialist"] == "database-engineer.md"
    assert body["task_id"] == "T-1" and body["prd"] == "PRD-7"
    assert body["matched"] == {"area": "db", "hints": ["schema", "migration"], "summary": body["matched"]["summary"]}
    assert "area 'db'" in body["rationale"] and "'schema'" in body["rationale"] and "'migration'" in body["rationale"]
    assert len(body["runners_up"]) == 3
    assert body["score"] > body["runners_up"][0]["score"] >= body["runners_up"][1]["score"]
    assert HubTask.objects.count() == 0  # route_only writes nothing


def test_routing_is_deterministic_and_ties_are_broken_by_file_name(api):
    first = api.post("/hub/route_only", task(hints=[], summary="zzz qqq")).json()
    for _ in range(3):
        assert api.post("/hub/route_only", task(hints=[], summary="zzz qqq")).json() == first
    # only the area matches: data-flow-analyst, database-engineer, state-manager and transaction-coordinator tie
    tied = [first, *first["runners_up"]]
    assert [c["score"] for c in tied] == [3.0] * 4
    assert [c["specialist"] for c in tied] == sorted(c["specialist"] for c in tied)
    assert first["specialist"] == "data-flow-analyst.md"
    assert first["rationale"] == "matched area 'db'"


def test_summary_terms_show_in_the_rationale(api):
    body = api.post("/hub/route_only", task(area="ui", hints=[], summary="Responsive dashboard for operators")).json()
    assert body["specialist"] == "ui-designer.md"
    assert "responsive" in body["matched"]["summary"] and "dashboard" in body["matched"]["summary"]


# -- run_task and idempotency ----------------------------------------------------------------------


def test_run_task_routes_records_and_starts_a_task_session(api, hub_project):
    response = api.post("/hub/run_task", task())
    assert response.status_code == 202
    body = response.json()
    hub_task = HubTask.objects.get()
    assert body == {
        "task_id": "T-1", "status": "queued", "specialist": "database-engineer.md",
        "task_url": "http://testserver/projects/shop/hub/tasks/T-1/",
        "session_url": f"http://testserver/sessions/{hub_task.session_id}/",
        "status_url": "http://testserver/hub/tasks/T-1",
    }
    assert hub_task.specialist.slug == "database-engineer" and hub_task.prd.reference == "PRD-7"
    assert hub_task.rationale.startswith("matched area 'db'") and len(hub_task.runners_up) == 3
    assert hub_task.token == ApiToken.objects.get()
    session = hub_task.session
    assert session.mode == DesignSession.Mode.TASK and session.prd == hub_task.prd
    assert [m["specialist"] for m in session.team] == ["database-engineer"]


def test_the_same_task_id_and_body_is_the_same_task(api):
    first = api.post("/hub/run_task", task())
    again = api.post("/hub/run_task", task(hints=[" schema ", "migration"]))  # the same task once normalised
    assert first.status_code == 202 and again.status_code == 200
    assert again.json() == first.json()
    assert HubTask.objects.count() == 1 and DesignSession.objects.count() == 1


def test_a_different_body_under_a_used_task_id_is_409(api):
    assert api.post("/hub/run_task", task()).status_code == 202
    response = api.post("/hub/run_task", task(summary="Something else"))
    assert response.status_code == 409
    assert "T-1 is already used by a different task" in response.json()["error"]
    assert HubTask.objects.count() == 1


def test_a_new_prd_reference_is_recorded_as_an_active_prd(api, hub_project):
    assert api.post("/hub/run_task", task(prd="https://docs.example.com/prd/42")).status_code == 202
    prd = hub_project.prds.get(reference="https://docs.example.com/prd/42")
    assert prd.status == PRD.Status.ACTIVE and HubTask.objects.get().prd == prd


def test_run_task_executes_the_specialist_and_the_status_carries_the_report(api, hub_eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/hub/run_task", task()).status_code == 202
    response = api.get("/hub/tasks/T-1")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "done"
    assert body["specialist"] == "database-engineer.md" and body["prd"] == "PRD-7"
    assert body["answer"] and "Database Engineer" in body["report"]
    assert body["report"].startswith("# Final report:") and "**PRD**: PRD-7" in body["report"]
    assert "To continue this cluster session" in body["continuation"]
    assert "Currently Active Team: Database Engineer (hub task)" in body["continuation"]
    assert body["cluster_view"]
    assert body["completed_at"] and body["session_url"].endswith(f"/sessions/{HubTask.objects.get().session_id}/")


def test_a_task_still_running_has_no_report_yet(api):
    api.post("/hub/run_task", task())  # on-commit enqueue never runs: nothing executes
    body = api.get("/hub/tasks/T-1").json()
    assert body["status"] == "queued"
    assert body["report"] is None and body["answer"] is None and body["cluster_view"] is None
    assert "Awaiting:" in body["continuation"]
    # Queued until a worker takes the call, then running.
    from sessions_app.engine import runner
    from sessions_app.models import Contribution

    runner.claim(Contribution.objects.get(session=HubTask.objects.get().session, author="specialist").pk)
    assert api.get("/hub/tasks/T-1").json()["status"] == "running"


def test_unknown_and_malformed_task_ids_are_404(api):
    assert api.get("/hub/tasks/nope").status_code == 404
    assert api.get("/hub/tasks/-bad").status_code == 404


# -- rate limiting and health --------------------------------------------------------------------------


def test_the_rate_limit_is_per_token_with_retry_after(api, hub_project, settings):
    settings.HUB_RATE_LIMIT_PER_MINUTE = 3
    _t, other = services.api_token_create(project=hub_project, name="second agent")
    assert [api.get("/hub/ping").status_code for _ in range(3)] == [200, 200, 200]
    limited = api.post("/hub/route_only", task())
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert "retry after" in limited.json()["error"]
    assert api.get("/hub/ping", token=other).status_code == 200  # another token has its own budget


def test_the_rate_limit_without_redis_counts_in_process(api, settings):
    settings.REDIS_URL = ""
    settings.HUB_RATE_LIMIT_PER_MINUTE = 2
    assert [api.get("/hub/ping").status_code for _ in range(3)] == [200, 200, 429]


def test_health_is_ok_when_tasks_run_eagerly(api, hub_eager):
    response = api.get("/hub/health")
    assert response.status_code == 200
    assert response.json()["ok"] is True and response.json()["database"] == "ok"


def test_health_is_503_when_no_worker_answers(api, settings):
    settings.HUB_WORKER_PING_TIMEOUT = 0.2
    response = api.get("/hub/health")
    assert response.status_code == 503
    body = response.json()
    assert body == {"ok": False, "database": "ok", "broker": "ok", "workers": "down"}


def test_health_is_503_when_the_broker_is_down(api, monkeypatch):
    from config.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    body = api.get("/hub/health").json()
    assert body["ok"] is False and body["broker"] == "down"


# -- the OpenAPI document -------------------------------------------------------------------------------


def test_the_openapi_document_lists_every_path_and_its_schemas_validate(client):
    import jsonschema

    doc = client.get("/hub/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {"/hub/health", "/hub/ping", "/hub/route_only", "/hub/run_task", "/hub/tasks/{task_id}", "/hub/openapi.json"}
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer", "description": "A project API token."}
    schemas = doc["components"]["schemas"]
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
    # every $ref resolves
    def refs(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    run = doc["paths"]["/hub/run_task"]["post"]
    assert {"200", "202", "400", "401", "409", "422", "429"} <= set(run["responses"])
    assert doc["paths"]["/hub/tasks/{task_id}"]["get"]["responses"].keys() >= {"200", "401", "404", "429"}
    # the document's task schema is the endpoint's: it accepts TASK and rejects a bad area
    store = {f"#/components/schemas/{k}": v for k, v in schemas.items()}
    task_schema = run["requestBody"]["content"]["application/json"]["schema"]
    resolved = store[task_schema["$ref"]]
    validator = jsonschema.Draft202012Validator(resolved)
    assert validator.is_valid(TASK)
    assert not validator.is_valid({**TASK, "area": "backend"})
    assert not validator.is_valid({**TASK, "extra": 1})
    assert validator.is_valid({**TASK, "prd": ""})  # blank is not malformed: the PRD guard answers


# -- the Hub page and the token command ---------------------------------------------------------------


def test_owners_create_and_revoke_tokens_on_the_hub_page(client, hub_project, member_factory):
    owner = member_factory(Membership.Role.OWNER)
    client.force_login(owner)
    page = client.get("/projects/shop/hub/")
    assert page.status_code == 200 and b"Create token" in page.content
    created = client.post("/projects/shop/hub/tokens/", {"name": "Claude Code"})
    assert created.status_code == 201
    token = ApiToken.objects.get(name="Claude Code")
    raw = created.context["new_token"]
    assert raw.startswith(token.prefix) and raw.encode() in created.content
    assert b"shown this once" in created.content
    assert client.get("/projects/shop/hub/").content.count(raw.encode()) == 0  # never again
    assert Api(client, raw).get("/hub/ping").status_code == 200
    revoked = client.post(f"/projects/shop/hub/tokens/{token.pk}/revoke/")
    assert revoked.status_code == 302
    assert Api(client, raw).get("/hub/ping").status_code == 401


def test_members_see_prefixes_and_tasks_but_cannot_manage_tokens(client, api, member_factory, token):
    api.post("/hub/run_task", task())
    viewer = member_factory(Membership.Role.VIEWER)
    client.force_login(viewer)
    page = client.get("/projects/shop/hub/")
    assert page.status_code == 200
    content = page.content.decode()
    assert token[:12] in content and token not in content
    assert "T-1" in content and "database-engineer.md" in content and f"/sessions/{HubTask.objects.get().session_id}/" in content
    assert "Create token" not in content
    assert client.post("/projects/shop/hub/tokens/", {"name": "x"}).status_code == 403
    assert client.post(f"/projects/shop/hub/tokens/{ApiToken.objects.get().pk}/revoke/").status_code == 403
    assert 'href="/projects/shop/hub/"' in client.get("/projects/shop/").content.decode()  # the Hub tab


def test_non_members_do_not_see_the_hub_page(client, hub_project, make_user):
    client.force_login(make_user("stranger"))
    assert client.get("/projects/shop/hub/").status_code == 404


def test_the_task_page_opens_the_live_session(client, api, member_factory):
    api.post("/hub/run_task", task())
    client.force_login(member_factory(Membership.Role.VIEWER))
    response = client.get("/projects/shop/hub/tasks/T-1/")
    assert response.status_code == 302 and response["Location"] == f"/sessions/{HubTask.objects.get().session_id}/"
    assert client.get("/projects/shop/hub/tasks/none/").status_code == 404


def test_the_hub_token_command_creates_lists_and_revokes(hub_project, capsys):
    call_command("hub_token", "create", "--project", "shop", "--name", "ci")
    raw = capsys.readouterr().out.strip()
    token = ApiToken.objects.get(name="ci")
    assert raw.startswith("mst_") and raw.startswith(token.prefix) and len(raw) > 40
    call_command("hub_token", "list", "--project", "shop")
    listing = capsys.readouterr().out
    assert token.prefix in listing and raw not in listing and "active" in listing
    call_command("hub_token", "revoke", token.prefix)
    assert "Revoked" in capsys.readouterr().out
    token.refresh_from_db()
    assert token.revoked_at is not None
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="already revoked"):
        call_command("hub_token", "revoke", token.prefix)
    with pytest.raises(CommandError, match="No project"):
        call_command("hub_token", "create", "--project", "nope")


def test_routing_sees_a_new_specialist_once_the_router_cache_expires(api, settings):
    from teams_app.models import Specialist

    settings.HUB_ROUTER_CACHE_SECONDS = 60.0
    assert api.post("/hub/route_only", task()).json()["specialist"] == "database-engineer.md"
    Specialist.objects.create(slug="aaa-schema-guru", name="Schema Guru", areas=["db"], hints=["schema", "migration", "sql"],
                              system_prompt="x")
    assert api.post("/hub/route_only", task()).json()["specialist"] == "database-engineer.md"  # cached for 60 s
    settings.HUB_ROUTER_CACHE_SECONDS = 0.0
    body = api.post("/hub/route_only", task(summary="sql")).json()
    assert body["specialist"] == "aaa-schema-guru.md"


def test_site_admins_create_tokens_in_the_admin_and_see_them_once(client, hub_project, make_user):
    admin = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    response = client.post("/admin/sessions_app/apitoken/add/", {"project": hub_project.pk, "name": "from admin"}, follow=True)
    assert response.status_code == 200
    token = ApiToken.objects.get(name="from admin")
    shown = [str(m) for m in response.context["messages"]]
    raw = next(m for m in shown if token.prefix in m).split(": ", 1)[1].split(" ")[0]
    assert raw.startswith(token.prefix) and Api(client, raw).get("/hub/ping").status_code == 200
    client.post("/admin/sessions_app/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert client.get("/admin/sessions_app/hubtask/").status_code == 200


def test_every_answer_matches_its_documented_schema(api, hub_eager, django_capture_on_commit_callbacks):
    from sessions_app.hub.schemas import ErrorOut, HealthOut, PausedOut, PingOut, RouteOut, RunTaskOut, TaskStatusOut

    RouteOut.model_validate(api.post("/hub/route_only", task()).json())
    with django_capture_on_commit_callbacks(execute=True):
        RunTaskOut.model_validate(api.post("/hub/run_task", task()).json())
    RunTaskOut.model_validate(api.post("/hub/run_task", task()).json())
    TaskStatusOut.model_validate(api.get("/hub/tasks/T-1").json())
    HealthOut.model_validate(api.get("/hub/health").json())
    PingOut.model_validate(api.get("/hub/ping").json())
    PausedOut.model_validate(api.post("/hub/run_task", task(prd="")).json())
    ErrorOut.model_validate(api.post("/hub/run_task", task(area="x")).json())
    ErrorOut.model_validate(api.get("/hub/tasks/none").json())
