"""run_chunk, submission and the reconciler on SQLite: scripted generators, and one tiny real model."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from copygen.catalogue import CatalogueError, JobSettings, SettingsError
from copygen.settings import Settings
from db.chunks import claim_chunk
from db.engine import session_scope, upgrade
from db.jobs import job_progress
from db.model_versions import register_model_version
from db.models import Chunk, utcnow
from db.variants import job_variants
from trainer import wordpairs
from trainer.generation import Candidate
from worker import pipeline, runtime, selection
from worker.celery_app import create_app
from worker.dispatch import MAX_HANDBACKS, execute_chunk
from worker.reconcile import queue_depth, reconcile
from worker.submit import ModelVersionError, submit, submit_job, wait_for_job

COPY = (  # three clean, mutually distinct copies for a white cotton top (medium length)
    "这款白色上衣采用纯棉面料，柔软亲肤，简约的版型百搭又显瘦，日常通勤或周末出游都很合适。",
    "纯棉面料的白色上衣，透气舒适不闷热，落肩设计慵懒随性，搭配牛仔裤或半身裙都能轻松出街。",
    "白色是永不过时的经典，这件上衣选用柔软棉质，宽松廓形包容身材，领口细节精致，质感在线。",
)
BANNED = "全网最好的白色纯棉上衣，柔软亲肤又透气，简约版型百搭显瘦，通勤出游都合适，闭眼入手。"


def products(n: int, poison: set[int] = frozenset()) -> list[dict]:
    return [{"external_id": f"SKU-{i:03d}", "title": "POISON" if i in poison else "白色纯棉上衣",
             "category": "上衣", "attributes": "颜色#白色*材质#棉"} for i in range(n)]


class ScriptedGenerator:
    """Stands in for trainer.generation.Generator: texts come from script(call, request_no, candidate)."""

    model_version = "scripted-1"
    length_edges = None  # the fixed length bounds
    word_pairs = None  # a checkpoint saved without the pairs of its training copy's words

    def __init__(self, script=lambda call, i, v: COPY[v % len(COPY)]):
        self.script = script
        self.calls: list[list] = []

    def generate_candidates(self, requests, *, temperature=0.95, top_p=0.7, seed=None, banned=(), **_):
        call = len(self.calls)
        self.calls.append(list(requests))
        for r in requests:
            if "POISON" in r.source:
                raise RuntimeError("this product breaks the model")
        return [[Candidate(self.script(call, i, v), -1.0, 10) for v in range(r.variants)]
                for i, r in enumerate(requests)]


@pytest.fixture
def env(sqlite_url):
    """(engine, settings, app): a migrated SQLite store; chunk messages go to kombu's in-memory broker."""
    upgrade(sqlite_url)
    settings = Settings(database_url=sqlite_url, broker_url="redis://unused.invalid:6379/0", chunk_size=2,
                        max_attempts=3, regenerate_rounds=2)
    app = create_app(Settings(broker_url="memory://", database_url=sqlite_url))
    with app.connection_for_write() as conn:  # kombu's in-memory broker lives as long as the process
        for queue in ("batch", "interactive"):
            conn.default_channel.queue_purge(queue)
    engine = runtime.current().engine(settings)
    yield engine, settings, app
    runtime.reset()


def new_job(env, n=4, poison=frozenset(), **job) -> str:
    _, settings, app = env
    return submit(products(n, poison), JobSettings(**job), settings=settings, app=app).job_id


def run_all(env, generator, job_id):
    engine, settings, _ = env
    with session_scope(engine) as s:
        chunks = job_progress(s, job_id)["chunks_total"]
    for chunk_no in range(chunks):
        for _ in range(settings.max_attempts):
            if pipeline.run_chunk(runtime.current(), generator, job_id, chunk_no, settings).status != "retry":
                break




def variants_of(engine, job_id):
    with session_scope(engine) as s:
        return job_variants(s, job_id)


