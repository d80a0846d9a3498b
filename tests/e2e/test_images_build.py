"""Machines without a registry (this one has none): a pull stops with one line naming the
registry and the ways out; `images build` makes the images, keeps them while their recipe
holds, stands them in for `up`'s defaults, and builds hatchet-lite from a local Hatchet
checkout so that an engine patch runs in a full stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from hatchet_local.defaults import HATCHET_VERSION
from tests.support.clients import cache_dir
from tests.support.stacks import HATCHET_LOCAL, Project, labelled

# isort: split
import rig  # tests/e2e/images/rig.py, on sys.path through tests.support.stacks

pytestmark = pytest.mark.e2e

# The one line changed in the checkout, and what the running stack must then report.
PATCHED_VERSION = "v0.101.27-hatchet-local-e2e"
SOURCE_TAG = "e2e-source"


def hatchet_local(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HATCHET_LOCAL_", "HATCHET_CLIENT_"))
    }
    return subprocess.run(
        [str(HATCHET_LOCAL), *args], cwd=cwd, capture_output=True, text=True, timeout=3600,
        env={**base, "HATCHET_LOCAL_BUILD_CACHE": str(rig.CACHE), **env}, check=False,
    )  # fmt: skip


def image_id(ref: str) -> str:
    return subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip


@pytest.mark.parametrize(
    ("config", "image", "registry"),
    [
        ("images: {postgres: postgres:15.6}\n", "postgres:15.6", "docker.io"),
        # A version nobody built here: hatchet-lite falls back to the registry's image.
        ("hatchet_version: v0.101.26\nmessage_queue: postgres\n",
         "ghcr.io/hatchet-dev/hatchet/hatchet-lite:v0.101.26", "ghcr.io"),
    ],
)  # fmt: skip
def test_a_pull_without_a_registry_stops_with_one_line(
    rig_images: dict[str, str], tmp_path: Path, config: str, image: str, registry: str
) -> None:
    project = tmp_path / "app"
    project.mkdir()
    (project / "hatchet-local.yaml").write_text(f"stack: pull-{uuid.uuid4().hex[:6]}\n{config}")
    state = str(tmp_path / "state")
    up = hatchet_local(project, "up", HATCHET_LOCAL_STATE_DIR=state)
    lines = up.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert up.returncode == 5, up.stderr
    assert errors == [lines[-1]], up.stderr  # one line, the last, and nothing of compose's
    assert errors[0].startswith(f"error: cannot pull {image}: registry {registry} does not answer")
    for way_out in ("images build", "images load", "registry:", "pull_policy: never"):
        assert way_out in errors[0]
    assert "Interrupted" not in up.stderr and "Pulling" not in up.stderr
    name = yaml.safe_load((project / "hatchet-local.yaml").read_text())["stack"]
    assert labelled(f"io.hatchet-local.stack={name}")["containers"] == []
    assert hatchet_local(project, "destroy", "--yes", HATCHET_LOCAL_STATE_DIR=state).returncode == 0


def test_a_second_build_changes_nothing_and_up_uses_the_builds(
    rig_images: dict[str, str], tmp_path: Path
) -> None:
    before = {key: image_id(ref) for key, ref in rig_images.items()}
    again = hatchet_local(tmp_path, "images", "build", "--output", "json")
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["built"] == []
    assert result["images"] == {
        key: rig_images[key] for key in ("postgres", "rabbitmq", "hatchet-lite")
    }
    assert {key: image_id(ref) for key, ref in rig_images.items()} == before
    # With no configuration at all, `up`'s default images are these builds, never pulled.
    render = hatchet_local(tmp_path, "render", HATCHET_LOCAL_STATE_DIR=str(tmp_path / "state"))
    services = yaml.safe_load(render.stdout)["services"]
    pairs = [("postgres", "postgres"), ("rabbitmq", "rabbitmq"), ("migrate", "hatchet-lite"),
             ("hatchet-lite", "hatchet-lite")]  # fmt: skip
    for service, key in pairs:
        assert services[service]["image"] == rig_images[key]
        assert services[service]["pull_policy"] == "never"


@pytest.fixture(scope="module")
def patched_checkout() -> Path:
    """A Hatchet checkout (the pinned module's source) with one line changed: the version
    hatchet-lite reports. Kept at a fixed place so the build cache serves later runs."""
    info = subprocess.run(
        ["go", "mod", "download", "-json", f"{rig.MODULE}@{HATCHET_VERSION}"],
        capture_output=True, text=True, check=True, cwd=cache_dir(),
    ).stdout  # fmt: skip
    checkout = cache_dir() / "hatchet-checkout"
    if not (checkout / "go.mod").is_file():
        shutil.copytree(json.loads(info)["Dir"], checkout)
        for path in [checkout, *checkout.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    main = checkout / "cmd" / "hatchet-lite" / "main.go"
    text = main.read_text()
    original = 'var Version = "v0.1.0-alpha.0"'
    assert original in text or PATCHED_VERSION in text
    main.write_text(text.replace(original, f'var Version = "{PATCHED_VERSION}"'))
    return checkout


def test_build_from_a_local_checkout_runs_the_patch(
    rig_images: dict[str, str], patched_checkout: Path, tmp_path: Path
) -> None:
    build = hatchet_local(
        tmp_path, "images", "build", "--source", str(patched_checkout), "--tag", SOURCE_TAG
    )
    assert build.returncode == 0, build.stderr
    image = f"hatchet-local/hatchet-lite:{SOURCE_TAG}"
    assert f"hatchet-lite  {image}" in build.stdout
    assert f"HATCHET_LOCAL_IMAGES_HATCHET_LITE={image}" in build.stdout
    project = Project(tmp_path / "patched", tmp_path / "state")
    config = project.dir / "hatchet-local.yaml"
    config.write_text(config.read_text().replace(rig_images["hatchet-lite"], image))
    project.hl("up", "--profile", "ci")
    try:
        status = project.status()
        assert status["state"] == "running"
        version = httpx.get(f"{status['dashboard_url']}/api/v1/version", timeout=10).json()
        assert version == {"version": PATCHED_VERSION}
        name = f"patched-{uuid.uuid4().hex[:6]}"
        assert project.run_task(name) == {"echo": "HELLO", "task": name}
    finally:
        project.hl("down", "--volumes", "--yes")
