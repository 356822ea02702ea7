"""What happens and what it produces (SPEC §2): sessions, rounds, contributions, syntheses,
key questions, validation points, diagrams and the per-session event log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from teams_app.models import PRD, InventoryRevision, Project, Specialist, TeamTemplate


class Phase(models.TextChoices):
    ASSEMBLY = "assembly", "Team Assembly"
    DISCOVERY = "discovery", "Pattern Discovery"
    DESIGN = "design", "Integration Design"
    PLANNING = "planning", "Implementation Planning"
    VALIDATION = "validation", "Integration Validation"
    COMPLETED = "completed", "Completed"


PHASE_ORDER = [Phase.ASSEMBLY, Phase.DISCOVERY, Phase.DESIGN, Phase.PLANNING, Phase.VALIDATION, Phase.COMPLETED]


class DesignSession(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        AWAITING_USER = "awaiting_user", "Awaiting input"
        PAUSED_PRD = "paused_prd", "Paused: PRD needed"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    class Mode(models.TextChoices):
        DESIGN = "design", "Design session"
        TASK = "task", "Hub task"

    class ExpiryAction(models.TextChoices):
        KEEP_OPEN = "keep_open", "Stay open and show as overdue"
        PAUSE = "pause", "Close as expired and pause the session"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="design_sessions")
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.DESIGN)
    approval_quorum = models.PositiveSmallIntegerField(
        default=1, help_text="How many product owners must approve a validation point."
    )
    approvers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+",
        help_text="Named approvers; when set, only they answer and all of them must approve.",
    )
    validation_deadline_hours = models.PositiveIntegerField(null=True, blank=True)
    expiry_action = models.CharField(max_length=20, choices=ExpiryAction.choices, default=ExpiryAction.KEEP_OPEN)
    template = models.ForeignKey(TeamTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    team_name = models.CharField(max_length=120)
    mission = models.TextField(blank=True)
    team = models.JSONField(default=list, help_text="Snapshot of the template's slots at start.")
    title = models.CharField(max_length=200)
    requirement = models.TextField()
    prd = models.ForeignKey(PRD, null=True, blank=True, on_delete=models.PROTECT, related_name="design_sessions")
    phase = models.CharField(max_length=20, choices=Phase.choices, default=Phase.ASSEMBLY)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    status_reason = models.CharField(max_length=300, blank=True)
    provider = models.CharField(max_length=20, blank=True)
    budget_tokens = models.PositiveIntegerField(null=True, blank=True)
    budget_cost = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    discussion_limit = models.PositiveSmallIntegerField(default=2)
    consensus_threshold = models.FloatField(default=0.66)
    gate = models.JSONField(default=dict, blank=True)
    last_seq = models.PositiveIntegerField(default=0)
    inventory_revision = models.ForeignKey(
        InventoryRevision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    report = models.TextField(blank=True)
    # The design (SPEC §3a): the brief read at Team Assembly, the merged implementation plan
    # (Phase 4) and the integration checklist (Phase 5). Proposals are versioned rows.
    brief = models.JSONField(default=dict, blank=True)
    plan = models.JSONField(default=list, blank=True)
    checklist = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("session_detail", kwargs={"pk": self.pk})

    @property
    def phase_number(self) -> int:
        return PHASE_ORDER.index(self.phase) + 1

    @property
    def phase_label(self) -> str:
        """The phase as the agent definition numbers its five ("Phase 3: Integration Design"), and
        "Completed (all 5 phases)" once done: completion is not a sixth phase."""
        if self.phase == Phase.COMPLETED:
            return f"Completed (all {len(PHASE_ORDER) - 1} phases)"
        return f"Phase {self.phase_number}: {self.get_phase_display()}"

    @property
    def is_active(self) -> bool:
        return self.status not in (self.Status.COMPLETED, self.Status.CANCELLED)


class Round(models.Model):
    class Kind(models.TextChoices):
        ASSEMBLY = "assembly", "assembly"
        ANALYSIS = "analysis", "analysis"
        DISCUSSION = "discussion", "discussion"
        DESIGN = "design", "design"
        CONSENSUS = "consensus", "consensus"
        PLANNING = "planning", "planning"
        VALIDATION = "validation", "validation"
        FOLLOW_UP = "follow_up", "follow-up"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SYNTHESIZING = "synthesizing", "Synthesizing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    session = models.ForeignKey(DesignSession, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveSmallIntegerField()
    phase = models.CharField(max_length=20, choices=Phase.choices)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    brief = models.TextField(blank=True)
    addressed_to = models.JSONField(default=list, blank=True)
    feedback = models.TextField(blank=True, help_text="The USER's words a follow-up round answers.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    advance_due = models.BooleanField(
        default=False, help_text="The synthesis is written and the session's next step is not taken yet."
    )

    class Meta:
        ordering = ["session", "number"]
        constraints = [models.UniqueConstraint(fields=["session", "number"], name="unique_round_number")]

    def __str__(self) -> str:
        return f"Round {self.number} ({self.kind})"

    @property
    def opens_the_work(self) -> bool:
        """The session's first round of specialists, opened once, after the Maestro's assembly
        (which has no calls and no synthesis): nothing was reported or synthesized before it."""
        return self.kind == self.Kind.ANALYSIS


class Contribution(models.Model):
    class Author(models.TextChoices):
        SPECIALIST = "specialist", "Specialist"
        USER = "user", "User"
        MAESTRO = "maestro", "Maestro"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        RUNNING = "running", "Working"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    session = models.ForeignKey(DesignSession, on_delete=models.CASCADE, related_name="contributions")
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="contributions")
    author = models.CharField(max_length=20, choices=Author.choices)
    specialist = models.ForeignKey(Specialist, null=True, blank=True, on_delete=models.SET_NULL, related_name="contributions")
    specialist_slug = models.CharField(max_length=80, blank=True)
    author_name = models.CharField(max_length=150)
    color = models.CharField(max_length=20, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    brief = models.TextField(blank=True)
    text = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DONE)
    error = models.TextField(blank=True)
    provider = models.CharField(max_length=20, blank=True)
    model = models.CharField(max_length=100, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    attempt = models.PositiveSmallIntegerField(default=1)
    tries = models.PositiveSmallIntegerField(default=0)
    idempotency_key = models.CharField(max_length=120, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Stamped when a worker takes the call. Running without it: queued, the call handed to the
    # queue with the round that opened it (its start announced then), no worker has it yet.
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Running: the lease, renewed by the call's heartbeat (queued: until when the message may
    # wait). Pending: when the sweeper next re-enqueues it if nobody claimed it (a lost
    # message). Empty: not leased yet.
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["round", "created_at", "id"]
        indexes = [
            models.Index(fields=["round", "status"]),
            models.Index(fields=["status", "lease_expires_at"], name="contribution_lease_idx"),  # the sweeper's query
        ]

    def __str__(self) -> str:
        return f"{self.author_name} in {self.round}"

    @property
    def queued(self) -> bool:
        """Handed to the queue with its start announced, not taken by a worker yet."""
        return self.status == Contribution.Status.RUNNING and self.started_at is None


CONTRIBUTION_QUEUED = Q(status=Contribution.Status.RUNNING, started_at__isnull=True)
"""The contributions that are :attr:`Contribution.queued`."""
CONTRIBUTION_WAITING = Q(status=Contribution.Status.PENDING) | CONTRIBUTION_QUEUED
"""The contributions no worker has taken: pending or queued."""


class Synthesis(models.Model):
    session = models.ForeignKey(DesignSession, on_delete=models.CASCADE, related_name="syntheses")
    round = models.OneToOneField(Round, on_delete=models.CASCADE, related_name="synthesis")
    text = models.TextField()
    ascii = models.TextField(blank=True)
    pattern_checks = models.JSONField(default=list, blank=True)  # [{"ok": bool, "text": str}]
    integration_plan = models.JSONField(default=list, blank=True)  # ["orders ──HTTP──▶ payments", ...]
    requested_from = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "syntheses"
        ordering = ["session", "round__number"]

    def __str__(self) -> str:
        return f"Synthesis of {self.round}"


class KeyQuestion(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        AGREED = "agreed", "Consensus"
        CONFLICT = "conflict", "Conflict"
        DECIDED = "decided", "Decided by user"

    session = models.ForeignKey(DesignSession, on_delete=models.CASCADE, related_name="key_questions")
    ref = models.CharField(max_length=10)
    text = models.CharField(max_length=300)
    options = models.JSONField(default=list)
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    chosen = models.CharField(max_length=200, blank=True)
    agreement = models.FloatField(default=0)
    discussion_rounds = models.PositiveSmallIntegerField(default=0)
    key = models.CharField(max_length=80, blank=True, help_text="Where it comes from: a catalogue pattern or an edge conflict.")
    # Per analysis role, the option the brief, inventory or findings favour and why (see
    # providers.base.KeyQuestionBrief.grounds); an edge conflict also names its edge variants.
    grounds = models.JSONField(default=dict, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "ref"]
        constraints = [models.UniqueConstraint(fields=["session", "ref"], name="unique_question_ref")]

    def __str__(self) -> str:
        return f"{self.ref}: {self.text}"


class Position(models.Model):
    question = models.ForeignKey(KeyQuestion, on_delete=models.CASCADE, related_name="positions")
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="positions")
    contribution = models.ForeignKey(Contribution, on_delete=models.CASCADE, related_name="positions")
    specialist_slug = models.CharField(max_length=80)
    author_name = models.CharField(max_length=150)
    option = models.CharField(max_length=200)
    rationale = models.TextField(blank=True)

    class Meta:
        ordering = ["question", "round", "author_name"]
        constraints = [
            models.UniqueConstraint(fields=["question", "round", "specialist_slug"], name="unique_position_per_round")
        ]

    def __str__(self) -> str:
        return f"{self.author_name}: {self.option}"


class ValidationPoint(models.Model):
    class Kind(models.TextChoices):
        APPROVAL = "approval", "Approval"
        INPUT = "input", "Input"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        APPROVED = "approved", "Approved"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        REJECTED = "rejected", "Rejected"
        ANSWERED = "answered", "Answered"
        EXPIRED = "expired", "Expired"
        CANCELLED = "cancelled", "Cancelled"

    session = models.ForeignKey(DesignSession, on_delete=models.CASCADE, related_name="validation_points")
    round = models.ForeignKey(Round, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    gate = models.CharField(max_length=40, help_text="Which engine gate opened it.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField()
    questions = models.JSONField(default=list)
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    quorum = models.PositiveSmallIntegerField(default=1)
    approvers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    deadline = models.DateTimeField(null=True, blank=True)
    expiry_action = models.CharField(max_length=20, default="keep_open")
    synthesis = models.ForeignKey(Synthesis, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    diagram_version = models.ForeignKey(
        "DiagramVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["opened_at", "id"]
        indexes = [models.Index(fields=["state", "opened_at"])]

    def __str__(self) -> str:
        return self.title

    @property
    def overdue(self) -> bool:
        from django.utils import timezone

        return self.state == self.State.OPEN and self.deadline is not None and self.deadline < timezone.now()

    @property
    def expiry_label(self) -> str:
        return dict(DesignSession.ExpiryAction.choices).get(self.expiry_action, self.expiry_action)


class ValidationResponse(models.Model):
    class Verdict(models.TextChoices):
        APPROVE = "approve", "Approve"
        REQUEST_CHANGES = "request_changes", "Request changes"
        REJECT = "reject", "Reject"
        ANSWER = "answer", "Answer"

    point = models.ForeignKey(ValidationPoint, on_delete=models.PROTECT, related_name="responses")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    answers = models.JSONField(default=dict, blank=True)
    synthesis_seen = models.ForeignKey(Synthesis, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    diagram_version_seen = models.ForeignKey(
        "DiagramVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The proposal version the card showed, so the next point can say what changed since then.
    proposal_seen = models.ForeignKey(
        "DesignProposal", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["point", "user"], name="one_response_per_user")]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_verdict_display()}"


class Diagram(models.Model):
    class Kind(models.TextChoices):
        CLUSTER = "cluster", "Current cluster"
        PROPOSED = "proposed", "Proposed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="diagrams")
    session = models.ForeignKey(DesignSession, null=True, blank=True, on_delete=models.CASCADE, related_name="diagrams")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    title = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "kind", "id"]

    def __str__(self) -> str:
        return self.title


class DiagramVersion(models.Model):
    class Author(models.TextChoices):
        SYSTEM = "system", "System"
        USER = "user", "User"
        SPECIALIST = "specialist", "Specialist"

    diagram = models.ForeignKey(Diagram, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    mermaid = models.TextField()
    ascii = models.TextField(blank=True)
    inventory_revision = models.ForeignKey(
        InventoryRevision, null=True, blank=True, on_delete=models.SET_NULL, related_name="diagram_versions"
    )
    author_kind = models.CharField(max_length=20, choices=Author.choices, default=Author.SYSTEM)
    author_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    author_specialist = models.CharField(max_length=80, blank=True)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["diagram", "-number"]
        constraints = [models.UniqueConstraint(fields=["diagram", "number"], name="unique_diagram_version")]

    def __str__(self) -> str:
        return f"{self.diagram} v{self.number}"

    @property
    def author_label(self) -> str:
        if self.author_kind == self.Author.USER and self.author_user_id:
            return str(self.author_user)
        if self.author_kind == self.Author.SPECIALIST:
            return self.author_specialist
        return "system"


class SessionEvent(models.Model):
    """The per-session, gap-free, sequence-numbered log of everything streamed (§6)."""

    session = models.ForeignKey(DesignSession, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    # The fragment the page shows for this event, rendered once when it is delivered (or at its
    # first replay): replays and catch-ups send it as kept, for every viewer.
    html = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "seq"]
        constraints = [models.UniqueConstraint(fields=["session", "seq"], name="unique_event_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.type}"


# Models that live beside the code that owns them; imported here so Django registers them.
from sessions_app.decisions.models import *  # noqa: E402,F401,F403
from sessions_app.design.models import *  # noqa: E402,F401,F403
from sessions_app.hub.models import *  # noqa: E402,F401,F403
