"""`images list|save|load`: the images a stack needs, for runners that cannot pull."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hatchet_local.cli import ConfigOpt, _check_choice, _config, _print_json, app

images_app = typer.Typer(
    help="The images a stack needs: list them, save them to a file, load them elsewhere.",
    no_args_is_help=True,
)
app.add_typer(images_app, name="images")


@images_app.command("list")
def images_list(
    config_file: ConfigOpt = None,
    profile: Annotated[str | None, typer.Option(help="ci or default.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """The images this configuration starts, and whether each is on this machine."""
    from hatchet_local.engine import engine_version, image_present
    from hatchet_local.images import needed_images
    from hatchet_local.runner import SubprocessRunner

    _check_choice("--output", output, ("text", "json"))
    refs = needed_images(_config(config_file, {"profile": profile}))
    runner = SubprocessRunner()
    engine_version(runner)  # with no engine, every image would look missing
    present = {service: image_present(runner, ref) for service, ref in refs.items()}
    if output == "json":
        _print_json([{"service": s, "image": r, "present": present[s]} for s, r in refs.items()])
        return
    for service, ref in refs.items():
        typer.echo(f"{service:<14}{ref}  ({'present' if present[service] else 'missing'})")


@images_app.command("save")
def images_save(
    file: Annotated[Path, typer.Argument(help="Archive to write (docker save format).")],
    config_file: ConfigOpt = None,
    profile: Annotated[str | None, typer.Option(help="ci or default.")] = None,
) -> None:
    """Save the images this configuration needs into one archive."""
    from hatchet_local import images
    from hatchet_local.runner import SubprocessRunner

    refs = list(images.needed_images(_config(config_file, {"profile": profile})).values())
    images.save(SubprocessRunner(), refs, file)
    typer.echo(f"Saved {len(refs)} images to {file}.")


@images_app.command("load")
def images_load(
    file: Annotated[Path, typer.Argument(help="Archive written by `images save`.")],
) -> None:
    """Load images from an archive, for a runner that cannot pull them."""
    from hatchet_local import images
    from hatchet_local.runner import SubprocessRunner

    for line in images.load(SubprocessRunner(), file):
        typer.echo(line)
