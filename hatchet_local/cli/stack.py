"""Commands on one stack besides bringing it up: `down`, `status`, `logs`, `env`, `render`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hatchet_local.cli.options import (
    AdminEmailOpt,
    CaBundleOpt,
    ConfigOpt,
    EnvOutput,
    InsecureOpt,
    NamespaceOpt,
    OutputOpt,
    RevealOpt,
    ServerGrpcOpt,
    ServerOpt,
    StackOpt,
    TenantSettingsOpt,
    TextOrJson,
    YesOpt,
    confirm_deletion,
    context,
    load,
    print_json,
    server_flags,
)
from hatchet_local.errors import ConfigError

if TYPE_CHECKING:
    from hatchet_local.config import Config
    from hatchet_local.context import Context
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
    server: ServerOpt = None,
    server_grpc: ServerGrpcOpt = None,
    ca_bundle: CaBundleOpt = None,
    admin_email: AdminEmailOpt = None,
    insecure: InsecureOpt = None,
    output: Annotated[EnvOutput, typer.Option("--output", "-o", help="Output format.")] = (
        EnvOutput.dotenv
    ),
    reveal: RevealOpt = False,
    tenant: TenantSettingsOpt = None,
    namespace: NamespaceOpt = None,
    write: Annotated[
        Path | None,
        typer.Option("--write", "-w", help="Merge the settings into this file (0600)."),
    ] = None,
    hatchet_profile: Annotated[
        str | None,
        typer.Option(help="Also write them as this profile of ~/.hatchet/profiles.yaml."),
    ] = None,
    no_export: Annotated[
        bool,
        typer.Option(
            "--no-export", help="With --output shell: KEY='value' lines, without `export`."
        ),
    ] = False,
) -> None:
    """Print (or --write) the client settings: the stack's, or one tenant's and namespace's
    for one developer (the token masked unless --reveal), on the stack or a server."""
    from hatchet_local import envfile

    if no_export and output is not EnvOutput.shell:
        raise ConfigError("--no-export: only with --output shell")
    flags = {"stack": stack, "namespace": _namespace(namespace)}
    config = load(config_file, flags | server_flags(server, server_grpc, ca_bundle, admin_email,
                                                     insecure))  # fmt: skip
    settings = _settings(config, context(ctx, quiet=True), tenant, write)
    if hatchet_profile is not None:
        _write_hatchet_profile(hatchet_profile, settings)
    if write is not None:
        typer.echo(f"wrote {write}" + (f" (tenant {tenant})" if tenant else ""), err=True)
        if config.namespace and tenant:
            typer.echo(f"namespace {config.namespace} is a client-side prefix inside tenant "
                       f"{tenant}: it keeps work apart, not access (the token sees the whole "
                       f"tenant)", err=True)  # fmt: skip
    elif output is EnvOutput.github:
        _print_github_env(settings)
    elif no_export:
        shown = envfile.masked(settings, reveal)
        typer.echo(envfile.shell_lines(shown, export=False), nl=False)
    else:
        typer.echo(envfile.render(envfile.masked(settings, reveal), output.value), nl=False)


def _write_hatchet_profile(name: str, settings: dict[str, str]) -> None:
    from hatchet_local.client_settings import TENANT_KEY, TOKEN_KEY, token_claims
    from hatchet_local.profiles import profiles_file, write_profile

    path = profiles_file()
    token = settings[TOKEN_KEY]
    claims = {
        **token_claims(token),
        "server_url": settings["HATCHET_CLIENT_SERVER_URL"],
        "grpc_broadcast_address": settings["HATCHET_CLIENT_HOST_PORT"],
    }
    tls = settings["HATCHET_CLIENT_TLS_STRATEGY"]
    write_profile(path, name, token, claims, settings[TENANT_KEY], tls_strategy=tls)
    typer.echo(f"profile {name} in {path}", err=True)


def run(
    ctx: typer.Context,
    command: Annotated[list[str], typer.Argument(help="The command and its arguments.")],
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    tenant: TenantSettingsOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Run a command (a worker in any language) with the client settings in its environment
    only, never on its command line: `hatchet-local run -- node worker.js`."""
    import os

    from hatchet_local.client_settings import for_every_sdk
    from hatchet_local.runner import replace_process

    config = load(config_file, {"stack": stack, "namespace": _namespace(namespace)})
    settings = _settings(config, context(ctx, quiet=True), tenant)
    replace_process(command, {**os.environ, **for_every_sdk(settings)})


def _namespace(given: str | None) -> str | None:
    from hatchet_local.names import default_namespace

    return default_namespace() if given == "auto" else given


def _settings(
    config: Config, run: Context, tenant: str | None, write: Path | None = None
) -> dict[str, str]:
    """The stack's client settings, or one tenant's (on the stack or a server); with `write`,
    also merged into that file (a tenant's recorded as handed out: `token rotate` rewrites
    it)."""
    from hatchet_local import envfile, teams, tokens
    from hatchet_local.names import check_name
    from hatchet_local.status import settings_for

    if tenant is not None:
        check_name(tenant, "--tenant")
        teams.check_namespace(config, tenant, config.namespace)
        conn, token = teams.tenant_token(config, run, tenant)
        if write is not None:
            tokens.write_handout(conn, token, config.namespace, write)
        return tokens.settings(conn, token, config.namespace)
    if config.server.url:
        raise ConfigError("on a server hatchet-local did not start, name a tenant with "
                          "--tenant (see `hatchet-local tenant list`)")  # fmt: skip
    settings = settings_for(config, run)
    if write is not None:
        envfile.write_env_file(write, settings)
    return settings


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
