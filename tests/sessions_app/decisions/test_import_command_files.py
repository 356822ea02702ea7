"""How ``import_decisions`` reads a folder: regular files only, never past the size limit."""

from __future__ import annotations

import os

import pytest
from django.core.management import CommandError, call_command

from sessions_app.decisions import madr
from sessions_app.decisions.models import Decision

GOOD = "---\nstatus: accepted\ndate: 2024-01-01\n---\n# Use PostgreSQL\n\n## Context and Problem Statement\n\nFine.\n"


@pytest.fixture
def folders(tmp_path):
    inside, outside = tmp_path / "adr", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    return inside, outside


def test_a_symlink_is_refused_by_name_and_nothing_is_imported(project, folders, capsys):
    inside, outside = folders
    (inside / "0001-good.md").write_text(GOOD)
    (outside / "secret.md").write_text(GOOD.replace("Use PostgreSQL", "Outside the folder"))
    os.symlink(outside / "secret.md", inside / "0002-link.md")
    with pytest.raises(CommandError, match="Nothing was imported: 1 file"):
        call_command("import_decisions", "--project", "shop", str(inside))
    assert "0002-link.md: is a symbolic link" in capsys.readouterr().err
    assert not Decision.objects.exists()  # the good file is not imported either


def test_an_oversized_file_is_refused_without_reading_it_whole(project, folders, capsys, monkeypatch):
    inside, _ = folders
    (inside / "0001-good.md").write_text(GOOD)
    big = inside / "0002-huge.md"
    with open(big, "wb") as handle:  # sparse: 64 MB on paper, nothing on disk
        handle.truncate(64 * 1024 * 1024)
    reads: list[int] = []
    real_fdopen = os.fdopen

    def counting_fdopen(fd, *args, **kwargs):
        handle = real_fdopen(fd, *args, **kwargs)
        real_read = handle.read

        def read(size=-1):
            reads.append(size)
            return real_read(size)

        handle.read = read
        return handle

    monkeypatch.setattr(os, "fdopen", counting_fdopen)
    call_command("import_decisions", "--project", "shop", str(inside))
    assert "0002-huge.md: not imported, the file is larger than 512 KB" in capsys.readouterr().err
    assert reads and all(0 < size <= madr.MAX_FILE_BYTES + 1 for size in reads)
    # File by file: the good one imports, the oversized one is reported and never read whole.
    assert list(Decision.objects.values_list("title", flat=True)) == ["Use PostgreSQL"]


def test_regular_files_still_import(project, folders):
    inside, _ = folders
    (inside / "0001-good.md").write_text(GOOD)
    (inside / "sub.md").mkdir()  # a folder named like a file is skipped, not an error
    call_command("import_decisions", "--project", "shop", str(inside))
    assert list(Decision.objects.values_list("title", flat=True)) == ["Use PostgreSQL"]
