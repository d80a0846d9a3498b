"""`up` and `reset`: bring a stack to usable, and print where it is and what to run next."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hatchet_local.cli.options import (
    STARTED,
    ConfigOpt,
    MessageQueue,
    OutputOpt,
    Profile,
    PullPolicy,
    RevealOpt,
    StackOpt,
    TextOrJson,
    UpOutput,
    YesOpt,
    confirm_deletion,
    context,
    load,
    print_json,
)
from hatchet_local.errors import ConfigError

if TYPE_CHECKING:
    from hatchet_local.context import Context
    from hatchet_local.startup import UpResult


def up(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    hatchet_version: Annotated[
        str | None, typer.Option(help="Hatchet release, e.g. v0.101.27.")
    ] = None,
    message_queue: Annotated[MessageQueue | None, typer.Option(help="The message queue.")] = None,
    dashboard: Annotated[bool | None, typer.Option("--dashboard/--no-dashboard")] = None,
    dashboard_port: Annotated[
        int | None, typer.Option(help="Host port of dashboard + API.")
    ] = None,
    grpc_port: Annotated[int | None, typer.Option(help="Host port of the engine's gRPC.")] = None,
    pull_policy: Annotated[PullPolicy | None, typer.Option(help="When to pull images.")] = None,
    # A str, not a Path: typer turns an empty value into Path("."), hiding the mistake.
    env_file: Annotated[str | None, typer.Option(help="Where to write client settings.")] = None,
    namespace: Annotated[
        str | None, typer.Option(help="HATCHET_CLIENT_NAMESPACE to write.")
    ] = None,
    profile: Annotated[
        Profile | None, typer.Option(help="ci: Postgres queue, no dashboard, fewest images.")
    ] = None,
    advertise: Annotated[
        str | None,
        typer.Option(
            help="Serve other machines: bind beyond loopback and put this host in tokens."
        ),
    ] = None,
    expose: Annotated[
        bool | None,
        typer.Option("--expose/--no-expose", help="Bind on all interfaces (addresses kept)."),
    ] = None,
    ephemeral: Annotated[
        bool,
        typer.Option(
            "--ephemeral",
            help="Let `prune --expired` (and every later `up`) "
            "remove this stack once --ttl has passed.",
        ),
    ] = False,
    ttl: Annotated[
        str | None, typer.Option(help="Lifetime of an --ephemeral stack, e.g. 2h (default).")
    ] = None,
    logs_dir: Annotated[
        str | None, typer.Option(help="On failure, save every service's full log here.")
    ] = None,
    output: Annotated[UpOutput, typer.Option("--output", "-o", help="Output format.")] = (
        UpOutput.text
    ),
    timings: Annotated[
        bool, typer.Option("--timings", help="Print how long each phase took (stderr).")
    ] = False,
    reveal: RevealOpt = False,
) -> None:
    """Start the stack (or check it), wait until it is usable, write the client settings."""
    from hatchet_local import startup
    from hatchet_local.config_values import duration

    config = load(config_file, {
        "stack": stack, "hatchet_version": hatchet_version, "message_queue": message_queue,
        "dashboard": dashboard, "ports.dashboard": dashboard_port, "ports.grpc": grpc_port,
        "pull_policy": pull_policy, "env_file": env_file,
        "namespace": namespace, "profile": profile, "advertise": advertise, "expose": expose,
    })  # fmt: skip
    if ttl is not None and not ephemeral:
        raise ConfigError(f"--ttl {ttl}: only an --ephemeral stack expires; add --ephemeral")
    lifetime = duration(ttl or "2h", "--ttl") if ephemeral else None
    if logs_dir is not None and (not logs_dir or Path(logs_dir).is_file()):
        # Checked now: on failure, a second error would hide the first.
        raise ConfigError(f"--logs-dir: expected a directory path, got {logs_dir!r}")
    run = context(ctx)
    result = startup.up(config, run, ttl=lifetime, logs_dir=Path(logs_dir) if logs_dir else None)
    if timings:
        for phase, seconds in run.console.timings.items():
            typer.echo(f"timing {phase:<18}{seconds:7.2f}s", err=True)
        typer.echo(f"timing {'whole command':<18}{time.monotonic() - STARTED:7.2f}s", err=True)
    if output is UpOutput.github:
        print_github(result, run)
    else:
        print_ready(result, output, reveal)


def reset(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    tenant: Annotated[str | None, typer.Option(help="Reset one tenant only.")] = None,
    yes: YesOpt = False,
    output: OutputOpt = TextOrJson.text,
    reveal: RevealOpt = False,
) -> None:
    """Wipe the stack's data and bootstrap it afresh, with a new token in .env.hatchet."""
    from hatchet_local import startup

    config = load(config_file, {"stack": stack})
    if tenant is None:
        confirm_deletion(config.stack, "Delete all data of stack {stack} and start afresh?", yes,
                         "reset deletes the stack's data")  # fmt: skip
    print_ready(startup.reset(config, context(ctx), tenant=tenant), output, reveal)


def print_github(result: UpResult, run: Context) -> None:
    """Masks first, then the settings into $GITHUB_ENV and the addresses into $GITHUB_OUTPUT."""
    import os

    from hatchet_local import ci

    token = result.settings["HATCHET_CLIENT_TOKEN"]
    typer.echo(ci.add_mask_lines(dict.fromkeys([token, *run.redact.secrets()])), nl=False)
    outputs = {
        "dashboard-url": result.server_url, "grpc-address": result.grpc_address,
        "tenant-id": result.tenant_id, "stack": result.stack, "env-file": str(result.env_file),
    }  # fmt: skip
    env_path, output_path = ci.append_github_files(result.settings, outputs, os.environ)
    typer.echo(f"Hatchet stack {result.stack} is ready: {result.server_url}, gRPC "
               f"{result.grpc_address}; settings in {env_path.name}, outputs in "
               f"{output_path.name}.")  # fmt: skip


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
