"""What a setting's value may be: one parser per kind of value.

A parser takes the raw value (from YAML, an environment variable or a flag) and returns the
parsed one, or raises Invalid saying what was expected; config.py adds where it came from.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hatchet_local.defaults import MAX_SPARES
from hatchet_local.errors import ConfigError
from hatchet_local.names import NAME_RULE, valid_name

MAX_TIMEOUT = 3600.0
MAX_DURATION = 3650 * 86400


class Invalid(Exception):
    """Raised by a parser; the message says what was expected ("a port 1024-65535").
    A parser of a nested value names the entry (`where`, e.g. ".dev.namespaces[1]") and
    the offending value."""

    def __init__(self, expected: str, where: str = "", value: object = ...) -> None:
        super().__init__(expected)
        self.where = where
        self.value = value


Parser = Callable[[object], Any]


def matching(pattern: str, expected: str) -> Parser:
    regex = re.compile(pattern)

    def parse(value: object) -> str:
        if isinstance(value, str) and regex.fullmatch(value):
            return value
        raise Invalid(expected)

    return parse


def choice(*choices: str) -> Parser:
    expected = "one of " + ", ".join(map(repr, choices))
    return matching("|".join(map(re.escape, choices)), expected)


def optional(parse: Parser) -> Parser:
    return lambda value: None if value is None else parse(value)


_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True}
_BOOL_WORDS |= {"false": False, "no": False, "off": False, "0": False}


def boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOL_WORDS:
        return _BOOL_WORDS[value.lower()]
    raise Invalid("true or false (or yes/no, on/off, 1/0)")


def port(value: object) -> int | None:
    if value is None or (isinstance(value, str) and value.lower() == "auto"):
        return None
    expected = "a port 1024-65535 or 'auto'"
    number = int(value) if isinstance(value, str) and re.fullmatch("[0-9]+", value) else value
    # bool is an int subclass, but `grpc: true` is a mistake, not port 1.
    if isinstance(number, int) and not isinstance(number, bool):
        if 1024 <= number <= 65535:
            return number
        if 0 < number < 1024:
            raise Invalid(f"{expected} (ports below 1024 are privileged)")
    raise Invalid(expected)


def spares(value: object) -> int:
    """How many spares `up` keeps ready (spares.py): 0 to MAX_SPARES."""
    number = int(value) if isinstance(value, str) and re.fullmatch("[0-9]+", value) else value
    if isinstance(number, int) and not isinstance(number, bool) and 0 <= number <= MAX_SPARES:
        return number
    raise Invalid(f"a number of spares from 0 to {MAX_SPARES}")


def timeout(value: object) -> float:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            if 0 < (seconds := float(value)) <= MAX_TIMEOUT:
                return seconds
    raise Invalid(f"a number of seconds > 0 and <= {MAX_TIMEOUT:g}")


def path(value: object) -> Path:
    if isinstance(value, str | Path) and str(value).strip():
        return Path(value)
    raise Invalid("a non-empty file path")


# Docker's reference grammar (distribution/reference), with a lowercase registry host.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]+"
_IMAGE_EXPECTED = "an image reference like 'registry.example.com/name:tag' (no spaces)"
IMAGE_REF = matching(f"(?=.{{1,255}}$){_NAME}(?::{_TAG})?(?:@{_DIGEST})?", _IMAGE_EXPECTED)
REGISTRY = matching(f"(?=.{{1,255}}$){_NAME}", _IMAGE_EXPECTED)


ROLES = ("owner", "admin", "member", "viewer")  # Hatchet's tenant member roles
ENVIRONMENTS = ("development", "production", "local")  # Hatchet's tenant environments
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_TENANT_KEYS = ("namespaces", "members", "environment")


@dataclass(frozen=True)
class TenantSpec:
    """One tenant of `tenants:`: its namespaces, its members (email -> role) and its
    environment. A tenant named `production`, or declared `environment: production`, is a
    production tenant: its tokens and members change only with `--yes`."""

    namespaces: tuple[str, ...] = ()
    members: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    environment: str | None = None

    def production(self, slug: str) -> bool:
        return self.environment == "production" or slug == "production"


def tenants(value: object) -> Mapping[str, TenantSpec]:
    """`{tenant: {namespaces: [ns, ...], members: {email: role}, environment: ...}}`; a
    tenant's entry may be empty (`staging: {}`)."""
    if not isinstance(value, dict):
        raise Invalid("a mapping of tenant names (set tenants in the config file)")
    tenants: dict[str, TenantSpec] = {}
    for name, raw in value.items():
        where = f".{name}"
        if not valid_name(name):
            raise Invalid(f"a tenant name of {NAME_RULE}", where, name)
        entry = {} if raw is None else raw
        if not isinstance(entry, dict):
            raise Invalid("a mapping with 'namespaces: [...]', or {}", where, entry)
        for key in entry:
            if key not in _TENANT_KEYS:
                raise Invalid(f"one of {', '.join(_TENANT_KEYS)}", f"{where}.{key}", key)
        environment = entry.get("environment")
        if environment is not None and environment not in ENVIRONMENTS:
            expected = "one of " + ", ".join(map(repr, ENVIRONMENTS))
            raise Invalid(expected, f"{where}.environment", environment)
        tenants[name] = TenantSpec(
            _namespaces(entry.get("namespaces"), name, where),
            _members(entry.get("members"), f"{where}.members"),
            environment,
        )
    return MappingProxyType(tenants)


