"""Text normalisation applied to everything the model reads or writes.

Full-width ASCII letters, digits and spaces become half-width (ＡＢＣ１２３ -> ABC123) because the
same word must map to the same tokens whichever input method typed it. Chinese punctuation keeps
its full-width form (，。！？：；), which is how Chinese copy is written. Zero-width and control
characters are dropped, runs of whitespace become one space.
"""

from __future__ import annotations

import re
import unicodedata

# Full-width punctuation that Chinese copy uses as such; everything else full-width is folded.
_KEEP_FULL_WIDTH = set("，。！？：；（）、“”‘’《》【】～")
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = re.compile(r"\s+")


def _fold_char(ch: str) -> str:
    code = ord(ch)
    if ch in _KEEP_FULL_WIDTH:
        return ch
    if code == 0x3000:
        return " "
    if 0xFF01 <= code <= 0xFF5E:
        return chr(code - 0xFEE0)
    return ch


def normalise(text: str) -> str:
    """The canonical form of a piece of copy or product data."""
    text = text.translate(_ZERO_WIDTH)
    text = "".join(_fold_char(ch) for ch in text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" or ch in "\t\n" else " " for ch in text)
    return _SPACES.sub(" ", text).strip()

