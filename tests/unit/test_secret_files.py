"""`up` and the settings file that holds the token: rewritten 0600 with a warning when other
users could read the token in it, and named as tracked when git tracks it."""

from __future__ import annotations

import stat

import pytest

from hatchet_local.errors import SetupFailed
from hatchet_local.runner import Result
from tests.unit.fakes import Call, reply
from tests.unit.harness import World


@pytest.mark.parametrize(
    ("old", "line"),
    [(0o644, "HATCHET_CLIENT_TOKEN=ey"), (0o640, "export HATCHET_CLIENT_TOKEN = ey"),
     (0o604, "  HATCHET_CLIENT_TOKEN=ey")],
)  # fmt: skip
def test_up_warns_about_a_token_others_could_read_and_makes_the_file_private(
    world: World,
    old: int,
    line: str,
) -> None:
    world.env_file.write_text(f"# mine\n{line}\n")
    world.env_file.chmod(old)
    world.up()
    assert (
        f"warning: {world.env_file} held a token while other users could read it "
        f"(mode {old:04o}); it is 0600 now, but that token may have been read"
    ) in world.console()
    assert stat.S_IMODE(world.env_file.stat().st_mode) == 0o600
    assert world.env_file.read_text().startswith("# mine\n")


def test_a_failing_up_leaves_the_file_and_its_mode_alone(world: World) -> None:
    world.env_file.write_text("HATCHET_CLIENT_TOKEN=ey\n")
    world.env_file.chmod(0o644)
    world.hatchet.jobs["migrate"] = (1, "boom")
    assert isinstance(world.up_error(), SetupFailed)
    assert stat.S_IMODE(world.env_file.stat().st_mode) == 0o644
    assert world.env_file.read_text() == "HATCHET_CLIENT_TOKEN=ey\n"


def test_a_readable_settings_file_without_a_token_is_merged_and_made_private(
    world: World,
) -> None:
    world.env_file.write_text("# mine\nOTHER=1\n")
    world.env_file.chmod(0o644)
    world.up()
    assert world.env_file.read_text().startswith("# mine\nOTHER=1\nHATCHET_CLIENT_TOKEN=")
    assert stat.S_IMODE(world.env_file.stat().st_mode) == 0o600
    assert "warning" not in world.console()  # no token was there to be read


def test_private_files_give_no_warning(world: World) -> None:
    world.up()
    world.next_process()
    world.up()
    assert "warning" not in world.console()
    for path in [world.env_file, *world.stack_dir.path.iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(world.stack_dir.path.stat().st_mode) == 0o700


def test_a_tracked_env_file_is_named_as_tracked(world: World) -> None:
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
