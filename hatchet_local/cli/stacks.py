"""Commands over every stack of this machine: `ls`, `destroy`, `prune`, `spare`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hatchet_local.cli.options import (
    ConfigOpt,
    OutputOpt,
    ProfileOpt,
    StackOpt,
    TextOrJson,
    YesOpt,
    age,
    confirm,
    confirm_deletion,
    context,
    load,
    print_rows,
)
from hatchet_local.defaults import MAX_SPARES
from hatchet_local.errors import ConfigError

if TYPE_CHECKING:
    from hatchet_local.inventory import StackRow


def list_stacks(ctx: typer.Context, output: OutputOpt = TextOrJson.text) -> None:
    """Every stack on this host: state, ports, age, Hatchet version, directory."""
    from hatchet_local import inventory

    header = (f"{'STACK':<28}{'STATE':<10}{'DASHBOARD':<11}{'GRPC':<7}{'AGE':<7}"
              f"{'HATCHET':<11}DIRECTORY")  # fmt: skip
    print_rows(inventory.list_stacks(context(ctx, quiet=True)), output, header, _stack_line)


def _stack_line(row: StackRow) -> str:
    gone = "" if row.directory_exists or not row.directory else "  (gone)"
    gone += "  (spare)" if row.spare else ""
    directories = ", ".join(row.directories) or row.directory  # a shared stack: all of them
    return (
        f"{row.name:<28}{row.state:<10}{row.ports.get('dashboard', ''):<11}"
        f"{row.ports.get('grpc', ''):<7}{age(row.age_seconds):<7}"
        f"{row.hatchet_version:<11}{directories}{gone}"
    )


def destroy(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    yes: YesOpt = False,
) -> None:
    """Remove the stack completely: containers, data, network and its state here."""
    from hatchet_local import inventory

    name = load(config_file, {"stack": stack}).stack
    confirm_deletion(name, "Remove stack {stack} and all its data?", yes,
                     "destroy deletes the stack's data")  # fmt: skip
    removed = inventory.destroy(context(ctx), name)
    typer.echo(f"Stack {name} destroyed ({len(removed)} docker objects removed).")


def prune(
    ctx: typer.Context,
    expired: Annotated[
        bool, typer.Option("--expired", help="Only ephemeral stacks past their --ttl.")
    ] = False,
    older_than: Annotated[
        str | None, typer.Option(help="Also stopped stacks older than this, e.g. 7d, 12h.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List, remove nothing.")] = False,
    all_bases: Annotated[
        bool, typer.Option("--bases", help="Also every pre-migrated base, not only stale ones.")
    ] = False,
    all_spares: Annotated[
        bool, typer.Option("--spares", help="Also every spare (each holds memory while it waits).")
    ] = False,
    yes: YesOpt = False,
) -> None:
    """Remove stacks whose directory is gone, orphaned objects, old stopped stacks, and
    pre-migrated bases no stack can use (their images changed: another Hatchet version)."""
    from hatchet_local import bases, inventory
    from hatchet_local.config_values import duration

    if expired and (older_than is not None or dry_run):
        other = "--dry-run" if dry_run else "--older-than"
        raise ConfigError(
            f"prune --expired {other}: --expired removes at once and takes neither --dry-run "
            f"nor --older-than; use one or the other"
        )
    seconds = duration(older_than, "--older-than") if older_than is not None else None
    run = context(ctx, quiet=True)
    if expired:
        reaped = inventory.reap_expired(run)
        typer.echo(f"Removed {len(reaped)} expired stack(s){': ' if reaped else '.'}"
                   f"{', '.join(reaped)}")  # fmt: skip
        return
    rows = inventory.prune_candidates(run, seconds, spares=all_spares)
    for row in rows:
        if row.state == "orphaned":
            reason = "orphaned objects"
        elif row.spare and all_spares:
            reason = "a spare, --spares"
        elif not row.directory_exists:
            reason = "directory gone"
        else:
            reason = f"stopped, {age(row.age_seconds)} old"
        typer.echo(f"{'would remove' if dry_run else 'removing'} {row.name} ({reason})")
    stale = {base.key for base in bases.stale_bases(run.state_root, run)}
    doomed = [b for b in bases.all_bases(run.state_root) if all_bases or b.key in stale]
    for base in doomed:
        why = "stale: its images changed" if base.key in stale else "--bases"
        typer.echo(f"{'would remove' if dry_run else 'removing'} the base for Hatchet "
                   f"{base.hatchet_version}, queue {base.message_queue} ({why})")  # fmt: skip
    if dry_run or not (rows or doomed):
        typer.echo(f"{len(rows)} stack(s) and {len(doomed)} base(s) to prune." if dry_run
                   else "Nothing to prune.")  # fmt: skip
        return
    confirm(f"Remove these {len(rows)} stack(s) and their data, and {len(doomed)} base(s)?",
            yes, "prune deletes data")  # fmt: skip
    for row in rows:
        inventory.destroy(run, row.name)
    for base in doomed:
        bases.remove(run.state_root, base)
    typer.echo(f"Pruned {len(rows)} stack(s) and {len(doomed)} base(s).")


def spare(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    profile: ProfileOpt = None,
    count: Annotated[
        int, typer.Option(min=1, max=MAX_SPARES, help="How many spares of this kind to keep ready.")
    ] = 1,
) -> None:
    """Start a spare stack of this project's kind ahead of time: the next `up` of a new
    stack of that kind (here or in another project) takes it over in under a second."""
    from hatchet_local import spare_start

    config = load(config_file, {"profile": profile})
    run = context(ctx)
    ready, made = spare_start.keep_spares(config, run, count)
    for name in made:
        typer.echo(f"Spare {name} is ready.")
    if not made:
        typer.echo(f"{len(ready)} spare(s) of this kind already ready: {', '.join(ready)}.")
    typer.echo("The next `hatchet-local up` of a new stack of this kind takes one over.")