def _namespaces(value: object, tenant: str, where: str) -> tuple[str, ...]:
    namespaces = value or []
    if not isinstance(namespaces, list):
        raise Invalid("a list of namespace names", f"{where}.namespaces", namespaces)
    seen: set[str] = set()
    for index, namespace in enumerate(namespaces):
        at = f"{where}.namespaces[{index}]"
        if not valid_name(namespace):
            raise Invalid(f"a namespace name of {NAME_RULE}", at, namespace)
        if namespace in seen:
            raise Invalid(f"a namespace not already listed for tenant {tenant}", at, namespace)
        seen.add(namespace)
    return tuple(namespaces)


def _members(value: object, where: str) -> Mapping[str, str]:
    members = value or {}
    if not isinstance(members, dict):
        raise Invalid("a mapping of email: role", where, members)
    roles: dict[str, str] = {}
    for email, role in members.items():
        if not isinstance(email, str) or not EMAIL.fullmatch(email):
            raise Invalid("an email address", f"{where}.{email}", email)
        if role not in ROLES:
            raise Invalid("a role: " + ", ".join(ROLES), f"{where}.{email}", role)
        roles[email.lower()] = role
    return MappingProxyType(roles)


_URL = re.compile(r"https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?/?")


def url(value: object) -> str:
    """An http(s) URL with a host and nothing after the path (no query, no credentials)."""
    expected = "an https:// (or http://) URL like 'https://hatchet.example.com'"
    if isinstance(value, str) and _URL.fullmatch(value):
        return value.rstrip("/")
    raise Invalid(expected)


_HOST_PORT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5}")


def host_port(value: object) -> str:
    if (
        isinstance(value, str)
        and _HOST_PORT.fullmatch(value)
        and 0 < int(value.rpartition(":")[2]) < 65536
    ):
        return value
    raise Invalid("host:port, like 'hatchet-grpc.example.com:443'")


def email(value: object) -> str:
    if isinstance(value, str) and EMAIL.fullmatch(value):
        return value.lower()
    raise Invalid("an email address")


def go_duration(value: object) -> str:
    """`90d`, `12h`... as a Go duration the Hatchet API takes (`2160h0m0s`)."""
    if isinstance(value, str):
        try:
            seconds = int(duration(value, ""))
        except ConfigError:
            pass
        else:
            return f"{seconds}s"
    raise Invalid("a duration like 30d, 12h or 90m (up to 3650d)")


def duration(text: str, option: str) -> float:
    """`90s`, `30m`, `12h`, `7d` -> seconds, at most ten years (later dates overflow)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit in units and number.isascii() and number.isdigit():
        seconds = int(number) * units[unit]
        if 0 < seconds <= MAX_DURATION:
            return float(seconds)
    raise ConfigError(
        f"{option}: expected a duration like 90s, 30m, 12h or 7d (up to 3650d), got {text!r}"
    )
