"""Prove a Hatchet token works with the official hatchet-sdk: a worker and a run.

    python sdk_probe.py worker NAME        # register task NAME and serve it (blocks)
    python sdk_probe.py run NAME MESSAGE   # run task NAME once, print its JSON result

The client takes every setting from its environment or from the env files the SDK
loads by itself (`.env.hatchet` in the working directory among them), so a test
decides what the probe sees by its working directory and environment alone.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from hatchet_sdk import Context, Hatchet
from pydantic import BaseModel


class ProbeInput(BaseModel):
    message: str


def declare(hatchet: Hatchet, name: str) -> Any:
    @hatchet.task(name=name, input_validator=ProbeInput)
    def probe(input: ProbeInput, ctx: Context) -> dict[str, str]:
        return {"echo": input.message.upper(), "task": name}

    return probe


def wait_until_registered(hatchet: Hatchet, name: str, timeout: float = 90) -> None:
    """Trigger only once the worker has registered the task: a run of a workflow the
    engine does not know yet is never scheduled."""
    deadline = time.monotonic() + timeout
    while not (hatchet.workflows.list(workflow_name=name).rows or []):
        if time.monotonic() > deadline:
            raise SystemExit(f"no worker registered {name} within {timeout:.0f}s")
        time.sleep(0.5)


def main() -> int:
    mode, name = sys.argv[1], sys.argv[2]
    hatchet = Hatchet()
    task = declare(hatchet, name)
    if mode == "worker":
        hatchet.worker(f"{name}-worker", slots=2, workflows=[task]).start()
        return 0
    wait_until_registered(hatchet, task.name)
    print(json.dumps(task.run(ProbeInput(message=sys.argv[3]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
