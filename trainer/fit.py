"""The training loop: AdamW, warmup then cosine decay, validation loss, best-model keeping, resume.

Examples are (input_ids, labels) pairs; labels are -100 where no loss is taken (the prompt, in
fine-tuning). A training example may carry a third item, a loss weight per labelled token (the
copy's mentions of the product's own values, trainer.train.mention_weights); the loss is then the
weighted mean. Batches are drawn from length buckets so padding stays small: a batch of 16 copies
of ~140 tokens wastes ~5% on padding instead of ~40% when lengths are mixed at random.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

IGNORE = -100
STATE_FILE = "train_state.pt"
BEST_FILE = "best.safetensors"
# the settings a resumed run must share with the run it continues: another batch size, learning rate,
# seed or loss weighting would silently train half the model one way and half another
RESUMED_AS_SAVED = ("batch_size", "learning_rate", "seed", "mention_weight")


class ResumeError(ValueError):
    """The interrupted run found in the work directory was trained with other settings."""


@dataclass
class FitConfig:
    batch_size: int
    learning_rate: float
    warmup_steps: int
    epochs: float = 1.0
    max_seconds: float | None = None  # wall-time bound; the loop stops and keeps the best model
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 200             # optimiser steps between validation passes
    seed: int = 0
    device: str = "cpu"
    mention_weight: float = 1.0       # not used by the loop (the weights travel in the examples); kept
                                      # so a resume with another weight is refused


@dataclass
class FitResult:
    steps: int = 0
    tokens: int = 0                   # tokens the model was trained on (padding excluded)
    seconds: float = 0.0
    best_val_loss: float = math.inf
    history: list = field(default_factory=list)   # {"step", "train_loss"} and {"step", "val_loss"}
    stopped_by_time: bool = False

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def make_batches(examples, batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped into batches of similar length, in a shuffled order."""
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i][0]), rng.random()))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


# Batches are padded to a multiple of this many tokens. The CPU kernels (oneDNN under bf16
# autocast) cache a plan per input shape and never free it: with one width per batch a `small` run
# grew to 10 GB of RSS; with widths in steps of 16 (measured with GPT-2 4x256, random widths
# 40-300, 60 steps) memory stays at 1.8 GB instead of climbing past 2.9 GB. The padding is masked
# out of the loss.
WIDTH_MULTIPLE = 16


