"""hatchet-sdk's embedded mode (`Hatchet.from_embedded()`, hatchet-sdk 1.38+) beside a
hatchet-local stack.

The SDK's settings read `.env`, `.env.hatchet`, `.env.dev` and `.env.local` from the working
directory. Once one of them holds `HATCHET_CLIENT_TOKEN`, starting the embedded engine warns
that every client made with the plain constructor (`Hatchet()`) in that process goes to the
token's server, this stack, and not to the embedded engine. A project that uses both modes
should keep hatchet-local's settings in a file the SDK does not read and hand them to the
full-stack runs with `hatchet-local run`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from hatchet_local.console import Console
from hatchet_local.fsutil import atomic_write

# The files hatchet-sdk's ClientConfig reads by itself (pydantic-settings `env_file`).
SDK_ENV_FILES = (".env", ".env.hatchet", ".env.dev", ".env.local")
CALL = b"from_embedded("
# Folders that hold other people's code or nothing of the project's.
_SKIP = {"node_modules", "site-packages", "__pycache__", "venv", "env", "build", "dist"}
_MAX_FILES = 5000
_MAX_BYTES = 1 << 20


def embedded_callers(project: Path) -> Iterator[Path]:
    """The project's Python files that call `from_embedded(`; hidden folders, virtualenvs
    and dependencies are skipped, and the walk is bounded."""
    seen = 0
    for folder, dirs, files in os.walk(project):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP)
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            seen += 1
            if seen > _MAX_FILES:
                return
            path = Path(folder) / name
            try:
                if path.stat().st_size <= _MAX_BYTES and CALL in path.read_bytes():
                    yield path
            except OSError:
                continue


def warn_if_shadowed(env_file: Path, project: Path, notice: Path, console: Console) -> None:
    """Warn once per stack (`notice` remembers it) when `env_file`, which now holds a token,
    is a file hatchet-sdk loads by itself and the project's code calls `from_embedded()`."""
    if notice.exists() or env_file.parent != project or env_file.name not in SDK_ENV_FILES:
        return
    caller = next(embedded_callers(project), None)
    if caller is None:
        return
    console.warn(
        f"{caller.relative_to(project)} calls Hatchet.from_embedded(), and {env_file.name} "
        f"now holds HATCHET_CLIENT_TOKEN: hatchet-sdk then warns, and every Hatchet() in that "
        f"process talks to this stack, not to the embedded engine. To keep both, set "
        f"`env_file: .hatchet-local.env` in hatchet-local.yaml (a file the SDK does not read) "
        f"and start full-stack workers with `hatchet-local run -- python worker.py`"
    )
    atomic_write(notice, "warned\n")
