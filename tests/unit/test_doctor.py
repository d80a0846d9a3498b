"""doctor: each check passes, warns or fails with a fix; over a scripted docker."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hatchet_local.config import load_config
from hatchet_local.docker_cli import CliEngine
from hatchet_local.doctor import diagnose, preflight
from tests.unit.fakes import FakeRunner


def engine_info(memory: int, now: datetime) -> str:
    """`docker info --format '{{.MemTotal}} {{.SystemTime}}'`"""
    return f"{memory} {now.isoformat().replace('+00:00', 'Z')}\n"


def healthy_docker(now: datetime) -> FakeRunner:
    runner = FakeRunner()
    runner.on("docker", "version", "--format", "{{.Server.Version}}", stdout="27.3.1\n")
    runner.on("docker", "version", "--format", "{{.Server.APIVersion}}", stdout="1.47\n")
    runner.on("docker", "context", "show", stdout="orbstack\n")
    runner.on("version", "--short", stdout="2.29.7\n")
    runner.on("--no-such-flag", returncode=1)
    runner.on("docker", "info", "--format", stdout=engine_info(8 * 1024**3, now))
    runner.on("docker", "image", "inspect", stdout="sha256:1\n")
    return runner


def statuses(tmp_path: Path, runner: FakeRunner, **environ: str) -> dict[str, str]:
    config = load_config(tmp_path, environ=environ)
    return {f.check: f.status for f in diagnose(config, runner, tmp_path / "state")}


def test_a_ready_machine_passes_every_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    runner = healthy_docker(datetime.now(UTC))
    config = load_config(tmp_path, environ={})
    findings = diagnose(config, runner, tmp_path / "state")
    assert [(f.check, f.status) for f in findings] == [
        ("docker engine", "pass"), ("compose v2", "pass"), ("memory", "pass"), ("disk", "pass"),
        ("ports", "pass"), ("images", "pass"), ("clock", "pass"),
    ]  # fmt: skip
    assert findings[0].detail == "27.3.1 (API 1.47) at context orbstack"


def test_no_engine_fails_at_once_with_the_fix(tmp_path: Path) -> None:
    runner = FakeRunner()
    runner.on("docker", "version", returncode=1, stderr="Cannot connect to the Docker daemon\n")
    config = load_config(tmp_path, environ={})
    (finding,) = diagnose(config, runner, tmp_path / "state")
    assert (finding.check, finding.status) == ("docker engine", "fail")
    assert "start Docker (Docker Desktop, OrbStack, Colima" in finding.fix


def test_missing_images_fail_only_when_they_cannot_be_pulled(tmp_path: Path) -> None:
    runner = healthy_docker(datetime.now(UTC))
    runner.on("docker", "image", "inspect", returncode=1)
    assert statuses(tmp_path, runner)["images"] == "warn"
    assert statuses(tmp_path, runner, HATCHET_LOCAL_PULL_POLICY="never")["images"] == "fail"


def test_small_memory_and_a_skewed_clock_warn(tmp_path: Path) -> None:
    skewed = datetime.now(UTC) - timedelta(minutes=5)
    runner = healthy_docker(skewed)
    runner.on("docker", "info", "--format", stdout=engine_info(1024**3, skewed))
    found = statuses(tmp_path, runner)
    assert (found["memory"], found["clock"]) == ("warn", "warn")


def test_preflight_reports_only_what_is_not_a_pass(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    assert preflight(CliEngine(healthy_docker(now)), tmp_path) == []
    runner = healthy_docker(now)
    runner.on("docker", "info", "--format", stdout=engine_info(1024**3, now))
    (finding,) = preflight(CliEngine(runner), tmp_path)
    assert (finding.check, finding.status) == ("memory", "warn")
    assert finding.fix == "give Docker at least 2 GiB for a stack"


def test_a_configured_port_held_by_a_process_fails(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        runner = healthy_docker(datetime.now(UTC))
        runner.on("docker", "ps", "--format")
        config = load_config(tmp_path, environ={"HATCHET_LOCAL_PORTS_DASHBOARD": str(port)})
        ports = [f for f in diagnose(config, runner, tmp_path / "state") if f.check == "ports"]
    assert ports[0].status == "fail"
    assert ports[0].detail.startswith(f"dashboard port {port} is taken: pid ")
