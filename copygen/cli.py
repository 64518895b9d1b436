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
        limit=args.limit, decoding=args.decoding, seed=args.seed, device=args.device,
        batch_size=args.batch_size, progress=not args.quiet))
    print(format_table(summary))
    print(f"wrote {Path(args.out) / 'predictions.jsonl'} and {Path(args.out) / 'metrics.json'}")
    return 0


def cmd_generate(args) -> int:
    from copygen.catalogue import Product, parse_attributes
    from copygen.compliance import load_lexicon
    from trainer.generation import Generator, Request

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
        temperature=args.temperature, top_p=args.top_p, seed=args.seed, banned=lexicon.terms)
    for i, text in enumerate(texts, 1):
        found = lexicon.find(text)
        print(f"{i}. {text}" + (f"   [广告法: {', '.join(found)}]" if found else ""))
    return 0


def cmd_models(args) -> int:
    from trainer.checkpoint import CheckpointError, load_manifest

    from copygen.settings import get_settings

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

    return parser


def main(argv: list[str] | None = None) -> int:
    from copygen.settings import get_settings

    parser = build_parser()
    args = parser.parse_args(argv)
    level = args.log_level or get_settings().log_level
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("jieba", "matplotlib", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
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


if __name__ == "__main__":
    sys.exit(main())