def test_a_chunk_stores_k_checked_ranked_variants_per_product_and_the_job_finishes(env):
    engine, settings, _ = env
    job_id = new_job(env, n=3, variants=3)
    generator = ScriptedGenerator()
    outcome = pipeline.run_chunk(runtime.current(), generator, job_id, 0, settings)
    assert (outcome.status, outcome.variants, outcome.flagged) == ("done", 6, 0)
    assert len(generator.calls) == 1 and len(generator.calls[0]) == 2  # the chunk's products in one call
    pipeline.run_chunk(runtime.current(), generator, job_id, 1, settings)
    rows = variants_of(engine, job_id)
    assert len(rows) == 9
    for sku in ("SKU-000", "SKU-001", "SKU-002"):
        mine = [r for r in rows if r["external_id"] == sku]
        assert sorted(r["variant_no"] for r in mine) == [1, 2, 3]
        assert sorted(r["rank"] for r in mine) == [1, 2, 3]
        assert len({r["text"] for r in mine}) == 3
        assert all(r["passed"] and r["flags"] == [] and r["model_version"] == "scripted-1" for r in mine)
    with session_scope(engine) as s:
        assert job_progress(s, job_id)["status"] == "done"


def test_a_second_delivery_of_a_chunk_stores_nothing_twice(env):
    engine, settings, _ = env
    job_id = new_job(env, n=2, variants=3)
    generator = ScriptedGenerator()
    assert pipeline.run_chunk(runtime.current(), generator, job_id, 0, settings).status == "done"
    assert pipeline.run_chunk(runtime.current(), generator, job_id, 0, settings).status == "skipped"
    assert len(generator.calls) == 1
    # a delivery that generated concurrently and writes late: its rows lose to the stored ones
    first = variants_of(engine, job_id)
    late = [{"job_item_id": r["job_item_id"], "variant_no": r["variant_no"], "text": "迟到的文案",
             "passed": True} for r in first]
    assert pipeline.store_chunk(runtime.current(), engine, job_id, 0, late, settings) == 0
    assert variants_of(engine, job_id) == first


def test_k_times_oversample_candidates_are_asked_in_one_call_and_the_k_best_kept(env):
    engine, settings, _ = env
    job_id = new_job(env, n=2, variants=2, oversample=3)
    generator = ScriptedGenerator(lambda call, i, v: BANNED if v < 3 else COPY[v % 3])
    pipeline.run_chunk(runtime.current(), generator, job_id, 0, settings)
    assert len(generator.calls) == 1 and [r.variants for r in generator.calls[0]] == [6, 6]
    rows = variants_of(engine, job_id)
    assert len(rows) == 4 and all(r["passed"] and r["text"] != BANNED and r["regenerations"] == 0 for r in rows)


def test_each_product_has_the_words_its_attributes_exclude_blocked_while_decoding(env):
    _engine, settings, _ = env
    job_id = new_job(env, n=1, variants=1)
    generator = ScriptedGenerator()
    pipeline.run_chunk(runtime.current(), generator, job_id, 0, settings)
    [request] = generator.calls[0]
    assert "黑色" in request.banned and "白色" not in request.banned  # a white cotton top


def test_a_stated_only_job_blocks_and_flags_what_its_products_do_not_state(env):
    engine, settings, _ = env
    loose = "白色是永不过时的经典，这件上衣选用柔软棉质，宽松廓形包容身材，领口细节精致，质感在线，百搭又舒适。"
    # only loose copy after the first call: a repeat of a clean copy would be kept before a wrong fact
    generator = ScriptedGenerator(lambda call, i, v: loose if v == 0 or call else COPY[1])
    stated = new_job(env, n=1, variants=2, oversample=1, stated_only=True)
    pipeline.run_chunk(runtime.current(), generator, stated, 0, settings)
    [request] = generator.calls[0]
    assert {"印花", "长袖", "宽松", "v领"} <= set(request.banned)  # a white cotton top says no more
    assert not {"白色", "纯棉"} & set(request.banned) and "黑色" in request.banned
    by_text = {r["text"]: r for r in variants_of(engine, stated)}
    assert by_text[loose]["flags"] == ["unstated:宽松", "unstated:领口"] and not by_text[loose]["passed"]  # no collar stated (2026.12-19)
    plain = new_job(env, n=1, variants=2, oversample=1)
    pipeline.run_chunk(runtime.current(), ScriptedGenerator(lambda call, i, v: loose if v == 0 else COPY[1]),
                       plain, 0, settings)
    assert all(r["passed"] for r in variants_of(engine, plain))  # the same copy passes an ordinary job


