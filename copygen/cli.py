"""The copygen command: one entry point that wires the trainer, the worker and the copy store."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("copygen")


class CommandError(Exception):
    """An error the user can fix; printed as one line, exit status 2."""


# -- trainer ---------------------------------------------------------------------------------------

def cmd_train(args) -> int:
    from trainer.train import TrainOptions, train

    opts = TrainOptions(
        data=[Path(p) for p in args.data], out=Path(args.out), preset=args.preset,
        base=Path(args.base) if args.base else None, stage=args.stage, max_minutes=args.max_minutes,
        epochs=args.epochs, seed=args.seed, lora=args.lora, input_column=args.input_column,
        output_column=args.output_column, style=args.style, vocab=Path(args.vocab) if args.vocab else None,
        device=args.device, val_fraction=args.val_fraction, resume=not args.no_resume,
        progress=not args.quiet)
    out = train(opts)
    manifest = json.loads((out / "copygen.json").read_text(encoding="utf-8"))
    print(f"checkpoint {out} ({manifest['name']})")
    for stage, figures in manifest["training"]["stages"].items():
        print(f"  {stage}: {figures['steps']} steps, {figures['tokens']:,} tokens in {figures['seconds']:.0f} s "
              f"({figures['tokens_per_second']:,.0f} tokens/s), best validation loss {figures['best_val_loss']:.3f}")
    print(f"  validation perplexity {manifest['metrics']['val_perplexity']:.2f}; loss curve {out / 'loss.png'}")
    return 0


def cmd_eval(args) -> int:
    from trainer.evaluate import EvalOptions, format_table, run_eval

    summary = run_eval(EvalOptions(
        checkpoint=Path(args.checkpoint), data=[Path(p) for p in args.data], out=Path(args.out),
        limit=args.limit, decoding=args.decoding, no_repeat_ngram=args.no_repeat_ngram, seed=args.seed,
        device=args.device, batch_size=args.batch_size, progress=not args.quiet))
    print(format_table(summary))
    print(f"wrote {Path(args.out) / 'predictions.jsonl'} and {Path(args.out) / 'metrics.json'}")
    return 0


def cmd_generate(args) -> int:
    from copygen.catalogue import Product, parse_attributes
    from copygen.compliance import load_lexicon
    from trainer.generation import NO_REPEAT_NGRAM, Generator, Request

    try:
        attributes = parse_attributes(args.attributes)
    except ValueError as exc:
        raise CommandError(f"--attributes: {exc}") from None
    product = Product(external_id="cli", title=args.title or "", attributes=attributes,
                      description=args.description or "")
    if not product.source():
        raise CommandError("give the product: --attributes, --title or --description")
    generator = Generator.load(args.checkpoint, device=args.device)
    lexicon = load_lexicon()
    [texts] = generator.generate(
        [Request(product.source(), args.variants, args.length, args.style, args.opening)],
        temperature=args.temperature, top_p=args.top_p, seed=args.seed, banned=lexicon.terms,
        no_repeat_ngram=NO_REPEAT_NGRAM)
    for i, text in enumerate(texts, 1):
        found = lexicon.find(text)
        print(f"{i}. {text}" + (f"   [广告法: {', '.join(found)}]" if found else ""))
    return 0


def cmd_models(args) -> int:
    from copygen.settings import get_settings
    from trainer.checkpoint import CheckpointError, load_manifest

    root = Path(args.dir)
    current = get_settings().checkpoint.resolve()
    found = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    if not found:
        print(f"no checkpoints under {root}/ (train one: copygen train --data FILE --out {root}/NAME)")
        return 0
    for path in found:
        mark = "*" if path.resolve() == current else " "
        try:
            m = load_manifest(path)
        except CheckpointError as exc:
            print(f"{mark} {path}: refused: {exc}")
            continue
        metrics = m.get("metrics", {})
        print(f"{mark} {path}  {m['name']}  base={m['base']}  created {m['created_at']}  "
              f"val_loss={metrics.get('val_loss', float('nan')):.3f}")
    print("(* = COPYGEN_CHECKPOINT, the worker's default)")
    return 0


# -- catalogue jobs --------------------------------------------------------------------------------

FINISHED = ("done", "partial", "failed")


def _engine(settings):
    """The copy store's engine; the embedded SQLite store is created or upgraded on first use."""
    from worker import runtime

    if settings.database_url.startswith("sqlite"):
        from db.engine import upgrade

        upgrade(settings.database_url)
    return runtime.engine(settings)


def _exit_status(status: str) -> int:
    return 0 if status == "done" else 1


