"""The one place that runs subprocesses.

Commands are argv lists (never a shell), secrets travel in env files and never in argv,
Ctrl-C stops the child before it is reported, and every text that may reach the user
goes through a Redactor first.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from hatchet_local.errors import CommandFailed, Interrupted

MASK = "********"


class Redactor:
    """Replaces every known secret in a text with a mask."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        # Short strings would mask ordinary words; real secrets here are long.
        self._secrets.update(s for s in secrets if len(s) >= 8)

    def secrets(self) -> list[str]:
        return sorted(self._secrets)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


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


def require_ok(result: Result, what: str) -> Result:
    """`result`, or CommandFailed naming `what`, the exit code and the last lines it printed."""
    if not result.ok:
        raise CommandFailed(
            f"{what} failed (exit {result.returncode})",
            details=tail(result.stderr or result.stdout, 10),
        )
    return result


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def child_env(drop: Iterable[str] = ()) -> dict[str, str]:
    """This process's environment without the given names (so an env file's value wins)."""
    dropped = set(drop)
    return {k: v for k, v in os.environ.items() if k not in dropped}
