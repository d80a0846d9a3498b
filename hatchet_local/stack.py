"""A stack as it stands: its files, its compose project, and the commands that only look at
it or stop it (down, status, logs, env, render). `up` lives in start.py.

Each command is a plain function over a Config and a Context; the CLI only parses options
and calls one of them.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from hatchet_local import __version__
from hatchet_local.compose import Compose, find_compose
from hatchet_local.config import Config
from hatchet_local.console import Console
from hatchet_local.defaults import ADMIN_EMAIL
from hatchet_local.engine import DockerObject, engine_version, remove_objects, stack_objects
from hatchet_local.errors import ConfigError, StackBusy, StackNotFound, VersionConflict
from hatchet_local.fsutil import atomic_write, read_text
from hatchet_local.locks import file_lock
from hatchet_local.ports import resolve_ports
from hatchet_local.render import StackSpec, render_stack, stack_labels
from hatchet_local.runner import Redactor, Runner
from hatchet_local.state import StackDir, StackRecord, Token, all_records, digest, now_iso

ENGINE = "hatchet-lite"


@dataclass
class Context:
    """What the commands need from the outside world, injectable for tests."""

    runner: Runner
    console: Console
    http: httpx.Client
    state_root: Path
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    interval: float = 0.25  # between readiness polls; each poll is one `docker inspect`
    lock_wait: float = 900.0
    redact: Redactor = field(default_factory=Redactor)
    # Compose v2's argv prefix, found on first use: finding it runs a few subprocesses.
    _compose_base: list[str] | None = field(default=None, init=False, repr=False)

    def compose_base(self) -> list[str]:
        if self._compose_base is None:
            self._compose_base = find_compose(self.runner)
        return self._compose_base


@dataclass(frozen=True)
class Stack:
    """A stack as it stands on disk, with a Compose bound to it."""

    dir: StackDir
    record: StackRecord
    spec: StackSpec
    compose: Compose
    secrets: dict[str, str]
    # True when the rendered file differs from what the last complete `up` started.
    changed: bool = False

    def services(self) -> list[str]:
        """The long-running services besides the engine, as the stack was last set up."""
        return ["postgres", *(["rabbitmq"] if self.record.message_queue == "rabbitmq" else [])]


def load_stack(config: Config, ctx: Context, *, create: bool, ttl: float | None = None) -> Stack:
    """The stack's record, secrets and rendered compose file; made on first use if `create`."""
    stack_dir = StackDir(ctx.state_root, config.stack)
    record = stack_dir.load()
    if record is None:
        if not create:
            raise StackNotFound(
                f"no stack named {config.stack} here; start one with `hatchet-local up`"
            )
        record = _new_record(config, ttl)
    if create:
        check_version(record, config.hatchet_version)
        with registry_lock(ctx):
            record.ports = resolve_ports(config, record, ctx.state_root)
            record.message_queue = config.message_queue
            record.advertise, record.expose = config.advertise, config.expose
            stack_dir.save(record)
    secrets = stack_dir.secrets()
    ctx.redact.add(*secrets.values())
    _require_ports(stack_dir, record)
    spec = _spec(config, record, record.ports, ctx.state_root)
    changed = False
    if create:
        rendered = render_stack(spec)
        if read_text(stack_dir.compose_file) != rendered:
            atomic_write(stack_dir.compose_file, rendered)
        # Compared with what the last complete `up` started, not with the file on disk: an
        # `up` interrupted after writing the file must not hide its change from the next one.
        changed = stack_dir.applied() != digest(rendered)
    compose = Compose(
        ctx.runner,
        base=ctx.compose_base(),
        project=config.stack,
        file=stack_dir.compose_file,
        env_file=stack_dir.secrets_file,
        redact=ctx.redact,
    )
    return Stack(stack_dir, record, spec, compose, secrets, changed)


def _require_ports(stack_dir: StackDir, record: StackRecord) -> None:
    missing = [key for key in ("dashboard", "grpc") if key not in record.ports]
    if missing:
        raise ConfigError(
            f"{stack_dir.path / 'stack.json'}: no {' or '.join(missing)} port recorded; "
            f"run `hatchet-local up` to pick one"
        )


