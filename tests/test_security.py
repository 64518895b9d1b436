"""Security, tested on real services: a Redis with a password over TLS (rediss://), credentials that
never reach a log, payloads sent by task name that are wrong in every way, and a campaign role that
can read the copy views and write nothing.

Covered elsewhere, not repeated here: a pickled message is refused by a real worker
(test_worker_integration.py) and by the app's consumer settings (test_worker_celery.py); a
checkpoint holding a pickle (pytorch_model.bin) or custom code (auto_map) is refused
(test_trainer_model.py).
"""

from __future__ import annotations

import subprocess
import uuid

import pytest
from helpers_worker import (
    REPO,
    PrivateRedis,
    beat_process,
    catalogue,
    copygen_cli,
    copygen_env,
    fresh_database,
    require_binary,
    require_service,
    self_signed_cert,
    wait_until,
    worker_process,
)

REDIS_PASSWORD = "r3dis-Pa55-" + uuid.uuid4().hex[:8]
PG_PASSWORD = "pg-Pa55-" + uuid.uuid4().hex[:8]  # this machine's PostgreSQL trusts 127.0.0.1 and ignores it


def test_a_rediss_url_is_accepted_by_the_settings_and_the_app_and_printed_masked():
    from copygen.settings import Settings, mask_url
    from worker.celery_app import create_app

    url = "rediss://:s3cret@redis.internal:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ssl/redis-ca.pem"
    settings = Settings(broker_url=url, database_url="sqlite://")
    assert create_app(settings).conf.broker_url == url
    assert mask_url(url) == "rediss://:***@redis.internal:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ssl/redis-ca.pem"
    assert "s3cret" not in mask_url("postgresql+psycopg://copygen:s3cret@db:5432/copygen")


# -- a worker on a password-protected TLS Redis -----------------------------------------------------


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls-redis")
    redis = PrivateRedis(folder, password=REDIS_PASSWORD, tls=self_signed_cert(folder)).start()
    yield redis
    redis.kill()


@pytest.fixture(scope="module")
def conf(tls_broker, tmp_path_factory):
    from sqlalchemy.engine import make_url

    from trainer.testing import tiny_checkpoint

    require_service("PostgreSQL", 5432)
    checkpoint = tmp_path_factory.getbasetemp() / "tiny-checkpoint"
    if not (checkpoint / "copygen.json").is_file():
        tiny_checkpoint(checkpoint)
    with fresh_database("copygen_sec") as database_url:
        with_password = make_url(database_url).set(password=PG_PASSWORD).render_as_string(hide_password=False)
        yield {"database_url": with_password, "broker_url": tls_broker.url, "checkpoint": checkpoint,
               "chunk_size": 4, "visibility_timeout": 3600, "task_soft_time_limit": 60, "task_time_limit": 120}


@pytest.fixture(scope="module")
def settings(conf):
    from copygen.settings import Settings

    return Settings(**conf)


@pytest.fixture(scope="module")
def engine(settings):
    from db.engine import make_engine

    made = make_engine(settings.database_url)
    yield made
    made.dispose()


@pytest.fixture(scope="module")
def worker(conf, tmp_path_factory):
    process = worker_process(copygen_env(**conf), tmp_path_factory.mktemp("worker") / "worker.log", "sec").start()
    yield process
    process.stop(timeout=30)


@pytest.fixture
def worker_log(worker):
    yield worker
    print(worker.log()[-5000:])


def job_by_key(engine, key: str) -> dict | None:
    from sqlalchemy import select

    from db.engine import session_scope
    from db.models import Job

    with session_scope(engine) as s:
        row = s.execute(select(Job).where(Job.idempotency_key == key)).scalar_one_or_none()
        return None if row is None else {"id": row.id, "status": row.status, "n_items": row.n_items,
                                         "rejected": row.rejected}


@pytest.mark.integration
def test_a_job_runs_over_tls_with_a_password_and_sql_looking_text_is_stored_verbatim(settings, engine, worker_log):
    from copygen.catalogue import JobSettings
    from db.engine import session_scope
    from db.variants import job_variants
    from worker.submit import submit, wait_for_job

    sneaky = "SKU-1'); DROP TABLE variants; --"
    products = [*catalogue(3, prefix="TLS"), {"external_id": sneaky, "title": "<script>alert(1)</script>白色上衣",
                                                "attributes": "类型#上衣*颜色#白色"}]
    job_id = submit(products, JobSettings(variants=2, length="short"), settings=settings).job_id
    progress = wait_for_job(engine, job_id, poll=0.5, timeout=120)
    assert progress["status"] == "done" and progress["variants"] == 8
    with session_scope(engine) as s:
        assert {row["external_id"] for row in job_variants(s, job_id)} >= {sneaky}


