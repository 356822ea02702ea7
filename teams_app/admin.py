from __future__ import annotations

from django.contrib import admin

from teams_app.models import (
    PRD,
    InventoryRevision,
    Membership,
    Project,
    Service,
    ServiceDependency,
    Specialist,
    TeamSlot,
    TeamTemplate,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class PRDInline(admin.TabularInline):
    model = PRD
    extra = 0
    fields = ["reference", "title", "status"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "member_count", "provider", "created_at"]
    search_fields = ["name", "slug", "description"]
    list_filter = ["provider", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline, PRDInline]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(_members=Count("memberships"))

    @admin.display(ordering="_members", description="members")
    def member_count(self, obj):
        return obj._members


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]
    list_select_related = ["user", "project"]
    autocomplete_fields = ["user", "project"]


@admin.register(PRD)
class PRDAdmin(admin.ModelAdmin):
    list_display = ["reference", "title", "project", "status", "created_at"]
    list_filter = ["status", "project"]
    search_fields = ["reference", "title", "body"]
    list_select_related = ["project"]


@admin.register(Specialist)
class SpecialistAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "origin", "provider", "model", "updated_at"]
    list_filter = ["origin", "provider"]
    search_fields = ["name", "slug", "description", "system_prompt"]


class TeamSlotInline(admin.TabularInline):
    model = TeamSlot
    extra = 0
    autocomplete_fields = ["specialist"]


@admin.register(TeamTemplate)
class TeamTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "builtin"]
    list_filter = ["builtin"]
    search_fields = ["name", "mission"]
    inlines = [TeamSlotInline]


class ServiceInline(admin.TabularInline):
    model = Service
    extra = 0
    fields = ["name", "kind", "image", "replicas", "healthcheck", "restart"]
    show_change_link = True


@admin.register(InventoryRevision)
class InventoryRevisionAdmin(admin.ModelAdmin):
    list_display = ["project", "number", "source_format", "source_name", "created_by", "created_at"]
    list_filter = ["source_format", "project"]
    search_fields = ["project__name", "source_name", "note"]
    list_select_related = ["project", "created_by"]
    inlines = [ServiceInline]


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "image", "replicas", "healthcheck", "revision"]
    list_filter = ["kind", "healthcheck", "revision__project"]
    search_fields = ["name", "image"]
    list_select_related = ["revision__project"]


@admin.register(ServiceDependency)
class ServiceDependencyAdmin(admin.ModelAdmin):
    list_display = ["source", "target", "kind", "via", "revision"]
    list_filter = ["kind", "revision__project"]
    search_fields = ["source__name", "target__name", "via"]
    list_select_related = ["source", "target", "revision__project"]
