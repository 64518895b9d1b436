"""The copy store's data functions, on a fresh SQLite file and (integration) a fresh PostgreSQL
database: submission, claims and leases, idempotent writes, job states, the campaign views."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from db.chunks import claim_chunk, due_chunks, finish_jobs, mark_chunk_done, record_chunk_error
from db.engine import make_engine, normalise_url, session_scope, upgrade
from db.jobs import create_job, finish_job, get_job, job_chunks, job_progress
from db.model_versions import (
    ModelVersionConflict,
    get_model_version,
    list_model_versions,
    register_model_version,
)
from db.models import Chunk, Job, JobItem, utcnow
from db.promo import claim_promo_slot, get_promo_run, set_promo_job
from db.variants import job_variants, upsert_variants

LEASE = 60
MAX_ATTEMPTS = 3


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def engine(request):
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_url):
    upgrade(pg_url)
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def products(n: int, prefix: str = "sku") -> list[dict]:
    return [
        {
            "external_id": f"{prefix}-{i}",
            "title": f"夏季连衣裙 {i}",
            "category": "连衣裙",
            "attributes": {"颜色": ["红色", "白色"], "材质": ["棉"], "图案": ["复古", "线条"]},
            "description": "轻薄透气",
        }
        for i in range(n)
    ]


def submit(engine, n: int = 10, chunk_size: int = 4, **kwargs) -> str:
    kwargs.setdefault("products", products(n))
    with session_scope(engine) as s:
        job_id, created = create_job(
            s, settings={"variants": 2}, model_version="m1", chunk_size=chunk_size, queue="batch", **kwargs
        )
    assert created
    return job_id


def variant_rows(items: list[dict], k: int = 2, passed=lambda item, v: True) -> list[dict]:
    return [
        {
            "job_item_id": item["id"],
            "variant_no": v,
            "text": f"{item['title']} 文案{v}",
            "rank": v + 1,
            "score": 1.0 - v / 10,
            "flags": [] if passed(item, v) else ["absolute_term:最"],
            "passed": passed(item, v),
            "model_version": "m1",
            "regenerations": 0,
        }
        for item in items
        for v in range(k)
    ]


def run_chunk(engine, job_id: str, chunk_no: int, k: int = 2, passed=lambda item, v: True) -> list[dict]:
    """What a worker does with a chunk: claim, write variants, mark done."""
    with session_scope(engine) as s:
        items = claim_chunk(s, job_id, chunk_no, lease_seconds=LEASE, max_attempts=MAX_ATTEMPTS)
    assert items is not None
    with session_scope(engine) as s:
        upsert_variants(s, variant_rows(items, k, passed))
        mark_chunk_done(s, job_id, chunk_no)
    return items


def chunk_row(engine, job_id: str, chunk_no: int) -> Chunk:
    with session_scope(engine) as s:
        return s.get(Chunk, (job_id, chunk_no))


def fail_chunk_for_good(engine, job_id: str, chunk_no: int) -> None:
    for attempt in range(MAX_ATTEMPTS):
        with session_scope(engine) as s:
            assert (
                claim_chunk(s, job_id, chunk_no, lease_seconds=LEASE, max_attempts=MAX_ATTEMPTS) is not None
            )
            record_chunk_error(s, job_id, chunk_no, f"boom {attempt}", max_attempts=MAX_ATTEMPTS)


# --- engine and session ------------------------------------------------------------------------


def test_a_plain_postgresql_url_is_pointed_at_psycopg_3():
    assert normalise_url("postgresql://u:p@h:5432/d").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/d").drivername == "postgresql+psycopg"
    assert normalise_url("sqlite:///x.db").drivername == "sqlite"


def test_a_sqlite_engine_creates_its_directory_and_enforces_foreign_keys_with_wal(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'store.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert (tmp_path / "a" / "b").is_dir()
    finally:
        engine.dispose()


def test_session_scope_commits_on_success_and_rolls_back_on_error(engine):
    job_id = submit(engine, n=1)
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        s.execute(update(Job).where(Job.id == job_id).values(campaign="lost"))
        raise RuntimeError("boom")
    with session_scope(engine) as s:
        s.execute(update(Job).where(Job.id == job_id).values(campaign="kept"))
    with session_scope(engine) as s:
        assert get_job(s, job_id)["campaign"] == "kept"


def test_timestamps_come_back_timezone_aware_in_utc(engine):
    job_id = submit(engine, n=1)
    with session_scope(engine) as s:
        created = get_job(s, job_id)["created_at"]
    assert created.utcoffset() == timedelta(0)
    assert abs((utcnow() - created).total_seconds()) < 60


# --- submission ----------------------------------------------------------------------------------


def test_create_job_stores_items_in_catalogue_order_cut_into_chunks(engine):
    job_id = submit(engine, n=10, chunk_size=4, campaign="双11", rejected=[{"row": 3, "reason": "no id"}])
    with session_scope(engine) as s:
        job = get_job(s, job_id)
        items = s.execute(
            select(JobItem.item_no, JobItem.chunk_no, JobItem.external_id)
            .where(JobItem.job_id == job_id)
            .order_by(JobItem.item_no)
        ).all()
        sizes = s.execute(
            select(Chunk.chunk_no, Chunk.n_items, Chunk.status).where(Chunk.job_id == job_id)
        ).all()
        assert job_chunks(s, job_id) == [0, 1, 2]
    assert job["status"] == "pending" and job["n_items"] == 10 and job["campaign"] == "双11"
    assert job["settings"] == {"variants": 2} and job["rejected"] == [{"row": 3, "reason": "no id"}]
    assert [(n, n // 4, f"sku-{n}") for n in range(10)] == [tuple(r) for r in items]
    assert sorted(sizes) == [(0, 4, "pending"), (1, 4, "pending"), (2, 2, "pending")]


def test_product_attributes_keep_their_order_and_repeated_values(engine):
    attributes = {"类型": ["上衣"], "颜色": ["白色", "黑色"], "图案": ["复古", "线条"], "材质": ["棉"]}
    reordered = {"材质": ["棉"], "图案": ["线条", "复古"], "类型": ["上衣"], "颜色": ["黑色", "白色"]}
    job_id = submit(
        engine,
        products=[
            {"external_id": "a", "attributes": attributes},
            {"external_id": "b", "attributes": reordered},
        ],
    )
    with session_scope(engine) as s:
        items = claim_chunk(s, job_id, 0, lease_seconds=LEASE, max_attempts=MAX_ATTEMPTS)
    assert list(items[0]["attributes"].items()) == list(attributes.items())
    assert list(items[1]["attributes"].items()) == list(reordered.items())
    assert items[0]["title"] == "" and items[0]["description"] == "" and items[0]["category"] == ""


def test_the_same_idempotency_key_returns_the_same_job_and_writes_nothing_more(engine):
    with session_scope(engine) as s:
        first = create_job(
            s,
            products=products(5),
            settings={},
            model_version=None,
            chunk_size=2,
            queue="batch",
            idempotency_key="order-42",
        )
    with session_scope(engine) as s:
        second = create_job(
            s,
            products=products(7),
            settings={},
            model_version=None,
            chunk_size=2,
            queue="batch",
            idempotency_key="order-42",
        )
    with session_scope(engine) as s:
        n_jobs = s.scalar(select(func.count()).select_from(Job))
        n_items = s.scalar(select(func.count()).select_from(JobItem))
    assert first[1] is True and second == (first[0], False)
    assert (n_jobs, n_items) == (1, 5)


def test_concurrent_submissions_with_one_idempotency_key_make_one_job(engine):
    n_threads = 8
    barrier = threading.Barrier(n_threads)
    results, errors = [], []

    def submit_once():
        try:
            barrier.wait()
            with session_scope(engine) as s:
                results.append(
                    create_job(
                        s,
                        products=products(2000),
                        settings={},
                        model_version=None,
                        chunk_size=32,
                        queue="batch",
                        idempotency_key="race",
                    )
                )
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=submit_once) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len({job_id for job_id, _ in results}) == 1
    assert sorted(created for _, created in results) == [False] * (n_threads - 1) + [True]
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1
        assert s.scalar(select(func.count()).select_from(JobItem)) == 2000


def test_a_product_the_store_cannot_hold_is_refused_naming_row_and_field_before_any_write(engine):
    with session_scope(engine) as s:
        with pytest.raises(ValueError, match=r"products: row 2: field 'external_id': 'sku-0' repeats row 0"):
            create_job(
                s,
                products=products(2) + products(1),
                settings={},
                model_version=None,
                chunk_size=2,
                queue="batch",
            )
        with pytest.raises(ValueError, match=r"products: row 1: field 'external_id': missing"):
            create_job(
                s,
                products=[{"external_id": "a"}, {"title": "no id"}],
                settings={},
                model_version=None,
                chunk_size=2,
                queue="batch",
            )


def test_a_job_with_no_products_is_created_already_done(engine):
    with session_scope(engine) as s:
        job_id, _ = create_job(
            s,
            products=[],
            settings={},
            model_version=None,
            chunk_size=4,
            queue="batch",
            rejected=[{"row": 0, "reason": "bad"}],
        )
        progress = job_progress(s, job_id)
    assert progress["status"] == "done" and progress["finished_at"] is not None
    assert (progress["items"], progress["chunks_total"], progress["rejected"]) == (0, 0, 1)


# --- claims, leases, attempts ----------------------------------------------------------------------


def test_a_claim_counts_an_attempt_leases_the_chunk_and_returns_its_items(engine):
    job_id = submit(engine, n=10, chunk_size=4)
    now = utcnow()
    with session_scope(engine) as s:
        items = claim_chunk(s, job_id, 1, lease_seconds=LEASE, max_attempts=MAX_ATTEMPTS, now=now)
        assert get_job(s, job_id)["status"] == "running"
    assert [i["external_id"] for i in items] == ["sku-4", "sku-5", "sku-6", "sku-7"]
    assert [i["item_no"] for i in items] == [4, 5, 6, 7]
    assert set(items[0]) == {"id", "item_no", "external_id", "title", "category", "attributes", "description"}
    chunk = chunk_row(engine, job_id, 1)
    assert (chunk.status, chunk.attempts) == ("running", 1)
    assert abs((chunk.lease_until - (now + timedelta(seconds=LEASE))).total_seconds()) < 1e-3


def test_a_chunk_under_a_live_lease_is_not_claimed_again_until_the_lease_lapses(engine):
    job_id = submit(engine, n=4, chunk_size=4)
    now = utcnow()
    with session_scope(engine) as s:
        assert claim_chunk(s, job_id, 0, lease_seconds=LEASE, max_attempts=MAX_ATTEMPTS, now=now)
    with session_scope(engine) as s:
        assert (
            claim_chunk(
                s,
                job_id,
                0,
                lease_seconds=LEASE,
                max_attempts=MAX_ATTEMPTS,
                now=now + timedelta(seconds=LEASE - 1),
            )
            is None
        )
    with session_scope(engine) as s:
        assert claim_chunk(
            s,
            job_id,
            0,
            lease_seconds=LEASE,
            max_attempts=MAX_ATTEMPTS,
            now=now + timedelta(seconds=LEASE + 1),
        )
    assert chunk_row(engine, job_id, 0).attempts == 2


def test_a_chunk_whose_leases_keep_lapsing_is_parked_as_failed_after_max_attempts(engine):
    job_id = submit(engine, n=4, chunk_size=4)
    now = utcnow()
    for attempt in range(MAX_ATTEMPTS):
        with session_scope(engine) as s:
            assert claim_chunk(
                s,
                job_id,
                0,
                lease_seconds=LEASE,
                max_attempts=MAX_ATTEMPTS,
                now=now + timedelta(seconds=attempt * (LEASE + 1)),
            )
    with session_scope(engine) as s:
        assert (
            claim_chunk(
                s,
                job_id,
                0,
                lease_seconds=LEASE,
                max_attempts=MAX_ATTEMPTS,
                now=now + timedelta(seconds=MAX_ATTEMPTS * (LEASE + 1)),
            )
            is None
        )
    chunk = chunk_row(engine, job_id, 0)
    assert (chunk.status, chunk.attempts, chunk.lease_until) == ("failed", MAX_ATTEMPTS, None)
    assert "never reported back" in chunk.last_error


def test_an_error_sends_the_chunk_back_to_pending_until_the_last_attempt_parks_it(engine):
    job_id = submit(engine, n=4, chunk_size=4)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with session_scope(engine) as s:
            assert claim_chunk(s, job_id, 0, lease_seconds=LEASE, max_attempts=MAX_ATTEMPTS)
            parked = record_chunk_error(
                s, job_id, 0, f"CUDA out of memory ({attempt})", max_attempts=MAX_ATTEMPTS
            )
        chunk = chunk_row(engine, job_id, 0)
        assert parked is (attempt == MAX_ATTEMPTS)
        assert chunk.status == ("failed" if parked else "pending") and chunk.lease_until is None
        assert chunk.last_error == f"CUDA out of memory ({attempt})"
    with session_scope(engine) as s:
        assert claim_chunk(s, job_id, 0, lease_seconds=LEASE, max_attempts=MAX_ATTEMPTS) is None
        assert job_progress(s, job_id)["failures"] == [
            {"chunk_no": 0, "attempts": MAX_ATTEMPTS, "error": f"CUDA out of memory ({MAX_ATTEMPTS})"}
        ]


def test_a_done_chunk_is_never_claimed_and_a_late_error_leaves_it_done(engine):
    job_id = submit(engine, n=4, chunk_size=4)
    run_chunk(engine, job_id, 0)
    with session_scope(engine) as s:
        assert claim_chunk(s, job_id, 0, lease_seconds=LEASE, max_attempts=MAX_ATTEMPTS) is None
        assert (
            record_chunk_error(s, job_id, 0, "duplicate delivery failed", max_attempts=MAX_ATTEMPTS) is False
        )
    chunk = chunk_row(engine, job_id, 0)
    assert (chunk.status, chunk.attempts, chunk.last_error) == ("done", 1, None)


def test_a_long_error_keeps_its_tail(engine):
    job_id = submit(engine, n=1)
    with session_scope(engine) as s:
        claim_chunk(s, job_id, 0, lease_seconds=LEASE, max_attempts=MAX_ATTEMPTS)
        record_chunk_error(s, job_id, 0, "x" * 20_000 + "RuntimeError: the cause", max_attempts=MAX_ATTEMPTS)
    error = chunk_row(engine, job_id, 0).last_error
    assert error.endswith("RuntimeError: the cause") and len(error) <= 8001


def test_workers_racing_for_one_chunk_never_both_claim_it(engine):
    job_id = submit(engine, n=64, chunk_size=32)
    n_threads = 8
    for chunk_no in (0, 1):
        barrier = threading.Barrier(n_threads)
        claims: list = []

        def claim(barrier=barrier, claims=claims, chunk_no=chunk_no):
            barrier.wait()
            with session_scope(engine) as s:
                claims.append(
                    claim_chunk(s, job_id, chunk_no, lease_seconds=LEASE, max_attempts=MAX_ATTEMPTS)
                )

        threads = [threading.Thread(target=claim) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(claims) == n_threads
        assert sum(c is not None for c in claims) == 1
        assert chunk_row(engine, job_id, chunk_no).attempts == 1


def test_due_chunks_are_the_pending_ones_and_those_whose_lease_lapsed(engine):
    job_id = submit(engine, n=16, chunk_size=4)  # chunks 0..3
    now = utcnow()
    with session_scope(engine) as s:
        claim_chunk(s, job_id, 0, lease_seconds=LEASE, max_attempts=MAX_ATTEMPTS, now=now)  # live lease
        claim_chunk(s, job_id, 1, lease_seconds=1, max_attempts=MAX_ATTEMPTS, now=now)  # lapses
    run_chunk(engine, job_id, 2)  # done
    later = now + timedelta(seconds=5)
    with session_scope(engine) as s:
        assert due_chunks(s, now=later) == [(job_id, 1, "batch"), (job_id, 3, "batch")]
        assert due_chunks(s, now=later, limit=1) == [(job_id, 1, "batch")]
        # chunk 3 was written at submission, just now: a reconciler leaves it to its first message
        assert due_chunks(s, now=later, min_pending_age=3600) == [(job_id, 1, "batch")]


# --- variants --------------------------------------------------------------------------------------


def test_upserting_a_chunks_variants_twice_stores_one_set(engine):
    job_id = submit(engine, n=4, chunk_size=4)
    with session_scope(engine) as s:
        items = claim_chunk(s, job_id, 0, lease_seconds=LEASE, max_attempts=MAX_ATTEMPTS)
    rows = variant_rows(items, k=3)
    with session_scope(engine) as s:
        assert upsert_variants(s, rows) == 12
    redelivered = [{**r, "text": "second delivery"} for r in rows]
    with session_scope(engine) as s:
        assert upsert_variants(s, redelivered) == 0
        assert upsert_variants(s, []) == 0
        stored = job_variants(s, job_id)
    assert len(stored) == 12
    assert all(v["text"] != "second delivery" for v in stored)
    assert [(v["external_id"], v["variant_no"]) for v in stored[:3]] == [
        ("sku-0", 0),
        ("sku-0", 1),
        ("sku-0", 2),
    ]
    assert stored[0]["flags"] == [] and stored[0]["passed"] is True and stored[0]["rank"] == 1


def test_a_malformed_variant_row_is_refused_naming_the_row_and_field(engine):
    with session_scope(engine) as s:
        with pytest.raises(ValueError, match=r"variants: row 1: field 'text': missing"):
            upsert_variants(
                s, [{"job_item_id": 1, "variant_no": 0, "text": "a"}, {"job_item_id": 1, "variant_no": 1}]
            )
        with pytest.raises(ValueError, match=r"variants: row 0: field 'flags': expected a list of strings"):
            upsert_variants(s, [{"job_item_id": 1, "variant_no": 0, "text": "a", "flags": "最"}])
        with pytest.raises(ValueError, match=r"variants: row 0: field 'colour': not a variants column"):
            upsert_variants(s, [{"job_item_id": 1, "variant_no": 0, "text": "a", "colour": "red"}])


# --- job states and progress -------------------------------------------------------------------------


def test_a_job_whose_chunks_all_succeed_finishes_done(engine):
    job_id = submit(engine, n=8, chunk_size=4)
    with session_scope(engine) as s:
        assert finish_jobs(s) == []
    run_chunk(engine, job_id, 0)
    with session_scope(engine) as s:
        assert finish_jobs(s) == [] and get_job(s, job_id)["status"] == "running"
    run_chunk(engine, job_id, 1)
    with session_scope(engine) as s:
        assert finish_jobs(s) == [job_id]
        assert finish_jobs(s) == []
        job = get_job(s, job_id)
    assert job["status"] == "done" and job["finished_at"] is not None


def test_a_job_with_some_chunks_parked_finishes_partial_and_with_all_parked_failed(engine):
    partial = submit(engine, n=8, chunk_size=4)
    failed = submit(engine, n=8, chunk_size=4)
    run_chunk(engine, partial, 0)
    fail_chunk_for_good(engine, partial, 1)
    fail_chunk_for_good(engine, failed, 0)
    with session_scope(engine) as s:
        assert finish_jobs(s) == [partial]  # failed's chunk 1 is still pending
        assert get_job(s, partial)["status"] == "partial"
    fail_chunk_for_good(engine, failed, 1)
    with session_scope(engine) as s:
        assert finish_jobs(s) == [failed]
        assert get_job(s, failed)["status"] == "failed"


def test_reconcilers_settling_at_once_finish_each_job_exactly_once(engine):
    job_ids = [submit(engine, n=4, chunk_size=2) for _ in range(3)]
    for job_id in job_ids:
        run_chunk(engine, job_id, 0)
        run_chunk(engine, job_id, 1)
    n_threads = 4
    barrier = threading.Barrier(n_threads)
    finished, errors = [], []

    def reconcile():
        try:
            barrier.wait()
            with session_scope(engine) as s:
                finished.extend(finish_jobs(s))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=reconcile) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(finished) == sorted(job_ids)


def test_finish_job_settles_its_own_job_once_and_leaves_the_others(engine):
    job_id = submit(engine, n=8, chunk_size=4)
    other = submit(engine, n=4, chunk_size=4)
    run_chunk(engine, other, 0)  # finished too, but not finish_job's business
    run_chunk(engine, job_id, 0)
    with session_scope(engine) as s:
        assert finish_job(s, job_id) is None  # chunk 1 is still pending
    fail_chunk_for_good(engine, job_id, 1)
    with session_scope(engine) as s:
        assert finish_job(s, job_id) == "partial"
        assert finish_job(s, job_id) is None  # already finished
        assert finish_job(s, "no-such-job") is None
        assert get_job(s, other)["status"] == "running"
        assert get_job(s, job_id)["finished_at"] is not None


def test_workers_storing_the_last_chunks_at_once_finish_the_job_exactly_once(engine):
    job_id = submit(engine, n=8, chunk_size=2)
    for chunk_no in range(4):
        run_chunk(engine, job_id, chunk_no)
    barrier = threading.Barrier(4)
    outcomes, errors = [], []

    def settle():
        try:
            barrier.wait()
            with session_scope(engine) as s:
                outcomes.append(finish_job(s, job_id))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=settle) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(outcomes, key=str) == [None, None, None, "done"]


def test_a_pending_job_becomes_running_once_a_chunk_is_claimed(engine):
    job_id = submit(engine, n=8, chunk_size=4)
    with session_scope(engine) as s:  # claimed by hand, as if by an older worker
        s.execute(update(Chunk).where(Chunk.job_id == job_id, Chunk.chunk_no == 0).values(status="running"))
    with session_scope(engine) as s:
        assert get_job(s, job_id)["status"] == "pending"
        assert finish_jobs(s) == []
        assert get_job(s, job_id)["status"] == "running"


def test_a_parked_chunk_that_finishes_after_all_reopens_its_partial_job(engine):
    job_id = submit(engine, n=8, chunk_size=4)
    run_chunk(engine, job_id, 0)
    fail_chunk_for_good(engine, job_id, 1)
    with session_scope(engine) as s:
        finish_jobs(s)
        assert get_job(s, job_id)["status"] == "partial"
        assert mark_chunk_done(s, job_id, 1) is True
        assert mark_chunk_done(s, job_id, 1) is False
        assert get_job(s, job_id)["status"] == "running"
        assert finish_jobs(s) == [job_id]
        assert get_job(s, job_id)["status"] == "done"
        with pytest.raises(LookupError, match="has no chunk 9"):
            mark_chunk_done(s, job_id, 9)


def test_job_progress_counts_chunks_variants_flags_and_failures(engine):
    job_id = submit(engine, n=10, chunk_size=4, rejected=[{"row": 11}, {"row": 12}])  # chunks of 4, 4, 2
    run_chunk(engine, job_id, 0, k=3, passed=lambda item, v: v != 2)  # 4 items x 3, 4 flagged
    fail_chunk_for_good(engine, job_id, 1)
    with session_scope(engine) as s:
        claim_chunk(s, job_id, 2, lease_seconds=LEASE, max_attempts=MAX_ATTEMPTS)
        progress = job_progress(s, job_id)
        assert job_progress(s, "no-such-job") is None
    assert {k: v for k, v in progress.items() if k not in ("created_at", "finished_at")} == {
        "job_id": job_id,
        "status": "running",
        "items": 10,
        "rejected": 2,
        "chunks_total": 3,
        "chunks_done": 1,
        "chunks_failed": 1,
        "chunks_pending": 0,
        "chunks_running": 1,
        "variants": 12,
        "flagged": 4,
        "failures": [{"chunk_no": 1, "attempts": MAX_ATTEMPTS, "error": f"boom {MAX_ATTEMPTS - 1}"}],
    }


# --- campaign views ----------------------------------------------------------------------------------


def view(engine, name: str, where: str = "1 = 1") -> list[tuple]:
    with session_scope(engine) as s:
        return [
            tuple(r)
            for r in s.execute(
                text(
                    f"SELECT job_id, external_id, variant_no, rank, passed FROM {name} WHERE {where} "
                    "ORDER BY job_item_id, variant_no"
                )
            )
        ]


def test_the_campaign_views_return_job_best_and_latest_copy(engine):
    old = submit(engine, products=products(2), campaign="618")  # sku-0, sku-1
    run_chunk(engine, old, 0, k=2, passed=lambda item, v: item["external_id"] != "sku-1" or v == 1)
    new = submit(engine, products=products(1), campaign="双11")  # sku-0 again, not generated yet

    assert view(engine, "copy_job_variants") == [
        (old, "sku-0", 0, 1, True),
        (old, "sku-0", 1, 2, True),
        (old, "sku-1", 0, 1, False),
        (old, "sku-1", 1, 2, True),
    ]
    # rank 1 and passed, per job item: sku-1's best-ranked variant failed a filter, so it has none
    assert view(engine, "copy_best_variants") == [(old, "sku-0", 0, 1, True)]
    # the new job has no copy for sku-0 yet: the latest copy is still the old job's
    assert view(engine, "copy_latest_variants") == view(engine, "copy_job_variants")

    run_chunk(engine, new, 0, k=2)
    assert view(engine, "copy_latest_variants") == [
        (old, "sku-1", 0, 1, False),
        (old, "sku-1", 1, 2, True),
        (new, "sku-0", 0, 1, True),
        (new, "sku-0", 1, 2, True),
    ]
    assert view(engine, "copy_latest_variants", "external_id = 'sku-0'") == [
        (new, "sku-0", 0, 1, True),
        (new, "sku-0", 1, 2, True),
    ]
    with session_scope(engine) as s:
        row = s.execute(
            text(
                "SELECT campaign, title, text, model_version, flags, created_at FROM copy_job_variants "
                "WHERE external_id = 'sku-1' AND variant_no = 0"
            )
        ).one()
    assert row.campaign == "618" and row.title == "夏季连衣裙 1" and row.text == "夏季连衣裙 1 文案0"
    assert row.model_version == "m1" and "absolute_term:最" in str(row.flags) and row.created_at is not None


# --- promo runs and model versions -------------------------------------------------------------------


def test_a_promo_slot_fires_once(engine):
    job_id = submit(engine, n=1)
    with session_scope(engine) as s:
        assert claim_promo_slot(s, "double11-nightly", "2024-11-11T00:00") is True
        set_promo_job(s, "double11-nightly", "2024-11-11T00:00", job_id)
    with session_scope(engine) as s:
        assert claim_promo_slot(s, "double11-nightly", "2024-11-11T00:00") is False
        assert claim_promo_slot(s, "double11-nightly", "2024-11-12T00:00") is True
        assert get_promo_run(s, "double11-nightly", "2024-11-11T00:00")["job_id"] == job_id
        assert get_promo_run(s, "double11-nightly", "2024-11-13T00:00") is None
        with pytest.raises(LookupError, match="never claimed"):
            set_promo_job(s, "other", "slot", job_id)


def test_a_promo_claim_rolled_back_with_its_failed_submission_can_fire_again(engine):
    with pytest.raises(ValueError), session_scope(engine) as s:
        assert claim_promo_slot(s, "nightly", "slot-1")
        create_job(s, products=[{"title": "no id"}], settings={}, model_version=None, chunk_size=4, queue="q")
    with session_scope(engine) as s:
        assert claim_promo_slot(s, "nightly", "slot-1") is True


def test_a_model_version_name_always_means_one_manifest(engine):
    manifest = {"format_version": 1, "base_model": "gpt2", "metrics": {"rouge-l": 31.5}, "名": "文案"}
    with session_scope(engine) as s:
        registered = register_model_version(s, "adgen-2024-11", "/models/a", manifest)
        assert registered["manifest"] == manifest and registered["path"] == "/models/a"
        again = register_model_version(s, "adgen-2024-11", "/models/moved", manifest)
        assert again["path"] == "/models/moved"
        with pytest.raises(ModelVersionConflict, match="'adgen-2024-11' is already registered"):
            register_model_version(s, "adgen-2024-11", "/models/b", {**manifest, "base_model": "qwen"})
    with session_scope(engine) as s:
        assert get_model_version(s, "adgen-2024-11")["path"] == "/models/moved"
        assert get_model_version(s, "nope") is None
        assert [m["name"] for m in list_model_versions(s)] == ["adgen-2024-11"]


# --- scale ---------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_catalogue_of_100k_products_is_submitted_in_one_transaction(pg_engine, capsys):
    catalogue = products(100_000)
    start = time.perf_counter()
    with session_scope(pg_engine) as s:
        job_id, _ = create_job(
            s, products=catalogue, settings={}, model_version=None, chunk_size=32, queue="batch"
        )
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n100,000 products submitted to PostgreSQL in {elapsed:.1f} s (target <= 30 s)")
    with session_scope(pg_engine) as s:
        progress = job_progress(s, job_id)
    assert (progress["items"], progress["chunks_total"], progress["chunks_pending"]) == (100_000, 3125, 3125)
