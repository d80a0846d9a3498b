"""Commands that look at one stack: `status`, `logs`, and the client settings `env` prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hatchet_local.client_settings import token_settings
from hatchet_local.config import Config
from hatchet_local.context import Context
from hatchet_local.defaults import ADMIN_EMAIL, ENGINE_SERVICE
from hatchet_local.docker import free_space
from hatchet_local.errors import StackNotFound
from hatchet_local.redact import masked
from hatchet_local.stack import Stack, load_stack, require_ports
from hatchet_local.state import StackDir


@dataclass(frozen=True)
class ServiceStatus:
    state: str  # running, exited, ..., or absent (no container)
    health: str  # healthy, starting, unhealthy, or "" without a healthcheck

    @property
    def problem(self) -> str | None:
        """What is wrong with the service in a few words; None when nothing is."""
        if self.state != "running":
            return self.state
        return self.health if self.health == "unhealthy" else None


# Below this, Postgres cannot start a new WAL segment (16 MiB): every write soon fails.
LOW_DISK = 16 * 1024 * 1024
PGDATA = "/var/lib/postgresql/data"
NO_SPACE = "No space left on device"  # strerror(ENOSPC), in each failed write's log line


@dataclass(frozen=True)
class StackStatus:
    stack: str
    directory: str
    hatchet_version: str
    message_queue: str
    # running; failing (every service runs, but one cannot work: Postgres out of disk);
    # partial (some services down); or stopped
    state: str
    problems: list[str]  # "postgres is exited", "postgres is out of disk space (...)"
    services: dict[str, ServiceStatus]
    dashboard_url: str
    grpc_address: str
    admin_email: str
    admin_password: str  # masked unless revealed
    env_file: str
    directories: list[str]  # every project directory using the stack, its maker's first

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def status(config: Config, ctx: Context, *, reveal: bool) -> StackStatus:
    stack = load_stack(config, ctx, create=False)
    states = {s.service: s for s in stack.compose.ps()}
    services = {
        name: ServiceStatus(states[name].state, states[name].health)
        if name in states
        else ServiceStatus("absent", "")
        for name in (*stack.services(), ENGINE_SERVICE)
    }
    # A stack with some services down (Postgres stopped under it, say) is `partial`, and
    # each service down or unhealthy is named: a stack that looks stopped is not the same.
    problems = [f"{name} is {s.problem}" for name, s in services.items() if s.problem]
    running = any(s.state == "running" for s in services.values())
    failing = _disk_problem(stack, ctx) if services["postgres"].state == "running" else None
    if problems:
        state = "partial" if running else "stopped"
    else:
        state = "failing" if failing else "running"
    return StackStatus(
        stack=stack.record.name,
        directory=stack.record.directory,
        hatchet_version=stack.record.hatchet_version,
        message_queue=stack.record.message_queue,
        state=state,
        problems=[*problems, *([failing] if failing else [])] if running else [],
        services=services,
        dashboard_url=stack.spec.server_url,
        grpc_address=stack.spec.grpc_address,
        admin_email=ADMIN_EMAIL,
        admin_password=masked(stack.secrets["HATCHET_ADMIN_PASSWORD"], reveal),
        env_file=str(config.env_file),
        directories=stack.record.directories,
    )


def _disk_problem(stack: Stack, ctx: Context) -> str | None:
    """Postgres out of disk space: every container still runs and reports healthy, but each
    write of the engine fails (SQLSTATE 53100), so tasks stall. Said with what to do.

    Postgres logs every write that fails for want of space, so its log (one Engine API
    request) is read first; only a log that says so has the volume measured, by a `docker
    exec` that costs more than the rest of `status`."""
    name = stack.compose.container_name("postgres")
    state = ctx.docker.container(name)
    if (
        state is None
        or not state.started_at
        or NO_SPACE not in ctx.docker.logs(name, state.started_at)
    ):
        return None
    space = free_space(ctx.runner, name, PGDATA)
    if space is None or space[0] >= LOW_DISK:
        return None  # space was freed since
    free, size = space
    return (
        f"postgres is out of disk space ({free // 1024} KiB free of {size // 1024**2} MiB on "
        f"its volume; the engine's writes fail): free space there, then run `hatchet-local up`"
    )


def settings_for(config: Config, ctx: Context) -> dict[str, str]:
    """The client settings of a stack that has been brought up."""
    stack_dir = StackDir(ctx.state_root, config.stack)
    record = stack_dir.load()
    token = stack_dir.load_token()
    if record is None or token is None:
        raise StackNotFound(f"stack {config.stack} has no token yet; run `hatchet-local up`")
    require_ports(stack_dir, record)
    return token_settings(token, config.namespace, f"localhost:{record.ports['grpc']}")


def logs(config: Config, ctx: Context, service: str | None, *, follow: bool, lines: int) -> int:
    stack = load_stack(config, ctx, create=False)
    # Compose writes straight to the terminal here, so ask first whether an engine answers.
    ctx.docker.version()
    args = ["logs", "--tail", str(lines), *(["--follow"] if follow else [])]
    result = stack.compose.run(*args, *([service] if service else []), check=False, capture=False)
    return result.returncode
