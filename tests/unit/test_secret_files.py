"""`up` and the files that hold secrets: other users' access is taken away (with a
warning) or refused, and a token file git tracks is named as such."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hatchet_local.errors import ConfigError
from hatchet_local.fsutil import make_private
from hatchet_local.runner import Result
from tests.unit.fakes import Call, reply
from tests.unit.test_stack_up import World, world  # noqa: F401 (the fixture)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("old", [0o644, 0o604, 0o640, 0o666])
def test_make_private_takes_away_group_and_other_access(tmp_path: Path, old: int) -> None:
    path = tmp_path / ".env.hatchet"
    path.write_text("HATCHET_CLIENT_TOKEN=ey\n")
    path.chmod(old)
    assert make_private(path) == old
    assert mode(path) == 0o600


def test_make_private_leaves_private_missing_and_non_files_alone(tmp_path: Path) -> None:
    private = tmp_path / "token.json"
    private.write_text("{}")
    private.chmod(0o600)
    assert make_private(private) is None
    assert make_private(tmp_path / "missing") is None
    assert make_private(tmp_path) is None  # a directory is not ours to change here
    assert mode(private) == 0o600


def test_make_private_refuses_when_the_mode_cannot_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / ".env.hatchet"
    path.write_text("x")
    path.chmod(0o644)

    def denied(self: Path, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(Path, "chmod", denied)
    with pytest.raises(ConfigError) as info:
        make_private(path)
    assert str(path) in info.value.message
    assert "mode 0644" in info.value.message
    assert "chmod 600" in info.value.message


def test_up_warns_about_a_world_readable_env_file_and_makes_it_private(world: World) -> None:  # noqa: F811
    world.env_file.write_text("# mine\nHATCHET_CLIENT_TOKEN=old\n")
    world.env_file.chmod(0o644)
    world.up()
    assert (
        f"warning: {world.env_file} holds secrets and other users could read it (mode 0644); "
        f"made it 0600"
    ) in world.console()
    assert mode(world.env_file) == 0o600
    assert world.env_file.read_text().startswith("# mine\n")


def test_up_makes_the_stack_secrets_private_again(world: World) -> None:  # noqa: F811
    world.up()
    secrets_file = world.stack_dir.secrets_file
    token_file = world.stack_dir.path / "token.json"
    secrets_file.chmod(0o644)
    token_file.chmod(0o640)
    world.next_process()
    world.up()
    console = world.console()
    assert f"{secrets_file} holds secrets and other users could read it (mode 0644)" in console
    assert f"{token_file} holds secrets and other users could read it (mode 0640)" in console
    assert mode(secrets_file) == mode(token_file) == 0o600


def test_private_files_give_no_warning(world: World) -> None:  # noqa: F811
    world.up()
    world.next_process()
    world.up()
    assert "warning" not in world.console()
    for path in [world.env_file, *world.stack_dir.path.iterdir()]:
        assert mode(path) == 0o600, path
    assert mode(world.stack_dir.path) == 0o700


def test_a_tracked_env_file_is_named_as_tracked(world: World) -> None:  # noqa: F811
    def git(call: Call) -> Result:
        # Tracked: check-ignore says "not ignored" (as it does for any tracked file).
        return reply(call, 1 if call.has("check-ignore") else 0)

    world.runner.on_call("git", handler=git)
    world.up()
    assert (
        f"warning: {world.env_file} holds a token and git does not ignore it: git tracks it; "
        f"run `git rm --cached .env.hatchet`"
    ) in world.console()
    assert world.runner.called("ls-files", "--error-unmatch", "--", ".env.hatchet")
