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

from hatchet_local.errors import CommandFailed, DockerUnavailable, Interrupted

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
    """`result`, or CommandFailed naming `what`, the exit code and the last lines it printed
    (DockerUnavailable when the docker CLI could not reach its engine)."""
    check_docker_reached(result, what)
    if not result.ok:
        raise CommandFailed(
            f"{what} failed (exit {result.returncode})",
            details=tail(result.stderr or result.stdout, 10),
        )
    return result


# What the docker CLI and Compose print when no engine answers at all ...
_UNREACHABLE = ("Cannot connect to the Docker daemon", "error during connect")
# ... and what they may print when the engine stops answering in the middle of a command.
# A job's own output can say the same about its own connections, so these only count when
# the engine then fails to answer `docker version` as well.
_CUT_OFF = ("unexpected EOF", "connection reset by peer", "broken pipe", "use of closed network")


def docker_unreachable(result: Result, runner: Runner | None = None) -> bool:
    """True when a failed docker or compose command failed because no engine answered."""
    if result.ok:
        return False
    text = result.stderr or result.stdout
    if any(sign in text for sign in _UNREACHABLE):
        return True
    if runner is None or not any(sign in text for sign in _CUT_OFF):
        return False
    probe = runner.run(["docker", "version", "--format", "{{.Server.Version}}"], timeout=30)
    return not probe.ok


def check_docker_reached(result: Result, what: str, runner: Runner | None = None) -> None:
    """DockerUnavailable, naming where Docker was sought, when `result` failed because the
    engine did not answer: said plainly rather than as a failed job, a missing image or a
    rejected token. With `runner`, an ambiguous failure is settled by asking the engine."""
    if docker_unreachable(result, runner):
        where = os.environ.get("DOCKER_HOST") or os.environ.get("DOCKER_CONTEXT") or "default"
        raise DockerUnavailable(
            f"no Docker engine answers ({where}) during {what}: check that it runs "
            f"(`docker info`), then run the same command again",
            details=tail(result.stderr or result.stdout, 3),
        )


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def child_env(drop: Iterable[str] = ()) -> dict[str, str]:
    """This process's environment without the given names (so an env file's value wins)."""
    dropped = set(drop)
    return {k: v for k, v in os.environ.items() if k not in dropped}
