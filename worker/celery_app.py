"""The Celery app: JSON only, late acknowledgement, prefetch 1, no result backend.

Two ways to get an app:

- ``create_app(settings)`` configures a new app from a Settings object right away; the CLI
  (``copygen worker``, ``copygen beat``) and tests use it.
- ``app`` below is for ``celery -A worker.celery_app worker|beat|flower``. It is created at
  import with no configuration; its configuration is a promise (``Celery.add_defaults`` with a
  callable) that reads ``get_settings()`` the first time Celery needs a setting, which is after
  the ``celery`` command line has started. Importing this module reads no settings, opens no
  connection and loads no model.

Every app lists its tasks by ``include=["worker.tasks"]`` (imported when a worker starts) and has
its worker signals connected here, explicitly: the checkpoint and the schema are checked when a
worker starts, and each pool process loads the model before its first task. The wire contract
(task names, queues) and the configuration are in worker.config.
"""

from __future__ import annotations

import logging
from pathlib import Path

from celery import Celery, current_app, signals
from celery.worker.control import inspect_command
from sqlalchemy.exc import DBAPIError

from copygen.settings import Settings, get_settings, mask_url
from trainer.checkpoint import load_manifest
from worker import metrics, runtime
from worker.config import MODEL_COMMAND, WORKER_QUEUES, celery_config
from worker.dispatch import serve_model, use_score_weights

log = logging.getLogger(__name__)

TASK_MODULES = ["worker.tasks"]


def create_app(settings: Settings | None = None) -> Celery:
    """A Celery app with copygen's tasks; configured from settings, or lazily from the environment."""
    app = Celery("copygen", include=TASK_MODULES)
    app.copygen_settings = settings  # read by settings_of(); None means get_settings() when needed
    if settings is None:
        app.add_defaults(lambda: celery_config(get_settings()))
    else:
        app.add_defaults(celery_config(settings))
    connect_worker_signals(app)
    return app


def settings_of(app: Celery) -> Settings:
    """The Settings an app was made with (the process's get_settings() for the lazy app)."""
    settings = getattr(app, "copygen_settings", None)
    return settings if settings is not None else get_settings()


def answer_model(state, **_kwargs) -> dict:
    """What this worker serves: {model_version, checkpoint} (the copygen_model inspect command)."""
    return getattr(state.consumer.app, "copygen_serving", None) or {}


def start_metrics(settings: Settings, pool: object) -> metrics.WorkerMetrics | None:
    """Serve this worker's metrics when COPYGEN_METRICS_PORT is set; SystemExit if the port is taken."""
    if settings.metrics_port is None:
        return None
    if not str(getattr(pool, "__module__", "")).endswith(".solo"):  # the pool class, e.g. celery.concurrency.solo
        log.warning("COPYGEN_METRICS_PORT with a process pool: chunks run in the pool's children, whose counts "
                    "this process cannot serve; run one solo worker per port (the default, --concurrency 1)")
    try:
        return metrics.serve(settings.metrics_port)
    except OSError as exc:
        raise SystemExit(f"copygen worker cannot start: COPYGEN_METRICS_PORT {settings.metrics_port}: {exc}") from None


def connect_worker_signals(app: Celery) -> None:
    """Check the checkpoint when a worker of this app starts; load the model in each pool process."""

    def check_at_start(sender=None, **_kwargs) -> None:
        if getattr(sender, "app", None) is not app:
            return
        settings = settings_of(app)
        served = start_metrics(settings, getattr(sender, "pool_cls", None))
        inspect_command(name=MODEL_COMMAND)(answer_model)  # registered only in a worker, not at import
        try:
            use_score_weights(settings)
            manifest = load_manifest(settings.checkpoint)
            app.copygen_serving = {"model_version": manifest["name"], "checkpoint": str(Path(settings.checkpoint).resolve())}
            if served is not None:
                served.model.info({"version": manifest["name"], "checkpoint": app.copygen_serving["checkpoint"]})
            version = serve_model(runtime.current(), settings)
        except ValueError as exc:  # weights, CheckpointError, SchemaError, a model version name taken by another model
            raise SystemExit(f"copygen worker cannot start: {exc}") from None  # SystemExit passes through Celery
        except DBAPIError as exc:  # the database may come back; chunks wait for it with backoff
            log.warning("database unreachable at start (%s); model version not registered", exc.orig or exc)
            return
        log.info("serving model %s from %s", version["name"], version["path"])

    def load_process_state(**_kwargs) -> None:
        if current_app._get_current_object() is not app:
            return
        settings = settings_of(app)
        rt = runtime.current()
        try:
            rt.generator(settings)
            rt.lexicon()
        except Exception:  # the first task loads it again and the error reaches its chunk
            log.exception("loading the checkpoint %s at process start failed", settings.checkpoint)

    uid = f"copygen-{id(app)}"
    signals.worker_init.connect(check_at_start, weak=False, dispatch_uid=f"{uid}-init")
    signals.worker_process_init.connect(load_process_state, weak=False, dispatch_uid=f"{uid}-process")


def worker_argv(
    *,
    queues: str | list[str] | tuple[str, ...] = WORKER_QUEUES,
    concurrency: int = 1,
    loglevel: str = "INFO",
    hostname: str | None = None,
) -> list[str]:
    """The argv of `celery worker` for app.worker_main().

    One process (the solo pool) by default: one model per process, and the chunk's soft time
    limit enforced by copygen itself. concurrency > 1 runs that many prefork processes, each
    loading the model once, with both time limits enforced by Celery.
    """
    if isinstance(queues, str):
        queues = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in queues if q not in WORKER_QUEUES]
    if unknown:
        raise ValueError(f"--queues: unknown queue(s) {', '.join(unknown)}; choose from {', '.join(WORKER_QUEUES)}")
    if concurrency < 1:
        raise ValueError(f"--concurrency: need 1 or more processes, got {concurrency}")
    pool = "solo" if concurrency == 1 else "prefork"
    argv = ["worker", f"--pool={pool}", f"--concurrency={concurrency}", f"--queues={','.join(queues)}",
            f"--loglevel={loglevel}"]
    if hostname:
        argv.append(f"--hostname={hostname}")
    return argv


def run_worker(settings: Settings, **options) -> None:
    """Run a worker in this process until it is stopped (the CLI's `copygen worker`).

    The checkpoint is checked first, so a bad one fails here with one line (CheckpointError).
    """
    if settings.in_process:
        raise ValueError("COPYGEN_BROKER_URL is memory:// (the embedded default): jobs run in the submitting "
                         "process; point it at Redis (redis://...) to run workers")
    load_manifest(settings.checkpoint)
    log.info("worker on %s, checkpoint %s", mask_url(settings.broker_url), settings.checkpoint)
    create_app(settings).worker_main(worker_argv(**options))


def run_beat(settings: Settings, *, loglevel: str = "INFO") -> None:
    """Run Celery beat in this process (the CLI's `copygen beat`): the reconciler and promo schedules."""
    if settings.in_process:
        raise ValueError("COPYGEN_BROKER_URL is memory:// (the embedded default): beat would send to a broker no "
                         "worker reads; point it at Redis (redis://...)")
    Path(settings.beat_state).parent.mkdir(parents=True, exist_ok=True)
    create_app(settings).start(["beat", f"--loglevel={loglevel}", f"--schedule={settings.beat_state}"])


# For `celery -A worker.celery_app ...`: configured from COPYGEN_* on first use, not at import.
app = create_app()
