"""Several isolated stacks on one host: parallel start, own ports, own tokens, reset, cleanup."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support.stacks import (
    HATCHET_LOCAL,
    NOTHING,
    Project,
    free_port,
    labelled,
    tenant_get,
    workflow_names,
)

pytestmark = pytest.mark.e2e


def container_ids(stack: str) -> set[str]:
    out = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=io.hatchet-local.stack={stack}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return set(out.split())


def test_three_stacks_side_by_side_and_a_reset_of_one(
    rig_images: dict[str, str], tmp_path: Path
) -> None:
    state = tmp_path / "state"  # one host, one registry
    projects = [Project(tmp_path / f"checkout-{n}", state) for n in range(3)]
    names: list[str] = []
    try:
        starts = [
            subprocess.Popen([str(HATCHET_LOCAL), "up"], cwd=p.dir, env=p.env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for p in projects
        ]  # fmt: skip
        for start in starts:
            _, err = start.communicate(timeout=900)
            assert start.returncode == 0, err
        names = [p.status()["stack"] for p in projects]
        assert len(set(names)) == 3

        settings = [p.env_file() for p in projects]
        ports = [s["HATCHET_CLIENT_SERVER_URL"] for s in settings] + [
            s["HATCHET_CLIENT_HOST_PORT"] for s in settings
        ]
        assert len(set(ports)) == 6

        listed = {row["name"]: row for row in json.loads(projects[0].hl("ls", "-o", "json").stdout)}
        for project, name in zip(projects, names, strict=True):
            assert listed[name]["state"] == "running"
            assert listed[name]["directory"] == str(project.dir)

        # Each directory's token opens its own stack and no other.
        for mine in settings:
            for other in settings:
                expected = 200 if other is mine else 403
                assert tenant_get(other, mine["HATCHET_CLIENT_TOKEN"]) == expected
        probes = []
        for project in projects:
            probes.append(f"probe-{uuid.uuid4().hex[:6]}")
            assert project.run_task(probes[-1]) == {"echo": "HELLO", "task": probes[-1]}

        # Reset the first with a new token: the old one dies, the new one works, the others
        # are untouched. (A plain reset keeps the token: tests/e2e/test_snapshots.py.)
        untouched = {name: container_ids(name) for name in names[1:]}
        old_token = settings[0]["HATCHET_CLIENT_TOKEN"]
        projects[0].hl("reset", "--new-token", "--yes")
        new_settings = projects[0].env_file()
        assert new_settings["HATCHET_CLIENT_SERVER_URL"] == settings[0]["HATCHET_CLIENT_SERVER_URL"]
        assert new_settings["HATCHET_CLIENT_TOKEN"] != old_token
        assert tenant_get(new_settings, old_token) == 403
        assert tenant_get(new_settings, new_settings["HATCHET_CLIENT_TOKEN"]) == 200
        assert probes[0] not in workflow_names(new_settings)  # the data went with the reset
        assert probes[1] in workflow_names(settings[1])
        name = f"probe-{uuid.uuid4().hex[:6]}"
        assert projects[0].run_task(name) == {"echo": "HELLO", "task": name}
        for other_stack, ids in untouched.items():
            assert container_ids(other_stack) == ids
        for other in settings[1:]:
            assert tenant_get(other, other["HATCHET_CLIENT_TOKEN"]) == 200
    finally:
        for project in projects:
            project.hl("destroy", "--yes", ok=False)
    for name in names:
        assert labelled(f"io.hatchet-local.stack={name}") == NOTHING
    assert json.loads(projects[0].hl("ls", "-o", "json").stdout) == []


def test_a_taken_port_stops_up_before_anything_starts(
    rig_images: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    stack = f"port-{uuid.uuid4().hex[:6]}"
    project = Project(tmp_path / "app", tmp_path / "state", f"stack: {stack}\n")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "http.server did not start"
                time.sleep(0.2)
        failed = project.hl("up", "--dashboard-port", str(port), ok=False)
        assert failed.returncode == 4
        assert "Traceback" not in failed.stderr
        (message,) = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
        assert message.startswith(f"error: the dashboard port {port} of stack {stack} is taken: ")
        assert f"pid {server.pid} (" in message and "http.server" in message
        assert message.endswith("listens on it; stop it, or choose another port with "
                                "--dashboard-port")  # fmt: skip
        assert labelled(f"io.hatchet-local.stack={stack}") == NOTHING
    finally:
        server.kill()
        server.wait()
        project.hl("destroy", "--yes", ok=False)


def test_two_ups_of_one_stack_at_once_take_turns(
    rig_images: dict[str, str], tmp_path: Path
) -> None:
    stack = f"twice-{uuid.uuid4().hex[:6]}"
    project = Project(tmp_path / "app", tmp_path / "state", f"stack: {stack}\n")
    try:
        both = [
            subprocess.Popen([str(HATCHET_LOCAL), "up"], cwd=project.dir, env=project.env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]  # fmt: skip
        errors = []
        for start in both:
            _, err = start.communicate(timeout=900)
            assert start.returncode == 0, err
            errors.append(err)
        assert sum("waiting for another hatchet-local command" in err for err in errors) == 1
        settings = project.env_file()
        assert tenant_get(settings, settings["HATCHET_CLIENT_TOKEN"]) == 200
        assert project.status()["state"] == "running"
    finally:
        project.hl("destroy", "--yes", ok=False)
    assert labelled(f"io.hatchet-local.stack={stack}") == NOTHING
