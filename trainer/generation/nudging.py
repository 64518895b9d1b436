"""Decode-time nudging toward a request's wanted phrases (the product's own attribute values).

Blocking (blocking.py) makes wrong facts impossible; nudging makes the right facts likely. Each
request may name groups of phrases (Request.wanted: one group per attribute value, any phrase of
it expresses the value). Until a row has written some phrase of a group, the group's tokens get a
bonus on their logits: the first token of each of its phrases a small one (`start`), the token that
continues a phrase the row has begun a larger one (`follow`), so a begun 雪 becomes 雪纺 rather
than 雪白. Once a group is written its bonus stops: a value is nudged in, not repeated. Once it is
written twice, the first token of each of its phrases costs AGAIN_PENALTY: a value said a third time
is said again by a model that likes its clauses, not for what it adds. A phrase is begun where a
written phrase ends, not inside it: after 文字, the 字 does not begin 字母 (文字母).

A bonus only reweights what the model already finds plausible (a token at -inf stays there), and
the row's log-probability is scored on the raw logits, so a candidate the nudge pushed into
awkward phrasing scores low on fluency and is not chosen.

An Aho-Corasick automaton over token ids, one per distinct set of groups, shared like the
request blockers; a slot carries its state and a bit mask of the groups it has written (at most
MAX_GROUPS). numpy and torch are imported inside the methods (importing trainer.generation loads
neither).
"""

from __future__ import annotations

MAX_GROUPS = 31  # groups per request: the written ones are bits of an int64, those written twice the bits above
TWICE = MAX_GROUPS  # a group's bit shifted by this: written twice
ONCE = (1 << MAX_GROUPS) - 1  # the bits of the groups written at least once
# Logits off the first token of each phrase of a value its row has written twice. make demo's rank-1 copy
# named a value three times or more in 17 of 160 copies (eight seeded jobs, 2026-12-06: 宽松 five to seven
# times in the loose cardigan's "宽松的版型…宽松的廓形…宽松版型…宽松的衣身设计"), the references in 6.1% of 5,000;
# readers count each a repeat. At 3.0, 1 of 160, read blind as better 26 : 20 and 30 : 15 (repeats 112 → 89 and
# 109 → 91), validation R-L 24.83 → 24.72, BLEU-4 7.45 → 7.30; at 1.5, 2 of 160, better 28 : 14 and 27 : 15
# (repeats 102 → 89 and 91 → 78, broken phrases 34 → 28 and 31 → 24), validation level (24.83, 7.44; docs/demo-model.md).
AGAIN_PENALTY = 1.5