@pytest.mark.integration
def test_a_tls_broker_whose_certificate_is_not_trusted_is_refused(tls_broker):
    from kombu import Connection
    from kombu.exceptions import OperationalError

    untrusted = tls_broker.url.split("&ssl_ca_certs=")[0]  # verify against the system CAs only
    with Connection(untrusted) as conn, pytest.raises((OperationalError, OSError)):
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0)


@pytest.mark.integration
def test_payloads_sent_by_task_name_that_are_wrong_are_refused_by_name_and_the_worker_keeps_going(
        settings, engine, worker_log):
    from celery import Celery

    from worker.submit import wait_for_job

    good = catalogue(1, prefix="OK")
    bad_payloads = {
        "missing": {},  # no products at all
        "wrong-type": {"products": "SKU-1"},
        "unknown-key": {"products": good, "priority": 1},
        "huge-variants": {"products": good, "settings": {"variants": 10**9}},
        "variants-as-text": {"products": good, "settings": {"variants": "3"}},
        "nested-settings": {"products": good, "settings": {"length": {"$ne": "short"}}},
    }
    keys = {name: f"bad-{name}-{uuid.uuid4().hex[:6]}" for name in bad_payloads}
    rows_key = f"rows-{uuid.uuid4().hex[:6]}"
    rows = [*good, {"external_id": "I" * 1000, "title": "衬衫"},
            {"external_id": "BIG-ATTR", "title": "衬衫", "attributes": {"颜色": "红" * 1_000_000}}]
    marker = f"marker-{uuid.uuid4().hex[:6]}"
    client = Celery("merchant-backend", broker=settings.broker_url)
    try:
        for name, payload in bad_payloads.items():
            client.send_task("copygen.submit_job", kwargs={**payload, "idempotency_key": keys[name]}, queue="batch")
        client.send_task("copygen.submit_job", args=("positional",), queue="batch")
        client.send_task("copygen.submit_job", kwargs={"products": rows, "idempotency_key": rows_key}, queue="batch")
        for args, kwargs in [((), {}), (("job", "zero"), {}), ((["a"], {"b": 1}), {}),
                             ((str(uuid.uuid4()), 0), {}), ((str(uuid.uuid4()), 10**30), {}),
                             ((), {"job_id": str(uuid.uuid4()), "chunk_no": 0, "priority": 9})]:
            client.send_task("copygen.generate_chunk", args=args, kwargs=kwargs, queue="batch")
        client.send_task("copygen.reconcile", args=(1, 2), queue="batch")
        client.send_task("copygen.fire_promo", args=(), queue="batch")
        client.send_task("copygen.fire_promo", args=("no-such-schedule",), queue="batch")
        # sent last on the same queue, so handled last by the one solo worker
        client.send_task("copygen.submit_job", kwargs={"products": good, "idempotency_key": marker}, queue="batch")
    finally:
        client.close()

    wait_until(lambda: job_by_key(engine, marker), 120, "the marker job")
    assert worker_log.alive()
    # each refused as a whole: recorded under its key, nothing to run, the field at fault named
    refused = {name: job_by_key(engine, key) for name, key in keys.items()}
    assert {name: (row["status"], row["n_items"], [r["field"] for r in row["rejected"]])
            for name, row in refused.items()} == {
        "missing": ("refused", 0, ["products"]), "wrong-type": ("refused", 0, ["products"]),
        "unknown-key": ("refused", 0, ["priority"]), "huge-variants": ("refused", 0, ["settings.variants"]),
        "variants-as-text": ("refused", 0, ["settings.variants"]),
        "nested-settings": ("refused", 0, ["settings.length"])}
    log = worker_log.log()
    for says in ("products: missing", "products: expected a list of product objects, got text",
                 "priority: unknown payload key", "settings.variants: must be from 1 to 10 (COPYGEN_MAX_VARIANTS)",
                 "settings.length"):
        assert says in log, says

    accepted = job_by_key(engine, rows_key)
    assert accepted["n_items"] == 1
    assert [(r["row"], r["field"]) for r in accepted["rejected"]] == [(2, "external_id"), (3, "attributes")]
    assert "1000 characters long; the maximum is 200" in accepted["rejected"][0]["reason"]
    assert wait_for_job(engine, accepted["id"], poll=0.5, timeout=60)["status"] == "done"


