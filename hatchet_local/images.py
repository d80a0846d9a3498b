"""The images a stack needs, and moving them to runners that cannot pull."""

from __future__ import annotations

from pathlib import Path

from hatchet_local.config import Config
from hatchet_local.engine import image_present
from hatchet_local.errors import ConfigError, ImageMissing
from hatchet_local.runner import Runner, require_ok


def needed_images(config: Config) -> dict[str, str]:
    """Service -> image reference, for the services this configuration starts."""
    services = ["postgres", *(["rabbitmq"] if config.message_queue == "rabbitmq" else [])]
    return {**{s: config.image(s) for s in services}, "hatchet-lite": config.image("hatchet-lite")}


def save(runner: Runner, refs: list[str], path: Path) -> None:
    missing = [ref for ref in refs if not image_present(runner, ref)]
    if missing:
        raise ImageMissing(f"image {missing[0]} is not on this machine; pull it first")
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a file")
    require_ok(
        runner.run(["docker", "save", "--output", str(path), *refs], timeout=3600),
        f"docker save into {path}",
    )


def load(runner: Runner, path: Path) -> list[str]:
    """Load an archive made by `save`; returns docker's `Loaded image: ...` lines."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    result = require_ok(
        runner.run(["docker", "load", "--input", str(path)], timeout=3600),
        f"docker load from {path}",
    )
    return [line for line in result.stdout.splitlines() if line.startswith("Loaded")]
