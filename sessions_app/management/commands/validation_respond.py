"""Answer a session's open validation point as a given user, with the form's checks."""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from sessions_app import selectors
from sessions_app.models import DesignSession, ValidationPoint
from sessions_app.validation import validation_respond
from teams_app.errors import ApplicationError

ANSWERS = ["approve", "request_changes", "reject"]


class Command(BaseCommand):
    help = "Approve, request changes on or reject the open validation point of a session, as USERNAME."

    def add_arguments(self, parser):
        parser.add_argument("--session", type=int, required=True, help="Session id")
        parser.add_argument("--user", required=True, help="Username of the person answering")
        parser.add_argument("--answer", required=True, choices=ANSWERS)
        parser.add_argument("--comment", default="", help="Required when requesting changes or rejecting")
        parser.add_argument("--json", action="store_true", help="Print the outcome as JSON")

    def handle(self, *args, **o):
        session = DesignSession.objects.filter(pk=o["session"]).first()
        if session is None:
            raise CommandError(f"There is no session {o['session']}.")
        user = get_user_model().objects.filter(username=o["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"There is no active user {o['user']!r}.")
        try:
            selectors.session_access(user=user, pk=session.pk)  # the session page's own check
        except Http404:
            raise CommandError(f"{user.get_username()} is not a member of project {session.project.slug!r}.") from None
        point = (
            session.validation_points.filter(state=ValidationPoint.State.OPEN, kind=ValidationPoint.Kind.APPROVAL)
            .order_by("opened_at", "pk")
            .first()
        )
        if point is None:
            raise CommandError(f"Session {session.pk} has no open validation point to approve or reject.")
        try:
            response = validation_respond(point=point, user=user, verdict=o["answer"], comment=o["comment"])
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        point.refresh_from_db()
        session.refresh_from_db()
        outcome = {
            "session": session.pk,
            "point": point.pk,
            "title": point.title,
            "response": response.pk,
            "user": user.get_username(),
            "answer": response.verdict,
            "point_state": point.state,
            "status": session.status,
            "phase": session.phase,
            "proposal_seen": response.proposal_seen.version if response.proposal_seen_id else None,
        }
        if o["json"]:
            self.stdout.write(json.dumps(outcome))
            return
        self.stdout.write(f"{user.get_username()} answered “{point.title}”: {response.get_verdict_display()}.")
        self.stdout.write(f"  point {point.get_state_display().lower()} · session {session.get_status_display()} · "
                          f"{session.get_phase_display()}")
