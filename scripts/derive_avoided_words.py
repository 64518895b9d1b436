"""The words the copy of a listed value avoids: the vocabulary's `avoided`, derived from the data.

People write in the register of what a product lists: of the 229 AdvertiseGen references of 街头
(street) products, 1 says 淑女 (ladylike) where 6.5 would at the rate of all 5,000; of the 539 denim
ones, 8 say 飘逸 (flowing) where 38.1 would; none of the 165 运动 (sport) ones says 高贵 (noble). The
demo model writes such words for any product ("平添几分浪漫柔美的气质" for a street denim jacket, "阳光帅气"
for 性感 trousers, "飘逸轻盈" for a denim skirt), and readers count them as wrong. A word is avoided by a
value (of KEYS, with MIN_PRODUCTS products or more) when the value's references would say it at least
MIN_EXPECTED times at the rate of all references and say it at most MAX_RATIO of that.

    .venv/bin/python scripts/derive_avoided_words.py          # the table, one value a line
    .venv/bin/python scripts/derive_avoided_words.py --json   # the vocabulary's `avoided` block
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trainer.clausebook import REGISTER_WORDS
from trainer.data import parse_content

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "advertisegen" / "train_first5000.json"
# The keys whose values set a register: the style, the fabric and the kind of garment or leg. Prints,
# lengths and cuts are left out: what their references avoid is mostly what their garments avoid.
KEYS = ("风格", "材质", "衣样式", "裤型", "裤口", "裙型")
MIN_PRODUCTS = 30  # fewer products than this say too little about what a value's copy avoids
MIN_EXPECTED = 4.0  # at the rate of all references, the value's references would say the word this often
MAX_RATIO = 0.25  # and say it at most this share of that
# Words of a register or temperament, and of how a garment feels, hangs and fits; two characters or
# more (a blocked word must be: blocking works on tokens, and 仙 alone is in 仙女 and 神仙). Praise that
# fits anything (时尚, 精致, 气质, 大气, 简约) is left out. 优雅 was too until 2026.12-33 (the street and sport
# references say it at 0.37 of the rate of all), but the copy of sweatshirts, harem trousers and washed
# fabrics avoids it (13 of 349 references where 82 would say it, 2 of 45 where 10.6 would, 3 of 123 where
# 28.9 would), and readers counted make demo's "更显得时尚优雅" for a black hoodie a clash of register.
# The register words are the clause book's (trainer.clausebook.REGISTER_WORDS: a clause speaking one is for
# its writer's styles); those of feel and fit follow.
WORDS = REGISTER_WORDS + (
         "飘逸", "轻盈", "柔软", "顺滑", "丝滑", "垂感", "垂坠", "挺括", "硬挺", "透气", "亲肤", "凉爽", "清凉", "保暖", "弹力",
         "弹性", "轻薄", "厚实", "细腻", "柔滑", "包裹", "紧身", "贴身", "修身", "宽松", "自由", "束缚", "舒展", "笔挺", "清爽")


def read_rows(path: Path) -> list[tuple[set[str], str]]:
    """(the product's values under KEYS, its reference) per row."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                attributes = parse_content(row["content"])
                rows.append(({v for key in KEYS for v in attributes.get(key, [])}, row["summary"]))
    return rows


def avoided_words(rows: list[tuple[set[str], str]]) -> dict[str, list[tuple[str, int, float]]]:
    """Per value with MIN_PRODUCTS products: (word, said, expected) for each word its copy avoids."""
    rate = {w: sum(w in text for _, text in rows) / len(rows) for w in WORDS}
    table = {}
    for value in sorted({v for listed, _ in rows for v in listed}):
        texts = [text for listed, text in rows if value in listed]
        if len(texts) < MIN_PRODUCTS:
            continue
        avoided = []
        for word in WORDS:
            expected = rate[word] * len(texts)
            said = sum(word in text for text in texts)
            if word not in value and expected >= MIN_EXPECTED and said <= MAX_RATIO * expected:
                avoided.append((word, said, round(expected, 1)))
        if avoided:
            table[value] = avoided
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", action="store_true", help="print the vocabulary's avoided block")
    args = parser.parse_args()
    rows = read_rows(args.data)
    table = avoided_words(rows)
    if args.json:
        listing = [(listed, text) for listed, text in rows if listed]
        using = sum(any(w in text for v in listed for w, _, _ in table.get(v, ())) for listed, text in listing)
        print(json.dumps({"keys": list(KEYS), "blocked": {v: [w for w, _, _ in ws] for v, ws in table.items()},
                          "measured": {"products": len(listing), "references_using_a_blocked_word": using,
                                       "rate": round(using / len(listing), 4)}}, ensure_ascii=False))
        return
    for value, words in table.items():
        n = sum(value in listed for listed, _ in rows)
        print(f"{value} ({n}): " + ", ".join(f"{w} {said}/{expected}" for w, said, expected in words))


if __name__ == "__main__":
    main()
