"""Grounded context for every specialist call: project brief, inventory summary, the rules
findings for the specialist's focus, PRD excerpt, previous synthesis and user messages."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from sessions_app.design.brief import brief_text
from sessions_app.design.cluster import Cluster
from sessions_app.design.drafts import drafts_for
from sessions_app.design.models import DesignProposal
from sessions_app.design.proposal import proposal_lines
from sessions_app.design.schema import Brief, ProposalContent
from sessions_app.diagrams.ascii import render_ascii
from sessions_app.models import Contribution, DesignSession, Round, Synthesis
from teams_app.inventory.rules import analyze
from teams_app.inventory.store import revision_to_inventory
from teams_app.inventory.types import Finding, ParsedInventory

PRD_EXCERPT_CHARS = 1500
SYNTHESIS_EXCERPT_CHARS = 2500


@lru_cache(maxsize=32)
def _analysed(revision_id: int, created_at: str) -> tuple[ParsedInventory, tuple[Finding, ...]]:
    """A revision never changes once stored, so its inventory and findings are read and analysed
    once per process instead of on every specialist call (``created_at`` guards reused ids)."""
    from teams_app.models import InventoryRevision

    inventory = revision_to_inventory(InventoryRevision.objects.get(pk=revision_id))
    return inventory, tuple(analyze(inventory) if inventory.services else ())


@lru_cache(maxsize=64)
def _drawn(revision_id: int, created_at: str, focus: str) -> str:
    """The revision's cluster drawn once per focus (the drawing is a function of both alone)."""
    return render_ascii(_analysed(revision_id, created_at)[0], focus=focus)


