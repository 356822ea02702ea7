from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model

from sessions_app.models import (
    Contribution,
    DesignSession,
    Diagram,
    DiagramVersion,
    KeyQuestion,
    Position,
    Round,
    SessionEvent,
    Synthesis,
    ValidationPoint,
    ValidationResponse,
)


class RoundInline(admin.TabularInline):
    model = Round
    extra = 0
    fields = ["number", "phase", "kind", "status", "finished_at"]
    readonly_fields = fields
    show_change_link = True


class KeyQuestionInline(admin.TabularInline):
    model = KeyQuestion
    extra = 0
    fields = ["ref", "text", "state", "chosen", "agreement"]
    readonly_fields = fields


class _ApproversForm(forms.ModelForm):
    """Named approvers must be members of the project: the widget offers only them, and a
    posted outsider is refused (as the New session form does)."""

    def _project(self):
        raise NotImplementedError

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields.get("approvers")
        project = self._project() if self.instance.pk else None
        if field is not None and project is not None:
            field.queryset = get_user_model().objects.filter(memberships__project=project).order_by("username")
            field.help_text = f"Members of {project.name} only."

    def clean(self):
        data = super().clean()
        project = self._project() if self.instance.pk else data.get("project")
        approvers = data.get("approvers") or []
        if project is not None and approvers:
            outsiders = [u.get_username() for u in approvers if not project.memberships.filter(user=u).exists()]
            if outsiders:
                self.add_error("approvers", f"Not members of {project.name}: {', '.join(outsiders)}.")
        return data


class DesignSessionAdminForm(_ApproversForm):
    def _project(self):
        return self.instance.project


class ValidationPointAdminForm(_ApproversForm):
    def _project(self):
        return self.instance.session.project


@admin.register(DesignSession)
class DesignSessionAdmin(admin.ModelAdmin):
    form = DesignSessionAdminForm
    list_display = ["title", "project", "team_name", "phase", "status", "tokens_in", "tokens_out", "cost", "created_at"]
    list_filter = ["status", "phase", "project", "team_name"]
    search_fields = ["title", "requirement", "prd__reference"]
    list_select_related = ["project", "prd"]
    readonly_fields = ["last_seq", "tokens_in", "tokens_out", "cost", "created_at", "updated_at", "completed_at"]
    inlines = [RoundInline, KeyQuestionInline]
    date_hierarchy = "created_at"


class ContributionInline(admin.TabularInline):
    model = Contribution
    extra = 0
    fields = ["author_name", "status", "provider", "model", "tokens_in", "tokens_out", "latency_ms", "attempt"]
    readonly_fields = fields
    show_change_link = True


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ["__str__", "session", "phase", "kind", "status", "created_at"]
    list_filter = ["phase", "kind", "status"]
    search_fields = ["session__title", "brief"]
    list_select_related = ["session"]
    inlines = [ContributionInline]


@admin.register(Contribution)
class ContributionAdmin(admin.ModelAdmin):
    list_display = ["author_name", "session", "round", "status", "provider", "model", "tokens_in", "tokens_out", "cost", "latency_ms", "attempt"]
    list_filter = ["status", "author", "provider"]
    search_fields = ["author_name", "text", "error", "idempotency_key"]
    list_select_related = ["session", "round"]
    readonly_fields = ["idempotency_key", "created_at", "started_at", "finished_at"]


@admin.register(Synthesis)
class SynthesisAdmin(admin.ModelAdmin):
    list_display = ["__str__", "session", "created_at"]
    search_fields = ["session__title", "text"]
    list_select_related = ["session", "round"]


class PositionInline(admin.TabularInline):
    model = Position
    extra = 0
    fields = ["author_name", "round", "option", "rationale"]
    readonly_fields = fields


@admin.register(KeyQuestion)
class KeyQuestionAdmin(admin.ModelAdmin):
    list_display = ["ref", "text", "session", "state", "chosen", "agreement", "discussion_rounds"]
    list_filter = ["state"]
    search_fields = ["text", "session__title"]
    list_select_related = ["session"]
    inlines = [PositionInline]


class ResponseInline(admin.TabularInline):
    model = ValidationResponse
    extra = 0
    fields = ["user", "verdict", "comment", "created_at"]
    readonly_fields = fields
    can_delete = False


@admin.register(ValidationPoint)
class ValidationPointAdmin(admin.ModelAdmin):
    form = ValidationPointAdminForm
    list_display = ["title", "session", "gate", "kind", "state", "opened_at", "closed_at"]
    list_filter = ["state", "kind", "gate"]
    search_fields = ["title", "body", "session__title"]
    list_select_related = ["session"]
    inlines = [ResponseInline]


@admin.register(ValidationResponse)
class ValidationResponseAdmin(admin.ModelAdmin):
    list_display = ["point", "user", "verdict", "created_at"]
    list_filter = ["verdict"]
    search_fields = ["comment", "user__username", "point__title"]
    list_select_related = ["point", "user"]

    def has_change_permission(self, request, obj=None):
        return False  # responses are immutable


class DiagramVersionInline(admin.TabularInline):
    model = DiagramVersion
    extra = 0
    fields = ["number", "author_kind", "note", "created_at"]
    readonly_fields = fields
    show_change_link = True


@admin.register(Diagram)
class DiagramAdmin(admin.ModelAdmin):
    list_display = ["title", "project", "kind", "session", "created_at"]
    list_filter = ["kind", "project"]
    search_fields = ["title"]
    list_select_related = ["project", "session"]
    inlines = [DiagramVersionInline]


@admin.register(DiagramVersion)
class DiagramVersionAdmin(admin.ModelAdmin):
    list_display = ["diagram", "number", "author_kind", "author_user", "note", "created_at"]
    list_filter = ["author_kind"]
    search_fields = ["note", "mermaid"]
    list_select_related = ["diagram", "author_user"]


@admin.register(SessionEvent)
class SessionEventAdmin(admin.ModelAdmin):
    list_display = ["session", "seq", "type", "created_at"]
    list_filter = ["type"]
    search_fields = ["session__title"]
    list_select_related = ["session"]

    def has_change_permission(self, request, obj=None):
        return False
from sessions_app.decisions import admin as _decisions_admin  # noqa: E402,F401  (registers the decision log)
from sessions_app.hub import admin as _hub_admin  # noqa: E402,F401
