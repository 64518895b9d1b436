"""Soak: N jobs x M products through real workers while workers are SIGKILLed and Redis restarts.

    .venv/bin/python bench/soak.py --jobs 4 --products 60 --variants 2 --workers 2 --kills 3 --redis-restarts 1

What it runs, all on 127.0.0.1 and all its own: a redis-server on a free port (nothing on disk),
a new PostgreSQL database on 127.0.0.1:5432 (dropped at the end; --keep keeps it), W `celery
worker` processes (solo pool, as `copygen worker` runs) and one `celery beat` running the
reconciler every 5 s. It submits every job, then, while they run, SIGKILLs a random worker at
random moments (starting a replacement each time) and kills Redis once and starts it again empty
on the same port. Then it waits for every job to finish and counts, in SQL:

    accepted    products in the jobs
    stored      variants stored
    lost        variant slots (product x 1..k) with no variant: must be 0
    duplicated  variant slots stored more than once, or outside 1..k: must be 0

and, per fault, the time until the next chunk was stored ("recovered in"), plus the time from the
last fault until every job had finished. Exit status 0 when lost = duplicated = 0 and every job
finished in time. Bounded: at most 50 jobs x 5,000 products, and --timeout seconds (default 600).
Its folder (worker, beat and Redis logs) is removed after a clean run and kept after a failure.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HOST = "127.0.0.1"  # every connection this script makes or configures goes here
PG_ADMIN_URL = f"postgresql+psycopg://postgres@{HOST}:5432/postgres"
MAX_JOBS, MAX_PRODUCTS = 50, 5000
LEASE_S = 20  # a killed worker's chunk is re-enqueued by the reconciler this long after its claim
RECONCILE_S = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise SystemExit(f"soak: timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)
    return value


class Redis:
    def __init__(self, folder: Path):
        self.folder, self.port, self.process = folder, free_port(), None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", HOST, "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")])
        import redis

        def answers() -> bool:
            try:
                with redis.Redis(host=HOST, port=self.port, socket_timeout=1) as client:
                    return bool(client.ping())
            except redis.RedisError:
                return False

        wait_for(answers, 20, "redis-server")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


class Celery:
    """A `celery worker` or `celery beat` subprocess in its own process group, logging to a file."""

    def __init__(self, kind: str, name: str, env: dict[str, str], folder: Path):
        self.name, self.log = name, folder / f"{name}.log"
        argv = [sys.executable, "-m", "celery", "-A", "worker.celery_app", kind, "--loglevel=INFO"]
        if kind == "worker":
            argv += ["--pool=solo", "--concurrency=1", "--queues=interactive,batch,celery", "--without-mingle",
                     "--without-gossip", f"--hostname={name}@%h"]
        else:
            argv += [f"--schedule={folder / 'beat-schedule'}"]
        with self.log.open("a") as out:
            self.process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


def catalogue(job: int, n: int) -> list[dict]:
    colours, kinds = ("白色", "黑色", "红色", "粉色", "灰色"), ("上衣", "裙", "裤")
    return [{"external_id": f"SOAK{job}-{i:05d}", "title": f"{colours[i % 5]}{kinds[i % 3]}",
             "attributes": f"类型#{kinds[i % 3]}*颜色#{colours[i % 5]}"} for i in range(n)]


def counts(engine, job_ids: list[str], k: int) -> dict[str, int]:
    from sqlalchemy import func, select

    from db.engine import session_scope
    from db.models import Chunk, Job, JobItem, Variant

    with session_scope(engine) as s:
        accepted = s.execute(select(func.count()).select_from(JobItem).where(JobItem.job_id.in_(job_ids))).scalar_one()
        per_slot = (
            select(Variant.job_item_id, Variant.variant_no, func.count().label("n"))
            .join(JobItem, JobItem.id == Variant.job_item_id)
            .where(JobItem.job_id.in_(job_ids))
            .group_by(Variant.job_item_id, Variant.variant_no)
            .subquery()
        )
        slots, stored, doubled, outside = s.execute(select(
            func.count(), func.coalesce(func.sum(per_slot.c.n), 0), func.coalesce(func.sum(per_slot.c.n - 1), 0),
            func.count().filter((per_slot.c.variant_no < 1) | (per_slot.c.variant_no > k)),
        )).one()
        chunks = dict(s.execute(select(Chunk.status, func.count()).where(Chunk.job_id.in_(job_ids))
                                .group_by(Chunk.status)).all())
        statuses = dict(s.execute(select(Job.status, func.count()).where(Job.id.in_(job_ids))
                                  .group_by(Job.status)).all())
    filled = slots - outside
    return {"accepted": accepted, "stored": int(stored), "lost": accepted * k - filled,
            "duplicated": int(doubled) + outside, "done_chunks": chunks.get("done", 0),
            "running_chunks": chunks.get("running", 0), "statuses": statuses}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help=f"jobs to submit (at most {MAX_JOBS})")
    parser.add_argument("--products", type=int, default=60, help=f"products per job (at most {MAX_PRODUCTS})")
    parser.add_argument("--variants", type=int, default=2, help="variants per product (1-10)")
    parser.add_argument("--chunk-size", type=int, default=8, help="products per chunk")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (1-8)")
    parser.add_argument("--kills", type=int, default=3, help="workers SIGKILLed while jobs run")
    parser.add_argument("--redis-restarts", type=int, default=1, help="times Redis is killed and started empty")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="checkpoint the workers load (default: a tiny one trained here in ~10 s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault schedule")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before the soak gives up")
    parser.add_argument("--keep", action="store_true", help="keep the database and the logs (kept anyway on failure)")
    args = parser.parse_args(argv)
    if not (1 <= args.jobs <= MAX_JOBS and 1 <= args.products <= MAX_PRODUCTS and 1 <= args.variants <= 10
            and 1 <= args.workers <= 8 and 0 <= args.kills <= 50 and 0 <= args.redis_restarts <= 5):
        parser.error(f"out of bounds: jobs 1-{MAX_JOBS}, products 1-{MAX_PRODUCTS}, variants 1-10, workers 1-8, "
                     "kills 0-50, redis restarts 0-5")
    return args


def create_database(admin) -> tuple[str, str]:
    """(name, URL) of a new PostgreSQL database at the schema head."""
    from sqlalchemy import text

    from db.engine import upgrade

    database = f"copygen_soak_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database
    upgrade(database_url)
    return database, database_url


def celery_env(conf: dict) -> dict[str, str]:
    """This process's environment without its COPYGEN_* variables, plus COPYGEN_<KEY> for each setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPYGEN_")}
    env.update({f"COPYGEN_{k.upper()}": str(v) for k, v in conf.items()}, PYTHONUNBUFFERED="1")
    return env


