"""The subprocess choke point: redaction, compose argv, errors, `ps` parsing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hatchet_local.compose import Compose, compose_argv
from hatchet_local.docker import require_ok
from hatchet_local.errors import CommandFailed
from hatchet_local.redact import MASK, Redactor
from hatchet_local.runner import Result, child_env, tail
from hatchet_local.state import SECRET_NAMES
from tests.unit.fakes import FakeRunner

SECRET = "S3cretPassw0rdXYZ"
BASE = ["docker", "compose"]
FILE = Path("/state/stacks/unit/compose.yaml")
ENV_FILE = Path("/state/stacks/unit/secrets.env")
GLOBAL = ["--project-name", "unit", "--file", str(FILE), "--env-file", str(ENV_FILE)]


def make_compose(runner: FakeRunner, *secrets: str) -> Compose:
    return Compose(
        runner, base=BASE, project="unit", file=FILE, env_file=ENV_FILE, redact=Redactor(secrets)
    )


# --- Redactor -------------------------------------------------------------------------------


def test_redactor_masks_every_occurrence() -> None:
    redact = Redactor([SECRET])
    assert redact(f"a {SECRET} b {SECRET}") == f"a {MASK} b {MASK}"


def test_redactor_masks_the_longest_secret_first() -> None:
    short, long = "Abcdefgh1", "Abcdefgh1-and-more"
    redact = Redactor([short, long])
    assert redact(f"x={long} y={short}") == f"x={MASK} y={MASK}"
    # Added in the other order, the result is the same.
    assert Redactor([long, short])(f"x={long}") == f"x={MASK}"


def test_redactor_ignores_short_strings() -> None:
    redact = Redactor(["", "abc", "seven77"])
    text = "abc seven77 and an empty string"
    assert redact(text) == text
    redact.add("eight888")
    assert redact("abc eight888") == f"abc {MASK}"


def test_redactor_without_secrets_changes_nothing() -> None:
    assert Redactor()("nothing to hide") == "nothing to hide"


def test_tail_keeps_the_last_lines() -> None:
    text = "\n".join(f"line {n}" for n in range(1, 51)) + "\n\n"
    assert tail(text, 3) == "line 48\nline 49\nline 50"
    assert tail("", 3) == ""


def test_child_env_drops_only_the_named_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HATCHET_POSTGRES_PASSWORD", "from-shell")
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/docker.sock")
    env = child_env(SECRET_NAMES)
    assert "HATCHET_POSTGRES_PASSWORD" not in env
    assert env["DOCKER_HOST"] == "unix:///run/docker.sock"


# --- argv -----------------------------------------------------------------------------------


def test_compose_argv_carries_project_file_and_env_file() -> None:
    argv = compose_argv(BASE, "unit", FILE, ENV_FILE, "up", "--detach")
    assert argv == [*BASE, *GLOBAL, "up", "--detach"]


def test_compose_argv_is_pure() -> None:
    base = ["docker", "compose"]
    first = compose_argv(base, "unit", FILE, ENV_FILE, "ps")
    first.append("mutated")
    assert base == ["docker", "compose"]
    assert compose_argv(base, "unit", FILE, ENV_FILE, "ps") == [*BASE, *GLOBAL, "ps"]


@pytest.mark.parametrize(
    ("action", "tail_args"),
    [
        (lambda c: c.up("postgres"), ["up", "--detach", "--remove-orphans", "postgres"]),
        (
            lambda c: c.up("hatchet-lite", no_deps=True),
            ["up", "--detach", "--remove-orphans", "--no-deps", "hatchet-lite"],
        ),
        (lambda c: c.logs("postgres", 5), ["logs", "--no-color", "--tail", "5", "postgres"]),
        (lambda c: c.logs(), ["logs", "--no-color", "--tail", "30"]),
        (lambda c: c.down(), ["down", "--remove-orphans"]),
        (lambda c: c.down(volumes=True), ["down", "--remove-orphans", "--volumes"]),
    ],
)
def test_every_compose_command_is_scoped_to_the_stack(
    action: Callable[[Compose], object], tail_args: list[str]
) -> None:
    runner = FakeRunner()
    runner.on("docker", "compose")
    action(make_compose(runner))
    assert [call.argv for call in runner.calls] == [(*BASE, *GLOBAL, *tail_args)]


def test_a_job_runs_in_the_running_container_with_its_secrets_by_name_only() -> None:
    runner = FakeRunner()
    runner.on("docker", "exec")
    make_compose(runner).exec("hatchet-lite", "/job", "--flag", timeout=60, env={"PASS": SECRET})
    [call] = runner.calls
    assert call.argv == ("docker", "exec", "-e", "PASS", "unit-hatchet-lite-1", "/job", "--flag")
    assert call.env is not None and call.env["PASS"] == SECRET
    assert call.timeout == 60


# --- Compose.run ----------------------------------------------------------------------------


def test_run_failure_raises_command_failed_with_redacted_details() -> None:
    runner = FakeRunner()
    stderr = "".join(f"noise {n}\n" for n in range(30)) + f"auth failed for {SECRET}\n"
    runner.on("up", returncode=17, stdout="ignored when stderr has text", stderr=stderr)
    with pytest.raises(CommandFailed) as info:
        make_compose(runner, SECRET).up("postgres")
    error = info.value
    assert error.message == "docker compose up failed for stack unit (exit 17)"
    assert error.exit_code == 9
    assert SECRET not in error.details
    assert error.details.splitlines()[-1] == f"auth failed for {MASK}"
    assert len(error.details.splitlines()) == 20


def test_run_failure_without_stderr_reports_stdout() -> None:
    runner = FakeRunner()
    runner.on("pull", returncode=1, stdout=f"pull access denied, token {SECRET}\n")
    with pytest.raises(CommandFailed) as info:
        make_compose(runner, SECRET).run("pull")
    assert info.value.details == f"pull access denied, token {MASK}"


def test_a_failed_job_is_returned_for_the_caller_to_judge() -> None:
    runner = FakeRunner()
    runner.on("docker", "exec", returncode=3, stdout="out", stderr="err")
    result = make_compose(runner).exec("hatchet-lite", "/hatchet-migrate", timeout=60)
    assert (result.ok, result.returncode, result.stdout, result.stderr) == (False, 3, "out", "err")
    assert runner.calls[0].timeout == 60


def test_logs_are_redacted() -> None:
    runner = FakeRunner()
    runner.on("logs", stdout=f"postgres | password={SECRET}\n", stderr="warn\n")
    assert make_compose(runner, SECRET).logs("postgres") == f"postgres | password={MASK}\nwarn\n"


def test_run_does_not_pass_the_secrets_through_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in SECRET_NAMES:
        monkeypatch.setenv(name, "from-the-shell")
    monkeypatch.setenv("DOCKER_CONTEXT", "colima")
    runner = FakeRunner()
    runner.on("up", stdout="")
    make_compose(runner).up("postgres")
    (call,) = runner.calls
    assert call.env is not None
    assert not set(SECRET_NAMES) & set(call.env)
    assert call.env["DOCKER_CONTEXT"] == "colima"  # the rest of the environment is kept
    assert "from-the-shell" not in " ".join(call.argv)


def test_require_ok_names_what_failed_with_its_exit_code_and_last_lines() -> None:
    ok = Result(("docker", "load"), 0, "Loaded image: x\n", "")
    assert require_ok(ok, "docker load") is ok
    with pytest.raises(CommandFailed) as info:
        require_ok(Result(("docker", "save"), 1, "", "no space left\n"), "docker save into a.tar")
    assert info.value.message == "docker save into a.tar failed (exit 1)"
    assert info.value.details == "no space left"
