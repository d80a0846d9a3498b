"""`reset`: the stack as it was right after its first bootstrap, with the same token.

Right after `setup` first ran on a stack's database, before its engine first started, `up`
keeps a copy of that database in the same cluster (provision.PRISTINE). `reset` builds the
next database from that copy, carries into it what the default tenant's running workers
registered (their workflows and the workers themselves: an SDK never registers again while it
runs, so a running worker keeps working) and the row of the stack's token, and swaps it in
with two renames in one transaction: whatever interrupts it, the data is the old or the new.
The copy of the pristine database is the slow part (about 1,000 files): while the engine starts,
each reset makes the next one's (provision.SPARE), which that reset renames into place.
Runs, events, logs, schedules and crons made through the API, other tokens, and extra tenants
are gone; the engine's config volume (its keys), the ports and so the server URL are kept,
so the token in `.env.hatchet` stays valid and the file is not rewritten.

`reset --new-token` (or a stack made before pristine copies existed) wipes everything,
config volume included, and bootstraps anew with a new token, as before.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from hatchet_local import postgres, startup
from hatchet_local.client_settings import token_claims
from hatchet_local.config import Config
from hatchet_local.context import Context
from hatchet_local.defaults import DEFAULT_TENANT_ID, ENGINE_SERVICE
from hatchet_local.errors import ConfigError, HatchetLocalError
from hatchet_local.phases import healthy
from hatchet_local.provision import PRISTINE, SPARE
from hatchet_local.stack import Stack, load_stack, stack_lock
from hatchet_local.wipe import empty_rabbitmq, wipe

NEXT, OLD = "hatchet_next", "hatchet_old"
# What workers register in Hatchet v0.101 (workflows, their versions, jobs, steps, triggers,
# the workers and their actions), and the token rows: carried over, then trimmed to the
# default tenant's running workers by _TRIM. Tables a version lacks are skipped by pg_dump.
CARRIED = (
    "Workflow", "WorkflowVersion", "Job", "Step", "Action", "_StepOrder",
    "StepDesiredWorkerLabel", "StepExpression", "StepRateLimit", "RateLimit",
    "WorkflowConcurrency", "WorkflowTriggers", "WorkflowTriggerEventRef",
    "WorkflowTriggerCronRef", "WorkflowTag", "_WorkflowToWorkflowTag", "Worker",
    "_ActionToWorker", "Service", "_ServiceToWorker", "WorkerLabel", "v1_worker_slot_config",
    "v1_step_slot_request", "v1_step_concurrency", "v1_workflow_concurrency",
    "v1_step_match_condition", "v1_step_batch_config", "v1_filter", "v1_queue", "APIToken",
)  # fmt: skip
# A worker listening (the engine marks it inactive when its stream closes; the engine is
# killed before the copy, so a running worker stays active) that heartbeated this recently
# was running when the reset began (SDKs beat every 4 seconds).
LIVE = "30 seconds"
_TRIM = """\
DELETE FROM "APIToken" WHERE "id" <> '{token_id}';
DELETE FROM "Worker" WHERE "tenantId" <> '{tenant}' OR "deletedAt" IS NOT NULL
    OR NOT "isActive" OR "lastHeartbeatAt" IS NULL OR "lastHeartbeatAt" < NOW() - INTERVAL '{live}';
UPDATE "Worker" SET "dispatcherId" = NULL, "durableTaskDispatcherId" = NULL;
DELETE FROM "Workflow" w WHERE w."tenantId" <> '{tenant}' OR NOT EXISTS (
    SELECT 1 FROM "WorkflowVersion" v
    JOIN "Job" j ON j."workflowVersionId" = v."id"
    JOIN "Step" s ON s."jobId" = j."id"
    JOIN "Action" a ON a."actionId" = s."actionId" AND a."tenantId" = s."tenantId"
    JOIN "_ActionToWorker" aw ON aw."A" = a."id"
    WHERE v."workflowId" = w."id");
