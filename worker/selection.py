"""Choosing a product's k variants from its m candidates: check each, score each, keep the best.

The engine writes m = k x oversample candidates per product. Each is checked (worker.filters:
Advertising Law, contradictions, repetition, length) and scored; the k kept are the best passing
ones that are not near-duplicates of one already kept, then, if fewer than k pass, the best
flagged ones (stored with their flags, never dropped). A candidate that only repeats a kept one
is taken last, flagged near_duplicate.

The score (higher is better), each term in [0, 1], weights in WEIGHTS with the reason for each:

    coverage     share of the product's attribute values the copy expresses
    fluency      the model's own mean token probability, exp(mean log p): a garbled candidate is
                 one the model itself found unlikely
    agreement    mean 3-gram Jaccard similarity to the product's other candidates (a minimum
                 Bayes risk term): what most samples say is the safest reading of the attributes
    length fit   1 inside the length bounds, falling off outside
    distinctness 1 minus the largest similarity to the variants ranked above it
    varied       1 minus the content words and effects said again per character (restated_words,
                 restated_effects), reaching 0 at 10 per 100 characters: the demo model says 舒适,
                 显瘦 or 修饰 again 2.5 times as often as the human references do, and blind readers
                 count each repeat against it

    score = sum(weight x term) - FLAG_PENALTY x flags, so a flagged candidate is below 0 and a
    passing one at least 0; a flag of a wrong or unlawful claim (FACT_FLAGS) costs FACT_PENALTY.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from copygen.attributes import coverage
from copygen.compliance import Lexicon
from copygen.score_weights import read_weights
from copygen.similarity import jaccard
from copygen.textnorm import content_words, normalise
from worker import filters

# Chosen on the AdvertiseGen validation split with the small model (see the README's Quality
# section): coverage first (a merchant's first check is that the copy talks about the product),
# then the model's fluency and the samples' agreement, which both stand in for "reads well and
# says nothing odd"; length and distinctness break ties. Variedness came later (2026-12-05) at
# half the weight of coverage: on the demo model's first 200 validation products it took the
# rank-1 copy's repeated words from 5.3 to 2.8 per 100 characters, and blind readers found 94
# broken clauses against 146 in 40 changed copies (better 24 times against 11), for 0.3 R-L and
# 0.8 BLEU-4 (a repeated phrase is often one the reference has too). The old weights, scaled by
# 1/1.2 to make room, choose as before wherever the copies are equally varied.
WEIGHTS = {"coverage": 0.33, "fluency": 0.17, "agreement": 0.17, "length": 0.08, "distinct": 0.08, "varied": 0.17}
RESTATED_PER_100_CHARS_AT_ZERO = 10
FLAG_PENALTY = 1.5  # a flag costs more than every positive term together (1.0): flagged < 0 <= passed
# A claim that is false or unlawful is worse than copy that reads badly: where no candidate passes,
# one with a broken sentence is kept before one with a wrong fact, which costs as much as ten flags
# of the other kinds (flagged spliced or unfinished, candidates with one contradiction were kept
# instead, for 2 of the demo model's first 200 validation products).
FACT_FLAGS = ("ad_law", "contradiction", "unstated")
FACT_PENALTY = 10 * FLAG_PENALTY


@dataclass(eq=False)  # two candidates with the same text are still two candidates
class Candidate:
    """One generated copy of a product, with what the checks and the score made of it."""

    text: str
    logprob: float = 0.0  # the model's mean log-probability per generated token
    flags: list[str] = field(default_factory=list)
    terms: dict[str, float] = field(default_factory=dict)
    score: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.flags


def weigh(terms: Mapping[str, float], flags: Sequence[str]) -> float:
    penalty = sum(FACT_PENALTY if flag.split(":", 1)[0] in FACT_FLAGS else FLAG_PENALTY for flag in flags)
    return round(sum(WEIGHTS[name] * terms.get(name, 0.0) for name in WEIGHTS) - penalty, 4)


def assess(texts: Sequence[str], logprobs: Sequence[float], product: filters.ProductLike, lexicon: Lexicon, *,
           length: str, edges: Sequence[int] | None, stated_only: bool = False,
           word_pairs: filters.WordPairsLike | None = None) -> list[Candidate]:
    """Each candidate checked and given its own terms (all but distinctness, which needs the choice).
    word_pairs: the checkpoint's, for a job with word_pairs (a splice is flagged)."""
    texts = [normalise(t) for t in texts]
    grams = [filters.shingles(t) for t in texts]  # once per text: agreement compares every pair
    attributes = product.attributes
    assessed = []
    for i, (text, logprob) in enumerate(zip(texts, logprobs)):
        others = [g for j, g in enumerate(grams) if j != i]
        terms = {
            "coverage": coverage(text, attributes) if text else 0.0,
            "fluency": math.exp(logprob) if text else 0.0,
            "agreement": sum(jaccard(grams[i], g) for g in others) / len(others) if others else 0.0,
            "length": filters.length_fit(len(text), length, edges) if text else 0.0,
            "varied": variedness(text) if text else 0.0,
        }
        flags = filters.check(text, product, lexicon, (), length=length, edges=edges, stated_only=stated_only,
                              word_pairs=word_pairs)
        assessed.append(Candidate(text, logprob, flags, terms))
    return assessed


