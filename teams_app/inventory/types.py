"""Plain data types of the cluster inventory, shared by importers, inference, the rules
analyst and the diagram renderers. No Django here: the database models convert to and from
these, so analysis and rendering run the same way on a parsed file and on stored rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ServiceKind = Literal["service", "database", "cache", "broker", "gateway", "external"]
SERVICE_KINDS: tuple[str, ...] = ("service", "database", "cache", "broker", "gateway", "external")

EdgeKind = Literal["sync_http", "sync_grpc", "async_event", "database", "cache", "unknown"]
EDGE_KINDS: tuple[str, ...] = ("sync_http", "sync_grpc", "async_event", "database", "cache", "unknown")

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")

# The analysis groups of SPEC §5, one per specialist role of the New Service Integration Team.
Role = Literal["pattern", "integration", "dataflow", "security", "performance", "devops"]
ROLES: tuple[str, ...] = ("pattern", "integration", "dataflow", "security", "performance", "devops")
ROLE_LABELS: dict[str, str] = {
    "pattern": "Pattern Archaeologist",
    "integration": "Integration Architect",
    "dataflow": "Data Flow Analyst",
    "security": "Security Guardian",
    "performance": "Performance Engineer",
    "devops": "DevOps Specialist",
}


@dataclass
class PortSpec:
    container: int
    host: int | None = None  # published on the host when set
    protocol: str = "tcp"
    host_ip: str = ""  # the address it is bound to when the file says (127.0.0.1: this host only)

    @property
    def loopback(self) -> bool:
        """Bound to the host's loopback: reachable from that host only, not exposed."""
        return self.host_ip.startswith("127.") or self.host_ip in ("::1", "localhost")


@dataclass
class ServiceSpec:
    name: str
    kind: str = "service"
    image: str = ""
    build: str = ""  # build context when built from source
    ports: list[PortSpec] = field(default_factory=list)
    expose: list[int] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)  # values as written in the file
    env_files: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    healthcheck: bool = False
    restart: str = ""
    replicas: int = 1
    resources: dict[str, str] = field(default_factory=dict)  # e.g. {"cpus": "0.5", "memory": "256M"}
    labels: dict[str, str] = field(default_factory=dict)
    # Inferred: {"communication": ["rest", "amqp"], "storage": "postgresql", "auth": ["jwt"]}
    patterns: dict[str, object] = field(default_factory=dict)
    description: str = ""


@dataclass
class DependencySpec:
    source: str
    target: str
    kind: str = "unknown"
    via: str = ""  # what declared it: depends_on, env:ORDERS_URL, dependsOn, consumesApis ...


@dataclass
class ParsedInventory:
    format: str  # compose | k8s | backstage | manual
    services: list[ServiceSpec] = field(default_factory=list)
    dependencies: list[DependencySpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def service(self, name: str) -> ServiceSpec | None:
        for s in self.services:
            if s.name == name:
                return s
        return None


@dataclass(frozen=True)
class Finding:
    rule: str  # e.g. "SEC001"
    severity: str
    role: str
    services: tuple[str, ...]
    why: str

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "role": self.role,
            "services": list(self.services),
            "why": self.why,
        }
