"""Redis loses the queue mid-job (flushed, or killed and restarted empty: it keeps nothing on disk).

SQL is the source of truth: beat's periodic reconciler re-enqueues what the queue lost, and the
same worker process, still running, keeps consuming once Redis answers again. A Redis server of
the test's own on a free port (fault_fixtures.broker) is flushed and killed, never the shared one.
The loss strikes once chunk 0 is done, while chunks 1 to 3 wait: the test holds chunk 1 unclaimed
with a lock in its database (hold_claims), so the worker waits to claim it and leaves 2 and 3 in the
queue, however fast it is.
"""

from __future__ import annotations

import time

import pytest
from helpers_worker import (
    assert_exactly_k,
    blocked_backends,
    chunk_rows,
    chunk_status,
    hold_claims,
    send_chunks,
    wait_until,
    write_job,
)

pytest_plugins = ["fault_fixtures"]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def conf_overrides():
    return {"reconcile_seconds": 5}


@pytest.fixture(scope="module")
def processes(module_fleet):
    """(worker, beat): one of each for the module; beat runs copygen.reconcile every 5 s."""
    return module_fleet.worker("survivor"), module_fleet.beat("beat")


@pytest.mark.parametrize("loss", ["flushed", "restarted"])
def test_a_job_whose_queue_redis_lost_completes_and_the_same_worker_keeps_consuming(
        loss, settings, engine, broker, processes, logs):
    from worker.submit import wait_for_job

    worker, beat = processes
    pid = worker.pid
    k, chunk = 3, 3
    n = 4 * chunk  # 4 chunks
    job_id = write_job(engine, settings, n, variants=k, prefix=loss.upper(), length="short", chunk_size=chunk)
    with hold_claims(engine, job_id, 1):  # the worker stores chunk 0, then waits to claim chunk 1
        send_chunks(broker.url, job_id, range(4))
        wait_until(lambda: chunk_status(engine, job_id, 0) == "done" and blocked_backends(engine), 300,
                   "chunk 0, and the worker to wait to claim chunk 1")
        lost_at = time.monotonic()
        if loss == "flushed":
            broker.flushall()
        else:
            broker.restart(down_for=2)  # SIGKILL, then an empty server on the same port
        queued = broker.queue_length("batch")
        at_loss = chunk_rows(engine, job_id)
    assert queued == 0  # the queued chunks are gone
    assert [c["status"] for c in at_loss] == ["done", "pending", "pending", "pending"], at_loss  # lost mid-job

    progress = wait_for_job(engine, job_id, poll=0.5, timeout=300)
    print(f"\nRedis {loss}: job complete {time.monotonic() - lost_at:.1f} s later")
    assert progress["status"] == "done" and progress["variants"] == n * k
    assert_exactly_k(engine, job_id, k, n)
    assert worker.alive() and worker.pid == pid and beat.alive()
    assert "copygen.reconcile" in beat.log()

    # and it still takes new work the ordinary way, not only what the reconciler resends
    after = write_job(engine, settings, 3, variants=2, prefix=f"AFTER-{loss}", length="short")
    send_chunks(broker.url, after, [0])
    assert wait_for_job(engine, after, poll=0.5, timeout=300)["status"] == "done"
