"""Redis loses the queue mid-job (flushed, or killed and restarted empty: it keeps nothing on disk).

SQL is the source of truth: beat's periodic reconciler re-enqueues what the queue lost, and the
same worker process, still running, keeps consuming once Redis answers again. A Redis server of
the test's own on a free port is flushed and killed, never the shared one.
"""

from __future__ import annotations

import time

import pytest
from helpers_worker import (
    SLOW_ENV,
    PrivateRedis,
    assert_exactly_k,
    beat_process,
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


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    redis = PrivateRedis(tmp_path_factory.mktemp("redis")).start()
    yield redis
    redis.kill()


@pytest.fixture(scope="module")
def conf(broker, tmp_path_factory):
    require_service("PostgreSQL", 5432)
    with fresh_database("copygen_fr") as database_url:
        yield {
            "database_url": database_url, "broker_url": broker.url,
            "checkpoint": slow_checkpoint(tmp_path_factory.getbasetemp()),
            "chunk_size": 3, "lease_seconds": 15, "reconcile_seconds": 5,
            "visibility_timeout": 3600, "task_soft_time_limit": 60, "task_time_limit": 120,
        }


@pytest.fixture(scope="module")
def engine(conf):
    from db.engine import make_engine

    made = make_engine(conf["database_url"])
    yield made
    made.dispose()


@pytest.fixture(scope="module")
def processes(conf, tmp_path_factory):
    """(worker, beat): one of each for the module; beat runs copygen.reconcile every 5 s."""
    folder = tmp_path_factory.mktemp("processes")
    env = {**copygen_env(**conf), **SLOW_ENV}
    worker = worker_process(env, folder / "worker.log", "survivor").start()
    beat = beat_process(env, folder / "beat.log", folder / "beat-schedule").start()
    yield worker, beat
    for process in (beat, worker):
        process.stop(timeout=30)


@pytest.fixture
def logs(processes):
    yield
    for process in processes:
        print(f"---- {process.log_path.name}\n{process.log()[-4000:]}")


@pytest.fixture(scope="module")
def settings(conf):
    from copygen.settings import Settings

    return Settings(**conf)


@pytest.mark.parametrize("loss", ["flushed", "restarted"])
def test_a_job_whose_queue_redis_lost_completes_and_the_same_worker_keeps_consuming(
        loss, settings, engine, broker, processes, logs):
    from worker.submit import wait_for_job

    worker, beat = processes
    pid = worker.pid
    k = 3
    chunk = chunk_size_for(2, settings.checkpoint, k)
    n = 4 * chunk  # 4 chunks of ~2 s
    job_id = write_job(engine, settings, n, variants=k, prefix=loss.upper(), length="short", chunk_size=chunk)
    send_chunks(broker.url, job_id, range(4))
    wait_until(lambda: chunk_status(engine, job_id, 0) == "done", 120, "chunk 0")
    lost_at = time.monotonic()
    if loss == "flushed":
        broker.flushall()
    else:
        broker.restart(down_for=2)  # SIGKILL, then an empty server on the same port
    assert broker.queue_length("batch") == 0  # the queued chunks are gone

    progress = wait_for_job(engine, job_id, poll=0.5, timeout=180)
    print(f"\nRedis {loss}: job complete {time.monotonic() - lost_at:.1f} s later")
    assert progress["status"] == "done" and progress["variants"] == n * k
    assert_exactly_k(engine, job_id, k, n)
    assert worker.alive() and worker.pid == pid and beat.alive()
    assert "copygen.reconcile" in beat.log()

    # and it still takes new work the ordinary way, not only what the reconciler resends
    after = write_job(engine, settings, 3, variants=2, prefix=f"AFTER-{loss}", length="short")
    send_chunks(broker.url, after, [0])
    assert wait_for_job(engine, after, poll=0.5, timeout=90)["status"] == "done"
