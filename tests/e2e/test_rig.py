"""The rig proves itself with plain `docker compose` and no hatchet-local code.

Postgres + RabbitMQ + hatchet-lite from the stand-in images, RabbitMQ as the message
queue; wait for /api/ready; mint a token with `hatchet-admin token create`; run one
task through the official hatchet-sdk. This is also the floor the benchmarks compare
hatchet-local against.
"""

from __future__ import annotations

import secrets
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from hatchet_local.defaults import DEFAULT_TENANT_ID
from tests.support.stacks import (
    E2E,
    NOTHING,
    clean_env,
    compose_command,
    free_port,
    labelled,
    run_sdk_task,
    wait_http_ok,
)

pytestmark = pytest.mark.e2e


def test_rig_stack_runs_an_sdk_task(rig_images: dict[str, str], tmp_path: Path) -> None:
    project = f"hl-rig-{uuid.uuid4().hex[:8]}"
    dashboard, grpc = free_port(), free_port()
    env = clean_env(
        RIG_PROJECT=project,
        RIG_POSTGRES_IMAGE=rig_images["postgres"],
        RIG_RABBITMQ_IMAGE=rig_images["rabbitmq"],
        RIG_HATCHET_LITE_IMAGE=rig_images["hatchet-lite"],
        RIG_POSTGRES_PASSWORD=secrets.token_urlsafe(18),
        RIG_RABBITMQ_PASSWORD=secrets.token_urlsafe(18),
        RIG_DASHBOARD_PORT=str(dashboard),
        RIG_GRPC_PORT=str(grpc),
    )
    compose = [*compose_command(), "-f", str(E2E / "rig-compose.yaml")]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*compose, *args], env=env, capture_output=True, text=True, check=False
        )

    try:
        up = run("up", "--detach", "--wait", "--wait-timeout", "300")
        assert up.returncode == 0, f"compose up failed:\n{up.stderr}\n{run('logs').stdout[-4000:]}"
        wait_http_ok(f"http://127.0.0.1:{dashboard}/api/ready", timeout=60)

        page = httpx.get(f"http://127.0.0.1:{dashboard}/", timeout=10)
        assert page.status_code == 200
        assert '<div id="root">' in page.text, "hatchet-lite serves no dashboard"

        mint = run(
            "exec",
            "-T",
            "hatchet-lite",
            "/hatchet-admin",
            "token",
            "create",
            "--config",
            "/config",
            "--tenant-id",
            DEFAULT_TENANT_ID,
            "--name",
            "rig",
        )
        assert mint.returncode == 0, mint.stderr
        token = mint.stdout.strip().splitlines()[-1]
        assert token.startswith("ey")

        name = f"rig-probe-{uuid.uuid4().hex[:6]}"
        sdk_env = clean_env(HATCHET_CLIENT_TOKEN=token, HATCHET_CLIENT_TLS_STRATEGY="none")
        assert run_sdk_task(tmp_path, sdk_env, name) == {"echo": "HELLO", "task": name}
    finally:
        down = run("down", "--volumes", "--remove-orphans")
        leftovers = labelled(f"com.docker.compose.project={project}")
    assert down.returncode == 0, down.stderr
    assert leftovers == NOTHING
