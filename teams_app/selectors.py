"""Reads of teams_app. Access rules live here: a non-member never learns a project exists."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from teams_app.models import PRD, InventoryRevision, Membership, Project, Specialist, TeamTemplate
from teams_app.permissions import Action, role_allows


@dataclass(frozen=True)
class ProjectAccess:
    project: Project
    role: str | None  # None for a superuser who is not a member
    is_superuser: bool

    @property
    def role_label(self) -> str:
        return Membership.Role(self.role).label if self.role else ""

    def can(self, action: Action) -> bool:
        return self.is_superuser or role_allows(self.role, action)

    def require(self, action: Action) -> None:
        if not self.can(action):
            raise PermissionDenied(f"Your role in {self.project.name} does not allow this.")


def projects_for_user(*, user: AbstractBaseUser) -> QuerySet[Project]:
    qs = Project.objects.all()
    if not user.is_superuser:
        qs = qs.filter(memberships__user=user)
    return qs.order_by("name")


def project_access(*, user: AbstractBaseUser, slug: str | None = None, project_id: int | None = None) -> ProjectAccess:
    """The caller's access to one project; Http404 for anyone who is not a member (or superuser)."""
    lookup = {"slug": slug} if slug is not None else {"pk": project_id}
    try:
        project = Project.objects.get(**lookup)
    except (Project.DoesNotExist, ValueError):
        raise Http404("No such project.") from None
    role = None
    if user.is_authenticated:
        role = Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    if role is None and not user.is_superuser:
        raise Http404("No such project.")
    return ProjectAccess(project=project, role=role, is_superuser=bool(user.is_superuser))


def project_access_for(*, user: AbstractBaseUser, slug: str, action: Action) -> ProjectAccess:
    access = project_access(user=user, slug=slug)
    access.require(action)
    return access


def prd_by_reference(*, project: Project, reference: str | None) -> PRD | None:
    """The project's PRD with this reference (surrounding spaces ignored), or None."""
    reference = (reference or "").strip()
    return project.prds.filter(reference=reference).first() if reference else None


def prd_latest_active(*, project: Project) -> PRD | None:
    return project.prds.filter(status=PRD.Status.ACTIVE).order_by("-created_at", "-id").first()


def _member(specialist: Specialist, role: str) -> dict:
    # A slot may leave its role blank; a member always says what it does.
    first_line = next((line.strip() for line in specialist.description.splitlines() if line.strip()), "")
    return {
        "is_user": False,
        "specialist": specialist.slug,
        "specialist_id": specialist.pk,
        "name": specialist.name,
        "role": (role.strip() or first_line or specialist.name)[:200],
        "color": specialist.color,
        "focus": list(specialist.focus),
        "areas": list(specialist.areas),
        "hints": list(specialist.hints),
        "description": specialist.description[:500],
    }


def team_snapshot(*, source: TeamTemplate | Specialist) -> list[dict]:
    """The team a session keeps (``DesignSession.team``), copied so that later edits to the
    specialists or the template do not change a session under way: a template's slots in order
    (the USER slot as ``{"is_user": True, "name": "USER", "role"}``), or one specialist alone
    (a hub task). A specialist's role is its slot's, else the first line of its description."""
    if isinstance(source, Specialist):
        return [_member(source, "")]
    team = []
    for slot in source.slots.select_related("specialist").order_by("order"):
        if slot.is_user:
            team.append({"is_user": True, "name": "USER", "role": slot.role})
        else:
            team.append(_member(slot.specialist, slot.role))
    return team


def memberships_for_project(*, project: Project) -> QuerySet[Membership]:
    return project.memberships.select_related("user").order_by("role", "user__username")


def specialists_all() -> QuerySet[Specialist]:
    return Specialist.objects.order_by("name")


def team_templates_all() -> QuerySet[TeamTemplate]:
    return TeamTemplate.objects.prefetch_related("slots__specialist").order_by("name")


def inventory_latest(*, project: Project) -> InventoryRevision | None:
    return project.inventory_revisions.order_by("-number").first()
