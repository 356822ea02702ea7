from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from teams_app.models import Specialist
from teams_app.specialists.loader import BUILTIN_DIR, load_specialists

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "agents"

SEED_MEMBERS = [
    "pattern-archaeologist", "integration-architect", "data-flow-analyst", "security-guardian", "performance-engineer",
    "devops-specialist", "boundary-analyst", "dependency-mapper", "migration-planner", "contract-validator",
    "testing-strategist", "feature-decomposer", "transaction-coordinator", "event-architect", "state-manager",
    "error-handler", "debug-specialist", "system-architect", "database-engineer", "ui-designer",
]


def test_builtin_specialists_load_with_real_prompts():
    report = load_specialists()
    assert not report.errors
    assert sorted(report.created) == sorted(SEED_MEMBERS)
    db = Specialist.objects.get(slug="database-engineer")
    assert db.file_name == "database-engineer.md"
    assert db.name == "Database Engineer"
    assert "db" in db.areas and db.hints and db.origin == "builtin"
    for specialist in Specialist.objects.all():
        assert len(specialist.system_prompt.split()) > 200, specialist.slug


def test_loading_twice_is_idempotent():
    load_specialists()
    second = load_specialists()
    assert second.created == [] and second.updated == []
    assert len(second.unchanged) == len(SEED_MEMBERS)
    assert Specialist.objects.count() == len(SEED_MEMBERS)


def test_seed_orchestrator_file_loads_as_specialist():
    report = load_specialists([FIXTURES / "cluster-maestro-orchestrator.md"])
    assert report.errors == []
    maestro = Specialist.objects.get(slug="cluster-maestro-orchestrator")
    assert maestro.origin == "imported"
    assert "orchestrator-hub" in maestro.tools
    assert "CLUSTER MAESTRO ORCHESTRATOR" in maestro.system_prompt


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bad_files_are_reported_by_name_and_the_rest_load(tmp_path):
    _write(tmp_path, "broken.md", "---\nname: [unclosed\n---\nBody text\n")
    _write(tmp_path, "noname.md", "---\ndescription: nobody\n---\nBody text\n")
    _write(tmp_path, "nofront.md", "Just a prompt with no front matter\n")
    _write(tmp_path, "badarea.md", "---\nname: odd\nareas: [space]\n---\nBody\n")
    _write(tmp_path, "good.md", "---\nname: cache-tuner\ndescription: Tunes caches\nareas: [infra]\nhints: redis, ttl\n---\nYou tune caches.\n")
    report = load_specialists([tmp_path])
    errors = dict((Path(p).name, reason) for p, reason in report.errors)
    assert set(errors) == {"broken.md", "noname.md", "nofront.md", "badarea.md"}
    assert "not valid YAML" in errors["broken.md"]
    assert "no 'name'" in errors["noname.md"]
    assert "no YAML front matter" in errors["nofront.md"]
    assert "unknown areas space" in errors["badarea.md"]
    assert report.created == ["cache-tuner"]
    tuner = Specialist.objects.get(slug="cache-tuner")
    assert tuner.hints == ["redis", "ttl"] and tuner.areas == ["infra"]


def test_changed_file_updates_the_specialist(tmp_path):
    path = _write(tmp_path, "a.md", "---\nname: helper\n---\nFirst prompt\n")
    load_specialists([path])
    path.write_text("---\nname: helper\ncolor: Red\n---\nSecond prompt\n")
    report = load_specialists([path])
    assert report.updated == ["helper"]
    helper = Specialist.objects.get(slug="helper")
    assert helper.system_prompt == "Second prompt" and helper.color == "red"


def test_command_reports_bad_files(tmp_path, capsys):
    _write(tmp_path, "noname.md", "---\ndescription: x\n---\nbody\n")
    _write(tmp_path, "ok.md", "---\nname: ok-agent\n---\nbody\n")
    call_command("load_specialists", str(tmp_path))
    out = capsys.readouterr()
    assert "1 specialists loaded" in out.out
    assert "noname.md: front matter has no 'name'" in out.err


def test_builtin_folder_has_a_file_per_seed_member():
    assert sorted(p.stem for p in BUILTIN_DIR.glob("*.md")) == sorted(SEED_MEMBERS)