def test_a_job_stored_before_a_setting_existed_counts_as_its_default_when_a_key_is_reused():
    from worker.submit import settings_differ

    stored = {k: v for k, v in JobSettings().to_json().items() if k != "stated_only"}
    assert settings_differ(JobSettings(stated_only=True), stored) == ["stated_only"]
    assert settings_differ(JobSettings(), stored) == []


def test_only_a_product_short_of_passing_candidates_gets_more(env):
    engine, settings, _ = env
    job_id = new_job(env, n=2, variants=2, oversample=1)
    generator = ScriptedGenerator(lambda call, i, v: BANNED if (call, i) == (0, 1) else COPY[v])
    pipeline.run_chunk(runtime.current(), generator, job_id, 0, settings)
    assert [len(c) for c in generator.calls] == [2, 1]  # the second call: the failing product only
    rows = {(r["external_id"], r["rank"]): r for r in variants_of(engine, job_id)}
    assert rows[("SKU-001", 1)]["passed"] and rows[("SKU-001", 1)]["regenerations"] == 1
    assert rows[("SKU-000", 1)]["regenerations"] == 0


def test_a_product_whose_candidates_keep_failing_stores_k_flagged_variants_with_their_reasons(env):
    engine, settings, _ = env
    job_id = new_job(env, n=1, variants=3)
    generator = ScriptedGenerator(lambda call, i, v: BANNED)
    pipeline.run_chunk(runtime.current(), generator, job_id, 0, settings)
    rows = variants_of(engine, job_id)
    assert len(generator.calls) == 1 + settings.regenerate_rounds
    assert len(rows) == 3 and not any(r["passed"] for r in rows)
    assert all("ad_law:最好" in r["flags"] and r["score"] < 0 for r in rows)
    assert sorted(r["rank"] for r in rows) == [1, 2, 3]


def test_identical_variants_are_flagged_near_duplicate_rather_than_dropped(env):
    engine, settings, _ = env
    job_id = new_job(env, n=1, variants=3)
    settings = settings.model_copy(update={"regenerate_rounds": 0})
    pipeline.run_chunk(runtime.current(), ScriptedGenerator(lambda call, i, v: COPY[0]), job_id, 0, settings)
    rows = sorted(variants_of(engine, job_id), key=lambda r: r["variant_no"])
    assert len(rows) == 3
    assert rows[0]["passed"] and [r["flags"] for r in rows[1:]] == [["near_duplicate"]] * 2


def test_a_poison_chunk_is_parked_after_max_attempts_and_the_job_ends_partial_with_the_reason(env):
    engine, settings, _ = env
    job_id = new_job(env, n=6, poison={3}, variants=2)  # chunks: [0,1] [2,3] [4,5]
    run_all(env, ScriptedGenerator(), job_id)
    with session_scope(engine) as s:
        progress = job_progress(s, job_id)
    assert progress["status"] == "partial"
    assert (progress["chunks_done"], progress["chunks_failed"], progress["variants"]) == (2, 1, 8)
    [failure] = progress["failures"]
    assert failure["chunk_no"] == 1 and failure["attempts"] == settings.max_attempts
    assert "this product breaks the model" in failure["error"]


