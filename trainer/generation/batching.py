"""Continuous batching: a fixed number of slots decode together over a preallocated KV cache, and
a slot is refilled with the next row as soon as its copy ends, so short copy never waits for long
copy and the batch stays full until the queue runs dry, after which it is compacted.

Every row also gets the model's own log-probability of what it wrote: per step, the log-softmax of
each slot's raw logits (before temperature, top-p, the repeat ban and blocking) at the chosen
token. Where the checkpoint has an n-gram model of its training copy (trainer.ngram), the raw
distribution is the mixture of the network's and the n-gram model's (_NgramMixer), and everything
after it (nudging, blocking, sampling, the log-probability) works on that. (torch's fused log_softmax is 2x faster on CPU than its logsumexp: ~60 us for 96 slots x
2,018 tokens, under 1% of a step.)

numpy and torch are imported inside the functions (importing trainer.generation loads neither).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from copygen.textnorm import content_words
from trainer import wordpairs
from trainer.generation.blocking import _Blocker, _RequestBlockers
from trainer.generation.known import OFF, ROOT, SENTENCE, _Book
from trainer.generation.nudging import ONCE, _RequestNudgers
from trainer.generation.sampling import (
    _ban_adding_again,
    _ban_named_again,
    _ban_repeats,
    _ban_stutter,
    _mix64,
    _names,
    _openings,
    _Sampler,
    _says_any,
)
from trainer.ngram import copy_of

KV_CACHE_BYTES = 512 * 2**20  # slots are capped so the KV cache stays within this
REFILL_SHARE = 16  # refill once 1/16 of the slots (at least one) are free: fewer, larger prefills
COMPACT_BELOW = 0.75  # with no rows waiting, drop finished slots once fewer than 3/4 are alive
CLAUSE_TRIES = 4  # a clause below the floor is drawn again at most this many times, the last greedily
_RETRY = 0xD1B54A32D192ED03  # hashed into a row's key for each clause written again: new draws


@dataclass
class _Row:
    request: int
    variant: int
    ids: list[int]
    budget: int
    own: int = -1  # the automaton of its request's own banned phrases (_RequestBlockers); -1: none
    wanted: int = -1  # the nudger of its request's wanted phrases (_RequestNudgers); -1: none
    opening: int = 0  # the last `opening` prompt ids are the forced start of the copy
    floor: int = 0  # characters the row must write before it may end (its length setting's fewest)
    ngram: int = 0  # which of the checkpoint's n-gram models reads its copy (_NgramMixer.lms)
    book: int = 0  # which of the clause book's allowed sets is its own (_Book.allowed)


@dataclass
class _Decoded:
    ids: list[int]  # the generated tokens, without the end token
    logprob: float  # sum of log p(token) under the model's raw logits, the end token included when written
    tokens: int  # tokens in that sum: len(ids), plus one when the row ended with the end token


class _NgramMixer:
    """The network's next-token distribution mixed with n-gram models' (trainer.ngram.NgramSet: one
    per garment type), weight the network's share; a slot's n-gram context is the last order-1
    tokens of its copy, read by its row's model."""

    def __init__(self, models, weight: float):
        self.keys = list(models.models)
        self.lms = list(models.models.values())
        self.models, self.weight = models, weight
        self.start_id, self.width = models.start_id, models.order - 1

    def model_of(self, source: str) -> int:
        return self.keys.index(self.models.key_for(source))

    def context_of(self, ids: list[int]) -> list[int]:
        """The context before a row's first generated token: its opening, after the separator."""
        copy = copy_of(ids, self.start_id)
        return ([self.start_id] * self.width + copy)[len(copy):] if self.width else []

    def mix(self, scores, contexts, which, live):
        """Log-probabilities of the mixture in the live slots (the others are left as they are)."""
        import numpy as np  # lazy: nothing heavy at import
        import torch

        at = np.flatnonzero(live)
        counted = np.empty((len(at), scores.shape[1]), dtype=np.float32)
        for m in np.unique(which[at]):
            mine = which[at] == m
            counted[mine] = self.lms[m].distribution(contexts[at[mine]])
        rows = torch.from_numpy(at).to(scores.device)
        ngram = torch.from_numpy(counted).to(scores.device)
        scores = scores.clone()  # never write into the decoder's logits
        scores[rows] = torch.log(self.weight * torch.softmax(scores[rows], -1) + (1 - self.weight) * ngram)
        return scores

    def advance(self, contexts, tokens):
        """The contexts after writing tokens (one per row)."""
        import numpy as np  # lazy: nothing heavy at import

        if not self.width:
            return contexts
        return np.concatenate([contexts[:, 1:], tokens[:, None]], axis=1)


