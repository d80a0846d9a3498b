"""Workers in three languages on one stack from `up`, each given only what hatchet-local
hands out: TypeScript (`@hatchet-dev/typescript-sdk` from npm) through
`eval "$(hatchet-local env --output shell)"`, Go (the SDK inside the pinned module) through
`hatchet-local run --`, and TypeScript and Go triggers reaching a Python worker."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from tests.support import clients
from tests.support.stacks import HATCHET_LOCAL, Project, clean_env, workflow_names

pytestmark = pytest.mark.e2e


def name_for(language: str) -> str:
    return f"{language}-{uuid.uuid4().hex[:8]}"


def via_env_shell(project: Project, argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """`argv` run by a shell that first evals `hatchet-local env --output shell --reveal`:
    what a user types, with nothing but those lines as the client's settings."""
    lines = project.hl("env", "--output", "shell", "--reveal").stdout
    env = clean_env(HL_SETTINGS=lines)
    return ["bash", "-c", 'eval "$HL_SETTINGS" && unset HL_SETTINGS && exec "$@"', "bash",
            *argv], env  # fmt: skip


def via_run(project: Project, argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """`hatchet-local run -- argv` from the project directory."""
    return [str(HATCHET_LOCAL), "run", "--", *argv], project.env()


@pytest.fixture(scope="module")
def probes() -> dict[str, list[str]]:
    """Each language's probe, built (or found in the cache) once."""
    return {"typescript": clients.ts_probe(), "go": clients.go_probe()}


def serve_and_run(
    project: Project, work: Path, worker: tuple[list[str], dict[str, str]],
    run: tuple[list[str], dict[str, str]], name: str,
) -> dict[str, str]:  # fmt: skip
    """Start `worker`, wait until the engine knows task `name`, run it once with `run`."""
    settings = project.env_file()
    log = work / f"{name}.log"
    process = clients.start(worker[0], work, worker[1], log)
    try:
        clients.wait_until(
            lambda: process.poll() is None and name in workflow_names(settings),
            f"{name} registered (worker log: {log.read_text(errors='replace')[-2000:]})",
        )
        return dict(clients.run_json(run[0], work, run[1]))
    finally:
        clients.stop(process)


def test_typescript_worker_from_env_output_shell(
    shared_stack: Project, probes: dict[str, list[str]], tmp_path: Path
) -> None:
    name = name_for("ts")
    worker = via_env_shell(shared_stack, [*probes["typescript"], "worker", name])
    run = via_env_shell(shared_stack, [*probes["typescript"], "run", name, "hello"])
    assert serve_and_run(shared_stack, tmp_path, worker, run, name) == {
        "echo": "HELLO",
        "task": name,
    }


def test_go_worker_through_hatchet_local_run(
    shared_stack: Project, probes: dict[str, list[str]], tmp_path: Path
) -> None:
    name = name_for("go")
    token = shared_stack.env_file()["HATCHET_CLIENT_TOKEN"]
    worker = via_run(shared_stack, [*probes["go"], "worker", name])
    process = clients.start(worker[0], shared_stack.dir, worker[1], tmp_path / "go.log")
    try:
        clients.wait_until(lambda: name in workflow_names(shared_stack.env_file()), name)
        # `run` became the worker (same pid): the token is in its environment, not its argv.
        proc = Path("/proc") / str(process.pid)
        assert token.encode() not in (proc / "cmdline").read_bytes()
        assert f"HATCHET_CLIENT_TOKEN={token}".encode() in (proc / "environ").read_bytes()
        assert b"HATCHET_CLIENT_API_URL=" in (proc / "environ").read_bytes()
        run = via_run(shared_stack, [*probes["go"], "run", name, "hello"])
        result = clients.run_json(run[0], shared_stack.dir, run[1])
    finally:
        clients.stop(process)
    assert result == {"echo": "HELLO", "task": name}


def test_typescript_and_go_triggers_reach_a_python_worker(
    shared_stack: Project, probes: dict[str, list[str]], tmp_path: Path
) -> None:
    name = name_for("py")
    # The Python worker reads .env.hatchet by itself, in the project directory.
    python = [*clients.python_probe(Path(sys.executable)), "worker", name]
    process = clients.start(python, shared_stack.dir, clean_env(), tmp_path / "python.log")
    try:
        clients.wait_until(lambda: name in workflow_names(shared_stack.env_file()), name)
        from_ts = via_run(shared_stack, [*probes["typescript"], "run", name, "from ts"])
        from_go = via_env_shell(shared_stack, [*probes["go"], "run", name, "from go"])
        ts_result = clients.run_json(from_ts[0], shared_stack.dir, from_ts[1])
        go_result = clients.run_json(from_go[0], tmp_path, from_go[1])
    finally:
        clients.stop(process)
    assert ts_result == {"echo": "FROM TS", "task": name}
    assert go_result == {"echo": "FROM GO", "task": name}
