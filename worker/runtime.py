"""Per-process state of a worker: one engine, one Generator, one lexicon, made once per process.

A forked pool child must not use its parent's database connections, so every cached object is
keyed by the process id: the first use in a new process disposes the inherited engine's pool
(without closing the parent's sockets) and builds its own. The model is loaded at process init
(``worker_process_init``, sent by the prefork and solo pools) so that the first chunk does not pay
for it, and lazily on first use anywhere else (the in-process embedded mode, the threads pool).

The checkpoint is checked when the worker starts (``worker_init``, in the main process, before
any child exists): a missing or incompatible checkpoint stops the worker with one line.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from celery import signals

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from copygen.compliance import Lexicon
    from copygen.settings import Settings
    from trainer.generation import Generator

log = logging.getLogger(__name__)

# A worker must notice a database that stopped answering rather than wait on it forever: connect
# attempts give up after 10 s (the task retries with backoff), and TCP keepalives detect a dead
# peer on an idle connection in about 30 + 3 x 10 = 60 s.
PG_CONNECT_ARGS = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                   "keepalives_count": 3}

_lock = threading.Lock()
_engines: dict[str, tuple[int, Engine]] = {}  # url -> (pid, engine)
_generators: dict[tuple[str, str, int], tuple[int, Generator]] = {}  # (checkpoint, device, batch) -> (pid, gen)
_lexicon: tuple[int, Lexicon] | None = None


def engine(settings: Settings) -> Engine:
    """This process's engine for settings.database_url."""
    from db.engine import make_engine, normalise_url

    url = settings.database_url
    pid = os.getpid()
    with _lock:
        cached = _engines.get(url)
        if cached and cached[0] == pid:
            return cached[1]
        if cached:  # inherited through fork: forget the parent's pooled connections, keep them open
            cached[1].dispose(close=False)
        postgres = normalise_url(url).get_backend_name() == "postgresql"
        made = make_engine(url, connect_args=dict(PG_CONNECT_ARGS)) if postgres else make_engine(url)
        _engines[url] = (pid, made)
        return made


def generator(settings: Settings, checkpoint: str | os.PathLike | None = None) -> Generator:
    """This process's Generator for the checkpoint (settings.checkpoint by default), loaded once."""
    from trainer.generation import Generator

    path = str(Path(checkpoint or settings.checkpoint).resolve())
    key = (path, settings.device, settings.batch_size)
    pid = os.getpid()
    with _lock:
        cached = _generators.get(key)
        if cached and cached[0] == pid:
            return cached[1]
        if settings.threads:
            import torch

            torch.set_num_threads(settings.threads)
        loaded = Generator.load(path, device=settings.device, batch_size=settings.batch_size)
        _generators[key] = (pid, loaded)
        return loaded


def lexicon() -> Lexicon:
    """The Advertising Law lexicon shipped with copygen (versioned data), loaded once."""
    global _lexicon
    from copygen.compliance import load_lexicon

    with _lock:
        if _lexicon is None or _lexicon[0] != os.getpid():
            _lexicon = (os.getpid(), load_lexicon())
        return _lexicon[1]


def reset() -> None:
    """Forget every cached object (tests; a process that changes its settings)."""
    global _lexicon
    with _lock:
        for _, made in _engines.values():
            made.dispose()
        _engines.clear()
        _generators.clear()
        _lexicon = None


# -- worker signals: only for copygen's apps ---------------------------------------------------


@signals.worker_init.connect
def _check_checkpoint(sender=None, **_kwargs) -> None:
    """Refuse to start a worker whose checkpoint cannot be loaded: one line, exit status 1."""
    from trainer.checkpoint import CheckpointError, load_manifest
    from worker.celery_app import is_copygen_app, settings_of

    app = getattr(sender, "app", None)
    if not is_copygen_app(app):
        return
    settings = settings_of(app)
    try:
        manifest = load_manifest(settings.checkpoint)
    except CheckpointError as exc:  # SystemExit passes through Celery's signal dispatch; Exception would not
        raise SystemExit(f"copygen worker cannot start: {exc}") from None
    log.info("checkpoint %s (%s) ok", settings.checkpoint, manifest.get("name"))


@signals.worker_process_init.connect
def _load_process_state(**_kwargs) -> None:
    """Build this pool process's engine and load its model before the first task arrives."""
    from celery import current_app

    from worker.celery_app import is_copygen_app, settings_of

    app = current_app._get_current_object()
    if not is_copygen_app(app):
        return
    settings = settings_of(app)
    engine(settings)
    try:
        generator(settings)
        lexicon()
    except Exception:  # the first task retries the load and records the error against its chunk
        log.exception("loading the checkpoint %s at process start failed", settings.checkpoint)
