"""Jinja2 templates -> a stack's compose file. Pure: no Docker, no files written."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from hatchet_local import __version__
from hatchet_local.defaults import ADMIN_EMAIL, DEFAULT_IMAGES, ENGINE_HOLD_FILE, JOB_COMMANDS
from hatchet_local.docker import STACK_LABEL

TEMPLATE = "stack.yaml.j2"


def templates_dir() -> Path:
    """Inside the wheel the templates sit in the package; in a checkout, at the top level."""
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "templates"


if TYPE_CHECKING:
    import jinja2


@cache
def _environment() -> jinja2.Environment:
    import jinja2  # noqa: PLC0415  # only a render pays for it: a warm `up` renders nothing

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


@dataclass(frozen=True)
class StackSpec:
    """Everything the template needs, already resolved (ports chosen, images named)."""

    stack: str
    images: Mapping[str, str]
    message_queue: str
    dashboard: bool
    dashboard_port: int
    grpc_port: int
    pull_policy: str
    labels: Mapping[str, str] = field(default_factory=dict)
    host: str = "localhost"
    bind_address: str = "127.0.0.1"
    # Image keys whose image was built on this machine (`images build`): never pulled.
    local_builds: frozenset[str] = frozenset()
    # Healthchecks probe every 250 ms while a service starts: Docker Engine API 1.44 (v25)
    # and later only; Compose refuses the key on older engines.
    start_interval: bool = False

    def pull_policy_of(self, key: str) -> str:
        return "never" if key in self.local_builds else self.pull_policy

    @property
    def server_url(self) -> str:
        return f"http://{self.host}:{self.dashboard_port}"

    @property
    def grpc_address(self) -> str:
        return f"{self.host}:{self.grpc_port}"


def render_key(spec: StackSpec) -> str:
    """What the render of `spec` depends on, as a digest: the spec, the template's text and
    this version. An unchanged key means an unchanged render, with no need to render."""
    template = (templates_dir() / TEMPLATE).read_bytes()
    inputs = json.dumps([asdict(spec), __version__], sort_keys=True, default=_plain).encode()
    return hashlib.sha256(template + b"\0" + inputs).hexdigest()


def _plain(value: object) -> object:
    """A set in a stable order (a frozenset's own order changes with every process)."""
    return sorted(value) if isinstance(value, set | frozenset) else str(value)


def render_stack(spec: StackSpec) -> str:
    template = _environment().get_template(TEMPLATE)
    return template.render(
        tool_version=__version__,
        stack=spec.stack,
        labels=spec.labels,
        images=spec.images,
        message_queue=spec.message_queue,
        dashboard=spec.dashboard,
        pull={key: spec.pull_policy_of(key) for key in spec.images},
        bind_address=spec.bind_address,
        loopback_only=spec.bind_address == "127.0.0.1",
        ports={"dashboard": spec.dashboard_port, "grpc": spec.grpc_port},
        server_url=spec.server_url,
        cookie_domain=spec.host,
        grpc_broadcast_address=spec.grpc_address,
        admin_email=ADMIN_EMAIL,
        start_interval=spec.start_interval,
        job_commands=JOB_COMMANDS,
        engine_hold_file=ENGINE_HOLD_FILE,
    )


def reference_stacks() -> dict[str, str]:
    """The stacks kept under compose/ for review and for plain `docker compose` use:
    default images and ports, one per message queue."""
    stacks = {}
    for filename, queue in (
        ("hatchet-local.yaml", "rabbitmq"),
        ("hatchet-local-postgres-queue.yaml", "postgres"),
    ):
        spec = StackSpec(
            stack="hatchet-local",
            images=DEFAULT_IMAGES,
            message_queue=queue,
            dashboard=True,
            dashboard_port=8888,
            grpc_port=7077,
            pull_policy="missing",
            labels={STACK_LABEL: "hatchet-local"},
        )
        stacks[filename] = render_stack(spec)
    return stacks
