"""Running copygen as a service: refusals a plain client reads in SQL, a worker's /metrics, `copygen
health`, and the pace of a job, against a real worker on a private Redis and a fresh PostgreSQL
database (fault_fixtures).

One worker, serving metrics on a port of its own, lives as long as the module. Nothing is timed:
tests wait for a row in SQL, a line in the worker's log or a counter in its /metrics.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid

import pytest
from helpers_worker import (
    catalogue,
    copygen_cli,
    copygen_env,
    free_port,
    fresh_database,
    wait_until,
    write_job,
)

pytest_plugins = ["fault_fixtures"]
pytestmark = pytest.mark.integration

PROMO = "svc-promo"


@pytest.fixture(scope="module")
def conf_overrides(tmp_path_factory):
    from trainer.testing import tiny_checkpoint

    checkpoint = tmp_path_factory.getbasetemp() / "tiny-checkpoint"
    if not (checkpoint / "copygen.json").is_file():
        tiny_checkpoint(checkpoint)
    folder = tmp_path_factory.mktemp("promo")
    with (folder / "promo.jsonl").open("w", encoding="utf-8") as f:
        for row in catalogue(2, prefix="PRM"):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    schedule = folder / "promo.yaml"
    schedule.write_text(f"- name: {PROMO}\n  cron: '0 2 * * *'\n  catalogue: promo.jsonl\n"
                        "  settings: {variants: 1, length: short}\n", encoding="utf-8")
    return {"checkpoint": checkpoint, "metrics_port": free_port(), "schedule_file": schedule,
            "reconcile_seconds": 5}


@pytest.fixture(scope="module")
def worker(module_fleet, env):
    # regeneration on (FAST_ENV turns it off), so copygen_regenerations_total has something to count
    return module_fleet.worker("svc", COPYGEN_REGENERATE_ROUNDS="1")


# -- helpers --------------------------------------------------------------------------------------


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    """Every sample of the worker's /metrics, fetched over HTTP: (name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def sql(engine, statement: str, **params):
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text(statement), params).all()


def send(broker_url: str, name: str, **options) -> str:
    from celery import Celery

    client = Celery("test-client", broker=broker_url)
    try:
        return client.send_task(name, **options).id
    finally:
        client.close()


# -- 1. refusals a client can read -----------------------------------------------------------------

# A merchant backend that knows nothing of copygen: celery and psycopg only, and the documented query.
PLAIN_CLIENT = r'''
import json, sys, time
import psycopg
from celery import Celery

broker, dsn, cases = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = Celery("merchant-backend", broker=broker)
keys = {}
for name, case in cases.items():
    if case.get("positional"):
        sent = client.send_task("copygen.submit_job", args=[case["payload"]])
    else:
        sent = client.send_task("copygen.submit_job", kwargs=case["payload"])
    keys[name] = case["payload"].get("idempotency_key") or f"task:{sent.id}"
client.close()
found = {}
deadline = time.monotonic() + 240
with psycopg.connect(dsn, autocommit=True) as conn:
    while len(found) < len(keys) and time.monotonic() < deadline:
        for name, key in keys.items():
            row = conn.execute("SELECT status, rejected FROM jobs WHERE idempotency_key = %s", (key,)).fetchone()
            if row is not None:
                found[name] = {"status": row[0], "rejected": row[1]}
        time.sleep(0.2)
ours = sorted(m for m in sys.modules if m.split(".")[0] in ("copygen", "worker", "db", "trainer"))
print(json.dumps({"found": found, "keys": keys, "copygen_modules": ours}))
'''


