"""Decode-time blocking of banned phrases (Advertising Law terms) and of special tokens.

An Aho-Corasick automaton over token ids: the token that would complete a banned phrase gets
probability zero. numpy and torch are imported inside the methods (importing trainer.generation
loads neither).
"""

from __future__ import annotations


class _Blocker:
    """Decode-time blocking of banned phrases and of special tokens, as an Aho-Corasick automaton.

    A row's state is the longest suffix of its tokens that begins some banned phrase; the tokens
    that would complete a phrase from that suffix (or from any shorter suffix of it) are masked.
    Special tokens other than the end token, and phrases of one token, are masked everywhere.
    """

    def __init__(self, table: dict[tuple[int, ...], set[int]], never: list[int], vocab: int, device: str):
        import numpy as np  # lazy: nothing heavy at import
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
        import numpy as np  # lazy: nothing heavy at import
        import torch

        logits += self.bias
        if self.active:
            rows = np.flatnonzero(live & (self.count[states] > 0))
            if len(rows):
                cols = torch.from_numpy(self.table[states[rows]]).to(logits.device)
                logits[torch.from_numpy(rows).to(logits.device)[:, None], cols] = float("-inf")
        return logits