@dataclass
class SessionContext:
    session: DesignSession
    inventory: ParsedInventory
    findings: list[Finding] = field(default_factory=list)

    @classmethod
    def load(cls, session: DesignSession) -> SessionContext:
        revision = session.inventory_revision
        if revision is None:
            return cls(session=session, inventory=revision_to_inventory(None), findings=[])
        inventory, findings = _analysed(revision.pk, revision.created_at.isoformat())
        return cls(session=session, inventory=inventory, findings=list(findings))

    # -- the design ----------------------------------------------------------------------
    @cached_property
    def cluster(self) -> Cluster:
        return Cluster(self.inventory, list(self.findings))

    @property
    def brief(self) -> Brief | None:
        """The session's design brief, validated once for each value the session holds."""
        raw = self.session.brief
        memo = self.__dict__.get("_brief")
        if memo is None or memo[0] is not raw:
            memo = self.__dict__["_brief"] = (raw, Brief.model_validate(raw) if raw else None)
        return memo[1]

    @cached_property
    def proposal(self) -> DesignProposal | None:
        return DesignProposal.objects.filter(session=self.session).order_by("-version").first()

    def refresh_proposal(self) -> None:
        for name in ("proposal", "involved_services", "_integration_plan"):
            self.__dict__.pop(name, None)

    def drafts(self):
        brief = self.brief
        return drafts_for(brief, self.cluster) if brief else []

    # -- the cluster -------------------------------------------------------------------
    @cached_property
    def dominant_communication(self) -> str:
        counts: Counter[str] = Counter()
        for svc in self.inventory.services:
            if svc.kind in ("service", "gateway"):
                counts.update(svc.patterns.get("communication", []) or [])
        return counts.most_common(1)[0][0] if counts else ""

    @cached_property
    def backbone(self) -> list[str]:
        """Datastores and brokers, as the seed's 'PostgreSQL, Redis, RabbitMQ backbone'."""
        names = []
        for svc in self.inventory.services:
            if svc.kind in ("database", "cache", "broker"):
                engine = svc.patterns.get("storage") or svc.image.split(":")[0].split("/")[-1] or svc.name
                names.append(f"{svc.name} ({engine})" if engine != svc.name else svc.name)
        return sorted(names)

    def cluster_line(self) -> str:
        if not self.inventory.services:
            return "no inventory imported yet (the team cannot ground its analysis)"
        backbone = ", ".join(self.backbone) or "no shared datastores"
        return f"{len(self.inventory.services)} services ({backbone} backbone)"

    @cached_property
    def involved_services(self) -> list[str]:
        """Services the brief and the proposal touch; else those the requirement, PRD or user
        messages name; else the entry points."""
        brief = self.brief
        if brief is not None:
            names = {t.name for t in brief.touched_services} | {s.name for s in brief.new_services}
            if self.proposal is not None:
                content = ProposalContent.model_validate(self.proposal.content)
                names |= {s.name for s in content.services if s.kind == "service"}
            if names:
                return sorted(names)
        text = " ".join(
            [self.session.requirement, self.session.prd.title if self.session.prd else "", *self.user_messages]
        ).lower()
        named = sorted(
            svc.name for svc in self.inventory.services if re.search(rf"(?<![\w-]){re.escape(svc.name.lower())}(?![\w-])", text)
        )
        if named:
            return named
        return sorted(svc.name for svc in self.inventory.services if svc.kind == "gateway")

    def integration_plan(self) -> list[str]:
        """The proposal's edges once there is one; before that, the inventory's edges of the
        services involved (worked out once per proposal)."""
        return list(self._integration_plan)

    @cached_property
    def _integration_plan(self) -> tuple[str, ...]:
        return tuple(self._integration_edges())

    def _integration_edges(self) -> list[str]:
        if self.proposal is not None:
            content = ProposalContent.model_validate(self.proposal.content)
            return [f"{e.source} ──{e.protocol}{' async' if e.mode == 'async' else ''}──▶ {e.target}" + (f"  ({e.change})" if e.change != "add" else "  (new)") for e in content.edges if e.change != "remove"]
        involved = set(self.involved_services)
        edges = [
            dep for dep in self.inventory.dependencies if not involved or dep.source in involved or dep.target in involved
        ]
        labels = {"sync_http": "HTTP", "sync_grpc": "gRPC", "async_event": "event", "database": "SQL", "cache": "cache"}
        return [f"{d.source} ──{labels.get(d.kind, d.kind)}──▶ {d.target}" for d in sorted(edges, key=lambda d: (d.source, d.target))]

    def mapped_integrations(self) -> list[str]:
        """Integration points that reach the real cluster: with a proposal, its edges that touch
        an inventory service; before one, the inventory's edges of the services involved."""
        if self.proposal is None:
            return self.integration_plan()
        names = {s.name for s in self.inventory.services}
        content = ProposalContent.model_validate(self.proposal.content)
        return [f"{e.source} → {e.target}" for e in content.edges if e.change != "remove" and (e.source in names or e.target in names)]

    def proposed_event_names(self) -> set[str]:
        """Events the proposal declares as new contracts: proposed, so not assumed."""
        if self.proposal is None:
            return set()
        return {e.name for e in ProposalContent.model_validate(self.proposal.content).events}

    def patterns_line(self) -> str:
        if not self.inventory.services:
            return "unknown until an inventory is imported"
        parts = []
        if self.dominant_communication:
            parts.append(f"communication: {self.dominant_communication}")
        storage = Counter(s.patterns.get("storage") for s in self.inventory.services if s.patterns.get("storage"))
        if storage:
            parts.append(f"storage: {storage.most_common(1)[0][0]}")
        auth = Counter(a for s in self.inventory.services for a in (s.patterns.get("auth") or []))
        parts.append(f"auth: {auth.most_common(1)[0][0] if auth else 'none detected'}")
        return "; ".join(parts)

    # -- the conversation -------------------------------------------------------------
    @cached_property
    def user_messages(self) -> list[str]:
        return list(
            Contribution.objects.filter(session=self.session, author=Contribution.Author.USER)
            .order_by("created_at", "id")
            .values_list("text", flat=True)
        )

    def previous_synthesis(self, before: Round | None = None) -> Synthesis | None:
        """The last synthesis before ``before`` (read once per round number for this context)."""
        memo = self.__dict__.setdefault("_previous", {})
        key = before.number if before is not None else None
        if key not in memo and before is not None and before.opens_the_work:
            memo[key] = None  # nothing was synthesized before it
        if key not in memo:
            qs = Synthesis.objects.filter(session=self.session).select_related("round")
            if before is not None:
                qs = qs.filter(round__number__lt=before.number)
            memo[key] = qs.order_by("-round__number").first()
        return memo[key]

    def findings_for(self, focus: list[str]) -> list[Finding]:
        roles = set(focus)
        return [f for f in self.findings if f.role in roles] if roles else list(self.findings)

    def as_text(self, *, focus: list[str], round: Round | None = None) -> str:
        session = self.session
        project = session.project
        sections = [
            f"PROJECT: {project.name}\n{project.description.strip()}",
            f"BUSINESS CONTEXT: {project.business_context.strip() or 'not recorded'}",
            f"CONSTRAINTS: {project.constraints.strip() or 'none recorded'}",
            f"REQUIREMENT: {session.requirement.strip()}",
        ]
        if session.prd:
            body = (session.prd.body or "").strip()
            excerpt = body[:PRD_EXCERPT_CHARS] + ("…" if len(body) > PRD_EXCERPT_CHARS else "")
            sections.append(f"PRD {session.prd.reference}: {session.prd.title}\n{excerpt}".rstrip())
        sections.append(self.inventory_summary())
        if self.dominant_communication:
            sections.append(f"Dominant communication: {self.dominant_communication}")
        brief = self.brief
        if brief is not None:
            sections.append("BRIEF:\n" + brief_text(brief))
        if self.proposal is not None:
            lines = proposal_lines(ProposalContent.model_validate(self.proposal.content))
            sections.append(f"PROPOSAL v{self.proposal.version}:\n" + "\n".join(f"- {line}" for line in lines))
        findings = self.findings_for(focus)
        if findings:
            lines = "\n".join(f"- [{f.severity}] {f.rule} ({', '.join(f.services)}): {f.why}" for f in findings[:40])
            sections.append(f"RULE-BASED FINDINGS FOR YOUR FOCUS ({', '.join(focus) or 'all'}):\n{lines}")
        previous = self.previous_synthesis(before=round)
        if previous:
            sections.append(f"PREVIOUS SYNTHESIS (round {previous.round.number}):\n{previous.text[:SYNTHESIS_EXCERPT_CHARS]}")
        if self.user_messages:
            sections.append("USER MESSAGES:\n" + "\n".join(f"- {m.strip()}" for m in self.user_messages))
        return "\n\n".join(sections)

    def cluster_drawing(self, *, focus: str) -> str:
        """The inventory as boxes and arrows with its edge list (:func:`render_ascii`), drawn
        once per revision and focus in this process."""
        revision = self.session.inventory_revision
        if revision is None:
            return render_ascii(self.inventory, focus=focus)
        return _drawn(revision.pk, revision.created_at.isoformat(), focus)

    def inventory_summary(self) -> str:
        """The inventory, one line per service (worked out once for this context: every call
        of a round is told it)."""
        if "_summary" not in self.__dict__:
            self.__dict__["_summary"] = self._inventory_summary()
        return self.__dict__["_summary"]

    def _inventory_summary(self) -> str:
        inv = self.inventory
        if not inv.services:
            return "INVENTORY: none imported. Do not assume services, endpoints or events; list what you need to know."
        lines = [f"INVENTORY ({len(inv.services)} services, {len(inv.dependencies)} dependencies):"]
        for svc in sorted(inv.services, key=lambda s: s.name):
            comm = ",".join(svc.patterns.get("communication", []) or []) or "-"
            storage = svc.patterns.get("storage") or "-"
            auth = ",".join(svc.patterns.get("auth", []) or []) or "-"
            outgoing = sorted(d.target for d in inv.dependencies if d.source == svc.name)
            lines.append(
                f"- {svc.name} [{svc.kind}] image={svc.image or svc.build or '-'} replicas={svc.replicas} "
                f"comm={comm} storage={storage} auth={auth} → {', '.join(outgoing) or 'none'}"
            )
        return "\n".join(lines)
