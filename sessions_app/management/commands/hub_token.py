"""Create, list and revoke the hub's project API tokens from the command line."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from sessions_app.hub import selectors, services
from sessions_app.hub.models import ApiToken
from teams_app.errors import ApplicationError
from teams_app.models import Project


class Command(BaseCommand):
    help = "Manage the orchestrator hub's API tokens: create (prints the token once), list, revoke PREFIX."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a token and print it (it is not shown again).")
        create.add_argument("--project", required=True, help="Project slug")
        create.add_argument("--name", default="command line", help="Who or what will use it")
        listing = sub.add_parser("list", help="List tokens (prefixes only).")
        listing.add_argument("--project", help="Only this project's tokens")
        revoke = sub.add_parser("revoke", help="Revoke the token whose prefix (or full value) is given.")
        revoke.add_argument("prefix")
        revoke.add_argument("--project", help="Only look in this project")

    def _project(self, slug: str | None) -> Project | None:
        if slug is None:
            return None
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(f"No project with slug {slug!r}.")
        return project

    def handle(self, *args, action: str, **options):
        try:
            if action == "create":
                token, raw = services.api_token_create(project=self._project(options["project"]), name=options["name"])
                self.stderr.write(f"Token {token.prefix}… for project {token.project.slug} ({token.name}); copy it now:")
                self.stdout.write(raw)
            elif action == "list":
                project = self._project(options["project"])
                tokens = selectors.api_tokens_for_project(project=project) if project else ApiToken.objects.select_related("project")
                for t in tokens:
                    state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
                    used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
                    self.stdout.write(f"{t.prefix}…\t{t.project.slug}\t{t.name}\t{state}\tlast used {used}")
            elif action == "revoke":
                token = services.api_token_revoke_by_prefix(prefix=options["prefix"], project=self._project(options["project"]))
                self.stdout.write(f"Revoked {token.prefix}… ({token.name}) of project {token.project.slug}.")
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
