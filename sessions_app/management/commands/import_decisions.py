"""Import ADR markdown files (MADR 4, MADR 2/3 / Log4brains, adr-tools, free-form) into a project."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from sessions_app.decisions import services
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
        files = [(path.name, path.read_bytes()) for path in sorted(directory.glob("*.md")) if path.is_file()]
        try:
            report = services.decisions_import(project=project, files=files, strict=options["strict"])
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
