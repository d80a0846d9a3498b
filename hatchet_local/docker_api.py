"""The Docker Engine API for what only looks: readiness polls, `status`, the warm `up`, `ls`,
label lookups. One HTTP request over the engine's socket costs a few milliseconds; a
`docker` process costs tens, and on two cores processes spawned several times a second also
take CPU from the stack that is starting.

The endpoint is resolved as the docker CLI resolves it: DOCKER_HOST (any value, even empty,
selects the default context), else DOCKER_CONTEXT, else `currentContext` in
$DOCKER_CONFIG/config.json (default ~/.docker), else the default socket. An endpoint this
module cannot reach by plain HTTP (ssh://, TLS, a context it cannot read or that does not
exist) is left to the docker CLI (`CliEngine`), which then resolves it itself: `status`
never looks at another engine than the one `up` starts stacks on.

The client is plainhttp.py, a few lines of HTTP/1.1 over the socket (importing httpx, or
http.client with email and ssl, costs more than a whole `status` should; README "Benchmarks").
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from hatchet_local.docker import (
    COMPOSE_SERVICE,
    EXPIRES_LABEL,
    STACK_LABEL,
    Container,
    ContainerState,
    DockerObject,
    Engine,
    EngineFacts,
    Image,
    exit_code_of,
    file_in_archive,
    health_of,
    stack_filters,
    unavailable,
    unix_time,
)
from hatchet_local.docker_cli import CliEngine, docker_config_dir, state_from
from hatchet_local.errors import CommandFailed
from hatchet_local.plainhttp import Connection
from hatchet_local.runner import Runner

DEFAULT_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Endpoint:
    """Where the docker CLI would send its requests."""

    host: str  # unix:///..., tcp://..., ssh://..., "" for a context that cannot be read
    source: str  # DOCKER_HOST, context NAME, or default
    unix_path: str | None = None  # set when plain HTTP reaches it over a unix socket
    tcp: tuple[str, int] | None = None  # set when plain HTTP reaches it over TCP
    why_not: str = ""  # why plain HTTP cannot reach it (then the docker CLI is asked)

    @property
    def reachable(self) -> bool:
        return self.unix_path is not None or self.tcp is not None


def resolve_endpoint(environ: Mapping[str, str] | None = None) -> Endpoint:
    """The endpoint the docker CLI would use in this environment."""
    env = os.environ if environ is None else environ
    config_dir = docker_config_dir(env)
    if "DOCKER_HOST" in env:
        return _default_endpoint(env, "DOCKER_HOST")
    if "DOCKER_CONTEXT" in env:
        name = env["DOCKER_CONTEXT"]
        source = f"context {name} (DOCKER_CONTEXT)"
    else:
        try:
            text = (config_dir / "config.json").read_text(encoding="utf-8")
        except FileNotFoundError:
            text = "{}"
        except OSError as exc:
            return Endpoint("", "config.json", why_not=f"config.json: {exc.strerror}")
        try:
            config = json.loads(text) or {}
        except json.JSONDecodeError:
            return Endpoint("", "config.json", why_not="config.json is not valid JSON")
        name = str(config.get("currentContext") or "") if isinstance(config, dict) else ""
        source = f"context {name}"
    if name in ("", "default"):
        return _default_endpoint(env, "default")
    return _context_endpoint(config_dir, name, source)


def _default_endpoint(env: Mapping[str, str], source: str) -> Endpoint:
    host = env.get("DOCKER_HOST") or DEFAULT_HOST
    tls = bool(env.get("DOCKER_TLS_VERIFY") or env.get("DOCKER_TLS"))
    return _http_endpoint(host, source, tls)


def _context_endpoint(config_dir: Path, name: str, source: str) -> Endpoint:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / digest / "meta.json"
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
        host = str(data["Endpoints"]["docker"]["Host"])
    except (OSError, ValueError, KeyError, TypeError):
        return Endpoint("", source, why_not=f"context {name} cannot be read here")
    tls = (config_dir / "contexts" / "tls" / digest / "docker").is_dir()
    return _http_endpoint(host, source, tls)


def _http_endpoint(host: str, source: str, tls: bool) -> Endpoint:
    scheme, _, rest = host.partition("://")
    if tls:
        return Endpoint(host, source, why_not="TLS endpoint")
    if scheme == "unix" and rest:
        return Endpoint(host, source, unix_path=rest)
    if scheme in ("tcp", "http") and rest:
        address, _, port = rest.split("/", 1)[0].rpartition(":")
        if address and port.isdigit():
            return Endpoint(host, source, tcp=(address.strip("[]"), int(port)))
    return Endpoint(host, source, why_not=f"{scheme or host} endpoint")


# (path with query) -> (HTTP status, body); tests replace it.
Transport = Callable[[str], tuple[int, bytes]]


class ApiEngine:
    """An `Engine` that asks the Engine API over HTTP; one kept-alive connection."""

    def __init__(
        self, endpoint: Endpoint, *, transport: Transport | None = None, timeout: float = 30
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._transport = transport or self._http_get
        self._connection: Connection | None = None
        self._version: dict[str, Any] | None = None

    # --- transport ---------------------------------------------------------------------

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _address(self) -> str | tuple[str, int]:
        if self.endpoint.unix_path is not None:
            return self.endpoint.unix_path
        assert self.endpoint.tcp is not None
        return self.endpoint.tcp

    def _http_get(self, path: str) -> tuple[int, bytes]:
        """One GET; a kept-alive connection the engine closed meanwhile is opened again."""
        for attempt in (1, 2):
            reused = self._connection is not None
            if self._connection is None:
                self._connection = Connection(self._address(), self.timeout)
            try:
                status, body, keep = self._connection.get(path)
            except (BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2 or not reused:
                    raise
                continue
            if not keep:
                self.close()
            return status, body
        raise AssertionError("unreachable")  # pragma: no cover

    def _get(self, path: str, during: str | None, **query: object) -> Any:
        """The JSON of GET `path`; None for 404. `during` names the read for the message
        when the engine stops answering (None: the first contact, said with the hint)."""
        params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in query.items()}
        full = path + (f"?{urlencode(params)}" if params else "")
        try:
            status, body = self._transport(full)
        except (OSError, ValueError, IndexError) as exc:  # refused, cut, or not HTTP at all
            self.close()
            raise unavailable(during, str(exc)) from exc
        if status == 404:
            return None
        if status >= 400:
            message = body.decode("utf-8", "replace")[:300].strip()
            raise CommandFailed(f"the Docker engine refused GET {path} (HTTP {status})",
                                details=message)  # fmt: skip
        return json.loads(body) if body else None

    # --- Engine --------------------------------------------------------------------------

    def where(self) -> str:
        if self.endpoint.source == "DOCKER_HOST":
            return self.endpoint.host
        return f"{self.endpoint.source} ({self.endpoint.host})"

    def _versions(self) -> dict[str, Any]:
        if self._version is None:
            found = self._get("/version", None)
            self._version = found if isinstance(found, dict) else {}
        return self._version

    def version(self) -> str:
        return str(self._versions().get("Version", ""))

    def api_version(self) -> str:
        return str(self._versions().get("ApiVersion", ""))

    def facts(self) -> EngineFacts:
        info = self._get("/info", "reading the engine's facts") or {}
        return EngineFacts(str(info.get("MemTotal", "")), str(info.get("SystemTime", "")))

    def image_present(self, ref: str) -> bool:
        return self.image(ref) is not None

    def image_label(self, ref: str, label: str) -> str | None:
        found = self._get(f"/images/{quote(ref, safe='')}/json", f"looking for image {ref}")
        if not isinstance(found, dict):
            return None
        return str(((found.get("Config") or {}).get("Labels") or {}).get(label, ""))

    def image(self, ref: str) -> Image | None:
        found = self._get(f"/images/{quote(ref, safe='')}/json", f"looking for image {ref}")
        if not isinstance(found, dict):
            return None
        env = (found.get("Config") or {}).get("Env") or []
        return Image(str(found.get("Id", "")), tuple(str(item) for item in env))

    def volume_exists(self, name: str) -> bool:
        found = self._get(f"/volumes/{quote(name, safe='')}", f"looking for volume {name}")
        return found is not None

    def stack_objects(self, state: Path, stack: str | None = None) -> list[DockerObject]:
        filters = {"label": stack_filters(state, stack)}
        during = "listing the stacks' objects"
        containers = self._get("/containers/json", during, all="1", filters=filters) or []
        volumes = (self._get("/volumes", during, filters=filters) or {}).get("Volumes") or []
        networks = self._get("/networks", during, filters=filters) or []
        objects = [_object("container", _name(row), row.get("Labels"), row.get("State", ""))
                   for row in containers]  # fmt: skip
        objects += [_object("volume", row["Name"], row.get("Labels")) for row in volumes]
        objects += [_object("network", row["Name"], row.get("Labels")) for row in networks]
        return objects

    def containers(self, labels: Sequence[str], *, all: bool = True) -> list[Container]:
        query: dict[str, object] = {"filters": {"label": list(labels)}} if labels else {}
        rows = self._get("/containers/json", "listing containers",
                         all="1" if all else "0", **query) or []  # fmt: skip
        return [
            Container(
                name=_name(row),
                service=str((row.get("Labels") or {}).get(COMPOSE_SERVICE, "")),
                state=str(row.get("State", "")),
                health=health_of(str(row.get("Status", ""))),
                exit_code=exit_code_of(str(row.get("Status", ""))),
                published=_public_ports(row.get("Ports")),
                id=str(row.get("Id", "")),
            )
            for row in rows
        ]

    def logs(self, name: str, since: str) -> str:
        query = {"stdout": "1", "stderr": "1", "tail": "300", "since": unix_time(since)}
        path = f"/containers/{quote(name, safe='')}/logs?{urlencode(query)}"
        try:
            status, body = self._transport(path)
        except OSError as exc:
            self.close()
            raise unavailable(f"reading the logs of {name}", str(exc)) from exc
        return _demultiplex(body).decode("utf-8", "replace") if status == 200 else ""

    def file(self, name: str, path: str) -> bytes | None:
        query = urlencode({"path": path})
        try:
            status, body = self._transport(f"/containers/{quote(name, safe='')}/archive?{query}")
        except OSError as exc:
            self.close()
            raise unavailable(f"reading {path} in {name}", str(exc)) from exc
        return file_in_archive(body) if status == 200 else None

    def container(self, name: str) -> ContainerState | None:
        found = self._get(f"/containers/{quote(name, safe='')}/json", f"looking at {name}")
        if not isinstance(found, dict) or not isinstance(found.get("State"), dict):
            return None
        return state_from(found["State"])


def _demultiplex(body: bytes) -> bytes:
    """A container's log stream without the 8-byte frame headers Docker puts before each
    chunk of a container without a TTY (a stream that does not start with one is raw)."""
    if not body or body[0] not in (0, 1, 2) or body[1:4] != b"\0\0\0":
        return body
    out, at = bytearray(), 0
    while at + 8 <= len(body):
        size = int.from_bytes(body[at + 4 : at + 8], "big")
        out += body[at + 8 : at + 8 + size]
        at += 8 + size
    return bytes(out)


def _public_ports(ports: object) -> tuple[int, ...]:
    found = [p.get("PublicPort") for p in ports if isinstance(p, dict)] if isinstance(
        ports, list) else []  # fmt: skip
    return tuple(dict.fromkeys(int(port) for port in found if port))


def _name(row: Mapping[str, Any]) -> str:
    names = row.get("Names") or [""]
    return str(names[0]).lstrip("/")


def _object(kind: str, name: str, labels: object, state: str = "") -> DockerObject:
    found = labels if isinstance(labels, dict) else {}
    return DockerObject(kind=kind, name=str(name), stack=str(found.get(STACK_LABEL, "")),
                        state=str(state), expires=found.get(EXPIRES_LABEL) or None)  # fmt: skip


def engine_for(runner: Runner, environ: Mapping[str, str] | None = None) -> Engine:
    """The Engine API when plain HTTP reaches the endpoint, else the docker CLI."""
    endpoint = resolve_endpoint(environ)
    return ApiEngine(endpoint) if endpoint.reachable else CliEngine(runner)
