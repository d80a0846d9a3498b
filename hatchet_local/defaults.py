"""Pinned versions, default images and the names of a stack's parts: each written down once.

The pinned Hatchet release is the one the test rig builds from source, so the test suite
always exercises the default.
"""

HATCHET_VERSION = "v0.101.27"
HATCHET_REGISTRY = "ghcr.io/hatchet-dev/hatchet"

# The compose service that runs the Hatchet engine (with its API and dashboard).
ENGINE_SERVICE = "hatchet-lite"
# The one-shot jobs that migrate the database and generate the engine's config.
JOBS = ("migrate", "setup")
# What each job runs (in its own container under plain Compose; inside the engine's container,
# held at its start, when hatchet-local starts the stack: see jobs.py).
JOB_COMMANDS: dict[str, tuple[str, ...]] = {
    "migrate": ("/hatchet-migrate",),
    "setup": ("/hatchet-admin", "quickstart", "--skip", "certs", "--generated-config-dir",
              "/config", "--overwrite=false"),
}  # fmt: skip
# While this file is in the engine's config volume its container waits before the engine
# starts (hatchet-local runs the jobs in it meanwhile); no file, no wait.
ENGINE_HOLD_FILE = "/config/.hatchet-local-hold"

# Image keys a configuration may override, with the reference each defaults to.
DEFAULT_IMAGES: dict[str, str] = {
    "postgres": "postgres:15.6",
    "rabbitmq": "rabbitmq:3-management",
    ENGINE_SERVICE: f"{HATCHET_REGISTRY}/{ENGINE_SERVICE}:{HATCHET_VERSION}",
}

# The tenant that `hatchet-admin quickstart` seeds.
DEFAULT_TENANT_ID = "707d0855-80ab-4e1f-a156-f1c4546cbf52"
DEFAULT_TENANT_SLUG = "default"
ADMIN_EMAIL = "admin@example.com"


def backing_services(message_queue: str) -> tuple[str, ...]:
    """The long-running services a stack runs besides the engine, Postgres first."""
    return ("postgres", "rabbitmq") if message_queue == "rabbitmq" else ("postgres",)


def stack_services(message_queue: str) -> tuple[str, ...]:
    """Every long-running service of a stack, the engine last."""
    return (*backing_services(message_queue), ENGINE_SERVICE)


MAX_SPARES = 8  # the most spares `spares:` or `spare --count` keeps ready (spares.py)
