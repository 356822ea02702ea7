"""Start a design session from the command line, optionally waiting for it to need a person."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from config.celery import run_here_without_broker
from sessions_app import services
from sessions_app.design import selectors as design
from sessions_app.models import Contribution, DesignSession
from teams_app.errors import ApplicationError
from teams_app.models import PRD, Project, TeamTemplate
from teams_app.services import prd_for_reference

SETTLED = {
    DesignSession.Status.AWAITING_USER, DesignSession.Status.PAUSED_PRD, DesignSession.Status.PAUSED,
    DesignSession.Status.COMPLETED, DesignSession.Status.CANCELLED,
}


class Command(BaseCommand):
    help = "Start a design session. With --wait, block until it needs a person (or finishes)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug")
        parser.add_argument("--team", required=True, help="Team template slug, e.g. new-service-integration")
        parser.add_argument("--requirement", required=True)
        parser.add_argument("--prd", default="", help="PRD id or link; created as active if new")
        parser.add_argument("--title", default="")
        parser.add_argument("--provider", default="", choices=["", "rules", "anthropic", "openai"])
        parser.add_argument("--wait", action="store_true", help="Wait until the session needs a person")
        parser.add_argument("--timeout", type=float, default=300.0)
        parser.add_argument("--json", action="store_true", help="Print the outcome as JSON")

    def handle(self, *args, **o):
        project = Project.objects.filter(slug=o["project"]).first()
        if project is None:
            raise CommandError(f"There is no project with slug {o['project']!r}.")
        template = TeamTemplate.objects.filter(slug=o["team"]).first()
        if template is None:
            known = ", ".join(TeamTemplate.objects.values_list("slug", flat=True)) or "none (run load_specialists and seed_demo)"
            raise CommandError(f"There is no team template {o['team']!r}. Known: {known}.")
        if run_here_without_broker():
            # Nothing serves (no `make run`, no REDIS_URL): no worker would ever take the tasks.
            self.stderr.write("No broker is serving (start `make run` or set REDIS_URL); the specialists run in this command.")
        try:
            prd: PRD | None = (
                prd_for_reference(project=project, reference=o["prd"]) if o["prd"] else None
            )
            session = services.session_start(
                project=project, template=template, requirement=o["requirement"], title=o["title"], prd=prd,
                provider=o["provider"], user=None,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if o["wait"]:
            deadline = time.monotonic() + o["timeout"]
            while True:
                session.refresh_from_db()
                running = session.rounds.filter(status__in=["running", "synthesizing"]).exists()
                if session.status in SETTLED and not running:
                    break
                if time.monotonic() > deadline:
                    raise CommandError(f"Session {session.pk} did not settle within {o['timeout']:.0f} s (is a Celery worker running?).")
                time.sleep(0.2)
        outcome = {
            "session": session.pk,
            "status": session.status,
            "phase": session.phase,
            "reason": session.status_reason,
            "rounds": [
                {
                    "number": r.number, "kind": r.kind, "status": r.status,
                    "contributions": r.contributions.filter(author=Contribution.Author.SPECIALIST).count(),
                }
                for r in session.rounds.order_by("number")
            ],
            "proposal": design.proposal_document(design.proposal_latest(session)),
            "plan": design.plan_document(session),
        }
        if o["json"]:
            self.stdout.write(json.dumps(outcome))
            return
        self.stdout.write(f"session {session.pk}: {session.get_status_display()} · {session.phase_label}")
        if session.status_reason:
            self.stdout.write(f"  {session.status_reason}")
        for r in outcome["rounds"]:
            self.stdout.write(f"  round {r['number']} {r['kind']}: {r['status']}, {r['contributions']} contributions")
