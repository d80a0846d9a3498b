"""Resolved configuration: built-in defaults < hatchet-local.yaml < HATCHET_LOCAL_* < flags.

Every setting has a dotted key (`stack`, `ports.dashboard`, `images.hatchet-lite`) and one
parser in `_KEYS`. The file, the environment and flags all go through the same parsers, so a
value is checked the same way wherever it comes from, and every error names its source.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hatchet_local import config_values as values
from hatchet_local import defaults
from hatchet_local.config_file import read_config_file
from hatchet_local.errors import ConfigError, brief

CONFIG_FILE_NAME = "hatchet-local.yaml"
ENV_FILE_NAME = ".env.hatchet"
ENV_PREFIX = "HATCHET_LOCAL_"
ENV_CONFIG = "HATCHET_LOCAL_CONFIG"
ENV_STATE_DIR = "HATCHET_LOCAL_STATE_DIR"
# The admin's password for a server's login: the environment, standard input or a prompt,
# never a flag or the file (server.py reads it).
ENV_SERVER_PASSWORD = "HATCHET_LOCAL_SERVER_PASSWORD"
ENV_BUILD_CACHE = "HATCHET_LOCAL_BUILD_CACHE"  # where `images build` keeps its caches
MESSAGE_QUEUES = ("rabbitmq", "postgres")
# A profile changes defaults only: a value set anywhere else still wins.
PROFILES: dict[str, dict[str, object]] = {
    "default": {},
    "ci": {"message_queue": "postgres", "dashboard": False},  # fewest images, fastest start
}
PULL_POLICIES = ("missing", "always", "never")

# Images composed from `registry` and `hatchet_version` unless overridden.
_HATCHET_IMAGES = frozenset({defaults.ENGINE_SERVICE})


@dataclass(frozen=True)
class Ports:
    """Host ports. None means "auto": a free port is picked on first `up` and kept."""

    dashboard: int | None = None
    grpc: int | None = None


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed for each start-up phase."""

    postgres: float = 120
    rabbitmq: float = 180
    migrate: float = 600
    setup: float = 300
    engine: float = 300
    api: float = 120
    bootstrap: float = 120


@dataclass(frozen=True)
class ServerSettings:
    """A Hatchet server hatchet-local did not start (`server:`); no URL means the project's
    own stack. `grpc` overrides the gRPC address tokens carry; `ca_bundle` is a private CA
    (resolved against the project); `token_lifetime` is a Go duration for minted tokens."""

    url: str | None = None
    grpc: str | None = None
    ca_bundle: Path | None = None
    email: str = "admin@example.com"
    insecure: bool = False
    token_lifetime: str = "7776000s"  # 90 days


@dataclass(frozen=True)
class Config:
    """The resolved configuration of one stack."""

    stack: str
    hatchet_version: str
    profile: str  # "default" | "ci": the defaults it changes are already applied below
    message_queue: str
    dashboard: bool
    ports: Ports
    registry: str
    images: Mapping[str, str]  # only the overrides that were given
    pull_policy: str
    timeouts: Timeouts
    env_file: Path
    namespace: str | None
    project_dir: Path
    config_file: Path | None
    # Teams (teams.py): tenant slug -> its namespaces; the host other machines reach the
    # stack by; whether ports bind beyond loopback.
    tenants: Mapping[str, values.TenantSpec] = field(default_factory=lambda: MappingProxyType({}))
    advertise: str | None = None
    expose: bool = False
    server: ServerSettings = field(default_factory=ServerSettings)
    spares: int = 0  # spares `up` keeps ready for the next new stacks of its kind (spares.py)

    def image(self, key: str) -> str:
        """The image reference for `key`, one of the keys of `defaults.DEFAULT_IMAGES`."""
        if key not in defaults.DEFAULT_IMAGES:
            known = ", ".join(defaults.DEFAULT_IMAGES)
            raise ValueError(f"unknown image key {key!r}; expected one of: {known}")
        if key in self.images:
            return self.images[key]
        if key in _HATCHET_IMAGES:
            return f"{self.registry}/{key}:{self.hatchet_version}"
        return defaults.DEFAULT_IMAGES[key]


