"""End to end on this machine's PostgreSQL and Redis, with a real `celery worker` process.

One worker (solo pool, one process, the tiny checkpoint) serves every test of the module; it
starts once (~10 s: torch, the model) and is shut down warm at the end. Its log is printed when
a test fails.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from helpers_worker import PG_ADMIN_URL, catalogue, require_service

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("COPYGEN_TEST_REDIS_URL", "redis://127.0.0.1:6379")
# A Redis database of this module's own: the worker outlives single tests, so it must not share
# the per-test database (COPYGEN_TEST_REDIS_DB, flushed by the redis_url fixture).
REDIS_DB = int(os.environ.get("COPYGEN_TEST_REDIS_DB", "9")) + 1
CATALOGUE_ROWS = 50
VARIANTS = 3


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """(database url, broker url): a fresh PostgreSQL database, migrated, and a flushed Redis db."""
    require_service("PostgreSQL", 5432)
    require_service("Redis", 6379)
    import redis
    from sqlalchemy import create_engine, text

    from db.engine import upgrade

    name = f"copygen_w_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    upgrade(database_url)
    broker_url = f"{REDIS_URL}/{REDIS_DB}"
    client = redis.Redis.from_url(broker_url)
    client.flushdb()
    yield database_url, broker_url
    client.flushdb()
    client.close()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from trainer.testing import tiny_checkpoint

    path = tmp_path_factory.getbasetemp() / "tiny-checkpoint"
    return path if (path / "copygen.json").is_file() else tiny_checkpoint(path)


@pytest.fixture(scope="module")
def promo_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("promo")
    with (folder / "double11.jsonl").open("w", encoding="utf-8") as f:
        for row in catalogue(4, prefix="D11"):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    path = folder / "promo.yaml"
    path.write_text("- name: double11\n  cron: '0 2 * * *'\n  catalogue: double11.jsonl\n"
                    "  settings: {variants: 2, length: short, opening: 双11狂欢，, campaign: double11}\n",
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def settings(services, checkpoint, promo_file):
    from copygen.settings import Settings

    database_url, broker_url = services
    return Settings(database_url=database_url, broker_url=broker_url, checkpoint=checkpoint,
                    schedule_file=promo_file, chunk_size=10, lease_seconds=120, visibility_timeout=600,
                    task_soft_time_limit=240, task_time_limit=300)


def settings_env(settings) -> dict[str, str]:
    keys = ("database_url", "broker_url", "checkpoint", "schedule_file", "chunk_size", "lease_seconds",
            "visibility_timeout", "task_soft_time_limit", "task_time_limit")
    return {f"COPYGEN_{k.upper()}": str(getattr(settings, k)) for k in keys}


@pytest.fixture(scope="module")
def worker(settings, tmp_path_factory):
    """A real `celery -A worker.celery_app worker` process (solo pool, one process)."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "--pool=solo",
               "--concurrency=1", "--queues=interactive,batch,celery", "--loglevel=INFO", "--without-mingle",
               "--without-gossip", f"--hostname=itest-{uuid.uuid4().hex[:6]}@%h"]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while " ready." not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the worker did not start:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.5)
    yield process, log_path
    process.send_signal(signal.SIGTERM)  # warm shutdown
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def worker_log(worker):
    """The worker's log (its tail is printed at teardown: pytest shows it when the test fails)."""
    _, log_path = worker
    yield log_path
    print(log_path.read_text()[-6000:])


@pytest.fixture(scope="module")
def engine(settings):
    from db.engine import make_engine

    made = make_engine(settings.database_url)
    yield made
    made.dispose()


def job_by_key(engine, key: str, timeout: float = 60) -> str:
    from sqlalchemy import select

    from db.engine import session_scope
    from db.models import Job

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(engine) as s:
            found = s.execute(select(Job.id).where(Job.idempotency_key == key)).scalar_one_or_none()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"no job with idempotency key {key!r} after {timeout} s")


