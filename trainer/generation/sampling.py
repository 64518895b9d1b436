"""Sampling for the generation engine: the next token of every slot, on the row's own random stream.

Each row's random stream is counter-based: a 64-bit key per (seed, request, variant), hashed with
the step and the draw, so a row's copy depends on the seed and on its own logits, not on which
rows share its batch. The sampler draws with temperature and nucleus (top-p) without sorting the
vocabulary; _ban_repeats forbids the tokens that would write an n-gram a row already wrote,
_ban_stutter those that would write a short run twice in a row (or one token apart), _ban_named_again
a second 这款, _ban_adding_again a clause that adds to one that added ("而且…，更…").

numpy and torch are imported inside the functions (importing trainer.generation loads neither).
"""

from __future__ import annotations

import math

_GOLDEN = 0x9E3779B97F4A7C15


def _mix64(x):
    """splitmix64's finaliser on a numpy uint64 array: a good 64-bit hash, wrapping arithmetic."""
    import numpy as np  # lazy: nothing heavy at import

    with np.errstate(over="ignore"):
        x = x + np.uint64(_GOLDEN)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _row_keys(seed: int, request, variant):
    """One 64-bit key per row: the root of its random stream."""
    import numpy as np  # lazy: nothing heavy at import

    with np.errstate(over="ignore"):
        return _mix64(_mix64(request * np.uint64(0x100000001B3) + variant) ^ np.uint64(seed % 2**64))


