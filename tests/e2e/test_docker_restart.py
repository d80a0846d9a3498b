"""The Docker engine restarts under running stacks (issue #16: a Docker Desktop update,
`systemctl restart docker`, a laptop reboot): two stacks running and one stopped. The running
ones come back, each with its data and its token; the stopped one stays stopped; `status` and
`ls` tell the truth throughout, including while no engine answers.

The machine's engine is shared and is never restarted: the stacks run on a private engine
(tests/support/private_engine.py) in a network namespace of its own, restarted here.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.faults import one_error_line
from tests.support.private_engine import PrivateEngine
from tests.support.stacks import RIG_IMAGES, Project, SdkWorker

pytestmark = pytest.mark.e2e

# What one restart did, for bench/reliability.py (at $HATCHET_LOCAL_RESTART_OUT).
RESTART: dict[str, list[float]] = {}
# Postgres's system identifier: made by initdb, so a new data volume gets a new one.
IDENTITY = "SELECT system_identifier FROM pg_control_system()"


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    out = os.environ.get("HATCHET_LOCAL_RESTART_OUT")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(RESTART, indent=2) + "\n")


@dataclass
class Stacks:
    engine: PrivateEngine
    running: list[Project]
    stopped: Project
    tokens: dict[str, str]  # stack -> token before the restart
    identities: dict[str, str]  # stack -> Postgres system identifier before the restart
    workflows: dict[str, str]  # stack -> a workflow an SDK worker registered before


def psql(engine: PrivateEngine, stack: str, query: str) -> str:
    result = engine.docker("exec", f"{stack}-postgres-1", "psql", "-U", "hatchet", "-d",
                           "hatchet", "-tAc", query)  # fmt: skip
    return result.stdout.strip()


@pytest.fixture(scope="module")
def stacks(
    rig_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stacks]:
    """Three `--profile ci` stacks on a private engine: two running, each with a workflow an
    SDK worker registered, and one taken down."""
    root = tmp_path_factory.mktemp("restart")
    with PrivateEngine([RIG_IMAGES["postgres"], RIG_IMAGES["hatchet-lite"]]) as engine:
        projects = []
        for letter in "abc":
            name = f"dr{letter}-{uuid.uuid4().hex[:6]}"  # the stack is named after its folder
            projects.append(Project(root / name, root / "state", f"stack: {name}\nprofile: ci\n",
                                    prefix=engine.prefix,
                                    environ={"DOCKER_HOST": engine.docker_host}))  # fmt: skip
        try:
            tokens, identities, workflows = {}, {}, {}
            for project in projects:
                project.hl("up")
            for project in projects[:2]:
                stack = project.dir.name
                workflow = f"before{uuid.uuid4().hex[:6]}"
                assert project.run_task(workflow)["echo"] == "HELLO"
                tokens[stack] = project.env_file()["HATCHET_CLIENT_TOKEN"]
                identities[stack] = psql(engine, stack, IDENTITY)
                workflows[stack] = workflow
            projects[2].hl("down")
            yield Stacks(engine, projects[:2], projects[2], tokens, identities, workflows)
        finally:
            for project in projects:
                project.hl("destroy", "--yes", ok=False)


def ls(project: Project) -> dict[str, str]:
    rows = json.loads(project.hl("ls", "--output", "json").stdout)
    return {row["name"]: row["state"] for row in rows}


def test_while_no_engine_answers_status_and_ls_say_so_in_one_line(stacks: Stacks) -> None:
    project = stacks.running[0]
    assert ls(project) == {stacks.running[0].dir.name: "running",
                           stacks.running[1].dir.name: "running",
                           stacks.stopped.dir.name: "stopped"}  # fmt: skip
    stacks.engine.stop()
    try:
        for args in (("status",), ("ls",), ("up",)):
            run = project.hl(*args, ok=False)
            assert run.returncode == 3, run.stderr
            line = one_error_line(run.stderr)
            assert line.startswith(f"error: no Docker engine answers ({stacks.engine.docker_host})")
            assert run.stdout == ""
    finally:
        stacks.engine.start()


def test_after_the_restart_the_running_stacks_come_back_with_data_and_token(
    stacks: Stacks,
) -> None:
    """The engine restarts the running stacks' containers by itself (restart policy); `up`
    finds them, keeps the token (the settings file is not rewritten with another) and the
    data; the stopped stack stays stopped."""
    assert stacks.engine.starts >= 2, "the engine was not restarted"
    project = stacks.running[0]
    states = ls(project)
    assert states[stacks.stopped.dir.name] == "stopped"
    for running in stacks.running:
        assert states[running.dir.name] in ("running", "partial")  # partial: still starting
        status = running.status()
        assert status["state"] in ("running", "partial"), status
        started = time.monotonic()
        up = json.loads(running.hl("up", "--output", "json").stdout)
        RESTART.setdefault("up_seconds", []).append(round(time.monotonic() - started, 1))
        stack = running.dir.name
        assert up["token_reused"], up
        assert running.env_file()["HATCHET_CLIENT_TOKEN"] == stacks.tokens[stack]
        assert psql(stacks.engine, stack, IDENTITY) == stacks.identities[stack]
        names = psql(stacks.engine, stack, 'SELECT name FROM "Workflow"').split()
        assert stacks.workflows[stack] in names
        assert running.status()["state"] == "running"
    assert ls(project)[stacks.stopped.dir.name] == "stopped"
    label = f"label=io.hatchet-local.stack={stacks.stopped.dir.name}"
    assert stacks.engine.docker("ps", "-aq", "--filter", label).stdout == ""


def stale_assignments(engine: PrivateEngine, stack: str) -> list[str]:
    """The tenants' partition assignments that point at no partition of the running engine
    (one created before its container started): such a tenant's tasks wait for the engine's
    one-minute sweep of dead partitions."""
    started = engine.docker("inspect", "--format", "{{.State.StartedAt}}",
                            f"{stack}-hatchet-lite-1").stdout.strip()  # fmt: skip
    query = " UNION ALL ".join(
        f"""SELECT t.slug || ' {kind}' FROM "Tenant" t LEFT JOIN "{table}" p
            ON p.id = t."{column}" WHERE t."{column}" IS NOT NULL
            AND (p.id IS NULL OR p."createdAt" < '{started}'::timestamptz)"""
        for kind, table, column in (
            ("controller", "ControllerPartition", "controllerPartitionId"),
            ("scheduler", "SchedulerPartition", "schedulerPartitionId"),
            ("worker", "TenantWorkerPartition", "workerPartitionId"),
        )
    )
    return psql(engine, stack, query).splitlines()


def test_after_the_restart_a_task_can_be_dispatched_at_once(stacks: Stacks) -> None:
    """`up` returns when a task can be dispatched: no tenant is left on a partition of the
    engine that died with the restart (it would wait for the one-minute sweep)."""
    stale = {}
    for running in stacks.running:
        running.hl("up")
        stale[running.dir.name] = stale_assignments(stacks.engine, running.dir.name)
        # The first task, timed for bench/reliability.py (asserted on below, not by its time).
        worker = SdkWorker(running.dir, f"after{uuid.uuid4().hex[:6]}", prefix=running.prefix)
        worker.start()
        try:
            started = time.monotonic()
            assert worker.run_task("after")["echo"] == "AFTER"
            seconds = round(time.monotonic() - started, 1)
            RESTART.setdefault("first_task_seconds", []).append(seconds)
        finally:
            worker.stop()
    assert stale == {running.dir.name: [] for running in stacks.running}
