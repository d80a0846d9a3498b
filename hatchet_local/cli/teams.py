"""The team commands: `tenant`, `token`, `user` and `member`, each a group of subcommands.
They act on the project's stack, or on the server of `server:` / `--server`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hatchet_local.cli.options import (
    AdminEmailOpt,
    CaBundleOpt,
    ConfigOpt,
    InsecureOpt,
    OutputOpt,
    RevealOpt,
    Role,
    ServerGrpcOpt,
    ServerOpt,
    StackOpt,
    TextOrJson,
    YesOpt,
    confirm,
    context,
    load,
    load_for_server,
    print_rows,
)
from hatchet_local.redact import masked

if TYPE_CHECKING:
    from hatchet_local.config import Config
    from hatchet_local.teams import MemberRow

tenant_app = typer.Typer(help="Tenants: create, list, archive.", no_args_is_help=True)
token_app = typer.Typer(
    help="API tokens of a tenant: create, list, revoke, rotate.", no_args_is_help=True
)
user_app = typer.Typer(help="Dashboard logins limited to some tenants.", no_args_is_help=True)
member_app = typer.Typer(help="Members of tenants and invites pending.", no_args_is_help=True)


def _production_needs_yes(config: Config, tenant: str, yes: bool, command: str) -> None:
    from hatchet_local.errors import ConfigError

    spec = config.tenants.get(tenant)
    if spec is not None and spec.production(tenant) and not yes:
        raise ConfigError(f"{command} --tenant {tenant}: a production tenant's tokens and "
                          f"members change only with --yes; nothing was changed")  # fmt: skip


@tenant_app.command("create")
def tenant_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Slug: lowercase words joined by '-'.")],
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    server: ServerOpt = None,
    server_grpc: ServerGrpcOpt = None,
    ca_bundle: CaBundleOpt = None,
    admin_email: AdminEmailOpt = None,
    insecure: InsecureOpt = None,
) -> None:
    """Create a tenant (the admin owns it) and keep a token for it."""
    from hatchet_local import teams

    config = load_for_server(
        config_file, stack, server, server_grpc, ca_bundle, admin_email, insecure
    )
    tenant = teams.create_tenant(config, context(ctx), name)
    typer.echo(f"Tenant {tenant.slug} created: {tenant.id}")
    typer.echo(f"Next: hatchet-local env --tenant {tenant.slug} --namespace auto --write .env")


@tenant_app.command("list")
def tenant_list(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    server: ServerOpt = None,
    server_grpc: ServerGrpcOpt = None,
    ca_bundle: CaBundleOpt = None,
    admin_email: AdminEmailOpt = None,
    insecure: InsecureOpt = None,
    output: OutputOpt = TextOrJson.text,
) -> None:
    """Every tenant the admin belongs to: id, slug, live API tokens, archived or not."""
    from hatchet_local import teams

    config = load_for_server(
        config_file, stack, server, server_grpc, ca_bundle, admin_email, insecure
    )
    rows = teams.list_tenants(config, context(ctx, quiet=True))
    print_rows(rows, output, f"{'ID':<38}{'SLUG':<24}TOKENS",
               lambda row: f"{row.id:<38}{row.slug:<24}{row.tokens}"
               + ("  archived" if row.archived else ""))  # fmt: skip


@tenant_app.command("archive")
def tenant_archive(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The tenant's slug.")],
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    server: ServerOpt = None,
    server_grpc: ServerGrpcOpt = None,
    ca_bundle: CaBundleOpt = None,
    admin_email: AdminEmailOpt = None,
    insecure: InsecureOpt = None,
    yes: YesOpt = False,
) -> None:
    """Archive a tenant (Hatchet has no tenant delete): revoke all its tokens and mark it.
    Its data stays on the server."""
    from hatchet_local import teams

    config = load_for_server(
        config_file, stack, server, server_grpc, ca_bundle, admin_email, insecure
    )
    confirm(f"Archive tenant {name}: revoke all its tokens?", yes,
            f"tenant archive {name} revokes every token of the tenant")  # fmt: skip
    result = teams.archive_tenant(config, context(ctx, quiet=True), name)
    typer.echo(
        f"Tenant {name} archived: {len(result.revoked)} token(s) revoked, renamed "
        f"'... (archived)'. Hatchet cannot delete a tenant: its data (runs, workflows, "
        f"members) stays on the server."
    )


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    server: ServerOpt = None,
    server_grpc: ServerGrpcOpt = None,
    ca_bundle: CaBundleOpt = None,
    admin_email: AdminEmailOpt = None,
    insecure: InsecureOpt = None,
    tenant: Annotated[str, typer.Option(help="Tenant slug.")] = "default",
    name: Annotated[str, typer.Option(help="A name to recognise the token by.")] = "hatchet-local",
    expires: Annotated[str, typer.Option(help="Lifetime, e.g. 90d, 12h.")] = "90d",
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Viewer access over REST, no gRPC (Hatchet>=0.116).")
    ] = False,
    write: Annotated[
        Path | None, typer.Option("--write", "-w", help="Merge its client settings into this file.")
    ] = None,
    reveal: RevealOpt = False,
    yes: YesOpt = False,
) -> None:
    """Mint a new API token for a tenant (shown only with --reveal, or written with --write);
    a production tenant's only with --yes."""
    from hatchet_local import envfile, tokens
    from hatchet_local.config_values import duration
    from hatchet_local.names import check_name
    from hatchet_local.server import connect_config

    seconds = int(duration(expires, "--expires"))
    config = load_for_server(
        config_file, stack, server, server_grpc, ca_bundle, admin_email, insecure
    )
    check_name(tenant, "--tenant")
    _production_needs_yes(config, tenant, yes, "token create")
    conn = connect_config(config, context(ctx, quiet=True))
    token_id, token = tokens.create_token(conn, tenant, name, f"{seconds}s", read_only=read_only)
    kind = "read-only token" if read_only else "Token"
    typer.echo(f"{kind} {token_id} ({name}) for tenant {tenant}, expires in {expires}.")
    if write is not None:
        envfile.write_env_file(write, tokens.settings(conn, token, config.namespace))
        typer.echo(f"wrote {write}")
    typer.echo(f"token {masked(token.token, reveal)}")


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    server: ServerOpt = None,
    server_grpc: ServerGrpcOpt = None,
    ca_bundle: CaBundleOpt = None,
    admin_email: AdminEmailOpt = None,
    insecure: InsecureOpt = None,
    tenant: Annotated[str | None, typer.Option(help="One tenant; all when omitted.")] = None,
    output: OutputOpt = TextOrJson.text,
) -> None:
    """Live API tokens: id, tenant, name, expiry, and how many env files hatchet-local handed
    it out in; `*` marks the one it keeps per tenant."""
    from hatchet_local import tokens
    from hatchet_local.server import connect_config

    config = load_for_server(
        config_file, stack, server, server_grpc, ca_bundle, admin_email, insecure
    )
    rows = tokens.list_tokens(connect_config(config, context(ctx, quiet=True)), tenant)
    print_rows(rows, output, f"{'ID':<38}{'TENANT':<20}{'NAME':<20}{'EXPIRES':<30}HANDED OUT",
               lambda row: f"{row.id:<38}{row.tenant:<20}{row.name:<20}{row.expires_at:<30}"
               f"{row.handed_out}{' *' if row.in_use else ''}"
               + ("  read-only" if row.read_only else ""))  # fmt: skip


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token's id (see `token list`).")],
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    server: ServerOpt = None,
    server_grpc: ServerGrpcOpt = None,
    ca_bundle: CaBundleOpt = None,
    admin_email: AdminEmailOpt = None,
    insecure: InsecureOpt = None,
    yes: YesOpt = False,
) -> None:
    """Revoke an API token at once; clients holding it are refused from then on (a
    production tenant's only with --yes)."""
    from hatchet_local import teams, tokens
    from hatchet_local.server import connect_config

    config = load_for_server(
        config_file, stack, server, server_grpc, ca_bundle, admin_email, insecure
    )
    conn = connect_config(config, context(ctx, quiet=True))
    tokens.revoke_token(conn, token_id, teams.production(config), yes=yes)
    typer.echo(f"Token {token_id} revoked; the engine refuses it within seconds (it caches "
               f"tokens for 5 s).")  # fmt: skip


