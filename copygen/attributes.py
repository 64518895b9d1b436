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
5. for a value of a closed family whose classes name what a word says (colour, fibre, sleeve,
   collar: ``expresses`` in the vocabulary), a full word of that family whose classes meet the
   value's (米白色 or 纯白 expresses 白色; 蓝色 expresses 深蓝色).

A bare one-character stem never counts: "白色" is not expressed by 白 alone, because 白 is just as
often 白皙 or 显白. Latin values match only at ASCII word edges (``h`` is not the h of "chic").

**Contradictions** are only claimed for closed families, whose values exclude each other (a colour,
a fibre, a sleeve or trouser length, a collar, a kind of top, a leg shape, a waist height...; the
vocabulary lists them), and only for families the product specifies: a copy that names a red
colour for a product whose colours are all known and none is red, a 牛仔裤 for trousers made of
亚麻, a 卫衣 for a 西装. Each value has classes and each mention word has classes; a word is a
contradiction when its classes meet none of the product's. Classes may be one-sided: a 哈伦裤 allows
the 小脚 words, a 小脚 does not allow 哈伦. Matching runs leftmost-longest over full words (粉红色 is
one word, not 粉红 + 红色), so 白皙/显白/网红 never read as colours. A product value that names no
class (纯色, 深色, 蕾丝) imposes nothing; one that may be anything (混纺 blend) switches the family's
check off for that product, as does a value the vocabulary does not know. A family may also be
limited to some products (``only_for``: the denim family checks trousers only, because tops and
skirts are worn with 牛仔裤), or to the copy's subject (``subject``: a skirt's copy may name the
牛仔裤 it is worn with, but its first garment word, at the start or after 这款/这条..., is no 牛仔裤).

**Excluded words** are the same judgement turned around, for blocking at decode time: the mention
words of the values a product's attributes exclude, and a family's compounds (黑白, 蓝白) that
name any class the product lacks. They skip one-character words and any word
inside a word naming one of the product's own values (长裙 stays open to a 中长裙), since blocking
works on token sequences. A copy containing one of them is flagged, unless the word only stands
inside a phrase its family ignores (绿色环保, the 西装 of 西装领). A family's ``blocked_with`` adds
words blocked for a product with a given value and never flagged (修身 for a 宽松 cut: people write
it loosely, the model everywhere). So are the words of a register, feel or fit that the references
of a listed style, fabric or kind of garment avoid (the vocabulary's ``avoided``: 淑女 for a 街头
product, 阳光 for a 性感 one, 飘逸 for denim), chosen from the data by scripts/derive_avoided_words.py.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from copygen.compliance import fold, longest_first, word_pattern
from copygen.datafile import read_json
from copygen.textnorm import segment

log = logging.getLogger(__name__)

VOCAB_FILE = "attribute_vocab.json"
MIN_STEM_CHARS = 2  # a stem of one character (白, 长) says too little to stand for its value
MIN_BLOCK_CHARS = 2  # a blocked character (白, 裤) would also block every word that contains it
HUE_FAMILY = "颜色"  # the family of hues: a product listing none is given none, whatever its print allows


@functools.lru_cache(maxsize=4096)
def _word_re(word: str) -> re.Pattern[str]:
    return re.compile(word_pattern(word))


def _contains(text: str, word: str) -> bool:
    return _word_re(word).search(text) is not None


