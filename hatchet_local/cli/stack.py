"""Commands on one stack besides bringing it up: `down`, `status`, `logs`, `env`, `render`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hatchet_local.cli.options import (
    ConfigOpt,
    EnvOutput,
    OutputOpt,
    RevealOpt,
    StackOpt,
    TextOrJson,
    YesOpt,
    confirm_deletion,
    context,
    load,
    print_json,
)
from hatchet_local.errors import ConfigError

if TYPE_CHECKING:
    from hatchet_local.status import StackStatus


def down(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    volumes: Annotated[
        bool, typer.Option("--volumes", help="Also delete the stack's data.")
    ] = False,
    yes: YesOpt = False,
) -> None:
    """Stop and remove the stack's containers; data is kept unless --volumes."""
    from hatchet_local import stack as stacks

    config = load(config_file, {"stack": stack})
    if volumes:
        confirm_deletion(
            config.stack, "Delete all data of stack {stack}?", yes,
            "down --volumes deletes the stack's data",
        )  # fmt: skip
    if stacks.down(config, context(ctx), volumes=volumes):
        typer.echo(f"Stack {config.stack} is down{' and its data deleted' if volumes else ''}.")
    else:
        typer.echo(f"No stack {config.stack} to take down.")


def status(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    output: OutputOpt = TextOrJson.text,
    reveal: RevealOpt = False,
) -> None:
    """Services, health, ports, dashboard URL and admin login of the stack."""
    from hatchet_local import status as stack_status

    info = stack_status.status(load(config_file, {"stack": stack}), context(ctx), reveal=reveal)
    if output is TextOrJson.json:
        print_json(info.as_dict())
    else:
        _print_status(info)


def _print_status(info: StackStatus) -> None:
    typer.echo(
        f"stack      {info.stack} ({info.state}), Hatchet {info.hatchet_version}, "
        f"queue {info.message_queue}"
    )
    for name, service in info.services.items():
        typer.echo(f"  {name:<13}{service.state} {service.health}".rstrip())
    typer.echo(f"dashboard  {info.dashboard_url}")
    typer.echo(f"login      {info.admin_email} / {info.admin_password}")
    typer.echo(f"gRPC       {info.grpc_address}")
    typer.echo(f"directory  {info.directory}")
    if len(info.directories) > 1:
        typer.echo(f"shared     also used by {', '.join(info.directories[1:])}")
    if info.state == "failing":
        typer.echo(f"warning: stack {info.stack} runs but fails: {'; '.join(info.problems)}",
                   err=True)  # fmt: skip
    elif info.problems:
        typer.echo(
            f"warning: stack {info.stack} is only partly running ({', '.join(info.problems)}); "
            f"`hatchet-local up` brings it back",
            err=True,
        )


def logs(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Argument(help="One service; all when omitted.")] = None,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
    tail: Annotated[int, typer.Option("--tail", "-n", min=0)] = 100,
) -> None:
    """Show the stack's logs."""
    from hatchet_local import status as stack_status

    config = load(config_file, {"stack": stack})
    code = stack_status.logs(config, context(ctx), service, follow=follow, lines=tail)
    raise typer.Exit(code)


def env(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    output: Annotated[EnvOutput, typer.Option("--output", "-o", help="Output format.")] = (
        EnvOutput.dotenv
    ),
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
    from hatchet_local.client_settings import TENANT_KEY, TOKEN_KEY, token_claims
    from hatchet_local.names import check_name, default_namespace
    from hatchet_local.status import settings_for

    if namespace == "auto":
        namespace = default_namespace()
    config = load(config_file, {"stack": stack, "namespace": namespace})
    run = context(ctx, quiet=True)
    if tenant is not None:
        check_name(tenant, "--tenant")
        settings = teams.settings(teams.tenant_token(config, run, tenant), config.namespace)
    else:
        settings = settings_for(config, run)
    if hatchet_profile is not None:
        from hatchet_local.profiles import profiles_file, write_profile

        path = profiles_file()
        token = settings[TOKEN_KEY]
        write_profile(path, hatchet_profile, token, token_claims(token), settings[TENANT_KEY])
        typer.echo(f"profile {hatchet_profile} in {path}", err=True)
    if write is not None:
        envfile.write_env_file(write, settings)
        typer.echo(f"wrote {write}" + (f" (tenant {tenant})" if tenant else ""), err=True)
    elif output is EnvOutput.github:
        _print_github_env(settings)
    else:
        typer.echo(envfile.render(envfile.masked(settings, reveal), output.value), nl=False)


def _print_github_env(settings: dict[str, str]) -> None:
    """The token masked first, then the settings into $GITHUB_ENV."""
    import os

    from hatchet_local import ci
    from hatchet_local.client_settings import TENANT_KEY, TOKEN_KEY

    typer.echo(ci.add_mask_lines([settings[TOKEN_KEY]]), nl=False)
    env_path, _ = ci.append_github_files(settings, {"tenant-id": settings[TENANT_KEY]}, os.environ)
    typer.echo(f"settings in {env_path.name}")


def render(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    write: Annotated[Path | None, typer.Option("--write", "-w", help="Write to this file.")] = None,
) -> None:
    """Print the stack's compose file without starting anything."""
    from hatchet_local.stack import preview

    text = preview(load(config_file, {"stack": stack}), context(ctx, quiet=True))
    if write is None:
        typer.echo(text, nl=False)
        return
    try:
        write.write_text(text)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise ConfigError(f"--write {write}: cannot write the file ({reason})") from None
    typer.echo(f"wrote {write}", err=True)
