"""The review commands of the copygen CLI: export a job for review, import a filled workbook, count
decisions, fit the score's weights to them, and read reviewed copy for training.

    copygen export JOB --format xlsx --for-review --out review.xlsx
    copygen review import review.xlsx --reviewer li.na
    copygen review status JOB
    copygen tune-score --out var/score_weights.json
    copygen train --data postgresql://.../copygen --campaign double11 --out models/next

Like copygen.cli, this module only wires: the work is in db.reviews, worker.review,
worker.score_tuning, trainer.reviewed and copygen.review_sheet.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

URL_MARK = "://"  # a --data value holding this is a copy store's database URL, not a file


def _when(value: str | None, flag: str) -> datetime | None:
    """An ISO date or time from the command line, UTC unless it says otherwise."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{flag} {value!r}: expected an ISO date or time, e.g. 2026-11-01 or 2026-11-01T08:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _engine(url: str | None = None):
    """The copy store (settings' or the URL given), its schema checked."""
    from copygen.settings import get_settings
    from worker import runtime

    settings = get_settings()
    if url:
        settings = settings.model_copy(update={"database_url": url})
    return runtime.current().store(settings)


# -- export for review ----------------------------------------------------------------------------


def export_for_review(args) -> int:
    """`copygen export JOB --format xlsx --for-review --out FILE`."""
    from copygen.review_sheet import write_review_sheet
    from db.engine import session_scope
    from db.jobs import get_job
    from db.models import DECISIONS, REJECT_REASONS
    from db.reviews import review_rows

    if args.format != "xlsx":
        raise ValueError(f"--for-review writes an Excel workbook: use --format xlsx, not {args.format}")
    if not args.out:
        raise ValueError("--out is required for --format xlsx")
    with session_scope(_engine()) as s:
        if get_job(s, args.job) is None:
            raise LookupError(f"no job {args.job}")
        rows = review_rows(s, args.job)
    n = write_review_sheet(args.out, args.job, rows, decisions=DECISIONS, reasons=REJECT_REASONS)
    print(f"wrote {n} variants to {args.out} for review: fill decision, edited_text, reason (and reviewer), then "
          f"`copygen review import {args.out}`", file=sys.stderr)
    return 0


# -- review import / status -------------------------------------------------------------------------


def cmd_review_import(args) -> int:
    from copygen.review_sheet import read_review_sheet
    from copygen.settings import get_settings
    from worker.review import record_reviews

    path = Path(args.file)
    rows = read_review_sheet(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:32]
    # one key per row of this very file: importing it again records nothing
    keys = [f"xlsx:{digest}:{r.row}" for r in rows]
    outcome = record_reviews([r.values for r in rows], reviewer=args.reviewer, source=f"xlsx:{path.name}",
                             keys=keys, settings=get_settings())
    print(f"{path}: {len(rows)} reviewed rows: {outcome.recorded} decisions recorded, {outcome.unchanged} "
          f"unchanged (recorded before), {len({r.index for r in outcome.refused})} rows refused")
    for refusal in outcome.refused:
        print(f"  {rows[refusal.index].where(refusal.field)}: {refusal.reason}")
    return 1 if outcome.refused else 0


def cmd_review_status(args) -> int:
    from db.engine import session_scope
    from db.jobs import get_job
    from db.reviews import decision_counts

    with session_scope(_engine()) as s:
        if get_job(s, args.job) is None:
            raise LookupError(f"no job {args.job}")
        counts = decision_counts(s, args.job)
    if args.json:
        print(json.dumps({"job_id": args.job, **counts}, ensure_ascii=False, indent=2))
        return 0
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(counts["reasons"].items(), key=lambda kv: -kv[1]))
    print(f"job {args.job}: {counts['variants']} variants of {counts['products']} products: "
          f"{counts['approved']} approved, {counts['edited']} edited, {counts['rejected']} rejected"
          f"{f' ({reasons})' if reasons else ''}, {counts['undecided']} undecided; "
          f"{counts['products_with_copy']} products have copy to publish (copy_approved_variants); "
          f"{counts['decisions_recorded']} decisions recorded in all")
    return 0


# -- tune-score ------------------------------------------------------------------------------------


