"""The client settings file (`.env.hatchet`) and the other shapes `env` prints.

Writing merges: our keys are replaced where they stand (or appended), and every other
line, comments and blank lines included, is kept byte for byte.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from hatchet_local.client_settings import SECRET_KEYS
from hatchet_local.fsutil import atomic_write, read_text, refuse_link
from hatchet_local.redact import MASK

_ASSIGNMENT = re.compile(r"^(?P<lead>\s*(?:export\s+)?)(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=")
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_./:@+,=*-]*")


def quote(value: str) -> str:
    """A dotenv value: bare when plain, else double-quoted with escapes."""
    if _PLAIN_VALUE.fullmatch(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def merge_dotenv(existing: str, settings: Mapping[str, str]) -> str:
    """`existing` with each key of `settings` set; every other line is left as it was."""
    pending = dict(settings)
    lines = existing.splitlines(keepends=True)
    out: list[str] = []
    for line in lines:
        match = _ASSIGNMENT.match(line)
        key = match.group("key") if match else None
        if key is None or key not in settings:
            out.append(line)
            continue
        if key not in pending:
            continue  # a second assignment of one of our keys: the first one now holds it
        ending = line[len(line.rstrip("\r\n")) :] or "\n"
        assert match is not None
        out.append(f"{match.group('lead')}{key}={quote(pending.pop(key))}{ending}")
    if pending:
        newline = "\r\n" if "\r\n" in existing else "\n"  # follow the file's own line endings
        if out and not out[-1].endswith(("\n", "\r")):
            out.append(newline)
        out.extend(f"{key}={quote(value)}{newline}" for key, value in pending.items())
    return "".join(out)


def write_env_file(path: Path, settings: Mapping[str, str]) -> None:
    """Merge settings into the file at `path`: atomic, and private (0600) since it holds a
    token. A symbolic link there is refused, never followed nor replaced."""
    refuse_link(path)
    existing = read_text(path) or ""
    atomic_write(path, merge_dotenv(existing, settings))


def masked(settings: Mapping[str, str], reveal: bool) -> dict[str, str]:
    if reveal:
        return dict(settings)
    return {k: (MASK if k in SECRET_KEYS else v) for k, v in settings.items()}


def render(settings: Mapping[str, str], output: str) -> str:
    """Settings as `dotenv`, `shell` (export lines) or `json`."""
    if output == "json":
        return json.dumps(dict(settings), indent=2) + "\n"
    if output == "shell":
        return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in settings.items())
    return "".join(f"{k}={quote(v)}\n" for k, v in settings.items())