def test_a_short_database_outage_while_storing_is_waited_out_without_generating_again(env, monkeypatch):
    engine, settings, _ = env
    job_id = new_job(env, n=2, variants=2)
    real, failures = pipeline.upsert_variants, []

    def flaky(s, rows):
        if not failures:
            failures.append(1)
            raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))
        return real(s, rows)

    monkeypatch.setattr(pipeline, "upsert_variants", flaky)
    monkeypatch.setattr(pipeline, "STORE_BACKOFF_S", (0.01, 0.01))
    generator = ScriptedGenerator()
    assert pipeline.run_chunk(runtime.current(), generator, job_id, 0, settings).status == "done"
    assert failures and len(generator.calls) == 1
    assert len(variants_of(engine, job_id)) == 4


def test_after_a_longer_outage_the_retry_stores_the_copy_already_generated(env, monkeypatch):
    engine, settings, _ = env
    job_id = new_job(env, n=2, variants=2)
    real, down = pipeline.upsert_variants, [True]

    def maybe_down(s, rows):
        if down[0]:
            raise OperationalError("INSERT", {}, Exception("connection refused"))
        return real(s, rows)

    monkeypatch.setattr(pipeline, "upsert_variants", maybe_down)
    monkeypatch.setattr(pipeline, "STORE_BACKOFF_S", (0.01,))
    generator = ScriptedGenerator()
    with pytest.raises(OperationalError):
        pipeline.run_chunk(runtime.current(), generator, job_id, 0, settings)
    assert variants_of(engine, job_id) == []  # nothing partial is visible
    down[0] = False
    assert pipeline.run_chunk(runtime.current(), generator, job_id, 0, settings).status == "done"
    assert len(generator.calls) == 1 and len(variants_of(engine, job_id)) == 4


def test_a_job_for_another_model_version_is_handed_back_without_costing_an_attempt(env):
    engine, settings, _ = env
    with session_scope(engine) as s:
        register_model_version(s, "other-2", "/models/other-2", {"name": "other-2"})
    job_id = new_job(env, n=1, model_version="other-2")
    generator = ScriptedGenerator()
    for _ in range(settings.max_attempts + 1):  # more deliveries than a chunk has attempts
        outcome = execute_chunk(runtime.current(), settings, lambda: generator, job_id, 0)
        assert outcome.status == "mismatch" and "asks for model 'other-2'" in outcome.error
        assert outcome.retry_in > 0  # offered again later, for a worker that serves it
    with session_scope(engine) as s:
        chunk = s.execute(select(Chunk.status, Chunk.attempts).where(Chunk.job_id == job_id)).one()
    assert tuple(chunk) == ("pending", 0) and generator.calls == []


def test_a_chunk_no_worker_serves_counts_as_a_failed_attempt_after_the_hand_backs(env):
    engine, settings, _ = env
    with session_scope(engine) as s:
        register_model_version(s, "other-2", "/models/other-2", {"name": "other-2"})
    job_id = new_job(env, n=1, model_version="other-2")
    outcome = execute_chunk(runtime.current(), settings, ScriptedGenerator, job_id, 0, retries=MAX_HANDBACKS)
    assert outcome.status == "retry" and "no worker serving it took the chunk in 30 hand-backs" in outcome.error
    with session_scope(engine) as s:
        assert s.execute(select(Chunk.attempts).where(Chunk.job_id == job_id)).scalar_one() == 1


def test_a_model_that_will_not_load_fails_the_chunk_until_it_is_parked(env):
    engine, settings, _ = env
    job_id = new_job(env, n=1)

    def broken():
        raise OSError("model.safetensors: truncated file")

    outcomes = [execute_chunk(runtime.current(), settings, broken, job_id, 0).status
                for _ in range(settings.max_attempts)]
    assert outcomes == ["retry"] * (settings.max_attempts - 1) + ["parked"]
    with session_scope(engine) as s:
        progress = job_progress(s, job_id)
    assert progress["status"] == "failed" and "truncated file" in progress["failures"][0]["error"]


