"""The words each listed style's copy avoids: the vocabulary's `styles.blocked`, derived from the data.

People write copy in the register of the style a product lists: of the 229 AdvertiseGen references
of 街头 (street) products, 1 says 淑女 (ladylike) where 6.6 would at the rate of all 5,000, and none of
the 165 运动 (sport) references says 高贵 (noble). The demo model writes such words for any product
("平添几分浪漫柔美的气质" for a street denim jacket, "阳光帅气" for 性感 trousers), and readers count
them as wrong. A word is blocked for a style when the style's references would say it at least
MIN_EXPECTED times at the rate of all references and say it at most MAX_RATIO of that.

    .venv/bin/python scripts/derive_style_blocks.py          # the table, one style a line
    .venv/bin/python scripts/derive_style_blocks.py --json   # the vocabulary's `styles` block
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trainer.data import parse_content

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "advertisegen" / "train_first5000.json"
KEY = "风格"
MIN_PRODUCTS = 30  # fewer products than this say too little about what a style's copy avoids
MIN_EXPECTED = 4.0  # at the rate of all references, the style's references would say the word this often
MAX_RATIO = 0.25  # and say it at most this share of that
# Words of a register or temperament, two characters or more (a blocked word must be: blocking works
# on tokens, and 仙 alone is in 仙女 and 神仙). Praise that fits any style (时尚, 精致, 气质, 大气,
# 简约) is left out, and so is 优雅: the street and sport references say it at 0.37 of the rate of all.
REGISTER = ("甜美", "可爱", "少女", "俏皮", "减龄", "童趣", "淑女", "名媛", "温婉", "女人味", "知性", "高贵", "端庄", "帅气", "酷帅", "街头",
            "不羁", "中性", "硬朗", "稳重", "内敛", "成熟", "干练", "性感", "妩媚", "浪漫", "温柔", "阳光", "活力", "仙气", "很仙", "清新",
            "文艺", "复古", "休闲", "随性", "慵懒", "青春", "运动", "率性", "潇洒", "柔美", "小女人", "优雅气质", "女神", "洒脱", "学院", "通勤",
            "职场")


def read_rows(path: Path) -> list[tuple[list[str], str]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                rows.append((parse_content(row["content"]).get(KEY, []), row["summary"]))
    return rows


def blocked_words(rows: list[tuple[list[str], str]]) -> dict[str, list[tuple[str, int, float]]]:
    """Per style with MIN_PRODUCTS products: (word, said, expected) for each word its copy avoids."""
    rate = {w: sum(w in text for _, text in rows) / len(rows) for w in REGISTER}
    styles = sorted({s for listed, _ in rows for s in listed})
    table = {}
    for style in styles:
        texts = [text for listed, text in rows if style in listed]
        if len(texts) < MIN_PRODUCTS:
            continue
        avoided = []
        for word in REGISTER:
            expected = rate[word] * len(texts)
            said = sum(word in text for text in texts)
            if word not in style and expected >= MIN_EXPECTED and said <= MAX_RATIO * expected:
                avoided.append((word, said, round(expected, 1)))
        if avoided:
            table[style] = avoided
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", action="store_true", help="print the vocabulary's styles block")
    args = parser.parse_args()
    rows = read_rows(args.data)
    table = blocked_words(rows)
    if args.json:
        styled = [(listed, text) for listed, text in rows if listed]
        using = sum(any(w in text for s in listed for w, _, _ in table.get(s, ())) for listed, text in styled)
        print(json.dumps({"keys": [KEY], "blocked": {s: [w for w, _, _ in ws] for s, ws in table.items()},
                          "measured": {"products": len(styled), "references_using_a_blocked_word": using,
                                       "rate": round(using / len(styled), 4)}}, ensure_ascii=False))
        return
    for style, words in table.items():
        n = sum(style in listed for listed, _ in rows)
        print(f"{style} ({n}): " + ", ".join(f"{w} {said}/{expected}" for w, said, expected in words))


if __name__ == "__main__":
    main()
