"""Decode-time pull toward phrasing that human copy attests: the phrasebook.

A small model trained for minutes writes clauses no person writes ("使用了黑黑色的版型设计",
"经典的西休闲气质"): every few characters it takes a token the copy it learned from never has in
that place. The phrasebook holds every n-gram of the training copy (a checkpoint trained on pairs
keeps that copy: trainer.checkpoint.PHRASEBOOK_FILE). While decoding, a row's last order-1 tokens are looked up
(backing off to fewer when the copy never has them), and every token that never follows them in
the copy loses `penalty` from its logits. A large penalty writes only attested n-grams; a moderate
one lets the model's own strong preferences through (a product's value that the copy never names,
nudged in by nudging.py).

The copy's start and end count: a copy is read as start marker + tokens + end token, so a row
without an opening begins the way copy begins and ends where copy ends.

Contexts are 64-bit hashes of their tokens (the start marker is token `vocab`), one sorted array
per context length; a lookup is a binary search for all slots at once. numpy and torch are imported
inside the methods (importing trainer.generation loads neither).
"""

from __future__ import annotations

from trainer.generation.sampling import _mix64


class _Phrasebook:
    """The n-grams of a corpus of token sequences, up to `order` tokens, by context."""

    def __init__(self, sequences: list[list[int]], order: int, vocab: int, eos_id: int):
        import numpy as np  # lazy: nothing heavy at import

        self.start = vocab  # the start marker: one past the last token id
        self.order = order
        lead = order - 1
        stream = np.array([t for s in sequences for t in [self.start] * lead + list(s) + [eos_id]], dtype=np.int64)
        self.contexts, self.firsts, self.follows = [], [], []  # per context length 1..order-1
        for k in range(1, order):
            if len(stream) <= k:
                self.contexts.append(np.zeros(0, dtype=np.uint64))
                self.firsts.append(np.zeros(1, dtype=np.int64))
                self.follows.append(np.zeros(0, dtype=np.int64))
                continue
            windows = np.lib.stride_tricks.sliding_window_view(stream, k + 1)
            context, following = windows[:, :k], windows[:, k]
            # a context that spans the end of one copy, or a "next token" that is a start marker,
            # is an artefact of joining the copies
            keep = (following != self.start) & ~(context == eos_id).any(axis=1)
            keys, following = self._keys(context[keep]), following[keep]
            order_ = np.lexsort((following, keys))
            keys, following = keys[order_], following[order_]
            distinct = np.ones(len(keys), dtype=bool)
            distinct[1:] = (keys[1:] != keys[:-1]) | (following[1:] != following[:-1])
            keys, following = keys[distinct], following[distinct]
            contexts, firsts = np.unique(keys, return_index=True)
            self.contexts.append(contexts)
            self.firsts.append(np.append(firsts, len(keys)))  # followers of contexts[i]: firsts[i]:firsts[i+1]
            self.follows.append(following)

    @staticmethod
    def _keys(context):
        """A 64-bit hash of each row of a (rows, k) array of token ids: contexts of any length and
        vocabulary fit one key (two of the corpus's ~10^6 contexts collide with odds ~10^-7)."""
        import numpy as np  # lazy: nothing heavy at import

        keys = np.full(len(context), context.shape[1], dtype=np.uint64)
        for j in range(context.shape[1]):
            keys = _mix64(keys ^ context[:, j].astype(np.uint64))
        return keys

    def lead(self, opening: list[int]) -> list[int]:
        """What a row's copy is read after: start markers, then the forced opening's tokens."""
        return ([self.start] * (self.order - 1) + list(opening))[-(self.order - 1):] if self.order > 1 else []

    def followers(self, lead, out, done, rows):
        """(slots, tokens): for each slot of rows, the tokens the corpus has after its last tokens
        (the longest context of at most order-1 tokens the corpus has; none when not even its last
        token occurs). lead: (slots, order-1) ids before each row's output out[:, :done]."""
        import numpy as np  # lazy: nothing heavy at import

        chosen = np.full(len(rows), -1, dtype=np.int64)  # the context length found for each row
        at = np.zeros(len(rows), dtype=np.int64)
        for k in range(self.order - 1, 0, -1):
            open_ = chosen < 0
            if not open_.any() or not len(self.contexts[k - 1]):
                continue
            slots = rows[open_]
            positions = done[slots][:, None] - k + np.arange(k)  # into out; negative: into lead
            from_lead = lead[slots[:, None], np.clip(positions + lead.shape[1], 0, lead.shape[1] - 1)]
            from_out = out[slots[:, None], np.clip(positions, 0, None)]
            keys = self._keys(np.where(positions < 0, from_lead, from_out))
            contexts = self.contexts[k - 1]
            where = np.minimum(np.searchsorted(contexts, keys), len(contexts) - 1)
            found = contexts[where] == keys
            picked = np.flatnonzero(open_)[found]
            chosen[picked], at[picked] = k, where[found]
        rows_out, tokens_out = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
        for k in range(1, self.order):
            mine = np.flatnonzero(chosen == k)
            if not len(mine):
                continue
            begin, end = self.firsts[k - 1][at[mine]], self.firsts[k - 1][at[mine] + 1]
            counts = end - begin
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            rows_out.append(np.repeat(rows[mine], counts))
            tokens_out.append(self.follows[k - 1][np.repeat(begin, counts) + offsets])
        return np.concatenate(rows_out), np.concatenate(tokens_out)

    def penalize(self, logits, lead, out, done, live, penalty: float):
        """logits with `penalty` taken from every token that does not follow a live row's last
        tokens in the corpus (rows whose last token the corpus never has are left alone)."""
        import numpy as np  # lazy: nothing heavy at import
        import torch

        rows, tokens = self.followers(lead, out, done, np.flatnonzero(live))
        if not len(rows):
            return logits
        device = logits.device
        constrained = torch.from_numpy(np.unique(rows)).to(device)
        logits[constrained] -= penalty
        logits.index_put_((torch.from_numpy(rows).to(device), torch.from_numpy(tokens).to(device)),
                          torch.tensor(penalty, dtype=logits.dtype, device=device), accumulate=True)
        return logits
