"""import_inventory, analyze_inventory and export_diagram: output shapes, values and errors."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sessions_app.models import DiagramVersion
from teams_app.inventory import services
from teams_app.inventory.rules import analyze
from teams_app.inventory.store import revision_to_inventory
from teams_app.inventory.types import ROLE_LABELS, ROLES
from teams_app.models import InventoryRevision, Service, ServiceDependency
from tests.teams_app.inventory_samples import ALIAS_BOMB, SECRET_KEY_VALUE, SMALL, SMALL_EDGES, SMALL_KINDS, SMALL_V2

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def _counts() -> tuple[int, int, int, int]:
    return (
        InventoryRevision.objects.count(),
        Service.objects.count(),
        ServiceDependency.objects.count(),
        DiagramVersion.objects.count(),
    )


@pytest.fixture
def compose_file(tmp_path):
    path = tmp_path / "docker-compose.yml"
    path.write_text(SMALL, encoding="utf-8")
    return path


# --- import_inventory --------------------------------------------------------------------


def test_import_json_has_the_documented_shape_and_values(project, compose_file):
    payload = json.loads(run("import_inventory", "--project", project.slug, str(compose_file), "--json"))
    assert set(payload) == {"revision", "services", "dependencies"}
    assert payload["revision"] == 1
    assert [s["name"] for s in payload["services"]] == sorted(SMALL_KINDS)
    assert all(set(s) == {"name", "kind", "patterns"} for s in payload["services"])
    assert {s["name"]: s["kind"] for s in payload["services"]} == SMALL_KINDS
    by_name = {s["name"]: s for s in payload["services"]}
    assert by_name["orders"]["patterns"]["storage"] == "postgresql"
    assert "amqp" in by_name["orders"]["patterns"]["communication"]
    assert payload["dependencies"] == [
        {"from": source, "to": target, "kind": kind} for (source, target), kind in sorted(SMALL_EDGES.items())
    ]
    revision = InventoryRevision.objects.get()
    assert (revision.number, revision.source_name, revision.source_format) == (1, "docker-compose.yml", "compose")
    assert DiagramVersion.objects.get().inventory_revision == revision


def test_import_json_counts_up_and_matches_what_is_stored(project, compose_file, tmp_path):
    run("import_inventory", "--project", project.slug, str(compose_file))
    v2 = tmp_path / "v2.yml"
    v2.write_text(SMALL_V2)
    payload = json.loads(run("import_inventory", "--project", project.slug, str(v2), "--format", "compose", "--json"))
    assert payload["revision"] == 2
    stored = revision_to_inventory(InventoryRevision.objects.get(number=2))
    assert {s["name"]: (s["kind"], s["patterns"]) for s in payload["services"]} == {
        s.name: (s.kind, s.patterns) for s in stored.services
    }
    assert {("orders", "payments", "sync_http")} <= {(d["from"], d["to"], d["kind"]) for d in payload["dependencies"]}


def test_import_without_json_prints_a_summary(project, compose_file):
    out = run("import_inventory", "--project", project.slug, str(compose_file))
    assert "as revision 1: 4 services, 3 dependencies." in out
    assert "1 service, 1 database, 1 broker, 1 gateway" in out
    assert "cluster diagram: new version v1" in out
    out = run("import_inventory", "--project", project.slug, str(compose_file))
    assert "as revision 2" in out and "cluster diagram: unchanged" in out


def test_import_never_prints_a_secret(project, compose_file):
    out = run("import_inventory", "--project", project.slug, str(compose_file), "--json")
    assert SECRET_KEY_VALUE not in out


@pytest.mark.parametrize(
    "content,message",
    [
        ("services:\n  web: [unclosed\n", "Invalid YAML in document 1, line 3"),
        ("services: [a, b]\n", "'services' must be a mapping"),
        (ALIAS_BOMB, "alias bomb"),
        ("services:\n  web:\n    image: a:1\n    depends_on: [ghost]\n", "unknown service 'ghost'"),
        ("", "The file is empty"),
    ],
    ids=["invalid-yaml", "wrong-shape", "alias-bomb", "unknown-edge", "empty"],
)
def test_import_errors_are_command_errors_and_store_nothing(project, compose_file, tmp_path, content, message):
    run("import_inventory", "--project", project.slug, str(compose_file))
    before = _counts()
    bad = tmp_path / "bad.yml"
    bad.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("import_inventory", "--project", project.slug, str(bad), "--json")
    assert _counts() == before


def test_import_refuses_a_wrong_explicit_format(project, compose_file):
    with pytest.raises(CommandError, match="does not look like Backstage catalog"):
        run("import_inventory", "--project", project.slug, str(compose_file), "--format", "backstage")
    assert _counts() == (0, 0, 0, 0)


def test_import_refuses_an_unknown_project(compose_file):
    with pytest.raises(CommandError, match="There is no project with slug 'nope'"):
        run("import_inventory", "--project", "nope", str(compose_file))
    assert _counts() == (0, 0, 0, 0)


def test_import_refuses_an_unreadable_file(project, tmp_path):
    with pytest.raises(CommandError, match="Cannot read .*missing.yml"):
        run("import_inventory", "--project", project.slug, str(tmp_path / "missing.yml"))
    with pytest.raises(CommandError, match="Cannot read"):
        run("import_inventory", "--project", project.slug, str(tmp_path))  # a directory
    assert _counts() == (0, 0, 0, 0)


def test_import_refuses_a_file_over_the_limit(project, compose_file, settings):
    settings.INVENTORY_MAX_BYTES = 100
    with pytest.raises(CommandError, match=r"too large \(\d+ bytes; the limit is 100 bytes\)"):
        run("import_inventory", "--project", project.slug, str(compose_file))
    assert _counts() == (0, 0, 0, 0)


def test_import_refuses_a_file_that_is_not_utf8(project, tmp_path):
    path = tmp_path / "latin1.yml"
    path.write_bytes("services:\n  caf\xe9:\n    image: a:1\n".encode("latin-1"))
    with pytest.raises(CommandError, match="is not UTF-8 text"):
        run("import_inventory", "--project", project.slug, str(path))
    assert _counts() == (0, 0, 0, 0)


# --- analyze_inventory -------------------------------------------------------------------


def test_analyze_json_lists_the_findings_of_the_latest_revision(project, compose_file, tmp_path):
    run("import_inventory", "--project", project.slug, str(compose_file))
    payload = json.loads(run("analyze_inventory", "--project", project.slug, "--json"))
    assert set(payload) == {"findings"}
    expected = [f.as_dict() for f in analyze(revision_to_inventory(InventoryRevision.objects.get()))]
    assert payload["findings"] == expected
    assert all(set(f) == {"rule", "severity", "role", "services", "why"} for f in payload["findings"])
    rules = {(f["rule"], tuple(f["services"])) for f in payload["findings"]}
    assert {("SEC001", ("db",)), ("SEC002", ("orders",))} <= rules
    assert any(rule == "OPS001" and "mq" in names for rule, names in rules)

    # A new revision without the broker: its findings go away.
    services.service_remove(project=project, user=None, name="mq")
    later = json.loads(run("analyze_inventory", "--project", project.slug, "--json"))["findings"]
    assert not any("mq" in f["services"] for f in later)


def test_analyze_table_groups_findings_by_role_with_counts(project, compose_file):
    run("import_inventory", "--project", project.slug, str(compose_file))
    findings = analyze(revision_to_inventory(InventoryRevision.objects.get()))
    out = run("analyze_inventory", "--project", project.slug)
    lines = out.splitlines()
    assert lines[0].startswith(f"{project.slug} · inventory revision 1 · {len(findings)} findings")
    headers = [i for i, line in enumerate(lines) if any(line.startswith(ROLE_LABELS[r]) for r in ROLES)]
    assert [lines[i].split(" (")[0] for i in headers] == [ROLE_LABELS[r] for r in ROLES]
    for n, role in enumerate(ROLES):
        mine = [f for f in findings if f.role == role]
        header = lines[headers[n]]
        assert header.startswith(f"{ROLE_LABELS[role]} ({role}): {len(mine)} ")
        critical = sum(f.severity == "critical" for f in mine)
        assert f"[{critical} critical," in header
        end = headers[n + 1] if n + 1 < len(headers) else len(lines)
        body = [line for line in lines[headers[n] + 1 : end] if line.strip()]
        if mine:
            assert [line.split()[1] for line in body] == [f.rule for f in mine]
        else:
            assert body == ["  no findings"]


def test_analyze_without_an_inventory_or_project_is_an_error(project):
    with pytest.raises(CommandError, match="has no inventory yet"):
        run("analyze_inventory", "--project", project.slug, "--json")
    with pytest.raises(CommandError, match="There is no project with slug 'nope'"):
        run("analyze_inventory", "--project", "nope")


# --- export_diagram ----------------------------------------------------------------------


def test_export_prints_the_stored_text(project, compose_file, tmp_path):
    run("import_inventory", "--project", project.slug, str(compose_file))
    v2 = tmp_path / "v2.yml"
    v2.write_text(SMALL_V2)
    run("import_inventory", "--project", project.slug, str(v2))
    first, latest = DiagramVersion.objects.get(number=1), DiagramVersion.objects.get(number=2)
    assert first.mermaid != latest.mermaid

    assert run("export_diagram", "--project", project.slug) == latest.mermaid
    assert run("export_diagram", "--project", project.slug, "--format", "mermaid", "--version", "1") == first.mermaid
    ascii_out = run("export_diagram", "--project", project.slug, "--format", "ascii", "--version", "1")
    assert ascii_out.rstrip("\n") == first.ascii.rstrip("\n") and "orders" in ascii_out
    assert run("export_diagram", "--project", project.slug, "--format", "ascii").rstrip("\n") == latest.ascii.rstrip(
        "\n"
    )


def test_export_prints_a_hand_edited_version(project, compose_file, make_user):
    from sessions_app.diagrams.services import diagram_version_save

    run("import_inventory", "--project", project.slug, str(compose_file))
    generated = DiagramVersion.objects.get()
    edited = diagram_version_save(
        diagram=generated.diagram, mermaid=generated.mermaid + "    svc_db --> svc_mq\n", user=make_user("editor")
    )
    assert run("export_diagram", "--project", project.slug) == edited.mermaid


def test_export_errors(project, compose_file):
    with pytest.raises(CommandError, match="has no cluster diagram yet"):
        run("export_diagram", "--project", project.slug)
    with pytest.raises(CommandError, match="has no cluster diagram yet"):
        run("export_diagram", "--project", project.slug, "--version", "1")
    run("import_inventory", "--project", project.slug, str(compose_file))
    with pytest.raises(CommandError, match="has no version 5; its only version is 1"):
        run("export_diagram", "--project", project.slug, "--version", "5")
    with pytest.raises(CommandError, match="There is no project with slug 'nope'"):
        run("export_diagram", "--project", "nope")
    with pytest.raises(CommandError):
        run("export_diagram", "--project", project.slug, "--format", "svg")
