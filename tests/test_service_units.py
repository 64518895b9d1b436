"""The pieces of tests/test_service.py that need no worker: refusal rows, pace and ETA, the metrics'
arithmetic, the health checks' names and Celery's task events, on a SQLite file."""

from __future__ import annotations

from datetime import timedelta

import pytest

from copygen.catalogue import CatalogueError, RowError, SettingsError


def products(n: int):
    from helpers_worker import catalogue

    from copygen.catalogue import validate_products

    valid, errors = validate_products(catalogue(n))
    assert errors == []
    return valid


@pytest.fixture
def engine(sqlite_url):
    from db.engine import make_engine, upgrade

    upgrade(sqlite_url)
    made = make_engine(sqlite_url)
    yield made
    made.dispose()


def test_a_refusal_is_recorded_once_under_its_key_and_the_first_holder_of_a_key_stands(engine):
    from db.engine import session_scope
    from db.jobs import get_job, record_refusal

    reasons = [{"source": "payload", "row": None, "field": "settings.variants", "reason": "must be 1 to 10"}]
    with session_scope(engine) as s:
        job_id, created = record_refusal(s, "k-1", reasons)
        again, created_again = record_refusal(s, "k-1", [{"field": "products", "reason": "other"}])
        job = get_job(s, job_id)
    assert (created, again, created_again) == (True, job_id, False)
    assert (job["status"], job["n_items"], job["queue"], job["rejected"]) == ("refused", 0, None, reasons)
    assert job["finished_at"] is not None


def test_the_python_api_refuses_a_valid_submission_under_the_key_of_a_refused_one(engine, sqlite_url):
    from copygen.settings import Settings
    from db.engine import session_scope
    from db.jobs import record_refusal
    from worker.submit import submit_job

    with session_scope(engine) as s:
        job_id, _ = record_refusal(s, "taken", [{"field": "products", "reason": "is empty"}])
    # a broker named (never reached: nothing is dispatched), so no checkpoint is needed in this process
    settings = Settings(database_url=sqlite_url, broker_url="redis://127.0.0.1:1/0")
    with pytest.raises(SettingsError) as caught:
        submit_job([{"external_id": "A-1", "title": "白色上衣"}], 1, idempotency_key="taken", settings=settings)
    assert caught.value.fields == ["idempotency_key"] and job_id in str(caught.value)


def test_refusal_reasons_have_the_shape_of_rejected_rows():
    from worker.submit import ModelVersionError, refusal_reasons

    assert refusal_reasons(SettingsError([("settings.variants", "must be 1 to 10, not 99")])) == [
        {"source": "payload", "row": None, "field": "settings.variants", "reason": "must be 1 to 10, not 99"}]
    row = RowError("payload", 2, "external_id", "missing")
    assert refusal_reasons(CatalogueError("payload: no valid product to submit", [row])) == [row.to_json()]
    assert refusal_reasons(ModelVersionError("settings.model_version: unknown model version 'x'")) == [
        {"source": "payload", "row": None, "field": "settings.model_version", "reason": "unknown model version 'x'"}]


def test_a_refused_payload_is_recorded_under_its_own_key_or_the_task_key_and_never_under_a_broken_one():
    from worker.submit import refusal_key

    assert refusal_key({"idempotency_key": "mine"}, "task:1") == "mine"
    assert refusal_key({}, "task:1") == "task:1"
    assert refusal_key({"idempotency_key": None}, "task:1") == "task:1"
    for broken in (12345, "", "x" * 201, ["a"]):
        assert refusal_key({"idempotency_key": broken}, "task:1") is None


