"""`doctor` and `version`: is this machine ready, and what is installed."""

from __future__ import annotations

import typer

from hatchet_local import __version__
from hatchet_local.cli.options import ConfigOpt, OutputOpt, StackOpt, TextOrJson, load, print_json


def doctor(
    config_file: ConfigOpt = None, stack: StackOpt = None, output: OutputOpt = TextOrJson.text
) -> None:
    """Check this machine for a stack: Docker, Compose, memory, disk, ports, images, clock."""
    from hatchet_local.docker_api import engine_for
    from hatchet_local.doctor import diagnose
    from hatchet_local.runner import SubprocessRunner
    from hatchet_local.state import state_root

    runner = SubprocessRunner()
    config = load(config_file, {"stack": stack})
    findings = diagnose(config, runner, state_root(), engine_for(runner))
    if output is TextOrJson.json:
        print_json([f.as_dict() for f in findings])
    else:
        for f in findings:
            typer.echo(
                f"{f.status:<5} {f.check:<14}{f.detail}"
                + (f"\n      fix: {f.fix}" if f.fix else "")
            )
    if any(f.status == "fail" for f in findings):
        raise typer.Exit(1)


def version() -> None:
    """Print hatchet-local's version and the Hatchet release it pins."""
    from hatchet_local.defaults import HATCHET_VERSION

    typer.echo(f"hatchet-local {__version__} (Hatchet {HATCHET_VERSION})")