def _new_record(config: Config, ttl: float | None = None) -> StackRecord:
    return StackRecord(
        name=config.stack,
        directory=str(config.project_dir),
        created=now_iso(),
        tool_version=__version__,
        hatchet_version=config.hatchet_version,
        message_queue=config.message_queue,
        expires=expiry(ttl) if ttl else None,
    )


def stack_lock(ctx: Context, name: str, wait: float | None = None) -> AbstractContextManager[None]:
    """One command at a time on a stack: a second one waits, then says who holds it."""
    path = ctx.state_root / "locks" / f"{name}.lock"
    return file_lock(
        path, f"stack {name}", wait=ctx.lock_wait if wait is None else wait,
        notify=ctx.console.info,
    )  # fmt: skip


def expiry(ttl: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=ttl)).replace(microsecond=0).isoformat()


def registry_lock(ctx: Context) -> AbstractContextManager[None]:
    path = ctx.state_root / "locks" / "ports.lock"
    return file_lock(path, "the port registry", wait=60, notify=ctx.console.info)


def check_version(record: StackRecord, wanted: str) -> None:
    """Moving a stack's data forward is a migration; moving it back is refused."""
    have, want = _version_key(record.hatchet_version), _version_key(wanted)
    if have and want and want < have:
        raise VersionConflict(
            f"stack {record.name} holds data of Hatchet {record.hatchet_version}, which "
            f"{wanted} cannot read: keep hatchet_version: {record.hatchet_version}, or start "
            f"afresh with `hatchet-local reset` (deletes the stack's data)"
        )


def _version_key(version: str) -> tuple[int, ...] | None:
    match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", version)
    return tuple(int(part) for part in match.groups()) if match else None


def _spec(
    config: Config, record: StackRecord, ports: dict[str, int], state_root: Path
) -> StackSpec:
    return StackSpec(
        stack=config.stack,
        images={key: config.image(key) for key in ("postgres", "rabbitmq", ENGINE)},
        message_queue=config.message_queue,
        dashboard=config.dashboard,
        dashboard_port=ports["dashboard"],
        grpc_port=ports["grpc"],
        pull_policy=config.pull_policy,
        # Tokens carry the advertised host; ports bind to loopback unless other machines
        # are to reach the stack.
        host=record.advertise or "localhost",
        bind_address="0.0.0.0" if record.advertise or record.expose else "127.0.0.1",
        labels=stack_labels(
            config.stack, record.directory, record.created, str(state_root), record.expires
        ),
    )