@dataclass(frozen=True)
class ClosedKey:
    """A family of values that exclude each other; see the module docstring."""

    name: str
    keys: tuple[str, ...]
    values: Mapping[str, frozenset[str] | None]  # folded value -> classes; None = may be anything
    mentions: Mapping[str, frozenset[str]]  # folded word -> classes
    ignore: tuple[str, ...] = ()
    only_for: Mapping[str, frozenset[str]] = field(default_factory=dict)  # key -> folded values
    expresses: bool = True  # does a mention whose classes meet a value's express it (coverage)?
    # Non-empty: only the copy's first mention is judged, and only where it is the copy's subject,
    # at its start or right after one of these words (这款, 这条...); see flagged(). Each word the
    # family denies is blocked while decoding after each of these but 一款, 一条, 一件 (这款牛仔裤 for
    # a skirt: make demo's model wrote it after naming the skirt 牛仔裙; 搭配一条阔腿裤 is fine),
    # never flagged: the 14 of 5,000 references that say one are of products labelled with the
    # wrong type (这款牛仔裤 for a 裙).
    subject: tuple[str, ...] = ()
    # Words blocked while decoding unless the product allows every one of their classes
    # (excluded_words), never flagged as contradictions: words naming several classes at once (黑白:
    # human copy calls a 白色 shirt 黑白), a ground colour (黑底), a part of a kind of garment (裤脚);
    # a stated_only job treats them as the family's other words (unstated_words).
    compounds: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Its words name the garment itself (类型, 衣样式...): copy names its garment whether or not the
    # product states this family, so unstated_words() leaves it alone.
    names_garment: bool = False
    # A product value -> words blocked while decoding for a product with it, never flagged: what
    # people write loosely and a small model writes everywhere (宽松 -> 修身: "宽松的版型，修身显瘦").
    blocked_with: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    _scanner: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Leftmost-longest: 粉红色 is one word, not 粉红 + 红色.
        object.__setattr__(self, "_scanner", longest_first([*self.mentions, *self.ignore]))

    def _matches(self, folded_text: str) -> Iterator[re.Match[str]]:
        """The mention words' matches in the text, in order, leftmost-longest; ignored phrases skipped."""
        if self._scanner is None:
            return iter(())
        return (m for m in self._scanner.finditer(folded_text) if m.group(0) in self.mentions)

    def scan(self, folded_text: str) -> list[str]:
        """Mention words in the text, in order, leftmost-longest; ignored phrases are skipped."""
        return [m.group(0) for m in self._matches(folded_text)]

    def flagged(self, folded_text: str, allowed: frozenset[str]) -> list[str]:
        """The mention words in the text whose classes meet none of `allowed`, in order; for a
        subject family, the first mention alone, if it stands where the copy names its subject."""
        if not self.subject:
            return [w for w in self.scan(folded_text) if not self.mentions[w] & allowed]
        first = next(self._matches(folded_text), None)
        if first is None or self.mentions[first.group(0)] & allowed:
            return []
        before = folded_text[: first.start()]
        return [first.group(0)] if not before or before.endswith(self.subject) else []

    def classes_of(self, folded_value: str) -> frozenset[str] | None:
        """A product value's classes; None when it may be anything or is not known."""
        if folded_value in self.values:
            return self.values[folded_value]
        found = self.scan(folded_value)  # e.g. a merchant's 象牙白色 contains the word 白色
        if not found:
            return None
        return frozenset().union(*(self.mentions[w] for w in found))

    def covers(self, attributes: Mapping[str, Sequence[str]]) -> bool:
        """Whether the product is one the family is meant for (`only_for`; every product without it)."""
        return all(any(fold(v) in wanted for v in attributes.get(key, ())) for key, wanted in self.only_for.items())

    def judge(self, attributes: Mapping[str, Sequence[str]] | None) -> tuple[str, frozenset[str]] | None:
        """(the product's first key of this family, the classes its values allow), or None when
        the family is not checked for this product: it names none of the family's keys, falls
        outside `only_for`, or has a value that may be anything or is unknown."""
        attributes = attributes or {}
        if not self.covers(attributes):
            return None
        used = [k for k in attributes if k in self.keys and any(v.strip() for v in attributes[k])]
        allowed: set[str] = set()
        for key in used:
            for value in attributes[key]:
                if not value.strip():
                    continue
                classes = self.classes_of(fold(value))
                if classes is None:
                    return None
                allowed |= classes
        if not allowed:  # no key used, or only values that name no class (纯色, 蕾丝)
            return None
        return used[0], frozenset(allowed)


