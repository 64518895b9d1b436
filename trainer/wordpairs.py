"""The pairs of neighbouring words in the training copy, to tell a clause spliced out of pieces
from one a person could have written.

Why: a small model writes clauses whose every few characters occur in its training copy, joined
where no two words ever meet: "修饰颈部线条纹" (线条 and 条纹 run together, jieba reads 颈部/线/条纹),
"平整体的设计感" (平整 into 整体), "袖口袋设计" (a sleeve's 袖口 into a 口袋). Its own likelihood does not
see them, nor do n-grams of characters. Words do: cut into jieba words (dictionary only, no HMM,
so a splice does not become a new word), such a clause has a pair of neighbouring words (its edges
count as words) that the training copy never has. The model recombines its training copy, so its
unseen pairs are mostly splices (22% of the demo model's rank-1 clauses have one, and 34 of the first
40 such clauses of one `make demo` job read as garbled); people say new things (62% of the
validation references' clauses have one). So this checks the model's copy, never people's.

A set of 64-bit hashes of the pairs, sorted, saved in the checkpoint (FILE). jieba is imported
inside the functions (it loads its dictionary on first use).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import re
from collections.abc import Iterable
from pathlib import Path

FILE = "word_pairs.npy"
EDGE = "|"  # the word before a clause's first word and after its last (never a jieba word: | ends clauses here)
_CLAUSES = re.compile(r"[^，。！？；,.!?;|\s]+")


_SENTENCE_ENDS = frozenset("。！？.!?")


def clauses(text: str) -> list[str]:
    """text's clauses, without the marks that end them."""
    return _CLAUSES.findall(text)


def ended_clauses(text: str) -> list[tuple[str, bool]]:
    """text's clauses, each with whether it ends a sentence: a 。！or ？ follows it, or it is the last."""
    found = list(_CLAUSES.finditer(text))
    return [(m.group(), not set(text[m.end():after.start()]).isdisjoint(_SENTENCE_ENDS))
            for m, after in itertools.pairwise(found)] + [(m.group(), True) for m in found[-1:]]


def words(clause: str) -> list[str]:
    """clause's jieba words (dictionary only), between two EDGE marks."""
    return [EDGE, *(w for w in _jieba().lcut(clause, HMM=False) if w.strip()), EDGE]


@functools.cache
def _jieba():
    import jieba  # heavy: loads its dictionary on first use, never at import

    jieba.setLogLevel(logging.WARNING)  # jieba sets its own logger to DEBUG at import
    return jieba


def _hash(first: str, second: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{first}\t{second}".encode(), digest_size=8).digest(), "little")


class WordPairs:
    """The pairs of neighbouring words the training copy has."""

    def __init__(self, hashes):
        import numpy as np  # lazy: nothing heavy at import

        self.hashes = np.unique(np.asarray(hashes, dtype=np.uint64))

    def __len__(self) -> int:
        return len(self.hashes)

    @classmethod
    def count(cls, texts: Iterable[str]) -> WordPairs:
        found = set()
        for text in texts:
            for clause in clauses(text):
                w = words(clause)
                found.update(_hash(a, b) for a, b in itertools.pairwise(w))
        return cls(list(found))  # sorted there

    def unseen(self, clause: str) -> list[tuple[str, str]]:
        """The pairs of neighbouring words of clause (one clause, no marks) the training copy never has."""
        import numpy as np  # lazy: nothing heavy at import

        w = words(clause)
        pairs = list(itertools.pairwise(w))
        wanted = np.array([_hash(a, b) for a, b in pairs], dtype=np.uint64)
        at = np.minimum(np.searchsorted(self.hashes, wanted), len(self.hashes) - 1)
        known = self.hashes[at] == wanted if len(self.hashes) else np.zeros(len(pairs), dtype=bool)
        return [pair for pair, seen in zip(pairs, known) if not seen]

    def unseen_in(self, text: str) -> list[tuple[str, str]]:
        """unseen() over every clause of text (marks and all), in order."""
        return [pair for clause in clauses(text) for pair in self.unseen(clause)]

    def save(self, path: Path) -> None:
        import numpy as np  # lazy: nothing heavy at import

        with open(path, "wb") as f:
            np.save(f, self.hashes, allow_pickle=False)

    @classmethod
    def load(cls, path: Path) -> WordPairs:
        import numpy as np  # lazy: nothing heavy at import

        hashes = np.load(path, allow_pickle=False)
        if hashes.dtype != np.uint64 or hashes.ndim != 1:
            raise ValueError(f"expected a flat array of uint64 hashes, found {hashes.dtype} of shape {hashes.shape}")
        return cls(hashes)
