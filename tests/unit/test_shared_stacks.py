"""Two projects naming the same stack (issue #16): sharing stays possible, and is visible
(`up`, `status`, `ls` name every directory using the stack) and safe (deleting its data from
another directory than the one that made it names the others and asks, or needs --yes)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from hatchet_local import cli, inventory, startup
from hatchet_local import status as stack_status
from hatchet_local.cli import options
from hatchet_local.config import load_config
from hatchet_local.errors import ConfigError
from hatchet_local.state import StackDir, StackRecord
from tests.unit.harness import World


def join_from(world: World, name: str) -> Path:
    """A second project directory whose hatchet-local.yaml names the world's stack; `up` there."""
    other = world.project.parent / name
    other.mkdir()
    world.next_process()
    startup.up(load_config(other, environ={"HATCHET_LOCAL_STACK": "unit"}), world.ctx)
    return other.resolve()


def test_up_from_another_directory_joins_and_says_whose_stack_it_is(world: World) -> None:
    world.up()
    maker = str(world.project.resolve())
    api = join_from(world, "api-repo")
    assert f"stack unit was made in {maker}\n" in world.console()
    record = world.stack_dir.load()
    assert record is not None
    assert record.directories == [maker, str(api)]

    world.next_process()
    result = world.up()
    assert f"stack unit is shared: {api} use it too" in world.console()
    assert result.directories == (maker, str(api))
    assert result.as_dict(reveal=False)["directories"] == [maker, str(api)]
    # A third joins once, however often it comes back.
    worker = join_from(world, "worker-repo")
    world.next_process()
    startup.up(load_config(worker, environ={"HATCHET_LOCAL_STACK": "unit"}), world.ctx)
    assert f"stack unit was made in {maker} and is used by {api}" in world.console()
    assert world.stack_dir.load().directories == [maker, str(api), str(worker)]  # type: ignore[union-attr]


def test_status_and_ls_show_every_directory_using_the_stack(world: World) -> None:
    world.up()
    api = join_from(world, "api-repo")
    info = stack_status.status(world.config(), world.ctx, reveal=False)
    assert info.directory == str(world.project.resolve())
    assert info.directories == [info.directory, str(api)]
    (row,) = inventory.list_stacks(world.ctx)
    assert row.directories == [info.directory, str(api)]


def test_a_shared_stack_is_not_pruned_while_one_of_its_directories_is_there(
    world: World,
) -> None:
    world.up()
    join_from(world, "api-repo")
    world.project.rename(world.project.parent / "moved")  # the maker's checkout is gone
    (row,) = inventory.list_stacks(world.ctx)
    assert row.directory_exists
    assert inventory.prune_candidates(world.ctx, older_than=None) == []


def test_a_record_with_a_bad_joined_list_is_refused(tmp_path: Path) -> None:
    stack_dir = StackDir(tmp_path, "s")
    stack_dir.path.mkdir(parents=True)
    data = {"name": "s", "directory": "/a", "created": "x", "tool_version": "0",
            "hatchet_version": "v0", "message_queue": "postgres", "joined": [1]}  # fmt: skip
    stack_dir.record_file.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"not a stack record \(joined: got \[1\]\)"):
        stack_dir.load()


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A stack `team` made in project a and joined by project b (records only)."""
    state = tmp_path / "state"
    monkeypatch.setenv("HATCHET_LOCAL_STATE_DIR", str(state))
    monkeypatch.setenv("HATCHET_LOCAL_STACK", "team")
    a, b = tmp_path / "a", tmp_path / "b"
    for path in (a, b):
        path.mkdir()
    record = inventory_record(str(a.resolve()), [str(b.resolve())])
    StackDir(state, "team").save(record)
    return a.resolve(), b.resolve()


def inventory_record(directory: str, joined: list[str]) -> StackRecord:
    return dataclasses.replace(
        StackRecord("team", directory, "2026-01-01T00:00:00+00:00", "0", "v0", "postgres"),
        joined=joined,
    )


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["down", "--volumes"], "down --volumes deletes the stack's data"),
        (["reset"], "reset deletes the stack's data"),
        (["destroy"], "destroy deletes the stack's data"),
    ],
)
def test_deleting_a_shared_stacks_data_from_another_directory_names_the_others(
    shared: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, args: list[str], hint: str
) -> None:
    a, b = shared
    monkeypatch.chdir(b)
    result = CliRunner().invoke(cli.app, args)
    assert isinstance(result.exception, ConfigError), result.output
    assert result.exception.message == (
        f"{hint}, and stack team was made in {a}: add --yes to confirm"
    )


def test_from_the_directory_that_made_it_the_question_is_the_usual_one(
    shared: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = shared
    monkeypatch.chdir(a)
    result = CliRunner().invoke(cli.app, ["down", "--volumes"])
    assert isinstance(result.exception, ConfigError)
    assert (
        result.exception.message == "down --volumes deletes the stack's data: add --yes to confirm"
    )


def test_a_terminal_is_asked_with_the_other_directories_named(
    shared: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = shared
    monkeypatch.chdir(b)
    terminal = SimpleNamespace(stdin=SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr(options, "sys", terminal)
    result = CliRunner().invoke(cli.app, ["destroy"], input="n\n")
    assert f"Stack team was made in {a}. Remove stack team and all its data? [y/N]" in (
        result.output
    )
    assert result.exit_code == 1  # aborted: nothing was removed
    assert StackDir(Path(str(a)).parent / "state", "team").exists()
