"""copygen train, eval, generate and models: the commands that make and try checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

from copygen.catalogue import (
    DEFAULT_LENGTH,
    DEFAULT_STYLE,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    DEFAULT_VARIANTS,
)
from copygen.cli_review import add_store_data_options, training_data
from copygen.prompt import LENGTHS, STYLE_CODES
from trainer.ngram import MAX_ORDER as NGRAM_MAX_ORDER
from trainer.ngram import ORDER as NGRAM_ORDER


def cmd_train(args) -> int:
    from trainer.train import TrainOptions, train

    files, store_pairs, sources = training_data(args)  # files, and reviewed copy from copy stores
    opts = TrainOptions(
        data=files, pairs=store_pairs, sources=sources, out=Path(args.out), preset=args.preset,
        base=Path(args.base) if args.base else None, stage=args.stage, max_minutes=args.max_minutes,
        epochs=args.epochs, seed=args.seed, lora=args.lora, input_column=args.input_column,
        output_column=args.output_column, style=args.style, vocab=Path(args.vocab) if args.vocab else None,
        device=args.device, val_fraction=args.val_fraction, resume=not args.no_resume,
        progress=not args.quiet, ngram_order=args.ngram_order, mention_weight=args.mention_weight)
    out = train(opts)
    manifest = json.loads((out / "copygen.json").read_text(encoding="utf-8"))
    print(f"checkpoint {out} ({manifest['name']})")
    for stage, figures in manifest["training"]["stages"].items():
        print(f"  {stage}: {figures['steps']} steps, {figures['tokens']:,} tokens in {figures['seconds']:.0f} s "
              f"({figures['tokens_per_second']:,.0f} tokens/s), best validation loss {figures['best_val_loss']:.3f}")
    print(f"  validation perplexity {manifest['metrics']['val_perplexity']:.2f}; loss curve {out / 'loss.png'}")
    if "ngram" in manifest:
        mixture = manifest["ngram"]
        print(f"  with the {mixture['order']}-gram models of the training copy ({1 - mixture['weight']:.0%} of each "
              f"next-token distribution): {mixture['val_perplexity']['mixed']:.2f}")
    return 0


def cmd_eval(args) -> int:
    from trainer.evaluate import EvalOptions, format_table, run_eval
    from worker.pipeline import worker_choice

    summary = run_eval(EvalOptions(
        checkpoint=Path(args.checkpoint), data=[Path(p) for p in args.data], out=Path(args.out),
        limit=args.limit, decoding=args.decoding, no_repeat_ngram=args.no_repeat_ngram,
        honour_length=args.honour_length, use_ngram=not args.no_ngram, seed=args.seed, device=args.device,
        batch_size=args.batch_size, progress=not args.quiet),
        choose=None if args.no_worker_choice else worker_choice)
    print(format_table(summary))
    print(f"wrote {Path(args.out) / 'predictions.jsonl'} and {Path(args.out) / 'metrics.json'}")
    return 0


def cmd_generate(args) -> int:
    from copygen.catalogue import Product, parse_attributes
    from copygen.compliance import banned_phrases_for_decoding, load_lexicon
    from copygen.settings import get_settings
    from trainer.generation import NO_REPEAT_NGRAM, Generator, Request

    max_variants = get_settings().max_variants
    if not 1 <= args.variants <= max_variants:
        raise ValueError(f"--variants: need 1 to {max_variants} (COPYGEN_MAX_VARIANTS), got {args.variants}")
    try:
        attributes = parse_attributes(args.attributes)
    except ValueError as exc:
        raise ValueError(f"--attributes: {exc}") from None
    product = Product(external_id="cli", title=args.title or "", attributes=attributes,
                      description=args.description or "")
    if not product.source():
        raise ValueError("give the product: --attributes, --title or --description")
    generator = Generator.load(args.checkpoint, device=args.device)
    lexicon = load_lexicon()
    [texts] = generator.generate(
        [Request(product.source(), args.variants, args.length, args.style, args.opening)],
        temperature=args.temperature, top_p=args.top_p, seed=args.seed, banned=banned_phrases_for_decoding(lexicon),
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
        mixture = f"  {m['ngram']['order']}-gram mixed in ({1 - m['ngram']['weight']:.0%})" if m.get("ngram") else ""
        print(f"{mark} {path}  {m['name']}  base={m['base']}  created {m['created_at']}  "
              f"val_loss={metrics.get('val_loss', float('nan')):.3f}{mixture}")
    print("(* = COPYGEN_CHECKPOINT, the worker's default)")
    return 0


def add_training_commands(sub) -> None:
    p = sub.add_parser("train", help="train a checkpoint on marketing data")
    p.add_argument("--data", action="append", required=True, metavar="PATH",
                   help="AdvertiseGen JSONL, Taobao src/tgt directory, CSV/Excel, .txt for pre-training, or a copy "
                        "store's database URL (its approved and edited copy); repeatable")
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
    p.add_argument("--style", choices=list(STYLE_CODES), help=f"style code for CSV/Excel data (default {DEFAULT_STYLE})")
    p.add_argument("--vocab", help="build the character vocabulary from this vocab.txt instead of the corpus")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of pairs held out for validation")
    p.add_argument("--no-resume", action="store_true", help="start over even if an interrupted run is found")
    p.add_argument("--ngram-order", type=int, default=0, metavar="N",
                   help=f"count the n-grams of the training copy (one model per garment type) for the engine to mix "
                        f"into the network's distribution, up to order {NGRAM_MAX_ORDER} ({NGRAM_ORDER} for the demo "
                        f"model; default 0: none)")
    p.add_argument("--mention-weight", type=float, default=1.0, metavar="W",
                   help="fine-tuning: weigh the loss on the copy's characters that name the product's own attribute "
                        "values W times the rest (default 1: no weighting)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_store_data_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="score a checkpoint (ChatGLM-6B protocol) against the retrieval baseline")
    p.add_argument("checkpoint")
    p.add_argument("--data", action="append", required=True, metavar="PATH", help="evaluation data; repeatable")
    p.add_argument("--out", required=True, help="directory for predictions.jsonl and metrics.json")
    p.add_argument("--limit", type=int, help="evaluate the first N rows only")
    p.add_argument("--decoding", default="sample", choices=["greedy", "sample"],
                   help="sample = top_p 0.7, temperature 0.95 (the protocol)")
    p.add_argument("--no-repeat-ngram", type=int, default=0, metavar="N",
                   help="forbid repeating any N tokens and doubling a run of 2-3, as the worker does with N=4 "
                        "(default 0: the protocol)")
    p.add_argument("--honour-length", action="store_true",
                   help="decode the protocol row as the worker decodes, with copy as long as its length setting "
                        "asks: not ended before its fewest characters, the end token at the model's own odds "
                        "(default: Hugging Face's top-p, the protocol; the worker-choice row always honours it)")
    p.add_argument("--no-ngram", action="store_true",
                   help="decode from the network alone, without the checkpoint's n-gram model (an A/B)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=64, help="sequences per generation batch")
    p.add_argument("--no-worker-choice", action="store_true",
                   help="skip the row of what the worker publishes (rank-1 of 3, chosen from candidates)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("generate", help="print copy variants for one product, to try a model by hand")
    p.add_argument("checkpoint")
    p.add_argument("--attributes", help='"类型#上衣*颜色#白色*..." or a JSON object')
    p.add_argument("--title", help="product title")
    p.add_argument("--description", help="free-text description")
    p.add_argument("--opening", default="", help='phrase the copy starts with, e.g. "新品上市，"')
    p.add_argument("--variants", type=int, default=DEFAULT_VARIANTS,
                   help=f"how many variants, 1 to COPYGEN_MAX_VARIANTS (default {DEFAULT_VARIANTS})")
    p.add_argument("--length", default=DEFAULT_LENGTH, choices=LENGTHS)
    p.add_argument("--style", default=DEFAULT_STYLE, choices=list(STYLE_CODES))
    p.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE)
    p.add_argument("--top-p", type=float, default=DEFAULT_TOP_P)
    p.add_argument("--seed", type=int, help="sampling seed (default: random)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("models", help="list local checkpoints and whether the worker would load them")
    p.add_argument("--dir", default="models", help="directory holding checkpoints (default models/)")
    p.set_defaults(func=cmd_models)
