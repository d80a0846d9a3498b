"""Prove a Hatchet token works with the official hatchet-sdk: a worker and a run.

    python sdk_probe.py worker NAME        # register task NAME and serve it (blocks)
    python sdk_probe.py run NAME MESSAGE   # run task NAME once, print its JSON result
    python sdk_probe.py trigger NAME       # try to start task NAME (no wait for a worker),
                                           # print {"ok": bool, "error": str}
    python sdk_probe.py on-event NAME EVENT FILE   # serve workflow NAME triggered by EVENT;
                                           # each run appends its input as a line to FILE
    python sdk_probe.py push EVENT MESSAGE  # push EVENT once
    python sdk_probe.py cron NAME CRON      # add a cron named CRON to workflow NAME (API)
    python sdk_probe.py inventory NAME      # print {"workflows", "crons", "runs"} as JSON
    python sdk_probe.py many NAME COUNT     # run task NAME COUNT times (a worker must serve)

The client takes every setting from its environment or from the env files the SDK
loads by itself (`.env.hatchet` in the working directory among them), so a test
decides what the probe sees by its working directory and environment alone.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
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


def on_event(hatchet: Hatchet, name: str, event: str, path: str) -> int:
    @hatchet.task(name=name, on_events=[event], input_validator=ProbeInput)
    def record(input: ProbeInput, ctx: Context) -> dict[str, str]:
        line = json.dumps({"message": input.message, "namespace": hatchet.namespace})
        with Path(path).open("a", encoding="utf-8") as out:
            out.write(line + "\n")
        return {"recorded": input.message}

    hatchet.worker(f"{name}-worker", slots=2, workflows=[record]).start()
    return 0


def trigger(hatchet: Hatchet, name: str) -> int:
    try:
        declare(hatchet, name).run_no_wait(ProbeInput(message="trigger"))
    except Exception as exc:
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
        return 0
    print(json.dumps({"ok": True, "error": ""}))
    return 0


def inventory(hatchet: Hatchet) -> int:
    """What the tenant holds: workflow names, cron names, and how many runs (a year back)."""
    since = datetime.now(UTC) - timedelta(days=365)
    print(json.dumps({
        "workflows": sorted(w.name for w in hatchet.workflows.list().rows or []),
        "crons": sorted(c.name or "" for c in hatchet.cron.list().rows or []),
        "runs": len(hatchet.runs.list(since=since, limit=10000).rows or []),
    }))  # fmt: skip
    return 0


def main() -> int:
    mode, name = sys.argv[1], sys.argv[2]
    hatchet = Hatchet()
    if mode == "cron":
        hatchet.cron.create(name, sys.argv[3], "0 3 * * *", {"message": "cron"}, {})
        return 0
    if mode == "inventory":
        return inventory(hatchet)
    if mode == "on-event":
        return on_event(hatchet, name, sys.argv[3], sys.argv[4])
    if mode == "push":
        hatchet.event.push(name, {"message": sys.argv[3]})
        return 0
    if mode == "trigger":
        return trigger(hatchet, name)
    task = declare(hatchet, name)
    if mode == "worker":
        hatchet.worker(f"{name}-worker", slots=2, workflows=[task]).start()
        return 0
    wait_until_registered(hatchet, task.name)
    if mode == "many":
        items = [task.create_bulk_run_item(ProbeInput(message=str(n)))
                 for n in range(int(sys.argv[3]))]  # fmt: skip
        print(json.dumps({"done": len(task.run_many(items))}))
        return 0
    print(json.dumps(task.run(ProbeInput(message=sys.argv[3]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