def _progress_line(p: dict) -> str:
    done = p["chunks_done"] + p["chunks_failed"]
    return (f"job {p['job_id']}: {p['status']}, {done}/{p['chunks_total']} chunks "
            f"({p['chunks_failed']} failed), {p['items']} products, {p['variants']} variants "
            f"({p['flagged']} flagged), {p['rejected']} rows rejected at submission")


def _follow(engine, job_id: str, *, quiet: bool) -> dict:
    """Poll until the job ends, with a progress bar over its chunks (on stderr)."""
    from tqdm import tqdm

    from worker.submit import wait_for_job

    bar = None

    def show(p):
        nonlocal bar
        if quiet:
            return
        if bar is None:
            bar = tqdm(total=p["chunks_total"], desc=f"job {job_id[:8]}", unit="chunk", file=sys.stderr)
        bar.update(p["chunks_done"] + p["chunks_failed"] - bar.n)
        bar.set_postfix(status=p["status"], variants=p["variants"])

    try:
        return wait_for_job(engine, job_id, poll=1.0, on_progress=show)
    finally:
        if bar is not None:
            bar.close()


def cmd_enqueue(args) -> int:
    from tqdm import tqdm

    from copygen.catalogue import read_catalogue, rejection_message, validate_settings
    from copygen.settings import get_settings
    from worker.celery_app import uses_memory_broker
    from worker.submit import submit

    settings = get_settings()
    products, errors = read_catalogue(args.file, strict=args.strict)
    if errors:
        print(rejection_message(args.file, errors), file=sys.stderr)
    job = validate_settings({k: v for k, v in {
        "variants": args.variants, "length": args.length, "style": args.style, "opening": args.opening,
        "temperature": args.temperature, "top_p": args.top_p, "seed": args.seed,
        "model_version": args.model_version, "queue": args.queue, "campaign": args.campaign,
    }.items() if v is not None}, settings.max_variants)
    engine = _engine(settings)
    bar = None

    def on_chunk(done: int, total: int) -> None:  # in-process execution (the embedded default)
        nonlocal bar
        if args.quiet:
            return
        if bar is None:
            bar = tqdm(total=total, desc="generating", unit="chunk", file=sys.stderr)
        bar.update(done - bar.n)

    try:
        submission = submit(products, job, idempotency_key=args.idempotency_key, settings=settings,
                            source=str(args.file), rejected=errors, on_chunk=on_chunk)
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        verb = "submitted" if submission.created else "already submitted (same idempotency key)"
        where = "ran in this process" if uses_memory_broker(settings) else f"queued on '{job.queue}'"
        print(f"job {submission.job_id} {verb}: {submission.accepted} products × {job.variants} variants, "
              f"{len({e.row for e in submission.rejected})} rows rejected; {where}", file=sys.stderr)
    print(submission.job_id)
    if args.wait:
        final = _follow(engine, submission.job_id, quiet=args.quiet)
        if not args.quiet:
            print(_progress_line(final), file=sys.stderr)
        return _exit_status(final["status"])
    return 0


def cmd_status(args) -> int:
    from copygen.settings import get_settings
    from db.engine import session_scope
    from db.jobs import job_progress

    engine = _engine(get_settings())
    if args.follow:
        progress = _follow(engine, args.job, quiet=args.json)
    else:
        with session_scope(engine) as s:
            progress = job_progress(s, args.job)
    if progress is None:
        raise CommandError(f"no job {args.job}")
    if args.json:
        print(json.dumps(progress, ensure_ascii=False, default=str, indent=2))
    else:
        print(_progress_line(progress))
        for failure in progress["failures"]:
            print(f"  chunk {failure['chunk_no']} failed after {failure['attempts']} attempt(s): {failure['error']}")
    if progress["status"] in FINISHED:
        return _exit_status(progress["status"])
    return 0


EXPORT_COLUMNS = ["external_id", "variant_no", "rank", "score", "passed", "flags", "text", "model_version"]


def cmd_export(args) -> int:
    from copygen.settings import get_settings
    from db.engine import session_scope
    from db.jobs import get_job
    from db.variants import iter_job_variants

    if args.format != "table" and not args.out:
        raise CommandError(f"--out is required for --format {args.format}")
    engine = _engine(get_settings())
    with session_scope(engine) as s:
        if get_job(s, args.job) is None:
            raise CommandError(f"no job {args.job}")
        rows = [{**{k: row[k] for k in EXPORT_COLUMNS}, "title": row["title"]} for row in iter_job_variants(s, args.job)]
    for row in rows:
        row["score"] = round(row["score"], 4) if row["score"] is not None else None
        row["flags"] = ";".join(row["flags"] or [])
    if args.format == "table":
        print_table(rows)
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "jsonl":
        with out.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps({k: row[k] for k in EXPORT_COLUMNS}, ensure_ascii=False) + "\n")
    else:
        import pandas as pd

        frame = pd.DataFrame(rows, columns=EXPORT_COLUMNS)
        if args.format == "csv":
            frame.to_csv(out, index=False, encoding="utf-8-sig")  # the BOM lets Excel read the Chinese
        else:
            frame.to_excel(out, index=False)
    print(f"wrote {len(rows)} variants to {out}", file=sys.stderr)
    return 0


