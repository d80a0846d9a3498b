"""`images list|save|load`: the images a stack needs, for runners that cannot pull."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hatchet_local.cli.options import ConfigOpt, OutputOpt, ProfileOpt, TextOrJson, load, print_json

app = typer.Typer(
    help="The images a stack needs: list them, save them to a file, load them elsewhere.",
    no_args_is_help=True,
)


@app.command("list")
def images_list(
    config_file: ConfigOpt = None, profile: ProfileOpt = None, output: OutputOpt = TextOrJson.text
) -> None:
    """The images this configuration starts, and whether each is on this machine."""
    from hatchet_local.docker_api import engine_for
    from hatchet_local.images import needed_images
    from hatchet_local.runner import SubprocessRunner

    refs = needed_images(load(config_file, {"profile": profile}))
    engine = engine_for(SubprocessRunner())
    engine.version()  # with no engine, every image would look missing
    present = {service: engine.image_present(ref) for service, ref in refs.items()}
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
    from hatchet_local.docker_api import engine_for
    from hatchet_local.runner import SubprocessRunner

    refs = list(images.needed_images(load(config_file, {"profile": profile})).values())
    runner = SubprocessRunner()
    images.save(runner, engine_for(runner), refs, file)
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
