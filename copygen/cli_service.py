"""copygen worker, beat, reconcile, health and migrate: the commands that run the service."""

from __future__ import annotations

import json
from pathlib import Path

from worker.config import WORKER_QUEUES

# `copygen health --check` choices (worker.health.CHECKS; listed here so the parser imports no worker code)
HEALTH_CHECKS = ("database", "schema", "broker", "workers", "checkpoint", "stuck")


def cmd_worker(args) -> int:
    from copygen.settings import get_settings
    from worker.celery_app import run_worker

    settings = get_settings()
    if args.checkpoint:
        settings = settings.model_copy(update={"checkpoint": Path(args.checkpoint)})
    # the worker checks its checkpoint and the schema as it starts, and registers its model version
    run_worker(settings, queues=args.queues, concurrency=args.concurrency, loglevel=args.log_level or settings.log_level)
    return 0


def cmd_beat(args) -> int:
    from copygen.settings import get_settings
    from worker.celery_app import run_beat

    settings = get_settings()
    if args.schedule:
        settings = settings.model_copy(update={"schedule_file": Path(args.schedule)})
    if args.state:
        settings = settings.model_copy(update={"beat_state": Path(args.state)})
    run_beat(settings, loglevel=args.log_level or settings.log_level)
    return 0


def cmd_reconcile(args) -> int:
    from copygen.settings import get_settings
    from worker import runtime
    from worker.reconcile import reconcile

    settings = get_settings()
    rt = runtime.current()
    rt.store(settings)
    counts = reconcile(rt, rt.sender(settings), settings)
    print(", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_health(args) -> int:
    from copygen.settings import get_settings
    from worker import runtime
    from worker.health import CHECKS, run_checks

    settings = get_settings()
    if args.stuck_hours is not None:
        settings = settings.model_copy(update={"stuck_hours": args.stuck_hours})
    queues = tuple(q.strip() for q in args.queues.split(",") if q.strip())
    unknown = [q for q in queues if q not in WORKER_QUEUES]
    if unknown:
        raise ValueError(f"--queues: unknown queue(s) {', '.join(unknown)}; choose from {', '.join(WORKER_QUEUES)}")
    checks = run_checks(runtime.current(), settings, tuple(args.check or CHECKS), queues=queues, timeout=args.timeout)
    healthy = all(c.ok for c in checks)
    if args.json:
        print(json.dumps({"healthy": healthy, "checks": [c.to_json() for c in checks]}, ensure_ascii=False, indent=2))
    else:
        for check in checks:
            print(f"{'ok' if check.ok else 'FAIL':4}  {check.name}: {check.detail}")
    return 0 if healthy else 1


def cmd_migrate(args) -> int:
    from copygen.settings import get_settings, mask_url
    from db.engine import upgrade

    url = get_settings().database_url
    upgrade(url)
    print(f"{mask_url(url)}: schema at head")
    return 0


def add_service_commands(sub) -> None:
    p = sub.add_parser("worker", help="run a Celery worker that generates copy (needs COPYGEN_BROKER_URL)")
    p.add_argument("--checkpoint", help="checkpoint directory (default COPYGEN_CHECKPOINT)")
    p.add_argument("--queues", default=",".join(WORKER_QUEUES),
                   help=f"queues to consume, comma-separated (default {','.join(WORKER_QUEUES)}; celery is where "
                        "a client that names no queue sends)")
    p.add_argument("--concurrency", type=int, default=1,
                   help="processes, each loading the model once (default 1: one process, the solo pool; "
                        "more runs Celery's prefork pool)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("beat", help="run Celery beat: the reconciler and the promo schedules")
    p.add_argument("--schedule", help="schedule file (default COPYGEN_SCHEDULE_FILE)")
    p.add_argument("--state", help="beat's state file (default COPYGEN_BEAT_STATE, var/celerybeat-schedule)")
    p.set_defaults(func=cmd_beat)

    p = sub.add_parser("reconcile", help="re-enqueue pending or lapsed chunks and settle finished jobs, once")
    p.set_defaults(func=cmd_reconcile)

    p = sub.add_parser("health", help="check the database, schema, broker, workers, checkpoint and stuck jobs; "
                                      "exit 1 naming each problem")
    p.add_argument("--check", action="append", choices=HEALTH_CHECKS, metavar="NAME",
                   help=f"run only this check; repeatable ({', '.join(HEALTH_CHECKS)}; default all)")
    p.add_argument("--queues", default=",".join(WORKER_QUEUES),
                   help=f"queues that must have a worker, comma-separated (default {','.join(WORKER_QUEUES)})")
    p.add_argument("--stuck-hours", type=float, help="a job unfinished after this many hours is stuck "
                                                     "(default COPYGEN_STUCK_HOURS, 24)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for workers to answer (default 2)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("migrate", help="bring the database schema to the latest version (alembic upgrade head)")
    p.set_defaults(func=cmd_migrate)
