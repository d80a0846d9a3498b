"""Resolved configuration: built-in defaults < hatchet-local.yaml < HATCHET_LOCAL_* < flags.

Every setting has a dotted key (`stack`, `ports.dashboard`, `images.hatchet-lite`) and one
parser in `_KEYS`. The file, the environment and flags all go through the same parsers, so a
value is checked the same way wherever it comes from, and every error names its source.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import itertools
import os
import re
import reprlib
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from hatchet_local import defaults
from hatchet_local.errors import ConfigError

CONFIG_FILE_NAME = "hatchet-local.yaml"
ENV_FILE_NAME = ".env.hatchet"
ENV_PREFIX = "HATCHET_LOCAL_"
ENV_CONFIG = "HATCHET_LOCAL_CONFIG"
ENV_STATE_DIR = "HATCHET_LOCAL_STATE_DIR"
MESSAGE_QUEUES = ("rabbitmq", "postgres")
# A profile changes defaults only: a value set anywhere else still wins.
PROFILES: dict[str, dict[str, object]] = {
    "default": {},
    "ci": {"message_queue": "postgres", "dashboard": False},  # fewest images, fastest start
}
PULL_POLICIES = ("missing", "always", "never")
MAX_TIMEOUT = 3600.0

# Images composed from `registry` and `hatchet_version` unless overridden.
_HATCHET_IMAGES = frozenset({"hatchet-lite"})


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
    tenants: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    advertise: str | None = None
    expose: bool = False

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


class _Invalid(Exception):
    """Raised by a parser; the message says what was expected ("a port 1024-65535").
    A parser of a nested value names the entry (`where`, e.g. ".dev.namespaces[1]") and
    the offending value."""

    def __init__(self, expected: str, where: str = "", value: object = ...) -> None:
        super().__init__(expected)
        self.where = where
        self.value = value


Parser = Callable[[object], Any]


def _matching(pattern: str, expected: str) -> Parser:
    regex = re.compile(pattern)

    def parse(value: object) -> str:
        if isinstance(value, str) and regex.fullmatch(value):
            return value
        raise _Invalid(expected)

    return parse


def _choice(*choices: str) -> Parser:
    expected = "one of " + ", ".join(map(repr, choices))
    return _matching("|".join(map(re.escape, choices)), expected)


def _optional(parse: Parser) -> Parser:
    return lambda value: None if value is None else parse(value)


_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True}
_BOOL_WORDS |= {"false": False, "no": False, "off": False, "0": False}


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOL_WORDS:
        return _BOOL_WORDS[value.lower()]
    raise _Invalid("true or false (or yes/no, on/off, 1/0)")


def _port(value: object) -> int | None:
    if value is None or (isinstance(value, str) and value.lower() == "auto"):
        return None
    expected = "a port 1024-65535 or 'auto'"
    number = int(value) if isinstance(value, str) and re.fullmatch("[0-9]+", value) else value
    # bool is an int subclass, but `grpc: true` is a mistake, not port 1.
    if isinstance(number, int) and not isinstance(number, bool):
        if 1024 <= number <= 65535:
            return number
        if 0 < number < 1024:
            raise _Invalid(f"{expected} (ports below 1024 are privileged)")
    raise _Invalid(expected)


def _timeout(value: object) -> float:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            if 0 < (seconds := float(value)) <= MAX_TIMEOUT:
                return seconds
    raise _Invalid(f"a number of seconds > 0 and <= {MAX_TIMEOUT:g}")


def _path(value: object) -> Path:
    if isinstance(value, str | Path) and str(value).strip():
        return Path(value)
    raise _Invalid("a non-empty file path")


# Docker's reference grammar (distribution/reference), with a lowercase registry host.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]+"
_IMAGE_EXPECTED = "an image reference like 'registry.example.com/name:tag' (no spaces)"
_IMAGE_REF = _matching(f"(?=.{{1,255}}$){_NAME}(?::{_TAG})?(?:@{_DIGEST})?", _IMAGE_EXPECTED)
_REGISTRY = _matching(f"(?=.{{1,255}}$){_NAME}", _IMAGE_EXPECTED)

# Tenant and namespace names: Hatchet's slug rule (letters, digits, `.`, `-`, `_`) narrowed
# to one convention, lowercase words joined by `-`, so a name reads the same everywhere.
NAME_PATTERN = re.compile("[a-z0-9]+(?:-[a-z0-9]+)*")
NAME_RULE = "lowercase letters and digits in words joined by '-', at most 63 characters"


def valid_name(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 63 and bool(NAME_PATTERN.fullmatch(value))


def _tenants(value: object) -> Mapping[str, tuple[str, ...]]:
    """`{tenant: {namespaces: [ns, ...]}}`; a tenant's entry may be empty (`staging: {}`)."""
    if not isinstance(value, dict):
        raise _Invalid("a mapping of tenant names (set tenants in the config file)")
    tenants: dict[str, tuple[str, ...]] = {}
    for name, raw in value.items():
        where = f".{name}"
        if not valid_name(name):
            raise _Invalid(f"a tenant name of {NAME_RULE}", where, name)
        entry = {} if raw is None else raw
        if not isinstance(entry, dict):
            raise _Invalid("a mapping with 'namespaces: [...]', or {}", where, entry)
        for key in entry:
            if key != "namespaces":
                raise _Invalid("only 'namespaces'", f"{where}.{key}", key)
        namespaces = entry.get("namespaces") or []
        if not isinstance(namespaces, list):
            raise _Invalid("a list of namespace names", f"{where}.namespaces", namespaces)
        seen: set[str] = set()
        for index, namespace in enumerate(namespaces):
            at = f"{where}.namespaces[{index}]"
            if not valid_name(namespace):
                raise _Invalid(f"a namespace name of {NAME_RULE}", at, namespace)
            if namespace in seen:
                raise _Invalid(f"a namespace not already listed for tenant {name}", at, namespace)
            seen.add(namespace)
        tenants[name] = tuple(namespaces)
    return MappingProxyType(tenants)


