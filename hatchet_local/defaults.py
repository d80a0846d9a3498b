"""Pinned versions and default images: the one place a version is written down.

The pinned Hatchet release is the one the test rig builds from source, so the
test suite always exercises the default.
"""

HATCHET_VERSION = "v0.101.27"
HATCHET_REGISTRY = "ghcr.io/hatchet-dev/hatchet"

# Image keys a configuration may override, with the reference each defaults to.
DEFAULT_IMAGES: dict[str, str] = {
    "postgres": "postgres:15.6",
    "rabbitmq": "rabbitmq:3-management",
    "hatchet-lite": f"{HATCHET_REGISTRY}/hatchet-lite:{HATCHET_VERSION}",
}

# The tenant that `hatchet-admin quickstart` seeds.
DEFAULT_TENANT_ID = "707d0855-80ab-4e1f-a156-f1c4546cbf52"
ADMIN_EMAIL = "admin@example.com"
