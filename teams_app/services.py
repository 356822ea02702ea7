"""Writes of teams_app: projects, membership, PRDs."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from teams_app.errors import ApplicationError
from teams_app.models import PRD, Membership, Project

SLUG_TAKEN = "A project with this slug already exists."
ALREADY_MEMBER = "{username} is already a member of this project."
NO_SUCH_USER = "There is no user named {username}."
PRD_EXISTS = "This project already has a PRD with reference {reference}."


def _validation_message(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)


@transaction.atomic
def project_create(
    *,
    name: str,
    created_by: AbstractBaseUser | None,
    slug: str = "",
    description: str = "",
    business_context: str = "",
    constraints: str = "",
) -> Project:
    project = Project(
        name=name.strip(),
        slug=slug or slugify(name)[:60],
        description=description,
        business_context=business_context,
        constraints=constraints,
        created_by=created_by,
    )
    try:
        project.full_clean()
    except ValidationError as exc:
        if "slug" in getattr(exc, "message_dict", {}) and Project.objects.filter(slug=project.slug).exists():
            raise ApplicationError(SLUG_TAKEN, {"field": "slug"}) from exc
        raise ApplicationError(_validation_message(exc)) from exc
    project.save()
    if created_by is not None:
        Membership.objects.create(project=project, user=created_by, role=Membership.Role.OWNER)
    return project


@transaction.atomic
def membership_add(*, project: Project, username: str, role: str) -> Membership:
    User = get_user_model()
    try:
        user = User.objects.get(username=username.strip())
    except User.DoesNotExist:
        raise ApplicationError(NO_SUCH_USER.format(username=username), {"field": "username"}) from None
    membership = Membership(project=project, user=user, role=role)
    try:
        membership.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise ApplicationError(_validation_message(exc)) from exc
    try:
        with transaction.atomic():
            membership.save()
    except IntegrityError:
        raise ApplicationError(ALREADY_MEMBER.format(username=user.username), {"field": "username"}) from None
    return membership


@transaction.atomic
def prd_create(*, project: Project, reference: str, title: str, body: str = "", status: str = PRD.Status.ACTIVE) -> PRD:
    prd = PRD(project=project, reference=reference.strip(), title=title.strip(), body=body, status=status)
    try:
        prd.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise ApplicationError(_validation_message(exc)) from exc
    if PRD.objects.filter(project=project, reference=prd.reference).exists():
        raise ApplicationError(PRD_EXISTS.format(reference=prd.reference), {"field": "reference"})
    prd.save()
    return prd
