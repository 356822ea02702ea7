"""Security Guardian: exposed datastores, plaintext secrets, missing authentication."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .base import APP_KINDS, DATASTORE_KINDS, Context, Hit, RuleSet, auth, hit, names

rules = RuleSet("security")

SECRET_KEY = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY", re.IGNORECASE)
# Names that mention a secret but hold something else: where it lives, how long it lasts.
NOT_SECRET_SUFFIX = re.compile(
    r"_(FILE|PATH|URL|URI|ENDPOINT|HOST|PORT|TTL|EXPIRY|EXPIRES|EXPIRATION|LIFETIME|LENGTH|"
    r"ENABLED|HEADER|NAME|ALGORITHM|ISSUER|AUDIENCE)$",
    re.IGNORECASE,
)
PURE_REFERENCE = re.compile(r"^\$(\{[A-Za-z_][A-Za-z0-9_]*((:?[?-])[^}]*)?\}|[A-Za-z_][A-Za-z0-9_]*)$")
REFERENCE_WITH_DEFAULT = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:?-(?P<default>[^}]*)\}$")
# References to values held elsewhere (k8s secretKeyRef / configMapKeyRef as written by the importer).
EXTERNAL_REF_PREFIXES = ("secret:", "configmap:")
URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<user>[^:/?#@\s]*):(?P<password>[^@/?#\s]+)@(?P<rest>\S*)"
)
AUTH_NAMES = "jwt, oauth2, api_key, mtls, basic or session"
# Switches that let a server run with no password at all (value -> whether it is on).
EMPTY_PASSWORD_FLAGS = re.compile(r"^(?:MYSQL|MARIADB)_ALLOW_EMPTY(?:_ROOT)?_PASSWORD$|^ALLOW_EMPTY_PASSWORD$", re.IGNORECASE)
TRUE_VALUES = frozenset({"true", "yes", "1", "on", "y"})


def empty_password_settings(environment: dict[str, str]) -> list[str]:
    """``KEY=value`` settings that turn password checks off (MYSQL_ALLOW_EMPTY_PASSWORD=true,
    POSTGRES_HOST_AUTH_METHOD=trust)."""
    found = []
    for key, value in sorted(environment.items()):
        text = str(value).strip().strip("'\"").lower()
        if (EMPTY_PASSWORD_FLAGS.match(key) and text in TRUE_VALUES) or (
            key.upper() == "POSTGRES_HOST_AUTH_METHOD" and text == "trust"
        ):
            found.append(f"{key}={value}")
    return found


def literal_secret(key: str, value: str) -> bool:
    """True when ``key`` names a secret and ``value`` is written out in the file."""
    if not SECRET_KEY.search(key) or NOT_SECRET_SUFFIX.search(key) or EMPTY_PASSWORD_FLAGS.match(key):
        return False  # an ALLOW_EMPTY_PASSWORD switch holds no secret: SEC006 judges it
    value = value.strip()
    if not value or value.lower().startswith(EXTERNAL_REF_PREFIXES):
        return False
    default = REFERENCE_WITH_DEFAULT.match(value)
    if default is not None:
        # ${DB_PASSWORD:-changeme} still commits "changeme" to the file.
        return bool(default.group("default"))
    return not PURE_REFERENCE.match(value)


def _is_reference(text: str) -> bool:
    return text.startswith("$")


def url_credentials(value: str) -> str | None:
    """The URL with its password masked when ``value`` embeds literal credentials, else None."""
    match = URL_CREDENTIALS.search(value)
    if match is None or _is_reference(match.group("password")):
        return None
    # The query string may carry more secrets (?password=...); the host is enough to act on.
    rest = match.group("rest").split("?", 1)[0]
    return f"{match.group('scheme')}://{match.group('user')}:***@{rest}"


def _host_ports(ctx: Context, name: str) -> list[int]:
    """Ports reachable from outside: published on the host (compose ports, hostPort), a NodePort
    or LoadBalancer, an Ingress; a bind to 127.0.0.1 reaches that host only and does not count."""
    spec = ctx.services[name]
    return sorted({p.host for p in spec.ports if p.host is not None and not p.loopback})


def _internet_facing(ctx: Context, name: str) -> bool:
    return ctx.kind(name) == "gateway" or (ctx.kind(name) == "service" and bool(_host_ports(ctx, name)))


def _ports_text(ports: list[int]) -> str:
    return ("host port " if len(ports) == 1 else "host ports ") + ", ".join(str(p) for p in ports)


@rules.rule(
    "SEC001",
    "critical",
    "Datastore published on a host port",
    "A database, cache or broker published on a host port is reachable from outside the "
    "cluster network; datastores should be reachable only by the services that use them.",
)
def exposed_datastore(ctx: Context) -> Iterator[Hit]:
    """Flag databases, caches and brokers published on host ports."""
    for spec in ctx.of_kind(*sorted(DATASTORE_KINDS)):
        ports = _host_ports(ctx, spec.name)
        if ports:
            yield hit(
                [spec.name],
                f"{spec.name} ({spec.kind}) is published on {_ports_text(ports)}; "
                f"{spec.kind}s should be reachable only on the internal network",
            )


@rules.rule(
    "SEC002",
    "critical",
    "Plaintext secret in environment",
    "An environment variable named like a secret (PASSWORD, SECRET, TOKEN, API_KEY, "
    "PRIVATE_KEY) with a literal value instead of a ${VAR} reference or a secret reference.",
)
def plaintext_secret(ctx: Context) -> Iterator[Hit]:
    """Flag literal values in secret-named environment variables (values are never echoed)."""
    for spec in ctx.internal():
        keys = sorted(k for k, v in spec.environment.items() if isinstance(v, str) and literal_secret(k, v))
        if keys:
            yield hit(
                [spec.name],
                f"{spec.name} sets {', '.join(keys)} to "
                f"{'a literal value' if len(keys) == 1 else 'literal values'} in its environment; "
                "use a secret reference",
            )


@rules.rule(
    "SEC003",
    "warning",
    "Internet-facing service without auth",
    "A gateway or a service published on a host port with no detectable auth pattern: "
    "anyone who can reach the port can call it.",
)
def public_without_auth(ctx: Context) -> Iterator[Hit]:
    """Flag internet-facing services with no auth pattern."""
    for spec in ctx.of_kind(*sorted(APP_KINDS)):
        if not _internet_facing(ctx, spec.name) or auth(spec):
            continue
        ports = _host_ports(ctx, spec.name)
        exposure = (["gateway"] if spec.kind == "gateway" else []) + ([_ports_text(ports)] if ports else [])
        yield hit(
            [spec.name],
            f"{spec.name} is internet-facing ({', '.join(exposure)}) and has no detectable auth pattern ({AUTH_NAMES})",
        )


@rules.rule(
    "SEC004",
    "warning",
    "Service without auth among authenticated peers",
    "An internal service with no auth pattern while other services authenticate: it trusts "
    "every caller on the network, so one compromised service reaches it freely.",
)
def missing_auth(ctx: Context) -> Iterator[Hit]:
    """Flag internal services without auth when some peers have one."""
    apps = ctx.of_kind(*sorted(APP_KINDS))
    with_auth = [s for s in apps if auth(s)]
    if not with_auth:
        return
    schemes = sorted({a for s in with_auth for a in auth(s)})
    for spec in apps:
        # Internet-facing ones are SEC003's, with a stronger reason.
        if auth(spec) or _internet_facing(ctx, spec.name):
            continue
        yield hit(
            [spec.name],
            f"{spec.name} has no detectable auth pattern while {len(with_auth)} of {len(apps)} "
            f"services use one ({', '.join(schemes)})",
        )


@rules.rule(
    "SEC005",
    "critical",
    "Credentials in a connection URL",
    "A connection URL in the environment with a literal user:password (postgres://user:pass@host); "
    "the password leaks with every copy of the file and every log of the variable.",
)
def url_with_credentials(ctx: Context) -> Iterator[Hit]:
    """Flag environment values embedding literal credentials in a URL (password masked)."""
    for spec in ctx.internal():
        found = []
        for key, value in sorted(spec.environment.items()):
            if not isinstance(value, str):
                continue
            masked = url_credentials(value)
            if masked is not None:
                found.append(f"{key} ({masked})")
        if found:
            yield hit(
                [spec.name],
                f"{spec.name} embeds credentials in {names(found)}; reference a secret instead",
            )


@rules.rule(
    "SEC006",
    "critical",
    "Password check switched off",
    "A server told to accept an empty password or no password at all (MYSQL_ALLOW_EMPTY_PASSWORD, "
    "ALLOW_EMPTY_PASSWORD, POSTGRES_HOST_AUTH_METHOD=trust): anyone who reaches it is in.",
)
def empty_password(ctx: Context) -> Iterator[Hit]:
    """Flag settings that let a server run without a password."""
    for spec in ctx.internal():
        settings = empty_password_settings(spec.environment)
        if settings:
            yield hit(
                [spec.name],
                f"{spec.name} sets {names(settings)}: it accepts connections without a password; "
                "set a password from a secret",
            )


@rules.rule(
    "SEC007",
    "info",
    "Reachable from outside",
    "A service or gateway reachable from outside the cluster network: a published compose port, a "
    "Kubernetes NodePort, LoadBalancer, Ingress or hostPort (a bind to 127.0.0.1 does not count). "
    "These are the entry points to protect first.",
)
def reachable_from_outside(ctx: Context) -> Iterator[Hit]:
    """List the entry points: application services and gateways with a non-loopback host port."""
    for spec in ctx.of_kind(*sorted(APP_KINDS)):
        ports = _host_ports(ctx, spec.name)
        if ports:
            yield hit([spec.name], f"{spec.name} is reachable from outside on {_ports_text(ports)}")
