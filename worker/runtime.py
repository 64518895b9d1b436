"""A process's state: database engines, loaded models, the lexicon, a sending app, unsaved copy.

Everything a worker (or the process that runs jobs in-process) keeps between chunks lives in one
Runtime object per process, made on first use by ``current()``. A forked pool child must not use
its parent's database connections or model handles, so ``current()`` makes a fresh Runtime in a
new process, first disposing the inherited engines' pools without closing the parent's sockets.

Nothing here runs at import: no engine, model or connection exists until something asks for it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from celery import Celery
from sqlalchemy import Engine

from copygen.compliance import Lexicon, load_lexicon
from copygen.settings import Settings
from db.engine import make_engine, normalise_url, prepare_schema
from trainer.generation import Generator
from worker.config import celery_config

log = logging.getLogger(__name__)

# A worker must notice a database that stopped answering rather than wait on it forever: connect
# attempts give up after 10 s (the task retries with backoff), and TCP keepalives detect a dead
# peer on an idle connection in about 30 + 3 x 10 = 60 s.
PG_CONNECT_ARGS = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                   "keepalives_count": 3}
UNSAVED_CHUNKS = 4  # generated chunks kept in memory for a retry after a database outage


class UnsavedChunks:
    """Copy generated for chunks whose write failed (the database was away), kept for the retry.

    Bounded (the oldest is forgotten: its chunk is generated again) and locked: a threads pool
    runs several chunks of one process at once.
    """

    def __init__(self, capacity: int = UNSAVED_CHUNKS):
        self.capacity = capacity
        self._rows: OrderedDict[tuple[str, int], list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, job_id: str, chunk_no: int, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self._rows[(job_id, chunk_no)] = rows
            while len(self._rows) > self.capacity:
                self._rows.popitem(last=False)

    def get(self, job_id: str, chunk_no: int) -> list[dict[str, Any]] | None:
        with self._lock:
            return self._rows.get((job_id, chunk_no))

    def forget(self, job_id: str, chunk_no: int) -> None:
        with self._lock:
            self._rows.pop((job_id, chunk_no), None)


class Runtime:
    """One process's long-lived objects, each made once, on first use, under a lock."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.unsaved = UnsavedChunks()
        self._lock = threading.RLock()
        self._engines: dict[str, Engine] = {}
        self._prepared: set[str] = set()
        self._generators: dict[tuple[str, str, int], Generator] = {}
        self._senders: dict[str, Celery] = {}

    def engine(self, settings: Settings) -> Engine:
        """The engine for settings.database_url (connections are made on first use, not here)."""
        url = settings.database_url
        with self._lock:
            if url not in self._engines:
                postgres = normalise_url(url).get_backend_name() == "postgresql"
                self._engines[url] = (make_engine(url, connect_args=dict(PG_CONNECT_ARGS)) if postgres
                                      else make_engine(url))
            return self._engines[url]

    def store(self, settings: Settings) -> Engine:
        """The engine, once its schema is known to be current (db.engine.prepare_schema, once per process)."""
        engine = self.engine(settings)
        with self._lock:
            if settings.database_url not in self._prepared:
                prepare_schema(engine)
                self._prepared.add(settings.database_url)
        return engine

    def generator(self, settings: Settings, checkpoint: str | os.PathLike | None = None) -> Generator:
        """The Generator for a checkpoint (settings.checkpoint by default), loaded once."""
        path = str(Path(checkpoint or settings.checkpoint).resolve())
        key = (path, settings.device, settings.batch_size)
        with self._lock:
            if key not in self._generators:
                if settings.threads:
                    import torch  # heavy: only a process that loads a model pays for it

                    torch.set_num_threads(settings.threads)
                self._generators[key] = Generator.load(path, device=settings.device, batch_size=settings.batch_size)
            return self._generators[key]

    def lexicon(self) -> Lexicon:
        """The Advertising Law lexicon shipped with copygen (versioned data; load_lexicon reads it once)."""
        return load_lexicon()

    def sender(self, settings: Settings) -> Celery:
        """A Celery app for sending messages to settings.broker_url; its connection pool is reused."""
        with self._lock:
            if settings.broker_url not in self._senders:
                app = Celery("copygen-sender", set_as_current=False)
                app.config_from_object(celery_config(settings))
                self._senders[settings.broker_url] = app
            return self._senders[settings.broker_url]

    def inherited(self) -> None:
        """Forget the parent's pooled connections (after a fork), keeping its sockets open."""
        for engine in self._engines.values():
            engine.dispose(close=False)

    def close(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        for app in self._senders.values():
            app.close()


_current: Runtime | None = None
_current_lock = threading.Lock()


def current() -> Runtime:
    """This process's Runtime (a new one in a forked child)."""
    global _current
    with _current_lock:
        if _current is None or _current.pid != os.getpid():
            if _current is not None:
                _current.inherited()
            _current = Runtime()
        return _current


def reset() -> None:
    """Close and forget this process's Runtime (tests; a process that changes its settings)."""
    global _current
    with _current_lock:
        if _current is not None and _current.pid == os.getpid():
            _current.close()
        _current = None
