"""Import MADR 4, MADR 2/3 (Log4brains) and adr-tools (Nygard) files into a project, all or nothing."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from sessions_app.decisions import services
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
        files = [(path.name, path.read_bytes()) for path in sorted(directory.glob("*.md")) if path.is_file()]
        try:
            imported = services.decisions_import(project=project, files=files)
        except ApplicationError as exc:
            for name, problem in exc.extra.get("problems", {}).items():
                self.stderr.write(f"{name}: {problem}")
            raise CommandError(exc.message) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {len(imported)} decision(s) into {project.slug}: " + ", ".join(d.adr_id for d in imported)
            )
        )
