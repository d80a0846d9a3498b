"""`images list|save|load`: the images a stack needs, for runners that cannot pull."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hatchet_local.cli.options import (
    ConfigOpt,
    OutputOpt,
    ProfileOpt,
    TextOrJson,
    context,
    load,
    print_json,
)

app = typer.Typer(
    help="The images a stack needs: list them, save them to a file, load them elsewhere.",
    no_args_is_help=True,
)


@app.command("list")
def images_list(
    config_file: ConfigOpt = None, profile: ProfileOpt = None, output: OutputOpt = TextOrJson.text
) -> None:
    """The images this configuration starts, and whether each is on this machine."""
    from hatchet_local.docker import engine_version, image_present
    from hatchet_local.images import needed_images
    from hatchet_local.runner import SubprocessRunner

    runner = SubprocessRunner()
    engine_version(runner)  # with no engine, every image would look missing
    refs = needed_images(load(config_file, {"profile": profile}), runner)
    present = {service: image_present(runner, ref) for service, ref in refs.items()}
    if output is TextOrJson.json:
        print_json([{"service": s, "image": r, "present": present[s]} for s, r in refs.items()])
        return
    for service, ref in refs.items():
        typer.echo(f"{service:<14}{ref}  ({'present' if present[service] else 'missing'})")


@app.command("save")
def images_save(
    file: Annotated[Path, typer.Argument(help="Archive to write (docker save format).")],
    config_file: ConfigOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Save the images this configuration needs into one archive."""
    from hatchet_local import images
    from hatchet_local.runner import SubprocessRunner

    runner = SubprocessRunner()
    refs = list(images.needed_images(load(config_file, {"profile": profile}), runner).values())
    images.save(runner, refs, file)
    typer.echo(f"Saved {len(refs)} images to {file}.")


@app.command("load")
def images_load(
    file: Annotated[Path, typer.Argument(help="Archive written by `images save`.")],
) -> None:
    """Load images from an archive, for a runner that cannot pull them."""
    from hatchet_local import images
    from hatchet_local.runner import SubprocessRunner

    for line in images.load(SubprocessRunner(), file):
        typer.echo(line)


@app.command("build")
def images_build(
    ctx: typer.Context,
    config_file: ConfigOpt = None,
    profile: ProfileOpt = None,
    hatchet_version: Annotated[
        str | None, typer.Option(help="Hatchet release to build, e.g. v0.101.27.")
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option(help="Build hatchet-lite from this Hatchet checkout instead of a release."),
    ] = None,
    tag: Annotated[
        str | None,
        typer.Option(help="Tag of the hatchet-lite image (default: the version, or 'source')."),
    ] = None,
    output: OutputOpt = TextOrJson.text,
) -> None:
    """Build the images a stack needs here, for machines no registry serves: hatchet-lite
    from source (the release, or --source DIR), Postgres and RabbitMQ from Debian's
    packages when their registry does not answer. Unchanged recipes are not rebuilt."""
    from hatchet_local.build_steps import Builder, cache_root
    from hatchet_local.defaults import ENGINE_SERVICE
    from hatchet_local.docker import engine_version
    from hatchet_local.image_build import build, check_tag

    if tag is not None:
        check_tag(tag)
    run = context(ctx)
    engine_version(run.runner)
    config = load(config_file, {"profile": profile, "hatchet_version": hatchet_version})
    result = build(config, Builder(run.runner, run.console, cache_root()), source=source, tag=tag)
    if output is TextOrJson.json:
        print_json(result.as_dict())
        return
    for key, ref in result.images.items():
        typer.echo(f"{key:<14}{ref}  ({'built' if ref in result.built else 'up to date'})")
    lite = result.images[ENGINE_SERVICE]
    if source is not None or tag is not None:
        typer.echo(
            f"Use it: `images: {{{ENGINE_SERVICE}: {lite}}}` in hatchet-local.yaml, or "
            f"HATCHET_LOCAL_IMAGES_HATCHET_LITE={lite} hatchet-local up"
        )
    else:
        typer.echo("`hatchet-local up` uses these images (each never pulled).")
