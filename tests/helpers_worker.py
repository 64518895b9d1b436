"""Real processes for fault and security tests: a private Redis, a cuttable PostgreSQL proxy, fresh
databases, `celery worker` / `celery beat` subprocesses, and what a job stored.

Nothing here touches the shared services beyond creating and dropping a database of its own: a
test that needs to lose Redis starts its own redis-server on a free port, and a test that needs to
lose PostgreSQL puts a TCP proxy between the worker and 127.0.0.1:5432 and cuts that.

Nothing is timed. A test that must catch a worker mid-chunk holds a lock in its own database (it
owns it) instead of hoping the chunk lasts long enough: ``hold_claims`` stops any worker from
claiming a chunk, ``hold_stores`` lets a worker claim and generate a chunk but not store it, so the
worker waits mid-chunk, with nothing committed, for as long as the test likes, on a machine ten
times slower or ten times faster than this one. Tests then wait for events, never for a length of
time: a chunk's status in SQL, a worker waiting on a lock (``blocked_backends``), a line in a
worker's log. Every timeout is an upper bound far above what this machine needs.

Workers decode a chunk in one batch (``FAST_ENV``), with a checkpoint trained for one step
(``slow_checkpoint``) that writes long copy, to the end of its token budget more often than not:
a chunk that must outlast a time limit is made of many products, long variants and small batches.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("COPYGEN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_HOST, PG_PORT = "127.0.0.1", 5432
WORKER_QUEUES = "interactive,batch,celery"
FAST_ENV = {"COPYGEN_BATCH_SIZE": "256", "COPYGEN_REGENERATE_ROUNDS": "0"}  # a chunk in one batch
COLOURS = ("白色", "黑色", "红色", "粉色", "灰色")
TYPES = (("上衣", "材质#棉"), ("裙", "裙长#连衣裙"), ("裤", "裤型#阔腿裤"))


# -- services -------------------------------------------------------------------------------------


def require_service(name: str, port: int, host: str = "127.0.0.1") -> None:
    """Skip when a service is missing on a laptop; fail under CI=true (never green by skipping)."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        message = f"{name} is not reachable on {host}:{port}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: a missing service is a failure, not a skip)")
        pytest.skip(message)


