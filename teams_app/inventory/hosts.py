"""Finding host names inside environment values.

Services find each other through configuration: ``AMQP_URL=amqp://rabbitmq:5672``,
``ORDERS_URL=http://orders:8000``, ``DB_HOST=postgres``, ``KAFKA_BROKERS=kafka:9092,kafka2:9092``.
The importers turn the host names found here into edges, but only to services the file declares;
nothing is ever invented from a URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?"
_HOSTNAME = rf"{_LABEL}(?:\.{_LABEL})*"
_HOSTNAME_RE = re.compile(rf"^{_HOSTNAME}\.?$")
# "jdbc:" is how Java spells a database URL: jdbc:postgresql://db:5432/app
_URL_RE = re.compile(r"(?:jdbc:)?([A-Za-z][A-Za-z0-9+.-]*)://([^/\s?#'\"`;)}]*)")
# A bare host:port, not part of a URL, a user:password@ pair or a longer dotted token.
_HOST_PORT_RE = re.compile(rf"(?<![\w.@:/-])({_HOSTNAME}):(\d{{1,5}})(?![\w@:.])")
_IPV4_RE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")

# Variables whose whole value is a host name (DB_HOST=postgres). Other variables need a URL or a
# host:port, so that POSTGRES_DB=orders or MODE=cart never count as a reference.
HOST_VAR_SUFFIXES = frozenset(
    {"HOST", "HOSTS", "HOSTNAME", "SERVER", "SERVERS", "ADDR", "ADDRESS", "ENDPOINT", "URL", "URI", "BROKER", "BROKERS", "UPSTREAM", "SERVICE"}
)
_PRIVATE_SUFFIXES = (".local", ".internal", ".localhost", ".lan", ".test", ".example", ".invalid", ".svc", ".cluster.local")


@dataclass(frozen=True)
class HostRef:
    host: str  # lower-cased, without a trailing dot
    port: int | None = None
    scheme: str = ""  # lower-cased URL scheme without "+driver"; "" for host:port and bare names


def _var_suffix(var: str) -> str:
    tokens = [t for t in re.split(r"[^A-Za-z0-9]+", var.upper()) if t]
    return tokens[-1] if tokens else ""


def _split_host_port(text: str) -> tuple[str, int | None] | None:
    text = text.strip()
    if not text or text.startswith("["):  # IPv6 literal: never a service name
        return None
    host, _, port_text = text.partition(":")
    port = int(port_text) if port_text.isdigit() else None
    if not _HOSTNAME_RE.match(host):
        return None
    return host.rstrip(".").lower(), port


def host_refs(value: str, var: str = "") -> list[HostRef]:
    """Every host name mentioned in one environment value, in order, without repeats."""
    refs: list[HostRef] = []
    if not value or len(value) > 4096:  # certificates and blobs are not addresses
        return refs

    def add(ref: HostRef) -> None:
        if ref not in refs and not _IPV4_RE.match(ref.host):
            refs.append(ref)

    rest = value
    for match in _URL_RE.finditer(value):
        scheme = match.group(1).lower().split("+", 1)[0]
        # user:password@host1:port,host2:port (MongoDB and Kafka list several hosts)
        authority = match.group(2).rsplit("@", 1)[-1]
        for part in authority.split(","):
            parsed = _split_host_port(part)
            if parsed:
                add(HostRef(parsed[0], parsed[1], scheme))
        rest = rest.replace(match.group(0), " ")

    for match in _HOST_PORT_RE.finditer(rest):
        add(HostRef(match.group(1).rstrip(".").lower(), int(match.group(2))))

    if not refs and _var_suffix(var) in HOST_VAR_SUFFIXES:
        for part in re.split(r"[,\s]+", value.strip()):
            parsed = _split_host_port(part)
            if parsed:
                add(HostRef(parsed[0], parsed[1]))
    return refs


def is_public_host(host: str) -> bool:
    """A dotted name on the internet (api.stripe.com), not a cluster or LAN name."""
    if "." not in host or _IPV4_RE.match(host) or host == "localhost":
        return False
    if host.endswith(_PRIVATE_SUFFIXES):
        return False
    tld = host.rsplit(".", 1)[-1]
    return tld.isalpha() and len(tld) >= 2
