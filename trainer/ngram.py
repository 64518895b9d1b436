"""A token n-gram language model of the training copy (interpolated Kneser-Ney), which the engine
mixes into the network's next-token distribution.

Why: a model trained for minutes on two CPU cores has seen each training copy a few times and
still garbles clauses, while counting every n-gram of the same copy takes seconds. On the demo
model's validation split (7 minutes, 573 steps) the network alone has perplexity 24.59 per
character, a 5-gram Kneser-Ney model of all the training copy alone 20.72, and the two mixed
18.17. The mixture's weight is chosen on the validation split when the model is trained
(choose_weight) and kept in the manifest; the engine then decodes from

    p(token) = weight * p_network(token | prompt, copy so far) + (1 - weight) * p_ngram(token | last order-1 tokens)

An n-gram model sees only the copy (its context starts with order-1 separators), never the
prompt, so one model of all the copy drags trousers' words into tops' copy: with it, 22.5% of the
demo model's rank-1 copies named a part or garment of another type (腿 for a top, 衬衫 for
trousers), against 3% without it and 7% of the references. So there is one model per garment
type (the product's 类型, NgramSet), for the types with MIN_COPIES training copies, and one of all
the copy for the rest: mixed 20.24 instead of 18.17, and the other type's words stay out.

Contexts are exact, not hashed: a context of up to four tokens packs into one uint64, 16 bits a
token, which is why the order is at most 5 and the vocabulary under 65,536 tokens.

numpy is imported inside the functions (importing trainer loads neither numpy nor torch).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

FILE = "ngram.npz"
ORDER = 5          # 4-, 5- and 6-grams mixed equally well with the demo model (18.32, 18.25, 18.25)
MAX_ORDER = 5      # four context tokens of 16 bits fill a uint64
MAX_VOCAB = 2**16 - 1
WEIGHTS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # the network's share, tried on validation
CHUNK = 2048       # positions per dense distribution when scoring known sequences
KEY = "类型"       # the attribute whose value picks the n-gram model (NgramSet)
MIN_COPIES = 300   # training copies a type needs for a model of its own
ALL = ""           # the key of the model of all the copy
# 类型#value where an attribute starts: the source's start, after * (between attributes), after the
# " | " joining title, attributes and description, or after a control code of a prompt
_TYPE_ATTRIBUTE = re.compile(r"(?:^|\*|\| |\])" + KEY + r"#([^*|\[]+)")


class _Order:
    """One order's table: sorted context keys, and per context its followers with their discounted
    probabilities and the weight left for the order below (gamma)."""

    def __init__(self, ctx, offsets, follow, prob, gamma):
        self.ctx, self.offsets, self.follow, self.prob, self.gamma = ctx, offsets, follow, prob, gamma


def _unique_pairs(ctx, token):
    """(ctx, token) pairs sorted and made unique, with how often each occurred."""
    import numpy as np  # lazy: nothing heavy at import

    order = np.lexsort((token, ctx))
    ctx, token = ctx[order], token[order]
    new = np.ones(len(ctx), dtype=bool)
    new[1:] = (ctx[1:] != ctx[:-1]) | (token[1:] != token[:-1])
    starts = np.flatnonzero(new)
    return ctx[starts], token[starts], np.diff(np.append(starts, len(ctx)))


def _discount(counts) -> float:
    """Ney's absolute discount n1 / (n1 + 2 n2) from the counts of counts."""
    import numpy as np  # lazy: nothing heavy at import

    n1, n2 = int(np.sum(counts == 1)), int(np.sum(counts == 2))
    return min(0.95, max(0.05, n1 / (n1 + 2 * n2))) if n1 + n2 else 0.5