class _Slots:
    """Per-slot state of the decode loop, on the host (numpy): which row, where, how far."""

    def __init__(self, width: int, max_budget: int, context_width: int = 0):
        import numpy as np  # lazy: nothing heavy at import

        self.width = width
        self.row = np.full(width, -1, dtype=np.int64)  # the row a slot decodes, -1 when free
        self.pos = np.zeros(width, dtype=np.int64)  # cache position of the slot's next token
        self.done = np.zeros(width, dtype=np.int64)  # tokens generated so far
        self.budget = np.zeros(width, dtype=np.int64)
        self.key = np.zeros(width, dtype=np.uint64)  # root of the row's random stream
        self.state = np.zeros(width, dtype=np.int64)  # banned-phrase automaton state
        self.own = np.full(width, -1, dtype=np.int64)  # the row's own automaton (_Row.own)
        self.own_state = np.zeros(width, dtype=np.int64)  # ... and the slot's state in it
        self.wanted = np.full(width, -1, dtype=np.int64)  # the row's nudger (_Row.wanted)
        self.wanted_state = np.zeros(width, dtype=np.int64)  # ... the slot's state in it
        self.written = np.zeros(width, dtype=np.int64)  # ... and the wanted groups it has written
        self.logprob = np.zeros(width, dtype=np.float64)  # sum of log p(token) so far
        self.chars = np.zeros(width, dtype=np.int64)  # characters written so far
        self.floor = np.zeros(width, dtype=np.int64)  # the row's _Row.floor
        self.out = np.zeros((width, max_budget), dtype=np.int64)
        self.context = np.zeros((width, context_width), dtype=np.int64)  # the n-gram context (_NgramMixer)
        self.ngram = np.zeros(width, dtype=np.int64)  # ... and the row's n-gram model (_Row.ngram)
        self.known = np.zeros(width, dtype=np.int64)  # the slot's node in the clause book (_Book), OFF: free
        self.book = np.zeros(width, dtype=np.int64)  # ... and which of the book's allowed sets is its row's
        self.after = np.full(width, -1, dtype=np.int64)  # ... and the clause it last ended with a comma (_Book.follow)
        self.named = np.zeros(width, dtype=bool)  # the row has written a phrase of named_once (decode_rows), opening and all
        self.named_before = np.zeros(width, dtype=bool)  # ... by the start of the clause it is writing (_Book.mask)
        self.starting = np.full(width, SENTENCE, dtype=np.int8)  # where the clause being written began (_Book.mask)
        self.offbook = np.zeros(width, dtype=bool)  # the clause being written left the book (_Clauses draws it again)
        self.stuck = np.full(width, -1, dtype=np.int64)  # ... on the path below this node (_KnownClauses.branch)
        self.dead = np.full((width, CLAUSE_TRIES), -1, dtype=np.int64)  # the nodes the clause, drawn again, does not enter
        self.opens = np.full(width, -1, dtype=np.int64)  # the first token of the clause being written (sampling._openings)
        self.opened = np.full(width, -1, dtype=np.int64)  # ... and of the clause before it
        # The clause being written (_Clauses): the slot's state where it began, the token before it,
        # and how many times it has been written again.
        self.marks = {name: getattr(self, name).copy() for name in _Clauses.MARKED}
        self.last = np.zeros(width, dtype=np.int64)
        self.tries = np.zeros(width, dtype=np.int64)

    def admit(self, into, take: list[int], rows: list[_Row], keys, blocker: _Blocker,
              own: _RequestBlockers | None, nudgers: _RequestNudgers | None, mixer: _NgramMixer | None,
              book: _Book | None = None, named_once: list[list[int]] = (), marks=()) -> None:
        """Admit these rows into these slots; marks: the clause marks' token ids, to find where the
        row's forced opening leaves its clauses (sampling._openings)."""
        import numpy as np  # lazy: nothing heavy at import

        self.row[into] = take
        self.pos[into] = [len(rows[r].ids) for r in take]
        self.done[into] = 0
        self.budget[into] = [rows[r].budget for r in take]
        self.key[into] = keys[take]
        self.state[into] = [blocker.start(rows[r].ids) for r in take]
        self.logprob[into] = 0.0
        self.chars[into] = 0
        self.floor[into] = [rows[r].floor for r in take]
        if own is not None:
            self.own[into] = [rows[r].own for r in take]
            self.own_state[into] = [own.start(rows[r].own, rows[r].ids) for r in take]
        if nudgers is not None:
            self.wanted[into] = [rows[r].wanted for r in take]
            started = [nudgers.start(rows[r].wanted, rows[r].ids[len(rows[r].ids) - rows[r].opening:]) for r in take]
            self.wanted_state[into] = [state for state, _ in started]
            self.written[into] = [written for _, written in started]
        if mixer is not None:
            self.ngram[into] = [rows[r].ngram for r in take]
            if mixer.width:
                self.context[into] = [mixer.context_of(rows[r].ids) for r in take]
        if book is not None:
            self.book[into] = [rows[r].book for r in take]
            for slot, r in zip(into, take):
                self.known[slot], self.after[slot], self.starting[slot] = book.trie.opening(
                    rows[r].ids[len(rows[r].ids) - rows[r].opening:])
        self.named[into] = [_says_any(rows[r].ids[len(rows[r].ids) - rows[r].opening:], named_once) for r in take]
        self.named_before[into] = self.named[into]
        for slot, r in zip(into, take):
            opens = opened = np.full(1, -1, dtype=np.int64)
            for t in rows[r].ids[len(rows[r].ids) - rows[r].opening:]:
                opens, opened = _openings(opens, opened, np.full(1, t), marks)
            self.opens[slot], self.opened[slot] = opens[0], opened[0]
        self.mark(into)
        self.last[into] = [rows[r].ids[-1] for r in take]

    def mark(self, slots) -> None:
        """A clause begins in these slots: remember their state (next token at `pos`)."""
        for name, saved in self.marks.items():
            saved[slots] = getattr(self, name)[slots]
        self.tries[slots] = 0
        self.dead[slots] = -1

    def select(self, keep) -> _Slots:
        kept = _Slots.__new__(_Slots)
        kept.width = len(keep)
        for name in ("row", "pos", "done", "budget", "key", "state", "own", "own_state", "wanted", "wanted_state",
                     "written", "logprob", "chars", "floor", "out", "context", "ngram", "known", "book", "named",
                     "offbook", "stuck", "dead", "opens", "opened", "after", "named_before", "starting"):
            setattr(kept, name, getattr(self, name)[keep])
        kept.marks = {name: saved[keep] for name, saved in self.marks.items()}
        kept.last, kept.tries = self.last[keep], self.tries[keep]
        return kept