# One row per setting. A dotted key `section.name` is written under `section:` in the file.
_KEYS: dict[str, Parser] = {
    "stack": _matching(
        "[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?",
        "1-40 lowercase letters, digits or '-', not starting or ending with '-'",
    ),
    "hatchet_version": _matching(
        r"v[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?|latest",
        "a release tag like 'v0.101.27' or 'latest'",
    ),
    "profile": _choice(*PROFILES),
    "message_queue": _choice(*MESSAGE_QUEUES),
    "dashboard": _bool,
    "ports.dashboard": _port,
    "ports.grpc": _port,
    "registry": _REGISTRY,
    **{f"images.{name}": _IMAGE_REF for name in defaults.DEFAULT_IMAGES},
    "pull_policy": _choice(*PULL_POLICIES),
    **{f"timeouts.{phase.name}": _timeout for phase in fields(Timeouts)},
    "env_file": _path,
    "namespace": _optional(
        _matching(
            "[a-z0-9][a-z0-9_-]{0,62}",
            "1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit",
        )
    ),
    "tenants": _tenants,
    "advertise": _optional(
        _matching(
            "[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?",
            "a host name or IP address other machines reach this one by (no scheme, no port)",
        )
    ),
    "expose": _bool,
}
# Top-level names in the file: plain keys, then sections (mappings of sub-keys).
_SECTIONS = sorted({key.partition(".")[0] for key in _KEYS if "." in key})
_TOP_LEVEL = [key for key in _KEYS if "." not in key] + _SECTIONS


def env_var(key: str) -> str:
    """`ports.dashboard` -> `HATCHET_LOCAL_PORTS_DASHBOARD`."""
    return ENV_PREFIX + re.sub("[.-]", "_", key).upper()


_ENV_KEYS = {env_var(key): key for key in _KEYS}
_ENV_OTHERS = (ENV_CONFIG, ENV_STATE_DIR)


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
    found = _read_config_file(project_dir, config_path, environ)
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
    values["env_file"] = _resolve_env_file(project, *resolved["env_file"])
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
        "env_file": ENV_FILE_NAME,
        "namespace": None,
        "tenants": {},
        "advertise": None,
        "expose": False,
    }
    for key, value in values.items():
        yield key, value, "built-in default"


