"""Spares: made ahead, taken over by the next `up` of a new stack of their kind, and known
to `ls`/`destroy` by the Compose project they were started with."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hatchet_local import inventory, spares
from hatchet_local.config import Ports
from hatchet_local.errors import ConfigError
from hatchet_local.spare_start import keep_spares, make_spare
from hatchet_local.state import StackDir, StackRecord
from tests.unit.fakes import docker_rows
from tests.unit.harness import STACK, World


def test_a_new_stack_takes_over_a_ready_spare_of_its_kind(world: World) -> None:
    spare = make_spare(world.config(), world.ctx)
    made = StackDir(world.ctx.state_root, spare).load()
    assert made is not None and made.spare and made.project == spare
    assert not world.env_file.exists()  # a spare writes no client settings
    world.next_process()

    result = world.up()

    record = world.stack_dir.load()
    assert record is not None
    assert (record.name, record.project, record.spare) == (STACK, spare, False)
    assert record.directory == str(world.project)
    assert record.ports == made.ports
    assert not StackDir(world.ctx.state_root, spare).exists()
    assert f"took over spare {spare}" in world.console()
    assert not [c for c in world.runner.calls if "create" in c.argv or "start" in c.argv]
    assert result.token_reused is False  # new to this project's clients
    assert world.env_file.read_text().count(f"localhost:{made.ports['grpc']}") == 1


def test_a_spare_of_another_kind_is_left_alone(world: World) -> None:
    spare = make_spare(world.config(HATCHET_LOCAL_DASHBOARD="false"), world.ctx)
    world.next_process()

    world.up()  # with the dashboard: another stack file

    assert "took over" not in world.console()
    record = StackDir(world.ctx.state_root, spare).load()
    assert record is not None and record.spare
    assert world.stack_dir.load().project is None  # type: ignore[union-attr]


def test_an_existing_stack_never_takes_a_spare(world: World) -> None:
    world.up()
    spare = make_spare(world.config(), world.ctx)
    world.next_process()

    world.up()

    assert StackDir(world.ctx.state_root, spare).exists()
    assert world.stack_dir.load().project is None  # type: ignore[union-attr]


def test_keep_spares_starts_only_what_is_missing(world: World) -> None:
    ready, made = keep_spares(world.config(), world.ctx, 1)
    assert (ready, len(made)) == ([], 1)
    assert keep_spares(world.config(), world.ctx, 1) == (made, [])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ports": Ports(dashboard=8080)}, "pins its ports"),
        ({"expose": True}, "serves other machines"),
        ({"advertise": "hl.example"}, "serves other machines"),
    ],
)
def test_a_stack_no_spare_can_serve_is_refused_with_the_reason(
    world: World, change: dict[str, object], reason: str
) -> None:
    config = dataclasses.replace(world.config(), **change)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=reason) as info:
        keep_spares(config, world.ctx, 1)
    assert info.value.exit_code == 2
    assert spares.take_over(config, world.ctx) is None


def test_a_record_without_a_project_is_its_own_project(tmp_path: Path) -> None:
    old = StackRecord(
        name="old", directory=str(tmp_path), created="2026-11-01T00:00:00+00:00",
        tool_version="0.1.0", hatchet_version="v0.101.27", message_queue="postgres",
    )  # fmt: skip
    StackDir(tmp_path, "old").save(old)
    loaded = StackDir(tmp_path, "old").load()
    assert loaded == old
    assert loaded is not None and loaded.compose_project == "old" and not loaded.spare


def test_ls_and_destroy_find_a_taken_over_stack_by_its_project(world: World) -> None:
    spare = make_spare(world.config(), world.ctx)
    world.up()
    world.runner.on(
        "docker", "ps", "--all", stdout=docker_rows((f"{spare}-postgres-1", spare, "running"))
    )
    world.runner.on("docker", "volume", "ls")
    world.runner.on("docker", "network", "ls")
    world.runner.on("docker", "rm")

    rows = inventory.list_stacks(world.ctx)

    assert [(r.name, r.state, r.spare) for r in rows] == [(STACK, "running", False)]
    removed = inventory.destroy(world.ctx, STACK)
    assert [o.name for o in removed] == [f"{spare}-postgres-1"]
    assert world.runner.called("docker", "ps", "--all", "--filter",
                               f"label=io.hatchet-local.stack={spare}")  # fmt: skip


def _detached(world: World) -> list[tuple[str, ...]]:
    return [c.argv for c in world.runner.calls if "spare" in c.argv and "--count" in c.argv]


def test_spares_in_the_config_refill_the_pool_after_a_new_stack(world: World) -> None:
    world.up(HATCHET_LOCAL_SPARES="2", HATCHET_LOCAL_PROFILE="ci")

    (argv,) = _detached(world)
    assert argv[-4:] == ("hatchet_local", "spare", "--count", "2")
    (call,) = [c for c in world.runner.calls if c.argv == argv]
    assert call.env is not None
    kind = {k: v for k, v in call.env.items() if k.startswith("HATCHET_LOCAL_")}
    assert kind["HATCHET_LOCAL_MESSAGE_QUEUE"] == "postgres"  # the profile's, resolved
    assert kind["HATCHET_LOCAL_DASHBOARD"] == "false"
    assert kind["HATCHET_LOCAL_STATE_DIR"] == str(world.ctx.state_root)
    assert "HATCHET_LOCAL_SPARES" not in kind  # the child is told by --count
    assert "starting spares for the next new stacks in the background" in world.console()
    world.next_process()

    world.up(HATCHET_LOCAL_SPARES="2", HATCHET_LOCAL_PROFILE="ci")  # not a new stack

    assert _detached(world) == []


def test_no_refill_without_spares_or_for_a_stack_no_spare_fits(world: World) -> None:
    world.up()
    assert _detached(world) == []
    world.next_process()
    world.up(HATCHET_LOCAL_SPARES="1", HATCHET_LOCAL_STACK="pinned",
             HATCHET_LOCAL_PORTS_GRPC="17077")  # fmt: skip
    assert _detached(world) == []


@pytest.mark.parametrize("value", ["9", "-1", "two", "true"])
def test_a_bad_spares_setting_is_refused(world: World, value: str) -> None:
    with pytest.raises(ConfigError, match="a number of spares from 0 to 8"):
        world.config(HATCHET_LOCAL_SPARES=value)


def test_prune_takes_spares_only_when_asked(world: World) -> None:
    spare = make_spare(world.config(), world.ctx)
    world.up()  # takes it over: a stack, not a spare any more
    other = make_spare(world.config(), world.ctx)
    listed = docker_rows(
        (f"{spare}-postgres-1", spare, "running"), (f"{other}-postgres-1", other, "running")
    )
    world.runner.on("docker", "ps", "--all", stdout=listed)
    world.runner.on("docker", "volume", "ls")
    world.runner.on("docker", "network", "ls")

    assert inventory.prune_candidates(world.ctx, None) == []
    assert [r.name for r in inventory.prune_candidates(world.ctx, None, spares=True)] == [other]


def test_up_says_when_the_last_background_spare_failed(world: World) -> None:
    log = world.ctx.state_root / "logs" / "spares.log"
    log.parent.mkdir(parents=True)
    log.write_text("-> docker engine\nerror: no Docker engine answers; start Docker\n")

    world.up(HATCHET_LOCAL_SPARES="1")

    assert ("warning: the last background `hatchet-local spare` failed: no Docker engine "
            "answers; start Docker") in world.console()  # fmt: skip
    assert len(_detached(world)) == 1  # and tries again


def test_a_spare_whose_start_was_cut_short_is_removed_by_the_next_spare(world: World) -> None:
    cut = make_spare(world.config(), world.ctx)
    (StackDir(world.ctx.state_root, cut).path / "applied").unlink()  # as a Ctrl-C leaves it
    world.runner.on(
        "docker", "ps", "--all", stdout=docker_rows((f"{cut}-postgres-1", cut, "running"))
    )
    world.runner.on("docker", "volume", "ls")
    world.runner.on("docker", "network", "ls")
    world.runner.on("docker", "rm")

    ready, made = keep_spares(world.config(), world.ctx, 1)

    assert (ready, len(made)) == ([], 1)
    assert not StackDir(world.ctx.state_root, cut).path.exists()
    assert world.runner.called("docker", "rm", "--force", "--volumes", f"{cut}-postgres-1")
    assert f"removed spare {cut}, whose start was cut short" in world.console()
