"""copygen's generation engine: many prompts, k sampled variants each, batched on one device.

This is the code the worker runs and bench/throughput.py measures. One generate() call

1. turns every request into k rows (prompt ids, token budget) and sorts them by prompt length;
2. keeps a fixed number of *slots* decoding together over a preallocated KV cache, and refills a
   slot with the next row as soon as its copy ends (continuous batching): short copy never waits
   for long copy, and the batch stays full until the queue runs dry, after which it is compacted;
3. runs each product's prompt once (prefill) and copies its keys and values into the slots of
   its k variants;
4. samples with temperature and nucleus (top-p) without sorting the vocabulary (a draw from the
   tempered distribution is kept when it lies in the nucleus, else drawn again), from a
   counter-based random stream per (seed, request, variant, step): a row's copy depends on the
   seed and on its own logits, not on which rows share its batch;
5. blocks banned phrases (Advertising Law terms) at decode time with an Aho-Corasick automaton
   over token ids: the token that would complete a banned phrase gets probability zero.

GPT-2 models (every from-scratch preset, and GPT-2 bases) decode through a native path: the
checkpoint's weights read straight from its safetensors (the Hugging Face model class is never
imported: ~90 MB less per worker), a few torch calls per layer over the static cache, and no
per-step Python work per row. On CPU, attention reads a bfloat16 cache through a fused kernel that
torch's Inductor compiles ahead of time, once per machine (see _attention_kernel); without a C++
compiler it falls back to batched matrix products over a float32 cache. Other architectures decode
through Hugging Face's forward with a dynamic cache in static batches (same sampling, same
blocking, no refilling).

Where the time goes (demo checkpoint, 192 slots, 2 CPU cores, `bench/throughput.py --profile`):
the linear layers 35% and the LM head 6%, attention over the cache 26% (memory bound: every
cached key and value is read once per token), prefill 8%, sampling 8%, the per-step torch calls
and cache writes 8%, compaction of the batch once the queue is empty 6%.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from copygen import prompt

log = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = {"short": 64, "medium": 200, "long": 300}
KV_CACHE_BYTES = 512 * 2**20  # slots are capped so the KV cache stays within this
REFILL_SHARE = 16  # refill once 1/16 of the slots (at least one) are free: fewer, larger prefills
PREFILL_TOKENS = 2048  # prompt positions per prefill pass: bounded activations for a large refill
# Copy must not write the same 4 tokens twice (characters, for the character tokenizer): the model's
# own copy repeats 4-grams 3.7x as often as human copy (1.47% vs 0.40% of them, on the validation
# split), which reads as stutter ("显瘦显瘦") and trips the repetition filter.
NO_REPEAT_NGRAM = 4
COMPACT_BELOW = 0.75  # with no rows waiting, drop finished slots once fewer than 3/4 are alive


@dataclass(frozen=True)
class Request:
    source: str
    variants: int = 1
    length: str = "medium"
    style: str = "ad"
    opening: str = ""


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str, dtype: str = "auto"):
    """The torch dtype the weights run in: float32, bfloat16 or float16, or for "auto" bfloat16 on a
    CUDA device that has it and float32 elsewhere. On CPU bfloat16 weights gain only 10-25% (the
    cache is bfloat16 either way) and grow the process by ~1 MB per distinct batch shape (oneDNN
    keeps reordered weights per shape): see bench/README.md."""
    import torch

    named = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype != "auto":
        try:
            return named[str(dtype)]
        except KeyError:
            raise ValueError(f"dtype must be auto, {', '.join(named)}, not {dtype!r}") from None
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


@dataclass
class _Row:
    request: int
    variant: int
    ids: list[int]
    budget: int


class Generator:
    """One model on one device, loaded once; generate() is safe to call many times."""

    def __init__(self, model, tokenizer, manifest: dict, device: str, batch_size: int = 48, *,
                 native: bool = True, decoder: _GPT2Decoder | None = None, checkpoint_dir: Path | None = None,
                 attention: str = "auto"):
        """model: a Hugging Face causal LM; or None with a decoder built from the checkpoint's
        weights (Generator.load does that for GPT-2: it never imports the Hugging Face model)."""
        self._model = model
        self._checkpoint_dir = checkpoint_dir
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.device = device
        self.batch_size = batch_size
        self.model_version = manifest["name"]
        if decoder is None:
            native = native and _GPT2Decoder.supports(model.config.to_dict())
            decoder = _GPT2Decoder.from_model(model, attention) if native else _HFDecoder(model)
        self._decoder = decoder
        self.dtype = decoder.dtype
        self.max_positions = decoder.max_positions
        self.vocab_size = decoder.vocab_size
        self.eos_id = tokenizer.convert_tokens_to_ids(prompt.EOS)
        self.pad_id = tokenizer.convert_tokens_to_ids(prompt.PAD)
        if self.pad_id is None or self.pad_id == tokenizer.unk_token_id:
            self.pad_id = tokenizer.pad_token_id
        never = set(tokenizer.all_special_ids) - {self.eos_id}
        never |= set(range(len(tokenizer), self.vocab_size))  # rows of the embedding no token uses
        self._never_ids = sorted(never)
        self._heads: dict[tuple[str, str], list[int]] = {}

    @classmethod
    def load(cls, checkpoint_dir: str | os.PathLike, device: str = "auto", batch_size: int = 48,
             dtype: str = "auto", attention: str = "auto") -> Generator:
        """The checkpoint's model on device; refuses a directory that is not a usable checkpoint
        (CheckpointError, one line). dtype: auto, float32, bfloat16 or float16 (see pick_dtype);
        attention (GPT-2 models): auto, sdpa, kernel (CPU, bfloat16 cache) or matmul (float32 cache)."""
        import json

        from trainer.checkpoint import load_manifest, load_model_and_tokenizer

        device = pick_device(device)
        torch_dtype = pick_dtype(device, dtype)
        path = Path(checkpoint_dir)
        manifest = load_manifest(path)
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        if _GPT2Decoder.supports(config):
            decoder, tokenizer = _GPT2Decoder.from_checkpoint(path, config, device, torch_dtype, attention)
            generator = cls(None, tokenizer, manifest, device, batch_size, decoder=decoder, checkpoint_dir=path)
        else:
            model, tokenizer, manifest = load_model_and_tokenizer(path, device=device, dtype=torch_dtype)
            generator = cls(model, tokenizer, manifest, device, batch_size, checkpoint_dir=path)
        log.info("loaded checkpoint %s (%s) on %s in %s", checkpoint_dir, manifest["name"], device,
                 str(torch_dtype).removeprefix("torch."))
        return generator

    @property
    def model(self):
        """The Hugging Face model (loaded on first use when the engine decodes natively: only
        tests, benchmarks and tools that call the model directly need it)."""
        if self._model is None:
            from trainer.checkpoint import load_model_and_tokenizer

            self._model = load_model_and_tokenizer(self._checkpoint_dir, device=self.device, dtype=self.dtype)[0]
        return self._model

    # -- prompts -------------------------------------------------------------------------------

    def prompt_ids(self, request: Request, max_new_tokens: int) -> list[int]:
        """Token ids of the request's prompt; the source is cut, never the codes or the opening."""
        key = (request.length, request.style)
        if key not in self._heads:
            self._heads[key] = self.tokenizer.encode(
                prompt.render_prompt("", request.length, request.style, ""), add_special_tokens=False)
        head = self._heads[key]
        sep_at = len(head) - 1  # the template ends with [SEP] when source and opening are empty
        source = self.tokenizer.encode(request.source, add_special_tokens=False)
        opening = self.tokenizer.encode(request.opening, add_special_tokens=False) if request.opening else []
        room = self.max_positions - max_new_tokens - len(head) - len(opening)
        if room < 0:
            raise ValueError(f"prompt too long: opening of {len(opening)} tokens leaves no room to generate")
        return head[:sep_at] + source[:room] + head[sep_at:] + opening

    def _banned_table(self, phrases: Iterable[str]) -> dict[tuple[int, ...], set[int]]:
        """Maps the token prefix of each banned phrase to the tokens that would complete it."""
        table: dict[tuple[int, ...], set[int]] = defaultdict(set)
        for phrase in phrases:
            ids = self.tokenizer.encode(phrase, add_special_tokens=False)
            if ids and self.tokenizer.unk_token_id not in ids:
                table[tuple(ids[:-1])].add(ids[-1])
        return dict(table)

    @functools.lru_cache(maxsize=8)  # noqa: B019  (one Generator per process; the lexicon repeats)
    def _blocker(self, phrases: tuple[str, ...]) -> _Blocker:
        return _Blocker(self._banned_table(phrases), self._never_ids, self.vocab_size, self.device)

    # -- generation ----------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request], *, temperature: float = 0.95, top_p: float = 0.7,
                 seed: int | None = None, max_new_tokens: int | None = None, banned: Iterable[str] = (),
                 greedy: bool = False, no_repeat_ngram: int = 0) -> list[list[str]]:
        """Request i -> its `variants` texts, in order; each text starts with the request's opening.

        With a seed the result is repeatable; sampled or greedy, a row's copy does not depend on
        the other requests of the call (up to floating-point rounding in a different batch).
        With no_repeat_ngram=n, no row writes the same n tokens twice (0: no such rule).
        """
        ids = self.generate_ids(requests, temperature=temperature, top_p=top_p, seed=seed,
                                max_new_tokens=max_new_tokens, banned=banned, greedy=greedy,
                                no_repeat_ngram=no_repeat_ngram)
        flat = [row for variants in ids for row in variants]
        decoded = iter(self.tokenizer.batch_decode(flat, skip_special_tokens=True))
        return [[r.opening + next(decoded).strip() for _ in range(r.variants)] for r in requests]

    def generate_ids(self, requests: Sequence[Request], *, temperature: float = 0.95, top_p: float = 0.7,
                     seed: int | None = None, max_new_tokens: int | None = None, banned: Iterable[str] = (),
                     greedy: bool = False, no_repeat_ngram: int = 0) -> list[list[list[int]]]:
        """Like generate(), but the generated token ids (without the prompt and the end token)."""
        import numpy as np

        rows: list[_Row] = []
        prompts: dict[tuple[str, str, str, str, int], list[int]] = {}
        for i, request in enumerate(requests):
            budget = max_new_tokens or DEFAULT_MAX_NEW_TOKENS.get(request.length, 200)
            budget = min(budget, self.max_positions // 2)
            key = (request.source, request.length, request.style, request.opening, budget)
            if key not in prompts:
                prompts[key] = self.prompt_ids(request, budget)
            rows.extend(_Row(i, v, prompts[key], budget) for v in range(request.variants))
        rows.sort(key=lambda row: (len(row.ids), row.request, row.variant))
        out: list[list[list[int]]] = [[[] for _ in range(r.variants)] for r in requests]
        if not rows:
            return out
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "big") >> 1
        keys = _row_keys(seed, np.array([r.request for r in rows], dtype=np.uint64),
                         np.array([r.variant for r in rows], dtype=np.uint64))
        blocker = self._blocker(tuple(dict.fromkeys(banned)))
        sampler = _Sampler(temperature, top_p, greedy)
        for row, tokens in zip(rows, self._decode(rows, keys, blocker, sampler, no_repeat_ngram)):
            out[row.request][row.variant] = tokens
        return out

    def _decode(self, rows: list[_Row], keys, blocker: _Blocker, sampler: _Sampler,
                no_repeat_ngram: int = 0) -> list[list[int]]:
        """Generated ids of each row (in the order of rows): the slot loop of continuous batching."""
        import numpy as np
        import torch

        dec = self._decoder
        span = max(len(r.ids) + r.budget for r in rows)  # cache positions a row can need
        width = max(1, min(self.batch_size, len(rows), KV_CACHE_BYTES // max(1, dec.slot_bytes(span))))
        refill_at = max(1, width // REFILL_SHARE)
        max_budget = max(r.budget for r in rows)
        results: list[list[int]] = [[] for _ in rows]
        queue = deque(range(len(rows)))
        slots = _Slots(width, max_budget)
        cache = dec.new_cache(width, span)
        logits = None
        with torch.inference_mode():
            while True:
                free = np.flatnonzero(slots.row < 0)
                if queue and len(free) and (len(free) == slots.width
                                            or (dec.refills and len(free) >= min(refill_at, len(queue)))):
                    take = [queue.popleft() for _ in range(min(len(free), len(queue)))]
                    if not dec.refills:  # a fresh static batch: the cache is rebuilt at its width
                        slots, free = _Slots(len(take), max_budget), np.arange(len(take))
                    into = free[: len(take)]
                    fresh, cache = dec.prefill(cache, [rows[r].ids for r in take], into)
                    if logits is None or logits.shape[0] != slots.width:
                        logits = fresh.new_zeros((slots.width, fresh.shape[1]))
                    logits[torch.from_numpy(into).to(fresh.device)] = fresh
                    slots.admit(into, take, rows, keys, blocker)
                live = slots.row >= 0
                if not live.any():
                    break

                scores = blocker.mask(logits.float(), slots.state, live)
                if no_repeat_ngram > 1:
                    scores = _ban_repeats(scores, slots.out, slots.done, live, no_repeat_ngram)
                tokens = sampler(scores, slots.key, slots.done, live)
                got = tokens.cpu().numpy()
                grow = live & (got != self.eos_id)
                slots.out[grow, slots.done[grow]] = got[grow]
                slots.done[grow] += 1
                slots.state[grow] = blocker.advance(slots.state[grow], got[grow])
                finished = live & ((got == self.eos_id) | (slots.done >= slots.budget))
                for slot in np.flatnonzero(finished):
                    results[slots.row[slot]] = slots.out[slot, : slots.done[slot]].tolist()
                    slots.row[slot] = -1
                live &= ~finished
                if not live.any():
                    continue  # admit the next rows, or stop
                if (not queue or not dec.refills) and live.sum() < COMPACT_BELOW * slots.width:
                    keep = np.flatnonzero(live)
                    cache = dec.compact(cache, keep, int(slots.pos[keep].max()))
                    tokens = tokens[torch.from_numpy(keep).to(tokens.device)]
                    slots = slots.select(keep)
                    live = np.ones(slots.width, dtype=bool)
                at = np.where(live, slots.pos, 0)  # free slots write (unused) keys at position 0
                logits = dec.step(cache, tokens, at, int(at[live].max()) + 1)
                slots.pos[live] += 1
        return results


def _ban_repeats(scores, out, done, live, n: int):
    """scores with -inf on each token that would make a live row write an n-gram it already wrote.

    out[s, :done[s]] are slot s's tokens so far. Every earlier window equal to the slot's last n-1
    tokens bans the token that followed it. Vectorised over slots: one comparison of all windows.
    """
    import numpy as np
    import torch

    m = n - 1
    span = int(done[live].max(initial=0))
    if span < n:
        return scores
    history = out[:, :span]
    windows = np.lib.stride_tricks.sliding_window_view(history, m, axis=1)[:, :span - m]  # with a follower
    tail = np.take_along_axis(history, np.clip(done[:, None] - m + np.arange(m), 0, span - 1), axis=1)
    match = (windows == tail[:, None, :]).all(axis=2)
    match &= (np.arange(span - m)[None, :] + m < done[:, None]) & live[:, None]  # the follower is written
    slot, start = np.nonzero(match)
    if len(slot):
        device = scores.device
        scores[torch.from_numpy(slot).to(device), torch.from_numpy(history[slot, start + m]).to(device)] = -math.inf
    return scores


class _Slots:
    """Per-slot state of the decode loop, on the host (numpy): which row, where, how far."""

    def __init__(self, width: int, max_budget: int):
        import numpy as np

        self.width = width
        self.row = np.full(width, -1, dtype=np.int64)  # the row a slot decodes, -1 when free
        self.pos = np.zeros(width, dtype=np.int64)  # cache position of the slot's next token
        self.done = np.zeros(width, dtype=np.int64)  # tokens generated so far
        self.budget = np.zeros(width, dtype=np.int64)
        self.key = np.zeros(width, dtype=np.uint64)  # root of the row's random stream
        self.state = np.zeros(width, dtype=np.int64)  # banned-phrase automaton state
        self.out = np.zeros((width, max_budget), dtype=np.int64)

    def admit(self, into, take: list[int], rows: list[_Row], keys, blocker: _Blocker) -> None:
        self.row[into] = take
        self.pos[into] = [len(rows[r].ids) for r in take]
        self.done[into] = 0
        self.budget[into] = [rows[r].budget for r in take]
        self.key[into] = keys[take]
        self.state[into] = [blocker.start(rows[r].ids) for r in take]

    def select(self, keep) -> _Slots:
        kept = _Slots.__new__(_Slots)
        kept.width = len(keep)
        for name in ("row", "pos", "done", "budget", "key", "state", "out"):
            setattr(kept, name, getattr(self, name)[keep])
        return kept


# -- sampling --------------------------------------------------------------------------------

_GOLDEN = 0x9E3779B97F4A7C15


def _mix64(x):
    """splitmix64's finaliser on a numpy uint64 array: a good 64-bit hash, wrapping arithmetic."""
    import numpy as np

    with np.errstate(over="ignore"):
        x = x + np.uint64(_GOLDEN)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _row_keys(seed: int, request, variant):
    """One 64-bit key per row: the root of its random stream."""
    import numpy as np

    with np.errstate(over="ignore"):
        return _mix64(_mix64(request * np.uint64(0x100000001B3) + variant) ^ np.uint64(seed % 2**64))


def _uniforms(keys, steps, draw: int = 0):
    """Uniform numbers in (0, 1), one per row: a hash of the row's key, its step and the draw."""
    import numpy as np

    with np.errstate(over="ignore"):
        bits = _mix64(keys + steps.astype(np.uint64) * np.uint64(_GOLDEN) + np.uint64((draw * 0x632BE59BD9B4E019) % 2**64))
    return ((bits >> np.uint64(40)).astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-24)


class _Sampler:
    """Next tokens from logits: greedy, or temperature + nucleus (top-p) on the row's own stream.

    The nucleus is sampled without sorting the vocabulary: draw a token from the whole tempered
    distribution (inverse CDF), keep it if the tokens more likely than it hold less than top_p of
    the mass (that is, if it is in the nucleus), else draw again. Accepted draws follow exactly
    the nucleus distribution; a draw is accepted with probability >= top_p, so ~1.4 draws per
    token at top_p = 0.7, each one pass over the vocabulary instead of a sort of it.
    """

    DRAWS = 12  # rows still rejected after this many draws (p < 0.3^12) take the sorted path

    def __init__(self, temperature: float, top_p: float, greedy: bool):
        self.temperature = max(float(temperature), 1e-5)
        self.top_p = float(top_p)
        self.greedy = greedy

    def __call__(self, logits, keys, steps, live):
        import numpy as np
        import torch

        if self.greedy:
            return logits.argmax(-1)
        probs = torch.softmax(logits / self.temperature, -1)
        cumulative = probs.cumsum(-1)
        total = cumulative[:, -1]
        tokens = torch.zeros(probs.shape[0], dtype=torch.long, device=probs.device)
        pending = np.flatnonzero(live)
        for draw in range(self.DRAWS):
            if not len(pending):
                return tokens
            rows = torch.from_numpy(pending).to(probs.device)
            u = torch.from_numpy(_uniforms(keys[pending], steps[pending], draw)).to(probs.device)
            picked = torch.searchsorted(cumulative[rows], (u * total[rows])[:, None]).squeeze(1)
            picked.clamp_(max=probs.shape[-1] - 1)
            tokens[rows] = picked
            if self.top_p >= 1.0:
                return tokens
            p = probs[rows]
            above = (p * (p > p.gather(1, picked[:, None]))).sum(-1)  # mass more likely than the pick
            pending = pending[(above >= self.top_p * total[rows]).cpu().numpy()]
        if len(pending):  # exact fallback: sort these rows and draw inside their nucleus
            rows = torch.from_numpy(pending).to(probs.device)
            p, order = probs[rows].sort(-1, descending=True)
            head = p.cumsum(-1)
            p = p * ((head - p) < self.top_p * total[rows][:, None])
            u = torch.from_numpy(_uniforms(keys[pending], steps[pending], self.DRAWS)).to(probs.device)
            at = torch.searchsorted(p.cumsum(-1), (u * p.sum(-1))[:, None]).clamp_(max=p.shape[-1] - 1)
            tokens[rows] = order.gather(1, at).squeeze(1)
        return tokens


class _Blocker:
    """Decode-time blocking of banned phrases and of special tokens, as an Aho-Corasick automaton.

    A row's state is the longest suffix of its tokens that begins some banned phrase; the tokens
    that would complete a phrase from that suffix (or from any shorter suffix of it) are masked.
    Special tokens other than the end token, and phrases of one token, are masked everywhere.
    """

    def __init__(self, table: dict[tuple[int, ...], set[int]], never: list[int], vocab: int, device: str):
        import numpy as np
        import torch

        prefixes = sorted({p[:j] for p in table for j in range(len(p) + 1)}, key=lambda p: (len(p), p))
        index = {p: n for n, p in enumerate(prefixes)}  # state 0 is the empty prefix
        alphabet = sorted({t for p in prefixes for t in p})
        self.symbol = np.zeros(vocab, dtype=np.int64)  # token -> column of `delta`; 0: in no prefix
        self.symbol[alphabet] = np.arange(1, len(alphabet) + 1)
        self.delta = np.zeros((len(prefixes), len(alphabet) + 1), dtype=np.int64)
        for s, p in enumerate(prefixes):
            for a, t in enumerate(alphabet, start=1):
                grown = p + (t,)
                self.delta[s, a] = next(index[grown[j:]] for j in range(len(grown) + 1) if grown[j:] in index)
        everywhere = set(never) | table.get((), set())
        blocked = [sorted(set().union(*(table.get(p[j:], ()) for j in range(len(p)))) - everywhere)
                   for p in prefixes]
        self.count = np.array([len(b) for b in blocked], dtype=np.int64)
        width = max(1, int(self.count.max(initial=0)))
        padded = [(b or [0]) + [(b or [0])[0]] * (width - len(b or [0])) for b in blocked]
        self.table = np.array(padded, dtype=np.int64).reshape(len(blocked), width)
        self.bias = torch.zeros(vocab, device=device)
        self.bias[sorted(everywhere)] = float("-inf")
        self.active = len(prefixes) > 1
        self._delta, self._symbol = self.delta.tolist(), self.symbol.tolist()  # fast scalar lookups

    def start(self, ids: list[int]) -> int:
        """The state after reading a prompt."""
        s = 0
        if self.active:
            for t in ids:
                s = self._delta[s][self._symbol[t]]
        return s

    def advance(self, states, tokens):
        return self.delta[states, self.symbol[tokens]] if self.active else states

    def mask(self, logits, states, live):
        """logits (float32, a fresh tensor) with every blocked token at -inf."""
        import numpy as np
        import torch

        logits += self.bias
        if self.active:
            rows = np.flatnonzero(live & (self.count[states] > 0))
            if len(rows):
                cols = torch.from_numpy(self.table[states[rows]]).to(logits.device)
                logits[torch.from_numpy(rows).to(logits.device)[:, None], cols] = float("-inf")
        return logits


# -- the fused attention kernel for CPU ----------------------------------------------------------

_KERNEL_VERSION = 3
_KERNEL_BUILD = r"""
import os, sys, tempfile, traceback

out, head_dim, lock, failed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
try:
    import torch

    class Attention(torch.nn.Module):
        def forward(self, q, keys, values, bias):
            seen = bias.shape[-1]
            scores = (q[:, :, None, :] * keys[:, :, :seen].float()).sum(-1) + bias
            weights = scores.softmax(-1)
            return (weights[..., None] * values[:, :, :seen].float()).sum(2)

    slots, heads = torch.export.Dim("slots", min=2, max=65536), torch.export.Dim("heads", min=2, max=1024)
    span, seen = torch.export.Dim("span", min=4, max=65536), torch.export.Dim("seen", min=2, max=65536)
    keys, values = (torch.zeros(6, 3, 40, head_dim, dtype=torch.bfloat16) for _ in range(2))  # not aliased
    example = (torch.randn(6, 3, head_dim), keys, values, torch.zeros(6, 1, 30))
    program = torch.export.export(Attention(), example, dynamic_shapes=(
        {0: slots, 1: heads}, {0: slots, 1: heads, 2: span}, {0: slots, 1: heads, 2: span}, {0: slots, 2: seen}))
    with tempfile.TemporaryDirectory(dir=os.path.dirname(out)) as work:
        staged = os.path.join(work, os.path.basename(out))
        torch._inductor.aoti_compile_and_package(program, package_path=staged)
        os.replace(staged, out)
except BaseException:
    with open(failed, "w") as fh:
        fh.write(traceback.format_exc())
finally:
    os.unlink(lock)
"""


def _kernel_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "copygen" / "kernels"


def _kernel_path(head_dim: int, threads: int) -> Path:
    import hashlib
    import platform

    import torch

    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), "")
    except OSError:
        flags = ""
    # Inductor writes the ISA and the thread count into the kernel: both are part of its name.
    key = f"{_KERNEL_VERSION}|{torch.__version__}|{platform.machine()}|{flags}|{threads}"
    return _kernel_dir() / f"attention-hd{head_dim}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt2"


KERNEL_BUILD_SECONDS = 900  # a build lock older than this belongs to a build that died


def _attention_kernel(head_dim: int, threads: int | None = None, *, wait: bool = False):
    """Decode-step attention over a bfloat16 KV cache as one fused loop (read each cached key and
    value once, accumulate in float32), or None while it is not available.

    torch's Inductor compiles it ahead of time in a child process, once per machine, torch
    version, head size and thread count (~20-40 s, cached under ~/.cache/copygen/kernels), and
    this process loads the shared library with torch's C++ loader: no compiler and none of its
    ~170 MB of Python state in the worker. It reads half the bytes of a float32 cache and beats
    two float32 batched matrix products by ~2.5x (bfloat16 batched products of one query row are
    slow on CPU). The first process that needs it starts the build in the background and carries
    on with the matmul path (wait=True blocks for it instead); a failed build (no C++ compiler)
    is remembered (a .failed file next to it) and not retried.
    """
    import subprocess
    import sys
    import time

    import torch

    threads = threads or torch.get_num_threads()
    path = _kernel_path(head_dim, threads)
    failed, lock = path.with_suffix(".failed"), path.with_suffix(".building")
    if path.exists():
        return _load_kernel(str(path), head_dim)
    if failed.exists():
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if lock.exists() and time.time() - lock.stat().st_mtime > KERNEL_BUILD_SECONDS:
            lock.unlink(missing_ok=True)
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # one builder per machine
    except FileExistsError:
        builder = None  # another process is building it
    except OSError as exc:
        log.warning("no fused attention kernel (%s); decoding with batched matrix products", exc)
        return None
    else:
        log.info("building the fused attention kernel for head size %d in the background (once per machine)",
                 head_dim)
        builder = subprocess.Popen(
            [sys.executable, "-c", _KERNEL_BUILD, str(path), str(head_dim), str(lock), str(failed)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if not wait:
        return None
    deadline = time.monotonic() + KERNEL_BUILD_SECONDS
    while not path.exists() and not failed.exists() and time.monotonic() < deadline:
        if builder is not None and builder.poll() is not None and not path.exists():
            break
        time.sleep(0.2)
    return _load_kernel(str(path), head_dim) if path.exists() else None


@functools.cache
def _load_kernel(path: str, head_dim: int):
    import torch

    try:
        loader = torch._C._aoti.AOTIModelPackageLoader(path, "model", False, 1, -1)
    except Exception as exc:  # noqa: BLE001  (a damaged cache file: the matmul path runs)
        log.warning("cannot load the fused attention kernel %s (%s); decoding with batched matrix products",
                    path, exc)
        return None

    def attend(q, keys, values, bias):
        return loader.boxed_run([q, keys, values, bias])[0]

    g = torch.Generator().manual_seed(0)
    q, bias = torch.randn(5, 3, head_dim, generator=g), torch.zeros(5, 1, 7)
    bias[0, 0, 4:] = float("-inf")
    keys, values = (torch.randn(5, 3, 9, head_dim, generator=g).to(torch.bfloat16) for _ in range(2))
    scores = ((q[:, :, None, :] * keys[:, :, :7].float()).sum(-1) + bias).softmax(-1)
    expected = (scores[..., None] * values[:, :, :7].float()).sum(2)
    if not torch.allclose(attend(q, keys, values, bias), expected, atol=1e-4):
        log.warning("the fused attention kernel at %s gives wrong results; not using it", path)
        return None
    return attend


# -- decoders: prefill into slots, one step for all slots ---------------------------------------


class _GPT2Decoder:
    """GPT-2 decoding straight from the checkpoint's weights over a static per-slot KV cache.

    The cache is [layers, slots, heads, positions, head_dim] for keys and for values; a slot's
    prompt fills positions 0..P-1 and each step writes one position per slot, so slots at
    different lengths decode together (the attention mask hides positions a slot has not
    written). The math is GPT2LMHeadModel's: pre-LayerNorm blocks, Conv1D weights (x @ W + b).
    """

    refills = True
    PARTS = ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
             "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
             "mlp.c_proj.weight", "mlp.c_proj.bias")

    def __init__(self, config: dict, weights: dict, attention: str = "auto"):
        """config: the model's config.json; weights: GPT-2 parameter names (without the
        "transformer." prefix) to tensors, already on their device and in their dtype;
        attention: auto, sdpa, kernel or matmul (see below)."""
        import torch
        import torch.nn.functional as F

        self.n_layer, self.n_head, self.d = config["n_layer"], config["n_head"], config["n_embd"]
        self.head_dim = self.d // self.n_head
        self.eps = config.get("layer_norm_epsilon", 1e-5)
        self.max_positions = config["n_positions"]
        self.wte, self.wpe = weights["wte.weight"], weights["wpe.weight"]
        self.head = weights.get("lm_head.weight", self.wte)
        self.vocab_size = self.head.shape[0]
        self.dtype, self.device = self.wte.dtype, self.wte.device
        self.ln_f = (weights["ln_f.weight"], weights["ln_f.bias"])
        self.blocks = []
        for n in range(self.n_layer):
            scale = self.head_dim ** -0.5 if config.get("scale_attn_weights", True) else 1.0
            if config.get("scale_attn_by_inverse_layer_idx", False):
                scale /= n + 1
            self.blocks.append((*(weights[f"h.{n}.{part}"] for part in self.PARTS), scale))
        name = config.get("activation_function", "gelu_new")
        if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
            self.act = functools.partial(F.gelu, approximate="tanh")
        elif name == "gelu":
            self.act = F.gelu
        else:
            from transformers.activations import ACT2FN

            self.act = ACT2FN[name]
        # Attention over the cache, the memory-bound part of a step: on CUDA, torch's fused SDPA
        # over a cache in the model's dtype; on CPU, the fused kernel over a bfloat16 cache where
        # it can be built, else two batched matrix products over a float32 cache (2x faster
        # than SDPA with a mask there).
        explicit = attention == "kernel"  # asked for by name: wait for the kernel to be built
        if attention == "auto":
            attention = "sdpa" if self.device.type == "cuda" else "kernel"
        if attention not in ("sdpa", "kernel", "matmul"):
            raise ValueError(f"attention must be auto, sdpa, kernel or matmul, not {attention!r}")
        # A kernel still being built is not waited for (unless asked for by name): this model
        # decodes with the matmul path for its lifetime, the next process gets the kernel.
        self._kernel = _attention_kernel(self.head_dim, wait=explicit) if attention == "kernel" else None
        self.attention = "matmul" if attention == "kernel" and self._kernel is None else attention
        self.cache_dtype = {"sdpa": self.dtype, "kernel": torch.bfloat16, "matmul": torch.float32}[self.attention]
        self._buffer = None

    @staticmethod
    def supports(config: dict) -> bool:
        return (config.get("model_type") == "gpt2" and not config.get("add_cross_attention")
                and "GPT2LMHeadModel" in (config.get("architectures") or ["GPT2LMHeadModel"])
                and config["n_embd"] % config["n_head"] == 0)

    @classmethod
    def from_model(cls, model, attention: str = "auto") -> _GPT2Decoder:
        weights = {name.removeprefix("transformer."): tensor for name, tensor in model.state_dict().items()}
        return cls(model.config.to_dict(), weights, attention)

    @classmethod
    def from_checkpoint(cls, path: Path, config: dict, device: str, dtype, attention: str = "auto"):
        """(decoder, tokenizer) from a checkpoint's safetensors, without the Hugging Face model."""
        from safetensors.torch import load_file
        from transformers import AutoTokenizer

        from trainer.checkpoint import CheckpointError

        try:
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
            weights = {}
            for file in sorted(path.glob("*.safetensors")):
                for name, tensor in load_file(str(file)).items():
                    weights[name.removeprefix("transformer.")] = tensor.to(device=device, dtype=dtype)
            if "lm_head.weight" not in weights and config.get("tie_word_embeddings") is False:
                raise KeyError("lm_head.weight")
            decoder = cls(config, weights, attention)
            return decoder, tokenizer
        except Exception as exc:  # noqa: BLE001  (safetensors raises its own types; any failure is one line)
            text = str(exc).strip()
            first_line = text.splitlines()[0] if text else type(exc).__name__
            if isinstance(exc, KeyError):
                first_line = f"weight {first_line} is missing"
            raise CheckpointError(f"{path}: cannot load the model ({first_line})") from None

    def slot_bytes(self, span: int) -> int:
        return 2 * self.n_layer * span * self.d * self.cache_dtype.itemsize

    def new_cache(self, width: int, span: int):
        """Views of width slots x span positions into a buffer kept between calls (allocating and
        zeroing a fresh cache per call would cost more than a chunk's prefill)."""
        import torch

        have = self._buffer[0].shape if self._buffer is not None else (0, 0, 0, 0, 0)
        if have[1] < width or have[3] < span:
            shape = (self.n_layer, max(width, have[1]), self.n_head, max(span, have[3]), self.head_dim)
            self._buffer = None  # free the old one first
            self._buffer = (torch.zeros(shape, dtype=self.cache_dtype, device=self.device),
                            torch.zeros(shape, dtype=self.cache_dtype, device=self.device))
        return tuple(b[:, :width] for b in self._buffer)

    def compact(self, cache, keep, written: int):
        """The cache of the slots in keep (ascending), moved to the front: views, no new cache.
        Only the first `written` positions hold anything yet; only they are copied."""
        import numpy as np
        import torch

        moved = np.flatnonzero(keep != np.arange(len(keep)))  # keep[j] >= j: sources are never overwritten
        if len(moved):
            src = torch.from_numpy(keep[moved]).to(self.device)
            dst = torch.from_numpy(moved).to(self.device)
            for c in cache:
                c[:, :, :, :written].index_copy_(1, dst, c[:, :, :, :written].index_select(1, src))
        return tuple(c[:, : len(keep)] for c in cache)

    def _ln(self, x, w, b):
        import torch.nn.functional as F

        return F.layer_norm(x, (self.d,), w, b, self.eps)

    def prefill(self, cache, prompts: list[list[int]], slots):
        """Run each distinct prompt once, copy its keys and values into its rows' slots; the
        logits of each row's next token. At most PREFILL_TOKENS prompt positions per forward
        pass, which bounds the activations a large refill allocates."""
        import torch

        groups, start, seen, longest = [], 0, set(), 0
        for end, ids in enumerate(prompts):
            if tuple(ids) not in seen and seen and (len(seen) + 1) * max(longest, len(ids)) > PREFILL_TOKENS:
                groups.append((start, end))
                start, seen, longest = end, set(), 0
            seen.add(tuple(ids))
            longest = max(longest, len(ids))
        groups.append((start, len(prompts)))
        logits = [self._prefill(cache, prompts[a:b], slots[a:b]) for a, b in groups]
        return (logits[0] if len(logits) == 1 else torch.cat(logits)), cache

    def _prefill(self, cache, prompts: list[list[int]], slots):
        import torch
        import torch.nn.functional as F

        unique: dict[tuple[int, ...], int] = {}
        for ids in prompts:
            unique.setdefault(tuple(ids), len(unique))
        width = max(len(p) for p in unique)
        ids = torch.full((len(unique), width), 0, dtype=torch.long)
        for n, p in enumerate(unique):  # right padding: a prompt's positions start at 0
            ids[n, : len(p)] = torch.tensor(p)
        ids = ids.to(self.device)
        lengths = torch.tensor([len(p) for p in unique], device=self.device)
        source = torch.tensor([unique[tuple(p)] for p in prompts], device=self.device)
        slots = torch.from_numpy(slots).to(self.device)
        n, h, hd = len(unique), self.n_head, self.head_dim
        x = F.embedding(ids, self.wte) + self.wpe[:width]
        keys, values = cache
        for layer, (w1, b1, wa, ba, wp, bp, w2, b2, wf, bf, wo, bo, scale) in enumerate(self.blocks):
            qkv = torch.addmm(ba, self._ln(x, w1, b1).view(-1, self.d), wa)
            q, k, v = qkv.view(n, width, 3, h, hd).permute(2, 0, 3, 1, 4).unbind(0)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
            x = x + torch.addmm(bp, a.transpose(1, 2).reshape(-1, self.d), wp).view(n, width, self.d)
            x = x + torch.addmm(bo, self.act(torch.addmm(bf, self._ln(x, w2, b2).view(-1, self.d), wf)),
                                wo).view(n, width, self.d)
            keys[layer].narrow(2, 0, width).index_copy_(0, slots, k.index_select(0, source).to(keys.dtype))
            values[layer].narrow(2, 0, width).index_copy_(0, slots, v.index_select(0, source).to(keys.dtype))
        last = x[torch.arange(n, device=self.device), lengths - 1]
        return F.linear(self._ln(last, *self.ln_f), self.head).index_select(0, source)

    def step(self, cache, tokens, positions, span: int):
        """Logits of every slot's next token after writing `tokens` at `positions`."""
        import torch
        import torch.nn.functional as F

        width, h, hd = tokens.shape[0], self.n_head, self.head_dim
        pos = torch.from_numpy(positions).to(self.device)
        slot = torch.arange(width, device=self.device)
        hidden = torch.arange(span, device=self.device)[None, :] > pos[:, None]  # not yet written
        x = F.embedding(tokens, self.wte) + F.embedding(pos, self.wpe)
        keys, values = cache
        if self.attention == "sdpa":
            mask = ~hidden[:, None, None, :]
        else:
            bias = torch.zeros((width, 1, span), device=self.device).masked_fill_(hidden[:, None, :], float("-inf"))
        for layer, (w1, b1, wa, ba, wp, bp, w2, b2, wf, bf, wo, bo, scale) in enumerate(self.blocks):
            q, k, v = torch.addmm(ba, self._ln(x, w1, b1), wa).view(width, 3, h, hd).unbind(1)
            keys[layer][slot, :, pos] = k.to(keys.dtype)
            values[layer][slot, :, pos] = v.to(keys.dtype)
            if self.attention == "kernel":  # reads the layer's cache in place, positions < span
                a = self._kernel((q.float() * scale).contiguous(), keys[layer], values[layer], bias)
            elif self.attention == "sdpa":
                a = F.scaled_dot_product_attention(q[:, :, None], keys[layer][:, :, :span],
                                                   values[layer][:, :, :span], attn_mask=mask, scale=scale)
            else:  # batched matrix products over (slot, head) pairs: the cache is read in place
                seen_k, seen_v = keys[layer][:, :, :span], values[layer][:, :, :span]
                scores = torch.bmm(q.float().reshape(width * h, 1, hd),
                                   seen_k.reshape(width * h, span, hd).transpose(1, 2))
                scores = scores.view(width, h, span).mul_(scale).add_(bias).softmax(-1)
                a = torch.bmm(scores.view(width * h, 1, span), seen_v.reshape(width * h, span, hd))
            x = x + torch.addmm(bp, a.reshape(width, self.d).to(x.dtype), wp)
            x = x + torch.addmm(bo, self.act(torch.addmm(bf, self._ln(x, w2, b2), wf)), wo)
        return F.linear(self._ln(x, *self.ln_f), self.head)


class _HFDecoder:
    """Any causal LM through its Hugging Face forward: left-padded static batches with a dynamic
    cache, finished rows dropped from the cache (no refilling)."""

    refills = False

    def __init__(self, model):
        import inspect

        self.model = model
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.max_positions = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
        self.vocab_size = model.get_output_embeddings().weight.shape[0]
        # transformers 5 renamed past_key_values to cache, in the call and in the output.
        self.cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def slot_bytes(self, span: int) -> int:
        config = self.model.config
        layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", 1)
        hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", 1)
        return 2 * layers * span * hidden * self.dtype.itemsize

    def new_cache(self, width: int, span: int):
        return None

    def prefill(self, cache, prompts: list[list[int]], slots):
        import torch

        unique: dict[tuple[int, ...], int] = {}
        for ids in prompts:
            unique.setdefault(tuple(ids), len(unique))
        width = max(len(p) for p in unique)
        input_ids = torch.zeros((len(unique), width), dtype=torch.long)
        attention = torch.zeros((len(unique), width), dtype=torch.long)
        for r, ids in enumerate(unique):  # left padding: every row's next token is at the end
            input_ids[r, width - len(ids):] = torch.tensor(ids)
            attention[r, width - len(ids):] = 1
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True)
        expand = torch.tensor([unique[tuple(p)] for p in prompts], device=self.device)
        kv = out[self.cache_arg]
        kv.batch_select_indices(expand)
        return out.logits[:, -1, :].index_select(0, expand), [kv, attention.index_select(0, expand)]

    def compact(self, cache, keep, written: int):
        import torch

        index = torch.from_numpy(keep).to(self.device)
        cache[0].batch_select_indices(index)
        cache[1] = cache[1].index_select(0, index)
        return cache

    def step(self, cache, tokens, positions, span: int):
        import torch

        kv, attention = cache
        cache[1] = attention = torch.cat([attention, attention.new_ones((attention.shape[0], 1))], dim=1)
        pos = torch.from_numpy(positions).to(self.device)
        out = self.model(input_ids=tokens[:, None], attention_mask=attention, position_ids=pos[:, None],
                         use_cache=True, **{self.cache_arg: kv})
        cache[0] = out[self.cache_arg]
        return out.logits[:, -1, :]
