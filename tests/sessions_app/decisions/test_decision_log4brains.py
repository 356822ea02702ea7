"""Log4brains 1.1, from npm (package.json's devDependencies, installed by ``make install``), reads
our export of Log4brains' own ADRs as it reads the originals: same statuses, same dates, the
same superseder. Skipped, saying why, only on a machine without node and npm."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command

from sessions_app.decisions.services import importing

ROOT = Path(__file__).resolve().parents[3]
ORIGINALS = ROOT / "tests" / "fixtures" / "public" / "adr" / "log4brains"
READER = Path(__file__).with_name("log4brains_list.js")

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="node and npm are not installed: Log4brains (an npm package) cannot run here",
)


def log4brains_reads(project_dir: Path) -> dict:
    """What Log4brains reads from ``project_dir``: its CLI's ``adr list --raw`` and its ADRs."""
    if not (ROOT / "node_modules" / "@log4brains" / "core").is_dir():
        pytest.fail("Log4brains is not installed: run `make install` (npm ci installs package.json's devDependencies)")
    (project_dir / ".log4brains.yml").write_text("project:\n  name: decisions\n  tz: UTC\n  adrFolder: ./docs/adr\n")
    done = subprocess.run(
        ["node", str(READER)], cwd=project_dir, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def listed(result: dict) -> dict[str, str]:
    """Title -> status as the CLI's raw list prints it (slug,STATUS,package,title)."""
    rows = [line.split(",", 3) for line in result["list"].splitlines() if line.strip()]
    return {title: status for _slug, status, _package, title in rows}


def test_log4brains_reads_our_export_as_it_reads_its_own_adrs(project, tmp_path):
    originals = tmp_path / "originals"
    shutil.copytree(ORIGINALS, originals / "docs" / "adr")
    theirs = log4brains_reads(originals)

    files = [(p.name, p.read_bytes()) for p in sorted(ORIGINALS.glob("*.md"))]
    importing.decisions_import(project=project, files=files)
    ours = tmp_path / "ours"
    call_command("export_decisions", "--project", project.slug, "--format", "log4brains", str(ours / "docs" / "adr"))
    read = log4brains_reads(ours)

    # The CLI lists the same ADRs with the same statuses ...
    assert listed(read) == listed(theirs)
    assert listed(read)["Use the ADR number as its unique ID"] == "SUPERSEDED"
    assert sorted(listed(read).values()).count("ACCEPTED") == 8
    # ... and the library reads the same publication dates and the same superseder.
    by_title = {a["title"]: a for a in read["adrs"]}
    for original in theirs["adrs"]:
        mine = by_title[original["title"]]
        assert (mine["status"], mine["publicationDate"]) == (original["status"], original["publicationDate"])
        assert mine["supersededBy"] == original["supersededBy"]
    assert by_title["Use the ADR number as its unique ID"]["publicationDate"] == "2020-09-26T23:59:59.000Z"
    assert by_title["Use the ADR number as its unique ID"]["supersededBy"] == "20201016-use-the-adr-slug-as-its-unique-id"
    # The files keep Log4brains' ids as their names.
    assert sorted(p.name for p in (ours / "docs" / "adr").iterdir()) == sorted(
        p.name for p in ORIGINALS.glob("2*.md")
    )


def test_our_log4brains_export_imports_back_unchanged(project, tmp_path):
    files = [(p.name, p.read_bytes()) for p in sorted(ORIGINALS.glob("*.md"))]
    importing.decisions_import(project=project, files=files)
    first, second = tmp_path / "first", tmp_path / "second"
    call_command("export_decisions", "--project", project.slug, "--format", "log4brains", str(first))
    from teams_app.models import Project

    Project.objects.create(name="Copy", slug="copy")
    call_command("import_decisions", "--project", "copy", str(first))
    call_command("export_decisions", "--project", "copy", "--format", "log4brains", str(second))
    for path in sorted(first.iterdir()):
        assert (second / path.name).read_text() == path.read_text(), path.name
