"""The command line: parse options, call one function, print its result.

Each command group lives in a module of its own (`up`, `stack`, `stacks`, `images`,
`snapshots`, `teams`, `central`, `doctor`) that imports only `options`; this package root
assembles them into one app, and `main()` is the only place an error becomes an exit code.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from hatchet_local.cli import central, doctor, images, snapshots, stack, stacks, teams, up
from hatchet_local.console import end_begun_phases
from hatchet_local.errors import HatchetLocalError, Interrupted
from hatchet_local.signals import (
    command_ended,
    restore_handlers,
    stop_on_signals,
    stopped_handled,
)

if TYPE_CHECKING:
    from hatchet_local.context import Context


def _new_app() -> typer.Typer:
    made = typer.Typer(
        name="hatchet-local",
        help="A private Hatchet stack for every developer and every CI job.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        # Plain help: rich's formatting costs more than the rest of `--help` together.
        rich_markup_mode=None,
    )
    made.callback()(lambda: None)  # a group even with one command (see _app_for)
    return made


app = _new_app()

COMMANDS: dict[str, Callable[..., None]] = {
    "up": up.up,
    "down": stack.down,
    "status": stack.status,
    "logs": stack.logs,
    "env": stack.env,
    "render": stack.render,
    "ls": stacks.list_stacks,
    "reset": up.reset,
    "destroy": stacks.destroy,
    "prune": stacks.prune,
    "spare": stacks.spare,
    "plan": central.plan,
    "apply": central.apply,
    "doctor": doctor.doctor,
    "version": doctor.version,
}
GROUPS = {
    "images": images.app,
    "snapshot": snapshots.app,
    "tenant": teams.tenant_app,
    "token": teams.token_app,
    "user": teams.user_app,
    "member": teams.member_app,
    "server": central.server_app,
}
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)
for _name, _group in GROUPS.items():
    app.add_typer(_group, name=_name)
# Everything after `run` (or after `--`) is the command's own, options included.
app.command("run", context_settings={"ignore_unknown_options": True})(stack.run)


def _app_for(args: list[str]) -> typer.Typer:
    """The app with only the command `args` name: typer builds every option of every
    command it holds, each call, which costs more than a whole `status` should. Without a
    known command (`--help`, a typo), the whole app."""
    name = next((arg for arg in args if not arg.startswith("-")), None)
    if name not in COMMANDS and name not in GROUPS:
        return app
    lean = _new_app()
    if name in COMMANDS:
        lean.command(name)(COMMANDS[name])
    else:
        lean.add_typer(GROUPS[name], name=name)
    return lean


def main(make_context: Callable[..., Context] | None = None) -> None:
    """Entry point: every error, ours or a usage error, becomes one line and an exit code here.
    Ctrl-C, SIGTERM and SIGHUP raise Interrupted (not KeyboardInterrupt, which typer would end
    silently): exit 128 + the signal's number. `make_context(quiet=...)` replaces
    `Context.default` (tests run the CLI over fakes)."""
    replaced = stop_on_signals()
    try:
        _run(make_context)
    finally:
        stopped_handled()
        if make_context is not None:  # a caller that goes on in this process (tests)
            restore_handlers(replaced)


def _run(make_context: Callable[..., Context] | None) -> None:
    try:
        try:
            code = _app_for(sys.argv[1:])(standalone_mode=False, obj=make_context)
        finally:
            command_ended()  # a signal from now on finds the work done or stopped already
    except Interrupted as exc:
        with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
            end_begun_phases()
            typer.echo(exc.message, err=True)
        sys.exit(exc.exit_code)
    except HatchetLocalError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        if exc.details:
            typer.echo(exc.details, err=True)
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # a usage error: unknown option, bad value, no command
        sys.exit(_usage_error(exc))
    except typer.Abort:  # "no" to a confirmation, or end of input
        typer.echo("aborted; nothing was changed", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _usage_error(exc: typer.TyperException) -> int:
    """Print a usage error as one line (typer's own is a framed box under a usage banner)."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help is the answer
        text = exc.format_message()  # empty when typer has printed the help itself
        if text:
            typer.echo(text, err=True)
        return exc.exit_code
    message = " ".join(exc.format_message().split())
    context = getattr(exc, "ctx", None)  # only usage errors carry the command's context
    where = f" (see `{context.command_path} --help`)" if context is not None else ""
    typer.echo(f"error: {message}{where}", err=True)
    return exc.exit_code
