"""Admin for the hub: API tokens (created here too, shown once) and hub tasks (read-only)."""

from __future__ import annotations

from django.contrib import admin, messages

from sessions_app.hub import services
from sessions_app.hub.models import ApiToken, HubTask
from teams_app.errors import ApplicationError


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "project", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["project", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "project__slug"]
    list_select_related = ["project", "created_by"]
    fields = ["project", "name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "project", "name"] if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return
        try:
            token, raw = services.api_token_create(project=obj.project, name=obj.name, user=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return
        obj.pk = token.pk
        obj.refresh_from_db()
        messages.warning(request, f"New token for {token.project}: {raw} — copy it now, it is not shown again.")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            services.api_token_revoke(token=token)
            revoked += 1
        messages.success(request, f"{revoked} token(s) revoked.")


@admin.register(HubTask)
class HubTaskAdmin(admin.ModelAdmin):
    list_display = ["task_id", "project", "tool", "area", "specialist_file", "score", "prd_reference", "session", "created_at"]
    list_filter = ["project", "tool", "area"]
    search_fields = ["task_id", "summary", "prd_reference", "specialist_file"]
    list_select_related = ["project", "session"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