class _Clauses:
    """Writes a clause again when the model found it unlikely: once a row ends a clause (a clause
    mark such as ， or 。, or the end token), the clause's mean log-probability per token under the
    raw distribution (what the fluency score reads) is compared with `floor`; below it, the row
    goes back to where the clause began (its state, and its KV cache by feeding the token before
    the clause again at its position) and draws the clause anew on a fresh random stream, at most
    CLAUSE_TRIES times, the last time greedily (the likeliest token at each step, bans and all), and
    keeps that one. A small model garbles a clause here and there ("使身更加的舒适度更加的穿着体验"):
    whole copies chosen from candidates rarely have every clause clean, clauses drawn one by one can.
    The floor keeps a clause that names one of the product's values for the first time (a wanted
    group written, nudging.py) as drawn: value words are ones the model finds unlikely, and drawing
    such clauses again cost the demo model 3 to 7 points of attribute coverage (docs/demo-model.md,
    "Drawing a garbled clause again").

    With `pairs` (the checkpoint's trainer.wordpairs.WordPairs) and `decode` (token ids -> text),
    a clause is also drawn again when two of its neighbouring words never meet in the training
    copy: a splice such as "修饰颈部线条纹" that the model itself finds likely. This holds for a clause
    naming a value too (the splices gather around values: "文字母印花"); drawn again, it is still
    nudged toward the value. floor may be None (the words alone decide).

    With a clause book (known.py), a clause a row wrote off its book (where the book, the repeat
    ban and the blockers together left it no token) is drawn again too: written freely, such a
    clause is checked by no book ("而且这样的一款牛仔裤就是街头的破洞元素" in a denim jacket's copy), and
    drawn again it does not enter a node where its book left one of its draws no token (_Slots.dead):
    the same draw would reach the same dead end (known.py)."""

    # the per-slot state a rolled-back clause returns to (_Slots' arrays of the same names)
    MARKED = ("pos", "done", "state", "own_state", "wanted_state", "written", "logprob", "chars", "context", "known",
              "named", "opens", "opened", "after", "named_before", "starting")

    def __init__(self, marks_ids, floor: float | None, pairs: wordpairs.WordPairs | None = None, decode=None,
                 pause_ids=()):
        """pause_ids: the marks that join two clauses of a sentence (，), where decode is given: a
        clause saying a word again that the clause before it in its sentence said is drawn again."""
        import numpy as np  # lazy: nothing heavy at import

        self.marks_ids = np.asarray(sorted(marks_ids), dtype=np.int64)
        self.floor = -np.inf if floor is None else floor
        self.pairs, self.decode = pairs, decode
        self.pause_ids = set(pause_ids) if decode is not None else set()
        self._marks = set(self.marks_ids.tolist())

    @staticmethod
    def settle(tokens, scores, slots: _Slots, live, eos_id: int):
        """tokens, with the likeliest token (of the masked scores) in the slots on their last try.
        Not the end token while another may be written: a row ends at the end token's own odds
        (_Sampler._end_apart), which a greedy pick after a full stop would override."""
        import numpy as np  # lazy: nothing heavy at import
        import torch

        last = np.flatnonzero(live & (slots.tries >= CLAUSE_TRIES))
        if len(last):
            rows = torch.from_numpy(last).to(tokens.device)
            picked = scores[rows].clone()
            picked[_can_go_on(picked, eos_id), eos_id] = -torch.inf
            tokens = tokens.clone()
            tokens[rows] = picked.argmax(-1)
        return tokens

    def review(self, slots: _Slots, got, grow, live, eos_id: int):
        """(slots whose clause just ended below the floor, the tokens each wrote in it): those are
        rolled back, their next token to feed slots.last at slots.pos; the other slots that ended a
        clause begin a new one."""
        import numpy as np  # lazy: nothing heavy at import

        ended = live & (np.isin(got, self.marks_ids) | (got == eos_id))
        at = np.flatnonzero(ended)
        if not len(at):
            return at, at
        marks = slots.marks
        written = slots.done[at] - marks["done"][at] + (got[at] == eos_id)  # the end token is scored too
        mean = (slots.logprob[at] - marks["logprob"][at]) / np.maximum(written, 1)
        may = ((slots.tries[at] < CLAUSE_TRIES) & (slots.done[at] < slots.budget[at])
               & (slots.done[at] > marks["done"][at]))  # a clause of its own, not an end after a full stop
        again = may & (mean < self.floor) & ((slots.written[at] & ONCE) == (marks["written"][at] & ONCE))  # no value named anew
        again |= may & slots.offbook[at]  # written off the clause book (known.py), where its book left it no token
        if self.pairs is not None or self.pause_ids:
            for i in np.flatnonzero(may & ~again):
                slot = at[i]
                start = int(marks["done"][slot])
                text = self.decode(slots.out[slot, start:slots.done[slot]].tolist())
                again[i] = ((self.pairs is not None and bool(self.pairs.unseen_in(text)))
                            or self._restates(slots.out[slot], start, text))
        back, onward = at[again], at[~again & grow[at]]
        stuck = back[slots.stuck[back] >= 0]  # set only where the clause left its book (offbook)
        slots.dead[stuck, slots.tries[stuck]] = slots.stuck[stuck]  # drawn again, it avoids where it was left no token
        slots.offbook[at] = False
        slots.stuck[at] = -1
        for name, saved in marks.items():
            getattr(slots, name)[back] = saved[back]
        slots.pos[back] -= 1  # the token before the clause is fed again, at its position
        slots.tries[back] += 1
        with np.errstate(over="ignore"):
            slots.key[back] = _mix64(slots.key[back] ^ np.uint64(_RETRY))
        slots.mark(onward)
        marks["pos"][onward] += 1  # the next clause's first token is fed after this one
        slots.last[onward] = got[onward]
        return back, written[again]

    def _restates(self, out, start: int, text: str) -> bool:
        """Whether a clause (text, written from out[start]) says a content word (copygen.textnorm.content_words)
        that the clause before it in its sentence said ("宽松的廓形，宽松版型", "穿着舒适，柔软舒适": readers of
        make demo's copy counted 59 repeats in 58 rank-1 copies, 2026-12-05, evening). People do it in
        5.1% of the 34,449 clause joins of the AdvertiseGen references, make demo's rank-1 copy in 7.4%
        of 403 (1.8% with this check: the last, greedy try keeps what it draws)."""
        if not self.pause_ids or start < 2 or int(out[start - 1]) not in self.pause_ids:
            return False
        begin = start - 1
        while begin > 0 and int(out[begin - 1]) not in self._marks:
            begin -= 1
        before = self.decode(out[begin:start - 1].tolist())
        return not set(content_words(text)).isdisjoint(content_words(before))


