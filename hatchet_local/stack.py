"""The stack's life: up (render, start, wait, bootstrap, write settings), down, status, logs.

Each command is a plain function over a Config and a Context; the CLI only parses options
and calls one of them.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hatchet_local import __version__
from hatchet_local.bootstrap import mint_token, token_status
from hatchet_local.compose import Compose, find_compose
from hatchet_local.config import Config
from hatchet_local.console import Console
from hatchet_local.defaults import ADMIN_EMAIL, DEFAULT_TENANT_ID
from hatchet_local.engine import engine_version, image_present
from hatchet_local.envfile import write_env_file
from hatchet_local.errors import (
    BootstrapFailed,
    HatchetLocalError,
    ImageMissing,
    PortInUse,
    ServiceUnhealthy,
    SetupFailed,
    StackNotFound,
)
from hatchet_local.fsutil import atomic_write, read_text
from hatchet_local.health import Check, http_check, service_check, tcp_check, wait_for
from hatchet_local.render import StackSpec, render_stack, stack_labels
from hatchet_local.runner import Redactor, Runner, tail
from hatchet_local.state import StackDir, StackRecord, Token, all_records, digest, now_iso

ENGINE = "hatchet-lite"
ONESHOTS = ("migrate", "setup")


@dataclass
class Context:
    """What the commands need from the outside world, injectable for tests."""

    runner: Runner
    console: Console
    http: httpx.Client
    state_root: Path
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    interval: float = 1.0
    redact: Redactor = field(default_factory=Redactor)


@dataclass(frozen=True)
class Stack:
    """A stack as it stands on disk, with a Compose bound to it."""

    dir: StackDir
    record: StackRecord
    spec: StackSpec
    compose: Compose
    secrets: dict[str, str]
    # True when this call rewrote the compose file: the running containers are then stale.
    changed: bool = False

    def services(self) -> list[str]:
        return ["postgres", *(["rabbitmq"] if self.spec.message_queue == "rabbitmq" else [])]


@dataclass(frozen=True)
class UpResult:
    stack: str
    server_url: str
    grpc_address: str
    env_file: Path
    tenant_id: str
    token_reused: bool
    settings: dict[str, str]


# --- preparing a stack ---------------------------------------------------------------------


def pick_free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def load_stack(config: Config, ctx: Context, *, create: bool) -> Stack:
    """The stack's record, secrets and rendered compose file; made on first use if `create`."""
    stack_dir = StackDir(ctx.state_root, config.stack)
    record = stack_dir.load()
    if record is None:
        if not create:
            raise StackNotFound(
                f"no stack named {config.stack} here; start one with `hatchet-local up`"
            )
        record = StackRecord(
            name=config.stack,
            directory=str(config.project_dir),
            created=now_iso(),
            tool_version=__version__,
            hatchet_version=config.hatchet_version,
            message_queue=config.message_queue,
        )
    if create:
        record.ports = resolve_ports(config, record, ctx.state_root)
        record.message_queue = config.message_queue
        record.hatchet_version = config.hatchet_version
        stack_dir.save(record)
    secrets = stack_dir.secrets()
    ctx.redact.add(*secrets.values())
    spec = _spec(config, record, record.ports)
    changed = False
    if create:
        rendered = render_stack(spec)
        if read_text(stack_dir.compose_file) != rendered:
            atomic_write(stack_dir.compose_file, rendered)
        # Compared with what the last complete `up` started, not with the file on disk: an
        # `up` interrupted after writing the file must not hide its change from the next one.
        changed = stack_dir.applied() != digest(rendered)
    base = find_compose(ctx.runner)
    compose = Compose(
        ctx.runner,
        base=base,
        project=config.stack,
        file=stack_dir.compose_file,
        env_file=stack_dir.secrets_file,
        redact=ctx.redact,
    )
    return Stack(stack_dir, record, spec, compose, secrets, changed)


def _spec(config: Config, record: StackRecord, ports: dict[str, int]) -> StackSpec:
    return StackSpec(
        stack=config.stack,
        images={key: config.image(key) for key in ("postgres", "rabbitmq", ENGINE)},
        message_queue=config.message_queue,
        dashboard=config.dashboard,
        dashboard_port=ports["dashboard"],
        grpc_port=ports["grpc"],
        pull_policy=config.pull_policy,
        labels=stack_labels(config.stack, record.directory, record.created),
    )