def _table(ctx, token, counts) -> _Order:
    """The order's table from its unique (context, token) pairs (sorted) and their counts."""
    import numpy as np  # lazy: nothing heavy at import

    d = _discount(counts)
    new = np.ones(len(ctx), dtype=bool)
    new[1:] = ctx[1:] != ctx[:-1]
    starts = np.flatnonzero(new)
    offsets = np.append(starts, len(ctx)).astype(np.int32 if len(ctx) < 2**31 else np.int64)
    total = np.add.reduceat(counts, starts).astype(np.float64)
    types = np.diff(offsets).astype(np.float64)
    per_entry_total = np.repeat(total, np.diff(offsets))
    prob = (np.maximum(counts - d, 0) / per_entry_total).astype(np.float32)
    return _Order(ctx[starts], offsets, token.astype(np.uint16), prob, (d * types / total).astype(np.float32))


def _mask(tokens: int):
    import numpy as np  # lazy: nothing heavy at import

    return np.uint64(2**(16 * tokens) - 1) if tokens < 4 else np.uint64(2**64 - 1)


class NgramLM:
    """Interpolated Kneser-Ney over token ids: p(token | the last order-1 tokens of the copy)."""

    def __init__(self, order: int, vocab_size: int, start_id: int, tables: dict[int, _Order]):
        self.order, self.vocab_size, self.start_id, self.tables = order, vocab_size, start_id, tables
        self._base = None

    @classmethod
    def build(cls, sequences: Sequence[Sequence[int]], *, vocab_size: int, start_id: int,
              order: int = ORDER) -> NgramLM:
        """Count every sequence (a copy's token ids, its end token included), each preceded by
        order-1 start_id tokens, as the engine's context is before the copy's first token."""
        import numpy as np  # lazy: nothing heavy at import

        if not 1 <= order <= MAX_ORDER:
            raise ValueError(f"n-gram order {order}: choose 1 to {MAX_ORDER}")
        if not any(len(seq) for seq in sequences):
            raise ValueError("no copy to count")
        if vocab_size > MAX_VOCAB:
            raise ValueError(f"vocabulary of {vocab_size} tokens: an n-gram model takes at most {MAX_VOCAB}")
        pad = [start_id] * (order - 1)
        stream = np.array([t for seq in sequences for t in (*pad, *seq)], dtype=np.uint64)
        target = np.array([flag for seq in sequences for flag in (*[False] * len(pad), *[True] * len(seq))])
        at = np.flatnonzero(target)
        token = stream[at]
        keys = [np.zeros(len(at), dtype=np.uint64)]  # keys[k-1]: the context of order k (k-1 tokens)
        for back in range(1, order):
            keys.append(keys[-1] | ((stream[at - back] + np.uint64(1)) << np.uint64(16 * (back - 1))))
        tables: dict[int, _Order] = {}
        ctx, tok, counts = _unique_pairs(keys[order - 1], token)
        tables[order] = _table(ctx, tok, counts)
        for k in range(order - 1, 0, -1):  # lower orders count distinct left extensions (Kneser-Ney)
            ctx, tok, counts = _unique_pairs(ctx & _mask(k - 1), tok)
            tables[k] = _table(ctx, tok, counts)
        return cls(order, vocab_size, start_id, tables)

    # -- persistence (NgramSet writes the file) --------------------------------------------------

    def arrays(self) -> dict:
        import numpy as np  # lazy: nothing heavy at import

        arrays = {"meta": np.array([self.order, self.vocab_size, self.start_id], dtype=np.int64)}
        for k, t in self.tables.items():
            arrays.update({f"ctx{k}": t.ctx, f"offsets{k}": t.offsets, f"follow{k}": t.follow,
                           f"prob{k}": t.prob, f"gamma{k}": t.gamma})
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict) -> NgramLM:
        order, vocab_size, start_id = (int(v) for v in arrays["meta"])
        tables = {k: _Order(arrays[f"ctx{k}"], arrays[f"offsets{k}"], arrays[f"follow{k}"], arrays[f"prob{k}"],
                            arrays[f"gamma{k}"]) for k in range(1, order + 1)}
        return cls(order, vocab_size, start_id, tables)

    # -- probabilities -------------------------------------------------------------------------

    def base(self):
        """The order-1 distribution (its context is empty, so it is the same for every row)."""
        import numpy as np  # lazy: nothing heavy at import

        if self._base is None:
            t = self.tables[1]
            p = np.full(self.vocab_size, t.gamma[0] / self.vocab_size, dtype=np.float32)
            p[t.follow] += t.prob
            self._base = p
        return self._base

    def distribution(self, contexts):
        """p(token | context) for every token: rows of a float32 (rows, vocab_size) array.
        contexts: int array (rows, order-1), the most recent token last; start_id before the copy.

        The recursion p_k = prob_k + gamma_k * p_(k-1) unrolled from the highest order down: each
        order's followers are added scaled by the gammas of the orders above it, and the base
        distribution once, scaled by all of them (one dense pass instead of one per order)."""
        import numpy as np  # lazy: nothing heavy at import

        contexts = np.asarray(contexts, dtype=np.uint64)
        rows = contexts.shape[0]
        keys = [np.zeros(rows, dtype=np.uint64)]
        for back in range(1, self.order):
            keys.append(keys[-1] | ((contexts[:, -back] + np.uint64(1)) << np.uint64(16 * (back - 1))))
        scale = np.ones(rows, dtype=np.float32)  # the product of the gammas of the orders above
        at_rows, at_tokens, values = [], [], []
        for k in range(self.order, 1, -1):
            t = self.tables[k]
            j = np.minimum(np.searchsorted(t.ctx, keys[k - 1]), len(t.ctx) - 1)
            found = np.flatnonzero(t.ctx[j] == keys[k - 1])
            if not len(found):
                continue  # an unseen context leaves all its mass to the order below
            j = j[found]
            first, lengths = t.offsets[j], t.offsets[j + 1] - t.offsets[j]
            entry = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths - first, lengths)
            owner = np.repeat(found, lengths)
            at_rows.append(owner)
            at_tokens.append(t.follow[entry])
            values.append(t.prob[entry] * scale[owner])
            scale[found] *= t.gamma[j]
        p = scale[:, None] * self.base()[None, :]
        for r, c, v in zip(at_rows, at_tokens, values):
            p[r, c] += v  # (row, token) pairs are unique within an order
        return p

    def contexts_of(self, sequence: Sequence[int]):
        """The context of each position of a copy: (len(sequence), order-1) token ids."""
        import numpy as np  # lazy: nothing heavy at import

        padded = np.array([self.start_id] * (self.order - 1) + list(sequence), dtype=np.int64)
        width = self.order - 1
        return np.lib.stride_tricks.sliding_window_view(padded, width)[:len(sequence)] if width else \
            np.zeros((len(sequence), 0), dtype=np.int64)

    def token_probs(self, sequences: Sequence[Sequence[int]]):
        """p of each token of each sequence given the tokens before it: one float64 array per sequence."""
        import numpy as np  # lazy: nothing heavy at import

        contexts = [self.contexts_of(seq) for seq in sequences]
        flat_ctx = np.concatenate(contexts) if contexts else np.zeros((0, self.order - 1), dtype=np.int64)
        flat_tok = np.array([t for seq in sequences for t in seq], dtype=np.int64)
        probs = np.empty(len(flat_tok), dtype=np.float64)
        for start in range(0, len(flat_tok), CHUNK):
            dist = self.distribution(flat_ctx[start:start + CHUNK])
            probs[start:start + CHUNK] = dist[np.arange(len(dist)), flat_tok[start:start + CHUNK]]
        return np.split(probs, np.cumsum([len(seq) for seq in sequences])[:-1]) if sequences else []


