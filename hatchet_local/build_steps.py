"""What every step of `images build` shares: the cache directory, recipe digests, commands
run through the Runner with their output kept in a log, progress for long steps, and the
one-line errors for a missing tool or privilege."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hatchet_local.config import ENV_BUILD_CACHE
from hatchet_local.console import Console
from hatchet_local.errors import BuildFailed
from hatchet_local.fsutil import write_error
from hatchet_local.runner import Runner, child_env, tail

# Between "still running" lines of a long step.
HEARTBEAT = 60.0

# What each tool is for, and how to get it, for the one-line error when it is missing.
TOOLS = {
    "go": "the Go toolchain builds Hatchet's binaries: install Go (https://go.dev/dl/)",
    "npx": "Node.js builds Hatchet's dashboard: install Node.js 20 or newer with npm",
    "debootstrap": "debootstrap makes the Debian base image: `apt-get install debootstrap`",
    "tar": "tar packs the Debian base image: install tar",
}


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """`$HATCHET_LOCAL_BUILD_CACHE`, else `$XDG_CACHE_HOME/hatchet-local`, else
    `~/.cache/hatchet-local`."""
    env = os.environ if environ is None else environ
    if env.get(ENV_BUILD_CACHE):
        return Path(env[ENV_BUILD_CACHE]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "hatchet-local"


def digest(parts: Iterable[str | bytes]) -> str:
    """A short hash of `parts`, in order: the recipe an output is made from."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def tree_digest(root: Path, skip: frozenset[str] = frozenset()) -> list[str | bytes]:
    """Names, modes and contents of every file below `root`, in a stable order. `skip`
    leaves out directories by name (`node_modules`) or by path below `root`
    (`src/lib/generated`)."""
    parts: list[str | bytes] = []
    for path in sorted(_files(root, skip)):
        parts += [str(path.relative_to(root)), oct(path.stat().st_mode & 0o777), path.read_bytes()]
    return parts


def _files(root: Path, skip: frozenset[str]) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        below = Path(folder).relative_to(root)
        dirs[:] = [d for d in dirs if d not in skip and (below / d).as_posix() not in skip]
        for name in files:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path


def sync_tree(source: Path, target: Path, skip: frozenset[str]) -> None:
    """Make `target` a copy of `source` (directories named in `skip` are neither copied nor
    removed): changed files are copied, files gone from `source` removed. A second sync of an
    unchanged tree copies nothing."""
    wanted = {path.relative_to(source) for path in _files(source, skip)}
    for rel in sorted(wanted):
        src, dst = source / rel, target / rel
        stat = src.stat()
        try:
            same = dst.stat().st_size == stat.st_size and dst.stat().st_mtime_ns == stat.st_mtime_ns
        except OSError:
            same = False
        if not same:
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.exists():
                dst.chmod(0o700)
                dst.unlink()
            shutil.copy2(src, dst)
            dst.chmod(dst.stat().st_mode | 0o200)  # the module cache's files are read-only
    if target.is_dir():
        for path in list(_files(target, skip)):
            if path.relative_to(target) not in wanted:
                path.unlink()


def require_tool(name: str) -> str:
    """The tool's path, or BuildFailed saying what it is for and how to get it."""
    found = shutil.which(name)
    if found is None:
        raise BuildFailed(f"{name} not found: {TOOLS.get(name, f'install {name}')}")
    return found


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise BuildFailed(
            f"{what} needs root (debootstrap); run `sudo hatchet-local images build`, or load "
            f"images made elsewhere with `hatchet-local images load FILE`"
        )


@dataclass
class Builder:
    """The Runner, the progress console and the cache directory of one build."""

    runner: Runner
    console: Console
    cache: Path

    @property
    def logs(self) -> Path:
        return self.cache / "logs"

    def run(
        self,
        step: str,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Run one command of `step`; its output goes to `logs/<step>.log`. A failure
        names the step, the exit code and the log, with the log's last lines."""
        log = self.logs / f"{step}.log"
        with self._heartbeat(f"{step}: {' '.join(argv[:2])}"):
            result = self.runner.run(
                argv, env={**child_env(), **(env or {})}, timeout=timeout, cwd=cwd
            )
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a", encoding="utf-8") as out:
                out.write(f"\n$ {' '.join(argv)}\n{result.stdout}{result.stderr}")
        except OSError as exc:
            raise write_error(log, exc) from exc
        if not result.ok:
            raise BuildFailed(
                f"{step}: `{' '.join(argv[:3])}` exited {result.returncode}; full log: {log}",
                details=tail(result.stdout + result.stderr, 15),
            )
        return result.stdout

    @contextmanager
    def _heartbeat(self, what: str) -> Iterator[None]:
        """A line every minute while a long command runs, so a build never looks stuck."""
        done = threading.Event()
        started = time.monotonic()

        def beat() -> None:
            while not done.wait(HEARTBEAT):
                self.console.info(f"still running {what} ({time.monotonic() - started:.0f}s)")

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
