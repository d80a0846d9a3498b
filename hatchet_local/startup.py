"""Bringing a stack up: `up` starts it phase by phase and waits until it is usable, handing
out a working token; `reset` wipes its data and brings it up afresh."""

from __future__ import annotations

import dataclasses
import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hatchet_local import docker
from hatchet_local.bootstrap import mint_token, token_status
from hatchet_local.ci import group, in_github_actions
from hatchet_local.client_settings import TOKEN_KEY, client_settings
from hatchet_local.compose import Compose, ServiceState
from hatchet_local.config import Config
from hatchet_local.context import Context
from hatchet_local.defaults import DEFAULT_TENANT_ID, ENGINE_SERVICE, JOBS
from hatchet_local.doctor import preflight
from hatchet_local.embedded import warn_if_shadowed
from hatchet_local.envfile import write_env_file
from hatchet_local.errors import (
    BootstrapFailed,
    ConfigError,
    HatchetLocalError,
    ImageMissing,
    PortInUse,
    ServiceUnhealthy,
    SetupFailed,
)
from hatchet_local.fsutil import (
    atomic_write,
    ensure_private_dir,
    read_text,
    refuse_link,
    remove_temp_files,
)
from hatchet_local.health import Check, http_check, service_check, wait_for
from hatchet_local.image_build import registry_unreachable
from hatchet_local.inventory import reap_expired
from hatchet_local.ports import PORT_FLAGS, ports_taken
from hatchet_local.redact import masked
from hatchet_local.runner import Runner, tail
from hatchet_local.stack import Stack, load_stack, sharing, stack_lock, wipe
from hatchet_local.state import digest
from hatchet_local.team_state import Token
from hatchet_local.teams import TeamResult, reconcile


@dataclass(frozen=True)
class UpResult:
    stack: str
    server_url: str
    grpc_address: str
    env_file: Path
    tenant_id: str
    token_reused: bool
    settings: dict[str, str]
    team: TeamResult | None = None  # the tenants of `tenants:` in the config, when declared
    directories: tuple[str, ...] = ()  # every directory using the stack, its maker's first

    def shown_settings(self, reveal: bool) -> dict[str, str]:
        """The client settings with the token masked unless `reveal`."""
        return {**self.settings, TOKEN_KEY: masked(self.settings[TOKEN_KEY], reveal)}

    def as_dict(self, reveal: bool) -> dict[str, object]:
        data: dict[str, object] = {
            "stack": self.stack, "dashboard_url": self.server_url,
            "grpc_address": self.grpc_address, "env_file": str(self.env_file),
            "tenant_id": self.tenant_id, "token_reused": self.token_reused,
            "settings": self.shown_settings(reveal), "directories": list(self.directories),
        }  # fmt: skip
        if self.team is not None:
            data["tenants"] = self.team.as_dict()
        return data


# --- up ------------------------------------------------------------------------------------

_TOKEN_LINE = re.compile(r"^\s*(?:export\s+)?HATCHET_CLIENT_TOKEN\s*=", re.MULTILINE)


def up(
    config: Config, ctx: Context, *, ttl: float | None = None, logs_dir: Path | None = None
) -> UpResult:
    """Bring the stack up (or check it) and hand out a working token; one `up` at a time.

    Expired ephemeral stacks are reaped first. `ttl` makes a new stack ephemeral. When a
    service fails, every unhealthy or stopped service's last log lines join the error, and
    `logs_dir` receives every service's full log.
    """
    # A settings file `up` could not merge into stops it before it starts anything.
    refuse_link(config.env_file)
    read_text(config.env_file)
    if not config.env_file.parent.is_dir():
        raise ConfigError(
            f"env_file: the folder of {config.env_file} does not exist; create it or choose "
            f"another env_file"
        )
    with ctx.console.phase("docker engine"):
        ctx.console.info(f"engine {docker.engine_version(ctx.runner)}")
        ctx.compose_base()  # no Compose v2: stop before any state is written
        for name in reap_expired(ctx):
            ctx.console.info(f"removed expired stack {name}")
    with stack_lock(ctx, config.stack):
        try:
            return _up_locked(config, ctx, ttl=ttl)
        except (ServiceUnhealthy, SetupFailed, BootstrapFailed) as exc:
            _diagnose(config, ctx, exc, logs_dir)
            raise


