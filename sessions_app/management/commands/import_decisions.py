"""Import MADR 4, MADR 2/3 (Log4brains) and adr-tools (Nygard) files into a project, all or nothing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from sessions_app.decisions import madr, services
from teams_app.errors import ApplicationError
from teams_app.models import Project


class Command(BaseCommand):
    help = (
        "Import ADR markdown files (MADR 4, MADR 2/3 / Log4brains, adr-tools) from a directory. "
        "Every problem is reported by file name and nothing is imported unless every file is good."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug")
        parser.add_argument("directory", help="A directory of NNNN-title.md files")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"There is no project with slug {options['project']!r}.")
        directory = Path(options["directory"])
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory.")
        files, refused = _read_folder(directory)
        problems: dict[str, str] = {}
        message = ""
        try:
            with transaction.atomic():
                imported = services.decisions_import(project=project, files=files) if files or not refused else []
                if refused:
                    transaction.set_rollback(True)  # all or nothing: a refused file imports nothing
        except ApplicationError as exc:
            problems, message = dict(exc.extra.get("problems", {})), exc.message
        if refused or message:
            problems.update(refused)
            for name in sorted(problems):
                self.stderr.write(f"{name}: {problems[name]}")
            raise CommandError(message if message and not refused else f"Nothing was imported: {len(problems)} file(s) have problems.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {len(imported)} decision(s) into {project.slug}: " + ", ".join(d.adr_id for d in imported)
            )
        )


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
