"""The prompt format shared by the trainer (what the model learns) and the worker (what it asks).

A training sequence is

    [BOS] <length code> <style code> source-text [SEP] copy [EOS]

and a generation prompt is the same up to [SEP], followed by the opening phrase, if any, which
the model then continues ("新品上市，" in the original recipe). The source text is what we know
of the product: its title, its attributes as AdvertiseGen's ``key#value*key#value`` and a free
description, joined by " | ".

Length codes are buckets of the copy's length in characters; their edges are learned from the
training data and stored in the checkpoint's manifest, so a job asking for "short" copy gets the
shortest bucket the model has seen. The bounds a copy of each length must keep (the worker's
too_short / too_long check, and the generator's token budget and floor) come from the same edges, so what
a model writes for "short" is what the filter accepts as short.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

FORMAT_VERSION = 1

PAD, UNK, BOS, SEP, EOS = "[PAD]", "[UNK]", "[BOS]", "[SEP]", "[EOS]"
LENGTH_CODES = ("[LEN_S]", "[LEN_M]", "[LEN_L]")
# Style = which kind of copy the model imitates: AdvertiseGen's fashion ad copy, or Taobao's
# product descriptions. Merchant data is trained under the style its user names.
STYLE_CODES = {"ad": "[STYLE_AD]", "description": "[STYLE_DESC]"}
SPECIAL_TOKENS = (PAD, UNK, BOS, SEP, EOS, *LENGTH_CODES, *STYLE_CODES.values())

LENGTHS = ("short", "medium", "long")  # the job setting `length`, mapped onto LENGTH_CODES
TEMPLATE = "{bos}{length}{style}{source}{sep}{opening}"
SOURCE_JOINER = " | "


def attributes_text(attributes: Mapping[str, Sequence[str]] | None) -> str:
    """Attributes as AdvertiseGen writes them: 类型#上衣*颜色#白色*颜色#黑色."""
    if not attributes:
        return ""
    return "*".join(f"{key}#{value}" for key, values in attributes.items() for value in values)


def source_text(
    title: str | None = None,
    attributes: Mapping[str, Sequence[str]] | None = None,
    description: str | None = None,
) -> str:
    """What the model is told about a product, in a fixed order; empty parts are left out."""
    parts = [title or "", attributes_text(attributes), description or ""]
    return SOURCE_JOINER.join(part.strip() for part in parts if part and part.strip())


def length_code(n_chars: int, edges: Sequence[int]) -> str:
    """The length bucket of a copy of n_chars characters; edges are the two bucket boundaries."""
    low, high = edges
    if n_chars < low:
        return LENGTH_CODES[0]
    return LENGTH_CODES[1] if n_chars < high else LENGTH_CODES[2]


MIN_COPY_CHARS = 4  # shorter is no copy at all, whatever the bucket
# Bounds for a model without learned edges (a manifest from before they were recorded).
FIXED_LENGTH_BOUNDS = {"short": (MIN_COPY_CHARS, 40), "medium": (40, 160), "long": (80, 300)}


EDGE_TOLERANCE = 0.25  # a sampled copy drifts past the bucket edge it was trained on: allow a quarter


def length_bounds(length: str, edges: Sequence[int] | None = None) -> tuple[int, int]:
    """(fewest, most) characters a copy of this length setting should have.

    With a model's bucket edges (low, high): short is below low, medium between, long above high,
    each allowed EDGE_TOLERANCE past an edge it shares with another bucket (edges (99, 118), from
    AdvertiseGen: short 4-124, medium 74-148, long 88-295); long ends at 2.5 x high. Without
    edges, FIXED_LENGTH_BOUNDS.
    """
    if length not in LENGTHS:
        raise ValueError(f"length must be one of {', '.join(LENGTHS)}, not {length!r}")
    if not edges:
        return FIXED_LENGTH_BOUNDS[length]
    low, high = edges
    below, above = 1 - EDGE_TOLERANCE, 1 + EDGE_TOLERANCE
    fewest, most = {"short": (MIN_COPY_CHARS, above * low), "medium": (below * low, above * high),
                    "long": (below * high, 2.5 * high)}[length]
    return max(MIN_COPY_CHARS, round(fewest)), max(MIN_COPY_CHARS + 1, round(most))


def length_code_for(length: str) -> str:
    """The code for a job's length setting: short, medium or long."""
    try:
        return LENGTH_CODES[LENGTHS.index(length)]
    except ValueError:
        raise ValueError(f"length must be one of {', '.join(LENGTHS)}, not {length!r}") from None


def style_code(style: str) -> str:
    try:
        return STYLE_CODES[style]
    except KeyError:
        raise ValueError(f"style must be one of {', '.join(STYLE_CODES)}, not {style!r}") from None


def render_prompt(source: str, length: str = "medium", style: str = "ad", opening: str = "") -> str:
    """The text the model continues; the tokenizer turns the bracketed codes into single tokens."""
    return TEMPLATE.format(
        bos=BOS, length=length_code_for(length), style=style_code(style),
        source=source, sep=SEP, opening=opening,
    )
