"""The checks a generated copy must pass; the score and the choice of the k kept are worker.selection's.

A copy's flags say why it is not fit to publish; a flagged copy is still stored with its flags
when a product has fewer than k passing candidates (never dropped):

    ad_law:<term>               a China Advertising Law term (最好, 第一, 国家级 ...) from the lexicon
    contradiction:<key>:<word>  names a value the product's attributes exclude (copygen.attributes)
    unstated:<word>             a stated_only job's copy names what the product does not state
                                (copygen.attributes.unstated_words)
    spliced:<word>+<word>       two neighbouring words the training copy never joins, for a job
                                with word_pairs (trainer.wordpairs; an edge of a clause is "|")
    unfinished:<word>           a sentence opening with 不仅 that never goes on, a clause 将 + noun
                                (or + 淋漓尽致) or 让你的 + noun with no verb, one that shows off
                                nothing ("很好的展现出来"), 既 with no 又, 这款…制作而成 with no 由
                                (copygen.grammar)
    ungrammatical:<phrase>      a degree adverb on a bare noun or a thing ("更加的实用性", "非常的深蓝色"),
                                了 after 可以 or 能够, 更显得更加, a doubled noun ("身材的身形"), a merit
                                denied ("不会显得更加的修长"), 显得 on a bare thing, a modal twice
                                ("都可以穿搭都可以") (copygen.grammar)
    misplaced:<part>→<body>     a part of the garment said to flatter a part of the body it does not
                                reach ("袖口→脖颈": 袖口的设计，修饰脖颈线条), a pocket that eases
                                dressing or flatters the figure ("口袋→方便穿脱"), ease of dressing
                                from nothing that gives it ("无开合→穿脱"), a place for one's things
                                where no pocket is named ("无口袋→放置"), a colour that breathes
                                ("颜色→透气") (copygen.grammar)
    self_contradiction:<phrase> a cut called loose and fitted at once ("宽松的版型，修身") (copygen.grammar)
    near_duplicate              char 3-gram Jaccard >= 0.7 against a sibling (selection passes the
                                variants kept before it)
    repetition                  a char 4-gram occurring >= 3 times, or a clause said twice
    too_short / too_long        outside copygen.prompt.length_bounds for the job's length, from the
                                model's own length buckets (its manifest's edges)
    empty                       nothing but whitespace (no other check is run)
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from copygen.attributes import contradictions, unstated_found, unstated_words
from copygen.grammar import misplaced, self_contradictions, unfinished, ungrammatical
from copygen.prompt import length_bounds
from copygen.similarity import char_ngrams, jaccard
from copygen.textnorm import normalise

SIMILARITY_NGRAM = 3  # variants are compared by their character 3-grams ...
NEAR_DUPLICATE_JACCARD = 0.7  # ... and say the same thing at a Jaccard of 0.7
REPEATED_NGRAM = 4  # a 4-gram ...
REPEATED_TIMES = 3  # ... seen 3 times is a loop, not emphasis
MIN_CLAUSE_CHARS = 4  # shorter clauses ("好看") may legitimately recur in a list

_CLAUSE_SPLIT = re.compile(r"[，。！？；、,.!?;:：\s~～…]+")


class WordPairsLike(Protocol):
    def unseen_in(self, text: str) -> list[tuple[str, str]]: ...


class LexiconLike(Protocol):
    def find(self, text: str) -> list[str]: ...


class ProductLike(Protocol):
    attributes: Mapping[str, Sequence[str]]


def shingles(text: str) -> set[str]:
    """The character n-grams variants are compared by (of the normalised text)."""
    return char_ngrams(normalise(text), SIMILARITY_NGRAM)


def similarity(a: str, b: str) -> float:
    """How alike two variants are: char 3-gram Jaccard of the normalised texts, in [0, 1]."""
    return jaccard(shingles(a), shingles(b))


def is_repetitive(text: str) -> bool:
    """True when a char 4-gram occurs 3 or more times, or a clause of 4+ chars is said twice."""
    text = normalise(text)
    grams = Counter(
        text[i : i + REPEATED_NGRAM]
        for i in range(len(text) - REPEATED_NGRAM + 1)
        if text[i : i + REPEATED_NGRAM].strip()
    )
    if grams and max(grams.values()) >= REPEATED_TIMES:
        return True
    clauses = [c for c in _CLAUSE_SPLIT.split(text) if len(c) >= MIN_CLAUSE_CHARS]
    return len(clauses) != len(set(clauses))


def spliced(text: str, word_pairs: WordPairsLike) -> list[str]:
    """The pairs of neighbouring words of text that the training copy never joins, as "a+b"."""
    return [f"{a}+{b}" for a, b in word_pairs.unseen_in(text)]


def check(
    text: str,
    product: ProductLike,
    lexicon: LexiconLike,
    siblings: Iterable[str] = (),
    *,
    length: str = "medium",
    edges: Sequence[int] | None = None,
    stated_only: bool = False,
    word_pairs: WordPairsLike | None = None,
) -> list[str]:
    """The flags of one variant; siblings are the product's earlier variants. [] means it passed.
    stated_only: a word of a family the product does not state is flagged too (unstated:WORD).
    word_pairs: the checkpoint's trainer.wordpairs.WordPairs, for a job with word_pairs (spliced:A+B)."""
    clean = normalise(text)
    if not clean:
        return ["empty"]
    flags = [f"ad_law:{term}" for term in dict.fromkeys(lexicon.find(clean))]
    flags += [f"contradiction:{c}" for c in dict.fromkeys(contradictions(clean, product.attributes))]
    if stated_only:
        flags += [f"unstated:{w}" for w in unstated_in(clean, product)]
    if word_pairs is not None:
        flags += [f"spliced:{pair}" for pair in dict.fromkeys(spliced(clean, word_pairs))]
    flags += [f"unfinished:{w}" for w in dict.fromkeys(unfinished(clean))]
    flags += [f"ungrammatical:{w}" for w in dict.fromkeys(ungrammatical(clean))]
    flags += [f"misplaced:{w}" for w in dict.fromkeys(misplaced(clean))]
    flags += [f"self_contradiction:{w}" for w in dict.fromkeys(self_contradictions(clean))]
    if any(similarity(clean, other) >= NEAR_DUPLICATE_JACCARD for other in siblings):
        flags.append("near_duplicate")
    if is_repetitive(clean):
        flags.append("repetition")
    low, high = length_bounds(length, edges)
    if len(clean) < low:
        flags.append("too_short")
    elif len(clean) > high:
        flags.append("too_long")
    return flags


def unstated_in(text: str, product: ProductLike) -> list[str]:
    """The words of the product's unstated_for() in the text (copygen.attributes.unstated_found)."""
    return unstated_found(text, product.attributes or {}, words=unstated_for(product))


def unstated_for(product: ProductLike) -> tuple[str, ...]:
    """The product's unstated_words(), what its title and description say counted as stated:
    computed once per product, for its decoding request and all its candidates."""
    said = " ".join(getattr(product, name, "") or "" for name in ("title", "description"))
    attributes = tuple((k, tuple(v)) for k, v in sorted((product.attributes or {}).items()))
    return _unstated_words(attributes, said)


@functools.lru_cache(maxsize=4096)
def _unstated_words(attributes: tuple, said: str) -> tuple[str, ...]:
    return tuple(unstated_words({k: list(v) for k, v in attributes}, text=said))


def length_fit(n_chars: int, length: str, edges: Sequence[int] | None = None) -> float:
    """1 inside the length bounds, falling linearly to 0 at half the lower / double the upper bound."""
    low, high = length_bounds(length, edges)
    if n_chars < low:
        return max(0.0, (n_chars - low / 2) / (low / 2))
    if n_chars > high:
        return max(0.0, 1 - (n_chars - high) / high)
    return 1.0
