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
5. blocks banned phrases at decode time with Aho-Corasick automata over token ids: the token that
   would complete a banned phrase gets probability zero. The call's phrases (Advertising Law
   terms) hold for every row; a request's own (Request.banned: words its product's attributes rule
   out) hold for its rows only, one automaton per distinct set, shared by the requests that have it;
6. scores each row with the model's own log-probability of what it wrote (generate_candidates:
   the mean log p(token) under the raw logits, one logsumexp per slot and step). Where the
   checkpoint has an n-gram model of its training copy (trainer.ngram), the raw distribution is
   the network's mixed with it, at the share chosen on the validation split when it was trained.
7. keeps copy as long as its length setting asks: a row ends at the end token's own odds, not at
   the higher odds top-p gives it after a full stop (what follows is then drawn from the nucleus
   of the other tokens), and never before the fewest characters the setting allows, the bound the
   worker's too_short check holds copy to (its token budget bounds it from above);
8. with a clause floor, draws a clause again when the model found it unlikely: a row that ends a
   clause (，。！？； or the end) below the floor's mean log-probability per token goes back to where
   the clause began, state and cache, and draws it anew (the last of a few tries greedily).

GPT-2 models (every from-scratch preset, and GPT-2 bases) decode through a native path: the
checkpoint's weights read straight from its safetensors (the Hugging Face model class is never
imported: ~90 MB less per worker), a few torch calls per layer over the static cache, and no
per-step Python work per row. On CPU, attention reads a bfloat16 cache through a fused kernel that
torch's Inductor compiles ahead of time, once per machine (see kernel.py); without a C++
compiler it falls back to batched matrix products over a float32 cache. Other architectures decode
through Hugging Face's forward with a dynamic cache in static batches (same sampling, same
blocking, no refilling).

Where the time goes (demo checkpoint, 192 slots, 2 CPU cores, `bench/throughput.py --profile`):
the linear layers 35% and the LM head 6%, attention over the cache 26% (memory bound: every
cached key and value is read once per token), prefill 8%, sampling 8%, the per-step torch calls
and cache writes 8%, compaction of the batch once the queue is empty 6%.

The package, one job per module (every name below is importable from trainer.generation):

    generator.py       Request, Candidate, Generator (prompts, rows, texts, scores), DEFAULT_MAX_NEW_TOKENS,
                       NO_REPEAT_NGRAM
    batching.py        the continuous-batching slot loop (decode_rows), its per-slot state, log-probabilities,
                       the n-gram mixture (_NgramMixer; the model itself is trainer/ngram.py), clauses
                       drawn again (_Clauses)
    sampling.py        the per-row random streams, the top-p sampler, the n-gram repeat ban
    blocking.py        the banned-phrase automata: the call's, and the requests' own
    kernel.py          the ahead-of-time build and load of the fused CPU attention kernel
    gpt2_decoder.py    the native GPT-2 decoder over a static KV cache
    hf_decoder.py      the Hugging Face decoder for other architectures
    trainer/devices.py pick_device, pick_dtype (shared with training)

Importing the package loads neither torch nor numpy: they are imported inside the functions.
"""

from __future__ import annotations

from trainer.devices import pick_device, pick_dtype
from trainer.generation.batching import (
    CLAUSE_TRIES,
    COMPACT_BELOW,
    KV_CACHE_BYTES,
    REFILL_SHARE,
    _ban_early_end,
    _Clauses,
    _Row,
    _Slots,
    decode_rows,
)
from trainer.generation.blocking import _Blocker, _RequestBlockers
from trainer.generation.generator import (
    DEFAULT_MAX_NEW_TOKENS,
    NO_REPEAT_NGRAM,
    Candidate,
    Generator,
    Request,
)
from trainer.generation.gpt2_decoder import PREFILL_TOKENS, _GPT2Decoder
from trainer.generation.hf_decoder import _HFDecoder
from trainer.generation.kernel import (
    _KERNEL_BUILD,
    _KERNEL_VERSION,
    KERNEL_BUILD_SECONDS,
    _attention_kernel,
    _kernel_dir,
    _kernel_path,
    _load_kernel,
)
from trainer.generation.sampling import (
    _GOLDEN,
    _ban_named_again,
    _ban_repeats,
    _ban_stutter,
    _mix64,
    _names,
    _row_keys,
    _Sampler,
    _uniforms,
)

# The public API (Request, Candidate, Generator, pick_device, pick_dtype, DEFAULT_MAX_NEW_TOKENS,
# NO_REPEAT_NGRAM), the tuning constants, and the engine's private parts that tests and
# bench/throughput.py import.
__all__ = [
    "CLAUSE_TRIES", "COMPACT_BELOW", "DEFAULT_MAX_NEW_TOKENS", "KERNEL_BUILD_SECONDS", "KV_CACHE_BYTES",
    "NO_REPEAT_NGRAM", "PREFILL_TOKENS", "REFILL_SHARE", "_GOLDEN", "_KERNEL_BUILD", "_KERNEL_VERSION", "Candidate", "Generator",
    "Request", "_Blocker", "_Clauses", "_GPT2Decoder", "_HFDecoder", "_RequestBlockers", "_Row", "_Sampler",
    "_Slots", "_attention_kernel", "_ban_early_end", "_ban_named_again", "_ban_repeats", "_ban_stutter", "_kernel_dir", "_kernel_path", "_load_kernel", "_mix64", "_names",
    "_row_keys", "_uniforms", "decode_rows", "pick_device", "pick_dtype",
]