class _Nudger:
    """One set of wanted groups: states are the prefixes of their phrases (state 0: none begun)."""

    def __init__(self, groups: list[list[tuple[int, ...]]]):
        import numpy as np  # lazy: nothing heavy at import

        groups = groups[:MAX_GROUPS]
        self.groups = groups  # each group's phrases (token ids): a clause book leads a row toward them (known._Book.lead)
        owner: dict[tuple[int, ...], int] = {}  # phrase -> bits of the groups it writes
        for g, phrases in enumerate(groups):
            for p in phrases:
                if p:
                    owner[p] = owner.get(p, 0) | (1 << g)
        prefixes = sorted({(), *(p[:j] for p in owner for j in range(len(p) + 1))}, key=lambda p: (len(p), p))
        index = {p: n for n, p in enumerate(prefixes)}
        leads: dict[tuple[int, ...], int] = {}  # prefix -> bits of the groups with a phrase beginning so
        for p, bits in owner.items():
            for j in range(len(p) + 1):
                leads[p[:j]] = leads.get(p[:j], 0) | bits
        alphabet = sorted({t for p in prefixes for t in p})
        self.alphabet = np.array(alphabet, dtype=np.int64)
        self.delta = np.zeros((len(prefixes), len(alphabet) + 1), dtype=np.int64)
        self.written = np.zeros(len(prefixes), dtype=np.int64)  # groups a phrase ending in this state writes
        follow: list[list[tuple[int, int]]] = []  # per state: (token, bits) continuing a begun phrase
        for s, p in enumerate(prefixes):
            for a, t in enumerate(alphabet, start=1):
                grown = p + (t,)
                self.delta[s, a] = next(index[grown[j:]] for j in range(len(grown) + 1) if grown[j:] in index)
            suffixes = [p[j:] for j in range(len(p))]  # the begun phrases: every non-empty suffix
            self.written[s] = _or(owner.get(q, 0) for q in suffixes)
            # A phrase just written ends here: a phrase begun inside it is no phrase begun ("文字" then
            # "字母" would splice into 文字母), one it begins or lies inside still is (雪纺 -> 雪纺衫).
            ended = max((len(q) for q in suffixes if q in owner), default=0)
            nexts: dict[int, int] = {}
            for q in suffixes:
                if q in index and len(q) >= ended:
                    for t in alphabet:
                        if q + (t,) in leads:
                            nexts[t] = nexts.get(t, 0) | leads[q + (t,)]
            follow.append(sorted(nexts.items()))
        width = max(1, max((len(f) for f in follow), default=0))
        self.follow_tokens = np.zeros((len(prefixes), width), dtype=np.int64)
        self.follow_bits = np.zeros((len(prefixes), width), dtype=np.int64)  # 0 pads: never applies
        for s, entries in enumerate(follow):
            for j, (t, bits) in enumerate(entries):
                self.follow_tokens[s, j], self.follow_bits[s, j] = t, bits
        starts = sorted((p[0], bits) for p, bits in leads.items() if len(p) == 1)
        self.start_tokens = np.array([t for t, _ in starts], dtype=np.int64)
        self.start_bits = np.array([b for _, b in starts], dtype=np.int64)
        self._delta = self.delta.tolist()
        self._column = {t: a for a, t in enumerate(alphabet, start=1)}

    def start(self, ids: list[int]) -> tuple[int, int]:
        """(state, groups written: once in the low bits, twice those shifted by TWICE) after reading a
        prompt's opening; the prompt's source is not copy, so only what follows the separator counts
        (the caller passes just that)."""
        s, written = 0, 0
        for t in ids:
            before, s = int(self.written[s]), self._delta[s][self._column.get(t, 0)]
            written = _written(written, before, int(self.written[s]))
        return s, written

    def advance(self, states, written, tokens):
        import numpy as np  # lazy: nothing heavy at import

        if not len(self.alphabet):  # no phrase the tokenizer can spell: nothing to track
            return states, written
        at = np.searchsorted(self.alphabet, tokens)
        known = self.alphabet[np.minimum(at, len(self.alphabet) - 1)] == tokens
        before = self.written[states]
        states = self.delta[states, np.where(known, at + 1, 0)]
        return states, _written(written, before, self.written[states])

    def bonus(self, rows, states, written):
        """(slots, tokens, which): index arrays of the tokens nudged in rows; which is 0 for a
        phrase's first token, 1 for the continuation of a begun one, 2 for the first token of a
        phrase of a group written twice (a penalty)."""
        import numpy as np  # lazy: nothing heavy at import

        open_ = ~written[rows]
        twice = written[rows] >> TWICE
        start_rows = rows.repeat(len(self.start_tokens))
        start_tokens = np.tile(self.start_tokens, len(rows))
        start_bits = np.tile(self.start_bits, len(rows))
        start_keep = (start_bits & open_.repeat(len(self.start_tokens))) != 0
        again = (start_bits & twice.repeat(len(self.start_tokens))) != 0
        tokens = self.follow_tokens[states[rows]]
        keep = (self.follow_bits[states[rows]] & open_[:, None]) != 0
        follow_rows = np.broadcast_to(rows[:, None], tokens.shape)[keep]
        return (np.concatenate([start_rows[start_keep], follow_rows, start_rows[again]]),
                np.concatenate([start_tokens[start_keep], tokens[keep], start_tokens[again]]),
                np.concatenate([np.zeros(int(start_keep.sum()), dtype=np.int64),
                                np.ones(int(keep.sum()), dtype=np.int64),
                                np.full(int(again.sum()), 2, dtype=np.int64)]))


class _RequestNudgers:
    """The nudgers of the requests' wanted groups: nudgers[g] in the slots whose `which` is g
    (-1: the row wants nothing). start and follow are the logit bonuses; a value written twice costs
    AGAIN_PENALTY wherever the rows are nudged."""

    def __init__(self, nudgers: list[_Nudger], start: float, follow: float):
        self.nudgers, self.start_bonus, self.follow_bonus = nudgers, float(start), float(follow)

    def start(self, g: int, opening: list[int]) -> tuple[int, int]:
        return self.nudgers[g].start(opening) if g >= 0 else (0, 0)

    def advance(self, which, states, written, tokens):
        import numpy as np  # lazy: nothing heavy at import

        states, written = states.copy(), written.copy()
        for g in np.unique(which[which >= 0]):
            mine = which == g
            states[mine], written[mine] = self.nudgers[g].advance(states[mine], written[mine], tokens[mine])
        return states, written

    def nudge(self, logits, which, states, written, live):
        """logits with each live slot's bonuses added (one write for all the nudgers)."""
        import numpy as np  # lazy: nothing heavy at import
        import torch

        parts = [(np.zeros(0, dtype=np.int64),) * 3]
        for g in np.unique(which[live & (which >= 0)]):
            parts.append(self.nudgers[g].bonus(np.flatnonzero(live & (which == g)), states, written))
        rows, tokens, kind = (np.concatenate(p) for p in zip(*parts))
        if len(rows):
            device = logits.device
            bonus = torch.tensor([self.start_bonus, self.follow_bonus, -AGAIN_PENALTY], dtype=logits.dtype,
                                 device=device)
            # index_put_ with accumulate: a token that both starts one phrase and continues another
            # gets both bonuses, deterministically
            logits.index_put_((torch.from_numpy(rows).to(device), torch.from_numpy(tokens).to(device)),
                              bonus[torch.from_numpy(kind).to(device)], accumulate=True)
        return logits


def _written(written, before, now):
    """written after a step from a state whose phrases write the groups `before` to one whose write
    `now`: a group whose phrase the step enters (not one it goes on with: 宽松 to 宽松版) and was
    written before is written twice."""
    entered = now & ~before
    return written | now | ((written & entered & ONCE) << TWICE)


def _or(values) -> int:
    bits = 0
    for v in values:
        bits |= v
    return bits
