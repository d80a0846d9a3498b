"""Hatchet's partitions, so that a task is dispatched as soon as the engine runs.

The engine (`internal/services/partition/partition.go` in the pinned module) serves a tenant
only once the tenant is assigned to a live controller and scheduler partition. Each engine
creates one partition of each kind at start, heartbeats it every 20 s, rebalances every
tenant once 10 s after start, and sweeps partitions silent for a minute every minute. A
clean shutdown deletes its partitions; an engine that was killed (or a database restored from
a copy of a running stack) leaves rows that look alive for up to a minute, and a tenant
assigned to one of them waits up to two minutes for its first task.

A stack runs exactly one engine, so every partition made before that engine started is dead.
`reclaim` deletes those rows (the tenants' references become NULL by their foreign keys) and
hands every tenant without a partition to the live engine's, which is what the engine's own
sweep does a minute later. The same goes for the scheduler's leases on workers and queues
(`Lease`, 30 s from their last extension, 15 min for table maintenance): a dead engine's
lease on a worker kept its tasks waiting up to 30 s; one last extended before the running
engine started is dead, and deleted. Call it whenever the engine (re)starts on kept data: after
`up` starts it, after a restore, and when the engine was restarted behind our back (a
Docker restart), which `engine_restarted` tells.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hatchet_local.compose import Compose
from hatchet_local.defaults import ENGINE_SERVICE
from hatchet_local.postgres import psql

_RECLAIM = """\
BEGIN;
DELETE FROM "ControllerPartition" WHERE "createdAt" < TIMESTAMP '{before}';
DELETE FROM "SchedulerPartition" WHERE "createdAt" < TIMESTAMP '{before}';
DELETE FROM "TenantWorkerPartition" WHERE "createdAt" < TIMESTAMP '{before}';
UPDATE "Tenant" SET "controllerPartitionId" =
    (SELECT "id" FROM "ControllerPartition" ORDER BY "createdAt" DESC LIMIT 1)
    WHERE "controllerPartitionId" IS NULL;
UPDATE "Tenant" SET "schedulerPartitionId" =
    (SELECT "id" FROM "SchedulerPartition" ORDER BY "createdAt" DESC LIMIT 1)
    WHERE "schedulerPartitionId" IS NULL AND "slug" <> 'internal';
UPDATE "Tenant" SET "workerPartitionId" =
    (SELECT "id" FROM "TenantWorkerPartition" ORDER BY "createdAt" DESC LIMIT 1)
    WHERE "workerPartitionId" IS NULL AND "slug" <> 'internal';
DELETE FROM "Lease" WHERE "expiresAt" <= TIMESTAMP '{before}' + CASE
    WHEN "kind" = 'TABLE_PARTITION_MAINTENANCE' THEN INTERVAL '15 minutes'
    ELSE INTERVAL '30 seconds' END;
COMMIT;
SELECT count(*) FROM "Tenant"
    WHERE "slug" <> 'internal' AND "deletedAt" IS NULL AND "schedulerPartitionId" IS NULL;
"""


def engine_started(compose: Compose) -> str | None:
    """When the stack's engine container last started (RFC 3339, UTC); None when it is not
    running."""
    state = compose.docker.container(compose.container_name(ENGINE_SERVICE))
    if state is None or state.state != "running":
        return None
    return state.started_at


def reclaim(compose: Compose, started: str | None) -> int:
    """Drop the partitions of engines that ran before the one that started at `started`
    (all of them when None: no engine runs) and give the live engine every tenant left
    without one. Returns how many tenants still wait for a scheduler partition (the engine
    makes its own a moment after it starts; then its start-up pass takes them at once)."""
    found = psql(compose, _RECLAIM.format(before=pg_timestamp(started)),
                 "handing the tenants to the running engine")  # fmt: skip
    return int(found.splitlines()[-1]) if found else 0


def pg_timestamp(started: str | None) -> str:
    """Docker's RFC 3339 time (nanoseconds, Z) as a UTC timestamp Postgres reads; no engine
    running is "infinity" (every partition is dead), an engine whose start Docker does not
    tell is "-infinity" (none is known dead)."""
    if started is None:
        return "infinity"
    if not started:
        return "-infinity"
    whole, _, fraction = started.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(whole).replace(tzinfo=UTC)
    micros = (fraction + "000000")[:6] if fraction else "000000"
    return f"{moment:%Y-%m-%d %H:%M:%S}.{micros}"