def _read_config_file(
    project_dir: Path, config_path: Path | None, environ: Mapping[str, str]
) -> tuple[Path, Mapping[object, object]] | None:
    """The config file and its contents, or None when the optional default file is absent."""
    if config_path is not None:
        path, fix = config_path, "fix the path given to --config"
    elif environ.get(ENV_CONFIG):
        path, fix = Path(environ[ENV_CONFIG]), f"fix the path in {ENV_CONFIG}"
    else:
        path, fix = project_dir / CONFIG_FILE_NAME, ""
    text = _config_text(path, fix)
    if text is None:
        return None
    source = str(path)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).partition("\n")[0]
        raise ConfigError(f"{source}: {where}invalid YAML ({problem}); fix the syntax") from None
    if data is None:  # empty, or only comments
        return path, {}
    if not isinstance(data, dict):
        expected = "a mapping of settings ('key: value' lines)"
        raise ConfigError(f"{source}: expected {expected}, got {_show(data)}")
    return path, data


def _config_text(path: Path, fix: str) -> str | None:
    """The config file's text; None when it is absent and optional (no `fix` to give)."""
    source = str(path)
    if path.is_dir():
        fix = fix or "move it away or pass --config"
        raise ConfigError(f"{source}: is a directory, expected a YAML config file; {fix}")
    if path.is_symlink() and not path.exists():
        raise ConfigError(
            f"{source}: a symlink to {path.readlink()}, which does not exist; "
            f"fix the link or remove it"
        )
    if path.exists() and not path.is_file():  # a FIFO would block the read forever
        raise ConfigError(f"{source}: not a regular file, expected a YAML config file")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{source}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None
    except FileNotFoundError:
        if not fix:
            return None
        raise ConfigError(f"{source}: config file not found; {fix}") from None
    except OSError as exc:  # PermissionError, mostly
        reason = (exc.strerror or type(exc).__name__).lower()
        raise ConfigError(
            f"{source}: cannot read the config file ({reason}); check its permissions"
        ) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (which would silently
    drop the first value)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


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
                f"{source}: {name}: expected a mapping of {expected}, got {_show(value)}"
            )
        for sub_name, sub_value in value.items():
            key = f"{name}.{sub_name}"
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
    except _Invalid as exc:
        got = value if exc.value is ... else exc.value
        raise ConfigError(f"{source}: {key}{exc.where}: expected {exc}, got {_show(got)}") from None


def _check_distinct_ports(resolved: Mapping[str, tuple[Any, str]]) -> None:
    dashboard, dashboard_source = resolved.get("ports.dashboard", (None, ""))
    grpc, grpc_source = resolved.get("ports.grpc", (None, ""))
    if dashboard is not None and dashboard == grpc:
        raise ConfigError(
            f"{grpc_source}: ports.grpc: expected a port other than ports.dashboard's"
            f" (set by {dashboard_source}), got {grpc!r}"
        )


def _resolve_env_file(project: Path, path: Path, source: str) -> Path:
    try:
        resolved = project / path.expanduser()
    except RuntimeError:  # `~someone` with no such user
        expected = "a path whose ~user exists"
        raise ConfigError(f"{source}: env_file: expected {expected}, got {_show(path)}") from None
    if resolved.is_dir():
        expected = "a file path, not a directory"
        raise ConfigError(f"{source}: env_file: expected {expected}, got {_show(path)}")
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
        project_dir=project,
        config_file=config_file,
    )


def _unknown(where: str, name: str, kind: str, known: list[str], prefix: str = "") -> str:
    # Match without the shared prefix, or every HATCHET_LOCAL_* name would look close.
    stems = [key.removeprefix(prefix) for key in known]
    close = difflib.get_close_matches(name.removeprefix(prefix), stems, n=1)
    hint = f"did you mean {prefix}{close[0]}?" if close else f"use one of: {', '.join(known)}"
    return f"{where}: unknown {kind}; {hint}"


# Bounded, so that YAML aliases nested into a "billion laughs" cannot make a message endless.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring = 3, 8, 8, 80


def _show(value: object) -> str:
    """A repr short enough to keep a message on one line."""
    value = str(value) if isinstance(value, Path) else value
    text = _REPR.repr(value) if isinstance(value, list | dict | tuple | set) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