def require_binary(name: str) -> str:
    import shutil

    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true)")
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.1) -> Any:
    """predicate()'s first truthy value; AssertionError naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


class PrivateRedis:
    """A redis-server of the test's own on a free 127.0.0.1 port, keeping nothing on disk.

    kill() is a crash (SIGKILL): every queued and unacknowledged message is lost, as in production
    with persistence off. restart() brings an empty server back on the same port and password.
    With tls=(cert, key) it listens for TLS only, and url is a rediss:// URL trusting that cert.
    """

    def __init__(self, folder: Path, *, password: str | None = None, tls: tuple[Path, Path] | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.tls = tls
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = self.folder / "redis.log"

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_cert_reqs=required&ssl_ca_certs={self.tls[0]}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        binary = require_binary("redis-server")
        argv = [binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.folder),
                "--logfile", str(self.log_path)]
        if self.tls:
            argv += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls[0]),
                     "--tls-key-file", str(self.tls[1]), "--tls-auth-clients", "no"]
        else:
            argv += ["--port", str(self.port)]
        if self.password:
            argv += ["--requirepass", self.password]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(self._answers, 20, f"redis-server on port {self.port}")
        return self

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"redis-server exited: {self.log_path.read_text()[-2000:]}")
        try:
            with self.client() as client:
                return bool(client.ping())
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart(self, down_for: float = 0.0) -> None:
        self.kill()
        time.sleep(down_for)
        self.start()

    def flushall(self) -> None:
        with self.client() as client:
            client.flushall()

    def queue_length(self, queue: str) -> int:
        with self.client() as client:
            return int(client.llen(queue))


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """(cert, key) for 127.0.0.1, made with the openssl command line."""
    openssl = require_binary("openssl")
    cert, key = folder / "redis-cert.pem", folder / "redis-key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class PgProxy:
    """A TCP proxy 127.0.0.1:port -> PostgreSQL that a test can cut and restore.

    cut() resets every proxied connection and refuses new ones (a server that went away);
    restore() listens again on the same port.
    """

    def __init__(self, target: tuple[str, int] = (PG_HOST, PG_PORT)):
        self.target = target
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._serving = False
        self.connections = 0  # accepted so far

    def url(self, database_url: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(database_url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def start(self) -> PgProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener, self._serving = listener, True
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while self._serving and listener is self._listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
                self.connections += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def cut(self) -> None:
        self._serving = False
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            live = list(self._sockets)
        for s in live:
            self._drop(s)

    def restore(self) -> None:
        self.start()

    def close(self) -> None:
        self.cut()


@contextmanager
def fresh_database(prefix: str = "copygen_f") -> Iterator[str]:
    """A new PostgreSQL database at the schema head; dropped afterwards."""
    from sqlalchemy import create_engine, text

    from db.engine import upgrade

    require_service("PostgreSQL", PG_PORT)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- processes ------------------------------------------------------------------------------------


def copygen_env(**settings: Any) -> dict[str, str]:
    """This process's environment without its COPYGEN_* variables, plus COPYGEN_<KEY> for each setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPYGEN_")}
    env.update({f"COPYGEN_{k.upper()}": str(v) for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


class CeleryProcess:
    """A `celery -A worker.celery_app worker|beat` subprocess whose output goes to a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path, ready: str):
        self.argv, self.env, self.log_path, self.ready = argv, env, Path(log_path), ready
        self.process: subprocess.Popen | None = None

    def start(self, wait: bool = True, timeout: float = 120) -> CeleryProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        wait_until(self.is_ready, timeout, f"{self.log_path.name} to say it is ready", poll=0.25)

    def is_ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.log_path.name}: exited with {self.process.returncode}:\n{self.log()[-4000:]}")
        return self.ready in self.log()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL to the whole process group (a prefork pool's children too)."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout: float = 60) -> int:
        """Warm shutdown (SIGTERM), then SIGKILL if it does not exit in time; the exit status."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


def worker_process(env: dict[str, str], log_path: Path, name: str = "w", *, pool: str = "solo",
                   concurrency: int = 1) -> CeleryProcess:
    argv = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", f"--pool={pool}",
            f"--concurrency={concurrency}", f"--queues={WORKER_QUEUES}", "--loglevel=INFO", "--without-mingle",
            "--without-gossip", f"--hostname={name}-{uuid.uuid4().hex[:6]}@%h"]
    return CeleryProcess(argv, env, log_path, ready=" ready.")


def beat_process(env: dict[str, str], log_path: Path, schedule_db: Path) -> CeleryProcess:
    argv = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "beat", "--loglevel=INFO",
            f"--schedule={schedule_db}"]
    return CeleryProcess(argv, env, log_path, ready="beat: Starting")


class Fleet:
    """The `celery worker` and `celery beat` processes of one test or one test module, started with
    one environment (plus overrides each) and logging to files in one folder."""

    def __init__(self, env: dict[str, str], folder: Path):
        self.env, self.folder = env, Path(folder)
        self.started: list[CeleryProcess] = []

    def worker(self, name: str, *, wait: bool = True, **overrides: str) -> CeleryProcess:
        """A solo-pool worker logging to NAME.log; with wait, returned once it says it is ready."""
        return self._start(worker_process({**self.env, **overrides}, self.folder / f"{name}.log", name), wait)

    def beat(self, name: str, *, wait: bool = True, **overrides: str) -> CeleryProcess:
        process = beat_process({**self.env, **overrides}, self.folder / f"{name}.log", self.folder / f"{name}-schedule")
        return self._start(process, wait)

    def _start(self, process: CeleryProcess, wait: bool) -> CeleryProcess:
        self.started.append(process)  # first: one that fails to start is still cleaned up
        return process.start(wait=wait, timeout=300)

    def kill_all(self) -> None:
        for process in reversed(self.started):
            process.kill()

    def stop_all(self, timeout: float = 30) -> None:
        for process in reversed(self.started):
            process.stop(timeout=timeout)

    def print_logs(self, tail: int = 4000) -> None:
        """Each log's last `tail` characters on stdout, which pytest shows when a test fails."""
        for process in self.started:
            print(f"---- {process.log_path.name}\n{process.log()[-tail:]}")