DELETE FROM "WorkflowTriggerCronRef" WHERE "method" = 'API';
UPDATE "WorkflowTriggerCronRef" SET "tickerId" = NULL;
DELETE FROM "Action" a WHERE a."tenantId" <> '{tenant}' OR (
    NOT EXISTS (SELECT 1 FROM "Step" s
                WHERE s."actionId" = a."actionId" AND s."tenantId" = a."tenantId")
    AND NOT EXISTS (SELECT 1 FROM "_ActionToWorker" aw WHERE aw."A" = a."id"));
DELETE FROM "Service" WHERE "tenantId" <> '{tenant}'
    OR "id" NOT IN (SELECT "A" FROM "_ServiceToWorker");
DELETE FROM "StepExpression" WHERE "stepId" NOT IN (SELECT "id" FROM "Step");
DELETE FROM "StepRateLimit" WHERE "stepId" NOT IN (SELECT "id" FROM "Step");
DELETE FROM "RateLimit" WHERE "tenantId" <> '{tenant}';
DELETE FROM "WorkflowTag" WHERE "tenantId" <> '{tenant}';
DELETE FROM v1_worker_slot_config WHERE worker_id NOT IN (SELECT "id" FROM "Worker");
DELETE FROM v1_step_slot_request WHERE step_id NOT IN (SELECT "id" FROM "Step");
DELETE FROM v1_step_concurrency WHERE step_id NOT IN (SELECT "id" FROM "Step");
DELETE FROM v1_workflow_concurrency
    WHERE workflow_version_id NOT IN (SELECT "id" FROM "WorkflowVersion");
DELETE FROM v1_step_match_condition WHERE step_id NOT IN (SELECT "id" FROM "Step");
DELETE FROM v1_step_batch_config WHERE step_id NOT IN (SELECT "id" FROM "Step");
DELETE FROM v1_filter WHERE NOT is_declarative OR workflow_id NOT IN (SELECT "id" FROM "Workflow");
DELETE FROM v1_queue WHERE tenant_id <> '{tenant}';
"""

# The spare is taken only when it was copied from this pristine database, whole: its comment,
# set after the copy, names the pristine database's oid (`wipe` makes a new one).
_FITS = (
    f"SELECT EXISTS (SELECT 1 FROM pg_database s, pg_database p WHERE s.datname = '{SPARE}' "
    f"AND p.datname = '{PRISTINE}' AND shobj_description(s.oid, 'pg_database') = 'copy of ' "
    f"|| p.oid)"
)
_SPARE = f"""\
DROP DATABASE IF EXISTS {SPARE};
CREATE DATABASE {SPARE} TEMPLATE {PRISTINE} STRATEGY FILE_COPY;
DO $$ BEGIN
    EXECUTE format('COMMENT ON DATABASE {SPARE} IS %L', 'copy of ' ||
                   (SELECT oid FROM pg_database WHERE datname = '{PRISTINE}'));