def token_claims(token: str) -> dict[str, object]:
    """The claims of a Hatchet token (a JWT), unverified: what the SDKs read from it.
    Empty when `token` is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def client_settings(
    server_url: str, grpc_address: str, token: Token, namespace: str | None
) -> dict[str, str]:
    """What the Hatchet SDKs need to reach this stack."""
    settings = {
        "HATCHET_CLIENT_TOKEN": token.token,
        "HATCHET_CLIENT_TLS_STRATEGY": "none",
        "HATCHET_CLIENT_HOST_PORT": grpc_address,
        "HATCHET_CLIENT_SERVER_URL": server_url,
        "HATCHET_CLIENT_TENANT_ID": token.tenant_id,
    }
    if namespace:
        settings["HATCHET_CLIENT_NAMESPACE"] = namespace
    return settings


# --- other commands ------------------------------------------------------------------------


def down(config: Config, ctx: Context, *, volumes: bool) -> bool:
    """Stop and remove the stack's containers (and its data with `volumes`).
    Returns False when there was no stack to take down."""
    stack_dir = StackDir(ctx.state_root, config.stack)
    if not stack_dir.exists() or not stack_dir.compose_file.is_file():
        return False
    with stack_lock(ctx, config.stack):
        stack = load_stack(config, ctx, create=False)
        stack.compose.down(volumes=volumes)
        if volumes:
            stack_dir.forget_token()  # it lived in the database just removed
    return True


def status(config: Config, ctx: Context, *, reveal: bool) -> dict[str, object]:
    stack = load_stack(config, ctx, create=False)
    states = {s.service: s for s in stack.compose.ps()}
    services = {
        name: {
            "state": states[name].state if name in states else "absent",
            "health": states[name].health if name in states else "",
        }
        for name in [*stack.services(), ENGINE]
    }
    running = all(v["state"] == "running" for v in services.values())
    return {
        "stack": stack.record.name,
        "directory": stack.record.directory,
        "hatchet_version": stack.record.hatchet_version,
        "message_queue": stack.record.message_queue,
        "state": "running" if running else "stopped",
        "services": services,
        "dashboard_url": stack.spec.server_url,
        "grpc_address": stack.spec.grpc_address,
        "admin_email": ADMIN_EMAIL,
        "admin_password": stack.secrets["HATCHET_ADMIN_PASSWORD"] if reveal else "********",
        "env_file": str(config.env_file),
    }


def settings_for(config: Config, ctx: Context) -> dict[str, str]:
    """The client settings of a stack that has been brought up."""
    stack_dir = StackDir(ctx.state_root, config.stack)
    record = stack_dir.load()
    token = stack_dir.load_token()
    if record is None or token is None:
        raise StackNotFound(f"stack {config.stack} has no token yet; run `hatchet-local up`")
    _require_ports(stack_dir, record)
    # The address baked into the token (an `up --advertise` stack's host), else localhost.
    claims = token_claims(token.token)
    grpc_address = str(claims.get("grpc_broadcast_address") or f"localhost:{record.ports['grpc']}")
    return client_settings(token.server_url, grpc_address, token, config.namespace)


def preview(config: Config, ctx: Context) -> str:
    """The compose file `up` would use, without writing state or starting anything."""
    record = StackDir(ctx.state_root, config.stack).load() or _new_record(config)
    record.advertise, record.expose = config.advertise, config.expose
    ports = resolve_ports(config, record, ctx.state_root)
    return render_stack(_spec(config, record, ports, ctx.state_root))


def logs(config: Config, ctx: Context, service: str | None, *, follow: bool, lines: int) -> int:
    stack = load_stack(config, ctx, create=False)
    # Compose writes straight to the terminal here, so ask first whether an engine answers.
    engine_version(ctx.runner)
    args = ["logs", "--tail", str(lines), *(["--follow"] if follow else [])]
    result = stack.compose.run(*args, *([service] if service else []), check=False, capture=False)
    return result.returncode


def destroy(ctx: Context, name: str, wait: float | None = None) -> list[DockerObject]:
    """Remove everything of stack `name`: containers, volumes, network and its state.
    Returns the Docker objects removed. `wait` bounds the wait for the stack's lock."""
    stack_dir = StackDir(ctx.state_root, name)
    # Asked before the lock too, so that a mistyped name or a stopped engine leaves no lock
    # file behind.
    if not stack_objects(ctx.runner, ctx.state_root, name) and not stack_dir.path.exists():
        raise StackNotFound(f"no stack named {name} on this host; `hatchet-local ls` lists them")
    with stack_lock(ctx, name, wait):
        objects = stack_objects(ctx.runner, ctx.state_root, name)
        remove_objects(ctx.runner, objects)
        shutil.rmtree(stack_dir.path, ignore_errors=True)
    return objects


def reap_expired(ctx: Context, now: datetime | None = None) -> list[str]:
    """Destroy the ephemeral stacks whose time is up (a killed CI job's stack, say), and
    objects labelled ephemeral and expired whose record is gone. A stack some live command
    still holds is left for the next time. Returns the names removed."""
    now = now or datetime.now(UTC)
    expired = {r.name for r in all_records(ctx.state_root) if _past(r.expires, now)}
    expired |= {o.stack for o in stack_objects(ctx.runner, ctx.state_root) if _past(o.expires, now)}
    reaped = []
    for name in sorted(expired):
        try:
            destroy(ctx, name, wait=0)
        except StackBusy:
            continue
        reaped.append(name)
    return reaped


def _past(when: str | None, now: datetime) -> bool:
    if not when:
        return False
    try:
        return datetime.fromisoformat(when) <= now
    except ValueError:
        return False