def copygen_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """`copygen ARGS` as a user runs it."""
    code = "import sys; from copygen.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


# -- jobs -----------------------------------------------------------------------------------------


def catalogue(n: int, prefix: str = "P") -> list[dict]:
    rows = []
    for i in range(n):
        kind, extra = TYPES[i % len(TYPES)]
        colour = COLOURS[i % len(COLOURS)]
        rows.append({"external_id": f"{prefix}-{i:04d}", "title": f"{colour}{kind}",
                     "attributes": f"类型#{kind}*颜色#{colour}*{extra}"})
    return rows


def write_job(engine, settings, n: int, *, variants: int, prefix: str = "P", chunk_size: int | None = None,
              **job: Any) -> str:
    """A job of n products written to SQL and NOT enqueued (the test decides what reaches the queue)."""
    from copygen.catalogue import JobSettings, validate_products
    from db.engine import session_scope
    from worker.submit import write_job as write

    products, errors = validate_products(catalogue(n, prefix))
    assert errors == []
    if chunk_size is not None:
        settings = settings.model_copy(update={"chunk_size": chunk_size})
    with session_scope(engine) as s:
        job_id, _ = write(s, products, JobSettings(variants=variants, **job), settings=settings,
                          idempotency_key=f"{prefix}-{uuid.uuid4().hex[:8]}")
    return job_id


def send_chunks(broker_url: str, job_id: str, chunk_nos, queue: str = "batch", copies: int = 1) -> None:
    """Publish copygen.generate_chunk(job_id, n) for each chunk, `copies` times, as any client would."""
    from celery import Celery

    client = Celery("fault-test", broker=broker_url)
    try:
        with client.producer_or_acquire() as producer:
            for chunk_no in chunk_nos:
                for _ in range(copies):
                    client.send_task("copygen.generate_chunk", args=(job_id, chunk_no), queue=queue,
                                     producer=producer)
    finally:
        client.close()


def chunk_rows(engine, job_id: str) -> list[dict]:
    from sqlalchemy import select

    from db.engine import session_scope
    from db.models import Chunk

    with session_scope(engine) as s:
        rows = s.execute(select(Chunk.chunk_no, Chunk.status, Chunk.attempts, Chunk.n_items, Chunk.lease_until,
                                Chunk.last_error).where(Chunk.job_id == job_id).order_by(Chunk.chunk_no))
        return [dict(r._mapping) for r in rows]


def chunk_status(engine, job_id: str, chunk_no: int) -> str:
    return chunk_rows(engine, job_id)[chunk_no]["status"]


class HeldLock:
    """A lock the test takes in a transaction of its own and holds until release() (or the end of
    its with block, whatever happens in it)."""

    def __init__(self, engine, statement: str, **params: Any):
        self.engine, self.statement, self.params = engine, statement, params
        self.connection = None

    def __enter__(self):  # -> HeldLock
        from sqlalchemy import text

        self.connection = self.engine.connect()
        self.connection.execute(text(self.statement), self.params)  # in a transaction until release()
        return self

    def release(self) -> None:
        if self.connection is not None:
            self.connection.rollback()
            self.connection.close()
            self.connection = None

    def __exit__(self, *exc: object) -> None:
        self.release()