@dataclass(frozen=True)
class AttributeVocab:
    version: str
    skip_keys: tuple[str, ...]
    strip_heads: tuple[str, ...]
    aliases: Mapping[str, tuple[str, ...]]
    closed: tuple[ClosedKey, ...]
    # Words of features a product either has or not (口袋, 拼接, 荷叶边, 开叉...): the observed values
    # of the vocabulary's `details` keys; unstated_words() blocks those a product does not list.
    details: tuple[str, ...] = ()
    # (the keys that state a part of the garment, the words that name it or the body it frames, the
    # marks of a value that states it under any key, the words of the body alone): a product with no
    # value under any of the keys, and none holding a mark, is given none of the words by a
    # stated_only job (unstated_words): a pinafore that states no sleeve has no 袖口, a jacket that
    # states no collar no 领口, a dress with no 收腰 or 高腰 no 腰线.
    parts: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = ()
    # The keys whose values set a register (风格, 材质, 衣样式...), and per value the words of a register,
    # feel or fit its references avoid (a 街头 product's copy says no 淑女, a denim one no 飘逸): blocked
    # while decoding (excluded_words), never flagged, since people write them now and then
    # (scripts/derive_avoided_words.py).
    avoided_keys: tuple[str, ...] = ()
    avoided: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

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


def _only_for(value: object, source: str, where: str) -> dict[str, frozenset[str]]:
    if not isinstance(value, dict):
        raise _fail(source, f"{where} must be an object of key -> list of values")
    return {k: frozenset(fold(v) for v in _str_list(vs, source, f"{where}.{k}")) for k, vs in value.items()}


def _compounds(value: object, source: str, where: str) -> dict[str, frozenset[str]]:
    if not isinstance(value, dict):
        raise _fail(source, f"{where} must be an object of word -> list of classes")
    return {fold(w): frozenset(_str_list(c, source, f"{where}.{w}")) for w, c in value.items()}


def _blocked_with(value: object, source: str, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise _fail(source, f"{where} must be an object of value -> list of words")
    return {fold(v): tuple(fold(w) for w in _str_list(ws, source, f"{where}.{v}")) for v, ws in value.items()}


def _details(value: object, observed: object, source: str) -> tuple[str, ...]:
    """The detail words: every value observed under the `details` keys, but its `skip` words, and
    its `words` (a feature in words no value spells: 系带 for 绑带)."""
    if not isinstance(value, dict) or not isinstance(observed, dict):
        raise _fail(source, "fields 'details' and 'observed' must be objects")
    keys = _str_list(value.get("keys", []), source, "details.keys")
    skip = set(_str_list(value.get("skip", []), source, "details.skip"))
    words = _str_list(value.get("words", []), source, "details.words")  # features no observed value spells
    missing = [k for k in keys if not isinstance(observed.get(k), dict)]
    if missing:
        raise _fail(source, f"details.keys: {', '.join(missing)} not observed")
    return tuple(sorted(({fold(v) for k in keys for v in observed[k]} - {fold(w) for w in skip}) | set(map(fold, words))))


def _parts(value: object, source: str) -> tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...]:
    if not isinstance(value, dict):
        raise _fail(source, "field 'parts' must be an object")
    parts = []
    for name, part in value.items():
        if name == "note":
            continue
        if not isinstance(part, dict):
            raise _fail(source, f"parts.{name} must be an object with 'keys' or 'values', and 'words'")
        keys = _str_list(part.get("keys", []), source, f"parts.{name}.keys")
        words = _str_list(part.get("words", []), source, f"parts.{name}.words")
        marks = _str_list(part.get("values", []), source, f"parts.{name}.values")
        body = _str_list(part.get("body", []), source, f"parts.{name}.body")
        if not (keys or marks) or not (words or body):
            raise _fail(source, f"parts.{name} must name at least one key or value, and one word")
        parts.append((tuple(keys), tuple(map(fold, words + body)), tuple(map(fold, marks)), tuple(map(fold, body))))
    return tuple(parts)


