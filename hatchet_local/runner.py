"""The one place that runs subprocesses.

Commands are argv lists (never a shell), secrets travel in env files and never in argv,
and Ctrl-C stops the child before it is reported. What a failed command's output means
(Docker unreachable, say) is for its caller to read: see docker.py.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from hatchet_local.errors import CommandFailed, Interrupted


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        """What the command said about a failure: stderr, else stdout."""
        return self.stderr or self.stdout


class Runner(Protocol):
    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        capture: bool = True,
    ) -> Result:
        """Run argv to completion. With capture=False the child writes to our terminal."""
        ...


class SubprocessRunner:
    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        capture: bool = True,
    ) -> Result:
        pipe = subprocess.PIPE if capture else None
        try:
            child = subprocess.Popen(
                list(argv),
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=pipe,
                stderr=pipe,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except FileNotFoundError as exc:
            raise CommandFailed(f"{argv[0]}: command not found; is it installed?") from exc
        try:
            stdout, stderr = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _stop(child)
            raise CommandFailed(
                f"{argv[0]} {argv[1] if len(argv) > 1 else ''}: no answer after {timeout:.0f}s"
            ) from exc
        except (KeyboardInterrupt, Interrupted) as exc:
            _stop(child)
            raise Interrupted("interrupted; run the same command again to finish") from exc
        return Result(tuple(argv), child.returncode, stdout or "", stderr or "")


def _stop(child: subprocess.Popen[str]) -> None:
    child.terminate()
    try:
        child.wait(10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def child_env(drop: Iterable[str] = ()) -> dict[str, str]:
    """This process's environment without the given names (so an env file's value wins)."""
    dropped = set(drop)
    return {k: v for k, v in os.environ.items() if k not in dropped}