def resolve_ports(config: Config, record: StackRecord, root: Path) -> dict[str, int]:
    """Configured ports win; otherwise the stack keeps the ports it had (tokens embed the
    server URL); a new stack gets free ones no other stack has recorded."""
    taken = {
        port for other in all_records(root) if other.name != record.name
        for port in other.ports.values()
    }  # fmt: skip
    ports: dict[str, int] = {}
    for key in ("dashboard", "grpc"):
        wanted = getattr(config.ports, key)
        port = wanted or record.ports.get(key) or pick_free_port(taken | set(ports.values()))
        ports[key] = port
    return ports


# --- up ------------------------------------------------------------------------------------


def up(config: Config, ctx: Context) -> UpResult:
    console = ctx.console
    with console.phase("docker engine"):
        console.info(f"engine {engine_version(ctx.runner)}")
        stack = load_stack(config, ctx, create=True)
    compose = stack.compose
    if not stack.changed and _running_and_healthy(stack):
        console.info(f"stack {config.stack} is running; checking it")
    else:
        _check_ports(stack)
        with console.phase("images"):
            _ensure_images(stack, ctx)
        compose.up(*stack.services())
        for service in stack.services():
            timeout = getattr(config.timeouts, service)
            with console.phase(f"{service} healthy"), _logs_on_failure(compose, service):
                _wait(ctx, f"{service}", service_check(compose, service), timeout)
        for job in ONESHOTS:
            with console.phase(f"{job} job"):
                _run_oneshot(compose, job, getattr(config.timeouts, job))
        compose.up(ENGINE, no_deps=True)
        with console.phase("engine ready"), _logs_on_failure(compose, ENGINE):
            _wait(ctx, "engine", service_check(compose, ENGINE), config.timeouts.engine)
        stack.dir.mark_applied(digest(read_text(stack.dir.compose_file) or ""))
    spec = stack.spec
    with console.phase("API ready"), _logs_on_failure(compose, ENGINE):
        _wait(ctx, "API", http_check(ctx.http, f"{spec.server_url}/api/ready"), config.timeouts.api)
        _wait(ctx, "gRPC port", tcp_check("127.0.0.1", spec.grpc_port), config.timeouts.api)
    with console.phase("token"):
        token, reused = _usable_token(stack, ctx, config.timeouts.bootstrap)
    settings = client_settings(spec.server_url, spec.grpc_address, token, config.namespace)
    write_env_file(config.env_file, settings)
    _warn_if_not_ignored(config.env_file, ctx)
    return UpResult(
        stack=config.stack,
        server_url=spec.server_url,
        grpc_address=spec.grpc_address,
        env_file=config.env_file,
        tenant_id=token.tenant_id,
        token_reused=reused,
        settings=settings,
    )


def _running_and_healthy(stack: Stack) -> bool:
    states = {s.service: s for s in stack.compose.ps()}
    wanted = [*stack.services(), ENGINE]
    return all(
        s in states and states[s].state == "running" and states[s].health in ("healthy", "")
        for s in wanted
    )


def _check_ports(stack: Stack) -> None:
    """Fail before anything starts when another program holds one of the stack's ports.
    Ports that this stack's running engine publishes are its own: compose re-creates it."""
    own = {port for s in stack.compose.ps() if s.state == "running" for port in s.published}
    for name, port in (("dashboard", stack.spec.dashboard_port), ("gRPC", stack.spec.grpc_port)):
        if port not in own and not port_is_free(port):
            raise PortInUse(
                f"the {name} port {port} of stack {stack.record.name} is in use by another "
                f"program; free it, or choose another with --{name.lower()}-port"
            )


def _ensure_images(stack: Stack, ctx: Context) -> None:
    policy = stack.spec.pull_policy
    needed = [stack.spec.images[s] for s in stack.services()] + [stack.spec.images[ENGINE]]
    missing = [ref for ref in needed if not image_present(ctx.runner, ref)]
    if policy == "never" and missing:
        raise ImageMissing(
            f"image {missing[0]} is not on this machine and pull_policy is never; "
            f"load it (`docker load`) or set pull_policy: missing"
        )
    if policy == "always" or missing:
        ctx.console.info(f"pulling {', '.join(missing) or 'all images'}")
        stack.compose.run("pull", "--quiet", timeout=1800)
    else:
        ctx.console.info(f"{len(needed)} images present")


