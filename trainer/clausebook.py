"""The clauses of the training copy, for decoding that writes only clauses people wrote.

Why: a model trained for minutes on a few thousand pairs writes clauses whose every few characters
occur in its training copy, yet which no person would write ("抽与白色的衣身", "简约的吊带来了格纹理").
Drawing such a clause again (clause_floor, word_pairs) helps where another draw is clean, and on a
slow machine, whose model is trained for fewer steps, it rarely is. Decoding from the book, every
clause a row writes is one of its training copy's clauses, character for character; the model
still chooses which clauses, and in what order, token by token (trainer.generation.known).

The book is the set of distinct clauses (text between ，。！？； and the like) of the training copy,
saved in the checkpoint (FILE: one clause per line, a tab, its types joined by commas), without those that would carry another
product's claims into any copy: a clause with a digit (a size, a year, a percentage: "100%纯棉"), with
a word of Latin letters that fewer than LATIN_COPIES copies use (a brand: "veromoda"; polo, v领 and
a字 stay), or with a word (jieba, two characters or more) that fewer than WORD_COPIES copies use:
what one product alone has (四合扣, 毛绒绒, a 淡绿 trim), which no vocabulary lists and no check
could read. A product's own banned phrases remove the clauses that contain one when it is
decoded, so what the product excludes or does not state is never written from the book either.

Each clause keeps the garment types (trainer.ngram.key_of: 上衣, 裙, 裤) of the products whose copy
wrote it, and a row writes only clauses of its own product's type (a product of no type, any): a
shirt is never given a skirt's "双层网纱裙摆", nor a sweater a 半身裙's clause.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from trainer.ngram import ALL, key_of
from trainer.wordpairs import clauses, words

FILE = "clauses.txt"
LATIN_COPIES = 20  # a Latin word fewer copies use than this is read as a brand name
WORD_COPIES = 5  # a word fewer copies use than this names what one product alone has
MIN_CHARS = 2  # shorter clauses (a lone 的) say nothing
MAX_CHARS = 40  # longer ones are run-ons that read as two clauses without a mark
_DIGIT = re.compile(r"\d")
_LATIN = re.compile(r"[A-Za-z]+")


class ClauseBook:
    """The distinct clauses of a training copy, in the order first written, each with the garment
    types of the products whose copy wrote it."""

    def __init__(self, clauses_types: Iterable[tuple[str, Iterable[str]]]):
        found: dict[str, set[str]] = {}
        for clause, types in clauses_types:
            found.setdefault(clause, set()).update(t for t in types if t != ALL)
        self.clauses = list(found)
        self.types = [frozenset(found[c]) for c in self.clauses]

    def __len__(self) -> int:
        return len(self.clauses)

    @classmethod
    def collect(cls, pairs: Iterable[tuple[str, str]]) -> ClauseBook:
        """The book of these (source, copy) pairs: their copy's clauses, less those that name another
        product's claims, each with the types of the sources that wrote it."""
        copies = [(key_of(source), clauses(copy)) for source, copy in pairs]
        latin_use = Counter(w.lower() for _, parts in copies for w in {w for c in parts for w in _LATIN.findall(c)})
        latin = {w for w, n in latin_use.items() if n >= LATIN_COPIES}
        split = [(kind, [(c, _words(c)) for c in parts]) for kind, parts in copies]
        word_use = Counter(w for _, parts in split for w in {w for _, ws in parts for w in ws})
        return cls((clause, (kind,)) for kind, parts in split for clause, ws in parts
                   if MIN_CHARS <= len(clause) <= MAX_CHARS and not _DIGIT.search(clause)
                   and all(w.lower() in latin for w in _LATIN.findall(clause))
                   and all(word_use[w] >= WORD_COPIES for w in ws))

    def save(self, path: Path) -> None:
        path.write_text("".join(f"{c}\t{','.join(sorted(t))}\n" for c, t in zip(self.clauses, self.types)),
                        encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ClauseBook:
        lines = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line]
        if any(len(parts) != 2 for parts in lines):
            raise ValueError("expected a clause, a tab and its types on every line")
        return cls((clause, types.split(",") if types else ()) for clause, types in lines)


def _words(clause: str) -> list[str]:
    """clause's jieba words of two characters or more, Latin words left to their own rule."""
    return [w for w in words(clause)[1:-1] if len(w) >= 2 and not _LATIN.fullmatch(w)]