def print_table(rows: list[dict]) -> None:
    """Variants grouped by product, best first, for reading in a terminal."""
    current = None
    for row in rows:
        if row["external_id"] != current:
            current = row["external_id"]
            print(f"\n{current}  {row['title'] or ''}")
        mark = "✓" if row["passed"] else "✗"
        flags = f"  [{row['flags']}]" if row["flags"] else ""
        print(f"  {row['rank'] or '-'}. {mark} {row['score']:>6.2f}  {row['text']}{flags}")
    print()


def cmd_worker(args) -> int:
    from copygen.settings import get_settings
    from db.engine import session_scope
    from db.model_versions import register_model_version
    from trainer.checkpoint import load_manifest
    from worker.celery_app import run_worker

    settings = get_settings()
    if args.checkpoint:
        settings = settings.model_copy(update={"checkpoint": Path(args.checkpoint)})
    manifest = load_manifest(settings.checkpoint)  # one clear line if it is not a usable checkpoint
    with session_scope(_engine(settings)) as s:  # jobs may name this version once a worker serves it
        register_model_version(s, manifest["name"], str(Path(settings.checkpoint).resolve()), manifest)
    run_worker(settings, queues=args.queues, concurrency=args.concurrency, loglevel=args.log_level or settings.log_level)
    return 0


def cmd_beat(args) -> int:
    from copygen.settings import get_settings
    from worker.celery_app import run_beat

    settings = get_settings()
    if args.schedule:
        settings = settings.model_copy(update={"schedule_file": Path(args.schedule)})
    run_beat(settings, schedule_db=args.state, loglevel=args.log_level or settings.log_level)
    return 0