def hold_claims(engine, job_id: str, chunk_no: int) -> HeldLock:
    """While held, no worker can claim the chunk: its row is locked FOR UPDATE, and a worker that
    takes its message waits in the claim (a blocked backend), the chunk still pending."""
    return HeldLock(engine, "SELECT 1 FROM chunks WHERE job_id = :job_id AND chunk_no = :chunk_no FOR UPDATE",
                    job_id=job_id, chunk_no=chunk_no)


def hold_stores(engine) -> HeldLock:
    """While held, no worker can store a variant (the variants table is locked in SHARE mode, which
    lets reads through): a worker claims and generates a chunk, then waits to write it, mid-chunk,
    with nothing committed."""
    return HeldLock(engine, "LOCK TABLE variants IN SHARE MODE")


def blocked_backends(engine) -> int:
    """Connections to the test's database waiting on a lock: workers held by hold_claims/hold_stores."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND wait_event_type = 'Lock'")).scalar_one()


def lapse_lease(engine, job_id: str, chunk_no: int) -> None:
    """Make a running chunk's lease lapse now, as if its claimant had been silent for a day.

    The test owns its database: rather than sleep until the lease runs out, it moves lease_until
    back a day, into the past (for any lease under a day) on any clock that agreed with the
    claimant's when it claimed.
    """
    from sqlalchemy import text

    from db.engine import session_scope

    with session_scope(engine) as s:
        moved = s.execute(text("UPDATE chunks SET lease_until = lease_until - interval '1 day' "
                               "WHERE job_id = :job_id AND chunk_no = :chunk_no AND status = 'running' "
                               "AND lease_until IS NOT NULL"), {"job_id": job_id, "chunk_no": chunk_no}).rowcount
    assert moved == 1, f"job {job_id} chunk {chunk_no} is not running under a lease"


def stored_slots(engine, job_id: str) -> dict[tuple[int, str], list[int]]:
    """(chunk_no, external_id) -> the variant numbers stored for that product, sorted; every item listed."""
    from sqlalchemy import select

    from db.engine import session_scope
    from db.models import JobItem, Variant

    with session_scope(engine) as s:
        rows = s.execute(
            select(JobItem.chunk_no, JobItem.external_id, Variant.variant_no)
            .select_from(JobItem)
            .outerjoin(Variant, Variant.job_item_id == JobItem.id)
            .where(JobItem.job_id == job_id)
        ).all()
    slots: dict[tuple[int, str], list[int]] = {}
    for chunk_no, external_id, variant_no in rows:
        slots.setdefault((chunk_no, external_id), [])
        if variant_no is not None:
            slots[(chunk_no, external_id)].append(variant_no)
    return {key: sorted(value) for key, value in slots.items()}


def assert_chunks_all_or_nothing(engine, job_id: str, k: int) -> None:
    """A done chunk has all k variants of every product; any other chunk has none."""
    status = {row["chunk_no"]: row["status"] for row in chunk_rows(engine, job_id)}
    for (chunk_no, external_id), numbers in stored_slots(engine, job_id).items():
        expected = list(range(1, k + 1)) if status[chunk_no] == "done" else []
        assert numbers == expected, f"chunk {chunk_no} ({status[chunk_no]}), product {external_id}: {numbers}"


def assert_exactly_k(engine, job_id: str, k: int, n: int) -> None:
    """Every one of the job's n products has variants 1..k, each once: nothing lost, nothing doubled."""
    slots = stored_slots(engine, job_id)
    assert len(slots) == n
    wrong = {key: numbers for key, numbers in slots.items() if numbers != list(range(1, k + 1))}
    assert wrong == {}, f"products without exactly variants 1..{k}: {dict(list(wrong.items())[:5])}"


def slow_checkpoint(folder: Path) -> Path:
    """A checkpoint trained for one step (see the module docstring), built once per test session."""
    from trainer.testing import tiny_checkpoint

    path = folder / "slow-checkpoint"
    return path if (path / "copygen.json").is_file() else tiny_checkpoint(path, steps=1)
