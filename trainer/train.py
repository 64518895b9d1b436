"""copygen train: marketing data -> an evaluated, versioned checkpoint. Reads in the order it runs.

1. read the data (pairs for fine-tuning, plain text for pre-training) and clean it: normalise,
   redact personal data, drop duplicates and bad lengths, split train/validation by a seed;
2. build the tokenizer and model: a from-scratch preset with a character tokenizer, or a local
   Hugging Face causal LM (optionally with LoRA adapters, merged before saving);
3. pre-train on raw marketing text and/or fine-tune on product -> copy pairs (loss on the copy);
4. count the n-grams of the training copy and choose, on the validation split, how much of the
   engine's next-token distribution they get (trainer.ngram);
5. write the checkpoint atomically with its manifest, training report and loss curve.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from copygen import prompt
from trainer import checkpoint, clausebook, ngram, wordpairs
from trainer.devices import pick_device
from trainer.fit import IGNORE, FitConfig, FitResult, fit, label_probs
from trainer.presets import PRESETS, gpt2_config

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt",)
SAVE_MARGIN_SECONDS = 20      # left of --max-minutes for validation, the n-gram model and saving
PRETRAIN_SHARE = 0.3          # of the time and epochs, when one run does both stages


@dataclass
class TrainOptions:
    data: list[Path]
    out: Path
    preset: str = "demo"
    base: Path | None = None
    stage: str = "finetune"           # pretrain, finetune or both
    max_minutes: float | None = None
    epochs: float = 3.0
    seed: int = 42
    lora: bool = False
    input_column: str | None = None
    output_column: str | None = None
    style: str | None = None
    vocab: Path | None = None
    device: str = "auto"
    val_fraction: float = 0.1
    resume: bool = True
    progress: bool = True
    eval_every: int | None = None
    ngram_order: int = 0              # of the n-gram models of the training copy (trainer.ngram); 0: none
    mention_weight: float = 1.0       # loss weight of copy characters naming the product's own values
    # pairs read elsewhere (reviewed copy from the copy store), cleaned and redacted like the files',
    # and the records of where they came from, for the manifest's data record
    pairs: list = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)


class TrainError(ValueError):
    """A training request that cannot run; the message names the flag or file to fix."""


def fingerprint(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(file.name.encode())
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def load_data(opts: TrainOptions):
    """Train and validation pairs, pre-training texts, and the report of everything dropped."""
    from trainer import clean, data

    text_paths = [p for p in opts.data if p.suffix.lower() in TEXT_SUFFIXES]
    pair_paths = [p for p in opts.data if p not in text_paths]
    for path in opts.data:
        if not path.exists():
            raise TrainError(f"--data {path}: no such file or directory")
    pairs, pair_report = data.read_pairs(pair_paths, input_column=opts.input_column,
                                         output_column=opts.output_column, style=opts.style) \
        if pair_paths else ([], {})
    pairs = pairs + list(opts.pairs)
    texts, text_report = data.read_texts(text_paths) if text_paths else ([], {})
    train, val, split_report = clean.prepare_pairs(pairs, seed=opts.seed, val_fraction=opts.val_fraction)
    texts, texts_report = clean.prepare_texts(texts) if texts else ([], {})
    report = {"pairs": {"read": pair_report, "prepared": split_report},
              "texts": {"read": text_report, "prepared": texts_report}}
    return train, val, texts, report


def length_edges(copies: list[str]) -> tuple[int, int]:
    """Bucket edges at the 33rd and 67th percentile of copy length, in characters."""
    lengths = sorted(len(c) for c in copies) or [0]
    return lengths[len(lengths) // 3], lengths[2 * len(lengths) // 3]


def encode_pair(tokenizer, pair, edges, max_len: int):
    """(input_ids, labels) with the prompt masked out of the loss; None if it does not fit."""
    head = tokenizer.encode(
        prompt.BOS + prompt.length_code(len(pair.copy), edges) + prompt.style_code(pair.style) + pair.source
        + prompt.SEP, add_special_tokens=False)
    body = tokenizer.encode(pair.copy, add_special_tokens=False) + [tokenizer.convert_tokens_to_ids(prompt.EOS)]
    if len(body) > max_len // 2:
        return None
    head = head[: max_len - len(body) - 1] + head[-1:] if len(head) + len(body) > max_len else head
    return head + body, [IGNORE] * len(head) + body


def mention_weights(pair, example, weight: float):
    """The example with a loss weight per position: `weight` on the characters of the copy's first
    mention of each of the product's own attribute values (the words attributes.wanted_phrases
    gives, so the ones coverage counts), 1 elsewhere. The example unchanged where weight is 1, the
    source is not AdvertiseGen's key#value list, or the copy is not one token per character (a
    pretrained tokenizer).

    Why: most of a copy's loss is spent on characters any product's copy could have, so a small
    model learns to write fluent copy about no product in particular (the demo model's samples
    named 29% of their product's values, the references 99%). Weighing the mentions teaches it to
    read the prompt. Only the first mention, since weighing every one taught it to say a value
    again and again (README, "Training").
    """
    from copygen.attributes import wanted_phrases
    from copygen.compliance import fold
    from trainer.data import parse_content

    if weight == 1:
        return example
    ids, labels = example
    first = len(labels) - sum(1 for t in labels if t != IGNORE)  # the copy's first token
    folded = [fold(ch) for ch in pair.copy]
    if len(ids) - first != len(pair.copy) + 1 or any(len(f) != 1 for f in folded):
        return example
    try:
        attributes = parse_content(pair.source)
    except ValueError:
        return example
    text, weights = "".join(folded), [1.0] * len(ids)
    for forms in wanted_phrases(attributes):
        # the value's first mention only (the longest form where several start there): the weight
        # teaches naming a value, not naming it again
        hits = [(text.find(f), -len(f)) for f in forms if f in text]
        if hits:
            start, minus_length = min(hits)
            weights[first + start:first + start - minus_length] = [weight] * -minus_length
    return ids, labels, weights


def encode_text(tokenizer, text: str, max_len: int):
    ids = tokenizer.encode(prompt.BOS + text + prompt.EOS, add_special_tokens=False)[:max_len]
    return ids, list(ids)


def build_model(opts: TrainOptions, corpus: list[str], preset):
    """(model, tokenizer, tokenizer kind, base description)."""
    import torch

    if opts.base is not None:
        return load_base(opts)
    from transformers import GPT2LMHeadModel

    from trainer.tokenizer import build_char_tokenizer

    tokenizer = build_char_tokenizer(corpus, vocab_file=opts.vocab)
    config = gpt2_config(preset, len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(opts.seed)
    model = GPT2LMHeadModel(config)
    kind = f"char:{'vocab:' + opts.vocab.name if opts.vocab else 'corpus'}:{len(tokenizer)}"
    return model, tokenizer, kind, f"scratch:{opts.preset}"


def load_base(opts: TrainOptions):
    """A local model directory: a copygen checkpoint (e.g. the pre-training stage) or any HF causal LM."""
    base = opts.base
    if not base.is_dir():
        raise TrainError(f"--base {base}: not a directory (models load from local directories only)")
    if (base / checkpoint.MANIFEST).exists():
        model, tokenizer, manifest = checkpoint.load_model_and_tokenizer(base)
        return model.train(), tokenizer, manifest["tokenizer"], f"copygen:{manifest['name']}"
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.tokenizer import add_control_tokens

    if any((base / name).exists() for name in checkpoint.PICKLE_WEIGHTS) and not list(base.glob("*.safetensors")):
        raise TrainError(f"--base {base}: only pickle weights found; convert them to safetensors first")
    try:
        tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(base, trust_remote_code=False, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise TrainError(f"--base {base}: cannot load it as a causal LM ({str(exc).splitlines()[0]})") from None
    if add_control_tokens(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    return model, tokenizer, f"pretrained:{type(tokenizer).__name__}", f"hf:{base.name}"


def apply_lora(model):
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise TrainError("--lora needs peft: pip install 'copygen[lora]'") from None
    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                        modules_to_save=["wte", "embed_tokens", "lm_head"], task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def split_texts(texts: list[str], seed: int, share: float = 0.05):
    import random

    shuffled = list(texts)
    random.Random(seed).shuffle(shuffled)
    cut = max(1, int(len(shuffled) * share)) if len(shuffled) > 20 else 0
    return shuffled[cut:], shuffled[:cut]


def train(opts: TrainOptions) -> Path:
    """Run the whole recipe and return the checkpoint directory."""
    started = time.monotonic()
    if opts.stage not in ("pretrain", "finetune", "both"):
        raise TrainError(f"--stage {opts.stage!r}: choose pretrain, finetune or both")
    if not 0 <= opts.ngram_order <= ngram.MAX_ORDER:
        raise TrainError(f"--ngram-order {opts.ngram_order}: choose 1 to {ngram.MAX_ORDER}, or 0 for none")
    if not (opts.mention_weight > 0 and math.isfinite(opts.mention_weight)):
        raise TrainError(f"--mention-weight {opts.mention_weight}: choose a weight above 0 (1: no weighting)")
    if opts.base is None and opts.preset not in PRESETS:
        raise TrainError(f"--preset {opts.preset!r}: choose one of {', '.join(PRESETS)}")
    train_pairs, val_pairs, texts, report = load_data(opts)
    return train_on(opts, train_pairs, val_pairs, texts, report, started=started)


def train_on(opts: TrainOptions, train_pairs, val_pairs, texts, report, *, started: float | None = None,
             preset=None) -> Path:
    """Train on prepared data (pairs with .source, .copy, .style) and write the checkpoint."""
    started = time.monotonic() if started is None else started
    texts = stage_texts(opts, train_pairs, texts)
    preset = preset or PRESETS.get(opts.preset, PRESETS["small"])
    run = prepare_run(opts, train_pairs, texts, preset)
    results = {stage: fit_stage(opts, run, stage, train_pairs, val_pairs, texts, report, preset, started)
               for stage in run.stages}
    if opts.lora:
        run.model = run.model.merge_and_unload()
    mixture = fit_ngram(opts, run, train_pairs, val_pairs)
    return write_checkpoint(opts, run, results, report, train_pairs, val_pairs, texts, mixture)


def stage_texts(opts: TrainOptions, train_pairs, texts: list[str]) -> list[str]:
    """The pre-training texts (the copy of the pairs joins them when a stage pre-trains); refuses a
    stage that has nothing to train on."""
    if opts.stage in ("finetune", "both") and not train_pairs:
        raise TrainError("fine-tuning needs product -> copy pairs, and --data gave none that survived cleaning")
    if opts.stage == "pretrain":
        texts = texts + [p.copy for p in train_pairs]
        if not texts:
            raise TrainError("pre-training needs text, and --data gave none that survived cleaning")
    elif opts.stage == "both":
        texts = texts + [p.copy for p in train_pairs]
    return texts


@dataclass
class TrainingRun:
    """What the stages of one training run share: the model and how it is trained."""
    model: object
    tokenizer: object
    tokenizer_kind: str
    base: str                 # what the model started from, for the manifest
    device: str
    max_len: int              # tokens per example
    edges: tuple[int, int]    # copy length bucket edges
    stages: list[str]
    work_root: Path           # per-stage resume state, the report and the loss curve before saving


def prepare_run(opts: TrainOptions, train_pairs, texts: list[str], preset) -> TrainingRun:
    """The tokenizer and model (with LoRA adapters when asked), the device and the stages to run."""
    corpus = [p.source for p in train_pairs] + [p.copy for p in train_pairs] + texts
    model, tokenizer, tokenizer_kind, base = build_model(opts, corpus, preset)
    device = pick_device(opts.device)
    max_len = min(preset.n_positions, getattr(model.config, "n_positions", None)
                  or model.config.max_position_embeddings)
    edges = length_edges([p.copy for p in train_pairs] or texts)
    if opts.lora:
        model = apply_lora(model)
    stages = ["pretrain", "finetune"] if opts.stage == "both" else [opts.stage]
    return TrainingRun(model, tokenizer, tokenizer_kind, base, device, max_len, edges, stages,
               work_root=opts.out.with_name(f".{opts.out.name}.work"))


def stage_examples(run: TrainingRun, stage: str, train_pairs, val_pairs, texts: list[str], report: dict,
                   seed: int, mention_weight: float = 1.0):
    """(train, validation) examples of a stage: raw text to pre-train on, or prompt -> copy pairs."""
    if stage == "pretrain":
        pre_train, pre_val = split_texts(texts, seed)
        return ([encode_text(run.tokenizer, t, run.max_len) for t in pre_train],
                [encode_text(run.tokenizer, t, run.max_len) for t in pre_val])
    train_ex = [mention_weights(p, e, mention_weight) for p, e in
                ((p, encode_pair(run.tokenizer, p, run.edges, run.max_len)) for p in train_pairs) if e]
    val_ex = [e for e in (encode_pair(run.tokenizer, p, run.edges, run.max_len) for p in val_pairs) if e]
    report["too_long_for_model"] = {"train": len(train_pairs) - len(train_ex),
                                    "val": len(val_pairs) - len(val_ex), "max_tokens": run.max_len}
    return train_ex, val_ex


def fit_stage(opts: TrainOptions, run: TrainingRun, stage: str, train_pairs, val_pairs, texts: list[str],
              report: dict, preset, started: float) -> FitResult:
    """Train one stage (resuming it where an interrupted run left it) within its share of the time
    and epochs; the model is left holding the stage's best weights."""
    both = len(run.stages) == 2
    share = (PRETRAIN_SHARE if stage == "pretrain" else 1 - PRETRAIN_SHARE) if both else 1.0
    train_ex, val_ex = stage_examples(run, stage, train_pairs, val_pairs, texts, report, opts.seed,
                                      opts.mention_weight)
    max_seconds = None
    if opts.max_minutes is not None:
        left = opts.max_minutes * 60 - (time.monotonic() - started) - SAVE_MARGIN_SECONDS
        stage_budget = left if stage == run.stages[-1] else left * share
        max_seconds = max(1.0, stage_budget)
    steps_per_epoch = math.ceil(len(train_ex) / preset.batch_size)
    cfg = FitConfig(batch_size=preset.batch_size, learning_rate=preset.learning_rate,
                    warmup_steps=min(preset.warmup_steps, max(1, steps_per_epoch // 2)),
                    epochs=opts.epochs * share if both else opts.epochs,
                    max_seconds=max_seconds, seed=opts.seed, device=run.device,
                    mention_weight=opts.mention_weight if stage == "finetune" else 1.0,
                    eval_every=opts.eval_every or max(20, steps_per_epoch // 2))
    log.info("%s: %d training and %d validation sequences on %s", stage, len(train_ex), len(val_ex),
             run.device)
    return fit(run.model, train_ex, val_ex, pad_id=run.tokenizer.pad_token_id, cfg=cfg,
               work_dir=run.work_root / stage, resume=opts.resume, progress=opts.progress)


def fit_ngram(opts: TrainOptions, run: TrainingRun, train_pairs, val_pairs):
    """(the n-gram models of the training copy, their manifest record) for a fine-tuned model; None
    when there are none to make (no --ngram-order, no fine-tuning, no validation copy, or a
    vocabulary too large)."""
    if (not opts.ngram_order or "finetune" not in run.stages
            or run.model.get_output_embeddings().weight.shape[0] > ngram.MAX_VOCAB):
        return None

    def keyed(pairs):  # (the type the copy is counted under, the training example) of each pair that fits
        encoded = ((ngram.key_of(p.source), encode_pair(run.tokenizer, p, run.edges, run.max_len)) for p in pairs)
        return [(key, example) for key, example in encoded if example]

    train, val = keyed(train_pairs), keyed(val_pairs)
    if not train or not val:
        return None
    started = time.monotonic()
    mixture = mixture_for(run.model, run.tokenizer, train, val, opts.ngram_order, run.device)
    log.info("n-gram models counted and weighed in %.1f s", time.monotonic() - started)
    return mixture


def mixture_for(model, tokenizer, train, val, order: int, device: str = "cpu"):
    """(the n-gram models of the training copy, their manifest record): train and val are (type key,
    example) pairs; the network's share of the mixture is the one with the lowest perplexity on
    the validation copy."""
    import numpy as np  # lazy: nothing heavy at import

    def copy_of(example):  # the labelled tokens: the copy and its end token
        return [t for t in example[1] if t != IGNORE]

    models = ngram.NgramSet.build([copy_of(e) for _, e in train], [key for key, _ in train],
                                  vocab_size=model.get_output_embeddings().weight.shape[0],
                                  start_id=tokenizer.convert_tokens_to_ids(prompt.SEP), order=order)
    network = label_probs(model, [e for _, e in val], tokenizer.pad_token_id, device)
    counted = np.concatenate(models.token_probs([copy_of(e) for _, e in val], [key for key, _ in val]))
    weight, perplexity = ngram.choose_weight(network, counted)
    log.info("n-gram models (order %d; %s): validation perplexity %.2f alone, %.2f mixed with the network's %.2f "
             "at weight %.2f", order, ", ".join(k or "all" for k in models.models), perplexity["ngram"],
             perplexity["mixed"], perplexity["network"], weight)
    types = sorted(k for k in models.models if k != ngram.ALL)
    return models, {"order": order, "weight": weight, "types": types, "val_perplexity": perplexity}


def count_word_pairs(train_pairs, texts: list[str]) -> wordpairs.WordPairs | None:
    """The pairs of neighbouring words of everything the model was trained on (trainer.wordpairs),
    or None when it read nothing."""
    corpus = [p.copy for p in train_pairs] + list(texts)
    if not corpus:
        return None
    started = time.monotonic()
    pairs = wordpairs.WordPairs.count(corpus)
    log.info("%d pairs of neighbouring words counted in %d texts in %.1f s", len(pairs), len(corpus),
             time.monotonic() - started)
    return pairs


def write_checkpoint(opts: TrainOptions, run: TrainingRun, results: dict[str, FitResult], report: dict,
                     train_pairs, val_pairs, texts: list[str], mixture=None) -> Path:
    """The checkpoint with its manifest, training report and loss curve, written atomically; the
    working state of the run is removed once it is saved."""
    from trainer.plot import loss_curve

    final = results[run.stages[-1]]
    metrics = {"val_loss": final.best_val_loss, "val_perplexity": math.exp(min(final.best_val_loss, 50))}
    training = {
        "stages": {s: {"steps": r.steps, "tokens": r.tokens, "seconds": round(r.seconds, 1),
                       "tokens_per_second": round(r.tokens_per_second, 1),
                       "best_val_loss": r.best_val_loss, "stopped_by_time": r.stopped_by_time}
                   for s, r in results.items()},
        "preset": opts.preset if opts.base is None else None, "seed": opts.seed, "epochs": opts.epochs,
        "max_minutes": opts.max_minutes, "lora": opts.lora, "device": run.device,
        "mention_weight": opts.mention_weight,
        "parameters": sum(p.numel() for p in run.model.parameters()),
    }
    data_fingerprint = fingerprint(opts.data)
    if opts.sources:  # pairs from the copy store: their digests join the files'
        data_fingerprint = hashlib.sha256(
            (data_fingerprint + "".join(s["fingerprint"] for s in opts.sources)).encode()).hexdigest()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    manifest = checkpoint.new_manifest(
        name=f"{opts.out.name}-{stamp}-{data_fingerprint[:6]}", tokenizer_kind=run.tokenizer_kind,
        base=run.base, length_edges=run.edges, metrics=metrics, training=training,
        # absolute paths: eval finds the training files, and so the validation split, from any directory
        data={"paths": [str(p.resolve()) for p in opts.data], "fingerprint": data_fingerprint,
              "seed": opts.seed, "val_fraction": opts.val_fraction,
              "input_column": opts.input_column, "output_column": opts.output_column, "style": opts.style,
              "sources": opts.sources,
              "counts": {"train_pairs": len(train_pairs), "val_pairs": len(val_pairs), "texts": len(texts)}},
    )
    extra_files = {}
    pairs = count_word_pairs(train_pairs, texts)
    if pairs is not None:
        manifest["word_pairs"] = {"pairs": len(pairs)}
        run.work_root.mkdir(parents=True, exist_ok=True)
        pairs.save(run.work_root / wordpairs.FILE)
        extra_files[wordpairs.FILE] = run.work_root / wordpairs.FILE
    if train_pairs:  # the clauses a job with known_clauses may write (trainer.clausebook)
        book = clausebook.ClauseBook.collect((p.source, p.copy, p.torn) for p in train_pairs)
        manifest["clauses"] = {"clauses": len(book), "facts": sum(bool(f) for f in book.facts), "torn": book.torn,
                               "other_garment": book.other_garment, "leaning": book.leaning,
                               "unlisted_part": book.unlisted_part,
                               "followed": sum(bool(f) for f in book.followers),
                               "word_copies": clausebook.WORD_COPIES, "doubled_copies": clausebook.DOUBLED_COPIES,
                               "char_copies": clausebook.CHAR_COPIES,
                               "styled": book.styled,
                               "effects": sum(bool(keys) for keys in book.subjects),
                               "starting": sum(book.starts)}
        run.work_root.mkdir(parents=True, exist_ok=True)
        book.save(run.work_root / clausebook.FILE)
        extra_files[clausebook.FILE] = run.work_root / clausebook.FILE
    if mixture is not None:
        lm, manifest["ngram"] = mixture
        metrics["val_perplexity_mixed"] = manifest["ngram"]["val_perplexity"]["mixed"]
        run.work_root.mkdir(parents=True, exist_ok=True)
        lm.save(run.work_root / ngram.FILE)
        extra_files[ngram.FILE] = run.work_root / ngram.FILE
    history, boundaries, offset = [], [], 0
    for r in results.values():  # one step axis across the stages
        history += [{**h, "step": h["step"] + offset} for h in r.history]
        offset += r.steps
        boundaries.append(offset)
    plot = loss_curve(history, run.work_root / "loss.png", f"{opts.out.name}: {' + '.join(run.stages)}",
                      stage_ends=boundaries[:-1])
    report_path = run.work_root / "report.json"
    report_path.write_text(json.dumps({"data": report, "training": training, "metrics": metrics,
                                       "ngram": manifest.get("ngram")},
                                      ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    out = checkpoint.save_checkpoint(run.model, run.tokenizer, manifest, opts.out,
                                     extra_files={"loss.png": plot, "report.json": report_path, **extra_files})
    shutil.rmtree(run.work_root, ignore_errors=True)
    return out