def test_a_score_weights_file_that_goes_bad_fails_the_chunk_by_name_and_leaves_it_to_be_retried(env, tmp_path):
    engine, settings, _ = env
    job_id = new_job(env, n=1)
    weights = tmp_path / "weights.json"
    weights.write_text("{not json", encoding="utf-8")  # e.g. half-written by hand after the worker started
    try:
        outcome = execute_chunk(runtime.current(), settings.model_copy(update={"score_weights": weights}),
                                ScriptedGenerator, job_id, 0)
    finally:
        selection.use_weights(None)
    assert outcome.status == "retry"
    assert outcome.error.startswith(f"ValueError: COPYGEN_SCORE_WEIGHTS: score weights {weights}: not JSON")
    with session_scope(engine) as s:
        chunk = s.execute(select(Chunk).where(Chunk.job_id == job_id)).scalar_one()
        assert (chunk.status, chunk.attempts) == ("pending", 1)
    # fixed, the same chunk runs
    assert execute_chunk(runtime.current(), settings, ScriptedGenerator, job_id, 0).status == "done"


def test_an_in_process_job_with_an_unusable_score_weights_file_is_refused_before_anything_is_written(tmp_path):
    url = f"sqlite:///{tmp_path / 'copy.db'}"
    settings = Settings(database_url=url, broker_url="memory://", score_weights=tmp_path / "missing.json")
    with pytest.raises(ValueError, match=r"^COPYGEN_SCORE_WEIGHTS: score weights .*missing\.json: cannot read it"):
        submit_job(products(2), 1, settings=settings)
    engine = runtime.current().engine(settings)
    try:
        with session_scope(engine) as s:
            assert s.execute(select(Chunk)).first() is None
    finally:
        runtime.reset()


def test_a_write_the_database_refuses_is_a_failed_attempt_not_a_chunk_stuck_running(env, monkeypatch):
    from sqlalchemy.exc import IntegrityError

    engine, settings, _ = env
    job_id = new_job(env, n=1, variants=1)

    def refuse(s, rows):
        raise IntegrityError("INSERT", {}, Exception("value too long for type character varying"))

    monkeypatch.setattr(pipeline, "upsert_variants", refuse)
    outcome = pipeline.run_chunk(runtime.current(), ScriptedGenerator(), job_id, 0, settings)
    assert outcome.status == "retry" and "value too long" in outcome.error
    assert runtime.current().unsaved.get(job_id, 0) is None  # the next attempt generates afresh
    with session_scope(engine) as s:
        assert s.execute(select(Chunk.status).where(Chunk.job_id == job_id)).scalar_one() == "pending"


def test_decoding_blocks_every_spelling_of_a_latin_advertising_law_term(env):
    _engine, settings, _ = env
    job_id = new_job(env, n=1, variants=1)
    seen = []

    class Recording(ScriptedGenerator):
        def generate_candidates(self, requests, **kwargs):
            seen.append(kwargs["banned"])
            return super().generate_candidates(requests, **kwargs)

    pipeline.run_chunk(runtime.current(), Recording(), job_id, 0, settings)
    assert seen and all({"NO.1", "No.1", "no.1"} <= set(banned) for banned in seen)


def test_a_jobs_clause_checks_reach_every_engine_call_and_are_off_by_default(env):
    _engine, settings, _ = env
    seen = []

    class Recording(ScriptedGenerator):
        def generate_candidates(self, requests, **kwargs):
            seen.append((kwargs["clause_floor"], kwargs["word_pairs"], kwargs["known_clauses"]))
            return super().generate_candidates(requests, **kwargs)

    floored = new_job(env, n=1, variants=2, oversample=1, clause_floor=-1.5, word_pairs=True, known_clauses=True)
    failing = Recording(lambda call, i, v: BANNED)  # never passes: every regeneration round runs
    pipeline.run_chunk(runtime.current(), failing, floored, 0, settings)
    assert seen == [(-1.5, True, True)] * (1 + settings.regenerate_rounds)
    seen.clear()
    pipeline.run_chunk(runtime.current(), Recording(), new_job(env, n=1, variants=1), 0, settings)
    assert seen == [(None, False, False)]


