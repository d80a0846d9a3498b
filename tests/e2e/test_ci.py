"""A CI job's view: one step brings a stack up and hands it on; nothing leaks, failures talk."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support.stacks import (
    HATCHET_LOCAL,
    NOTHING,
    RIG_IMAGES,
    Project,
    clean_env,
    destroy_every_stack,
    labelled,
    run_sdk_task,
)

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_a_github_job_gets_the_settings_and_the_token_stays_masked(
    rig_images: dict[str, str], tmp_path: Path
) -> None:
    stack = f"job-{uuid.uuid4().hex[:6]}"
    project = Project(tmp_path / "repo", tmp_path / "state", f"stack: {stack}\n")
    github_env, github_output = tmp_path / "github_env", tmp_path / "github_output"
    github_env.write_text("EARLIER_STEP=1\n")
    env = project.env(CI="true", GITHUB_ACTIONS="true", GITHUB_ENV=str(github_env),
                      GITHUB_OUTPUT=str(github_output))  # fmt: skip
    try:
        up = subprocess.run(
            [str(HATCHET_LOCAL), "up", "--output", "github", "--profile", "ci", "--ephemeral"],
            cwd=project.dir, env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        assert up.returncode == 0, up.stderr
        exported = dict(line.split("=", 1) for line in github_env.read_text().splitlines())
        token = exported["HATCHET_CLIENT_TOKEN"]
        assert exported["EARLIER_STEP"] == "1"
        outputs = dict(line.split("=", 1) for line in github_output.read_text().splitlines())
        assert outputs["dashboard-url"] == exported["HATCHET_CLIENT_SERVER_URL"]
        assert outputs["grpc-address"] == exported["HATCHET_CLIENT_HOST_PORT"]
        assert outputs["stack"] == stack

        printed = (up.stdout + up.stderr).splitlines()
        assert printed.index(f"::add-mask::{token}") == up.stdout.splitlines().index(
            f"::add-mask::{token}"
        )
        assert [line for line in printed if token in line] == [f"::add-mask::{token}"]
        assert up.stdout.splitlines()[0].startswith("::add-mask::")

        # A later step: a fresh process with nothing but what GITHUB_ENV carried.
        later = tmp_path / "later-step"
        later.mkdir()
        name = f"probe-{uuid.uuid4().hex[:6]}"
        assert run_sdk_task(later, clean_env(**exported), name) == {"echo": "HELLO", "task": name}
        services = project.status()["services"]
        assert set(services) == {"postgres", "hatchet-lite"}  # the ci profile
        down = subprocess.run([str(HATCHET_LOCAL), "down", "--volumes", "--yes"],
                              cwd=project.dir, env=env, capture_output=True, text=True,
                              check=False)  # fmt: skip
        assert down.returncode == 0, down.stderr
        assert labelled(f"io.hatchet-local.stack={stack}")["containers"] == []
    finally:
        project.destroy()


def test_a_killed_ephemeral_stack_is_reaped_by_the_next_up(
    rig_images: dict[str, str], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    killed = f"killed-{uuid.uuid4().hex[:6]}"
    victim = Project(tmp_path / "killed-job", state, f"stack: {killed}\nprofile: ci\n")
    survivor = f"next-{uuid.uuid4().hex[:6]}"
    following = Project(tmp_path / "next-job", state, f"stack: {survivor}\nprofile: ci\n")
    job = subprocess.Popen(
        [str(HATCHET_LOCAL), "up", "--ephemeral", "--ttl", "1s"], cwd=victim.dir,
        env=victim.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not labelled(f"io.hatchet-local.stack={killed}")["containers"]:
            assert time.monotonic() < deadline, "the first up never started a container"
            assert job.poll() is None, "the first up ended before it could be killed"
            time.sleep(0.2)
        os.killpg(job.pid, signal.SIGKILL)  # what a cancelled CI job does to its process tree
        job.wait()
        assert labelled(f"io.hatchet-local.stack={killed}")["volumes"]

        up = following.hl("up")
        assert f"removed expired stack {killed}" in up.stderr
        assert labelled(f"io.hatchet-local.stack={killed}") == NOTHING
        listed = [row["name"] for row in json.loads(following.hl("ls", "-o", "json").stdout)]
        assert listed == [survivor]
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
        following.destroy()
        victim.destroy()
    assert labelled(f"io.hatchet-local.stack={survivor}") == NOTHING


def test_a_failing_engine_is_reported_with_its_logs(
    rig_images: dict[str, str], tmp_path: Path
) -> None:
    broken = f"hatchet-local-test/broken-lite:{uuid.uuid4().hex[:8]}"
    context = tmp_path / "image"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {RIG_IMAGES['hatchet-lite']}\n"
        "RUN printf '#!/bin/sh\\necho \"broken engine for a test\" >&2\\nexit 3\\n' > /hatchet-lite"
        " && chmod +x /hatchet-lite\n"
    )
    subprocess.run(["docker", "build", "-q", "-t", broken, str(context)], check=True,
                   capture_output=True, env={**os.environ, "DOCKER_BUILDKIT": "0"})  # fmt: skip
    stack = f"broken-{uuid.uuid4().hex[:6]}"
    config = f"stack: {stack}\nprofile: ci\ntimeouts: {{engine: 60}}\n"
    project = Project(tmp_path / "app", tmp_path / "state", config)
    (project.dir / "hatchet-local.yaml").write_text(
        (project.dir / "hatchet-local.yaml").read_text().replace(RIG_IMAGES["hatchet-lite"], broken)
    )
    logs = tmp_path / "logs"
    try:
        failed = subprocess.run(
            [str(HATCHET_LOCAL), "up", "--logs-dir", str(logs)], cwd=project.dir,
            env=project.env(GITHUB_ACTIONS="true"), capture_output=True, text=True, timeout=600,
            check=False,
        )  # fmt: skip
        assert failed.returncode == 6, failed.stderr
        assert "Traceback" not in failed.stderr
        assert "!! engine ready" in failed.stderr
        assert "error: engine failed after" in failed.stderr
        assert "::group::last log lines of hatchet-lite:" in failed.stderr
        assert "broken engine for a test" in failed.stderr
        assert "broken engine for a test" in (logs / "hatchet-lite.log").read_text()
        assert (logs / "postgres.log").read_text()
    finally:
        project.hl("destroy", "--yes", ok=False)
        subprocess.run(["docker", "rmi", "-f", broken], capture_output=True, check=False)
    assert labelled(f"io.hatchet-local.stack={stack}") == NOTHING


def test_the_pytest_plugin_gives_a_session_its_own_stack(
    rig_images: dict[str, str], tmp_path: Path
) -> None:
    suite = tmp_path / "suite"
    shutil.copytree(EXAMPLES / "pytest", suite)
    project = Project(suite, tmp_path / "state")  # writes the rig's hatchet-local.yaml
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
            cwd=suite, env=project.env(), capture_output=True, text=True, timeout=900,
            check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert "1 passed" in run.stdout
        assert json.loads(project.hl("ls", "-o", "json").stdout) == []
        assert not (suite / ".pytest-hatchet").exists()
    finally:
        destroy_every_stack(project.state)  # the plugin names its stack itself
