"""Import ADR markdown files (MADR 4, MADR 2/3 / Log4brains, adr-tools, free-form) into a project."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from sessions_app.decisions import madr
from sessions_app.decisions.services import importing
from teams_app.errors import ApplicationError
from teams_app.models import Project


class Command(BaseCommand):
    help = (
        "Import ADR markdown files (MADR 4, MADR 2/3 / Log4brains, adr-tools, free-form) from a directory. "
        "Every file that is an ADR is imported; the others are reported by name and reason, and templates, "
        "indexes and READMEs are skipped. With --strict nothing is imported unless every file is good."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug")
        parser.add_argument("--strict", action="store_true", help="All or nothing: import no file if any has a problem")
        parser.add_argument("directory", help="A directory of ADR files (NNNN-title.md, 20210101-title.md ...)")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"There is no project with slug {options['project']!r}.")
        directory = Path(options["directory"])
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory.")
        files, refused = _read_folder(directory)
        if refused:
            # A link out of the folder is not a bad ADR but a bad folder: nothing is imported.
            for name in sorted(refused):
                self.stderr.write(f"{name}: {refused[name]}")
            raise CommandError(f"Nothing was imported: {len(refused)} file(s) have problems.")
        try:
            report = importing.decisions_import(project=project, files=files, strict=options["strict"])
        except ApplicationError as exc:
            for name, reason in exc.extra.get("skipped", {}).items():
                self.stderr.write(f"{name}: skipped, {reason}")
            for name, problem in exc.extra.get("problems", {}).items():
                self.stderr.write(f"{name}: {problem}")
            raise CommandError(exc.message) from None
        for name, reason in report.skipped.items():
            self.stdout.write(f"{name}: skipped, {reason}")
        for name, notes in report.notes.items():
            for note in notes:
                self.stdout.write(f"{name}: {note}")
        for name, problem in report.problems.items():
            self.stderr.write(f"{name}: not imported, {problem}")
        imported = ", ".join(d.adr_id for d in report.decisions)
        self.stdout.write(
            self.style.SUCCESS(f"Imported {len(report.decisions)} decision(s) into {project.slug}: {imported}")
        )
        if report.problems:
            self.stdout.write(self.style.WARNING(f"{len(report.problems)} file(s) were not imported (see above)."))


SYMLINK = "is a symbolic link; only regular files inside the folder are imported"
NOT_REGULAR = "is not a regular file"


def _read_folder(directory: Path) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    """Regular ``*.md`` files of ``directory`` and the names refused with a reason.

    Symbolic links are refused rather than followed, so an import never reads outside the
    folder. A file is opened without following links and read up to one byte past the limit:
    an oversized file is never read whole, and the parser reports it as too large."""
    files: list[tuple[str, bytes]] = []
    refused: dict[str, str] = {}
    for path in sorted(directory.glob("*.md")):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            refused[path.name] = SYMLINK
            continue
        if not stat.S_ISREG(info.st_mode):
            continue  # a folder named like a file is not an ADR
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            refused[path.name] = f"could not be read ({exc.strerror})"
            continue
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                refused[path.name] = NOT_REGULAR
                continue
            files.append((path.name, handle.read(madr.MAX_FILE_BYTES + 1)))
    return files, refused
