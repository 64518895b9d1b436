"""PostgreSQL goes away while a worker is about to store a chunk.

The worker reaches PostgreSQL through a TCP proxy of the test's own, which the test cuts (every
connection reset, new ones refused) and restores; the shared server is never stopped. The test
itself watches the database directly.
"""

from __future__ import annotations

import time

import pytest
from helpers_worker import (
    SLOW_ENV,
    PgProxy,
    PrivateRedis,
    assert_chunks_all_or_nothing,
    assert_exactly_k,
    chunk_rows,
    chunk_size_for,
    chunk_status,
    copygen_env,
    fresh_database,
    require_service,
    send_chunks,
    slow_checkpoint,
    wait_until,
    worker_process,
    write_job,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(tmp_path, tmp_path_factory):
    """(settings for the test's own writes, the worker's env, the proxy, the broker)."""
    from copygen.settings import Settings

    require_service("PostgreSQL", 5432)
    broker = PrivateRedis(tmp_path / "redis").start()
    proxy = PgProxy().start()
    with fresh_database("copygen_fp") as database_url:
        conf = {"database_url": database_url, "broker_url": broker.url,
                "checkpoint": slow_checkpoint(tmp_path_factory.getbasetemp()), "chunk_size": 3,
                "lease_seconds": 15, "visibility_timeout": 3600, "task_soft_time_limit": 60, "task_time_limit": 120}
        env = {**copygen_env(**{**conf, "database_url": proxy.url(database_url)}), **SLOW_ENV}
        yield Settings(**conf), env, proxy, broker
    proxy.close()
    broker.kill()


@pytest.fixture
def engine(setup):
    from db.engine import make_engine

    made = make_engine(setup[0].database_url)
    yield made
    made.dispose()


def test_postgres_lost_while_a_chunk_is_stored_is_waited_out_with_nothing_partial_lost_doubled_or_regenerated(
        setup, engine, tmp_path):
    from worker.submit import wait_for_job

    settings, env, proxy, broker = setup
    k = 3
    chunk = chunk_size_for(3, settings.checkpoint, k)
    n = 2 * chunk  # 2 chunks of ~3 s: the cut comes while chunk 0 is being generated
    job_id = write_job(engine, settings, n, variants=k, prefix="PGCUT", length="short", chunk_size=chunk)
    worker = worker_process(env, tmp_path / "worker.log", "cut-off").start()
    try:
        send_chunks(broker.url, job_id, range(2))
        wait_until(lambda: chunk_status(engine, job_id, 0) == "running", 90, "chunk 0 to start")
        proxy.cut()
        cut_at = time.monotonic()
        # the worker finishes generating, fails to store, backs off, gives up its in-task waiting
        # and hands the retry to Celery, keeping the generated copy
        wait_until(lambda: "database unavailable; retry in" in worker.log(), 90, "the task to retry")
        assert "database unavailable (OperationalError); retrying in 1 s" in worker.log()
        assert chunk_status(engine, job_id, 0) == "running"
        assert_chunks_all_or_nothing(engine, job_id, k)  # nothing of chunk 0 is visible
        time.sleep(max(0.0, 12 - (time.monotonic() - cut_at)))
        proxy.restore()

        progress = wait_for_job(engine, job_id, poll=0.5, timeout=120)
        assert progress["status"] == "done" and progress["variants"] == n * k
        assert_exactly_k(engine, job_id, k, n)
        # generated once: the retry stored the copy made before the outage, it did not claim again
        assert [c["attempts"] for c in chunk_rows(engine, job_id)] == [1, 1]
        stored = f"job {job_id} chunk 0: stored the {chunk * k} variants generated before the database outage"
        assert stored in worker.log()
        assert f"job {job_id} chunk 0: {chunk} products" not in worker.log()  # a chunk generated and stored at once
    finally:
        worker.kill()
        print(worker.log()[-5000:])