def copy_of(ids: Sequence[int], start_id: int) -> list[int]:
    """The copy part of a prompt's ids: what follows its last separator (the forced opening), the
    start of what an n-gram model reads."""
    ids = list(ids)
    return ids[len(ids) - ids[::-1].index(start_id):] if start_id in ids else []


def key_of(source: str) -> str:
    """The garment type a source (or a prompt) names: its first 类型 value, or ALL. Only an
    attribute's own key counts (not 面料类型, nor 类型# inside a title)."""
    found = _TYPE_ATTRIBUTE.search(source)
    return found.group(1).strip() if found else ALL


class NgramSet:
    """One n-gram model per type with enough training copy, and one of all the copy (key ALL)."""

    def __init__(self, models: dict[str, NgramLM]):
        self.models = models
        first = models[ALL]
        self.order, self.vocab_size, self.start_id = first.order, first.vocab_size, first.start_id

    @classmethod
    def build(cls, sequences: Sequence[Sequence[int]], keys: Sequence[str], *, vocab_size: int, start_id: int,
              order: int = ORDER, min_copies: int = MIN_COPIES) -> NgramSet:
        models = {ALL: NgramLM.build(sequences, vocab_size=vocab_size, start_id=start_id, order=order)}
        by_key: dict[str, list] = {}
        for seq, key in zip(sequences, keys):
            if key != ALL:
                by_key.setdefault(key, []).append(seq)
        for key, mine in sorted(by_key.items()):
            if len(mine) >= min_copies:
                models[key] = NgramLM.build(mine, vocab_size=vocab_size, start_id=start_id, order=order)
        return cls(models)

    def key_for(self, source: str) -> str:
        """The model a product's copy is counted with: its type's, or ALL's."""
        key = key_of(source)
        return key if key in self.models else ALL

    def token_probs(self, sequences: Sequence[Sequence[int]], keys: Sequence[str]):
        """NgramLM.token_probs, each sequence under its key's model (ALL where it has none)."""
        found: list = [None] * len(sequences)
        keys = [key if key in self.models else ALL for key in keys]
        for key in dict.fromkeys(keys):
            mine = [i for i, k in enumerate(keys) if k == key]
            for i, probs in zip(mine, self.models[key].token_probs([sequences[i] for i in mine])):
                found[i] = probs
        return found

    def save(self, path: str | os.PathLike) -> None:
        import numpy as np  # lazy: nothing heavy at import

        arrays = {"keys": np.array(list(self.models), dtype=str)}
        for i, lm in enumerate(self.models.values()):
            arrays.update({f"{i}.{name}": value for name, value in lm.arrays().items()})
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> NgramSet:
        import numpy as np  # lazy: nothing heavy at import

        with np.load(Path(path), allow_pickle=False) as data:
            keys = [str(k) for k in data["keys"]]
            models = {key: NgramLM.from_arrays({name.split(".", 1)[1]: data[name] for name in data.files
                                                if name.startswith(f"{i}.")}) for i, key in enumerate(keys)}
        if ALL not in models:
            raise ValueError(f"no model of all the copy (keys {keys})")
        return cls(models)


def mix(network_probs, ngram_probs, weight: float):
    """The mixture's probabilities: weight of the network's, the rest the n-gram model's."""
    return weight * network_probs + (1 - weight) * ngram_probs


def choose_weight(network_probs, ngram_probs) -> tuple[float, dict[str, float]]:
    """The network's share (of WEIGHTS) with the lowest validation perplexity, and the
    perplexities: the network alone, the n-gram model alone, and mixed at that share.
    Both arguments: p of each validation token (flat arrays)."""
    import numpy as np  # lazy: nothing heavy at import

    def perplexity(p) -> float:
        return float(np.exp(-np.mean(np.log(np.maximum(p, 1e-30)))))

    best = min(WEIGHTS, key=lambda w: perplexity(mix(network_probs, ngram_probs, w)))
    return best, {"network": perplexity(network_probs), "ngram": perplexity(ngram_probs),
                  "mixed": perplexity(mix(network_probs, ngram_probs, best))}
