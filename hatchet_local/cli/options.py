"""What the command modules share: option types, choices, and the few steps every command
takes (load the configuration, build the context, ask before destroying, print JSON).

The command modules import from here, and the package root imports them: imports point one
way. Heavy modules are imported inside the functions that need them, so `--help` stays fast.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from enum import Enum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol, TypeVar

import typer

from hatchet_local.errors import ConfigError

if TYPE_CHECKING:
    from hatchet_local.config import Config
    from hatchet_local.context import Context
    from hatchet_local.startup import UpResult

RowT = TypeVar("RowT", bound="Row")
STARTED = time.monotonic()  # for --timings: the whole command, imports included


# --- choices (the config parsers accept the same values; a unit test keeps them equal) ------


class TextOrJson(StrEnum):
    text = "text"
    json = "json"


class UpOutput(StrEnum):
    text = "text"
    json = "json"
    env = "env"
    github = "github"


class EnvOutput(StrEnum):
    dotenv = "dotenv"
    shell = "shell"
    json = "json"
    github = "github"


class MessageQueue(StrEnum):
    rabbitmq = "rabbitmq"
    postgres = "postgres"


class PullPolicy(StrEnum):
    missing = "missing"
    always = "always"
    never = "never"


class Profile(StrEnum):
    default = "default"
    ci = "ci"


class Role(StrEnum):
    member = "member"
    admin = "admin"


# --- options shared by several commands ----------------------------------------------------

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Config file (default ./hatchet-local.yaml).")
]
StackOpt = Annotated[str | None, typer.Option("--stack", "-s", help="Stack name.")]
RevealOpt = Annotated[bool, typer.Option("--reveal", help="Show the token and passwords.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
TimingsOpt = Annotated[
    bool, typer.Option("--timings", help="Print how long each phase took (stderr).")
]
OutputOpt = Annotated[TextOrJson, typer.Option("--output", "-o", help="Output format.")]
TenantSettingsOpt = Annotated[
    str | None, typer.Option("--tenant", help="The settings of this tenant (see `tenant list`).")
]
NamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace", help="HATCHET_CLIENT_NAMESPACE; 'auto' makes dev-<your login name>."
    ),
]
ProfileOpt = Annotated[Profile | None, typer.Option(help="Defaults for a kind of stack.")]
# A server hatchet-local did not start (`server:` in the file); the password never a flag.
ServerOpt = Annotated[
    str | None, typer.Option("--server", help="Its URL (server.url); default: the project's stack.")
]
ServerGrpcOpt = Annotated[
    str | None, typer.Option("--server-grpc", help="gRPC host:port when tokens name another.")
]
CaBundleOpt = Annotated[
    Path | None, typer.Option("--ca-bundle", help="PEM file of the server's private CA.")
]
AdminEmailOpt = Annotated[str | None, typer.Option("--admin-email", help="The admin's login.")]
InsecureOpt = Annotated[
    bool | None, typer.Option("--insecure", help="Do not verify the server's TLS certificate.")
]
PasswordStdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the admin's password from standard input.")
]

# The flag behind each configuration key, for error messages.
FLAG_NAMES = {
    "stack": "--stack",
    "hatchet_version": "--hatchet-version",
    "message_queue": "--message-queue",
    "dashboard": "--dashboard",
    "ports.dashboard": "--dashboard-port",
    "ports.grpc": "--grpc-port",
    "pull_policy": "--pull-policy",
    "env_file": "--env-file",
    "namespace": "--namespace",
    "profile": "--profile",
    "advertise": "--advertise",
    "expose": "--expose",
    "server.url": "--server",
    "server.grpc": "--server-grpc",
    "server.ca_bundle": "--ca-bundle",
    "server.email": "--admin-email",
    "server.insecure": "--insecure",
}


def server_flags(
    server: str | None,
    grpc: str | None = None,
    ca_bundle: Path | None = None,
    email: str | None = None,
    insecure: bool | None = None,
) -> dict[str, object]:
    """The `server.*` configuration keys of the server options (None: not given)."""
    return {
        "server.url": server,
        "server.grpc": grpc,
        "server.ca_bundle": ca_bundle,
        "server.email": email,
        "server.insecure": insecure or None,
    }


def load_for_server(
    config_file: Path | None,
    stack: str | None,
    server: str | None,
    grpc: str | None,
    ca_bundle: Path | None,
    email: str | None,
    insecure: bool | None,
) -> Config:
    """`load` for a command that acts on a server: --stack and the server options."""
    return load(
        config_file, {"stack": stack, **server_flags(server, grpc, ca_bundle, email, insecure)}
    )


def load(config_file: Path | None, flags: dict[str, object]) -> Config:
    """Configuration from defaults, file, environment and these flags (dotted keys; an Enum
    flag counts by its value)."""
    from hatchet_local.config import load_config

    given = {key: value.value if isinstance(value, Enum) else value for key, value in flags.items()}
    return load_config(Path.cwd(), config_path=config_file, flags=given, flag_names=FLAG_NAMES)


def context(ctx: typer.Context, *, quiet: bool = False) -> Context:
    """The Context commands run in: the one a caller put in `ctx.obj` (a factory taking
    `quiet`, as tests do), else the real one."""
    if ctx.obj is not None:
        made: Context = ctx.obj(quiet=quiet)
        return made
    from hatchet_local.context import Context

    return Context.default(quiet=quiet)


def confirm(question: str, yes: bool, flag_hint: str) -> None:
    """Ask before destroying data; without a terminal, --yes is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError(f"{flag_hint}: add --yes to confirm")
    typer.confirm(question, abort=True)


