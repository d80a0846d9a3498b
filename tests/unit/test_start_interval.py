"""Healthchecks probe every 250 ms while a service starts, on engines that take it: Docker
Engine API 1.44 and later (Compose refuses `start_interval` on older ones)."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
import yaml

from hatchet_local.config import load_config
from hatchet_local.console import Console
from hatchet_local.context import Context
from hatchet_local.defaults import DEFAULT_IMAGES
from hatchet_local.render import StackSpec, render_stack
from hatchet_local.stack import preview
from tests.unit.fakes import FakeRunner


def spec(start_interval: bool) -> StackSpec:
    return StackSpec(stack="s", images=DEFAULT_IMAGES, message_queue="rabbitmq", dashboard=True,
                     dashboard_port=18080, grpc_port=17077, pull_policy="missing",
                     start_interval=start_interval)  # fmt: skip


def healthchecks(rendered: str) -> dict[str, dict[str, object]]:
    services = yaml.safe_load(rendered)["services"]
    return {name: s["healthcheck"] for name, s in services.items() if "healthcheck" in s}


def test_start_interval_is_rendered_only_when_asked() -> None:
    assert set(healthchecks(render_stack(spec(True)))) == {"postgres", "rabbitmq", "hatchet-lite"}
    for check in healthchecks(render_stack(spec(True))).values():
        assert check["start_interval"] == "250ms"
    for check in healthchecks(render_stack(spec(False))).values():
        assert "start_interval" not in check


@pytest.mark.parametrize(
    ("api", "rendered"), [("1.44", True), ("1.47", True), ("1.41", False), ("", False)]
)
def test_the_engine_decides(tmp_path: Path, api: str, rendered: bool) -> None:
    runner = FakeRunner()
    runner.on("docker", "image", "inspect", returncode=1, stderr="Error: No such image\n")
    if api:
        runner.on("docker", "version", "--format", "{{.Server.APIVersion}}", stdout=api + "\n")
    else:  # no engine answers: rendered without
        runner.on("docker", "version", returncode=1, stderr="Cannot connect to the Docker daemon")
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    ctx = Context(runner=runner, console=Console(io.StringIO()), http=http,
                  state_root=tmp_path / "state")  # fmt: skip
    config = load_config(tmp_path, environ={"HATCHET_LOCAL_STACK": "s"})
    checks = healthchecks(preview(config, ctx))
    assert all(("start_interval" in check) == rendered for check in checks.values())
