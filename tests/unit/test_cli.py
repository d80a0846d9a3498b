"""The command line: options, one-line errors, exit codes, and nothing run when refusing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hatchet_local import __version__, cli
from hatchet_local.context import Context
from hatchet_local.defaults import DEFAULT_TENANT_ID, HATCHET_VERSION
from hatchet_local.errors import ConfigError
from tests.unit.fakes import FakeHatchet, FakeRunner
from tests.unit.harness import Cli

TOKEN_1 = "eyJhbGciOiJFUzI1NiJ9.token-1.signature"
VERSION_LINE = f"hatchet-local {__version__} (Hatchet {HATCHET_VERSION})"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> Path:
    """An empty project directory as the cwd, and an environment with only our settings."""
    path = tmp_path / "project"
    path.mkdir()
    monkeypatch.chdir(path)
    for name in list(os.environ):
        if name.startswith("HATCHET_LOCAL_") or name in ("DOCKER_HOST", "DOCKER_CONTEXT"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HATCHET_LOCAL_STACK", "unit")
    monkeypatch.setenv("HATCHET_LOCAL_STATE_DIR", str(state_dir))
    return path


def run_main(*args: str, cwd: Path, state_dir: Path) -> subprocess.CompletedProcess[str]:
    """`hatchet-local ARGS` as a real process, for its exit code and streams."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HATCHET_LOCAL_")}
    env |= {"HATCHET_LOCAL_STACK": "unit", "HATCHET_LOCAL_STATE_DIR": str(state_dir)}
    return subprocess.run(
        [sys.executable, "-c", "from hatchet_local.cli import main; main()", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(process: subprocess.CompletedProcess[str], code: int, line: str) -> None:
    assert process.returncode == code, process.stderr
    assert process.stderr == f"error: {line}\n"
    assert process.stdout == ""


# --- version --------------------------------------------------------------------------------


def test_version() -> None:
    result = CliRunner().invoke(cli.app, ["version"])
    assert result.exit_code == 0
    assert result.stdout == f"{VERSION_LINE}\n"


def test_version_as_a_process(tmp_path: Path, state_dir: Path) -> None:
    process = run_main("version", cwd=tmp_path, state_dir=state_dir)
    assert (process.returncode, process.stdout, process.stderr) == (0, f"{VERSION_LINE}\n", "")


# --- one-line errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "choices"),
    [
        (["status", "--output", "yaml"], "'text', 'json'"),
        (["env", "-o", "yaml"], "'dotenv', 'shell', 'json', 'github'"),
    ],
)
def test_bad_output_value_in_process(
    project: Path,
    no_context: tuple[Cli, list[str]],
    args: list[str],
    choices: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runner, built = no_context
    assert runner.main_exit(monkeypatch, *args) == 2
    assert f"'yaml' is not one of {choices}." in capsys.readouterr().err
    assert built == []


def test_bad_output_value_is_one_line_and_exit_2(project: Path, state_dir: Path) -> None:
    process = run_main("up", "--output", "yaml", cwd=project, state_dir=state_dir)
    assert process.returncode == 2
    assert process.stderr.startswith(
        "error: Invalid value for '--output' / '-o': 'yaml' is not one of "
        "'text', 'json', 'env', 'github'. (see `"
    )
    assert process.stderr.endswith(" up --help`)\n")  # the program's name, then the command
    assert process.stderr.count("\n") == 1
    assert process.stdout == ""
    assert not state_dir.exists()


def test_malformed_config_file_names_the_file(
    project: Path, state_dir: Path, no_context: tuple[Cli, list[str]]
) -> None:
    runner, built = no_context
    config = project / "hatchet-local.yaml"
    config.write_text("stack: [unclosed\n")
    result = runner.invoke("status")
    assert isinstance(result.exception, ConfigError)
    assert result.exception.message.startswith(f"{config}: line 2: invalid YAML")
    assert built == []

    process = run_main("status", cwd=project, state_dir=state_dir)
    assert process.returncode == 2
    assert process.stderr.startswith(f"error: {config}: line 2: invalid YAML (")
    assert process.stderr.count("\n") == 1
    assert "Traceback" not in process.stderr


# --- down -----------------------------------------------------------------------------------


def test_down_volumes_without_yes_and_without_a_tty_refuses(
    project: Path, no_context: tuple[Cli, list[str]]
) -> None:
    runner, built = no_context
    result = runner.invoke("down", "--volumes")
    assert isinstance(result.exception, ConfigError)
    assert result.exception.message == (
        "down --volumes deletes the stack's data: add --yes to confirm"
    )
    assert result.stdout == ""
    assert built == []  # refused before it could reach Docker


def test_down_volumes_refusal_is_exit_2(project: Path, state_dir: Path) -> None:
    process = run_main("down", "--volumes", cwd=project, state_dir=state_dir)
    assert_one_line_error(
        process, 2, "down --volumes deletes the stack's data: add --yes to confirm"
    )


def test_down_volumes_with_yes_of_a_missing_stack(
    project: Path, fake_world: tuple[FakeRunner, FakeHatchet, Cli]
) -> None:
    runner, _, cli_ = fake_world
    result = cli_.invoke("down", "--volumes", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout == "No stack unit to take down.\n"
    assert runner.calls == []


# --- up through the CLI ---------------------------------------------------------------------


def test_up_json_masks_the_token_unless_revealed(
    project: Path, fake_world: tuple[FakeRunner, FakeHatchet, Cli]
) -> None:
    _, _, cli_ = fake_world
    result = cli_.invoke("up", "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["stack"] == "unit"
    assert data["tenant_id"] == DEFAULT_TENANT_ID
    assert data["token_reused"] is False
    assert data["env_file"] == str(project / ".env.hatchet")
    assert data["settings"]["HATCHET_CLIENT_TOKEN"] == "********"
    assert TOKEN_1 not in result.output

    second = cli_.invoke("up", "-o", "json", "--reveal")
    assert second.exit_code == 0, second.output
    revealed = json.loads(second.stdout)
    assert revealed["settings"]["HATCHET_CLIENT_TOKEN"] == TOKEN_1
    assert revealed["token_reused"] is True


def test_up_flags_reach_the_configuration(
    project: Path, fake_world: tuple[FakeRunner, FakeHatchet, Cli]
) -> None:
    runner, _, cli_ = fake_world
    result = cli_.invoke(
        "up", "--message-queue", "postgres", "--namespace", "ci", "--env-file", "x.env"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Hatchet stack unit is ready.\n")
    written = (project / "x.env").read_text()
    assert "HATCHET_CLIENT_NAMESPACE=ci\n" in written
    assert not [call for call in runner.calls if "rabbitmq" in " ".join(call.argv)]
    assert runner.called(
        "up", "--no-start", "--no-deps", "--remove-orphans", "postgres", "hatchet-lite"
    )
    assert runner.called("docker", "start", "unit-postgres-1")


def test_env_prints_masked_settings_after_up(
    project: Path, fake_world: tuple[FakeRunner, FakeHatchet, Cli]
) -> None:
    _, _, cli_ = fake_world
    assert cli_.invoke("up").exit_code == 0
    masked = cli_.invoke("env")
    assert masked.exit_code == 0
    assert "HATCHET_CLIENT_TOKEN=********\n" in masked.stdout
    assert TOKEN_1 not in masked.stdout
    shell = cli_.invoke("env", "-o", "shell", "--reveal")
    assert f"export HATCHET_CLIENT_TOKEN='{TOKEN_1}'\n" in shell.stdout


def test_env_github_masks_the_token_first_and_writes_github_env(
    project: Path, fake_world: tuple[FakeRunner, FakeHatchet, Cli], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, cli_ = fake_world
    assert cli_.invoke("up").exit_code == 0
    github_env, github_output = project / "github.env", project / "github.out"
    monkeypatch.setenv("GITHUB_ENV", str(github_env))
    monkeypatch.setenv("GITHUB_OUTPUT", str(github_output))
    result = cli_.invoke("env", "-o", "github", "--namespace", "dev-ci")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"::add-mask::{TOKEN_1}"
    assert result.stdout.count(TOKEN_1) == 1
    assert f"HATCHET_CLIENT_TOKEN={TOKEN_1}\n" in github_env.read_text()
    assert "HATCHET_CLIENT_NAMESPACE=dev-ci\n" in github_env.read_text()


# --- main(): errors become exit codes -------------------------------------------------------


def main_exit(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """The exit code of `main()` with the real Context."""
    return Cli(cli_context_default).main_exit(monkeypatch, *args)


def cli_context_default(*, quiet: bool = False) -> Context:
    return Context.default(quiet=quiet)


def test_main_prints_message_and_details_and_exits_with_the_code(
    project: Path,
    fake_world: tuple[FakeRunner, FakeHatchet, Cli],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runner, _, cli_ = fake_world
    runner.on("docker", "version", "--format", returncode=1, stderr="Cannot connect\n")
    assert cli_.main_exit(monkeypatch, "up") == 3
    err = capsys.readouterr().err
    assert err == (
        "error: no Docker engine answers (default): start Docker (Docker Desktop, OrbStack, "
        "Colima, or `sudo systemctl start docker`), or point DOCKER_HOST / `docker context use` "
        "at a running engine\nCannot connect\n"
    )


def test_main_exit_code_of_a_stack_never_brought_up(
    project: Path,
    fake_world: tuple[FakeRunner, FakeHatchet, Cli],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, _, cli_ = fake_world
    assert cli_.main_exit(monkeypatch, "env") == 10
    assert capsys.readouterr().err == (
        "error: stack unit has no token yet; run `hatchet-local up`\n"
    )


def interrupting_context(*, quiet: bool = False) -> Context:
    raise KeyboardInterrupt


def test_ctrl_c_exits_130(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert Cli(interrupting_context).main_exit(monkeypatch, "status") == 130
    assert "Traceback" not in capsys.readouterr().err


def signalling_context(*, quiet: bool = False) -> Context:
    signal.raise_signal(signal.SIGINT)  # what a terminal's Ctrl-C delivers
    raise AssertionError("SIGINT did not interrupt")


def test_ctrl_c_says_how_to_finish(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert Cli(signalling_context).main_exit(monkeypatch, "status") == 130
    assert capsys.readouterr().err == "interrupted; run the same command again to finish\n"


# --- usage errors are one line too -------------------------------------------------------------


def test_a_usage_error_is_one_line_pointing_at_help(tmp_path: Path, state_dir: Path) -> None:
    process = run_main("up", "--grpc-port", "x", cwd=tmp_path, state_dir=state_dir)
    assert process.returncode == 2
    assert process.stdout == ""
    assert process.stderr.count("\n") == 1
    assert process.stderr.startswith("error: Invalid value for '--grpc-port'")
    assert process.stderr.endswith(" up --help`)\n")  # the program name is -c here


@pytest.mark.parametrize("args", [[], ["images"]], ids=["bare", "bare-group"])
def test_a_bare_command_prints_its_help_not_an_error(
    tmp_path: Path, state_dir: Path, args: list[str]
) -> None:
    process = run_main(*args, cwd=tmp_path, state_dir=state_dir)
    assert process.returncode == 2
    assert "Usage:" in process.stdout + process.stderr
    assert "error:" not in process.stdout + process.stderr


def test_help_exits_0(tmp_path: Path, state_dir: Path) -> None:
    process = run_main("up", "--help", cwd=tmp_path, state_dir=state_dir)
    assert (process.returncode, process.stderr) == (0, "")
    assert "Usage:" in process.stdout
