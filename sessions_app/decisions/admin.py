"""Admin for the decision log. History rows (status changes, provenance) are read-only: the log is
append-only, and writes with rules go through the services."""

from __future__ import annotations

from django.contrib import admin

from sessions_app.decisions.models import Decision, DecisionLink, DecisionOption, DecisionProvenance, StatusChange


class DecisionOptionInline(admin.TabularInline):
    model = DecisionOption
    extra = 0
    fields = ["order", "title", "good", "neutral", "bad"]


class DecisionLinkInline(admin.TabularInline):
    model = DecisionLink
    fk_name = "from_decision"
    extra = 0
    fields = ["kind", "to_decision", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]
    raw_id_fields = ["to_decision"]


class StatusChangeInline(admin.TabularInline):
    model = StatusChange
    extra = 0
    fields = ["at", "from_status", "to_status", "actor_label", "via", "note"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class DecisionProvenanceInline(admin.TabularInline):
    model = DecisionProvenance
    extra = 0
    fields = ["author_name", "specialist_slug", "provider", "model", "option", "contribution"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "project", "status", "date", "session", "updated_at"]
    list_filter = ["status", "project"]
    search_fields = ["title", "context", "justification", "chosen_option"]
    list_select_related = ["project", "session"]
    readonly_fields = ["number", "key_question", "round", "created_by", "created_at", "updated_at"]
    exclude = ["search_vector"]
    raw_id_fields = ["session", "prd"]
    inlines = [DecisionOptionInline, DecisionLinkInline, StatusChangeInline, DecisionProvenanceInline]
    date_hierarchy = "date"


@admin.register(StatusChange)
class StatusChangeAdmin(admin.ModelAdmin):
    list_display = ["decision", "from_status", "to_status", "actor_label", "via", "at"]
    list_filter = ["to_status"]
    search_fields = ["decision__title", "actor_label", "note"]
    list_select_related = ["decision__project", "via"]

    def has_change_permission(self, request, obj=None):
        return False  # the status history is append-only

    def has_delete_permission(self, request, obj=None):
        return False
