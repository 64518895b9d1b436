"""What a new user hits first: each path works, or stops with one line that says what to do."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from copygen.catalogue import JobSettings, validate_products
from copygen.cli import main
from copygen.settings import Settings, get_settings
from db.engine import make_engine, session_scope, upgrade
from db.models import Job
from trainer.checkpoint import load_manifest
from trainer.testing import tiny_checkpoint
from worker import runtime
from worker.submit import write_job

REPO = Path(__file__).resolve().parent.parent
UNKNOWN_JOB = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("first-run") / "tiny")


@pytest.fixture
def embedded(tmp_path, monkeypatch, checkpoint):
    monkeypatch.setenv("COPYGEN_DATABASE_URL", f"sqlite:///{tmp_path / 'copy.db'}")
    monkeypatch.setenv("COPYGEN_BROKER_URL", "memory://")
    monkeypatch.setenv("COPYGEN_CHECKPOINT", str(checkpoint))
    monkeypatch.setenv("COPYGEN_REGENERATE_ROUNDS", "0")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    runtime.reset()


def catalogue(path: Path, rows) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "title", "attributes"])
        writer.writerows(rows)
    return path


GOOD = [("A-1", "白色棉衬衫", "类型#上衣*颜色#白色*材质#棉"), ("A-2", "黑色连衣裙", "类型#裙*颜色#黑色")]


def jobs_in(url: str) -> int:
    engine = make_engine(url)
    try:
        if "jobs" not in inspect(engine).get_table_names():
            return 0
        with session_scope(engine) as s:
            return s.execute(select(func.count()).select_from(Job)).scalar_one()
    finally:
        engine.dispose()


def pending_job(url: str, queue: str = "batch") -> str:
    """A job written to SQL and handed to nobody."""
    upgrade(url)
    products, _ = validate_products([{"external_id": "P-1", "title": "白色上衣", "attributes": "类型#上衣"}])
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            job_id, _ = write_job(s, products, JobSettings(variants=1, queue=queue), settings=Settings(database_url=url),
                                  idempotency_key=f"stalled-{uuid.uuid4().hex[:8]}")
        return job_id
    finally:
        engine.dispose()


# -- crashes and dead ends --------------------------------------------------------------------------


@pytest.mark.integration
def test_enqueue_on_an_unmigrated_postgres_stops_with_one_line_naming_copygen_migrate(embedded, pg_url, monkeypatch,
                                                                                       capsys):
    monkeypatch.setenv("COPYGEN_DATABASE_URL", pg_url)
    get_settings.cache_clear()
    assert main(["enqueue", str(catalogue(embedded / "c.csv", GOOD))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("copygen enqueue: the database") and "run `copygen migrate`" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert jobs_in(pg_url) == 0  # migrations stay the operator's decision: nothing was created


def test_a_missing_checkpoint_is_refused_before_anything_is_stored(embedded, monkeypatch, capsys):
    monkeypatch.setenv("COPYGEN_CHECKPOINT", str(embedded / "models" / "demo"))  # run from another folder
    get_settings.cache_clear()
    assert main(["enqueue", str(catalogue(embedded / "c.csv", GOOD)), "--wait"]) == 2
    assert "no such checkpoint directory" in capsys.readouterr().err
    assert jobs_in(os.environ["COPYGEN_DATABASE_URL"]) == 0  # no job left pending forever


def test_follow_gives_up_on_an_in_process_job_that_nothing_runs(embedded, capsys):
    job_id = pending_job(os.environ["COPYGEN_DATABASE_URL"])
    assert main(["status", job_id, "--follow", "--give-up-after", "0.5"]) == 2
    err = capsys.readouterr().err
    assert f"job {job_id} is pending and has not moved for 0.5 s" in err and "copygen reconcile" in err
    assert main(["reconcile"]) == 0  # the advice works: the chunks run here
    assert main(["status", job_id]) == 0 and "done" in capsys.readouterr().out


@pytest.mark.integration
def test_follow_gives_up_when_no_worker_consumes_the_jobs_queue(embedded, redis_url, monkeypatch, capsys):
    monkeypatch.setenv("COPYGEN_BROKER_URL", redis_url)
    get_settings.cache_clear()
    job_id = pending_job(os.environ["COPYGEN_DATABASE_URL"], queue="interactive")
    assert main(["status", job_id, "--follow", "--give-up-after", "0.5"]) == 2
    assert "no worker consumes the queue 'interactive'" in capsys.readouterr().err


def test_the_embedded_mode_serves_its_own_checkpoints_model_version(embedded, checkpoint, capsys):
    name = load_manifest(checkpoint)["name"]
    file = catalogue(embedded / "c.csv", GOOD)
    assert main(["enqueue", str(file), "--variants", "1", "--model-version", name, "--wait", "--quiet"]) == 0
    job_id = capsys.readouterr().out.strip()
    assert main(["export", job_id, "--format", "jsonl", "--out", str(embedded / "o.jsonl")]) == 0
    rows = [json.loads(line) for line in (embedded / "o.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["model_version"] for r in rows} == {name}
    assert main(["enqueue", str(file), "--model-version", "nope"]) == 2
    err = capsys.readouterr().err
    assert f"registered: {name}" in err and "copygen worker --checkpoint" in err


@pytest.mark.parametrize("variants", ["0", "-1", "11"])
def test_generate_takes_the_same_variant_bounds_as_enqueue(checkpoint, capsys, variants):
    assert main(["generate", str(checkpoint), "--attributes", "类型#上衣", "--variants", variants]) == 2
    assert "--variants: need 1 to 10" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["status", UNKNOWN_JOB, "--follow"],
    ["status", UNKNOWN_JOB],
    ["export", UNKNOWN_JOB, "--format", "table"],
    ["enqueue", "no-such-file.csv"],
    ["generate", "no-such-model", "--attributes", "类型#上衣"],
    ["eval", "no-such-model", "--data", "no-such-data.jsonl", "--out", "unused"],
    ["worker", "--queues", "urgent"],
])
def test_a_wrong_argument_is_one_line_and_never_a_traceback(embedded, capsys, argv, monkeypatch):
    monkeypatch.setenv("COPYGEN_BROKER_URL", "redis://127.0.0.1:1/0")  # a worker must not reach it
    get_settings.cache_clear()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"copygen {argv[0]}: ") and "\n" not in err, err


# -- things that mislead ------------------------------------------------------------------------------


def test_a_reused_idempotency_key_shows_the_jobs_own_settings_and_runs_nothing(embedded, capsys, monkeypatch):
    file = catalogue(embedded / "c.csv", GOOD)
    key = ["--idempotency-key", "spring-cli-0001"]
    assert main(["enqueue", str(file), "--variants", "1", *key]) == 0
    first = capsys.readouterr().out.strip()

    def no_model(*_args, **_kwargs):
        raise AssertionError("a repeated submission must not load a model")

    monkeypatch.setattr("trainer.generation.Generator.load", no_model)
    runtime.reset()
    assert main(["enqueue", str(file), "--variants", "5", *key]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == first
    assert f"job {first} already exists under idempotency key 'spring-cli-0001': 2 products, variants=1" in err
    assert "variants 5 (job: 1)" in err and "5 variants" not in err


def test_status_shows_why_rows_were_rejected_and_enqueue_lists_them_once(embedded, tmp_path):
    bad = [(f"B-{i}", "衬衫", "类型#上衣*颜色") for i in range(7)]
    file = catalogue(tmp_path / "c.csv", GOOD + bad)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    code = "import sys; from copygen.cli import main; sys.exit(main(sys.argv[1:]))"

    def run(*args):
        return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300, check=False)

    enqueued = run("enqueue", str(file), "--variants", "1", "--quiet")
    assert enqueued.returncode == 0, enqueued.stderr
    assert enqueued.stderr.count("row 3: field 'attributes'") == 1  # once, not again as a log line
    assert " INFO " not in enqueued.stderr  # --quiet
    job_id = enqueued.stdout.strip()

    shown = run("status", job_id)
    assert "rejected: row 3, field 'attributes'" in shown.stdout
    assert "and 2 more rejected rows" in shown.stdout and f"copygen status {job_id} --json" in shown.stdout
    as_json = json.loads(run("status", job_id, "--json").stdout)
    assert len(as_json["rejections"]) == 7 and as_json["rejections"][0]["field"] == "attributes"


def test_jsonl_export_keeps_flags_as_an_array_and_a_table_goes_to_out(embedded, capsys):
    file = catalogue(embedded / "c.csv", GOOD)
    assert main(["enqueue", str(file), "--variants", "2", "--length", "short", "--quiet"]) == 0
    job_id = capsys.readouterr().out.strip()
    assert main(["export", job_id, "--format", "jsonl", "--out", str(embedded / "o.jsonl")]) == 0
    rows = [json.loads(line) for line in (embedded / "o.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows and all(isinstance(r["flags"], list) for r in rows)
    assert main(["export", job_id, "--format", "table", "--out", str(embedded / "copy.txt")]) == 0
    assert capsys.readouterr().out == ""
    table = (embedded / "copy.txt").read_text(encoding="utf-8")
    assert "A-1  白色棉衬衫" in table and all(r["text"] in table for r in rows)


def test_follow_gives_up_on_an_in_process_job_whose_process_died_mid_chunk(embedded, capsys):
    from datetime import timedelta

    from db.chunks import claim_chunk
    from db.models import utcnow

    url = os.environ["COPYGEN_DATABASE_URL"]
    job_id = pending_job(url)
    engine = make_engine(url)
    with session_scope(engine) as s:  # claimed by a process that was then killed: its lease has lapsed
        claim_chunk(s, job_id, 0, lease_seconds=60, max_attempts=3, now=utcnow() - timedelta(hours=1))
    engine.dispose()
    assert main(["status", job_id, "--follow", "--give-up-after", "0.5"]) == 2
    assert "no process is running this job" in capsys.readouterr().err


def test_a_bad_setting_in_the_environment_is_one_line_naming_the_variable(embedded, monkeypatch, capsys):
    monkeypatch.setenv("COPYGEN_CHUNK_SIZE", "lots")
    get_settings.cache_clear()
    assert main(["status", UNKNOWN_JOB]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("copygen status: bad setting: COPYGEN_CHUNK_SIZE:") and "\n" not in err


def test_beat_refuses_the_embedded_broker_that_no_worker_reads(embedded, capsys):
    assert main(["beat"]) == 2
    assert "memory://" in capsys.readouterr().err


def test_a_database_migrated_by_a_newer_copygen_says_so_rather_than_crashing(embedded, capsys):
    from sqlalchemy import text

    url = os.environ["COPYGEN_DATABASE_URL"]
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    assert main(["status", UNKNOWN_JOB]) == 2
    err = capsys.readouterr().err
    assert "9999_from_the_future" in err and "newer copygen" in err and "Traceback" not in err