def _run_oneshot(compose: Compose, job: str, timeout: float) -> None:
    result = compose.oneshot(job, timeout)
    if not result.ok:
        raise SetupFailed(
            f"the {job} job exited with code {result.returncode}",
            details=compose.redact(tail(result.stdout + result.stderr, 30)),
        )


def _wait(ctx: Context, what: str, check: Callable[[], Check], timeout: float) -> float:
    return wait_for(what, check, timeout, interval=ctx.interval, clock=ctx.clock, sleep=ctx.sleep)


@contextmanager
def _logs_on_failure(compose: Compose, service: str) -> Iterator[None]:
    """A service that fails to come up is reported with its last log lines."""
    try:
        yield
    except ServiceUnhealthy as exc:
        if not exc.details:
            exc.details = f"last log lines of {service}:\n" + tail(compose.logs(service), 30)
        raise


def _usable_token(stack: Stack, ctx: Context, timeout: float) -> tuple[Token, bool]:
    """The stored token while the server accepts it, else a new one (proven before use)."""
    server_url = stack.spec.server_url
    stored = stack.dir.load_token()
    if stored is not None and stored.server_url == server_url:
        ctx.redact.add(stored.token)
        if token_status(ctx.http, server_url, stored.token, stored.tenant_id) == "valid":
            ctx.console.info("stored token still accepted")
            return stored, True
    minted = mint_token(stack.compose, DEFAULT_TENANT_ID, timeout=timeout)
    ctx.redact.add(minted)
    if token_status(ctx.http, server_url, minted, DEFAULT_TENANT_ID) != "valid":
        raise BootstrapFailed("the API rejects the token just minted; try `hatchet-local up` again")
    token = Token(token=minted, tenant_id=DEFAULT_TENANT_ID, server_url=server_url)
    stack.dir.save_token(token)
    ctx.console.info("minted a new token")
    return token, False


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


def _warn_if_not_ignored(path: Path, ctx: Context) -> None:
    try:
        result = ctx.runner.run(
            ["git", "-C", str(path.parent), "check-ignore", "-q", path.name], timeout=10
        )
    except HatchetLocalError:
        return  # no git: nothing to warn about
    if result.returncode == 1:
        ctx.console.warn(f"{path} holds a token and git does not ignore it; add it to .gitignore")


# --- other commands ------------------------------------------------------------------------


def down(config: Config, ctx: Context, *, volumes: bool) -> bool:
    """Stop and remove the stack's containers (and its data with `volumes`).
    Returns False when there was no stack to take down."""
    stack_dir = StackDir(ctx.state_root, config.stack)
    if not stack_dir.exists() or not stack_dir.compose_file.is_file():
        return False
    stack = load_stack(config, ctx, create=False)
    stack.compose.down(volumes=volumes)
    if volumes:
        # The token lived in the database just removed.
        (stack_dir.path / "token.json").unlink(missing_ok=True)
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
    grpc_address = f"localhost:{record.ports['grpc']}"
    return client_settings(token.server_url, grpc_address, token, config.namespace)


def preview(config: Config, ctx: Context) -> str:
    """The compose file `up` would use, without writing state or starting anything."""
    record = StackDir(ctx.state_root, config.stack).load() or StackRecord(
        name=config.stack,
        directory=str(config.project_dir),
        created=now_iso(),
        tool_version=__version__,
        hatchet_version=config.hatchet_version,
        message_queue=config.message_queue,
    )
    ports = resolve_ports(config, record, ctx.state_root)
    return render_stack(_spec(config, record, ports))


def logs(config: Config, ctx: Context, service: str | None, *, follow: bool, lines: int) -> int:
    stack = load_stack(config, ctx, create=False)
    args = ["logs", "--tail", str(lines), *(["--follow"] if follow else [])]
    result = stack.compose.run(*args, *([service] if service else []), check=False, capture=False)
    return result.returncode
