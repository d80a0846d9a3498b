"""`up` and `reset`: bring a stack to usable, and print where it is and what to run next."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hatchet_local.cli.options import (
    ConfigOpt,
    MessageQueue,
    OutputOpt,
    Profile,
    PullPolicy,
    RevealOpt,
    StackOpt,
    TextOrJson,
    TimingsOpt,
    UpOutput,
    YesOpt,
    confirm_deletion,
    context,
    load,
    print_ready,
    print_timings,
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
    timings: TimingsOpt = False,
    reveal: RevealOpt = False,
    snapshot: Annotated[
        str | None,
        typer.Option(metavar="NAME|FILE", help="Start a new stack from a snapshot's data."),
    ] = None,
) -> None:
    """Start the stack (or check it), wait until a task would run, write the client settings."""
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
    seed = None
    if snapshot is not None:
        from hatchet_local import snapshots

        seed = snapshots.seed(config, run, snapshot)  # checked before anything is written
    logs = Path(logs_dir) if logs_dir else None
    result = startup.up(config, run, ttl=lifetime, logs_dir=logs, seed=seed)
    if timings:
        print_timings(run)
    if output is UpOutput.github:
        print_github(result, run)
    else:
        print_ready(result, output, reveal)


def reset(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    tenant: Annotated[str | None, typer.Option(help="Reset one tenant only.")] = None,
    new_token: Annotated[
        bool, typer.Option("--new-token", help="Also new keys and a new token (old tokens die).")
    ] = False,
    yes: YesOpt = False,
    output: OutputOpt = TextOrJson.text,
    reveal: RevealOpt = False,
    timings: TimingsOpt = False,
) -> None:
    """Back to the stack right after its first bootstrap: runs, events and extra tenants
    go, the token in .env.hatchet stays valid and running workers keep working."""
    from hatchet_local import resets

    config = load(config_file, {"stack": stack})
    if tenant is None:
        confirm_deletion(config.stack, "Delete all runs, events and extra tenants of stack "
                         "{stack}?", yes, "reset deletes the stack's data")  # fmt: skip
    run = context(ctx)
    result = resets.reset(config, run, tenant=tenant, new_token=new_token)
    if timings:
        print_timings(run)
    print_ready(result, output, reveal)


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