def submit_jobs(args: argparse.Namespace, settings, database: str) -> list[str]:
    from copygen.catalogue import JobSettings
    from worker.submit import submit

    return [submit(catalogue(j, args.products), JobSettings(variants=args.variants, length="short"),
                   settings=settings, idempotency_key=f"soak-{database}-{j}").job_id for j in range(args.jobs)]


def fault_plan(args: argparse.Namespace, rng: random.Random) -> tuple[list[str], list[float]]:
    """(kinds, seconds after submission): spread over the first part of the expected run, in random order."""
    plan = ["kill"] * args.kills + ["redis"] * args.redis_restarts
    rng.shuffle(plan)
    at = sorted(rng.uniform(3, 3 + 8 * len(plan)) for _ in plan)
    return plan, at


def strike(kind: str, now: float, current: dict, workers: list[Celery], spawned: int, env: dict[str, str],
           folder: Path, redis: Redis, submitted: float, rng: random.Random) -> tuple[list, int]:
    """Strike one fault; (its record, workers spawned so far). A fault's record: [t, description,
    chunks done or in flight at the fault, recovered after s]."""
    if kind == "kill":
        victim = rng.randrange(len(workers))
        workers[victim].kill()
        workers[victim] = Celery("worker", f"w{spawned}", env, folder)
        spawned += 1
        return [now, f"SIGKILL worker (replacement w{spawned - 1} started)",
                current["done_chunks"] + current["running_chunks"], None], spawned
    redis.kill()
    time.sleep(1)
    redis.start()
    return [time.monotonic() - submitted, "Redis killed and restarted empty",
            current["done_chunks"] + current["running_chunks"], None], spawned


