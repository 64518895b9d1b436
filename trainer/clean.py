"""Pairs as read -> pairs fit to train on: redacted, filtered, de-duplicated, split.

``prepare_pairs`` runs, in this order, on each pair:

1. normalise and redact source and copy (trainer.redact; counts summed into report["redacted"]);
2. drop ``empty`` (source or copy empty), then ``too_short`` / ``too_long`` (the copy's length in
   characters against min_chars/max_chars: the copy is what the model learns to write);
3. drop ``exact_duplicate``: a copy already kept, whatever its source. The same copy under two
   products is a scraping artefact, and it would put the same target in train and val;
4. drop ``near_duplicate``: a copy whose character 5-gram set has Jaccard >= 0.9 with one already
   kept (globally). Candidates come from MinHash LSH (128 hashes, 16 bands of 8 rows: a pair at
   Jaccard 0.9 becomes a candidate with probability 0.9999, one at 0.5 with 0.06), and every
   candidate is confirmed with the exact Jaccard, so nothing under the threshold is dropped;
5. split by source: a source goes to val when blake2b(seed, source) falls under val_fraction.
   All copies of one product land on the same side, and a source's side does not depend on the
   rest of the data, so adding data never moves an old val example into train.

The first occurrence wins everywhere, so the result depends only on the input order and the seed.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from collections import Counter, defaultdict
from collections.abc import Iterable

import numpy as np

from copygen.textnorm import normalise
from trainer.data import Pair
from trainer.redact import KINDS, redact

log = logging.getLogger(__name__)

PAIR_DROP_REASONS = ("empty", "too_short", "too_long", "exact_duplicate", "near_duplicate")
NEAR_DUPLICATE_JACCARD = 0.9  # char 5-gram sets this similar count as the same copy
SHINGLE = 5  # characters per shingle; a Chinese clause differs from another in many 5-grams
NUM_HASHES, BANDS = 128, 16  # 16 bands x 8 rows; see the module docstring for the odds


def prepare_pairs(
    pairs: Iterable[Pair],
    *,
    seed: int,
    val_fraction: float = 0.1,
    min_chars: int = 10,
    max_chars: int = 400,
) -> tuple[list[Pair], list[Pair], dict]:
    """Redact, filter, de-duplicate and split pairs; returns (train, val, report).

    report = {"read": n, "kept": n, "train": n, "val": n, "dropped": {reason: n},
              "redacted": {kind: n}, "seed": seed, "val_fraction": f}
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), not {val_fraction}")
    if min_chars > max_chars:
        raise ValueError(f"min_chars ({min_chars}) is larger than max_chars ({max_chars})")
    dropped: Counter[str] = Counter(dict.fromkeys(PAIR_DROP_REASONS, 0))
    redacted: Counter[str] = Counter(dict.fromkeys(KINDS, 0))
    seen: set[str] = set()
    near = NearDuplicateIndex()  # its own fixed seed: the split seed must not change what is a duplicate
    kept: list[Pair] = []
    read = 0
    for pair in pairs:
        read += 1
        source, source_counts = redact(normalise(pair.source))
        copy, copy_counts = redact(normalise(pair.copy))
        redacted.update(source_counts)
        redacted.update(copy_counts)
        reason = _length_reason(copy, min_chars, max_chars) if source else "empty"
        if reason is None and copy in seen:
            reason = "exact_duplicate"
        if reason is None and near.add_unless_near(copy) is not None:
            reason = "near_duplicate"
        if reason is not None:
            dropped[reason] += 1
            continue
        seen.add(copy)
        kept.append(Pair(source, copy, pair.style, pair.origin, pair.torn))

    val_sources = _val_sources([p.source for p in kept], seed, val_fraction)
    train = [p for p in kept if p.source not in val_sources]
    val = [p for p in kept if p.source in val_sources]
    report = {
        "read": read, "kept": len(kept), "train": len(train), "val": len(val),
        "dropped": dict(dropped), "redacted": dict(redacted), "seed": seed, "val_fraction": val_fraction,
    }
    log.info("pairs: %d read, %d kept (%d train, %d val), dropped %s, redacted %s",
             read, len(kept), len(train), len(val), dict(dropped), dict(redacted))
    return train, val, report