def _avoided(value: object, source: str) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(the keys read, value -> the words blocked for it) of the `avoided` field."""
    if not isinstance(value, dict):
        raise _fail(source, "field 'avoided' must be an object with 'keys' and 'blocked'")
    keys = tuple(_str_list(value.get("keys", []), source, "avoided.keys"))
    return keys, _blocked_with(value.get("blocked", {}), source, "avoided.blocked")


def _flag(value: object, source: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(source, f"{where} must be true or false")
    return value


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
    avoided_keys, avoided = _avoided(data.get("avoided", {}), source)
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
        compounds = _compounds(g.get("compounds", {}), source, f"{where}.compounds")
        closed.append(ClosedKey(
            name=name,
            keys=tuple(_str_list(g.get("keys", [name]), source, f"{where}.keys")),
            values=values,
            mentions=mentions,
            ignore=tuple(fold(p) for p in _str_list(g.get("ignore", []), source, f"{where}.ignore")),
            only_for=_only_for(g.get("only_for", {}), source, f"{where}.only_for"),
            expresses=_flag(g.get("expresses", True), source, f"{where}.expresses"),
            subject=tuple(fold(w) for w in _str_list(g.get("subject", []), source, f"{where}.subject")),
            compounds=compounds,
            names_garment=_flag(g.get("names_garment", False), source, f"{where}.names_garment"),
            blocked_with=_blocked_with(g.get("blocked_with", {}), source, f"{where}.blocked_with"),
        ))
    return AttributeVocab(
        version=version,
        skip_keys=tuple(_str_list(cov.get("skip_keys", []), source, "coverage.skip_keys")),
        strip_heads=tuple(_str_list(cov.get("strip_heads", []), source, "coverage.strip_heads")),
        aliases=aliases,
        closed=tuple(closed),
        details=_details(data.get("details", {}), data.get("observed", {}), source),
        parts=_parts(data.get("parts", {}), source),
        avoided_keys=avoided_keys,
        avoided=avoided,
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
    return tuple(w for w in segment(folded_value) if len(w.strip()) >= MIN_STEM_CHARS)


def _forms(folded_value: str, vocab: AttributeVocab) -> list[str]:
    """The words that express a value by themselves: the value, its aliases, its stem (rules 1-3)."""
    forms = [folded_value, *vocab.aliases.get(folded_value, ())]
    for head in vocab.strip_heads:
        if folded_value.endswith(head) and len(folded_value) - len(head) >= MIN_STEM_CHARS:
            forms.append(folded_value[: -len(head)])
    return forms


def names_value(text: str, value: str, vocab: AttributeVocab | None = None) -> bool:
    """Whether the text names the value itself: the value, an alias, its stem or all its words
    (rules 1-4), not merely a word of its family whose classes meet it (a 纯棉 shirt names no 牛仔布)."""
    return _names(fold(text), fold(value), vocab or load_vocab())


def naming_forms(value: str, vocab: AttributeVocab | None = None) -> list[tuple[str, ...]]:
    """The ways a text names the value (names_value), folded: each a tuple of words that must all
    occur, the value, an alias or its stem alone (rules 1-3), or all its jieba words (rule 4)."""
    return _naming_forms(fold(value), vocab or load_vocab())


def _naming_forms(folded_value: str, vocab: AttributeVocab) -> list[tuple[str, ...]]:
    forms = [(form,) for form in _forms(folded_value, vocab)]
    words = _jieba_words(folded_value)
    return forms + [words] if len(words) >= 2 else forms


def _names(folded_text: str, v: str, vocab: AttributeVocab) -> bool:
    return any(all(_contains(folded_text, w) for w in words) for words in _naming_forms(v, vocab))


def _expressed(folded_text: str, value: str, key: str | None, vocab: AttributeVocab,
               mentioned: dict[str, list[str]]) -> bool:
    v = fold(value)
    if _names(folded_text, v, vocab):
        return True
    # Only families whose classes say what a word names; the others' classes say what a value allows.
    group = next((g for g in vocab.closed if key in g.keys and g.expresses), None)
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


def _checked(
    attributes: Mapping[str, Sequence[str]] | None, vocab: AttributeVocab
) -> list[tuple[ClosedKey, str, frozenset[str]]]:
    """(family, the product's key for it, the classes it allows) for each family checked."""
    checked = []
    for group in vocab.closed:
        judged = group.judge(attributes)
        if judged is not None:
            checked.append((group, *judged))
    return checked


def contradictions(
    text: str, attributes: Mapping[str, Sequence[str]] | None, *, vocab: AttributeVocab | None = None
) -> list[str]:
    """"key:word" for each word of a closed family in the copy that no value of the product allows.

    Only families the product specifies are checked, and only when every value it gives them is
    known; the key is reported as the product names it (衣袖长:短袖), the word as the vocabulary
    spells it. Every word of excluded_words() found in the copy is flagged, unless it only stands
    inside a phrase its family ignores (绿色环保, the 西装 of 西装领).
    """
    vocab = vocab or load_vocab()
    folded = fold(text)
    found: dict[str, None] = {}
    for group, key, allowed in _checked(attributes, vocab):
        for word in group.flagged(folded, allowed):
            found.setdefault(f"{key}:{word}", None)
    return list(found)


def excluded_words(
    attributes: Mapping[str, Sequence[str]] | None, vocab: AttributeVocab | None = None
) -> list[str]:
    """The mention words naming values the product's own attributes exclude, longest first.

    Meant to be blocked while generating, so they are kept specific: only families the product
    specifies (contradictions() flags each of these words but a compound, see ClosedKey), never a
    word of one character, and never a word inside a word that names one of the product's own
    values (its values, their aliases, the mentions its families allow), because blocking works
    on token sequences: a 中长裙 product keeps 长裙, a product with a 西装领 keeps 西装. A subject
    family's words are wrong only as the copy's subject: they are given after each subject word
    (这款牛仔裤, 这条短裤 for a skirt; see ClosedKey.subject).
    """
    vocab = vocab or load_vocab()
    own, excluded = _judged_words(attributes, vocab)
    return _blockable(excluded, own)


def unstated_words(
    attributes: Mapping[str, Sequence[str]] | None, vocab: AttributeVocab | None = None, *, text: str = ""
) -> list[str]:
    """The words of what the product says nothing about, longest first.

    Meant to be blocked while generating copy that states only what the product states (a job's
    stated_only): a product with no 材质 is given no fibre, one with no 图案 no print, stripe or
    check, one with no 颜色 (or only 纯色) no colour, and none is given a feature (口袋, 拼接, 开叉:
    the vocabulary's ``details``) that it does not list, nor a part of the garment (a collar, a
    cuff: ``parts``) none of whose keys it has. A family counts as stated when a value
    names one of its classes or is one it cannot judge (unknown, or may be anything). Families that
    name the garment itself (``names_garment``: 类型, 衣样式...), those limited to the copy's
    subject, and those limited to other products (牛仔裤 is no unstated fact in a top's copy) are
    left alone, as are the words a family it states allows, any
    word inside one of its values or their aliases, and any word its own text (title,
    description: `text`) says.
    """
    vocab = vocab or load_vocab()
    attributes = attributes or {}
    said = fold(text)
    unstated: set[str] = set()
    # words naming the garment, which no other family's leave opens (部位 allows a skirt 连衣裙), and
    # the hues of a product listing no colour: a print's plain ground (花纹 allows a 碎花 dress 纯白)
    # opens no colour (make demo called a floral dress of no listed colour "纯白的连衣裙")
    kept_shut: set[str] = set()
    for group in _unstated_families(attributes, vocab):
        # a title 牛仔阔腿裤 keeps 牛仔裤 open
        words = (set(group.mentions) | set(group.compounds)) - _words_its_text_allows(group, said)
        unstated |= words
        if group.names_garment or group.name == HUE_FAMILY:
            kept_shut |= words
    unstated.update(vocab.details)  # the product's own are protected below, as its values
    unstated.update(w for _, words, _ in _unstated_parts(attributes, vocab, said) for w in words)
    allowed, _ = _judged_words(attributes, vocab)  # a white product's 纯白色 is no unstated pattern
    # Only the product's values protect the words inside them (雪纺衫 keeps 雪纺 open), not the
    # words its families allow: with no 颜色, a 碎花 dress (whose print allows a 纯白色 ground) is
    # given no 白色.
    return _blockable({w for w in unstated - (allowed - kept_shut) if w not in said}, _value_words(attributes, vocab))


def _words_its_text_allows(group: ClosedKey, folded_text: str) -> set[str]:
    """The family's words that agree with what the product's own text names of it (a 白色 in the
    title allows 纯白色, a 牛仔 allows 牛仔裤), as its attributes would."""
    found = group.scan(folded_text)
    if not found:
        return set()
    said = frozenset().union(*(group.mentions[w] for w in found))
    return ({w for w, classes in group.mentions.items() if classes & said}
            | {w for w, classes in group.compounds.items() if classes <= said})


def unstated_parts_named(
    text: str, attributes: Mapping[str, Sequence[str]] | None, vocab: AttributeVocab | None = None, *, said: str = "",
) -> list[str]:
    """The words in text that name a part of the garment (the vocabulary's ``parts``: a collar, a
    cuff, a print, a pocket; not the body it frames) that the product, with these attributes and its
    own text (said), states nothing of."""
    vocab = vocab or load_vocab()
    folded, own = fold(text), fold(said)
    return [w for _, words, body in _unstated_parts(attributes or {}, vocab, own) for w in words
            if w not in body and w in folded and w not in own]


def _unstated_parts(attributes: Mapping[str, Sequence[str]], vocab: AttributeVocab, said: str = "") -> list[tuple]:
    """The vocabulary's parts the product states nothing of: no value under any of their keys, and
    no value under any key, nor its own text (said, folded), holding one of their marks (收腰 under
    裙款式 states the waist: mark 腰)."""
    values = [fold(v) for vs in attributes.values() for v in vs] + [said]
    return [(keys, words, body) for keys, words, marks, body in vocab.parts
            if not any(v.strip() for key in keys for v in attributes.get(key, ()))
            and not any(mark in v for mark in marks for v in values)]


def _unstated_families(attributes: Mapping[str, Sequence[str]], vocab: AttributeVocab) -> list[ClosedKey]:
    """The families unstated_words() reads: those the product says nothing about. A family naming
    the garment is read only where the product gives it values that name none of its classes (a
    中长裙 is neither a dress nor a skirt: make demo's copy called one 这款连衣裙); without any, copy
    names its garment as it likes."""
    def classes(group: ClosedKey) -> list[frozenset[str] | None]:
        return [group.classes_of(fold(v)) for key in group.keys for v in attributes.get(key, ()) if v.strip()]

    def unstated(group: ClosedKey) -> bool:
        given = classes(group)
        if group.names_garment or group.subject:
            return bool(given) and all(c is not None and not c for c in given)
        return not any(c is None or c for c in given)

    # not covering: a product the family is not meant for (a top, for 牛仔裤)
    return [g for g in vocab.closed if g.covers(attributes) and unstated(g)]


def unstated_found(
    text: str, attributes: Mapping[str, Sequence[str]] | None, vocab: AttributeVocab | None = None, *,
    said: str = "", words: Sequence[str] | None = None,
) -> list[str]:
    """The words of unstated_words() (said: the product's own text; words: that list, when the
    caller has it) in a copy, in order, none inside another found: a family's words read as
    contradictions() reads them (leftmost-longest, its ignored phrases skipped: the 绿色 of 绿色环保
    names no colour), the vocabulary's details anywhere."""
    vocab = vocab or load_vocab()
    attributes = attributes or {}
    unstated = set(unstated_words(attributes, vocab, text=said) if words is None else words)
    folded = fold(text)
    found: dict[str, None] = {}
    for group in _unstated_families(attributes, vocab):
        for word in group.scan(folded):  # an allowed word may still hold an unstated one (纯白色: 白色)
            found.update(dict.fromkeys([word] if word in unstated else sorted(u for u in unstated if u in word)))
        found.update(dict.fromkeys(w for w in group.compounds if w in unstated and w in folded))
    found.update(dict.fromkeys(w for w in vocab.details if w in unstated and w in folded))
    found.update(dict.fromkeys(w for _, words, _, _ in vocab.parts for w in words if w in unstated and w in folded))
    return [w for w in found if not any(w != other and w in other for other in found)]


def _judged_words(attributes: Mapping[str, Sequence[str]] | None, vocab: AttributeVocab) -> tuple[set[str], set[str]]:
    """(own, excluded): the words naming the product's values (its values, their aliases and the
    mentions its families allow) and the words of its families that name a value it excludes."""
    own = _value_words(attributes, vocab)
    excluded: set[str] = set()
    checked = _checked(attributes, vocab)
    compounds = {word for group, _, _ in checked for word in group.compounds}  # judged by their own rule
    blocked = {w for group, key, _ in checked for v in (attributes or {}).get(key, ())
               for w in group.blocked_with.get(fold(v), ())}
    # a word one listed value avoids that names another (淑女 for a 街头 and 淑女 product) stays open
    blocked.update(w for key in vocab.avoided_keys for v in (attributes or {}).get(key, ())
                   for w in vocab.avoided.get(fold(v), ()) if not any(w in o for o in own))
    for group, _, allowed in checked:
        if group.subject:  # its words are wrong only as the subject (这款牛仔裤); elsewhere the copy may use them
            excluded.update(lead + word for word, classes in group.mentions.items() if not classes & allowed
                            for lead in group.subject if not lead.startswith("一"))  # 搭配一条阔腿裤 is fine
            continue
        for word, classes in group.mentions.items():
            if word not in compounds:
                (own if classes & allowed else excluded).add(word)
        for word, classes in group.compounds.items():  # all of its classes, or it says something false
            (own if classes <= allowed else excluded).add(word)
    return own - blocked, excluded | blocked  # 修身 for a 宽松 and 显瘦 product: allowed by 显瘦, blocked by 宽松


def _value_words(attributes: Mapping[str, Sequence[str]] | None, vocab: AttributeVocab) -> set[str]:
    """The product's values and their aliases, folded."""
    words = set()
    for value in map(fold, attribute_values(attributes)):
        words.update([value, *vocab.aliases.get(value, ())])
    return words


def _blockable(words: set[str], own: set[str]) -> list[str]:
    """The words that may be blocked while decoding, longest first: two characters or more, and
    none inside a word naming the product's own values (blocking works on token sequences)."""
    return sorted((w for w in words if len(w) >= MIN_BLOCK_CHARS and not any(w in o for o in own)),
                  key=lambda w: (-len(w), w))


def wanted_phrases(
    attributes: Mapping[str, Sequence[str]] | None, vocab: AttributeVocab | None = None, *,
    excluded: Sequence[str] | None = None,
) -> list[tuple[str, ...]]:
    """For each of the product's values (类型 aside), the words that would express it, shortest first.

    Meant to nudge decoding toward the product's own values (coverage() counts any of them as
    expressed). Words of one character are left out (a nudge toward 白 writes 白 anywhere), as
    are values with no such word and words the product excludes (excluded: excluded_words() of
    the product, when the caller has them already).
    """
    vocab = vocab or load_vocab()
    excluded = excluded_words(attributes, vocab) if excluded is None else excluded
    wanted = []
    for value in attribute_values(attributes, skip_keys=vocab.skip_keys):
        forms = sorted({f for f in _forms(fold(value), vocab)
                        if len(f) >= MIN_STEM_CHARS and not any(x in f for x in excluded)}, key=lambda f: (len(f), f))
        if forms:
            wanted.append(tuple(forms))
    return wanted
