"""How alike two texts are: character n-gram sets and their Jaccard similarity.

One definition for the trainer (near-duplicate training texts) and the worker (near-duplicate
variants of a product), so both sides agree on what "the same copy" means.
"""

from __future__ import annotations


def char_ngrams(text: str, n: int) -> set[str]:
    """The set of character n-grams of text: the text itself when it is not longer than n, none for ""."""
    if len(text) <= n:
        return {text} if text else set()
    return {text[i : i + n] for i in range(len(text) - n + 1)}


def jaccard(a: set, b: set) -> float:
    """|a ∩ b| / |a ∪ b|, in [0, 1]; two empty sets are identical (1.0)."""
    return len(a & b) / len(a | b) if a or b else 1.0

