"""The command line: parse options, call one function, print its result.

`main()` is the only place an error becomes an exit code.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from hatchet_local import __version__
from hatchet_local.errors import ConfigError, HatchetLocalError, Interrupted

STARTED = time.monotonic()  # for `up --timings`: the whole command, imports included

app = typer.Typer(
    name="hatchet-local",
    help="A private Hatchet stack for every developer and every CI job.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Config file (default ./hatchet-local.yaml).")
]
StackOpt = Annotated[str | None, typer.Option("--stack", "-s", help="Stack name.")]
RevealOpt = Annotated[bool, typer.Option("--reveal", help="Show the token and passwords.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

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
}


def _config(config_file: Path | None, flags: dict[str, object]) -> Any:
    """Configuration from defaults, file, environment and these flags (dotted keys)."""
    from hatchet_local.config import load_config

    return load_config(Path.cwd(), config_path=config_file, flags=flags, flag_names=FLAG_NAMES)


def _context(*, quiet: bool = False) -> Any:
    import httpx

    from hatchet_local.console import Console
    from hatchet_local.runner import SubprocessRunner
    from hatchet_local.stack import Context
    from hatchet_local.state import state_root

    return Context(
        runner=SubprocessRunner(),
        console=Console(quiet=quiet),
        http=httpx.Client(),
        state_root=state_root(),
    )


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2))


@app.command()
def up(
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    hatchet_version: Annotated[
        str | None, typer.Option(help="Hatchet release, e.g. v0.101.27.")
    ] = None,
    message_queue: Annotated[str | None, typer.Option(help="rabbitmq or postgres.")] = None,
    dashboard: Annotated[bool | None, typer.Option("--dashboard/--no-dashboard")] = None,
    dashboard_port: Annotated[
        int | None, typer.Option(help="Host port of dashboard + API.")
    ] = None,
    grpc_port: Annotated[int | None, typer.Option(help="Host port of the engine's gRPC.")] = None,
    pull_policy: Annotated[str | None, typer.Option(help="always, missing or never.")] = None,
    # A str, not a Path: typer turns an empty value into Path("."), hiding the mistake.
    env_file: Annotated[str | None, typer.Option(help="Where to write client settings.")] = None,
    namespace: Annotated[
        str | None, typer.Option(help="HATCHET_CLIENT_NAMESPACE to write.")
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="ci: Postgres queue, no dashboard, fewest images.")
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
    output: Annotated[
        str, typer.Option("--output", "-o", help="text, json, env (dotenv) or github.")
    ] = "text",
    timings: Annotated[
        bool, typer.Option("--timings", help="Print how long each phase took (stderr).")
    ] = False,
    reveal: RevealOpt = False,
) -> None:
    """Start the stack (or check it), wait until it is usable, write the client settings."""
    from hatchet_local import sandbox, start

    _check_choice("--output", output, ("text", "json", "env", "github"))
    config = _config(config_file, {
        "stack": stack, "hatchet_version": hatchet_version, "message_queue": message_queue,
        "dashboard": dashboard, "ports.dashboard": dashboard_port, "ports.grpc": grpc_port,
        "pull_policy": pull_policy, "env_file": env_file,
        "namespace": namespace, "profile": profile, "advertise": advertise, "expose": expose,
    })  # fmt: skip
    if ttl is not None and not ephemeral:
        raise ConfigError(f"--ttl {ttl}: only an --ephemeral stack expires; add --ephemeral")
    lifetime = sandbox.parse_duration(ttl or "2h", "--ttl") if ephemeral else None
    if logs_dir is not None and (not logs_dir or Path(logs_dir).is_file()):
        # Checked now: on failure, a second error would hide the first.
        raise ConfigError(f"--logs-dir: expected a directory path, got {logs_dir!r}")
    ctx = _context()
    result = start.up(config, ctx, ttl=lifetime, logs_dir=Path(logs_dir) if logs_dir else None)
    if timings:
        for phase, seconds in ctx.console.timings.items():
            typer.echo(f"timing {phase:<18}{seconds:7.2f}s", err=True)
        typer.echo(f"timing {'whole command':<18}{time.monotonic() - STARTED:7.2f}s", err=True)
    if output == "github":
        _print_github(result, ctx)
    else:
        _print_ready(result, output, reveal)


def _print_github(result: Any, ctx: Any) -> None:
    """Masks first, then the settings into $GITHUB_ENV and the addresses into $GITHUB_OUTPUT."""
    import os

    from hatchet_local import ci

    secrets = dict.fromkeys([result.settings["HATCHET_CLIENT_TOKEN"], *ctx.redact.secrets()])
    typer.echo(ci.add_mask_lines(secrets), nl=False)
    outputs = {
        "dashboard-url": result.server_url, "grpc-address": result.grpc_address,
        "tenant-id": result.tenant_id, "stack": result.stack, "env-file": str(result.env_file),
    }  # fmt: skip
    env_path, output_path = ci.append_github_files(result.settings, outputs, os.environ)
    typer.echo(f"Hatchet stack {result.stack} is ready: {result.server_url}, gRPC "
               f"{result.grpc_address}; settings in {env_path.name}, outputs in "
               f"{output_path.name}.")  # fmt: skip


def _print_ready(result: Any, output: str, reveal: bool) -> None:
    """The summary of `up` and `reset`: where the stack is and what to run next."""
    from hatchet_local.envfile import masked

    settings = masked(result.settings, reveal)
    if output == "env":
        from hatchet_local.envfile import render

        typer.echo(render(settings, "dotenv"), nl=False)
        return
    team = getattr(result, "team", None)
    if output == "json":
        _print_json({
            "stack": result.stack, "dashboard_url": result.server_url,
            "grpc_address": result.grpc_address, "env_file": str(result.env_file),
            "tenant_id": result.tenant_id, "token_reused": result.token_reused,
            "settings": settings,
            **({"tenants": {
                "created": team.created, "minted": team.minted,
                "files": [str(item.path) for item in team.files],
            }} if team is not None else {}),
        })  # fmt: skip
        return
    typer.echo(f"Hatchet stack {result.stack} is ready.")
    typer.echo(
        f"  dashboard  {result.server_url}  (admin@example.com; "
        f"`hatchet-local status --reveal` shows the password)"
    )
    typer.echo(f"  gRPC       {result.grpc_address}")
    reused = "token reused" if result.token_reused else "new token"
    typer.echo(f"  settings   {result.env_file}  ({reused})")
    if reveal:
        typer.echo(f"  token      {settings['HATCHET_CLIENT_TOKEN']}")
    if team is not None:
        typer.echo(f"  tenants    {len(team.created)} created, {len(team.minted)} new token(s)")
        for item in team.files:
            typer.echo(f"             {item.path}")
    typer.echo(
        "Next: run your worker from this directory; the Hatchet Python SDK reads "
        f"{result.env_file.name} by itself."
    )


def _confirm(question: str, yes: bool, flag_hint: str) -> None:
    """Ask before destroying data; without a terminal, --yes is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError(f"{flag_hint}: add --yes to confirm")
    typer.confirm(question, abort=True)


