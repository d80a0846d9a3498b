"""Bringing a stack up: `up` starts it phase by phase and returns once a task would be
dispatched, handing out a working token.

A new stack's database comes from a seed when one is given (a snapshot), else from the base
of its kind when one was kept (bases.py), else from `initdb` and every migration, after
which it is kept as that base. The phases themselves are in phases.py; what is done to the
data before the engine sees it is in provision.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from hatchet_local import bases, jobs, postgres, provision, spares
from hatchet_local.bootstrap import mint_token
from hatchet_local.client_settings import TOKEN_KEY, client_settings
from hatchet_local.compose import ServiceState
from hatchet_local.config import Config
from hatchet_local.context import Context
from hatchet_local.defaults import DEFAULT_TENANT_ID, ENGINE_SERVICE, JOBS
from hatchet_local.doctor import preflight
from hatchet_local.embedded import warn_if_shadowed
from hatchet_local.envfile import write_env_file
from hatchet_local.errors import BootstrapFailed, ConfigError, ServiceUnhealthy, SetupFailed
from hatchet_local.fsutil import read_text, refuse_link, remove_temp_files
from hatchet_local.health import READY, Check, http_check, log_probe, service_check
from hatchet_local.inventory import reap_expired
from hatchet_local.phases import (
    check_ports,
    diagnose,
    ensure_images,
    healthy,
    logs_on_failure,
    remove_leftovers,
    running_and_healthy,
    stored_token,
    usable_token,
    wait,
    warn_if_not_ignored,
    warn_if_others_could_read,
)
from hatchet_local.redact import masked
from hatchet_local.stack import Stack, load_stack, sharing, stack_lock
from hatchet_local.state import StackDir, digest
from hatchet_local.team_state import Token
from hatchet_local.wipe import wipe

if TYPE_CHECKING:
    from hatchet_local.teams import TeamResult

MIGRATE, SETUP = JOBS
RABBITMQ_UP = "Server startup complete"  # what RabbitMQ 3.8 and later log once it serves
# What runs beside the main thread (a token minted while the engine starts); its thread
# ends with the process.
_BESIDE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hatchet-local-beside")


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


class Seed(Protocol):
    """Whole data for a new stack (a snapshot): its database and the engine's config."""

    label: str  # "snapshot NAME", for progress lines
    hatchet_version: str  # the version of the data it holds

    def unpack(self, stack: Stack, ctx: Context) -> None:
        """Fill the new stack's volumes; its containers are created, not started."""
        ...


# --- up ------------------------------------------------------------------------------------


def up(
    config: Config,
    ctx: Context,
    *,
    ttl: float | None = None,
    logs_dir: Path | None = None,
    seed: Seed | None = None,
) -> UpResult:
    """Bring the stack up (or check it) and hand out a working token; one `up` at a time.

    Expired ephemeral stacks are reaped first. `ttl` makes a new stack ephemeral; `seed`
    fills a new stack's data. When a service fails, every unhealthy or stopped service's
    last log lines join the error, and `logs_dir` receives every service's full log.
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
        ctx.console.info(f"engine {ctx.docker.version()}")
        if not StackDir(ctx.state_root, config.stack).exists():
            ctx.compose_base()  # no Compose v2: stop before a new stack's state is written
        for name in reap_expired(ctx):
            ctx.console.info(f"removed expired stack {name}")
    with stack_lock(ctx, config.stack):
        try:
            return up_locked(config, ctx, ttl=ttl, seed=seed)
        except (ServiceUnhealthy, SetupFailed, BootstrapFailed) as exc:
            diagnose(config, ctx, exc, logs_dir)
            raise


def up_locked(
    config: Config, ctx: Context, *, ttl: float | None = None, seed: Seed | None = None
) -> UpResult:
    """`up` for a caller that already holds the stack's lock."""
    console = ctx.console
    with console.phase("stack files"):
        # What a write cut short by SIGKILL left; the lock keeps other writers out.
        remove_temp_files(ctx.state_root / "stacks" / config.stack)
        remove_temp_files(config.env_file.parent, config.env_file.name)
        new = not StackDir(ctx.state_root, config.stack).exists()
        spare = spares.take_over(config, ctx) if seed is None and ttl is None else None
        stack = load_stack(config, ctx, create=True, ttl=ttl)
        if spare is not None:
            console.info(f"took over spare {spare.name}, started {spare.created}")
        if shared := sharing(stack.record, config.project_dir):
            console.info(shared)
    if stack.dir.wipe_pending():
        with console.phase("wipe data"):
            console.info("finishing the wipe of an earlier `reset` that was cut short")
            wipe(stack, ctx, in_place=False)
    compose = stack.compose
    states = compose.ps()  # one look serves both the health check and the port check
    minting = None
    if seed is None and not stack.changed and running_and_healthy(stack, states):
        if spare is None:
            console.info(f"stack {config.stack} is running; checking it")
        for name in {s.service for s in states} & {MIGRATE, SETUP}:
            remove_leftovers(ctx, compose, name)  # only a run cut off from Docker leaves one
        if provision.engine_restarted(stack):
            with console.phase("task dispatch"):
                console.info("the engine restarted since the last `up`")
                provision.dispatch_ready(stack, ctx, config.timeouts.engine)
    elif seed is None and not stack.changed and _only_the_engine_is_down(stack, states, ctx):
        # The engine was killed or stopped on its own: its data and config are as the last
        # `up` left them, so it only needs starting (and its tenants handing over).
        console.info("only the engine is down; starting it")
        check_ports(stack, states, ctx.runner)
        start_engine(stack, ctx, config)
    else:
        check_ports(stack, states, ctx.runner)
        minting = start(stack, ctx, config, seed)
    result = finish(stack, ctx, config, minting)
    if new and config.spares and ttl is None and spares.why_not(config) is None:
        if failed := spares.last_refill_failure(ctx):
            console.warn(f"the last background `hatchet-local spare` failed: {failed}")
        log = spares.refill_in_background(config, ctx)
        console.info(f"starting spares for the next new stacks in the background (log: {log})")
    # A spare's token is new to this stack's clients.
    return result if spare is None else dataclasses.replace(result, token_reused=False)