# One row per setting. A dotted key `section.name` is written under `section:` in the file.
_KEYS: dict[str, values.Parser] = {
    "stack": values.matching(
        "[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?",
        "1-40 lowercase letters, digits or '-', not starting or ending with '-'",
    ),
    "hatchet_version": values.matching(
        r"v[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?|latest",
        "a release tag like 'v0.101.27' or 'latest'",
    ),
    "profile": values.choice(*PROFILES),
    "message_queue": values.choice(*MESSAGE_QUEUES),
    "dashboard": values.boolean,
    "ports.dashboard": values.port,
    "ports.grpc": values.port,
    "registry": values.REGISTRY,
    **{f"images.{name}": values.IMAGE_REF for name in defaults.DEFAULT_IMAGES},
    "pull_policy": values.choice(*PULL_POLICIES),
    "spares": values.spares,
    **{f"timeouts.{phase.name}": values.timeout for phase in fields(Timeouts)},
    "env_file": values.path,
    "namespace": values.optional(
        values.matching(
            "[a-z0-9][a-z0-9_-]{0,62}",
            "1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit",
        )
    ),
    "tenants": values.tenants,
    "advertise": values.optional(
        values.matching(
            "[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?",
            "a host name or IP address other machines reach this one by (no scheme, no port)",
        )
    ),
    "expose": values.boolean,
    "server.url": values.optional(values.url),
    "server.grpc": values.optional(values.host_port),
    "server.ca_bundle": values.optional(values.path),
    "server.email": values.email,
    "server.insecure": values.boolean,
    "server.token_lifetime": values.go_duration,
}
# Top-level names in the file: plain keys, then sections (mappings of sub-keys).
_SECTIONS = sorted({key.partition(".")[0] for key in _KEYS if "." in key})
_TOP_LEVEL = [key for key in _KEYS if "." not in key] + _SECTIONS


def env_var(key: str) -> str:
    """`ports.dashboard` -> `HATCHET_LOCAL_PORTS_DASHBOARD`."""
    return ENV_PREFIX + re.sub("[.-]", "_", key).upper()


_ENV_KEYS = {env_var(key): key for key in _KEYS}
_ENV_OTHERS = (ENV_SERVER_PASSWORD, ENV_CONFIG, ENV_STATE_DIR, ENV_BUILD_CACHE)


def default_stack(project_dir: Path) -> str:
    """`<folder slug>-<6 hex of the path's sha1>`: two checkouts never share a stack."""
    path = project_dir.resolve()
    slug = re.sub("[^a-z0-9]+", "-", path.name.lower()).strip("-")[:33].strip("-")
    digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:6]
    return f"{slug or 'stack'}-{digest}"


# Where a setting's raw value came from: (dotted key, raw value, source for messages).
_Setting = tuple[str, object, str]


def load_config(
    project_dir: Path,
    *,
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, object] | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> Config:
    """Resolve the stack's configuration: defaults < config file < environment < flags.

    `flags` maps dotted keys to values (None = not given); `flag_names` maps dotted keys to
    option names for messages. Raises ConfigError naming the source and the key.
    """
    environ = os.environ if environ is None else environ
    project = project_dir.resolve()
    found = _config_file(project_dir, config_path, environ)
    resolved: dict[str, tuple[Any, str]] = {}
    # Later settings win, so the chain's order is the precedence.
    for key, value, source in itertools.chain(
        _default_settings(project),
        _file_settings(*found) if found else (),
        _env_settings(environ),
        _flag_settings(flags or {}, flag_names or {}),
    ):
        resolved[key] = (_parse(key, value, source), source)
    profile = resolved["profile"][0]
    for key, value in PROFILES[profile].items():
        if resolved[key][1] == "built-in default":
            resolved[key] = (value, f"profile {profile}")
    _check_distinct_ports(resolved)
    values = {key: value for key, (value, _) in resolved.items()}
    env_file, source = resolved["env_file"]
    from_file = found is not None and source == str(found[0])
    values["env_file"] = _resolve_env_file(project, env_file, source, from_file=from_file)
    if "server.ca_bundle" in resolved:
        values["server.ca_bundle"] = _resolve_ca_bundle(project, *resolved["server.ca_bundle"])
    return _build(values, project, found[0].resolve() if found else None)