def collate(examples, indices, pad_id: int, max_width: int | None = None):
    import torch

    longest = max(len(examples[i][0]) for i in indices)
    width = -(-longest // WIDTH_MULTIPLE) * WIDTH_MULTIPLE
    if max_width:
        width = max(longest, min(width, max_width))
    ids = torch.full((len(indices), width), pad_id, dtype=torch.long)
    labels = torch.full((len(indices), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(indices), width), dtype=torch.long)
    for row, i in enumerate(indices):
        x, y = examples[i][:2]
        ids[row, :len(x)] = torch.tensor(x)
        labels[row, :len(y)] = torch.tensor(y)
        mask[row, :len(x)] = 1
    return ids, labels, mask


def collate_weights(examples, indices, width: int):
    """The loss weight of each position of a collated batch (1 where an example carries none), or
    None when no example in it carries weights."""
    import torch

    if all(len(examples[i]) < 3 for i in indices):
        return None
    weights = torch.ones((len(indices), width), dtype=torch.float32)
    for row, i in enumerate(indices):
        if len(examples[i]) > 2:
            w = examples[i][2]
            weights[row, :len(w)] = torch.tensor(w, dtype=torch.float32)
    return weights


def evaluate_loss(model, examples, pad_id: int, device: str, batch_size: int = 32) -> float:
    """Mean loss per labelled token over examples."""
    import torch

    if not examples:
        return math.nan
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    with torch.inference_mode(), _autocast(device):
        for start in range(0, len(order), batch_size):
            batch = collate(examples, order[start:start + batch_size], pad_id, max_positions(model))
            ids, labels, mask = (t.to(device) for t in batch)
            total += _token_losses(model(input_ids=ids, attention_mask=mask).logits, labels).sum().item()
            count += int((labels[:, 1:] != IGNORE).sum())
    model.train()
    return total / max(count, 1)


def label_probs(model, examples, pad_id: int, device: str, batch_size: int = 32):
    """p of each labelled token (what the loss scores), example by example in order, flat: the
    network's side of the n-gram mixture's validation perplexity (trainer.ngram.choose_weight)."""
    import numpy as np  # lazy: nothing heavy at import
    import torch

    found: list = [None] * len(examples)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    model.eval()
    with torch.inference_mode(), _autocast(device):
        for start in range(0, len(order), batch_size):
            picked = order[start:start + batch_size]
            ids, labels, mask = (t.to(device) for t in collate(examples, picked, pad_id, max_positions(model)))
            probs = torch.softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
            wanted = labels[:, 1:]
            picked_p = probs.gather(2, wanted.clamp(min=0)[:, :, None]).squeeze(2)
            for row, i in enumerate(picked):
                found[i] = picked_p[row][wanted[row] != IGNORE].cpu().numpy().astype(np.float64)
    model.train()
    return np.concatenate(found) if found else np.zeros(0)


# Transformers' eager attention (matrix products and a softmax) against SDPA's flash kernel on CPU,
# whose backward pass is slow on short sequences: time per demo training step, eager / SDPA, bfloat16
# autocast on the 2-core Xeon of 2026-12-05: 0.785 at the ~160 tokens of an AdvertiseGen pair
# (`bench/train_step.py --peer-activation gelu --peer-attention sdpa`), 1.02 at 256, 1.35 at 384; in
# float32 within 2% either way. A stage whose median example is at most this long trains with eager.
EAGER_ATTENTION_UP_TO = 200


def _pick_attention(model, examples, device: str) -> None:
    """Eager attention for a CPU stage of short examples, SDPA otherwise. Only the running model
    changes: the implementation is not saved with the checkpoint, which loads with the default."""
    if not device.startswith("cpu") or not examples or not hasattr(model, "set_attn_implementation"):
        return
    lengths = sorted(len(example[0]) for example in examples)
    model.set_attn_implementation("eager" if lengths[len(lengths) // 2] <= EAGER_ATTENTION_UP_TO else "sdpa")


def max_positions(model) -> int | None:
    """The longest input the model's position embeddings take (None where it has no fixed limit)."""
    return getattr(model.config, "max_position_embeddings", None)


@functools.cache
def bf16_available(device: str) -> bool:
    """bfloat16 autocast pays off on CUDA and on CPUs with native bf16 (AVX512-BF16, AMX): ~2x here."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="ignore")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _autocast(device: str):
    import contextlib

    import torch

    if bf16_available(device):
        return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _lr_at(step: int, total: int, cfg: FitConfig, elapsed: float) -> float:
    """Linear warmup, then cosine decay to 10% — over the steps, or over the wall-time bound when
    that comes first, so a run cut by --max-minutes still ends on a low learning rate."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    if cfg.max_seconds:
        progress = max(progress, elapsed / cfg.max_seconds)
    progress = min(1.0, progress)
    return cfg.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def fit(model, train, val, *, pad_id: int, cfg: FitConfig, work_dir: Path, resume: bool = True,
        progress: bool = True) -> FitResult:
    """Train model in place; on return it holds the weights with the best validation loss."""
    import torch
    from safetensors.torch import load_file

    work_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model.to(cfg.device).train()
    _pick_attention(model, train, cfg.device)
    optimizer = _optimizer(model, cfg)
    result, at = FitResult(), _Position()
    if resume and (work_dir / STATE_FILE).exists():
        at = _restore(work_dir, model, optimizer, result, cfg)
    started = time.monotonic() - result.seconds
    _train_steps(model, optimizer, train, val, pad_id=pad_id, cfg=cfg, work_dir=work_dir, result=result,
                 at=at, started=started, progress=progress)
    if not result.history or "val_loss" not in result.history[-1]:
        _validate(model, val, pad_id, cfg, work_dir, result)
    result.seconds = time.monotonic() - started
    model.load_state_dict(load_file(str(work_dir / BEST_FILE)))
    model.eval()
    return result


@dataclass
class _Position:
    """Where the loop is: the epoch, and the next batch of it."""
    epoch: int = 0
    batch: int = 0


def _optimizer(model, cfg: FitConfig):
    """AdamW, with no weight decay on biases and norms."""
    import torch

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.learning_rate, betas=(0.9, 0.95))


def _restore(work_dir: Path, model, optimizer, result: FitResult, cfg: FitConfig) -> _Position:
    """Load the state an interrupted run saved: weights, optimiser, counters, history, random state.
    Refused when that run was trained with other settings; older states, saved without them, resume."""
    import torch

    state = torch.load(work_dir / STATE_FILE, weights_only=True)
    saved = state.get("settings", {})
    changed = [f"{name} {saved[name]} (now {getattr(cfg, name)})" for name in RESUMED_AS_SAVED
               if name in saved and saved[name] != getattr(cfg, name)]
    if changed:
        raise ResumeError(f"{work_dir}: the interrupted run there was trained with {', '.join(changed)}; "
                          "rerun it with its settings to resume, or pass --no-resume to start over")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    at = _Position(state["epoch"], state["batch_in_epoch"])
    result.steps, result.tokens, result.seconds = state["steps"], state["tokens"], state["seconds"]
    result.best_val_loss, result.history = state["best_val_loss"], list(state["history"])
    torch.set_rng_state(state["torch_rng"])
    log.info("resuming from step %d (epoch %d, batch %d)", result.steps, at.epoch, at.batch)
    return at


def _save_state(work_dir: Path, model, optimizer, result: FitResult, at: _Position, cfg: FitConfig) -> None:
    """What _restore reads, written atomically."""
    import torch

    torch.save({
        "settings": {name: getattr(cfg, name) for name in RESUMED_AS_SAVED},
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": at.epoch,
        "batch_in_epoch": at.batch, "steps": result.steps, "tokens": result.tokens,
        "seconds": result.seconds, "best_val_loss": result.best_val_loss, "history": result.history,
        "torch_rng": torch.get_rng_state(),
    }, work_dir / (STATE_FILE + ".tmp"))
    (work_dir / (STATE_FILE + ".tmp")).replace(work_dir / STATE_FILE)


def _validate(model, val, pad_id: int, cfg: FitConfig, work_dir: Path, result: FitResult) -> float:
    """The validation loss, recorded; the weights are kept when it is the best so far."""
    from safetensors.torch import save_file

    val_loss = evaluate_loss(model, val, pad_id, cfg.device)
    result.history.append({"step": result.steps, "val_loss": val_loss})
    if val_loss < result.best_val_loss or not (work_dir / BEST_FILE).exists():
        result.best_val_loss = min(val_loss, result.best_val_loss)
        save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()},
                  str(work_dir / BEST_FILE))
    return val_loss