def run_with_faults(args: argparse.Namespace, rng: random.Random, engine, job_ids: list[str], submitted: float,
                    total_chunks: int, workers: list[Celery], env: dict[str, str], folder: Path,
                    redis: Redis) -> tuple[list[list], float]:
    """Strike the planned faults while the jobs run, until every job finished or the timeout;
    (the faults, seconds from submission). `workers` is updated in place with the replacements."""
    # [t, description, chunks done or in flight at the fault, recovered after s]: a fault is recovered
    # from when more chunks are done than were done or running when it struck (new work got through)
    faults: list[list] = []
    spawned = len(workers)
    plan, at = fault_plan(args, rng)
    deadline = submitted + args.timeout
    while time.monotonic() < deadline:
        now = time.monotonic() - submitted
        current = counts(engine, job_ids, args.variants)
        for fault in faults:
            if fault[3] is None and current["done_chunks"] > fault[2]:
                fault[3] = now - fault[0]
        finished = sum(current["statuses"].get(s, 0) for s in ("done", "partial", "failed"))
        if finished == args.jobs:
            break
        if plan and now >= at[0] and current["done_chunks"] < total_chunks:
            kind, _ = plan.pop(0), at.pop(0)
            fault, spawned = strike(kind, now, current, workers, spawned, env, folder, redis, submitted, rng)
            faults.append(fault)
        time.sleep(0.25)
    return faults, time.monotonic() - submitted


def report(args: argparse.Namespace, final: dict, faults: list[list], elapsed: float) -> int:
    """Print the counts and the recovery times; the exit status (0: nothing lost or doubled, all finished)."""
    finished = sum(final["statuses"].get(s, 0) for s in ("done", "partial", "failed"))
    last_fault = max((f[0] for f in faults), default=0.0)

    print(f"accepted products   {final['accepted']}")
    print(f"variants expected   {final['accepted'] * args.variants}")
    print(f"variants stored     {final['stored']}")
    print(f"lost                {final['lost']}")
    print(f"duplicated          {final['duplicated']}")
    print(f"jobs                {', '.join(f'{v} {k}' for k, v in sorted(final['statuses'].items()))}")
    for t, what, _, recovered in faults:
        after = f"new work stored {recovered:.1f} s later" if recovered is not None else "nothing new stored after it"
        print(f"fault at {t:6.1f} s   {what}: {after}")
    if finished == args.jobs:
        print(f"recovered: every job finished {elapsed - last_fault:.1f} s after the last fault "
              f"({elapsed:.1f} s after submission)")
    else:
        print(f"NOT recovered: {args.jobs - finished} job(s) unfinished after {args.timeout:g} s")
    return 0 if final["lost"] == 0 and final["duplicated"] == 0 and finished == args.jobs else 1


def clean_up(processes: list[Celery], redis: Redis, engine, admin, database: str, folder: Path, *, keep: bool,
             status: int, started: float) -> None:
    """Stop every process; drop the database and the folder unless kept (the folder is kept on failure)."""
    from sqlalchemy import text

    for process in processes:
        process.stop()
    redis.kill()
    engine.dispose()
    if not keep:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    admin.dispose()
    if status == 0 and not keep:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"soak: logs kept in {folder}")
    print(f"soak: {time.monotonic() - started:.1f} s in all", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from sqlalchemy import create_engine

    from copygen.settings import Settings
    from db.engine import make_engine

    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="copygen-soak-"))
    checkpoint = args.checkpoint
    if checkpoint is None:
        from trainer.testing import tiny_checkpoint

        checkpoint = tiny_checkpoint(folder / "checkpoint")
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    database, database_url = create_database(admin)
    engine = make_engine(database_url)
    redis = Redis(folder)
    redis.start()
    conf = {"database_url": database_url, "broker_url": redis.url, "checkpoint": str(checkpoint),
            "chunk_size": args.chunk_size, "lease_seconds": LEASE_S, "reconcile_seconds": RECONCILE_S,
            "visibility_timeout": 3600, "task_soft_time_limit": 300, "task_time_limit": 360}
    env = celery_env(conf)
    settings = Settings(**conf)
    workers = [Celery("worker", f"w{i}", env, folder) for i in range(args.workers)]
    beat = Celery("beat", "beat", env, folder)
    started = time.monotonic()
    status = 1
    try:
        wait_for(lambda: all(w.log.exists() and " ready." in w.log.read_text() for w in workers), 180,
                 "the workers to start", poll=0.5)
        job_ids = submit_jobs(args, settings, database)
        submitted = time.monotonic()
        total_chunks = args.jobs * -(-args.products // args.chunk_size)
        print(f"soak: {args.jobs} jobs x {args.products} products x {args.variants} variants = {total_chunks} "
              f"chunks, {args.workers} workers, {args.kills} worker kill(s), {args.redis_restarts} Redis restart(s) "
              f"(folder {folder})", flush=True)
        faults, elapsed = run_with_faults(args, rng, engine, job_ids, submitted, total_chunks, workers, env, folder,
                                          redis)
        status = report(args, counts(engine, job_ids, args.variants), faults, elapsed)
    finally:
        clean_up([beat, *workers], redis, engine, admin, database, folder, keep=args.keep, status=status,
                 started=started)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
