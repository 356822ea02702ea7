from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from teams_app.links import base_url
from teams_app.models import Membership, Project


class Command(BaseCommand):
    help = "Create the local admin user once (password kept in var/admin-password) and print the credentials."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        User = get_user_model()
        secret_file = settings.DATA_DIR / "admin-password"
        user = User.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user = User.objects.create_superuser(username=username, email="", password=password)
            settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
            secret_file.write_text(password)
            secret_file.chmod(0o600)
        demo = Project.objects.filter(slug="demo").first()
        if demo is not None:
            # The golden path: this account starts the demo's session and approves its design.
            # Approving takes the product-owner role (owners do not approve); as a superuser it
            # keeps every owner right (sessions, members, tokens) on every project.
            membership, _ = Membership.objects.get_or_create(
                user=user, project=demo, defaults={"role": Membership.Role.PRODUCT_OWNER}
            )
            if membership.role == Membership.Role.OWNER:  # the role earlier versions gave it
                membership.role = Membership.Role.PRODUCT_OWNER
                membership.save(update_fields=["role"])
        password = secret_file.read_text().strip() if secret_file.exists() else "(set before this file existed)"
        self.stdout.write(self.style.SUCCESS(f"Sign in at {base_url()}/ as {username} / {password}"))
        if demo is not None:
            self.stdout.write(
                f"{username} is a site admin and the product owner of {demo.name}: it can start the demo's "
                "session and approve its design. Invite others on the project's Members page."
            )
