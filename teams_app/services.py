"""Writes of teams_app: projects, membership, PRDs."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from teams_app.errors import ApplicationError
from teams_app.models import PRD, Membership, Project
from teams_app.selectors import prd_by_reference

SLUG_TAKEN = "A project with this slug already exists."
ALREADY_MEMBER = "{username} is already a member of this project."
NO_SUCH_USER = "There is no user named {username}."
BAD_EMAIL = "{email} is not a valid email address."
BAD_ROLE = "Choose one of the roles."
NO_SUCH_MEMBER = "That person is not a member of this project."
LAST_OWNER = "A project keeps at least one owner: make someone else owner first."
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
    try:
        with transaction.atomic():
            project.save()
    except IntegrityError as exc:  # another request took the slug since the check above
        if Project.objects.filter(slug=project.slug).exists():
            raise ApplicationError(SLUG_TAKEN, {"field": "slug"}) from exc
        raise
    if created_by is not None:
        Membership.objects.create(project=project, user=created_by, role=Membership.Role.OWNER)
    return project


def _username_for_email(email: str) -> str:
    User = get_user_model()
    stem = slugify(email.split("@", 1)[0])[:100] or "member"
    candidate, n = stem, 1
    while User.objects.filter(username=candidate).exists():
        n += 1
        candidate = f"{stem}{n}"
    return candidate


@transaction.atomic
def membership_invite(
    *, project: Project, identifier: str, role: str, set_password_url: Callable[[AbstractBaseUser], str] | None = None
) -> tuple[Membership, bool]:
    """Add a person by username or email with a role. An email nobody uses yet gets a new
    account without a password and, on commit, a message with a link to choose one
    (``set_password_url`` builds it). Returns the membership and whether the account is new."""
    User = get_user_model()
    identifier = (identifier or "").strip()
    created = False
    if "@" in identifier:
        try:
            validate_email(identifier)
        except ValidationError:
            raise ApplicationError(BAD_EMAIL.format(email=identifier), {"field": "username"}) from None
        user = User.objects.filter(email__iexact=identifier).order_by("pk").first()
        if user is None:
            if role not in Membership.Role.values:
                raise ApplicationError(BAD_ROLE, {"field": "role"})
            user = User(username=_username_for_email(identifier), email=identifier)
            user.set_unusable_password()
            user.save()
            created = True
    else:
        user = User.objects.filter(username=identifier).first()
        if user is None:
            raise ApplicationError(NO_SUCH_USER.format(username=identifier), {"field": "username"})
    membership = _membership_create(project=project, user=user, role=role)
    if created and set_password_url is not None:
        link = set_password_url(user)
        transaction.on_commit(lambda: _send_invitation(project.name, user.email, user.get_username(), link))
    return membership, created


def _send_invitation(project_name: str, email: str, username: str, link: str) -> None:
    send_mail(
        subject=f"[Maestro] You are invited to {project_name}",
        message=(
            f"You were added to {project_name} on Maestro.\n\n"
            f"Your username is {username}. Choose a password here:\n{link}\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[email],
    )


@transaction.atomic
def membership_set_role(*, project: Project, membership_id: int, role: str) -> Membership:
    membership = project.memberships.select_for_update().filter(pk=membership_id).first()
    if membership is None:
        raise ApplicationError(NO_SUCH_MEMBER)
    if role not in Membership.Role.values:
        raise ApplicationError(BAD_ROLE, {"field": "role"})
    owners = project.memberships.filter(role=Membership.Role.OWNER)
    if membership.role == Membership.Role.OWNER and role != Membership.Role.OWNER and owners.count() == 1:
        raise ApplicationError(LAST_OWNER)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


def _membership_create(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
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


def _prd_valid(*, project: Project, reference: str, title: str, body: str = "", status: str = PRD.Status.ACTIVE) -> PRD:
    prd = PRD(project=project, reference=reference.strip(), title=title.strip(), body=body, status=status)
    try:
        prd.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise ApplicationError(_validation_message(exc)) from exc
    return prd


@transaction.atomic
def prd_create(*, project: Project, reference: str, title: str, body: str = "", status: str = PRD.Status.ACTIVE) -> PRD:
    """A new PRD. Raises ApplicationError when it is not valid or its reference is taken (also
    when another request takes it at the same moment)."""
    prd = _prd_valid(project=project, reference=reference, title=title, body=body, status=status)
    if PRD.objects.filter(project=project, reference=prd.reference).exists() or _prd_insert(prd) is not prd:
        raise ApplicationError(PRD_EXISTS.format(reference=prd.reference), {"field": "reference"})
    return prd


def _prd_insert(prd: PRD) -> PRD:
    """Insert ``prd`` in a savepoint of its own and return the row that holds its reference:
    ``prd``, or the one another request inserted first (the unique constraint decides; only
    this savepoint rolls back)."""
    try:
        with transaction.atomic():
            prd.save()
    except IntegrityError:
        winner = prd_by_reference(project=prd.project, reference=prd.reference)
        if winner is None:
            raise
        return winner
    return prd


def prd_for_reference(*, project: Project, reference: str) -> PRD:
    """The project's PRD with this reference (surrounding spaces ignored), created active and
    titled after the reference when it is new. Callers creating the same new reference at once
    all get the one PRD: the unique constraint decides, and a loser's savepoint rolls back and
    reads the winner's row."""
    existing = prd_by_reference(project=project, reference=reference)
    if existing is not None:
        return existing
    reference = (reference or "").strip()
    return _prd_insert(_prd_valid(project=project, reference=reference, title=f"Attached {reference}"[:200]))
