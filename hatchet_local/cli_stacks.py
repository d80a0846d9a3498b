"""The many-stacks commands: ls, reset, destroy, prune."""

from __future__ import annotations

from typing import Annotated

import typer

from hatchet_local.cli import (
    ConfigOpt,
    RevealOpt,
    StackOpt,
    YesOpt,
    _check_choice,
    _config,
    _confirm,
    _context,
    _print_json,
    _print_ready,
    app,
)
from hatchet_local.errors import ConfigError


@app.command("ls")
def list_stacks(
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """Every stack on this host: state, ports, age, Hatchet version, directory."""
    from hatchet_local import sandbox

    _check_choice("--output", output, ("text", "json"))
    rows = sandbox.list_stacks(_context(quiet=True))
    if output == "json":
        _print_json([row.as_dict() for row in rows])
        return
    typer.echo(f"{'STACK':<28}{'STATE':<10}{'DASHBOARD':<11}{'GRPC':<7}{'AGE':<7}"
               f"{'HATCHET':<11}DIRECTORY")  # fmt: skip
    for row in rows:
        gone = "" if row.directory_exists or not row.directory else "  (gone)"
        typer.echo(
            f"{row.name:<28}{row.state:<10}{row.ports.get('dashboard', ''):<11}"
            f"{row.ports.get('grpc', ''):<7}{_age(row.age_seconds):<7}"
            f"{row.hatchet_version:<11}{row.directory}{gone}"
        )


@app.command()
def reset(
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    tenant: Annotated[str | None, typer.Option(help="Reset one tenant only.")] = None,
    yes: YesOpt = False,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
    reveal: RevealOpt = False,
) -> None:
    """Wipe the stack's data and bootstrap it afresh, with a new token in .env.hatchet."""
    from hatchet_local import sandbox

    _check_choice("--output", output, ("text", "json"))
    config = _config(config_file, {"stack": stack})
    if tenant is None:
        _confirm(f"Delete all data of stack {config.stack} and start afresh?", yes,
                 "reset deletes the stack's data")  # fmt: skip
    _print_ready(sandbox.reset(config, _context(), tenant=tenant), output, reveal)


@app.command()
def destroy(
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    yes: YesOpt = False,
) -> None:
    """Remove the stack completely: containers, data, network and its state here."""
    from hatchet_local import sandbox

    name = _config(config_file, {"stack": stack}).stack
    _confirm(f"Remove stack {name} and all its data?", yes, "destroy deletes the stack's data")
    removed = sandbox.destroy(_context(), name)
    typer.echo(f"Stack {name} destroyed ({len(removed)} docker objects removed).")


@app.command()
def prune(
    expired: Annotated[
        bool, typer.Option("--expired", help="Only ephemeral stacks past their --ttl.")
    ] = False,
    older_than: Annotated[
        str | None, typer.Option(help="Also stopped stacks older than this, e.g. 7d, 12h.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List, remove nothing.")] = False,
    yes: YesOpt = False,
) -> None:
    """Remove stacks whose directory is gone, orphaned objects, and old stopped stacks."""
    from hatchet_local import sandbox

    if expired and (older_than is not None or dry_run):
        other = "--dry-run" if dry_run else "--older-than"
        raise ConfigError(
            f"prune --expired {other}: --expired removes at once and takes neither --dry-run "
            f"nor --older-than; use one or the other"
        )
    seconds = sandbox.parse_duration(older_than, "--older-than") if older_than is not None else None
    ctx = _context(quiet=True)
    if expired:
        from hatchet_local.stack import reap_expired

        reaped = reap_expired(ctx)
        typer.echo(f"Removed {len(reaped)} expired stack(s){': ' if reaped else '.'}"
                   f"{', '.join(reaped)}")  # fmt: skip
        return
    rows = sandbox.prune_candidates(ctx, seconds)
    for row in rows:
        if row.state == "orphaned":
            reason = "orphaned objects"
        elif not row.directory_exists:
            reason = "directory gone"
        else:
            reason = f"stopped, {_age(row.age_seconds)} old"
        typer.echo(f"{'would remove' if dry_run else 'removing'} {row.name} ({reason})")
    if dry_run or not rows:
        typer.echo(f"{len(rows)} stack(s) to prune." if dry_run else "Nothing to prune.")
        return
    _confirm(f"Remove these {len(rows)} stack(s) and their data?", yes, "prune deletes data")
    for row in rows:
        sandbox.destroy(ctx, row.name)
    typer.echo(f"Pruned {len(rows)} stack(s).")


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