@app.command()
def down(
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    volumes: Annotated[
        bool, typer.Option("--volumes", help="Also delete the stack's data.")
    ] = False,
    yes: YesOpt = False,
) -> None:
    """Stop and remove the stack's containers; data is kept unless --volumes."""
    from hatchet_local import stack as stacks

    config = _config(config_file, {"stack": stack})
    if volumes:
        _confirm(
            f"Delete all data of stack {config.stack}?",
            yes,
            "down --volumes deletes the stack's data",
        )
    if stacks.down(config, _context(), volumes=volumes):
        typer.echo(f"Stack {config.stack} is down{' and its data deleted' if volumes else ''}.")
    else:
        typer.echo(f"No stack {config.stack} to take down.")


@app.command()
def status(
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
    reveal: RevealOpt = False,
) -> None:
    """Services, health, ports, dashboard URL and admin login of the stack."""
    from hatchet_local import stack as stacks

    _check_choice("--output", output, ("text", "json"))
    info = stacks.status(_config(config_file, {"stack": stack}), _context(), reveal=reveal)
    if output == "json":
        _print_json(info)
        return
    typer.echo(
        f"stack      {info['stack']} ({info['state']}), Hatchet {info['hatchet_version']}, "
        f"queue {info['message_queue']}"
    )
    services = info["services"]
    assert isinstance(services, dict)
    for name, svc in services.items():
        typer.echo(f"  {name:<13}{svc['state']} {svc['health']}".rstrip())
    typer.echo(f"dashboard  {info['dashboard_url']}")
    typer.echo(f"login      {info['admin_email']} / {info['admin_password']}")
    typer.echo(f"gRPC       {info['grpc_address']}")
    typer.echo(f"directory  {info['directory']}")


@app.command()
def logs(
    service: Annotated[str | None, typer.Argument(help="One service; all when omitted.")] = None,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
    tail: Annotated[int, typer.Option("--tail", "-n", min=0)] = 100,
) -> None:
    """Show the stack's logs."""
    from hatchet_local import stack as stacks

    code = stacks.logs(
        _config(config_file, {"stack": stack}), _context(), service, follow=follow, lines=tail
    )
    raise typer.Exit(code)