def restated_words(text: str) -> int:
    """How many times the copy says a content word again: jieba words of two Chinese characters or
    more, other than copygen.textnorm.STRUCTURAL_WORDS, each counted once per repeat ("穿着舒适…穿着更加舒适": 2)."""
    words = Counter(content_words(text))
    return sum(n - 1 for n in words.values())


# An effect said in other words is said again too: longer legs and a taller figure ("拉长腿部比例，打造出大长腿的
# 视觉感…轻松打造长腿"). 3 or more mentions in 23% of the trousers' rank-1 copies of eight make demo jobs, 0.5%
# of the 1,075 trousers' references (2026-12-06); jieba's words differ, so restated_words misses most. A
# longer figure too: "还有着拉长身形的效果，在视觉上拉伸身材比例" in make demo's trench coat (2026-12-06, night).
_LENGTHENS = re.compile("大长腿|长腿|腿长|腿部修长|双腿修长|修长的双腿|腿部更显修长|双腿更加的修长|腿部比例|双腿比例|美腿|拉长腿"
                        "|显高|高挑|身高比例|身材比例|身高曲线|拉长身形|拉伸身形|拉长身材|拉长整体")


# 设计 is what every feature is ("破洞设计"), so restated_words leaves it out (copygen.textnorm.STRUCTURAL_WORDS); but
# short copy says it twice as densely as people (2.37 per 100 characters in the rank-1 copies of eight make demo
# jobs, 1.11 in the 5,000 references), and both readers of make demo's final job (2026-12-06, evening) counted
# "破洞设计，时尚小脚设计" and 设计 three times in 50 characters as a repeat.
DESIGN = "设计"


def restated_effects(text: str) -> int:
    """How many times the copy says again that it lengthens the figure (_LENGTHENS), in any of its words."""
    return max(0, len(_LENGTHENS.findall(text)) - 1)


def restated_designs(text: str) -> int:
    """How many times the copy says 设计 (design) again after the first."""
    return max(0, text.count(DESIGN) - 1)


def variedness(text: str) -> float:
    """1 for a copy that says nothing again, falling to 0 at RESTATED_PER_100_CHARS_AT_ZERO."""
    per_100 = (restated_words(text) + restated_effects(text) + restated_designs(text)) * 100 / max(len(text), 1)
    return max(0.0, 1 - per_100 / RESTATED_PER_100_CHARS_AT_ZERO)


def choose(candidates: Sequence[Candidate], k: int) -> list[Candidate]:
    """The k to keep, best first: passing before flagged, by score, no two near-duplicates kept
    while a distinct passing candidate is left.

    Taken one at a time, the best by score as it would be kept: a candidate that only repeats one
    already kept counts (and comes back) flagged near_duplicate, so a passing repeat and a flagged
    candidate compete by their scores, each with its own flags.

    The candidates themselves are left as they are (a pool is chosen from again when it grows):
    the kept ones are copies carrying their final flags and score.
    """
    kept: list[Candidate] = []
    left = list(candidates)
    repeats: set[int] = set()  # the left candidates (by id) too close to one already kept

    def flags_if_kept(c: Candidate) -> list[str]:
        return [*c.flags, "near_duplicate"] if id(c) in repeats else list(c.flags)

    while left and len(kept) < k:
        best = max(left, key=lambda c: weigh({**c.terms, "distinct": 1.0}, flags_if_kept(c)))  # first of equals
        left.remove(best)
        kept.append(replace(best, flags=flags_if_kept(best)))
        repeats.update(id(c) for c in left if filters.similarity(c.text, best.text) >= filters.NEAR_DUPLICATE_JACCARD)
    # Distinctness against the variants ranked above it (what `copygen tune-score` measures again
    # from the store), so the ranking and the scores are settled together: score in this order,
    # rank by score, again until the order holds (one or two rounds; k rounds at most).
    for _ in range(len(kept)):
        for position, c in enumerate(kept):
            closest = max((filters.similarity(c.text, other.text) for other in kept[:position]), default=0.0)
            c.score = weigh({**c.terms, "distinct": 1.0 - closest}, c.flags)
        ranked = sorted(kept, key=lambda c: (not c.passed, -c.score))
        if ranked == kept:
            break
        kept = ranked
    return kept


DEFAULT_WEIGHTS = dict(WEIGHTS)  # WEIGHTS as written above, before any use_weights
ADDED_LATER = ("varied",)  # terms a weights file fitted before them may lack (read as 0)


def use_weights(path: str | None) -> dict[str, float]:
    """Put the weights `copygen tune-score` wrote to a file (COPYGEN_SCORE_WEIGHTS) in force in this
    process, or DEFAULT_WEIGHTS for None; return them. WEIGHTS is updated in place, so weigh() and
    choose() use them as they are. ValueError names the file and what is wrong with it."""
    weights = read_weights(path, tuple(DEFAULT_WEIGHTS), added_later=ADDED_LATER) if path else dict(DEFAULT_WEIGHTS)
    WEIGHTS.update(weights)
    return weights
