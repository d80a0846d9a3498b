"""`snapshot save|load|ls|rm`: a stack's whole state in one file, to start stacks from."""

from __future__ import annotations

from typing import Annotated

import typer

from hatchet_local.cli.options import (
    ConfigOpt,
    OutputOpt,
    RevealOpt,
    StackOpt,
    TextOrJson,
    YesOpt,
    confirm,
    context,
    load,
    print_json,
    print_ready,
)

app = typer.Typer(
    help="Snapshots of a stack's whole state: save one, load it into a stack, list, remove. "
    "`up --snapshot NAME|FILE` starts a new stack from one.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
Target = Annotated[
    str,
    typer.Argument(
        metavar="NAME|FILE",
        help="A name (kept under the state directory) or a file path (with a `/` or `.tar`).",
    ),
]


@app.command("save")
def save(
    ctx: typer.Context,
    target: Target,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing snapshot.")] = False,
    output: OutputOpt = TextOrJson.text,
) -> None:
    """Save the running stack's database, engine keys, token and tenants (the file is 0600:
    it holds secrets)."""
    from hatchet_local import snapshots

    info = snapshots.save(load(config_file, {"stack": stack}), context(ctx), target, force=force)
    if output is TextOrJson.json:
        print_json(info.as_dict())
        return
    typer.echo(
        f"Saved snapshot {info.name} of stack {info.stack} ({info.size / 1e6:.1f} MB, Hatchet "
        f"{info.hatchet_version}, Postgres {info.postgres_major}) to {info.path}: mode 0600, "
        f"it holds the stack's token and passwords."
    )


@app.command("load")
def load_snapshot(
    ctx: typer.Context,
    target: Target,
    config_file: ConfigOpt = None,
    stack: StackOpt = None,
    yes: YesOpt = False,
    output: OutputOpt = TextOrJson.text,
    reveal: RevealOpt = False,
) -> None:
    """Replace the stack's data with a snapshot's, then start it."""
    from hatchet_local import snapshots

    config = load(config_file, {"stack": stack})
    confirm(f"Replace all data of stack {config.stack} with snapshot {target}?", yes,
            "snapshot load replaces the stack's data")  # fmt: skip
    print_ready(snapshots.load(config, context(ctx), target), output, reveal)


@app.command("ls")
def list_snapshots(ctx: typer.Context, output: OutputOpt = TextOrJson.text) -> None:
    """The named snapshots on this machine."""
    from hatchet_local import snapshots

    rows = snapshots.list_snapshots(context(ctx, quiet=True))
    if output is TextOrJson.json:
        print_json([row.as_dict() for row in rows])
        return
    typer.echo(f"{'SNAPSHOT':<24}{'SIZE':>9}  {'HATCHET':<11}{'PG':<4}{'FROM STACK':<28}CREATED")
    for row in rows:
        typer.echo(f"{row.name:<24}{row.size / 1e6:>7.1f}MB  {row.hatchet_version:<11}"
                   f"{row.postgres_major:<4}{row.stack:<28}{row.created}")  # fmt: skip


@app.command("rm")
def remove(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Remove a named snapshot."""
    from hatchet_local import snapshots

    path = snapshots.remove(context(ctx, quiet=True), name)
    typer.echo(f"Removed snapshot {name} ({path}).")
