"""The team commands: `tenant`, `token` and `user`, each a group of subcommands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hatchet_local.cli.options import (
    ConfigOpt,
    OutputOpt,
    RevealOpt,
    Role,
    StackOpt,
    TextOrJson,
    context,
    load,
    print_rows,
)
from hatchet_local.redact import masked

tenant_app = typer.Typer(help="Tenants of the stack: create and list.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens of a tenant: create, list, revoke.", no_args_is_help=True)
user_app = typer.Typer(help="Dashboard logins limited to some tenants.", no_args_is_help=True)


@tenant_app.command("create")
def tenant_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Slug: lowercase words joined by '-'.")],
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
) -> None:
    """Create a tenant (the admin owns it) and keep a token for it."""
    from hatchet_local import teams

    tenant = teams.create_tenant(load(config_file, {"stack": stack}), context(ctx), name)
    typer.echo(f"Tenant {tenant.slug} created: {tenant.id}")
    typer.echo(f"Next: hatchet-local env --tenant {tenant.slug} --namespace auto --write .env")


@tenant_app.command("list")
def tenant_list(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    output: OutputOpt = TextOrJson.text,
) -> None:
    """Every tenant: id, slug and the number of live API tokens."""
    from hatchet_local import teams

    rows = teams.list_tenants(load(config_file, {"stack": stack}), context(ctx, quiet=True))
    print_rows(rows, output, f"{'ID':<38}{'SLUG':<24}TOKENS",
               lambda row: f"{row.id:<38}{row.slug:<24}{row.tokens}")  # fmt: skip


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    tenant: Annotated[str, typer.Option(help="Tenant slug.")] = "default",
    name: Annotated[str, typer.Option(help="A name to recognise the token by.")] = "hatchet-local",
    expires: Annotated[str, typer.Option(help="Lifetime, e.g. 90d, 12h.")] = "90d",
    write: Annotated[
        Path | None, typer.Option("--write", "-w", help="Merge its client settings into this file.")
    ] = None,
    reveal: RevealOpt = False,
) -> None:
    """Mint a new API token for a tenant (shown only with --reveal, or written with --write)."""
    from hatchet_local import envfile, teams
    from hatchet_local.config_values import duration
    from hatchet_local.names import check_name

    seconds = int(duration(expires, "--expires"))
    config = load(config_file, {"stack": stack})
    check_name(tenant, "--tenant")
    run = context(ctx, quiet=True)
    token_id, token = teams.create_token(config, run, tenant, name, f"{seconds}s")
    typer.echo(f"Token {token_id} ({name}) for tenant {tenant}, expires in {expires}.")
    if write is not None:
        envfile.write_env_file(write, teams.settings(token, config.namespace))
        typer.echo(f"wrote {write}")
    typer.echo(f"token {masked(token.token, reveal)}")


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    tenant: Annotated[str | None, typer.Option(help="One tenant; all when omitted.")] = None,
    output: OutputOpt = TextOrJson.text,
) -> None:
    """Live API tokens: id, tenant, name, expiry; `*` marks those hatchet-local hands out."""
    from hatchet_local import teams

    config = load(config_file, {"stack": stack})
    rows = teams.list_tokens(config, context(ctx, quiet=True), tenant)
    print_rows(rows, output, f"{'ID':<38}{'TENANT':<20}{'NAME':<20}EXPIRES",
               lambda row: f"{row.id:<38}{row.tenant:<20}{row.name:<20}{row.expires_at}"
               + (" *" if row.in_use else ""))  # fmt: skip


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token's id (see `token list`).")],
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
) -> None:
    """Revoke an API token at once; clients holding it are refused from then on."""
    from hatchet_local import teams

    teams.revoke_token(load(config_file, {"stack": stack}), context(ctx, quiet=True), token_id)
    typer.echo(f"Token {token_id} revoked; the engine refuses it within seconds (it caches "
               f"tokens for 5 s).")  # fmt: skip


@user_app.command("create")
def user_create(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The person's email: their login.")],
    tenant: Annotated[
        list[str], typer.Option("--tenant", "-t", help="A tenant they may see (repeatable).")
    ],
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    role: Annotated[Role, typer.Option(help="Their role in those tenants.")] = Role.member,
    reveal: RevealOpt = False,
) -> None:
    """Give a person a dashboard login limited to the tenants named."""
    from hatchet_local import teams

    config = load(config_file, {"stack": stack})
    run = context(ctx, quiet=True)
    password, joined = teams.create_user(config, run, email, tenant, role.value)
    typer.echo(f"User {email}: {role.value} of {', '.join(tenant)}"
               f"{' (joined ' + ', '.join(joined) + ')' if joined else ''}.")  # fmt: skip
    typer.echo(f"password {masked(password, reveal)}")


@user_app.command("list")
def user_list(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    output: OutputOpt = TextOrJson.text,
) -> None:
    """Everyone who may log in, with their tenants and roles."""
    from hatchet_local import teams

    rows = teams.list_users(load(config_file, {"stack": stack}), context(ctx, quiet=True))
    print_rows(rows, output, None, lambda row: f"{row.email:<36}" + ", ".join(
        f"{slug} ({role})" for slug, role in sorted(row.tenants.items())
    ))  # fmt: skip
