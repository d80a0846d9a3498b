"""The phases `up` goes through, each a function: ports, images, a service healthy, the
token; and what a failure or a risky settings file is reported with. (The one-shot jobs are
in jobs.py.)"""

from __future__ import annotations

import re
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

from hatchet_local.bootstrap import mint_token, token_status
from hatchet_local.ci import group, in_github_actions
from hatchet_local.compose import Compose, ServiceState
from hatchet_local.config import Config
from hatchet_local.context import Context
from hatchet_local.defaults import DEFAULT_TENANT_ID, ENGINE_SERVICE
from hatchet_local.docker import require_ok
from hatchet_local.errors import (
    BootstrapFailed,
    HatchetLocalError,
    ImageMissing,
    PortInUse,
    ServiceUnhealthy,
)
from hatchet_local.fsutil import atomic_write, ensure_private_dir, read_text
from hatchet_local.health import Check, service_check, wait_for
from hatchet_local.image_build import registry_unreachable
from hatchet_local.ports import PORT_FLAGS, ports_taken
from hatchet_local.runner import Runner, tail
from hatchet_local.stack import Stack, load_stack
from hatchet_local.team_state import Token

TOKEN_LINE = re.compile(r"^\s*(?:export\s+)?HATCHET_CLIENT_TOKEN\s*=", re.MULTILINE)


def running_and_healthy(stack: Stack, rows: list[ServiceState]) -> bool:
    """Every service runs and none is unhealthy. A healthcheck still `starting` passes:
    `up` returns once the API answers, which can be before the engine's first healthcheck,
    and the API and token checks that follow see a stack that does not work."""
    states = {s.service: s for s in rows}
    wanted = [*stack.services(), ENGINE_SERVICE]
    return all(
        s in states and states[s].state == "running" and states[s].health in ("healthy", "starting")
        for s in wanted
    )


def check_ports(stack: Stack, states: list[ServiceState], runner: Runner) -> None:
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


def ensure_images(stack: Stack, ctx: Context) -> None:
    spec = stack.spec
    keys = (*stack.services(), ENGINE_SERVICE)
    missing = [key for key in keys if not ctx.docker.image_present(spec.images[key])]
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
        require_ok(result, "docker compose pull", ctx.runner)


def healthy(
    ctx: Context,
    compose: Compose,
    service: str,
    timeout: float,
    probe: Callable[[ServiceState], bool] | None = None,
) -> None:
    with ctx.console.phase(f"{service} healthy"), logs_on_failure(compose, service):
        wait(ctx, service, service_check(compose, service, probe=probe), timeout)


def remove_leftovers(ctx: Context, compose: Compose, job: str) -> None:
    if leftovers := compose.remove_leftover_runs(job):
        ctx.console.info(f"removed {leftovers} {job} container(s) an earlier run left")


def wait(ctx: Context, what: str, check: Callable[[], Check], timeout: float) -> float:
    return wait_for(what, check, timeout, interval=ctx.interval, clock=ctx.clock, sleep=ctx.sleep)


@contextmanager
def logs_on_failure(compose: Compose, service: str) -> Iterator[None]:
    """A service that fails to come up is reported with its last log lines."""
    try:
        yield
    except ServiceUnhealthy as exc:
        if not exc.details:
            title = f"last log lines of {service}:"
            exc.details = group(title, tail(compose.logs(service), 30), in_github_actions())
        raise


def stored_token(stack: Stack) -> Token | None:
    """The stack's stored token when it was minted for the stack's server as it is now (a
    stack moved to other ports needs a new one)."""
    stored = stack.dir.load_token()
    return stored if stored is not None and stored.server_url == stack.spec.server_url else None


def usable_token(
    stack: Stack, ctx: Context, timeout: float, minting: Future[str] | None = None
) -> tuple[Token, bool]:
    """The stored token while the server accepts it, else a new one (proven before use): the
    one `minting` when given (started beside the engine's start), else minted now."""
    server_url = stack.spec.server_url
    stored = stored_token(stack)
    if stored is not None:
        ctx.redact.add(stored.token)
        if token_status(ctx.http, server_url, stored.token, stored.tenant_id) == "valid":
            ctx.console.info("stored token still accepted")
            return stored, True
        # The engine's config volume (its JWT keys) was re-made under a kept database, say:
        # old tokens stop working, so clients need the new one written below.
        ctx.console.info("the stored token is no longer accepted; minting a new one")
    if minting is not None:
        minted = minting.result()
    else:
        minted = mint_token(stack.compose, DEFAULT_TENANT_ID, timeout=timeout)
    ctx.redact.add(minted)
    if token_status(ctx.http, server_url, minted, DEFAULT_TENANT_ID) != "valid":
        raise BootstrapFailed("the API rejects the token just minted; try `hatchet-local up` again")
    token = Token(token=minted, tenant_id=DEFAULT_TENANT_ID, server_url=server_url)
    stack.dir.save_token(token)
    ctx.console.info("minted a new token")
    return token, False


def diagnose(config: Config, ctx: Context, exc: HatchetLocalError, logs_dir: Path | None) -> None:
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


def warn_if_others_could_read(path: Path, ctx: Context) -> None:
    """The settings file is the user's (an editor may well make it 0644) and `up` rewrites
    it 0600 anyway; a token it held while others could read it may have been read, which the
    user should hear about. (The state's own secret files are refused instead: hatchet-local
    always writes them 0600, so a wider mode there was set by someone.)"""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if stat.S_ISREG(mode) and mode & 0o077 and TOKEN_LINE.search(read_text(path) or ""):
        ctx.console.warn(
            f"{path} held a token while other users could read it "
            f"(mode {stat.S_IMODE(mode):04o}); it is 0600 now, but that token may have been read"
        )


def warn_if_not_ignored(path: Path, ctx: Context) -> None:
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
