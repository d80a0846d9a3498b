"""Finding Compose v2, and remembering it while the files the search could find stay the
same."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import types
from pathlib import Path

import pytest

from hatchet_local import compose_discovery as discovery
from hatchet_local.compose_discovery import candidates_fingerprint, find_compose
from hatchet_local.console import Console
from hatchet_local.context import COMPOSE_FOUND, Context
from hatchet_local.errors import CommandFailed, DockerUnavailable
from tests.unit.fakes import FakeRunner

# --- find_compose ---------------------------------------------------------------------------

PLUGIN = ["docker", "compose"]
PACKAGED = ["/venv/lib/compose/docker-compose"]
STANDALONE = ["docker-compose"]


@pytest.fixture
def candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "_compose_candidates", lambda: [PLUGIN, PACKAGED, STANDALONE])


def script(
    runner: FakeRunner, base: list[str], version: str | None, bad_flag_exit: int = 1
) -> None:
    """How one candidate answers: `version` None means it is not there at all."""
    if version is None:
        runner.on(*base, returncode=1, stderr=f"{base[0]}: 'compose' is not a docker command.\n")
        return
    runner.on(*base, "version", "--short", stdout=f"{version}\n")
    runner.on(*base, "--no-such-flag", returncode=bad_flag_exit)


@pytest.mark.usefixtures("candidates")
def test_prefers_the_docker_compose_plugin() -> None:
    runner = FakeRunner()
    for base in (PLUGIN, PACKAGED, STANDALONE):
        script(runner, base, "2.29.7")
    assert find_compose(runner) == PLUGIN
    assert [call.argv for call in runner.calls] == [
        ("docker", "compose", "version", "--short"),
        ("docker", "compose", "--no-such-flag"),
    ]


@pytest.mark.usefixtures("candidates")
def test_accepts_a_v_prefixed_version() -> None:
    runner = FakeRunner()
    script(runner, PLUGIN, "v2.40.3")
    assert find_compose(runner) == PLUGIN


@pytest.mark.usefixtures("candidates")
def test_skips_compose_v1() -> None:
    runner = FakeRunner()
    script(runner, PLUGIN, None)
    runner.on(*PACKAGED, raises=CommandFailed("not found"))
    script(runner, STANDALONE, "1.29.2")
    with pytest.raises(DockerUnavailable):
        find_compose(runner)
    assert not runner.called("docker-compose", "--no-such-flag")


@pytest.mark.usefixtures("candidates")
def test_skips_a_wrapper_that_exits_0_on_a_bad_flag() -> None:
    runner = FakeRunner()
    script(runner, PLUGIN, None)
    script(runner, PACKAGED, "2.40.3", bad_flag_exit=0)
    script(runner, STANDALONE, "2.40.3")
    assert find_compose(runner) == STANDALONE
    assert runner.called(*PACKAGED, "--no-such-flag")


@pytest.mark.usefixtures("candidates")
def test_a_missing_binary_is_skipped() -> None:
    runner = FakeRunner()
    runner.on("docker", raises=CommandFailed("docker: command not found"))
    script(runner, PACKAGED, "2.40.3")
    assert find_compose(runner) == PACKAGED


@pytest.mark.usefixtures("candidates")
def test_no_compose_v2_at_all_is_docker_unavailable() -> None:
    runner = FakeRunner()
    script(runner, PLUGIN, None)
    runner.on(*PACKAGED, raises=CommandFailed("not found"))
    runner.on(*STANDALONE, raises=CommandFailed("not found"))
    with pytest.raises(DockerUnavailable) as info:
        find_compose(runner)
    assert info.value.exit_code == 3
    assert "Compose v2 not found" in info.value.message
    assert "Compose v1 is not supported" in info.value.message
    assert len(runner.calls) == 3


def test_candidates_include_the_packaged_binary_when_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    package = tmp_path / "compose"
    package.mkdir()
    (package / "docker-compose").write_text("#!/bin/sh\n")
    spec = types.SimpleNamespace(origin=str(package / "__init__.py"))
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: spec if name == "compose" else None
    )
    assert discovery._compose_candidates() == [
        ["docker", "compose"],
        [str(package / "docker-compose")],
        ["docker-compose"],
    ]


def test_candidates_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert discovery._compose_candidates() == [["docker", "compose"], ["docker-compose"]]


# --- remembering the answer ----------------------------------------------------------------


@pytest.fixture
def docker_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A docker CLI config folder of the test's own, with its `cli-plugins` folder."""
    folder = tmp_path / "docker-config"
    (folder / "cli-plugins").mkdir(parents=True)
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    return folder