def confirm_deletion(stack: str, question: str, yes: bool, flag_hint: str) -> None:
    """`confirm` before deleting a stack's data; run from another directory than the one that
    made the stack, the question (or the --yes this needs without a terminal) names every
    other directory using it. `question` holds `{stack}`."""
    from hatchet_local.stack import shared_from_elsewhere
    from hatchet_local.state import state_root

    shared = shared_from_elsewhere(state_root(), stack, Path.cwd())
    if shared is None:
        confirm(question.format(stack=stack), yes, flag_hint)
        return
    if yes:
        typer.echo(f"{shared}; going ahead (--yes)", err=True)
        return
    confirm(f"{shared[0].upper()}{shared[1:]}. {question.format(stack=stack)}", yes,
            f"{flag_hint}, and {shared}")  # fmt: skip


def print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2))


class Row(Protocol):
    def as_dict(self) -> dict[str, object]: ...


def print_rows(
    rows: Sequence[RowT], output: TextOrJson, header: str | None, line: Callable[[RowT], str]
) -> None:
    """A listing: a JSON array of the rows, or a header and one line per row."""
    if output is TextOrJson.json:
        print_json([row.as_dict() for row in rows])
        return
    if header is not None:
        typer.echo(header)
    for row in rows:
        typer.echo(line(row))


def age(seconds: int) -> str:
    """`3d`, `5h`, `12m` or `40s`: the largest whole unit."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def print_timings(run: Context) -> None:
    """`--timings`: each phase's seconds, then the whole command's, on stderr."""
    for phase, seconds in run.console.timings.items():
        typer.echo(f"timing {phase:<18}{seconds:7.2f}s", err=True)
    typer.echo(f"timing {'whole command':<18}{time.monotonic() - STARTED:7.2f}s", err=True)


def print_ready(result: UpResult, output: UpOutput | TextOrJson, reveal: bool) -> None:
    """The summary of `up` and `reset`: where the stack is and what to run next."""
    if output is UpOutput.env:
        from hatchet_local.envfile import render

        typer.echo(render(result.shown_settings(reveal), "dotenv"), nl=False)
        return
    if output.value == "json":
        print_json(result.as_dict(reveal))
        return
    typer.echo(f"Hatchet stack {result.stack} is ready.")
    typer.echo(
        f"  dashboard  {result.server_url}  (admin@example.com; "
        f"`hatchet-local status --reveal` shows the password)"
    )
    typer.echo(f"  gRPC       {result.grpc_address}")
    reused = "token reused" if result.token_reused else "new token"
    typer.echo(f"  settings   {result.env_file}  ({reused})")
    if len(result.directories) > 1:
        maker, *others = result.directories
        typer.echo(f"  shared     made in {maker}; also used by {', '.join(others)}")
    if reveal:
        typer.echo(f"  token      {result.settings['HATCHET_CLIENT_TOKEN']}")
    if result.team is not None:
        team = result.team
        typer.echo(f"  tenants    {len(team.created)} created, {len(team.minted)} new token(s)")
        for item in team.files:
            typer.echo(f"             {item.path}")
    from hatchet_local.client_settings import how_to_load

    typer.echo(how_to_load(result.env_file, Path.cwd()))
