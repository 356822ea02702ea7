"""Between stored inventory revisions and the plain inventory types."""

from __future__ import annotations

import re

from teams_app.inventory.rules.security import (
    EXTERNAL_REF_PREFIXES,
    NOT_SECRET_SUFFIX,
    PURE_REFERENCE,
    REFERENCE_WITH_DEFAULT,
)
from teams_app.inventory.types import DependencySpec, ParsedInventory, PortSpec, ServiceSpec
from teams_app.models import InventoryRevision, Service, ServiceDependency

_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL)", re.I)
_CREDENTIALS_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@", re.I)
MASK = "•••••"


def mask_value(name: str, value: str) -> str:
    """Hide literal secrets before they are stored or shown; references stay readable.

    Masking must not change what the rules see: the stored inventory is what the findings, the
    diagram and later hand edits are computed from. So a masked literal is still a literal (the
    plaintext-secret rules keep firing on it), and a reference (``${DB_PASSWORD}``, ``$TOKEN``,
    ``secret:...``) is kept as written, never turned into a literal-looking mask."""
    if not value:
        return value
    stripped = value.strip()
    if stripped.lower().startswith(EXTERNAL_REF_PREFIXES) or PURE_REFERENCE.match(stripped):
        default = REFERENCE_WITH_DEFAULT.match(stripped)
        if default is None or not default.group("default") or not _secret_name(name):
            return _mask_url_credentials(value)
        # ${DB_PASSWORD:-changeme} commits "changeme" to the file: hide it, keep the reference.
        start, end = default.span("default")
        return stripped[:start] + MASK + stripped[end:]
    if _secret_name(name):
        return MASK
    return _mask_url_credentials(value)


def _secret_name(name: str) -> bool:
    # *_URL, *_FILE, *_TTL ... mention a secret but hold something else (where it lives, how
    # long it lasts); the rules ignore them, and masking them would hide hosts from inference.
    return bool(_SECRET_NAME.search(name)) and not NOT_SECRET_SUFFIX.search(name)


def _mask_url_credentials(value: str) -> str:
    def mask(m: re.Match[str]) -> str:
        if m["pw"].startswith("$"):  # postgres://app:${DB_PASSWORD}@db is a reference, not a secret
            return m.group(0)
        return f"{m['scheme']}{m['user']}:{MASK}@"

    return _CREDENTIALS_IN_URL.sub(mask, value)


def service_to_spec(service: Service) -> ServiceSpec:
    return ServiceSpec(
        name=service.name,
        kind=service.kind,
        image=service.image,
        build=service.build,
        ports=[
            PortSpec(container=p["container"], host=p.get("host"), protocol=p.get("protocol", "tcp"), host_ip=p.get("host_ip", ""))
            for p in service.ports
        ],
        expose=list(service.expose),
        environment=dict(service.environment),
        env_files=list(service.env_files),
        networks=list(service.networks),
        healthcheck=service.healthcheck,
        restart=service.restart,
        replicas=service.replicas,
        resources=dict(service.resources),
        labels=dict(service.labels),
        patterns=dict(service.patterns),
        description=service.description,
    )


def revision_to_inventory(revision: InventoryRevision | None) -> ParsedInventory:
    if revision is None:
        return ParsedInventory(format="manual")
    services = list(revision.services.all())
    names = {s.pk: s.name for s in services}
    edges = ServiceDependency.objects.filter(revision=revision).values_list("source_id", "target_id", "kind", "via")
    return ParsedInventory(
        format=revision.source_format,
        services=[service_to_spec(s) for s in services],
        dependencies=[DependencySpec(source=names[s], target=names[t], kind=k, via=v) for s, t, k, v in edges],
    )


def spec_to_row(spec: ServiceSpec, revision: InventoryRevision) -> Service:
    return Service(
        revision=revision,
        name=spec.name,
        kind=spec.kind,
        image=spec.image[:300],
        build=spec.build[:300],
        ports=[
            {"container": p.container, "host": p.host, "protocol": p.protocol, **({"host_ip": p.host_ip} if p.host_ip else {})}
            for p in spec.ports
        ],
        expose=list(spec.expose),
        environment={k: mask_value(k, str(v)) for k, v in spec.environment.items()},
        env_files=list(spec.env_files),
        networks=list(spec.networks),
        healthcheck=spec.healthcheck,
        restart=spec.restart[:40],
        replicas=max(0, int(spec.replicas)),
        resources=dict(spec.resources),
        labels=dict(spec.labels),
        patterns=dict(spec.patterns),
        description=spec.description,
    )
