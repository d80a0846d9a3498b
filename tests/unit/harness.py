"""What the shared unit fixtures (tests/unit/conftest.py) hand to tests: `World`, one project
over a fake Docker + Hatchet behind a Context, and `Cli`, the command line over an injected
Context factory."""

from __future__ import annotations

import dataclasses
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from hatchet_local import cli, startup
from hatchet_local.compose import compose_argv
from hatchet_local.config import Config, load_config
from hatchet_local.console import Console
from hatchet_local.context import Context
from hatchet_local.errors import HatchetLocalError
from hatchet_local.redact import Redactor
from hatchet_local.startup import UpResult
from hatchet_local.state import StackDir
from tests.unit.fake_api import FakeHatchetApi
from tests.unit.fakes import FakeClock, FakeHatchet, FakeRunner

STACK = "unit"
COMPOSE = ("docker", "compose")  # the Compose v2 FakeHatchet offers: the docker CLI plugin


@dataclass
class World:
    """One project, a fake Docker + Hatchet behind a Context, and what they observed."""

    project: Path
    runner: FakeRunner
    hatchet: FakeHatchet
    clock: FakeClock
    ctx: Context
    grpc_probes: list[tuple[str, int]]

    @property
    def api(self) -> FakeHatchetApi:
        return self.hatchet.api

    @property
    def env_file(self) -> Path:
        return self.project / ".env.hatchet"

    @property
    def stack_dir(self) -> StackDir:
        return StackDir(self.ctx.state_root, STACK)

    def config(self, **environ: str) -> Config:
        return load_config(self.project, environ={"HATCHET_LOCAL_STACK": STACK, **environ})

    def up(self, **environ: str) -> UpResult:
        return startup.up(self.config(**environ), self.ctx)

    def up_error(self, **environ: str) -> HatchetLocalError:
        with pytest.raises(HatchetLocalError) as info:
            self.up(**environ)
        return info.value

    def next_process(self) -> None:
        """Forget what was seen so far; the next `up` runs as a new process would."""
        self.ctx = dataclasses.replace(self.ctx, console=Console(io.StringIO()), redact=Redactor())
        self.runner.forget()
        self.api.requests.clear()

    def compose(self, *args: str) -> tuple[str, ...]:
        """The argv of the compose command `args` for this world's stack."""
        stack_dir = self.stack_dir
        return tuple(
            compose_argv(COMPOSE, STACK, stack_dir.compose_file, stack_dir.secrets_file, *args)
        )

    def ran(self, argv: tuple[str, ...]) -> int:
        """How many times exactly `argv` ran."""
        return [call.argv for call in self.runner.calls].count(argv)

    def ports(self) -> dict[str, int]:
        record = self.stack_dir.load()
        assert record is not None
        return record.ports

    def console(self) -> str:
        stream = self.ctx.console.stream
        assert isinstance(stream, io.StringIO)
        return stream.getvalue()

    def compose_file(self) -> str:
        return self.stack_dir.compose_file.read_text()


@dataclass
class Cli:
    """The CLI with its Context made by `make_context` (in place of `Context.default`)."""

    make_context: Callable[..., Context]

    def invoke(self, *args: str) -> Result:
        return CliRunner().invoke(cli.app, list(args), obj=self.make_context)

    def main_exit(self, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
        """The exit code `main()` ends with."""
        monkeypatch.setattr(sys, "argv", ["hatchet-local", *args])
        with pytest.raises(SystemExit) as exit_info:
            cli.main(self.make_context)
        return int(exit_info.value.code or 0)
