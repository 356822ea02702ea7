"""What the designer needs to know about the real cluster: its backbone (broker, database,
cache, gateway), its dominant communication, and which existing service plays which domain role."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sessions_app.design.naming import find_service
from teams_app.inventory.types import Finding, ParsedInventory, ServiceSpec

_BROKER_PROTOCOLS = {"rabbitmq": "AMQP", "amqp": "AMQP", "kafka": "Kafka", "redpanda": "Kafka", "nats": "NATS", "pulsar": "Pulsar"}
_COMM_LABELS = {"rest": "REST", "grpc": "gRPC", "graphql": "GraphQL", "amqp": "AMQP", "kafka": "Kafka", "nats": "NATS"}

# Domain roles a capability pattern refers to, and the service names that play them.
DOMAINS: dict[str, tuple[str, ...]] = {
    "orders": ("order", "ordering", "purchase"),
    "checkout": ("checkout", "cart", "basket"),
    "payments": ("payment", "billing", "pay"),
    "inventory": ("inventory", "stock", "warehouse"),
    "catalog": ("catalog", "catalogue", "product", "productcatalog"),
    "users": ("user", "account", "identity", "customer", "auth"),
    "notifications": ("notification", "notify", "email", "mailer", "messaging"),
    "shipping": ("shipping", "shipment", "delivery", "fulfillment"),
    "frontend": ("frontend", "storefront", "web", "webapp", "ui"),
    "search": ("search",),
    "subscriptions": ("subscription",),
    "reporting": ("reporting", "report", "analytics"),
    "audit": ("audit", "auditlog"),
    "media": ("media", "file", "upload", "asset"),
    "scheduler": ("scheduler", "cron", "job"),
}


def _engine(svc: ServiceSpec) -> str:
    storage = str(svc.patterns.get("storage") or "")
    if storage:
        return storage
    image = svc.image.split("@")[0].split(":")[0].split("/")[-1]
    return image or svc.name


@dataclass
class Cluster:
    inventory: ParsedInventory
    findings: list[Finding] = field(default_factory=list)

    def __post_init__(self) -> None:
        by_kind: dict[str, list[ServiceSpec]] = {}
        for svc in sorted(self.inventory.services, key=lambda s: s.name):
            by_kind.setdefault(svc.kind, []).append(svc)
        self.brokers = by_kind.get("broker", [])
        self.databases = by_kind.get("database", [])
        self.caches = by_kind.get("cache", [])
        self.gateways = by_kind.get("gateway", [])
        self.externals = by_kind.get("external", [])
        counts: Counter[str] = Counter()
        for svc in self.inventory.services:
            if svc.kind in ("service", "gateway"):
                counts.update(svc.patterns.get("communication", []) or [])
        self.communication = counts
        self._domains: dict[str, ServiceSpec | None] = {}

    # -- backbone ------------------------------------------------------------------------
    @property
    def empty(self) -> bool:
        return not self.inventory.services

    @property
    def broker(self) -> str:
        return self.brokers[0].name if self.brokers else ""

    @property
    def broker_protocol(self) -> str:
        if not self.brokers:
            return ""
        engine = _engine(self.brokers[0]).lower()
        return next((p for k, p in _BROKER_PROTOCOLS.items() if k in engine), "events")

    @property
    def database(self) -> str:
        return self.databases[0].name if self.databases else ""

    @property
    def db_engine(self) -> str:
        return _engine(self.databases[0]) if self.databases else "PostgreSQL"

    @property
    def cache(self) -> str:
        return self.caches[0].name if self.caches else ""

    @property
    def gateway(self) -> str:
        return self.gateways[0].name if self.gateways else ""

    @property
    def dominant(self) -> str:
        """The dominant communication pattern's label ("REST"), or "" without an inventory."""
        top = self.communication.most_common(1)
        return _COMM_LABELS.get(top[0][0], top[0][0]) if top else ""

    @property
    def sync_protocol(self) -> str:
        dominant = self.dominant
        return dominant if dominant in ("REST", "gRPC", "GraphQL") else "REST"

    def uses(self, pattern: str) -> bool:
        return self.communication.get(pattern, 0) > 0

    # -- domains -------------------------------------------------------------------------
    def domain(self, key: str) -> ServiceSpec | None:
        if key not in self._domains:
            self._domains[key] = find_service(self.inventory, *DOMAINS.get(key, (key,)))
        return self._domains[key]

    def name_of(self, key: str) -> str:
        svc = self.domain(key)
        return svc.name if svc else ""

    def external_named(self, *words: str) -> str:
        for svc in self.externals:
            if any(w in svc.name.lower() or w in svc.image.lower() for w in words):
                return svc.name
        return ""

    def edge(self, source: str, target: str) -> str:
        """The inventory's edge kind between two services, or ""."""
        for dep in self.inventory.dependencies:
            if dep.source == source and dep.target == target:
                return dep.kind
        return ""

    def shared_database_rule(self) -> str:
        return next((f.rule for f in self.findings if f.role == "dataflow" and "shared" in f.why), "")

    def findings_about(self, service: str, role: str | None = None) -> list[Finding]:
        return [f for f in self.findings if service in f.services and (role is None or f.role == role)]

    def template_service(self, exclude: str = "") -> ServiceSpec | None:
        """The existing service the cluster's template is best read from: the healthchecked,
        pinned, limited one with the most replicas."""
        candidates = [
            s for s in self.inventory.services
            if s.kind == "service" and s.name != exclude
        ]
        if not candidates:
            return None

        def score(s: ServiceSpec) -> tuple:
            tag = s.image.rsplit(":", 1)[-1] if ":" in s.image else ""
            return (s.healthcheck, bool(tag and tag != "latest"), bool(s.resources), bool(s.restart), s.replicas, s.name)

        return max(candidates, key=score)
