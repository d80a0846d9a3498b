"""What CI runners need: GitHub Actions masks, env and output files, grouped log sections."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from hatchet_local.errors import ConfigError
from hatchet_local.fsutil import read_text


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get("GITHUB_ACTIONS") == "true"


def add_mask_lines(secrets: Iterable[str]) -> str:
    """`::add-mask::` for each secret: GitHub then hides it in every later line of the log."""
    return "".join(f"::add-mask::{secret}\n" for secret in secrets if secret)


def group(title: str, body: str, github: bool) -> str:
    """A collapsible section under GitHub Actions, a plain titled block elsewhere."""
    if github:
        return f"::group::{title}\n{body}\n::endgroup::"
    return f"{title}\n{body}"


def append_github_files(
    settings: Mapping[str, str], outputs: Mapping[str, str], environ: Mapping[str, str]
) -> tuple[Path, Path]:
    """Client settings to $GITHUB_ENV (later steps see them as variables), the stack's
    addresses to $GITHUB_OUTPUT (`steps.<id>.outputs.<name>`)."""
    paths = []
    for name in ("GITHUB_ENV", "GITHUB_OUTPUT"):
        value = environ.get(name)
        if not value:
            raise ConfigError(
                f"--output github: {name} is not set; it is set by GitHub Actions "
                f"(elsewhere use --output env or json)"
            )
        paths.append(Path(value))
    env_path, output_path = paths
    _append(env_path, settings)
    _append(output_path, outputs)
    return env_path, output_path


def _append(path: Path, values: Mapping[str, str]) -> None:
    for key, value in values.items():
        if "\n" in value:
            raise ConfigError(f"{key}: a value with a newline cannot go into {path}")
    existing = read_text(path) or ""
    lead = "" if not existing or existing.endswith("\n") else "\n"
    with path.open("a", encoding="utf-8") as out:
        out.write(lead + "".join(f"{key}={value}\n" for key, value in values.items()))
