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
from pathlib import Path
from typing import NoReturn, Protocol

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
        cwd: Path | None = None,
    ) -> Result:
        """Run argv to completion (in `cwd`). With capture=False the child writes to our
        terminal."""
        ...


class SubprocessRunner:
    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        capture: bool = True,
        cwd: Path | None = None,
    ) -> Result:
        pipe = subprocess.PIPE if capture else None
        try:
            child = subprocess.Popen(
                list(argv),
                env=dict(env) if env is not None else None,
                cwd=cwd,
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


def replace_process(argv: Sequence[str], env: Mapping[str, str]) -> NoReturn:
    """Become `argv` (looked up on PATH) with exactly `env`: its exit code, signals and
    terminal are the caller's own, and nothing of it shows on another command line."""
    try:
        os.execvpe(argv[0], list(argv), dict(env))
    except FileNotFoundError:
        raise CommandFailed(f"{argv[0]}: command not found; is it installed?") from None
    except PermissionError:
        raise CommandFailed(f"{argv[0]}: permission denied; is it executable?") from None
    except OSError as exc:
        raise CommandFailed(f"{argv[0]}: cannot run it ({exc.strerror or exc})") from None