def cmd_reconcile(args) -> int:
    from copygen.settings import get_settings
    from worker.reconcile import reconcile
    from worker.submit import app_for

    settings = get_settings()
    counts = reconcile(_engine(settings), app_for(settings), settings)
    print(", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_migrate(args) -> int:
    from copygen.settings import get_settings, mask_url
    from db.engine import upgrade

    url = get_settings().database_url
    upgrade(url)
    print(f"{mask_url(url)}: schema at head")
    return 0


# -- argument parsing ------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="copygen", description=__doc__)
    parser.add_argument("--log-level", default=None, help="logging level (default: COPYGEN_LOG_LEVEL or INFO)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a checkpoint on marketing data")
    p.add_argument("--data", action="append", required=True, metavar="PATH",
                   help="AdvertiseGen JSONL, Taobao src/tgt directory, CSV/Excel, or .txt for pre-training; repeatable")
    p.add_argument("--out", required=True, help="checkpoint directory to write (atomically)")
    p.add_argument("--preset", default="demo", choices=["demo", "small", "base"], help="from-scratch model size")
    p.add_argument("--base", help="local Hugging Face causal LM (or copygen checkpoint) to start from")
    p.add_argument("--stage", default="finetune", choices=["pretrain", "finetune", "both"],
                   help="pre-train on raw text, fine-tune on pairs, or both in turn")
    p.add_argument("--max-minutes", type=float, help="wall-time bound for the whole run")
    p.add_argument("--epochs", type=float, default=3.0, help="passes over the training data (default 3)")
    p.add_argument("--seed", type=int, default=42, help="seed of the split, initialisation and data order")
    p.add_argument("--lora", action="store_true", help="train LoRA adapters (peft), merged into the checkpoint")
    p.add_argument("--input-column", help="CSV/Excel: column(s) describing the product, comma-separated")
    p.add_argument("--output-column", help="CSV/Excel: column holding the copy")
    p.add_argument("--style", choices=["ad", "description"], help="style code for CSV/Excel data (default ad)")
    p.add_argument("--vocab", help="build the character vocabulary from this vocab.txt instead of the corpus")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of pairs held out for validation")
    p.add_argument("--no-resume", action="store_true", help="start over even if an interrupted run is found")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="score a checkpoint (ChatGLM-6B protocol) against the retrieval baseline")
    p.add_argument("checkpoint")
    p.add_argument("--data", action="append", required=True, metavar="PATH", help="evaluation data; repeatable")
    p.add_argument("--out", required=True, help="directory for predictions.jsonl and metrics.json")
    p.add_argument("--limit", type=int, help="evaluate the first N rows only")
    p.add_argument("--decoding", default="sample", choices=["greedy", "sample"],
                   help="sample = top_p 0.7, temperature 0.95 (the protocol)")
    p.add_argument("--no-repeat-ngram", type=int, default=0, metavar="N",
                   help="forbid repeating any N tokens, as the worker does with N=4 (default 0: the protocol)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=64, help="sequences per generation batch")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("generate", help="print copy variants for one product, to try a model by hand")
    p.add_argument("checkpoint")
    p.add_argument("--attributes", help='"类型#上衣*颜色#白色*..." or a JSON object')
    p.add_argument("--title", help="product title")
    p.add_argument("--description", help="free-text description")
    p.add_argument("--opening", default="", help='phrase the copy starts with, e.g. "新品上市，"')
    p.add_argument("--variants", type=int, default=3, help="how many variants (default 3)")
    p.add_argument("--length", default="medium", choices=["short", "medium", "long"])
    p.add_argument("--style", default="ad", choices=["ad", "description"])
    p.add_argument("--temperature", type=float, default=0.95)
    p.add_argument("--top-p", type=float, default=0.7)
    p.add_argument("--seed", type=int, help="sampling seed (default: random)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("models", help="list local checkpoints and whether the worker would load them")
    p.add_argument("--dir", default="models", help="directory holding checkpoints (default models/)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("enqueue", help="submit a catalogue file (CSV, Excel, JSON Lines) as a job; prints its id")
    p.add_argument("file", help="catalogue: .csv, .xlsx, .jsonl")
    p.add_argument("--variants", type=int, help="variants per product (default 3)")
    p.add_argument("--length", choices=["short", "medium", "long"], help="copy length (default medium)")
    p.add_argument("--style", choices=["ad", "description"], help="ad copy or product description (default ad)")
    p.add_argument("--opening", help='phrase every copy starts with, e.g. "新品上市，"')
    p.add_argument("--temperature", type=float, help="sampling temperature (default 0.95)")
    p.add_argument("--top-p", type=float, help="nucleus sampling mass (default 0.7)")
    p.add_argument("--seed", type=int, help="seed, for repeatable copy")
    p.add_argument("--model-version", help="registered model version to use (default: the worker's)")
    p.add_argument("--queue", choices=["batch", "interactive"], help="worker queue (default batch)")
    p.add_argument("--campaign", help="campaign name, for campaign tools")
    p.add_argument("--idempotency-key", help="submitting again with the same key returns the same job")
    p.add_argument("--strict", action="store_true", help="reject the whole file if any row is bad")
    p.add_argument("--wait", action="store_true", help="show progress until the job ends; exit 1 unless done")
    p.add_argument("--quiet", action="store_true", help="print only the job id")
    p.set_defaults(func=cmd_enqueue)

    p = sub.add_parser("status", help="a job's progress and failures")
    p.add_argument("job")
    p.add_argument("--follow", action="store_true", help="wait until the job ends; exit 0 if done, 1 otherwise")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("export", help="a job's variants as CSV, JSON Lines, Excel or a printed table")
    p.add_argument("job")
    p.add_argument("--format", default="csv", choices=["csv", "jsonl", "xlsx", "table"])
    p.add_argument("--out", help="file to write (not for --format table)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("worker", help="run a Celery worker that generates copy (needs COPYGEN_BROKER_URL)")
    p.add_argument("--checkpoint", help="checkpoint directory (default COPYGEN_CHECKPOINT)")
    p.add_argument("--queues", default="interactive,batch,celery", help="queues to consume, comma-separated")
    p.add_argument("--concurrency", type=int, default=1, help="processes; each loads the model once (default 1)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("beat", help="run Celery beat: the reconciler and the promo schedules")
    p.add_argument("--schedule", help="schedule file (default COPYGEN_SCHEDULE_FILE)")
    p.add_argument("--state", help="beat's state file (default celerybeat-schedule in the working directory)")
    p.set_defaults(func=cmd_beat)

    p = sub.add_parser("reconcile", help="re-enqueue pending or lapsed chunks and settle finished jobs, once")
    p.set_defaults(func=cmd_reconcile)

    p = sub.add_parser("migrate", help="bring the database schema to the latest version (alembic upgrade head)")
    p.set_defaults(func=cmd_migrate)

    return parser


def main(argv: list[str] | None = None) -> int:
    from copygen.settings import get_settings

    parser = build_parser()
    args = parser.parse_args(argv)
    level = args.log_level or get_settings().log_level
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "matplotlib", "urllib3", "httpx", "db.engine"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        return args.func(args) or 0
    except CommandError as exc:
        print(f"copygen {args.command}: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # our domain errors (CheckpointError, TrainError, CatalogueError...) are ValueErrors
        print(f"copygen {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"copygen {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `copygen export JOB --format table | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