def test_a_job_with_word_pairs_stores_no_spliced_candidate_while_a_clean_one_is_left(env):
    engine, _settings, _ = env
    spliced = COPY[0].replace("柔软亲肤", "修饰颈部线条纹")  # words COPY never joins

    def script(call, i, v):  # the splice and a clean copy first, then two other clean ones
        return (spliced, COPY[1])[v] if call == 0 else COPY[(v + 2) % 3]

    generator = ScriptedGenerator(script)
    generator.word_pairs = wordpairs.WordPairs.count(COPY)

    checked = new_job(env, n=1, variants=2, oversample=1, word_pairs=True)
    run_all(env, generator, checked)
    rows = variants_of(engine, checked)
    assert sorted(r["text"] for r in rows) == sorted([COPY[1], COPY[2]])  # a second call replaced the splice
    assert all(r["passed"] for r in rows)

    unchecked = new_job(env, n=1, variants=2, oversample=1)
    run_all(env, ScriptedGenerator(script), unchecked)
    assert spliced in [r["text"] for r in variants_of(engine, unchecked)]


def test_submission_reports_bad_rows_and_keeps_the_good_ones(env):
    engine, settings, app = env
    rows = products(3) + [{"title": "没有编号"}, {"external_id": "SKU-000", "title": "重复"}]
    result = submit(rows, JobSettings(), settings=settings, app=app)
    assert result.created and result.accepted == 3
    assert [(e.row, e.field) for e in result.rejected] == [(4, "external_id"), (5, "external_id")]
    with session_scope(engine) as s:
        assert job_progress(s, result.job_id)["rejected"] == 2


def test_submission_with_no_valid_row_is_refused_row_by_row(env):
    _, settings, app = env
    with pytest.raises(CatalogueError, match="row 1: field 'external_id'"):
        submit([{"title": "没有编号"}], JobSettings(), settings=settings, app=app)


def test_an_unknown_model_version_fails_at_submission_with_one_clear_line(env):
    _, settings, app = env
    with pytest.raises(ModelVersionError, match="unknown model version 'nope'"):
        submit(products(1), JobSettings(model_version="nope"), settings=settings, app=app)


def test_bad_settings_are_refused_by_field_name(env):
    _, settings, _ = env
    with pytest.raises(SettingsError, match="variants"):
        submit_job(products(1), variants=0, settings=settings)


def test_chunks_are_enqueued_after_commit_on_the_jobs_queue_and_once_per_idempotency_key(env):
    _, settings, app = env
    first = submit(products(5), JobSettings(queue="interactive"), settings=settings, app=app,
                   idempotency_key="k-1")
    again = submit(products(5), JobSettings(queue="interactive"), settings=settings, app=app,
                   idempotency_key="k-1")
    assert first.job_id == again.job_id and first.created and not again.created
    assert queue_depth(app, "interactive") == 3  # 5 products in chunks of 2
    assert queue_depth(app, "batch") == 0


def test_the_reconciler_resends_lapsed_chunks_and_pending_ones_only_when_their_queue_is_empty(env):
    engine, settings, app = env
    job_id = new_job(env, n=4)  # 2 chunks -> 2 messages on batch
    with session_scope(engine) as s:
        claim_chunk(s, job_id, 0, lease_seconds=60, max_attempts=3, now=utcnow() - timedelta(hours=1))
        s.execute(update(Chunk).where(Chunk.job_id == job_id).values(updated_at=utcnow() - timedelta(hours=1)))
    assert reconcile(runtime.current(), app, settings) == {"due": 2, "enqueued": 1, "finished": 0}  # queue not empty
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("batch")  # the broker lost its queue
    assert reconcile(runtime.current(), app, settings) == {"due": 2, "enqueued": 2, "finished": 0}
    assert queue_depth(app, "batch") == 2