def test_a_catalogue_of_50_products_ends_done_with_150_distinct_ranked_variants(settings, worker_log, engine):
    from copygen.compliance import load_lexicon
    from db.engine import session_scope
    from db.variants import job_variants
    from worker.submit import submit_job, wait_for_job

    started = time.monotonic()
    job_id = submit_job(catalogue(CATALOGUE_ROWS), VARIANTS, seed=5, settings=settings)
    progress = wait_for_job(engine, job_id, poll=0.5, timeout=200)
    elapsed = time.monotonic() - started
    print(f"\n50 x 3 job: {elapsed:.1f} s, {CATALOGUE_ROWS / elapsed:.2f} products/s")
    assert progress["status"] == "done", progress
    assert (progress["chunks_done"], progress["variants"]) == (5, CATALOGUE_ROWS * VARIANTS)

    with session_scope(engine) as s:
        rows = job_variants(s, job_id)
    assert len(rows) == CATALOGUE_ROWS * VARIANTS
    lexicon = load_lexicon()
    by_product: dict[str, list[dict]] = {}
    for row in rows:
        by_product.setdefault(row["external_id"], []).append(row)
        unflagged = [t for t in lexicon.find(row["text"]) if f"ad_law:{t}" not in row["flags"]]
        assert unflagged == [], row
        assert row["passed"] == (row["flags"] == [])
    assert len(by_product) == CATALOGUE_ROWS
    for external_id, mine in by_product.items():
        assert sorted(r["variant_no"] for r in mine) == [1, 2, 3], external_id
        assert sorted(r["rank"] for r in mine) == [1, 2, 3], external_id
        assert [r["rank"] for r in mine] == [1, 2, 3]  # job_variants lists best first
        seen: set[str] = set()
        for r in sorted(mine, key=lambda r: r["variant_no"]):  # a repeated text is flagged, never hidden
            assert r["text"] not in seen or "near_duplicate" in r["flags"], mine
            seen.add(r["text"])


def test_a_job_sent_by_task_name_with_the_documented_payload_is_created_and_run(settings, worker_log, engine):
    import jsonschema
    from celery import Celery

    from copygen.catalogue import submit_job_schema
    from worker.submit import wait_for_job

    payload = {"products": catalogue(4, prefix="ST"), "settings": {"variants": 2, "length": "short"},
               "idempotency_key": f"send-task-{uuid.uuid4().hex[:8]}"}
    jsonschema.validate(payload, submit_job_schema())
    client = Celery("merchant-backend", broker=settings.broker_url)  # knows nothing of copygen
    try:
        client.send_task("copygen.submit_job", kwargs=payload)  # no queue: Celery's default, "celery"
        client.send_task("copygen.submit_job", kwargs=payload, queue="batch")  # a retry by the client
        no_key = client.send_task("copygen.submit_job", kwargs={**payload, "idempotency_key": None}, queue="batch")
    finally:
        client.close()
    job_id = job_by_key(engine, payload["idempotency_key"])
    assert wait_for_job(engine, job_id, poll=0.5, timeout=90)["variants"] == 8
    other = job_by_key(engine, f"task:{no_key.id}")  # without a key, the task id finds the job
    assert other != job_id
    assert wait_for_job(engine, other, poll=0.5, timeout=90)["status"] == "done"


def test_a_pickled_message_is_refused_by_the_worker_and_runs_nothing(settings, worker_log, engine):
    from kombu import Connection, Exchange, Producer, Queue

    key = f"pickled-{uuid.uuid4().hex[:8]}"
    task_id = str(uuid.uuid4())
    payload = {"products": catalogue(1, prefix="PK"), "idempotency_key": key}
    queue = Queue("batch", Exchange("batch"), routing_key="batch")
    with Connection(settings.broker_url) as conn:
        Producer(conn).publish(
            pickle.dumps(((), payload, {"callbacks": None, "errbacks": None, "chain": None, "chord": None})),
            exchange=queue.exchange, routing_key="batch", declare=[queue],
            content_type="application/x-python-serialize", content_encoding="binary",
            headers={"lang": "py", "task": "copygen.submit_job", "id": task_id, "root_id": task_id,
                     "parent_id": None, "group": None, "retries": 0, "eta": None, "expires": None,
                     "argsrepr": "()", "kwargsrepr": "{}", "origin": "test"},
        )
    # a JSON submission sent after it is handled after it (one solo worker, FIFO queue)
    from celery import Celery

    client = Celery("merchant-backend", broker=settings.broker_url)
    marker = f"after-pickle-{uuid.uuid4().hex[:8]}"
    client.send_task("copygen.submit_job", kwargs={**payload, "idempotency_key": marker}, queue="batch")
    client.close()
    job_by_key(engine, marker)
    with pytest.raises(AssertionError):
        job_by_key(engine, key, timeout=1)
    log = worker_log.read_text()
    assert "ContentDisallowed" in log or "disallowed" in log.lower()


