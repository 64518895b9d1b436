"""Text normalisation applied to everything the model reads or writes.

Full-width ASCII letters, digits and spaces become half-width (ＡＢＣ１２３ -> ABC123) because the
same word must map to the same tokens whichever input method typed it. Chinese punctuation keeps
its full-width form (，。！？：；), which is how Chinese copy is written. Zero-width characters are
dropped, other control characters become spaces, runs of whitespace become one space.
"""

from __future__ import annotations

import logging
import re
import unicodedata

# Full-width punctuation that Chinese copy uses as such; everything else full-width is folded.
_KEEP_FULL_WIDTH = set("，。！？：；（）、“”‘’《》【】～")
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_SPACES = re.compile(r"\s+")


def _table() -> dict[int, str | None]:
    table: dict[int, str | None] = {ord(ch): None for ch in _ZERO_WIDTH}
    table[0x3000] = " "
    for code in range(0xFF01, 0xFF5F):
        if chr(code) not in _KEEP_FULL_WIDTH:
            table[code] = chr(code - 0xFEE0)
    return table


_FOLD = _table()  # a few hundred entries; str.translate makes normalising ~10x faster than a loop


def _is_other(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "C"


def normalise(text: str) -> str:
    """The canonical form of a piece of copy or product data."""
    text = text.translate(_FOLD)
    if not text.isprintable():  # rare: only then look for format/private-use/control characters
        text = "".join(" " if _is_other(ch) else ch for ch in text)
    return _SPACES.sub(" ", text).strip()


def segment(text: str) -> list[str]:
    """jieba's words of text, in order: its dictionary loads on the first call, never at import."""
    import jieba  # heavy

    jieba.setLogLevel(logging.WARNING)  # jieba sets its own logger to DEBUG at import
    return jieba.lcut(text)


# the words a copy may say again without repeating itself: what every feature is (…的设计)
STRUCTURAL_WORDS = frozenset({"设计"})
_CHINESE = re.compile(r"[\u4e00-\u9fff]+")


def content_words(text: str) -> list[str]:
    """text's jieba words of two Chinese characters or more, other than STRUCTURAL_WORDS, in order:
    the words a reader hears said again."""
    return [w for w in segment(text) if len(w) >= 2 and _CHINESE.fullmatch(w) and w not in STRUCTURAL_WORDS]