def plugin_runner() -> FakeRunner:
    runner = FakeRunner()
    script(runner, PLUGIN, "2.29.7")
    return runner


@pytest.mark.usefixtures("candidates", "docker_config")
def test_the_answer_is_kept_and_reused_while_the_candidates_stay_the_same(
    tmp_path: Path,
) -> None:
    memory = tmp_path / "compose.json"
    runner = plugin_runner()
    assert find_compose(runner, memory) == PLUGIN
    assert len(runner.calls) == 2
    assert memory.stat().st_mode & 0o777 == 0o600
    assert json.loads(memory.read_text())["argv"] == PLUGIN
    runner.forget()
    assert find_compose(runner, memory) == PLUGIN
    assert runner.calls == []  # no process at all


@pytest.mark.usefixtures("candidates")
def test_a_plugin_installed_upgraded_or_removed_means_searching_again(
    tmp_path: Path, docker_config: Path
) -> None:
    memory = tmp_path / "compose.json"
    runner = plugin_runner()
    plugin = docker_config / "cli-plugins" / "docker-compose"
    find_compose(runner, memory)
    for change in (
        lambda: plugin.write_text("#!/bin/sh\n"),  # installed
        lambda: plugin.write_text("#!/bin/sh\n# 2.40\n"),  # upgraded in place
        plugin.unlink,  # removed
    ):
        change()
        runner.forget()
        find_compose(runner, memory)
        assert runner.called("docker", "compose", "version", "--short")
        runner.forget()
        find_compose(runner, memory)
        assert runner.calls == []  # and kept again


def test_a_folder_config_json_adds_for_plugins_counts(
    monkeypatch: pytest.MonkeyPatch, docker_config: Path, tmp_path: Path
) -> None:
    extra = tmp_path / "desktop-plugins"
    extra.mkdir()
    (docker_config / "config.json").write_text(json.dumps({"cliPluginsExtraDirs": [str(extra)]}))
    before = candidates_fingerprint()
    (extra / "docker-compose").write_text("#!/bin/sh\n")
    assert candidates_fingerprint() != before


def test_a_docker_cli_moved_on_path_counts(
    monkeypatch: pytest.MonkeyPatch, docker_config: Path, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    before = candidates_fingerprint()
    docker = bin_dir / "docker"
    docker.write_text("#!/bin/sh\n")
    docker.chmod(0o755)
    assert candidates_fingerprint() != before


@pytest.mark.usefixtures("candidates", "docker_config")
@pytest.mark.parametrize("kept", ["not json", "[]", '{"fingerprint": "x", "argv": []}',
                                  '{"argv": "docker compose"}'])  # fmt: skip
def test_a_damaged_memory_is_searched_again_and_replaced(tmp_path: Path, kept: str) -> None:
    memory = tmp_path / "compose.json"
    memory.write_text(kept)
    runner = plugin_runner()
    assert find_compose(runner, memory) == PLUGIN
    assert len(runner.calls) == 2
    assert json.loads(memory.read_text())["argv"] == PLUGIN


@pytest.mark.usefixtures("candidates", "docker_config")
def test_without_a_state_folder_nothing_is_written(tmp_path: Path) -> None:
    memory = tmp_path / "state" / "compose.json"
    assert find_compose(plugin_runner(), memory) == PLUGIN
    assert not memory.parent.exists()


@pytest.mark.usefixtures("candidates", "docker_config")
def test_no_compose_found_keeps_nothing(tmp_path: Path) -> None:
    memory = tmp_path / "compose.json"
    runner = FakeRunner()
    runner.on("docker", raises=CommandFailed("docker: command not found"))
    runner.on("docker-compose", raises=CommandFailed("not found"))
    runner.on(*PACKAGED, raises=CommandFailed("not found"))
    with pytest.raises(DockerUnavailable):
        find_compose(runner, memory)
    assert not memory.exists()


@pytest.mark.usefixtures("candidates", "docker_config")
def test_each_command_after_the_first_reuses_what_the_state_folder_keeps(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    runner = plugin_runner()

    def command() -> list[str]:  # each command builds its own Context
        ctx = Context(runner=runner, console=Console(io.StringIO()), http=None,  # type: ignore[arg-type]
                      state_root=state)  # fmt: skip
        return ctx.compose_base()

    assert command() == PLUGIN
    assert len(runner.calls) == 2
    assert command() == PLUGIN
    assert len(runner.calls) == 2
    assert (state / COMPOSE_FOUND).is_file()