def test_a_promo_slot_fired_twice_creates_one_job(settings, worker_log, engine):
    from celery import Celery
    from sqlalchemy import func, select

    from db.engine import session_scope
    from db.models import Job, PromoRun
    from worker.submit import wait_for_job

    client = Celery("beat-twin", broker=settings.broker_url)
    for _ in range(2):  # two beat processes firing the same slot
        client.send_task("copygen.fire_promo", args=("double11", "2025-11-11T02:00"), queue="batch")
    client.close()
    job_id = job_by_key(engine, "promo:double11:2025-11-11T02:00")
    progress = wait_for_job(engine, job_id, poll=0.5, timeout=90)
    time.sleep(1)  # the second firing has been handled by now (FIFO); let it commit
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(PromoRun)
                         .where(PromoRun.schedule == "double11")).scalar_one() == 1
        assert s.execute(select(func.count()).select_from(Job).where(Job.campaign == "double11")).scalar_one() == 1
    assert progress["status"] == "done" and progress["variants"] == 8


def test_a_job_whose_queued_messages_were_lost_completes_after_the_reconciler_runs(settings, worker_log, engine):
    """Redis flushed after submission: the job is in SQL, its messages are gone; reconcile resends them."""
    from datetime import timedelta

    from celery import Celery
    from sqlalchemy import update

    from copygen.catalogue import JobSettings, validate_products
    from db.engine import session_scope
    from db.models import Chunk, utcnow
    from worker.submit import wait_for_job, write_job

    products, errors = validate_products(catalogue(12, prefix="LOST"))
    assert errors == []
    with session_scope(engine) as s:  # written, never enqueued: what a flushed queue leaves behind
        job_id, _ = write_job(s, products, JobSettings(variants=2, length="short"), settings=settings,
                              idempotency_key=f"lost-{uuid.uuid4().hex[:8]}")
        s.execute(update(Chunk).where(Chunk.job_id == job_id).values(updated_at=utcnow() - timedelta(minutes=5)))
    client = Celery("operator", broker=settings.broker_url)
    client.send_task("copygen.reconcile", queue="batch")
    client.close()
    progress = wait_for_job(engine, job_id, poll=0.5, timeout=90)
    assert (progress["status"], progress["chunks_done"], progress["variants"]) == ("done", 2, 24)


def test_copygen_worker_with_concurrency_two_runs_two_prefork_processes_that_finish_a_job(settings, engine, tmp_path):
    import redis
    from celery import Celery

    from worker.submit import submit_job, wait_for_job

    broker_url = f"{REDIS_URL}/{REDIS_DB + 1}"  # its own queues: the module's solo worker must not take the job
    redis.Redis.from_url(broker_url).flushdb()
    mine = settings.model_copy(update={"broker_url": broker_url, "chunk_size": 2})
    env = {**os.environ, **settings_env(mine), "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "prefork.log"
    code = "import sys; from copygen.cli import main; sys.exit(main(sys.argv[1:]))"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-c", code, "worker", "--concurrency", "2"], cwd=REPO, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    client = Celery("probe", broker=broker_url)
    try:
        deadline = time.monotonic() + 120
        while " ready." not in log_path.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()[-4000:]
            time.sleep(0.5)
        stats = client.control.inspect(timeout=5).stats() or {}
        assert [s["pool"]["max-concurrency"] for s in stats.values()] == [2], stats
        job_id = submit_job(catalogue(8, prefix="FORK"), 2, length="short", settings=mine)
        progress = wait_for_job(engine, job_id, poll=0.5, timeout=200)
        assert (progress["status"], progress["variants"]) == ("done", 16), log_path.read_text()[-4000:]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        client.close()
        print(log_path.read_text()[-4000:])