def test_the_reconciler_settles_finished_jobs_while_the_broker_is_unreachable(env):
    engine, settings, _app = env
    finished = new_job(env, n=2)  # one chunk, run below: the job is complete but not yet settled
    lapsed = new_job(env, n=2)
    with session_scope(engine) as s:
        claim_chunk(s, finished, 0, lease_seconds=60, max_attempts=3)
        s.execute(update(Chunk).where(Chunk.job_id == finished).values(status="done"))
        claim_chunk(s, lapsed, 0, lease_seconds=60, max_attempts=3, now=utcnow() - timedelta(hours=1))
    away = create_app(Settings(broker_url="redis://127.0.0.1:1/0", database_url=settings.database_url))
    counts = reconcile(runtime.current(), away, settings)
    assert counts == {"due": 1, "enqueued": 0, "finished": 1}  # the lapsed chunk waits for the broker
    with session_scope(engine) as s:
        assert job_progress(s, finished)["status"] == "done"


def test_unsaved_copy_is_kept_per_chunk_bounded_and_safe_across_threads():
    from concurrent.futures import ThreadPoolExecutor

    unsaved = runtime.UnsavedChunks(capacity=4)

    def churn(n: int) -> None:
        for i in range(300):
            unsaved.keep(f"job-{n}", i, [{"i": i}])
            assert unsaved.get(f"job-{n}", i) in ([{"i": i}], None)  # kept, or already pushed out
            unsaved.forget(f"job-{n}", i - 1)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(churn, range(8)))
    unsaved.keep("job-x", 1, [{"x": 1}])
    assert unsaved.get("job-x", 1) == [{"x": 1}] and len(unsaved._rows) <= 4


def test_the_python_api_creates_the_embedded_store_on_a_fresh_machine(tmp_path, checkpoint):
    fresh = f"sqlite:///{tmp_path / 'never-migrated' / 'copy.db'}"
    settings = Settings(database_url=fresh, broker_url="memory://", checkpoint=checkpoint, regenerate_rounds=0)
    try:
        job_id = submit_job(products(2), 1, length="short", settings=settings)
        assert wait_for_job(runtime.current().engine(settings), job_id, timeout=5)["status"] == "done"
    finally:
        runtime.reset()


# -- the embedded default, with a real (tiny) model -----------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny trained checkpoint, built once per test session (shared with other modules)."""
    from trainer.testing import tiny_checkpoint

    path = tmp_path_factory.getbasetemp() / "tiny-checkpoint"
    return path if (path / "copygen.json").is_file() else tiny_checkpoint(path)


@pytest.mark.slow
def test_the_embedded_default_runs_a_job_in_process_with_a_real_model(sqlite_url, checkpoint):
    upgrade(sqlite_url)
    settings = Settings(database_url=sqlite_url, broker_url="memory://", checkpoint=checkpoint, chunk_size=3,
                        regenerate_rounds=1)
    try:
        job_id = submit_job(products(5), 2, length="short", seed=11, settings=settings)
        engine = runtime.current().engine(settings)
        assert wait_for_job(engine, job_id, timeout=5)["status"] == "done"  # finished before submit returned
        rows = variants_of(engine, job_id)
        assert len(rows) == 10 and all(r["text"] for r in rows)
        assert all(r["passed"] == (r["flags"] == []) for r in rows)
        again = submit_job(products(5), 2, length="short", seed=11, settings=settings)
        assert [r["text"] for r in variants_of(engine, again)] == [r["text"] for r in rows]  # same seed, same copy
    finally:
        runtime.reset()


def test_a_worker_takes_the_cpu_threads_it_is_given(checkpoint):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runtime.current().generator(Settings(checkpoint=checkpoint, device="cpu", threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
        runtime.reset()
