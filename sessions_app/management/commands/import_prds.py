"""Import a project's PRDs from Task Master AI's planning files.

    python manage.py import_prds --project shop path/to/repo

PATH is the project's folder (or its ``.taskmaster`` folder). Each document of
``.taskmaster/docs/`` becomes an active PRD (the newest file last, so it is the project's latest);
a PRD imported before is updated.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from sessions_app.hub.services import prds_import_planning
from teams_app.errors import ApplicationError
from teams_app.models import Project


class Command(BaseCommand):
    help = "Import PRDs from a Task Master AI project folder (.taskmaster/docs/, .taskmaster/tasks/tasks.json)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug")
        parser.add_argument("path", help="The project's folder, or its .taskmaster folder")

    def handle(self, *args, project: str, path: str, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project with slug {project!r}.")
        try:
            prds, summaries = prds_import_planning(project=target, path=path)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        for prd in prds:
            self.stdout.write(f"{prd.reference}  {prd.title}  ({prd.source})")
        for summary in summaries:
            self.stdout.write(f"Task Master {summary.line()}")
        self.stdout.write(self.style.SUCCESS(f"Imported {len(prds)} PRD(s); latest: {prds[-1].reference}."))
