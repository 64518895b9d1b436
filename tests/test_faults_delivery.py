"""At-least-once delivery, exactly-once effects: the same chunk delivered twice, at once, to two
workers; and two beat processes firing the same promo slot. Two real workers and two real beats
share a private Redis and a fresh PostgreSQL database.

The beats start with the module, so the wait for their first firing (cron fires on the minute)
overlaps the duplicate-delivery test; those chunks go to the interactive queue, so a firing on the
batch queue is picked up as soon as a worker finishes its current chunk.
"""

from __future__ import annotations

import json
import re

import pytest
from helpers_worker import (
    assert_exactly_k,
    catalogue,
    chunk_rows,
    send_chunks,
    wait_until,
    write_job,
)

pytest_plugins = ["fault_fixtures"]
pytestmark = pytest.mark.integration

SCHEDULE = "flash"
CAMPAIGN = "flash-sale"


@pytest.fixture(scope="module")
def promo_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("promo")
    with (folder / "flash.jsonl").open("w", encoding="utf-8") as f:
        for row in catalogue(4, prefix="FLASH"):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    path = folder / "promo.yaml"
    path.write_text(f"- name: {SCHEDULE}\n  cron: '* * * * *'\n  catalogue: flash.jsonl\n"
                    f"  settings: {{variants: 2, length: short, campaign: {CAMPAIGN}}}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def conf_overrides(promo_file):
    # fault_fixtures.FAULT_CONF keeps leases and time limits far above any chunk here
    return {"schedule_file": promo_file,
            "reconcile_seconds": 3600}  # no reconciler here: every message in these tests is one the test sent


@pytest.fixture(scope="module")
def processes(module_fleet):
    """{"workers": [a, b], "beats": [x, y]}, started together for the module."""
    beats = [module_fleet.beat(f"beat-{name}", wait=False) for name in ("x", "y")]
    workers = [module_fleet.worker(f"worker-{name}", wait=False) for name in ("a", "b")]
    for process in (*beats, *workers):
        process.wait_ready()
    return {"workers": workers, "beats": beats}


def idle(broker, workers) -> bool:
    """Nothing queued, and every task a worker received has ended."""
    if broker.queue_length("interactive") or broker.queue_length("batch"):
        return False
    for worker in workers:
        log = worker.log()
        ended = len(re.findall(r"Task copygen\.\w+\[[^]]+\] (succeeded|retry|failed|raised)", log))
        if ended < log.count("] received"):
            return False
    return True


def skipped(workers, job_id: str) -> int:
    """Deliveries of the job's chunks that found nothing to do (claimed elsewhere, or done)."""
    return sum(len(re.findall(rf"job {job_id} chunk \d+: nothing to do", w.log())) for w in workers)


def test_every_chunk_delivered_twice_at_once_to_two_workers_is_stored_once(settings, engine, broker, processes,
                                                                            logs):
    from worker.submit import wait_for_job

    workers = processes["workers"]
    k, chunk = 3, 3  # a few products per chunk are enough: the two deliveries of a chunk race at its claim
    n = 4 * chunk  # 4 chunks, each sent twice in a row: both workers race for most of them
    job_id = write_job(engine, settings, n, variants=k, prefix="TWICE", length="short", chunk_size=chunk)
    send_chunks(broker.url, job_id, range(4), queue="interactive", copies=2)

    progress = wait_for_job(engine, job_id, poll=0.5, timeout=300)
    wait_until(lambda: idle(broker, workers), 120, "both workers to finish every delivery")
    assert progress["status"] == "done" and progress["variants"] == n * k
    assert_exactly_k(engine, job_id, k, n)
    assert [c["attempts"] for c in chunk_rows(engine, job_id)] == [1, 1, 1, 1]  # each claimed once
    assert skipped(workers, job_id) == 4  # each second copy found its chunk claimed or done
    assert all("] received" in w.log() for w in workers), "both workers took deliveries"

    send_chunks(broker.url, job_id, range(4), queue="interactive")  # a late redelivery, after the job is done
    wait_until(lambda: skipped(workers, job_id) == 8, 60, "the late copies to be handled")
    assert_exactly_k(engine, job_id, k, n)


def test_two_beat_processes_firing_one_promo_slot_create_one_job(engine, broker, processes, logs):
    from sqlalchemy import select

    from db.engine import session_scope
    from db.models import Job, PromoRun
    from worker.submit import wait_for_job

    beats, workers = processes["beats"], processes["workers"]
    sent = f"Sending due task promo:{SCHEDULE}"
    wait_until(lambda: all(sent in b.log() for b in beats), 90, "both beats to fire the promo", poll=0.5)
    # beat logs "Sending due task" before it publishes: stopped at once, a beat may never publish
    # (CI saw two lines sent and one task received), so stop them once both firings have arrived
    firings_received = re.compile(r"Task copygen\.fire_promo\[[^]]+\] received")
    wait_until(lambda: sum(len(firings_received.findall(w.log())) for w in workers) >= 2, 60,
               "both firings to reach a worker", poll=0.2)
    for beat in beats:  # stop before the next minute can fire again
        beat.stop(timeout=30)
    fired = sum(b.log().count(sent) for b in beats)
    assert fired >= 2

    def handled() -> int:  # one line per firing handled
        return sum(w.log().count(f"promo {SCHEDULE} slot ") for w in workers)

    # on every firing's own line: an empty queue and no task running can also mean a firing that a
    # worker has fetched but not yet logged as received
    wait_until(lambda: handled() >= fired and idle(broker, workers), 60, "the firings to be handled")

    with session_scope(engine) as s:
        runs = s.execute(select(PromoRun.slot, PromoRun.job_id).where(PromoRun.schedule == SCHEDULE)).all()
        jobs = s.execute(select(Job.id, Job.idempotency_key).where(Job.campaign == CAMPAIGN)).all()
    assert len(runs) < fired  # at least one slot was fired by both beats
    assert sorted(job_id for _, job_id in runs) == sorted(job_id for job_id, _ in jobs)  # one job per slot
    assert sorted(key for _, key in jobs) == sorted(f"promo:{SCHEDULE}:{slot}" for slot, _ in runs)
    assert handled() == fired
    for job_id, _ in jobs:
        progress = wait_for_job(engine, job_id, poll=0.5, timeout=90)
        assert progress["status"] == "done" and progress["variants"] == 4 * 2
