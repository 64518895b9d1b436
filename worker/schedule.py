"""Promo schedules: a file of cron entries that Celery beat turns into promo jobs.

The schedule file is YAML (or JSON, which is YAML) holding a list of entries, or a mapping with a
`timezone` and a `schedules` list::

    timezone: Asia/Shanghai          # optional; cron times are read in it (default UTC)
    schedules:
      - name: double11-nightly        # letters, digits, - _ . ; unique in the file
        cron: "0 2 * * *"             # minute hour day-of-month month day-of-week
        catalogue: catalogues/double11.csv   # relative paths are relative to the schedule file
        settings: {variants: 3, length: short, opening: "双11狂欢，", campaign: double11}

Each firing is keyed by (schedule, slot), where the slot is the time the cron expression fired,
to the minute, in the schedule's timezone ("2025-11-11T02:00"). The job is submitted with the
idempotency key ``promo:<schedule>:<slot>``, so two beat processes, a double fire or a rerun of
the same slot create one job.

Beat sends the task with the schedule name only; the task works out its slot as the latest time
at or before now at which the cron expression fires (a message delayed in the queue still lands
on its own slot unless it is delayed past the next firing). A manual rerun may pass the slot.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from celery import Celery
from celery.beat import PersistentScheduler
from celery.schedules import ParseException, crontab

from copygen.catalogue import SettingsError, read_catalogue, validate_settings
from copygen.settings import Settings, get_settings
from db.engine import session_scope
from db.jobs import job_chunks
from db.promo import claim_promo_slot, get_promo_run, set_promo_job
from worker import metrics, runtime
from worker.config import DEFAULT_QUEUE, FIRE_PROMO
from worker.dispatch import start_chunks
from worker.submit import accept_products, prepare, write_job

log = logging.getLogger(__name__)

SLOT_FORMAT = "%Y-%m-%dT%H:%M"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_LOOKBACK_DAYS = 366 * 5  # long enough for any cron that fires at all (29 Feb fires every 4 years)


class ScheduleError(ValueError):
    """A schedule file that cannot be used; the message names the file, the entry and the field."""


@dataclass(frozen=True)
class PromoSchedule:
    name: str
    cron: str
    catalogue: Path
    settings: dict = field(default_factory=dict)
    timezone: str = "UTC"

    def crontab(self, app: Celery | None = None) -> crontab:
        return crontab_from_string(self.cron, app)

    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def crontab_from_string(expression: str, app: Celery | None = None) -> crontab:
    """celery.schedules.crontab from a 5-field cron expression; ValueError names what is wrong."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"cron expression needs 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        return crontab(minute=minute, hour=hour, day_of_month=day_of_month,
                       month_of_year=month_of_year, day_of_week=day_of_week, app=app)
    except (ValueError, ParseException) as exc:
        raise ValueError(f"cron expression {expression!r} is invalid ({exc})") from None


