"""Private files and directories, written atomically: a crash never leaves half a file."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from hatchet_local.errors import ConfigError, HatchetLocalError
from hatchet_local.signals import interrupts_deferred

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) if missing; the directory itself is made 0700."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(PRIVATE_DIR)
    except NotADirectoryError as exc:
        raise ConfigError(f"{path}: a file stands where a directory should be") from exc
    except OSError as exc:
        raise HatchetLocalError(f"{path}: cannot create directory: {exc.strerror}") from exc
    return path


def atomic_write(path: Path, text: str, mode: int = PRIVATE_FILE) -> None:
    """Replace `path` with `text` in one step; the file is created with `mode` from the start."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a file")
    with interrupts_deferred():
        _replace(path, text, mode)


def _replace(path: Path, text: str, mode: int) -> None:
    with replacing(path, mode) as out:
        out.write(text.encode("utf-8"))


@contextmanager
def replacing(path: Path, mode: int = PRIVATE_FILE) -> Iterator[IO[bytes]]:
    """A file to write that replaces `path` in one step when the block ends: a temporary file
    beside it (`mode` from the start), synced, then renamed over it; removed when the block
    fails. Readers see the old file or the whole new one, never half of it."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # a missing, read-only or full directory
        raise write_error(path, exc) from exc
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).replace(path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_temp_files(directory: Path, name: str = "*") -> int:
    """Remove the temp files `atomic_write` left for file `name` (every file with "*") in
    `directory`: only a SIGKILL in the middle of a write leaves one. Call it holding the lock
    that serializes those writes. Returns how many were removed."""
    removed = 0
    for path in directory.glob(f".{name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def write_error(path: Path, exc: OSError) -> HatchetLocalError:
    """One line for a failed write; a full disk says what to do, and that nothing changed."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return HatchetLocalError(
            f"{path}: cannot write: no space left on its file system ({path.parent}); free "
            f"some space and run the same command again (the file was left as it was)"
        )
    return HatchetLocalError(f"{path}: cannot write: {exc.strerror}")


def read_text(path: Path) -> str | None:
    """The file's text exactly as stored (line endings kept), or None when it does not exist.
    Other failures name the file."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a directory, expected a file") from exc
    except NotADirectoryError as exc:
        blocker = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), path)
        raise ConfigError(f"{path}: {blocker} is a file where a directory should be") from exc
    except PermissionError as exc:
        raise ConfigError(f"{path}: not readable (permission denied); fix its mode") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc


def check_private(path: Path) -> None:
    """Refuse a file of secrets that others may read: the secrets may have leaked, and
    tightening the mode silently would hide that."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"{path}: cannot check its mode: {exc.strerror}") from exc
    mode = info.st_mode & 0o777
    if stat.S_ISREG(info.st_mode) and mode & 0o077:  # reading a non-file says what is wrong
        raise ConfigError(
            f"{path}: holds secrets but others may read it (mode {mode:04o}); "
            f"run `chmod 600 {path}`"
        )


def refuse_link(path: Path) -> None:
    """ConfigError when `path` is a symbolic link: a file hatchet-local writes is neither
    written through a link (its target may lie anywhere, even outside the project) nor
    replaced by a regular file (which would silently undo the user's link)."""
    if path.is_symlink():
        raise ConfigError(
            f"{path}: a symbolic link (to {path.readlink()}); hatchet-local neither writes "
            f"through a link nor replaces one: remove the link, or name the file it points to"
        )