@token_app.command("rotate")
def token_rotate(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option(help="Tenant slug whose kept token is replaced.")],
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    server: ServerOpt = None,
    server_grpc: ServerGrpcOpt = None,
    ca_bundle: CaBundleOpt = None,
    admin_email: AdminEmailOpt = None,
    insecure: InsecureOpt = None,
    yes: YesOpt = False,
) -> None:
    """Replace a tenant's kept token: the new one is minted and proven, written to every file
    the old one was handed out to, and only then is the old one revoked."""
    from hatchet_local import tokens
    from hatchet_local.names import check_name
    from hatchet_local.server import connect_config

    config = load_for_server(
        config_file, stack, server, server_grpc, ca_bundle, admin_email, insecure
    )
    check_name(tenant, "--tenant")
    _production_needs_yes(config, tenant, yes, "token rotate")
    result = tokens.rotate(connect_config(config, context(ctx, quiet=True)), tenant)
    old = result.old_id or "(none)"
    typer.echo(f"Tenant {tenant}: new token {result.new_id} written to "
               f"{len(result.rewritten)} file(s); old token {old} revoked.")  # fmt: skip
    for path in result.skipped:
        typer.echo(f"left alone (it holds another token now): {path}", err=True)


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
    yes: YesOpt = False,
) -> None:
    """Give a person a dashboard login limited to the tenants named (the project's stack;
    on a central server, declare members in the file and `apply`: they accept invites)."""
    from hatchet_local import teams

    config = load(config_file, {"stack": stack})
    for slug in tenant:
        _production_needs_yes(config, slug, yes, "user create")
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


@member_app.command("list")
def member_list(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    server: ServerOpt = None,
    server_grpc: ServerGrpcOpt = None,
    ca_bundle: CaBundleOpt = None,
    admin_email: AdminEmailOpt = None,
    insecure: InsecureOpt = None,
    tenant: Annotated[str | None, typer.Option(help="One tenant; all when omitted.")] = None,
    output: OutputOpt = TextOrJson.text,
) -> None:
    """Members of each tenant with their role, and invites not accepted yet (the invitee
    accepts in their own session: the dashboard, signed in as that email)."""
    from hatchet_local import teams

    config = load_for_server(
        config_file, stack, server, server_grpc, ca_bundle, admin_email, insecure
    )
    rows = teams.list_members(config, context(ctx, quiet=True), tenant)
    print_rows(rows, output, f"{'TENANT':<20}{'EMAIL':<36}{'ROLE':<10}STATE", _member_line)


def _member_line(row: MemberRow) -> str:
    state = "pending: they accept in their own session" if row.pending else "member"
    if row.declared and row.declared != row.role:
        state += f" (the file says {row.declared})"
    return f"{row.tenant:<20}{row.email:<36}{row.role:<10}{state}"