END $$;
"""


def reset(
    config: Config, ctx: Context, *, tenant: str | None = None, new_token: bool = False
) -> startup.UpResult:
    """Back to the stack right after its first bootstrap, keeping its token; with
    `new_token`, or when the stack has no pristine copy, back to a new stack."""
    if tenant is not None:
        raise ConfigError(
            f"reset --tenant {tenant}: Hatchet has no way to delete one tenant's data; reset "
            f"the whole stack (`hatchet-local reset`), or give each developer a namespace"
        )
    load_stack(config, ctx, create=False)  # no such stack: say so before taking its lock
    with stack_lock(ctx, config.stack):
        stack = load_stack(config, ctx, create=False)
        if not new_token:
            why_not = _backing_up(stack, ctx, config)
            if why_not is None:
                with ctx.console.phase("restore"):
                    _restore(stack, ctx)
                # The next reset's copy is made while the engine starts (it reads nothing
                # of the pristine database, the copy's template).
                with ThreadPoolExecutor(max_workers=1) as beside:
                    spare = beside.submit(_keep_spare, stack)
                    startup.start_engine(stack, ctx, config)
                    result = startup.finish(stack, ctx, config)
                    _warn_unless_kept(ctx, spare)
                return result
            ctx.console.warn(f"{why_not}; this reset makes a new token (written to "
                             f"{config.env_file.name})")  # fmt: skip
        with ctx.console.phase("wipe data"):
            wipe(stack, ctx)
        return startup.up_locked(config, ctx)


def _backing_up(stack: Stack, ctx: Context, config: Config) -> str | None:
    """Start what the restore needs (Postgres, RabbitMQ); None when it can go ahead, else
    why the token cannot be kept."""
    token = stack.dir.load_token()
    if token is None or not token_claims(token.token).get("token_id"):
        return "the stack has no token to keep"
    states = {s.service: s.state for s in stack.compose.ps()}
    if any(states.get(service) != "running" for service in stack.services()):
        with ctx.console.phase("containers"):
            stack.compose.up(*stack.services())
    for service in stack.services():
        healthy(ctx, stack.compose, service, getattr(config.timeouts, service))
    if not postgres.database_exists(stack.compose, PRISTINE):
        return "the stack has no pristine copy (made before `reset` could keep a token)"
    return None


def _keep_spare(stack: Stack) -> None:
    postgres.psql(stack.compose, _SPARE, "copying the pristine database for the next reset",
                  database="postgres")  # fmt: skip


def _warn_unless_kept(ctx: Context, spare: Future[None]) -> None:
    """The reset is done either way: without its spare, the next one copies."""
    try:
        spare.result()
    except HatchetLocalError as error:
        ctx.console.warn(f"{error.message}; the next reset copies the pristine database itself")


def _restore(stack: Stack, ctx: Context) -> None:
    """The pristine database with the running workers' registrations and the token, swapped
    in for the current one; RabbitMQ's queues emptied."""
    token = stack.dir.load_token()
    assert token is not None
    token_id = str(token_claims(token.token)["token_id"])
    # Killed, not stopped: a clean stop sleeps five seconds; its partitions are dropped below.
    ctx.runner.run(["docker", "kill", stack.compose.container_name(ENGINE_SERVICE)], timeout=60)
    tables = " ".join(f"-t '\"{table}\"'" for table in CARRIED)
    trim = _TRIM.format(token_id=token_id, tenant=DEFAULT_TENANT_ID, live=LIVE)
    psql = " ".join(postgres.PSQL)
    script = f"""\
{psql} -d postgres <<'SQL'
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE datname IN ('{NEXT}', '{OLD}', '{SPARE}') AND pid <> pg_backend_pid();
DROP DATABASE IF EXISTS {NEXT};
DROP DATABASE IF EXISTS {OLD};
SQL
if [ "$({psql} -d postgres -c "{_FITS}")" = t ]; then
    {psql} -d postgres -c 'ALTER DATABASE {SPARE} RENAME TO {NEXT}' \\
        -c 'COMMENT ON DATABASE {NEXT} IS NULL'
else
    {psql} -d postgres <<'SQL'
DROP DATABASE IF EXISTS {SPARE};
CREATE DATABASE {NEXT} TEMPLATE {PRISTINE} STRATEGY FILE_COPY;
SQL
fi
pg_dump -U {postgres.USER} --data-only --disable-triggers {tables} {postgres.DATABASE} \\
    | {psql} -d {NEXT}
{psql} -d {NEXT} <<'SQL'
{trim}
SQL
{psql} -d postgres <<'SQL'
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE datname = '{postgres.DATABASE}' AND pid <> pg_backend_pid();
BEGIN;
ALTER DATABASE {postgres.DATABASE} RENAME TO {OLD};
ALTER DATABASE {NEXT} RENAME TO {postgres.DATABASE};
COMMIT;
DROP DATABASE {OLD};
SQL
"""
    # RabbitMQ's vhost is made again while Postgres copies (the engine is dead: nothing
    # publishes meanwhile); each takes about a second.
    with ThreadPoolExecutor(max_workers=1) as beside:
        emptied = (
            beside.submit(empty_rabbitmq, stack, ctx) if "rabbitmq" in stack.services() else None
        )
        postgres.shell(stack.compose, script, "restoring the pristine database")
        if emptied is not None:
            emptied.result()
    for path in (stack.dir.tenants_file, stack.dir.users_file):
        path.unlink(missing_ok=True)  # the extra tenants and logins are gone