def _only_the_engine_is_down(stack: Stack, rows: list[ServiceState], ctx: Context) -> bool:
    states = {s.service: s for s in rows}
    backing_up = all(
        s in states and states[s].state == "running" and states[s].health == "healthy"
        for s in stack.services()
    )
    engine = states.get(ENGINE_SERVICE)
    engine_down = engine is None or engine.state in ("exited", "dead", "created")
    return (backing_up and engine_down and stack.dir.noted("password-pending") is None
            and not jobs.held(stack)
            and ctx.docker.volume_exists(f"{stack.compose.project}_hatchet_config"))  # fmt: skip


def start(
    stack: Stack, ctx: Context, config: Config, seed: Seed | None = None
) -> Future[str] | None:
    """Start a stack that is not running (or changed), its data made first when it has none.
    Returns the token being minted beside the engine's start when the stack needs a new one."""
    console = ctx.console
    # Only before a start: a running stack has nothing to gain from it.
    for finding in preflight(ctx.docker, ctx.state_root):
        console.warn(f"{finding.check}: {finding.detail}; {finding.fix or 'see `doctor`'}")
    with console.phase("images"):
        ensure_images(stack, ctx)
    fresh = provision.fresh(stack, ctx)
    if seed is not None and not fresh:
        raise ConfigError(
            f"stack {stack.record.name} already has data; `hatchet-local snapshot load` "
            f"replaces it, or start a new stack with --stack"
        )
    if fresh and seed is None:
        stack.dir.note("pristine-pending")  # taken after `setup`, before the engine starts
    kind = bases.kind_of(stack, ctx, config.hatchet_version) if fresh and seed is None else None
    base = bases.find(ctx.state_root, kind) if kind is not None else None
    compose = stack.compose
    copy = _copied_from(seed, base)
    if copy is not None:
        # From here a database volume may exist that the copy has not filled yet.
        stack.dir.note("data-pending", copy)
    # A base or a snapshot has been migrated; a snapshot has its config too.
    same_version = seed is not None and seed.hatchet_version == config.hatchet_version
    plan = jobs.Plan(
        migrate=not (fresh and (base is not None or same_version)),
        setup=not (fresh and seed is not None),
        early=seed is None,
    )
    # Every container is made by one Compose, then each started when it is wanted.
    compose.create(*stack.services(), ENGINE_SERVICE)
    early = [s for s in stack.services() if s != "postgres"] if copy is not None else []
    # RabbitMQ's boot, the longest, goes on while the data is copied, and so does its `docker
    # start` (half a second of the daemon's); so does the start of the engine's container
    # that the jobs run in (after a snapshot has filled its config volume, when there is one).
    starting = _BESIDE.submit(_start_early, stack, ctx, early, plan.early and plan.any)
    if fresh and seed is not None:
        with console.phase("data from snapshot"):
            console.info(f"from {seed.label}")
            seed.unpack(stack, ctx)
    if base is not None:
        with console.phase("database from base"), base.open("rb") as source:
            provision.unpack(stack, source)
    with console.phase("containers"):
        compose.start(*[s for s in stack.services() if s not in early])
        starting.result()
    healthy(ctx, compose, "postgres", config.timeouts.postgres,
            probe=_postgres_probe(stack, copied=copy is not None))  # fmt: skip
    if stack.dir.noted("password-pending") is not None:
        with console.phase("database password"):
            provision.own_password(stack)
    jobs.run(stack, ctx, config, plan, kind if base is None else None)
    minting = _start_beside_queue(stack, ctx, config)
    # The data is at this version now.
    stack.dir.save(dataclasses.replace(stack.record, hatchet_version=config.hatchet_version))
    return minting


def _start_early(stack: Stack, ctx: Context, services: list[str], for_jobs: bool) -> None:
    if services:
        stack.compose.start(*services)
    if for_jobs:
        jobs.hold_for_jobs(stack, ctx)


