"""Deleting a stack's data: its database, its pristine copy, RabbitMQ's messages, the
engine's config volume (its keys) and everything kept about them (tokens, logins, notes).

A wipe is marked as under way until it is done, so that one cut short (a SIGKILL between
dropping the database and creating it anew) is finished by the next `up` instead of leaving
a stack that cannot start.
"""

from __future__ import annotations

from hatchet_local import postgres
from hatchet_local.context import Context
from hatchet_local.defaults import ENGINE_SERVICE
from hatchet_local.docker import remove_volume, require_ok
from hatchet_local.provision import PRISTINE, SPARE
from hatchet_local.stack import Stack


def wipe(stack: Stack, ctx: Context, *, in_place: bool = True) -> None:
    """Delete the stack's data and what depended on it; the pristine copy is taken again
    after the next `setup`. `in_place=False` takes the sure way, which also works on a
    half-wiped stack: every container and volume removed."""
    stack.dir.begin_wipe()
    if not (in_place and _wipe_in_place(stack, ctx)):
        stack.compose.down(volumes=True)
    stack.dir.forget_data()
    stack.dir.note("pristine-pending")


def _wipe_in_place(stack: Stack, ctx: Context) -> bool:
    """Wipe the data while Postgres and RabbitMQ keep running, which saves their restart:
    drop and re-create the database (and its pristine copy, and the next reset's copy of
    that), re-create RabbitMQ's vhost, remove the engine and its config volume. False (nothing
    done) when those services are not both up."""
    states = {s.service: s.state for s in stack.compose.ps()}
    if any(states.get(service) != "running" for service in stack.services()):
        return False
    compose = stack.compose
    compose.run("rm", "--stop", "--force", ENGINE_SERVICE, timeout=120)
    sql = (
        f"DROP DATABASE IF EXISTS {postgres.DATABASE} WITH (FORCE);\n"
        f"DROP DATABASE IF EXISTS {PRISTINE};\nDROP DATABASE IF EXISTS {SPARE};\n"
        f"CREATE DATABASE {postgres.DATABASE};\n"
    )
    postgres.psql(compose, sql, "dropping the database", database="postgres")
    if "rabbitmq" in stack.services():
        empty_rabbitmq(stack, ctx)
    remove_volume(
        ctx.runner, f"{stack.compose.project}_hatchet_config", "removing the engine's config volume"
    )
    return True


# RabbitMQ's vhost deleted and made again in one `rabbitmqctl` (each one starts an Erlang VM,
# about a second); the three commands below when this RabbitMQ has other internals.
_VHOST_AGAIN = (
    'ok = rabbit_vhost:delete(<<"/">>, <<"hatchet-local">>), '
    'ok = rabbit_vhost:add(<<"/">>, <<"hatchet-local">>), '
    'ok = rabbit_auth_backend_internal:set_permissions(<<"hatchet">>, <<"/">>, <<".*">>, '
    '<<".*">>, <<".*">>, <<"hatchet-local">>).'
)


def empty_rabbitmq(stack: Stack, ctx: Context) -> None:
    """RabbitMQ's vhost made again: messages about the old data must not reach the new."""
    rabbitmqctl = ["docker", "exec", stack.compose.container_name("rabbitmq"), "rabbitmqctl"]
    once = ctx.runner.run([*rabbitmqctl, "eval", _VHOST_AGAIN], timeout=120)
    if once.ok and once.stdout.strip() == "ok":
        return
    ctx.runner.run([*rabbitmqctl, "delete_vhost", "/"], timeout=120)  # gone already: fine
    permissions = ["set_permissions", "-p", "/", "hatchet", ".*", ".*", ".*"]
    for command in (["add_vhost", "/"], permissions):
        result = ctx.runner.run([*rabbitmqctl, *command], timeout=120)
        require_ok(result, "resetting RabbitMQ", ctx.runner)