def _up_locked(config: Config, ctx: Context, *, ttl: float | None = None) -> UpResult:
    """`up` for a caller that already holds the stack's lock."""
    console = ctx.console
    with console.phase("stack files"):
        # What a write cut short by SIGKILL left; the lock keeps other writers out.
        remove_temp_files(ctx.state_root / "stacks" / config.stack)
        remove_temp_files(config.env_file.parent, config.env_file.name)
        stack = load_stack(config, ctx, create=True, ttl=ttl)
        if shared := sharing(stack.record, config.project_dir):
            console.info(shared)
    if stack.dir.wipe_pending():
        with console.phase("wipe data"):
            console.info("finishing the wipe of an earlier `reset` that was cut short")
            wipe(stack, ctx.runner, in_place=False)
    compose = stack.compose
    states = compose.ps()  # one look serves both the health check and the port check
    if not stack.changed and _running_and_healthy(stack, states):
        console.info(f"stack {config.stack} is running; checking it")
        for job in {s.service for s in states} & set(JOBS):
            _remove_leftovers(ctx, compose, job)  # only a run cut off from Docker leaves one
    else:
        # Only before a start: a running stack has nothing to gain from it.
        for finding in preflight(ctx.runner, ctx.state_root):
            console.warn(f"{finding.check}: {finding.detail}; {finding.fix or 'see `doctor`'}")
        _check_ports(stack, states, ctx.runner)
        with console.phase("images"):
            _ensure_images(stack, ctx)
        with console.phase("containers"):
            compose.up(*stack.services())
        _healthy(ctx, compose, "postgres", config.timeouts.postgres)
        # Migrations, config generation and the seed need only Postgres: they run while
        # RabbitMQ is still starting; only the engine needs it.
        for job in JOBS:
            _job(ctx, compose, job, getattr(config.timeouts, job))
        for service in stack.services()[1:]:
            _healthy(ctx, compose, service, getattr(config.timeouts, service))
        with console.phase("engine ready"), _logs_on_failure(compose, ENGINE_SERVICE):
            compose.up(ENGINE_SERVICE, no_deps=True)
            check = service_check(compose, ENGINE_SERVICE)
            _wait(ctx, "engine", check, config.timeouts.engine)
        stack.dir.mark_applied(digest(read_text(stack.dir.compose_file) or ""))
        # The data is at this version now.
        stack.dir.save(dataclasses.replace(stack.record, hatchet_version=config.hatchet_version))
    spec = stack.spec
    with console.phase("API ready"), _logs_on_failure(compose, ENGINE_SERVICE):
        _wait(ctx, "API", http_check(ctx.http, f"{spec.server_url}/api/ready"), config.timeouts.api)
        # An advertised stack (maybe on a remote Docker engine) is probed where clients go.
        grpc_host = "127.0.0.1" if spec.host == "localhost" else spec.host
        _wait(ctx, "gRPC port", ctx.tcp_check(grpc_host, spec.grpc_port), config.timeouts.api)
    with console.phase("token"):
        token, reused = _usable_token(stack, ctx, config.timeouts.bootstrap)
    settings = client_settings(spec.server_url, spec.grpc_address, token, config.namespace)
    _warn_if_others_could_read(config.env_file, ctx)
    write_env_file(config.env_file, settings)
    _warn_if_not_ignored(config.env_file, ctx)
    warn_if_shadowed(config.env_file, config.project_dir, stack.dir.embedded_notice_file,
                     console)  # fmt: skip
    team = None
    if config.tenants:
        with console.phase("tenants"):
            team = reconcile(config, stack, ctx)
        _warn_if_not_ignored(team.files[0].path, ctx)
    return UpResult(
        stack=config.stack,
        server_url=spec.server_url,
        grpc_address=spec.grpc_address,
        env_file=config.env_file,
        tenant_id=token.tenant_id,
        token_reused=reused,
        settings=settings,
        team=team,
        directories=tuple(stack.record.directories),
    )