def _postgres_probe(stack: Stack, *, copied: bool) -> Callable[[ServiceState], bool] | None:
    """Without `start_interval` Docker checks health every few seconds: ask Postgres too,
    through the Engine API when the data folder is one hatchet-local filled (`copied`)."""
    if stack.spec.start_interval:
        return None
    compose = stack.compose
    if copied:
        return partial(postgres.ready_in_pid_file, compose)
    return lambda _state: postgres.accepting(compose)


def _copied_from(seed: Seed | None, base: Path | None) -> str | None:
    """What a new stack's data is copied from (a snapshot, or the base `<key>.tar`), if any."""
    if seed is not None:
        return seed.label
    return f"base {base.stem}" if base is not None else None


def _start_beside_queue(stack: Stack, ctx: Context, config: Config) -> Future[str] | None:
    """The engine's container, started while RabbitMQ may still boot: it waits for the
    AMQP port by itself, so its own start overlaps the end of RabbitMQ's. RabbitMQ's health
    is awaited apart, so that a broker that fails is reported as such. A stack with no token
    for its server gets one minted meanwhile (the admin tool needs the container, not the
    engine)."""
    compose = stack.compose
    if jobs.held(stack):
        jobs.release(stack)
    else:
        compose.start(ENGINE_SERVICE)
    minting = None
    if stored_token(stack) is None:
        minting = _BESIDE.submit(mint_token, compose, DEFAULT_TENANT_ID,
                                 timeout=config.timeouts.bootstrap)  # fmt: skip
    for service in stack.services()[1:]:
        # RabbitMQ says when it is up; without `start_interval` its healthcheck runs every 3 s.
        ready = None if stack.spec.start_interval else log_probe(compose, service, RABBITMQ_UP)
        healthy(ctx, compose, service, getattr(config.timeouts, service), probe=ready)
    start_engine(stack, ctx, config, started=True)
    return minting


def start_engine(stack: Stack, ctx: Context, config: Config, *, started: bool = False) -> None:
    """Start the engine (unless `started` already) and wait until a task would be
    dispatched: its container runs, the API answers, the gRPC port takes connections and
    every tenant is assigned to it."""
    compose, spec = stack.compose, stack.spec
    with ctx.console.phase("engine ready"), logs_on_failure(compose, ENGINE_SERVICE):
        if not started:
            compose.up(ENGINE_SERVICE, no_deps=True)
            jobs.release(stack)  # one a cut-short `up` left (no hold: nothing to do)
        running = service_check(compose, ENGINE_SERVICE, healthcheck=False)
        api = http_check(ctx.http, f"{spec.server_url}/api/ready")

        def engine() -> Check:
            # The API answers only once the engine has connected to its database and queue
            # (Docker's healthcheck would say the same, seconds later).
            state = running()
            return api() if state is READY else state

        wait(ctx, "engine", engine, config.timeouts.engine)
    with ctx.console.phase("task dispatch"), logs_on_failure(compose, ENGINE_SERVICE):
        provision.dispatch_ready(stack, ctx, config.timeouts.engine)
    stack.dir.mark_applied(digest(read_text(stack.dir.compose_file) or ""))


def serving(
    stack: Stack, ctx: Context, config: Config, minting: Future[str] | None = None
) -> tuple[Token, bool]:
    """The running stack's API answers and its gRPC port takes connections; returns its
    working token (the stored one, or a new one: the one `minting` when given) and whether it
    was the stored one."""
    spec = stack.spec
    with ctx.console.phase("API ready"), logs_on_failure(stack.compose, ENGINE_SERVICE):
        wait(ctx, "API", http_check(ctx.http, f"{spec.server_url}/api/ready"), config.timeouts.api)
        # An advertised stack (maybe on a remote Docker engine) is probed where clients go.
        grpc_host = "127.0.0.1" if spec.host == "localhost" else spec.host
        wait(ctx, "gRPC port", ctx.tcp_check(grpc_host, spec.grpc_port), config.timeouts.api)
    with ctx.console.phase("token"):
        return usable_token(stack, ctx, config.timeouts.bootstrap, minting)


def finish(
    stack: Stack, ctx: Context, config: Config, minting: Future[str] | None = None
) -> UpResult:
    """A running stack's API answers; its token works (the stored one, or a new one: the
    one `minting` when given); the client settings are written when they changed; the
    declared tenants exist."""
    console, spec = ctx.console, stack.spec
    token, reused = serving(stack, ctx, config, minting)
    settings = client_settings(spec.server_url, spec.grpc_address, token, config.namespace)
    warn_if_others_could_read(config.env_file, ctx)
    write_env_file(config.env_file, settings)
    warn_if_not_ignored(config.env_file, ctx)
    warn_if_shadowed(config.env_file, config.project_dir, stack.dir.embedded_notice_file,
                     console)  # fmt: skip
    team = None
    if config.tenants:
        with console.phase("tenants"):
            # Only a project that declares tenants pays for the REST client (httpx and all).
            from hatchet_local.teams import reconcile  # noqa: PLC0415

            team = reconcile(config, stack, ctx)
        warn_if_not_ignored(team.files[0].path, ctx)
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
