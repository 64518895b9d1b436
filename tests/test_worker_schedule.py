"""Promo schedules: the file format, the slot of a firing, and one job per (schedule, slot)."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from copygen.catalogue import CatalogueError
from copygen.settings import Settings
from db.engine import make_engine, session_scope, upgrade
from db.jobs import get_job, job_chunks
from db.promo import get_promo_run
from worker import runtime
from worker.celery_app import create_app
from worker.reconcile import queue_depth
from worker.schedule import (
    ScheduleError,
    current_slot,
    fire_promo,
    latest_fire,
    load_schedules,
    promo_idempotency_key,
)

CATALOGUE = "external_id,title,attributes\nA1,白色上衣,类型#上衣*颜色#白色\nA2,黑色长裙,类型#裙*颜色#黑色\n,没有编号,\n"


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_a_schedule_file_gives_named_cron_entries_with_catalogue_paths_beside_the_file(tmp_path):
    path = write(tmp_path / "promo.yaml",
                 "- name: double11\n  cron: '0 2 * * *'\n  catalogue: cat/d11.csv\n"
                 "  settings: {variants: 2, length: short, opening: 双11狂欢，}\n")
    [schedule] = load_schedules(path, max_variants=10)
    assert schedule.name == "double11"
    assert schedule.cron == "0 2 * * *"
    assert schedule.catalogue == tmp_path / "cat" / "d11.csv"
    assert schedule.settings == {"variants": 2, "length": "short", "opening": "双11狂欢，"}
    assert schedule.timezone == "UTC"


@pytest.mark.parametrize("text, fragment", [
    ("- {name: a, cron: '0 2 * *', catalogue: c.csv}\n", "schedule 1 (a): field 'cron'"),
    ("- {name: a, cron: '0 25 * * *', catalogue: c.csv}\n", "schedule 1 (a): field 'cron'"),
    ("- {name: a, cron: '0 2 * * *'}\n", "schedule 1 (a): field 'catalogue'"),
    ("- {name: 'a b', cron: '0 2 * * *', catalogue: c.csv}\n", "schedule 1: field 'name'"),
    ("- {name: a, cron: '0 2 * * *', catalogue: c.csv}\n- {name: a, cron: '0 3 * * *', catalogue: c.csv}\n",
     "schedule 2 (a): field 'name': duplicate"),
    ("- {name: a, cron: '0 2 * * *', catalogue: c.csv, when: now}\n", "schedule 1: unknown field(s) when"),
    ("- {name: a, cron: '0 2 * * *', catalogue: c.csv, settings: {variants: 99}}\n",
     "schedule 1 (a): field 'settings': variants"),
    ("timezone: Mars/Olympus\nschedules: []\n", "field 'timezone'"),
    ("name: [unclosed\n", "not valid YAML"),
])
def test_a_bad_schedule_file_is_refused_naming_the_entry_and_field(tmp_path, text, fragment):
    path = write(tmp_path / "promo.yaml", text)
    with pytest.raises(ScheduleError) as caught:
        load_schedules(path, max_variants=10)
    assert str(caught.value).startswith(str(path))
    assert fragment in str(caught.value)


def test_the_slot_is_the_latest_firing_at_or_before_now_to_the_minute():
    now = datetime(2025, 11, 11, 2, 7, 31, tzinfo=timezone.utc)
    assert latest_fire("0 2 * * *", now) == datetime(2025, 11, 11, 2, 0, tzinfo=timezone.utc)
    assert latest_fire("0 3 * * *", now) == datetime(2025, 11, 10, 3, 0, tzinfo=timezone.utc)
    assert latest_fire("*/15 * * * *", now) == datetime(2025, 11, 11, 2, 0, tzinfo=timezone.utc)
    # 2025-11-11 is a Tuesday; day of month and day of week must both match, as in Celery's crontab
    assert latest_fire("0 9 * * 1", now) == datetime(2025, 11, 10, 9, 0, tzinfo=timezone.utc)
    assert latest_fire("0 0 11 11 *", now) == datetime(2025, 11, 11, 0, 0, tzinfo=timezone.utc)


def test_a_firing_and_its_late_double_share_one_slot_key_in_the_schedules_timezone(tmp_path):
    path = write(tmp_path / "promo.yaml",
                 "timezone: Asia/Shanghai\nschedules:\n  - {name: n, cron: '0 2 * * *', catalogue: c.csv}\n")
    [schedule] = load_schedules(path)
    on_time = datetime(2025, 11, 11, 2, 0, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    late = datetime(2025, 11, 10, 18, 9, 0, tzinfo=timezone.utc)  # 02:09 in Shanghai
    assert current_slot(schedule, on_time) == current_slot(schedule, late) == "2025-11-11T02:00"
    assert promo_idempotency_key("n", "2025-11-11T02:00") == "promo:n:2025-11-11T02:00"


@pytest.fixture
def promo_env(tmp_path, sqlite_url):
    upgrade(sqlite_url)
    write(tmp_path / "cat.csv", CATALOGUE)
    schedule = write(tmp_path / "promo.yaml",
                     "- {name: nightly, cron: '0 2 * * *', catalogue: cat.csv, settings: {variants: 2}}\n")
    settings = Settings(database_url=sqlite_url, broker_url="redis://unused.invalid:6379/0",
                        schedule_file=schedule, chunk_size=1)
    app = create_app(Settings(broker_url="memory://", database_url=sqlite_url))  # kombu's in-process broker
    with app.connection_for_write() as conn:  # kombu's in-memory broker lives as long as the process
        for queue in ("batch", "interactive"):
            conn.default_channel.queue_purge(queue)
    engine = make_engine(sqlite_url)
    yield engine, app, settings
    engine.dispose()
    runtime.reset()


def test_firing_a_slot_twice_creates_one_job_and_enqueues_its_chunks_once(promo_env):
    engine, app, settings = promo_env
    first = fire_promo(runtime.current(), app, settings, "nightly", "2025-11-11T02:00")
    second = fire_promo(runtime.current(), app, settings, "nightly", "2025-11-11T02:00")
    assert first == second
    with session_scope(engine) as s:
        job = get_job(s, first)
        assert job["idempotency_key"] == "promo:nightly:2025-11-11T02:00"
        assert job["n_items"] == 2 and len(job["rejected"]) == 1  # the row without an id is reported
        assert job["settings"]["variants"] == 2
        assert get_promo_run(s, "nightly", "2025-11-11T02:00")["job_id"] == first
        assert len(job_chunks(s, first)) == 2
    assert queue_depth(app, "batch") == 2  # one message per chunk, none from the double fire


def test_the_next_slot_creates_a_new_job(promo_env):
    _engine, app, settings = promo_env
    assert (fire_promo(runtime.current(), app, settings, "nightly", "2025-11-11T02:00")
            != fire_promo(runtime.current(), app, settings, "nightly", "2025-11-12T02:00"))


def test_firing_an_unknown_schedule_names_it(promo_env):
    _engine, app, settings = promo_env
    with pytest.raises(ScheduleError, match="no schedule named 'weekly'"):
        fire_promo(runtime.current(), app, settings, "weekly", "2025-11-11T02:00")


def test_a_promo_catalogue_larger_than_the_job_limit_is_refused_and_stores_no_job(promo_env):
    engine, app, settings = promo_env
    small = settings.model_copy(update={"max_products": 1})
    with pytest.raises(CatalogueError, match="COPYGEN_MAX_PRODUCTS"):
        fire_promo(runtime.current(), app, small, "nightly", "2025-11-11T02:00")
    with session_scope(engine) as s:
        assert get_promo_run(s, "nightly", "2025-11-11T02:00") is None  # the slot is free to fire again
    assert queue_depth(app, "batch") == 0
