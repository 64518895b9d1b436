"""Attribute faithfulness: does a copy express the product's attributes, and does it contradict them?

Attributes are ``dict[str, list[str]]`` (AdvertiseGen's ``颜色#白色*颜色#黑色`` ->
``{"颜色": ["白色", "黑色"]}``). Two checks, both driven by ``copygen/data/attribute_vocab.json``
(its ``how_derived`` says how it was built from the AdvertiseGen training slice):

**Coverage** is the share of the product's distinct attribute values that the copy expresses. The
category key 类型 is left out: its values (上衣/裙/裤) are the garment word every copy uses, so they
would only inflate the score. A value counts as expressed when the copy contains

1. the value itself (case-folded, full-width folded: "V领" expresses ``v领``);
2. an alias written in the vocabulary (格子 -> 格纹, 蚕丝 -> 真丝);
3. its stem, when the value ends in a head word that only repeats what the garment already says
   (裙/裤/色/布) and the stem keeps two characters or more (直筒裤 -> 直筒, 卡其色 -> 卡其; 长裙 does
   not shrink to 长);
4. every jieba word of two characters or more, when the value splits into at least two such
   words (罗纹袖口 -> 罗纹 + 袖口, anywhere in the copy);
5. for a value of a closed key (colour, fibre, sleeve, collar), a full word of that key whose
   classes meet the value's (米白色 or 纯白 expresses 白色; 蓝色 expresses 深蓝色).

A bare one-character stem never counts: "白色" is not expressed by 白 alone, because 白 is just as
often 白皙 or 显白. Latin values match only at ASCII word edges (``h`` is not the h of "chic").

**Contradictions** are only claimed for closed keys, where values exclude each other, and only for
keys the product specifies: a copy that names a red colour for a product whose colours are all
known and none is red. Matching runs leftmost-longest over full words (粉红色 is one word, not
粉红 + 红色), so 白皙/显白/网红 never read as colours. A product value that names no class
(纯色, 深色, 蕾丝) imposes nothing; one that may be anything (混纺 blend) switches the key's check
off for that product, as does a value the vocabulary does not know.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from copygen.compliance import fold, longest_first, word_pattern
from copygen.datafile import read_json

log = logging.getLogger(__name__)

VOCAB_FILE = "attribute_vocab.json"
MIN_STEM_CHARS = 2  # a stem of one character (白, 长) says too little to stand for its value


@functools.lru_cache(maxsize=4096)
def _word_re(word: str) -> re.Pattern[str]:
    return re.compile(word_pattern(word))


def _contains(text: str, word: str) -> bool:
    return _word_re(word).search(text) is not None


@dataclass(frozen=True)
class ClosedKey:
    """A key whose values exclude each other; see the module docstring."""

    name: str
    keys: tuple[str, ...]
    values: Mapping[str, frozenset[str] | None]  # folded value -> classes; None = may be anything
    mentions: Mapping[str, frozenset[str]]  # folded word -> classes
    ignore: tuple[str, ...] = ()
    _scanner: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Leftmost-longest: 粉红色 is one word, not 粉红 + 红色.
        object.__setattr__(self, "_scanner", longest_first([*self.mentions, *self.ignore]))

    def scan(self, folded_text: str) -> list[str]:
        """Mention words in the text, in order, leftmost-longest; ignored phrases are skipped."""
        if self._scanner is None:
            return []
        return [m.group(0) for m in self._scanner.finditer(folded_text) if m.group(0) in self.mentions]

    def classes_of(self, folded_value: str) -> frozenset[str] | None:
        """A product value's classes; None when it may be anything or is not known."""
        if folded_value in self.values:
            return self.values[folded_value]
        found = self.scan(folded_value)  # e.g. a merchant's 象牙白色 contains the word 白色
        if not found:
            return None
        return frozenset().union(*(self.mentions[w] for w in found))


@dataclass(frozen=True)
class AttributeVocab:
    version: str
    skip_keys: tuple[str, ...]
    strip_heads: tuple[str, ...]
    aliases: Mapping[str, tuple[str, ...]]
    closed: tuple[ClosedKey, ...]

    def closed_key_of(self, key: str) -> ClosedKey | None:
        for group in self.closed:
            if key in group.keys:
                return group
        return None


def _fail(source: str, problem: str) -> ValueError:
    return ValueError(f"{source}: {problem}")