def test_pace_is_products_finished_in_the_window_per_second_and_eta_divides_what_is_left_by_it(engine):
    from sqlalchemy import update

    from copygen.catalogue import JobSettings
    from copygen.settings import Settings
    from db.engine import session_scope
    from db.jobs import CHUNKS, JOBS, job_pace
    from db.models import utcnow
    from worker.submit import write_job

    now = utcnow()
    settings = Settings(database_url=str(engine.url), chunk_size=10)

    with session_scope(engine) as s:
        job_id, _ = write_job(s, products(40), JobSettings(variants=1), settings=settings, idempotency_key=None)
        s.execute(update(JOBS).where(JOBS.c.id == job_id).values(created_at=now - timedelta(minutes=30)))
        # two chunks (20 products) finished within the last 5 minutes, one before it
        for chunk_no, minutes_ago in ((0, 10), (1, 4), (2, 1)):
            s.execute(update(CHUNKS).where(CHUNKS.c.job_id == job_id, CHUNKS.c.chunk_no == chunk_no)
                      .values(status="done", updated_at=now - timedelta(minutes=minutes_ago)))
    with session_scope(engine) as s:
        pace = job_pace(s, job_id, now=now)
    assert pace["products_per_second"] == pytest.approx(20 / 300)
    assert pace["products_left"] == 10
    assert pace["eta_seconds"] == pytest.approx(10 / (20 / 300))


def test_pace_of_a_job_with_nothing_finished_yet_has_no_eta_and_of_a_finished_one_an_eta_of_zero(engine):
    from copygen.catalogue import JobSettings
    from copygen.settings import Settings
    from db.engine import session_scope
    from db.jobs import job_pace
    from worker.submit import write_job

    settings = Settings(database_url=str(engine.url), chunk_size=10)
    with session_scope(engine) as s:
        job_id, _ = write_job(s, products(5), JobSettings(variants=1), settings=settings, idempotency_key=None)
        pace = job_pace(s, job_id)
        assert job_pace(s, "no-such-job") is None
    assert (pace["products_per_second"], pace["products_left"], pace["eta_seconds"]) == (0, 5, None)


def test_the_metrics_count_products_variants_flag_families_and_regenerations_of_stored_rows():
    from worker.metrics import WorkerMetrics

    m = WorkerMetrics()
    m.count_stored([
        {"job_item_id": 1, "passed": True, "flags": [], "regenerations": 1},
        {"job_item_id": 1, "passed": False, "flags": ["ad_law:最", "ad_law:第一"], "regenerations": 1},
        {"job_item_id": 2, "passed": False, "flags": ["contradiction:颜色:白色/黑色", "too_long"], "regenerations": 0},
    ])
    got = m.registry.get_sample_value
    assert got("copygen_products_stored_total") == 2
    assert got("copygen_variants_stored_total", {"result": "passed"}) == 1
    assert got("copygen_variants_stored_total", {"result": "flagged"}) == 2
    assert got("copygen_variants_flagged_total", {"family": "ad_law"}) == 1  # a variant, not its two terms
    assert got("copygen_variants_flagged_total", {"family": "contradiction"}) == 1
    assert got("copygen_variants_flagged_total", {"family": "too_long"}) == 1
    assert got("copygen_regenerations_total") == 1  # per product, not per variant


def test_a_generator_wrapped_for_metrics_counts_tokens_and_passes_everything_else_through():
    from trainer.generation.generator import Candidate
    from worker.metrics import WorkerMetrics

    class Engine:
        model_version = "m-1"

        def generate_candidates(self, requests, **_kw):
            return [[Candidate("甲", -1.0, 3), Candidate("乙", -1.0, 4)] for _ in requests]

    m = WorkerMetrics()
    wrapped = m.counting(Engine())
    assert wrapped.model_version == "m-1"
    assert len(wrapped.generate_candidates([1, 2])) == 2
    assert m.registry.get_sample_value("copygen_tokens_generated_total") == 14


def test_no_metrics_are_served_or_counted_unless_a_port_is_set():
    from copygen.settings import Settings
    from worker import metrics

    assert Settings().metrics_port is None
    assert metrics.active() is None


def test_the_cli_offers_exactly_the_health_checks_there_are():
    from copygen.cli_service import HEALTH_CHECKS
    from worker.health import CHECKS

    assert HEALTH_CHECKS == CHECKS


def test_workers_send_task_events_and_senders_task_sent_events():
    from copygen.settings import Settings
    from worker.config import celery_config

    config = celery_config(Settings())
    assert config["worker_send_task_events"] is True and config["task_send_sent_event"] is True
