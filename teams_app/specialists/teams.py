"""The seed's three team structures, with their missions and the USER slot."""

from __future__ import annotations

from django.db import transaction

from teams_app.errors import ApplicationError
from teams_app.models import Specialist, TeamSlot, TeamTemplate

USER = None  # marks the product-owner slot

BUILTIN_TEAMS: list[dict] = [
    {
        "slug": "new-service-integration",
        "name": "New Service Integration Team",
        "mission": "Integrate new services that enhance cluster capabilities while maintaining consistency",
        "slots": [
            ("pattern-archaeologist", "Analyze existing service patterns"),
            ("integration-architect", "Design communication flows"),
            ("data-flow-analyst", "Map data relationships"),
            ("security-guardian", "Ensure auth consistency"),
            ("performance-engineer", "Validate scaling approach"),
            ("devops-specialist", "Container and deployment patterns"),
            (USER, "Business capability validator"),
        ],
    },
    {
        "slug": "service-refactoring",
        "name": "Service Refactoring Team",
        "mission": "Improve service boundaries without breaking existing functionality",
        "slots": [
            ("boundary-analyst", "Identify service responsibilities"),
            ("dependency-mapper", "Track service relationships"),
            ("migration-planner", "Sequence changes safely"),
            ("contract-validator", "Ensure API compatibility"),
            ("testing-strategist", "Maintain system integrity"),
            (USER, "Confirm business logic preserved"),
        ],
    },
    {
        "slug": "cross-service-feature",
        "name": "Cross-Service Feature Team",
        "mission": "Implement features that span multiple services cohesively",
        "slots": [
            ("feature-decomposer", "Break into service capabilities"),
            ("transaction-coordinator", "Design distributed flows"),
            ("event-architect", "Plan event choreography"),
            ("state-manager", "Handle distributed state"),
            ("error-handler", "Design failure recovery"),
            (USER, "Validate feature completeness"),
        ],
    },
]


@transaction.atomic
def team_templates_load() -> list[TeamTemplate]:
    """Create or refresh the built-in templates. Needs the built-in specialists loaded first."""
    wanted = {slug for team in BUILTIN_TEAMS for slug, _ in team["slots"] if slug}
    specialists = {s.slug: s for s in Specialist.objects.filter(slug__in=wanted)}
    missing = sorted(wanted - specialists.keys())
    if missing:
        raise ApplicationError(
            "Load the built-in specialists first (python manage.py load_specialists); missing: " + ", ".join(missing)
        )
    templates = []
    for team in BUILTIN_TEAMS:
        template, _ = TeamTemplate.objects.update_or_create(
            slug=team["slug"], defaults={"name": team["name"], "mission": team["mission"], "builtin": True}
        )
        template.slots.all().delete()
        TeamSlot.objects.bulk_create(
            TeamSlot(
                template=template,
                order=index,
                specialist=specialists[slug] if slug else None,
                role=role,
                is_user=slug is None,
            )
            for index, (slug, role) in enumerate(team["slots"], start=1)
        )
        templates.append(template)
    return templates