def _str_list(value: object, source: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(source, f"{where} must be a list of non-empty strings")
    return value


def _classes(value: object, source: str, where: str) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset(_str_list(value, source, where))


def parse_vocab(data: object, source: str = "attribute vocabulary") -> AttributeVocab:
    """An AttributeVocab from the JSON document; ValueError naming `source` and the field."""
    if not isinstance(data, dict):
        raise _fail(source, "the top level must be a JSON object")
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        raise _fail(source, "field 'version' must be a non-empty string")
    cov = data.get("coverage", {})
    if not isinstance(cov, dict):
        raise _fail(source, "field 'coverage' must be an object")
    raw_aliases = cov.get("aliases", {})
    if not isinstance(raw_aliases, dict):
        raise _fail(source, "field 'coverage.aliases' must be an object")
    aliases = {
        fold(v): tuple(fold(a) for a in _str_list(forms, source, f"coverage.aliases.{v}"))
        for v, forms in raw_aliases.items()
    }
    closed_raw = data.get("closed_keys", {})
    if not isinstance(closed_raw, dict):
        raise _fail(source, "field 'closed_keys' must be an object")
    closed = []
    for name, g in closed_raw.items():
        where = f"closed_keys.{name}"
        if not isinstance(g, dict) or not isinstance(g.get("values"), dict) or not isinstance(
            g.get("mentions"), dict
        ):
            raise _fail(source, f"{where} must be an object with 'values' and 'mentions' objects")
        values = {fold(v): _classes(c, source, f"{where}.values.{v}") for v, c in g["values"].items()}
        mentions = {}
        for w, c in g["mentions"].items():
            classes = _classes(c, source, f"{where}.mentions.{w}")
            if not classes:
                raise _fail(source, f"{where}.mentions.{w} must name at least one class")
            mentions[fold(w)] = classes
        closed.append(ClosedKey(
            name=name,
            keys=tuple(_str_list(g.get("keys", [name]), source, f"{where}.keys")),
            values=values,
            mentions=mentions,
            ignore=tuple(fold(p) for p in _str_list(g.get("ignore", []), source, f"{where}.ignore")),
        ))
    return AttributeVocab(
        version=version,
        skip_keys=tuple(_str_list(cov.get("skip_keys", []), source, "coverage.skip_keys")),
        strip_heads=tuple(_str_list(cov.get("strip_heads", []), source, "coverage.strip_heads")),
        aliases=aliases,
        closed=tuple(closed),
    )


def load_vocab(path: str | Path | None = None) -> AttributeVocab:
    """The vocabulary at `path`, or the one shipped with the package (read once, then cached)."""
    if path is None:
        return _default_vocab()
    return parse_vocab(*read_json(path, VOCAB_FILE))


@functools.lru_cache(maxsize=1)
def _default_vocab() -> AttributeVocab:
    return parse_vocab(*read_json(None, VOCAB_FILE))


def attribute_values(
    attributes: Mapping[str, Sequence[str]] | None, *, skip_keys: Iterable[str] = ()
) -> list[str]:
    """The product's distinct attribute values in order, blank ones dropped, skip_keys left out."""
    skip = set(skip_keys)
    seen: dict[str, None] = {}
    for key, values in (attributes or {}).items():
        if key in skip:
            continue
        for value in values:
            value = value.strip()
            if value:
                seen.setdefault(value, None)
    return list(seen)


@functools.lru_cache(maxsize=4096)
def _jieba_words(folded_value: str) -> tuple[str, ...]:
    import jieba  # heavy: loads its dictionary on first use, never at import

    jieba.setLogLevel(logging.WARNING)  # jieba sets its own logger to DEBUG at import

    return tuple(w for w in jieba.lcut(folded_value) if len(w.strip()) >= MIN_STEM_CHARS)


def _expressed(folded_text: str, value: str, key: str | None, vocab: AttributeVocab,
               mentioned: dict[str, list[str]]) -> bool:
    v = fold(value)
    forms = [v, *vocab.aliases.get(v, ())]
    for head in vocab.strip_heads:
        if v.endswith(head) and len(v) - len(head) >= MIN_STEM_CHARS:
            forms.append(v[: -len(head)])
    if any(_contains(folded_text, form) for form in forms):
        return True
    words = _jieba_words(v)
    if len(words) >= 2 and all(_contains(folded_text, w) for w in words):
        return True
    group = vocab.closed_key_of(key) if key is not None else None
    if group is not None:
        classes = group.classes_of(v)
        if classes:
            if group.name not in mentioned:
                mentioned[group.name] = group.scan(folded_text)
            return any(group.mentions[w] & classes for w in mentioned[group.name])
    return False


def missing_values(
    text: str, attributes: Mapping[str, Sequence[str]] | None, *, vocab: AttributeVocab | None = None
) -> list[str]:
    """The product's attribute values (类型 aside) that the copy does not express."""
    vocab = vocab or load_vocab()
    folded = fold(text)
    key_of: dict[str, str] = {}
    for key, values in (attributes or {}).items():
        if key not in vocab.skip_keys:
            for value in values:
                key_of.setdefault(value.strip(), key)
    mentioned: dict[str, list[str]] = {}
    return [
        value for value in attribute_values(attributes, skip_keys=vocab.skip_keys)
        if not _expressed(folded, value, key_of.get(value), vocab, mentioned)
    ]


def coverage(
    text: str, attributes: Mapping[str, Sequence[str]] | None, *, vocab: AttributeVocab | None = None
) -> float:
    """Share in [0, 1] of the product's distinct attribute values (类型 aside) the copy expresses.

    A product with no such values is fully covered (1.0): there is nothing the copy could miss.
    """
    vocab = vocab or load_vocab()
    values = attribute_values(attributes, skip_keys=vocab.skip_keys)
    if not values:
        return 1.0
    return 1.0 - len(missing_values(text, attributes, vocab=vocab)) / len(values)


def contradictions(
    text: str, attributes: Mapping[str, Sequence[str]] | None, *, vocab: AttributeVocab | None = None
) -> list[str]:
    """"key:word" for each word of a closed key in the copy that no value of the product allows.

    Only keys the product specifies are checked, and only when every value of the key is known;
    the key is reported as the product names it (衣袖长:短袖), the word as the vocabulary spells it.
    """
    vocab = vocab or load_vocab()
    folded = fold(text)
    found: list[str] = []
    for group in vocab.closed:
        used = [k for k in (attributes or {}) if k in group.keys and any(v.strip() for v in attributes[k])]
        if not used:
            continue
        allowed: set[str] = set()
        open_ended = False
        for key in used:
            for value in attributes[key]:
                if not value.strip():
                    continue
                classes = group.classes_of(fold(value))
                if classes is None:
                    open_ended = True
                else:
                    allowed |= classes
        if open_ended or not allowed:
            continue
        for word in group.scan(folded):
            item = f"{used[0]}:{word}"
            if not group.mentions[word] & allowed and item not in found:
                found.append(item)
    return found
