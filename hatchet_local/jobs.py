"""The one-shot jobs of a start (`migrate`, `setup`), run inside the engine's container
while it is held at its start.

Every start that runs a job starts the engine's container early (on new data, beside the
data copy) with a hold file in its config volume: its entrypoint waits while the file is
there (see the template). The jobs then run inside it by `docker exec`, about a second less
each on two cores than a container of their own from `docker compose run`; once the pristine
copy `reset` restores is kept, removing the file starts the engine within 50 ms. The engine
never connects before that.

A hold is noted in the stack's directory (`engine-held`) from before the file is written
until after it is removed, so the next command finishes one a signal cut short: the held
container is restarted first, which ends any job the cut left running in it.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass

from hatchet_local import bases, provision
from hatchet_local.compose import Compose
from hatchet_local.config import Config
from hatchet_local.context import Context
from hatchet_local.defaults import ADMIN_EMAIL, ENGINE_HOLD_FILE, ENGINE_SERVICE, JOB_COMMANDS
from hatchet_local.docker import require_ok
from hatchet_local.errors import SetupFailed
from hatchet_local.phases import remove_leftovers
from hatchet_local.runner import tail
from hatchet_local.stack import Stack

NOTE = "engine-held"


@dataclass(frozen=True)
class Plan:
    """Which jobs a start runs, and whether their container starts early (beside the copy;
    not before a snapshot has filled the config volume)."""

    migrate: bool
    setup: bool
    early: bool

    @property
    def any(self) -> bool:
        return self.migrate or self.setup


def run(
    stack: Stack, ctx: Context, config: Config, plan: Plan, new_kind: bases.Base | None
) -> None:
    """Migrations, config generation and the seed, inside the engine's held container; they
    need only Postgres, and run while RabbitMQ is still starting. The first stack of its kind
    keeps its migrated database as a base (`new_kind`); new data gets its pristine copy."""
    console, compose = ctx.console, stack.compose
    if plan.any and not plan.early:
        hold_for_jobs(stack, ctx)
    if plan.migrate:
        _job(ctx, compose, "migrate", config.timeouts.migrate)
    if new_kind is not None:
        with console.phase("keep base"):
            console.info("the first stack of its kind here ran initdb and every migration; "
                         "keeping its database as a base, so the next ones skip both")  # fmt: skip
            bases.keep(stack, ctx, new_kind)
    if plan.setup:
        password = stack.secrets["HATCHET_ADMIN_PASSWORD"]  # the stack's, for its login
        admin = {"ADMIN_EMAIL": ADMIN_EMAIL, "ADMIN_PASSWORD": password}
        _job(ctx, compose, "setup", config.timeouts.setup, env=admin)
    if stack.dir.noted("pristine-pending") is not None:
        with console.phase("pristine copy"):
            provision.keep_pristine(stack)


def _job(
    ctx: Context, compose: Compose, job: str, timeout: float, env: Mapping[str, str] | None = None
) -> None:
    """One job to completion in the engine's container; its exit code decides. `env` travels
    by name only."""
    with ctx.console.phase(f"{job} job"):
        remove_leftovers(ctx, compose, job)  # what a `compose run` of it (once the way) left
        result = compose.exec(ENGINE_SERVICE, *JOB_COMMANDS[job], timeout=timeout, env=env)
        if not result.ok:
            raise SetupFailed(
                f"the {job} job exited with code {result.returncode}",
                details=compose.redact(tail(result.stdout + result.stderr, 30)),
            )


def hold_for_jobs(stack: Stack, ctx: Context) -> None:
    """The engine's container running for the jobs to run in: held at its start unless a
    live engine runs in it already (a changed stack whose engine Compose kept)."""
    container = ctx.docker.container(stack.compose.container_name(ENGINE_SERVICE))
    running = container is not None and container.state == "running"
    if running and held(stack):
        _restart_held(stack)
    elif not running:
        _hold(stack)


def held(stack: Stack) -> bool:
    return stack.dir.noted(NOTE) is not None


def release(stack: Stack) -> None:
    """Remove the hold file from the running container: the engine starts. No hold, no-op."""
    if not held(stack):
        return
    compose = stack.compose
    result = compose.exec(ENGINE_SERVICE, "rm", "-f", ENGINE_HOLD_FILE, timeout=60)
    require_ok(result, "starting the held engine", compose.runner)
    stack.dir.forget(NOTE)


def _hold(stack: Stack) -> None:
    """Write the hold file into the engine's container (made, not running: its volume is
    reached all the same) and start the container, which waits."""
    compose = stack.compose
    stack.dir.note(NOTE)
    folder, name = posixpath.split(ENGINE_HOLD_FILE)
    target = f"{compose.container_name(ENGINE_SERVICE)}:{folder}"
    result = compose.runner.stream(["docker", "cp", "-", target], source=_archive(name),
                                   timeout=120)  # fmt: skip
    require_ok(result, "holding the engine's start", compose.runner)
    compose.start(ENGINE_SERVICE)


def _restart_held(stack: Stack) -> None:
    """A hold an earlier command left: restart the waiting container, which stops any job
    that command left running in it (the file, in the volume, keeps the engine waiting)."""
    compose = stack.compose
    argv = ["docker", "restart", "--time", "0", compose.container_name(ENGINE_SERVICE)]
    result = compose.runner.run(argv, timeout=120)
    require_ok(result, "restarting the held engine container", compose.runner)


def _archive(name: str) -> io.BytesIO:
    """A tar holding one empty file `name`, for `docker cp -`."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        tar.addfile(tarfile.TarInfo(name))
    data.seek(0)
    return data
