"""The client settings file (`.env.hatchet`) and the other shapes `env` prints.

Writing merges: our keys are replaced where they stand (or appended), and every other
line, comments and blank lines included, is kept byte for byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from hatchet_local.client_settings import NAMESPACE_KEY, SECRET_KEYS, for_every_sdk
from hatchet_local.errors import ConfigError
from hatchet_local.fsutil import atomic_write, read_text, refuse_link
from hatchet_local.redact import MASK

# One entry of a dotenv file as python-dotenv (the Hatchet Python SDK's reader) cuts it: a
# line, or the lines of a quoted value that spans several. Lines end in \r\n, \r or \n only.
# An entry names a key when it assigns it (`KEY=...`, `export KEY = ...`, `'KEY'=...`) or
# names it alone (`KEY`, which dotenv reads as unset).
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_BINDING = re.compile(
    r"(?P<lead>\s*(?:export[^\S\r\n]+)?)(?:'(?P<quoted_key>[^']+)'|(?P<key>[^=#\s]+))"
    r"[^\S\r\n]*(?:=[^\S\r\n]*(?P<quote>['\"])?|#.*|\s*$)"
)
_QUOTED = {q: re.compile(rf"{q}(?:\\.|[^{q}\\])*{q}", re.DOTALL) for q in ("'", '"')}
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_./:@+,=*-]*")


def quote(value: str) -> str:
    """A dotenv value: bare when plain, else double-quoted with escapes.

    A raw carriage return would be read back as a newline (readers open the file in text
    mode), so it is escaped like the newline. python-dotenv expands `${VAR}` even inside
    quotes, so a value holding `${` cannot be written for it to read back: ValueError.
    """
    if "${" in value:
        raise ValueError(f"a dotenv reader would expand the ${{...}} in {value!r}")
    if _PLAIN_VALUE.fullmatch(value):
        return value
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def _entries(text: str) -> Iterator[tuple[str, str | None, str]]:
    """`text` cut into entries the way python-dotenv reads it, each as (its text, the key it
    names or None, the whitespace and `export` before that key)."""
    pos = 0
    while pos < len(text):
        end = _LINE.match(text, pos).end()  # type: ignore[union-attr]  # matches ""
        binding = _BINDING.match(text[pos:end])
        if binding is None:
            yield text[pos:end], None, ""
        else:
            if binding.group("quote"):  # the value ends where its quote closes, maybe lines on
                closed = _QUOTED[binding.group("quote")].match(text, pos + binding.end() - 1)
                if closed is not None and closed.end() > end:
                    end = _LINE.match(text, closed.end()).end()  # type: ignore[union-attr]
            key = binding.group("quoted_key") or binding.group("key")
            yield text[pos:end], key, binding.group("lead")
        pos = end


def merge_dotenv(existing: str, settings: Mapping[str, str], name: str = "the file") -> str:
    """`existing` with each key of `settings` set; every other entry is left as it was.

    Our keys are replaced where they first stand (later assignments dropped) and the missing
    ones appended. Entries are cut as python-dotenv cuts them, so a line inside someone's
    multi-line quoted value is never taken for an assignment. `name` names the file in errors.
    """
    pending = dict(settings)
    out: list[str] = []
    for text, key, lead in _entries(existing):
        if key is None or key not in settings:
            out.append(text)
        elif key in pending:
            ending = text[len(text.rstrip("\r\n")) :] or "\n"
            out.append(f"{lead}{key}={quote(pending.pop(key))}{ending}")
        # else: a second assignment of one of our keys; the first one now holds it
    if pending:
        newline = "\r\n" if "\r\n" in existing else "\n"  # follow the file's own line endings
        if out and not out[-1].endswith(("\n", "\r")):
            out.append(newline)
        out.extend(f"{key}={quote(value)}{newline}" for key, value in pending.items())
    merged = "".join(out)
    _check_read_back(merged, settings, name)
    return merged


def _check_read_back(merged: str, settings: Mapping[str, str], name: str) -> None:
    """Refuse a merge a reader would not read our values back from: a quote left open in
    someone's line that closes in one of our values takes our lines into that entry."""
    last = {key: text for text, key, _ in _entries(merged) if key in settings}
    written = {key: f"{key}={quote(value)}" for key, value in settings.items()}
    if all(last.get(k, "").rstrip("\r\n").endswith(line) for k, line in written.items()):
        return
    line = 1
    for text, key, _ in _entries(merged):  # the entry of several lines that took ours in
        spans = _NEWLINE.search(text.rstrip("\r\n")) is not None
        if spans and any(k != key and ours in text for k, ours in written.items()):
            break
        line += len(_NEWLINE.findall(text))
    raise ConfigError(
        f"{name}: line {line} opens a quote that closes only in a later line, so the settings "
        f"written after it would be read as part of it; close that quote and run the same "
        f"command again"
    )


def write_env_file(path: Path, settings: Mapping[str, str]) -> None:
    """Merge settings into the file at `path`: atomic, and private (0600) since it holds a
    token. A symbolic link there is refused, never followed nor replaced."""
    refuse_link(path)
    existing = read_text(path)
    merged = merge_dotenv(existing or "", settings, str(path))
    if merged != existing or path.stat().st_mode & 0o077:
        atomic_write(path, merged)  # else left alone, byte for byte and mtime


def masked(settings: Mapping[str, str], reveal: bool) -> dict[str, str]:
    if reveal:
        return dict(settings)
    return {k: (MASK if k in SECRET_KEYS else v) for k, v in settings.items()}


def single_quoted(value: str) -> str:
    """A shell word in single quotes, each `'` written `'\\''`: as Hatchet's CLI quotes."""
    return "'" + value.replace("'", "'\\''") + "'"


def shell_lines(settings: Mapping[str, str], *, export: bool = True) -> str:
    """The lines `hatchet profile env` prints (`--no-export`: without `export `), in its
    order, with `HATCHET_CLIENT_API_URL` for the TypeScript SDK. With `export`, a namespace
    that is not set is unset, so one left from an earlier eval does not linger."""
    ordered = for_every_sdk(settings)
    prefix = "export " if export else ""
    lines = [f"{prefix}{key}={single_quoted(value)}\n" for key, value in ordered.items()]
    if export and NAMESPACE_KEY not in ordered:
        lines.append(f"unset {NAMESPACE_KEY}\n")
    return "".join(lines)


def render(settings: Mapping[str, str], output: str) -> str:
    """Settings as `dotenv`, `shell` (Hatchet CLI's export lines) or `json`."""
    if output == "json":
        return json.dumps(dict(settings), indent=2) + "\n"
    if output == "shell":
        return shell_lines(settings)
    return "".join(f"{k}={quote(v)}\n" for k, v in settings.items())
