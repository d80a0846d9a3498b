"""A pytest plugin: one ephemeral Hatchet stack for a test session.

Enable it with `-p hatchet_local.pytest_plugin`, or with
`pytest_plugins = ["hatchet_local.pytest_plugin"]` in a conftest.py, then ask for the
`hatchet_stack` fixture:

    def test_my_workflow(hatchet_stack):
        hatchet = Hatchet()            # reads the HATCHET_CLIENT_* settings set for the session
        ...

The stack is configured like `hatchet-local up` in pytest's root directory (its
hatchet-local.yaml and HATCHET_LOCAL_* variables), defaults to the `ci` profile, gets a name
of its own, and is destroyed after the session. It is ephemeral, so a session that is killed
leaves a stack the next `hatchet-local up` reaps.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hatchet_local.config import load_config
from hatchet_local.context import Context
from hatchet_local.errors import StackNotFound
from hatchet_local.inventory import destroy
from hatchet_local.startup import up

TTL_SECONDS = 2 * 3600


@dataclass(frozen=True)
class HatchetStack:
    name: str
    server_url: str
    grpc_address: str
    settings: dict[str, str]  # the HATCHET_CLIENT_* settings, also set in os.environ


@pytest.fixture(scope="session")
def hatchet_stack(request: pytest.FixtureRequest) -> Iterator[HatchetStack]:
    root = Path(str(request.config.rootpath))
    name = f"pytest-{uuid.uuid4().hex[:8]}"
    env_file = root / ".pytest-hatchet" / f"{name}.env"
    env_file.parent.mkdir(exist_ok=True)
    flags: dict[str, object] = {"stack": name, "env_file": str(env_file)}
    if not os.environ.get("HATCHET_LOCAL_PROFILE"):
        flags["profile"] = "ci"
    config = load_config(root, flags=flags)
    ctx = Context.default()
    saved: dict[str, str | None] = {}
    try:
        result = up(config, ctx, ttl=TTL_SECONDS)
        saved = {key: os.environ.get(key) for key in result.settings}
        os.environ.update(result.settings)
        yield HatchetStack(name, result.server_url, result.grpc_address, dict(result.settings))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with contextlib.suppress(StackNotFound):  # up failed before it made anything
            destroy(ctx, name)
        env_file.unlink(missing_ok=True)
        if env_file.parent.is_dir() and not any(env_file.parent.iterdir()):
            env_file.parent.rmdir()
