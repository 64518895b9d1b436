"""Decode-time blocking of banned phrases (Advertising Law terms, a request's own words) and of
special tokens.

An Aho-Corasick automaton over token ids: the token that would complete a banned phrase gets
probability zero. The call's phrases (the same for every row) have one automaton; a request's own
phrases (Request.banned) have one more, shared by the requests with the same set, and a row is
blocked by both. numpy and torch are imported inside the methods (importing trainer.generation
loads neither).
"""

from __future__ import annotations

import functools


class _Blocker:
    """Decode-time blocking of banned phrases and of special tokens, as an Aho-Corasick automaton.

    A row's state is the longest suffix of its tokens that begins some banned phrase; the tokens
    that would complete a phrase from that suffix (or from any shorter suffix of it) are masked.
    Special tokens other than the end token, and phrases of one token, are masked everywhere.
    No array is as long as the vocabulary until mask() first needs its bias: a request's own
    automaton (see _RequestBlockers, which masks with completions() and `everywhere`) stays as
    small as its phrases.
    """

    def __init__(self, table: dict[tuple[int, ...], set[int]], never: list[int], vocab: int, device: str):
        import numpy as np  # lazy: nothing heavy at import

        prefixes = sorted({p[:j] for p in table for j in range(len(p) + 1)}, key=lambda p: (len(p), p))
        index = {p: n for n, p in enumerate(prefixes)}  # state 0 is the empty prefix
        alphabet = sorted({t for p in prefixes for t in p})
        self.alphabet = np.array(alphabet, dtype=np.int64)  # token alphabet[a - 1] -> column a of `delta`
        self.delta = np.zeros((len(prefixes), len(alphabet) + 1), dtype=np.int64)  # column 0: in no prefix
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
        self.everywhere = np.array(sorted(everywhere), dtype=np.int64)
        self.vocab, self.device = vocab, device
        self.active = len(prefixes) > 1
        self._delta = self.delta.tolist()  # fast scalar lookups
        self._column = {t: a for a, t in enumerate(alphabet, start=1)}

    @functools.cached_property
    def bias(self):
        """-inf on the tokens masked everywhere, 0 elsewhere: added to every row's logits."""
        import torch  # lazy: nothing heavy at import

        bias = torch.zeros(self.vocab, device=self.device)
        bias[self.everywhere.tolist()] = float("-inf")
        return bias

    def start(self, ids: list[int]) -> int:
        """The state after reading a prompt."""
        s = 0
        if self.active:
            for t in ids:
                s = self._delta[s][self._column.get(t, 0)]
        return s

    def advance(self, states, tokens):
        if not self.active:
            return states
        import numpy as np  # lazy: nothing heavy at import

        at = np.searchsorted(self.alphabet, tokens)
        known = self.alphabet[np.minimum(at, len(self.alphabet) - 1)] == tokens
        return self.delta[states, np.where(known, at + 1, 0)]

    def completions(self, states, rows):
        """(slots, tokens): index arrays of the tokens that would complete a phrase of two or more
        tokens, for each slot of rows from its state."""
        rows = rows[self.count[states[rows]] > 0] if self.active else rows[:0]
        cols = self.table[states[rows]]
        return rows.repeat(cols.shape[1]), cols.ravel()

    def mask(self, logits, states, live):
        """logits (float32, a fresh tensor) with every blocked token at -inf."""
        import numpy as np  # lazy: nothing heavy at import

        logits += self.bias
        return _block(logits, *self.completions(states, np.flatnonzero(live)))


class _RequestBlockers:
    """The automata of the requests' own phrases, on top of the call's _Blocker: automata[g] blocks
    in the slots whose `which` is g (-1: the row has no phrases of its own). A slot's state in its
    own automaton is kept beside its state in the call's."""

    def __init__(self, automata: list[_Blocker]):
        self.automata = automata

    def start(self, g: int, ids: list[int]) -> int:
        return self.automata[g].start(ids) if g >= 0 else 0

    def advance(self, which, states, tokens):
        import numpy as np  # lazy: nothing heavy at import

        states = states.copy()
        for g in np.unique(which[which >= 0]):
            mine = which == g
            states[mine] = self.automata[g].advance(states[mine], tokens[mine])
        return states

    def mask(self, logits, which, states, live):
        """logits with -inf, in each live slot, on the tokens its row's own phrases block (one
        write for all the automata)."""
        import numpy as np  # lazy: nothing heavy at import

        rows, cols = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
        for g in np.unique(which[live & (which >= 0)]):
            automaton = self.automata[g]
            mine = np.flatnonzero(live & (which == g))
            rows.append(mine.repeat(len(automaton.everywhere)))  # its phrases of one token
            cols.append(np.tile(automaton.everywhere, len(mine)))
            phrase_rows, phrase_cols = automaton.completions(states, mine)
            rows.append(phrase_rows)
            cols.append(phrase_cols)
        return _block(logits, np.concatenate(rows), np.concatenate(cols))


def _block(logits, rows, cols):
    """logits with -inf at each (rows[i], cols[i])."""
    import torch  # lazy: nothing heavy at import

    if len(rows):
        device = logits.device
        logits[torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)] = float("-inf")
    return logits
