"""The Celery app's configuration: JSON only, late ack, prefetch 1, no results, queues, beat."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.exceptions import ContentDisallowed

from copygen.settings import Settings
from worker.celery_app import create_app, run_beat, worker_argv
from worker.config import celery_config
from worker.schedule import PromoScheduler, ScheduleError

REPO = Path(__file__).resolve().parent.parent
TASK_NAMES = {"copygen.generate_chunk", "copygen.submit_job", "copygen.reconcile", "copygen.fire_promo"}


def settings(**overrides) -> Settings:
    return Settings(broker_url="memory://", database_url="sqlite://", **overrides)


def test_the_app_speaks_json_only_and_stores_no_results():
    conf = create_app(settings()).conf
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.task_ignore_result is True
    assert conf.result_backend is None


def test_the_app_acknowledges_late_with_prefetch_one_and_time_limits_from_settings():
    conf = create_app(settings(visibility_timeout=7200, task_soft_time_limit=600, task_time_limit=660)).conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == 7200
    assert (conf.task_soft_time_limit, conf.task_time_limit) == (600, 660)
    assert conf.broker_connection_retry_on_startup is True
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is True


def test_the_app_has_interactive_batch_and_celerys_default_queue_and_the_four_named_tasks():
    app = create_app(settings())
    assert {q.name for q in app.conf.task_queues} == {"interactive", "batch", "celery"}
    assert app.conf.task_default_queue == "batch"
    app.loader.import_default_modules()  # what a starting worker does with the app's include=[...]
    assert TASK_NAMES <= set(app.tasks)
    for name in TASK_NAMES:
        assert app.tasks[name].ignore_result is True


def test_a_visibility_timeout_shorter_than_the_hard_time_limit_is_refused_by_name():
    with pytest.raises(ValueError, match="COPYGEN_VISIBILITY_TIMEOUT"):
        celery_config(settings(visibility_timeout=600, task_soft_time_limit=500, task_time_limit=700))


def test_a_soft_time_limit_above_the_hard_one_is_refused_by_name():
    with pytest.raises(ValueError, match="COPYGEN_TASK_SOFT_TIME_LIMIT"):
        celery_config(settings(task_soft_time_limit=900, task_time_limit=800))


def test_beat_runs_the_reconciler_every_reconcile_seconds():
    entry = create_app(settings(reconcile_seconds=45)).conf.beat_schedule["copygen.reconcile"]
    assert entry["task"] == "copygen.reconcile"
    assert entry["schedule"] == 45.0


def test_beat_adds_one_entry_per_promo_schedule_in_the_files_timezone(tmp_path):
    schedule = tmp_path / "promo.yaml"
    schedule.write_text(
        "timezone: Asia/Shanghai\n"
        "schedules:\n"
        "  - {name: nightly, cron: '0 2 * * *', catalogue: c.csv, settings: {variants: 2}}\n"
        "  - {name: weekly, cron: '30 9 * * 1', catalogue: c.csv}\n",
        encoding="utf-8",
    )
    app = create_app(settings(schedule_file=schedule))
    beat = PromoScheduler(app=app, schedule_filename=str(tmp_path / "beat-state"))
    assert str(app.timezone) == "Asia/Shanghai"
    nightly = beat.schedule["promo:nightly"]
    assert nightly.task == "copygen.fire_promo" and tuple(nightly.args) == ("nightly",)
    assert nightly.schedule.hour == {2} and nightly.schedule.minute == {0}
    assert beat.schedule["promo:weekly"].schedule.day_of_week == {1}
    assert "copygen.reconcile" in beat.schedule
    beat.close()


def test_a_bad_schedule_file_stops_beat_but_not_workers_or_submissions(tmp_path):
    schedule = tmp_path / "promo.yaml"
    schedule.write_text("- {name: nightly, cron: 'every night', catalogue: c.csv}\n", encoding="utf-8")
    app = create_app(settings(schedule_file=schedule))
    assert app.conf.task_default_queue == "batch"  # the app a worker or a submission uses is configured
    with pytest.raises(ScheduleError, match="schedule 1 \\(nightly\\): field 'cron'"):
        PromoScheduler(app=app, schedule_filename=str(tmp_path / "beat-state"))


def test_beat_keeps_its_state_under_var_not_in_the_working_directory(monkeypatch, tmp_path):
    started = []
    monkeypatch.setattr("celery.Celery.start", lambda app, argv=None: started.append(argv))
    run_beat(settings(beat_state=tmp_path / "var" / "beat-state").model_copy(
        update={"broker_url": "redis://127.0.0.1:1/0"}))  # never reached: start() is replaced
    assert started == [["beat", "--loglevel=INFO", f"--schedule={tmp_path / 'var' / 'beat-state'}"]]
    assert (tmp_path / "var").is_dir()
    assert Settings().beat_state == Path("var/celerybeat-schedule")


def test_a_pickled_message_is_refused_and_a_json_one_accepted():
    """What the worker's consumer does with accept_content=["json"], on kombu's in-memory broker."""
    accept = create_app(settings()).conf.accept_content
    # a queue of its own: kombu's in-memory broker lives as long as the process, and other tests'
    # chunk messages may still wait on "batch"
    queue = Queue("accept-check", Exchange("accept-check"), routing_key="accept-check")
    received, refused = [], []
    with Connection("memory://") as conn:
        producer = Producer(conn)
        body = {"job_id": "j", "chunk_no": 0}
        producer.publish(pickle.dumps(body), exchange=queue.exchange, routing_key="accept-check", declare=[queue],
                         content_type="application/x-python-serialize", content_encoding="binary")
        producer.publish(body, exchange=queue.exchange, routing_key="accept-check", serializer="json", declare=[queue])
        with Consumer(conn, [queue], accept=accept, callbacks=[lambda b, m: received.append(b)],
                      on_decode_error=lambda m, exc: refused.append(exc)):
            for _ in range(2):
                try:
                    conn.drain_events(timeout=1)
                except ContentDisallowed as exc:  # older kombu raises instead of calling back
                    refused.append(exc)
    assert received == [body]
    assert len(refused) == 1 and isinstance(refused[0], ContentDisallowed)


def test_importing_the_celery_module_reads_no_settings_and_loads_no_model():
    env = {**os.environ, "COPYGEN_CHUNK_SIZE": "not-a-number"}  # reading settings would fail
    code = (
        "import sys, worker.celery_app as m\n"
        "assert m.app.configured is False\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
        "try:\n"
        "    m.app.conf.broker_url\n"
        "except Exception as exc:\n"
        "    print('settings read on first use:', type(exc).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "settings read on first use: ValidationError" in done.stdout


def test_the_worker_command_line_is_solo_one_process_on_every_queue_by_default():
    argv = worker_argv()
    assert "--pool=solo" in argv and "--concurrency=1" in argv and "--queues=batch,interactive,celery" in argv
    assert "--queues=batch" in worker_argv(queues="batch")
    with pytest.raises(ValueError, match="unknown queue"):
        worker_argv(queues="batch,urgent")


def test_concurrency_above_one_runs_that_many_prefork_processes():
    argv = worker_argv(concurrency=3)
    assert "--pool=prefork" in argv and "--concurrency=3" in argv
    with pytest.raises(ValueError, match="--concurrency"):
        worker_argv(concurrency=0)


def test_a_worker_whose_checkpoint_is_missing_refuses_to_start_with_one_line(tmp_path):
    env = {**os.environ, "COPYGEN_BROKER_URL": "redis://127.0.0.1:1/0",  # never reached
           "COPYGEN_CHECKPOINT": str(tmp_path / "no-such-model")}
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "--pool=solo", "--loglevel=INFO"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if "cannot start" in line]
    assert lines == [f"copygen worker cannot start: {tmp_path / 'no-such-model'}: no such checkpoint directory"]


def test_a_worker_whose_score_weights_file_is_unusable_refuses_to_start_with_one_line(tmp_path):
    from trainer.testing import tiny_checkpoint

    weights = tmp_path / "weights.json"
    weights.write_text('{"format": "copygen.score_weights", "version": 1, "weights": {"coverage": 2}}', encoding="utf-8")
    env = {**os.environ, "COPYGEN_BROKER_URL": "redis://127.0.0.1:1/0",  # never reached
           "COPYGEN_CHECKPOINT": str(tiny_checkpoint(tmp_path / "tiny")), "COPYGEN_SCORE_WEIGHTS": str(weights),
           "COPYGEN_DATABASE_URL": f"sqlite:///{tmp_path / 'copy.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "--pool=solo", "--loglevel=INFO"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if "cannot start" in line]
    assert lines == [(f"copygen worker cannot start: COPYGEN_SCORE_WEIGHTS: score weights {weights}: "
                      "'weights' must give exactly coverage, fluency, agreement, length, distinct, varied")]


def test_a_worker_whose_model_name_belongs_to_another_model_refuses_to_start(tmp_path):
    from db.engine import make_engine, session_scope, upgrade
    from db.model_versions import register_model_version
    from trainer.checkpoint import load_manifest
    from trainer.testing import tiny_checkpoint

    checkpoint = tiny_checkpoint(tmp_path / "tiny")
    url = f"sqlite:///{tmp_path / 'copy.db'}"
    upgrade(url)
    engine = make_engine(url)
    name = load_manifest(checkpoint)["name"]
    with session_scope(engine) as s:  # the same name, registered by a different model
        register_model_version(s, name, "/elsewhere", {"name": name, "data": "something else"})
    engine.dispose()
    env = {**os.environ, "COPYGEN_BROKER_URL": "redis://127.0.0.1:1/0", "COPYGEN_CHECKPOINT": str(checkpoint),
           "COPYGEN_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "--pool=solo", "--loglevel=INFO"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if "cannot start" in line]
    assert len(lines) == 1 and f"model version {name!r} is already registered with a different manifest" in lines[0]