@pytest.mark.integration
def test_no_password_reaches_the_logs_of_the_worker_beat_or_cli(conf, settings, engine, tls_broker, worker_log,
                                                                   tmp_path):
    from copygen.catalogue import JobSettings
    from worker.submit import submit, wait_for_job

    env = copygen_env(**conf)
    job_id = submit(catalogue(2, prefix="PW"), JobSettings(variants=1, length="short"), settings=settings).job_id
    assert wait_for_job(engine, job_id, poll=0.5, timeout=90)["status"] == "done"
    tls_broker.restart(down_for=1)  # the worker's reconnection messages name the broker
    beat = beat_process(env, tmp_path / "beat.log", tmp_path / "beat-schedule").start()
    beat.stop(timeout=30)
    outputs = {
        "status": copygen_cli("status", job_id, env=env),
        "status --json": copygen_cli("status", job_id, "--json", env=env),
        "status of no job": copygen_cli("status", "no-such-job", env=env),
        "reconcile": copygen_cli("reconcile", env=env),
        "migrate": copygen_cli("migrate", env=env),
    }
    after = submit(catalogue(2, prefix="PW-AFTER"), JobSettings(variants=1, length="short"), settings=settings)
    assert wait_for_job(engine, after.job_id, poll=0.5, timeout=90)["status"] == "done"  # reconnected

    texts = {"worker log": worker_log.log(), "beat log": beat.log()}
    texts.update({f"copygen {name}": done.stdout + done.stderr for name, done in outputs.items()})
    for name, text in texts.items():
        assert REDIS_PASSWORD not in text and PG_PASSWORD not in text, f"a password in the {name}"
    assert "rediss://:**@127.0.0.1" in texts["worker log"]  # the URLs are there, masked
    assert "rediss://:**@127.0.0.1" in texts["beat log"]
    assert outputs["migrate"].returncode == 0 and ":***@127.0.0.1" in outputs["migrate"].stdout


# -- the campaign tools' role ----------------------------------------------------------------------


@pytest.mark.integration
def test_the_campaign_role_reads_the_copy_views_and_cannot_write_or_read_the_tables(pg_url):
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from db.chunks import claim_chunk, mark_chunk_done
    from db.engine import make_engine, session_scope, upgrade
    from db.jobs import create_job
    from db.variants import upsert_variants

    psql = require_binary("psql")
    upgrade(pg_url)
    owner = make_engine(pg_url)
    with session_scope(owner) as s:
        job_id, _ = create_job(s, products=[{"external_id": "SKU-1", "title": "衬衫"}], settings={"variants": 1},
                               model_version=None, chunk_size=10, queue="batch")
        item = claim_chunk(s, job_id, 0, lease_seconds=60, max_attempts=3)[0]
        upsert_variants(s, [{"job_item_id": item["id"], "variant_no": 1, "text": "一件衬衫", "rank": 1, "score": 1.0,
                             "flags": [], "passed": True, "model_version": "m", "regenerations": 0}])
        mark_chunk_done(s, job_id, 0)

    role = f"campaign_t_{uuid.uuid4().hex[:8]}"
    libpq_url = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    for _ in range(2):  # idempotent
        done = subprocess.run([psql, libpq_url, "-v", f"role={role}", "-f", str(REPO / "scripts/campaign_role.sql")],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
    reader = create_engine(make_url(pg_url).set(username=role))
    try:
        with reader.connect() as conn:
            for view in ("copy_job_variants", "copy_best_variants", "copy_latest_variants"):
                assert conn.execute(text(f"SELECT text FROM {view}")).scalars().all() == ["一件衬衫"]
            assert conn.execute(text("SHOW default_transaction_read_only")).scalar_one() == "on"
        refused = [
            "SELECT * FROM variants", "SELECT * FROM jobs",
            "INSERT INTO promo_runs (schedule, slot) VALUES ('x', 'y')",
            "UPDATE jobs SET status = 'failed'", "DELETE FROM variants", "TRUNCATE chunks",
            "UPDATE copy_job_variants SET text = 'x'", "DROP VIEW copy_best_variants",
            "CREATE TABLE public.mine (i int)", "CREATE VIEW public.mine AS SELECT 1",
        ]
        for statement in refused:
            with reader.connect() as conn:
                conn.execute(text("SET TRANSACTION READ WRITE"))  # what stops it must be the grants alone
                with pytest.raises(DBAPIError) as exc:
                    conn.execute(text(statement))
                # 42501: permission denied / must be owner; 55000: a join view is not updatable anyway
                assert exc.value.orig.sqlstate in ("42501", "55000"), (statement, exc.value.orig)
    finally:
        reader.dispose()
        with owner.connect() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
            conn.commit()
        owner.dispose()