def load_schedules(path: str | Path, max_variants: int | None = None) -> list[PromoSchedule]:
    """The schedules of a schedule file, validated; ScheduleError names file, entry and field.

    With max_variants, each entry's settings are validated as job settings too.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScheduleError(f"{path}: cannot read the schedule file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ScheduleError(f"{path}: the schedule file is not UTF-8") from None
    except yaml.YAMLError as exc:
        raise ScheduleError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    zone = "UTC"
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"timezone", "schedules"}
        if unknown:
            raise ScheduleError(f"{path}: unknown top-level key(s) {', '.join(sorted(map(str, unknown)))}")
        zone = raw.get("timezone") or "UTC"
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(f"{path}: field 'timezone': unknown time zone {zone!r}") from None
        raw = raw.get("schedules") or []
    if not isinstance(raw, list):
        raise ScheduleError(f"{path}: expected a list of schedules, got {type(raw).__name__}")
    schedules: list[PromoSchedule] = []
    seen: set[str] = set()
    for n, entry in enumerate(raw, start=1):
        where = f"{path}: schedule {n}"
        if not isinstance(entry, Mapping):
            raise ScheduleError(f"{where}: expected a mapping with name, cron, catalogue, settings")
        unknown = set(entry) - {"name", "cron", "catalogue", "settings"}
        if unknown:
            raise ScheduleError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        name = entry.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ScheduleError(f"{where}: field 'name': need 1-100 letters, digits, '-', '_' or '.', got {name!r}")
        where = f"{path}: schedule {n} ({name})"
        if name in seen:
            raise ScheduleError(f"{where}: field 'name': duplicate schedule name")
        seen.add(name)
        cron = entry.get("cron")
        if not isinstance(cron, str):
            raise ScheduleError(f"{where}: field 'cron': need a cron expression string like \"0 2 * * *\"")
        try:
            crontab_from_string(cron)
        except ValueError as exc:
            raise ScheduleError(f"{where}: field 'cron': {exc}") from None
        catalogue = entry.get("catalogue")
        if not isinstance(catalogue, str) or not catalogue.strip():
            raise ScheduleError(f"{where}: field 'catalogue': need the path of a catalogue file")
        catalogue_path = Path(catalogue).expanduser()
        if not catalogue_path.is_absolute():
            catalogue_path = path.parent / catalogue_path
        settings = entry.get("settings") or {}
        if not isinstance(settings, Mapping):
            raise ScheduleError(f"{where}: field 'settings': need a mapping of job settings")
        if max_variants is not None:
            try:
                validate_settings(settings, max_variants)
            except SettingsError as exc:
                raise ScheduleError(f"{where}: field 'settings': {exc}") from None
        schedules.append(PromoSchedule(name, " ".join(cron.split()), catalogue_path, dict(settings), str(zone)))
    return schedules


def find_schedule(path: str | Path, name: str) -> PromoSchedule:
    for schedule in load_schedules(path):
        if schedule.name == name:
            return schedule
    raise ScheduleError(f"{path}: no schedule named {name!r}")


def beat_entries(schedules: list[PromoSchedule], app: Celery | None = None) -> dict[str, dict[str, Any]]:
    """Celery beat_schedule entries: one per promo schedule, firing copygen.fire_promo(name).

    Beat reads cron fields in the app's timezone; PromoScheduler sets it to the file's timezone.
    """
    return {
        f"promo:{schedule.name}": {
            "task": FIRE_PROMO,
            "schedule": schedule.crontab(app),
            "args": (schedule.name,),
            "options": {"queue": DEFAULT_QUEUE},
        }
        for schedule in schedules
    }


class PromoScheduler(PersistentScheduler):
    """Beat's scheduler: the app's entries (the reconciler) plus the promo schedules of the file.

    The schedule file is read here, when beat starts (a bad file stops beat with a ScheduleError
    naming the entry and field), and by the worker that runs a firing (fire_promo); a worker's
    start and a submission never read it, so a bad file cannot stop them.
    """

    def setup_schedule(self) -> None:
        settings = getattr(self.app, "copygen_settings", None) or get_settings()
        if settings.schedule_file:
            schedules = load_schedules(settings.schedule_file, settings.max_variants)
            # cron fields are read in the app's timezone (a cached property: drop it after the change)
            self.app.conf.timezone = schedules_timezone(schedules)
            self.app.__dict__.pop("timezone", None)
            self.app.conf.beat_schedule = {**self.app.conf.beat_schedule, **beat_entries(schedules, self.app)}
            log.info("promo schedules from %s: %s", settings.schedule_file, ", ".join(s.name for s in schedules))
        super().setup_schedule()


def schedules_timezone(schedules: list[PromoSchedule]) -> str:
    return schedules[0].timezone if schedules else "UTC"


def _cron_weekday(day: datetime) -> int:
    return (day.weekday() + 1) % 7  # cron: 0 = Sunday; Python: 0 = Monday


def latest_fire(cron: str, now: datetime) -> datetime:
    """The latest minute at or before now at which the cron expression fires (now's timezone).

    Day of month and day of week must both match, as in Celery's crontab.
    """
    tab = crontab_from_string(cron)
    minute_now = now.replace(second=0, microsecond=0)
    day = minute_now.replace(hour=0, minute=0)
    for back in range(_LOOKBACK_DAYS):
        date = day - timedelta(days=back)
        if (date.month not in tab.month_of_year or date.day not in tab.day_of_month
                or _cron_weekday(date) not in tab.day_of_week):
            continue
        for hour in sorted(tab.hour, reverse=True):
            for minute in sorted(tab.minute, reverse=True):
                candidate = date.replace(hour=hour, minute=minute)
                if candidate <= minute_now:
                    return candidate
    raise ValueError(f"cron expression {cron!r} has not fired in the last {_LOOKBACK_DAYS} days")


def slot_key(moment: datetime) -> str:
    """The slot string of a firing time: the minute, ISO style, in the schedule's timezone."""
    return moment.strftime(SLOT_FORMAT)


def current_slot(schedule: PromoSchedule, now: datetime | None = None) -> str:
    """The slot of the firing that a task running at `now` belongs to."""
    zone = schedule.tz()
    now = (now or datetime.now(timezone.utc)).astimezone(zone)
    return slot_key(latest_fire(schedule.cron, now))


def slot_now(settings: Settings, name: str) -> str:
    """The slot a firing of schedule `name` that runs now belongs to."""
    if settings.schedule_file is None:
        raise ScheduleError(f"fire_promo {name}: COPYGEN_SCHEDULE_FILE is not set (workers read it when a promo fires)")
    return current_slot(find_schedule(settings.schedule_file, name))


def promo_idempotency_key(schedule: str, slot: str) -> str:
    return f"promo:{schedule}:{slot}"


def fire_promo(rt: runtime.Runtime, app: Celery | None, settings: Settings, name: str, slot: str | None = None) -> str:
    """Create the promo job of (schedule, slot), once; return its id (the existing one on a double fire).

    The slot claim, the job and its items and the link between them are written in one
    transaction: two firings of one slot create one job (the second waits for the first's commit,
    then finds the slot taken), and a firing that fails leaves the slot free to fire again. The
    job is checked and dispatched as any submission is (worker.submit, worker.dispatch).
    """
    slot = slot or slot_now(settings, name)
    schedule = find_schedule(settings.schedule_file, name)
    engine = prepare(rt, settings)  # the schema; in-process, the checkpoint
    with session_scope(engine) as s:
        fired = get_promo_run(s, name, slot)
    if fired is not None and fired["job_id"] is not None:
        log.info("promo %s slot %s already fired: job %s", name, slot, fired["job_id"])
        return fired["job_id"]

    job = validate_settings(schedule.settings, settings.max_variants)
    source = str(schedule.catalogue)
    products, errors = accept_products(*read_catalogue(schedule.catalogue), source=source)
    with session_scope(engine) as s:
        if not claim_promo_slot(s, name, slot):
            job_id = get_promo_run(s, name, slot)["job_id"]
            log.info("promo %s slot %s fired concurrently elsewhere: job %s", name, slot, job_id)
            return job_id
        job_id, created = write_job(s, products, job, settings=settings, source=source,
                                    idempotency_key=promo_idempotency_key(name, slot), rejected=errors)
        set_promo_job(s, name, slot, job_id)
        chunk_nos = job_chunks(s, job_id)
    log.info("promo %s slot %s: job %s, %d products (%d rows rejected)", name, slot, job_id, len(products),
             len({e.row for e in errors}))
    if created:
        start_chunks(rt, settings, job_id, chunk_nos, queue=job.queue, model_version=job.model_version, app=app)
        if (m := metrics.active()) is not None:
            m.promo_jobs.labels(name).inc()
    return job_id
