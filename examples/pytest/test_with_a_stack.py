"""A test suite that gets its own Hatchet stack from the hatchet-local pytest plugin.

Run from this directory: `pytest` (hatchet-local and hatchet-sdk installed, Docker running).
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from hatchet_sdk import Context, Hatchet
from pydantic import BaseModel

from hatchet_local.pytest_plugin import HatchetStack


class Greeting(BaseModel):
    name: str


WORKER = """
from hatchet_sdk import Context, Hatchet
from pydantic import BaseModel

class Greeting(BaseModel):
    name: str

hatchet = Hatchet()

@hatchet.task(name="greet", input_validator=Greeting)
def greet(input: Greeting, ctx: Context) -> dict:
    return {"message": f"hello {input.name}"}

hatchet.worker("example-worker", workflows=[greet]).start()
"""


def test_a_task_runs_on_the_session_stack(hatchet_stack: HatchetStack) -> None:
    hatchet = Hatchet()  # the plugin put the stack's settings in the environment

    @hatchet.task(name="greet", input_validator=Greeting)
    def greet(input: Greeting, ctx: Context) -> dict[str, Any]:
        raise AssertionError("runs in the worker process, not here")

    worker = subprocess.Popen([sys.executable, "-c", WORKER])
    try:
        deadline = time.monotonic() + 90
        while not (hatchet.workflows.list(workflow_name="greet").rows or []):
            assert time.monotonic() < deadline, "the worker never registered"
            time.sleep(0.5)
        assert greet.run(Greeting(name="pytest")) == {"message": "hello pytest"}
    finally:
        worker.terminate()
        worker.wait(30)
