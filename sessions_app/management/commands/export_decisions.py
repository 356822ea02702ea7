"""Write a project's decision log as MADR 4 files ``NNNN-slug.md`` into a directory."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from sessions_app.decisions import madr, selectors
from teams_app.models import Project


class Command(BaseCommand):
    help = "Export a project's decisions as MADR 4 markdown files (NNNN-slug.md with YAML front matter)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug")
        parser.add_argument("directory", help="Where to write the files (created if missing)")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"There is no project with slug {options['project']!r}.")
        directory = Path(options["directory"])
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"Cannot create {directory}: {exc.strerror}.") from None
        rows = selectors.decisions_for_export(project=project)
        for row in rows:
            (directory / row.file_name).write_text(madr.render(row), encoding="utf-8", newline="\n")
        self.stdout.write(self.style.SUCCESS(f"Wrote {len(rows)} decision file(s) to {directory}."))