def test_a_plain_celery_client_finds_each_refused_payload_as_refused_with_its_reason_in_sql(
        conf, worker, tmp_path):
    from sqlalchemy.engine import make_url

    products = catalogue(2, prefix="REF")
    tag = uuid.uuid4().hex[:8]
    cases = {
        "variants": {"payload": {"products": products, "settings": {"variants": 99}, "idempotency_key": f"v-{tag}"}},
        "unknown_key": {"payload": {"products": products, "colour": "red", "idempotency_key": f"u-{tag}"}},
        "not_a_list": {"payload": {"products": "P-1,P-2", "idempotency_key": f"l-{tag}"}},
        "model": {"payload": {"products": products, "settings": {"model_version": "no-such-model"},
                              "idempotency_key": f"m-{tag}"}},
        "every_row_bad": {"payload": {"products": [{"title": "白色上衣"}], "idempotency_key": f"r-{tag}"}},
        "no_key": {"payload": {"products": []}},  # recorded under task:<id>
        "positional": {"payload": {"products": products}, "positional": True},
    }
    dsn = make_url(conf["database_url"]).set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run([sys.executable, "-c", PLAIN_CLIENT, conf["broker_url"], dsn, json.dumps(cases)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["copygen_modules"] == []
    found = result["found"]
    assert set(found) == set(cases), f"no row for {set(cases) - set(found)}:\n{worker.log()[-4000:]}"
    assert {case["status"] for case in found.values()} == {"refused"}
    fields = {name: [r["field"] for r in case["rejected"]] for name, case in found.items()}
    assert fields == {"variants": ["settings.variants"], "unknown_key": ["colour"], "not_a_list": ["products"],
                      "model": ["settings.model_version"], "every_row_bad": ["external_id"],
                      "no_key": ["products"], "positional": ["payload"]}
    # the shape of rejected rows: source, row (None: the payload as a whole), field, reason
    assert found["variants"]["rejected"][0]["row"] is None and "99" in found["variants"]["rejected"][0]["reason"]
    assert found["every_row_bad"]["rejected"][0]["row"] == 1
    assert "no-such-model" in found["model"]["rejected"][0]["reason"]
    assert result["keys"]["no_key"].startswith("task:")


def test_a_valid_submission_under_the_key_of_a_refused_one_is_refused_and_the_first_refusal_stands(
        settings, engine, broker, worker):
    key = f"first-wins-{uuid.uuid4().hex[:8]}"
    products = catalogue(2, prefix="FW")
    send(broker.url, "copygen.submit_job", kwargs={"products": products, "settings": {"variants": 99},
                                                   "idempotency_key": key})
    wait_until(lambda: sql(engine, "SELECT 1 FROM jobs WHERE idempotency_key = :k", k=key), 120, "the refusal row")
    task_id = send(broker.url, "copygen.submit_job", kwargs={"products": products, "idempotency_key": key})
    wait_until(lambda: f"copygen.submit_job {task_id} refused" in worker.log(), 120, "the second submission")
    assert "already names a refused submission" in worker.log()
    rows = sql(engine, "SELECT id, status, n_items, rejected FROM jobs WHERE idempotency_key = :k", k=key)
    assert [(status, n) for _, status, n, _ in rows] == [("refused", 0)]
    assert [r["field"] for r in rows[0][3]] == ["settings.variants"]
    assert sql(engine, "SELECT count(*) FROM job_items WHERE job_id = :j", j=rows[0][0]) == [(0,)]


def test_a_payload_whose_key_cannot_be_a_key_is_logged_with_its_task_id_and_leaves_no_row(engine, broker, worker):
    task_id = send(broker.url, "copygen.submit_job", kwargs={"products": catalogue(1, prefix="BK"),
                                                             "idempotency_key": 12345})
    line = f"copygen.submit_job {task_id} refused, not recorded"
    wait_until(lambda: line in worker.log(), 120, "the worker to log the refusal")
    assert "idempotency_key: expected text or null" in worker.log()
    assert sql(engine, "SELECT count(*) FROM jobs WHERE idempotency_key IN (:a, :b)", a=f"task:{task_id}",
               b="12345") == [(0,)]


# -- 2. metrics -------------------------------------------------------------------------------------


def test_a_scrape_of_the_workers_metrics_after_a_job_shows_the_jobs_counts(settings, engine, conf, worker):
    from worker.submit import submit_job, wait_for_job

    port, n, k = conf["metrics_port"], 7, 2  # chunk_size 3: chunks of 3, 3 and 1 products
    before = scrape(port)
    job_id = submit_job(catalogue(n, prefix="MET"), k, seed=3, settings=settings)
    assert wait_for_job(engine, job_id, poll=0.3, timeout=300)["status"] == "done"
    # the counters move just after the chunk's commit: wait for the third chunk to be counted
    def counted() -> dict | None:
        samples = scrape(port)
        return samples if moved(before, samples, "copygen_chunks_total", outcome="done") >= 3 else None

    after = wait_until(counted, 60, "three done chunks in /metrics")

    rows = sql(engine, "SELECT i.id, v.passed, v.flags, v.regenerations FROM variants v "
                       "JOIN job_items i ON i.id = v.job_item_id WHERE i.job_id = :j", j=job_id)
    assert len(rows) == n * k
    passed = sum(1 for r in rows if r[1])
    families: dict[str, int] = {}
    for r in rows:
        for family in dict.fromkeys(flag.split(":", 1)[0] for flag in r[2]):
            families[family] = families.get(family, 0) + 1
    regenerations = sum({r[0]: r[3] for r in rows}.values())

    assert moved(before, after, "copygen_chunks_total", outcome="done") == 3
    assert moved(before, after, "copygen_chunk_duration_seconds_count", outcome="done") == 3
    assert moved(before, after, "copygen_products_stored_total") == n
    assert moved(before, after, "copygen_variants_stored_total", result="passed") == passed
    assert moved(before, after, "copygen_variants_stored_total", result="flagged") == n * k - passed
    for family, count in families.items():
        assert moved(before, after, "copygen_variants_flagged_total", family=family) == count, family
    assert moved(before, after, "copygen_regenerations_total") == regenerations
    assert moved(before, after, "copygen_tokens_generated_total") >= n * k  # every candidate writes a token
    assert value(after, "copygen_tokens_per_second") > 0
    manifest = json.loads((conf["checkpoint"] / "copygen.json").read_text(encoding="utf-8"))
    assert next(dict(labels) for name, labels in after if name == "copygen_model_info")["version"] == manifest["name"]
    # Celery's task events are on: Flower and celery-exporter need no flags
    assert "task events: ON" in worker.log()


def test_the_reconciler_and_promo_firings_sent_by_beat_are_counted(settings, engine, conf, broker, worker):
    from worker.submit import wait_for_job

    port = conf["metrics_port"]
    before = scrape(port)
    job_id = write_job(engine, settings, 4, variants=1, prefix="REC")  # 2 chunks in SQL, none on the broker
    sql_update = "UPDATE chunks SET updated_at = updated_at - interval '1 day' WHERE job_id = :j"
    with engine.begin() as conn:  # pending for a day: due for the reconciler, with no sleep
        from sqlalchemy import text

        conn.execute(text(sql_update), {"j": job_id})
    send(broker.url, "copygen.reconcile", queue="batch")
    assert wait_for_job(engine, job_id, poll=0.3, timeout=300)["status"] == "done"
    for _ in range(2):  # a double fire of one slot: one job
        send(broker.url, "copygen.fire_promo", args=(PROMO, "2025-11-11T02:00"), queue="batch")
    wait_until(lambda: f"promo {PROMO} slot 2025-11-11T02:00 already fired" in worker.log(), 120, "the second fire")
    after = scrape(port)
    assert moved(before, after, "copygen_reconcile_enqueued_chunks_total") == 2
    assert moved(before, after, "copygen_promo_jobs_fired_total", schedule=PROMO) == 1


# -- 4. pace and the job list ---------------------------------------------------------------------


def test_copygen_status_and_jobs_show_the_pace_and_the_passed_share_of_a_finished_job(settings, engine, env, worker):
    from worker.submit import submit_job, wait_for_job

    job_id = submit_job(catalogue(4, prefix="PACE"), 2, seed=1, campaign="pace-test", settings=settings)
    wait_for_job(engine, job_id, poll=0.3, timeout=300)
    status = copygen_cli("status", job_id, "--json", env=env)
    assert status.returncode == 0, status.stderr
    pace = json.loads(status.stdout)
    assert pace["products_left"] == 0 and pace["eta_seconds"] == 0
    assert pace["products_per_second"] > 0  # finished within the last five minutes

    listed = copygen_cli("jobs", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    mine = [job for job in json.loads(listed.stdout) if job["id"] == job_id]
    [(passed,)] = sql(engine, "SELECT count(*) FROM variants v JOIN job_items i ON i.id = v.job_item_id "
                              "WHERE i.job_id = :j AND v.passed", j=job_id)
    assert [(j["status"], j["n_items"], j["campaign"], j["passed_share"]) for j in mine] == [
        ("done", 4, "pace-test", passed / 8)]
    table = copygen_cli("jobs", env=env)
    assert table.returncode == 0 and job_id in table.stdout and "pace-test" in table.stdout


# -- 3. health --------------------------------------------------------------------------------------


def health(env: dict, *args: str) -> tuple[int, list[str]]:
    done = copygen_cli("health", *args, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout.splitlines()


def test_copygen_health_passes_and_names_the_model_each_worker_serves(env, conf, worker):
    status, lines = health(env)
    assert status == 0, lines
    manifest = json.loads((conf["checkpoint"] / "copygen.json").read_text(encoding="utf-8"))
    workers = [line for line in lines if line.startswith("ok    workers:")]
    assert len(workers) == 3 and all(manifest["name"] in line for line in workers), lines
    report = json.loads(copygen_cli("health", "--json", env=env).stdout)
    assert report["healthy"] is True
    assert [c["name"] for c in report["checks"]] == ["database", "schema", "broker", "workers:batch",
                                                      "workers:interactive", "workers:celery", "checkpoint", "stuck"]


def test_copygen_health_fails_naming_the_database_when_postgresql_is_cut_off(env, conf, pg_proxy, worker):
    through = {**env, "COPYGEN_DATABASE_URL": pg_proxy.url(conf["database_url"])}
    assert health(through, "--check", "database")[0] == 0
    pg_proxy.cut()
    status, lines = health(through)
    assert status == 1
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith("FAIL  database: ") and "unreachable" in failed[0], lines
    assert any(line.startswith("ok    broker:") for line in lines)


def test_copygen_health_fails_naming_a_queue_no_worker_consumes(env, broker, worker):
    from celery import Celery

    client = Celery("operator", broker=broker.url)
    try:
        assert client.control.cancel_consumer("interactive", reply=True, timeout=10)  # the worker answered
        status, lines = health(env, "--check", "workers")
    finally:
        client.control.add_consumer("interactive", reply=True, timeout=10)
        client.close()
    assert status == 1
    assert [line for line in lines if line.startswith("FAIL")] == [
        ("FAIL  workers:interactive: no worker consumes the queue 'interactive' (start one: "
         "`copygen worker --queues interactive`)")], lines
    assert any(line.startswith("ok    workers:batch: 1 worker(s)") for line in lines)


def test_copygen_health_fails_naming_the_schema_one_migration_behind(tmp_path):
    from alembic import command

    from db.engine import alembic_config, head_revision

    with fresh_database("copygen_behind") as url:
        command.downgrade(alembic_config(url), "-1")
        status, lines = health(copygen_env(database_url=url), "--check", "database", "--check", "schema")
    assert status == 1
    assert lines[0].startswith("ok    database:")
    assert lines[1].startswith("FAIL  schema: at migration ") and f"not the latest ({head_revision()})" in lines[1]
    assert "copygen migrate" in lines[1]


def test_copygen_health_fails_naming_jobs_pending_longer_than_the_stuck_hours(tmp_path):
    from sqlalchemy import text

    from copygen.settings import Settings
    from db.engine import make_engine

    with fresh_database("copygen_stuck") as url:
        engine = make_engine(url)
        try:
            job_id = write_job(engine, Settings(database_url=url), 2, variants=1, prefix="STK")
            assert health(copygen_env(database_url=url), "--check", "stuck")[0] == 0
            with engine.begin() as conn:
                conn.execute(text("UPDATE jobs SET created_at = created_at - interval '25 hours' WHERE id = :j"),
                             {"j": job_id})
        finally:
            engine.dispose()
        status, lines = health(copygen_env(database_url=url), "--check", "stuck")
    assert status == 1
    assert lines[0].startswith("FAIL  stuck: 1 job(s) unfinished after 24 h: ") and job_id in lines[0]


def test_copygen_health_fails_naming_a_checkpoint_the_worker_would_refuse(env, tmp_path):
    status, lines = health({**env, "COPYGEN_CHECKPOINT": str(tmp_path)}, "--check", "checkpoint")
    assert status == 1
    assert lines == [f"FAIL  checkpoint: {tmp_path}: not a copygen checkpoint (copygen.json is missing)"]


def test_copygen_health_fails_naming_the_broker_when_redis_is_away(env):
    away = {**env, "COPYGEN_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    status, lines = health(away, "--check", "broker", "--check", "workers")
    assert status == 1
    assert len(lines) == 1 and lines[0].startswith("FAIL  broker: ") and "unreachable" in lines[0]
