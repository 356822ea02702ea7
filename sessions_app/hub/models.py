"""Models of the orchestrator hub (§10). Imported by ``sessions_app.models``.

An :class:`ApiToken` lets an AI agent call the hub for one project; only the SHA-256 of the token
is stored, the token itself is shown once. A :class:`HubTask` is the hub's record of one task
object: what was asked, where the router sent it and the task session that answers it. Its status
is never stored: it is read from the session (see ``sessions_app.hub.selectors``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from teams_app.models import AREAS, PRD, Project, Specialist

__all__ = ["ApiToken", "HubTask"]


class ApiToken(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True, help_text="The token's first characters, for display.")
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token, hex.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class HubTask(models.Model):
    class Tool(models.TextChoices):
        RUN_TASK = "run_task", "run_task"
        DEBUG_ASSIST = "debug_assist", "debug_assist"
        ARCHITECT_ASSIST = "architect_assist", "architect_assist"
        DATABASE_ASSIST = "database_assist", "database_assist"
        UI_ASSIST = "ui_assist", "ui_assist"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="hub_tasks")
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks")
    tool = models.CharField(max_length=20, choices=Tool.choices, default=Tool.RUN_TASK)
    task_id = models.CharField(max_length=128)
    area = models.CharField(max_length=20, choices=[(a, a) for a in AREAS])
    summary = models.CharField(max_length=500)
    hints = models.JSONField(default=list, blank=True)
    prd_reference = models.CharField(max_length=512)
    prd = models.ForeignKey(PRD, null=True, blank=True, on_delete=models.SET_NULL, related_name="hub_tasks")
    body_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical task object (idempotency).")
    specialist = models.ForeignKey(Specialist, null=True, blank=True, on_delete=models.SET_NULL, related_name="hub_tasks")
    specialist_file = models.CharField(max_length=90, help_text="The routed specialist's file name.")
    score = models.FloatField(default=0)
    rationale = models.TextField(blank=True)
    runners_up = models.JSONField(default=list, blank=True)
    brief = models.TextField(blank=True, help_text="An assist tool's rule-based brief, built from its parameters.")
    session = models.ForeignKey(
        "sessions_app.DesignSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="hub_tasks"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "hub task"
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["project", "task_id"], name="unique_hub_task_id")]

    def __str__(self) -> str:
        return f"{self.task_id} → {self.specialist_file}"

    def get_absolute_url(self) -> str:
        return reverse("hub_task_page", kwargs={"slug": self.project.slug, "task_id": self.task_id})
