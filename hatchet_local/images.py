"""The images a stack needs, and moving them to runners that cannot pull."""

from __future__ import annotations

from pathlib import Path

from hatchet_local import docker
from hatchet_local.config import Config
from hatchet_local.defaults import stack_services
from hatchet_local.errors import ConfigError
from hatchet_local.image_build import local_builds
from hatchet_local.runner import Runner


def needed_images(config: Config, runner: Runner) -> dict[str, str]:
    """Service -> image reference, for the services this configuration starts: an image
    `images build` made here for this version stands in for a default one."""
    builds = local_builds(runner, config)
    return {
        service: builds.get(service) or config.image(service)
        for service in stack_services(config.message_queue)
    }


def save(runner: Runner, refs: list[str], path: Path) -> None:
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a file")
    docker.save_images(runner, refs, path)


def load(runner: Runner, path: Path) -> list[str]:
    """Load an archive made by `save`; returns docker's `Loaded image: ...` lines."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    return docker.load_images(runner, path)
