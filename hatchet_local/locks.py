"""File locks: one command at a time per stack, one port choice at a time per machine."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from hatchet_local.errors import StackBusy
from hatchet_local.fsutil import ensure_private_dir, write_error


@contextmanager
def file_lock(
    path: Path,
    what: str,
    *,
    wait: float,
    notify: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold an exclusive lock on `path`, waiting up to `wait` seconds for another holder.

    The holder's pid is written into the file, so a waiting command can say who it waits
    for. The kernel releases the lock when the holder exits, even after SIGKILL.
    """
    ensure_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        if not _try_lock(fd):
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            if wait > 0:
                notify(f"waiting for another hatchet-local command (pid {holder}) on {what}")
            deadline = clock() + wait
            while not _try_lock(fd):
                if clock() >= deadline:
                    raise StackBusy(
                        f"another hatchet-local command (pid {holder}) is still working on "
                        f"{what} after {wait:.0f}s; let it finish, or stop it and run this again"
                    )
                sleep(0.2)
        # The pid only tells a waiting command whom it waits for: a full disk must not stop
        # the holder (the lock itself needs no space).
        pid = str(os.getpid()).encode()
        with contextlib.suppress(OSError):
            os.pwrite(fd, pid, 0)  # over the last holder's pid: no new block needed
            os.ftruncate(fd, len(pid))
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


# Hatchet's CLI (cmd/hatchet-cli/cli/internal/config/cli/lockfile.go) guards
# ~/.hatchet/profiles.yaml with a lock file of its own kind: exclusive create, retried
# every 50 ms up to 100 times, taken over once older than 5 s; removed on release.
HATCHET_LOCK_RETRY = 0.05
HATCHET_LOCK_ATTEMPTS = 100
HATCHET_LOCK_STALE = 5.0


@contextmanager
def hatchet_config_lock(
    path: Path,
    *,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.time,
) -> Iterator[None]:
    """Hold `path` (`~/.hatchet/config.lock`) as Hatchet's CLI and the embedded sidecar do,
    so that none of them rewrites profiles.yaml while another one does."""
    attempts = 0
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            with contextlib.suppress(OSError):  # gone meanwhile: try again at once
                if now() - path.stat().st_mtime > HATCHET_LOCK_STALE:
                    path.unlink()
                    continue
            attempts += 1
            if attempts >= HATCHET_LOCK_ATTEMPTS:
                raise StackBusy(
                    f"{path} is held by another program (Hatchet's CLI?) after "
                    f"{HATCHET_LOCK_ATTEMPTS} tries; run this again, or remove the file "
                    f"if nothing is writing ~/.hatchet"
                ) from None
            sleep(HATCHET_LOCK_RETRY)
            continue
        except OSError as exc:
            raise write_error(path, exc) from exc
        break
    try:
        with contextlib.suppress(OSError):
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            os.write(fd, stamp.encode())
        os.close(fd)
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