# --- reset ---------------------------------------------------------------------------------


def reset(config: Config, ctx: Context, *, tenant: str | None = None) -> UpResult:
    """Back to a fresh stack: the database, the engine's config (its JWT keys) and the token
    go together, so no old token can outlive them; then the stack is bootstrapped anew."""
    if tenant is not None:
        raise ConfigError(
            f"reset --tenant {tenant}: Hatchet has no way to delete one tenant's data; reset "
            f"the whole stack (`hatchet-local reset`), or give each developer a namespace"
        )
    load_stack(config, ctx, create=False)  # no such stack: say so before taking its lock
    with stack_lock(ctx, config.stack):
        stack = load_stack(config, ctx, create=False)
        with ctx.console.phase("wipe data"):
            wipe(stack, ctx.runner)
        return _up_locked(config, ctx)


# --- the phases of up ----------------------------------------------------------------------


def _running_and_healthy(stack: Stack, rows: list[ServiceState]) -> bool:
    states = {s.service: s for s in rows}
    wanted = [*stack.services(), ENGINE_SERVICE]
    return all(
        s in states and states[s].state == "running" and states[s].health == "healthy"
        for s in wanted
    )


def _check_ports(stack: Stack, states: list[ServiceState], runner: Runner) -> None:
    """Fail before anything starts when another program holds one of the stack's ports.
    Ports that this stack's running engine publishes are its own: compose re-creates it."""
    own = {port for s in states if s.state == "running" for port in s.published}
    wanted = {"dashboard": stack.spec.dashboard_port, "grpc": stack.spec.grpc_port}
    taken = ports_taken((p for p in wanted.values() if p not in own), runner,
                        stack.spec.bind_address)  # fmt: skip
    for name, port in wanted.items():
        if port in taken:
            raise PortInUse(
                f"the {name} port {port} of stack {stack.record.name} is taken: {taken[port]}, "
                f"or choose another port with {PORT_FLAGS[name]}"
            )


def _ensure_images(stack: Stack, ctx: Context) -> None:
    spec = stack.spec
    keys = (*stack.services(), ENGINE_SERVICE)
    missing = [key for key in keys if not docker.image_present(ctx.runner, spec.images[key])]
    never = [key for key in missing if spec.pull_policy_of(key) == "never"]
    if never:
        ref = spec.images[never[0]]
        how = (
            "build it again with `hatchet-local images build`"
            if never[0] in spec.local_builds
            else "load it (`hatchet-local images load FILE`), build it "
            "(`hatchet-local images build`) or set pull_policy: missing"
        )
        raise ImageMissing(f"image {ref} is not on this machine and pull_policy is never; {how}")
    pulled = [k for k in keys if k in missing or spec.pull_policy_of(k) == "always"]
    if not pulled:
        ctx.console.info(f"{len(keys)} images present")
        return
    ctx.console.info(f"pulling {', '.join(spec.images[key] for key in pulled)}")
    result = stack.compose.run("pull", "--quiet", *pulled, timeout=1800, check=False)
    if not result.ok:
        for key in pulled:
            error = registry_unreachable(result.output, spec.images[key])
            if error is not None:
                raise error
        docker.require_ok(result, "docker compose pull", ctx.runner)


def _healthy(ctx: Context, compose: Compose, service: str, timeout: float) -> None:
    with ctx.console.phase(f"{service} healthy"), _logs_on_failure(compose, service):
        _wait(ctx, service, service_check(compose, service), timeout)


def _job(ctx: Context, compose: Compose, job: str, timeout: float) -> None:
    """Run a one-shot job to completion; its exit code decides."""
    with ctx.console.phase(f"{job} job"):
        _remove_leftovers(ctx, compose, job)
        result = compose.oneshot(job, timeout)
        if not result.ok:
            raise SetupFailed(
                f"the {job} job exited with code {result.returncode}",
                details=compose.redact(tail(result.stdout + result.stderr, 30)),
            )