def _uniforms(keys, steps, draw: int = 0):
    """Uniform numbers in (0, 1), one per row: a hash of the row's key, its step and the draw."""
    import numpy as np  # lazy: nothing heavy at import

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

    With end_id (the engine's default, Generator.generate's honour_length), whether to end is
    decided first, at the end token's own odds (_end_apart), and what to write next is then drawn
    from the nucleus of the other tokens' distribution, renormalised without the end token.
    """

    DRAWS = 12  # rows still rejected after this many draws (p < 0.3^12) take the sorted path

    def __init__(self, temperature: float, top_p: float, greedy: bool, end_id: int | None = None):
        """end_id: the end token, decided apart from the nucleus (see _end_apart); None: the end
        token is one token of the nucleus like any other (Hugging Face's top-p)."""
        self.temperature = max(float(temperature), 1e-5)
        self.top_p = float(top_p)
        self.greedy = greedy
        self.end_id = end_id

    def __call__(self, logits, keys, steps, live):
        import numpy as np  # lazy: nothing heavy at import
        import torch

        if self.greedy:
            return logits.argmax(-1)
        probs = torch.softmax(logits / self.temperature, -1)
        tokens = torch.zeros(probs.shape[0], dtype=torch.long, device=probs.device)
        pending = np.flatnonzero(live)
        if self.end_id is not None and self.top_p < 1.0:
            pending = self._end_apart(probs, tokens, keys, steps, pending)
        cumulative = probs.cumsum(-1)
        total = cumulative[:, -1]
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

    def _end_apart(self, probs, tokens, keys, steps, pending):
        """Ends the rows that draw the end token, takes it out of the others' distribution (in
        place) and returns the rows still to draw.

        A row ends with the end token's own tempered probability where that token lies in the
        nucleus, and never where it does not. Inside the nucleus, plain top-p would inflate it:
        after a full stop the end token is one likely token against a continuation spread thin
        over many, the cut keeps the end and drops most of the continuation, and renormalising
        raises the odds of ending (the `small` model asked for medium copy, 99-118 characters in
        its training data, wrote a median of 96 at top-p 0.7). Outside the nucleus, an unlikely
        end (mid-clause) stays cut, as top-p cuts it. A row that goes on then draws from the
        nucleus of what follows: top-p over the other tokens, renormalised without the end (wider
        than plain top-p's nucleus less the end token, which the end's share would have crowded).
        """
        import torch

        if not len(pending):
            return pending
        rows = torch.from_numpy(pending).to(probs.device)
        p = probs[rows]
        total, end = p.sum(-1), p[:, self.end_id]
        in_nucleus = (p * (p > end[:, None])).sum(-1) < self.top_p * total
        u = torch.from_numpy(_uniforms(keys[pending], steps[pending], self.DRAWS + 1)).to(probs.device)
        ends = (in_nucleus & (u * total < end)).cpu().numpy()
        tokens[torch.from_numpy(pending[ends]).to(probs.device)] = self.end_id
        probs[:, self.end_id] = 0.0
        return pending[~ends]


# A run of 2 or 3 tokens may not be written twice in a row, nor twice with one token between
# ("裤脚裤脚", "显瘦又显瘦", "连衣裙的连衣裙"). Of the AdvertiseGen references 1.4% have such a
# doubled run of 2-3 characters (0.42% back to back, 0.98% with one character between: "面料，面料"),
# of the demo model's chosen copy about half (the validation split, scripts/tune_worker_choice.py).
STUTTER_SPANS = (2, 3)
STUTTER_GAPS = (0, 1)


def _ban_stutter(scores, out, done, live, spans=STUTTER_SPANS, gaps=STUTTER_GAPS):
    """scores with -inf on each token that would make a live row end with the same run of n tokens
    twice, g tokens apart, for n in spans and g in gaps: with the last 2n+g-1 tokens w0..w(2n+g-2)
    and w(n+g+i) == w(i) for every i < n-1, the token w(n-1) is banned."""
    import numpy as np  # lazy: nothing heavy at import
    import torch

    for n in spans:
        for g in gaps:
            can = live & (done >= 2 * n + g - 1)
            slots = np.flatnonzero(can)
            if not len(slots):
                continue
            end, rows = done[slots][:, None], slots[:, None]
            first = out[rows, end - (2 * n + g - 1) + np.arange(n - 1)]
            second = out[rows, end - (n - 1) + np.arange(n - 1)]
            hit = slots[(first == second).all(axis=1)]
            if len(hit):
                banned = out[hit, done[hit] - n - g]
                device = scores.device
                scores[torch.from_numpy(hit).to(device), torch.from_numpy(banned).to(device)] = -math.inf
    return scores


def _stutters(ids: list[int], spans=STUTTER_SPANS, gaps=STUTTER_GAPS) -> bool:
    """Whether ids hold a run that _ban_stutter bans: n tokens written again g tokens apart."""
    return any(ids[i:i + n] == ids[i + n + g:i + 2 * n + g]
               for n in spans for g in gaps for i in range(len(ids) - 2 * n - g + 1))


def _ban_repeats(scores, out, done, live, n: int):
    """scores with -inf on each token that would make a live row write an n-gram it already wrote.

    out[s, :done[s]] are slot s's tokens so far. Every earlier window equal to the slot's last n-1
    tokens bans the token that followed it. Vectorised over slots: one comparison of all windows.
    """
    import numpy as np  # lazy: nothing heavy at import
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


# A copy points at its product once: "这款风衣，这款风衣精选优质的面料" and "这款牛仔裤，这款破洞牛仔裤"
# opened 4 of the 20 rank-1 copies of a make demo job (2026-12-05). Of the 5,000 AdvertiseGen
# references 1,503 write 这款, 82 of them twice; 133 write two of these phrases ("这款卫衣，这是一款连帽的卫衣"
# in make demo's copy).
NAMED_ONCE = ("这款", "这是一款", "这件", "这条", "此款")


def _ban_named_again(scores, out, done, live, phrases: list[list[int]], written):
    """scores with -inf, in each live row that has written one of phrases (token ids; written[s]:
    slot s has, kept by _names), on the token that would finish any of them again."""
    import numpy as np  # lazy: nothing heavy at import
    import torch

    rows = np.flatnonzero(live & written)
    if not len(rows):
        return scores
    hits, tokens = [], []
    for phrase in phrases:
        hit = rows[_ends_with(out, done, rows, phrase[:-1])]
        hits.append(hit)
        tokens.append(np.full(len(hit), phrase[-1]))
    hits, tokens = np.concatenate(hits), np.concatenate(tokens)
    if len(hits):
        device = scores.device
        scores[torch.from_numpy(hits).to(device), torch.from_numpy(tokens).to(device)] = -math.inf
    return scores


# The first characters of the clauses that add to the clause before them: 而且, 同时, 并且, 还, 更, 也.
# One after another adds to nothing ("而且，更显得帅气大气", "同时也增添了衣物的美观性，同时又不会失帅气感",
# "而且还能衬托女性的优雅气质。而且还很好地诠释了…"): 0.48% of the 44,780 clause joins of the 5,000
# AdvertiseGen references (3.6% of the copies have one), 1.3% of the joins of a make demo job's 480
# candidates and 2.7% of its rank-1 copy's (3 of its 20 copies; 2026-12-05, afternoon).
ADDING = "而同并还更也"


def _ban_adding_again(scores, opens, opened, live, adding):
    """scores with -inf on the adding tokens (token ids of ADDING) in each live row at the start of a
    clause (opens < 0) whose clause before began with one (opened: _openings)."""
    import numpy as np  # lazy: nothing heavy at import
    import torch

    rows = np.flatnonzero(live & (opens < 0) & np.isin(opened, adding))
    if len(rows):
        device = scores.device
        scores[torch.from_numpy(rows).to(device)[:, None], torch.from_numpy(adding).to(device)] = -math.inf
    return scores


def _openings(opens, opened, tokens, marks):
    """(opens, opened) after each row writes its token: opens, the first token of the clause being
    written (-1 before it has one); opened, that of the clause before it (-1: none yet)."""
    import numpy as np  # lazy: nothing heavy at import

    ends = np.isin(tokens, marks)
    opened = np.where(ends, opens, opened)
    opens = np.where(ends, -1, np.where(opens < 0, tokens, opens))
    return opens, opened


def _says_any(ids: list[int], phrases: list[list[int]]) -> bool:
    """Whether the token ids hold one of phrases (a row's forced opening, read once)."""
    return any(ids[i:i + len(p)] == p for p in phrases for i in range(len(ids) - len(p) + 1))


def _names(out, done, rows, phrases: list[list[int]]):
    """Per row of rows: whether its tokens so far end with one of phrases (it has just written it)."""
    import numpy as np  # lazy: nothing heavy at import

    return np.logical_or.reduce([_ends_with(out, done, rows, p) for p in phrases], initial=False)


def _ends_with(out, done, rows, ids: list[int]):
    """Per row of rows: whether out[row, :done[row]] ends with ids."""
    import numpy as np  # lazy: nothing heavy at import

    n = len(ids)
    ends = done[rows] >= n
    long_enough = rows[ends]
    tail = out[long_enough[:, None], done[long_enough, None] - n + np.arange(n)]
    ends[ends] = (tail == np.asarray(ids, dtype=out.dtype)).all(axis=1)
    return ends
