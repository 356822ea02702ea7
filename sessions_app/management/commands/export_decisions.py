"""Write a project's decision log as ADR markdown files into a directory."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from sessions_app.decisions import madr, selectors
from teams_app.models import Project


class Command(BaseCommand):
    help = (
        "Export a project's decisions as markdown files: MADR 4 (NNNN-slug.md with YAML front matter, the "
        "default) or --format log4brains (MADR 2 metadata lists that Log4brains 1.1 reads)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug")
        parser.add_argument("--format", choices=madr.FORMATS, default="madr4", help="madr4 (default) or log4brains")
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
        files = madr.export_files(selectors.decisions_for_export(project=project), fmt=options["format"])
        for name, text in files:
            (directory / name).write_text(text, encoding="utf-8", newline="\n")
        self.stdout.write(self.style.SUCCESS(f"Wrote {len(files)} decision file(s) to {directory}."))
