"""The demo project a newcomer opens first: an online shop with a real inventory and PRD."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import transaction

from teams_app.inventory.services import inventory_import
from teams_app.models import PRD, Project
from teams_app.specialists.loader import load_specialists
from teams_app.specialists.teams import team_templates_load

DEMO_COMPOSE = Path(__file__).resolve().parents[2] / "inventory" / "demo" / "shop-compose.yml"

DEMO = {
    "slug": "demo",
    "name": "Demo: online shop",
    "description": (
        "A mid-sized online shop running as a Docker Compose cluster: a gateway in front of storefront, catalog, "
        "cart, orders, payments, inventory, shipping, notifications and user services, on a PostgreSQL, Redis and "
        "RabbitMQ backbone, with Stripe as the payment provider."
    ),
    "business_context": (
        "Revenue comes from one-time orders today. Marketing wants subscriptions (monthly coffee boxes) by next "
        "quarter, and support reports oversold items during flash sales."
    ),
    "constraints": (
        "PCI DSS scope must not grow beyond the payments service.\n"
        "Checkout p95 latency under 300 ms at 200 orders per minute.\n"
        "Two backend engineers; no new infrastructure products this quarter."
    ),
}

PRD_BODY = """# PRD-101: Subscriptions for recurring orders

## Problem
Customers who buy the same products every month re-order by hand; 38% of them churn within three months.

## Goals
- A customer subscribes to a product bundle with a monthly or weekly cadence.
- Each cycle creates a normal order, charges the saved Stripe payment method and reserves stock.
- Customers pause, skip or cancel a cycle from their account page.

## Non-goals
- Gift subscriptions, prorated upgrades.

## Requirements
- Payment failures retry three times over five days, then pause the subscription and notify the customer.
- Stock is reserved when a cycle's order is created, never oversold.
- Existing order, payment and notification flows are reused, not duplicated.
"""


class Command(BaseCommand):
    help = "Create or refresh the demo project (idempotent): built-in specialists, team templates, PRD and inventory."

    def handle(self, *args, **options):
        report = load_specialists()
        team_templates_load()
        with transaction.atomic():
            project, created = Project.objects.get_or_create(
                slug=DEMO["slug"], defaults={k: v for k, v in DEMO.items() if k != "slug"}
            )
            PRD.objects.get_or_create(
                project=project, reference="PRD-101",
                defaults={"title": "Subscriptions for recurring orders", "body": PRD_BODY, "status": PRD.Status.ACTIVE},
            )
        if not project.inventory_revisions.exists():
            revision = inventory_import(
                project=project, text=DEMO_COMPOSE.read_text(), fmt="compose", source_name="shop-compose.yml"
            )
            self.stdout.write(f"imported the demo inventory as revision {revision.number}")
        total = len(report.created) + len(report.updated) + len(report.unchanged)
        self.stdout.write(self.style.SUCCESS(
            f"demo project {'created' if created else 'up to date'}; {total} specialists, 3 team templates"
        ))
