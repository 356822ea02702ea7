"""Versioned proposals (SPEC §3a). Each version is a whole proposal, so any two can be diffed
and a validation point can say what changed since the version a person last saw."""

from __future__ import annotations

from django.db import models


class DesignProposal(models.Model):
    class Author(models.TextChoices):
        MAESTRO = "maestro", "Maestro"
        SPECIALIST = "specialist", "Specialist"
        USER = "user", "User"

    session = models.ForeignKey("sessions_app.DesignSession", on_delete=models.CASCADE, related_name="proposals")
    version = models.PositiveIntegerField()
    round = models.ForeignKey("sessions_app.Round", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    author_kind = models.CharField(max_length=20, choices=Author.choices, default=Author.MAESTRO)
    author_name = models.CharField(max_length=150, default="Maestro")
    contributors = models.JSONField(default=list, blank=True, help_text="Specialists whose changes this version merged.")
    reason = models.TextField(blank=True)
    content = models.JSONField(default=dict)  # schema.ProposalContent
    diff = models.JSONField(default=dict, blank=True)  # against the previous version (diff.proposal_diff)
    diagram_version = models.ForeignKey(
        "sessions_app.DiagramVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "-version"]
        constraints = [models.UniqueConstraint(fields=["session", "version"], name="unique_proposal_version")]

    def __str__(self) -> str:
        return f"Proposal v{self.version} of {self.session_id}"
