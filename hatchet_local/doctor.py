"""`doctor`: is this machine ready for a stack? Each check passes, warns or fails, with a fix."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from hatchet_local.compose_discovery import find_compose
from hatchet_local.config import Config
from hatchet_local.docker import Engine
from hatchet_local.docker_cli import CliEngine
from hatchet_local.errors import HatchetLocalError
from hatchet_local.images import needed_images
from hatchet_local.ports import ports_taken
from hatchet_local.runner import Runner
from hatchet_local.state import StackDir

GIB = 1024**3
MIN_MEMORY = 2 * GIB
MIN_DISK = 5 * GIB
MAX_CLOCK_SKEW = 60.0


@dataclass(frozen=True)
class Finding:
    check: str
    status: Literal["pass", "warn", "fail"]
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def diagnose(
    config: Config, runner: Runner, state_root: Path, docker: Engine | None = None
) -> list[Finding]:
    """Every check, in order; a check that needs the engine is skipped when it is down.
    `docker` reads the engine (the docker CLI over `runner` unless given)."""
    docker = docker or CliEngine(runner)
    findings = [_docker(docker)]
    if findings[0].status == "fail":
        return findings
    facts = docker.facts()
    checks: list[Callable[[], Finding]] = [
        lambda: _compose(runner),
        lambda: _memory(facts.memory),
        lambda: _disk(state_root),
        lambda: _ports(config, runner, state_root),
        lambda: _images(config, docker),
        lambda: _clock(facts.clock),
    ]
    return findings + [check() for check in checks]


def preflight(docker: Engine, state_root: Path) -> list[Finding]:
    """What `up` checks before it starts a stack, beyond what starting checks anyway (Docker,
    Compose, ports and images each fail `up` with their own message): the findings that
    are not a pass, from one `docker info` and one statvfs."""
    facts = docker.facts()
    found = (_memory(facts.memory), _disk(state_root), _clock(facts.clock))
    return [finding for finding in found if finding.status != "pass"]


def _docker(docker: Engine) -> Finding:
    try:
        version = docker.version()
    except HatchetLocalError as exc:
        return Finding("docker engine", "fail", exc.message.split(": ")[0], exc.message)
    where = docker.where()
    api = docker.api_version()
    return Finding("docker engine", "pass", f"{version} (API {api}) at {where}")


def _compose(runner: Runner) -> Finding:
    try:
        base = find_compose(runner)
    except HatchetLocalError as exc:
        return Finding("compose v2", "fail", "not found", exc.message)
    version = runner.run([*base, "version", "--short"], timeout=30).stdout.strip()
    return Finding("compose v2", "pass", f"{version} ({' '.join(base)})")


def _memory(reported: str) -> Finding:
    try:
        total = int(reported)
    except ValueError:
        return Finding("memory", "warn", "the engine did not say", "check `docker info`")
    detail = f"{total / GIB:.1f} GiB for the engine"
    if total < MIN_MEMORY:
        return Finding("memory", "warn", detail, "give Docker at least 2 GiB for a stack")
    return Finding("memory", "pass", detail)


def _disk(state_root: Path) -> Finding:
    probe = state_root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    detail = f"{free / GIB:.1f} GiB free under {probe}"
    if free < MIN_DISK:
        return Finding(
            "disk", "warn", detail, "free some space: a stack's images and data need ~2 GiB"
        )
    return Finding("disk", "pass", detail)


def _ports(config: Config, runner: Runner, state_root: Path) -> Finding:
    record = StackDir(state_root, config.stack).load()
    wanted = {
        key: getattr(config.ports, key) or (record.ports.get(key) if record else None)
        for key in ("dashboard", "grpc")
    }
    holders = ports_taken((port for port in wanted.values() if port), runner)
    taken = [f"{key} port {port} is taken: {holders[port]}"
             for key, port in wanted.items() if port in holders]  # fmt: skip
    chosen = ", ".join(f"{k} {p}" for k, p in wanted.items() if p) or "picked on first up"
    if taken and record is not None:
        # A running stack holds its own ports; only say so.
        return Finding("ports", "warn", "; ".join(taken), "fine if that is this stack running")
    if taken:
        return Finding("ports", "fail", "; ".join(taken), "free them or choose other ports")
    return Finding("ports", "pass", chosen)


def _images(config: Config, docker: Engine) -> Finding:
    refs = needed_images(config, docker).values()
    missing = [ref for ref in refs if not docker.image_present(ref)]
    if not missing:
        return Finding("images", "pass", f"all present (pull_policy {config.pull_policy})")
    if config.pull_policy == "never":
        fix = "`hatchet-local images build`, or `hatchet-local images load FILE`"
        return Finding("images", "fail", f"missing: {', '.join(missing)}", fix)
    return Finding("images", "warn", f"will pull: {', '.join(missing)}",
                   "no registry here? `hatchet-local images build` makes them")  # fmt: skip


def _clock(reported: str) -> Finding:
    try:
        engine_now = datetime.fromisoformat(reported.replace("Z", "+00:00"))
    except ValueError:
        return Finding("clock", "warn", "the engine did not say its time")
    skew = abs((datetime.now(UTC) - engine_now).total_seconds())
    if skew > MAX_CLOCK_SKEW:
        return Finding("clock", "warn", f"engine and host clocks differ by {skew:.0f}s",
                       "sync the clocks (tokens carry issue and expiry times)")  # fmt: skip
    return Finding("clock", "pass", f"engine and host agree within {skew:.1f}s")