def _default_settings(project: Path) -> Iterator[_Setting]:
    values: dict[str, object] = {  # ports and timeouts take their dataclass defaults
        "stack": default_stack(project),
        "hatchet_version": defaults.HATCHET_VERSION,
        "profile": "default",
        "message_queue": "rabbitmq",
        "dashboard": True,
        "registry": defaults.HATCHET_REGISTRY,
        "pull_policy": "missing",
        "spares": 0,
        "env_file": ENV_FILE_NAME,
        "namespace": None,
        "tenants": {},
        "advertise": None,
        "expose": False,
        "server.url": None,
        "server.email": ServerSettings.email,
        "server.insecure": False,
        "server.token_lifetime": "90d",
    }
    for key, value in values.items():
        yield key, value, "built-in default"


def _config_file(
    project_dir: Path, config_path: Path | None, environ: Mapping[str, str]
) -> tuple[Path, Mapping[object, object]] | None:
    """The config file and its settings: --config, else HATCHET_LOCAL_CONFIG, else the
    optional hatchet-local.yaml of the project (None when that is absent)."""
    if config_path is not None:
        path, fix = config_path, "fix the path given to --config"
    elif environ.get(ENV_CONFIG):
        path, fix = Path(environ[ENV_CONFIG]), f"fix the path in {ENV_CONFIG}"
    else:
        path, fix = project_dir / CONFIG_FILE_NAME, ""
    data = read_config_file(path, fix)
    return None if data is None else (path, data)


def _file_settings(path: Path, data: Mapping[object, object]) -> Iterator[_Setting]:
    """The file's settings, each section flattened to dotted keys."""
    source = str(path)
    for raw_name, value in data.items():
        name = str(raw_name)
        if name in _KEYS and name not in _TOP_LEVEL:  # a dotted key written flat
            section, _, sub = name.partition(".")
            raise ConfigError(
                f"{source}: {name}: unknown key; write it as '{section}: {{{sub}: ...}}'"
            )
        if name not in _TOP_LEVEL:
            raise ConfigError(_unknown(f"{source}: {name}", name, "key", _TOP_LEVEL))
        if name not in _SECTIONS:
            yield name, value, source
            continue
        if value is None:  # a section whose entries are all commented out
            continue
        sub_keys = [key for key in _KEYS if key.startswith(f"{name}.")]
        if not isinstance(value, dict):
            expected = ", ".join(key.partition(".")[2] for key in sub_keys)
            raise ConfigError(
                f"{source}: {name}: expected a mapping of {expected}, got {brief(value)}"
            )
        for sub_name, sub_value in value.items():
            key = f"{name}.{sub_name}"
            if key == "server.password":
                raise ConfigError(
                    f"{source}: server.password: a password never goes in the file; set "
                    f"{ENV_SERVER_PASSWORD}, pipe it to --password-stdin, or type it at the prompt"
                )
            if key not in _KEYS:
                raise ConfigError(_unknown(f"{source}: {key}", key, "key", sub_keys, f"{name}."))
            yield key, sub_value, source


def _env_settings(environ: Mapping[str, str]) -> Iterator[_Setting]:
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or value == "" or name in _ENV_OTHERS:
            continue
        source = f"environment variable {name}"
        if name not in _ENV_KEYS:
            known = [*_ENV_KEYS, *_ENV_OTHERS]
            raise ConfigError(_unknown(source, name, "variable", known, ENV_PREFIX))
        yield _ENV_KEYS[name], value, source


