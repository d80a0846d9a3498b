"""Work that SIGKILL cut short is finished by the next command (issue #16): no handler runs,
so what a killed command leaves must be recognisable and repairable."""

from __future__ import annotations

from hatchet_local import resets
from hatchet_local.defaults import ENGINE_SERVICE
from hatchet_local.runner import Result
from tests.unit.fakes import Call, reply
from tests.unit.harness import World

TOKEN_2 = "eyJhbGciOiJFUzI1NiJ9.token-2.signature"  # the fake's second token


def test_a_wipe_cut_short_is_finished_by_the_next_up(world: World) -> None:
    """`reset` killed between dropping the database and creating it anew leaves a stack that
    could not start (the jobs need the database); its mark makes the next `up` finish the
    wipe the sure way, then bootstrap afresh."""
    world.up()
    downs: list[Call] = []

    def down(call: Call) -> Result:
        downs.append(call)
        world.hatchet.services.clear()
        return reply(call)

    world.runner.on_call("down", "--remove-orphans", handler=down)
    world.stack_dir.begin_wipe()  # what the killed reset left, with its token.json
    world.next_process()

    result = world.up()

    assert [call.argv[-3:] for call in downs] == [("down", "--remove-orphans", "--volumes")]
    assert not world.stack_dir.wipe_pending()
    assert "finishing the wipe of an earlier `reset` that was cut short" in world.console()
    assert (result.token_reused, result.settings["HATCHET_CLIENT_TOKEN"]) == (False, TOKEN_2)
    order = [call.argv for call in world.runner.calls]
    wiped = world.compose("down", "--remove-orphans", "--volumes")
    made = world.compose("up", "--no-start", "--no-deps", "--remove-orphans", "postgres",
                         "rabbitmq", ENGINE_SERVICE)  # fmt: skip
    assert order.index(wiped) < order.index(made)


def test_reset_marks_the_wipe_while_it_runs_and_clears_the_mark(world: World) -> None:
    world.up()
    marked_while_dropping: list[bool] = []
    psql = world.hatchet.psql

    def dropping(call: Call) -> Result:
        if "DROP DATABASE IF EXISTS hatchet WITH (FORCE)" in (call.data or b"").decode():
            marked_while_dropping.append(world.stack_dir.wipe_pending())
        return psql(call)

    world.runner.on("rm", "--stop", "--force", "hatchet-lite")
    world.runner.on_call("docker", "exec", "-i", handler=dropping)
    world.runner.on("rabbitmqctl", "eval", stdout="ok\n")
    world.runner.on("docker", "volume", "rm")
    world.next_process()

    result = resets.reset(world.config(), world.ctx, new_token=True)

    assert marked_while_dropping == [True]
    assert not world.stack_dir.wipe_pending()
    assert result.settings["HATCHET_CLIENT_TOKEN"] == TOKEN_2
