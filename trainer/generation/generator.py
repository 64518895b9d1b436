"""The generation engine's public face: a Request (one product, k variants) and the Generator that
loads a checkpoint once and turns requests into copy.

Generator.generate_candidates() turns every request into k rows (prompt ids, token budget), sorts
them by prompt length, hands them to the continuous-batching loop (batching.py) with a random key
per row (sampling.py) and the banned-phrase automata (blocking.py: the call's, and each request's
own), and decodes the ids into texts, each with the model's mean log-probability of its tokens.
generate() and generate_ids() are views of the same decoding. The model runs through a decoder:
_GPT2Decoder (gpt2_decoder.py) for GPT-2 checkpoints, _HFDecoder (hf_decoder.py) for any other
causal LM.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from copygen import prompt
from trainer import clausebook, ngram, wordpairs
from trainer.checkpoint import CheckpointError, load_manifest, load_model_and_tokenizer
from trainer.devices import pick_device, pick_dtype
from trainer.generation.batching import _Clauses, _Decoded, _NgramMixer, _Row, decode_rows
from trainer.generation.blocking import _Blocker, _RequestBlockers
from trainer.generation.gpt2_decoder import _GPT2Decoder
from trainer.generation.hf_decoder import _HFDecoder
from trainer.generation.known import SENTENCE_MARKS, _Book, _KnownClauses
from trainer.generation.nudging import _Nudger, _RequestNudgers
from trainer.generation.sampling import ADDING, NAMED_ONCE, _row_keys, _Sampler

log = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = {"short": 64, "medium": 200, "long": 300}  # for a model without length edges
BUDGET_HEADROOM = 1.25  # token budget = 1.25 x the most characters a copy of its length may have
# Copy must not write the same 4 tokens twice (characters, for the character tokenizer): the model's
# own copy repeats 4-grams 3.7x as often as human copy (1.47% vs 0.40% of them, on the validation
# split), which reads as stutter and trips the repetition filter. The same rule bans a run of 2 or 3
# tokens written twice in a row or one token apart ("显瘦显瘦", "显瘦又显瘦"), which a 4-gram rule
# lets through.
NO_REPEAT_NGRAM = 4


@dataclass(frozen=True)
class Request:
    source: str
    variants: int = 1
    length: str = "medium"
    style: str = "ad"
    opening: str = ""
    # Phrases this request's rows never write, on top of the call's `banned` (which holds for
    # every row): words the product's own attributes rule out, e.g. 牛仔裤 for a linen pair of shorts.
    banned: tuple[str, ...] = ()
    # Phrases this request's rows are nudged toward (see nudging.py), in groups: one group per
    # thing to say (an attribute value), any phrase of a group says it, e.g. (("雪纺",), ("半身裙", "半裙")).
    # Only a call with a nonzero `nudge` uses them.
    wanted: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self):
        if isinstance(self.banned, str):  # a string would ban each of its characters
            raise TypeError(f"Request.banned is a tuple of phrases, not the string {self.banned!r}")
        if any(isinstance(group, str) for group in self.wanted):
            raise TypeError(f"Request.wanted is a tuple of phrase groups (tuples), not {self.wanted!r}")


@dataclass(frozen=True)
class Candidate:
    """One variant: its text, and how likely the model itself found the tokens it wrote."""

    text: str  # exactly what generate() returns for this variant
    # The mean, over the generated tokens (the end token included when written), of log p(token)
    # under the model's raw distribution: before temperature, top-p, the repeat ban and blocking.
    logprob: float
    tokens: int  # generated tokens in that mean


class Generator:
    """One model on one device, loaded once; generate() is safe to call many times."""

    def __init__(self, model, tokenizer, manifest: dict, device: str, batch_size: int = 48, *,
                 native: bool = True, decoder: _GPT2Decoder | None = None, checkpoint_dir: Path | None = None,
                 attention: str = "auto", mixture: tuple[ngram.NgramSet, float] | None = None,
                 word_pairs: wordpairs.WordPairs | None = None, clause_book: clausebook.ClauseBook | None = None):
        """model: a Hugging Face causal LM; or None with a decoder built from the checkpoint's
        weights (Generator.load does that for GPT-2: it never imports the Hugging Face model).
        mixture: (the checkpoint's n-gram models, the network's share) to decode from the mixture.
        word_pairs: the checkpoint's pairs of neighbouring words, for calls with word_pairs=True.
        clause_book: the checkpoint's clauses of its training copy, for calls with known_clauses=True."""
        self._model = model
        self._checkpoint_dir = checkpoint_dir
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.device = device
        self.batch_size = batch_size
        self.model_version = manifest["name"]
        # the copy-length bucket edges the model was trained with (None in a manifest without them)
        self.length_edges = tuple(manifest.get("prompt", {}).get("length_edges") or ()) or None
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
        if mixture is not None and mixture[0].vocab_size != self.vocab_size:
            raise CheckpointError(f"{checkpoint_dir}: the n-gram models have {mixture[0].vocab_size} tokens, "
                                  f"the model {self.vocab_size}")
        self._mixer = _NgramMixer(*mixture) if mixture is not None else None
        self.word_pairs = word_pairs
        self.clause_book = clause_book

    @property
    def ngram_weight(self) -> float | None:
        """The network's share of the mixture with the n-gram models, or None without them."""
        return self._mixer.weight if self._mixer is not None else None

    @classmethod
    def load(cls, checkpoint_dir: str | os.PathLike, device: str = "auto", batch_size: int = 48,
             dtype: str = "auto", attention: str = "auto", use_ngram: bool = True,
             ngram_share: float | None = None) -> Generator:
        """The checkpoint's model on device; refuses a directory that is not a usable checkpoint
        (CheckpointError, one line). dtype: auto, float32, bfloat16 or float16 (see pick_dtype);
        attention (GPT-2 models): auto, sdpa, kernel (CPU, bfloat16 cache) or matmul (float32 cache);
        use_ngram: decode from the mixture with the checkpoint's n-gram model, where it has one;
        ngram_share: the network's share of that mixture instead of the manifest's (for tuning)."""
        device = pick_device(device)
        torch_dtype = pick_dtype(device, dtype)
        path = Path(checkpoint_dir)
        manifest = load_manifest(path)
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        mixture = load_mixture(path, manifest) if use_ngram else None
        pairs = load_word_pairs(path, manifest)
        book = load_clause_book(path, manifest)
        if ngram_share is not None:
            if mixture is None:
                raise ValueError(f"{path}: an n-gram share of {ngram_share} for a checkpoint decoded without n-grams")
            mixture = (mixture[0], ngram_share)
        if _GPT2Decoder.supports(config):
            decoder, tokenizer = _GPT2Decoder.from_checkpoint(path, config, device, torch_dtype, attention)
            generator = cls(None, tokenizer, manifest, device, batch_size, decoder=decoder, checkpoint_dir=path,
                            mixture=mixture, word_pairs=pairs, clause_book=book)
        else:
            model, tokenizer, manifest = load_model_and_tokenizer(path, device=device, dtype=torch_dtype)
            generator = cls(model, tokenizer, manifest, device, batch_size, checkpoint_dir=path, mixture=mixture,
                            word_pairs=pairs, clause_book=book)
        log.info("loaded checkpoint %s (%s) on %s in %s", checkpoint_dir, manifest["name"], device,
                 str(torch_dtype).removeprefix("torch."))
        return generator

    @property
    def model(self):
        """The Hugging Face model (loaded on first use when the engine decodes natively: only
        tests, benchmarks and tools that call the model directly need it)."""
        if self._model is None:
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

    # A request's own phrases: one automaton per distinct set, shared by the requests (and the calls)
    # that have it. Each is as small as its phrases (no array as long as the vocabulary).
    @functools.lru_cache(maxsize=1024)  # noqa: B019  (one Generator per process; products of a kind repeat)
    def _request_blocker(self, phrases: frozenset[str]) -> _Blocker:
        return _Blocker(self._banned_table(sorted(phrases)), [], self.vocab_size, self.device)

    @functools.lru_cache(maxsize=1024)  # noqa: B019  (one Generator per process; products of a kind repeat)
    def _nudger(self, groups: tuple[tuple[str, ...], ...]) -> _Nudger:
        encoded = [[tuple(ids) for ids in (self.tokenizer.encode(p, add_special_tokens=False) for p in phrases)
                    if ids and self.tokenizer.unk_token_id not in ids] for phrases in groups]
        return _Nudger([phrases for phrases in encoded if phrases])

    # -- generation ----------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request], *, temperature: float = 0.95, top_p: float = 0.7,
                 seed: int | None = None, max_new_tokens: int | None = None, banned: Iterable[str] = (),
                 greedy: bool = False, no_repeat_ngram: int = 0, nudge: tuple[float, float] = (0.0, 0.0),
                 honour_length: bool = True, clause_floor: float | None = None,
                 word_pairs: bool = False, known_clauses: bool = False) -> list[list[str]]:
        """Request i -> its `variants` texts, in order; each text starts with the request's opening.

        With a seed the result is repeatable; sampled or greedy, a row's copy does not depend on
        the other requests of the call (up to floating-point rounding in a different batch).
        banned: phrases no row writes; a request's own `banned` adds phrases for its rows only.
        With no_repeat_ngram=n, no row writes the same n tokens twice, nor a run of 2 or 3 tokens
        twice in a row or one token apart (sampling.STUTTER_SPANS, STUTTER_GAPS); 0: neither rule.
        nudge=(start, follow): logit bonuses toward each request's `wanted` phrases (nudging.py):
        `start` on a phrase's first token, `follow` on the next token of a begun one, and once a row has
        written a value twice, nudging.AGAIN_PENALTY off its phrases' first tokens; (0, 0) is off.
        honour_length: copy is as long as its length setting asks: a row does not end before the
        fewest characters the setting allows (prompt.length_bounds, the bound the worker's
        too_short check holds copy to) unless its budget runs out first, and the end token is
        drawn at the model's own odds, not at the odds top-p inflates (_Sampler._end_apart);
        False: Hugging Face's top-p, and a row ends wherever its sample ends.
        clause_floor: a clause (up to ，。！？； or the end) whose mean log-probability per token under
        the model's raw distribution is below this is drawn again, up to batching.CLAUSE_TRIES
        times (batching._Clauses); None (or greedy): every clause is kept as first drawn.
        word_pairs: a clause two of whose neighbouring words never meet in the training copy
        (trainer.wordpairs) is drawn again the same way; off under greedy decoding, and for a
        checkpoint saved without word pairs (logged).
        known_clauses: every clause a row writes is a clause of the model's training copy (the
        checkpoint's clause book, trainer.clausebook; generation/known.py): the model chooses
        which and in what order; ValueError for a checkpoint saved without one.
        """
        candidates = self.generate_candidates(requests, temperature=temperature, top_p=top_p, seed=seed,
                                              max_new_tokens=max_new_tokens, banned=banned, greedy=greedy,
                                              no_repeat_ngram=no_repeat_ngram, nudge=nudge,
                                              honour_length=honour_length, clause_floor=clause_floor,
                                              word_pairs=word_pairs, known_clauses=known_clauses)
        return [[c.text for c in variants] for variants in candidates]

    def token_budget(self, length: str) -> int:
        """New tokens a copy of this length may take: room past the longest copy the filter accepts,
        so an overlong copy is flagged too_long rather than cut off mid-sentence."""
        if self.length_edges is None:
            return DEFAULT_MAX_NEW_TOKENS.get(length, 200)
        return round(prompt.length_bounds(length, self.length_edges)[1] * BUDGET_HEADROOM)

    def fewest_chars(self, length: str) -> int:
        """Characters a copy of this length has at least (the floor honour_length keeps)."""
        return prompt.length_bounds(length, self.length_edges)[0]

    @functools.cache  # noqa: B019  (one Generator per process)
    def _named_once(self) -> list[list[int]]:
        """The token ids of sampling.NAMED_ONCE's phrases that this tokenizer spells out."""
        unk = self.tokenizer.unk_token_id
        phrases = [self.tokenizer.encode(p, add_special_tokens=False) for p in NAMED_ONCE]
        return [ids for ids in phrases if ids and unk not in ids]

    @functools.cache  # noqa: B019  (one Generator per process)
    def _adding(self):
        """(the token ids of sampling.ADDING's characters, the clause marks' ids), for decode_rows."""
        import numpy as np  # lazy: nothing heavy at import

        ids = set(self.tokenizer.convert_tokens_to_ids(list(ADDING))) - {self.tokenizer.unk_token_id, None}
        return np.array(sorted(ids), dtype=np.int64), np.array(sorted(self._clause_mark_ids()), dtype=np.int64)

    @functools.cache  # noqa: B019  (one Generator per process)
    def _token_chars(self):
        """The characters each token id writes (0 for special tokens and unused embedding rows):
        exact for the character tokenizer; for subword tokenizers an estimate that errs high (a
        byte-level piece of a character counts as one, a WordPiece "##x" as three), so a floor is
        reached early rather than late."""
        import numpy as np  # lazy: nothing heavy at import

        texts = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))], skip_special_tokens=True)
        chars = np.zeros(self.vocab_size, dtype=np.int64)
        chars[:len(texts)] = [len(text) for text in texts]
        return chars

    def generate_candidates(self, requests: Sequence[Request], *, temperature: float = 0.95,
                            top_p: float = 0.7, seed: int | None = None, max_new_tokens: int | None = None,
                            banned: Iterable[str] = (), greedy: bool = False,
                            no_repeat_ngram: int = 0, nudge: tuple[float, float] = (0.0, 0.0),
                            honour_length: bool = True, clause_floor: float | None = None,
                            word_pairs: bool = False, known_clauses: bool = False) -> list[list[Candidate]]:
        """Like generate(), each text with the model's mean log-probability of its tokens."""
        decoded = self._generate(requests, temperature=temperature, top_p=top_p, seed=seed,
                                 max_new_tokens=max_new_tokens, banned=banned, greedy=greedy,
                                 no_repeat_ngram=no_repeat_ngram, nudge=nudge, honour_length=honour_length,
                                 clause_floor=clause_floor, word_pairs=word_pairs, known_clauses=known_clauses)
        texts = iter(self.tokenizer.batch_decode([d.ids for variants in decoded for d in variants],
                                                 skip_special_tokens=True))
        return [[Candidate(r.opening + next(texts).strip(), d.logprob / max(1, d.tokens), d.tokens)
                 for d in variants] for r, variants in zip(requests, decoded)]

    def _clauses(self, floor: float | None, word_pairs: bool, greedy: bool, known: bool = False) -> _Clauses | None:
        """What draws a clause again: a floor, word pairs, or (known) a clause written off the book."""
        if word_pairs and self.word_pairs is None:
            self._say_no_word_pairs()
        pairs = self.word_pairs if word_pairs else None
        if (floor is None and pairs is None and not known) or greedy:  # greedy decoding would draw the same clause again
            return None
        pauses = {self.tokenizer.convert_tokens_to_ids(mark) for mark in CLAUSE_MARKS if mark not in SENTENCE_MARKS}
        return _Clauses(self._clause_mark_ids(), floor, pairs,
                        functools.partial(self.tokenizer.decode, skip_special_tokens=True),
                        pause_ids=pauses & self._clause_mark_ids())

    @functools.cache  # noqa: B019  (said once per Generator, not once per call: a worker calls per round)
    def _say_no_word_pairs(self) -> None:
        log.warning("%s has no word pairs (trained before they were saved): clauses are not checked for them",
                    self.model_version)

    def _book(self, blocker: _Blocker, own: _RequestBlockers | None, groups: list[tuple[int, str]]) -> _Book:
        """The clause book of one call: the share of each group of rows (own automaton, source) is
        the clauses of its garment type whose facts its product states and its blockers let through."""
        trie = self._known_clauses()
        call = self._passing(trie, blocker)
        # where a clause begins (known.MID, SENTENCE): the clauses it may be, before the product is named and
        # after (less those naming it)
        places = ([~trie.garment_name], [trie.starts, ~trie.bare_name])
        sets: list[list] = [[] for _ in range(2 * len(places))]
        for g, source in groups:
            passing = [call, trie.of_type(ngram.key_of(source)), self._of_facts(trie, source)]
            if g >= 0:
                passing.append(self._passing(trie, own.automata[g]))
            for p, rule in enumerate(places):
                sets[2 * p].append(trie.allowed([*passing, *rule]))
                sets[2 * p + 1].append(trie.allowed([*passing, ~trie.names_product, *rule]))
        return _Book(trie, sets[0], sets[1], [s for block in sets[2:] for s in block])

    @functools.lru_cache(maxsize=64)  # noqa: B019  (one Generator per process; 33 KB each for the demo book)
    def _passing(self, trie: _KnownClauses, blocker: _Blocker):
        return trie.passing(blocker)

    @functools.lru_cache(maxsize=256)  # noqa: B019  (a product's regeneration rounds ask again)
    def _of_facts(self, trie: _KnownClauses, source: str):
        return trie.of_facts(clausebook.facts_met(source, trie.fact_names))

    @functools.cache  # noqa: B019  (one Generator per process: the trie is built on first use)
    def _known_clauses(self) -> _KnownClauses:
        if self.clause_book is None:
            raise ValueError(f"{self.model_version} has no clause book (trained before 2026-12-05, or "
                             "without copy): retrain it to decode with known_clauses")
        return _KnownClauses.from_book(self.clause_book, self.tokenizer, self._clause_mark_ids(), self.eos_id)

    @functools.cache  # noqa: B019  (one Generator per process)
    def _clause_mark_ids(self) -> frozenset[int]:
        ids = {self.tokenizer.convert_tokens_to_ids(mark) for mark in CLAUSE_MARKS}
        return frozenset(ids - {self.tokenizer.unk_token_id, None})

    def generate_ids(self, requests: Sequence[Request], *, temperature: float = 0.95, top_p: float = 0.7,
                     seed: int | None = None, max_new_tokens: int | None = None, banned: Iterable[str] = (),
                     greedy: bool = False, no_repeat_ngram: int = 0,
                     nudge: tuple[float, float] = (0.0, 0.0), honour_length: bool = True,
                     clause_floor: float | None = None, word_pairs: bool = False,
                     known_clauses: bool = False) -> list[list[list[int]]]:
        """Like generate(), but the generated token ids (without the prompt and the end token)."""
        decoded = self._generate(requests, temperature=temperature, top_p=top_p, seed=seed,
                                 max_new_tokens=max_new_tokens, banned=banned, greedy=greedy,
                                 no_repeat_ngram=no_repeat_ngram, nudge=nudge, honour_length=honour_length,
                                 clause_floor=clause_floor, word_pairs=word_pairs, known_clauses=known_clauses)
        return [[d.ids for d in variants] for variants in decoded]

    def _generate(self, requests: Sequence[Request], *, temperature: float, top_p: float, seed: int | None,
                  max_new_tokens: int | None, banned: Iterable[str], greedy: bool,
                  no_repeat_ngram: int, nudge: tuple[float, float] = (0.0, 0.0),
                  honour_length: bool = True, clause_floor: float | None = None,
                  word_pairs: bool = False, known_clauses: bool = False) -> list[list[_Decoded]]:
        """The one decoding path: request i -> what each of its variants generated."""
        import numpy as np  # lazy: nothing heavy at import

        rows: list[_Row] = []
        prompts: dict[tuple[str, str, str, str, int], list[int]] = {}
        own_sets: dict[frozenset[str], int] = {}  # a request's own phrases -> its automaton's index
        wanted_sets: dict[tuple[tuple[str, ...], ...], int] = {}  # a request's wanted groups -> its nudger's index
        books: dict[tuple[int, str], int] = {}  # (own automaton, source) -> its clause book's index
        openings: dict[str, int] = {}  # an opening -> its length in tokens
        nudging = any(nudge)
        for i, request in enumerate(requests):
            budget = min(max_new_tokens or self.token_budget(request.length), self.max_positions // 2)
            key = (request.source, request.length, request.style, request.opening, budget)
            if key not in prompts:
                prompts[key] = self.prompt_ids(request, budget)
            own = own_sets.setdefault(frozenset(request.banned), len(own_sets)) if request.banned else -1
            wanted = wanted_sets.setdefault(request.wanted, len(wanted_sets)) if nudging and request.wanted else -1
            opening = 0  # the nudger and the clause book read the forced opening as copy already written
            if request.opening:
                if request.opening not in openings:
                    openings[request.opening] = len(self.tokenizer.encode(request.opening, add_special_tokens=False))
                opening = openings[request.opening]
            floor = self.fewest_chars(request.length) - len(request.opening) if honour_length else 0
            model = self._mixer.model_of(request.source) if self._mixer is not None else 0
            book = books.setdefault((own, request.source), len(books)) if known_clauses else 0
            rows.extend(_Row(i, v, prompts[key], budget, own, wanted, opening, max(0, floor), model, book)
                        for v in range(request.variants))
        rows.sort(key=lambda row: (len(row.ids), row.request, row.variant))
        out: list[list[_Decoded]] = [[_Decoded([], 0.0, 0) for _ in range(r.variants)] for r in requests]
        if not rows:
            return out
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "big") >> 1
        keys = _row_keys(seed, np.array([r.request for r in rows], dtype=np.uint64),
                         np.array([r.variant for r in rows], dtype=np.uint64))
        blocker = self._blocker(tuple(dict.fromkeys(banned)))
        own = _RequestBlockers([self._request_blocker(phrases) for phrases in own_sets]) if own_sets else None
        nudgers = _RequestNudgers([self._nudger(groups) for groups in wanted_sets], *nudge) if wanted_sets else None
        sampler = _Sampler(temperature, top_p, greedy, end_id=self.eos_id if honour_length else None)
        book = self._book(blocker, own, list(books)) if known_clauses else None
        decoded = decode_rows(self._decoder, rows, keys, blocker, sampler, batch_size=self.batch_size,
                              eos_id=self.eos_id, no_repeat_ngram=no_repeat_ngram, own=own, nudgers=nudgers,
                              token_chars=self._token_chars() if any(r.floor for r in rows) else None,
                              mixer=self._mixer, clauses=self._clauses(clause_floor, word_pairs, greedy, book is not None),
                              book=book, named_once=self._named_once() if no_repeat_ngram > 1 else [],
                              adding=self._adding() if no_repeat_ngram > 1 else None)
        if book is not None and book.free_clauses:
            log.debug("%d clauses written off the clause book (their rows' books left them no token)",
                      book.free_clauses)
        for row, result in zip(rows, decoded):
            out[row.request][row.variant] = result
        return out


