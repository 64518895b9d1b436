"""`copygen health`: can this deployment take jobs and run them? One Check per thing looked at.

Checks, by name:

- database:   the copy store answers a query;
- schema:     it is at the latest migration (else: run `copygen migrate`);
- broker:     the broker answers (with memory://, the embedded default, there is none to ask);
- workers:    for each queue asked about, a worker consumes it, and which model each serves
              (Celery's inspect active_queues, a ping that also names the queues, and copygen's own
              copygen_model inspect command);
- checkpoint: COPYGEN_CHECKPOINT is a checkpoint the worker would load (trainer.checkpoint's rules);
- stuck:      no job is still pending or running COPYGEN_STUCK_HOURS after it was submitted.

A check that cannot run because another failed (schema needs the database, stuck the schema,
workers the broker) is left out, and the failure that names the cause is reported in its place.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta

from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from copygen.settings import Settings, mask_url
from db.engine import current_revision, known_revision, migrations, session_scope
from db.jobs import stuck_jobs
from db.models import utcnow
from trainer.checkpoint import CheckpointError, load_manifest
from worker.config import MODEL_COMMAND, WORKER_QUEUES
from worker.runtime import Runtime

log = logging.getLogger(__name__)

CHECKS = ("database", "schema", "broker", "workers", "checkpoint", "stuck")
SHOWN_STUCK = 3  # stuck jobs named on the line; --json has up to 100


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict:
        return asdict(self)


def check_database(rt: Runtime, settings: Settings) -> Check:
    where = mask_url(settings.database_url)
    try:
        with rt.engine(settings).connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        return Check("database", False, f"{where} unreachable: {str(exc.orig or exc).strip().splitlines()[0]}")
    return Check("database", True, f"{where} answers")


def check_schema(rt: Runtime, settings: Settings) -> Check:
    scripts = migrations()
    head, current = scripts.get_current_head(), current_revision(rt.engine(settings))
    if current == head:
        return Check("schema", True, f"at the latest migration ({head})")
    if current is None:
        return Check("schema", False, "no copygen schema: run `copygen migrate`")
    if not known_revision(current, scripts):
        return Check("schema", False, f"at migration {current}, which this copygen does not know (its latest is "
                                      f"{head}): the database was migrated by a newer copygen")
    return Check("schema", False, f"at migration {current}, not the latest ({head}): run `copygen migrate`")


def check_broker(rt: Runtime, settings: Settings, timeout: float) -> Check:
    where = mask_url(settings.broker_url)
    if settings.in_process:
        return Check("broker", True, f"{where}: the embedded default, jobs run in the process that submits them")
    try:
        with rt.sender(settings).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
            conn.default_channel  # noqa: B018 - opening a channel is what talks to the server
    except (BrokerError, OSError) as exc:
        return Check("broker", False, f"{where} unreachable: {exc}")
    return Check("broker", True, f"{where} answers")


def check_workers(rt: Runtime, settings: Settings, queues: tuple[str, ...], timeout: float) -> list[Check]:
    """One Check per queue: the workers consuming it (and their models), or a failure naming the queue."""
    if settings.in_process:
        return [Check("workers", True, "none needed: with memory:// jobs run in the process that submits them")]
    app = rt.sender(settings)
    try:
        consumers = app.control.inspect(timeout=timeout).active_queues() or {}
        # limit: return as soon as every worker that answered above has answered this too
        answers = (app.control.broadcast(MODEL_COMMAND, reply=True, timeout=timeout, limit=len(consumers))
                   if consumers else [])
    except (BrokerError, OSError) as exc:
        return [Check("workers", False, f"cannot ask the workers: {exc}")]
    models = {host: reply for answer in answers for host, reply in answer.items() if isinstance(reply, dict)}
    checks = []
    for queue in queues:
        hosts = sorted(host for host, qs in consumers.items() if any(q.get("name") == queue for q in qs))
        if not hosts:
            checks.append(Check(f"workers:{queue}", False, f"no worker consumes the queue '{queue}' (start one: "
                                                           f"`copygen worker --queues {queue}`)"))
            continue
        serving = [f"{host} ({models.get(host, {}).get('model_version') or 'model unknown'})" for host in hosts]
        checks.append(Check(f"workers:{queue}", True, f"{len(hosts)} worker(s): {', '.join(serving)}"))
    return checks


def check_checkpoint(settings: Settings) -> Check:
    try:
        manifest = load_manifest(settings.checkpoint)
    except CheckpointError as exc:
        return Check("checkpoint", False, str(exc))
    return Check("checkpoint", True, f"{settings.checkpoint}: model {manifest['name']}")


def check_stuck(rt: Runtime, settings: Settings, hours: float) -> Check:
    with session_scope(rt.engine(settings)) as s:
        stuck = stuck_jobs(s, utcnow() - timedelta(hours=hours))
    if not stuck:
        return Check("stuck", True, f"no job pending or running for more than {hours:g} h")
    named = ", ".join(f"{job['id']} ({job['status']} since {job['created_at']:%Y-%m-%d %H:%M} UTC)"
                      for job in stuck[:SHOWN_STUCK])
    more = f" and {len(stuck) - SHOWN_STUCK} more" if len(stuck) > SHOWN_STUCK else ""
    return Check("stuck", False, f"{len(stuck)}{'+' if len(stuck) >= 100 else ''} job(s) unfinished after "
                                 f"{hours:g} h: {named}{more}")


def run_checks(rt: Runtime, settings: Settings, names: tuple[str, ...] = CHECKS, *,
               queues: tuple[str, ...] = WORKER_QUEUES, timeout: float = 2.0) -> list[Check]:
    """The checks named (in CHECKS order), skipping those whose prerequisite failed."""
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"--check: unknown check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    checks: list[Check] = []
    schema_ok = broker_ok = True
    if "database" in names or "schema" in names or "stuck" in names:
        database = check_database(rt, settings)
        schema_ok = database.ok
        if "database" in names or not database.ok:
            checks.append(database)
        if database.ok:
            schema = check_schema(rt, settings)
            schema_ok = schema.ok
            if "schema" in names or not schema.ok:
                checks.append(schema)
    if "broker" in names or "workers" in names:
        broker = check_broker(rt, settings, timeout)
        broker_ok = broker.ok
        if "broker" in names or not broker_ok:
            checks.append(broker)
    if broker_ok and "workers" in names:
        checks += check_workers(rt, settings, queues, timeout)
    if "checkpoint" in names:
        checks.append(check_checkpoint(settings))
    if schema_ok and "stuck" in names:
        checks.append(check_stuck(rt, settings, settings.stuck_hours))
    return checks
