"""The copygen command: one entry point that wires the trainer, the worker and the copy store.

The catalogue job commands (enqueue, status, jobs, export) live here with the parser and main();
the others in cli_training (train, eval, generate, models), cli_service (worker, beat, reconcile,
health, migrate) and cli_review (review, tune-score, export --for-review).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from copygen.catalogue import (
    DEFAULT_LENGTH,
    DEFAULT_QUEUE,
    DEFAULT_STYLE,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    DEFAULT_VARIANTS,
    QUEUES,
)
from copygen.cli_review import add_review_commands, export_for_review
from copygen.cli_service import add_service_commands
from copygen.cli_training import add_training_commands
from copygen.prompt import LENGTHS, STYLE_CODES

log = logging.getLogger("copygen")


class CommandError(Exception):
    """An error the user can fix; printed as one line, exit status 2."""


# -- catalogue jobs --------------------------------------------------------------------------------

def _store(settings):
    """The copy store, its schema checked: the embedded SQLite store is created, others must be migrated."""
    from worker import runtime

    return runtime.current().store(settings)


def _exit_status(status: str) -> int:
    return 0 if status == "done" else 1


def _progress_line(p: dict) -> str:
    if p["status"] == "refused":
        return f"job {p['job_id']}: refused as a whole at submission, {p['rejected']} reason(s); nothing ran"
    done = p["chunks_done"] + p["chunks_failed"]
    return (f"job {p['job_id']}: {p['status']}, {done}/{p['chunks_total']} chunks "
            f"({p['chunks_failed']} failed), {p['items']} products, {p['variants']} variants "
            f"({p['flagged']} flagged), {p['rejected']} rows rejected at submission")


def _job_line(settings: dict) -> str:
    shown = {k: v for k, v in settings.items() if v not in (None, "") and v is not False}  # seed=0 stays
    return ", ".join(f"{k}={v}" for k, v in shown.items())


class _Stall:
    """Gives up on a job that has not moved for `seconds` and that nothing can move (worker.submit.why_stalled)."""

    def __init__(self, settings, queue: str, seconds: float):
        self.settings, self.queue, self.seconds = settings, queue, seconds
        self.seen: tuple | None = None
        self.since = time.monotonic()

    def check(self, p: dict) -> None:
        from worker import runtime
        from worker.submit import why_stalled

        state = (p["status"], p["chunks_done"], p["chunks_failed"], p["chunks_running"], p["variants"])
        if state != self.seen:
            self.seen, self.since = state, time.monotonic()
            return
        if time.monotonic() - self.since < self.seconds:
            return
        reason = why_stalled(runtime.current(), self.settings, p, self.queue)
        if reason:
            raise CommandError(f"job {p['job_id']} is {p['status']} and has not moved for {self.seconds:g} s: {reason}")
        self.since = time.monotonic()  # something can move it: look again after another while


def _follow(settings, engine, job_id: str, queue: str, *, quiet: bool, give_up_after: float) -> dict:
    """Poll until the job (on `queue`) ends, with a progress bar over its chunks (on stderr); give up
    on a stalled job."""
    from tqdm import tqdm

    from worker.submit import wait_for_job

    stall = _Stall(settings, queue, give_up_after)
    bar = None

    def show(p):
        nonlocal bar
        stall.check(p)
        if quiet:
            return
        if bar is None:
            bar = tqdm(total=p["chunks_total"], desc=f"job {job_id[:8]}", unit="chunk", file=sys.stderr)
        bar.update(p["chunks_done"] + p["chunks_failed"] - bar.n)
        pace = _pace(engine, job_id)
        bar.set_postfix_str(f"{p['status']}, {p['variants']} variants, {_pace_text(pace)}")

    try:
        return wait_for_job(engine, job_id, poll=1.0, on_progress=show)
    finally:
        if bar is not None:
            bar.close()


def _pace(engine, job_id: str) -> dict:
    from db.engine import session_scope
    from db.jobs import job_pace

    with session_scope(engine) as s:
        return job_pace(s, job_id) or {}


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _pace_text(pace: dict) -> str:
    if not pace:
        return ""
    window = _duration(pace["pace_window_seconds"])
    if pace["eta_seconds"] == 0:
        eta = "nothing left"
    elif pace["eta_seconds"] is None:
        eta = f"ETA unknown ({pace['products_left']} products left, none finished in the last {window})"
    else:
        eta = f"ETA {_duration(pace['eta_seconds'])} ({pace['products_left']} products left)"
    return f"{pace['products_per_second']:.2f} products/s over the last {window}, {eta}"


def cmd_enqueue(args) -> int:
    from tqdm import tqdm

    from copygen.catalogue import read_catalogue, rejection_message, validate_settings
    from copygen.settings import get_settings
    from worker.submit import submit

    settings = get_settings()
    products, errors = read_catalogue(args.file, strict=args.strict)
    if errors:
        print(rejection_message(args.file, errors), file=sys.stderr)
    job = validate_settings({k: v for k, v in {
        "variants": args.variants, "length": args.length, "style": args.style, "opening": args.opening,
        "temperature": args.temperature, "top_p": args.top_p, "seed": args.seed,
        "model_version": args.model_version, "queue": args.queue, "campaign": args.campaign,
        "oversample": args.oversample, "stated_only": args.stated_only or None,
        "clause_floor": args.clause_floor, "word_pairs": args.word_pairs or None,
        "known_clauses": args.known_clauses or None,
    }.items() if v is not None}, settings.max_variants)
    bar = None

    def on_chunk(done: int, total: int) -> None:  # in-process execution (the embedded default)
        nonlocal bar
        if args.quiet:
            return
        if bar is None:
            bar = tqdm(total=total, desc="generating", unit="chunk", file=sys.stderr)
        bar.update(done - bar.n)

    def on_created(job_id: str) -> None:  # printed before any chunk runs: an interrupted run keeps its id
        print(job_id, flush=True)

    try:
        submission = submit(products, job, idempotency_key=args.idempotency_key, settings=settings,
                            source=str(args.file), rejected=errors, on_chunk=on_chunk, on_created=on_created)
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        rejected = len({e.row for e in submission.rejected})
        if submission.created:
            where = "ran in this process" if settings.in_process else f"queued on '{job.queue}'"
            print(f"job {submission.job_id} submitted: {submission.accepted} products × {job.variants} variants, "
                  f"{rejected} rows rejected; {where}", file=sys.stderr)
        else:
            print(f"job {submission.job_id} already exists under idempotency key {args.idempotency_key!r}: "
                  f"{submission.accepted} products, {_job_line(submission.settings)}; nothing new was submitted",
                  file=sys.stderr)
            if submission.differs:
                given = job.to_json()
                print("  the settings given differ from the job's, which stand: " + ", ".join(
                    f"{k} {given[k]!r} (job: {submission.settings.get(k)!r})" for k in submission.differs)
                    + "; use another --idempotency-key for a new job", file=sys.stderr)
    if args.wait:
        final = _follow(settings, _store(settings), submission.job_id, submission.settings["queue"], quiet=args.quiet,
                        give_up_after=args.give_up_after)
        if not args.quiet:
            print(_progress_line(final), file=sys.stderr)
        return _exit_status(final["status"])
    return 0


SHOWN_REJECTIONS = 5  # rejected rows `copygen status` lists; --json has them all


def cmd_status(args) -> int:
    from copygen.settings import get_settings
    from db.engine import session_scope
    from db.jobs import FINISHED_JOB, get_job, job_progress

    settings = get_settings()
    engine = _store(settings)
    with session_scope(engine) as s:
        job = get_job(s, args.job)
    if job is None:
        raise CommandError(f"no job {args.job}")
    if args.follow:
        progress = _follow(settings, engine, args.job, job["queue"], quiet=args.json, give_up_after=args.give_up_after)
    else:
        with session_scope(engine) as s:
            progress = job_progress(s, args.job)
    rejections = job["rejected"] or []
    pace = _pace(engine, args.job)
    if args.json:
        print(json.dumps({**progress, **pace, "rejections": rejections}, ensure_ascii=False, default=str, indent=2))
    else:
        print(_progress_line(progress))
        if progress["status"] not in FINISHED_JOB:
            print(f"  {_pace_text(pace)}")
        for failure in progress["failures"]:
            print(f"  chunk {failure['chunk_no']} failed after {failure['attempts']} attempt(s): {failure['error']}")
        for rejection in rejections[:SHOWN_REJECTIONS]:
            if rejection.get("row") is None:  # a reason the whole submission was refused
                print(f"  refused: field {rejection.get('field')!r}: {rejection.get('reason')}")
            else:
                print(f"  rejected: row {rejection.get('row')}, field {rejection.get('field')!r}: "
                      f"{rejection.get('reason')}")
        if len(rejections) > SHOWN_REJECTIONS:
            print(f"  ... and {len(rejections) - SHOWN_REJECTIONS} more rejected rows: "
                  f"copygen status {args.job} --json lists them all")
    if progress["status"] in FINISHED_JOB:
        return _exit_status(progress["status"])
    return 0


def cmd_jobs(args) -> int:
    from copygen.settings import get_settings
    from db.engine import session_scope
    from db.jobs import recent_jobs
    from db.models import utcnow

    with session_scope(_store(get_settings())) as s:
        jobs = recent_jobs(s, args.limit)
    now = utcnow()
    for job in jobs:
        job["passed_share"] = job["passed"] / job["variants"] if job["variants"] else None
        job["age_seconds"] = (now - job["created_at"]).total_seconds()
    if args.json:
        print(json.dumps(jobs, ensure_ascii=False, default=str, indent=2))
        return 0
    if not jobs:
        print("no jobs yet (submit one: copygen enqueue FILE)")
        return 0
    print(f"{'job':36}  {'status':8}  {'products':>8}  {'passed':>6}  {'age':>9}  campaign")
    for job in jobs:
        share = "-" if job["passed_share"] is None else f"{job['passed_share']:.0%}"
        print(f"{job['id']:36}  {job['status']:8}  {job['n_items']:>8}  {share:>6}  "
              f"{_duration(job['age_seconds']):>9}  {job['campaign'] or ''}")
    return 0


EXPORT_COLUMNS = ["external_id", "variant_no", "rank", "score", "passed", "flags", "text", "model_version"]


def cmd_export(args) -> int:
    from copygen.settings import get_settings
    from db.engine import session_scope
    from db.jobs import get_job
    from db.variants import iter_job_variants

    if args.for_review:
        return export_for_review(args)
    if args.format != "table" and not args.out:
        raise CommandError(f"--out is required for --format {args.format}")
    with session_scope(_store(get_settings())) as s:
        if get_job(s, args.job) is None:
            raise CommandError(f"no job {args.job}")
        rows = [{**{k: row[k] for k in EXPORT_COLUMNS}, "title": row["title"]} for row in iter_job_variants(s, args.job)]
    for row in rows:
        row["score"] = round(row["score"], 4) if row["score"] is not None else None
        row["flags"] = list(row["flags"] or [])
    if args.format == "table" and not args.out:
        print_table(rows, sys.stdout)
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "table":
        with out.open("w", encoding="utf-8") as fh:
            print_table(rows, fh)
    elif args.format == "jsonl":  # flags stay a JSON array, as in SQL
        with out.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps({k: row[k] for k in EXPORT_COLUMNS}, ensure_ascii=False) + "\n")
    else:
        import pandas as pd  # heavy: only the spreadsheet formats need it

        frame = pd.DataFrame([{**row, "flags": ";".join(row["flags"])} for row in rows], columns=EXPORT_COLUMNS)
        if args.format == "csv":
            frame.to_csv(out, index=False, encoding="utf-8-sig")  # the BOM lets Excel read the Chinese
        else:
            frame.to_excel(out, index=False)
    print(f"wrote {len(rows)} variants to {out}", file=sys.stderr)
    return 0


def print_table(rows: list[dict], out) -> None:
    """Variants grouped by product, best first, for reading in a terminal."""
    current = None
    for row in rows:
        if row["external_id"] != current:
            current = row["external_id"]
            print(f"\n{current}  {row['title'] or ''}", file=out)
        mark = "✓" if row["passed"] else "✗"
        flags = f"  [{';'.join(row['flags'])}]" if row["flags"] else ""
        print(f"  {row['rank'] or '-'}. {mark} {row['score']:>6.2f}  {row['text']}{flags}", file=out)
    print(file=out)


# -- argument parsing ------------------------------------------------------------------------------

def add_follow_option(p) -> None:
    p.add_argument("--give-up-after", type=float, default=60.0, metavar="SECONDS",
                   help="stop waiting when the job has not moved for this long and nothing can move it "
                        "(no worker on its queue; in-process, no process running it); default 60")


def add_job_commands(sub) -> None:
    p = sub.add_parser("enqueue", help="submit a catalogue file (CSV, Excel, JSON Lines) as a job; prints its id")
    p.add_argument("file", help="catalogue: .csv, .xlsx, .jsonl")
    p.add_argument("--variants", type=int, help=f"variants per product (default {DEFAULT_VARIANTS})")
    p.add_argument("--length", choices=LENGTHS, help=f"copy length (default {DEFAULT_LENGTH})")
    p.add_argument("--style", choices=list(STYLE_CODES), help=f"ad copy or product description (default {DEFAULT_STYLE})")
    p.add_argument("--opening", help='phrase every copy starts with, e.g. "新品上市，"')
    p.add_argument("--temperature", type=float, help=f"sampling temperature (default {DEFAULT_TEMPERATURE})")
    p.add_argument("--top-p", type=float, help=f"nucleus sampling mass (default {DEFAULT_TOP_P})")
    p.add_argument("--seed", type=int, help="seed, for repeatable copy")
    p.add_argument("--model-version", help="registered model version to use (default: the worker's)")
    p.add_argument("--queue", choices=QUEUES, help=f"worker queue (default {DEFAULT_QUEUE})")
    p.add_argument("--campaign", help="campaign name, for campaign tools")
    p.add_argument("--oversample", type=int,
                   help="candidates generated per variant kept, the best kept (default COPYGEN_OVERSAMPLE)")
    p.add_argument("--stated-only", action="store_true",
                   help="name no colour, fibre, print, length, collar... that a product's attributes do not state")
    p.add_argument("--clause-floor", type=float, metavar="LOGP",
                   help="draw a clause again while its mean log-probability per token is below LOGP (e.g. -1.5)")
    p.add_argument("--word-pairs", action="store_true",
                   help="draw a clause again while two of its neighbouring words never meet in the training copy")
    p.add_argument("--known-clauses", action="store_true",
                   help="write only clauses of the model's training copy (the model picks which, and their order)")
    p.add_argument("--idempotency-key",
                   help="submitting again with the same key returns the same job (its first settings stand)")
    p.add_argument("--strict", action="store_true", help="reject the whole file if any row is bad")
    p.add_argument("--wait", action="store_true", help="show progress until the job ends; exit 1 unless done")
    add_follow_option(p)
    p.add_argument("--quiet", action="store_true", help="print only the job id (and errors)")
    p.set_defaults(func=cmd_enqueue)

    p = sub.add_parser("status", help="a job's progress, failures and rejected rows")
    p.add_argument("job")
    p.add_argument("--follow", action="store_true", help="wait until the job ends; exit 0 if done, 1 otherwise")
    add_follow_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable output, every rejected row included")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("jobs", help="recent jobs: status, products, share of variants passed, age, campaign")
    p.add_argument("--limit", type=int, default=20, help="how many, newest first (default 20)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("export", help="a job's variants as CSV, JSON Lines, Excel or a printed table")
    p.add_argument("job")
    p.add_argument("--format", default="csv", choices=["csv", "jsonl", "xlsx", "table"])
    p.add_argument("--out", help="file to write (--format table prints to the terminal without it)")
    p.add_argument("--for-review", action="store_true",
                   help="with --format xlsx: a review workbook with decision, edited_text and reason columns to fill")
    p.set_defaults(func=cmd_export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="copygen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-level", default=None, help="logging level (default: COPYGEN_LOG_LEVEL or INFO)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_training_commands(sub)
    add_job_commands(sub)
    add_service_commands(sub)
    add_review_commands(sub)
    return parser


def configure_logging(args, default_level: str) -> None:
    level = (args.log_level or default_level).upper()
    if getattr(args, "quiet", False) and not args.log_level:
        level = "WARNING"  # --quiet: the job id and what went wrong, nothing else
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "matplotlib", "urllib3", "httpx", "db.engine"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def main(argv: list[str] | None = None) -> int:
    from kombu.exceptions import OperationalError as BrokerError
    from pydantic import ValidationError
    from sqlalchemy.exc import OperationalError as DatabaseError

    from copygen.settings import get_settings, mask_url

    parser = build_parser()
    args = parser.parse_args(argv)

    def fail(message: str, status: int = 2) -> int:
        print(f"copygen {args.command}: {message}", file=sys.stderr)
        return status

    try:
        configure_logging(args, get_settings().log_level)
    except ValidationError as exc:  # a COPYGEN_* variable (or .env line) that is not a valid setting
        bad = "; ".join(f"COPYGEN_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        return fail(f"bad setting: {bad}")
    try:
        return args.func(args) or 0
    except (CommandError, LookupError) as exc:
        return fail(str(exc).strip("'\""))
    except ValueError as exc:  # our domain errors (CheckpointError, TrainError, CatalogueError...) are ValueErrors
        return fail(str(exc))
    except DatabaseError as exc:
        return fail(f"cannot use the database {mask_url(get_settings().database_url)}: {exc.orig or exc}".strip())
    except BrokerError as exc:
        return fail(f"cannot reach the broker {mask_url(get_settings().broker_url)}: {exc}")
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except BrokenPipeError:  # e.g. `copygen export JOB --format table | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