def cmd_tune_score(args) -> int:
    from copygen.compliance import load_lexicon
    from copygen.score_weights import write_weights
    from copygen.settings import get_settings, mask_url
    from worker.score_tuning import MIN_PER_CLASS, describe, store_examples, tune

    url = args.database or get_settings().database_url
    since, until = _when(args.since, "--since"), _when(args.until, "--until")
    examples = store_examples(_engine(url), load_lexicon(), campaign=args.campaign, since=since, until=until,
                              checkpoint=args.checkpoint)
    report = tune(examples, seed=args.seed,
                  min_per_class=MIN_PER_CLASS if args.min_per_class is None else args.min_per_class)
    for line in describe(report):
        print(line)
    if report.weights is None:
        print(f"nothing written to {args.out}")
        return 1
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    fitted = {"method": "logistic regression, weights >= 0, scaled to sum 1", "store": mask_url(url),
              "campaign": args.campaign, "since": args.since, "until": args.until, "seed": args.seed,
              "counts": report.counts, "held_out": report.held_out, "created_at": stamp}
    out = write_weights(args.out, f"score-{stamp}", report.weights, fitted)
    print(f"wrote {out}: set COPYGEN_SCORE_WEIGHTS={out.resolve()} for the workers")
    return 0


# -- training on reviewed copy ----------------------------------------------------------------------


def training_data(args) -> tuple[list[Path], list, list[dict]]:
    """`copygen train --data`: (files, pairs from copy stores, their data records). A value holding
    '://' is a copy store's database URL; --campaign, --since and --until choose its decisions."""
    from copygen.settings import mask_url
    from db.engine import session_scope
    from db.reviews import decided_variants
    from trainer.reviewed import reviewed_pairs

    files = [Path(d) for d in args.data if URL_MARK not in d]
    pairs, sources = [], []
    since, until = _when(args.since, "--since"), _when(args.until, "--until")
    for url in (d for d in args.data if URL_MARK in d):
        with session_scope(_engine(url)) as s:
            rows = decided_variants(s, campaign=args.campaign, since=since, until=until)
        found, record = reviewed_pairs(rows, mask_url(url))
        if not found:
            chosen = ", ".join(f"{k} {v}" for k, v in (("campaign", args.campaign), ("since", args.since),
                                                        ("until", args.until)) if v) or "all decisions"
            raise ValueError(f"--data {mask_url(url)}: no approved or edited variants ({chosen}; "
                             f"{sum(record['left_out'].values())} rejected)")
        record.update({"campaign": args.campaign, "since": args.since, "until": args.until})
        pairs += found
        sources.append(record)
        print(f"{mask_url(url)}: {len(found)} reviewed pairs (approved or edited), "
              f"{record['left_out'].get('rejected', 0)} rejected left out", file=sys.stderr)
    return files, pairs, sources


def add_store_data_options(p) -> None:
    """The train options that choose reviewed copy from a copy store given to --data."""
    p.add_argument("--campaign", help="copy store --data: only decisions on this campaign's jobs")
    p.add_argument("--since", help="copy store --data: only decisions made at or after this ISO date/time (UTC)")
    p.add_argument("--until", help="copy store --data: only decisions made before this ISO date/time (UTC)")


def add_review_commands(sub) -> None:
    p = sub.add_parser("review", help="record reviewers' decisions from a workbook, count a job's decisions")
    review = p.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    q = review.add_parser("import", help="apply a filled review workbook (copygen export --for-review); "
                                         "exit 1 if a row was refused (the others are applied)")
    q.add_argument("file", help="the .xlsx workbook")
    q.add_argument("--reviewer", default=getpass.getuser(),
                   help="who decided, for rows whose reviewer column is empty (default: your user name)")
    q.set_defaults(func=cmd_review_import)
    q = review.add_parser("status", help="a job's variants counted by their latest decision")
    q.add_argument("job")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_review_status)

    p = sub.add_parser("tune-score", help="fit the selection score's weights to reviewers' decisions")
    p.add_argument("--out", required=True, help="weights file to write (then set COPYGEN_SCORE_WEIGHTS to it)")
    p.add_argument("--database", help="copy store URL (default COPYGEN_DATABASE_URL)")
    p.add_argument("--campaign", help="only decisions on this campaign's jobs")
    p.add_argument("--since", help="only decisions made at or after this ISO date/time (UTC)")
    p.add_argument("--until", help="only decisions made before this ISO date/time (UTC)")
    p.add_argument("--checkpoint", help="measure fluency with this checkpoint instead of each model version's own")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out choice of products")
    p.add_argument("--min-per-class", type=int, default=None,
                   help="approved and rejected decisions needed to fit (default 50: 10 per weight)")
    p.set_defaults(func=cmd_tune_score)