CLAUSE_MARKS = "，。！？；"  # what ends a clause for clause_floor (text is normalised to full-width marks)


def load_word_pairs(path: Path, manifest: dict) -> wordpairs.WordPairs | None:
    """The checkpoint's pairs of neighbouring words of its training copy, or None for one saved
    without them (any saved before 2026-12-04, night)."""
    if not manifest.get("word_pairs"):
        return None
    try:
        return wordpairs.WordPairs.load(path / wordpairs.FILE)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: {wordpairs.FILE} is missing or unreadable ({exc})") from None


def load_clause_book(path: Path, manifest: dict) -> clausebook.ClauseBook | None:
    """The checkpoint's clauses of its training copy, or None for one saved without them (any saved
    before 2026-12-05)."""
    if not manifest.get("clauses"):
        return None
    try:
        return clausebook.ClauseBook.load(path / clausebook.FILE)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path}: {clausebook.FILE} is missing or unreadable ({exc})") from None


def load_mixture(path: Path, manifest: dict) -> tuple[ngram.NgramSet, float] | None:
    """(the checkpoint's n-gram models, the network's share of the mixture), or None for a checkpoint
    trained without one (any before 2026.12, or --ngram-order 0)."""
    record = manifest.get("ngram")
    if not record:
        return None
    if not (path / ngram.FILE).is_file():
        raise CheckpointError(f"{path}: the manifest names an n-gram model and {ngram.FILE} is missing")
    weight = record.get("weight")
    if not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise CheckpointError(f"{path}: n-gram weight {weight!r} in the manifest, expected a share from 0 to 1")
    try:
        return ngram.NgramSet.load(path / ngram.FILE), float(weight)
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: {ngram.FILE} is unreadable ({exc})") from None