def prepare_texts(
    texts: Iterable[str],
    *,
    min_chars: int = 10,
    max_chars: int = 1000,
) -> tuple[list[str], dict]:
    """Pre-training text: normalise, redact, drop empty/too short/too long, exact and near duplicates.

    max_chars is larger than for pairs because a pre-training text is a paragraph, not one copy.
    report = {"read": n, "kept": n, "dropped": {reason: n}, "redacted": {kind: n}}
    """
    if min_chars > max_chars:
        raise ValueError(f"min_chars ({min_chars}) is larger than max_chars ({max_chars})")
    dropped: Counter[str] = Counter(dict.fromkeys(PAIR_DROP_REASONS, 0))
    redacted: Counter[str] = Counter(dict.fromkeys(KINDS, 0))
    seen: set[str] = set()
    near = NearDuplicateIndex()
    kept: list[str] = []
    read = 0
    for raw in texts:
        read += 1
        text, counts = redact(normalise(raw))
        redacted.update(counts)
        reason = _length_reason(text, min_chars, max_chars)
        if reason is None and text in seen:
            reason = "exact_duplicate"
        if reason is None and near.add_unless_near(text) is not None:
            reason = "near_duplicate"
        if reason is not None:
            dropped[reason] += 1
            continue
        seen.add(text)
        kept.append(text)
    report = {"read": read, "kept": len(kept), "dropped": dict(dropped), "redacted": dict(redacted)}
    log.info("texts: %d read, %d kept, dropped %s, redacted %s",
             read, len(kept), dict(dropped), dict(redacted))
    return kept, report


def split_side(source: str, seed: int) -> float:
    """Where a source falls in [0, 1) for this seed; below val_fraction means val."""
    digest = hashlib.blake2b(source.encode("utf-8"), digest_size=8, key=str(seed).encode()).digest()
    return struct.unpack(">Q", digest)[0] / 2**64


class NearDuplicateIndex:
    """Texts kept so far, found again by MinHash LSH when a new one has Jaccard >= threshold.

    A text's shingle set is held as the sorted unique 64-bit hashes of its character 5-grams
    (a polynomial hash of the code points, then the splitmix64 finaliser); the exact Jaccard of
    two such sets confirms every LSH candidate. Each of the NUM_HASHES MinHash functions is
    ``a * x + b mod 2^64`` with a random odd ``a`` over the already mixed ``x``.
    """

    def __init__(self, threshold: float = NEAR_DUPLICATE_JACCARD, seed: int = 0) -> None:
        self.threshold = threshold
        rng = np.random.default_rng(seed)
        self._a = rng.integers(0, 2**63, NUM_HASHES, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self._b = rng.integers(0, 2**63, NUM_HASHES, dtype=np.uint64)
        self._buckets: list[dict[bytes, list[int]]] = [defaultdict(list) for _ in range(BANDS)]
        self._sets: list[np.ndarray] = []

    def add_unless_near(self, text: str) -> int | None:
        """The index of a kept text this one nearly duplicates; else keep it and return None."""
        hashed = _shingle_hashes(text)
        bands = self._bands(hashed)
        checked: set[int] = set()
        for band, key in enumerate(bands):
            for other in self._buckets[band].get(key, ()):
                if other in checked:
                    continue
                checked.add(other)
                if _sorted_jaccard(hashed, self._sets[other]) >= self.threshold:
                    return other
        index = len(self._sets)
        self._sets.append(hashed)
        for band, key in enumerate(bands):
            self._buckets[band][key].append(index)
        return None

    def _bands(self, hashed: np.ndarray) -> list[bytes]:
        signature = (hashed[:, None] * self._a[None, :] + self._b[None, :]).min(axis=0)  # wraps mod 2^64
        rows = NUM_HASHES // BANDS
        return [signature[i * rows : (i + 1) * rows].tobytes() for i in range(BANDS)]


_POWERS = np.uint64(0x100000001B3) ** np.arange(SHINGLE, dtype=np.uint64)  # wraps mod 2^64


def _shingle_hashes(text: str) -> np.ndarray:
    """Sorted unique 64-bit hashes of the character SHINGLE-grams of text (all of it if shorter)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(codes) <= SHINGLE:
        raw = np.array([codes @ _POWERS[: len(codes)]], dtype=np.uint64) + np.uint64(len(codes))
    else:
        count = len(codes) - SHINGLE + 1
        raw = codes[:count] * _POWERS[0]
        for k in range(1, SHINGLE):
            raw += codes[k : k + count] * _POWERS[k]
    return np.unique(_splitmix64(raw))


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _sorted_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    common = np.intersect1d(a, b, assume_unique=True).size
    return common / (a.size + b.size - common)


def _length_reason(text: str, min_chars: int, max_chars: int) -> str | None:
    if not text:
        return "empty"
    if len(text) < min_chars:
        return "too_short"
    if len(text) > max_chars:
        return "too_long"
    return None


def _val_sources(sources: list[str], seed: int, val_fraction: float) -> set[str]:
    """Sources whose hash falls under val_fraction. When that leaves val empty on a small data set
    with at least two sources, the source with the lowest hash goes to val, so there is one."""
    distinct = list(dict.fromkeys(sources))
    sides = {s: split_side(s, seed) for s in distinct}
    val = {s for s, side in sides.items() if side < val_fraction}
    if val_fraction > 0 and not val and len(distinct) >= 2:
        val = {min(distinct, key=sides.__getitem__)}
    return val
