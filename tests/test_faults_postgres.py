"""PostgreSQL goes away while a worker is storing a chunk.

The worker reaches PostgreSQL through a TCP proxy of the test's own (fault_fixtures.pg_proxy), which
the test cuts (every connection reset, new ones refused) and restores; the shared server is never
stopped. The test itself watches the database directly. Nothing is timed: the test holds the
worker at the store with a lock (hold_stores), cuts, and restores once the worker's log says the
task will retry.
"""

from __future__ import annotations

import pytest
from helpers_worker import (
    assert_chunks_all_or_nothing,
    assert_exactly_k,
    blocked_backends,
    chunk_rows,
    chunk_status,
    hold_stores,
    send_chunks,
    wait_until,
    write_job,
)

pytest_plugins = ["fault_fixtures"]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def conf_overrides():
    # a worker waits out an outage in the task for min(lease / 2, 60 s), then hands the retry to
    # Celery: 7 s here
    return {"lease_seconds": 15}


def test_postgres_lost_while_a_chunk_is_stored_is_waited_out_with_nothing_partial_lost_doubled_or_regenerated(
        settings, engine, broker, workers, pg_proxy):
    from worker.submit import wait_for_job

    k, chunk = 3, 3
    n = 2 * chunk  # 2 chunks: the cut comes while chunk 0 is being stored
    job_id = write_job(engine, settings, n, variants=k, prefix="PGCUT", length="short", chunk_size=chunk)
    worker = workers("cut-off", COPYGEN_DATABASE_URL=pg_proxy.url(settings.database_url))
    with hold_stores(engine):  # the worker claims and generates chunk 0, then waits to write it
        send_chunks(broker.url, job_id, range(2))
        wait_until(lambda: chunk_status(engine, job_id, 0) == "running" and blocked_backends(engine), 300,
                   "the worker to be storing chunk 0")
        pg_proxy.cut()
    # the worker fails to store, backs off, gives up its in-task waiting and hands the retry to
    # Celery, keeping the generated copy
    wait_until(lambda: "database unavailable; retry in" in worker.log(), 300, "the task to retry")
    assert "database unavailable (OperationalError); retrying in 1 s" in worker.log()
    assert chunk_status(engine, job_id, 0) == "running"
    assert_chunks_all_or_nothing(engine, job_id, k)  # nothing of chunk 0 is visible
    pg_proxy.restore()

    progress = wait_for_job(engine, job_id, poll=0.5, timeout=300)
    assert progress["status"] == "done" and progress["variants"] == n * k
    assert_exactly_k(engine, job_id, k, n)
    # generated once: the retry stored the copy made before the outage, it did not claim again
    assert [c["attempts"] for c in chunk_rows(engine, job_id)] == [1, 1]
    stored = f"job {job_id} chunk 0: stored the {chunk * k} variants generated before the database outage"
    assert stored in worker.log()
    assert f"job {job_id} chunk 0: {chunk} products" not in worker.log()  # a chunk generated and stored at once