def _ban_early_end(scores, slots: _Slots, live, eos_id: int) -> None:
    """-inf on the end token in every live slot whose row has not yet written its floor and may
    still write something else (a row whose every other token is masked may always end)."""
    import numpy as np  # lazy: nothing heavy at import
    import torch

    early = np.flatnonzero(live & (slots.chars < slots.floor))
    if not len(early):
        return
    rows = torch.from_numpy(early).to(scores.device)
    scores[rows[_can_go_on(scores[rows], eos_id)], eos_id] = -torch.inf


def _can_go_on(scores, eos_id: int):
    """Per row of scores: whether some token other than the end token may still be written."""
    import torch

    finite = torch.isfinite(scores)
    return finite.sum(-1) > finite[:, eos_id].long()


def decode_rows(decoder, rows: list[_Row], keys, blocker: _Blocker, sampler: _Sampler, *, batch_size: int,
                eos_id: int, no_repeat_ngram: int = 0, own: _RequestBlockers | None = None,
                nudgers: _RequestNudgers | None = None, token_chars=None,
                mixer: _NgramMixer | None = None, clauses: _Clauses | None = None,
                book: _Book | None = None, named_once: list[list[int]] = (), adding=None) -> list[_Decoded]:
    """What each row generated (in the order of rows): the slot loop of continuous batching.

    decoder: a decoder (_GPT2Decoder or _HFDecoder); at most batch_size slots decode together; a row
    ends at eos_id or at its budget. blocker masks the call's phrases in every row; own, where
    some rows have phrases of their own (_Row.own), masks those in their rows; nudgers, where some
    rows want phrases (_Row.wanted), adds their bonuses in those rows. token_chars (a numpy array:
    the characters each token id writes), where some rows have a floor (_Row.floor), keeps eos_id
    out of those rows until they have written that many characters. mixer, where the checkpoint
    has an n-gram model, mixes it into every row's next-token distribution. clauses, where given,
    writes a clause the model found unlikely again (_Clauses). book, where given, lets each row
    write only clauses of the training copy (known.py); its allowed sets are indexed by _Row.book;
    the repeat ban never keeps a row from the mark that ends its clause (_Book.mask), and a row goes on
    with its writer's sentence by preference (_Book.follow). named_once
    (token ids of phrases: sampling.NAMED_ONCE) are written once in a row at most, its opening included.
    adding, where given ((token ids of sampling.ADDING, the clause marks' token ids), numpy arrays),
    keeps a row from beginning a clause with one of those after a clause that began with one."""
    import numpy as np  # lazy: nothing heavy at import
    import torch

    span = max(len(r.ids) + r.budget for r in rows)  # cache positions a row can need
    width = max(1, min(batch_size, len(rows), KV_CACHE_BYTES // max(1, decoder.slot_bytes(span))))
    refill_at = max(1, width // REFILL_SHARE)
    max_budget = max(r.budget for r in rows)
    results: list[_Decoded] = [_Decoded([], 0.0, 0) for _ in rows]
    queue = deque(range(len(rows)))
    context_width = mixer.width if mixer is not None else 0
    slots = _Slots(width, max_budget, context_width)
    cache = decoder.new_cache(width, span)
    logits = None
    with torch.inference_mode():
        while True:
            free = np.flatnonzero(slots.row < 0)
            if queue and len(free) and (len(free) == slots.width
                                        or (decoder.refills and len(free) >= min(refill_at, len(queue)))):
                take = [queue.popleft() for _ in range(min(len(free), len(queue)))]
                if not decoder.refills:  # a fresh static batch: the cache is rebuilt at its width
                    slots, free = _Slots(len(take), max_budget, context_width), np.arange(len(take))
                into = free[: len(take)]
                fresh, cache = decoder.prefill(cache, [rows[r].ids for r in take], into)
                if logits is None or logits.shape[0] != slots.width:
                    logits = fresh.new_zeros((slots.width, fresh.shape[1]))
                logits[torch.from_numpy(into).to(fresh.device)] = fresh
                slots.admit(into, take, rows, keys, blocker, own, nudgers, mixer, book, named_once,
                            adding[1] if adding is not None else ())
            live = slots.row >= 0
            if not live.any():
                break

            scores = logits.float()
            if mixer is not None:
                scores = mixer.mix(scores, slots.context, slots.ngram, live)
            raw = torch.log_softmax(scores, -1)  # the model's own distribution: before the masks below
            if nudgers is not None:  # before the masks: a bonus never lifts a blocked token
                scores = nudgers.nudge(scores, slots.wanted, slots.wanted_state, slots.written, live)
            scores = blocker.mask(scores, slots.state, live)
            if own is not None:
                scores = own.mask(scores, slots.own, slots.own_state, live)
            if token_chars is not None:
                _ban_early_end(scores, slots, live, eos_id)
            if named_once:  # before unbanned_marks: the book never lifts it
                scores = _ban_named_again(scores, slots.out, slots.done, live, named_once, slots.named)
            if adding is not None:
                scores = _ban_adding_again(scores, slots.opens, slots.opened, live, adding[0])
            unbanned_marks = book.marks_of(scores) if book is not None and no_repeat_ngram > 1 else None
            if no_repeat_ngram > 1:
                scores = _ban_repeats(scores, slots.out, slots.done, live, no_repeat_ngram)
                scores = _ban_stutter(scores, slots.out, slots.done, live)
            if book is not None:  # last: a row its book leaves no token, marks unbanned, writes freely
                was = slots.known.copy()
                scores = book.mask(scores, slots.known, slots.book, live, unbanned_marks,
                                   slots.named_before if named_once else None, slots.starting, slots.dead,
                                   slots.after)
                left = live & (slots.known == OFF) & (was > ROOT)  # left no token at `was` just now
                slots.stuck[left] = book.trie.branch[was[left]]
                slots.offbook |= live & (slots.known == OFF)
                scores = book.follow(scores, slots.known, slots.after, live)
                if nudgers is not None:
                    scores = book.lead(scores, slots.known, slots.book, slots.wanted, slots.written, nudgers, live)
            tokens = sampler(scores, slots.key, slots.done, live)
            if clauses is not None:
                tokens = clauses.settle(tokens, scores, slots, live, eos_id)
            logprob = raw.gather(1, tokens[:, None]).squeeze(1)
            got = tokens.cpu().numpy()
            slots.logprob[live] += logprob.cpu().numpy()[live]
            grow = live & (got != eos_id)
            slots.out[grow, slots.done[grow]] = got[grow]
            slots.done[grow] += 1
            if named_once:
                slots.named[grow] |= _names(slots.out, slots.done, np.flatnonzero(grow), named_once)
            if adding is not None:
                slots.opens[grow], slots.opened[grow] = _openings(slots.opens[grow], slots.opened[grow], got[grow],
                                                                  adding[1])
            if token_chars is not None:
                slots.chars[grow] += token_chars[got[grow]]
            slots.state[grow] = blocker.advance(slots.state[grow], got[grow])
            if mixer is not None:
                slots.context[grow] = mixer.advance(slots.context[grow], got[grow])
            if book is not None:
                begins = grow & np.isin(got, book.trie.marks)  # a new clause: from the set its row's naming allows
                slots.named_before[begins] = slots.named[begins]
                slots.after[grow] = book.trie.ended(slots.known[grow], got[grow], slots.after[grow])
                slots.known[grow] = book.trie.advance(slots.known[grow], got[grow])
                slots.starting[begins] = book.trie.begins(slots.known[begins], slots.after[begins])
            if own is not None:
                slots.own_state[grow] = own.advance(slots.own[grow], slots.own_state[grow], got[grow])
            if nudgers is not None:
                slots.wanted_state[grow], slots.written[grow] = nudgers.advance(
                    slots.wanted[grow], slots.wanted_state[grow], slots.written[grow], got[grow])
            finished = live & ((got == eos_id) | (slots.done >= slots.budget))
            if clauses is not None:
                back, written = clauses.review(slots, got, grow, live, eos_id)
                if len(back):  # these go on from where their clause began
                    finished[back] = False
                    cache = decoder.rewind(cache, back, written)
                    tokens = tokens.clone()
                    tokens[torch.from_numpy(back).to(tokens.device)] = torch.from_numpy(slots.last[back]).to(tokens.device)
            for slot in np.flatnonzero(finished):
                done = int(slots.done[slot])
                ended = int(got[slot] == eos_id)  # the end token is scored, not kept
                results[slots.row[slot]] = _Decoded(slots.out[slot, :done].tolist(), float(slots.logprob[slot]),
                                                    done + ended)
                slots.row[slot] = -1
            live &= ~finished
            if not live.any():
                continue  # admit the next rows, or stop
            if (not queue or not decoder.refills) and live.sum() < COMPACT_BELOW * slots.width:
                keep = np.flatnonzero(live)
                cache = decoder.compact(cache, keep, int(slots.pos[keep].max()))
                tokens = tokens[torch.from_numpy(keep).to(tokens.device)]
                slots = slots.select(keep)
                live = np.ones(slots.width, dtype=bool)
            at = np.where(live, slots.pos, 0)  # free slots write (unused) keys at position 0
            logits = decoder.step(cache, tokens, at, int(at[live].max()) + 1)
            slots.pos[live] += 1
    return results