def _train_steps(model, optimizer, train, val, *, pad_id: int, cfg: FitConfig, work_dir: Path,
                 result: FitResult, at: _Position, started: float, progress: bool) -> None:
    """Optimiser steps from `at` until the epochs or the time bound are spent, validating and saving
    the resume state every cfg.eval_every steps."""
    from tqdm import tqdm

    total_steps = max(1, math.ceil(cfg.epochs * math.ceil(len(train) / cfg.batch_size)))
    bar = tqdm(total=total_steps, initial=result.steps, disable=not progress, unit="step",
               desc="training", dynamic_ncols=True)
    running = None
    while result.steps < total_steps:
        batches = make_batches(train, cfg.batch_size, random.Random(cfg.seed * 1_000_003 + at.epoch))
        while at.batch < len(batches) and result.steps < total_steps:
            batch = collate(train, batches[at.batch], pad_id, max_positions(model))
            ids, labels, mask = (t.to(cfg.device) for t in batch)
            weights = collate_weights(train, batches[at.batch], ids.shape[1])
            lr = _lr_at(result.steps, total_steps, cfg, time.monotonic() - started)
            loss = _step(model, optimizer, ids, labels, mask, lr, cfg,
                         None if weights is None else weights.to(cfg.device))

            at.batch += 1
            result.steps += 1
            result.tokens += int(mask.sum())
            result.seconds = time.monotonic() - started
            running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
            if result.steps % 10 == 0:
                result.history.append({"step": result.steps, "train_loss": running})
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}", tok_s=f"{result.tokens_per_second:,.0f}")
            if result.steps % cfg.eval_every == 0:
                val_loss = _validate(model, val, pad_id, cfg, work_dir, result)
                bar.set_postfix(loss=f"{running:.3f}", val=f"{val_loss:.3f}")
                _save_state(work_dir, model, optimizer, result, at, cfg)
            if cfg.max_seconds is not None and result.seconds >= cfg.max_seconds:
                result.stopped_by_time = True
                break
        if result.stopped_by_time:
            break
        at.epoch, at.batch = at.epoch + 1, 0
    bar.close()


def _step(model, optimizer, ids, labels, mask, lr: float, cfg: FitConfig, weights=None):
    """One optimiser step at learning rate lr; the batch's loss (a tensor): the mean over labelled
    tokens, or their weighted mean when weights (one per position) are given."""
    import torch

    for group in optimizer.param_groups:
        group["lr"] = lr
    with _autocast(cfg.device):
        if weights is None:
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        else:
            loss = _weighted_loss(model(input_ids=ids, attention_mask=mask).logits, labels, weights)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    return loss


def _token_losses(logits, labels):
    """The next-token loss at each position, flat (0 where the label is IGNORE)."""
    import torch

    return torch.nn.functional.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1),
        ignore_index=IGNORE, reduction="none")


def _weighted_loss(logits, labels, weights):
    """The weighted mean next-token loss over labelled positions (labels and weights as collated)."""
    w = weights[:, 1:].reshape(-1) * (labels[:, 1:].reshape(-1) != IGNORE)
    return (_token_losses(logits, labels) * w).sum() / w.sum().clamp(min=1e-6)
