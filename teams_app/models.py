"""Who takes part and what they work on (SPEC §2): projects, membership, PRDs, specialists,
team templates and the cluster inventory."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse

AREAS = ("dev", "cluster", "migration", "content", "db", "ui", "edge", "infra")


class Project(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    business_context = models.TextField(blank=True)
    constraints = models.TextField(blank=True)
    provider = models.CharField(
        max_length=20, blank=True, help_text="Provider for this project's specialists; empty uses the site default."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("project_detail", kwargs={"slug": self.slug})


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ARCHITECT = "architect", "Architect"
        PRODUCT_OWNER = "product_owner", "Product owner"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="unique_membership")]
        ordering = ["project", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} · {self.project} ({self.get_role_display()})"


PRD_REFERENCE = RegexValidator(
    r"^(PRD-[A-Za-z0-9][A-Za-z0-9._-]{0,40}|https?://[^\s\x00-\x1f\x7f]{3,500})$",
    "Use a PRD id such as PRD-123 or an http(s) link.",
)


class PRD(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        SUPERSEDED = "superseded", "Superseded"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prds")
    reference = models.CharField(max_length=512, validators=[PRD_REFERENCE])
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, help_text="Markdown.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    source = models.CharField(
        max_length=300, blank=True, help_text="Where the PRD was imported from, e.g. Task Master: .taskmaster/docs/prd.txt."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "PRD"
        constraints = [models.UniqueConstraint(fields=["project", "reference"], name="unique_prd_reference")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.reference} · {self.title}"


class Specialist(models.Model):
    """An AI specialist, defined by a Claude Code agent file (front matter + system prompt)."""

    class Origin(models.TextChoices):
        BUILTIN = "builtin", "Built-in"
        IMPORTED = "imported", "Imported"
        CUSTOM = "custom", "Custom"

    slug = models.SlugField(max_length=80, unique=True, help_text="The agent file's name without .md.")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    areas = models.JSONField(default=list, blank=True)
    hints = models.JSONField(default=list, blank=True)
    focus = models.JSONField(default=list, blank=True, help_text="Rule-analysis groups this specialist draws on.")
    system_prompt = models.TextField()
    tools = models.CharField(max_length=300, blank=True)
    color = models.CharField(max_length=20, blank=True)
    provider = models.CharField(max_length=20, blank=True)
    model = models.CharField(max_length=100, blank=True)
    origin = models.CharField(max_length=20, choices=Origin.choices, default=Origin.CUSTOM)
    source_path = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def file_name(self) -> str:
        return f"{self.slug}.md"


class TeamTemplate(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    mission = models.TextField()
    builtin = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TeamSlot(models.Model):
    """One member of a team template: a specialist, or the USER (product owner) slot."""

    template = models.ForeignKey(TeamTemplate, on_delete=models.CASCADE, related_name="slots")
    order = models.PositiveSmallIntegerField()
    specialist = models.ForeignKey(Specialist, null=True, blank=True, on_delete=models.PROTECT, related_name="slots")
    role = models.CharField(max_length=200, help_text="What this member does in the team.")
    is_user = models.BooleanField(default=False)

    class Meta:
        ordering = ["template", "order"]
        constraints = [
            models.UniqueConstraint(fields=["template", "order"], name="unique_slot_order"),
            models.CheckConstraint(
                condition=models.Q(is_user=True, specialist__isnull=True) | models.Q(is_user=False, specialist__isnull=False),
                name="slot_is_user_xor_specialist",
            ),
        ]

    def __str__(self) -> str:
        return "USER" if self.is_user else str(self.specialist)


SERVICE_NAME = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", "1–63 letters, digits, dots, dashes or underscores.")


class InventoryRevision(models.Model):
    """A full snapshot of a project's cluster inventory; every import or edit makes a new one."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="inventory_revisions")
    number = models.PositiveIntegerField()
    source_format = models.CharField(max_length=20)  # compose | k8s | backstage | manual
    source_name = models.CharField(max_length=255, blank=True)
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "-number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="unique_inventory_revision")]

    def __str__(self) -> str:
        return f"{self.project.slug} r{self.number}"


class Service(models.Model):
    class Kind(models.TextChoices):
        SERVICE = "service", "Service"
        DATABASE = "database", "Database"
        CACHE = "cache", "Cache"
        BROKER = "broker", "Broker"
        GATEWAY = "gateway", "Gateway"
        EXTERNAL = "external", "External"

    revision = models.ForeignKey(InventoryRevision, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=63, validators=[SERVICE_NAME])
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.SERVICE)
    image = models.CharField(max_length=300, blank=True)
    build = models.CharField(max_length=300, blank=True)
    ports = models.JSONField(default=list, blank=True)  # [{"container", "host", "protocol"}]
    expose = models.JSONField(default=list, blank=True)
    environment = models.JSONField(default=dict, blank=True)  # secrets masked at import
    env_files = models.JSONField(default=list, blank=True)
    networks = models.JSONField(default=list, blank=True)
    healthcheck = models.BooleanField(default=False)
    restart = models.CharField(max_length=40, blank=True)
    replicas = models.PositiveIntegerField(default=1)
    resources = models.JSONField(default=dict, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    patterns = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["revision", "name"]
        constraints = [models.UniqueConstraint(fields=["revision", "name"], name="unique_service_per_revision")]

    def __str__(self) -> str:
        return self.name


class ServiceDependency(models.Model):
    class Kind(models.TextChoices):
        SYNC_HTTP = "sync_http", "HTTP"
        SYNC_GRPC = "sync_grpc", "gRPC"
        ASYNC_EVENT = "async_event", "event"
        DATABASE = "database", "database"
        CACHE = "cache", "cache"
        UNKNOWN = "unknown", "unknown"

    revision = models.ForeignKey(InventoryRevision, on_delete=models.CASCADE, related_name="dependencies")
    source = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="outgoing")
    target = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="incoming")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.UNKNOWN)
    via = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name_plural = "service dependencies"
        ordering = ["revision", "source__name", "target__name"]
        constraints = [
            models.UniqueConstraint(fields=["revision", "source", "target"], name="unique_edge_per_revision"),
            models.CheckConstraint(condition=~models.Q(source=models.F("target")), name="edge_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.source} → {self.target} ({self.kind})"