@app.command()
def env(
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="dotenv, shell, json or github.")
    ] = "dotenv",
    reveal: RevealOpt = False,
    tenant: Annotated[
        str | None, typer.Option(help="The settings of this tenant (see `tenant list`).")
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(help="HATCHET_CLIENT_NAMESPACE; 'auto' makes dev-<your login name>."),
    ] = None,
    write: Annotated[
        Path | None,
        typer.Option("--write", "-w", help="Merge the settings into this file (0600)."),
    ] = None,
    hatchet_profile: Annotated[
        str | None,
        typer.Option(help="Also write them as this profile of ~/.hatchet/profiles.yaml."),
    ] = None,
) -> None:
    """Print (or --write) the client settings: the stack's, or one tenant's and namespace's
    for one developer (the token masked unless --reveal)."""
    from hatchet_local import envfile, teams
    from hatchet_local import stack as stacks

    _check_choice("--output", output, ("dotenv", "shell", "json", "github"))
    if namespace == "auto":
        namespace = teams.default_namespace()
    config = _config(config_file, {"stack": stack, "namespace": namespace})
    ctx = _context(quiet=True)
    if tenant is not None:
        teams.check_name(tenant, "--tenant")
        token = teams.tenant_token(config, ctx, tenant)
        settings = teams.settings(token, config.namespace)
    else:
        settings = stacks.settings_for(config, ctx)
    if hatchet_profile is not None:
        from hatchet_local.profiles import profiles_file, write_profile

        path = profiles_file()
        claims = stacks.token_claims(settings["HATCHET_CLIENT_TOKEN"])
        write_profile(path, hatchet_profile, settings["HATCHET_CLIENT_TOKEN"], claims,
                      settings["HATCHET_CLIENT_TENANT_ID"])  # fmt: skip
        typer.echo(f"profile {hatchet_profile} in {path}", err=True)
    if write is not None:
        envfile.write_env_file(write, settings)
        typer.echo(f"wrote {write}" + (f" (tenant {tenant})" if tenant else ""), err=True)
    elif output == "github":
        _print_github_env(settings)
    else:
        typer.echo(envfile.render(envfile.masked(settings, reveal), output), nl=False)


def _print_github_env(settings: dict[str, str]) -> None:
    """The token masked first, then the settings into $GITHUB_ENV."""
    import os

    from hatchet_local import ci

    typer.echo(ci.add_mask_lines([settings["HATCHET_CLIENT_TOKEN"]]), nl=False)
    outputs = {"tenant-id": settings["HATCHET_CLIENT_TENANT_ID"]}
    env_path, _ = ci.append_github_files(settings, outputs, os.environ)
    typer.echo(f"settings in {env_path.name}")


@app.command()
def render(
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    write: Annotated[Path | None, typer.Option("--write", "-w", help="Write to this file.")] = None,
) -> None:
    """Print the stack's compose file without starting anything."""
    from hatchet_local import stack as stacks

    text = stacks.preview(_config(config_file, {"stack": stack}), _context(quiet=True))
    if write is None:
        typer.echo(text, nl=False)
        return
    try:
        write.write_text(text)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise ConfigError(f"--write {write}: cannot write the file ({reason})") from None
    typer.echo(f"wrote {write}", err=True)


@app.command()
def doctor(
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """Check this machine for a stack: Docker, Compose, memory, disk, ports, images, clock."""
    from hatchet_local.doctor import diagnose
    from hatchet_local.runner import SubprocessRunner
    from hatchet_local.state import state_root

    _check_choice("--output", output, ("text", "json"))
    findings = diagnose(_config(config_file, {"stack": stack}), SubprocessRunner(), state_root())
    if output == "json":
        _print_json([f.as_dict() for f in findings])
    else:
        for f in findings:
            typer.echo(
                f"{f.status:<5} {f.check:<14}{f.detail}"
                + (f"\n      fix: {f.fix}" if f.fix else "")
            )
    if any(f.status == "fail" for f in findings):
        raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print hatchet-local's version and the Hatchet release it pins."""
    from hatchet_local.defaults import HATCHET_VERSION

    typer.echo(f"hatchet-local {__version__} (Hatchet {HATCHET_VERSION})")


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{option}: expected one of {', '.join(choices)}, got {value!r}")


# The other commands register themselves on `app` when imported.
from hatchet_local import cli_images, cli_stacks, cli_teams  # noqa: E402, F401


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted("interrupted; run the same command again to finish")


def main() -> None:
    """Entry point: every error, ours or a usage error, becomes one line and an exit code here.
    Ctrl-C raises Interrupted (not KeyboardInterrupt, which typer would end silently)."""
    signal.signal(signal.SIGINT, _interrupt)
    try:
        code = app(standalone_mode=False)
    except HatchetLocalError as exc:
        typer.echo(
            exc.message if isinstance(exc, Interrupted) else f"error: {exc.message}", err=True
        )
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
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help is the answer
        text = exc.format_message()  # empty when typer has printed the help itself
        if text:
            typer.echo(text, err=True)
        return exc.exit_code
    message = " ".join(exc.format_message().split())
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    typer.echo(f"error: {message}{where}", err=True)
    return exc.exit_code
