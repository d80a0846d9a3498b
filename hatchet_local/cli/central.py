"""A Hatchet server hatchet-local did not start: `server login|logout|status`, and `plan` /
`apply` of the `tenants:` declaration (which also works on the project's own stack)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from hatchet_local.cli.options import (
    AdminEmailOpt,
    CaBundleOpt,
    ConfigOpt,
    InsecureOpt,
    OutputOpt,
    PasswordStdinOpt,
    ServerGrpcOpt,
    ServerOpt,
    StackOpt,
    TextOrJson,
    YesOpt,
    context,
    load,
    load_for_server,
    print_json,
    server_flags,
)

if TYPE_CHECKING:
    from hatchet_local.plan import ApplyResult, Plan

server_app = typer.Typer(
    help="A Hatchet server hatchet-local did not start: log in, log out, status.",
    no_args_is_help=True,
)


@server_app.command("login")
def server_login(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    server: ServerOpt = None,
    server_grpc: ServerGrpcOpt = None,
    ca_bundle: CaBundleOpt = None,
    admin_email: AdminEmailOpt = None,
    insecure: InsecureOpt = None,
    password_stdin: PasswordStdinOpt = False,
) -> None:
    """Log in as the admin and keep the session (0600) in the state directory. The password
    comes from --password-stdin, HATCHET_LOCAL_SERVER_PASSWORD or a prompt."""
    from hatchet_local import server as servers

    flags = server_flags(server, server_grpc, ca_bundle, admin_email, insecure)
    conn = servers.login(load(config_file, flags), context(ctx), password_stdin=password_stdin)
    typer.echo(
        f"Logged in to {conn.server.url} (Hatchet {conn.info.version or 'unknown'}) as "
        f"{conn.server.email}; session kept in {conn.store.session_file}"
    )


@server_app.command("logout")
def server_logout(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    server: ServerOpt = None,
    ca_bundle: CaBundleOpt = None,
    insecure: InsecureOpt = None,
) -> None:
    """End the kept session on the server and forget it here."""
    from hatchet_local import server as servers

    config = load(config_file, server_flags(server, None, ca_bundle, None, insecure))
    if servers.logout(config, context(ctx)):
        typer.echo(f"Logged out of {config.server.url}; the session was forgotten.")
    else:
        typer.echo(f"No session kept for {config.server.url}.")


@server_app.command("status")
def server_status(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    server: ServerOpt = None,
    ca_bundle: CaBundleOpt = None,
    insecure: InsecureOpt = None,
    output: OutputOpt = TextOrJson.text,
) -> None:
    """The server's version, how one logs in, what it allows, and whether a session is kept.
    Logs in to nothing."""
    from hatchet_local import server as servers

    config = load_for_server(config_file, stack, server, None, ca_bundle, None, insecure)
    info = servers.status(config, context(ctx, quiet=True))
    if output is TextOrJson.json:
        print_json(info.as_dict())
        return
    yes_no = {True: "yes", False: "no"}
    typer.echo(f"server       {info.url} (Hatchet {info.version})")
    typer.echo(f"login        {', '.join(info.login) or 'unknown'}; session: "
               f"{info.logged_in or 'none'}")  # fmt: skip
    typer.echo(f"allows       tenant creation {yes_no[info.allow_create_tenant]}, invites "
               f"{yes_no[info.allow_invites]}, sign-up {yes_no[info.allow_signup]}")  # fmt: skip
    typer.echo(f"read-only    {'supported' if info.read_only_tokens else 'not supported'}")
    typer.echo(f"state        {info.state_dir}")


def plan(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    server: ServerOpt = None,
    server_grpc: ServerGrpcOpt = None,
    ca_bundle: CaBundleOpt = None,
    admin_email: AdminEmailOpt = None,
    insecure: InsecureOpt = None,
    password_stdin: PasswordStdinOpt = False,
    output: OutputOpt = TextOrJson.text,
) -> None:
    """Show what `apply` would change on the server, changing nothing."""
    from hatchet_local import plan as plans
    from hatchet_local.server import connect_config

    config = load_for_server(config_file, stack, server, server_grpc, ca_bundle, admin_email,
                             insecure)  # fmt: skip
    conn = connect_config(config, context(ctx, quiet=True), password_stdin=password_stdin)
    made = plans.make_plan(conn, config)
    if output is TextOrJson.json:
        print_json(made.as_dict())
    else:
        print_plan(made)


def apply(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    server: ServerOpt = None,
    server_grpc: ServerGrpcOpt = None,
    ca_bundle: CaBundleOpt = None,
    admin_email: AdminEmailOpt = None,
    insecure: InsecureOpt = None,
    password_stdin: PasswordStdinOpt = False,
    yes: YesOpt = False,
    output: OutputOpt = TextOrJson.text,
) -> None:
    """Make the server match `tenants:`: create tenants, mint or rotate kept tokens, invite
    members, write `.hatchet/` env files. Destructive steps and a production tenant's tokens
    and members need --yes. A second run changes nothing."""
    from hatchet_local import plan as plans
    from hatchet_local.server import connect_config

    config = load_for_server(config_file, stack, server, server_grpc, ca_bundle, admin_email,
                             insecure)  # fmt: skip
    conn = connect_config(config, context(ctx, quiet=True), password_stdin=password_stdin)
    made = plans.make_plan(conn, config)
    done = plans.apply(conn, config, made, yes=yes)
    files = plans.write_team_files(conn, config)
    if output is TextOrJson.json:
        print_json({**done.as_dict(), "files": [path for _, _, path in files]})
        return
    print_applied(done, len(files), str(config.project_dir / ".hatchet"))


def print_plan(made: Plan) -> None:
    typer.echo(f"Plan for {made.server} (Hatchet {made.version}), as {made.admin}:")
    safe = [step for step in made.steps if not step.needs_yes]
    marked = [step for step in made.steps if step.needs_yes]
    for step in safe:
        typer.echo(f"  + {step.detail}")
    if not made.steps:
        typer.echo("  nothing to change")
    if marked:
        typer.echo("Needs --yes (destructive, or a production tenant's tokens or members):")
        for step in marked:
            why = "destructive" if step.destructive else "production"
            typer.echo(f"  ! {step.detail} [{why}]")
    if made.notes:
        typer.echo("Left alone:")
        for note in made.notes:
            typer.echo(f"  = {note.detail}")


def print_applied(done: ApplyResult, files: int, where: str) -> None:
    for slug in done.created:
        typer.echo(f"created tenant {slug}")
    for slug in done.minted:
        typer.echo(f"minted the kept token of {slug}")
    for slug in done.rotated:
        typer.echo(f"rotated the kept token of {slug} (old one revoked)")
    for line in done.invited:
        typer.echo(f"invited {line}: they accept in their own session")
    for line in done.roles:
        typer.echo(f"role {line}")
    for step in done.skipped:
        typer.echo(f"skipped (needs --yes): {step.detail}")
    for note in done.notes:
        typer.echo(f"left alone: {note.detail}")
    changed = done.created or done.minted or done.rotated or done.invited or done.roles
    typer.echo(
        ("Applied." if changed else "Nothing to change.") + f" {files} env file(s) in {where}"
    )