def _flag_settings(flags: Mapping[str, object], names: Mapping[str, str]) -> Iterator[_Setting]:
    for key, value in flags.items():
        if key not in _KEYS:
            raise ValueError(f"no config key {key!r}")  # a bug in the caller, not user input
        if value is not None:
            yield key, value, names.get(key, f"flag {key}")


def _parse(key: str, value: object, source: str) -> Any:
    try:
        return _KEYS[key](value)
    except values.Invalid as exc:
        got = value if exc.value is ... else exc.value
        raise ConfigError(f"{source}: {key}{exc.where}: expected {exc}, got {brief(got)}") from None


def _check_distinct_ports(resolved: Mapping[str, tuple[Any, str]]) -> None:
    dashboard, dashboard_source = resolved.get("ports.dashboard", (None, ""))
    grpc, grpc_source = resolved.get("ports.grpc", (None, ""))
    if dashboard is not None and dashboard == grpc:
        raise ConfigError(
            f"{grpc_source}: ports.grpc: expected a port other than ports.dashboard's"
            f" (set by {dashboard_source}), got {grpc!r}"
        )


def _resolve_env_file(project: Path, path: Path, source: str, *, from_file: bool) -> Path:
    """The env file's absolute path. One named by a config file must lie inside the project:
    a hatchet-local.yaml may have come with a cloned repository, and must not make `up`
    write (or chmod) a file elsewhere; the command line and the environment may name any."""
    try:
        resolved = project / path.expanduser()
    except RuntimeError:  # `~someone` with no such user
        expected = "a path whose ~user exists"
        raise ConfigError(f"{source}: env_file: expected {expected}, got {brief(path)}") from None
    if resolved.is_dir():
        expected = "a file path, not a directory"
        raise ConfigError(f"{source}: env_file: expected {expected}, got {brief(path)}")
    # The folder with its links followed: `env_file: notes/x.env` with notes -> ~ escapes too.
    where = Path(os.path.normpath(resolved))
    if from_file and not where.parent.resolve().is_relative_to(project):
        raise ConfigError(
            f"{source}: env_file: {path} is outside the project ({project}); a config file "
            f"may only name a file inside it, so pass --env-file {path} (or set "
            f"{env_var('env_file')}) to write there"
        )
    return resolved


def _resolve_ca_bundle(project: Path, path: Path | None, source: str) -> Path | None:
    if path is None:
        return None
    expected = "a PEM file of the server's CA certificate(s) that exists"
    try:
        resolved = project / path.expanduser()
    except RuntimeError:  # `~someone` with no such user
        resolved = None
    if resolved is None or not resolved.is_file():
        raise ConfigError(f"{source}: server.ca_bundle: expected {expected}, got {brief(path)}")
    return resolved


def _build(values: Mapping[str, Any], project: Path, config_file: Path | None) -> Config:
    def section(name: str) -> dict[str, Any]:
        prefix = f"{name}."
        return {key[len(prefix) :]: v for key, v in values.items() if key.startswith(prefix)}

    return Config(
        **{key: value for key, value in values.items() if "." not in key},
        ports=Ports(**section("ports")),
        images=MappingProxyType(section("images")),
        timeouts=Timeouts(**section("timeouts")),
        server=ServerSettings(**section("server")),
        project_dir=project,
        config_file=config_file,
    )


def _unknown(where: str, name: str, kind: str, known: list[str], prefix: str = "") -> str:
    # Match without the shared prefix, or every HATCHET_LOCAL_* name would look close.
    stems = [key.removeprefix(prefix) for key in known]
    close = difflib.get_close_matches(name.removeprefix(prefix), stems, n=1)
    hint = f"did you mean {prefix}{close[0]}?" if close else f"use one of: {', '.join(known)}"
    return f"{where}: unknown {kind}; {hint}"
