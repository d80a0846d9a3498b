"""The team commands: `tenant`, `token` and `user`, each a group of subcommands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hatchet_local.cli import (
    ConfigOpt,
    RevealOpt,
    StackOpt,
    _check_choice,
    _config,
    _context,
    _print_json,
    app,
)

OutputOpt = Annotated[str, typer.Option("--output", "-o", help="text or json.")]
MASK = "********"

tenant_app = typer.Typer(help="Tenants of the stack: create and list.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens of a tenant: create, list, revoke.", no_args_is_help=True)
user_app = typer.Typer(help="Dashboard logins limited to some tenants.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")


@tenant_app.command("create")
def tenant_create(
    name: Annotated[str, typer.Argument(help="Slug: lowercase words joined by '-'.")],
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
) -> None:
    """Create a tenant (the admin owns it) and keep a token for it."""
    from hatchet_local import teams

    tenant = teams.create_tenant(_config(config_file, {"stack": stack}), _context(), name)
    typer.echo(f"Tenant {tenant.slug} created: {tenant.id}")
    typer.echo(f"Next: hatchet-local env --tenant {tenant.slug} --namespace auto --write .env")


@tenant_app.command("list")
def tenant_list(
    config_file: ConfigOpt = None, stack: StackOpt = None, output: OutputOpt = "text"
) -> None:
    """Every tenant: id, slug and the number of live API tokens."""
    from hatchet_local import teams

    _check_choice("--output", output, ("text", "json"))
    rows = teams.list_tenants(_config(config_file, {"stack": stack}), _context(quiet=True))
    if output == "json":
        _print_json(rows)
        return
    typer.echo(f"{'ID':<38}{'SLUG':<24}TOKENS")
    for row in rows:
        typer.echo(f"{row['id']!s:<38}{row['slug']!s:<24}{row['tokens']}")


@token_app.command("create")
def token_create(
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
    from hatchet_local.sandbox import parse_duration

    seconds = int(parse_duration(expires, "--expires"))
    config = _config(config_file, {"stack": stack})
    teams.check_name(tenant, "--tenant")
    token_id, token = teams.create_token(config, _context(quiet=True), tenant, name, f"{seconds}s")
    typer.echo(f"Token {token_id} ({name}) for tenant {tenant}, expires in {expires}.")
    if write is not None:
        envfile.write_env_file(write, teams.settings(token, config.namespace))
        typer.echo(f"wrote {write}")
    typer.echo(f"token {token.token if reveal else MASK}")


@token_app.command("list")
def token_list(
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    tenant: Annotated[str | None, typer.Option(help="One tenant; all when omitted.")] = None,
    output: OutputOpt = "text",
) -> None:
    """Live API tokens: id, tenant, name, expiry; `*` marks those hatchet-local hands out."""
    from hatchet_local import teams

    _check_choice("--output", output, ("text", "json"))
    config = _config(config_file, {"stack": stack})
    rows = teams.list_tokens(config, _context(quiet=True), tenant)
    if output == "json":
        _print_json(rows)
        return
    typer.echo(f"{'ID':<38}{'TENANT':<20}{'NAME':<20}EXPIRES")
    for row in rows:
        mark = " *" if row["in_use"] else ""
        typer.echo(
            f"{row['id']!s:<38}{row['tenant']!s:<20}{row['name']!s:<20}{row['expires_at']}{mark}"
        )


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (see `token list`).")],
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
) -> None:
    """Revoke an API token at once; clients holding it are refused from then on."""
    from hatchet_local import teams

    teams.revoke_token(_config(config_file, {"stack": stack}), _context(quiet=True), token_id)
    typer.echo(f"Token {token_id} revoked; the engine refuses it within seconds (it caches "
               f"tokens for 5 s).")  # fmt: skip


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Argument(help="The person's email: their login.")],
    tenant: Annotated[
        list[str], typer.Option("--tenant", "-t", help="A tenant they may see (repeatable).")
    ],
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    role: Annotated[str, typer.Option(help="member or admin.")] = "member",
    reveal: RevealOpt = False,
) -> None:
    """Give a person a dashboard login limited to the tenants named."""
    from hatchet_local import teams

    config = _config(config_file, {"stack": stack})
    password, joined = teams.create_user(config, _context(quiet=True), email, tenant, role)
    typer.echo(f"User {email}: {role} of {', '.join(tenant)}"
               f"{' (joined ' + ', '.join(joined) + ')' if joined else ''}.")  # fmt: skip
    typer.echo(f"password {password if reveal else MASK}")


@user_app.command("list")
def user_list(
    config_file: ConfigOpt = None, stack: StackOpt = None, output: OutputOpt = "text"
) -> None:
    """Everyone who may log in, with their tenants and roles."""
    from hatchet_local import teams

    _check_choice("--output", output, ("text", "json"))
    rows = teams.list_users(_config(config_file, {"stack": stack}), _context(quiet=True))
    if output == "json":
        _print_json(rows)
        return
    for row in rows:
        tenants = row["tenants"]
        assert isinstance(tenants, dict)
        roles = ", ".join(f"{slug} ({role})" for slug, role in sorted(tenants.items()))
        typer.echo(f"{row['email']!s:<36}{roles}")
