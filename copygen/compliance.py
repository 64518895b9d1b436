"""Advertising Law compliance: terms that 中华人民共和国广告法 Article 9 bans from an advert.

The terms are data, not code: ``copygen/data/ad_law_lexicon.json`` holds them by family (最-
superlatives, first/only, top grade, certainty, ...), with a version and an allow-list of lawful
phrases that contain a term (第一眼, 100%纯棉). Its ``how_to_read`` records the decisions taken.

How a text is checked:

1. Text, terms and allowed phrases are compared in one folded form: ``textnorm.normalise``
   (full-width ＮＯ．１ becomes NO.1) then case-folded, so Latin terms match in any case.
2. Allowed phrases are masked out of the text first, so 第一次 no longer holds 第一.
3. Terms are then found leftmost-longest without overlap: 全网第一 is one finding, not two.
   A term that starts or ends with a Latin letter or digit matches only at that word edge
   (TOP1 is not in TOP10).

``Lexicon.find`` is the post-generation check; ``banned_phrases_for_decoding`` gives the same
terms to the generator to block at decode time, which is coarser (it cannot see the allow-list's
context), so the post-check stays the one that decides.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from copygen.datafile import read_json
from copygen.textnorm import normalise

log = logging.getLogger(__name__)

LEXICON_FILE = "ad_law_lexicon.json"
_MASK = "\x00"  # stands in for each character of an allowed phrase; no term contains it


def fold(text: str) -> str:
    """The form in which texts and terms are compared: normalised, then case-folded."""
    return normalise(text).casefold()


def _ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def word_pattern(word: str) -> str:
    """A regex for `word` that, where it starts or ends with a Latin letter or digit, needs an edge."""
    head = "(?<![a-z0-9])" if _ascii_alnum(word[0]) else ""
    tail = "(?![a-z0-9])" if _ascii_alnum(word[-1]) else ""
    return head + re.escape(word) + tail


def longest_first(words: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching any of the words, leftmost-longest (alternatives longest first)."""
    ordered = sorted(set(words), key=lambda w: (-len(w), w))
    return re.compile("|".join(word_pattern(w) for w in ordered)) if ordered else None


@dataclass(frozen=True)
class Lexicon:
    """A versioned list of banned terms, grouped into families, with lawful phrases allowed."""

    version: str
    terms: tuple[str, ...]
    allow: tuple[str, ...] = ()
    families: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (family, its terms), in file order
    _canonical: dict[str, str] = field(init=False, repr=False, compare=False)
    _family: dict[str, str] = field(init=False, repr=False, compare=False)
    _terms_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _allow_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        canonical = {fold(t): t for t in self.terms}
        family = {fold(t): name for name, members in self.families for t in members}
        object.__setattr__(self, "_canonical", canonical)
        object.__setattr__(self, "_family", family)
        object.__setattr__(self, "_terms_re", longest_first(canonical))
        object.__setattr__(self, "_allow_re", longest_first(fold(p) for p in self.allow))

    def family_of(self, term: str) -> str | None:
        """The family a term belongs to (any case), or None when the term is in none."""
        return self._family.get(fold(term))

    def mask_allowed(self, text: str) -> str:
        """The folded text with every allowed phrase blanked out, character for character."""
        folded = fold(text)
        if self._allow_re is None:
            return folded
        return self._allow_re.sub(lambda m: _MASK * len(m.group(0)), folded)

    def find(self, text: str) -> list[str]:
        """Banned terms in the text, as the lexicon spells them, each once, in order of appearance."""
        if self._terms_re is None or not text:
            return []
        found: dict[str, None] = {}
        for match in self._terms_re.finditer(self.mask_allowed(text)):
            found.setdefault(self._canonical[match.group(0)], None)
        return list(found)


def _fail(source: str, problem: str) -> ValueError:
    return ValueError(f"{source}: {problem}")


def parse_lexicon(data: object, source: str = "lexicon") -> Lexicon:
    """A Lexicon from the JSON document; a ValueError names `source` and what is wrong."""
    if not isinstance(data, dict):
        raise _fail(source, "the top level must be a JSON object")
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        raise _fail(source, "field 'version' must be a non-empty string")
    families_raw = data.get("families")
    if not isinstance(families_raw, dict) or not families_raw:
        raise _fail(source, "field 'families' must be a non-empty object of family -> {\"terms\": [...]}")
    families: list[tuple[str, tuple[str, ...]]] = []
    owner: dict[str, str] = {}
    for name, family in families_raw.items():
        terms = family.get("terms") if isinstance(family, dict) else None
        if not isinstance(terms, list) or not terms:
            raise _fail(source, f"families.{name}.terms must be a non-empty list")
        for i, term in enumerate(terms):
            if not isinstance(term, str) or not term.strip() or term != term.strip():
                raise _fail(source, f"families.{name}.terms[{i}] must be a non-empty string without "
                                    f"surrounding spaces, not {term!r}")
            if _MASK in term:
                raise _fail(source, f"families.{name}.terms[{i}] contains a control character")
            key = fold(term)
            if key in owner:
                raise _fail(source, f"term {term!r} of family '{name}' is already in family '{owner[key]}'")
            owner[key] = name
        families.append((name, tuple(terms)))
    allow_raw = data.get("allow", {})
    if isinstance(allow_raw, dict):
        allow = list(allow_raw)
    elif isinstance(allow_raw, list):
        allow = allow_raw
    else:
        raise _fail(source, "field 'allow' must be an object of phrase -> reason, or a list of phrases")
    for i, phrase in enumerate(allow):
        if not isinstance(phrase, str) or not phrase.strip():
            raise _fail(source, f"allow[{i}] must be a non-empty string, not {phrase!r}")
    return Lexicon(
        version=version,
        terms=tuple(t for _, members in families for t in members),
        allow=tuple(allow),
        families=tuple(families),
    )


def load_lexicon(path: str | Path | None = None) -> Lexicon:
    """The lexicon at `path`, or the one shipped in the package (read once, then cached).

    A missing, unreadable or malformed file raises ValueError naming the file and the problem.
    """
    if path is None:
        return _default_lexicon()
    return parse_lexicon(*read_json(path, LEXICON_FILE))


@functools.lru_cache(maxsize=1)
def _default_lexicon() -> Lexicon:
    return parse_lexicon(*read_json(None, LEXICON_FILE))


def term_rate(texts: Iterable[str], lexicon: Lexicon | None = None) -> float:
    """Share of the texts holding at least one banned term (0.0 for no texts)."""
    lexicon = lexicon or load_lexicon()
    texts = list(texts)
    if not texts:
        return 0.0
    return sum(1 for text in texts if lexicon.find(text)) / len(texts)


def banned_phrases_for_decoding(lexicon: Lexicon | None = None) -> list[str]:
    """The terms to block while generating, in lexicon order.

    Token ids are case-sensitive, so a term with Latin letters comes in the spellings a model
    writes (as listed, UPPER, lower, Capitalised: NO.1, no.1, No.1). Decode-time blocking cannot
    see the allow-list, so it also blocks 第一 inside 第一眼; the post-check (Lexicon.find) is the
    one that decides whether a variant passes.
    """
    lexicon = lexicon or load_lexicon()
    phrases: dict[str, None] = {}
    for term in lexicon.terms:
        for spelling in (term, term.upper(), term.lower(), term.capitalize()):
            phrases.setdefault(spelling, None)
    return list(phrases)