def _remove_leftovers(ctx: Context, compose: Compose, job: str) -> None:
    if leftovers := compose.remove_leftover_runs(job):
        ctx.console.info(f"removed {leftovers} {job} container(s) an earlier run left")


def _wait(ctx: Context, what: str, check: Callable[[], Check], timeout: float) -> float:
    return wait_for(what, check, timeout, interval=ctx.interval, clock=ctx.clock, sleep=ctx.sleep)


@contextmanager
def _logs_on_failure(compose: Compose, service: str) -> Iterator[None]:
    """A service that fails to come up is reported with its last log lines."""
    try:
        yield
    except ServiceUnhealthy as exc:
        if not exc.details:
            title = f"last log lines of {service}:"
            exc.details = group(title, tail(compose.logs(service), 30), in_github_actions())
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
        # The engine's config volume (its JWT keys) was re-made under a kept database, say:
        # old tokens stop working, so clients need the new one written below.
        ctx.console.info("the stored token is no longer accepted; minting a new one")
    minted = mint_token(stack.compose, DEFAULT_TENANT_ID, timeout=timeout)
    ctx.redact.add(minted)
    if token_status(ctx.http, server_url, minted, DEFAULT_TENANT_ID) != "valid":
        raise BootstrapFailed("the API rejects the token just minted; try `hatchet-local up` again")
    token = Token(token=minted, tenant_id=DEFAULT_TENANT_ID, server_url=server_url)
    stack.dir.save_token(token)
    ctx.console.info("minted a new token")
    return token, False


def _diagnose(config: Config, ctx: Context, exc: HatchetLocalError, logs_dir: Path | None) -> None:
    """Add the last log lines of every service that is down or unhealthy to `exc`, grouped
    under GitHub Actions; write every service's full log into `logs_dir`."""
    try:
        stack = load_stack(config, ctx, create=False)
        states = stack.compose.ps()
    except HatchetLocalError:
        return  # nothing more to say than the error itself
    github = in_github_actions()
    parts = [exc.details] if exc.details else []
    for state in states:
        shown = f"last log lines of {state.service}"
        if (state.state != "running" or state.health == "unhealthy") and shown not in exc.details:
            title = f"{shown} ({state.state} {state.health})".replace(" )", ")")
            parts.append(group(title, tail(stack.compose.logs(state.service), 30), github))
    exc.details = "\n".join(parts)
    if logs_dir is not None:
        ensure_private_dir(logs_dir)
        for state in states:
            full = stack.compose.logs(state.service, lines=None)
            atomic_write(logs_dir / f"{state.service}.log", full, mode=0o644)
        ctx.console.info(f"full logs of {len(states)} services in {logs_dir}")


def _warn_if_others_could_read(path: Path, ctx: Context) -> None:
    """The settings file is the user's (an editor may well make it 0644) and `up` rewrites
    it 0600 anyway; a token it held while others could read it may have been read, which the
    user should hear about. (The state's own secret files are refused instead: hatchet-local
    always writes them 0600, so a wider mode there was set by someone.)"""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if stat.S_ISREG(mode) and mode & 0o077 and _TOKEN_LINE.search(read_text(path) or ""):
        ctx.console.warn(
            f"{path} held a token while other users could read it "
            f"(mode {stat.S_IMODE(mode):04o}); it is 0600 now, but that token may have been read"
        )


def _warn_if_not_ignored(path: Path, ctx: Context) -> None:
    def git(*args: str) -> int:
        return ctx.runner.run(["git", "-C", str(path.parent), *args], timeout=10).returncode

    try:
        if git("check-ignore", "-q", path.name) != 1:
            return  # ignored, or not in a git work tree
        # check-ignore never reports a tracked file as ignored, whatever .gitignore says.
        tracked = git("ls-files", "--error-unmatch", "--", path.name) == 0
    except HatchetLocalError:
        return  # no git: nothing to warn about
    if tracked:
        ctx.console.warn(
            f"{path} holds a token and git does not ignore it: git tracks it; run "
            f"`git rm --cached {path.name}` and add it to .gitignore"
        )
    else:
        ctx.console.warn(f"{path} holds a token and git does not ignore it; add it to .gitignore")
